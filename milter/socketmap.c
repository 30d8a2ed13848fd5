/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The socket map for sendmail's check_etrn ruleset.
 *
 * Protocol (sendmail's socketmap, as in sendmail 8.17 cf/README): each
 * request is a netstring "LEN:MAPNAME KEY," and each reply a netstring
 * "OK VALUE", "NOTFOUND ", "TEMP TEXT" or "PERM TEXT".  sendmail keeps the
 * connection open for further lookups and gives up on a reply after 30
 * seconds, so every reply is computed without waiting for delivery.
 *
 * Values: "ACCEPT N" (release of N held messages started: 251 when N is 0,
 * else 253), "ACCEPT" (started with the count unknown, or already running:
 * sendmail replies 250), "DENY TEXT" (459), "INVALID TEXT" (501) and
 * "TEMP TEXT" (458); NOTFOUND leaves the ETRN to sendmail.  The check_etrn
 * ruleset of FEATURE(`ondemand') and ondemand-cf maps them to these codes.
 * Texts are quoted because sendmail re-tokenises the value and would drop
 * the spaces around punctuation otherwise.
 */

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "od_etrn.h"
#include "od_listen.h"
#include "od_log.h"
#include "od_netstring.h"
#include "od_release.h"
#include "od_runtime.h"
#include "od_server.h"
#include "od_util.h"

/* Longer requests cannot carry a valid ETRN argument. */
#define REQUEST_MAX 1024
#define IDLE_TIMEOUT_SECONDS 300

void
od_socketmap_answer(const char *key, char *reply, size_t reply_size)
{
	struct od_config_ref *ref = od_runtime_acquire();
	struct od_etrn_decision decision;
	struct od_release_request request;
	char escaped[REQUEST_MAX], client_escaped[200], parts[REQUEST_MAX];
	const char *client, *argument;
	long messages = -1;

	od_etrn_split_key(key, parts, sizeof(parts), &client, &argument);
	od_escape(escaped, sizeof(escaped), argument, 300);
	od_escape(client_escaped, sizeof(client_escaped),
	    client[0] != '\0' ? client : "unknown", 60);
	if (ref == NULL) {
		snprintf(reply, reply_size, "OK TEMP \"no configuration "
		    "loaded\"");
		return;
	}
	od_etrn_decide(argument, client, od_runtime_config(ref), &decision);
	od_runtime_release(ref);

	switch (decision.action) {
	case OD_ETRN_PASS:
		snprintf(reply, reply_size, "NOTFOUND ");
		return;
	case OD_ETRN_DENY:
		od_log(LOG_NOTICE, "action=etrn-deny argument=%s client=%s "
		    "reason=\"%s\"", escaped, client_escaped, decision.text);
		snprintf(reply, reply_size, "OK DENY \"%s\"", decision.text);
		return;
	case OD_ETRN_INVALID:
		od_log(LOG_NOTICE, "action=etrn-invalid argument=%s client=%s "
		    "reason=\"%s\"", escaped, client_escaped, decision.text);
		snprintf(reply, reply_size, "OK INVALID \"%s\"",
		    decision.text);
		return;
	case OD_ETRN_RELEASE:
		break;
	}

	memset(&request, 0, sizeof(request));
	request.domain = decision.domain;
	request.subdomains = decision.subdomains;
	request.trigger = "etrn";
	request.client = client_escaped;
	switch (od_release_start(&request, &messages)) {
	case OD_RELEASE_STARTED:
		/* With a count the ruleset replies 251 or 253 itself. */
		if (messages >= 0)
			snprintf(reply, reply_size, "OK ACCEPT %ld", messages);
		else
			snprintf(reply, reply_size, "OK ACCEPT");
		return;
	case OD_RELEASE_RUNNING:
	case OD_RELEASE_TOO_SOON:
		/* RFC 1985: a repeated request is not an error. */
		od_log(LOG_INFO, "action=etrn-repeat domain=%s%s client=%s "
		    "reason=\"a release of this domain is running or just "
		    "ended\"", decision.subdomains ? "@" : "", decision.domain,
		    client_escaped);
		snprintf(reply, reply_size, "OK ACCEPT");
		return;
	case OD_RELEASE_UNAVAILABLE:
		od_log(LOG_ERR, "action=etrn-tempfail domain=%s reason=\"the "
		    "release helper is not available\"", decision.domain);
		snprintf(reply, reply_size, "OK TEMP \"release helper not "
		    "available\"");
		return;
	}
}

static bool
write_netstring(int fd, const char *payload)
{
	char frame[REQUEST_MAX + 32];
	int len = snprintf(frame, sizeof(frame), "%zu:%s,", strlen(payload),
	    payload);
	ssize_t n;

	if (len < 0 || (size_t)len >= sizeof(frame))
		return false;
	do {
		n = write(fd, frame, (size_t)len);
	} while (n < 0 && errno == EINTR);
	return n == len;
}

/*
 * Reads one netstring request into frame, and not one octet past it, so a
 * second request sent at once stays in the socket.  Returns 1 with
 * *payload pointing to the NUL-terminated payload inside frame, 0 on a
 * clean end of stream or an idle timeout, -1 on a protocol error.
 */
static int
read_netstring(int fd, char *frame, size_t size, char **payload)
{
	struct od_netstring netstring;
	size_t have = 0;

	for (;;) {
		ssize_t n;

		switch (od_netstring_parse(frame, have, REQUEST_MAX - 1,
		    &netstring)) {
		case OD_NETSTRING_OK:
			frame[netstring.payload_offset +
			    netstring.payload_length] = '\0';
			*payload = frame + netstring.payload_offset;
			return 1;
		case OD_NETSTRING_INVALID:
			return -1;
		case OD_NETSTRING_SHORT:
			break;
		}
		if (netstring.missing > size - have)
			return -1;
		n = read(fd, frame + have, netstring.missing);
		if (n < 0 && errno == EINTR)
			continue;
		/* sendmail keeps idle connections; SO_RCVTIMEO ends them. */
		if (have == 0 && (n == 0 || (n < 0 && (errno == EAGAIN ||
		    errno == EWOULDBLOCK))))
			return 0;
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
}

static void
serve_connection(int fd, uid_t peer)
{
	/* The maximum length field, the colon, the payload and the comma. */
	char frame[OD_NETSTRING_DIGITS_MAX + 1 + REQUEST_MAX + 1];
	char reply[REQUEST_MAX];
	char *request;
	int status;

	(void)peer;
	while ((status = read_netstring(fd, frame, sizeof(frame),
	    &request)) == 1) {
		/* "MAPNAME KEY": the map name is whatever the cf calls it. */
		char *key = strchr(request, ' ');

		if (key == NULL) {
			snprintf(reply, sizeof(reply), "PERM request has no "
			    "key");
		} else {
			key++;
			od_debug(1, "socketmap lookup: %.300s", key);
			od_socketmap_answer(key, reply, sizeof(reply));
		}
		if (!write_netstring(fd, reply))
			break;
	}
	if (status < 0)
		od_log(LOG_WARNING, "socketmap: malformed request or read "
		    "error; closing the connection");
	close(fd);
}

bool
od_socketmap_start(int listen_fd, gid_t group, char *error, size_t size)
{
	return od_serve_unix(listen_fd, group, IDLE_TIMEOUT_SECONDS,
	    "socketmap", serve_connection, error, size);
}
