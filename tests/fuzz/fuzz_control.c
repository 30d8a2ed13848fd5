/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: the control socket's request handling in the daemon, the
 * other end of ondemandctl.
 *
 * The input is what a client sends on one connection.  The target includes
 * milter/control.c to reach its connection handler, which runs on a
 * socketpair with a real hold index, the ledger client without memcached
 * servers and the stand-in releases of fuzz_daemon.c.  The reply must be
 * rows ("kind<TAB>..."), one per line, and a last line "OK" or "ERROR
 * message", so no argument can end the reply early.
 */

#include "../../milter/control.c"

#include "fuzz.h"
#include "fuzz_daemon.h"
#include "od_index.h"

static void
add_entry(struct od_index_entry *entry, const char *queue_id,
    const char *domain, long long size, time_t held_at)
{
	memset(entry, 0, sizeof(*entry));
	snprintf(entry->queue_id, sizeof(entry->queue_id), "%s", queue_id);
	snprintf(entry->domain, sizeof(entry->domain), "%s", domain);
	snprintf(entry->sender, sizeof(entry->sender), "<a@sender.test>");
	entry->size = size;
	entry->held_at = held_at;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct od_index_entry entries[3];
	struct od_index *index = od_index_new();

	(void)argc;
	(void)argv;
	fuzz_daemon_init();
	FUZZ_CHECK(index != NULL);
	add_entry(&entries[0], "6B4KakNA031584", "example.test", 2113,
	    1796416560);
	add_entry(&entries[1], "6B4Kag6p030950", "example.test", 5,
	    1796416500);
	add_entry(&entries[2], "6B4KakPV031547", "a.branch.example.test", 77,
	    1796416000);
	/* A complete index, so LIST reads it and never resynchronises. */
	FUZZ_CHECK(od_index_rebuild(index, entries, 3,
	    od_index_generation(index)));
	od_control_set_index(index);
	return 0;
}

/* Returns whether line is a data row: a lower-case kind and a tab. */
static bool
is_row(const char *line)
{
	size_t kind = strspn(line, "abcdefghijklmnopqrstuvwxyz-");

	return kind > 0 && line[kind] == '\t';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *output, *line, *newline;
	size_t length;

	if (size > FUZZ_SERVE_MAX)
		return 0;
	output = fuzz_serve(serve_connection, data, size, &length);
	FUZZ_CHECK(length > 0 && output[length - 1] == '\n');
	FUZZ_CHECK(strlen(output) == length);
	for (line = output; (newline = strchr(line, '\n')) != NULL;
	    line = newline + 1) {
		*newline = '\0';
		if (newline + 1 == output + length)
			FUZZ_CHECK(strcmp(line, "OK") == 0 ||
			    strncmp(line, "ERROR ", 6) == 0);
		else
			FUZZ_CHECK(is_row(line));
	}
	free(output);
	return 0;
}
