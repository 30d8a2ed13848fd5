/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helpers shared by the cf_*.c files behind cf_patch.h; not a public
 * interface.
 */
#ifndef CF_INTERNAL_H
#define CF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "cf_doc.h"
#include "cf_patch.h"

#define MARK_OFF CF_MARK "off "
#define MARK_WAS CF_MARK "was "
#define MARK_BEGIN CF_MARK "begin"
#define MARK_END CF_MARK "end"

void cf_set_error(char *error, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends a formatted message; returns false when memory runs out. */
bool cf_list_add(struct cf_list *list, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

void cf_list_free(struct cf_list *list);

bool cf_line_starts_with(const struct cf_line *line, const char *prefix);

/*
 * Copies text into buffer for a message, with unprintable characters as
 * spaces and "..." where it had to be cut.  Returns buffer.
 */
const char *cf_excerpt(const char *text, char *buffer, size_t size);

/* Enough for any real file; more DeliveryMode lines than this is an error. */
#define CF_MAX_SPANS 32

/* A logical line: a first physical line and its continuation lines. */
struct cf_span {
	size_t line;
	size_t n;
};

struct cf_scan {
	bool ruleset0;
	bool parse1;
	bool local_mailer;
	bool long_options;	/* "O Name=value" seen */
	bool short_options;	/* "Oxvalue" seen */
	struct cf_span local_rules[CF_MAX_SPANS];
	size_t local_rule_count;
	struct cf_span delivery[CF_MAX_SPANS];
	size_t delivery_count;
	bool has_filters;
	struct cf_span filters;	/* the last InputMailFilters line */
	bool has_filter;
	struct cf_span filter;	/* the X line for CF_FILTER_NAME */
	bool has_map;
	struct cf_span map;
	bool has_etrn;
	struct cf_span etrn;	/* the first S line of check_etrn */
	bool etrn_hooked;	/* check_etrn already looks up the map */
};

/* Joins a logical line's physical lines, as sendmail does when it reads it. */
char *cf_logical_text(const struct cf_doc *doc, struct cf_span span);

const char *cf_skip_blanks(const char *p);

/*
 * Parses an O line.  For "O Name=value" and "O Name value" stores the name
 * and sets *value_at to the offset of the value in text.  For the old
 * one-letter form "Oxvalue" the letter is the name.
 */
void cf_parse_option(const char *text, char *name, size_t size,
    size_t *value_at, bool *long_form);

/* Finds the lines that cf_patch changes and checks the file's structure. */
enum cf_status cf_scan_doc(const struct cf_doc *doc, struct cf_scan *scan,
    char *error, size_t error_size);

#endif
