/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reading sendmail.cf and replacing it safely: a backup that never
 * overwrites an earlier one, a temporary file in the same directory with
 * the original's mode, owner and group, and an atomic rename.
 *
 * Functions return a sysexits(3) code and, on failure, a message in error
 * that names the file and the cause.
 */
#ifndef CF_FILE_H
#define CF_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/* The largest file accepted; real sendmail.cf files are below 200 kB. */
#define CF_FILE_MAX (16 * 1024 * 1024)

/* The backup name is PATH CF_BACKUP_SUFFIX, then with ".1", ".2", ... */
#define CF_BACKUP_SUFFIX ".ondemand-cf.bak"

/*
 * Reads path into a new buffer.  Symbolic links are rejected, because
 * renaming a new file over a link would replace the link itself.
 */
int cf_file_read(const char *path, char **buf, size_t *len, struct stat *st,
    char *error, size_t error_size);

/*
 * Writes buf to a new temporary file in the directory of path, with the
 * mode, owner and group of st, and stores its name in *temp.  On failure
 * nothing is left behind.
 */
int cf_file_write_temp(const char *path, const char *buf, size_t len,
    const struct stat *st, char **temp, char *error, size_t error_size);

/* Writes buf to a new mode 0600 file under $TMPDIR (or /tmp). */
int cf_file_write_scratch(const char *buf, size_t len, char **temp,
    char *error, size_t error_size);

/*
 * Writes buf as the backup of path: the first of PATH.ondemand-cf.bak,
 * PATH.ondemand-cf.bak.1, ... that does not exist yet.
 */
int cf_file_write_backup(const char *path, const char *buf, size_t len,
    const struct stat *st, char **backup, char *error, size_t error_size);

/*
 * Renames temp to path after checking that path is still the file that
 * was read (same inode, size and modification time), then syncs the
 * directory.
 */
int cf_file_install(const char *temp, const char *path,
    const struct stat *read_st, char *error, size_t error_size);

#endif
