/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests: the control socket's request handling (milter/control.c).
 *
 * The file is included to reach its connection handler, which runs on a
 * socketpair.  The release functions are stand-ins that record what they
 * were asked, because the real ones need the root release helper.
 */

#include "../../milter/control.c"

#include <check.h>
#include <sys/socket.h>

#include "od_network.h"

static char unhold_domain[OD_DOMAIN_SIZE];
static char unhold_queue_id[32];
static int unhold_calls;

enum od_release_status
od_release_start(const struct od_release_request *request, long *messages)
{
	(void)request;
	*messages = 0;
	return OD_RELEASE_STARTED;
}

bool
od_release_resync(void)
{
	return true;
}

long
od_release_unhold(const char *domain, const char *queue_id)
{
	unhold_calls++;
	snprintf(unhold_domain, sizeof(unhold_domain), "%s",
	    domain != NULL ? domain : "");
	snprintf(unhold_queue_id, sizeof(unhold_queue_id), "%s",
	    queue_id != NULL ? queue_id : "");
	return 1;
}

long
od_release_expire(long long max_hold_age)
{
	(void)max_hold_age;
	return 0;
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
	snprintf(error, error_size, "%s: not used in the unit tests", name);
	return false;
}

static void
setup(void)
{
	struct od_config *config = calloc(1, sizeof(*config));
	struct od_index *index = od_index_new();
	struct od_index_entry none;

	ck_assert_ptr_nonnull(config);
	ck_assert_ptr_nonnull(index);
	config->max_hold_age = OD_DEFAULT_MAX_HOLD_AGE;
	config->domains = od_domain_set_new();
	ck_assert(od_domain_set_add(config->domains, "example.test", false));
	od_domain_set_finish(config->domains);
	od_runtime_set_config(config);
	/* An empty, complete index: LIST must not ask for a resync. */
	memset(&none, 0, sizeof(none));
	ck_assert(od_index_rebuild(index, &none, 0,
	    od_index_generation(index)));
	od_control_set_index(index);
	unhold_calls = 0;
}

/* Sends one request and returns the whole reply (static storage). */
static const char *
request(const char *text)
{
	static char reply[8192];
	size_t length = 0;
	int pair[2];
	ssize_t n;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	ck_assert_int_eq(write(pair[0], text, strlen(text)),
	    (ssize_t)strlen(text));
	ck_assert_int_eq(shutdown(pair[0], SHUT_WR), 0);
	serve_connection(pair[1], 0);
	while ((n = read(pair[0], reply + length,
	    sizeof(reply) - 1 - length)) > 0)
		length += (size_t)n;
	close(pair[0]);
	reply[length] = '\0';
	return reply;
}

START_TEST(control_unhold_rejects_queue_name)
{
	/* Found by fuzz-control: "#queue" passed as an empty domain. */
	const char *reply = request("UNHOLD #74434\n");

	ck_assert_msg(strncmp(reply, "ERROR invalid domain \"#74434\"", 29) ==
	    0, "reply: %s", reply);
	ck_assert_int_eq(unhold_calls, 0);
}
END_TEST

START_TEST(control_list_rejects_queue_name)
{
	const char *reply = request("LIST #q\n");

	ck_assert_msg(strncmp(reply, "ERROR invalid domain \"#q\"", 25) == 0,
	    "reply: %s", reply);
}
END_TEST

START_TEST(control_unhold_domain_or_queue_id)
{
	ck_assert_str_eq(request("UNHOLD Example.TEST\n"), "unhold\t1\nOK\n");
	ck_assert_int_eq(unhold_calls, 1);
	ck_assert_str_eq(unhold_domain, "example.test");
	ck_assert_str_eq(unhold_queue_id, "");

	ck_assert_str_eq(request("UNHOLD 6B4KakNA031584\r\n"),
	    "unhold\t1\nOK\n");
	ck_assert_int_eq(unhold_calls, 2);
	ck_assert_str_eq(unhold_domain, "");
	ck_assert_str_eq(unhold_queue_id, "6B4KakNA031584");
}
END_TEST

START_TEST(control_unknown_request)
{
	ck_assert_str_eq(request("STATUS now\n"), "ERROR unknown request; "
	    "expected STATUS, LIST DOMAIN, RELEASE DOMAIN, UNHOLD "
	    "DOMAIN|QUEUEID or EXPIRE\n");
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("control");
	TCase *requests = tcase_create("requests");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(requests, setup, NULL);
	tcase_add_test(requests, control_unhold_rejects_queue_name);
	tcase_add_test(requests, control_list_rejects_queue_name);
	tcase_add_test(requests, control_unhold_domain_or_queue_id);
	tcase_add_test(requests, control_unknown_request);
	suite_add_tcase(suite, requests);

	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
