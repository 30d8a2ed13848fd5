# SPDX-License-Identifier: BSD-2-Clause
#
# Tests of contrib/: Check unit tests of the SMTP reply parser and the ETRN
# rules, ondemand-etrn against a scripted SMTP server on 127.0.0.1 and
# against a DNS server that never replies, the cron files, the example
# configuration (read by ondemand-milter -n), and systemd-analyze on the
# unit files.

if HAVE_CHECK
check_PROGRAMS += tests/contrib/check_etrn
TESTS += tests/contrib/check_etrn
tests_contrib_check_etrn_SOURCES = tests/contrib/check_etrn.c
tests_contrib_check_etrn_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/contrib
tests_contrib_check_etrn_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_contrib_check_etrn_LDADD = contrib/libetrn.a $(CHECK_LIBS)
endif

# The shell wrappers run from the top of the build tree, like every test
# here, and find their Python scripts through $srcdir, which the test
# harness exports.
TESTS += \
	tests/contrib/conf-example.test \
	tests/contrib/cron-lines.test \
	tests/contrib/etrn-client.test \
	tests/contrib/etrn-dns-timeout.test \
	tests/contrib/systemd-units.test
dist_noinst_SCRIPTS += \
	tests/contrib/conf-example.test \
	tests/contrib/cron-lines.test \
	tests/contrib/etrn-client.test \
	tests/contrib/etrn-dns-timeout.test \
	tests/contrib/etrn_client_cases.py \
	tests/contrib/fake_smtp_server.py \
	tests/contrib/silent_dns_server.py \
	tests/contrib/systemd-units.test
