/* SPDX-License-Identifier: MIT */
/*
 * The motor threshold procedure (threshold.h, docs/threshold.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "threshold.h"

struct threshold {
	struct threshold_params p;
	enum threshold_state state;
	unsigned phase;
	double level;		/* output of the next probe, whole % */
	unsigned pulses;
	double threshold_pct;
	/* bracketing */
	double step;
	int last_dir;		/* +1 up, -1 down, 0 none yet */
	double last_hit;	/* last output that responded, NAN none */
	/* relative frequency at level */
	unsigned n, hit;
	double lowest_pass;	/* NAN none */
	double highest_fail;	/* NAN none */
};

void threshold_defaults(struct threshold_params *p)
{
	*p = (struct threshold_params){
		.start_pct = 40.0,
		.cap_pct = 100.0,
		.step_pct = 8.0,
		.criterion_uv = 50.0,
		.hits = 5,
		.trials = 10,
		.max_pulses = 120,
	};
}

int threshold_create(const struct threshold_params *p, struct threshold **out, char *err,
		     size_t errlen)
{
	struct threshold *t;

	*out = NULL;
	if (!(p->cap_pct >= 1.0 && p->cap_pct <= 110.0)) {
		snprintf(err, errlen, "cap_pct: %g is out of range (allowed: 1 to 110)", p->cap_pct);
		return -EINVAL;
	}
	if (!(p->start_pct >= 1.0 && p->start_pct <= p->cap_pct)) {
		snprintf(err, errlen, "start_pct: %g is out of range (allowed: 1 to the cap, %g)",
			 p->start_pct, p->cap_pct);
		return -EINVAL;
	}
	if (!(p->step_pct >= 1.0 && p->step_pct <= 32.0)) {
		snprintf(err, errlen, "step_pct: %g is out of range (allowed: 1 to 32)", p->step_pct);
		return -EINVAL;
	}
	if (!(p->criterion_uv > 0.0 && p->criterion_uv <= 10000.0)) {
		snprintf(err, errlen, "criterion_uv: %g is out of range (allowed: above 0, up to 10000)",
			 p->criterion_uv);
		return -EINVAL;
	}
	if (p->trials < 1 || p->trials > 100 || p->hits < 1 || p->hits > p->trials) {
		snprintf(err, errlen, "hits/trials: %u of %u (allowed: 1 <= hits <= trials <= 100)",
			 p->hits, p->trials);
		return -EINVAL;
	}
	if (p->max_pulses < p->trials || p->max_pulses > 10000) {
		snprintf(err, errlen, "max_pulses: %u (allowed: trials, %u, to 10000)", p->max_pulses,
			 p->trials);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->p = *p;
	t->state = THRESHOLD_PROBE;
	t->phase = 1;
	/* devices set whole per cent: so does every probe */
	t->level = fmin(round(p->start_pct), floor(p->cap_pct));
	t->step = round(p->step_pct);
	t->last_hit = NAN;
	t->lowest_pass = NAN;
	t->highest_fail = NAN;
	t->threshold_pct = NAN;
	*out = t;
	if (errlen) {
		err[0] = '\0';
	}
	return 0;
}

void threshold_destroy(struct threshold *t)
{
	free(t);
}

enum threshold_state threshold_next(const struct threshold *t, double *pct)
{
	*pct = t->state == THRESHOLD_PROBE ? t->level : NAN;
	return t->state;
}

static void threshold_begin_level(struct threshold *t, double level)
{
	t->level = level;
	t->n = 0;
	t->hit = 0;
}

/* Step 2 starts at the last output that responded (or the cap, if none did). */
static void threshold_to_phase2(struct threshold *t)
{
	t->phase = 2;
	threshold_begin_level(t, isnan(t->last_hit) ? floor(t->p.cap_pct) : t->last_hit);
}

static void threshold_bracket(struct threshold *t, bool hit)
{
	int dir = hit ? -1 : +1;
	double cap = floor(t->p.cap_pct), next;

	if (hit) {
		t->last_hit = t->level;
	}
	if (t->last_dir != 0 && dir != t->last_dir) {
		if (t->step <= 1.0) {
			threshold_to_phase2(t);
			return;
		}
		t->step = fmax(1.0, floor(t->step / 2.0));
	}
	t->last_dir = dir;
	next = t->level + dir * t->step;
	if (next > cap) {
		/* at the cap already without a response: judge the cap itself */
		if (t->level >= cap) {
			t->last_hit = cap;
			threshold_to_phase2(t);
			return;
		}
		next = cap;
	}
	if (next < 1.0) {
		if (t->level <= 1.0) {
			threshold_to_phase2(t);
			return;
		}
		next = 1.0;
	}
	t->level = next;
}

static void threshold_done(struct threshold *t, double pct)
{
	t->state = THRESHOLD_DONE;
	t->threshold_pct = pct;
}

/* A verdict at the current output: pass (hits reached) or fail. */
static void threshold_verdict(struct threshold *t, bool pass)
{
	double cap = floor(t->p.cap_pct);

	if (pass) {
		t->lowest_pass = t->level;
		if (t->highest_fail == t->level - 1.0 || t->level <= 1.0) {
			threshold_done(t, t->level);
			return;
		}
		threshold_begin_level(t, t->level - 1.0);
		return;
	}
	t->highest_fail = t->level;
	if (t->lowest_pass == t->level + 1.0) {
		threshold_done(t, t->level + 1.0);
		return;
	}
	if (t->level + 1.0 > cap) {
		t->state = THRESHOLD_CAPPED;
		return;
	}
	threshold_begin_level(t, t->level + 1.0);
}

int threshold_feed(struct threshold *t, double amplitude_uv)
{
	bool hit = amplitude_uv >= t->p.criterion_uv;	/* NAN: false */

	if (t->state != THRESHOLD_PROBE) {
		return -EALREADY;
	}
	t->pulses++;
	if (t->phase == 1) {
		threshold_bracket(t, hit);
	} else {
		t->n++;
		t->hit += hit;
		if (t->hit >= t->p.hits) {
			threshold_verdict(t, true);
		} else if (t->n - t->hit > t->p.trials - t->p.hits) {
			threshold_verdict(t, false);
		}
	}
	if (t->state == THRESHOLD_PROBE && t->pulses >= t->p.max_pulses) {
		t->state = THRESHOLD_LIMIT;
	}
	return 0;
}

void threshold_result(const struct threshold *t, struct threshold_result *out)
{
	out->state = t->state;
	out->threshold_pct = t->state == THRESHOLD_DONE ? t->threshold_pct : NAN;
	out->pulses = t->pulses;
	out->phase = t->phase;
}

const char *threshold_state_name(enum threshold_state s)
{
	switch (s) {
	case THRESHOLD_PROBE:
		return "running";
	case THRESHOLD_DONE:
		return "found";
	case THRESHOLD_CAPPED:
		return "capped";
	case THRESHOLD_LIMIT:
		return "limit";
	}
	return "unknown";
}

double threshold_p2p(const float *x, size_t n, size_t stride, double rate_hz, size_t pulse,
		     double blank_ms, double win_start_ms, double win_end_ms)
{
	double from_ms = fmax(blank_ms, win_start_ms), lo = INFINITY, hi = -INFINITY;
	size_t i, a, b;

	if (!(rate_hz > 0.0) || !(win_end_ms > from_ms)) {
		return NAN;
	}
	a = pulse + (size_t)ceil(from_ms * rate_hz / 1000.0);
	b = pulse + (size_t)ceil(win_end_ms * rate_hz / 1000.0);
	if (b > n) {
		b = n;
	}
	for (i = a; i < b; i++) {
		lo = fmin(lo, x[i * stride]);
		hi = fmax(hi, x[i * stride]);
	}
	return a < b ? hi - lo : NAN;
}
