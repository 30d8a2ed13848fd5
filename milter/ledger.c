/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ledger's keys, entry encoding and quota arithmetic (see od_ledger.h).
 */

#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "od_ledger.h"
#include "od_util.h"

#define ENTRY_MAGIC "odledger 1 "
#define DOMAINS_MAGIC "odledger-domains 1\n"
/* The largest size accepted in an entry: 2^50 octets, a pebibyte. */
#define SIZE_LIMIT (1LL << 50)

static bool
id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static bool
id_valid(const char *text, size_t max)
{
	size_t i;

	for (i = 0; text[i] != '\0'; i++) {
		if (i >= max || !id_char(text[i]))
			return false;
	}
	return i > 0;
}

bool
od_ledger_prefix_valid(const char *text)
{
	return id_valid(text, OD_LEDGER_PREFIX_MAX);
}

bool
od_ledger_host_id_valid(const char *text)
{
	return id_valid(text, OD_HOST_ID_MAX);
}

/* Domains are A-labels or "[error]": no spaces or control characters. */
bool
od_ledger_domain_key_safe(const char *domain)
{
	size_t i;

	for (i = 0; domain[i] != '\0'; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c <= ' ' || c >= 0x7f || i >= OD_DOMAIN_MAX)
			return false;
	}
	return i > 0;
}

void
od_ledger_entry_init(struct od_ledger_entry *entry, const char *domain)
{
	memset(entry, 0, sizeof(*entry));
	od_strlcpy(entry->domain, domain, sizeof(entry->domain));
}

void
od_ledger_entry_clear(struct od_ledger_entry *entry)
{
	free(entry->items);
	entry->items = NULL;
	entry->count = 0;
	entry->allocated = 0;
}

static bool
reserve_items(struct od_ledger_entry *entry, size_t wanted)
{
	struct od_ledger_item *grown;
	size_t allocated;

	if (wanted <= entry->allocated)
		return true;
	allocated = entry->allocated ? entry->allocated : 16;
	while (allocated < wanted) {
		if (allocated > SIZE_MAX / 2 / sizeof(*grown))
			return false;
		allocated *= 2;
	}
	grown = realloc(entry->items, allocated * sizeof(*grown));
	if (grown == NULL)
		return false;
	entry->items = grown;
	entry->allocated = allocated;
	return true;
}

/* Reads a decimal number of at most max; *text moves past it. */
static bool
read_number(const char **text, const char *end, long long max,
    long long *value)
{
	const char *p = *text;
	long long n = 0;

	if (p >= end || *p < '0' || *p > '9')
		return false;
	while (p < end && *p >= '0' && *p <= '9') {
		if (n > (max - (*p - '0')) / 10)
			return false;
		n = n * 10 + (*p - '0');
		p++;
	}
	*text = p;
	*value = n;
	return true;
}

/* Copies a word of id characters ending in a space; *text moves past it. */
static bool
read_word(const char **text, const char *end, char *out, size_t size)
{
	const char *p = *text;
	size_t length = 0;

	while (p < end && id_char(*p)) {
		if (length + 1 >= size)
			return false;
		out[length++] = *p++;
	}
	if (length == 0 || p >= end || *p != ' ')
		return false;
	out[length] = '\0';
	*text = p + 1;
	return true;
}

static bool
decode_item(const char *line, const char *end, struct od_ledger_item *item)
{
	long long size, held_at;

	if (!read_word(&line, end, item->host, sizeof(item->host)) ||
	    !read_word(&line, end, item->queue_id, sizeof(item->queue_id)) ||
	    !read_number(&line, end, SIZE_LIMIT, &size) ||
	    line >= end || *line++ != ' ' ||
	    !read_number(&line, end, INT64_MAX / 2, &held_at) ||
	    line != end)
		return false;
	item->size = size;
	item->held_at = (time_t)held_at;
	return true;
}

bool
od_ledger_entry_decode(const char *value, size_t length, const char *domain,
    struct od_ledger_entry *entry, const char **error)
{
	const char *end = value + length, *line, *newline;
	size_t magic = sizeof(ENTRY_MAGIC) - 1, domain_length = strlen(domain);
	size_t lines = 0;

	od_ledger_entry_init(entry, domain);
	if (length < magic || memcmp(value, ENTRY_MAGIC, magic) != 0) {
		*error = "the value does not start with the ledger's header";
		return false;
	}
	line = value + magic;
	newline = memchr(line, '\n', (size_t)(end - line));
	if (newline == NULL) {
		*error = "the value is truncated in its header";
		return false;
	}
	if ((size_t)(newline - line) != domain_length ||
	    memcmp(line, domain, domain_length) != 0) {
		*error = "the value belongs to another domain";
		return false;
	}
	for (line = newline + 1; line < end; line = newline + 1) {
		struct od_ledger_item item;
		long long count;
		const char *p;

		newline = memchr(line, '\n', (size_t)(end - line));
		if (newline == NULL) {
			*error = "the value is truncated in its last line";
			od_ledger_entry_clear(entry);
			return false;
		}
		/* "end COUNT" closes the value, so a cut value never passes. */
		p = line + 4;
		if ((size_t)(newline - line) > 4 &&
		    memcmp(line, "end ", 4) == 0) {
			if (!read_number(&p, newline, (long long)(SIZE_MAX / 2),
			    &count) || p != newline || newline + 1 != end ||
			    (size_t)count != lines) {
				*error = "the value's closing line does not "
				    "match its lines";
				od_ledger_entry_clear(entry);
				return false;
			}
			return true;
		}
		lines++;
		if (!decode_item(line, newline, &item)) {
			*error = "a line of the value is malformed";
			od_ledger_entry_clear(entry);
			return false;
		}
		/* Appended as read: a lookup per line would cost O(n^2). */
		if (!reserve_items(entry, entry->count + 1)) {
			*error = "out of memory";
			od_ledger_entry_clear(entry);
			return false;
		}
		entry->items[entry->count++] = item;
	}
	*error = "the value is truncated: its closing line is missing";
	od_ledger_entry_clear(entry);
	return false;
}

char *
od_ledger_entry_encode(const struct od_ledger_entry *entry, size_t *length)
{
	/* Host, queue ID, two 20-digit numbers, three spaces and a newline. */
	size_t line_max = OD_HOST_ID_MAX + OD_QUEUE_ID_SIZE + 2 * 20 + 4;
	size_t size, used, i;
	char *text;
	int n;

	if (entry->count > (SIZE_MAX - 512) / line_max)
		return NULL;
	size = sizeof(ENTRY_MAGIC) + strlen(entry->domain) + 2 +
	    (entry->count + 1) * line_max;
	text = malloc(size);
	if (text == NULL)
		return NULL;
	n = snprintf(text, size, "%s%s\n", ENTRY_MAGIC, entry->domain);
	used = (size_t)n;
	for (i = 0; i < entry->count; i++) {
		const struct od_ledger_item *item = &entry->items[i];

		n = snprintf(text + used, size - used, "%s %s %lld %lld\n",
		    item->host, item->queue_id, item->size,
		    (long long)item->held_at);
		used += (size_t)n;
	}
	n = snprintf(text + used, size - used, "end %zu\n", entry->count);
	used += (size_t)n;
	*length = used;
	return text;
}

static size_t
find_item(const struct od_ledger_entry *entry, const char *host,
    const char *queue_id)
{
	size_t i;

	for (i = 0; i < entry->count; i++) {
		if (strcmp(entry->items[i].queue_id, queue_id) == 0 &&
		    strcmp(entry->items[i].host, host) == 0)
			return i;
	}
	return (size_t)-1;
}

bool
od_ledger_entry_put(struct od_ledger_entry *entry,
    const struct od_ledger_item *item)
{
	size_t i = find_item(entry, item->host, item->queue_id);

	if (i != (size_t)-1) {
		entry->items[i] = *item;
		return true;
	}
	if (!reserve_items(entry, entry->count + 1))
		return false;
	entry->items[entry->count++] = *item;
	return true;
}

bool
od_ledger_entry_remove(struct od_ledger_entry *entry, const char *host,
    const char *queue_id)
{
	size_t i = find_item(entry, host, queue_id);

	if (i == (size_t)-1)
		return false;
	entry->items[i] = entry->items[--entry->count];
	return true;
}

bool
od_ledger_entry_replace_host(struct od_ledger_entry *entry, const char *host,
    const struct od_ledger_item *items, size_t count)
{
	size_t kept = 0, i;

	if (!reserve_items(entry, entry->count + count))
		return false;
	for (i = 0; i < entry->count; i++) {
		if (strcmp(entry->items[i].host, host) != 0)
			entry->items[kept++] = entry->items[i];
	}
	entry->count = kept;
	for (i = 0; i < count; i++) {
		entry->items[entry->count] = items[i];
		od_strlcpy(entry->items[entry->count].host, host,
		    sizeof(entry->items[entry->count].host));
		entry->count++;
	}
	return true;
}

void
od_ledger_entry_totals(const struct od_ledger_entry *entry, const char *host,
    size_t *messages, long long *bytes)
{
	size_t i;

	*messages = 0;
	*bytes = 0;
	for (i = 0; i < entry->count; i++) {
		if (host != NULL && strcmp(entry->items[i].host, host) != 0)
			continue;
		(*messages)++;
		*bytes += entry->items[i].size;
	}
}

bool
od_ledger_domains_decode(const char *value, size_t length,
    char (**domains)[OD_DOMAIN_SIZE], size_t *count, const char **error)
{
	const char *end = value + length, *line, *newline;
	size_t magic = sizeof(DOMAINS_MAGIC) - 1, allocated = 0;
	char (*names)[OD_DOMAIN_SIZE] = NULL;

	*domains = NULL;
	*count = 0;
	if (length < magic || memcmp(value, DOMAINS_MAGIC, magic) != 0) {
		*error = "the domain list does not start with its header";
		return false;
	}
	for (line = value + magic; line < end; line = newline + 1) {
		size_t name_length;
		char name[OD_DOMAIN_SIZE];
		long long listed;
		const char *p = line + 4;

		newline = memchr(line, '\n', (size_t)(end - line));
		name_length = newline ? (size_t)(newline - line) : 0;
		if (newline == NULL || name_length == 0 ||
		    name_length > OD_DOMAIN_MAX)
			break;
		if (name_length > 4 && memcmp(line, "end ", 4) == 0) {
			if (!read_number(&p, newline, (long long)(SIZE_MAX / 2),
			    &listed) || p != newline || newline + 1 != end ||
			    (size_t)listed != *count)
				break;
			*domains = names;
			return true;
		}
		memcpy(name, line, name_length);
		name[name_length] = '\0';
		if (!od_ledger_domain_key_safe(name))
			break;
		if (*count == allocated) {
			char (*grown)[OD_DOMAIN_SIZE];

			allocated = allocated ? allocated * 2 : 16;
			grown = realloc(names, allocated * sizeof(*grown));
			if (grown == NULL) {
				*error = "out of memory";
				free(names);
				*count = 0;
				return false;
			}
			names = grown;
		}
		memcpy(names[(*count)++], name, name_length + 1);
	}
	*error = "the domain list is truncated or malformed";
	free(names);
	*count = 0;
	return false;
}

char *
od_ledger_domains_encode(const char (*domains)[OD_DOMAIN_SIZE], size_t count,
    size_t *length)
{
	size_t size = sizeof(DOMAINS_MAGIC) + 32, used, i;
	char *text;

	if (count > (SIZE_MAX - size) / (OD_DOMAIN_SIZE + 1))
		return NULL;
	size += count * (OD_DOMAIN_SIZE + 1);
	text = malloc(size);
	if (text == NULL)
		return NULL;
	used = (size_t)snprintf(text, size, "%s", DOMAINS_MAGIC);
	for (i = 0; i < count; i++)
		used += (size_t)snprintf(text + used, size - used, "%s\n",
		    domains[i]);
	used += (size_t)snprintf(text + used, size - used, "end %zu\n",
	    count);
	*length = used;
	return text;
}

enum od_quota_verdict
od_quota_check(const struct od_quota *quota, long long held_messages,
    long long held_bytes, long long size)
{
	if (held_messages < 0)
		held_messages = 0;
	if (held_bytes < 0)
		held_bytes = 0;
	if (size < 0)
		size = 0;
	if (quota->max_messages > 0 && held_messages >= quota->max_messages)
		return OD_QUOTA_MESSAGES;
	/* held_bytes + size > max_bytes, written so it cannot overflow. */
	/*
	 * A domain that holds nothing takes one message of any size, so a
	 * message larger than the whole limit is not deferred for ever.
	 */
	if (quota->max_bytes > 0 && held_messages > 0 &&
	    (held_bytes > quota->max_bytes ||
	    size > quota->max_bytes - held_bytes))
		return OD_QUOTA_BYTES;
	return OD_QUOTA_OK;
}
