/* SPDX-License-Identifier: MIT */
/*
 * Burst detector: robust calibration, then a hysteresis state machine.
 *
 * States: WAIT (before the calibration window), CALIBRATING, IDLE,
 * CANDIDATE (above the onset threshold, not confirmed yet) and ACTIVE.
 * Every sample does a constant amount of work; the only exception is the
 * last calibration sample, which runs two selections over the calibration
 * buffer (linear on average, no allocation).
 *
 * Blanked samples are dropped before anything looks at them, so a blank
 * freezes every timer and the calibration collection.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"

/* 1.4826 * MAD estimates the standard deviation for normal data. */
#define DETECT_MAD_SCALE 1.4826
/* Spread floor relative to the baseline, so a flat rest window doesn't
 * give thresholds equal to the baseline itself. */
#define DETECT_SPREAD_FLOOR_REL 1e-3
#define DETECT_SPREAD_FLOOR_ABS 1e-9
#define DETECT_MAX_CAL_SAMPLES 100000000.0
#define DETECT_CAL_RATE 1000.0	/* envelope values per second kept for calibration */

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
	uint64_t cal_len;
	uint64_t on_n;
	uint64_t dip_n;
	uint64_t off_n;
	double k_on, k_off;

	/* calibration */
	float *cal;
	uint64_t cal_stride;	/* keep every cal_stride-th envelope sample */
	uint64_t cal_want;	/* samples the window holds on that grid */
	uint64_t cal_from;
	uint64_t cal_n;
	int calibrated;
	double baseline, spread, thr_on, thr_off;

	/* blanking: [blank_from, blank_end) */
	uint64_t blank_from, blank_end;

	/* onset */
	int have_low;
	uint64_t last_low;	/* last sample at or below the off threshold */
	uint64_t cand_edge;	/* back-dated onset of the candidate */
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
	d->cal = calloc(d->cal_want, sizeof(*d->cal));
	if (!d->cal) {
		goto err_free;
	}
	/* Touch every page now so the RT thread never faults one in. */
	memset(d->cal, 0, d->cal_want * sizeof(*d->cal));

	d->k_on = cfg->detect.k_on;
	d->k_off = cfg->detect.k_off;
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
	free(d->cal);
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

static void detect_finish_calibration(struct detect *d)
{
	double med, mad, min_spread;
	uint64_t i;

	med = detect_median(d->cal, (int64_t)d->cal_n);
	for (i = 0; i < d->cal_n; i++) {
		d->cal[i] = (float)fabs(d->cal[i] - med);
	}
	mad = detect_median(d->cal, (int64_t)d->cal_n);

	d->baseline = med;
	d->spread = DETECT_MAD_SCALE * mad;
	min_spread = DETECT_SPREAD_FLOOR_REL * fabs(med);
	if (min_spread < DETECT_SPREAD_FLOOR_ABS) {
		min_spread = DETECT_SPREAD_FLOOR_ABS;
	}
	if (!(d->spread >= min_spread)) {
		d->spread = min_spread;
	}
	d->thr_on = d->baseline + d->k_on * d->spread;
	d->thr_off = d->baseline + d->k_off * d->spread;
	d->calibrated = 1;
	d->have_low = 0;
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
}

static enum detect_edge detect_calibrate_step(struct detect *d, uint64_t sample,
					      float envelope,
					      struct detect_result *res)
{
	uint64_t end = d->cal_from + d->cal_len;

	if (sample < end && d->cal_n < d->cal_want &&
	    (sample - d->cal_from) % d->cal_stride == 0) {
		d->cal[d->cal_n++] = envelope;
	}
	if (sample + 1 < end) {
		return DETECT_NONE;
	}
	/* Blanks ate more than half the window: it says little about rest,
	 * so try again right after it. */
	if (d->cal_n * 2 < d->cal_want) {
		d->cal_from = sample + 1;
		d->cal_n = 0;
		return DETECT_NONE;
	}
	detect_finish_calibration(d);
	detect_fill(d, res, sample, sample, envelope, d->thr_on);
	return DETECT_CALIBRATED;
}

static enum detect_edge detect_candidate_step(struct detect *d, uint64_t sample,
					      float envelope,
					      struct detect_result *res)
{
	const double e = envelope;

	if (e <= d->thr_off) {
		d->last_low = sample;
		d->have_low = 1;
	}
	if (e > d->thr_on) {
		d->dip = 0;
		if (++d->above < d->on_n) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_ACTIVE;
		d->below = 0;
		detect_fill(d, res, d->cand_edge, sample, envelope, d->thr_on);
		return DETECT_ONSET;
	}
	/* A dip of dip_ms or longer means the rise did not hold. */
	if (++d->dip >= d->dip_n) {
		d->state = DETECT_S_IDLE;
	}
	return DETECT_NONE;
}

enum detect_edge detect_step(struct detect *d, uint64_t sample, float envelope,
			     struct detect_result *res)
{
	const double e = envelope;

	if (sample >= d->blank_from && sample < d->blank_end) {
		return DETECT_NONE;
	}

	switch (d->state) {
	case DETECT_S_WAIT:
		if (sample < d->cal_from) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_CALIBRATING;
		return detect_calibrate_step(d, sample, envelope, res);

	case DETECT_S_CALIBRATING:
		return detect_calibrate_step(d, sample, envelope, res);

	case DETECT_S_IDLE:
		if (e > d->thr_on) {
			/* The rise began after the last quiet sample. */
			d->cand_edge = d->have_low ? d->last_low : sample;
			d->above = 0;
			d->dip = 0;
			d->state = DETECT_S_CANDIDATE;
			return detect_candidate_step(d, sample, envelope, res);
		}
		if (e <= d->thr_off) {
			d->last_low = sample;
			d->have_low = 1;
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
		d->last_low = sample;
		d->have_low = 1;
		detect_fill(d, res, d->below_from, sample, envelope, d->thr_off);
		return DETECT_OFFSET;
	}
	return DETECT_NONE;
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
	d->have_low = 0;
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
	d->calibrated = 0;
	d->have_low = 0;
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
