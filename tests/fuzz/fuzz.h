/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What every libFuzzer target here shares: the entry points libFuzzer
 * calls, and a check that stays on in every build.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * Aborts with the condition's text when it is false, so that libFuzzer
 * saves the input as a crash.  Unlike assert(), NDEBUG does not remove it.
 */
#define FUZZ_CHECK(condition)						\
	do {								\
		if (!(condition)) {					\
			fprintf(stderr, "%s:%d: check failed: %s\n",	\
			    __FILE__, __LINE__, #condition);		\
			abort();					\
		}							\
	} while (0)

/*
 * Returns a malloc'ed copy of data with a NUL after it, or aborts.  The
 * copy has no spare room, so AddressSanitizer reports any read past the
 * NUL.
 */
char *fuzz_string(const uint8_t *data, size_t size);

/*
 * Returns a malloc'ed copy of exactly size octets (at least one octet is
 * allocated, so the pointer is valid for size 0), or aborts.
 */
char *fuzz_copy(const void *data, size_t size);

#endif
