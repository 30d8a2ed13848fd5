/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of contrib/smtp_reply.c (the SMTP reply parser) and
 * contrib/etrn.c (ETRN arguments, reply classification, escaping).
 */

#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "etrn.h"
#include "smtp_reply.h"

/* Feeds all of input at once and stores the octets used in *consumed. */
static enum smtp_reply_status
feed_all(struct smtp_reply_parser *parser, const char *input, size_t length,
    size_t *consumed)
{
	return smtp_reply_parser_feed(parser, input, length, consumed);
}

/* Feeds input one octet at a time until the parser stops needing more. */
static enum smtp_reply_status
feed_octets(struct smtp_reply_parser *parser, const char *input,
    size_t length, size_t *consumed_total)
{
	enum smtp_reply_status status = SMTP_REPLY_INCOMPLETE;
	size_t i;

	*consumed_total = 0;
	for (i = 0; i < length; i++) {
		size_t consumed;

		status = smtp_reply_parser_feed(parser, input + i, 1,
		    &consumed);
		*consumed_total += consumed;
		if (status != SMTP_REPLY_INCOMPLETE)
			break;
	}
	return status;
}

/* Returns a string of length octets: prefix followed by filler. */
static char *
make_line(const char *prefix, char filler, size_t length, const char *end)
{
	size_t prefix_length = strlen(prefix);
	size_t end_length = strlen(end);
	char *line = malloc(length + end_length + 1);

	ck_assert_ptr_nonnull(line);
	memcpy(line, prefix, prefix_length);
	memset(line + prefix_length, filler, length - prefix_length);
	memcpy(line + length, end, end_length + 1);
	return line;
}

/* Parser: well-formed replies. */

START_TEST(reply_single_line)
{
	struct smtp_reply_parser parser;
	const char input[] = "250 OK\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(consumed, strlen(input));
	ck_assert_int_eq(parser.reply.code, 250);
	ck_assert_str_eq(parser.reply.enhanced, "");
	ck_assert_str_eq(parser.reply.text, "OK");
	ck_assert_uint_eq(parser.reply.line_count, 1);
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_enhanced_code_split_off)
{
	struct smtp_reply_parser parser;
	const char input[] = "250 2.0.0 Queuing for node example.test started"
	    "\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_str_eq(parser.reply.enhanced, "2.0.0");
	ck_assert_str_eq(parser.reply.text,
	    "Queuing for node example.test started");
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_enhanced_code_alone)
{
	struct smtp_reply_parser parser;
	const char input[] = "459 5.7.1\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_str_eq(parser.reply.enhanced, "5.7.1");
	ck_assert_str_eq(parser.reply.text, "");
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_enhanced_code_spaces_removed)
{
	struct smtp_reply_parser parser;
	const char input[] = "250 2.0.0   Queuing started\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_str_eq(parser.reply.enhanced, "2.0.0");
	ck_assert_str_eq(parser.reply.text, "Queuing started");
	smtp_reply_parser_reset(&parser);
}
END_TEST

/* Text that only looks like an enhanced code stays part of the text. */
static const struct {
	const char *input;
	const char *text;
} not_enhanced[] = {
	{ "250 3.0.0 class 3 does not exist\r\n",
	    "3.0.0 class 3 does not exist" },
	{ "250 2.1000.0 subject has four digits\r\n",
	    "2.1000.0 subject has four digits" },
	{ "250 2.0.0x no space after the code\r\n",
	    "2.0.0x no space after the code" },
	{ "250 2.0 only two parts\r\n", "2.0 only two parts" },
	{ "250 2..0 empty subject\r\n", "2..0 empty subject" },
};

START_TEST(reply_enhanced_code_rejected)
{
	struct smtp_reply_parser parser;
	const char *input = not_enhanced[_i].input;
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_str_eq(parser.reply.enhanced, "");
	ck_assert_str_eq(parser.reply.text, not_enhanced[_i].text);
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_multi_line)
{
	struct smtp_reply_parser parser;
	const char input[] = "250-mx.example.test Hello\r\n"
	    "250-SIZE 10485760\r\n"
	    "250-etrn\r\n"
	    "250 HELP\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(consumed, strlen(input));
	ck_assert_int_eq(parser.reply.code, 250);
	ck_assert_uint_eq(parser.reply.line_count, 4);
	ck_assert_str_eq(parser.reply.text,
	    "mx.example.test Hello\nSIZE 10485760\netrn\nHELP");
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_bare_code_lines)
{
	struct smtp_reply_parser parser;
	const char input[] = "250-\r\n250\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(parser.reply.line_count, 2);
	ck_assert_str_eq(parser.reply.text, "\n");
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_bare_lf_accepted)
{
	struct smtp_reply_parser parser;
	const char input[] = "220-first\n220 second\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_int_eq(parser.reply.code, 220);
	ck_assert_str_eq(parser.reply.text, "first\nsecond");
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_incomplete_needs_more)
{
	struct smtp_reply_parser parser;
	const char first[] = "250-first line\r\n250 sec";
	const char second[] = "ond line\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, first, strlen(first), &consumed),
	    SMTP_REPLY_INCOMPLETE);
	ck_assert_uint_eq(consumed, strlen(first));
	ck_assert_int_eq(feed_all(&parser, second, strlen(second), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_str_eq(parser.reply.text, "first line\nsecond line");
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_stops_at_reply_end)
{
	struct smtp_reply_parser parser;
	const char input[] = "250 first\r\n251 second\r\n";
	size_t consumed, rest_consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(consumed, strlen("250 first\r\n"));
	ck_assert_int_eq(parser.reply.code, 250);

	smtp_reply_parser_reset(&parser);
	ck_assert_int_eq(feed_all(&parser, input + consumed,
	    strlen(input) - consumed, &rest_consumed), SMTP_REPLY_COMPLETE);
	ck_assert_int_eq(parser.reply.code, 251);
	ck_assert_str_eq(parser.reply.text, "second");
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_complete_is_sticky)
{
	struct smtp_reply_parser parser;
	const char input[] = "250 OK\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(consumed, 0);
	smtp_reply_parser_reset(&parser);
}
END_TEST

/* Inputs whose result must not depend on how they are split. */
static const char *const split_inputs[] = {
	"250 2.0.0 Queuing for node example.test started\r\n",
	"250-mx.example.test\r\n250-ETRN\r\n250 2.0.0 HELP\r\n",
	"220-a\n220 b\n",
	"253 OK, 17 pending messages for node example.test started\r\n",
	"hello world\r\n",
	"250-a\r\n251 b\r\n",
};

START_TEST(reply_split_gives_same_result)
{
	struct smtp_reply_parser whole, split;
	const char *input = split_inputs[_i];
	size_t whole_consumed, split_consumed;
	enum smtp_reply_status whole_status, split_status;

	smtp_reply_parser_init(&whole);
	smtp_reply_parser_init(&split);
	whole_status = feed_all(&whole, input, strlen(input), &whole_consumed);
	split_status = feed_octets(&split, input, strlen(input),
	    &split_consumed);

	ck_assert_int_eq(split_status, whole_status);
	ck_assert_uint_eq(split_consumed, whole_consumed);
	if (whole_status == SMTP_REPLY_COMPLETE) {
		ck_assert_int_eq(split.reply.code, whole.reply.code);
		ck_assert_str_eq(split.reply.enhanced, whole.reply.enhanced);
		ck_assert_str_eq(split.reply.text, whole.reply.text);
		ck_assert_uint_eq(split.reply.line_count,
		    whole.reply.line_count);
	}
	smtp_reply_parser_reset(&whole);
	smtp_reply_parser_reset(&split);
}
END_TEST

static void
count_line(const char *line, size_t length, void *context)
{
	size_t *total = context;

	(void)line;
	*total += length;
}

START_TEST(reply_line_callback_sees_lines)
{
	struct smtp_reply_parser parser;
	const char input[] = "250-abc\r\n250 de\r\n";
	size_t consumed, total = 0;

	smtp_reply_parser_init(&parser);
	parser.on_line = count_line;
	parser.on_line_context = &total;
	ck_assert_int_eq(feed_all(&parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(total, strlen("250-abc") + strlen("250 de"));

	smtp_reply_parser_reset(&parser);
	ck_assert_ptr_eq(parser.on_line, count_line);
	ck_assert_ptr_eq(parser.on_line_context, &total);
	smtp_reply_parser_reset(&parser);
}
END_TEST

/* Parser: errors. */

static const struct {
	const char *input;
	size_t length;
	enum smtp_reply_status status;
} bad_replies[] = {
	{ "hello world\r\n", 13, SMTP_REPLY_ERR_SYNTAX },
	{ "25\r\n", 4, SMTP_REPLY_ERR_SYNTAX },
	{ "\r\n", 2, SMTP_REPLY_ERR_SYNTAX },
	{ "150 first digit below 2\r\n", 25, SMTP_REPLY_ERR_SYNTAX },
	{ "650 first digit above 5\r\n", 25, SMTP_REPLY_ERR_SYNTAX },
	{ "260 second digit above 5\r\n", 26, SMTP_REPLY_ERR_SYNTAX },
	{ "25x letter\r\n", 12, SMTP_REPLY_ERR_SYNTAX },
	{ "250x no separator\r\n", 19, SMTP_REPLY_ERR_SYNTAX },
	{ "250-first\r\n251 second\r\n", 23, SMTP_REPLY_ERR_CODE_MISMATCH },
	{ "250-first\r\nxyz\r\n", 16, SMTP_REPLY_ERR_SYNTAX },
	{ "250 a\0b\r\n", 9, SMTP_REPLY_ERR_NUL },
};

START_TEST(reply_invalid_rejected)
{
	struct smtp_reply_parser parser;
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, bad_replies[_i].input,
	    bad_replies[_i].length, &consumed), bad_replies[_i].status);
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_error_is_sticky)
{
	struct smtp_reply_parser parser;
	const char bad[] = "hello\r\n";
	const char good[] = "250 OK\r\n";
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, bad, strlen(bad), &consumed),
	    SMTP_REPLY_ERR_SYNTAX);
	ck_assert_uint_eq(parser.line_length, strlen("hello"));
	ck_assert_int_eq(feed_all(&parser, good, strlen(good), &consumed),
	    SMTP_REPLY_ERR_SYNTAX);
	ck_assert_uint_eq(consumed, 0);

	smtp_reply_parser_reset(&parser);
	ck_assert_int_eq(feed_all(&parser, good, strlen(good), &consumed),
	    SMTP_REPLY_COMPLETE);
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(reply_line_at_limit_accepted)
{
	struct smtp_reply_parser parser;
	char *line = make_line("250 ", 'a', SMTP_REPLY_LINE_MAX, "\r\n");
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, line, strlen(line), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(parser.reply.text_length, SMTP_REPLY_LINE_MAX - 4);
	smtp_reply_parser_reset(&parser);
	free(line);
}
END_TEST

START_TEST(reply_line_over_limit_rejected)
{
	struct smtp_reply_parser parser;
	char *line = make_line("250 ", 'a', SMTP_REPLY_LINE_MAX + 1, "\r\n");
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, line, strlen(line), &consumed),
	    SMTP_REPLY_ERR_LINE_TOO_LONG);
	smtp_reply_parser_reset(&parser);
	free(line);
}
END_TEST

START_TEST(reply_line_over_limit_bare_lf_rejected)
{
	struct smtp_reply_parser parser;
	char *line = make_line("250 ", 'a', SMTP_REPLY_LINE_MAX + 1, "\n");
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, line, strlen(line), &consumed),
	    SMTP_REPLY_ERR_LINE_TOO_LONG);
	smtp_reply_parser_reset(&parser);
	free(line);
}
END_TEST

START_TEST(reply_unterminated_line_stops)
{
	struct smtp_reply_parser parser;
	char *line = make_line("250 ", 'a', 3 * SMTP_REPLY_LINE_MAX, "");
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, line, strlen(line), &consumed),
	    SMTP_REPLY_ERR_LINE_TOO_LONG);
	/* It stops at the first octet over the limit, not at the end. */
	ck_assert_uint_eq(consumed, SMTP_REPLY_LINE_MAX + 2);
	smtp_reply_parser_reset(&parser);
	free(line);
}
END_TEST

/* Returns a multi-line reply of count lines. */
static char *
make_reply(size_t count)
{
	char *reply = malloc(count * 8 + 1);
	char *p = reply;

	ck_assert_ptr_nonnull(reply);
	for (size_t i = 0; i < count; i++) {
		memcpy(p, i + 1 < count ? "250-ab\r\n" : "250 ab\r\n", 8);
		p += 8;
	}
	*p = '\0';
	return reply;
}

START_TEST(reply_max_lines_accepted)
{
	struct smtp_reply_parser parser;
	char *reply = make_reply(SMTP_REPLY_LINES_MAX);
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, reply, strlen(reply), &consumed),
	    SMTP_REPLY_COMPLETE);
	ck_assert_uint_eq(parser.reply.line_count, SMTP_REPLY_LINES_MAX);
	smtp_reply_parser_reset(&parser);
	free(reply);
}
END_TEST

START_TEST(reply_too_many_lines_rejected)
{
	struct smtp_reply_parser parser;
	char *reply = make_reply(SMTP_REPLY_LINES_MAX + 1);
	size_t consumed;

	smtp_reply_parser_init(&parser);
	ck_assert_int_eq(feed_all(&parser, reply, strlen(reply), &consumed),
	    SMTP_REPLY_ERR_TOO_MANY_LINES);
	smtp_reply_parser_reset(&parser);
	free(reply);
}
END_TEST

START_TEST(reply_status_text_names_limit)
{
	ck_assert_ptr_nonnull(strstr(smtp_reply_status_text(
	    SMTP_REPLY_ERR_LINE_TOO_LONG), "4096"));
	ck_assert_ptr_nonnull(strstr(smtp_reply_status_text(
	    SMTP_REPLY_ERR_TOO_MANY_LINES), "256"));
}
END_TEST

/* Parser helpers. */

/* Parses input, which must be one complete reply, into parser. */
static void
parse_reply(struct smtp_reply_parser *parser, const char *input)
{
	size_t consumed;

	smtp_reply_parser_init(parser);
	ck_assert_int_eq(feed_all(parser, input, strlen(input), &consumed),
	    SMTP_REPLY_COMPLETE);
}

START_TEST(keyword_found_in_ehlo_reply)
{
	struct smtp_reply_parser parser;

	parse_reply(&parser, "250-mx.example.test Hello\r\n250-SIZE 1000\r\n"
	    "250-etrn\r\n250 HELP\r\n");
	ck_assert(smtp_reply_has_keyword(&parser.reply, "ETRN"));
	ck_assert(smtp_reply_has_keyword(&parser.reply, "SIZE"));
	ck_assert(smtp_reply_has_keyword(&parser.reply, "help"));
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(keyword_prefix_not_matched)
{
	struct smtp_reply_parser parser;

	parse_reply(&parser, "250-mx.example.test\r\n250-ETRNX\r\n"
	    "250 XETRN\r\n");
	ck_assert(!smtp_reply_has_keyword(&parser.reply, "ETRN"));
	ck_assert(!smtp_reply_has_keyword(&parser.reply, "ETR"));
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(keyword_first_line_ignored)
{
	struct smtp_reply_parser parser;

	parse_reply(&parser, "250 ETRN\r\n");
	ck_assert(!smtp_reply_has_keyword(&parser.reply, "ETRN"));
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(number_found_in_253_reply)
{
	struct smtp_reply_parser parser;
	unsigned long count = 0;

	parse_reply(&parser, "253 2.0.0 OK, 17 pending messages for node "
	    "host42.example.test started\r\n");
	ck_assert(smtp_reply_find_number(&parser.reply, &count));
	ck_assert_uint_eq(count, 17);
	smtp_reply_parser_reset(&parser);
}
END_TEST

START_TEST(number_missing_or_too_large)
{
	struct smtp_reply_parser parser;
	unsigned long count = 0;

	parse_reply(&parser, "253 OK, pending messages started\r\n");
	ck_assert(!smtp_reply_find_number(&parser.reply, &count));
	smtp_reply_parser_reset(&parser);

	parse_reply(&parser, "253 OK, 123456789012345678901234567890 "
	    "pending messages started\r\n");
	ck_assert(!smtp_reply_find_number(&parser.reply, &count));
	smtp_reply_parser_reset(&parser);
}
END_TEST

/* ETRN arguments. */

static const char *const valid_arguments[] = {
	"example.test",
	"EXAMPLE.Test",
	"example.test.",
	"@example.test",
	"#queue_1",
	"#mqueue.group-2",
	"localhost",
	"xn--bcher-kva.example.test",
	"a-b.example.test",
	"0.example.test",
};

START_TEST(argument_valid_accepted)
{
	char message[ETRN_MESSAGE_SIZE] = "";

	ck_assert_msg(etrn_argument_check(valid_arguments[_i], message,
	    sizeof(message)), "%s: %s", valid_arguments[_i], message);
}
END_TEST

static const struct {
	const char *argument;
	const char *message_part;
} invalid_arguments[] = {
	{ "", "the domain is empty" },
	{ "@", "no domain after @" },
	{ "#", "no name after #" },
	{ ".", "the domain is empty" },
	{ ".example.test", "empty label at offset 0" },
	{ "example..test", "empty label at offset 8" },
	{ "example.test..", "empty label at offset 13" },
	{ "@.example.test", "empty label at offset 1" },
	{ "@@example.test", "'@' at offset 1" },
	{ "exa mple.test", "a space at offset 3" },
	{ "example.test ", "a space at offset 12" },
	{ "exa\tmple.test", "\\x09 at offset 3" },
	{ "exa\x01mple.test", "\\x01 at offset 3" },
	{ "exa\x7fmple.test", "\\x7f at offset 3" },
	{ "ex_ample.test", "'_' at offset 2" },
	{ "example.test;rm", "';' at offset 12" },
	{ "b\xc3\xbc" "cher.test", "\\xc3 at offset 1" },
	{ "-example.test", "starts or ends with a hyphen" },
	{ "example-.test", "starts or ends with a hyphen" },
	{ "#bad name", "a space at offset 4" },
	{ "#queue/1", "'/' at offset 6" },
};

START_TEST(argument_invalid_rejected)
{
	char message[ETRN_MESSAGE_SIZE] = "";
	const char *argument = invalid_arguments[_i].argument;

	ck_assert(!etrn_argument_check(argument, message, sizeof(message)));
	ck_assert_msg(strstr(message, invalid_arguments[_i].message_part) !=
	    NULL, "message for \"%s\" lacks \"%s\": %s", argument,
	    invalid_arguments[_i].message_part, message);
}
END_TEST

/* Returns a domain of length octets made of labels of label_length. */
static char *
make_domain(size_t length, size_t label_length)
{
	char *domain = malloc(length + 1);

	ck_assert_ptr_nonnull(domain);
	for (size_t i = 0; i < length; i++)
		domain[i] = (i + 1) % (label_length + 1) == 0 ? '.' : 'a';
	domain[length] = '\0';
	ck_assert_int_ne(domain[length - 1], '.');
	return domain;
}

START_TEST(argument_length_limits)
{
	char message[ETRN_MESSAGE_SIZE] = "";
	char *longest = make_domain(ETRN_DOMAIN_MAX, 62);
	char *too_long = make_domain(ETRN_DOMAIN_MAX + 1, 62);
	char *longest_label = make_domain(ETRN_LABEL_MAX, ETRN_LABEL_MAX);
	char *label_too_long = make_domain(ETRN_LABEL_MAX + 1,
	    ETRN_LABEL_MAX + 1);

	ck_assert_msg(etrn_argument_check(longest, message, sizeof(message)),
	    "%s", message);
	ck_assert(!etrn_argument_check(too_long, message, sizeof(message)));
	ck_assert_ptr_nonnull(strstr(message, "254 octets"));
	ck_assert_msg(etrn_argument_check(longest_label, message,
	    sizeof(message)), "%s", message);
	ck_assert(!etrn_argument_check(label_too_long, message,
	    sizeof(message)));
	ck_assert_ptr_nonnull(strstr(message, "has 64 octets"));
	free(longest);
	free(too_long);
	free(longest_label);
	free(label_too_long);
}
END_TEST

START_TEST(argument_message_quotes_value)
{
	char message[ETRN_MESSAGE_SIZE] = "";

	ck_assert(!etrn_argument_check("exa\x1b[31mmple", message,
	    sizeof(message)));
	ck_assert_ptr_nonnull(strstr(message, "\"exa\\x1b[31mmple\""));
	ck_assert_ptr_null(strchr(message, '\x1b'));
}
END_TEST

static const struct {
	const char *name;
	bool valid;
} helo_names[] = {
	{ "client.example.test", true },
	{ "[192.0.2.1]", true },
	{ "[IPv6:2001:db8::1]", true },
	{ "[ipv6:::1]", true },
	{ "[192.0.2.300]", false },
	{ "[2001:db8::1]", false },
	{ "[]", false },
	{ "client example", false },
	{ "", false },
};

START_TEST(helo_name_checked)
{
	char message[ETRN_MESSAGE_SIZE] = "";

	ck_assert_msg(etrn_helo_name_check(helo_names[_i].name, message,
	    sizeof(message)) == helo_names[_i].valid, "\"%s\": %s",
	    helo_names[_i].name, message);
}
END_TEST

/* Reply classification. */

static const struct {
	const char *reply;
	enum etrn_exit_status status;
	const char *description;
} classified[] = {
	{ "250 2.0.0 Queuing for node example.test started\r\n",
	    ETRN_EXIT_STARTED, "delivery started" },
	{ "251 OK, no messages waiting for node example.test\r\n",
	    ETRN_EXIT_NOTHING_WAITING, "no messages waiting" },
	{ "252 OK, pending messages for node example.test started\r\n",
	    ETRN_EXIT_STARTED, "delivery of pending messages started" },
	{ "253 OK, 17 pending messages for node example.test started\r\n",
	    ETRN_EXIT_STARTED, "delivery of 17 pending messages started" },
	{ "253 OK, 1 pending messages for node example.test started\r\n",
	    ETRN_EXIT_STARTED, "delivery of 1 pending message started" },
	{ "253 OK, pending messages for node example.test started\r\n",
	    ETRN_EXIT_STARTED, "delivery of pending messages started" },
	{ "254 something new\r\n", ETRN_EXIT_STARTED, "unusual reply code" },
	{ "421 4.3.2 closing\r\n", ETRN_EXIT_TEMPFAIL,
	    "closing the connection" },
	{ "458 Unable to queue messages for node example.test\r\n",
	    ETRN_EXIT_TEMPFAIL, "cannot start delivery now" },
	{ "451 4.3.0 local error\r\n", ETRN_EXIT_TEMPFAIL,
	    "temporary failure" },
	{ "459 Node example.test not allowed: unknown\r\n",
	    ETRN_EXIT_REJECTED, "does not allow ETRN" },
	{ "500 Syntax Error\r\n", ETRN_EXIT_REJECTED,
	    "does not recognise the ETRN command" },
	{ "501 Syntax Error in Parameters\r\n", ETRN_EXIT_REJECTED,
	    "syntax error in the argument" },
	{ "502 Command not implemented\r\n", ETRN_EXIT_REJECTED,
	    "does not implement ETRN" },
	{ "550 5.7.1 denied\r\n", ETRN_EXIT_REJECTED, "rejected" },
	{ "354 go ahead\r\n", ETRN_EXIT_PROTOCOL, "unexpected reply code 354" },
};

START_TEST(classify_reply_codes)
{
	struct smtp_reply_parser parser;
	char description[200] = "";

	parse_reply(&parser, classified[_i].reply);
	ck_assert_int_eq(etrn_classify_reply(&parser.reply, description,
	    sizeof(description)), classified[_i].status);
	ck_assert_msg(strstr(description, classified[_i].description) != NULL,
	    "reply \"%s\": description \"%s\" lacks \"%s\"",
	    classified[_i].reply, description, classified[_i].description);
	smtp_reply_parser_reset(&parser);
}
END_TEST

/* The largest status wins, so the order is part of the interface. */
START_TEST(exit_status_order)
{
	ck_assert_int_eq(ETRN_EXIT_STARTED, 0);
	ck_assert_int_lt(ETRN_EXIT_STARTED, ETRN_EXIT_NOTHING_WAITING);
	ck_assert_int_lt(ETRN_EXIT_NOTHING_WAITING, ETRN_EXIT_TEMPFAIL);
	ck_assert_int_lt(ETRN_EXIT_TEMPFAIL, ETRN_EXIT_REJECTED);
	ck_assert_int_lt(ETRN_EXIT_REJECTED, ETRN_EXIT_CONNECT);
	ck_assert_int_eq(ETRN_EXIT_USAGE, 64);
}
END_TEST

/* Escaping. */

START_TEST(escape_controls_and_backslash)
{
	char out[64];
	const char input[] = "a\x1b[1m\\b\xff";

	etrn_escape_text(out, sizeof(out), input, strlen(input), 100);
	ck_assert_str_eq(out, "a\\x1b[1m\\\\b\\xff");
}
END_TEST

START_TEST(escape_cut_short_marked)
{
	char out[64];

	etrn_escape_text(out, sizeof(out), "abcdef", 6, 3);
	ck_assert_str_eq(out, "abc...");
}
END_TEST

START_TEST(escape_small_buffer_terminated)
{
	char out[4];

	etrn_escape_text(out, sizeof(out), "\x01\x02", 2, 100);
	ck_assert_str_eq(out, "...");
	etrn_escape_text(out, sizeof(out), "abcdef", 6, 100);
	ck_assert_str_eq(out, "abc");
}
END_TEST

static Suite *
etrn_suite(void)
{
	Suite *suite = suite_create("contrib");
	TCase *parser = tcase_create("smtp_reply");
	TCase *helpers = tcase_create("smtp_reply helpers");
	TCase *arguments = tcase_create("etrn arguments");
	TCase *replies = tcase_create("etrn replies");
	TCase *escaping = tcase_create("escaping");

	tcase_add_test(parser, reply_single_line);
	tcase_add_test(parser, reply_enhanced_code_split_off);
	tcase_add_test(parser, reply_enhanced_code_alone);
	tcase_add_test(parser, reply_enhanced_code_spaces_removed);
	tcase_add_loop_test(parser, reply_enhanced_code_rejected, 0,
	    sizeof(not_enhanced) / sizeof(not_enhanced[0]));
	tcase_add_test(parser, reply_multi_line);
	tcase_add_test(parser, reply_bare_code_lines);
	tcase_add_test(parser, reply_bare_lf_accepted);
	tcase_add_test(parser, reply_incomplete_needs_more);
	tcase_add_test(parser, reply_stops_at_reply_end);
	tcase_add_test(parser, reply_complete_is_sticky);
	tcase_add_loop_test(parser, reply_split_gives_same_result, 0,
	    sizeof(split_inputs) / sizeof(split_inputs[0]));
	tcase_add_test(parser, reply_line_callback_sees_lines);
	tcase_add_loop_test(parser, reply_invalid_rejected, 0,
	    sizeof(bad_replies) / sizeof(bad_replies[0]));
	tcase_add_test(parser, reply_error_is_sticky);
	tcase_add_test(parser, reply_line_at_limit_accepted);
	tcase_add_test(parser, reply_line_over_limit_rejected);
	tcase_add_test(parser, reply_line_over_limit_bare_lf_rejected);
	tcase_add_test(parser, reply_unterminated_line_stops);
	tcase_add_test(parser, reply_max_lines_accepted);
	tcase_add_test(parser, reply_too_many_lines_rejected);
	tcase_add_test(parser, reply_status_text_names_limit);
	suite_add_tcase(suite, parser);

	tcase_add_test(helpers, keyword_found_in_ehlo_reply);
	tcase_add_test(helpers, keyword_prefix_not_matched);
	tcase_add_test(helpers, keyword_first_line_ignored);
	tcase_add_test(helpers, number_found_in_253_reply);
	tcase_add_test(helpers, number_missing_or_too_large);
	suite_add_tcase(suite, helpers);

	tcase_add_loop_test(arguments, argument_valid_accepted, 0,
	    sizeof(valid_arguments) / sizeof(valid_arguments[0]));
	tcase_add_loop_test(arguments, argument_invalid_rejected, 0,
	    sizeof(invalid_arguments) / sizeof(invalid_arguments[0]));
	tcase_add_test(arguments, argument_length_limits);
	tcase_add_test(arguments, argument_message_quotes_value);
	tcase_add_loop_test(arguments, helo_name_checked, 0,
	    sizeof(helo_names) / sizeof(helo_names[0]));
	suite_add_tcase(suite, arguments);

	tcase_add_loop_test(replies, classify_reply_codes, 0,
	    sizeof(classified) / sizeof(classified[0]));
	tcase_add_test(replies, exit_status_order);
	suite_add_tcase(suite, replies);

	tcase_add_test(escaping, escape_controls_and_backslash);
	tcase_add_test(escaping, escape_cut_short_marked);
	tcase_add_test(escaping, escape_small_buffer_terminated);
	suite_add_tcase(suite, escaping);
	return suite;
}

int
main(void)
{
	SRunner *runner = srunner_create(etrn_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
