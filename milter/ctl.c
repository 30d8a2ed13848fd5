/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ondemandctl: show and manage what ondemand-milter holds, through the
 * daemon's control socket (ControlSocket in the daemon's configuration).
 *
 * The daemon replies with tab-separated rows and a final "OK" or
 * "ERROR message" line.  This program prints the rows as a table, as JSON
 * (-j) or unchanged (-t).
 */

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "od_config.h"
#include "od_util.h"

#define ROW_MAX 4096
#define FIELDS_MAX 8

enum output_format { FORMAT_TABLE, FORMAT_JSON, FORMAT_TSV };

static void
usage(FILE *stream)
{
	fprintf(stream,
	    "usage: ondemandctl [-c FILE] [-j | -t] COMMAND [ARGUMENT]\n"
	    "commands:\n"
	    "  status            held messages, bytes and oldest hold per "
	    "domain\n"
	    "  list DOMAIN       the held messages of DOMAIN (@DOMAIN: and "
	    "its subdomains)\n"
	    "  release DOMAIN    deliver DOMAIN's held messages now\n"
	    "  unhold DOMAIN|ID  move held messages back to the normal queue\n"
	    "  expire            return messages past MaxHoldAge to their "
	    "senders now\n"
	    "options:\n"
	    "  -c FILE  the daemon's configuration file (default %s)\n"
	    "  -j       JSON output\n"
	    "  -t       tab-separated output, one row per line\n",
	    OD_DEFAULT_CONFIG_FILE);
}

static int
connect_control(const char *path)
{
	struct sockaddr_un address;
	int fd, saved;

	memset(&address, 0, sizeof(address));
	address.sun_family = AF_UNIX;
	if (od_strlcpy(address.sun_path, path, sizeof(address.sun_path)) >=
	    sizeof(address.sun_path)) {
		fprintf(stderr, "ondemandctl: control socket path %s is too "
		    "long\n", path);
		exit(EX_CONFIG);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ondemandctl: socket: %s\n", strerror(errno));
		exit(EX_OSERR);
	}
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0)
		return fd;
	saved = errno;
	close(fd);
	if (saved == EACCES || saved == EPERM) {
		fprintf(stderr, "ondemandctl: permission denied on %s: run as "
		    "root or as a member of the daemon's SocketGroup\n", path);
		exit(EX_NOPERM);
	}
	fprintf(stderr, "ondemandctl: cannot connect to %s: %s; is "
	    "ondemand-milter running with this ControlSocket?\n", path,
	    strerror(saved));
	exit(EX_UNAVAILABLE);
}

static size_t
split_fields(char *row, char *fields[FIELDS_MAX])
{
	size_t n = 0;
	char *p = row;

	while (n < FIELDS_MAX) {
		fields[n++] = p;
		p = strchr(p, '\t');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

static void
format_age(time_t since, char *out, size_t size)
{
	long long age = (long long)(time(NULL) - since);

	if (since <= 0)
		snprintf(out, size, "-");
	else if (age < 120)
		snprintf(out, size, "%llds", age < 0 ? 0 : age);
	else if (age < 2 * 3600)
		snprintf(out, size, "%lldm", age / 60);
	else if (age < 2 * 86400)
		snprintf(out, size, "%lldh", age / 3600);
	else
		snprintf(out, size, "%lldd", age / 86400);
}

static void
print_json_string(const char *text)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* Prints one data row in the chosen format; first is true for row one. */
static void
print_row(enum output_format format, char *row, bool first)
{
	char *f[FIELDS_MAX];
	size_t n = split_fields(row, f);
	char age[32];

	if (format == FORMAT_JSON) {
		if (!first)
			printf(",\n");
		if (strcmp(f[0], "index") == 0 && n >= 3) {
			printf("  {\"type\": \"index\", \"state\": ");
			print_json_string(f[1]);
			printf(", \"last_rebuild\": %s}", f[2]);
		} else if (strcmp(f[0], "domain") == 0 && n >= 5) {
			printf("  {\"type\": \"domain\", \"domain\": ");
			print_json_string(f[1]);
			printf(", \"messages\": %s, \"bytes\": %s, "
			    "\"oldest\": %s}", f[2], f[3], f[4]);
		} else if (strcmp(f[0], "message") == 0 && n >= 6) {
			printf("  {\"type\": \"message\", \"queue_id\": ");
			print_json_string(f[1]);
			printf(", \"domain\": ");
			print_json_string(f[2]);
			printf(", \"sender\": ");
			print_json_string(f[3]);
			printf(", \"size\": %s, \"held_at\": %s}", f[4], f[5]);
		} else if (strcmp(f[0], "ledger") == 0 && n >= 6) {
			printf("  {\"type\": \"ledger\", \"state\": ");
			print_json_string(f[1]);
			printf(", \"host_id\": ");
			print_json_string(f[2]);
			printf(", \"last_resync\": %s, \"servers_up\": %s, "
			    "\"servers\": %s}", f[3], f[4], f[5]);
		} else if (strcmp(f[0], "server") == 0 && n >= 4) {
			printf("  {\"type\": \"server\", \"server\": ");
			print_json_string(f[1]);
			printf(", \"state\": ");
			print_json_string(f[2]);
			printf(", \"down_since\": %s}", f[3]);
		} else if (strcmp(f[0], "host") == 0 && n >= 6) {
			printf("  {\"type\": \"host\", \"domain\": ");
			print_json_string(f[1]);
			printf(", \"host\": ");
			print_json_string(f[2]);
			printf(", \"messages\": %s, \"bytes\": %s, "
			    "\"oldest\": %s}", f[3], f[4], f[5]);
		} else {
			printf("  {\"type\": ");
			print_json_string(f[0]);
			printf(", \"value\": ");
			print_json_string(n > 1 ? f[1] : "");
			printf("}");
		}
		return;
	}

	if (strcmp(f[0], "index") == 0 && n >= 3) {
		time_t when = (time_t)strtoll(f[2], NULL, 10);

		if (when <= 0) {
			printf("index: %s (not yet rebuilt from the queue)\n",
			    f[1]);
		} else {
			format_age(when, age, sizeof(age));
			printf("index: %s (rebuilt from the queue %s ago)\n",
			    f[1], age);
		}
		printf("%-40s %8s %12s %8s\n", "DOMAIN", "MESSAGES", "BYTES",
		    "OLDEST");
	} else if (strcmp(f[0], "domain") == 0 && n >= 5) {
		format_age((time_t)strtoll(f[4], NULL, 10), age, sizeof(age));
		printf("%-40s %8s %12s %8s\n", f[1], f[2], f[3], age);
	} else if (strcmp(f[0], "ledger") == 0 && n >= 6) {
		if (strcmp(f[1], "off") == 0) {
			printf("ledger: off (no Memcached servers configured)"
			    "\n");
			return;
		}
		format_age((time_t)strtoll(f[3], NULL, 10), age, sizeof(age));
		printf("ledger: %s, host ID %s, %s of %s servers up, last "
		    "re-sync %s%s\n", f[1], f[2], f[4], f[5], age,
		    strcmp(age, "-") == 0 ? "" : " ago");
	} else if (strcmp(f[0], "server") == 0 && n >= 4) {
		if (strcmp(f[2], "down") == 0) {
			format_age((time_t)strtoll(f[3], NULL, 10), age,
			    sizeof(age));
			printf("  server %s: down for %s\n", f[1], age);
		} else
			printf("  server %s: up\n", f[1]);
	} else if (strcmp(f[0], "incomplete") == 0 && n >= 2) {
		printf("  incomplete: %s (releases select from the queue)\n",
		    f[1]);
	} else if (strcmp(f[0], "host") == 0 && n >= 6) {
		static bool header_printed;

		if (!header_printed)
			printf("%-40s %-20s %8s %12s %8s\n", "DOMAIN (LEDGER)",
			    "HOST", "MESSAGES", "BYTES", "OLDEST");
		header_printed = true;
		format_age((time_t)strtoll(f[5], NULL, 10), age, sizeof(age));
		printf("%-40s %-20s %8s %12s %8s\n", f[1], f[2], f[3], f[4],
		    age);
	} else if (strcmp(f[0], "message") == 0 && n >= 6) {
		if (first)
			printf("%-16s %-30s %10s %6s %s\n", "QUEUE-ID",
			    "DOMAIN", "SIZE", "AGE", "SENDER");
		format_age((time_t)strtoll(f[5], NULL, 10), age, sizeof(age));
		printf("%-16s %-30s %10s %6s %s\n", f[1], f[2], f[4], age,
		    f[3]);
	} else if (strcmp(f[0], "release") == 0 && n >= 2) {
		if (strcmp(f[1], "started") == 0 && n >= 3 &&
		    strcmp(f[2], "-1") != 0)
			printf("release started for %s held %s\n", f[2],
			    strcmp(f[2], "1") == 0 ? "message" : "messages");
		else if (strcmp(f[1], "started") == 0)
			printf("release started\n");
		else if (strcmp(f[1], "running") == 0)
			printf("a release of this domain is already running; "
			    "nothing new started\n");
		else
			printf("release: %s\n", f[1]);
	} else if (strcmp(f[0], "unhold") == 0 && n >= 2) {
		printf("%s %s moved back to the normal queue\n", f[1],
		    strcmp(f[1], "1") == 0 ? "message" : "messages");
	} else if (strcmp(f[0], "expire") == 0 && n >= 2) {
		printf("%s %s past the hold age limit: each had a last delivery "
		    "attempt, and what failed went back to its sender\n", f[1],
		    strcmp(f[1], "1") == 0 ? "message" : "messages");
	} else {
		printf("%s\n", row);
	}
}

static int
run(const char *path, const char *request, enum output_format format)
{
	char row[ROW_MAX];
	bool first = true, finished = false;
	int status = EX_PROTOCOL;
	FILE *stream;
	int fd = connect_control(path);

	stream = fdopen(fd, "r+");
	if (stream == NULL) {
		fprintf(stderr, "ondemandctl: %s\n", strerror(errno));
		close(fd);
		return EX_OSERR;
	}
	if (fprintf(stream, "%s\n", request) < 0 || fflush(stream) != 0) {
		fprintf(stderr, "ondemandctl: cannot send the request to %s: "
		    "%s\n", path, strerror(errno));
		fclose(stream);
		return EX_IOERR;
	}
	if (format == FORMAT_JSON)
		printf("[\n");
	while (fgets(row, sizeof(row), stream) != NULL) {
		row[strcspn(row, "\r\n")] = '\0';
		if (strcmp(row, "OK") == 0) {
			status = EX_OK;
			finished = true;
			break;
		}
		if (strncmp(row, "ERROR ", 6) == 0) {
			fprintf(stderr, "ondemandctl: %s\n", row + 6);
			status = EX_UNAVAILABLE;
			finished = true;
			break;
		}
		if (format == FORMAT_TSV)
			printf("%s\n", row);
		else
			print_row(format, row, first);
		first = false;
	}
	if (format == FORMAT_JSON)
		printf("%s]\n", first ? "" : "\n");
	if (!finished)
		fprintf(stderr, "ondemandctl: the daemon closed the connection "
		    "without a final status\n");
	fclose(stream);
	return status;
}

int
main(int argc, char **argv)
{
	const char *config_file = OD_DEFAULT_CONFIG_FILE;
	enum output_format format = FORMAT_TABLE;
	char error[1200], request[600];
	struct od_config *config;
	const char *command, *argument = NULL;
	int opt, status;

	while ((opt = getopt(argc, argv, "c:jth")) != -1) {
		switch (opt) {
		case 'c':
			config_file = optarg;
			break;
		case 'j':
			format = FORMAT_JSON;
			break;
		case 't':
			format = FORMAT_TSV;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	command = argv[optind++];
	if (optind < argc)
		argument = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "ondemandctl: unexpected argument \"%s\"\n",
		    argv[optind]);
		return EX_USAGE;
	}

	if ((strcmp(command, "status") == 0 || strcmp(command, "expire") ==
	    0) && argument == NULL) {
		snprintf(request, sizeof(request), "%s",
		    command[0] == 's' ? "STATUS" : "EXPIRE");
	} else if ((strcmp(command, "list") == 0 ||
	    strcmp(command, "release") == 0 ||
	    strcmp(command, "unhold") == 0) && argument != NULL) {
		/* The daemon validates the argument; keep it one line. */
		if (strlen(argument) > 300 || strpbrk(argument, " \t\r\n") !=
		    NULL) {
			fprintf(stderr, "ondemandctl: invalid argument \"%.300s"
			    "\": expected a domain name or a queue ID\n",
			    argument);
			return EX_USAGE;
		}
		snprintf(request, sizeof(request), "%s %s",
		    command[0] == 'l' ? "LIST" : command[0] == 'r' ?
		    "RELEASE" : "UNHOLD", argument);
	} else {
		fprintf(stderr, "ondemandctl: unknown command or wrong number "
		    "of arguments: %s\n", command);
		usage(stderr);
		return EX_USAGE;
	}

	config = od_config_load(config_file, error, sizeof(error));
	if (config == NULL) {
		fprintf(stderr, "ondemandctl: %s\n", error);
		return EX_CONFIG;
	}
	if (config->control_socket == NULL) {
		fprintf(stderr, "ondemandctl: %s has no ControlSocket line; "
		    "add one (for example ControlSocket "
		    "/run/ondemand/control.sock) and restart the daemon\n",
		    config_file);
		od_config_free(config);
		return EX_CONFIG;
	}
	status = run(config->control_socket, request, format);
	od_config_free(config);
	return status;
}
