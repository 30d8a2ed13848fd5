/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ETRN arguments, reply classification and output escaping.  The reply
 * codes and their meanings are those of RFC 1985.
 */

#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "etrn.h"

/* Maximum number of octets of a user's argument quoted in a message. */
#define QUOTE_MAX 80

/* Maximum length of a queue name after "#". */
#define QUEUE_NAME_MAX 253

void
etrn_escape_text(char *out, size_t size, const char *input, size_t length,
    size_t max_input)
{
	size_t used = 0;
	size_t i;

	if (size == 0)
		return;
	for (i = 0; i < length && i < max_input; i++) {
		unsigned char c = (unsigned char)input[i];
		char piece[5];
		size_t piece_length;

		if (c == '\\')
			piece_length = (size_t)snprintf(piece, sizeof(piece),
			    "\\\\");
		else if (c >= 0x20 && c < 0x7f)
			piece_length = (size_t)snprintf(piece, sizeof(piece),
			    "%c", c);
		else
			piece_length = (size_t)snprintf(piece, sizeof(piece),
			    "\\x%02x", c);
		if (used + piece_length >= size)
			break;
		memcpy(out + used, piece, piece_length);
		used += piece_length;
	}
	if (i < length && used + 3 < size) {
		memcpy(out + used, "...", 3);
		used += 3;
	}
	out[used] = '\0';
}

static bool
is_letter_or_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* Describes a character for a message: 'x', "a space" or \xNN. */
static void
describe_character(char *out, size_t size, char c)
{
	unsigned char octet = (unsigned char)c;

	if (octet > 0x20 && octet < 0x7f)
		snprintf(out, size, "'%c'", c);
	else if (octet == ' ')
		snprintf(out, size, "a space");
	else
		snprintf(out, size, "\\x%02x", octet);
}

/*
 * Checks a domain name of length octets (not NUL-terminated).  what and
 * quoted name the whole argument in messages, such as `domain "x"`, and
 * offset is where name starts in it, so that messages count from the start
 * of the argument.
 */
static bool
check_domain(const char *name, size_t length, size_t offset,
    const char *what, const char *quoted, char *message, size_t size)
{
	size_t label_start = 0;
	size_t i;

	if (length > 0 && name[length - 1] == '.')
		length--;	/* one trailing dot names the root */
	if (length == 0) {
		snprintf(message, size, "invalid %s %s: the domain is empty. "
		    "Give a domain such as example.test", what, quoted);
		return false;
	}
	if (length > ETRN_DOMAIN_MAX) {
		snprintf(message, size, "invalid %s %s: the domain has %zu "
		    "octets, more than the %d allowed", what, quoted, length,
		    ETRN_DOMAIN_MAX);
		return false;
	}

	for (i = 0; i <= length; i++) {
		char c = i < length ? name[i] : '.';
		char shown[8];

		if (c == '.') {
			size_t label_length = i - label_start;

			if (label_length == 0) {
				snprintf(message, size, "invalid %s %s: empty "
				    "label at offset %zu (a leading dot or two "
				    "dots in a row). For a domain and its "
				    "subdomains write @example.test", what,
				    quoted, offset + i);
				return false;
			}
			if (label_length > ETRN_LABEL_MAX) {
				snprintf(message, size, "invalid %s %s: the "
				    "label at offset %zu has %zu octets, more "
				    "than the %d allowed", what, quoted,
				    offset + label_start, label_length,
				    ETRN_LABEL_MAX);
				return false;
			}
			if (name[label_start] == '-' || name[i - 1] == '-') {
				snprintf(message, size, "invalid %s %s: the "
				    "label at offset %zu starts or ends with a "
				    "hyphen", what, quoted,
				    offset + label_start);
				return false;
			}
			label_start = i + 1;
			continue;
		}
		if (is_letter_or_digit(c) || c == '-')
			continue;

		describe_character(shown, sizeof(shown), c);
		snprintf(message, size, "invalid %s %s: %s at offset %zu is "
		    "not allowed. Use letters, digits, hyphens and dots, and "
		    "the A-label (xn--) form for internationalised names",
		    what, quoted, shown, offset + i);
		return false;
	}
	return true;
}

static bool
check_queue_name(const char *name, const char *quoted, char *message,
    size_t size)
{
	size_t length = strlen(name);

	if (length == 0) {
		snprintf(message, size, "invalid queue name %s: no name after "
		    "#. Write #queuename", quoted);
		return false;
	}
	if (length > QUEUE_NAME_MAX) {
		snprintf(message, size, "invalid queue name %s: the name has "
		    "%zu octets, more than the %d allowed", quoted, length,
		    QUEUE_NAME_MAX);
		return false;
	}
	for (size_t i = 0; i < length; i++) {
		char c = name[i];
		char shown[8];

		if (is_letter_or_digit(c) || c == '-' || c == '_' || c == '.')
			continue;
		describe_character(shown, sizeof(shown), c);
		snprintf(message, size, "invalid queue name %s: %s at offset "
		    "%zu is not allowed. Use letters, digits, hyphens, "
		    "underscores and dots", quoted, shown, i + 1);
		return false;
	}
	return true;
}

static void
quote_argument(char *out, size_t size, const char *argument)
{
	char escaped[QUOTE_MAX * 4 + 4];

	etrn_escape_text(escaped, sizeof(escaped), argument, strlen(argument),
	    QUOTE_MAX);
	snprintf(out, size, "\"%s\"", escaped);
}

bool
etrn_argument_check(const char *argument, char *message, size_t size)
{
	char quoted[QUOTE_MAX * 4 + 8];

	quote_argument(quoted, sizeof(quoted), argument);
	if (argument[0] == '#')
		return check_queue_name(argument + 1, quoted, message, size);
	if (argument[0] == '@') {
		if (argument[1] == '\0') {
			snprintf(message, size, "invalid domain %s: no domain "
			    "after @. Write @example.test for example.test "
			    "and its subdomains", quoted);
			return false;
		}
		return check_domain(argument + 1, strlen(argument + 1), 1,
		    "domain", quoted, message, size);
	}
	return check_domain(argument, strlen(argument), 0, "domain", quoted,
	    message, size);
}

bool
etrn_helo_name_check(const char *name, char *message, size_t size)
{
	char quoted[QUOTE_MAX * 4 + 8];
	size_t length = strlen(name);

	quote_argument(quoted, sizeof(quoted), name);
	if (length >= 2 && name[0] == '[' && name[length - 1] == ']') {
		char address[64];
		unsigned char binary[16];
		size_t inner = length - 2;
		int family = AF_INET;
		const char *start = name + 1;

		if (inner >= 5 && strncasecmp(start, "IPv6:", 5) == 0) {
			family = AF_INET6;
			start += 5;
			inner -= 5;
		}
		if (inner < sizeof(address)) {
			memcpy(address, start, inner);
			address[inner] = '\0';
			if (inet_pton(family, address, binary) == 1)
				return true;
		}
		snprintf(message, size, "invalid HELO name %s: not an address "
		    "literal such as [192.0.2.1] or [IPv6:2001:db8::1]",
		    quoted);
		return false;
	}
	return check_domain(name, length, 0, "HELO name", quoted, message,
	    size);
}

enum etrn_exit_status
etrn_classify_reply(const struct smtp_reply *reply, char *description,
    size_t size)
{
	unsigned long count;

	switch (reply->code) {
	case 250:
		snprintf(description, size, "delivery started");
		return ETRN_EXIT_STARTED;
	case 251:
		snprintf(description, size, "no messages waiting");
		return ETRN_EXIT_NOTHING_WAITING;
	case 252:
		snprintf(description, size, "delivery of pending messages "
		    "started");
		return ETRN_EXIT_STARTED;
	case 253:
		if (smtp_reply_find_number(reply, &count))
			snprintf(description, size, "delivery of %lu pending "
			    "message%s started", count, count == 1 ? "" : "s");
		else
			snprintf(description, size, "delivery of pending "
			    "messages started");
		return ETRN_EXIT_STARTED;
	case 421:
		snprintf(description, size, "temporary failure, the server is "
		    "closing the connection");
		return ETRN_EXIT_TEMPFAIL;
	case 458:
		snprintf(description, size, "temporary failure, the server "
		    "cannot start delivery now");
		return ETRN_EXIT_TEMPFAIL;
	case 459:
		snprintf(description, size, "rejected, the server does not "
		    "allow ETRN for this domain or this client");
		return ETRN_EXIT_REJECTED;
	case 500:
		snprintf(description, size, "rejected, the server does not "
		    "recognise the ETRN command");
		return ETRN_EXIT_REJECTED;
	case 501:
		snprintf(description, size, "rejected, the server reports a "
		    "syntax error in the argument");
		return ETRN_EXIT_REJECTED;
	case 502:
		snprintf(description, size, "rejected, the server does not "
		    "implement ETRN");
		return ETRN_EXIT_REJECTED;
	}

	switch (reply->code / 100) {
	case 2:
		snprintf(description, size, "accepted with an unusual reply "
		    "code, delivery presumably started");
		return ETRN_EXIT_STARTED;
	case 4:
		snprintf(description, size, "temporary failure");
		return ETRN_EXIT_TEMPFAIL;
	case 5:
		snprintf(description, size, "rejected");
		return ETRN_EXIT_REJECTED;
	}
	/* 3xx: RFC 1985 defines no intermediate reply to ETRN. */
	snprintf(description, size, "unexpected reply code %d", reply->code);
	return ETRN_EXIT_PROTOCOL;
}
