/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: ondemand-cf's reading, patching and reverting of
 * sendmail.cf (libcfedit.a), the input being a sendmail.cf.
 *
 * It takes the steps of ondemand-cf with three sets of options.  On the
 * bytes the tool would write it checks the promises of cf_doc.h and
 * cf_patch.h.  Splitting and joining give back the input, patching a
 * patched file changes nothing, and reverting a patched file gives back
 * the unpatched bytes exactly.
 */

#include "config.h"

#include <string.h>

#include "cf_diff.h"
#include "cf_doc.h"
#include "cf_patch.h"
#include "fuzz.h"

static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	FUZZ_CHECK(devnull != NULL);
	return 0;
}

static void
parse_checked(struct cf_doc *doc, const char *buf, size_t len)
{
	memset(doc, 0, sizeof(*doc));
	FUZZ_CHECK(cf_doc_parse(doc, buf, len));
}

/* Returns whether joining doc gives exactly the len octets of buf. */
static bool
joins_to(const struct cf_doc *doc, const char *buf, size_t len)
{
	size_t joined_len;
	char *joined = cf_doc_join(doc, &joined_len);
	bool same;

	FUZZ_CHECK(joined != NULL);
	same = joined_len == len && memcmp(joined, buf, len) == 0;
	free(joined);
	return same;
}

/* Runs the patch with options and checks the file it would write. */
static void
check_update(const struct cf_doc *old, const char *input, size_t input_len,
    const struct cf_options *options)
{
	struct cf_doc new = { 0 }, written, again = { 0 }, reverted;
	struct cf_report report = { { 0 }, { 0 } };
	char error[1024], *buf;
	size_t len;
	bool marked = cf_has_marks(old);

	error[0] = '\0';
	if (cf_update(old, options, &new, &report, error, sizeof(error)) !=
	    CF_OK) {
		FUZZ_CHECK(error[0] != '\0');
		cf_report_free(&report);
		return;
	}
	FUZZ_CHECK(cf_diff_write(devnull, old, &new, "old", "new", 3));
	buf = cf_doc_join(&new, &len);
	FUZZ_CHECK(buf != NULL);

	/* What ondemand-cf writes reads back as the lines it planned. */
	parse_checked(&written, buf, len);
	FUZZ_CHECK(cf_doc_equal(&written, &new));

	/* Patching the written file again changes nothing. */
	cf_report_free(&report);
	FUZZ_CHECK(cf_update(&written, options, &again, &report, error,
	    sizeof(error)) == CF_OK);
	FUZZ_CHECK(joins_to(&again, buf, len));

	/* --revert on the written file gives back the unpatched input. */
	if (!marked) {
		cf_report_free(&report);
		memset(&reverted, 0, sizeof(reverted));
		FUZZ_CHECK(cf_doc_copy(&reverted, &written));
		FUZZ_CHECK(cf_revert(&reverted, &report, error,
		    sizeof(error)) == CF_OK);
		FUZZ_CHECK(joins_to(&reverted, input, input_len));
		cf_doc_free(&reverted);
	}

	cf_report_free(&report);
	cf_doc_free(&again);
	cf_doc_free(&written);
	cf_doc_free(&new);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cf_options option_sets[] = {
		{ CF_DELIVERY_QUEUEONLY, "unix:/run/ondemand/milter.sock",
		    "S:10s;R:10s;E:5m", "unix:/run/ondemand/socketmap.sock",
		    "10s" },
		{ CF_DELIVERY_DEFERRED, "inet:8890@127.0.0.1", NULL, NULL,
		    NULL },
		{ CF_DELIVERY_KEEP, "/run/ondemand/milter.sock", NULL,
		    "/run/ondemand/socketmap.sock", "30s" },
	};
	struct cf_report report = { { 0 }, { 0 } };
	const char *input = (const char *)data;
	struct cf_doc old, copy;
	char error[1024];

	if (cf_check_text(input, size, error, sizeof(error)) != CF_OK)
		return 0;
	parse_checked(&old, input, size);
	FUZZ_CHECK(joins_to(&old, input, size));

	if (cf_has_marks(&old)) {
		memset(&copy, 0, sizeof(copy));
		FUZZ_CHECK(cf_doc_copy(&copy, &old));
		error[0] = '\0';
		if (cf_revert(&copy, &report, error, sizeof(error)) != CF_OK)
			FUZZ_CHECK(error[0] != '\0');
		cf_report_free(&report);
		cf_doc_free(&copy);
	}
	for (size_t i = 0; i < sizeof(option_sets) / sizeof(option_sets[0]);
	    i++) {
		FUZZ_CHECK(cf_check_options(&option_sets[i], error,
		    sizeof(error)) == CF_OK);
		check_update(&old, input, size, &option_sets[i]);
	}
	cf_doc_free(&old);
	return 0;
}
