#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""FEATURE(`ondemand'): the lines it generates for each form of its
arguments, that they match what ondemand-cf writes, that sendmail reads
the result, and that ondemand-cf on such a file changes only the delivery
mode and the local-address rules.  Runs as root in a private mount
namespace (sendmail needs a dotted host name); see cftest.py."""

import os
import subprocess
import sys

# No __pycache__ in the source tree, which is read-only under distcheck.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cftest  # noqa: E402

WORKDIR = cftest.enter_namespace()
CF_DIR = cftest.m4_overlay(WORKDIR)
results = cftest.Results()

DEFAULT_FILTER = ("Xondemand, S=unix:/run/ondemand/milter.sock, F=T, "
                  "T=S:10s;R:10s;E:5m")
DEFAULT_MAP = ("Kondemand socket -d10s -T<TMPF> "
               "unix:/run/ondemand/socketmap.sock")


def generate(name, body):
    """Returns the lines of a sendmail.cf built from an mc with body, and
    m4's error output."""
    mc = (f"divert(0)dnl\ninclude(`{CF_DIR}/m4/cf.m4')dnl\n"
          f"OSTYPE(`linux')dnl\n{body}MAILER(`local')dnl\n"
          "MAILER(`smtp')dnl\n")
    path = os.path.join(WORKDIR, name + ".cf")
    with open(path + ".mc", "w") as f:
        f.write(mc)
    result = subprocess.run(["m4", path + ".mc"], capture_output=True,
                            text=True, timeout=60)
    with open(path, "w") as f:
        f.write(result.stdout)
    return path, result.stdout.split("\n"), result.stderr


def ruleset(lines, name):
    """Returns the R lines of the first ruleset called name."""
    start = lines.index("S" + name) + 1
    rules = []
    for line in lines[start:]:
        if line.startswith("S"):
            break
        if line.startswith("R"):
            rules.append(line)
    return rules


def tool_rules():
    """The check_etrn rules in ondemand-cf's expected output."""
    with open(os.path.join(cftest.EXPECTED, "background.cf")) as f:
        return ruleset(f.read().split("\n"), "check_etrn")


def sendmail_reads(name, path):
    parse = subprocess.run([cftest.SENDMAIL, "-C", path, "-bt", "-d0.1"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=120)
    output = parse.stdout + parse.stderr
    results.equal(f"{name}: sendmail reads the file", parse.returncode, 0)
    results.check(f"{name}: sendmail reports no problem",
                  "line " not in output and "WARNING" not in output, output)


def check_defaults():
    path, lines, errors = generate("defaults", "FEATURE(`ondemand')dnl\n")
    results.equal("defaults: m4 is silent", errors, "")
    results.check("defaults: filter line", DEFAULT_FILTER in lines)
    results.check("defaults: filter is an input filter",
                  "O InputMailFilters=ondemand" in lines)
    results.check("defaults: socket map line", DEFAULT_MAP in lines)
    results.check("defaults: delivery mode left alone",
                  "O DeliveryMode=background" in lines)
    results.check("defaults: Local_check_etrn defined",
                  "SLocal_check_etrn" in lines)
    rules = ruleset(lines, "check_etrn")
    expected = tool_rules()
    results.equal("defaults: check_etrn rules are ondemand-cf's",
                  rules[:len(expected)], expected)
    results.equal("defaults: then the site hook", rules[len(expected):],
                  ['R$*\t\t\t$: $>"Local_check_etrn" $1'])
    sendmail_reads("defaults", path)

    # ondemand-cf finds the wiring in place and touches only the rest.
    original = cftest.read_bytes(path)
    status, out, err = cftest.run_tool("-v", "--config", "/dev/null",
                                       "--dry-run", path)
    changes = out[out.index("Changes to"):out.index("--- ")]
    results.equal("defaults: ondemand-cf changes only mode and rules",
                  [line.split(": ", 1)[1] for line in
                   changes.strip().split("\n")[1:]],
                  ['DeliveryMode set to queueonly (was "background")',
                   'commented out the local-address rule "R$=L < @ $=w . >"',
                   'commented out the local-address rule "R$+ < @ $=w . >"'])
    status, out, err = cftest.run_tool("-q", "--config", "/dev/null", path)
    results.equal("defaults: ondemand-cf patch exits 0", status, 0)
    status, out, err = cftest.run_tool("--config", "/dev/null", path)
    results.contains("defaults: ondemand-cf second run changes nothing",
                     out, "already has the ondemand changes")
    status, out, err = cftest.run_tool("-q", "--revert", path)
    results.equal("defaults: ondemand-cf revert restores the file",
                  (status, cftest.read_bytes(path)), (0, original))


def check_arguments():
    body = ("define(`ONDEMAND_MILTER_TIMEOUTS', `C:30s;E:10m')dnl\n"
            "define(`ONDEMAND_SOCKETMAP_TIMEOUT', `3s')dnl\n"
            "INPUT_MAIL_FILTER(`spamfilter', `S=unix:/run/spam.sock')dnl\n"
            "FEATURE(`ondemand', `inet:8890@127.0.0.1', "
            "`unix:/run/od/sm.sock', `deferred')dnl\n")
    path, lines, errors = generate("arguments", body)
    # proto.m4's own warning for deferred mode, which skips DNS lookups.
    results.equal("arguments: m4 warns about deferred mode", errors,
                  "WARNING: Antispam rules not available in deferred "
                  "delivery mode.\n")
    results.check("arguments: filter line",
                  "Xondemand, S=inet:8890@127.0.0.1, F=T, T=C:30s;E:10m"
                  in lines)
    results.check("arguments: appended to other filters",
                  "O InputMailFilters=spamfilter, ondemand" in lines)
    results.check("arguments: socket map line",
                  "Kondemand socket -d3s -T<TMPF> unix:/run/od/sm.sock"
                  in lines)
    results.check("arguments: delivery mode",
                  "O DeliveryMode=deferred" in lines)
    sendmail_reads("arguments", path)

    # The same settings through ondemand-cf give the same two lines.
    with open(os.path.join(WORKDIR, "arguments.conf"), "w") as f:
        f.write("Socket inet:8890@127.0.0.1\nSocketMap unix:/run/od/sm.sock\n")
    status, out, err = cftest.run_tool(
        "-q", "--config", os.path.join(WORKDIR, "arguments.conf"),
        "--milter-timeouts", "C:30s;E:10m", "--socketmap-timeout", "3s",
        "--deferred", "--dry-run", path)
    results.equal("arguments: ondemand-cf dry run exits 0", status, 0)
    results.check("arguments: ondemand-cf shows a diff", "\n--- " in
                  "\n" + out, out)
    results.equal("arguments: ondemand-cf sees the same filter and map",
                  [line for line in out.split("\n")
                   if line[1:2] in ("X", "K", "O")], [])


def check_no_hook():
    path, lines, errors = generate(
        "no-hook", "FEATURE(`ondemand', `', `none', `queueonly')dnl\n")
    results.equal("no hook: m4 is silent", errors, "")
    results.check("no hook: default filter", DEFAULT_FILTER in lines)
    results.check("no hook: no socket map",
                  not any(line.startswith("Kondemand") for line in lines))
    results.check("no hook: no check_etrn", "Scheck_etrn" not in lines)
    results.check("no hook: queueonly", "O DeliveryMode=queueonly" in lines)
    sendmail_reads("no hook", path)


def check_bad_mode():
    path, lines, errors = generate(
        "bad-mode", "FEATURE(`ondemand', `', `', `fast')dnl\n")
    results.equal("bad mode: m4 error", errors,
                  "*** ERROR: FEATURE(`ondemand'): the delivery mode must be "
                  "queueonly or deferred, not fast\n")


check_defaults()
check_arguments()
check_no_hook()
check_bad_mode()
results.finish()
