/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Domain names: normalisation to the form used for every comparison, and the
 * set of on-demand domains.
 *
 * The normal form is the A-label (ASCII, "xn--") form in lower case without a
 * trailing dot: at most 253 octets, labels of 1 to 63 letters, digits and
 * hyphens that neither start nor end with a hyphen.
 */
#ifndef OD_DOMAIN_H
#define OD_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#define OD_DOMAIN_MAX 253
/* Buffer size for a normalised domain and its terminating NUL. */
#define OD_DOMAIN_SIZE (OD_DOMAIN_MAX + 1)

/*
 * Normalises name (UTF-8 U-labels or ASCII, any case, one optional trailing
 * dot) into out.  Returns true on success; on failure stores a sentence
 * saying what is wrong into error (never NULL on failure).
 */
bool od_domain_normalize(const char *name, char out[OD_DOMAIN_SIZE],
    const char **error);

struct od_domain_set;

struct od_domain_set *od_domain_set_new(void);
void od_domain_set_free(struct od_domain_set *set);

/*
 * Adds a normalised domain.  With subdomains set, the entry matches every
 * name below domain but not domain itself (the ".example.test" form).
 * Returns false only when memory runs out; adding an entry twice is harmless.
 */
bool od_domain_set_add(struct od_domain_set *set, const char *domain,
    bool subdomains);

/* Sorts the set for lookups; call once after the last od_domain_set_add. */
void od_domain_set_finish(struct od_domain_set *set);

/* Returns whether the normalised domain is an on-demand domain. */
bool od_domain_set_match(const struct od_domain_set *set, const char *domain);

size_t od_domain_set_count(const struct od_domain_set *set);

/*
 * Returns entry i (0 <= i < count) in sorted order and whether it is a
 * subdomain entry.
 */
const char *od_domain_set_entry(const struct od_domain_set *set, size_t i,
    bool *subdomains);

#endif
