/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The release helper: the one part of ondemand-milter that keeps root,
 * because sendmail lets only root run or change held (quarantined) queue
 * items.  The daemon forks it before dropping privileges and talks to it
 * over a socketpair.  The helper accepts a few fixed requests, validates
 * every queue ID and domain, and runs sendmail with a fixed argument vector.
 *
 * The functions below are the daemon's side.  Each call blocks until the
 * helper reports the outcome, and any number of threads may call at once.
 */
#ifndef OD_HELPER_H
#define OD_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "od_domain.h"

/* Maximum queue ID length accepted (sendmail 8.17 IDs have 14). */
#define OD_QUEUE_ID_MAX 20

struct od_helper;

struct od_helper_item {
	char queue_id[OD_QUEUE_ID_MAX + 1];
	long long size;			/* octets, as sendmail lists it */
	time_t queued;			/* queue time, minute precision */
	char sender[512];		/* as listed, escaped, may be cut */
	char reason[OD_DOMAIN_SIZE + 32];	/* the quarantine reason */
};

/*
 * Forks the helper.  Call as root, before dropping privileges and before
 * any thread starts.  sendmail_config may be NULL (sendmail's own).
 */
struct od_helper *od_helper_start(const char *sendmail_path,
    const char *sendmail_config, char *error, size_t error_size);

/*
 * Delivers held messages in place (sendmail -qQ -qI<ID>...); each that
 * still cannot be delivered stays held.  Returns sendmail's exit status,
 * or -1 when the helper is gone or rejected the request.
 */
int od_helper_deliver(struct od_helper *helper, const char *const *ids,
    size_t count);

/* Delivers every item whose quarantine reason contains "[domain]". */
int od_helper_deliver_domain(struct od_helper *helper, const char *domain);

/* Moves held messages back to the normal queue (sendmail -Q -qQ -qI...). */
int od_helper_unhold(struct od_helper *helper, const char *const *ids,
    size_t count);

/* Largest EXPIRE age, in seconds: 366 days, MaxHoldAge's maximum. */
#define OD_HELPER_AGE_MAX 31622400UL

/*
 * Makes one last delivery attempt with the queue return timeout set to
 * age seconds (1 to OD_HELPER_AGE_MAX), so what cannot be delivered goes
 * back to its sender as a DSN.  Pass at most the age of the youngest
 * message: one younger than age is not returned.
 */
int od_helper_expire(struct od_helper *helper, const char *const *ids,
    size_t count, unsigned long age);

/*
 * Lists every held item (sendmail -bp -qQ).  On success returns 0 and a
 * malloc'ed array the caller frees; else -1.
 */
int od_helper_list(struct od_helper *helper, struct od_helper_item **items,
    size_t *count);

/* Returns whether the helper process is still running. */
bool od_helper_alive(struct od_helper *helper);

/* Closes the socketpair; the helper exits, its sendmail runs go on. */
void od_helper_stop(struct od_helper *helper);

#endif
