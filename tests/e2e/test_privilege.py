#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of the daemon's privileges and socket permissions.

The daemon runs as a user that each test adds for itself: bind-mounted
copies of /etc/passwd and /etc/group, visible only in the test's private
mount namespace and unmounted when the test ends. Nothing changes in the
machine's own user database.
"""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402
from odtest import MILTER_IDENT  # noqa: E402

TEST_USER = "ondemand-e2e"
OTHER_USER = "nobody"
# First UID and GID tried for the test user, above Debian's system range.
FIRST_TEST_ID = 61000



def add_private_user(name, directory):
    """Add user name, with a group of its own, to private copies of /etc/passwd and /etc/group.

    The copies are written to directory and bind-mounted over the
    originals, in the private mount namespace only. Returns (uid, gid).
    """
    with open("/etc/passwd", encoding="utf-8") as stream:
        passwd = stream.read()
    with open("/etc/group", encoding="utf-8") as stream:
        group = stream.read()
    used = {int(line.split(":")[2])
            for line in (passwd + group).splitlines()
            if line.count(":") >= 3 and line.split(":")[2].isdigit()}
    free_id = next(number for number in range(FIRST_TEST_ID, 65534)
                   if number not in used)

    passwd_copy = os.path.join(directory, "passwd")
    group_copy = os.path.join(directory, "group")
    odtest.write_file(passwd_copy, passwd.rstrip("\n") + "\n"
                      f"{name}:x:{free_id}:{free_id}:ondemand end-to-end "
                      "test:/nonexistent:/usr/sbin/nologin\n")
    odtest.write_file(group_copy, group.rstrip("\n") + "\n"
                      f"{name}:x:{free_id}:\n")
    odtest.run_mount("--bind", passwd_copy, "/etc/passwd")
    odtest.run_mount("--bind", group_copy, "/etc/group")
    return free_id, free_id


def exchange_as_child(path, request):
    """Connect to path, send request and return a dict with the outcome.

    It runs in the forked child, as the other user.
    """
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(odtest.WAIT_TIMEOUT)
    with client:
        try:
            client.connect(path)
        except OSError as error:
            return {"connected": False, "errno": error.errno}
        reply = b""
        # A daemon that refuses the peer closes at once, so the request
        # may meet a closed connection.
        try:
            client.sendall(request.encode("latin-1"))
            client.shutdown(socket.SHUT_WR)
            while True:
                chunk = client.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
    return {"connected": True, "reply": reply.decode("latin-1")}


def connect_as(path, request, uid, gid):
    """Connect to the unix socket path from a forked child that calls setuid(uid), and return its outcome.

    The child drops its supplementary groups and takes gid as its only
    group, so the peer credentials that the daemon reads are exactly uid
    and gid.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            outcome = exchange_as_child(path, request)
        except Exception as error:  # noqa: BLE001 - reported to the parent
            outcome = {"error": repr(error)}
        try:
            os.write(writer, json.dumps(outcome).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        output = stream.read()
    _, status = os.waitpid(pid, 0)
    outcome = json.loads(output) if status == 0 and output else {}
    if "connected" not in outcome:
        raise odtest.HarnessError(f"socket client as uid {uid} failed "
                                  f"(wait status {status}): {outcome}")
    return outcome


def netstring(text):
    return f"{len(text)}:{text},"


class PrivilegeTest(odtest.FeatureTestCase):
    """The daemon runs with User set, its sockets in a directory that belongs to that user."""

    def prepare(self):
        self.user_dir = tempfile.mkdtemp(prefix="ondemand-e2e-users-")
        self.uid, self.gid = add_private_user(TEST_USER, self.user_dir)
        self.run_dir = tempfile.mkdtemp(prefix="ondemand-e2e-run-")
        os.chown(self.run_dir, self.uid, self.gid)
        os.chmod(self.run_dir, 0o755)
        # The environment must stop before the user and its directory go.
        self.addCleanup(self.remove_user_and_directory)

        milter = self.env.milter
        milter.socket_path = os.path.join(self.run_dir, "milter.sock")
        milter.pid_path = os.path.join(self.run_dir, "milter.pid")
        milter.config.update({"User": TEST_USER, "PidFile": milter.pid_path})
        self.socketmap_socket = os.path.join(self.run_dir, "socketmap.sock")
        self.control_socket = os.path.join(self.run_dir, "control.sock")

    def remove_user_and_directory(self):
        self.env.close()
        odtest.unmount("/etc/group")
        odtest.unmount("/etc/passwd")
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.user_dir, ignore_errors=True)

    @property
    def milter_pid(self):
        return self.env.milter.process.pid

    def other_user_ids(self):
        entry = pwd.getpwnam(OTHER_USER)
        return entry.pw_uid, entry.pw_gid

    def test_every_thread_runs_as_user(self):
        # A held message and an ETRN start the filter's and the socket
        # map's connection threads too.
        held = self.hold("user@example.test", "example.test")
        self.assertEqual(self.etrn("other-od.test").code, 251)

        threads = odtest.thread_ids(self.milter_pid)

        self.assertGreater(len(threads), 3, threads)
        for thread in threads:
            status = odtest.process_status(f"{self.milter_pid}/task/{thread}")
            if status is None:
                continue        # a connection thread that has ended
            with self.subTest(thread=thread, name=status["Name"]):
                self.assertEqual(odtest.status_ids(status, "Uid"),
                                 [self.uid] * 4)
                self.assertEqual(odtest.status_ids(status, "Gid"),
                                 [self.gid] * 4)
                self.assertEqual(status["Groups"].split(), [str(self.gid)])
                self.assertEqual(int(status["CapEff"], 16), 0)
        self.assert_accounted([held], held=1)

    def test_only_helper_is_root(self):
        helper = odtest.release_helper_pid(self.milter_pid)

        self.assertEqual(odtest.child_pids(self.milter_pid), [helper])
        status = odtest.process_status(helper)
        self.assertEqual(odtest.status_ids(status, "Uid"), [0] * 4)
        self.assertEqual(status["PPid"], str(self.milter_pid))
        self.env.syslog.wait_for(rf"^release helper started: pid={helper} ",
                                 ident=MILTER_IDENT)
        self.assertEqual(self.env.syslog.find_all(
            r"release helper runs as uid", ident=MILTER_IDENT), [])
        daemon = odtest.process_status(self.milter_pid)
        self.assertEqual(odtest.status_ids(daemon, "Uid"), [self.uid] * 4)

    def test_release_as_user(self):
        held = [self.hold(f"user{number}@example.test", "example.test")
                for number in range(2)]
        since = self.env.syslog.mark()

        reply = self.etrn("example.test")

        self.assertEqual(reply.code, 253, str(reply))
        self.wait_for_release_done("example.test", since)
        self.assert_accounted(held, delivered=2)

    def test_sockets_belong_to_user(self):
        for path in (self.env.milter.socket_path, self.socketmap_socket,
                     self.control_socket):
            with self.subTest(path=path):
                status = os.stat(path)
                self.assertEqual(status.st_uid, self.uid)
                self.assertEqual(status.st_gid, self.gid)
        for path in (self.socketmap_socket, self.control_socket):
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o660)

    def test_other_user_cannot_open_sockets(self):
        other_uid, other_gid = self.other_user_ids()
        requests = {self.socketmap_socket:
                    netstring("ondemand example.test/127.0.0.1"),
                    self.control_socket: "STATUS\n"}

        for path, request in requests.items():
            with self.subTest(path=path):
                result = connect_as(path, request, other_uid, other_gid)
                self.assertFalse(result["connected"], result)
                self.assertEqual(result["errno"], 13, result)

    def test_daemon_refuses_other_user(self):
        # With the sockets opened to everybody by mistake, the daemon's
        # own check on the peer's credentials still keeps others out.
        other_uid, other_gid = self.other_user_ids()
        requests = {self.socketmap_socket:
                    ("socketmap", netstring("ondemand example.test/127.0.0.1")),
                    self.control_socket: ("control", "STATUS\n")}
        for path in requests:
            os.chmod(path, 0o666)
        since = self.env.syslog.mark()

        for path, (name, request) in requests.items():
            with self.subTest(server=name):
                refused = connect_as(path, request, other_uid, other_gid)
                self.assertTrue(refused["connected"], refused)
                self.assertEqual(refused["reply"], "")
                self.env.syslog.wait_for(
                    rf"^{name}: refused a connection from uid {other_uid}$",
                    since=since, ident=MILTER_IDENT)

                # The same user with the socket group as its group, the
                # daemon's user and root are let in.
                for uid, gid in ((other_uid, self.gid),
                                 (self.uid, self.gid), (0, 0)):
                    allowed = connect_as(path, request, uid, gid)
                    self.assertTrue(allowed["connected"], allowed)
                    self.assertNotEqual(allowed["reply"], "",
                                        f"uid {uid} gid {gid}")
        self.assertTrue(self.env.milter.running)


class SocketDirectoryTest(odtest.EnvironmentTestCase):
    """The daemon checks the directory of each of its sockets before it creates them."""

    environment_options = {"milter": False}

    def write_config(self, directory, key):
        config = {"Socket": f"unix:{self.env.workdir}/milter.sock",
                  "PidFile": f"{self.env.workdir}/milter.pid",
                  "Domain": "example.test",
                  "SendmailConfig": self.env.sendmail.cf_path}
        config[key] = (f"{directory}/control.sock" if key == "ControlSocket"
                       else f"unix:{directory}/{key.lower()}.sock")
        path = os.path.join(self.env.workdir, "ondemand.conf")
        odtest.write_file(path, "".join(f"{name} {value}\n"
                                        for name, value in config.items()))
        return path

    def launch_milter(self, config_path):
        with open(os.path.join(self.env.workdir, "milter.out"), "ab") as out:
            return subprocess.Popen(
                [odtest.default_milter_path(), "-f", "-c", config_path],
                stdout=out, stderr=subprocess.PIPE, text=True)

    def test_world_writable_directory_refused(self):
        directory = tempfile.mkdtemp(prefix="ondemand-e2e-open-")
        self.addCleanup(shutil.rmtree, directory, True)
        os.chmod(directory, 0o777)

        for key in ("Socket", "SocketMap", "ControlSocket"):
            with self.subTest(key=key):
                process = self.launch_milter(self.write_config(directory, key))
                try:
                    _, stderr = process.communicate(timeout=odtest.WAIT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
                    self.fail(f"ondemand-milter started with {key} in a "
                              "directory that every user can write")
                self.assertEqual(process.returncode, 69, stderr)
                self.assertIn(f"socket directory {directory} is writable by "
                              "every user and has no sticky bit", stderr)
                self.assertEqual(os.listdir(directory), [])
                self.assertFalse(os.path.exists(
                    f"{self.env.workdir}/milter.pid"))

    def test_sticky_directory_accepted(self):
        directory = tempfile.mkdtemp(prefix="ondemand-e2e-sticky-")
        self.addCleanup(shutil.rmtree, directory, True)
        os.chmod(directory, 0o1777)
        process = self.launch_milter(self.write_config(directory, "SocketMap"))
        try:
            # SIGTERM stops the daemon cleanly only once it runs its
            # libmilter loop, after the index rebuild has begun.
            self.env.syslog.wait_for(r"hold index built from the queue",
                                     ident=MILTER_IDENT)
            self.assertIsNone(process.poll())
            self.assertTrue(odtest.unix_socket_accepts(
                f"{directory}/socketmap.sock"))
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                while process.poll() is None:
                    odtest.unix_socket_accepts(f"{self.env.workdir}/milter.sock")
                    try:
                        process.wait(0.1)
                    except subprocess.TimeoutExpired:
                        continue
            process.stderr.close()
        self.assertEqual(process.returncode, 0)


if __name__ == "__main__":
    odtest.main()
