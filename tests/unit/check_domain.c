/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests: domain normalisation and on-demand domain matching. */

#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "od_domain.h"

static void
assert_normal(const char *input, const char *expected)
{
	char out[OD_DOMAIN_SIZE];
	const char *error = NULL;

	ck_assert_msg(od_domain_normalize(input, out, &error),
	    "\"%s\" rejected: %s", input, error ? error : "(no error)");
	ck_assert_str_eq(out, expected);
}

static void
assert_invalid(const char *input, const char *expected_error)
{
	char out[OD_DOMAIN_SIZE];
	const char *error = NULL;

	ck_assert_msg(!od_domain_normalize(input, out, &error),
	    "\"%s\" accepted as \"%s\"", input, out);
	ck_assert_ptr_nonnull(error);
	if (expected_error != NULL)
		ck_assert_str_eq(error, expected_error);
}

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Builds a name of total length len from 63-octet labels. */
static char *
long_name(size_t len)
{
	char *s = repeat('a', len);
	size_t i;

	for (i = 63; i < len; i += 64)
		s[i] = '.';
	if (s[len - 1] == '.')
		s[len - 1] = 'b';
	return s;
}

START_TEST(normalize_case_and_trailing_dot)
{
	assert_normal("Example.TEST", "example.test");
	assert_normal("example.test.", "example.test");
	assert_normal("EXAMPLE.TEST.", "example.test");
	assert_normal("localhost", "localhost");
	assert_normal("a-b.c0", "a-b.c0");
}
END_TEST

START_TEST(normalize_rejects_bad_syntax)
{
	assert_invalid("", "is empty");
	assert_invalid(".", "has an empty label");
	assert_invalid("example.test..", "has an empty label");
	assert_invalid("example..test", "has an empty label");
	assert_invalid(".example.test", "has an empty label");
	assert_invalid("exa_mple.test", NULL);
	assert_invalid("exa mple.test", NULL);
	assert_invalid("example.test\n", NULL);
	assert_invalid("-example.test", "has a label that starts with a hyphen");
	assert_invalid("example-.test", "has a label that ends with a hyphen");
	assert_invalid("example.test-", "has a label that ends with a hyphen");
	assert_invalid("[127.0.0.1]", NULL);
	assert_invalid("192.0.2.1",
	    "has an all-numeric last label, as an IP address does");
	assert_invalid("example.123", NULL);
	assert_normal("123.example", "123.example");
	assert_invalid("user@example.test", NULL);
}
END_TEST

START_TEST(normalize_label_and_name_limits)
{
	char *label63 = repeat('a', 63);
	char *label64 = repeat('a', 64);
	char *name253 = long_name(253);
	char *name254 = long_name(254);
	char *with_dot = malloc(255);

	assert_normal(label63, label63);
	assert_invalid(label64, "has a label longer than 63 octets");
	ck_assert_uint_eq(strlen(name253), 253);
	assert_normal(name253, name253);
	assert_invalid(name254, "is longer than 253 octets");

	/* 253 octets plus the trailing dot of an absolute name is fine. */
	ck_assert_ptr_nonnull(with_dot);
	strcpy(with_dot, name253);
	strcat(with_dot, ".");
	assert_normal(with_dot, name253);

	free(label63);
	free(label64);
	free(name253);
	free(name254);
	free(with_dot);
}
END_TEST

START_TEST(normalize_idn_both_forms)
{
	assert_normal("bücher.example", "xn--bcher-kva.example");
	assert_normal("BÜCHER.example", "xn--bcher-kva.example");
	assert_normal("xn--bcher-kva.example", "xn--bcher-kva.example");
	assert_normal("XN--BCHER-KVA.EXAMPLE.", "xn--bcher-kva.example");
	assert_normal("münchen.test", "xn--mnchen-3ya.test");
	/* Invalid UTF-8 is not a name. */
	assert_invalid("b\xfc" "cher.example",
	    "is not a valid internationalised domain name");
}
END_TEST

static struct od_domain_set *
make_set(void)
{
	struct od_domain_set *set = od_domain_set_new();

	ck_assert_ptr_nonnull(set);
	ck_assert(od_domain_set_add(set, "example.test", false));
	ck_assert(od_domain_set_add(set, "sub.test", true));
	ck_assert(od_domain_set_add(set, "xn--bcher-kva.example", false));
	ck_assert(od_domain_set_add(set, "example.test", false));
	od_domain_set_finish(set);
	return set;
}

START_TEST(set_matches_exact_labels)
{
	struct od_domain_set *set = make_set();

	ck_assert(od_domain_set_match(set, "example.test"));
	ck_assert(od_domain_set_match(set, "xn--bcher-kva.example"));
	ck_assert(!od_domain_set_match(set, "notexample.test"));
	ck_assert(!od_domain_set_match(set, "example.test.other.test"));
	ck_assert(!od_domain_set_match(set, "mail.example.test"));
	ck_assert(!od_domain_set_match(set, "test"));
	ck_assert(!od_domain_set_match(set, "example.tes"));
	od_domain_set_free(set);
}
END_TEST

START_TEST(set_subdomain_entries)
{
	struct od_domain_set *set = make_set();

	ck_assert(od_domain_set_match(set, "a.sub.test"));
	ck_assert(od_domain_set_match(set, "b.a.sub.test"));
	ck_assert(!od_domain_set_match(set, "sub.test"));
	ck_assert(!od_domain_set_match(set, "asub.test"));
	ck_assert(!od_domain_set_match(set, "a.sub.test.other"));
	od_domain_set_free(set);
}
END_TEST

START_TEST(set_duplicates_and_listing)
{
	struct od_domain_set *set = make_set();
	bool subdomains = true;

	ck_assert_uint_eq(od_domain_set_count(set), 3);
	ck_assert_str_eq(od_domain_set_entry(set, 0, &subdomains),
	    "example.test");
	ck_assert(!subdomains);
	ck_assert_str_eq(od_domain_set_entry(set, 1, &subdomains), "sub.test");
	ck_assert(subdomains);
	od_domain_set_free(set);
}
END_TEST

START_TEST(set_empty_matches_nothing)
{
	struct od_domain_set *set = od_domain_set_new();

	od_domain_set_finish(set);
	ck_assert(!od_domain_set_match(set, "example.test"));
	ck_assert(!od_domain_set_match(NULL, "example.test"));
	od_domain_set_free(set);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("domain");
	TCase *normalize = tcase_create("normalize");
	TCase *set = tcase_create("set");
	SRunner *runner;
	int failed;

	tcase_add_test(normalize, normalize_case_and_trailing_dot);
	tcase_add_test(normalize, normalize_rejects_bad_syntax);
	tcase_add_test(normalize, normalize_label_and_name_limits);
	tcase_add_test(normalize, normalize_idn_both_forms);
	tcase_add_test(set, set_matches_exact_labels);
	tcase_add_test(set, set_subdomain_entries);
	tcase_add_test(set, set_duplicates_and_listing);
	tcase_add_test(set, set_empty_matches_nothing);
	suite_add_tcase(suite, normalize);
	suite_add_tcase(suite, set);

	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
