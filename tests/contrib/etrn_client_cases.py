#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Run ondemand-etrn against fake_smtp_server.py and check each result.

Each case starts the fake server with one scenario on 127.0.0.1, runs the
real ondemand-etrn against it, and checks the exit status, stdout, stderr,
the time taken and the commands the server received.  The server and the
client are stopped by their PIDs when a case ends, also when it fails.

Usage: etrn_client_cases.py CLIENT SERVER_SCRIPT [CASE-NAME...]
Output is TAP.  The exit status is 1 when a case failed.
"""

import fnmatch
import re
import select
import socket
import subprocess
import sys
import time

CLIENT_TIMEOUT = 3          # seconds, passed to ondemand-etrn -t
CASE_TIME_LIMIT = 10        # seconds after which a client is killed
# Seconds a case without a timeout may take: less than CLIENT_TIMEOUT, so
# that an unexpected wait for the timeout fails the case.
QUICK = 2.5
# A case that waits for the client's timeout may take this long.
TIMED_OUT = CLIENT_TIMEOUT + 2
SERVER_LIFETIME = 20        # seconds before the fake server exits anyway

HOST = "127.0.0.1"
PORT = "{port}"             # replaced by the fake server's port


class Case:
    """One run of ondemand-etrn and what it must produce.

    stdout: the exact lines, or compiled regular expressions for lines.
    stdout_contains: substrings that must occur in stdout.
    stderr: substrings that must occur in stderr.
    stderr_lines: the exact number of lines in stderr (None: any).
    commands: fnmatch patterns for every command the server receives,
    in order (None: not checked).
    scenario: the fake server's scenario.  With None there is no server,
    and the client gets a port where nothing listens.
    """

    def __init__(self, name, scenario, arguments, status, stdout=(),
                 stderr=(), stderr_lines=None, commands=None,
                 max_seconds=QUICK, min_seconds=0.0, connects=True,
                 absent=(), stdout_contains=(), requires=None):
        self.name = name
        self.scenario = scenario
        self.arguments = arguments
        self.status = status
        self.stdout = list(stdout)
        self.stderr = list(stderr)
        self.stderr_lines = stderr_lines
        self.commands = commands
        self.max_seconds = max_seconds
        self.min_seconds = min_seconds
        self.connects = connects
        self.absent = list(absent)    # substrings that must not be output
        self.stdout_contains = list(stdout_contains)
        # A function returning None when the case can run here, or why not.
        self.requires = requires


def accept_queue_overflow_drops():
    """Return None if Linux drops SYNs to a full accept queue, else why not."""
    path = "/proc/sys/net/ipv4/tcp_abort_on_overflow"
    try:
        with open(path) as setting:
            value = setting.read().strip()
    except OSError as error:
        return "%s is not readable (%s), so this may not be Linux" % (
            path, error.strerror)
    if value != "0":
        return "%s is %s, so a full accept queue resets connections" % (
            path, value)
    return None


def etrn(*domains, options=()):
    """Arguments for a run against the fake server."""
    return ["-t", str(CLIENT_TIMEOUT), "-p", PORT, *options, HOST,
            *domains]


def usage_case(name, arguments, message):
    """A command line rejected before connecting, with exit status 64."""
    return Case(name, "normal", arguments, 64, stderr=[message],
                connects=False, max_seconds=QUICK)


LONG_DOMAIN = ".".join(["a" * 62] * 4) + ".ab"      # 254 octets
assert len(LONG_DOMAIN) == 254
LONG_LABEL = "a" * 64 + ".test"

CASES = [
    # Replies of RFC 1985.
    Case("reply 250 started", "normal", etrn("example.test"), 0,
         stdout=["example.test: delivery started (250 2.0.0 Queuing for "
                 "node example.test started)"],
         stderr_lines=0,
         commands=["EHLO *", "ETRN example.test", "QUIT"]),
    Case("reply 251 nothing waiting", "normal", etrn("r251.example.test"), 1,
         stdout=["r251.example.test: no messages waiting (251 2.0.0 OK, no "
                 "messages waiting for node r251.example.test)"],
         stderr_lines=0),
    Case("reply 252 pending started", "normal", etrn("r252.example.test"), 0,
         stdout=["r252.example.test: delivery of pending messages started "
                 "(252 OK, pending messages for node r252.example.test "
                 "started)"]),
    Case("reply 253 with count", "normal", etrn("r253.example.test"), 0,
         stdout=["r253.example.test: delivery of 17 pending messages "
                 "started (253 OK, 17 pending messages for node "
                 "r253.example.test started)"]),
    Case("reply 458 temporary failure", "normal", etrn("r458.example.test"),
         2,
         stdout=["r458.example.test: temporary failure, the server cannot "
                 "start delivery now (458 4.3.0 Unable to queue messages "
                 "for node r458.example.test)"],
         commands=["EHLO *", "ETRN r458.example.test", "QUIT"]),
    Case("reply 459 rejected", "normal", etrn("r459.example.test"), 3,
         stdout=["r459.example.test: rejected, the server does not allow "
                 "ETRN for this domain or this client (459 5.7.1 Node "
                 "r459.example.test not allowed: not an on-demand domain)"]),
    Case("reply 500 rejected", "normal", etrn("r500.example.test"), 3,
         stdout=["r500.example.test: rejected, the server does not "
                 "recognise the ETRN command (500 5.5.1 Command "
                 "unrecognized)"]),
    Case("reply 501 rejected", "normal", etrn("r501.example.test"), 3,
         stdout=["r501.example.test: rejected, the server reports a syntax "
                 "error in the argument (501 5.5.4 Syntax error in "
                 "parameters)"]),
    Case("reply 502 rejected", "normal", etrn("r502.example.test"), 3,
         stdout=["r502.example.test: rejected, the server does not "
                 "implement ETRN (502 5.5.1 Command not implemented)"]),
    Case("reply 421 ends session", "normal",
         etrn("r421.example.test", "second.example.test"), 2,
         stdout=[re.compile(r"r421\.example\.test: temporary failure, the "
                            r"server is closing the connection \(421 ")],
         stderr=["the session ended before ETRN was sent for: "
                 "second.example.test"],
         stderr_lines=1,
         commands=["EHLO *", "ETRN r421.example.test"]),
    Case("reply 354 unexpected", "normal", etrn("r354.example.test"), 6,
         stdout=["r354.example.test: unexpected reply code 354 (354 Enter "
                 "mail, end with \".\" on a line by itself)"],
         commands=["EHLO *", "ETRN r354.example.test"]),
    Case("multi-line ETRN reply", "multiline-etrn", etrn("example.test"), 0,
         stdout=["example.test: delivery started (250 2.0.0 Queuing for "
                 "node example.test started Delivery runs in the "
                 "background)"]),
    Case("multi-line greeting", "multiline-greeting", etrn("example.test"),
         0, stdout=["example.test: delivery started (250 2.0.0 Queuing for "
                    "node example.test started)"]),
    Case("bare LF line ends", "bare-lf", etrn("example.test"), 0,
         stdout=["example.test: delivery started (250 2.0.0 Queuing for "
                 "node example.test started)"]),

    # Several domains: one line each, in order, and the largest status.
    Case("statuses 0 and 1 give 1", "normal",
         etrn("example.test", "r251.example.test"), 1,
         stdout=[re.compile(r"example\.test: delivery started "),
                 re.compile(r"r251\.example\.test: no messages waiting ")],
         commands=["EHLO *", "ETRN example.test", "ETRN r251.example.test",
                   "QUIT"]),
    Case("statuses 2 and 1 give 2", "normal",
         etrn("r458.example.test", "r251.example.test"), 2,
         stdout=[re.compile(r"r458\.example\.test: temporary failure"),
                 re.compile(r"r251\.example\.test: no messages waiting ")]),
    Case("statuses 3, 2 and 0 give 3", "normal",
         etrn("r459.example.test", "r458.example.test", "example.test"), 3,
         stdout=[re.compile(r"r459\.example\.test: rejected"),
                 re.compile(r"r458\.example\.test: temporary failure"),
                 re.compile(r"example\.test: delivery started ")]),

    # Argument forms are sent as given.
    Case("subdomain and queue forms", "normal",
         etrn("@example.test", "#r251.queue"), 1,
         stdout=[re.compile(r"@example\.test: delivery started "),
                 re.compile(r"#r251\.queue: no messages waiting ")],
         commands=["EHLO *", "ETRN @example.test", "ETRN #r251.queue",
                   "QUIT"]),
    Case("trailing dot kept", "normal", etrn("example.test."), 0,
         commands=["EHLO *", "ETRN example.test.", "QUIT"]),

    # EHLO, HELO and the ETRN extension.
    Case("EHLO rejected falls back to HELO", "ehlo-rejected",
         etrn("example.test"), 0,
         stdout=[re.compile(r"example\.test: delivery started ")],
         stderr=["rejected EHLO and accepted HELO"], stderr_lines=1,
         commands=["EHLO *", "HELO *", "ETRN example.test", "QUIT"]),
    Case("EHLO and HELO rejected", "ehlo-helo-rejected",
         etrn("example.test"), 3,
         stderr=["127.0.0.1 port {port} rejected HELO",
                 "(550 5.7.1 Access denied)"],
         stderr_lines=1,
         commands=["EHLO *", "HELO *", "QUIT"]),
    Case("EHLO answered 421", "ehlo-tempfail", etrn("example.test"), 2,
         stderr=["rejected EHLO", "temporarily (421 4.3.2 Shutting down)"],
         stderr_lines=1, commands=["EHLO *"]),
    Case("ETRN not advertised warns", "no-etrn-advertised",
         etrn("example.test"), 0,
         stdout=[re.compile(r"example\.test: delivery started ")],
         stderr=["warning: 127.0.0.1 port {port} does not list ETRN in its "
                 "EHLO reply"],
         stderr_lines=1,
         commands=["EHLO *", "ETRN example.test", "QUIT"]),
    Case("HELO name option", "normal",
         etrn("example.test", options=["-H", "client.example.test"]), 0,
         commands=["EHLO client.example.test", "ETRN example.test", "QUIT"]),
    Case("default HELO name", "normal", etrn("example.test"), 0,
         commands=["EHLO ?*", "ETRN example.test", "QUIT"]),

    # Bad servers.
    Case("connection refused", None, etrn("example.test"), 4,
         stderr=["connection to 127.0.0.1 port {port} failed: Connection "
                 "refused"],
         stderr_lines=1, connects=False),
    Case("connect times out", "accept-queue-full", etrn("example.test"), 5,
         stderr=["connection to 127.0.0.1 port {port} timed out: no "
                 "connection within %d s" % CLIENT_TIMEOUT],
         stderr_lines=1, connects=False,
         min_seconds=CLIENT_TIMEOUT - 0.2, max_seconds=TIMED_OUT,
         requires=accept_queue_overflow_drops),
    Case("server never answers", "never-answers", etrn("example.test"), 5,
         stderr=["127.0.0.1 port {port}: timed out waiting for the "
                 "greeting"],
         stderr_lines=1, commands=[],
         min_seconds=CLIENT_TIMEOUT - 0.2, max_seconds=TIMED_OUT),
    Case("ETRN never answered", "no-etrn-reply",
         etrn("example.test", "second.example.test"), 5,
         stderr=["timed out waiting for the reply to ETRN example.test",
                 "the session ended before ETRN was sent for: "
                 "second.example.test"],
         stderr_lines=2,
         commands=["EHLO *", "ETRN example.test"],
         min_seconds=CLIENT_TIMEOUT - 0.2, max_seconds=TIMED_OUT),
    Case("greeting sent too slowly", "slow-drip", etrn("example.test"), 5,
         stderr=["timed out waiting for the greeting"], stderr_lines=1,
         min_seconds=CLIENT_TIMEOUT - 0.2, max_seconds=TIMED_OUT),
    Case("closed before greeting", "close-before-greeting",
         etrn("example.test"), 4,
         stderr=["127.0.0.1 port {port} closed the connection before "
                 "sending the greeting"],
         stderr_lines=1),
    Case("closed after EHLO", "close-after-ehlo", etrn("example.test"), 4,
         stderr=["closed the connection before sending the reply to EHLO"],
         stderr_lines=1, commands=["EHLO *"]),
    Case("garbage greeting", "garbage-greeting", etrn("example.test"), 6,
         stderr=["127.0.0.1 port {port} sent an invalid greeting: line does "
                 "not start with a 3-digit SMTP reply code: \"hello "
                 "world\""],
         stderr_lines=1, commands=[]),
    Case("garbage ETRN reply", "garbage-etrn-reply", etrn("example.test"),
         6,
         stderr=["sent an invalid reply to ETRN example.test: line does not "
                 "start with a 3-digit SMTP reply code: \"OK, fine\""],
         stderr_lines=1),
    Case("over-long reply line", "long-line", etrn("example.test"), 6,
         stderr=["sent an invalid greeting: reply line longer than 4096 "
                 "octets"],
         stderr_lines=1),
    Case("endless reply line", "unterminated-line", etrn("example.test"), 6,
         stderr=["reply line longer than 4096 octets"], stderr_lines=1),
    Case("reply line at limit", "max-length-line", etrn("example.test"), 0,
         stdout=[re.compile(r"example\.test: delivery started \(250 2\.0\.0 "
                            r"z{990,}\.\.\.\)$")]),
    Case("reply codes differ", "code-mismatch", etrn("example.test"), 6,
         stderr=["lines of one multi-line reply have different reply codes"],
         stderr_lines=1),
    Case("greeting 554", "greeting-554", etrn("example.test"), 3,
         stderr=["127.0.0.1 port {port} rejected the session (554 5.7.1 "
                 "mx.example.test No SMTP service here)"],
         stderr_lines=1, commands=["QUIT"]),
    Case("greeting 421", "greeting-421", etrn("example.test"), 2,
         stderr=["127.0.0.1 port {port} does not accept sessions now (421 "
                 "4.3.2 mx.example.test Too many connections)"],
         stderr_lines=1, commands=[]),
    Case("control characters escaped", "control-characters",
         etrn("example.test"), 0,
         stdout=["example.test: delivery started (250 2.0.0 Queuing "
                 "\\x1b[31mfor\\x07 node example.test started)"],
         absent=["\x1b", "\x07"]),

    # Options.
    Case("verbose dialogue", "normal",
         etrn("example.test", options=["-v"]), 0,
         stdout=[re.compile(r"example\.test: delivery started ")],
         stderr=["S: 220 mx.example.test ESMTP ready", "C: EHLO ",
                 "S: 250-ETRN", "C: ETRN example.test",
                 "S: 250 2.0.0 Queuing for node example.test started",
                 "C: QUIT", "S: 221 2.0.0"]),
    Case("IPv4 forced", "normal", etrn("example.test", options=["-4"]), 0),
    Case("IPv6 forced on IPv4 address", None,
         etrn("example.test", options=["-6"]), 4,
         stderr=["lookup of server name \"127.0.0.1\" failed"],
         stderr_lines=1, connects=False),
    Case("bracketed server address", "normal",
         ["-t", str(CLIENT_TIMEOUT), "-p", PORT, "[127.0.0.1]",
          "example.test"], 0),
    Case("help", None, ["-h"], 0, stderr_lines=0, connects=False,
         stdout_contains=["usage: ondemand-etrn [-p PORT]",
                          "3 rejected, 4 connection failed, 5 timed out"]),

    # Command lines rejected before connecting.
    usage_case("empty domain", etrn(""), "invalid domain \"\""),
    usage_case("domain with space", etrn("exa mple.test"),
               "a space at offset 3"),
    usage_case("domain with control", etrn("exa\x01mple.test"),
               "\\x01 at offset 3"),
    usage_case("domain with underscore", etrn("ex_ample.test"),
               "'_' at offset 2"),
    usage_case("domain with leading dot", etrn(".example.test"),
               "write @example.test"),
    usage_case("domain too long", etrn(LONG_DOMAIN),
               "254 octets, more than the 253 allowed"),
    usage_case("label too long", etrn(LONG_LABEL),
               "64 octets, more than the 63 allowed"),
    usage_case("bare at sign", etrn("@"), "no domain after @"),
    usage_case("bare hash sign", etrn("#"), "no name after #"),
    usage_case("non-ASCII domain", etrn("b\u00fccher.test"),
               "A-label (xn--) form"),
    Case("every bad domain reported", "normal",
         etrn("bad domain.test", "ok.example.test", "also_bad.test"), 64,
         stderr=["\"bad domain.test\"", "\"also_bad.test\""],
         stderr_lines=2, connects=False),
    usage_case("timeout zero", ["-t", "0", HOST, "example.test"],
               "invalid timeout \"0\" for -t"),
    usage_case("timeout not a number", ["-t", "soon", HOST, "example.test"],
               "invalid timeout \"soon\" for -t"),
    usage_case("timeout too large", ["-t", "3601", HOST, "example.test"],
               "from 1 to 3600"),
    usage_case("port zero", ["-p", "0", HOST, "example.test"],
               "invalid port \"0\" for -p"),
    usage_case("port too large", ["-p", "70000", HOST, "example.test"],
               "invalid port \"70000\" for -p"),
    usage_case("unknown service", ["-p", "no-such-service", HOST,
                                   "example.test"],
               "no such TCP service"),
    usage_case("both -4 and -6", ["-4", "-6", HOST, "example.test"],
               "-4 and -6 cannot be used together"),
    usage_case("invalid HELO name", ["-H", "bad name", HOST, "example.test"],
               "invalid HELO name \"bad name\""),
    usage_case("missing domain", [HOST], "missing DOMAIN argument"),
    usage_case("no arguments", [], "missing SERVER and DOMAIN arguments"),
    usage_case("unknown option", ["-x", HOST, "example.test"],
               "Try 'ondemand-etrn -h' for help."),
]


def free_port_without_listener():
    """Return a loopback port that nothing listens on (connect is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(server_script, scenario):
    """Start the fake server; return the process and its port."""
    process = subprocess.Popen(
        [sys.executable, server_script, "--scenario", scenario,
         "--lifetime", str(SERVER_LIFETIME)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([process.stdout], [], [], 5)
    line = process.stdout.readline() if ready else ""
    match = re.fullmatch(r"PORT (\d+)\n", line)
    if not match:
        stop_process(process)
        raise RuntimeError("fake SMTP server did not report its port, "
                           "it printed %r" % line)
    return process, int(match.group(1))


def stop_process(process, grace=3.0):
    """Stop a process we started, by its PID, and return its output.

    The process gets grace seconds to exit by itself, then SIGTERM, then
    SIGKILL.
    """
    try:
        return process.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        return process.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def check_lines(stream_name, expected, actual, failures):
    """Compare output lines with expected strings or patterns."""
    if len(actual) != len(expected):
        failures.append("%s has %d lines, expected %d: %r"
                        % (stream_name, len(actual), len(expected), actual))
        return
    for number, (pattern, line) in enumerate(zip(expected, actual), 1):
        if isinstance(pattern, str):
            matched = line == pattern
        else:
            matched = pattern.match(line) is not None
        if not matched:
            failures.append("%s line %d is %r, expected %r"
                            % (stream_name, number, line, pattern if isinstance(
                                pattern, str) else pattern.pattern))


def run_case(client, server_script, case):
    """Run one case and return its failures, an empty list if it passed."""
    failures = []
    server = None
    server_output = ""
    server_errors = ""
    try:
        if case.scenario is None:
            port = free_port_without_listener()
        else:
            server, port = start_server(server_script, case.scenario)

        arguments = [argument.replace(PORT, str(port))
                     for argument in case.arguments]
        started = time.monotonic()
        try:
            result = subprocess.run([client, *arguments],
                                    capture_output=True,
                                    timeout=CASE_TIME_LIMIT)
        except subprocess.TimeoutExpired:
            # run() has killed the client by its PID.
            return ["ondemand-etrn still ran after %d s and was killed"
                    % CASE_TIME_LIMIT]
        elapsed = time.monotonic() - started

        if server is not None:
            # A server that got no connection waits for one until killed.
            server_output, server_errors = stop_process(
                server, grace=3.0 if case.connects else 0.0)
            server = None
    finally:
        if server is not None:
            stop_process(server)

    stdout = result.stdout.decode("utf-8", "replace")
    stderr = result.stderr.decode("utf-8", "replace")

    if result.returncode != case.status:
        failures.append("exit status %d, expected %d"
                        % (result.returncode, case.status))
    if case.stdout:
        check_lines("stdout", case.stdout, stdout.splitlines(), failures)
    elif case.status >= 4 and stdout:
        failures.append("stdout is not empty after a failure")
    for part in case.stdout_contains:
        if part not in stdout:
            failures.append("stdout lacks %r" % part)
    for part in case.stderr:
        part = part.replace(PORT, str(port))
        if part not in stderr:
            failures.append("stderr lacks %r" % part)
    if case.stderr_lines is not None and \
            len(stderr.splitlines()) != case.stderr_lines:
        failures.append("stderr has %d lines, expected %d"
                        % (len(stderr.splitlines()), case.stderr_lines))
    for part in case.absent:
        if part in stdout or part in stderr:
            failures.append("output contains %r" % part)
    if elapsed > case.max_seconds:
        failures.append("took %.2f s, limit %.2f s"
                        % (elapsed, case.max_seconds))
    if elapsed < case.min_seconds:
        failures.append("took %.2f s, expected at least %.2f s (the "
                        "timeout was not waited for)"
                        % (elapsed, case.min_seconds))

    if case.scenario is not None:
        transcript = server_output.splitlines()
        connected = "CONNECTED" in transcript
        if connected != case.connects:
            failures.append("the client %s, expected it %s"
                            % ("connected" if connected else
                               "did not connect",
                               "to connect" if case.connects else
                               "not to connect"))
        commands = [line[3:] for line in transcript
                    if line.startswith("C: ")]
        if case.commands is not None:
            if len(commands) != len(case.commands) or not all(
                    fnmatch.fnmatchcase(command, pattern)
                    for command, pattern in zip(commands, case.commands)):
                failures.append("server received %r, expected %r"
                                % (commands, case.commands))
        if server_errors.strip():
            failures.append("fake server wrote to stderr: %s"
                            % server_errors.strip())

    if failures:
        failures.append("stdout was: %r" % stdout)
        failures.append("stderr was: %r" % stderr)
    return failures


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    client, server_script = argv[1], argv[2]
    selected = [case for case in CASES
                if len(argv) == 3 or case.name in argv[3:]]
    if not selected:
        print("no case matches %s" % argv[3:], file=sys.stderr)
        return 2

    print("1..%d" % len(selected))
    failed = 0
    for number, case in enumerate(selected, 1):
        reason = case.requires() if case.requires else None
        if reason is not None:
            print("ok %d - %s # SKIP %s" % (number, case.name, reason))
            continue
        try:
            failures = run_case(client, server_script, case)
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            failures = ["the test could not run: %s" % error]
        if failures:
            failed += 1
            print("not ok %d - %s" % (number, case.name))
            for failure in failures:
                print("#   " + failure)
        else:
            print("ok %d - %s" % (number, case.name))
        sys.stdout.flush()
    print("# %d of %d cases failed" % (failed, len(selected)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
