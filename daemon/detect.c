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
 * The state machine only asks whether the sustained envelope is above or
 * below a threshold, and that needs no minimum: it is above as long as
 * no more than skip of its windows are not. So each envelope value is
 * compared with the thresholds once, when it arrives, and the answers are
 * counted per window phase (below); the value itself is worked out only
 * when someone wants it (a decision, a trace).
 *
 * States: WAIT (before the calibration window), CALIBRATING, IDLE,
 * CANDIDATE (above the onset threshold, not confirmed yet) and ACTIVE.
 * Every sample does a constant amount of work, independent of sustain_ms
 * and of the sampling rate. The exceptions, each bounded: the last
 * calibration sample, which runs selections over the calibration buffer
 * (each stretch's median, then the whole window's median and MAD: linear
 * on average, no allocation) and compares the sustained history with the
 * new thresholds; and an onset, whose dating walks back over at most
 * DETECT_EDGE_S of the envelope (twice: the change point, then the foot).
 *
 * Blanked samples are dropped before anything looks at them, so a blank
 * freezes every timer and the calibration collection.
 *
 * detect.rule = cusum decides the onset differently (detect_cusum()): a
 * one-sided CUSUM (Page's) on the envelope's log ratio to the rest
 * median piles up evidence from the first sample a rise stands out, so a
 * burst is decided as soon as enough of it has been seen, not once a
 * fixed span of it has stayed above a fixed level; each millisecond adds
 * at most a capped amount, so a transient still cannot decide alone. The
 * sustained envelope is kept either way: it ends the burst, and says when
 * the rest level may be followed.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
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

#define DETECT_MAX_WINDOWS 65535	/* windows in the sustained envelope: a lane field's range */

/*
 * What an envelope value is against the thresholds in force: each a 16-bit
 * field of a uint64_t, 1 or 0 for a value, its count over a lane's values
 * in the lane's sum.
 */
enum detect_flag {
	DETECT_F_NOT_ON = 0,	/* not above the onset threshold */
	DETECT_F_BELOW_OFF,	/* below the offset threshold */
	DETECT_F_AT_MOST_OFF,	/* at or below the offset threshold */
	DETECT_F_NAN,		/* not a number */
};

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

	/*
	 * Envelope history for the sustained envelope, a ring of hist_cap =
	 * n_win * win values (the newest at hist_pos - 1). Values one window
	 * apart share a "lane" (their count of values fed, mod win); the slots
	 * of a lane are every win-th, so the n_win slots of the newest value's
	 * lane hold exactly the windows of the sustained envelope. Each value
	 * keeps its enum detect_flag fields against the thresholds, and
	 * lane_sum counts them over its lane's slots.
	 */
	float *hist;
	uint64_t *hist_flags;
	uint64_t *lane_sum;
	uint64_t hist_len;	/* the sustained envelope's span: (n_win - 1) * win + 1 */
	uint64_t hist_cap;
	uint64_t hist_pos;	/* next slot to write */
	uint64_t hist_lane;	/* its lane: hist_pos mod win */
	uint64_t hist_filled;	/* values fed, up to hist_len */
	int hist_full;		/* every slot written */
	int flags_ok;		/* hist_flags are against the thresholds in force */

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
	double edge_ratio;	/* edge level / rest mean */
	double rest_mean;	/* mean envelope at rest, followed while quiet */
	double rest_alpha;	/* its update weight per sample */
	/* envelope history for the onset estimate (not blanked samples) */
	float *eh;
	uint64_t *eh_idx;	/* their sample indices */
	uint64_t eh_len, eh_pos, eh_filled;
	uint64_t edge_floor;	/* no onset is dated before this sample */
	uint64_t foot_n;	/* how much earlier a ramp's foot may be */

	/* detect.rule = cusum (detect_cusum()); cus_on is 0 for the sustained rule */
	int cus_on;
	double cus_k;		/* drift, spreads */
	double cus_cap;		/* most evidence per sample (cusum_cap per ms) */
	double cus_h;		/* evidence that decides, spread x ms */
	double cus_dt;		/* ms per sample */
	double cus_scale;	/* median / spread, set by the calibration */
	double cus_ln_base;	/* ln(median) */
	double cus_level;	/* the envelope at which evidence starts to pile up */
	double cus_s;		/* the evidence now */

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
	if (!(cfg->detect.k_off >= 0.0) ||
	    !config_rule_hysteresis(cfg->detect.k_off, cfg->detect.k_on)) {
		return detect_fail(err, errlen, "detect.k_off", cfg->detect.k_off,
				   "must be >= 0 and below detect.k_on");
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
	if (cfg->detect.rule == CONFIG_RULE_CUSUM &&
	    (!(cfg->detect.cusum_k >= 0.0) || !isfinite(cfg->detect.cusum_k))) {
		return detect_fail(err, errlen, "detect.cusum_k", cfg->detect.cusum_k,
				   "must be >= 0");
	}
	if (cfg->detect.rule == CONFIG_RULE_CUSUM &&
	    (!(cfg->detect.cusum_cap > 0.0) || !isfinite(cfg->detect.cusum_cap))) {
		return detect_fail(err, errlen, "detect.cusum_cap", cfg->detect.cusum_cap,
				   "must be > 0");
	}
	if (cfg->detect.rule == CONFIG_RULE_CUSUM &&
	    (!(cfg->detect.cusum_h > 0.0) || !isfinite(cfg->detect.cusum_h))) {
		return detect_fail(err, errlen, "detect.cusum_h", cfg->detect.cusum_h,
				   "must be > 0");
	}
	/* Each window's count must fit a field of a lane's sum. */
	if (cfg->dsp.envelope_ms > 0.0 &&
	    !(cfg->detect.sustain_ms / cfg->dsp.envelope_ms < DETECT_MAX_WINDOWS)) {
		return detect_fail(err, errlen, "detect.sustain_ms", cfg->detect.sustain_ms,
				   "spans more than 65535 windows of dsp.envelope_ms");
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
	d->hist_cap = d->n_win * d->win;
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
	d->hist = calloc(d->hist_cap, sizeof(*d->hist));
	d->hist_flags = calloc(d->hist_cap, sizeof(*d->hist_flags));
	d->lane_sum = calloc(d->win, sizeof(*d->lane_sum));
	d->eh = calloc(d->eh_len, sizeof(*d->eh));
	d->eh_idx = calloc(d->eh_len, sizeof(*d->eh_idx));
	d->sub_med = calloc(d->cal_want / d->sub_len + 1, sizeof(*d->sub_med));
	if (!d->cal_env || !d->hist || !d->hist_flags || !d->lane_sum || !d->eh || !d->eh_idx ||
	    !d->sub_med) {
		goto err_free;
	}
	memset(d->sub_med, 0, (d->cal_want / d->sub_len + 1) * sizeof(*d->sub_med));
	memset(d->eh, 0, d->eh_len * sizeof(*d->eh));
	memset(d->eh_idx, 0, d->eh_len * sizeof(*d->eh_idx));
	/* Touch every page now so the RT thread never faults one in. */
	memset(d->cal_env, 0, d->cal_want * sizeof(*d->cal_env));
	memset(d->hist, 0, d->hist_cap * sizeof(*d->hist));
	memset(d->hist_flags, 0, d->hist_cap * sizeof(*d->hist_flags));
	memset(d->lane_sum, 0, d->win * sizeof(*d->lane_sum));

	d->k_on = cfg->detect.k_on;
	d->k_off = cfg->detect.k_off;
	d->k_edge = cfg->detect.k_edge;
	d->rest_alpha = 1.0 / (DETECT_REST_TAU_S * fs);
	d->cus_on = cfg->detect.rule == CONFIG_RULE_CUSUM;
	d->cus_k = cfg->detect.cusum_k;
	d->cus_dt = 1000.0 / fs;
	d->cus_cap = cfg->detect.cusum_cap * d->cus_dt;
	d->cus_h = cfg->detect.cusum_h;
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
	free(d->lane_sum);
	free(d->hist_flags);
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
	free(d->lane_sum);
	free(d->hist_flags);
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
 * The CUSUM's units, from the calibration: evidence is counted in spreads
 * of the rest envelope, on a log scale, ln(env / median) x median /
 * spread: near the rest level that is (env - median) / spread, the unit
 * of k_on, and far above it it grows only with the logarithm, so a pop
 * 100 times the rest counts little more than a burst 10 times it (and the
 * cap bounds both). An all-zero rest window has no log: its median is
 * floored like the spread.
 */
static void detect_cusum_calibrate(struct detect *d)
{
	double base = d->baseline > DETECT_SPREAD_FLOOR_ABS ? d->baseline : DETECT_SPREAD_FLOOR_ABS;

	d->cus_scale = base / d->spread;
	d->cus_ln_base = log(base);
	d->cus_level = base * exp(d->cus_k / d->cus_scale);
}

/*
 * Page's one-sided CUSUM: S = max(0, S + u), with u the envelope's
 * excess over the drift cusum_k (in the units above) per millisecond,
 * clipped to +-cusum_cap. S is the largest sum of u over any stretch
 * ending now, so it is above cusum_h exactly when some recent stretch has
 * piled up that much evidence: a strong rise needs a short one, a weak
 * rise a long one, and rest (below the drift on average) drains it. The
 * cap bounds what any short stretch can add, whatever its height: a
 * transient must last cusum_h / cusum_cap ms to decide alone. An envelope
 * at or below zero, or NaN, drains it at the cap. @return whether S is
 * above cusum_h
 */
static inline int detect_cusum(struct detect *d, float env)
{
	double u = -d->cus_cap;

	if (env > 0.0f) {
		u = (d->cus_scale * (log((double)env) - d->cus_ln_base) - d->cus_k) * d->cus_dt;
		if (u > d->cus_cap) {
			u = d->cus_cap;
		} else if (u < -d->cus_cap) {
			u = -d->cus_cap;
		}
	}
	d->cus_s += u;
	if (d->cus_s < 0.0) {
		d->cus_s = 0.0;
	}
	return d->cus_s > d->cus_h;
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
	detect_cusum_calibrate(d);
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
/* Slot of the newest value in the envelope history. */
static inline uint64_t detect_eh_newest(const struct detect *d)
{
	return d->eh_pos ? d->eh_pos - 1 : d->eh_len - 1;
}

/* Slot of the value before the one in slot @idx (no division: this runs
 * over the whole history at an onset). */
static inline uint64_t detect_eh_prev(const struct detect *d, uint64_t idx)
{
	return idx ? idx - 1 : d->eh_len - 1;
}

static uint64_t detect_ramp_foot(const struct detect *d, uint64_t decision, uint64_t edge,
				 uint64_t kedge)
{
	double n = (double)kedge, st = 0.0, sy = 0.0, stt = 0.0, sty = 0.0, slope, icpt, t0;
	uint64_t k, idx = detect_eh_newest(d), foot, back;

	for (k = 1; k <= kedge; k++, idx = detect_eh_prev(d, idx)) {
		double t, y;

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
	uint64_t k, idx = detect_eh_newest(d), edge = decision, kedge = 0;

	if (!(ref > 0.0)) {
		return decision;
	}
	for (k = 1; k <= d->eh_filled; k++, idx = detect_eh_prev(d, idx)) {
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

/*
 * The sustained envelope: of the n_win envelope values one window apart
 * ending now, the (skip + 1)-th quietest. Ignoring the quietest @skip
 * windows rides over the troughs of a short window's ripple inside a
 * burst; a transient still has to raise n_win - skip windows, i.e. last
 * (n_win - skip - 1) windows or more, to count. O(n_win): only for
 * decisions, traces and a lane that holds a NaN.
 */
static float detect_sustained(const struct detect *d)
{
	float low[DETECT_MAX_SKIP + 1];
	uint64_t j, idx, n = 1, k, m;

	if (d->hist_filled == 0) {
		return 0.0f;
	}
	idx = d->hist_pos ? d->hist_pos - 1 : d->hist_cap - 1;
	/* The skip + 1 smallest so far, ascending (a short insertion sort). */
	low[0] = d->hist[idx];
	for (j = 1; j < d->n_win && j * d->win < d->hist_filled; j++) {
		float v;

		idx = idx >= d->win ? idx - d->win : idx + d->hist_cap - d->win;
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
	/* While the history is short, the largest of what there is. */
	return low[(n - 1 < d->skip ? n - 1 : d->skip)];
}

/* @env's enum detect_flag fields against the thresholds in force. */
static inline uint64_t detect_flags(const struct detect *d, float env)
{
	const double e = env;

	return (uint64_t)!(e > d->thr_on) << 16 * DETECT_F_NOT_ON |
	       (uint64_t)!(e >= d->thr_off) << 16 * DETECT_F_BELOW_OFF |
	       (uint64_t)(e <= d->thr_off) << 16 * DETECT_F_AT_MOST_OFF |
	       (uint64_t)(isnan(env) != 0) << 16 * DETECT_F_NAN;
}

/* The count of flag @flag in a lane's sum. */
static inline unsigned detect_count(uint64_t sum, enum detect_flag flag)
{
	return (unsigned)(sum >> 16 * flag) & 0xffffu;
}

/* Flag the whole history against new thresholds. O(hist_cap), once per calibration. */
static void detect_reflag(struct detect *d)
{
	uint64_t i;

	memset(d->lane_sum, 0, d->win * sizeof(*d->lane_sum));
	for (i = 0; i < d->hist_cap; i++) {
		d->hist_flags[i] = detect_flags(d, d->hist[i]);
		d->lane_sum[i % d->win] += d->hist_flags[i];
	}
	d->flags_ok = 1;
}

/*
 * The lane's sum of the value just fed, as the counts that tell where its
 * sustained envelope stands against the thresholds (detect_above_on() and
 * the like). The counts cannot tell while the history is not full yet
 * (the sustained envelope is then taken over fewer windows) or while the
 * lane holds a NaN (it compares false either way, so where it falls in the
 * insertion sort depends on the order): then the sustained envelope
 * itself, flagged, with skip + 1 for each flag set, says what
 * detect_sustained() compared with the thresholds would.
 */
static inline uint64_t detect_level(const struct detect *d, uint64_t sum)
{
	if (d->hist_full && detect_count(sum, DETECT_F_NAN) == 0) {
		return sum;
	}
	return detect_flags(d, detect_sustained(d)) * (d->skip + 1);
}

/*
 * The (skip + 1)-th smallest of a lane's values (none of them NaN) is above
 * a threshold when no more than skip of them are not, at or above it when
 * no more than skip are below, and at most it when more than skip of them
 * are. The fields count the very comparisons the value would be put to
 * (as a double, against the same thresholds), so a value equal to a
 * threshold counts as it would be judged.
 */
static inline int detect_above_on(const struct detect *d, uint64_t level)
{
	return detect_count(level, DETECT_F_NOT_ON) <= d->skip;
}

static inline int detect_at_least_off(const struct detect *d, uint64_t level)
{
	return detect_count(level, DETECT_F_BELOW_OFF) <= d->skip;
}

static inline int detect_at_most_off(const struct detect *d, uint64_t level)
{
	return detect_count(level, DETECT_F_AT_MOST_OFF) > d->skip;
}

/*
 * Whether the onset rule holds at this sample: the sustained envelope
 * above the onset threshold, or the CUSUM's evidence above cusum_h (which
 * this updates: call it once per sample while not ACTIVE).
 */
static inline int detect_onset_holds(struct detect *d, float env, uint64_t level)
{
	return d->cus_on ? detect_cusum(d, env) : detect_above_on(d, level);
}

static enum detect_edge detect_candidate_step(struct detect *d, uint64_t sample, float env,
					      int above_on, struct detect_result *res)
{
	if (above_on) {
		d->dip = 0;
		if (++d->above < d->on_n) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_ACTIVE;
		d->below = 0;
		/* A burst's evidence is spent on it; the next one starts from nothing. */
		d->cus_s = 0.0;
		if (d->cus_on) {
			detect_fill(d, res, detect_edge(d, sample), sample, env, d->cus_level);
		} else {
			detect_fill(d, res, detect_edge(d, sample), sample, detect_sustained(d),
				    d->thr_on);
		}
		return DETECT_ONSET;
	}
	/* A dip of dip_ms or longer means the rise did not hold. */
	if (++d->dip >= d->dip_n) {
		d->state = DETECT_S_IDLE;
	}
	return DETECT_NONE;
}

/* Add @env to the sustained history; @return its lane's sum. */
static inline uint64_t detect_push(struct detect *d, float env)
{
	const uint64_t pos = d->hist_pos, lane = d->hist_lane;
	const uint64_t f = detect_flags(d, env);
	/* That slot held the value n_win windows back, now out of the lane. */
	const uint64_t sum = d->lane_sum[lane] + f - d->hist_flags[pos];

	d->lane_sum[lane] = sum;
	d->hist[pos] = env;
	d->hist_flags[pos] = f;
	d->hist_lane = lane + 1 == d->win ? 0 : lane + 1;
	if (pos + 1 == d->hist_cap) {
		d->hist_pos = 0;
		d->hist_full = 1;
	} else {
		d->hist_pos = pos + 1;
	}
	if (d->hist_filled < d->hist_len) {
		d->hist_filled++;
	}
	return sum;
}

enum detect_edge detect_step(struct detect *d, uint64_t sample, float env,
			     struct detect_result *res)
{
	uint64_t level, pos;

	if (!d->seen) {
		d->seen = 1;
		d->settle_until = sample + d->settle_n;
	}
	if (sample >= d->blank_from && sample < d->blank_end) {
		return DETECT_NONE;
	}
	level = detect_push(d, env);
	if (!d->calibrated) {
		if (d->state == DETECT_S_WAIT) {
			if (sample < d->cal_from) {
				return DETECT_NONE;
			}
			d->state = DETECT_S_CALIBRATING;
		}
		/* The sustained envelope is reported with the calibration only. */
		return detect_calibrate_step(d, sample,
					     sample + 1 >= d->cal_from + d->cal_len ?
					     detect_sustained(d) : 0.0f, env, res);
	}
	if (!d->flags_ok) {
		detect_reflag(d);
		level = d->lane_sum[d->hist_lane ? d->hist_lane - 1 : d->win - 1];
	}
	level = detect_level(d, level);
	if (d->state != DETECT_S_ACTIVE) {
		/*
		 * The rest level drifts (tone, electrode contact): follow it
		 * while the sustained envelope is quiet, slowly enough that a
		 * ramp does not drag it along.
		 */
		if (d->state == DETECT_S_IDLE && detect_at_most_off(d, level)) {
			d->rest_mean += d->rest_alpha * ((double)env - d->rest_mean);
		}
		pos = d->eh_pos;
		d->eh[pos] = env;
		d->eh_idx[pos] = sample;
		d->eh_pos = pos + 1 == d->eh_len ? 0 : pos + 1;
		if (d->eh_filled < d->eh_len) {
			d->eh_filled++;
		}
	}

	switch (d->state) {
	case DETECT_S_WAIT:
	case DETECT_S_CALIBRATING:
		/* not calibrated: handled above */
		return DETECT_NONE;

	case DETECT_S_IDLE:
		if (detect_onset_holds(d, env, level)) {
			d->above = 0;
			d->dip = 0;
			d->state = DETECT_S_CANDIDATE;
			return detect_candidate_step(d, sample, env, 1, res);
		}
		return DETECT_NONE;

	case DETECT_S_CANDIDATE:
		return detect_candidate_step(d, sample, env, detect_onset_holds(d, env, level), res);

	case DETECT_S_ACTIVE:
		if (detect_at_least_off(d, level)) {
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
		detect_fill(d, res, d->below_from, sample, detect_sustained(d), d->thr_off);
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
	/* Nor is evidence carried across it. */
	d->cus_s = 0.0;
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
	d->flags_ok = 0;
	d->edge_floor = from;
	d->eh_filled = 0;
	d->above = 0;
	d->dip = 0;
	d->below = 0;
	d->cus_s = 0.0;
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
	return detect_sustained(d);
}
