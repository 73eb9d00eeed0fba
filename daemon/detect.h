/* SPDX-License-Identifier: MIT */
/*
 * Per-channel burst detector on the envelope.
 *
 * Calibrates a robust baseline (median and MAD of the envelope) over a rest
 * window, then runs an onset/offset state machine with hysteresis:
 *  - onset when the envelope stays above baseline + k_on * spread for
 *    on_ms in total, where dips shorter than dip_ms do not restart the
 *    count; the reported onset sample is back-dated to where the rise
 *    began, separately from the decision sample;
 *  - offset when it stays below baseline + k_off * spread for off_ms.
 * With detect.rule = cusum the onset is decided instead when a one-sided
 * CUSUM on the envelope's log ratio to the baseline, in spreads, has piled
 * up cusum_h of evidence (each millisecond adding at most cusum_cap);
 * dating, offset and everything else stay as they are.
 * After each of our own pulses the input is blanked for blanking_ms.
 *
 * detect_step never allocates (every buffer is allocated in
 * detect_create) and does a constant amount of work per sample, whatever
 * sustain_ms and the sampling rate, except on two samples: the last of
 * the calibration window (selections over the window) and an onset's
 * decision, whose dating walks back over at most 0.5 s of the envelope.
 */
#ifndef RPMSD_DETECT_H
#define RPMSD_DETECT_H

#include <stddef.h>
#include <stdint.h>

struct rpmsd_config;

/** What detect_step reports. */
enum detect_edge {
	DETECT_NONE = 0,
	DETECT_CALIBRATED,	/* baseline and thresholds are set */
	DETECT_ONSET,
	DETECT_OFFSET,
};

/** Why a calibration is in doubt (bits of detect_result.cal_issues). */
enum detect_cal_issue {
	/* the guard replaced artefacts in the window (dsp_chain_set_limit);
	 * the result is robust to them, but the electrodes may need a look */
	DETECT_CAL_ARTEFACTS = 1u << 0,
	/* part of the window was not at rest (a burst, the patient moving): a
	 * 200 ms stretch whose median envelope was above the onset threshold,
	 * or far above the quietest stretch's */
	DETECT_CAL_UNSTEADY = 1u << 1,
	/* the rest level is above DETECT_REST_PLAUSIBLE_UV: not surface EMG at
	 * rest (or source.scale_uv is wrong) */
	DETECT_CAL_HIGH_REST = 1u << 2,
};

/** Rest level (median 5 ms RMS envelope) above which a calibration is in doubt, µV. */
#define DETECT_REST_PLAUSIBLE_UV 100.0

/** Details of a reported edge. */
struct detect_result {
	uint64_t edge_sample;	/* estimated onset/offset sample */
	uint64_t decision_sample;/* sample consumed when it was decided */
	double envelope;	/* the sustained envelope at the decision (the envelope
				 * itself for a cusum onset) */
	double threshold;	/* threshold that was crossed (for a cusum onset, the
				 * envelope level above which evidence piles up) */
	double baseline;
	double spread;
	double off_threshold;	/* the offset threshold in force */
	/* DETECT_CALIBRATED only: */
	unsigned cal_issues;	/* enum detect_cal_issue bits, 0 for a clean window */
	uint64_t cal_artefacts;	/* samples of the window the guard replaced */
	double cal_unsteady_s;	/* seconds of the window not at rest */
};

struct detect;

/**
 * Create a detector for sampling rate fs from cfg->detect.
 * @return 0, -EINVAL (with a message naming the key), -ENOMEM
 */
int detect_create(const struct rpmsd_config *cfg, double fs, struct detect **out,
		  char *err, size_t errlen);

/** Free a detector. Accepts NULL. */
void detect_destroy(struct detect *d);

/**
 * Feed the envelope of sample @sample (consecutive indices).
 * @return the edge decided at this sample (mostly DETECT_NONE); @res is
 *         filled for every other value
 */
enum detect_edge detect_step(struct detect *d, uint64_t sample, float envelope,
			     struct detect_result *res);

/**
 * Words for a calibration's issues (enum detect_cal_issue @issues, with
 * @artefacts samples replaced, @unsteady_s of the window not at rest and
 * rest level @baseline), e.g. "3 artefact samples replaced; 0.4 s of the
 * window not at rest", into @buf (always NUL-terminated); "" for none.
 */
void detect_cal_describe(unsigned issues, uint64_t artefacts, double unsteady_s,
			 double baseline, char *buf, size_t len);

/**
 * The dsp guard replaced sample @sample as an artefact: counted (and
 * reported with the calibration) when it falls in the calibration
 * window. RT-safe.
 */
void detect_note_artefact(struct detect *d, uint64_t sample);

/** Ignore the input for @n samples starting at @from (stimulation artefact). */
void detect_blank(struct detect *d, uint64_t from, uint64_t n);

/**
 * Samples @from .. @from + @lost - 1 never arrived (a gap in the stream),
 * and the envelope needs @settle samples after them to describe the new
 * data only. A rise seen before the gap is dropped (it cannot be
 * confirmed across it), no onset is back-dated into the gap, and nothing
 * is decided until the envelope has settled. A burst in progress stays in
 * progress: its offset comes from the new data. RT-safe.
 */
void detect_gap(struct detect *d, uint64_t from, uint64_t lost, uint64_t settle);

/** Restart calibration with a rest window starting at sample @from.
 * A burst in progress ends silently (no DETECT_OFFSET); until the new
 * window completes there are no onsets and detect_thresholds() returns
 * -EAGAIN. */
void detect_recalibrate(struct detect *d, uint64_t from);

/** True while a burst is in progress (between onset and offset). */
int detect_active(const struct detect *d);

/** The sustained envelope of the last sample fed (for traces); worked out
 * on each call, in a time proportional to detect.sustain_ms / dsp.envelope_ms. */
float detect_sustained_last(const struct detect *d);

/** Baseline and thresholds; -EAGAIN until calibrated. */
int detect_thresholds(const struct detect *d, struct detect_result *out);

#endif /* RPMSD_DETECT_H */
