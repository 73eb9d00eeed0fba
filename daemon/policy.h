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

#include "config.h"
#include "event.h"

/**
 * A stimulation request, posted from the acquire to the stim thread: one
 * or more trains of the same shape. Pulse k of train c fires at
 * start_ns + c * cycle_period_ns + (k / burst_pulses) * burst_period_ns +
 * (k % burst_pulses) / frequency_hz.
 */
struct stim_request {
	uint32_t train_id;		/* of the first train; train c is train_id + c */
	uint32_t pulses;		/* per train, >= 1 */
	double frequency_hz;		/* pulse rate within a burst; 0: single pulse */
	uint32_t burst_pulses;		/* pulses per burst (= pulses for a plain train) */
	int64_t burst_period_ns;	/* burst to burst; 0: one burst */
	uint32_t cycles;		/* trains, >= 1 */
	int64_t cycle_period_ns;	/* first pulse to next train's first pulse */
	uint64_t pulse_budget;		/* stop after delivering this many; 0: no cap */
	double intensity_pct;
	uint32_t width_us;
	int64_t start_ns;		/* session time of the first pulse */
	uint64_t trigger_sample;	/* decision sample of the burst onset */
	uint32_t channel;		/* channel whose onset triggered it */
	/*
	 * Open loop: the pulses of the session's count still due. What it
	 * does not deliver is asked for again (off_ms later), so it is not
	 * "not delivered" until the count ends (stim.c).
	 */
	bool open_loop;
};

/**
 * The protocol part of a policy: what a request looks like and the pauses
 * around it. Plain data, so that a new one can be handed to the acquire
 * thread at run time (control "set") without allocating there.
 */
struct policy_protocol {
	struct stim_request proto;	/* template: shape, intensity, width */
	int64_t off_ns;			/* open loop: pause after a cut-short request */
	int64_t refractory_ns;		/* closed loop: after a request, before the next */
};

struct policy;

/** Compute the protocol of cfg->stim (any thread; no allocation). */
void policy_protocol_from_config(const struct rpmsd_config *cfg, struct policy_protocol *pp);

/**
 * Use @pp from the next request on (acquire thread, RT-safe). A request
 * already posted keeps its own copy; train ids and the refractory time of
 * the last request carry on.
 */
void policy_set_protocol(struct policy *p, const struct policy_protocol *pp);

/** Create from cfg->stim. @return 0, -ENOMEM */
int policy_create(const struct rpmsd_config *cfg, struct policy **out);

/**
 * Open loop (stim.mode = open_loop), once per block: while armed and the
 * stim thread idle, request the protocol for the pulses still to deliver.
 * @param delivered  pulses delivered so far in this run
 * @param req        filled when the result is true
 * @return true when @req should be posted; never in closed loop
 */
bool policy_tick(struct policy *p, int64_t now_ns, bool armed, bool idle,
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
 * so the refractory time does not run from a train that never started.
 */
void policy_cancel_last(struct policy *p);

/** Session time from a request's start to its last pulse, ns. */
int64_t policy_span_ns(const struct stim_request *req);

/** Offset of pulse @k of a train of @req from the train's first pulse, ns. */
int64_t policy_pulse_offset_ns(const struct stim_request *req, uint32_t k);

#endif /* RPMSD_POLICY_H */
