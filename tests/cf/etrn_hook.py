#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""The ETRN hook against the real sendmail: a test sendmail on 127.0.0.1,
its sendmail.cf patched by ondemand-cf or built with FEATURE(`ondemand'),
a fake socket map server sending each reply of the contract, and an SMTP
client sending ETRN.  Checks the reply line sendmail sends for each answer,
for an unreachable daemon, for a broken or slow one, and that rules of the
site's own still run.  Runs as root in a private mount namespace; see
cftest.py."""

import os
import sys
import time

# No __pycache__ in the source tree, which is read-only under distcheck.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cftest  # noqa: E402

WORKDIR = cftest.enter_namespace()
results = cftest.Results()

# Socket map replies and the ETRN reply that sendmail must send for
# "ETRN example.test".
NODE = "example.test"
STARTED = f"250 2.0.0 Queuing for node {NODE} started"
UNABLE = f"458 4.3.0 Unable to queue messages for node {NODE}"
REPLIES = [
    ("NOTFOUND ", STARTED),
    ("OK ACCEPT", STARTED),
    ("OK ACCEPT 0", f"251 2.0.0 OK no messages waiting for node {NODE}"),
    ("OK ACCEPT 3", f"253 2.0.0 OK 3 pending messages for node {NODE} "
     "started"),
    ("OK DENY", f"459 4.7.1 Node {NODE} not allowed"),
    ('OK DENY "it is not an on-demand domain here, sorry."',
     f"459 4.7.1 Node {NODE} not allowed: it is not an on-demand domain "
     "here, sorry."),
    # Unquoted text is split into sendmail tokens and joined again.
    ("OK DENY not yours, sorry.",
     f"459 4.7.1 Node {NODE} not allowed: not yours,sorry."),
    ("OK INVALID", f"501 5.5.4 Invalid node name {NODE}"),
    ('OK INVALID "no such node"',
     f"501 5.5.4 Invalid node name {NODE}: no such node"),
    ("OK TEMP", UNABLE),
    ('OK TEMP "release helper not available"',
     UNABLE + ": release helper not available"),
    ("TEMP the daemon is busy", UNABLE),
    ("OK SOMETHING ELSE", UNABLE),
    # sendmail treats PERM like NOTFOUND and handles the ETRN itself.
    ("PERM broken", STARTED),
    ("close", UNABLE),
    ("raw:9:OK ACCEPT;", "451 4.3.0 socket_map_lookup(ondemand): missing ',' "
     "in reply"),
]


def etrn(port, argument=NODE):
    answer = cftest.smtp_etrn(port, argument)
    return answer[-1] if answer else "(no reply)"


class Setup:
    """A test sendmail with its fake socket map and fake mail filter."""

    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(WORKDIR, name)
        os.makedirs(self.dir)
        self.port = cftest.free_port()
        self.map_socket = os.path.join(self.dir, "socketmap.sock")
        self.milter_socket = os.path.join(self.dir, "milter.sock")
        self.cf = os.path.join(self.dir, "sendmail.cf")
        self.map = None
        self.milter = None
        self.sendmail = None

    def start(self):
        self.map = cftest.FakeSocketMap(self.map_socket)
        self.milter = cftest.FakeMilter(self.milter_socket)
        self.sendmail = cftest.TestSendmail(
            self.cf, self.port, os.path.join(self.dir, "sendmail.log"))
        self.sendmail.start()

    def stop(self):
        for part in (self.sendmail, self.map, self.milter):
            if part is not None:
                part.stop()


SITE_RULES = ("Rblocked . test\t\t$#error $@ 4.7.1 $: \"459 Node "
              "blocked.test not allowed by this site\"\n")


def patched_setup(name, site_ruleset):
    """Generates a test sendmail.cf with m4 and patches it with
    ondemand-cf.  site_ruleset is "" or the name of a ruleset of the
    site's own (check_etrn) that gets SITE_RULES."""
    setup = Setup(name)
    body = ""
    if site_ruleset:
        body = f"LOCAL_RULESETS\nS{site_ruleset}\n{SITE_RULES}"
    mc = cftest.test_mc(setup.dir, setup.port, body=body)
    cftest.run_m4(mc, setup.cf)
    status, out, err = cftest.run_tool(
        "-q", "--config", "/dev/null", "--milter-socket",
        "unix:" + setup.milter_socket, "--socketmap",
        "unix:" + setup.map_socket, "--socketmap-timeout", "2s", setup.cf)
    results.equal(f"{name}: ondemand-cf patches the test file", status, 0)
    if status != 0:
        print(err)
    return setup


def feature_setup(name):
    """Builds the test sendmail.cf with FEATURE(`ondemand') and a site rule
    in Local_check_etrn."""
    setup = Setup(name)
    cf_dir = cftest.m4_overlay(WORKDIR)
    body = (f"define(`ONDEMAND_SOCKETMAP_TIMEOUT', `2s')dnl\n"
            f"FEATURE(`ondemand', `unix:{setup.milter_socket}', "
            f"`unix:{setup.map_socket}', `queueonly')dnl\n")
    mc = cftest.test_mc(setup.dir, setup.port, cf_dir=cf_dir, body=body)
    mc += f"LOCAL_RULESETS\nSLocal_check_etrn\n{SITE_RULES}"
    cftest.run_m4(mc, setup.cf)
    return setup


def check_replies(setup, replies):
    for reply, expected in replies:
        setup.map.reply = reply
        results.equal(f"{setup.name}: {reply!r} gives {expected[:3]}",
                      etrn(setup.port), expected)


def check_full_contract(setup):
    setup.map.requests.clear()
    check_replies(setup, REPLIES)
    results.check(f"{setup.name}: the filter was consulted",
                  setup.milter.connections > 0)

    # The key is the argument, "/" and the client's address, in lower case;
    # @ and # prefixes stay.
    setup.map.reply = "NOTFOUND "
    setup.map.requests.clear()
    for argument in ("Example.TEST", "@Example.TEST", "#queue1"):
        etrn(setup.port, argument)
    results.equal(f"{setup.name}: socket map keys", setup.map.requests,
                  ["ondemand example.test/127.0.0.1",
                   "ondemand @example.test/127.0.0.1",
                   "ondemand #queue1/127.0.0.1"])
    setup.map.reply = "OK DENY"
    results.equal(f"{setup.name}: reply keeps the client's spelling",
                  etrn(setup.port, "@Example.TEST"),
                  "459 4.7.1 Node @Example.TEST not allowed")

    # A daemon that replies too late: sendmail's own error, not 458.
    setup.map.reply = "OK ACCEPT"
    setup.map.delay = 3
    started = time.monotonic()
    results.equal(f"{setup.name}: slow daemon",
                  etrn(setup.port), "451 4.3.0 socket_map_lookup(ondemand): "
                  "read timeout: Resource temporarily unavailable")
    results.check(f"{setup.name}: slow daemon waits the -d2s timeout only",
                  time.monotonic() - started < 10)
    setup.map.delay = 0

    # The daemon is down: first a stale socket, then no socket at all.
    setup.map.stop()
    open(setup.map_socket, "w").close()
    os.chmod(setup.map_socket, 0o600)
    results.equal(f"{setup.name}: socket is no socket", etrn(setup.port),
                  UNABLE)
    os.unlink(setup.map_socket)
    results.equal(f"{setup.name}: daemon down", etrn(setup.port), UNABLE)

    # With the filter down too, F=T makes sendmail refuse before check_etrn.
    setup.milter.stop()
    results.equal(f"{setup.name}: filter down", etrn(setup.port),
                  "451 4.3.2 Please try again later")


def check_site_rules(setup):
    setup.map.reply = "NOTFOUND "
    results.equal(f"{setup.name}: site rule still runs",
                  etrn(setup.port, "blocked.test"),
                  "459 4.7.1 Node blocked.test not allowed by this site")
    results.equal(f"{setup.name}: other node passes the site rule",
                  etrn(setup.port, "other.test"),
                  "250 2.0.0 Queuing for node other.test started")
    setup.map.reply = "OK ACCEPT 2"
    results.equal(f"{setup.name}: on-demand domain answered first",
                  etrn(setup.port, "blocked.test"),
                  "253 2.0.0 OK 2 pending messages for node blocked.test "
                  "started")
    check_replies(setup, [("OK DENY", f"459 4.7.1 Node {NODE} not allowed"),
                          ("TEMP x", UNABLE)])


def run(setup, checks):
    try:
        setup.start()
    except RuntimeError as error:
        results.check(f"{setup.name}: test sendmail starts", False,
                      str(error))
        setup.stop()
        return
    try:
        for check in checks:
            check(setup)
    finally:
        setup.stop()


run(patched_setup("patched", ""), [check_full_contract])
run(patched_setup("patched-site-rules", "check_etrn"), [check_site_rules])
run(feature_setup("feature"), [check_site_rules, check_full_contract])
results.finish()
