# SPDX-License-Identifier: BSD-2-Clause
#
# libFuzzer targets for the parsers of outside input; tests/fuzz/README.md
# says what each reads and how to run them.  With ./configure CC=clang
# --enable-fuzzing, "make fuzz" and "make fuzz-smoke" build and run them;
# plain "make" and "make check" never build them.  They link copies of the
# libraries compiled with FUZZ_CFLAGS (coverage for libFuzzer, ASan and
# UBSan), so every other program is built as without the switch.

fuzz_programs = \
	tests/fuzz/fuzz-cf \
	tests/fuzz/fuzz-config \
	tests/fuzz/fuzz-control \
	tests/fuzz/fuzz-ctl \
	tests/fuzz/fuzz-domain \
	tests/fuzz/fuzz-helper-proto \
	tests/fuzz/fuzz-mailq \
	tests/fuzz/fuzz-rcpt \
	tests/fuzz/fuzz-smtp-reply \
	tests/fuzz/fuzz-socketmap

# Seconds each target runs: "make fuzz" looks for new bugs, "make
# fuzz-smoke" replays the seed corpus and fuzzes briefly.
FUZZ_TIME = 300
FUZZ_SMOKE_TIME = 20

EXTRA_DIST += \
	tests/fuzz/README.md \
	tests/fuzz/corpus \
	tests/fuzz/dict
dist_noinst_SCRIPTS += tests/fuzz/run-fuzz

if ENABLE_FUZZING
EXTRA_LIBRARIES = \
	tests/fuzz/libcfedit-fuzz.a \
	tests/fuzz/libetrn-fuzz.a \
	tests/fuzz/libondemand-fuzz.a
EXTRA_PROGRAMS = $(fuzz_programs)

tests_fuzz_libondemand_fuzz_a_SOURCES = $(milter_libondemand_a_SOURCES)
tests_fuzz_libondemand_fuzz_a_CFLAGS = $(milter_libondemand_a_CFLAGS) \
	$(FUZZ_CFLAGS)
tests_fuzz_libcfedit_fuzz_a_SOURCES = $(sendmail_cf_libcfedit_a_SOURCES)
tests_fuzz_libcfedit_fuzz_a_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_libetrn_fuzz_a_SOURCES = $(contrib_libetrn_a_SOURCES)
tests_fuzz_libetrn_fuzz_a_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)

fuzz_common = tests/fuzz/fuzz.h tests/fuzz/fuzz_util.c
fuzz_daemon = tests/fuzz/fuzz_daemon.c tests/fuzz/fuzz_daemon.h \
	milter/runtime.c
fuzz_cflags = $(AM_CFLAGS) $(FUZZ_CFLAGS) $(IDN2_CFLAGS)
fuzz_ondemand_ldadd = tests/fuzz/libondemand-fuzz.a $(IDN2_LIBS) \
	$(MEMCACHED_LIBS)

tests_fuzz_fuzz_cf_SOURCES = tests/fuzz/fuzz_cf.c $(fuzz_common)
tests_fuzz_fuzz_cf_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/sendmail-cf
tests_fuzz_fuzz_cf_CFLAGS = $(fuzz_cflags)
tests_fuzz_fuzz_cf_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_cf_LDADD = tests/fuzz/libcfedit-fuzz.a

tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c $(fuzz_common)
tests_fuzz_fuzz_config_CFLAGS = $(fuzz_cflags)
tests_fuzz_fuzz_config_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_config_LDADD = $(fuzz_ondemand_ldadd)

tests_fuzz_fuzz_control_SOURCES = tests/fuzz/fuzz_control.c \
	$(fuzz_common) $(fuzz_daemon) milter/ledger_client.c
tests_fuzz_fuzz_control_CFLAGS = $(fuzz_cflags) $(MEMCACHED_CFLAGS) -pthread
tests_fuzz_fuzz_control_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_control_LDADD = $(fuzz_ondemand_ldadd) -lpthread

tests_fuzz_fuzz_ctl_SOURCES = tests/fuzz/fuzz_ctl.c $(fuzz_common)
tests_fuzz_fuzz_ctl_CFLAGS = $(fuzz_cflags) -pthread
tests_fuzz_fuzz_ctl_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_ctl_LDADD = $(fuzz_ondemand_ldadd) -lpthread

tests_fuzz_fuzz_domain_SOURCES = tests/fuzz/fuzz_domain.c $(fuzz_common)
tests_fuzz_fuzz_domain_CFLAGS = $(fuzz_cflags)
tests_fuzz_fuzz_domain_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_domain_LDADD = $(fuzz_ondemand_ldadd)

tests_fuzz_fuzz_helper_proto_SOURCES = tests/fuzz/fuzz_helper_proto.c \
	$(fuzz_common)
tests_fuzz_fuzz_helper_proto_CFLAGS = $(fuzz_cflags)
tests_fuzz_fuzz_helper_proto_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_helper_proto_LDADD = $(fuzz_ondemand_ldadd)

tests_fuzz_fuzz_mailq_SOURCES = tests/fuzz/fuzz_mailq.c $(fuzz_common)
tests_fuzz_fuzz_mailq_CFLAGS = $(fuzz_cflags)
tests_fuzz_fuzz_mailq_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_mailq_LDADD = $(fuzz_ondemand_ldadd)

tests_fuzz_fuzz_rcpt_SOURCES = tests/fuzz/fuzz_rcpt.c $(fuzz_common)
tests_fuzz_fuzz_rcpt_CFLAGS = $(fuzz_cflags)
tests_fuzz_fuzz_rcpt_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_rcpt_LDADD = $(fuzz_ondemand_ldadd)

tests_fuzz_fuzz_smtp_reply_SOURCES = tests/fuzz/fuzz_smtp_reply.c \
	$(fuzz_common)
tests_fuzz_fuzz_smtp_reply_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/contrib
tests_fuzz_fuzz_smtp_reply_CFLAGS = $(fuzz_cflags)
tests_fuzz_fuzz_smtp_reply_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_smtp_reply_LDADD = tests/fuzz/libetrn-fuzz.a

tests_fuzz_fuzz_socketmap_SOURCES = tests/fuzz/fuzz_socketmap.c \
	$(fuzz_common) $(fuzz_daemon)
tests_fuzz_fuzz_socketmap_CFLAGS = $(fuzz_cflags) -pthread
tests_fuzz_fuzz_socketmap_LDFLAGS = $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_socketmap_LDADD = $(fuzz_ondemand_ldadd) -lpthread

fuzz_run = FUZZ_SRCDIR=$(srcdir) $(SHELL) $(srcdir)/tests/fuzz/run-fuzz

fuzz: $(fuzz_programs)
	$(fuzz_run) --time $(FUZZ_TIME) $(fuzz_programs)

fuzz-smoke: $(fuzz_programs)
	$(fuzz_run) --smoke --time $(FUZZ_SMOKE_TIME) $(fuzz_programs)
else
fuzz fuzz-smoke:
	@echo "$@: the fuzz targets are not configured; run ./configure" \
	    "CC=clang --enable-fuzzing (Debian 12: apt-get install clang" \
	    "libclang-rt-14-dev)" >&2; exit 1
endif

.PHONY: fuzz fuzz-smoke

clean-local: fuzz-clean
fuzz-clean:
	rm -rf tests/fuzz/work tests/fuzz/logs
distclean-local: fuzz-distclean
fuzz-distclean:
	rm -rf tests/fuzz/artifacts
.PHONY: fuzz-clean fuzz-distclean
