#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Tests of the release helper process and its client against a fake sendmail.

tests/helper/fake-sendmail records every run (arguments, environment, open
descriptors) and exits with the status that its control files set, so these
tests check what the helper runs,
how it limits concurrency, and how the daemon's calls behave when the
helper dies, without root and without a real sendmail. The driver
tests/helper/helper_run makes the od_helper_* calls.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.environ.get(
    "ONDEMAND_BUILDDIR", os.path.normpath(os.path.join(SOURCE_DIR, "..", "..")))
DRIVER = os.path.join(BUILD_DIR, "tests", "helper", "helper_run")
TIMEOUT = 60

QUEUE_ID = "6B4KakNA031584"
RUN_OPTIONS = ["-v", "-O", "MaxQueueRunSize=0"]

LISTING = (
    "\t\t/var/spool/mqueue (2 requests)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4KakNA031584        5 Fri Dec  4 20:36 c@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t z4@example.test\n"
    "6B4Kasdp032609*    1228 Fri Dec  4 20:37 <>\n"
    "     QUARANTINE: ondemand [down.test]\n"
    "                 (Deferred: Connection refused by [127.0.0.1])\n"
    "\t\t\t\t\t stall@down.test\n"
    "\t\tTotal requests: 2\n")


def read_file(path):
    with open(path, encoding="ascii") as stream:
        return stream.read()


class FakeSendmailTest(unittest.TestCase):
    """Each test gets a directory with its own copy of the fake sendmail."""

    def setUp(self):
        if not os.access(DRIVER, os.X_OK):
            self.skipTest(f"{DRIVER} is not built; run make check")
        self.dir = tempfile.mkdtemp(prefix="ondemand-helper-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.fake = os.path.join(self.dir, "sendmail")
        shutil.copy(os.path.join(SOURCE_DIR, "fake-sendmail"), self.fake)
        os.chmod(self.fake, 0o755)
        self.cf = os.path.join(self.dir, "sendmail.cf")
        self.write("sendmail.cf", "")

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w", encoding="ascii") as f:
            f.write(text)

    def read(self, name):
        return read_file(os.path.join(self.dir, name))

    def calls(self):
        """Return the argument lists of the fake's runs, in order."""
        try:
            pids = self.read("calls.log").split()
        except FileNotFoundError:
            return []
        calls = []
        for pid in pids:
            line = self.read(f"argv.{pid}").rstrip("\n")
            self.assertTrue(line.startswith("argv: ["), line[:80])
            calls.append(line[len("argv: ["):-1].split("] ["))
        return calls

    def drive(self, *args, config=None, stdin=None):
        env = dict(os.environ)
        env.pop("HELPER_RUN_DEBUG", None)
        argv = [DRIVER, self.fake, config or self.cf, *args]
        result = subprocess.run(argv, input=stdin, capture_output=True,
                                text=True, timeout=TIMEOUT, env=env,
                                check=False)
        self.assertEqual(result.returncode, 0,
                         f"{argv} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def status_lines(self, output):
        return [line for line in output.splitlines()
                if line.startswith("status")]


class ArgumentTest(FakeSendmailTest):
    def test_deliver_arguments(self):
        output = self.drive("deliver", QUEUE_ID, "ABCDEFG")
        self.assertEqual(self.status_lines(output), ["status 0"])
        self.assertEqual(self.calls(), [
            ["-C", self.cf, "-qQ", f"-qI{QUEUE_ID}", "-qIABCDEFG",
             *RUN_OPTIONS]])

    def test_deliver_domain_arguments(self):
        self.drive("deliver-domain", "example.test")
        self.assertEqual(self.calls(), [
            ["-C", self.cf, "-qQ[example.test]", *RUN_OPTIONS]])

    def test_unhold_arguments(self):
        self.drive("unhold", QUEUE_ID)
        self.assertEqual(self.calls(), [
            ["-C", self.cf, "-Q", "-qQ", f"-qI{QUEUE_ID}"]])

    def test_expire_unholds_then_runs(self):
        output = self.drive("expire", "604799", QUEUE_ID, "ABCDEFG")
        self.assertEqual(self.status_lines(output), ["status 0"])
        self.assertEqual(self.calls(), [
            ["-C", self.cf, "-Q", "-qQ", f"-qI{QUEUE_ID}", "-qIABCDEFG"],
            ["-C", self.cf, f"-qI{QUEUE_ID}", "-qIABCDEFG", *RUN_OPTIONS,
             "-O", "Timeout.queuereturn=604799s"]])

    def test_expire_stops_when_unhold_fails(self):
        self.write("status", "75")
        output = self.drive("expire", "60", QUEUE_ID)
        self.assertEqual(self.status_lines(output), ["status 75"])
        self.assertEqual(len(self.calls()), 1)

    def test_list_arguments(self):
        self.drive("list")
        self.assertEqual(self.calls(), [
            ["-C", self.cf, "-bp", "-qQ", "-O", "MaxQueueRunSize=0"]])

    def test_no_config_means_no_c_option(self):
        self.drive("deliver", QUEUE_ID, config="-")
        self.assertEqual(self.calls(), [
            ["-qQ", f"-qI{QUEUE_ID}", *RUN_OPTIONS]])

    def test_environment_stdin_and_descriptors(self):
        self.drive("deliver", QUEUE_ID)
        self.drive("list")
        for path in glob.glob(os.path.join(self.dir, "env.*")):
            variables = dict(line.split("=", 1) for line in
                             read_file(path).splitlines())
            # dash exports PWD itself; the helper passes PATH only.
            variables.pop("PWD", None)
            self.assertEqual(variables,
                             {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        stdins = glob.glob(os.path.join(self.dir, "stdin.*"))
        self.assertEqual(len(stdins), 2)
        for path in stdins:
            self.assertEqual(read_file(path).strip(), "/dev/null")
        for path in glob.glob(os.path.join(self.dir, "fds.*")):
            listing = read_file(path)
            # The helper's socketpair and signal pipe must not leak; only
            # a listing's standard output is a pipe.
            self.assertNotIn("socket:", listing)
            self.assertLessEqual(listing.count("pipe:"), 1, listing)

    def test_large_batches_are_split(self):
        ids = [f"6B4KakNA{n:06d}" for n in range(6000)]
        output = self.drive("deliver", *ids)
        self.assertEqual(self.status_lines(output), ["status 0"])
        calls = self.calls()
        # (65536 - 19) // 15 IDs of 14 characters fit into one line.
        self.assertEqual(sorted(len(call) for call in calls),
                         sorted([4367 + 6, 1633 + 6]))
        seen = [arg[3:] for call in calls for arg in call
                if arg.startswith("-qI")]
        self.assertEqual(sorted(seen), ids)

    def test_no_ids_runs_nothing(self):
        output = self.drive("deliver")
        self.assertEqual(self.status_lines(output), ["status 0"])
        self.assertEqual(self.calls(), [])


class ValidationTest(FakeSendmailTest):
    def test_client_rejects_bad_arguments(self):
        for args in (["deliver", "ABC;DEF"], ["unhold", QUEUE_ID, "A B"],
                     ["expire", "60", "$(id)xx"], ["expire", "0", QUEUE_ID],
                     ["expire", "31622401", QUEUE_ID],
                     ["deliver-domain", "Example.test"],
                     ["deliver-domain", "[example.test]"],
                     ["deliver-domain", "example.test example.com"]):
            with self.subTest(args=args):
                output = self.drive(*args)
                self.assertEqual(self.status_lines(output), ["status -1"])
        self.assertEqual(self.calls(), [])

    def test_helper_rejects_raw_requests(self):
        too_many = "DELIVER 5 " + " ".join(["ABCDEF"] * 5001)
        too_long = "DELIVER 6 " + "A" * 70000
        requests = [
            "DELIVER 1 ABC;DEF",
            "DELIVERTAG 2 Example.test",
            "FOO 3 ABCDEFG",
            "LIST 4 extra",
            too_many,
            too_long,
            "UNHOLD 7  ABCDEFG",
            "EXPIRE 8",
            "DELIVER 9 ABCDEFG",
            "EXPIRE 10 1h ABCDEFG",
        ]

        output = self.drive("raw", stdin="\n".join(requests) + "\n")

        lines = output.splitlines()
        errors = {line.split()[1]: line for line in lines
                  if line.startswith("ERROR ")}
        self.assertEqual(sorted(errors), sorted([*"12345678", "10"]),
                         output)
        self.assertIn("invalid queue ID", errors["1"])
        self.assertIn("not in normal form", errors["2"])
        self.assertIn("unknown request", errors["3"])
        self.assertIn("no arguments", errors["4"])
        self.assertIn("more than the maximum of 5000", errors["5"])
        self.assertIn("longer than 65535 octets", errors["6"])
        self.assertIn("empty field", errors["7"])
        self.assertIn("at least one queue ID", errors["8"])
        self.assertIn('invalid EXPIRE age "1h"', errors["10"])

        self.assertIn("DONE 9 0", lines)
        self.assertIn("helper exit 0", lines)
        # Only the valid request reached sendmail.
        self.assertEqual(self.calls(), [
            ["-C", self.cf, "-qQ", "-qIABCDEFG", *RUN_OPTIONS]])


class StatusTest(FakeSendmailTest):
    def test_exit_status_is_returned(self):
        self.write("status", "75")
        output = self.drive("deliver", QUEUE_ID)
        self.assertEqual(self.status_lines(output), ["status 75"])

    def test_signal_is_128_plus_number(self):
        self.write("status", "kill")
        output = self.drive("deliver-domain", "example.test")
        self.assertEqual(self.status_lines(output), ["status 137"])

    def test_missing_sendmail_fails_at_start(self):
        argv = [DRIVER, os.path.join(self.dir, "missing"), "-", "list"]
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=TIMEOUT, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("sendmail binary", result.stdout)
        self.assertIn("No such file or directory", result.stdout)

    def test_logs_runs_and_failures(self):
        self.write("status", "69")
        result = subprocess.run(
            [DRIVER, self.fake, self.cf, "unhold", QUEUE_ID, "ABCDEFG"],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
            env=dict(os.environ, HELPER_RUN_DEBUG="1"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stderr, r"UNHOLD run started: tag=1 pid=\d+ "
                         r"step=run ids=2")
        self.assertRegex(result.stderr, r"UNHOLD run failed: tag=1 pid=\d+ "
                         r"status=69 ids=2")
        self.assertRegex(result.stderr, rf"UNHOLD tag=1 pid=\d+ queue IDs "
                         rf"1-2 of 2: {QUEUE_ID} ABCDEFG")


class ListTest(FakeSendmailTest):
    def test_list_returns_items(self):
        self.write("listing", LISTING)
        output = self.drive("list")
        items = [line for line in output.splitlines()
                 if line.startswith("item ")]
        self.assertEqual(len(items), 2, output)
        self.assertTrue(items[0].startswith(
            "item 6B4KakNA031584 5 "), items[0])
        self.assertTrue(items[0].endswith(
            " c@sender.test|ondemand [example.test]"), items[0])
        self.assertTrue(items[1].startswith("item 6B4Kasdp032609 1228 "))
        self.assertTrue(items[1].endswith(" <>|ondemand [down.test]"))
        self.assertEqual(self.status_lines(output), ["status 0"])

    def test_incomplete_listing_fails(self):
        self.write("listing", LISTING.replace("(2 requests)", "(3 requests)"))
        output = self.drive("list")
        self.assertEqual(self.status_lines(output), ["status -1"])

    def test_unknown_line_fails(self):
        self.write("listing", "Can not chdir(/q/): No such file or directory\n")
        output = self.drive("list")
        self.assertEqual(self.status_lines(output), ["status -1"])

    def test_sendmail_failure_fails(self):
        self.write("listing", LISTING)
        self.write("status", "78")
        output = self.drive("list")
        self.assertEqual(self.status_lines(output), ["status -1"])
        self.assertNotIn("item ", output)

    def test_empty_queue(self):
        output = self.drive("list")
        self.assertEqual(output.splitlines()[1:], ["status 0"])


class ConcurrencyTest(FakeSendmailTest):
    def test_at_most_eight_runs_at_once(self):
        self.write("sleep", "1")
        start = time.monotonic()
        output = self.drive("parallel", "20", "deliver", QUEUE_ID)
        elapsed = time.monotonic() - start
        self.assertEqual(self.status_lines(output), ["status 0"] * 20)
        counts = [int(line) for line in
                  self.read("concurrency.log").split()]
        self.assertEqual(len(counts), 20)
        self.assertEqual(max(counts), 8, counts)
        # 20 runs of 1 s, 8 at a time, take three rounds.
        self.assertGreaterEqual(elapsed, 2.9)

    def test_list_does_not_wait_for_runs(self):
        self.write("sleep", "3")
        self.write("listing", LISTING)
        output = self.drive("list-while-busy", "8", QUEUE_ID)
        lines = output.splitlines()
        list_line = [line for line in lines if line.startswith("list ")]
        self.assertEqual(len(list_line), 1, output)
        fields = list_line[0].split()
        self.assertEqual(fields[2], "0", output)
        # Eight runs of 3 s fill every run slot; the listing has its own.
        self.assertLess(float(fields[4]), 2, output)
        self.assertEqual(self.status_lines(output), ["status 0"] * 8)

    def test_many_threads_list_at_once(self):
        self.write("listing", LISTING)
        output = self.drive("parallel", "50", "list")
        self.assertEqual(self.status_lines(output), ["status 0"] * 50)
        self.assertEqual(output.count("item 6B4KakNA031584 "), 50)


class HelperDeathTest(FakeSendmailTest):
    def test_call_fails_when_helper_is_killed(self):
        # Longer than the 0.5 s before the kill, short enough that the
        # orphaned fake sendmail is waited for below, not left running.
        self.write("sleep", "3")
        output = self.drive("kill-helper", "500", "deliver", QUEUE_ID)
        line = output.splitlines()[1]
        status, seconds, alive = (line.split()[1], float(line.split()[3]),
                                  line.split()[5])
        self.assertEqual(status, "-1", output)
        self.assertLess(seconds, 3, output)
        self.assertEqual(alive, "0", output)
        self.assertIn("after status -1", output)
        deadline = time.monotonic() + 10
        while (not glob.glob(os.path.join(self.dir, "finished.*"))
               and time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(len(glob.glob(os.path.join(self.dir, "finished.*"))),
                         1)

    def test_alive_without_reader_thread(self):
        output = self.drive("alive")
        self.assertEqual(output.splitlines()[1:],
                         ["alive 1", "alive 0", "status -1"])

    def test_stop_ends_helper_but_not_sendmail(self):
        self.write("sleep", "2")
        output = self.drive("stop-during", "300", "deliver", QUEUE_ID)
        fields = output.splitlines()[1].split()
        self.assertEqual(fields[1], "-1", output)
        self.assertLess(float(fields[3]), 2, output)
        self.assertEqual(fields[5], "gone", output)
        # The sendmail run that was going on finishes on its own.
        deadline = time.monotonic() + 10
        while (not glob.glob(os.path.join(self.dir, "finished.*"))
               and time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(len(glob.glob(os.path.join(self.dir, "finished.*"))),
                         1)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    unittest.main(verbosity=2)
