#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Scripted SMTP server for testing ondemand-etrn.

Listens on 127.0.0.1 at a free port chosen by the kernel, prints
"PORT <number>" on stdout, serves one connection as the chosen scenario
specifies, and exits.  On stdout it reports "CONNECTED" when a client connects,
each command line it receives as "C: <line>", and "END" when it is done.
It exits after --lifetime seconds in any case, so a test that dies cannot
leave it running.

In the scenarios that answer ETRN normally, the reply code comes from the
ETRN argument: a first label "rNNN" (as in "r459.example.test") selects
reply NNN, and any other argument gets 250.

Usage: fake_smtp_server.py --scenario NAME [--lifetime SECONDS]
       fake_smtp_server.py --list
"""

import argparse
import re
import signal
import socket
import sys
import time

HOST = "127.0.0.1"
SERVER_NAME = "mx.example.test"

# Reply texts as RFC 1985 lists them, with enhanced status codes where a
# server supporting RFC 2034 would send them.
ETRN_REPLIES = {
    250: "250 2.0.0 Queuing for node {node} started",
    251: "251 2.0.0 OK, no messages waiting for node {node}",
    252: "252 OK, pending messages for node {node} started",
    253: "253 OK, 17 pending messages for node {node} started",
    421: "421 4.3.2 " + SERVER_NAME + " Service not available, closing "
         "transmission channel",
    458: "458 4.3.0 Unable to queue messages for node {node}",
    459: "459 5.7.1 Node {node} not allowed: not an on-demand domain",
    500: "500 5.5.1 Command unrecognized",
    501: "501 5.5.4 Syntax error in parameters",
    502: "502 5.5.1 Command not implemented",
    354: "354 Enter mail, end with \".\" on a line by itself",
}

EHLO_WITH_ETRN = [
    "250-" + SERVER_NAME + " Hello client, pleased to meet you",
    "250-ENHANCEDSTATUSCODES",
    "250-PIPELINING",
    "250-ETRN",
    "250 HELP",
]
EHLO_WITHOUT_ETRN = [line for line in EHLO_WITH_ETRN if line != "250-ETRN"]


class Session:
    """One client connection: sends replies and logs received commands."""

    def __init__(self, connection):
        self.connection = connection
        self.reader = connection.makefile("rb")

    def send(self, *lines, ending="\r\n"):
        data = "".join(line + ending for line in lines).encode("latin-1")
        self.connection.sendall(data)

    def send_raw(self, data):
        self.connection.sendall(data)

    def read_command(self):
        """Return the next command line without CR LF, or None at EOF."""
        try:
            line = self.reader.readline(2048)
        except (ConnectionError, socket.timeout):
            return None
        if not line:
            return None
        text = line.decode("latin-1").rstrip("\r\n")
        print("C: " + text, flush=True)
        return text

    def wait_for_close(self):
        """Read and log commands, never replying, until the client leaves."""
        while self.read_command() is not None:
            pass


def etrn_reply_for(argument):
    """Return the reply line that the argument selects, see the module doc."""
    node = argument
    match = re.match(r"[@#]?r(\d{3})\.", argument)
    code = int(match.group(1)) if match else 250
    return ETRN_REPLIES[code].format(node=node)


def dialogue(session, greeting="220 " + SERVER_NAME + " ESMTP ready",
             ehlo=None, helo=None, etrn=None):
    """Play a normal session.  Each handler returns the reply lines to
    send, or None to close the connection without replying."""
    if ehlo is None:
        ehlo = lambda argument: EHLO_WITH_ETRN
    if helo is None:
        helo = lambda argument: ["250 " + SERVER_NAME + " Hello"]
    if etrn is None:
        etrn = lambda argument: [etrn_reply_for(argument)]

    session.send(greeting)
    while True:
        command = session.read_command()
        if command is None:
            return
        verb, _, argument = command.partition(" ")
        verb = verb.upper()
        if verb == "QUIT":
            session.send("221 2.0.0 " + SERVER_NAME + " closing connection")
            return
        handler = {"EHLO": ehlo, "HELO": helo, "ETRN": etrn}.get(verb)
        lines = handler(argument) if handler else ["500 5.5.1 Command "
                                                   "unrecognized"]
        if lines is None:
            return
        session.send(*lines)
        if lines[-1].startswith("421"):
            return


def scenario_normal(session):
    dialogue(session)


def scenario_multiline_etrn(session):
    dialogue(session, etrn=lambda argument: [
        "250-2.0.0 Queuing for node " + argument + " started",
        "250 2.0.0 Delivery runs in the background"])


def scenario_bare_lf(session):
    session.send("220 " + SERVER_NAME + " ESMTP", ending="\n")
    while True:
        command = session.read_command()
        if command is None:
            return
        verb = command.split(" ", 1)[0].upper()
        if verb == "EHLO":
            session.send(*EHLO_WITH_ETRN, ending="\n")
        elif verb == "ETRN":
            session.send(etrn_reply_for(command[5:]), ending="\n")
        elif verb == "QUIT":
            session.send("221 bye", ending="\n")
            return
        else:
            session.send("500 unrecognized", ending="\n")


def scenario_no_etrn_advertised(session):
    dialogue(session, ehlo=lambda argument: EHLO_WITHOUT_ETRN)


def scenario_ehlo_rejected(session):
    dialogue(session, ehlo=lambda argument: ["502 5.5.1 Command not "
                                             "implemented"])


def scenario_ehlo_helo_rejected(session):
    dialogue(session,
             ehlo=lambda argument: ["500 5.5.1 Command unrecognized"],
             helo=lambda argument: ["550 5.7.1 Access denied"])


def scenario_ehlo_tempfail(session):
    dialogue(session, ehlo=lambda argument: ["421 4.3.2 Shutting down"])


def scenario_greeting_554(session):
    # RFC 5321 section 3.1: after a 554 greeting the server waits for QUIT
    # and replies to other commands with 503.
    session.send("554 5.7.1 " + SERVER_NAME + " No SMTP service here")
    while True:
        command = session.read_command()
        if command is None:
            return
        if command.upper() == "QUIT":
            session.send("221 2.0.0 " + SERVER_NAME + " closing connection")
            return
        session.send("503 5.5.1 Bad sequence of commands")


def scenario_greeting_421(session):
    session.send("421 4.3.2 " + SERVER_NAME + " Too many connections")


def scenario_multiline_greeting(session):
    dialogue(session, greeting="220-" + SERVER_NAME + " ESMTP\r\n"
             "220-Mail for on-demand domains is held here.\r\n"
             "220 Send ETRN to release it.")


def scenario_never_answers(session):
    session.wait_for_close()


def scenario_no_etrn_reply(session):
    dialogue(session, etrn=lambda argument: session.wait_for_close())


def scenario_slow_drip(session):
    """Send a greeting one octet every 0.5 s, never finishing in time."""
    session.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for octet in b"220 " + b"x" * 100:
        try:
            session.send_raw(bytes([octet]))
        except (ConnectionError, BrokenPipeError):
            return
        time.sleep(0.5)


def scenario_close_before_greeting(session):
    pass


def scenario_close_after_ehlo(session):
    dialogue(session, ehlo=lambda argument: None)


def scenario_garbage_greeting(session):
    session.send("hello world")
    session.wait_for_close()


def scenario_garbage_etrn_reply(session):
    dialogue(session, etrn=lambda argument: ["OK, fine"])


def scenario_long_line(session):
    session.send("220 " + "x" * 5000)
    session.wait_for_close()


def scenario_unterminated_line(session):
    """Send an endless line: the client must stop at its limit."""
    session.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        session.send_raw(b"220 ")
        for _ in range(64):
            session.send_raw(b"y" * 1024)
    except (ConnectionError, BrokenPipeError):
        return
    session.wait_for_close()


def scenario_max_length_line(session):
    # 4096 octets before CR LF: the longest line the client accepts.
    text = "250 2.0.0 "
    dialogue(session, etrn=lambda argument: [
        text + "z" * (4096 - len(text))])


def scenario_code_mismatch(session):
    dialogue(session, etrn=lambda argument: ["250-2.0.0 Queuing started",
                                             "251 2.0.0 Nothing waiting"])


def scenario_control_characters(session):
    dialogue(session, etrn=lambda argument: [
        "250 2.0.0 Queuing \x1b[31mfor\x07 node " + argument + " started"])


SCENARIOS = {
    name[len("scenario_"):].replace("_", "-"): function
    for name, function in globals().items() if name.startswith("scenario_")
}

# Never accepts, and fills its accept queue with its own connections first.
# Linux then drops the SYNs of further clients (unless the sysctl
# net.ipv4.tcp_abort_on_overflow is 1), so their connect() hangs.
ACCEPT_QUEUE_FULL = "accept-queue-full"


def fill_accept_queue(listener):
    """Connect to listener until its accept queue (backlog 0) is full."""
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        try:
            filler.connect(listener.getsockname())
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.2)
    return fillers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario",
                        choices=sorted([*SCENARIOS, ACCEPT_QUEUE_FULL]))
    parser.add_argument("--lifetime", type=float, default=30.0,
                        help="exit after this many seconds in any case")
    parser.add_argument("--list", action="store_true",
                        help="list the scenarios and exit")
    options = parser.parse_args()
    if options.list:
        print("\n".join(sorted([*SCENARIOS, ACCEPT_QUEUE_FULL])))
        return 0
    if options.scenario is None:
        parser.error("--scenario is required")

    signal.signal(signal.SIGALRM, lambda number, frame: sys.exit(3))
    signal.alarm(max(1, int(options.lifetime)))

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))
        if options.scenario == ACCEPT_QUEUE_FULL:
            listener.listen(0)
            fillers = fill_accept_queue(listener)
            print("PORT %d" % listener.getsockname()[1], flush=True)
            time.sleep(options.lifetime)
            for filler in fillers:
                filler.close()
            return 0
        listener.listen(1)
        print("PORT %d" % listener.getsockname()[1], flush=True)
        connection, _ = listener.accept()
        print("CONNECTED", flush=True)
        with connection:
            connection.settimeout(options.lifetime)
            try:
                SCENARIOS[options.scenario](Session(connection))
            except (BrokenPipeError, ConnectionResetError):
                print("SERVER: client closed the connection", flush=True)
    print("END", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
