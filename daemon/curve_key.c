/* SPDX-License-Identifier: MIT */
/*
 * CURVE key files (curve_key.h): the one reader of the format, shared by
 * rpmsd and rpmsctl, and the rules for a secret key and an allowlist.
 * Decoding is libzmq's (zmq_z85_decode), the same code that will use the
 * key.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "curve_key.h"
#include "file.h"

static void curve_key_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void curve_key_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

bool curve_key_valid(const char *text)
{
	uint8_t raw[CURVE_KEY_LEN];
	bool ok = strlen(text) == CURVE_KEY_Z85_LEN && zmq_z85_decode(raw, text);

	explicit_bzero(raw, sizeof(raw));
	return ok;
}

/*
 * The Z85 key at the start of @line (after blanks), up to a blank or the
 * end; '#' starts a comment. @return 1 with a key (its text NUL-terminated
 * at *@text), 0 for a blank or comment line, -EINVAL for anything else
 */
static int curve_key_line(char *line, uint8_t key[CURVE_KEY_LEN], char **text)
{
	char *p = line, *end;

	while (isspace((unsigned char)*p)) {
		p++;
	}
	if (!*p || *p == '#') {
		return 0;
	}
	for (end = p; *end && !isspace((unsigned char)*end); end++) {
		;
	}
	if (end - p != CURVE_KEY_Z85_LEN) {
		return -EINVAL;
	}
	*end = '\0';
	*text = p;
	return zmq_z85_decode(key, p) ? 1 : -EINVAL;
}

int curve_key_next(FILE *f, int *lineno, char *z85, uint8_t *key)
{
	uint8_t raw[CURVE_KEY_LEN];
	char *line = NULL, *text = NULL;
	size_t cap = 0;
	int k = 0;

	errno = 0;
	while (k == 0 && getline(&line, &cap, f) >= 0) {
		(*lineno)++;
		k = curve_key_line(line, raw, &text);
	}
	if (k == 0 && !feof(f)) {
		k = errno == ENOMEM ? -ENOMEM : -EIO;
	}
	if (k == 1) {
		if (z85) {
			memcpy(z85, text, CURVE_KEY_Z85_LEN + 1);
		}
		if (key) {
			memcpy(key, raw, sizeof(raw));
		}
	}
	/* a secret key's file passes through here */
	explicit_bzero(raw, sizeof(raw));
	if (line) {
		explicit_bzero(line, cap);
	}
	free(line);
	return k;
}

bool curve_key_exposed(FILE *f, unsigned *mode)
{
	struct stat st;

	if (fstat(fileno(f), &st) != 0) {
		return false;
	}
	*mode = (unsigned)(st.st_mode & 07777);
	return (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
}

/* "anyone", "its group" or "its group and anyone": who besides the owner may write. */
static const char *curve_key_writers(mode_t mode)
{
	if ((mode & S_IWGRP) && (mode & S_IWOTH)) {
		return "its group and anyone";
	}
	return (mode & S_IWOTH) ? "anyone" : "its group";
}

/*
 * Whoever may write the allowlist, or rename anything on the way to it,
 * may let themselves in. As OpenSSH's StrictModes does for authorized_keys:
 * every component of @path's real path (symbolic links resolved) must
 * belong to root or to the daemon's user; a directory on the way may be
 * writable by others only when it is sticky (others then cannot rename or
 * remove what they do not own, as in /tmp); @path itself, a file or the
 * allowlist directory, must be writable by its owner only (sticky or not,
 * anyone who may write a directory may add a key file to it).
 */
static int curve_key_trusted(const char *name, const char *path, char *err, size_t errlen)
{
	char real[PATH_MAX], part[PATH_MAX];
	uid_t me = geteuid();
	struct stat st;
	size_t i, len;
	bool last;

	if (!realpath(path, real)) {
		curve_key_errf(err, errlen, "%s: %s: %s", name, path, strerror(errno));
		return -errno;
	}
	len = strlen(real);
	for (i = 1; i <= len; i++) {
		if (i < len && real[i] != '/') {
			continue;
		}
		last = i == len;
		memcpy(part, real, i);
		part[i] = '\0';
		if (stat(part, &st) < 0) {
			curve_key_errf(err, errlen, "%s: %s: %s: %s", name, path, part,
				       strerror(errno));
			return -errno;
		}
		if (st.st_uid != 0 && st.st_uid != me) {
			curve_key_errf(err, errlen, "%s: %s: %s%s is owned by uid %u (allowed: root "
				       "or the daemon's user, uid %u: whoever owns it can change the "
				       "list of clients)", name, path, last ? "" : "the directory ",
				       part, (unsigned)st.st_uid, (unsigned)me);
			return -EPERM;
		}
		if (!(st.st_mode & (S_IWGRP | S_IWOTH))) {
			continue;
		}
		if (last) {
			curve_key_errf(err, errlen, "%s: %s: writable by %s (mode %04o; allowed: "
				       "writable by its owner only, e.g. chmod go-w: whoever may "
				       "write it may let themselves in)", name, path,
				       curve_key_writers(st.st_mode), (unsigned)(st.st_mode & 07777));
			return -EPERM;
		}
		if (!(st.st_mode & S_ISVTX)) {
			curve_key_errf(err, errlen, "%s: %s: the directory %s on its way is writable "
				       "by %s (mode %04o; allowed: writable by its owner only, or "
				       "sticky like /tmp: whoever may write it can put another list in "
				       "its place)", name, path, part, curve_key_writers(st.st_mode),
				       (unsigned)(st.st_mode & 07777));
			return -EPERM;
		}
	}
	return 0;
}

/* Append the keys of one file to @keys (NULL: only check and count). */
static int curve_key_read_file(const char *name, const char *path,
			       uint8_t (*keys)[CURVE_KEY_LEN], size_t *n, char *err, size_t errlen)
{
	uint8_t key[CURVE_KEY_LEN];
	int lineno = 0, rc = 0, k;
	FILE *f;

	f = file_open_regular(path, &rc);
	if (!f) {
		curve_key_errf(err, errlen, "%s: %s: cannot open: %s", name, path, strerror(-rc));
		return rc;
	}
	/* whoever may write the list may let themselves in */
	rc = curve_key_trusted(name, path, err, errlen);
	if (rc < 0) {
		goto out;
	}
	while ((k = curve_key_next(f, &lineno, NULL, key)) > 0) {
		if (*n >= CURVE_KEY_ALLOWED_MAX) {
			curve_key_errf(err, errlen, "%s: %s:%d: more than %d keys", name, path, lineno,
				       CURVE_KEY_ALLOWED_MAX);
			rc = -E2BIG;
			goto out;
		}
		if (keys) {
			memcpy(keys[*n], key, sizeof(key));
		}
		(*n)++;
	}
	if (k == -EINVAL) {
		curve_key_errf(err, errlen, "%s: %s:%d: not a Z85 public key (allowed: 40 Z85 "
			       "characters as rpmsctl keygen prints them, then an optional name; "
			       "'#' comments)", name, path, lineno);
		rc = -EINVAL;
	} else if (k < 0) {
		curve_key_errf(err, errlen, "%s: %s: cannot read", name, path);
		rc = k;
	}
out:
	fclose(f);
	return rc;
}

int curve_key_read_allowed(const char *name, const char *path, uint8_t (*keys)[CURVE_KEY_LEN],
			   size_t *n, char *err, size_t errlen)
{
	char file[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int rc = 0;

	*n = 0;
	if (stat(path, &st) < 0) {
		rc = -errno;
		curve_key_errf(err, errlen, "%s: %s: %s", name, path, strerror(errno));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = curve_key_read_file(name, path, keys, n, err, errlen);
	} else {
		/* A key dropped into a directory others may write would be let in. */
		rc = curve_key_trusted(name, path, err, errlen);
		if (rc < 0) {
			return rc;
		}
		dir = opendir(path);
		if (!dir) {
			rc = -errno;
			curve_key_errf(err, errlen, "%s: %s: %s", name, path, strerror(errno));
			return rc;
		}
		while (rc == 0 && (de = readdir(dir))) {
			if (de->d_name[0] == '.') {
				continue;
			}
			if (snprintf(file, sizeof(file), "%s/%s", path, de->d_name) >= (int)sizeof(file)) {
				continue;
			}
			if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
				rc = curve_key_read_file(name, file, keys, n, err, errlen);
			}
		}
		closedir(dir);
	}
	if (rc == 0 && *n == 0) {
		curve_key_errf(err, errlen, "%s: %s: no client key (allowed: one Z85 public key per "
			       "line)", name, path);
		rc = -EINVAL;
	}
	return rc;
}

int curve_key_read_secret(const char *name, const char *path, char z85[CURVE_KEY_Z85_LEN + 1],
			  char *err, size_t errlen)
{
	unsigned mode;
	int rc = 0, lineno = 0, k, found = 0;
	FILE *f;

	f = file_open_regular(path, &rc);
	if (!f) {
		curve_key_errf(err, errlen, "%s: %s: cannot open: %s", name, path, strerror(-rc));
		return rc;
	}
	if (curve_key_exposed(f, &mode)) {
		curve_key_errf(err, errlen, "%s: %s: readable by others (mode %04o; allowed: 0600 or "
			       "0400, the owner only)", name, path, mode);
		rc = -EPERM;
		goto out;
	}
	while ((k = curve_key_next(f, &lineno, found ? NULL : z85, NULL)) != 0) {
		if (k != -EINVAL && k < 0) {
			curve_key_errf(err, errlen, "%s: %s: cannot read", name, path);
			rc = k;
			goto out;
		}
		if (k < 0 || found) {
			curve_key_errf(err, errlen, "%s: %s:%d: %s", name, path, lineno,
				       k > 0 ? "a second key (allowed: one)"
					     : "not a Z85 secret key (allowed: 40 Z85 characters, "
					       "as rpmsctl keygen writes them)");
			rc = -EINVAL;
			goto out;
		}
		found = 1;
	}
	if (!found) {
		curve_key_errf(err, errlen, "%s: %s: no key in it", name, path);
		rc = -EINVAL;
	}
out:
	fclose(f);
	return rc;
}
