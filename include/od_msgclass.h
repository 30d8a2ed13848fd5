/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The message-class rule.  A quarantine holds the whole envelope and a
 * release delivers every recipient in it, so one message may carry mail for
 * at most one on-demand domain.  The first accepted recipient fixes the class
 * (held for one domain, or not held).  A recipient of another class must be
 * sent in a separate transaction.
 */
#ifndef OD_MSGCLASS_H
#define OD_MSGCLASS_H

#include <stdbool.h>

#include "od_domain.h"

enum od_class_kind {
	OD_CLASS_UNSET,
	OD_CLASS_NORMAL,
	OD_CLASS_HOLD
};

struct od_msgclass {
	enum od_class_kind kind;
	char domain[OD_DOMAIN_SIZE];	/* the held domain, for OD_CLASS_HOLD */
	unsigned recipients;		/* accepted so far */
};

void od_msgclass_reset(struct od_msgclass *msgclass);

/*
 * Applies the rule to one recipient: hold_domain is the recipient's
 * normalised domain when it is on-demand, else NULL.  Returns true when the
 * recipient fits the message (and counts it), false when it belongs in a
 * separate transaction.
 */
bool od_msgclass_add(struct od_msgclass *msgclass, const char *hold_domain);

#endif
