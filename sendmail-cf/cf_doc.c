/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Physical lines of a sendmail.cf file; see cf_doc.h.
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cf_doc.h"

static bool
reserve(struct cf_doc *doc, size_t wanted)
{
	struct cf_line *lines;
	size_t capacity;

	if (wanted <= doc->capacity)
		return true;
	capacity = doc->capacity == 0 ? 64 : doc->capacity;
	while (capacity < wanted)
		capacity *= 2;
	lines = realloc(doc->lines, capacity * sizeof(*lines));
	if (lines == NULL)
		return false;
	doc->lines = lines;
	doc->capacity = capacity;
	return true;
}

static char *
copy_text(const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, text, len);
	copy[len] = '\0';
	return copy;
}

bool
cf_doc_insert(struct cf_doc *doc, size_t index, const char *text, size_t len,
    enum cf_eol eol)
{
	char *copy;

	if (index > doc->count || !reserve(doc, doc->count + 1))
		return false;
	copy = copy_text(text, len);
	if (copy == NULL)
		return false;
	memmove(&doc->lines[index + 1], &doc->lines[index],
	    (doc->count - index) * sizeof(doc->lines[0]));
	doc->lines[index].text = copy;
	doc->lines[index].len = len;
	doc->lines[index].eol = eol;
	doc->count++;
	return true;
}

bool
cf_doc_parse(struct cf_doc *doc, const char *buf, size_t len)
{
	size_t start = 0;

	while (start < len) {
		const char *newline = memchr(buf + start, '\n', len - start);
		size_t end = newline == NULL ? len : (size_t)(newline - buf);
		size_t text_len = end - start;
		enum cf_eol eol = CF_EOL_NONE;

		if (newline != NULL) {
			eol = CF_EOL_LF;
			if (text_len > 0 && buf[end - 1] == '\r') {
				eol = CF_EOL_CRLF;
				text_len--;
			}
		}
		if (!cf_doc_insert(doc, doc->count, buf + start, text_len,
		    eol)) {
			cf_doc_free(doc);
			return false;
		}
		start = newline == NULL ? len : end + 1;
	}
	return true;
}

void
cf_doc_free(struct cf_doc *doc)
{
	for (size_t i = 0; i < doc->count; i++)
		free(doc->lines[i].text);
	free(doc->lines);
	doc->lines = NULL;
	doc->count = 0;
	doc->capacity = 0;
}

bool
cf_doc_copy(struct cf_doc *dst, const struct cf_doc *src)
{
	for (size_t i = 0; i < src->count; i++) {
		const struct cf_line *line = &src->lines[i];

		if (!cf_doc_insert(dst, dst->count, line->text, line->len,
		    line->eol)) {
			cf_doc_free(dst);
			return false;
		}
	}
	return true;
}

void
cf_doc_remove(struct cf_doc *doc, size_t index, size_t n)
{
	if (index >= doc->count)
		return;
	if (n > doc->count - index)
		n = doc->count - index;
	for (size_t i = index; i < index + n; i++)
		free(doc->lines[i].text);
	memmove(&doc->lines[index], &doc->lines[index + n],
	    (doc->count - index - n) * sizeof(doc->lines[0]));
	doc->count -= n;
}

bool
cf_doc_set_text(struct cf_doc *doc, size_t index, const char *text, size_t len)
{
	char *copy = copy_text(text, len);

	if (copy == NULL)
		return false;
	free(doc->lines[index].text);
	doc->lines[index].text = copy;
	doc->lines[index].len = len;
	return true;
}

const char *
cf_eol_bytes(enum cf_eol eol)
{
	switch (eol) {
	case CF_EOL_LF:
		return "\n";
	case CF_EOL_CRLF:
		return "\r\n";
	case CF_EOL_NONE:
		break;
	}
	return "";
}

char *
cf_doc_join(const struct cf_doc *doc, size_t *len)
{
	size_t total = 0, at = 0;
	char *buf;

	for (size_t i = 0; i < doc->count; i++)
		total += doc->lines[i].len + strlen(cf_eol_bytes(doc->lines[i].eol));
	buf = malloc(total + 1);
	if (buf == NULL)
		return NULL;
	for (size_t i = 0; i < doc->count; i++) {
		const char *eol = cf_eol_bytes(doc->lines[i].eol);

		memcpy(buf + at, doc->lines[i].text, doc->lines[i].len);
		at += doc->lines[i].len;
		memcpy(buf + at, eol, strlen(eol));
		at += strlen(eol);
	}
	buf[at] = '\0';
	*len = at;
	return buf;
}

bool
cf_line_equal(const struct cf_line *a, const struct cf_line *b)
{
	return a->len == b->len && a->eol == b->eol &&
	    memcmp(a->text, b->text, a->len) == 0;
}

bool
cf_doc_equal(const struct cf_doc *a, const struct cf_doc *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (!cf_line_equal(&a->lines[i], &b->lines[i]))
			return false;
	return true;
}

enum cf_eol
cf_doc_main_eol(const struct cf_doc *doc)
{
	for (size_t i = 0; i < doc->count; i++)
		if (doc->lines[i].eol != CF_EOL_NONE)
			return doc->lines[i].eol;
	return CF_EOL_LF;
}

bool
cf_doc_is_continuation(const struct cf_doc *doc, size_t index)
{
	const struct cf_line *line = &doc->lines[index];

	return index > 0 && line->len > 0 &&
	    (line->text[0] == ' ' || line->text[0] == '\t');
}

size_t
cf_doc_logical_length(const struct cf_doc *doc, size_t index)
{
	size_t n = 1;

	while (index + n < doc->count && cf_doc_is_continuation(doc, index + n))
		n++;
	return n;
}
