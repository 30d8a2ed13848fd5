/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ondemand-cf: patch sendmail.cf for ondemand-milter, or undo the patch.
 *
 * The steps: read the file, compute the patched text (cf_patch.c), show
 * or write it.  Writing goes through a temporary file in the same
 * directory that sendmail itself must accept, then a backup that never
 * overwrites an earlier one, then an atomic rename.  The original is left
 * untouched on every error.  See ondemand-cf(8).
 */

#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "od_config.h"
#include "od_domain.h"

#include "cf_diff.h"
#include "cf_doc.h"
#include "cf_file.h"
#include "cf_patch.h"
#include "cf_sendmail.h"

#ifndef DEFAULT_SENDMAIL_PATH
#define DEFAULT_SENDMAIL_PATH "/usr/sbin/sendmail"
#endif

#define DEFAULT_CF_FILE "/etc/mail/sendmail.cf"
#define DEFAULT_SOCKETMAP "unix:/run/ondemand/socketmap.sock"
/* sendmail's own milter defaults (S:10s, R:10s, E:5m), written out. */
#define DEFAULT_MILTER_TIMEOUTS "S:10s;R:10s;E:5m"
/* The daemon replies at once; sendmail's default wait is 30 s. */
#define DEFAULT_SOCKETMAP_TIMEOUT "10s"

enum verbosity {
	QUIET,
	NORMAL,
	VERBOSE
};

struct settings {
	const char *path;
	const char *config_path;
	bool config_given;
	const char *sendmail;
	bool path_given;
	bool sendmail_given;
	bool dry_run;
	bool revert;
	enum verbosity verbosity;
	struct cf_options options;
	const char *milter_socket;	/* from the command line */
	const char *socketmap;		/* from the command line */
	bool no_etrn;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: ondemand-cf [options] [FILE]\n"
	    "Patch FILE (default " DEFAULT_CF_FILE ") for ondemand-milter.\n"
	    "\n"
	    "  -n, --dry-run              show the changes as a diff; change nothing\n"
	    "      --revert               undo every change ondemand-cf made\n"
	    "      --deferred             set DeliveryMode to deferred, not queueonly\n"
	    "      --keep-delivery-mode   leave DeliveryMode as it is\n"
	    "  -c, --config FILE          ondemand configuration with the sockets and\n"
	    "                             domains (default " OD_DEFAULT_CONFIG_FILE ")\n"
	    "      --milter-socket SPEC   filter socket, unix:/PATH or inet:PORT@HOST\n"
	    "                             (default: Socket in the configuration)\n"
	    "      --milter-timeouts LIST filter timeouts T=, C/S/R/E with units s, m\n"
	    "                             (default " DEFAULT_MILTER_TIMEOUTS ")\n"
	    "      --socketmap SPEC       ETRN socket map socket (default: SocketMap in\n"
	    "                             the configuration)\n"
	    "      --socketmap-timeout TIME  wait for a socket map reply, with a unit\n"
	    "                             s, m or h (default " DEFAULT_SOCKETMAP_TIMEOUT ")\n"
	    "      --no-etrn              leave out the ETRN hook\n"
	    "      --sendmail PATH        sendmail binary for the checks (default\n"
	    "                             " DEFAULT_SENDMAIL_PATH ")\n"
	    "  -q, --quiet                print only warnings and errors\n"
	    "  -v, --verbose              list every change\n"
	    "  -h, --help                 show this help\n"
	    "  -V, --version              show the version\n");
}

static void
error_message(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void
error_message(const char *format, ...)
{
	va_list ap;

	fputs("ondemand-cf: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
warning(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void
warning(const char *format, ...)
{
	va_list ap;

	fputs("ondemand-cf: warning: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
info(const struct settings *settings, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void
info(const struct settings *settings, const char *format, ...)
{
	va_list ap;

	if (settings->verbosity == QUIET)
		return;
	va_start(ap, format);
	vfprintf(stdout, format, ap);
	va_end(ap);
	fputc('\n', stdout);
}

enum long_option {
	OPT_REVERT = 256,
	OPT_DEFERRED,
	OPT_KEEP_DELIVERY_MODE,
	OPT_MILTER_SOCKET,
	OPT_MILTER_TIMEOUTS,
	OPT_SOCKETMAP,
	OPT_SOCKETMAP_TIMEOUT,
	OPT_NO_ETRN,
	OPT_SENDMAIL
};

static int
parse_arguments(int argc, char **argv, struct settings *settings)
{
	static const struct option long_options[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "revert", no_argument, NULL, OPT_REVERT },
		{ "deferred", no_argument, NULL, OPT_DEFERRED },
		{ "keep-delivery-mode", no_argument, NULL,
		    OPT_KEEP_DELIVERY_MODE },
		{ "config", required_argument, NULL, 'c' },
		{ "milter-socket", required_argument, NULL, OPT_MILTER_SOCKET },
		{ "milter-timeouts", required_argument, NULL,
		    OPT_MILTER_TIMEOUTS },
		{ "socketmap", required_argument, NULL, OPT_SOCKETMAP },
		{ "socketmap-timeout", required_argument, NULL,
		    OPT_SOCKETMAP_TIMEOUT },
		{ "no-etrn", no_argument, NULL, OPT_NO_ETRN },
		{ "sendmail", required_argument, NULL, OPT_SENDMAIL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "nc:qvhV", long_options,
	    NULL)) != -1) {
		switch (c) {
		case 'n':
			settings->dry_run = true;
			break;
		case OPT_REVERT:
			settings->revert = true;
			break;
		case OPT_DEFERRED:
			settings->options.delivery_mode = CF_DELIVERY_DEFERRED;
			break;
		case OPT_KEEP_DELIVERY_MODE:
			settings->options.delivery_mode = CF_DELIVERY_KEEP;
			break;
		case 'c':
			settings->config_path = optarg;
			settings->config_given = true;
			break;
		case OPT_MILTER_SOCKET:
			settings->milter_socket = optarg;
			break;
		case OPT_MILTER_TIMEOUTS:
			/* An empty value leaves T= out: sendmail's defaults. */
			settings->options.milter_timeouts =
			    optarg[0] == '\0' ? NULL : optarg;
			break;
		case OPT_SOCKETMAP:
			settings->socketmap = optarg;
			break;
		case OPT_SOCKETMAP_TIMEOUT:
			settings->options.socketmap_timeout =
			    optarg[0] == '\0' ? NULL : optarg;
			break;
		case OPT_NO_ETRN:
			settings->no_etrn = true;
			break;
		case OPT_SENDMAIL:
			settings->sendmail = optarg;
			settings->sendmail_given = true;
			break;
		case 'q':
			settings->verbosity = QUIET;
			break;
		case 'v':
			settings->verbosity = VERBOSE;
			break;
		case 'h':
			usage(stdout);
			exit(EX_OK);
		case 'V':
			printf("ondemand-cf (%s) %s\n", PACKAGE_NAME,
			    PACKAGE_VERSION);
			exit(EX_OK);
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind + 1 < argc) {
		error_message("more than one file given (\"%s\", \"%s\"); "
		    "ondemand-cf patches one sendmail.cf at a time",
		    argv[optind], argv[optind + 1]);
		return EX_USAGE;
	}
	if (optind < argc) {
		settings->path = argv[optind];
		settings->path_given = true;
	}
	if (settings->revert && settings->options.delivery_mode !=
	    CF_DELIVERY_QUEUEONLY) {
		error_message("--revert restores the original file and takes "
		    "no delivery mode option");
		return EX_USAGE;
	}
	return EX_OK;
}

/*
 * Fills the sockets from the command line, else from the ondemand
 * configuration, else from the defaults.  A missing configuration file is
 * an error only when it was named with --config.
 */
static int
load_configuration(struct settings *settings, struct od_config **config)
{
	char error[512];

	*config = NULL;
	if (access(settings->config_path, F_OK) != 0 && errno == ENOENT &&
	    !settings->config_given) {
		/* --revert needs neither the sockets nor the domains. */
		if (!settings->revert)
			info(settings, "%s does not exist: using the default "
			    "sockets, and no on-demand domains to check",
			    settings->config_path);
	} else {
		*config = od_config_load(settings->config_path, error,
		    sizeof(error));
		if (*config == NULL) {
			error_message("%s", error);
			return EX_CONFIG;
		}
	}

	/* The daemon's SendmailPath and SendmailConfig name the same files. */
	if (*config != NULL && (*config)->sendmail_path != NULL &&
	    !settings->sendmail_given)
		settings->sendmail = (*config)->sendmail_path;
	if (*config != NULL && (*config)->sendmail_config != NULL &&
	    !settings->path_given)
		settings->path = (*config)->sendmail_config;

	settings->options.milter_socket = settings->milter_socket;
	if (settings->options.milter_socket == NULL)
		settings->options.milter_socket = *config != NULL &&
		    (*config)->socket != NULL ? (*config)->socket :
		    OD_DEFAULT_SOCKET;

	settings->options.socketmap = settings->socketmap;
	if (settings->options.socketmap == NULL) {
		if (*config == NULL)
			settings->options.socketmap = DEFAULT_SOCKETMAP;
		else if ((*config)->socketmap != NULL)
			settings->options.socketmap = (*config)->socketmap;
		else if (!settings->no_etrn && !settings->revert)
			info(settings, "%s sets no SocketMap: the ETRN hook is "
			    "left out", settings->config_path);
	}
	if (settings->no_etrn)
		settings->options.socketmap = NULL;
	return EX_OK;
}

/* Warns when the file is rebuilt from a sendmail.mc beside it. */
static void
warn_about_mc(const char *path)
{
	char *copy = strdup(path), *dir, mc[4096], makefile[4096];
	struct stat mc_st, cf_st;
	FILE *file;
	bool rebuilt = false;

	if (copy == NULL)
		return;
	dir = dirname(copy);
	snprintf(mc, sizeof(mc), "%s/sendmail.mc", dir);
	snprintf(makefile, sizeof(makefile), "%s/Makefile", dir);
	free(copy);
	if (stat(mc, &mc_st) != 0)
		return;

	/* Debian's /etc/mail/Makefile rebuilds sendmail.cf from
	 * sendmail.mc whenever the .mc is newer; sendmailconfig and the
	 * init script run it. */
	file = fopen(makefile, "r");
	if (file != NULL) {
		char line[1024];

		while (fgets(line, sizeof(line), file) != NULL)
			if (strstr(line, "sendmail.mc") != NULL)
				rebuilt = true;
		fclose(file);
	}
	if (rebuilt) {
		warning("%s rebuilds %s from %s whenever %s is newer (make, "
		    "sendmailconfig and the sendmail init script run it), "
		    "which undoes these changes: add FEATURE(`ondemand') to "
		    "%s instead, see ondemand-cf(8)", makefile, path, mc, mc,
		    mc);
		if (stat(path, &cf_st) == 0 &&
		    mc_st.st_mtime > cf_st.st_mtime)
			warning("%s is already newer than %s: the next rebuild "
			    "replaces it", mc, path);
	} else {
		warning("%s is beside %s: if you rebuild %s from it, these "
		    "changes are lost; add FEATURE(`ondemand') to %s instead, "
		    "see ondemand-cf(8)", mc, path, path, mc);
	}
}

static void
print_list(const struct settings *settings, const struct cf_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		info(settings, "  %s", list->items[i]);
}

/*
 * Builds the sample addresses: postmaster at each on-demand domain (at a
 * name below it for ".domain" entries), then postmaster at this host.
 */
static char **
sample_addresses(const struct od_config *config, size_t *count)
{
	size_t domains = config == NULL || config->domains == NULL ? 0 :
	    od_domain_set_count(config->domains);
	char **addresses = calloc(domains + 2, sizeof(*addresses));

	*count = 0;
	if (addresses == NULL)
		return NULL;
	for (size_t i = 0; i < domains; i++) {
		bool subdomains;
		const char *domain = od_domain_set_entry(config->domains, i,
		    &subdomains);
		size_t len = strlen(domain) + 32;

		addresses[*count] = malloc(len);
		if (addresses[*count] == NULL)
			break;
		snprintf(addresses[(*count)++], len, "postmaster@%s%s",
		    subdomains ? "host." : "", domain);
	}
	return addresses;
}

static void
free_strings(char **strings, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}

static void
describe_route(const struct settings *settings, const struct cf_route *route)
{
	if (route->mailer == NULL)
		info(settings, "  %s: does not resolve: %s", route->address,
		    route->problem);
	else
		info(settings, "  %s: mailer %s%s%s", route->address,
		    route->mailer, route->host == NULL ? "" : ", host ",
		    route->host == NULL ? "" : route->host);
}

/*
 * Shows where the sample addresses go with the new file, and warns where an
 * on-demand domain's mail would come back to this host.
 */
static int
check_routes(const struct settings *settings, const char *cf_path,
    const struct od_config *config)
{
	struct cf_routes routes;
	size_t count, domain_count;
	char **addresses = sample_addresses(config, &domain_count), error[512];
	int status;

	if (addresses == NULL) {
		error_message("out of memory");
		return EX_OSERR;
	}
	count = domain_count;
	/* postmaster at this host: its name comes from the first run. */
	status = cf_resolve(settings->sendmail, cf_path,
	    (const char *const *)addresses, count, &routes, error,
	    sizeof(error));
	if (status == 0 && routes.canonical_name != NULL) {
		size_t len = strlen(routes.canonical_name) + 16;

		addresses[count] = malloc(len);
		if (addresses[count] != NULL) {
			snprintf(addresses[count++], len, "postmaster@%s",
			    routes.canonical_name);
			cf_routes_free(&routes);
			status = cf_resolve(settings->sendmail, cf_path,
			    (const char *const *)addresses, count, &routes,
			    error, sizeof(error));
		}
	}
	free_strings(addresses, count);
	if (status != 0) {
		error_message("%s", error);
		return EX_UNAVAILABLE;
	}

	info(settings, "Where sample addresses go with the new file:");
	for (size_t i = 0; i < routes.count; i++) {
		const struct cf_route *route = &routes.items[i];
		bool is_domain = i < domain_count;

		describe_route(settings, route);
		if (cf_route_loops(&routes, route))
			warning("%s would be sent to this host itself (%s), "
			    "and sendmail would report \"mail loops back to "
			    "me\": %s", route->address, route->host,
			    is_domain ? "route the domain to the customer's "
			    "server with a mailertable entry (or a relay)" :
			    "mail to this host's own names needs a mailertable "
			    "entry with the local mailer, such as \"NAME "
			    "local:\"");
		else if (is_domain && route->mailer != NULL &&
		    strcmp(route->mailer, "local") == 0)
			warning("%s would be delivered locally on this host, "
			    "not to the customer's server: route the domain "
			    "with a mailertable entry", route->address);
		else if (is_domain && cf_route_is_smtp(route) &&
		    route->host != NULL &&
		    strcasecmp(route->host, strchr(route->address, '@') + 1)
		    == 0)
			warning("%s has no mailertable or relay route and goes "
			    "to the domain's DNS MX hosts; if this host is its "
			    "best MX, sendmail reports \"mail loops back to "
			    "me\": add a mailertable entry for it",
			    route->address);
		else if (route->mailer == NULL)
			warning("%s does not resolve with the new file: %s",
			    route->address, route->problem);
	}
	cf_routes_free(&routes);
	return EX_OK;
}

/* Runs sendmail's own parse check of cf_path and prints its messages. */
static int
check_parse(const struct settings *settings, const char *cf_path,
    const char *what)
{
	struct cf_list messages = { NULL, 0 };
	char error[512];
	int result = cf_check_parse(settings->sendmail, cf_path, &messages,
	    error, sizeof(error));

	if (result < 0) {
		error_message("%s", error);
		return EX_UNAVAILABLE;
	}
	if (result == 0) {
		error_message("sendmail rejects %s:", what);
		for (size_t i = 0; i < messages.count; i++)
			fprintf(stderr, "  %s\n", messages.items[i]);
	} else {
		for (size_t i = 0; i < messages.count; i++)
			warning("sendmail says about %s: %s", what,
			    messages.items[i]);
	}
	for (size_t i = 0; i < messages.count; i++)
		free(messages.items[i]);
	free(messages.items);
	return result == 1 ? EX_OK : EX_DATAERR;
}

/*
 * Checks the new text in cf_path with sendmail.  When sendmail rejects it,
 * checks the original as well, so that the user learns whether the
 * problem was there before.
 */
static int
validate(const struct settings *settings, const char *cf_path,
    const struct od_config *config)
{
	int status = check_parse(settings, cf_path, "the new file");

	if (status == EX_DATAERR) {
		if (check_parse(settings, settings->path,
		    "the current file too") == EX_OK)
			error_message("the current %s passes sendmail's check, "
			    "so the changes cause the problem: please report "
			    "it with the output of \"ondemand-cf --dry-run\"",
			    settings->path);
		error_message("%s is unchanged", settings->path);
		return EX_DATAERR;
	}
	if (status != EX_OK || settings->revert)
		return status;
	return check_routes(settings, cf_path, config);
}

static int
write_result(const struct settings *settings, const char *old_buf,
    size_t old_len, const struct stat *st, const char *new_buf, size_t new_len,
    const struct od_config *config)
{
	char *temp = NULL, *backup = NULL, error[1024];
	int status;

	status = cf_file_write_temp(settings->path, new_buf, new_len, st,
	    &temp, error, sizeof(error));
	if (status != EX_OK) {
		error_message("%s", error);
		return status;
	}
	status = validate(settings, temp, config);
	if (status != EX_OK)
		goto fail;
	status = cf_file_write_backup(settings->path, old_buf, old_len, st,
	    &backup, error, sizeof(error));
	if (status != EX_OK) {
		error_message("%s", error);
		goto fail;
	}
	status = cf_file_install(temp, settings->path, st, error,
	    sizeof(error));
	if (status != EX_OK) {
		error_message("%s", error);
		unlink(backup);
		goto fail;
	}
	info(settings, "%s %s; the previous version is in %s",
	    settings->revert ? "Restored" : "Updated", settings->path, backup);
	if (!settings->revert)
		info(settings, "Restart sendmail (and start ondemand-milter) "
		    "for the changes to take effect.");
	free(temp);
	free(backup);
	return EX_OK;

fail:
	unlink(temp);
	free(temp);
	free(backup);
	return status;
}

static int
show_dry_run(const struct settings *settings, const struct cf_doc *old,
    const struct cf_doc *new, const char *new_buf, size_t new_len,
    const struct od_config *config)
{
	char *temp = NULL, label[4200], error[512];
	int status;

	snprintf(label, sizeof(label), "%s (ondemand-cf%s)", settings->path,
	    settings->revert ? " --revert" : "");
	fflush(stdout);
	if (!cf_diff_write(stdout, old, new, settings->path, label, 3)) {
		error_message("writing the diff failed: %s", strerror(errno));
		return EX_IOERR;
	}
	fflush(stdout);
	status = cf_file_write_scratch(new_buf, new_len, &temp, error,
	    sizeof(error));
	if (status != EX_OK) {
		error_message("%s", error);
		return status;
	}
	status = validate(settings, temp, config);
	unlink(temp);
	free(temp);
	if (status == EX_OK)
		info(settings, "Dry run: %s was not changed.", settings->path);
	return status;
}

static int
run(struct settings *settings, const struct od_config *config)
{
	struct cf_doc old = { 0 }, new = { 0 };
	struct cf_report report = { { 0 }, { 0 } };
	struct stat st;
	char *buf = NULL, *new_buf = NULL, error[1024];
	size_t len, new_len;
	int status;

	status = cf_file_read(settings->path, &buf, &len, &st, error,
	    sizeof(error));
	if (status != EX_OK) {
		error_message("%s", error);
		return status;
	}
	if (cf_check_text(buf, len, error, sizeof(error)) != CF_OK) {
		error_message("%s: %s; nothing was changed", settings->path,
		    error);
		status = EX_DATAERR;
		goto out;
	}
	if (!cf_doc_parse(&old, buf, len)) {
		error_message("out of memory");
		status = EX_OSERR;
		goto out;
	}

	if (settings->revert) {
		if (!cf_has_marks(&old)) {
			info(settings, "%s contains no changes by ondemand-cf; "
			    "nothing to revert", settings->path);
			status = EX_OK;
			goto out;
		}
		if (!cf_doc_copy(&new, &old)) {
			error_message("out of memory");
			status = EX_OSERR;
			goto out;
		}
		if (cf_revert(&new, &report, error, sizeof(error)) != CF_OK) {
			error_message("%s: %s; nothing was changed",
			    settings->path, error);
			status = EX_DATAERR;
			goto out;
		}
	} else {
		enum cf_status result = cf_update(&old, &settings->options,
		    &new, &report, error, sizeof(error));

		if (result != CF_OK) {
			error_message("%s: %s; nothing was changed",
			    settings->path, error);
			status = result == CF_NOMEM ? EX_OSERR : EX_DATAERR;
			goto out;
		}
		warn_about_mc(settings->path);
	}

	for (size_t i = 0; i < report.warnings.count; i++)
		warning("%s: %s", settings->path, report.warnings.items[i]);
	if (cf_doc_equal(&old, &new)) {
		info(settings, "%s already has the ondemand changes; nothing "
		    "to change", settings->path);
		status = EX_OK;
		goto out;
	}
	if (settings->verbosity == VERBOSE) {
		info(settings, "Changes to %s:", settings->path);
		print_list(settings, &report.changes);
	}

	new_buf = cf_doc_join(&new, &new_len);
	if (new_buf == NULL) {
		error_message("out of memory");
		status = EX_OSERR;
		goto out;
	}
	if (settings->dry_run)
		status = show_dry_run(settings, &old, &new, new_buf, new_len,
		    config);
	else
		status = write_result(settings, buf, len, &st, new_buf,
		    new_len, config);
out:
	cf_report_free(&report);
	cf_doc_free(&old);
	cf_doc_free(&new);
	free(buf);
	free(new_buf);
	return status;
}

int
main(int argc, char **argv)
{
	struct settings settings = {
		.path = DEFAULT_CF_FILE,
		.config_path = OD_DEFAULT_CONFIG_FILE,
		.sendmail = DEFAULT_SENDMAIL_PATH,
		.verbosity = NORMAL,
		.options = {
			.delivery_mode = CF_DELIVERY_QUEUEONLY,
			.milter_timeouts = DEFAULT_MILTER_TIMEOUTS,
			.socketmap_timeout = DEFAULT_SOCKETMAP_TIMEOUT,
		},
	};
	struct od_config *config = NULL;
	char error[512];
	int status;

	status = parse_arguments(argc, argv, &settings);
	if (status != EX_OK)
		return status;
	status = load_configuration(&settings, &config);
	if (status != EX_OK)
		return status;
	if (!settings.revert &&
	    cf_check_options(&settings.options, error, sizeof(error)) !=
	    CF_OK) {
		error_message("%s", error);
		od_config_free(config);
		return EX_USAGE;
	}
	status = run(&settings, config);
	if (config != NULL)
		od_config_free(config);
	return status;
}
