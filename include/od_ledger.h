/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The shared hold ledger's data: memcached keys, the encoding of a domain's
 * entry, and quota arithmetic.  Nothing here talks to a server; the daemon's
 * ledger client (od_ledger_client.h) does.
 *
 * A domain's entry lists every held message of that domain on every MX
 * host, one line per message:
 *
 *	odledger 1 example.test
 *	mx1.example.net 4B3C2D1E0F000123 2048 1796400000
 *	end 1
 *
 * that is the host ID, the queue ID, the size in octets and the hold time,
 * closed by the number of lines so that a cut value is never trusted.
 * Values read from memcached are checked line by line; anything malformed
 * makes the whole entry untrusted, and the caller falls back to the queue.
 */
#ifndef OD_LEDGER_H
#define OD_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "od_domain.h"

/* memcached refuses keys longer than this. */
#define OD_LEDGER_KEY_MAX 250
#define OD_LEDGER_KEY_SIZE (OD_LEDGER_KEY_MAX + 1)
#define OD_LEDGER_PREFIX_MAX 64
#define OD_HOST_ID_MAX 64
#define OD_HOST_ID_SIZE (OD_HOST_ID_MAX + 1)
#define OD_QUEUE_ID_SIZE 24
/* The pseudo-domain under which mail held after an internal error sits. */
#define OD_LEDGER_ERROR_DOMAIN "[error]"

enum od_ledger_key_kind {
	OD_LEDGER_KEY_ENTRY,	/* the domain's held messages */
	OD_LEDGER_KEY_RELEASE	/* when a release for the domain was asked */
};

struct od_ledger_item {
	char host[OD_HOST_ID_SIZE];
	char queue_id[OD_QUEUE_ID_SIZE];
	long long size;
	time_t held_at;
};

struct od_ledger_entry {
	char domain[OD_DOMAIN_SIZE];
	struct od_ledger_item *items;
	size_t count;
	size_t allocated;
};

/* Returns whether text is a valid MemcachedPrefix: 1 to 64 of A-Z a-z 0-9 . _ - */
bool od_ledger_prefix_valid(const char *text);

/* Returns whether text is a valid HostId: 1 to 64 of A-Z a-z 0-9 . _ - */
bool od_ledger_host_id_valid(const char *text);

/* Returns whether domain may appear in a key: no spaces or controls. */
bool od_ledger_domain_key_safe(const char *domain);

/*
 * Writes the key of domain into key.  A key that fits is
 * "PREFIX:d:DOMAIN" (or ":r:" for the release key).  A longer one keeps the
 * domain's first octets and ends in "~" and 16 hex digits of two hashes of
 * the whole name, with the kind letter in upper case so the two forms never
 * meet.  The entry itself repeats the full domain, so a hash collision is
 * detected when the entry is read.  Returns false for an invalid prefix or
 * an empty domain.
 */
bool od_ledger_key(const char *prefix, enum od_ledger_key_kind kind,
    const char *domain, char key[OD_LEDGER_KEY_SIZE]);

/* The key of the list of domains that have entries, and of a host's mark. */
bool od_ledger_domains_key(const char *prefix, char key[OD_LEDGER_KEY_SIZE]);
bool od_ledger_host_key(const char *prefix, const char *host_id,
    char key[OD_LEDGER_KEY_SIZE]);

void od_ledger_entry_init(struct od_ledger_entry *entry, const char *domain);
void od_ledger_entry_clear(struct od_ledger_entry *entry);

/*
 * Parses a value read for domain.  Returns false, with a sentence in error,
 * for a value that is truncated, malformed or names another domain.
 */
bool od_ledger_entry_decode(const char *value, size_t length,
    const char *domain, struct od_ledger_entry *entry, const char **error);

/* Returns the malloc'ed text of entry, or NULL when memory runs out. */
char *od_ledger_entry_encode(const struct od_ledger_entry *entry,
    size_t *length);

/*
 * Adds an item, replacing one with the same host and queue ID.  Returns
 * false when memory runs out.
 */
bool od_ledger_entry_put(struct od_ledger_entry *entry,
    const struct od_ledger_item *item);

/* Removes the item of host and queue_id; returns whether it was there. */
bool od_ledger_entry_remove(struct od_ledger_entry *entry, const char *host,
    const char *queue_id);

/*
 * Replaces every item of host with items[0..count).  Returns false when
 * memory runs out, leaving entry unchanged.
 */
bool od_ledger_entry_replace_host(struct od_ledger_entry *entry,
    const char *host, const struct od_ledger_item *items, size_t count);

/* Counts the messages and octets of host, or of every host when NULL. */
void od_ledger_entry_totals(const struct od_ledger_entry *entry,
    const char *host, size_t *messages, long long *bytes);

/*
 * The list of domains with entries: one domain per line after the line
 * "odledger-domains 1", closed by "end COUNT".  Decoding fills a malloc'ed array of names.
 */
bool od_ledger_domains_decode(const char *value, size_t length,
    char (**domains)[OD_DOMAIN_SIZE], size_t *count, const char **error);
char *od_ledger_domains_encode(const char (*domains)[OD_DOMAIN_SIZE],
    size_t count, size_t *length);

/* Quota limits for one domain; 0 means no limit. */
struct od_quota {
	long long max_messages;
	long long max_bytes;
};

enum od_quota_verdict {
	OD_QUOTA_OK,
	OD_QUOTA_MESSAGES,	/* one more message would pass max_messages */
	OD_QUOTA_BYTES		/* size more octets would pass max_bytes */
};

/*
 * Decides whether one more message of size octets fits beside what the
 * domain holds.  The comparisons cannot overflow, whatever the figures.
 */
enum od_quota_verdict od_quota_check(const struct od_quota *quota,
    long long held_messages, long long held_bytes, long long size);

#endif
