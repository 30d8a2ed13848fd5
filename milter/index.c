/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The in-memory hold index (see od_index.h).
 *
 * A flat array under one mutex: holds append and selections scan.  Every
 * operation costs O(entries held on this host), which a release pays anyway
 * when it lists the held items, so the normal queue never enters into it.
 */

#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "od_index.h"

struct slot {
	struct od_index_entry entry;
	unsigned long long generation;	/* when it was added */
};

struct od_index {
	pthread_mutex_t lock;
	struct slot *slots;
	size_t count;
	size_t capacity;
	/*
	 * Open addressing over the slots by queue ID, so that a hold does not
	 * compare its ID with every held message: a slot number plus one, or
	 * 0 for an empty bucket.  Remade whenever the slots move.
	 */
	size_t *buckets;
	size_t bucket_count;		/* a power of 2, above 2 * capacity */
	unsigned long long generation;
	bool complete;
	time_t last_rebuild;
};

struct od_index *
od_index_new(void)
{
	struct od_index *index = calloc(1, sizeof(*index));

	if (index != NULL)
		pthread_mutex_init(&index->lock, NULL);
	return index;
}

void
od_index_free(struct od_index *index)
{
	if (index == NULL)
		return;
	pthread_mutex_destroy(&index->lock);
	free(index->slots);
	free(index->buckets);
	free(index);
}

static bool rehash_locked(struct od_index *index);

static bool
reserve_locked(struct od_index *index, size_t needed)
{
	struct slot *slots;
	size_t capacity;

	if (needed <= index->capacity)
		return true;
	capacity = index->capacity ? index->capacity : 64;
	while (capacity < needed)
		capacity *= 2;
	slots = realloc(index->slots, capacity * sizeof(*slots));
	if (slots == NULL)
		return false;
	index->slots = slots;
	index->capacity = capacity;
	return rehash_locked(index);
}

static int
compare_slots(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;

	return strcmp(x->entry.queue_id, y->entry.queue_id);
}

static int
compare_id_to_slot(const void *key, const void *element)
{
	const struct slot *slot = element;

	return strcmp(key, slot->entry.queue_id);
}

/* FNV-1a: queue IDs are short, and sendmail makes them unique. */
static size_t
hash_id(const char *queue_id)
{
	uint64_t hash = 14695981039346656037ULL;

	for (; *queue_id != '\0'; queue_id++) {
		hash ^= (unsigned char)*queue_id;
		hash *= 1099511628211ULL;
	}
	return (size_t)hash;
}

static void
insert_bucket_locked(struct od_index *index, size_t slot)
{
	size_t mask = index->bucket_count - 1;
	size_t at = hash_id(index->slots[slot].entry.queue_id) & mask;

	while (index->buckets[at] != 0)
		at = (at + 1) & mask;
	index->buckets[at] = slot + 1;
}

/* Remakes the buckets for the current slots.  Returns false without memory. */
static bool
rehash_locked(struct od_index *index)
{
	size_t wanted = 128, i;
	size_t *buckets;

	while (wanted < 2 * index->capacity + 2)
		wanted *= 2;
	buckets = calloc(wanted, sizeof(*buckets));
	if (buckets == NULL)
		return false;
	free(index->buckets);
	index->buckets = buckets;
	index->bucket_count = wanted;
	for (i = 0; i < index->count; i++)
		insert_bucket_locked(index, i);
	return true;
}

static size_t
find_locked(const struct od_index *index, const char *queue_id)
{
	size_t mask, at;

	if (index->buckets == NULL)
		return (size_t)-1;
	mask = index->bucket_count - 1;
	for (at = hash_id(queue_id) & mask; index->buckets[at] != 0;
	    at = (at + 1) & mask) {
		size_t slot = index->buckets[at] - 1;

		if (strcmp(index->slots[slot].entry.queue_id, queue_id) == 0)
			return slot;
	}
	return (size_t)-1;
}

bool
od_index_add(struct od_index *index, const struct od_index_entry *entry)
{
	bool ok = true;
	size_t at;

	pthread_mutex_lock(&index->lock);
	at = find_locked(index, entry->queue_id);
	if (at == (size_t)-1) {
		ok = reserve_locked(index, index->count + 1);
		if (ok) {
			at = index->count++;
			index->slots[at].entry = *entry;
			insert_bucket_locked(index, at);
		}
	}
	if (ok) {
		index->slots[at].entry = *entry;
		index->slots[at].generation = ++index->generation;
	} else {
		/* A hold the index cannot record makes it incomplete. */
		index->complete = false;
	}
	pthread_mutex_unlock(&index->lock);
	return ok;
}

unsigned long long
od_index_generation(struct od_index *index)
{
	unsigned long long generation;

	pthread_mutex_lock(&index->lock);
	generation = index->generation;
	pthread_mutex_unlock(&index->lock);
	return generation;
}

bool
od_index_rebuild(struct od_index *index, const struct od_index_entry *entries,
    size_t count, unsigned long long generation)
{
	struct slot *slots;
	size_t kept = 0, allocated, i;

	pthread_mutex_lock(&index->lock);
	allocated = count + index->count + 1;
	slots = malloc(allocated * sizeof(*slots));
	if (slots == NULL) {
		index->complete = false;
		pthread_mutex_unlock(&index->lock);
		return false;
	}
	for (i = 0; i < count; i++) {
		slots[kept].entry = entries[i];
		slots[kept].generation = 0;
		kept++;
	}
	/* Sorted by queue ID, so each old entry finds its listing line fast. */
	qsort(slots, count, sizeof(*slots), compare_slots);
	for (i = 0; i < index->count; i++) {
		const struct slot *old = &index->slots[i];
		struct slot *listed = bsearch(old->entry.queue_id, slots, count,
		    sizeof(*slots), compare_id_to_slot);

		if (old->generation > generation) {
			/*
			 * Holds recorded after the listing started may be
			 * missing from it: keep them.
			 */
			if (listed != NULL)
				*listed = *old;
			else
				slots[kept++] = *old;
		} else if (listed != NULL) {
			/*
			 * Entries from before the listing keep what the filter
			 * saw: the exact hold time, the size of the headers and
			 * body (the listing shows the body's only) and the
			 * sender as sent.
			 */
			listed->entry = old->entry;
			listed->generation = old->generation;
		}
	}
	free(index->slots);
	index->slots = slots;
	index->count = kept;
	index->capacity = allocated;
	if (!rehash_locked(index))
		index->complete = false;
	index->complete = true;
	index->last_rebuild = time(NULL);
	pthread_mutex_unlock(&index->lock);
	return true;
}

void
od_index_invalidate(struct od_index *index)
{
	pthread_mutex_lock(&index->lock);
	index->complete = false;
	pthread_mutex_unlock(&index->lock);
}

bool
od_index_complete(struct od_index *index, time_t *last_rebuild)
{
	bool complete;

	pthread_mutex_lock(&index->lock);
	complete = index->complete;
	if (last_rebuild != NULL)
		*last_rebuild = index->last_rebuild;
	pthread_mutex_unlock(&index->lock);
	return complete;
}

bool
od_domain_within(const char *name, const char *domain)
{
	size_t name_len = strlen(name), domain_len = strlen(domain);

	if (name_len == domain_len)
		return strcmp(name, domain) == 0;
	return name_len > domain_len &&
	    name[name_len - domain_len - 1] == '.' &&
	    strcmp(name + name_len - domain_len, domain) == 0;
}

bool
od_domain_set_has_within(const struct od_domain_set *set, const char *domain)
{
	size_t i, count = od_domain_set_count(set);

	for (i = 0; i < count; i++) {
		if (od_domain_within(od_domain_set_entry(set, i, NULL),
		    domain))
			return true;
	}
	return false;
}

static bool
select_locked(struct od_index *index,
    bool (*wanted)(const struct od_index_entry *, const void *),
    const void *argument, struct od_index_entry **entries, size_t *count)
{
	size_t i, n = 0;

	*entries = malloc((index->count + 1) * sizeof(**entries));
	if (*entries == NULL)
		return false;
	for (i = 0; i < index->count; i++) {
		if (wanted(&index->slots[i].entry, argument))
			(*entries)[n++] = index->slots[i].entry;
	}
	*count = n;
	return true;
}

struct domain_filter {
	const char *domain;
	bool subdomains;
};

static bool
in_domain(const struct od_index_entry *entry, const void *argument)
{
	const struct domain_filter *filter = argument;

	if (filter->subdomains)
		return od_domain_within(entry->domain, filter->domain);
	return strcmp(entry->domain, filter->domain) == 0;
}

bool
od_index_select(struct od_index *index, const char *domain, bool subdomains,
    struct od_index_entry **entries, size_t *count)
{
	struct domain_filter filter = { domain, subdomains };
	bool ok;

	pthread_mutex_lock(&index->lock);
	ok = select_locked(index, in_domain, &filter, entries, count);
	pthread_mutex_unlock(&index->lock);
	return ok;
}

static bool
older_than(const struct od_index_entry *entry, const void *argument)
{
	return entry->held_at < *(const time_t *)argument;
}

bool
od_index_select_older(struct od_index *index, time_t cutoff,
    struct od_index_entry **entries, size_t *count)
{
	bool ok;

	pthread_mutex_lock(&index->lock);
	ok = select_locked(index, older_than, &cutoff, entries, count);
	pthread_mutex_unlock(&index->lock);
	return ok;
}

static int
compare_rows(const void *a, const void *b)
{
	return strcmp(((const struct od_index_domain_status *)a)->domain,
	    ((const struct od_index_domain_status *)b)->domain);
}

bool
od_index_status(struct od_index *index, struct od_index_domain_status **rows,
    size_t *count)
{
	size_t i, n = 0;

	pthread_mutex_lock(&index->lock);
	*rows = calloc(index->count + 1, sizeof(**rows));
	if (*rows == NULL) {
		pthread_mutex_unlock(&index->lock);
		return false;
	}
	for (i = 0; i < index->count; i++) {
		const struct od_index_entry *entry = &index->slots[i].entry;
		size_t r;

		for (r = 0; r < n; r++) {
			if (strcmp((*rows)[r].domain, entry->domain) == 0)
				break;
		}
		if (r == n) {
			memcpy((*rows)[n].domain, entry->domain,
			    sizeof((*rows)[n].domain));
			(*rows)[n].oldest = entry->held_at;
			n++;
		}
		(*rows)[r].messages++;
		(*rows)[r].bytes += entry->size > 0 ? entry->size : 0;
		if (entry->held_at < (*rows)[r].oldest)
			(*rows)[r].oldest = entry->held_at;
	}
	pthread_mutex_unlock(&index->lock);
	qsort(*rows, n, sizeof(**rows), compare_rows);
	*count = n;
	return true;
}

bool
od_index_remove(struct od_index *index, const char *queue_id)
{
	size_t at;

	pthread_mutex_lock(&index->lock);
	at = find_locked(index, queue_id);
	if (at != (size_t)-1) {
		index->slots[at] = index->slots[--index->count];
		if (!rehash_locked(index))
			index->complete = false;
	}
	pthread_mutex_unlock(&index->lock);
	return at != (size_t)-1;
}

bool
od_index_find(struct od_index *index, const char *queue_id,
    struct od_index_entry *entry)
{
	size_t at;

	pthread_mutex_lock(&index->lock);
	at = find_locked(index, queue_id);
	if (at != (size_t)-1)
		*entry = index->slots[at].entry;
	pthread_mutex_unlock(&index->lock);
	return at != (size_t)-1;
}
