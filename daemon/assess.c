// SPDX-License-Identifier: MIT
/*
 * Outcome assessments' arithmetic (assess.h): differences of the detector
 * bank's running totals. Pure; unit-tested in tests/unit/test_assess.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "assess.h"

int assess_rest(const struct bank_tally *from, const struct bank_tally *to, unsigned channels,
		double rate_hz, struct assess_rest *out, char *err, size_t errlen)
{
	uint64_t clean;

	memset(out, 0, sizeof(*out));
	if (channels == 0 || channels > BANK_MAX_CHANNELS || !(rate_hz > 0) ||
	    !isfinite(rate_hz)) {
		snprintf(err, errlen, "assessment: %u channels at %g Hz", channels, rate_hz);
		return -EINVAL;
	}
	if (to->samples <= from->samples || to->blanked < from->blanked) {
		snprintf(err, errlen, "assessment: no EMG between sample %" PRIu64 " and %" PRIu64,
			 from->samples, to->samples);
		return -EINVAL;
	}
	out->samples = to->samples - from->samples;
	out->blanked = to->blanked - from->blanked;
	out->seconds = (double)out->samples / rate_hz;
	out->channels = channels;
	clean = out->samples - out->blanked;
	for (unsigned c = 0; c < channels; c++) {
		struct assess_rest_channel *r = &out->ch[c];
		double sumsq = to->sumsq[c] - from->sumsq[c];

		/* a difference of two large sums can come out a hair below zero */
		r->rms_uv = clean ? sqrt(sumsq > 0 ? sumsq / (double)clean : 0) : NAN;
		r->onsets = to->onsets[c] - from->onsets[c];
		r->bursts_per_min = (double)r->onsets * 60.0 / out->seconds;
		r->active_pct = 100.0 * (double)(to->active[c] - from->active[c]) /
				(double)out->samples;
	}
	return 0;
}

/* Samples in a 200 ms window at @rate_hz; 0 for a bad rate. */
static size_t assess_window(double rate_hz)
{
	return rate_hz > 0 && isfinite(rate_hz) ? (size_t)llround(ASSESS_CCI_WINDOW_S * rate_hz) : 0;
}

static double assess_rms(const float *x, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++) {
		s += (double)x[i] * x[i];
	}
	return sqrt(s / (double)n);
}

int assess_mvc(const float *x, size_t n, double rate_hz, double *rms_uv, char *err,
	       size_t errlen)
{
	size_t w = assess_window(rate_hz);

	*rms_uv = 0;
	if (!w || n < w) {
		snprintf(err, errlen, "MVC block: %zu samples, shorter than one %g s window at %g Hz",
			 n, ASSESS_CCI_WINDOW_S, rate_hz);
		return -EINVAL;
	}
	for (size_t i = 0; i + w <= n; i += w) {
		double r = assess_rms(x + i, w);

		*rms_uv = r > *rms_uv ? r : *rms_uv;
	}
	return 0;
}

int assess_cci(const float *a, const float *b, size_t n, double rate_hz, double mvc_a,
	       double mvc_b, struct assess_cci *out, char *err, size_t errlen)
{
	size_t w = assess_window(rate_hz);
	double common = 0, sum = 0;

	memset(out, 0, sizeof(*out));
	out->formula = "falconer_winter";
	if (!(mvc_a > 0) || !(mvc_b > 0) || !isfinite(mvc_a) || !isfinite(mvc_b)) {
		snprintf(err, errlen, "co-contraction index: MVC RMS %g and %g uV: each must be "
			 "above 0 (an mvc block of each channel first)", mvc_a, mvc_b);
		return -EINVAL;
	}
	if (!w || n < w) {
		snprintf(err, errlen, "co-contraction index: %zu samples, shorter than one %g s "
			 "window at %g Hz", n, ASSESS_CCI_WINDOW_S, rate_hz);
		return -EINVAL;
	}
	for (size_t i = 0; i + w <= n; i += w) {
		double ra = assess_rms(a + i, w) / mvc_a, rb = assess_rms(b + i, w) / mvc_b;

		common += ra < rb ? ra : rb;
		sum += ra + rb;
		out->windows++;
	}
	if (!(sum > 0)) {
		snprintf(err, errlen, "co-contraction index: no activity on either channel in %zu "
			 "windows: undefined", out->windows);
		return -ERANGE;
	}
	out->cci_pct = 200.0 * common / sum;
	return 0;
}

int assess_mvc_windows(const float *rms, size_t n, double *rms_uv, char *err, size_t errlen)
{
	*rms_uv = 0;
	if (n == 0) {
		snprintf(err, errlen, "MVC block: no whole %g s window", ASSESS_CCI_WINDOW_S);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		*rms_uv = rms[i] > *rms_uv ? rms[i] : *rms_uv;
	}
	if (!(*rms_uv > 0)) {
		snprintf(err, errlen, "MVC block: no EMG above 0 uV in %zu windows: nothing to "
			 "normalise to", n);
		return -ERANGE;
	}
	return 0;
}

int assess_cci_windows(const float *ra, const float *rb, size_t n, double mvc_a, double mvc_b,
		       struct assess_cci *out, char *err, size_t errlen)
{
	double common = 0, sum = 0;

	memset(out, 0, sizeof(*out));
	out->formula = "falconer_winter";
	if (!(mvc_a > 0) || !(mvc_b > 0) || !isfinite(mvc_a) || !isfinite(mvc_b)) {
		snprintf(err, errlen, "co-contraction index: MVC RMS %g and %g uV: each must be "
			 "above 0 (an mvc block of each channel first)", mvc_a, mvc_b);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		double a = ra[i] / mvc_a, b = rb[i] / mvc_b;

		/* a window all in a stimulation blank has no amplitude */
		if (!isfinite(a) || !isfinite(b)) {
			continue;
		}
		common += a < b ? a : b;
		sum += a + b;
		out->windows++;
	}
	if (out->windows == 0) {
		snprintf(err, errlen, "co-contraction index: no whole %g s window",
			 ASSESS_CCI_WINDOW_S);
		return -EINVAL;
	}
	if (!(sum > 0)) {
		snprintf(err, errlen, "co-contraction index: no activity on either channel in %zu "
			 "windows: undefined", out->windows);
		return -ERANGE;
	}
	out->cci_pct = 200.0 * common / sum;
	return 0;
}

int assess_tsrt(const double *vel_dps, const double *angle_deg, size_t n,
		struct assess_tsrt *out, char *err, size_t errlen)
{
	double vmin = INFINITY, vmax = 0, mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;

	memset(out, 0, sizeof(*out));
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(vel_dps[i]) || !isfinite(angle_deg[i]) || !(vel_dps[i] > 0)) {
			snprintf(err, errlen, "stretch %zu: velocity %g deg/s, onset angle %g deg: "
				 "the velocity must be above 0 and both finite", i + 1, vel_dps[i],
				 angle_deg[i]);
			return -EINVAL;
		}
		vmin = vel_dps[i] < vmin ? vel_dps[i] : vmin;
		vmax = vel_dps[i] > vmax ? vel_dps[i] : vmax;
		mx += vel_dps[i];
		my += angle_deg[i];
	}
	if (n < ASSESS_TSRT_MIN_N) {
		snprintf(err, errlen, "TSRT refused: %zu stretches, at least %d needed", n,
			 ASSESS_TSRT_MIN_N);
		return -EDOM;
	}
	if (vmax < ASSESS_TSRT_MIN_RATIO * vmin || vmax - vmin < ASSESS_TSRT_MIN_SPAN_DPS) {
		snprintf(err, errlen, "TSRT refused: velocities %.1f..%.1f deg/s are too narrow a "
			 "range (the fastest at least %g x the slowest and %g deg/s apart): the "
			 "angle at zero velocity would be a guess", vmin, vmax,
			 ASSESS_TSRT_MIN_RATIO, ASSESS_TSRT_MIN_SPAN_DPS);
		return -EDOM;
	}
	mx /= (double)n;
	my /= (double)n;
	for (size_t i = 0; i < n; i++) {
		double dx = vel_dps[i] - mx, dy = angle_deg[i] - my;

		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
	}
	out->slope = sxy / sxx;
	out->tsrt_deg = my - out->slope * mx;
	/* every onset at one angle: the line fits it exactly */
	out->r2 = syy > 0 ? sxy * sxy / (sxx * syy) : 1.0;
	return 0;
}
