/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reading a sendmail.cf: where its rulesets, options, filter and map lines
 * are, and whether it has the parts that every sendmail.cf needs.
 *
 * The sendmail.cf syntax used here follows the sendmail 8.17 Installation
 * and Operation Guide and readcf.c.  A line that starts with a space or a
 * tab continues the previous line, and the first character selects the
 * command.  An R line's left-hand side ends at the first tab.  Options are
 * "O LongName=value" or, in old files, "O" followed by a one-letter name
 * and the value ("Odbackground").
 *
 * BUGS: the local-address rules are found by their left-hand side only.
 * A site rule with the same left-hand side in ruleset 0 or Parse1 is
 * commented out as well.
 */

#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_internal.h"
#include "cf_patch.h"

/*
 * Left-hand sides, without spaces, of the rules that deliver $=w domains
 * locally: ruleset 0 of old files, and Parse1 of sendmail 8.7 and later.
 */
static const char *const local_rule_lhs[] = {
	"$+<@$=w>",
	"<@$=w>$-$+",
	"$=L<@$=w.>",
	"$+<@$=w.>",
	NULL
};

char *
cf_logical_text(const struct cf_doc *doc, struct cf_span span)
{
	size_t total = 0, at = 0;
	char *text;

	for (size_t i = 0; i < span.n; i++)
		total += doc->lines[span.line + i].len;
	text = malloc(total + 1);
	if (text == NULL)
		return NULL;
	for (size_t i = 0; i < span.n; i++) {
		const struct cf_line *line = &doc->lines[span.line + i];

		memcpy(text + at, line->text, line->len);
		at += line->len;
	}
	text[at] = '\0';
	return text;
}

/* Skips spaces and tabs. */
const char *
cf_skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * Parses an S line: "S0", "Sname" or "Sname=0".  Stores the name (empty
 * for a bare number) and the number (-1 when there is none).
 */
static void
parse_ruleset(const char *text, char *name, size_t size, long *number)
{
	const char *p = cf_skip_blanks(text + 1);
	size_t len = strcspn(p, "= \t");

	*number = -1;
	name[0] = '\0';
	if (len > 0 && strspn(p, "0123456789") == len) {
		*number = strtol(p, NULL, 10);
	} else {
		snprintf(name, size, "%.*s", (int)len, p);
		p = cf_skip_blanks(p + len);
		if (*p == '=' && isdigit((unsigned char)p[1]))
			*number = strtol(p + 1, NULL, 10);
	}
}

void
cf_parse_option(const char *text, char *name, size_t size, size_t *value_at,
    bool *long_form)
{
	const char *p = text + 1;

	*long_form = *p == ' ' || *p == '\t';
	if (!*long_form) {
		snprintf(name, size, "%.1s", p);
		*value_at = *p == '\0' ? 1 : 2;
		return;
	}
	p = cf_skip_blanks(p);
	{
		size_t len = strcspn(p, "= \t");

		snprintf(name, size, "%.*s", (int)len, p);
		p = cf_skip_blanks(p + len);
		if (*p == '=')
			p = cf_skip_blanks(p + 1);
	}
	*value_at = (size_t)(p - text);
}

/* Returns the name of an X or K line: up to a comma or white space. */
static void
parse_command_name(const char *text, char *name, size_t size)
{
	const char *p = cf_skip_blanks(text + 1);

	snprintf(name, size, "%.*s", (int)strcspn(p, ", \t"), p);
}

/* Removes all white space, for comparing rule left-hand sides. */
static void
squeeze(const char *text, size_t len, char *out, size_t size)
{
	size_t at = 0;

	for (size_t i = 0; i < len && at + 1 < size; i++)
		if (!isspace((unsigned char)text[i]))
			out[at++] = text[i];
	out[at] = '\0';
}

static bool
is_local_rule(const char *text)
{
	char lhs[128];
	size_t len = strcspn(text + 1, "\t");

	if (len >= sizeof(lhs))
		return false;
	squeeze(text + 1, len, lhs, sizeof(lhs));
	for (size_t i = 0; local_rule_lhs[i] != NULL; i++)
		if (strcmp(lhs, local_rule_lhs[i]) == 0)
			return true;
	return false;
}

static enum cf_status
scan_line(struct cf_span span, const char *text,
    struct cf_scan *scan, bool *in_target, bool *in_etrn, char *error,
    size_t error_size)
{
	char name[64], quoted[48];
	size_t value_at;
	bool long_form;
	long number;

	switch (text[0]) {
	case 'S':
		parse_ruleset(text, name, sizeof(name), &number);
		*in_target = number == 0 || strcasecmp(name, "Parse1") == 0;
		*in_etrn = strcasecmp(name, "check_etrn") == 0;
		if (number == 0)
			scan->ruleset0 = true;
		if (strcasecmp(name, "Parse1") == 0)
			scan->parse1 = true;
		if (*in_etrn && !scan->has_etrn) {
			scan->has_etrn = true;
			scan->etrn = span;
		}
		break;
	case 'R':
		if (*in_target && is_local_rule(text)) {
			if (scan->local_rule_count == CF_MAX_SPANS)
				goto too_many;
			scan->local_rules[scan->local_rule_count++] = span;
		}
		if (*in_etrn && strstr(text, "$(" CF_MAP_NAME " ") != NULL)
			scan->etrn_hooked = true;
		break;
	case 'O':
		cf_parse_option(text, name, sizeof(name), &value_at, &long_form);
		if (long_form)
			scan->long_options = true;
		else
			scan->short_options = true;
		if ((long_form && strcasecmp(name, "DeliveryMode") == 0) ||
		    (!long_form && strcmp(name, "d") == 0)) {
			if (scan->delivery_count == CF_MAX_SPANS)
				goto too_many;
			scan->delivery[scan->delivery_count++] = span;
		}
		if (long_form && strcasecmp(name, "InputMailFilters") == 0) {
			scan->has_filters = true;
			scan->filters = span;
		}
		break;
	case 'X':
		parse_command_name(text, name, sizeof(name));
		if (strcmp(name, CF_FILTER_NAME) == 0 && !scan->has_filter) {
			scan->has_filter = true;
			scan->filter = span;
		}
		break;
	case 'K':
		parse_command_name(text, name, sizeof(name));
		if (strcmp(name, CF_MAP_NAME) == 0 && !scan->has_map) {
			scan->has_map = true;
			scan->map = span;
		}
		break;
	case 'M':
		parse_command_name(text, name, sizeof(name));
		if (strcmp(name, "local") == 0)
			scan->local_mailer = true;
		break;
	case 'C': case 'D': case 'E': case 'F': case 'H': case 'P':
	case 'Q': case 'T': case 'V':
	case '#': case '\0':
		break;
	default:
		cf_set_error(error, error_size, "line %zu: \"%s\" is not a "
		    "sendmail.cf line (each line starts with one of the "
		    "commands C D E F H K M O P Q R S T V X, with # for a "
		    "comment, or with white space to continue a line); check "
		    "that this is the sendmail.cf file", span.line + 1,
		    cf_excerpt(text, quoted, sizeof(quoted)));
		return CF_INVALID;
	}
	return CF_OK;

too_many:
	cf_set_error(error, error_size, "line %zu: more than %d DeliveryMode "
	    "options or local-address rules; clean up the file by hand "
	    "first", span.line + 1, CF_MAX_SPANS);
	return CF_INVALID;
}

enum cf_status
cf_scan_doc(const struct cf_doc *doc, struct cf_scan *scan, char *error,
    size_t error_size)
{
	bool in_target = false, in_etrn = false;
	size_t i = 0;

	memset(scan, 0, sizeof(*scan));
	while (i < doc->count) {
		struct cf_span span = { i, cf_doc_logical_length(doc, i) };
		char *text = cf_logical_text(doc, span);
		enum cf_status status;

		if (text == NULL) {
			cf_set_error(error, error_size, "out of memory");
			return CF_NOMEM;
		}
		status = scan_line(span, text, scan, &in_target,
		    &in_etrn, error, error_size);
		free(text);
		if (status != CF_OK)
			return status;
		i += span.n;
	}

	if (!scan->ruleset0) {
		cf_set_error(error, error_size, "there is no ruleset 0 (an \"S0\" "
		    "or \"Sparse=0\" line), so this is not a complete "
		    "sendmail.cf: check the file name, or rebuild the file "
		    "from its .mc file");
		return CF_INVALID;
	}
	if (scan->local_rule_count == 0 && !scan->parse1) {
		cf_set_error(error, error_size, "ruleset 0 has no local-address "
		    "rules and there is no ruleset Parse1 (an \"SParse1\" "
		    "line), where sendmail 8.7 and later keep them; the file "
		    "is incomplete or truncated: rebuild it or restore it from "
		    "a backup");
		return CF_INVALID;
	}
	if (!scan->local_mailer) {
		cf_set_error(error, error_size, "there is no local mailer (an "
		    "\"Mlocal\" line), which sendmail requires; the file is "
		    "incomplete or truncated: rebuild it or restore it from a "
		    "backup");
		return CF_INVALID;
	}
	return CF_OK;
}
