# SPDX-License-Identifier: BSD-2-Clause
#
# The filter's logic is in libondemand.a, which the daemon, ondemand-cf and
# the unit tests all link.

noinst_LIBRARIES += milter/libondemand.a
milter_libondemand_a_SOURCES = \
	milter/config.c \
	milter/domain.c \
	milter/log.c \
	milter/msgclass.c \
	milter/rcpt.c \
	milter/util.c \
	include/od_config.h \
	include/od_domain.h \
	include/od_log.h \
	include/od_msgclass.h \
	include/od_rcpt.h \
	include/od_util.h
milter_libondemand_a_CFLAGS = $(AM_CFLAGS) $(IDN2_CFLAGS)

sbin_PROGRAMS += milter/ondemand-milter
milter_ondemand_milter_SOURCES = \
	milter/main.c \
	milter/filter.c \
	milter/runtime.c \
	include/od_filter.h \
	include/od_runtime.h
milter_ondemand_milter_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS) -pthread
milter_ondemand_milter_LDADD = milter/libondemand.a $(MILTER_LIBS) \
	$(IDN2_LIBS) -lpthread
