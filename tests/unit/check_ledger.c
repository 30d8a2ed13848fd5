/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ledger's key scheme, entry and domain-list encoding, quota arithmetic
 * and its configuration keys.
 */

#include "config.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "od_config.h"
#include "od_domain.h"
#include "od_ledger.h"

static char *
repeat_labels(size_t length)
{
	/* Labels of 63 letters joined by dots, cut to length octets. */
	char *name = malloc(length + 1);
	size_t i;

	ck_assert_ptr_nonnull(name);
	for (i = 0; i < length; i++)
		name[i] = (i % 64 == 63) ? '.' : (char)('a' + i % 26);
	if (length > 0 && name[length - 1] == '.')
		name[length - 1] = 'z';
	name[length] = '\0';
	return name;
}

static bool
key_is_safe(const char *key)
{
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	}
	return strlen(key) <= OD_LEDGER_KEY_MAX;
}

START_TEST(key_short_domain_is_readable)
{
	char key[OD_LEDGER_KEY_SIZE];

	ck_assert(od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY,
	    "example.test", key));
	ck_assert_str_eq(key, "ondemand:d:example.test");
	ck_assert(od_ledger_key("isp-1", OD_LEDGER_KEY_RELEASE,
	    "example.test", key));
	ck_assert_str_eq(key, "isp-1:r:example.test");
	ck_assert(od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY,
	    OD_LEDGER_ERROR_DOMAIN, key));
	ck_assert_str_eq(key, "ondemand:d:[error]");
	ck_assert(od_ledger_domains_key("ondemand", key));
	ck_assert_str_eq(key, "ondemand:domains");
	ck_assert(od_ledger_host_key("ondemand", "mx1.example.net", key));
	ck_assert_str_eq(key, "ondemand:host:mx1.example.net");
}
END_TEST

START_TEST(key_idn_domain_uses_a_label)
{
	char normal[OD_DOMAIN_SIZE], key[OD_LEDGER_KEY_SIZE];
	const char *error;

	ck_assert(od_domain_normalize("B\xc3\xbc" "cher.example", normal,
	    &error));
	ck_assert(od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY, normal,
	    key));
	ck_assert_str_eq(key, "ondemand:d:xn--bcher-kva.example");
}
END_TEST

/* Every domain length with the longest prefix gives a valid key. */
START_TEST(key_every_length_fits)
{
	char prefix[OD_LEDGER_PREFIX_MAX + 1], key[OD_LEDGER_KEY_SIZE];
	size_t length;

	memset(prefix, 'p', OD_LEDGER_PREFIX_MAX);
	prefix[OD_LEDGER_PREFIX_MAX] = '\0';
	for (length = 1; length <= OD_DOMAIN_MAX; length++) {
		char *domain = repeat_labels(length);

		ck_assert_msg(od_ledger_key(prefix, OD_LEDGER_KEY_ENTRY, domain,
		    key), "length %zu", length);
		ck_assert_msg(key_is_safe(key), "length %zu: %s", length, key);
		free(domain);
	}
}
END_TEST

START_TEST(key_long_domains_are_hashed_and_distinct)
{
	char first[OD_LEDGER_KEY_SIZE], second[OD_LEDGER_KEY_SIZE];
	char again[OD_LEDGER_KEY_SIZE], release[OD_LEDGER_KEY_SIZE];
	char *a = repeat_labels(OD_DOMAIN_MAX), *b = repeat_labels(OD_DOMAIN_MAX);

	/* Same start, different last octet: only the hash distinguishes them. */
	b[OD_DOMAIN_MAX - 1] = 'y';
	ck_assert(od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY, a, first));
	ck_assert(od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY, b, second));
	ck_assert(od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY, a, again));
	ck_assert(od_ledger_key("ondemand", OD_LEDGER_KEY_RELEASE, a,
	    release));
	ck_assert_str_ne(first, second);
	ck_assert_str_eq(first, again);
	ck_assert_str_ne(first, release);
	ck_assert(strncmp(first, "ondemand:D:", 11) == 0);
	ck_assert(strncmp(release, "ondemand:R:", 11) == 0);
	ck_assert_ptr_nonnull(strchr(first, '~'));
	ck_assert_uint_eq(strlen(strchr(first, '~') + 1), 16);
	ck_assert_uint_le(strlen(first), OD_LEDGER_KEY_MAX);
	free(a);
	free(b);
}
END_TEST

START_TEST(key_rejects_bad_input)
{
	char key[OD_LEDGER_KEY_SIZE], prefix[OD_LEDGER_PREFIX_MAX + 2];

	memset(prefix, 'p', OD_LEDGER_PREFIX_MAX + 1);
	prefix[OD_LEDGER_PREFIX_MAX + 1] = '\0';
	ck_assert(!od_ledger_key("", OD_LEDGER_KEY_ENTRY, "a.test", key));
	ck_assert(!od_ledger_key("on demand", OD_LEDGER_KEY_ENTRY, "a.test",
	    key));
	ck_assert(!od_ledger_key("on:demand", OD_LEDGER_KEY_ENTRY, "a.test",
	    key));
	ck_assert(!od_ledger_key(prefix, OD_LEDGER_KEY_ENTRY, "a.test", key));
	ck_assert(!od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY, "", key));
	ck_assert(!od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY, "a b", key));
	ck_assert(!od_ledger_key("ondemand", OD_LEDGER_KEY_ENTRY, "a\nb",
	    key));
	ck_assert(!od_ledger_host_key("ondemand", "mx 1", key));
	ck_assert(!od_ledger_host_id_valid(""));
	ck_assert(od_ledger_host_id_valid("mx1.example.net"));
}
END_TEST

static void
sample_entry(struct od_ledger_entry *entry)
{
	struct od_ledger_item item = { .size = 2048, .held_at = 1796400000 };

	od_ledger_entry_init(entry, "example.test");
	strcpy(item.host, "mx1.example.net");
	strcpy(item.queue_id, "4B3C2D1E0F000123");
	ck_assert(od_ledger_entry_put(entry, &item));
	strcpy(item.host, "mx2.example.net");
	item.size = 0;
	ck_assert(od_ledger_entry_put(entry, &item));
	strcpy(item.queue_id, "4B3C2D1E0F000124");
	item.size = 1LL << 40;
	ck_assert(od_ledger_entry_put(entry, &item));
}

START_TEST(entry_round_trip)
{
	struct od_ledger_entry entry, decoded;
	const char *error = NULL;
	size_t length, messages;
	long long bytes;
	char *text;

	sample_entry(&entry);
	text = od_ledger_entry_encode(&entry, &length);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, "odledger 1 example.test\n"
	    "mx1.example.net 4B3C2D1E0F000123 2048 1796400000\n"
	    "mx2.example.net 4B3C2D1E0F000123 0 1796400000\n"
	    "mx2.example.net 4B3C2D1E0F000124 1099511627776 1796400000\n"
	    "end 3\n");
	ck_assert_msg(od_ledger_entry_decode(text, length, "example.test",
	    &decoded, &error), "%s", error);
	ck_assert_uint_eq(decoded.count, 3);
	od_ledger_entry_totals(&decoded, "mx2.example.net", &messages, &bytes);
	ck_assert_uint_eq(messages, 2);
	ck_assert_int_eq(bytes, 1LL << 40);
	od_ledger_entry_totals(&decoded, NULL, &messages, &bytes);
	ck_assert_uint_eq(messages, 3);
	ck_assert_int_eq(bytes, (1LL << 40) + 2048);
	free(text);
	od_ledger_entry_clear(&entry);
	od_ledger_entry_clear(&decoded);
}
END_TEST

/* Counts of two and more digits close the value too. */
START_TEST(entry_many_items_round_trip)
{
	struct od_ledger_entry entry, decoded;
	struct od_ledger_item item = { .size = 100, .held_at = 1796400000 };
	const char *error = NULL;
	size_t length, i, messages;
	long long bytes;
	char *text;

	od_ledger_entry_init(&entry, "example.test");
	strcpy(item.host, "mx1");
	for (i = 0; i < 1234; i++) {
		snprintf(item.queue_id, sizeof(item.queue_id), "ID%06zu", i);
		ck_assert(od_ledger_entry_put(&entry, &item));
	}
	text = od_ledger_entry_encode(&entry, &length);
	ck_assert_ptr_nonnull(strstr(text, "\nend 1234\n"));
	ck_assert_msg(od_ledger_entry_decode(text, length, "example.test",
	    &decoded, &error), "%s", error);
	ck_assert_uint_eq(decoded.count, 1234);
	od_ledger_entry_totals(&decoded, NULL, &messages, &bytes);
	ck_assert_uint_eq(messages, 1234);
	ck_assert_int_eq(bytes, 123400);
	free(text);
	od_ledger_entry_clear(&entry);
	od_ledger_entry_clear(&decoded);
}
END_TEST

/* Every cut of a valid value is rejected, at any octet. */
START_TEST(entry_truncated_rejected)
{
	struct od_ledger_entry entry, decoded;
	const char *error;
	size_t length, cut;
	char *text;

	sample_entry(&entry);
	text = od_ledger_entry_encode(&entry, &length);
	for (cut = 0; cut < length; cut++) {
		error = NULL;
		ck_assert_msg(!od_ledger_entry_decode(text, cut,
		    "example.test", &decoded, &error), "cut at %zu", cut);
		ck_assert_ptr_nonnull(error);
		ck_assert_uint_eq(decoded.count, 0);
	}
	free(text);
	od_ledger_entry_clear(&entry);
}
END_TEST

START_TEST(entry_corrupt_rejected)
{
	static const char *const bad[] = {
		"",
		"odledger 2 example.test\nend 0\n",
		"odledger 1 other.test\nend 0\n",
		"odledger 1 example.test\nend 1\n",
		"odledger 1 example.test\nend 0\nextra\n",
		"odledger 1 example.test\nend 0",
		"odledger 1 example.test\nmx1 ID 1\nend 1\n",
		"odledger 1 example.test\nmx1 ID 1 2 3\nend 1\n",
		"odledger 1 example.test\nmx1 ID -1 2\nend 1\n",
		"odledger 1 example.test\nmx1  ID 1 2\nend 1\n",
		"odledger 1 example.test\nmx/1 ID 1 2\nend 1\n",
		"odledger 1 example.test\nmx1 ID 1 2\r\nend 1\n",
		"odledger 1 example.test\nmx1 ID 99999999999999999999 2\nend 1\n",
		"odledger 1 example.test\nmx1 ID 1125899906842625 2\nend 1\n",
		"odledger 1 example.test\nmx1 ABCDEFGHIJKLMNOPQRSTUVWXYZ 1 2\n"
		    "end 1\n",
		"odledger 1 example.test\nmx1 ID 1 2\nend x\n",
		"odledger 1 example.test\nmx1 ID 1 2\nend 01x\n",
	};
	struct od_ledger_entry decoded;
	const char *error;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		ck_assert_msg(!od_ledger_entry_decode(bad[i], strlen(bad[i]),
		    "example.test", &decoded, &error), "case %zu", i);
		ck_assert_ptr_nonnull(error);
	}
	/* A NUL inside the value is not a line ending. */
	ck_assert(!od_ledger_entry_decode("odledger 1 example.test\n"
	    "mx1 ID\0 1 2\nend 1\n", 38, "example.test", &decoded, &error));
}
END_TEST

START_TEST(entry_edit)
{
	struct od_ledger_entry entry;
	struct od_ledger_item items[2];
	size_t messages;
	long long bytes;

	sample_entry(&entry);
	ck_assert(od_ledger_entry_remove(&entry, "mx2.example.net",
	    "4B3C2D1E0F000123"));
	ck_assert(!od_ledger_entry_remove(&entry, "mx2.example.net",
	    "4B3C2D1E0F000123"));
	ck_assert_uint_eq(entry.count, 2);

	memset(items, 0, sizeof(items));
	strcpy(items[0].queue_id, "A1");
	items[0].size = 10;
	strcpy(items[1].queue_id, "A2");
	items[1].size = 20;
	ck_assert(od_ledger_entry_replace_host(&entry, "mx2.example.net",
	    items, 2));
	od_ledger_entry_totals(&entry, "mx2.example.net", &messages, &bytes);
	ck_assert_uint_eq(messages, 2);
	ck_assert_int_eq(bytes, 30);
	od_ledger_entry_totals(&entry, "mx1.example.net", &messages, &bytes);
	ck_assert_uint_eq(messages, 1);
	ck_assert(od_ledger_entry_replace_host(&entry, "mx1.example.net",
	    NULL, 0));
	ck_assert_uint_eq(entry.count, 2);
	od_ledger_entry_clear(&entry);
}
END_TEST

START_TEST(domains_round_trip_and_corrupt)
{
	char names[3][OD_DOMAIN_SIZE] = { "a.test", "b.test", "[error]" };
	char (*decoded)[OD_DOMAIN_SIZE];
	const char *error;
	size_t length, count, cut;
	char *text;

	text = od_ledger_domains_encode((const char (*)[OD_DOMAIN_SIZE])names,
	    3, &length);
	ck_assert_str_eq(text, "odledger-domains 1\na.test\nb.test\n[error]\n"
	    "end 3\n");
	ck_assert(od_ledger_domains_decode(text, length, &decoded, &count,
	    &error));
	ck_assert_uint_eq(count, 3);
	ck_assert_str_eq(decoded[2], "[error]");
	free(decoded);
	for (cut = 0; cut < length; cut++)
		ck_assert_msg(!od_ledger_domains_decode(text, cut, &decoded,
		    &count, &error), "cut at %zu", cut);
	free(text);
	{
		char many[40][OD_DOMAIN_SIZE];

		for (cut = 0; cut < 40; cut++)
			snprintf(many[cut], sizeof(many[cut]), "d%zu.test", cut);
		text = od_ledger_domains_encode(
		    (const char (*)[OD_DOMAIN_SIZE])many, 40, &length);
		ck_assert(od_ledger_domains_decode(text, length, &decoded,
		    &count, &error));
		ck_assert_uint_eq(count, 40);
		ck_assert_str_eq(decoded[39], "d39.test");
		free(decoded);
		free(text);
	}
	ck_assert(!od_ledger_domains_decode("odledger-domains 1\na b\nend 1\n",
	    29, &decoded, &count, &error));
}
END_TEST

START_TEST(quota_arithmetic)
{
	struct od_quota none = { 0, 0 }, messages = { 2, 0 }, bytes = { 0, 100 };

	ck_assert_int_eq(od_quota_check(&none, LLONG_MAX, LLONG_MAX,
	    LLONG_MAX), OD_QUOTA_OK);
	ck_assert_int_eq(od_quota_check(&messages, 1, 0, 0), OD_QUOTA_OK);
	ck_assert_int_eq(od_quota_check(&messages, 2, 0, 0),
	    OD_QUOTA_MESSAGES);
	ck_assert_int_eq(od_quota_check(&bytes, 1, 40, 60), OD_QUOTA_OK);
	ck_assert_int_eq(od_quota_check(&bytes, 1, 40, 61), OD_QUOTA_BYTES);
	ck_assert_int_eq(od_quota_check(&bytes, 1, 101, 0), OD_QUOTA_BYTES);
	/* No overflow with huge figures. */
	ck_assert_int_eq(od_quota_check(&bytes, 1, 50, LLONG_MAX),
	    OD_QUOTA_BYTES);
	ck_assert_int_eq(od_quota_check(&bytes, LLONG_MAX, LLONG_MAX, 1),
	    OD_QUOTA_BYTES);
	/* An empty domain takes one message of any size. */
	ck_assert_int_eq(od_quota_check(&bytes, 0, 0, 1000), OD_QUOTA_OK);
	/* Negative figures count as zero. */
	ck_assert_int_eq(od_quota_check(&messages, -5, -5, -5), OD_QUOTA_OK);
}
END_TEST

static struct od_config *
load(const char *text, char *error, size_t size)
{
	char path[] = "/tmp/check_ledger.XXXXXX";
	int fd = mkstemp(path);
	struct od_config *config;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	config = od_config_load(path, error, size);
	unlink(path);
	return config;
}

static void
assert_config_error(const char *text, const char *expected)
{
	char error[1024] = "";
	struct od_config *config = load(text, error, sizeof(error));

	ck_assert_msg(config == NULL, "accepted: %s", text);
	ck_assert_msg(strstr(error, expected) != NULL, "error \"%s\" lacks "
	    "\"%s\"", error, expected);
}

START_TEST(config_ledger_keys)
{
	char error[1024] = "";
	struct od_config *config = load("Memcached 127.0.0.1,[::1]:11212\n"
	    "Memcached localhost:11213\nMemcachedPrefix isp.mail\n"
	    "HostId mx1.example.net\nMemcachedTimeout 750ms\n"
	    "MemcachedConnectTimeout 1s\nMemcachedRetry 30s\n"
	    "LedgerPollInterval 500ms\n", error, sizeof(error));

	ck_assert_msg(config != NULL, "%s", error);
	ck_assert_uint_eq(config->memcached_count, 3);
	ck_assert_str_eq(config->memcached[0].host, "127.0.0.1");
	ck_assert_uint_eq(config->memcached[0].port, 11211);
	ck_assert_str_eq(config->memcached[1].host, "::1");
	ck_assert_uint_eq(config->memcached[1].port, 11212);
	ck_assert_str_eq(config->memcached[2].host, "localhost");
	ck_assert_str_eq(config->memcached_prefix, "isp.mail");
	ck_assert_str_eq(config->host_id, "mx1.example.net");
	ck_assert_int_eq(config->memcached_timeout_ms, 750);
	ck_assert_int_eq(config->memcached_connect_timeout_ms, 1000);
	ck_assert_int_eq(config->memcached_retry_ms, 30000);
	ck_assert_int_eq(config->ledger_poll_ms, 500);
	od_config_free(config);

	config = load("Memcached 2001:db8::5\nMemcachedRetry 1h\n"
	    "HostId mx1\n", error, sizeof(error));
	ck_assert_msg(config != NULL, "%s", error);
	ck_assert_str_eq(config->memcached[0].host, "2001:db8::5");
	ck_assert_uint_eq(config->memcached[0].port, 11211);
	ck_assert_int_eq(config->memcached_retry_ms, 3600000);
	od_config_free(config);

	config = load("Domain a.test\n", error, sizeof(error));
	ck_assert_ptr_nonnull(config);
	ck_assert_uint_eq(config->memcached_count, 0);
	ck_assert_str_eq(config->memcached_prefix, "ondemand");
	ck_assert_ptr_null(config->host_id);
	ck_assert_int_eq(config->memcached_timeout_ms, 500);
	ck_assert_int_eq(config->ledger_poll_ms, 2000);
	od_config_free(config);
}
END_TEST

START_TEST(config_ledger_errors)
{
	assert_config_error("Memcached 127.0.0.1:0\n",
	    "invalid Memcached server \"127.0.0.1:0\": the port must be a "
	    "number from 1 to 65535; expected HOST[:PORT]");
	assert_config_error("Memcached a:1,127.0.0.1:0\n",
	    "invalid Memcached server \"127.0.0.1:0\" in "
	    "\"a:1,127.0.0.1:0\": the port");
	assert_config_error("Memcached 127.0.0.1:65536\n", "from 1 to 65535");
	assert_config_error("Memcached 127.0.0.1:+11211\n", "from 1 to 65535");
	assert_config_error("Memcached 127.0.0.1:011211\n", "from 1 to 65535");
	assert_config_error("Memcached [::1\n", "must be followed by");
	assert_config_error("Memcached [127.0.0.1]\n",
	    "only an IPv6 address goes in brackets");
	assert_config_error("Memcached a,,b\n",
	    "invalid Memcached server \"\" in \"a,,b\": an empty item");
	assert_config_error("Memcached a,\n", "an empty item");
	assert_config_error("Memcached host/x\n", "the host may hold only");
	/* A weight after the port, or an IPv6 address with a bare port. */
	assert_config_error("Memcached 127.0.0.1:11211:5\n",
	    "invalid Memcached server \"127.0.0.1:11211:5\": a host with two "
	    "or more colons must be an IPv6 address, and an IPv6 address "
	    "takes a port only in brackets, as in [2001:db8::5]:11211");
	assert_config_error("Memcached 2001:db8::5:11211\n",
	    "takes a port only in brackets");
	assert_config_error("Memcached [2001:db8::g]:11211\n",
	    "the address in brackets is not a valid IPv6 address");
	assert_config_error("Memcached a:1,a:1\n",
	    "duplicate Memcached server \"a:1\"");
	assert_config_error("MemcachedPrefix on:demand\n",
	    "invalid MemcachedPrefix \"on:demand\"");
	assert_config_error("HostId mx 1\n", "expected a single value");
	assert_config_error("HostId mx/1\n", "invalid HostId \"mx/1\"");
	assert_config_error("MemcachedTimeout 5ms\n",
	    "invalid MemcachedTimeout \"5ms\": expected a duration from "
	    "10ms to 1m with its unit");
	assert_config_error("MemcachedTimeout 50\n", "with its unit");
	assert_config_error("MemcachedTimeout 2h\n", "MemcachedTimeout");
	assert_config_error("MemcachedRetry 10ms\n", "1s to 60m");
	assert_config_error("LedgerPollInterval fast\n",
	    "invalid LedgerPollInterval \"fast\"");
}
END_TEST

START_TEST(config_quotas)
{
	char error[1024] = "";
	struct od_config *config = load("Domain big.test\n"
	    "Domain .branch.test\nMaxHeldMessages 1000\n"
	    "MaxHeldBytes 200M\nMaxHeldMessages big.test 5000\n"
	    "MaxHeldBytes big.test 2G\nMaxHeldMessages .branch.test 10\n"
	    "MaxHeldBytes shop.branch.test 1k\n", error, sizeof(error));
	struct od_quota quota;

	ck_assert_msg(config != NULL, "%s", error);
	quota = od_config_quota(config, "other.test");
	ck_assert_int_eq(quota.max_messages, 1000);
	ck_assert_int_eq(quota.max_bytes, 200LL << 20);
	quota = od_config_quota(config, "big.test");
	ck_assert_int_eq(quota.max_messages, 5000);
	ck_assert_int_eq(quota.max_bytes, 2LL << 30);
	quota = od_config_quota(config, "office.branch.test");
	ck_assert_int_eq(quota.max_messages, 10);
	ck_assert_int_eq(quota.max_bytes, 200LL << 20);
	quota = od_config_quota(config, "shop.branch.test");
	ck_assert_int_eq(quota.max_messages, 10);
	ck_assert_int_eq(quota.max_bytes, 1024);
	/* ".branch.test" covers names below it, not the name itself. */
	quota = od_config_quota(config, "branch.test");
	ck_assert_int_eq(quota.max_messages, 1000);
	od_config_free(config);

	assert_config_error("MaxHeldMessages many\n",
	    "invalid MaxHeldMessages \"many\": expected a whole number");
	assert_config_error("MaxHeldMessages 5k\n", "a whole number");
	assert_config_error("MaxHeldBytes 5T\n",
	    "invalid MaxHeldBytes \"5T\": expected a size such as 500M");
	assert_config_error("MaxHeldBytes bad_name.test 5M\n",
	    "invalid MaxHeldBytes domain \"bad_name.test\"");
	assert_config_error("MaxHeldMessages bad..test 5\n",
	    "invalid MaxHeldMessages domain \"bad..test\": the name has an "
	    "empty label; expected a host name such as example.test, or "
	    ".example.test for its subdomains");
	assert_config_error("MaxHeldMessages a.test 1\n"
	    "MaxHeldBytes a.test 1k\nMaxHeldMessages a.test 2\n",
	    "duplicate MaxHeldMessages for a.test: it was already set on "
	    "line 1; remove one of them");
	assert_config_error("MaxHeldBytes .a.test 1k\n"
	    "MaxHeldBytes .a.test 2k\n",
	    "duplicate MaxHeldBytes for .a.test: it was already set on "
	    "line 1");
	assert_config_error("MaxHeldMessages a.test 1 2\n", "a whole number");
	/* A quota that no Domain entry could ever use. */
	assert_config_error("Domain example.test\nMaxHeldMessages 7\n"
	    "MaxHeldBytes exmaple.test 1M\n",
	    ":3: MaxHeldBytes for exmaple.test: no Domain or DomainFile entry "
	    "holds mail for it; correct the name, add the domain, or remove "
	    "the line");
	assert_config_error("Domain shop.test\nMaxHeldMessages .shop.tset 5\n",
	    ":2: MaxHeldMessages for .shop.tset: no Domain");
	assert_config_error("MaxHeldMessages 3\nMaxHeldMessages 1\n",
	    "duplicate MaxHeldMessages without a domain: it was already set "
	    "on line 1");
}
END_TEST

static Suite *
ledger_suite(void)
{
	Suite *suite = suite_create("ledger");
	TCase *keys = tcase_create("keys");
	TCase *entries = tcase_create("entries");
	TCase *config = tcase_create("config");

	tcase_add_test(keys, key_short_domain_is_readable);
	tcase_add_test(keys, key_idn_domain_uses_a_label);
	tcase_add_test(keys, key_every_length_fits);
	tcase_add_test(keys, key_long_domains_are_hashed_and_distinct);
	tcase_add_test(keys, key_rejects_bad_input);
	suite_add_tcase(suite, keys);
	tcase_add_test(entries, entry_round_trip);
	tcase_add_test(entries, entry_many_items_round_trip);
	tcase_add_test(entries, entry_truncated_rejected);
	tcase_add_test(entries, entry_corrupt_rejected);
	tcase_add_test(entries, entry_edit);
	tcase_add_test(entries, domains_round_trip_and_corrupt);
	tcase_add_test(entries, quota_arithmetic);
	suite_add_tcase(suite, entries);
	tcase_add_test(config, config_ledger_keys);
	tcase_add_test(config, config_ledger_errors);
	tcase_add_test(config, config_quotas);
	suite_add_tcase(suite, config);
	return suite;
}

int
main(void)
{
	SRunner *runner = srunner_create(ledger_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
