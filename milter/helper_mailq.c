/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The parser of the `sendmail -bp -qQ` listing and of quarantine reasons in
 * queue control files, for the release helper's LIST request.  No I/O
 * happens here.
 */

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "od_helper_proto.h"
#include "od_util.h"

/*
 * The listing that print_single_queue in sendmail's queue.c prints for
 * each queue directory, as sendmail 8.17.1.9 printed it:
 *
 *   <dir> is empty
 * or
 *   \t\t<dir> (N request[s][, only M printed])
 *   -----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient---...
 *   <id, right-aligned in 13 columns><marker><size, 8 columns> <Www Mmm dd hh:mm> <sender>
 *        QUARANTINE: <reason, at most 60 characters>
 *       <body type, 10 columns>   (<status message>)
 *   \t\t\t\t\t <recipient>
 *
 * and at the end "\t\tTotal requests: N".  An item whose queue file went
 * away while listing shows "<id> (job completed)" in place of its data.
 */

#define REASON_LISTED_MAX 60
#define TIME_TEXT_LENGTH 16

static const char *const weekday_names[] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char *const month_names[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static int
name_index(const char *text, const char *const *names, int count)
{
	int i;

	for (i = 0; i < count; i++)
		if (memcmp(text, names[i], 3) == 0)
			return i;
	return -1;
}

time_t
od_mailq_time(const char *text, size_t length, time_t now)
{
	struct tm local;
	time_t fallback = (time_t)-1;
	int weekday, month, day, hour, minute;
	int year, back;

	/* "Www Mmm dd hh:mm", the day padded with a space */
	if (length != TIME_TEXT_LENGTH || text[3] != ' ' || text[7] != ' ' ||
	    text[10] != ' ' || text[13] != ':')
		return (time_t)-1;
	weekday = name_index(text, weekday_names, 7);
	month = name_index(text + 4, month_names, 12);
	if (weekday < 0 || month < 0)
		return (time_t)-1;
	if (!isdigit((unsigned char)text[9]) ||
	    !(text[8] == ' ' || isdigit((unsigned char)text[8])) ||
	    !isdigit((unsigned char)text[11]) ||
	    !isdigit((unsigned char)text[12]) ||
	    !isdigit((unsigned char)text[14]) ||
	    !isdigit((unsigned char)text[15]))
		return (time_t)-1;
	day = (text[8] == ' ' ? 0 : (text[8] - '0') * 10) + (text[9] - '0');
	hour = (text[11] - '0') * 10 + (text[12] - '0');
	minute = (text[14] - '0') * 10 + (text[15] - '0');
	if (day < 1 || day > 31 || hour > 23 || minute > 59)
		return (time_t)-1;

	if (localtime_r(&now, &local) == NULL)
		return (time_t)-1;
	year = local.tm_year;
	/*
	 * Between 1901 and 2099 a date falls on each weekday once in 28
	 * years, so the newest year in that range with the listed weekday is
	 * the queue time's year.  Without such a year, take the newest date.
	 */
	for (back = 0; back <= 28; back++) {
		struct tm candidate = { 0 };
		time_t t;

		candidate.tm_year = year - back;
		candidate.tm_mon = month;
		candidate.tm_mday = day;
		candidate.tm_hour = hour;
		candidate.tm_min = minute;
		candidate.tm_isdst = -1;
		t = mktime(&candidate);
		if (t == (time_t)-1)
			continue;
		/* mktime moves 29 February to March in other years. */
		if (candidate.tm_mon != month || candidate.tm_mday != day)
			continue;
		if (t > now)
			continue;
		if (candidate.tm_wday == weekday)
			return t;
		if (fallback == (time_t)-1)
			fallback = t;
	}
	return fallback;
}

void
od_mailq_init(struct od_mailq_parser *parser, time_t now)
{
	memset(parser, 0, sizeof(*parser));
	parser->now = now;
	parser->total = -1;
}

static bool
starts_with(const char *text, size_t length, const char *prefix)
{
	size_t n = strlen(prefix);

	return length >= n && memcmp(text, prefix, n) == 0;
}

static bool
ends_with(const char *text, size_t length, const char *suffix)
{
	size_t n = strlen(suffix);

	return length >= n && memcmp(text + length - n, suffix, n) == 0;
}

static void
note_unknown(struct od_mailq_parser *parser, const char *line, size_t length)
{
	char copy[sizeof(parser->first_unknown)];

	if (parser->unknown_lines++ > 0)
		return;
	if (length >= sizeof(copy))
		length = sizeof(copy) - 1;
	memcpy(copy, line, length);
	copy[length] = '\0';
	od_escape(parser->first_unknown, sizeof(parser->first_unknown), copy,
	    sizeof(copy));
}

/* Hands the current item to the caller, if there is one worth reporting. */
static bool
flush_item(struct od_mailq_parser *parser, struct od_mailq_item *out)
{
	bool report = parser->in_item && !parser->item_skipped;

	if (report)
		*out = parser->current;
	parser->in_item = false;
	parser->item_skipped = false;
	return report;
}

static bool
parse_count(const char *text, size_t length, long long *value)
{
	long long n = 0;
	size_t i;

	if (length == 0 || length > 18)
		return false;
	for (i = 0; i < length; i++) {
		if (!isdigit((unsigned char)text[i]))
			return false;
		n = n * 10 + (text[i] - '0');
	}
	*value = n;
	return true;
}

/* "\t\t<dir> (N request[s][, only M printed])" */
static bool
parse_section(struct od_mailq_parser *parser, const char *text, size_t length)
{
	const char *end = text + length;
	const char *open = NULL;
	const char *p;
	const char *number;
	long long count;
	size_t dir_length;

	if (!ends_with(text, length, ")"))
		return false;
	/* The directory may contain " (", so the last one starts the count. */
	for (p = text; p + 1 < text + length; p++)
		if (p[0] == ' ' && p[1] == '(')
			open = p;
	if (open == NULL || open == text)
		return false;
	number = open + 2;
	for (p = number; p < text + length && isdigit((unsigned char)*p); p++)
		continue;
	if (!parse_count(number, (size_t)(p - number), &count))
		return false;
	/* The line is a slice of the read buffer, so no NUL ends it. */
	if (starts_with(p, (size_t)(end - p), " requests"))
		p += 9;
	else if (starts_with(p, (size_t)(end - p), " request"))
		p += 8;
	else
		return false;
	if (p == end)
		return false;
	if (*p == ',') {
		if (!starts_with(p, (size_t)(end - p), ", only "))
			return false;
		parser->cut_short = true;
	} else if (*p != ')') {
		return false;
	}
	dir_length = (size_t)(open - text);
	if (dir_length >= sizeof(parser->directory))
		return false;
	memcpy(parser->directory, text, dir_length);
	parser->directory[dir_length] = '\0';
	parser->announced += count;
	return true;
}

/*
 * Parses "<id><marker><size> <time> <sender>" into *item and sets *started,
 * or accepts "<id> (job completed)" without starting an item.  Returns
 * false when the line is neither.
 */
static bool
parse_item_line(struct od_mailq_parser *parser, const char *text,
    size_t length, struct od_mailq_item *item, bool *started)
{
	const char *end = text + length;
	const char *p = text;
	const char *id;
	size_t id_length;
	char size_text[24];
	size_t size_length;
	size_t sender_length;
	char *size_end;
	time_t queued;

	*started = false;
	while (p < end && *p == ' ')
		p++;
	id = p;
	while (p < end && isalnum((unsigned char)*p))
		p++;
	/*
	 * The "X" marker (load too high) is a letter and follows the ID
	 * directly.  Sendmail IDs end with the digits of a process ID
	 * ("%06d"), so a trailing X belongs to the marker.
	 */
	if (p > id && p[-1] == 'X')
		p--;
	id_length = (size_t)(p - id);
	if (id_length < OD_QUEUE_ID_MIN || id_length > OD_QUEUE_ID_MAX)
		return false;

	/* The queue file went away between reading the directory and now. */
	if (end - p == 16 && memcmp(p, " (job completed)", 16) == 0) {
		parser->seen++;
		return true;
	}

	if (p == end || strchr(" *X-?", *p) == NULL)
		return false;
	memset(item, 0, sizeof(*item));
	item->marker = *p++;
	while (p < end && *p == ' ')
		p++;
	size_length = 0;
	while (p < end && size_length < sizeof(size_text) - 1 &&
	    (isdigit((unsigned char)*p) || (*p == '-' && size_length == 0)))
		size_text[size_length++] = *p++;
	size_text[size_length] = '\0';
	if (size_length == 0 || p == end || *p != ' ')
		return false;
	errno = 0;
	item->item.size = strtoll(size_text, &size_end, 10);
	if (errno != 0 || *size_end != '\0' || item->item.size < -1)
		return false;
	p++;
	if (end - p < TIME_TEXT_LENGTH)
		return false;
	queued = od_mailq_time(p, TIME_TEXT_LENGTH, parser->now);
	if (queued == (time_t)-1)
		return false;
	p += TIME_TEXT_LENGTH;
	if (p < end && *p != ' ')
		return false;
	if (p < end)
		p++;

	memcpy(item->item.queue_id, id, id_length);
	item->item.queue_id[id_length] = '\0';
	item->item.queued = queued;
	sender_length = (size_t)(end - p);
	if (sender_length >= sizeof(item->item.sender))
		sender_length = sizeof(item->item.sender) - 1;
	memcpy(item->item.sender, p, sender_length);
	item->item.sender[sender_length] = '\0';
	od_strlcpy(item->directory, parser->directory,
	    sizeof(item->directory));
	parser->seen++;
	*started = true;
	return true;
}

static bool
parse_quarantine_line(struct od_mailq_parser *parser, const char *line,
    size_t length)
{
	static const char prefix[] = "     QUARANTINE: ";
	char *reason = parser->current.item.reason;
	size_t n = length - (sizeof(prefix) - 1);

	if (!parser->in_item)
		return false;
	if (n >= sizeof(parser->current.item.reason))
		n = sizeof(parser->current.item.reason) - 1;
	memcpy(reason, line + sizeof(prefix) - 1, n);
	reason[n] = '\0';
	parser->current.reason_cut = n == REASON_LISTED_MAX;
	return true;
}

/* Handles a line with the " (no control file)" suffix already removed. */
static bool
parse_line(struct od_mailq_parser *parser, const char *line, size_t length,
    struct od_mailq_item *out)
{
	struct od_mailq_item next;
	bool reported;
	bool started;

	/*
	 * sendmail prints warnings such as "Warning: Cannot use
	 * HostStatusDirectory" before the listing; they do not change it.
	 */
	if (starts_with(line, length, "Warning: ")) {
		if (parser->warning_lines++ == 0) {
			char copy[sizeof(parser->first_warning)];
			size_t n = length < sizeof(copy) ? length :
			    sizeof(copy) - 1;

			memcpy(copy, line, n);
			copy[n] = '\0';
			od_escape(parser->first_warning,
			    sizeof(parser->first_warning), copy, sizeof(copy));
		}
		return false;
	}
	if (starts_with(line, length, "\t\t\t\t\t"))
		return false;		/* a recipient */
	if (starts_with(line, length, "\t\tTotal requests: ")) {
		reported = flush_item(parser, out);
		if (!parse_count(line + 18, length - 18, &parser->total))
			note_unknown(parser, line, length);
		return reported;
	}
	if (starts_with(line, length, "\t\t")) {
		reported = flush_item(parser, out);
		if (!parse_section(parser, line + 2, length - 2))
			note_unknown(parser, line, length);
		return reported;
	}
	if (starts_with(line, length, "-----Q-ID-----"))
		return false;
	if (line[0] != ' ' && ends_with(line, length, " is empty"))
		return flush_item(parser, out);
	if (starts_with(line, length, "     QUARANTINE: ")) {
		if (!parse_quarantine_line(parser, line, length))
			note_unknown(parser, line, length);
		return false;
	}

	/*
	 * Item lines of IDs shorter than 13 characters start with spaces too,
	 * so try them before taking an indented line for a status line.
	 */
	if (parse_item_line(parser, line, length, &next, &started)) {
		reported = flush_item(parser, out);
		if (started) {
			parser->current = next;
			parser->in_item = true;
		}
		return reported;
	}
	if (parser->in_item && starts_with(line, length, "    "))
		return false;		/* body type and status message */
	note_unknown(parser, line, length);
	return false;
}

bool
od_mailq_line(struct od_mailq_parser *parser, const char *line,
    size_t length, struct od_mailq_item *out)
{
	static const char no_control[] = " (no control file)";
	bool no_control_file = false;
	bool reported = false;

	if (length == 0)
		return false;
	if (memchr(line, '\0', length) != NULL) {
		note_unknown(parser, line, length);
		return false;
	}
	/*
	 * Sendmail appends this to an item's last line when its queue file
	 * has no creation time.  Such an item is being written or is damaged,
	 * so it is left out.
	 */
	if (ends_with(line, length, no_control)) {
		no_control_file = true;
		length -= sizeof(no_control) - 1;
	}
	if (length > 0)
		reported = parse_line(parser, line, length, out);
	if (no_control_file)
		parser->item_skipped = true;
	return reported;
}

bool
od_mailq_finish(struct od_mailq_parser *parser, struct od_mailq_item *out)
{
	return flush_item(parser, out);
}

bool
od_mailq_complete(const struct od_mailq_parser *parser, char *error,
    size_t error_size)
{
	if (parser->unknown_lines > 0) {
		snprintf(error, error_size, "%lu line%s of the queue listing "
		    "not understood, the first: \"%s\"", parser->unknown_lines,
		    parser->unknown_lines == 1 ? "" : "s",
		    parser->first_unknown);
		return false;
	}
	if (parser->cut_short) {
		snprintf(error, error_size, "sendmail printed only part of "
		    "the queue (\"only N printed\"); MaxQueueRunSize limits "
		    "the listing");
		return false;
	}
	if (parser->seen != parser->announced) {
		snprintf(error, error_size, "the queue listing announced %lld "
		    "items but showed %lld; a queue group limit may cut it",
		    parser->announced, parser->seen);
		return false;
	}
	if (parser->total >= 0 && parser->total != parser->announced) {
		snprintf(error, error_size, "the queue listing's total of %lld "
		    "requests differs from the %lld announced per directory",
		    parser->total, parser->announced);
		return false;
	}
	if (parser->total < 0) {
		snprintf(error, error_size, "the queue listing has no "
		    "\"Total requests\" line; sendmail's output may have been "
		    "cut");
		return false;
	}
	return true;
}

bool
od_queue_file_reason(const char *text, size_t length, char *reason,
    size_t reason_size)
{
	size_t position = 0;

	while (position < length) {
		const char *line = text + position;
		const char *newline = memchr(line, '\n', length - position);
		size_t line_length = newline != NULL ?
		    (size_t)(newline - line) : length - position;

		/* "." ends the control file; headers come before it. */
		if (line_length == 1 && line[0] == '.')
			return false;
		if (line_length > 0 && line[0] == 'q') {
			size_t n = line_length - 1;

			if (reason_size == 0)
				return false;
			if (n >= reason_size)
				n = reason_size - 1;
			memcpy(reason, line + 1, n);
			reason[n] = '\0';
			return true;
		}
		if (newline == NULL)
			break;
		position += line_length + 1;
	}
	return false;
}
