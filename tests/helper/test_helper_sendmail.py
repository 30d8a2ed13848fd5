#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Tests of the release helper against a real sendmail.

Each test runs a private sendmail from tests/e2e/odtest.py (its own cf,
queue and syslog capture, in a private mount namespace) without the
filter. Messages are queued with delivery mode "queueonly" and then held
with `sendmail -Q'ondemand [DOMAIN]' -qI<ID>`, as the filter would hold
them. The customer's server is a second SMTP sink that the tests start and
stop; every other domain, including the senders', goes to odtest's sink.
The cf sets MaxQueueRunSize=1 so that a release run which did not override
it would deliver only one message. tests/helper/helper_run makes the
od_helper_* calls.

Needs root, sendmail-bin, sendmail-cf, m4 and unshare; exits 77 without.
"""

import os
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(SOURCE_DIR, "..", "e2e"))

import odtest  # noqa: E402

DRIVER = os.path.join(odtest.default_builddir(), "tests", "helper",
                      "helper_run")
SENDER = "alice@sender.test"
HELPER_IDENT = "ondemand-milter"


class HelperTest(odtest.EnvironmentTestCase):
    """A test with a held-message factory and the driver."""

    def setUp(self):
        if not os.access(DRIVER, os.X_OK):
            self.skipTest(f"{DRIVER} is not built; run make check")
        # The customer's server, reached through the esmtp mailer.
        self.customer = odtest.SmtpSink()
        self.environment_options = {
            "milter": False,
            "delivery_mode": "queueonly",
            "extra_mc": (
                "define(`ESMTP_MAILER_ARGS', "
                f"`TCP $h {self.customer.port}')dnl\n"
                "define(`confMAX_QUEUE_RUN_SIZE', `1')dnl\n"
                "define(`confTO_CONNECT', `5s')dnl\n"
                "define(`confTO_INITIAL', `3s')dnl\n"),
        }
        super().setUp()
        self.addCleanup(self.customer.stop)
        self.route_to_customer("example.test", "down.test")

    def route_to_customer(self, *domains):
        """Route domains to the customer's sink and the rest to odtest's."""
        mailertable = os.path.join(self.env.workdir, "mailertable")
        lines = [f"{domain}\tesmtp:[127.0.0.1]\n" for domain in domains]
        odtest.write_file(mailertable, "".join(lines) + ".\trelay:[127.0.0.1]\n")
        odtest.run_checked([odtest.find_tool("makemap"), "hash", mailertable],
                           stdin_path=mailertable)

    def hold(self, recipient, domain=None, sender=SENDER):
        """Queue a message to recipient and hold it; return its queue ID."""
        result = self.env.send(sender, [recipient])
        queue_id = result.queue_id
        self.assertIsNotNone(queue_id, str(result))
        domain = domain or recipient.split("@", 1)[1]
        self.env.sendmail.run(f"-Qondemand [{domain}]", f"-qI{queue_id}")
        self.assertIn(f"hf{queue_id}", self.env.sendmail.held_files())
        return queue_id

    def drive(self, *args):
        argv = [DRIVER, self.env.sendmail.binary, self.env.sendmail.cf_path,
                *args]
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=odtest.WAIT_TIMEOUT + 60, check=False)
        self.assertEqual(result.returncode, 0,
                         f"{argv}: {result.stdout}{result.stderr}")
        return result.stdout

    def status(self, output):
        lines = [line for line in output.splitlines()
                 if line.startswith("status ")]
        self.assertEqual(len(lines), 1, output)
        return int(lines[0].split()[1])

    def held_ids(self):
        return sorted(name[2:] for name in self.env.sendmail.held_files())

    def queued_ids(self):
        return sorted(name[2:] for name in self.env.sendmail.queued_files())


class ListTest(HelperTest):
    def test_list_reports_held_items(self):
        first = self.hold("bob@example.test")
        second = self.hold("carol@down.test")
        # A reason longer than the 60 characters that the listing shows.
        long_domain = ".".join(["a" * 63, "b" * 63, "c" * 40, "test"])
        third = self.hold(f"dave@{long_domain}")
        normal = self.env.send(SENDER, ["erin@example.test"]).queue_id
        before = time.time()

        output = self.drive("list")

        self.assertEqual(self.status(output), 0, output)
        items = {}
        for line in output.splitlines():
            if line.startswith("item "):
                fields = line.split(" ", 4)
                items[fields[1]] = (int(fields[2]), int(fields[3]), fields[4])
        self.assertEqual(sorted(items), sorted([first, second, third]),
                         output)
        self.assertNotIn(normal, items)
        size, queued, rest = items[first]
        self.assertGreater(size, 0)
        # Minute precision: the queue time is at most a minute back.
        self.assertLessEqual(queued, before)
        self.assertGreater(queued, before - 120)
        self.assertEqual(rest, f"<{SENDER}>|ondemand [example.test]")
        self.assertEqual(items[second][2],
                         f"<{SENDER}>|ondemand [down.test]")
        # The helper read the whole reason from the queue file.
        self.assertEqual(items[third][2],
                         f"<{SENDER}>|ondemand [{long_domain}]")
        self.env.syslog.wait_for(r"^release helper: LIST run finished: "
                                 r"tag=1 pid=\d+ items=3 ", ident=HELPER_IDENT)

    def test_list_of_empty_queue(self):
        output = self.drive("list")
        self.assertEqual(output.splitlines()[1:], ["status 0"])


class DeliverTest(HelperTest):
    def test_deliver_domain_releases_all_of_it(self):
        self.customer.start()
        ids = [self.hold(f"user{n}@example.test") for n in range(3)]
        other = self.hold("frank@down.test")

        output = self.drive("deliver-domain", "example.test")

        # -v makes sendmail wait, so every message is there on return.
        self.assertEqual(self.status(output), 0, output)
        delivered = sorted(message.queue_id
                           for message in self.customer.messages)
        self.assertEqual(delivered, sorted(ids))
        self.assertEqual(self.held_ids(), [other])
        self.env.syslog.wait_for(r"^release helper: DELIVERTAG run started: "
                                 r"tag=1 pid=\d+ domain=example.test$",
                                 ident=HELPER_IDENT)

    def test_deliver_domain_needs_the_brackets(self):
        self.route_to_customer("example.test", "example.test.au")
        self.customer.start()
        au = self.hold("gina@example.test.au")

        output = self.drive("deliver-domain", "example.test")

        self.assertEqual(self.status(output), 0, output)
        self.assertEqual(self.customer.messages, [])
        self.assertEqual(self.held_ids(), [au])

    def test_deliver_by_id_keeps_undeliverable_held(self):
        ids = [self.hold(f"user{n}@example.test") for n in range(2)]
        untouched = self.hold("henry@example.test")

        # The customer's server is down: the messages stay held.
        output = self.drive("deliver", *ids)
        self.assertEqual(self.status(output), 0, output)
        self.assertEqual(self.held_ids(), sorted(ids + [untouched]))
        self.assertEqual(self.queued_ids(), [])

        # Up again: the cached "connection refused" must not stop the run.
        self.customer.start()
        output = self.drive("deliver", *ids)
        self.assertEqual(self.status(output), 0, output)
        self.assertEqual(sorted(m.queue_id for m in self.customer.messages),
                         sorted(ids))
        self.assertEqual(self.held_ids(), [untouched])
        line, _ = self.env.syslog.wait_for(
            r"^release helper: DELIVER tag=1 pid=\d+ queue IDs 1-2 of 2: ",
            ident=HELPER_IDENT)
        self.assertEqual(line.message.split(": ", 2)[2].split(), ids)

    def test_parallel_calls(self):
        self.customer.start()
        ids = [self.hold(f"user{n}@example.test") for n in range(12)]

        output = self.drive("parallel", "12", "deliver", *ids)

        self.assertEqual(output.splitlines()[1:], ["status 0"] * 12)
        self.assertEqual(sorted({m.queue_id for m in self.customer.messages}),
                         sorted(ids))
        self.assertEqual(self.held_ids(), [])


class UnholdTest(HelperTest):
    def test_unhold_moves_to_normal_queue(self):
        queue_id = self.hold("ivan@down.test")
        kept = self.hold("judy@down.test")

        output = self.drive("unhold", queue_id)

        self.assertEqual(self.status(output), 0, output)
        self.assertEqual(self.held_ids(), [kept])
        self.assertEqual(self.queued_ids(), [queue_id])
        self.assertEqual(self.customer.messages, [])


class ExpireTest(HelperTest):
    def test_expire_bounces_undeliverable_and_delivers_the_rest(self):
        down = self.hold("kim@down.test")
        up = self.hold("lea@example.test")
        # An age of 1 s expires messages older than a second.
        time.sleep(1.5)

        # The customer's server is down: the message goes back as a DSN.
        output = self.drive("expire", "1", down)
        self.assertEqual(self.status(output), 0, output)
        dsn = self.env.sink.wait_for_recipient(SENDER)
        self.assertEqual(dsn.sender, "")
        self.assertIn(b"multipart/report", dsn.data)
        self.assertIn(b"kim@down.test", dsn.data)
        self.assertEqual(self.held_ids(), [up])
        self.assertEqual(self.queued_ids(), [])

        # It is up: the last attempt delivers the message.
        self.customer.start()
        output = self.drive("expire", "1", up)
        self.assertEqual(self.status(output), 0, output)
        self.assertEqual([m.queue_id for m in self.customer.messages], [up])
        self.assertEqual(self.held_ids(), [])
        self.assertEqual(self.queued_ids(), [])
        self.assertEqual(len(self.env.sink.messages_to(SENDER)), 1)

    def test_expire_queues_dsn_unheld(self):
        queue_id = self.hold("mia@down.test")
        time.sleep(1.5)
        # Neither the customer's server nor the sender's accepts mail.
        self.env.sink.fail_at("connect", "421 4.3.2 Not now")

        output = self.drive("expire", "1", queue_id)

        self.assertEqual(self.status(output), 0, output)
        # The DSN waits in the normal queue, not held under down.test.
        self.assert_only_dsn_queued()

    def test_slow_dsn_failure_keeps_dsn_queued(self):
        queue_id = self.hold("nina@down.test")
        time.sleep(4.5)
        # The sender's server takes 1.5 s to refuse the DSN. The run's
        # return timeout is the 4 s age, so the DSN, younger than that,
        # stays queued for a retry instead of going to the postmaster.
        self.env.sink.fail_at("data", "451 4.3.0 Try later")
        self.env.sink.close_gate()
        opener = threading.Timer(1.5, self.env.sink.open_gate)
        opener.start()
        self.addCleanup(opener.cancel)

        output = self.drive("expire", "4", queue_id)

        self.assertEqual(self.status(output), 0, output)
        self.assert_only_dsn_queued()
        self.assertEqual(self.env.sink.messages, [])

    def assert_only_dsn_queued(self):
        """Assert that nothing is held and the queue contains one DSN to SENDER."""
        self.assertEqual(self.held_ids(), [])
        queued = self.env.sendmail.queue()
        self.assertEqual(len(queued), 1, queued)
        self.assertEqual(queued[0].sender, "MAILER-DAEMON")
        self.assertEqual(queued[0].recipients, [f"<{SENDER}>"])
        self.assertIsNone(queued[0].quarantine_reason)


class DeathTest(HelperTest):
    def test_killed_helper_fails_pending_call(self):
        # A server that accepts connections and never sends a greeting
        # keeps the run going until confTO_INITIAL (3 s).
        silent = socket.socket()
        silent.bind(("127.0.0.1", self.customer.port))
        silent.listen(8)
        self.addCleanup(silent.close)
        queue_id = self.hold("ned@example.test")

        output = self.drive("kill-helper", "1000", "deliver", queue_id)

        fields = output.splitlines()[1].split()
        self.assertEqual(fields[1], "-1", output)
        self.assertLess(float(fields[3]), 5, output)
        self.assertEqual(fields[5], "0", output)
        self.assertIn("after status -1", output)


if __name__ == "__main__":
    odtest.main()
