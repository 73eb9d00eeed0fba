/* SPDX-License-Identifier: MIT */
/*
 * The pulses-per-day ledger.
 *
 * The ledger is a short text file an operator can read:
 *
 *   # rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)
 *   version = 2
 *   zone = Europe/Berlin
 *   day = 2026-11-27
 *   day_ends = 2026-11-27T23:00:00Z
 *   pulses = 1200
 *   exact = false
 *   last_pulse_ns = 5423000111222
 *   boot_id = 3f1c2a4e-8d0b-4c8e-9a51-0f6e2d7b9c13
 *   boottime_ns = 5423114000000
 *   sequence = 42
 *   written = 2026-11-27T09:15:02Z pid 1234
 *   checksum = 67eef47c
 *
 * day is the date in zone when the day began, for people; day_ends is the
 * instant the day ends, and the only thing that decides when a new day
 * may begin. last_pulse_ns and boottime_ns are CLOCK_BOOTTIME in the boot
 * boot_id: the previous run's last pulse for the gap between trains, and
 * the write itself, to tell a wall clock that was stepped between two
 * runs of one boot. written is the wall clock at the write (UTC).
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
 * or the new ledger whole. Then the same for "sequence", which holds the
 * sequence of that ledger: written after the ledger, it is never ahead of
 * it, so a dose whose sequence is lower is an older copy put back (a
 * backup, a copy kept aside, a link). What it cannot tell: the whole
 * directory put back together, or someone who rewrites both files with
 * their checksums; the ledger guards against mistakes and casual
 * tampering, not against whoever may write the state directory.
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
#include <time.h>
#include <unistd.h>

#include "dose.h"

#define DOSE_LEDGER "dose"
#define DOSE_LEDGER_TMP "dose.tmp"
#define DOSE_SEQ "sequence"
#define DOSE_SEQ_TMP "sequence.tmp"
#define DOSE_MARKER "initialised"
#define DOSE_MARKER_TMP "initialised.tmp"
#define DOSE_LOCK "lock"

#define DOSE_VERSION 2
#define DOSE_HEADER \
	"# rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)\n"
#define DOSE_SEQ_HEADER \
	"# rpmsd: the sequence of the last pulse ledger (" DOSE_LEDGER ") written; a " \
	DOSE_LEDGER " with a lower one is an old copy\n"

/* A ledger is about 400 bytes; anything this large is not one. */
#define DOSE_FILE_MAX 4096
#define DOSE_WHY_MAX 256
#define DOSE_NOTICE_MAX 512

/* 0001-01-01 and 9999-12-31: the days YYYY-MM-DD can name. */
#define DOSE_DAY_MIN (-719162)
#define DOSE_DAY_MAX 2932896
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

/* The content of a ledger or sequence file. */
struct dose_file {
	int version;
	char zone[ZONE_NAME_MAX + 1];
	int64_t day;
	int64_t day_end;
	uint64_t pulses;
	bool exact;
	int64_t last_pulse_ns;	/* INT64_MIN: none */
	char boot_id[DOSE_BOOT_ID_LEN];	/* "" unknown */
	int64_t boottime_ns;
	int64_t written_s;
	uint64_t seq;
};

enum dose_key {
	DOSE_KEY_VERSION,
	DOSE_KEY_ZONE,
	DOSE_KEY_DAY,
	DOSE_KEY_DAY_ENDS,
	DOSE_KEY_PULSES,
	DOSE_KEY_EXACT,
	DOSE_KEY_LAST_PULSE,
	DOSE_KEY_BOOT_ID,
	DOSE_KEY_BOOTTIME,
	DOSE_KEY_SEQUENCE,
	DOSE_KEY_WRITTEN,
	DOSE_KEY_CHECKSUM,
	DOSE_N_KEYS,
};

static const char *const dose_key_names[DOSE_N_KEYS] = {
	[DOSE_KEY_VERSION] = "version",
	[DOSE_KEY_ZONE] = "zone",
	[DOSE_KEY_DAY] = "day",
	[DOSE_KEY_DAY_ENDS] = "day_ends",
	[DOSE_KEY_PULSES] = "pulses",
	[DOSE_KEY_EXACT] = "exact",
	[DOSE_KEY_LAST_PULSE] = "last_pulse_ns",
	[DOSE_KEY_BOOT_ID] = "boot_id",
	[DOSE_KEY_BOOTTIME] = "boottime_ns",
	[DOSE_KEY_SEQUENCE] = "sequence",
	[DOSE_KEY_WRITTEN] = "written",
	[DOSE_KEY_CHECKSUM] = "checksum",
};

#define DOSE_BIT(k) (1u << (k))

/* The keys of each kind of file, all required. */
#define DOSE_KEYS_V1 (DOSE_BIT(DOSE_KEY_VERSION) | DOSE_BIT(DOSE_KEY_DAY) |		\
		      DOSE_BIT(DOSE_KEY_PULSES) | DOSE_BIT(DOSE_KEY_EXACT) |		\
		      DOSE_BIT(DOSE_KEY_WRITTEN) | DOSE_BIT(DOSE_KEY_CHECKSUM))
#define DOSE_KEYS_V2 ((1u << DOSE_N_KEYS) - 1)
#define DOSE_KEYS_SEQ (DOSE_BIT(DOSE_KEY_VERSION) | DOSE_BIT(DOSE_KEY_SEQUENCE) |	\
		       DOSE_BIT(DOSE_KEY_CHECKSUM))

enum dose_kind {
	DOSE_KIND_LEDGER,
	DOSE_KIND_SEQ,
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

static bool dose_day_valid(int64_t day)
{
	return day >= DOSE_DAY_MIN && day <= DOSE_DAY_MAX;
}

void dose_day_string(int64_t day, char *buf, size_t len)
{
	int64_t y;
	unsigned m, d;

	if (!dose_day_valid(day)) {
		snprintf(buf, len, "invalid");
		return;
	}
	zone_civil_from_days(day, &y, &m, &d);
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
	*day = zone_days_from_civil(y, m, d);
	zone_civil_from_days(*day, &yy, &mm, &dd);
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


static int64_t dose_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* "YYYY-MM-DDTHH:MM:SSZ" of @t into @buf (at least 21 bytes). */
static void dose_utc_string(int64_t t, char *buf, size_t len)
{
	int64_t day = dose_floor_div(t, 86400), s = t - day * 86400;
	char ds[DOSE_DAY_STRLEN];

	dose_day_string(day, ds, sizeof(ds));
	snprintf(buf, len, "%sT%02d:%02d:%02dZ", ds, (int)(s / 3600), (int)(s / 60 % 60),
		 (int)(s % 60));
}

/* Parse exactly "YYYY-MM-DDTHH:MM:SSZ" at @s (@len bytes, at least 20). */
static int dose_parse_utc(const char *s, size_t len, int64_t *t)
{
	static const char pattern[] = "Tdd:dd:ddZ";
	int64_t day;
	int h, m, sec;
	size_t i;

	if (len != 10 + sizeof(pattern) - 1 || dose_parse_day(s, 10, &day) < 0) {
		return -EINVAL;
	}
	for (i = 0; i < sizeof(pattern) - 1; i++) {
		if (pattern[i] == 'd' ? !isdigit((unsigned char)s[10 + i]) : s[10 + i] != pattern[i]) {
			return -EINVAL;
		}
	}
	h = (s[11] - '0') * 10 + (s[12] - '0');
	m = (s[14] - '0') * 10 + (s[15] - '0');
	sec = (s[17] - '0') * 10 + (s[18] - '0');
	if (h > 23 || m > 59 || sec > 59) {
		return -EINVAL;
	}
	*t = day * 86400 + h * 3600 + m * 60 + sec;
	return 0;
}

/* A boot id: 8-4-4-4-12 lowercase hex digits. */
static bool dose_boot_id_ok(const char *s, size_t len)
{
	size_t i;

	if (len != DOSE_BOOT_ID_LEN - 1) {
		return false;
	}
	for (i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return true;
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
	if (n >= DOSE_BOOT_ID_LEN - 1 && dose_boot_id_ok(buf, DOSE_BOOT_ID_LEN - 1)) {
		memcpy(c->boot_id, buf, DOSE_BOOT_ID_LEN - 1);
		c->boot_id[DOSE_BOOT_ID_LEN - 1] = '\0';
	}
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

/* A decimal int64 of @len bytes, 0 or more. */
static int dose_parse_i64(const char *s, size_t len, int64_t *v)
{
	uint64_t n;

	if (dose_parse_u64(s, len, &n) < 0 || n > INT64_MAX) {
		return -EINVAL;
	}
	*v = (int64_t)n;
	return 0;
}

/* Parse the value of version 2's "written": "YYYY-MM-DDTHH:MM:SSZ pid N". */
static int dose_parse_written(const char *v, size_t vlen, int64_t *t)
{
	uint64_t pid;

	if (vlen < 26 || memcmp(v + 20, " pid ", 5) ||
	    dose_parse_u64(v + 25, vlen - 25, &pid) < 0) {
		return -EINVAL;
	}
	return dose_parse_utc(v, 20, t);
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
		if (n < 1 || n > DOSE_VERSION) {
			return dose_bad(pe, line,
					"unsupported ledger version %.*s (this rpmsd reads versions 1 and %d): was it written by a newer rpmsd?",
					(int)vlen, v, DOSE_VERSION);
		}
		f->version = (int)n;
		return 0;
	case DOSE_KEY_ZONE:
		if (vlen > ZONE_NAME_MAX) {
			return dose_bad(pe, line, "bad zone (longer than %d characters)",
					ZONE_NAME_MAX);
		}
		memcpy(f->zone, v, vlen);
		f->zone[vlen] = '\0';
		if (!zone_name_valid(f->zone)) {
			return dose_bad(pe, line, "bad zone '%.*s' (expected a time zone name)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_DAY:
		if (dose_parse_day(v, vlen, &f->day) < 0) {
			return dose_bad(pe, line, "bad day '%.*s' (expected a date YYYY-MM-DD)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_DAY_ENDS:
		if (dose_parse_utc(v, vlen, &f->day_end) < 0) {
			return dose_bad(pe, line,
					"bad day_ends '%.*s' (expected a UTC time YYYY-MM-DDTHH:MM:SSZ)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_PULSES:
		if (dose_parse_u64(v, vlen, &f->pulses) < 0) {
			return dose_bad(pe, line,
					"bad pulses '%.*s' (expected a whole number below 2^64)",
					(int)vlen, v);
		}
		/* A checksum only says the file is whole, not that rpmsd wrote it. */
		if (f->pulses > DOSE_PULSES_MAX) {
			return dose_bad(pe, line,
					"pulses = %.*s is more than any daily cap allows (safety.max_daily_pulses is at most %d): not a count rpmsd writes",
					(int)vlen, v, DOSE_PULSES_MAX);
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
	case DOSE_KEY_LAST_PULSE:
		if (vlen == 4 && !memcmp(v, "none", 4)) {
			f->last_pulse_ns = INT64_MIN;
		} else if (dose_parse_i64(v, vlen, &f->last_pulse_ns) < 0) {
			return dose_bad(pe, line,
					"bad last_pulse_ns '%.*s' (expected none or a time in ns)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_BOOT_ID:
		if (vlen == 7 && !memcmp(v, "unknown", 7)) {
			f->boot_id[0] = '\0';
		} else if (dose_boot_id_ok(v, vlen)) {
			memcpy(f->boot_id, v, vlen);
			f->boot_id[vlen] = '\0';
		} else {
			return dose_bad(pe, line, "bad boot_id '%.*s' (expected unknown or a boot id)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_BOOTTIME:
		if (dose_parse_i64(v, vlen, &f->boottime_ns) < 0) {
			return dose_bad(pe, line, "bad boottime_ns '%.*s' (expected a time in ns)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_SEQUENCE:
		if (dose_parse_u64(v, vlen, &f->seq) < 0 || !f->seq) {
			return dose_bad(pe, line, "bad sequence '%.*s' (expected a number from 1)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_KEY_WRITTEN:
		/* version 1: for people only */
		if (f->version >= 2 && dose_parse_written(v, vlen, &f->written_s) < 0) {
			return dose_bad(pe, line,
					"bad written '%.*s' (expected YYYY-MM-DDTHH:MM:SSZ pid N)",
					(int)vlen, v);
		}
		return 0;
	default:
		return 0;
	}
}

/*
 * Parse a whole file of @kind, @len bytes. Lines are checked in order as
 * they come, so the first damage is reported at its own line; the
 * checksum, checked last, catches what still parses (a flipped digit).
 */
static int dose_parse(const char *buf, size_t len, enum dose_kind kind, struct dose_file *f,
		      struct dose_parse_error *pe)
{
	int seen[DOSE_N_KEYS] = { 0 };
	const char *p, *nl, *eq = NULL, *v;
	size_t pos = 0, llen = 0, klen = 0, vlen, i;
	unsigned allowed = DOSE_BIT(DOSE_KEY_VERSION);
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
		if (key < 0 || (!first_key && !(allowed & DOSE_BIT(key)))) {
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
		seen[key] = line;
		if (key == DOSE_KEY_CHECKSUM) {
			break;
		}
		rc = dose_parse_value(pe, line, key, eq + 3, llen - klen - 3, f);
		if (rc < 0) {
			return rc;
		}
		if (first_key) {
			if (kind == DOSE_KIND_SEQ && f->version != DOSE_VERSION) {
				return dose_bad(pe, line, "unsupported version %d (expected %d)",
						f->version, DOSE_VERSION);
			}
			allowed = kind == DOSE_KIND_SEQ ? DOSE_KEYS_SEQ
				  : f->version == 1 ? DOSE_KEYS_V1 : DOSE_KEYS_V2;
			first_key = false;
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
		if ((allowed & DOSE_BIT(key)) && !seen[key]) {
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

/* Append the checksum line to the @n bytes in @buf; the new length. */
static size_t dose_sign(char *buf, size_t size, size_t n)
{
	return n + (size_t)snprintf(buf + n, size - n, "checksum = %08x\n",
				    (unsigned)dose_crc32(buf, n));
}

/* Format the ledger @f into @buf; returns its length. */
static size_t dose_format(char *buf, size_t size, const struct dose_file *f)
{
	char ds[DOSE_DAY_STRLEN], ends[32], when[32], last[32];
	size_t n;

	dose_day_string(f->day, ds, sizeof(ds));
	dose_utc_string(f->day_end, ends, sizeof(ends));
	dose_utc_string(f->written_s, when, sizeof(when));
	if (f->last_pulse_ns == INT64_MIN) {
		snprintf(last, sizeof(last), "none");
	} else {
		snprintf(last, sizeof(last), "%lld", (long long)f->last_pulse_ns);
	}
	n = (size_t)snprintf(buf, size,
			     DOSE_HEADER
			     "version = %d\n"
			     "zone = %s\n"
			     "day = %s\n"
			     "day_ends = %s\n"
			     "pulses = %llu\n"
			     "exact = %s\n"
			     "last_pulse_ns = %s\n"
			     "boot_id = %s\n"
			     "boottime_ns = %lld\n"
			     "sequence = %llu\n"
			     "written = %s pid %ld\n",
			     DOSE_VERSION, f->zone, ds, ends, (unsigned long long)f->pulses,
			     f->exact ? "true" : "false", last,
			     f->boot_id[0] ? f->boot_id : "unknown", (long long)f->boottime_ns,
			     (unsigned long long)f->seq, when, (long)getpid());
	return dose_sign(buf, size, n);
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

	n = (size_t)snprintf(text, sizeof(text), DOSE_SEQ_HEADER "version = %d\nsequence = %llu\n",
			     DOSE_VERSION, (unsigned long long)seq);
	n = dose_sign(text, sizeof(text), n);
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
		.version = DOSE_VERSION, .day = day, .day_end = day_end, .pulses = pulses,
		.exact = exact, .last_pulse_ns = l->last_pulse_ns, .boottime_ns = now->boot_ns,
		.written_s = now->real_s, .seq = l->seq + 1,
	};
	char text[DOSE_FILE_MAX];
	bool renamed;
	size_t len;
	int rc;

	snprintf(f.zone, sizeof(f.zone), "%s", zone_name(l->zone));
	snprintf(f.boot_id, sizeof(f.boot_id), "%s", l->boot_id);
	len = dose_format(text, sizeof(text), &f);
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
	    dose_parse_day(p + sizeof(key) - 1, DOSE_DAY_STRLEN - 1, &day) < 0) {
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
	struct dose_parse_error pe;
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
	rc = dose_parse(buf, (size_t)len, DOSE_KIND_SEQ, &f, &pe);
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
	struct dose_parse_error pe;
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
	rc = dose_parse(buf, (size_t)len, DOSE_KIND_LEDGER, &f, &pe);
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
		dose_utc_string(f.day_end, es, sizeof(es));
		snprintf(l->notice, sizeof(l->notice),
			 "%s: a version 1 ledger (day %s, no zone): its %llu pulses count until %s, when that date has ended in every zone; it is rewritten in version 2 now",
			 l->path, ds, (unsigned long long)f.pulses, es);
	} else if (strcmp(f.zone, zone_name(l->zone))) {
		dose_utc_string(f.day_end, es, sizeof(es));
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
		dose_utc_string(f.day_end, es, sizeof(es));
		dose_utc_string(now->real_s, ns, sizeof(ns));
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
		dose_utc_string(l->day_end, es, sizeof(es));
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
