/* SPDX-License-Identifier: MIT */
/*
 * EMG freshness: when the acquire thread last processed an EMG block, and
 * the longest gap between two such blocks since the stim thread last
 * looked. The stim thread's acquisition watchdog and its stall check read
 * it; the status reply reads the block's age.
 *
 * A shared word, not a request on the stim thread's command ring: the
 * watchdog needs the latest time whenever it looks, and a stall both
 * threads slept through (SIGSTOP, a host stall) must still show when the
 * acquire thread refreshes before the stim thread wakes. One writer (the
 * acquire thread), any reader; nothing here allocates after fresh_create.
 */
#ifndef RPMSD_FRESH_H
#define RPMSD_FRESH_H

#include <stdint.h>

struct fresh;

/**
 * Create, with no block seen yet.
 * @return 0 or -ENOMEM
 */
int fresh_create(struct fresh **out);

/** Free. Accepts NULL. */
void fresh_destroy(struct fresh *f);

/**
 * Acquire thread (the one writer): an EMG block was processed at session
 * time @t_ns. RT-safe.
 */
void fresh_mark(struct fresh *f, int64_t t_ns);

/** Session time of the last EMG block (INT64_MIN before the first one). Any thread. */
int64_t fresh_last(const struct fresh *f);

/**
 * The longest gap between two fresh EMG blocks since the last call, ns
 * (0 if none): a stall both threads slept through still shows. RT-safe;
 * one taker (the stim thread).
 */
int64_t fresh_take_stall(struct fresh *f);

#endif /* RPMSD_FRESH_H */
