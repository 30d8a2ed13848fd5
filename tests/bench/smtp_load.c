/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * smtp-load: sends many messages over parallel SMTP sessions to a server on
 * a loopback address and prints the messages per second and how often each
 * reply code came at each stage of the transaction.
 *
 * Each message has one recipient. A set share of the messages goes to the
 * held domain (an on-demand domain of the server under test) and the rest
 * to the normal domain, spread evenly over the run. Every session is a
 * thread with blocking sockets. A session sends one command at a time
 * (no pipelining) and the whole message in one write.
 *
 * Limits: only 127.0.0.0/8 and ::1 are accepted as targets, because the
 * tool is meant for benchmarks on this machine. A message that fails is
 * counted and not sent again.
 */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "smtp-load"

#define DEFAULT_SESSIONS 16
#define DEFAULT_MESSAGES 1000
#define DEFAULT_PER_CONNECTION 10
#define DEFAULT_HELD_PERCENT 50
#define DEFAULT_BODY_BYTES 2000
#define DEFAULT_TIMEOUT 60
#define DEFAULT_HELD_DOMAIN "example.test"
#define DEFAULT_NORMAL_DOMAIN "other.test"
#define DEFAULT_SENDER "load@client.test"

#define SESSIONS_MAX 1024
#define MESSAGES_MAX 100000000UL
#define PER_CONNECTION_MAX 1000000UL
#define BODY_BYTES_MAX (64UL * 1024 * 1024)
#define TIMEOUT_MAX 3600
/* Domains and the sender go into SMTP command lines of at most 512 octets. */
#define ADDRESS_PART_MAX 255

/* Body lines: 78 filler characters and CRLF. */
#define BODY_LINE_BYTES 80

/* A reply line longer than this ends the connection as malformed. */
#define REPLY_BUFFER_BYTES 4096
/* Headers of one message; the domains and sender are bounded above. */
#define HEADER_BYTES_MAX 1024
/* Errors described on stderr; later ones are only counted. */
#define ERRORS_SHOWN_MAX 10

#define REPLY_CODE_MIN 100
#define REPLY_CODE_MAX 599
#define REPLY_CODE_COUNT (REPLY_CODE_MAX - REPLY_CODE_MIN + 1)

enum stage {
	STAGE_GREETING,
	STAGE_EHLO,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_DATA,
	STAGE_END_OF_DATA,
	STAGE_RSET,
	STAGE_QUIT,
	STAGE_COUNT
};

static const char *const stage_names[STAGE_COUNT] = {
	"greeting", "EHLO", "MAIL", "RCPT", "DATA", "end-of-data", "RSET",
	"QUIT"
};

struct options {
	struct sockaddr_storage address;
	socklen_t address_length;
	char address_text[INET6_ADDRSTRLEN];
	int port;
	int sessions;
	unsigned long messages;
	unsigned long per_connection;
	unsigned held_percent;
	unsigned long body_bytes;
	int timeout_seconds;
	const char *held_domain;
	const char *normal_domain;
	const char *sender;
	bool json;
};

/* Counts of one session, added up after every session has ended. */
struct counters {
	unsigned long replies[STAGE_COUNT][REPLY_CODE_COUNT];
	/* Replies that never came: I/O error, timeout, closed, malformed. */
	unsigned long no_reply[STAGE_COUNT];
	unsigned long connections;
	unsigned long connect_failures;
	unsigned long sent_held;
	unsigned long sent_normal;
	unsigned long accepted_held;
	unsigned long accepted_normal;
};

struct session {
	const struct options *options;
	int number;
	int fd;				/* -1 while not connected */
	char input[REPLY_BUFFER_BYTES];
	size_t input_start;
	size_t input_end;
	char last_line[REPLY_BUFFER_BYTES];
	char *message;			/* headers, body and final dot */
	struct counters counters;
};

static char *body_text;
static size_t body_length;
static atomic_ulong next_message;
static atomic_int errors_shown;
static unsigned long run_id;

static void
print_usage(FILE *stream)
{
	fprintf(stream,
	    "usage: " PROGRAM " -p PORT [-a ADDRESS] [-c SESSIONS] "
	    "[-n MESSAGES] [-m PER-CONNECTION]\n"
	    "                 [-r HELD-PERCENT] [-s BODY-BYTES] "
	    "[-d HELD-DOMAIN] [-D NORMAL-DOMAIN]\n"
	    "                 [-f SENDER] [-t SECONDS] [-j]\n"
	    "\n"
	    "Sends MESSAGES messages over SESSIONS parallel SMTP sessions to "
	    "ADDRESS:PORT\n"
	    "and prints the messages per second and the reply codes at each "
	    "stage.\n"
	    "Each message has one recipient: HELD-PERCENT of them at "
	    "HELD-DOMAIN,\n"
	    "the rest at NORMAL-DOMAIN.\n"
	    "\n"
	    "  -p PORT            server port, 1 to 65535 (required)\n"
	    "  -a ADDRESS         server address in 127.0.0.0/8 or ::1 "
	    "(default 127.0.0.1)\n"
	    "  -c SESSIONS        parallel sessions, 1 to %d (default %d)\n"
	    "  -n MESSAGES        messages in total, 1 to %lu (default %d)\n"
	    "  -m PER-CONNECTION  messages per connection before QUIT, 1 to "
	    "%lu (default %d)\n"
	    "  -r HELD-PERCENT    percent of messages for HELD-DOMAIN, 0 to "
	    "100 (default %d)\n"
	    "  -s BODY-BYTES      body size of each message in bytes, "
	    "without the\n"
	    "                     headers: 0, or 2 to %lu (default %d)\n"
	    "  -d HELD-DOMAIN     domain of the held share (default "
	    DEFAULT_HELD_DOMAIN ")\n"
	    "  -D NORMAL-DOMAIN   domain of the other messages (default "
	    DEFAULT_NORMAL_DOMAIN ")\n"
	    "  -f SENDER          envelope sender (default " DEFAULT_SENDER
	    ")\n"
	    "  -t SECONDS         time limit for connecting and for each "
	    "reply, 1 to %d\n"
	    "                     (default %d)\n"
	    "  -j                 print the results as one JSON object\n"
	    "  -h                 show this help\n"
	    "\n"
	    "Exit status: 0 every message accepted, 1 some message not "
	    "accepted,\n"
	    "64 usage error, 71 a system call failed.\n",
	    SESSIONS_MAX, DEFAULT_SESSIONS, MESSAGES_MAX, DEFAULT_MESSAGES,
	    PER_CONNECTION_MAX, DEFAULT_PER_CONNECTION, DEFAULT_HELD_PERCENT,
	    BODY_BYTES_MAX, DEFAULT_BODY_BYTES, TIMEOUT_MAX, DEFAULT_TIMEOUT);
}

static void
usage_error(const char *format, ...) __attribute__((format(printf, 1, 2),
    noreturn));

static void
usage_error(const char *format, ...)
{
	va_list arguments;

	fprintf(stderr, PROGRAM ": ");
	va_start(arguments, format);
	vfprintf(stderr, format, arguments);
	va_end(arguments);
	fprintf(stderr, "\nTry '" PROGRAM " -h' for help.\n");
	exit(EX_USAGE);
}

static void
system_error(const char *what) __attribute__((noreturn));

static void
system_error(const char *what)
{
	fprintf(stderr, PROGRAM ": %s failed: %s\n", what, strerror(errno));
	exit(EX_OSERR);
}

static unsigned long
parse_number(const char *text, char option, unsigned long min,
    unsigned long max)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || errno != 0 || *end != '\0' ||
	    value < min || value > max)
		usage_error("invalid value \"%s\" for -%c: expected a whole "
		    "number from %lu to %lu", text, option, min, max);
	return value;
}

static void
parse_address(const char *text, struct options *options)
{
	struct sockaddr_in *ipv4 = (struct sockaddr_in *)&options->address;
	struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *)&options->address;

	memset(&options->address, 0, sizeof(options->address));
	if (inet_pton(AF_INET, text, &ipv4->sin_addr) == 1) {
		if ((ntohl(ipv4->sin_addr.s_addr) >> 24) != 127)
			usage_error("invalid address \"%s\" for -a: "
			    PROGRAM " sends only to loopback addresses "
			    "(127.0.0.0/8 or ::1)", text);
		ipv4->sin_family = AF_INET;
		options->address_length = sizeof(*ipv4);
	} else if (inet_pton(AF_INET6, text, &ipv6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&ipv6->sin6_addr))
			usage_error("invalid address \"%s\" for -a: "
			    PROGRAM " sends only to loopback addresses "
			    "(127.0.0.0/8 or ::1)", text);
		ipv6->sin6_family = AF_INET6;
		options->address_length = sizeof(*ipv6);
	} else {
		usage_error("invalid address \"%s\" for -a: expected an IPv4 "
		    "or IPv6 address such as 127.0.0.1", text);
	}
	snprintf(options->address_text, sizeof(options->address_text), "%s",
	    text);
}

/* Rejects text that would break an SMTP command line or a header. */
static const char *
check_address_part(const char *text, char option, const char *what)
{
	size_t length = strlen(text);
	size_t i;

	if (length == 0 || length > ADDRESS_PART_MAX)
		usage_error("invalid %s \"%s\" for -%c: expected 1 to %d "
		    "characters", what, text, option, ADDRESS_PART_MAX);
	for (i = 0; i < length; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c <= ' ' || c >= 0x7f || c == '<' || c == '>')
			usage_error("invalid %s \"%s\" for -%c: only printable "
			    "ASCII without spaces and angle brackets is "
			    "allowed", what, text, option);
	}
	return text;
}

static void
parse_options(int argc, char **argv, struct options *options)
{
	const char *address = "127.0.0.1";
	int option;

	memset(options, 0, sizeof(*options));
	options->sessions = DEFAULT_SESSIONS;
	options->messages = DEFAULT_MESSAGES;
	options->per_connection = DEFAULT_PER_CONNECTION;
	options->held_percent = DEFAULT_HELD_PERCENT;
	options->body_bytes = DEFAULT_BODY_BYTES;
	options->timeout_seconds = DEFAULT_TIMEOUT;
	options->held_domain = DEFAULT_HELD_DOMAIN;
	options->normal_domain = DEFAULT_NORMAL_DOMAIN;
	options->sender = DEFAULT_SENDER;

	while ((option = getopt(argc, argv, "p:a:c:n:m:r:s:d:D:f:t:jh")) !=
	    -1) {
		switch (option) {
		case 'p':
			options->port = (int)parse_number(optarg, 'p', 1,
			    65535);
			break;
		case 'a':
			address = optarg;
			break;
		case 'c':
			options->sessions = (int)parse_number(optarg, 'c', 1,
			    SESSIONS_MAX);
			break;
		case 'n':
			options->messages = parse_number(optarg, 'n', 1,
			    MESSAGES_MAX);
			break;
		case 'm':
			options->per_connection = parse_number(optarg, 'm', 1,
			    PER_CONNECTION_MAX);
			break;
		case 'r':
			options->held_percent = (unsigned)parse_number(optarg,
			    'r', 0, 100);
			break;
		case 's':
			options->body_bytes = parse_number(optarg, 's', 0,
			    BODY_BYTES_MAX);
			if (options->body_bytes == 1)
				usage_error("invalid value \"1\" for -s: a "
				    "body ends with CRLF, so it has 0 or at "
				    "least 2 bytes");
			break;
		case 'd':
			options->held_domain = check_address_part(optarg, 'd',
			    "domain");
			break;
		case 'D':
			options->normal_domain = check_address_part(optarg,
			    'D', "domain");
			break;
		case 'f':
			options->sender = check_address_part(optarg, 'f',
			    "sender");
			break;
		case 't':
			options->timeout_seconds = (int)parse_number(optarg,
			    't', 1, TIMEOUT_MAX);
			break;
		case 'j':
			options->json = true;
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try '" PROGRAM " -h' for help.\n");
			exit(EX_USAGE);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\": every setting is an "
		    "option", argv[optind]);
	if (options->port == 0)
		usage_error("%s", "missing -p PORT: give the SMTP server's "
		    "port");
	parse_address(address, options);
	if (options->address.ss_family == AF_INET)
		((struct sockaddr_in *)&options->address)->sin_port =
		    htons((uint16_t)options->port);
	else
		((struct sockaddr_in6 *)&options->address)->sin6_port =
		    htons((uint16_t)options->port);
}

/*
 * Builds the body shared by every message: lines of 78 characters and CRLF,
 * one line of 79 characters when the size leaves a single byte over, and a
 * shorter last line for the rest. No line starts with a dot.
 */
static void
build_body(unsigned long bytes)
{
	unsigned long full_lines = bytes / BODY_LINE_BYTES;
	unsigned long rest = bytes % BODY_LINE_BYTES;
	char *text;
	char *position;
	unsigned long line;

	text = malloc(bytes + 1);
	if (text == NULL)
		system_error("malloc of the message body");
	position = text;
	for (line = 0; line < full_lines; line++) {
		size_t characters = BODY_LINE_BYTES - 2;

		if (rest == 1 && line + 1 == full_lines)
			characters++;
		memset(position, 'x', characters);
		memcpy(position + characters, "\r\n", 2);
		position += characters + 2;
	}
	if (rest >= 2) {
		memset(position, 'y', rest - 2);
		memcpy(position + rest - 2, "\r\n", 2);
		position += rest;
	}
	*position = '\0';
	body_text = text;
	body_length = (size_t)(position - text);
}

static bool
is_held(unsigned long number, unsigned held_percent)
{
	/* Exactly floor(n * percent / 100) of the first n messages are held,
	 * spread evenly over the run. */
	unsigned long long before = (unsigned long long)number * held_percent;

	return (before + held_percent) / 100 != before / 100;
}

static void
report_error(const struct session *session, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void
report_error(const struct session *session, const char *format, ...)
{
	va_list arguments;
	char text[REPLY_BUFFER_BYTES + 256];
	int shown = atomic_fetch_add(&errors_shown, 1);

	if (shown >= ERRORS_SHOWN_MAX)
		return;
	/* One write per line, so that lines of parallel sessions do not mix. */
	va_start(arguments, format);
	vsnprintf(text, sizeof(text), format, arguments);
	va_end(arguments);
	fprintf(stderr, PROGRAM ": session %d: %s\n", session->number, text);
	if (shown + 1 == ERRORS_SHOWN_MAX)
		fprintf(stderr, PROGRAM ": later errors are only counted\n");
}

static void
close_connection(struct session *session)
{
	if (session->fd >= 0)
		close(session->fd);
	session->fd = -1;
	session->input_start = 0;
	session->input_end = 0;
}

static bool
send_all(struct session *session, const char *data, size_t length)
{
	while (length > 0) {
		ssize_t sent = send(session->fd, data, length, MSG_NOSIGNAL);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		data += sent;
		length -= (size_t)sent;
	}
	return true;
}

/*
 * Reads one line into session->last_line without its CRLF. Returns false
 * on an I/O error, a timeout, a closed connection or a line that does not
 * fit the buffer.
 */
static bool
read_line(struct session *session)
{
	for (;;) {
		char *start = session->input + session->input_start;
		size_t available = session->input_end - session->input_start;
		char *newline = memchr(start, '\n', available);
		ssize_t received;

		if (newline != NULL) {
			size_t length = (size_t)(newline - start);

			if (length > 0 && start[length - 1] == '\r')
				length--;
			memcpy(session->last_line, start, length);
			session->last_line[length] = '\0';
			session->input_start += (size_t)(newline - start) + 1;
			return true;
		}
		if (session->input_start > 0) {
			memmove(session->input, start, available);
			session->input_start = 0;
			session->input_end = available;
		}
		if (session->input_end == sizeof(session->input)) {
			snprintf(session->last_line,
			    sizeof(session->last_line),
			    "reply line longer than %zu bytes",
			    sizeof(session->input));
			return false;
		}
		received = recv(session->fd, session->input +
		    session->input_end, sizeof(session->input) -
		    session->input_end, 0);
		if (received > 0) {
			session->input_end += (size_t)received;
			continue;
		}
		if (received < 0 && errno == EINTR)
			continue;
		snprintf(session->last_line, sizeof(session->last_line), "%s",
		    received == 0 ? "connection closed by the server" :
		    errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" :
		    strerror(errno));
		return false;
	}
}

/*
 * Reads a reply, which may have several lines, and counts its code for the
 * stage. Returns the code, or 0 when no valid reply came. In that case the
 * connection is closed and last_line contains the reason.
 */
static int
read_reply(struct session *session, enum stage stage)
{
	for (;;) {
		const char *line = session->last_line;
		int code;

		if (!read_line(session))
			break;
		if (line[0] < '1' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] != ' ' && line[3] != '-' && line[3] != '\0')) {
			char copy[REPLY_BUFFER_BYTES];

			snprintf(copy, sizeof(copy), "%s", line);
			snprintf(session->last_line,
			    sizeof(session->last_line),
			    "malformed reply line \"%.200s\"", copy);
			break;
		}
		if (line[3] == '-')
			continue;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		session->counters.replies[stage][code - REPLY_CODE_MIN]++;
		return code;
	}
	session->counters.no_reply[stage]++;
	close_connection(session);
	return 0;
}

static bool
open_connection(struct session *session)
{
	const struct options *options = session->options;
	struct timeval timeout = { .tv_sec = options->timeout_seconds };
	int one = 1;
	int code;
	char command[64];

	session->fd = socket(options->address.ss_family, SOCK_STREAM, 0);
	if (session->fd < 0)
		system_error("socket");
	if (setsockopt(session->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout,
	    sizeof(timeout)) != 0 ||
	    setsockopt(session->fd, SOL_SOCKET, SO_SNDTIMEO, &timeout,
	    sizeof(timeout)) != 0 ||
	    setsockopt(session->fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) != 0)
		system_error("setsockopt");
	if (connect(session->fd, (const struct sockaddr *)&options->address,
	    options->address_length) != 0) {
		report_error(session, "connect to %s port %d failed: %s",
		    options->address_text, options->port, strerror(errno));
		session->counters.connect_failures++;
		close_connection(session);
		return false;
	}
	session->counters.connections++;

	code = read_reply(session, STAGE_GREETING);
	if (code != 220) {
		report_error(session, "greeting: %s", session->last_line);
		close_connection(session);
		return false;
	}
	snprintf(command, sizeof(command), "EHLO load%d.client.test\r\n",
	    session->number);
	if (!send_all(session, command, strlen(command))) {
		report_error(session, "sending EHLO failed: %s",
		    strerror(errno));
		session->counters.no_reply[STAGE_EHLO]++;
		close_connection(session);
		return false;
	}
	code = read_reply(session, STAGE_EHLO);
	if (code != 250) {
		report_error(session, "EHLO: %s", session->last_line);
		close_connection(session);
		return false;
	}
	return true;
}

static void
quit_connection(struct session *session)
{
	if (session->fd < 0)
		return;
	if (send_all(session, "QUIT\r\n", 6))
		read_reply(session, STAGE_QUIT);
	close_connection(session);
}

/*
 * Sends a command and reads its reply. Returns the code, or 0 when the
 * connection failed. A reply other than expected is reported, and the
 * transaction is reset unless the connection is gone.
 */
static int
command(struct session *session, enum stage stage, const char *text,
    size_t length, int expected, const char *recipient)
{
	int code;

	if (!send_all(session, text, length)) {
		report_error(session, "sending %s for <%s> failed: %s",
		    stage_names[stage], recipient, strerror(errno));
		session->counters.no_reply[stage]++;
		close_connection(session);
		return 0;
	}
	code = read_reply(session, stage);
	if (code == expected)
		return code;
	report_error(session, "%s for <%s>: %s", stage_names[stage],
	    recipient, session->last_line);
	if (code == 421)
		close_connection(session);
	else if (code != 0 && send_all(session, "RSET\r\n", 6))
		read_reply(session, STAGE_RSET);
	return code;
}

static size_t
build_message(struct session *session, unsigned long number,
    const char *recipient)
{
	const struct options *options = session->options;
	int header_length;

	header_length = snprintf(session->message, HEADER_BYTES_MAX,
	    "From: <%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: smtp-load message %lu\r\n"
	    "Message-ID: <smtp-load.%lu.%lu@client.test>\r\n"
	    "\r\n", options->sender, recipient, number, run_id, number);
	/* The parts are bounded by ADDRESS_PART_MAX, so this cannot cut. */
	memcpy(session->message + header_length, body_text, body_length);
	memcpy(session->message + header_length + body_length, ".\r\n", 3);
	return (size_t)header_length + body_length + 3;
}

/* Sends one message. Returns true when the server accepted it with 250. */
static bool
send_message(struct session *session, unsigned long number, bool held)
{
	const struct options *options = session->options;
	char recipient[ADDRESS_PART_MAX + 32];
	char line[ADDRESS_PART_MAX + 64];
	size_t length;

	snprintf(recipient, sizeof(recipient), "load%lu@%s", number,
	    held ? options->held_domain : options->normal_domain);

	length = (size_t)snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\n",
	    options->sender);
	if (command(session, STAGE_MAIL, line, length, 250, recipient) != 250)
		return false;
	length = (size_t)snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n",
	    recipient);
	if (command(session, STAGE_RCPT, line, length, 250, recipient) != 250)
		return false;
	if (command(session, STAGE_DATA, "DATA\r\n", 6, 354, recipient) !=
	    354)
		return false;
	length = build_message(session, number, recipient);
	return command(session, STAGE_END_OF_DATA, session->message, length,
	    250, recipient) == 250;
}

static void *
run_session(void *argument)
{
	struct session *session = argument;
	const struct options *options = session->options;
	unsigned long on_connection = 0;

	for (;;) {
		unsigned long number = atomic_fetch_add(&next_message, 1);
		bool held;

		if (number >= options->messages)
			break;
		held = is_held(number, options->held_percent);
		if (held)
			session->counters.sent_held++;
		else
			session->counters.sent_normal++;

		if (session->fd < 0) {
			if (!open_connection(session))
				continue;
			on_connection = 0;
		}
		if (send_message(session, number, held)) {
			if (held)
				session->counters.accepted_held++;
			else
				session->counters.accepted_normal++;
		}
		if (++on_connection >= options->per_connection)
			quit_connection(session);
	}
	quit_connection(session);
	return NULL;
}

static void
add_counters(struct counters *total, const struct counters *part)
{
	int stage;
	int code;

	for (stage = 0; stage < STAGE_COUNT; stage++) {
		for (code = 0; code < REPLY_CODE_COUNT; code++)
			total->replies[stage][code] +=
			    part->replies[stage][code];
		total->no_reply[stage] += part->no_reply[stage];
	}
	total->connections += part->connections;
	total->connect_failures += part->connect_failures;
	total->sent_held += part->sent_held;
	total->sent_normal += part->sent_normal;
	total->accepted_held += part->accepted_held;
	total->accepted_normal += part->accepted_normal;
}

static double
seconds_between(const struct timespec *start, const struct timespec *end)
{
	return (double)(end->tv_sec - start->tv_sec) +
	    (double)(end->tv_nsec - start->tv_nsec) / 1e9;
}

static double
own_cpu_seconds(void)
{
	struct rusage usage;

	if (getrusage(RUSAGE_SELF, &usage) != 0)
		system_error("getrusage");
	return (double)usage.ru_utime.tv_sec +
	    (double)usage.ru_utime.tv_usec / 1e6 +
	    (double)usage.ru_stime.tv_sec +
	    (double)usage.ru_stime.tv_usec / 1e6;
}

static void
print_text(const struct options *options, const struct counters *total,
    double seconds, double cpu_seconds)
{
	unsigned long accepted = total->accepted_held +
	    total->accepted_normal;
	int stage;
	int code;
	bool any_missing = false;

	printf("load: %lu messages to %s port %d over %d sessions, %lu per "
	    "connection, %u%% for %s, bodies of %zu bytes\n",
	    options->messages, options->address_text, options->port,
	    options->sessions, options->per_connection,
	    options->held_percent, options->held_domain, body_length);
	printf("accepted %lu of %lu: %s %lu of %lu, %s %lu of %lu\n",
	    accepted, options->messages, options->held_domain,
	    total->accepted_held, total->sent_held, options->normal_domain,
	    total->accepted_normal, total->sent_normal);
	printf("connections: %lu opened, %lu failed\n", total->connections,
	    total->connect_failures);
	printf("time: %.3f s, %.1f messages/s accepted; " PROGRAM " CPU "
	    "%.3f s\n", seconds, seconds > 0 ? (double)accepted / seconds : 0,
	    cpu_seconds);
	printf("replies:%s\n", total->connections == 0 ? " none" : "");
	if (total->connections > 0)
		printf("  %-12s %4s %10s\n", "stage", "code", "count");
	for (stage = 0; stage < STAGE_COUNT; stage++)
		for (code = 0; code < REPLY_CODE_COUNT; code++)
			if (total->replies[stage][code] > 0)
				printf("  %-12s %4d %10lu\n",
				    stage_names[stage], code + REPLY_CODE_MIN,
				    total->replies[stage][code]);
	for (stage = 0; stage < STAGE_COUNT; stage++)
		if (total->no_reply[stage] > 0) {
			if (!any_missing)
				printf("no reply (connection failed or timed "
				    "out):\n");
			any_missing = true;
			printf("  %-12s %15lu\n", stage_names[stage],
			    total->no_reply[stage]);
		}
}

static void
print_json(const struct options *options, const struct counters *total,
    double seconds, double cpu_seconds)
{
	unsigned long accepted = total->accepted_held +
	    total->accepted_normal;
	const char *separator = "";
	int stage;
	int code;

	/* Domains and the sender contain no quote or backslash (checked by
	 * check_address_part), so they need no escaping here. */
	printf("{\"messages\": %lu, \"sessions\": %d, \"per_connection\": "
	    "%lu, \"held_percent\": %u, \"body_bytes\": %zu, "
	    "\"held_domain\": \"%s\", \"normal_domain\": \"%s\", "
	    "\"sent_held\": %lu, \"sent_normal\": %lu, "
	    "\"accepted_held\": %lu, \"accepted_normal\": %lu, "
	    "\"accepted\": %lu, \"connections\": %lu, "
	    "\"connect_failures\": %lu, \"seconds\": %.6f, "
	    "\"messages_per_second\": %.3f, \"cpu_seconds\": %.3f, "
	    "\"replies\": {",
	    options->messages, options->sessions, options->per_connection,
	    options->held_percent, body_length, options->held_domain,
	    options->normal_domain, total->sent_held, total->sent_normal,
	    total->accepted_held, total->accepted_normal, accepted,
	    total->connections, total->connect_failures, seconds,
	    seconds > 0 ? (double)accepted / seconds : 0, cpu_seconds);
	for (stage = 0; stage < STAGE_COUNT; stage++)
		for (code = 0; code < REPLY_CODE_COUNT; code++)
			if (total->replies[stage][code] > 0) {
				printf("%s\"%s %d\": %lu", separator,
				    stage_names[stage], code + REPLY_CODE_MIN,
				    total->replies[stage][code]);
				separator = ", ";
			}
	printf("}, \"no_reply\": {");
	separator = "";
	for (stage = 0; stage < STAGE_COUNT; stage++)
		if (total->no_reply[stage] > 0) {
			printf("%s\"%s\": %lu", separator, stage_names[stage],
			    total->no_reply[stage]);
			separator = ", ";
		}
	printf("}}\n");
}

int
main(int argc, char **argv)
{
	struct options options;
	struct session *sessions;
	pthread_t *threads;
	struct counters *total;
	struct timespec started;
	struct timespec finished;
	double seconds;
	int i;
	int error;

	parse_options(argc, argv, &options);
	if ((unsigned long)options.sessions > options.messages)
		options.sessions = (int)options.messages;
	build_body(options.body_bytes);
	run_id = (unsigned long)getpid();

	sessions = calloc((size_t)options.sessions, sizeof(*sessions));
	threads = calloc((size_t)options.sessions, sizeof(*threads));
	total = calloc(1, sizeof(*total));
	if (sessions == NULL || threads == NULL || total == NULL)
		system_error("calloc of the sessions");

	clock_gettime(CLOCK_MONOTONIC, &started);
	for (i = 0; i < options.sessions; i++) {
		struct session *session = &sessions[i];

		session->options = &options;
		session->number = i;
		session->fd = -1;
		session->message = malloc(HEADER_BYTES_MAX + body_length + 3);
		if (session->message == NULL)
			system_error("malloc of a message buffer");
		error = pthread_create(&threads[i], NULL, run_session, session);
		if (error != 0) {
			errno = error;
			system_error("pthread_create");
		}
	}
	for (i = 0; i < options.sessions; i++) {
		error = pthread_join(threads[i], NULL);
		if (error != 0) {
			errno = error;
			system_error("pthread_join");
		}
		add_counters(total, &sessions[i].counters);
		free(sessions[i].message);
	}
	clock_gettime(CLOCK_MONOTONIC, &finished);
	seconds = seconds_between(&started, &finished);

	if (options.json)
		print_json(&options, total, seconds, own_cpu_seconds());
	else
		print_text(&options, total, seconds, own_cpu_seconds());
	error = total->accepted_held + total->accepted_normal ==
	    options.messages ? 0 : 1;
	free(total);
	free(threads);
	free(sessions);
	free(body_text);
	return error;
}
