/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Netstrings ("LEN:PAYLOAD,"), the framing of sendmail's socketmap
 * protocol.  The parser does no I/O, so it can be tested and fuzzed on its
 * own.  The socket map server reads the number of octets that the parser
 * reports missing and calls it again.
 */
#ifndef OD_NETSTRING_H
#define OD_NETSTRING_H

#include <stddef.h>

/* Maximum number of length digits, leading zeros included. */
#define OD_NETSTRING_DIGITS_MAX 5

enum od_netstring_status {
	OD_NETSTRING_OK,	/* a whole netstring starts the data */
	OD_NETSTRING_SHORT,	/* the data is a valid start of one */
	OD_NETSTRING_INVALID
};

/*
 * A parse result: the first three fields are set after OK, and missing
 * after SHORT.
 */
struct od_netstring {
	size_t payload_offset;	/* where the payload starts in the data */
	size_t payload_length;
	size_t length;		/* octets of the whole netstring */
	size_t missing;		/* octets still needed, at least 1 */
};

/*
 * Parses the netstring that starts the length octets of data.  These are
 * INVALID: a payload longer than payload_max, a length without digits or
 * with more than OD_NETSTRING_DIGITS_MAX, a non-digit before the colon, a
 * missing comma after the payload and a NUL octet in the payload.  While
 * the length is being read, missing is 1, so a reader that reads exactly
 * missing octets never reads past the netstring.  Octets after the
 * netstring are left alone.
 */
enum od_netstring_status od_netstring_parse(const char *data, size_t length,
    size_t payload_max, struct od_netstring *netstring);

#endif
