/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The release helper process: the only part of ondemand-milter that keeps
 * root, because sendmail 8.17 lets only root run or change quarantined
 * ("held") queue items.  As any other user `sendmail -Q` fails with
 * "Permission denied (real uid not trusted)" and a queue run of held
 * items silently does nothing.
 *
 * od_helper_start forks it before the daemon drops privileges.  It reads
 * requests from a socketpair (the protocol is in od_helper_proto.h), checks
 * each one completely, and runs sendmail with a fixed argument vector
 * through fork and execve: never a shell, never a string built from the
 * request.  Up to RUNS_MAX delivery runs and LISTS_MAX listings run at
 * once; later requests wait their turn.  A single poll loop serves the
 * socket, the output of listings and SIGCHLD (through a self-pipe).  When
 * the daemon's end closes, the helper exits and lets its sendmail runs
 * finish on their own.
 *
 * The sendmail commands, checked against sendmail 8.17.1.9 (Debian 12):
 *
 *   DELIVER     sendmail -qQ -qI<ID>... -v -O MaxQueueRunSize=0
 *   DELIVERTAG  sendmail -qQ[DOMAIN] -v -O MaxQueueRunSize=0
 *   UNHOLD      sendmail -Q -qQ -qI<ID>...
 *   EXPIRE      sendmail -Q -qQ -qI<ID>..., then
 *               sendmail -qI<ID>... -v -O MaxQueueRunSize=0
 *                   -O Timeout.queuereturn=<AGE>s
 *   LIST        sendmail -bp -qQ -O MaxQueueRunSize=0
 *
 * each preceded by "-C FILE" when a configuration file was given.  Why:
 *
 * - Command-line queue runs fork and return at once, but with -v sendmail
 *   runs the queue itself and exits when it is done, so DONE means that
 *   the run ended.  Its status is 0 even when messages stayed queued (a
 *   refused connection included): DONE 0 does not mean all were sent.
 * - A MaxQueueRunSize in the cf cuts a run (and the listing) short with
 *   only a "WorkList ... maxed out" log line.
 * - A run limited by -qI or -qQ ignores stored host status (observed: after
 *   a refused connection, `-q -v` reported the cached deferral without
 *   connecting while `-qQ -qI<ID> -v` connected).  Timeout.hoststatus=0s is
 *   not set on purpose: it also drops the status cached within the run, so
 *   every message to a dead host retried the connection (5 attempts for 5
 *   messages instead of 1).
 * - `sendmail -Q -qI<ID>` without -qQ does nothing and exits 0.
 * - EXPIRE un-holds first because a DSN produced by a run over held items
 *   is itself queued held, with the same quarantine reason, when it cannot
 *   be delivered at once.  Run from the normal queue, the expired message's
 *   DSN goes to the normal queue.  A message that a normal queue runner
 *   takes between the two steps is delivered by it, or expires later with
 *   the cf's own timeouts.
 * - -qI matches a substring of the queue file name.  NOTE: a full ID can
 *   in theory be part of a longer ID (IDs grow by a digit when process IDs
 *   exceed 999999), so a run may include such a second held item.
 */

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "helper_internal.h"
#include "od_helper_proto.h"
#include "od_log.h"
#include "od_util.h"

/* Concurrent sendmail delivery runs (DELIVER, DELIVERTAG, UNHOLD, EXPIRE). */
#define RUNS_MAX 8
/*
 * Concurrent listings.  They have slots of their own, so delivery runs that
 * fill theirs do not delay a LIST.
 */
#define LISTS_MAX 2
/* Requests waiting for a slot; more are rejected so memory stays bounded. */
#define WAITING_MAX 1024
/* Queue IDs per log line, so a line stays under syslog's usual 1 KiB. */
#define LOG_IDS_PER_LINE 40
/* Prefix of a queue control file read for a quarantine reason. */
#define QUEUE_FILE_READ_MAX 65536

#define SENDMAIL_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
#define SENDMAIL_PATH_ENV "PATH=" SENDMAIL_PATH

struct job {
	struct od_helper_request request;
	int step;		/* EXPIRE: 1 un-hold, 2 expiry run */
	pid_t pid;		/* 0 while waiting */
	bool exited;
	int status;
	struct timespec started;
	/* LIST only: sendmail's standard output and its parser */
	int output;
	char *buffer;
	size_t buffered;
	bool discarding;	/* the current output line was too long */
	struct od_mailq_parser *parser;
	size_t items;
	struct job *next;
};

struct job_queue {
	struct job *head;
	struct job *tail;
};

struct helper {
	int socket;
	bool peer_gone;
	int signal_pipe[2];
	const char *sendmail;
	const char *config;
	bool debug;
	char input[OD_HELPER_LINE_MAX];
	size_t input_used;
	bool input_discarding;
	struct job *running;
	size_t running_runs;
	size_t running_lists;
	struct job_queue waiting_runs;
	struct job_queue waiting_lists;
	size_t waiting;
};

static int signal_pipe_write = -1;

static void
on_sigchld(int signo)
{
	int saved = errno;
	char byte = 0;
	ssize_t written;

	(void)signo;
	/* A full pipe already contains a wake-up, so a failed write is fine. */
	written = write(signal_pipe_write, &byte, 1);
	(void)written;
	errno = saved;
}

static double
seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) +
	    (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/*
 * Closes every descriptor from first on except keep (-1 for none).  Uses
 * close_range(2) where the kernel has it, else the list in /proc/self/fd.
 */
static void
close_descriptors_from(int first, int keep)
{
	DIR *dir;
	struct dirent *entry;

#ifdef SYS_close_range
	if (keep < first) {
		if (syscall(SYS_close_range, (unsigned)first, ~0U, 0U) == 0)
			return;
	} else if ((keep == first || syscall(SYS_close_range,
	    (unsigned)first, (unsigned)keep - 1, 0U) == 0) &&
	    syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0) {
		return;
	}
#endif
	dir = opendir("/proc/self/fd");
	if (dir != NULL) {
		int own = dirfd(dir);

		while ((entry = readdir(dir)) != NULL) {
			int fd = atoi(entry->d_name);

			if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
				continue;
			if (fd >= first && fd != keep && fd != own)
				close(fd);
		}
		closedir(dir);
		return;
	}
	{
		long max = sysconf(_SC_OPEN_MAX);
		int fd;

		if (max < 0 || max > 1048576)
			max = 1048576;
		for (fd = first; fd < max; fd++)
			if (fd != keep)
				close(fd);
	}
}

/* Sends one reply line; marks the daemon gone when the socket fails. */
static void
send_reply(struct helper *helper, const char *line, size_t length)
{
	size_t sent = 0;

	while (sent < length && !helper->peer_gone) {
		ssize_t n = send(helper->socket, line + sent, length - sent,
		    MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			od_log(LOG_ERR, "release helper: cannot send a reply "
			    "to the daemon: %s; exiting",
			    n < 0 ? strerror(errno) : "connection closed");
			helper->peer_gone = true;
			return;
		}
		sent += (size_t)n;
	}
}

static void
send_done(struct helper *helper, const char *tag, int status)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "DONE %s %d\n", tag, status);

	send_reply(helper, line, (size_t)n);
}

static void
send_error(struct helper *helper, const char *tag, const char *message)
{
	char line[1024];
	int n;
	int i;

	n = snprintf(line, sizeof(line), "ERROR %s %s\n", tag, message);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = snprintf(line, sizeof(line), "ERROR %s request rejected\n",
		    tag);
	/* Messages quote requests escaped, but a stray newline would split
	 * the reply, so the line gets a last check. */
	for (i = 0; i < n - 1; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			line[i] = '?';
	send_reply(helper, line, (size_t)n);
}

/* Logs the queue IDs of a job in lines of LOG_IDS_PER_LINE. */
static void
log_ids(int priority, const struct job *job)
{
	const struct od_helper_request *request = &job->request;
	size_t i = 0;

	while (i < request->id_count) {
		char line[LOG_IDS_PER_LINE * (OD_QUEUE_ID_MAX + 1) + 1];
		size_t used = 0;
		size_t first = i;

		for (; i < request->id_count && i - first < LOG_IDS_PER_LINE;
		    i++) {
			size_t len = strlen(request->ids[i]);

			if (used > 0)
				line[used++] = ' ';
			memcpy(line + used, request->ids[i], len);
			used += len;
		}
		line[used] = '\0';
		od_log(priority, "release helper: %s tag=%s pid=%ld queue IDs "
		    "%zu-%zu of %zu: %s", od_helper_verb_name(request->verb),
		    request->tag, (long)job->pid, first + 1, i,
		    request->id_count, line);
	}
}

static void
job_free(struct job *job)
{
	if (job == NULL)
		return;
	od_helper_request_free(&job->request);
	if (job->output >= 0)
		close(job->output);
	free(job->buffer);
	free(job->parser);
	free(job);
}

static void
queue_push(struct job_queue *queue, struct job *job)
{
	job->next = NULL;
	if (queue->tail != NULL)
		queue->tail->next = job;
	else
		queue->head = job;
	queue->tail = job;
}

static struct job *
queue_pop(struct job_queue *queue)
{
	struct job *job = queue->head;

	if (job != NULL) {
		queue->head = job->next;
		if (queue->head == NULL)
			queue->tail = NULL;
		job->next = NULL;
	}
	return job;
}

/*
 * Builds sendmail's argument vector for a job.  Every queue ID and domain
 * in it passed od_helper_request_parse.  Returns NULL when memory runs
 * out; free the vector and *strings afterwards.
 */
static char **
build_argv(const struct helper *helper, const struct job *job, char **strings)
{
	const struct od_helper_request *request = &job->request;
	size_t max = request->id_count + 16;
	/*
	 * "-qI" and an ID, or "-qQ[" and a domain and "]", each with a NUL,
	 * and EXPIRE's timeout option.
	 */
	size_t text_size = request->id_count * (OD_QUEUE_ID_MAX + 4) +
	    OD_DOMAIN_SIZE + 8 + 64;
	char **argv = calloc(max, sizeof(*argv));
	char *text = malloc(text_size);
	size_t n = 0;
	char *p;
	bool ids = false, run = false;
	size_t i;

	if (argv == NULL || text == NULL) {
		free(argv);
		free(text);
		return NULL;
	}
	p = text;
	argv[n++] = (char *)helper->sendmail;
	if (helper->config != NULL) {
		argv[n++] = "-C";
		argv[n++] = (char *)helper->config;
	}
	switch (request->verb) {
	case OD_HELPER_DELIVER:
		argv[n++] = "-qQ";
		ids = run = true;
		break;
	case OD_HELPER_DELIVERTAG:
		/* The brackets keep example.test from matching example.test.au. */
		argv[n++] = p;
		p += snprintf(p, text_size - (size_t)(p - text), "-qQ[%s]",
		    request->domain) + 1;
		run = true;
		break;
	case OD_HELPER_UNHOLD:
		argv[n++] = "-Q";
		argv[n++] = "-qQ";
		ids = true;
		break;
	case OD_HELPER_EXPIRE:
		if (job->step == 1) {
			argv[n++] = "-Q";
			argv[n++] = "-qQ";
			ids = true;
		} else {
			ids = run = true;
		}
		break;
	case OD_HELPER_LIST:
		argv[n++] = "-bp";
		argv[n++] = "-qQ";
		argv[n++] = "-O";
		argv[n++] = "MaxQueueRunSize=0";
		break;
	}
	if (ids) {
		for (i = 0; i < request->id_count; i++) {
			argv[n++] = p;
			p += snprintf(p, text_size - (size_t)(p - text),
			    "-qI%s", request->ids[i]) + 1;
		}
	}
	if (run) {
		argv[n++] = "-v";
		argv[n++] = "-O";
		argv[n++] = "MaxQueueRunSize=0";
	}
	if (request->verb == OD_HELPER_EXPIRE && job->step == 2) {
		/*
		 * The same run delivers the DSNs it creates, under the same
		 * timeout.  A DSN is younger than the age, so one whose
		 * first attempt fails stays queued for sendmail's retries
		 * instead of going on to the postmaster.
		 */
		argv[n++] = "-O";
		argv[n++] = p;
		p += snprintf(p, text_size - (size_t)(p - text),
		    "Timeout.queuereturn=%lus", request->age) + 1;
	}
	argv[n] = NULL;
	*strings = text;
	return argv;
}

/* Runs in the forked child; never returns. */
static void
exec_sendmail(const struct helper *helper, char **argv, int output)
{
	static char *const environment[] = { SENDMAIL_PATH_ENV, NULL };
	sigset_t none;
	int null_fd;

	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0) {
		syslog(LOG_ERR, "release helper: cannot open /dev/null for "
		    "sendmail: %m");
		_exit(127);
	}
	dup2(null_fd, STDIN_FILENO);
	if (output >= 0)
		dup2(output, STDOUT_FILENO);
	else if (helper->debug)
		dup2(STDERR_FILENO, STDOUT_FILENO);
	else
		dup2(null_fd, STDOUT_FILENO);
	if (!helper->debug)
		dup2(null_fd, STDERR_FILENO);
	close_descriptors_from(STDERR_FILENO + 1, -1);

	execve(helper->sendmail, argv, environment);
	syslog(LOG_ERR, "release helper: cannot execute %s: %m; set "
	    "SendmailPath to sendmail's binary", helper->sendmail);
	_exit(127);
}

static struct job *
find_job(struct helper *helper, pid_t pid)
{
	struct job *job;

	for (job = helper->running; job != NULL; job = job->next)
		if (job->pid == pid)
			return job;
	return NULL;
}

static void
remove_running(struct helper *helper, struct job *job)
{
	struct job **link;

	for (link = &helper->running; *link != NULL; link = &(*link)->next) {
		if (*link == job) {
			*link = job->next;
			break;
		}
	}
	if (job->request.verb == OD_HELPER_LIST)
		helper->running_lists--;
	else
		helper->running_runs--;
}

/*
 * Forks sendmail for a job (or its next step).  When sendmail cannot be
 * started, sends ERROR for the request and returns false.
 */
static bool
start_job(struct helper *helper, struct job *job)
{
	const struct od_helper_request *request = &job->request;
	int pipe_fds[2] = { -1, -1 };
	char *strings = NULL;
	char **argv;
	pid_t pid;

	argv = build_argv(helper, job, &strings);
	if (argv == NULL) {
		od_log(LOG_ERR, "release helper: %s tag=%s not started: out "
		    "of memory", od_helper_verb_name(request->verb),
		    request->tag);
		send_error(helper, request->tag, "release helper out of memory");
		return false;
	}
	if (request->verb == OD_HELPER_LIST) {
		if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
			od_log(LOG_ERR, "release helper: LIST tag=%s not "
			    "started: pipe: %m", request->tag);
			send_error(helper, request->tag, "cannot create a pipe "
			    "for sendmail's output");
			free(argv);
			free(strings);
			return false;
		}
	}

	pid = fork();
	if (pid == 0)
		exec_sendmail(helper, argv, pipe_fds[1]);
	free(argv);
	free(strings);
	if (pipe_fds[1] >= 0)
		close(pipe_fds[1]);
	if (pid < 0) {
		od_log(LOG_ERR, "release helper: %s tag=%s not started: fork: "
		    "%m", od_helper_verb_name(request->verb), request->tag);
		if (pipe_fds[0] >= 0)
			close(pipe_fds[0]);
		send_error(helper, request->tag, "cannot fork sendmail");
		return false;
	}

	job->pid = pid;
	job->exited = false;
	job->output = pipe_fds[0];
	if (job->output >= 0)
		fcntl(job->output, F_SETFL, O_NONBLOCK);
	/* An EXPIRE's time counts from its first step. */
	if (job->step <= 1)
		clock_gettime(CLOCK_MONOTONIC, &job->started);

	if (request->verb == OD_HELPER_DELIVERTAG)
		od_log(LOG_INFO, "release helper: DELIVERTAG run started: "
		    "tag=%s pid=%ld domain=%s", request->tag, (long)pid,
		    request->domain);
	else if (request->verb == OD_HELPER_LIST)
		od_log(LOG_INFO, "release helper: LIST run started: tag=%s "
		    "pid=%ld", request->tag, (long)pid);
	else {
		od_log(LOG_INFO, "release helper: %s run started: tag=%s "
		    "pid=%ld step=%s ids=%zu", od_helper_verb_name(request->verb),
		    request->tag, (long)pid,
		    request->verb != OD_HELPER_EXPIRE ? "run" :
		    job->step == 1 ? "unhold" : "expire", request->id_count);
		log_ids(LOG_INFO, job);
	}
	return true;
}

static void
start_waiting(struct helper *helper)
{
	struct job *job;

	while (helper->running_runs < RUNS_MAX &&
	    (job = queue_pop(&helper->waiting_runs)) != NULL) {
		helper->waiting--;
		if (!start_job(helper, job)) {
			job_free(job);
			continue;
		}
		job->next = helper->running;
		helper->running = job;
		helper->running_runs++;
	}
	while (helper->running_lists < LISTS_MAX &&
	    (job = queue_pop(&helper->waiting_lists)) != NULL) {
		helper->waiting--;
		job->parser = malloc(sizeof(*job->parser));
		job->buffer = malloc(OD_HELPER_LINE_MAX);
		if (job->parser == NULL || job->buffer == NULL) {
			od_log(LOG_ERR, "release helper: LIST tag=%s not "
			    "started: out of memory", job->request.tag);
			send_error(helper, job->request.tag, "release helper "
			    "out of memory");
			job_free(job);
			continue;
		}
		od_mailq_init(job->parser, time(NULL));
		if (!start_job(helper, job)) {
			job_free(job);
			continue;
		}
		job->next = helper->running;
		helper->running = job;
		helper->running_lists++;
	}
}

/* Reads the whole reason of an item whose listed reason was cut. */
static void
complete_reason(struct od_mailq_item *entry)
{
	static const char *const subdirectories[] = { "/hf", "/qf/hf" };
	char path[sizeof(entry->directory) + 32];
	char *text;
	size_t i;

	text = malloc(QUEUE_FILE_READ_MAX);
	if (text == NULL)
		return;
	for (i = 0; i < 2; i++) {
		struct stat st;
		ssize_t n;
		int fd;

		snprintf(path, sizeof(path), "%s%s%s", entry->directory,
		    subdirectories[i], entry->item.queue_id);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		n = read(fd, text, QUEUE_FILE_READ_MAX);
		close(fd);
		if (n > 0 && od_queue_file_reason(text, (size_t)n,
		    entry->item.reason, sizeof(entry->item.reason)))
			break;
	}
	if (i == 2)
		od_debug(1, "release helper: no full quarantine reason found "
		    "for %s in %s; keeping the listed part",
		    entry->item.queue_id, entry->directory);
	free(text);
}

static void
send_item(struct helper *helper, struct job *job, struct od_mailq_item *entry)
{
	char line[4096];
	size_t length;

	if (entry->reason_cut)
		complete_reason(entry);
	length = od_helper_item_format(job->request.tag, &entry->item, line,
	    sizeof(line));
	if (length == 0) {
		od_log(LOG_WARNING, "release helper: LIST tag=%s: held item "
		    "%s left out, its line is too long",
		    job->request.tag, entry->item.queue_id);
		return;
	}
	send_reply(helper, line, length);
	job->items++;
}

static void
parse_output_line(struct helper *helper, struct job *job, const char *line,
    size_t length)
{
	struct od_mailq_item entry;

	if (od_mailq_line(job->parser, line, length, &entry))
		send_item(helper, job, &entry);
}

/* Reads what a listing printed; returns false at end of output. */
static bool
read_output(struct helper *helper, struct job *job)
{
	for (;;) {
		ssize_t n = read(job->output, job->buffer + job->buffered,
		    OD_HELPER_LINE_MAX - job->buffered);
		size_t start = 0;
		size_t i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			if (job->buffered > 0 && !job->discarding)
				parse_output_line(helper, job, job->buffer,
				    job->buffered);
			job->buffered = 0;
			return false;
		}
		job->buffered += (size_t)n;
		for (i = 0; i < job->buffered; i++) {
			if (job->buffer[i] != '\n')
				continue;
			if (!job->discarding)
				parse_output_line(helper, job,
				    job->buffer + start, i - start);
			job->discarding = false;
			start = i + 1;
		}
		memmove(job->buffer, job->buffer + start,
		    job->buffered - start);
		job->buffered -= start;
		if (job->buffered == OD_HELPER_LINE_MAX) {
			/* No sendmail listing line is this long. */
			static const char marker[] = "(a line longer than "
			    "65536 octets)";

			parse_output_line(helper, job, marker,
			    sizeof(marker) - 1);
			job->discarding = true;
			job->buffered = 0;
		}
	}
}

static void
finish_list(struct helper *helper, struct job *job)
{
	struct od_mailq_item entry;
	char problem[512];
	int status = job->status;

	if (od_mailq_finish(job->parser, &entry))
		send_item(helper, job, &entry);
	if (status != 0) {
		od_log(LOG_ERR, "release helper: LIST run failed: tag=%s "
		    "pid=%ld status=%d (sendmail -bp -qQ); set SendmailPath "
		    "and SendmailConfig to a working sendmail",
		    job->request.tag, (long)job->pid, status);
	} else if (!od_mailq_complete(job->parser, problem, sizeof(problem))) {
		od_log(LOG_ERR, "release helper: LIST run failed: tag=%s "
		    "pid=%ld: %s", job->request.tag, (long)job->pid, problem);
		status = OD_HELPER_STATUS_LISTING;
	} else {
		od_log(LOG_INFO, "release helper: LIST run finished: tag=%s "
		    "pid=%ld items=%zu seconds=%.1f", job->request.tag,
		    (long)job->pid, job->items, seconds_since(&job->started));
	}
	if (job->parser->warning_lines > 0)
		od_log(LOG_WARNING, "release helper: sendmail warned while "
		    "listing the queue (%lu line%s), the first: \"%s\"; check "
		    "sendmail's configuration", job->parser->warning_lines,
		    job->parser->warning_lines == 1 ? "" : "s",
		    job->parser->first_warning);
	send_done(helper, job->request.tag, status);
	remove_running(helper, job);
	job_free(job);
}

static void
finish_run(struct helper *helper, struct job *job)
{
	const struct od_helper_request *request = &job->request;
	const char *verb = od_helper_verb_name(request->verb);

	if (request->verb == OD_HELPER_EXPIRE && job->step == 1 &&
	    job->status == 0) {
		job->step = 2;
		if (start_job(helper, job))
			return;
		remove_running(helper, job);
		job_free(job);
		return;
	}

	if (job->status != 0) {
		if (request->verb == OD_HELPER_DELIVERTAG)
			od_log(LOG_WARNING, "release helper: DELIVERTAG run "
			    "failed: tag=%s pid=%ld status=%d domain=%s",
			    request->tag, (long)job->pid, job->status,
			    request->domain);
		else {
			od_log(LOG_WARNING, "release helper: %s run failed: "
			    "tag=%s pid=%ld status=%d%s ids=%zu", verb,
			    request->tag, (long)job->pid, job->status,
			    request->verb == OD_HELPER_EXPIRE &&
			    job->step == 1 ? " (moving the messages back to "
			    "the normal queue)" : "", request->id_count);
			log_ids(LOG_WARNING, job);
		}
	} else {
		od_log(LOG_INFO, "release helper: %s run finished: tag=%s "
		    "pid=%ld status=0 seconds=%.1f", verb, request->tag,
		    (long)job->pid, seconds_since(&job->started));
	}
	send_done(helper, request->tag, job->status);
	remove_running(helper, job);
	job_free(job);
}

static void
reap_children(struct helper *helper)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct job *job = find_job(helper, pid);

		if (job == NULL)
			continue;
		job->exited = true;
		if (WIFEXITED(status))
			job->status = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			job->status = 128 + WTERMSIG(status);
		else
			job->status = 255;
		if (job->request.verb != OD_HELPER_LIST)
			finish_run(helper, job);
		else if (job->output < 0)
			finish_list(helper, job);
	}
}

static void
accept_request(struct helper *helper, const char *line, size_t length)
{
	char error[512];
	struct job *job = calloc(1, sizeof(*job));

	if (job == NULL) {
		char tag[OD_HELPER_TAG_SIZE];
		struct od_helper_request probe;

		od_helper_request_parse(line, length, &probe, error,
		    sizeof(error));
		memcpy(tag, probe.tag, sizeof(tag));
		od_helper_request_free(&probe);
		od_log(LOG_ERR, "release helper: request tag=%s rejected: out "
		    "of memory", tag);
		send_error(helper, tag, "release helper out of memory");
		return;
	}
	job->output = -1;
	if (!od_helper_request_parse(line, length, &job->request, error,
	    sizeof(error))) {
		od_log(LOG_WARNING, "release helper: request tag=%s rejected: "
		    "%s", job->request.tag, error);
		send_error(helper, job->request.tag, error);
		job_free(job);
		return;
	}
	if (helper->waiting >= WAITING_MAX) {
		od_log(LOG_WARNING, "release helper: request tag=%s rejected: "
		    "%zu requests already wait for a free slot",
		    job->request.tag, helper->waiting);
		send_error(helper, job->request.tag, "too many requests "
		    "waiting; try again when running ones have finished");
		job_free(job);
		return;
	}
	job->step = 1;
	if (job->request.verb == OD_HELPER_LIST)
		queue_push(&helper->waiting_lists, job);
	else
		queue_push(&helper->waiting_runs, job);
	helper->waiting++;
}

/* Reads requests; returns false when the daemon closed its end. */
static bool
read_requests(struct helper *helper)
{
	ssize_t n;
	size_t start = 0;
	size_t i;

	n = recv(helper->socket, helper->input + helper->input_used,
	    sizeof(helper->input) - helper->input_used, MSG_DONTWAIT);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK;
	if (n == 0)
		return false;
	helper->input_used += (size_t)n;

	for (i = 0; i < helper->input_used; i++) {
		if (helper->input[i] != '\n')
			continue;
		if (!helper->input_discarding)
			accept_request(helper, helper->input + start, i - start);
		helper->input_discarding = false;
		start = i + 1;
	}
	memmove(helper->input, helper->input + start,
	    helper->input_used - start);
	helper->input_used -= start;

	if (helper->input_used == sizeof(helper->input)) {
		/* A full buffer without a newline: the request is too long. */
		if (!helper->input_discarding)
			accept_request(helper, helper->input,
			    helper->input_used);
		helper->input_discarding = true;
		helper->input_used = 0;
	}
	return true;
}

static void
drain_signal_pipe(struct helper *helper)
{
	char bytes[64];

	while (read(helper->signal_pipe[0], bytes, sizeof(bytes)) > 0)
		continue;
}

static int
serve(struct helper *helper)
{
	for (;;) {
		struct pollfd fds[2 + LISTS_MAX];
		struct job *lists[LISTS_MAX];
		size_t count = 0, list_count = 0;
		struct job *job;
		size_t i;

		if (helper->peer_gone)
			break;
		fds[count].fd = helper->socket;
		fds[count++].events = POLLIN;
		fds[count].fd = helper->signal_pipe[0];
		fds[count++].events = POLLIN;
		for (job = helper->running; job != NULL; job = job->next) {
			if (job->output < 0 || list_count == LISTS_MAX)
				continue;
			lists[list_count++] = job;
			fds[count].fd = job->output;
			fds[count++].events = POLLIN;
		}

		if (poll(fds, count, -1) < 0) {
			if (errno == EINTR)
				continue;
			od_log(LOG_ERR, "release helper: poll: %m; exiting");
			return 1;
		}

		if (fds[1].revents != 0) {
			drain_signal_pipe(helper);
			reap_children(helper);
		}
		for (i = 0; i < list_count; i++) {
			job = lists[i];
			if (fds[2 + i].revents == 0)
				continue;
			if (!read_output(helper, job)) {
				close(job->output);
				job->output = -1;
				if (job->exited)
					finish_list(helper, job);
			}
		}
		if (fds[0].revents != 0 && !read_requests(helper))
			break;
		start_waiting(helper);
	}

	od_log(LOG_INFO, "release helper: the daemon closed its connection; "
	    "exiting with %zu sendmail runs still going and %zu requests "
	    "not started", helper->running_runs + helper->running_lists,
	    helper->waiting);
	return 0;
}

int
od_helper_main(int socket_fd, const char *sendmail, const char *config)
{
	static struct helper helper;
	struct sigaction action;
	sigset_t none;
	int debug_level = od_log_debug_level();
	/* In the foreground (-f) the daemon copies its log to stderr. */
	bool to_stderr = od_log_to_stderr();
	int null_fd;

	/* Leave the daemon's session so terminal signals do not reach us. */
	setsid();
	if (chdir("/") != 0)
		_exit(1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);

	closelog();
	close_descriptors_from(STDERR_FILENO + 1, socket_fd);
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		if (debug_level == 0 && !to_stderr)
			dup2(null_fd, STDERR_FILENO);
		if (null_fd > STDERR_FILENO)
			close(null_fd);
	}
	od_log_open(OD_HELPER_LOG_IDENT, to_stderr || debug_level > 0,
	    debug_level);

	/*
	 * sendmail gets only a fixed PATH.  The helper drops the rest of the
	 * daemon's environment too (TZ included), so the helper and sendmail
	 * agree on local time when the listing's times are converted.
	 */
	clearenv();
	setenv("PATH", SENDMAIL_PATH, 1);
	tzset();

	helper.socket = socket_fd;
	helper.sendmail = sendmail;
	helper.config = config;
	helper.debug = debug_level > 0;
	if (pipe2(helper.signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		od_log(LOG_ERR, "release helper: cannot create its signal "
		    "pipe: %m; exiting");
		return 1;
	}
	signal_pipe_write = helper.signal_pipe[1];
	memset(&action, 0, sizeof(action));
	action.sa_handler = on_sigchld;
	action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGCHLD, &action, NULL) != 0) {
		od_log(LOG_ERR, "release helper: cannot catch SIGCHLD: %m; "
		    "exiting");
		return 1;
	}

	od_log(LOG_INFO, "release helper started: pid=%ld sendmail=%s "
	    "config=%s", (long)getpid(), sendmail,
	    config != NULL ? config : "(sendmail's default)");
	if (geteuid() != 0)
		od_log(LOG_WARNING, "release helper runs as uid %ld, not root; "
		    "sendmail lets only root run or change held messages, so "
		    "start ondemand-milter as root", (long)geteuid());
	return serve(&helper);
}

static bool
check_file(const char *what, const char *path, bool executable, char *error,
    size_t error_size)
{
	struct stat st;

	if (path[0] != '/') {
		snprintf(error, error_size, "%s \"%s\" is not an absolute "
		    "path; give the full path", what, path);
		return false;
	}
	if (stat(path, &st) != 0) {
		snprintf(error, error_size, "%s %s: %s; set it to an "
		    "existing file", what, path, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(error, error_size, "%s %s is not a regular file",
		    what, path);
		return false;
	}
	if (executable && access(path, X_OK) != 0) {
		snprintf(error, error_size, "%s %s is not executable: %s",
		    what, path, strerror(errno));
		return false;
	}
	return true;
}

struct od_helper *
od_helper_start(const char *sendmail_path, const char *sendmail_config,
    char *error, size_t error_size)
{
	int fds[2];
	pid_t pid;

	if (sendmail_path == NULL)
		sendmail_path = DEFAULT_SENDMAIL_PATH;
	if (!check_file("sendmail binary", sendmail_path, true, error,
	    error_size))
		return NULL;
	if (sendmail_config != NULL &&
	    !check_file("sendmail configuration", sendmail_config, false,
	    error, error_size))
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		snprintf(error, error_size, "cannot create the release "
		    "helper's socketpair: %s", strerror(errno));
		return NULL;
	}

	/* Unwritten stdio output would otherwise be written twice. */
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(error, error_size, "cannot fork the release helper: "
		    "%s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (pid == 0) {
		close(fds[0]);
		_exit(od_helper_main(fds[1], sendmail_path, sendmail_config));
	}
	close(fds[1]);
	return od_helper_client_new(fds[0], pid, error, error_size);
}
