/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The release helper's protocol and the parsers it needs: request lines,
 * reply lines and the `sendmail -bp -qQ` listing.  No I/O happens here.
 *
 * Requests are validated strictly because each queue ID and domain ends up
 * in the argument vector of a sendmail that runs as root.  Tokens are
 * separated by exactly one space, only printable ASCII is accepted, and
 * every argument is checked against its own grammar.
 */

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "od_domain.h"
#include "od_helper_proto.h"
#include "od_util.h"

/* Maximum length of a bad token quoted in an error message. */
#define QUOTE_MAX 48
/* Digits of OD_HELPER_AGE_MAX. */
#define AGE_DIGITS 8

static const char *const verb_names[] = {
	[OD_HELPER_DELIVER] = "DELIVER",
	[OD_HELPER_DELIVERTAG] = "DELIVERTAG",
	[OD_HELPER_UNHOLD] = "UNHOLD",
	[OD_HELPER_EXPIRE] = "EXPIRE",
	[OD_HELPER_LIST] = "LIST",
};

#define VERB_COUNT (sizeof(verb_names) / sizeof(verb_names[0]))

const char *
od_helper_verb_name(enum od_helper_verb verb)
{
	if ((size_t)verb >= VERB_COUNT)
		return "UNKNOWN";
	return verb_names[verb];
}

bool
od_helper_queue_id_valid(const char *id)
{
	size_t len;

	for (len = 0; id[len] != '\0'; len++) {
		if (len >= OD_QUEUE_ID_MAX)
			return false;
		if (!isalnum((unsigned char)id[len]) ||
		    (unsigned char)id[len] >= 0x80)
			return false;
	}
	return len >= OD_QUEUE_ID_MIN;
}

bool
od_helper_domain_valid(const char *domain, const char **error)
{
	char normal[OD_DOMAIN_SIZE];

	if (strlen(domain) > OD_DOMAIN_MAX) {
		*error = "is longer than 253 octets";
		return false;
	}
	if (!od_domain_normalize(domain, normal, error))
		return false;
	/*
	 * Upper case, a trailing dot or U-labels normalise fine but would not
	 * match the reason the filter wrote, so only the normal form passes.
	 */
	if (strcmp(normal, domain) != 0) {
		*error = "is not in normal form (lower case A-labels without a "
		    "trailing dot)";
		return false;
	}
	return true;
}

/* A token of a request line: a slice of the line, not terminated. */
struct token {
	const char *start;
	size_t length;
};

/* Copies a token into out for a message, escaped and cut to QUOTE_MAX. */
static void
quote_token(char *out, size_t out_size, const struct token *token)
{
	char raw[QUOTE_MAX + 2];
	size_t n = token->length;
	size_t i;

	if (n > QUOTE_MAX + 1)
		n = QUOTE_MAX + 1;
	/* A NUL would end the copy early, so show it as a visible octet. */
	for (i = 0; i < n; i++)
		raw[i] = token->start[i] == '\0' ? '\x01' : token->start[i];
	raw[n] = '\0';
	od_escape(out, out_size, raw, QUOTE_MAX);
}

static bool
token_is_tag(const struct token *token)
{
	size_t i;

	if (token->length < 1 || token->length > OD_HELPER_TAG_DIGITS)
		return false;
	for (i = 0; i < token->length; i++)
		if (!isdigit((unsigned char)token->start[i]))
			return false;
	return true;
}

static bool
token_equals(const struct token *token, const char *text)
{
	return token->length == strlen(text) &&
	    memcmp(token->start, text, token->length) == 0;
}

/*
 * Finds the token after *position and returns false at the end of the
 * line.  An empty token (two spaces in a row, or a space at either end)
 * comes back with length 0.
 */
static bool
next_token(const char *line, size_t length, size_t *position,
    struct token *token)
{
	size_t start = *position;
	size_t end = start;

	if (start > length)
		return false;
	while (end < length && line[end] != ' ')
		end++;
	token->start = line + start;
	token->length = end - start;
	*position = end + 1;
	return true;
}

/* Stores the tag for an ERROR reply before the rest is checked. */
static void
extract_tag(const char *line, size_t length, char tag[OD_HELPER_TAG_SIZE])
{
	struct token verb, candidate;
	size_t position = 0;

	strcpy(tag, "0");
	if (!next_token(line, length, &position, &verb) ||
	    !next_token(line, length, &position, &candidate))
		return;
	if (token_is_tag(&candidate)) {
		memcpy(tag, candidate.start, candidate.length);
		tag[candidate.length] = '\0';
	}
}

static bool
check_octets(const char *line, size_t length, char *error, size_t error_size)
{
	size_t i;

	for (i = 0; i < length; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\0') {
			snprintf(error, error_size, "request contains a NUL "
			    "octet at offset %zu", i);
			return false;
		}
		if (c < 0x20 || c > 0x7e) {
			snprintf(error, error_size, "request contains the "
			    "octet 0x%02x at offset %zu; only printable ASCII "
			    "is accepted", c, i);
			return false;
		}
	}
	return true;
}

static bool
parse_verb(const struct token *token, enum od_helper_verb *verb)
{
	size_t i;

	for (i = 0; i < VERB_COUNT; i++) {
		if (token_equals(token, verb_names[i])) {
			*verb = (enum od_helper_verb)i;
			return true;
		}
	}
	return false;
}

static bool
parse_domain_argument(const char *line, size_t length, size_t position,
    struct od_helper_request *request, char *error, size_t error_size)
{
	struct token token, extra;
	char quoted[QUOTE_MAX * 4 + 8];
	const char *reason;

	if (!next_token(line, length, &position, &token)) {
		snprintf(error, error_size, "DELIVERTAG needs a domain");
		return false;
	}
	if (next_token(line, length, &position, &extra)) {
		snprintf(error, error_size, "DELIVERTAG takes one domain, "
		    "found more arguments");
		return false;
	}
	quote_token(quoted, sizeof(quoted), &token);
	if (token.length > OD_DOMAIN_MAX) {
		snprintf(error, error_size, "invalid domain \"%s\": is longer "
		    "than 253 octets", quoted);
		return false;
	}
	memcpy(request->domain, token.start, token.length);
	request->domain[token.length] = '\0';
	if (!od_helper_domain_valid(request->domain, &reason)) {
		snprintf(error, error_size, "invalid domain \"%s\": %s",
		    quoted, reason);
		request->domain[0] = '\0';
		return false;
	}
	return true;
}

static bool
parse_id_arguments(const char *line, size_t length, size_t position,
    struct od_helper_request *request, char *error, size_t error_size)
{
	struct token token;
	size_t scan = position;
	size_t count = 0;
	size_t i;

	while (next_token(line, length, &scan, &token))
		count++;
	if (count == 0) {
		snprintf(error, error_size, "%s needs at least one queue ID",
		    od_helper_verb_name(request->verb));
		return false;
	}
	if (count > OD_HELPER_IDS_MAX) {
		snprintf(error, error_size, "%s has %zu queue IDs, more than "
		    "the maximum of %d; split it into several requests",
		    od_helper_verb_name(request->verb), count,
		    OD_HELPER_IDS_MAX);
		return false;
	}
	request->ids = calloc(count, sizeof(*request->ids));
	if (request->ids == NULL) {
		snprintf(error, error_size, "out of memory for %zu queue IDs",
		    count);
		return false;
	}
	for (i = 0; i < count; i++) {
		char *id = request->ids[i];

		bool valid = false;

		next_token(line, length, &position, &token);
		if (token.length <= OD_QUEUE_ID_MAX) {
			memcpy(id, token.start, token.length);
			id[token.length] = '\0';
			valid = od_helper_queue_id_valid(id);
		}
		if (!valid) {
			char quoted[QUOTE_MAX * 4 + 8];

			quote_token(quoted, sizeof(quoted), &token);
			snprintf(error, error_size, "invalid queue ID \"%s\": "
			    "expected %d to %d letters and digits", quoted,
			    OD_QUEUE_ID_MIN, OD_QUEUE_ID_MAX);
			free(request->ids);
			request->ids = NULL;
			return false;
		}
	}
	request->id_count = count;
	return true;
}

/* Reads EXPIRE's age, in seconds, and moves *position past it. */
static bool
parse_age(const char *line, size_t length, size_t *position,
    struct od_helper_request *request, char *error, size_t error_size)
{
	char quoted[QUOTE_MAX * 4 + 8];
	struct token token;
	unsigned long age = 0;
	size_t i;

	if (!next_token(line, length, position, &token)) {
		snprintf(error, error_size, "EXPIRE needs an age in seconds "
		    "and at least one queue ID");
		return false;
	}
	for (i = 0; i < token.length && age <= OD_HELPER_AGE_MAX; i++) {
		if (!isdigit((unsigned char)token.start[i]))
			break;
		age = age * 10 + (unsigned long)(token.start[i] - '0');
	}
	if (i < token.length || age < 1 || age > OD_HELPER_AGE_MAX) {
		quote_token(quoted, sizeof(quoted), &token);
		snprintf(error, error_size, "invalid EXPIRE age \"%s\": "
		    "expected 1 to %lu seconds", quoted, OD_HELPER_AGE_MAX);
		return false;
	}
	request->age = age;
	return true;
}

bool
od_helper_request_parse(const char *line, size_t length,
    struct od_helper_request *request, char *error, size_t error_size)
{
	struct token verb, tag, token;
	char quoted[QUOTE_MAX * 4 + 8];
	size_t position = 0;

	memset(request, 0, sizeof(*request));
	extract_tag(line, length, request->tag);

	if (length == 0) {
		snprintf(error, error_size, "empty request line");
		return false;
	}
	if (length >= OD_HELPER_LINE_MAX) {
		snprintf(error, error_size, "request is longer than %d octets",
		    OD_HELPER_LINE_MAX - 1);
		return false;
	}
	if (!check_octets(line, length, error, error_size))
		return false;

	/* Reject empty tokens first, so later checks never get a blank field. */
	while (next_token(line, length, &position, &token)) {
		if (token.length == 0) {
			snprintf(error, error_size, "request has an empty "
			    "field (two spaces in a row, or a space at the "
			    "start or end)");
			return false;
		}
	}

	position = 0;
	next_token(line, length, &position, &verb);
	if (!parse_verb(&verb, &request->verb)) {
		quote_token(quoted, sizeof(quoted), &verb);
		snprintf(error, error_size, "unknown request \"%s\": expected "
		    "DELIVER, DELIVERTAG, UNHOLD, EXPIRE or LIST", quoted);
		return false;
	}
	if (!next_token(line, length, &position, &tag)) {
		snprintf(error, error_size, "%s has no tag",
		    od_helper_verb_name(request->verb));
		return false;
	}
	if (!token_is_tag(&tag)) {
		quote_token(quoted, sizeof(quoted), &tag);
		snprintf(error, error_size, "invalid tag \"%s\": expected 1 "
		    "to %d digits", quoted, OD_HELPER_TAG_DIGITS);
		return false;
	}

	switch (request->verb) {
	case OD_HELPER_LIST:
		if (next_token(line, length, &position, &token)) {
			snprintf(error, error_size, "LIST takes no arguments");
			return false;
		}
		return true;
	case OD_HELPER_DELIVERTAG:
		return parse_domain_argument(line, length, position, request,
		    error, error_size);
	case OD_HELPER_EXPIRE:
		if (!parse_age(line, length, &position, request, error,
		    error_size))
			return false;
		return parse_id_arguments(line, length, position, request,
		    error, error_size);
	case OD_HELPER_DELIVER:
	case OD_HELPER_UNHOLD:
		return parse_id_arguments(line, length, position, request,
		    error, error_size);
	}
	snprintf(error, error_size, "unhandled request verb");
	return false;
}

void
od_helper_request_free(struct od_helper_request *request)
{
	free(request->ids);
	request->ids = NULL;
	request->id_count = 0;
}

size_t
od_helper_request_fit(enum od_helper_verb verb, const char *const *ids,
    size_t count)
{
	/* verb, space, the longest tag, newline, and EXPIRE's longest age */
	size_t used = strlen(od_helper_verb_name(verb)) + 1 +
	    OD_HELPER_TAG_DIGITS + 1 +
	    (verb == OD_HELPER_EXPIRE ? 1 + AGE_DIGITS : 0);
	size_t n;

	for (n = 0; n < count && n < OD_HELPER_IDS_MAX; n++) {
		size_t add = 1 + strlen(ids[n]);

		if (used + add > OD_HELPER_LINE_MAX)
			break;
		used += add;
	}
	return n;
}

size_t
od_helper_request_format(enum od_helper_verb verb, unsigned long long tag,
    unsigned long age, const char *const *ids, size_t count, char *out,
    size_t out_size)
{
	const char *reason;
	size_t used;
	size_t i;
	int n;

	if ((size_t)verb >= VERB_COUNT || tag > 9999999999ULL)
		return 0;
	if (verb == OD_HELPER_LIST && count != 0)
		return 0;
	if (verb == OD_HELPER_DELIVERTAG &&
	    (count != 1 || !od_helper_domain_valid(ids[0], &reason)))
		return 0;
	if ((verb == OD_HELPER_DELIVER || verb == OD_HELPER_UNHOLD ||
	    verb == OD_HELPER_EXPIRE) &&
	    (count == 0 || count > OD_HELPER_IDS_MAX))
		return 0;

	if (verb == OD_HELPER_EXPIRE ? age < 1 || age > OD_HELPER_AGE_MAX :
	    age != 0)
		return 0;

	if (verb == OD_HELPER_EXPIRE)
		n = snprintf(out, out_size, "%s %llu %lu",
		    od_helper_verb_name(verb), tag, age);
	else
		n = snprintf(out, out_size, "%s %llu",
		    od_helper_verb_name(verb), tag);
	if (n < 0 || (size_t)n >= out_size)
		return 0;
	used = (size_t)n;
	for (i = 0; i < count; i++) {
		size_t len = strlen(ids[i]);

		if (verb != OD_HELPER_DELIVERTAG &&
		    !od_helper_queue_id_valid(ids[i]))
			return 0;
		if (used + 1 + len + 2 > out_size)
			return 0;
		out[used++] = ' ';
		memcpy(out + used, ids[i], len);
		used += len;
	}
	out[used++] = '\n';
	out[used] = '\0';
	if (used > OD_HELPER_LINE_MAX)
		return 0;
	return used;
}

void
od_helper_escape(char *out, size_t out_size, const char *in,
    bool escape_space)
{
	size_t used = 0;
	size_t i;

	if (out_size == 0)
		return;
	for (i = 0; in[i] != '\0'; i++) {
		unsigned char c = (unsigned char)in[i];
		bool escape = c < 0x20 || c > 0x7e || c == '\\' ||
		    (c == ' ' && escape_space);

		if (escape) {
			if (used + 4 >= out_size)
				break;
			snprintf(out + used, 5, "\\x%02x", c);
			used += 4;
		} else {
			if (used + 1 >= out_size)
				break;
			out[used++] = (char)c;
		}
	}
	out[used] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reverses od_helper_escape for length octets of in.  Returns false on a
 * malformed escape; the result is cut to out_size.
 */
static bool
unescape(char *out, size_t out_size, const char *in, size_t length)
{
	size_t used = 0;
	size_t i = 0;

	while (i < length) {
		char c = in[i];

		if (c == '\\') {
			int high, low;

			if (length - i < 4)
				return false;
			if (in[i + 1] != 'x')
				return false;
			high = hex_value(in[i + 2]);
			low = hex_value(in[i + 3]);
			if (high < 0 || low < 0)
				return false;
			c = (char)(high * 16 + low);
			i += 4;
		} else {
			i++;
		}
		if (used + 1 < out_size)
			out[used++] = c;
	}
	if (out_size > 0)
		out[used] = '\0';
	return true;
}

size_t
od_helper_item_format(const char *tag, const struct od_helper_item *item,
    char *out, size_t out_size)
{
	char sender[sizeof(item->sender) * 4];
	char reason[sizeof(item->reason) * 4];
	int n;

	if (item->sender[0] == '\0')
		strcpy(sender, "\\x00");
	else
		od_helper_escape(sender, sizeof(sender), item->sender, true);
	od_helper_escape(reason, sizeof(reason), item->reason, false);
	n = snprintf(out, out_size, "ITEM %s %s %lld %lld %s %s\n", tag,
	    item->queue_id, item->size, (long long)item->queued, sender,
	    reason);
	if (n < 0 || (size_t)n >= out_size || n > OD_HELPER_LINE_MAX)
		return 0;
	return (size_t)n;
}

static bool
parse_tag_value(const struct token *token, unsigned long long *tag)
{
	unsigned long long value = 0;
	size_t i;

	if (!token_is_tag(token))
		return false;
	for (i = 0; i < token->length; i++)
		value = value * 10 + (unsigned long long)(token->start[i] - '0');
	*tag = value;
	return true;
}

static bool
parse_number(const struct token *token, long long min, long long max,
    long long *value)
{
	char text[32];
	char *end;

	if (token->length == 0 || token->length >= sizeof(text))
		return false;
	memcpy(text, token->start, token->length);
	text[token->length] = '\0';
	if (!(isdigit((unsigned char)text[0]) ||
	    (text[0] == '-' && isdigit((unsigned char)text[1]))))
		return false;
	errno = 0;
	*value = strtoll(text, &end, 10);
	return errno == 0 && *end == '\0' && *value >= min && *value <= max;
}

static bool
parse_item_reply(const char *line, size_t length, size_t position,
    struct od_helper_reply *reply)
{
	struct token id, size, epoch, sender;
	struct od_helper_item *item = &reply->item;
	long long value;

	if (!next_token(line, length, &position, &id) ||
	    !next_token(line, length, &position, &size) ||
	    !next_token(line, length, &position, &epoch) ||
	    !next_token(line, length, &position, &sender))
		return false;
	/* The reason is the rest of the line, spaces included. */
	if (position > length)
		return false;
	if (id.length > OD_QUEUE_ID_MAX)
		return false;
	memcpy(item->queue_id, id.start, id.length);
	item->queue_id[id.length] = '\0';
	if (!od_helper_queue_id_valid(item->queue_id))
		return false;
	if (!parse_number(&size, -1, LLONG_MAX, &item->size))
		return false;
	if (!parse_number(&epoch, 0, LLONG_MAX, &value))
		return false;
	item->queued = (time_t)value;
	if (sender.length == 0 ||
	    !unescape(item->sender, sizeof(item->sender), sender.start,
	    sender.length))
		return false;
	return unescape(item->reason, sizeof(item->reason), line + position,
	    length - position);
}

bool
od_helper_reply_parse(const char *line, size_t length,
    struct od_helper_reply *reply)
{
	struct token kind, tag, token;
	size_t position = 0;
	long long value;

	memset(reply, 0, sizeof(*reply));
	if (memchr(line, '\0', length) != NULL)
		return false;
	if (!next_token(line, length, &position, &kind) ||
	    !next_token(line, length, &position, &tag) ||
	    !parse_tag_value(&tag, &reply->tag))
		return false;

	if (token_equals(&kind, "DONE")) {
		reply->type = OD_HELPER_REPLY_DONE;
		if (!next_token(line, length, &position, &token) ||
		    !parse_number(&token, 0, 255, &value))
			return false;
		if (next_token(line, length, &position, &token))
			return false;
		reply->status = (int)value;
		return true;
	}
	if (token_equals(&kind, "ERROR")) {
		size_t n = position <= length ? length - position : 0;

		reply->type = OD_HELPER_REPLY_ERROR;
		if (n >= sizeof(reply->message))
			n = sizeof(reply->message) - 1;
		memcpy(reply->message, line + position, n);
		reply->message[n] = '\0';
		return true;
	}
	if (token_equals(&kind, "ITEM")) {
		reply->type = OD_HELPER_REPLY_ITEM;
		return parse_item_reply(line, length, position, reply);
	}
	return false;
}
