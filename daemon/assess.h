/* SPDX-License-Identifier: MIT */
/*
 * Outcome assessments from the daemon's own pipeline (docs/outcomes.md):
 * pure arithmetic on two copies of the detector bank's running totals
 * (bank_tally) taken at the start and the end of an assessment block, so
 * the numbers are exactly what the detectors saw, with no second detector.
 */
#ifndef RPMSD_ASSESS_H
#define RPMSD_ASSESS_H

#include <stddef.h>
#include <stdint.h>

#include "bank.h"

/** One channel's rest activity over a block. */
struct assess_rest_channel {
	double rms_uv;		/* RMS of the filtered EMG, µV (stimulation blanks left out) */
	double bursts_per_min;	/* the channel's own detector's onsets per minute */
	double active_pct;	/* % of the block's samples inside the channel's bursts */
	uint64_t onsets;
};

/** A rest block: the samples it spans and each channel's numbers. */
struct assess_rest {
	uint64_t samples;	/* processed between the two totals (gaps excluded) */
	uint64_t blanked;	/* of them, in a stimulation blank */
	double seconds;		/* samples / rate */
	unsigned channels;
	struct assess_rest_channel ch[BANK_MAX_CHANNELS];
};

/**
 * The rest activity between the totals @from and @to (@to taken later)
 * of @channels channels sampled at @rate_hz.
 * @return 0, or -EINVAL (no samples between them, totals out of order, a
 * bad rate or channel count) with @err filled
 */
int assess_rest(const struct bank_tally *from, const struct bank_tally *to, unsigned channels,
		double rate_hz, struct assess_rest *out, char *err, size_t errlen);

/** The co-contraction index's window, seconds (Rudolph et al. 2000). */
#define ASSESS_CCI_WINDOW_S 0.2
/** Fewest stretches a TSRT is fitted to. */
#define ASSESS_TSRT_MIN_N 7
/** The velocity range a TSRT needs: the fastest at least this times the slowest... */
#define ASSESS_TSRT_MIN_RATIO 2.0
/** ...and at least this many degrees/s apart. */
#define ASSESS_TSRT_MIN_SPAN_DPS 30.0

/** A co-contraction index over a block (docs/outcomes.md). */
struct assess_cci {
	double cci_pct;		/* 2 * sum(min(a, b)) / sum(a + b) * 100 over the windows */
	size_t windows;		/* whole 200 ms windows in the block */
	const char *formula;	/* "falconer_winter" (static) */
};

/**
 * The MVC reference of one channel: the largest RMS of a 200 ms window in
 * the MVC block @x (@n samples at @rate_hz, filtered µV).
 * @return 0, or -EINVAL (shorter than a window) with @err filled
 */
int assess_mvc(const float *x, size_t n, double rate_hz, double *rms_uv, char *err,
	       size_t errlen);

/**
 * The co-contraction index of channels @a and @b (@n samples each at
 * @rate_hz, filtered µV), each normalised to its MVC RMS (@mvc_a, @mvc_b,
 * from assess_mvc), in 200 ms windows: Falconer & Winter's
 * 2 * common / sum, as a %, summed over the windows. A trailing part
 * window is left out.
 * @return 0; -EINVAL (an MVC not above 0, no whole window, a bad rate) or
 * -ERANGE (no activity on either channel: the index is undefined), with
 * @err filled
 */
int assess_cci(const float *a, const float *b, size_t n, double rate_hz, double mvc_a,
	       double mvc_b, struct assess_cci *out, char *err, size_t errlen);

/**
 * The MVC reference from per-window RMS values (bank_tally's windows):
 * the largest of the @n windows' @rms (µV; NAN, an all-blanked window,
 * left out).
 * @return 0, or -EINVAL (no window) or -ERANGE (no window above 0: no
 * contraction to normalise to), with @err filled
 */
int assess_mvc_windows(const float *rms, size_t n, double *rms_uv, char *err, size_t errlen);

/**
 * The co-contraction index from per-window RMS values @ra and @rb (@n
 * windows of ASSESS_CCI_WINDOW_S each, µV; NAN windows left out), each
 * normalised to its MVC RMS: the same index as assess_cci.
 * @return as assess_cci
 */
int assess_cci_windows(const float *ra, const float *rb, size_t n, double mvc_a, double mvc_b,
		       struct assess_cci *out, char *err, size_t errlen);

/** A tonic stretch reflex threshold: onset angle regressed on velocity. */
struct assess_tsrt {
	double tsrt_deg;	/* the fit's angle at zero velocity */
	double slope;		/* degrees per (degree/s) */
	double r2;		/* of the fit, 0..1 */
	size_t n;		/* stretches */
};

/**
 * Fit angle = TSRT + slope * velocity to @n stretches, each with its
 * velocity @vel_dps (degrees/s, > 0) and the joint angle at EMG onset
 * @angle_deg (its DSRT), by least squares.
 * @return 0; -EDOM (fewer than ASSESS_TSRT_MIN_N stretches, or a velocity
 * range narrower than ASSESS_TSRT_MIN_RATIO and ASSESS_TSRT_MIN_SPAN_DPS:
 * the extrapolation to zero velocity would mean nothing) or -EINVAL (a
 * velocity not above 0, a value not finite), with @err saying which
 */
int assess_tsrt(const double *vel_dps, const double *angle_deg, size_t n,
		struct assess_tsrt *out, char *err, size_t errlen);

#endif /* RPMSD_ASSESS_H */
