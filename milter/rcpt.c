/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Envelope address parsing (RFC 5321 Path syntax, as sendmail passes the
 * client's argument to the filter).
 *
 * The domain comes from the argument itself, not from sendmail's macros:
 * {rcpt_host} names the relay host when a mailertable routes the domain, and
 * {rcpt_addr} has no domain for locally delivered recipients.
 */

#include "config.h"

#include <ctype.h>
#include <string.h>

#include "od_rcpt.h"

enum od_addr_kind
od_addr_domain(const char *arg, char domain[OD_DOMAIN_SIZE])
{
	const char *start = arg;
	const char *end = arg + strlen(arg);
	const char *at = NULL;
	const char *p;
	const char *error;
	/* Long enough for U-labels that IDNA shortens to 253 octets. */
	char buffer[1025];
	bool quoted = false;
	size_t len;

	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;

	if (start < end && *start == '<') {
		if (end - start < 2 || end[-1] != '>')
			return OD_ADDR_INVALID;
		start++;
		end--;
	} else if (start < end && end[-1] == '>') {
		return OD_ADDR_INVALID;
	}
	if (start == end)
		return OD_ADDR_NULL;

	/* A source route "@relay1,@relay2:" names hosts, not the mailbox. */
	if (*start == '@') {
		p = memchr(start, ':', (size_t)(end - start));
		if (p == NULL)
			return OD_ADDR_INVALID;
		start = p + 1;
		if (start == end)
			return OD_ADDR_INVALID;
	}

	for (p = start; p < end; p++) {
		if (*p == '\\') {
			if (++p == end)
				return OD_ADDR_INVALID;
		} else if (*p == '"') {
			quoted = !quoted;
		} else if (*p == '@' && !quoted) {
			at = p;
		}
	}
	if (quoted)
		return OD_ADDR_INVALID;
	if (at == NULL)
		return OD_ADDR_LOCAL;
	if (at == start || at + 1 == end)
		return OD_ADDR_INVALID;

	start = at + 1;
	if (*start == '[')
		return end[-1] == ']' ? OD_ADDR_LITERAL : OD_ADDR_INVALID;

	len = (size_t)(end - start);
	if (len >= sizeof(buffer))
		return OD_ADDR_INVALID;
	memcpy(buffer, start, len);
	buffer[len] = '\0';
	return od_domain_normalize(buffer, domain, &error) ?
	    OD_ADDR_DOMAIN : OD_ADDR_INVALID;
}
