/* SPDX-License-Identifier: MIT */
/* A stimulation request's timing, shared by the policy's check and the stim thread. */
#include <math.h>

#include "stim_request.h"

int64_t stim_request_offset_ns(const struct stim_request *req, uint32_t k)
{
	uint32_t b, j;

	if (!(req->frequency_hz > 0.0) || k == 0) {
		return 0;
	}
	b = req->burst_pulses ? k / req->burst_pulses : 0;
	j = req->burst_pulses ? k % req->burst_pulses : k;
	return (int64_t)b * req->burst_period_ns + llround((double)j * 1e9 / req->frequency_hz);
}

int64_t stim_request_span_ns(const struct stim_request *req)
{
	uint32_t cycles = req->cycles ? req->cycles : 1;

	return (int64_t)(cycles - 1) * req->cycle_period_ns +
	       stim_request_offset_ns(req, req->pulses - 1);
}

int64_t stim_request_at_ns(const struct stim_request *req, uint32_t c, uint32_t k)
{
	return req->start_ns + (int64_t)c * req->cycle_period_ns + stim_request_offset_ns(req, k);
}

int64_t stim_request_first_ns(const struct stim_request *req, int64_t now, bool any_pulse,
			      int64_t last_pulse_ns)
{
	int64_t t = req->start_ns > now ? req->start_ns : now;

	if (req->gap_ns > 0 && any_pulse && t - last_pulse_ns < req->gap_ns) {
		t = last_pulse_ns + req->gap_ns;
	}
	return t;
}

int64_t stim_request_next_ns(const struct stim_request *req, uint32_t c, uint32_t k,
			     int64_t prev_ns)
{
	int64_t gap, t = stim_request_at_ns(req, c, k);

	if (k == 0) {
		/* the designed pause after a train, even if this one ran late */
		gap = req->cycle_period_ns - stim_request_offset_ns(req, req->pulses - 1);
	} else {
		/* the designed spacing to the previous pulse: within a burst one period */
		gap = stim_request_offset_ns(req, k) - stim_request_offset_ns(req, k - 1);
	}
	return t < prev_ns + gap ? prev_ns + gap : t;
}

uint64_t stim_request_left(const struct stim_request *req, uint32_t c, uint32_t k,
			   uint64_t delivered)
{
	uint64_t left = (uint64_t)(req->pulses - k) + (uint64_t)(req->cycles - c - 1) * req->pulses;

	if (req->pulse_budget && left > req->pulse_budget - delivered) {
		left = req->pulse_budget - delivered;
	}
	return left;
}
