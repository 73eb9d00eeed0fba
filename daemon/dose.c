/* SPDX-License-Identifier: MIT */
/*
 * The pulses-per-day ledger.
 *
 * The ledger is a short text file an operator can read:
 *
 *   # rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)
 *   version = 1
 *   day = 2026-11-27
 *   pulses = 1200
 *   exact = false
 *   written = 2026-11-27T10:15:02+0100 pid 1234
 *   checksum = 2a89c0f8
 *
 * The checksum is the CRC-32 (IEEE 802.3, as zlib's crc32) of every byte
 * before the checksum line. The parser is strict: the file is only ever
 * written whole by rpmsd, so anything it would not have written is damage,
 * and damage in this file means the day's pulse count is unknown. Then
 * dose_open fails and leaves the file for the operator; it never guesses
 * and never resets.
 *
 * Every write goes to dose.tmp, is fsynced, renamed over dose and the
 * directory is fsynced, so a crash or a power loss leaves either the old
 * or the new ledger whole.
 *
 * The marker "initialised" tells a missing ledger (lost: refuse) from a
 * fresh directory (start at 0). It is written after the first ledger: a
 * crash in between leaves a ledger without a marker, which is trusted and
 * gets its marker at the next open; the opposite order would leave a
 * marker without a ledger and a rig that refuses to arm.
 *
 * The lock is an flock on its own file, so it belongs to the open file
 * description: a second dose_open, even in the same process, fails, and
 * the kernel drops the lock when the process dies however it dies.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dose.h"
#include "file.h"

#define DOSE_LEDGER "dose"
#define DOSE_LEDGER_TMP "dose.tmp"
#define DOSE_MARKER "initialised"
#define DOSE_MARKER_TMP "initialised.tmp"
#define DOSE_LOCK "lock"

#define DOSE_VERSION 1
#define DOSE_HEADER \
	"# rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)\n"

/* A ledger is about 250 bytes; anything this large is not one. */
#define DOSE_FILE_MAX 4096
#define DOSE_WHY_MAX 256

/* 0001-01-01 and 9999-12-31: the days YYYY-MM-DD can name. */
#define DOSE_DAY_MIN (-719162)
#define DOSE_DAY_MAX 2932896

#define DOSE_ADVICE							\
	"today's pulse count is unknown; refusing to arm. Restore the "	\
	"file, or remove %s and %s/" DOSE_MARKER " to start counting "	\
	"from zero (this resets today's count)"

struct dose_ledger {
	char *dir;
	char *path;		/* DIR/dose, as messages name it */
	int dirfd;		/* for openat, renameat and the directory fsync */
	int lockfd;
	int64_t day;
	uint64_t pulses;
	uint64_t floor;		/* counted for @day by earlier runs: never recorded below */
	bool exact;
};

/* The content of a ledger file. */
struct dose_file {
	int64_t day;
	uint64_t pulses;
	bool exact;
};

enum dose_key {
	DOSE_KEY_VERSION,
	DOSE_KEY_DAY,
	DOSE_KEY_PULSES,
	DOSE_KEY_EXACT,
	DOSE_KEY_WRITTEN,
	DOSE_KEY_CHECKSUM,
	DOSE_N_KEYS,
};

static const char *const dose_key_names[DOSE_N_KEYS] = {
	[DOSE_KEY_VERSION] = "version",
	[DOSE_KEY_DAY] = "day",
	[DOSE_KEY_PULSES] = "pulses",
	[DOSE_KEY_EXACT] = "exact",
	[DOSE_KEY_WRITTEN] = "written",
	[DOSE_KEY_CHECKSUM] = "checksum",
};

__attribute__((format(printf, 3, 4)))
static void dose_report(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t dose_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void dose_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool dose_day_valid(int64_t day)
{
	return day >= DOSE_DAY_MIN && day <= DOSE_DAY_MAX;
}

int64_t dose_local_day(time_t t)
{
	struct tm tm;

	if (!localtime_r(&t, &tm)) {
		return DOSE_DAY_INVALID;
	}
	return dose_days_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
				    (unsigned)tm.tm_mday);
}

void dose_day_string(int64_t day, char *buf, size_t len)
{
	int64_t y;
	unsigned m, d;

	if (!dose_day_valid(day)) {
		snprintf(buf, len, "invalid");
		return;
	}
	dose_civil_from_days(day, &y, &m, &d);
	snprintf(buf, len, "%04d-%02u-%02u", (int)y, m, d);
}

/* Parse exactly "YYYY-MM-DD" of @len bytes, a real date. */
static int dose_parse_day(const char *s, size_t len, int64_t *day)
{
	static const char pattern[] = "dddd-dd-dd";
	int64_t y = 0, yy;
	unsigned m, d, mm, dd;
	size_t i;

	if (len != sizeof(pattern) - 1) {
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (pattern[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != '-') {
			return -EINVAL;
		}
	}
	for (i = 0; i < 4; i++) {
		y = y * 10 + (s[i] - '0');
	}
	m = (unsigned)(s[5] - '0') * 10 + (unsigned)(s[6] - '0');
	d = (unsigned)(s[8] - '0') * 10 + (unsigned)(s[9] - '0');
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > 31) {
		return -EINVAL;
	}
	/* 2026-02-30 would quietly become 2026-03-02: insist on a round trip. */
	*day = dose_days_from_civil(y, m, d);
	dose_civil_from_days(*day, &yy, &mm, &dd);
	if (yy != y || mm != m || dd != d) {
		return -EINVAL;
	}
	return 0;
}

/* A decimal number of @len bytes, digits only. */
static int dose_parse_u64(const char *s, size_t len, uint64_t *v)
{
	uint64_t n = 0;
	size_t i;

	if (!len) {
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i])) {
			return -EINVAL;
		}
		if (n > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) {
			return -ERANGE;
		}
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	*v = n;
	return 0;
}

/* CRC-32, reflected, polynomial 0xedb88320: zlib's crc32(). */
static uint32_t dose_crc32(const char *p, size_t len)
{
	uint32_t crc = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= (unsigned char)p[i];
		for (k = 0; k < 8; k++) {
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1u));
		}
	}
	return ~crc;
}

/* Where a parse failed: the line (1-based) and what was wrong there. */
struct dose_parse_error {
	int line;
	char why[DOSE_WHY_MAX];
};

__attribute__((format(printf, 3, 4)))
static int dose_bad(struct dose_parse_error *pe, int line, const char *fmt, ...)
{
	va_list ap;

	pe->line = line;
	va_start(ap, fmt);
	vsnprintf(pe->why, sizeof(pe->why), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static int dose_key_lookup(const char *key, size_t len)
{
	int i;

	for (i = 0; i < DOSE_N_KEYS; i++) {
		if (strlen(dose_key_names[i]) == len && !memcmp(dose_key_names[i], key, len)) {
			return i;
		}
	}
	return -1;
}

/* Parse one "key = value" value into @f. */
static int dose_parse_value(struct dose_parse_error *pe, int line, int key,
			    const char *v, size_t vlen, struct dose_file *f)
{
	uint64_t n;

	switch (key) {
	case DOSE_KEY_VERSION:
		if (dose_parse_u64(v, vlen, &n) < 0) {
			return dose_bad(pe, line, "bad version '%.*s' (expected a number)",
					(int)vlen, v);
		}
		if (n != DOSE_VERSION) {
			return dose_bad(pe, line,
					"unsupported ledger version %.*s (this rpmsd reads version %d): was it written by a newer rpmsd?",
					(int)vlen, v, DOSE_VERSION);
		}
		return 0;
	case DOSE_KEY_DAY:
		if (dose_parse_day(v, vlen, &f->day) < 0) {
			return dose_bad(pe, line, "bad day '%.*s' (expected a date YYYY-MM-DD)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_PULSES:
		if (dose_parse_u64(v, vlen, &f->pulses) < 0) {
			return dose_bad(pe, line,
					"bad pulses '%.*s' (expected a whole number below 2^64)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_EXACT:
		if (vlen == 4 && !memcmp(v, "true", 4)) {
			f->exact = true;
		} else if (vlen == 5 && !memcmp(v, "false", 5)) {
			f->exact = false;
		} else {
			return dose_bad(pe, line, "bad exact '%.*s' (expected true or false)",
					(int)vlen, v);
		}
		return 0;
	default:
		/* written: for people only. */
		return 0;
	}
}

/*
 * Parse a whole ledger of @len bytes. Lines are checked in order as they
 * come, so the first damage is reported at its own line; the checksum,
 * checked last, catches what still parses (a flipped digit).
 */
static int dose_parse(const char *buf, size_t len, struct dose_file *f,
		      struct dose_parse_error *pe)
{
	int seen[DOSE_N_KEYS] = { 0 };
	const char *p, *nl, *eq, *v;
	size_t pos = 0, llen, klen, vlen, i;
	uint32_t sum, crc;
	int line = 0, key, rc;
	bool first_key = true;

	if (!len) {
		return dose_bad(pe, 1, "the file is empty");
	}
	for (;;) {
		if (pos == len) {
			return dose_bad(pe, line,
					"the file ends before its checksum line (truncated?)");
		}
		line++;
		p = buf + pos;
		nl = memchr(p, '\n', len - pos);
		if (!nl) {
			return dose_bad(pe, line,
					"the file ends in the middle of a line (truncated?)");
		}
		llen = (size_t)(nl - p);
		for (i = 0; i < llen; i++) {
			if (iscntrl((unsigned char)p[i]) && p[i] != '\t') {
				return dose_bad(pe, line,
						"control character 0x%02x (binary data?)",
						(unsigned char)p[i]);
			}
		}
		if (llen && p[0] == '#') {
			pos += llen + 1;
			continue;
		}
		for (klen = 0; klen < llen && (islower((unsigned char)p[klen]) || p[klen] == '_');
		     klen++) {
		}
		eq = p + klen;
		if (!klen || llen < klen + 4 || memcmp(eq, " = ", 3)) {
			return dose_bad(pe, line, "expected 'key = value' or a '#' comment");
		}
		key = dose_key_lookup(p, klen);
		if (key < 0) {
			return dose_bad(pe, line, "unknown key '%.*s'", (int)klen, p);
		}
		if (seen[key]) {
			return dose_bad(pe, line, "duplicate key '%s' (first on line %d)",
					dose_key_names[key], seen[key]);
		}
		/* Know the version before trusting anything else in the file. */
		if (first_key && key != DOSE_KEY_VERSION) {
			return dose_bad(pe, line, "the first key must be 'version', not '%s'",
					dose_key_names[key]);
		}
		first_key = false;
		seen[key] = line;
		if (key == DOSE_KEY_CHECKSUM) {
			break;
		}
		rc = dose_parse_value(pe, line, key, eq + 3, llen - klen - 3, f);
		if (rc < 0) {
			return rc;
		}
		pos += llen + 1;
	}
	/* The checksum line: 8 lowercase hex digits, and the last line. */
	v = eq + 3;
	vlen = llen - klen - 3;
	sum = 0;
	for (i = 0; i < vlen && (isdigit((unsigned char)v[i]) || (v[i] >= 'a' && v[i] <= 'f'));
	     i++) {
		sum = sum * 16 + (uint32_t)(isdigit((unsigned char)v[i]) ? v[i] - '0' : v[i] - 'a' + 10);
	}
	if (vlen != 8 || i != vlen) {
		return dose_bad(pe, line, "bad checksum '%.*s' (expected 8 hex digits)",
				(int)vlen, v);
	}
	if (pos + llen + 1 != len) {
		return dose_bad(pe, line + 1, "data after the checksum line");
	}
	for (key = 0; key < DOSE_N_KEYS; key++) {
		if (!seen[key]) {
			return dose_bad(pe, line, "missing key '%s'", dose_key_names[key]);
		}
	}
	crc = dose_crc32(buf, pos);
	if (crc != sum) {
		return dose_bad(pe, line,
				"checksum mismatch: the file says %08x, its content gives %08x",
				(unsigned)sum, (unsigned)crc);
	}
	return 0;
}

/* Format a ledger into @buf; returns its length. */
static size_t dose_format(char *buf, size_t size, int64_t day, uint64_t pulses, bool exact)
{
	char ds[DOSE_DAY_STRLEN], when[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	dose_day_string(day, ds, sizeof(ds));
	if (!localtime_r(&now, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm)) {
		snprintf(when, sizeof(when), "unknown");
	}
	n = (size_t)snprintf(buf, size,
			     DOSE_HEADER
			     "version = %d\n"
			     "day = %s\n"
			     "pulses = %llu\n"
			     "exact = %s\n"
			     "written = %s pid %ld\n",
			     DOSE_VERSION, ds, (unsigned long long)pulses,
			     exact ? "true" : "false", when, (long)getpid());
	n += (size_t)snprintf(buf + n, size - n, "checksum = %08x\n",
			      (unsigned)dose_crc32(buf, n));
	return n;
}

static int dose_write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Replace DIR/@name by @text through DIR/@tmp. *@renamed tells whether the
 * rename happened: after it, only the directory fsync can fail, and the
 * new file is what a reader sees.
 */
static int dose_write_file(struct dose_ledger *l, const char *name, const char *tmp,
			   const char *text, size_t len, bool *renamed,
			   char *err, size_t errlen)
{
	const char *what;
	int fd, rc;

	*renamed = false;
	fd = openat(l->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		dose_report(err, errlen,
			    "%s/%s: cannot create: %s; %s/%s is unchanged. Check that %s is writable and not full",
			    l->dir, tmp, strerror(-rc), l->dir, name, l->dir);
		return rc;
	}
	what = "write";
	rc = dose_write_all(fd, text, len);
	if (rc < 0) {
		goto err_close;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		what = "fsync";
		goto err_close;
	}
	/* Close can report a late write error (NFS): it counts too. */
	if (close(fd) < 0) {
		rc = -errno;
		what = "close";
		goto err_unlink;
	}
	if (renameat(l->dirfd, tmp, l->dirfd, name) < 0) {
		rc = -errno;
		what = "rename";
		goto err_unlink;
	}
	*renamed = true;
	if (fsync(l->dirfd) < 0) {
		rc = -errno;
		dose_report(err, errlen,
			    "%s: cannot fsync the directory after replacing %s: %s; the new %s may not survive a power loss. Check the disk",
			    l->dir, name, strerror(-rc), name);
		return rc;
	}
	return 0;

err_close:
	close(fd);
err_unlink:
	/* Harmless if left (the next write truncates it), but untidy. */
	unlinkat(l->dirfd, tmp, 0);
	dose_report(err, errlen,
		    "%s/%s: cannot %s: %s; %s/%s is unchanged. Check that %s is writable and not full",
		    l->dir, tmp, what, strerror(-rc), l->dir, name, l->dir);
	return rc;
}

/* Write the ledger and, on success, make it the ledger's state. */
static int dose_store(struct dose_ledger *l, int64_t day, uint64_t pulses, bool exact,
		      char *err, size_t errlen)
{
	char text[DOSE_FILE_MAX];
	bool renamed;
	size_t len;
	int rc;

	len = dose_format(text, sizeof(text), day, pulses, exact);
	rc = dose_write_file(l, DOSE_LEDGER, DOSE_LEDGER_TMP, text, len, &renamed,
			     err, errlen);
	if (renamed) {
		/* Even if not yet durable it is on disk: counts never go down. */
		if (day != l->day) {
			l->floor = 0;
		}
		l->day = day;
		l->pulses = pulses;
		l->exact = exact;
	}
	return rc;
}

static int dose_write_marker(struct dose_ledger *l, int64_t today, char *err, size_t errlen)
{
	char text[160], ds[DOSE_DAY_STRLEN];
	bool renamed;
	int n;

	dose_day_string(today, ds, sizeof(ds));
	n = snprintf(text, sizeof(text),
		     "# rpmsd: a pulse ledger (" DOSE_LEDGER ") was started here; "
		     "without it the day's count is unknown\n"
		     "initialised = %s\n", ds);
	return dose_write_file(l, DOSE_MARKER, DOSE_MARKER_TMP, text, (size_t)n, &renamed,
			       err, errlen);
}

/* The date in the marker, or "an unknown date". */
static void dose_marker_date(struct dose_ledger *l, char *buf, size_t len)
{
	static const char key[] = "\ninitialised = ";
	char text[256];
	const char *p;
	int64_t day;
	ssize_t n;
	int fd;

	snprintf(buf, len, "an unknown date");
	fd = openat(l->dirfd, DOSE_MARKER, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		return;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0) {
		return;
	}
	text[n] = '\0';
	p = strstr(text, key);
	if (!p || strlen(p + sizeof(key) - 1) < DOSE_DAY_STRLEN - 1 ||
	    dose_parse_day(p + sizeof(key) - 1, DOSE_DAY_STRLEN - 1, &day) < 0) {
		return;
	}
	dose_day_string(day, buf, len);
}

/* Take the directory's lock and leave our pid in it for the next one. */
static int dose_lock(struct dose_ledger *l, char *err, size_t errlen)
{
	char pid[32];
	uint64_t holder;
	ssize_t n;
	int rc;

	l->lockfd = openat(l->dirfd, DOSE_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (l->lockfd < 0) {
		rc = -errno;
		dose_report(err, errlen, "%s/" DOSE_LOCK ": cannot open: %s. Check that %s is writable",
			    l->dir, strerror(-rc), l->dir);
		return rc;
	}
	if (flock(l->lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		if (rc != -EWOULDBLOCK) {
			dose_report(err, errlen, "%s/" DOSE_LOCK ": cannot lock: %s", l->dir,
				    strerror(-rc));
			return rc;
		}
		/* The holder may not have written its pid yet: then say so. */
		n = pread(l->lockfd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (dose_parse_u64(pid, strlen(pid), &holder) < 0) {
			snprintf(pid, sizeof(pid), "unknown");
		}
		dose_report(err, errlen,
			    "state directory %s is in use by another rpmsd (pid %s): stop it, or give this one its own state directory",
			    l->dir, pid);
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	errno = 0;
	if (ftruncate(l->lockfd, 0) < 0 || pwrite(l->lockfd, pid, (size_t)n, 0) != n) {
		rc = errno ? -errno : -EIO;
		dose_report(err, errlen, "%s/" DOSE_LOCK ": cannot write: %s. Check that %s is writable",
			    l->dir, strerror(-rc), l->dir);
		return rc;
	}
	return 0;
}

/* DIR/dose is missing: a fresh directory, or a lost ledger. */
static int dose_first_use(struct dose_ledger *l, int64_t today, char *err, size_t errlen)
{
	char ds[32];
	struct stat st;
	int rc;

	if (!fstatat(l->dirfd, DOSE_MARKER, &st, AT_SYMLINK_NOFOLLOW)) {
		dose_marker_date(l, ds, sizeof(ds));
		dose_report(err, errlen,
			    "%s is missing but %s was initialised on %s: the day's pulse count is unknown; refusing to arm. Restore the file, or remove %s/" DOSE_MARKER " to start counting from zero (this resets today's count)",
			    l->path, l->dir, ds, l->dir);
		return -ENOENT;
	}
	if (errno != ENOENT) {
		rc = -errno;
		dose_report(err, errlen, "%s/" DOSE_MARKER ": cannot stat: %s", l->dir,
			    strerror(-rc));
		return rc;
	}
	rc = dose_store(l, today, 0, true, err, errlen);
	if (rc < 0) {
		return rc;
	}
	return dose_write_marker(l, today, err, errlen);
}

/* Read and check DIR/dose, then set the ledger's state for @today. */
static int dose_load(struct dose_ledger *l, int64_t today, char *err, size_t errlen)
{
	char buf[DOSE_FILE_MAX + 1], ds[DOSE_DAY_STRLEN], ts[DOSE_DAY_STRLEN];
	struct dose_parse_error pe;
	struct dose_file f = { 0 };
	struct stat st;
	size_t len;
	FILE *fp;
	int rc;

	fp = file_open_regular(l->path, &rc);
	if (!fp && rc == -ENOENT) {
		return dose_first_use(l, today, err, errlen);
	}
	if (!fp) {
		dose_report(err, errlen, "%s: cannot open: %s%s", l->path, strerror(-rc),
			    rc == -EISDIR || rc == -EINVAL ? " (not a regular file)" : "");
		return rc;
	}
	len = fread(buf, 1, sizeof(buf), fp);
	rc = ferror(fp) ? -EIO : 0;
	fclose(fp);
	if (rc < 0) {
		dose_report(err, errlen, "%s: cannot read: %s", l->path, strerror(-rc));
		return rc;
	}
	if (len > DOSE_FILE_MAX) {
		dose_report(err, errlen, "%s: larger than %d bytes, not a ledger: " DOSE_ADVICE,
			    l->path, DOSE_FILE_MAX, l->path, l->dir);
		return -EBADMSG;
	}
	rc = dose_parse(buf, len, &f, &pe);
	if (rc < 0) {
		dose_report(err, errlen, "%s:%d: %s: " DOSE_ADVICE, l->path, pe.line, pe.why,
			    l->path, l->dir);
		return rc;
	}
	if (f.day > today) {
		dose_day_string(f.day, ds, sizeof(ds));
		dose_day_string(today, ts, sizeof(ts));
		dose_report(err, errlen,
			    "%s: the ledger is dated %s, after today %s: the clock went back? Set the clock (and time zone) right; refusing to arm",
			    l->path, ds, ts);
		return -ERANGE;
	}
	if (f.day == today) {
		l->pulses = f.pulses;
		l->exact = f.exact;
	} else {
		l->pulses = 0;
		l->exact = true;
	}
	l->floor = l->pulses;
	l->day = today;
	/* A crash between the first ledger and its marker: the ledger is good. */
	if (fstatat(l->dirfd, DOSE_MARKER, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT) {
			rc = -errno;
			dose_report(err, errlen, "%s/" DOSE_MARKER ": cannot stat: %s", l->dir,
				    strerror(-rc));
			return rc;
		}
		return dose_write_marker(l, today, err, errlen);
	}
	return 0;
}

int dose_open(const char *dir, int64_t today, struct dose_ledger **out,
	      char *err, size_t errlen)
{
	struct dose_ledger *l;
	int rc;

	if (!dose_day_valid(today)) {
		dose_report(err, errlen,
			    "%s: today (day %lld since 1970) is not a date in years 1 to 9999: is the clock set?",
			    dir, (long long)today);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		goto err_nomem;
	}
	l->dirfd = -1;
	l->lockfd = -1;
	l->dir = strdup(dir);
	if (!l->dir || asprintf(&l->path, "%s/" DOSE_LEDGER, dir) < 0) {
		l->path = NULL;
		goto err_nomem;
	}
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		rc = -errno;
		if (rc == -ENOENT) {
			dose_report(err, errlen,
				    "state directory %s does not exist: create it (rpmsd's unit does, with StateDirectory=), writable by the user rpmsd runs as",
				    dir);
		} else if (rc == -ENOTDIR) {
			dose_report(err, errlen,
				    "state directory %s is not a directory: move it away so that the directory can be created",
				    dir);
		} else {
			dose_report(err, errlen, "state directory %s: cannot open: %s", dir,
				    strerror(-rc));
		}
		goto err_close;
	}
	rc = dose_lock(l, err, errlen);
	if (rc < 0) {
		goto err_close;
	}
	rc = dose_load(l, today, err, errlen);
	if (rc < 0) {
		goto err_close;
	}
	*out = l;
	return 0;

err_nomem:
	rc = -ENOMEM;
	dose_report(err, errlen, "%s: out of memory", dir);
err_close:
	dose_close(l);
	return rc;
}

uint64_t dose_pulses(const struct dose_ledger *l)
{
	return l->pulses;
}

int64_t dose_day(const struct dose_ledger *l)
{
	return l->day;
}

bool dose_exact(const struct dose_ledger *l)
{
	return l->exact;
}

int dose_record(struct dose_ledger *l, int64_t day, uint64_t pulses, bool exact,
		char *err, size_t errlen)
{
	char ds[DOSE_DAY_STRLEN], ls[DOSE_DAY_STRLEN];

	dose_day_string(day, ds, sizeof(ds));
	dose_day_string(l->day, ls, sizeof(ls));
	if (!dose_day_valid(day)) {
		dose_report(err, errlen, "%s: cannot record day %lld: not a date in years 1 to 9999",
			    l->path, (long long)day);
		return -EINVAL;
	}
	if (day < l->day) {
		dose_report(err, errlen,
			    "%s: cannot record %s: the ledger already counts %s, and days never go back",
			    l->path, ds, ls);
		return -EINVAL;
	}
	/*
	 * This run may give back what it reserved and did not deliver, but
	 * never what earlier runs counted for the day.
	 */
	if (day == l->day && pulses < l->floor) {
		dose_report(err, errlen,
			    "%s: cannot record %llu pulses for %s: earlier runs already counted %llu, and a day's count never goes below that",
			    l->path, (unsigned long long)pulses, ds,
			    (unsigned long long)l->floor);
		return -EINVAL;
	}
	return dose_store(l, day, pulses, exact, err, errlen);
}

void dose_close(struct dose_ledger *l)
{
	if (!l) {
		return;
	}
	/* Closing the only descriptor of the lock file releases the flock. */
	if (l->lockfd >= 0) {
		close(l->lockfd);
	}
	if (l->dirfd >= 0) {
		close(l->dirfd);
	}
	free(l->path);
	free(l->dir);
	free(l);
}
