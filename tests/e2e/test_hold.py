#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of the hold path: which messages the milter holds.

A held message is quarantined by sendmail (an hf file, listed by mailq -qQ
with the reason "ondemand [DOMAIN]"), logged once by the milter, and never
delivered. Every other message goes to the sink.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import SENDER  # noqa: E402


class HoldTest(odtest.EnvironmentTestCase):
    environment_options = {
        "domains": ["example.test", ".customers.test", "bücher.test"],
    }

    def test_on_demand_domain_is_held(self):
        result = self.env.send(SENDER, ["user@example.test"])

        self.assertEqual(result.rcpt_reply("user@example.test").code, 250,
                         str(result))
        self.assert_held(result, ["user@example.test"], "example.test")

    def test_other_domain_reaches_sink(self):
        result = self.env.send(SENDER, ["user@other.test"])

        self.assert_delivered(result, ["user@other.test"])
        self.assertEqual(self.env.sendmail.held_files(), [])

    def test_recipients_of_one_domain_held_together(self):
        recipients = ["one@example.test", "two@example.test"]
        result = self.env.send(SENDER, recipients)

        for recipient in recipients:
            self.assertEqual(result.rcpt_reply(recipient).code, 250,
                             str(result))
        self.assert_held(result, recipients, "example.test")

    def test_case_and_trailing_dot_held(self):
        for recipient in ["USER@EXAMPLE.TEST", "User@Example.Test",
                          "user@example.test.", "USER@EXAMPLE.TEST."]:
            with self.subTest(recipient=recipient):
                result = self.env.send(SENDER, [recipient])
                self.assert_held(result, [recipient], "example.test")

    def test_other_labels_not_held(self):
        # Matching is by whole labels, so none of these is example.test.
        for recipient in ["user@notexample.test",
                          "user@example.test.other.test",
                          "user@example.testx",
                          "user@sub.example.test"]:
            with self.subTest(recipient=recipient):
                result = self.env.send(SENDER, [recipient])
                self.assert_delivered(result, [recipient])

    def test_subdomain_entry_holds_subdomains(self):
        # ".customers.test" in the config means every subdomain of
        # customers.test, each held under its own name.
        for recipient, domain in [("user@shop.customers.test",
                                   "shop.customers.test"),
                                  ("user@A.B.Customers.Test",
                                   "a.b.customers.test")]:
            with self.subTest(recipient=recipient):
                result = self.env.send(SENDER, [recipient])
                self.assert_held(result, [recipient], domain)

    def test_subdomain_entry_not_parent(self):
        result = self.env.send(SENDER, ["user@customers.test"])

        self.assert_delivered(result, ["user@customers.test"])

    def test_idn_domain_held_as_a_label(self):
        # The config names the domain as a U-label; recipients arrive in
        # A-label form, because this sendmail build has no SMTPUTF8.
        result = self.env.send(SENDER, ["user@XN--BCHER-KVA.test"])

        self.assert_held(result, ["user@XN--BCHER-KVA.test"],
                         "xn--bcher-kva.test")

    def test_hold_logged_once(self):
        result = self.env.send(SENDER, ["user@example.test"])
        queue_id = self.assert_held(result, ["user@example.test"],
                                    "example.test")

        hold_lines = self.env.syslog.find_all(
            rf"^{queue_id}: action=hold ", ident=odtest.MILTER_IDENT)
        self.assertEqual(len(hold_lines), 1,
                         "\n".join(str(line) for line in hold_lines))

    def test_queue_run_skips_held_message(self):
        result = self.env.send(SENDER, ["user@example.test"])
        queue_id = self.assert_held(result, ["user@example.test"],
                                    "example.test")

        # A queue run skips locked messages, which would hide the reason
        # for the skip. -v makes the run wait until it has finished.
        self.env.sendmail.wait_until_unlocked(queue_id, quarantined=True)
        self.env.sendmail.run("-q", "-v")

        self.assertIn(f"hf{queue_id}", self.env.sendmail.held_files())
        self.assert_not_delivered(queue_id)

    def test_normal_traffic_logs_no_errors(self):
        since = self.env.syslog.mark()
        on_demand = self.env.send(SENDER, ["user@example.test"])
        self.assert_held(on_demand, ["user@example.test"], "example.test")
        other = self.env.send(SENDER, ["user@other.test"])
        self.assert_delivered(other, ["user@other.test"])

        problems = [line for line in self.env.syslog.lines(
                        since, ident=odtest.MILTER_IDENT)
                    if line.severity <= odtest.LOG_WARNING]
        self.assertEqual(problems, [],
                         "\n".join(str(line) for line in problems))

    def test_held_message_keeps_content(self):
        body = "Held message body, line one.\nLine two.\n"
        data = odtest.make_message(SENDER, ["user@example.test"],
                                   subject="content check", body=body)
        result = self.env.send(SENDER, ["user@example.test"], data)
        queue_id = self.assert_held(result, ["user@example.test"],
                                    "example.test")

        control = self.env.sendmail.read_queue_file(f"hf{queue_id}")
        self.assertIn("qondemand [example.test]\n", control)
        self.assertIn("Subject: content check", control)
        data_file = self.env.sendmail.read_queue_file(f"df{queue_id}")
        self.assertIn("Held message body, line one.", data_file)

    def held_size(self, data):
        """Send data to user@example.test, check the hold, return its size."""
        result = self.env.send(SENDER, ["user@example.test"], data)
        queue_id = self.assert_held(result, ["user@example.test"],
                                    "example.test")
        line, _ = self.env.syslog.wait_for(
            rf"^{queue_id}: action=hold ", ident=odtest.MILTER_IDENT)
        return int(odtest.HOLD_LINE.match(line.message).group("size"))

    def test_hold_size_of_large_message(self):
        # Many headers, one of them folded, and a body that sendmail passes
        # in several chunks of at most 64 KiB. The filter does not reply
        # to headers or body chunks, so this also checks that sendmail and
        # the filter agree on that.
        headers = "".join(f"X-Filler-{n}: value {n}\r\n" for n in range(100))
        body = ("A line of body text to fill the message.\r\n") * 6000
        data = (f"From: <{SENDER}>\r\nTo: <user@example.test>\r\n"
                "Subject: size check\r\n"
                "X-Folded: first part\r\n\tsecond part\r\n"
                f"{headers}\r\n{body}").encode()

        # sendmail passes the filter the message as the client sent it,
        # without the headers that sendmail adds.
        self.assertEqual(self.held_size(data), len(data))

    def test_hold_size_counts_header_spacing(self):
        # Two messages that differ only in the spaces after a colon.
        for spacing in ("", "   "):
            with self.subTest(spacing=spacing):
                data = (f"From: <{SENDER}>\r\nTo: <user@example.test>\r\n"
                        f"X-Spacing:{spacing}x\r\n\r\nBody.\r\n").encode()
                self.assertEqual(self.held_size(data), len(data))

if __name__ == "__main__":
    odtest.main()
