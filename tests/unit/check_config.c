/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests: the configuration file reader and the duration parser. */

#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "od_config.h"
#include "od_util.h"

static char directory[] = "/tmp/check_config.XXXXXX";
static char error[2048];

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(directory));
}

static void
teardown(void)
{
	char command[256];

	/* The directory holds only files this suite wrote. */
	snprintf(command, sizeof(command), "rm -rf -- '%s'", directory);
	ck_assert_int_eq(system(command), 0);
	strcpy(directory, "/tmp/check_config.XXXXXX");
}

/* Writes text to NAME in the test directory and returns the path. */
static const char *
write_file(const char *name, const char *text, size_t len)
{
	static char paths[4][512];
	static int next;
	char *path = paths[next++ % 4];
	FILE *stream;

	snprintf(path, 512, "%s/%s", directory, name);
	stream = fopen(path, "w");
	ck_assert_ptr_nonnull(stream);
	ck_assert_uint_eq(fwrite(text, 1, len, stream), len);
	ck_assert_int_eq(fclose(stream), 0);
	return path;
}

static struct od_config *
load_text(const char *text)
{
	const char *path = write_file("ondemand.conf", text, strlen(text));

	error[0] = '\0';
	return od_config_load(path, error, sizeof(error));
}

/* Asserts that text fails to load with exactly "CONFIG:LINE: message". */
static void
assert_error(const char *text, unsigned line, const char *message)
{
	char expected[2048];
	struct od_config *config = load_text(text);

	ck_assert_msg(config == NULL, "accepted: %s", text);
	snprintf(expected, sizeof(expected), "%s/ondemand.conf:%u: %s",
	    directory, line, message);
	ck_assert_str_eq(error, expected);
}

START_TEST(config_defaults)
{
	struct od_config *config = load_text("# nothing but a comment\n\n");

	ck_assert_msg(config != NULL, "%s", error);
	ck_assert_str_eq(config->socket, OD_DEFAULT_SOCKET);
	ck_assert_str_eq(config->pidfile, OD_DEFAULT_PIDFILE);
	ck_assert_uint_eq(config->socket_mode, 0660);
	ck_assert_int_eq(config->on_error, OD_ON_ERROR_HOLD);
	ck_assert_int_eq(config->etrn_other, OD_ETRN_OTHER_PASS);
	ck_assert_int_eq(config->max_hold_age, 7 * 86400);
	ck_assert_int_eq(config->etrn_min_interval, 0);
	ck_assert_uint_eq(config->release_runs, 4);
	ck_assert_ptr_null(config->user);
	ck_assert_ptr_null(config->socketmap);
	ck_assert_uint_eq(od_domain_set_count(config->domains), 0);
	od_config_free(config);
}
END_TEST

START_TEST(config_all_keys)
{
	struct od_config *config = load_text(
	    "Socket unix:/run/ondemand/m.sock   # trailing comment\n"
	    "SOCKETMODE 0600\n"
	    "socketgroup root\n"
	    "User root:root\n"
	    "PidFile /run/x#y.pid\n"
	    "\tDomain   Example.TEST.  \n"
	    "Domain .Sub.Test\n"
	    "OnError tempfail\n"
	    "SocketMap unix:/run/ondemand/map.sock\n"
	    "ControlSocket /run/ondemand/control.sock\n"
	    "SendmailPath /usr/sbin/sendmail\n"
	    "SendmailConfig /etc/mail/sendmail.cf\n"
	    "EtrnOther deny\n"
	    "MaxHoldAge 36h\n"
	    "EtrnMinInterval 30s\n"
	    "ReleaseRuns 8\n"
	    "EtrnAllow Example.Test 192.0.2.0/24, 2001:db8::/32\n"
	    "EtrnAllow .sub.test 198.51.100.7\n");

	ck_assert_msg(config != NULL, "%s", error);
	ck_assert_str_eq(config->socket, "unix:/run/ondemand/m.sock");
	ck_assert_uint_eq(config->socket_mode, 0600);
	ck_assert_str_eq(config->socket_group, "root");
	ck_assert_str_eq(config->user, "root:root");
	ck_assert_str_eq(config->pidfile, "/run/x#y.pid");
	ck_assert_int_eq(config->on_error, OD_ON_ERROR_TEMPFAIL);
	ck_assert_str_eq(config->socketmap, "unix:/run/ondemand/map.sock");
	ck_assert_str_eq(config->control_socket, "/run/ondemand/control.sock");
	ck_assert_str_eq(config->sendmail_config, "/etc/mail/sendmail.cf");
	ck_assert_int_eq(config->etrn_other, OD_ETRN_OTHER_DENY);
	ck_assert_int_eq(config->max_hold_age, 36 * 3600);
	ck_assert_int_eq(config->etrn_min_interval, 30);
	ck_assert_uint_eq(config->release_runs, 8);
	ck_assert_uint_eq(config->etrn_allow_count, 2);
	ck_assert_str_eq(config->etrn_allow[0].domain, "example.test");
	ck_assert_uint_eq(config->etrn_allow[0].count, 2);
	ck_assert(config->etrn_allow[1].subdomains);
	ck_assert_uint_eq(config->etrn_allow[1].count, 1);
	ck_assert(od_domain_set_match(config->domains, "example.test"));
	ck_assert(od_domain_set_match(config->domains, "a.sub.test"));
	ck_assert(!od_domain_set_match(config->domains, "sub.test"));
	od_config_free(config);
}
END_TEST

START_TEST(config_inet_sockets)
{
	struct od_config *config = load_text("Socket inet:8891@127.0.0.1\n");

	ck_assert_msg(config != NULL, "%s", error);
	od_config_free(config);
	config = load_text("Socket inet6:8891@[::1]\n");
	ck_assert_msg(config != NULL, "%s", error);
	od_config_free(config);
}
END_TEST

START_TEST(config_unknown_and_duplicate_keys)
{
	assert_error("Domain a.test\nSokcet unix:/x\n", 2,
	    "unknown key \"Sokcet\"; did you mean Socket? ondemand.conf(5) "
	    "lists the valid keys");
	assert_error("Frobnicate yes\n", 1, "unknown key \"Frobnicate\"; "
	    "ondemand.conf(5) lists the valid keys");
	assert_error("Socket unix:/a\n\n# c\nsocket unix:/b\n", 4,
	    "duplicate Socket: it was already set on line 1; remove one of "
	    "them");
	assert_error("OnError hold\nOnError hold\n", 2,
	    "duplicate OnError: it was already set on line 1; remove one of "
	    "them");
}
END_TEST

START_TEST(config_bad_values)
{
	assert_error("Socket\n", 1, "Socket needs a value");
	assert_error("Socket unix:relative.sock\n", 1,
	    "invalid Socket \"unix:relative.sock\": the socket path must be "
	    "absolute, as in unix:/run/ondemand/milter.sock");
	assert_error("Socket tcp:25\n", 1, "invalid Socket \"tcp:25\": "
	    "expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST");
	assert_error("Socket inet:99999@127.0.0.1\n", 1,
	    "invalid Socket \"inet:99999@127.0.0.1\": expected inet:PORT@HOST "
	    "with a port from 1 to 65535");
	assert_error("SocketMap inet:9999@127.0.0.1\n", 1, "invalid SocketMap "
	    "\"inet:9999@127.0.0.1\": expected a unix socket, as in "
	    "unix:/run/ondemand/socketmap.sock");
	assert_error("SocketMode 0999\n", 1, "invalid SocketMode \"0999\": "
	    "expected an octal mode from 0 to 0777, such as 0660");
	assert_error("SocketMode 0060\n", 1, "invalid SocketMode \"0060\": "
	    "the owner needs read and write permission (0600) to use the "
	    "socket");
	assert_error("OnError yes\n", 1,
	    "invalid OnError \"yes\": expected hold or tempfail");
	assert_error("OnError Hold\n", 1,
	    "invalid OnError \"Hold\": expected hold or tempfail");
	assert_error("EtrnOther maybe\n", 1,
	    "invalid EtrnOther \"maybe\": expected pass or deny");
	assert_error("MaxHoldAge 7x\n", 1, "invalid MaxHoldAge \"7x\": "
	    "expected a duration from 1s to 366d, such as 4h or 7d (units s, "
	    "m, h, d, w)");
	assert_error("MaxHoldAge 0\n", 1, "invalid MaxHoldAge \"0\": "
	    "expected a duration from 1s to 366d, such as 4h or 7d (units s, "
	    "m, h, d, w)");
	assert_error("MaxHoldAge 367d\n", 1, "invalid MaxHoldAge \"367d\": "
	    "expected a duration from 1s to 366d, such as 4h or 7d (units s, "
	    "m, h, d, w)");
	assert_error("EtrnAllow example.test\n", 1, "invalid EtrnAllow "
	    "\"example.test\": expected a domain and at least one client "
	    "network, as in EtrnAllow example.test 192.0.2.0/24,2001:db8::/32");
	assert_error("EtrnAllow example.test 192.0.2.0/40\n", 1,
	    "invalid EtrnAllow network \"192.0.2.0/40\": expected an IPv4 or "
	    "IPv6 address with an optional /prefix, such as 192.0.2.0/24 or "
	    "2001:db8::/32");
	assert_error("EtrnAllow exa_mple.test 192.0.2.1\n", 1,
	    "invalid EtrnAllow domain \"exa_mple.test\": the name contains a "
	    "character other than letters, digits, hyphens and dots; expected "
	    "a host name such as example.test, or .example.test for its "
	    "subdomains");
	assert_error("EtrnAllow example.test ,\n", 1, "invalid EtrnAllow "
	    "\"example.test ,\": expected at least one client network after "
	    "the domain");
	assert_error("ReleaseRuns 0\n", 1, "invalid ReleaseRuns \"0\": "
	    "expected a whole number from 1 to 32");
	assert_error("ReleaseRuns 4x\n", 1, "invalid ReleaseRuns \"4x\": "
	    "expected a whole number from 1 to 32");
	assert_error("EtrnMinInterval 2d\n", 1, "invalid EtrnMinInterval "
	    "\"2d\": expected a duration from 0 to 1d, such as 30s or 5m");
	assert_error("PidFile run/x.pid\n", 1, "invalid PidFile "
	    "\"run/x.pid\": expected an absolute path starting with /");
	assert_error("Domain a.test b.test\n", 1, "invalid Domain "
	    "\"a.test b.test\": expected a single value without spaces");
	assert_error("User no-such-user-here\n", 1, "invalid User "
	    "\"no-such-user-here\": no such user \"no-such-user-here\"; "
	    "create it or name an existing user");
	assert_error("User root:no-such-group-here\n", 1, "invalid User "
	    "\"root:no-such-group-here\": no such group "
	    "\"no-such-group-here\"");
	assert_error("SocketGroup no-such-group-here\n", 1, "invalid "
	    "SocketGroup \"no-such-group-here\": no such group; create it or "
	    "name an existing group");
}
END_TEST

START_TEST(config_bad_domains)
{
	assert_error("Domain exa_mple.test\n", 1, "invalid Domain "
	    "\"exa_mple.test\": the name contains a character other than "
	    "letters, digits, hyphens and dots; expected a host name such as "
	    "example.test, or .example.test for its subdomains");
	assert_error("Domain ..example.test\n", 1, "invalid Domain "
	    "\"..example.test\": the name has an empty label; expected a host "
	    "name such as example.test, or .example.test for its subdomains");
	assert_error("Domain .\n", 1, "invalid Domain \".\": the name is "
	    "empty; expected a host name such as example.test, or "
	    ".example.test for its subdomains");
	assert_error("Domain a\x01.test\n", 1, "invalid Domain "
	    "\"a\\x01.test\": the name contains a character other than "
	    "letters, digits, hyphens and dots; expected a host name such as "
	    "example.test, or .example.test for its subdomains");
}
END_TEST

START_TEST(config_domain_file)
{
	char text[1024];
	static const char domains[] = "# customers\none.test\n\n"
	    "TWO.test.  # trailing comment\n.three.test\nbücher.example\n";
	const char *list = write_file("domains", domains, strlen(domains));
	struct od_config *config;

	snprintf(text, sizeof(text), "Domain zero.test\nDomainFile %s\n",
	    list);
	config = load_text(text);
	ck_assert_msg(config != NULL, "%s", error);
	ck_assert(od_domain_set_match(config->domains, "zero.test"));
	ck_assert(od_domain_set_match(config->domains, "one.test"));
	ck_assert(od_domain_set_match(config->domains, "two.test"));
	ck_assert(od_domain_set_match(config->domains, "x.three.test"));
	ck_assert(od_domain_set_match(config->domains,
	    "xn--bcher-kva.example"));
	od_config_free(config);
}
END_TEST

START_TEST(config_domain_file_errors)
{
	char text[1024], expected[1024];
	const char *list = write_file("bad-domains",
	    "good.test\nbad..test\n", 20);
	struct od_config *config;

	snprintf(text, sizeof(text), "DomainFile %s\n", list);
	config = load_text(text);
	ck_assert_ptr_null(config);
	snprintf(expected, sizeof(expected), "%s:2: invalid domain "
	    "\"bad..test\": the name has an empty label; expected a host name "
	    "such as example.test, or .example.test for its subdomains", list);
	ck_assert_str_eq(error, expected);

	snprintf(text, sizeof(text), "Domain a.test\nDomainFile %s/missing\n",
	    directory);
	snprintf(expected, sizeof(expected), "invalid DomainFile "
	    "\"%s/missing\": cannot open it: No such file or directory",
	    directory);
	assert_error(text, 2, expected);

	list = write_file("two-per-line", "a.test b.test\n", 14);
	snprintf(text, sizeof(text), "DomainFile %s\n", list);
	config = load_text(text);
	ck_assert_ptr_null(config);
	snprintf(expected, sizeof(expected), "%s:1: invalid domain "
	    "\"a.test b.test\": expected one domain per line", list);
	ck_assert_str_eq(error, expected);
}
END_TEST

START_TEST(config_unreadable_and_binary)
{
	char expected[1024], missing[600];
	const char *path;

	snprintf(missing, sizeof(missing), "%s/none.conf", directory);
	snprintf(expected, sizeof(expected), "%s: cannot open configuration "
	    "file: No such file or directory", missing);
	ck_assert_ptr_null(od_config_load(missing, error, sizeof(error)));
	ck_assert_str_eq(error, expected);

	path = write_file("ondemand.conf", "Domain a.test\nDom\0ain b\n", 24);
	ck_assert_ptr_null(od_config_load(path, error, sizeof(error)));
	snprintf(expected, sizeof(expected), "%s:2: contains a NUL byte; is "
	    "this a text file?", path);
	ck_assert_str_eq(error, expected);
}
END_TEST

START_TEST(config_long_line)
{
	char *text = malloc(6000);

	ck_assert_ptr_nonnull(text);
	strcpy(text, "Domain a.test\nDomain ");
	memset(text + strlen(text), 'a', 5000);
	strcpy(text + 21 + 5000, "\n");
	assert_error(text, 2, "line is longer than 4096 characters");
	free(text);
}
END_TEST

START_TEST(duration_units)
{
	long long seconds = -1;

	ck_assert(od_parse_duration("90", 1000000, &seconds));
	ck_assert_int_eq(seconds, 90);
	ck_assert(od_parse_duration("30s", 1000000, &seconds));
	ck_assert_int_eq(seconds, 30);
	ck_assert(od_parse_duration("30m", 1000000, &seconds));
	ck_assert_int_eq(seconds, 1800);
	ck_assert(od_parse_duration("4h", 1000000, &seconds));
	ck_assert_int_eq(seconds, 14400);
	ck_assert(od_parse_duration("7d", 1000000, &seconds));
	ck_assert_int_eq(seconds, 604800);
	ck_assert(od_parse_duration("1w", 1000000, &seconds));
	ck_assert_int_eq(seconds, 604800);
	ck_assert(!od_parse_duration("", 1000000, &seconds));
	ck_assert(!od_parse_duration("-1m", 1000000, &seconds));
	ck_assert(!od_parse_duration("1.5h", 1000000, &seconds));
	ck_assert(!od_parse_duration("1hh", 1000000, &seconds));
	ck_assert(!od_parse_duration("12d", 1000000, &seconds));
	ck_assert(!od_parse_duration("99999999999999999999", 1000000,
	    &seconds));
}
END_TEST

START_TEST(escape_bounds_and_controls)
{
	char out[64];

	od_escape(out, sizeof(out), "plain text", 100);
	ck_assert_str_eq(out, "plain text");
	od_escape(out, sizeof(out), "a\r\nb\\c\x7f", 100);
	ck_assert_str_eq(out, "a\\x0d\\x0ab\\x5cc\\x7f");
	od_escape(out, sizeof(out), "abcdefgh", 4);
	ck_assert_str_eq(out, "abcd...");
	od_escape(out, 8, "abcdefghijkl", 100);
	ck_assert_str_eq(out, "abcd...");
	ck_assert_uint_eq(od_strlcpy(out, "0123456789", 4), 10);
	ck_assert_str_eq(out, "012");
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("config");
	TCase *config = tcase_create("config");
	TCase *util = tcase_create("util");
	SRunner *runner;
	int failed;

	tcase_add_checked_fixture(config, setup, teardown);
	tcase_add_test(config, config_defaults);
	tcase_add_test(config, config_all_keys);
	tcase_add_test(config, config_inet_sockets);
	tcase_add_test(config, config_unknown_and_duplicate_keys);
	tcase_add_test(config, config_bad_values);
	tcase_add_test(config, config_bad_domains);
	tcase_add_test(config, config_domain_file);
	tcase_add_test(config, config_domain_file_errors);
	tcase_add_test(config, config_unreadable_and_binary);
	tcase_add_test(config, config_long_line);
	tcase_add_test(util, duration_units);
	tcase_add_test(util, escape_bounds_and_controls);
	suite_add_tcase(suite, config);
	suite_add_tcase(suite, util);

	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
