/* SPDX-License-Identifier: MIT */
/*
 * The motor threshold procedure on the control thread (docs/threshold.md):
 * the "threshold" command starts it, the control thread's loop advances it
 * between requests (control_threshold_tick), so disarm and every other
 * command stay answered while it runs. It never fires a pulse itself:
 * each probe is a single-pulse request the acquire thread posts to the
 * stim thread, through the safety gate like any other (acquire_probe);
 * the intensity is asked of the device and its confirmation awaited
 * before each probe. The policy is held meanwhile (acquire_hold).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acquire.h"
#include "control_private.h"
#include "course.h"
#include "log.h"
#include "ring.h"
#include "safety.h"
#include "sclock.h"
#include "stim.h"
#include "threshold.h"

#define CT_CONFIRM_MS 5000	/* for the device to confirm a probe's output */
#define CT_PROBE_MS 5000	/* for a probe to fire and its window to pass */
#define CT_DEFAULT_WIN_START_MS 2.0
#define CT_DEFAULT_WIN_END_MS 20.0
#define CT_DEFAULT_INTERVAL_S 3.0
#define CT_MAX_PROBES 120	/* threshold_params.max_pulses */

enum ct_step {
	CT_WAIT = 0,		/* until the interval since the last probe has passed */
	CT_CONFIRM,		/* the device is asked for the output: until it confirms */
	CT_PROBE,		/* the probe is posted: until its window is captured */
	CT_ENDED,
};

struct ct_probe {
	double pct;
	double uv;
	bool response;
};

struct control_threshold {
	struct threshold *t;
	struct threshold_params prm;
	enum ct_step step;
	unsigned channel;
	double win_start_ms, win_end_ms;
	int64_t interval_ns;
	double cap_pct;
	int64_t next_ns;		/* session clock: no probe before */
	int64_t deadline_mono;		/* of the current wait */
	double pct;			/* the probe under way */
	int64_t confirmed_mono;		/* its output confirmed at, 0: not yet */
	bool confirms;			/* the device confirms its output */
	struct ct_probe probes[CT_MAX_PROBES];
	unsigned n;
	/* the result */
	enum event_threshold_outcome outcome;
	double threshold_pct;
	char reason[EVENT_REASON_MAX];
	/* a course session waiting for its threshold: what became of it */
	bool for_session;
	bool applied;
	double session_intensity_pct;
	char refused[CONTROL_MSG_MAX];
};

static void control_threshold_push(struct control *c, struct event *ev)
{
	ev->type = EVENT_THRESHOLD;
	ev->sample = sclock_last_sample(c->clock);
	event_stamp(ev, sclock_now(c->clock));
	ring_push(c->events, ev);
}

/* The end: publish, annotate, store in the course session, let the policy go. */
static void control_threshold_end(struct control *c, enum event_threshold_outcome outcome,
				  double pct, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void control_threshold_end(struct control *c, enum event_threshold_outcome outcome,
				  double pct, const char *fmt, ...)
{
	struct control_threshold *ct = c->thr;
	char err[256];
	struct event ev;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(ct->reason, sizeof(ct->reason), fmt, ap);
	va_end(ap);
	ct->outcome = outcome;
	ct->threshold_pct = outcome == EVENT_THRESHOLD_FOUND ? pct : NAN;
	/* a probe not yet posted is withdrawn; one posted fires or is refused by the gate */
	if (ct->step == CT_PROBE) {
		acquire_probe_cancel(c->acq);
	}
	ct->step = CT_ENDED;
	/* a course session still waiting for its threshold keeps the policy held */
	acquire_hold(c->acq, c->course_mt_pending);
	/* the device back at the protocol's output, which the next trains fire at */
	if (ct->confirms) {
		ret = stim_device_intensity(c->stim, c->cfg->stim.intensity_pct);
		if (ret < 0 && ret != -EOPNOTSUPP) {
			log_warn("threshold: asking the device for %g %% again: %s",
				 c->cfg->stim.intensity_pct, strerror(-ret));
		}
	}
	memset(&ev, 0, sizeof(ev));
	ev.channel = ct->channel;
	ev.u.threshold.result = 1;
	ev.u.threshold.outcome = outcome;
	ev.u.threshold.pulses = ct->n;
	ev.u.threshold.threshold_pct = ct->threshold_pct;
	ev.u.threshold.cap_pct = ct->cap_pct;
	snprintf(ev.u.threshold.reason, sizeof(ev.u.threshold.reason), "%s", ct->reason);
	control_threshold_push(c, &ev);
	if (outcome == EVENT_THRESHOLD_FOUND) {
		log_info("threshold: motor threshold %g %% in %u pulses (channel %u)", pct, ct->n,
			 ct->channel);
		if (c->course_mt_pending) {
			/* the prescription's "% of MT" becomes the session's intensity */
			ct->for_session = true;
			ct->applied = control_command_course_threshold(c, pct, ct->refused,
								       sizeof(ct->refused)) == 0;
			ct->session_intensity_pct = ct->applied ? c->cfg->stim.intensity_pct : NAN;
			if (ct->applied) {
				ct->refused[0] = '\0';
			}
		} else if (c->course && course_active(c->course) &&
			   course_threshold(c->course, pct, err, sizeof(err)) < 0) {
			log_warn("threshold: not stored in the course session: %s", err);
		}
	} else {
		log_warn("threshold: not found after %u pulses: %s", ct->n, ct->reason);
	}
}

/* The lowest of the request's cap, the safety cap and the device's maximum. */
static double control_threshold_cap(struct control *c, double want, const char **by)
{
	const struct safety_device *dev = stim_device(c->stim);
	double cap = c->cfg->safety.max_intensity_pct;

	*by = "safety.max_intensity_pct";
	if (dev && dev->present && dev->max_output_pct > 0.0 && dev->max_output_pct < cap) {
		cap = dev->max_output_pct;
		*by = "the device's maximum output";
	}
	if (!isnan(want) && want < cap) {
		cap = want;
		*by = "cap_pct";
	}
	return cap;
}

json_t *control_threshold_start(struct control *c, const struct control_request *req,
				struct control_error *err)
{
	struct control_threshold *ct;
	const char *by;
	char why[160];
	int ret;

	if (req->threshold.stop) {
		bool was = c->thr && c->thr->step != CT_ENDED;

		if (was) {
			control_threshold_end(c, EVENT_THRESHOLD_STOPPED, NAN, "stopped by request");
		}
		return json_pack("{s:b}", "stopped", was);
	}
	if (c->thr && c->thr->step != CT_ENDED) {
		control_request_fail(err, "busy", "a threshold procedure is running (%u probes so "
				     "far): wait for its result or stop it", c->thr->n);
		return NULL;
	}
	if (!stim_armed(c->stim)) {
		control_request_fail(err, "disarmed", "the coil is disarmed: arm it first (each "
				     "probe is a pulse through the safety gate)");
		return NULL;
	}
	if (req->threshold.channel >= (int)acquire_channels(c->acq)) {
		control_request_fail(err, "invalid_value", "threshold: channel %d does not exist "
				     "(allowed: 0 to %u)", req->threshold.channel,
				     acquire_channels(c->acq) - 1);
		snprintf(err->key, sizeof(err->key), "channel");
		return NULL;
	}
	ct = calloc(1, sizeof(*ct));
	if (!ct) {
		control_request_fail(err, "internal", "out of memory");
		return NULL;
	}
	ct->channel = req->threshold.channel < 0 ? 0 : (unsigned)req->threshold.channel;
	ct->win_start_ms = isnan(req->threshold.win_start_ms) ? CT_DEFAULT_WIN_START_MS
							      : req->threshold.win_start_ms;
	ct->win_end_ms = isnan(req->threshold.win_end_ms) ? CT_DEFAULT_WIN_END_MS
							  : req->threshold.win_end_ms;
	ct->interval_ns = (int64_t)llround((isnan(req->threshold.interval_s)
						    ? CT_DEFAULT_INTERVAL_S
						    : req->threshold.interval_s) * 1e9);
	ct->cap_pct = control_threshold_cap(c, req->threshold.cap_pct, &by);
	threshold_defaults(&ct->prm);
	ct->prm.cap_pct = ct->cap_pct;
	ct->prm.max_pulses = CT_MAX_PROBES;
	if (!isnan(req->threshold.start_pct)) {
		ct->prm.start_pct = req->threshold.start_pct;
	} else if (ct->prm.start_pct > ct->cap_pct) {
		ct->prm.start_pct = floor(ct->cap_pct);
	}
	ret = threshold_create(&ct->prm, &ct->t, why, sizeof(why));
	if (ret < 0) {
		control_request_fail(err, "invalid_value", "threshold: %s (the cap, %g %%, is %s)",
				     why, ct->cap_pct, by);
		free(ct);
		return NULL;
	}
	ct->confirms = !isnan(stim_confirmed_intensity(c->stim)) ||
		       (stim_device(c->stim) && stim_device(c->stim)->confirms);
	ct->next_ns = sclock_now(c->clock);
	ct->step = CT_WAIT;
	if (c->thr) {
		threshold_destroy(c->thr->t);
		free(c->thr);
	}
	c->thr = ct;
	acquire_hold(c->acq, true);
	log_info("threshold: started on channel %u, window %g-%g ms, probes at least %g s apart, "
		 "from %g %%, cap %g %% (%s)", ct->channel, ct->win_start_ms, ct->win_end_ms,
		 (double)ct->interval_ns / 1e9, ct->prm.start_pct, ct->cap_pct, by);
	return json_pack("{s:b, s:i, s:[f, f], s:f, s:f, s:f, s:s}", "started", 1, "channel",
			 (int)ct->channel, "window_ms", ct->win_start_ms, ct->win_end_ms,
			 "interval_s", (double)ct->interval_ns / 1e9, "start_pct",
			 ct->prm.start_pct, "cap_pct", ct->cap_pct, "cap_by", by);
}

/* A probe's window is in: measure, publish, annotate, tell the procedure. */
static void control_threshold_measured(struct control *c, const float *x, size_t n,
				       uint64_t sample)
{
	struct control_threshold *ct = c->thr;
	struct ct_probe *p = &ct->probes[ct->n];
	struct event ev;
	double uv;

	/* the window's start is the artefact blank: nothing before it is measured */
	uv = threshold_p2p(x, n, 1, acquire_rate(c->acq), 0, ct->win_start_ms, ct->win_start_ms,
			   ct->win_end_ms);
	p->pct = ct->pct;
	p->uv = uv;
	p->response = uv >= ct->prm.criterion_uv;
	ct->n++;
	memset(&ev, 0, sizeof(ev));
	ev.channel = ct->channel;
	ev.u.threshold.probe = ct->n;
	ev.u.threshold.response = p->response;
	ev.u.threshold.pulses = ct->n;
	ev.u.threshold.intensity_pct = ct->pct;
	ev.u.threshold.amplitude_uv = uv;
	ev.u.threshold.sample_at_fire = (double)sample;
	ev.u.threshold.cap_pct = ct->cap_pct;
	control_threshold_push(c, &ev);
	threshold_feed(ct->t, uv);
}

/* The procedure's next move, once its probe is measured. */
static void control_threshold_next(struct control *c)
{
	struct control_threshold *ct = c->thr;
	struct threshold_result res;
	double pct;

	switch (threshold_next(ct->t, &pct)) {
	case THRESHOLD_PROBE:
		ct->step = CT_WAIT;
		return;
	case THRESHOLD_DONE:
		threshold_result(ct->t, &res);
		control_threshold_end(c, EVENT_THRESHOLD_FOUND, res.threshold_pct,
				      "%g %% evoked >= %g uV in %u of %u pulses, %g %% did not",
				      res.threshold_pct, ct->prm.criterion_uv, ct->prm.hits,
				      ct->prm.trials, res.threshold_pct - 1.0);
		return;
	case THRESHOLD_CAPPED:
		control_threshold_end(c, EVENT_THRESHOLD_CAPPED, NAN,
				      "no threshold at or below the cap, %g %%: %g %% evoked "
				      ">= %g uV in fewer than %u of %u pulses", ct->cap_pct,
				      floor(ct->cap_pct), ct->prm.criterion_uv, ct->prm.hits,
				      ct->prm.trials);
		return;
	case THRESHOLD_LIMIT:
		control_threshold_end(c, EVENT_THRESHOLD_LIMIT, NAN,
				      "no result after %u pulses", ct->n);
		return;
	}
}

void control_threshold_tick(struct control *c)
{
	struct control_threshold *ct = c->thr;
	enum acquire_probe_state st;
	uint64_t sample, pulse;
	const float *x;
	double got;
	size_t n;

	if (!ct || ct->step == CT_ENDED) {
		return;
	}
	/* a disarm (the operator's, a fault's, the e-stop's) ends it */
	if (!stim_armed(c->stim) && ct->step != CT_PROBE) {
		control_threshold_end(c, EVENT_THRESHOLD_STOPPED, NAN, "the coil was disarmed");
		return;
	}
	switch (ct->step) {
	case CT_WAIT:
		if (sclock_now(c->clock) < ct->next_ns) {
			return;
		}
		/*
		 * The first probe as far from the policy's last pulse (a train
		 * asked for before it was held, perhaps still running) as probes
		 * are from each other: the gate's train interval holds for it too.
		 */
		if (ct->n == 0 && (!stim_idle(c->stim) ||
				   (stim_last_pulse_mono(c->stim) != INT64_MIN &&
				    sclock_mono_ns() < stim_last_pulse_mono(c->stim) + ct->interval_ns))) {
			return;
		}
		threshold_next(ct->t, &ct->pct);
		ct->deadline_mono = sclock_mono_ns() + CT_CONFIRM_MS * 1000000LL;
		if (ct->confirms) {
			stim_device_intensity(c->stim, ct->pct);
		}
		ct->confirmed_mono = 0;
		ct->step = CT_CONFIRM;
		/* fall through */
	case CT_CONFIRM:
		got = stim_confirmed_intensity(c->stim);
		if (ct->confirms && got != ct->pct) {
			if (sclock_mono_ns() >= ct->deadline_mono) {
				/*
				 * A device that does not set the output it is
				 * asked for is in doubt: nothing more fires on it
				 * until the operator looked and armed again.
				 */
				stim_disarm(c->stim, "threshold: the device did not confirm a "
					    "probe's output");
				control_threshold_end(c, EVENT_THRESHOLD_STOPPED, NAN,
						      "the device did not confirm %g %% within "
						      "%d ms (it says %g %%)", ct->pct,
						      CT_CONFIRM_MS, got);
			}
			return;
		}
		/*
		 * Then the device ready at that output, by a status read taken
		 * after the confirmation: a stimulator that settles or charges
		 * after a change (the Magstim) is not ready at once, and a probe
		 * posted then would only be refused by the gate (not_ready).
		 */
		if (!ct->confirmed_mono) {
			ct->confirmed_mono = sclock_mono_ns();
		}
		if (!stim_coil_ready(c->stim, ct->confirmed_mono)) {
			if (sclock_mono_ns() >= ct->deadline_mono) {
				control_threshold_end(c, EVENT_THRESHOLD_STOPPED, NAN,
						      "probe %u at %g %%: the coil did not report "
						      "ready within %d ms", ct->n + 1, ct->pct,
						      CT_CONFIRM_MS);
			}
			return;
		}
		/* a probe of an earlier procedure that ended while it was under way */
		acquire_probe_reset(c->acq);
		if (acquire_probe(c->acq, ct->pct, (uint32_t)c->cfg->stim.pulse_width_us,
				  ct->channel, ct->win_end_ms) < 0) {
			control_threshold_end(c, EVENT_THRESHOLD_STOPPED, NAN,
					      "the acquire thread could not take the probe");
			return;
		}
		ct->deadline_mono = sclock_mono_ns() + CT_PROBE_MS * 1000000LL;
		ct->step = CT_PROBE;
		return;
	case CT_PROBE:
		st = acquire_probe_poll(c->acq, &x, &n, &sample, &pulse);
		if (st == ACQUIRE_PROBE_DONE) {
			control_threshold_measured(c, x, n, sample);
			acquire_probe_reset(c->acq);
			/* the next probe no sooner than the interval after this one's pulse */
			ct->next_ns = sclock_now(c->clock) + ct->interval_ns -
				      (int64_t)llround(ct->win_end_ms * 1e6);
			control_threshold_next(c);
		} else if (st == ACQUIRE_PROBE_REFUSED || st == ACQUIRE_PROBE_BUSY) {
			acquire_probe_reset(c->acq);
			control_threshold_end(c, EVENT_THRESHOLD_STOPPED, NAN,
					      st == ACQUIRE_PROBE_BUSY
						      ? "probe %u at %g %% not posted: the stim "
							"thread's mailbox was full"
						      : "probe %u at %g %% refused by the safety "
							"gate: %s",
					      ct->n + 1, ct->pct,
					      safety_rule_name(stim_last_refusal(c->stim)));
		} else if (sclock_mono_ns() >= ct->deadline_mono) {
			/* left for the acquire thread to finish: it is never reset under it */
			control_threshold_end(c, EVENT_THRESHOLD_STOPPED, NAN,
					      "probe %u at %g %%: no pulse and EMG window within %d "
					      "ms (no EMG?)", ct->n + 1, ct->pct, CT_PROBE_MS);
		}
		return;
	case CT_ENDED:
		return;
	}
}

bool control_threshold_running(const struct control *c)
{
	return c->thr && c->thr->step != CT_ENDED;
}

json_t *control_threshold_status(struct control *c, const struct control_request *req)
{
	struct control_threshold *ct = c->thr;
	static const char *const outcomes[EVENT_THRESHOLD_OUTCOME_COUNT] = {
		[EVENT_THRESHOLD_FOUND] = "found",
		[EVENT_THRESHOLD_CAPPED] = "capped",
		[EVENT_THRESHOLD_LIMIT] = "limit",
		[EVENT_THRESHOLD_STOPPED] = "stopped",
	};
	json_t *probes, *res;
	unsigned i;

	if (!ct) {
		return json_pack("{s:b, s:[], s:n}", "running", 0, "probes", "result");
	}
	probes = json_array();
	for (i = (unsigned)(req->threshold.since - 1); probes && i < ct->n; i++) {
		json_array_append_new(probes, json_pack("{s:i, s:f, s:o, s:b}", "probe", (int)i + 1,
							"intensity_pct", ct->probes[i].pct,
							"amplitude_uv",
							isfinite(ct->probes[i].uv)
								? json_real(ct->probes[i].uv)
								: json_null(),
							"response", ct->probes[i].response));
	}
	res = ct->step != CT_ENDED
		      ? json_null()
		      : json_pack("{s:s, s:o, s:i, s:f, s:s}", "outcome", outcomes[ct->outcome],
				  "threshold_pct",
				  isnan(ct->threshold_pct) ? json_null()
							   : json_real(ct->threshold_pct),
				  "pulses", (int)ct->n, "cap_pct", ct->cap_pct, "reason", ct->reason);
	if (res && ct->for_session) {
		json_object_set_new(res, "session",
				    json_pack("{s:b, s:o, s:o}", "applied", ct->applied,
					      "intensity_pct", ct->applied ?
					      json_real(ct->session_intensity_pct) : json_null(),
					      "refused", ct->applied ? json_null() :
					      json_string(ct->refused)));
	}
	return json_pack("{s:b, s:i, s:i, s:o, s:o}", "running", ct->step != CT_ENDED, "channel",
			 (int)ct->channel, "pulses", (int)ct->n, "probes", probes, "result", res);
}

void control_threshold_free(struct control *c)
{
	if (c && c->thr) {
		threshold_destroy(c->thr->t);
		free(c->thr);
		c->thr = NULL;
	}
}
