/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's current configuration, shared by the filter threads.
 *
 * A message keeps the snapshot it started with until it ends, so a reload
 * (SIGUSR1) never changes the rules in the middle of a transaction.  The
 * old snapshot is freed when its last message ends.
 */
#ifndef OD_RUNTIME_H
#define OD_RUNTIME_H

#include "od_config.h"

struct od_config_ref;

/* Installs config as the current snapshot; the runtime takes ownership. */
void od_runtime_set_config(struct od_config *config);

/* Takes a reference to the current snapshot; never returns NULL once set. */
struct od_config_ref *od_runtime_acquire(void);
const struct od_config *od_runtime_config(const struct od_config_ref *ref);
void od_runtime_release(struct od_config_ref *ref);

#endif
