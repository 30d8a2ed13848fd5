/* SPDX-License-Identifier: BSD-2-Clause */
/* Unix-domain listeners and peer credential checks (Linux SO_PEERCRED). */

#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stdlib.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "od_listen.h"
#include "od_log.h"
#include "od_util.h"

int
od_listen_unix(const char *path, uid_t uid, gid_t gid, mode_t mode,
    char *error, size_t error_size)
{
	struct sockaddr_un address;
	struct stat st;
	int fd;

	memset(&address, 0, sizeof(address));
	address.sun_family = AF_UNIX;
	if (od_strlcpy(address.sun_path, path, sizeof(address.sun_path)) >=
	    sizeof(address.sun_path)) {
		snprintf(error, error_size, "socket path %s is longer than "
		    "%zu octets", path, sizeof(address.sun_path) - 1);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(error, error_size, "%s exists and is not a "
			    "socket; remove it or choose another path", path);
			return -1;
		}
		/* A socket left by an earlier run. */
		if (unlink(path) != 0) {
			snprintf(error, error_size, "cannot remove stale "
			    "socket %s: %s", path, strerror(errno));
			return -1;
		}
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(error, error_size, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0 ||
	    chown(path, uid, gid) != 0 || chmod(path, mode) != 0 ||
	    listen(fd, 64) != 0) {
		snprintf(error, error_size, "cannot listen on %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Returns whether the user uid belongs to group, supplementary included. */
static bool
user_in_group(uid_t uid, gid_t primary, gid_t group)
{
	struct passwd entry, *result = NULL;
	char buffer[4096];
	gid_t groups[256];
	int count = 256, i;

	if (primary == group)
		return true;
	if (getpwuid_r(uid, &entry, buffer, sizeof(buffer), &result) != 0 ||
	    result == NULL)
		return false;
	if (getgrouplist(entry.pw_name, entry.pw_gid, groups, &count) < 0)
		return false;
	for (i = 0; i < count; i++) {
		if (groups[i] == group)
			return true;
	}
	return false;
}

bool
od_peer_allowed(int fd, gid_t group, uid_t *peer_uid)
{
	struct ucred credentials;
	socklen_t len = sizeof(credentials);

	*peer_uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &len) != 0)
		return false;
	*peer_uid = credentials.uid;
	return credentials.uid == 0 || credentials.uid == geteuid() ||
	    user_in_group(credentials.uid, credentials.gid, group);
}

struct server {
	int fd;
	gid_t group;
	unsigned timeout_seconds;
	const char *name;
	od_connection_handler handler;
};

struct connection {
	od_connection_handler handler;
	int fd;
	uid_t peer;
};

static void *
connection_thread(void *argument)
{
	struct connection *connection = argument;

	connection->handler(connection->fd, connection->peer);
	free(connection);
	return NULL;
}

static void
start_connection(const struct server *server, int fd, uid_t peer)
{
	struct timeval timeout = { (time_t)server->timeout_seconds, 0 };
	struct connection *connection = malloc(sizeof(*connection));
	pthread_t thread;

	if (connection == NULL) {
		od_log(LOG_ERR, "%s: out of memory for a connection",
		    server->name);
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	connection->handler = server->handler;
	connection->fd = fd;
	connection->peer = peer;
	if (pthread_create(&thread, NULL, connection_thread, connection) !=
	    0) {
		od_log(LOG_ERR, "%s: cannot start a thread", server->name);
		close(fd);
		free(connection);
		return;
	}
	pthread_detach(thread);
}

static void *
accept_loop(void *argument)
{
	struct server *server = argument;

	for (;;) {
		uid_t peer;
		int fd = accept4(server->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				od_log(LOG_ERR, "%s: accept: %m", server->name);
			if (errno == EMFILE || errno == ENFILE)
				sleep(1);
			continue;
		}
		if (!od_peer_allowed(fd, server->group, &peer)) {
			od_log(LOG_WARNING, "%s: refused a connection from uid "
			    "%ld", server->name, (long)peer);
			close(fd);
			continue;
		}
		start_connection(server, fd, peer);
	}
	return NULL;
}

bool
od_serve_unix(int listen_fd, gid_t group, unsigned timeout_seconds,
    const char *name, od_connection_handler handler, char *error,
    size_t error_size)
{
	struct server *server = malloc(sizeof(*server));
	pthread_t thread;

	/* The server lives as long as the daemon, so it is never freed. */
	if (server != NULL) {
		server->fd = listen_fd;
		server->group = group;
		server->timeout_seconds = timeout_seconds;
		server->name = name;
		server->handler = handler;
	}
	if (server == NULL ||
	    pthread_create(&thread, NULL, accept_loop, server) != 0) {
		snprintf(error, error_size, "cannot start the %s thread", name);
		free(server);
		return false;
	}
	pthread_detach(thread);
	return true;
}
