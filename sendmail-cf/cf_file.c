/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Safe reading and replacing of sendmail.cf; see cf_file.h.
 *
 * BUGS: extended attributes and ACLs of the original file are not copied
 * to the new one.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cf_file.h"
#include "cf_internal.h"

int
cf_file_read(const char *path, char **buf, size_t *len, struct stat *st,
    char *error, size_t error_size)
{
	char *data = NULL, target[4096];
	size_t done = 0;
	ssize_t n;
	int fd;

	if (lstat(path, st) != 0) {
		cf_set_error(error, error_size, "cannot read %s: %s", path,
		    strerror(errno));
		return EX_NOINPUT;
	}
	if (S_ISLNK(st->st_mode)) {
		n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		cf_set_error(error, error_size, "%s is a symbolic link to %s; "
		    "ondemand-cf does not follow links, because replacing the "
		    "file would replace the link: run it on the file the link "
		    "points to", path, n < 0 ? "(unreadable)" : target);
		return EX_USAGE;
	}
	if (!S_ISREG(st->st_mode)) {
		cf_set_error(error, error_size, "%s is not a regular file", path);
		return EX_NOINPUT;
	}
	if (st->st_size > CF_FILE_MAX) {
		cf_set_error(error, error_size, "%s is %lld bytes, more than any "
		    "sendmail.cf (at most %d bytes are accepted): check the "
		    "file name", path, (long long)st->st_size, CF_FILE_MAX);
		return EX_DATAERR;
	}

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		cf_set_error(error, error_size, "cannot read %s: %s", path,
		    strerror(errno));
		return EX_NOINPUT;
	}
	data = malloc((size_t)st->st_size + 1);
	if (data == NULL) {
		close(fd);
		cf_set_error(error, error_size, "out of memory reading %s", path);
		return EX_OSERR;
	}
	/* Read one byte past the size seen by lstat to notice growth. */
	while (done <= (size_t)st->st_size) {
		n = read(fd, data + done, (size_t)st->st_size + 1 - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cf_set_error(error, error_size, "cannot read %s: %s",
			    path, strerror(errno));
			free(data);
			close(fd);
			return EX_IOERR;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	if (done != (size_t)st->st_size) {
		cf_set_error(error, error_size, "%s changed while it was read; "
		    "run ondemand-cf again", path);
		free(data);
		return EX_TEMPFAIL;
	}
	data[done] = '\0';
	*buf = data;
	*len = done;
	return EX_OK;
}

/* Writes all of buf, then syncs; returns 0 or an errno value. */
static int
write_all(int fd, const char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		done += (size_t)n;
	}
	return fsync(fd) == 0 ? 0 : errno;
}

/*
 * Gives fd the mode, owner and group of st.  fchown is skipped when the
 * owner and group already match, so that a user can edit their own copy.
 */
static int
copy_attributes(int fd, const struct stat *st)
{
	struct stat now;

	if (fstat(fd, &now) != 0)
		return errno;
	if ((now.st_uid != st->st_uid || now.st_gid != st->st_gid) &&
	    fchown(fd, st->st_uid, st->st_gid) != 0)
		return errno;
	if (fchmod(fd, st->st_mode & 07777) != 0)
		return errno;
	return 0;
}

/* Returns a new string with the directory part of path. */
static char *
directory_of(const char *path)
{
	char *copy = strdup(path), *dir;

	if (copy == NULL)
		return NULL;
	dir = strdup(dirname(copy));
	free(copy);
	return dir;
}

static int
write_new_file(int fd, const char *name, const char *buf, size_t len,
    const struct stat *st, const char *what, const char *path, char *error,
    size_t error_size)
{
	int err = write_all(fd, buf, len);

	if (err == 0 && st != NULL) {
		err = copy_attributes(fd, st);
		if (err != 0) {
			cf_set_error(error, error_size, "cannot give %s the owner "
			    "and mode of %s: %s; run ondemand-cf as root",
			    name, path, strerror(err));
			close(fd);
			unlink(name);
			return EX_NOPERM;
		}
	}
	if (close(fd) != 0 && err == 0)
		err = errno;
	if (err != 0) {
		cf_set_error(error, error_size, "writing %s %s failed: %s; %s is "
		    "unchanged", what, name, strerror(err), path);
		unlink(name);
		return EX_IOERR;
	}
	return EX_OK;
}

int
cf_file_write_temp(const char *path, const char *buf, size_t len,
    const struct stat *st, char **temp, char *error, size_t error_size)
{
	char *dir = directory_of(path), *base, *name;
	size_t size;
	int fd, status;

	if (dir == NULL)
		goto nomem;
	base = strrchr(path, '/');
	base = base == NULL ? (char *)path : base + 1;
	size = strlen(dir) + strlen(base) + 32;
	name = malloc(size);
	if (name == NULL) {
		free(dir);
		goto nomem;
	}
	/* A dot file, so that a glob such as *.cf does not pick it up. */
	snprintf(name, size, "%s/.%s.ondemand-cf.XXXXXX", dir, base);
	free(dir);
	fd = mkstemp(name);
	if (fd < 0) {
		cf_set_error(error, error_size, "cannot create a temporary file "
		    "next to %s: %s; %s is unchanged", path, strerror(errno),
		    path);
		free(name);
		return EX_CANTCREAT;
	}
	status = write_new_file(fd, name, buf, len, st, "the new file",
	    path, error, error_size);
	if (status != EX_OK) {
		free(name);
		return status;
	}
	*temp = name;
	return EX_OK;

nomem:
	cf_set_error(error, error_size, "out of memory");
	return EX_OSERR;
}

int
cf_file_write_scratch(const char *buf, size_t len, char **temp, char *error,
    size_t error_size)
{
	const char *tmpdir = getenv("TMPDIR");
	size_t size;
	char *name;
	int fd, status;

	if (tmpdir == NULL || tmpdir[0] != '/')
		tmpdir = "/tmp";
	size = strlen(tmpdir) + 32;
	name = malloc(size);
	if (name == NULL) {
		cf_set_error(error, error_size, "out of memory");
		return EX_OSERR;
	}
	snprintf(name, size, "%s/ondemand-cf.XXXXXX", tmpdir);
	fd = mkstemp(name);
	if (fd < 0) {
		cf_set_error(error, error_size, "cannot create a temporary file "
		    "in %s: %s; set TMPDIR to a writable directory", tmpdir,
		    strerror(errno));
		free(name);
		return EX_CANTCREAT;
	}
	status = write_new_file(fd, name, buf, len, NULL, "the temporary file",
	    "the input file", error, error_size);
	if (status != EX_OK) {
		free(name);
		return status;
	}
	*temp = name;
	return EX_OK;
}

int
cf_file_write_backup(const char *path, const char *buf, size_t len,
    const struct stat *st, char **backup, char *error, size_t error_size)
{
	size_t size = strlen(path) + sizeof(CF_BACKUP_SUFFIX) + 16;
	char *name = malloc(size);
	int fd = -1, status;

	if (name == NULL) {
		cf_set_error(error, error_size, "out of memory");
		return EX_OSERR;
	}
	for (int i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(name, size, "%s%s", path, CF_BACKUP_SUFFIX);
		else
			snprintf(name, size, "%s%s.%d", path, CF_BACKUP_SUFFIX,
			    i);
		/* O_EXCL: an earlier backup is never overwritten. */
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		cf_set_error(error, error_size, "cannot create the backup %s: "
		    "%s; %s is unchanged", name, errno == EEXIST ?
		    "1000 backups exist already, remove old ones" :
		    strerror(errno), path);
		free(name);
		return EX_CANTCREAT;
	}
	status = write_new_file(fd, name, buf, len, st, "the backup", path,
	    error, error_size);
	if (status != EX_OK) {
		free(name);
		return status;
	}
	*backup = name;
	return EX_OK;
}

int
cf_file_install(const char *temp, const char *path, const struct stat *read_st,
    char *error, size_t error_size)
{
	struct stat now;
	char *dir;
	int fd;

	if (lstat(path, &now) != 0 || now.st_ino != read_st->st_ino ||
	    now.st_dev != read_st->st_dev || now.st_size != read_st->st_size ||
	    now.st_mtim.tv_sec != read_st->st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != read_st->st_mtim.tv_nsec) {
		cf_set_error(error, error_size, "%s changed while ondemand-cf "
		    "ran; it was left as it is now: run ondemand-cf again",
		    path);
		return EX_TEMPFAIL;
	}
	if (rename(temp, path) != 0) {
		cf_set_error(error, error_size, "cannot rename %s to %s: %s; %s "
		    "is unchanged", temp, path, strerror(errno), path);
		return EX_CANTCREAT;
	}
	/* Make the rename itself durable. */
	dir = directory_of(path);
	if (dir != NULL) {
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
		free(dir);
	}
	return EX_OK;
}
