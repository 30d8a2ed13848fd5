# SPDX-License-Identifier: BSD-2-Clause
#
# The release helper: its protocol and listing parsers are pure functions in
# libondemand.a (so the unit tests link them); the helper process and the
# daemon's client side are part of the daemon.

milter_libondemand_a_SOURCES += \
	milter/helper_mailq.c \
	milter/helper_proto.c \
	include/od_helper.h \
	include/od_helper_proto.h

milter_ondemand_milter_SOURCES += \
	milter/helper.c \
	milter/helper_client.c \
	milter/helper_internal.h
