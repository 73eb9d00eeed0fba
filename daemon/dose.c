/* SPDX-License-Identifier: MIT */
/*
 * The pulses-per-day ledger in its state directory: atomic writes, the
 * sequence, the marker, the lock, loading and its checks (dose.h). The
 * text of the files is dose_file.c's (dose_private.h).
 *
 * Every write goes to dose.tmp, is fsynced, renamed over dose and the
 * directory is fsynced, so a crash or a power loss leaves either the old
 * or the new ledger whole. Then the same for "sequence", which holds the
 * sequence of that ledger: written after the ledger, it is never ahead of
 * it, so a dose whose sequence is lower is an older copy put back (a
 * backup, a copy kept aside, a link). What it cannot tell: the whole
 * directory put back together, or someone who rewrites both files with
 * their checksums; the ledger guards against mistakes and casual
 * tampering, not against whoever may write the state directory.
 *
 * A crash between the two leaves a ledger ahead of its sequence, or
 * without one after its first write: trusted, and its sequence is written
 * at the next open, so that a second crash there cannot leave a ledger
 * written twice without a sequence (refused: it may be an older copy).
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
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dose.h"
#include "dose_private.h"

#define DOSE_LEDGER "dose"
#define DOSE_LEDGER_TMP "dose.tmp"
#define DOSE_SEQ "sequence"
#define DOSE_SEQ_TMP "sequence.tmp"
#define DOSE_MARKER "initialised"
#define DOSE_MARKER_TMP "initialised.tmp"
#define DOSE_LOCK "lock"

#define DOSE_NOTICE_MAX 512

/* 0001-01-01 and 9999-12-31: the instants YYYY-MM-DD can name. */
#define DOSE_T_MIN INT64_C(-62135596800)
#define DOSE_T_MAX INT64_C(253402300799)

/* A day that ends further away than this was written by a clock that went back. */
#define DOSE_AHEAD_MAX_S (3 * 86400)

/*
 * A version 1 date D ended, wherever the rig was, by D + 1 at 12:00 UTC
 * (midnight at UTC-12, the westernmost zone).
 */
#define DOSE_V1_LATEST_END_S (36 * 3600)

/* Wall clock ahead of CLOCK_BOOTTIME by more than this (plus 0.1 %): a step. */
#define DOSE_STEP_S 30

#define DOSE_ADVICE							\
	"today's pulse count is unknown; refusing to arm. Restore the "	\
	"file, or remove %s, %s/" DOSE_MARKER " and %s/" DOSE_SEQ	\
	" to start counting from zero (this resets today's count)"

struct dose_ledger {
	char *dir;
	char *path;		/* DIR/dose, as messages name it */
	const struct zone *zone;
	int dirfd;		/* for openat, renameat and the directory fsync */
	int lockfd;
	char boot_id[DOSE_BOOT_ID_LEN];	/* of dose_open's clock */
	int64_t day;		/* label: the date in the zone when the day began */
	int64_t day_end;	/* s since 1970: the day ends here */
	uint64_t pulses;
	uint64_t floor;		/* counted for the day by earlier runs: never recorded below */
	bool exact;
	uint64_t seq;		/* of the ledger on disk */
	int64_t prior_ns;	/* dose_prior_pulse_ns */
	int64_t last_pulse_ns;	/* CLOCK_BOOTTIME in this boot, INT64_MIN none */
	char notice[DOSE_NOTICE_MAX];
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

void dose_day_string(int64_t day, char *buf, size_t len)
{
	dose_file_day_string(day, buf, len);
}

void dose_clock_now(struct dose_clock *c)
{
	struct timespec ts;
	char buf[64];
	ssize_t n;
	int fd;

	clock_gettime(CLOCK_REALTIME, &ts);
	c->real_s = (int64_t)ts.tv_sec;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	c->boot_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	c->boot_id[0] = '\0';
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n >= DOSE_BOOT_ID_LEN - 1 && dose_file_boot_id_ok(buf, DOSE_BOOT_ID_LEN - 1)) {
		memcpy(c->boot_id, buf, DOSE_BOOT_ID_LEN - 1);
		c->boot_id[DOSE_BOOT_ID_LEN - 1] = '\0';
	}
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

static int dose_write_seq(struct dose_ledger *l, uint64_t seq, char *err, size_t errlen)
{
	char text[256];
	bool renamed;
	size_t n;

	n = dose_file_format_seq(text, sizeof(text), seq);
	return dose_write_file(l, DOSE_SEQ, DOSE_SEQ_TMP, text, n, &renamed, err, errlen);
}

/*
 * Write the ledger, then its sequence, and on success of the first make
 * it the ledger's state.
 */
static int dose_store(struct dose_ledger *l, const struct dose_clock *now, int64_t day,
		      int64_t day_end, uint64_t pulses, bool exact, char *err, size_t errlen)
{
	struct dose_file f = {
		.version = DOSE_FILE_VERSION, .day = day, .day_end = day_end, .pulses = pulses,
		.exact = exact, .last_pulse_ns = l->last_pulse_ns, .boottime_ns = now->boot_ns,
		.written_s = now->real_s, .pid = (long)getpid(), .seq = l->seq + 1,
	};
	char text[DOSE_FILE_MAX];
	bool renamed;
	size_t len;
	int rc;

	snprintf(f.zone, sizeof(f.zone), "%s", zone_name(l->zone));
	snprintf(f.boot_id, sizeof(f.boot_id), "%s", l->boot_id);
	len = dose_file_format(text, sizeof(text), &f);
	rc = dose_write_file(l, DOSE_LEDGER, DOSE_LEDGER_TMP, text, len, &renamed,
			     err, errlen);
	if (!renamed) {
		return rc;
	}
	/* Even if not yet durable it is on disk: counts never go down. */
	if (day_end != l->day_end) {
		l->floor = 0;
	}
	l->day = day;
	l->day_end = day_end;
	l->pulses = pulses;
	l->exact = exact;
	l->seq = f.seq;
	if (rc < 0) {
		return rc;
	}
	return dose_write_seq(l, l->seq, err, errlen);
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

/*
 * Open DIR/@name for reading: a regular file and not a symbolic link
 * (O_NOFOLLOW), without blocking on a FIFO. @return the fd, or -errno
 * (-ELOOP for a link, -EINVAL or -EISDIR for what is not a regular file).
 */
static int dose_open_file(struct dose_ledger *l, const char *name)
{
	struct stat st;
	int fd, rc;

	fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	return fd;
}

/* Why dose_open_file failed, for a message. */
static const char *dose_open_why(int rc)
{
	switch (rc) {
	case -ELOOP:
		return "it is a symbolic link (the ledger's files must be the files themselves)";
	case -EISDIR:
	case -EINVAL:
		return "not a regular file";
	default:
		return strerror(-rc);
	}
}

/*
 * Read DIR/@name (at most DOSE_FILE_MAX bytes) into @buf.
 * @return its length, or -errno with the message in @err
 */
static ssize_t dose_read(struct dose_ledger *l, const char *name, char *buf, char *err,
			 size_t errlen)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = dose_open_file(l, name);
	if (fd < 0) {
		if (fd != -ENOENT) {
			dose_report(err, errlen, "%s/%s: cannot open: %s; refusing to arm", l->dir,
				    name, dose_open_why(fd));
		}
		return fd;
	}
	while (len <= DOSE_FILE_MAX) {
		n = read(fd, buf + len, DOSE_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			n = -errno;
			close(fd);
			dose_report(err, errlen, "%s/%s: cannot read: %s", l->dir, name,
				    strerror((int)-n));
			return n;
		}
		if (!n) {
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > DOSE_FILE_MAX) {
		dose_report(err, errlen, "%s/%s: larger than %d bytes, not a ledger: " DOSE_ADVICE,
			    l->dir, name, DOSE_FILE_MAX, l->path, l->dir, l->dir);
		return -EBADMSG;
	}
	return (ssize_t)len;
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
	fd = dose_open_file(l, DOSE_MARKER);
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
	    dose_file_parse_day(p + sizeof(key) - 1, DOSE_DAY_STRLEN - 1, &day) < 0) {
		return;
	}
	dose_day_string(day, buf, len);
}

/*
 * Whether DIR/@name exists (a symbolic link counts, and is refused).
 * @return 1, 0, or -errno with the message in @err
 */
static int dose_exists(struct dose_ledger *l, const char *name, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (!fstatat(l->dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (S_ISLNK(st.st_mode)) {
			dose_report(err, errlen, "%s/%s: %s; refusing to arm", l->dir, name,
				    dose_open_why(-ELOOP));
			return -ELOOP;
		}
		return 1;
	}
	if (errno == ENOENT) {
		return 0;
	}
	rc = -errno;
	dose_report(err, errlen, "%s/%s: cannot stat: %s", l->dir, name, strerror(-rc));
	return rc;
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
		dose_report(err, errlen, "%s/" DOSE_LOCK ": cannot open: %s%s", l->dir,
			    rc == -ELOOP ? dose_open_why(rc) : strerror(-rc),
			    rc == -ELOOP ? "" : ". Check that the directory is writable");
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
		if (dose_file_parse_u64(pid, strlen(pid), &holder) < 0) {
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

/*
 * The end of a new day that begins at @now after a day that ended at
 * @prev_end (INT64_MIN: none): the zone's next midnight, but never less
 * than DOSE_DAY_MIN_S after @prev_end, so that a change of zone cannot
 * make a short day (23 h is the shortest day a clock change makes).
 */
static int64_t dose_next_end(const struct zone *z, int64_t now, int64_t prev_end)
{
	int64_t end = zone_day_end(z, now);
	int i;

	for (i = 0; i < 8 && prev_end != INT64_MIN && end < prev_end + DOSE_DAY_MIN_S; i++) {
		end = zone_day_end(z, end);
	}
	return end;
}

/* DIR/dose is missing: a fresh directory, or a lost ledger. */
static int dose_first_use(struct dose_ledger *l, const struct dose_clock *now, bool have_seq,
			  uint64_t seq, char *err, size_t errlen)
{
	char ds[32];
	int rc;

	rc = dose_exists(l, DOSE_MARKER, err, errlen);
	if (rc < 0) {
		return rc;
	}
	if (rc) {
		dose_marker_date(l, ds, sizeof(ds));
		dose_report(err, errlen,
			    "%s is missing but %s was initialised on %s: the day's pulse count is unknown; refusing to arm. Restore the file, or remove %s/" DOSE_MARKER " and %s/" DOSE_SEQ " to start counting from zero (this resets today's count)",
			    l->path, l->dir, ds, l->dir, l->dir);
		return -ENOENT;
	}
	if (have_seq) {
		dose_report(err, errlen,
			    "%s is missing but %s/" DOSE_SEQ " says it was written %llu times: the day's pulse count is unknown; refusing to arm. Restore the file, or remove %s/" DOSE_SEQ " to start counting from zero (this resets today's count)",
			    l->path, l->dir, (unsigned long long)seq, l->dir);
		return -ENOENT;
	}
	l->last_pulse_ns = INT64_MIN;
	l->prior_ns = DOSE_NO_PULSE;
	rc = dose_store(l, now, zone_day(l->zone, now->real_s),
			dose_next_end(l->zone, now->real_s, INT64_MIN), 0, true, err, errlen);
	if (rc < 0) {
		return rc;
	}
	return dose_write_marker(l, l->day, err, errlen);
}

/*
 * Read DIR/sequence. @return 1 with *@seq set, 0 when there is none, or
 * -errno with the message in @err.
 */
static int dose_load_seq(struct dose_ledger *l, uint64_t *seq, char *err, size_t errlen)
{
	char buf[DOSE_FILE_MAX + 1];
	struct dose_file_error pe;
	struct dose_file f = { 0 };
	ssize_t len;
	int rc;

	len = dose_read(l, DOSE_SEQ, buf, err, errlen);
	if (len == -ENOENT) {
		return 0;
	}
	if (len < 0) {
		return (int)len;
	}
	rc = dose_file_parse(buf, (size_t)len, DOSE_FILE_KIND_SEQ, &f, &pe);
	if (rc < 0) {
		dose_report(err, errlen,
			    "%s/" DOSE_SEQ ":%d: %s: whether %s is current is unknown; refusing to arm. Restore the file, or remove %s/" DOSE_SEQ " and %s/" DOSE_MARKER " and %s to start counting from zero (this resets today's count)",
			    l->dir, pe.line, pe.why, l->path, l->dir, l->dir, l->path);
		return rc;
	}
	*seq = f.seq;
	return 1;
}

/* The previous run's last pulse, for the gap between trains. */
static void dose_prior_pulse(struct dose_ledger *l, const struct dose_file *f,
			     const struct dose_clock *now)
{
	bool same_boot = f->version >= 2 && now->boot_id[0] && !strcmp(f->boot_id, now->boot_id);

	if (f->version >= 2 && f->exact && f->last_pulse_ns == INT64_MIN) {
		l->prior_ns = DOSE_NO_PULSE;
		l->last_pulse_ns = INT64_MIN;
		return;
	}
	/*
	 * Known only after a clean stop in this boot; else it may have been
	 * just now (a crash, a reboot that restarted CLOCK_BOOTTIME).
	 */
	if (f->exact && same_boot && f->last_pulse_ns <= now->boot_ns) {
		l->prior_ns = now->boot_ns - f->last_pulse_ns;
	} else {
		l->prior_ns = 0;
	}
	l->last_pulse_ns = now->boot_ns - l->prior_ns;
}

/*
 * Whether the wall clock was stepped forwards since @f was written in this
 * boot: it moved further than CLOCK_BOOTTIME (which counts suspend too).
 */
static bool dose_stepped(const struct dose_file *f, const struct dose_clock *now, int64_t *step)
{
	int64_t boot_s;

	if (f->version < 2 || !now->boot_id[0] || strcmp(f->boot_id, now->boot_id) ||
	    now->boot_ns < f->boottime_ns) {
		return false;
	}
	boot_s = (now->boot_ns - f->boottime_ns) / 1000000000;
	*step = (now->real_s - f->written_s) - boot_s;
	return *step > DOSE_STEP_S + boot_s / 1000;
}

/* Read and check DIR/dose, then set the ledger's state for @now. */
static int dose_load(struct dose_ledger *l, const struct dose_clock *now, char *err,
		     size_t errlen)
{
	char buf[DOSE_FILE_MAX + 1], ds[DOSE_DAY_STRLEN], es[32], ns[32];
	struct dose_file_error pe;
	struct dose_file f = { 0 };
	uint64_t seq = 0;
	int64_t step = 0;
	ssize_t len;
	int have_seq, rc;

	have_seq = dose_load_seq(l, &seq, err, errlen);
	if (have_seq < 0) {
		return have_seq;
	}
	len = dose_read(l, DOSE_LEDGER, buf, err, errlen);
	if (len == -ENOENT) {
		return dose_first_use(l, now, have_seq, seq, err, errlen);
	}
	if (len < 0) {
		return (int)len;
	}
	rc = dose_file_parse(buf, (size_t)len, DOSE_FILE_KIND_LEDGER, &f, &pe);
	if (rc < 0) {
		dose_report(err, errlen, "%s:%d: %s: " DOSE_ADVICE, l->path, pe.line, pe.why,
			    l->path, l->dir, l->dir);
		return rc;
	}
	rc = dose_exists(l, DOSE_MARKER, err, errlen);
	if (rc < 0) {
		return rc;
	}
	/* An older copy put back: the sequence, written after each ledger, is ahead. */
	if (f.version == 1 && have_seq) {
		dose_report(err, errlen,
			    "%s: a version 1 ledger, but %s/" DOSE_SEQ " shows that this rpmsd has written version 2 ledgers here (%llu times): an old copy was put back; refusing to arm. Restore the current file, or remove %s, %s/" DOSE_SEQ " and %s/" DOSE_MARKER " to start counting from zero (this resets today's count)",
			    l->path, l->dir, (unsigned long long)seq, l->path, l->dir, l->dir);
		return -ESTALE;
	}
	if (f.version >= 2 && have_seq && f.seq < seq) {
		dose_report(err, errlen,
			    "%s: sequence %llu, but %s/" DOSE_SEQ " says the last ledger written was %llu: an older copy was put back; refusing to arm. Restore the current file, or remove %s, %s/" DOSE_SEQ " and %s/" DOSE_MARKER " to start counting from zero (this resets today's count)",
			    l->path, (unsigned long long)f.seq, l->dir, (unsigned long long)seq,
			    l->path, l->dir, l->dir);
		return -ESTALE;
	}
	/* The first write in this format is the only one a crash can leave without a sequence. */
	if (f.version >= 2 && !have_seq && rc && f.seq > 1) {
		dose_report(err, errlen,
			    "%s/" DOSE_SEQ " is missing (the ledger was written %llu times): whether %s is current is unknown; refusing to arm. Restore the file, or remove %s and %s/" DOSE_MARKER " to start counting from zero (this resets today's count)",
			    l->dir, (unsigned long long)f.seq, l->path, l->path, l->dir);
		return -ESTALE;
	}
	if (f.version == 1) {
		f.day_end = f.day * 86400 + DOSE_V1_LATEST_END_S;
		dose_day_string(f.day, ds, sizeof(ds));
		dose_file_utc_string(f.day_end, es, sizeof(es));
		snprintf(l->notice, sizeof(l->notice),
			 "%s: a version 1 ledger (day %s, no zone): its %llu pulses count until %s, when that date has ended in every zone; it is rewritten in version 2 now",
			 l->path, ds, (unsigned long long)f.pulses, es);
	} else if (strcmp(f.zone, zone_name(l->zone))) {
		dose_file_utc_string(f.day_end, es, sizeof(es));
		snprintf(l->notice, sizeof(l->notice),
			 "%s: the day was begun in zone %s and ends at %s as it was then; days after it end at midnight in %s (safety.day_zone)",
			 l->path, f.zone, es, zone_name(l->zone));
	}
	/* A date after today in the same zone: the clock went back (as version 1 said). */
	if ((f.version == 1 || !strcmp(f.zone, zone_name(l->zone))) &&
	    f.day > zone_day(l->zone, now->real_s)) {
		dose_day_string(f.day, ds, sizeof(ds));
		dose_day_string(zone_day(l->zone, now->real_s), ns, sizeof(ns));
		dose_report(err, errlen,
			    "%s: the ledger is dated %s, after today %s (%s): the clock went back? Set the clock (and safety.day_zone) right; refusing to arm",
			    l->path, ds, ns, zone_name(l->zone));
		return -ERANGE;
	}
	if (f.day_end - now->real_s > DOSE_AHEAD_MAX_S) {
		dose_file_utc_string(f.day_end, es, sizeof(es));
		dose_file_utc_string(now->real_s, ns, sizeof(ns));
		dose_report(err, errlen,
			    "%s: the ledger's day ends at %s, more than 3 days after now (%s): the clock went back? Set the clock right; refusing to arm",
			    l->path, es, ns);
		return -ERANGE;
	}
	l->seq = f.version >= 2 ? f.seq : 0;
	dose_prior_pulse(l, &f, now);
	if (now->real_s < f.day_end) {
		l->day = f.day;
		l->day_end = f.day_end;
		l->pulses = f.pulses;
		l->exact = f.exact;
	} else if (dose_stepped(&f, now, &step)) {
		/* Midnight reached by a step of the wall clock: never a second allowance. */
		l->day = zone_day(l->zone, now->real_s);
		l->day_end = dose_next_end(l->zone, now->real_s, f.day_end);
		l->pulses = f.pulses;
		l->exact = f.exact;
		snprintf(l->notice, sizeof(l->notice),
			 "%s: the wall clock was stepped by %+lld s since the ledger was written in this boot, past the end of its day: the new day keeps the %llu pulses counted (a step must never reset the count)",
			 l->path, (long long)step, (unsigned long long)f.pulses);
	} else {
		l->day = zone_day(l->zone, now->real_s);
		l->day_end = dose_next_end(l->zone, now->real_s, f.day_end);
		l->pulses = 0;
		l->exact = true;
	}
	l->floor = l->pulses;
	/*
	 * A crash between a ledger and its sequence: the ledger is good, so
	 * finish its write. Left undone, a second crash at the same point
	 * would leave a ledger written twice without a sequence, which is
	 * refused as possibly an older copy: a false alarm that blocks arming.
	 */
	if (f.version >= 2 && (!have_seq || seq < f.seq)) {
		have_seq = dose_write_seq(l, l->seq, err, errlen);
		if (have_seq < 0) {
			return have_seq;
		}
	}
	/* A crash between the first ledger and its marker: the ledger is good. */
	if (!rc) {
		return dose_write_marker(l, l->day, err, errlen);
	}
	return 0;
}

int dose_open(const char *dir, const struct zone *zone, const struct dose_clock *now,
	      struct dose_ledger **out, char *err, size_t errlen)
{
	struct dose_ledger *l;
	int rc;

	if (now->real_s < DOSE_T_MIN + 4 * 86400 || now->real_s > DOSE_T_MAX - 4 * 86400) {
		dose_report(err, errlen,
			    "%s: the time now (%lld s since 1970) is not in years 1 to 9999: is the clock set?",
			    dir, (long long)now->real_s);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		goto err_nomem;
	}
	l->dirfd = -1;
	l->lockfd = -1;
	l->zone = zone;
	l->day_end = INT64_MIN;
	snprintf(l->boot_id, sizeof(l->boot_id), "%s", now->boot_id);
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
	rc = dose_load(l, now, err, errlen);
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

const char *dose_notice(const struct dose_ledger *l)
{
	return l->notice[0] ? l->notice : NULL;
}

uint64_t dose_pulses(const struct dose_ledger *l)
{
	return l->pulses;
}

int64_t dose_day(const struct dose_ledger *l)
{
	return l->day;
}

int64_t dose_day_end(const struct dose_ledger *l)
{
	return l->day_end;
}

bool dose_day_over(const struct dose_ledger *l, const struct dose_clock *now)
{
	return now->real_s >= l->day_end;
}

bool dose_exact(const struct dose_ledger *l)
{
	return l->exact;
}

int64_t dose_prior_pulse_ns(const struct dose_ledger *l)
{
	return l->prior_ns;
}

int dose_record(struct dose_ledger *l, const struct dose_clock *now, bool new_day,
		uint64_t pulses, bool exact, int64_t last_pulse_ns, char *err, size_t errlen)
{
	char ds[DOSE_DAY_STRLEN], es[32];

	dose_day_string(l->day, ds, sizeof(ds));
	if (pulses > DOSE_PULSES_MAX) {
		dose_report(err, errlen, "%s: cannot record %llu pulses: more than %d", l->path,
			    (unsigned long long)pulses, DOSE_PULSES_MAX);
		return -ERANGE;
	}
	if (new_day && !dose_day_over(l, now)) {
		dose_file_utc_string(l->day_end, es, sizeof(es));
		dose_report(err, errlen,
			    "%s: cannot begin a new day: the day %s ends at %s, and days never end early",
			    l->path, ds, es);
		return -EINVAL;
	}
	/*
	 * This run may give back what it reserved and did not deliver, but
	 * never what earlier runs counted for the day.
	 */
	if (!new_day && pulses < l->floor) {
		dose_report(err, errlen,
			    "%s: cannot record %llu pulses for %s: earlier runs already counted %llu, and a day's count never goes below that",
			    l->path, (unsigned long long)pulses, ds,
			    (unsigned long long)l->floor);
		return -EINVAL;
	}
	if (last_pulse_ns != DOSE_KEEP_PULSE) {
		l->last_pulse_ns = last_pulse_ns < 0 ? 0 : last_pulse_ns;
	}
	if (new_day) {
		return dose_store(l, now, zone_day(l->zone, now->real_s),
				  dose_next_end(l->zone, now->real_s, l->day_end), pulses, exact,
				  err, errlen);
	}
	return dose_store(l, now, l->day, l->day_end, pulses, exact, err, errlen);
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
