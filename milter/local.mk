# SPDX-License-Identifier: BSD-2-Clause
#
# The filter's logic is in libondemand.a, which the daemon, ondemand-cf and
# the unit tests all link.

noinst_LIBRARIES += milter/libondemand.a
milter_libondemand_a_SOURCES = \
	milter/config.c \
	milter/domain.c \
	milter/etrn.c \
	milter/index.c \
	milter/ledger.c \
	milter/ledger_key.c \
	milter/log.c \
	milter/msgclass.c \
	milter/netstring.c \
	milter/network.c \
	milter/rcpt.c \
	milter/util.c \
	include/od_config.h \
	include/od_domain.h \
	include/od_etrn.h \
	include/od_index.h \
	include/od_ledger.h \
	include/od_log.h \
	include/od_msgclass.h \
	include/od_netstring.h \
	include/od_network.h \
	include/od_rcpt.h \
	include/od_util.h
milter_libondemand_a_CFLAGS = $(AM_CFLAGS) $(IDN2_CFLAGS) $(MEMCACHED_CFLAGS)

sbin_PROGRAMS += milter/ondemand-milter
milter_ondemand_milter_SOURCES = \
	milter/main.c \
	milter/control.c \
	milter/filter.c \
	milter/ledger_client.c \
	milter/listen.c \
	milter/release.c \
	milter/runtime.c \
	milter/socketmap.c \
	include/od_filter.h \
	include/od_helper.h \
	include/od_ledger_client.h \
	include/od_listen.h \
	include/od_release.h \
	include/od_runtime.h \
	include/od_server.h
milter_ondemand_milter_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS) \
	$(MEMCACHED_CFLAGS) -pthread
milter_ondemand_milter_LDADD = milter/libondemand.a $(MILTER_LIBS) \
	$(MEMCACHED_LIBS) $(IDN2_LIBS) -lpthread

sbin_PROGRAMS += milter/ondemandctl
milter_ondemandctl_SOURCES = milter/ctl.c
milter_ondemandctl_LDADD = milter/libondemand.a $(IDN2_LIBS)

dist_man_MANS += milter/ondemand-milter.8 milter/ondemand.conf.5 milter/ondemandctl.8
