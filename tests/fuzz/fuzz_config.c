/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target: the configuration file reader (od_config_load).
 *
 * od_config_load reads a named file, so each input is written to a file in
 * a private temporary directory.  Input up to a line "%%" is the
 * configuration, and what follows it is the content of a domain file.
 * Every line that contains "DomainFile" in any case is replaced by a
 * DomainFile line naming that domain file, so the reader opens no file
 * but these two.
 *
 * A loaded configuration must contain only normal-form domains and values
 * in their documented ranges.  A failure must name the file it is about.
 */

#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fuzz.h"
#include "od_config.h"
#include "od_helper_proto.h"

static char directory[PATH_MAX];
static char config_path[PATH_MAX];
static char domains_path[PATH_MAX];

static void
remove_files(void)
{
	unlink(config_path);
	unlink(domains_path);
	rmdir(directory);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	snprintf(directory, sizeof(directory), "%s/ondemand-fuzz-config-XXXXXX",
	    tmp);
	if (mkdtemp(directory) == NULL) {
		perror("fuzz-config: cannot create a directory in TMPDIR");
		exit(1);
	}
	snprintf(config_path, sizeof(config_path), "%s/ondemand.conf",
	    directory);
	snprintf(domains_path, sizeof(domains_path), "%s/domains", directory);
	atexit(remove_files);
	return 0;
}

/* Returns whether the length octets of line contain "domainfile", any case. */
static bool
mentions_domain_file(const char *line, size_t length)
{
	static const char key[] = "domainfile";
	size_t n = sizeof(key) - 1;

	for (size_t i = 0; i + n <= length; i++)
		if (strncasecmp(line + i, key, n) == 0)
			return true;
	return false;
}

/*
 * Writes the size octets of data to the configuration file, up to a "%%"
 * line, and the rest to the domain file.
 */
static void
write_files(const char *data, size_t size)
{
	FILE *config = fopen(config_path, "w");
	FILE *domains = fopen(domains_path, "w");
	FILE *out = config;
	size_t start = 0;

	FUZZ_CHECK(config != NULL && domains != NULL);
	while (start < size) {
		const char *newline = memchr(data + start, '\n', size - start);
		size_t end = newline != NULL ? (size_t)(newline - data) : size;
		size_t length = end - start;

		if (out == config && length == 2 &&
		    memcmp(data + start, "%%", 2) == 0) {
			out = domains;
		} else if (out == config &&
		    mentions_domain_file(data + start, length)) {
			fprintf(out, "DomainFile %s\n", domains_path);
		} else {
			fwrite(data + start, 1, length, out);
			if (newline != NULL)
				fputc('\n', out);
		}
		start = end + 1;
	}
	FUZZ_CHECK(fclose(config) == 0);
	FUZZ_CHECK(fclose(domains) == 0);
}

static void
check_config(const struct od_config *config)
{
	const char *error;

	FUZZ_CHECK(strcmp(config->path, config_path) == 0);
	FUZZ_CHECK(config->socket != NULL && config->pidfile != NULL &&
	    config->sendmail_path != NULL);
	FUZZ_CHECK((config->socket_mode & ~0777u) == 0);
	FUZZ_CHECK(config->max_hold_age >= 1 &&
	    config->max_hold_age <= 366LL * 86400);
	FUZZ_CHECK(config->etrn_min_interval >= 0 &&
	    config->etrn_min_interval <= 86400);
	FUZZ_CHECK(config->release_runs >= 1 &&
	    config->release_runs <= OD_MAX_RELEASE_RUNS);
	for (size_t i = 0; i < od_domain_set_count(config->domains); i++)
		FUZZ_CHECK(od_helper_domain_valid(od_domain_set_entry(
		    config->domains, i, NULL), &error));
	for (size_t i = 0; i < config->etrn_allow_count; i++) {
		FUZZ_CHECK(od_helper_domain_valid(config->etrn_allow[i].domain,
		    &error));
		FUZZ_CHECK(config->etrn_allow[i].count > 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char error[1200];
	struct od_config *config;

	write_files((const char *)data, size);
	error[0] = '\0';
	config = od_config_load(config_path, error, sizeof(error));
	if (config == NULL) {
		/* "FILE:LINE: message" or "FILE: message" */
		FUZZ_CHECK(strncmp(error, config_path,
		    strlen(config_path)) == 0 ||
		    strncmp(error, domains_path, strlen(domains_path)) == 0);
		FUZZ_CHECK(strstr(error, ": ") != NULL);
		return 0;
	}
	check_config(config);
	od_config_free(config);
	return 0;
}
