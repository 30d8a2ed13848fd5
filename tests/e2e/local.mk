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
	tests/e2e/test_memory.py

TESTS += $(E2E_TESTS)
# .test is automake's default extension, which other parts of the tree use.
TEST_EXTENSIONS = .test .py
PY_LOG_COMPILER = $(PYTHON3)
# odtest.py finds milter/ondemand-milter through ONDEMAND_BUILDDIR.
AM_TESTS_ENVIRONMENT = \
	ONDEMAND_BUILDDIR='$(abs_top_builddir)'; export ONDEMAND_BUILDDIR;

EXTRA_DIST += $(E2E_TESTS) tests/e2e/odtest.py tests/e2e/demo.py \
	tests/e2e/README.md

# The demo shows an operator the hold path on a private sendmail; it needs
# root, like the end-to-end tests.
demo: milter/ondemand-milter
	$(AM_TESTS_ENVIRONMENT) $(PYTHON3) $(srcdir)/tests/e2e/demo.py

.PHONY: demo
