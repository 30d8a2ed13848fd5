/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unified diff with Myers' O(ND) algorithm ("An O(ND) Difference Algorithm
 * and Its Variations", Algorithmica 1, 1986).  It keeps the furthest-
 * reaching path of every step, (D + 1)^2 numbers in all (8 MB at most),
 * which is small for the few changes that ondemand-cf makes.  A diff with
 * more than MAX_STEPS changed lines is written as one hunk that replaces
 * everything.
 */

#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf_diff.h"

#define MAX_STEPS 1000

enum op {
	OP_EQUAL,
	OP_DELETE,
	OP_INSERT
};

struct script {
	unsigned char *ops;
	size_t count;
};

static bool
equal_at(const struct cf_doc *a, const struct cf_doc *b, size_t x, size_t y)
{
	return cf_line_equal(&a->lines[x], &b->lines[y]);
}

/* Fills script with "delete all of a, insert all of b". */
static bool
replace_all(const struct cf_doc *a, const struct cf_doc *b,
    struct script *script)
{
	script->ops = malloc(a->count + b->count + 1);
	if (script->ops == NULL)
		return false;
	script->count = 0;
	for (size_t i = 0; i < a->count; i++)
		script->ops[script->count++] = OP_DELETE;
	for (size_t i = 0; i < b->count; i++)
		script->ops[script->count++] = OP_INSERT;
	return true;
}

/*
 * Computes the shortest edit script from a to b.  trace[d] is the furthest
 * x reached on each diagonal k = x - y, -d <= k <= d, after step d, stored
 * at index k + d.
 */
static bool
edit_script(const struct cf_doc *a, const struct cf_doc *b,
    struct script *script)
{
	ptrdiff_t n = (ptrdiff_t)a->count, m = (ptrdiff_t)b->count;
	ptrdiff_t **trace = calloc(MAX_STEPS + 1, sizeof(*trace));
	ptrdiff_t d, found = -1;
	bool ok = false;

	if (trace == NULL)
		return false;
	for (d = 0; d <= n + m && d <= MAX_STEPS; d++) {
		ptrdiff_t *v = malloc((size_t)(2 * d + 1) * sizeof(*v));
		const ptrdiff_t *prev = d > 0 ? trace[d - 1] : NULL;

		if (v == NULL)
			goto out;
		trace[d] = v;
		for (ptrdiff_t k = -d; k <= d; k += 2) {
			ptrdiff_t x, y;

			if (d == 0)
				x = 0;
			else if (k == -d || (k != d &&
			    prev[k - 1 + d - 1] < prev[k + 1 + d - 1]))
				x = prev[k + 1 + d - 1];
			else
				x = prev[k - 1 + d - 1] + 1;
			y = x - k;
			while (x < n && y < m && equal_at(a, b, (size_t)x,
			    (size_t)y)) {
				x++;
				y++;
			}
			v[k + d] = x;
			if (x >= n && y >= m) {
				found = d;
				break;
			}
		}
		if (found >= 0)
			break;
	}
	if (found < 0) {
		ok = replace_all(a, b, script);
		goto out;
	}

	script->ops = malloc((size_t)(n + m) + 1);
	if (script->ops == NULL)
		goto out;
	script->count = 0;
	{
		ptrdiff_t x = n, y = m;

		/* Walk back from (n, m), writing the operations in reverse. */
		for (d = found; d > 0; d--) {
			const ptrdiff_t *prev = trace[d - 1];
			ptrdiff_t k = x - y, prev_k, prev_x, prev_y;

			if (k == -d || (k != d &&
			    prev[k - 1 + d - 1] < prev[k + 1 + d - 1]))
				prev_k = k + 1;
			else
				prev_k = k - 1;
			prev_x = prev[prev_k + d - 1];
			prev_y = prev_x - prev_k;
			while (x > prev_x && y > prev_y) {
				script->ops[script->count++] = OP_EQUAL;
				x--;
				y--;
			}
			script->ops[script->count++] = prev_k == k + 1 ?
			    OP_INSERT : OP_DELETE;
			x = prev_x;
			y = prev_y;
		}
		while (x > 0 && y > 0) {
			script->ops[script->count++] = OP_EQUAL;
			x--;
			y--;
		}
	}
	for (size_t i = 0; i < script->count / 2; i++) {
		unsigned char t = script->ops[i];

		script->ops[i] = script->ops[script->count - 1 - i];
		script->ops[script->count - 1 - i] = t;
	}
	ok = true;
out:
	for (d = 0; d <= MAX_STEPS; d++)
		free(trace[d]);
	free(trace);
	return ok;
}

static bool
write_line(FILE *out, char tag, const struct cf_line *line)
{
	if (fputc(tag, out) == EOF ||
	    fwrite(line->text, 1, line->len, out) != line->len)
		return false;
	if (line->eol == CF_EOL_NONE)
		return fputs("\n\\ No newline at end of file\n", out) != EOF;
	return fputs(cf_eol_bytes(line->eol), out) != EOF;
}

/* Writes "start,count" as diff does: count 1 is left out, and an empty
 * range names the line before it. */
static bool
write_range(FILE *out, char tag, size_t start, size_t count)
{
	if (count == 1)
		return fprintf(out, "%c%zu", tag, start + 1) > 0;
	return fprintf(out, "%c%zu,%zu", tag, count == 0 ? start : start + 1,
	    count) > 0;
}

static bool
write_hunk(FILE *out, const struct cf_doc *a, const struct cf_doc *b,
    const struct script *script, size_t first, size_t last, size_t a_start,
    size_t b_start)
{
	size_t a_count = 0, b_count = 0, x = a_start, y = b_start;

	for (size_t i = first; i < last; i++) {
		if (script->ops[i] != OP_INSERT)
			a_count++;
		if (script->ops[i] != OP_DELETE)
			b_count++;
	}
	if (fputs("@@ ", out) == EOF ||
	    !write_range(out, '-', a_start, a_count) || fputc(' ', out) == EOF ||
	    !write_range(out, '+', b_start, b_count) || fputs(" @@\n", out) == EOF)
		return false;
	for (size_t i = first; i < last; i++) {
		bool ok = true;

		switch (script->ops[i]) {
		case OP_EQUAL:
			ok = write_line(out, ' ', &a->lines[x++]);
			y++;
			break;
		case OP_DELETE:
			ok = write_line(out, '-', &a->lines[x++]);
			break;
		case OP_INSERT:
			ok = write_line(out, '+', &b->lines[y++]);
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}

bool
cf_diff_write(FILE *out, const struct cf_doc *old, const struct cf_doc *new,
    const char *old_label, const char *new_label, size_t context)
{
	struct script script = { NULL, 0 };
	size_t i = 0, x = 0, y = 0;
	bool header = false, ok = true;

	if (!edit_script(old, new, &script))
		return false;

	while (ok && i < script.count) {
		size_t start, end, hunk_x, hunk_y;

		if (script.ops[i] == OP_EQUAL) {
			i++;
			x++;
			y++;
			continue;
		}
		/* A change at i: back up over up to context equal lines, then
		 * extend while the next change is within 2 * context lines. */
		start = i;
		hunk_x = x;
		hunk_y = y;
		while (start > 0 && i - start < context &&
		    script.ops[start - 1] == OP_EQUAL) {
			start--;
			hunk_x--;
			hunk_y--;
		}
		end = i;
		for (;;) {
			size_t equal = 0;

			while (end < script.count && script.ops[end] != OP_EQUAL)
				end++;
			while (end + equal < script.count &&
			    script.ops[end + equal] == OP_EQUAL)
				equal++;
			if (end + equal >= script.count || equal > 2 * context) {
				end += equal < context ? equal : context;
				break;
			}
			end += equal;
		}
		if (!header) {
			ok = fprintf(out, "--- %s\n+++ %s\n", old_label,
			    new_label) > 0;
			header = true;
		}
		if (ok)
			ok = write_hunk(out, old, new, &script, start, end,
			    hunk_x, hunk_y);
		for (; i < end; i++) {
			if (script.ops[i] != OP_INSERT)
				x++;
			if (script.ops[i] != OP_DELETE)
				y++;
		}
	}
	free(script.ops);
	return ok && !ferror(out);
}
