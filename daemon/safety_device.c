/* SPDX-License-Identifier: MIT */
/*
 * The connected device's envelope in the safety gate: its copy into the
 * gate's own memory, the table look-ups the device rules use (safety.c),
 * the protocol check at load and at "set", and the words for a refusal.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "safety.h"

/* A number a device may declare: finite, not negative. */
static bool safety_device_number_ok(double x)
{
	return isfinite(x) && x >= 0.0;
}

void safety_device_temp_limit(struct safety_limits *lim)
{
	double at = lim->dev.cutoff_c - lim->device_temp_margin_c;

	if (lim->dev.present && lim->dev.cutoff_c > 0.0 && at < lim->max_coil_temp_c) {
		lim->max_coil_temp_c = at;
	}
}

int safety_device_set(struct safety_device *dev, const struct rpmsd_coil_envelope *env,
		      char *err, size_t errlen)
{
	size_t i;

	memset(dev, 0, sizeof(*dev));
	err[0] = '\0';
	if (!env) {
		return 0;
	}
	if (env->struct_size < sizeof(*env)) {
		snprintf(err, errlen, "device envelope: struct_size %zu, this rpmsd needs %zu",
			 env->struct_size, sizeof(*env));
		return -EINVAL;
	}
	snprintf(dev->model, sizeof(dev->model), "%s", env->model ? env->model : "(unnamed)");
	if (!safety_device_number_ok(env->max_output_pct) ||
	    !safety_device_number_ok(env->min_train_gap_ms) ||
	    !safety_device_number_ok(env->single_pulse_max_hz) ||
	    !safety_device_number_ok(env->sustained_power_w) ||
	    !safety_device_number_ok(env->coil_cutoff_c)) {
		snprintf(err, errlen, "device envelope of %s: a limit is negative or not finite",
			 dev->model);
		return -EINVAL;
	}
	if (env->n_rate_caps > SAFETY_DEVICE_STEPS || env->n_energy > SAFETY_DEVICE_STEPS ||
	    (env->n_rate_caps && !env->rate_caps) || (env->n_energy && !env->energy)) {
		snprintf(err, errlen,
			 "device envelope of %s: a table is missing or longer than %d entries",
			 dev->model, SAFETY_DEVICE_STEPS);
		return -EINVAL;
	}
	for (i = 0; i < env->n_rate_caps; i++) {
		const struct rpmsd_coil_rate_cap *c = &env->rate_caps[i];

		if (!safety_device_number_ok(c->max_output_pct) ||
		    !safety_device_number_ok(c->max_rate_hz) ||
		    (i > 0 && c->max_output_pct <= env->rate_caps[i - 1].max_output_pct)) {
			snprintf(err, errlen,
				 "device envelope of %s: rate cap %zu: not finite, or its output not above the step before",
				 dev->model, i);
			return -EINVAL;
		}
		dev->caps[i] = *c;
	}
	for (i = 0; i < env->n_energy; i++) {
		const struct rpmsd_coil_energy_point *e = &env->energy[i];

		if (!safety_device_number_ok(e->output_pct) || !safety_device_number_ok(e->joules) ||
		    (i > 0 && e->output_pct <= env->energy[i - 1].output_pct)) {
			snprintf(err, errlen,
				 "device envelope of %s: energy point %zu: not finite, or its output not above the point before",
				 dev->model, i);
			return -EINVAL;
		}
		dev->energy[i] = *e;
	}
	if (env->n_energy > 0 && env->sustained_power_w <= 0.0) {
		snprintf(err, errlen, "device envelope of %s: an energy table needs sustained_power_w",
			 dev->model);
		return -EINVAL;
	}
	dev->n_caps = env->n_rate_caps;
	dev->n_energy = env->n_energy;
	dev->max_output_pct = env->max_output_pct > 0.0 ? env->max_output_pct : 100.0;
	dev->min_train_gap_ns = llround(env->min_train_gap_ms * 1e6);
	dev->single_max_hz = env->single_pulse_max_hz;
	dev->power_w = env->sustained_power_w;
	dev->cutoff_c = env->coil_cutoff_c;
	dev->present = true;
	return 0;
}

double safety_device_rate_cap(const struct safety_device *dev, double pct)
{
	size_t i;

	if (dev->n_caps == 0) {
		return INFINITY;
	}
	for (i = 0; i < dev->n_caps; i++) {
		if (pct <= dev->caps[i].max_output_pct + 1e-9) {
			return dev->caps[i].max_rate_hz;
		}
	}
	return 0.0;	/* above the last step: no train at all */
}

double safety_device_joules(const struct safety_device *dev, double pct)
{
	const struct rpmsd_coil_energy_point *a, *b;
	size_t i;

	if (dev->n_energy == 0) {
		return 0.0;
	}
	if (pct <= dev->energy[0].output_pct) {
		return dev->energy[0].joules;
	}
	for (i = 1; i < dev->n_energy; i++) {
		a = &dev->energy[i - 1];
		b = &dev->energy[i];
		if (pct <= b->output_pct) {
			return a->joules + (b->joules - a->joules) * (pct - a->output_pct) /
						   (b->output_pct - a->output_pct);
		}
	}
	/* No energy known above the table: nothing can be shown to fit. */
	return INFINITY;
}

void safety_verdict_text(const struct safety_verdict *v, const struct safety_device *dev,
			 char *buf, size_t len)
{
	const char *model = dev && dev->present ? dev->model : "the device";

	switch (v->rule) {
	case SAFETY_DEVICE_INTENSITY:
		if (isnan(v->limit)) {
			snprintf(buf, len, "requested %.4g %%, the device has not confirmed an intensity",
				 v->value);
		} else {
			snprintf(buf, len, "requested %.4g %%, the device confirmed %.4g %%", v->value,
				 v->limit);
		}
		return;
	case SAFETY_DEVICE_MAX_OUTPUT:
		snprintf(buf, len, "%.4g %% is above the %.4g %% maximum output of %s", v->value,
			 v->limit, model);
		return;
	case SAFETY_DEVICE_RATE:
		if (v->limit == 0.0) {
			snprintf(buf, len,
				 "%s allows no train at this output (above its last rate-cap step): %.6g Hz asked",
				 model, v->value);
		} else {
			snprintf(buf, len, "%.6g Hz is above the %.6g Hz %s allows at this output",
				 v->value, v->limit, model);
		}
		return;
	case SAFETY_DEVICE_SINGLE_RATE:
		snprintf(buf, len,
			 "single pulses %.6g s apart, %s allows single pulses no closer than %.6g s",
			 v->value, model, v->limit);
		return;
	case SAFETY_DEVICE_TRAIN_GAP:
		snprintf(buf, len, "%.6g s between trains, %s needs at least %.6g s", v->value, model,
			 v->limit);
		return;
	case SAFETY_DEVICE_ENERGY_WAIT:
		snprintf(buf, len,
			 "%.6g s after the last train, the energy model of %s needs a wait of %.6g s",
			 v->value, model, v->limit);
		return;
	case SAFETY_DEVICE_ENERGY:
		snprintf(buf, len,
			 "%.6g J within a minute, the energy model of %s allows %.6g J (its sustained power x 60 s)",
			 v->value, model, v->limit);
		return;
	default:
		snprintf(buf, len, "rule %s: %.6g, limit %.6g", safety_rule_name(v->rule), v->value,
			 v->limit);
		return;
	}
}

/* The stim.* key a device rule's refusal is about, for the message and "set"'s reply. */
static const char *safety_device_key(enum safety_rule rule, const struct rpmsd_config *cfg)
{
	bool theta = cfg->stim.protocol == CONFIG_PROTOCOL_THETA;

	switch (rule) {
	case SAFETY_DEVICE_MAX_OUTPUT:
		return "intensity_pct";
	case SAFETY_DEVICE_RATE:
		return theta ? "theta_frequency_hz" : "train_frequency_hz";
	case SAFETY_DEVICE_SINGLE_RATE:
	case SAFETY_DEVICE_TRAIN_GAP:
	case SAFETY_DEVICE_ENERGY_WAIT:
		return theta && rule != SAFETY_DEVICE_SINGLE_RATE ? "theta_period_ms" : "off_ms";
	case SAFETY_DEVICE_ENERGY:
	default:
		return "intensity_pct";
	}
}

/*
 * The protocol's pulses, at their schedule from the first (train c at
 * c x cycle period, burst b of it at b x burst period, pulse k of the
 * burst k / rate after), through the device's rules: up to two minutes
 * of it, so that the energy model's minute is seen full.
 */
int safety_device_check(const struct safety_device *dev, const struct rpmsd_config *cfg,
			enum safety_rule *rule, char *err, size_t errlen)
{
	struct config_train_shape sh;
	struct safety_limits lim;
	struct safety_state st;
	struct safety_request req;
	struct safety_verdict v = { .rule = SAFETY_OK };
	uint64_t trains, total, budget, done = 0;
	unsigned c, k = 0, bad_c = 0, bad_k = 0;
	char text[256];
	int64_t t = 0;

	err[0] = '\0';
	if (rule) {
		*rule = SAFETY_OK;
	}
	if (!dev || !dev->present) {
		return 0;
	}
	memset(&lim, 0, sizeof(lim));
	lim.dev = *dev;
	lim.dev.confirms = false;	/* nothing is confirmed before a run */
	safety_init(&st, 0);
	safety_set_armed(&st, true);
	config_train_shape(cfg, &sh);
	trains = sh.cycles;
	if (cfg->stim.mode == CONFIG_MODE_OPEN_LOOP && sh.pulses > 0) {
		total = (uint64_t)cfg->stim.open_loop_pulses;
		trains = (total + sh.pulses - 1) / sh.pulses;
	}
	budget = sh.cycle_period_s > 0.0 ? (uint64_t)(120.0 / sh.cycle_period_s) + 2 : 1;
	if (trains > budget) {
		trains = budget;
	}
	memset(&req, 0, sizeof(req));
	req.intensity_pct = cfg->stim.intensity_pct;
	req.frequency_hz = sh.pulses > 1 ? sh.rate_hz : 0.0;
	for (c = 0; c < trains && v.rule == SAFETY_OK; c++) {
		req.train_id = c + 1;
		for (k = 0; k < sh.pulses; k++) {
			unsigned b = sh.burst_pulses ? k / sh.burst_pulses : 0;
			unsigned j = sh.burst_pulses ? k % sh.burst_pulses : k;
			double at = c * sh.cycle_period_s + b * sh.burst_period_s +
				    (sh.rate_hz > 0.0 ? j / sh.rate_hz : 0.0);

			if (cfg->stim.mode == CONFIG_MODE_OPEN_LOOP &&
			    done >= (uint64_t)cfg->stim.open_loop_pulses) {
				break;
			}
			t = llround(at * 1e9);
			v = safety_admit_device(&lim, &st, &req, t);
			if (v.rule != SAFETY_OK) {
				bad_c = c;
				bad_k = k;
				break;
			}
			safety_commit(&st, &req, t);
			done++;
		}
	}
	if (v.rule == SAFETY_OK) {
		return 0;
	}
	if (rule) {
		*rule = v.rule;
	}
	safety_verdict_text(&v, dev, text, sizeof(text));
	snprintf(err, errlen,
		 "stim.%s: the connected device (%s) cannot deliver this protocol (stim.protocol, %.6g %%): device rule %s, at pulse %u of train %u (%.6g s into it): %s",
		 safety_device_key(v.rule, cfg), dev->model, cfg->stim.intensity_pct,
		 safety_rule_name(v.rule), bad_k + 1, bad_c + 1, (double)t / 1e9, text);
	return -EINVAL;
}
