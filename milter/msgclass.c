/* SPDX-License-Identifier: BSD-2-Clause */
/* The message-class rule: one on-demand domain per message at most. */

#include "config.h"

#include <string.h>

#include "od_msgclass.h"

void
od_msgclass_reset(struct od_msgclass *msgclass)
{
	msgclass->kind = OD_CLASS_UNSET;
	msgclass->domain[0] = '\0';
	msgclass->recipients = 0;
}

bool
od_msgclass_add(struct od_msgclass *msgclass, const char *hold_domain)
{
	switch (msgclass->kind) {
	case OD_CLASS_UNSET:
		if (hold_domain != NULL) {
			msgclass->kind = OD_CLASS_HOLD;
			memcpy(msgclass->domain, hold_domain,
			    strlen(hold_domain) + 1);
		} else {
			msgclass->kind = OD_CLASS_NORMAL;
		}
		break;
	case OD_CLASS_NORMAL:
		if (hold_domain != NULL)
			return false;
		break;
	case OD_CLASS_HOLD:
		if (hold_domain == NULL ||
		    strcmp(hold_domain, msgclass->domain) != 0)
			return false;
		break;
	}
	msgclass->recipients++;
	return true;
}
