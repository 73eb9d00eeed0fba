/* SPDX-License-Identifier: MIT */
/*
 * Throughput of the whole per-channel detector against a bare filter floor.
 *
 * Four kernels walk the same interleaved input (8 floats per frame, frame
 * after frame, as the acquire thread sees a block) with the same loop:
 *
 *  - detector: dsp_chain_step() then detect_step() for every sample of
 *    every channel, the per-sample work of the acquire thread
 *    (bank_process() in daemon/bank.c), without its artefact hold (one
 *    store per sample) and its channel rule (run on edges only);
 *  - dsp only: dsp_chain_step() alone, to split the detector's cost, and
 *    once more with dsp.mains_hz = 0, to show the mains canceller's share;
 *  - floor: a bare cascade of 4 second-order sections (8th order: the
 *    Butterworth high-pass and low-pass pairs of the default band-pass),
 *    transposed direct form II in double precision like dsp.c, one state
 *    per channel, compiled here with the same flags.
 *
 * Every kernel adds its per-sample output into one accumulator per channel,
 * summed into a volatile sink at the end, so none can be optimised away.
 *
 * The input is seeded synthetic EMG: Gaussian rest noise on a 2048-count
 * offset for the calibration window plus one second, then 30 s of bursts
 * (amplitude-modulated noise with linear ramps), a different schedule and
 * seed on every channel. The detectors calibrate on the rest part before
 * any timing starts (calibration is excluded); the timed repetitions loop
 * the burst part, so onsets and offsets go on all the time. The run fails
 * if a channel did not calibrate or saw no onset and no offset.
 *
 * Each repetition runs one kernel for at least BENCH_MIN_REP_S of CPU
 * time (CLOCK_THREAD_CPUTIME_ID; wall time from CLOCK_MONOTONIC is shown
 * too). Repetitions of the kernels alternate, so a slow spell of the host
 * hits all of them. The process pins itself to the CPU it starts on.
 *
 * Then the worst block the acquire thread can meet: the per-sample work is
 * the same on every sample except an onset's, whose dating walks back over
 * the envelope history (up to 0.5 s of it, twice: the change point, then
 * the ramp's foot). bench_worst() makes every channel decide an onset in
 * the same block of BENCH_BLOCK frames, each walking the whole history both
 * times, and times such blocks (CLOCK_MONOTONIC around each, as
 * bench_pipeline) against the blocks around them.
 *
 * With the argument "cusum" the detector runs detect.rule = cusum (the
 * CUSUM onset rule, docs/detection.md) instead of the default, for the
 * throughput only: its onsets are dated by the same walk, so the worst
 * block is the one measured with the default.
 *
 * It is a report, not a test: the exit status is 0 whether the target
 * (detector within BENCH_TARGET_RATIO of the floor) is met or not, and 1
 * only if the measurement itself failed.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "config.h"
#include "detect.h"
#include "dsp.h"

#define BENCH_SECTIONS 4	/* floor: 8th order */
#define BENCH_REPS 9
#define BENCH_MIN_REP_S 0.3	/* CPU seconds per repetition, at least */
#define BENCH_AIM_REP_S 0.4	/* what the probe sizes a repetition for */
#define BENCH_PROBE_S 0.05
#define BENCH_TARGET_RATIO 3.0
#define BENCH_LOWPASS_MAX_FRAC 0.45	/* as dsp_chain_create clamps it */
#define BENCH_BLOCK 8		/* frames per block: source.block_frames' default */
#define BENCH_WORST_REPS 300	/* worst-case blocks timed per rate */

enum bench_kernel {
	BENCH_FLOOR = 0,
	BENCH_DSP,
	BENCH_DSP_NOHUM,
	BENCH_DETECTOR,
	BENCH_N_KERNELS,
};

static const char *const bench_kernel_name[BENCH_N_KERNELS] = {
	[BENCH_FLOOR] = "floor: 4 biquads",
	[BENCH_DSP] = "dsp_chain_step only",
	[BENCH_DSP_NOHUM] = "dsp, mains_hz = 0",
	[BENCH_DETECTOR] = "detector: dsp + detect",
};

static volatile double bench_sink;

/* ---- kernels ------------------------------------------------------------ */

/* The floor's section: the same arithmetic as dsp_biquad_step(). */
struct bench_biquad {
	double b0, b1, b2, a1, a2;
	double s1, s2;
};

static inline double bench_biquad_step(struct bench_biquad *bq, double x)
{
	double y = bq->b0 * x + bq->s1;

	bq->s1 = bq->b1 * x - bq->a1 * y + bq->s2;
	bq->s2 = bq->b2 * x - bq->a2 * y;
	return y;
}

/* RBJ cookbook high-pass (hp != 0) or low-pass section. */
static void bench_biquad_design(struct bench_biquad *bq, double fs, double fc,
				double q, int hp)
{
	double w0 = 2.0 * M_PI * fc / fs;
	double c = cos(w0), alpha = sin(w0) / (2.0 * q);
	double a0 = 1.0 + alpha;
	double b0 = hp ? (1.0 + c) / 2.0 : (1.0 - c) / 2.0;

	memset(bq, 0, sizeof(*bq));
	bq->b0 = b0 / a0;
	bq->b1 = (hp ? -2.0 * b0 : 2.0 * b0) / a0;
	bq->b2 = b0 / a0;
	bq->a1 = -2.0 * c / a0;
	bq->a2 = (1.0 - alpha) / a0;
}

struct bench_state {
	enum bench_kernel kind;
	const struct bench_input *in;
	size_t pos;		/* next frame of the body */
	uint64_t sample;	/* next sample index */
	struct dsp_chain *dsp[BENCH_CHANNELS];
	struct detect *det[BENCH_CHANNELS];
	struct bench_biquad sec[BENCH_CHANNELS][BENCH_SECTIONS];
	unsigned long edges[BENCH_CHANNELS][DETECT_OFFSET + 1];
	double acc[BENCH_CHANNELS];
};

static void bench_run_floor(struct bench_state *s, const float *x, size_t frames)
{
	size_t i;
	unsigned ch;
	int k;

	for (i = 0; i < frames; i++) {
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			double y = x[i * BENCH_CHANNELS + ch];

			for (k = 0; k < BENCH_SECTIONS; k++) {
				y = bench_biquad_step(&s->sec[ch][k], y);
			}
			s->acc[ch] += y;
		}
	}
}

static void bench_run_dsp(struct bench_state *s, const float *x, size_t frames)
{
	size_t i;
	unsigned ch;

	for (i = 0; i < frames; i++) {
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			float env = dsp_chain_step(s->dsp[ch], x[i * BENCH_CHANNELS + ch], NULL);

			s->acc[ch] += env;
		}
	}
}

static void bench_run_detector(struct bench_state *s, const float *x, size_t frames)
{
	struct detect_result r;
	uint64_t sample = s->sample;
	size_t i;
	unsigned ch;

	for (i = 0; i < frames; i++, sample++) {
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			float env = dsp_chain_step(s->dsp[ch], x[i * BENCH_CHANNELS + ch], NULL);
			enum detect_edge e = detect_step(s->det[ch], sample, env, &r);

			if (e != DETECT_NONE) {
				s->edges[ch][e]++;
			}
			s->acc[ch] += env;
		}
	}
}

static void bench_run_chunk(struct bench_state *s, const float *x, size_t frames)
{
	switch (s->kind) {
	case BENCH_FLOOR:
		bench_run_floor(s, x, frames);
		break;
	case BENCH_DSP:
	case BENCH_DSP_NOHUM:
		bench_run_dsp(s, x, frames);
		break;
	case BENCH_DETECTOR:
		bench_run_detector(s, x, frames);
		break;
	case BENCH_N_KERNELS:
		break;
	}
	s->sample += frames;
}

/* Run @frames frames of the body from where the last call stopped. */
static void bench_run(struct bench_state *s, size_t frames)
{
	const float *body = s->in->buf + s->in->rest_frames * BENCH_CHANNELS;

	while (frames) {
		size_t n = s->in->body_frames - s->pos;

		if (n > frames) {
			n = frames;
		}
		bench_run_chunk(s, body + s->pos * BENCH_CHANNELS, n);
		s->pos = (s->pos + n) % s->in->body_frames;
		frames -= n;
	}
}

static int bench_state_init(struct bench_state *s, enum bench_kernel kind,
			    const struct rpmsd_config *cfg, const struct bench_input *in)
{
	double lp = cfg->dsp.lowpass_hz;
	struct rpmsd_config nohum = *cfg;	/* the chain without its mains canceller */
	char err[CONFIG_ERR_MAX];
	unsigned ch;
	int k;

	nohum.dsp.mains_hz = 0;
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->in = in;
	if (lp > BENCH_LOWPASS_MAX_FRAC * in->fs) {
		lp = BENCH_LOWPASS_MAX_FRAC * in->fs;
	}
	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		for (k = 0; k < BENCH_SECTIONS / 2; k++) {
			/* Butterworth Q of pole pair k of the order-4 prototype */
			double q = 1.0 / (2.0 * sin(M_PI * (2.0 * k + 1.0) / 8.0));

			bench_biquad_design(&s->sec[ch][k], in->fs, cfg->dsp.highpass_hz, q, 1);
			bench_biquad_design(&s->sec[ch][BENCH_SECTIONS / 2 + k], in->fs, lp, q, 0);
		}
		if (kind == BENCH_FLOOR) {
			continue;
		}
		if (dsp_chain_create(kind == BENCH_DSP_NOHUM ? &nohum : cfg, in->fs, &s->dsp[ch],
				     err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_detect: dsp_chain_create: %s\n", err);
			return -1;
		}
		if (kind == BENCH_DETECTOR &&
		    detect_create(cfg, in->fs, &s->det[ch], err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_detect: detect_create: %s\n", err);
			return -1;
		}
	}
	/* The rest part: the detectors calibrate here, untimed. */
	bench_run_chunk(s, in->buf, in->rest_frames);
	return 0;
}

static void bench_state_fini(struct bench_state *s)
{
	unsigned ch;

	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		detect_destroy(s->det[ch]);
		dsp_chain_destroy(s->dsp[ch]);
	}
}

/* ---- timing ------------------------------------------------------------- */

/* Run @frames frames; CPU and wall seconds they took. */
static void bench_time(struct bench_state *s, size_t frames, double *cpu, double *wall)
{
	double w0 = bench_clock(CLOCK_MONOTONIC);
	double c0 = bench_clock(CLOCK_THREAD_CPUTIME_ID);

	bench_run(s, frames);
	*cpu = bench_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
	*wall = bench_clock(CLOCK_MONOTONIC) - w0;
}

/* Frames for one repetition of about BENCH_AIM_REP_S; warms the kernel up. */
static size_t bench_size(struct bench_state *s)
{
	size_t frames = 1000;
	double cpu, wall;

	for (;;) {
		bench_time(s, frames, &cpu, &wall);
		if (cpu >= BENCH_PROBE_S || !(cpu >= 0.0) || frames > SIZE_MAX / 4) {
			break;
		}
		frames *= 2;
	}
	if (!(cpu > 0.0)) {
		return 0;
	}
	return (size_t)ceil((double)frames * BENCH_AIM_REP_S / cpu);
}

struct bench_stats {
	double med, min, max;	/* channel-samples per CPU second */
	double wall_med;	/* channel-samples per wall second */
	double rep_min_s;	/* shortest repetition, CPU seconds */
};

static void bench_summarise(const double *cpu, const double *wall, size_t frames,
			    struct bench_stats *st)
{
	double rate[BENCH_REPS], wrate[BENCH_REPS];
	double work = (double)frames * BENCH_CHANNELS;
	int r;

	st->rep_min_s = cpu[0];
	for (r = 0; r < BENCH_REPS; r++) {
		rate[r] = work / cpu[r];
		wrate[r] = work / wall[r];
		if (cpu[r] < st->rep_min_s) {
			st->rep_min_s = cpu[r];
		}
	}
	qsort(rate, BENCH_REPS, sizeof(rate[0]), bench_cmp_d);
	qsort(wrate, BENCH_REPS, sizeof(wrate[0]), bench_cmp_d);
	st->med = rate[BENCH_REPS / 2];
	st->min = rate[0];
	st->max = rate[BENCH_REPS - 1];
	st->wall_med = wrate[BENCH_REPS / 2];
}

/* ---- one sampling rate -------------------------------------------------- */

static int bench_check_edges(const struct bench_state *s, const unsigned long *cal_before,
			     const struct bench_input *in, unsigned long passes)
{
	unsigned long on = 0, off = 0;
	unsigned ch;
	int bad = 0;

	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		if (cal_before[ch] != 1 || s->edges[ch][DETECT_CALIBRATED] != 1) {
			fprintf(stderr, "bench_detect: channel %u did not calibrate once before timing\n",
				ch);
			bad = 1;
		}
		if (!s->edges[ch][DETECT_ONSET] || !s->edges[ch][DETECT_OFFSET]) {
			fprintf(stderr, "bench_detect: channel %u: no onset or no offset while timed\n",
				ch);
			bad = 1;
		}
		on += s->edges[ch][DETECT_ONSET];
		off += s->edges[ch][DETECT_OFFSET];
	}
	printf("  detector edges (8 channels, after calibration): %lu onsets, %lu offsets; "
	       "about %lu bursts went in (%lu whole passes of the %.0f s body)\n",
	       on, off, (unsigned long)((double)in->bursts * (double)passes), passes,
	       BENCH_BODY_S);
	return bad ? -1 : 0;
}

/* @ratio receives detector time / floor time (ratio of the medians). */
static int bench_rate(const struct rpmsd_config *cfg, double fs, double *ratio)
{
	static struct bench_state st[BENCH_N_KERNELS];
	double cpu[BENCH_N_KERNELS][BENCH_REPS], wall[BENCH_N_KERNELS][BENCH_REPS];
	size_t frames[BENCH_N_KERNELS];
	struct bench_stats stats[BENCH_N_KERNELS];
	unsigned long cal_before[BENCH_CHANNELS];
	uint64_t det_frames = 0;
	struct bench_input in;
	double sum = 0.0;
	int k, r, ret = -1;
	unsigned ch;

	if (bench_input_make(&in, cfg, fs, 1) < 0) {
		fprintf(stderr, "bench_detect: out of memory for the input\n");
		return -1;
	}
	for (k = 0; k < BENCH_N_KERNELS; k++) {
		if (bench_state_init(&st[k], k, cfg, &in) < 0) {
			goto out;
		}
	}
	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		cal_before[ch] = st[BENCH_DETECTOR].edges[ch][DETECT_CALIBRATED];
	}
	for (k = 0; k < BENCH_N_KERNELS; k++) {
		frames[k] = bench_size(&st[k]);
		if (!frames[k]) {
			fprintf(stderr, "bench_detect: the CPU clock did not advance\n");
			goto out;
		}
	}
	for (r = 0; r < BENCH_REPS; r++) {
		for (k = 0; k < BENCH_N_KERNELS; k++) {
			bench_time(&st[k], frames[k], &cpu[k][r], &wall[k][r]);
		}
	}
	/* Everything after the rest part: the probe and the repetitions. */
	det_frames = st[BENCH_DETECTOR].sample - in.rest_frames;

	printf("fs %.0f Hz, %d channels, %d repetitions per kernel, "
	       "channel-samples per CPU second (CLOCK_THREAD_CPUTIME_ID):\n",
	       fs, BENCH_CHANNELS, BENCH_REPS);
	printf("  %-24s %12s %12s %12s %9s %12s\n", "kernel", "median", "min", "max",
	       "ns/ch-smp", "wall median");
	for (k = 0; k < BENCH_N_KERNELS; k++) {
		bench_summarise(cpu[k], wall[k], frames[k], &stats[k]);
		if (stats[k].rep_min_s < BENCH_MIN_REP_S) {
			fprintf(stderr, "bench_detect: %s: a repetition took only %.3f s of CPU\n",
				bench_kernel_name[k], stats[k].rep_min_s);
		}
		printf("  %-24s %11.4gM %11.4gM %11.4gM %9.2f %11.4gM\n",
		       bench_kernel_name[k], stats[k].med / 1e6, stats[k].min / 1e6,
		       stats[k].max / 1e6, 1e9 / stats[k].med, stats[k].wall_med / 1e6);
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			sum += st[k].acc[ch];
		}
	}
	bench_sink = sum;
	if (!isfinite(sum)) {
		fprintf(stderr, "bench_detect: an output is not finite\n");
		goto out;
	}
	if (bench_check_edges(&st[BENCH_DETECTOR], cal_before, &in,
			      (unsigned long)(det_frames / in.body_frames)) < 0) {
		goto out;
	}
	*ratio = stats[BENCH_FLOOR].med / stats[BENCH_DETECTOR].med;
	printf("  ratio of medians, detector time / floor time: %.2f "
	       "(dsp_chain_step alone: %.2f; without its mains canceller: %.2f)\n",
	       *ratio, stats[BENCH_FLOOR].med / stats[BENCH_DSP].med,
	       stats[BENCH_FLOOR].med / stats[BENCH_DSP_NOHUM].med);
	ret = 0;
out:
	for (k = 0; k < BENCH_N_KERNELS; k++) {
		bench_state_fini(&st[k]);
	}
	free(in.buf);
	return ret;
}

/* ---- the worst block: every channel dates an onset ------------------------ */

struct bench_worst {
	struct dsp_chain *dsp[BENCH_CHANNELS];
	struct detect *det[BENCH_CHANNELS];
	struct bench_rng rng;
	uint64_t sample;
	double fs;
	double on, off, base, spread;	/* the detectors' thresholds */
	size_t onsets;			/* in the last block, all channels */
	uint64_t edge, decision;	/* the last onset's */
};

/*
 * One block: every channel's dsp_chain_step on rest EMG (the filters'
 * work) and detect_step on the envelope @env (the detector's, on an
 * envelope made to order). @return its cost in ns.
 */
static int64_t bench_worst_block(struct bench_worst *w, float env)
{
	struct detect_result r;
	double acc = 0.0;
	int64_t t0;
	unsigned ch;
	int i;

	w->onsets = 0;
	t0 = bench_ns();
	for (i = 0; i < BENCH_BLOCK; i++, w->sample++) {
		float x = (float)(BENCH_DC + BENCH_REST_SIGMA * bench_gauss(&w->rng));

		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			acc += dsp_chain_step(w->dsp[ch], x, NULL);
			if (detect_step(w->det[ch], w->sample, env, &r) == DETECT_ONSET) {
				w->onsets++;
				w->edge = r.edge_sample;
				w->decision = r.decision_sample;
			}
		}
	}
	t0 = bench_ns() - t0;
	bench_sink += acc;
	return t0;
}

/*
 * Each repetition: 0.6 s with the envelope between the edge level and the
 * onset threshold (quiet for the state machine, but every value counts
 * for the change point, so its walk and the foot's both run to the far
 * end of the 0.5 s history), then a step far above the onset threshold
 * until all channels decide in the same block (timed), then rest until
 * the offset and a little more. The block before the step is the
 * ordinary block it is compared with.
 */
static int bench_worst(const struct rpmsd_config *cfg, double fs)
{
	static struct bench_worst w;
	static int64_t worst[BENCH_WORST_REPS], plain[BENCH_WORST_REPS];
	struct detect_result thr;
	char err[CONFIG_ERR_MAX];
	size_t n_cal, n_edge, n_rest, b, rep, walked = 0;
	unsigned ch;
	int ret = -1;

	memset(&w, 0, sizeof(w));
	w.fs = fs;
	w.rng.s = 0x5DEECE66Dull;
	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		if (dsp_chain_create(cfg, fs, &w.dsp[ch], err, sizeof(err)) < 0 ||
		    detect_create(cfg, fs, &w.det[ch], err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_detect: %s\n", err);
			goto out;
		}
	}
	/* Calibration on a rest envelope of 10 +- 1 (whole blocks). */
	n_cal = (size_t)ceil((cfg->detect.calibration_start_s + cfg->detect.calibration_s) * fs /
			     BENCH_BLOCK) + 1;
	for (b = 0; b < n_cal; b++) {
		bench_worst_block(&w, (float)(10.0 + 0.5 * bench_gauss(&w.rng)));
	}
	if (detect_thresholds(w.det[0], &thr) < 0) {
		fprintf(stderr, "bench_detect: the worst-case detectors did not calibrate\n");
		goto out;
	}
	w.on = thr.threshold;
	w.off = thr.off_threshold;
	w.base = thr.baseline;
	w.spread = thr.spread;
	n_edge = (size_t)ceil(0.6 * fs / BENCH_BLOCK);
	n_rest = (size_t)ceil((cfg->detect.off_ms / 1000.0 + 0.1) * fs / BENCH_BLOCK);
	for (rep = 0; rep < BENCH_WORST_REPS; rep++) {
		/* above the edge level (k_edge spreads) and the offset threshold,
		 * below the onset threshold: no onset, no rest following */
		float mid = (float)(0.5 * (w.on + (w.off > w.base + cfg->detect.k_edge * w.spread ?
						  w.off : w.base + cfg->detect.k_edge * w.spread)));

		for (b = 0; b < n_edge; b++) {
			plain[rep] = bench_worst_block(&w, mid);
			if (w.onsets) {
				fprintf(stderr, "bench_detect: an onset between the thresholds\n");
				goto out;
			}
		}
		for (b = 0;; b++) {
			int64_t c = bench_worst_block(&w, (float)(w.on * 4.0));

			if (w.onsets) {
				worst[rep] = c;
				break;
			}
			if (b > (size_t)fs) {
				fprintf(stderr, "bench_detect: no onset after the step\n");
				goto out;
			}
		}
		if (w.onsets != BENCH_CHANNELS) {
			fprintf(stderr, "bench_detect: %zu of %d channels decided in the block\n",
				w.onsets, BENCH_CHANNELS);
			goto out;
		}
		/* the change point at the far end: the whole history was walked */
		if (w.decision - w.edge + 1 >= (uint64_t)(0.5 * fs)) {
			walked++;
		}
		for (b = 0; b < n_rest; b++) {
			bench_worst_block(&w, 10.0f);
		}
	}
	qsort(worst, BENCH_WORST_REPS, sizeof(worst[0]), bench_cmp_i64);
	qsort(plain, BENCH_WORST_REPS, sizeof(plain[0]), bench_cmp_i64);
	printf("  worst block at %.0f Hz (%d frames; all %d channels date an onset over the "
	       "whole 0.5 s history, %zu of %d times): median %lld ns, p90 %lld ns, max %lld ns "
	       "(a preemption shows in the max); the block before it: median %lld ns; "
	       "block period %.0f us (median worst block: %.2f %% of it)\n",
	       fs, BENCH_BLOCK, BENCH_CHANNELS, walked, BENCH_WORST_REPS,
	       (long long)bench_quantile(worst, BENCH_WORST_REPS, 0.5),
	       (long long)bench_quantile(worst, BENCH_WORST_REPS, 0.9),
	       (long long)worst[BENCH_WORST_REPS - 1],
	       (long long)bench_quantile(plain, BENCH_WORST_REPS, 0.5),
	       BENCH_BLOCK * 1e6 / fs,
	       100.0 * (double)bench_quantile(worst, BENCH_WORST_REPS, 0.5) /
	       (BENCH_BLOCK * 1e9 / fs));
	if (walked != BENCH_WORST_REPS) {
		fprintf(stderr, "bench_detect: an onset was dated short of the whole history\n");
		goto out;
	}
	ret = 0;
out:
	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		detect_destroy(w.det[ch]);
		dsp_chain_destroy(w.dsp[ch]);
	}
	return ret;
}

int main(int argc, char **argv)
{
	static struct rpmsd_config cfg;
	static const double rates[] = { 1000.0, 2000.0 };
	double ratio[2];
	size_t i;
	int missed = 0, cusum = 0;

	config_defaults(&cfg);
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "cusum") != 0)) {
		fprintf(stderr, "usage: bench_detect [cusum]\n");
		return 1;
	}
	if (argc == 2) {
		cusum = 1;
		cfg.detect.rule = CONFIG_RULE_CUSUM;
	}
	bench_pin();
	printf("config: shipped defaults (config_defaults): dsp: highpass %g Hz, lowpass %g Hz, "
	       "order %d, mains notch %d Hz Q %g x %d harmonic(s), %s envelope %g ms; "
	       "detect: calibration from %g s for %g s, k_on %g, k_off %g, on %g ms, "
	       "dip %g ms, off %g ms\n",
	       cfg.dsp.highpass_hz, cfg.dsp.lowpass_hz, cfg.dsp.filter_order,
	       cfg.dsp.mains_hz, cfg.dsp.notch_q, cfg.dsp.mains_harmonics,
	       cfg.dsp.envelope == CONFIG_ENVELOPE_RMS ? "rms" : "non-rms",
	       cfg.dsp.envelope_ms,
	       cfg.detect.calibration_start_s, cfg.detect.calibration_s,
	       cfg.detect.k_on, cfg.detect.k_off, cfg.detect.on_ms,
	       cfg.detect.dip_ms, cfg.detect.off_ms);
	if (cusum) {
		printf("detect.rule = cusum: k %g spreads, cap %g spreads per ms, h %g spread x ms\n",
		       cfg.detect.cusum_k, cfg.detect.cusum_cap, cfg.detect.cusum_h);
	}
	printf("input: seeded synthetic EMG, %d channels interleaved; calibration on the "
	       "rest part, excluded from the timing\n", BENCH_CHANNELS);
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		if (bench_rate(&cfg, rates[i], &ratio[i]) < 0 ||
		    (!cusum && bench_worst(&cfg, rates[i]) < 0)) {
			fprintf(stderr, "bench_detect: measurement failed at %.0f Hz\n", rates[i]);
			return 1;
		}
		if (!(ratio[i] <= BENCH_TARGET_RATIO)) {
			missed = 1;
		}
	}
	/* The dating walk grows with the rate: the worst block at 10 kHz too. */
	if (!cusum && bench_worst(&cfg, 10000.0) < 0) {
		fprintf(stderr, "bench_detect: measurement failed at 10000 Hz\n");
		return 1;
	}
	printf("target (detector within %.0fx of the floor): %s (1 kHz %.2fx, 2 kHz %.2fx)\n",
	       BENCH_TARGET_RATIO, missed ? "target missed" : "target met",
	       ratio[0], ratio[1]);
	return 0;
}
