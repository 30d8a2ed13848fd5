/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A daemon without its helper for the fuzz targets (see fuzz_daemon.h).
 * The release stand-ins check what a request carries and return an
 * outcome derived from the domain's length, so one input always gets the
 * same outcome and every outcome is reachable.
 */

#include "config.h"

#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_daemon.h"
#include "od_config.h"
#include "od_helper_proto.h"
#include "od_network.h"
#include "od_release.h"
#include "od_runtime.h"

static char *
copy_text(const char *text)
{
	char *copy = strdup(text);

	FUZZ_CHECK(copy != NULL);
	return copy;
}

static void
add_allow(struct od_config *config, const char *domain, bool subdomains,
    const char *const *networks, size_t count)
{
	struct od_etrn_allow *allow;

	config->etrn_allow = realloc(config->etrn_allow,
	    (config->etrn_allow_count + 1) * sizeof(*config->etrn_allow));
	FUZZ_CHECK(config->etrn_allow != NULL);
	allow = &config->etrn_allow[config->etrn_allow_count++];
	memset(allow, 0, sizeof(*allow));
	snprintf(allow->domain, sizeof(allow->domain), "%s", domain);
	allow->subdomains = subdomains;
	allow->networks = calloc(count, sizeof(*allow->networks));
	FUZZ_CHECK(allow->networks != NULL);
	for (size_t i = 0; i < count; i++)
		FUZZ_CHECK(od_network_parse(networks[i], &allow->networks[i]));
	allow->count = count;
}

void
fuzz_daemon_init(void)
{
	static const char *const loopback[] = { "127.0.0.0/8", "::1" };
	static const char *const branch[] = { "192.0.2.0/24" };
	struct od_config *config = calloc(1, sizeof(*config));

	/* od_log and od_debug never use LOG_EMERG, so nothing is sent. */
	setlogmask(LOG_MASK(LOG_EMERG));

	FUZZ_CHECK(config != NULL);
	config->path = copy_text("fuzz.conf");
	config->socket = copy_text("unix:/nonexistent/milter.sock");
	config->pidfile = copy_text("/nonexistent/ondemand-milter.pid");
	config->sendmail_path = copy_text("/nonexistent/sendmail");
	config->socket_mode = OD_DEFAULT_SOCKET_MODE;
	config->on_error = OD_ON_ERROR_HOLD;
	config->etrn_other = OD_ETRN_OTHER_PASS;
	config->max_hold_age = OD_DEFAULT_MAX_HOLD_AGE;
	config->release_runs = OD_DEFAULT_RELEASE_RUNS;
	config->domains = od_domain_set_new();
	FUZZ_CHECK(config->domains != NULL);
	FUZZ_CHECK(od_domain_set_add(config->domains, "example.test", false));
	FUZZ_CHECK(od_domain_set_add(config->domains, "branch.example.test",
	    true));
	FUZZ_CHECK(od_domain_set_add(config->domains, "xn--bcher-kva.example",
	    false));
	od_domain_set_finish(config->domains);
	add_allow(config, "example.test", false, loopback, 2);
	add_allow(config, "branch.example.test", true, branch, 1);
	od_runtime_set_config(config);
}

enum od_release_status
od_release_start(const struct od_release_request *request, long *messages)
{
	const char *error;
	size_t length = strlen(request->domain);

	FUZZ_CHECK(od_helper_domain_valid(request->domain, &error));
	FUZZ_CHECK(request->trigger != NULL && request->client != NULL);
	switch (length % 4) {
	case 0:
		*messages = (long)(length % 3) - 1;
		return OD_RELEASE_STARTED;
	case 1:
		return OD_RELEASE_RUNNING;
	case 2:
		return OD_RELEASE_TOO_SOON;
	default:
		return OD_RELEASE_UNAVAILABLE;
	}
}

bool
od_release_resync(void)
{
	return true;
}

long
od_release_unhold(const char *domain, const char *queue_id)
{
	const char *error;

	FUZZ_CHECK((domain == NULL) != (queue_id == NULL));
	if (queue_id != NULL) {
		FUZZ_CHECK(od_helper_queue_id_valid(queue_id));
		return (long)(strlen(queue_id) % 3) - 1;
	}
	FUZZ_CHECK(od_helper_domain_valid(domain, &error));
	return (long)(strlen(domain) % 3) - 1;
}

long
od_release_expire(long long max_hold_age)
{
	FUZZ_CHECK(max_hold_age > 0);
	return 1;
}

bool
od_serve_unix(int listen_fd, gid_t group, unsigned timeout_seconds,
    const char *name, od_connection_handler handler, char *error,
    size_t error_size)
{
	(void)listen_fd;
	(void)group;
	(void)timeout_seconds;
	(void)handler;
	snprintf(error, error_size, "%s: no listener in a fuzz target", name);
	return false;
}

struct drain {
	int fd;
	char *data;
	size_t length;
	size_t capacity;
};

/* Reads until end of stream, so the handler never blocks on a write. */
static void *
drain_socket(void *argument)
{
	struct drain *drain = argument;

	for (;;) {
		ssize_t n;

		if (drain->capacity - drain->length < 4096) {
			drain->capacity = drain->capacity * 2 + 4096;
			drain->data = realloc(drain->data, drain->capacity);
			FUZZ_CHECK(drain->data != NULL);
		}
		n = read(drain->fd, drain->data + drain->length,
		    drain->capacity - drain->length - 1);
		if (n <= 0)
			break;
		drain->length += (size_t)n;
	}
	drain->data[drain->length] = '\0';
	return NULL;
}

char *
fuzz_serve(od_connection_handler handler, const uint8_t *data, size_t size,
    size_t *length)
{
	struct drain drain = { -1, NULL, 0, 0 };
	pthread_t thread;
	int pair[2];

	FUZZ_CHECK(size <= FUZZ_SERVE_MAX);
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    pair) == 0);
	if (size > 0)
		FUZZ_CHECK(write(pair[0], data, size) == (ssize_t)size);
	FUZZ_CHECK(shutdown(pair[0], SHUT_WR) == 0);
	drain.fd = pair[0];
	FUZZ_CHECK(pthread_create(&thread, NULL, drain_socket, &drain) == 0);
	/* The handler closes its end, which ends the drain. */
	handler(pair[1], 0);
	FUZZ_CHECK(pthread_join(thread, NULL) == 0);
	close(pair[0]);
	*length = drain.length;
	return drain.data;
}
