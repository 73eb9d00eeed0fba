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
