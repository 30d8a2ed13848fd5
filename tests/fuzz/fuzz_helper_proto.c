/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: the release helper's protocol lines, both ways
 * (od_helper_request_parse and od_helper_reply_parse).
 *
 * The input is split into lines at newlines, as the two ends read them
 * from their socketpair, and each line is parsed as a request and as a
 * reply.  An accepted request may carry only valid queue IDs and domains,
 * and must come back the same after od_helper_request_format.  An ITEM
 * reply must come back the same after od_helper_item_format.
 */

#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "od_helper_proto.h"

static void
check_request(const struct od_helper_request *request)
{
	const char *ids[OD_HELPER_IDS_MAX];
	struct od_helper_request again;
	unsigned long long tag = strtoull(request->tag, NULL, 10);
	char line[OD_HELPER_LINE_MAX + 1], error[512];
	const char *reason;
	size_t count = request->id_count, length;

	FUZZ_CHECK(strlen(request->tag) >= 1 &&
	    strlen(request->tag) <= OD_HELPER_TAG_DIGITS);
	if (request->verb == OD_HELPER_DELIVERTAG) {
		FUZZ_CHECK(od_helper_domain_valid(request->domain, &reason));
		ids[0] = request->domain;
		count = 1;
	} else {
		FUZZ_CHECK(count <= OD_HELPER_IDS_MAX);
		for (size_t i = 0; i < count; i++) {
			FUZZ_CHECK(od_helper_queue_id_valid(request->ids[i]));
			ids[i] = request->ids[i];
		}
	}

	if (request->verb == OD_HELPER_EXPIRE)
		FUZZ_CHECK(request->age >= 1 &&
		    request->age <= OD_HELPER_AGE_MAX);
	else
		FUZZ_CHECK(request->age == 0);
	length = od_helper_request_format(request->verb, tag, request->age,
	    ids, count, line, sizeof(line));
	FUZZ_CHECK(length > 0 && line[length - 1] == '\n');
	FUZZ_CHECK(od_helper_request_parse(line, length - 1, &again, error,
	    sizeof(error)));
	FUZZ_CHECK(again.verb == request->verb);
	FUZZ_CHECK(strtoull(again.tag, NULL, 10) == tag);
	FUZZ_CHECK(strcmp(again.domain, request->domain) == 0);
	FUZZ_CHECK(again.age == request->age);
	FUZZ_CHECK(again.id_count == request->id_count);
	for (size_t i = 0; i < again.id_count; i++)
		FUZZ_CHECK(strcmp(again.ids[i], request->ids[i]) == 0);
	od_helper_request_free(&again);
}

static void
check_item(const struct od_helper_reply *reply)
{
	const struct od_helper_item *item = &reply->item;
	struct od_helper_reply again;
	char tag[OD_HELPER_TAG_SIZE], line[4096];
	size_t length;

	FUZZ_CHECK(od_helper_queue_id_valid(item->queue_id));
	snprintf(tag, sizeof(tag), "%llu", reply->tag);
	/* The helper leaves out an item whose line does not fit. */
	length = od_helper_item_format(tag, item, line, sizeof(line));
	if (length == 0)
		return;
	FUZZ_CHECK(line[length - 1] == '\n');
	FUZZ_CHECK(od_helper_reply_parse(line, length - 1, &again));
	FUZZ_CHECK(again.type == OD_HELPER_REPLY_ITEM);
	FUZZ_CHECK(again.tag == reply->tag);
	FUZZ_CHECK(strcmp(again.item.queue_id, item->queue_id) == 0);
	FUZZ_CHECK(again.item.size == item->size);
	FUZZ_CHECK(again.item.queued == item->queued);
	FUZZ_CHECK(strcmp(again.item.sender, item->sender) == 0);
	FUZZ_CHECK(strcmp(again.item.reason, item->reason) == 0);
}

static void
parse_line(const char *data, size_t length)
{
	/* An exact copy, so that a read past the line's end is caught. */
	char *line = fuzz_copy(data, length);
	struct od_helper_request request;
	struct od_helper_reply reply;
	char error[512];

	error[0] = '\0';
	if (od_helper_request_parse(line, length, &request, error,
	    sizeof(error))) {
		check_request(&request);
		od_helper_request_free(&request);
	} else {
		FUZZ_CHECK(error[0] != '\0');
		FUZZ_CHECK(request.ids == NULL);
	}

	if (od_helper_reply_parse(line, length, &reply)) {
		if (reply.type == OD_HELPER_REPLY_ITEM)
			check_item(&reply);
		else if (reply.type == OD_HELPER_REPLY_DONE)
			FUZZ_CHECK(reply.status >= 0 && reply.status <= 255);
	}
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	size_t start = 0;

	while (start <= size) {
		const char *newline = memchr(text + start, '\n', size - start);
		size_t end = newline != NULL ? (size_t)(newline - text) : size;

		parse_line(text + start, end - start);
		start = end + 1;
	}
	return 0;
}
