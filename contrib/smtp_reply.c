/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * SMTP reply parser.  Reply syntax from RFC 5321 section 4.2:
 *
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                Reply-code [ SP textstring ] CRLF
 *   Reply-code = %x32-35 %x30-35 %x30-39
 *
 * Enhanced status codes ("2.0.0", RFC 3463) follow the separator when the
 * server supports RFC 2034.
 */

#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_reply.h"

#define STRINGIFY(x) #x
#define STRINGIFY_VALUE(x) STRINGIFY(x)

void
smtp_reply_parser_init(struct smtp_reply_parser *parser)
{
	memset(parser, 0, sizeof(*parser));
	parser->status = SMTP_REPLY_INCOMPLETE;
}

void
smtp_reply_parser_reset(struct smtp_reply_parser *parser)
{
	smtp_reply_line_callback *on_line = parser->on_line;
	void *on_line_context = parser->on_line_context;

	free(parser->reply.text);
	smtp_reply_parser_init(parser);
	parser->on_line = on_line;
	parser->on_line_context = on_line_context;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Returns the length of an enhanced status code at the start of text (class
 * "." subject "." detail, subject and detail of 1 to 3 digits), or 0 when
 * there is none.  The code must be followed by a space or the end of the
 * text.  RFC 2034 section 4 requires the class to match the reply code's
 * first digit, but this is not checked: the ETRN reply 459 is a 4xx code
 * for a permanent rejection, so a server may well send it with 5.x.x.
 */
static size_t
enhanced_code_length(const char *text, size_t length)
{
	size_t i = 0;

	if (length < 5 || (text[0] != '2' && text[0] != '4' &&
	    text[0] != '5') || text[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;

		while (i < length && is_digit(text[i]) && digits < 4) {
			i++;
			digits++;
		}
		if (digits < 1 || digits > 3)
			return 0;
		if (part == 0) {
			if (i >= length || text[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < length && text[i] != ' ')
		return 0;
	return i;
}

/* Appends a line's text to the reply text, after a '\n' unless it is first. */
static bool
append_text(struct smtp_reply_parser *parser, const char *text, size_t length)
{
	struct smtp_reply *reply = &parser->reply;
	size_t separator = reply->line_count > 0 ? 1 : 0;
	size_t needed = reply->text_length + separator + length + 1;

	if (needed > parser->text_capacity) {
		size_t capacity = parser->text_capacity ? parser->text_capacity
		    : 256;
		char *grown;

		while (capacity < needed)
			capacity *= 2;
		grown = realloc(reply->text, capacity);
		if (grown == NULL)
			return false;
		reply->text = grown;
		parser->text_capacity = capacity;
	}
	if (separator)
		reply->text[reply->text_length++] = '\n';
	memcpy(reply->text + reply->text_length, text, length);
	reply->text_length += length;
	reply->text[reply->text_length] = '\0';
	return true;
}

/* Adds one complete line (without CR LF) to the reply. */
static enum smtp_reply_status
parse_line(struct smtp_reply_parser *parser, const char *line, size_t length)
{
	struct smtp_reply *reply = &parser->reply;
	const char *text = "";
	size_t text_length = 0;
	size_t enhanced_length;
	bool last;
	int code;

	if (parser->on_line != NULL)
		parser->on_line(line, length, parser->on_line_context);

	if (length < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '5' || !is_digit(line[2]))
		return SMTP_REPLY_ERR_SYNTAX;
	if (length > 3 && line[3] != ' ' && line[3] != '-')
		return SMTP_REPLY_ERR_SYNTAX;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	last = length == 3 || line[3] == ' ';

	if (reply->line_count == 0)
		reply->code = code;
	else if (code != reply->code)
		return SMTP_REPLY_ERR_CODE_MISMATCH;
	if (reply->line_count == SMTP_REPLY_LINES_MAX)
		return SMTP_REPLY_ERR_TOO_MANY_LINES;

	if (length > 4) {
		text = line + 4;
		text_length = length - 4;
	}
	enhanced_length = enhanced_code_length(text, text_length);
	if (enhanced_length > 0) {
		if (reply->line_count == 0) {
			memcpy(reply->enhanced, text, enhanced_length);
			reply->enhanced[enhanced_length] = '\0';
		}
		text += enhanced_length;
		text_length -= enhanced_length;
		/* RFC 2034: one or more spaces follow the code. */
		while (text_length > 0 && *text == ' ') {
			text++;
			text_length--;
		}
	}

	if (!append_text(parser, text, text_length))
		return SMTP_REPLY_ERR_NO_MEMORY;
	reply->line_count++;
	return last ? SMTP_REPLY_COMPLETE : SMTP_REPLY_INCOMPLETE;
}

enum smtp_reply_status
smtp_reply_parser_feed(struct smtp_reply_parser *parser, const char *data,
    size_t length, size_t *consumed)
{
	size_t i;

	*consumed = 0;
	if (parser->status != SMTP_REPLY_INCOMPLETE)
		return parser->status;

	for (i = 0; i < length; i++) {
		char c = data[i];

		if (c == '\n') {
			size_t line_length = parser->line_length;

			if (line_length > 0 &&
			    parser->line[line_length - 1] == '\r')
				line_length--;
			if (line_length > SMTP_REPLY_LINE_MAX) {
				parser->status = SMTP_REPLY_ERR_LINE_TOO_LONG;
				break;
			}
			parser->status = parse_line(parser, parser->line,
			    line_length);
			if (parser->status != SMTP_REPLY_INCOMPLETE) {
				/* Keep an invalid line for the message. */
				parser->line_length = line_length;
				break;
			}
			parser->line_length = 0;
			continue;
		}
		if (c == '\0') {
			parser->status = SMTP_REPLY_ERR_NUL;
			break;
		}
		/* One octet more than the limit leaves room for the CR. */
		if (parser->line_length == SMTP_REPLY_LINE_MAX + 1) {
			parser->status = SMTP_REPLY_ERR_LINE_TOO_LONG;
			break;
		}
		parser->line[parser->line_length++] = c;
	}

	*consumed = i < length ? i + 1 : length;
	return parser->status;
}

const char *
smtp_reply_status_text(enum smtp_reply_status status)
{
	switch (status) {
	case SMTP_REPLY_INCOMPLETE:
		return "incomplete reply";
	case SMTP_REPLY_COMPLETE:
		return "complete reply";
	case SMTP_REPLY_ERR_SYNTAX:
		return "line does not start with a 3-digit SMTP reply code";
	case SMTP_REPLY_ERR_CODE_MISMATCH:
		return "lines of one multi-line reply have different reply "
		    "codes";
	case SMTP_REPLY_ERR_LINE_TOO_LONG:
		return "reply line longer than "
		    STRINGIFY_VALUE(SMTP_REPLY_LINE_MAX) " octets";
	case SMTP_REPLY_ERR_TOO_MANY_LINES:
		return "multi-line reply of more than "
		    STRINGIFY_VALUE(SMTP_REPLY_LINES_MAX) " lines";
	case SMTP_REPLY_ERR_NUL:
		return "reply line contains a NUL octet";
	case SMTP_REPLY_ERR_NO_MEMORY:
		return "out of memory";
	}
	return "unknown parser status";
}

bool
smtp_reply_has_keyword(const struct smtp_reply *reply, const char *keyword)
{
	size_t keyword_length = strlen(keyword);
	const char *line;

	if (reply->text == NULL || keyword_length == 0)
		return false;

	/* The first line of an EHLO reply is the greeting, not an extension. */
	line = strchr(reply->text, '\n');
	while (line != NULL) {
		line++;
		if (strncasecmp(line, keyword, keyword_length) == 0) {
			char after = line[keyword_length];

			if (after == ' ' || after == '\n' || after == '\0')
				return true;
		}
		line = strchr(line, '\n');
	}
	return false;
}

bool
smtp_reply_find_number(const struct smtp_reply *reply, unsigned long *number)
{
	const char *p = reply->text;
	unsigned long value = 0;

	if (p == NULL)
		return false;
	while (*p != '\0' && !is_digit(*p))
		p++;
	if (*p == '\0')
		return false;
	for (; is_digit(*p); p++) {
		unsigned long digit = (unsigned long)(*p - '0');

		if (value > (ULONG_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*number = value;
	return true;
}
