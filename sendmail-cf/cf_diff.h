/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unified diff of two line lists, in the format of "diff -u".
 */
#ifndef CF_DIFF_H
#define CF_DIFF_H

#include <stdbool.h>
#include <stdio.h>

#include "cf_doc.h"

/*
 * Writes the differences between old and new to out as a unified diff with
 * context lines around each change, headed by the two labels.  Lines are
 * written with their own line endings, so a change from "\n" to "\r\n"
 * shows.  Writes nothing when the lists are equal.  Returns false when
 * memory runs out or a write fails.
 */
bool cf_diff_write(FILE *out, const struct cf_doc *old,
    const struct cf_doc *new, const char *old_label, const char *new_label,
    size_t context);

#endif
