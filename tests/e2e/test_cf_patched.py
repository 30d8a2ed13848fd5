#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end test of ondemand-cf on a real sendmail.cf.

The test builds a sendmail.cf from Debian's sendmail-cf without any filter,
patches it with ondemand-cf (delivery mode, local-address rules, filter and
ETRN hook), starts sendmail with the patched file, and checks that mail for
an on-demand domain is held and released on ETRN like with a hand-wired cf.
"""

import filecmp
import glob
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT, SENDER  # noqa: E402
from test_etrn import etrn  # noqa: E402


def ondemand_cf(*arguments):
    binary = os.path.join(odtest.default_builddir(), "sendmail-cf",
                          "ondemand-cf")
    return subprocess.run([binary, *arguments], capture_output=True,
                          text=True, timeout=120, check=False)


class PatchedCfTest(odtest.EnvironmentTestCase):

    def setUp(self):
        self.env = odtest.Environment(domains=["example.test"])
        self.addCleanup(self.env.close)
        workdir = self.env.workdir
        self.env.milter.config.update({
            "SocketMap": f"unix:{workdir}/socketmap.sock",
            "ControlSocket": f"{workdir}/control.sock",
        })
        sendmail = self.env.sendmail
        # sendmail.cf starts without the filter: ondemand-cf adds it.
        sendmail.milter_socket = None
        sendmail.write_config()
        self.original = os.path.join(workdir, "original.cf")
        with open(sendmail.cf_path, "rb") as source, \
                open(self.original, "wb") as copy:
            copy.write(source.read())
        self.env.milter.write_config()

        self.patch = ondemand_cf("-c", self.env.milter.config_path,
                                 sendmail.cf_path)
        # Environment.start() would build the cf again; keep the patched one.
        sendmail.write_config = lambda: None
        self.env.start()
        self.env.syslog.wait_for(r"hold index built from the queue",
                                 ident=MILTER_IDENT)

    def test_patched_cf_holds_and_releases(self):
        self.assertEqual(self.patch.returncode, 0,
                         self.patch.stdout + self.patch.stderr)
        with open(self.env.sendmail.cf_path) as cf:
            text = cf.read()
        self.assertIn("Xondemand, S=unix:", text)
        self.assertIn("Kondemand socket", text)
        self.assertIn("O DeliveryMode=queueonly", text)

        result = self.env.send(SENDER, ["user@example.test"])
        # Not assert_held(): its delivery barrier would wait in the queue,
        # because the patched cf puts sendmail in queue-only mode.
        queue_id = result.queue_id
        self.assertIsNotNone(queue_id, str(result))
        self.env.syslog.wait_for(
            rf"^{queue_id}: action=hold domain=example\.test ",
            ident=MILTER_IDENT)
        self.assertIn(f"hf{queue_id}", self.env.sendmail.held_files())

        code, text = etrn(self.env.sendmail.port, "example.test")

        self.assertEqual(code, 253, text)
        self.env.sink.wait_for_queue_id(queue_id)

    def test_other_domain_queued_not_held(self):
        # Queue-only mode keeps other mail in the normal queue until a
        # queue run; it is never held.
        result = self.env.send(SENDER, ["user@other.test"])

        self.assertEqual(result.data.code, 250, str(result))
        queue_id = result.queue_id
        self.assertIn(f"qf{queue_id}", self.env.sendmail.queued_files())
        self.assertNotIn(f"hf{queue_id}", self.env.sendmail.held_files())

    def test_second_run_and_revert(self):
        cf_path = self.env.sendmail.cf_path
        again = ondemand_cf("-c", self.env.milter.config_path, cf_path)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)

        revert = ondemand_cf("--revert", "-c", self.env.milter.config_path,
                             cf_path)

        self.assertEqual(revert.returncode, 0, revert.stdout + revert.stderr)
        self.assertTrue(filecmp.cmp(cf_path, self.original, shallow=False))
        backups = glob.glob(cf_path + "*")
        self.assertGreater(len(backups), 1, backups)


if __name__ == "__main__":
    odtest.main()
