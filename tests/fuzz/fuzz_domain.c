/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: domain names as the configuration, ETRN and recipients give
 * them (od_domain_normalize), and the on-demand domain set.
 *
 * Input: lines.  Every line but the last is a set entry, ".NAME" for the
 * subdomains of NAME, and the last line is the name looked up.  A normal
 * form must normalise to itself and pass the release helper's check.  The
 * set must match exactly the names that a linear search over the entries
 * matches.
 */

#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "od_domain.h"
#include "od_helper_proto.h"

#define ENTRIES_MAX 64

struct entry {
	char name[OD_DOMAIN_SIZE];
	bool subdomains;
};

/* Normalises text and checks the properties every normal form has. */
static bool
normalize_checked(const char *text, char out[OD_DOMAIN_SIZE])
{
	char again[OD_DOMAIN_SIZE];
	const char *error = NULL;

	if (!od_domain_normalize(text, out, &error)) {
		FUZZ_CHECK(error != NULL && error[0] != '\0');
		return false;
	}
	FUZZ_CHECK(strlen(out) <= OD_DOMAIN_MAX);
	FUZZ_CHECK(od_domain_normalize(out, again, &error));
	FUZZ_CHECK(strcmp(out, again) == 0);
	FUZZ_CHECK(od_helper_domain_valid(out, &error));
	return true;
}

/* Returns whether name is "LABELS.parent". */
static bool
ends_with_label(const char *name, const char *parent)
{
	size_t name_length = strlen(name), parent_length = strlen(parent);

	return name_length > parent_length + 1 &&
	    name[name_length - parent_length - 1] == '.' &&
	    memcmp(name + name_length - parent_length, parent,
	    parent_length) == 0;
}

/* The set's meaning, spelled out: an exact entry, or a parent entry. */
static bool
linear_match(const struct entry *entries, size_t count, const char *name)
{
	size_t i;

	for (i = 0; i < count; i++) {
		if (!entries[i].subdomains) {
			if (strcmp(name, entries[i].name) == 0)
				return true;
			continue;
		}
		if (ends_with_label(name, entries[i].name))
			return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct entry entries[ENTRIES_MAX];
	char *text = fuzz_string(data, size);
	char *line = text, *newline;
	char query[OD_DOMAIN_SIZE];
	struct od_domain_set *set;
	size_t count = 0;
	bool query_valid;

	set = od_domain_set_new();
	FUZZ_CHECK(set != NULL);
	while ((newline = strchr(line, '\n')) != NULL &&
	    count < ENTRIES_MAX) {
		bool subdomains = line[0] == '.';

		*newline = '\0';
		if (normalize_checked(line + (subdomains ? 1 : 0),
		    entries[count].name)) {
			entries[count].subdomains = subdomains;
			FUZZ_CHECK(od_domain_set_add(set, entries[count].name,
			    subdomains));
			count++;
		}
		line = newline + 1;
	}
	od_domain_set_finish(set);
	FUZZ_CHECK(od_domain_set_count(set) <= count);

	query_valid = normalize_checked(line, query);
	if (query_valid)
		FUZZ_CHECK(od_domain_set_match(set, query) ==
		    linear_match(entries, count, query));
	for (size_t i = 0; i < count; i++)
		FUZZ_CHECK(od_domain_set_match(set, entries[i].name) ==
		    linear_match(entries, count, entries[i].name));

	od_domain_set_free(set);
	free(text);
	return 0;
}
