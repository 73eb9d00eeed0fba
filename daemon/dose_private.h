/* SPDX-License-Identifier: MIT */
/*
 * The pulse ledger's inner parts, shared by the files that make it up and
 * by nothing else (as control_private.h is for the control socket):
 *
 *   dose.c        the state directory: atomic writes, the marker, the
 *                 lock, loading and its checks, the public API (dose.h)
 *   dose_file.c   the text of the ledger and sequence files: parse,
 *                 format, checksum; no file system, no clock
 *
 * Not thread-safe, like the ledger itself: one thread owns a ledger.
 */
#ifndef RPMSD_DOSE_PRIVATE_H
#define RPMSD_DOSE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dose.h"
#include "zone.h"

/* A ledger is about 400 bytes; anything this large is not one. */
#define DOSE_FILE_MAX 4096
#define DOSE_FILE_WHY_MAX 256

/** The version dose_file_format writes; dose_file_parse also reads 1. */
#define DOSE_FILE_VERSION 2

/** The content of a ledger or sequence file. */
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
	long pid;		/* the writer's, for people: formatted, never parsed */
	uint64_t seq;
};

/** Which file dose_file_parse reads: each has its own keys. */
enum dose_file_kind {
	DOSE_FILE_KIND_LEDGER,
	DOSE_FILE_KIND_SEQ,
};

/** Where a parse failed: the line (1-based) and what was wrong there. */
struct dose_file_error {
	int line;
	char why[DOSE_FILE_WHY_MAX];
};

/**
 * Format @day (days since 1970-01-01) as YYYY-MM-DD into @buf; "invalid"
 * outside years 0001..9999. Truncated to @len. (dose_day_string.)
 */
void dose_file_day_string(int64_t day, char *buf, size_t len);

/** "YYYY-MM-DDTHH:MM:SSZ" of @t (s since 1970, UTC) into @buf (21 bytes or more). */
void dose_file_utc_string(int64_t t, char *buf, size_t len);

/**
 * Parse exactly "YYYY-MM-DD" of @len bytes, a real date, into @day (days
 * since 1970). @return 0 or -EINVAL
 */
int dose_file_parse_day(const char *s, size_t len, int64_t *day);

/** A decimal number of @len bytes, digits only. @return 0, -EINVAL or -ERANGE */
int dose_file_parse_u64(const char *s, size_t len, uint64_t *v);

/** Whether @s (@len bytes) is a boot id: 8-4-4-4-12 lowercase hex digits. */
bool dose_file_boot_id_ok(const char *s, size_t len);

/**
 * Parse a whole file of @kind, @len bytes of @buf, into @f (zeroed by the
 * caller). Lines are checked in order, so the first damage is reported at
 * its own line; the checksum, checked last, catches what still parses.
 * @return 0, or -EBADMSG with the line and what was wrong in @pe
 */
int dose_file_parse(const char *buf, size_t len, enum dose_file_kind kind, struct dose_file *f,
		    struct dose_file_error *pe);

/**
 * The ledger @f as text, its checksum line last, into @buf (DOSE_FILE_MAX
 * bytes is room enough). Writes version DOSE_FILE_VERSION whatever
 * @f->version says. @return its length
 */
size_t dose_file_format(char *buf, size_t size, const struct dose_file *f);

/** The sequence file for @seq, signed, into @buf (256 bytes). @return its length */
size_t dose_file_format_seq(char *buf, size_t size, uint64_t seq);

#endif /* RPMSD_DOSE_PRIVATE_H */
