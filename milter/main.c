/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ondemand-milter: start-up, privileges, signals and the libmilter main loop.
 *
 * Order matters here.  The milter socket is created while the process is
 * still root and can still report errors on standard error.  Only then
 * does it daemonise, write the pid file and drop to the configured user,
 * so a socket directory the user cannot use fails at start, not later in
 * libmilter's threads.  SIGHUP and SIGTERM belong to libmilter (both end
 * smfi_main), so the configuration is reloaded on SIGUSR1 by a thread of
 * its own that waits for that signal.  The release helper, which keeps
 * root, is forked after daemonising and before any thread starts.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sysexits.h>
#include <unistd.h>

#include "od_config.h"
#include "od_filter.h"
#include "od_helper.h"
#include "od_index.h"
#include "od_ledger_client.h"
#include "od_listen.h"
#include "od_log.h"
#include "od_release.h"
#include "od_runtime.h"
#include "od_server.h"
#include "od_util.h"

struct options {
	const char *config_file;
	const char *socket;	/* -p, overrides Socket */
	const char *user;	/* -u, overrides User */
	const char *pidfile;	/* -P, overrides PidFile */
	bool foreground;
	bool check_only;
	int debug_level;
};

struct identity {
	bool change;		/* drop privileges to uid/gid */
	uid_t uid;
	gid_t gid;
	char name[256];
};

static struct options options;

static void
usage(FILE *stream)
{
	fprintf(stream,
	    "usage: ondemand-milter [-fnVh] [-c FILE] [-p SOCKET] "
	    "[-u USER[:GROUP]] [-P PIDFILE] [-d LEVEL]\n"
	    "  -c FILE    configuration file (default %s)\n"
	    "  -p SOCKET  milter socket, overrides Socket "
	    "(unix:/PATH or inet:PORT@HOST)\n"
	    "  -u USER[:GROUP]  user to run as after start, overrides User\n"
	    "  -P PIDFILE pid file, overrides PidFile\n"
	    "  -f         stay in the foreground\n"
	    "  -d LEVEL   debug output to standard error (1 to 9)\n"
	    "  -n         check the configuration and exit\n"
	    "  -V         print the version and exit\n"
	    "  -h         print this help and exit\n",
	    OD_DEFAULT_CONFIG_FILE);
}

/* Applies the command-line overrides to a freshly loaded configuration. */
static bool
apply_overrides(struct od_config *config, char *error, size_t size)
{
	const char *values[3] = { options.socket, options.user,
	    options.pidfile };
	char **fields[3] = { &config->socket, &config->user,
	    &config->pidfile };
	int i;

	for (i = 0; i < 3; i++) {
		char *copy;

		if (values[i] == NULL)
			continue;
		copy = strdup(values[i]);
		if (copy == NULL) {
			snprintf(error, size, "out of memory");
			return false;
		}
		free(*fields[i]);
		*fields[i] = copy;
	}
	return true;
}

static struct od_config *
load_config(char *error, size_t size)
{
	struct od_config *config;

	config = od_config_load(options.config_file, error, size);
	if (config == NULL)
		return NULL;
	if (!apply_overrides(config, error, size)) {
		od_config_free(config);
		return NULL;
	}
	return config;
}

static bool
resolve_identity(const char *spec, struct identity *identity, char *error,
    size_t size)
{
	char name[256];
	const char *colon;
	struct passwd *pw;
	size_t len;

	memset(identity, 0, sizeof(*identity));
	if (spec == NULL)
		return true;
	colon = strchr(spec, ':');
	len = colon ? (size_t)(colon - spec) : strlen(spec);
	if (len == 0 || len >= sizeof(name)) {
		snprintf(error, size, "invalid user \"%s\": expected USER or "
		    "USER:GROUP", spec);
		return false;
	}
	memcpy(name, spec, len);
	name[len] = '\0';
	pw = getpwnam(name);
	if (pw == NULL) {
		snprintf(error, size, "invalid user \"%s\": no such user",
		    name);
		return false;
	}
	identity->change = true;
	identity->uid = pw->pw_uid;
	identity->gid = pw->pw_gid;
	od_strlcpy(identity->name, name, sizeof(identity->name));
	if (colon != NULL) {
		struct group *gr = getgrnam(colon + 1);

		if (gr == NULL) {
			snprintf(error, size, "invalid group \"%s\": no such "
			    "group", colon + 1);
			return false;
		}
		identity->gid = gr->gr_gid;
	}
	return true;
}

/* Returns the path of a unix socket specification, or NULL for inet. */
static const char *
socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	if (spec[0] == '/')
		return spec;
	return NULL;
}

/* Returns whether uid/gid may create and remove entries in st's directory. */
static bool
directory_writable_by(const struct stat *st, uid_t uid, gid_t gid)
{
	if (uid == 0)
		return true;
	if (st->st_uid == uid)
		return (st->st_mode & (S_IWUSR | S_IXUSR)) ==
		    (S_IWUSR | S_IXUSR);
	if (st->st_gid == gid)
		return (st->st_mode & (S_IWGRP | S_IXGRP)) ==
		    (S_IWGRP | S_IXGRP);
	return (st->st_mode & (S_IWOTH | S_IXOTH)) == (S_IWOTH | S_IXOTH);
}

/*
 * Checks the socket's directory before libmilter touches it: it must exist,
 * must not let every user replace the socket, and must let the user the
 * daemon runs as remove the socket when it stops.
 */
static bool
check_socket_directory(const char *path, const struct identity *identity,
    char *error, size_t size)
{
	char copy[4096];
	const char *directory;
	struct stat st;

	if (od_strlcpy(copy, path, sizeof(copy)) >= sizeof(copy)) {
		snprintf(error, size, "socket path \"%.200s...\" is too long",
		    path);
		return false;
	}
	directory = dirname(copy);
	if (stat(directory, &st) != 0) {
		snprintf(error, size, "socket directory %s: %s; create it "
		    "(systemd: RuntimeDirectory=ondemand) or choose another "
		    "Socket", directory, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(error, size, "socket directory %s is not a directory",
		    directory);
		return false;
	}
	if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
		snprintf(error, size, "socket directory %s is writable by "
		    "every user and has no sticky bit, so anyone could replace "
		    "the socket; use a directory such as /run/ondemand",
		    directory);
		return false;
	}
	if (identity->change &&
	    !directory_writable_by(&st, identity->uid, identity->gid)) {
		snprintf(error, size, "socket directory %s is not writable by "
		    "user %s, which the daemon runs as; make the user its owner "
		    "or choose another Socket", directory, identity->name);
		return false;
	}
	return true;
}

static bool
open_socket(const struct od_config *config, const struct identity *identity,
    char *error, size_t size)
{
	const char *path = socket_path(config->socket);
	gid_t group = identity->change ? identity->gid : getegid();

	if (path != NULL &&
	    !check_socket_directory(path, identity, error, size))
		return false;
	if (config->socket_group != NULL) {
		struct group *gr = getgrnam(config->socket_group);

		if (gr == NULL) {
			snprintf(error, size, "invalid SocketGroup \"%s\": no "
			    "such group", config->socket_group);
			return false;
		}
		group = gr->gr_gid;
	}

	if (smfi_setconn(config->socket) != MI_SUCCESS) {
		snprintf(error, size, "invalid socket \"%s\"", config->socket);
		return false;
	}
	if (smfi_register(od_filter_description) != MI_SUCCESS) {
		snprintf(error, size, "cannot register the filter with "
		    "libmilter");
		return false;
	}
	/* Create the socket with no access for others; chmod sets the mode. */
	umask(0077);
	if (smfi_opensocket(true) != MI_SUCCESS) {
		snprintf(error, size, "cannot create socket %s (libmilter "
		    "gives no reason; check that the path is free and the "
		    "directory exists, and for inet that the port is free)",
		    config->socket);
		return false;
	}
	umask(0022);
	if (path == NULL)
		return true;
	if (chown(path, identity->change ? identity->uid : (uid_t)-1,
	    group) != 0 || chmod(path, config->socket_mode) != 0) {
		snprintf(error, size, "cannot set owner or mode of socket %s: "
		    "%s", path, strerror(errno));
		return false;
	}
	return true;
}

struct listeners {
	int socketmap;		/* -1: no ETRN hook */
	int control;		/* -1: no control socket */
	gid_t group;		/* who besides root may connect */
};

/*
 * Opens the socket map and control sockets while still root.  Both belong
 * to the daemon's user and the socket group, mode 0660.
 */
static bool
open_listeners(const struct od_config *config,
    const struct identity *identity, struct listeners *listeners,
    char *error, size_t size)
{
	uid_t owner = identity->change ? identity->uid : geteuid();
	const char *path;

	listeners->socketmap = -1;
	listeners->control = -1;
	listeners->group = identity->change ? identity->gid : getegid();
	if (config->socket_group != NULL) {
		struct group *gr = getgrnam(config->socket_group);

		if (gr != NULL)
			listeners->group = gr->gr_gid;
	}

	if (config->socketmap != NULL) {
		path = socket_path(config->socketmap);
		if (path == NULL) {
			snprintf(error, size, "invalid SocketMap \"%s\": the "
			    "daemon serves the socket map on a unix socket "
			    "only, as in unix:/run/ondemand/socketmap.sock",
			    config->socketmap);
			return false;
		}
		if (!check_socket_directory(path, identity, error, size))
			return false;
		listeners->socketmap = od_listen_unix(path, owner,
		    listeners->group, 0660, error, size);
		if (listeners->socketmap < 0)
			return false;
	}
	if (config->control_socket != NULL) {
		if (!check_socket_directory(config->control_socket, identity,
		    error, size))
			return false;
		listeners->control = od_listen_unix(config->control_socket,
		    owner, listeners->group, 0660, error, size);
		if (listeners->control < 0)
			return false;
	}
	return true;
}

/* Starts everything that runs beside the filter, after the drop. */
static bool
start_servers(const struct listeners *listeners, struct od_helper *helper,
    char *error, size_t size)
{
	struct od_index *index = od_index_new();
	struct od_config_ref *ref;
	bool ok;

	if (index == NULL) {
		snprintf(error, size, "out of memory");
		return false;
	}
	od_filter_set_index(index);
	od_release_init(helper, index);
	od_control_set_index(index);
	ref = od_runtime_acquire();
	ok = ref != NULL && od_ledger_client_start(od_runtime_config(ref),
	    index, error, size);
	od_runtime_release(ref);
	if (!ok)
		return false;
	if (listeners->socketmap >= 0 &&
	    !od_socketmap_start(listeners->socketmap, listeners->group, error,
	    size))
		return false;
	if (listeners->control >= 0 &&
	    !od_control_start(listeners->control, listeners->group, error,
	    size))
		return false;
	if (!od_expiry_start(error, size))
		return false;
	od_release_resync_async();
	return true;
}

static void
daemonize(void)
{
	pid_t pid;
	int fd;

	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "ondemand-milter: fork: %s\n", strerror(errno));
		exit(EX_OSERR);
	}
	if (pid > 0)
		_exit(EX_OK);
	if (setsid() < 0) {
		fprintf(stderr, "ondemand-milter: setsid: %s\n",
		    strerror(errno));
		exit(EX_OSERR);
	}
	if (chdir("/") != 0)
		exit(EX_OSERR);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (options.debug_level == 0)
			dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

static bool
write_pidfile(const char *path, const struct identity *identity)
{
	char text[32];
	int fd, len;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd < 0) {
		od_log(LOG_ERR, "cannot write pid file %s: %m; set PidFile or "
		    "-P to a writable path", path);
		return false;
	}
	len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (write(fd, text, (size_t)len) != len) {
		od_log(LOG_ERR, "cannot write pid file %s: %m", path);
		close(fd);
		return false;
	}
	/* Let the unprivileged daemon remove its own pid file on exit. */
	if (identity->change && fchown(fd, identity->uid, identity->gid) != 0)
		od_log(LOG_WARNING, "cannot give pid file %s to user %s: %m",
		    path, identity->name);
	close(fd);
	return true;
}

static bool
drop_privileges(const struct identity *identity, char *error, size_t size)
{
	if (!identity->change)
		return true;
	if (initgroups(identity->name, identity->gid) != 0 ||
	    setgid(identity->gid) != 0 || setuid(identity->uid) != 0) {
		snprintf(error, size, "cannot change to user %s: %s (the "
		    "daemon must start as root to change user)",
		    identity->name, strerror(errno));
		return false;
	}
	if (identity->uid != 0 && setuid(0) == 0) {
		snprintf(error, size, "privileges were not dropped: setuid(0) "
		    "still succeeds");
		return false;
	}
	return true;
}

static void
apply_config(struct od_config *config)
{
	od_filter_set_on_error(config->on_error);
	od_runtime_set_config(config);
}

/* Whether two configurations give the ledger the same settings. */
static bool
same_ledger(const struct od_config *a, const struct od_config *b)
{
	size_t i;

	if (a->memcached_count != b->memcached_count ||
	    strcmp(a->memcached_prefix, b->memcached_prefix) != 0 ||
	    (a->host_id == NULL) != (b->host_id == NULL) ||
	    (a->host_id != NULL && strcmp(a->host_id, b->host_id) != 0) ||
	    a->memcached_timeout_ms != b->memcached_timeout_ms ||
	    a->memcached_connect_timeout_ms !=
	    b->memcached_connect_timeout_ms ||
	    a->memcached_retry_ms != b->memcached_retry_ms ||
	    a->ledger_poll_ms != b->ledger_poll_ms)
		return false;
	for (i = 0; i < a->memcached_count; i++) {
		if (strcmp(a->memcached[i].host, b->memcached[i].host) != 0 ||
		    a->memcached[i].port != b->memcached[i].port)
			return false;
	}
	return true;
}

static void
reload(void)
{
	char error[1200];
	struct od_config *config = load_config(error, sizeof(error));
	struct od_config_ref *ref;
	size_t domains;

	if (config == NULL) {
		od_log(LOG_ERR, "reload failed, keeping the previous "
		    "configuration: %s", error);
		return;
	}
	ref = od_runtime_acquire();
	if (ref != NULL) {
		const struct od_config *old = od_runtime_config(ref);

		if (strcmp(old->socket, config->socket) != 0)
			od_log(LOG_WARNING, "reload: Socket changed to %s; "
			    "the daemon keeps listening on %s until it is "
			    "restarted", config->socket, old->socket);
		if (!same_ledger(old, config))
			od_log(LOG_WARNING, "reload: the Memcached, "
			    "MemcachedPrefix, HostId or timeout settings "
			    "changed; the ledger keeps the old ones until the "
			    "daemon is restarted");
		od_runtime_release(ref);
	}
	domains = od_domain_set_count(config->domains);
	apply_config(config);
	od_log(LOG_NOTICE, "configuration reloaded from %s: %zu on-demand "
	    "domain entries", options.config_file, domains);
}

/* Waits for SIGUSR1, which every thread blocks, and reloads. */
static void *
reload_thread(void *arg)
{
	sigset_t *signals = arg;

	for (;;) {
		int signal_number;

		if (sigwait(signals, &signal_number) == 0 &&
		    signal_number == SIGUSR1)
			reload();
	}
	return NULL;
}

/*
 * Blocks the signals that libmilter's signal thread (HUP, TERM, INT) and
 * the reload thread (USR1) wait for.  libmilter blocks them only in the
 * threads it creates itself, so without this a signal delivered to one of
 * the daemon's own threads would take its default action and kill the
 * process without a clean stop.  Call before any thread starts.
 */
static void
block_signals(void)
{
	sigset_t signals;

	sigemptyset(&signals);
	sigaddset(&signals, SIGHUP);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
}

static bool
start_reload_thread(char *error, size_t size)
{
	static sigset_t signals;
	pthread_t thread;
	int rc;

	sigemptyset(&signals);
	sigaddset(&signals, SIGUSR1);
	rc = pthread_create(&thread, NULL, reload_thread, &signals);
	if (rc == 0)
		rc = pthread_detach(thread);
	if (rc != 0) {
		snprintf(error, size, "cannot start the reload thread: %s",
		    strerror(rc));
		return false;
	}
	return true;
}

static int
parse_debug_level(const char *text)
{
	char *end;
	long level = strtol(text, &end, 10);

	if (end == text || *end != '\0' || level < 0 || level > 9) {
		fprintf(stderr, "ondemand-milter: invalid debug level \"%s\": "
		    "expected 0 to 9\n", text);
		exit(EX_USAGE);
	}
	return (int)level;
}

static void
parse_options(int argc, char **argv)
{
	int opt;

	options.config_file = OD_DEFAULT_CONFIG_FILE;
	while ((opt = getopt(argc, argv, "c:p:u:P:fd:nVh")) != -1) {
		switch (opt) {
		case 'c':
			options.config_file = optarg;
			break;
		case 'p':
			options.socket = optarg;
			break;
		case 'u':
			options.user = optarg;
			break;
		case 'P':
			options.pidfile = optarg;
			break;
		case 'f':
			options.foreground = true;
			break;
		case 'd':
			options.debug_level = parse_debug_level(optarg);
			break;
		case 'n':
			options.check_only = true;
			break;
		case 'V':
			printf("ondemand-milter %s (libmilter API %d)\n",
			    PACKAGE_VERSION, SMFI_VERSION);
			exit(EX_OK);
		case 'h':
			usage(stdout);
			exit(EX_OK);
		default:
			usage(stderr);
			exit(EX_USAGE);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ondemand-milter: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		exit(EX_USAGE);
	}
}

static void
fatal(int code, const char *message)
{
	od_log(LOG_ERR, "%s", message);
	exit(code);
}

int
main(int argc, char **argv)
{
	char error[1200];
	struct od_config *config;
	struct identity identity;
	struct listeners listeners;
	struct od_helper *helper;
	char *pidfile;
	int rc;

	parse_options(argc, argv);

	config = load_config(error, sizeof(error));
	if (config == NULL) {
		fprintf(stderr, "%s\n", error);
		return EX_CONFIG;
	}
	if (!resolve_identity(config->user, &identity, error, sizeof(error))) {
		fprintf(stderr, "ondemand-milter: %s\n", error);
		od_config_free(config);
		return EX_CONFIG;
	}
	if (options.check_only) {
		printf("configuration OK\n");
		od_config_free(config);
		return EX_OK;
	}

	od_log_open("ondemand-milter", true, options.debug_level);
	if (!open_socket(config, &identity, error, sizeof(error)) ||
	    !open_listeners(config, &identity, &listeners, error,
	    sizeof(error)))
		fatal(EX_UNAVAILABLE, error);

	if (!options.foreground) {
		daemonize();
		od_log_stderr(false);
	}
	pidfile = strdup(config->pidfile);
	if (pidfile == NULL)
		fatal(EX_OSERR, "out of memory");
	if (!write_pidfile(pidfile, &identity))
		fatal(EX_CANTCREAT, "cannot start without a pid file");
	/* The helper keeps root, so it is forked before the drop. */
	helper = od_helper_start(config->sendmail_path,
	    config->sendmail_config, error, sizeof(error));
	if (helper == NULL) {
		unlink(pidfile);
		fatal(EX_OSERR, error);
	}
	/* Writes to a closed control or socketmap peer must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	block_signals();

	od_log(LOG_NOTICE, "starting: version=%s socket=%s socketmap=%s "
	    "control=%s config=%s domains=%zu user=%s on_error=%s",
	    PACKAGE_VERSION, config->socket,
	    config->socketmap ? config->socketmap : "none",
	    config->control_socket ? config->control_socket : "none",
	    options.config_file,
	    od_domain_set_count(config->domains),
	    identity.change ? identity.name : "unchanged",
	    config->on_error == OD_ON_ERROR_HOLD ? "hold" : "tempfail");
	/* The runtime owns the configuration from here on. */
	apply_config(config);
	config = NULL;
	if (!start_reload_thread(error, sizeof(error)) ||
	    !drop_privileges(&identity, error, sizeof(error)) ||
	    !start_servers(&listeners, helper, error, sizeof(error))) {
		unlink(pidfile);
		fatal(EX_OSERR, error);
	}

	rc = smfi_main();
	od_log(LOG_NOTICE, "stopping: libmilter main loop returned %s",
	    rc == MI_SUCCESS ? "success" : "failure");
	od_ledger_client_stop();
	if (unlink(pidfile) != 0 && errno != ENOENT)
		od_log(LOG_WARNING, "cannot remove pid file %s: %m", pidfile);
	free(pidfile);
	return rc == MI_SUCCESS ? EX_OK : EX_SOFTWARE;
}
