/* SPDX-License-Identifier: MIT */
/*
 * The session clock: the one time base of the pipeline and the stim thread.
 *
 * Real mode: CLOCK_MONOTONIC minus the session start; the stim thread
 * sleeps with clock_nanosleep(TIMER_ABSTIME).
 *
 * Virtual mode (replay --fast): time is the recording's own time, moved
 * forward by the acquire thread after each block. The stim thread's
 * sleeps end when virtual time reaches their deadline, and the acquire
 * thread does not move time past a pending pulse deadline until the stim
 * thread has dealt with it. So a fast replay takes the same decisions at
 * the same recording times as a paced one, only sooner, through the same
 * code.
 *
 * Waits use futexes; nothing here allocates after sclock_create.
 */
#ifndef RPMSD_SCLOCK_H
#define RPMSD_SCLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/** "No deadline". */
#define SCLOCK_NEVER INT64_MAX

struct sclock;

/**
 * Create a clock. @virtual_time selects virtual mode.
 * @return 0 or -ENOMEM
 */
int sclock_create(bool virtual_time, struct sclock **out);

/** Free. Accepts NULL. */
void sclock_destroy(struct sclock *c);

/** Mark now as session time 0 (real mode: records CLOCK_MONOTONIC). */
void sclock_start(struct sclock *c);

/** CLOCK_MONOTONIC ns of session time 0. */
int64_t sclock_t0_mono(const struct sclock *c);

/** True in virtual mode. */
bool sclock_is_virtual(const struct sclock *c);

/** CLOCK_MONOTONIC in ns: the daemon's one reading of it. RT-safe (vDSO). */
int64_t sclock_mono_ns(void);

/** Session time in ns. RT-safe. */
int64_t sclock_now(const struct sclock *c);

/**
 * Stim side: wait until session time @deadline (SCLOCK_NEVER: no deadline),
 * until *@word differs from @seen, or until sclock_stop. Returns the
 * session time on return. In real mode a wait with a deadline and no word
 * is a clock_nanosleep(TIMER_ABSTIME).
 * @param word  may be NULL (wait for the deadline only)
 */
int64_t sclock_wait(struct sclock *c, int64_t deadline, atomic_uint *word,
		    unsigned seen);

/** Bump *@word and wake a thread waiting on it in sclock_wait. RT-safe. */
void sclock_kick(struct sclock *c, atomic_uint *word);

/**
 * Acquire side, virtual mode only: move time forward to @t, stepping
 * through any pulse deadline the stim thread announced, and return when
 * the stim thread is idle at @t. A no-op in real mode.
 */
void sclock_advance(struct sclock *c, int64_t t);

/** Acquire side: index of the last sample consumed (RT-safe). */
void sclock_set_last_sample(struct sclock *c, uint64_t index);

/**
 * Index of the last sample consumed (0 before the first), for the events
 * of threads that see no samples themselves.
 */
uint64_t sclock_last_sample(const struct sclock *c);

/**
 * Release every waiter for good (shutdown). The thread that waits in
 * sclock_wait must keep waiting until this is called or until no thread
 * calls sclock_advance any more: a virtual-time hand-off waits for it.
 */
void sclock_stop(struct sclock *c);

/** True once sclock_stop was called. */
bool sclock_stopped(const struct sclock *c);

#endif /* RPMSD_SCLOCK_H */
