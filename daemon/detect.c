/* SPDX-License-Identifier: MIT */
/*
 * Burst detector: robust calibration, then a hysteresis state machine.
 *
 * The state machine does not look at the envelope itself but at the
 * "sustained envelope": the smallest of the envelope values one window
 * apart over the last detect.sustain_ms, i.e. the quietest of several
 * consecutive, non-overlapping envelope windows. A burst keeps all of
 * them up; a transient shorter than sustain_ms minus one window (an
 * electrode pop, a motion spike) leaves at least one of them at rest
 * however large it is, so it is never a burst, without the long
 * confirmation time that a single long window would need. The onset is
 * back-dated on the envelope itself, to the last sample that was within
 * k_edge spreads of its rest level.
 *
 * The state machine only asks whether the sustained envelope is above or
 * below a threshold, and that needs no minimum: it is above as long as
 * no more than skip of its windows are not. So each envelope value is
 * compared with the thresholds once, when it arrives, and the answers are
 * counted per window phase (below); the value itself is worked out only
 * when someone wants it (a decision, a trace).
 *
 * States: WAIT (before the calibration window), CALIBRATING, IDLE,
 * CANDIDATE (above the onset threshold, not confirmed yet) and ACTIVE.
 * Every sample does a constant amount of work, independent of sustain_ms
 * and of the sampling rate. The exceptions, each bounded: the last
 * calibration sample, which runs selections over the calibration buffer
 * (each stretch's median, then the whole window's median and MAD: linear
 * on average, no allocation) and compares the sustained history with the
 * new thresholds; and an onset, whose dating walks back over at most
 * DETECT_EDGE_S of the envelope (twice: the change point, then the foot).
 *
 * Blanked samples are dropped before anything looks at them, so a blank
 * freezes every timer and the calibration collection.
 *
 * detect.rule = cusum decides the onset differently (detect_cusum()): a
 * one-sided CUSUM (Page's) on the envelope's log ratio to the rest
 * median piles up evidence from the first sample a rise stands out, so a
 * burst is decided as soon as enough of it has been seen, not once a
 * fixed span of it has stayed above a fixed level; each millisecond adds
 * at most a capped amount, so a transient still cannot decide alone. The
 * sustained envelope is kept either way: it ends the burst, and says when
 * the rest level may be followed.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "detect.h"
#include "dsp.h"

#include "detect_private.h"


static uint64_t detect_ms_to_samples(double ms, double fs)
{
	return (uint64_t)llround(ms * fs / 1000.0);
}

static int detect_fail(char *err, size_t errlen, const char *key, double v,
		       const char *why)
{
	snprintf(err, errlen, "%s: %g: %s", key, v, why);
	return -EINVAL;
}

int detect_create(const struct rpmsd_config *cfg, double fs, struct detect **out,
		  char *err, size_t errlen)
{
	const double cal_s = cfg->detect.calibration_s;
	const double start_s = cfg->detect.calibration_start_s;
	struct detect *d;
	double cal_len;

	if (!(fs > 0.0) || !isfinite(fs)) {
		return detect_fail(err, errlen, "sampling rate", fs, "must be > 0");
	}
	if (!(start_s >= 0.0) || start_s * fs > DETECT_MAX_CAL_SAMPLES) {
		return detect_fail(err, errlen, "detect.calibration_start_s", start_s,
				   "must be >= 0 and within 1e8 samples");
	}
	cal_len = round(cal_s * fs);
	if (!(cal_len >= 2.0) || cal_len > DETECT_MAX_CAL_SAMPLES) {
		return detect_fail(err, errlen, "detect.calibration_s", cal_s,
				   "must cover 2 to 1e8 samples");
	}
	if (!(cfg->detect.k_on > 0.0) || !isfinite(cfg->detect.k_on)) {
		return detect_fail(err, errlen, "detect.k_on", cfg->detect.k_on,
				   "must be > 0");
	}
	if (!(cfg->detect.k_off >= 0.0) ||
	    !config_rule_hysteresis(cfg->detect.k_off, cfg->detect.k_on)) {
		return detect_fail(err, errlen, "detect.k_off", cfg->detect.k_off,
				   "must be >= 0 and below detect.k_on");
	}
	if (!(cfg->detect.on_ms >= 0.0) || !isfinite(cfg->detect.on_ms)) {
		return detect_fail(err, errlen, "detect.on_ms", cfg->detect.on_ms,
				   "must be >= 0");
	}
	if (!(cfg->detect.dip_ms >= 0.0) || !isfinite(cfg->detect.dip_ms)) {
		return detect_fail(err, errlen, "detect.dip_ms", cfg->detect.dip_ms,
				   "must be >= 0");
	}
	if (!(cfg->detect.off_ms >= 0.0) || !isfinite(cfg->detect.off_ms)) {
		return detect_fail(err, errlen, "detect.off_ms", cfg->detect.off_ms,
				   "must be >= 0");
	}
	if (cfg->detect.rule == CONFIG_RULE_CUSUM &&
	    (!(cfg->detect.cusum_k >= 0.0) || !isfinite(cfg->detect.cusum_k))) {
		return detect_fail(err, errlen, "detect.cusum_k", cfg->detect.cusum_k,
				   "must be >= 0");
	}
	if (cfg->detect.rule == CONFIG_RULE_CUSUM &&
	    (!(cfg->detect.cusum_cap > 0.0) || !isfinite(cfg->detect.cusum_cap))) {
		return detect_fail(err, errlen, "detect.cusum_cap", cfg->detect.cusum_cap,
				   "must be > 0");
	}
	if (cfg->detect.rule == CONFIG_RULE_CUSUM &&
	    (!(cfg->detect.cusum_h > 0.0) || !isfinite(cfg->detect.cusum_h))) {
		return detect_fail(err, errlen, "detect.cusum_h", cfg->detect.cusum_h,
				   "must be > 0");
	}
	/* Each window's count must fit a field of a lane's sum. */
	if (cfg->dsp.envelope_ms > 0.0 &&
	    !(cfg->detect.sustain_ms / cfg->dsp.envelope_ms < DETECT_MAX_WINDOWS)) {
		return detect_fail(err, errlen, "detect.sustain_ms", cfg->detect.sustain_ms,
				   "spans more than 65535 windows of dsp.envelope_ms");
	}

	d = calloc(1, sizeof(*d));
	if (!d) {
		goto err_nomem;
	}
	d->cal_len = (uint64_t)cal_len;
	/*
	 * The envelope changes no faster than its window allows, so about
	 * 1 kHz of it is enough for the median and MAD. Keeping no more bounds
	 * the buffer (and the selection at the end of the window, which runs
	 * on the acquire thread) at any sampling rate: 600 s at 100 kHz is
	 * 600,000 values, not 60 million.
	 */
	d->cal_stride = fs > DETECT_CAL_RATE ? (uint64_t)floor(fs / DETECT_CAL_RATE) : 1;
	d->cal_want = (d->cal_len + d->cal_stride - 1) / d->cal_stride;
	d->cal_dt = (double)d->cal_stride / fs;
	d->sub_len = (uint64_t)llround(DETECT_SUB_S / d->cal_dt);
	if (d->sub_len < 1) {
		d->sub_len = 1;
	}
	/* Hum leaks through until the mains canceller has caught it, and the
	 * high-pass needs two periods of its corner (dsp_chain_settle_s). */
	d->settle_n = (uint64_t)llround(dsp_chain_settle_s(cfg) * fs);
	d->win = detect_ms_to_samples(cfg->dsp.envelope_ms, fs);
	if (d->win < 1) {
		d->win = 1;
	}
	d->n_win = (uint64_t)llround(cfg->detect.sustain_ms / cfg->dsp.envelope_ms);
	if (!(cfg->dsp.envelope_ms > 0.0) || d->n_win < 1) {
		d->n_win = 1;
	}
	d->hist_len = (d->n_win - 1) * d->win + 1;
	d->hist_cap = d->n_win * d->win;
	d->skip = (uint64_t)cfg->detect.sustain_skip;
	if (d->skip > DETECT_MAX_SKIP) {
		d->skip = DETECT_MAX_SKIP;
	}
	if (d->skip >= d->n_win) {
		d->skip = d->n_win - 1;
	}
	d->eh_len = (uint64_t)ceil(DETECT_EDGE_S * fs) + 1;
	d->foot_n = (uint64_t)llround(DETECT_FOOT_S * fs);
	d->cal_env = calloc(d->cal_want, sizeof(*d->cal_env));
	d->hist = calloc(d->hist_cap, sizeof(*d->hist));
	d->hist_flags = calloc(d->hist_cap, sizeof(*d->hist_flags));
	d->lane_sum = calloc(d->win, sizeof(*d->lane_sum));
	d->eh = calloc(d->eh_len, sizeof(*d->eh));
	d->eh_idx = calloc(d->eh_len, sizeof(*d->eh_idx));
	d->sub_med = calloc(d->cal_want / d->sub_len + 1, sizeof(*d->sub_med));
	if (!d->cal_env || !d->hist || !d->hist_flags || !d->lane_sum || !d->eh || !d->eh_idx ||
	    !d->sub_med) {
		goto err_free;
	}
	memset(d->sub_med, 0, (d->cal_want / d->sub_len + 1) * sizeof(*d->sub_med));
	memset(d->eh, 0, d->eh_len * sizeof(*d->eh));
	memset(d->eh_idx, 0, d->eh_len * sizeof(*d->eh_idx));
	/* Touch every page now so the RT thread never faults one in. */
	memset(d->cal_env, 0, d->cal_want * sizeof(*d->cal_env));
	memset(d->hist, 0, d->hist_cap * sizeof(*d->hist));
	memset(d->hist_flags, 0, d->hist_cap * sizeof(*d->hist_flags));
	memset(d->lane_sum, 0, d->win * sizeof(*d->lane_sum));

	d->k_on = cfg->detect.k_on;
	d->k_off = cfg->detect.k_off;
	d->k_edge = cfg->detect.k_edge;
	d->rest_alpha = 1.0 / (DETECT_REST_TAU_S * fs);
	d->cus_on = cfg->detect.rule == CONFIG_RULE_CUSUM;
	d->cus_k = cfg->detect.cusum_k;
	d->cus_dt = 1000.0 / fs;
	d->cus_cap = cfg->detect.cusum_cap * d->cus_dt;
	d->cus_h = cfg->detect.cusum_h;
	/* At least one sample each: a zero timer would decide on nothing. */
	d->on_n = detect_ms_to_samples(cfg->detect.on_ms, fs);
	if (d->on_n < 1) {
		d->on_n = 1;
	}
	d->dip_n = detect_ms_to_samples(cfg->detect.dip_ms, fs);
	d->off_n = detect_ms_to_samples(cfg->detect.off_ms, fs);
	if (d->off_n < 1) {
		d->off_n = 1;
	}
	detect_recalibrate(d, (uint64_t)llround(start_s * fs));
	*out = d;
	return 0;

err_free:
	free(d->sub_med);
	free(d->eh_idx);
	free(d->eh);
	free(d->lane_sum);
	free(d->hist_flags);
	free(d->hist);
	free(d->cal_env);
	free(d);
err_nomem:
	snprintf(err, errlen, "out of memory for the calibration buffer");
	return -ENOMEM;
}

void detect_destroy(struct detect *d)
{
	if (!d) {
		return;
	}
	free(d->sub_med);
	free(d->eh_idx);
	free(d->eh);
	free(d->lane_sum);
	free(d->hist_flags);
	free(d->hist);
	free(d->cal_env);
	free(d);
}

/*
 * Page's one-sided CUSUM: S = max(0, S + u), with u the envelope's
 * excess over the drift cusum_k (in the units above) per millisecond,
 * clipped to +-cusum_cap. S is the largest sum of u over any stretch
 * ending now, so it is above cusum_h exactly when some recent stretch has
 * piled up that much evidence: a strong rise needs a short one, a weak
 * rise a long one, and rest (below the drift on average) drains it. The
 * cap bounds what any short stretch can add, whatever its height: a
 * transient must last cusum_h / cusum_cap ms to decide alone. An envelope
 * at or below zero, or NaN, drains it at the cap. @return whether S is
 * above cusum_h
 */
static inline int detect_cusum(struct detect *d, float env)
{
	double u = -d->cus_cap;

	if (env > 0.0f) {
		u = (d->cus_scale * (log((double)env) - d->cus_ln_base) - d->cus_k) * d->cus_dt;
		if (u > d->cus_cap) {
			u = d->cus_cap;
		} else if (u < -d->cus_cap) {
			u = -d->cus_cap;
		}
	}
	d->cus_s += u;
	if (d->cus_s < 0.0) {
		d->cus_s = 0.0;
	}
	return d->cus_s > d->cus_h;
}

static void detect_fill(const struct detect *d, struct detect_result *res,
			uint64_t edge, uint64_t sample, float envelope,
			double threshold)
{
	res->edge_sample = edge;
	res->decision_sample = sample;
	res->envelope = envelope;
	res->threshold = threshold;
	res->baseline = d->baseline;
	res->spread = d->spread;
	res->off_threshold = d->thr_off;
	res->cal_issues = d->cal_issues;
	res->cal_artefacts = d->cal_artefacts;
	res->cal_unsteady_s = d->cal_unsteady_s;
}


/*
 * A ramp's foot: the envelope of rest noise plus a linearly rising burst
 * is sqrt(rest^2 + (a t)^2), a hyperbola; taking the rest level out,
 * sqrt(env^2 - rest^2), leaves the burst's own amplitude, a straight line
 * that meets zero where the ramp starts. A line fitted to that over the
 * rise (change point to decision) and taken down to zero dates a slow
 * onset earlier than any level crossing can. (Fitted to the envelope
 * itself, the hyperbola's flat start tilted the line and the foot came
 * late: median |onset error| 13-18 ms on the injected sets, 8-14 ms now.)
 * It may only move the change point earlier, by at most DETECT_FOOT_S,
 * and only when the fit rises: a step's plateau fits flat and leaves the
 * change point as is.
 */
/* Slot of the newest value in the envelope history. */
static inline uint64_t detect_eh_newest(const struct detect *d)
{
	return d->eh_pos ? d->eh_pos - 1 : d->eh_len - 1;
}

/* Slot of the value before the one in slot @idx (no division: this runs
 * over the whole history at an onset). */
static inline uint64_t detect_eh_prev(const struct detect *d, uint64_t idx)
{
	return idx ? idx - 1 : d->eh_len - 1;
}

static uint64_t detect_ramp_foot(const struct detect *d, uint64_t decision, uint64_t edge,
				 uint64_t kedge)
{
	double n = (double)kedge, st = 0.0, sy = 0.0, stt = 0.0, sty = 0.0, slope, icpt, t0;
	uint64_t k, idx = detect_eh_newest(d), foot, back;

	for (k = 1; k <= kedge; k++, idx = detect_eh_prev(d, idx)) {
		double t, y;

		y = (double)d->eh[idx] * d->eh[idx] - d->rest_mean * d->rest_mean;
		y = y > 0.0 ? sqrt(y) : 0.0;
		t = -(double)(decision - d->eh_idx[idx]);
		st += t;
		sy += y;
		stt += t * t;
		sty += t * y;
	}
	if (n < 5.0 || !(n * stt - st * st > 0.0)) {
		return edge;
	}
	slope = (n * sty - st * sy) / (n * stt - st * st);
	icpt = (sy - slope * st) / n;
	if (!(slope > 0.0)) {
		return edge;
	}
	t0 = -icpt / slope;	/* relative to the decision, negative */
	if (!(t0 < -(double)(decision - edge)) || t0 < -(double)(decision - edge) - d->foot_n) {
		return edge;
	}
	back = (uint64_t)llround(-t0);
	foot = back > decision ? 0 : decision - back;
	/* Never into a gap, before the recording or before the previous burst ended. */
	return foot < d->edge_floor ? d->edge_floor : foot;
}

/*
 * Where the burst just decided began: the start of the most recent stretch
 * whose envelope, summed backwards from the decision, stands highest above
 * the edge level (rest level x edge_ratio), i.e. the least-squares change
 * point for a rise in level, using only the envelope up to now. Unlike the
 * last sample below a threshold it finds the foot of a slow ramp, and
 * unlike a running CUSUM it cannot be dragged back by rest wobbles long
 * before. O(history) once per burst, no allocation.
 */
static uint64_t detect_edge(const struct detect *d, uint64_t decision)
{
	double ref = d->rest_mean * d->edge_ratio, sum = 0.0, best = 0.0;
	uint64_t k, idx = detect_eh_newest(d), edge = decision, kedge = 0;

	if (!(ref > 0.0)) {
		return decision;
	}
	for (k = 1; k <= d->eh_filled; k++, idx = detect_eh_prev(d, idx)) {
		if (d->eh_idx[idx] < d->edge_floor) {
			break;
		}
		sum += (double)d->eh[idx] / ref - 1.0;
		if (sum > best) {
			best = sum;
			edge = d->eh_idx[idx];
			kedge = k;
		}
	}
	return detect_ramp_foot(d, decision, edge, kedge);
}

/*
 * The sustained envelope: of the n_win envelope values one window apart
 * ending now, the (skip + 1)-th quietest. Ignoring the quietest @skip
 * windows rides over the troughs of a short window's ripple inside a
 * burst; a transient still has to raise n_win - skip windows, i.e. last
 * (n_win - skip - 1) windows or more, to count. O(n_win): only for
 * decisions, traces and a lane that holds a NaN.
 */
static float detect_sustained(const struct detect *d)
{
	float low[DETECT_MAX_SKIP + 1];
	uint64_t j, idx, n = 1, k, m;

	if (d->hist_filled == 0) {
		return 0.0f;
	}
	idx = d->hist_pos ? d->hist_pos - 1 : d->hist_cap - 1;
	/* The skip + 1 smallest so far, ascending (a short insertion sort). */
	low[0] = d->hist[idx];
	for (j = 1; j < d->n_win && j * d->win < d->hist_filled; j++) {
		float v;

		idx = idx >= d->win ? idx - d->win : idx + d->hist_cap - d->win;
		v = d->hist[idx];
		m = n <= d->skip ? n : d->skip + 1;
		if (m == d->skip + 1 && v >= low[d->skip]) {
			continue;
		}
		for (k = m < d->skip + 1 ? m : d->skip; k > 0 && low[k - 1] > v; k--) {
			low[k] = low[k - 1];
		}
		low[k] = v;
		n++;
	}
	/* While the history is short, the largest of what there is. */
	return low[(n - 1 < d->skip ? n - 1 : d->skip)];
}

/* @env's enum detect_flag fields against the thresholds in force. */
static inline uint64_t detect_flags(const struct detect *d, float env)
{
	const double e = env;

	return (uint64_t)!(e > d->thr_on) << 16 * DETECT_F_NOT_ON |
	       (uint64_t)!(e >= d->thr_off) << 16 * DETECT_F_BELOW_OFF |
	       (uint64_t)(e <= d->thr_off) << 16 * DETECT_F_AT_MOST_OFF |
	       (uint64_t)(isnan(env) != 0) << 16 * DETECT_F_NAN;
}

/* The count of flag @flag in a lane's sum. */
static inline unsigned detect_count(uint64_t sum, enum detect_flag flag)
{
	return (unsigned)(sum >> 16 * flag) & 0xffffu;
}

/* Flag the whole history against new thresholds. O(hist_cap), once per calibration. */
static void detect_reflag(struct detect *d)
{
	uint64_t i;

	memset(d->lane_sum, 0, d->win * sizeof(*d->lane_sum));
	for (i = 0; i < d->hist_cap; i++) {
		d->hist_flags[i] = detect_flags(d, d->hist[i]);
		d->lane_sum[i % d->win] += d->hist_flags[i];
	}
	d->flags_ok = 1;
}

/*
 * The lane's sum of the value just fed, as the counts that tell where its
 * sustained envelope stands against the thresholds (detect_above_on() and
 * the like). The counts cannot tell while the history is not full yet
 * (the sustained envelope is then taken over fewer windows) or while the
 * lane holds a NaN (it compares false either way, so where it falls in the
 * insertion sort depends on the order): then the sustained envelope
 * itself, flagged, with skip + 1 for each flag set, says what
 * detect_sustained() compared with the thresholds would.
 */
static inline uint64_t detect_level(const struct detect *d, uint64_t sum)
{
	if (d->hist_full && detect_count(sum, DETECT_F_NAN) == 0) {
		return sum;
	}
	return detect_flags(d, detect_sustained(d)) * (d->skip + 1);
}

/*
 * The (skip + 1)-th smallest of a lane's values (none of them NaN) is above
 * a threshold when no more than skip of them are not, at or above it when
 * no more than skip are below, and at most it when more than skip of them
 * are. The fields count the very comparisons the value would be put to
 * (as a double, against the same thresholds), so a value equal to a
 * threshold counts as it would be judged.
 */
static inline int detect_above_on(const struct detect *d, uint64_t level)
{
	return detect_count(level, DETECT_F_NOT_ON) <= d->skip;
}

static inline int detect_at_least_off(const struct detect *d, uint64_t level)
{
	return detect_count(level, DETECT_F_BELOW_OFF) <= d->skip;
}

static inline int detect_at_most_off(const struct detect *d, uint64_t level)
{
	return detect_count(level, DETECT_F_AT_MOST_OFF) > d->skip;
}

/*
 * Whether the onset rule holds at this sample: the sustained envelope
 * above the onset threshold, or the CUSUM's evidence above cusum_h (which
 * this updates: call it once per sample while not ACTIVE).
 */
static inline int detect_onset_holds(struct detect *d, float env, uint64_t level)
{
	return d->cus_on ? detect_cusum(d, env) : detect_above_on(d, level);
}

static enum detect_edge detect_candidate_step(struct detect *d, uint64_t sample, float env,
					      int above_on, struct detect_result *res)
{
	if (above_on) {
		d->dip = 0;
		if (++d->above < d->on_n) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_ACTIVE;
		d->below = 0;
		/* A burst's evidence is spent on it; the next one starts from nothing. */
		d->cus_s = 0.0;
		if (d->cus_on) {
			detect_fill(d, res, detect_edge(d, sample), sample, env, d->cus_level);
		} else {
			detect_fill(d, res, detect_edge(d, sample), sample, detect_sustained(d),
				    d->thr_on);
		}
		return DETECT_ONSET;
	}
	/* A dip of dip_ms or longer means the rise did not hold. */
	if (++d->dip >= d->dip_n) {
		d->state = DETECT_S_IDLE;
	}
	return DETECT_NONE;
}

/* Add @env to the sustained history; @return its lane's sum. */
static inline uint64_t detect_push(struct detect *d, float env)
{
	const uint64_t pos = d->hist_pos, lane = d->hist_lane;
	const uint64_t f = detect_flags(d, env);
	/* That slot held the value n_win windows back, now out of the lane. */
	const uint64_t sum = d->lane_sum[lane] + f - d->hist_flags[pos];

	d->lane_sum[lane] = sum;
	d->hist[pos] = env;
	d->hist_flags[pos] = f;
	d->hist_lane = lane + 1 == d->win ? 0 : lane + 1;
	if (pos + 1 == d->hist_cap) {
		d->hist_pos = 0;
		d->hist_full = 1;
	} else {
		d->hist_pos = pos + 1;
	}
	if (d->hist_filled < d->hist_len) {
		d->hist_filled++;
	}
	return sum;
}

enum detect_edge detect_step(struct detect *d, uint64_t sample, float env,
			     struct detect_result *res)
{
	uint64_t level, pos;

	if (!d->seen) {
		d->seen = 1;
		d->settle_until = sample + d->settle_n;
	}
	if (sample >= d->blank_from && sample < d->blank_end) {
		return DETECT_NONE;
	}
	level = detect_push(d, env);
	if (!d->calibrated) {
		if (d->state == DETECT_S_WAIT) {
			if (sample < d->cal_from) {
				return DETECT_NONE;
			}
			d->state = DETECT_S_CALIBRATING;
		}
		if (!detect_cal_step(d, sample, env)) {
			return DETECT_NONE;
		}
		/* The sustained envelope is reported with the calibration only. */
		detect_fill(d, res, sample, sample, detect_sustained(d), d->thr_on);
		return DETECT_CALIBRATED;
	}
	if (!d->flags_ok) {
		detect_reflag(d);
		level = d->lane_sum[d->hist_lane ? d->hist_lane - 1 : d->win - 1];
	}
	level = detect_level(d, level);
	if (d->state != DETECT_S_ACTIVE) {
		/*
		 * The rest level drifts (tone, electrode contact): follow it
		 * while the sustained envelope is quiet, slowly enough that a
		 * ramp does not drag it along.
		 */
		if (d->state == DETECT_S_IDLE && detect_at_most_off(d, level)) {
			d->rest_mean += d->rest_alpha * ((double)env - d->rest_mean);
		}
		pos = d->eh_pos;
		d->eh[pos] = env;
		d->eh_idx[pos] = sample;
		d->eh_pos = pos + 1 == d->eh_len ? 0 : pos + 1;
		if (d->eh_filled < d->eh_len) {
			d->eh_filled++;
		}
	}

	switch (d->state) {
	case DETECT_S_WAIT:
	case DETECT_S_CALIBRATING:
		/* not calibrated: handled above */
		return DETECT_NONE;

	case DETECT_S_IDLE:
		if (detect_onset_holds(d, env, level)) {
			d->above = 0;
			d->dip = 0;
			d->state = DETECT_S_CANDIDATE;
			return detect_candidate_step(d, sample, env, 1, res);
		}
		return DETECT_NONE;

	case DETECT_S_CANDIDATE:
		return detect_candidate_step(d, sample, env, detect_onset_holds(d, env, level), res);

	case DETECT_S_ACTIVE:
		if (detect_at_least_off(d, level)) {
			d->below = 0;
			return DETECT_NONE;
		}
		if (d->below++ == 0) {
			d->below_from = sample;
		}
		if (d->below < d->off_n) {
			return DETECT_NONE;
		}
		d->state = DETECT_S_IDLE;
		/* The next burst starts after this one has ended. */
		d->edge_floor = sample + 1;
		detect_fill(d, res, d->below_from, sample, detect_sustained(d), d->thr_off);
		return DETECT_OFFSET;
	}
	return DETECT_NONE;
}

void detect_note_artefact(struct detect *d, uint64_t sample)
{
	if ((d->state == DETECT_S_WAIT || d->state == DETECT_S_CALIBRATING) &&
	    sample >= d->cal_from && sample - d->cal_from < d->cal_len) {
		d->cal_artefacts++;
	}
}

void detect_blank(struct detect *d, uint64_t from, uint64_t n)
{
	uint64_t end = from + n;

	if (n == 0) {
		return;
	}
	if (end < from) {
		end = UINT64_MAX;
	}
	/* Pulses of a train come in order and their blanks overlap or touch:
	 * merge them, otherwise the newer window replaces the older one. */
	if (from >= d->blank_from && from <= d->blank_end) {
		if (end > d->blank_end) {
			d->blank_end = end;
		}
		return;
	}
	d->blank_from = from;
	d->blank_end = end;
}

void detect_gap(struct detect *d, uint64_t from, uint64_t lost, uint64_t settle)
{
	if (d->state == DETECT_S_CANDIDATE) {
		d->state = DETECT_S_IDLE;
	}
	/* Nor is evidence carried across it. */
	d->cus_s = 0.0;
	/* No onset is dated into the gap or before it. */
	d->edge_floor = from + lost;
	/* The filters start again after it (bank_gap). */
	d->settle_until = from + lost + d->settle_n;
	detect_blank(d, from, lost + settle);
}

/*
 * A burst in progress ends silently (no DETECT_OFFSET is reported): the
 * caller asked for a fresh start and knows it. Until the new window has
 * been collected the detector is uncalibrated: no onsets, and
 * detect_thresholds() returns -EAGAIN.
 */
void detect_recalibrate(struct detect *d, uint64_t from)
{
	d->state = DETECT_S_WAIT;
	d->cal_from = from;
	d->cal_n = 0;
	d->cal_skipped = 0;
	d->cal_artefacts = 0;
	d->calibrated = 0;
	d->flags_ok = 0;
	d->edge_floor = from;
	d->eh_filled = 0;
	d->above = 0;
	d->dip = 0;
	d->below = 0;
	d->cus_s = 0.0;
}

int detect_active(const struct detect *d)
{
	return d->state == DETECT_S_ACTIVE;
}

int detect_thresholds(const struct detect *d, struct detect_result *out)
{
	if (!d->calibrated) {
		return -EAGAIN;
	}
	memset(out, 0, sizeof(*out));
	out->baseline = d->baseline;
	out->spread = d->spread;
	out->threshold = d->thr_on;
	out->off_threshold = d->thr_off;
	return 0;
}

float detect_sustained_last(const struct detect *d)
{
	return detect_sustained(d);
}
