#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests with hostile input over SMTP, ETRN, the socket map and
the control socket.

Each input must get a clear refusal or be handled like a normal request,
the daemon must keep running with the same PID, and the release helper
must only ever see valid queue IDs and domains. Every message that a test
sends ends in exactly one place (odtest.assert_accounted).
"""

import os
import re
import socket
import sys
import tempfile
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT, SENDER  # noqa: E402

QUEUE_ID = re.compile(r"^[A-Za-z0-9]{6,20}$")
HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
                       r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class RawSmtp:
    """An SMTP session that sends command lines as raw octets, NUL and control characters included."""

    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port),
                                               timeout=odtest.WAIT_TIMEOUT + 20)
        self.stream = self.socket.makefile("rb")
        self.greeting = self.read_reply()

    def read_reply(self):
        """Return the next Reply, or None when the server closed the connection."""
        lines = []
        while True:
            line = self.stream.readline(65536)
            if not line:
                return None
            lines.append(line.rstrip(b"\r\n").decode("latin-1"))
            if line[3:4] != b"-":
                return odtest.Reply(int(line[:3]),
                                    "\n".join(text[4:] for text in lines))

    def command(self, line, replies=1):
        """Send line and CRLF, and return the next replies (a count) as a list of Reply or None."""
        self.socket.sendall(line + b"\r\n")
        return [self.read_reply() for _ in range(replies)]

    def close(self):
        self.stream.close()
        self.socket.close()


def hostile_message(recipients):
    """Return a TrackedMessage to recipients whose To header names none of them.

    The header stays valid whatever the envelope addresses contain.
    """
    data = odtest.make_message(SENDER, ["hostile-test@client.test"])
    return odtest.TrackedMessage(message_id=odtest.message_id_of(data),
                                 sender=SENDER, recipients=list(recipients),
                                 data=data)


def send_raw(port, message):
    """Send message over RawSmtp with its recipients as raw RCPT arguments, and record the attempt.

    Each recipient string goes out as it is, after "RCPT TO:", so it
    carries its own angle brackets. smtplib would reject CR and LF in it.
    """
    transaction = odtest.SmtpTransaction()
    raw = RawSmtp(port)
    try:
        transaction.greeting = raw.greeting
        transaction.ehlo, = raw.command(b"EHLO client.ondemand.test")
        transaction.mail, = raw.command(f"MAIL FROM:<{message.sender}>"
                                        .encode())
        for recipient in message.recipients:
            reply, = raw.command(b"RCPT TO:" + recipient.encode("latin-1"))
            transaction.rcpt.append((recipient, reply))
        if transaction.accepted_recipients:
            reply, = raw.command(b"DATA")
            transaction.data = reply
            if reply is not None and reply.code == 354:
                transaction.data, = raw.command(message.data + b".")
        raw.command(b"QUIT")
    finally:
        raw.close()
    message.attempts.append(transaction)
    return transaction


class HostileTestCase(odtest.FeatureTestCase):

    def setUp(self):
        super().setUp()
        self.milter_pid = self.env.milter.process.pid

    def assert_daemon_unharmed(self):
        """Assert that the daemon runs with its first PID and that its helper saw only valid arguments."""
        self.assertTrue(self.env.milter.running,
                        self.env.milter.process.output())
        self.assertEqual(self.env.milter.process.pid, self.milter_pid)
        for line in self.env.syslog.find_all(r"^release helper: ",
                                             ident=MILTER_IDENT):
            self.assertNotIn("rejected", line.message, str(line))
            ids = re.search(r" queue IDs \d+-\d+ of \d+: (.*)$", line.message)
            if ids:
                for queue_id in ids.group(1).split(" "):
                    self.assertRegex(queue_id, QUEUE_ID, str(line))
            domain = re.search(r" domain=(\S*)", line.message)
            if domain:
                self.assertRegex(domain.group(1), HOST_NAME, str(line))


class HostileRecipientTest(HostileTestCase):

    def test_overlong_addresses(self):
        long_domain = "a" * 290 + ".example.test"
        long_labels = ("b" * 63 + ".") * 4 + "example.test"
        cases = [f"user@{long_domain}", f"user@{long_labels}",
                 "l" * 1000 + "@example.test", "l" * 250 + "@example.test"]
        messages = [hostile_message([recipient]) for recipient in cases]
        # sendmail takes a 64-octet label, and the domain is not on-demand.
        long_label = hostile_message(["user@" + "c" * 64 + ".example.test"])

        for message in [*messages, long_label]:
            message.send(self.env.sendmail.port)

        for message in messages:
            with self.subTest(recipient=message.recipients[0][:40]):
                refusal = message.refusal()
                self.assertIsNotNone(refusal, str(message.last_attempt))
                self.assertEqual(refusal.code, 553, str(refusal))
        self.assertTrue(long_label.accepted, str(long_label.last_attempt))
        self.assert_accounted([*messages, long_label],
                              refused=len(messages), delivered=1)
        self.assert_daemon_unharmed()

    def test_control_characters(self):
        # sendmail cuts the line at NUL, so the address loses its ">".
        refused = {"<us\0er@example.test>": 553,
                   "<user@exam\0ple.test>": 553,
                   "<us\x01er@example.test>": 501,
                   "<user@example.test\x7f>": 501,
                   "<user@exa\x1bmple.test>": 501}
        # sendmail takes these as mail for user@example.test.
        accepted = ["<us\ter@example.test>", "<user@example.test\r>",
                    "<user@example.test\t>", "<user@example.test >"]
        refused_messages = {recipient: hostile_message([recipient])
                            for recipient in refused}
        accepted_messages = [hostile_message([recipient])
                             for recipient in accepted]

        for message in [*refused_messages.values(), *accepted_messages]:
            send_raw(self.env.sendmail.port, message)

        for recipient, code in refused.items():
            with self.subTest(recipient=recipient):
                message = refused_messages[recipient]
                self.assertEqual(message.refusal().code, code,
                                 str(message.last_attempt))
        for message in accepted_messages:
            with self.subTest(recipient=message.recipients[0]):
                self.assertTrue(message.accepted, str(message.last_attempt))
                self.env.syslog.wait_for(
                    rf"^{message.last_attempt.queue_id}: action=hold "
                    r"domain=example\.test ", ident=MILTER_IDENT)
        self.assert_accounted([*refused_messages.values(),
                               *accepted_messages],
                              refused=len(refused), held=len(accepted))
        self.assert_daemon_unharmed()

    def test_routed_forms_held(self):
        # sendmail delivers each of these to user@example.test.
        local = f"{socket.gethostname().split('.')[0]}.{odtest.TEST_DOMAIN}"
        forms = ["< user @ example . test >", "<user@example.test(comment)>",
                 "<user@example(comment).test>",
                 "<@relay.test:user@example.test>",
                 f"<user%example.test@{local}>",
                 f"<example.test!user@{local}>",
                 "<user%example.test@[127.0.0.1]>"]
        messages = [hostile_message([form]) for form in forms]

        for message in messages:
            send_raw(self.env.sendmail.port, message)

        for message in messages:
            with self.subTest(form=message.recipients[0]):
                self.assertTrue(message.accepted, str(message.last_attempt))
                self.env.syslog.wait_for(
                    rf"^{message.last_attempt.queue_id}: action=hold "
                    r"domain=example\.test ", ident=MILTER_IDENT)
        self.assert_accounted(messages, held=len(messages))
        self.assert_daemon_unharmed()

    def test_thousands_of_recipients(self):
        recipients = [f"user{number}@example.test" for number in range(2000)]
        message = hostile_message(recipients)

        result = message.send(self.env.sendmail.port)

        self.assertEqual(len(result.accepted_recipients), 2000, str(result))
        line, _ = self.env.syslog.wait_for(
            rf"^{result.queue_id}: action=hold domain=example\.test "
            r".*nrcpts=2000 ", ident=MILTER_IDENT)
        self.assert_accounted([message], held=1)

        since = self.env.syslog.mark()
        reply = self.etrn("example.test")

        self.assertEqual(reply.code, 253, str(reply))
        done = self.wait_for_release_done("example.test", since, timeout=60)
        self.assertEqual(done.group("delivered"), "1")
        # The accounting checks that each recipient got exactly one copy.
        self.assert_accounted([message], delivered=1)
        self.assert_daemon_unharmed()


class InvalidSubdomainTest(HostileTestCase):
    domains = [".example.test", "other-od.test"]

    # sendmail takes these domains and routes them as subdomains of
    # example.test, but they are not valid host names, so the filter
    # rejects them with 553 5.1.2 instead of letting them go out at once.
    def test_invalid_subdomain_not_passed(self):
        recipients = ["user@" + "c" * 64 + ".example.test",
                      "user@-a.example.test", "user@a_b.example.test"]
        messages = [hostile_message([recipient]) for recipient in recipients]

        for message in messages:
            result = message.send(self.env.sendmail.port)
            reply = result.rcpt[0][1]
            self.assertEqual(reply.code, 553, str(result))
            self.assertIn("5.1.2", reply.text)

        self.assert_accounted(messages, delivered=0, refused=3)


class RecipientLimitTest(HostileTestCase):

    def prepare(self):
        self.extra_mc = "define(`confMAX_RCPTS_PER_MESSAGE', `100')dnl\n"

    def test_sendmail_limit_applies(self):
        recipients = [f"user{number}@example.test" for number in range(250)]
        message = hostile_message(recipients)

        result = message.send(self.env.sendmail.port)

        self.assertEqual(len(result.accepted_recipients), 100, str(result))
        for _, reply in result.rcpt[100:]:
            self.assertEqual(reply.code, 452, str(reply))
            self.assertIn("Too many recipients", reply.text)
        self.env.syslog.wait_for(
            rf"^{result.queue_id}: action=hold domain=example\.test "
            r".*nrcpts=100 ", ident=MILTER_IDENT)
        entries = {entry.queue_id: entry
                   for entry in self.env.sendmail.queue(quarantined=True)}
        self.assertEqual(len(entries[result.queue_id].recipients), 100)
        self.assert_accounted([message], held=1)
        self.assert_daemon_unharmed()


class HostileEtrnTest(HostileTestCase):

    def test_etrn_flood_one_run(self):
        held = [self.hold(f"user{number}@example.test", "example.test")
                for number in range(5)]
        sink = self.env.sink
        sink.close_gate()
        self.addCleanup(sink.open_gate)
        since = self.env.syslog.mark()
        reply = self.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        odtest.wait_until(lambda: sink.waiting_at_gate > 0,
                          description="the release to reach the sink")

        # 8 sessions of 4 ETRNs each stay below sendmail's listen backlog
        # (ListenQueueSize, 10 by default). With 30 parallel connections,
        # some waited for TCP retransmissions for up to 31 s.
        replies = []
        lock = threading.Lock()

        def ask():
            raw = RawSmtp(self.env.sendmail.port)
            try:
                raw.command(b"EHLO customer.ondemand.test")
                for _ in range(4):
                    answer, = raw.command(b"ETRN example.test")
                    with lock:
                        replies.append(answer)
            finally:
                raw.close()
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(odtest.WAIT_TIMEOUT + 30)

        self.assertEqual(len(replies), 32)
        for answer in replies:
            self.assertIsNotNone(answer)
            self.assertIn(answer.code, (250, 253), str(answer))
        sink.open_gate()
        self.wait_for_release_done("example.test", since)
        releases = self.env.syslog.find_all(
            r"^action=release domain=example\.test ", since=since,
            ident=MILTER_IDENT)
        repeats = self.env.syslog.find_all(
            r"^action=etrn-repeat domain=example\.test ", since=since,
            ident=MILTER_IDENT)
        self.assertEqual(len(releases), 1, [str(line) for line in releases])
        self.assertEqual(len(releases) + len(repeats), 1 + len(replies))
        self.assert_accounted(held, delivered=5)
        self.assert_daemon_unharmed()

    def test_crafted_arguments(self):
        held = [self.hold("user@example.test", "example.test"),
                self.hold("user@other-od.test", "other-od.test")]
        canary = os.path.join(tempfile.gettempdir(),
                              f"ondemand-e2e-canary-{os.getpid()}")
        refused = [b"-qIabc", b"-qQ", b"example.test;id",
                   f"$(touch {canary})".encode(), f"`touch {canary}`".encode(),
                   b"example.test|id", b"example.test extra",
                   b"example.test&&id", b"../../etc/passwd", b"..", b"%2e%2e",
                   b"example.%test", b"example.test%other-od.test",
                   b"example.test/192.0.2.7", b"\x01example.test",
                   b"example.test\x7f", b"example.test\rX", b"@",
                   b"@@example.test", b"*", b"example.test*", b"exa_mple.test",
                   b"[127.0.0.1]", b"-" + b"a" * 250]
        # sendmail cuts a line at NUL and splits it at a bare newline, so
        # these are ordinary requests, as are the case and dot forms.
        ordinary = [(b"exa\0mple.test", 1), (b"EXAMPLE.TEST\0-qIabc", 1),
                    (b"example.test.", 1),
                    (b"example.test\nETRN other-od.test", 2),
                    (b"\texample.test", 1), (b"#somequeue", 1),
                    (b"a" * 300, 1)]
        since = self.env.syslog.mark()

        for argument in refused:
            with self.subTest(argument=argument[:40]):
                raw = RawSmtp(self.env.sendmail.port)
                try:
                    raw.command(b"EHLO customer.ondemand.test")
                    reply, = raw.command(b"ETRN " + argument)
                finally:
                    raw.close()
                self.assertIsNotNone(reply)
                self.assertEqual(reply.code, 501, str(reply))
        for argument, reply_count in ordinary:
            with self.subTest(argument=argument[:40]):
                raw = RawSmtp(self.env.sendmail.port)
                try:
                    raw.command(b"EHLO customer.ondemand.test")
                    replies = raw.command(b"ETRN " + argument, reply_count)
                finally:
                    raw.close()
                for reply in replies:
                    self.assertIsNotNone(reply)
                    self.assertIn(reply.code, (250, 251, 253, 459),
                                  str(reply))

        self.assertFalse(os.path.exists(canary))
        self.wait_for_release_done("example.test", since)
        self.wait_for_release_done("other-od.test", since)
        self.assert_accounted(held, delivered=2)
        invalid = self.env.syslog.find_all(r"^action=etrn-invalid ",
                                           since=since, ident=MILTER_IDENT)
        self.assertEqual(len(invalid), len(refused),
                         [str(line) for line in invalid])
        for line in invalid:
            self.assertNotRegex(line.message, r"[\x00-\x1f\x7f]", str(line))
        self.assert_daemon_unharmed()

    def test_spoofed_client_address(self):
        # The socket map key is "ARGUMENT/CLIENT", and EtrnAllow limits
        # example.test to 192.0.2.0/24; a slash in the argument must not
        # pass for the client's address.
        self.env.reload_milter({"EtrnAllow": "example.test 192.0.2.0/24"})
        held = self.hold("user@example.test", "example.test")

        spoofed = self.etrn("example.test/192.0.2.7")
        direct = self.etrn("example.test")

        self.assertEqual(spoofed.code, 501, str(spoofed))
        self.assertEqual(direct.code, 459, str(direct))
        self.assert_accounted([held], held=1)
        self.assert_daemon_unharmed()


class HostileSocketTest(HostileTestCase):
    """Requests that sendmail would never send, written to the daemon's own sockets as root."""

    @staticmethod
    def exchange(path, payload):
        """Send payload on a new connection to path and return what comes back until the daemon closes it.

        Returns None when the connection was reset: the daemon closed it
        with part of the payload unread.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(odtest.WAIT_TIMEOUT)
            client.connect(path)
            chunks = []
            try:
                client.sendall(payload)
                client.shutdown(socket.SHUT_WR)
                while True:
                    chunk = client.recv(4096)
                    if not chunk:
                        return b"".join(chunks)
                    chunks.append(chunk)
            except ConnectionResetError:
                return None

    @staticmethod
    def netstring(text):
        return str(len(text)).encode() + b":" + text + b","

    def test_socketmap_keys(self):
        held = self.hold("user@example.test", "example.test")
        invalid_keys = [b"-qIabc/127.0.0.1", b"example.test;id/127.0.0.1",
                        b"example.test\n-qI1/127.0.0.1",
                        b"example.test -qIabc/127.0.0.1",
                        b"../../x/127.0.0.1", b"%s%s%n/127.0.0.1",
                        b"\xff\xfe/127.0.0.1"]

        for key in invalid_keys:
            with self.subTest(key=key):
                reply = self.exchange(self.socketmap_socket,
                                      self.netstring(b"ondemand " + key))
                self.assertIsNotNone(reply)
                self.assertRegex(reply, rb"^\d+:OK INVALID ")
        for payload in [b"99999999:x,", b"5:abc,", b"x:abc,",
                        self.netstring(b"ondemand a\0b/127.0.0.1"),
                        self.netstring(b"ondemand " + b"a" * 2000),
                        b"3:abcdef"]:
            with self.subTest(payload=payload[:30]):
                self.assertIn(self.exchange(self.socketmap_socket, payload),
                              (b"", None))

        self.assertEqual(self.env.sink.messages_to("user@example.test"), [])
        self.assert_accounted([held], held=1)
        self.assert_daemon_unharmed()

    def test_control_requests(self):
        held = self.hold("user@example.test", "example.test")
        requests = ["RELEASE -qIabc\n", "RELEASE example.test extra\n",
                    "RELEASE ../example.test\n", "UNHOLD ../../etc/passwd\n",
                    "UNHOLD -qQ\n", "LIST %s%n\n", "RELEASE example.test\0\n",
                    "\n", "FROBNICATE\n"]

        for request in requests:
            with self.subTest(request=request[:30]):
                reply = self.exchange(self.control_socket, request.encode())
                self.assertIsNotNone(reply)
                self.assertRegex(reply.decode("utf-8", "replace"),
                                 r"(^|\n)ERROR ")
        # The daemon replies ERROR to an overlong line and closes the
        # connection with the rest unread, which may reset it first.
        reply = self.exchange(self.control_socket,
                              b"STATUS" + b"x" * 5000 + b"\n")
        if reply is not None:
            self.assertRegex(reply.decode("utf-8", "replace"), r"^ERROR ")

        self.assertIn(f"hf{held.last_attempt.queue_id}",
                      self.env.sendmail.held_files())
        self.assert_accounted([held], held=1)
        self.assert_daemon_unharmed()


if __name__ == "__main__":
    odtest.main()
