# SPDX-License-Identifier: BSD-2-Clause
#
# Check unit suites, one program per module of libondemand.a.

if HAVE_CHECK
unit_tests = \
	tests/unit/check_config \
	tests/unit/check_domain \
	tests/unit/check_rcpt \
	tests/unit/check_release
check_PROGRAMS += $(unit_tests)
TESTS += $(unit_tests)

unit_cflags = $(AM_CFLAGS) $(CHECK_CFLAGS) $(IDN2_CFLAGS)
unit_ldadd = milter/libondemand.a $(CHECK_LIBS) $(IDN2_LIBS)

tests_unit_check_config_SOURCES = tests/unit/check_config.c
tests_unit_check_config_CFLAGS = $(unit_cflags)
tests_unit_check_config_LDADD = $(unit_ldadd)
tests_unit_check_domain_SOURCES = tests/unit/check_domain.c
tests_unit_check_domain_CFLAGS = $(unit_cflags)
tests_unit_check_domain_LDADD = $(unit_ldadd)
tests_unit_check_rcpt_SOURCES = tests/unit/check_rcpt.c
tests_unit_check_rcpt_CFLAGS = $(unit_cflags)
tests_unit_check_rcpt_LDADD = $(unit_ldadd)
tests_unit_check_release_SOURCES = tests/unit/check_release.c
tests_unit_check_release_CFLAGS = $(unit_cflags) -pthread
tests_unit_check_release_LDADD = $(unit_ldadd) -lpthread
endif

# The ledger's keys, encoding and quota arithmetic (milter/ledger.c,
# milter/ledger_key.c); the keys' hashes come from libmemcached.
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_ledger
TESTS += tests/unit/check_ledger
tests_unit_check_ledger_SOURCES = tests/unit/check_ledger.c
tests_unit_check_ledger_CFLAGS = $(unit_cflags) $(MEMCACHED_CFLAGS)
tests_unit_check_ledger_LDADD = milter/libondemand.a $(CHECK_LIBS) \
	$(MEMCACHED_LIBS) $(IDN2_LIBS)
endif

# The release helper's protocol and listing parsers (milter/helper_proto.c,
# milter/helper_mailq.c).
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_helper
TESTS += tests/unit/check_helper
tests_unit_check_helper_SOURCES = tests/unit/check_helper.c
tests_unit_check_helper_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(IDN2_CFLAGS)
tests_unit_check_helper_LDADD = milter/libondemand.a $(CHECK_LIBS) \
	$(IDN2_LIBS)
endif

# The control socket's request handling (milter/control.c, which the test
# includes) and the socket map's netstring parser (milter/netstring.c).
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_control tests/unit/check_netstring
TESTS += tests/unit/check_control tests/unit/check_netstring
tests_unit_check_control_SOURCES = tests/unit/check_control.c \
	milter/ledger_client.c milter/runtime.c
tests_unit_check_control_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) \
	$(IDN2_CFLAGS) $(MEMCACHED_CFLAGS) -pthread
tests_unit_check_control_LDADD = milter/libondemand.a $(CHECK_LIBS) \
	$(MEMCACHED_LIBS) $(IDN2_LIBS) -lpthread
tests_unit_check_netstring_SOURCES = tests/unit/check_netstring.c
tests_unit_check_netstring_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_netstring_LDADD = milter/libondemand.a $(CHECK_LIBS)
endif
