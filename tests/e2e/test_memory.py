#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Memory checks of ondemand-milter under real traffic.

One test runs the daemon under valgrind's memcheck through a few hundred
SMTP transactions (held, normal, mixed and aborted) and a release, stops it
with SIGTERM, and requires no memory errors and no definitely lost blocks.
The other counts the resident set size of the daemon while many messages
pass and requires it to stay flat once warmed up.
"""

import os
import shutil
import signal
import smtplib
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT, SENDER  # noqa: E402

# Growth allowed between the warmed-up daemon and the end of the run; one
# leaked connection or message state per transaction would exceed it.
RSS_GROWTH_LIMIT_KIB = 1024


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def traffic(env, rounds):
    """Sends held, normal, mixed and aborted transactions."""
    for number in range(rounds):
        env.send(SENDER, [f"held{number}@example.test"])
        env.send(SENDER, [f"normal{number}@other.test"])
        env.send(SENDER, [f"a{number}@example.test", f"b{number}@other.test"])
        client = smtplib.SMTP("127.0.0.1", env.sendmail.port, timeout=30)
        try:
            client.ehlo("abort.ondemand.test")
            client.docmd(f"MAIL FROM:<{SENDER}>")
            client.docmd(f"RCPT TO:<c{number}@example.test>")
            client.docmd("RSET")
        finally:
            client.quit()


class ValgrindTest(odtest.EnvironmentTestCase):

    def setUp(self):
        if shutil.which("valgrind") is None:
            self.skipTest("valgrind is not installed (Debian package "
                          "valgrind)")
        self.env = odtest.Environment(domains=["example.test"])
        self.addCleanup(self.env.close)
        workdir = self.env.workdir
        # The harness fails the test in close() when the log of the daemon
        # or of its release helper shows an error or a definite leak.
        self.env.milter.valgrind = True
        self.env.milter.config["ControlSocket"] = f"{workdir}/control.sock"
        saved_timeout = odtest.WAIT_TIMEOUT
        odtest.WAIT_TIMEOUT = 60
        self.addCleanup(setattr, odtest, "WAIT_TIMEOUT", saved_timeout)
        self.env.start()
        self.env.syslog.wait_for(r"hold index built from the queue",
                                 timeout=60, ident=MILTER_IDENT)

    def test_no_errors_or_leaks(self):
        executable = os.readlink(f"/proc/{self.env.milter.process.pid}/exe")
        self.assertIn("memcheck", executable)
        traffic(self.env, 40)
        since = self.env.syslog.mark()
        control = os.path.join(self.env.workdir, "control.sock")
        odtest.run_checked([os.path.join(odtest.default_builddir(), "milter",
                                         "ondemandctl"),
                            "-c", self.env.milter.config_path, "status"])
        self.assertTrue(os.path.exists(control))
        exit_code = self.env.milter.process.stop(timeout=60,
                                                 signum=signal.SIGTERM)

        self.assertEqual(exit_code, 0, self.env.transcript())
        self.env.syslog.wait_for(r"^stopping:", since=since,
                                 ident=MILTER_IDENT)
        # valgrind writes the file even with nothing to report.
        valgrind_log = os.path.join(self.env.milter.report_dir,
                                    f"valgrind.{self.env.milter.process.pid}")
        self.assertTrue(os.path.exists(valgrind_log))
        with open(valgrind_log) as log:
            report = log.read()
        self.assertRegex(report, r"ERROR SUMMARY: 0 errors", report)
        self.assertNotRegex(report, r"Invalid (read|write|free)", report)
        self.assertNotRegex(report, r"uninitialised", report)
        self.assertNotRegex(report, r"definitely lost in [1-9]", report)
        # 40 held messages and 40 mixed ones held for their first recipient.
        self.assertEqual(len(self.env.sendmail.held_files()), 80)


class ResidentMemoryTest(odtest.EnvironmentTestCase):
    environment_options = {"domains": ["example.test"]}

    def setUp(self):
        if odtest.VALGRIND_REQUESTED:
            self.skipTest("ONDEMAND_VALGRIND=1 runs the daemon under "
                          "valgrind, whose resident memory says nothing "
                          "about the daemon's")
        super().setUp()

    def test_resident_memory_flat(self):
        pid = self.env.milter.process.pid
        traffic(self.env, 30)
        warmed_up = resident_kib(pid)

        traffic(self.env, 120)
        after = resident_kib(pid)

        print(f"ondemand-milter VmRSS: {warmed_up} KiB after 120 "
              f"transactions, {after} KiB after 600", file=sys.stderr)
        self.assertLess(after - warmed_up, RSS_GROWTH_LIMIT_KIB,
                        f"{warmed_up} KiB -> {after} KiB")


if __name__ == "__main__":
    if odtest.sanitizer_build():
        odtest.skip("ondemand-milter was built with --enable-sanitizers: "
                    "valgrind cannot run AddressSanitizer programs, and "
                    "AddressSanitizer's shadow memory and quarantine make "
                    "the resident memory check meaningless")
    odtest.main()
