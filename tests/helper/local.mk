# SPDX-License-Identifier: BSD-2-Clause
#
# Tests of the release helper process. helper_run drives the od_helper_*
# calls; test_helper_fake.py runs it against tests/helper/fake-sendmail
# (no root needed), test_helper_sendmail.py against a real sendmail in the
# private namespace of tests/e2e/odtest.py (root, exit 77 without).

check_PROGRAMS += tests/helper/helper_run
tests_helper_helper_run_SOURCES = \
	tests/helper/helper_run.c \
	milter/helper.c \
	milter/helper_client.c \
	milter/helper_internal.h
tests_helper_helper_run_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/milter
tests_helper_helper_run_CFLAGS = $(AM_CFLAGS) -pthread
tests_helper_helper_run_LDADD = milter/libondemand.a $(IDN2_LIBS) -lpthread

HELPER_TESTS = \
	tests/helper/test_helper_fake.py \
	tests/helper/test_helper_sendmail.py
TESTS += $(HELPER_TESTS)
EXTRA_DIST += $(HELPER_TESTS) tests/helper/fake-sendmail
