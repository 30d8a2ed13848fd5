/* SPDX-License-Identifier: BSD-2-Clause */
/* Reference-counted configuration snapshots (see od_runtime.h). */

#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "od_runtime.h"

struct od_config_ref {
	struct od_config *config;
	unsigned references;
};

static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct od_config_ref *current;

static void
release_locked(struct od_config_ref *ref)
{
	if (--ref->references == 0) {
		od_config_free(ref->config);
		free(ref);
	}
}

void
od_runtime_set_config(struct od_config *config)
{
	struct od_config_ref *ref = malloc(sizeof(*ref));

	/*
	 * Without memory for the wrapper the old snapshot stays current,
	 * which is what a failed reload does too.
	 */
	if (ref == NULL) {
		od_config_free(config);
		return;
	}
	ref->config = config;
	ref->references = 1;

	pthread_mutex_lock(&runtime_lock);
	if (current != NULL)
		release_locked(current);
	current = ref;
	pthread_mutex_unlock(&runtime_lock);
}

struct od_config_ref *
od_runtime_acquire(void)
{
	struct od_config_ref *ref;

	pthread_mutex_lock(&runtime_lock);
	ref = current;
	if (ref != NULL)
		ref->references++;
	pthread_mutex_unlock(&runtime_lock);
	return ref;
}

const struct od_config *
od_runtime_config(const struct od_config_ref *ref)
{
	return ref->config;
}

void
od_runtime_release(struct od_config_ref *ref)
{
	if (ref == NULL)
		return;
	pthread_mutex_lock(&runtime_lock);
	release_locked(ref);
	pthread_mutex_unlock(&runtime_lock);
}
