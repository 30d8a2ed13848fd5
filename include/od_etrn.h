/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ETRN decision: what the daemon replies when sendmail's check_etrn
 * ruleset looks an ETRN argument up in the "ondemand" socket map.
 */
#ifndef OD_ETRN_H
#define OD_ETRN_H

#include <stdbool.h>
#include <stddef.h>

#include "od_config.h"
#include "od_domain.h"

enum od_etrn_action {
	OD_ETRN_PASS,		/* not ours: sendmail handles the ETRN */
	OD_ETRN_DENY,		/* 459 */
	OD_ETRN_INVALID,	/* 501 */
	OD_ETRN_RELEASE		/* release domain (and its subdomains) */
};

struct od_etrn_decision {
	enum od_etrn_action action;
	char domain[OD_DOMAIN_SIZE];
	bool subdomains;	/* the "@domain" form */
	const char *text;	/* reason for DENY and INVALID */
};

/*
 * Decides on one ETRN argument as sendmail passes it (already lowercased):
 * "example.test", "@example.test" or "#queuename".  client is the SMTP
 * client's address as sendmail's {client_addr} gives it ("" when unknown),
 * checked against EtrnAllow; NULL skips that check, for the operator's
 * own requests.
 */
void od_etrn_decide(const char *argument, const char *client,
    const struct od_config *config, struct od_etrn_decision *decision);

/* sendmail 8.17 cuts socket map keys to this many octets. */
#define OD_ETRN_KEY_CUT 256

/*
 * Splits a socket map key "ARGUMENT/CLIENT" into its parts.  A key without
 * "/" (from a check_etrn ruleset that sends the argument alone) gives an
 * empty client.  The argument comes first because sendmail cuts map keys
 * to OD_ETRN_KEY_CUT octets, and a cut must not change the domain.  A key
 * of that length gives an empty client too, because its address may be
 * cut.  The parts point into buffer.
 */
void od_etrn_split_key(const char *key, char *buffer, size_t size,
    const char **client, const char **argument);

#endif
