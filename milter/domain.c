/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Domain normalisation and the on-demand domain set.
 *
 * Internationalised names are converted with libidn2 (IDNA 2008, the
 * non-transitional mapping of UTS #46), so "bücher.example" in the
 * configuration and "xn--bcher-kva.example" in a recipient are one domain.
 * The set is a sorted array: lookups are O(log n) for the name itself plus
 * one per parent label for the subdomain entries.
 */

#include "config.h"

#include <ctype.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "od_domain.h"
#include "od_util.h"

/* Longer input cannot become a valid name even after IDNA mapping. */
#define DOMAIN_INPUT_MAX 1024

static const char *
check_host_name(const char *name)
{
	size_t label = 0;
	const char *p;

	if (strlen(name) > OD_DOMAIN_MAX)
		return "is longer than 253 octets";
	for (p = name; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return "has an empty label";
			if (p[-1] == '-')
				return "has a label that ends with a hyphen";
			label = 0;
			continue;
		}
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
		    *p == '-'))
			return "contains a character other than letters, digits, "
			    "hyphens and dots";
		if (label == 0 && *p == '-')
			return "has a label that starts with a hyphen";
		if (++label > 63)
			return "has a label longer than 63 octets";
	}
	if (label == 0)
		return "has an empty label";
	if (p[-1] == '-')
		return "has a label that ends with a hyphen";
	/* An all-numeric last label makes an IP address, not a host name. */
	if (strspn(p - label, "0123456789") == label)
		return "has an all-numeric last label, as an IP address does";
	return NULL;
}

bool
od_domain_normalize(const char *name, char out[OD_DOMAIN_SIZE],
    const char **error)
{
	char buffer[DOMAIN_INPUT_MAX + 1];
	size_t len = strlen(name);
	bool ascii = true;
	size_t i;

	if (len == 0) {
		*error = "is empty";
		return false;
	}
	if (len > DOMAIN_INPUT_MAX) {
		*error = "is longer than 253 octets";
		return false;
	}
	memcpy(buffer, name, len + 1);
	if (buffer[len - 1] == '.')
		buffer[--len] = '\0';
	if (len == 0) {
		*error = "has an empty label";
		return false;
	}

	for (i = 0; i < len; i++) {
		if ((unsigned char)buffer[i] >= 0x80)
			ascii = false;
		else
			buffer[i] = (char)tolower((unsigned char)buffer[i]);
	}

	if (!ascii) {
		char *alabel = NULL;
		int rc = idn2_to_ascii_8z(buffer, &alabel,
		    IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);

		if (rc != IDN2_OK) {
			*error = "is not a valid internationalised domain name";
			return false;
		}
		if (od_strlcpy(buffer, alabel, sizeof(buffer)) >=
		    sizeof(buffer)) {
			idn2_free(alabel);
			*error = "is longer than 253 octets";
			return false;
		}
		idn2_free(alabel);
		for (i = 0; buffer[i] != '\0'; i++)
			buffer[i] = (char)tolower((unsigned char)buffer[i]);
	}

	*error = check_host_name(buffer);
	if (*error != NULL)
		return false;
	memcpy(out, buffer, strlen(buffer) + 1);
	return true;
}

struct domain_entry {
	char *name;
	bool subdomains;
};

struct od_domain_set {
	struct domain_entry *entries;
	size_t count;
	size_t capacity;
};

struct od_domain_set *
od_domain_set_new(void)
{
	return calloc(1, sizeof(struct od_domain_set));
}

void
od_domain_set_free(struct od_domain_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->count; i++)
		free(set->entries[i].name);
	free(set->entries);
	free(set);
}

bool
od_domain_set_add(struct od_domain_set *set, const char *domain,
    bool subdomains)
{
	char *copy;

	if (set->count == set->capacity) {
		size_t capacity = set->capacity ? set->capacity * 2 : 16;
		struct domain_entry *entries = realloc(set->entries,
		    capacity * sizeof(*entries));

		if (entries == NULL)
			return false;
		set->entries = entries;
		set->capacity = capacity;
	}
	copy = strdup(domain);
	if (copy == NULL)
		return false;
	set->entries[set->count].name = copy;
	set->entries[set->count].subdomains = subdomains;
	set->count++;
	return true;
}

static int
compare_entries(const void *a, const void *b)
{
	const struct domain_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return (int)x->subdomains - (int)y->subdomains;
}

void
od_domain_set_finish(struct od_domain_set *set)
{
	size_t i, kept = 0;

	if (set->count == 0)
		return;
	qsort(set->entries, set->count, sizeof(*set->entries),
	    compare_entries);
	/* Drop duplicates so counts and listings show each entry once. */
	for (i = 0; i < set->count; i++) {
		if (kept > 0 &&
		    compare_entries(&set->entries[kept - 1],
		    &set->entries[i]) == 0) {
			free(set->entries[i].name);
			continue;
		}
		set->entries[kept++] = set->entries[i];
	}
	set->count = kept;
}

static bool
contains(const struct od_domain_set *set, const char *name, bool subdomains)
{
	struct domain_entry key = { (char *)name, subdomains };

	return bsearch(&key, set->entries, set->count, sizeof(key),
	    compare_entries) != NULL;
}

bool
od_domain_set_match(const struct od_domain_set *set, const char *domain)
{
	const char *dot;

	if (set == NULL || set->count == 0)
		return false;
	if (contains(set, domain, false))
		return true;
	for (dot = strchr(domain, '.'); dot != NULL;
	    dot = strchr(dot + 1, '.')) {
		if (contains(set, dot + 1, true))
			return true;
	}
	return false;
}

size_t
od_domain_set_count(const struct od_domain_set *set)
{
	return set == NULL ? 0 : set->count;
}

const char *
od_domain_set_entry(const struct od_domain_set *set, size_t i,
    bool *subdomains)
{
	if (subdomains != NULL)
		*subdomains = set->entries[i].subdomains;
	return set->entries[i].name;
}
