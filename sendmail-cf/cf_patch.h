/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The sendmail.cf changes that ondemand-cf makes, and their exact undo.
 *
 * Every changed line carries a comment marker starting with "#ondemand-cf:"
 * so that cf_revert() restores the original bytes:
 *
 *   #ondemand-cf:off LINE        LINE was commented out
 *   #ondemand-cf:was LINE        LINE was replaced by the line after it
 *   #ondemand-cf:begin ...       the lines up to "#ondemand-cf:end" were
 *                                added; an end line without a line ending
 *                                means the line before the block had none
 *
 * The patch is a function of the unpatched file and the options:
 * cf_update() reverts earlier changes first, so running it twice with the
 * same options gives the same bytes.  Nothing here does I/O.
 */
#ifndef CF_PATCH_H
#define CF_PATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "cf_doc.h"

#define CF_MARK "#ondemand-cf:"
#define CF_FILTER_NAME "ondemand"
#define CF_MAP_NAME "ondemand"

enum cf_delivery_mode {
	CF_DELIVERY_KEEP,	/* leave DeliveryMode alone */
	CF_DELIVERY_QUEUEONLY,
	CF_DELIVERY_DEFERRED
};

struct cf_options {
	enum cf_delivery_mode delivery_mode;
	const char *milter_socket;	/* S= of the X line, e.g. unix:/path */
	const char *milter_timeouts;	/* T= of the X line; NULL leaves it out */
	const char *socketmap;		/* NULL: no ETRN hook */
	const char *socketmap_timeout;	/* -d of the K line; NULL: 30 s */
};

enum cf_status {
	CF_OK,
	CF_INVALID,		/* the input or an option is not acceptable */
	CF_NOMEM
};

/* A growing list of messages for the user. */
struct cf_list {
	char **items;
	size_t count;
};

struct cf_report {
	struct cf_list changes;		/* "line 201: ..." for -v */
	struct cf_list warnings;
};

void cf_report_free(struct cf_report *report);

/* The check_etrn rules, one string per line, NULL-terminated. */
extern const char *const cf_etrn_rules[];

/*
 * Checks that buf looks like text that can be a sendmail.cf: not empty, no
 * NUL bytes, few control characters.
 */
enum cf_status cf_check_text(const char *buf, size_t len, char *error,
    size_t error_size);

/* Checks the socket specifications and timeouts in options. */
enum cf_status cf_check_options(const struct cf_options *options,
    char *error, size_t error_size);

/* Returns whether doc contains any ondemand-cf marker. */
bool cf_has_marks(const struct cf_doc *doc);

/* Undoes every marked change in doc. */
enum cf_status cf_revert(struct cf_doc *doc, struct cf_report *report,
    char *error, size_t error_size);

/* Applies the changes to doc, which must not contain markers. */
enum cf_status cf_patch(struct cf_doc *doc, const struct cf_options *options,
    struct cf_report *report, char *error, size_t error_size);

/*
 * Computes into result (zeroed) the patched form of current: current
 * reverted, then patched with options.
 */
enum cf_status cf_update(const struct cf_doc *current,
    const struct cf_options *options, struct cf_doc *result,
    struct cf_report *report, char *error, size_t error_size);

/* Builds the milter (X) and socket map (K) lines that cf_patch writes. */
char *cf_filter_line(const struct cf_options *options);
char *cf_map_line(const struct cf_options *options);

#endif
