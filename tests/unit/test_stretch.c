/* SPDX-License-Identifier: MIT */
/*
 * The stretch tracker (daemon/stretch.c) on synthetic joint angles with
 * seeded goniometer noise: ramps of known velocity from rest, onsets at
 * known samples (decided a fixed time later, in blocks, as the detector
 * bank would), and the cases that must not give a DSRT.
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

#include "stretch.h"

#define FS 1000.0
#define BLOCK 8
#define MAXN 200000
#define DECIDE 40	/* samples from a dated onset to its decision */

struct onset {
	uint64_t dated;
	unsigned ch;
	bool on;
	uint64_t decide;	/* samples to the decision */
};

struct scene {
	float angle[MAXN];
	size_t n;
	struct onset onsets[64];
	size_t n_onsets;
	uint64_t seed;
};

static double scene_noise(struct scene *sc)
{
	/* xorshift, then Box-Muller: seeded, the same on every machine */
	double u1, u2;

	sc->seed ^= sc->seed << 13;
	sc->seed ^= sc->seed >> 7;
	sc->seed ^= sc->seed << 17;
	u1 = ((double)(sc->seed >> 11) + 1.0) / 9007199254740993.0;
	sc->seed ^= sc->seed << 13;
	sc->seed ^= sc->seed >> 7;
	sc->seed ^= sc->seed << 17;
	u2 = (double)(sc->seed >> 11) / 9007199254740992.0;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Hold the current angle for @s seconds. */
static void scene_hold(struct scene *sc, double s)
{
	float a = sc->n ? sc->angle[sc->n - 1] : 0.0f;
	size_t k = (size_t)llround(s * FS);

	for (size_t i = 0; i < k && sc->n < MAXN; i++) {
		sc->angle[sc->n++] = a;
	}
}

/*
 * Move by @deg at @dps (20 ms cosine ramps in and out of the speed).
 * @return the sample the constant speed begins at
 */
static uint64_t scene_move(struct scene *sc, double deg, double dps)
{
	double a = sc->n ? sc->angle[sc->n - 1] : 0.0, dir = deg > 0 ? 1 : -1;
	double ramp = 0.02 * FS, travelled = 0, v;
	uint64_t steady = 0;

	for (size_t i = 0; fabs(travelled) < fabs(deg) && sc->n < MAXN; i++) {
		v = (double)i < ramp ? dps * 0.5 * (1 - cos(M_PI * (double)i / ramp)) : dps;
		if ((double)i >= ramp && !steady) {
			steady = sc->n;
		}
		/* ramp out over the last degrees */
		if (fabs(deg) - fabs(travelled) < dps * 0.01) {
			v = v * 0.5 > 2.0 ? v * 0.5 : 2.0;
		}
		travelled += dir * v / FS;
		sc->angle[sc->n++] = (float)(a + travelled);
	}
	return steady;
}

static void scene_onset_late(struct scene *sc, uint64_t dated, unsigned ch, bool on,
			     uint64_t decide)
{
	sc->onsets[sc->n_onsets++] = (struct onset){ dated, ch, on, decide };
}

static void scene_onset(struct scene *sc, uint64_t dated, unsigned ch, bool on)
{
	scene_onset_late(sc, dated, ch, on, DECIDE);
}

/* Run the scene through @s in blocks, with noise of @noise_deg. */
static void scene_run(struct scene *sc, struct stretch *s, double noise_deg)
{
	float blk[BLOCK];

	for (size_t i = 0; i < sc->n; i += BLOCK) {
		size_t m = sc->n - i < BLOCK ? sc->n - i : BLOCK;

		for (size_t j = 0; j < m; j++) {
			blk[j] = sc->angle[i + j] + (float)(noise_deg * scene_noise(sc));
		}
		stretch_angle(s, blk, m, i);
		for (size_t k = 0; k < sc->n_onsets; k++) {
			uint64_t d = sc->onsets[k].dated + sc->onsets[k].decide;

			if (d >= i && d < i + m) {
				stretch_edge(s, sc->onsets[k].ch, sc->onsets[k].on,
					     sc->onsets[k].dated);
			}
		}
	}
}

/* Ramps 0 -> 90 deg at several speeds, each back at 20 deg/s, onsets at known angles. */
static void test_stretch_ramps(void **state)
{
	static struct scene sc;
	static const double speeds[] = { 40, 80, 150, 250 };
	static const double dsrt[] = { 70, 60, 45, 30 };
	struct stretch *s;
	struct stretch_rec r;
	size_t got = 0;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	sc.seed = 0x5eed;
	scene_hold(&sc, 2.0);
	for (size_t k = 0; k < 4; k++) {
		uint64_t steady = scene_move(&sc, 90, speeds[k]);
		/* the onset where the angle passes the DSRT (at the constant speed) */
		uint64_t at = steady;

		while (sc.angle[at] < dsrt[k]) {
			at++;
		}
		scene_onset(&sc, at, 1, true);
		scene_onset(&sc, at + 300 < sc.n ? at + 300 : sc.n - 1, 1, false);
		scene_hold(&sc, 1.5);
		scene_move(&sc, -90, 20);
		scene_hold(&sc, 1.5);
	}
	scene_hold(&sc, 2.0);
	assert_int_equal(stretch_create(2, FS, &s), 0);
	scene_run(&sc, s, 0.2);
	/* each stretch and each return, in order */
	while (stretch_take(s, &r)) {
		size_t k = got / 2;

		if (got % 2 == 0) {
			assert_int_equal(r.dir, 1);
			assert_true(fabsf(r.start_deg) < 1.0f);
			assert_true(fabsf(r.end_deg - 90.0f) < 1.5f);
			/* the ramps in and out make it a little slower than the speed */
			assert_true(r.mean_dps < speeds[k] && r.mean_dps > 0.85 * speeds[k]);
			assert_int_equal(r.emg[0], STRETCH_NO_ONSET);
			assert_int_equal(r.emg[1], STRETCH_ONSET);
			assert_true(fabs(r.onset_deg[1] - dsrt[k]) < 0.5);
			/* a least-squares slope over 50 ms of 0.2 degree noise: about 2 deg/s */
			assert_true(fabs(r.onset_dps[1] - speeds[k]) < 5.0 + 0.02 * speeds[k]);
		} else {
			assert_int_equal(r.dir, -1);
			assert_true(fabsf(r.end_deg) < 1.5f);
			/* the channel's offset came in the hold: the return is from rest */
			assert_int_equal(r.emg[1], STRETCH_NO_ONSET);
		}
		got++;
	}
	assert_int_equal(got, 8);
	assert_int_equal(stretch_dropped(s), 0);
	stretch_destroy(s);
}

/* A muscle already active, an onset from before the stretch, a wobble, a gap. */
static void test_stretch_not_at_rest(void **state)
{
	static struct scene sc;
	struct stretch *s;
	struct stretch_rec r;
	uint64_t t0, t1;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	sc.seed = 42;
	scene_hold(&sc, 2.0);
	/* channel 0 active from 1.5 s, through the first stretch */
	scene_onset(&sc, 1500, 0, true);
	t0 = sc.n;
	scene_move(&sc, 60, 100);
	scene_onset(&sc, sc.n + 500, 0, false);
	scene_hold(&sc, 2.0);
	/* channel 1's burst dated 0.2 s before the second stretch, decided 0.3 s later */
	t1 = sc.n + 200;
	scene_onset_late(&sc, sc.n, 1, true, 300);
	scene_hold(&sc, 0.2);
	scene_move(&sc, -60, 100);
	scene_hold(&sc, 2.0);
	/* a wobble of 3 degrees is no stretch */
	scene_move(&sc, 3, 30);
	scene_move(&sc, -3, 30);
	scene_hold(&sc, 2.0);
	assert_int_equal(stretch_create(2, FS, &s), 0);
	scene_run(&sc, s, 0.1);
	assert_true(stretch_take(s, &r));
	assert_true(r.start + 30 > t0 && r.start < t0 + 30);
	assert_int_equal(r.emg[0], STRETCH_NOT_AT_REST);
	assert_int_equal(r.emg[1], STRETCH_NO_ONSET);
	assert_true(stretch_take(s, &r));
	assert_int_equal(r.dir, -1);
	assert_true(r.start + 30 > t1 && r.start < t1 + 30);
	assert_int_equal(r.emg[1], STRETCH_NOT_AT_REST);
	assert_false(stretch_take(s, &r));
	stretch_destroy(s);

	/* a gap in the middle of a stretch drops it, and what follows is not from rest */
	memset(&sc, 0, sizeof(sc));
	scene_hold(&sc, 2.0);
	scene_move(&sc, 60, 50);
	scene_hold(&sc, 2.0);
	assert_int_equal(stretch_create(1, FS, &s), 0);
	{
		float blk[BLOCK];

		for (size_t i = 0; i < sc.n; i += BLOCK) {
			size_t m = sc.n - i < BLOCK ? sc.n - i : BLOCK;

			memcpy(blk, sc.angle + i, m * sizeof(float));
			if (i == 2400) {
				stretch_gap(s, i);
			}
			stretch_angle(s, blk, m, i);
		}
	}
	assert_false(stretch_take(s, &r));
	assert_int_equal(stretch_dropped(s), 1);
	stretch_destroy(s);
}

static void test_stretch_create_bad(void **state)
{
	struct stretch *s = (struct stretch *)1;

	(void)state;
	assert_int_equal(stretch_create(0, FS, &s), -EINVAL);
	assert_null(s);
	assert_int_equal(stretch_create(SOURCE_MAX_CHANNELS + 1, FS, &s), -EINVAL);
	assert_int_equal(stretch_create(1, 15.0, &s), -EINVAL);
	stretch_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stretch_ramps),
		cmocka_unit_test(test_stretch_not_at_rest),
		cmocka_unit_test(test_stretch_create_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
