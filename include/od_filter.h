/* SPDX-License-Identifier: BSD-2-Clause */
/* The libmilter filter description of ondemand-milter. */
#ifndef OD_FILTER_H
#define OD_FILTER_H

#include <libmilter/mfapi.h>

#include "od_config.h"
#include "od_index.h"

extern struct smfiDesc od_filter_description;

/* Sets the index that records each hold; NULL records nothing. */
void od_filter_set_index(struct od_index *index);

/* Sets what internal errors do (the OnError key); safe from any thread. */
void od_filter_set_on_error(enum od_on_error policy);

#endif
