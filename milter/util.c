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

bool
od_parse_duration(const char *text, long long max_seconds, long long *seconds)
{
	long long value, unit = 1;
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno != 0)
		return false;
	switch (*end) {
	case '\0':
		break;
	case 's':
		end++;
		break;
	case 'm':
		unit = 60;
		end++;
		break;
	case 'h':
		unit = 3600;
		end++;
		break;
	case 'd':
		unit = 86400;
		end++;
		break;
	case 'w':
		unit = 7 * 86400;
		end++;
		break;
	default:
		return false;
	}
	if (*end != '\0')
		return false;
	if (value > max_seconds / unit)
		return false;
	*seconds = value * unit;
	return true;
}
