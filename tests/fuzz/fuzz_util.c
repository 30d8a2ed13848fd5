/* SPDX-License-Identifier: BSD-2-Clause */
/* Helpers shared by the fuzz targets (see fuzz.h). */

#include "config.h"

#include <string.h>

#include "fuzz.h"

char *
fuzz_copy(const void *data, size_t size)
{
	char *copy = malloc(size > 0 ? size : 1);

	FUZZ_CHECK(copy != NULL);
	if (size > 0)
		memcpy(copy, data, size);
	return copy;
}

char *
fuzz_string(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);

	FUZZ_CHECK(copy != NULL);
	if (size > 0)
		memcpy(copy, data, size);
	copy[size] = '\0';
	return copy;
}
