/* SPDX-License-Identifier: MIT */
/*
 * Per-channel signal conditioning: band-pass and mains-notch biquads
 * designed at start-up from the sampling rate, then an envelope.
 *
 * Everything is allocated in dsp_chain_create; dsp_chain_step is O(1) per
 * sample and never allocates, so it runs on the real-time acquire thread.
 */
#ifndef RPMSD_DSP_H
#define RPMSD_DSP_H

#include <stddef.h>
#include <stdint.h>

struct rpmsd_config;

/** A second-order section, transposed direct form II, double precision. */
struct dsp_biquad {
	double b0, b1, b2, a1, a2;	/* a0 normalised to 1 */
	double s1, s2;			/* state */
};

/** Design a high-pass section (RBJ cookbook, bilinear). -EINVAL if fc is
 * not in (0, fs/2) or q <= 0. */
int dsp_biquad_highpass(struct dsp_biquad *bq, double fs, double fc, double q);

/** Design a low-pass section. -EINVAL if fc is not in (0, fs/2) or q <= 0. */
int dsp_biquad_lowpass(struct dsp_biquad *bq, double fs, double fc, double q);

/** Design a notch at f0 with quality q. -EINVAL if f0 is not in (0, fs/2). */
int dsp_biquad_notch(struct dsp_biquad *bq, double fs, double f0, double q);

/** Filter one sample. */
double dsp_biquad_step(struct dsp_biquad *bq, double x);

/** Set the state as if @x0 had been the input forever (no start-up step). */
void dsp_biquad_prime(struct dsp_biquad *bq, double x0);

/** Magnitude of the section's response at f, in dB, from its coefficients. */
double dsp_biquad_gain_db(const struct dsp_biquad *bq, double fs, double f);

/** Q of section @k of an order-@n Butterworth cascade (n even, k < n/2). */
double dsp_butterworth_q(int order, int k);

struct dsp_chain;

/**
 * Create one channel's chain from cfg->dsp at sampling rate fs.
 * The low-pass corner is clamped to 0.45 fs; the mains canceller is left
 * out when mains_hz is 0 or not below fs/2.
 * @param err  receives a message naming the offending key
 * @return 0, -EINVAL, -ENOMEM
 */
int dsp_chain_create(const struct rpmsd_config *cfg, double fs,
		     struct dsp_chain **out, char *err, size_t errlen);

/**
 * How long a chain made from @cfg takes to settle after its first sample,
 * in seconds: two periods of the high-pass corner, and the time the mains
 * canceller takes to catch hum that is there from the start. Until then
 * the envelope is not the patient's rest (the detector leaves it out of
 * the rest window).
 */
double dsp_chain_settle_s(const struct rpmsd_config *cfg);

/** Free a chain. Accepts NULL. */
void dsp_chain_destroy(struct dsp_chain *c);

/**
 * Process one raw sample (µV).
 * @param filtered  receives the band-passed, notched sample (may be NULL)
 * @return the envelope (µV, >= 0)
 */
float dsp_chain_step(struct dsp_chain *c, float x, float *filtered);

/**
 * Clip the input's excursion from its slow level (below 2 Hz) at +/- @limit
 * (µV) before any filter; 0 turns it off (the default). While it is off,
 * and dsp.limit is not 0, the calibration guard runs instead: a sample
 * whose excursion is more than 100 times the running median excursion (an
 * electrode pop, a 1e6 µV sample, saturation), and those after it until
 * the excursion is back below 10 times it, are replaced by the slow level,
 * so that they cannot ring through the filters into the rest level being
 * calibrated. RT-safe.
 */
void dsp_chain_set_limit(struct dsp_chain *c, double limit);

/**
 * RMS of the input around its slow level over about the last 0.5 s,
 * before limiting (after the guard): everything that is not EMG rides in
 * it too (mains hum, motion), which is why the limit must not be set below
 * it. RT-safe.
 */
double dsp_chain_excursion(const struct dsp_chain *c);

/** Samples the calibration guard has replaced since the chain was created. RT-safe. */
uint64_t dsp_chain_rejected(const struct dsp_chain *c);

/**
 * After a gap of @lost samples in the input: the next sample primes the
 * filters again, as the first one did, so the jump across the gap does not
 * ring through them; the mains canceller's frame turns on by @lost samples,
 * so its estimate of the hum keeps its phase across the gap. The envelope
 * window keeps its contents (callers ignore the envelope until it has
 * refilled). RT-safe.
 */
void dsp_chain_resync(struct dsp_chain *c, uint64_t lost);

/**
 * Total gain of the chain's filters at f, in dB (for tests and docs): the
 * band-pass and the mains canceller, which is a linear notch at each
 * harmonic while its frequency stays at nominal mains.
 */
double dsp_chain_gain_db(const struct dsp_chain *c, double f);

/**
 * A sample that is not there (the bank blanks a stimulation artefact):
 * the filters and the envelope go on from the input's slow level, as if
 * its excursion were nil, and the mains canceller turns on without
 * learning, so that the hum is still cancelled when the input is back
 * (fed a held value instead, it unlearned the hum during a blank, and a
 * train's continuous blank let it all back in afterwards). Returns the
 * envelope, as dsp_chain_step(). RT-safe.
 */
float dsp_chain_hold(struct dsp_chain *c, float *filtered);

/**
 * After @held samples held (or lost in a gap), how many samples the
 * envelope needs before it shows the EMG again: across 0.1 s or more the
 * mains frequency may have moved, and the canceller acquires the hum again
 * (0.15 s); 0 for a shorter hold or without a canceller. RT-safe.
 */
uint64_t dsp_chain_rejoin(const struct dsp_chain *c, uint64_t held);

#endif /* RPMSD_DSP_H */
