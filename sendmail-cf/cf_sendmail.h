/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Checking a sendmail.cf with the real sendmail: "sendmail -C FILE -bt
 * -d0.1" must read the file without errors, and address test mode
 * ("/parse ADDRESS") shows where sample addresses would go.
 *
 * sendmail is run with fork and execv and a fixed argument vector, never
 * through a shell.
 */
#ifndef CF_SENDMAIL_H
#define CF_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "cf_patch.h"

/* Maximum wait for one sendmail run, which sleeps 60 s on an unqualified
 * host name before it gives up on finding one. */
#define CF_SENDMAIL_TIMEOUT_SECONDS 180

/*
 * Runs argv[0] with argv, input on standard input and standard output and
 * error collected into *output.  Returns 0 with the exit status (or 128 +
 * the signal) in *status, or -1 with a message in error when it could not
 * run or timed out.
 */
int cf_run(const char *const argv[], const char *input, char **output,
    int *status, char *error, size_t error_size);

/*
 * Checks that sendmail can read cf_path.  Returns 1 when it can, 0 when it
 * reports errors (stored in messages, one line each, banner removed) and
 * -1 when sendmail could not be run (error tells why).  Warnings printed by
 * a successful run are stored in messages too.
 */
int cf_check_parse(const char *sendmail, const char *cf_path,
    struct cf_list *messages, char *error, size_t error_size);

struct cf_route {
	char *address;
	char *mailer;		/* NULL when the address did not resolve */
	char *host;		/* NULL for mailers without a host */
	char *user;
	char *problem;		/* sendmail's last line when mailer is NULL */
};

struct cf_routes {
	struct cf_route *items;
	size_t count;
	struct cf_list local_names;	/* class w and $j: this host's names */
	char *canonical_name;		/* $j */
};

void cf_routes_free(struct cf_routes *routes);

/*
 * Resolves each address with "/parse" in address test mode and reads this
 * host's names ($=w, $j).  Returns 0, or -1 with a message in error.
 */
int cf_resolve(const char *sendmail, const char *cf_path,
    const char *const *addresses, size_t count, struct cf_routes *routes,
    char *error, size_t error_size);

/*
 * Returns whether route goes out over SMTP to one of this host's own names,
 * which makes sendmail report "mail loops back to me".
 */
bool cf_route_loops(const struct cf_routes *routes,
    const struct cf_route *route);

/* Returns whether route uses an SMTP-family mailer (smtp, esmtp, ...). */
bool cf_route_is_smtp(const struct cf_route *route);

#endif
