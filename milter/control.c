/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The control socket for ondemandctl, and the periodic hold age check.
 *
 * Protocol: the client sends one request line (STATUS, LIST DOMAIN,
 * RELEASE DOMAIN, UNHOLD DOMAIN|QUEUEID, EXPIRE); the daemon replies with
 * tab-separated rows and a last line "OK" or "ERROR message", then closes.
 * Only root, the daemon's user and members of its socket group may connect.
 */

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "od_domain.h"
#include "od_etrn.h"
#include "od_ledger_client.h"
#include "od_listen.h"
#include "od_log.h"
#include "od_release.h"
#include "od_runtime.h"
#include "od_server.h"
#include "od_util.h"

#define CONTROL_LINE_MAX 1024
#define CONTROL_TIMEOUT_SECONDS 30

static struct od_index *control_index;

static void
send_line(FILE *out, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void
send_line(FILE *out, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vfprintf(out, format, args);
	va_end(args);
	fputc('\n', out);
}

static void
command_status(FILE *out)
{
	struct od_index_domain_status *rows = NULL;
	time_t last_rebuild = 0;
	bool complete = od_index_complete(control_index, &last_rebuild);
	size_t count = 0, i;

	send_line(out, "index\t%s\t%lld", complete ? "complete" :
	    "incomplete", (long long)last_rebuild);
	if (!od_index_status(control_index, &rows, &count)) {
		send_line(out, "ERROR out of memory");
		return;
	}
	for (i = 0; i < count; i++)
		send_line(out, "domain\t%s\t%zu\t%lld\t%lld", rows[i].domain,
		    rows[i].messages, rows[i].bytes,
		    (long long)rows[i].oldest);
	free(rows);
	od_ledger_status(out);
	send_line(out, "OK");
}

/*
 * Parses DOMAIN or @DOMAIN the way an ETRN argument is parsed.  ETRN takes
 * ASCII only, but an operator may type an internationalised name in UTF-8,
 * so such a name is turned into its A-label form first.
 */
static bool
parse_domain_argument(const char *argument, struct od_etrn_decision *decision,
    FILE *out)
{
	const char *name = argument[0] == '@' ? argument + 1 : argument;
	char alabel[OD_DOMAIN_SIZE], converted[OD_DOMAIN_SIZE + 1];
	const char *etrn_argument = argument;
	struct od_config_ref *ref;

	for (const char *p = name; *p != '\0'; p++) {
		const char *error;

		if ((unsigned char)*p < 0x80)
			continue;
		if (!od_domain_normalize(name, alabel, &error)) {
			send_line(out, "ERROR invalid domain \"%s\": the name "
			    "%s", argument, error);
			return false;
		}
		snprintf(converted, sizeof(converted), "%s%s",
		    name != argument ? "@" : "", alabel);
		etrn_argument = converted;
		break;
	}

	ref = od_runtime_acquire();
	if (ref == NULL) {
		send_line(out, "ERROR no configuration loaded");
		return false;
	}
	od_etrn_decide(etrn_argument, NULL, od_runtime_config(ref), decision);
	od_runtime_release(ref);
	if (decision->action == OD_ETRN_INVALID) {
		send_line(out, "ERROR invalid domain \"%s\": %s", argument,
		    decision->text);
		return false;
	}
	/* "#queue" is a valid ETRN argument, but it names no domain. */
	if (decision->domain[0] == '\0') {
		send_line(out, "ERROR invalid domain \"%s\": expected a domain "
		    "such as example.test, not a queue name", argument);
		return false;
	}
	return true;
}

static void
command_list(FILE *out, const char *argument)
{
	struct od_etrn_decision decision;
	struct od_index_entry *entries = NULL;
	size_t count = 0, i;

	if (!parse_domain_argument(argument, &decision, out))
		return;
	if (!od_index_complete(control_index, NULL) && !od_release_resync()) {
		send_line(out, "ERROR cannot list the held messages, so the "
		    "list would be incomplete; see the daemon's log");
		return;
	}
	if (!od_index_select(control_index, decision.domain,
	    decision.subdomains, &entries, &count)) {
		send_line(out, "ERROR out of memory");
		return;
	}
	for (i = 0; i < count; i++)
		send_line(out, "message\t%s\t%s\t%s\t%lld\t%lld",
		    entries[i].queue_id, entries[i].domain, entries[i].sender,
		    entries[i].size, (long long)entries[i].held_at);
	free(entries);
	send_line(out, "OK");
}

static void
command_release(FILE *out, const char *argument, uid_t peer)
{
	struct od_etrn_decision decision;
	struct od_release_request request;
	char client[64];
	long messages = -1;

	if (!parse_domain_argument(argument, &decision, out))
		return;
	if (decision.action != OD_ETRN_RELEASE) {
		send_line(out, "ERROR %s is not an on-demand domain here; "
		    "check the Domain lines of the configuration", argument);
		return;
	}
	/* Without the listing the subdomains of @DOMAIN are not known. */
	if (decision.subdomains && !od_index_complete(control_index, NULL) &&
	    !od_release_resync()) {
		send_line(out, "ERROR cannot list the held messages to find the "
		    "subdomains of %s; see the daemon's log", decision.domain);
		return;
	}
	snprintf(client, sizeof(client), "uid=%ld", (long)peer);
	memset(&request, 0, sizeof(request));
	request.domain = decision.domain;
	request.subdomains = decision.subdomains;
	request.trigger = "operator";
	request.client = client;
	switch (od_release_start(&request, &messages)) {
	case OD_RELEASE_STARTED:
		send_line(out, "release\tstarted\t%ld", messages);
		break;
	case OD_RELEASE_RUNNING:
		send_line(out, "release\trunning");
		break;
	case OD_RELEASE_TOO_SOON:
		send_line(out, "release\ttoo-soon");
		break;
	case OD_RELEASE_UNAVAILABLE:
		send_line(out, "ERROR the release helper is not available; "
		    "see the daemon's log");
		return;
	}
	send_line(out, "OK");
}

static bool
looks_like_queue_id(const char *text)
{
	size_t len = strlen(text), i;

	if (len < 6 || len > 20 || strchr(text, '.') != NULL)
		return false;
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)text[i]))
			return false;
	}
	return true;
}

static void
command_unhold(FILE *out, const char *argument)
{
	struct od_etrn_decision decision;
	long count;

	/* A queue ID has no dot; a domain that matters here has one. */
	if (looks_like_queue_id(argument)) {
		count = od_release_unhold(NULL, argument);
	} else {
		if (!parse_domain_argument(argument, &decision, out))
			return;
		count = od_release_unhold(decision.domain, NULL);
	}
	if (count < 0) {
		send_line(out, "ERROR un-holding failed; see the daemon's log");
		return;
	}
	send_line(out, "unhold\t%ld", count);
	send_line(out, "OK");
}

static void
command_expire(FILE *out)
{
	struct od_config_ref *ref = od_runtime_acquire();
	long long max_age;
	long count;

	if (ref == NULL) {
		send_line(out, "ERROR no configuration loaded");
		return;
	}
	max_age = od_runtime_config(ref)->max_hold_age;
	od_runtime_release(ref);
	count = od_release_expire(max_age);
	if (count < 0) {
		send_line(out, "ERROR expiry failed; see the daemon's log");
		return;
	}
	send_line(out, "expire\t%ld", count);
	send_line(out, "OK");
}

static void
dispatch(FILE *out, char *line, uid_t peer)
{
	char *argument = strchr(line, ' ');

	if (argument != NULL)
		*argument++ = '\0';
	if (strcmp(line, "STATUS") == 0 && argument == NULL)
		command_status(out);
	else if (strcmp(line, "LIST") == 0 && argument != NULL)
		command_list(out, argument);
	else if (strcmp(line, "RELEASE") == 0 && argument != NULL)
		command_release(out, argument, peer);
	else if (strcmp(line, "UNHOLD") == 0 && argument != NULL)
		command_unhold(out, argument);
	else if (strcmp(line, "EXPIRE") == 0 && argument == NULL)
		command_expire(out);
	else
		send_line(out, "ERROR unknown request; expected STATUS, LIST "
		    "DOMAIN, RELEASE DOMAIN, UNHOLD DOMAIN|QUEUEID or EXPIRE");
}

static void
serve_connection(int fd, uid_t peer)
{
	char line[CONTROL_LINE_MAX];
	FILE *in, *out;
	int out_fd = dup(fd);

	in = fdopen(fd, "r");
	out = out_fd >= 0 ? fdopen(out_fd, "w") : NULL;
	if (in == NULL || out == NULL) {
		if (in != NULL)
			fclose(in);
		else
			close(fd);
		if (out != NULL)
			fclose(out);
		else if (out_fd >= 0)
			close(out_fd);
		return;
	}
	if (fgets(line, sizeof(line), in) == NULL ||
	    strchr(line, '\n') == NULL) {
		send_line(out, "ERROR expected one request line of at most "
		    "%d characters", CONTROL_LINE_MAX - 2);
	} else {
		line[strcspn(line, "\r\n")] = '\0';
		dispatch(out, line, peer);
	}
	fclose(out);
	fclose(in);
}

void
od_control_set_index(struct od_index *index)
{
	control_index = index;
}

bool
od_control_start(int listen_fd, gid_t group, char *error, size_t size)
{
	return od_serve_unix(listen_fd, group, CONTROL_TIMEOUT_SECONDS,
	    "control", serve_connection, error, size);
}

/* Checks a few times per hold age limit, at most every five minutes. */
static unsigned
expiry_period(long long max_hold_age)
{
	long long period = max_hold_age / 4;

	if (period < 1)
		period = 1;
	if (period > 300)
		period = 300;
	return (unsigned)period;
}

static void *
expiry_loop(void *unused)
{
	(void)unused;
	for (;;) {
		struct od_config_ref *ref = od_runtime_acquire();
		long long max_age = ref ? od_runtime_config(ref)->max_hold_age :
		    OD_DEFAULT_MAX_HOLD_AGE;
		long count;

		od_runtime_release(ref);
		sleep(expiry_period(max_age));
		count = od_release_expire(max_age);
		if (count > 0)
			od_log(LOG_NOTICE, "action=expire-done messages=%ld "
			    "max_hold_age=%llds", count, max_age);
	}
	return NULL;
}

bool
od_expiry_start(char *error, size_t size)
{
	pthread_t thread;

	if (pthread_create(&thread, NULL, expiry_loop, NULL) != 0) {
		snprintf(error, size, "cannot start the expiry thread");
		return false;
	}
	pthread_detach(thread);
	return true;
}
