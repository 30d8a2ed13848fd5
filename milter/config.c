/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Configuration file reader.
 *
 * Each key is described once in the keys[] table: its name, whether it may
 * repeat, and the function that checks and stores its value.  Errors are
 * "FILE:LINE: message" and name the offending value and what is expected; a
 * DomainFile error names the domain file and its line.
 */

#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "od_config.h"
#include "od_index.h"
#include "od_ledger.h"
#include "od_util.h"

#define LINE_MAX_LEN 4096
#define MAX_HOLD_AGE_LIMIT (366LL * 86400)

struct parser {
	struct od_config *config;
	const char *file;
	unsigned line;
	unsigned global_quota_line[2];	/* MaxHeldMessages, MaxHeldBytes */
	char *error;
	size_t error_size;
};

typedef bool (*value_handler)(struct parser *, const char *key,
    const char *value);

struct key {
	const char *name;
	bool repeatable;
	value_handler handle;
	bool several_values;	/* the value may contain spaces */
};

static bool
fail(struct parser *parser, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static bool
fail(struct parser *parser, const char *format, ...)
{
	char message[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	if (parser->line > 0)
		snprintf(parser->error, parser->error_size, "%s:%u: %s",
		    parser->file, parser->line, message);
	else
		snprintf(parser->error, parser->error_size, "%s: %s",
		    parser->file, message);
	return false;
}

/* Quotes a value for an error message, bounded and with controls escaped. */
static const char *
quoted(const char *value, char *buffer, size_t size)
{
	od_escape(buffer, size, value, 200);
	return buffer;
}

static bool
store_string(struct parser *parser, char **field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return fail(parser, "out of memory");
	free(*field);
	*field = copy;
	return true;
}

static bool
check_absolute_path(struct parser *parser, const char *key, const char *value)
{
	char q[256];

	if (value[0] != '/')
		return fail(parser, "invalid %s \"%s\": expected an absolute "
		    "path starting with /", key, quoted(value, q, sizeof(q)));
	return true;
}

/*
 * Checks a libmilter or socketmap socket specification: unix:/path,
 * local:/path, a bare /path, inet:PORT@HOST or inet6:PORT@HOST.
 */
static bool
check_socket_spec(struct parser *parser, const char *key, const char *value)
{
	const char *path = NULL;
	char q[256];

	if (strncmp(value, "unix:", 5) == 0)
		path = value + 5;
	else if (strncmp(value, "local:", 6) == 0)
		path = value + 6;
	else if (value[0] == '/')
		path = value;

	if (path != NULL) {
		if (path[0] != '/')
			return fail(parser, "invalid %s \"%s\": the socket "
			    "path must be absolute, as in unix:/run/ondemand/"
			    "milter.sock", key, quoted(value, q, sizeof(q)));
		return true;
	}
	if (strncmp(value, "inet:", 5) == 0 ||
	    strncmp(value, "inet6:", 6) == 0) {
		const char *port = strchr(value, ':') + 1;
		char *end;
		long number;

		errno = 0;
		number = strtol(port, &end, 10);
		if (errno != 0 || end == port || number < 1 ||
		    number > 65535 || (*end != '\0' && *end != '@'))
			return fail(parser, "invalid %s \"%s\": expected "
			    "inet:PORT@HOST with a port from 1 to 65535", key,
			    quoted(value, q, sizeof(q)));
		return true;
	}
	return fail(parser, "invalid %s \"%s\": expected unix:/PATH, "
	    "inet:PORT@HOST or inet6:PORT@HOST", key,
	    quoted(value, q, sizeof(q)));
}

static bool
handle_socket(struct parser *parser, const char *key, const char *value)
{
	return check_socket_spec(parser, key, value) &&
	    store_string(parser, &parser->config->socket, value);
}

static bool
handle_socketmap(struct parser *parser, const char *key, const char *value)
{
	char q[256];

	if (!check_socket_spec(parser, key, value))
		return false;
	/* The daemon serves the socket map on a unix socket only. */
	if (strncmp(value, "inet", 4) == 0)
		return fail(parser, "invalid %s \"%s\": expected a unix "
		    "socket, as in unix:/run/ondemand/socketmap.sock", key,
		    quoted(value, q, sizeof(q)));
	return store_string(parser, &parser->config->socketmap, value);
}

static bool
handle_socket_mode(struct parser *parser, const char *key, const char *value)
{
	char q[256];
	char *end;
	long mode;

	errno = 0;
	mode = strtol(value, &end, 8);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' ||
	    mode < 0 || mode > 0777)
		return fail(parser, "invalid %s \"%s\": expected an octal "
		    "mode from 0 to 0777, such as 0660", key,
		    quoted(value, q, sizeof(q)));
	if ((mode & 0600) != 0600)
		return fail(parser, "invalid %s \"%s\": the owner needs read "
		    "and write permission (0600) to use the socket", key,
		    quoted(value, q, sizeof(q)));
	parser->config->socket_mode = (mode_t)mode;
	return true;
}

static bool
handle_socket_group(struct parser *parser, const char *key, const char *value)
{
	char q[256];

	if (getgrnam(value) == NULL)
		return fail(parser, "invalid %s \"%s\": no such group; create "
		    "it or name an existing group", key,
		    quoted(value, q, sizeof(q)));
	return store_string(parser, &parser->config->socket_group, value);
}

static bool
handle_user(struct parser *parser, const char *key, const char *value)
{
	char name[256], q[256];
	const char *colon = strchr(value, ':');
	size_t len = colon ? (size_t)(colon - value) : strlen(value);

	if (len == 0 || len >= sizeof(name) || (colon && colon[1] == '\0'))
		return fail(parser, "invalid %s \"%s\": expected USER or "
		    "USER:GROUP", key, quoted(value, q, sizeof(q)));
	memcpy(name, value, len);
	name[len] = '\0';
	if (getpwnam(name) == NULL)
		return fail(parser, "invalid %s \"%s\": no such user \"%s\"; "
		    "create it or name an existing user", key,
		    quoted(value, q, sizeof(q)), name);
	if (colon != NULL && getgrnam(colon + 1) == NULL)
		return fail(parser, "invalid %s \"%s\": no such group \"%s\"",
		    key, quoted(value, q, sizeof(q)), colon + 1);
	return store_string(parser, &parser->config->user, value);
}

static bool
handle_pidfile(struct parser *parser, const char *key, const char *value)
{
	return check_absolute_path(parser, key, value) &&
	    store_string(parser, &parser->config->pidfile, value);
}

static bool
handle_control_socket(struct parser *parser, const char *key,
    const char *value)
{
	return check_absolute_path(parser, key, value) &&
	    store_string(parser, &parser->config->control_socket, value);
}

static bool
handle_sendmail_path(struct parser *parser, const char *key,
    const char *value)
{
	return check_absolute_path(parser, key, value) &&
	    store_string(parser, &parser->config->sendmail_path, value);
}

static bool
handle_sendmail_config(struct parser *parser, const char *key,
    const char *value)
{
	return check_absolute_path(parser, key, value) &&
	    store_string(parser, &parser->config->sendmail_config, value);
}

static bool
handle_on_error(struct parser *parser, const char *key, const char *value)
{
	char q[256];

	if (strcmp(value, "hold") == 0)
		parser->config->on_error = OD_ON_ERROR_HOLD;
	else if (strcmp(value, "tempfail") == 0)
		parser->config->on_error = OD_ON_ERROR_TEMPFAIL;
	else
		return fail(parser, "invalid %s \"%s\": expected hold or "
		    "tempfail", key, quoted(value, q, sizeof(q)));
	return true;
}

static bool
handle_etrn_other(struct parser *parser, const char *key, const char *value)
{
	char q[256];

	if (strcmp(value, "pass") == 0)
		parser->config->etrn_other = OD_ETRN_OTHER_PASS;
	else if (strcmp(value, "deny") == 0)
		parser->config->etrn_other = OD_ETRN_OTHER_DENY;
	else
		return fail(parser, "invalid %s \"%s\": expected pass or deny",
		    key, quoted(value, q, sizeof(q)));
	return true;
}

static bool
handle_max_hold_age(struct parser *parser, const char *key,
    const char *value)
{
	char q[256];
	long long seconds;

	if (!od_parse_duration(value, MAX_HOLD_AGE_LIMIT, &seconds) ||
	    seconds < 1)
		return fail(parser, "invalid %s \"%s\": expected a duration "
		    "from 1s to 366d, such as 4h or 7d (units s, m, h, d, w)",
		    key, quoted(value, q, sizeof(q)));
	parser->config->max_hold_age = seconds;
	return true;
}

static bool
handle_etrn_min_interval(struct parser *parser, const char *key,
    const char *value)
{
	char q[256];
	long long seconds;

	if (!od_parse_duration(value, 86400, &seconds))
		return fail(parser, "invalid %s \"%s\": expected a duration "
		    "from 0 to 1d, such as 30s or 5m", key,
		    quoted(value, q, sizeof(q)));
	parser->config->etrn_min_interval = seconds;
	return true;
}

static bool
handle_release_runs(struct parser *parser, const char *key,
    const char *value)
{
	char q[256];
	char *end;
	long runs;

	errno = 0;
	runs = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || runs < 1 ||
	    runs > OD_MAX_RELEASE_RUNS)
		return fail(parser, "invalid %s \"%s\": expected a whole "
		    "number from 1 to %d", key, quoted(value, q, sizeof(q)),
		    OD_MAX_RELEASE_RUNS);
	parser->config->release_runs = (unsigned)runs;
	return true;
}

/*
 * Parses "HOST[:PORT][,HOST[:PORT]...]"; an IPv6 address with a port is
 * written [ADDRESS]:PORT.  Repeated lines add servers.
 */
/* Parses one "HOST[:PORT]" item; returns NULL or what is wrong with it. */
static const char *
parse_memcached_item(char *item, struct od_memcached_server *server)
{
	char *host = item, *port = NULL, *end;
	long number = OD_DEFAULT_MEMCACHED_PORT;
	struct in6_addr address;
	bool bracketed = false;
	size_t i;

	memset(server, 0, sizeof(*server));
	if (item[0] == '\0')
		return "an empty item between commas";
	if (host[0] == '[') {
		end = strchr(host, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return "an IPv6 address in brackets must be followed "
			    "by nothing or by :PORT";
		*end = '\0';
		host++;
		bracketed = true;
		if (end[1] == ':')
			port = end + 2;
		if (strchr(host, ':') == NULL)
			return "only an IPv6 address goes in brackets";
	} else if (strchr(host, ':') != strrchr(host, ':')) {
		/* Two colons or more: an IPv6 address without a port. */
	} else if ((port = strchr(host, ':')) != NULL)
		*port++ = '\0';
	if (strchr(host, ':') != NULL &&
	    inet_pton(AF_INET6, host, &address) != 1)
		return bracketed ? "the address in brackets is not a valid "
		    "IPv6 address" : "a host with two or more colons must be "
		    "an IPv6 address, and an IPv6 address takes a port only "
		    "in brackets, as in [2001:db8::5]:11211";
	if (host[0] == '\0')
		return "the host is empty";
	if (strlen(host) >= sizeof(server->host))
		return "the host is longer than 255 octets";
	for (i = 0; host[i] != '\0'; i++) {
		if (!isalnum((unsigned char)host[i]) &&
		    strchr(".-:_", host[i]) == NULL)
			return "the host may hold only letters, digits, dots, "
			    "hyphens, underscores and the colons of an IPv6 "
			    "address";
	}
	if (port != NULL) {
		if (port[0] < '1' || port[0] > '9' ||
		    strspn(port, "0123456789") != strlen(port))
			return "the port must be a number from 1 to 65535";
		errno = 0;
		number = strtol(port, &end, 10);
		if (errno != 0 || number > 65535)
			return "the port must be a number from 1 to 65535";
	}
	od_strlcpy(server->host, host, sizeof(server->host));
	server->port = (unsigned)number;
	return NULL;
}

/*
 * Parses "HOST[:PORT][,HOST[:PORT]...]"; an IPv6 address with a port is
 * written [ADDRESS]:PORT.  Repeated lines add servers.
 */
static bool
handle_memcached(struct parser *parser, const char *key, const char *value)
{
	struct od_config *config = parser->config;
	char copy[LINE_MAX_LEN + 1], q[256], qi[256], where[sizeof(q) + 8];
	char *item, *next;

	od_strlcpy(copy, value, sizeof(copy));
	for (item = copy; item != NULL; item = next) {
		struct od_memcached_server server, *grown;
		char original[LINE_MAX_LEN + 1];
		const char *problem;
		size_t i;

		next = strchr(item, ',');
		if (next != NULL)
			*next++ = '\0';
		od_strlcpy(original, item, sizeof(original));
		problem = parse_memcached_item(item, &server);
		if (problem != NULL) {
			/* Name the whole value only when it has more items. */
			if (strcmp(original, value) == 0)
				where[0] = '\0';
			else
				snprintf(where, sizeof(where), " in \"%s\"",
				    quoted(value, q, sizeof(q)));
			return fail(parser, "invalid %s server \"%s\"%s: %s; "
			    "expected HOST[:PORT] items separated by commas, "
			    "such as 127.0.0.1:11211,[::1]:11212", key,
			    quoted(original, qi, sizeof(qi)), where, problem);
		}
		for (i = 0; i < config->memcached_count; i++) {
			if (strcasecmp(config->memcached[i].host,
			    server.host) == 0 &&
			    config->memcached[i].port == server.port)
				return fail(parser, "duplicate %s server "
				    "\"%s\": list each server once", key,
				    quoted(original, qi, sizeof(qi)));
		}
		grown = realloc(config->memcached,
		    (config->memcached_count + 1) * sizeof(*grown));
		if (grown == NULL)
			return fail(parser, "out of memory");
		config->memcached = grown;
		grown[config->memcached_count++] = server;
	}
	return true;
}

static bool
handle_memcached_prefix(struct parser *parser, const char *key,
    const char *value)
{
	char q[256];

	if (!od_ledger_prefix_valid(value))
		return fail(parser, "invalid %s \"%s\": expected 1 to %d "
		    "letters, digits, dots, hyphens or underscores", key,
		    quoted(value, q, sizeof(q)), OD_LEDGER_PREFIX_MAX);
	return store_string(parser, &parser->config->memcached_prefix, value);
}

static bool
handle_host_id(struct parser *parser, const char *key, const char *value)
{
	char q[256];

	if (!od_ledger_host_id_valid(value))
		return fail(parser, "invalid %s \"%s\": expected 1 to %d "
		    "letters, digits, dots, hyphens or underscores, such as "
		    "mx1.example.net", key, quoted(value, q, sizeof(q)),
		    OD_HOST_ID_MAX);
	return store_string(parser, &parser->config->host_id, value);
}

/* The millisecond settings: MemcachedTimeout and the others below. */
static bool
parse_millis_key(struct parser *parser, const char *key, const char *value,
    long long min, long long max, const char *range, long long *field)
{
	char q[256];
	long long millis;

	if (!od_parse_millis(value, max, &millis) || millis < min)
		return fail(parser, "invalid %s \"%s\": expected a duration "
		    "from %s with its unit (ms, s, m or h)", key,
		    quoted(value, q, sizeof(q)), range);
	*field = millis;
	return true;
}

static bool
handle_memcached_timeout(struct parser *parser, const char *key,
    const char *value)
{
	return parse_millis_key(parser, key, value, 10, 60000, "10ms to 1m",
	    &parser->config->memcached_timeout_ms);
}

static bool
handle_memcached_connect_timeout(struct parser *parser, const char *key,
    const char *value)
{
	return parse_millis_key(parser, key, value, 10, 60000, "10ms to 1m",
	    &parser->config->memcached_connect_timeout_ms);
}

static bool
handle_memcached_retry(struct parser *parser, const char *key,
    const char *value)
{
	return parse_millis_key(parser, key, value, 1000, 3600000,
	    "1s to 60m", &parser->config->memcached_retry_ms);
}

static bool
handle_ledger_poll(struct parser *parser, const char *key, const char *value)
{
	return parse_millis_key(parser, key, value, 100, 600000,
	    "100ms to 10m", &parser->config->ledger_poll_ms);
}

/*
 * Parses a domain in configuration syntax, NAME or .NAME for the names
 * below it, into its normal form.  what names the item in the error.
 */
static bool
parse_domain_entry(struct parser *parser, const char *what, const char *value,
    char normal[OD_DOMAIN_SIZE], bool *subdomains)
{
	const char *name = value, *error;
	char q[256];

	*subdomains = name[0] == '.';
	if (*subdomains)
		name++;
	if (!od_domain_normalize(name, normal, &error))
		return fail(parser, "invalid %s \"%s\": the name %s; expected "
		    "a host name such as example.test, or .example.test for "
		    "its subdomains", what, quoted(value, q, sizeof(q)), error);
	return true;
}

/*
 * MaxHeldMessages and MaxHeldBytes: "LIMIT" sets the global value,
 * "DOMAIN LIMIT" (or ".DOMAIN LIMIT" for subdomains) one domain's.
 */
static bool
handle_quota(struct parser *parser, const char *key, const char *value,
    bool bytes)
{
	struct od_config *config = parser->config;
	char copy[LINE_MAX_LEN + 1], domain[OD_DOMAIN_SIZE], q[256], what[64];
	const char *limit_text = value;
	struct od_domain_quota *quota = NULL;
	bool subdomains = false;
	long long limit;
	char *space;
	size_t i;

	od_strlcpy(copy, value, sizeof(copy));
	space = strpbrk(copy, " \t");
	if (space != NULL) {
		*space = '\0';
		limit_text = space + 1;
		while (*limit_text == ' ' || *limit_text == '\t')
			limit_text++;
		snprintf(what, sizeof(what), "%s domain", key);
		if (!parse_domain_entry(parser, what, copy, domain,
		    &subdomains))
			return false;
	}
	if (strpbrk(limit_text, " \t") != NULL ||
	    (bytes ? !od_parse_size(limit_text, &limit) :
	    !od_parse_size(limit_text, &limit) ||
	    strspn(limit_text, "0123456789") != strlen(limit_text)))
		return fail(parser, "invalid %s \"%s\": expected %s, or a "
		    "domain and %s, as in \"%s example.test %s\"; 0 means no "
		    "limit", key, quoted(value, q, sizeof(q)), bytes ?
		    "a size such as 500M (units k, M, G)" : "a whole number",
		    bytes ? "a size" : "a number", key, bytes ? "200M" : "5000");
	if (space == NULL) {
		unsigned *first = &parser->global_quota_line[bytes ? 1 : 0];

		if (*first != 0)
			return fail(parser, "duplicate %s without a domain: it "
			    "was already set on line %u; remove one of them",
			    key, *first);
		*first = parser->line;
		if (bytes)
			config->quota.max_bytes = limit;
		else
			config->quota.max_messages = limit;
		return true;
	}
	for (i = 0; i < config->quota_count; i++) {
		if (strcmp(config->quotas[i].domain, domain) == 0 &&
		    config->quotas[i].subdomains == subdomains)
			quota = &config->quotas[i];
	}
	if (quota == NULL) {
		struct od_domain_quota *grown = realloc(config->quotas,
		    (config->quota_count + 1) * sizeof(*grown));

		if (grown == NULL)
			return fail(parser, "out of memory");
		config->quotas = grown;
		quota = &grown[config->quota_count++];
		od_strlcpy(quota->domain, domain, sizeof(quota->domain));
		quota->subdomains = subdomains;
		quota->max_messages = -1;
		quota->max_bytes = -1;
		quota->lines[0] = quota->lines[1] = 0;
	}
	if ((bytes ? quota->max_bytes : quota->max_messages) != -1)
		return fail(parser, "duplicate %s for %s%s: it was already set "
		    "on line %u; remove one of them", key,
		    subdomains ? "." : "", domain, quota->lines[bytes ? 1 : 0]);
	quota->lines[bytes ? 1 : 0] = parser->line;
	if (bytes)
		quota->max_bytes = limit;
	else
		quota->max_messages = limit;
	return true;
}

static bool
handle_max_held_messages(struct parser *parser, const char *key,
    const char *value)
{
	return handle_quota(parser, key, value, false);
}

static bool
handle_max_held_bytes(struct parser *parser, const char *key,
    const char *value)
{
	return handle_quota(parser, key, value, true);
}

/* Adds one domain in configuration syntax: NAME, or .NAME for subdomains. */
static bool
add_domain(struct parser *parser, const char *key, const char *value)
{
	char normal[OD_DOMAIN_SIZE];
	bool subdomains;

	if (!parse_domain_entry(parser, key, value, normal, &subdomains))
		return false;
	if (!od_domain_set_add(parser->config->domains, normal, subdomains))
		return fail(parser, "out of memory");
	return true;
}

/*
 * Parses "DOMAIN NETWORK[,NETWORK...]" (spaces or commas between the
 * networks): the SMTP clients allowed to ETRN the domain.
 */
static bool
handle_etrn_allow(struct parser *parser, const char *key, const char *value)
{
	struct od_config *config = parser->config;
	struct od_etrn_allow *grown, *allow;
	char copy[LINE_MAX_LEN + 1], q[256], what[64];
	char *networks, *item, *save = NULL;

	od_strlcpy(copy, value, sizeof(copy));
	networks = copy + strcspn(copy, " \t");
	if (*networks == '\0')
		return fail(parser, "invalid %s \"%s\": expected a domain and "
		    "at least one client network, as in %s example.test "
		    "192.0.2.0/24,2001:db8::/32", key, quoted(value, q,
		    sizeof(q)), key);
	*networks++ = '\0';

	grown = realloc(config->etrn_allow, (config->etrn_allow_count + 1) *
	    sizeof(*grown));
	if (grown == NULL)
		return fail(parser, "out of memory");
	config->etrn_allow = grown;
	allow = &grown[config->etrn_allow_count];
	memset(allow, 0, sizeof(*allow));

	snprintf(what, sizeof(what), "%s domain", key);
	if (!parse_domain_entry(parser, what, copy, allow->domain,
	    &allow->subdomains))
		return false;

	for (item = strtok_r(networks, ", \t", &save); item != NULL;
	    item = strtok_r(NULL, ", \t", &save)) {
		struct od_network *more = realloc(allow->networks,
		    (allow->count + 1) * sizeof(*more));

		if (more == NULL) {
			free(allow->networks);
			return fail(parser, "out of memory");
		}
		allow->networks = more;
		if (!od_network_parse(item, &more[allow->count])) {
			free(allow->networks);
			return fail(parser, "invalid %s network \"%s\": expected "
			    "an IPv4 or IPv6 address with an optional /prefix, "
			    "such as 192.0.2.0/24 or 2001:db8::/32", key,
			    quoted(item, q, sizeof(q)));
		}
		allow->count++;
	}
	if (allow->count == 0)
		return fail(parser, "invalid %s \"%s\": expected at least one "
		    "client network after the domain", key,
		    quoted(value, q, sizeof(q)));
	config->etrn_allow_count++;
	return true;
}

static char *
trim(char *text)
{
	char *end;

	while (isspace((unsigned char)*text))
		text++;
	end = text + strlen(text);
	while (end > text && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return text;
}

/*
 * Cuts a comment off: '#' at the start of the line or after white space.
 * Paths may contain '#' elsewhere.
 */
static void
strip_comment(char *line)
{
	char *p;

	for (p = line; *p != '\0'; p++) {
		if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

/*
 * Reads a file line by line and calls handle_line for each line that has
 * text after comments are removed.  Errors name parser->file and the line.
 */
static bool
read_lines(struct parser *parser, const char *what,
    bool (*handle_line)(struct parser *, char *))
{
	FILE *stream;
	char *line = NULL;
	size_t capacity = 0;
	ssize_t len;
	bool ok = true;

	stream = fopen(parser->file, "r");
	if (stream == NULL)
		return fail(parser, "cannot open %s: %s", what,
		    strerror(errno));

	parser->line = 0;
	while ((len = getline(&line, &capacity, stream)) != -1) {
		char *text;

		parser->line++;
		if (memchr(line, '\0', (size_t)len) != NULL) {
			ok = fail(parser, "contains a NUL byte; is this a text "
			    "file?");
			break;
		}
		if (len > LINE_MAX_LEN) {
			ok = fail(parser, "line is longer than %d characters",
			    LINE_MAX_LEN);
			break;
		}
		strip_comment(line);
		text = trim(line);
		if (*text == '\0')
			continue;
		if (!handle_line(parser, text)) {
			ok = false;
			break;
		}
	}
	if (ok && ferror(stream)) {
		parser->line = 0;
		ok = fail(parser, "cannot read %s: %s", what, strerror(errno));
	}
	free(line);
	fclose(stream);
	return ok;
}

static bool
domain_file_line(struct parser *parser, char *text)
{
	char q[256];

	if (strpbrk(text, " \t") != NULL)
		return fail(parser, "invalid domain \"%s\": expected one "
		    "domain per line", quoted(text, q, sizeof(q)));
	return add_domain(parser, "domain", text);
}

static bool
handle_domain_file(struct parser *parser, const char *key, const char *value)
{
	struct parser inner = *parser;
	char q[256];
	FILE *stream;

	if (!check_absolute_path(parser, key, value))
		return false;
	/* Report an unreadable file at the line that names it. */
	stream = fopen(value, "r");
	if (stream == NULL)
		return fail(parser, "invalid %s \"%s\": cannot open it: %s",
		    key, quoted(value, q, sizeof(q)), strerror(errno));
	fclose(stream);

	/* Errors inside the domain file name that file and its line. */
	inner.file = value;
	return read_lines(&inner, "domain file", domain_file_line);
}

static const struct key keys[] = {
	{ "Socket", false, handle_socket, false },
	{ "SocketMode", false, handle_socket_mode, false },
	{ "SocketGroup", false, handle_socket_group, false },
	{ "User", false, handle_user, false },
	{ "PidFile", false, handle_pidfile, false },
	{ "Domain", true, add_domain, false },
	{ "DomainFile", true, handle_domain_file, false },
	{ "OnError", false, handle_on_error, false },
	{ "SocketMap", false, handle_socketmap, false },
	{ "ControlSocket", false, handle_control_socket, false },
	{ "SendmailPath", false, handle_sendmail_path, false },
	{ "SendmailConfig", false, handle_sendmail_config, false },
	{ "EtrnOther", false, handle_etrn_other, false },
	{ "MaxHoldAge", false, handle_max_hold_age, false },
	{ "EtrnMinInterval", false, handle_etrn_min_interval, false },
	{ "ReleaseRuns", false, handle_release_runs, false },
	{ "EtrnAllow", true, handle_etrn_allow, true },
	{ "Memcached", true, handle_memcached, false },
	{ "MemcachedPrefix", false, handle_memcached_prefix, false },
	{ "MemcachedTimeout", false, handle_memcached_timeout, false },
	{ "MemcachedConnectTimeout", false, handle_memcached_connect_timeout,
	    false },
	{ "MemcachedRetry", false, handle_memcached_retry, false },
	{ "HostId", false, handle_host_id, false },
	{ "LedgerPollInterval", false, handle_ledger_poll, false },
	{ "MaxHeldMessages", true, handle_max_held_messages, true },
	{ "MaxHeldBytes", true, handle_max_held_bytes, true },
};
#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

struct main_parser {
	struct parser parser;
	unsigned first_line[KEY_COUNT];
};

/* Edit distance between two words, ignoring case; capped at 9. */
static size_t
distance(const char *a, const char *b)
{
	size_t row[64], n = strlen(b), i, j;

	if (strlen(a) >= 64 || n >= 64)
		return 9;
	for (j = 0; j <= n; j++)
		row[j] = j;
	for (i = 1; a[i - 1] != '\0'; i++) {
		size_t diagonal = row[0];

		row[0] = i;
		for (j = 1; j <= n; j++) {
			size_t above = row[j], best;
			bool same = tolower((unsigned char)a[i - 1]) ==
			    tolower((unsigned char)b[j - 1]);

			best = diagonal + (same ? 0 : 1);
			if (above + 1 < best)
				best = above + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diagonal = above;
			row[j] = best;
		}
	}
	return row[n] < 9 ? row[n] : 9;
}

/* Returns the key a misspelt name most likely meant, or NULL. */
static const char *
nearest_key(const char *name)
{
	const char *best = NULL;
	size_t best_distance = 3, i;

	for (i = 0; i < KEY_COUNT; i++) {
		size_t d = distance(name, keys[i].name);

		if (d < best_distance) {
			best_distance = d;
			best = keys[i].name;
		}
	}
	return best;
}

static bool
config_line(struct parser *parser, char *text)
{
	struct main_parser *main_parser = (struct main_parser *)parser;
	char *value = text;
	char q[256];
	size_t i;

	while (*value != '\0' && !isspace((unsigned char)*value))
		value++;
	if (*value != '\0')
		*value++ = '\0';
	value = trim(value);

	for (i = 0; i < KEY_COUNT; i++) {
		if (strcasecmp(text, keys[i].name) == 0)
			break;
	}
	if (i == KEY_COUNT) {
		const char *nearest = nearest_key(text);

		if (nearest != NULL)
			return fail(parser, "unknown key \"%s\"; did you mean "
			    "%s? ondemand.conf(5) lists the valid keys",
			    quoted(text, q, sizeof(q)), nearest);
		return fail(parser, "unknown key \"%s\"; ondemand.conf(5) "
		    "lists the valid keys", quoted(text, q, sizeof(q)));
	}
	if (*value == '\0')
		return fail(parser, "%s needs a value", keys[i].name);
	if (!keys[i].several_values && strpbrk(value, " \t") != NULL)
		return fail(parser, "invalid %s \"%s\": expected a single "
		    "value without spaces", keys[i].name,
		    quoted(value, q, sizeof(q)));
	if (!keys[i].repeatable && main_parser->first_line[i] != 0)
		return fail(parser, "duplicate %s: it was already set on line "
		    "%u; remove one of them", keys[i].name,
		    main_parser->first_line[i]);
	main_parser->first_line[i] = parser->line;
	return keys[i].handle(parser, keys[i].name, value);
}

static bool
set_defaults(struct od_config *config)
{
	config->socket_mode = OD_DEFAULT_SOCKET_MODE;
	config->on_error = OD_ON_ERROR_HOLD;
	config->etrn_other = OD_ETRN_OTHER_PASS;
	config->max_hold_age = OD_DEFAULT_MAX_HOLD_AGE;
	config->release_runs = OD_DEFAULT_RELEASE_RUNS;
	config->memcached_timeout_ms = OD_DEFAULT_MEMCACHED_TIMEOUT_MS;
	config->memcached_connect_timeout_ms =
	    OD_DEFAULT_MEMCACHED_CONNECT_TIMEOUT_MS;
	config->memcached_retry_ms = OD_DEFAULT_MEMCACHED_RETRY_MS;
	config->ledger_poll_ms = OD_DEFAULT_LEDGER_POLL_MS;
	config->memcached_prefix = strdup(OD_DEFAULT_MEMCACHED_PREFIX);
	config->socket = strdup(OD_DEFAULT_SOCKET);
	config->pidfile = strdup(OD_DEFAULT_PIDFILE);
	config->sendmail_path = strdup(DEFAULT_SENDMAIL_PATH);
	config->domains = od_domain_set_new();
	return config->socket != NULL && config->pidfile != NULL &&
	    config->sendmail_path != NULL && config->domains != NULL &&
	    config->memcached_prefix != NULL;
}

/* With a ledger and no HostId, the host name is the ID; it must be valid. */
static bool
default_host_id(struct parser *parser)
{
	struct od_config *config = parser->config;
	char name[256], q[256];

	if (config->memcached_count == 0 || config->host_id != NULL)
		return true;
	parser->line = 0;
	if (gethostname(name, sizeof(name)) != 0)
		return fail(parser, "cannot read the host name for the ledger's "
		    "host ID: %s; set HostId", strerror(errno));
	name[sizeof(name) - 1] = '\0';
	if (!od_ledger_host_id_valid(name))
		return fail(parser, "the host name \"%s\" is not a valid "
		    "ledger host ID (1 to %d letters, digits, dots, hyphens or "
		    "underscores); set HostId", quoted(name, q, sizeof(q)),
		    OD_HOST_ID_MAX);
	return store_string(parser, &config->host_id, name);
}

/*
 * A quota for a domain that no Domain entry holds mail for would never
 * apply, which hides a misspelt name, so it is an error.  A ".PARENT"
 * quota needs an entry at or below PARENT, or one that covers PARENT.
 */
static bool
check_quota_domains(struct parser *parser)
{
	const struct od_config *config = parser->config;
	size_t i;

	for (i = 0; i < config->quota_count; i++) {
		const struct od_domain_quota *quota = &config->quotas[i];
		bool bytes = quota->lines[0] == 0;

		if (od_domain_set_match(config->domains, quota->domain) ||
		    (quota->subdomains && od_domain_set_has_within(
		    config->domains, quota->domain)))
			continue;
		parser->line = quota->lines[bytes ? 1 : 0];
		return fail(parser, "%s for %s%s: no Domain or DomainFile "
		    "entry holds mail for it; correct the name, add the "
		    "domain, or remove the line",
		    bytes ? "MaxHeldBytes" : "MaxHeldMessages",
		    quota->subdomains ? "." : "", quota->domain);
	}
	return true;
}

struct od_config *
od_config_load(const char *path, char *error, size_t error_size)
{
	struct main_parser main_parser;
	struct od_config *config;

	memset(&main_parser, 0, sizeof(main_parser));
	main_parser.parser.file = path;
	main_parser.parser.error = error;
	main_parser.parser.error_size = error_size;

	config = calloc(1, sizeof(*config));
	if (config == NULL || !set_defaults(config) ||
	    (config->path = strdup(path)) == NULL) {
		fail(&main_parser.parser, "out of memory");
		od_config_free(config);
		return NULL;
	}
	main_parser.parser.config = config;

	if (!read_lines(&main_parser.parser, "configuration file",
	    config_line) || !default_host_id(&main_parser.parser)) {
		od_config_free(config);
		return NULL;
	}
	od_domain_set_finish(config->domains);
	if (!check_quota_domains(&main_parser.parser)) {
		od_config_free(config);
		return NULL;
	}
	return config;
}

void
od_config_free(struct od_config *config)
{
	if (config == NULL)
		return;
	free(config->path);
	free(config->socket);
	free(config->socket_group);
	free(config->user);
	free(config->pidfile);
	od_domain_set_free(config->domains);
	free(config->socketmap);
	free(config->control_socket);
	free(config->sendmail_path);
	free(config->sendmail_config);
	for (size_t i = 0; i < config->etrn_allow_count; i++)
		free(config->etrn_allow[i].networks);
	free(config->etrn_allow);
	free(config->memcached);
	free(config->memcached_prefix);
	free(config->host_id);
	free(config->quotas);
	free(config);
}

struct od_quota
od_config_quota(const struct od_config *config, const char *domain)
{
	struct od_quota quota = config->quota;
	const struct od_domain_quota *exact = NULL, *parent = NULL;
	size_t i;

	for (i = 0; i < config->quota_count; i++) {
		const struct od_domain_quota *q = &config->quotas[i];

		if (!q->subdomains && strcmp(q->domain, domain) == 0)
			exact = q;
		else if (q->subdomains && od_domain_within(domain, q->domain) &&
		    strcmp(q->domain, domain) != 0 && (parent == NULL ||
		    strlen(q->domain) > strlen(parent->domain)))
			parent = q;
	}
	/* The exact entry wins field by field, then the parent entry. */
	if (parent != NULL && parent->max_messages >= 0)
		quota.max_messages = parent->max_messages;
	if (parent != NULL && parent->max_bytes >= 0)
		quota.max_bytes = parent->max_bytes;
	if (exact != NULL && exact->max_messages >= 0)
		quota.max_messages = exact->max_messages;
	if (exact != NULL && exact->max_bytes >= 0)
		quota.max_bytes = exact->max_bytes;
	return quota;
}
