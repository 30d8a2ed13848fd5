/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Undoing the changes of cf_patch(): every line with an ondemand-cf marker
 * goes back to the bytes it had, as the marker formats in cf_patch.h
 * describe.
 */

#include "config.h"

#include <string.h>

#include "cf_internal.h"
#include "cf_patch.h"

bool
cf_has_marks(const struct cf_doc *doc)
{
	for (size_t i = 0; i < doc->count; i++)
		if (cf_line_starts_with(&doc->lines[i], CF_MARK))
			return true;
	return false;
}

/* Appends a line to out; returns false when memory runs out. */
static bool
emit(struct cf_doc *out, const char *text, size_t len, enum cf_eol eol)
{
	return cf_doc_insert(out, out->count, text, len, eol);
}

enum cf_status
cf_revert(struct cf_doc *doc, struct cf_report *report, char *error,
    size_t error_size)
{
	const size_t was_len = strlen(MARK_WAS), off_len = strlen(MARK_OFF);
	struct cf_doc out = { 0 };
	size_t i = 0;

	while (i < doc->count) {
		const struct cf_line *line = &doc->lines[i];

		if (cf_line_starts_with(line, MARK_OFF)) {
			if (!emit(&out, line->text + off_len,
			    line->len - off_len, line->eol))
				goto nomem;
			if (!cf_list_add(&report->changes, "line %zu: restored "
			    "a commented-out line", i + 1))
				goto nomem;
			i++;
		} else if (cf_line_starts_with(line, MARK_WAS)) {
			size_t last = i;

			while (last + 1 < doc->count &&
			    cf_line_starts_with(&doc->lines[last + 1], MARK_WAS))
				last++;
			if (last + 1 >= doc->count ||
			    cf_line_starts_with(&doc->lines[last + 1], CF_MARK)) {
				cf_set_error(error, error_size, "line %zu: the "
				    "\"%s\" marker is not followed by the line "
				    "that replaced it; the file was edited "
				    "after ondemand-cf changed it: restore "
				    "the line by hand or from the backup",
				    last + 1, MARK_WAS);
				goto invalid;
			}
			/* The last restored line takes the replacement's
			 * ending, which is missing when the original's was. */
			for (size_t k = i; k <= last; k++) {
				const struct cf_line *was = &doc->lines[k];
				enum cf_eol eol = k == last ?
				    doc->lines[last + 1].eol : was->eol;

				if (!emit(&out, was->text + was_len,
				    was->len - was_len, eol))
					goto nomem;
			}
			if (!cf_list_add(&report->changes, "line %zu: restored "
			    "a replaced line", i + 1))
				goto nomem;
			i = last + 2;
		} else if (cf_line_starts_with(line, MARK_BEGIN)) {
			size_t end = i + 1;

			while (end < doc->count &&
			    !cf_line_starts_with(&doc->lines[end], CF_MARK))
				end++;
			if (end >= doc->count ||
			    !cf_line_starts_with(&doc->lines[end], MARK_END)) {
				cf_set_error(error, error_size, "line %zu: the "
				    "block of added lines has no \"%s\" line; "
				    "the file was edited after ondemand-cf "
				    "changed it: remove the block by hand or "
				    "restore the backup", i + 1, MARK_END);
				goto invalid;
			}
			if (doc->lines[end].eol == CF_EOL_NONE && out.count > 0)
				out.lines[out.count - 1].eol = CF_EOL_NONE;
			if (!cf_list_add(&report->changes, "lines %zu-%zu: removed "
			    "%zu added lines", i + 1, end + 1, end - i + 1))
				goto nomem;
			i = end + 1;
		} else if (cf_line_starts_with(line, CF_MARK)) {
			char quoted[64];

			cf_set_error(error, error_size, "line %zu: unknown or "
			    "misplaced ondemand-cf marker \"%s\": the file was "
			    "edited after ondemand-cf changed it; fix the "
			    "line by hand or restore the backup", i + 1,
			    cf_excerpt(line->text, quoted, sizeof(quoted)));
			goto invalid;
		} else {
			if (!emit(&out, line->text, line->len, line->eol))
				goto nomem;
			i++;
		}
	}
	/*
	 * A marker with nothing after it on a last line without an ending
	 * (only a hand edit makes one) restores a line of no octets at all.
	 * Reading the file back has no such line, so drop it here too.
	 */
	if (out.count > 0 && out.lines[out.count - 1].len == 0 &&
	    out.lines[out.count - 1].eol == CF_EOL_NONE)
		cf_doc_remove(&out, out.count - 1, 1);
	cf_doc_free(doc);
	*doc = out;
	return CF_OK;

nomem:
	cf_doc_free(&out);
	cf_set_error(error, error_size, "out of memory");
	return CF_NOMEM;
invalid:
	cf_doc_free(&out);
	return CF_INVALID;
}
