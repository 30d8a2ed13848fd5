/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Logging for the daemon: syslog (facility mail) once the program runs in
 * the background, standard error before that and in debug mode.
 */
#ifndef OD_LOG_H
#define OD_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Opens syslog with ident; to_stderr copies every line to standard error. */
void od_log_open(const char *ident, bool to_stderr, int debug_level);

/* Stops copying lines to standard error (after daemonising). */
void od_log_stderr(bool to_stderr);

/* Logs at a syslog priority. */
void od_log(int priority, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs to standard error when the debug level is at least level. */
void od_debug(int level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

int od_log_debug_level(void);

/* Returns whether log lines are copied to standard error. */
bool od_log_to_stderr(void);

#endif
