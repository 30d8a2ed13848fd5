/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The release helper's wire protocol and its parsers: request lines from the
 * daemon, reply lines from the helper, and the `sendmail -bp -qQ` listing.
 * Everything here is a pure function (no I/O), so unit tests and fuzzers
 * can drive it directly.
 *
 * Protocol (a SOCK_STREAM socketpair, one request or reply per line, each at
 * most OD_HELPER_LINE_MAX octets with its newline).  Tokens are separated by
 * exactly one space.  A tag of 1 to 10 digits pairs a request with its
 * replies and is echoed as sent.
 *
 *   DELIVER <tag> <qid>...        UNHOLD <tag> <qid>...
 *   DELIVERTAG <tag> <domain>     EXPIRE <tag> <age> <qid>...
 *   LIST <tag>
 *
 *   ITEM <tag> <qid> <size> <epoch> <sender> <reason...>   (LIST only)
 *   DONE <tag> <status>
 *   ERROR <tag> <message...>
 *
 * EXPIRE's age is a number of seconds, at most the age of the youngest
 * message named.  The last run returns what it cannot deliver when it is
 * that old, and nothing younger: a DSN that the run makes and cannot
 * deliver at once stays queued.
 *
 * DONE carries sendmail's exit status, or 128 plus the signal number that
 * ended it.  A LIST whose listing was cut short or not understood ends with
 * status OD_HELPER_STATUS_LISTING.  ERROR is the reply to a request that
 * was rejected or could not be started, with tag 0 when the request had no
 * valid tag.  In ITEM lines the sender and the reason are escaped (see
 * od_helper_escape), and an empty sender is sent as \x00.
 */
#ifndef OD_HELPER_PROTO_H
#define OD_HELPER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "od_helper.h"

/* Maximum length of a protocol line, its newline included. */
#define OD_HELPER_LINE_MAX 65536
#define OD_HELPER_TAG_DIGITS 10
#define OD_HELPER_TAG_SIZE (OD_HELPER_TAG_DIGITS + 1)
/* Maximum number of queue IDs in one request. */
#define OD_HELPER_IDS_MAX 5000
#define OD_QUEUE_ID_MIN 6

/* DONE status of a LIST whose listing was incomplete or not understood. */
#define OD_HELPER_STATUS_LISTING 70

enum od_helper_verb {
	OD_HELPER_DELIVER,
	OD_HELPER_DELIVERTAG,
	OD_HELPER_UNHOLD,
	OD_HELPER_EXPIRE,
	OD_HELPER_LIST
};

/* A validated request.  ids is malloc'ed; release with od_helper_request_free. */
struct od_helper_request {
	enum od_helper_verb verb;
	char tag[OD_HELPER_TAG_SIZE];
	char domain[OD_DOMAIN_SIZE];		/* DELIVERTAG only */
	unsigned long age;			/* EXPIRE only, in seconds */
	size_t id_count;
	char (*ids)[OD_QUEUE_ID_MAX + 1];
};

const char *od_helper_verb_name(enum od_helper_verb verb);

/* Returns whether id is 6 to 20 ASCII letters and digits. */
bool od_helper_queue_id_valid(const char *id);

/*
 * Returns whether domain is already in normal form (lowercase A-labels, no
 * trailing dot, at most 253 octets).  On failure stores a reason in *error.
 */
bool od_helper_domain_valid(const char *domain, const char **error);

/*
 * Parses and validates one request line of length octets (newline removed;
 * the line may contain NUL octets, which are rejected).  On success fills
 * request and returns true.  On failure writes a sentence into error and
 * copies the request's tag into request->tag when it has a valid one, else
 * "0", so the caller can reply with ERROR.
 */
bool od_helper_request_parse(const char *line, size_t length,
    struct od_helper_request *request, char *error, size_t error_size);

void od_helper_request_free(struct od_helper_request *request);

/*
 * Formats a request line with its newline into out.  For DELIVERTAG pass
 * the domain as the single element of ids.  age is EXPIRE's, from 1 to
 * OD_HELPER_AGE_MAX, and 0 for every other verb.  Returns the line's
 * length, or 0 when an argument is invalid or the line would not fit into
 * out_size or OD_HELPER_LINE_MAX.
 */
size_t od_helper_request_format(enum od_helper_verb verb,
    unsigned long long tag, unsigned long age, const char *const *ids,
    size_t count, char *out, size_t out_size);

/*
 * Returns how many of the count IDs, from the first, fit into one request
 * line of verb (at most OD_HELPER_IDS_MAX and OD_HELPER_LINE_MAX octets).
 */
size_t od_helper_request_fit(enum od_helper_verb verb, const char *const *ids,
    size_t count);

/*
 * Copies in to out, writing octets below 0x21 (0x20 too when escape_space
 * is set, so the result is one token), above 0x7e and the backslash as
 * \xNN.  Stops before an escape sequence that would not fit; out is always
 * terminated when out_size is not zero.
 */
void od_helper_escape(char *out, size_t out_size, const char *in,
    bool escape_space);

enum od_helper_reply_type {
	OD_HELPER_REPLY_ITEM,
	OD_HELPER_REPLY_DONE,
	OD_HELPER_REPLY_ERROR
};

struct od_helper_reply {
	enum od_helper_reply_type type;
	unsigned long long tag;
	int status;			/* DONE */
	struct od_helper_item item;	/* ITEM */
	char message[512];		/* ERROR, cut to fit */
};

/* Formats an ITEM line with its newline; returns its length or 0. */
size_t od_helper_item_format(const char *tag, const struct od_helper_item *item,
    char *out, size_t out_size);

/* Parses one reply line (newline removed).  Returns false on bad syntax. */
bool od_helper_reply_parse(const char *line, size_t length,
    struct od_helper_reply *reply);

/*
 * The `sendmail -bp -qQ` listing of sendmail 8.17, parsed line by line.
 * An item is reported once its last line has been seen, that is on the
 * next item, the next queue directory, or od_mailq_finish.
 */
struct od_mailq_item {
	struct od_helper_item item;
	char marker;		/* ' ', '*' locked, 'X' load, '-' too young */
	/*
	 * The listing cuts quarantine reasons at 60 characters.  This is set
	 * when the reason has exactly that length, so that the caller reads
	 * the whole reason from the queue file in directory.
	 */
	bool reason_cut;
	char directory[4096];
};

struct od_mailq_parser {
	time_t now;
	char directory[4096];	/* queue directory of the current section */
	bool in_item;
	bool item_skipped;	/* item line had no data ("no control file") */
	struct od_mailq_item current;
	long long announced;	/* sum of "(N requests)" */
	long long seen;		/* item lines, including "(job completed)" */
	long long total;	/* "Total requests: N", -1 when absent */
	bool cut_short;		/* ", only N printed" */
	unsigned long unknown_lines;
	char first_unknown[160];	/* escaped */
	unsigned long warning_lines;	/* "Warning: ..." lines, skipped */
	char first_warning[160];	/* escaped */
};

void od_mailq_init(struct od_mailq_parser *parser, time_t now);

/*
 * Feeds one line of the listing (newline removed).  Returns true when an
 * item is complete and stored into *out.
 */
bool od_mailq_line(struct od_mailq_parser *parser, const char *line,
    size_t length, struct od_mailq_item *out);

/* Ends the listing.  Returns true when a last item is stored into *out. */
bool od_mailq_finish(struct od_mailq_parser *parser,
    struct od_mailq_item *out);

/*
 * Returns whether the listing was complete and every line understood; if
 * not, writes the reason into error.
 */
bool od_mailq_complete(const struct od_mailq_parser *parser, char *error,
    size_t error_size);

/*
 * Converts a listing time such as "Fri Dec  4 20:30" (local time, no year)
 * into the latest matching time that is not after now.  The weekday picks
 * the year when the month and day alone would be ambiguous.  Returns
 * (time_t)-1 when text is not such a time.
 */
time_t od_mailq_time(const char *text, size_t length, time_t now);

/*
 * Finds the quarantine reason (the "q" line) in the text of a queue control
 * file and copies it into reason.  Returns false when there is none.
 */
bool od_queue_file_reason(const char *text, size_t length, char *reason,
    size_t reason_size);

#endif
