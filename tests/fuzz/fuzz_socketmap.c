/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: the socket map server that sendmail's check_etrn ruleset
 * queries, from the netstring framing to the reply.
 *
 * The input is what sendmail would send on one connection.  The target
 * includes milter/socketmap.c to reach its connection handler, which
 * runs on a socketpair against the stand-in releases of fuzz_daemon.c.
 * Every reply must be a netstring with a socketmap status, and there must
 * be one reply per well-formed request before the first malformed one.
 */

#include "../../milter/socketmap.c"

#include "fuzz.h"
#include "fuzz_daemon.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_daemon_init();
	return 0;
}

/* Counts the well-formed requests before the first malformed one. */
static size_t
count_requests(const char *data, size_t size)
{
	struct od_netstring netstring;
	size_t offset = 0, count = 0;

	while (od_netstring_parse(data + offset, size - offset,
	    REQUEST_MAX - 1, &netstring) == OD_NETSTRING_OK) {
		count++;
		offset += netstring.length;
	}
	return count;
}

static bool
is_reply(const char *payload, size_t length)
{
	static const char *const statuses[] = {
		"OK ", "NOTFOUND ", "TEMP ", "PERM "
	};

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		size_t n = strlen(statuses[i]);

		if (length >= n && memcmp(payload, statuses[i], n) == 0)
			return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct od_netstring netstring;
	size_t length, offset = 0, replies = 0;
	char *output;

	if (size > FUZZ_SERVE_MAX)
		return 0;
	output = fuzz_serve(serve_connection, data, size, &length);
	while (offset < length) {
		FUZZ_CHECK(od_netstring_parse(output + offset, length - offset,
		    REQUEST_MAX - 1, &netstring) == OD_NETSTRING_OK);
		FUZZ_CHECK(is_reply(output + offset + netstring.payload_offset,
		    netstring.payload_length));
		offset += netstring.length;
		replies++;
	}
	FUZZ_CHECK(replies == count_requests((const char *)data, size));
	free(output);
	return 0;
}
