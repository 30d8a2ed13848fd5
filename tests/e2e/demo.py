#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Show the ondemand hold path on a private sendmail, for an operator.

Starts sendmail on 127.0.0.1 with ondemand-milter attached and an SMTP sink
that replaces every remote server. Sends one message to an on-demand domain
and one to another domain. Prints what an operator would see: the milter's
syslog line, the mailq -qQ entry of the held message, and the other message
arriving at the sink. Everything is stopped at the end.

Run it as root from the build directory with `make demo`, or directly with
ONDEMAND_MILTER set to the milter's path. Exits 1 when a step did not
happen as shown, and 77 when the machine lacks root, sendmail or m4.
"""

import os
import sys
import textwrap

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import odtest  # noqa: E402

ON_DEMAND_DOMAIN = "example.test"
SENDER = "alice@client.test"
HELD_RECIPIENT = f"customer@{ON_DEMAND_DOMAIN}"
OTHER_RECIPIENT = "bob@other.test"


class DemoFailure(Exception):
    """A step of the demo did not produce what it shows."""


def show(text=""):
    print(text, flush=True)


def indent(text):
    return textwrap.indent(text.rstrip("\n"), "    ")


def send_and_show(env, recipient):
    """Send one message, print the SMTP replies and return the SmtpTransaction."""
    show(f"$ send mail from <{SENDER}> to <{recipient}>")
    result = env.send(SENDER, [recipient])
    show(indent(f"MAIL FROM    -> {result.mail}\n"
                f"RCPT TO      -> {result.rcpt_reply(recipient)}\n"
                f"end of data  -> {result.data}"))
    if result.queue_id is None:
        raise DemoFailure(f"sendmail did not accept the message to "
                          f"{recipient}: {result}")
    return result


def demonstrate_hold(env):
    show(f"1. A message to the on-demand domain {ON_DEMAND_DOMAIN} is held.")
    show()
    result = send_and_show(env, HELD_RECIPIENT)
    queue_id = result.queue_id
    show()

    try:
        line, _ = env.syslog.wait_for(rf"^{queue_id}: action=hold ",
                                      ident=odtest.MILTER_IDENT)
    except odtest.WaitTimeout as error:
        raise DemoFailure(f"no hold line in syslog for {queue_id}: "
                          f"{error}") from error
    show("Syslog (facility mail), one line per held message:")
    show(indent(str(line)))
    show()

    listing = env.sendmail.queue_listing(quarantined=True)
    show(f"$ mailq -qQ    # held messages; here: sendmail -C "
         f"{env.sendmail.cf_path} -bp -qQ")
    show(indent(listing.expandtabs()))
    show()
    entries = {entry.queue_id: entry
               for entry in odtest.parse_queue_listing(listing)}
    expected_reason = f"ondemand [{ON_DEMAND_DOMAIN}]"
    if queue_id not in entries:
        raise DemoFailure(f"mailq -qQ does not list {queue_id}")
    if entries[queue_id].quarantine_reason != expected_reason:
        raise DemoFailure(f"{queue_id} is quarantined with reason "
                          f"{entries[queue_id].quarantine_reason!r}, "
                          f"expected {expected_reason!r}")
    if f"hf{queue_id}" not in env.sendmail.held_files():
        raise DemoFailure(f"no hf{queue_id} file in {env.sendmail.queue_dir}")
    show(f"$ sendmail -q -v    # a normal queue run; here: sendmail -C "
         f"{env.sendmail.cf_path} -q -v")
    # A queue run skips a locked message, so wait until sendmail's session
    # process has let go of it; only the hold can then make the run skip it.
    env.sendmail.wait_until_unlocked(queue_id, quarantined=True)
    queue_run = env.sendmail.run("-q", "-v")
    show(indent(queue_run.stdout + queue_run.stderr or "(no output)"))
    show()
    if f"hf{queue_id}" not in env.sendmail.held_files():
        raise DemoFailure(f"hf{queue_id} is gone after a normal queue run")
    if env.sink.messages_with_queue_id(queue_id):
        raise DemoFailure(f"a normal queue run delivered held message "
                          f"{queue_id}")
    show(f"The queue keeps the message as hf{queue_id}, and the queue run "
         "left it alone: it waits for a release.")
    show()
    return queue_id


def demonstrate_delivery(env):
    show("2. A message to any other domain passes untouched.")
    show()
    result = send_and_show(env, OTHER_RECIPIENT)
    show()
    try:
        message = env.sink.wait_for_queue_id(result.queue_id)
    except odtest.WaitTimeout as error:
        raise DemoFailure(f"message {result.queue_id} did not reach the sink: "
                          f"{error}") from error
    recipients = ", ".join(f"<{address}>" for address in message.recipients)
    show(f"The SMTP sink on 127.0.0.1:{env.sink.port} received message "
         f"{result.queue_id}:")
    show(indent(f"from <{message.sender}> to {recipients}, "
                f"{len(message.data)} bytes"))
    show()


def main():
    odtest.check_prerequisites()
    try:
        odtest.enter_namespace()
    except odtest.HarnessError as error:
        show(f"demo failed: cannot set up the private test namespace: {error}")
        return 1
    odtest.install_signal_handlers()

    env = odtest.Environment(domains=[ON_DEMAND_DOMAIN])
    show("ondemand demo: a private sendmail with ondemand-milter attached")
    show()
    try:
        env.start()
        show(indent(f"sendmail     127.0.0.1:{env.sendmail.port} "
                    f"(pid {env.sendmail.process.pid}, "
                    f"config {env.sendmail.cf_path})\n"
                    f"milter       {env.milter.binary} "
                    f"(pid {env.milter.process.pid}), "
                    f"on-demand domain: {ON_DEMAND_DOMAIN}\n"
                    f"remote mail  SMTP sink on 127.0.0.1:{env.sink.port}"))
        show()
        held_queue_id = demonstrate_hold(env)
        demonstrate_delivery(env)
        if env.sink.messages_with_queue_id(held_queue_id):
            raise DemoFailure(f"held message {held_queue_id} reached the sink")
    except (DemoFailure, odtest.HarnessError) as error:
        show(f"demo failed: {error}")
        show()
        show(env.transcript())
        return 1
    finally:
        env.close()
    show("All processes stopped. Demo complete.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
