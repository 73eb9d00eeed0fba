/* SPDX-License-Identifier: MIT */
/*
 * The burst detector's calibration: the rest window's median and scaled
 * MAD by selection (no sort, no allocation: the window was allocated at
 * create), the judgement of whether the window was rest, and the units of
 * the CUSUM rule. The state machine that uses them is detect.c.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "detect_private.h"

static void detect_cal_swap(float *a, int64_t i, int64_t j)
{
	float t = a[i];

	a[i] = a[j];
	a[j] = t;
}

/* Value of rank k (0-based) of a[0..n), partially reordering a so that
 * a[0..k) <= a[k]. Hoare partition around a median-of-three pivot. */
static float detect_cal_select(float *a, int64_t n, int64_t k)
{
	int64_t lo = 0, hi = n - 1;

	while (hi > lo) {
		int64_t mid = lo + (hi - lo) / 2;
		int64_t i = lo, j = hi;
		float p;

		if (a[mid] < a[lo]) {
			detect_cal_swap(a, mid, lo);
		}
		if (a[hi] < a[lo]) {
			detect_cal_swap(a, hi, lo);
		}
		if (a[hi] < a[mid]) {
			detect_cal_swap(a, hi, mid);
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
				detect_cal_swap(a, i++, j--);
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
static double detect_cal_median(float *a, int64_t n)
{
	double hi = detect_cal_select(a, n, n / 2);
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
static void detect_cal_robust(float *a, uint64_t n, double *median, double *spread)
{
	double med, mad, min_spread;
	uint64_t i;

	med = detect_cal_median(a, (int64_t)n);
	for (i = 0; i < n; i++) {
		a[i] = (float)fabs(a[i] - med);
	}
	mad = detect_cal_median(a, (int64_t)n);
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
static uint64_t detect_cal_sub_medians(struct detect *d)
{
	uint64_t n_sub = d->cal_n / d->sub_len, j, from, len;

	for (j = 0; j < n_sub; j++) {
		from = j * d->sub_len;
		len = j + 1 < n_sub ? d->sub_len : d->cal_n - from;
		d->sub_med[j] = (float)detect_cal_median(d->cal_env + from, (int64_t)len);
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
static void detect_cal_judge(struct detect *d, uint64_t n_sub)
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
static void detect_cal_cusum(struct detect *d)
{
	double base = d->baseline > DETECT_SPREAD_FLOOR_ABS ? d->baseline : DETECT_SPREAD_FLOOR_ABS;

	d->cus_scale = base / d->spread;
	d->cus_ln_base = log(base);
	d->cus_level = base * exp(d->cus_k / d->cus_scale);
}

/*
 * Thresholds are in spreads of the envelope at rest, and compared with
 * the sustained envelope: the quietest window must clear what a single
 * window at rest rarely reaches.
 */
static void detect_cal_finish(struct detect *d)
{
	double sum = 0.0;
	uint64_t i, n_sub;

	for (i = 0; i < d->cal_n; i++) {
		sum += d->cal_env[i];
	}
	d->rest_mean = d->cal_n ? sum / (double)d->cal_n : 0.0;
	n_sub = detect_cal_sub_medians(d);
	detect_cal_robust(d->cal_env, d->cal_n, &d->baseline, &d->spread);
	d->thr_on = d->baseline + d->k_on * d->spread;
	d->thr_off = d->baseline + d->k_off * d->spread;
	detect_cal_judge(d, n_sub);
	/* The edge level in units of the rest mean, which then follows the rest. */
	d->edge_ratio = d->baseline > 0.0 ?
			(d->baseline + d->k_edge * d->spread) / d->baseline : 1.0;
	if (!(d->rest_mean > 0.0)) {
		d->rest_mean = d->baseline > 0.0 ? d->baseline : DETECT_SPREAD_FLOOR_ABS;
	}
	detect_cal_cusum(d);
	d->calibrated = 1;
	d->state = DETECT_S_IDLE;
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
static int detect_cal_settling(const struct detect *d, uint64_t sample)
{
	return sample < d->settle_until && d->settle_until - d->cal_from <= d->cal_len / 2;
}

int detect_cal_step(struct detect *d, uint64_t sample, float env)
{
	uint64_t end = d->cal_from + d->cal_len;

	if (sample < end && d->cal_n < d->cal_want &&
	    (sample - d->cal_from) % d->cal_stride == 0) {
		if (detect_cal_settling(d, sample)) {
			d->cal_skipped++;
		} else {
			if (d->cal_n == 0) {
				d->cal_first = sample;
			}
			d->cal_env[d->cal_n++] = env;
		}
	}
	if (sample + 1 < end) {
		return 0;
	}
	/* Blanks ate more than half of what the start-up left of the
	 * window: it says little about rest, so try again right after it. */
	if (d->cal_n * 2 < d->cal_want - d->cal_skipped) {
		d->cal_from = sample + 1;
		d->cal_n = 0;
		d->cal_skipped = 0;
		d->cal_artefacts = 0;
		return 0;
	}
	detect_cal_finish(d);
	return 1;
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
