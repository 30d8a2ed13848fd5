/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests: envelope address parsing and the message-class rule. */

#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "od_msgclass.h"
#include "od_rcpt.h"

static void
assert_domain(const char *arg, const char *expected)
{
	char domain[OD_DOMAIN_SIZE] = "";

	ck_assert_msg(od_addr_domain(arg, domain) == OD_ADDR_DOMAIN,
	    "%s: no domain", arg);
	ck_assert_str_eq(domain, expected);
}

static void
assert_kind(const char *arg, enum od_addr_kind expected)
{
	char domain[OD_DOMAIN_SIZE];

	ck_assert_int_eq(od_addr_domain(arg, domain), expected);
}

START_TEST(rcpt_brackets_and_case)
{
	assert_domain("<user@example.test>", "example.test");
	assert_domain("user@example.test", "example.test");
	assert_domain("<User@EXAMPLE.Test>", "example.test");
	assert_domain(" <user@example.test> ", "example.test");
	assert_domain("<user@example.test.>", "example.test");
}
END_TEST

START_TEST(rcpt_source_route)
{
	assert_domain("<@relay.test:user@example.test>", "example.test");
	assert_domain("<@a.test,@b.test:user@example.test>", "example.test");
	assert_kind("<@relay.test>", OD_ADDR_INVALID);
	assert_kind("<@relay.test:>", OD_ADDR_INVALID);
}
END_TEST

START_TEST(rcpt_quoted_local_part)
{
	assert_domain("<\"a@other.test\"@example.test>", "example.test");
	assert_domain("<\"a\\\"@b\"@example.test>", "example.test");
	assert_domain("<a\\@other.test@example.test>", "example.test");
	assert_kind("<\"user@example.test>", OD_ADDR_INVALID);
	assert_kind("<\"user@example.test\">", OD_ADDR_LOCAL);
}
END_TEST

START_TEST(rcpt_null_local_literal)
{
	assert_kind("<>", OD_ADDR_NULL);
	assert_kind("", OD_ADDR_NULL);
	assert_kind("<postmaster>", OD_ADDR_LOCAL);
	assert_kind("postmaster", OD_ADDR_LOCAL);
	assert_kind("<user@[127.0.0.1]>", OD_ADDR_LITERAL);
	assert_kind("<user@[IPv6:::1]>", OD_ADDR_LITERAL);
}
END_TEST

START_TEST(rcpt_invalid_forms)
{
	assert_kind("<user@example.test", OD_ADDR_INVALID);
	assert_kind("user@example.test>", OD_ADDR_INVALID);
	assert_kind("<@example.test:>", OD_ADDR_INVALID);
	assert_kind("<user@>", OD_ADDR_INVALID);
	assert_kind("<@example.test>", OD_ADDR_INVALID);
	assert_kind("<user@exa mple.test>", OD_ADDR_INVALID);
	assert_kind("<user@example.test..>", OD_ADDR_INVALID);
	assert_kind("<user@[127.0.0.1>", OD_ADDR_INVALID);
	assert_kind("<user@example.test\\>", OD_ADDR_INVALID);
}
END_TEST

START_TEST(rcpt_idn_and_long_domains)
{
	char arg[1200];
	size_t i;

	assert_domain("<user@bücher.example>", "xn--bcher-kva.example");
	assert_domain("<user@XN--BCHER-KVA.example>", "xn--bcher-kva.example");

	/* 1,100 octets after '@' is not a domain, whatever it holds. */
	strcpy(arg, "<u@");
	for (i = 3; i < 1103; i++)
		arg[i] = (i % 10 == 0) ? '.' : 'a';
	arg[i++] = '>';
	arg[i] = '\0';
	assert_kind(arg, OD_ADDR_INVALID);
}
END_TEST

START_TEST(class_first_recipient_decides)
{
	struct od_msgclass msgclass;

	od_msgclass_reset(&msgclass);
	ck_assert(od_msgclass_add(&msgclass, "example.test"));
	ck_assert_int_eq(msgclass.kind, OD_CLASS_HOLD);
	ck_assert_str_eq(msgclass.domain, "example.test");
	ck_assert(od_msgclass_add(&msgclass, "example.test"));
	ck_assert(!od_msgclass_add(&msgclass, NULL));
	ck_assert(!od_msgclass_add(&msgclass, "other.test"));
	ck_assert_uint_eq(msgclass.recipients, 2);
}
END_TEST

START_TEST(class_normal_first)
{
	struct od_msgclass msgclass;

	od_msgclass_reset(&msgclass);
	ck_assert(od_msgclass_add(&msgclass, NULL));
	ck_assert_int_eq(msgclass.kind, OD_CLASS_NORMAL);
	ck_assert(od_msgclass_add(&msgclass, NULL));
	ck_assert(!od_msgclass_add(&msgclass, "example.test"));
	ck_assert_uint_eq(msgclass.recipients, 2);
}
END_TEST

START_TEST(class_reset_between_messages)
{
	struct od_msgclass msgclass;

	od_msgclass_reset(&msgclass);
	ck_assert(od_msgclass_add(&msgclass, "example.test"));
	od_msgclass_reset(&msgclass);
	ck_assert_int_eq(msgclass.kind, OD_CLASS_UNSET);
	ck_assert_uint_eq(msgclass.recipients, 0);
	ck_assert(od_msgclass_add(&msgclass, NULL));
	ck_assert_int_eq(msgclass.kind, OD_CLASS_NORMAL);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("rcpt");
	TCase *rcpt = tcase_create("address");
	TCase *msgclass = tcase_create("class");
	SRunner *runner;
	int failed;

	tcase_add_test(rcpt, rcpt_brackets_and_case);
	tcase_add_test(rcpt, rcpt_source_route);
	tcase_add_test(rcpt, rcpt_quoted_local_part);
	tcase_add_test(rcpt, rcpt_null_local_literal);
	tcase_add_test(rcpt, rcpt_invalid_forms);
	tcase_add_test(rcpt, rcpt_idn_and_long_domains);
	tcase_add_test(msgclass, class_first_recipient_decides);
	tcase_add_test(msgclass, class_normal_first);
	tcase_add_test(msgclass, class_reset_between_messages);
	suite_add_tcase(suite, rcpt);
	suite_add_tcase(suite, msgclass);

	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
