/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: ondemandctl's reading of the daemon's reply.
 *
 * The input is a reply as the daemon would send it.  The target includes
 * milter/ctl.c, with its main renamed, and calls its run() in each output
 * format against a stand-in daemon.  That is a thread that accepts on a
 * unix socket in a private temporary directory, reads the request line and
 * sends the input back.  Standard output and ondemandctl's messages go to
 * /dev/null.
 */

#include "config.h"

#include <stdio.h>

/* ctl.c's messages to stderr go to /dev/null, not into libFuzzer's log. */
static FILE *fuzz_ctl_messages;
#undef stderr
#define stderr fuzz_ctl_messages
#define main ondemandctl_main
int ondemandctl_main(int argc, char **argv);

#include "../../milter/ctl.c"

#undef main
#undef stderr

#include <limits.h>
#include <pthread.h>

#include "fuzz.h"

static char directory[PATH_MAX];
static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
/*
 * The reply the stand-in daemon sends, and how many connections it has
 * finished, so that an input outlives every connection that sends it.
 */
static pthread_mutex_t reply_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reply_done = PTHREAD_COND_INITIALIZER;
static const uint8_t *reply_data;
static size_t reply_size;
static unsigned long connections_served;

static void
remove_files(void)
{
	unlink(socket_path);
	rmdir(directory);
}

/* Reads the request line, then sends the current reply and closes. */
static void *
serve_replies(void *argument)
{
	int listener = *(int *)argument;

	for (;;) {
		int fd = accept(listener, NULL, NULL);
		char c;
		ssize_t n;

		if (fd < 0)
			continue;
		while ((n = read(fd, &c, 1)) == 1 && c != '\n')
			continue;
		pthread_mutex_lock(&reply_lock);
		/* ondemandctl may close after "OK": no SIGPIPE for the rest. */
		if (reply_size > 0)
			n = send(fd, reply_data, reply_size, MSG_NOSIGNAL);
		(void)n;
		close(fd);
		connections_served++;
		pthread_cond_signal(&reply_done);
		pthread_mutex_unlock(&reply_lock);
	}
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static int listener;
	struct sockaddr_un address;
	const char *tmp = getenv("TMPDIR");
	pthread_t thread;

	(void)argc;
	(void)argv;
	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	snprintf(directory, sizeof(directory), "%s/ondemand-fuzz-ctl-XXXXXX",
	    tmp);
	if (mkdtemp(directory) == NULL) {
		perror("fuzz-ctl: cannot create a directory in TMPDIR");
		exit(1);
	}
	if ((size_t)snprintf(socket_path, sizeof(socket_path), "%s/control",
	    directory) >= sizeof(socket_path)) {
		fprintf(stderr, "fuzz-ctl: TMPDIR %s is too long for a unix "
		    "socket path\n", tmp);
		exit(1);
	}
	atexit(remove_files);

	memset(&address, 0, sizeof(address));
	address.sun_family = AF_UNIX;
	memcpy(address.sun_path, socket_path, strlen(socket_path));
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(listener >= 0);
	FUZZ_CHECK(bind(listener, (struct sockaddr *)&address,
	    sizeof(address)) == 0);
	FUZZ_CHECK(listen(listener, 4) == 0);
	FUZZ_CHECK(pthread_create(&thread, NULL, serve_replies,
	    &listener) == 0);

	FUZZ_CHECK(freopen("/dev/null", "w", stdout) != NULL);
	fuzz_ctl_messages = fopen("/dev/null", "w");
	FUZZ_CHECK(fuzz_ctl_messages != NULL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum output_format formats[] = {
		FORMAT_TABLE, FORMAT_JSON, FORMAT_TSV
	};

	unsigned long served;

	pthread_mutex_lock(&reply_lock);
	reply_data = data;
	reply_size = size;
	served = connections_served;
	pthread_mutex_unlock(&reply_lock);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		int status = run(socket_path, "STATUS", formats[i]);

		FUZZ_CHECK(status == EX_OK || status == EX_UNAVAILABLE ||
		    status == EX_PROTOCOL);
	}

	/* run() may return before the stand-in daemon is done sending. */
	pthread_mutex_lock(&reply_lock);
	while (connections_served < served +
	    sizeof(formats) / sizeof(formats[0]))
		pthread_cond_wait(&reply_done, &reply_lock);
	reply_data = NULL;
	reply_size = 0;
	pthread_mutex_unlock(&reply_lock);
	return 0;
}
