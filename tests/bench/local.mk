# SPDX-License-Identifier: BSD-2-Clause
#
# Benchmarks, run by hand and not part of make check. Like the end-to-end
# tests they need root, sendmail-bin, sendmail-cf, m4 and unshare. The
# results and the machine behind them are in docs/PERFORMANCE.md.

EXTRA_DIST += tests/bench/release_bench.py docs/PERFORMANCE.md

# Times ETRN releases against sendmail's own ETRN queue run. BENCH_ARGS
# passes options, e.g. make bench-release BENCH_ARGS=--quick for a smoke run
# of about a minute; the full default run fills a queue of 100,000 messages
# and takes about 16 minutes.
bench-release: milter/ondemand-milter
	$(AM_TESTS_ENVIRONMENT) $(PYTHON3) \
		$(srcdir)/tests/bench/release_bench.py $(BENCH_ARGS)

.PHONY: bench-release
