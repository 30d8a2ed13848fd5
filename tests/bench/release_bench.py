#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Benchmark an ETRN release against sendmail's own ETRN queue run.

One private sendmail (built with FEATURE(`ondemand') from this source tree,
delivery mode queueonly) and ondemand-milter run on 127.0.0.1 through the
end-to-end harness in tests/e2e/odtest.py. The queue is filled over SMTP with
N messages for other domains, which stay queued because no queue runner
runs. For each queue size and each H, the script then measures:

- our release: H messages for the on-demand domain are held by the milter,
  and the time runs from sending `ETRN domain` to the last of them arriving
  at the sink, once per ReleaseRuns value;
- the classic ETRN: H messages for a domain that is not on-demand are
  queued normally, and the time runs from sending `ETRN domain` to the last
  of them arriving at the sink. sendmail serves that ETRN with its own
  queue run, which reads every queued message to select the recipients.
  check_etrn still queries the milter, which returns NOTFOUND, so this path
  also pays one socket map lookup.

Both are measured against two sinks. The "normal" sink uses default TCP
behaviour (Nagle and delayed acknowledgements on, each reply line written
in two pieces), as a real server can, which makes every delivery wait for
a delayed ACK on loopback. The "fast" sink is the harness's own
(TCP_NODELAY and TCP_QUICKACK).

Run it as root from the build directory with `make bench-release`, or
directly with ONDEMAND_BUILDDIR set. `--quick` is a smoke run of about a
minute. Exits 0 when every measurement finished (whether or not the
targets are met), 1 when a step failed or timed out, and 77 when the
machine lacks root, sendmail or m4.
"""

import argparse
import contextlib
import json
import os
import platform
import queue
import re
import select
import smtplib
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "e2e"))

import odtest  # noqa: E402


ON_DEMAND_DOMAIN = "ondemand-bench.test"
# No filler domain may contain CLASSIC_DOMAIN, because sendmail's ETRN
# matches its argument against the domains of the queued recipients.
CLASSIC_DOMAIN = "classic-bench.test"
FILLER_DOMAINS = 50
SENDER = "bench@client.test"
DEFAULT_RELEASE_RUNS = 4
SINK_KINDS = ("normal", "fast", "quickack")

# Targets: our release at the largest queue within this factor of the
# empty queue, and at least this many times faster than the classic ETRN
# for the largest H against the normal sink.
QUEUE_SIZE_FACTOR_MAX = 1.5
SPEEDUP_MIN = 3.0


class BenchFailure(Exception):
    """A step of the benchmark failed or timed out."""


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ---------------------------------------------------------------------------
# Sink with a switchable TCP behaviour


class BenchSinkHandler(odtest._SinkHandler):  # noqa: SLF001 - reuse the SMTP logic
    """Sink session whose TCP behaviour follows the sink's kind at connect time.

    normal: Nagle and delayed ACKs on, and replies to pipelined commands
    collected and written together once the input is drained. fast: the
    harness's sink unchanged (TCP_NODELAY, and TCP_QUICKACK set before each
    reply). quickack: fast, with TCP_QUICKACK also set before every read.
    TCP_QUICKACK is not permanent on Linux, and the fast kind measured the
    same 44 ms per message as the normal one.
    """

    def setup(self):
        self.kind = self.server.sink.kind
        self.pending = []
        if self.kind != "normal":
            super().setup()
            if self.kind == "quickack":
                self.rfile = LineReader(self.rfile, self.before_read)
            return
        # No TCP_NODELAY, so Nagle stays on. An unbuffered reader lets
        # select() tell whether more pipelined input is waiting.
        self.rbufsize = 0
        socketserver.StreamRequestHandler.setup(self)
        self.server.sink.register_connection(self.request)
        self.rfile = LineReader(self.rfile, self.before_read)

    def before_read(self):
        if self.kind == "quickack":
            with contextlib.suppress(OSError):
                self.request.setsockopt(socket.IPPROTO_TCP,
                                        socket.TCP_QUICKACK, 1)
            return
        if self.pending:
            readable, _, _ = select.select([self.request], [], [], 0)
            if not readable:
                self.flush_replies()

    def flush_replies(self):
        data = b"".join(self.pending)
        self.pending = []
        self.wfile.write(data)

    def reply(self, text):
        if self.kind != "normal":
            super().reply(text)
            return
        self.pending.append(text.encode("utf-8") + b"\r\n")

    def finish(self):
        if self.kind == "normal" and self.pending:
            with contextlib.suppress(OSError):
                self.flush_replies()
        super().finish()


class LineReader:
    """File wrapper that calls a hook before every readline()."""

    def __init__(self, stream, before_read):
        self.stream = stream
        self.before_read = before_read

    def readline(self, size=-1):
        self.before_read()
        return self.stream.readline(size)

    def __getattr__(self, name):
        return getattr(self.stream, name)


class BenchSink(odtest.SmtpSink):
    """SmtpSink that counts messages per recipient domain and can change its TCP kind.

    Only the counts are kept, not the messages, so that a long run does not
    hold every message in memory.
    """

    def __init__(self, port=None):
        super().__init__(port)
        self.kind = "fast"
        self._domain_counts = {}
        self._last_arrival = {}

    def start(self):
        server = odtest._SinkServer(("127.0.0.1", self.port),  # noqa: SLF001
                                    BenchSinkHandler)
        server.request_queue_size = 64
        server.sink = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"bench-sink-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def record(self, message):
        now = time.monotonic()
        with self._condition:
            for recipient in message.recipients:
                domain = recipient.rpartition("@")[2].lower()
                self._domain_counts[domain] = (
                    self._domain_counts.get(domain, 0) + 1)
                self._last_arrival[domain] = now
            self._condition.notify_all()
            return sum(self._domain_counts.values())

    def count(self, domain):
        with self._condition:
            return self._domain_counts.get(domain, 0)

    def wait_for_count(self, domain, count, timeout):
        """Wait until count messages for domain arrived, and return the last arrival time."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._domain_counts.get(domain, 0) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchFailure(
                        f"timed out after {timeout:g} s: the sink received "
                        f"{self._domain_counts.get(domain, 0)} of {count} "
                        f"messages for {domain}")
                self._condition.wait(min(remaining, 1.0))
            return self._last_arrival[domain]


# ---------------------------------------------------------------------------
# Environment with FEATURE(`ondemand')


def start_environment(timeout):
    """Start sendmail (queueonly, FEATURE(`ondemand')), the milter and a BenchSink."""
    env = odtest.Environment(domains=[ON_DEMAND_DOMAIN],
                             delivery_mode="queueonly")
    sink = BenchSink(port=env.sink.port)
    env.sink = sink
    workdir = env.workdir
    env.milter.config.update({
        "ControlSocket": os.path.join(workdir, "control.sock"),
        "ReleaseRuns": str(DEFAULT_RELEASE_RUNS),
        # Every measurement sends a new ETRN for the same domain.
        "EtrnMinInterval": "0s",
    })
    odtest.use_ondemand_feature(env, os.path.join(workdir, "socketmap.sock"))
    with odtest.ondemand_cf_tree(workdir):
        env.start()
    env.syslog.wait_for(r"hold index built from the queue", timeout=timeout,
                        ident=odtest.MILTER_IDENT)
    return env, sink


# ---------------------------------------------------------------------------
# Filling the queue


def message_bytes(recipient, number):
    """Return a small RFC 5322 message, built by hand because the email package is slower."""
    return (f"From: <{SENDER}>\r\n"
            f"To: <{recipient}>\r\n"
            f"Subject: ondemand release benchmark {number}\r\n"
            f"Message-ID: <bench-{number}-{time.time_ns()}@client.test>\r\n"
            f"\r\n"
            f"Benchmark message {number}.\r\n").encode("ascii")


def send_share(port, recipients, deadline, failures):
    """Send one message per recipient over one SMTP session, reconnecting when needed."""
    client = None
    index = 0
    reconnects = 0
    while index < len(recipients):
        if time.monotonic() > deadline:
            failures.put(f"fill timed out with {len(recipients) - index} "
                         f"messages of this session unsent")
            break
        try:
            if client is None:
                client = smtplib.SMTP("127.0.0.1", port, timeout=60)
                client.ehlo("client.ondemand.test")
            recipient = recipients[index]
            client.sendmail(SENDER, [recipient],
                            message_bytes(recipient, index))
            index += 1
        except (smtplib.SMTPException, OSError) as error:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                if client is not None:
                    client.close()
            client = None
            reconnects += 1
            if reconnects > 20:
                failures.put(f"sending to {recipients[index]} failed "
                             f"{reconnects} times; last error: {error}")
                break
    if client is not None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


def fill(port, recipients, sessions, timeout):
    """Send every recipient one message over parallel SMTP sessions, and return the seconds taken."""
    if not recipients:
        return 0.0
    started = time.monotonic()
    deadline = started + timeout
    failures = queue.Queue()
    sessions = max(1, min(sessions, len(recipients)))
    threads = [threading.Thread(target=send_share,
                                args=(port, recipients[i::sessions], deadline,
                                      failures),
                                name=f"fill-{i}", daemon=True)
               for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, deadline + 30 - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise BenchFailure(f"fill of {len(recipients)} messages timed out "
                           f"after {timeout:g} s; raise --fill-timeout")
    if not failures.empty():
        raise BenchFailure("fill failed: " + failures.get())
    return time.monotonic() - started


def count_queue_files(queue_dir, prefix):
    with os.scandir(queue_dir) as entries:
        return sum(1 for entry in entries if entry.name.startswith(prefix))


def wait_for_queue_files(queue_dir, prefix, count, timeout):
    odtest.wait_until(
        lambda: count_queue_files(queue_dir, prefix) == count, timeout,
        interval=0.2,
        description=f"{count} {prefix} files in {queue_dir} (now "
                    f"{count_queue_files(queue_dir, prefix)})")


# ---------------------------------------------------------------------------
# Measurements


def etrn(port, argument, timeout):
    """Send one ETRN over a new SMTP session and return (code, text)."""
    client = smtplib.SMTP(timeout=timeout)
    try:
        client.connect("127.0.0.1", port)
        client.ehlo("customer.ondemand.test")
        code, text = client.docmd("ETRN", argument)
        return code, text.decode("utf-8", "replace")
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


class Bench:
    """Measurements of releases and classic ETRNs on one running environment."""

    def __init__(self, env, sink, options):
        self.env = env
        self.sink = sink
        self.options = options
        self.queue_dir = env.sendmail.queue_dir
        self.port = env.sendmail.port
        self.normal_queued = 0
        self.batch = 0

    def recipients(self, domain, count):
        self.batch += 1
        return [f"b{self.batch}m{i}@{domain}" for i in range(count)]

    def grow_queue(self, total):
        """Fill the normal queue up to total messages for the filler domains."""
        missing = total - self.normal_queued
        if missing <= 0:
            return None
        recipients = [f"b{self.batch}f{i}@filler{i % FILLER_DOMAINS}.example"
                      for i in range(self.normal_queued, total)]
        self.batch += 1
        log(f"filling the queue with {missing} messages over "
            f"{self.options.sessions} SMTP sessions")
        seconds = fill(self.port, recipients, self.options.sessions,
                       self.options.fill_timeout)
        wait_for_queue_files(self.queue_dir, "qf", total,
                             self.options.timeout)
        self.normal_queued = total
        log(f"filled {missing} messages in {seconds:.1f} s "
            f"({missing / seconds:.0f} messages/s)")
        return {"messages": missing, "seconds": seconds}

    def set_release_runs(self, runs):
        line = self.env.reload_milter({"ReleaseRuns": str(runs)},
                                      timeout=self.options.timeout)
        if "fail" in line.message or "error" in line.message:
            raise BenchFailure(f"the milter rejected ReleaseRuns {runs}: "
                               f"{line}")

    def measure_release(self, held, kind, runs):
        """Hold `held` messages, ETRN the on-demand domain, and time the release."""
        options = self.options
        self.set_release_runs(runs)
        self.sink.kind = kind
        fill(self.port, self.recipients(ON_DEMAND_DOMAIN, held),
             options.sessions, options.fill_timeout)
        wait_for_queue_files(self.queue_dir, "hf", held, options.timeout)
        expected = self.sink.count(ON_DEMAND_DOMAIN) + held
        since = self.env.syslog.mark()

        started = time.monotonic()
        code, text = etrn(self.port, ON_DEMAND_DOMAIN, options.timeout)
        replied = time.monotonic()
        if code != 253 or f"{held} pending" not in text:
            raise BenchFailure(f"ETRN {ON_DEMAND_DOMAIN} with {held} held "
                               f"messages: expected 253 with {held} pending, "
                               f"got {code} {text}")
        last = self.sink.wait_for_count(ON_DEMAND_DOMAIN, expected,
                                        options.timeout)

        line, _ = self.env.syslog.wait_for(
            rf"^action=release-done domain={re.escape(ON_DEMAND_DOMAIN)} ",
            timeout=options.timeout, since=since, ident=odtest.MILTER_IDENT)
        done = time.monotonic()
        if f"delivered={held} still_held=0" not in line.message:
            raise BenchFailure(f"release did not deliver all {held} "
                               f"messages: {line}")
        wait_for_queue_files(self.queue_dir, "hf", 0, options.timeout)
        return {"seconds": last - started, "reply": replied - started,
                "done": done - started}

    def measure_classic(self, held, kind):
        """Queue `held` messages normally, ETRN their domain, and time sendmail's queue run."""
        options = self.options
        self.sink.kind = kind
        fill(self.port, self.recipients(CLASSIC_DOMAIN, held),
             options.sessions, options.fill_timeout)
        wait_for_queue_files(self.queue_dir, "qf",
                             self.normal_queued + held, options.timeout)
        expected = self.sink.count(CLASSIC_DOMAIN) + held

        started = time.monotonic()
        code, text = etrn(self.port, CLASSIC_DOMAIN, options.timeout)
        replied = time.monotonic()
        if code != 250:
            raise BenchFailure(f"ETRN {CLASSIC_DOMAIN}: expected 250, got "
                               f"{code} {text}")
        last = self.sink.wait_for_count(CLASSIC_DOMAIN, expected,
                                        options.timeout)
        # The next measurement must not overlap with this queue run.
        wait_for_queue_files(self.queue_dir, "qf", self.normal_queued,
                             options.timeout)
        return {"seconds": last - started, "reply": replied - started}


def repeat(measure, times):
    """Run measure `times` times, and return the median result with every sample."""
    results = [measure() for _ in range(times)]
    seconds = [result["seconds"] for result in results]
    median = statistics.median(seconds)
    chosen = min(results, key=lambda result: abs(result["seconds"] - median))
    return dict(chosen, seconds=median, samples=seconds)


def run_benchmark(options):
    results = []
    fills = []
    env, sink = start_environment(options.timeout)
    try:
        bench = Bench(env, sink, options)
        for queued in sorted(options.queued):
            fill_result = bench.grow_queue(queued)
            if fill_result:
                fills.append(dict(fill_result, total=queued))
            for held in options.held:
                for kind in options.sinks:
                    log(f"N={queued} H={held} sink={kind}: classic ETRN")
                    classic = repeat(lambda: bench.measure_classic(held, kind),
                                     options.repeat)
                    log(f"  classic ETRN {classic['seconds']:.2f} s")
                    for runs in options.runs:
                        log(f"N={queued} H={held} sink={kind}: release, "
                            f"ReleaseRuns {runs}")
                        ours = repeat(
                            lambda: bench.measure_release(held, kind, runs),
                            options.repeat)
                        log(f"  release {ours['seconds']:.2f} s (ETRN reply "
                            f"after {ours['reply'] * 1000:.0f} ms)")
                        results.append({
                            "queued": queued, "held": held, "sink": kind,
                            "runs": runs, "release": ours,
                            "classic": classic})
    finally:
        env.close()
    return results, fills


# ---------------------------------------------------------------------------
# Report


def print_table(results):
    header = (f"{'N':>7} {'H':>5} {'sink':>6} {'runs':>4} "
              f"{'release s':>9} {'reply ms':>8} {'classic s':>9} "
              f"{'classic/release':>15}")
    print(header)
    print("-" * len(header))
    for row in results:
        release = row["release"]["seconds"]
        classic = row["classic"]["seconds"]
        print(f"{row['queued']:>7} {row['held']:>5} {row['sink']:>6} "
              f"{row['runs']:>4} {release:>9.2f} "
              f"{row['release']['reply'] * 1000:>8.0f} {classic:>9.2f} "
              f"{classic / release:>14.1f}x")


def find_row(results, queued, held, kind, runs):
    for row in results:
        if (row["queued"], row["held"], row["sink"], row["runs"]) == (
                queued, held, kind, runs):
            return row
    return None


def evaluate_targets(results, options):
    """Print each target's ratios and status, and return a list of (name, status)."""
    statuses = []
    runs = (DEFAULT_RELEASE_RUNS if DEFAULT_RELEASE_RUNS in options.runs
            else options.runs[-1])
    smallest, largest = min(options.queued), max(options.queued)
    print()
    print(f"Targets (ReleaseRuns {runs}):")

    name = f"release at N={largest} within {QUEUE_SIZE_FACTOR_MAX}x of N={smallest}"
    if largest == smallest:
        print(f"  {name}: not measured (only one queue size)")
        statuses.append((name, "not measured"))
    else:
        met = True
        for held in options.held:
            for kind in options.sinks:
                base = find_row(results, smallest, held, kind, runs)
                large = find_row(results, largest, held, kind, runs)
                ratio = (large["release"]["seconds"]
                         / base["release"]["seconds"])
                ok = ratio <= QUEUE_SIZE_FACTOR_MAX
                met = met and ok
                print(f"  H={held:<5} sink={kind:<6}: "
                      f"{large['release']['seconds']:.2f} s / "
                      f"{base['release']['seconds']:.2f} s = {ratio:.2f}x "
                      f"{'met' if ok else 'NOT met'}")
        note = "" if largest >= 100_000 else f" (N={largest}, below 100,000)"
        status = ("met" if met else "NOT met") + note
        print(f"  {name}: {status}")
        statuses.append((name, status))

    held = max(options.held)
    name = (f"H={held}, normal sink: release at least {SPEEDUP_MIN:g}x "
            f"faster than the classic ETRN")
    if "normal" not in options.sinks:
        print(f"  {name}: not measured (no normal sink)")
        statuses.append((name, "not measured"))
    else:
        met = True
        for queued in sorted(options.queued):
            row = find_row(results, queued, held, "normal", runs)
            speedup = row["classic"]["seconds"] / row["release"]["seconds"]
            ok = speedup >= SPEEDUP_MIN
            met = met and ok
            print(f"  N={queued:<7}: {row['classic']['seconds']:.2f} s / "
                  f"{row['release']['seconds']:.2f} s = {speedup:.1f}x "
                  f"{'met' if ok else 'NOT met'}")
        note = "" if held >= 1000 else f" (H={held}, below 1,000)"
        status = ("met" if met else "NOT met") + note
        print(f"  {name}: {status}")
        statuses.append((name, status))
    return statuses


def sendmail_version():
    result = subprocess.run([odtest.find_tool("sendmail"), "-d0.1", "-bt"],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=30, check=False)
    match = re.search(r"Version (\S+)", result.stdout)
    return match.group(1) if match else "unknown"


def cpu_model():
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return "unknown"


def machine_description():
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {"nproc": os.cpu_count(), "memory_gib": round(total_kb / 2**20, 1),
            "kernel": platform.release(), "sendmail": sendmail_version(),
            "python": platform.python_version(),
            # Other work on the machine skews the CPU-bound figures, so
            # the load at the start is part of the record.
            "load_average": os.getloadavg()}


# ---------------------------------------------------------------------------
# Command line


def add_fill_options(parser):
    """Add the options for filling queues over SMTP, for the waits and for JSON output."""
    parser.add_argument("--sessions", type=positive, default=16,
                        help="parallel SMTP sessions that fill the queues "
                        "(default 16)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds that each wait for a release, a queue "
                        "run or a log line may take (default 600)")
    parser.add_argument("--fill-timeout", type=float, default=3600,
                        help="seconds that each fill of a queue may take "
                        "(default 3600)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the results and the machine "
                        "description to FILE as JSON")


def positive(text):
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid number {text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"invalid number {text!r}: expected 1 or more")
    return value


def size_list(text):
    try:
        values = [int(item.replace("_", "")) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: expected integers separated by commas, "
            "such as 0,10000") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: the numbers must be 0 or more")
    return values


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Time an ETRN release of held mail against sendmail's "
        "own ETRN queue run, on a private sendmail on 127.0.0.1. Needs root.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run with small sizes (N=0,1000; H=20,100; "
                        "ReleaseRuns 1,4), about a minute")
    parser.add_argument("--queued", type=size_list,
                        default=[0, 10_000, 100_000],
                        help="normal queued messages N, comma-separated "
                        "(default 0,10000,100000)")
    parser.add_argument("--held", type=size_list, default=[100, 1000],
                        help="held messages H per release, comma-separated "
                        "(default 100,1000)")
    parser.add_argument("--runs", type=size_list, default=[1, 4, 8],
                        help="ReleaseRuns values to measure, comma-separated "
                        "(default 1,4,8)")
    parser.add_argument("--sinks", default=",".join(SINK_KINDS),
                        help="sink kinds, comma-separated: normal, fast, "
                        "quickack (default all three)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measurements per cell; the median is shown "
                        "(default 1)")
    add_fill_options(parser)
    options = parser.parse_args(argv)

    if options.quick:
        options.queued = [0, 1000]
        options.held = [20, 100]
        options.runs = [1, 4]

    options.sinks = [kind.strip() for kind in options.sinks.split(",")]
    for kind in options.sinks:
        if kind not in SINK_KINDS:
            parser.error(f"invalid sink kind {kind!r}: expected normal, "
                         "fast or quickack")
    for runs in options.runs:
        if not 1 <= runs <= 32:
            parser.error(f"invalid ReleaseRuns {runs}: expected 1 to 32")
    if 0 in options.held:
        parser.error("--held values must be 1 or more")
    if options.repeat < 1 or options.sessions < 1:
        parser.error("--repeat and --sessions must be 1 or more")
    return options


def main():
    options = parse_arguments(sys.argv[1:])
    odtest.check_prerequisites()
    odtest.enter_namespace_or_exit()

    machine = machine_description()
    log(f"machine: {machine}")
    log(f"sizes: N={options.queued} H={options.held} "
        f"ReleaseRuns={options.runs} sinks={options.sinks} "
        f"repeat={options.repeat}")
    started = time.monotonic()
    try:
        results, fills = run_benchmark(options)
    except (BenchFailure, odtest.WaitTimeout, odtest.HarnessError,
            subprocess.TimeoutExpired) as error:
        print(f"error: benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
    print()
    print_table(results)
    statuses = evaluate_targets(results, options)
    log(f"benchmark finished in {time.monotonic() - started:.0f} s; load "
        f"average now {os.getloadavg()}")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as output:
            json.dump({"machine": machine, "options": vars(options),
                       "fills": fills, "results": results,
                       "targets": statuses}, output, indent=2)
            output.write("\n")


if __name__ == "__main__":
    main()
