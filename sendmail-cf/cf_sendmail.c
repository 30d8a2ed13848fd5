/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Running sendmail to check a sendmail.cf; see cf_sendmail.h.
 *
 * The output formats read here are those of sendmail 8.17: "-d0.1" prints
 * a version banner and the system identity, and "/parse ADDRESS" in
 * address test mode ends with "mailer NAME, host HOST, user USER".
 */

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_sendmail.h"
#include "cf_internal.h"

static bool
add_item(struct cf_list *list, const char *text, size_t len)
{
	char **items = realloc(list->items, (list->count + 1) * sizeof(*items));
	char *item;

	if (items == NULL)
		return false;
	list->items = items;
	item = strndup(text, len);
	if (item == NULL)
		return false;
	list->items[list->count++] = item;
	return true;
}

static void
free_list(struct cf_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/* Appends n bytes to a growing buffer. */
static bool
append(char **buf, size_t *len, size_t *size, const char *data, size_t n)
{
	if (*len + n + 1 > *size) {
		size_t new_size = *size == 0 ? 4096 : *size;
		char *grown;

		while (*len + n + 1 > new_size)
			new_size *= 2;
		grown = realloc(*buf, new_size);
		if (grown == NULL)
			return false;
		*buf = grown;
		*size = new_size;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exchanges input and output with the child until its output ends. */
static int
talk(pid_t pid, int in_fd, int out_fd, const char *input, char **output,
    char *error, size_t error_size)
{
	size_t in_len = input == NULL ? 0 : strlen(input), in_done = 0;
	size_t out_len = 0, out_size = 0;
	long long deadline = now_ms() + CF_SENDMAIL_TIMEOUT_SECONDS * 1000LL;
	char *buf = NULL, chunk[4096];

	if (!append(&buf, &out_len, &out_size, "", 0))
		goto nomem;
	if (in_len == 0) {
		close(in_fd);
		in_fd = -1;
	}
	while (out_fd >= 0) {
		struct pollfd fds[2];
		nfds_t nfds = 0;
		long long left = deadline - now_ms();
		int ready;

		if (left <= 0) {
			kill(pid, SIGKILL);
			cf_set_error(error, error_size, "sendmail did not finish "
			    "within %d seconds and was stopped; check that "
			    "this host has a fully qualified name (sendmail "
			    "waits 60 s for one)", CF_SENDMAIL_TIMEOUT_SECONDS);
			goto fail;
		}
		fds[nfds++] = (struct pollfd){ out_fd, POLLIN, 0 };
		if (in_fd >= 0)
			fds[nfds++] = (struct pollfd){ in_fd, POLLOUT, 0 };
		ready = poll(fds, nfds, (int)(left > 1000 ? 1000 : left));
		if (ready < 0 && errno != EINTR) {
			cf_set_error(error, error_size, "poll failed: %s",
			    strerror(errno));
			kill(pid, SIGKILL);
			goto fail;
		}
		if (ready <= 0)
			continue;
		if (nfds > 1 && fds[1].revents != 0) {
			ssize_t n = write(in_fd, input + in_done,
			    in_len - in_done);

			if (n > 0)
				in_done += (size_t)n;
			/* A child that stops reading early is not an error. */
			if ((n < 0 && errno != EINTR && errno != EAGAIN) ||
			    in_done == in_len) {
				close(in_fd);
				in_fd = -1;
			}
		}
		if (fds[0].revents != 0) {
			ssize_t n = read(out_fd, chunk, sizeof(chunk));

			if (n > 0) {
				if (!append(&buf, &out_len, &out_size, chunk,
				    (size_t)n))
					goto nomem;
			} else if (n == 0 || errno != EINTR) {
				close(out_fd);
				out_fd = -1;
			}
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	*output = buf;
	return 0;

nomem:
	cf_set_error(error, error_size, "out of memory");
	kill(pid, SIGKILL);
fail:
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	free(buf);
	return -1;
}

int
cf_run(const char *const argv[], const char *input, char **output,
    int *status, char *error, size_t error_size)
{
	int in_pipe[2], out_pipe[2], wstatus, result;
	struct sigaction ignore = { .sa_handler = SIG_IGN }, old_pipe;
	pid_t pid;

	if (pipe2(in_pipe, O_CLOEXEC) != 0) {
		cf_set_error(error, error_size, "pipe failed: %s", strerror(errno));
		return -1;
	}
	if (pipe2(out_pipe, O_CLOEXEC) != 0) {
		cf_set_error(error, error_size, "pipe failed: %s", strerror(errno));
		close(in_pipe[0]);
		close(in_pipe[1]);
		return -1;
	}
	/* A child that exits before reading its input must not kill us. */
	sigaction(SIGPIPE, &ignore, &old_pipe);
	pid = fork();
	if (pid < 0) {
		cf_set_error(error, error_size, "fork failed: %s", strerror(errno));
		sigaction(SIGPIPE, &old_pipe, NULL);
		close(in_pipe[0]);
		close(in_pipe[1]);
		close(out_pipe[0]);
		close(out_pipe[1]);
		return -1;
	}
	if (pid == 0) {
		sigaction(SIGPIPE, &old_pipe, NULL);
		if (dup2(in_pipe[0], STDIN_FILENO) < 0 ||
		    dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
		    dup2(out_pipe[1], STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
	result = talk(pid, in_pipe[1], out_pipe[0], input, output, error,
	    error_size);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		continue;
	sigaction(SIGPIPE, &old_pipe, NULL);
	if (result != 0)
		return -1;
	*status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) :
	    128 + WTERMSIG(wstatus);
	if (*status == 127 && strncmp(*output, "cannot run ", 11) == 0) {
		cf_set_error(error, error_size, "%.*s; give the path of sendmail "
		    "with --sendmail", (int)strcspn(*output, "\n"), *output);
		free(*output);
		*output = NULL;
		return -1;
	}
	return 0;
}

/* Returns whether a line of "-bt -d0.1" output is part of the banner. */
static bool
is_banner(const char *line, size_t len)
{
	static const char *const prefixes[] = {
		"Version ", "=====", "ADDRESS TEST MODE", "Enter <ruleset>",
		NULL
	};

	if (len == 0 || line[0] == ' ' || line[0] == '\t')
		return true;
	if (line[0] == '>' && (len == 1 || (len == 2 && line[1] == ' ')))
		return true;
	for (size_t i = 0; prefixes[i] != NULL; i++)
		if (strncmp(line, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

int
cf_check_parse(const char *sendmail, const char *cf_path,
    struct cf_list *messages, char *error, size_t error_size)
{
	const char *argv[] = { sendmail, "-C", cf_path, "-bt", "-d0.1", NULL };
	char *output = NULL;
	const char *p;
	int status;

	if (cf_run(argv, NULL, &output, &status, error, error_size) != 0)
		return -1;
	for (p = output; *p != '\0';) {
		size_t len = strcspn(p, "\n");

		if (!is_banner(p, len) && !add_item(messages, p, len)) {
			free(output);
			cf_set_error(error, error_size, "out of memory");
			return -1;
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	free(output);
	if (status != 0 && messages->count == 0) {
		char line[64];

		snprintf(line, sizeof(line), "sendmail exited with status %d",
		    status);
		add_item(messages, line, strlen(line));
	}
	return status == 0 ? 1 : 0;
}

void
cf_routes_free(struct cf_routes *routes)
{
	for (size_t i = 0; i < routes->count; i++) {
		free(routes->items[i].address);
		free(routes->items[i].mailer);
		free(routes->items[i].host);
		free(routes->items[i].user);
		free(routes->items[i].problem);
	}
	free(routes->items);
	free_list(&routes->local_names);
	free(routes->canonical_name);
	memset(routes, 0, sizeof(*routes));
}

/* Copies the text after key up to the next ", " or the end of the line. */
static char *
field(const char *line, size_t len, const char *key)
{
	const char *start = NULL, *end = line + len;

	for (const char *p = line; p + strlen(key) <= end; p++) {
		if (strncmp(p, key, strlen(key)) == 0 &&
		    (p == line || p[-1] == ' ')) {
			start = p + strlen(key);
			break;
		}
	}
	if (start == NULL)
		return NULL;
	for (const char *p = start; p + 1 < end; p++) {
		if (p[0] == ',' && p[1] == ' ') {
			end = p;
			break;
		}
	}
	return strndup(start, (size_t)(end - start));
}

/* Fills route from the output of one "/parse" command. */
static bool
read_route(const char *text, size_t len, struct cf_route *route)
{
	const char *p = text, *end = text + len, *last = NULL;
	size_t last_len = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t line_len = nl == NULL ? (size_t)(end - p) :
		    (size_t)(nl - p);

		if (line_len > 7 && strncmp(p, "mailer ", 7) == 0) {
			route->mailer = strndup(p + 7,
			    strcspn(p + 7, ",\n") < line_len - 7 ?
			    strcspn(p + 7, ",\n") : line_len - 7);
			route->host = field(p, line_len, "host ");
			route->user = field(p, line_len, "user ");
			return route->mailer != NULL;
		}
		if (line_len > 0) {
			last = p;
			last_len = line_len;
		}
		p += line_len + 1;
	}
	route->problem = last == NULL ? strdup("no output from sendmail") :
	    strndup(last, last_len);
	return route->problem != NULL;
}

int
cf_resolve(const char *sendmail, const char *cf_path,
    const char *const *addresses, size_t count, struct cf_routes *routes,
    char *error, size_t error_size)
{
	const char *argv[] = { sendmail, "-C", cf_path, "-bt", NULL };
	char *input = NULL, *output = NULL;
	size_t input_len = 0, input_size = 0, section = 0;
	const char *p;
	int status;

	memset(routes, 0, sizeof(*routes));
	routes->items = calloc(count + 1, sizeof(*routes->items));
	if (routes->items == NULL ||
	    !append(&input, &input_len, &input_size, "$=w\n$j\n", 7))
		goto nomem;
	for (size_t i = 0; i < count; i++) {
		/* One address per line: refuse anything that would start a
		 * second test-mode command. */
		if (strpbrk(addresses[i], "\r\n") != NULL) {
			cf_set_error(error, error_size, "invalid sample address "
			    "\"%s\"", addresses[i]);
			goto fail;
		}
		if (!append(&input, &input_len, &input_size, "/parse ", 7) ||
		    !append(&input, &input_len, &input_size, addresses[i],
		    strlen(addresses[i])) ||
		    !append(&input, &input_len, &input_size, "\n", 1))
			goto nomem;
		routes->items[i].address = strdup(addresses[i]);
		if (routes->items[i].address == NULL)
			goto nomem;
		routes->count++;
	}
	if (cf_run(argv, input, &output, &status, error, error_size) != 0)
		goto fail;

	/* The output of command n follows the n-th "> " prompt, which
	 * starts a line; the banner has "> " inside a line. */
	p = strncmp(output, "> ", 2) == 0 ? output : strstr(output, "\n> ");
	if (p != NULL && p != output)
		p++;
	while (p != NULL) {
		const char *start = p + 2, *next = strstr(start, "\n> ");
		size_t len = next == NULL ? strlen(start) :
		    (size_t)(next + 1 - start);

		if (section == 0) {
			for (const char *q = start; q < start + len;) {
				size_t n = strcspn(q, "\n");

				if (n > 0 && !add_item(&routes->local_names, q,
				    n))
					goto nomem;
				q += n + 1;
			}
		} else if (section == 1) {
			routes->canonical_name = strndup(start,
			    strcspn(start, "\n"));
			if (routes->canonical_name == NULL ||
			    !add_item(&routes->local_names, start,
			    strcspn(start, "\n")))
				goto nomem;
		} else if (section - 2 < routes->count) {
			if (!read_route(start, len,
			    &routes->items[section - 2]))
				goto nomem;
		}
		section++;
		p = next == NULL ? NULL : next + 1;
	}
	for (size_t i = 0; i < routes->count; i++) {
		if (routes->items[i].mailer == NULL &&
		    routes->items[i].problem == NULL) {
			routes->items[i].problem = strdup("sendmail printed "
			    "no result for this address");
			if (routes->items[i].problem == NULL)
				goto nomem;
		}
	}
	free(input);
	free(output);
	return 0;

nomem:
	cf_set_error(error, error_size, "out of memory");
fail:
	free(input);
	free(output);
	cf_routes_free(routes);
	return -1;
}

bool
cf_route_is_smtp(const struct cf_route *route)
{
	static const char *const smtp_mailers[] = {
		"smtp", "esmtp", "smtp8", "dsmtp", "relay", NULL
	};

	if (route->mailer == NULL)
		return false;
	for (size_t i = 0; smtp_mailers[i] != NULL; i++)
		if (strcmp(route->mailer, smtp_mailers[i]) == 0)
			return true;
	return false;
}

bool
cf_route_loops(const struct cf_routes *routes, const struct cf_route *route)
{
	char host[300];
	size_t len;

	if (!cf_route_is_smtp(route) || route->host == NULL)
		return false;
	/* Compare "host.", "[host]" and "host" alike. */
	snprintf(host, sizeof(host), "%s", route->host);
	len = strlen(host);
	if (len > 0 && host[len - 1] == '.')
		host[--len] = '\0';
	for (size_t i = 0; i < routes->local_names.count; i++) {
		char name[300];
		size_t name_len;

		snprintf(name, sizeof(name), "%s", routes->local_names.items[i]);
		name_len = strlen(name);
		if (name_len > 0 && name[name_len - 1] == '.')
			name[--name_len] = '\0';
		if (strcasecmp(host, name) == 0)
			return true;
		if (len > 2 && host[0] == '[' && host[len - 1] == ']' &&
		    strncasecmp(host + 1, name, len - 2) == 0 &&
		    name_len == len - 2)
			return true;
	}
	return false;
}
