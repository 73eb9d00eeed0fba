/* SPDX-License-Identifier: MIT */
/*
 * TZif reader (RFC 8536) and the POSIX TZ rule of its footer.
 *
 * Why not localtime_r: the ledger's day is in the configured clinic zone,
 * not in whatever TZ the process was started with, and glibc can only be
 * asked about another zone through setenv("TZ") + tzset(), which changes
 * the zone of every thread at once and races with their getenv (a
 * documented data race). Reading the file ourselves at start-up leaves
 * the process's TZ alone and gives the main thread a pure function.
 *
 * A TZif file has a list of transitions (instant, the local time type from
 * then on), the types (UTC offset, is-DST), and, from version 2 on, 64-bit
 * times and a footer: a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3")
 * that gives local time after the last transition. Before the first
 * transition the first type applies (RFC 8536, 3.2). Anything that does
 * not parse is refused: a wrong zone would move the end of the day.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zone.h"

/* Fat TZif files are a few kB; anything this large is not one. */
#define ZONE_FILE_MAX (256 * 1024)
#define ZONE_TYPES_MAX 256
#define ZONE_DAY 86400

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define ZONE_T_MIN INT64_C(-62135596800)
#define ZONE_T_MAX INT64_C(253402300799)

/* A rule date of the POSIX TZ string: Jn, n or Mm.w.d, and a time. */
struct zone_rule_date {
	char kind;		/* 'J', 'n' or 'M' */
	int n;			/* J: 1..365; n: 0..365 */
	int m, w, d;		/* M: month 1..12, week 1..5 (5 = last), weekday 0..6 */
	int32_t time;		/* local seconds after midnight, -167 h..167 h */
};

/* The footer: standard offset, and DST with its two rule dates if any. */
struct zone_posix {
	bool present;
	bool dst;
	int32_t std_off;	/* UTC offset, east positive */
	int32_t dst_off;
	struct zone_rule_date start, end;
};

struct zone {
	char name[ZONE_NAME_MAX + 1];
	size_t n_trans;
	int64_t *trans;		/* ascending */
	unsigned char *trans_type;
	size_t n_types;
	int32_t type_off[ZONE_TYPES_MAX];
	struct zone_posix posix;
};

__attribute__((format(printf, 3, 4)))
static void zone_report(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int64_t zone_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t zone_days_from_civil(int64_t y, unsigned m, unsigned d)
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

void zone_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
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

static int64_t zone_year_of_days(int64_t z)
{
	unsigned m, d;
	int64_t y;

	zone_civil_from_days(z, &y, &m, &d);
	return y;
}

static bool zone_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- the POSIX TZ string ---------------------------------------------- */

/* A zone abbreviation: <...> quoted, or three or more letters. */
static const char *zone_posix_name(const char *p)
{
	const char *s = p;

	if (*p == '<') {
		for (p++; *p && *p != '>'; p++) {
			if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-') {
				return NULL;
			}
		}
		return *p == '>' && p - s >= 4 ? p + 1 : NULL;
	}
	while (isalpha((unsigned char)*p)) {
		p++;
	}
	return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to @max_h, as seconds. */
static const char *zone_posix_hms(const char *p, int max_h, int32_t *out)
{
	int sign = 1, part[3] = { 0, 0, 0 }, i, digits;

	if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
	}
	for (i = 0; i < 3; i++) {
		if (i && *p != ':') {
			break;
		}
		if (i) {
			p++;
		}
		for (digits = 0; isdigit((unsigned char)*p) && digits < 3; digits++, p++) {
			part[i] = part[i] * 10 + (*p - '0');
		}
		if (!digits || (i && digits != 2) || (i && part[i] > 59)) {
			return NULL;
		}
	}
	if (part[0] > max_h) {
		return NULL;
	}
	*out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return p;
}

static const char *zone_posix_num(const char *p, int lo, int hi, int *out)
{
	int v = 0, digits = 0;

	for (; isdigit((unsigned char)*p) && digits < 4; digits++, p++) {
		v = v * 10 + (*p - '0');
	}
	if (!digits || v < lo || v > hi) {
		return NULL;
	}
	*out = v;
	return p;
}

static const char *zone_posix_date(const char *p, struct zone_rule_date *r)
{
	if (*p == 'J') {
		r->kind = 'J';
		p = zone_posix_num(p + 1, 1, 365, &r->n);
	} else if (*p == 'M') {
		r->kind = 'M';
		p = zone_posix_num(p + 1, 1, 12, &r->m);
		if (p && *p == '.') {
			p = zone_posix_num(p + 1, 1, 5, &r->w);
		} else {
			p = NULL;
		}
		if (p && *p == '.') {
			p = zone_posix_num(p + 1, 0, 6, &r->d);
		} else {
			p = NULL;
		}
	} else {
		r->kind = 'n';
		p = zone_posix_num(p, 0, 365, &r->n);
	}
	if (!p) {
		return NULL;
	}
	r->time = 2 * 3600;
	if (*p == '/') {
		/* RFC 8536 version 3: -167 to 167 hours */
		p = zone_posix_hms(p + 1, 167, &r->time);
	}
	return p;
}

/*
 * std offset [dst [offset] [,start[/time],end[/time]]]. POSIX offsets are
 * west-positive; ours are east-positive. DST without rules is refused:
 * zic always writes them, and a guessed default would be wrong.
 */
static int zone_posix_parse(const char *s, struct zone_posix *z)
{
	const char *p = zone_posix_name(s);
	int32_t off;

	memset(z, 0, sizeof(*z));
	if (!p || !(p = zone_posix_hms(p, 24, &off))) {
		return -EINVAL;
	}
	z->present = true;
	z->std_off = -off;
	if (!*p) {
		return 0;
	}
	p = zone_posix_name(p);
	if (!p) {
		return -EINVAL;
	}
	z->dst = true;
	z->dst_off = z->std_off + 3600;
	if (*p && *p != ',') {
		p = zone_posix_hms(p, 24, &off);
		if (!p) {
			return -EINVAL;
		}
		z->dst_off = -off;
	}
	if (*p != ',' || !(p = zone_posix_date(p + 1, &z->start)) || *p != ',' ||
	    !(p = zone_posix_date(p + 1, &z->end)) || *p) {
		return -EINVAL;
	}
	return 0;
}

/* Day (since 1970) on which rule date @r falls in year @y. */
static int64_t zone_rule_day(const struct zone_rule_date *r, int64_t y)
{
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t first, day;
	unsigned len;
	int wd;

	switch (r->kind) {
	case 'J':
		/* 1..365, February 29 never counted */
		first = zone_days_from_civil(y, 1, 1);
		return first + r->n - 1 + (zone_leap(y) && r->n >= 60);
	case 'n':
		return zone_days_from_civil(y, 1, 1) + r->n;
	default:
		first = zone_days_from_civil(y, (unsigned)r->m, 1);
		/* 1970-01-01 was a Thursday (4) */
		wd = (int)(((first % 7) + 7 + 4) % 7);
		day = first + (r->d - wd + 7) % 7 + 7 * (r->w - 1);
		len = mdays[r->m - 1] + (r->m == 2 && zone_leap(y));
		while (day >= first + len) {
			day -= 7;
		}
		return day;
	}
}

/* Offset and next change from the footer rule. */
static int32_t zone_posix_offset(const struct zone_posix *z, int64_t t, int64_t *next)
{
	int64_t y0, inst[6], best_t = INT64_MIN, nx = INT64_MAX;
	int32_t best_off = z->std_off;
	bool to_dst[6];
	int i, k;

	if (!z->dst) {
		*next = INT64_MAX;
		return z->std_off;
	}
	/* The transitions of the years around @t: the last one at or before it decides. */
	y0 = zone_year_of_days(zone_floor_div(t + z->std_off, ZONE_DAY));
	for (k = 0; k < 3; k++) {
		int64_t y = y0 - 1 + k;

		/* into DST at local standard time, out of it at local DST time */
		inst[2 * k] = zone_rule_day(&z->start, y) * ZONE_DAY + z->start.time - z->std_off;
		to_dst[2 * k] = true;
		inst[2 * k + 1] = zone_rule_day(&z->end, y) * ZONE_DAY + z->end.time - z->dst_off;
		to_dst[2 * k + 1] = false;
	}
	for (i = 0; i < 6; i++) {
		if (inst[i] <= t && inst[i] >= best_t) {
			best_t = inst[i];
			best_off = to_dst[i] ? z->dst_off : z->std_off;
		}
		if (inst[i] > t && inst[i] < nx) {
			nx = inst[i];
		}
	}
	*next = nx;
	return best_off;
}

/* ---- the TZif file ---------------------------------------------------- */

static uint32_t zone_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t zone_be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)zone_be32(p) << 32 | zone_be32(p + 4));
}

struct zone_header {
	char version;
	uint32_t isut, isstd, leap, time, type, chars;
};

static int zone_header(const unsigned char *p, size_t len, struct zone_header *h)
{
	if (len < 44 || memcmp(p, "TZif", 4)) {
		return -EINVAL;
	}
	h->version = (char)p[4];
	h->isut = zone_be32(p + 20);
	h->isstd = zone_be32(p + 24);
	h->leap = zone_be32(p + 28);
	h->time = zone_be32(p + 32);
	h->type = zone_be32(p + 36);
	h->chars = zone_be32(p + 40);
	if (h->type < 1 || h->type > ZONE_TYPES_MAX || h->time > ZONE_FILE_MAX ||
	    h->chars > ZONE_FILE_MAX || h->leap > ZONE_FILE_MAX || h->isut > ZONE_TYPES_MAX ||
	    h->isstd > ZONE_TYPES_MAX) {
		return -EINVAL;
	}
	return 0;
}

/* Size of a data block with @tsize-byte times. */
static size_t zone_block_size(const struct zone_header *h, size_t tsize)
{
	return h->time * tsize + h->time + h->type * 6 + h->chars + h->leap * (tsize + 4) +
	       h->isstd + h->isut;
}

/* Parse the file in @buf into @z; @why says what is wrong. */
static int zone_parse(struct zone *z, const unsigned char *buf, size_t len, const char **why)
{
	struct zone_header h;
	const unsigned char *p = buf, *blk, *types, *end = buf + len;
	size_t tsize = 4, i, size;
	int32_t off;

	*why = "not a TZif file";
	if (zone_header(p, len, &h) < 0) {
		return -EINVAL;
	}
	if (h.version >= '2') {
		/* skip the 32-bit block: the 64-bit one after it is the whole truth */
		size = 44 + zone_block_size(&h, 4);
		if (size > len || zone_header(p + size, len - size, &h) < 0) {
			*why = "truncated TZif file";
			return -EINVAL;
		}
		p += size;
		len -= size;
		tsize = 8;
	} else if (h.version != '\0') {
		*why = "unknown TZif version";
		return -EINVAL;
	}
	blk = p;
	size = 44 + zone_block_size(&h, tsize);
	if (size > len) {
		*why = "truncated TZif file";
		return -EINVAL;
	}
	if (h.leap) {
		*why = "a zone with leap seconds (right/...): use the zone without them";
		return -EINVAL;
	}
	z->n_trans = h.time;
	z->n_types = h.type;
	if (h.time) {
		z->trans = calloc(h.time, sizeof(*z->trans));
		z->trans_type = calloc(h.time, 1);
		if (!z->trans || !z->trans_type) {
			*why = "out of memory";
			return -ENOMEM;
		}
	}
	p += 44;
	for (i = 0; i < h.time; i++) {
		z->trans[i] = tsize == 8 ? zone_be64(p + i * 8) : (int32_t)zone_be32(p + i * 4);
		if (i && z->trans[i] <= z->trans[i - 1]) {
			*why = "transitions out of order";
			return -EINVAL;
		}
	}
	p += h.time * tsize;
	for (i = 0; i < h.time; i++) {
		z->trans_type[i] = p[i];
		if (p[i] >= h.type) {
			*why = "a transition to an undefined local time type";
			return -EINVAL;
		}
	}
	types = p + h.time;
	for (i = 0; i < h.type; i++) {
		off = (int32_t)zone_be32(types + i * 6);
		if (off <= -ZONE_OFFSET_MAX || off >= ZONE_OFFSET_MAX) {
			*why = "a UTC offset of 26 hours or more";
			return -EINVAL;
		}
		z->type_off[i] = off;
	}
	if (tsize == 4) {
		return 0;
	}
	/* The footer: "\n" POSIX-TZ "\n"; an empty one means none. */
	p = blk + size;
	len = (size_t)(end - p);
	if (len < 2 || p[0] != '\n' || !memchr(p + 1, '\n', len - 1)) {
		*why = "TZif footer missing";
		return -EINVAL;
	}
	{
		char tz[128];
		size_t n = (size_t)((const unsigned char *)memchr(p + 1, '\n', len - 1) - (p + 1));

		if (n >= sizeof(tz)) {
			*why = "TZif footer too long";
			return -EINVAL;
		}
		memcpy(tz, p + 1, n);
		tz[n] = '\0';
		if (n && zone_posix_parse(tz, &z->posix) < 0) {
			*why = "TZif footer is not a POSIX TZ rule rpmsd can read";
			return -EINVAL;
		}
		if (z->posix.present && (z->posix.std_off <= -ZONE_OFFSET_MAX ||
					 z->posix.std_off >= ZONE_OFFSET_MAX ||
					 z->posix.dst_off <= -ZONE_OFFSET_MAX ||
					 z->posix.dst_off >= ZONE_OFFSET_MAX)) {
			*why = "a UTC offset of 26 hours or more";
			return -EINVAL;
		}
	}
	return 0;
}

/* IANA names: letters, digits, '_', '-', '+', components joined by '/'. */
bool zone_name_valid(const char *name)
{
	const char *p;
	size_t n = strlen(name);

	if (!n || n > ZONE_NAME_MAX || name[0] == '/' || name[n - 1] == '/') {
		return false;
	}
	for (p = name; *p; p++) {
		if (!isalnum((unsigned char)*p) && !strchr("_-+/", *p)) {
			return false;
		}
		/* no empty component, none starting with '-' (and no "..") */
		if ((p == name || p[-1] == '/') && (*p == '/' || *p == '-')) {
			return false;
		}
	}
	return true;
}

int zone_load(const char *name, struct zone **out, char *err, size_t errlen)
{
	char path[sizeof(ZONE_DIR) + ZONE_NAME_MAX + 2];
	unsigned char *buf = NULL;
	const char *why;
	struct stat st;
	struct zone *z;
	ssize_t n;
	size_t len = 0;
	int fd = -1, rc;

	if (!zone_name_valid(name)) {
		zone_report(err, errlen,
			    "'%s' is not a time zone name (a name is letters, digits, '_', '-', '+', in parts joined by '/', at most %d characters)",
			    name, ZONE_NAME_MAX);
		return -EINVAL;
	}
	z = calloc(1, sizeof(*z));
	if (!z) {
		zone_report(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(z->name, sizeof(z->name), "%s", name);
	if (!strcmp(name, "UTC")) {
		/* built in: a rig without tzdata still has UTC */
		z->n_types = 1;
		*out = z;
		return 0;
	}
	snprintf(path, sizeof(path), ZONE_DIR "/%s", name);
	/* O_NONBLOCK: a FIFO there must not hang the start */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		zone_report(err, errlen, "'%s': no such time zone (%s: %s)", name, path,
			    strerror(-rc));
		goto err_free;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ZONE_FILE_MAX) {
		rc = -EINVAL;
		zone_report(err, errlen, "'%s': %s is not a time zone file", name, path);
		goto err_free;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		zone_report(err, errlen, "out of memory");
		goto err_free;
	}
	while (len <= (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rc = -errno;
			zone_report(err, errlen, "'%s': cannot read %s: %s", name, path,
				    strerror(-rc));
			goto err_free;
		}
		if (!n) {
			break;
		}
		len += (size_t)n;
	}
	rc = zone_parse(z, buf, len, &why);
	if (rc < 0) {
		zone_report(err, errlen, "'%s': %s: %s", name, path, why);
		goto err_free;
	}
	free(buf);
	close(fd);
	*out = z;
	return 0;

err_free:
	free(buf);
	if (fd >= 0) {
		close(fd);
	}
	zone_free(z);
	return rc;
}

void zone_free(struct zone *z)
{
	if (!z) {
		return;
	}
	free(z->trans);
	free(z->trans_type);
	free(z);
}

const char *zone_name(const struct zone *z)
{
	return z->name;
}

int32_t zone_offset(const struct zone *z, int64_t t, int64_t *next)
{
	size_t lo, hi, mid;
	int64_t nx;

	if (!next) {
		next = &nx;
	}
	t = t < ZONE_T_MIN ? ZONE_T_MIN : t > ZONE_T_MAX ? ZONE_T_MAX : t;
	if (!z->n_trans) {
		if (z->posix.present) {
			return zone_posix_offset(&z->posix, t, next);
		}
		*next = INT64_MAX;
		return z->type_off[0];
	}
	if (t < z->trans[0]) {
		*next = z->trans[0];
		return z->type_off[0];
	}
	if (t >= z->trans[z->n_trans - 1]) {
		if (z->posix.present) {
			return zone_posix_offset(&z->posix, t, next);
		}
		*next = INT64_MAX;
		return z->type_off[z->trans_type[z->n_trans - 1]];
	}
	/* the last transition at or before t: trans[lo] <= t < trans[hi] */
	lo = 0;
	hi = z->n_trans - 1;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	*next = z->trans[hi];
	return z->type_off[z->trans_type[lo]];
}

int64_t zone_day(const struct zone *z, int64_t t)
{
	return zone_floor_div(t + zone_offset(z, t, NULL), ZONE_DAY);
}

int64_t zone_day_end(const struct zone *z, int64_t t)
{
	int64_t next, off, target, u = t, c, end = INT64_MIN;
	int i;

	off = zone_offset(z, t, &next);
	/* local seconds of the next midnight */
	target = (zone_floor_div(t + off, ZONE_DAY) + 1) * ZONE_DAY;
	/*
	 * Walk the stretches of constant offset from @t. In the stretch
	 * [u, next) with offset off the date is past t's from target - off
	 * on; the day ends where the last stretch that goes back to t's date
	 * (or earlier) has ended. No stretch that starts more than the
	 * largest offset after target can go back.
	 */
	for (i = 0; i < 10000; i++) {
		c = target - off;
		if (c <= u) {
			if (end == INT64_MIN) {
				end = u;
			}
		} else if (c < next) {
			end = c;
		} else {
			end = INT64_MIN;
		}
		if (next == INT64_MAX || (end != INT64_MIN && next > target + ZONE_OFFSET_MAX)) {
			return end;
		}
		u = next;
		off = zone_offset(z, u, &next);
	}
	/* a file with absurdly many transitions: an end that is surely late enough */
	return target + ZONE_OFFSET_MAX;
}
