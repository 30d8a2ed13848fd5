#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of the milter's configuration: reload on SIGUSR1, DomainFile, -n."""

import os
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import SENDER  # noqa: E402


class ReloadTest(odtest.EnvironmentTestCase):
    environment_options = {"domains": ["example.test"]}

    def test_added_domain_held_after_sigusr1(self):
        before = self.env.send(SENDER, ["user@new.test"])
        self.assert_delivered(before, ["user@new.test"])

        self.env.reload_milter({"Domain": ["example.test", "new.test"]})

        after = self.env.send(SENDER, ["user@new.test"])
        self.assert_held(after, ["user@new.test"], "new.test")
        self.assertTrue(self.env.milter.running)

    def test_removed_domain_delivered_after_sigusr1(self):
        before = self.env.send(SENDER, ["user@example.test"])
        self.assert_held(before, ["user@example.test"], "example.test")

        self.env.reload_milter({"Domain": ["example.net"]})

        after = self.env.send(SENDER, ["user@example.test"])
        self.assert_delivered(after, ["user@example.test"])

    def test_invalid_config_keeps_previous_domains(self):
        self.env.reload_milter({"Domain": ["example.test", "new.test"],
                                "OnError": "sometimes"})

        self.assertTrue(self.env.milter.running)
        old_domain = self.env.send(SENDER, ["user@example.test"])
        self.assert_held(old_domain, ["user@example.test"], "example.test")
        # new.test came with the invalid file, so it must not be active.
        new_domain = self.env.send(SENDER, ["user@new.test"])
        self.assert_delivered(new_domain, ["user@new.test"])

    def test_domain_file_read_again_on_sigusr1(self):
        domain_file = os.path.join(self.env.workdir, "domains")
        odtest.write_file(domain_file, "# on-demand customers\nfile.test\n")
        self.env.reload_milter({"DomainFile": domain_file})

        first = self.env.send(SENDER, ["user@file.test"])
        self.assert_held(first, ["user@file.test"], "file.test")
        before = self.env.send(SENDER, ["user@later.test"])
        self.assert_delivered(before, ["user@later.test"])

        odtest.write_file(domain_file, "file.test\nlater.test\n")
        self.env.reload_milter()

        after = self.env.send(SENDER, ["user@later.test"])
        self.assert_held(after, ["user@later.test"], "later.test")


class ConfigCheckTest(unittest.TestCase):
    """ondemand-milter -n checks a config file without starting the daemon."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="ondemand-e2e-")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)

    def test_valid_config_reports_ok(self):
        milter = odtest.Milter(self.workdir, {"Domain": ["example.test"]})

        result = milter.check_config()

        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("configuration OK", result.stdout)

    def test_invalid_value_names_file_and_line(self):
        milter = odtest.Milter(self.workdir, {"Domain": ["example.test"],
                                              "OnError": "sometimes"})

        result = milter.check_config()

        self.assertNotEqual(result.returncode, 0)
        self.assertNotIn("configuration OK", result.stdout)
        self.assertRegex(result.stderr,
                         rf"{milter.config_path}:\d+: .*sometimes")


if __name__ == "__main__":
    odtest.main()
