/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: MAIL FROM and RCPT TO arguments as SMTP clients send them
 * (od_addr_domain), the input being one argument.  A domain it returns
 * must be in normal form, and the same domain in a plain "<user@domain>"
 * must come back unchanged.
 */

#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "od_helper_proto.h"
#include "od_rcpt.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argument = fuzz_string(data, size);
	char domain[OD_DOMAIN_SIZE], again[OD_DOMAIN_SIZE];
	char plain[OD_DOMAIN_SIZE + 16];
	enum od_addr_kind kind;
	const char *error;

	kind = od_addr_domain(argument, domain);
	FUZZ_CHECK(kind >= OD_ADDR_DOMAIN && kind <= OD_ADDR_INVALID);
	if (kind == OD_ADDR_DOMAIN) {
		FUZZ_CHECK(od_helper_domain_valid(domain, &error));
		snprintf(plain, sizeof(plain), "<user@%s>", domain);
		FUZZ_CHECK(od_addr_domain(plain, again) == OD_ADDR_DOMAIN);
		FUZZ_CHECK(strcmp(domain, again) == 0);
	}
	free(argument);
	return 0;
}
