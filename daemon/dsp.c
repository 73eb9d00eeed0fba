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

#include "config.h"
#include "dsp.h"

#define DSP_MAX_SECTIONS 4	/* 2 high-pass + 2 low-pass */
#define DSP_HUM_MAX 8		/* mains harmonics the canceller follows */
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
/*
 * Excursions at or below this say nothing about the scale either: digital
 * silence, and the filters' decay after it, which would otherwise pull the
 * median down by decades for good. 1e-6 is far below one step of any
 * converter, in µV or in counts.
 */
#define DSP_GUARD_SILENT 1e-6
/* The mains canceller: see dsp_hum_setup. */
#define DSP_HUM_PROBE_HZ 10.0	/* width of the probe that follows the fundamental */
#define DSP_HUM_BLOCK_S 0.008	/* the frequency loop runs this often */
#define DSP_HUM_KP 3.0		/* its gains: kp = 3 g, ki = g^2, g the probe's rate */
#define DSP_HUM_KI 1.0
#define DSP_HUM_NEAR 0.95	/* cos 2 beta near lock, where the frequency moves */
#define DSP_HUM_PULL_HZ 2.0	/* the frequency stays this close to nominal */
#define DSP_HUM_RELAX_S 30.0	/* and goes back to it, unlocked, with this time constant */
#define DSP_HUM_LOCK_SNR 5.0	/* amplitude over the noise it would see, to lock */
#define DSP_HUM_LOCK_SHARE 4.0	/* and at least 1/this of all the hum's amplitude */
#define DSP_HUM_CLIP 4.5	/* the residual it learns from, x its running median */
#define DSP_HUM_BOOST 16.0	/* acquiring: steps this much larger (sum at most 1) */
#define DSP_HUM_BOOST_S 0.1	/* and back to nominal, halving every this */
#define DSP_HUM_SETTLE_S 0.3	/* the start-up with hum there from the first sample */
#define DSP_HUM_AVG_S 0.5	/* the frequency a gap or a hold is bridged with, averaged */
#define DSP_HUM_HOLD_S 0.1	/* a gap or hold this long: acquire again after it */
#define DSP_HUM_REACQ_S 0.15	/* which takes this long */

/*
 * The mains hum as a sum of harmonics of one tracked fundamental: harmonic
 * k is a[k] cos(k theta) + b[k] sin(k theta), theta the phase of the frame
 * (c, s), which turns by omega every sample.
 */
struct dsp_hum {
	int n;				/* harmonics followed, 0 = no canceller */
	double a[DSP_HUM_MAX], b[DSP_HUM_MAX];	/* each harmonic's weights */
	double mu[DSP_HUM_MAX];		/* and their settled LMS steps */
	double mu_sum, gain;		/* sum of mu, and 1 - mu_sum / 2 */
	double mu_run[DSP_HUM_MAX], gain_run;	/* in use: boost x mu */
	double boost, boost_max, decay;	/* the boost, and its factor per block */
	double ck[DSP_HUM_MAX], sk[DSP_HUM_MAX];	/* this sample's cos, sin (k theta) */
	double pa, pb, mu_p;		/* the probe: the residual's fundamental */
	double c, s;			/* the frame: cos, sin theta */
	double rc, rs;			/* its turn per sample: cos, sin omega */
	double omega, omega_nom, omega_min, omega_max;	/* rad per sample */
	double omega_avg, avg_alpha;	/* omega averaged over DSP_HUM_AVG_S; its step */
	double kp, ki;			/* loop gains per block */
	double relax;			/* unlocked: the share of the way back to nominal, per block */
	uint64_t hold_n;		/* DSP_HUM_HOLD_S in samples */
	double power;			/* sum of squared residuals this block */
	unsigned clipped;		/* residuals clipped for learning, this block */
	double trust;			/* steps' factor from the last block's clipping */
	double p_smooth;		/* mean square residual over a few blocks */
	unsigned block, tick;		/* samples per block, of this one */
	int locked;			/* the last block moved the frame */
};

struct dsp_chain {
	double fs;
	struct dsp_biquad sec[DSP_MAX_SECTIONS];
	int n_sec;
	struct dsp_hum hum;
	double limit;		/* clip the input's excursion here, 0 = not */
	double level;		/* slow level of the input (below 2 Hz) */
	double level_alpha;
	double excursion_ms;	/* mean square of the input around its level */
	double excursion_alpha;
	int guard;		/* the calibration guard is on (dsp.limit > 0) */
	double guard_med;	/* running median of |excursion|, 0 until known
				 * (kept with the guard off too: the canceller's scale) */
	double guard_step;	/* its relative step per sample */
	double guard_init[DSP_GUARD_INIT];
	int guard_n;		/* of guard_init, filled */
	unsigned guard_stride;	/* samples per ms, for guard_init */
	unsigned guard_tick;
	int guard_hold;		/* inside an artefact */
	uint64_t rejected;	/* samples the guard replaced */
	int primed;
	uint64_t held;		/* samples held (dsp_chain_hold) since the last step */
	int tkeo;
	double x1, x2;		/* the two previous filtered samples (TKEO) */

	double *sq;		/* ring of squared filtered samples */
	size_t win;		/* ring length */
	size_t pos;		/* next slot to write */
	size_t filled;		/* slots written so far, up to win */
	double inv_filled;	/* 1 / filled */
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

/*
 * The mains canceller. Hum is subtracted, not notched: each harmonic k of
 * the mains is estimated as a[k] cos(k theta) + b[k] sin(k theta) and the
 * sum is taken off the input before the limiter, so that the limiter and
 * the calibration guard see the signal without its hum and clip a pop
 * riding on hum as they would on a quiet line.
 *
 * Weights: LMS on the residual e (Widrow's adaptive noise canceller, the
 * reference synthesised). While the frame turns at the mains frequency
 * the canceller is linear and time-invariant: each harmonic feeds the
 * residual back through G_k(z) = mu_k (z cos w_k - 1) / (z^2 - 2 z cos w_k
 * + 1), so e = x / (1 + sum G_k) (Glover 1977). That gain is
 * 1 / (1 - sum mu / 2) far from the harmonics; scaled by 1 - sum mu / 2,
 * a single harmonic's is exactly the RBJ notch of alpha = mu / (2 - mu),
 * so mu_k is chosen to give each harmonic the notch of quality notch_q the
 * chain had before, and the output is scaled back (dsp_hum_gain_db).
 *
 * Frequency: the frame's cos and sin turn by omega every sample (one
 * complex multiplication); the harmonics follow from them by the
 * Chebyshev recurrence (cos (k+1)t = 2 cos t cos kt - cos (k-1)t, the same
 * for sin): two multiply-adds each. A notch of notch_q 30 is 1.7 Hz wide:
 * a line 0.3 Hz off its centre loses 9 dB only, and grids wander by that
 * much. So the frame is locked to the mains: a probe, a second, wider
 * (DSP_HUM_PROBE_HZ) LMS on the residual's fundamental, catches within
 * tens of ms what the narrow canceller misses, and every DSP_HUM_BLOCK_S
 * a phase-locked loop reads the angle beta of the fundamental (canceller
 * plus probe: the hum ahead of the frame) and turns the frame by kp beta
 * and omega by ki beta. Turning the frame turns every weight back by
 * k kp beta, so the estimate itself never jumps. The loop is of second
 * order: a steady ramp of the mains frequency leaves the weights still and
 * the notches on the line. The angle comes as sin(2 beta) / 2 =
 * -ab / (a^2 + b^2), no trigonometry; the loop locks with the hum in phase
 * or in antiphase (both cancel), and omega moves only near lock
 * (cos 2 beta >= DSP_HUM_NEAR), so the frame's first slew onto the hum
 * does not wind the frequency up.
 *
 * Acquisition: the canceller's steps start DSP_HUM_BOOST times larger
 * (their sum at most 1) and halve every DSP_HUM_BOOST_S; they go back up
 * whenever the probe sees a line the canceller has missed (hum switched
 * on, the frequency jumped), standing DSP_HUM_LOCK_SNR above what the
 * residual's noise would make of it. Wider notches take more EMG with
 * the hum meanwhile: the detector leaves the start-up out of its rest
 * window (dsp_chain_settle_s).
 *
 * Robustness: the loop holds its frequency (and the frame turns on at it)
 * unless the fundamental stands DSP_HUM_LOCK_SNR above the noise the
 * block's residual would leave in the probe and makes up at least
 * 1/DSP_HUM_LOCK_SHARE of the hum's amplitude (no hum, a burst over weak
 * hum, a pop, or harmonics with no fundamental to follow); unlocked, the
 * frame turns on at the frequency averaged while locked (DSP_HUM_AVG_S),
 * since the loop's own jitters by a few hundredths of a hertz, a third of
 * a radian over a 2 s burst, which would ring as hum after it; that
 * average drifts back to nominal with a time constant of DSP_HUM_RELAX_S,
 * and the frequency never leaves DSP_HUM_PULL_HZ around nominal. A blank
 * (dsp_chain_hold) or a gap is bridged at that average too. Canceller and probe learn
 * from the residual clipped at DSP_HUM_CLIP times its running median (and
 * at the limiter's limit once there is one), so a pop moves them by a few
 * steps at most. A burst the limiter clips says nothing about the hum
 * either, and a clipped residual no longer pulls the estimate back (its
 * sign hardly depends on the hum): learning from it, the estimate would
 * random-walk for as long as the burst lasts and ring after it. So the
 * steps shrink by the square of the share of the last block's samples the
 * limiter left alone, and the canceller holds its estimate through such a
 * burst; not while acquiring (boost > 1), which hum switched on after
 * calibration needs.
 *
 * Cost per sample and harmonic: four multiply-adds for the reference and
 * the estimate, two for the update; the loop's work comes once a block.
 */
static void dsp_hum_set_boost(struct dsp_hum *h, double boost, double trust)
{
	int k;

	h->boost = boost;
	h->trust = trust;
	for (k = 0; k < h->n; k++) {
		h->mu_run[k] = boost * trust * h->mu[k];
	}
	h->gain_run = 1.0 - boost * trust * h->mu_sum / 2.0;
}

/* The LMS step whose notch, scaled, is the RBJ notch of quality @q at @f. */
static double dsp_hum_step_for(double fs, double f, double q)
{
	double alpha = sin(2.0 * M_PI * f / fs) / (2.0 * q);

	return 2.0 * alpha / (1.0 + alpha);
}

static void dsp_hum_setup(struct dsp_hum *h, double fs, double f0, int harmonics,
			  double q, double lp)
{
	double g, t, sum = 0.0;
	int k;

	memset(h, 0, sizeof(*h));
	for (k = 1; k <= harmonics && k <= DSP_HUM_MAX; k++) {
		double f = (double)k * f0;

		if (k > 1 && (f > lp || f >= DSP_LOWPASS_MAX_FRAC * fs)) {
			break;
		}
		h->mu[h->n] = dsp_hum_step_for(fs, f, q);
		sum += h->mu[h->n++];
	}
	/* Steps summing past 1 (notch_q near 1, many harmonics) would let
	 * the weights overshoot: scale them back. */
	for (k = 0; sum > 1.0 && k < h->n; k++) {
		h->mu[k] /= sum;
	}
	h->mu_sum = sum > 1.0 ? 1.0 : sum;
	h->gain = 1.0 - h->mu_sum / 2.0;
	h->boost_max = DSP_HUM_BOOST * h->mu_sum > 1.0 ? 1.0 / h->mu_sum : DSP_HUM_BOOST;
	dsp_hum_set_boost(h, h->boost_max, 1.0);
	h->mu_p = dsp_hum_step_for(fs, f0, f0 / DSP_HUM_PROBE_HZ);

	h->omega = h->omega_nom = h->omega_avg = 2.0 * M_PI * f0 / fs;
	h->omega_min = 2.0 * M_PI * (f0 - DSP_HUM_PULL_HZ) / fs;
	h->omega_max = 2.0 * M_PI * (f0 + DSP_HUM_PULL_HZ) / fs;
	if (h->omega_max > M_PI / 2.0) {
		h->omega_max = h->omega_nom;
	}
	h->c = 1.0;
	h->rc = cos(h->omega);
	h->rs = sin(h->omega);
	h->block = fs * DSP_HUM_BLOCK_S > 1.0 ? (unsigned)lround(fs * DSP_HUM_BLOCK_S) : 1;
	t = (double)h->block / fs;
	h->decay = pow(0.5, t / DSP_HUM_BOOST_S);
	h->relax = t / DSP_HUM_RELAX_S;
	h->avg_alpha = t / DSP_HUM_AVG_S;
	h->hold_n = (uint64_t)llround(DSP_HUM_HOLD_S * fs);
	/* The probe's rate (1/s) sets the loop's; the frame's own step per
	 * block stays at 1/2 at most so that it cannot overshoot. */
	g = h->mu_p / 2.0 * fs;
	if (DSP_HUM_KP * g * t > 0.5) {
		g = 0.5 / (DSP_HUM_KP * t);
	}
	h->kp = DSP_HUM_KP * g * t;
	h->ki = DSP_HUM_KI * g * g * t / fs;
}

/* The hum expected at this sample; leaves this sample's harmonics in ck, sk. */
static double dsp_hum_estimate(struct dsp_hum *h)
{
	double two_c = 2.0 * h->c, cp = 1.0, sp = 0.0, cc = h->c, sc = h->s;
	double est = h->a[0] * cc + h->b[0] * sc;
	int k;

	h->ck[0] = cc;
	h->sk[0] = sc;
	for (k = 1; k < h->n; k++) {
		double cn = two_c * cc - cp, sn = two_c * sc - sp;

		cp = cc;
		sp = sc;
		cc = cn;
		sc = sn;
		h->ck[k] = cn;
		h->sk[k] = sn;
		est += h->a[k] * cn + h->b[k] * sn;
	}
	return est;
}

/* Turn the frame by @d and every harmonic's weights (and the probe's) back
 * by k @d, so that the estimate stays as it was. */
static void dsp_hum_shift(struct dsp_hum *h, double d)
{
	/* |d| <= 1/4 (kp <= 1/2, |sin(2 beta) / 2| <= 1/2): cos and sin to
	 * 2e-4, renormalised; frame and weights turn by the very same angle. */
	double cd = 1.0 - d * d / 2.0, sd = d * (1.0 - d * d / 6.0), n, c;
	double cp = 1.0, sp = 0.0, cc, sc;
	int k;

	n = 1.5 - 0.5 * (cd * cd + sd * sd);
	cd *= n;
	sd *= n;
	c = h->c * cd - h->s * sd;
	h->s = h->s * cd + h->c * sd;
	h->c = c;
	c = h->pa * cd - h->pb * sd;
	h->pb = h->pa * sd + h->pb * cd;
	h->pa = c;
	cc = cd;
	sc = sd;
	for (k = 0; k < h->n; k++) {
		double a = h->a[k] * cc - h->b[k] * sc;
		double cn = 2.0 * cd * cc - cp, sn = 2.0 * cd * sc - sp;

		h->b[k] = h->a[k] * sc + h->b[k] * cc;
		h->a[k] = a;
		cp = cc;
		sp = sc;
		cc = cn;
		sc = sn;
	}
}

/* Set the frame's turn per sample to @omega, within the pull range. */
static void dsp_hum_turn(struct dsp_hum *h, double omega)
{
	double rc;

	omega = omega < h->omega_min ? h->omega_min : omega > h->omega_max ? h->omega_max : omega;
	/* below 1e-4 rad: a first-order turn, renormalised once a block */
	rc = h->rc - h->rs * (omega - h->omega);
	h->rs += h->rc * (omega - h->omega);
	h->rc = rc;
	h->omega = omega;
}

/* Once a block: the canceller's steps, the frequency loop, and the frame
 * and its turn kept on the unit circle. */
static void dsp_hum_block(struct dsp_hum *h)
{
	double a = h->a[0] + h->pa, b = h->b[0] + h->pb, amp2 = a * a + b * b;
	double pp = h->pa * h->pa + h->pb * h->pb, power = h->power / (double)h->block;
	double noise, n, boost, trust, tot2;
	int k;

	h->power = 0.0;
	/* The residual's power, smoothed over a few blocks but rising at
	 * once: the probe's noise follows it with about that lag. */
	h->p_smooth += 0.25 * (power - h->p_smooth);
	if (power > h->p_smooth) {
		h->p_smooth = power;
	}
	noise = h->p_smooth - pp / 2.0;
	boost = pp > DSP_HUM_LOCK_SNR * DSP_HUM_LOCK_SNR * h->mu_p * (noise > 0.0 ? noise : 0.0) ?
		h->boost_max : h->boost * h->decay;
	if (boost < 1.0) {
		boost = 1.0;
	}
	/* See dsp_hum_setup (Robustness). */
	trust = 1.0 - (double)h->clipped / (double)h->block;
	trust = boost > 1.0 ? 1.0 : trust * trust;
	h->clipped = 0;
	if (boost != h->boost || trust != h->trust) {
		dsp_hum_set_boost(h, boost, trust);
	}

	tot2 = pp;
	for (k = 0; k < h->n; k++) {
		tot2 += h->a[k] * h->a[k] + h->b[k] * h->b[k];
	}
	if (h->locked) {
		h->omega_avg += h->avg_alpha * (h->omega - h->omega_avg);
	}
	h->locked = amp2 > DSP_GUARD_SILENT * DSP_GUARD_SILENT &&
		    amp2 >= DSP_HUM_LOCK_SNR * DSP_HUM_LOCK_SNR * h->mu_p * power &&
		    amp2 * DSP_HUM_LOCK_SHARE * DSP_HUM_LOCK_SHARE >= tot2;
	if (h->locked) {
		double beta = -a * b / amp2;	/* sin(2 beta) / 2 */

		if (a * a - b * b >= DSP_HUM_NEAR * amp2) {
			dsp_hum_turn(h, h->omega + h->ki * beta);
		}
		dsp_hum_shift(h, h->kp * beta);
	} else {
		/* No line to follow (a burst over the hum, or no hum):
		 * turn on at the frequency averaged while locked, not the
		 * loop's last value, which jitters by a few hundredths of
		 * a hertz; drift back to nominal mains, slowly enough to
		 * hold the frequency across a burst. Not while acquiring
		 * (boost), where the loop locks on and off as it pulls in. */
		h->omega_avg += h->relax * (h->omega_nom - h->omega_avg);
		if (h->boost == 1.0) {
			dsp_hum_turn(h, h->omega_avg);
		}
	}
	n = 1.5 - 0.5 * (h->c * h->c + h->s * h->s);
	h->c *= n;
	h->s *= n;
	n = 1.5 - 0.5 * (h->rc * h->rc + h->rs * h->rs);
	h->rc *= n;
	h->rs *= n;
}

/* Turn the frame on to the next sample. */
static void dsp_hum_advance(struct dsp_hum *h)
{
	double c = h->c * h->rc - h->s * h->rs;

	h->s = h->s * h->rc + h->c * h->rs;
	h->c = c;
}

/*
 * Learn from this sample's residual @e, clipped at @clip when that is
 * > 0, and turn the frame on to the next sample.
 */
static void dsp_hum_learn(struct dsp_hum *h, double e, double clip, int limited)
{
	double ep = e - (h->pa * h->ck[0] + h->pb * h->sk[0]);
	int k;

	h->power += e * e;
	h->clipped += limited;
	if (clip > 0.0) {
		e = e > clip ? clip : e < -clip ? -clip : e;
		ep = ep > clip ? clip : ep < -clip ? -clip : ep;
	}
	h->pa += h->mu_p * ep * h->ck[0];
	h->pb += h->mu_p * ep * h->sk[0];
	for (k = 0; k < h->n; k++) {
		h->a[k] += h->mu_run[k] * e * h->ck[k];
		h->b[k] += h->mu_run[k] * e * h->sk[k];
	}
	dsp_hum_advance(h);
	if (++h->tick == h->block) {
		h->tick = 0;
		dsp_hum_block(h);
	}
}

/*
 * Turn the frame on by @n samples (a gap, a hold), so the estimate keeps
 * its phase: at the frequency averaged over the last DSP_HUM_AVG_S, as the
 * loop's own jitters by a few hundredths of a hertz, which over a 2 s
 * train's blank is a third of a radian. Across DSP_HUM_HOLD_S or more the
 * grid may have moved all the same: acquire again, with the boost.
 */
static void dsp_hum_skip(struct dsp_hum *h, uint64_t n)
{
	double t, ct, st, c;

	if (!h->n || n == 0) {
		return;
	}
	if (n >= h->hold_n) {
		dsp_hum_set_boost(h, h->boost_max, 1.0);
	}
	t = fmod((double)n * h->omega_avg, 2.0 * M_PI);
	ct = cos(t);
	st = sin(t);
	c = h->c * ct - h->s * st;
	h->s = h->s * ct + h->c * st;
	h->c = c;
}

/*
 * Gain of the canceller at @f, its frame at nominal mains and its steps
 * settled: 1 - sum mu / 2 times 1 / (1 + sum_k G_k) (see above).
 */
static double dsp_hum_gain_db(const struct dsp_hum *h, double fs, double f)
{
	double w = 2.0 * M_PI * f / fs, zr = cos(w), zi = sin(w);
	double z2r = cos(2.0 * w), z2i = sin(2.0 * w), sr = 1.0, si = 0.0;
	int k;

	for (k = 0; k < h->n; k++) {
		double ck = cos((double)(k + 1) * h->omega_nom);
		double nr = h->mu[k] * (zr * ck - 1.0), ni = h->mu[k] * zi * ck;
		double dr = z2r - 2.0 * zr * ck + 1.0, di = z2i - 2.0 * zi * ck;
		double dd = dr * dr + di * di;

		if (dd == 0.0) {
			return -HUGE_VAL;	/* on a harmonic: a zero */
		}
		sr += (nr * dr + ni * di) / dd;
		si += (ni * dr - nr * di) / dd;
	}
	return 20.0 * log10(h->gain) - 10.0 * log10(sr * sr + si * si);
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
	int use_notch, k;

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
	if (!(hp > 0.0) || !config_rule_band(hp, lp)) {
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
	c->hum.gain = 1.0;
	c->hum.gain_run = 1.0;
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
	if (use_notch) {
		dsp_hum_setup(&c->hum, fs, (double)cfg->dsp.mains_hz,
			      cfg->dsp.mains_harmonics > 1 ? cfg->dsp.mains_harmonics : 1,
			      cfg->dsp.notch_q, lp);
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

double dsp_chain_settle_s(const struct rpmsd_config *cfg)
{
	double s = cfg->dsp.highpass_hz > 0.0 ? 2.0 / cfg->dsp.highpass_hz : 0.0;

	if (cfg->dsp.mains_hz > 0) {
		s += DSP_HUM_SETTLE_S;
	}
	return s;
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
 * ratio per sample (up when above it, down when below; excursions of
 * DSP_GUARD_SILENT or less, as in digital silence, say nothing about the
 * scale and are skipped), so no single sample, however large, moves it by
 * more than that ratio, and a few ms of saturation barely. A sample
 * beyond DSP_GUARD_FACTOR times it starts an artefact, which lasts until
 * the excursion is back below DSP_GUARD_RELEASE times it (the decaying tail of an electrode pop would
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

	if (c->guard_med > 0.0) {
		reject = c->guard && c->limit == 0.0 &&
			 mag > (c->guard_hold ? DSP_GUARD_RELEASE : DSP_GUARD_FACTOR) * c->guard_med;
		c->guard_hold = reject;
		if (mag > c->guard_med) {
			c->guard_med *= 1.0 + c->guard_step;
		} else if (mag > DSP_GUARD_SILENT) {
			c->guard_med *= 1.0 - c->guard_step;
		}
	} else if (mag > DSP_GUARD_SILENT && ++c->guard_tick >= c->guard_stride) {
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

/* The band-pass and the envelope, from the limited input @y. */
static float dsp_filter(struct dsp_chain *c, double y, float *filtered)
{
	double sq, ms;
	int i;

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
	/* A division per sample costs more than a biquad: divide only while
	 * the window fills, then multiply by its inverse. The root is taken
	 * in single precision, which the envelope is returned in. */
	if (c->filled < c->win) {
		c->filled++;
		c->inv_filled = 1.0 / (double)c->filled;
	}
	ms = c->sum * c->inv_filled;
	if (ms < 0.0) {
		ms = 0.0;
	}
	return sqrtf((float)ms);
}

float dsp_chain_step(struct dsp_chain *c, float x, float *filtered)
{
	double hum, y, e, dev;
	int i;

	if (c->held) {
		dsp_hum_skip(&c->hum, c->held);
		c->held = 0;
	}
	hum = c->hum.n ? dsp_hum_estimate(&c->hum) : 0.0;
	y = (double)x - hum;

	if (!c->primed) {
		double v = y;

		c->level = y;
		/* Each section settles on the DC level the one before passes. */
		for (i = 0; i < c->n_sec; i++) {
			dsp_biquad_prime(&c->sec[i], v);
			v *= dsp_biquad_dc_gain(&c->sec[i]);
		}
		c->primed = 1;
	}
	/*
	 * A spike or an electrode pop far above any EMG would make the
	 * filters ring (the high-pass for tens of ms) and fill the envelope
	 * with it. Clip the input's excursion from its slow level, well
	 * above any burst, before it reaches them: the excursion without the
	 * hum, so that a pop riding on hum is clipped as on a quiet line.
	 */
	e = y - c->level;
	dev = c->hum.gain_run * e;
	if ((c->guard || c->hum.n) && dsp_guard(c, fabs(dev))) {
		dev = 0.0;
		e = 0.0;
	}
	c->excursion_ms += c->excursion_alpha * (dev * dev - c->excursion_ms);
	if (c->hum.n) {
		double clip = DSP_HUM_CLIP * c->guard_med;

		/* What the limiter clips, the canceller does not learn from
		 * either: a burst clipped at the limit then leaves the
		 * canceller's estimate no more noise than the notch it
		 * replaces, placed after the limiter, would have rung with. */
		if (c->limit > 0.0 && c->limit < clip * c->hum.gain_run) {
			clip = c->limit / c->hum.gain_run;
		}
		dsp_hum_learn(&c->hum, e, clip, c->limit > 0.0 && fabs(dev) > c->limit);
	}
	if (c->limit > 0.0) {
		dev = dev > c->limit ? c->limit : dev < -c->limit ? -c->limit : dev;
	}
	y = c->level + dev;
	c->level += c->level_alpha * dev;
	return dsp_filter(c, y, filtered);
}

float dsp_chain_hold(struct dsp_chain *c, float *filtered)
{
	if (!c->primed) {
		if (filtered) {
			*filtered = 0.0f;
		}
		return 0.0f;
	}
	/* Not a sample: nothing to learn from, and the hum's phase goes on. */
	c->held++;
	return dsp_filter(c, c->level, filtered);
}

uint64_t dsp_chain_rejoin(const struct dsp_chain *c, uint64_t held)
{
	if (!c->hum.n || held < c->hum.hold_n) {
		return 0;
	}
	return (uint64_t)llround(DSP_HUM_REACQ_S * c->fs);
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

void dsp_chain_resync(struct dsp_chain *c, uint64_t lost)
{
	dsp_hum_skip(&c->hum, lost);
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
	if (c->hum.n) {
		g += dsp_hum_gain_db(&c->hum, c->fs, f);
	}
	return g;
}
