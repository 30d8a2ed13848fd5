/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A daemon without its release helper, for the fuzz targets of the socket
 * map and the control socket.  It has a fixed configuration, stand-ins for
 * the release functions and a way to run one connection handler on a
 * socketpair.  The real release functions are left out because they talk
 * to the root release helper, which runs sendmail.
 */
#ifndef FUZZ_DAEMON_H
#define FUZZ_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "od_listen.h"

/* Maximum input size of fuzz_serve, because more could fill the socket. */
#define FUZZ_SERVE_MAX 65536

/*
 * Installs the fixed configuration as the daemon's current one and keeps
 * syslog quiet.  The configuration has the on-demand domains
 * example.test, .branch.example.test and xn--bcher-kva.example, and
 * EtrnAllow lines for the first two.
 */
void fuzz_daemon_init(void);

/*
 * Writes data to one end of a socketpair, closes that end for writing,
 * runs handler on the other end as a connection of root, and returns what
 * the handler wrote (malloc'ed, NUL-terminated, *length octets).
 */
char *fuzz_serve(od_connection_handler handler, const uint8_t *data,
    size_t size, size_t *length);

#endif
