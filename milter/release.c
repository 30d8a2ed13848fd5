/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Releases, un-holds and expiry (see od_release.h).
 *
 * A release picks the domain's queue IDs from the index, or rebuilds the
 * index from the queue first when it is incomplete.  It splits them into
 * up to ReleaseRuns shares that parallel sendmail runs deliver, then lists
 * the held items again.  What is gone was delivered (or bounced by
 * sendmail), and what remains stays held and indexed for the next release.
 */

#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "od_helper_proto.h"
#include "od_index.h"
#include "od_ledger_client.h"
#include "od_log.h"
#include "od_release.h"
#include "od_runtime.h"
#include "od_util.h"

#define MAX_DOMAIN_STATES 4096

struct active_release {
	char domain[OD_DOMAIN_SIZE];
	bool subdomains;
	bool in_use;
};

struct last_release {
	char domain[OD_DOMAIN_SIZE];
	time_t finished;
};

struct job {
	char domain[OD_DOMAIN_SIZE];
	bool subdomains;
	char trigger[32];
	char client[300];
	size_t active_slot;
};

static long apply_to_entries(enum od_helper_verb verb, unsigned long age,
    const struct od_index_entry *entries, size_t count, const char *action);

static struct od_helper *release_helper;
static struct od_index *release_index;
static pthread_mutex_t release_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t resync_lock = PTHREAD_MUTEX_INITIALIZER;
static struct active_release *active;
static size_t active_count;
static struct last_release *last;
static size_t last_count;

void
od_release_init(struct od_helper *helper, struct od_index *index)
{
	release_helper = helper;
	release_index = index;
}

/* Extracts the domain from a quarantine reason "ondemand [DOMAIN]". */
static bool
reason_domain(const char *reason, char domain[OD_DOMAIN_SIZE])
{
	static const char prefix[] = OD_HOLD_REASON_PREFIX " [";
	const char *start, *end;
	size_t len;

	if (strncmp(reason, prefix, sizeof(prefix) - 1) != 0)
		return false;
	start = reason + sizeof(prefix) - 1;
	end = strchr(start, ']');
	if (end == NULL || end[1] != '\0')
		return false;
	len = (size_t)(end - start);
	if (len == 0 || len > OD_DOMAIN_MAX)
		return false;
	memcpy(domain, start, len);
	domain[len] = '\0';
	return true;
}

bool
od_release_resync(void)
{
	struct od_helper_item *items = NULL;
	struct od_index_entry *entries;
	unsigned long long generation;
	size_t count = 0, kept = 0, i;
	bool ok;

	/* One listing at a time; a second caller waits and lists afresh. */
	pthread_mutex_lock(&resync_lock);
	generation = od_index_generation(release_index);
	if (od_helper_list(release_helper, &items, &count) != 0) {
		od_index_invalidate(release_index);
		pthread_mutex_unlock(&resync_lock);
		od_log(LOG_ERR, "cannot list the held messages; releases "
		    "select messages by quarantine reason until a listing "
		    "works");
		return false;
	}
	entries = calloc(count + 1, sizeof(*entries));
	if (entries == NULL) {
		free(items);
		od_index_invalidate(release_index);
		pthread_mutex_unlock(&resync_lock);
		return false;
	}
	for (i = 0; i < count; i++) {
		struct od_index_entry *entry = &entries[kept];

		/* Items quarantined by other filters stay out. */
		if (!reason_domain(items[i].reason, entry->domain))
			continue;
		/*
		 * "ondemand [error]" marks mail held after an internal error.
		 * It is indexed under "[error]", which no domain request
		 * selects, so status shows it and unhold or expiry reach it.
		 */
		if (strcmp(entry->domain, "error") == 0)
			od_strlcpy(entry->domain, "[error]",
			    sizeof(entry->domain));
		od_strlcpy(entry->queue_id, items[i].queue_id,
		    sizeof(entry->queue_id));
		entry->size = items[i].size;
		entry->held_at = items[i].queued;
		od_strlcpy(entry->sender, items[i].sender,
		    sizeof(entry->sender));
		kept++;
	}
	ok = od_index_rebuild(release_index, entries, kept, generation);
	pthread_mutex_unlock(&resync_lock);
	free(entries);
	free(items);
	od_debug(1, "index rebuilt from the queue: %zu held messages", kept);
	return ok;
}

static void *
resync_thread(void *unused)
{
	(void)unused;
	if (od_release_resync())
		od_log(LOG_INFO, "hold index built from the queue");
	return NULL;
}

void
od_release_resync_async(void)
{
	pthread_t thread;

	if (pthread_create(&thread, NULL, resync_thread, NULL) == 0)
		pthread_detach(thread);
	else
		od_log(LOG_ERR, "cannot start the index rebuild thread");
}

static bool
overlaps(const char *a, bool a_subdomains, const char *b, bool b_subdomains)
{
	if (strcmp(a, b) == 0)
		return true;
	if (a_subdomains && od_domain_within(b, a))
		return true;
	return b_subdomains && od_domain_within(a, b);
}

/* Returns when domain was last released, or 0. Caller holds the lock. */
static time_t
last_release_locked(const char *domain)
{
	size_t i;

	for (i = 0; i < last_count; i++) {
		if (strcmp(last[i].domain, domain) == 0)
			return last[i].finished;
	}
	return 0;
}

static void
record_finished(const char *domain)
{
	size_t i;

	pthread_mutex_lock(&release_lock);
	for (i = 0; i < last_count; i++) {
		if (strcmp(last[i].domain, domain) == 0)
			break;
	}
	if (i == last_count && last_count < MAX_DOMAIN_STATES) {
		struct last_release *grown = realloc(last,
		    (last_count + 1) * sizeof(*last));

		if (grown != NULL) {
			last = grown;
			od_strlcpy(last[i].domain, domain,
			    sizeof(last[i].domain));
			last_count++;
		}
	}
	if (i < last_count)
		last[i].finished = time(NULL);
	pthread_mutex_unlock(&release_lock);
}

/* Reserves the domain for a job; returns the slot or a status. */
static enum od_release_status
reserve(const struct od_release_request *request, long long min_interval,
    size_t *slot)
{
	size_t i, free_slot = (size_t)-1;

	pthread_mutex_lock(&release_lock);
	for (i = 0; i < active_count; i++) {
		if (!active[i].in_use) {
			free_slot = i;
			continue;
		}
		if (overlaps(active[i].domain, active[i].subdomains,
		    request->domain, request->subdomains)) {
			pthread_mutex_unlock(&release_lock);
			return OD_RELEASE_RUNNING;
		}
	}
	if (min_interval > 0) {
		time_t previous = last_release_locked(request->domain);

		if (previous != 0 && time(NULL) - previous < min_interval) {
			pthread_mutex_unlock(&release_lock);
			return OD_RELEASE_TOO_SOON;
		}
	}
	if (free_slot == (size_t)-1) {
		struct active_release *grown = realloc(active,
		    (active_count + 1) * sizeof(*active));

		if (grown == NULL) {
			pthread_mutex_unlock(&release_lock);
			return OD_RELEASE_UNAVAILABLE;
		}
		active = grown;
		free_slot = active_count++;
	}
	od_strlcpy(active[free_slot].domain, request->domain,
	    sizeof(active[free_slot].domain));
	active[free_slot].subdomains = request->subdomains;
	active[free_slot].in_use = true;
	*slot = free_slot;
	pthread_mutex_unlock(&release_lock);
	return OD_RELEASE_STARTED;
}

static void
unreserve(size_t slot)
{
	pthread_mutex_lock(&release_lock);
	active[slot].in_use = false;
	pthread_mutex_unlock(&release_lock);
}

struct share {
	const char **ids;
	size_t count;
	int status;
};

static void *
deliver_share(void *argument)
{
	struct share *share = argument;

	share->status = od_helper_deliver(release_helper, share->ids,
	    share->count);
	return NULL;
}

/* Delivers ids in up to runs parallel sendmail runs. */
static int
deliver_in_parallel(const char **ids, size_t count, unsigned runs)
{
	struct share shares[OD_MAX_RELEASE_RUNS];
	pthread_t threads[OD_MAX_RELEASE_RUNS];
	bool started[OD_MAX_RELEASE_RUNS] = { false };
	size_t offset = 0, i;
	int status = 0;

	if (runs > count)
		runs = (unsigned)count;
	if (runs < 1)
		runs = 1;
	for (i = 0; i < runs; i++) {
		size_t size = count / runs + (i < count % runs ? 1 : 0);

		shares[i].ids = ids + offset;
		shares[i].count = size;
		shares[i].status = -1;
		offset += size;
		/* The first share runs in this thread. */
		if (i > 0 && pthread_create(&threads[i], NULL, deliver_share,
		    &shares[i]) == 0)
			started[i] = true;
	}
	deliver_share(&shares[0]);
	for (i = 1; i < runs; i++) {
		if (started[i])
			pthread_join(threads[i], NULL);
		else
			deliver_share(&shares[i]);
	}
	for (i = 0; i < runs; i++) {
		if (shares[i].status != 0)
			status = shares[i].status;
	}
	return status;
}

static bool
still_indexed(const struct od_index_entry *after, size_t after_count,
    const char *queue_id)
{
	size_t i;

	for (i = 0; i < after_count; i++) {
		if (strcmp(after[i].queue_id, queue_id) == 0)
			return true;
	}
	return false;
}

/* Logs one line per message: released (gone from the queue) or held. */
static void
log_outcomes(const struct job *job, const struct od_index_entry *before,
    size_t before_count)
{
	struct od_index_entry *after = NULL;
	size_t after_count = 0, delivered = 0, i;

	if (!od_index_select(release_index, job->domain, job->subdomains,
	    &after, &after_count)) {
		od_log(LOG_ERR, "release of %s: out of memory while "
		    "checking outcomes", job->domain);
		return;
	}
	for (i = 0; i < before_count; i++) {
		bool held = still_indexed(after, after_count,
		    before[i].queue_id);

		if (!held)
			delivered++;
		od_log(LOG_INFO, "%s: action=%s domain=%s trigger=%s",
		    before[i].queue_id, held ? "still-held" : "released",
		    before[i].domain, job->trigger);
	}
	od_log(LOG_INFO, "action=release-done domain=%s%s trigger=%s "
	    "messages=%zu delivered=%zu still_held=%zu", job->subdomains ?
	    "@" : "", job->domain, job->trigger, before_count, delivered,
	    before_count - delivered);
	free(after);
}

static bool
null_sender(const char *sender)
{
	return strcmp(sender, "<>") == 0 || strcmp(sender, "") == 0 ||
	    strncasecmp(sender, "MAILER-DAEMON", 13) == 0 ||
	    strncasecmp(sender, "<MAILER-DAEMON", 14) == 0;
}

/*
 * Un-holds the DSNs that sendmail created during the release.  A DSN for a
 * recipient that failed permanently inherits its message's quarantine
 * reason, so without this it would wait for the customer's next ETRN
 * instead of going to the sender now.  A DSN is recognised as a held item
 * of the domain with a null sender that was not held before the run.
 */
static void
unhold_new_bounces(const struct job *job, const struct od_index_entry *before,
    size_t before_count)
{
	struct od_index_entry *after = NULL, *bounces;
	size_t after_count = 0, bounce_count = 0, i;

	if (!od_index_select(release_index, job->domain, job->subdomains,
	    &after, &after_count))
		return;
	bounces = calloc(after_count + 1, sizeof(*bounces));
	for (i = 0; bounces != NULL && i < after_count; i++) {
		if (null_sender(after[i].sender) &&
		    !still_indexed(before, before_count, after[i].queue_id))
			bounces[bounce_count++] = after[i];
	}
	if (bounce_count > 0 &&
	    apply_to_entries(OD_HELPER_UNHOLD, 0, bounces, bounce_count,
	    "unhold-dsn") >= 0)
		od_release_resync();
	free(bounces);
	free(after);
}

/* Delivers the domain's held mail selected by quarantine reason. */
static void
deliver_by_reason(struct job *job)
{
	struct od_index_entry *held = NULL;
	size_t count = 0;
	int status;

	od_log(LOG_INFO, "action=release domain=%s trigger=%s client=%s "
	    "selection=reason", job->domain, job->trigger, job->client);
	status = od_helper_deliver_domain(release_helper, job->domain);
	if (status != 0)
		od_log(LOG_WARNING, "release of %s: sendmail exited with "
		    "status %d", job->domain, status);
	if (od_release_resync() && od_index_select(release_index,
	    job->domain, false, &held, &count)) {
		od_log(LOG_INFO, "action=release-done domain=%s trigger=%s "
		    "selection=reason still_held=%zu", job->domain,
		    job->trigger, count);
		free(held);
	}
}

/* Delivers ids, then logs each message's outcome from a new listing. */
static void
deliver_and_check(struct job *job, const struct od_index_entry *entries,
    size_t count, unsigned runs)
{
	const char **ids = calloc(count + 1, sizeof(*ids));
	size_t i;
	int status;

	if (ids == NULL) {
		od_log(LOG_ERR, "release of %s failed: out of memory",
		    job->domain);
		return;
	}
	for (i = 0; i < count; i++)
		ids[i] = entries[i].queue_id;
	status = deliver_in_parallel(ids, count, runs);
	free(ids);
	if (status != 0)
		od_log(LOG_WARNING, "release of %s: a sendmail run exited "
		    "with status %d", job->domain, status);
	if (od_release_resync()) {
		log_outcomes(job, entries, count);
		unhold_new_bounces(job, entries, count);
	} else
		od_log(LOG_WARNING, "action=release-done domain=%s%s "
		    "trigger=%s messages=%zu outcome=unknown reason=\"cannot "
		    "list the held messages\"", job->subdomains ? "@" : "",
		    job->domain, job->trigger, count);
}

static int
compare_queue_ids(const void *a, const void *b)
{
	const struct od_index_entry *x = a, *y = b;

	return strcmp(x->queue_id, y->queue_id);
}

static int
compare_key_to_entry(const void *key, const void *element)
{
	const struct od_index_entry *entry = element;

	return strcmp(key, entry->queue_id);
}

/*
 * A release through the ledger: this host's share of the domain's entry.
 * Messages in the index that the entry lacks (an evicted or rewritten
 * entry) are delivered too, so a lost cache entry strands nothing.
 */
static void
run_ledger_job(struct job *job, unsigned runs)
{
	struct od_ledger_entry ledger;
	struct od_index_entry *local = NULL, *entries = NULL;
	size_t local_count = 0, count = 0, missing = 0, fleet, i;
	bool *used;
	long long fleet_bytes;
	const char *me = od_ledger_host_id();

	/* Peers hear of it first, so their shares run alongside this one. */
	if (strcmp(job->trigger, "peer") != 0)
		od_ledger_announce_release(job->domain);
	if (od_ledger_fetch(job->domain, &ledger) != OD_LEDGER_KNOWN) {
		od_ledger_entry_clear(&ledger);
		deliver_by_reason(job);
		od_ledger_sync_domain(job->domain);
		return;
	}
	if (!od_index_complete(release_index, NULL))
		od_release_resync();
	if (od_index_complete(release_index, NULL) &&
	    !od_index_select(release_index, job->domain, false, &local,
	    &local_count))
		local_count = 0;
	used = calloc(local_count + 1, sizeof(*used));
	entries = calloc(ledger.count + local_count + 1, sizeof(*entries));
	if (entries == NULL || used == NULL) {
		od_log(LOG_ERR, "release of %s failed: out of memory",
		    job->domain);
		od_ledger_entry_clear(&ledger);
		free(entries);
		free(used);
		free(local);
		return;
	}
	/* Sorted, so each ledger line finds its index entry in O(log n). */
	if (local_count > 0)
		qsort(local, local_count, sizeof(*local), compare_queue_ids);
	for (i = 0; i < ledger.count; i++) {
		struct od_index_entry *entry = &entries[count], *found;

		if (strcmp(ledger.items[i].host, me) != 0)
			continue;
		found = local_count == 0 ? NULL :
		    bsearch(ledger.items[i].queue_id, local, local_count,
		    sizeof(*local), compare_key_to_entry);
		if (found != NULL) {
			if (used[found - local])
				continue;
			used[found - local] = true;
			*entry = *found;
		} else {
			memset(entry, 0, sizeof(*entry));
			od_strlcpy(entry->queue_id, ledger.items[i].queue_id,
			    sizeof(entry->queue_id));
			od_strlcpy(entry->domain, job->domain,
			    sizeof(entry->domain));
			entry->size = ledger.items[i].size;
			entry->held_at = ledger.items[i].held_at;
		}
		count++;
	}
	for (i = 0; i < local_count; i++) {
		if (!used[i]) {
			entries[count++] = local[i];
			missing++;
		}
	}
	free(used);
	if (missing > 0)
		od_log(LOG_WARNING, "ledger: the entry of %s lacked %zu held "
		    "messages of this host; delivering them too", job->domain,
		    missing);
	od_ledger_entry_totals(&ledger, NULL, &fleet, &fleet_bytes);
	od_log(LOG_INFO, "action=release domain=%s trigger=%s client=%s "
	    "messages=%zu runs=%u selection=ledger fleet_messages=%zu",
	    job->domain, job->trigger, job->client, count, count < runs ?
	    (unsigned)(count ? count : 1) : runs, fleet);
	if (count > 0)
		deliver_and_check(job, entries, count, runs);
	od_ledger_sync_domain(job->domain);
	od_ledger_entry_clear(&ledger);
	free(entries);
	free(local);
}

static void
run_job(struct job *job)
{
	struct od_config_ref *ref = od_runtime_acquire();
	unsigned runs = ref ? od_runtime_config(ref)->release_runs : 1;
	struct od_index_entry *entries = NULL;
	size_t count = 0;

	od_runtime_release(ref);

	if (od_ledger_enabled() && !job->subdomains) {
		run_ledger_job(job, runs);
		return;
	}
	/* An @domain release goes through the local index on each host. */
	if (job->subdomains && strcmp(job->trigger, "peer") != 0)
		od_ledger_announce_subdomains(job->domain);
	if (!od_index_complete(release_index, NULL) && !od_release_resync()) {
		/* The index cannot vouch for itself: select by reason. */
		if (job->subdomains) {
			od_log(LOG_ERR, "release of @%s failed: cannot list "
			    "the held messages to find its subdomains",
			    job->domain);
			return;
		}
		deliver_by_reason(job);
		od_ledger_request_resync();
		return;
	}

	if (!od_index_select(release_index, job->domain, job->subdomains,
	    &entries, &count)) {
		od_log(LOG_ERR, "release of %s failed: out of memory",
		    job->domain);
		return;
	}
	od_log(LOG_INFO, "action=release domain=%s%s trigger=%s client=%s "
	    "messages=%zu runs=%u selection=index", job->subdomains ? "@" : "",
	    job->domain, job->trigger, job->client, count, count < runs ?
	    (unsigned)(count ? count : 1) : runs);
	if (count > 0)
		deliver_and_check(job, entries, count, runs);
	od_ledger_request_resync();
	free(entries);
}

static void *
job_thread(void *argument)
{
	struct job *job = argument;

	run_job(job);
	record_finished(job->domain);
	unreserve(job->active_slot);
	free(job);
	return NULL;
}

/* Counts the held messages a request selects, or -1 when not known. */
static long
count_selected(const struct od_release_request *request)
{
	struct od_index_entry *entries = NULL;
	struct od_ledger_entry ledger;
	size_t count = 0;
	long long bytes;

	if (od_ledger_enabled() && !request->subdomains) {
		/* Every host's share, when the ledger vouches for it. */
		bool known = od_ledger_fetch(request->domain, &ledger) ==
		    OD_LEDGER_KNOWN;

		od_ledger_entry_totals(&ledger, NULL, &count, &bytes);
		od_ledger_entry_clear(&ledger);
		if (known)
			return (long)count;
	}
	if (!od_index_complete(release_index, NULL) ||
	    !od_index_select(release_index, request->domain,
	    request->subdomains, &entries, &count))
		return -1;
	free(entries);
	return (long)count;
}

enum od_release_status
od_release_start(const struct od_release_request *request, long *messages)
{
	struct od_config_ref *ref = od_runtime_acquire();
	long long min_interval = 0;
	enum od_release_status status;
	struct job *job;
	pthread_t thread;
	size_t slot;

	if (ref != NULL) {
		/* The operator's own request ignores the ETRN interval. */
		if (strcmp(request->trigger, "etrn") == 0)
			min_interval =
			    od_runtime_config(ref)->etrn_min_interval;
		od_runtime_release(ref);
	}
	if (release_helper == NULL || !od_helper_alive(release_helper))
		return OD_RELEASE_UNAVAILABLE;

	status = reserve(request, min_interval, &slot);
	if (status != OD_RELEASE_STARTED)
		return status;
	*messages = count_selected(request);

	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		unreserve(slot);
		return OD_RELEASE_UNAVAILABLE;
	}
	od_strlcpy(job->domain, request->domain, sizeof(job->domain));
	job->subdomains = request->subdomains;
	od_strlcpy(job->trigger, request->trigger, sizeof(job->trigger));
	od_strlcpy(job->client, request->client, sizeof(job->client));
	job->active_slot = slot;
	if (pthread_create(&thread, NULL, job_thread, job) != 0) {
		od_log(LOG_ERR, "release of %s: cannot start a thread",
		    request->domain);
		unreserve(slot);
		free(job);
		return OD_RELEASE_UNAVAILABLE;
	}
	pthread_detach(thread);
	return OD_RELEASE_STARTED;
}

/*
 * Runs a blocking UNHOLD or EXPIRE (with its age) over a selection of
 * index entries.
 */
static long
apply_to_entries(enum od_helper_verb verb, unsigned long age,
    const struct od_index_entry *entries, size_t count, const char *action)
{
	const char **ids;
	size_t i;
	int status;

	if (count == 0)
		return 0;
	ids = calloc(count, sizeof(*ids));
	if (ids == NULL)
		return -1;
	for (i = 0; i < count; i++)
		ids[i] = entries[i].queue_id;
	status = verb == OD_HELPER_EXPIRE ?
	    od_helper_expire(release_helper, ids, count, age) :
	    od_helper_unhold(release_helper, ids, count);
	free(ids);
	if (status != 0) {
		od_log(LOG_WARNING, "action=%s messages=%zu status=failed "
		    "reason=\"sendmail exited with status %d\"", action, count,
		    status);
		return -1;
	}
	for (i = 0; i < count; i++)
		od_log(LOG_INFO, "%s: action=%s domain=%s", entries[i].queue_id,
		    action, entries[i].domain);
	return (long)count;
}

long
od_release_unhold(const char *domain, const char *queue_id)
{
	struct od_index_entry *entries = NULL;
	size_t count = 0;
	long result;

	if (!od_index_complete(release_index, NULL) && !od_release_resync())
		return -1;
	if (domain != NULL) {
		if (!od_index_select(release_index, domain, true, &entries,
		    &count))
			return -1;
	} else {
		entries = calloc(1, sizeof(*entries));
		if (entries == NULL)
			return -1;
		if (od_index_find(release_index, queue_id, &entries[0]))
			count = 1;
	}
	result = apply_to_entries(OD_HELPER_UNHOLD, 0, entries, count,
	    "unhold");
	free(entries);
	od_release_resync();
	od_ledger_request_resync();
	return result;
}

long
od_release_expire(long long max_hold_age)
{
	struct od_index_entry *entries = NULL;
	size_t count = 0;
	long result;

	if (!od_index_complete(release_index, NULL) && !od_release_resync())
		return -1;
	if (!od_index_select_older(release_index,
	    time(NULL) - (time_t)max_hold_age, &entries, &count))
		return -1;
	/*
	 * sendmail returns a message once now >= queue time + the timeout.
	 * A message is queued a little before it is held, so each one
	 * selected here is old enough, and its DSN gives MaxHoldAge as the
	 * time the message could not be delivered.
	 */
	result = apply_to_entries(OD_HELPER_EXPIRE,
	    max_hold_age < 1 ? 1 : (unsigned long)max_hold_age, entries, count,
	    "expire");
	free(entries);
	if (count > 0) {
		od_release_resync();
		od_ledger_request_resync();
	}
	return result;
}
