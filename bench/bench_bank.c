/* SPDX-License-Identifier: MIT */
/*
 * Cost of bank_process (daemon/bank.c), the function the acquire thread
 * runs on every block, against the bare per-sample work that bench_pipeline
 * and bench_detect time (dsp_chain_step + detect_step), in the same run.
 *
 * Since issue 21 the bank runs a second, unclipped ("wide") filter chain
 * per channel for the outcome assessments' 200 ms windows and keeps running
 * totals (struct bank_tally); this benchmark shows what that adds. Three
 * kernels walk the same input, 8 channels in blocks of 8 frames, as the
 * acquire thread gets them:
 *
 *  - bare: dsp_chain_step then detect_step for every sample of every
 *    channel, with what the bank does around them on every sample that
 *    matters to the decisions (the spike limit set at calibration, the
 *    calibration guard's rejections passed on), so that its detectors
 *    decide exactly what the bank's do (checked: the run fails otherwise);
 *  - bare + wide: the same and a second chain per channel with the spike
 *    limit out of reach, its output squared and summed, as the bank does
 *    for its windows: the wide chain's own share;
 *  - bank: bank_process with the shipped defaults (channel rule "any"),
 *    each decision passed to a callback that counts it.
 *
 * The input is bench_detect's seeded synthetic EMG (bench_common.c):
 * Gaussian rest noise on a 2048-count offset for the calibration window
 * plus one second, then 30 s of bursts (200-400 ms of amplitude-modulated
 * noise with 20 ms ramps, 500-900 ms apart, a different schedule and seed
 * on every channel), rounded up to whole blocks. Each
 * kernel calibrates on the rest part untimed; the timed rounds loop over
 * the bursts. No stimulation, so no artefact blank: a blanked sample skips
 * the wide chain and costs less, not more.
 *
 * BENCH_ROUNDS rounds, the kernels alternating within each, so a slow spell
 * of the host hits all of them. A round is BENCH_PASSES passes of the burst
 * part. Every block is timed with CLOCK_MONOTONIC (median, p99, max over all
 * timed blocks); each round's thread CPU time (CLOCK_THREAD_CPUTIME_ID,
 * clock reads included) gives channel-samples per CPU second (median over
 * the rounds). The process pins itself to the CPU it starts on.
 *
 * A report, not a test: it exits 0 whatever the times, 1 only if the
 * measurement failed (a channel did not calibrate, no onsets, the bank's
 * detectors and the bare ones disagree, an output not finite).
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bank.h"
#include "bench_common.h"
#include "config.h"
#include "detect.h"
#include "dsp.h"

#define BENCH_BLOCK 8		/* frames per block: source.block_frames' default */
#define BENCH_ROUNDS 9
#define BENCH_PASSES 4		/* passes of the burst part per kernel and round */
#define BENCH_WIDE_LIMIT 1e30	/* as bank_create: a limit no EMG reaches */

enum bench_kernel {
	BENCH_BARE = 0,
	BENCH_WIDE,
	BENCH_BANK,
	BENCH_N_KERNELS,
};

static const char *const bench_kernel_name[BENCH_N_KERNELS] = {
	[BENCH_BARE] = "bare: dsp + detect",
	[BENCH_WIDE] = "bare + wide chain",
	[BENCH_BANK] = "bank_process",
};

static volatile double bench_sink;

/* ---- kernels ---------------------------------------------------------------- */

struct bench_state {
	enum bench_kernel kind;
	const struct bench_input *in;
	double limit;		/* dsp.limit: x the rest level */
	size_t pos;		/* next frame of the body */
	uint64_t sample;	/* next sample index */
	struct dsp_chain *dsp[BENCH_CHANNELS];
	struct dsp_chain *wide[BENCH_CHANNELS];
	struct detect *det[BENCH_CHANNELS];
	uint64_t rejected[BENCH_CHANNELS];
	struct bank *bank;
	unsigned long edges[BENCH_CHANNELS][DETECT_OFFSET + 1];	/* per channel's detector */
	unsigned long bank_events;	/* what bank_process emitted */
	double acc[BENCH_CHANNELS];
	int64_t *cost;		/* ns per timed block */
	size_t n_cost;
};

/* One block of the bare path (and the wide chain for BENCH_WIDE). */
static void bench_block_bare(struct bench_state *s, const float *x)
{
	struct detect_result r;
	size_t i;
	unsigned ch;

	for (i = 0; i < BENCH_BLOCK; i++, s->sample++) {
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			float v = x[i * BENCH_CHANNELS + ch], filtered;
			float env = dsp_chain_step(s->dsp[ch], v, &filtered);
			enum detect_edge e;

			if (dsp_chain_rejected(s->dsp[ch]) != s->rejected[ch]) {
				s->rejected[ch] = dsp_chain_rejected(s->dsp[ch]);
				detect_note_artefact(s->det[ch], s->sample);
			}
			e = detect_step(s->det[ch], s->sample, env, &r);
			s->acc[ch] += env;
			if (s->kind == BENCH_WIDE) {
				float w;

				dsp_chain_step(s->wide[ch], v, &w);
				s->acc[ch] += (double)w * w;
			}
			if (e == DETECT_NONE) {
				continue;
			}
			s->edges[ch][e]++;
			if (e == DETECT_CALIBRATED) {
				/* the bank's spike limit: x the rest level, hum included */
				double rest = dsp_chain_excursion(s->dsp[ch]);

				rest = rest > r.baseline ? rest : r.baseline;
				dsp_chain_set_limit(s->dsp[ch], s->limit * rest);
			}
		}
	}
}

static void bench_emit(void *ctx, const struct bank_event *ev)
{
	struct bench_state *s = ctx;

	s->bank_events++;
	s->acc[ev->channel] += (double)ev->r.edge_sample;
}

static void bench_block(struct bench_state *s, const float *x)
{
	if (s->kind == BENCH_BANK) {
		bank_process(s->bank, x, BENCH_BLOCK, s->sample, bench_emit, s);
		s->sample += BENCH_BLOCK;
	} else {
		bench_block_bare(s, x);
	}
}

/* One round: BENCH_PASSES passes of the body, every block timed. @return CPU seconds. */
static double bench_round(struct bench_state *s)
{
	const float *body = s->in->buf + s->in->rest_frames * BENCH_CHANNELS;
	size_t blocks = BENCH_PASSES * (s->in->body_frames / BENCH_BLOCK), b;
	double c0 = bench_clock(CLOCK_THREAD_CPUTIME_ID);

	for (b = 0; b < blocks; b++) {
		int64_t t0 = bench_ns();

		bench_block(s, body + s->pos * BENCH_CHANNELS);
		s->cost[s->n_cost++] = bench_ns() - t0;
		s->pos = (s->pos + BENCH_BLOCK) % s->in->body_frames;
	}
	return bench_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
}

static int bench_state_init(struct bench_state *s, enum bench_kernel kind,
			    const struct rpmsd_config *cfg, const struct bench_input *in)
{
	static const char names[BENCH_CHANNELS][BANK_NAME_MAX] = {
		"ch0", "ch1", "ch2", "ch3", "ch4", "ch5", "ch6", "ch7",
	};
	char err[CONFIG_ERR_MAX];
	size_t b;
	unsigned ch;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->in = in;
	s->limit = cfg->dsp.limit;
	s->cost = calloc((size_t)BENCH_ROUNDS * BENCH_PASSES * (in->body_frames / BENCH_BLOCK),
			 sizeof(*s->cost));
	if (!s->cost) {
		fprintf(stderr, "bench_bank: out of memory\n");
		return -1;
	}
	if (kind == BENCH_BANK) {
		if (bank_create(cfg, in->fs, BENCH_CHANNELS, names, &s->bank, err,
				sizeof(err)) < 0) {
			fprintf(stderr, "bench_bank: bank_create: %s\n", err);
			return -1;
		}
	} else {
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			if (dsp_chain_create(cfg, in->fs, &s->dsp[ch], err, sizeof(err)) < 0 ||
			    detect_create(cfg, in->fs, &s->det[ch], err, sizeof(err)) < 0) {
				fprintf(stderr, "bench_bank: %s\n", err);
				return -1;
			}
			if (kind != BENCH_WIDE) {
				continue;
			}
			if (dsp_chain_create(cfg, in->fs, &s->wide[ch], err, sizeof(err)) < 0) {
				fprintf(stderr, "bench_bank: %s\n", err);
				return -1;
			}
			dsp_chain_set_limit(s->wide[ch], BENCH_WIDE_LIMIT);
		}
	}
	/* The rest part: the detectors calibrate here, untimed. */
	for (b = 0; b < in->rest_frames / BENCH_BLOCK; b++) {
		bench_block(s, in->buf + b * BENCH_BLOCK * BENCH_CHANNELS);
	}
	return 0;
}

static void bench_state_fini(struct bench_state *s)
{
	unsigned ch;

	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		detect_destroy(s->det[ch]);
		dsp_chain_destroy(s->dsp[ch]);
		dsp_chain_destroy(s->wide[ch]);
	}
	bank_destroy(s->bank);
	free(s->cost);
}

/* ---- one rate ------------------------------------------------------------------ */

/*
 * The bank's detectors must have decided what the bare ones did: the
 * same calibrations and onsets per channel (the tally counts the bank's
 * per channel), else the two are not timing the same work.
 */
static int bench_check(const struct bench_state *st, const struct bench_input *in)
{
	struct bank_tally t;
	unsigned long on = 0, off = 0;
	unsigned ch;
	int bad = 0;
	uint64_t w;

	bank_get_tally(st[BENCH_BANK].bank, &t);
	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		const unsigned long *e = st[BENCH_BARE].edges[ch];

		if (e[DETECT_CALIBRATED] != 1 || !e[DETECT_ONSET] || !e[DETECT_OFFSET]) {
			fprintf(stderr, "bench_bank: channel %u: %lu calibrations, %lu onsets, "
				"%lu offsets (1, some, some wanted)\n", ch, e[DETECT_CALIBRATED],
				e[DETECT_ONSET], e[DETECT_OFFSET]);
			bad = 1;
		}
		if (t.onsets[ch] != e[DETECT_ONSET] ||
		    memcmp(st[BENCH_WIDE].edges[ch], e, sizeof(st[BENCH_WIDE].edges[ch]))) {
			fprintf(stderr, "bench_bank: channel %u: onsets bare %lu, bare + wide %lu, "
				"bank %llu: the kernels did not do the same work\n", ch,
				e[DETECT_ONSET], st[BENCH_WIDE].edges[ch][DETECT_ONSET],
				(unsigned long long)t.onsets[ch]);
			bad = 1;
		}
		on += e[DETECT_ONSET];
		off += e[DETECT_OFFSET];
	}
	for (w = 0; w < BANK_TALLY_WINDOWS && w < t.windows; w++) {
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			if (!isfinite(t.win_rms[w][ch]) || t.win_rms[w][ch] <= 0) {
				fprintf(stderr, "bench_bank: window %llu channel %u: rms %g\n",
					(unsigned long long)w, ch, t.win_rms[w][ch]);
				bad = 1;
			}
		}
	}
	printf("  edges per kernel (8 channels, timed part and calibration): %lu onsets, %lu "
	       "offsets, the same in all three; bank_process emitted %lu events (rule \"any\"); "
	       "%llu whole 200 ms windows tallied; about %lu bursts went in\n",
	       on, off, st[BENCH_BANK].bank_events, (unsigned long long)t.windows,
	       (unsigned long)(in->bursts * BENCH_ROUNDS * BENCH_PASSES));
	return bad ? -1 : 0;
}

static int bench_rate(const struct rpmsd_config *cfg, double fs)
{
	static struct bench_state st[BENCH_N_KERNELS];
	double cpu[BENCH_N_KERNELS][BENCH_ROUNDS];
	double rate[BENCH_N_KERNELS], p50[BENCH_N_KERNELS];
	struct bench_input in;
	double sum = 0.0;
	size_t work;
	int k, r, ret = -1;
	unsigned ch;

	memset(st, 0, sizeof(st));
	if (bench_input_make(&in, cfg, fs, BENCH_BLOCK) < 0) {
		fprintf(stderr, "bench_bank: out of memory for the input\n");
		return -1;
	}
	for (k = 0; k < BENCH_N_KERNELS; k++) {
		if (bench_state_init(&st[k], k, cfg, &in) < 0) {
			goto out;
		}
	}
	for (r = 0; r < BENCH_ROUNDS; r++) {
		for (k = 0; k < BENCH_N_KERNELS; k++) {
			cpu[k][r] = bench_round(&st[k]);
		}
	}
	work = BENCH_PASSES * in.body_frames * BENCH_CHANNELS;
	printf("fs %.0f Hz, %d channels, blocks of %d frames (block period %.0f us), "
	       "%d rounds of %zu blocks per kernel:\n", fs, BENCH_CHANNELS, BENCH_BLOCK,
	       BENCH_BLOCK * 1e6 / fs, BENCH_ROUNDS, st[0].n_cost / BENCH_ROUNDS);
	printf("  %-20s %10s %10s %10s %10s %12s %10s\n", "kernel", "block p50", "p99", "max",
	       "ns/ch-smp", "Mch-smp/CPUs", "(min-max)");
	for (k = 0; k < BENCH_N_KERNELS; k++) {
		double rates[BENCH_ROUNDS];
		int64_t *c = st[k].cost;
		size_t n = st[k].n_cost;

		for (r = 0; r < BENCH_ROUNDS; r++) {
			rates[r] = (double)work / cpu[k][r];
		}
		qsort(rates, BENCH_ROUNDS, sizeof(rates[0]), bench_cmp_d);
		qsort(c, n, sizeof(*c), bench_cmp_i64);
		rate[k] = rates[BENCH_ROUNDS / 2];
		p50[k] = (double)bench_quantile(c, n, 0.5);
		printf("  %-20s %7lld ns %7lld ns %7lld ns %10.2f %12.2f %4.1f-%4.1f\n",
		       bench_kernel_name[k], (long long)bench_quantile(c, n, 0.5),
		       (long long)bench_quantile(c, n, 0.99), (long long)c[n - 1],
		       p50[k] / (BENCH_BLOCK * BENCH_CHANNELS), rate[k] / 1e6,
		       rates[0] / 1e6, rates[BENCH_ROUNDS - 1] / 1e6);
		for (ch = 0; ch < BENCH_CHANNELS; ch++) {
			sum += st[k].acc[ch];
		}
	}
	bench_sink = sum;
	if (!isfinite(sum)) {
		fprintf(stderr, "bench_bank: an output is not finite\n");
		goto out;
	}
	if (bench_check(st, &in) < 0) {
		goto out;
	}
	printf("  bank_process / bare: %.2f (median block), %.2f (CPU throughput); "
	       "bare + wide / bare: %.2f and %.2f; the bank's median block is %.2f %% of the "
	       "block period\n",
	       p50[BENCH_BANK] / p50[BENCH_BARE], rate[BENCH_BARE] / rate[BENCH_BANK],
	       p50[BENCH_WIDE] / p50[BENCH_BARE], rate[BENCH_BARE] / rate[BENCH_WIDE],
	       100.0 * p50[BENCH_BANK] / (BENCH_BLOCK * 1e9 / fs));
	ret = 0;
out:
	for (k = 0; k < BENCH_N_KERNELS; k++) {
		bench_state_fini(&st[k]);
	}
	free(in.buf);
	return ret;
}

int main(int argc, char **argv)
{
	static struct rpmsd_config cfg;
	static const double rates[] = { 1000.0, 2000.0 };
	size_t i;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: bench_bank\n");
		return 1;
	}
	config_defaults(&cfg);
	bench_pin();
	printf("config: shipped defaults (config_defaults): dsp: highpass %g Hz, lowpass %g Hz, "
	       "mains %d Hz, limit %g x rest, envelope %g ms; detect: calibration from %g s "
	       "for %g s, channel rule %s\n", cfg.dsp.highpass_hz, cfg.dsp.lowpass_hz,
	       cfg.dsp.mains_hz, cfg.dsp.limit, cfg.dsp.envelope_ms,
	       cfg.detect.calibration_start_s, cfg.detect.calibration_s,
	       cfg.detect.channel_rule == CONFIG_CHANNEL_ANY ? "any" : "not any");
	printf("input: seeded synthetic EMG (rest, then 30 s of bursts, looped), %d channels "
	       "interleaved; calibration excluded from the timing; no stimulation blanks\n",
	       BENCH_CHANNELS);
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		if (bench_rate(&cfg, rates[i]) < 0) {
			fprintf(stderr, "bench_bank: measurement failed at %.0f Hz\n", rates[i]);
			return 1;
		}
	}
	return 0;
}
