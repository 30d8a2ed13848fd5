/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests: ETRN argument decisions and the hold index. */

#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "od_config.h"
#include "od_etrn.h"
#include "od_index.h"
#include "od_network.h"

static struct od_config *
make_config(enum od_etrn_other other)
{
	struct od_config *config = calloc(1, sizeof(*config));

	ck_assert_ptr_nonnull(config);
	config->domains = od_domain_set_new();
	ck_assert(od_domain_set_add(config->domains, "example.test", false));
	ck_assert(od_domain_set_add(config->domains, "sub.test", true));
	ck_assert(od_domain_set_add(config->domains, "a.parent.test", false));
	od_domain_set_finish(config->domains);
	config->etrn_other = other;
	return config;
}

static void
assert_action(const char *argument, enum od_etrn_other other,
    enum od_etrn_action expected)
{
	struct od_config *config = make_config(other);
	struct od_etrn_decision decision;

	od_etrn_decide(argument, "", config, &decision);
	ck_assert_msg(decision.action == expected, "%s: action %d, expected "
	    "%d", argument, decision.action, expected);
	od_config_free(config);
}

START_TEST(etrn_on_demand_domains)
{
	struct od_config *config = make_config(OD_ETRN_OTHER_PASS);
	struct od_etrn_decision decision;

	od_etrn_decide("example.test", "", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	ck_assert_str_eq(decision.domain, "example.test");
	ck_assert(!decision.subdomains);

	od_etrn_decide("EXAMPLE.test.", "", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	ck_assert_str_eq(decision.domain, "example.test");

	od_etrn_decide("@example.test", "", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	ck_assert(decision.subdomains);

	od_etrn_decide("x.sub.test", "", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);

	/* "@parent.test" covers the on-demand a.parent.test below it. */
	od_etrn_decide("@parent.test", "", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	ck_assert_str_eq(decision.domain, "parent.test");
	od_config_free(config);
}
END_TEST

START_TEST(etrn_other_domains_pass_or_deny)
{
	assert_action("other.test", OD_ETRN_OTHER_PASS, OD_ETRN_PASS);
	assert_action("other.test", OD_ETRN_OTHER_DENY, OD_ETRN_DENY);
	assert_action("#queue1", OD_ETRN_OTHER_PASS, OD_ETRN_PASS);
	assert_action("#queue1", OD_ETRN_OTHER_DENY, OD_ETRN_DENY);
	assert_action("notexample.test", OD_ETRN_OTHER_PASS, OD_ETRN_PASS);
	assert_action("sub.test", OD_ETRN_OTHER_PASS, OD_ETRN_PASS);
	assert_action("parent.test", OD_ETRN_OTHER_PASS, OD_ETRN_PASS);
}
END_TEST

START_TEST(etrn_invalid_arguments)
{
	static const char *const invalid[] = {
		"", "@", "exa mple.test", "example.test;rm", "\"example.test\"",
		"example.test\r\n", "exa\x01mple.test", "example..test",
		"-example.test", "ex$ample.test", "example.test/..",
		"@@example.test", "b\xc3\xbc" "cher.example", "[127.0.0.1]",
		"-qIabc", "example.test'",
	};
	size_t i;
	char long_name[300];

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		assert_action(invalid[i], OD_ETRN_OTHER_PASS, OD_ETRN_INVALID);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_action(long_name, OD_ETRN_OTHER_PASS, OD_ETRN_INVALID);
}
END_TEST

START_TEST(etrn_split_key_forms)
{
	char buffer[300];
	const char *client, *argument;

	od_etrn_split_key("example.test/192.0.2.7", buffer, sizeof(buffer),
	    &client, &argument);
	ck_assert_str_eq(client, "192.0.2.7");
	ck_assert_str_eq(argument, "example.test");
	od_etrn_split_key("@example.test/ipv6:2001:db8::7", buffer,
	    sizeof(buffer), &client, &argument);
	ck_assert_str_eq(client, "ipv6:2001:db8::7");
	ck_assert_str_eq(argument, "@example.test");
	od_etrn_split_key("#queue/", buffer, sizeof(buffer), &client,
	    &argument);
	ck_assert_str_eq(client, "");
	ck_assert_str_eq(argument, "#queue");
	od_etrn_split_key("example.test / 192.0.2.7", buffer, sizeof(buffer),
	    &client, &argument);
	ck_assert_str_eq(client, "192.0.2.7");
	ck_assert_str_eq(argument, "example.test");
	od_etrn_split_key("example.test", buffer, sizeof(buffer), &client,
	    &argument);
	ck_assert_str_eq(client, "");
	ck_assert_str_eq(argument, "example.test");
}
END_TEST

/* A key as long as sendmail's cut may end in a shortened address. */
START_TEST(etrn_split_key_cut_address)
{
	char buffer[300], key[300], domain[250];
	const char *client, *argument;

	memset(domain, 'a', sizeof(domain));
	domain[244] = '\0';
	snprintf(key, sizeof(key), "%s/127.0.0.10", domain);
	ck_assert_uint_eq(strlen(key), 255);
	od_etrn_split_key(key, buffer, sizeof(buffer), &client, &argument);
	ck_assert_str_eq(client, "127.0.0.10");
	ck_assert_str_eq(argument, domain);

	domain[244] = 'a';
	domain[245] = '\0';
	snprintf(key, sizeof(key), "%s/127.0.0.10", domain);
	ck_assert_uint_eq(strlen(key), 256);
	od_etrn_split_key(key, buffer, sizeof(buffer), &client, &argument);
	ck_assert_str_eq(client, "");
	ck_assert_str_eq(argument, domain);
}
END_TEST

START_TEST(etrn_allow_limits_clients)
{
	struct od_config *config = make_config(OD_ETRN_OTHER_PASS);
	struct od_etrn_decision decision;
	struct od_etrn_allow allow[2];

	memset(allow, 0, sizeof(allow));
	strcpy(allow[0].domain, "example.test");
	allow[0].networks = calloc(2, sizeof(struct od_network));
	ck_assert(od_network_parse("192.0.2.0/24", &allow[0].networks[0]));
	ck_assert(od_network_parse("2001:db8::/32", &allow[0].networks[1]));
	allow[0].count = 2;
	strcpy(allow[1].domain, "sub.test");
	allow[1].subdomains = true;
	allow[1].networks = calloc(1, sizeof(struct od_network));
	ck_assert(od_network_parse("198.51.100.7", &allow[1].networks[0]));
	allow[1].count = 1;
	config->etrn_allow = allow;
	config->etrn_allow_count = 2;

	od_etrn_decide("example.test", "192.0.2.99", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	od_etrn_decide("example.test", "ipv6:2001:db8::1", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	od_etrn_decide("example.test", "192.0.3.1", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_DENY);
	ck_assert_str_eq(decision.text, "this client may not ETRN this "
	    "domain");
	od_etrn_decide("example.test", "", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_DENY);
	/* The operator's requests (no client) are not limited. */
	od_etrn_decide("example.test", NULL, config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	/* Domains no entry covers are open to every client. */
	od_etrn_decide("a.parent.test", "203.0.113.1", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	od_etrn_decide("x.sub.test", "198.51.100.7", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_RELEASE);
	od_etrn_decide("x.sub.test", "198.51.100.8", config, &decision);
	ck_assert_int_eq(decision.action, OD_ETRN_DENY);

	free(allow[0].networks);
	free(allow[1].networks);
	config->etrn_allow = NULL;
	config->etrn_allow_count = 0;
	od_config_free(config);
}
END_TEST

START_TEST(network_parse_and_match)
{
	struct od_network network;

	ck_assert(od_network_parse("192.0.2.77/24", &network));
	ck_assert_uint_eq(network.prefix, 24);
	ck_assert(od_network_contains(&network, "192.0.2.1"));
	ck_assert(!od_network_contains(&network, "192.0.3.1"));
	ck_assert(!od_network_contains(&network, "ipv6:2001:db8::1"));
	ck_assert(!od_network_contains(&network, "not an address"));
	ck_assert(od_network_parse("127.0.0.1", &network));
	ck_assert_uint_eq(network.prefix, 32);
	ck_assert(od_network_contains(&network, "127.0.0.1"));
	ck_assert(!od_network_contains(&network, "127.0.0.2"));
	ck_assert(od_network_parse("2001:db8::/32", &network));
	ck_assert(od_network_contains(&network, "IPv6:2001:DB8::7"));
	ck_assert(od_network_contains(&network, "2001:db8:1::7"));
	ck_assert(!od_network_contains(&network, "2001:db9::7"));
	ck_assert(od_network_parse("0.0.0.0/0", &network));
	ck_assert(od_network_contains(&network, "203.0.113.9"));
	ck_assert(!od_network_parse("192.0.2.0/33", &network));
	ck_assert(!od_network_parse("192.0.2.0/", &network));
	ck_assert(!od_network_parse("192.0.2.0/-1", &network));
	ck_assert(!od_network_parse("example.test", &network));
	ck_assert(!od_network_parse("/24", &network));
	ck_assert(!od_network_parse("2001:db8::/129", &network));
}
END_TEST

static struct od_index_entry
make_entry(const char *queue_id, const char *domain, time_t held_at)
{
	struct od_index_entry entry;

	memset(&entry, 0, sizeof(entry));
	strcpy(entry.queue_id, queue_id);
	strcpy(entry.domain, domain);
	entry.size = 100;
	entry.held_at = held_at;
	strcpy(entry.sender, "<a@b.test>");
	return entry;
}

START_TEST(index_select_by_domain)
{
	struct od_index *index = od_index_new();
	struct od_index_entry entry, *entries = NULL;
	size_t count = 0;

	entry = make_entry("AAAAAA000001", "example.test", 10);
	ck_assert(od_index_add(index, &entry));
	entry = make_entry("AAAAAA000002", "a.example.test", 20);
	ck_assert(od_index_add(index, &entry));
	entry = make_entry("AAAAAA000003", "notexample.test", 30);
	ck_assert(od_index_add(index, &entry));

	ck_assert(od_index_select(index, "example.test", false, &entries,
	    &count));
	ck_assert_uint_eq(count, 1);
	ck_assert_str_eq(entries[0].queue_id, "AAAAAA000001");
	free(entries);

	ck_assert(od_index_select(index, "example.test", true, &entries,
	    &count));
	ck_assert_uint_eq(count, 2);
	free(entries);

	ck_assert(od_index_select_older(index, 25, &entries, &count));
	ck_assert_uint_eq(count, 2);
	free(entries);

	ck_assert(od_index_remove(index, "AAAAAA000002"));
	ck_assert(!od_index_remove(index, "AAAAAA000002"));
	ck_assert(od_index_select(index, "example.test", true, &entries,
	    &count));
	ck_assert_uint_eq(count, 1);
	free(entries);
	od_index_free(index);
}
END_TEST

START_TEST(index_rebuild_keeps_new_holds)
{
	struct od_index *index = od_index_new();
	struct od_index_entry entry, listed[2], *entries = NULL;
	unsigned long long generation;
	size_t count = 0;

	ck_assert(!od_index_complete(index, NULL));
	entry = make_entry("AAAAAA000001", "example.test", 1000);
	ck_assert(od_index_add(index, &entry));
	entry = make_entry("AAAAAA000002", "example.test", 1001);
	ck_assert(od_index_add(index, &entry));

	generation = od_index_generation(index);
	/* Held while the listing ran, so the listing misses it. */
	entry = make_entry("AAAAAA000003", "example.test", 1002);
	ck_assert(od_index_add(index, &entry));

	/* The listing: 000001 was delivered, 000002 is held, 000004 too. */
	listed[0] = make_entry("AAAAAA000002", "example.test", 960);
	listed[0].size = 54;
	strcpy(listed[0].sender, "<a@b.te");
	listed[1] = make_entry("AAAAAA000004", "other.test", 900);
	ck_assert(od_index_rebuild(index, listed, 2, generation));
	ck_assert(od_index_complete(index, NULL));

	ck_assert(od_index_select(index, "example.test", false, &entries,
	    &count));
	ck_assert_uint_eq(count, 2);
	ck_assert(od_index_find(index, "AAAAAA000002", &entry));
	/*
	 * The filter's details survive: the exact hold time (the listing has
	 * minutes only), the size with headers (the listing counts the body)
	 * and the whole sender (the listing may cut it).
	 */
	ck_assert_int_eq(entry.held_at, 1001);
	ck_assert_int_eq(entry.size, 100);
	ck_assert_str_eq(entry.sender, "<a@b.test>");
	ck_assert(od_index_find(index, "AAAAAA000003", &entry));
	ck_assert(!od_index_find(index, "AAAAAA000001", &entry));
	ck_assert(od_index_find(index, "AAAAAA000004", &entry));
	free(entries);

	od_index_invalidate(index);
	ck_assert(!od_index_complete(index, NULL));
	od_index_free(index);
}
END_TEST

/* Thousands of holds: lookups stay right as the buckets grow and move. */
START_TEST(index_many_entries)
{
	struct od_index *index = od_index_new();
	struct od_index_entry entry;
	char id[32];
	size_t i;

	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "ID%010zu", i);
		entry = make_entry(id, "example.test", (time_t)i);
		ck_assert(od_index_add(index, &entry));
	}
	/* Adding an ID again replaces its entry. */
	entry = make_entry("ID0000000007", "example.test", 99999);
	ck_assert(od_index_add(index, &entry));
	for (i = 0; i < 5000; i += 2) {
		snprintf(id, sizeof(id), "ID%010zu", i);
		ck_assert(od_index_remove(index, id));
	}
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "ID%010zu", i);
		ck_assert_msg(od_index_find(index, id, &entry) == (i % 2 == 1),
		    "%s", id);
		if (i % 2 == 1)
			ck_assert_int_eq(entry.held_at,
			    i == 7 ? 99999 : (time_t)i);
	}
	od_index_free(index);
}
END_TEST

START_TEST(index_status_rows)
{
	struct od_index *index = od_index_new();
	struct od_index_domain_status *rows = NULL;
	struct od_index_entry entry;
	size_t count = 0;

	entry = make_entry("AAAAAA000001", "b.test", 50);
	ck_assert(od_index_add(index, &entry));
	entry = make_entry("AAAAAA000002", "a.test", 40);
	ck_assert(od_index_add(index, &entry));
	entry = make_entry("AAAAAA000003", "b.test", 30);
	ck_assert(od_index_add(index, &entry));
	/* The same ID again replaces, never doubles. */
	ck_assert(od_index_add(index, &entry));

	ck_assert(od_index_status(index, &rows, &count));
	ck_assert_uint_eq(count, 2);
	ck_assert_str_eq(rows[0].domain, "a.test");
	ck_assert_uint_eq(rows[0].messages, 1);
	ck_assert_str_eq(rows[1].domain, "b.test");
	ck_assert_uint_eq(rows[1].messages, 2);
	ck_assert_int_eq(rows[1].bytes, 200);
	ck_assert_int_eq(rows[1].oldest, 30);
	free(rows);
	od_index_free(index);
}
END_TEST

START_TEST(domain_within_labels)
{
	ck_assert(od_domain_within("example.test", "example.test"));
	ck_assert(od_domain_within("a.example.test", "example.test"));
	ck_assert(!od_domain_within("notexample.test", "example.test"));
	ck_assert(!od_domain_within("example.test", "a.example.test"));
	ck_assert(!od_domain_within("test", "example.test"));
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("release");
	TCase *etrn = tcase_create("etrn");
	TCase *index = tcase_create("index");
	SRunner *runner;
	int failed;

	tcase_add_test(etrn, etrn_on_demand_domains);
	tcase_add_test(etrn, etrn_other_domains_pass_or_deny);
	tcase_add_test(etrn, etrn_invalid_arguments);
	tcase_add_test(etrn, etrn_split_key_forms);
	tcase_add_test(etrn, etrn_split_key_cut_address);
	tcase_add_test(etrn, etrn_allow_limits_clients);
	tcase_add_test(etrn, network_parse_and_match);
	tcase_add_test(index, index_select_by_domain);
	tcase_add_test(index, index_rebuild_keeps_new_holds);
	tcase_add_test(index, index_many_entries);
	tcase_add_test(index, index_status_rows);
	tcase_add_test(index, domain_within_labels);
	suite_add_tcase(suite, etrn);
	suite_add_tcase(suite, index);

	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
