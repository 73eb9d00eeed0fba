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

#include <stdint.h>

#include "config.h"
#include "event.h"

/** A stimulation request, posted from the acquire to the stim thread. */
struct stim_request {
	uint32_t train_id;		/* 1, 2, ... per daemon run */
	uint32_t pulses;		/* >= 1 */
	double frequency_hz;		/* pulse rate within the train */
	double intensity_pct;
	uint32_t width_us;
	int64_t start_ns;		/* session time of the first pulse */
	uint64_t trigger_sample;	/* decision sample of the burst onset */
	uint32_t channel;		/* channel whose onset triggered it */
};

struct policy;

/** Create from cfg->stim. @return 0, -ENOMEM */
int policy_create(const struct rpmsd_config *cfg, struct policy **out);

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

/** Duration of a train of @pulses at @frequency_hz (first to last pulse), ns. */
int64_t policy_train_span_ns(uint32_t pulses, double frequency_hz);

#endif /* RPMSD_POLICY_H */
