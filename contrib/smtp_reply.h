/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Streaming parser for SMTP replies (RFC 5321 section 4.2): single and
 * multi-line replies, with RFC 3463 enhanced status codes split off.
 *
 * The parser takes input in chunks of any size, so the same bytes give the
 * same result however the network splits them.  It never reads past the end
 * of the reply it is parsing: octets after the final line are left for the
 * next reply.  Memory is bounded by SMTP_REPLY_LINE_MAX and
 * SMTP_REPLY_LINES_MAX.
 */
#ifndef ONDEMAND_SMTP_REPLY_H
#define ONDEMAND_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Maximum length of one reply line in octets, not counting the CR LF.
 * RFC 5321 section 4.5.3.1.5 allows 512 octets including CR LF.  The
 * larger bound accepts verbose servers and still stops a server that never
 * ends a line.
 */
#define SMTP_REPLY_LINE_MAX 4096

/* Maximum number of lines in one multi-line reply. */
#define SMTP_REPLY_LINES_MAX 256

/* Buffer size for an enhanced status code such as "5.7.1" and its NUL. */
#define SMTP_ENHANCED_SIZE 12

enum smtp_reply_status {
	SMTP_REPLY_INCOMPLETE,		/* the reply needs more input */
	SMTP_REPLY_COMPLETE,		/* a whole reply has been parsed */
	SMTP_REPLY_ERR_SYNTAX,		/* a line lacks a valid reply code */
	SMTP_REPLY_ERR_CODE_MISMATCH,	/* lines of one reply differ in code */
	SMTP_REPLY_ERR_LINE_TOO_LONG,	/* over SMTP_REPLY_LINE_MAX octets */
	SMTP_REPLY_ERR_TOO_MANY_LINES,	/* over SMTP_REPLY_LINES_MAX lines */
	SMTP_REPLY_ERR_NUL,		/* a line contains a NUL octet */
	SMTP_REPLY_ERR_NO_MEMORY
};

/* One complete reply. */
struct smtp_reply {
	int code;			/* 200 to 559 */
	/* Enhanced status code of the first line, or "" when it has none. */
	char enhanced[SMTP_ENHANCED_SIZE];
	/*
	 * Text of every line without the reply code, the separator and the
	 * enhanced status code, the lines joined by '\n' and NUL-terminated.
	 * Control characters from the server are kept as received.
	 */
	char *text;
	size_t text_length;
	size_t line_count;
};

/* Called with each complete reply line, without its CR LF. */
typedef void smtp_reply_line_callback(const char *line, size_t length,
    void *context);

struct smtp_reply_parser {
	struct smtp_reply reply;
	enum smtp_reply_status status;
	/*
	 * The line being read.  After an error it contains the start of the
	 * offending line, for the error message.
	 */
	char line[SMTP_REPLY_LINE_MAX + 1];
	size_t line_length;
	size_t text_capacity;
	smtp_reply_line_callback *on_line;	/* NULL: no callback */
	void *on_line_context;
};

void smtp_reply_parser_init(struct smtp_reply_parser *parser);

/*
 * Releases the current reply's memory and prepares the parser for the next
 * reply.  The line callback stays set.
 */
void smtp_reply_parser_reset(struct smtp_reply_parser *parser);

/*
 * Parses up to length octets of data and stores in *consumed how many it
 * used.  Returns SMTP_REPLY_INCOMPLETE when every octet was used and the
 * reply is not finished yet, SMTP_REPLY_COMPLETE when parser->reply contains
 * a whole reply (the octets after it are not consumed), or an error.  An error
 * is sticky: later calls return it again until smtp_reply_parser_reset.
 *
 * Lines end in LF, and a CR before the LF is removed, so servers that send a
 * bare LF are accepted.
 */
enum smtp_reply_status smtp_reply_parser_feed(struct smtp_reply_parser *parser,
    const char *data, size_t length, size_t *consumed);

/* Returns an English phrase for an error status, such as "line too long". */
const char *smtp_reply_status_text(enum smtp_reply_status status);

/*
 * Returns whether a line after the first starts with keyword, compared
 * without regard to case and followed by a space or the end of the line.
 * This is how an EHLO reply lists extensions such as ETRN (RFC 5321
 * section 4.1.1.1).
 */
bool smtp_reply_has_keyword(const struct smtp_reply *reply,
    const char *keyword);

/*
 * Finds the first decimal number in the reply text, such as the message
 * count in "253 OK, 5 pending messages for node example.test started"
 * (RFC 1985).  Returns false when there is none or it does not fit.
 */
bool smtp_reply_find_number(const struct smtp_reply *reply,
    unsigned long *number);

#endif
