# SPDX-License-Identifier: BSD-2-Clause
#
# ondemand-cf, the sendmail.cf patch tool, and the m4 FEATURE for sites that
# build sendmail.cf from sendmail.mc.  The sendmail.cf logic lives in
# libcfedit.a so that the Check tests in tests/cf can drive it directly.

noinst_LIBRARIES += sendmail-cf/libcfedit.a
sendmail_cf_libcfedit_a_SOURCES = \
	sendmail-cf/cf_check.c \
	sendmail-cf/cf_diff.c \
	sendmail-cf/cf_diff.h \
	sendmail-cf/cf_doc.c \
	sendmail-cf/cf_doc.h \
	sendmail-cf/cf_file.c \
	sendmail-cf/cf_file.h \
	sendmail-cf/cf_internal.h \
	sendmail-cf/cf_patch.c \
	sendmail-cf/cf_patch.h \
	sendmail-cf/cf_revert.c \
	sendmail-cf/cf_scan.c \
	sendmail-cf/cf_sendmail.c \
	sendmail-cf/cf_sendmail.h \
	sendmail-cf/cf_util.c

sbin_PROGRAMS += sendmail-cf/ondemand-cf
sendmail_cf_ondemand_cf_SOURCES = sendmail-cf/ondemand-cf.c
sendmail_cf_ondemand_cf_LDADD = sendmail-cf/libcfedit.a \
	milter/libondemand.a $(IDN2_LIBS)

dist_man_MANS += sendmail-cf/ondemand-cf.8

# FEATURE(`ondemand') goes into sendmail's m4 tree, which is outside the
# installation prefix (--with-sendmail-cf-dir, by default
# /usr/share/sendmail/cf).  DESTDIR applies as usual; distcheck installs
# it below its own temporary prefix instead.
sendmailcffeaturedir = $(sendmailcfdir)/feature
dist_sendmailcffeature_DATA = sendmail-cf/feature/ondemand.m4
AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-sendmail-cf-dir="$$dc_install_base/share/sendmail/cf"
