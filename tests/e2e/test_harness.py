#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Checks of the end-to-end harness itself, with sendmail and no filter.

When these fail, the milter tests cannot be trusted either: sendmail, the
sink or the syslog capture is not working on this machine.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402


class SendmailWithoutFilterTest(odtest.EnvironmentTestCase):
    environment_options = {"milter": False}

    def test_any_domain_reaches_sink(self):
        result = self.env.send("alice@client.test", ["bob@example.test"])

        self.assertEqual(result.mail.code, 250, str(result))
        self.assertEqual(result.rcpt_reply("bob@example.test").code, 250,
                         str(result))
        self.assertEqual(result.data.code, 250, str(result))
        self.assertIsNotNone(result.queue_id, str(result))
        message = self.env.sink.wait_for_recipient("bob@example.test")
        self.assertEqual(message.sender, "alice@client.test")
        self.assertIn(b"Subject: ondemand e2e test", message.data)

    def test_syslog_capture_sees_delivery(self):
        result = self.env.send("alice@client.test", ["carol@other.test"])
        queue_id = result.queue_id
        self.assertIsNotNone(queue_id, str(result))

        line, _ = self.env.syslog.wait_for(
            rf"^{queue_id}: to=<carol@other.test>.*stat=Sent")
        self.assertEqual(line.facility, odtest.LOG_MAIL)
        self.env.sendmail.wait_for_empty_queue()
        self.assertEqual(self.env.sendmail.queue(), [])

    def test_sink_tempfail_keeps_message_queued(self):
        self.env.sink.fail_at("rcpt", "451 4.3.0 Sink is busy")
        result = self.env.send("alice@client.test", ["dave@other.test"])
        queue_id = result.queue_id
        self.assertIsNotNone(queue_id, str(result))

        self.env.syslog.wait_for(rf"^{queue_id}: to=<dave@other.test>.*"
                                 r"stat=Deferred")
        entries = self.env.sendmail.queue()
        self.assertEqual([entry.queue_id for entry in entries], [queue_id])
        self.assertEqual(entries[0].recipients, ["<dave@other.test>"])
        self.assertEqual(self.env.sendmail.queued_files(), [f"qf{queue_id}"])
        self.assertEqual(self.env.sink.messages, [])

    def test_queue_run_delivers_deferred_message(self):
        # test_hold relies on "sendmail -q -v" to deliver every normal
        # queue item before it returns.
        self.env.sink.fail_at("rcpt", "451 4.3.0 Sink is busy")
        result = self.env.send("alice@client.test", ["erin@other.test"])
        queue_id = result.queue_id
        self.env.syslog.wait_for(rf"^{queue_id}: to=<erin@other.test>.*"
                                 r"stat=Deferred")
        self.env.sendmail.wait_until_unlocked(queue_id)
        self.env.sink.accept_all()

        self.env.sendmail.run("-q", "-v")

        self.assertEqual(len(self.env.sink.messages_with_queue_id(queue_id)), 1)
        self.assertEqual(self.env.sendmail.queued_files(), [])


if __name__ == "__main__":
    odtest.main()
