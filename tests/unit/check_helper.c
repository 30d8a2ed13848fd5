/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests: the release helper's request and reply lines, and the parser
 * of `sendmail -bp -qQ` listings.  The listings are output of sendmail
 * 8.17.1.9 (Debian 12) with two queue directories, captured on
 * Fri Dec  4 2026 in UTC; lines marked synthetic follow the same format
 * for cases sendmail did not produce there.
 */

#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "od_helper_proto.h"

/* 2026-12-04 21:00:00 UTC, shortly after the samples were listed. */
#define SAMPLE_NOW ((time_t)1796418000)
/* 2026-12-04 20:36:00 UTC, the queue time of every sample item. */
#define SAMPLE_QUEUED ((time_t)1796416560)

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Builds "VERB TAG" followed by count copies of id. */
static char *
request_with_ids(const char *head, const char *id, size_t count)
{
	size_t id_length = strlen(id);
	size_t length = strlen(head) + count * (id_length + 1);
	char *line = malloc(length + 1);
	char *p;
	size_t i;

	ck_assert_ptr_nonnull(line);
	p = line + strlen(head);
	memcpy(line, head, strlen(head));
	for (i = 0; i < count; i++) {
		*p++ = ' ';
		memcpy(p, id, id_length);
		p += id_length;
	}
	*p = '\0';
	return line;
}

static void
assert_request_valid(const char *line, enum od_helper_verb verb,
    const char *tag)
{
	struct od_helper_request request;
	char error[512] = "";

	ck_assert_msg(od_helper_request_parse(line, strlen(line), &request,
	    error, sizeof(error)), "\"%.80s\" rejected: %s", line, error);
	ck_assert_int_eq(request.verb, verb);
	ck_assert_str_eq(request.tag, tag);
	od_helper_request_free(&request);
}

/* Checks that a request is rejected and that error contains expected. */
static void
assert_request_invalid_n(const char *line, size_t length, const char *tag,
    const char *expected)
{
	struct od_helper_request request;
	char error[512] = "";

	ck_assert_msg(!od_helper_request_parse(line, length, &request, error,
	    sizeof(error)), "\"%.80s\" accepted", line);
	ck_assert_ptr_null(request.ids);
	ck_assert_str_eq(request.tag, tag);
	ck_assert_msg(strstr(error, expected) != NULL,
	    "\"%.80s\": error \"%s\" lacks \"%s\"", line, error, expected);
}

static void
assert_request_invalid(const char *line, const char *tag,
    const char *expected)
{
	assert_request_invalid_n(line, strlen(line), tag, expected);
}

START_TEST(request_accepts_each_verb)
{
	struct od_helper_request request;
	char error[256];
	const char *line = "DELIVER 42 6B4KakNA031584 ABCDEF "
	    "ABCDEFGHIJKLMNOPQRST";

	ck_assert(od_helper_request_parse(line, strlen(line), &request,
	    error, sizeof(error)));
	ck_assert_int_eq(request.verb, OD_HELPER_DELIVER);
	ck_assert_str_eq(request.tag, "42");
	ck_assert_uint_eq(request.id_count, 3);
	ck_assert_str_eq(request.ids[0], "6B4KakNA031584");
	ck_assert_str_eq(request.ids[1], "ABCDEF");
	ck_assert_str_eq(request.ids[2], "ABCDEFGHIJKLMNOPQRST");
	od_helper_request_free(&request);

	line = "DELIVERTAG 9999999999 xn--bcher-kva.example";
	ck_assert(od_helper_request_parse(line, strlen(line), &request,
	    error, sizeof(error)));
	ck_assert_int_eq(request.verb, OD_HELPER_DELIVERTAG);
	ck_assert_str_eq(request.domain, "xn--bcher-kva.example");
	ck_assert_uint_eq(request.id_count, 0);
	od_helper_request_free(&request);

	assert_request_valid("UNHOLD 1 abcdef", OD_HELPER_UNHOLD, "1");
	assert_request_valid("EXPIRE 0007 3600 6B4KakNA031584",
	    OD_HELPER_EXPIRE, "0007");
	ck_assert(od_helper_request_parse("EXPIRE 8 31622400 ABCDEFG", 25,
	    &request, error, sizeof(error)));
	ck_assert_uint_eq(request.age, 31622400);
	ck_assert_uint_eq(request.id_count, 1);
	od_helper_request_free(&request);
	assert_request_valid("LIST 5", OD_HELPER_LIST, "5");
	assert_request_valid("DELIVERTAG 3 localhost", OD_HELPER_DELIVERTAG,
	    "3");
}
END_TEST

START_TEST(request_rejects_bad_verbs)
{
	assert_request_invalid("deliver 1 ABCDEF", "1", "unknown request");
	assert_request_invalid("DELIVERX 1 ABCDEF", "1", "unknown request");
	assert_request_invalid("RUN 2 ABCDEF", "2", "unknown request");
	assert_request_invalid("LIST", "0", "has no tag");
	assert_request_invalid("", "0", "empty request line");
	assert_request_invalid("DELIVER\t1 ABCDEF", "0", "octet 0x09");
	assert_request_invalid("LIST 1\r", "0", "octet 0x0d");
}
END_TEST

START_TEST(request_rejects_bad_tags)
{
	assert_request_invalid("DELIVER x ABCDEF", "0", "invalid tag");
	assert_request_invalid("DELIVER 12345678901 ABCDEF", "0",
	    "invalid tag");
	assert_request_invalid("DELIVER -1 ABCDEF", "0", "invalid tag");
	assert_request_invalid("DELIVER 1a ABCDEF", "0", "invalid tag");
	assert_request_invalid("LIST 0x10", "0", "invalid tag");
	assert_request_invalid("DELIVER  ABCDEF", "0", "empty field");
}
END_TEST

START_TEST(request_rejects_bad_queue_ids)
{
	static const char *const bad[] = {
		"ABCDE",			/* too short */
		"ABCDEFGHIJKLMNOPQRSTU",	/* 21 characters */
		"ABC;DEF",
		"ABC$(id)",
		"AB`id`CD",
		"ABC|DEFG",
		"ABC&DEFG",
		"ABC>DEFG",
		"-qQfoo1",
		"-OQueueDirectory=/tmp",
		"../../etc",
		"ABC'DEF'",
		"ABC\"DEF\"",
		"ABC*DEFG",
		"ABC.DEFG",
	};
	char line[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "DELIVER 17 ABCDEFGH %s", bad[i]);
		assert_request_invalid(line, "17", "invalid queue ID");
		snprintf(line, sizeof(line), "UNHOLD 18 %s", bad[i]);
		assert_request_invalid(line, "18", "invalid queue ID");
		snprintf(line, sizeof(line), "EXPIRE 19 60 %s ABCDEFGH",
		    bad[i]);
		assert_request_invalid(line, "19", "invalid queue ID");
	}
	/* A space splits an ID into two, and the short half fails. */
	assert_request_invalid("DELIVER 20 ABCDEFG HIJ", "20",
	    "invalid queue ID \"HIJ\"");
	/* UTF-8 letters are not ASCII letters. */
	assert_request_invalid("DELIVER 21 \xc3\x84" "BCDEFG", "21",
	    "octet 0xc3");
}
END_TEST

START_TEST(request_rejects_nul_and_control)
{
	static const char with_nul[] = "DELIVER 22 ABCDEFG\0HIJKLM";
	static const char nul_after[] = "LIST 23\0";
	static const char newline[] = "DELIVER 24 ABCDEFG\nLIST 25";

	assert_request_invalid_n(with_nul, sizeof(with_nul) - 1, "22",
	    "NUL octet at offset 18");
	assert_request_invalid_n(nul_after, sizeof(nul_after) - 1, "0",
	    "NUL octet");
	assert_request_invalid_n(newline, sizeof(newline) - 1, "24",
	    "octet 0x0a");
	assert_request_invalid("DELIVER 26 ABC\x7f" "DEF", "26", "octet 0x7f");
	assert_request_invalid("DELIVER 27 ABC\x1b[0mDEF", "27", "octet 0x1b");
}
END_TEST

START_TEST(request_rejects_bad_spacing)
{
	assert_request_invalid(" DELIVER 1 ABCDEF", "0", "empty field");
	assert_request_invalid("DELIVER 1 ABCDEF ", "1", "empty field");
	assert_request_invalid("DELIVER 1  ABCDEF", "1", "empty field");
	assert_request_invalid("LIST 1 ", "1", "empty field");
}
END_TEST

START_TEST(request_rejects_id_counts)
{
	char *line;

	assert_request_invalid("DELIVER 1", "1", "at least one queue ID");
	assert_request_invalid("UNHOLD 2", "2", "at least one queue ID");
	assert_request_invalid("EXPIRE 3", "3", "an age in seconds");
	assert_request_invalid("EXPIRE 3 60", "3", "at least one queue ID");

	line = request_with_ids("DELIVER 4", "ABCDEF", 5000);
	assert_request_valid(line, OD_HELPER_DELIVER, "4");
	free(line);
	line = request_with_ids("DELIVER 5", "ABCDEF", 5001);
	assert_request_invalid(line, "5", "5001 queue IDs, more than the "
	    "maximum of 5000");
	free(line);
}
END_TEST

START_TEST(request_line_length_limit)
{
	char *line, *longer;
	size_t length;

	/* 9 + 3119 * 21 + 14 + 13 = 65535 octets, the longest allowed. */
	line = request_with_ids("DELIVER 6", "ABCDEFGHIJKLMNOPQRST", 3119);
	length = strlen(line);
	longer = malloc(length + 64);
	ck_assert_ptr_nonnull(longer);
	snprintf(longer, length + 64, "%s ABCDEFGHIJKLM ABCDEFGHIJKL", line);
	ck_assert_uint_eq(strlen(longer), OD_HELPER_LINE_MAX - 1);
	assert_request_valid(longer, OD_HELPER_DELIVER, "6");

	snprintf(longer, length + 64, "%s ABCDEFGHIJKLM ABCDEFGHIJKLZ", line);
	ck_assert_uint_eq(strlen(longer), OD_HELPER_LINE_MAX);
	assert_request_invalid(longer, "6", "longer than 65535 octets");
	free(longer);
	free(line);
}
END_TEST

START_TEST(request_rejects_bad_domains)
{
	char line[512];
	char *name;

	assert_request_invalid("DELIVERTAG 1 Example.test", "1",
	    "not in normal form");
	assert_request_invalid("DELIVERTAG 1 example.test.", "1",
	    "not in normal form");
	assert_request_invalid("DELIVERTAG 1 [example.test]", "1",
	    "invalid domain \"[example.test]\"");
	assert_request_invalid("DELIVERTAG 1 example.test]", "1",
	    "invalid domain");
	assert_request_invalid("DELIVERTAG 1 example..test", "1",
	    "empty label");
	assert_request_invalid("DELIVERTAG 1 -example.test", "1",
	    "starts with a hyphen");
	assert_request_invalid("DELIVERTAG 1 exa_mple.test", "1",
	    "invalid domain");
	assert_request_invalid("DELIVERTAG 1 b\xc3\xbc" "cher.example", "1",
	    "octet 0xc3");
	assert_request_invalid("DELIVERTAG 1 example.test extra", "1",
	    "takes one domain");
	assert_request_invalid("DELIVERTAG 1", "1", "needs a domain");
	assert_request_invalid("DELIVERTAG 1 a;b.test", "1", "invalid domain");
	assert_request_invalid("LIST 1 example.test", "1", "no arguments");

	/* Four labels of 63, 63, 63 and 61 octets: 253 octets in all. */
	name = repeat('a', 253);
	name[63] = name[127] = name[191] = '.';
	snprintf(line, sizeof(line), "DELIVERTAG 2 %s", name);
	assert_request_valid(line, OD_HELPER_DELIVERTAG, "2");
	free(name);

	name = repeat('a', 254);
	name[63] = name[127] = name[191] = '.';
	snprintf(line, sizeof(line), "DELIVERTAG 3 %s", name);
	assert_request_invalid(line, "3", "longer than 253 octets");
	free(name);
}
END_TEST

START_TEST(request_format_and_fit)
{
	static const char *const ids[] = { "6B4KakNA031584", "ABCDEF" };
	static const char *const bad_id[] = { "ABC;DEF" };
	static const char *const upper[] = { "Example.test" };
	static const char *const domain[] = { "example.test" };
	char line[256];
	const char **many;
	struct od_helper_request request;
	char error[256];
	char *long_line;
	size_t length, i;

	length = od_helper_request_format(OD_HELPER_DELIVER, 17, 0, ids, 2,
	    line, sizeof(line));
	ck_assert_str_eq(line, "DELIVER 17 6B4KakNA031584 ABCDEF\n");
	ck_assert_uint_eq(length, strlen(line));
	ck_assert(od_helper_request_parse(line, length - 1, &request, error,
	    sizeof(error)));
	ck_assert_uint_eq(request.id_count, 2);
	od_helper_request_free(&request);

	od_helper_request_format(OD_HELPER_DELIVERTAG, 9999999999ULL, 0,
	    domain, 1, line, sizeof(line));
	ck_assert_str_eq(line, "DELIVERTAG 9999999999 example.test\n");
	od_helper_request_format(OD_HELPER_LIST, 3, 0, NULL, 0, line,
	    sizeof(line));
	ck_assert_str_eq(line, "LIST 3\n");
	od_helper_request_format(OD_HELPER_EXPIRE, 4, 604799, ids, 1, line,
	    sizeof(line));
	ck_assert_str_eq(line, "EXPIRE 4 604799 6B4KakNA031584\n");
	/* EXPIRE needs an age in range, and no other verb takes one. */
	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_EXPIRE, 4, 0,
	    ids, 1, line, sizeof(line)), 0);
	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_EXPIRE, 4,
	    OD_HELPER_AGE_MAX + 1, ids, 1, line, sizeof(line)), 0);
	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_DELIVER, 4, 60,
	    ids, 1, line, sizeof(line)), 0);

	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_DELIVER, 1, 0,
	    bad_id, 1, line, sizeof(line)), 0);
	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_DELIVERTAG, 1, 0,
	    upper, 1, line, sizeof(line)), 0);
	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_UNHOLD, 1, 0, ids,
	    0, line, sizeof(line)), 0);
	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_UNHOLD,
	    10000000000ULL, 0, ids, 1, line, sizeof(line)), 0);
	ck_assert_uint_eq(od_helper_request_format(OD_HELPER_DELIVER, 1, 0, ids,
	    2, line, 20), 0);

	many = malloc(6000 * sizeof(*many));
	ck_assert_ptr_nonnull(many);
	for (i = 0; i < 6000; i++)
		many[i] = "ABCDEF";
	ck_assert_uint_eq(od_helper_request_fit(OD_HELPER_DELIVER, many, 6000),
	    5000);
	ck_assert_uint_eq(od_helper_request_fit(OD_HELPER_DELIVER, many, 3),
	    3);
	for (i = 0; i < 6000; i++)
		many[i] = "ABCDEFGHIJKLMNOPQRST";
	/* (65536 - strlen("DELIVER ") - 10 - strlen("\n")) / 21 */
	ck_assert_uint_eq(od_helper_request_fit(OD_HELPER_DELIVER, many, 6000),
	    3119);
	/* EXPIRE's age takes room too: (65536 - 7 - 10 - 1 - 9) / 21 */
	ck_assert_uint_eq(od_helper_request_fit(OD_HELPER_EXPIRE, many, 6000),
	    3119);
	long_line = malloc(OD_HELPER_LINE_MAX + 1);
	ck_assert_ptr_nonnull(long_line);
	length = od_helper_request_format(OD_HELPER_EXPIRE, 9999999999ULL,
	    OD_HELPER_AGE_MAX, many, 3119, long_line, OD_HELPER_LINE_MAX + 1);
	ck_assert_uint_gt(length, 65000);
	ck_assert_uint_le(length, OD_HELPER_LINE_MAX);
	free(long_line);
	free(many);
}
END_TEST

START_TEST(escape_makes_one_token)
{
	char out[64];

	od_helper_escape(out, sizeof(out), "a b\\c\td\xc3\xa9", true);
	ck_assert_str_eq(out, "a\\x20b\\x5cc\\x09d\\xc3\\xa9");
	od_helper_escape(out, sizeof(out), "ondemand [example.test]", false);
	ck_assert_str_eq(out, "ondemand [example.test]");
	/* An escape that does not fit is left out whole. */
	od_helper_escape(out, 6, "ab\tc", false);
	ck_assert_str_eq(out, "ab");
}
END_TEST

START_TEST(reply_parse_done_and_error)
{
	struct od_helper_reply reply;
	static const char *const bad[] = {
		"DONE 5", "DONE 5 0 extra", "DONE 5 256", "DONE 5 -1",
		"DONE x 0", "DONE 12345678901 0", "DONE 5 1x", "FINISHED 5 0",
		"", "DONE", "ITEM 5", "ITEM 5 ABCDEF 1 2",
	};
	size_t i;

	ck_assert(od_helper_reply_parse("DONE 5 0", 8, &reply));
	ck_assert_int_eq(reply.type, OD_HELPER_REPLY_DONE);
	ck_assert_uint_eq(reply.tag, 5);
	ck_assert_int_eq(reply.status, 0);
	ck_assert(od_helper_reply_parse("DONE 9999999999 137", 19, &reply));
	ck_assert_uint_eq(reply.tag, 9999999999ULL);
	ck_assert_int_eq(reply.status, 137);

	ck_assert(od_helper_reply_parse("ERROR 0 invalid tag \"x\"", 23,
	    &reply));
	ck_assert_int_eq(reply.type, OD_HELPER_REPLY_ERROR);
	ck_assert_uint_eq(reply.tag, 0);
	ck_assert_str_eq(reply.message, "invalid tag \"x\"");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!od_helper_reply_parse(bad[i], strlen(bad[i]),
		    &reply), "\"%s\" accepted", bad[i]);
	ck_assert(!od_helper_reply_parse("DONE 5\0 0", 9, &reply));
}
END_TEST

START_TEST(reply_item_round_trip)
{
	struct od_helper_item item = { 0 };
	struct od_helper_reply reply;
	char line[4096];
	size_t length;

	strcpy(item.queue_id, "6B4KakNA031584");
	item.size = 1228;
	item.queued = SAMPLE_QUEUED;
	strcpy(item.sender, "\"a b\"@sender.test\\x");
	strcpy(item.reason, "ondemand [example.test]");
	length = od_helper_item_format("77", &item, line, sizeof(line));
	ck_assert_str_eq(line, "ITEM 77 6B4KakNA031584 1228 1796416560 "
	    "\"a\\x20b\"@sender.test\\x5cx ondemand [example.test]\n");
	ck_assert(od_helper_reply_parse(line, length - 1, &reply));
	ck_assert_int_eq(reply.type, OD_HELPER_REPLY_ITEM);
	ck_assert_uint_eq(reply.tag, 77);
	ck_assert_str_eq(reply.item.queue_id, item.queue_id);
	ck_assert_int_eq(reply.item.size, 1228);
	ck_assert_int_eq(reply.item.queued, SAMPLE_QUEUED);
	ck_assert_str_eq(reply.item.sender, item.sender);
	ck_assert_str_eq(reply.item.reason, item.reason);

	/* An empty sender, a missing data file and an empty reason. */
	item.sender[0] = '\0';
	item.size = -1;
	item.reason[0] = '\0';
	length = od_helper_item_format("1", &item, line, sizeof(line));
	ck_assert_str_eq(line, "ITEM 1 6B4KakNA031584 -1 1796416560 \\x00 \n");
	ck_assert(od_helper_reply_parse(line, length - 1, &reply));
	ck_assert_str_eq(reply.item.sender, "");
	ck_assert_int_eq(reply.item.size, -1);
	ck_assert_str_eq(reply.item.reason, "");
}
END_TEST

START_TEST(reply_item_rejects_bad_fields)
{
	static const char *const bad[] = {
		"ITEM 1 ABC 5 1796416560 s@x r",
		"ITEM 1 ABC;DEFG 5 1796416560 s@x r",
		"ITEM 1 ABCDEFG x 1796416560 s@x r",
		"ITEM 1 ABCDEFG -2 1796416560 s@x r",
		"ITEM 1 ABCDEFG 5 -1 s@x r",
		"ITEM 1 ABCDEFG 5 1796416560 s\\x2 r",
		"ITEM 1 ABCDEFG 5 1796416560 s\\y20 r",
		"ITEM 1 ABCDEFG 5 1796416560 s@x r\\",
		"ITEM 1 ABCDEFG 5 1796416560 s@x",
		"ITEM 1 ABCDEFG 5 1796416560  r",
	};
	struct od_helper_reply reply;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!od_helper_reply_parse(bad[i], strlen(bad[i]),
		    &reply), "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(mailq_time_picks_year)
{
	/* The samples' time, listed the same evening and weeks later. */
	ck_assert_int_eq(od_mailq_time("Fri Dec  4 20:36", 16, SAMPLE_NOW),
	    SAMPLE_QUEUED);
	ck_assert_int_eq(od_mailq_time("Fri Dec  4 20:36", 16, 1799582400),
	    SAMPLE_QUEUED);
	/* New Year's Eve listed just after midnight. */
	ck_assert_int_eq(od_mailq_time("Thu Dec 31 23:59", 16, 1798763400),
	    1798761540);
	/* 29 February exists only in leap years. */
	ck_assert_int_eq(od_mailq_time("Thu Feb 29 12:00", 16, 1773532800),
	    1709208000);
	/*
	 * 5 December 2026 is still ahead and 2025's fell on a Friday, so
	 * the Saturday is 5 December 2020.
	 */
	ck_assert_int_eq(od_mailq_time("Sat Dec  5 10:00", 16, SAMPLE_NOW),
	    1607162400);
	/* A message held for three years: 4 December was a Monday in 2023. */
	ck_assert_int_eq(od_mailq_time("Mon Dec  4 20:36", 16, SAMPLE_NOW),
	    1701722160);
}
END_TEST

START_TEST(mailq_time_rejects_bad_text)
{
	static const char *const bad[] = {
		"Fri Dex  4 20:36", "Fry Dec  4 20:36", "Fri Dec 32 20:36",
		"Fri Dec  0 20:36", "Fri Dec  4 24:00", "Fri Dec  4 20:60",
		"Fri Dec 4 20:36 ", "Fri Dec  4 2036", "Fri Dec 04 20:3x",
		"Fri Dec  4 20:36",
	};
	size_t i;

	/* The last entry is valid text; its length here is one short. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t length = i == 9 ? 15 : strlen(bad[i]);

		ck_assert_msg(od_mailq_time(bad[i], length, SAMPLE_NOW) ==
		    (time_t)-1, "\"%s\" accepted", bad[i]);
	}
}
END_TEST

/* Output of `sendmail -bp -qQ` with eight held items in two directories. */
static const char listing_multi[] =
    "\t\t/tmp/hx/sm/q/q1 (2 requests)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4KakNA031584        5 Fri Dec  4 20:36 c@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "          7BIT\n"
    "\t\t\t\t\t z4@example.test\n"
    "6B4Kag6p030950        5 Fri Dec  4 20:36 a@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t y@example.test\n"
    "\t\t/tmp/hx/sm/q/q2 (6 requests)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4KakPV031547        5 Fri Dec  4 20:36 <>\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t z2@example.test\n"
    "6B4KagU3030933        5 Fri Dec  4 20:36 a@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t x@example.test\n"
    "6B4Kasdp032609*       5 Fri Dec  4 20:36 f@sender.test\n"
    "     QUARANTINE: ondemand [down.test]\n"
    "\t\t\t\t\t stall@down.test\n"
    "6B4KasB1032592        5 Fri Dec  4 20:36 b@sender.test\n"
    "     QUARANTINE: ondemand [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "\t\t\t\t\t z3@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "6B4KakTu031505        5 Fri Dec  4 20:36 "
    "a-very-long-sender-address-for-the-list\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t z@example.test\n"
    "6B4KakHx031649        5 Fri Dec  4 20:36 e@sender.test\n"
    "     QUARANTINE: ondemand [down.test]\n"
    "                 (Deferred: Connection refused by [127.0.0.1])\n"
    "\t\t\t\t\t z5@down.test\n"
    "\t\tTotal requests: 8\n";

/* The same queue with -O MinQueueAge=1h (marker "-"), one directory. */
static const char listing_too_young[] =
    "\t\t/tmp/hx/sm/q/q2 (1 request)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4Kasdp032609-       5 Fri Dec  4 20:36 f@sender.test\n"
    "     QUARANTINE: ondemand [down.test]\n"
    "                 (reply: read error from [127.0.0.1])\n"
    "\t\t\t\t\t stall@down.test\n"
    "\t\tTotal requests: 1\n";

/* -O QueueLA=0 -O QueueFactor=1 (marker "X"). */
static const char listing_load[] =
    "\t\t/tmp/hx/sm/q/q1 (2 requests)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4KakNA031584X       5 Fri Dec  4 20:36 c@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "          7BIT\n"
    "\t\t\t\t\t z4@example.test\n"
    "6B4Kag6p030950X       5 Fri Dec  4 20:36 a@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t y@example.test\n"
    "\t\tTotal requests: 2\n";

/* -O MaxQueueRunSize=2: the second directory is cut short. */
static const char listing_cut_short[] =
    "\t\t/tmp/hx/sm/q/q1 (2 requests)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4KakNA031584        5 Fri Dec  4 20:36 c@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "          7BIT\n"
    "\t\t\t\t\t z4@example.test\n"
    "6B4Kag6p030950        5 Fri Dec  4 20:36 a@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t y@example.test\n"
    "\t\t/tmp/hx/sm/q/q2 (6 requests, only 2 printed)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4KakPV031547        5 Fri Dec  4 20:36 <>\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t z2@example.test\n"
    "6B4KagU3030933        5 Fri Dec  4 20:36 a@sender.test\n"
    "     QUARANTINE: ondemand [example.test]\n"
    "\t\t\t\t\t x@example.test\n"
    "\t\tTotal requests: 8\n";

static const char listing_empty_single[] =
    "/tmp/hx/sm/q1only is empty\n"
    "\t\tTotal requests: 0\n";

static const char listing_empty_multi[] =
    "/tmp/hx/sm/qe/b is empty\n"
    "/tmp/hx/sm/qe/a is empty\n"
    "\t\tTotal requests: 0\n";

/* A DSN queued held by a run over held items (sender MAILER-DAEMON). */
static const char listing_dsn[] =
    "/tmp/hx/sm/q/q1 is empty\n"
    "\t\t/tmp/hx/sm/q/q2 (1 request)\n"
    "-----Q-ID----- --Size-- -----Q-Time----- "
    "------------Sender/Recipient-----------\n"
    "6B4KcMC7004026     1228 Fri Dec  4 20:38 MAILER-DAEMON\n"
    "     QUARANTINE: ondemand [down.test]\n"
    "                 (Deferred: Connection refused by [127.0.0.1])\n"
    "\t\t\t\t\t bounce-me@sender.test\n"
    "\t\tTotal requests: 1\n";

struct parsed {
	struct od_mailq_parser parser;
	struct od_mailq_item items[16];
	size_t count;
	bool complete;
	char problem[512];
};

static void
parse_listing(const char *text, struct parsed *out)
{
	const char *line = text;

	memset(out, 0, sizeof(*out));
	od_mailq_init(&out->parser, SAMPLE_NOW);
	while (*line != '\0') {
		const char *newline = strchr(line, '\n');
		size_t length = newline != NULL ? (size_t)(newline - line) :
		    strlen(line);

		ck_assert_uint_lt(out->count, 16);
		if (od_mailq_line(&out->parser, line, length,
		    &out->items[out->count]))
			out->count++;
		line += length + (newline != NULL);
	}
	if (od_mailq_finish(&out->parser, &out->items[out->count]))
		out->count++;
	out->complete = od_mailq_complete(&out->parser, out->problem,
	    sizeof(out->problem));
}

static void
assert_item(const struct od_mailq_item *entry, const char *id, char marker,
    long long size, const char *sender, const char *reason,
    const char *directory)
{
	ck_assert_str_eq(entry->item.queue_id, id);
	ck_assert_int_eq(entry->marker, marker);
	ck_assert_int_eq(entry->item.size, size);
	ck_assert_int_eq(entry->item.queued, SAMPLE_QUEUED);
	ck_assert_str_eq(entry->item.sender, sender);
	ck_assert_str_eq(entry->item.reason, reason);
	ck_assert_str_eq(entry->directory, directory);
}

START_TEST(mailq_parses_real_listing)
{
	static struct parsed p;
	const char *q1 = "/tmp/hx/sm/q/q1", *q2 = "/tmp/hx/sm/q/q2";
	const char *example = "ondemand [example.test]";

	parse_listing(listing_multi, &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 8);
	assert_item(&p.items[0], "6B4KakNA031584", ' ', 5, "c@sender.test",
	    example, q1);
	assert_item(&p.items[1], "6B4Kag6p030950", ' ', 5, "a@sender.test",
	    example, q1);
	assert_item(&p.items[2], "6B4KakPV031547", ' ', 5, "<>", example, q2);
	assert_item(&p.items[3], "6B4KagU3030933", ' ', 5, "a@sender.test",
	    example, q2);
	assert_item(&p.items[4], "6B4Kasdp032609", '*', 5, "f@sender.test",
	    "ondemand [down.test]", q2);
	assert_item(&p.items[5], "6B4KasB1032592", ' ', 5, "b@sender.test",
	    "ondemand [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", q2);
	assert_item(&p.items[6], "6B4KakTu031505", ' ', 5,
	    "a-very-long-sender-address-for-the-list", example, q2);
	assert_item(&p.items[7], "6B4KakHx031649", ' ', 5, "e@sender.test",
	    "ondemand [down.test]", q2);
	ck_assert(p.items[5].reason_cut);
	ck_assert(!p.items[0].reason_cut);
	ck_assert(!p.items[7].reason_cut);
}
END_TEST

START_TEST(mailq_parses_markers)
{
	static struct parsed p;

	parse_listing(listing_too_young, &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 1);
	assert_item(&p.items[0], "6B4Kasdp032609", '-', 5, "f@sender.test",
	    "ondemand [down.test]", "/tmp/hx/sm/q/q2");

	parse_listing(listing_load, &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 2);
	ck_assert_int_eq(p.items[0].marker, 'X');
	ck_assert_int_eq(p.items[1].marker, 'X');
	ck_assert_str_eq(p.items[1].item.queue_id, "6B4Kag6p030950");
}
END_TEST

START_TEST(mailq_parses_empty_queues)
{
	static struct parsed p;

	parse_listing(listing_empty_single, &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 0);
	parse_listing(listing_empty_multi, &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 0);
	parse_listing(listing_dsn, &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 1);
	ck_assert_str_eq(p.items[0].item.sender, "MAILER-DAEMON");
	ck_assert_int_eq(p.items[0].item.size, 1228);
	ck_assert_int_eq(p.items[0].item.queued, SAMPLE_QUEUED + 120);
}
END_TEST

START_TEST(mailq_reports_cut_listing)
{
	static struct parsed p;

	parse_listing(listing_cut_short, &p);
	ck_assert(!p.complete);
	ck_assert_uint_eq(p.count, 4);
	ck_assert_ptr_nonnull(strstr(p.problem, "only N printed"));

	/* The same listing without its total line may have been cut off. */
	parse_listing(
	    "\t\t/q (1 request)\n"
	    "6B4KakNA031584        5 Fri Dec  4 20:36 c@sender.test\n"
	    "     QUARANTINE: ondemand [example.test]\n", &p);
	ck_assert(!p.complete);
	ck_assert_uint_eq(p.count, 1);
	ck_assert_ptr_nonnull(strstr(p.problem, "Total requests"));

	/* Fewer items than announced (a queue group's job limit). */
	parse_listing(
	    "\t\t/q (2 requests)\n"
	    "6B4KakNA031584        5 Fri Dec  4 20:36 c@sender.test\n"
	    "\t\tTotal requests: 2\n", &p);
	ck_assert(!p.complete);
	ck_assert_ptr_nonnull(strstr(p.problem, "announced 2 items but "
	    "showed 1"));
}
END_TEST

START_TEST(mailq_reports_unknown_lines)
{
	static struct parsed p;

	parse_listing(
	    "Can not chdir(/q/): No such file or directory\n"
	    "\t\tTotal requests: 0\n", &p);
	ck_assert(!p.complete);
	ck_assert_ptr_nonnull(strstr(p.problem, "1 line of the queue listing "
	    "not understood, the first: \"Can not chdir"));

	parse_listing(
	    "\t\t/q (1 request)\n"
	    "6B4KakNA031584 (permission denied)\n"
	    "\t\tTotal requests: 1\n", &p);
	ck_assert(!p.complete);
	ck_assert_uint_eq(p.count, 0);

	parse_listing(
	    "     QUARANTINE: ondemand [example.test]\n"
	    "\t\tTotal requests: 0\n", &p);
	ck_assert(!p.complete);
}
END_TEST

START_TEST(mailq_skips_warning_lines)
{
	static struct parsed p;

	/* sendmail 8.17 prints this when HostStatusDirectory is missing. */
	parse_listing(
	    "Warning: Cannot use HostStatusDirectory = /var/lib/sendmail/"
	    "host_status: No such file or directory\n"
	    "\t\t/q (1 request)\n"
	    "6B4KakNA031584        5 Fri Dec  4 20:36 c@sender.test\n"
	    "     QUARANTINE: ondemand [example.test]\n"
	    "\t\t\t\t\t <u@example.test>\n"
	    "\t\tTotal requests: 1\n", &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 1);
	ck_assert_str_eq(p.items[0].item.queue_id, "6B4KakNA031584");
}
END_TEST

/* Synthetic: cases that follow sendmail's format but did not occur. */
START_TEST(mailq_parses_synthetic_cases)
{
	static struct parsed p;

	parse_listing(
	    "\t\t/var/spool/mqueue (my queue) (5 requests)\n"
	    "-----Q-ID----- --Size-- -----Q-Time----- "
	    "------------Sender/Recipient-----------\n"
	    /* an 8-character ID, right-aligned in 13 columns */
	    "     AB12CD34   123456 Fri Dec  4 20:36 s@sender.test\n"
	    "     QUARANTINE: ondemand [example.test]\n"
	    "\t\t\t\t\t r@example.test\n"
	    /* a 15-character ID and a 9-digit size that fills its column */
	    "6B4KakNA0315841*123456789 Fri Dec  4 20:36 s@sender.test\n"
	    "     QUARANTINE: ondemand [example.test]\n"
	    "\t\t\t\t\t r@example.test\n"
	    "6B4KakNA031599 (job completed)\n"
	    /* no data file */
	    "6B4KakNA031600       -1 Fri Dec  4 20:36 s@sender.test\n"
	    "     QUARANTINE: ondemand [example.test]\n"
	    "\t\t\t\t\t r@example.test\n"
	    /* no creation time: left out */
	    "6B4KakNA031601        5 Thu Jan  1 00:00 s@sender.test\n"
	    "\t\t\t\t\t r@example.test (no control file)\n"
	    "\t\tTotal requests: 5\n", &p);
	ck_assert_msg(p.complete, "%s", p.problem);
	ck_assert_uint_eq(p.count, 3);
	ck_assert_str_eq(p.items[0].item.queue_id, "AB12CD34");
	ck_assert_int_eq(p.items[0].item.size, 123456);
	ck_assert_str_eq(p.items[0].directory, "/var/spool/mqueue (my queue)");
	ck_assert_str_eq(p.items[1].item.queue_id, "6B4KakNA0315841");
	ck_assert_int_eq(p.items[1].marker, '*');
	ck_assert_int_eq(p.items[1].item.size, 123456789);
	ck_assert_str_eq(p.items[2].item.queue_id, "6B4KakNA031600");
	ck_assert_int_eq(p.items[2].item.size, -1);
}
END_TEST

/* A control file of sendmail 8.17.1.9 with a quarantine reason. */
static const char queue_file[] =
    "V8\n"
    "T1796416540\n"
    "K0\n"
    "N0\n"
    "P30019\n"
    "Fs\n"
    "$_root@localhost\n"
    "${daemon_flags}c u\n"
    "qondemand [example.test]\n"
    "Ssender@sender.test\n"
    "Asender@sender.test\n"
    "rRFC822; rcpt@example.test\n"
    "RPFD:rcpt@example.test\n"
    "H??Received: (from root@localhost)\n"
    "\tby vm.ondemand.test (8.17.1.9/8.17.1.9) id 6B4KZeC2027413\n"
    "H??Subject: t1\n"
    ".\n";

START_TEST(queue_file_reason_found)
{
	char reason[OD_DOMAIN_SIZE + 32];
	static const char after_end[] = "V8\n.\nqnot a reason\n";
	static const char unterminated[] = "V8\nqondemand [a.test]";

	ck_assert(od_queue_file_reason(queue_file, sizeof(queue_file) - 1,
	    reason, sizeof(reason)));
	ck_assert_str_eq(reason, "ondemand [example.test]");
	ck_assert(!od_queue_file_reason(after_end, sizeof(after_end) - 1,
	    reason, sizeof(reason)));
	ck_assert(!od_queue_file_reason("V8\nSs@x\n.\n", 10, reason,
	    sizeof(reason)));
	ck_assert(od_queue_file_reason(unterminated, sizeof(unterminated) - 1,
	    reason, sizeof(reason)));
	ck_assert_str_eq(reason, "ondemand [a.test]");
	/* A reason longer than the buffer is cut, not overflowed. */
	ck_assert(od_queue_file_reason(queue_file, sizeof(queue_file) - 1,
	    reason, 9));
	ck_assert_str_eq(reason, "ondemand");
}
END_TEST

/*
 * Random lines built from the characters the parsers care about: none may
 * crash or read out of bounds (run under AddressSanitizer to see the
 * latter), and no accepted request may carry an invalid queue ID.
 */
START_TEST(parsers_survive_random_input)
{
	static const char alphabet[] = "DELIVERTAGUNHOLDEXPIRSTITEMDONE"
	    "0123456789 \t\n\\x[]-.*:()abcz\0\x80\xff";
	/* Valid beginnings, so the random part reaches the deeper checks. */
	static const char *const prefixes[] = {
		"", "DELIVER 1 ", "DELIVERTAG 2 ", "EXPIRE 3 60 ABCDEFG ",
		"ITEM 4 ABCDEFG 5 1796416560 ", "DONE 5 ", "ERROR 6 ",
		"6B4KakNA031584        5 Fri Dec  4 20:36 ",
		"     QUARANTINE: ", "\t\t/q (", "\t\tTotal requests: ",
	};
	struct od_mailq_parser parser;
	struct od_mailq_item entry;
	char line[200];
	unsigned int seed = 12345;
	int round;

	od_mailq_init(&parser, SAMPLE_NOW);
	for (round = 0; round < 20000; round++) {
		struct od_helper_request request;
		struct od_helper_reply reply;
		char error[256];
		const char *prefix = prefixes[rand_r(&seed) %
		    (int)(sizeof(prefixes) / sizeof(prefixes[0]))];
		size_t length = strlen(prefix) +
		    (size_t)(rand_r(&seed) % 120);
		size_t i;

		memcpy(line, prefix, strlen(prefix));
		for (i = strlen(prefix); i < length; i++)
			line[i] = alphabet[rand_r(&seed) %
			    (int)(sizeof(alphabet) - 1)];
		if (od_helper_request_parse(line, length, &request, error,
		    sizeof(error))) {
			for (i = 0; i < request.id_count; i++)
				ck_assert(od_helper_queue_id_valid(
				    request.ids[i]));
			od_helper_request_free(&request);
		}
		od_helper_reply_parse(line, length, &reply);
		od_mailq_line(&parser, line, length, &entry);
		od_mailq_time(line, length < 16 ? length : 16, SAMPLE_NOW);
	}
	od_mailq_finish(&parser, &entry);
}
END_TEST

/*
 * The release helper hands od_mailq_line a slice of its read buffer with
 * no NUL after it.  The line is copied to the end of a page whose next page
 * cannot be read, so a read past the line fails even without ASan.  Found
 * by fuzz-mailq: the ", only N printed" check ran strlen on the line.
 */
START_TEST(mailq_line_read_within_length)
{
	static const char *const lines[] = {
		"\t\t/var/spool/mqueue/q1 (2 requests, only 1 printed)",
		"/var/spool/mqueue/q2 is empty",
		"\t\t/var/spool/mqueue/q3 (1 request)",
		"6B4KakNA031584X    -1 Fri Dec  4 20:36 <>",
		"     QUARANTINE: ondemand [example.test]",
		"\t\tTotal requests: 3",
	};
	long page = sysconf(_SC_PAGESIZE);
	struct od_mailq_parser parser;
	struct od_mailq_item entry;
	size_t i, reported = 0;
	char *pages;

	pages = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(pages != MAP_FAILED);
	ck_assert_int_eq(mprotect(pages + page, (size_t)page, PROT_NONE), 0);

	od_mailq_init(&parser, SAMPLE_NOW);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t length = strlen(lines[i]);
		char *line = pages + page - length;

		memcpy(line, lines[i], length);
		if (od_mailq_line(&parser, line, length, &entry))
			reported++;
	}
	ck_assert(parser.cut_short);
	ck_assert_int_eq(parser.announced, 3);
	ck_assert_int_eq(parser.seen, 1);
	ck_assert_int_eq(parser.total, 3);
	ck_assert_uint_eq(parser.unknown_lines, 0);
	ck_assert_uint_eq(reported, 1);
	ck_assert_str_eq(entry.item.queue_id, "6B4KakNA031584");
	ck_assert_int_eq(entry.marker, 'X');
	ck_assert_str_eq(entry.directory, "/var/spool/mqueue/q3");
	ck_assert_str_eq(entry.item.reason, "ondemand [example.test]");
	munmap(pages, 2 * (size_t)page);
}
END_TEST

int
main(void)
{
	Suite *suite = suite_create("helper");
	TCase *request = tcase_create("request");
	TCase *reply = tcase_create("reply");
	TCase *mailq = tcase_create("mailq");
	SRunner *runner;
	int failed;

	/* The listing's times are local; the samples were taken in UTC. */
	setenv("TZ", "UTC", 1);
	tzset();

	tcase_add_test(request, request_accepts_each_verb);
	tcase_add_test(request, request_rejects_bad_verbs);
	tcase_add_test(request, request_rejects_bad_tags);
	tcase_add_test(request, request_rejects_bad_queue_ids);
	tcase_add_test(request, request_rejects_nul_and_control);
	tcase_add_test(request, request_rejects_bad_spacing);
	tcase_add_test(request, request_rejects_id_counts);
	tcase_add_test(request, request_line_length_limit);
	tcase_add_test(request, request_rejects_bad_domains);
	tcase_add_test(request, request_format_and_fit);
	tcase_add_test(reply, escape_makes_one_token);
	tcase_add_test(reply, reply_parse_done_and_error);
	tcase_add_test(reply, reply_item_round_trip);
	tcase_add_test(reply, reply_item_rejects_bad_fields);
	tcase_add_test(mailq, mailq_time_picks_year);
	tcase_add_test(mailq, mailq_time_rejects_bad_text);
	tcase_add_test(mailq, mailq_parses_real_listing);
	tcase_add_test(mailq, mailq_parses_markers);
	tcase_add_test(mailq, mailq_parses_empty_queues);
	tcase_add_test(mailq, mailq_reports_cut_listing);
	tcase_add_test(mailq, mailq_reports_unknown_lines);
	tcase_add_test(mailq, mailq_skips_warning_lines);
	tcase_add_test(mailq, mailq_parses_synthetic_cases);
	tcase_add_test(mailq, queue_file_reason_found);
	tcase_add_test(mailq, parsers_survive_random_input);
	tcase_add_test(mailq, mailq_line_read_within_length);
	suite_add_tcase(suite, request);
	suite_add_tcase(suite, reply);
	suite_add_tcase(suite, mailq);

	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
