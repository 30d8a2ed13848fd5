/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Check tests of the sendmail.cf logic behind ondemand-cf: the line model,
 * the patch and its undo, option checks and the unified diff.  They run on
 * strings, without files or sendmail.
 */

#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_diff.h"
#include "cf_doc.h"
#include "cf_patch.h"

/* The lines cf_patch adds at the end of a file, as one string. */
#define BLOCK_BEGIN "#ondemand-cf:begin lines added by ondemand-cf; " \
	"\"ondemand-cf --revert\" removes them\n"
#define FILTER_LINE "Xondemand, S=unix:/run/ondemand/milter.sock, F=T, " \
	"T=S:10s;R:10s;E:5m\n"
#define MAP_LINE "Kondemand socket -d10s -T<TMPF> " \
	"unix:/run/ondemand/socketmap.sock\n"

/* A minimal file in the sendmail 8.17 layout. */
static const char modern_cf[] =
	"V10/Berkeley\n"
	"O DeliveryMode=background\n"
	"Sparse=0\n"
	"R$*\t\t\t$: $>Parse1 $1\n"
	"SParse1\n"
	"R$=L < @ $=w . >\t$#local $: @ $1\t\t\tspecial local names\n"
	"R$+ < @ $=w . >\t\t$#local $: $1\t\t\tregular local name\n"
	"R$+\t\t\t$#local $: $1\n"
	"Mlocal,\t\tP=/bin/cat, F=lsDFM, S=10, R=20, A=cat\n";

static const struct cf_options default_options = {
	.delivery_mode = CF_DELIVERY_QUEUEONLY,
	.milter_socket = "unix:/run/ondemand/milter.sock",
	.milter_timeouts = "S:10s;R:10s;E:5m",
	.socketmap = "unix:/run/ondemand/socketmap.sock",
	.socketmap_timeout = "10s",
};

static const struct cf_options no_hook_options = {
	.delivery_mode = CF_DELIVERY_QUEUEONLY,
	.milter_socket = "unix:/run/ondemand/milter.sock",
	.milter_timeouts = "S:10s;R:10s;E:5m",
};

static bool
starts_with(const char *text, const char *prefix)
{
	return strncmp(text, prefix, strlen(prefix)) == 0;
}

static void
parse(struct cf_doc *doc, const char *text)
{
	memset(doc, 0, sizeof(*doc));
	ck_assert(cf_doc_parse(doc, text, strlen(text)));
}

static char *
join(const struct cf_doc *doc)
{
	size_t len;
	char *text = cf_doc_join(doc, &len);

	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	return text;
}

/*
 * Patches input with options and returns the new text; fails the test when
 * the patch fails.
 */
static char *
patch_text(const char *input, const struct cf_options *options,
    struct cf_report *report)
{
	struct cf_doc doc, result = { 0 };
	char error[512] = "";
	enum cf_status status;
	char *text;

	parse(&doc, input);
	status = cf_update(&doc, options, &result, report, error,
	    sizeof(error));
	ck_assert_msg(status == CF_OK, "cf_update failed: %s", error);
	text = join(&result);
	cf_doc_free(&doc);
	cf_doc_free(&result);
	return text;
}

/* Returns the error message of a patch that must fail. */
static const char *
patch_error(const char *input, const struct cf_options *options)
{
	static char error[512];
	struct cf_report report = { { 0 }, { 0 } };
	struct cf_doc doc, result = { 0 };

	parse(&doc, input);
	error[0] = '\0';
	ck_assert_int_eq(cf_update(&doc, options, &result, &report, error,
	    sizeof(error)), CF_INVALID);
	cf_doc_free(&doc);
	cf_report_free(&report);
	return error;
}

static char *
revert_text(const char *input)
{
	struct cf_report report = { { 0 }, { 0 } };
	struct cf_doc doc;
	char error[512] = "";
	char *text;

	parse(&doc, input);
	ck_assert_msg(cf_revert(&doc, &report, error, sizeof(error)) == CF_OK,
	    "cf_revert failed: %s", error);
	text = join(&doc);
	cf_doc_free(&doc);
	cf_report_free(&report);
	return text;
}

/* Checks that input patches to expected, reverts to input and is stable. */
static void
assert_patch(const char *input, const struct cf_options *options,
    const char *expected)
{
	struct cf_report report = { { 0 }, { 0 } };
	char *patched = patch_text(input, options, &report), *again, *reverted;

	ck_assert_str_eq(patched, expected);
	cf_report_free(&report);
	again = patch_text(patched, options, &report);
	ck_assert_str_eq(again, patched);
	cf_report_free(&report);
	reverted = revert_text(patched);
	ck_assert_str_eq(reverted, input);
	free(patched);
	free(again);
	free(reverted);
}

START_TEST(doc_round_trip_keeps_bytes)
{
	static const char *const inputs[] = {
		"a\nb\n",
		"a\r\nb\r\n",
		"mixed\r\nends\nhere",
		"lone\rcarriage return\n",
		"\n\n\n",
		"trailing space  \n\t\n",
		"x",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct cf_doc doc;
		char *text;

		parse(&doc, inputs[i]);
		text = join(&doc);
		ck_assert_str_eq(text, inputs[i]);
		free(text);
		cf_doc_free(&doc);
	}
}
END_TEST

START_TEST(doc_line_endings_recorded)
{
	struct cf_doc doc;

	parse(&doc, "a\r\nb\nc");
	ck_assert_uint_eq(doc.count, 3);
	ck_assert_int_eq(doc.lines[0].eol, CF_EOL_CRLF);
	ck_assert_str_eq(doc.lines[0].text, "a");
	ck_assert_int_eq(doc.lines[1].eol, CF_EOL_LF);
	ck_assert_int_eq(doc.lines[2].eol, CF_EOL_NONE);
	ck_assert_int_eq(cf_doc_main_eol(&doc), CF_EOL_CRLF);
	cf_doc_free(&doc);
}
END_TEST

START_TEST(doc_continuation_lines)
{
	struct cf_doc doc;

	parse(&doc, "R$+\n\t\t$#local\n more\nS0\n\tnot first\n");
	ck_assert(!cf_doc_is_continuation(&doc, 0));
	ck_assert(cf_doc_is_continuation(&doc, 1));
	ck_assert(cf_doc_is_continuation(&doc, 2));
	ck_assert_uint_eq(cf_doc_logical_length(&doc, 0), 3);
	ck_assert_uint_eq(cf_doc_logical_length(&doc, 3), 2);
	cf_doc_free(&doc);
}
END_TEST

START_TEST(check_text_rejects_empty)
{
	char error[256];

	ck_assert_int_eq(cf_check_text("", 0, error, sizeof(error)),
	    CF_INVALID);
	ck_assert_str_eq(error, "the file is empty");
}
END_TEST

START_TEST(check_text_rejects_nul)
{
	char error[256];

	ck_assert_int_eq(cf_check_text("O x\n\0y", 6, error, sizeof(error)),
	    CF_INVALID);
	ck_assert_str_eq(error, "the file contains binary data (a NUL byte "
	    "at offset 4); a sendmail.cf is text");
}
END_TEST

START_TEST(check_text_rejects_control_bytes)
{
	char buf[200], error[256];

	memset(buf, '\x01', sizeof(buf));
	ck_assert_int_eq(cf_check_text(buf, sizeof(buf), error,
	    sizeof(error)), CF_INVALID);
	ck_assert_str_eq(error, "the file contains binary data (200 control "
	    "characters); a sendmail.cf is text");
	ck_assert_int_eq(cf_check_text(modern_cf, strlen(modern_cf), error,
	    sizeof(error)), CF_OK);
}
END_TEST

START_TEST(options_accept_socket_forms)
{
	static const char *const good[] = {
		"unix:/run/x.sock", "local:/run/x.sock", "/run/x.sock",
		"inet:8890@127.0.0.1", "inet6:8890@[::1]", "inet:1@localhost",
	};
	struct cf_options options = default_options;
	char error[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		options.milter_socket = good[i];
		options.socketmap = good[i];
		ck_assert_msg(cf_check_options(&options, error,
		    sizeof(error)) == CF_OK, "%s: %s", good[i], error);
	}
}
END_TEST

START_TEST(options_reject_bad_sockets)
{
	static const char *const bad[] = {
		"", "unix:relative", "inet:99999@host", "inet:@host",
		"inet:25", "tcp:25@host", "unix:/a b", "unix:/a,b",
	};
	struct cf_options options = default_options;
	char error[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		options.milter_socket = bad[i];
		ck_assert_msg(cf_check_options(&options, error,
		    sizeof(error)) == CF_INVALID, "accepted \"%s\"", bad[i]);
	}
	options.milter_socket = "tcp:25@host";
	cf_check_options(&options, error, sizeof(error));
	ck_assert_str_eq(error, "invalid milter socket \"tcp:25@host\": "
	    "expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST");
}
END_TEST

START_TEST(options_check_timeouts)
{
	struct cf_options options = default_options;
	char error[256];

	options.milter_timeouts = "C:30s;S:10s;R:1m;E:5m";
	ck_assert_int_eq(cf_check_options(&options, error, sizeof(error)),
	    CF_OK);
	options.milter_timeouts = "S:10x";
	ck_assert_int_eq(cf_check_options(&options, error, sizeof(error)),
	    CF_INVALID);
	options.milter_timeouts = "Q:10s";
	ck_assert_int_eq(cf_check_options(&options, error, sizeof(error)),
	    CF_INVALID);
	options.milter_timeouts = NULL;
	options.socketmap_timeout = "10 s";
	ck_assert_int_eq(cf_check_options(&options, error, sizeof(error)),
	    CF_INVALID);
	ck_assert_str_eq(error, "invalid socket map timeout \"10 s\": "
	    "expected a number with an optional unit s, m or h, such as 10s");
}
END_TEST

START_TEST(patch_modern_layout)
{
	const char *expected =
	    "V10/Berkeley\n"
	    "#ondemand-cf:was O DeliveryMode=background\n"
	    "O DeliveryMode=queueonly\n"
	    "Sparse=0\n"
	    "R$*\t\t\t$: $>Parse1 $1\n"
	    "SParse1\n"
	    "#ondemand-cf:off R$=L < @ $=w . >\t$#local $: @ $1\t\t\t"
	    "special local names\n"
	    "#ondemand-cf:off R$+ < @ $=w . >\t\t$#local $: $1\t\t\t"
	    "regular local name\n"
	    "R$+\t\t\t$#local $: $1\n"
	    "Mlocal,\t\tP=/bin/cat, F=lsDFM, S=10, R=20, A=cat\n"
	    BLOCK_BEGIN
	    "O InputMailFilters=ondemand\n"
	    FILTER_LINE
	    "#ondemand-cf:end\n";

	assert_patch(modern_cf, &no_hook_options, expected);
}
END_TEST

START_TEST(patch_adds_etrn_hook)
{
	struct cf_report report = { { 0 }, { 0 } };
	char *patched = patch_text(modern_cf, &default_options, &report);
	const char *hook = strstr(patched, MAP_LINE "Scheck_etrn\n");
	size_t at;

	ck_assert_ptr_nonnull(hook);
	at = (size_t)(hook - patched) + strlen(MAP_LINE "Scheck_etrn\n");
	for (size_t i = 0; cf_etrn_rules[i] != NULL; i++) {
		ck_assert_msg(strncmp(patched + at, cf_etrn_rules[i],
		    strlen(cf_etrn_rules[i])) == 0, "rule %zu missing", i);
		at += strlen(cf_etrn_rules[i]) + 1;
	}
	ck_assert_str_eq(patched + at, "#ondemand-cf:end\n");
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_old_layout_in_ruleset_0)
{
	const char *input =
	    "Odbackground\n"
	    "OL9\n"
	    "S0\n"
	    "R$+<@$=w>\t@$>90$1\tRemove local addresses\n"
	    "R < @ $=w > $- $+\t@$>90$3\tRemove local routes/UUCP\n"
	    "R$*<@$+>$*\t$#smtp$@$2$:$1<@$2>$3\n"
	    "S3\n"
	    "R$+<@$=w>\t$@ $1\tsame rule in another ruleset\n"
	    "Mlocal, P=/bin/cat, A=cat\n";
	const char *expected =
	    "#ondemand-cf:was Odbackground\n"
	    "Odqueueonly\n"
	    "OL9\n"
	    "S0\n"
	    "#ondemand-cf:off R$+<@$=w>\t@$>90$1\tRemove local addresses\n"
	    "#ondemand-cf:off R < @ $=w > $- $+\t@$>90$3\t"
	    "Remove local routes/UUCP\n"
	    "R$*<@$+>$*\t$#smtp$@$2$:$1<@$2>$3\n"
	    "S3\n"
	    "R$+<@$=w>\t$@ $1\tsame rule in another ruleset\n"
	    "Mlocal, P=/bin/cat, A=cat\n"
	    BLOCK_BEGIN
	    "O InputMailFilters=ondemand\n"
	    FILTER_LINE
	    "#ondemand-cf:end\n";

	assert_patch(input, &no_hook_options, expected);
}
END_TEST

START_TEST(patch_keeps_matching_delivery_mode)
{
	struct cf_options deferred = no_hook_options;
	struct cf_report report = { { 0 }, { 0 } };
	char *patched;

	/* sendmail reads only the first letter of the mode. */
	patched = patch_text("Odq\nS0\nSParse1\nMlocal, A=x\n", &no_hook_options,
	    &report);
	ck_assert(starts_with(patched, "Odq\nS0\n"));
	ck_assert_ptr_null(strstr(patched, "DeliveryMode"));
	ck_assert_ptr_null(strstr(patched, "was"));
	free(patched);
	cf_report_free(&report);

	deferred.delivery_mode = CF_DELIVERY_DEFERRED;
	patched = patch_text("O DeliveryMode = Deferred\nS0\nSParse1\n"
	    "Mlocal, A=x\n",
	    &deferred, &report);
	ck_assert(starts_with(patched, "O DeliveryMode = Deferred\n"));
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_every_delivery_mode_line)
{
	struct cf_options deferred = no_hook_options;
	struct cf_report report = { { 0 }, { 0 } };
	char *patched;

	deferred.delivery_mode = CF_DELIVERY_DEFERRED;
	patched = patch_text("O DeliveryMode = interactive\n"
	    "Odbackground\nS0\nSParse1\nMlocal, A=x\n", &deferred, &report);
	ck_assert(starts_with(patched,
	    "#ondemand-cf:was O DeliveryMode = interactive\n"
	    "O DeliveryMode = deferred\n"
	    "#ondemand-cf:was Odbackground\n"
	    "Oddeferred\n"));
	ck_assert_uint_eq(report.changes.count, 4);
	ck_assert_str_eq(report.changes.items[0], "line 1: DeliveryMode set "
	    "to deferred (was \"interactive\")");
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_adds_missing_delivery_mode)
{
	struct cf_report report = { { 0 }, { 0 } };
	char *patched;

	patched = patch_text("O QueueDirectory=/q\nS0\nSParse1\nMlocal, A=x\n",
	    &no_hook_options, &report);
	ck_assert_ptr_nonnull(strstr(patched, BLOCK_BEGIN
	    "O DeliveryMode=queueonly\n"));
	free(patched);
	cf_report_free(&report);

	/* A file with only one-letter options gets the one-letter form. */
	patched = patch_text("OQ/q\nS0\nSParse1\nMlocal, A=x\n", &no_hook_options,
	    &report);
	ck_assert_ptr_nonnull(strstr(patched, BLOCK_BEGIN "Odqueueonly\n"));
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_keep_delivery_mode)
{
	struct cf_options keep = no_hook_options;
	struct cf_report report = { { 0 }, { 0 } };
	char *patched;

	keep.delivery_mode = CF_DELIVERY_KEEP;
	patched = patch_text(modern_cf, &keep, &report);
	ck_assert_ptr_nonnull(strstr(patched, "\nO DeliveryMode=background\n"));
	ck_assert_ptr_null(strstr(patched, "queueonly"));
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_appends_to_input_filters)
{
	static const struct {
		const char *line;
		const char *expected;
	} cases[] = {
		{ "O InputMailFilters=a, b", "O InputMailFilters=a, b, ondemand" },
		{ "O InputMailFilters=a,b", "O InputMailFilters=a,b,ondemand" },
		{ "O InputMailFilters=spam", "O InputMailFilters=spam, ondemand" },
		{ "O InputMailFilters=", "O InputMailFilters=ondemand" },
		{ "O InputMailFilters=a  ", "O InputMailFilters=a, ondemand" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cf_report report = { { 0 }, { 0 } };
		char input[256], expected[512], *patched;

		snprintf(input, sizeof(input), "%s\nS0\nSParse1\nMlocal, A=x\n",
		    cases[i].line);
		snprintf(expected, sizeof(expected), "#ondemand-cf:was %s\n"
		    "%s\n", cases[i].line, cases[i].expected);
		patched = patch_text(input, &no_hook_options, &report);
		ck_assert_msg(starts_with(patched, expected),
		    "for \"%s\" got:\n%s", cases[i].line, patched);
		ck_assert_ptr_null(strstr(patched,
		    BLOCK_BEGIN "O InputMailFilters"));
		free(patched);
		cf_report_free(&report);
	}
}
END_TEST

START_TEST(patch_leaves_listed_filter)
{
	struct cf_report report = { { 0 }, { 0 } };
	const char *input = "O InputMailFilters=a, ondemand\nOdq\nS0\nSParse1\n"
	    FILTER_LINE "Mlocal, A=x\n";
	char *patched = patch_text(input, &no_hook_options, &report);

	ck_assert_str_eq(patched, input);
	ck_assert_uint_eq(report.changes.count, 0);
	ck_assert_uint_eq(report.warnings.count, 1);
	ck_assert_str_eq(report.warnings.items[0], "found none of the rules "
	    "that deliver $=w domains locally in ruleset 0 or Parse1; nothing "
	    "was commented out");
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_replaces_other_filter_socket)
{
	struct cf_report report = { { 0 }, { 0 } };
	const char *input = "O InputMailFilters=ondemand\nOdq\nS0\nSParse1\n"
	    "Xondemand, S=unix:/old.sock\nMlocal, A=x\n";
	char *patched = patch_text(input, &no_hook_options, &report);

	ck_assert_str_eq(patched, "O InputMailFilters=ondemand\nOdq\nS0\nSParse1\n"
	    "#ondemand-cf:was Xondemand, S=unix:/old.sock\n" FILTER_LINE
	    "Mlocal, A=x\n");
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_rejects_foreign_map_name)
{
	const char *error = patch_error("Kondemand hash /etc/mail/x\nS0\nSParse1\n"
	    "Mlocal, A=x\n", &default_options);

	ck_assert_str_eq(error, "line 1: the file already defines a map named "
	    "\"ondemand\" of class \"hash\", and ondemand-cf needs that name "
	    "for its socket map: rename that map (and its uses) first");
}
END_TEST

START_TEST(patch_integrates_existing_check_etrn)
{
	struct cf_report report = { { 0 }, { 0 } };
	const char *input = "Odq\nS0\nSParse1\nScheck_etrn\nR$*\t$@ OK\n"
	    "Mlocal, A=x";
	char *patched = patch_text(input, &default_options, &report);
	const char *rules = strstr(patched, "Scheck_etrn\n" BLOCK_BEGIN);
	const char *site = strstr(patched, "#ondemand-cf:end\nR$*\t$@ OK\n");

	ck_assert_ptr_nonnull(rules);
	ck_assert_ptr_nonnull(site);
	ck_assert_ptr_nonnull(strstr(rules, cf_etrn_rules[0]));
	ck_assert_ptr_null(strstr(patched, "\nScheck_etrn\n" MAP_LINE));
	ck_assert_uint_eq((size_t)(strstr(patched, "Scheck_etrn") - patched),
	    (size_t)(rules - patched));
	/* The file had no final line ending, and its block keeps it so. */
	ck_assert(strlen(patched) > 16 && strcmp(patched + strlen(patched) -
	    17, "\n#ondemand-cf:end") == 0);
	free(patched);
	cf_report_free(&report);
	patched = patch_text(input, &default_options, &report);
	{
		char *reverted = revert_text(patched);

		ck_assert_str_eq(reverted, input);
		free(reverted);
	}
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_leaves_hooked_check_etrn)
{
	struct cf_report report = { { 0 }, { 0 } };
	const char *input = "Odq\nO InputMailFilters=ondemand\nS0\nSParse1\n"
	    MAP_LINE "Scheck_etrn\n"
	    "R$*\t$: $1 $| $(ondemand $1 / $&{client_addr} $: <NOTFOUND> $)\n"
	    FILTER_LINE "Mlocal, A=x\n";
	char *patched = patch_text(input, &default_options, &report);

	ck_assert_str_eq(patched, input);
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_comments_continued_rule)
{
	struct cf_report report = { { 0 }, { 0 } };
	const char *input = "Odq\nSParse1\nR$+ < @ $=w . >\n\t\t$#local $: $1"
	    "\nS0\nMlocal, A=x\n";
	char *patched = patch_text(input, &no_hook_options, &report);

	ck_assert(starts_with(patched, "Odq\nSParse1\n"
	    "#ondemand-cf:off R$+ < @ $=w . >\n"
	    "#ondemand-cf:off \t\t$#local $: $1\nS0\n"));
	ck_assert_str_eq(report.changes.items[0], "line 3: commented out the "
	    "local-address rule \"R$+ < @ $=w . >\"");
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_keeps_crlf)
{
	struct cf_report report = { { 0 }, { 0 } };
	const char *input = "O DeliveryMode=b \r\nS0\r\nR$+<@$=w>\t$@ x  \r\n"
	    "Mlocal, A=x\r\n";
	char *patched = patch_text(input, &no_hook_options, &report);

	ck_assert_str_eq(patched, "#ondemand-cf:was O DeliveryMode=b \r\n"
	    "O DeliveryMode=queueonly\r\nS0\r\n"
	    "#ondemand-cf:off R$+<@$=w>\t$@ x  \r\nMlocal, A=x\r\n"
	    "#ondemand-cf:begin lines added by ondemand-cf; \"ondemand-cf "
	    "--revert\" removes them\r\nO InputMailFilters=ondemand\r\n"
	    "Xondemand, S=unix:/run/ondemand/milter.sock, F=T, "
	    "T=S:10s;R:10s;E:5m\r\n#ondemand-cf:end\r\n");
	free(patched);
	cf_report_free(&report);
}
END_TEST

START_TEST(patch_last_line_without_ending)
{
	/* The replaced DeliveryMode line is the last line and has no ending. */
	const char *input = "S0\nSParse1\nMlocal, A=x\nO DeliveryMode=b";
	const char *expected = "S0\nSParse1\nMlocal, A=x\n"
	    "#ondemand-cf:was O DeliveryMode=b\n"
	    "O DeliveryMode=queueonly\n"
	    BLOCK_BEGIN
	    "O InputMailFilters=ondemand\n"
	    FILTER_LINE
	    "#ondemand-cf:end";

	assert_patch(input, &no_hook_options, expected);
}
END_TEST

START_TEST(patch_last_line_ending_in_cr)
{
	/*
	 * Found by fuzz-cf: a last line "Mlocal,\r" without a newline got a
	 * plain LF, which reads back as a CR LF ending, so the CR was lost.
	 */
	const char *input = "S0\nR$+<@$=w>\nMlocal,\r";
	const char *expected = "S0\n#ondemand-cf:off R$+<@$=w>\n"
	    "Mlocal,\r\r\n"
	    BLOCK_BEGIN
	    "O DeliveryMode=queueonly\n"
	    "O InputMailFilters=ondemand\n"
	    FILTER_LINE
	    "#ondemand-cf:end";

	assert_patch(input, &no_hook_options, expected);
	/*
	 * The replaced line is the last one here.  Its replacement takes the
	 * CR LF ending that the block after it gave the old line.
	 */
	assert_patch("S0\nSParse1\nMlocal, A=x\nO DeliveryMode=b\r",
	    &no_hook_options, "S0\nSParse1\nMlocal, A=x\n"
	    "#ondemand-cf:was O DeliveryMode=b\r\r\n"
	    "O DeliveryMode=queueonly\r\n"
	    BLOCK_BEGIN
	    "O InputMailFilters=ondemand\n"
	    FILTER_LINE
	    "#ondemand-cf:end");
}
END_TEST

START_TEST(patch_rejects_structure_errors)
{
	ck_assert_str_eq(patch_error("O DeliveryMode=b\nMlocal, A=x\n",
	    &default_options), "there is no ruleset 0 (an \"S0\" or "
	    "\"Sparse=0\" line), so this is not a complete sendmail.cf: check "
	    "the file name, or rebuild the file from its .mc file");
	ck_assert_str_eq(patch_error("Sparse=0\nR$*\t$: $>Parse1 $1\n"
	    "Mlocal, A=x\n", &default_options), "ruleset 0 has no "
	    "local-address rules and there is no ruleset Parse1 (an "
	    "\"SParse1\" line), where sendmail 8.7 and later keep them; the "
	    "file is incomplete or truncated: rebuild it or restore it from a "
	    "backup");
	ck_assert_str_eq(patch_error("S0\nR$+<@$=w>\t$@ x\nMsmtp, A=x\n",
	    &default_options), "there is no local mailer (an \"Mlocal\" "
	    "line), which sendmail requires; the file is incomplete or "
	    "truncated: rebuild it or restore it from a backup");
	ck_assert_str_eq(patch_error("S0\nMlocal, A=x\n[section]\n",
	    &default_options), "line 3: \"[section]\" is not a sendmail.cf "
	    "line (each line starts with one of the commands C D E F H K M O "
	    "P Q R S T V X, with # for a comment, or with white space to "
	    "continue a line); check that this is the sendmail.cf file");
}
END_TEST

START_TEST(patch_adds_equals_to_empty_filters)
{
	/* A valueless "O InputMailFilters" needs "=" before the filter. */
	const char *input = "S0\nSParse1\nO InputMailFilters\nMlocal, A=x\n";
	const char *expected = "S0\nSParse1\n"
	    "#ondemand-cf:was O InputMailFilters\n"
	    "O InputMailFilters=ondemand\n"
	    "Mlocal, A=x\n"
	    BLOCK_BEGIN
	    "O DeliveryMode=queueonly\n"
	    FILTER_LINE
	    "#ondemand-cf:end\n";

	assert_patch(input, &no_hook_options, expected);
}
END_TEST

START_TEST(revert_drops_empty_last_line)
{
	/*
	 * Found by fuzz-cf: "#ondemand-cf:off " as the last line without a
	 * newline restored a line of no octets, which the file does not have
	 * when it is read back.
	 */
	struct cf_report report = { { 0 }, { 0 } };
	struct cf_doc doc;
	char error[512] = "";
	char *text;

	parse(&doc, "S0\nMlocal\n#ondemand-cf:off ");
	ck_assert_int_eq(cf_revert(&doc, &report, error, sizeof(error)),
	    CF_OK);
	ck_assert_uint_eq(doc.count, 2);
	text = join(&doc);
	ck_assert_str_eq(text, "S0\nMlocal\n");
	free(text);
	cf_doc_free(&doc);
	cf_report_free(&report);
}
END_TEST

START_TEST(revert_rejects_damaged_markers)
{
	static const struct {
		const char *input;
		const char *error;
	} cases[] = {
		{ "S0\n#ondemand-cf:was O DeliveryMode=b\n",
		  "line 2: the \"#ondemand-cf:was \" marker is not followed by "
		  "the line that replaced it; the file was edited after "
		  "ondemand-cf changed it: restore the line by hand or from "
		  "the backup" },
		{ "S0\n#ondemand-cf:begin added\nXondemand, S=x\n",
		  "line 2: the block of added lines has no \"#ondemand-cf:end\" "
		  "line; the file was edited after ondemand-cf changed it: "
		  "remove the block by hand or restore the backup" },
		{ "S0\n#ondemand-cf:end\n",
		  "line 2: unknown or misplaced ondemand-cf marker "
		  "\"#ondemand-cf:end\": the file was edited after ondemand-cf "
		  "changed it; fix the line by hand or restore the backup" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cf_report report = { { 0 }, { 0 } };
		struct cf_doc doc;
		char error[512] = "";

		parse(&doc, cases[i].input);
		ck_assert_int_eq(cf_revert(&doc, &report, error,
		    sizeof(error)), CF_INVALID);
		ck_assert_str_eq(error, cases[i].error);
		cf_doc_free(&doc);
		cf_report_free(&report);
	}
}
END_TEST

START_TEST(update_changes_options_of_patched_file)
{
	struct cf_options other = default_options;
	struct cf_report report = { { 0 }, { 0 } };
	char *first = patch_text(modern_cf, &default_options, &report);
	char *second, *direct;

	cf_report_free(&report);
	other.milter_socket = "inet:8890@127.0.0.1";
	other.delivery_mode = CF_DELIVERY_DEFERRED;
	second = patch_text(first, &other, &report);
	cf_report_free(&report);
	direct = patch_text(modern_cf, &other, &report);
	ck_assert_str_eq(second, direct);
	free(first);
	free(second);
	free(direct);
	cf_report_free(&report);
}
END_TEST

/* A small deterministic generator for the round-trip property below. */
static unsigned long rng_state;

static unsigned
next_random(void)
{
	rng_state = rng_state * 6364136223846793005UL + 1442695040888963407UL;
	return (unsigned)(rng_state >> 33);
}

START_TEST(update_round_trips_random_files)
{
	static const char *const pieces[] = {
		"S0", "Sparse=0", "SParse1", "Scheck_etrn", "S3",
		"R$+<@$=w>\t@$>90$1", "R$=L < @ $=w . >\t$#local $: @ $1",
		"R$+ < @ $=w . >", "\t\t$#local $: $1", "R$*\t$@ OK",
		"O DeliveryMode=background", "Odi", "Odq", "O DeliveryMode=",
		"O InputMailFilters=a", "O InputMailFilters=a, ondemand",
		"Xondemand, S=unix:/x", "Kondemand socket unix:/y",
		"Mlocal, P=/bin/cat, A=cat", "# comment  ", "", "V10",
		"R$*\t$: $1 $| $(ondemand $1 $) ", "Cwlocalhost",
	};
	static const struct cf_options *const option_sets[] = {
		&default_options, &no_hook_options,
	};
	const size_t piece_count = sizeof(pieces) / sizeof(pieces[0]);
	int patched_count = 0;

	rng_state = 1;
	for (int round = 0; round < 2000; round++) {
		/* Most files get the lines that the structure check requires. */
		char input[4096] = "";
		size_t len = round % 8 == 0 ? 0 : (size_t)snprintf(input,
		    sizeof(input), "Mlocal, A=cat\nS0\n%s",
		    round % 3 == 0 ? "SParse1\r\n" : "");
		int lines = 1 + (int)(next_random() % 14);
		const struct cf_options *options = option_sets[round % 2];
		struct cf_report report = { { 0 }, { 0 } };
		struct cf_doc doc, result = { 0 };
		char error[512];

		for (int i = 0; i < lines; i++) {
			const char *piece = pieces[next_random() % piece_count];
			unsigned ending = next_random() % 4;
			bool last = i == lines - 1;

			len += (size_t)snprintf(input + len, sizeof(input) - len,
			    "%s%s", piece, last && ending == 0 ? "" :
			    ending == 1 ? "\r\n" : "\n");
		}
		parse(&doc, input);
		if (cf_update(&doc, options, &result, &report, error,
		    sizeof(error)) == CF_OK) {
			char *patched = join(&result), *again, *reverted;
			struct cf_report ignored = { { 0 }, { 0 } };

			patched_count++;
			again = patch_text(patched, options, &ignored);
			ck_assert_msg(strcmp(again, patched) == 0,
			    "not stable for:\n%s", input);
			reverted = revert_text(patched);
			ck_assert_msg(strcmp(reverted, input) == 0,
			    "revert differs for:\n%s\npatched:\n%s", input,
			    patched);
			free(patched);
			free(again);
			free(reverted);
			cf_report_free(&ignored);
			cf_doc_free(&result);
		}
		cf_doc_free(&doc);
		cf_report_free(&report);
	}
	/* Some random files are rejected; most must get through. */
	ck_assert_int_gt(patched_count, 1000);
}
END_TEST

/* Runs cf_diff_write on two texts and returns what it wrote. */
static char *
diff_text(const char *old_text, const char *new_text)
{
	struct cf_doc old, new;
	char *buf = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&buf, &size);

	ck_assert_ptr_nonnull(out);
	parse(&old, old_text);
	parse(&new, new_text);
	ck_assert(cf_diff_write(out, &old, &new, "a", "b", 3));
	fclose(out);
	cf_doc_free(&old);
	cf_doc_free(&new);
	return buf;
}

START_TEST(diff_equal_is_empty)
{
	char *diff = diff_text("a\nb\n", "a\nb\n");

	ck_assert_str_eq(diff, "");
	free(diff);
}
END_TEST

START_TEST(diff_single_change_with_context)
{
	char *diff = diff_text("1\n2\n3\n4\n5\n6\n7\n8\n9\n",
	    "1\n2\n3\n4\nfive\n6\n7\n8\n9\n");

	ck_assert_str_eq(diff, "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n"
	    "+five\n 6\n 7\n 8\n");
	free(diff);
}
END_TEST

START_TEST(diff_separate_and_merged_hunks)
{
	char *diff = diff_text("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n",
	    "A\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nL\n");

	ck_assert_str_eq(diff, "--- a\n+++ b\n@@ -1,4 +1,4 @@\n-a\n+A\n b\n c\n"
	    " d\n@@ -9,4 +9,4 @@\n i\n j\n k\n-l\n+L\n");
	free(diff);
	diff = diff_text("a\nb\nc\nd\ne\nf\ng\nh\n", "A\nb\nc\nd\ne\nf\ng\nH\n");
	ck_assert_str_eq(diff, "--- a\n+++ b\n@@ -1,8 +1,8 @@\n-a\n+A\n b\n c\n"
	    " d\n e\n f\n g\n-h\n+H\n");
	free(diff);
}
END_TEST

START_TEST(diff_insertions_and_missing_newline)
{
	char *diff = diff_text("x\ny", "x\ny\nz\n");

	ck_assert_str_eq(diff, "--- a\n+++ b\n@@ -1,2 +1,3 @@\n x\n-y\n"
	    "\\ No newline at end of file\n+y\n+z\n");
	free(diff);
	diff = diff_text("", "new\n");
	ck_assert_str_eq(diff, "--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n");
	free(diff);
}
END_TEST

START_TEST(diff_shows_line_ending_change)
{
	char *diff = diff_text("a\r\n", "a\n");

	ck_assert_str_eq(diff, "--- a\n+++ b\n@@ -1 +1 @@\n-a\r\n+a\n");
	free(diff);
}
END_TEST

static Suite *
cfedit_suite(void)
{
	Suite *suite = suite_create("cfedit");
	TCase *doc = tcase_create("doc");
	TCase *options = tcase_create("options");
	TCase *patch = tcase_create("patch");
	TCase *diff = tcase_create("diff");

	tcase_add_test(doc, doc_round_trip_keeps_bytes);
	tcase_add_test(doc, doc_line_endings_recorded);
	tcase_add_test(doc, doc_continuation_lines);
	tcase_add_test(doc, check_text_rejects_empty);
	tcase_add_test(doc, check_text_rejects_nul);
	tcase_add_test(doc, check_text_rejects_control_bytes);
	suite_add_tcase(suite, doc);

	tcase_add_test(options, options_accept_socket_forms);
	tcase_add_test(options, options_reject_bad_sockets);
	tcase_add_test(options, options_check_timeouts);
	suite_add_tcase(suite, options);

	tcase_add_test(patch, patch_modern_layout);
	tcase_add_test(patch, patch_adds_etrn_hook);
	tcase_add_test(patch, patch_old_layout_in_ruleset_0);
	tcase_add_test(patch, patch_keeps_matching_delivery_mode);
	tcase_add_test(patch, patch_every_delivery_mode_line);
	tcase_add_test(patch, patch_adds_missing_delivery_mode);
	tcase_add_test(patch, patch_keep_delivery_mode);
	tcase_add_test(patch, patch_appends_to_input_filters);
	tcase_add_test(patch, patch_leaves_listed_filter);
	tcase_add_test(patch, patch_replaces_other_filter_socket);
	tcase_add_test(patch, patch_rejects_foreign_map_name);
	tcase_add_test(patch, patch_integrates_existing_check_etrn);
	tcase_add_test(patch, patch_leaves_hooked_check_etrn);
	tcase_add_test(patch, patch_comments_continued_rule);
	tcase_add_test(patch, patch_keeps_crlf);
	tcase_add_test(patch, patch_last_line_without_ending);
	tcase_add_test(patch, patch_last_line_ending_in_cr);
	tcase_add_test(patch, patch_rejects_structure_errors);
	tcase_add_test(patch, patch_adds_equals_to_empty_filters);
	tcase_add_test(patch, revert_drops_empty_last_line);
	tcase_add_test(patch, revert_rejects_damaged_markers);
	tcase_add_test(patch, update_changes_options_of_patched_file);
	tcase_add_test(patch, update_round_trips_random_files);
	tcase_set_timeout(patch, 60);
	suite_add_tcase(suite, patch);

	tcase_add_test(diff, diff_equal_is_empty);
	tcase_add_test(diff, diff_single_change_with_context);
	tcase_add_test(diff, diff_separate_and_merged_hunks);
	tcase_add_test(diff, diff_insertions_and_missing_newline);
	tcase_add_test(diff, diff_shows_line_ending_change);
	suite_add_tcase(suite, diff);
	return suite;
}

int
main(void)
{
	SRunner *runner = srunner_create(cfedit_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
