#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end fault tests of the daemon: killed filter, killed release
helper, and a restart in the middle of a release.

Every message that a test sends must end in exactly one place: delivered
to the sink once, still held, or refused with a reply code that its client
saw (odtest.assert_accounted).
"""

import os
import re
import signal
import smtplib
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT, SENDER  # noqa: E402


class PausedClient:
    """An SMTP client that stops in the middle of its transaction until resume().

    stage "rcpt" stops after the RCPT replies; stage "data" stops after
    sending DATA and the first half of the message. The replies go into
    an SmtpTransaction, which is appended to the tracked message's attempts.
    """

    def __init__(self, port, message, stage):
        self.port = port
        self.message = message
        self.stage = stage
        self.transaction = odtest.SmtpTransaction()
        self.paused = threading.Event()
        self.resumed = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def resume(self):
        self.resumed.set()

    def join(self):
        self.thread.join(odtest.WAIT_TIMEOUT + 30)
        self.message.attempts.append(self.transaction)

    def _run(self):
        try:
            self._converse()
        except (smtplib.SMTPException, OSError) as error:
            self.error = error
            self.transaction.disconnected = str(error)
        finally:
            self.paused.set()

    def _converse(self):
        transaction = self.transaction
        client = smtplib.SMTP(timeout=odtest.WAIT_TIMEOUT + 30)
        try:
            transaction.greeting = odtest.decode_reply(
                client.connect("127.0.0.1", self.port))
            transaction.ehlo = odtest.decode_reply(
                client.ehlo("client.ondemand.test"))
            transaction.mail = odtest.decode_reply(
                client.docmd(f"MAIL FROM:<{self.message.sender}>"))
            for recipient in self.message.recipients:
                transaction.rcpt.append((recipient, odtest.decode_reply(
                    client.docmd(f"RCPT TO:<{recipient}>"))))
            data = self.message.data
            half = data.index(b"\r\n", len(data) // 2) + 2
            if self.stage == "data":
                reply = odtest.decode_reply(client.docmd("DATA"))
                if reply.code != 354:
                    transaction.data = reply
                    return
                client.send(data[:half])
            self.paused.set()
            self.resumed.wait(odtest.WAIT_TIMEOUT + 30)

            if self.stage == "rcpt":
                reply = odtest.decode_reply(client.docmd("DATA"))
                if reply.code != 354:
                    transaction.data = reply
                    return
                client.send(data[:half])
            client.send(data[half:] + b".\r\n")
            transaction.data = odtest.decode_reply(client.getreply())
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
            client.close()


class FilterKilledTest(odtest.FeatureTestCase):

    def test_filter_line_tempfails(self):
        with open(self.env.sendmail.cf_path, encoding="utf-8") as stream:
            filters = [line for line in stream.read().splitlines()
                       if line.startswith("Xondemand,")]

        self.assertEqual(len(filters), 1, filters)
        self.assertRegex(filters[0], r", F=T,")

    def test_sigkill_during_transactions(self):
        port = self.env.sendmail.port
        before = [odtest.TrackedMessage.create(SENDER, [recipient])
                  for recipient in ("early@example.test",
                                    "early@other.test")]
        for message in before:
            self.assertEqual(message.send(port).data.code, 250)

        # Half of the clients stop between RCPT and DATA, half in the
        # middle of the message; half of each write to a held domain.
        clients = []
        for number in range(8):
            domain = "example.test" if number % 2 else "other.test"
            message = odtest.TrackedMessage.create(
                SENDER, [f"parallel{number}@{domain}"])
            stage = "rcpt" if number < 4 else "data"
            clients.append(PausedClient(port, message, stage).start())
        for client in clients:
            self.assertTrue(client.paused.wait(odtest.WAIT_TIMEOUT))
            self.assertIsNone(client.error, str(client.transaction))
            self.assertEqual(client.transaction.accepted_recipients,
                             client.message.recipients,
                             str(client.transaction))

        self.env.milter.kill()
        while_down = [odtest.TrackedMessage.create(SENDER, [recipient])
                      for recipient in ("down@example.test",
                                        "down@other.test")]
        for message in while_down:
            message.send(port)
        for client in clients:
            client.resume()
        for client in clients:
            client.join()

        # The filter accepts a message that is not held at the DATA
        # command, so sendmail no longer needs it for the clients that
        # were past DATA with such a message.  Every other message must
        # be refused with 4xx.
        accepted_before_kill = [
            client.message for client in clients
            if client.stage == "data"
            and client.message.recipients[0].endswith("@other.test")]
        refused = [client.message for client in clients
                   if client.message not in accepted_before_kill]
        refused += while_down
        for message in accepted_before_kill:
            self.assertTrue(message.accepted, str(message.last_attempt))
        for message in refused:
            refusal = message.refusal()
            self.assertIsNotNone(refusal, str(message.last_attempt))
            self.assertEqual(refusal.code // 100, 4,
                             str(message.last_attempt))
        everything = before + accepted_before_kill + refused
        self.assert_accounted(everything, delivered=3, held=1,
                              refused=len(refused))

        self.start_milter()
        for message in refused:
            self.assertEqual(message.send(port).data.code, 250,
                             str(message.last_attempt))
        # Once in many runs on a loaded machine, sendmail deferred one of
        # the retried messages that are not held ("stat=Deferred" with no
        # reason), so a queue run takes the place of its next retry.
        self.env.sendmail.run("-q", "-v", "-OTimeout.hoststatus=0s")

        account = self.assert_accounted(everything, refused=0)
        on_demand = [message.message_id for message in everything
                     if message.recipients[0].endswith("@example.test")]
        self.assertEqual(sorted(account.held), sorted(on_demand))
        self.assertEqual(len(account.delivered),
                         len(everything) - len(on_demand))


class HelperKilledTest(odtest.FeatureTestCase):

    def test_killed_helper_gives_458(self):
        held = [self.hold(f"before{number}@example.test", "example.test")
                for number in range(3)]
        milter_pid = self.env.milter.process.pid
        helper_pid = odtest.release_helper_pid(milter_pid)
        since = self.env.syslog.mark()

        os.kill(helper_pid, signal.SIGKILL)

        self.env.syslog.wait_for(
            rf"^release helper pid={helper_pid} is gone; releases fail "
            "until ondemand-milter is restarted", since=since,
            ident=MILTER_IDENT)
        self.env.syslog.wait_for(
            rf"^release helper pid={helper_pid} was killed by signal "
            f"{int(signal.SIGKILL)}$", since=since, ident=MILTER_IDENT)
        # The daemon reaped its child, so no zombie is left.
        odtest.wait_until(lambda: odtest.process_status(helper_pid) is None,
                          description=f"helper pid {helper_pid} to be reaped")

        reply = self.etrn("example.test")
        self.assertEqual(reply.code, 458, str(reply))
        self.assertIn("release helper not available", reply.text)
        self.env.syslog.wait_for(
            r"^action=etrn-tempfail domain=example\.test ", since=since,
            ident=MILTER_IDENT)

        result = self.ctl("release", "example.test")
        self.assertEqual(result.returncode, 69, result.stdout)
        self.assertIn("release helper is not available", result.stderr)

        # Holding needs no helper, so new mail is still held.
        held.append(self.hold("after@example.test", "example.test"))
        delivered = odtest.TrackedMessage.create(SENDER, ["user@other.test"])
        self.assert_delivered(delivered.send(self.env.sendmail.port),
                              ["user@other.test"])

        self.assertTrue(self.env.milter.running)
        self.assertEqual(self.env.milter.process.pid, milter_pid)
        self.assertEqual(self.env.sink.messages_to("before0@example.test"),
                         [])
        self.assert_accounted(held + [delivered], held=4, delivered=1)

        # A restart brings a new helper, and the held mail goes out.
        self.restart_milter()
        since = self.env.syslog.mark()
        reply = self.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        self.assertIn("4 pending messages", reply.text)
        self.wait_for_release_done("example.test", since)
        self.assert_accounted(held + [delivered], held=0, delivered=5)


class RestartDuringReleaseTest(odtest.FeatureTestCase):
    held_count = 24
    passed_before_stop = 6

    def hold_many(self, count):
        """Send count messages to example.test and wait for their hold lines."""
        messages = []
        for number in range(count):
            message = odtest.TrackedMessage.create(
                SENDER, [f"user{number}@example.test"])
            result = message.send(self.env.sendmail.port)
            self.assertEqual(result.data.code, 250, str(result))
            self.env.syslog.wait_for(
                rf"^{re.escape(result.queue_id)}: action=hold ",
                ident=MILTER_IDENT)
            messages.append(message)
        return messages

    def test_restart_then_second_release(self):
        messages = self.hold_many(self.held_count)
        sink = self.env.sink
        sink.close_gate(after=self.passed_before_stop)
        self.addCleanup(sink.open_gate)

        reply = self.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        self.assertIn(f"{self.held_count} pending messages", reply.text)
        odtest.wait_until(lambda: sink.waiting_at_gate > 0,
                          description="a release run to wait at the sink")
        self.assertEqual(len(sink.messages), self.passed_before_stop)

        # The old helper's sendmail runs outlive the daemon: they wait at
        # the sink, with their messages locked.
        old_helper = odtest.release_helper_pid(self.env.milter.process.pid)
        self.assertEqual(self.env.milter.stop(), 0,
                         self.env.milter.process.output())
        odtest.wait_until(lambda: odtest.process_status(old_helper) is None,
                          description=f"old helper pid {old_helper} to exit")
        since = self.env.syslog.mark()
        self.start_milter()

        remaining = self.held_count - self.passed_before_stop
        reply = self.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        self.assertIn(f"{remaining} pending messages", reply.text)
        self.env.syslog.wait_for(
            rf"^action=release domain=example\.test trigger=etrn .*"
            rf"messages={remaining} ", since=since, ident=MILTER_IDENT)
        # Both releases now deliver from the same held messages at once.
        sink.open_gate()
        self.wait_for_release_done("example.test", since, timeout=30)

        account = self.assert_accounted(messages,
                                        delivered=self.held_count)
        self.assertEqual(len(account.delivered), self.held_count)
        queue_ids = [message.queue_id for message in sink.messages]
        self.assertEqual(len(queue_ids), len(set(queue_ids)), queue_ids)
        self.assertEqual(self.env.sendmail.held_files(), [])


if __name__ == "__main__":
    odtest.main()
