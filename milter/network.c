/* SPDX-License-Identifier: BSD-2-Clause */
/* CIDR networks and client address matching (see od_network.h). */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "od_network.h"

static void
clear_host_bits(unsigned char *address, unsigned prefix, size_t octets)
{
	size_t i;

	for (i = 0; i < octets; i++) {
		unsigned bits = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;

		if (bits >= 8)
			continue;
		address[i] &= (unsigned char)(0xff << (8 - bits));
	}
}

bool
od_network_parse(const char *text, struct od_network *network)
{
	char address[64];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max;

	memset(network, 0, sizeof(*network));
	if (len == 0 || len >= sizeof(address))
		return false;
	memcpy(address, text, len);
	address[len] = '\0';

	if (inet_pton(AF_INET, address, network->address) == 1) {
		network->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, address, network->address) == 1) {
		network->family = AF_INET6;
		max = 128;
	} else {
		return false;
	}

	network->prefix = max;
	if (slash != NULL) {
		char *end;
		long prefix;

		if (slash[1] < '0' || slash[1] > '9')
			return false;
		errno = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || prefix < 0 ||
		    prefix > (long)max)
			return false;
		network->prefix = (unsigned)prefix;
	}
	clear_host_bits(network->address, network->prefix, max / 8);
	return true;
}

bool
od_network_contains(const struct od_network *network, const char *address)
{
	unsigned char client[16];
	int family = AF_INET;

	/* sendmail writes IPv6 clients as "IPv6:..."; the map lowercases. */
	if (strncasecmp(address, "ipv6:", 5) == 0) {
		address += 5;
		family = AF_INET6;
	} else if (strchr(address, ':') != NULL) {
		family = AF_INET6;
	}
	if (family != network->family ||
	    inet_pton(family, address, client) != 1)
		return false;
	clear_host_bits(client, network->prefix, family == AF_INET ? 4 : 16);
	return memcmp(client, network->address, family == AF_INET ? 4 : 16) ==
	    0;
}
