/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The sendmail.cf changes that ondemand-cf makes; see cf_patch.h.
 *
 * cf_patch() plans every change from what cf_scan_doc() found, then applies
 * the edits from the last line to the first, so that no edit moves the
 * lines of another.
 */

#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_internal.h"
#include "cf_patch.h"

/*
 * The check_etrn rules.  The map returns "ACCEPT", "DENY text",
 * "INVALID text" or "TEMP text"; -T<TMPF> on the K line appends <TMPF> to
 * the key when the daemon cannot be reached, and NOTFOUND gives the
 * default <NOTFOUND>.  The <TMPF> rule comes first so that an argument
 * such as "DENY" cannot be mistaken for a reply.  A 2xx code from $#error
 * is sent as it is and stops sendmail's own queue run for the argument.
 */
const char *const cf_etrn_rules[] = {
	"R$*\t\t\t$: $1 $| $(ondemand $1 / $&{client_addr} $: <NOTFOUND> $)\task ondemand-milter",
	"R$* $| $* <TMPF>\t$#error $@ 4.3.0 $: \"458 Unable to queue messages "
	    "for node \" $1",
	"R$* $| <NOTFOUND>\t$: $1\t\t\t\tnot an on-demand domain",
	"R$* $| ACCEPT\t\t$@ $1\t\t\t\tsendmail answers 250 and runs its queue",
	"R$* $| ACCEPT 0\t\t$#error $@ 2.0.0 $: \"251 OK no messages waiting "
	    "for node \" $1",
	"R$* $| ACCEPT $-\t$#error $@ 2.0.0 $: \"253 OK \" $2 \" pending "
	    "messages for node \" $1 \" started\"",
	"R$* $| DENY\t\t$#error $@ 4.7.1 $: \"459 Node \" $1 \" not allowed\"",
	"R$* $| DENY $+\t\t$#error $@ 4.7.1 $: \"459 Node \" $1 \" not "
	    "allowed: \" $2",
	"R$* $| INVALID\t\t$#error $@ 5.5.4 $: \"501 Invalid node name \" $1",
	"R$* $| INVALID $+\t$#error $@ 5.5.4 $: \"501 Invalid node name \" $1 "
	    "\": \" $2",
	"R$* $| TEMP\t\t$#error $@ 4.3.0 $: \"458 Unable to queue messages for "
	    "node \" $1",
	"R$* $| TEMP $+\t\t$#error $@ 4.3.0 $: \"458 Unable to queue messages "
	    "for node \" $1 \": \" $2",
	"R$* $| $*\t\t$#error $@ 4.3.0 $: \"458 Unable to queue messages for "
	    "node \" $1",
	NULL
};

enum edit_kind {
	EDIT_OFF,
	EDIT_REPLACE,
	EDIT_INSERT
};

struct edit {
	enum edit_kind kind;
	struct cf_span span;	/* for EDIT_INSERT: span.line is where */
	char *text;		/* EDIT_REPLACE: the new line */
	struct cf_list block;	/* EDIT_INSERT: lines between the markers */
};

struct edits {
	struct edit items[2 * CF_MAX_SPANS + 8];
	size_t count;
};

/* Returns the socket with a "unix:" prefix where it is a bare path. */
static char *
socket_spec(const char *spec)
{
	size_t len = strlen(spec) + 6;
	char *text = malloc(len);

	if (text != NULL)
		snprintf(text, len, "%s%s", spec[0] == '/' ? "unix:" : "",
		    spec);
	return text;
}

char *
cf_filter_line(const struct cf_options *options)
{
	char *socket = socket_spec(options->milter_socket);
	char *line;
	size_t len;

	if (socket == NULL)
		return NULL;
	len = strlen(socket) + 64 + (options->milter_timeouts == NULL ? 0 :
	    strlen(options->milter_timeouts));
	line = malloc(len);
	if (line != NULL)
		snprintf(line, len, "X%s, S=%s, F=T%s%s", CF_FILTER_NAME,
		    socket, options->milter_timeouts == NULL ? "" : ", T=",
		    options->milter_timeouts == NULL ? "" :
		    options->milter_timeouts);
	free(socket);
	return line;
}

char *
cf_map_line(const struct cf_options *options)
{
	char *socket = socket_spec(options->socketmap);
	const char *timeout = options->socketmap_timeout;
	char *line;
	size_t len;

	if (socket == NULL)
		return NULL;
	len = strlen(socket) + 64 + (timeout == NULL ? 0 : strlen(timeout));
	line = malloc(len);
	if (line != NULL)
		snprintf(line, len, "K%s socket%s%s -T<TMPF> %s", CF_MAP_NAME,
		    timeout == NULL ? "" : " -d", timeout == NULL ? "" : timeout,
		    socket);
	free(socket);
	return line;
}

static struct edit *
add_edit(struct edits *edits, enum edit_kind kind, struct cf_span span)
{
	struct edit *edit = &edits->items[edits->count++];

	memset(edit, 0, sizeof(*edit));
	edit->kind = kind;
	edit->span = span;
	return edit;
}

static void
free_edits(struct edits *edits)
{
	for (size_t i = 0; i < edits->count; i++) {
		free(edits->items[i].text);
		cf_list_free(&edits->items[i].block);
	}
	edits->count = 0;
}

/* Orders edits by position, last first, so that applying one does not
 * move the lines of the others.  An insertion before line n sorts between
 * the edits of lines n - 1 and n. */
static int
compare_edits(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;
	size_t kx = 2 * x->span.line + (x->kind == EDIT_INSERT ? 0 : 1);
	size_t ky = 2 * y->span.line + (y->kind == EDIT_INSERT ? 0 : 1);

	if (kx < ky)
		return 1;
	if (kx > ky)
		return -1;
	return 0;
}

/* Returns a copy of text with prefix in front. */
static char *
prefixed(const char *prefix, const char *text, size_t len, size_t *out_len)
{
	size_t prefix_len = strlen(prefix);
	char *out = malloc(prefix_len + len + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, prefix, prefix_len);
	memcpy(out + prefix_len, text, len);
	out[prefix_len + len] = '\0';
	*out_len = prefix_len + len;
	return out;
}

static bool
mark_line(struct cf_doc *doc, size_t index, const char *prefix)
{
	struct cf_line *line = &doc->lines[index];
	size_t len;
	char *text = prefixed(prefix, line->text, line->len, &len);

	if (text == NULL)
		return false;
	free(line->text);
	line->text = text;
	line->len = len;
	return true;
}

/*
 * Returns the ending for a last line that had none and gets lines after
 * it.  A text that ends in CR gets CR LF, because CR and a plain LF would
 * read back as one CR LF ending, and the CR would be lost to the text and
 * to cf_revert().
 */
static enum cf_eol
added_ending(const struct cf_line *line, enum cf_eol main_eol)
{
	if (line->len > 0 && line->text[line->len - 1] == '\r')
		return CF_EOL_CRLF;
	return main_eol;
}

static bool
apply_edit(struct cf_doc *doc, const struct edit *edit, enum cf_eol main_eol)
{
	size_t last = edit->span.line + edit->span.n - 1;
	enum cf_eol eol;

	switch (edit->kind) {
	case EDIT_OFF:
		for (size_t i = edit->span.line; i <= last; i++)
			if (!mark_line(doc, i, MARK_OFF))
				return false;
		return true;

	case EDIT_REPLACE:
		/* The new line takes the old line's ending, so a last line
		 * without one stays without one after the edit and after
		 * cf_revert(). */
		eol = doc->lines[last].eol;
		if (eol == CF_EOL_NONE)
			doc->lines[last].eol = added_ending(&doc->lines[last],
			    main_eol);
		for (size_t i = edit->span.line; i <= last; i++)
			if (!mark_line(doc, i, MARK_WAS))
				return false;
		return cf_doc_insert(doc, last + 1, edit->text,
		    strlen(edit->text), eol);

	case EDIT_INSERT: {
		size_t at = edit->span.line;
		enum cf_eol end_eol = main_eol;
		const char *begin = MARK_BEGIN " lines added by ondemand-cf; "
		    "\"ondemand-cf --revert\" removes them";

		if (at > 0 && doc->lines[at - 1].eol == CF_EOL_NONE) {
			doc->lines[at - 1].eol = added_ending(
			    &doc->lines[at - 1], main_eol);
			end_eol = CF_EOL_NONE;
		}
		if (!cf_doc_insert(doc, at++, begin, strlen(begin), main_eol))
			return false;
		for (size_t i = 0; i < edit->block.count; i++) {
			const char *text = edit->block.items[i];

			if (!cf_doc_insert(doc, at++, text, strlen(text),
			    main_eol))
				return false;
		}
		return cf_doc_insert(doc, at, MARK_END, strlen(MARK_END),
		    end_eol);
	}
	}
	return false;
}

/* Returns the first letter of the DeliveryMode value that options set. */
static char
delivery_letter(enum cf_delivery_mode mode)
{
	return mode == CF_DELIVERY_DEFERRED ? 'd' : 'q';
}

static const char *
delivery_word(enum cf_delivery_mode mode)
{
	return mode == CF_DELIVERY_DEFERRED ? "deferred" : "queueonly";
}

/* Builds "prefix" + "value" as a new string. */
static char *
join2(const char *prefix, size_t prefix_len, const char *value)
{
	size_t len = prefix_len + strlen(value) + 1;
	char *text = malloc(len);

	if (text != NULL)
		snprintf(text, len, "%.*s%s", (int)prefix_len, prefix, value);
	return text;
}

static enum cf_status
plan_delivery_mode(const struct cf_doc *doc, const struct cf_scan *scan,
    const struct cf_options *options, struct edits *edits,
    struct cf_list *end_block, struct cf_report *report)
{
	char letter = delivery_letter(options->delivery_mode);
	const char *word = delivery_word(options->delivery_mode);

	if (options->delivery_mode == CF_DELIVERY_KEEP)
		return CF_OK;
	for (size_t i = 0; i < scan->delivery_count; i++) {
		struct cf_span span = scan->delivery[i];
		char *text = cf_logical_text(doc, span), *line, name[64];
		size_t value_at;
		bool long_form;
		struct edit *edit;

		if (text == NULL)
			return CF_NOMEM;
		cf_parse_option(text, name, sizeof(name), &value_at, &long_form);
		/* sendmail looks only at the first letter of the mode. */
		if (tolower((unsigned char)text[value_at]) == letter) {
			free(text);
			continue;
		}
		line = join2(text, value_at, word);
		if (line == NULL || !cf_list_add(&report->changes, "line %zu: "
		    "DeliveryMode set to %s (was \"%s\")", span.line + 1, word,
		    text + value_at)) {
			free(line);
			free(text);
			return CF_NOMEM;
		}
		free(text);
		edit = add_edit(edits, EDIT_REPLACE, span);
		edit->text = line;
	}
	if (scan->delivery_count == 0) {
		bool short_form = scan->short_options && !scan->long_options;

		if (!cf_list_add(end_block, "%s%s", short_form ? "Od" :
		    "O DeliveryMode=", word) ||
		    !cf_list_add(&report->changes, "added DeliveryMode %s (the "
		    "file had no DeliveryMode option)", word))
			return CF_NOMEM;
	}
	return CF_OK;
}

static enum cf_status
plan_local_rules(const struct cf_doc *doc, const struct cf_scan *scan,
    struct edits *edits, struct cf_report *report)
{
	if (scan->local_rule_count == 0) {
		if (!cf_list_add(&report->warnings, "found none of the rules that "
		    "deliver $=w domains locally in ruleset 0 or Parse1; "
		    "nothing was commented out"))
			return CF_NOMEM;
		return CF_OK;
	}
	for (size_t i = 0; i < scan->local_rule_count; i++) {
		struct cf_span span = scan->local_rules[i];
		char *text = cf_logical_text(doc, span), lhs[64];

		if (text == NULL)
			return CF_NOMEM;
		snprintf(lhs, sizeof(lhs), "%.*s", (int)strcspn(text, "\t"),
		    text);
		free(text);
		add_edit(edits, EDIT_OFF, span);
		if (!cf_list_add(&report->changes, "line %zu: commented out the "
		    "local-address rule \"%s\"", span.line + 1, lhs))
			return CF_NOMEM;
	}
	return CF_OK;
}

/* Returns whether the comma-separated list contains name. */
static bool
list_contains(const char *list, const char *name)
{
	size_t len = strlen(name);
	const char *p = list;

	while (*p != '\0') {
		size_t item;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		item = strcspn(p, ", \t\r\n");
		if (item == len && strncmp(p, name, len) == 0)
			return true;
		p += item;
	}
	return false;
}

/* Returns the separator that the list of filters uses: "a, b" or "a,b". */
static const char *
list_separator(const char *list)
{
	if (list[0] == '\0')
		return "";
	if (strchr(list, ',') != NULL && strstr(list, ", ") == NULL)
		return ",";
	return ", ";
}

/* Adds the filter at the end of InputMailFilters, or adds the option. */
static enum cf_status
plan_input_filters(const struct cf_doc *doc, const struct cf_scan *scan,
    struct edits *edits, struct cf_list *end_block, struct cf_report *report)
{
	char *text, name[64], *line;
	const char *separator;
	size_t value_at, end, size;
	bool long_form;

	if (!scan->has_filters) {
		if (!cf_list_add(end_block, "O InputMailFilters=%s",
		    CF_FILTER_NAME) ||
		    !cf_list_add(&report->changes, "added InputMailFilters=%s",
		    CF_FILTER_NAME))
			return CF_NOMEM;
		return CF_OK;
	}

	text = cf_logical_text(doc, scan->filters);
	if (text == NULL)
		return CF_NOMEM;
	cf_parse_option(text, name, sizeof(name), &value_at, &long_form);
	if (list_contains(text + value_at, CF_FILTER_NAME)) {
		free(text);
		return CF_OK;
	}
	end = strlen(text);
	while (end > value_at && isspace((unsigned char)text[end - 1]))
		end--;
	text[end] = '\0';
	separator = list_separator(text + value_at);
	/* Without a value, "O InputMailFilters" needs its "=" before ours. */
	if (text[value_at] == '\0' && long_form &&
	    (value_at == 0 || text[value_at - 1] != '='))
		separator = "=";
	size = end + strlen(separator) + strlen(CF_FILTER_NAME) + 1;
	line = malloc(size);
	if (line == NULL) {
		free(text);
		return CF_NOMEM;
	}
	snprintf(line, size, "%s%s%s", text, separator, CF_FILTER_NAME);
	free(text);
	add_edit(edits, EDIT_REPLACE, scan->filters)->text = line;
	if (!cf_list_add(&report->changes, "line %zu: added %s to "
	    "InputMailFilters, after the filters already there",
	    scan->filters.line + 1, CF_FILTER_NAME))
		return CF_NOMEM;
	return CF_OK;
}

/* Adds the X line, or replaces an Xondemand line that differs. */
static enum cf_status
plan_filter(const struct cf_doc *doc, const struct cf_scan *scan,
    const struct cf_options *options, struct edits *edits,
    struct cf_list *end_block, struct cf_report *report)
{
	char *wanted = cf_filter_line(options), *text;
	enum cf_status status = CF_NOMEM;

	if (wanted == NULL)
		return CF_NOMEM;
	if (!scan->has_filter) {
		if (cf_list_add(end_block, "%s", wanted) &&
		    cf_list_add(&report->changes, "added the filter: %s", wanted))
			status = CF_OK;
		free(wanted);
		return status;
	}

	text = cf_logical_text(doc, scan->filter);
	if (text == NULL) {
		free(wanted);
		return CF_NOMEM;
	}
	status = CF_OK;
	if (strcmp(text, wanted) != 0) {
		add_edit(edits, EDIT_REPLACE, scan->filter)->text = wanted;
		wanted = NULL;
		if (!cf_list_add(&report->changes, "line %zu: replaced the filter "
		    "definition \"%s\"", scan->filter.line + 1, text))
			status = CF_NOMEM;
	}
	free(text);
	free(wanted);
	return status;
}

static enum cf_status
plan_etrn_hook(const struct cf_doc *doc, const struct cf_scan *scan,
    const struct cf_options *options, struct edits *edits,
    struct cf_list *end_block, struct cf_report *report, char *error,
    size_t error_size)
{
	char *wanted, *text;

	if (options->socketmap == NULL)
		return CF_OK;
	wanted = cf_map_line(options);
	if (wanted == NULL)
		return CF_NOMEM;

	if (!scan->has_map) {
		if (!cf_list_add(end_block, "%s", wanted) ||
		    !cf_list_add(&report->changes, "added the socket map: %s",
		    wanted))
			goto nomem;
	} else {
		char class[32];
		const char *p;

		text = cf_logical_text(doc, scan->map);
		if (text == NULL)
			goto nomem;
		p = cf_skip_blanks(cf_skip_blanks(text + 1) + strlen(CF_MAP_NAME));
		snprintf(class, sizeof(class), "%.*s", (int)strcspn(p, " \t"),
		    p);
		if (strcmp(class, "socket") != 0) {
			cf_set_error(error, error_size, "line %zu: the file "
			    "already defines a map named \"%s\" of class "
			    "\"%s\", and ondemand-cf needs that name for its "
			    "socket map: rename that map (and its uses) first",
			    scan->map.line + 1, CF_MAP_NAME, class);
			free(text);
			free(wanted);
			return CF_INVALID;
		}
		if (strcmp(text, wanted) != 0) {
			add_edit(edits, EDIT_REPLACE, scan->map)->text = wanted;
			wanted = NULL;
			if (!cf_list_add(&report->changes, "line %zu: replaced "
			    "the socket map \"%s\"", scan->map.line + 1,
			    text)) {
				free(text);
				goto nomem;
			}
		}
		free(text);
	}
	free(wanted);
	wanted = NULL;

	if (scan->etrn_hooked)
		return CF_OK;
	if (scan->has_etrn) {
		/* Ours go first, so the daemon decides for an on-demand
		 * domain, and every other argument falls through to the
		 * rules that were already there. */
		struct edit *edit = add_edit(edits, EDIT_INSERT, (struct cf_span){
		    scan->etrn.line + scan->etrn.n, 0 });

		for (size_t i = 0; cf_etrn_rules[i] != NULL; i++)
			if (!cf_list_add(&edit->block, "%s", cf_etrn_rules[i]))
				goto nomem;
		if (!cf_list_add(&report->changes, "line %zu: added the ETRN "
		    "rules at the start of the existing ruleset check_etrn; "
		    "its own rules still run for arguments that are not "
		    "on-demand domains", scan->etrn.line + 1))
			goto nomem;
		return CF_OK;
	}
	if (!cf_list_add(end_block, "Scheck_etrn"))
		goto nomem;
	for (size_t i = 0; cf_etrn_rules[i] != NULL; i++)
		if (!cf_list_add(end_block, "%s", cf_etrn_rules[i]))
			goto nomem;
	if (!cf_list_add(&report->changes, "added the ruleset check_etrn"))
		goto nomem;
	return CF_OK;

nomem:
	free(wanted);
	return CF_NOMEM;
}

enum cf_status
cf_patch(struct cf_doc *doc, const struct cf_options *options,
    struct cf_report *report, char *error, size_t error_size)
{
	struct cf_scan scan;
	struct edits edits = { .count = 0 };
	struct cf_list end_block = { 0 };
	enum cf_eol main_eol = cf_doc_main_eol(doc);
	enum cf_status status;

	if (cf_has_marks(doc)) {
		cf_set_error(error, error_size, "the file still contains "
		    "ondemand-cf markers; revert it first");
		return CF_INVALID;
	}
	status = cf_check_options(options, error, error_size);
	if (status != CF_OK)
		return status;
	status = cf_scan_doc(doc, &scan, error, error_size);
	if (status != CF_OK)
		return status;

	status = plan_delivery_mode(doc, &scan, options, &edits, &end_block,
	    report);
	if (status == CF_OK)
		status = plan_local_rules(doc, &scan, &edits, report);
	if (status == CF_OK)
		status = plan_input_filters(doc, &scan, &edits, &end_block,
		    report);
	if (status == CF_OK)
		status = plan_filter(doc, &scan, options, &edits, &end_block,
		    report);
	if (status == CF_OK)
		status = plan_etrn_hook(doc, &scan, options, &edits,
		    &end_block, report, error, error_size);
	if (status == CF_OK && end_block.count > 0) {
		struct edit *edit = add_edit(&edits, EDIT_INSERT,
		    (struct cf_span){ doc->count, 0 });

		edit->block = end_block;
		end_block = (struct cf_list){ 0 };
	}

	if (status == CF_OK) {
		qsort(edits.items, edits.count, sizeof(edits.items[0]),
		    compare_edits);
		for (size_t i = 0; i < edits.count; i++) {
			if (!apply_edit(doc, &edits.items[i], main_eol)) {
				status = CF_NOMEM;
				break;
			}
		}
	}
	if (status == CF_NOMEM)
		cf_set_error(error, error_size, "out of memory");
	cf_list_free(&end_block);
	free_edits(&edits);
	return status;
}

enum cf_status
cf_update(const struct cf_doc *current, const struct cf_options *options,
    struct cf_doc *result, struct cf_report *report, char *error,
    size_t error_size)
{
	struct cf_report ignored = { { 0 }, { 0 } };
	enum cf_status status;

	if (!cf_doc_copy(result, current)) {
		cf_set_error(error, error_size, "out of memory");
		return CF_NOMEM;
	}
	/* The revert's own notes are dropped: the patch lists every change. */
	status = cf_revert(result, &ignored, error, error_size);
	cf_report_free(&ignored);
	if (status == CF_OK)
		status = cf_patch(result, options, report, error, error_size);
	if (status != CF_OK)
		cf_doc_free(result);
	return status;
}
