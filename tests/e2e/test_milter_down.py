#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of sendmail with the milter down.

The filter is attached with F=T, so while ondemand-milter is not running
sendmail must reply 4xx: the client keeps the message and retries, and
nothing is delivered or queued behind the filter's back.
"""

import contextlib
import os
import smtplib
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import SENDER  # noqa: E402


class MilterDownTest(odtest.EnvironmentTestCase):
    environment_options = {"domains": ["example.test"]}

    def assert_tempfailed(self, result):
        """Assert that the client got a 4xx, no 5xx and no accepted message."""
        replies = [result.greeting, result.ehlo, result.mail,
                   *(reply for _, reply in result.rcpt), result.data]
        codes = [reply.code for reply in replies if reply is not None]
        self.assertTrue(any(400 <= code < 500 for code in codes), str(result))
        self.assertFalse(any(code >= 500 for code in codes), str(result))
        self.assertIsNone(result.queue_id, str(result))

    def assert_nothing_queued_or_delivered(self):
        self.assertEqual(self.env.sendmail.queue_files("qf"), [])
        self.assertEqual(self.env.sendmail.queue_files("hf"), [])
        self.assertEqual(self.env.sendmail.queue_files("df"), [])
        self.assertEqual(self.env.sink.messages, [])

    def test_pid_file_names_milter(self):
        with open(self.env.milter.pid_path, encoding="ascii") as pid_file:
            self.assertEqual(pid_file.read().strip(),
                             str(self.env.milter.process.pid))

    def test_sigterm_exits_zero(self):
        self.assertEqual(self.env.milter.stop(), 0,
                         self.env.milter.process.output())
        self.assertFalse(os.path.exists(self.env.milter.pid_path))

    def test_stopped_milter_tempfails_on_demand_mail(self):
        self.env.milter.stop()

        result = self.env.send(SENDER, ["user@example.test"])

        self.assert_tempfailed(result)
        self.assert_nothing_queued_or_delivered()

    def test_stopped_milter_tempfails_other_mail(self):
        self.env.milter.stop()

        result = self.env.send(SENDER, ["user@other.test"])

        self.assert_tempfailed(result)
        self.assert_nothing_queued_or_delivered()

    def test_killed_milter_tempfails(self):
        # SIGKILL leaves the socket file behind, as a crash would.
        self.env.milter.kill()

        result = self.env.send(SENDER, ["user@example.test"])

        self.assert_tempfailed(result)
        self.assert_nothing_queued_or_delivered()

    def test_restarted_milter_holds_again(self):
        self.env.milter.stop()
        first_attempt = self.env.send(SENDER, ["user@example.test"])
        self.assert_tempfailed(first_attempt)

        self.env.milter.start()

        retry = self.env.send(SENDER, ["user@example.test"])
        self.assert_held(retry, ["user@example.test"], "example.test")

    def test_milter_killed_during_transaction(self):
        client = smtplib.SMTP(timeout=odtest.WAIT_TIMEOUT + 30)
        self.addCleanup(client.close)
        self.assertEqual(client.connect("127.0.0.1", self.env.sendmail.port)[0],
                         220)
        client.ehlo("client.ondemand.test")
        self.assertEqual(client.docmd(f"MAIL FROM:<{SENDER}>")[0], 250)
        self.assertEqual(client.docmd("RCPT TO:<user@example.test>")[0], 250)

        self.env.milter.kill()
        message = odtest.make_message(SENDER, ["user@example.test"])
        try:
            code, text = client.data(message)
        except smtplib.SMTPDataError as error:
            code, text = error.smtp_code, error.smtp_error
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()

        self.assertTrue(400 <= code < 500, f"DATA got {code} {text!r}")
        self.assert_nothing_queued_or_delivered()


if __name__ == "__main__":
    odtest.main()
