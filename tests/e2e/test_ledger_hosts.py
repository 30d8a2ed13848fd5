#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of the shared hold ledger with several MX hosts.

Each test runs two hosts, mx1 and mx2, inside one environment: two
sendmail daemons with their own queues and ports, each with its own
ondemand-milter (its own HostId and sockets), one syslog capture and one
SMTP sink. They share memcached servers that the test starts on 127.0.0.1
and stops by their PIDs. The ledger is read with plain memcached commands,
from the server that stores each key, as an operator would read it.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import SENDER, ledger_key, ledger_pairs  # noqa: E402

# A release asked on one host reaches the others within about one poll
# interval; the tests poll often so that they finish quickly.
POLL_INTERVAL = "200ms"
# A peer's share of a release should reach the sink within this many
# seconds of the ETRN, on a loaded 2-core machine too.
FLEET_RELEASE_SECONDS = 6


class FleetTestCase(odtest.FeatureTestCase):
    """MX hosts that share memcached servers: self.hosts, mx1 first.

    mx1 is the environment's own sendmail and milter. Subclasses set
    host_count, memcached_count, and server_order (the memcached servers
    each host lists, as indexes into self.memcached).
    """

    domains = ["example.test", "other-od.test"]
    host_count = 2
    memcached_count = 1
    server_order = None

    def prepare(self):
        self.memcached = [self.env.start_memcached()
                          for _ in range(self.memcached_count)]
        self.env.milter.config.update(self.ledger_config(0))

    def ledger_config(self, host_number):
        order = (self.server_order[host_number] if self.server_order
                 else range(self.memcached_count))
        return {
            "Memcached": ",".join(self.memcached[i].server_spec
                                  for i in order),
            "HostId": f"mx{host_number + 1}.ondemand.test",
            "LedgerPollInterval": POLL_INTERVAL,
            "MemcachedRetry": "1s",
        }

    def setUp(self):
        super().setUp()
        self.hosts = [odtest.MxHost.primary(self.env)]
        self.hosts[0].wait_resynced()
        for number in range(1, self.host_count):
            config = dict(self.milter_config)
            config.update(self.ledger_config(number))
            host = odtest.MxHost.create(self.env, f"mx{number + 1}",
                                        self.domains, config)
            self.addCleanup(host.stop)
            host.start()
            host.wait_resynced()
            self.hosts.append(host)

    def servers_with_key(self, key):
        """Return the memcached servers that store key."""
        return [server for server in self.memcached
                if odtest.memcached_get(server.port, key) is not None]

    def fleet_entry(self, domain):
        """Return the (host, queue ID) pairs of domain's entry, read from the one server that stores it.

        Returns None when no server stores it, and fails the test when
        more than one does.
        """
        servers = self.servers_with_key(ledger_key(domain))
        self.assertLessEqual(len(servers), 1,
                             f"the entry of {domain} is on "
                             f"{[server.server_spec for server in servers]}")
        if not servers:
            return None
        return ledger_pairs(odtest.read_ledger_entry(servers[0].port,
                                                     domain))

    def held_pairs(self):
        """Return the sorted (host ID, queue ID) pairs that mailq -qQ lists on every host."""
        return sorted((host.host_id, queue_id) for host in self.hosts
                      for queue_id in host.held_queue_ids())

    def assert_no_ledger_errors(self, pattern=r"corrupt|cannot read|"
                                r"malformed|incomplete"):
        """Assert that no host logged a ledger line that matches pattern.

        The default finds unreadable values and entries that a host stopped
        trusting.
        """
        for host in self.hosts:
            self.assertEqual(
                [str(line) for line in host.milter_lines(
                    rf"^ledger: .*({pattern})")],
                [], host.name)

    def sink_counts(self):
        """Map each queue ID that reached the sink to its number of copies."""
        counts = {}
        for message in self.env.sink.messages:
            counts[message.queue_id] = counts.get(message.queue_id, 0) + 1
        return counts


def status_rows(output):
    """Return the rows of ondemandctl status that follow the DOMAIN (LEDGER) header, as field lists."""
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("DOMAIN (LEDGER)"):
            return [row.split() for row in lines[number + 1:] if row.strip()]
    return []


class SharedServerTest(FleetTestCase):
    """Two hosts, one memcached server."""

    def test_status_shows_both_hosts(self):
        mx1, mx2 = self.hosts
        mx1.hold("one@example.test", "example.test")
        mx1.hold("two@example.test", "example.test")
        mx2.hold("three@example.test", "example.test")
        mx2.hold("four@other-od.test", "other-od.test")

        result = mx1.ctl("status")

        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout,
                         r"(?m)^ledger: ok, host ID mx1\.ondemand\.test, "
                         r"1 of 1 servers up, last re-sync ")
        self.assertIn(f"server {self.memcached[0].server_spec}: up",
                      result.stdout)
        rows = [row[:3] for row in status_rows(result.stdout)]
        self.assertEqual(sorted(rows), [
            ["example.test", "mx1.ondemand.test", "2"],
            ["example.test", "mx2.ondemand.test", "1"],
            ["other-od.test", "mx2.ondemand.test", "1"],
        ], result.stdout)
        self.assert_no_ledger_errors()

    def test_etrn_delivers_every_host_share(self):
        mx1, mx2 = self.hosts
        first = mx1.hold("one@example.test", "example.test")
        second = mx1.hold("two@example.test", "example.test")
        third = mx2.hold("three@example.test", "example.test")
        fourth = mx2.hold("four@example.test", "example.test")
        other = mx2.hold("five@other-od.test", "other-od.test")
        self.assertEqual(self.fleet_entry("example.test"), sorted([
            (mx1.host_id, first), (mx1.host_id, second),
            (mx2.host_id, third), (mx2.host_id, fourth)]))
        since = self.env.syslog.mark()
        started = time.monotonic()

        reply = mx1.etrn("example.test")

        self.assertEqual(reply.code, 253, str(reply))
        self.assertIn("4 pending messages", reply.text)
        mx1.wait_until_released([first, second], FLEET_RELEASE_SECONDS)
        mx2.wait_until_released([third, fourth],
                                FLEET_RELEASE_SECONDS
                                - (time.monotonic() - started))
        print(f"\nETRN to mx1 delivered both hosts' mail in "
              f"{time.monotonic() - started:.2f} s", file=sys.stderr)
        mx1.wait_for_milter(
            r"^action=release domain=example\.test trigger=etrn .*"
            r"messages=2 .*selection=ledger fleet_messages=4", since)
        mx2.wait_for_milter(
            r"^action=release domain=example\.test trigger=peer "
            r"client=host:mx1\.ondemand\.test messages=2 .*"
            r"selection=ledger", since)
        odtest.wait_until(lambda: self.fleet_entry("example.test") == [],
                          description="the entry of example.test to empty")

        counts = self.sink_counts()
        for queue_id in (first, second, third, fourth):
            self.assertEqual(counts.get(queue_id), 1,
                             f"copies of {queue_id} at the sink")
        self.assertNotIn(other, counts)
        self.assertEqual(self.held_pairs(), [(mx2.host_id, other)])
        self.assertEqual(self.fleet_entry("other-od.test"),
                         [(mx2.host_id, other)])
        self.assertEqual(mx1.milter_lines(r"trigger=peer", since), [])
        self.assert_no_ledger_errors()

    def test_peer_keeps_holds_newer_than_request(self):
        mx1, mx2 = self.hosts
        first = mx1.hold("one@example.test", "example.test")
        since = self.env.syslog.mark()
        reply = mx1.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        mx1.wait_until_released([first])
        # Hold times have a resolution of one second, so a hold in the
        # same second as the request would count as older than it.
        time.sleep(1.1)

        later = mx2.hold("two@example.test", "example.test")

        # Three poll intervals of mx2 pass without a release.
        time.sleep(0.6)
        self.assertEqual(mx2.milter_lines(r"^action=release ", since), [])
        self.assertEqual(self.held_pairs(), [(mx2.host_id, later)])
        self.assertEqual(self.fleet_entry("example.test"),
                         [(mx2.host_id, later)])

    def test_peer_request_during_own_release(self):
        mx1, mx2 = self.hosts
        first = mx2.hold("one@example.test", "example.test")
        # mx2's own release selects first and then waits at the sink.
        self.env.sink.close_gate()
        self.addCleanup(self.env.sink.open_gate)
        reply = mx2.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        odtest.wait_until(lambda: self.env.sink.waiting_at_gate >= 1,
                          description="mx2's release to reach the sink")
        second = mx2.hold("two@example.test", "example.test")
        since = self.env.syslog.mark()

        reply = mx1.etrn("example.test")

        self.assertEqual(reply.code, 253, str(reply))
        mx1.wait_for_milter(r"^action=release domain=example\.test "
                            r"trigger=etrn ", since)
        # mx2 polls the release key while its own release still runs.
        time.sleep(0.6)
        self.env.sink.open_gate()
        mx2.wait_until_released([first])
        # mx2's release selected its messages before mx1's request, so
        # mx2 starts its share of that request once the release ends.
        mx2.wait_until_released([second], FLEET_RELEASE_SECONDS)
        mx2.wait_for_milter(r"^action=release domain=example\.test "
                            r"trigger=peer ", since)
        self.assertEqual(self.held_pairs(), [])


class ServerOrderTest(FleetTestCase):
    """Two hosts that list the same two memcached servers in opposite orders."""

    memcached_count = 2
    server_order = ((0, 1), (1, 0))
    domains = ["example.test"] + [f"d{number:02}.test"
                                  for number in range(1, 17)]

    def prepare(self):
        super().prepare()
        # mx2 gets one Memcached line per server, mx1 one line with both.
        self.assertIn(",", self.env.milter.config["Memcached"])

    def ledger_config(self, host_number):
        config = super().ledger_config(host_number)
        if host_number == 1:
            config["Memcached"] = config["Memcached"].split(",")
        return config

    def release_each(self, host, domains):
        """Run ondemandctl release on host for each domain and wait for each release line."""
        since = self.env.syslog.mark()
        for domain in domains:
            result = host.ctl("release", domain)
            self.assertEqual(result.returncode, 0, result.stderr)
        for domain in domains:
            host.wait_for_milter(rf"^action=release domain={domain} "
                                 r"trigger=operator ", since)

    def test_hosts_agree_on_key_servers(self):
        mx1, mx2 = self.hosts
        spread = self.domains[1:]
        # ondemandctl release writes the domain's release key, even when
        # nothing is held. Had the hosts mapped a key to different
        # servers, both servers would store it.
        self.release_each(mx1, spread)
        self.release_each(mx2, spread)

        used = set()
        for domain in spread:
            key = ledger_key(domain, "r")
            servers = self.servers_with_key(key)
            self.assertEqual(len(servers), 1,
                             f"release key of {domain} on "
                             f"{[server.server_spec for server in servers]}")
            self.assertRegex(odtest.memcached_get(servers[0].port, key),
                             r"^\d+ mx2\.ondemand\.test$")
            used.add(servers[0].port)
        # With uniform hashing, 16 keys all land on one of two servers once
        # in 32768 runs.
        self.assertEqual(len(used), 2, "every release key is on one server")

        first = mx1.hold("one@example.test", "example.test")
        second = mx2.hold("two@example.test", "example.test")
        self.assertEqual(self.fleet_entry("example.test"), sorted([
            (mx1.host_id, first), (mx2.host_id, second)]))
        self.assertEqual(len(self.servers_with_key("ondemand:domains")), 1)
        # Each host has one mark per server, each on the server it names.
        for host in (mx1, mx2):
            for server in self.memcached:
                odtest.wait_until(
                    lambda port=server.port, host_id=host.host_id: len(
                        odtest.mark_keys(port, host_id)) == 1,
                    description=f"one mark of {host.host_id} on "
                                f"{server.server_spec}")

        reply = mx2.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        self.assertIn("2 pending messages", reply.text)
        mx1.wait_until_released([first], FLEET_RELEASE_SECONDS)
        mx2.wait_until_released([second], FLEET_RELEASE_SECONDS)
        odtest.wait_until(lambda: self.fleet_entry("example.test") == [],
                          description="the entry of example.test to empty")
        self.assert_no_ledger_errors()


class DuplicateHostIdTest(FleetTestCase):
    """Two hosts configured with one HostId would overwrite each other's lines."""

    def ledger_config(self, host_number):
        config = super().ledger_config(host_number)
        config["HostId"] = "mx.ondemand.test"
        return config

    def test_duplicate_host_id_logged(self):
        self.env.syslog.wait_for(
            r"^ledger: another daemon wrote the mark of host ID "
            r"mx\.ondemand\.test; give each MX host its own HostId",
            ident=odtest.MILTER_IDENT)


class FleetQuotaTest(FleetTestCase):
    """MaxHeldMessages counts the held messages of every host."""

    milter_config = {"MaxHeldMessages": "example.test 3"}

    def assert_over_quota(self, host, recipient, since):
        result = host.send(SENDER, [recipient])
        reply = result.rcpt_reply(recipient)
        self.assertEqual(reply.code, 452, str(result))
        self.assertIn("4.2.2", reply.text)
        host.wait_for_milter(
            r"action=over-quota domain=example\.test stage=rcpt "
            r"held_messages=3 .*max_messages=3 .*scope=fleet", since)

    def test_fleet_limit_on_either_host(self):
        mx1, mx2 = self.hosts
        first = mx1.hold("one@example.test", "example.test")
        second = mx1.hold("two@example.test", "example.test")
        third = mx2.hold("three@example.test", "example.test")
        since = self.env.syslog.mark()

        self.assert_over_quota(mx1, "four@example.test", since)
        self.assert_over_quota(mx2, "five@example.test", since)
        other = mx2.hold("six@other-od.test", "other-od.test")

        reply = mx2.etrn("example.test")
        self.assertEqual(reply.code, 253, str(reply))
        mx1.wait_until_released([first, second])
        mx2.wait_until_released([third])
        odtest.wait_until(lambda: self.fleet_entry("example.test") == [],
                          description="the entry of example.test to empty")
        fourth = mx1.hold("four@example.test", "example.test")
        fifth = mx2.hold("five@example.test", "example.test")
        self.assertEqual(self.fleet_entry("example.test"), sorted([
            (mx1.host_id, fourth), (mx2.host_id, fifth)]))
        self.assertEqual(self.fleet_entry("other-od.test"),
                         [(mx2.host_id, other)])
        self.assert_no_ledger_errors()


class StatusJsonTest(FleetTestCase):
    """ondemandctl -j status with the ledger's rows."""

    def test_json_has_ledger_rows(self):
        mx1, mx2 = self.hosts
        mx1.hold("one@example.test", "example.test")
        mx2.hold("two@example.test", "example.test")
        mx2.hold("three@example.test", "example.test")
        items = odtest.read_ledger_entry(self.memcached[0].port,
                                         "example.test")

        result = mx2.ctl("-j", "status")

        self.assertEqual(result.returncode, 0, result.stderr)
        rows = json.loads(result.stdout)
        by_type = {}
        for row in rows:
            by_type.setdefault(row["type"], []).append(row)
        ledger = by_type["ledger"]
        self.assertEqual(len(ledger), 1, result.stdout)
        self.assertEqual(ledger[0]["state"], "ok")
        self.assertEqual(ledger[0]["host_id"], "mx2.ondemand.test")
        self.assertEqual(ledger[0]["servers_up"], 1)
        self.assertEqual(ledger[0]["servers"], 1)
        self.assertGreater(ledger[0]["last_resync"], 0)
        self.assertEqual(by_type["server"], [{
            "type": "server", "server": self.memcached[0].server_spec,
            "state": "up", "down_since": 0}])
        hosts = sorted(by_type["host"], key=lambda row: row["host"])
        self.assertEqual([(row["domain"], row["host"], row["messages"])
                          for row in hosts],
                         [("example.test", "mx1.ondemand.test", 1),
                          ("example.test", "mx2.ondemand.test", 2)])
        for row in hosts:
            mine = [item for item in items if item.host == row["host"]]
            self.assertEqual(row["bytes"], sum(item.size for item in mine))
            self.assertEqual(row["oldest"],
                             min(item.held_at for item in mine))
        local = by_type["domain"]
        self.assertEqual([(row["domain"], row["messages"]) for row in local],
                         [("example.test", 2)], result.stdout)


if __name__ == "__main__":
    odtest.main()
