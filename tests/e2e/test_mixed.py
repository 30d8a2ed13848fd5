#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of transactions with recipients of more than one class.

A quarantine covers the whole envelope, so one message may hold mail for one
on-demand domain only. The first accepted recipient fixes the class (one
on-demand domain, or not held); a recipient of another class gets
452 4.5.3, which makes the sending MTA retry it in a new transaction.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import SENDER  # noqa: E402


class MixedRecipientsTest(odtest.EnvironmentTestCase):
    environment_options = {"domains": ["example.test", "example.net"]}

    def assert_rejected_for_class(self, result, recipient):
        reply = result.rcpt_reply(recipient)
        self.assertEqual(reply.code, 452, str(result))
        self.assertTrue(reply.text.startswith("4.5.3"), str(result))

    def test_normal_after_on_demand_gets_452(self):
        result = self.env.send(SENDER, ["user@example.test", "user@other.test"])

        self.assertEqual(result.rcpt_reply("user@example.test").code, 250,
                         str(result))
        self.assert_rejected_for_class(result, "user@other.test")
        self.assert_held(result, ["user@example.test"], "example.test")
        self.assertEqual(self.env.sink.messages_to("user@other.test"), [])

    def test_on_demand_after_normal_gets_452(self):
        result = self.env.send(SENDER, ["user@other.test", "user@example.test"])

        self.assertEqual(result.rcpt_reply("user@other.test").code, 250,
                         str(result))
        self.assert_rejected_for_class(result, "user@example.test")
        self.assert_delivered(result, ["user@other.test"])
        self.assertEqual(self.env.sendmail.held_files(), [])
        self.assertEqual(self.env.sink.messages_to("user@example.test"), [])

    def test_second_on_demand_domain_gets_452(self):
        result = self.env.send(SENDER, ["user@example.test", "user@example.net"])

        self.assertEqual(result.rcpt_reply("user@example.test").code, 250,
                         str(result))
        self.assert_rejected_for_class(result, "user@example.net")
        self.assert_held(result, ["user@example.test"], "example.test")

    def test_same_domain_any_case_accepted(self):
        recipients = ["one@example.test", "two@EXAMPLE.TEST",
                      "three@example.test."]
        result = self.env.send(SENDER, recipients)

        for recipient in recipients:
            self.assertEqual(result.rcpt_reply(recipient).code, 250,
                             str(result))
        self.assert_held(result, recipients, "example.test")

    def test_class_kept_after_452(self):
        # A recipient of the first class that follows a rejected one is
        # still accepted into the same message.
        recipients = ["one@example.test", "user@other.test",
                      "two@example.test", "user@example.net"]
        result = self.env.send(SENDER, recipients)

        self.assertEqual(result.rcpt_reply("one@example.test").code, 250)
        self.assert_rejected_for_class(result, "user@other.test")
        self.assertEqual(result.rcpt_reply("two@example.test").code, 250,
                         str(result))
        self.assert_rejected_for_class(result, "user@example.net")
        self.assert_held(result, ["one@example.test", "two@example.test"],
                         "example.test")

    def test_rejected_recipient_delivered_on_retry(self):
        # The second transaction is what a sending MTA does after the 452.
        first = self.env.send(SENDER, ["user@example.test", "user@other.test"])
        self.assert_rejected_for_class(first, "user@other.test")
        self.assert_held(first, ["user@example.test"], "example.test")

        retry = self.env.send(SENDER, ["user@other.test"])
        self.assert_delivered(retry, ["user@other.test"])

    def test_normal_recipients_delivered_together(self):
        recipients = ["a@other.test", "b@another.test"]
        result = self.env.send(SENDER, recipients)

        for recipient in recipients:
            self.assertEqual(result.rcpt_reply(recipient).code, 250,
                             str(result))
        self.assert_delivered(result, recipients)


if __name__ == "__main__":
    odtest.main()
