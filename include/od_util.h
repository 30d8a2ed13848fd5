/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small string helpers shared by the programs.
 *
 * glibc 2.36 has no strlcpy, so od_strlcpy is the project's own bounded copy
 * with the same contract: it always terminates the destination (when size is
 * not zero) and returns strlen(src), so truncation shows as a result >= size.
 */
#ifndef OD_UTIL_H
#define OD_UTIL_H

#include <stdbool.h>
#include <stddef.h>

size_t od_strlcpy(char *dst, const char *src, size_t size);

/*
 * Copies untrusted text into out for logging: at most max_in input octets,
 * control characters, backslash and non-ASCII octets as \xNN, and "..." when
 * the input was cut.  out always ends up terminated.
 */
void od_escape(char *out, size_t out_size, const char *in, size_t max_in);

/* Parses a duration such as 90, 30s, 15m, 4h or 7d into seconds. */
bool od_parse_duration(const char *text, long long max_seconds,
    long long *seconds);

/*
 * Parses a short duration such as 250ms, 2s, 1m or 1h into milliseconds.
 * The unit is required, because a bare number is easily read as either.
 */
bool od_parse_millis(const char *text, long long max_millis,
    long long *millis);

/* Parses a size such as 5000, 512k, 20M or 2G (powers of 1024). */
bool od_parse_size(const char *text, long long *octets);

#endif
