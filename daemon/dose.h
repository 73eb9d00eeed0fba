/* SPDX-License-Identifier: MIT */
/*
 * The pulses-per-day ledger: how many pulses the rig has counted for the
 * current day, kept in the state directory so that the safety gate's
 * daily cap survives restarts and crashes.
 *
 * A day is a calendar day in a configured zone (safety.day_zone), never
 * in the process's TZ, and the ledger stores the absolute instant (UTC)
 * at which its day ends, computed when the day began: a new day begins
 * only once real time has passed that instant, whatever zone is set
 * later, and never less than 23 hours after the previous day's end.
 *
 * The state directory holds four files:
 *   dose         the ledger: zone, day, its end, pulses, exact, the last
 *                pulse's time, a write sequence, guarded by a CRC-32.
 *                Replaced atomically (dose.tmp, fsync, rename, fsync DIR).
 *   sequence     the write sequence of the last ledger written, kept apart:
 *                a dose with a lower sequence is an old copy (rollback).
 *   initialised  written once, after the first ledger: from then on a
 *                missing ledger is an error, never a silent reset to zero.
 *   lock         flock()ed by the one rpmsd that uses the directory; holds
 *                its pid for the message the next one prints.
 * None of them may be a symbolic link.
 *
 * A damaged, missing, rolled-back or future-dated ledger is never repaired
 * or reset here: dose_open fails and says what the operator can do.
 *
 * dose_record fsyncs: call it from a thread that may block, never from
 * the stim thread. Not thread-safe: one thread owns a ledger.
 */
#ifndef RPMSD_DOSE_H
#define RPMSD_DOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zone.h"

/** A good size for the err buffers below: they name files twice. */
#define DOSE_ERR_MAX 1024

/** Room for "YYYY-MM-DD" and its NUL. */
#define DOSE_DAY_STRLEN 11

/**
 * No daily cap is larger (safety.max_daily_pulses allows at most this):
 * a ledger that counts more was not written by rpmsd and is refused.
 */
#define DOSE_PULSES_MAX 10000000

/** A new day never ends less than this after the previous day's end. */
#define DOSE_DAY_MIN_S (23 * 3600)

/** dose_prior_pulse_ns: no earlier run ever fired. */
#define DOSE_NO_PULSE INT64_MAX

/** dose_record's @last_pulse_ns: this run fired nothing, keep what is known. */
#define DOSE_KEEP_PULSE INT64_MIN

/** Room for a boot id (/proc/sys/kernel/random/boot_id) and its NUL. */
#define DOSE_BOOT_ID_LEN 37

/** What the clocks say. dose_clock_now reads them; tests set them by hand. */
struct dose_clock {
	int64_t real_s;			/* CLOCK_REALTIME, s since 1970 (UTC) */
	int64_t boot_ns;		/* CLOCK_BOOTTIME, ns */
	char boot_id[DOSE_BOOT_ID_LEN];	/* this boot's id, "" when unknown */
};

struct dose_ledger;

/** Read CLOCK_REALTIME, CLOCK_BOOTTIME and the boot id into @c. */
void dose_clock_now(struct dose_clock *c);

/**
 * Format @day (days since 1970-01-01) as YYYY-MM-DD into @buf. Days
 * outside years 0001..9999 give "invalid". Truncated to @len.
 */
void dose_day_string(int64_t day, char *buf, size_t len);

/**
 * Open and lock the ledger in the state directory @dir, at @now.
 *
 * The directory must exist (systemd's StateDirectory= creates it); it may
 * be a symbolic link, the files in it may not. An exclusive flock on
 * DIR/lock is held until dose_close; a second open of the same directory,
 * by this or another process, fails with -EBUSY.
 *
 * First use (no DIR/dose, DIR/sequence, DIR/initialised): writes a ledger
 * with 0 pulses for the day of @now in @zone, then the sequence and the
 * marker. A ledger whose day has ended counts 0 for a new day, which is
 * written at the next dose_record; unless the day ended by a step of the
 * wall clock since the ledger was written in this same boot (the wall
 * clock moved more than 30 s further than CLOCK_BOOTTIME), when the count
 * is kept for the new day (dose_notice says so).
 *
 * A version 1 ledger (a local date without a zone) is migrated: its count
 * holds until that date has ended in every zone on Earth (the next day,
 * 12:00 UTC), and is written in version 2 at the next dose_record.
 *
 * @param zone  the zone new days are counted in; it must outlive @out
 * @param err   receives, on error, a message that names the file (and line
 *              for a damaged ledger), what is wrong and what to do
 * @return 0 with *@out set, or
 *         -ENOENT   @dir missing, or DIR/dose missing although DIR was
 *                   initialised (the day's count is unknown)
 *         -ENOTDIR  @dir is not a directory
 *         -ELOOP    a file of the ledger is a symbolic link
 *         -EBUSY    another rpmsd holds the directory
 *         -EBADMSG  DIR/dose or DIR/sequence is damaged (left as it is), or
 *                   counts more than DOSE_PULSES_MAX
 *         -ESTALE   DIR/dose is older than DIR/sequence says (a rollback)
 *         -ERANGE   DIR/dose is dated after the day of @now in its own
 *                   zone, or its day ends more than 3 days after @now (the
 *                   clock went back?)
 *         -ENOMEM, or another -errno from the file system
 */
int dose_open(const char *dir, const struct zone *zone, const struct dose_clock *now,
	      struct dose_ledger **out, char *err, size_t errlen);

/**
 * What dose_open did that the operator should know (a migrated ledger, a
 * day kept across a step of the clock, a change of zone), or NULL.
 */
const char *dose_notice(const struct dose_ledger *l);

/** Pulses counted for the ledger's day: as opened or last recorded. */
uint64_t dose_pulses(const struct dose_ledger *l);

/** The ledger's day: its date in the zone it began in (days since 1970). */
int64_t dose_day(const struct dose_ledger *l);

/** The instant (s since 1970, UTC) at which the ledger's day ends. */
int64_t dose_day_end(const struct dose_ledger *l);

/** Whether the ledger's day has ended at @now: dose_record may start a new one. */
bool dose_day_over(const struct dose_ledger *l, const struct dose_clock *now);

/**
 * False if dose_pulses() may include pulses reserved but not delivered:
 * the last writer did not record an exact count (it crashed, or is still
 * running). True for a day that starts at 0.
 */
bool dose_exact(const struct dose_ledger *l);

/**
 * How long before dose_open's @now an earlier run's last pulse may have
 * been, in ns, for the gate's gap between trains; DOSE_NO_PULSE when no
 * run ever fired. It is 0 (that pulse is taken as just now) whenever the
 * time is not known for sure: the last run did not stop cleanly, or it
 * ran in another boot (CLOCK_BOOTTIME restarts), or the ledger was a
 * version 1 one.
 */
int64_t dose_prior_pulse_ns(const struct dose_ledger *l);

/**
 * Persist @pulses: write DIR/dose.tmp, fsync it, rename it over DIR/dose,
 * fsync DIR, then the same for DIR/sequence. @pulses may be a reservation,
 * more than delivered: @exact says it is not (true at a clean shutdown).
 *
 * @new_day starts a new day (only once dose_day_over(@now)): it ends at
 * the first midnight of the zone after @now that is at least
 * DOSE_DAY_MIN_S after the day before ended, and any count is allowed.
 * Otherwise the count is for the ledger's day, and below what earlier runs
 * counted for it (dose_pulses() at dose_open) is refused with -EINVAL:
 * a run may give back its own unused reservation (the exact count at a
 * clean stop) but never an earlier run's pulses.
 *
 * @param last_pulse_ns  CLOCK_BOOTTIME (ns) of this run's last pulse, or
 *                       DOSE_KEEP_PULSE when it fired none
 *
 * On any error before the rename of DIR/dose, DIR/dose and the ledger are
 * unchanged. After it the ledger counts the new content and the error is
 * returned (the directory fsync or DIR/sequence failed: it may not survive
 * a power loss).
 * @return 0, -EINVAL, -ERANGE (@pulses above DOSE_PULSES_MAX), or -errno
 *         from writing (-EISDIR: DIR/dose.tmp is a directory, -ENOSPC...)
 */
int dose_record(struct dose_ledger *l, const struct dose_clock *now, bool new_day,
		uint64_t pulses, bool exact, int64_t last_pulse_ns, char *err, size_t errlen);

/** Unlock and free. Accepts NULL. Writes nothing. */
void dose_close(struct dose_ledger *l);

#endif /* RPMSD_DOSE_H */
