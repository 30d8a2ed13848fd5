/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's ledger client (see od_ledger_client.h).
 *
 * One libmemcached handle serves every thread under one mutex: each call is
 * a round trip or two on loopback or a LAN, bounded by the timeouts.  The
 * distribution is consistent hashing over the servers sorted by name, so
 * hosts that list the same servers in any order use the same keys.  Failed
 * servers are never ejected, because moving their keys to the survivors
 * would turn every key of theirs into a trusted-looking miss.
 *
 * Entries change by read, modify and compare-and-swap (memcached's "gets"
 * and "cas"), retried when another writer came first.  Concurrent holds and
 * releases on any number of threads and hosts therefore keep each other's
 * lines.  A writer that loses 32 times in a row marks the domain
 * incomplete.
 */

#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#include "od_index.h"
#include "od_ledger_client.h"
#include "od_log.h"
#include "od_release.h"
#include "od_util.h"

#define CAS_ATTEMPTS 32
#define MAX_TRACKED_DOMAINS 4096

struct server_state {
	char host[256];
	unsigned port;
	bool failed;
	bool stale;		/* failed since the last re-sync */
	char mark_key[OD_LEDGER_KEY_SIZE];	/* this host's mark on it */
	time_t failed_since;
	long long retry_at;	/* milliseconds, CLOCK_MONOTONIC */
};

struct seen_release {
	char domain[OD_DOMAIN_SIZE];
	long long requested;	/* milliseconds since the epoch */
};

static struct {
	bool enabled;
	pthread_mutex_t lock;
	memcached_st *mc;
	char prefix[OD_LEDGER_PREFIX_MAX + 1];
	char host_id[OD_HOST_ID_SIZE];
	char token[17];		/* random, per start: see check_mark_locked */
	bool conflict_logged;
	struct server_state *servers;
	size_t server_count;
	long long timeout_ms, connect_ms, retry_ms, poll_ms;
	struct od_index *index;

	bool resync_needed;
	bool synced;		/* a re-sync has set this host's mark */
	bool mark_missing_logged;
	time_t last_resync;
	char (*incomplete)[OD_DOMAIN_SIZE];
	size_t incomplete_count;
	struct seen_release *seen;
	size_t seen_count;

	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
} L = { .lock = PTHREAD_MUTEX_INITIALIZER };

static memcached_st *new_handle(char *error, size_t error_size);

static long long
monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static long long
epoch_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

bool
od_ledger_enabled(void)
{
	return L.enabled;
}

const char *
od_ledger_host_id(void)
{
	return L.host_id;
}

/* Returns whether rc is a normal reply rather than a server failure. */
static bool
benign(memcached_return_t rc)
{
	switch (rc) {
	case MEMCACHED_SUCCESS:
	case MEMCACHED_NOTFOUND:
	case MEMCACHED_DATA_EXISTS:
	case MEMCACHED_NOTSTORED:
	case MEMCACHED_END:
	case MEMCACHED_STORED:
	case MEMCACHED_DELETED:
	case MEMCACHED_BUFFERED:
	case MEMCACHED_E2BIG:
	case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
		return true;
	default:
		return false;
	}
}

/* Returns the server index of key, or -1.  Caller holds the lock. */
static int
key_server(const char *key)
{
	const memcached_instance_st *instance;
	memcached_return_t rc;
	const char *name;
	unsigned port;
	size_t i;

	instance = memcached_server_by_key(L.mc, key, strlen(key), &rc);
	if (instance == NULL)
		return -1;
	name = memcached_server_name(instance);
	port = memcached_server_port(instance);
	for (i = 0; i < L.server_count; i++) {
		if (L.servers[i].port == port &&
		    strcasecmp(L.servers[i].host, name) == 0)
			return (int)i;
	}
	return -1;
}

/* Returns whether a server is failed, or lost writes since a re-sync. */
static bool
any_doubtful_locked(void)
{
	size_t i;

	for (i = 0; i < L.server_count; i++) {
		if (L.servers[i].failed || L.servers[i].stale)
			return true;
	}
	return false;
}

/* Returns whether key's server may be asked.  Caller holds the lock. */
static bool
usable_locked(const char *key)
{
	int server = key_server(key);

	return server >= 0 && !L.servers[server].failed;
}

/* Returns whether key's server is up and missed no writes. */
static bool
trusted_locked(const char *key)
{
	int server = key_server(key);

	return server >= 0 && !L.servers[server].failed &&
	    !L.servers[server].stale;
}

/* Marks key's server failed and logs the change once. */
static void
note_failure_locked(const char *key, memcached_return_t rc)
{
	int server = key_server(key);
	struct server_state *state;

	if (server < 0)
		return;
	state = &L.servers[server];
	state->retry_at = monotonic_ms() + L.retry_ms;
	if (state->failed)
		return;
	state->failed = true;
	state->stale = true;
	state->failed_since = time(NULL);
	L.resync_needed = true;
	od_log(LOG_WARNING, "ledger: memcached server %s:%u failed (%s); "
	    "holds go on, and releases of its domains select from the queue "
	    "until it is back and re-synced", state->host, state->port,
	    memcached_strerror(L.mc, rc));
}

/*
 * Reads key with its CAS value.  Returns MEMCACHED_SUCCESS with a malloc'ed
 * value, MEMCACHED_NOTFOUND, or an error.  Caller holds the lock.
 */
static memcached_return_t
get_locked(const char *key, char **value, size_t *length, uint64_t *cas)
{
	const char *keys[1] = { key };
	size_t lengths[1] = { strlen(key) };
	memcached_result_st *result;
	memcached_return_t rc, fetched = MEMCACHED_NOTFOUND;

	*value = NULL;
	*length = 0;
	*cas = 0;
	rc = memcached_mget(L.mc, keys, lengths, 1);
	if (rc != MEMCACHED_SUCCESS)
		return rc;
	while ((result = memcached_fetch_result(L.mc, NULL, &rc)) != NULL) {
		if (*value == NULL) {
			*length = memcached_result_length(result);
			*value = malloc(*length + 1);
			if (*value != NULL) {
				memcpy(*value, memcached_result_value(result),
				    *length);
				(*value)[*length] = '\0';
				*cas = memcached_result_cas(result);
				fetched = MEMCACHED_SUCCESS;
			} else
				fetched = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
		}
		memcached_result_free(result);
	}
	if (rc != MEMCACHED_END && rc != MEMCACHED_SUCCESS &&
	    rc != MEMCACHED_NOTFOUND) {
		free(*value);
		*value = NULL;
		return rc;
	}
	return fetched;
}

static bool
incomplete_locked(const char *domain)
{
	size_t i;

	for (i = 0; i < L.incomplete_count; i++) {
		if (strcmp(L.incomplete[i], domain) == 0)
			return true;
	}
	return false;
}

/* Stops trusting domain's entry until a re-sync; why NULL logs nothing. */
static void
mark_incomplete_locked(const char *domain, const char *why)
{
	char (*grown)[OD_DOMAIN_SIZE];

	if (incomplete_locked(domain))
		return;
	/* A failed server's return brings its own re-sync. */
	if (why != NULL) {
		L.resync_needed = true;
		od_log(LOG_WARNING, "ledger: the entry of %s is incomplete "
		    "for this host (%s); its releases select from the queue "
		    "until the next re-sync", domain, why);
	}
	if (L.incomplete_count >= MAX_TRACKED_DOMAINS)
		return;
	grown = realloc(L.incomplete, (L.incomplete_count + 1) *
	    sizeof(*grown));
	if (grown == NULL)
		return;
	L.incomplete = grown;
	od_strlcpy(grown[L.incomplete_count++], domain, OD_DOMAIN_SIZE);
}

/*
 * Writes text (and frees it) over the value read with cas, or adds it when
 * the key did not exist.  A lost race returns DATA_EXISTS or NOTSTORED.
 */
static memcached_return_t
store_locked(const char *key, char *text, size_t length, bool exists,
    uint64_t cas)
{
	memcached_return_t rc;

	if (exists)
		rc = memcached_cas(L.mc, key, strlen(key), text, length, 0, 0,
		    cas);
	else
		rc = memcached_add(L.mc, key, strlen(key), text, length, 0, 0);
	free(text);
	return rc;
}

typedef bool (*entry_change)(struct od_ledger_entry *, const void *);

/*
 * Applies change to domain's entry with compare-and-swap, creating the
 * entry when it is missing.  A corrupt entry is replaced only when
 * rewrite_corrupt is set (a re-sync, which knows this host's share);
 * other hosts restore theirs at their next release or re-sync.  Returns
 * false after logging when the ledger could not be written.  Caller holds
 * the lock.
 */
static bool
update_entry_locked(const char *domain, entry_change change,
    const void *argument, bool rewrite_corrupt, bool *created)
{
	char key[OD_LEDGER_KEY_SIZE];
	int attempt;

	*created = false;
	if (!od_ledger_key(L.prefix, OD_LEDGER_KEY_ENTRY, domain, key))
		return false;
	for (attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
		struct od_ledger_entry entry;
		memcached_return_t rc;
		char *value, *text;
		size_t length, text_length;
		uint64_t cas;
		const char *error;
		bool exists;

		if (!usable_locked(key))
			return false;
		rc = get_locked(key, &value, &length, &cas);
		if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) {
			if (!benign(rc))
				note_failure_locked(key, rc);
			return false;
		}
		exists = rc == MEMCACHED_SUCCESS;
		if (exists && !od_ledger_entry_decode(value, length, domain,
		    &entry, &error)) {
			if (!rewrite_corrupt) {
				free(value);
				mark_incomplete_locked(domain, error);
				return false;
			}
			od_log(LOG_WARNING, "ledger: replacing the corrupt "
			    "entry of %s (%s)", domain, error);
			od_ledger_entry_init(&entry, domain);
		} else if (!exists)
			od_ledger_entry_init(&entry, domain);
		free(value);
		if (!change(&entry, argument) ||
		    (text = od_ledger_entry_encode(&entry,
		    &text_length)) == NULL) {
			od_ledger_entry_clear(&entry);
			mark_incomplete_locked(domain, "out of memory");
			return false;
		}
		od_ledger_entry_clear(&entry);
		rc = store_locked(key, text, text_length, exists, cas);
		if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED) {
			*created = !exists;
			return true;
		}
		if (rc == MEMCACHED_DATA_EXISTS || rc == MEMCACHED_NOTSTORED ||
		    rc == MEMCACHED_NOTFOUND) {
			/* Another writer came first: read again. */
			usleep((useconds_t)(200 * (attempt + 1)));
			continue;
		}
		if (rc == MEMCACHED_E2BIG) {
			mark_incomplete_locked(domain, "the entry is larger "
			    "than memcached's item size limit");
			return false;
		}
		if (!benign(rc))
			note_failure_locked(key, rc);
		else
			mark_incomplete_locked(domain,
			    memcached_strerror(L.mc, rc));
		return false;
	}
	mark_incomplete_locked(domain, "too many concurrent writers");
	return false;
}

/* Adds domain to the list of domains that have entries. */
static void
list_domain_locked(const char *domain)
{
	char key[OD_LEDGER_KEY_SIZE];
	int attempt;

	if (!od_ledger_domains_key(L.prefix, key))
		return;
	for (attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
		char (*names)[OD_DOMAIN_SIZE] = NULL, (*grown)[OD_DOMAIN_SIZE];
		memcached_return_t rc;
		char *value, *text;
		size_t length, count = 0, text_length, i;
		uint64_t cas;
		const char *error;
		bool exists;

		if (!usable_locked(key))
			return;
		rc = get_locked(key, &value, &length, &cas);
		if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) {
			if (!benign(rc))
				note_failure_locked(key, rc);
			return;
		}
		exists = rc == MEMCACHED_SUCCESS;
		if (exists && !od_ledger_domains_decode(value, length, &names,
		    &count, &error)) {
			od_log(LOG_WARNING, "ledger: replacing the corrupt "
			    "domain list (%s)", error);
			names = NULL;
			count = 0;
		}
		free(value);
		for (i = 0; i < count; i++) {
			if (strcmp(names[i], domain) == 0) {
				free(names);
				return;
			}
		}
		grown = realloc(names, (count + 1) * sizeof(*grown));
		if (grown == NULL) {
			free(names);
			return;
		}
		names = grown;
		od_strlcpy(names[count++], domain, OD_DOMAIN_SIZE);
		text = od_ledger_domains_encode((const char (*)[OD_DOMAIN_SIZE])
		    names, count, &text_length);
		free(names);
		if (text == NULL)
			return;
		rc = store_locked(key, text, text_length, exists, cas);
		if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED)
			return;
		if (rc != MEMCACHED_DATA_EXISTS && rc != MEMCACHED_NOTSTORED &&
		    rc != MEMCACHED_NOTFOUND) {
			if (!benign(rc))
				note_failure_locked(key, rc);
			return;
		}
	}
}

static bool
put_item(struct od_ledger_entry *entry, const void *argument)
{
	return od_ledger_entry_put(entry, argument);
}

void
od_ledger_record_hold(const struct od_index_entry *hold)
{
	struct od_ledger_item item;
	bool created;

	if (!L.enabled)
		return;
	memset(&item, 0, sizeof(item));
	od_strlcpy(item.host, L.host_id, sizeof(item.host));
	od_strlcpy(item.queue_id, hold->queue_id, sizeof(item.queue_id));
	item.size = hold->size;
	item.held_at = hold->held_at;
	pthread_mutex_lock(&L.lock);
	if (!update_entry_locked(hold->domain, put_item, &item, false,
	    &created)) {
		char key[OD_LEDGER_KEY_SIZE];

		/* A failed server was logged once already. */
		if (od_ledger_key(L.prefix, OD_LEDGER_KEY_ENTRY, hold->domain,
		    key) && !usable_locked(key))
			mark_incomplete_locked(hold->domain, NULL);
		else
			mark_incomplete_locked(hold->domain, "memcached could "
			    "not record a hold");
	} else if (created)
		list_domain_locked(hold->domain);
	pthread_mutex_unlock(&L.lock);
}

/*
 * Reads this host's mark on one server.  Each server carries its own
 * mark, because a restart or flush of one server loses only its keys.
 * Caller holds the lock.
 */
static enum { MARK_PRESENT, MARK_MISSING, MARK_ERROR }
check_mark_locked(int server)
{
	struct server_state *state;
	memcached_return_t rc;
	char *value;
	size_t length;
	uint64_t cas;

	if (server < 0)
		return MARK_ERROR;
	state = &L.servers[server];
	if (state->failed || state->mark_key[0] == '\0')
		return MARK_ERROR;
	rc = get_locked(state->mark_key, &value, &length, &cas);
	if (rc == MEMCACHED_SUCCESS) {
		/* The mark ends in the token of the daemon that wrote it. */
		const char *space = strrchr(value, ' ');

		if ((space == NULL || strcmp(space + 1, L.token) != 0) &&
		    L.synced && !L.conflict_logged) {
			od_log(LOG_ERR, "ledger: another daemon wrote the mark "
			    "of host ID %s; give each MX host its own HostId, "
			    "or the hosts overwrite each other's lines and "
			    "releases miss mail", L.host_id);
			L.conflict_logged = true;
		}
		free(value);
		return MARK_PRESENT;
	}
	free(value);
	if (rc == MEMCACHED_NOTFOUND) {
		if (!L.resync_needed && !L.mark_missing_logged) {
			od_log(LOG_WARNING, "ledger: this host's mark is "
			    "missing from memcached server %s:%u (restarted or "
			    "flushed); releases of its domains select from the "
			    "queue until the ledger is re-synced", state->host,
			    state->port);
			L.mark_missing_logged = true;
		}
		L.resync_needed = true;
		return MARK_MISSING;
	}
	if (!benign(rc))
		note_failure_locked(state->mark_key, rc);
	return MARK_ERROR;
}

/*
 * Picks, for each server, a mark key that consistent hashing places on it.
 * A server left without one (not expected with a few servers) never has
 * its keys trusted.  Caller holds the lock.
 */
static void
choose_mark_keys_locked(void)
{
	char base[OD_LEDGER_KEY_SIZE], key[OD_LEDGER_KEY_SIZE + 16];
	size_t found = 0, i;
	unsigned n;

	if (!od_ledger_host_key(L.prefix, L.host_id, base))
		return;
	for (n = 0; n < 4096 && found < L.server_count; n++) {
		int server;

		snprintf(key, sizeof(key), "%s:%u", base, n);
		if (strlen(key) > OD_LEDGER_KEY_MAX)
			return;
		server = key_server(key);
		if (server < 0 || L.servers[server].mark_key[0] != '\0')
			continue;
		od_strlcpy(L.servers[server].mark_key, key,
		    sizeof(L.servers[server].mark_key));
		found++;
	}
	for (i = 0; i < L.server_count; i++) {
		if (L.servers[i].mark_key[0] == '\0')
			od_log(LOG_WARNING, "ledger: no mark key maps to "
			    "memcached server %s:%u; its entries are never "
			    "trusted", L.servers[i].host, L.servers[i].port);
	}
}

enum od_ledger_view
od_ledger_fetch(const char *domain, struct od_ledger_entry *entry)
{
	char key[OD_LEDGER_KEY_SIZE], *value;
	enum od_ledger_view view = OD_LEDGER_UNKNOWN;
	memcached_return_t rc;
	const char *error;
	size_t length;
	uint64_t cas;

	od_ledger_entry_init(entry, domain);
	if (!L.enabled)
		return OD_LEDGER_OFF;
	if (!od_ledger_key(L.prefix, OD_LEDGER_KEY_ENTRY, domain, key))
		return OD_LEDGER_UNKNOWN;
	pthread_mutex_lock(&L.lock);
	if (!L.synced || incomplete_locked(domain) ||
	    check_mark_locked(key_server(key)) != MARK_PRESENT ||
	    !trusted_locked(key))
		goto done;
	rc = get_locked(key, &value, &length, &cas);
	if (rc == MEMCACHED_NOTFOUND) {
		/* A miss proves nothing while any server is in doubt. */
		if (!any_doubtful_locked())
			view = OD_LEDGER_KNOWN;
	} else if (rc == MEMCACHED_SUCCESS) {
		if (od_ledger_entry_decode(value, length, domain, entry,
		    &error))
			view = OD_LEDGER_KNOWN;
		else
			mark_incomplete_locked(domain, error);
		free(value);
	} else if (!benign(rc))
		note_failure_locked(key, rc);
done:
	pthread_mutex_unlock(&L.lock);
	return view;
}

void
od_ledger_totals(const char *domain, long long *messages, long long *bytes,
    bool *fleet)
{
	struct od_ledger_entry entry;
	struct od_index_entry *held = NULL;
	size_t count = 0, i, n;

	*messages = 0;
	*bytes = 0;
	*fleet = false;
	if (od_ledger_fetch(domain, &entry) == OD_LEDGER_KNOWN) {
		od_ledger_entry_totals(&entry, NULL, &n, bytes);
		*messages = (long long)n;
		*fleet = true;
		od_ledger_entry_clear(&entry);
		return;
	}
	od_ledger_entry_clear(&entry);
	if (L.index == NULL || !od_index_select(L.index, domain, false, &held,
	    &count))
		return;
	for (i = 0; i < count; i++)
		*bytes += held[i].size;
	*messages = (long long)count;
	free(held);
}

/* Replaces this host's lines with the index's entries for the domain. */
static bool
replace_from_index(struct od_ledger_entry *entry, const void *unused)
{
	struct od_index_entry *held = NULL;
	struct od_ledger_item *items;
	size_t count = 0, i;
	bool ok;

	(void)unused;
	/* Selected again on every attempt, so new holds are kept. */
	if (!od_index_select(L.index, entry->domain, false, &held, &count))
		return false;
	items = calloc(count + 1, sizeof(*items));
	if (items == NULL) {
		free(held);
		return false;
	}
	for (i = 0; i < count; i++) {
		od_strlcpy(items[i].queue_id, held[i].queue_id,
		    sizeof(items[i].queue_id));
		items[i].size = held[i].size;
		items[i].held_at = held[i].held_at;
	}
	ok = od_ledger_entry_replace_host(entry, L.host_id, items, count);
	free(items);
	free(held);
	return ok;
}

/* Returns whether the domain's entry now matches the index. */
static bool
sync_domain_locked(const char *domain)
{
	bool created;

	if (!update_entry_locked(domain, replace_from_index, NULL, true,
	    &created))
		return false;
	if (created)
		list_domain_locked(domain);
	return true;
}

void
od_ledger_sync_domain(const char *domain)
{
	if (!L.enabled || !od_index_complete(L.index, NULL))
		return;
	pthread_mutex_lock(&L.lock);
	sync_domain_locked(domain);
	pthread_mutex_unlock(&L.lock);
}

void
od_ledger_request_resync(void)
{
	if (!L.enabled)
		return;
	pthread_mutex_lock(&L.lock);
	L.resync_needed = true;
	pthread_mutex_unlock(&L.lock);
}

/* Reads the domain list; returns false when it cannot be read. */
static bool
read_domains_locked(char (**names)[OD_DOMAIN_SIZE], size_t *count)
{
	char key[OD_LEDGER_KEY_SIZE], *value;
	memcached_return_t rc;
	const char *error;
	size_t length;
	uint64_t cas;

	*names = NULL;
	*count = 0;
	if (!od_ledger_domains_key(L.prefix, key) || !usable_locked(key))
		return false;
	rc = get_locked(key, &value, &length, &cas);
	if (rc == MEMCACHED_NOTFOUND)
		return true;
	if (rc != MEMCACHED_SUCCESS) {
		if (!benign(rc))
			note_failure_locked(key, rc);
		return false;
	}
	if (!od_ledger_domains_decode(value, length, names, count, &error)) {
		od_log(LOG_WARNING, "ledger: cannot read the domain list (%s)",
		    error);
		free(value);
		return false;
	}
	free(value);
	return true;
}

/* Syncs one domain if its server is up; returns false on a failed write. */
static bool
resync_domain(const char *domain)
{
	char key[OD_LEDGER_KEY_SIZE];
	bool ok = true;

	if (!od_ledger_key(L.prefix, OD_LEDGER_KEY_ENTRY, domain, key))
		return true;
	pthread_mutex_lock(&L.lock);
	/* Entries on a failed server stay untrusted until it is back. */
	if (usable_locked(key))
		ok = sync_domain_locked(domain);
	pthread_mutex_unlock(&L.lock);
	return ok;
}

/*
 * Rewrites this host's share of every domain from a fresh listing of the
 * queue, then sets this host's mark on every server that is up.  Runs on
 * the ledger's thread and takes the lock per domain, so holds go on
 * meanwhile.  Domains whose server is failed wait for the re-sync that
 * follows its return.
 */
static void
resync(void)
{
	struct od_index_domain_status *rows = NULL;
	char (*listed)[OD_DOMAIN_SIZE] = NULL;
	char mark[OD_HOST_ID_SIZE + 64];
	size_t row_count = 0, listed_count = 0, i, messages = 0, failed = 0;
	memcached_return_t rc;
	bool ok = true, any_failed = false;

	pthread_mutex_lock(&L.lock);
	L.resync_needed = false;
	L.incomplete_count = 0;
	for (i = 0; i < L.server_count; i++) {
		/* Writes from here on reach every server that is up. */
		if (!L.servers[i].failed)
			L.servers[i].stale = false;
	}
	pthread_mutex_unlock(&L.lock);

	if (!od_release_resync() ||
	    !od_index_status(L.index, &rows, &row_count)) {
		od_ledger_request_resync();
		return;
	}
	pthread_mutex_lock(&L.lock);
	read_domains_locked(&listed, &listed_count);
	pthread_mutex_unlock(&L.lock);
	for (i = 0; i < row_count; i++) {
		if (!resync_domain(rows[i].domain))
			failed++;
		messages += rows[i].messages;
	}
	/* Domains this host no longer holds lose its stale lines. */
	for (i = 0; i < listed_count; i++) {
		if (!resync_domain(listed[i]))
			failed++;
	}

	pthread_mutex_lock(&L.lock);
	snprintf(mark, sizeof(mark), "%s %lld %s", L.host_id,
	    (long long)time(NULL), L.token);
	for (i = 0; i < L.server_count; i++) {
		struct server_state *state = &L.servers[i];

		/* A failed server's return brings its own re-sync. */
		if (state->failed) {
			any_failed = true;
			continue;
		}
		if (state->mark_key[0] == '\0')
			continue;
		rc = memcached_set(L.mc, state->mark_key,
		    strlen(state->mark_key), mark, strlen(mark), 0, 0);
		if (rc != MEMCACHED_SUCCESS) {
			if (!benign(rc))
				note_failure_locked(state->mark_key, rc);
			ok = false;
		}
	}
	if (ok) {
		L.synced = true;
		L.mark_missing_logged = false;
		L.last_resync = time(NULL);
		od_log(LOG_INFO, "ledger: re-synced from the queue: %zu held "
		    "messages of this host in %zu domains%s", messages,
		    row_count, failed > 0 || any_failed ? "; some entries "
		    "stay untrusted until their server answers" : "");
	} else
		L.resync_needed = true;
	pthread_mutex_unlock(&L.lock);
	free(listed);
	free(rows);
}

void
od_ledger_announce_release(const char *domain)
{
	char key[OD_LEDGER_KEY_SIZE], value[OD_HOST_ID_SIZE + 32];
	memcached_return_t rc;
	long long now = epoch_ms();
	size_t i;

	if (!L.enabled ||
	    !od_ledger_key(L.prefix, OD_LEDGER_KEY_RELEASE, domain, key))
		return;
	snprintf(value, sizeof(value), "%lld %s", now, L.host_id);
	pthread_mutex_lock(&L.lock);
	for (i = 0; i < L.seen_count; i++) {
		if (strcmp(L.seen[i].domain, domain) == 0)
			break;
	}
	if (i < L.seen_count)
		L.seen[i].requested = now;
	if (!usable_locked(key)) {
		od_log(LOG_WARNING, "ledger: cannot tell the other hosts to "
		    "release %s: its memcached server is marked failed",
		    domain);
	} else {
		rc = memcached_set(L.mc, key, strlen(key), value,
		    strlen(value), 0, 0);
		if (rc != MEMCACHED_SUCCESS && !benign(rc))
			note_failure_locked(key, rc);
	}
	pthread_mutex_unlock(&L.lock);
}

void
od_ledger_announce_subdomains(const char *parent)
{
	char (*names)[OD_DOMAIN_SIZE] = NULL;
	size_t count = 0, i;
	bool listed;

	if (!L.enabled)
		return;
	pthread_mutex_lock(&L.lock);
	listed = read_domains_locked(&names, &count);
	pthread_mutex_unlock(&L.lock);
	if (!listed)
		od_log(LOG_WARNING, "ledger: cannot read the domain list to "
		    "tell the other hosts to release @%s", parent);
	for (i = 0; listed && i < count; i++) {
		if (od_domain_within(names[i], parent))
			od_ledger_announce_release(names[i]);
	}
	free(names);
}

/* Returns the last release time seen for domain and stores requested. */
static long long
swap_seen_locked(const char *domain, long long requested)
{
	long long previous;
	size_t i;

	for (i = 0; i < L.seen_count; i++) {
		if (strcmp(L.seen[i].domain, domain) == 0) {
			previous = L.seen[i].requested;
			if (requested > previous)
				L.seen[i].requested = requested;
			return previous;
		}
	}
	if (L.seen_count < MAX_TRACKED_DOMAINS) {
		struct seen_release *grown = realloc(L.seen,
		    (L.seen_count + 1) * sizeof(*grown));

		if (grown != NULL) {
			L.seen = grown;
			od_strlcpy(grown[L.seen_count].domain, domain,
			    OD_DOMAIN_SIZE);
			grown[L.seen_count++].requested = requested;
		}
	}
	return 0;
}

/* Undoes swap_seen_locked for a request that started no release. */
static void
restore_seen_locked(const char *domain, long long requested,
    long long previous)
{
	size_t i;

	for (i = 0; i < L.seen_count; i++) {
		if (strcmp(L.seen[i].domain, domain) == 0 &&
		    L.seen[i].requested == requested)
			L.seen[i].requested = previous;
	}
}

/*
 * Starts this host's share of releases asked on other hosts: for each
 * domain this host holds, a release key newer than the last one seen and
 * newer than this host's oldest hold of the domain.
 */
static void
poll_releases(void)
{
	struct od_index_domain_status *rows = NULL;
	size_t count = 0, i;

	if (!od_index_status(L.index, &rows, &count))
		return;
	for (i = 0; i < count && !atomic_load(&L.stop); i++) {
		char key[OD_LEDGER_KEY_SIZE], *value, host[OD_HOST_ID_SIZE];
		long long requested = 0, previous;
		memcached_return_t rc;
		size_t length;
		uint64_t cas;

		if (!od_ledger_key(L.prefix, OD_LEDGER_KEY_RELEASE,
		    rows[i].domain, key))
			continue;
		pthread_mutex_lock(&L.lock);
		if (!usable_locked(key)) {
			pthread_mutex_unlock(&L.lock);
			continue;
		}
		rc = get_locked(key, &value, &length, &cas);
		if (rc != MEMCACHED_SUCCESS) {
			if (!benign(rc))
				note_failure_locked(key, rc);
			pthread_mutex_unlock(&L.lock);
			continue;
		}
		host[0] = '\0';
		if (sscanf(value, "%lld %64s", &requested, host) != 2)
			requested = 0;
		free(value);
		previous = swap_seen_locked(rows[i].domain, requested);
		pthread_mutex_unlock(&L.lock);

		if (requested <= previous ||
		    strcmp(host, L.host_id) == 0 ||
		    (long long)rows[i].oldest * 1000 > requested)
			continue;
		{
			struct od_release_request request;
			char client[OD_HOST_ID_SIZE + 8];
			long messages;

			snprintf(client, sizeof(client), "host:%s", host);
			request.domain = rows[i].domain;
			request.subdomains = false;
			request.trigger = "peer";
			request.client = client;
			/*
			 * A release of the domain that runs here already
			 * selected its messages before this request, and the
			 * helper may be down: try again at the next poll.
			 */
			if (od_release_start(&request, &messages) !=
			    OD_RELEASE_STARTED) {
				pthread_mutex_lock(&L.lock);
				restore_seen_locked(rows[i].domain, requested,
				    previous);
				pthread_mutex_unlock(&L.lock);
			}
		}
	}
	free(rows);
}

/* Returns whether one failed server responds again. */
static bool
probe(const struct server_state *state)
{
	memcached_st *mc = memcached_create(NULL);
	memcached_return_t rc;
	char *value;
	size_t length;
	uint32_t flags;

	if (mc == NULL)
		return false;
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    (uint64_t)L.connect_ms);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    (uint64_t)L.timeout_ms);
	rc = memcached_server_add(mc, state->host, (in_port_t)state->port);
	if (rc == MEMCACHED_SUCCESS) {
		value = memcached_get(mc, "probe", 5, &length, &flags, &rc);
		free(value);
	}
	memcached_free(mc);
	return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND;
}

static void
probe_failed_servers(void)
{
	size_t i;

	for (i = 0; i < L.server_count; i++) {
		struct server_state state;
		memcached_st *fresh;
		char error[300];

		pthread_mutex_lock(&L.lock);
		state = L.servers[i];
		pthread_mutex_unlock(&L.lock);
		if (!state.failed || monotonic_ms() < state.retry_at)
			continue;
		if (!probe(&state)) {
			pthread_mutex_lock(&L.lock);
			L.servers[i].retry_at = monotonic_ms() + L.retry_ms;
			pthread_mutex_unlock(&L.lock);
			continue;
		}
		pthread_mutex_lock(&L.lock);
		fresh = new_handle(error, sizeof(error));
		if (fresh == NULL) {
			od_log(LOG_ERR, "ledger: %s", error);
			L.servers[i].retry_at = monotonic_ms() + L.retry_ms;
			pthread_mutex_unlock(&L.lock);
			continue;
		}
		memcached_free(L.mc);
		L.mc = fresh;
		L.servers[i].failed = false;
		L.resync_needed = true;
		od_log(LOG_NOTICE, "ledger: memcached server %s:%u answers "
		    "again after %llds; re-syncing from the queue",
		    state.host, state.port,
		    (long long)(time(NULL) - state.failed_since));
		pthread_mutex_unlock(&L.lock);
	}
}

static void *
ledger_thread(void *unused)
{
	(void)unused;
	while (!atomic_load(&L.stop)) {
		bool resync_due;
		long long slept;

		probe_failed_servers();
		pthread_mutex_lock(&L.lock);
		for (size_t i = 0; i < L.server_count && !L.resync_needed; i++)
			check_mark_locked((int)i);
		resync_due = L.resync_needed;
		pthread_mutex_unlock(&L.lock);
		if (resync_due)
			resync();
		if (od_index_complete(L.index, NULL))
			poll_releases();
		for (slept = 0; slept < L.poll_ms && !atomic_load(&L.stop);
		    slept += 50)
			usleep(50 * 1000);
	}
	return NULL;
}

static int
compare_servers(const void *a, const void *b)
{
	const struct od_memcached_server *x = a, *y = b;
	int order = strcasecmp(x->host, y->host);

	if (order != 0)
		return order;
	return (x->port > y->port) - (x->port < y->port);
}

/*
 * Creates a libmemcached handle for L.servers.  A handle is made anew when
 * a failed server responds again, because libmemcached keeps its own record
 * of dead servers, and that record would fail the next request.
 */
static memcached_st *
new_handle(char *error, size_t error_size)
{
	memcached_st *mc = memcached_create(NULL);
	memcached_return_t rc;
	size_t i;

	if (mc == NULL) {
		snprintf(error, error_size, "out of memory");
		return NULL;
	}
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
	    MEMCACHED_DISTRIBUTION_CONSISTENT);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    (uint64_t)L.connect_ms);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    (uint64_t)L.timeout_ms);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT,
	    (uint64_t)L.timeout_ms * 1000);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT,
	    (uint64_t)L.timeout_ms * 1000);
	/* The daemon's own gate decides when a failed server is asked. */
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS,
	    0);
	for (i = 0; i < L.server_count; i++) {
		rc = memcached_server_add(mc, L.servers[i].host,
		    (in_port_t)L.servers[i].port);
		if (rc != MEMCACHED_SUCCESS) {
			snprintf(error, error_size, "memcached server %s:%u: "
			    "%s", L.servers[i].host, L.servers[i].port,
			    memcached_strerror(mc, rc));
			memcached_free(mc);
			return NULL;
		}
	}
	return mc;
}

bool
od_ledger_client_start(const struct od_config *config, struct od_index *index,
    char *error, size_t error_size)
{
	struct od_memcached_server *sorted;
	unsigned char random[8];
	size_t i;

	if (config->memcached_count == 0)
		return true;
	L.index = index;
	od_strlcpy(L.prefix, config->memcached_prefix, sizeof(L.prefix));
	/* od_config_load sets host_id from the host name when it is unset. */
	od_strlcpy(L.host_id, config->host_id != NULL ? config->host_id : "",
	    sizeof(L.host_id));
	if (!od_ledger_host_id_valid(L.host_id)) {
		snprintf(error, error_size, "no valid ledger host ID; set "
		    "HostId in %s", config->path);
		return false;
	}
	/* Tells this daemon's marks from those of a host with the same ID. */
	if (getentropy(random, sizeof(random)) != 0) {
		snprintf(error, error_size, "getentropy: %s", strerror(errno));
		return false;
	}
	for (i = 0; i < sizeof(random); i++)
		snprintf(L.token + 2 * i, 3, "%02x", random[i]);
	L.timeout_ms = config->memcached_timeout_ms;
	L.connect_ms = config->memcached_connect_timeout_ms;
	L.retry_ms = config->memcached_retry_ms;
	L.poll_ms = config->ledger_poll_ms;

	sorted = calloc(config->memcached_count, sizeof(*sorted));
	L.servers = calloc(config->memcached_count, sizeof(*L.servers));
	if (sorted == NULL || L.servers == NULL) {
		free(sorted);
		snprintf(error, error_size, "out of memory");
		return false;
	}
	memcpy(sorted, config->memcached,
	    config->memcached_count * sizeof(*sorted));
	qsort(sorted, config->memcached_count, sizeof(*sorted),
	    compare_servers);
	for (i = 0; i < config->memcached_count; i++) {
		od_strlcpy(L.servers[i].host, sorted[i].host,
		    sizeof(L.servers[i].host));
		L.servers[i].port = sorted[i].port;
	}
	L.server_count = config->memcached_count;
	free(sorted);
	L.mc = new_handle(error, error_size);
	if (L.mc == NULL)
		return false;
	choose_mark_keys_locked();
	L.resync_needed = true;
	L.enabled = true;
	atomic_store(&L.stop, false);
	if (pthread_create(&L.thread, NULL, ledger_thread, NULL) != 0) {
		snprintf(error, error_size, "cannot start the ledger thread");
		L.enabled = false;
		return false;
	}
	L.thread_started = true;
	od_log(LOG_INFO, "ledger: %zu memcached servers, prefix %s, host ID "
	    "%s", L.server_count, L.prefix, L.host_id);
	return true;
}

void
od_ledger_client_stop(void)
{
	if (L.thread_started) {
		atomic_store(&L.stop, true);
		pthread_join(L.thread, NULL);
		L.thread_started = false;
	}
	pthread_mutex_lock(&L.lock);
	L.enabled = false;
	if (L.mc != NULL)
		memcached_free(L.mc);
	L.mc = NULL;
	free(L.servers);
	L.servers = NULL;
	L.server_count = 0;
	free(L.incomplete);
	L.incomplete = NULL;
	L.incomplete_count = 0;
	free(L.seen);
	L.seen = NULL;
	L.seen_count = 0;
	pthread_mutex_unlock(&L.lock);
}

struct host_row {
	char domain[OD_DOMAIN_SIZE];
	char host[OD_HOST_ID_SIZE];
	size_t messages;
	long long bytes;
	time_t oldest;
};

static int
compare_host_rows(const void *a, const void *b)
{
	const struct host_row *x = a, *y = b;
	int order = strcmp(x->domain, y->domain);

	return order != 0 ? order : strcmp(x->host, y->host);
}

/* Adds entry's items to rows, one row per host. */
static bool
add_host_rows(const struct od_ledger_entry *entry, struct host_row **rows,
    size_t *count)
{
	size_t i, r;

	for (i = 0; i < entry->count; i++) {
		const struct od_ledger_item *item = &entry->items[i];

		for (r = 0; r < *count; r++) {
			if (strcmp((*rows)[r].domain, entry->domain) == 0 &&
			    strcmp((*rows)[r].host, item->host) == 0)
				break;
		}
		if (r == *count) {
			struct host_row *grown = realloc(*rows, (*count + 1) *
			    sizeof(*grown));

			if (grown == NULL)
				return false;
			*rows = grown;
			memset(&grown[r], 0, sizeof(grown[r]));
			od_strlcpy(grown[r].domain, entry->domain,
			    sizeof(grown[r].domain));
			od_strlcpy(grown[r].host, item->host,
			    sizeof(grown[r].host));
			(*count)++;
		}
		(*rows)[r].messages++;
		(*rows)[r].bytes += item->size;
		if ((*rows)[r].oldest == 0 || item->held_at < (*rows)[r].oldest)
			(*rows)[r].oldest = item->held_at;
	}
	return true;
}

void
od_ledger_status(FILE *out)
{
	char (*names)[OD_DOMAIN_SIZE] = NULL;
	struct host_row *rows = NULL;
	size_t name_count = 0, row_count = 0, up = 0, i;
	bool listed;

	if (!L.enabled) {
		fprintf(out, "ledger\toff\t-\t0\t0\t0\n");
		return;
	}
	pthread_mutex_lock(&L.lock);
	for (i = 0; i < L.server_count; i++) {
		if (!L.servers[i].failed)
			up++;
	}
	fprintf(out, "ledger\t%s\t%s\t%lld\t%zu\t%zu\n", up ==
	    L.server_count && L.synced && !L.resync_needed &&
	    L.incomplete_count == 0 ? "ok" : "degraded", L.host_id, (long long)L.last_resync, up,
	    L.server_count);
	for (i = 0; i < L.server_count; i++)
		fprintf(out, "server\t%s:%u\t%s\t%lld\n", L.servers[i].host,
		    L.servers[i].port, L.servers[i].failed ? "down" : "up",
		    L.servers[i].failed ?
		    (long long)L.servers[i].failed_since : 0LL);
	for (i = 0; i < L.incomplete_count; i++)
		fprintf(out, "incomplete\t%s\n", L.incomplete[i]);
	listed = read_domains_locked(&names, &name_count);
	pthread_mutex_unlock(&L.lock);

	for (i = 0; listed && i < name_count; i++) {
		struct od_ledger_entry entry;

		if (od_ledger_fetch(names[i], &entry) == OD_LEDGER_KNOWN)
			add_host_rows(&entry, &rows, &row_count);
		od_ledger_entry_clear(&entry);
	}
	/* qsort must not get NULL, even with nothing to sort. */
	if (row_count > 0)
		qsort(rows, row_count, sizeof(*rows), compare_host_rows);
	for (i = 0; i < row_count; i++)
		fprintf(out, "host\t%s\t%s\t%zu\t%lld\t%lld\n", rows[i].domain,
		    rows[i].host, rows[i].messages, rows[i].bytes,
		    (long long)rows[i].oldest);
	free(rows);
	free(names);
}
