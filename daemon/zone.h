/* SPDX-License-Identifier: MIT */
/*
 * A time zone of the IANA database, read from its TZif file once, then
 * used as plain data: the day boundaries of the pulse ledger
 * (safety.day_zone) must not depend on the process's TZ, and the C
 * library's localtime_r can only be pointed at another zone by changing
 * TZ for the whole process, which is not safe while other threads run.
 *
 * After zone_load() every function here is pure and thread-safe: it
 * reads the loaded rules and nothing else (no file, no environment).
 */
#ifndef RPMSD_ZONE_H
#define RPMSD_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Where zone names are looked up (Debian's tzdata). */
#define ZONE_DIR "/usr/share/zoneinfo"

/** Longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define ZONE_NAME_MAX 64

/** No UTC offset is larger than this (RFC 8536 allows up to 26 h). */
#define ZONE_OFFSET_MAX (26 * 3600)

struct zone;

/**
 * Load the zone @name: "UTC" (built in, no file needed) or an IANA name
 * such as "Europe/Berlin", read from ZONE_DIR/NAME (TZif versions 1 to 4,
 * with the POSIX TZ rule at its end for times after its last transition).
 * Zones with leap seconds ("right/...") are refused.
 *
 * @param err  receives, on error, what is wrong with the name or the file
 * @return 0 with *@out set, -EINVAL (a name that is not a zone name, or a
 *         file that is not a valid TZif file), -ENOENT (no such zone),
 *         -ENOMEM, or another -errno from reading the file
 */
int zone_load(const char *name, struct zone **out, char *err, size_t errlen);

/**
 * Whether @name is spelt like a zone name: "UTC", or letters, digits, '_',
 * '-', '+' in parts joined by '/', at most ZONE_NAME_MAX characters (so
 * it cannot leave ZONE_DIR). Says nothing about whether the zone exists.
 */
bool zone_name_valid(const char *name);

/** Free. Accepts NULL. */
void zone_free(struct zone *z);

/** The name the zone was loaded by. */
const char *zone_name(const struct zone *z);

/**
 * The zone's UTC offset (local time minus UTC, in seconds) at the instant
 * @t (seconds since 1970-01-01T00:00:00Z). Times are clamped to years
 * 1..9999.
 * @param next  if not NULL, receives the first instant after @t at which
 *              the offset may change (INT64_MAX: never)
 */
int32_t zone_offset(const struct zone *z, int64_t t, int64_t *next);

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
int64_t zone_days_from_civil(int64_t y, unsigned m, unsigned d);

/** The proleptic Gregorian date of @days since 1970-01-01 (zone_days_from_civil's inverse). */
void zone_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/** Local calendar day of @t in @z, as days since 1970-01-01. */
int64_t zone_day(const struct zone *z, int64_t t);

/**
 * The instant at which the local calendar day of @t ends: the first
 * instant after @t from which the local date is later than @t's and
 * stays so. It is the next local midnight, 23 or 25 hours away on the
 * days the clocks change (America/Santiago's Saturday that ends with
 * 23:00 twice lasts 25 h), where no midnight exists the day ends when the
 * next date begins (the day before a skipped date, Pacific/Apia
 * 2011-12-29, ends at its 24:00), and where a change would take the date
 * back for a while the day ends only once it has moved past for good.
 */
int64_t zone_day_end(const struct zone *z, int64_t t);

#endif /* RPMSD_ZONE_H */
