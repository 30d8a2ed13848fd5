/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Logging to syslog (facility mail) and, while the program is attached to a
 * terminal or in debug mode, to standard error.  Safe to call from any
 * thread: syslog(3) and stdio lock internally.
 */

#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "od_log.h"

static atomic_bool log_to_stderr;
static atomic_int log_debug_level;
static const char *log_ident = "ondemand";

void
od_log_open(const char *ident, bool to_stderr, int debug_level)
{
	log_ident = ident;
	atomic_store(&log_to_stderr, to_stderr);
	atomic_store(&log_debug_level, debug_level);
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
od_log_stderr(bool to_stderr)
{
	atomic_store(&log_to_stderr, to_stderr);
}

bool
od_log_to_stderr(void)
{
	return atomic_load(&log_to_stderr);
}

int
od_log_debug_level(void)
{
	return atomic_load(&log_debug_level);
}

static void
log_stderr_line(const char *format, va_list args)
    __attribute__((format(printf, 1, 0)));

static void
log_stderr_line(const char *format, va_list args)
{
	char line[2048];

	vsnprintf(line, sizeof(line), format, args);
	fprintf(stderr, "%s: %s\n", log_ident, line);
}

void
od_log(int priority, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsyslog(priority, format, args);
	va_end(args);

	if (atomic_load(&log_to_stderr) || atomic_load(&log_debug_level) > 0) {
		va_start(args, format);
		log_stderr_line(format, args);
		va_end(args);
	}
}

void
od_debug(int level, const char *format, ...)
{
	va_list args;

	if (atomic_load(&log_debug_level) < level)
		return;
	va_start(args, format);
	log_stderr_line(format, args);
	va_end(args);
}
