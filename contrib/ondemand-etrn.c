/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ondemand-etrn: requests that an SMTP server start delivering the mail it
 * has queued for one or more domains, with the ETRN command of RFC 1985,
 * and reports each reply in a line on stdout and in the exit status.
 */

#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "etrn.h"
#include "smtp_client.h"

#define PROGRAM "ondemand-etrn"
#define DEFAULT_PORT "25"
#define DEFAULT_TIMEOUT 30
#define TIMEOUT_MAX 3600

/* Maximum octets of server text shown in one output line. */
#define SHOWN_TEXT_MAX 1000

struct options {
	const char *port;
	int timeout_seconds;
	int family;
	const char *helo_name;		/* NULL: derived at run time */
	bool verbose;
	char server[NI_MAXHOST];
	char **domains;
	int domain_count;
};

static void
print_usage(FILE *stream)
{
	fprintf(stream,
	    "usage: " PROGRAM " [-p PORT] [-t SECONDS] [-4|-6] [-H HELO-NAME] "
	    "[-v] SERVER DOMAIN...\n"
	    "\n"
	    "Sends ETRN for each DOMAIN to SERVER, so that the server starts "
	    "delivering\n"
	    "the mail it holds for that domain.  DOMAIN is example.test,\n"
	    "@example.test (the domain and its subdomains) or #queuename.\n"
	    "\n"
	    "  -p PORT      server port number or service name (default 25)\n"
	    "  -t SECONDS   time limit for each lookup, connect, command and "
	    "reply,\n"
	    "               from 1 to %d (default %d)\n"
	    "  -4, -6       connect over IPv4 only, or IPv6 only\n"
	    "  -H NAME      name sent with EHLO/HELO (default: this host's "
	    "name, or its\n"
	    "               address literal when the name has no dot)\n"
	    "  -v           copy the SMTP dialogue to stderr\n"
	    "  -h           show this help\n"
	    "  -V           show the version\n"
	    "\n"
	    "Exit status: 0 delivery started, 1 no messages waiting, "
	    "2 temporary failure,\n"
	    "3 rejected, 4 connection failed, 5 timed out, 6 invalid reply, "
	    "64 usage error.\n"
	    "With several domains the largest status wins.  See "
	    PROGRAM "(1).\n", TIMEOUT_MAX, DEFAULT_TIMEOUT);
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
	exit(ETRN_EXIT_USAGE);
}

static void
check_port(const char *port)
{
	char *end;
	long number;

	if (port[0] >= '0' && port[0] <= '9') {
		errno = 0;
		number = strtol(port, &end, 10);
		if (errno != 0 || *end != '\0' || number < 1 ||
		    number > 65535)
			usage_error("invalid port \"%s\" for -p: expected a "
			    "number from 1 to 65535 or a service name such "
			    "as smtp", port);
		return;
	}
	if (getservbyname(port, "tcp") == NULL)
		usage_error("invalid port \"%s\" for -p: no such TCP service "
		    "in /etc/services. Give a port number such as 25", port);
}

static int
parse_timeout(const char *text)
{
	char *end;
	long seconds;

	errno = 0;
	seconds = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || seconds < 1 ||
	    seconds > TIMEOUT_MAX)
		usage_error("invalid timeout \"%s\" for -t: expected whole "
		    "seconds from 1 to %d", text, TIMEOUT_MAX);
	return (int)seconds;
}

/* Copies the server argument, removing the brackets of "[2001:db8::1]". */
static void
store_server(struct options *options, const char *server)
{
	size_t length = strlen(server);

	if (length >= 2 && server[0] == '[' && server[length - 1] == ']') {
		server++;
		length -= 2;
	}
	if (length == 0 || length >= sizeof(options->server))
		usage_error("invalid server \"%s\": expected a host name or "
		    "an IP address", server);
	memcpy(options->server, server, length);
	options->server[length] = '\0';
}

static void
parse_options(int argc, char **argv, struct options *options)
{
	char message[ETRN_MESSAGE_SIZE];
	bool arguments_valid = true;
	int option;

	memset(options, 0, sizeof(*options));
	options->port = DEFAULT_PORT;
	options->timeout_seconds = DEFAULT_TIMEOUT;
	options->family = AF_UNSPEC;

	while ((option = getopt(argc, argv, "p:t:46H:vhV")) != -1) {
		switch (option) {
		case 'p':
			check_port(optarg);
			options->port = optarg;
			break;
		case 't':
			options->timeout_seconds = parse_timeout(optarg);
			break;
		case '4':
		case '6':
			if (options->family != AF_UNSPEC &&
			    options->family != (option == '4' ? AF_INET :
			    AF_INET6))
				usage_error("%s", "-4 and -6 cannot be used "
				    "together");
			options->family = option == '4' ? AF_INET : AF_INET6;
			break;
		case 'H':
			if (!etrn_helo_name_check(optarg, message,
			    sizeof(message)))
				usage_error("%s", message);
			options->helo_name = optarg;
			break;
		case 'v':
			options->verbose = true;
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		case 'V':
			printf(PROGRAM " (%s) %s\n", PACKAGE_NAME,
			    PACKAGE_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try '" PROGRAM " -h' for help.\n");
			exit(ETRN_EXIT_USAGE);
		}
	}

	if (argc - optind < 2)
		usage_error("%s", argc - optind == 0 ? "missing SERVER and "
		    "DOMAIN arguments" : "missing DOMAIN argument after the "
		    "server");
	store_server(options, argv[optind]);
	options->domains = argv + optind + 1;
	options->domain_count = argc - optind - 1;

	/* Check every domain before connecting, and report all bad ones. */
	for (int i = 0; i < options->domain_count; i++) {
		if (!etrn_argument_check(options->domains[i], message,
		    sizeof(message))) {
			fprintf(stderr, PROGRAM ": %s\n", message);
			arguments_valid = false;
		}
	}
	if (!arguments_valid)
		exit(ETRN_EXIT_USAGE);
}

/* Exit status for a failed network step. */
static enum etrn_exit_status
exit_status_for(enum smtp_io_status status)
{
	switch (status) {
	case SMTP_IO_OK:
		return ETRN_EXIT_STARTED;
	case SMTP_IO_TIMEOUT:
		return ETRN_EXIT_TIMEOUT;
	case SMTP_IO_PROTOCOL:
		return ETRN_EXIT_PROTOCOL;
	case SMTP_IO_NO_MEMORY:
		return ETRN_EXIT_OSERR;
	case SMTP_IO_NO_ADDRESS:
	case SMTP_IO_CLOSED:
	case SMTP_IO_ERROR:
		break;
	}
	return ETRN_EXIT_CONNECT;
}

static enum etrn_exit_status
report_connect_failure(const struct smtp_connection *connection,
    enum smtp_io_status status, const char *server)
{
	switch (status) {
	case SMTP_IO_NO_ADDRESS:
		fprintf(stderr, PROGRAM ": lookup of server name \"%s\" "
		    "failed: %s. Check the name and the DNS configuration, or "
		    "give an IP address\n", server, connection->error);
		break;
	case SMTP_IO_TIMEOUT:
		if (!connection->resolved)
			fprintf(stderr, PROGRAM ": lookup of server name "
			    "\"%s\" timed out: %s. Check the DNS "
			    "configuration, give an IP address, or raise -t\n",
			    server, connection->error);
		else
			fprintf(stderr, PROGRAM ": connection to %s timed out: "
			    "%s. Check that the server is up and that no "
			    "firewall drops the connection, or raise -t\n",
			    connection->peer, connection->error);
		break;
	case SMTP_IO_NO_MEMORY:
		fprintf(stderr, PROGRAM ": out of memory\n");
		break;
	default:
		fprintf(stderr, PROGRAM ": connection to %s failed: %s. "
		    "Check the server name and port (-p), and that the server "
		    "accepts SMTP connections\n", connection->peer,
		    connection->error);
		break;
	}
	return exit_status_for(status);
}

/*
 * Reports a failure while sending command or receiving its reply.  command
 * is NULL for the greeting.
 */
static enum etrn_exit_status
report_step_failure(const struct smtp_connection *connection,
    enum smtp_io_status status, const char *command)
{
	char reply[300];

	if (command == NULL)
		snprintf(reply, sizeof(reply), "greeting");
	else
		snprintf(reply, sizeof(reply), "reply to %s", command);

	switch (status) {
	case SMTP_IO_TIMEOUT:
		fprintf(stderr, PROGRAM ": %s: timed out waiting for the %s: "
		    "%s. Check that this port belongs to an SMTP server that "
		    "is not overloaded, or raise -t\n", connection->peer,
		    reply, connection->error);
		break;
	case SMTP_IO_CLOSED:
		fprintf(stderr, PROGRAM ": %s closed the connection before "
		    "sending the %s. Check the server's mail log for the "
		    "reason\n", connection->peer, reply);
		break;
	case SMTP_IO_PROTOCOL:
		fprintf(stderr, PROGRAM ": %s sent an invalid %s: %s. Check "
		    "that this port belongs to an SMTP server\n",
		    connection->peer, reply, connection->error);
		break;
	case SMTP_IO_NO_MEMORY:
		fprintf(stderr, PROGRAM ": out of memory\n");
		break;
	default:
		fprintf(stderr, PROGRAM ": %s: sending a command or receiving "
		    "the %s failed: %s\n", connection->peer, reply,
		    connection->error);
		break;
	}
	return exit_status_for(status);
}

/*
 * Writes the reply as one line, "CODE ENHANCED TEXT", with the lines of a
 * multi-line reply joined by spaces and unprintable octets escaped.
 */
static void
format_reply(const struct smtp_reply *reply, char *out, size_t size)
{
	char *joined = strdup(reply->text != NULL ? reply->text : "");
	char escaped[SHOWN_TEXT_MAX * 4 + 4];
	int used;

	if (joined == NULL) {
		snprintf(out, size, "%d", reply->code);
		return;
	}
	for (char *p = joined; *p != '\0'; p++) {
		if (*p == '\n')
			*p = ' ';
	}
	etrn_escape_text(escaped, sizeof(escaped), joined, strlen(joined),
	    SHOWN_TEXT_MAX);
	free(joined);

	used = snprintf(out, size, "%d", reply->code);
	if (used > 0 && (size_t)used < size && reply->enhanced[0] != '\0')
		used += snprintf(out + used, size - (size_t)used, " %s",
		    reply->enhanced);
	if (used > 0 && (size_t)used < size && escaped[0] != '\0')
		snprintf(out + used, size - (size_t)used, " %s", escaped);
}

/*
 * Sends command and receives its reply.  On failure reports it and stores
 * the exit status in *failure.
 */
static const struct smtp_reply *
exchange(struct smtp_connection *connection, const char *command,
    enum etrn_exit_status *failure)
{
	const struct smtp_reply *reply = NULL;
	enum smtp_io_status status;

	status = smtp_send_command(connection, command);
	if (status == SMTP_IO_OK)
		status = smtp_read_reply(connection, &reply);
	if (status != SMTP_IO_OK) {
		*failure = report_step_failure(connection, status, command);
		return NULL;
	}
	return reply;
}

/* Picks the EHLO name: this host's name if it has a dot, else its address. */
static void
default_helo_name(const struct smtp_connection *connection, char *out,
    size_t size)
{
	char host[256];
	char message[ETRN_MESSAGE_SIZE];

	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		if (strchr(host, '.') != NULL &&
		    etrn_helo_name_check(host, message, sizeof(message))) {
			snprintf(out, size, "%s", host);
			return;
		}
	}
	if (!smtp_local_address_literal(connection, out, size))
		snprintf(out, size, "localhost");
}

/*
 * Sends EHLO, or HELO when the server rejects EHLO, and warns when ETRN is
 * not advertised.  Returns true when the session may go on.  On failure
 * *may_quit is set to whether the server still expects a command, so that
 * QUIT may be sent.
 */
static bool
greet(struct smtp_connection *connection, const char *helo_name,
    enum etrn_exit_status *failure, bool *may_quit)
{
	char command[600];
	char shown[SHOWN_TEXT_MAX * 4 + 32];
	const struct smtp_reply *reply;

	*may_quit = false;
	snprintf(command, sizeof(command), "EHLO %s", helo_name);
	reply = exchange(connection, command, failure);
	if (reply == NULL)
		return false;

	if (reply->code / 100 == 2) {
		if (!smtp_reply_has_keyword(reply, "ETRN"))
			fprintf(stderr, PROGRAM ": warning: %s does not list "
			    "ETRN in its EHLO reply, so it may not support "
			    "it. Sending ETRN anyway\n", connection->peer);
		return true;
	}

	if (reply->code / 100 == 5) {
		snprintf(command, sizeof(command), "HELO %s", helo_name);
		reply = exchange(connection, command, failure);
		if (reply == NULL)
			return false;
		if (reply->code / 100 == 2) {
			fprintf(stderr, PROGRAM ": warning: %s rejected EHLO "
			    "and accepted HELO, so it cannot list ETRN as "
			    "supported. Sending ETRN anyway\n",
			    connection->peer);
			return true;
		}
	}

	*may_quit = reply->code != 421;
	format_reply(reply, shown, sizeof(shown));
	if (reply->code / 100 == 4) {
		fprintf(stderr, PROGRAM ": %s rejected %s temporarily (%s). "
		    "Try again later\n", connection->peer, command, shown);
		*failure = ETRN_EXIT_TEMPFAIL;
	} else {
		fprintf(stderr, PROGRAM ": %s rejected %s (%s). Check the "
		    "HELO name (-H) and that this host may use the server\n",
		    connection->peer, command, shown);
		*failure = ETRN_EXIT_REJECTED;
	}
	return false;
}

/* Sends QUIT and reads the reply, which no longer changes the result. */
static void
quit(struct smtp_connection *connection)
{
	const struct smtp_reply *reply;

	if (smtp_send_command(connection, "QUIT") == SMTP_IO_OK)
		(void)smtp_read_reply(connection, &reply);
}

/* Checks the greeting and returns true when the server accepts a session. */
static bool
check_greeting(struct smtp_connection *connection,
    enum etrn_exit_status *failure)
{
	char shown[SHOWN_TEXT_MAX * 4 + 32];
	const struct smtp_reply *reply;
	enum smtp_io_status status;

	status = smtp_read_reply(connection, &reply);
	if (status != SMTP_IO_OK) {
		*failure = report_step_failure(connection, status, NULL);
		return false;
	}
	if (reply->code / 100 == 2)
		return true;

	format_reply(reply, shown, sizeof(shown));
	if (reply->code / 100 == 4) {
		fprintf(stderr, PROGRAM ": %s does not accept sessions now "
		    "(%s). Try again later\n", connection->peer, shown);
		*failure = ETRN_EXIT_TEMPFAIL;
	} else {
		fprintf(stderr, PROGRAM ": %s rejected the session (%s). "
		    "Check that this host may connect to the server, and "
		    "the server's mail log\n", connection->peer, shown);
		*failure = ETRN_EXIT_REJECTED;
		/* RFC 5321 section 3.1: after a 554 greeting, send QUIT. */
		quit(connection);
	}
	return false;
}

/* Names the domains after last whose ETRN was never sent. */
static void
report_unrequested(const struct options *options, int last)
{
	if (last + 1 >= options->domain_count)
		return;
	fprintf(stderr, PROGRAM ": the session ended before ETRN was sent "
	    "for:");
	for (int i = last + 1; i < options->domain_count; i++)
		fprintf(stderr, " %s", options->domains[i]);
	fprintf(stderr, "\n");
}

/* Runs the whole SMTP session and returns the exit status. */
static enum etrn_exit_status
run_session(const struct options *options)
{
	struct smtp_connection connection;
	enum etrn_exit_status result = ETRN_EXIT_STARTED;
	enum etrn_exit_status failure = ETRN_EXIT_STARTED;
	enum smtp_io_status status;
	bool may_quit;
	char helo_name[300];
	int i;

	status = smtp_connect(&connection, options->server, options->port,
	    options->family, options->timeout_seconds, options->verbose);
	if (status != SMTP_IO_OK) {
		result = report_connect_failure(&connection, status,
		    options->server);
		smtp_close(&connection);
		return result;
	}

	if (!check_greeting(&connection, &failure)) {
		smtp_close(&connection);
		return failure;
	}
	if (options->helo_name != NULL)
		snprintf(helo_name, sizeof(helo_name), "%s",
		    options->helo_name);
	else
		default_helo_name(&connection, helo_name, sizeof(helo_name));
	if (!greet(&connection, helo_name, &failure, &may_quit)) {
		if (may_quit)
			quit(&connection);
		smtp_close(&connection);
		return failure;
	}
	may_quit = true;

	for (i = 0; i < options->domain_count; i++) {
		const char *domain = options->domains[i];
		char command[300];
		char description[200];
		char shown[SHOWN_TEXT_MAX * 4 + 32];
		const struct smtp_reply *reply;
		enum etrn_exit_status domain_status;

		snprintf(command, sizeof(command), "ETRN %s", domain);
		reply = exchange(&connection, command, &failure);
		if (reply == NULL) {
			/* No reply: the connection is unusable, even for QUIT. */
			may_quit = false;
			result = failure > result ? failure : result;
			break;
		}
		domain_status = etrn_classify_reply(reply, description,
		    sizeof(description));
		format_reply(reply, shown, sizeof(shown));
		printf("%s: %s (%s)\n", domain, description, shown);
		if (domain_status > result)
			result = domain_status;
		/*
		 * After 421 the server closes the connection, and after a
		 * reply ETRN cannot have, the session state is unknown.
		 */
		if (reply->code == 421 || domain_status == ETRN_EXIT_PROTOCOL) {
			may_quit = false;
			break;
		}
	}

	report_unrequested(options, i);
	if (may_quit)
		quit(&connection);
	smtp_close(&connection);
	return result;
}

int
main(int argc, char **argv)
{
	struct options options;

	/* Each domain's line appears at once, even through a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_options(argc, argv, &options);
	return run_session(&options);
}
