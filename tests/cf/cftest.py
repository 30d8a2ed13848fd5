# SPDX-License-Identifier: BSD-2-Clause
"""Shared helpers for the ondemand-cf tests.

The tests run sendmail, which sleeps 60 s whenever the host name has no dot.
So enter_namespace() re-runs the calling test as root in a private mount
namespace whose /etc/hosts gives this host a dotted name.  The tests also
mount their own tmpfs file systems there.  Everything they create lives
in one temporary directory, and every process they start is stopped by its
process ID.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e"))
import odtest  # noqa: E402  (found through the path set just above)

SRCDIR = os.path.abspath(os.environ.get("srcdir") or
                         os.path.join(os.path.dirname(__file__), "..", ".."))
TESTS_DIR = os.path.join(SRCDIR, "tests", "cf")
FIXTURES = os.path.join(TESTS_DIR, "fixtures")
EXPECTED = os.path.join(TESTS_DIR, "expected")
TOOL = os.path.abspath(os.environ.get("ONDEMAND_CF") or
                       os.path.join("sendmail-cf", "ondemand-cf"))
FEATURE = os.path.join(SRCDIR, "sendmail-cf", "feature", "ondemand.m4")
SENDMAIL = os.environ.get("SENDMAIL") or "/usr/sbin/sendmail"
# The m4 tree of the sendmail-cf package, used to generate test files.
CF_M4_DIR = os.environ.get("SENDMAIL_CF_M4_DIR") or "/usr/share/sendmail/cf"

NAMESPACE_VARIABLE = "ONDEMAND_CF_TEST_DIR"


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


def enter_namespace():
    """Returns the test's temporary directory, inside the namespace.

    The first call re-runs the script under unshare(1) and exits with its
    status; the re-run returns at once.
    """
    if os.environ.get(NAMESPACE_VARIABLE):
        return os.environ[NAMESPACE_VARIABLE]
    if os.geteuid() != 0:
        skip("needs root: the test mounts a private /etc/hosts and tmpfs "
             "file systems, and runs sendmail as root")
    for program in ("unshare", "mount", "m4"):
        if shutil.which(program) is None:
            skip(f"{program} is not installed")
    if not os.access(SENDMAIL, os.X_OK):
        skip(f"no sendmail at {SENDMAIL}: install sendmail-bin")
    if not os.path.exists(os.path.join(CF_M4_DIR, "m4", "cf.m4")):
        skip(f"no sendmail m4 tree in {CF_M4_DIR}: install sendmail-cf")
    if not os.path.exists(TOOL):
        skip(f"{TOOL} is not built")
    probe = subprocess.run(["unshare", "--mount", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        skip("unshare --mount fails here: " + probe.stderr.strip())

    workdir = tempfile.mkdtemp(prefix="ondemand-cf-test.")
    short = socket.gethostname().split(".")[0] or "localhost"
    hosts = os.path.join(workdir, "hosts")
    with open(hosts, "w") as f:
        f.write(f"127.0.0.1 {short}.ondemand.test {short} localhost\n"
                "::1 localhost\n")
    env = dict(os.environ, **{NAMESPACE_VARIABLE: workdir})
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$1" /etc/hosts && shift && exec "$@"', "sh",
               hosts, sys.executable, os.path.abspath(sys.argv[0])]
    status = subprocess.call(command + sys.argv[1:], env=env)
    shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(status)


class Results:
    """Counts checks and prints the closing "N passed, N failed" line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, condition, detail=""):
        if condition:
            self.passed += 1
            print("PASS: " + name)
        else:
            self.failed += 1
            print("FAIL: " + name + (": " + detail if detail else ""))
        sys.stdout.flush()
        return condition

    def equal(self, name, got, expected):
        return self.check(name, got == expected,
                          f"expected {expected!r}, got {got!r}")

    def contains(self, name, text, part):
        return self.check(name, part in text,
                          f"expected {part!r} in {text!r}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


def run_tool(*args, input_text=None):
    """Runs ondemand-cf; returns (exit status, stdout, stderr)."""
    # Decoded by hand: text mode would turn the "\r\n" of a diff into "\n".
    result = subprocess.run([TOOL] + list(args), capture_output=True,
                            input=None if input_text is None else
                            input_text.encode(), timeout=600)
    return (result.returncode, result.stdout.decode("utf-8", "replace"),
            result.stderr.decode("utf-8", "replace"))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def apply_unified_diff(original, diff):
    """Applies a unified diff (bytes) to original (bytes), as patch(1)
    would; returns the result, or None when a line does not match."""
    old = original.splitlines(keepends=True)
    lines = diff.splitlines(keepends=True)
    result = []
    position = 0
    i = 2
    while i < len(lines):
        match = re.match(rb"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@",
                         lines[i])
        if match is None:
            return None
        start = int(match[1])
        count = 1 if match[2] is None else int(match[2])
        first = start - 1 if count > 0 else start
        result.extend(old[position:first])
        position = first
        i += 1
        while i < len(lines) and not lines[i].startswith(b"@@"):
            tag, text = lines[i][:1], lines[i][1:]
            i += 1
            if i < len(lines) and lines[i].startswith(b"\\ No newline"):
                text = text[:-1]
                i += 1
            if tag in (b" ", b"-"):
                if position >= len(old) or old[position] != text:
                    return None
                position += 1
            if tag in (b" ", b"+"):
                result.append(text)
    result.extend(old[position:])
    return b"".join(result)


def free_port():
    """Return a port on 127.0.0.1 that no other test program will get."""
    return odtest.free_port()


def m4_overlay(workdir):
    """Builds a copy of the sendmail m4 tree, made of symbolic links, whose
    feature directory also contains ondemand.m4 from the source tree; returns
    its cf directory."""
    root = os.path.join(workdir, "m4tree", "cf")
    if os.path.isdir(root):
        return root
    os.makedirs(os.path.join(root, "feature"))
    for name in os.listdir(CF_M4_DIR):
        if name != "feature":
            os.symlink(os.path.join(CF_M4_DIR, name), os.path.join(root, name))
    features = os.path.join(CF_M4_DIR, "feature")
    for name in os.listdir(features):
        os.symlink(os.path.join(features, name),
                   os.path.join(root, "feature", name))
    os.symlink(FEATURE, os.path.join(root, "feature", "ondemand.m4"))
    return root


def run_m4(mc_text, path):
    """Writes mc_text to PATH.mc and the m4 output to path."""
    with open(path + ".mc", "w") as f:
        f.write(mc_text)
    result = subprocess.run(["m4", path + ".mc"], capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0 or result.stderr:
        raise RuntimeError(f"m4 {path}.mc failed: {result.stderr}")
    with open(path, "w") as f:
        f.write(result.stdout)
    return path


def test_mc(workdir, port, cf_dir=CF_M4_DIR, body=""):
    """Returns a sendmail.mc for a test sendmail with its own queue,
    listening on 127.0.0.1:port, with no DNS lookups."""
    switch = os.path.join(workdir, "service.switch")
    with open(switch, "w") as f:
        f.write("hosts files\naliases files\n")
    aliases = os.path.join(workdir, "aliases")
    open(aliases, "a").close()
    os.makedirs(os.path.join(workdir, "queue"), exist_ok=True)
    return f"""divert(-1)
divert(0)dnl
include(`{cf_dir}/m4/cf.m4')dnl
OSTYPE(`linux')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`QUEUE_DIR', `{workdir}/queue')dnl
define(`STATUS_FILE', `{workdir}/statistics')dnl
define(`confPID_FILE', `{workdir}/sendmail.pid')dnl
define(`confSERVICE_SWITCH_FILE', `{switch}')dnl
define(`ALIAS_FILE', `{aliases}')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
DAEMON_OPTIONS(`Family=inet, Name=MTA, Port={port}, Addr=127.0.0.1')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`no_default_msa')dnl
{body}MAILER(`local')dnl
MAILER(`smtp')dnl
"""


class TestSendmail:
    """A sendmail daemon in the foreground (-bD) on a test sendmail.cf."""

    def __init__(self, cf_path, port, log_path):
        self.cf_path = cf_path
        self.port = port
        self.log_path = log_path
        self.process = None

    def start(self):
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [SENDMAIL, "-C", self.cf_path, "-bD"], stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        with open(self.log_path, errors="replace") as f:
            raise RuntimeError("sendmail did not start: " + f.read())

    def stop(self):
        """Stops the daemon and the children it left, each by its PID."""
        if self.process is None:
            return
        session = self.process.pid
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in session_members(session):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process = None


def session_members(session):
    """Returns the PIDs of the live processes in a session we started."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields after the command: state, ppid, pgrp, session.
        if int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class FakeSocketMap:
    """A socket map server on a unix socket that replies self.reply to every
    lookup, in sendmail's netstring protocol.

    A reply starting with "raw:" is sent without netstring framing, and
    "close" closes the connection without a reply; self.delay waits before
    answering.  Requests are recorded in self.requests.
    """

    def __init__(self, path):
        self.path = path
        self.reply = "NOTFOUND "
        self.delay = 0.0
        self.requests = []
        self.stopping = False
        if os.path.exists(path):
            os.unlink(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,),
                             daemon=True).start()

    def _handle(self, connection):
        with connection:
            buffer = b""
            while not self.stopping:
                while b"," not in buffer:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                length, _, rest = buffer.partition(b":")
                size = int(length)
                while len(rest) < size + 1:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    rest += chunk
                self.requests.append(rest[:size].decode("utf-8", "replace"))
                buffer = rest[size + 1:]
                if self.delay:
                    time.sleep(self.delay)
                reply = self.reply
                if reply == "close":
                    return
                if reply.startswith("raw:"):
                    connection.sendall(reply[4:].encode())
                    return
                data = reply.encode()
                try:
                    connection.sendall(b"%d:%s," % (len(data), data))
                except OSError:
                    # sendmail gave up waiting (the slow daemon case).
                    return

    def stop(self):
        self.stopping = True
        self.server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class FakeMilter:
    """A mail filter on a unix socket that lets everything through.

    It speaks just enough of the milter protocol (libmilter's mfdef.h):
    option negotiation asking sendmail to skip every stage it can, then
    "continue" for any command that expects a reply.  self.connections
    counts the sendmail connections.
    """

    # Commands that get no reply: macros, abort, quit, quit with reuse.
    SILENT = b"DAQK"
    # SMFIP_NOCONNECT ... SMFIP_NOEOH, SMFIP_NOUNKNOWN and SMFIP_NODATA.
    SKIP_STAGES = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200

    def __init__(self, path):
        self.path = path
        self.connections = 0
        self.stopping = False
        if os.path.exists(path):
            os.unlink(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(connection,),
                             daemon=True).start()

    @staticmethod
    def _read(connection, size):
        data = b""
        while len(data) < size:
            chunk = connection.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _handle(self, connection):
        with connection:
            while not self.stopping:
                header = self._read(connection, 4)
                if header is None:
                    return
                packet = self._read(connection, int.from_bytes(header, "big"))
                if not packet:
                    return
                command, data = packet[:1], packet[1:]
                if command == b"O":
                    offered = int.from_bytes(data[8:12], "big")
                    reply = (b"O" + data[0:4] + (0).to_bytes(4, "big") +
                             (offered & self.SKIP_STAGES).to_bytes(4, "big"))
                elif command in (b"Q", b"K"):
                    return
                elif command in self.SILENT:
                    continue
                else:
                    reply = b"c"
                connection.sendall(len(reply).to_bytes(4, "big") + reply)

    def stop(self):
        self.stopping = True
        self.server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def smtp_etrn(port, argument, timeout=60):
    """Sends EHLO and ETRN argument; returns the ETRN reply lines."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        stream = s.makefile("rwb")

        def reply():
            lines = []
            while True:
                line = stream.readline().decode("utf-8", "replace")
                if not line:
                    return lines
                lines.append(line.rstrip("\r\n"))
                if len(line) < 4 or line[3] != "-":
                    return lines

        reply()
        stream.write(b"EHLO client.test\r\n")
        stream.flush()
        reply()
        stream.write(b"ETRN " + argument.encode() + b"\r\n")
        stream.flush()
        answer = reply()
        stream.write(b"QUIT\r\n")
        stream.flush()
        reply()
        return answer
