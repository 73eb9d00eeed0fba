/* SPDX-License-Identifier: MIT */
/*
 * The TZif reader against the C library: for zones with every kind of
 * rule (DST north and south, negative DST, 30-minute DST, changes at
 * 24:00 that move the date back, a skipped day, fixed offsets, offsets
 * that are not whole hours), the offset at every transition and on a
 * grid over 1900..2100 must be glibc's (TZ set in this single-threaded
 * test, which the daemon itself never does), and each day's end must be
 * where glibc's local date moves past it for good.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "zone.h"

static const char *const zones[] = {
	"Europe/Berlin",	/* CET-1CEST,M3.5.0,M10.5.0/3 */
	"America/New_York",
	"America/Santiago",	/* changes at 24:00: the date goes back an hour in April */
	"America/Sao_Paulo",	/* DST began at 00:00 until 2019: no local midnight */
	"Europe/Dublin",	/* negative DST in the footer */
	"Australia/Lord_Howe",	/* 30-minute DST */
	"Pacific/Apia",		/* skipped 2011-12-30 */
	"Pacific/Chatham",	/* +12:45 / +13:45 */
	"Asia/Kolkata",		/* +05:30 */
	"Africa/Casablanca",	/* transitions listed to 2087 */
	"America/St_Johns",	/* -03:30 */
	"Etc/GMT+12",
	"Etc/GMT-14",
	"UTC",
};

static void set_tz(const char *name)
{
	assert_int_equal(setenv("TZ", name, 1), 0);
	tzset();
}

static long glibc_off(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	assert_non_null(localtime_r(&tt, &tm));
	return tm.tm_gmtoff;
}

static int64_t glibc_day(int64_t t)
{
	int64_t l = t + glibc_off(t);

	return l >= 0 ? l / 86400 : -((-l + 86399) / 86400);
}

static struct zone *load(const char *name)
{
	char err[512] = "";
	struct zone *z = NULL;
	int rc = zone_load(name, &z, err, sizeof(err));

	if (rc) {
		print_error("%s: %s\n", name, err);
	}
	assert_int_equal(rc, 0);
	assert_string_equal(zone_name(z), name);
	return z;
}

#define T_1900 INT64_C(-2208988800)
#define T_2100 INT64_C(4102444800)

static void test_zone_offsets(void **state)
{
	size_t i;
	long checked = 0;

	(void)state;
	for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		struct zone *z = load(zones[i]);
		int64_t t, next, at;
		int32_t off;

		set_tz(zones[i]);
		/* every change the reader knows of, and either side of it */
		for (t = T_1900; t < T_2100; t = next) {
			off = zone_offset(z, t, &next);
			if (off != glibc_off(t)) {
				print_error("%s at %lld: %d, glibc %ld\n", zones[i], (long long)t,
					    off, glibc_off(t));
			}
			assert_int_equal(off, glibc_off(t));
			assert_true(next > t);
			if (next != INT64_MAX) {
				assert_int_equal(zone_offset(z, next - 1, NULL), glibc_off(next - 1));
			}
			checked++;
		}
		/* and a grid that does not trust the reader's own list of changes */
		for (at = T_1900; at < T_2100; at += 61 * 3600 + 13 * 60 + 7) {
			if (zone_offset(z, at, NULL) != glibc_off(at)) {
				print_error("%s at %lld: %d, glibc %ld\n", zones[i], (long long)at,
					    zone_offset(z, at, NULL), glibc_off(at));
			}
			assert_int_equal(zone_offset(z, at, NULL), glibc_off(at));
			assert_int_equal(zone_day(z, at), glibc_day(at));
			checked++;
		}
		zone_free(z);
	}
	print_message("offsets: %ld instants in %zu zones agree with glibc\n", checked,
		      sizeof(zones) / sizeof(zones[0]));
}

/* The day of @t ends at zone_day_end: glibc agrees, to the second. */
static void check_end(const struct zone *z, const char *name, int64_t t)
{
	int64_t d = glibc_day(t), end = zone_day_end(z, t), k;

	if (end <= t || glibc_day(end) <= d || (end - 1 > t && glibc_day(end - 1) > d)) {
		print_error("%s: day of %lld ends at %lld\n", name, (long long)t, (long long)end);
	}
	assert_true(end > t);
	/* the second before the end is still the day (or earlier)... */
	assert_true(end - 1 == t || glibc_day(end - 1) <= d);
	/* ...and from the end on it is past it for good: every hour for 30 hours */
	for (k = 0; k <= 30; k++) {
		assert_true(glibc_day(end + k * 3600) > d);
	}
}

static void test_zone_day_ends(void **state)
{
	size_t i;
	int64_t t;
	long n = 0;

	(void)state;
	for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		struct zone *z = load(zones[i]);

		set_tz(zones[i]);
		for (t = INT64_C(946684800); t < INT64_C(2240524800); t += 3 * 86400 + 5 * 3600 + 17 * 60 + 13) {
			check_end(z, zones[i], t);
			n++;
		}
		zone_free(z);
	}
	print_message("day ends: %ld checked\n", n);
}

/* Known days, by hand: the length (in half hours) of the day that contains @t. */
static void expect_day_length(const char *name, int64_t t, int64_t half_hours)
{
	struct zone *z = load(name);
	int64_t start = t - 50 * 3600, end;

	/* the day's start is the end of the day before it */
	while ((end = zone_day_end(z, start)) <= t) {
		start = end;
	}
	if ((end - start) != half_hours * 1800) {
		print_error("%s: day of %lld from %lld to %lld (%lld s)\n", name, (long long)t,
			    (long long)start, (long long)end, (long long)(end - start));
	}
	assert_int_equal(end - start, half_hours * 1800);
	zone_free(z);
}

static void test_zone_known_days(void **state)
{
	(void)state;
	/* Berlin 2026-03-29 (23 h) and 2026-10-25 (25 h), 12:00 local */
	expect_day_length("Europe/Berlin", INT64_C(1774778400), 2 * 23);
	expect_day_length("Europe/Berlin", INT64_C(1792926000), 2 * 25);
	expect_day_length("Europe/Berlin", INT64_C(1795777200), 2 * 24);
	/* Lord Howe 2026-10-04: 23.5 h */
	expect_day_length("Australia/Lord_Howe", INT64_C(1791075600), 47);
	/* Apia 2011-12-29 (UTC-10) was followed by 2011-12-31 (UTC+14): still 24 h */
	expect_day_length("Pacific/Apia", INT64_C(1325196000), 2 * 24);
	/* Santiago 2026-04-04, a Saturday: at 24:00 the clock went back to 23:00 (25 h) */
	expect_day_length("America/Santiago", INT64_C(1775314800), 2 * 25);
}

static void test_zone_bad(void **state)
{
	static const char *const bad_names[] = {
		"", "/etc/passwd", "../etc/passwd", "Europe/../../etc/passwd", "Europe//Berlin",
		"Europe/Berlin/", "a b", "-x", "Europe/-x",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmn",
	};
	char err[512];
	struct zone *z = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		assert_int_equal(zone_load(bad_names[i], &z, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "is not a time zone name"));
		assert_null(z);
	}
	assert_int_equal(zone_load("Europe/Berlni", &z, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "'Europe/Berlni': no such time zone (" ZONE_DIR "/Europe/Berlni: "));
	/* a directory, and a file that is not TZif */
	assert_int_equal(zone_load("Europe", &z, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a time zone file"));
	assert_int_equal(zone_load("leapseconds", &z, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a TZif file"));
	/* leap seconds */
	assert_int_equal(zone_load("right/UTC", &z, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "leap seconds"));
	assert_null(z);
	zone_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zone_offsets),
		cmocka_unit_test(test_zone_day_ends),
		cmocka_unit_test(test_zone_known_days),
		cmocka_unit_test(test_zone_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
