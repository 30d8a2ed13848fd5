# SPDX-License-Identifier: BSD-2-Clause
#
# Benchmarks, run by hand and not part of make check. Like the end-to-end
# tests they need root, sendmail-bin, sendmail-cf, m4 and unshare. The
# results and the machine behind them are in docs/PERFORMANCE.md.

EXTRA_DIST += tests/bench/release_bench.py tests/bench/load_bench.py \
	docs/PERFORMANCE.md

# SMTP load generator for load_bench.py. It is built with the rest so that
# it keeps compiling, but nothing installs or runs it outside the benchmarks.
noinst_PROGRAMS += tests/bench/smtp-load
tests_bench_smtp_load_SOURCES = tests/bench/smtp_load.c
tests_bench_smtp_load_CFLAGS = $(AM_CFLAGS) -pthread
tests_bench_smtp_load_LDADD = -lpthread

# Times ETRN releases against sendmail's own ETRN queue run. BENCH_ARGS
# passes options, e.g. make bench-release BENCH_ARGS=--quick for a smoke run
# of about a minute; the full default run fills a queue of 100,000 messages
# and takes about 16 minutes.
bench-release: milter/ondemand-milter
	$(AM_TESTS_ENVIRONMENT) $(PYTHON3) \
		$(srcdir)/tests/bench/release_bench.py $(BENCH_ARGS)

.PHONY: bench-release

# Messages per second through sendmail with and without the filter, in
# alternating runs, and a soak of 20,000 messages that records the daemon's
# resident memory. On an idle 2-CPU machine they take about 2 minutes and
# under a minute; a busy machine adds up to 60 s of waiting before each
# throughput run. BENCH_ARGS passes options; --help lists them.
bench-throughput: milter/ondemand-milter tests/bench/smtp-load
	$(AM_TESTS_ENVIRONMENT) $(PYTHON3) \
		$(srcdir)/tests/bench/load_bench.py throughput $(BENCH_ARGS)

bench-soak: milter/ondemand-milter tests/bench/smtp-load
	$(AM_TESTS_ENVIRONMENT) $(PYTHON3) \
		$(srcdir)/tests/bench/load_bench.py soak $(BENCH_ARGS)

.PHONY: bench-throughput bench-soak

# Times ETRN releases through the shared hold ledger in memcached against
# the queue-scan fallback and sendmail's own ETRN, and the per-hold cost of
# the ledger. Needs memcached too. BENCH_ARGS passes options, e.g.
# make bench-ledger BENCH_ARGS=--quick for a smoke run of about a minute;
# the full default run fills a queue of 100,000 messages and takes about 7
# minutes.
EXTRA_DIST += tests/bench/ledger_bench.py

bench-ledger: milter/ondemand-milter
	$(AM_TESTS_ENVIRONMENT) $(PYTHON3) \
		$(srcdir)/tests/bench/ledger_bench.py $(BENCH_ARGS)

.PHONY: bench-ledger
