#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end test of the shared hold ledger under concurrent holds and releases.

Two MX hosts share one memcached server (see test_ledger_hosts.py). Parallel
SMTP sessions on both hosts hold mail for one domain while ETRN and
ondemandctl release run again and again on both. Afterwards each message
must have exactly one outcome, and the domain's ledger entry must list
exactly the messages that the two queues still hold.
"""

import collections
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import SENDER  # noqa: E402
from test_ledger_hosts import FleetTestCase  # noqa: E402

DOMAIN = "example.test"
SENDERS_PER_HOST = 4
MESSAGES_PER_SENDER = 100
# Pause between two release requests while the senders run.
RELEASE_PAUSE = 0.1
# Seconds for the queues and the ledger to settle after the last request.
SETTLE_SECONDS = 30


class ConcurrentHoldReleaseTest(FleetTestCase):
    """Holds and releases of one domain at the same time, on two hosts."""

    def send_all(self, host, sender_number, messages, errors):
        try:
            for number in range(MESSAGES_PER_SENDER):
                message = odtest.TrackedMessage.create(
                    SENDER, [f"s{sender_number}-m{number}@{DOMAIN}"])
                messages.append(message)
                message.send(host.sendmail.port)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(f"sender {sender_number} on {host.name}: {error!r}")

    def release_repeatedly(self, stop, requests, errors):
        mx1, mx2 = self.hosts
        actions = [("etrn", mx1), ("ctl", mx2), ("etrn", mx2), ("ctl", mx1)]
        number = 0
        try:
            while not stop.is_set():
                kind, host = actions[number % len(actions)]
                number += 1
                if kind == "etrn":
                    reply = host.etrn(DOMAIN)
                    requests[f"ETRN {reply.code}"] += 1
                    if reply.code not in (250, 251, 253):
                        errors.append(f"ETRN to {host.name}: {reply}")
                else:
                    result = host.ctl("release", DOMAIN)
                    requests[f"ondemandctl exit {result.returncode}"] += 1
                    if result.returncode != 0:
                        errors.append(f"ondemandctl release on {host.name}:"
                                      f" {result.stdout}{result.stderr}")
                stop.wait(RELEASE_PAUSE)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(f"release loop: {error!r}")

    def held_by_host(self):
        """Map each host to the queue IDs that mailq -qQ lists there."""
        return {host: host.held_queue_ids() for host in self.hosts}

    def ledger_mismatch(self):
        """Return the lines that the entry lacks and the ones it has in excess, as two sorted lists."""
        entry = set(self.fleet_entry(DOMAIN) or [])
        held = set(self.held_pairs())
        return sorted(held - entry), sorted(entry - held)

    def settled(self):
        for host in self.hosts:
            if host.sendmail.queued_files():
                return False
            if any(entry.locked
                   for entry in host.sendmail.queue(quarantined=True)):
                return False
        return self.ledger_mismatch() == ([], [])

    def classify(self, messages):
        """Sort messages into delivered, held and refused; return (Counter, problems)."""
        copies = collections.Counter(
            odtest.message_id_of(message.data)
            for message in self.env.sink.messages)
        held = collections.Counter()
        for host in self.hosts:
            names = [f"hf{queue_id}" for queue_id in host.held_queue_ids()]
            for message_id, queue_ids in odtest.queue_message_ids(
                    host.sendmail, names).items():
                held[message_id] += len(queue_ids)
        outcomes = collections.Counter()
        problems = []
        for message in messages:
            places = (copies[message.message_id], held[message.message_id])
            refusal = message.refusal()
            if refusal is not None and places == (0, 0):
                outcomes["refused"] += 1
            elif refusal is None and message.accepted and places == (1, 0):
                outcomes["delivered"] += 1
            elif refusal is None and message.accepted and places == (0, 1):
                outcomes["held"] += 1
            else:
                problems.append(
                    f"{message.message_id}: {places[0]} copies at the sink, "
                    f"held {places[1]} times, last attempt "
                    f"{message.last_attempt}")
        return outcomes, problems

    def test_holds_and_releases_race(self):
        messages = []
        errors = []
        requests = collections.Counter()
        since = self.env.syslog.mark()
        started = time.monotonic()
        senders = []
        for index, host in enumerate(self.hosts):
            for number in range(SENDERS_PER_HOST):
                sender_number = index * SENDERS_PER_HOST + number
                senders.append(threading.Thread(
                    target=self.send_all,
                    args=(host, sender_number, messages, errors)))
        stop = threading.Event()
        releaser = threading.Thread(target=self.release_repeatedly,
                                    args=(stop, requests, errors))
        for thread in senders:
            thread.start()
        releaser.start()
        for thread in senders:
            thread.join()
        stop.set()
        releaser.join()
        sending_seconds = time.monotonic() - started

        self.assertEqual(errors, [])
        total = len(self.hosts) * SENDERS_PER_HOST * MESSAGES_PER_SENDER
        self.assertEqual(len(messages), total)
        try:
            odtest.wait_until(self.settled, SETTLE_SECONDS, interval=0.2,
                              description="the queues and the ledger to "
                              "settle")
        except odtest.WaitTimeout:
            lacking, stale = self.ledger_mismatch()
            self.fail(f"the ledger entry of {DOMAIN} lacks {lacking} and "
                      f"has stale lines {stale}")
        outcomes, problems = self.classify(messages)
        self.assertEqual(problems, [], str(outcomes))
        self.assertEqual(sum(outcomes.values()), total, str(outcomes))
        # Releases ran on both hosts, started by both kinds of request,
        # while holds went on. Most requests find a release of the domain
        # running and start nothing. A peer's request that arrives then is
        # dropped too, so peer releases are counted but not required.
        releases = collections.Counter()
        for host in self.hosts:
            for line in host.milter_lines(
                    rf"^action=release domain={DOMAIN} ", since):
                trigger = line.message.split(" trigger=")[1].split()[0]
                selection = line.message.split(" selection=")[1].split()[0]
                releases[(host.name, trigger, selection)] += 1
        summary = (f"{total} messages sent in {sending_seconds:.1f} s: "
                   f"{dict(outcomes)}; requests {dict(requests)}; releases "
                   f"{dict(releases)}")
        for host in self.hosts:
            self.assertTrue(any(key[0] == host.name for key in releases),
                            summary)
        for trigger in ("etrn", "operator"):
            self.assertTrue(any(key[1] == trigger for key in releases),
                            summary)
        print(f"\n{summary}", file=sys.stderr)
        self.assert_no_ledger_errors()

        # A last release delivers what is still held, from both hosts.
        # A release that is still ending makes sendmail reply 250 and
        # start nothing, so ask until one starts.
        held = self.held_by_host()

        def start_release():
            reply = self.hosts[0].etrn(DOMAIN)
            return reply if reply.code in (251, 253) else None
        odtest.wait_until(start_release, interval=0.2,
                          description=f"an ETRN that starts a release of "
                          f"{DOMAIN}")
        for host, queue_ids in held.items():
            host.wait_until_released(sorted(queue_ids), SETTLE_SECONDS)
        odtest.wait_until(lambda: self.fleet_entry(DOMAIN) == [],
                          description=f"the entry of {DOMAIN} to empty")
        outcomes, problems = self.classify(messages)
        self.assertEqual(problems, [], str(outcomes))
        self.assertEqual(outcomes["held"], 0, str(outcomes))
        self.assertEqual(outcomes["delivered"] + outcomes["refused"], total,
                         str(outcomes))


if __name__ == "__main__":
    odtest.main()
