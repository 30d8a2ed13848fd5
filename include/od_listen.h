/* SPDX-License-Identifier: BSD-2-Clause */
/* Unix-domain listening sockets for the socket map and the control socket. */
#ifndef OD_LISTEN_H
#define OD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Creates a listening unix socket at path, replacing a stale socket but no
 * other kind of file, owned by uid:gid with the given mode.  Call as root
 * before dropping privileges.  Returns the descriptor or -1 with error set.
 */
int od_listen_unix(const char *path, uid_t uid, gid_t gid, mode_t mode,
    char *error, size_t error_size);

/*
 * Returns whether the peer of a connected unix socket is root, the daemon's
 * own user, or a member of group (primary or supplementary, as the group
 * database lists it when the peer connects).
 */
bool od_peer_allowed(int fd, gid_t group, uid_t *peer_uid);

/* Serves one accepted connection, then closes fd. */
typedef void (*od_connection_handler)(int fd, uid_t peer);

/*
 * Starts a thread that accepts connections on listen_fd, rejects peers
 * that od_peer_allowed refuses, sets a receive timeout of timeout_seconds
 * and serves each connection in a thread of its own with handler.  name
 * prefixes the log lines.  Returns false with error set when the thread
 * cannot start.
 */
bool od_serve_unix(int listen_fd, gid_t group, unsigned timeout_seconds,
    const char *name, od_connection_handler handler, char *error,
    size_t error_size);

#endif
