/* SPDX-License-Identifier: MIT */
/*
 * The text of the pulse ledger and its sequence file (dose_private.h):
 * parse, format, checksum. No file system and no clock here: dose.c reads
 * and writes the files.
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
 * The sequence file is the same kind of text with three keys: version,
 * sequence and checksum.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dose_private.h"
#include "zone.h"

#define DOSE_FILE_HEADER \
	"# rpmsd pulse ledger: written atomically by rpmsd; do not edit (a checksum guards it)\n"
#define DOSE_FILE_SEQ_HEADER \
	"# rpmsd: the sequence of the last pulse ledger (dose) written; a dose with a lower one " \
	"is an old copy\n"

/* 0001-01-01 and 9999-12-31: the days YYYY-MM-DD can name. */
#define DOSE_FILE_DAY_MIN (-719162)
#define DOSE_FILE_DAY_MAX 2932896

enum dose_file_key {
	DOSE_FILE_KEY_VERSION,
	DOSE_FILE_KEY_ZONE,
	DOSE_FILE_KEY_DAY,
	DOSE_FILE_KEY_DAY_ENDS,
	DOSE_FILE_KEY_PULSES,
	DOSE_FILE_KEY_EXACT,
	DOSE_FILE_KEY_LAST_PULSE,
	DOSE_FILE_KEY_BOOT_ID,
	DOSE_FILE_KEY_BOOTTIME,
	DOSE_FILE_KEY_SEQUENCE,
	DOSE_FILE_KEY_WRITTEN,
	DOSE_FILE_KEY_CHECKSUM,
	DOSE_FILE_N_KEYS,
};

static const char *const dose_file_key_names[DOSE_FILE_N_KEYS] = {
	[DOSE_FILE_KEY_VERSION] = "version",
	[DOSE_FILE_KEY_ZONE] = "zone",
	[DOSE_FILE_KEY_DAY] = "day",
	[DOSE_FILE_KEY_DAY_ENDS] = "day_ends",
	[DOSE_FILE_KEY_PULSES] = "pulses",
	[DOSE_FILE_KEY_EXACT] = "exact",
	[DOSE_FILE_KEY_LAST_PULSE] = "last_pulse_ns",
	[DOSE_FILE_KEY_BOOT_ID] = "boot_id",
	[DOSE_FILE_KEY_BOOTTIME] = "boottime_ns",
	[DOSE_FILE_KEY_SEQUENCE] = "sequence",
	[DOSE_FILE_KEY_WRITTEN] = "written",
	[DOSE_FILE_KEY_CHECKSUM] = "checksum",
};

#define DOSE_FILE_BIT(k) (1u << (k))

/* The keys of each kind of file, all required. */
#define DOSE_FILE_KEYS_V1						\
	(DOSE_FILE_BIT(DOSE_FILE_KEY_VERSION) | DOSE_FILE_BIT(DOSE_FILE_KEY_DAY) |	\
	 DOSE_FILE_BIT(DOSE_FILE_KEY_PULSES) | DOSE_FILE_BIT(DOSE_FILE_KEY_EXACT) |	\
	 DOSE_FILE_BIT(DOSE_FILE_KEY_WRITTEN) | DOSE_FILE_BIT(DOSE_FILE_KEY_CHECKSUM))
#define DOSE_FILE_KEYS_V2 ((1u << DOSE_FILE_N_KEYS) - 1)
#define DOSE_FILE_KEYS_SEQ						\
	(DOSE_FILE_BIT(DOSE_FILE_KEY_VERSION) | DOSE_FILE_BIT(DOSE_FILE_KEY_SEQUENCE) |	\
	 DOSE_FILE_BIT(DOSE_FILE_KEY_CHECKSUM))

static bool dose_file_day_valid(int64_t day)
{
	return day >= DOSE_FILE_DAY_MIN && day <= DOSE_FILE_DAY_MAX;
}

void dose_file_day_string(int64_t day, char *buf, size_t len)
{
	int64_t y;
	unsigned m, d;

	if (!dose_file_day_valid(day)) {
		snprintf(buf, len, "invalid");
		return;
	}
	zone_civil_from_days(day, &y, &m, &d);
	snprintf(buf, len, "%04d-%02u-%02u", (int)y, m, d);
}

/* Parse exactly "YYYY-MM-DD" of @len bytes, a real date. */
int dose_file_parse_day(const char *s, size_t len, int64_t *day)
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
int dose_file_parse_u64(const char *s, size_t len, uint64_t *v)
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
static uint32_t dose_file_crc32(const char *p, size_t len)
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


static int64_t dose_file_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* "YYYY-MM-DDTHH:MM:SSZ" of @t into @buf (at least 21 bytes). */
void dose_file_utc_string(int64_t t, char *buf, size_t len)
{
	int64_t day = dose_file_floor_div(t, 86400), s = t - day * 86400;
	char ds[DOSE_DAY_STRLEN];

	dose_file_day_string(day, ds, sizeof(ds));
	snprintf(buf, len, "%sT%02d:%02d:%02dZ", ds, (int)(s / 3600), (int)(s / 60 % 60),
		 (int)(s % 60));
}

/* Parse exactly "YYYY-MM-DDTHH:MM:SSZ" at @s (@len bytes, at least 20). */
static int dose_file_parse_utc(const char *s, size_t len, int64_t *t)
{
	static const char pattern[] = "Tdd:dd:ddZ";
	int64_t day;
	int h, m, sec;
	size_t i;

	if (len != 10 + sizeof(pattern) - 1 || dose_file_parse_day(s, 10, &day) < 0) {
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
bool dose_file_boot_id_ok(const char *s, size_t len)
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
__attribute__((format(printf, 3, 4)))
static int dose_file_bad(struct dose_file_error *pe, int line, const char *fmt, ...)
{
	va_list ap;

	pe->line = line;
	va_start(ap, fmt);
	vsnprintf(pe->why, sizeof(pe->why), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static int dose_file_key_lookup(const char *key, size_t len)
{
	int i;

	for (i = 0; i < DOSE_FILE_N_KEYS; i++) {
		if (strlen(dose_file_key_names[i]) == len && !memcmp(dose_file_key_names[i], key, len)) {
			return i;
		}
	}
	return -1;
}

/* A decimal int64 of @len bytes, 0 or more. */
static int dose_file_parse_i64(const char *s, size_t len, int64_t *v)
{
	uint64_t n;

	if (dose_file_parse_u64(s, len, &n) < 0 || n > INT64_MAX) {
		return -EINVAL;
	}
	*v = (int64_t)n;
	return 0;
}

/* Parse the value of version 2's "written": "YYYY-MM-DDTHH:MM:SSZ pid N". */
static int dose_file_parse_written(const char *v, size_t vlen, int64_t *t)
{
	uint64_t pid;

	if (vlen < 26 || memcmp(v + 20, " pid ", 5) ||
	    dose_file_parse_u64(v + 25, vlen - 25, &pid) < 0) {
		return -EINVAL;
	}
	return dose_file_parse_utc(v, 20, t);
}

/* Parse one "key = value" value into @f. */
static int dose_file_parse_value(struct dose_file_error *pe, int line, int key,
				 const char *v, size_t vlen, struct dose_file *f)
{
	uint64_t n;

	switch (key) {
	case DOSE_FILE_KEY_VERSION:
		if (dose_file_parse_u64(v, vlen, &n) < 0) {
			return dose_file_bad(pe, line, "bad version '%.*s' (expected a number)",
					(int)vlen, v);
		}
		if (n < 1 || n > DOSE_FILE_VERSION) {
			return dose_file_bad(pe, line,
					"unsupported ledger version %.*s (this rpmsd reads versions 1 and %d): was it written by a newer rpmsd?",
					(int)vlen, v, DOSE_FILE_VERSION);
		}
		f->version = (int)n;
		return 0;
	case DOSE_FILE_KEY_ZONE:
		if (vlen > ZONE_NAME_MAX) {
			return dose_file_bad(pe, line, "bad zone (longer than %d characters)",
					ZONE_NAME_MAX);
		}
		memcpy(f->zone, v, vlen);
		f->zone[vlen] = '\0';
		if (!zone_name_valid(f->zone)) {
			return dose_file_bad(pe, line, "bad zone '%.*s' (expected a time zone name)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_DAY:
		if (dose_file_parse_day(v, vlen, &f->day) < 0) {
			return dose_file_bad(pe, line, "bad day '%.*s' (expected a date YYYY-MM-DD)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_DAY_ENDS:
		if (dose_file_parse_utc(v, vlen, &f->day_end) < 0) {
			return dose_file_bad(pe, line,
					"bad day_ends '%.*s' (expected a UTC time YYYY-MM-DDTHH:MM:SSZ)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_PULSES:
		if (dose_file_parse_u64(v, vlen, &f->pulses) < 0) {
			return dose_file_bad(pe, line,
					"bad pulses '%.*s' (expected a whole number below 2^64)",
					(int)vlen, v);
		}
		/* A checksum only says the file is whole, not that rpmsd wrote it. */
		if (f->pulses > DOSE_PULSES_MAX) {
			return dose_file_bad(pe, line,
					"pulses = %.*s is more than any daily cap allows (safety.max_daily_pulses is at most %d): not a count rpmsd writes",
					(int)vlen, v, DOSE_PULSES_MAX);
		}
		return 0;
	case DOSE_FILE_KEY_EXACT:
		if (vlen == 4 && !memcmp(v, "true", 4)) {
			f->exact = true;
		} else if (vlen == 5 && !memcmp(v, "false", 5)) {
			f->exact = false;
		} else {
			return dose_file_bad(pe, line, "bad exact '%.*s' (expected true or false)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_LAST_PULSE:
		if (vlen == 4 && !memcmp(v, "none", 4)) {
			f->last_pulse_ns = INT64_MIN;
		} else if (dose_file_parse_i64(v, vlen, &f->last_pulse_ns) < 0) {
			return dose_file_bad(pe, line,
					"bad last_pulse_ns '%.*s' (expected none or a time in ns)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_BOOT_ID:
		if (vlen == 7 && !memcmp(v, "unknown", 7)) {
			f->boot_id[0] = '\0';
		} else if (dose_file_boot_id_ok(v, vlen)) {
			memcpy(f->boot_id, v, vlen);
			f->boot_id[vlen] = '\0';
		} else {
			return dose_file_bad(pe, line, "bad boot_id '%.*s' (expected unknown or a boot id)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_BOOTTIME:
		if (dose_file_parse_i64(v, vlen, &f->boottime_ns) < 0) {
			return dose_file_bad(pe, line, "bad boottime_ns '%.*s' (expected a time in ns)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_SEQUENCE:
		if (dose_file_parse_u64(v, vlen, &f->seq) < 0 || !f->seq) {
			return dose_file_bad(pe, line, "bad sequence '%.*s' (expected a number from 1)",
					(int)vlen, v);
		}
		return 0;
	case DOSE_FILE_KEY_WRITTEN:
		/* version 1: for people only */
		if (f->version >= 2 && dose_file_parse_written(v, vlen, &f->written_s) < 0) {
			return dose_file_bad(pe, line,
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
int dose_file_parse(const char *buf, size_t len, enum dose_file_kind kind, struct dose_file *f,
		    struct dose_file_error *pe)
{
	int seen[DOSE_FILE_N_KEYS] = { 0 };
	const char *p, *nl, *eq = NULL, *v;
	size_t pos = 0, llen = 0, klen = 0, vlen, i;
	unsigned allowed = DOSE_FILE_BIT(DOSE_FILE_KEY_VERSION);
	uint32_t sum, crc;
	int line = 0, key, rc;
	bool first_key = true;

	if (!len) {
		return dose_file_bad(pe, 1, "the file is empty");
	}
	for (;;) {
		if (pos == len) {
			return dose_file_bad(pe, line,
					"the file ends before its checksum line (truncated?)");
		}
		line++;
		p = buf + pos;
		nl = memchr(p, '\n', len - pos);
		if (!nl) {
			return dose_file_bad(pe, line,
					"the file ends in the middle of a line (truncated?)");
		}
		llen = (size_t)(nl - p);
		for (i = 0; i < llen; i++) {
			if (iscntrl((unsigned char)p[i]) && p[i] != '\t') {
				return dose_file_bad(pe, line,
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
			return dose_file_bad(pe, line, "expected 'key = value' or a '#' comment");
		}
		key = dose_file_key_lookup(p, klen);
		if (key < 0 || (!first_key && !(allowed & DOSE_FILE_BIT(key)))) {
			return dose_file_bad(pe, line, "unknown key '%.*s'", (int)klen, p);
		}
		if (seen[key]) {
			return dose_file_bad(pe, line, "duplicate key '%s' (first on line %d)",
					dose_file_key_names[key], seen[key]);
		}
		/* Know the version before trusting anything else in the file. */
		if (first_key && key != DOSE_FILE_KEY_VERSION) {
			return dose_file_bad(pe, line, "the first key must be 'version', not '%s'",
					dose_file_key_names[key]);
		}
		seen[key] = line;
		if (key == DOSE_FILE_KEY_CHECKSUM) {
			break;
		}
		rc = dose_file_parse_value(pe, line, key, eq + 3, llen - klen - 3, f);
		if (rc < 0) {
			return rc;
		}
		if (first_key) {
			if (kind == DOSE_FILE_KIND_SEQ && f->version != DOSE_FILE_VERSION) {
				return dose_file_bad(pe, line, "unsupported version %d (expected %d)",
						f->version, DOSE_FILE_VERSION);
			}
			allowed = kind == DOSE_FILE_KIND_SEQ ? DOSE_FILE_KEYS_SEQ
				  : f->version == 1 ? DOSE_FILE_KEYS_V1 : DOSE_FILE_KEYS_V2;
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
		return dose_file_bad(pe, line, "bad checksum '%.*s' (expected 8 hex digits)",
				(int)vlen, v);
	}
	if (pos + llen + 1 != len) {
		return dose_file_bad(pe, line + 1, "data after the checksum line");
	}
	for (key = 0; key < DOSE_FILE_N_KEYS; key++) {
		if ((allowed & DOSE_FILE_BIT(key)) && !seen[key]) {
			return dose_file_bad(pe, line, "missing key '%s'", dose_file_key_names[key]);
		}
	}
	crc = dose_file_crc32(buf, pos);
	if (crc != sum) {
		return dose_file_bad(pe, line,
				"checksum mismatch: the file says %08x, its content gives %08x",
				(unsigned)sum, (unsigned)crc);
	}
	return 0;
}

/* Append the checksum line to the @n bytes in @buf; the new length. */
static size_t dose_file_sign(char *buf, size_t size, size_t n)
{
	return n + (size_t)snprintf(buf + n, size - n, "checksum = %08x\n",
				    (unsigned)dose_file_crc32(buf, n));
}

/* Format the ledger @f into @buf; returns its length. */
size_t dose_file_format(char *buf, size_t size, const struct dose_file *f)
{
	char ds[DOSE_DAY_STRLEN], ends[32], when[32], last[32];
	size_t n;

	dose_file_day_string(f->day, ds, sizeof(ds));
	dose_file_utc_string(f->day_end, ends, sizeof(ends));
	dose_file_utc_string(f->written_s, when, sizeof(when));
	if (f->last_pulse_ns == INT64_MIN) {
		snprintf(last, sizeof(last), "none");
	} else {
		snprintf(last, sizeof(last), "%lld", (long long)f->last_pulse_ns);
	}
	n = (size_t)snprintf(buf, size,
			     DOSE_FILE_HEADER
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
			     DOSE_FILE_VERSION, f->zone, ds, ends, (unsigned long long)f->pulses,
			     f->exact ? "true" : "false", last,
			     f->boot_id[0] ? f->boot_id : "unknown", (long long)f->boottime_ns,
			     (unsigned long long)f->seq, when, f->pid);
	return dose_file_sign(buf, size, n);
}

size_t dose_file_format_seq(char *buf, size_t size, uint64_t seq)
{
	size_t n;

	n = (size_t)snprintf(buf, size, DOSE_FILE_SEQ_HEADER "version = %d\nsequence = %llu\n",
			     DOSE_FILE_VERSION, (unsigned long long)seq);
	return dose_file_sign(buf, size, n);
}
