# SPDX-License-Identifier: BSD-2-Clause
#
# Tests of ondemand-cf and FEATURE(`ondemand').  The Python tests need root
# (they use a private mount namespace) and skip with status 77 otherwise.

if HAVE_CHECK
check_PROGRAMS += tests/cf/check_cfedit
tests_cf_check_cfedit_SOURCES = tests/cf/check_cfedit.c
tests_cf_check_cfedit_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/sendmail-cf
tests_cf_check_cfedit_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_cf_check_cfedit_LDADD = sendmail-cf/libcfedit.a $(CHECK_LIBS)
TESTS += tests/cf/check_cfedit
endif

# Python scripts run as they are (they have a #! line); each prints one PASS
# or FAIL line per check and ends with "N passed, N failed".
TESTS += \
	tests/cf/cf_tool.py \
	tests/cf/etrn_hook.py \
	tests/cf/m4_feature.py

EXTRA_DIST += \
	tests/cf/cf_tool.py \
	tests/cf/cftest.py \
	tests/cf/etrn_hook.py \
	tests/cf/m4_feature.py \
	tests/cf/expected/background-keep.cf \
	tests/cf/expected/background-options.cf \
	tests/cf/expected/background.cf \
	tests/cf/expected/crlf.cf \
	tests/cf/expected/etrn.cf \
	tests/cf/expected/old-style-deferred.cf \
	tests/cf/expected/old-style.cf \
	tests/cf/expected/other-filter.cf \
	tests/cf/fixtures/background.cf \
	tests/cf/fixtures/crlf.cf \
	tests/cf/fixtures/etrn.cf \
	tests/cf/fixtures/no-parse1.cf \
	tests/cf/fixtures/not-a-cf.cf \
	tests/cf/fixtures/old-style.cf \
	tests/cf/fixtures/ondemand.conf \
	tests/cf/fixtures/options-only.cf \
	tests/cf/fixtures/other-filter.cf \
	tests/cf/fixtures/truncated.cf
