#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""ondemand-cf on real files: exact output for each fixture, idempotence,
--revert back to the original bytes, --dry-run, mode and owner kept, a
sendmail.cf generated from Debian's sendmail-cf, and exact errors for bad
input (each leaving the file untouched).  Runs as root in a private mount
namespace; see cftest.py."""

import gzip
import os
import re
import shutil
import stat
import subprocess
import sys

# No __pycache__ in the source tree, which is read-only under distcheck.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cftest  # noqa: E402

WORKDIR = cftest.enter_namespace()
CONFIG = os.path.join(cftest.FIXTURES, "ondemand.conf")
results = cftest.Results()

# Owner and group that the tool must keep; any numbers will do for root.
OWNER, GROUP, MODE = 4321, 12, 0o640


def attributes(path):
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def new_case(name, source, mode=MODE):
    """Copies source into WORKDIR/name/sendmail.cf with the test owner."""
    directory = os.path.join(WORKDIR, name)
    os.makedirs(directory)
    target = os.path.join(directory, "sendmail.cf")
    shutil.copyfile(source, target)
    os.chown(target, OWNER, GROUP)
    os.chmod(target, mode)
    return directory, target


def extract_block(expected_text):
    """Returns the lines added at the end of a patched file."""
    return expected_text[expected_text.index("#ondemand-cf:begin"):]


def check_dry_run(name, directory, target, original, expected, options):
    status, out, err = cftest.run_tool("-q", "-c", CONFIG, "--dry-run",
                                       *options, target)
    results.equal(f"{name}: dry run exits 0", status, 0)
    results.equal(f"{name}: dry run keeps the file",
                  cftest.read_bytes(target), original)
    results.equal(f"{name}: dry run leaves no other file",
                  sorted(os.listdir(directory)), ["sendmail.cf"])
    results.check(f"{name}: dry run prints a diff",
                  out.startswith(f"--- {target}\n+++ {target} (ondemand-cf)"
                                 "\n@@ "), out[:200])
    # The printed diff must turn the original into the expected output.
    results.equal(f"{name}: diff gives the expected file",
                  cftest.apply_unified_diff(original, out.encode()), expected)
    if shutil.which("patch") is None:
        print(f"NOTE: {name}: patch(1) is not installed; the diff was "
              "applied by the test only")
        return
    diff_file = os.path.join(WORKDIR, name + ".diff")
    patched = os.path.join(WORKDIR, name + ".patched")
    with open(diff_file, "w", newline="") as f:
        f.write(out)
    applied = subprocess.run(["patch", "--binary", "--quiet", "-o", patched,
                              target, diff_file], capture_output=True,
                             text=True)
    results.equal(f"{name}: diff applies with patch(1)", applied.returncode,
                  0)
    if applied.returncode == 0:
        results.equal(f"{name}: patch(1) gives the expected file",
                      cftest.read_bytes(patched), expected)


def check_fixture(name, fixture, options):
    source = os.path.join(cftest.FIXTURES, fixture + ".cf")
    expected = cftest.read_bytes(os.path.join(cftest.EXPECTED, name + ".cf"))
    directory, target = new_case(name, source)
    original = cftest.read_bytes(target)
    backup = target + ".ondemand-cf.bak"

    check_dry_run(name, directory, target, original, expected, options)

    status, out, err = cftest.run_tool("-c", CONFIG, *options, target)
    results.equal(f"{name}: patch exits 0", status, 0)
    results.equal(f"{name}: output is exact", cftest.read_bytes(target),
                  expected)
    results.equal(f"{name}: mode and owner kept", attributes(target),
                  (MODE, OWNER, GROUP))
    results.equal(f"{name}: backup holds the original",
                  cftest.read_bytes(backup), original)
    results.equal(f"{name}: backup has mode and owner", attributes(backup),
                  (MODE, OWNER, GROUP))
    results.equal(f"{name}: no temporary file left",
                  sorted(os.listdir(directory)),
                  ["sendmail.cf", "sendmail.cf.ondemand-cf.bak"])
    results.contains(f"{name}: reports the backup", out,
                     f"Updated {target}; the previous version is in "
                     f"{backup}\n")

    status, out, err = cftest.run_tool("-c", CONFIG, *options, target)
    results.equal(f"{name}: second run exits 0", status, 0)
    results.equal(f"{name}: second run says so", out,
                  f"{target} already has the ondemand changes; nothing to "
                  "change\n")
    results.equal(f"{name}: second run changes nothing",
                  cftest.read_bytes(target), expected)
    results.equal(f"{name}: second run makes no backup",
                  len(os.listdir(directory)), 2)

    status, out, err = cftest.run_tool("-q", "--revert", target)
    results.equal(f"{name}: revert exits 0", status, 0)
    results.equal(f"{name}: revert restores every byte",
                  cftest.read_bytes(target), original)
    results.equal(f"{name}: revert keeps mode and owner", attributes(target),
                  (MODE, OWNER, GROUP))
    results.equal(f"{name}: revert keeps the earlier backup",
                  cftest.read_bytes(backup), original)
    results.equal(f"{name}: revert backs up the patched file",
                  cftest.read_bytes(backup + ".1"), expected)

    status, out, err = cftest.run_tool("--revert", target)
    results.equal(f"{name}: second revert says so", (status, out),
                  (0, f"{target} contains no changes by ondemand-cf; nothing "
                      "to revert\n"))


def check_fixtures():
    cases = [
        ("background", "background", []),
        ("old-style", "old-style", []),
        ("old-style-deferred", "old-style", ["--deferred"]),
        ("crlf", "crlf", []),
        ("other-filter", "other-filter", []),
        ("etrn", "etrn", []),
        ("background-keep", "background",
         ["--keep-delivery-mode", "--no-etrn"]),
        ("background-options", "background",
         ["--milter-socket", "inet:8890@127.0.0.1", "--milter-timeouts", "",
          "--socketmap", "/run/odsm.sock", "--socketmap-timeout", "5s"]),
    ]
    for name, fixture, options in cases:
        check_fixture(name, fixture, options)


def check_already_patched():
    patched = os.path.join(cftest.EXPECTED, "background.cf")
    directory, target = new_case("already-patched", patched)
    status, out, err = cftest.run_tool("-c", CONFIG, target)
    results.equal("already patched: nothing to change", (status, out),
                  (0, f"{target} already has the ondemand changes; nothing "
                      "to change\n"))
    results.equal("already patched: file untouched",
                  cftest.read_bytes(target), cftest.read_bytes(patched))
    results.equal("already patched: no backup", os.listdir(directory),
                  ["sendmail.cf"])

    # New options replace the earlier changes instead of adding to them.
    status, out, err = cftest.run_tool("-q", "-c", CONFIG,
                                       "--keep-delivery-mode", "--no-etrn",
                                       target)
    results.equal("already patched: new options exit 0", status, 0)
    results.equal("already patched: new options give their output",
                  cftest.read_bytes(target),
                  cftest.read_bytes(os.path.join(cftest.EXPECTED,
                                                 "background-keep.cf")))

    status, out, err = cftest.run_tool("-q", "--revert", "--dry-run", target)
    results.equal("already patched: revert dry run exits 0", status, 0)
    results.check("already patched: revert dry run shows the diff",
                  out.startswith(f"--- {target}\n+++ {target} (ondemand-cf "
                                 "--revert)\n"), out[:200])
    results.equal("already patched: revert dry run changes nothing",
                  len(os.listdir(directory)), 2)


def debian_cf(path):
    """Generates sendmail.cf from the sendmail.mc that Debian's sendmail-cf
    ships, without its includes of site files under /etc/mail/m4."""
    with open(os.path.join(cftest.CF_M4_DIR, "debian", "sendmail.mc")) as f:
        mc = "".join(line for line in f
                     if not line.startswith("include(`/etc/mail/m4/"))
    return cftest.run_m4(mc, path)


def check_real_cf():
    if not os.path.exists(os.path.join(cftest.CF_M4_DIR, "debian",
                                       "sendmail.mc")):
        results.check("real cf: Debian's sendmail.mc is installed", False,
                      "install sendmail-cf")
        return
    source = debian_cf(os.path.join(WORKDIR, "debian.cf"))
    directory, target = new_case("real", source, mode=0o644)
    original = cftest.read_bytes(target).decode()

    # The expected result, built line by line from the generated file.
    lines = original.split("\n")
    mode_lines = [i for i, line in enumerate(lines)
                  if line == "O DeliveryMode=background"]
    parse1 = lines.index("SParse1")
    local_rules = [i for i, line in enumerate(lines)
                   if i > parse1 and (line.startswith("R$=L < @ $=w . >\t") or
                                      line.startswith("R$+ < @ $=w . >\t"))]
    results.equal("real cf: one DeliveryMode line", len(mode_lines), 1)
    results.equal("real cf: two local rules in Parse1", len(local_rules), 2)
    for i in local_rules:
        lines[i] = "#ondemand-cf:off " + lines[i]
    i = mode_lines[0]
    lines[i:i + 1] = ["#ondemand-cf:was O DeliveryMode=background",
                      "O DeliveryMode=queueonly"]
    block = extract_block(cftest.read_bytes(
        os.path.join(cftest.EXPECTED, "background.cf")).decode())
    expected = ("\n".join(lines) + block).encode()

    status, out, err = cftest.run_tool("-c", CONFIG, target)
    results.equal("real cf: patch exits 0", status, 0)
    results.equal("real cf: output is exact", cftest.read_bytes(target),
                  expected)
    results.equal("real cf: mode and owner kept", attributes(target),
                  (0o644, OWNER, GROUP))
    results.contains("real cf: shows where mail goes", out,
                     "Where sample addresses go with the new file:\n"
                     "  postmaster@example.test: mailer esmtp, host "
                     "example.test\n")

    parse = subprocess.run([cftest.SENDMAIL, "-C", target, "-bt", "-d0.1"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=120)
    results.equal("real cf: sendmail reads the patched file",
                  parse.returncode, 0)
    results.check("real cf: sendmail reports no line errors",
                  re.search(r": line \d+:", parse.stdout + parse.stderr)
                  is None, parse.stdout + parse.stderr)

    status, out, err = cftest.run_tool("-c", CONFIG, target)
    results.equal("real cf: second run changes nothing",
                  (status, cftest.read_bytes(target)), (0, expected))
    status, out, err = cftest.run_tool("-q", "--revert", target)
    results.equal("real cf: revert restores every byte",
                  (status, cftest.read_bytes(target)),
                  (0, original.encode()))


def check_error(name, path, expected_status, expected_error, *options,
                exact=True):
    """Runs the tool on path, which must come out unchanged."""
    directory = os.path.dirname(path)
    before = sorted(os.listdir(directory))
    content = cftest.read_bytes(path) if os.path.isfile(path) else None
    status, out, err = cftest.run_tool("-c", CONFIG, *options, path)
    results.equal(f"{name}: exit status", status, expected_status)
    if exact:
        results.equal(f"{name}: error message", err, expected_error)
    else:
        results.check(f"{name}: error message", re.fullmatch(
            expected_error, err, re.S) is not None,
            f"{err!r} does not match {expected_error!r}")
    if content is not None:
        results.equal(f"{name}: file untouched", cftest.read_bytes(path),
                      content)
    results.equal(f"{name}: no file added", sorted(os.listdir(directory)),
                  before)
    return err


STRUCTURE_HINT = ("the file is incomplete or truncated: rebuild it or "
                  "restore it from a backup")


def check_bad_input():
    for fixture, message in [
        ("not-a-cf", 'line 3: "set -e" is not a sendmail.cf line (each '
         "line starts with one of the commands C D E F H K M O P Q R S T V "
         "X, with # for a comment, or with white space to continue a line); "
         "check that this is the sendmail.cf file"),
        ("truncated", 'there is no local mailer (an "Mlocal" line), which '
         "sendmail requires; " + STRUCTURE_HINT),
        ("options-only", 'there is no ruleset 0 (an "S0" or "Sparse=0" '
         "line), so this is not a complete sendmail.cf: check the file name, "
         "or rebuild the file from its .mc file"),
        ("no-parse1", "ruleset 0 has no local-address rules and there is no "
         'ruleset Parse1 (an "SParse1" line), where sendmail 8.7 and later '
         "keep them; " + STRUCTURE_HINT),
    ]:
        directory, target = new_case(fixture, os.path.join(cftest.FIXTURES,
                                                           fixture + ".cf"))
        check_error(fixture, target, 65,
                    f"ondemand-cf: {target}: {message}; nothing was "
                    "changed\n")

    # A compressed copy, as if sendmail.cf.gz had been named by mistake.
    directory, target = new_case("binary", os.path.join(cftest.FIXTURES,
                                                        "background.cf"))
    with open(target, "wb") as f:
        f.write(gzip.compress(cftest.read_bytes(os.path.join(
            cftest.FIXTURES, "background.cf")), mtime=0))
    check_error("binary", target, 65, f"ondemand-cf: {target}: the file "
                "contains binary data (a NUL byte at offset 3); a "
                "sendmail.cf is text; nothing was changed\n")

    directory, target = new_case("empty", os.path.join(cftest.FIXTURES,
                                                       "background.cf"))
    open(target, "w").close()
    check_error("empty", target, 65, f"ondemand-cf: {target}: the file is "
                "empty; nothing was changed\n")

    missing = os.path.join(WORKDIR, "missing.cf")
    check_error("missing file", missing, 66, f"ondemand-cf: cannot read "
                f"{missing}: No such file or directory\n")

    directory = os.path.join(WORKDIR, "a-directory.cf")
    os.makedirs(directory)
    check_error("directory", directory, 66,
                f"ondemand-cf: {directory} is not a regular file\n")

    directory, target = new_case("symlink", os.path.join(cftest.FIXTURES,
                                                         "background.cf"))
    link = os.path.join(directory, "link.cf")
    os.symlink(target, link)
    check_error("symbolic link", link, 64, f"ondemand-cf: {link} is a "
                f"symbolic link to {target}; ondemand-cf does not follow "
                "links, because replacing the file would replace the link: "
                "run it on the file the link points to\n")
    results.equal("symbolic link: still a link", os.path.islink(link), True)

    check_unreadable()
    check_read_only_directory()
    check_full_disk()


def check_unreadable():
    """An unreadable file, for a user who is not root."""
    directory = os.path.join(WORKDIR, "unreadable")
    os.makedirs(directory)
    os.chmod(directory, 0o755)
    target = os.path.join(directory, "sendmail.cf")
    shutil.copyfile(os.path.join(cftest.FIXTURES, "background.cf"), target)
    os.chmod(target, 0)
    os.chmod(WORKDIR, 0o755)
    tool = os.path.realpath(cftest.TOOL)
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         tool, "--config", "/dev/null", target], capture_output=True,
        text=True)
    os.chmod(WORKDIR, 0o700)
    results.equal("unreadable: exit status", result.returncode, 66)
    results.equal("unreadable: error message", result.stderr,
                  f"ondemand-cf: cannot read {target}: Permission denied\n")


def mount_tmpfs(path, options):
    os.makedirs(path)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                   check=True)


def check_read_only_directory():
    directory = os.path.join(WORKDIR, "read-only")
    mount_tmpfs(directory, "size=64k,mode=0755")
    target = os.path.join(directory, "sendmail.cf")
    shutil.copyfile(os.path.join(cftest.FIXTURES, "background.cf"), target)
    subprocess.run(["mount", "-o", "remount,ro", directory], check=True)
    check_error("read-only directory", target, 73,
                f"ondemand-cf: cannot create a temporary file next to "
                f"{target}: Read-only file system; {target} is unchanged\n")


def check_full_disk():
    """A disk that fills up while the new file or the backup is written."""
    fixture = os.path.join(cftest.FIXTURES, "background.cf")
    page = os.sysconf("SC_PAGE_SIZE")
    # tmpfs counts whole pages: the original fills the only page, and the
    # new file needs another.
    directory = os.path.join(WORKDIR, "full-new-file")
    mount_tmpfs(directory, f"size={page},mode=0755")
    target = os.path.join(directory, "sendmail.cf")
    shutil.copyfile(fixture, target)
    check_error("full disk, new file", target, 74,
                re.escape(f"ondemand-cf: writing the new file {directory}/"
                          ".sendmail.cf.ondemand-cf.") + r"\w{6}" +
                re.escape(f" failed: No space left on device; {target} is "
                          "unchanged\n"), exact=False)

    # Two pages hold the original and the new file, not the backup.
    directory = os.path.join(WORKDIR, "full-backup")
    mount_tmpfs(directory, f"size={2 * page},mode=0755")
    target = os.path.join(directory, "sendmail.cf")
    shutil.copyfile(fixture, target)
    check_error("full disk, backup", target, 74,
                r".*ondemand-cf: writing the backup " +
                re.escape(f"{target}.ondemand-cf.bak failed: No space left "
                          f"on device; {target} is unchanged\n"), "-q",
                exact=False)


def check_sendmail_rejects():
    # An option that sendmail does not know: the file was broken before.
    directory, target = new_case("unknown-option", os.path.join(
        cftest.FIXTURES, "background.cf"))
    with open(target, "a") as f:
        f.write("O NoSuchOption=1\n")
    err = check_error(
        "sendmail rejects", target, 65,
        r"ondemand-cf: sendmail rejects the new file:\n"
        r"  \S+/\.sendmail\.cf\.ondemand-cf\.\w{6}: line 53: readcf: "
        r"unknown option name NoSuchOption\n"
        r"ondemand-cf: sendmail rejects the current file too:\n"
        + re.escape(f"  {target}: line 52: readcf: unknown option name "
                    f"NoSuchOption\nondemand-cf: {target} is unchanged\n"),
        "-q", exact=False)
    results.check("sendmail rejects: line number shown", "line 52:" in err)

    # A stand-in for sendmail that rejects only the changed file.
    fake = os.path.join(WORKDIR, "fake-sendmail.sh")
    with open(fake, "w") as f:
        f.write('#!/bin/sh\n'
                '# Rejects any sendmail.cf with the ondemand filter line.\n'
                'if grep -q "^Xondemand" "$2"; then\n'
                '  echo "$2: line 7: rejected by the test"; exit 70\n'
                'fi\n'
                'echo "Version 8.17.1.9"\n')
    os.chmod(fake, 0o755)
    directory, target = new_case("fake-sendmail", os.path.join(
        cftest.FIXTURES, "background.cf"))
    check_error(
        "changes rejected", target, 65,
        r"ondemand-cf: sendmail rejects the new file:\n"
        r"  \S+: line 7: rejected by the test\n"
        + re.escape(f"ondemand-cf: the current {target} passes sendmail's "
                    "check, so the changes cause the problem: please report "
                    'it with the output of "ondemand-cf --dry-run"\n'
                    f"ondemand-cf: {target} is unchanged\n"),
        "-q", "--sendmail", fake, exact=False)

    directory, target = new_case("no-sendmail", os.path.join(
        cftest.FIXTURES, "background.cf"))
    check_error("missing sendmail", target, 69,
                "ondemand-cf: cannot run /nonexistent/sendmail: No such file "
                "or directory; give the path of sendmail with --sendmail\n",
                "-q", "--sendmail", "/nonexistent/sendmail")


def check_usage_errors():
    directory, target = new_case("usage", os.path.join(cftest.FIXTURES,
                                                       "background.cf"))
    check_error("bad milter socket", target, 64,
                'ondemand-cf: invalid milter socket "unix:/a b": it must not '
                "contain white space, commas, quotes or control characters\n",
                "--milter-socket", "unix:/a b")
    check_error("bad socket map timeout", target, 64,
                'ondemand-cf: invalid socket map timeout "10q": expected a '
                "number with an optional unit s, m or h, such as 10s\n",
                "--socketmap-timeout", "10q")
    check_error("revert with a mode", target, 64,
                "ondemand-cf: --revert restores the original file and takes "
                "no delivery mode option\n", "--revert", "--deferred")
    status, out, err = cftest.run_tool(target, target)
    results.equal("two files: exit status", status, 64)
    missing = os.path.join(WORKDIR, "missing.conf")
    status, out, err = cftest.run_tool("--config", missing, target)
    results.equal("missing config: exit status", status, 78)
    results.contains("missing config: names the file", err, missing)

    # A block whose end marker was deleted by hand.
    directory, target = new_case("damaged", os.path.join(cftest.EXPECTED,
                                                         "background.cf"))
    text = cftest.read_bytes(target).replace(b"#ondemand-cf:end\n", b"")
    with open(target, "wb") as f:
        f.write(text)
    line = text.split(b"\n").index(b"#ondemand-cf:begin lines added by "
                                   b"ondemand-cf; \"ondemand-cf --revert\" "
                                   b"removes them") + 1
    message = (f"ondemand-cf: {target}: line {line}: the block of added "
               'lines has no "#ondemand-cf:end" line; the file was edited '
               "after ondemand-cf changed it: remove the block by hand or "
               "restore the backup; nothing was changed\n")
    check_error("damaged marker, revert", target, 65, message, "--revert")
    check_error("damaged marker, patch", target, 65, message)


def check_messages():
    # Debian's Makefile rebuilds sendmail.cf from sendmail.mc.
    directory, target = new_case("debian-mc", os.path.join(cftest.FIXTURES,
                                                           "background.cf"))
    mc = os.path.join(directory, "sendmail.mc")
    open(mc, "w").close()
    with open(os.path.join(directory, "Makefile"), "w") as f:
        f.write(f"{target} : {mc}\n\tm4 {mc} > {target}\n")
    status, out, err = cftest.run_tool("-q", "-c", CONFIG, "--dry-run",
                                       target)
    results.contains("sendmail.mc with Makefile: warning", err,
                     f"ondemand-cf: warning: {directory}/Makefile rebuilds "
                     f"{target} from {mc} whenever {mc} is newer")
    results.contains("sendmail.mc with Makefile: points to the feature", err,
                     "add FEATURE(`ondemand') to")
    os.unlink(os.path.join(directory, "Makefile"))
    status, out, err = cftest.run_tool("-q", "-c", CONFIG, "--dry-run",
                                       target)
    results.contains("sendmail.mc alone: warning", err,
                     f"ondemand-cf: warning: {mc} is beside {target}: if you "
                     f"rebuild {target} from it, these changes are lost")

    # An on-demand domain that is one of this host's own names.
    config = os.path.join(WORKDIR, "own-name.conf")
    with open(config, "w") as f:
        f.write("Domain mail.example.test\n")
    directory, target = new_case("loop", os.path.join(cftest.FIXTURES,
                                                      "background.cf"))
    status, out, err = cftest.run_tool("-c", config, "--dry-run", target)
    results.equal("loop: dry run exits 0", status, 0)
    results.contains("loop: warns about the loop", err,
                     "ondemand-cf: warning: postmaster@mail.example.test "
                     "would be sent to this host itself (mail.example.test.),"
                     " and sendmail would report \"mail loops back to me\"")
    results.contains("loop: lists the route", out,
                     "  postmaster@mail.example.test: mailer esmtp, host "
                     "mail.example.test.\n")

    status, out, err = cftest.run_tool("-v", "-c", CONFIG, "--dry-run",
                                       target)
    results.contains("verbose: lists the changes", out,
                     "Changes to " + target + ":\n"
                     '  line 10: DeliveryMode set to queueonly (was '
                     '"background")\n')
    status, out, err = cftest.run_tool("-q", "-c", CONFIG, target)
    results.equal("quiet: prints nothing on stdout", (status, out), (0, ""))

    # Without FILE, the file is SendmailConfig of the configuration.
    directory, target = new_case("sendmail-config", os.path.join(
        cftest.FIXTURES, "background.cf"))
    config = os.path.join(directory, "ondemand.conf")
    with open(config, "w") as f:
        f.write(f"SendmailConfig {target}\nSendmailPath {cftest.SENDMAIL}\n"
                "SocketMap unix:/run/ondemand/socketmap.sock\n"
                "Domain example.test\n")
    status, out, err = cftest.run_tool("-q", "-c", config)
    results.equal("SendmailConfig: patch exits 0", status, 0)
    results.equal("SendmailConfig: names the default file",
                  cftest.read_bytes(target), cftest.read_bytes(
                      os.path.join(cftest.EXPECTED, "background.cf")))
    status, out, err = cftest.run_tool("-q", "--revert", "-c", config)
    results.equal("SendmailConfig: revert uses it too",
                  (status, cftest.read_bytes(target)),
                  (0, cftest.read_bytes(os.path.join(cftest.FIXTURES,
                                                     "background.cf"))))


check_fixtures()
check_already_patched()
check_real_cf()
check_bad_input()
check_sendmail_rejects()
check_usage_errors()
check_messages()
results.finish()
