#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Measure sendmail's throughput with and without ondemand-milter, and soak the daemon.

Both subcommands run a private sendmail on 127.0.0.1 through the
end-to-end harness in tests/e2e/odtest.py, with an SMTP sink that sets
TCP_NODELAY and TCP_QUICKACK (the "quickack" sink of release_bench.py).
The load comes from tests/bench/smtp-load: parallel SMTP sessions, each
message with one recipient, a set share of them for the on-demand domain.

throughput: two sendmail daemons built from the same sendmail.mc, one with
the filter's INPUT_MAIL_FILTER and one without, both in delivery mode
queueonly (see DELIVERY_REASON). The same load goes to each in turn, with
the filter first, then without it, and so on. The script prints messages
per second of every run, the medians and their ratio, and the filter's CPU
time per message from /proc/PID/stat.

soak: one sendmail with FEATURE(`ondemand') in delivery mode queueonly
takes rounds of messages. An ETRN releases the held ones to the sink after
every few rounds, and the normal ones stay queued. Background delivery of
every normal message made hundreds of sendmail processes wait for the
sink, and none of that work involves the filter. After each round the
script prints the daemon's VmRSS, thread count and open file descriptors,
and at the end whether VmRSS grew after warm-up.

Run as root from the build directory with `make bench-throughput` or
`make bench-soak`, or directly with ONDEMAND_BUILDDIR set. Exits 0 when
every measurement finished (whether or not a target is met), 1 when a step
failed or timed out, and 77 when the machine lacks root, sendmail or m4.
"""

import argparse
import contextlib
import difflib
import json
import multiprocessing
import os
import re
import smtplib
import statistics
import subprocess
import sys
import textwrap
import threading
import time

sys.dont_write_bytecode = True
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(BENCH_DIR))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "e2e"))
sys.path.insert(0, BENCH_DIR)

import odtest  # noqa: E402
import release_bench  # noqa: E402
from release_bench import BenchFailure, log, positive  # noqa: E402

HELD_DOMAIN = "ondemand-load.test"
NORMAL_DOMAIN = "normal-load.test"
SENDER = "load@client.test"

# Throughput target: messages per second with the filter, divided by the
# same without it (medians of the alternating runs).
RATIO_MIN = 0.95

# Soak verdict: VmRSS growth from the end of warm-up to the end of the run
# above this counts as growth. It is the limit of tests/e2e/test_memory.py.
RSS_GROWTH_LIMIT_KIB = 1024

DELIVERY_REASON = (
    "Delivery mode queueonly in both daemons: every message is only "
    "queued, the held ones as hf files and the rest as qf files. Without "
    "the filter the on-demand domain's mail is not held, so with "
    "background delivery that run would also deliver it, and do more work "
    "than the run with the filter. With queueonly both runs do the same "
    "work apart from the filter, and the filter's share of the cost is at "
    "its largest.")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# sendmail.cf lines that INPUT_MAIL_FILTER adds or changes, in a unified
# diff from the cf without the filter to the cf with it.
FILTER_CF_LINE = re.compile(
    r"^[+-](O InputMailFilters=?|O Milter\.|Xondemand, )")


# ---------------------------------------------------------------------------
# /proc


def read_stat_fields(pid):
    """Return the fields of /proc/PID/stat after the command name, from field 3 (state) on."""
    with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
        text = stat.read()
    # The command name is in brackets and may contain spaces.
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid):
    """Return utime + stime of the process, every thread included, in seconds."""
    fields = read_stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds_with_children(pid):
    """Return utime + stime of the process and of its children that it has reaped."""
    fields = read_stat_fields(pid)
    return sum(int(field) for field in fields[11:15]) / CLOCK_TICKS


def child_pids(pid):
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(read_stat_fields(entry)[1]) == pid:
                children.append(int(entry))
    return children


def status_fields(pid):
    """Return /proc/PID/status as a dict of the first word of each value."""
    fields = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            key, _, value = line.partition(":")
            words = value.split()
            fields[key] = words[0] if words else ""
    return fields


def process_sample(pid):
    status = status_fields(pid)
    return {"rss_kib": int(status["VmRSS"]),
            "anon_kib": int(status["RssAnon"]),
            "threads": int(status["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def load_average():
    return round(os.getloadavg()[0], 2)


def machine_cpu_seconds():
    """Return (busy, total) CPU seconds of the whole machine from /proc/stat, every CPU added up.

    Busy counts user, nice, system, irq, softirq and steal time; idle and
    iowait are the rest of total.
    """
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(field) for field in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy / CLOCK_TICKS, (busy + idle + iowait) / CLOCK_TICKS


def own_cpu_seconds():
    """Return the CPU time of this process, whose threads run the harness's sink and syslog capture."""
    times = os.times()
    return times.user + times.system


def wait_for_quiet_machine(options):
    """Wait until the machine was at most --quiet-percent busy for one second.

    Returns the busy percentage of the last second. After --quiet-timeout
    seconds it returns anyway, so a machine that never calms down still
    gets measured, with the figure in the output.
    """
    deadline = time.monotonic() + options.quiet_timeout
    while True:
        busy_before, total_before = machine_cpu_seconds()
        time.sleep(1)
        busy_after, total_after = machine_cpu_seconds()
        busy = 100 * (busy_after - busy_before) / max(
            total_after - total_before, 1e-9)
        if busy <= options.quiet_percent or time.monotonic() >= deadline:
            return busy


# ---------------------------------------------------------------------------
# Load drivers


def smtp_load_path():
    return os.environ.get(
        "ONDEMAND_SMTP_LOAD",
        os.path.join(odtest.default_builddir(), "tests", "bench", "smtp-load"))


def run_c_driver(port, options, messages, held_percent):
    """Run smtp-load against port and return its JSON results as a dict."""
    program = smtp_load_path()
    if not os.access(program, os.X_OK):
        raise BenchFailure(f"smtp-load not found or not executable at "
                           f"{program}; run make, or set ONDEMAND_SMTP_LOAD")
    argv = [program, "-p", str(port), "-c", str(options.sessions),
            "-n", str(messages), "-m", str(options.per_connection),
            "-r", str(held_percent), "-s", str(options.body_bytes),
            "-d", HELD_DOMAIN, "-D", NORMAL_DOMAIN, "-f", SENDER, "-j"]
    result = subprocess.run(argv, capture_output=True, text=True,
                            timeout=options.timeout, check=False)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise BenchFailure(f"{' '.join(argv)} exited with "
                           f"{result.returncode}: {result.stderr.strip()}")
    report = json.loads(result.stdout)
    report["errors"] = result.stderr.strip()
    return report


def python_message(number, recipient, body):
    return (f"From: <{SENDER}>\r\n"
            f"To: <{recipient}>\r\n"
            f"Subject: smtp-load message {number}\r\n"
            f"Message-ID: <py-load.{os.getpid()}.{number}@client.test>\r\n"
            f"\r\n").encode("ascii") + body


def python_body(size):
    """Return a body of size bytes in lines of 80 bytes, as smtp-load builds it."""
    lines, rest = divmod(size, 80)
    parts = [b"x" * 78 + b"\r\n"] * lines
    if rest == 1 and parts:
        parts[-1] = b"x" * 79 + b"\r\n"
    elif rest >= 2:
        parts.append(b"y" * (rest - 2) + b"\r\n")
    return b"".join(parts)


def python_session(port, numbers, options, held_percent, results, lock):
    body = python_body(options.body_bytes)
    accepted = {True: 0, False: 0}
    failed = 0
    codes = {}
    client = None
    on_connection = 0
    for number in numbers:
        before = number * held_percent
        held = (before + held_percent) // 100 != before // 100
        recipient = (f"load{number}@"
                     f"{HELD_DOMAIN if held else NORMAL_DOMAIN}")
        try:
            if client is None:
                client = smtplib.SMTP("127.0.0.1", port,
                                      timeout=options.timeout)
                client.ehlo("pyload.client.test")
                on_connection = 0
            client.sendmail(SENDER, [recipient],
                            python_message(number, recipient, body))
            accepted[held] += 1
        except (smtplib.SMTPException, OSError) as error:
            failed += 1
            code = getattr(error, "smtp_code", 0)
            codes[code] = codes.get(code, 0) + 1
            with contextlib.suppress(smtplib.SMTPException, OSError):
                if client is not None:
                    client.close()
            client = None
            continue
        on_connection += 1
        if on_connection >= options.per_connection:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client = None
    if client is not None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
    with lock:
        results["accepted_held"] += accepted[True]
        results["accepted_normal"] += accepted[False]
        results["accepted"] += accepted[True] + accepted[False]
        results["failed"] += failed
        for code, count in codes.items():
            results["failure_codes"][code] = (
                results["failure_codes"].get(code, 0) + count)


def python_driver_process(port, options, messages, held_percent, pipe):
    """Send the load with smtplib threads, in a forked process, and send back the results."""
    results = {"accepted": 0, "accepted_held": 0, "accepted_normal": 0,
               "failed": 0, "failure_codes": {}}
    lock = threading.Lock()
    sessions = min(options.sessions, messages)
    started = time.monotonic()
    threads = [threading.Thread(target=python_session,
                                args=(port, range(i, messages, sessions),
                                      options, held_percent, results, lock))
               for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    results.update(seconds=seconds,
                   messages_per_second=results["accepted"] / seconds,
                   # A forked child starts with zero CPU time, so this is
                   # the driver's own CPU time.
                   cpu_seconds=time.process_time())
    pipe.send(results)
    pipe.close()


def run_python_driver(port, options, messages, held_percent):
    """Run the smtplib driver in a child process and return results shaped like smtp-load's."""
    # fork copies only this thread, so the harness's syslog and sink
    # threads keep running in this process alone.
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=python_driver_process,
                            args=(port, options, messages, held_percent,
                                  sender))
    child.start()
    sender.close()
    if not receiver.poll(options.timeout):
        child.kill()
        child.join()
        raise BenchFailure(f"the Python driver did not finish "
                           f"{messages} messages within {options.timeout:g} s")
    try:
        results = receiver.recv()
    except EOFError:
        child.join()
        raise BenchFailure(f"the Python driver exited with "
                           f"{child.exitcode} before it sent its "
                           f"results") from None
    child.join()
    failures = ", ".join(f"{code or 'no reply'}: {count}" for code, count
                         in sorted(results["failure_codes"].items()))
    results["replies"] = {"end-of-data 250": results["accepted"]}
    results["errors"] = f"failures by code: {failures}" if failures else ""
    return results


def run_driver(port, options, messages, held_percent):
    if options.driver == "python":
        return run_python_driver(port, options, messages, held_percent)
    return run_c_driver(port, options, messages, held_percent)


# ---------------------------------------------------------------------------
# Throughput


class Target:
    """One sendmail daemon under load: the one with the filter or the one without.

    Its queue is never emptied during a benchmark. On the ext4 file system
    of the machine in docs/PERFORMANCE.md, removing the queue files between
    runs, or renaming them to another directory, made sendmail's next runs
    cost about twice the CPU time per message, which would swamp the
    filter's cost. The cause was not found. So the queues grow, and the
    milter's hold index with them, by the held share of every run.
    """

    def __init__(self, name, sendmail, milter=None):
        self.name = name
        self.sendmail = sendmail
        self.milter = milter

    def count_files(self, prefix):
        return sum(1 for name in os.listdir(self.sendmail.queue_dir)
                   if name.startswith(prefix))


def start_throughput_environment(options):
    env = odtest.Environment(domains=[HELD_DOMAIN],
                             delivery_mode="queueonly")
    sink = release_bench.BenchSink(port=env.sink.port)
    sink.kind = "quickack"
    env.sink = sink
    plain_dir = os.path.join(env.workdir, "plain")
    os.mkdir(plain_dir)
    plain = odtest.Sendmail(plain_dir, sink.port, milter_socket=None,
                            delivery_mode="queueonly")
    try:
        env.start()
        plain.write_config()
        plain.start(timeout=options.timeout)
    except BaseException:
        plain.stop()
        env.close()
        raise
    env.syslog.wait_for(r"hold index built from the queue",
                        timeout=options.timeout, ident=odtest.MILTER_IDENT)
    return env, plain


def cf_difference(filtered, plain):
    """Return the lines in which the two sendmail.cf files differ, paths and ports aside."""
    with open(filtered.cf_path, encoding="utf-8") as stream:
        filtered_lines = stream.read().splitlines()
    with open(plain.cf_path, encoding="utf-8") as stream:
        plain_text = stream.read()
    plain_text = plain_text.replace(plain.workdir, filtered.workdir)
    plain_text = re.sub(rf"\bPort={plain.port}\b", f"Port={filtered.port}",
                        plain_text)
    return [line for line in difflib.unified_diff(
                plain_text.splitlines(), filtered_lines, lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
            and line[1:].strip() and not line[1:].startswith("#")]


def wait_for_children(pid, timeout):
    """Wait until the process has reaped every child, so that their CPU time is counted."""
    odtest.wait_until(lambda: not child_pids(pid), timeout, interval=0.05,
                      description=f"the children of process {pid} to exit")


def measure_run(target, options, number):
    """Send one run's load to target and return its figures."""
    held_before = target.count_files("hf")
    queued_before = target.count_files("qf")
    busy_before_run = wait_for_quiet_machine(options)
    sendmail_pid = target.sendmail.process.pid
    milter_pid = target.milter.process.pid if target.milter else None
    load_before = load_average()
    machine_busy_before, machine_total_before = machine_cpu_seconds()
    own_before = own_cpu_seconds()
    sendmail_before = cpu_seconds_with_children(sendmail_pid)
    milter_before = cpu_seconds(milter_pid) if milter_pid else 0.0

    report = run_driver(target.sendmail.port, options, options.messages,
                        options.held_percent)

    wait_for_children(sendmail_pid, options.timeout)
    sendmail_cpu = cpu_seconds_with_children(sendmail_pid) - sendmail_before
    milter_cpu = (cpu_seconds(milter_pid) - milter_before
                  if milter_pid else None)
    own_cpu = own_cpu_seconds() - own_before
    machine_busy_after, machine_total_after = machine_cpu_seconds()
    # Whatever the machine was busy with beyond this benchmark's own
    # processes: other users' work, and kernel threads such as the disk's
    # (some of which this benchmark causes).
    others_cpu = ((machine_busy_after - machine_busy_before)
                  - sendmail_cpu - (milter_cpu or 0.0) - own_cpu
                  - report["cpu_seconds"])
    others_percent = max(0.0, 100 * others_cpu / max(
        machine_total_after - machine_total_before, 1e-9))
    accepted = report["accepted"]
    if accepted != options.messages:
        raise BenchFailure(
            f"run {number} ({target.name}): {accepted} of "
            f"{options.messages} messages accepted; replies "
            f"{report['replies']}; {report['errors']}")

    held = target.count_files("hf") - held_before
    queued = target.count_files("qf") - queued_before
    held_expected = (options.messages * options.held_percent // 100
                     if target.milter else 0)
    if (held, queued) != (held_expected, options.messages - held_expected):
        raise BenchFailure(
            f"run {number} ({target.name}): expected {held_expected} new hf "
            f"and {options.messages - held_expected} new qf files in "
            f"{target.sendmail.queue_dir}, found {held} and {queued}")
    return {"run": number, "target": target.name,
            "held_before": held_before,
            "messages": accepted, "seconds": report["seconds"],
            "rate": report["messages_per_second"],
            "driver_cpu_seconds": report["cpu_seconds"],
            "sendmail_cpu_seconds": sendmail_cpu,
            "milter_cpu_seconds": milter_cpu,
            "busy_before_percent": busy_before_run,
            "others_percent": others_percent,
            "load_before": load_before, "load_after": load_average(),
            "replies": report["replies"]}


def microseconds_per_message(seconds, messages):
    return seconds / messages * 1e6


def print_runs(runs):
    header = (f"{'run':>3} {'sendmail':<14} {'messages/s':>10} {'s':>6} "
              f"{'held before':>11} "
              f"{'filter us/msg':>13} {'sendmail us/msg':>15} "
              f"{'driver s':>8} {'idle before':>11} {'others':>6} "
              f"{'load':>11}")
    print(header)
    print("-" * len(header))
    for run in runs:
        filter_cpu = ("-" if run["milter_cpu_seconds"] is None else
                      f"{microseconds_per_message(run['milter_cpu_seconds'], run['messages']):.0f}")
        sendmail_cpu = microseconds_per_message(run["sendmail_cpu_seconds"],
                                                run["messages"])
        idle_before = f"{100 - run['busy_before_percent']:.0f}%"
        others = f"{run['others_percent']:.0f}%"
        held_before = ("-" if run["milter_cpu_seconds"] is None else
                       run["held_before"])
        print(f"{run['run']:>3} {run['target']:<14} {run['rate']:>10.1f} "
              f"{run['seconds']:>6.2f} {held_before:>11} {filter_cpu:>13} "
              f"{sendmail_cpu:>15.0f} {run['driver_cpu_seconds']:>8.2f} "
              f"{idle_before:>11} {others:>6} "
              f"{run['load_before']:>5.2f}-{run['load_after']:<5.2f}")
    print(textwrap.fill(
        "held before: messages held (hf files, entries in the milter's hold "
        "index) when the run started. us/msg: CPU time per message of "
        "ondemand-milter, and of the sendmail daemon with its reaped "
        "children. driver s: CPU seconds of the load generator. idle "
        "before: idle share of the machine in the second before the run. "
        "others: CPU share of every other process and kernel thread during "
        "the run. load: 1-minute load average before and after.", 79))


def summarize_throughput(runs, options):
    """Print the medians, the ratio and the target, and return them as a dict."""
    with_filter = [run for run in runs if run["target"] == "with filter"]
    without = [run for run in runs if run["target"] == "without filter"]
    rate_with = statistics.median(run["rate"] for run in with_filter)
    rate_without = statistics.median(run["rate"] for run in without)
    ratio = rate_with / rate_without
    pair_ratios = [a["rate"] / b["rate"] for a, b in zip(with_filter, without)]
    filter_us = statistics.median(
        microseconds_per_message(run["milter_cpu_seconds"], run["messages"])
        for run in with_filter)
    sendmail_us_with = statistics.median(
        microseconds_per_message(run["sendmail_cpu_seconds"], run["messages"])
        for run in with_filter)
    sendmail_us_without = statistics.median(
        microseconds_per_message(run["sendmail_cpu_seconds"], run["messages"])
        for run in without)
    met = ratio >= RATIO_MIN

    print()
    print(f"median messages/s: {rate_with:.1f} with the filter, "
          f"{rate_without:.1f} without ({len(with_filter)} runs each)")
    print(f"ratio with / without: {ratio:.3f} (target at least {RATIO_MIN}: "
          f"{'met' if met else 'NOT met'}); ratio of each pair: "
          f"{', '.join(f'{value:.3f}' for value in pair_ratios)}, median "
          f"{statistics.median(pair_ratios):.3f}")
    print(f"filter CPU per message (ondemand-milter utime+stime): median "
          f"{filter_us:.0f} us, with {with_filter[0]['held_before']} to "
          f"{with_filter[-1]['held_before']} messages held before the runs")
    print(f"sendmail CPU per message (daemon and its reaped children): "
          f"median {sendmail_us_with:.0f} us with the filter, "
          f"{sendmail_us_without:.0f} us without")
    print(f"CPU time is counted in ticks of {1 / CLOCK_TICKS * 1000:.0f} ms, "
          f"so each run's figure is exact to about "
          f"{microseconds_per_message(1 / CLOCK_TICKS, options.messages):.1f}"
          f" us per message.")
    return {"median_rate_with": rate_with, "median_rate_without": rate_without,
            "ratio": ratio, "pair_ratios": pair_ratios,
            "target": f"ratio >= {RATIO_MIN}: {'met' if met else 'NOT met'}",
            "filter_cpu_us_per_message": filter_us,
            "sendmail_cpu_us_per_message_with": sendmail_us_with,
            "sendmail_cpu_us_per_message_without": sendmail_us_without}


def run_throughput(options):
    env, plain = start_throughput_environment(options)
    try:
        difference = cf_difference(env.sendmail, plain)
        log("the two sendmail.cf files differ in these lines (comments, "
            "paths and ports aside):")
        for line in difference:
            print(f"    {line}")
        if not difference or not all(FILTER_CF_LINE.match(line)
                                     for line in difference):
            raise BenchFailure("the sendmail.cf files differ in more than "
                               "the filter's lines; see above")
        targets = [Target("with filter", env.sendmail, env.milter),
                   Target("without filter", plain)]
        print(textwrap.fill(DELIVERY_REASON, 79))
        if options.warmup:
            log(f"warm-up: {options.warmup} messages to each daemon, not "
                f"counted")
            for target in targets:
                report = run_driver(target.sendmail.port, options,
                                    options.warmup, options.held_percent)
                if report["accepted"] != options.warmup:
                    raise BenchFailure(f"warm-up ({target.name}): "
                                       f"{report['accepted']} of "
                                       f"{options.warmup} accepted; "
                                       f"{report['errors']}")
        runs = []
        for number in range(1, 2 * options.pairs + 1):
            target = targets[(number - 1) % 2]
            run = measure_run(target, options, number)
            runs.append(run)
            log(f"run {number} ({target.name}): {run['rate']:.1f} "
                f"messages/s, load average {run['load_after']}")
    finally:
        plain.stop()
        env.close()
    print()
    print_runs(runs)
    summary = summarize_throughput(runs, options)
    return {"runs": runs, "summary": summary, "cf_difference": difference}


# ---------------------------------------------------------------------------
# Soak


def start_soak_environment(options):
    """Start sendmail (queueonly, FEATURE(`ondemand')), the milter and a quickack sink."""
    env = odtest.Environment(domains=[HELD_DOMAIN],
                             delivery_mode="queueonly")
    sink = release_bench.BenchSink(port=env.sink.port)
    sink.kind = "quickack"
    env.sink = sink
    workdir = env.workdir
    env.milter.config.update({
        "ControlSocket": os.path.join(workdir, "control.sock"),
        # Each release is a new ETRN for the same domain.
        "EtrnMinInterval": "0s",
    })
    odtest.use_ondemand_feature(env, os.path.join(workdir, "socketmap.sock"))
    with odtest.ondemand_cf_tree(workdir):
        env.start()
    env.syslog.wait_for(r"hold index built from the queue",
                        timeout=options.timeout, ident=odtest.MILTER_IDENT)
    return env, sink


def release_held(env, held, timeout, attempts=5):
    """ETRN the on-demand domain until its `held` messages are delivered, and return the ETRNs sent.

    The harness gives sendmail a host status directory. A delivery that
    finds the sink's status file locked by another delivery defers its
    message and logs "stat=Deferred" with no reason: strace showed this for
    parallel background deliveries of sendmail 8.17.1.9. Parallel release
    runs can meet the same lock. Such a message stays held, and the next
    ETRN delivers it, as it would for an operator.
    """
    for attempt in range(1, attempts + 1):
        since = env.syslog.mark()
        code, text = release_bench.etrn(env.sendmail.port, HELD_DOMAIN,
                                        timeout)
        if code != 253 or f"{held} pending" not in text:
            raise BenchFailure(f"ETRN {HELD_DOMAIN} with {held} held "
                               f"messages: expected 253 with {held} "
                               f"pending, got {code} {text}")
        line, _ = env.syslog.wait_for(
            rf"^action=release-done domain={re.escape(HELD_DOMAIN)} ",
            timeout=timeout, since=since, ident=odtest.MILTER_IDENT)
        match = re.search(r"delivered=(\d+) still_held=(\d+)", line.message)
        if match is None:
            raise BenchFailure(f"unexpected release-done line: {line}")
        held = int(match.group(2))
        if held == 0:
            return attempt
    raise BenchFailure(f"{held} messages still held after {attempts} ETRNs "
                       f"of {HELD_DOMAIN}")


def helper_pid(milter_pid):
    """Return the PID of the release helper, the milter's long-lived child, or None."""
    children = child_pids(milter_pid)
    return children[0] if len(children) == 1 else None


def print_soak(samples):
    header = (f"{'round':>5} {'messages':>8} {'held':>5} {'ETRNs':>5} "
              f"{'rate/s':>7} {'VmRSS KiB':>9} "
              f"{'RssAnon KiB':>11} "
              f"{'threads':>7} {'fds':>4} {'helper KiB':>10} {'load':>5}")
    print(header)
    print("-" * len(header))
    for sample in samples:
        helper = sample["helper_rss_kib"]
        print(f"{sample['round']:>5} {sample['messages']:>8} "
              f"{sample['held']:>5} {sample['etrns']:>5} "
              f"{sample['rate']:>7.0f} "
              f"{sample['rss_kib']:>9} {sample['anon_kib']:>11} "
              f"{sample['threads']:>7} "
              f"{sample['fds']:>4} {helper if helper else '-':>10} "
              f"{sample['load']:>5.2f}")
    print(textwrap.fill(
        "held: messages held after the round. ETRNs: ETRNs sent to release "
        "them (0: no release in this round). RssAnon: the part of VmRSS "
        "that is not mapped from files, mostly the heap. fds: open file "
        "descriptors of ondemand-milter. helper KiB: VmRSS of the release "
        "helper. load: 1-minute load average.", 79))


def slope_per_10000(points):
    """Return the least-squares slope of (messages, KiB) points, in KiB per 10,000 messages."""
    if len(points) < 2:
        return 0.0
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - x_mean) ** 2 for x in xs)
    if denominator == 0:
        return 0.0
    slope = sum((x - x_mean) * (y - y_mean)
                for x, y in zip(xs, ys)) / denominator
    return slope * 10_000


def run_soak(options):
    env, sink = start_soak_environment(options)
    samples = []
    try:
        milter_pid = env.milter.process.pid
        helper = helper_pid(milter_pid)
        start = process_sample(milter_pid)
        log(f"ondemand-milter (pid {milter_pid}) at start: VmRSS "
            f"{start['rss_kib']} KiB, {start['threads']} threads, "
            f"{start['fds']} open files; release helper pid {helper}")
        sent = held_total = normal_total = held_now = 0
        for number in range(1, options.rounds + 1):
            report = run_driver(env.sendmail.port, options,
                                options.round_messages, options.held_percent)
            if report["accepted"] != options.round_messages:
                raise BenchFailure(
                    f"round {number}: {report['accepted']} of "
                    f"{options.round_messages} accepted; replies "
                    f"{report['replies']}; {report['errors']}")
            sent += report["accepted"]
            held_now += report["accepted_held"]
            held_total += report["accepted_held"]
            normal_total += report["accepted_normal"]
            release_bench.wait_for_queue_files(
                env.sendmail.queue_dir, "qf", normal_total, options.timeout)
            release_bench.wait_for_queue_files(
                env.sendmail.queue_dir, "hf", held_now, options.timeout)
            etrns = 0
            if held_now > 0 and (number % options.release_every == 0
                                 or number == options.rounds):
                etrns = release_held(env, held_now, options.timeout)
                sink.wait_for_count(HELD_DOMAIN, held_total, options.timeout)
                release_bench.wait_for_queue_files(
                    env.sendmail.queue_dir, "hf", 0, options.timeout)
                held_now = 0
            sample = process_sample(milter_pid)
            helper_sample = process_sample(helper) if helper else None
            sample.update(round=number, messages=sent, held=held_now,
                          etrns=etrns,
                          rate=report["messages_per_second"],
                          helper_rss_kib=(helper_sample["rss_kib"]
                                          if helper_sample else None),
                          load=load_average())
            samples.append(sample)
            log(f"round {number}: {sent} messages, {held_now} held, VmRSS "
                f"{sample['rss_kib']} KiB")
    finally:
        env.close()

    print()
    print_soak(samples)
    return {"samples": samples,
            "summary": summarize_soak(samples, options)}


def summarize_soak(samples, options):
    """Print whether VmRSS grew after warm-up, comparing samples taken with nothing held."""
    released = [sample for sample in samples
                if sample["held"] == 0
                and sample["round"] > options.warmup_rounds]
    print()
    if len(released) < 2:
        print("not enough rounds after warm-up with nothing held to judge "
              "growth; raise --rounds")
        return {"verdict": "not measured"}
    first, last = released[0], released[-1]
    growth = last["rss_kib"] - first["rss_kib"]
    verdict = "grows" if growth > RSS_GROWTH_LIMIT_KIB else "flat"

    points = [(sample["messages"], sample["rss_kib"]) for sample in released]
    slope = slope_per_10000(points)
    # A heap that levels off has a smaller slope in the second half.
    half = len(points) // 2
    slope_first_half = slope_per_10000(points[:half + 1])
    slope_second_half = slope_per_10000(points[half:])

    print(f"VmRSS after warm-up (round {first['round']}, {first['messages']} "
          f"messages): {first['rss_kib']} KiB; at the end (round "
          f"{last['round']}, {last['messages']} messages): "
          f"{last['rss_kib']} KiB; largest "
          f"{max(sample['rss_kib'] for sample in released)} KiB")
    print(f"growth {growth:+d} KiB (limit {RSS_GROWTH_LIMIT_KIB} KiB): "
          f"VmRSS {verdict}")
    halves = (f" ({slope_first_half:+.0f} in the first half, "
              f"{slope_second_half:+.0f} in the second)"
              if len(points) >= 4 else "")
    print(f"least-squares slope over the {len(released)} samples with "
          f"nothing held: {slope:+.0f} KiB per 10,000 messages{halves}")
    print(f"threads {first['threads']} -> {last['threads']}, open files "
          f"{first['fds']} -> {last['fds']}")
    return {"warmed_up_kib": first["rss_kib"], "end_kib": last["rss_kib"],
            "growth_kib": growth, "slope_kib_per_10000": slope,
            "slope_first_half": slope_first_half,
            "slope_second_half": slope_second_half, "verdict": verdict}


# ---------------------------------------------------------------------------
# Command line and machine


def virtualization():
    """Return what systemd-detect-virt reports, and gVisor when /proc/version names it."""
    parts = []
    detect = odtest.find_tool("systemd-detect-virt")
    if detect:
        result = subprocess.run([detect], capture_output=True, text=True,
                                timeout=10, check=False)
        parts.append(result.stdout.strip() or "none")
    with contextlib.suppress(OSError):
        with open("/proc/version", encoding="utf-8") as version:
            if "gvisor" in version.read().lower():
                parts.append("gVisor")
    return ", ".join(parts) or "unknown"


def machine_description():
    machine = release_bench.machine_description()
    machine.update(cpu_model=release_bench.cpu_model(),
                   virtualization=virtualization())
    return machine


def percent(text):
    value = positive(text) if text != "0" else 0
    if value > 100:
        raise argparse.ArgumentTypeError(
            f"invalid percentage {text!r}: expected 0 to 100")
    return value


def add_load_options(parser):
    parser.add_argument("--sessions", type=positive, default=16,
                        help="parallel SMTP sessions (default 16)")
    parser.add_argument("--per-connection", type=positive, default=10,
                        help="messages per SMTP connection (default 10)")
    parser.add_argument("--held-percent", type=percent, default=50,
                        help="percent of messages for the on-demand domain "
                        "(default 50)")
    parser.add_argument("--body-bytes", type=int, default=2000,
                        help="body size of each message in bytes, without "
                        "the headers of about 170 bytes (default 2000)")
    parser.add_argument("--driver", choices=("c", "python"), default="c",
                        help="load generator: c (tests/bench/smtp-load) or "
                        "python (smtplib threads in a child process), "
                        "default c")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds that each load run and each wait may "
                        "take (default 600)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the results and the machine "
                        "description to FILE as JSON")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Measure sendmail's throughput with and without "
        "ondemand-milter, or soak the daemon, on a private sendmail on "
        "127.0.0.1. Needs root.")
    commands = parser.add_subparsers(dest="command", required=True)

    throughput = commands.add_parser(
        "throughput", help="messages per second with and without the filter")
    throughput.add_argument("--messages", type=positive, default=5000,
                            help="messages per run (default 5000)")
    throughput.add_argument("--pairs", type=positive, default=7,
                            help="pairs of runs, with and without the "
                            "filter (default 7)")
    throughput.add_argument("--warmup", type=int,
                            help="messages sent to each daemon before the "
                            "runs and not counted, because the first run "
                            "after a start is slower; 0 for none (default: "
                            "as many as --messages)")
    add_load_options(throughput)
    throughput.add_argument("--quiet-percent", type=float, default=10,
                            help="before each run, wait until the machine "
                            "was at most this busy (percent of all CPUs) "
                            "for one second (default 10)")
    throughput.add_argument("--quiet-timeout", type=float, default=60,
                            help="seconds to wait for a quiet machine before "
                            "each run; the run starts anyway after that "
                            "(default 60)")

    soak = commands.add_parser(
        "soak", help="resident memory of the daemon over many messages")
    soak.add_argument("--rounds", type=positive, default=20,
                      help="rounds of messages (default 20)")
    soak.add_argument("--round-messages", type=positive, default=1000,
                      help="messages per round (default 1000)")
    soak.add_argument("--release-every", type=positive, default=2,
                      help="rounds between ETRN releases of the held "
                      "messages; the last round always ends with one "
                      "(default 2)")
    soak.add_argument("--warmup-rounds", type=int, default=2,
                      help="rounds before the VmRSS baseline (default 2)")
    add_load_options(soak)

    options = parser.parse_args(argv)
    if options.body_bytes < 0 or options.body_bytes == 1:
        parser.error(f"invalid --body-bytes {options.body_bytes}: expected "
                     "0, or 2 and more")
    if options.command == "soak":
        if not 0 <= options.warmup_rounds < options.rounds:
            parser.error(f"invalid --warmup-rounds {options.warmup_rounds}: "
                         f"expected 0 to {options.rounds - 1}")
    elif options.warmup is None:
        options.warmup = options.messages
    elif options.warmup < 0:
        parser.error(f"invalid --warmup {options.warmup}: expected 0 or more")
    return options


def main():
    options = parse_arguments(sys.argv[1:])
    odtest.check_prerequisites()
    odtest.enter_namespace_or_exit()

    machine = machine_description()
    log(f"machine: {machine}")
    log(f"options: {vars(options)}")
    if (options.command == "soak"
            and options.rounds * options.round_messages < 10_000):
        log(f"note: {options.rounds * options.round_messages} messages in "
            "total, fewer than the 10,000 of a full soak")
    started = time.monotonic()
    try:
        if options.command == "throughput":
            results = run_throughput(options)
        else:
            results = run_soak(options)
    except (BenchFailure, odtest.WaitTimeout, odtest.HarnessError,
            subprocess.TimeoutExpired) as error:
        print(f"error: benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
    log(f"finished in {time.monotonic() - started:.0f} s; load average now "
        f"{os.getloadavg()}")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as output:
            json.dump({"machine": machine, "options": vars(options),
                       **results}, output, indent=2)
            output.write("\n")


if __name__ == "__main__":
    main()
