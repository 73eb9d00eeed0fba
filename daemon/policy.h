/* SPDX-License-Identifier: MIT */
/*
 * Closed-loop policy: which burst onset starts which stimulation.
 *
 * A burst onset (on any channel) posts a request for the configured
 * protocol (one pulse, or a train of N pulses at F Hz) unless the previous
 * request's train plus the refractory time has not passed. The policy only
 * asks: every pulse still goes through the safety gate in the stim thread.
 * Runs on the acquire thread; no allocation after policy_create.
 */
#ifndef RPMSD_POLICY_H
#define RPMSD_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "safety.h"
#include "stim_request.h"

struct rpmsd_config;

/**
 * The protocol part of a policy: what a request looks like and the pauses
 * around it. Plain data, so that a new one can be handed to the acquire
 * thread at run time (control "set") without allocating there.
 */
struct policy_protocol {
	struct stim_request proto;	/* template: shape, intensity, width */
	int64_t off_ns;			/* open loop: pause after a train, or after a cut-short one */
	int64_t refractory_ns;		/* closed loop: after a request, before the next */
	uint64_t open_loop_pulses;	/* open loop: a session's count (a course's prescription) */
};

struct policy;

/** Compute the protocol of cfg->stim (any thread; no allocation). */
void policy_protocol_from_config(const struct rpmsd_config *cfg, struct policy_protocol *pp);

/**
 * Use @pp from the next request on (acquire thread, RT-safe). A request
 * already posted keeps its own copy; train ids, the refractory time of
 * the last request and the open-loop schedule carry on (the next open-loop
 * train starts the new off_ms after the last one's on-period).
 */
void policy_set_protocol(struct policy *p, const struct policy_protocol *pp);

/** Create from cfg->stim. @return 0, -ENOMEM */
int policy_create(const struct rpmsd_config *cfg, struct policy **out);

/**
 * Open loop (stim.mode = open_loop), once per block: while armed and the
 * stim thread idle, request the next train of the protocol (at most the
 * pulses still due), one train per request, so that a protocol changed
 * meanwhile (policy_set_protocol) applies from the next train.
 *
 * The trains follow the protocol's schedule: each starts its protocol's
 * on-period + off_ms after the one before started (docs/safety.md, "The
 * protocol's schedule"), and is posted once that start is at most
 * @lead_ns away, with a future start_ns the stim thread waits for. Posted
 * later than that (a pause shorter than a block) it starts late, never
 * early. A train that ended short (a refusal, a disarm, a new session)
 * ends the schedule: the next starts when asked, off_ms after the policy
 * saw it end at the earliest; so does the first train after an arm.
 * @param lead_ns    how far ahead of its start a train may be posted
 * @param armed      false also once after any disarm since the last tick
 * @param delivered  pulses delivered so far in this session
 * @param req        filled when the result is true
 * @return true when @req should be posted; never in closed loop
 */
bool policy_tick(struct policy *p, int64_t now_ns, int64_t lead_ns, bool armed, bool idle,
		 uint64_t delivered, struct stim_request *req);

/** True in open loop once stim.open_loop_pulses are delivered. */
bool policy_done(const struct policy *p, uint64_t delivered);

/** Free. Accepts NULL. */
void policy_destroy(struct policy *p);

/**
 * A burst onset was decided at session time @now_ns, sample @sample.
 * @param req  filled when the result is EVENT_ACTION_REQUESTED
 * @return enum event_action: REQUESTED or REFRACTORY
 */
enum event_action policy_on_onset(struct policy *p, int64_t now_ns, uint64_t sample,
				  uint32_t channel, struct stim_request *req);

/**
 * The request returned last could not be posted (mailbox full): forget it,
 * so the refractory time (closed loop) or the schedule (open loop) does
 * not run from a train that never started.
 */
void policy_cancel_last(struct policy *p);

/**
 * A train id of the policy's own sequence for a request made elsewhere
 * (a motor threshold probe), so ids stay unique in the session.
 */
uint32_t policy_claim_train_id(struct policy *p);

/** Where a pulse falls in a protocol's schedule (policy_check). */
enum policy_at {
	POLICY_AT_START,	/* the first pulse of a request */
	POLICY_AT_BURST,	/* a later pulse of a burst (or of a plain train) */
	POLICY_AT_NEXT_BURST,	/* the first pulse of the next burst of a train (theta_burst) */
	POLICY_AT_NEXT_TRAIN,	/* the first pulse of a later train (of a request, or open loop) */
	POLICY_AT_REPEAT,	/* open loop: the first pulse of the request after one cut short */
};

/** The first pulse of a protocol the gate would refuse (policy_check). */
struct policy_refusal {
	struct safety_verdict verdict;	/* the gate's; rule SAFETY_OK when every pulse passes */
	enum policy_at at;
	uint32_t train;			/* train of its request, from 0 */
	uint32_t index;			/* pulse of its train, from 0 */
	int64_t interval_ns;		/* from the pulse delivered before it; 0 if none */
	double rate_hz;			/* max_train_duration: the rate the train was held to */
	bool burst_rate;		/* some pulse of a burst comes closer to the one before
					 * it than the gate's max_frequency rule admits */
};

/**
 * Judge a protocol before it runs, exactly as the safety gate will judge
 * it: every pulse, at the time the stim thread schedules it (train c,
 * pulse k at stim_request_at_ns(c, k), the
 * trains of open loop posted on time),
 * through safety_admit() with @lim and the state it would have, from a
 * new session, armed, with fresh EMG and a coil that reports nothing, so
 * that only the protocol can be refused: intensity, rate (within a burst,
 * between bursts, between trains), pulses per train, the train-duration
 * table at the rate the pulses really come at, the gap between trains and
 * the session cap.
 *
 * Closed loop: the request one burst onset starts. The gap to the next
 * request depends on when the next onset comes (at least refractory_ms
 * after the last pulse) and is the gate's to judge.
 * Open loop: the whole run of @open_loop_pulses from arming, train by
 * train as policy_tick requests them, and the request that follows one
 * cut short by a refusal of any kind, off_ms after the refused pulse
 * (policy_tick), at the cut that leaves the shortest gap. A train posted
 * late (policy_tick) only lengthens the gap before it, which no rule
 * refuses. Trains that repeat an earlier one exactly are judged once.
 * Pure, no allocation, at most three trains of pulses (and a policy_tick
 * per train).
 * @return true when every pulse passes; false with @out naming the first
 *         refused pulse
 */
bool policy_check(const struct policy_protocol *pp, bool open_loop, uint64_t open_loop_pulses,
		  const struct safety_limits *lim, struct policy_refusal *out);

#endif /* RPMSD_POLICY_H */
