/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Releases: delivering one domain's held messages in place.
 *
 * A release returns at once and delivers in background threads, because
 * sendmail gives a socketmap lookup 30 seconds at most.  Releases are
 * serialised per domain: a request for a domain whose release is still
 * running starts nothing new.
 */
#ifndef OD_RELEASE_H
#define OD_RELEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "od_helper.h"
#include "od_index.h"

enum od_release_status {
	OD_RELEASE_STARTED,	/* delivery started */
	OD_RELEASE_RUNNING,	/* a release of this domain is still running */
	OD_RELEASE_TOO_SOON,	/* within EtrnMinInterval of the last one */
	OD_RELEASE_UNAVAILABLE	/* the helper is gone or memory ran out */
};

struct od_release_request {
	const char *domain;	/* normalised */
	bool subdomains;	/* also every held domain below it */
	const char *trigger;	/* "etrn", "operator" */
	const char *client;	/* who asked, escaped for logging */
};

void od_release_init(struct od_helper *helper, struct od_index *index);

/*
 * Starts a release; see the statuses above.  With OD_RELEASE_STARTED,
 * messages is the number of held messages the release selected, or -1
 * when the index is incomplete and the count is not known yet.
 */
enum od_release_status od_release_start(
    const struct od_release_request *request, long *messages);

/*
 * Rebuilds the index from the helper's listing of held items.  Returns
 * false (and leaves the index incomplete) when the listing fails.
 */
bool od_release_resync(void);

/* Starts a thread that rebuilds the index once, for start-up. */
void od_release_resync_async(void);

/*
 * Un-holds (moves back to the normal queue) the held messages of a domain
 * and its subdomains, or the one message queue_id.  Blocks.  Returns the
 * number un-held, or -1 on failure.
 */
long od_release_unhold(const char *domain, const char *queue_id);

/*
 * Returns held messages older than the hold age limit to their senders.
 * Blocks.  Returns the number expired, or -1 on failure.
 */
long od_release_expire(long long max_hold_age);

#endif
