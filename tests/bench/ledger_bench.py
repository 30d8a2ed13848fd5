#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Benchmark releases through the shared hold ledger in memcached.

The script runs three private sendmail daemons on 127.0.0.1 through the
end-to-end harness in tests/e2e/odtest.py, each with FEATURE(`ondemand'),
delivery mode queueonly, its own ondemand-milter and its own SMTP sink:

- "full": memcached and a big queue. It is filled over SMTP with --queued
  normal messages for 50 other domains (not held) and --held messages for
  each of --domains on-demand domains, held by the milter, so the milter
  records every hold in memcached as it happens;
- "empty": memcached and an otherwise empty queue, for the baseline and for
  the ledger side of the per-hold cost;
- "plain": no memcached, for the other side of the per-hold cost.

Release times run from sending `ETRN domain` to the last of the domain's
messages arriving at the sink, for each sink kind (see release_bench.py):

- baseline: the ledger release on the empty queue. Each measurement holds
  --held messages for a new domain first, so the queue holds only them;
- ledger: the ledger release of one on-demand domain on the full queue. The
  milter logs selection=ledger and runs `sendmail -qQ -qI<ID>...`;
- fallback: the same on the full queue while the ledger cannot vouch for
  the domain, so the milter selects by quarantine reason
  (selection=reason, one `sendmail -qQ[DOMAIN]` run that opens every held
  queue file). --fallback stop stops memcached and waits until the milter
  has noticed; --fallback flush empties memcached just before the ETRN;
- classic: sendmail's own ETRN for --held normally queued messages of a
  domain that is not on-demand, as in release_bench.py.

Each domain can be released only once, so every repetition uses new
domains, and the medians are printed. The rounds interleave the four kinds
of release, so that load from other work on the machine falls on each.
Then single sendmail runs with the release helper's arguments, the
delivery runs selecting no message, show what reading the full and the
empty queue costs.

The per-hold cost is measured from outside and from inside. Outside, one
SMTP session at a time sends --hold-samples held messages to the empty
daemon (ledger) and as many to the plain daemon, in alternating batches.
The time from sending the final dot to the 250 reply covers the milter's
end-of-message work, which records the hold in memcached before it
replies, and the two daemons' distributions are compared. Inside,
memcached's own log gives the span of each ledger update (MemcachedWatch),
and its counters give the commands and octets per hold. The same is
repeated for a domain that already holds --large-entry messages, because
every hold reads and rewrites the domain's whole entry.

Run it as root from the build directory with `make bench-ledger`, or
directly with ONDEMAND_BUILDDIR set. `--quick` is a smoke run of about a
minute. Exits 0 when every measurement finished (whether or not the
target is met), 1 when a step failed or timed out, and 77 when the machine
lacks root, sendmail, m4 or memcached.
"""

import argparse
import contextlib
import json
import os
import re
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(BENCH_DIR))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "e2e"))
sys.path.insert(0, BENCH_DIR)

import odtest  # noqa: E402
import release_bench  # noqa: E402
from release_bench import BenchFailure, log, positive  # noqa: E402

HOST_ID = "mx1.ledger-bench.test"
SENDER = "bench@client.test"
DEFAULT_RELEASE_RUNS = 4
# Messages per held domain in the per-hold measurement, as in the full
# queue, so that the entries it writes grow from 0 to 99 lines.
HOLDS_PER_DOMAIN = 100
# Timed holds per batch. The two daemons take turns batch by batch.
HOLD_BATCH = 20
# Target: the ledger release on the full queue within this factor of the
# same release on an empty queue (medians, per sink kind).
QUEUE_SIZE_FACTOR_MAX = 1.5
# A release's sendmail runs and its queue listing are children of the
# release helper. Between two of them the helper has none for a moment, so
# "idle" means none for this long.
HELPER_IDLE_SECONDS = 0.3


def held_domain(number):
    return f"od{number}.ledger-bench.test"


def baseline_domain(number):
    return f"base{number}.ledger-bench.test"


def hold_cost_domain(number):
    return f"hold{number}.ledger-bench.test"


LARGE_ENTRY_DOMAIN = "large.ledger-bench.test"


# ---------------------------------------------------------------------------
# memcached's text protocol, for flush_all and the counters


def memcached_command(port, command, timeout=10):
    """Send one command and return the reply up to its last line."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=timeout) as conn:
        conn.sendall(command.encode("ascii") + b"\r\n")
        data = b""
        while not data.endswith((b"END\r\n", b"OK\r\n", b"ERROR\r\n")):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("ascii", "replace")


def memcached_stats(port):
    """Return memcached's general counters as a dict of integers."""
    stats = {}
    for line in memcached_command(port, "stats").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            stats[parts[1]] = int(parts[2])
    return stats


class MemcachedWatch:
    """memcached's own log of reads and writes ("watch fetchers mutations"), with its time stamps.

    memcached stamps each line with the time it handled the command, in
    microseconds. The lines of one hold run from the read of the domain's
    entry to the last write of the hold. That span measures the ledger
    update from inside: the transfer of the entry, the milter's decoding
    and encoding of it, and the transfer of the write. It leaves out the
    milter's steps before its read arrives and after the last reply
    leaves, which take about two one-way trips on loopback.
    """

    # memcached 1.6 prints the microseconds without leading zeros
    # ("ts=1796425052.98007" comes 4 ms before "ts=1796425052.102744"), so
    # the two parts are read as integers.
    LINE = re.compile(r"^ts=(?P<seconds>\d+)\.(?P<microseconds>\d+) gid=\d+ "
                      r"type=(?P<type>\w+) key=(?P<key>\S+) ")

    def __init__(self, port, timeout):
        self.port = port
        self.timeout = timeout
        self.events = []
        self.other_lines = []
        self._socket = None
        self._thread = None

    def start(self):
        self._socket = socket.create_connection(("127.0.0.1", self.port),
                                                timeout=self.timeout)
        self._socket.sendall(b"watch fetchers mutations\r\n")
        reply = self._socket.recv(64)
        if not reply.startswith(b"OK"):
            raise BenchFailure(f"memcached on 127.0.0.1:{self.port} refused "
                               f"the watch command: {reply!r}")
        self._socket.settimeout(None)
        self._thread = threading.Thread(target=self._receive,
                                        name="memcached-watch", daemon=True)
        self._thread.start()
        return self

    def _receive(self):
        pending = b""
        while True:
            try:
                chunk = self._socket.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("ascii", "replace").rstrip("\r")
                match = self.LINE.match(line)
                if match:
                    # memcached escapes the key as in a URL (":" is %3A).
                    stamp = (int(match.group("seconds"))
                             + int(match.group("microseconds")) / 1e6)
                    self.events.append((stamp,
                                        match.group("type"),
                                        urllib.parse.unquote(
                                            match.group("key"))))
                elif line:
                    self.other_lines.append(line)

    def stop(self):
        # Give memcached a moment to send the last lines.
        time.sleep(0.2)
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(5)

    def hold_spans(self, entry_prefix):
        """Return the seconds from the first read to the last write of each hold.

        A hold starts with a read of an entry key (entry_prefix) that comes
        after a write. memcached logs its own read before each add or
        compare-and-swap, and the first hold of a domain also writes the
        domain list, so neither of these starts a new hold.
        """
        spans = []
        start = last_store = None
        for stamp, kind, key in self.events:
            if kind == "item_get" and key.startswith(entry_prefix) and (
                    start is None or last_store is not None):
                if start is not None:
                    spans.append(last_store - start)
                start, last_store = stamp, None
            elif kind == "item_store" and start is not None:
                last_store = stamp
        if start is not None and last_store is not None:
            spans.append(last_store - start)
        return spans


# ---------------------------------------------------------------------------
# Environments


class BenchEnvironment:
    """One sendmail with FEATURE(`ondemand'), its milter and BenchSink, and optionally memcached.

    Several of them run at once, so they share one syslog capture on
    /dev/log, and each waits only for lines from its own milter's PID.
    """

    def __init__(self, name, domains, syslog, options, memcached=False,
                 milter_config=None):
        self.name = name
        self.options = options
        self.env = odtest.Environment(domains=domains,
                                      delivery_mode="queueonly")
        self.sink = release_bench.BenchSink(port=self.env.sink.port)
        self.env.sink = self.sink
        self.syslog = syslog
        self.sendmail = self.env.sendmail
        self.milter = self.env.milter
        self.memcached = None
        self.memcached_port = None
        workdir = self.env.workdir
        odtest.use_ondemand_feature(self.env,
                                    os.path.join(workdir, "socketmap.sock"))
        config = {
            "ControlSocket": os.path.join(workdir, "control.sock"),
            "ReleaseRuns": str(options.runs),
            "EtrnMinInterval": "0s",
        }
        if memcached:
            self.memcached_port = odtest.free_port()
            config.update({
                "Memcached": f"127.0.0.1:{self.memcached_port}",
                "HostId": HOST_ID,
                # The milter probes a failed server again after 1 s, not
                # the default 10 s, so the fallback measurement sees a
                # restarted memcached at the ledger thread's next poll.
                "MemcachedRetry": "1s",
            })
        config.update(milter_config or {})
        self.milter.config.update(config)

    @property
    def port(self):
        return self.sendmail.port

    @property
    def queue_dir(self):
        return self.sendmail.queue_dir

    def start(self):
        """Start memcached first, because the milter syncs the ledger at start, then the rest."""
        timeout = self.options.timeout
        if self.memcached_port is not None:
            self.start_memcached()
        # The steps of odtest.Environment.start() without its own syslog
        # capture, because a second capture would take /dev/log from the
        # first.
        self.env.syslog = self.syslog
        since = self.syslog.mark()
        with odtest.ondemand_cf_tree(self.env.workdir):
            self.sink.start()
            self.sendmail.write_config()
            self.milter.start(timeout)
            self.sendmail.start(timeout)
        self.wait_for_line(r"^hold index built from the queue", since)
        if self.memcached_port is not None:
            self.wait_for_line(r"^ledger: re-synced from the queue", since)
        return self

    def start_memcached(self):
        self.memcached = odtest.Memcached(self.env.workdir,
                                          port=self.memcached_port)
        self.memcached.start(self.options.timeout)

    def stop_memcached(self):
        if self.memcached is not None:
            self.memcached.stop(self.options.timeout)
            self.memcached = None

    def close(self):
        """Stop every process of this environment, but leave the shared syslog capture open."""
        errors = []
        # memcached writes its output into the directory that env.close()
        # removes, so it stops first.
        try:
            self.stop_memcached()
        except (OSError, subprocess.SubprocessError) as error:
            errors.append(f"memcached: {error}")
        try:
            self.env.syslog = None
            self.env.close()
        except (odtest.HarnessError, odtest.CheckerReport) as error:
            errors.append(str(error))
        if errors:
            raise BenchFailure(f"closing the {self.name} environment "
                               f"failed: {'; '.join(errors)}")

    def wait_for_line(self, pattern, since, timeout=None):
        """Wait for a line of this milter matching pattern, from syslog position since on."""
        timeout = self.options.timeout if timeout is None else timeout
        regex = re.compile(pattern)
        pid = self.milter.process.pid
        deadline = time.monotonic() + timeout
        while True:
            for line in self.syslog.lines(since, ident=odtest.MILTER_IDENT):
                if line.pid == pid:
                    match = regex.search(line.message)
                    if match:
                        return line, match
            if time.monotonic() > deadline:
                raise BenchFailure(
                    f"{self.name}: no line from ondemand-milter (pid {pid}) "
                    f"matching {pattern!r} within {timeout:g} s")
            time.sleep(0.02)

    def wait_until_helper_idle(self):
        """Wait until the release helper has had no sendmail run for HELPER_IDLE_SECONDS."""
        helper = odtest.release_helper_pid(self.milter.process.pid)
        deadline = time.monotonic() + self.options.timeout
        idle_since = None
        while True:
            now = time.monotonic()
            if odtest.child_pids(helper):
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= HELPER_IDLE_SECONDS:
                return
            if now > deadline:
                raise BenchFailure(f"{self.name}: the release helper still "
                                   f"runs sendmail after "
                                   f"{self.options.timeout:g} s")
            time.sleep(0.05)

    def hold(self, domain, count, first=0):
        """Hold count messages for domain over parallel SMTP sessions, and return the seconds taken."""
        recipients = [f"m{first + i}@{domain}" for i in range(count)]
        return release_bench.fill(self.port, recipients,
                                  self.options.sessions,
                                  self.options.fill_timeout)

    def held_count(self):
        return release_bench.count_queue_files(self.queue_dir, "hf")

    def wait_for_held(self, count):
        release_bench.wait_for_queue_files(self.queue_dir, "hf", count,
                                           self.options.timeout)


def start_environments(options, syslog):
    """Start the full, empty and plain environments, and return them in that order."""
    full_domains = [held_domain(i) for i in range(1, options.domains + 1)]
    # Domains of the per-hold measurement, in both the empty and the plain
    # daemon, so that they hold the same messages.
    hold_domains = [hold_cost_domain(i) for i in
                    range(1, options.hold_samples // HOLDS_PER_DOMAIN + 2)]
    hold_domains.append(LARGE_ENTRY_DOMAIN)
    baselines = [baseline_domain(i)
                 for i in range(1, options.repeat * len(options.sinks) + 1)]
    environments = []
    try:
        full = BenchEnvironment("full", full_domains, syslog, options,
                                memcached=True)
        environments.append(full)
        # The empty daemon's ledger thread would only add its polling to
        # memcached's counters of the per-hold measurement, so it sleeps
        # after the re-sync at start.
        empty = BenchEnvironment("empty", baselines + hold_domains, syslog,
                                 options, memcached=True,
                                 milter_config={"LedgerPollInterval": "10m"})
        environments.append(empty)
        plain = BenchEnvironment("plain", hold_domains, syslog, options)
        environments.append(plain)
        for environment in environments:
            log(f"starting the {environment.name} environment "
                f"(sendmail on 127.0.0.1:{environment.port}"
                + (f", memcached on 127.0.0.1:{environment.memcached_port})"
                   if environment.memcached_port else ")"))
            environment.start()
    except BaseException:
        close_environments(environments)
        raise
    return environments


def close_environments(environments):
    errors = []
    for environment in environments:
        try:
            environment.close()
        except BenchFailure as error:
            errors.append(str(error))
    if errors:
        raise BenchFailure("; ".join(errors))


# ---------------------------------------------------------------------------
# Releases


def release(environment, domain, held, kind, selection, before_etrn=None):
    """ETRN domain, check that the milter selected its messages by selection, and time the release.

    Returns the seconds from sending ETRN to the last of the held messages
    at the sink, and the seconds until the ETRN reply.
    """
    options = environment.options
    sink = environment.sink
    sink.kind = kind
    expected = sink.count(domain) + held
    held_before = environment.held_count()
    since = environment.syslog.mark()
    if before_etrn is not None:
        before_etrn()

    started = time.monotonic()
    code, text = release_bench.etrn(environment.port, domain,
                                    options.timeout)
    replied = time.monotonic()
    if code != 253 or f"{held} pending" not in text:
        raise BenchFailure(f"{environment.name}: ETRN {domain} with {held} "
                           f"held messages: expected 253 with {held} "
                           f"pending, got {code} {text}")
    last = sink.wait_for_count(domain, expected, options.timeout)

    _, match = environment.wait_for_line(
        rf"^action=release domain={re.escape(domain)} trigger=etrn "
        rf".*selection=(?P<selection>\w+)", since)
    if match.group("selection") != selection:
        raise BenchFailure(f"{environment.name}: the release of {domain} "
                           f"used selection={match.group('selection')}, "
                           f"expected selection={selection}")
    if selection == "ledger":
        line, _ = environment.wait_for_line(
            rf"^action=release-done domain={re.escape(domain)} ", since)
        if f"delivered={held} still_held=0" not in line.message:
            raise BenchFailure(f"{environment.name}: the release did not "
                               f"deliver all {held} messages: {line}")
    environment.wait_for_held(held_before - held)
    environment.wait_until_helper_idle()
    return {"seconds": last - started, "reply": replied - started}


def measure_baseline(empty, number, held, kind):
    """Hold `held` messages for a new domain on the empty queue, and time their ledger release."""
    domain = baseline_domain(number)
    empty.hold(domain, held)
    empty.wait_for_held(held)
    return dict(release(empty, domain, held, kind, "ledger"), domain=domain)


def measure_ledger(full, domain, held, kind):
    return dict(release(full, domain, held, kind, "ledger"), domain=domain)


def measure_fallback(full, domain, held, kind, method):
    """Release domain while the ledger cannot vouch for it, then bring the ledger back."""
    if method == "stop":
        since = full.syslog.mark()
        full.stop_memcached()
        # The ledger thread notices at its next check of this host's mark.
        full.wait_for_line(r"^ledger: memcached server \S+ failed", since)
        result = release(full, domain, held, kind, "reason")
        since = full.syslog.mark()
        full.start_memcached()
    else:
        def flush():
            reply = memcached_command(full.memcached_port, "flush_all")
            if not reply.startswith("OK"):
                raise BenchFailure(f"memcached flush_all replied {reply!r}")
        since = full.syslog.mark()
        result = release(full, domain, held, kind, "reason",
                         before_etrn=flush)
    # Every later ledger release needs the re-synced ledger.
    full.wait_for_line(r"^ledger: re-synced from the queue", since)
    return dict(result, domain=domain)


def median_of(samples):
    """Return the median seconds and reply of samples, with every sample."""
    return {"seconds": statistics.median(s["seconds"] for s in samples),
            "reply": statistics.median(s["reply"] for s in samples),
            "samples": samples}


def run_releases(options, full, empty, classic_bench):
    """Measure the four kinds of release, round by round, and return the medians per sink kind."""
    samples = {kind: {"baseline": [], "ledger": [], "fallback": [],
                      "classic": []} for kind in options.sinks}
    domains = iter(range(1, options.domains + 1))
    baseline_number = 0
    for round_number in range(1, options.repeat + 1):
        for kind in options.sinks:
            prefix = f"round {round_number}/{options.repeat} sink={kind}"
            cell = samples[kind]

            baseline_number += 1
            result = measure_baseline(empty, baseline_number, options.held,
                                      kind)
            cell["baseline"].append(result)
            log(f"{prefix}: baseline (empty queue) {result['seconds']:.3f} s")

            result = measure_ledger(full, held_domain(next(domains)),
                                    options.held, kind)
            cell["ledger"].append(result)
            log(f"{prefix}: ledger {result['seconds']:.3f} s")

            result = measure_fallback(full, held_domain(next(domains)),
                                      options.held, kind, options.fallback)
            cell["fallback"].append(result)
            log(f"{prefix}: fallback {result['seconds']:.3f} s")

            result = classic_bench.measure_classic(options.held, kind)
            cell["classic"].append(result)
            log(f"{prefix}: classic ETRN {result['seconds']:.3f} s")
    return {kind: {name: median_of(values) for name, values in cells.items()}
            for kind, cells in samples.items()}


# ---------------------------------------------------------------------------
# Selection cost of one sendmail run

# The release helper's argument lists (milter/helper.c). The three delivery
# runs are changed to select nothing, and the listing lists every held
# message as after each release. sendmail's queue IDs use only 0-9, A-Z and a-x (QueueIdChars in
# sendmail's queue.c), so no ID contains "z", and nobody holds mail for
# NO_DOMAIN. The classic ETRN is a -qR run inside the daemon, and a -qR run
# from the command line selects in the same way.
NO_ID = "zzzzzzzz"
NO_DOMAIN = "nosuch.ledger-bench.test"
SELECTION_RUNS = (
    ("ledger", "-qQ -qI<ID>",
     ["-qQ", f"-qI{NO_ID}", "-v", "-O", "MaxQueueRunSize=0"]),
    ("fallback", "-qQ[DOMAIN]",
     [f"-qQ[{NO_DOMAIN}]", "-v", "-O", "MaxQueueRunSize=0"]),
    ("classic", "-qRDOMAIN", [f"-qR{NO_DOMAIN}", "-v"]),
    ("listing", "-bp -qQ", ["-bp", "-qQ", "-O", "MaxQueueRunSize=0"]),
)


def measure_selection_runs(environment, repeat):
    """Time each run of SELECTION_RUNS `repeat` times, and return the median seconds of each."""
    medians = {}
    for name, _, args in SELECTION_RUNS:
        seconds = []
        for _ in range(repeat):
            started = time.monotonic()
            environment.sendmail.run(*args, timeout=environment.options.timeout)
            seconds.append(time.monotonic() - started)
        medians[name] = {"seconds": statistics.median(seconds),
                         "samples": seconds}
    return medians


# ---------------------------------------------------------------------------
# Per-hold cost


def timed_holds(port, domains, first, count):
    """Send count held messages over one SMTP session, and return the timings in seconds.

    Message number n goes to domains[n // HOLDS_PER_DOMAIN]. Each timing
    pair is (whole transaction from MAIL to the final reply, final dot to
    the final reply).
    """
    timings = []
    client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    try:
        client.ehlo("client.ondemand.test")
        for number in range(first, first + count):
            domain = domains[min(number // HOLDS_PER_DOMAIN,
                                 len(domains) - 1)]
            recipient = f"t{number}@{domain}"
            data = release_bench.message_bytes(recipient, number) + b".\r\n"
            started = time.perf_counter()
            for step, (code, text) in (
                    ("MAIL", client.mail(SENDER)),
                    ("RCPT", client.rcpt(recipient))):
                if code != 250:
                    raise BenchFailure(f"{step} for {recipient}: {code} "
                                       f"{text.decode('utf-8', 'replace')}")
            code, text = client.docmd("DATA")
            if code != 354:
                raise BenchFailure(f"DATA for {recipient}: {code} "
                                   f"{text.decode('utf-8', 'replace')}")
            dot = time.perf_counter()
            client.send(data)
            code, text = client.getreply()
            done = time.perf_counter()
            if code != 250:
                raise BenchFailure(f"end of data for {recipient}: {code} "
                                   f"{text.decode('utf-8', 'replace')}")
            timings.append((done - started, done - dot))
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()
    return timings


def percentile(values, fraction):
    """Return the nearest-rank percentile of values, fraction between 0 and 1."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def distribution(values):
    """Return median, 99th percentile and mean of values in milliseconds."""
    return {"median_ms": statistics.median(values) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "mean_ms": statistics.fmean(values) * 1000,
            "count": len(values)}


def compare_holds(empty, plain, domains, samples, label, first=0):
    """Time samples holds on each daemon in alternating batches, and return both sides' figures."""
    timings = {"ledger": [], "plain": []}
    before = memcached_stats(empty.memcached_port)
    watch = MemcachedWatch(empty.memcached_port, empty.options.timeout)
    watch.start()
    held_before = {"ledger": empty.held_count(), "plain": plain.held_count()}
    sent = 0
    batch_number = 0
    while sent < samples:
        count = min(HOLD_BATCH, samples - sent)
        order = [("ledger", empty), ("plain", plain)]
        # Alternate which side goes first, so that neither always follows
        # the other's disk writes.
        if batch_number % 2:
            order.reverse()
        for side, environment in order:
            timings[side] += timed_holds(environment.port, domains,
                                         first + sent, count)
        sent += count
        batch_number += 1
    after = memcached_stats(empty.memcached_port)
    watch.stop()
    empty.wait_for_held(held_before["ledger"] + samples)
    plain.wait_for_held(held_before["plain"] + samples)

    result = {"label": label, "samples": samples}
    for side, pairs in timings.items():
        result[side] = {"transaction": distribution([t for t, _ in pairs]),
                        "eom": distribution([e for _, e in pairs])}
    counters = {}
    for name in ("cmd_get", "cmd_set", "cas_hits", "cas_misses",
                 "cas_badval", "bytes_read", "bytes_written",
                 "cmd_touch", "delete_hits", "get_misses"):
        if name in before and name in after:
            counters[name] = (after[name] - before[name]) / samples
    result["memcached_per_hold"] = counters
    spans = watch.hold_spans("ondemand:d:")
    if len(spans) == samples:
        result["memcached_span"] = distribution(spans)
    else:
        # memcached skips watch lines that its watcher does not read in
        # time (it writes "[skipped: N]" instead), and then the holds
        # cannot be told apart.
        result["memcached_span"] = None
        log(f"warning: memcached's watch log shows {len(spans)} ledger "
            f"updates for {samples} holds, so the inside figures are left "
            f"out; lines it did not parse: {watch.other_lines[:3]}")
    return result


def run_hold_costs(options, empty, plain):
    """Measure the per-hold cost on fresh domains, then on a domain with a large entry."""
    results = []
    domains = [hold_cost_domain(i) for i in
               range(1, options.hold_samples // HOLDS_PER_DOMAIN + 2)]
    log(f"per-hold cost: {options.hold_samples} holds on each daemon, "
        f"{HOLDS_PER_DOMAIN} per domain, alternating batches of "
        f"{HOLD_BATCH}")
    results.append(compare_holds(empty, plain, domains, options.hold_samples,
                                 f"domains of up to {HOLDS_PER_DOMAIN} held "
                                 f"messages"))
    # The domain grows from one size to the next, so each fill adds only
    # the difference.
    large_held = 0
    for size in sorted(options.large_entry):
        if size <= large_held:
            continue
        fill_rates = {}
        for side, environment in (("ledger", empty), ("plain", plain)):
            held_before = environment.held_count()
            seconds = environment.hold(LARGE_ENTRY_DOMAIN, size - large_held,
                                       first=10**6 + large_held)
            environment.wait_for_held(held_before + size - large_held)
            fill_rates[side] = (size - large_held) / seconds
            log(f"{environment.name}: held {size - large_held} more "
                f"messages for {LARGE_ENTRY_DOMAIN} over "
                f"{options.sessions} sessions in {seconds:.1f} s "
                f"({fill_rates[side]:.0f} messages/s)")
        samples = options.large_samples
        log(f"per-hold cost: {samples} holds on each daemon for a domain "
            f"that already holds {size}")
        result = compare_holds(empty, plain, [LARGE_ENTRY_DOMAIN], samples,
                               f"a domain that holds {size} messages",
                               first=10**7 + large_held)
        result["entry_size"] = size
        result["parallel_fill_rate"] = fill_rates
        results.append(result)
        large_held = size + samples
    return results


# ---------------------------------------------------------------------------
# Load average during the run


class LoadSampler:
    """Sample the 1-minute load average every few seconds in a thread."""

    def __init__(self, interval=5.0):
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler",
                                        daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(self.interval + 1)

    def summary(self):
        if not self.samples:
            return {}
        return {"min": min(self.samples), "median":
                statistics.median(self.samples), "max": max(self.samples),
                "samples": len(self.samples)}


# ---------------------------------------------------------------------------
# Report


def print_release_table(releases, options):
    print()
    print(f"Release of one domain's {options.held} held messages: seconds "
          f"from ETRN to the last message at the sink, median of "
          f"{options.repeat} (ReleaseRuns {options.runs}, "
          f"{options.queued} normal and {options.domains} x {options.held} "
          f"held messages in the full queue)")

    header = (f"{'sink':<9}{'baseline':>10}{'ledger':>10}{'fallback':>10}"
              f"{'classic':>10}{'ledger/baseline':>17}"
              f"{'fallback/ledger':>17}{'classic/ledger':>16}")
    print(header)
    print("-" * len(header))
    for kind, cells in releases.items():
        baseline = cells["baseline"]["seconds"]
        ledger = cells["ledger"]["seconds"]
        fallback = cells["fallback"]["seconds"]
        classic = cells["classic"]["seconds"]
        print(f"{kind:<9}{baseline:>10.3f}{ledger:>10.3f}{fallback:>10.3f}"
              f"{classic:>10.3f}{ledger / baseline:>16.2f}x"
              f"{fallback / ledger:>16.2f}x{classic / ledger:>15.2f}x")

    print()
    print("ETRN reply, median ms:")
    for kind, cells in releases.items():
        print(f"  {kind:<9}" + "  ".join(
            f"{name} {cells[name]['reply'] * 1000:.0f}"
            for name in ("baseline", "ledger", "fallback", "classic")))

    print()
    print("Samples, seconds:")
    for kind, cells in releases.items():
        for name, cell in cells.items():
            values = ", ".join(f"{s['seconds']:.3f}" for s in cell["samples"])
            print(f"  {kind:<9}{name:<9} {values}")


def evaluate_target(releases):
    """Print whether the ledger release stayed within QUEUE_SIZE_FACTOR_MAX of the baseline."""
    statuses = []
    print()
    print(f"Target: ledger release on the full queue within "
          f"{QUEUE_SIZE_FACTOR_MAX}x of the baseline")
    for kind, cells in releases.items():
        ratio = cells["ledger"]["seconds"] / cells["baseline"]["seconds"]
        status = "met" if ratio <= QUEUE_SIZE_FACTOR_MAX else "NOT met"
        print(f"  sink={kind}: {ratio:.2f}x {status}")
        statuses.append({"sink": kind, "ratio": ratio, "status": status})
    return statuses


def print_selection_runs(selection, options):
    print()
    print(f"One sendmail run as each kind of release runs it, the delivery "
          f"runs selecting no message and the listing every held one: "
          f"seconds, median of {options.repeat}")
    print(f"  {'selection':<28}{'full queue':>11}{'empty queue':>12}")
    for name, text, _ in SELECTION_RUNS:
        print(f"  {name + ': ' + text:<28}"
              f"{selection['full'][name]['seconds']:>11.3f}"
              f"{selection['empty'][name]['seconds']:>12.3f}")


HOLD_METHOD = (
    "Method: one SMTP session per batch sends held messages one after "
    "another, to the daemon with memcached (ledger) and to the same daemon "
    "without it (plain), in alternating batches of {batch}. 'eom' is the "
    "time from sending the final dot to the 250 reply, which covers the "
    "milter's end-of-message work; the ledger update runs there, before "
    "the reply. The cost of the ledger update is estimated as the "
    "difference of the two sides' medians and of their 99th percentiles "
    "(nearest rank), not measured per hold. memcached's counters give the "
    "commands and octets per hold on the ledger side.")


def print_hold_costs(hold_costs):
    print()
    print(HOLD_METHOD.format(batch=HOLD_BATCH))
    for result in hold_costs:
        print()
        print(f"Per-hold cost, {result['label']}, {result['samples']} holds "
              f"per side:")
        header = (f"  {'':<22}{'median ms':>10}{'p99 ms':>10}"
                  f"{'mean ms':>10}")
        print(header)
        for phase in ("eom", "transaction"):
            for side in ("ledger", "plain"):
                figures = result[side][phase]
                print(f"  {phase + ', ' + side:<22}"
                      f"{figures['median_ms']:>10.3f}"
                      f"{figures['p99_ms']:>10.3f}"
                      f"{figures['mean_ms']:>10.3f}")
            ledger, plain = result["ledger"][phase], result["plain"][phase]
            print(f"  {phase + ', difference':<22}"
                  f"{ledger['median_ms'] - plain['median_ms']:>10.3f}"
                  f"{ledger['p99_ms'] - plain['p99_ms']:>10.3f}"
                  f"{ledger['mean_ms'] - plain['mean_ms']:>10.3f}")
        span = result["memcached_span"]
        if span is None:
            print(f"  {'ledger update, inside':<22}  not measured (the "
                  f"watch log was incomplete)")
        else:
            print(f"  {'ledger update, inside':<22}{span['median_ms']:>10.3f}"
                  f"{span['p99_ms']:>10.3f}{span['mean_ms']:>10.3f}")
        counters = result["memcached_per_hold"]
        print("  memcached per hold: " + ", ".join(
            f"{name} {value:.2f}" for name, value in counters.items()
            if value))
        if "parallel_fill_rate" in result:
            rates = result["parallel_fill_rate"]
            print(f"  filling that domain over parallel sessions: "
                  f"{rates['ledger']:.0f} messages/s with the ledger, "
                  f"{rates['plain']:.0f} without")


def machine_description():
    machine = release_bench.machine_description()
    machine["cpu_model"] = release_bench.cpu_model()
    with open("/proc/version", encoding="utf-8") as version:
        machine["kernel_version"] = version.read().strip()
    detect = odtest.find_tool("systemd-detect-virt")
    if detect:
        result = subprocess.run([detect], capture_output=True, text=True,
                                timeout=10, check=False)
        machine["virtualization"] = result.stdout.strip() or "none"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run([odtest.find_tool("memcached"), "-V"],
                                capture_output=True, text=True, timeout=10,
                                check=False)
        machine["memcached"] = result.stdout.strip()
    return machine


# ---------------------------------------------------------------------------
# Command line


def not_negative(text):
    if text.strip() == "0":
        return 0
    return positive(text)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Time ETRN releases through the shared hold ledger in "
        "memcached against the queue-scan fallback and sendmail's own ETRN, "
        "and the per-hold cost of the ledger, on private sendmail daemons "
        "on 127.0.0.1. Needs root.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run of about a minute: 2,000 queued, "
                        "4 domains of 20 held, one round, 200 timed holds, "
                        "and 50 for a domain that holds 300")
    parser.add_argument("--queued", type=not_negative, default=100_000,
                        help="normal messages in the full queue (default "
                        "100000)")
    parser.add_argument("--domains", type=positive, default=50,
                        help="on-demand domains held in the full queue "
                        "(default 50); each round uses two per sink kind")
    parser.add_argument("--held", type=positive, default=100,
                        help="held messages per domain, and messages per "
                        "release (default 100)")
    parser.add_argument("--repeat", type=positive, default=5,
                        help="rounds; each measures every kind of release "
                        "once per sink kind, and medians are printed "
                        "(default 5)")
    parser.add_argument("--sinks", default="normal,quickack",
                        help="sink kinds, comma-separated: normal, fast, "
                        "quickack (default normal,quickack)")
    parser.add_argument("--runs", type=positive, default=DEFAULT_RELEASE_RUNS,
                        help="ReleaseRuns of the daemons (default "
                        f"{DEFAULT_RELEASE_RUNS})")
    parser.add_argument("--fallback", choices=("stop", "flush"),
                        default="stop",
                        help="how the fallback release loses the ledger: "
                        "stop memcached and wait until the milter notices, "
                        "or flush memcached just before the ETRN (default "
                        "stop)")
    parser.add_argument("--hold-samples", type=not_negative, default=1000,
                        help="timed holds per side for the per-hold cost; "
                        "0 skips the per-hold measurement, that of "
                        "--large-entry too (default 1000)")
    parser.add_argument("--large-entry", type=release_bench.size_list,
                        default=[1000, 3000],
                        help="messages held for one domain before timing "
                        "holds to it, comma-separated sizes in increasing "
                        "order, 0 to skip (default 1000,3000)")
    parser.add_argument("--large-samples", type=positive, default=200,
                        help="timed holds per side for that domain "
                        "(default 200)")
    release_bench.add_fill_options(parser)
    options = parser.parse_args(argv)

    if options.quick:
        options.queued = 2000
        options.domains = 4
        options.held = 20
        options.repeat = 1
        options.hold_samples = 200
        options.large_entry = [300]
        options.large_samples = 50

    options.sinks = [kind.strip() for kind in options.sinks.split(",")]
    for kind in options.sinks:
        if kind not in release_bench.SINK_KINDS:
            parser.error(f"invalid sink kind {kind!r}: expected normal, "
                         "fast or quickack")
    if not 1 <= options.runs <= 32:
        parser.error(f"invalid --runs {options.runs}: expected 1 to 32")
    needed = 2 * options.repeat * len(options.sinks)
    if options.domains < needed:
        parser.error(f"--domains {options.domains} is too few: --repeat "
                     f"{options.repeat} with {len(options.sinks)} sink kinds "
                     f"releases {needed} domains, and each only once; raise "
                     f"--domains or lower --repeat")
    return options


def run_benchmark(options):
    syslog = odtest.SyslogCapture()
    environments = []
    try:
        environments = start_environments(options, syslog)
        full, empty, plain = environments
        classic_bench = release_bench.Bench(full.env, full.sink, options)
        fill = classic_bench.grow_queue(options.queued)
        log(f"holding {options.domains} x {options.held} messages in the "
            f"full queue over {options.sessions} SMTP sessions")
        # One fill for every domain, the domains taking turns, as mail
        # for many customers arrives.
        recipients = [f"m{i}@{held_domain(number)}"
                      for i in range(options.held)
                      for number in range(1, options.domains + 1)]
        held_seconds = release_bench.fill(full.port, recipients,
                                          options.sessions,
                                          options.fill_timeout)
        full.wait_for_held(options.domains * options.held)
        log(f"held {len(recipients)} messages in {held_seconds:.1f} s "
            f"({len(recipients) / held_seconds:.0f} messages/s)")
        setup = {"normal_fill": fill, "held_fill_seconds": held_seconds}

        releases = run_releases(options, full, empty, classic_bench)
        log("timing single sendmail runs with the release helper's arguments")
        selection = {"full": measure_selection_runs(full, options.repeat),
                     "empty": measure_selection_runs(empty, options.repeat)}
        hold_costs = []
        if options.hold_samples > 0:
            hold_costs = run_hold_costs(options, empty, plain)
    except BaseException:
        print_log_tail(syslog, environments)
        raise
    finally:
        try:
            close_environments(environments)
        finally:
            syslog.close()
    return setup, releases, selection, hold_costs


def print_log_tail(syslog, environments, count=40):
    """Print the last milter lines of each environment, to explain a failure."""
    for environment in environments:
        pid = environment.milter.process.pid if environment.milter.process \
            else None
        lines = [line for line in syslog.lines(ident=odtest.MILTER_IDENT)
                 if line.pid == pid][-count:]
        print(f"last ondemand-milter lines of the {environment.name} "
              f"environment:", file=sys.stderr)
        for line in lines:
            print(f"  {odtest.format_log_time(line.received)} {line}",
                  file=sys.stderr)


def main():
    options = parse_arguments(sys.argv[1:])
    odtest.check_prerequisites()
    if odtest.find_tool("memcached") is None:
        odtest.skip("memcached not found (install memcached)")
    odtest.enter_namespace_or_exit()

    machine = machine_description()
    log(f"machine: {machine}")
    log(f"sizes: queued={options.queued} domains={options.domains} "
        f"held={options.held} repeat={options.repeat} sinks={options.sinks} "
        f"ReleaseRuns={options.runs} fallback={options.fallback} "
        f"hold_samples={options.hold_samples} "
        f"large_entry={options.large_entry}")
    sampler = LoadSampler().start()
    started = time.monotonic()
    try:
        setup, releases, selection, hold_costs = run_benchmark(options)
    except (BenchFailure, odtest.WaitTimeout, odtest.HarnessError,
            smtplib.SMTPException, OSError,
            subprocess.TimeoutExpired) as error:
        print(f"error: benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        sampler.stop()
    print_release_table(releases, options)
    statuses = evaluate_target(releases)
    print_selection_runs(selection, options)
    if hold_costs:
        print_hold_costs(hold_costs)
    load = sampler.summary()
    print()
    log(f"benchmark finished in {time.monotonic() - started:.0f} s; "
        f"1-minute load average during the run: min {load.get('min', 0):.2f}, "
        f"median {load.get('median', 0):.2f}, max {load.get('max', 0):.2f}")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as output:
            json.dump({"machine": machine, "options": vars(options),
                       "setup": setup, "releases": releases,
                       "selection_runs": selection,
                       "hold_costs": hold_costs, "target": statuses,
                       "load_average": load}, output, indent=2)
            output.write("\n")


if __name__ == "__main__":
    main()
