/* SPDX-License-Identifier: MIT */
/*
 * Cost of the per-sample work on the acquire thread: dsp_chain_step and
 * detect_step for every channel, timed per block of 8 frames (the default
 * block), over the bundled recording replicated to 8 channels and looped.
 * Reports the median, p99 and maximum block cost and the median block's
 * cost per sample and channel (a mean would carry the host's preemptions),
 * at 1 kHz and at 10 kHz; and the same for the blocks
 * in which a channel decided an onset, whose dating (a walk back over up
 * to 0.5 s of envelope) is the most work a block can hold. bench_detect
 * times the worst such block, made to order.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "detect.h"
#include "dsp.h"
#include "source.h"

#define BLOCK 8
#define CHANNELS 8
#define BLOCKS 200000

static int64_t bench_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int bench_rate(const float *rec, size_t n, double fs)
{
	static struct rpmsd_config cfg;
	struct dsp_chain *dsp[CHANNELS];
	struct detect *det[CHANNELS];
	struct detect_result r;
	int64_t *cost = calloc(BLOCKS, sizeof(*cost));
	int64_t *onset_cost = calloc(BLOCKS, sizeof(*onset_cost));
	size_t n_onset = 0, onsets = 0;
	char err[512];
	uint64_t sample = 0;
	size_t b, i, ch;
	double total = 0;

	config_defaults(&cfg);
	if (!cost || !onset_cost) {
		free(cost);
		free(onset_cost);
		return 1;
	}
	for (ch = 0; ch < CHANNELS; ch++) {
		if (dsp_chain_create(&cfg, fs, &dsp[ch], err, sizeof(err)) < 0 ||
		    detect_create(&cfg, fs, &det[ch], err, sizeof(err)) < 0) {
			fprintf(stderr, "bench: %s\n", err);
			return 1;
		}
	}
	for (b = 0; b < BLOCKS; b++) {
		int64_t t0 = bench_ns();
		size_t on = 0;

		for (i = 0; i < BLOCK; i++, sample++) {
			for (ch = 0; ch < CHANNELS; ch++) {
				/* channels offset in time so they are not identical */
				float x = rec[(sample + ch * 997) % n];
				float env = dsp_chain_step(dsp[ch], x, NULL);

				on += detect_step(det[ch], sample, env, &r) == DETECT_ONSET;
			}
		}
		cost[b] = bench_ns() - t0;
		total += (double)cost[b];
		if (on) {
			onset_cost[n_onset++] = cost[b];
			onsets += on;
		}
	}
	qsort(cost, BLOCKS, sizeof(*cost), bench_cmp);
	qsort(onset_cost, n_onset, sizeof(*onset_cost), bench_cmp);
	printf("fs %5.0f Hz, %d channels, %d blocks of %d frames: block cost median %lld ns, "
	       "p99 %lld ns, max %lld ns; median block %.1f ns per sample and channel "
	       "(mean %.1f ns, preemptions included); block period %.0f us\n",
	       fs, CHANNELS, BLOCKS, BLOCK, (long long)cost[BLOCKS / 2],
	       (long long)cost[BLOCKS * 99 / 100], (long long)cost[BLOCKS - 1],
	       (double)cost[BLOCKS / 2] / (BLOCK * CHANNELS),
	       total / ((double)BLOCKS * BLOCK * CHANNELS), BLOCK * 1e6 / fs);
	if (n_onset) {
		printf("fs %5.0f Hz, the %zu blocks with an onset (%zu onsets): block cost median "
		       "%lld ns, p99 %lld ns, max %lld ns\n",
		       fs, n_onset, onsets, (long long)onset_cost[n_onset / 2],
		       (long long)onset_cost[n_onset * 99 / 100],
		       (long long)onset_cost[n_onset - 1]);
	} else {
		printf("fs %5.0f Hz: no onset in %d blocks\n", fs, BLOCKS);
	}
	for (ch = 0; ch < CHANNELS; ch++) {
		detect_destroy(det[ch]);
		dsp_chain_destroy(dsp[ch]);
	}
	free(onset_cost);
	free(cost);
	return 0;
}

int main(int argc, char **argv)
{
	static struct rpmsd_config cfg;
	struct source *src;
	char err[1024];
	float *rec;
	size_t n;
	struct source_block blk;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_pipeline RECORDING\n");
		return 2;
	}
	config_defaults(&cfg);
	snprintf(cfg.source.file, sizeof(cfg.source.file), "%s", argv[1]);
	ret = source_replay_open(&cfg, false, &src, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "bench: %s\n", err);
		return 1;
	}
	n = (size_t)src->total_frames;
	rec = calloc(n, sizeof(*rec));
	if (!rec) {
		return 1;
	}
	src->ops->start(src, 0, NULL);
	if (src->ops->read(src, rec, n, &blk) != 1 || blk.frames != n) {
		fprintf(stderr, "bench: short read\n");
		return 1;
	}
	source_destroy(src);
	ret = bench_rate(rec, n, 1000.0) || bench_rate(rec, n, 10000.0);
	free(rec);
	return ret;
}
