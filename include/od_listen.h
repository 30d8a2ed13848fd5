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

#endif
