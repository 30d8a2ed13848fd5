/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * SMTP client connection with a deadline on every step.  The socket is
 * non-blocking and every wait is a poll() bounded by the time left, so a
 * server that stops sending or reading cannot hold the client longer than
 * the timeout.
 */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "etrn.h"
#include "smtp_client.h"

/* Maximum octets of one line copied to stderr by -v. */
#define VERBOSE_LINE_MAX 1024

static long long
monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static long long
deadline_after(int seconds)
{
	return monotonic_ms() + (long long)seconds * 1000;
}

/* Waits until fd is ready for events or the deadline passes. */
static enum smtp_io_status
wait_for(int fd, short events, long long deadline)
{
	struct pollfd entry = { .fd = fd, .events = events };

	for (;;) {
		long long left = deadline - monotonic_ms();
		int ready;

		if (left <= 0)
			return SMTP_IO_TIMEOUT;
		ready = poll(&entry, 1, left > 60000 ? 60000 : (int)left);
		if (ready > 0)
			return SMTP_IO_OK;
		if (ready < 0 && errno != EINTR)
			return SMTP_IO_ERROR;
	}
}

/*
 * Name lookup in a thread, because getaddrinfo() has no timeout of its
 * own.  When the caller gives up, the thread finishes alone and frees the
 * lookup, unless the program has exited by then.
 */
struct lookup {
	pthread_mutex_t lock;
	pthread_cond_t finished;
	bool done;
	bool abandoned;
	char *host;
	char *port;
	struct addrinfo hints;
	struct addrinfo *result;
	int error;		/* getaddrinfo()'s result */
	int system_error;	/* errno, for EAI_SYSTEM */
};

static void
lookup_free(struct lookup *lookup)
{
	pthread_mutex_destroy(&lookup->lock);
	pthread_cond_destroy(&lookup->finished);
	free(lookup->host);
	free(lookup->port);
	free(lookup);
}

static void *
lookup_run(void *argument)
{
	struct lookup *lookup = argument;
	struct addrinfo *result = NULL;
	int error, system_error;

	error = getaddrinfo(lookup->host, lookup->port, &lookup->hints,
	    &result);
	/* errno belongs to this thread, so pass it on with the result. */
	system_error = error == EAI_SYSTEM ? errno : 0;

	pthread_mutex_lock(&lookup->lock);
	if (lookup->abandoned) {
		pthread_mutex_unlock(&lookup->lock);
		if (result != NULL)
			freeaddrinfo(result);
		lookup_free(lookup);
		return NULL;
	}
	lookup->result = result;
	lookup->error = error;
	lookup->system_error = system_error;
	lookup->done = true;
	pthread_cond_signal(&lookup->finished);
	pthread_mutex_unlock(&lookup->lock);
	return NULL;
}

static struct lookup *
lookup_new(const char *host, const char *port, int family)
{
	struct lookup *lookup = calloc(1, sizeof(*lookup));
	pthread_condattr_t attributes;

	if (lookup == NULL)
		return NULL;
	lookup->host = strdup(host);
	lookup->port = strdup(port);
	if (lookup->host == NULL || lookup->port == NULL) {
		free(lookup->host);
		free(lookup->port);
		free(lookup);
		return NULL;
	}
	lookup->hints.ai_family = family;
	lookup->hints.ai_socktype = SOCK_STREAM;
	lookup->hints.ai_protocol = IPPROTO_TCP;

	pthread_mutex_init(&lookup->lock, NULL);
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&lookup->finished, &attributes);
	pthread_condattr_destroy(&attributes);
	return lookup;
}

/* Resolves host and port within the connection's timeout. */
static enum smtp_io_status
resolve(struct smtp_connection *connection, const char *host,
    const char *port, int family, struct addrinfo **result)
{
	struct lookup *lookup = lookup_new(host, port, family);
	struct timespec until;
	pthread_t thread;
	pthread_attr_t attributes;
	int error, system_error;

	if (lookup == NULL)
		return SMTP_IO_NO_MEMORY;

	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	error = pthread_create(&thread, &attributes, lookup_run, lookup);
	pthread_attr_destroy(&attributes);
	if (error != 0) {
		snprintf(connection->error, sizeof(connection->error),
		    "cannot start the name lookup: %s", strerror(error));
		lookup_free(lookup);
		errno = error;
		return SMTP_IO_ERROR;
	}

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += connection->timeout_seconds;

	pthread_mutex_lock(&lookup->lock);
	while (!lookup->done) {
		if (pthread_cond_timedwait(&lookup->finished, &lookup->lock,
		    &until) == ETIMEDOUT && !lookup->done) {
			lookup->abandoned = true;
			pthread_mutex_unlock(&lookup->lock);
			snprintf(connection->error, sizeof(connection->error),
			    "no result within %d s",
			    connection->timeout_seconds);
			return SMTP_IO_TIMEOUT;
		}
	}
	pthread_mutex_unlock(&lookup->lock);

	error = lookup->error;
	system_error = lookup->system_error;
	*result = lookup->result;
	lookup_free(lookup);
	if (error != 0) {
		snprintf(connection->error, sizeof(connection->error), "%s",
		    error == EAI_SYSTEM ? strerror(system_error) :
		    gai_strerror(error));
		return SMTP_IO_NO_ADDRESS;
	}
	return SMTP_IO_OK;
}

static void
describe_peer(struct smtp_connection *connection, const char *host,
    const char *port, const struct addrinfo *address)
{
	char numeric[INET6_ADDRSTRLEN] = "";

	if (address != NULL)
		getnameinfo(address->ai_addr, address->ai_addrlen, numeric,
		    sizeof(numeric), NULL, 0, NI_NUMERICHOST);
	if (numeric[0] == '\0' || strcmp(numeric, host) == 0)
		snprintf(connection->peer, sizeof(connection->peer),
		    "%s port %s", host, port);
	else
		snprintf(connection->peer, sizeof(connection->peer),
		    "%s (%s) port %s", host, numeric, port);
}

/* Connects to one address.  On failure closes the socket and sets error. */
static enum smtp_io_status
connect_address(struct smtp_connection *connection,
    const struct addrinfo *address)
{
	enum smtp_io_status status;
	socklen_t length = sizeof(int);
	int fd, error = 0;

	fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, address->ai_protocol);
	if (fd < 0) {
		snprintf(connection->error, sizeof(connection->error),
		    "cannot create a socket: %s", strerror(errno));
		return SMTP_IO_ERROR;
	}

	if (connect(fd, address->ai_addr, address->ai_addrlen) == 0) {
		connection->fd = fd;
		return SMTP_IO_OK;
	}
	if (errno != EINPROGRESS) {
		snprintf(connection->error, sizeof(connection->error), "%s",
		    strerror(errno));
		close(fd);
		return SMTP_IO_ERROR;
	}

	status = wait_for(fd, POLLOUT, deadline_after(
	    connection->timeout_seconds));
	if (status == SMTP_IO_TIMEOUT) {
		snprintf(connection->error, sizeof(connection->error),
		    "no connection within %d s",
		    connection->timeout_seconds);
		close(fd);
		return status;
	}
	if (status == SMTP_IO_OK &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0)
		error = errno;
	if (status != SMTP_IO_OK)
		error = errno;
	if (error != 0) {
		snprintf(connection->error, sizeof(connection->error), "%s",
		    strerror(error));
		close(fd);
		return SMTP_IO_ERROR;
	}
	connection->fd = fd;
	return SMTP_IO_OK;
}

static void
print_server_line(const char *line, size_t length, void *context)
{
	char escaped[VERBOSE_LINE_MAX * 4 + 4];

	(void)context;
	etrn_escape_text(escaped, sizeof(escaped), line, length,
	    VERBOSE_LINE_MAX);
	fprintf(stderr, "S: %s\n", escaped);
}

enum smtp_io_status
smtp_connect(struct smtp_connection *connection, const char *host,
    const char *port, int family, int timeout_seconds, bool verbose)
{
	struct addrinfo *addresses = NULL;
	const struct addrinfo *address;
	enum smtp_io_status status;
	bool all_timed_out = true;

	memset(connection, 0, sizeof(*connection));
	connection->fd = -1;
	connection->timeout_seconds = timeout_seconds;
	connection->verbose = verbose;
	smtp_reply_parser_init(&connection->parser);
	if (verbose)
		connection->parser.on_line = print_server_line;
	describe_peer(connection, host, port, NULL);

	status = resolve(connection, host, port, family, &addresses);
	if (status != SMTP_IO_OK)
		return status;
	connection->resolved = true;

	status = SMTP_IO_ERROR;
	for (address = addresses; address != NULL;
	    address = address->ai_next) {
		describe_peer(connection, host, port, address);
		if (verbose)
			fprintf(stderr, "ondemand-etrn: connecting to %s\n",
			    connection->peer);
		status = connect_address(connection, address);
		if (status == SMTP_IO_OK)
			break;
		if (status != SMTP_IO_TIMEOUT)
			all_timed_out = false;
		if (verbose)
			fprintf(stderr, "ondemand-etrn: connection to %s "
			    "failed: %s\n", connection->peer,
			    connection->error);
	}
	freeaddrinfo(addresses);
	if (status != SMTP_IO_OK && all_timed_out)
		return SMTP_IO_TIMEOUT;
	return status;
}

enum smtp_io_status
smtp_send_command(struct smtp_connection *connection, const char *command)
{
	long long deadline = deadline_after(connection->timeout_seconds);
	size_t length = strlen(command);
	char *line;
	size_t sent = 0;
	enum smtp_io_status status = SMTP_IO_OK;

	if (connection->verbose)
		fprintf(stderr, "C: %s\n", command);

	line = malloc(length + 3);
	if (line == NULL)
		return SMTP_IO_NO_MEMORY;
	memcpy(line, command, length);
	memcpy(line + length, "\r\n", 3);
	length += 2;

	while (sent < length) {
		/* MSG_NOSIGNAL: a closed connection is an error, not SIGPIPE. */
		ssize_t written = send(connection->fd, line + sent,
		    length - sent, MSG_NOSIGNAL);

		if (written >= 0) {
			sent += (size_t)written;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			status = wait_for(connection->fd, POLLOUT, deadline);
			if (status == SMTP_IO_OK)
				continue;
			if (status == SMTP_IO_ERROR)
				snprintf(connection->error,
				    sizeof(connection->error), "%s",
				    strerror(errno));
			break;
		}
		if (errno == EPIPE || errno == ECONNRESET) {
			snprintf(connection->error, sizeof(connection->error),
			    "%s", strerror(errno));
			status = SMTP_IO_CLOSED;
			break;
		}
		snprintf(connection->error, sizeof(connection->error), "%s",
		    strerror(errno));
		status = SMTP_IO_ERROR;
		break;
	}
	free(line);
	return status;
}

/* Describes a parser error with the start of the offending line. */
static void
describe_parse_error(struct smtp_connection *connection)
{
	const struct smtp_reply_parser *parser = &connection->parser;
	char escaped[80 * 4 + 4];

	etrn_escape_text(escaped, sizeof(escaped), parser->line,
	    parser->line_length, 80);
	if (parser->status == SMTP_REPLY_ERR_LINE_TOO_LONG)
		snprintf(connection->error, sizeof(connection->error),
		    "%s, starting \"%s\"", smtp_reply_status_text(
		    parser->status), escaped);
	else
		snprintf(connection->error, sizeof(connection->error),
		    "%s: \"%s\"", smtp_reply_status_text(parser->status),
		    escaped);
}

enum smtp_io_status
smtp_read_reply(struct smtp_connection *connection,
    const struct smtp_reply **reply)
{
	long long deadline = deadline_after(connection->timeout_seconds);
	struct smtp_reply_parser *parser = &connection->parser;

	smtp_reply_parser_reset(parser);
	for (;;) {
		enum smtp_reply_status parsed;
		enum smtp_io_status status;
		size_t consumed;
		ssize_t received;

		parsed = smtp_reply_parser_feed(parser,
		    connection->buffer + connection->buffer_start,
		    connection->buffer_end - connection->buffer_start,
		    &consumed);
		connection->buffer_start += consumed;
		if (parsed == SMTP_REPLY_COMPLETE) {
			*reply = &parser->reply;
			return SMTP_IO_OK;
		}
		if (parsed == SMTP_REPLY_ERR_NO_MEMORY)
			return SMTP_IO_NO_MEMORY;
		if (parsed != SMTP_REPLY_INCOMPLETE) {
			describe_parse_error(connection);
			return SMTP_IO_PROTOCOL;
		}

		connection->buffer_start = 0;
		connection->buffer_end = 0;
		received = recv(connection->fd, connection->buffer,
		    sizeof(connection->buffer), 0);
		if (received > 0) {
			connection->buffer_end = (size_t)received;
			continue;
		}
		if (received == 0) {
			snprintf(connection->error, sizeof(connection->error),
			    "the server closed the connection");
			return SMTP_IO_CLOSED;
		}
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET) {
			snprintf(connection->error, sizeof(connection->error),
			    "%s", strerror(errno));
			return SMTP_IO_CLOSED;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(connection->error, sizeof(connection->error),
			    "%s", strerror(errno));
			return SMTP_IO_ERROR;
		}
		status = wait_for(connection->fd, POLLIN, deadline);
		if (status == SMTP_IO_TIMEOUT) {
			snprintf(connection->error, sizeof(connection->error),
			    "no complete reply within %d s",
			    connection->timeout_seconds);
			return status;
		}
		if (status != SMTP_IO_OK) {
			snprintf(connection->error, sizeof(connection->error),
			    "%s", strerror(errno));
			return status;
		}
	}
}

bool
smtp_local_address_literal(const struct smtp_connection *connection,
    char *out, size_t size)
{
	struct sockaddr_storage local;
	socklen_t length = sizeof(local);
	char numeric[INET6_ADDRSTRLEN];

	if (getsockname(connection->fd, (struct sockaddr *)&local,
	    &length) < 0)
		return false;
	if (getnameinfo((struct sockaddr *)&local, length, numeric,
	    sizeof(numeric), NULL, 0, NI_NUMERICHOST) != 0)
		return false;
	if (local.ss_family == AF_INET6)
		snprintf(out, size, "[IPv6:%s]", numeric);
	else
		snprintf(out, size, "[%s]", numeric);
	return true;
}

void
smtp_close(struct smtp_connection *connection)
{
	if (connection->fd >= 0)
		close(connection->fd);
	connection->fd = -1;
	smtp_reply_parser_reset(&connection->parser);
}
