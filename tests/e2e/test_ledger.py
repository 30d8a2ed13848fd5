#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of the shared hold ledger in memcached.

Each test starts its own memcached on 127.0.0.1 at a free port and stops it
by its PID. The ledger's content is read with plain memcached "get"
commands, so a test sees the same keys an operator would.
"""

import json
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT, SENDER, ledger_key  # noqa: E402
from test_etrn import ReleaseTestCase, etrn  # noqa: E402
from test_ledger_hosts import FleetTestCase  # noqa: E402


def ledger_lines(port, domain, prefix="ondemand"):
    """Returns the (host, queue ID) pairs of domain's entry, or None."""
    return odtest.ledger_pairs(odtest.read_ledger_entry(port, domain,
                                                        prefix))


class LedgerTestCase(ReleaseTestCase):
    host_id = "mx1.ondemand.test"

    def setUp(self):
        self.memcached = None
        original = self.milter_config
        self.milter_config = dict(original)
        self.memcached_port = odtest.free_port()
        self.milter_config.update({
            "Memcached": f"127.0.0.1:{self.memcached_port}",
            "HostId": self.host_id,
            "LedgerPollInterval": "200ms",
            "MemcachedRetry": "1s",
        })
        # memcached first: the daemon syncs the ledger at start.
        self.memcached_dir = tempfile_dir()
        self.addCleanup(shutil.rmtree, self.memcached_dir, True)
        self.server = odtest.Memcached(self.memcached_dir,
                                       port=self.memcached_port).start()
        self.addCleanup(lambda: self.server.stop())
        super().setUp()
        self.wait_resynced()

    def wait_resynced(self, since=0):
        self.env.syslog.wait_for(r"^ledger: re-synced from the queue",
                                 since=since, ident=MILTER_IDENT)


def tempfile_dir():
    """A directory for memcached's output, removed when the test ends."""
    return tempfile.mkdtemp(prefix="ondemand-memcached-")


class LedgerReleaseTest(LedgerTestCase):

    def test_holds_recorded_and_released_through_ledger(self):
        first = self.hold("one@example.test", "example.test")
        second = self.hold("two@example.test", "example.test")
        other = self.hold("three@other-od.test", "other-od.test")

        self.assertEqual(
            ledger_lines(self.memcached_port, "example.test"),
            sorted([(self.host_id, first), (self.host_id, second)]))
        self.assertEqual(ledger_lines(self.memcached_port, "other-od.test"),
                         [(self.host_id, other)])

        since = self.env.syslog.mark()
        code, text = etrn(self.env.sendmail.port, "example.test")
        self.assertEqual(code, 253, text)
        self.assertIn("2 pending messages", text)
        self.wait_until_released([first, second])
        self.env.syslog.wait_for(
            r"^action=release domain=example\.test trigger=etrn .*"
            r"messages=2 .*selection=ledger", since=since,
            ident=MILTER_IDENT)
        odtest.wait_until(
            lambda: ledger_lines(self.memcached_port, "example.test") == [],
            description="the ledger entry of example.test to empty")
        self.assertEqual(ledger_lines(self.memcached_port, "other-od.test"),
                         [(self.host_id, other)])

    def test_flush_falls_back_to_queue_then_rebuilds(self):
        first = self.hold("one@example.test", "example.test")
        second = self.hold("two@example.test", "example.test")
        self.assertIn("OK", odtest.memcached_command(self.memcached_port,
                                              "flush_all"))
        since = self.env.syslog.mark()

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertIn(code, (250, 253), text)
        self.wait_until_released([first, second])
        self.env.syslog.wait_for(
            r"^action=release domain=example\.test trigger=etrn .*"
            r"selection=reason", since=since, ident=MILTER_IDENT)
        self.wait_resynced(since)
        third = self.hold("three@example.test", "example.test")
        self.assertEqual(ledger_lines(self.memcached_port, "example.test"),
                         [(self.host_id, third)])

    def test_memcached_down_holds_continue(self):
        first = self.hold("one@example.test", "example.test")
        # The ledger's thread may notice the stop before the next hold does.
        since = self.env.syslog.mark()
        self.server.stop()
        second = self.hold("two@example.test", "example.test")
        self.env.syslog.wait_for(r"^ledger: memcached server .* failed",
                                 since=since, ident=MILTER_IDENT)

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertIn(code, (250, 253), text)
        self.wait_until_released([first, second])
        self.env.syslog.wait_for(r"selection=reason", since=since,
                                 ident=MILTER_IDENT)

        # memcached comes back empty: the daemon re-syncs from the queue.
        third = self.hold("three@example.test", "example.test")
        since = self.env.syslog.mark()
        self.server = odtest.Memcached(self.memcached_dir,
                                       port=self.memcached_port).start()
        self.env.syslog.wait_for(r"^ledger: memcached server .* answers "
                                 r"again", since=since, ident=MILTER_IDENT)
        self.wait_resynced(since)
        self.assertEqual(ledger_lines(self.memcached_port, "example.test"),
                         [(self.host_id, third)])


class LedgerQuotaTest(LedgerTestCase):
    milter_config = {"MaxHeldMessages": "example.test 2"}

    def test_quota_reached_then_release_frees(self):
        first = self.hold("one@example.test", "example.test")
        second = self.hold("two@example.test", "example.test")
        since = self.env.syslog.mark()
        result = self.env.send(SENDER, ["three@example.test"])
        reply = result.rcpt_reply("three@example.test")
        self.assertEqual(reply.code, 452, str(result))
        self.assertIn("4.2.2", reply.text)
        self.env.syslog.wait_for(
            r"action=over-quota domain=example\.test stage=rcpt "
            r"held_messages=2 .*scope=fleet", since=since,
            ident=MILTER_IDENT)

        code, text = etrn(self.env.sendmail.port, "example.test")
        self.assertEqual(code, 253, text)
        self.wait_until_released([first, second])
        odtest.wait_until(
            lambda: ledger_lines(self.memcached_port, "example.test") == [],
            description="the ledger entry of example.test to empty")
        self.hold("three@example.test", "example.test")


def rows_of(rows, row_type):
    """Return the rows of ondemandctl -j status whose type is row_type."""
    return [row for row in rows if row["type"] == row_type]


class ServerFailureTest(FleetTestCase):
    """One host with two memcached servers, one of which stops and comes back."""

    host_count = 1
    memcached_count = 2
    domains = [f"d{number:02}.test" for number in range(1, 17)]

    def place_keys(self):
        """Return (live, dead, domains on live, domains on dead).

        Each server carries its own mark of the host, so either server may
        play the live one. live is the one with more of the domains' keys.
        """
        for server in self.memcached:
            odtest.wait_until(
                lambda port=server.port: odtest.mark_keys(
                    port, "mx1.ondemand.test"),
                description=f"mx1's mark on {server.server_spec}")
        placed = {server.port: [] for server in self.memcached}
        for domain in self.domains:
            servers = self.servers_with_key(ledger_key(domain))
            self.assertEqual(len(servers), 1, f"servers with {domain}")
            placed[servers[0].port].append(domain)
        live, dead = sorted(self.memcached,
                            key=lambda server: -len(placed[server.port]))
        on_live, on_dead = placed[live.port], placed[dead.port]
        # With uniform hashing of 16 domains this fails by chance about
        # once in 2200 runs.
        self.assertGreaterEqual(len(on_live), 2, f"on {live.server_spec}")
        self.assertGreaterEqual(len(on_dead), 1, f"on {dead.server_spec}")
        return live, dead, on_live, on_dead

    def release(self, domain, queue_ids, selection, since):
        reply = self.hosts[0].etrn(domain)
        self.assertEqual(reply.code, 253, str(reply))
        self.assertIn(f"{len(queue_ids)} pending messages", reply.text)
        self.hosts[0].wait_for_milter(
            rf"^action=release domain={re.escape(domain)} trigger=etrn .*"
            rf"selection={selection}", since)
        self.hosts[0].wait_until_released(queue_ids)

    def test_server_down_then_back(self):
        mx1 = self.hosts[0]
        held = {domain: [mx1.hold(f"one@{domain}", domain)]
                for domain in self.domains}
        live, dead, on_live, on_dead = self.place_keys()
        live_domain, evicted_domain = on_live[:2]
        dead_domain = on_dead[0]
        since = self.env.syslog.mark()

        dead.stop()
        held[dead_domain].append(mx1.hold(f"two@{dead_domain}", dead_domain))
        held[live_domain].append(mx1.hold(f"two@{live_domain}", live_domain))

        mx1.wait_for_milter(rf"^ledger: memcached server "
                            rf"{re.escape(dead.server_spec)} failed", since)
        # The re-sync after the failure rewrites the entries on the live
        # server, so the eviction below must come after it.
        mx1.wait_for_milter(r"^ledger: re-synced from the queue: .*some "
                            r"entries stay untrusted", since)
        self.assertEqual(ledger_lines(live.port, live_domain),
                         sorted((mx1.host_id, queue_id)
                                for queue_id in held[live_domain]))
        status = mx1.ctl("status")
        self.assertRegex(status.stdout, r"(?m)^ledger: degraded, host ID "
                         r"mx1\.ondemand\.test, 1 of 2 servers up")
        self.assertIn(f"server {dead.server_spec}: down for", status.stdout)
        rows = json.loads(mx1.ctl("-j", "status").stdout)
        self.assertIn({"type": "ledger", "state": "degraded",
                       "host_id": mx1.host_id,
                       "last_resync": rows_of(rows, "ledger")[0][
                           "last_resync"],
                       "servers_up": 1, "servers": 2},
                      rows_of(rows, "ledger"))
        down = [row for row in rows_of(rows, "server")
                if row["state"] == "down"]
        self.assertEqual([row["server"] for row in down], [dead.server_spec])
        self.assertGreater(down[0]["down_since"], 0)

        # The live server's entry is trusted; a key on the dead server and
        # a miss while a server is down are not.
        self.release(live_domain, held.pop(live_domain), "ledger", since)
        self.assertIn("DELETED", odtest.memcached_command(
            live.port, f"delete {ledger_key(evicted_domain)}"))
        self.release(evicted_domain, held.pop(evicted_domain), "reason",
                     since)
        self.release(dead_domain, held.pop(dead_domain), "reason", since)
        held[dead_domain] = [mx1.hold(f"three@{dead_domain}", dead_domain)]

        since = self.env.syslog.mark()
        self.memcached.append(odtest.Memcached(
            self.env.workdir, port=dead.port).start())
        self.env.memcached.append(self.memcached[-1])
        self.memcached.remove(dead)
        mx1.wait_for_milter(rf"^ledger: memcached server "
                            rf"{re.escape(dead.server_spec)} answers again",
                            since)
        mx1.wait_resynced(since)

        for domain, queue_ids in held.items():
            self.assertEqual(self.fleet_entry(domain),
                             sorted((mx1.host_id, queue_id)
                                    for queue_id in queue_ids), domain)
        self.assertEqual(self.held_pairs(),
                         sorted((mx1.host_id, queue_id)
                                for queue_ids in held.values()
                                for queue_id in queue_ids))
        status = mx1.ctl("-j", "status")
        ledger = rows_of(json.loads(status.stdout), "ledger")
        self.assertEqual([(row["state"], row["servers_up"])
                          for row in ledger], [("ok", 2)], status.stdout)
        self.release(dead_domain, held.pop(dead_domain), "ledger", since)
        counts = self.sink_counts()
        self.assertEqual(sorted(counts.values()), [1] * 6, counts)
        self.assert_no_ledger_errors(r"corrupt|cannot read|malformed")


if __name__ == "__main__":
    odtest.main()
