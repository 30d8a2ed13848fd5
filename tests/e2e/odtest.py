# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end test harness for ondemand.

A test gets its own sendmail (generated sendmail.cf, queue, port on
127.0.0.1), the ondemand-milter under test, an SMTP sink that replaces every
remote server, and a syslog receiver on its own /dev/log. All of it runs
inside a private mount namespace that the test script enters by re-executing
itself under unshare(1), so /etc/hosts and /dev change for the test processes
only.

A test script calls main() instead of unittest.main(). The end-to-end tests,
the demo and the benchmarks import this module; it uses only the Python
standard library.

Environment variables:
    ONDEMAND_BUILDDIR   top build directory (default: two levels above this file)
    ONDEMAND_MILTER     path of ondemand-milter (default: BUILDDIR/milter/ondemand-milter)
    ONDEMAND_KEEP_TMP   1 keeps each test's temporary directory for inspection
    ONDEMAND_E2E_TIMEOUT  seconds that each wait may take (default 10, or
                        30 with ONDEMAND_VALGRIND=1)
    ONDEMAND_VALGRIND   1 runs ondemand-milter under valgrind's memcheck
    ONDEMAND_SANITIZERS 1 marks programs built with --enable-sanitizers,
                        and make check sets it in such a build
"""

import atexit
import contextlib
import dataclasses
import email.message
import email.utils
import fcntl
import os
import pwd
import random
import re
import shutil
import signal
import smtplib
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

EXIT_SKIP = 77
EXIT_HARD_ERROR = 99

SENDMAIL_CF_DIR = os.environ.get("ONDEMAND_SENDMAIL_CF_DIR",
                                 "/usr/share/sendmail/cf")
TOOL_PATH = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin:/usr/lib"

# ONDEMAND_VALGRIND=1 (any value but empty, 0 or no) runs ondemand-milter
# under valgrind's memcheck, which slows it down many times, so each wait
# gets a longer default limit.
VALGRIND_REQUESTED = os.environ.get("ONDEMAND_VALGRIND", "") not in (
    "", "0", "no")
WAIT_TIMEOUT = float(os.environ.get("ONDEMAND_E2E_TIMEOUT",
                                    "30" if VALGRIND_REQUESTED else "10"))
# The exit status that valgrind gives ondemand-milter after an error or a
# definite leak. The daemon's own exit statuses are sysexits codes (0-78).
VALGRIND_ERROR_EXIT = 97

# Set by the parent to its own mount namespace, so that the re-executed child
# can verify that it really runs in a different one before it mounts anything.
NAMESPACE_ENV = "ONDEMAND_E2E_PARENT_MNTNS"

# sendmail sleeps 60 s at every start when the host name has no dot, so the
# private /etc/hosts gives this host a name in a reserved test domain.
TEST_DOMAIN = "ondemand.test"
SINK_HOST_NAME = "sink.ondemand.test"
POSTMASTER_ADDRESS = "postmaster@errors.ondemand.test"

# Device files that sendmail, the milter and Python open. Missing ones are
# skipped, because not every sandbox has all of them.
DEVICE_FILES = ("null", "zero", "full", "random", "urandom", "tty")
DEVICE_DIRS = ("pts", "shm", "mqueue")
DEVICE_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}


class WaitTimeout(AssertionError):
    """A wait for a log line, a message or a process state timed out.

    It is an AssertionError so that unittest reports a failure, not an error.
    """


class HarnessError(RuntimeError):
    """A process of the harness failed to start or stop."""


class CheckerReport(AssertionError):
    """A sanitizer or valgrind report that ondemand-milter wrote during a test.

    It is an AssertionError so that unittest reports a failure, not an error.
    """


# ---------------------------------------------------------------------------
# Entering the test environment


def skip(reason):
    """Print one line saying why the test is skipped and exit with 77."""
    print(f"SKIP: {reason}", flush=True)
    sys.exit(EXIT_SKIP)


def find_tool(name):
    return shutil.which(name, path=TOOL_PATH)


def check_prerequisites():
    """Exit 77 unless the machine can run the end-to-end tests."""
    if os.geteuid() != 0:
        skip("the end-to-end tests need root: they run their own sendmail "
             "daemon and mount a private /dev and /etc/hosts")
    packages = {
        "sendmail": "sendmail-bin",
        "makemap": "sendmail-bin",
        "m4": "m4",
        "unshare": "util-linux",
        "mount": "mount",
    }
    for tool, package in packages.items():
        if find_tool(tool) is None:
            skip(f"{tool} not found in {TOOL_PATH} (install {package})")
    cf_m4 = os.path.join(SENDMAIL_CF_DIR, "m4", "cf.m4")
    if not os.path.exists(cf_m4):
        skip(f"{cf_m4} not found (install sendmail-cf, or set "
             "ONDEMAND_SENDMAIL_CF_DIR)")


def mount_namespace_id(pid="self"):
    return os.readlink(f"/proc/{pid}/ns/mnt")


def enter_namespace():
    """Re-execute this script in a private mount namespace and set it up there.

    In the parent this function does not return: it execs unshare(1), which
    execs the same Python script again. In the child it mounts the private
    /etc/hosts and /dev and returns.
    """
    parent_namespace = os.environ.get(NAMESPACE_ENV)
    if parent_namespace is None:
        env = dict(os.environ)
        env[NAMESPACE_ENV] = mount_namespace_id()
        argv = [find_tool("unshare"), "--mount", "--propagation", "private",
                "--", sys.executable, os.path.abspath(sys.argv[0]),
                *sys.argv[1:]]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(argv[0], argv, env)

    if mount_namespace_id() == parent_namespace:
        # Mounting here would change /etc/hosts and /dev for the whole machine.
        print(f"error: {NAMESPACE_ENV} is set but this process is not in a "
              "private mount namespace; unset it and run the test again",
              file=sys.stderr)
        sys.exit(EXIT_HARD_ERROR)
    setup_namespace()


def run_mount(*args):
    result = subprocess.run([find_tool("mount"), *args], capture_output=True,
                            text=True, timeout=WAIT_TIMEOUT, check=False)
    if result.returncode != 0:
        raise HarnessError(f"mount {' '.join(args)} failed "
                           f"(exit {result.returncode}): {result.stderr.strip()}")


def setup_namespace():
    """Mount a private /etc/hosts, name service files and /dev.

    The private /dev lets SyslogCapture serve /dev/log. The directory that
    contains the replacement files is removed at exit. The mounts end with
    the namespace.
    """
    state_dir = tempfile.mkdtemp(prefix="ondemand-e2e-ns-")
    atexit.register(shutil.rmtree, state_dir, ignore_errors=True)

    short_name = socket.gethostname().split(".")[0]
    hosts_path = os.path.join(state_dir, "hosts")
    with open(hosts_path, "w", encoding="ascii") as hosts:
        hosts.write(f"127.0.0.1\t{short_name}.{TEST_DOMAIN} {short_name} "
                    "localhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n")
    os.chmod(hosts_path, 0o644)
    run_mount("--bind", hosts_path, "/etc/hosts")
    keep_resolver_on_loopback(state_dir)

    # Build the new /dev on a tmpfs beside the old one, then move it over
    # /dev, because the old device files must stay reachable until then.
    new_dev = os.path.join(state_dir, "dev")
    os.mkdir(new_dev)
    run_mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "ondemand-e2e-dev",
              new_dev)
    for name in DEVICE_FILES:
        source = os.path.join("/dev", name)
        if not os.path.exists(source):
            continue
        target = os.path.join(new_dev, name)
        open(target, "w", encoding="ascii").close()
        run_mount("--bind", source, target)
    for name in DEVICE_DIRS:
        source = os.path.join("/dev", name)
        if not os.path.isdir(source):
            continue
        target = os.path.join(new_dev, name)
        os.mkdir(target)
        run_mount("--rbind", source, target)
    for name, link_target in DEVICE_LINKS.items():
        os.symlink(link_target, os.path.join(new_dev, name))
    run_mount("--move", new_dev, "/dev")


def keep_resolver_on_loopback(state_dir):
    """Make host lookups of every test process use /etc/hosts and never a DNS server.

    sendmail's own service switch covers only its own lookups. Others go
    through the C library, which follows /etc/nsswitch.conf and
    /etc/resolv.conf. Without this, sendmail's start sometimes stalled for
    5 s, the resolver's timeout, waiting for the name server named in
    /etc/resolv.conf.
    """
    nsswitch_path = os.path.join(state_dir, "nsswitch.conf")
    try:
        with open("/etc/nsswitch.conf", encoding="utf-8") as original:
            lines = original.read().splitlines()
    except FileNotFoundError:
        lines = ["passwd: files", "group: files"]
    lines = [line for line in lines
             if not line.lstrip().startswith("hosts:")]
    lines.append("hosts: files")
    write_file(nsswitch_path, "\n".join(lines) + "\n")
    run_mount("--bind", nsswitch_path, "/etc/nsswitch.conf")

    # A lookup that bypasses nsswitch.conf goes to 127.0.0.1, where no name
    # server listens, and fails at once.
    resolv_path = os.path.join(state_dir, "resolv.conf")
    write_file(resolv_path,
               "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    run_mount("--bind", resolv_path, "/etc/resolv.conf")


def main(module="__main__"):
    """Run a test script's unittest cases inside the private test environment.

    Exits 0 when tests passed, 77 when every test was skipped, 1 on
    failures, and 99 when the namespace cannot be set up.
    """
    check_prerequisites()
    enter_namespace_or_exit()

    program = unittest.main(module=module, exit=False, verbosity=2)
    result = program.result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        sys.exit(EXIT_SKIP)
    sys.exit(0)


def enter_namespace_or_exit():
    """Enter the private test namespace and install the signal handlers.

    Exits with EXIT_HARD_ERROR when the namespace cannot be set up. The
    tests' main() and the benchmarks call it after check_prerequisites().
    """
    try:
        enter_namespace()
    except HarnessError as error:
        print(f"error: cannot set up the private test namespace: {error}",
              file=sys.stderr)
        sys.exit(EXIT_HARD_ERROR)
    install_signal_handlers()


def install_signal_handlers():
    """Turn SIGTERM and SIGHUP into SystemExit so that cleanup code runs."""
    def exit_on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, exit_on_signal)
    signal.signal(signal.SIGHUP, exit_on_signal)


def in_test_namespace():
    parent_namespace = os.environ.get(NAMESPACE_ENV)
    return (parent_namespace is not None
            and mount_namespace_id() != parent_namespace)


# ---------------------------------------------------------------------------
# Helpers


def wait_until(predicate, timeout=WAIT_TIMEOUT, interval=0.02,
               description="condition"):
    """Call predicate until it returns a true value and return that value.

    Raises WaitTimeout after timeout seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for "
                              f"{description}")
        time.sleep(interval)


# Test servers take ports from this range, below Linux's ephemeral ports
# (32768-60999), so that sendmail's outgoing connections never hold them.
TEST_PORT_RANGE = (20000, 29999)


# Ports handed out by free_port() in this process. Each stays reserved,
# through a lock on PORT_LOCK_DIR/PORT, until the process exits.
_reserved_ports = {}

PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "ondemand-test-ports")


def _reserve_port(port):
    """Take the cross-process lock on port; return True when it is ours.

    Test programs run in parallel (make -j), and a port that is only
    checked free can be bound by another program before its user binds
    it, or stay unbound on purpose (a customer's server that is down).
    The lock is an flock on a file named after the port, which the kernel
    drops when the process ends, however it ends.
    """
    try:
        if not os.path.isdir(PORT_LOCK_DIR):
            os.makedirs(PORT_LOCK_DIR, exist_ok=True)
            # Shared by every user that runs tests, like /tmp itself.
            with contextlib.suppress(OSError):
                os.chmod(PORT_LOCK_DIR, 0o1777)
        descriptor = os.open(os.path.join(PORT_LOCK_DIR, str(port)),
                             os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return False
    _reserved_ports[port] = descriptor
    return True


def free_port():
    """Return a TCP port on 127.0.0.1 that no other test program will get.

    The port is drawn at random from TEST_PORT_RANGE, locked for this
    process (see _reserve_port) and checked free. Asking the kernel for
    port 0 instead gave two tests running in parallel the same port: some
    kernels (gVisor's among them) hand out ephemeral ports in sequence, so
    a port released here went to the next test that asked.
    """
    for _ in range(500):
        port = random.randint(*TEST_PORT_RANGE)
        if port in _reserved_ports or not _reserve_port(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                # Keep the lock: the port is busy, so it is no use here.
                continue
            return port
    raise HarnessError(f"no free TCP port on 127.0.0.1 in "
                       f"{TEST_PORT_RANGE[0]}-{TEST_PORT_RANGE[1]}")


def read_tail(path, max_bytes=4000):
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - max_bytes))
            return stream.read().decode("utf-8", "replace")
    except OSError:
        return ""


def keep_temporary_files():
    return os.environ.get("ONDEMAND_KEEP_TMP") == "1"


def sanitizer_build():
    """Return whether the programs were built with --enable-sanitizers.

    make check sets ONDEMAND_SANITIZERS=1 in such a build, and a test run
    by hand needs it set the same way.
    """
    return os.environ.get("ONDEMAND_SANITIZERS") == "1"


def default_builddir():
    return os.environ.get(
        "ONDEMAND_BUILDDIR",
        os.path.normpath(os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "..", "..")))


def default_milter_path():
    return os.environ.get(
        "ONDEMAND_MILTER",
        os.path.join(default_builddir(), "milter", "ondemand-milter"))


# ---------------------------------------------------------------------------
# Processes


class ManagedProcess:
    """A child process that the harness started and must stop by its PID.

    Every instance is registered until it has been reaped, and an atexit
    handler stops the ones that are left, so a failed or interrupted test
    leaves no process behind.
    """

    running = set()
    lock = threading.Lock()

    def __init__(self, name, argv, stdout_path, env=None):
        self.name = name
        self.argv = list(argv)
        self.stdout_path = stdout_path
        with open(stdout_path, "ab") as output:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, env=env, close_fds=True)
        with ManagedProcess.lock:
            ManagedProcess.running.add(self)

    @property
    def pid(self):
        return self.popen.pid

    def poll(self):
        code = self.popen.poll()
        if code is not None:
            self._forget()
        return code

    def send_signal(self, signum):
        """Send signum to the process unless it has already been reaped."""
        if self.popen.returncode is None:
            self.popen.send_signal(signum)

    def stop(self, timeout=WAIT_TIMEOUT, signum=signal.SIGTERM):
        """Send signum, wait for the exit and return the exit code.

        A process that is still running after timeout seconds gets SIGKILL.
        """
        if self.popen.returncode is None:
            self.popen.send_signal(signum)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"odtest: {self.name} (pid {self.pid}) ignored signal "
                      f"{signum} for {timeout:g} s; sending SIGKILL",
                      file=sys.stderr)
                self.popen.kill()
                self.popen.wait(timeout)
        self._forget()
        return self.popen.returncode

    def kill(self):
        return self.stop(signum=signal.SIGKILL)

    def output(self):
        """Return the tail of the process's stdout and stderr."""
        return read_tail(self.stdout_path)

    def _forget(self):
        with ManagedProcess.lock:
            ManagedProcess.running.discard(self)

    @classmethod
    def stop_all(cls):
        with cls.lock:
            processes = list(cls.running)
        for process in processes:
            process.stop(timeout=5)


atexit.register(ManagedProcess.stop_all)


# ---------------------------------------------------------------------------
# Syslog


@dataclasses.dataclass(frozen=True)
class LogLine:
    """One syslog message received on /dev/log."""

    facility: int
    severity: int
    ident: str
    pid: int | None
    message: str
    received: float = 0.0  # time.time() when the harness received it

    def __str__(self):
        pid = f"[{self.pid}]" if self.pid is not None else ""
        return f"{self.ident}{pid}: {self.message}"


# glibc's syslog(3) sends "<PRI>Mmm dd hh:mm:ss ident[pid]: message" on the
# local socket, without a host name.
SYSLOG_FORMAT = re.compile(
    r"<(?P<pri>\d{1,3})>"
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?"
    r"(?P<ident>[^\[: ]+)(?:\[(?P<pid>\d+)\])?: ?"
    r"(?P<message>.*)", re.DOTALL)

LOG_MAIL = 2
LOG_WARNING = 4


def parse_syslog_datagram(data, received=0.0):
    text = data.decode("utf-8", "replace").rstrip("\n\0")
    match = SYSLOG_FORMAT.fullmatch(text)
    if match is None:
        return LogLine(facility=-1, severity=-1, ident="", pid=None,
                       message=text, received=received)
    priority = int(match.group("pri"))
    pid = match.group("pid")
    return LogLine(facility=priority >> 3, severity=priority & 7,
                   ident=match.group("ident"),
                   pid=int(pid) if pid else None,
                   message=match.group("message"), received=received)


class SyslogCapture:
    """Syslog receiver on a unix datagram socket, by default /dev/log.

    Every line that sendmail and the milter send to syslog(3) is kept, so
    tests can wait for a line and assert on its content.
    """

    def __init__(self, path="/dev/log"):
        self.path = path
        self._lines = []
        self._condition = threading.Condition()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(path)
        # sendmail's mailers and a milter that dropped root log as other users.
        os.chmod(path, 0o666)
        self._closed = False
        self._thread = threading.Thread(target=self._receive,
                                        name="syslog-capture", daemon=True)
        self._thread.start()

    def _receive(self):
        while True:
            try:
                data = self._socket.recv(65536)
            except OSError:
                return
            if self._closed:
                return
            line = parse_syslog_datagram(data, time.time())
            with self._condition:
                self._lines.append(line)
                self._condition.notify_all()

    def close(self):
        self._closed = True
        # recv() does not wake up on close() of the same socket, so send a
        # last datagram to end the receiver thread.
        with contextlib.suppress(OSError):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", self.path)
        self._thread.join(2)
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def lines(self, since=0, ident=None):
        """Return the captured lines from index since on, optionally one ident only."""
        with self._condition:
            selected = self._lines[since:]
        if ident is not None:
            selected = [line for line in selected if line.ident == ident]
        return selected

    def mark(self):
        """Return the number of lines captured so far, for use as since."""
        with self._condition:
            return len(self._lines)

    def find_all(self, pattern, since=0, ident=None):
        """Return the lines from index since on whose message matches pattern."""
        regex = re.compile(pattern)
        return [line for line in self.lines(since, ident)
                if regex.search(line.message)]

    def wait_for(self, pattern, timeout=WAIT_TIMEOUT, since=0, ident=None,
                 pid=None):
        """Wait for a line whose message matches the regex pattern.

        ident and pid, when given, select the lines of one program or one
        process. Returns a (LogLine, re.Match) pair. Raises WaitTimeout,
        with the last captured lines, after timeout seconds.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        position = since
        with self._condition:
            while True:
                while position < len(self._lines):
                    line = self._lines[position]
                    position += 1
                    if ident is not None and line.ident != ident:
                        continue
                    if pid is not None and line.pid != pid:
                        continue
                    match = regex.search(line.message)
                    if match:
                        return line, match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            recent = self._lines[-15:]
        source = f" from {ident}" if ident else ""
        if pid is not None:
            source += f" (pid {pid})"
        recent_text = "\n  ".join(str(line) for line in recent) or "(none)"
        raise WaitTimeout(f"no syslog line{source} matching {pattern!r} "
                          f"within {timeout:g} s; last lines:\n  {recent_text}")

    def transcript(self):
        """Return every captured line, each with the time it was received."""
        return "\n".join(format_log_time(line.received) + f" {line}"
                         for line in self.lines())


def format_log_time(timestamp):
    return (time.strftime("%H:%M:%S", time.localtime(timestamp))
            + f".{int(timestamp * 1000) % 1000:03d}")


# ---------------------------------------------------------------------------
# SMTP client


@dataclasses.dataclass
class Reply:
    """An SMTP reply: code and text (lines joined with newlines)."""

    code: int
    text: str

    def __str__(self):
        return f"{self.code} {self.text}"


@dataclasses.dataclass
class SmtpTransaction:
    """The replies that one SMTP client session got, command by command.

    A field is None when its command was not sent, for example data when no
    recipient was accepted or when the server closed the connection earlier.
    """

    greeting: Reply | None = None
    ehlo: Reply | None = None
    mail: Reply | None = None
    rcpt: list = dataclasses.field(default_factory=list)  # (address, Reply)
    data: Reply | None = None
    disconnected: str | None = None

    @property
    def accepted_recipients(self):
        return [address for address, reply in self.rcpt
                if 200 <= reply.code < 300]

    def rcpt_reply(self, address):
        for candidate, reply in self.rcpt:
            if candidate == address:
                return reply
        raise KeyError(address)

    @property
    def queue_id(self):
        """Return the queue ID from sendmail's reply to the final dot, or None."""
        if self.data is None or self.data.code != 250:
            return None
        match = re.search(r"(?:\d\.\d\.\d+ )?(\w+) Message accepted",
                          self.data.text)
        return match.group(1) if match else None

    def __str__(self):
        parts = [f"greeting={self.greeting}", f"ehlo={self.ehlo}",
                 f"mail={self.mail}"]
        parts += [f"rcpt {address}={reply}" for address, reply in self.rcpt]
        parts.append(f"data={self.data}")
        if self.disconnected:
            parts.append(f"disconnected: {self.disconnected}")
        return "; ".join(parts)


def make_message(sender, recipients, subject="ondemand e2e test", body=None):
    """Return an RFC 5322 message as bytes, with a unique Message-ID."""
    message = email.message.EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain="client.ondemand.test")
    message.set_content(body or "This message was sent by an ondemand "
                        "end-to-end test.\n")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def send_message(port, sender, recipients, data=None, host="127.0.0.1",
                 helo="client.ondemand.test", timeout=WAIT_TIMEOUT + 20):
    """Send one message over SMTP and return the SmtpTransaction.

    Addresses go out exactly as given, inside angle brackets. 4xx and 5xx
    replies and a closed connection are recorded and never raised, so tests
    can assert on them. DATA is sent only when a recipient was accepted.
    """
    if data is None:
        data = make_message(sender, recipients)
    transaction = SmtpTransaction()
    client = smtplib.SMTP(timeout=timeout)
    try:
        transaction.greeting = decode_reply(client.connect(host, port))
        if transaction.greeting.code != 220:
            return transaction
        transaction.ehlo = decode_reply(client.ehlo(helo))
        transaction.mail = decode_reply(client.docmd(f"MAIL FROM:<{sender}>"))
        if transaction.mail.code != 250:
            return transaction
        for recipient in recipients:
            reply = decode_reply(client.docmd(f"RCPT TO:<{recipient}>"))
            transaction.rcpt.append((recipient, reply))
        if not transaction.accepted_recipients:
            return transaction
        try:
            transaction.data = decode_reply(client.data(data))
        except smtplib.SMTPDataError as error:
            transaction.data = decode_reply((error.smtp_code, error.smtp_error))
    except smtplib.SMTPServerDisconnected as error:
        transaction.disconnected = str(error)
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()
    return transaction


def decode_reply(reply):
    code, text = reply
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return Reply(code, text)


# ---------------------------------------------------------------------------
# SMTP sink


@dataclasses.dataclass
class SinkMessage:
    """A message that the sink accepted."""

    sender: str
    recipients: list
    data: bytes
    helo: str
    client: tuple

    @property
    def queue_id(self):
        """Return the queue ID from the Received header that the test sendmail added, or None."""
        match = re.search(rb"by \S+ \([^)]*\) with \w+ id (\w+)", self.data)
        return match.group(1).decode("ascii") if match else None


class _SinkHandler(socketserver.StreamRequestHandler):
    """Handler of one SMTP session with the sink.

    It accepts every command unless fail_at() set a failure for the stage.
    """

    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.sink.register_connection(self.request)

    def finish(self):
        self.server.sink.unregister_connection(self.request)
        with contextlib.suppress(OSError):
            super().finish()

    def reply(self, text):
        # Every reply goes out in one write, with TCP_NODELAY set and delayed
        # acknowledgements off, so a delivery costs no 40 ms timer on loopback.
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        self.wfile.write(text.encode("utf-8") + b"\r\n")

    def handle(self):
        sink = self.server.sink
        failure = sink.failure("connect")
        if failure:
            self.reply(failure)
            return
        self.reply(f"220 {SINK_HOST_NAME} ESMTP ondemand test sink")
        helo = ""
        sender = None
        recipients = []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command[:4].upper()
            if verb == "EHLO":
                helo = command[5:].strip()
                self.reply(f"250-{SINK_HOST_NAME}\r\n250-PIPELINING\r\n"
                           "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "HELO":
                helo = command[5:].strip()
                self.reply(f"250 {SINK_HOST_NAME}")
            elif verb == "MAIL":
                failure = sink.failure("mail")
                if failure:
                    self.reply(failure)
                    continue
                sender = extract_path(command)
                recipients = []
                self.reply("250 2.1.0 Sender OK")
            elif verb == "RCPT":
                if sender is None:
                    self.reply("503 5.5.1 MAIL first")
                    continue
                recipient = extract_path(command)
                failure = sink.failure("rcpt", recipient)
                if failure:
                    self.reply(failure)
                    continue
                recipients.append(recipient)
                self.reply("250 2.1.5 Recipient OK")
            elif verb == "DATA":
                if not recipients:
                    self.reply("503 5.5.1 RCPT first")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = self.read_data()
                if data is None:
                    return
                sink.pass_gate()
                failure = sink.failure("data")
                if failure:
                    self.reply(failure)
                else:
                    number = sink.record(SinkMessage(
                        sender=sender, recipients=recipients, data=data,
                        helo=helo, client=self.client_address))
                    self.reply(f"250 2.0.0 Message {number} accepted")
                sender = None
                recipients = []
            elif verb == "RSET":
                sender = None
                recipients = []
                self.reply("250 2.0.0 OK")
            elif verb == "NOOP":
                self.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self.reply(f"221 2.0.0 {SINK_HOST_NAME} closing connection")
                return
            else:
                self.reply("502 5.5.2 Command not implemented")

    def read_data(self):
        lines = []
        while True:
            line = self.rfile.readline(1 << 20)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line)


def extract_path(command):
    """Return the address between the angle brackets of MAIL or RCPT."""
    match = re.search(r"<([^>]*)>", command)
    return match.group(1) if match else command.split(":", 1)[-1].strip()


class _SinkServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    """SMTP server on 127.0.0.1 that records every message it accepts.

    fail_at() makes the sink reply to one stage with a given failure
    instead, for fault tests, and fail_recipients() to the RCPT of matching
    addresses. close_gate() holds back the replies to the final dot until
    open_gate(). stop() and start() keep the port, so a test can take the sink
    down and bring it back.
    """

    STAGES = ("connect", "mail", "rcpt", "data")

    def __init__(self, port=None):
        self.port = port or free_port()
        self._messages = []
        self._failures = {}
        self._recipient_failures = []
        self._gate_closed = False
        self._gate_passes = 0
        self._gate_waiting = 0
        self._connections = set()
        self._condition = threading.Condition()
        self._server = None
        self._thread = None

    def start(self):
        server = _SinkServer(("127.0.0.1", self.port), _SinkHandler)
        server.sink = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"smtp-sink-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and close the open sessions."""
        if self._server is None:
            return
        self.open_gate()
        self._server.shutdown()
        self._server.server_close()
        with self._condition:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(WAIT_TIMEOUT)
        self._server = None

    def fail_at(self, stage, reply):
        """Reply to stage ("connect", "mail", "rcpt" or "data") with reply, e.g. "451 4.3.0 Try later"."""
        if stage not in self.STAGES:
            raise ValueError(f"invalid sink stage {stage!r}; expected one of "
                             f"{', '.join(self.STAGES)}")
        with self._condition:
            self._failures[stage] = reply

    def accept_all(self):
        with self._condition:
            self._failures.clear()
            self._recipient_failures.clear()

    def fail_recipients(self, pattern, reply):
        """Reply to RCPT with reply for each address that the regex pattern matches."""
        with self._condition:
            self._recipient_failures.append((re.compile(pattern), reply))

    def failure(self, stage, recipient=None):
        with self._condition:
            if recipient is not None:
                for pattern, reply in self._recipient_failures:
                    if pattern.search(recipient):
                        return reply
            return self._failures.get(stage)

    def close_gate(self, after=0):
        """Hold back the reply to the final dot of every message after the first after more.

        A held-back message is not recorded until open_gate(), so the
        sending sendmail waits in the middle of its delivery run.
        """
        with self._condition:
            self._gate_passes = after
            self._gate_closed = True

    def open_gate(self):
        with self._condition:
            self._gate_closed = False
            self._condition.notify_all()

    @property
    def waiting_at_gate(self):
        """Return the number of sessions that wait for open_gate()."""
        with self._condition:
            return self._gate_waiting

    def pass_gate(self):
        with self._condition:
            if not self._gate_closed:
                return
            if self._gate_passes > 0:
                self._gate_passes -= 1
                return
            self._gate_waiting += 1
            self._condition.notify_all()
            while self._gate_closed:
                self._condition.wait()
            self._gate_waiting -= 1

    def register_connection(self, connection):
        with self._condition:
            self._connections.add(connection)

    def unregister_connection(self, connection):
        with self._condition:
            self._connections.discard(connection)

    def record(self, message):
        with self._condition:
            self._messages.append(message)
            self._condition.notify_all()
            return len(self._messages)

    @property
    def messages(self):
        with self._condition:
            return list(self._messages)

    def messages_to(self, address):
        """Return the accepted messages with address among their recipients."""
        return [message for message in self.messages
                if address in message.recipients]

    def messages_with_queue_id(self, queue_id):
        """Return the accepted messages that the test sendmail sent as queue_id."""
        return [message for message in self.messages
                if message.queue_id == queue_id]

    def wait_for_queue_id(self, queue_id, timeout=WAIT_TIMEOUT):
        """Wait for the message that the test sendmail sent as queue_id and return it."""
        def delivered():
            found = self.messages_with_queue_id(queue_id)
            return found[0] if found else None
        return wait_until(delivered, timeout,
                          description=f"message {queue_id} at the sink")

    def wait_for_messages(self, count, timeout=WAIT_TIMEOUT):
        """Wait until the sink has accepted at least count messages and return them."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(
                        f"the sink accepted {len(self._messages)} messages "
                        f"within {timeout:g} s, expected {count}")
                self._condition.wait(remaining)
            return list(self._messages)

    def wait_for_recipient(self, address, timeout=WAIT_TIMEOUT):
        """Wait for a message to address and return it."""
        def delivered():
            found = self.messages_to(address)
            return found[0] if found else None
        return wait_until(delivered, timeout,
                          description=f"a message to {address} at the sink")


# ---------------------------------------------------------------------------
# sendmail


@dataclasses.dataclass
class QueueEntry:
    """One message in the output of sendmail -bp."""

    queue_id: str
    size: int
    sender: str
    recipients: list
    quarantine_reason: str | None = None
    status: str | None = None  # e.g. "(Deferred: Connection refused by ...)"
    # sendmail marks a queue ID with "*" while a process has the message
    # locked, "-" when it is younger than MinQueueAge, "X" when the load
    # is too high for it, and "?" for lost items.
    flag: str = ""

    @property
    def locked(self):
        return self.flag == "*"


QUEUE_ENTRY_START = re.compile(
    r"^(?P<id>\w+)(?P<flag>[*X?-]?)\s+(?P<size>\d+)\s+"
    r"(?P<date>\w{3} \w{3} [ \d]\d \d\d:\d\d)\s+(?P<sender>.*)$")


def parse_queue_listing(text):
    """Parse the output of sendmail -bp (or mailq) into QueueEntry objects."""
    entries = []
    current = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        match = QUEUE_ENTRY_START.match(raw_line)
        if match:
            current = QueueEntry(queue_id=match.group("id"),
                                 size=int(match.group("size")),
                                 sender=match.group("sender").strip(),
                                 recipients=[], flag=match.group("flag"))
            entries.append(current)
        elif current is None or not line:
            continue
        elif line.startswith("QUARANTINE:"):
            current.quarantine_reason = line[len("QUARANTINE:"):].strip()
        elif line.startswith("(") and line.endswith(")"):
            current.status = line
        elif line.startswith("Total requests"):
            current = None
        else:
            current.recipients.append(line)
    return entries


# FEATURE(`ondemand') as it is in the source tree.
ONDEMAND_FEATURE_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), "sendmail-cf", "feature", "ondemand.m4")


def cf_overlay(directory):
    """Build a symbolic-link copy of the sendmail-cf tree with ondemand.m4 added.

    m4 finds a FEATURE in the feature/ directory next to the cf.m4 it reads,
    so pointing SENDMAIL_CF_DIR at the returned directory makes
    FEATURE(`ondemand') use the file from the source tree.
    """
    root = os.path.join(directory, "cf")
    os.makedirs(os.path.join(root, "feature"))
    for name in os.listdir(SENDMAIL_CF_DIR):
        if name != "feature":
            os.symlink(os.path.join(SENDMAIL_CF_DIR, name),
                       os.path.join(root, name))
    features = os.path.join(SENDMAIL_CF_DIR, "feature")
    for name in os.listdir(features):
        os.symlink(os.path.join(features, name),
                   os.path.join(root, "feature", name))
    os.symlink(ONDEMAND_FEATURE_FILE,
               os.path.join(root, "feature", "ondemand.m4"))
    return root

class Sendmail:
    """A private sendmail daemon on 127.0.0.1 that relays every domain to the sink.

    It uses its own sendmail.cf, built with m4 from the sendmail-cf tree, and
    its own queue, pid, statistics and host status files, all under workdir.
    With milter_socket set, the ondemand filter is attached with F=T, so
    sendmail replies 4xx while the filter is unreachable.
    """

    def __init__(self, workdir, sink_port, milter_socket=None,
                 delivery_mode="background", port=None, extra_mc=""):
        if delivery_mode not in ("background", "interactive", "queueonly",
                                 "deferred"):
            raise ValueError(f"invalid delivery mode {delivery_mode!r}")
        self.workdir = workdir
        self.sink_port = sink_port
        self.milter_socket = milter_socket
        self.delivery_mode = delivery_mode
        self.port = port or free_port()
        self.extra_mc = extra_mc
        self.queue_dir = os.path.join(workdir, "queue")
        self.cf_path = os.path.join(workdir, "sendmail.cf")
        self.pid_path = os.path.join(workdir, "sendmail.pid")
        self.process = None
        self.binary = find_tool("sendmail")

    def mc_text(self):
        """Return the sendmail.mc for this instance."""
        w = self.workdir
        lines = [
            "divert(-1)",
            "# Generated by tests/e2e/odtest.py for one end-to-end test.",
            "divert(0)dnl",
            "VERSIONID(`ondemand end-to-end test')dnl",
            "OSTYPE(`linux')dnl",
            # Every default file (service.switch, aliases, helpfile, ...) is
            # looked up here instead of /etc/mail.
            f"define(`MAIL_SETTINGS_DIR', `{w}/')dnl",
            f"define(`QUEUE_DIR', `{self.queue_dir}')dnl",
            f"define(`confPID_FILE', `{self.pid_path}')dnl",
            f"define(`STATUS_FILE', `{w}/statistics')dnl",
            f"define(`confHOST_STATUS_DIRECTORY', `{w}/hoststat')dnl",
            f"define(`ALIAS_FILE', `{w}/aliases')dnl",
            f"define(`HELP_FILE', `{w}/helpfile')dnl",
            f"define(`confDEAD_LETTER_DROP', `{w}/dead.letter')dnl",
            # sendmail trusts files under the sticky /tmp only with
            # TrustStickyBit.
            "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl",
            # Keep sendmail off DNS. The service switch sends host lookups
            # to the private /etc/hosts, nocanonify skips canonicalization,
            # and the mailertable names the sink by address.
            f"define(`confSERVICE_SWITCH_FILE', `{w}/service.switch')dnl",
            "define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl",
            "FEATURE(`nocanonify')dnl",
            "FEATURE(`accept_unresolvable_domains')dnl",
            "FEATURE(`no_default_msa')dnl",
            f"FEATURE(`mailertable', `hash -o {w}/mailertable')dnl",
            f"define(`RELAY_MAILER_ARGS', `TCP $h {self.sink_port}')dnl",
            f"define(`confDELIVERY_MODE', `{self.delivery_mode}')dnl",
            # A busy build machine must not make sendmail queue or refuse
            # mail, which it does by default at a load average of 8 and 12
            # (QueueLA and RefuseLA in sendmail-cf 8.17's proto.m4).
            "define(`confQUEUE_LA', `1000')dnl",
            "define(`confREFUSE_LA', `1000')dnl",
            "define(`confDELAY_LA', `0')dnl",
            "define(`confTO_IDENT', `0s')dnl",
            "define(`confLOG_LEVEL', `9')dnl",
            f"DAEMON_OPTIONS(`Port={self.port}, Addr=127.0.0.1, Name=MTA')dnl",
        ]
        if self.milter_socket:
            lines.append(
                f"INPUT_MAIL_FILTER(`ondemand', `S=unix:{self.milter_socket}, "
                "F=T, T=S:10s;R:10s;E:30s')dnl")
        if self.extra_mc:
            lines.append(self.extra_mc.rstrip("\n"))
        lines += ["MAILER(`local')dnl", "MAILER(`smtp')dnl"]
        return "\n".join(lines) + "\n"

    def write_config(self):
        """Write sendmail.mc and the files it names, and build sendmail.cf."""
        w = self.workdir
        os.makedirs(self.queue_dir, mode=0o700, exist_ok=True)
        os.chmod(self.queue_dir, 0o700)
        os.makedirs(os.path.join(w, "hoststat"), mode=0o700, exist_ok=True)
        write_file(os.path.join(w, "service.switch"),
                   "hosts\tfiles\naliases\tfiles\n")
        # Mail for root (double bounces, postmaster) goes to the sink too,
        # because the local mailer (procmail) is not set up here.
        write_file(os.path.join(w, "aliases"),
                   "postmaster: root\nMAILER-DAEMON: postmaster\n"
                   f"root: {POSTMASTER_ADDRESS}\n")
        write_file(os.path.join(w, "helpfile"), "")
        write_file(os.path.join(w, "statistics"), "")
        # "." matches every domain that is not local, so all mail goes to
        # the sink.
        mailertable = os.path.join(w, "mailertable")
        write_file(mailertable, ".\trelay:[127.0.0.1]\n")
        run_checked([find_tool("makemap"), "hash", mailertable],
                    stdin_path=mailertable)

        mc_path = os.path.join(w, "sendmail.mc")
        write_file(mc_path, self.mc_text())
        m4_result = subprocess.run(
            [find_tool("m4"), os.path.join(SENDMAIL_CF_DIR, "m4", "cf.m4"),
             mc_path], capture_output=True, text=True, timeout=WAIT_TIMEOUT,
            check=False)
        if m4_result.returncode != 0 or m4_result.stderr.strip():
            raise HarnessError(f"m4 failed on {mc_path} (exit "
                               f"{m4_result.returncode}): {m4_result.stderr}")
        write_file(self.cf_path, m4_result.stdout)

        # The aliases database must exist before the daemon starts.
        self.run("-bi")

    def start(self, timeout=WAIT_TIMEOUT):
        """Start sendmail in the foreground (-bD) and wait until it accepts connections."""
        if not os.path.exists(self.cf_path):
            self.write_config()
        self.process = ManagedProcess(
            "sendmail", [self.binary, "-C", self.cf_path, "-bD"],
            os.path.join(self.workdir, "sendmail.out"))

        def ready():
            if self.process.poll() is not None:
                raise HarnessError(
                    f"sendmail exited with {self.process.popen.returncode} "
                    f"at start; output:\n{self.process.output()}")
            return smtp_greets(self.port, expect=b" Sendmail ")
        wait_until(ready, timeout,
                   description=f"sendmail to accept on 127.0.0.1:{self.port}")
        return self

    def stop(self, timeout=WAIT_TIMEOUT):
        if self.process is not None:
            self.process.stop(timeout)

    def send(self, sender, recipients, data=None, **kwargs):
        """Send a message to this sendmail and return the SmtpTransaction."""
        return send_message(self.port, sender, recipients, data, **kwargs)

    def run(self, *args, timeout=WAIT_TIMEOUT + 20, check=True):
        """Run sendmail -C this.cf with args and return the CompletedProcess."""
        argv = [self.binary, "-C", self.cf_path, *args]
        result = subprocess.run(argv, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} exited with "
                               f"{result.returncode}: {result.stdout}"
                               f"{result.stderr}")
        return result

    def queue(self, quarantined=False):
        """List the queue: sendmail -bp, or -bp -qQ for quarantined (held) messages."""
        args = ["-bp", "-qQ"] if quarantined else ["-bp"]
        return parse_queue_listing(self.run(*args).stdout)

    def queue_listing(self, quarantined=False):
        """Return the raw text of sendmail -bp, or of -bp -qQ."""
        args = ["-bp", "-qQ"] if quarantined else ["-bp"]
        return self.run(*args).stdout

    def queue_files(self, prefix=""):
        """Return the sorted names in the queue directory that start with prefix."""
        return sorted(name for name in os.listdir(self.queue_dir)
                      if name.startswith(prefix))

    def held_files(self):
        """Return the hf files: queue control files of quarantined messages."""
        return self.queue_files("hf")

    def queued_files(self):
        """Return the qf files: queue control files of messages waiting for delivery."""
        return self.queue_files("qf")

    def read_queue_file(self, name):
        with open(os.path.join(self.queue_dir, name), "rb") as stream:
            return stream.read().decode("utf-8", "replace")

    def wait_until_unlocked(self, queue_id, quarantined=False,
                            timeout=WAIT_TIMEOUT):
        """Wait until no sendmail process has queue_id locked.

        A background delivery logs its result before it exits and unlocks
        the queue file, and a queue run skips a locked message.
        """
        def unlocked():
            entries = [entry for entry in self.queue(quarantined)
                       if entry.queue_id == queue_id]
            return entries and not entries[0].locked
        wait_until(unlocked, timeout, interval=0.05,
                   description=f"sendmail to unlock {queue_id}")

    def wait_for_empty_queue(self, timeout=WAIT_TIMEOUT):
        """Wait until no qf, df, xf or tf file is left, that is until every delivery ended."""
        def empty():
            return not any(name[:2] in ("qf", "df", "xf", "tf")
                           for name in os.listdir(self.queue_dir))
        wait_until(empty, timeout, description="an empty sendmail queue")


def smtp_greets(port, host="127.0.0.1", expect=b""):
    """Return True when an SMTP server at host:port sends a 220 greeting.

    With expect, the greeting must also contain it, so that another test's
    server on the same port is not taken for the one being waited for.
    """
    try:
        with socket.create_connection((host, port), timeout=2) as connection:
            greeting = connection.recv(512)
            connection.sendall(b"QUIT\r\n")
            with contextlib.suppress(OSError):
                connection.recv(512)
            return greeting.startswith(b"220") and expect in greeting
    except OSError:
        return False


def write_file(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(path, mode)


def run_checked(argv, stdin_path=None, timeout=WAIT_TIMEOUT):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        result = subprocess.run(argv, stdin=stdin, capture_output=True,
                                text=True, timeout=timeout, check=False)
    finally:
        if stdin_path:
            stdin.close()
    if result.returncode != 0:
        raise HarnessError(f"{' '.join(argv)} exited with {result.returncode}: "
                           f"{result.stderr.strip()}")
    return result


# ---------------------------------------------------------------------------
# ondemand-milter


class Milter:
    """ondemand-milter running in the foreground (-f) with a generated config file.

    config maps keys to values; a list value writes the key once per item,
    for example {"Domain": ["example.test", ".sub.example.test"]}. Socket
    and PidFile default to files in workdir.
    """

    def __init__(self, workdir, config=None, binary=None, extra_args=()):
        self.workdir = workdir
        self.binary = binary or default_milter_path()
        self.socket_path = os.path.join(workdir, "milter.sock")
        self.config_path = os.path.join(workdir, "ondemand.conf")
        self.extra_args = list(extra_args)
        self.pid_path = os.path.join(workdir, "milter.pid")
        self.config = self.default_config()
        self.config.update(config or {})
        self.process = None
        # True runs the daemon under valgrind's memcheck. The valgrind logs
        # of the daemon and of its release helper go to report_dir, their
        # sanitizer reports to stderr (milter.out), and
        # Environment.close() checks both after every test.
        self.valgrind = VALGRIND_REQUESTED
        self.report_dir = os.path.join(workdir, "milter-reports")

    def default_config(self):
        # The built-in pid file and socket are under /run/ondemand, which a
        # test must not touch.
        return {"Socket": f"unix:{self.socket_path}",
                "PidFile": self.pid_path}

    def write_config(self, config=None):
        """Write the config file. config, when given, replaces every key but Socket and PidFile."""
        if config is not None:
            self.config = self.default_config()
            self.config.update(config)
        lines = ["# Generated by tests/e2e/odtest.py for one end-to-end test."]
        for key, value in self.config.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            lines += [f"{key} {item}" for item in values]
        write_file(self.config_path, "\n".join(lines) + "\n")

    def check_binary(self):
        if not os.access(self.binary, os.X_OK):
            raise HarnessError(
                f"ondemand-milter not found or not executable at {self.binary}; "
                "run make, or set ONDEMAND_MILTER to its path")

    def start(self, timeout=WAIT_TIMEOUT):
        """Start the milter and wait until its socket accepts connections."""
        self.check_binary()
        self.write_config()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        os.makedirs(self.report_dir, exist_ok=True)
        self.process = ManagedProcess(
            "ondemand-milter",
            [*self.valgrind_command(), self.binary, "-f", "-c",
             self.config_path, *self.extra_args],
            os.path.join(self.workdir, "milter.out"))

        def ready():
            if self.process.poll() is not None:
                raise HarnessError(
                    f"ondemand-milter exited with "
                    f"{self.process.popen.returncode} at start; output:\n"
                    f"{self.process.output()}")
            return unix_socket_accepts(self.socket_path)
        wait_until(ready, timeout,
                   description=f"ondemand-milter to listen on {self.socket_path}")
        return self

    def valgrind_command(self):
        """Return the valgrind command that runs the daemon, or [] without valgrind."""
        if not self.valgrind:
            return []
        if sanitizer_build():
            raise HarnessError(
                "ONDEMAND_VALGRIND=1 cannot run an ondemand-milter built "
                "with --enable-sanitizers, because valgrind does not run "
                "AddressSanitizer programs; use a build without it")
        valgrind = find_tool("valgrind")
        if valgrind is None:
            raise HarnessError("ONDEMAND_VALGRIND=1 needs valgrind, which is "
                               "not installed (Debian package valgrind)")
        # valgrind follows the fork that starts the release helper, and
        # --trace-children=no stops at exec, so the sendmail runs of the
        # helper run natively. %p gives each process its own log file.
        return [valgrind, "--tool=memcheck", "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite",
                f"--error-exitcode={VALGRIND_ERROR_EXIT}",
                "--trace-children=no",
                f"--log-file={self.report_dir}/valgrind.%p"]

    def reports(self):
        """Return each sanitizer or valgrind report of an error or a definite leak.

        Each item is the path of the file, a newline and the report.
        Sanitizer reports are read from stderr, which the daemon and its
        release helper keep in the foreground (-f). The sanitizers'
        log_path option is not used, because gcc 12's
        UndefinedBehaviorSanitizer ignores it when AddressSanitizer is
        linked too, and because a daemon that changed to User cannot
        create files in the test's directory.
        """
        reports = []
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(os.listdir(self.report_dir)):
                path = os.path.join(self.report_dir, name)
                with open(path, encoding="utf-8", errors="replace") as report:
                    text = report.read(REPORT_MAX_CHARS)
                if valgrind_found_errors(text):
                    reports.append(f"{path}:\n{text}")

        output_path = os.path.join(self.workdir, "milter.out")
        with contextlib.suppress(FileNotFoundError):
            with open(output_path, encoding="utf-8", errors="replace") as output:
                text = output.read()
            match = SANITIZER_REPORT.search(text)
            if match:
                start = match.start()
                reports.append(f"{output_path}:\n"
                               f"{text[start:start + REPORT_MAX_CHARS]}")
        return reports

    def check_config(self, *args):
        """Run ondemand-milter -n on the config file and return the CompletedProcess."""
        self.check_binary()
        self.write_config()
        return subprocess.run([self.binary, "-n", "-c", self.config_path, *args],
                              capture_output=True, text=True,
                              timeout=WAIT_TIMEOUT, check=False)

    def reload(self):
        """Send SIGUSR1, which makes the milter read its config file again."""
        self.process.send_signal(signal.SIGUSR1)

    def stop(self, timeout=WAIT_TIMEOUT):
        """Send SIGTERM, wait for the exit and return the exit code.

        With Debian's libmilter 8.17.1.9 the milter exits up to 5 s after
        SIGTERM, when its listener's wait for connections times out
        (MI_CHK_TIME in libmilter/listener.c). A connection to the socket
        ends that wait, so this connects until the milter has exited.
        """
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            unix_socket_accepts(self.socket_path)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.popen.wait(0.1)
        return self.process.stop(max(0.1, deadline - time.monotonic()))

    def kill(self):
        if self.process is None:
            return None
        return self.process.kill()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None


# Enough for the first few reports with their stacks.
REPORT_MAX_CHARS = 30000
# The first line of a report of AddressSanitizer or LeakSanitizer, such as
# "==24064==ERROR: LeakSanitizer: detected memory leaks", or of
# UndefinedBehaviorSanitizer, such as "milter/filter.c:138:6: runtime
# error: signed integer overflow: ...".
SANITIZER_REPORT = re.compile(r"^(==\d+==ERROR: |\S+: runtime error: )",
                              re.MULTILINE)


def valgrind_found_errors(text):
    """Return whether a valgrind log of one process shows an error or a definite leak.

    The ERROR SUMMARY line at exit counts both, because the daemon runs with
    --errors-for-leak-kinds=definite. A process that was killed or that
    called exec has no summary, so there any stack trace is an error.
    """
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    if summary:
        return int(summary.group(1)) > 0
    return re.search(r"^==\d+==\s+at 0x", text, re.MULTILINE) is not None


def unix_socket_accepts(path):
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


# ---------------------------------------------------------------------------
# memcached


class Memcached:
    """memcached on 127.0.0.1 at a free port, for tests of the shared ledger."""

    def __init__(self, workdir, port=None, user="memcache"):
        self.workdir = workdir
        self.port = port or free_port()
        self.user = user
        self.process = None

    def start(self, timeout=WAIT_TIMEOUT):
        binary = find_tool("memcached")
        if binary is None:
            raise HarnessError("memcached not found (install memcached)")
        # memcached refuses to run as root without -u.
        self.process = ManagedProcess(
            "memcached",
            [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
             "-u", self.user],
            os.path.join(self.workdir, f"memcached-{self.port}.out"))

        def ready():
            if self.process.poll() is not None:
                raise HarnessError(
                    f"memcached exited with {self.process.popen.returncode} "
                    f"at start; output:\n{self.process.output()}")
            return tcp_accepts(self.port)
        wait_until(ready, timeout,
                   description=f"memcached to listen on 127.0.0.1:{self.port}")
        return self

    @property
    def server_spec(self):
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout=WAIT_TIMEOUT):
        if self.process is not None:
            self.process.stop(timeout)


def tcp_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# A whole test environment


class Environment:
    """A temporary directory with a syslog capture, the sink, the milter and sendmail.

    domains is the milter's Domain list; with milter=False sendmail runs
    without the filter. Call start(), then close() in every case (close()
    is idempotent). The temporary directory is removed by close() unless
    ONDEMAND_KEEP_TMP=1.
    """

    def __init__(self, domains=("example.test",), milter=True,
                 milter_config=None, milter_args=(),
                 delivery_mode="background", extra_mc=""):
        if not in_test_namespace():
            raise HarnessError("the end-to-end environment needs the private "
                               "mount namespace: run the test script "
                               "directly, which calls odtest.main()")
        self.workdir = tempfile.mkdtemp(prefix="ondemand-e2e-")
        self.syslog = None
        self.sink = SmtpSink()
        self.milter = None
        if milter:
            # SendmailConfig points the milter's own sendmail runs (queue
            # listing, releases) at this test's sendmail, not the system's.
            config = {"Domain": list(domains),
                      "SendmailConfig": os.path.join(self.workdir,
                                                     "sendmail.cf")}
            config.update(milter_config or {})
            self.milter = Milter(self.workdir, config, extra_args=milter_args)
        self.sendmail = Sendmail(
            self.workdir, self.sink.port,
            milter_socket=self.milter.socket_path if self.milter else None,
            delivery_mode=delivery_mode, extra_mc=extra_mc)
        self.memcached = []
        self._closed = False
        self._transcript = ""

    def start(self):
        try:
            self.syslog = SyslogCapture()
            self.sink.start()
            # The milter runs sendmail -C sendmail.cf at start to list the
            # held messages, so the cf file must exist first.
            self.sendmail.write_config()
            if self.milter:
                self.milter.start()
            self.sendmail.start()
        except BaseException:
            self.close()
            raise
        return self

    def start_memcached(self):
        server = Memcached(self.workdir).start()
        self.memcached.append(server)
        return server

    def send(self, sender, recipients, data=None, **kwargs):
        return self.sendmail.send(sender, recipients, data, **kwargs)

    def reload_milter(self, changes=None, timeout=WAIT_TIMEOUT):
        """Apply changes to the milter's config file, send SIGUSR1, and wait.

        changes maps keys to new values; None removes a key. SIGUSR1 is
        handled asynchronously, so this waits for the milter's log line
        about the reload (success or failure) and returns it.
        """
        for key, value in (changes or {}).items():
            if value is None:
                self.milter.config.pop(key, None)
            else:
                self.milter.config[key] = value
        self.milter.write_config()
        since = self.syslog.mark()
        self.milter.reload()
        line, _ = self.syslog.wait_for(r"reload", timeout, since=since,
                                       ident=MILTER_IDENT)
        return line

    def transcript(self):
        """Return the syslog lines and process output captured so far, for failure reports."""
        if self._closed:
            return self._transcript
        parts = [f"temporary directory: {self.workdir}"]
        if self.syslog:
            parts.append("syslog:\n" + (self.syslog.transcript() or "(none)"))
        for name in ("milter.out", "sendmail.out"):
            text = read_tail(os.path.join(self.workdir, name))
            if text:
                parts.append(f"{name}:\n{text}")
        return "\n".join(parts)

    def close(self):
        """Stop every process that this environment started and remove its files."""
        if self._closed:
            return
        self._transcript = self.transcript()
        self._closed = True
        errors = []
        for stop in [self.sendmail.stop,
                     self.milter.stop if self.milter else None,
                     *[server.stop for server in self.memcached],
                     self.sink.stop,
                     self.syslog.close if self.syslog else None]:
            if stop is None:
                continue
            try:
                stop()
            except Exception as error:  # noqa: BLE001 - keep stopping the rest
                errors.append(f"{stop.__qualname__}: {error}")
        leftover = wait_for_processes_to_leave(self.workdir)
        if leftover:
            errors.append(f"processes still working in {self.workdir}: "
                          f"{', '.join(map(str, leftover))}")
        # Read before the directory is removed. The daemon has exited, so
        # its leak report is complete.
        reports = self.milter.reports() if self.milter else []
        if keep_temporary_files():
            print(f"odtest: kept {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if reports:
            message = ("ondemand-milter wrote a sanitizer or valgrind "
                       "report:\n" + "\n".join(reports))
            if errors:
                message += "\ncleanup also failed: " + "; ".join(errors)
            raise CheckerReport(message)
        if errors:
            raise HarnessError("cleanup failed: " + "; ".join(errors))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()


# The milter's syslog line for a held message (facility mail).
MILTER_IDENT = "ondemand-milter"
HOLD_LINE = re.compile(
    r"^(?P<queue_id>\w+): action=hold domain=(?P<domain>\S+) "
    r"sender=(?P<sender><[^>]*>) nrcpts=(?P<nrcpts>\d+) size=(?P<size>\d+) "
    r"client=(?P<client>\S*\[[^\]]*\])")

SENDER = "alice@client.test"
BARRIER_DOMAIN = "barrier.test"


def normalize_address(address):
    """Return address without angle brackets and trailing dot, lowercased, for comparisons."""
    return address.strip("<>").rstrip(".").lower()


def processes_in_directory(directory):
    """Return the PIDs of processes whose working directory is in directory."""
    pids = []
    prefix = directory.rstrip("/") + "/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == directory or cwd.startswith(prefix):
            pids.append(int(entry))
    return pids


def wait_for_processes_to_leave(directory, timeout=5):
    """Wait until no process works in directory, and return the PIDs that remain.

    sendmail's delivery processes outlive the daemon for a moment and work
    in the queue directory. Removing it under them would leave files
    behind, so cleanup waits for them instead of killing processes that
    the harness did not start itself.
    """
    try:
        wait_until(lambda: not processes_in_directory(directory), timeout,
                   interval=0.05,
                   description=f"processes to leave {directory}")
    except WaitTimeout:
        return processes_in_directory(directory)
    return []


class EnvironmentTestCase(unittest.TestCase):
    """Base class that gives each test a started Environment as self.env.

    Subclasses set environment_options to change the Environment's
    arguments. When a test fails, the captured syslog and process output are
    printed to stderr, which automake keeps in the test's .log file.
    """

    environment_options = {}

    @classmethod
    def setUpClass(cls):
        if not in_test_namespace():
            raise unittest.SkipTest("run this file as a script: it enters a "
                                    "private mount namespace first")

    def setUp(self):
        self.env = Environment(**self.environment_options)
        self.addCleanup(self.env.close)
        self.env.start()

    def run(self, result=None):
        result = result or self.defaultTestResult()
        problems_before = len(result.failures) + len(result.errors)
        super().run(result)
        if len(result.failures) + len(result.errors) > problems_before:
            env = getattr(self, "env", None)
            if env is not None:
                print(f"\n--- {self.id()}: captured output ---\n"
                      f"{env.transcript()}\n--- end ---", file=sys.stderr)
        return result

    # -- assertions on the hold path, shared by the tests of the milter --

    def assert_held(self, result, recipients, domain, sender=SENDER):
        """Assert that sendmail quarantined the message for domain, and return its queue ID.

        Checks the 250 reply, the milter's hold line, the hf file, the
        mailq -qQ entry with its reason and recipients, the absence from the
        normal queue, and that nothing reached the sink.
        """
        self.assertIsNotNone(result.data, str(result))
        self.assertEqual(result.data.code, 250, str(result))
        queue_id = result.queue_id
        self.assertIsNotNone(queue_id, str(result))

        line, _ = self.env.syslog.wait_for(
            rf"^{re.escape(queue_id)}: action=hold ", ident=MILTER_IDENT)
        match = HOLD_LINE.match(line.message)
        self.assertIsNotNone(match, f"malformed hold line: {line}")
        self.assertEqual(line.facility, LOG_MAIL, str(line))
        self.assertEqual(match.group("domain"), domain, str(line))
        self.assertEqual(match.group("sender"), f"<{sender}>", str(line))
        self.assertEqual(int(match.group("nrcpts")), len(recipients), str(line))
        self.assertGreater(int(match.group("size")), 0, str(line))
        self.assertTrue(match.group("client").endswith("[127.0.0.1]"),
                        str(line))

        self.env.syslog.wait_for(
            rf"^{re.escape(queue_id)}: to=.*, quarantine=ondemand "
            rf"\[{re.escape(domain)}\], stat=quarantined$")

        sendmail = self.env.sendmail
        self.assertIn(f"hf{queue_id}", sendmail.held_files())
        self.assertNotIn(f"qf{queue_id}", sendmail.queued_files())
        held_entries = {entry.queue_id: entry
                        for entry in sendmail.queue(quarantined=True)}
        self.assertIn(queue_id, held_entries,
                      sendmail.queue_listing(quarantined=True))
        entry = held_entries[queue_id]
        self.assertEqual(entry.quarantine_reason, f"ondemand [{domain}]")
        self.assertEqual(sorted(map(normalize_address, entry.recipients)),
                         sorted(map(normalize_address, recipients)))
        self.assertNotIn(queue_id,
                         [entry.queue_id for entry in sendmail.queue()])

        self.assert_not_delivered(queue_id)
        return queue_id

    def assert_not_delivered(self, queue_id):
        """Assert that the message queue_id reached neither the sink nor a mailer.

        A barrier message to another domain is sent and awaited first:
        sendmail delivers in the background, so a delivery of queue_id that
        should not happen would have started before the barrier's.
        """
        barrier = f"barrier-{queue_id.lower()}@{BARRIER_DOMAIN}"
        result = self.env.send(SENDER, [barrier])
        self.assertEqual(result.data.code if result.data else None, 250,
                         f"barrier message: {result}")
        self.env.sink.wait_for_recipient(barrier)
        self.assertEqual(self.env.sink.messages_with_queue_id(queue_id), [],
                         f"message {queue_id} reached the sink")
        # sendmail logs a quarantined message as "to=... stat=quarantined".
        # Any other stat= means that it tried to deliver the message.
        attempts = [line for line in self.env.syslog.find_all(
                        rf"^{re.escape(queue_id)}: to=")
                    if not line.message.endswith("stat=quarantined")]
        self.assertEqual(attempts, [],
                         f"sendmail tried to deliver {queue_id}")

    def assert_delivered(self, result, recipients, sender=SENDER):
        """Assert that the message went to the sink unheld, to exactly recipients."""
        self.assertIsNotNone(result.data, str(result))
        self.assertEqual(result.data.code, 250, str(result))
        queue_id = result.queue_id
        self.assertIsNotNone(queue_id, str(result))

        message = self.env.sink.wait_for_queue_id(queue_id)
        self.assertEqual(message.sender, sender)
        self.assertEqual(sorted(map(normalize_address, message.recipients)),
                         sorted(map(normalize_address, recipients)))
        self.env.syslog.wait_for(rf"^{re.escape(queue_id)}: to=.*stat=Sent")
        self.assertEqual(
            self.env.syslog.find_all(rf"^{re.escape(queue_id)}: action=hold",
                                     ident=MILTER_IDENT), [],
            f"the milter logged a hold for delivered message {queue_id}")
        self.assertNotIn(f"hf{queue_id}", self.env.sendmail.held_files())
        return queue_id


# ---------------------------------------------------------------------------
# Releases through FEATURE(`ondemand'), processes of the daemon, and
# message accounting for fault tests


def send_etrn(port, argument, host="127.0.0.1"):
    """Send one ETRN over a new SMTP session and return the Reply."""
    client = smtplib.SMTP(timeout=WAIT_TIMEOUT + 20)
    try:
        client.connect(host, port)
        client.ehlo("customer.ondemand.test")
        return decode_reply(client.docmd("ETRN", argument))
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


def ondemandctl(config_path, *arguments, user=None):
    """Run ondemandctl -c config_path with arguments and return the CompletedProcess.

    With user set, ondemandctl runs as that user with its primary group
    and no supplementary groups.
    """
    binary = os.path.join(default_builddir(), "milter", "ondemandctl")
    identity = {}
    if user is not None:
        identity = {"user": user, "group": pwd.getpwnam(user).pw_gid,
                    "extra_groups": []}
    return subprocess.run([binary, "-c", config_path, *arguments],
                          capture_output=True, text=True,
                          timeout=WAIT_TIMEOUT + 20, check=False, **identity)


def process_status(pid):
    """Return the fields of /proc/PID/status as a dict of strings, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as stream:
            lines = stream.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def status_ids(status, field):
    """Return the real, effective, saved and file system IDs of a Uid or Gid status line."""
    return [int(value) for value in status[field].split()]


def child_pids(parent):
    """Return the PIDs of the processes whose parent is parent."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = process_status(entry)
        if status is not None and status.get("PPid") == str(parent):
            children.append(int(entry))
    return sorted(children)


def thread_ids(pid):
    """Return the IDs of the threads of process pid."""
    try:
        return sorted(int(entry) for entry in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return []


def release_helper_pid(milter_pid):
    """Return the PID of the milter's release helper: its one child that runs as root.

    The helper's own sendmail runs are its children, not the milter's.
    Raises HarnessError unless exactly one such child exists.
    """
    helpers = []
    for pid in child_pids(milter_pid):
        status = process_status(pid)
        if status is not None and status_ids(status, "Uid")[1] == 0:
            helpers.append(pid)
    if len(helpers) != 1:
        raise HarnessError(f"expected one child of ondemand-milter (pid "
                           f"{milter_pid}) that runs as root, found "
                           f"{helpers or 'none'}")
    return helpers[0]


def mount_tmpfs(path, size, mode=0o700):
    """Mount a tmpfs of size (as mount(8) takes it, e.g. "2m") on path.

    Call it only in the private mount namespace. The mount ends with the
    namespace, or earlier with unmount(path).
    """
    if not in_test_namespace():
        raise HarnessError("mount_tmpfs needs the private mount namespace")
    run_mount("-t", "tmpfs", "-o", f"size={size},mode={mode:o}",
              "ondemand-e2e-tmpfs", path)


def unmount(path):
    result = subprocess.run([find_tool("umount"), path], capture_output=True,
                            text=True, timeout=WAIT_TIMEOUT, check=False)
    if result.returncode != 0:
        raise HarnessError(f"umount {path} failed (exit {result.returncode}):"
                           f" {result.stderr.strip()}")


def set_sendmail_cf_dir(path):
    """Make later sendmail.cf builds use the sendmail-cf tree at path, and return the previous path."""
    global SENDMAIL_CF_DIR
    previous = SENDMAIL_CF_DIR
    SENDMAIL_CF_DIR = path
    return previous


@contextlib.contextmanager
def ondemand_cf_tree(workdir):
    """Build sendmail.cf from a cf_overlay() tree in workdir while the block runs."""
    previous = set_sendmail_cf_dir(cf_overlay(workdir))
    try:
        yield
    finally:
        set_sendmail_cf_dir(previous)


def ondemand_feature_mc(milter_socket_path, socketmap_socket):
    """Return the .mc line that attaches the filter and the check_etrn socket map with FEATURE(`ondemand')."""
    return (f"FEATURE(`ondemand', `unix:{milter_socket_path}', "
            f"`unix:{socketmap_socket}')dnl\n")


def use_ondemand_feature(env, socketmap_socket, extra_mc=""):
    """Make env's sendmail.cf attach the filter through FEATURE(`ondemand'), as operators install it.

    Sets the milter's SocketMap to socketmap_socket and appends extra_mc
    to the feature's line. Build the cf under ondemand_cf_tree() or with
    set_sendmail_cf_dir(cf_overlay(...)).
    """
    env.milter.config["SocketMap"] = f"unix:{socketmap_socket}"
    # The feature attaches the filter itself, so the harness must not.
    env.sendmail.milter_socket = None
    env.sendmail.extra_mc = (
        ondemand_feature_mc(env.milter.socket_path, socketmap_socket) +
        extra_mc)


class FeatureTestCase(EnvironmentTestCase):
    """A test whose sendmail.cf uses the project's FEATURE(`ondemand').

    The feature attaches the filter (with F=T) and the check_etrn socket
    map, as operators install them, and the milter serves the socket map
    and the control socket from the test's directory. Subclasses set
    domains and milter_config, and may override prepare() to change the
    environment, the socket paths or extra_mc before it starts.
    """

    domains = ["example.test", "other-od.test"]
    milter_config = {}

    def setUp(self):
        self.env = Environment(domains=self.domains)
        self.addCleanup(self.env.close)
        workdir = self.env.workdir
        self.control_socket = os.path.join(workdir, "control.sock")
        self.socketmap_socket = os.path.join(workdir, "socketmap.sock")
        self.extra_mc = ""
        self.addCleanup(set_sendmail_cf_dir,
                        set_sendmail_cf_dir(cf_overlay(workdir)))
        self.prepare()

        milter = self.env.milter
        milter.config.update({
            "Socket": f"unix:{milter.socket_path}",
            "ControlSocket": self.control_socket,
        })
        use_ondemand_feature(self.env, self.socketmap_socket, self.extra_mc)
        milter.config.update(self.milter_config)
        self.env.start()
        self.wait_for_index(since=0)

    def prepare(self):
        """Change self.env before it starts; the default does nothing."""

    def wait_for_index(self, since):
        """Wait for the milter's first index rebuild from the queue after log mark since."""
        self.env.syslog.wait_for(r"hold index built from the queue",
                                 since=since, ident=MILTER_IDENT)

    def start_milter(self):
        """Start the stopped or killed milter again and wait for its index."""
        since = self.env.syslog.mark()
        self.env.milter.start()
        self.wait_for_index(since)

    def restart_milter(self):
        """Stop the milter with SIGTERM, start it again and wait for its index."""
        self.env.milter.stop()
        self.start_milter()

    def etrn(self, argument):
        return send_etrn(self.env.sendmail.port, argument)

    def ctl(self, *arguments, user=None):
        return ondemandctl(self.env.milter.config_path, *arguments,
                           user=user)

    def hold(self, recipient, domain):
        """Send one message to recipient, assert that it is held, and return its TrackedMessage."""
        message = TrackedMessage.create(SENDER, [recipient])
        result = message.send(self.env.sendmail.port)
        self.assert_held(result, [recipient], domain)
        return message

    def wait_for_release_done(self, domain, since, timeout=WAIT_TIMEOUT):
        """Wait for the release-done line of domain after log mark since and return its match."""
        _, match = self.env.syslog.wait_for(
            rf"^action=release-done domain={re.escape(domain)} .*"
            r"messages=(?P<messages>\d+) delivered=(?P<delivered>\d+) "
            r"still_held=(?P<still_held>\d+)", timeout=timeout,
            since=since, ident=MILTER_IDENT)
        return match

    def assert_accounted(self, messages, **expected):
        return assert_accounted(self, self.env, messages, **expected)


@dataclasses.dataclass
class TrackedMessage:
    """A test message, followed over its SMTP attempts to where it ends.

    Every attempt sends the same data, with the same Message-ID, as a
    client's retry of a refused message does.
    """

    message_id: str
    sender: str
    recipients: list
    data: bytes
    attempts: list = dataclasses.field(default_factory=list)

    @classmethod
    def create(cls, sender, recipients, subject="ondemand e2e test"):
        data = make_message(sender, recipients, subject=subject)
        return cls(message_id=message_id_of(data), sender=sender,
                   recipients=list(recipients), data=data)

    def send(self, port, **kwargs):
        """Make one SMTP attempt, record it and return its SmtpTransaction."""
        transaction = send_message(port, self.sender, self.recipients,
                                   self.data, **kwargs)
        self.attempts.append(transaction)
        return transaction

    @property
    def last_attempt(self):
        return self.attempts[-1] if self.attempts else None

    @property
    def accepted(self):
        attempt = self.last_attempt
        return (attempt is not None and attempt.data is not None
                and attempt.data.code == 250)

    def refusal(self):
        """Return the 4xx or 5xx reply that refused the last attempt, or None.

        A transaction is refused when the greeting, MAIL, every RCPT or the
        final dot got a 4xx or 5xx reply.
        """
        attempt = self.last_attempt
        if attempt is None:
            return None
        if attempt.greeting is not None and attempt.greeting.code >= 400:
            return attempt.greeting
        if attempt.mail is not None and attempt.mail.code >= 400:
            return attempt.mail
        if attempt.rcpt and not attempt.accepted_recipients:
            return attempt.rcpt[0][1]
        if attempt.data is not None and attempt.data.code >= 400:
            return attempt.data
        return None

    @property
    def accepted_recipients(self):
        attempt = self.last_attempt
        return attempt.accepted_recipients if attempt else []


MESSAGE_ID_HEADER = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)",
                               re.IGNORECASE | re.MULTILINE)
QUEUE_FILE_MESSAGE_ID = re.compile(r"^H\?[^?]*\?Message-ID:[ \t]*(<[^>\n]+>)",
                                   re.IGNORECASE | re.MULTILINE)


def message_id_of(data):
    """Return the first Message-ID header of message data, or None."""
    match = MESSAGE_ID_HEADER.search(data)
    return match.group(1).decode("ascii", "replace") if match else None


@dataclasses.dataclass
class MessageAccount:
    """Where each tracked message ended: one list of Message-IDs per outcome.

    - delivered: at the sink exactly once for each accepted recipient.
    - returned: not delivered, and a DSN that quotes it reached the sink.
    - held: quarantined, and listed by mailq -qQ.
    - refused: the client saw a 4xx or 5xx reply to its last attempt, and
      the message is nowhere.

    problems lists each message that fits none of these, or more than one.
    """

    delivered: list = dataclasses.field(default_factory=list)
    returned: list = dataclasses.field(default_factory=list)
    held: list = dataclasses.field(default_factory=list)
    refused: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)

    @property
    def total(self):
        return (len(self.delivered) + len(self.returned) + len(self.held)
                + len(self.refused))

    def __str__(self):
        text = (f"delivered={len(self.delivered)} returned="
                f"{len(self.returned)} held={len(self.held)} refused="
                f"{len(self.refused)}")
        if self.problems:
            text += "; problems:\n  " + "\n  ".join(self.problems)
        return text


def queue_message_ids(sendmail, names):
    """Map each Message-ID in the queue control files names to the queue IDs that carry it."""
    found = {}
    for name in names:
        try:
            text = sendmail.read_queue_file(name)
        except FileNotFoundError:
            continue
        for match in QUEUE_FILE_MESSAGE_ID.finditer(text):
            found.setdefault(match.group(1), []).append(name[2:])
    return found


def settle_queue(env, messages, timeout=WAIT_TIMEOUT):
    """Wait until no tracked message is in the normal queue and no held one is locked.

    Returns an empty list, or the reasons why the queue did not settle.
    """
    tracked = {message.message_id for message in messages}

    def unsettled():
        reasons = []
        queued = queue_message_ids(env.sendmail,
                                   env.sendmail.queued_files())
        reasons += [f"{message_id} is in the normal queue as "
                    f"{', '.join(queue_ids)}"
                    for message_id, queue_ids in queued.items()
                    if message_id in tracked]
        reasons += [f"held message {entry.queue_id} is locked by a "
                    "sendmail process" for entry in
                    env.sendmail.queue(quarantined=True) if entry.locked]
        return reasons

    try:
        wait_until(lambda: not unsettled(), timeout, interval=0.1,
                   description="the queue to settle")
    except WaitTimeout:
        return unsettled()
    return []


def account_messages(env, messages, timeout=WAIT_TIMEOUT):
    """Sort every tracked message into one outcome of a MessageAccount.

    It first waits for the queue to settle (see settle_queue), then reads
    the held messages (mailq -qQ and their hf files), the normal queue and
    the sink.
    """
    account = MessageAccount()
    account.problems += settle_queue(env, messages, timeout)

    held_ids = {entry.queue_id
                for entry in env.sendmail.queue(quarantined=True)}
    held = queue_message_ids(env.sendmail,
                             [f"hf{queue_id}" for queue_id in held_ids])
    held_files = set(env.sendmail.held_files())
    for message_id, queue_ids in queue_message_ids(
            env.sendmail, held_files).items():
        for queue_id in queue_ids:
            if queue_id not in held_ids:
                account.problems.append(
                    f"{message_id}: hf{queue_id} exists but mailq -qQ does "
                    "not list it")
    queued = queue_message_ids(env.sendmail, env.sendmail.queued_files())

    copies = {}
    returns = {}
    for sink_message in env.sink.messages:
        if sink_message.sender == "":
            for match in MESSAGE_ID_HEADER.finditer(sink_message.data):
                quoted = match.group(1).decode("ascii", "replace")
                returns[quoted] = returns.get(quoted, 0) + 1
        else:
            message_id = message_id_of(sink_message.data)
            copies.setdefault(message_id, []).append(sink_message)

    for message in messages:
        outcome = classify_message(message, copies.get(message.message_id, []),
                                   returns.get(message.message_id, 0),
                                   held.get(message.message_id, []),
                                   queued.get(message.message_id, []))
        if outcome in ("delivered", "returned", "held", "refused"):
            getattr(account, outcome).append(message.message_id)
        else:
            account.problems.append(f"{message.message_id}: {outcome}")
    return account


def classify_message(message, copies, returns, held, queued):
    """Return the outcome of one tracked message, or a sentence saying why it has none."""
    refusal = message.refusal()
    places = []
    if copies:
        places.append(f"{len(copies)} copies at the sink")
    if returns:
        places.append(f"{returns} DSNs at the sink")
    if held:
        places.append(f"held as {', '.join(held)}")
    if queued:
        places.append(f"queued as {', '.join(queued)}")

    if refusal is not None:
        if places:
            return (f"refused with {refusal.code}, but "
                    f"{'; '.join(places)}")
        return "refused"
    if not message.accepted:
        return (f"the client saw neither 250 nor a refusal: "
                f"{message.last_attempt}")
    if len(places) != 1:
        return (f"accepted as {message.last_attempt.queue_id}, but "
                f"{'; '.join(places) or 'neither delivered, held nor returned'}")
    if held:
        return "held" if len(held) == 1 else f"held {len(held)} times"
    if queued:
        return f"still in the normal queue as {', '.join(queued)}"
    if returns:
        return "returned" if returns == 1 else f"returned {returns} times"

    counts = {}
    for copy in copies:
        for recipient in copy.recipients:
            key = normalize_address(recipient)
            counts[key] = counts.get(key, 0) + 1
    expected = {normalize_address(recipient): 1
                for recipient in message.accepted_recipients}
    if counts != expected:
        return (f"delivered with recipient counts {counts}, expected "
                f"{expected}")
    return "delivered"


def assert_accounted(test, env, messages, **expected):
    """Assert that every tracked message has exactly one outcome, and return the MessageAccount.

    expected maps outcome names (delivered, returned, held, refused) to
    the number of messages that must have that outcome.
    """
    account = account_messages(env, messages)
    test.assertEqual(account.problems, [], str(account))
    test.assertEqual(account.total, len(messages), str(account))
    for outcome, count in expected.items():
        test.assertEqual(len(getattr(account, outcome)), count,
                         f"{outcome}: {account}")
    return account


# ---------------------------------------------------------------------------
# The shared hold ledger in memcached, and several MX hosts in one test


def memcached_exchange(port, command, complete, timeout=5):
    """Send one memcached text-protocol command and return its reply as bytes.

    complete(reply) returns True once the reply is whole. Raises
    HarnessError when the server closes the connection first.
    """
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=timeout) as connection:
        connection.sendall(command.encode("ascii") + b"\r\n")
        reply = b""
        while not complete(reply):
            chunk = connection.recv(65536)
            if not chunk:
                raise HarnessError(f"memcached at 127.0.0.1:{port} closed "
                                   f"the connection after {command!r}; "
                                   f"reply so far: {reply[:200]!r}")
            reply += chunk
    return reply


MEMCACHED_ERRORS = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")


def memcached_error(reply):
    return reply.endswith(b"\r\n") and reply.split(b" ", 1)[0].rstrip(
        b"\r\n") in MEMCACHED_ERRORS


def memcached_command(port, command):
    """Send a memcached command with a one-line reply (flush_all, delete) and return that line."""
    reply = memcached_exchange(port, command, lambda r: r.endswith(b"\r\n"))
    return reply.decode("ascii", "replace").strip()


def memcached_get(port, key):
    """Return the value of key on the memcached server at port as text, or None when it has none."""
    def complete(reply):
        return reply.endswith(b"END\r\n") or memcached_error(reply)
    reply = memcached_exchange(port, f"get {key}", complete)
    if memcached_error(reply):
        raise HarnessError(f"memcached at 127.0.0.1:{port} rejected "
                           f"'get {key}': {reply.decode('ascii', 'replace')}")
    if not reply.startswith(b"VALUE "):
        return None
    header, _, rest = reply.partition(b"\r\n")
    length = int(header.split()[3])
    return rest[:length].decode("utf-8", "replace")


def mark_keys(port, host_id, prefix="ondemand", tries=64):
    """Return the keys of host_id's marks that the memcached server at port has.

    The daemon writes one mark per server, under the first key of the form
    PREFIX:host:ID:N that consistent hashing places on that server.
    """
    keys = [f"{prefix}:host:{host_id}:{number}" for number in range(tries)]
    return [key for key in keys if memcached_get(port, key) is not None]


@dataclasses.dataclass(frozen=True)
class LedgerItem:
    """One held message in a domain's ledger entry."""

    host: str
    queue_id: str
    size: int
    held_at: int


def parse_ledger_entry(value, domain):
    """Parse the ledger entry of domain into a list of LedgerItems.

    An entry is the line "odledger 1 DOMAIN", one line "HOST QUEUEID SIZE
    HELDAT" per held message and the closing line "end COUNT". Raises
    ValueError for any other text.
    """
    lines = value.split("\n")
    if lines[-1] != "":
        raise ValueError(f"the entry of {domain} does not end with a "
                         f"newline: {value!r}")
    lines = lines[:-1]
    if not lines or lines[0] != f"odledger 1 {domain}":
        raise ValueError(f"the entry of {domain} starts with "
                         f"{lines[0] if lines else ''!r}")
    body = lines[1:]
    if not body or body[-1] != f"end {len(body) - 1}":
        raise ValueError(f"the entry of {domain} has {max(0, len(body) - 1)}"
                         f" item lines but closes with "
                         f"{body[-1] if body else ''!r}")
    body = body[:-1]
    items = []
    for line in body:
        fields = line.split(" ")
        if (len(fields) != 4 or not fields[2].isdigit()
                or not fields[3].isdigit()):
            raise ValueError(f"malformed line {line!r} in the entry of "
                             f"{domain}")
        items.append(LedgerItem(fields[0], fields[1], int(fields[2]),
                                int(fields[3])))
    return items


def ledger_key(domain, kind="d", prefix="ondemand"):
    """Return the memcached key of domain's entry (kind "d") or release time (kind "r").

    Only the plain form "PREFIX:KIND:DOMAIN" is built. Names too long for it
    get a hashed key, which this function does not compute.
    """
    key = f"{prefix}:{kind}:{domain}"
    if len(key) > 250:
        raise ValueError(f"{domain} is too long for the plain key form")
    return key


def read_ledger_entry(port, domain, prefix="ondemand"):
    """Return the LedgerItems of domain's entry on the server at port, or None when it has no entry."""
    value = memcached_get(port, ledger_key(domain, "d", prefix))
    return None if value is None else parse_ledger_entry(value, domain)


def ledger_pairs(items):
    """Return the sorted (host, queue ID) pairs of LedgerItems, or None for None."""
    if items is None:
        return None
    return sorted((item.host, item.queue_id) for item in items)


class MxHost:
    """One MX host of a test: a sendmail with FEATURE(`ondemand') and its own ondemand-milter.

    Every host of an Environment shares its syslog capture and SMTP sink.
    primary() wraps the Environment's own sendmail and milter, as
    FeatureTestCase sets them up. create() adds another host in a
    subdirectory of the Environment's, with its own queue, sockets and
    port. Call its start(), and its stop() before the Environment closes.
    """

    def __init__(self, env, name, sendmail, milter):
        self.env = env
        self.name = name
        self.sendmail = sendmail
        self.milter = milter

    @classmethod
    def primary(cls, env, name="mx1"):
        return cls(env, name, env.sendmail, env.milter)

    @classmethod
    def create(cls, env, name, domains, milter_config=None):
        """Prepare another host in env.workdir/name, which shares env's syslog capture and sink.

        Build its sendmail.cf while SENDMAIL_CF_DIR points at a
        cf_overlay() tree, which has FEATURE(`ondemand').
        """
        workdir = os.path.join(env.workdir, name)
        os.makedirs(workdir)
        socketmap = os.path.join(workdir, "socketmap.sock")
        config = {"Domain": list(domains),
                  "SendmailConfig": os.path.join(workdir, "sendmail.cf"),
                  "SocketMap": f"unix:{socketmap}",
                  "ControlSocket": os.path.join(workdir, "control.sock")}
        config.update(milter_config or {})
        milter = Milter(workdir, config)
        sendmail = Sendmail(
            workdir, env.sink.port,
            extra_mc=ondemand_feature_mc(milter.socket_path, socketmap))
        return cls(env, name, sendmail, milter)

    def start(self):
        """Start the milter and sendmail, and wait for the milter's first index build."""
        since = self.env.syslog.mark()
        self.sendmail.write_config()
        self.milter.start()
        self.sendmail.start()
        self.wait_for_milter(r"hold index built from the queue", since)
        return self

    def stop(self):
        """Stop sendmail and the milter, and raise CheckerReport when the milter wrote a sanitizer or valgrind report."""
        self.sendmail.stop()
        self.milter.stop()
        reports = self.milter.reports()
        if reports:
            raise CheckerReport(f"ondemand-milter of {self.name} wrote a "
                                "sanitizer or valgrind report:\n"
                                + "\n".join(reports))

    @property
    def host_id(self):
        return self.milter.config["HostId"]

    def wait_for_milter(self, pattern, since=0, timeout=WAIT_TIMEOUT):
        """Wait for a syslog line of this host's ondemand-milter process and return (LogLine, re.Match)."""
        return self.env.syslog.wait_for(pattern, timeout, since=since,
                                        ident=MILTER_IDENT,
                                        pid=self.milter.process.pid)

    def milter_lines(self, pattern, since=0):
        """Return the syslog lines of this host's ondemand-milter process that match pattern."""
        return [line for line in self.env.syslog.find_all(
                    pattern, since, ident=MILTER_IDENT)
                if line.pid == self.milter.process.pid]

    def wait_resynced(self, since=0, timeout=WAIT_TIMEOUT):
        """Wait for the milter's "re-synced from the queue" line after log mark since."""
        return self.wait_for_milter(r"^ledger: re-synced from the queue",
                                    since, timeout)

    def send(self, sender, recipients, data=None, **kwargs):
        return send_message(self.sendmail.port, sender, recipients, data,
                            **kwargs)

    def etrn(self, argument):
        return send_etrn(self.sendmail.port, argument)

    def ctl(self, *arguments):
        return ondemandctl(self.milter.config_path, *arguments)

    def hold(self, recipient, domain, sender=SENDER):
        """Send one message to recipient, check that this host held it, and return its queue ID.

        Checks the 250 reply, the milter's hold line for domain and the hf
        file. EnvironmentTestCase.assert_held checks more, on the primary
        host only.
        """
        result = self.send(sender, [recipient])
        queue_id = result.queue_id
        if queue_id is None:
            raise AssertionError(f"{self.name} did not accept a message to "
                                 f"{recipient}: {result}")
        line, _ = self.env.syslog.wait_for(
            rf"^{re.escape(queue_id)}: action=hold ", ident=MILTER_IDENT,
            pid=self.milter.process.pid)
        if f" domain={domain} " not in line.message:
            raise AssertionError(f"{self.name} held {queue_id} for another "
                                 f"domain than {domain}: {line}")
        if f"hf{queue_id}" not in self.sendmail.held_files():
            raise AssertionError(f"{self.name} logged the hold of {queue_id} "
                                 f"but its queue has no hf{queue_id}")
        return queue_id

    def held_queue_ids(self):
        """Return the queue IDs that mailq -qQ lists on this host."""
        return {entry.queue_id
                for entry in self.sendmail.queue(quarantined=True)}

    def wait_until_released(self, queue_ids, timeout=WAIT_TIMEOUT):
        """Wait until each of queue_ids reached the sink and left this host's queue."""
        deadline = time.monotonic() + timeout
        for queue_id in queue_ids:
            self.env.sink.wait_for_queue_id(
                queue_id, max(0.1, deadline - time.monotonic()))
            wait_until(lambda q=queue_id: f"hf{q}" not in
                       self.sendmail.held_files(),
                       max(0.1, deadline - time.monotonic()),
                       description=f"{queue_id} to leave the queue of "
                       f"{self.name}")
