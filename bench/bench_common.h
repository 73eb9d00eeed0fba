/* SPDX-License-Identifier: MIT */
/*
 * What bench_detect and bench_bank share: the seeded synthetic EMG they
 * both walk, its random numbers, and the clocks, order statistics and CPU
 * pinning of their reports.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

#define BENCH_CHANNELS 8
#define BENCH_BODY_S 30.0	/* looped burst part of the input */
#define BENCH_REST_MARGIN_S 1.0	/* rest after the calibration window */
#define BENCH_DC 2048.0		/* counts, like a 12-bit ADC at mid-scale */
#define BENCH_REST_SIGMA 10.0

/* xorshift64* state; seed it non-zero. */
struct bench_rng {
	uint64_t s;
};

/** The next 64 random bits of @r. */
uint64_t bench_rng_next(struct bench_rng *r);

/** Uniform in (0, 1), never 0 or 1. */
double bench_uniform(struct bench_rng *r);

/** Standard normal (Box-Muller). */
double bench_gauss(struct bench_rng *r);

/* The seeded input: BENCH_CHANNELS channels, rest then bursts. */
struct bench_input {
	double fs;
	float *buf;		/* frame-major, BENCH_CHANNELS floats a frame; free() */
	size_t rest_frames;	/* calibration window and a margin, rest only */
	size_t body_frames;	/* bursts; looped by the timed runs */
	unsigned long bursts;	/* in the body, all channels */
};

/**
 * Fill @in at @fs Hz: Gaussian rest noise on BENCH_DC for @cfg's
 * calibration window plus BENCH_REST_MARGIN_S, then BENCH_BODY_S of bursts
 * of 200-400 ms at 150-300 counts sigma with 20 ms ramps, 500-900 ms apart,
 * ending at least 600 ms before the end so that a loop of the body joins
 * rest to rest; a different schedule and seed on every channel. Both parts
 * are rounded up to whole multiples of @block frames (1: as they come).
 * @return 0, or -ENOMEM
 */
int bench_input_make(struct bench_input *in, const struct rpmsd_config *cfg, double fs,
		     size_t block);

/** Seconds on clock @id (NAN if it cannot be read). */
double bench_clock(clockid_t id);

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_ns(void);

/** qsort comparators of int64_t and double. */
int bench_cmp_i64(const void *a, const void *b);
int bench_cmp_d(const void *a, const void *b);

/** The @q quantile (0..1) of @n sorted values. */
int64_t bench_quantile(const int64_t *v, size_t n, double q);

/** Pin the process to the CPU it runs on; says so (or why not) on stdout. */
void bench_pin(void);

#endif /* BENCH_COMMON_H */
