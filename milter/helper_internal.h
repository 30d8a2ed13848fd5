/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Glue between the two halves of the release helper: helper.c forks the
 * helper process and helper_client.c owns the daemon's end of the
 * socketpair.
 */
#ifndef OD_HELPER_INTERNAL_H
#define OD_HELPER_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "od_helper.h"

/* syslog ident of the helper, the same as the daemon's. */
#define OD_HELPER_LOG_IDENT "ondemand-milter"

/*
 * Wraps the daemon's end of a running helper.  Takes ownership of fd.
 * Returns NULL (fd closed, error filled in) when memory runs out.
 */
struct od_helper *od_helper_client_new(int fd, pid_t pid, char *error,
    size_t error_size);

/*
 * Runs the helper in the calling process, which must be a freshly forked
 * child: it closes every other descriptor, serves requests on socket_fd
 * until end of file, and returns the process's exit status.
 */
int od_helper_main(int socket_fd, const char *sendmail, const char *config);

/* Returns the helper's process ID, for logs and tests. */
pid_t od_helper_pid(const struct od_helper *helper);

#endif
