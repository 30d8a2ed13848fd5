/* SPDX-License-Identifier: BSD-2-Clause */
/* The libmilter filter description of ondemand-milter. */
#ifndef OD_FILTER_H
#define OD_FILTER_H

#include <libmilter/mfapi.h>

#include "od_config.h"

extern struct smfiDesc od_filter_description;

/* The quarantine reason prefix; the domain follows between brackets. */
#define OD_HOLD_REASON_PREFIX "ondemand"

/* Sets what internal errors do (the OnError key); safe from any thread. */
void od_filter_set_on_error(enum od_on_error policy);

#endif
