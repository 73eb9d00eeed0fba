/* SPDX-License-Identifier: MIT */
/*
 * The stim thread's request in progress: which train of it and which
 * pulse is next, when, how many it has delivered, and the open-loop count
 * (pulses of the session's count still due, and what last held them
 * back). Where each pulse falls is stim_request.c's; what is admitted is
 * the gate's; this only keeps the place and the counts.
 *
 * Private to stim.c, which embeds it; stim thread only. Nothing here
 * allocates or blocks.
 */
#ifndef RPMSD_STIM_TRAIN_H
#define RPMSD_STIM_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "safety.h"
#include "stim_request.h"

struct stim_stats;

/** The request in progress. */
struct stim_train {
	bool in_train;
	struct stim_request train;
	uint32_t cycle;			/* train of the request being fired */
	uint32_t next_index;		/* pulse of that train */
	uint64_t req_delivered;		/* pulses delivered for this request */
	int64_t next_deadline;		/* SCLOCK_NEVER: none */
	/*
	 * Open loop: pulses of the session's count still due (as of the last
	 * open-loop request) and what last cut a request short. Counted as
	 * not delivered once, when the count ends (a new session, the stop).
	 */
	uint64_t ol_due;
	enum safety_rule ol_rule;
};

/** Nothing in progress, no open-loop count. */
void stim_train_init(struct stim_train *t);

/**
 * Start @req at session time @now; its first pulse keeps its own gap to
 * the gate's last pulse (@any_pulse, @last_pulse_ns).
 */
void stim_train_begin(struct stim_train *t, const struct stim_request *req, int64_t now,
		      bool any_pulse, int64_t last_pulse_ns);

/** Nothing in progress any more. */
void stim_train_end(struct stim_train *t);

/** A pulse of the request was delivered: count it (and its train's start). */
void stim_train_count(struct stim_train *t, struct stim_stats *st);

/**
 * Move to the request's next pulse after one delivered at @now.
 * @return false when the request is done (its trains, or its budget)
 */
bool stim_train_next(struct stim_train *t, struct stim_stats *st, int64_t now);

/** Pulses of the request not delivered yet (this train and later ones). */
uint64_t stim_train_pending(const struct stim_train *t);

/**
 * Pulses of the request that ending it under @rule leaves undelivered for
 * good: all of them in closed loop; none in open loop, where the policy
 * asks for them again (counted once, by stim_train_settle).
 */
uint64_t stim_train_lost(struct stim_train *t, enum safety_rule rule);

/**
 * The open-loop count ends (a new session, @stopping: the stop): what it
 * did not deliver is counted into @st now, once, under the rule that
 * refused it since its last pulse (else the disarm that ended it, or as
 * pending at the stop).
 */
void stim_train_settle(struct stim_train *t, struct stim_stats *st, bool stopping);

#endif /* RPMSD_STIM_TRAIN_H */
