/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests: the socket map's netstring parser (milter/netstring.c). */

#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "od_netstring.h"

/* The payload limit of the socket map server. */
#define PAYLOAD_MAX 1023

static enum od_netstring_status
parse(const char *text, struct od_netstring *netstring)
{
	return od_netstring_parse(text, strlen(text), PAYLOAD_MAX, netstring);
}

START_TEST(netstring_whole_request)
{
	static const char text[] = "21:ondemand example.test,12:";
	struct od_netstring netstring;

	ck_assert_int_eq(parse(text, &netstring), OD_NETSTRING_OK);
	ck_assert_uint_eq(netstring.payload_offset, 3);
	ck_assert_uint_eq(netstring.payload_length, 21);
	ck_assert_uint_eq(netstring.length, 25);
	ck_assert(memcmp(text + 3, "ondemand example.test", 21) == 0);

	ck_assert_int_eq(parse("0:,", &netstring), OD_NETSTRING_OK);
	ck_assert_uint_eq(netstring.payload_length, 0);
	ck_assert_uint_eq(netstring.length, 3);
	ck_assert_int_eq(parse("00005:hello,", &netstring), OD_NETSTRING_OK);
	ck_assert_uint_eq(netstring.payload_length, 5);
}
END_TEST

START_TEST(netstring_asks_for_what_is_missing)
{
	static const char text[] = "12:ondemand a.t,";
	struct od_netstring netstring;
	size_t have = 0, reads = 0;

	/* A reader that reads exactly what is missing, as the server does. */
	while (od_netstring_parse(text, have, PAYLOAD_MAX, &netstring) ==
	    OD_NETSTRING_SHORT) {
		ck_assert_uint_ge(netstring.missing, 1);
		have += netstring.missing;
		reads++;
		ck_assert_uint_le(have, strlen(text));
	}
	ck_assert_uint_eq(have, strlen(text));
	/* One read per length octet and the colon, then the rest at once. */
	ck_assert_uint_eq(reads, 4);
	ck_assert_int_eq(od_netstring_parse(text, have, PAYLOAD_MAX,
	    &netstring), OD_NETSTRING_OK);
}
END_TEST

START_TEST(netstring_rejects_malformed)
{
	static const char payload_nul[] = "3:a\0b,";
	struct od_netstring netstring;

	ck_assert_int_eq(parse(":abc,", &netstring), OD_NETSTRING_INVALID);
	ck_assert_int_eq(parse("3x:abc,", &netstring), OD_NETSTRING_INVALID);
	ck_assert_int_eq(parse("-3:abc,", &netstring), OD_NETSTRING_INVALID);
	ck_assert_int_eq(parse("000003:abc,", &netstring),
	    OD_NETSTRING_INVALID);
	ck_assert_int_eq(parse("3:abc;", &netstring), OD_NETSTRING_INVALID);
	ck_assert_int_eq(parse("1024:", &netstring), OD_NETSTRING_INVALID);
	ck_assert_int_eq(parse("99999:", &netstring), OD_NETSTRING_INVALID);
	ck_assert_int_eq(od_netstring_parse(payload_nul,
	    sizeof(payload_nul) - 1, PAYLOAD_MAX, &netstring),
	    OD_NETSTRING_INVALID);
	ck_assert_int_eq(parse("1023:", &netstring), OD_NETSTRING_SHORT);
	ck_assert_uint_eq(netstring.missing, 1024);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("netstring");
	TCase *parsing = tcase_create("parsing");
	SRunner *runner;
	int failed;

	tcase_add_test(parsing, netstring_whole_request);
	tcase_add_test(parsing, netstring_asks_for_what_is_missing);
	tcase_add_test(parsing, netstring_rejects_malformed);
	suite_add_tcase(suite, parsing);

	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
