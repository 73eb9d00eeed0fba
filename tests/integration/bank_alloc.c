/* SPDX-License-Identifier: MIT */
/*
 * Driver for test_rt_alloc.py: every bank_* call the acquire thread makes,
 * made here under the acquire thread's name ("rpmsd-acquire"), so that the
 * counting allocator (alloc_count.c, preloaded) charges any heap
 * allocation in them to that name. The daemon runs (the rest of
 * test_rt_alloc.py) reach bank_process through the real acquire thread but
 * not every path of it; this walks them all on purpose, 8 channels at
 * 1 kHz in blocks of 8 frames: calibration, bursts on every channel, a
 * train's artefact blanks (several pending at once, merged, one starting
 * in a later block), a gap, a recalibration, the assessment tally's
 * windows closing and the tally copied.
 *
 * Creation and destruction allocate and are done under this program's own
 * name. Exit 0 when every path was seen to run, 1 otherwise; the
 * allocation counts are written at exit by alloc_count.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "bank.h"
#include "stretch.h"
#include "config.h"

#define BA_CHANNELS 8
#define BA_BLOCK 8
#define BA_FS 1000.0

struct ba_seen {
	unsigned long edges[DETECT_OFFSET + 1];
};

/* The acquire thread's stretch tracker, fed as acquire.c feeds it. */
static struct stretch *ba_st;

static void ba_own(void *ctx, const struct bank_event *ev)
{
	stretch_edge(ctx, ev->channel, ev->edge == DETECT_ONSET, ev->r.edge_sample);
}

static void ba_emit(void *ctx, const struct bank_event *ev)
{
	struct ba_seen *seen = ctx;

	seen->edges[ev->edge]++;
}

static uint64_t ba_rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Uniform noise of unit variance on a 2048-count offset, @amp x during a burst. */
static void ba_fill(float *buf, uint64_t first, uint64_t *rng, int burst)
{
	for (unsigned i = 0; i < BA_BLOCK; i++) {
		for (unsigned ch = 0; ch < BA_CHANNELS; ch++) {
			double u = (double)(ba_rng(rng) >> 11) / 9007199254740992.0 - 0.5;
			double amp = burst ? 200.0 : 10.0;

			buf[i * BA_CHANNELS + ch] = (float)(2048.0 + amp * 3.46 * u +
							    5.0 * sin(0.314 * (double)(first + i)));
		}
	}
}

/* @blocks blocks from sample *@at, bursts on when @burst. */
static void ba_run(struct bank *b, uint64_t *at, size_t blocks, int burst, uint64_t *rng,
		   struct ba_seen *seen)
{
	float buf[BA_BLOCK * BA_CHANNELS], angle[BA_BLOCK];

	for (size_t k = 0; k < blocks; k++) {
		ba_fill(buf, *at, rng, burst);
		/* a joint moved to and fro, 40 degrees each way, once a second */
		for (size_t i = 0; i < BA_BLOCK; i++) {
			angle[i] = (float)(40.0 * sin(M_PI * (double)(*at + i) / BA_FS));
		}
		stretch_angle(ba_st, angle, BA_BLOCK, *at);
		bank_process(b, buf, BA_BLOCK, *at, ba_emit, seen);
		*at += BA_BLOCK;
	}
}

int main(void)
{
	static struct rpmsd_config cfg;
	static const char names[BA_CHANNELS][BANK_NAME_MAX] = {
		"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7",
	};
	struct ba_seen seen = { { 0 } };
	struct bank_tally tally;
	struct bank *b;
	char err[CONFIG_ERR_MAX];
	uint64_t at = 0, rng = 0x9E3779B97F4A7C15ull, blanked, stretches = 0;
	int ret;

	config_defaults(&cfg);
	ret = bank_create(&cfg, BA_FS, BA_CHANNELS, names, &b, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "bank_alloc: bank_create: %s\n", err);
		return 1;
	}
	ret = stretch_create(BA_CHANNELS, BA_FS, &ba_st);
	if (ret < 0) {
		fprintf(stderr, "bank_alloc: stretch_create: %d\n", ret);
		return 1;
	}
	bank_set_own_edges(b, ba_own, ba_st);
	printf("bank_alloc: running the bank as rpmsd-acquire\n");
	fflush(stdout);
	prctl(PR_SET_NAME, "rpmsd-acquire", 0, 0, 0);

	/* calibration (rest), then a burst and rest */
	ba_run(b, &at, (size_t)(3.0 * BA_FS / BA_BLOCK), 0, &rng, &seen);
	ba_run(b, &at, (size_t)(0.5 * BA_FS / BA_BLOCK), 1, &rng, &seen);
	ba_run(b, &at, (size_t)(1.0 * BA_FS / BA_BLOCK), 0, &rng, &seen);
	/* a train: 20 pulses 25 ms apart, announced before their samples
	 * arrive, so several blanks wait at once; the last one in a later block */
	for (unsigned p = 0; p < 20; p++) {
		bank_blank(b, at + 3 + 25 * p);
	}
	ba_run(b, &at, (size_t)(0.6 * BA_FS / BA_BLOCK), 1, &rng, &seen);
	bank_blank(b, at - 2);	/* partly in a block already processed */
	ba_run(b, &at, (size_t)(1.0 * BA_FS / BA_BLOCK), 0, &rng, &seen);
	/* 100 samples lost */
	bank_gap(b, at, 100);
	at += 100;
	ba_run(b, &at, (size_t)(1.0 * BA_FS / BA_BLOCK), 0, &rng, &seen);
	ba_run(b, &at, (size_t)(0.5 * BA_FS / BA_BLOCK), 1, &rng, &seen);
	/* recalibrate in the middle of a burst's aftermath */
	bank_recalibrate(b, at);
	stretch_gap(ba_st, at);
	ba_run(b, &at, (size_t)(3.0 * BA_FS / BA_BLOCK), 0, &rng, &seen);
	ba_run(b, &at, (size_t)(0.5 * BA_FS / BA_BLOCK), 1, &rng, &seen);
	ba_run(b, &at, (size_t)(1.0 * BA_FS / BA_BLOCK), 0, &rng, &seen);
	bank_get_tally(b, &tally);

	prctl(PR_SET_NAME, "bank_alloc", 0, 0, 0);
	{
		struct stretch_rec r;

		while (stretch_take(ba_st, &r)) {
			stretches++;
		}
	}
	stretch_destroy(ba_st);
	bank_destroy(b);
	blanked = tally.blanked;
	printf("bank_alloc: %llu samples, %llu blanked, %llu windows, edges: %lu calibrated, "
	       "%lu onsets, %lu offsets, %llu stretches\n", (unsigned long long)tally.samples,
	       (unsigned long long)blanked, (unsigned long long)tally.windows,
	       seen.edges[DETECT_CALIBRATED], seen.edges[DETECT_ONSET],
	       seen.edges[DETECT_OFFSET], (unsigned long long)stretches);
	/* every path ran: two calibrations of every channel, bursts, blanks, windows */
	if (seen.edges[DETECT_CALIBRATED] != 2 * BA_CHANNELS || seen.edges[DETECT_ONSET] < 3 ||
	    seen.edges[DETECT_OFFSET] < 2 || blanked == 0 ||
	    tally.windows < tally.samples / (uint64_t)(BANK_TALLY_WINDOW_S * BA_FS) ||
	    stretches < 4) {
		fprintf(stderr, "bank_alloc: not every path of the bank ran\n");
		return 1;
	}
	return 0;
}
