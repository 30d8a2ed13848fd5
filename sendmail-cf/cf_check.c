/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Checks of the input text and of the options, before anything is patched;
 * see cf_patch.h.
 */

#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cf_internal.h"
#include "cf_patch.h"

enum cf_status
cf_check_text(const char *buf, size_t len, char *error, size_t error_size)
{
	size_t control = 0;
	const char *nul;

	if (len == 0) {
		cf_set_error(error, error_size, "the file is empty");
		return CF_INVALID;
	}
	nul = memchr(buf, '\0', len);
	if (nul != NULL) {
		cf_set_error(error, error_size, "the file contains binary data "
		    "(a NUL byte at offset %zu); a sendmail.cf is text",
		    (size_t)(nul - buf));
		return CF_INVALID;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' &&
		    c != '\f' && c != '\v') || c == 0x7f)
			control++;
	}
	/* A few stray control characters can be in comments, but more means
	 * binary data.  NOTE: the threshold is a guess, not a measurement. */
	if (control > 8 + len / 100) {
		cf_set_error(error, error_size, "the file contains binary data "
		    "(%zu control characters); a sendmail.cf is text",
		    control);
		return CF_INVALID;
	}
	return CF_OK;
}

/* Checks a milter or socket map specification: unix:/PATH, local:/PATH,
 * /PATH, inet:PORT@HOST or inet6:PORT@HOST, with nothing that would end the
 * X or K line field early. */
static bool
check_socket(const char *what, const char *spec, char *error, size_t size)
{
	if (spec == NULL || spec[0] == '\0') {
		cf_set_error(error, size, "the %s is empty: give a socket such "
		    "as unix:/run/ondemand/milter.sock", what);
		return false;
	}
	for (const char *p = spec; *p != '\0'; p++) {
		if (isspace((unsigned char)*p) || *p == ',' || *p == '"' ||
		    !isprint((unsigned char)*p)) {
			cf_set_error(error, size, "invalid %s \"%s\": it must "
			    "not contain white space, commas, quotes or "
			    "control characters", what, spec);
			return false;
		}
	}
	if (strncmp(spec, "unix:/", 6) == 0 ||
	    strncmp(spec, "local:/", 7) == 0 || spec[0] == '/')
		return true;
	if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0) {
		const char *port = strchr(spec, ':') + 1;
		const char *at = strchr(port, '@');
		size_t digits = strspn(port, "0123456789");

		if (digits > 0 && digits <= 5 && at == port + digits &&
		    at[1] != '\0' && atoi(port) >= 1 && atoi(port) <= 65535)
			return true;
	}
	cf_set_error(error, size, "invalid %s \"%s\": expected unix:/PATH, "
	    "inet:PORT@HOST or inet6:PORT@HOST", what, spec);
	return false;
}

/* Checks a sendmail time value: digits and an optional unit s, m, h, d or w. */
static bool
is_time(const char *text, size_t len)
{
	size_t digits = 0;

	while (digits < len && isdigit((unsigned char)text[digits]))
		digits++;
	if (digits == 0 || digits > 6)
		return false;
	return digits == len ||
	    (digits + 1 == len && strchr("smhdw", text[digits]) != NULL);
}

/* Checks a milter T= value such as "S:10s;R:10s;E:5m". */
static bool
check_milter_timeouts(const char *value, char *error, size_t size)
{
	const char *p = value;

	while (*p != '\0') {
		const char *end = strchr(p, ';');
		size_t len = end == NULL ? strlen(p) : (size_t)(end - p);

		if (len < 3 || strchr("CSRE", p[0]) == NULL || p[1] != ':' ||
		    !is_time(p + 2, len - 2)) {
			cf_set_error(error, size, "invalid milter timeouts "
			    "\"%s\": expected a list such as S:10s;R:10s;E:5m "
			    "(C connect, S send, R read, E overall end of "
			    "message)", value);
			return false;
		}
		p += len;
		if (*p == ';')
			p++;
	}
	return true;
}

enum cf_status
cf_check_options(const struct cf_options *options, char *error,
    size_t error_size)
{
	if (!check_socket("milter socket", options->milter_socket, error,
	    error_size))
		return CF_INVALID;
	if (options->milter_timeouts != NULL &&
	    !check_milter_timeouts(options->milter_timeouts, error,
	    error_size))
		return CF_INVALID;
	if (options->socketmap != NULL &&
	    !check_socket("socket map socket", options->socketmap, error,
	    error_size))
		return CF_INVALID;
	if (options->socketmap_timeout != NULL &&
	    !is_time(options->socketmap_timeout,
	    strlen(options->socketmap_timeout))) {
		cf_set_error(error, error_size, "invalid socket map timeout "
		    "\"%s\": expected a number with an optional unit s, m or "
		    "h, such as 10s", options->socketmap_timeout);
		return CF_INVALID;
	}
	return CF_OK;
}
