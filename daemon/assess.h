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

#endif /* RPMSD_ASSESS_H */
