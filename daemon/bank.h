/* SPDX-License-Identifier: MIT */
/*
 * The detector bank: everything between a block of raw EMG and a burst
 * decision, for every channel, shared by the daemon's acquire thread and
 * the offline tool rpms-detect so that both run exactly the same code.
 *
 * Per channel: the stimulation-artefact blank (the last clean raw value
 * is held through it), the dsp chain (band-pass, notches, envelope) and
 * the detector. Across channels, the rule of detect.channel_rule makes one
 * burst out of the channels' own: "any" (the first channel to start
 * starts it, the last to stop ends it), "all" (it starts when every
 * channel is active and ends when one stops) or a channel's name (only
 * that channel counts). Calibrations are reported per channel.
 *
 * bank_process is O(1) per sample and channel and never allocates.
 */
#ifndef RPMSD_BANK_H
#define RPMSD_BANK_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "source.h"

struct rpmsd_config;

#define BANK_MAX_CHANNELS SOURCE_MAX_CHANNELS
#define BANK_NAME_MAX SOURCE_NAME_MAX

/** One decision: a channel calibrated, or a burst started or ended. */
struct bank_event {
	enum detect_edge edge;		/* DETECT_CALIBRATED, _ONSET or _OFFSET */
	unsigned channel;		/* the channel that decided it */
	uint64_t sample;		/* the sample consumed when it was decided */
	struct detect_result r;		/* that channel's detector's details */
};

/** Receives each decision, in order, from bank_process. Must not block. */
typedef void (*bank_emit_fn)(void *ctx, const struct bank_event *ev);

/** One sample of one channel as the detector saw it (bank_set_trace). */
struct bank_trace {
	uint64_t sample;
	unsigned channel;
	float raw;			/* input, after the artefact blank */
	float filtered;			/* band-passed, notched */
	float envelope;			/* dsp.envelope over dsp.envelope_ms */
	float sustained;		/* what the thresholds apply to */
	double on_threshold;		/* NAN until calibrated */
	double off_threshold;
};

/** Receives every sample of every channel when tracing. */
typedef void (*bank_trace_fn)(void *ctx, const struct bank_trace *t);

/** The per-window amplitudes' window, seconds (assess.h's ASSESS_CCI_WINDOW_S). */
#define BANK_TALLY_WINDOW_S 0.2
/** Windows a tally holds: 12.8 s at 0.2 s, copied at least that often. */
#define BANK_TALLY_WINDOWS 64

/**
 * Running totals per channel since bank_create, for outcome assessments
 * (docs/outcomes.md): the difference of two copies taken at two samples
 * describes the EMG between them exactly as the detectors saw it.
 */
struct bank_tally {
	uint64_t samples;			/* frames processed */
	uint64_t blanked;			/* of them, in a stimulation blank */
	double sumsq[BANK_MAX_CHANNELS];	/* filtered µV², blanked samples left out */
	uint64_t active[BANK_MAX_CHANNELS];	/* samples the channel's own detector was in a burst */
	uint64_t onsets[BANK_MAX_CHANNELS];	/* the channel's own detector's onsets */
	/*
	 * The last BANK_TALLY_WINDOWS whole windows of BANK_TALLY_WINDOW_S
	 * (window k: processed samples k * w .. (k + 1) * w - 1, at
	 * win_rms[k % BANK_TALLY_WINDOWS]): per channel the RMS of the
	 * band-passed EMG without the spike limiter (an MVC is far above
	 * it), blanked samples left out (NAN: all blanked). For co-contraction
	 * and MVC blocks, which need per-window amplitudes.
	 */
	uint64_t windows;			/* whole windows so far */
	float win_rms[BANK_TALLY_WINDOWS][BANK_MAX_CHANNELS];
};

struct bank;

/**
 * Create the bank for @channels channels (names for detect.channel_rule)
 * sampled at @fs.
 * @param err  receives a message naming the config key at fault
 * @return 0, -EINVAL, -ENOMEM
 */
int bank_create(const struct rpmsd_config *cfg, double fs, unsigned channels,
		const char (*names)[BANK_NAME_MAX], struct bank **out, char *err,
		size_t errlen);

/** Free. Accepts NULL. */
void bank_destroy(struct bank *b);

/**
 * Run @frames interleaved frames (frame-major, channels floats each) whose
 * first is sample @first through every channel, calling @emit for each
 * decision. RT-safe.
 */
void bank_process(struct bank *b, const float *buf, size_t frames, uint64_t first,
		  bank_emit_fn emit, void *ctx);

/**
 * Our own pulse: samples from @from on are replaced by the last clean
 * value for the configured blanking time (detect.blanking_ms) and ignored
 * by the detectors. @from is the pulse's own sample: it may lie in a
 * block not yet processed (the blank starts there) or already processed
 * (the rest of the blank still applies). Blanks that overlap or touch
 * merge. RT-safe.
 */
void bank_blank(struct bank *b, uint64_t from);

/**
 * Samples @from .. @from + @lost - 1 never arrived: restart the filters on
 * the new data and let the detectors wait until the envelope has settled
 * (detect_gap). RT-safe.
 */
void bank_gap(struct bank *b, uint64_t from, uint64_t lost);

/**
 * Calibrate every channel again, on a rest window starting at sample
 * @from (detect.calibration_s long), as at start-up: no onsets until it
 * is done, and the spike limit is off meanwhile so that the old rest
 * level cannot clip the new one. A burst in progress ends silently (the
 * caller reports the recalibration). RT-safe.
 */
void bank_recalibrate(struct bank *b, uint64_t from);

/** Copy the running totals (the caller's thread, i.e. the one that runs bank_process). */
void bank_get_tally(const struct bank *b, struct bank_tally *out);

/**
 * Call @fn for every sample and channel from now on (NULL: stop). For
 * offline tools and figures: it costs a call per sample.
 */
void bank_set_trace(struct bank *b, bank_trace_fn fn, void *ctx);

/**
 * Call @fn (NULL: stop) with every channel's own onset and offset as its
 * detector decides it, before detect.channel_rule combines them (which
 * reports only the edges that start or end the combined burst): for
 * per-muscle measures such as the stretch reflex. Same thread as
 * bank_process; @fn must not block.
 */
void bank_set_own_edges(struct bank *b, bank_emit_fn fn, void *ctx);

#endif /* RPMSD_BANK_H */
