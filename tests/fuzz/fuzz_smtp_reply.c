/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: ondemand-etrn's SMTP reply parser (contrib/smtp_reply.c)
 * and what the client does with each reply (contrib/etrn.c).
 *
 * The input is what a server sends.  It is parsed once in one piece and
 * once in pieces whose sizes come from the input itself, and both must
 * give the same replies and the same final status, as smtp_reply.h
 * promises for any split of the octets.
 */

#include "config.h"

#include <string.h>

#include "etrn.h"
#include "fuzz.h"
#include "smtp_reply.h"

/* Replies recorded for the comparison; later ones are only counted. */
#define REPLIES_MAX 64

struct outcome {
	size_t count;
	struct {
		int code;
		char enhanced[SMTP_ENHANCED_SIZE];
		size_t line_count;
		size_t text_length;
		uint32_t text_hash;
	} replies[REPLIES_MAX];
	enum smtp_reply_status status;
	size_t consumed;		/* octets used when parsing stopped */
};

static uint32_t
hash(const char *text, size_t length)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < length; i++)
		h = (h ^ (unsigned char)text[i]) * 16777619u;
	return h;
}

/* Checks one complete reply and uses it as ondemand-etrn does. */
static void
check_reply(const struct smtp_reply *reply, struct outcome *outcome)
{
	char description[ETRN_MESSAGE_SIZE], printable[1024];
	unsigned long number;

	FUZZ_CHECK(reply->code >= 200 && reply->code <= 559);
	FUZZ_CHECK(reply->line_count >= 1 &&
	    reply->line_count <= SMTP_REPLY_LINES_MAX);
	FUZZ_CHECK(reply->text != NULL);
	FUZZ_CHECK(strlen(reply->text) == reply->text_length);
	FUZZ_CHECK(strlen(reply->enhanced) < SMTP_ENHANCED_SIZE);
	(void)smtp_reply_has_keyword(reply, "ETRN");
	(void)smtp_reply_find_number(reply, &number);
	(void)etrn_classify_reply(reply, description, sizeof(description));
	FUZZ_CHECK(memchr(description, '\0', sizeof(description)) != NULL);
	etrn_escape_text(printable, sizeof(printable), reply->text,
	    reply->text_length, 200);

	if (outcome->count < REPLIES_MAX) {
		size_t i = outcome->count;

		outcome->replies[i].code = reply->code;
		memcpy(outcome->replies[i].enhanced, reply->enhanced,
		    sizeof(reply->enhanced));
		outcome->replies[i].line_count = reply->line_count;
		outcome->replies[i].text_length = reply->text_length;
		outcome->replies[i].text_hash = hash(reply->text,
		    reply->text_length);
	}
	outcome->count++;
}

/*
 * Parses data in pieces: of the whole remaining length when sizes is NULL,
 * else of 1 to 64 octets taken in turn from sizes.
 */
static void
parse(const char *data, size_t size, const uint8_t *sizes,
    size_t sizes_count, struct outcome *outcome)
{
	struct smtp_reply_parser parser;
	size_t offset = 0, piece = 0;

	memset(outcome, 0, sizeof(*outcome));
	smtp_reply_parser_init(&parser);
	for (;;) {
		size_t length = size - offset, consumed;
		enum smtp_reply_status status;

		if (sizes != NULL && length > (size_t)sizes[piece] % 64 + 1)
			length = (size_t)sizes[piece] % 64 + 1;
		piece = sizes != NULL ? (piece + 1) % sizes_count : 0;
		status = smtp_reply_parser_feed(&parser, data + offset, length,
		    &consumed);
		FUZZ_CHECK(consumed <= length);
		offset += consumed;
		if (status == SMTP_REPLY_COMPLETE) {
			check_reply(&parser.reply, outcome);
			smtp_reply_parser_reset(&parser);
			continue;
		}
		if (status != SMTP_REPLY_INCOMPLETE || offset == size) {
			outcome->status = status;
			break;
		}
		FUZZ_CHECK(consumed == length);
	}
	FUZZ_CHECK(smtp_reply_status_text(outcome->status)[0] != '\0');
	outcome->consumed = offset;
	smtp_reply_parser_reset(&parser);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outcome whole, pieces;
	const char *text = (const char *)data;

	parse(text, size, NULL, 0, &whole);
	if (size == 0)
		return 0;
	parse(text, size, data, size, &pieces);
	FUZZ_CHECK(whole.status == pieces.status);
	FUZZ_CHECK(whole.count == pieces.count);
	FUZZ_CHECK(whole.consumed == pieces.consumed);
	FUZZ_CHECK(memcmp(whole.replies, pieces.replies,
	    sizeof(whole.replies)) == 0);
	return 0;
}
