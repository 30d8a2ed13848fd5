/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: the parser of `sendmail -bp -qQ` listings (od_mailq_line
 * and the rest of helper_mailq.c) and od_queue_file_reason.
 *
 * The input is a listing.  It is split into lines at newlines, as the
 * release helper splits sendmail's output.  Each line is passed in a
 * buffer of its exact length with no NUL after it, because the helper
 * passes a slice of its read buffer.  Every item must have a valid queue
 * ID and must survive the helper's ITEM line to the daemon unchanged.  The
 * whole input is also read as a queue control file.
 */

#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "od_helper_proto.h"

/* 2026-12-04 21:00:00 UTC; listing times are read relative to it. */
#define FUZZ_NOW ((time_t)1796418000)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Listing times are local time; make them the same everywhere. */
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static void
check_item(const struct od_mailq_item *entry)
{
	const struct od_helper_item *item = &entry->item;
	struct od_helper_reply reply;
	char line[4096];
	size_t length;

	FUZZ_CHECK(od_helper_queue_id_valid(item->queue_id));
	FUZZ_CHECK(strchr(" *X-?", entry->marker) != NULL &&
	    entry->marker != '\0');
	FUZZ_CHECK(item->size >= -1);
	FUZZ_CHECK(item->queued != (time_t)-1 && item->queued <= FUZZ_NOW);
	FUZZ_CHECK(memchr(entry->directory, '\0',
	    sizeof(entry->directory)) != NULL);

	length = od_helper_item_format("7", item, line, sizeof(line));
	if (length == 0)
		return;
	FUZZ_CHECK(od_helper_reply_parse(line, length - 1, &reply));
	FUZZ_CHECK(reply.type == OD_HELPER_REPLY_ITEM && reply.tag == 7);
	FUZZ_CHECK(strcmp(reply.item.queue_id, item->queue_id) == 0);
	FUZZ_CHECK(reply.item.size == item->size);
	FUZZ_CHECK(reply.item.queued == item->queued);
	FUZZ_CHECK(strcmp(reply.item.sender, item->sender) == 0);
	FUZZ_CHECK(strcmp(reply.item.reason, item->reason) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct od_mailq_parser parser;
	static struct od_mailq_item entry;
	const char *text = (const char *)data;
	char error[512], reason[OD_DOMAIN_SIZE + 32];
	size_t start = 0;

	od_mailq_init(&parser, FUZZ_NOW);
	while (start < size) {
		const char *newline = memchr(text + start, '\n', size - start);
		size_t end = newline != NULL ? (size_t)(newline - text) : size;
		char *line = fuzz_copy(text + start, end - start);

		if (od_mailq_line(&parser, line, end - start, &entry))
			check_item(&entry);
		free(line);
		start = end + 1;
	}
	if (od_mailq_finish(&parser, &entry))
		check_item(&entry);
	error[0] = '\0';
	if (!od_mailq_complete(&parser, error, sizeof(error)))
		FUZZ_CHECK(error[0] != '\0');

	if (od_queue_file_reason(text, size, reason, sizeof(reason)))
		FUZZ_CHECK(strlen(reason) < sizeof(reason));
	return 0;
}
