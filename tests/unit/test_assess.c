/* SPDX-License-Identifier: MIT */
/*
 * Outcome assessments' arithmetic (daemon/assess.c) on hand-made totals,
 * and the detector bank's running totals (bank_get_tally) on seeded
 * synthetic EMG with known bursts: rest noise of 10 µV RMS on channel "a"
 * with three bursts of 20x, channel "b" at rest throughout.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "assess.h"
#include "bank.h"
#include "config.h"

#define FS 1000.0
#define SECONDS 40

static const char names[2][BANK_NAME_MAX] = { "a", "b" };

static void test_assess_rest_numbers(void **state)
{
	struct bank_tally from = { .samples = 1000, .blanked = 10 };
	struct bank_tally to = { .samples = 61000, .blanked = 10 };
	struct assess_rest r;
	char err[128];

	(void)state;
	from.sumsq[0] = 5.0;
	to.sumsq[0] = 5.0 + 25.0 * 60000;	/* 5 µV RMS */
	from.onsets[0] = 3;
	to.onsets[0] = 3 + 4;			/* 4 in a minute */
	from.active[0] = 100;
	to.active[0] = 100 + 6000;		/* 10 % */
	assert_int_equal(assess_rest(&from, &to, 2, FS, &r, err, sizeof(err)), 0);
	assert_int_equal(r.samples, 60000);
	assert_true(r.seconds == 60.0);
	assert_true(fabs(r.ch[0].rms_uv - 5.0) < 1e-12);
	assert_true(r.ch[0].bursts_per_min == 4.0);
	assert_true(r.ch[0].active_pct == 10.0);
	assert_true(r.ch[1].rms_uv == 0 && r.ch[1].bursts_per_min == 0 && r.ch[1].active_pct == 0);
	/* blanked samples leave the RMS, not the time */
	to.blanked = 10 + 30000;
	to.sumsq[0] = 5.0 + 25.0 * 30000;
	assert_int_equal(assess_rest(&from, &to, 2, FS, &r, err, sizeof(err)), 0);
	assert_true(fabs(r.ch[0].rms_uv - 5.0) < 1e-12);
	assert_true(r.ch[0].bursts_per_min == 4.0);
	/* nothing between them, or out of order */
	assert_int_equal(assess_rest(&to, &to, 2, FS, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no EMG between"));
	assert_int_equal(assess_rest(&to, &from, 2, FS, &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(assess_rest(&from, &to, 0, FS, &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(assess_rest(&from, &to, 2, 0, &r, err, sizeof(err)), -EINVAL);
}

static double gauss(uint64_t *s)
{
	double u, v;

	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	u = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	v = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* Channel "a" bursts (20x) over [10, 12), [20, 21.5), [30, 33) s; "b" rests. */
static int in_burst(double t)
{
	return (t >= 10 && t < 12) || (t >= 20 && t < 21.5) || (t >= 30 && t < 33);
}

static void ignore(void *ctx, const struct bank_event *ev)
{
	(void)ctx;
	(void)ev;
}

static void test_assess_bank_tally(void **state)
{
	struct rpmsd_config cfg;
	struct bank *b = NULL;
	struct bank_tally t0, t1;
	struct assess_rest r;
	char err[256] = "";
	uint64_t seed = 7;
	size_t i, n = (size_t)(SECONDS * FS);
	float *x = calloc(n * 2, sizeof(float));

	(void)state;
	assert_non_null(x);
	for (i = 0; i < n; i++) {
		double t = (double)i / FS;

		x[2 * i] = (float)(2048.0 + 10.0 * (in_burst(t) ? 20.0 : 1.0) * gauss(&seed));
		x[2 * i + 1] = (float)(2048.0 + 10.0 * gauss(&seed));
	}
	config_defaults(&cfg);
	assert_int_equal(config_override(&cfg, "test", "source", "file", "x.txt", err,
					 sizeof(err)), 0);
	assert_int_equal(config_recheck(&cfg, "test", err, sizeof(err)), 0);
	assert_int_equal(bank_create(&cfg, FS, 2, names, &b, err, sizeof(err)), 0);
	/* the first 5 s calibrate; the block is 5..40 s */
	for (i = 0; i < 5000; i += 10) {
		bank_process(b, x + 2 * i, 10, i, ignore, NULL);
	}
	bank_get_tally(b, &t0);
	for (; i < n; i += 10) {
		bank_process(b, x + 2 * i, 10, i, ignore, NULL);
	}
	bank_get_tally(b, &t1);
	bank_destroy(b);
	free(x);
	assert_int_equal(assess_rest(&t0, &t1, 2, FS, &r, err, sizeof(err)), 0);
	assert_int_equal(r.samples, 35000);
	/* three bursts in 35 s, 6.5 s of them: 5.14 a minute, 18.6 % active */
	assert_int_equal(r.ch[0].onsets, 3);
	assert_true(fabs(r.ch[0].bursts_per_min - 3 * 60.0 / 35.0) < 1e-9);
	/* between the detector's dated edges: within 0.5 % of the block */
	assert_true(fabs(r.ch[0].active_pct - 100.0 * 6.5 / 35.0) < 0.5);
	assert_int_equal(r.ch[1].onsets, 0);
	assert_true(r.ch[1].active_pct == 0);
	/*
	 * The filtered rest RMS: 10 µV white noise at 1 kHz through the default
	 * 20-450 Hz band-pass keeps about (450 - 20) / 500 of its power: 9.3 µV,
	 * a little less through the Butterworth's skirts. Channel a's bursts
	 * are clipped by the spike limiter (dsp.limit x the rest level) as the
	 * detector sees them: above the rest, far below 20x.
	 */
	assert_true(r.ch[1].rms_uv > 8.0 && r.ch[1].rms_uv < 9.8);
	assert_true(r.ch[0].rms_uv > 2 * r.ch[1].rms_uv);
}

static void test_assess_cci(void **state)
{
	float a[1000], b[1000], z[1000];
	struct assess_cci c;
	double mvc;
	char err[256];
	uint64_t seed = 3;

	(void)state;
	/* a: 100 uV RMS noise, b: half of it, z: silent; 1 s at 1 kHz = 5 windows */
	for (int i = 0; i < 1000; i++) {
		a[i] = (float)(100.0 * gauss(&seed));
		b[i] = a[i] / 2;
		z[i] = 0;
	}
	assert_int_equal(assess_mvc(a, 1000, FS, &mvc, err, sizeof(err)), 0);
	assert_true(mvc > 80 && mvc < 120);
	/* the same muscle against itself, each at its MVC: 100 % */
	assert_int_equal(assess_cci(a, a, 1000, FS, mvc, mvc, &c, err, sizeof(err)), 0);
	assert_int_equal(c.windows, 5);
	assert_true(fabs(c.cci_pct - 100.0) < 1e-9);
	assert_string_equal(c.formula, "falconer_winter");
	/* b at half of a, same MVC: 2 * 0.5 / 1.5 = 66.7 % */
	assert_int_equal(assess_cci(a, b, 1000, FS, mvc, mvc, &c, err, sizeof(err)), 0);
	assert_true(fabs(c.cci_pct - 200.0 / 3.0) < 1e-6);
	/* normalised to its own MVC (half of a's), b is as active as a: 100 % */
	assert_int_equal(assess_cci(a, b, 1000, FS, mvc, mvc / 2, &c, err, sizeof(err)), 0);
	assert_true(fabs(c.cci_pct - 100.0) < 1e-6);
	/* one silent channel: no co-contraction */
	assert_int_equal(assess_cci(a, z, 1000, FS, mvc, mvc, &c, err, sizeof(err)), 0);
	assert_true(c.cci_pct == 0);
	/* 999 samples: the last, part window is left out */
	assert_int_equal(assess_cci(a, a, 999, FS, mvc, mvc, &c, err, sizeof(err)), 0);
	assert_int_equal(c.windows, 4);
	/* refusals */
	assert_int_equal(assess_cci(z, z, 1000, FS, mvc, mvc, &c, err, sizeof(err)), -ERANGE);
	assert_non_null(strstr(err, "no activity"));
	assert_int_equal(assess_cci(a, b, 1000, FS, 0, mvc, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "must be above 0"));
	assert_int_equal(assess_cci(a, b, 199, FS, mvc, mvc, &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(assess_mvc(a, 100, FS, &mvc, err, sizeof(err)), -EINVAL);
}

static void test_assess_tsrt(void **state)
{
	double v[20], ang[20];
	struct assess_tsrt t;
	char err[256];
	uint64_t seed = 5;

	(void)state;
	/* onset angle = 40 deg + 0.2 deg per deg/s, 20 stretches 30..220 deg/s */
	for (int i = 0; i < 20; i++) {
		v[i] = 30 + 10 * i;
		ang[i] = 40 + 0.2 * v[i];
	}
	assert_int_equal(assess_tsrt(v, ang, 20, &t, err, sizeof(err)), 0);
	assert_true(fabs(t.tsrt_deg - 40) < 1e-9 && fabs(t.slope - 0.2) < 1e-12);
	assert_true(fabs(t.r2 - 1) < 1e-12 && t.n == 20);
	/* with 2 degrees of noise: still near, R^2 below 1 */
	for (int i = 0; i < 20; i++) {
		ang[i] = 40 + 0.2 * v[i] + 2 * gauss(&seed);
	}
	assert_int_equal(assess_tsrt(v, ang, 20, &t, err, sizeof(err)), 0);
	assert_true(fabs(t.tsrt_deg - 40) < 4 && fabs(t.slope - 0.2) < 0.03);
	assert_true(t.r2 > 0.8 && t.r2 < 1);
	/* too few stretches */
	assert_int_equal(assess_tsrt(v, ang, 6, &t, err, sizeof(err)), -EDOM);
	assert_non_null(strstr(err, "6 stretches, at least 7 needed"));
	/* too narrow a range: 100..160 deg/s is not twice */
	for (int i = 0; i < 20; i++) {
		v[i] = 100 + 3 * i;
	}
	assert_int_equal(assess_tsrt(v, ang, 20, &t, err, sizeof(err)), -EDOM);
	assert_non_null(strstr(err, "too narrow a range"));
	/* twice, but only 20 deg/s apart */
	for (int i = 0; i < 20; i++) {
		v[i] = 15 + i * (20.0 / 19);
	}
	assert_int_equal(assess_tsrt(v, ang, 20, &t, err, sizeof(err)), -EDOM);
	v[3] = 0;
	assert_int_equal(assess_tsrt(v, ang, 20, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "stretch 4"));
	v[3] = NAN;
	assert_int_equal(assess_tsrt(v, ang, 20, &t, err, sizeof(err)), -EINVAL);
}

/* The per-window form gives assess_cci's index; an all-blanked window (NAN) is left out. */
static void test_assess_cci_windows(void **state)
{
	enum { W = 200, N = 10 };
	static float a[N * W], b[N * W];
	float ra[N + 1], rb[N + 1];
	struct assess_cci ref, got;
	char err[256];
	double mvc;

	(void)state;
	for (int i = 0; i < N * W; i++) {
		a[i] = (float)((i % 2 ? 1 : -1) * (100 + 10 * (i / W)));
		b[i] = (float)((i % 3 ? 1 : -1) * (40 + 30 * ((i / W) % 2)));
	}
	for (int k = 0; k < N; k++) {
		double sa = 0, sb = 0;

		for (int i = k * W; i < (k + 1) * W; i++) {
			sa += (double)a[i] * a[i];
			sb += (double)b[i] * b[i];
		}
		ra[k] = (float)sqrt(sa / W);
		rb[k] = (float)sqrt(sb / W);
	}
	ra[N] = NAN;
	rb[N] = NAN;
	assert_int_equal(assess_cci(a, b, N * W, 1000, 300, 150, &ref, err, sizeof(err)), 0);
	assert_int_equal(assess_cci_windows(ra, rb, N + 1, 300, 150, &got, err, sizeof(err)), 0);
	assert_int_equal(got.windows, N);
	assert_true(fabs(got.cci_pct - ref.cci_pct) < 1e-4);
	assert_int_equal(assess_mvc_windows(ra, N + 1, &mvc, err, sizeof(err)), 0);
	assert_true(fabs(mvc - ra[N - 1]) < 1e-3);
	assert_int_equal(assess_cci_windows(ra, rb, N, 0, 150, &got, err, sizeof(err)), -EINVAL);
	assert_int_equal(assess_mvc_windows(ra, 0, &mvc, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assess_rest_numbers),
		cmocka_unit_test(test_assess_bank_tally),
		cmocka_unit_test(test_assess_cci),
		cmocka_unit_test(test_assess_cci_windows),
		cmocka_unit_test(test_assess_tsrt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
