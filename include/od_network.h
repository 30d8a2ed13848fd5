/* SPDX-License-Identifier: BSD-2-Clause */
/* IPv4 and IPv6 networks in CIDR notation, for per-domain ETRN client lists. */
#ifndef OD_NETWORK_H
#define OD_NETWORK_H

#include <stdbool.h>

struct od_network {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char address[16];	/* network byte order, host bits 0 */
	unsigned prefix;		/* 0-32 or 0-128 */
};

/*
 * Parses "192.0.2.0/24", "192.0.2.7", "2001:db8::/32" or "::1".  Host bits
 * beyond the prefix are cleared.  Returns false for anything else.
 */
bool od_network_parse(const char *text, struct od_network *network);

/*
 * Returns whether address, as sendmail's {client_addr} macro gives it
 * ("192.0.2.7", or "IPv6:2001:db8::7" in any case), is in network.
 */
bool od_network_contains(const struct od_network *network,
    const char *address);

#endif
