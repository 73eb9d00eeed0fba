/* SPDX-License-Identifier: MIT */
/*
 * A stimulation request and its timing: where each pulse of its trains
 * falls. The policy makes requests (acquire thread) and judges a protocol
 * by them before it runs (policy_check); the stim thread fires them. Both
 * place a pulse with the functions below, so the check and the firing
 * cannot drift apart.
 *
 * Pure, no allocation, any thread.
 */
#ifndef RPMSD_STIM_REQUEST_H
#define RPMSD_STIM_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

/**
 * A stimulation request, posted from the acquire to the stim thread: one
 * or more trains of the same shape (closed loop: the trains of one burst
 * onset; open loop: one train). Pulse k of train c fires at
 * start_ns + c * cycle_period_ns + (k / burst_pulses) * burst_period_ns +
 * (k % burst_pulses) / frequency_hz (stim_request_at_ns).
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
	 * Open loop: one train of the session's count. What it does not
	 * deliver is asked for again (off_ms later), so it is not "not
	 * delivered" until the count ends (stim.c).
	 */
	bool open_loop;
	uint64_t due;			/* open loop: pulses of the count still due, these included */
	/*
	 * Open loop, the next train of the schedule: its first pulse never
	 * closer than this to the pulse delivered before it (the designed
	 * pause after the train before, as within a request); 0: none.
	 */
	int64_t gap_ns;
};

/** Offset of pulse @k of a train of @req from the train's first pulse, ns. */
int64_t stim_request_offset_ns(const struct stim_request *req, uint32_t k);

/** Session time from a request's start to its last pulse, ns. */
int64_t stim_request_span_ns(const struct stim_request *req);

/** Session time at which pulse @k of train @c of @req is due on its schedule. */
int64_t stim_request_at_ns(const struct stim_request *req, uint32_t c, uint32_t k);

/**
 * When the first pulse of @req fires, taken at session time @now: its
 * start, not before @now, and (open loop, gap_ns) never closer than
 * gap_ns to the pulse delivered before it, at @last_pulse_ns when
 * @any_pulse: a train that ran late delays the next.
 */
int64_t stim_request_first_ns(const struct stim_request *req, int64_t now, bool any_pulse,
			      int64_t last_pulse_ns);

/**
 * When pulse @k of train @c of @req fires, the pulse before it (pulse
 * k - 1, or the last of train c - 1 when @k is 0) having fired at
 * @prev_ns: on its schedule, but never closer than the designed spacing
 * to that pulse, so a late pulse delays the rest rather than squeezing
 * the next one in early. @c and @k name a pulse after the first.
 */
int64_t stim_request_next_ns(const struct stim_request *req, uint32_t c, uint32_t k,
			     int64_t prev_ns);

/**
 * Pulses of @req not delivered yet, from pulse @k of train @c on, with
 * @delivered of them delivered so far (held to pulse_budget).
 */
uint64_t stim_request_left(const struct stim_request *req, uint32_t c, uint32_t k,
			   uint64_t delivered);

#endif /* RPMSD_STIM_REQUEST_H */
