#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end fault test of the ledger: memcached killed and restarted.

memcached is killed with SIGKILL while clients hold mail and a release
runs, then started again empty. Every message must end in exactly one
place (odtest.assert_accounted): delivered to the sink once, still held,
or refused with a reply code its client saw. Afterwards the daemon must
have rebuilt the ledger from its queue, so that the entry lists exactly
the held messages again.
"""

import os
import shutil
import signal
import sys
import tempfile
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT, SENDER  # noqa: E402
from test_ledger import ledger_lines  # noqa: E402

HOST_ID = "mx1.ondemand.test"


class MemcachedKillTest(odtest.FeatureTestCase):

    def prepare(self):
        self.memcached_dir = tempfile.mkdtemp(prefix="ondemand-memcached-")
        self.addCleanup(shutil.rmtree, self.memcached_dir, True)
        self.port = odtest.free_port()
        self.memcached = odtest.Memcached(self.memcached_dir,
                                          port=self.port).start()
        self.addCleanup(lambda: self.memcached.stop())
        self.milter_config = {
            "Memcached": f"127.0.0.1:{self.port}",
            "HostId": HOST_ID,
            "LedgerPollInterval": "200ms",
            "MemcachedRetry": "1s",
        }

    def setUp(self):
        super().setUp()
        self.env.syslog.wait_for(r"^ledger: re-synced from the queue",
                                 ident=MILTER_IDENT)

    def send_in_parallel(self, messages, threads=4):
        """Send messages from several client threads; retry 4xx once."""
        chunks = [messages[i::threads] for i in range(threads)]
        errors = []

        def run(chunk):
            try:
                for message in chunk:
                    message.send(self.env.sendmail.port)
                    if message.refusal() is not None and \
                            message.refusal().code < 500:
                        message.send(self.env.sendmail.port)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
        workers = [threading.Thread(target=run, args=(chunk,))
                   for chunk in chunks]
        for worker in workers:
            worker.start()
        return workers, errors

    def test_memcached_killed_during_holds_and_release(self):
        first = [odtest.TrackedMessage.create(SENDER,
                                              [f"a{i}@example.test"])
                 for i in range(12)]
        for message in first:
            message.send(self.env.sendmail.port)
        self.assertTrue(all(message.accepted for message in first))

        # Holds go on while memcached dies under them.
        second = [odtest.TrackedMessage.create(SENDER,
                                               [f"b{i}@example.test"])
                  for i in range(16)]
        since = self.env.syslog.mark()
        workers, errors = self.send_in_parallel(second)
        self.memcached.process.send_signal(signal.SIGKILL)
        self.memcached.process.popen.wait(timeout=10)
        for worker in workers:
            worker.join()
        self.assertEqual(errors, [])
        self.assertTrue(all(message.accepted for message in second),
                        [str(m.last_attempt) for m in second
                         if not m.accepted])

        # The release falls back to the queue and delivers everything.
        reply = self.etrn("example.test")
        self.assertIn(reply.code, (250, 253), str(reply))
        self.env.syslog.wait_for(r"^ledger: memcached server .* failed",
                                 since=since, ident=MILTER_IDENT)
        self.env.syslog.wait_for(
            r"^action=release domain=example\.test .*selection=reason",
            since=since, ident=MILTER_IDENT)
        self.env.sink.wait_for_messages(28)
        self.assert_accounted(first + second, delivered=28)

        # memcached comes back empty; new holds are recorded again once
        # the daemon has re-synced.
        since = self.env.syslog.mark()
        self.memcached = odtest.Memcached(self.memcached_dir,
                                          port=self.port).start()
        self.env.syslog.wait_for(r"^ledger: memcached server .* answers "
                                 r"again", since=since, ident=MILTER_IDENT)
        self.env.syslog.wait_for(r"^ledger: re-synced from the queue",
                                 since=since, ident=MILTER_IDENT)
        third = [self.hold(f"c{i}@example.test", "example.test")
                 for i in range(3)]
        held = sorted((HOST_ID, message.last_attempt.queue_id)
                      for message in third)
        self.assertEqual(ledger_lines(self.port, "example.test"), held)
        since = self.env.syslog.mark()
        reply = self.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        self.env.syslog.wait_for(
            r"^action=release domain=example\.test .*messages=3 .*"
            r"selection=ledger", since=since, ident=MILTER_IDENT)
        self.wait_for_release_done("example.test", since)
        self.env.sink.wait_for_messages(31)
        self.assert_accounted(first + second + third, delivered=31)

    def test_memcached_killed_with_holds_waiting(self):
        held = [self.hold(f"w{i}@example.test", "example.test")
                for i in range(5)]
        self.memcached.process.send_signal(signal.SIGKILL)
        self.memcached.process.popen.wait(timeout=10)
        since = self.env.syslog.mark()
        self.memcached = odtest.Memcached(self.memcached_dir,
                                          port=self.port).start()

        # A restarted memcached has lost this host's mark: the daemon
        # re-syncs, and the waiting holds are in the ledger again.
        expected = sorted((HOST_ID, message.last_attempt.queue_id)
                          for message in held)
        odtest.wait_until(
            lambda: ledger_lines(self.port, "example.test") == expected,
            description="the ledger to list the 5 waiting holds again")
        self.env.syslog.wait_for(r"^ledger: re-synced from the queue: 5 ",
                                 since=since, ident=MILTER_IDENT)
        self.assert_accounted(held, held=5)


if __name__ == "__main__":
    odtest.main()
