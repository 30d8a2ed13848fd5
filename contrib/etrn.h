/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ETRN (RFC 1985) rules for ondemand-etrn that need no network: checking
 * command line arguments, turning a server's reply into an exit status and
 * a description, and escaping text for output.
 */
#ifndef ONDEMAND_ETRN_H
#define ONDEMAND_ETRN_H

#include <stdbool.h>
#include <stddef.h>
#include <sysexits.h>

#include "smtp_reply.h"

/* Maximum length of a domain name in octets, without a trailing dot. */
#define ETRN_DOMAIN_MAX 253
/* Maximum length of one label of a domain name in octets. */
#define ETRN_LABEL_MAX 63

/* Buffer size that fits every message these functions write. */
#define ETRN_MESSAGE_SIZE 512

/*
 * Exit statuses of ondemand-etrn.  They are ordered by severity: when
 * domains get different replies, the program exits with the largest status.
 * Statuses from ETRN_EXIT_CONNECT on end the session, so at most one of
 * them occurs in a run.
 */
enum etrn_exit_status {
	ETRN_EXIT_STARTED = 0,		/* 250, 252, 253: delivery started */
	ETRN_EXIT_NOTHING_WAITING = 1,	/* 251: no messages waiting */
	ETRN_EXIT_TEMPFAIL = 2,		/* 458 or another 4xx */
	ETRN_EXIT_REJECTED = 3,		/* 459 or 5xx */
	ETRN_EXIT_CONNECT = 4,		/* no connection, or it was closed */
	ETRN_EXIT_TIMEOUT = 5,		/* a step took longer than -t */
	ETRN_EXIT_PROTOCOL = 6,		/* the server broke the SMTP syntax */
	ETRN_EXIT_USAGE = EX_USAGE,	/* invalid command line */
	ETRN_EXIT_OSERR = EX_OSERR	/* out of memory, no socket */
};

/*
 * Checks one ETRN argument as given on the command line: "example.test",
 * "@example.test" (the domain and its subdomains) or "#queuename".
 * A domain has at most 253 octets without one optional trailing dot, and
 * labels of 1 to 63 letters, digits and hyphens that neither start nor end
 * with a hyphen.  A queue name has 1 to 253 letters, digits, hyphens,
 * underscores and dots.  On failure returns false and writes a message
 * naming the argument, the problem and the fix into message.
 */
bool etrn_argument_check(const char *argument, char *message, size_t size);

/*
 * Checks the name for EHLO and HELO: a domain name as above, or an address
 * literal such as "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 section
 * 4.1.3).  On failure returns false and writes a message.
 */
bool etrn_helo_name_check(const char *name, char *message, size_t size);

/*
 * Classifies a reply to ETRN.  Returns the exit status for it and writes a
 * plain English description, such as "delivery started", into description.
 */
enum etrn_exit_status etrn_classify_reply(const struct smtp_reply *reply,
    char *description, size_t size);

/*
 * Copies at most max_input octets of input into out for printing: printable
 * ASCII stays, a backslash becomes "\\" and every other octet "\xNN", and
 * "..." marks input cut short.  out is always NUL-terminated, and is
 * truncated if size is too small.
 */
void etrn_escape_text(char *out, size_t size, const char *input,
    size_t length, size_t max_input);

#endif
