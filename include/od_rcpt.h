/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Envelope addresses as SMTP clients send them in MAIL FROM and RCPT TO.
 */
#ifndef OD_RCPT_H
#define OD_RCPT_H

#include <stdbool.h>
#include <stddef.h>

#include "od_domain.h"

enum od_addr_kind {
	OD_ADDR_DOMAIN,		/* local-part@domain; domain is normalised */
	OD_ADDR_LITERAL,	/* local-part@[address literal] */
	OD_ADDR_LOCAL,		/* no domain at all, e.g. "postmaster" */
	OD_ADDR_NULL,		/* the null path <> */
	OD_ADDR_INVALID		/* unbalanced brackets or quotes, bad domain */
};

/*
 * Classifies an RCPT TO or MAIL FROM argument as the client sent it (for
 * example "<@relay.test:User@Example.TEST.>") and, for OD_ADDR_DOMAIN, stores
 * the normalised domain in domain.  Angle brackets, a source route and one
 * trailing dot are removed; the domain follows the last '@' outside a quoted
 * string or backslash escape.
 */
enum od_addr_kind od_addr_domain(const char *arg, char domain[OD_DOMAIN_SIZE]);

#endif
