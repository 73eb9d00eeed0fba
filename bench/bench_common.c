// SPDX-License-Identifier: MIT
/*
 * bench_common (bench_common.h): one generator of the synthetic EMG, so
 * that bench_detect and bench_bank time the very same input, and the
 * timing helpers of their reports.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

uint64_t bench_rng_next(struct bench_rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ull;
}

double bench_uniform(struct bench_rng *r)
{
	return ((double)(bench_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

double bench_gauss(struct bench_rng *r)
{
	double u = bench_uniform(r), v = bench_uniform(r);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* Trapezoid envelope of a burst from on to off with ramps of r samples. */
static double bench_trapezoid(size_t i, size_t on, size_t off, size_t r)
{
	if (i < on || i >= off) {
		return 0.0;
	}
	if (i < on + r) {
		return (double)(i - on + 1) / (double)r;
	}
	if (i >= off - r) {
		return (double)(off - i) / (double)r;
	}
	return 1.0;
}

int bench_input_make(struct bench_input *in, const struct rpmsd_config *cfg, double fs,
		     size_t block)
{
	size_t rest = (size_t)llround((cfg->detect.calibration_start_s +
				       cfg->detect.calibration_s +
				       BENCH_REST_MARGIN_S) * fs);
	size_t body = (size_t)llround(BENCH_BODY_S * fs);
	size_t ramp = (size_t)llround(0.020 * fs);
	size_t n, i;
	unsigned ch;

	rest = (rest + block - 1) / block * block;
	body = (body + block - 1) / block * block;
	n = rest + body;
	in->fs = fs;
	in->rest_frames = rest;
	in->body_frames = body;
	in->bursts = 0;
	in->buf = calloc(n * BENCH_CHANNELS, sizeof(*in->buf));
	if (!in->buf) {
		return -ENOMEM;
	}
	for (ch = 0; ch < BENCH_CHANNELS; ch++) {
		struct bench_rng r = { .s = (ch + 1) * 0x9E3779B97F4A7C15ull };
		size_t on = rest + (size_t)llround((0.5 + 0.4 * bench_uniform(&r)) * fs);
		size_t off = on + (size_t)llround((0.2 + 0.2 * bench_uniform(&r)) * fs);
		double amp = 150.0 + 150.0 * bench_uniform(&r);

		for (i = 0; i < n; i++) {
			double x = BENCH_DC + BENCH_REST_SIGMA * bench_gauss(&r);

			if (i >= off) {
				in->bursts++;
				on = off + (size_t)llround((0.5 + 0.4 * bench_uniform(&r)) * fs);
				off = on + (size_t)llround((0.2 + 0.2 * bench_uniform(&r)) * fs);
				amp = 150.0 + 150.0 * bench_uniform(&r);
				if (off + (size_t)llround(0.6 * fs) > n) {
					on = off = SIZE_MAX;
				}
			}
			x += amp * bench_trapezoid(i, on, off, ramp) * bench_gauss(&r);
			in->buf[i * BENCH_CHANNELS + ch] = (float)x;
		}
	}
	return 0;
}

double bench_clock(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0) {
		return NAN;
	}
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t bench_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int bench_cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int64_t bench_quantile(const int64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

void bench_pin(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0) {
		printf("not pinned: sched_getcpu: %s\n", strerror(errno));
		return;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		printf("not pinned: sched_setaffinity: %s\n", strerror(errno));
		return;
	}
	printf("pinned to CPU %d (sched_setaffinity)\n", cpu);
}
