#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""DNS server on 127.0.0.1 port 53 that receives queries and never replies.

It prints "READY" once it listens on UDP and TCP, and exits after
--lifetime seconds.  etrn-dns-timeout.test runs it inside a private network
namespace, so it reaches no real resolver and blocks no port of the host.
"""

import argparse
import select
import socket
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lifetime", type=float, default=20.0,
                        help="exit after this many seconds")
    options = parser.parse_args()

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen(5)
    print("READY", flush=True)

    connections = []
    deadline = time.monotonic() + options.lifetime
    while time.monotonic() < deadline:
        ready, _, _ = select.select([udp, tcp], [], [],
                                    max(0.0, deadline - time.monotonic()))
        for listener in ready:
            if listener is udp:
                udp.recvfrom(4096)
            else:
                # Keep TCP queries open and unanswered.
                connection, _ = tcp.accept()
                connections.append(connection)
    return 0


if __name__ == "__main__":
    sys.exit(main())
