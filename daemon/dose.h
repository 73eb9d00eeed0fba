/* SPDX-License-Identifier: MIT */
/*
 * The pulses-per-day ledger: how many pulses the rig has counted for the
 * current local calendar day, kept in the state directory so that the
 * safety gate's daily cap survives restarts and crashes.
 *
 * The state directory holds three files:
 *   dose         the ledger: day, pulses, exact, guarded by a CRC-32.
 *                Replaced atomically (dose.tmp, fsync, rename, fsync DIR).
 *   initialised  written once, after the first ledger: from then on a
 *                missing ledger is an error, never a silent reset to zero.
 *   lock         flock()ed by the one rpmsd that uses the directory; holds
 *                its pid for the message the next one prints.
 *
 * A damaged, missing or future-dated ledger is never repaired or reset
 * here: dose_open fails and says what the operator can do.
 *
 * dose_record fsyncs twice: call it from a thread that may block, never
 * from the stim thread. Not thread-safe: one thread owns a ledger.
 */
#ifndef RPMSD_DOSE_H
#define RPMSD_DOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** A good size for the err buffers below: they name files twice. */
#define DOSE_ERR_MAX 1024

/** Room for "YYYY-MM-DD" and its NUL. */
#define DOSE_DAY_STRLEN 11

/** What dose_local_day returns for a time localtime_r cannot convert. */
#define DOSE_DAY_INVALID INT64_MIN

struct dose_ledger;

/**
 * Local calendar day of @t, as days since 1970-01-01, in the rig's time
 * zone (localtime_r, so TZ and /etc/localtime apply).
 * @return the day, or DOSE_DAY_INVALID if @t cannot be converted
 */
int64_t dose_local_day(time_t t);

/**
 * Format @day as YYYY-MM-DD into @buf. Days outside years 0001..9999 give
 * "invalid". Output is truncated to @len (DOSE_DAY_STRLEN fits).
 */
void dose_day_string(int64_t day, char *buf, size_t len);

/**
 * Open and lock the ledger in the state directory @dir for the day @today.
 *
 * The directory must exist (systemd's StateDirectory= creates it). An
 * exclusive flock on DIR/lock is held until dose_close; a second open of
 * the same directory, by this or another process, fails with -EBUSY.
 *
 * First use (neither DIR/dose nor DIR/initialised): writes a ledger for
 * @today with 0 pulses, then the marker. A ledger older than @today counts
 * 0 for @today; it is superseded on disk at the next dose_record.
 *
 * @param err  receives, on error, a message that names the file (and line
 *             for a damaged ledger), what is wrong and what to do
 * @return 0 with *@out set, or
 *         -ENOENT   @dir missing, or DIR/dose missing although DIR was
 *                   initialised (the day's count is unknown)
 *         -ENOTDIR  @dir is not a directory
 *         -EBUSY    another rpmsd holds the directory
 *         -EBADMSG  DIR/dose is damaged (left as it is)
 *         -ERANGE   DIR/dose is dated after @today (clock went back?)
 *         -EINVAL   @today is not a valid day
 *         -ENOMEM, or another -errno from the file system
 */
int dose_open(const char *dir, int64_t today, struct dose_ledger **out,
	      char *err, size_t errlen);

/** Pulses counted for dose_day(): as opened or last recorded. */
uint64_t dose_pulses(const struct dose_ledger *l);

/** The day the ledger counts for: @today of dose_open or the last record. */
int64_t dose_day(const struct dose_ledger *l);

/**
 * False if dose_pulses() may include pulses reserved but not delivered:
 * the last writer did not record an exact count (it crashed, or is still
 * running). True for a day that starts at 0.
 */
bool dose_exact(const struct dose_ledger *l);

/**
 * Persist @pulses for @day: write DIR/dose.tmp, fsync it, rename it over
 * DIR/dose, fsync DIR. @pulses may be a reservation, more than delivered:
 * @exact says it is not (true at a clean shutdown).
 *
 * A @day before dose_day(), or a count below what earlier runs counted
 * for the same day (dose_pulses() at dose_open), is refused with -EINVAL:
 * days never go back, and a run may give back its own unused reservation
 * (the exact count at a clean stop) but never an earlier run's pulses.
 *
 * On any error before the rename, DIR/dose and the ledger are unchanged.
 * If only the final fsync of DIR fails, the new ledger is in place and the
 * ledger counts it, but the error is returned: it
 * may not survive a power loss.
 * @return 0, -EINVAL, or -errno from writing (-EISDIR: DIR/dose.tmp is a
 *         directory, -ENOSPC, -EIO...)
 */
int dose_record(struct dose_ledger *l, int64_t day, uint64_t pulses, bool exact,
		char *err, size_t errlen);

/** Unlock and free. Accepts NULL. Writes nothing. */
void dose_close(struct dose_ledger *l);

#endif /* RPMSD_DOSE_H */
