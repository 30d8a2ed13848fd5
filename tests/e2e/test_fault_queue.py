#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end fault tests around sendmail's queue: a sendmail restart with
held mail, a customer's server that refuses a release, and a queue
directory on a full file system.

Every message that a test sends must end in exactly one place: delivered
to the sink once, returned to its sender as a DSN, still held, or refused
with a reply code that its client saw (odtest.assert_accounted).
"""

import contextlib
import errno
import os
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import BARRIER_DOMAIN, MILTER_IDENT, SENDER  # noqa: E402


class SendmailRestartTest(odtest.FeatureTestCase):

    def held_count(self, domain):
        result = self.ctl("-t", "status")
        self.assertEqual(result.returncode, 0, result.stderr)
        for row in result.stdout.splitlines():
            fields = row.split("\t")
            if fields[:2] == ["domain", domain]:
                return int(fields[2])
        return 0

    def test_holds_survive_sendmail_restart(self):
        held = [self.hold(f"user{number}@example.test", "example.test")
                for number in range(3)]
        other = self.hold("user@other-od.test", "other-od.test")
        files_before = self.env.sendmail.held_files()
        sendmail_pid = self.env.sendmail.process.pid

        self.env.sendmail.stop()
        self.assertEqual(self.env.sendmail.process.popen.returncode, 0,
                         self.env.sendmail.process.output())
        self.env.sendmail.start()

        self.assertNotEqual(self.env.sendmail.process.pid, sendmail_pid)
        self.assertEqual(self.env.sendmail.held_files(), files_before)
        reasons = {entry.queue_id: entry.quarantine_reason
                   for entry in self.env.sendmail.queue(quarantined=True)}
        self.assertEqual(len(reasons), 4, reasons)
        self.assertEqual(sorted(set(reasons.values())),
                         ["ondemand [example.test]",
                          "ondemand [other-od.test]"])
        # A normal queue run skips held mail.
        self.env.sendmail.run("-q", "-v")
        self.assertEqual([message for message in self.env.sink.messages
                          if message.sender != SENDER
                          or BARRIER_DOMAIN not in message.recipients[0]],
                         [])
        self.assertEqual(self.held_count("example.test"), 3)
        self.assert_accounted(held + [other], held=4)

        since = self.env.syslog.mark()
        reply = self.etrn("example.test")

        self.assertEqual(reply.code, 253, str(reply))
        self.assertIn("3 pending messages", reply.text)
        done = self.wait_for_release_done("example.test", since)
        self.assertEqual(done.group("delivered"), "3")
        account = self.assert_accounted(held + [other], delivered=3, held=1)
        self.assertEqual(account.held, [other.message_id])
        self.assertEqual(self.held_count("example.test"), 0)


class SinkRefusesTest(odtest.FeatureTestCase):

    def release(self, domain):
        since = self.env.syslog.mark()
        reply = self.etrn(domain)
        self.assertEqual(reply.code, 253, str(reply))
        return self.wait_for_release_done(domain, since)

    def test_temporary_refusal_keeps_mail_held(self):
        held = [self.hold(f"user{number}@example.test", "example.test")
                for number in range(3)]
        self.env.sink.fail_recipients(r"@example\.test$",
                                      "451 4.2.1 mailbox busy, try later")

        done = self.release("example.test")

        self.assertEqual(done.group("delivered"), "0")
        self.assertEqual(done.group("still_held"), "3")
        self.assert_accounted(held, held=3)

        self.env.sink.accept_all()
        done = self.release("example.test")

        self.assertEqual(done.group("delivered"), "3")
        self.assert_accounted(held, delivered=3)

    def test_permanent_refusal_returns_dsn(self):
        refused = [self.hold(f"gone{number}@example.test", "example.test")
                   for number in range(2)]
        accepted = self.hold("user@example.test", "example.test")
        self.env.sink.fail_recipients(r"^gone\d@example\.test$",
                                      "550 5.1.1 no such user")

        since = self.env.syslog.mark()
        done = self.release("example.test")

        self.assertEqual(done.group("delivered"), "3")
        for message in refused:
            queue_id = message.last_attempt.queue_id
            self.env.syslog.wait_for(
                rf"^{queue_id}: to=<{message.recipients[0]}>.*"
                r"stat=User unknown", since=since)
        # The DSNs go to the sender, whose mail the sink accepts.
        def dsns_to_sender():
            dsns = [message for message in self.env.sink.messages_to(SENDER)
                    if message.sender == ""]
            return dsns if len(dsns) >= len(refused) else None
        dsns = odtest.wait_until(dsns_to_sender, timeout=30,
                                 description="DSNs to the sender at the sink")
        self.assertEqual(len(dsns), len(refused))
        for dsn in dsns:
            self.assertIn(b"multipart/report", dsn.data)
            self.assertIn(b"550 5.1.1", dsn.data)
        account = self.assert_accounted(refused + [accepted], returned=2,
                                        delivered=1)
        self.assertEqual(sorted(account.returned),
                         sorted(message.message_id for message in refused))
        self.assertEqual(self.env.sendmail.held_files(), [])


class FullQueueTest(odtest.FeatureTestCase):
    """The queue directory is a small tmpfs, mounted before sendmail starts."""

    tmpfs_size = "4m"

    def prepare(self):
        queue_dir = self.env.sendmail.queue_dir
        os.makedirs(queue_dir, mode=0o700)
        odtest.mount_tmpfs(queue_dir, self.tmpfs_size)
        self.filler = os.path.join(queue_dir, "filler")
        # The environment must stop before the file system can go.
        self.addCleanup(self.remove_queue_mount)

    def remove_queue_mount(self):
        self.env.close()
        odtest.unmount(self.env.sendmail.queue_dir)
        shutil.rmtree(self.env.workdir, ignore_errors=True)

    def fill(self, leave_free=0):
        """Write the filler file until the file system has at most leave_free octets free."""
        chunk = b"\0" * 65536
        with open(self.filler, "ab") as stream:
            while True:
                stats = os.statvfs(self.filler)
                free = stats.f_bavail * stats.f_frsize
                if free <= leave_free:
                    break
                try:
                    stream.write(chunk[:max(4096, min(len(chunk),
                                                      free - leave_free))])
                    stream.flush()
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break

    def free_space(self):
        os.unlink(self.filler)

    def assert_no_leftovers(self, before):
        """Assert that the queue contains no file but the filler and the names in before.

        The sendmail process of the refused session removes its data file
        only after its reply, so this waits for that first.
        """
        def leftovers():
            return sorted(set(os.listdir(self.env.sendmail.queue_dir))
                          - set(before) - {"filler"})
        with contextlib.suppress(odtest.WaitTimeout):
            odtest.wait_until(lambda: not leftovers(), interval=0.05,
                              description="sendmail to clean up its files")
        self.assertEqual(leftovers(), [])

    def test_full_queue_tempfails_then_holds(self):
        earlier = self.hold("earlier@example.test", "example.test")
        held_file = f"hf{earlier.last_attempt.queue_id}"
        with open(os.path.join(self.env.sendmail.queue_dir, held_file),
                  "rb") as stream:
            held_before = stream.read()
        files_before = os.listdir(self.env.sendmail.queue_dir)
        self.fill()
        message = odtest.TrackedMessage.create(SENDER, ["user@example.test"])

        result = message.send(self.env.sendmail.port)

        # sendmail checks the free space at MAIL (452 4.4.5) with
        # figures that its daemon refreshes now and then, so the first
        # message after the file system filled may get as far as DATA.
        refusal = message.refusal()
        self.assertIsNotNone(refusal, str(result))
        self.assertIn(refusal.code, (421, 452), str(result))
        self.assertRegex(refusal.text, r"^4\.[34]\.[15] .*[Dd]isk space")
        self.assert_no_leftovers(files_before)
        self.assertEqual(self.env.sendmail.held_files(), [held_file])
        with open(os.path.join(self.env.sendmail.queue_dir, held_file),
                  "rb") as stream:
            self.assertEqual(stream.read(), held_before)
        self.assert_accounted([earlier, message], held=1, refused=1)

        self.free_space()
        result = message.send(self.env.sendmail.port)

        self.assert_held(result, ["user@example.test"], "example.test")
        self.assert_accounted([earlier, message], held=2)

    def test_message_larger_than_free_space(self):
        # Free space above sendmail's MinFreeBlocks (100 blocks) passes
        # the check at MAIL, so the write of the message itself fails.
        self.fill(leave_free=1024 * 1024)
        body = "".join(f"line {number:06d} of a large message\n"
                       for number in range(70000))
        data = odtest.make_message(SENDER, ["user@example.test"], body=body)
        message = odtest.TrackedMessage(
            message_id=odtest.message_id_of(data), sender=SENDER,
            recipients=["user@example.test"], data=data)
        self.assertGreater(len(data), 2 * 1024 * 1024)

        result = message.send(self.env.sendmail.port)

        refusal = message.refusal()
        self.assertIsNotNone(refusal, str(result))
        self.assertEqual(refusal.code // 100, 4, str(result))
        self.assert_no_leftovers([])
        self.assertEqual(self.env.syslog.find_all(r"action=hold",
                                                  ident=MILTER_IDENT), [])
        self.assert_accounted([message], refused=1)

        self.free_space()
        result = message.send(self.env.sendmail.port)

        self.assert_held(result, ["user@example.test"], "example.test")
        self.assert_accounted([message], held=1)


if __name__ == "__main__":
    odtest.main()
