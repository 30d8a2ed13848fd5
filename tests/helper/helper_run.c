/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test driver for the release helper: starts it with od_helper_start and
 * calls the od_helper_* API (or, with "raw", speaks the line protocol
 * directly), printing what comes back so shell tests can check it.
 *
 * usage: helper_run SENDMAIL CONFIG|- COMMAND [ARGUMENT...]
 *
 *   deliver ID...          od_helper_deliver; prints "status N"
 *   deliver-domain DOMAIN  od_helper_deliver_domain
 *   unhold ID...           od_helper_unhold
 *   expire AGE ID...       od_helper_expire with AGE seconds
 *   list                   od_helper_list; one "item ..." line per item
 *   parallel N VERB ARG... N threads make the same call at once
 *   list-while-busy N ID   starts N delivery calls, then times a list
 *   kill-helper MS VERB ARG...  kills the helper with SIGKILL MS
 *                          milliseconds into the call
 *   stop-during MS VERB ARG...  calls od_helper_stop MS milliseconds
 *                          into the call, from another thread
 *   alive                  prints whether the helper runs, before and
 *                          after killing it
 *   raw                    sends each line of standard input as is and
 *                          prints every reply until each request has
 *                          its DONE or ERROR
 */

#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper_internal.h"
#include "od_helper.h"
#include "od_helper_proto.h"
#include "od_log.h"

struct call {
	struct od_helper *helper;
	const char *verb;
	const char *const *arguments;
	size_t count;
	int status;
	double seconds;
};

static double
now_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		continue;
}

static int
print_list(struct od_helper *helper)
{
	struct od_helper_item *items;
	size_t count, i;
	int status = od_helper_list(helper, &items, &count);

	for (i = 0; status == 0 && i < count; i++)
		printf("item %s %lld %lld %s|%s\n", items[i].queue_id,
		    items[i].size, (long long)items[i].queued,
		    items[i].sender, items[i].reason);
	free(items);
	return status;
}

static int
make_call(struct od_helper *helper, const char *verb,
    const char *const *arguments, size_t count)
{
	if (strcmp(verb, "deliver") == 0)
		return od_helper_deliver(helper, arguments, count);
	if (strcmp(verb, "deliver-domain") == 0)
		return od_helper_deliver_domain(helper,
		    count > 0 ? arguments[0] : NULL);
	if (strcmp(verb, "unhold") == 0)
		return od_helper_unhold(helper, arguments, count);
	if (strcmp(verb, "expire") == 0) {
		if (count == 0) {
			fprintf(stderr, "helper_run: expire needs an age\n");
			exit(2);
		}
		return od_helper_expire(helper, arguments + 1, count - 1,
		    strtoul(arguments[0], NULL, 10));
	}
	if (strcmp(verb, "list") == 0)
		return print_list(helper);
	fprintf(stderr, "helper_run: unknown call \"%s\"\n", verb);
	exit(2);
}

static void *
call_thread(void *argument)
{
	struct call *call = argument;
	double start = now_seconds();

	call->status = make_call(call->helper, call->verb, call->arguments,
	    call->count);
	call->seconds = now_seconds() - start;
	return NULL;
}

static int
run_parallel(struct od_helper *helper, int argc, char **argv)
{
	long n = strtol(argv[0], NULL, 10);
	struct call *calls;
	pthread_t *threads;
	long i;

	if (n < 1 || n > 1000 || argc < 2) {
		fprintf(stderr, "helper_run: parallel N VERB [ARGUMENT...]\n");
		return 2;
	}
	calls = calloc((size_t)n, sizeof(*calls));
	threads = calloc((size_t)n, sizeof(*threads));
	if (calls == NULL || threads == NULL)
		return 2;
	for (i = 0; i < n; i++) {
		calls[i].helper = helper;
		calls[i].verb = argv[1];
		calls[i].arguments = (const char *const *)argv + 2;
		calls[i].count = (size_t)argc - 2;
		pthread_create(&threads[i], NULL, call_thread, &calls[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(threads[i], NULL);
		printf("status %d\n", calls[i].status);
	}
	free(calls);
	free(threads);
	return 0;
}

/* Times a LIST made while n delivery calls of id are running. */
static int
run_list_while_busy(struct od_helper *helper, char **argv)
{
	long n = strtol(argv[0], NULL, 10);
	const char *const ids[1] = { argv[1] };
	struct call calls[64];
	pthread_t threads[64];
	double start;
	int status;
	long i;

	if (n < 1 || n > 64)
		return 2;
	for (i = 0; i < n; i++) {
		calls[i] = (struct call){ helper, "deliver", ids, 1, 0, 0 };
		pthread_create(&threads[i], NULL, call_thread, &calls[i]);
	}
	/* Let every delivery reach the helper first. */
	sleep_ms(500);
	start = now_seconds();
	status = make_call(helper, "list", NULL, 0);
	printf("list status %d seconds %.1f\n", status, now_seconds() - start);
	for (i = 0; i < n; i++) {
		pthread_join(threads[i], NULL);
		printf("status %d\n", calls[i].status);
	}
	od_helper_stop(helper);
	return 0;
}

/* Kills the helper, or stops the client, ms into a call. */
static int
run_interrupted(struct od_helper *helper, bool stop, int argc, char **argv)
{
	long ms = strtol(argv[0], NULL, 10);
	struct call call = { helper, argv[1], (const char *const *)argv + 2,
	    (size_t)argc - 2, 0, 0 };
	pthread_t thread;

	pthread_create(&thread, NULL, call_thread, &call);
	sleep_ms(ms);
	if (stop) {
		pid_t pid = od_helper_pid(helper);

		od_helper_stop(helper);
		pthread_join(thread, NULL);
		/* od_helper_stop reaped it, so kill(pid, 0) fails once gone. */
		printf("status %d seconds %.1f helper %s\n", call.status,
		    call.seconds, kill(pid, 0) == 0 ? "running" : "gone");
		return 0;
	}
	kill(od_helper_pid(helper), SIGKILL);
	pthread_join(thread, NULL);
	printf("status %d seconds %.1f alive %d\n", call.status, call.seconds,
	    od_helper_alive(helper));
	printf("after status %d\n", make_call(helper, "list", NULL, 0));
	od_helper_stop(helper);
	return 0;
}

static int
run_alive(struct od_helper *helper)
{
	int i;

	printf("alive %d\n", od_helper_alive(helper));
	kill(od_helper_pid(helper), SIGKILL);
	/* Without the reader thread the check looks at the socket itself. */
	for (i = 0; i < 100 && od_helper_alive(helper); i++)
		sleep_ms(20);
	printf("alive %d\n", od_helper_alive(helper));
	printf("status %d\n", od_helper_deliver_domain(helper,
	    "example.test"));
	od_helper_stop(helper);
	return 0;
}

/* Counts replies that end a request: DONE and ERROR lines. */
static size_t
print_replies(const char *buffer, size_t length)
{
	size_t ends = 0;
	size_t start = 0;
	size_t i;

	for (i = 0; i < length; i++) {
		if (buffer[i] != '\n')
			continue;
		printf("%.*s\n", (int)(i - start), buffer + start);
		if (strncmp(buffer + start, "DONE ", 5) == 0 ||
		    strncmp(buffer + start, "ERROR ", 6) == 0)
			ends++;
		start = i + 1;
	}
	return ends;
}

static int
run_raw(const char *sendmail, const char *config)
{
	static char line[2 * OD_HELPER_LINE_MAX];
	static char replies[1 << 20];
	size_t requests = 0, ends = 0, used = 0;
	int fds[2];
	pid_t pid;
	int status;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
		return 2;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(od_helper_main(fds[1], sendmail, config));
	}
	close(fds[1]);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t length = strlen(line);

		if (send(fds[0], line, length, MSG_NOSIGNAL) < 0)
			break;
		requests++;
	}
	while (ends < requests) {
		ssize_t n = read(fds[0], replies + used,
		    sizeof(replies) - used);
		size_t last;

		if (n <= 0)
			break;
		used += (size_t)n;
		last = used;
		while (last > 0 && replies[last - 1] != '\n')
			last--;
		ends += print_replies(replies, last);
		memmove(replies, replies + last, used - last);
		used -= last;
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	printf("helper exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) :
	    128 + WTERMSIG(status));
	return ends == requests ? 0 : 1;
}

int
main(int argc, char **argv)
{
	char error[512];
	const char *sendmail, *config;
	struct od_helper *helper;
	int status;

	if (argc < 4) {
		fprintf(stderr, "usage: helper_run SENDMAIL CONFIG|- COMMAND "
		    "[ARGUMENT...]\n");
		return 2;
	}
	sendmail = argv[1];
	config = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	/*
	 * With HELPER_RUN_DEBUG set, the helper keeps standard error and
	 * copies its log lines there, as it does for ondemand-milter -d.
	 */
	od_log_open(OD_HELPER_LOG_IDENT, getenv("HELPER_RUN_DEBUG") != NULL,
	    getenv("HELPER_RUN_DEBUG") != NULL ? 1 : 0);

	if (strcmp(argv[3], "raw") == 0)
		return run_raw(sendmail, config);

	helper = od_helper_start(sendmail, config, error, sizeof(error));
	if (helper == NULL) {
		printf("start failed: %s\n", error);
		return 1;
	}
	printf("helper pid %ld\n", (long)od_helper_pid(helper));
	if (strcmp(argv[3], "parallel") == 0 && argc >= 6)
		return run_parallel(helper, argc - 4, argv + 4);
	if (strcmp(argv[3], "list-while-busy") == 0 && argc >= 6)
		return run_list_while_busy(helper, argv + 4);
	if (strcmp(argv[3], "kill-helper") == 0 && argc >= 6)
		return run_interrupted(helper, false, argc - 4, argv + 4);
	if (strcmp(argv[3], "stop-during") == 0 && argc >= 6)
		return run_interrupted(helper, true, argc - 4, argv + 4);
	if (strcmp(argv[3], "alive") == 0)
		return run_alive(helper);

	status = make_call(helper, argv[3], (const char *const *)argv + 4,
	    (size_t)argc - 4);
	printf("status %d\n", status);
	od_helper_stop(helper);
	return 0;
}
