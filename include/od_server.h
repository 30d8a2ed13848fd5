/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's own servers besides the filter: the socket map that
 * sendmail's check_etrn ruleset queries, the ondemandctl control socket,
 * and the periodic hold age check.  Each runs in threads of its own.
 */
#ifndef OD_SERVER_H
#define OD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Serves sendmail's socketmap protocol on a listening socket. */
bool od_socketmap_start(int listen_fd, gid_t group, char *error,
    size_t error_size);

/*
 * Formats the socketmap reply for one lookup key into reply (without the
 * netstring framing), starting a release where the key requests one.
 */
void od_socketmap_answer(const char *key, char *reply, size_t reply_size);

struct od_index;

/* Sets the index that the control requests read. */
void od_control_set_index(struct od_index *index);

/* Serves ondemandctl requests on a listening socket. */
bool od_control_start(int listen_fd, gid_t group, char *error,
    size_t error_size);

/* Starts the thread that applies MaxHoldAge periodically. */
bool od_expiry_start(char *error, size_t error_size);

#endif
