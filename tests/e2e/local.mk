# SPDX-License-Identifier: BSD-2-Clause
#
# End-to-end tests: Python scripts that run a private sendmail with
# ondemand-milter attached, an SMTP sink and a syslog capture, all on
# 127.0.0.1 inside a private mount namespace (tests/e2e/odtest.py). They need
# root, sendmail-bin, sendmail-cf, m4 and unshare, and exit 77 (skipped)
# without them.

E2E_TESTS = \
	tests/e2e/test_harness.py \
	tests/e2e/test_hold.py \
	tests/e2e/test_mixed.py \
	tests/e2e/test_milter_down.py \
	tests/e2e/test_reload.py \
	tests/e2e/test_etrn.py \
	tests/e2e/test_cf_patched.py \
	tests/e2e/test_memory.py \
	tests/e2e/test_fault_milter.py \
	tests/e2e/test_fault_queue.py \
	tests/e2e/test_hostile.py \
	tests/e2e/test_privilege.py \
	tests/e2e/test_fault_memcached.py \
	tests/e2e/test_ledger.py \
	tests/e2e/test_ledger_hosts.py \
	tests/e2e/test_ledger_concurrency.py

TESTS += $(E2E_TESTS)
# .test is automake's default extension, which other parts of the tree use.
TEST_EXTENSIONS = .test .py
PY_LOG_COMPILER = $(PYTHON3)
# odtest.py finds milter/ondemand-milter through ONDEMAND_BUILDDIR.
AM_TESTS_ENVIRONMENT = \
	ONDEMAND_BUILDDIR='$(abs_top_builddir)'; export ONDEMAND_BUILDDIR;
# make check ONDEMAND_VALGRIND=1 runs ondemand-milter under valgrind's
# memcheck in every end-to-end test (tests/e2e/README.md).
AM_TESTS_ENVIRONMENT += \
	ONDEMAND_VALGRIND='$(ONDEMAND_VALGRIND)'; export ONDEMAND_VALGRIND;

if ENABLE_SANITIZERS
# A sanitizer report aborts the program (exit status 134), which fails the
# test that ran it. Options from the caller's ASAN_OPTIONS or UBSAN_OPTIONS
# come last and override these. odtest.py also fails an end-to-end test
# when ondemand-milter wrote a report to its output.
AM_TESTS_ENVIRONMENT += \
	ONDEMAND_SANITIZERS=1; export ONDEMAND_SANITIZERS; \
	ASAN_OPTIONS="abort_on_error=1:detect_leaks=1$${ASAN_OPTIONS:+:$$ASAN_OPTIONS}"; \
	export ASAN_OPTIONS; \
	UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1$${UBSAN_OPTIONS:+:$$UBSAN_OPTIONS}"; \
	export UBSAN_OPTIONS;
endif

EXTRA_DIST += $(E2E_TESTS) tests/e2e/odtest.py tests/e2e/demo.py \
	tests/e2e/README.md

# The demo shows an operator the hold path on a private sendmail; it needs
# root, like the end-to-end tests.
demo: milter/ondemand-milter
	$(AM_TESTS_ENVIRONMENT) $(PYTHON3) $(srcdir)/tests/e2e/demo.py

.PHONY: demo
