/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "policy.h"

struct policy {
	struct stim_request proto;	/* template from the config */
	int64_t refractory_ns;
	uint32_t next_train_id;
	bool have_last;
	int64_t busy_until_ns;		/* end of last train + refractory */
	int64_t prev_busy_until_ns;	/* for policy_cancel_last */
	bool prev_have_last;
};

int64_t policy_train_span_ns(uint32_t pulses, double frequency_hz)
{
	if (pulses <= 1 || !(frequency_hz > 0.0)) {
		return 0;
	}
	return llround((double)(pulses - 1) * 1e9 / frequency_hz);
}

int policy_create(const struct rpmsd_config *cfg, struct policy **out)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (!p) {
		return -ENOMEM;
	}
	if (cfg->stim.protocol == CONFIG_PROTOCOL_TRAIN) {
		p->proto.pulses = (uint32_t)cfg->stim.train_pulses;
		p->proto.frequency_hz = cfg->stim.train_frequency_hz;
	} else {
		p->proto.pulses = 1;
		p->proto.frequency_hz = 0.0;
	}
	p->proto.intensity_pct = cfg->stim.intensity_pct;
	p->proto.width_us = (uint32_t)cfg->stim.pulse_width_us;
	p->refractory_ns = llround(cfg->stim.refractory_ms * 1e6);
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
	if (p->have_last && now_ns < p->busy_until_ns) {
		return EVENT_ACTION_REFRACTORY;
	}
	*req = p->proto;
	req->train_id = p->next_train_id++;
	req->start_ns = now_ns;
	req->trigger_sample = sample;
	req->channel = channel;
	p->prev_have_last = p->have_last;
	p->prev_busy_until_ns = p->busy_until_ns;
	p->have_last = true;
	p->busy_until_ns = now_ns + policy_train_span_ns(req->pulses, req->frequency_hz) +
			   p->refractory_ns;
	return EVENT_ACTION_REQUESTED;
}

void policy_cancel_last(struct policy *p)
{
	p->have_last = p->prev_have_last;
	p->busy_until_ns = p->prev_busy_until_ns;
}
