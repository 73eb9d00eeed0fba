/* SPDX-License-Identifier: MIT */
/*
 * Burst detector: robust calibration, then a hysteresis state machine.
 *
 * The state machine does not look at the envelope itself but at the
 * "sustained envelope": the smallest of the envelope values one window
 * apart over the last detect.sustain_ms, i.e. the quietest of several
 * consecutive, non-overlapping envelope windows. A burst keeps all of
 * them up; a transient shorter than sustain_ms minus one window (an
 * electrode pop, a motion spike) leaves at least one of them at rest
 * however large it is, so it is never a burst, without the long
 * confirmation time that a single long window would need. The onset is
 * back-dated on the envelope itself, to the last sample that was within
 * k_edge spreads of its rest level.
 *
 * States: WAIT (before the calibration window), CALIBRATING, IDLE,
 * CANDIDATE (above the onset threshold, not confirmed yet) and ACTIVE.
 * Every sample does a constant amount of work; the only exception is the
 * last calibration sample, which runs selections over the calibration
 * buffer (each stretch's median, then the whole window's median and MAD:
 * linear on average, no allocation).
 *
 * Blanked samples are dropped before anything looks at them, so a blank
 * freezes every timer and the calibration collection.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "dsp.h"

/* 1.4826 * MAD estimates the standard deviation for normal data. */
#define DETECT_MAD_SCALE 1.4826
/* Spread floor relative to the baseline, so a flat rest window doesn't
 * give thresholds equal to the baseline itself. */
#define DETECT_SPREAD_FLOOR_REL 1e-3
#define DETECT_SPREAD_FLOOR_ABS 1e-9
#define DETECT_MAX_CAL_SAMPLES 100000000.0
#define DETECT_CAL_RATE 1000.0	/* envelope values per second kept for calibration */
#define DETECT_REST_TAU_S 1.0	/* time constant of the followed rest level */
#define DETECT_EDGE_S 0.5	/* how far back an onset may be dated */
#define DETECT_MAX_SKIP 4
#define DETECT_FOOT_S 0.03	/* a ramp's foot: at most this before the change point */
#define DETECT_SUB_S 0.2	/* stretches of the calibration window checked for rest */
#define DETECT_SUB_RATIO 2.5	/* stretches further apart than this were not all rest */

enum detect_state {
	DETECT_S_WAIT = 0,
	DETECT_S_CALIBRATING,
	DETECT_S_IDLE,
	DETECT_S_CANDIDATE,
	DETECT_S_ACTIVE,
};

struct detect {
	enum detect_state state;

	/* parameters, in samples */
	uint64_t win;		/* envelope window */
	uint64_t n_win;		/* windows in the sustained envelope */
	uint64_t skip;		/* quietest windows it ignores */
	uint64_t cal_len;
	uint64_t on_n;
	uint64_t dip_n;
	uint64_t off_n;
	double k_on, k_off, k_edge;

	/* envelope history for the sustained envelope: (n_win - 1) * win + 1 */
	float *hist;
	uint64_t hist_len;
	uint64_t hist_pos;	/* next slot to write */
	uint64_t hist_filled;

	/* calibration */
	float *cal_env;		/* envelope at rest */
	uint64_t cal_stride;	/* keep every cal_stride-th envelope sample */
	uint64_t cal_want;	/* samples the window holds on that grid */
	uint64_t cal_from;
	uint64_t cal_n;
	uint64_t sub_len;	/* calibration values per DETECT_SUB_S stretch */
	float *sub_med;		/* each stretch's median envelope */
	double cal_dt;		/* seconds per calibration value */
	uint64_t settle_n;	/* the filters' start-up, in samples */
	uint64_t settle_until;	/* first sample after the start-up */
	uint64_t cal_first;	/* sample of cal_env[0] */
	uint64_t cal_skipped;	/* window values left out: the filters' start-up */
	int seen;		/* a sample has been fed */
	uint64_t cal_artefacts;	/* samples of the window the dsp guard replaced */
	unsigned cal_issues;	/* enum detect_cal_issue of the last calibration */
	double cal_unsteady_s;
	int calibrated;
	double baseline, spread, thr_on, thr_off;
	float last_sustained;	/* for detect_sustained_last */
	double edge_ratio;	/* edge level / rest mean */
	double rest_mean;	/* mean envelope at rest, followed while quiet */
	double rest_alpha;	/* its update weight per sample */
	/* envelope history for the onset estimate (not blanked samples) */
	float *eh;
	uint64_t *eh_idx;	/* their sample indices */
	uint64_t eh_len, eh_pos, eh_filled;
	uint64_t edge_floor;	/* no onset is dated before this sample */
	uint64_t foot_n;	/* how much earlier a ramp's foot may be */

	/* blanking: [blank_from, blank_end) */
	uint64_t blank_from, blank_end;

	/* onset */
	uint64_t above;		/* samples above on since the candidate began */
	uint64_t dip;		/* current run below on within the candidate */

	/* offset */
	uint64_t below;		/* current run below off while active */
	uint64_t below_from;
};

static uint64_t detect_ms_to_samples(double ms, double fs)
{
	return (uint64_t)llround(ms * fs / 1000.0);
}

static int detect_fail(char *err, size_t errlen, const char *key, double v,
		       const char *why)
{
	snprintf(err, errlen, "%s: %g: %s", key, v, why);
	return -EINVAL;
}

int detect_create(const struct rpmsd_config *cfg, double fs, struct detect **out,
		  char *err, size_t errlen)
{
	const double cal_s = cfg->detect.calibration_s;
	const double start_s = cfg->detect.calibration_start_s;
	struct detect *d;
	double cal_len;

	if (!(fs > 0.0) || !isfinite(fs)) {
		return detect_fail(err, errlen, "sampling rate", fs, "must be > 0");
	}
	if (!(start_s >= 0.0) || start_s * fs > DETECT_MAX_CAL_SAMPLES) {
		return detect_fail(err, errlen, "detect.calibration_start_s", start_s,
				   "must be >= 0 and within 1e8 samples");
	}
	cal_len = round(cal_s * fs);
	if (!(cal_len >= 2.0) || cal_len > DETECT_MAX_CAL_SAMPLES) {
		return detect_fail(err, errlen, "detect.calibration_s", cal_s,
				   "must cover 2 to 1e8 samples");
	}
	if (!(cfg->detect.k_on > 0.0) || !isfinite(cfg->detect.k_on)) {
		return detect_fail(err, errlen, "detect.k_on", cfg->detect.k_on,
				   "must be > 0");
	}
	if (!(cfg->detect.k_off >= 0.0) || !(cfg->detect.k_off <= cfg->detect.k_on)) {
		return detect_fail(err, errlen, "detect.k_off", cfg->detect.k_off,
				   "must be >= 0 and not above detect.k_on");
	}
	if (!(cfg->detect.on_ms >= 0.0) || !isfinite(cfg->detect.on_ms)) {
		return detect_fail(err, errlen, "detect.on_ms", cfg->detect.on_ms,
				   "must be >= 0");
	}
	if (!(cfg->detect.dip_ms >= 0.0) || !isfinite(cfg->detect.dip_ms)) {
		return detect_fail(err, errlen, "detect.dip_ms", cfg->detect.dip_ms,
				   "must be >= 0");
	}
	if (!(cfg->detect.off_ms >= 0.0) || !isfinite(cfg->detect.off_ms)) {
		return detect_fail(err, errlen, "detect.off_ms", cfg->detect.off_ms,
				   "must be >= 0");
	}

	d = calloc(1, sizeof(*d));
	if (!d) {
		goto err_nomem;
	}
	d->cal_len = (uint64_t)cal_len;
	/*
	 * The envelope changes no faster than its window allows, so about
	 * 1 kHz of it is enough for the median and MAD. Keeping no more bounds
	 * the buffer (and the selection at the end of the window, which runs
	 * on the acquire thread) at any sampling rate: 600 s at 100 kHz is
	 * 600,000 values, not 60 million.
	 */
	d->cal_stride = fs > DETECT_CAL_RATE ? (uint64_t)floor(fs / DETECT_CAL_RATE) : 1;
	d->cal_want = (d->cal_len + d->cal_stride - 1) / d->cal_stride;
	d->cal_dt = (double)d->cal_stride / fs;
	d->sub_len = (uint64_t)llround(DETECT_SUB_S / d->cal_dt);
	if (d->sub_len < 1) {
		d->sub_len = 1;
	}
	/* Hum leaks through until the mains canceller has caught it, and the
	 * high-pass needs two periods of its corner (dsp_chain_settle_s). */
	d->settle_n = (uint64_t)llround(dsp_chain_settle_s(cfg) * fs);
	d->win = detect_ms_to_samples(cfg->dsp.envelope_ms, fs);
	if (d->win < 1) {
		d->win = 1;
	}
	d->n_win = (uint64_t)llround(cfg->detect.sustain_ms / cfg->dsp.envelope_ms);
	if (!(cfg->dsp.envelope_ms > 0.0) || d->n_win < 1) {
		d->n_win = 1;
	}
	d->hist_len = (d->n_win - 1) * d->win + 1;
	d->skip = (uint64_t)cfg->detect.sustain_skip;
	if (d->skip > DETECT_MAX_SKIP) {
		d->skip = DETECT_MAX_SKIP;
	}
	if (d->skip >= d->n_win) {
		d->skip = d->n_win - 1;
	}
	d->eh_len = (uint64_t)ceil(DETECT_EDGE_S * fs) + 1;
	d->foot_n = (uint64_t)llround(DETECT_FOOT_S * fs);
	d->cal_env = calloc(d->cal_want, sizeof(*d->cal_env));
	d->hist = calloc(d->hist_len, sizeof(*d->hist));
	d->eh = calloc(d->eh_len, sizeof(*d->eh));
	d->eh_idx = calloc(d->eh_len, sizeof(*d->eh_idx));
	d->sub_med = calloc(d->cal_want / d->sub_len + 1, sizeof(*d->sub_med));
	if (!d->cal_env || !d->hist || !d->eh || !d->eh_idx || !d->sub_med) {
		goto err_free;
	}
	memset(d->sub_med, 0, (d->cal_want / d->sub_len + 1) * sizeof(*d->sub_med));
	memset(d->eh, 0, d->eh_len * sizeof(*d->eh));
	memset(d->eh_idx, 0, d->eh_len * sizeof(*d->eh_idx));
	/* Touch every page now so the RT thread never faults one in. */
	memset(d->cal_env, 0, d->cal_want * sizeof(*d->cal_env));
	memset(d->hist, 0, d->hist_len * sizeof(*d->hist));

	d->k_on = cfg->detect.k_on;
	d->k_off = cfg->detect.k_off;
	d->k_edge = cfg->detect.k_edge;
	d->rest_alpha = 1.0 / (DETECT_REST_TAU_S * fs);
	/* At least one sample each: a zero timer would decide on nothing. */
	d->on_n = detect_ms_to_samples(cfg->detect.on_ms, fs);
	if (d->on_n < 1) {
		d->on_n = 1;
	}
	d->dip_n = detect_ms_to_samples(cfg->detect.dip_ms, fs);
	d->off_n = detect_ms_to_samples(cfg->detect.off_ms, fs);
	if (d->off_n < 1) {
		d->off_n = 1;
	}
	detect_recalibrate(d, (uint64_t)llround(start_s * fs));
	*out = d;
	return 0;

err_free:
	free(d->sub_med);
	free(d->eh_idx);
	free(d->eh);
	free(d->hist);
	free(d->cal_env);
	free(d);
err_nomem:
	snprintf(err, errlen, "out of memory for the calibration buffer");
	return -ENOMEM;
}

void detect_destroy(struct detect *d)
{
	if (!d) {
		return;
	}
	free(d->sub_med);
	free(d->eh_idx);
	free(d->eh);
	free(d->hist);
	free(d->cal_env);
	free(d);
}

static void detect_swap(float *a, int64_t i, int64_t j)
{
	float t = a[i];

	a[i] = a[j];
	a[j] = t;
}

/* Value of rank k (0-based) of a[0..n), partially reordering a so that
 * a[0..k) <= a[k]. Hoare partition around a median-of-three pivot. */
static float detect_select(float *a, int64_t n, int64_t k)
{
	int64_t lo = 0, hi = n - 1;

	while (hi > lo) {
		int64_t mid = lo + (hi - lo) / 2;
		int64_t i = lo, j = hi;
		float p;

		if (a[mid] < a[lo]) {
			detect_swap(a, mid, lo);
		}
		if (a[hi] < a[lo]) {
			detect_swap(a, hi, lo);
		}
		if (a[hi] < a[mid]) {
			detect_swap(a, hi, mid);
		}
		p = a[mid];
		while (i <= j) {
			while (a[i] < p) {
				i++;
			}
			while (a[j] > p) {
				j--;
			}
			if (i <= j) {
				detect_swap(a, i++, j--);
			}
		}
		/* a[lo..j] <= p, a[j+1..i-1] == p, a[i..hi] >= p */
		if (k <= j) {
			hi = j;
		} else if (k >= i) {
			lo = i;
		} else {
			break;
		}
	}
	return a[k];
}

/* Median of a[0..n); for even n the mean of the two middle values. */
static double detect_median(float *a, int64_t n)
{
	double hi = detect_select(a, n, n / 2);
	double lo;
	int64_t i;

	if (n % 2) {
		return hi;
	}
	/* after selection everything below n/2 is <= a[n/2]: take its max */
	lo = a[0];
	for (i = 1; i < n / 2; i++) {
		if (a[i] > lo) {
			lo = a[i];
		}
	}
	return (lo + hi) / 2.0;
}

/* Median and scaled MAD of a[0..n) (reordered), with the spread floor. */
static void detect_robust(float *a, uint64_t n, double *median, double *spread)
{
	double med, mad, min_spread;
	uint64_t i;

	med = detect_median(a, (int64_t)n);
	for (i = 0; i < n; i++) {
		a[i] = (float)fabs(a[i] - med);
	}
	mad = detect_median(a, (int64_t)n);
	*median = med;
	*spread = DETECT_MAD_SCALE * mad;
	min_spread = DETECT_SPREAD_FLOOR_REL * fabs(med);
	if (min_spread < DETECT_SPREAD_FLOOR_ABS) {
		min_spread = DETECT_SPREAD_FLOOR_ABS;
	}
	if (!(*spread >= min_spread)) {
		*spread = min_spread;
	}
}

/*
 * The median envelope of each DETECT_SUB_S stretch of the window, in time
 * order (the last one takes the remainder). Each selection reorders only
 * its own stretch, which leaves the median and MAD of the whole window as
 * they were. @return the number of stretches
 */
static uint64_t detect_sub_medians(struct detect *d)
{
	uint64_t n_sub = d->cal_n / d->sub_len, j, from, len;

	for (j = 0; j < n_sub; j++) {
		from = j * d->sub_len;
		len = j + 1 < n_sub ? d->sub_len : d->cal_n - from;
		d->sub_med[j] = (float)detect_median(d->cal_env + from, (int64_t)len);
	}
	return n_sub;
}

/*
 * Whether the window was rest. The median and MAD cope with anything
 * shorter than half of it, so the thresholds stay usable, but a burst or
 * movement in the window raises them, and the operator must know (and
 * recalibrate: rpmsctl calibrate). Reported, never corrected: a window
 * that is half burst has no rest level to recover.
 *
 * A stretch was not rest if its median is above the onset threshold (the
 * detector would have called it a burst), or more than DETECT_SUB_RATIO
 * times the quietest stretch's: a burst that fills most of the window
 * raises the threshold above itself. Over the evaluation's 362 rest
 * windows (2 s, with and without hum) the stretches stay within 1.6 times
 * of each other; its simulated bursts, ramped and noisy, that fill 50 to
 * 80 % of a window stand 2.5 to 15 times above its rest.
 *
 * The stretches at the very start of the filters' life, while each is
 * quieter than the one before, may be hum still leaking through the
 * notches, not the patient: they are not judged themselves (a burst there
 * shows as a rise), though the quietest stretch may be one of them.
 */
static void detect_judge_calibration(struct detect *d, uint64_t n_sub)
{
	uint64_t j, len, first = 0;
	double quiet = HUGE_VAL;

	d->cal_issues = d->cal_artefacts ? DETECT_CAL_ARTEFACTS : 0;
	d->cal_unsteady_s = 0.0;
	while (first < n_sub && d->cal_first + first * d->sub_len * d->cal_stride < d->settle_until &&
	       (first == 0 || d->sub_med[first] <= d->sub_med[first - 1])) {
		first++;
	}
	for (j = 0; j < n_sub; j++) {
		if (d->sub_med[j] < quiet) {
			quiet = d->sub_med[j];
		}
	}
	for (j = first; j < n_sub; j++) {
		len = j + 1 < n_sub ? d->sub_len : d->cal_n - j * d->sub_len;
		if (d->sub_med[j] > d->thr_on || d->sub_med[j] > DETECT_SUB_RATIO * quiet) {
			d->cal_issues |= DETECT_CAL_UNSTEADY;
			d->cal_unsteady_s += (double)len * d->cal_dt;
		}
	}
	if (d->baseline > DETECT_REST_PLAUSIBLE_UV) {
		d->cal_issues |= DETECT_CAL_HIGH_REST;
	}
}

/*
 * Thresholds are in spreads of the envelope at rest, and compared with
 * the sustained envelope: the quietest window must clear what a single
 * window at rest rarely reaches.
 */
static void detect_finish_calibration(struct detect *d)
{
	double sum = 0.0;
	uint64_t i, n_sub;

	for (i = 0; i < d->cal_n; i++) {
		sum += d->cal_env[i];
	}
	d->rest_mean = d->cal_n ? sum / (double)d->cal_n : 0.0;
	n_sub = detect_sub_medians(d);
	detect_robust(d->cal_env, d->cal_n, &d->baseline, &d->spread);
	d->thr_on = d->baseline + d->k_on * d->spread;
	d->thr_off = d->baseline + d->k_off * d->spread;
	detect_judge_calibration(d, n_sub);
	/* The edge level in units of the rest mean, which then follows the rest. */
	d->edge_ratio = d->baseline > 0.0 ?
			(d->baseline + d->k_edge * d->spread) / d->baseline : 1.0;
	if (!(d->rest_mean > 0.0)) {
		d->rest_mean = d->baseline > 0.0 ? d->baseline : DETECT_SPREAD_FLOOR_ABS;
	}
	d->calibrated = 1;
	d->state = DETECT_S_IDLE;
}

static void detect_fill(const struct detect *d, struct detect_result *res,
			uint64_t edge, uint64_t sample, float envelope,
			double threshold)
{
	res->edge_sample = edge;
	res->decision_sample = sample;
	res->envelope = envelope;
	res->threshold = threshold;
	res->baseline = d->baseline;
	res->spread = d->spread;
	res->off_threshold = d->thr_off;
	res->cal_issues = d->cal_issues;
	res->cal_artefacts = d->cal_artefacts;
	res->cal_unsteady_s = d->cal_unsteady_s;
}

/*
 * The rest level is what the envelope is once the filters have settled:
 * while the mains canceller is still catching the hum, the envelope is
 * hum, not rest, and a window that starts with the filters (as at the
 * start of a session) would set thresholds by how quickly the hum was
 * caught. So the window's values before the start-up has ended are left
 * out, unless that would leave out half the window or more (a short
 * window is then taken whole, as before).
 */
static int detect_settling(const struct detect *d, uint64_t sample)
{
	return sample < d->settle_until && d->settle_until - d->cal_from <= d->cal_len / 2;
}

static enum detect_edge detect_calibrate_step(struct detect *d, uint64_t sample,
					      float envelope, float env,
					      struct detect_result *res)
{
	uint64_t end = d->cal_from + d->cal_len;

	if (sample < end && d->cal_n < d->cal_want &&
	    (sample - d->cal_from) % d->cal_stride == 0) {
		if (detect_settling(d, sample)) {
			d->cal_skipped++;
		} else {
			if (d->cal_n == 0) {
				d->cal_first = sample;
			}
			d->cal_env[d->cal_n++] = env;
		}
	}
	if (sample + 1 < end) {
		return DETECT_NONE;
	}
	/* Blanks ate more than half of what the start-up left of the
	 * window: it says little about rest, so try again right after it. */
	if (d->cal_n * 2 < d->cal_want - d->cal_skipped) {
		d->cal_from = sample + 1;
		d->cal_n = 0;
		d->cal_skipped = 0;
		d->cal_artefacts = 0;
		return DETECT_NONE;
	}
	detect_finish_calibration(d);
	detect_fill(d, res, sample, sample, envelope, d->thr_on);
	return DETECT_CALIBRATED;
}

/*
 * A ramp's foot: the envelope of rest noise plus a linearly rising burst
 * is sqrt(rest^2 + (a t)^2), a hyperbola; taking the rest level out,
 * sqrt(env^2 - rest^2), leaves the burst's own amplitude, a straight line
 * that meets zero where the ramp starts. A line fitted to that over the
 * rise (change point to decision) and taken down to zero dates a slow
 * onset earlier than any level crossing can. (Fitted to the envelope
 * itself, the hyperbola's flat start tilted the line and the foot came
 * late: median |onset error| 13-18 ms on the injected sets, 8-14 ms now.)
 * It may only move the change point earlier, by at most DETECT_FOOT_S,
 * and only when the fit rises: a step's plateau fits flat and leaves the
 * change point as is.
 */
/* Slot of the envelope history @k samples back (1: the newest). */
static uint64_t detect_eh_back(const struct detect *d, uint64_t k)
{
	return (d->eh_pos + d->eh_len - k) % d->eh_len;
}

static uint64_t detect_ramp_foot(const struct detect *d, uint64_t decision, uint64_t edge,
				 uint64_t kedge)
{
	double n = (double)kedge, st = 0.0, sy = 0.0, stt = 0.0, sty = 0.0, slope, icpt, t0;
	uint64_t k, idx, foot, back;

	for (k = 1; k <= kedge; k++) {
		double t, y;

		idx = detect_eh_back(d, k);
		y = (double)d->eh[idx] * d->eh[idx] - d->rest_mean * d->rest_mean;
		y = y > 0.0 ? sqrt(y) : 0.0;
		t = -(double)(decision - d->eh_idx[idx]);
		st += t;
		sy += y;
		stt += t * t;
		sty += t * y;
	}
	if (n < 5.0 || !(n * stt - st * st > 0.0)) {
		return edge;
	}
	slope = (n * sty - st * sy) / (n * stt - st * st);
	icpt = (sy - slope * st) / n;
	if (!(slope > 0.0)) {
		return edge;
	}
	t0 = -icpt / slope;	/* relative to the decision, negative */
	if (!(t0 < -(double)(decision - edge)) || t0 < -(double)(decision - edge) - d->foot_n) {
		return edge;
	}
	back = (uint64_t)llround(-t0);
	foot = back > decision ? 0 : decision - back;
	/* Never into a gap, before the recording or before the previous burst ended. */
	return foot < d->edge_floor ? d->edge_floor : foot;
}

/*
 * Where the burst just decided began: the start of the most recent stretch
 * whose envelope, summed backwards from the decision, stands highest above
 * the edge level (rest level x edge_ratio), i.e. the least-squares change
 * point for a rise in level, using only the envelope up to now. Unlike the
 * last sample below a threshold it finds the foot of a slow ramp, and
 * unlike a running CUSUM it cannot be dragged back by rest wobbles long
 * before. O(history) once per burst, no allocation.
 */
static uint64_t detect_edge(const struct detect *d, uint64_t decision)
{
	double ref = d->rest_mean * d->edge_ratio, sum = 0.0, best = 0.0;
	uint64_t k, idx, edge = decision, kedge = 0;

	if (!(ref > 0.0)) {
		return decision;
	}
	for (k = 1; k <= d->eh_filled; k++) {
		idx = detect_eh_back(d, k);
		if (d->eh_idx[idx] < d->edge_floor) {
			break;
		}
		sum += (double)d->eh[idx] / ref - 1.0;
		if (sum > best) {
			best = sum;
			edge = d->eh_idx[idx];
			kedge = k;
		}
	}
	return detect_ramp_foot(d, decision, edge, kedge);
}

static enum detect_edge detect_candidate_step(struct detect *d, uint64_t sample,
					      float envelope,
					      struct detect_result *res)
{
	const double e = envelope;

	if (e > d->thr_on) {
		d->dip = 0;
		if (++d->above < d->on_n) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_ACTIVE;
		d->below = 0;
		detect_fill(d, res, detect_edge(d, sample), sample, envelope, d->thr_on);
		return DETECT_ONSET;
	}
	/* A dip of dip_ms or longer means the rise did not hold. */
	if (++d->dip >= d->dip_n) {
		d->state = DETECT_S_IDLE;
	}
	return DETECT_NONE;
}

/*
 * The sustained envelope: of the n_win envelope values one window apart
 * ending now, the (skip + 1)-th quietest. Ignoring the quietest @skip
 * windows rides over the troughs of a short window's ripple inside a
 * burst; a transient still has to raise n_win - skip windows, i.e. last
 * (n_win - skip - 1) windows or more, to count.
 */
static float detect_sustained(struct detect *d, float env)
{
	float low[DETECT_MAX_SKIP + 1];
	uint64_t j, idx = d->hist_pos, n = 1, k, m;

	d->hist[d->hist_pos] = env;
	if (d->hist_filled < d->hist_len) {
		d->hist_filled++;
	}
	/* The skip + 1 smallest so far, ascending (a short insertion sort). */
	low[0] = env;
	for (j = 1; j < d->n_win && j * d->win < d->hist_filled; j++) {
		float v;

		idx = idx >= d->win ? idx - d->win : idx + d->hist_len - d->win;
		v = d->hist[idx];
		m = n <= d->skip ? n : d->skip + 1;
		if (m == d->skip + 1 && v >= low[d->skip]) {
			continue;
		}
		for (k = m < d->skip + 1 ? m : d->skip; k > 0 && low[k - 1] > v; k--) {
			low[k] = low[k - 1];
		}
		low[k] = v;
		n++;
	}
	if (++d->hist_pos == d->hist_len) {
		d->hist_pos = 0;
	}
	/* While the history is short, the largest of what there is. */
	return low[(n - 1 < d->skip ? n - 1 : d->skip)];
}

enum detect_edge detect_step(struct detect *d, uint64_t sample, float env,
			     struct detect_result *res)
{
	float envelope;
	double e;

	if (!d->seen) {
		d->seen = 1;
		d->settle_until = sample + d->settle_n;
	}
	if (sample >= d->blank_from && sample < d->blank_end) {
		return DETECT_NONE;
	}
	envelope = detect_sustained(d, env);
	d->last_sustained = envelope;
	e = envelope;
	if (d->calibrated && d->state != DETECT_S_ACTIVE) {
		/*
		 * The rest level drifts (tone, electrode contact): follow it
		 * while the sustained envelope is quiet, slowly enough that a
		 * ramp does not drag it along.
		 */
		if (d->state == DETECT_S_IDLE && e <= d->thr_off) {
			d->rest_mean += d->rest_alpha * ((double)env - d->rest_mean);
		}
		d->eh[d->eh_pos] = env;
		d->eh_idx[d->eh_pos] = sample;
		if (++d->eh_pos == d->eh_len) {
			d->eh_pos = 0;
		}
		if (d->eh_filled < d->eh_len) {
			d->eh_filled++;
		}
	}

	switch (d->state) {
	case DETECT_S_WAIT:
		if (sample < d->cal_from) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_CALIBRATING;
		return detect_calibrate_step(d, sample, envelope, env, res);

	case DETECT_S_CALIBRATING:
		return detect_calibrate_step(d, sample, envelope, env, res);

	case DETECT_S_IDLE:
		if (e > d->thr_on) {
			d->above = 0;
			d->dip = 0;
			d->state = DETECT_S_CANDIDATE;
			return detect_candidate_step(d, sample, envelope, res);
		}
		return DETECT_NONE;

	case DETECT_S_CANDIDATE:
		return detect_candidate_step(d, sample, envelope, res);

	case DETECT_S_ACTIVE:
		if (e >= d->thr_off) {
			d->below = 0;
			return DETECT_NONE;
		}
		if (d->below++ == 0) {
			d->below_from = sample;
		}
		if (d->below < d->off_n) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_IDLE;
		/* The next burst starts after this one has ended. */
		d->edge_floor = sample + 1;
		detect_fill(d, res, d->below_from, sample, envelope, d->thr_off);
		return DETECT_OFFSET;
	}
	return DETECT_NONE;
}

void detect_cal_describe(unsigned issues, uint64_t artefacts, double unsteady_s,
			 double baseline, char *buf, size_t len)
{
	size_t used = 0;
	int n;

	if (len == 0) {
		return;
	}
	buf[0] = '\0';
	if (issues & DETECT_CAL_ARTEFACTS) {
		n = snprintf(buf, len, "%" PRIu64 " artefact sample%s replaced", artefacts,
			     artefacts == 1 ? "" : "s");
		used = n > 0 ? (size_t)n : 0;
	}
	if ((issues & DETECT_CAL_UNSTEADY) && used < len) {
		n = snprintf(buf + used, len - used, "%s%.1f s of the window not at rest",
			     used ? "; " : "", unsteady_s);
		used += n > 0 ? (size_t)n : 0;
	}
	if ((issues & DETECT_CAL_HIGH_REST) && used < len) {
		snprintf(buf + used, len - used, "%srest level %.4g uV, above %g uV",
			 used ? "; " : "", baseline, DETECT_REST_PLAUSIBLE_UV);
	}
}

void detect_note_artefact(struct detect *d, uint64_t sample)
{
	if ((d->state == DETECT_S_WAIT || d->state == DETECT_S_CALIBRATING) &&
	    sample >= d->cal_from && sample - d->cal_from < d->cal_len) {
		d->cal_artefacts++;
	}
}

void detect_blank(struct detect *d, uint64_t from, uint64_t n)
{
	uint64_t end = from + n;

	if (n == 0) {
		return;
	}
	if (end < from) {
		end = UINT64_MAX;
	}
	/* Pulses of a train come in order and their blanks overlap or touch:
	 * merge them, otherwise the newer window replaces the older one. */
	if (from >= d->blank_from && from <= d->blank_end) {
		if (end > d->blank_end) {
			d->blank_end = end;
		}
		return;
	}
	d->blank_from = from;
	d->blank_end = end;
}

void detect_gap(struct detect *d, uint64_t from, uint64_t lost, uint64_t settle)
{
	if (d->state == DETECT_S_CANDIDATE) {
		d->state = DETECT_S_IDLE;
	}
	/* No onset is dated into the gap or before it. */
	d->edge_floor = from + lost;
	/* The filters start again after it (bank_gap). */
	d->settle_until = from + lost + d->settle_n;
	detect_blank(d, from, lost + settle);
}

/*
 * A burst in progress ends silently (no DETECT_OFFSET is reported): the
 * caller asked for a fresh start and knows it. Until the new window has
 * been collected the detector is uncalibrated: no onsets, and
 * detect_thresholds() returns -EAGAIN.
 */
void detect_recalibrate(struct detect *d, uint64_t from)
{
	d->state = DETECT_S_WAIT;
	d->cal_from = from;
	d->cal_n = 0;
	d->cal_skipped = 0;
	d->cal_artefacts = 0;
	d->calibrated = 0;
	d->edge_floor = from;
	d->eh_filled = 0;
	d->above = 0;
	d->dip = 0;
	d->below = 0;
}

int detect_active(const struct detect *d)
{
	return d->state == DETECT_S_ACTIVE;
}

int detect_thresholds(const struct detect *d, struct detect_result *out)
{
	if (!d->calibrated) {
		return -EAGAIN;
	}
	memset(out, 0, sizeof(*out));
	out->baseline = d->baseline;
	out->spread = d->spread;
	out->threshold = d->thr_on;
	out->off_threshold = d->thr_off;
	return 0;
}

float detect_sustained_last(const struct detect *d)
{
	return d->last_sustained;
}
