/* SPDX-License-Identifier: BSD-2-Clause */
/* Netstring parsing for the socket map (see od_netstring.h). */

#include "config.h"

#include <string.h>

#include "od_netstring.h"

enum od_netstring_status
od_netstring_parse(const char *data, size_t length, size_t payload_max,
    struct od_netstring *netstring)
{
	size_t digits = 0, payload_length = 0, end;

	memset(netstring, 0, sizeof(*netstring));
	for (;;) {
		char c;

		if (digits == length) {
			netstring->missing = 1;
			return OD_NETSTRING_SHORT;
		}
		c = data[digits];
		if (c == ':')
			break;
		if (c < '0' || c > '9' || digits == OD_NETSTRING_DIGITS_MAX)
			return OD_NETSTRING_INVALID;
		payload_length = payload_length * 10 + (size_t)(c - '0');
		digits++;
	}
	if (digits == 0 || payload_length > payload_max)
		return OD_NETSTRING_INVALID;

	/* The digits, the colon, the payload and the comma. */
	end = digits + 1 + payload_length + 1;
	if (length < end) {
		netstring->missing = end - length;
		return OD_NETSTRING_SHORT;
	}
	if (data[end - 1] != ',' ||
	    memchr(data + digits + 1, '\0', payload_length) != NULL)
		return OD_NETSTRING_INVALID;
	netstring->payload_offset = digits + 1;
	netstring->payload_length = payload_length;
	netstring->length = end;
	return OD_NETSTRING_OK;
}
