/* SPDX-License-Identifier: MIT */
/*
 * Policy: turns the configured protocol into stimulation requests.
 *
 * The protocol's timing is computed once (config_train_shape) into a
 * template request. Closed loop: a burst onset posts it, unless the
 * previous request plus the refractory time has not ended. Open loop: the
 * template repeats, off_ms between trains, from the moment the coil is
 * armed until open_loop_pulses are delivered; a request cut short by a
 * refusal is followed by a new one for the pulses still due, off_ms later.
 * Every pulse still goes through the safety gate in the stim thread.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

struct policy {
	struct stim_request proto;	/* template from the config */
	bool open_loop;
	uint64_t open_loop_pulses;
	int64_t off_ns;			/* open loop: pause after a cut-short request */
	int64_t refractory_ns;
	uint32_t next_train_id;
	bool have_last;
	int64_t busy_until_ns;		/* end of last request + refractory (closed loop) */
	int64_t prev_busy_until_ns;	/* for policy_cancel_last */
	bool prev_have_last;
	bool was_busy;			/* open loop: a request was running */
	int64_t resume_at_ns;		/* open loop: not before this */
};

int64_t policy_pulse_offset_ns(const struct stim_request *req, uint32_t k)
{
	uint32_t b, j;

	if (!(req->frequency_hz > 0.0) || k == 0) {
		return 0;
	}
	b = req->burst_pulses ? k / req->burst_pulses : 0;
	j = req->burst_pulses ? k % req->burst_pulses : k;
	return (int64_t)b * req->burst_period_ns + llround((double)j * 1e9 / req->frequency_hz);
}

int64_t policy_span_ns(const struct stim_request *req)
{
	uint32_t cycles = req->cycles ? req->cycles : 1;

	return (int64_t)(cycles - 1) * req->cycle_period_ns +
	       policy_pulse_offset_ns(req, req->pulses - 1);
}

void policy_protocol_from_config(const struct rpmsd_config *cfg, struct policy_protocol *pp)
{
	struct config_train_shape sh;

	memset(pp, 0, sizeof(*pp));
	config_train_shape(cfg, &sh);
	pp->proto.pulses = sh.pulses;
	pp->proto.frequency_hz = sh.rate_hz;
	pp->proto.burst_pulses = sh.burst_pulses;
	pp->proto.burst_period_ns = llround(sh.burst_period_s * 1e9);
	pp->proto.cycles = sh.cycles;
	pp->proto.cycle_period_ns = llround(sh.cycle_period_s * 1e9);
	pp->proto.intensity_pct = cfg->stim.intensity_pct;
	pp->proto.width_us = (uint32_t)cfg->stim.pulse_width_us;
	pp->off_ns = llround(cfg->stim.off_ms * 1e6);
	pp->refractory_ns = llround(cfg->stim.refractory_ms * 1e6);
}

void policy_set_protocol(struct policy *p, const struct policy_protocol *pp)
{
	p->proto = pp->proto;
	p->off_ns = pp->off_ns;
	p->refractory_ns = pp->refractory_ns;
}

int policy_create(const struct rpmsd_config *cfg, struct policy **out)
{
	struct policy *p = calloc(1, sizeof(*p));
	struct policy_protocol pp;

	if (!p) {
		return -ENOMEM;
	}
	policy_protocol_from_config(cfg, &pp);
	policy_set_protocol(p, &pp);
	p->open_loop = cfg->stim.mode == CONFIG_MODE_OPEN_LOOP;
	p->open_loop_pulses = (uint64_t)cfg->stim.open_loop_pulses;
	p->next_train_id = 1;
	*out = p;
	return 0;
}

void policy_destroy(struct policy *p)
{
	free(p);
}

enum event_action policy_on_onset(struct policy *p, int64_t now_ns, uint64_t sample,
				  uint32_t channel, struct stim_request *req)
{
	/* In open loop the EMG does not start anything; onsets are only reported. */
	if (p->open_loop) {
		return EVENT_ACTION_NONE;
	}
	if (p->have_last && now_ns < p->busy_until_ns) {
		return EVENT_ACTION_REFRACTORY;
	}
	*req = p->proto;
	req->train_id = p->next_train_id;
	p->next_train_id += req->cycles;
	req->start_ns = now_ns;
	req->trigger_sample = sample;
	req->channel = channel;
	p->prev_have_last = p->have_last;
	p->prev_busy_until_ns = p->busy_until_ns;
	p->have_last = true;
	p->busy_until_ns = now_ns + policy_span_ns(req) + p->refractory_ns;
	return EVENT_ACTION_REQUESTED;
}

void policy_cancel_last(struct policy *p)
{
	p->have_last = p->prev_have_last;
	p->busy_until_ns = p->prev_busy_until_ns;
}

bool policy_done(const struct policy *p, uint64_t delivered)
{
	return p->open_loop && delivered >= p->open_loop_pulses;
}

bool policy_tick(struct policy *p, int64_t now_ns, bool armed, bool idle,
		 uint64_t delivered, struct stim_request *req)
{
	uint64_t due;

	if (!p->open_loop) {
		return false;
	}
	if (!idle) {
		p->was_busy = true;
		return false;
	}
	if (p->was_busy) {
		/* The last request ended (done, or cut short): pause as between trains. */
		p->was_busy = false;
		p->resume_at_ns = now_ns + p->off_ns;
	}
	if (!armed || now_ns < p->resume_at_ns || delivered >= p->open_loop_pulses) {
		return false;
	}
	due = p->open_loop_pulses - delivered;
	*req = p->proto;
	req->train_id = p->next_train_id;
	/* enough trains for what is due; the budget cuts the last one short */
	req->cycles = (uint32_t)((due + req->pulses - 1) / req->pulses);
	p->next_train_id += req->cycles;
	req->pulse_budget = due;
	req->start_ns = now_ns;
	req->trigger_sample = 0;
	req->channel = 0;
	req->open_loop = true;
	p->was_busy = true;
	return true;
}
