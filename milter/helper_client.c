/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's side of the release helper: the od_helper_* calls.
 *
 * Any number of threads may call at once.  Each call registers a pending
 * request under a fresh tag, writes its line under a write lock, and waits
 * on its own condition variable.  One reader thread, started by the first
 * call (od_helper_start runs before the daemon forks into the background,
 * and threads do not survive a fork), reads every reply and hands it to
 * the request with that tag.  When the socket reaches end of file the
 * reader marks the helper dead and wakes every waiting call, which then
 * returns -1, so no call waits for a helper that is gone.
 *
 * A call blocks for as long as its sendmail run takes.  It has no timeout
 * because a release run against a slow server may take long, and
 * sendmail's own SMTP timeouts end such a run.
 */

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper_internal.h"
#include "od_helper_proto.h"
#include "od_log.h"
#include "od_util.h"

/* Highest tag; the protocol allows 10 digits. */
#define TAG_MAX 9999999999ULL
/* How long the reader waits for a helper that closed its socket to exit. */
#define REAP_WAIT_MS 2000

struct pending {
	unsigned long long tag;
	pthread_cond_t done_cond;
	bool done;
	int status;		/* -1 for ERROR or a lost helper */
	struct od_helper_item *items;
	size_t count;
	size_t capacity;
	bool out_of_memory;
	bool bad_reply;		/* a reply line for this tag was malformed */
	struct pending *next;
};

struct od_helper {
	int fd;
	pid_t pid;
	pid_t parent;		/* the only process that may reap the helper */
	pthread_mutex_t lock;	/* guards every field below */
	pthread_mutex_t write_lock;	/* keeps request lines whole */
	bool reader_started;
	pthread_t reader;
	bool dead;
	bool stopping;		/* od_helper_stop closed the socket */
	size_t callers;		/* calls between begin_call and end_call */
	pthread_cond_t idle_cond;	/* callers dropped to 0 */
	unsigned long long last_tag;
	struct pending *pending;
};

struct od_helper *
od_helper_client_new(int fd, pid_t pid, char *error, size_t error_size)
{
	struct od_helper *helper = calloc(1, sizeof(*helper));

	if (helper == NULL) {
		snprintf(error, error_size, "out of memory for the release "
		    "helper");
		close(fd);
		return NULL;
	}
	helper->fd = fd;
	helper->pid = pid;
	helper->parent = getpid();
	pthread_mutex_init(&helper->lock, NULL);
	pthread_mutex_init(&helper->write_lock, NULL);
	pthread_cond_init(&helper->idle_cond, NULL);
	return helper;
}

pid_t
od_helper_pid(const struct od_helper *helper)
{
	return helper->pid;
}

/*
 * Collects the helper's exit status when this process forked it, so it
 * leaves no zombie, and logs how it ended.  Waits at most REAP_WAIT_MS.
 */
static void
reap_helper(struct od_helper *helper)
{
	int waited;

	if (getpid() != helper->parent)
		return;
	for (waited = 0; waited <= REAP_WAIT_MS; waited += 50) {
		struct timespec pause = { 0, 50 * 1000 * 1000 };
		int status;
		pid_t pid = waitpid(helper->pid, &status, WNOHANG);

		if (pid == helper->pid) {
			if (WIFSIGNALED(status))
				od_log(LOG_ERR, "release helper pid=%ld was "
				    "killed by signal %d", (long)pid,
				    WTERMSIG(status));
			else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
				od_log(LOG_ERR, "release helper pid=%ld exited "
				    "with status %d", (long)pid,
				    WEXITSTATUS(status));
			return;
		}
		if (pid < 0)
			return;		/* reaped elsewhere, or not our child */
		nanosleep(&pause, NULL);
	}
}

/* Marks the helper gone and wakes every waiting call.  The caller holds helper->lock. */
static void
mark_dead(struct od_helper *helper)
{
	struct pending *p;

	helper->dead = true;
	for (p = helper->pending; p != NULL; p = p->next)
		pthread_cond_signal(&p->done_cond);
}

static struct pending *
find_pending(struct od_helper *helper, unsigned long long tag)
{
	struct pending *p;

	for (p = helper->pending; p != NULL; p = p->next)
		if (p->tag == tag)
			return p;
	return NULL;
}

static void
add_item(struct pending *p, const struct od_helper_item *item)
{
	if (p->out_of_memory)
		return;
	if (p->count == p->capacity) {
		size_t capacity = p->capacity == 0 ? 64 : p->capacity * 2;
		struct od_helper_item *items = realloc(p->items,
		    capacity * sizeof(*items));

		if (items == NULL) {
			p->out_of_memory = true;
			return;
		}
		p->items = items;
		p->capacity = capacity;
	}
	p->items[p->count++] = *item;
}

/* Hands one reply line to its pending request.  The caller holds helper->lock. */
static void
dispatch_reply(struct od_helper *helper, const char *line, size_t length)
{
	struct od_helper_reply reply;
	struct pending *p;

	if (!od_helper_reply_parse(line, length, &reply)) {
		char copy[121], shown[500];
		const char *space = memchr(line, ' ', length);
		size_t n = length < 120 ? length : 120;

		memcpy(copy, line, n);
		copy[n] = '\0';
		od_escape(shown, sizeof(shown), copy, n);
		od_log(LOG_ERR, "release helper sent a reply that is not "
		    "understood: \"%s\"", shown);
		/* A LIST that lost an item must not look complete. */
		if (space != NULL) {
			p = find_pending(helper,
			    strtoull(space + 1, NULL, 10));
			if (p != NULL)
				p->bad_reply = true;
		}
		return;
	}
	p = find_pending(helper, reply.tag);
	if (p == NULL) {
		od_log(LOG_ERR, "release helper sent a reply for tag %llu, "
		    "which no request is waiting for", reply.tag);
		return;
	}
	switch (reply.type) {
	case OD_HELPER_REPLY_ITEM:
		add_item(p, &reply.item);
		return;
	case OD_HELPER_REPLY_DONE:
		p->status = reply.status;
		break;
	case OD_HELPER_REPLY_ERROR:
		od_log(LOG_ERR, "release helper rejected request tag %llu: %s",
		    reply.tag, reply.message);
		p->status = -1;
		break;
	}
	p->done = true;
	pthread_cond_signal(&p->done_cond);
}

static void *
reader_main(void *argument)
{
	struct od_helper *helper = argument;
	char *buffer = malloc(OD_HELPER_LINE_MAX);
	size_t used = 0;
	bool discarding = false;

	if (buffer == NULL)
		od_log(LOG_ERR, "out of memory for the release helper's reply "
		    "buffer; every release fails");
	while (buffer != NULL) {
		ssize_t n = read(helper->fd, buffer + used,
		    OD_HELPER_LINE_MAX - used);
		size_t start = 0;
		size_t i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				od_log(LOG_ERR, "cannot read from the release "
				    "helper: %m");
			break;
		}
		used += (size_t)n;
		pthread_mutex_lock(&helper->lock);
		for (i = 0; i < used; i++) {
			if (buffer[i] != '\n')
				continue;
			if (!discarding)
				dispatch_reply(helper, buffer + start,
				    i - start);
			discarding = false;
			start = i + 1;
		}
		pthread_mutex_unlock(&helper->lock);
		memmove(buffer, buffer + start, used - start);
		used -= start;
		if (used == OD_HELPER_LINE_MAX) {
			od_log(LOG_ERR, "release helper sent a line longer "
			    "than %d octets; ignoring it", OD_HELPER_LINE_MAX);
			discarding = true;
			used = 0;
		}
	}
	free(buffer);

	pthread_mutex_lock(&helper->lock);
	if (helper->pending != NULL)
		od_log(LOG_ERR, "release helper pid=%ld is gone; its pending "
		    "requests fail", (long)helper->pid);
	else if (!helper->stopping)
		od_log(LOG_ERR, "release helper pid=%ld is gone; releases "
		    "fail until ondemand-milter is restarted", (long)helper->pid);
	mark_dead(helper);
	pthread_mutex_unlock(&helper->lock);
	reap_helper(helper);
	return NULL;
}

/*
 * Admits a call: starts the reader thread on first use and counts the
 * caller, so od_helper_stop can wait for it.  Returns false when the
 * helper is gone or stopping.  The caller holds helper->lock.
 */
static bool
begin_call(struct od_helper *helper)
{
	int rc;

	if (helper->dead || helper->stopping)
		return false;
	if (!helper->reader_started) {
		rc = pthread_create(&helper->reader, NULL, reader_main, helper);
		if (rc != 0) {
			od_log(LOG_ERR, "cannot start the release helper's "
			    "reader thread: %s", strerror(rc));
			return false;
		}
		helper->reader_started = true;
	}
	helper->callers++;
	return true;
}

/* Ends a call admitted by begin_call.  The caller holds helper->lock. */
static void
end_call(struct od_helper *helper)
{
	if (--helper->callers == 0)
		pthread_cond_broadcast(&helper->idle_cond);
}

static bool
write_line(struct od_helper *helper, const char *line, size_t length)
{
	size_t sent = 0;
	bool ok = true;

	pthread_mutex_lock(&helper->write_lock);
	while (sent < length) {
		ssize_t n = send(helper->fd, line + sent, length - sent,
		    MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			od_log(LOG_ERR, "cannot send a request to the release "
			    "helper: %s", n < 0 ? strerror(errno) :
			    "connection closed");
			ok = false;
			break;
		}
		sent += (size_t)n;
	}
	pthread_mutex_unlock(&helper->write_lock);
	return ok;
}

/* Registers a pending request under a fresh tag.  The caller holds helper->lock. */
static struct pending *
register_pending(struct od_helper *helper)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	/* Skip tags still in use after the counter wraps. */
	do {
		helper->last_tag = helper->last_tag >= TAG_MAX ? 1 :
		    helper->last_tag + 1;
	} while (find_pending(helper, helper->last_tag) != NULL);
	p->tag = helper->last_tag;
	pthread_cond_init(&p->done_cond, NULL);
	p->next = helper->pending;
	helper->pending = p;
	return p;
}

/* Unlinks and frees a pending request.  The caller holds helper->lock. */
static void
release_pending(struct od_helper *helper, struct pending *p)
{
	struct pending **link;

	for (link = &helper->pending; *link != NULL; link = &(*link)->next) {
		if (*link == p) {
			*link = p->next;
			break;
		}
	}
	pthread_cond_destroy(&p->done_cond);
	free(p->items);
	free(p);
}

/* A DELIVER, UNHOLD or EXPIRE of ids, or a DELIVERTAG of ids[0]. */
struct batch {
	enum od_helper_verb verb;
	const char *const *ids;
	size_t count;
	unsigned long age;	/* EXPIRE only */
};

static int
wait_pending(struct od_helper *helper, struct pending *p)
{
	while (!p->done && !helper->dead)
		pthread_cond_wait(&p->done_cond, &helper->lock);
	return p->done ? p->status : -1;
}

/*
 * Sends one request per chunk of IDs that fits into a line, all before
 * waiting, so the helper can run the chunks side by side.  Returns -1 if
 * any chunk failed outright, else the first non-zero status, else 0.
 */
static int
run_requests(struct od_helper *helper, const struct batch *batch)
{
	struct pending **pendings;
	char *line;
	size_t chunks = 0;
	size_t offset;
	int result = 0;
	size_t i;

	if (batch->count == 0)
		return 0;
	pendings = calloc(batch->count + 1, sizeof(*pendings));
	line = malloc(OD_HELPER_LINE_MAX + 1);
	if (pendings == NULL || line == NULL) {
		od_log(LOG_ERR, "out of memory for a release helper request");
		free(pendings);
		free(line);
		return -1;
	}

	pthread_mutex_lock(&helper->lock);
	if (!begin_call(helper)) {
		pthread_mutex_unlock(&helper->lock);
		free(pendings);
		free(line);
		return -1;
	}
	for (offset = 0; offset < batch->count;) {
		size_t n = batch->verb == OD_HELPER_DELIVERTAG ? 1 :
		    od_helper_request_fit(batch->verb, batch->ids + offset,
		    batch->count - offset);
		struct pending *p = register_pending(helper);

		if (p == NULL) {
			result = -1;
			break;
		}
		pendings[chunks++] = p;
		if (od_helper_request_format(batch->verb, p->tag, batch->age,
		    batch->ids + offset, n, line, OD_HELPER_LINE_MAX + 1) == 0) {
			od_log(LOG_ERR, "release helper request %s not sent: "
			    "an argument is invalid", od_helper_verb_name(
			    batch->verb));
			p->done = true;
			p->status = -1;
			break;
		}
		offset += n;
		/* Write without the lock so the reader keeps dispatching. */
		pthread_mutex_unlock(&helper->lock);
		if (!write_line(helper, line, strlen(line))) {
			pthread_mutex_lock(&helper->lock);
			p->done = true;
			p->status = -1;
			break;
		}
		pthread_mutex_lock(&helper->lock);
	}

	for (i = 0; i < chunks; i++) {
		int status = wait_pending(helper, pendings[i]);

		if (status == -1)
			result = -1;
		else if (status != 0 && result == 0)
			result = status;
	}
	for (i = 0; i < chunks; i++)
		release_pending(helper, pendings[i]);
	end_call(helper);
	pthread_mutex_unlock(&helper->lock);
	free(pendings);
	free(line);
	return result;
}

static bool
ids_valid(const char *verb, const char *const *ids, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		if (ids[i] == NULL || !od_helper_queue_id_valid(ids[i])) {
			od_log(LOG_ERR, "%s not sent to the release helper: "
			    "queue ID %zu is not 6 to 20 letters and digits",
			    verb, i + 1);
			return false;
		}
	}
	return true;
}

static int
run_id_request(struct od_helper *helper, enum od_helper_verb verb,
    const char *const *ids, size_t count, unsigned long age)
{
	struct batch batch = { verb, ids, count, age };

	if (helper == NULL)
		return -1;
	if (!ids_valid(od_helper_verb_name(verb), ids, count))
		return -1;
	return run_requests(helper, &batch);
}

/* With no IDs nothing runs and the result is 0. */
int
od_helper_deliver(struct od_helper *helper, const char *const *ids,
    size_t count)
{
	return run_id_request(helper, OD_HELPER_DELIVER, ids, count, 0);
}

int
od_helper_deliver_domain(struct od_helper *helper, const char *domain)
{
	struct batch batch = { OD_HELPER_DELIVERTAG, &domain, 1, 0 };
	const char *reason;

	if (helper == NULL)
		return -1;
	if (domain == NULL || !od_helper_domain_valid(domain, &reason)) {
		od_log(LOG_ERR, "DELIVERTAG not sent to the release helper: "
		    "the domain %s", domain == NULL ? "is missing" : reason);
		return -1;
	}
	return run_requests(helper, &batch);
}

int
od_helper_unhold(struct od_helper *helper, const char *const *ids,
    size_t count)
{
	return run_id_request(helper, OD_HELPER_UNHOLD, ids, count, 0);
}

int
od_helper_expire(struct od_helper *helper, const char *const *ids,
    size_t count, unsigned long age)
{
	if (age < 1 || age > OD_HELPER_AGE_MAX) {
		od_log(LOG_ERR, "EXPIRE not sent to the release helper: the "
		    "age %lu is not 1 to %lu seconds", age, OD_HELPER_AGE_MAX);
		return -1;
	}
	return run_id_request(helper, OD_HELPER_EXPIRE, ids, count, age);
}

int
od_helper_list(struct od_helper *helper, struct od_helper_item **items,
    size_t *count)
{
	struct pending *p;
	char line[64];
	int status;

	*items = NULL;
	*count = 0;
	if (helper == NULL)
		return -1;

	pthread_mutex_lock(&helper->lock);
	if (!begin_call(helper)) {
		pthread_mutex_unlock(&helper->lock);
		return -1;
	}
	p = register_pending(helper);
	if (p == NULL) {
		end_call(helper);
		pthread_mutex_unlock(&helper->lock);
		return -1;
	}
	snprintf(line, sizeof(line), "LIST %llu\n", p->tag);
	pthread_mutex_unlock(&helper->lock);

	if (!write_line(helper, line, strlen(line))) {
		pthread_mutex_lock(&helper->lock);
		release_pending(helper, p);
		end_call(helper);
		pthread_mutex_unlock(&helper->lock);
		return -1;
	}

	pthread_mutex_lock(&helper->lock);
	status = wait_pending(helper, p);
	if (status == 0 && p->out_of_memory) {
		od_log(LOG_ERR, "out of memory for the %zu held items the "
		    "release helper listed", p->count);
		status = -1;
	}
	if (status == 0 && p->bad_reply)
		status = -1;
	if (status == 0) {
		*items = p->items;
		*count = p->count;
		p->items = NULL;
	} else if (status > 0) {
		od_log(LOG_ERR, "listing the held messages failed with status "
		    "%d; the release helper logged why", status);
	}
	release_pending(helper, p);
	end_call(helper);
	pthread_mutex_unlock(&helper->lock);
	return status == 0 ? 0 : -1;
}

bool
od_helper_alive(struct od_helper *helper)
{
	bool alive;

	if (helper == NULL)
		return false;
	pthread_mutex_lock(&helper->lock);
	if (!helper->dead && !helper->reader_started) {
		/*
		 * Without the reader, look for end of file directly.  The
		 * helper sends only replies to requests, so a readable socket
		 * here means that it closed its end.
		 */
		struct pollfd pfd = { helper->fd, POLLIN, 0 };

		if (poll(&pfd, 1, 0) > 0 &&
		    (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			char byte;

			if (recv(helper->fd, &byte, 1, MSG_PEEK |
			    MSG_DONTWAIT) <= 0) {
				helper->dead = true;
				pthread_mutex_unlock(&helper->lock);
				reap_helper(helper);
				return false;
			}
		}
	}
	alive = !helper->dead;
	pthread_mutex_unlock(&helper->lock);
	return alive;
}

/*
 * Calls still waiting fail with -1, and od_helper_stop waits until they
 * have returned.  A call that starts after od_helper_stop has returned
 * uses freed memory, so stop only once no thread will call again.
 */
void
od_helper_stop(struct od_helper *helper)
{
	bool reader_started;

	if (helper == NULL)
		return;
	pthread_mutex_lock(&helper->lock);
	helper->stopping = true;
	reader_started = helper->reader_started;
	pthread_mutex_unlock(&helper->lock);

	/* The reader sees end of file, fails what still waits, and exits. */
	shutdown(helper->fd, SHUT_RDWR);
	if (reader_started) {
		pthread_join(helper->reader, NULL);
	} else {
		pthread_mutex_lock(&helper->lock);
		mark_dead(helper);
		pthread_mutex_unlock(&helper->lock);
		reap_helper(helper);
	}

	pthread_mutex_lock(&helper->lock);
	while (helper->callers > 0)
		pthread_cond_wait(&helper->idle_cond, &helper->lock);
	pthread_mutex_unlock(&helper->lock);

	close(helper->fd);
	pthread_cond_destroy(&helper->idle_cond);
	pthread_mutex_destroy(&helper->lock);
	pthread_mutex_destroy(&helper->write_lock);
	free(helper);
}
