/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hold index: which queue IDs each on-demand domain holds, with size,
 * hold time and sender, so a release touches only that domain's messages.
 *
 * The queue is the source of truth.  The index starts incomplete and
 * becomes complete when it is rebuilt from a listing of the held items.
 * While it is incomplete, callers must select messages from the queue.
 * All functions are thread-safe.
 */
#ifndef OD_INDEX_H
#define OD_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "od_domain.h"

/*
 * The quarantine reason of a held message is this prefix, a space and the
 * domain between brackets: "ondemand [example.test]".  The brackets keep
 * one domain's tag from being a substring of another's.
 */
#define OD_HOLD_REASON_PREFIX "ondemand"

struct od_index;

struct od_index_entry {
	char queue_id[24];
	char domain[OD_DOMAIN_SIZE];
	long long size;
	time_t held_at;
	char sender[256];
};

struct od_index_domain_status {
	char domain[OD_DOMAIN_SIZE];
	size_t messages;
	long long bytes;
	time_t oldest;
};

struct od_index *od_index_new(void);
void od_index_free(struct od_index *index);

/* Records a hold.  Returns false when memory runs out. */
bool od_index_add(struct od_index *index, const struct od_index_entry *entry);

/*
 * Returns a generation number to pass to od_index_rebuild: entries added
 * after this call survive a rebuild from a listing taken after it.
 */
unsigned long long od_index_generation(struct od_index *index);

/*
 * Replaces the contents with a listing of the queue's held items taken
 * after od_index_generation returned generation, keeping entries added
 * since, and marks the index complete.
 */
bool od_index_rebuild(struct od_index *index,
    const struct od_index_entry *entries, size_t count,
    unsigned long long generation);

/* Marks the index incomplete, for example after a failed listing. */
void od_index_invalidate(struct od_index *index);

bool od_index_complete(struct od_index *index, time_t *last_rebuild);

/*
 * Copies the entries of domain (and, with subdomains, of every domain
 * below it) into a malloc'ed array.  Returns false when memory runs out.
 */
bool od_index_select(struct od_index *index, const char *domain,
    bool subdomains, struct od_index_entry **entries, size_t *count);

/* Copies the entries held since before cutoff, of every domain. */
bool od_index_select_older(struct od_index *index, time_t cutoff,
    struct od_index_entry **entries, size_t *count);

/* Returns one status row per domain with held messages, sorted by name. */
bool od_index_status(struct od_index *index,
    struct od_index_domain_status **rows, size_t *count);

/* Copies the entry of queue_id into entry; returns whether it exists. */
bool od_index_find(struct od_index *index, const char *queue_id,
    struct od_index_entry *entry);

/* Removes one queue ID; returns whether it was there. */
bool od_index_remove(struct od_index *index, const char *queue_id);

/* Returns whether domain is name itself or a name below it. */
bool od_domain_within(const char *name, const char *domain);

/* Returns whether any entry of set is domain or lies below it. */
bool od_domain_set_has_within(const struct od_domain_set *set,
    const char *domain);

#endif
