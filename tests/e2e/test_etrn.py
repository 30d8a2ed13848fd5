#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of releases: ETRN, ondemandctl and the hold age limit.

sendmail.cf is built with the project's own FEATURE(`ondemand') (from
sendmail-cf/feature/ondemand.m4 in the source tree, through
odtest.cf_overlay), so the check_etrn
ruleset and the socket map under test are the ones operators install.
"""

import contextlib
import json
import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT, SENDER  # noqa: E402


def etrn(port, argument, host="127.0.0.1"):
    """Sends one ETRN over a new SMTP session; returns (code, text)."""
    client = smtplib.SMTP(timeout=odtest.WAIT_TIMEOUT + 20)
    try:
        client.connect(host, port)
        client.ehlo("customer.ondemand.test")
        code, text = client.docmd("ETRN", argument)
        return code, text.decode("utf-8", "replace")
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


class ReleaseTestCase(odtest.EnvironmentTestCase):
    """An environment whose sendmail.cf uses FEATURE(`ondemand')."""

    domains = ["example.test", "other-od.test", ".branch.test"]
    milter_config = {}

    def setUp(self):
        self.env = odtest.Environment(domains=self.domains,
                                      milter_config=self.milter_config)
        self.addCleanup(self.env.close)
        workdir = self.env.workdir
        self.control_socket = os.path.join(workdir, "control.sock")
        self.env.milter.config["ControlSocket"] = self.control_socket
        odtest.use_ondemand_feature(self.env,
                                    os.path.join(workdir, "socketmap.sock"))
        self.env.milter.config.update(self.milter_config)
        self.addCleanup(odtest.set_sendmail_cf_dir,
                        odtest.set_sendmail_cf_dir(odtest.cf_overlay(workdir)))
        self.env.start()
        # The first index rebuild from the queue happens at start.
        self.env.syslog.wait_for(r"hold index built from the queue",
                                 ident=MILTER_IDENT)

    def hold(self, recipient, domain):
        result = self.env.send(SENDER, [recipient])
        return self.assert_held(result, [recipient], domain)

    def ctl(self, *arguments, user=None, config=None):
        """Runs ondemandctl with the test's config; returns CompletedProcess."""
        binary = os.path.join(odtest.default_builddir(), "milter",
                              "ondemandctl")
        preexec = None
        if user is not None:
            entry = pwd.getpwnam(user)

            def preexec():
                os.setgid(entry.pw_gid)
                os.setgroups([])
                os.setuid(entry.pw_uid)
        return subprocess.run(
            [binary, "-c", config or self.env.milter.config_path,
             *arguments],
            capture_output=True, text=True, timeout=odtest.WAIT_TIMEOUT + 20,
            check=False, preexec_fn=preexec)

    def wait_until_released(self, queue_ids):
        for queue_id in queue_ids:
            self.env.sink.wait_for_queue_id(queue_id)
            odtest.wait_until(
                lambda q=queue_id: f"hf{q}" not in
                self.env.sendmail.held_files(),
                description=f"{queue_id} to leave the queue")


class EtrnReleaseTest(ReleaseTestCase):

    def test_etrn_releases_only_its_domain(self):
        first = self.hold("one@example.test", "example.test")
        second = self.hold("two@example.test", "example.test")
        other = self.hold("three@other-od.test", "other-od.test")
        since = self.env.syslog.mark()

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertEqual(code, 253, text)
        self.assertIn("2 pending messages for node example.test started",
                      text)
        self.wait_until_released([first, second])
        self.env.syslog.wait_for(
            r"^action=release domain=example\.test trigger=etrn .*"
            r"messages=2", since=since, ident=MILTER_IDENT)
        self.env.syslog.wait_for(
            r"^action=release-done domain=example\.test trigger=etrn "
            r"messages=2 delivered=2 still_held=0", since=since,
            ident=MILTER_IDENT)
        self.assertIn(f"hf{other}", self.env.sendmail.held_files())
        self.assertEqual(self.env.sink.messages_with_queue_id(other), [])

    def test_etrn_upper_case_and_trailing_dot(self):
        queue_id = self.hold("user@example.test", "example.test")

        code, text = etrn(self.env.sendmail.port, "EXAMPLE.TEST.")

        self.assertEqual(code, 253, text)
        self.wait_until_released([queue_id])

    def test_etrn_at_form_releases_subdomains(self):
        shop = self.hold("user@shop.branch.test", "shop.branch.test")
        office = self.hold("user@office.branch.test", "office.branch.test")
        unrelated = self.hold("user@example.test", "example.test")

        code, text = etrn(self.env.sendmail.port, "@branch.test")

        self.assertEqual(code, 253, text)
        self.wait_until_released([shop, office])
        self.assertIn(f"hf{unrelated}", self.env.sendmail.held_files())

    def test_etrn_nothing_waiting(self):
        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertEqual(code, 251, text)
        self.assertIn("no messages waiting", text)

    def test_etrn_other_domain_passes(self):
        code, text = etrn(self.env.sendmail.port, "not-on-demand.test")

        self.assertEqual(code, 250, text)

    def test_etrn_invalid_arguments(self):
        for argument in ["exa_mple.test", "example..test", "-qIabc",
                         "example.test;ls", "a" * 254]:
            with self.subTest(argument=argument[:40]):
                code, text = etrn(self.env.sendmail.port, argument)
                self.assertEqual(code, 501, text)
                self.assertEqual(self.env.sink.messages, [])

    def test_etrn_overlong_argument_releases_nothing(self):
        # sendmail does not pass arguments this long to the socket map and
        # runs its own ETRN instead, which never touches held mail.
        queue_id = self.hold("user@example.test", "example.test")

        code, text = etrn(self.env.sendmail.port, "a" * 300)

        self.assertIn(code, (250, 501), text)
        time.sleep(1)
        self.assertIn(f"hf{queue_id}", self.env.sendmail.held_files())
        self.assertEqual(self.env.sink.messages_with_queue_id(queue_id), [])

    def test_concurrent_etrn_one_run(self):
        queue_ids = [self.hold(f"user{i}@example.test", "example.test")
                     for i in range(3)]
        since = self.env.syslog.mark()
        replies = []

        def ask():
            replies.append(etrn(self.env.sendmail.port, "example.test"))
        threads = [threading.Thread(target=ask) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        codes = sorted(code for code, _ in replies)
        self.assertEqual(len(codes), 2, replies)
        self.assertTrue(all(code in (250, 253) for code in codes), replies)
        self.wait_until_released(queue_ids)
        self.env.syslog.wait_for(r"^action=release-done domain=example\.test",
                                 since=since, ident=MILTER_IDENT)
        runs = self.env.syslog.find_all(
            r"^action=release domain=example\.test ", since=since,
            ident=MILTER_IDENT)
        self.assertEqual(len(runs), 1, [str(line) for line in runs])
        for queue_id in queue_ids:
            self.assertEqual(
                len(self.env.sink.messages_with_queue_id(queue_id)), 1)

    def test_etrn_daemon_stopped_gives_458(self):
        self.env.milter.stop()

        code, text = etrn(self.env.sendmail.port, "example.test")

        # With F=T sendmail may refuse the session first (4xx).  Either
        # way the reply is a temporary failure, and nothing is delivered.
        self.assertIn(code, (458, 451, 421), text)
        self.assertEqual(self.env.sink.messages, [])

    def test_sink_down_keeps_mail_held(self):
        queue_id = self.hold("user@example.test", "example.test")
        self.env.sink.fail_at("connect", "421 4.3.2 customer offline")
        since = self.env.syslog.mark()

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertEqual(code, 253, text)
        self.env.syslog.wait_for(
            r"^action=release-done domain=example\.test .*delivered=0 "
            r"still_held=1", since=since, ident=MILTER_IDENT)
        self.assertIn(f"hf{queue_id}", self.env.sendmail.held_files())

        self.env.sink.accept_all()
        code, text = etrn(self.env.sendmail.port, "example.test")
        self.assertEqual(code, 253, text)
        self.wait_until_released([queue_id])

    def test_restart_keeps_every_hold(self):
        queue_ids = [self.hold(f"user{i}@example.test", "example.test")
                     for i in range(2)]
        self.env.milter.stop()
        since = self.env.syslog.mark()
        self.env.milter.start()
        self.env.syslog.wait_for(r"hold index built from the queue",
                                 since=since, ident=MILTER_IDENT)

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertEqual(code, 253, text)
        self.assertIn("2 pending messages", text)
        self.wait_until_released(queue_ids)


class LongDomainTest(ReleaseTestCase):
    # 248 octets: sendmail cuts socket map keys near 256 octets, so the key
    # "DOMAIN/127.0.0.1" loses part of the address but never of the domain.
    long_domain = ("a" * 60 + ".") * 4 + "test"
    domains = [long_domain]

    def test_long_domain_released(self):
        self.assertEqual(len(self.long_domain), 248)
        result = self.env.send(SENDER, [f"user@{self.long_domain}"])
        # Not hold(): sendmail's own log line cuts a reason this long.
        queue_id = result.queue_id
        self.assertIsNotNone(queue_id, str(result))
        self.env.syslog.wait_for(rf"^{queue_id}: action=hold ",
                                 ident=MILTER_IDENT)
        self.assertIn(f"hf{queue_id}", self.env.sendmail.held_files())

        code, text = etrn(self.env.sendmail.port, self.long_domain)

        self.assertEqual(code, 253, text)
        self.wait_until_released([queue_id])


class EtrnAllowTest(ReleaseTestCase):
    # The test client connects from 127.0.0.1.
    milter_config = {"EtrnAllow": ["example.test 192.0.2.0/24",
                                   "other-od.test 192.0.2.0/24,127.0.0.0/8"]}

    def test_client_outside_list_denied(self):
        queue_id = self.hold("user@example.test", "example.test")
        since = self.env.syslog.mark()

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertEqual(code, 459, text)
        self.env.syslog.wait_for(
            r"^action=etrn-deny argument=example\.test client=127\.0\.0\.1 ",
            since=since, ident=MILTER_IDENT)
        self.assertIn(f"hf{queue_id}", self.env.sendmail.held_files())

    def test_client_inside_list_released(self):
        queue_id = self.hold("user@other-od.test", "other-od.test")
        since = self.env.syslog.mark()

        code, text = etrn(self.env.sendmail.port, "other-od.test")

        self.assertEqual(code, 253, text)
        self.wait_until_released([queue_id])
        self.env.syslog.wait_for(
            r"^action=release domain=other-od\.test trigger=etrn "
            r"client=127\.0\.0\.1 ", since=since, ident=MILTER_IDENT)

    def test_operator_not_limited(self):
        queue_id = self.hold("user@example.test", "example.test")

        result = self.ctl("release", "example.test")

        self.assertEqual(result.returncode, 0, result.stderr)
        self.wait_until_released([queue_id])


class EtrnClientTest(ReleaseTestCase):
    """The customer's side: contrib/ondemand-etrn against this sendmail."""

    def run_client(self, *domains):
        binary = os.path.join(odtest.default_builddir(), "contrib",
                              "ondemand-etrn")
        return subprocess.run(
            [binary, "-p", str(self.env.sendmail.port), "-t", "20",
             "127.0.0.1", *domains], capture_output=True, text=True,
            timeout=60, check=False)

    def test_client_release_started(self):
        queue_id = self.hold("user@example.test", "example.test")

        result = self.run_client("example.test")

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("example.test", result.stdout)
        self.wait_until_released([queue_id])

    def test_client_nothing_waiting(self):
        result = self.run_client("example.test")

        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)

    def test_client_refused_domain(self):
        self.env.reload_milter({"EtrnOther": "deny"})

        result = self.run_client("not-on-demand.test")

        self.assertEqual(result.returncode, 3, result.stdout + result.stderr)


class EtrnDenyTest(ReleaseTestCase):
    milter_config = {"EtrnOther": "deny"}

    def test_other_domain_denied(self):
        code, text = etrn(self.env.sendmail.port, "not-on-demand.test")

        self.assertEqual(code, 459, text)

    def test_named_queue_denied(self):
        code, text = etrn(self.env.sendmail.port, "#somequeue")

        self.assertEqual(code, 459, text)

    def test_on_demand_domain_still_released(self):
        queue_id = self.hold("user@example.test", "example.test")

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertEqual(code, 253, text)
        self.wait_until_released([queue_id])


class OndemandctlTest(ReleaseTestCase):

    def test_status_and_list(self):
        first = self.hold("one@example.test", "example.test")
        self.hold("two@other-od.test", "other-od.test")

        status = self.ctl("-j", "status")
        self.assertEqual(status.returncode, 0, status.stderr)
        rows = json.loads(status.stdout)
        domains = {row["domain"]: row for row in rows
                   if row["type"] == "domain"}
        self.assertEqual(domains["example.test"]["messages"], 1)
        self.assertEqual(domains["other-od.test"]["messages"], 1)
        self.assertGreater(domains["example.test"]["bytes"], 0)

        table = self.ctl("status")
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertIn("example.test", table.stdout)

        listing = self.ctl("-t", "list", "example.test")
        self.assertEqual(listing.returncode, 0, listing.stderr)
        lines = listing.stdout.splitlines()
        self.assertEqual(len(lines), 1, listing.stdout)
        self.assertEqual(lines[0].split("\t")[1], first)

    def test_release_command(self):
        queue_id = self.hold("user@example.test", "example.test")

        result = self.ctl("release", "example.test")

        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("release started", result.stdout)
        self.wait_until_released([queue_id])

    def test_unhold_domain_and_queue_id(self):
        first = self.hold("one@example.test", "example.test")
        second = self.hold("two@other-od.test", "other-od.test")

        by_domain = self.ctl("unhold", "example.test")
        by_id = self.ctl("unhold", second)

        self.assertEqual(by_domain.returncode, 0, by_domain.stderr)
        self.assertIn("1 message moved", by_domain.stdout)
        self.assertEqual(by_id.returncode, 0, by_id.stderr)
        held = self.env.sendmail.held_files()
        queued = self.env.sendmail.queued_files()
        for queue_id in (first, second):
            self.assertNotIn(f"hf{queue_id}", held)
            # Un-held mail is in the normal queue or already delivered.
            self.assertTrue(f"qf{queue_id}" in queued or
                            self.env.sink.messages_with_queue_id(queue_id),
                            queue_id)

    def test_bad_arguments(self):
        cases = [(["release", "not-on-demand.test"], 69),
                 (["list", "exa_mple.test"], 69),
                 (["status", "extra"], 64),
                 (["frobnicate"], 64),
                 (["release", "a b"], 64)]
        for arguments, expected in cases:
            with self.subTest(arguments=arguments):
                result = self.ctl(*arguments)
                self.assertEqual(result.returncode, expected, result.stderr)
                self.assertTrue(result.stderr.startswith("ondemandctl: "),
                                result.stderr)

    def test_control_socket_refuses_other_users(self):
        # A copy of the config that every user can read, so only the
        # socket's own permissions (mode 0660, owner root) keep the user
        # "nobody" out.
        directory = tempfile.mkdtemp(prefix="ondemand-ctl-")
        self.addCleanup(shutil.rmtree, directory, True)
        os.chmod(directory, 0o755)
        config = os.path.join(directory, "ondemand.conf")
        shutil.copy(self.env.milter.config_path, config)
        os.chmod(config, 0o644)

        result = self.ctl("status", user="nobody", config=config)

        # The config file is readable, the socket (mode 0660, root) is not.
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn("permission denied", result.stderr)

    def test_daemon_not_running(self):
        self.env.milter.stop()

        result = self.ctl("status")

        self.assertEqual(result.returncode, 69, result.stderr)
        self.assertIn("is ondemand-milter running", result.stderr)


class InternationalDomainTest(ReleaseTestCase):
    domains = ["bücher.test"]

    def test_utf8_domain_argument(self):
        queue_id = self.hold("user@xn--bcher-kva.test", "xn--bcher-kva.test")

        for name in ("bücher.test", "BÜCHER.test", "@bücher.test",
                     "xn--bcher-kva.test"):
            with self.subTest(name=name):
                listing = self.ctl("-t", "list", name)
                self.assertEqual(listing.returncode, 0, listing.stderr)
                rows = listing.stdout.splitlines()
                self.assertEqual([row.split("\t")[1] for row in rows],
                                 [queue_id])

    def test_invalid_utf8_domain_argument(self):
        # U+2044 FRACTION SLASH is not allowed in a domain name.
        result = self.ctl("list", "b\u2044cher.test")

        self.assertEqual(result.returncode, 69, result.stderr)
        self.assertIn("not a valid internationalised domain name",
                      result.stderr)


class HoldAgeTest(ReleaseTestCase):
    milter_config = {"MaxHoldAge": "6s"}

    def test_expired_hold_returns_to_sender(self):
        # The customer's server is offline, so the last attempt fails and
        # sendmail returns the message to its sender as a DSN.  That DSN
        # meets the same offline sink, waits in the normal queue, and goes
        # out with the next queue run.
        since = self.env.syslog.mark()
        queue_id = self.hold("user@example.test", "example.test")
        self.env.sink.fail_at("connect", "421 4.3.2 customer offline")

        self.env.syslog.wait_for(rf"^{queue_id}: action=expire ",
                                 timeout=30, since=since, ident=MILTER_IDENT)
        self.env.sink.accept_all()
        # The failed attempt is in the host status cache; ignore it.
        self.env.sendmail.run("-q", "-v", "-OTimeout.hoststatus=0s")
        dsn = self.env.sink.wait_for_recipient(SENDER, timeout=30)

        self.assertIn(b"multipart/report", dsn.data)
        self.assertEqual(dsn.sender, "")
        # The last attempt's return timeout is MaxHoldAge, and the DSN
        # gives that time.
        self.assertIn(b"could not be delivered for 6 seconds", dsn.data)
        odtest.wait_until(
            lambda: f"hf{queue_id}" not in self.env.sendmail.held_files()
            and f"qf{queue_id}" not in self.env.sendmail.queued_files(),
            timeout=30, description=f"{queue_id} to leave the queue")


if __name__ == "__main__":
    odtest.main()
