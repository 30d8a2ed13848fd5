/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A sendmail.cf file as a list of physical lines, each with its own line
 * ending, so that a file can be split, edited line by line and joined back
 * into exactly the bytes it came from.
 *
 * Only "\n" and "\r\n" end a line.  A lone "\r" stays part of the text, and
 * the last line may have no ending at all.
 */
#ifndef CF_DOC_H
#define CF_DOC_H

#include <stdbool.h>
#include <stddef.h>

enum cf_eol {
	CF_EOL_NONE,
	CF_EOL_LF,
	CF_EOL_CRLF
};

struct cf_line {
	char *text;		/* without the line ending; NUL-terminated */
	size_t len;
	enum cf_eol eol;
};

struct cf_doc {
	struct cf_line *lines;
	size_t count;
	size_t capacity;
};

/* Splits buf into doc, which must be zeroed.  Returns false when memory runs out. */
bool cf_doc_parse(struct cf_doc *doc, const char *buf, size_t len);

void cf_doc_free(struct cf_doc *doc);

/* Copies src into dst, which must be zeroed. */
bool cf_doc_copy(struct cf_doc *dst, const struct cf_doc *src);

/* Inserts a copy of text as line index (0 <= index <= count). */
bool cf_doc_insert(struct cf_doc *doc, size_t index, const char *text,
    size_t len, enum cf_eol eol);

/* Removes lines index to index + n - 1. */
void cf_doc_remove(struct cf_doc *doc, size_t index, size_t n);

/* Replaces the text of line index with a copy of text, keeping its ending. */
bool cf_doc_set_text(struct cf_doc *doc, size_t index, const char *text,
    size_t len);

/* Joins the lines into a new buffer of *len bytes (NUL-terminated). */
char *cf_doc_join(const struct cf_doc *doc, size_t *len);

bool cf_doc_equal(const struct cf_doc *a, const struct cf_doc *b);

bool cf_line_equal(const struct cf_line *a, const struct cf_line *b);

/*
 * Returns the ending that new lines should get: that of the first line that
 * has one, or "\n" for a file without any.
 */
enum cf_eol cf_doc_main_eol(const struct cf_doc *doc);

const char *cf_eol_bytes(enum cf_eol eol);

/*
 * Returns whether line index continues the line above it: sendmail joins a
 * line that starts with a space or a tab to the previous one.
 */
bool cf_doc_is_continuation(const struct cf_doc *doc, size_t index);

/* Returns the number of physical lines in the logical line starting at index. */
size_t cf_doc_logical_length(const struct cf_doc *doc, size_t index);

#endif
