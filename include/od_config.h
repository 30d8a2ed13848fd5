/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The configuration file, /etc/mail/ondemand.conf by default.
 *
 * Lines are "Key value"; '#' starts a comment; keys are case-insensitive and
 * values are checked strictly.  Every error names FILE:LINE, the value and
 * what is expected.
 */
#ifndef OD_CONFIG_H
#define OD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "od_domain.h"
#include "od_ledger.h"
#include "od_network.h"

/* The clients allowed to ETRN one domain (EtrnAllow). */
struct od_etrn_allow {
	char domain[OD_DOMAIN_SIZE];
	bool subdomains;		/* the ".example.test" form */
	struct od_network *networks;
	size_t count;
};

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define OD_DEFAULT_CONFIG_FILE "/etc/mail/ondemand.conf"
#define OD_DEFAULT_SOCKET "unix:/run/ondemand/milter.sock"
#define OD_DEFAULT_PIDFILE "/run/ondemand/ondemand-milter.pid"
#define OD_DEFAULT_SOCKET_MODE 0660
#define OD_DEFAULT_MAX_HOLD_AGE (7LL * 24 * 3600)
#define OD_DEFAULT_RELEASE_RUNS 4
#define OD_MAX_RELEASE_RUNS 32
#define OD_DEFAULT_MEMCACHED_PORT 11211
#define OD_DEFAULT_MEMCACHED_PREFIX "ondemand"
#define OD_DEFAULT_MEMCACHED_TIMEOUT_MS 500
#define OD_DEFAULT_MEMCACHED_CONNECT_TIMEOUT_MS 250
#define OD_DEFAULT_MEMCACHED_RETRY_MS 10000
#define OD_DEFAULT_LEDGER_POLL_MS 2000

/* One memcached server of the ledger. */
struct od_memcached_server {
	char host[256];			/* a name, IPv4 or IPv6 address */
	unsigned port;
};

/* A per-domain quota; -1 in a field means the global value applies. */
struct od_domain_quota {
	char domain[OD_DOMAIN_SIZE];
	bool subdomains;		/* the ".example.test" form */
	long long max_messages;
	long long max_bytes;
	unsigned lines[2];		/* where each was set, for errors */
};

enum od_on_error {
	OD_ON_ERROR_HOLD,	/* accept and keep the message held */
	OD_ON_ERROR_TEMPFAIL	/* answer 4xx so the client retries */
};

enum od_etrn_other {
	OD_ETRN_OTHER_PASS,	/* sendmail handles the ETRN itself */
	OD_ETRN_OTHER_DENY	/* 459 */
};

struct od_config {
	char *path;			/* the file this was read from */
	char *socket;			/* libmilter socket specification */
	mode_t socket_mode;
	char *socket_group;		/* NULL: the daemon's primary group */
	char *user;			/* USER[:GROUP]; NULL: do not change */
	char *pidfile;
	enum od_on_error on_error;
	struct od_domain_set *domains;

	/* Release side. */
	char *socketmap;		/* NULL: no ETRN hook */
	char *control_socket;		/* NULL: no ondemandctl */
	char *sendmail_path;
	char *sendmail_config;		/* NULL: sendmail's own */
	enum od_etrn_other etrn_other;
	long long max_hold_age;		/* seconds */
	long long etrn_min_interval;	/* seconds between releases */
	struct od_etrn_allow *etrn_allow;
	size_t etrn_allow_count;
	unsigned release_runs;		/* parallel sendmail runs */

	/* The shared ledger; no servers means the in-memory index only. */
	struct od_memcached_server *memcached;
	size_t memcached_count;
	char *memcached_prefix;
	long long memcached_timeout_ms;
	long long memcached_connect_timeout_ms;
	long long memcached_retry_ms;
	char *host_id;			/* NULL: the host name */
	long long ledger_poll_ms;

	/* Quotas; 0 means no limit. */
	struct od_quota quota;
	struct od_domain_quota *quotas;
	size_t quota_count;
};

/*
 * Reads path into a new configuration.  On failure returns NULL and writes
 * "FILE:LINE: message" (or "FILE: message") into error.
 */
struct od_config *od_config_load(const char *path, char *error,
    size_t error_size);

void od_config_free(struct od_config *config);

/*
 * Returns the quota of a normalised domain: its own MaxHeldMessages and
 * MaxHeldBytes lines (the exact name first, then the longest ".parent"
 * entry), with the global values for what those leave unset.
 */
struct od_quota od_config_quota(const struct od_config *config,
    const char *domain);

#endif
