/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ledger's memcached keys (see od_ledger.h).  Apart from the rest of
 * the ledger code so that programs which only read the configuration do
 * not link libmemcached.
 */

#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libmemcached/memcached.h>

#include "od_ledger.h"

bool
od_ledger_key(const char *prefix, enum od_ledger_key_kind kind,
    const char *domain, char key[OD_LEDGER_KEY_SIZE])
{
	char letter = kind == OD_LEDGER_KEY_RELEASE ? 'r' : 'd';
	size_t prefix_length, domain_length, keep;
	uint32_t first, second;

	if (!od_ledger_prefix_valid(prefix) ||
	    !od_ledger_domain_key_safe(domain))
		return false;
	prefix_length = strlen(prefix);
	domain_length = strlen(domain);
	/* "PREFIX:d:" takes the prefix and three octets. */
	if (prefix_length + 3 + domain_length <= OD_LEDGER_KEY_MAX) {
		memcpy(key, prefix, prefix_length);
		key[prefix_length] = ':';
		key[prefix_length + 1] = letter;
		key[prefix_length + 2] = ':';
		memcpy(key + prefix_length + 3, domain, domain_length + 1);
		return true;
	}
	/*
	 * Two independent 32-bit hashes from libmemcached make 64 bits.  The
	 * readable start keeps listings of the cache useful.
	 */
	first = memcached_generate_hash_value(domain, domain_length,
	    MEMCACHED_HASH_FNV1A_64);
	second = memcached_generate_hash_value(domain, domain_length,
	    MEMCACHED_HASH_MURMUR);
	keep = OD_LEDGER_KEY_MAX - prefix_length - 3 - 17;
	snprintf(key, OD_LEDGER_KEY_SIZE, "%s:%c:%.*s~%08" PRIx32 "%08" PRIx32,
	    prefix, letter - 'a' + 'A', (int)keep, domain, first, second);
	return true;
}

bool
od_ledger_domains_key(const char *prefix, char key[OD_LEDGER_KEY_SIZE])
{
	if (!od_ledger_prefix_valid(prefix))
		return false;
	snprintf(key, OD_LEDGER_KEY_SIZE, "%s:domains", prefix);
	return true;
}

bool
od_ledger_host_key(const char *prefix, const char *host_id,
    char key[OD_LEDGER_KEY_SIZE])
{
	if (!od_ledger_prefix_valid(prefix) ||
	    !od_ledger_host_id_valid(host_id))
		return false;
	snprintf(key, OD_LEDGER_KEY_SIZE, "%s:host:%s", prefix, host_id);
	return true;
}

