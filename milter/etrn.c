/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ETRN argument checks (RFC 1985 forms: "domain", "@domain" for the domain
 * and its subdomains, "#queue" for a named queue).  Anything that is not a
 * plain host name is rejected here, so no argument reaches a sendmail
 * command line, an index key or a log line unchecked.
 */

#include "config.h"

#include <string.h>

#include "od_etrn.h"
#include "od_index.h"
#include "od_network.h"
#include "od_util.h"

static bool
host_name_characters(const char *text)
{
	const char *p;

	for (p = text; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return false;
	}
	return true;
}

static void
not_on_demand(const struct od_config *config,
    struct od_etrn_decision *decision)
{
	if (config->etrn_other == OD_ETRN_OTHER_DENY) {
		decision->action = OD_ETRN_DENY;
		decision->text = "not an on-demand domain on this server";
	} else {
		decision->action = OD_ETRN_PASS;
	}
}

/* Returns whether an EtrnAllow entry covers domain. */
static bool
allow_applies(const struct od_etrn_allow *allow, const char *domain)
{
	if (allow->subdomains)
		return strcmp(domain, allow->domain) != 0 &&
		    od_domain_within(domain, allow->domain);
	return strcmp(domain, allow->domain) == 0;
}

/*
 * Returns whether client may ETRN domain: true when no EtrnAllow entry
 * covers the domain, else when one of the covering entries lists it.
 */
static bool
client_allowed(const struct od_config *config, const char *domain,
    const char *client)
{
	bool covered = false;
	size_t i, n;

	for (i = 0; i < config->etrn_allow_count; i++) {
		const struct od_etrn_allow *allow = &config->etrn_allow[i];

		if (!allow_applies(allow, domain))
			continue;
		covered = true;
		for (n = 0; client[0] != '\0' && n < allow->count; n++) {
			if (od_network_contains(&allow->networks[n], client))
				return true;
		}
	}
	return !covered;
}

void
od_etrn_split_key(const char *key, char *buffer, size_t size,
    const char **client, const char **argument)
{
	char *slash, *end;

	od_strlcpy(buffer, key, size);
	*argument = buffer;
	slash = strrchr(buffer, '/');
	if (slash == NULL) {
		*client = "";
		return;
	}
	/*
	 * A key this long may have lost the end of the address, and a cut
	 * address ("192.0.2.10" from "192.0.2.100") could match EtrnAllow.
	 */
	if (strlen(key) >= OD_ETRN_KEY_CUT)
		slash[1] = '\0';
	/* A cf without "/" as an operator character puts spaces around it. */
	*slash = '\0';
	for (end = slash; end > buffer && end[-1] == ' '; end--)
		end[-1] = '\0';
	for (slash++; *slash == ' '; slash++)
		continue;
	*client = slash;
}

void
od_etrn_decide(const char *argument, const char *client,
    const struct od_config *config, struct od_etrn_decision *decision)
{
	const char *name = argument;
	const char *error;

	memset(decision, 0, sizeof(*decision));
	decision->action = OD_ETRN_INVALID;

	if (name[0] == '#') {
		/* Named queues are sendmail's business, or refused. */
		not_on_demand(config, decision);
		return;
	}
	if (name[0] == '@') {
		decision->subdomains = true;
		name++;
	}
	if (name[0] == '\0') {
		decision->text = "ETRN needs a domain name";
		return;
	}
	if (strlen(name) > OD_DOMAIN_MAX + 1 || !host_name_characters(name)) {
		decision->text = "invalid ETRN argument: expected a domain name";
		return;
	}
	if (!od_domain_normalize(name, decision->domain, &error)) {
		decision->text = "invalid ETRN argument: not a valid domain "
		    "name";
		return;
	}

	if (od_domain_set_match(config->domains, decision->domain) ||
	    (decision->subdomains &&
	    od_domain_set_has_within(config->domains, decision->domain))) {
		if (client != NULL &&
		    !client_allowed(config, decision->domain, client)) {
			decision->action = OD_ETRN_DENY;
			decision->text = client[0] == '\0' ?
			    "the client address is unknown, and EtrnAllow "
			    "limits this domain" :
			    "this client may not ETRN this domain";
			return;
		}
		decision->action = OD_ETRN_RELEASE;
		return;
	}
	not_on_demand(config, decision);
}
