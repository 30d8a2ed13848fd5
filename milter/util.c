/* SPDX-License-Identifier: BSD-2-Clause */
/* String helpers: bounded copy, log escaping, durations. */

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "od_util.h"

size_t
od_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

void
od_escape(char *out, size_t out_size, const char *in, size_t max_in)
{
	static const char ellipsis[] = "...";
	size_t used = 0;
	size_t i;

	if (out_size == 0)
		return;
	/* Keep room for the ellipsis so a cut is always visible. */
	if (out_size <= sizeof(ellipsis)) {
		out[0] = '\0';
		return;
	}
	for (i = 0; in[i] != '\0' && i < max_in; i++) {
		unsigned char c = (unsigned char)in[i];
		char piece[5];
		size_t len;

		if (c < 0x20 || c >= 0x7f || c == '\\') {
			snprintf(piece, sizeof(piece), "\\x%02x", c);
			len = 4;
		} else {
			piece[0] = (char)c;
			piece[1] = '\0';
			len = 1;
		}
		if (used + len + sizeof(ellipsis) > out_size)
			break;
		memcpy(out + used, piece, len);
		used += len;
	}
	if (in[i] != '\0') {
		memcpy(out + used, ellipsis, sizeof(ellipsis));
		return;
	}
	out[used] = '\0';
}

/* A unit a number may end with, and what one of it is worth. */
struct unit {
	const char *suffix;	/* "" for a bare number */
	long long factor;
};

/* Parses digits with one of units' suffixes into value * factor <= max. */
static bool
parse_with_unit(const char *text, const struct unit *units, long long max,
    long long *result)
{
	long long value;
	char *end;
	size_t i;

	if (!isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno != 0)
		return false;
	for (i = 0; units[i].suffix != NULL; i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (value > max / units[i].factor)
			return false;
		*result = value * units[i].factor;
		return true;
	}
	return false;
}

bool
od_parse_duration(const char *text, long long max_seconds, long long *seconds)
{
	static const struct unit units[] = {
		{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 },
		{ "d", 86400 }, { "w", 7 * 86400 }, { NULL, 0 }
	};

	return parse_with_unit(text, units, max_seconds, seconds);
}

bool
od_parse_millis(const char *text, long long max_millis, long long *millis)
{
	static const struct unit units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { NULL, 0 }
	};

	return parse_with_unit(text, units, max_millis, millis);
}

bool
od_parse_size(const char *text, long long *octets)
{
	static const struct unit units[] = {
		{ "", 1 }, { "k", 1024 }, { "K", 1024 }, { "M", 1024 * 1024 },
		{ "G", 1024LL * 1024 * 1024 }, { NULL, 0 }
	};

	return parse_with_unit(text, units, 1LL << 50, octets);
}
