/* SPDX-License-Identifier: MIT */
/*
 * Tests of the pulses-per-day ledger, each in a fresh state directory:
 * first use, reopen, day change, every kind of damage (refused, file left
 * as it was), the lock, refused records, a failed write, days in a zone
 * (TZ changes, zone changes, DST days), a version 1 ledger, rollbacks and
 * symbolic links, the previous run's last pulse, a wall clock stepped
 * between runs, and a daemon SIGKILLed while it records (the ledger is
 * never torn, and never taken for an old copy), also deterministically at
 * every point of the write sequence, twice in a row.
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
#include "zone.h"

/* 2026-11-27 */
#define DAY 20784
#define NOON(day) ((int64_t)(day) * 86400 + 43200)
#define FILE_MAX 4096
#define BOOT_A "11111111-2222-3333-4444-555555555555"
#define BOOT_B "66666666-7777-8888-9999-aaaaaaaaaaaa"
#define SEC INT64_C(1000000000)

struct fixture {
	char dir[64];
	char path[96];		/* DIR/dose */
	char err[DOSE_ERR_MAX];
	struct zone *utc;
	struct zone *zone;	/* what open_ok uses: utc unless a test changes it */
	struct dose_clock now;	/* what open_ok and record_ok use */
};

/* The clock at @real_s, and CLOCK_BOOTTIME in BOOT_A following it (booted in 2020). */
static void at(struct fixture *fx, int64_t real_s)
{
	fx->now.real_s = real_s;
	fx->now.boot_ns = (real_s - INT64_C(1600000000)) * SEC;
	snprintf(fx->now.boot_id, sizeof(fx->now.boot_id), BOOT_A);
}

static struct zone *zone_ok(const char *name)
{
	struct zone *z = NULL;
	char err[256];

	assert_int_equal(zone_load(name, &z, err, sizeof(err)), 0);
	return z;
}

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
	fx->utc = zone_ok("UTC");
	fx->zone = fx->utc;
	at(fx, NOON(DAY));
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (fx->zone != fx->utc) {
		zone_free(fx->zone);
	}
	zone_free(fx->utc);
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

static int open_at(struct fixture *fx, int64_t real_s, struct dose_ledger **l)
{
	*l = NULL;
	fx->err[0] = '\0';
	at(fx, real_s);
	return dose_open(fx->dir, fx->zone, &fx->now, l, fx->err, sizeof(fx->err));
}

static struct dose_ledger *open_ok(struct fixture *fx, int64_t real_s)
{
	struct dose_ledger *l = NULL;
	int rc = open_at(fx, real_s, &l);

	if (rc) {
		print_error("dose_open: %d: %s\n", rc, fx->err);
	}
	assert_int_equal(rc, 0);
	assert_non_null(l);
	return l;
}

/* Record @pulses on the ledger's day (or a new one) at fx->now. */
static void record_ok(struct fixture *fx, struct dose_ledger *l, bool new_day,
		      uint64_t pulses, bool exact)
{
	int rc = dose_record(l, &fx->now, new_day, pulses, exact, DOSE_KEEP_PULSE, fx->err,
			     sizeof(fx->err));

	if (rc) {
		print_error("dose_record: %d: %s\n", rc, fx->err);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(dose_pulses(l), pulses);
}

/* A state directory whose ledger counts @pulses (not exact) on DAY. */
static void make_ledger(struct fixture *fx, uint64_t pulses)
{
	struct dose_ledger *l = open_ok(fx, NOON(DAY));

	record_ok(fx, l, false, pulses, false);
	dose_close(l);
}

static void test_dose_first_use(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, NOON(DAY));
	char buf[FILE_MAX];

	assert_int_equal(dose_pulses(l), 0);
	assert_int_equal(dose_day(l), DAY);
	assert_int_equal(dose_day_end(l), (DAY + 1) * 86400);
	assert_true(dose_exact(l));
	assert_int_equal(dose_prior_pulse_ns(l), DOSE_NO_PULSE);
	assert_null(dose_notice(l));
	assert_true(exists(fx->dir, "dose"));
	assert_true(exists(fx->dir, "sequence"));
	assert_true(exists(fx->dir, "initialised"));
	assert_true(exists(fx->dir, "lock"));
	assert_false(exists(fx->dir, "dose.tmp"));
	slurp(fx->path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\nversion = 2\nzone = UTC\nday = 2026-11-27\n"
				    "day_ends = 2026-11-28T00:00:00Z\npulses = 0\nexact = true\n"
				    "last_pulse_ns = none\nboot_id = " BOOT_A "\n"
				    "boottime_ns = 195780800000000000\nsequence = 1\n"
				    "written = 2026-11-27T12:00:00Z pid "));
	snprintf(buf, sizeof(buf), "%s/sequence", fx->dir);
	slurp(buf, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\nversion = 2\nsequence = 1\nchecksum = "));
	snprintf(buf, sizeof(buf), "%s/initialised", fx->dir);
	slurp(buf, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\ninitialised = 2026-11-27\n"));
	dose_close(l);
	dose_close(NULL);
}

static void test_dose_record_reopen(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, NOON(DAY));
	char buf[FILE_MAX], want[64];

	record_ok(fx, l, false, 1200, false);
	assert_false(dose_exact(l));
	dose_close(l);
	l = open_ok(fx, NOON(DAY) + 60);
	assert_int_equal(dose_pulses(l), 1200);
	assert_false(dose_exact(l));
	/* the same count again, now exact: a clean shutdown */
	record_ok(fx, l, false, 1200, true);
	dose_close(l);
	l = open_ok(fx, NOON(DAY) + 120);
	assert_int_equal(dose_pulses(l), 1200);
	assert_true(dose_exact(l));
	dose_close(l);
	slurp(fx->path, buf, sizeof(buf));
	assert_memory_equal(buf, "# rpmsd pulse ledger: ", 22);
	snprintf(want, sizeof(want), " pid %ld\nchecksum = ", (long)getpid());
	assert_non_null(strstr(buf, want));
	assert_non_null(strstr(buf, "\nsequence = 3\n"));
	assert_false(exists(fx->dir, "dose.tmp"));
	assert_false(exists(fx->dir, "sequence.tmp"));
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
	/* the last second of the day still counts it... */
	l = open_ok(fx, (DAY + 1) * 86400 - 1);
	assert_int_equal(dose_pulses(l), 500);
	assert_false(dose_day_over(l, &fx->now));
	dose_close(l);
	/* ...its end does not */
	l = open_ok(fx, (DAY + 1) * 86400);
	assert_int_equal(dose_pulses(l), 0);
	assert_int_equal(dose_day(l), DAY + 1);
	assert_int_equal(dose_day_end(l), (DAY + 2) * 86400);
	assert_true(dose_exact(l));
	/* nothing written until the next record */
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	record_ok(fx, l, false, 7, false);
	dose_close(l);
	slurp(fx->path, after, sizeof(after));
	assert_non_null(strstr(after, "\nday = 2026-11-28\nday_ends = 2026-11-29T00:00:00Z\npulses = 7\n"));
	line_keys(before, kb, sizeof(kb));
	line_keys(after, ka, sizeof(ka));
	assert_string_equal(kb, ka);
	l = open_ok(fx, NOON(DAY + 1));
	assert_int_equal(dose_pulses(l), 7);
	/* a new day only once the day is over, and then any count */
	assert_int_equal(dose_record(l, &fx->now, true, 2, true, DOSE_KEEP_PULSE, fx->err,
				     sizeof(fx->err)), -EINVAL);
	assert_non_null(strstr(fx->err, "cannot begin a new day: the day 2026-11-28 ends at 2026-11-29T00:00:00Z"));
	at(fx, NOON(DAY + 3));
	assert_true(dose_day_over(l, &fx->now));
	record_ok(fx, l, true, 2, true);
	assert_int_equal(dose_day(l), DAY + 3);
	assert_int_equal(dose_day_end(l), (DAY + 4) * 86400);
	dose_close(l);
	l = open_ok(fx, NOON(DAY + 3));
	assert_int_equal(dose_pulses(l), 2);
	dose_close(l);
}

/* The example in dose_file.c's comment is a real ledger. */
static void test_dose_documented_example(void **state)
{
	struct fixture *fx = *state;
	char buf[FILE_MAX] =
		"# rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)\n"
		"version = 2\n"
		"zone = Europe/Berlin\n"
		"day = 2026-11-27\n"
		"day_ends = 2026-11-27T23:00:00Z\n"
		"pulses = 1200\n"
		"exact = false\n"
		"last_pulse_ns = 5423000111222\n"
		"boot_id = 3f1c2a4e-8d0b-4c8e-9a51-0f6e2d7b9c13\n"
		"boottime_ns = 5423114000000\n"
		"sequence = 42\n"
		"written = 2026-11-27T09:15:02Z pid 1234\n"
		"checksum = 00000000\n";
	struct dose_ledger *l;

	fix_checksum(buf, sizeof(buf));
	assert_non_null(strstr(buf, "checksum = 67eef47c\n"));
	spit(fx->path, buf, strlen(buf));
	fx->zone = zone_ok("Europe/Berlin");
	l = open_ok(fx, NOON(DAY));
	assert_int_equal(dose_pulses(l), 1200);
	assert_false(dose_exact(l));
	assert_int_equal(dose_day_end(l), NOON(DAY) + 11 * 3600);
	/* a crash (not exact): the last pulse may have been just now */
	assert_int_equal(dose_prior_pulse_ns(l), 0);
	dose_close(l);
	/* a ledger without its marker or sequence (a crash after the first write) is trusted */
	assert_true(exists(fx->dir, "initialised"));
}

static void test_dose_ledger_missing(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = NULL;
	char marker[128];

	make_ledger(fx, 10);
	assert_int_equal(unlink(fx->path), 0);
	assert_int_equal(open_at(fx, NOON(DAY + 1), &l), -ENOENT);
	assert_null(l);
	assert_memory_equal(fx->err, fx->path, strlen(fx->path));
	assert_non_null(strstr(fx->err, " is missing but "));
	assert_non_null(strstr(fx->err, "initialised on 2026-11-27"));
	assert_non_null(strstr(fx->err, "refusing to arm"));
	/* never reset silently */
	assert_false(exists(fx->dir, "dose"));
	/* the marker alone gone: the sequence still knows */
	snprintf(marker, sizeof(marker), "%s/initialised", fx->dir);
	assert_int_equal(unlink(marker), 0);
	assert_int_equal(open_at(fx, NOON(DAY + 1), &l), -ENOENT);
	assert_non_null(strstr(fx->err, " is missing but "));
	assert_non_null(strstr(fx->err, "/sequence says it was written 2 times"));
	/* the documented way out */
	snprintf(marker, sizeof(marker), "%s/sequence", fx->dir);
	assert_int_equal(unlink(marker), 0);
	l = open_ok(fx, NOON(DAY + 1));
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
	{ "flipped digit", "pulses = 1200", "pulses = 1300", false, 13, "checksum mismatch" },
	{ "version 3", "version = 2", "version = 3", false, 2,
	  "unsupported ledger version 3" },
	{ "version 3, good checksum", "version = 2", "version = 3", true, 2,
	  "unsupported ledger version 3" },
	{ "unknown key", "day = ", "colour = blue\nday = ", false, 4, "unknown key 'colour'" },
	{ "duplicate key", "exact = ", "pulses = 1\nexact = ", false, 7,
	  "duplicate key 'pulses' (first on line 6)" },
	{ "missing key", "exact = false\n", "", true, 12, "missing key 'exact'" },
	{ "bad number", "pulses = 1200", "pulses = 12a0", false, 6, "bad pulses '12a0'" },
	{ "huge number", "pulses = 1200", "pulses = 18446744073709551616", false, 6,
	  "bad pulses" },
	/* a count no cap allows, however well checksummed (issue 16, D4) */
	{ "2^64 - 1", "pulses = 1200", "pulses = 18446744073709551615", true, 6,
	  "pulses = 18446744073709551615 is more than any daily cap allows" },
	{ "one above the largest cap", "pulses = 1200", "pulses = 10000001", true, 6,
	  "pulses = 10000001 is more than any daily cap allows (safety.max_daily_pulses is at most 10000000)" },
	{ "bad date", "day = 2026-11-27", "day = 2026-02-30", false, 4, "bad day '2026-02-30'" },
	{ "bad day end", "day_ends = 2026-11-28T00:00:00Z", "day_ends = 2026-11-28T24:00:00Z",
	  false, 5, "bad day_ends '2026-11-28T24:00:00Z'" },
	{ "local day end", "day_ends = 2026-11-28T00:00:00Z", "day_ends = 2026-11-28T00:00:00",
	  false, 5, "bad day_ends" },
	{ "bad zone", "zone = UTC", "zone = ../UTC", false, 3, "bad zone '../UTC'" },
	{ "bad exact", "exact = false", "exact = no", false, 7, "bad exact 'no'" },
	{ "bad last pulse", "last_pulse_ns = none", "last_pulse_ns = -5", false, 8,
	  "bad last_pulse_ns '-5'" },
	{ "bad boot id", "boot_id = " BOOT_A, "boot_id = 11111111", false, 9, "bad boot_id" },
	{ "sequence 0", "sequence = 2", "sequence = 0", false, 11, "bad sequence '0'" },
	{ "bad written", "written = 2026-11-27T12:00:00Z pid", "written = yesterday pid", false,
	  12, "bad written" },
	{ "version not first", "version = 2\nzone = UTC", "zone = UTC\nversion = 2",
	  true, 2, "the first key must be 'version'" },
	{ "crlf", "version = 2\n", "version = 2\r\n", false, 2, "control character 0x0d" },
	{ "no spaces", "day = ", "day=", false, 4, "expected 'key = value'" },
	{ "blank line", "day = ", "\nday = ", false, 4, "expected 'key = value'" },
	{ "upper-case checksum", NULL, NULL, false, 13, "bad checksum" },
	{ "garbage after checksum", NULL, "x\n", false, 14, "data after the checksum line" },
	{ "garbage, no newline", NULL, "junk", false, 14, "data after the checksum line" },
};

static void expect_bad(struct fixture *fx, const char *text, size_t len, int line,
		       const char *why, const char *name)
{
	char before[FILE_MAX], after[FILE_MAX], want[256];
	struct dose_ledger *l = NULL;
	int rc;

	spit(fx->path, text, len);
	slurp(fx->path, before, sizeof(before));
	rc = open_at(fx, NOON(DAY), &l);
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
	expect_bad(fx, good, len - 1, 13, "the file ends in the middle of a line", "no newline");
	/* a whole line lost at the end */
	expect_bad(fx, good, (size_t)(strstr(good, "\nchecksum = ") + 1 - good), 12,
		   "the file ends before its checksum line", "no checksum");
	expect_bad(fx, "", 0, 1, "the file is empty", "empty");
	/* the good one still opens, and the largest count a cap allows too */
	spit(fx->path, good, len);
	dose_close(open_ok(fx, NOON(DAY)));
	memcpy(buf, good, len + 1);
	replace(buf, sizeof(buf), "pulses = 1200", "pulses = 10000000");
	fix_checksum(buf, sizeof(buf));
	spit(fx->path, buf, strlen(buf));
	{
		struct dose_ledger *l = open_ok(fx, NOON(DAY));

		assert_int_equal(dose_pulses(l), 10000000);
		assert_int_equal(dose_record(l, &fx->now, false, 10000001, false, DOSE_KEEP_PULSE,
					     fx->err, sizeof(fx->err)), -ERANGE);
		dose_close(l);
	}
}

/* The sequence file is checked as strictly. */
static void test_dose_corrupt_sequence(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l;
	char path[128], buf[FILE_MAX];

	make_ledger(fx, 5);
	snprintf(path, sizeof(path), "%s/sequence", fx->dir);
	slurp(path, buf, sizeof(buf));
	replace(buf, sizeof(buf), "sequence = 2", "sequence = 3");
	spit(path, buf, strlen(buf));
	assert_int_equal(open_at(fx, NOON(DAY), &l), -EBADMSG);
	assert_non_null(strstr(fx->err, "/sequence:4: checksum mismatch"));
	assert_non_null(strstr(fx->err, "refusing to arm"));
	replace(buf, sizeof(buf), "sequence = 3", "pulses = 3");
	fix_checksum(buf, sizeof(buf));
	spit(path, buf, strlen(buf));
	assert_int_equal(open_at(fx, NOON(DAY), &l), -EBADMSG);
	assert_non_null(strstr(fx->err, "/sequence:3: unknown key 'pulses'"));
}

static void test_dose_future(void **state)
{
	struct fixture *fx = *state;
	char before[FILE_MAX], after[FILE_MAX];
	struct dose_ledger *l = NULL;

	make_ledger(fx, 3);
	slurp(fx->path, before, sizeof(before));
	/* the clock an hour back, the same date: the day simply goes on */
	l = open_ok(fx, NOON(DAY) - 3600);
	assert_int_equal(dose_pulses(l), 3);
	dose_close(l);
	/* a day back: a ledger dated after today */
	assert_int_equal(open_at(fx, NOON(DAY - 1), &l), -ERANGE);
	assert_null(l);
	assert_memory_equal(fx->err, fx->path, strlen(fx->path));
	assert_non_null(strstr(fx->err, "the ledger is dated 2026-11-27, after today 2026-11-26 (UTC): the clock went back?"));
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	/* begun in another zone: more than 3 days before the day's end */
	replace(before, sizeof(before), "zone = UTC", "zone = Etc/GMT-14");
	fix_checksum(before, sizeof(before));
	spit(fx->path, before, strlen(before));
	l = open_ok(fx, NOON(DAY - 1));
	assert_int_equal(dose_pulses(l), 3);
	dose_close(l);
	assert_int_equal(open_at(fx, (DAY + 1) * 86400 - 3 * 86400 - 1, &l), -ERANGE);
	assert_non_null(strstr(fx->err, "the ledger's day ends at 2026-11-28T00:00:00Z, more than 3 days after now (2026-11-24T23:59:59Z): the clock went back?"));
}

static void test_dose_busy_same_process(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, NOON(DAY)), *l2 = NULL;
	char want[256];

	/* flock belongs to the open file description: a second open conflicts */
	assert_int_equal(open_at(fx, NOON(DAY), &l2), -EBUSY);
	assert_null(l2);
	snprintf(want, sizeof(want), "state directory %s is in use by another rpmsd (pid %ld)",
		 fx->dir, (long)getpid());
	assert_memory_equal(fx->err, want, strlen(want));
	dose_close(l);
	l = open_ok(fx, NOON(DAY));
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
		int rc = dose_open(fx->dir, fx->zone, &fx->now, &l, NULL, 0);

		c = rc ? 'E' : 'K';
		if (write(ready[1], &c, 1) != 1 || read(quit[0], &c, 1) != 1) {
			_exit(2);
		}
		dose_close(l);
		_exit(rc ? 1 : 0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'K');
	assert_int_equal(open_at(fx, NOON(DAY), &l), -EBUSY);
	snprintf(want, sizeof(want), "state directory %s is in use by another rpmsd (pid %ld)",
		 fx->dir, (long)pid);
	assert_memory_equal(fx->err, want, strlen(want));
	assert_int_equal(write(quit[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	l = open_ok(fx, NOON(DAY));
	dose_close(l);
	close(ready[0]);
	close(ready[1]);
	close(quit[0]);
	close(quit[1]);
}

static void test_dose_record_refused(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, NOON(DAY));
	char before[FILE_MAX], after[FILE_MAX];

	record_ok(fx, l, false, 300, false);
	/* this run gives back its own unused reservation */
	record_ok(fx, l, false, 100, true);
	dose_close(l);
	/* a later run may not go below what this one counted */
	l = open_ok(fx, NOON(DAY));
	record_ok(fx, l, false, 250, false);
	slurp(fx->path, before, sizeof(before));
	assert_int_equal(dose_record(l, &fx->now, false, 99, true, DOSE_KEEP_PULSE, fx->err,
				     sizeof(fx->err)), -EINVAL);
	assert_non_null(strstr(fx->err, "cannot record 99 pulses for 2026-11-27: earlier runs already counted 100"));
	assert_int_equal(dose_record(l, &fx->now, true, 200, true, DOSE_KEEP_PULSE, fx->err,
				     sizeof(fx->err)), -EINVAL);
	assert_non_null(strstr(fx->err, "cannot begin a new day"));
	assert_int_equal(dose_pulses(l), 250);
	assert_int_equal(dose_day(l), DAY);
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	dose_close(l);
	/* and a later day may of course count fewer */
	l = open_ok(fx, NOON(DAY));
	at(fx, NOON(DAY + 1));
	record_ok(fx, l, true, 1, false);
	dose_close(l);
}

static void test_dose_write_fails(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, NOON(DAY));
	char before[FILE_MAX], after[FILE_MAX], tmp[128];

	record_ok(fx, l, false, 100, false);
	slurp(fx->path, before, sizeof(before));
	/* root ignores a read-only directory; a directory in the way does not */
	snprintf(tmp, sizeof(tmp), "%s/dose.tmp", fx->dir);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(dose_record(l, &fx->now, false, 200, true, DOSE_KEEP_PULSE, fx->err,
				     sizeof(fx->err)), -EISDIR);
	assert_memory_equal(fx->err, tmp, strlen(tmp));
	assert_non_null(strstr(fx->err, "is unchanged"));
	assert_int_equal(dose_pulses(l), 100);
	assert_false(dose_exact(l));
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(rmdir(tmp), 0);
	/* the ledger written, its sequence not: the ledger counts, the error is returned */
	snprintf(tmp, sizeof(tmp), "%s/sequence.tmp", fx->dir);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(dose_record(l, &fx->now, false, 150, false, DOSE_KEEP_PULSE, fx->err,
				     sizeof(fx->err)), -EISDIR);
	assert_memory_equal(fx->err, tmp, strlen(tmp));
	assert_int_equal(dose_pulses(l), 150);
	dose_close(l);
	/* the next open finishes that write: one that cannot write says so, and changes nothing */
	slurp(fx->path, before, sizeof(before));
	assert_int_equal(open_at(fx, NOON(DAY), &l), -EISDIR);
	assert_null(l);
	assert_memory_equal(fx->err, tmp, strlen(tmp));
	slurp(fx->path, after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(rmdir(tmp), 0);
	/* a ledger ahead of its sequence is the newer one: trusted, its sequence written */
	l = open_ok(fx, NOON(DAY));
	assert_int_equal(dose_pulses(l), 150);
	snprintf(tmp, sizeof(tmp), "%s/sequence", fx->dir);
	slurp(tmp, after, sizeof(after));
	assert_non_null(strstr(after, "sequence = 3\n"));
	record_ok(fx, l, false, 200, true);
	dose_close(l);
}

static void test_dose_bad_dir(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/nope", fx->dir);
	assert_int_equal(dose_open(path, fx->zone, &fx->now, &l, fx->err, sizeof(fx->err)),
			 -ENOENT);
	assert_non_null(strstr(fx->err, path));
	assert_non_null(strstr(fx->err, "does not exist"));
	spit(path, "x", 1);
	assert_int_equal(dose_open(path, fx->zone, &fx->now, &l, fx->err, sizeof(fx->err)),
			 -ENOTDIR);
	assert_non_null(strstr(fx->err, "is not a directory"));
	fx->now.real_s = INT64_C(-70000000000);
	assert_int_equal(dose_open(fx->dir, fx->zone, &fx->now, &l, fx->err, sizeof(fx->err)),
			 -EINVAL);
	assert_non_null(strstr(fx->err, "is not in years 1 to 9999: is the clock set?"));
	assert_null(l);
	/* the ledger itself a directory */
	assert_int_equal(mkdir(fx->path, 0700), 0);
	assert_int_equal(open_at(fx, NOON(DAY), &l), -EISDIR);
	assert_non_null(strstr(fx->err, "not a regular file"));
	assert_null(l);
}

static void test_dose_day_string(void **state)
{
	char buf[DOSE_DAY_STRLEN];

	(void)state;
	dose_day_string(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01");
	dose_day_string(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31");
	dose_day_string(DAY, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-27");
	dose_day_string(11016, buf, sizeof(buf));
	assert_string_equal(buf, "2000-02-29");
	dose_day_string(-719162, buf, sizeof(buf));
	assert_string_equal(buf, "0001-01-01");
	dose_day_string(2932896, buf, sizeof(buf));
	assert_string_equal(buf, "9999-12-31");
	dose_day_string(-719163, buf, sizeof(buf));
	assert_string_equal(buf, "invalid");
	dose_day_string(2932897, buf, sizeof(buf));
	assert_string_equal(buf, "invalid");
	/* a short buffer is truncated, not overrun */
	dose_day_string(DAY, buf, 5);
	assert_string_equal(buf, "2026");
}

static void set_tz(const char *tz)
{
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
}

/*
 * Issue 16, D1: with the day in TZ, TZ=Etc/GMT+12 then TZ=Etc/GMT-12
 * seconds later were two dates (they are always a day apart), and each
 * run had a full allowance. The day is the configured zone's: TZ plays no
 * part, before or after.
 */
static void test_dose_tz_plays_no_part(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l;

	set_tz("Etc/GMT+12");
	l = open_ok(fx, NOON(DAY) + 11 * 3600);
	record_ok(fx, l, false, 100, true);
	dose_close(l);
	set_tz("Etc/GMT-12");
	l = open_ok(fx, NOON(DAY) + 11 * 3600 + 5);
	assert_int_equal(dose_pulses(l), 100);
	assert_int_equal(dose_day(l), DAY);
	dose_close(l);
	set_tz("UTC");
}

/*
 * The zone changed between runs (safety.day_zone edited, or the rig's
 * setting): the day keeps the end it was given, and the next one is
 * never shorter than 23 h.
 */
static void test_dose_zone_change(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l;
	int64_t end;

	/* begun in UTC-12 at 12:00 UTC: ends at 12:00 UTC the next day */
	fx->zone = zone_ok("Etc/GMT+12");
	l = open_ok(fx, NOON(DAY));
	end = dose_day_end(l);
	assert_int_equal(end, NOON(DAY + 1));
	assert_int_equal(dose_day(l), DAY);
	record_ok(fx, l, false, 100, true);
	dose_close(l);
	zone_free(fx->zone);
	/* in UTC+14 it is the next day already: the count holds all the same */
	fx->zone = zone_ok("Etc/GMT-14");
	l = open_ok(fx, NOON(DAY) + 60);
	assert_int_equal(dose_pulses(l), 100);
	assert_int_equal(dose_day_end(l), end);
	assert_non_null(dose_notice(l));
	assert_non_null(strstr(dose_notice(l), "the day was begun in zone Etc/GMT+12 and ends at 2026-11-28T12:00:00Z as it was then; days after it end at midnight in Etc/GMT-14"));
	dose_close(l);
	/*
	 * After it, UTC+14's next midnight is 10:00 UTC, only 22 h on: too
	 * short, so the new day runs to the midnight after, 46 h on.
	 */
	l = open_ok(fx, end);
	assert_int_equal(dose_pulses(l), 0);
	assert_true(dose_day_end(l) - end >= DOSE_DAY_MIN_S);
	assert_int_equal(dose_day_end(l), end + 46 * 3600);
	dose_close(l);
	/* a zone an hour east: 23 h, allowed (it is a DST day's length) */
	zone_free(fx->zone);
	fx->zone = zone_ok("Etc/GMT+11");
	l = open_ok(fx, end);
	assert_int_equal(dose_day_end(l), end + 23 * 3600);
	dose_close(l);
}

/* Days of 23 and 25 hours, and runs across the change, in Europe/Berlin. */
static void test_dose_dst_days(void **state)
{
	struct fixture *fx = *state;
	/* 2026-03-29: 01:00 UTC 02:00 CET -> 03:00 CEST; 2026-10-25: 01:00 UTC 03:00 CEST -> 02:00 CET */
	const int64_t spring = INT64_C(1774746000), autumn = INT64_C(1792890000);
	struct dose_ledger *l;

	fx->zone = zone_ok("Europe/Berlin");
	/* 2026-03-28 23:30 CET: the day ends at midnight CET, 23:00 UTC */
	l = open_ok(fx, spring - 2 * 3600 - 1800);
	assert_int_equal(dose_day_end(l), spring - 2 * 3600);
	record_ok(fx, l, false, 40, true);
	dose_close(l);
	/* 00:30 CET on the 29th: a new day, 23 hours long (to 22:00 UTC) */
	l = open_ok(fx, spring - 1800);
	assert_int_equal(dose_pulses(l), 0);
	assert_int_equal(dose_day_end(l), spring - 2 * 3600 + 23 * 3600);
	record_ok(fx, l, false, 30, true);
	dose_close(l);
	/* 03:30 CEST, after the change: the same day, the same count */
	l = open_ok(fx, spring + 1800);
	assert_int_equal(dose_pulses(l), 30);
	dose_close(l);
	/* 2026-10-25, 02:30 CEST (before the change), then 02:30 CET (after): one day of 25 h */
	l = open_ok(fx, autumn - 1800);
	assert_int_equal(dose_pulses(l), 0);
	assert_int_equal(dose_day_end(l), autumn - 3 * 3600 + 25 * 3600);
	record_ok(fx, l, false, 50, true);
	dose_close(l);
	l = open_ok(fx, autumn + 1800);
	assert_int_equal(dose_pulses(l), 50);
	dose_close(l);
	/* and TZ set to a zone with other rules changes nothing */
	set_tz("America/New_York");
	l = open_ok(fx, autumn + 3600);
	assert_int_equal(dose_pulses(l), 50);
	assert_int_equal(dose_day_end(l), autumn - 3 * 3600 + 25 * 3600);
	dose_close(l);
	set_tz("UTC");
}

/* A version 1 ledger: a local date in an unknown zone. */
static void test_dose_version1(void **state)
{
	struct fixture *fx = *state;
	char buf[FILE_MAX] =
		"# rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)\n"
		"version = 1\n"
		"day = 2026-11-27\n"
		"pulses = 1200\n"
		"exact = true\n"
		"written = 2026-11-27T10:15:02+0100 pid 1234\n"
		"checksum = 00000000\n";
	char old[FILE_MAX];
	struct dose_ledger *l;

	fix_checksum(buf, sizeof(buf));
	spit(fx->path, buf, strlen(buf));
	/* 2026-11-28 at 11:59:59 UTC, it may still be the 27th somewhere: the count holds */
	l = open_ok(fx, NOON(DAY + 1) - 1);
	assert_int_equal(dose_pulses(l), 1200);
	assert_int_equal(dose_day_end(l), NOON(DAY + 1));
	/* and the time of its last pulse is not known: taken as just now */
	assert_int_equal(dose_prior_pulse_ns(l), 0);
	assert_non_null(dose_notice(l));
	assert_non_null(strstr(dose_notice(l), "a version 1 ledger (day 2026-11-27, no zone): its 1200 pulses count until 2026-11-28T12:00:00Z"));
	record_ok(fx, l, false, 1200, true);
	dose_close(l);
	slurp(fx->path, old, sizeof(old));
	assert_non_null(strstr(old, "\nversion = 2\nzone = UTC\nday = 2026-11-27\nday_ends = 2026-11-28T12:00:00Z\n"));
	/*
	 * From 12:00 UTC on it has ended everywhere. The next day, like any,
	 * ends at least 23 h after that: once, a day of 36 h.
	 */
	l = open_ok(fx, NOON(DAY + 1));
	assert_int_equal(dose_pulses(l), 0);
	assert_int_equal(dose_day_end(l), (DAY + 3) * 86400);
	dose_close(l);
	/* once version 2 was written here, a version 1 copy is an old one */
	spit(fx->path, buf, strlen(buf));
	assert_int_equal(open_at(fx, NOON(DAY), &l), -ESTALE);
	assert_non_null(strstr(fx->err, "a version 1 ledger, but "));
	assert_non_null(strstr(fx->err, "an old copy was put back; refusing to arm"));
}

/* Issue 16, D10: an older copy of the ledger put back is refused. */
static void test_dose_rollback(void **state)
{
	struct fixture *fx = *state;
	char old[FILE_MAX], cur[FILE_MAX], seq[128];
	struct dose_ledger *l;
	size_t n;

	make_ledger(fx, 40);
	n = slurp(fx->path, old, sizeof(old));
	l = open_ok(fx, NOON(DAY) + 60);
	record_ok(fx, l, false, 270, true);
	dose_close(l);
	slurp(fx->path, cur, sizeof(cur));
	spit(fx->path, old, n);
	assert_int_equal(open_at(fx, NOON(DAY) + 120, &l), -ESTALE);
	assert_null(l);
	assert_memory_equal(fx->err, fx->path, strlen(fx->path));
	assert_non_null(strstr(fx->err, ": sequence 2, but "));
	assert_non_null(strstr(fx->err, "/sequence says the last ledger written was 3: an older copy was put back; refusing to arm"));
	/* left as it was */
	slurp(fx->path, cur, sizeof(cur));
	assert_memory_equal(cur, old, n);
	/* the sequence removed as well: unknown, refused */
	snprintf(seq, sizeof(seq), "%s/sequence", fx->dir);
	assert_int_equal(unlink(seq), 0);
	assert_int_equal(open_at(fx, NOON(DAY) + 120, &l), -ESTALE);
	assert_non_null(strstr(fx->err, "/sequence is missing (the ledger was written 2 times)"));
}

/* Issue 16, D10: no file of the ledger may be a symbolic link. */
static void test_dose_symlinks(void **state)
{
	static const char *const names[] = { "dose", "sequence", "initialised", "lock" };
	struct fixture *fx = *state;
	char path[128], aside[128], want[160];
	struct dose_ledger *l;
	size_t i;

	make_ledger(fx, 40);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		/* a link to the file itself, whole and valid, moved aside */
		snprintf(path, sizeof(path), "%s/%s", fx->dir, names[i]);
		snprintf(aside, sizeof(aside), "%s/%s.real", fx->dir, names[i]);
		assert_int_equal(rename(path, aside), 0);
		assert_int_equal(symlink(aside, path), 0);
		assert_int_equal(open_at(fx, NOON(DAY), &l), -ELOOP);
		assert_null(l);
		snprintf(want, sizeof(want), "%s: ", path);
		if (!strstr(fx->err, want) || !strstr(fx->err, "symbolic link")) {
			print_error("%s: %s\n", names[i], fx->err);
		}
		assert_non_null(strstr(fx->err, want));
		assert_non_null(strstr(fx->err, "symbolic link"));
		assert_int_equal(unlink(path), 0);
		assert_int_equal(rename(aside, path), 0);
	}
	dose_close(open_ok(fx, NOON(DAY)));
	/* the directory itself may be a link (systemd's DynamicUser= makes one) */
	snprintf(path, sizeof(path), "%s/link", fx->dir);
	assert_int_equal(symlink(fx->dir, path), 0);
	assert_int_equal(dose_open(path, fx->zone, &fx->now, &l, fx->err, sizeof(fx->err)), 0);
	dose_close(l);
}

/* Issue 16, D12: the previous run's last pulse, for the gap between trains. */
static void test_dose_prior_pulse(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, NOON(DAY));
	int64_t last = fx->now.boot_ns - 2 * SEC;

	assert_int_equal(dose_record(l, &fx->now, false, 10, true, last, fx->err,
				     sizeof(fx->err)), 0);
	dose_close(l);
	/* a clean stop, the same boot, 0.8 s later: 2.8 s ago */
	at(fx, NOON(DAY));
	fx->now.boot_ns += 800000000;
	assert_int_equal(dose_open(fx->dir, fx->zone, &fx->now, &l, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(dose_prior_pulse_ns(l), 2 * SEC + 800000000);
	/* this run fires nothing: the next one still knows the pulse */
	assert_int_equal(dose_record(l, &fx->now, false, 10, true, DOSE_KEEP_PULSE, fx->err,
				     sizeof(fx->err)), 0);
	dose_close(l);
	l = open_ok(fx, NOON(DAY) + 10);
	assert_int_equal(dose_prior_pulse_ns(l), 12 * SEC);
	dose_close(l);
	/* another boot: CLOCK_BOOTTIME restarted, the time is not known */
	at(fx, NOON(DAY) + 20);
	snprintf(fx->now.boot_id, sizeof(fx->now.boot_id), BOOT_B);
	assert_int_equal(dose_open(fx->dir, fx->zone, &fx->now, &l, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(dose_prior_pulse_ns(l), 0);
	dose_close(l);
	/* and after a crash (not exact) neither */
	l = open_ok(fx, NOON(DAY) + 30);
	assert_int_equal(dose_record(l, &fx->now, false, 20, false, fx->now.boot_ns - SEC,
				     fx->err, sizeof(fx->err)), 0);
	dose_close(l);
	l = open_ok(fx, NOON(DAY) + 40);
	assert_int_equal(dose_prior_pulse_ns(l), 0);
	dose_close(l);
}

/*
 * The wall clock stepped forwards past the day's end between two runs of
 * one boot: CLOCK_BOOTTIME shows it, and the count is kept.
 */
static void test_dose_step_between_runs(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l;

	make_ledger(fx, 60);
	/* 12 h later by the wall clock, 10 min by CLOCK_BOOTTIME */
	at(fx, NOON(DAY) + 600);
	fx->now.real_s += 12 * 3600;
	assert_int_equal(dose_open(fx->dir, fx->zone, &fx->now, &l, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(dose_pulses(l), 60);
	assert_int_equal(dose_day(l), DAY + 1);
	assert_non_null(strstr(dose_notice(l), "the wall clock was stepped by +43200 s since the ledger was written in this boot"));
	/* it may not go below that */
	assert_int_equal(dose_record(l, &fx->now, false, 59, false, DOSE_KEEP_PULSE, fx->err,
				     sizeof(fx->err)), -EINVAL);
	dose_close(l);
	/* time really passing gives a new day */
	make_ledger(fx, 60);
	l = open_ok(fx, NOON(DAY + 1));
	assert_int_equal(dose_pulses(l), 0);
	assert_null(dose_notice(l));
	dose_close(l);
}

#define CRASH_ROUNDS 50
#define CRASH_STEP 3

/* The child: record ever larger counts until killed. */
static void crash_child(struct fixture *fx)
{
	struct dose_ledger *l = NULL;
	uint64_t n;
	int i;

	if (dose_open(fx->dir, fx->zone, &fx->now, &l, NULL, 0) < 0) {
		_exit(1);
	}
	n = dose_pulses(l);
	for (i = 0; i < 100000; i++) {
		n += CRASH_STEP;
		if (dose_record(l, &fx->now, false, n, i & 1, DOSE_KEEP_PULSE, NULL, 0) < 0) {
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
			crash_child(fx);
		}
		usleep((useconds_t)(rand_r(&seed) % 20000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* a whole ledger with one of the recorded counts, never less, never an "old copy" */
		l = open_ok(fx, NOON(DAY));
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

/*
 * A kill -9 at every point of the write sequence, without timing: the
 * temporary file of one of the state directory's files (dose.tmp,
 * sequence.tmp, initialised.tmp) is made a directory, so that file's
 * replacement fails before its rename, with everything before it on disk,
 * exactly where a kill there would leave it. The run then ends (the ledger
 * closed, as the kernel would) and a torn temporary file is left behind,
 * as a kill in the middle of writing one does. A kill between a rename
 * and the directory's fsync leaves what a kill after the fsync does.
 *
 * A run: open, record a reservation of CRASH_STEP (the gate may then fire
 * all of it), stop cleanly having fired 1 (record it, exact). A point is a
 * step of the run and a file it replaces, or none.
 */
#define POINT_OPS 3
#define POINT_FILES 3
#define POINT_NONE (POINT_OPS * POINT_FILES)
#define POINTS (POINT_NONE + 1)

static const char *const point_files[POINT_FILES] = { "dose", "sequence", "initialised" };
static const char *const point_ops[POINT_OPS] = { "open", "reservation", "clean stop" };
static char point_where[256];

static void point_block(struct fixture *fx, const char *file)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s.tmp", fx->dir, file);
	/* in place of what an earlier kill left */
	if (unlink(path) < 0) {
		assert_int_equal(errno, ENOENT);
	}
	assert_int_equal(mkdir(path, 0700), 0);
}

/*
 * After step @op of a run: whether it was killed there (its file's write
 * failed as planned), the blocker replaced by a torn temporary file. A
 * step that was not to crash must have succeeded: a refusal after crashes
 * alone is a false alarm.
 */
static bool point_crashed(struct fixture *fx, int point, int op, int rc)
{
	const char *file = point != POINT_NONE && point / POINT_FILES == op ?
			   point_files[point % POINT_FILES] : NULL;
	char path[160], tmp[64];

	snprintf(tmp, sizeof(tmp), "/%s.tmp: cannot create", file ? file : "");
	if (rc && (!file || !strstr(fx->err, tmp))) {
		print_error("%s: %s failed (%d): %s\n", point_where, point_ops[op], rc, fx->err);
	}
	if (!file) {
		assert_int_equal(rc, 0);
		return false;
	}
	snprintf(path, sizeof(path), "%s/%s.tmp", fx->dir, file);
	assert_int_equal(rmdir(path), 0);
	if (!rc) {
		/* this step does not write that file: no crash */
		return false;
	}
	assert_non_null(strstr(fx->err, tmp));
	spit(path, "# rpmsd: a pulse ledger\nday = 20", 32);
	return true;
}

/* One run that may be killed at @point; *@fired: the most pulses delivered so far. */
static void point_run(struct fixture *fx, int point, uint64_t *fired)
{
	struct dose_ledger *l = NULL;
	uint64_t start;
	int op = point / POINT_FILES, rc;

	if (op == 0 && point != POINT_NONE) {
		point_block(fx, point_files[point % POINT_FILES]);
	}
	rc = open_at(fx, NOON(DAY), &l);
	if (point_crashed(fx, point, 0, rc)) {
		assert_null(l);
		return;
	}
	/* never fewer than were delivered */
	start = dose_pulses(l);
	if (start < *fired) {
		print_error("%s: the ledger counts %llu, %llu were delivered\n", point_where,
			    (unsigned long long)start, (unsigned long long)*fired);
	}
	assert_true(start >= *fired);
	if (op == 1 && point != POINT_NONE) {
		point_block(fx, point_files[point % POINT_FILES]);
	}
	fx->err[0] = '\0';
	rc = dose_record(l, &fx->now, false, start + CRASH_STEP, false, DOSE_KEEP_PULSE,
			 fx->err, sizeof(fx->err));
	if (point_crashed(fx, point, 1, rc)) {
		dose_close(l);
		return;
	}
	/* The gate may fire the whole reservation; a kill may come after it. */
	*fired += CRASH_STEP;
	if (op == 2 && point != POINT_NONE) {
		point_block(fx, point_files[point % POINT_FILES]);
	}
	/* Stopped having fired one of them: the clean stop records that. */
	*fired -= CRASH_STEP - 1;
	fx->err[0] = '\0';
	rc = dose_record(l, &fx->now, false, start + 1, true, DOSE_KEEP_PULSE, fx->err,
			 sizeof(fx->err));
	point_crashed(fx, point, 2, rc);
	dose_close(l);
}

static void point_describe(char *buf, size_t len, int point)
{
	if (point == POINT_NONE) {
		snprintf(buf, len, "no kill");
	} else {
		snprintf(buf, len, "killed at the %s before %s's rename",
			 point_ops[point / POINT_FILES], point_files[point % POINT_FILES]);
	}
}

static void test_dose_crash_points(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l;
	char a_s[80], b_s[80];
	uint64_t fired;
	int a, b;

	for (a = 0; a < POINTS; a++) {
		for (b = 0; b < POINTS; b++) {
			nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
			assert_int_equal(mkdir(fx->dir, 0700), 0);
			point_describe(a_s, sizeof(a_s), a);
			point_describe(b_s, sizeof(b_s), b);
			snprintf(point_where, sizeof(point_where), "run 1 %s, run 2 %s", a_s, b_s);
			fired = 0;
			point_run(fx, a, &fired);
			point_run(fx, b, &fired);
			/* a third run is never refused and counts every pulse */
			point_run(fx, POINT_NONE, &fired);
			l = open_ok(fx, NOON(DAY));
			assert_true(dose_exact(l));
			assert_true(dose_pulses(l) >= fired);
			dose_close(l);
		}
	}
}

/* What one record costs (two files, each written, fsynced and renamed). */
static void test_dose_cost(void **state)
{
	struct fixture *fx = *state;
	struct dose_ledger *l = open_ok(fx, NOON(DAY));
	struct timespec a, b;
	int i, n = 50;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		record_ok(fx, l, false, (uint64_t)i + 1, false);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("record: %.2f ms each (%d, %s)\n",
		      ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / n, n, fx->dir);
	dose_close(l);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		dose_close(open_ok(fx, NOON(DAY)));
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("open: %.3f ms each\n",
		      ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / n);
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
		cmocka_unit_test_setup_teardown(test_dose_corrupt_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_future, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_busy_same_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_busy_other_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_bad_dir, setup, teardown),
		cmocka_unit_test(test_dose_day_string),
		cmocka_unit_test_setup_teardown(test_dose_tz_plays_no_part, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_zone_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_dst_days, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_version1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_prior_pulse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_step_between_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_crash_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dose_cost, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
