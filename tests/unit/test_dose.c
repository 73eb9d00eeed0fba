/* SPDX-License-Identifier: MIT */
/*
 * Tests of the pulses-per-day ledger, each in a fresh state directory:
 * first use, reopen, day change, every kind of damage (refused, file left
 * as it was), the lock, refused records, a failed write, local days, and
 * a daemon SIGKILLed while it records (the ledger is never torn).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dose.h"

/* 2026-11-27 */
#define DAY 20784
#define FILE_MAX 4096

struct fixture {
	char dir[64];
	char path[96];		/* DIR/dose */
	char err[DOSE_ERR_MAX];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx) {
		return -1;
	}
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/rpmsd-test-dose-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/dose", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* Whole content of @path into @buf (NUL-terminated); its length. */
static size_t slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	assert_false(ferror(f));
	fclose(f);
	buf[n] = '\0';
	return n;
}

static void spit(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static bool exists(const char *dir, const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* The test's own CRC-32 (zlib's), to craft well-checksummed files. */
static uint32_t crc32_ref(const char *p, size_t len)
{
	uint32_t crc = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= (unsigned char)p[i];
		for (k = 0; k < 8; k++) {
			crc = (crc & 1u) ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
		}
	}
	return ~crc;
}

/* Replace the first @from in @buf by @to; fails the test if absent. */
static void replace(char *buf, size_t size, const char *from, const char *to)
{
	char *p = strstr(buf, from);
	size_t fl = strlen(from), tl = strlen(to);

	assert_non_null(p);
	assert_true(strlen(buf) - fl + tl < size);
	memmove(p + tl, p + fl, strlen(p + fl) + 1);
	memcpy(p, to, tl);
}

/* Drop the checksum line of @buf and append a correct one. */
static void fix_checksum(char *buf, size_t size)
{
	char *p = strstr(buf, "checksum = ");
	size_t n;

	assert_non_null(p);
	n = (size_t)(p - buf);
	snprintf(p, size - n, "checksum = %08x\n", (unsigned)crc32_ref(buf, n));
}

static struct dose_ledger *open_ok(struct fixture *fx, int64_t today)
{
	struct dose_ledger *l = NULL;

	fx->err[0] = '\0';
	assert_int_equal(dose_open(fx->dir, today, &l, fx->err, sizeof(fx->err)), 0);
	assert_non_null(l);
	return l;
}

static void record_ok(struct fixture *fx, struct dose_ledger *l, int64_t day,
		      uint64_t pulses, bool exact)
{
	assert_int_equal(dose_record(l, day, pulses, exact, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(dose_day(l), day);
	assert_int_equal(dose_pulses(l), pulses);
}

/* A state directory whose ledger counts @pulses (not exact) on DAY. */
static void make_ledger(struct fixture *fx, uint64_t pulses)
{
	struct dose_ledger *l = open_ok(fx, DAY);

	record_ok(fx, l, DAY, pulses, false);
	dose_close(l);
}

static void test_dose_first_use(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, DAY);
	char buf[FILE_MAX];

	assert_int_equal(dose_pulses(l), 0);
	assert_int_equal(dose_day(l), DAY);
	assert_true(dose_exact(l));
	assert_true(exists(fx->dir, "dose"));
	assert_true(exists(fx->dir, "initialised"));
	assert_true(exists(fx->dir, "lock"));
	assert_false(exists(fx->dir, "dose.tmp"));
	slurp(fx->path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\nversion = 1\nday = 2026-11-27\npulses = 0\nexact = true\n"));
	snprintf(buf, sizeof(buf), "%s/initialised", fx->dir);
	slurp(buf, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\ninitialised = 2026-11-27\n"));
	dose_close(l);
	dose_close(NULL);
}

static void test_dose_record_reopen(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, DAY);
	char buf[FILE_MAX], want[64];

	record_ok(fx, l, DAY, 1200, false);
	assert_false(dose_exact(l));
	dose_close(l);
	l = open_ok(fx, DAY);
	assert_int_equal(dose_pulses(l), 1200);
	assert_false(dose_exact(l));
	/* the same count again, now exact: a clean shutdown */
	record_ok(fx, l, DAY, 1200, true);
	dose_close(l);
	l = open_ok(fx, DAY);
	assert_int_equal(dose_pulses(l), 1200);
	assert_true(dose_exact(l));
	dose_close(l);
	slurp(fx->path, buf, sizeof(buf));
	assert_memory_equal(buf, "# rpmsd pulse ledger: ", 22);
	snprintf(want, sizeof(want), " pid %ld\nchecksum = ", (long)getpid());
	assert_non_null(strstr(buf, want));
	assert_false(exists(fx->dir, "dose.tmp"));
}

/* Every line of @buf up to its " = ", or its whole text for comments. */
static void line_keys(const char *buf, char *out, size_t size)
{
	const char *p = buf, *nl, *eq;
	size_t n = 0;

	out[0] = '\0';
	while ((nl = strchr(p, '\n'))) {
		eq = strstr(p, " = ");
		if (p[0] == '#' || !eq || eq > nl) {
			eq = nl;
		}
		n += (size_t)snprintf(out + n, size - n, "%.*s|", (int)(eq - p), p);
		assert_true(n < size);
		p = nl + 1;
	}
}

static void test_dose_later_day(void **state)
{
	struct fixture *fx = *state;
	char before[FILE_MAX], after[FILE_MAX], kb[512], ka[512];
	struct dose_ledger *l;

	make_ledger(fx, 500);
	slurp(fx->path, before, sizeof(before));
	l = open_ok(fx, DAY + 1);
	assert_int_equal(dose_pulses(l), 0);
	assert_int_equal(dose_day(l), DAY + 1);
	assert_true(dose_exact(l));
	/* nothing written until the next record */
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	record_ok(fx, l, DAY + 1, 7, false);
	dose_close(l);
	slurp(fx->path, after, sizeof(after));
	assert_non_null(strstr(after, "\nversion = 1\nday = 2026-11-28\npulses = 7\n"));
	line_keys(before, kb, sizeof(kb));
	line_keys(after, ka, sizeof(ka));
	assert_string_equal(kb, ka);
	l = open_ok(fx, DAY + 1);
	assert_int_equal(dose_pulses(l), 7);
	dose_close(l);
	/* and a record for a later day than the ledger's also starts over */
	l = open_ok(fx, DAY + 1);
	record_ok(fx, l, DAY + 3, 2, true);
	dose_close(l);
	l = open_ok(fx, DAY + 3);
	assert_int_equal(dose_pulses(l), 2);
	dose_close(l);
}

/* The example in dose.c's comment is a real ledger. */
static void test_dose_documented_example(void **state)
{
	struct fixture *fx = *state;
	char buf[FILE_MAX] =
		"# rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)\n"
		"version = 1\n"
		"day = 2026-11-27\n"
		"pulses = 1200\n"
		"exact = false\n"
		"written = 2026-11-27T10:15:02+0100 pid 1234\n"
		"checksum = 00000000\n";
	struct dose_ledger *l;

	fix_checksum(buf, sizeof(buf));
	assert_non_null(strstr(buf, "checksum = 2a89c0f8\n"));
	spit(fx->path, buf, strlen(buf));
	l = open_ok(fx, DAY);
	assert_int_equal(dose_pulses(l), 1200);
	assert_false(dose_exact(l));
	dose_close(l);
	/* a ledger without its marker (a crash after the first write) is trusted */
	assert_true(exists(fx->dir, "initialised"));
}

static void test_dose_ledger_missing(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = NULL;
	char marker[128];
	int rc;

	make_ledger(fx, 10);
	assert_int_equal(unlink(fx->path), 0);
	rc = dose_open(fx->dir, DAY + 1, &l, fx->err, sizeof(fx->err));
	assert_int_equal(rc, -ENOENT);
	assert_null(l);
	assert_memory_equal(fx->err, fx->path, strlen(fx->path));
	assert_non_null(strstr(fx->err, " is missing but "));
	assert_non_null(strstr(fx->err, "initialised on 2026-11-27"));
	assert_non_null(strstr(fx->err, "refusing to arm"));
	/* never reset silently */
	assert_false(exists(fx->dir, "dose"));
	/* the documented way out */
	snprintf(marker, sizeof(marker), "%s/initialised", fx->dir);
	assert_int_equal(unlink(marker), 0);
	l = open_ok(fx, DAY + 1);
	assert_int_equal(dose_pulses(l), 0);
	dose_close(l);
	assert_true(exists(fx->dir, "initialised"));
}

struct corrupt_case {
	const char *name;
	const char *from;	/* replaced ... */
	const char *to;		/* ... by this */
	bool fix;		/* recompute the checksum afterwards */
	int line;
	const char *why;
};

static const struct corrupt_case corrupt_cases[] = {
	{ "flipped digit", "pulses = 1200", "pulses = 1300", false, 7, "checksum mismatch" },
	{ "version 2", "version = 1", "version = 2", false, 2,
	  "unsupported ledger version 2" },
	{ "version 2, good checksum", "version = 1", "version = 2", true, 2,
	  "unsupported ledger version 2" },
	{ "unknown key", "day = ", "colour = blue\nday = ", false, 3, "unknown key 'colour'" },
	{ "duplicate key", "exact = ", "pulses = 1\nexact = ", false, 5,
	  "duplicate key 'pulses' (first on line 4)" },
	{ "missing key", "exact = false\n", "", true, 6, "missing key 'exact'" },
	{ "bad number", "pulses = 1200", "pulses = 12a0", false, 4, "bad pulses '12a0'" },
	{ "huge number", "pulses = 1200", "pulses = 18446744073709551616", false, 4,
	  "bad pulses" },
	{ "bad date", "day = 2026-11-27", "day = 2026-02-30", false, 3, "bad day '2026-02-30'" },
	{ "bad exact", "exact = false", "exact = no", false, 5, "bad exact 'no'" },
	{ "version not first", "version = 1\nday = 2026-11-27", "day = 2026-11-27\nversion = 1",
	  true, 2, "the first key must be 'version'" },
	{ "crlf", "version = 1\n", "version = 1\r\n", false, 2, "control character 0x0d" },
	{ "no spaces", "day = ", "day=", false, 3, "expected 'key = value'" },
	{ "blank line", "day = ", "\nday = ", false, 3, "expected 'key = value'" },
	{ "upper-case checksum", NULL, NULL, false, 7, "bad checksum" },
	{ "garbage after checksum", NULL, "x\n", false, 8, "data after the checksum line" },
	{ "garbage, no newline", NULL, "junk", false, 8, "data after the checksum line" },
};

static void expect_bad(struct fixture *fx, const char *text, size_t len, int line,
		       const char *why, const char *name)
{
	char before[FILE_MAX], after[FILE_MAX], want[256];
	struct dose_ledger *l = NULL;
	int rc;

	spit(fx->path, text, len);
	slurp(fx->path, before, sizeof(before));
	rc = dose_open(fx->dir, DAY, &l, fx->err, sizeof(fx->err));
	if (rc != -EBADMSG || !strstr(fx->err, why)) {
		print_error("case '%s': rc %d, err '%s'\n", name, rc, fx->err);
	}
	assert_int_equal(rc, -EBADMSG);
	assert_null(l);
	snprintf(want, sizeof(want), "%s:%d: ", fx->path, line);
	assert_memory_equal(fx->err, want, strlen(want));
	assert_non_null(strstr(fx->err, why));
	assert_non_null(strstr(fx->err, "refusing to arm"));
	assert_false(exists(fx->dir, "dose.tmp"));
	/* left byte for byte */
	assert_int_equal(slurp(fx->path, after, sizeof(after)), len);
	assert_memory_equal(before, after, len);
}

static void test_dose_corrupt(void **state)
{
	struct fixture *fx = *state;
	char good[FILE_MAX], buf[FILE_MAX];
	const struct corrupt_case *c;
	size_t i, len, half;
	int line;

	make_ledger(fx, 1200);
	len = slurp(fx->path, good, sizeof(good));
	for (i = 0; i < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]); i++) {
		c = &corrupt_cases[i];
		memcpy(buf, good, len + 1);
		if (c->from) {
			replace(buf, sizeof(buf), c->from, c->to);
		} else if (c->to) {
			strcat(buf, c->to);
		} else {
			/* upper-case the checksum's hex letters, or make one up */
			char *p = strstr(buf, "checksum = ") + 11;

			memcpy(p, "ABCDEF01", 8);
		}
		if (c->fix) {
			fix_checksum(buf, sizeof(buf));
		}
		expect_bad(fx, buf, strlen(buf), c->line, c->why, c->name);
	}
	/* cut in half: at whatever line that falls in */
	for (half = len / 2; half < len / 2 + 3; half++) {
		line = 0;
		for (i = 0; i < half; i++) {
			line += good[i] == '\n';
		}
		line += good[half - 1] != '\n';
		expect_bad(fx, good, half, line, "(truncated?)", "half");
	}
	/* the checksum line's newline lost */
	expect_bad(fx, good, len - 1, 7, "the file ends in the middle of a line", "no newline");
	/* a whole line lost at the end */
	expect_bad(fx, good, (size_t)(strstr(good, "\nchecksum = ") + 1 - good), 6,
		   "the file ends before its checksum line", "no checksum");
	expect_bad(fx, "", 0, 1, "the file is empty", "empty");
	/* the good one still opens */
	spit(fx->path, good, len);
	dose_close(open_ok(fx, DAY));
}

static void test_dose_future(void **state)
{
	struct fixture *fx = *state;
	char before[FILE_MAX], after[FILE_MAX];
	struct dose_ledger *l = NULL;

	make_ledger(fx, 3);
	slurp(fx->path, before, sizeof(before));
	assert_int_equal(dose_open(fx->dir, DAY - 1, &l, fx->err, sizeof(fx->err)), -ERANGE);
	assert_null(l);
	assert_memory_equal(fx->err, fx->path, strlen(fx->path));
	assert_non_null(strstr(fx->err, "the ledger is dated 2026-11-27, after today 2026-11-26: the clock went back?"));
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
}

static void test_dose_busy_same_process(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, DAY), *l2 = NULL;
	char want[256];

	/* flock belongs to the open file description: a second open conflicts */
	assert_int_equal(dose_open(fx->dir, DAY, &l2, fx->err, sizeof(fx->err)), -EBUSY);
	assert_null(l2);
	snprintf(want, sizeof(want), "state directory %s is in use by another rpmsd (pid %ld)",
		 fx->dir, (long)getpid());
	assert_memory_equal(fx->err, want, strlen(want));
	dose_close(l);
	l = open_ok(fx, DAY);
	dose_close(l);
}

static void test_dose_busy_other_process(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = NULL;
	int ready[2], quit[2], status;
	char want[256], c = 0;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(quit), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		int rc = dose_open(fx->dir, DAY, &l, NULL, 0);

		c = rc ? 'E' : 'K';
		if (write(ready[1], &c, 1) != 1 || read(quit[0], &c, 1) != 1) {
			_exit(2);
		}
		dose_close(l);
		_exit(rc ? 1 : 0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'K');
	assert_int_equal(dose_open(fx->dir, DAY, &l, fx->err, sizeof(fx->err)), -EBUSY);
	snprintf(want, sizeof(want), "state directory %s is in use by another rpmsd (pid %ld)",
		 fx->dir, (long)pid);
	assert_memory_equal(fx->err, want, strlen(want));
	assert_int_equal(write(quit[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	l = open_ok(fx, DAY);
	dose_close(l);
	close(ready[0]);
	close(ready[1]);
	close(quit[0]);
	close(quit[1]);
}

static void test_dose_record_refused(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, DAY);
	char before[FILE_MAX], after[FILE_MAX];

	record_ok(fx, l, DAY, 300, false);
	/* this run gives back its own unused reservation */
	record_ok(fx, l, DAY, 100, true);
	dose_close(l);
	/* a later run may not go below what this one counted */
	l = open_ok(fx, DAY);
	record_ok(fx, l, DAY, 250, false);
	slurp(fx->path, before, sizeof(before));
	assert_int_equal(dose_record(l, DAY, 99, true, fx->err, sizeof(fx->err)), -EINVAL);
	assert_non_null(strstr(fx->err, "cannot record 99 pulses for 2026-11-27: earlier runs already counted 100"));
	assert_int_equal(dose_record(l, DAY - 1, 200, true, fx->err, sizeof(fx->err)), -EINVAL);
	assert_non_null(strstr(fx->err, "cannot record 2026-11-26: the ledger already counts 2026-11-27"));
	assert_int_equal(dose_record(l, DOSE_DAY_INVALID, 200, true, NULL, 0), -EINVAL);
	assert_int_equal(dose_pulses(l), 250);
	assert_int_equal(dose_day(l), DAY);
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	dose_close(l);
	/* and a later day may of course count fewer */
	l = open_ok(fx, DAY);
	record_ok(fx, l, DAY + 1, 1, false);
	dose_close(l);
}

static void test_dose_write_fails(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, DAY);
	char before[FILE_MAX], after[FILE_MAX], tmp[128];

	record_ok(fx, l, DAY, 100, false);
	slurp(fx->path, before, sizeof(before));
	/* root ignores a read-only directory; a directory in the way does not */
	snprintf(tmp, sizeof(tmp), "%s/dose.tmp", fx->dir);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(dose_record(l, DAY, 200, true, fx->err, sizeof(fx->err)), -EISDIR);
	assert_memory_equal(fx->err, tmp, strlen(tmp));
	assert_non_null(strstr(fx->err, "is unchanged"));
	assert_int_equal(dose_pulses(l), 100);
	assert_false(dose_exact(l));
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	dose_close(l);
	l = open_ok(fx, DAY);
	assert_int_equal(dose_pulses(l), 100);
	assert_int_equal(rmdir(tmp), 0);
	record_ok(fx, l, DAY, 200, true);
	dose_close(l);
}

static void test_dose_bad_dir(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/nope", fx->dir);
	assert_int_equal(dose_open(path, DAY, &l, fx->err, sizeof(fx->err)), -ENOENT);
	assert_non_null(strstr(fx->err, path));
	assert_non_null(strstr(fx->err, "does not exist"));
	spit(path, "x", 1);
	assert_int_equal(dose_open(path, DAY, &l, fx->err, sizeof(fx->err)), -ENOTDIR);
	assert_non_null(strstr(fx->err, "is not a directory"));
	assert_int_equal(dose_open(fx->dir, DOSE_DAY_INVALID, &l, NULL, 0), -EINVAL);
	assert_null(l);
	/* the ledger itself a directory */
	assert_int_equal(mkdir(fx->path, 0700), 0);
	assert_int_equal(dose_open(fx->dir, DAY, &l, fx->err, sizeof(fx->err)), -EISDIR);
	assert_null(l);
}

static void set_tz(const char *tz)
{
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
}

static void expect_day(int64_t day, const char *s)
{
	char buf[DOSE_DAY_STRLEN];

	dose_day_string(day, buf, sizeof(buf));
	assert_string_equal(buf, s);
}

static void test_dose_days_utc(void **state)
{
	char want[32], got[DOSE_DAY_STRLEN];
	struct tm tm;
	int64_t t;

	(void)state;
	set_tz("UTC");
	assert_int_equal(dose_local_day(0), 0);
	assert_int_equal(dose_local_day(86399), 0);
	assert_int_equal(dose_local_day(86400), 1);
	assert_int_equal(dose_local_day(-1), -1);
	assert_int_equal(dose_local_day(1795780800), DAY);	/* 2026-11-27T12:00Z */
	expect_day(0, "1970-01-01");
	expect_day(-1, "1969-12-31");
	expect_day(DAY, "2026-11-27");
	expect_day(11016, "2000-02-29");
	expect_day(-719162, "0001-01-01");
	expect_day(2932896, "9999-12-31");
	expect_day(-719163, "invalid");
	expect_day(2932897, "invalid");
	expect_day(DOSE_DAY_INVALID, "invalid");
	/* against the C library, every 7 h 13 min over 1900..2100 */
	for (t = -2208988800LL; t < 4102444800LL; t += 7 * 3600 + 13 * 60) {
		time_t tt = (time_t)t;

		assert_non_null(gmtime_r(&tt, &tm));
		strftime(want, sizeof(want), "%Y-%m-%d", &tm);
		dose_day_string(dose_local_day(tt), got, sizeof(got));
		assert_string_equal(got, want);
		assert_int_equal(dose_local_day(tt), t >= 0 ? t / 86400 : -((-t + 86399) / 86400));
	}
	/* a short buffer is truncated, not overrun */
	dose_day_string(DAY, want, 5);
	assert_string_equal(want, "2026");
}

static void test_dose_days_local(void **state)
{
	char buf[DOSE_DAY_STRLEN];

	(void)state;
	/* New Zealand, as a POSIX rule so that it needs no tzdata: +13 in November */
	set_tz("NZST-12NZDT,M9.5.0,M4.1.0/3");
	/* 2026-11-27T10:59:59Z is 23:59:59 local on the 27th */
	assert_int_equal(dose_local_day(1795780800 - 3600 - 1), DAY);
	/* 2026-11-27T11:00:00Z is midnight local: already the 28th */
	assert_int_equal(dose_local_day(1795780800 - 3600), DAY + 1);
	dose_day_string(dose_local_day(1795780800), buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-28");
	/* the same instant in UTC is still the 27th */
	set_tz("UTC");
	assert_int_equal(dose_local_day(1795780800 - 3600), DAY);
}

#define CRASH_ROUNDS 50
#define CRASH_STEP 3

/* The child: record ever larger counts until killed. */
static void crash_child(const char *dir)
{
	struct dose_ledger *l = NULL;
	uint64_t n;
	int i;

	if (dose_open(dir, DAY, &l, NULL, 0) < 0) {
		_exit(1);
	}
	n = dose_pulses(l);
	for (i = 0; i < 100000; i++) {
		n += CRASH_STEP;
		if (dose_record(l, DAY, n, i & 1, NULL, 0) < 0) {
			_exit(1);
		}
	}
	_exit(0);
}

static void test_dose_crash(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l;
	uint64_t last = 0;
	unsigned seed = 20261127;
	int round, status;
	pid_t pid;

	for (round = 0; round < CRASH_ROUNDS; round++) {
		pid = fork();
		assert_true(pid >= 0);
		if (!pid) {
			crash_child(fx->dir);
		}
		usleep((useconds_t)(rand_r(&seed) % 20000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* a whole ledger with one of the recorded counts, never less */
		l = open_ok(fx, DAY);
		assert_int_equal(dose_pulses(l) % CRASH_STEP, 0);
		assert_true(dose_pulses(l) >= last);
		last = dose_pulses(l);
		dose_close(l);
	}
	/* the child got to record at all */
	assert_true(last > 0);
	print_message("crash: %d rounds, %llu pulses counted\n", CRASH_ROUNDS,
		      (unsigned long long)last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dose_first_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_record_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_later_day, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_documented_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_ledger_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_future, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_busy_same_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_busy_other_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_bad_dir, setup, teardown),
		cmocka_unit_test(test_dose_days_utc),
		cmocka_unit_test(test_dose_days_local),
		cmocka_unit_test_setup_teardown(test_dose_crash, setup, teardown),
	};

	/* The ledger's days are local days: pin the zone the tests assume. */
	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
