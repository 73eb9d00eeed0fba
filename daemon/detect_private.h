/* SPDX-License-Identifier: MIT */
/*
 * What detect.c (the state machine) and detect_cal.c (the calibration)
 * share: the detector's state. Private to the two.
 */
#ifndef RPMSD_DETECT_PRIVATE_H
#define RPMSD_DETECT_PRIVATE_H

#include <stdint.h>

#include "detect.h"

/* 1.4826 * MAD estimates the standard deviation for normal data. */
#define DETECT_MAD_SCALE 1.4826
/* Spread floor relative to the baseline, so a flat rest window doesn't
 * give thresholds equal to the baseline itself. */
#define DETECT_SPREAD_FLOOR_REL 1e-3
#define DETECT_SPREAD_FLOOR_ABS 1e-9
#define DETECT_MAX_CAL_SAMPLES 100000000.0
#define DETECT_CAL_RATE 1000.0	/* envelope values per second kept for calibration */
#define DETECT_REST_TAU_S 1.0	/* time constant of the followed rest level */
#define DETECT_EDGE_S 0.5	/* how far back an onset may be dated */
#define DETECT_MAX_SKIP 4
#define DETECT_FOOT_S 0.03	/* a ramp's foot: at most this before the change point */
#define DETECT_SUB_S 0.2	/* stretches of the calibration window checked for rest */
#define DETECT_SUB_RATIO 2.5	/* stretches further apart than this were not all rest */

#define DETECT_MAX_WINDOWS 65535	/* windows in the sustained envelope: a lane field's range */

/*
 * What an envelope value is against the thresholds in force: each a 16-bit
 * field of a uint64_t, 1 or 0 for a value, its count over a lane's values
 * in the lane's sum.
 */
enum detect_flag {
	DETECT_F_NOT_ON = 0,	/* not above the onset threshold */
	DETECT_F_BELOW_OFF,	/* below the offset threshold */
	DETECT_F_AT_MOST_OFF,	/* at or below the offset threshold */
	DETECT_F_NAN,		/* not a number */
};

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
	uint64_t win;		/* envelope window */
	uint64_t n_win;		/* windows in the sustained envelope */
	uint64_t skip;		/* quietest windows it ignores */
	uint64_t cal_len;
	uint64_t on_n;
	uint64_t dip_n;
	uint64_t off_n;
	double k_on, k_off, k_edge;

	/*
	 * Envelope history for the sustained envelope, a ring of hist_cap =
	 * n_win * win values (the newest at hist_pos - 1). Values one window
	 * apart share a "lane" (their count of values fed, mod win); the slots
	 * of a lane are every win-th, so the n_win slots of the newest value's
	 * lane hold exactly the windows of the sustained envelope. Each value
	 * keeps its enum detect_flag fields against the thresholds, and
	 * lane_sum counts them over its lane's slots.
	 */
	float *hist;
	uint64_t *hist_flags;
	uint64_t *lane_sum;
	uint64_t hist_len;	/* the sustained envelope's span: (n_win - 1) * win + 1 */
	uint64_t hist_cap;
	uint64_t hist_pos;	/* next slot to write */
	uint64_t hist_lane;	/* its lane: hist_pos mod win */
	uint64_t hist_filled;	/* values fed, up to hist_len */
	int hist_full;		/* every slot written */
	int flags_ok;		/* hist_flags are against the thresholds in force */

	/* calibration */
	float *cal_env;		/* envelope at rest */
	uint64_t cal_stride;	/* keep every cal_stride-th envelope sample */
	uint64_t cal_want;	/* samples the window holds on that grid */
	uint64_t cal_from;
	uint64_t cal_n;
	uint64_t sub_len;	/* calibration values per DETECT_SUB_S stretch */
	float *sub_med;		/* each stretch's median envelope */
	double cal_dt;		/* seconds per calibration value */
	uint64_t settle_n;	/* the filters' start-up, in samples */
	uint64_t settle_until;	/* first sample after the start-up */
	uint64_t cal_first;	/* sample of cal_env[0] */
	uint64_t cal_skipped;	/* window values left out: the filters' start-up */
	int seen;		/* a sample has been fed */
	uint64_t cal_artefacts;	/* samples of the window the dsp guard replaced */
	unsigned cal_issues;	/* enum detect_cal_issue of the last calibration */
	double cal_unsteady_s;
	int calibrated;
	double baseline, spread, thr_on, thr_off;
	double edge_ratio;	/* edge level / rest mean */
	double rest_mean;	/* mean envelope at rest, followed while quiet */
	double rest_alpha;	/* its update weight per sample */
	/* envelope history for the onset estimate (not blanked samples) */
	float *eh;
	uint64_t *eh_idx;	/* their sample indices */
	uint64_t eh_len, eh_pos, eh_filled;
	uint64_t edge_floor;	/* no onset is dated before this sample */
	uint64_t foot_n;	/* how much earlier a ramp's foot may be */

	/* detect.rule = cusum (detect_cusum()); cus_on is 0 for the sustained rule */
	int cus_on;
	double cus_k;		/* drift, spreads */
	double cus_cap;		/* most evidence per sample (cusum_cap per ms) */
	double cus_h;		/* evidence that decides, spread x ms */
	double cus_dt;		/* ms per sample */
	double cus_scale;	/* median / spread, set by the calibration */
	double cus_ln_base;	/* ln(median) */
	double cus_level;	/* the envelope at which evidence starts to pile up */
	double cus_s;		/* the evidence now */

	/* blanking: [blank_from, blank_end) */
	uint64_t blank_from, blank_end;

	/* onset */
	uint64_t above;		/* samples above on since the candidate began */
	uint64_t dip;		/* current run below on within the candidate */

	/* offset */
	uint64_t below;		/* current run below off while active */
	uint64_t below_from;
};

/*
 * Take one envelope value into the calibration window (every
 * cal_stride-th, the filters' start-up left out). At its last sample set
 * the thresholds from the window (median, MAD, the rest judgement, the
 * CUSUM's units), or start the window again when blanks ate too much of
 * it. @return 1 when the detector is calibrated now, else 0
 */
int detect_cal_step(struct detect *d, uint64_t sample, float env);

#endif /* RPMSD_DETECT_PRIVATE_H */
