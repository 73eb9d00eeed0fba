/* SPDX-License-Identifier: MIT */
/*
 * The stim thread's refusal summariser: the first refusal of a rule is
 * published at once, the repeats of the second that follows are counted
 * into one summary (a protocol the gate refuses at every EMG block must
 * not flood the stream or the rings), and refusals never take the ring
 * slots kept for pulses and state changes. A count is never lost: a
 * summary the ring has no room for waits for the next period.
 *
 * Private to stim.c, which embeds it; stim thread only. Nothing here
 * allocates or blocks.
 */
#ifndef RPMSD_STIM_REFUSAL_H
#define RPMSD_STIM_REFUSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "safety.h"

struct ring;
struct sclock;
struct stim_stats;

/** One second: a rule's repeats within it go out as one summary. */
#define STIM_REFUSAL_PERIOD_NS 1000000000LL

/** Per rule: until when repeats are summarised, and the summary being made. */
struct stim_refusal {
	struct ring *events;
	struct sclock *clock;
	struct stim_stats *stats;	/* refusals_single, summaries, refusals_summarised */
	size_t reserve;			/* ring slots refusals leave to the rest */
	int64_t until[SAFETY_RULE_COUNT];
	struct event rep[SAFETY_RULE_COUNT];	/* refusals 0: none being made */
};

/**
 * Set up @r to publish into @events, leaving @reserve of its slots to the
 * other records, counting into @stats.
 */
void stim_refusal_init(struct stim_refusal *r, struct ring *events, struct sclock *clock,
		       struct stim_stats *stats, size_t reserve);

/** Publish refusal @ev (made at session time @now), or count it into its rule's summary. */
void stim_refusal_publish(struct stim_refusal *r, struct event *ev, int64_t now);

/**
 * Publish the summaries whose period ended (@all: every one, before a
 * state change), leaving the reserve free.
 */
void stim_refusal_flush(struct stim_refusal *r, int64_t now, bool all);

/** Publish every summary, leaving only @reserve slots free (the stop). */
void stim_refusal_flush_all(struct stim_refusal *r, int64_t now, size_t reserve);

/** When a summary is due (SCLOCK_NEVER: none). */
int64_t stim_refusal_deadline(const struct stim_refusal *r);

#endif /* RPMSD_STIM_REFUSAL_H */
