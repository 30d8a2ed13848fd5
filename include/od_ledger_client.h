/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's side of the shared hold ledger in memcached.
 *
 * Each hold adds this host's queue ID to the domain's entry.  A release
 * reads the entry and delivers this host's share.  A release requested on
 * one host is announced under the domain's release key, which the other
 * hosts poll.
 *
 * The queue stays the source of truth.  memcached may lose anything at any
 * time, so the ledger only vouches for a domain when the server storing its
 * key is up, this host's mark on that server is present (it vanishes when
 * the server restarts or is flushed) and no write for the domain has failed
 * since the last re-sync.  Otherwise a release selects by quarantine reason
 * from the queue, and the daemon re-syncs the ledger from its queue when it
 * can.
 * A memcached error never fails or delays mail beyond the configured
 * timeouts, and while a server is marked failed it is not asked at all.
 *
 * Without Memcached servers configured every call is a no-op and
 * od_ledger_fetch answers OD_LEDGER_OFF.  All functions are thread-safe.
 */
#ifndef OD_LEDGER_CLIENT_H
#define OD_LEDGER_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include "od_config.h"
#include "od_index.h"
#include "od_ledger.h"

enum od_ledger_view {
	OD_LEDGER_OFF,		/* no memcached configured */
	OD_LEDGER_KNOWN,	/* the entry can be trusted */
	OD_LEDGER_UNKNOWN	/* use the queue */
};

/*
 * Connects the ledger for config's servers and starts its thread, which
 * re-syncs from the queue, watches failed servers and starts this host's
 * share of releases asked elsewhere.  Returns false with a message in
 * error for a setting libmemcached refuses.
 */
bool od_ledger_client_start(const struct od_config *config,
    struct od_index *index, char *error, size_t error_size);
void od_ledger_client_stop(void);

bool od_ledger_enabled(void);
const char *od_ledger_host_id(void);

/* Adds a hold of this host to the ledger. */
void od_ledger_record_hold(const struct od_index_entry *entry);

/* Reads domain's entry into entry (initialised in every case). */
enum od_ledger_view od_ledger_fetch(const char *domain,
    struct od_ledger_entry *entry);

/*
 * What domain holds: on every host when the ledger vouches for it (*fleet
 * set), else on this host from the index.
 */
void od_ledger_totals(const char *domain, long long *messages,
    long long *bytes, bool *fleet);

/* Writes this host's held messages of domain, as the index has them. */
void od_ledger_sync_domain(const char *domain);

/* Asks for a full re-sync from the queue on the ledger's thread. */
void od_ledger_request_resync(void);

/* Tells the other hosts to deliver their share of domain. */
void od_ledger_announce_release(const char *domain);

/* Does the same for every domain in the ledger at or below parent. */
void od_ledger_announce_subdomains(const char *parent);

/* Writes the ledger's rows of the control socket's STATUS reply. */
void od_ledger_status(FILE *out);

#endif
