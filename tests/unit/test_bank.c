/* SPDX-License-Identifier: MIT */
/*
 * The detector bank: channel rules (any, all, a named channel), the
 * artefact blank and the error for an unknown channel, on two channels of
 * seeded synthetic EMG whose bursts overlap:
 *   channel "a": a burst 3.0-4.0 s
 *   channel "b": a burst 3.5-5.0 s
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bank.h"
#include "config.h"

#define FS 1000.0
#define SECONDS 7
#define MAX_EV 16

static const char names[2][BANK_NAME_MAX] = { "a", "b" };

struct got {
	struct bank_event ev[MAX_EV];
	size_t n;
};

static void test_cfg(struct rpmsd_config *cfg, const char *rule)
{
	char err[256];

	config_defaults(cfg);
	/* A replay source needs a file for the cross-key checks; it is not read. */
	assert_int_equal(config_override(cfg, "test", "source", "file", "x.txt", err,
					 sizeof(err)), 0);
	assert_int_equal(config_override(cfg, "test", "detect", "channel_rule", rule, err,
					 sizeof(err)), 0);
	assert_int_equal(config_recheck(cfg, "test", err, sizeof(err)), 0);
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

static double hum_amp;	/* 50 Hz hum added to both channels, µV peak */
static double hum_hz = 50.0;

/* Rest noise of 10 µV on a 2048 offset; bursts 20x that. */
static float *make_signal(void)
{
	float *x = calloc((size_t)(SECONDS * FS) * 2, sizeof(float));
	uint64_t seed = 42;
	long i;

	assert_non_null(x);
	for (i = 0; i < (long)(SECONDS * FS); i++) {
		double t = (double)i / FS;
		double ga = t >= 3.0 && t < 4.0 ? 20.0 : 1.0;
		double gb = t >= 3.5 && t < 5.0 ? 20.0 : 1.0;

		double hum = hum_amp * sin(2.0 * M_PI * hum_hz * t);

		x[2 * i] = (float)(2048.0 + hum + 10.0 * ga * gauss(&seed));
		x[2 * i + 1] = (float)(2048.0 + hum + 10.0 * gb * gauss(&seed));
	}
	return x;
}

static void collect(void *ctx, const struct bank_event *ev)
{
	struct got *g = ctx;

	if (ev->edge == DETECT_CALIBRATED) {
		return;
	}
	assert_true(g->n < MAX_EV);
	g->ev[g->n++] = *ev;
}

static void run(const char *rule, struct got *g, int blank_at)
{
	struct rpmsd_config cfg;
	struct bank *b = NULL;
	char err[256] = "";
	float *x = make_signal();
	size_t i, n = (size_t)(SECONDS * FS);

	test_cfg(&cfg, rule);
	assert_int_equal(bank_create(&cfg, FS, 2, names, &b, err, sizeof(err)), 0);
	memset(g, 0, sizeof(*g));
	for (i = 0; i < n; i += 8) {
		if (blank_at >= 0 && i == (size_t)blank_at) {
			bank_blank(b, i);
		}
		bank_process(b, x + 2 * i, 8, i, collect, g);
	}
	bank_destroy(b);
	free(x);
}

/* One onset and one offset, decided by @on_ch and @off_ch near the times. */
static void expect_burst(const struct got *g, unsigned on_ch, double on_s, unsigned off_ch,
			 double off_s)
{
	assert_int_equal(g->n, 2);
	assert_int_equal(g->ev[0].edge, DETECT_ONSET);
	assert_int_equal(g->ev[0].channel, on_ch);
	assert_true(fabs((double)g->ev[0].r.edge_sample / FS - on_s) < 0.06);
	assert_int_equal(g->ev[1].edge, DETECT_OFFSET);
	assert_int_equal(g->ev[1].channel, off_ch);
	assert_true(fabs((double)g->ev[1].r.edge_sample / FS - off_s) < 0.1);
}

static void test_rule_any(void **state)
{
	struct got g;

	(void)state;
	run("any", &g, -1);
	expect_burst(&g, 0, 3.0, 1, 5.0);
}

static void test_rule_all(void **state)
{
	struct got g;

	(void)state;
	run("all", &g, -1);
	expect_burst(&g, 1, 3.5, 0, 4.0);
}

static void test_rule_named(void **state)
{
	struct got g;

	(void)state;
	run("b", &g, -1);
	expect_burst(&g, 1, 3.5, 1, 5.0);
	run("a", &g, -1);
	expect_burst(&g, 0, 3.0, 0, 4.0);
}

static void test_unknown_channel(void **state)
{
	struct rpmsd_config cfg;
	struct bank *b = NULL;
	char err[256] = "";

	(void)state;
	test_cfg(&cfg, "emg3");
	assert_int_equal(bank_create(&cfg, FS, 2, names, &b, err, sizeof(err)), -EINVAL);
	assert_null(b);
	assert_string_equal(err, "detect.channel_rule: no channel 'emg3' in the source (channels: a, b)");
}

/*
 * Mains hum 30x the rest EMG: the notches remove it, and the spike
 * limiter, switched on at the end of calibration, must not clip it (it
 * would turn the hum into broadband harmonics): the same burst, decided
 * as without hum, and nothing at the switch-on.
 */
static void test_hum_not_clipped(void **state)
{
	struct got g;

	(void)state;
	hum_amp = 300.0;
	run("any", &g, -1);
	hum_amp = 0.0;
	expect_burst(&g, 0, 3.0, 1, 5.0);
}

/*
 * A 1 s train at 20 Hz after the bursts (a 3,000 µV artefact at every
 * pulse, each blanked for 50 ms: one blank from the first pulse to 50 ms
 * after the last) under hum of 3 and 10 x the rest EMG, 0.05 Hz off
 * nominal. Fed the held input through the blank, the mains canceller
 * unlearned the hum, and it came back after the train as a false onset;
 * the chain now holds its state through the blank and bridges it at the
 * frequency it had, and the detectors wait while it takes the hum up
 * again.
 */
static void test_train_under_hum(void **state)
{
	static const double amp[] = { 3.0 * 14.1, 10.0 * 14.1 };
	struct rpmsd_config cfg;
	size_t k, i, n = (size_t)(SECONDS * FS);

	(void)state;
	hum_hz = 50.05;
	for (k = 0; k < 2; k++) {
		struct bank *b = NULL;
		char err[256] = "";
		struct got g;
		float *x;

		hum_amp = amp[k];
		x = make_signal();
		test_cfg(&cfg, "any");
		assert_int_equal(bank_create(&cfg, FS, 2, names, &b, err, sizeof(err)), 0);
		memset(&g, 0, sizeof(g));
		for (i = 0; i < n; i += 2) {
			if (i >= 5400 && i < 6400 && (i - 5400) % 50 == 0) {
				x[2 * i] += 3000.0f;
				x[2 * i + 1] += 3000.0f;
				bank_blank(b, i);
			}
			bank_process(b, x + 2 * i, 2, i, collect, &g);
		}
		bank_destroy(b);
		free(x);
		expect_burst(&g, 0, 3.0, 1, 5.0);
	}
	hum_amp = 0.0;
	hum_hz = 50.0;
}

/* A blank over the start of the bursts hides it: the onset comes after. */
static void test_blank_hides(void **state)
{
	struct got g;

	(void)state;
	run("any", &g, 2992);
	assert_true(g.n >= 1);
	assert_int_equal(g.ev[0].edge, DETECT_ONSET);
	/*
	 * The blank (50 ms by default) ends at 3.042 s: nothing is decided in
	 * it, and the onset is dated from what was seen before it (the last
	 * quiet samples, or up to 30 ms before them for a ramp's foot).
	 */
	assert_true(g.ev[0].sample >= 3042);
	assert_true(g.ev[0].r.edge_sample >= 2955 && g.ev[0].r.edge_sample < 2992);
}

struct held {
	float raw[SECONDS * 1000];	/* channel 0 as the detector saw it */
};

static void trace_raw(void *ctx, const struct bank_trace *t)
{
	struct held *h = ctx;

	if (t->channel == 0 && t->sample < SECONDS * 1000) {
		h->raw[t->sample] = t->raw;
	}
}

/*
 * Two pulses announced before one long block, their blanks apart: both
 * are blanked, from each pulse's own sample, whichever block announced
 * them (the second used to replace the first). A blank announced in an
 * earlier block starts at its sample, not at once.
 */
static void test_blank_windows(void **state)
{
	static struct held h;
	struct rpmsd_config cfg;
	struct bank *b = NULL;
	struct got g;
	char err[256] = "";
	float *x = make_signal();
	size_t i;

	(void)state;
	test_cfg(&cfg, "any");
	assert_int_equal(bank_create(&cfg, FS, 2, names, &b, err, sizeof(err)), 0);
	bank_set_trace(b, trace_raw, &h);
	memset(&g, 0, sizeof(g));
	bank_process(b, x, 1000, 0, collect, &g);
	bank_blank(b, 1100);	/* announced a block early */
	bank_process(b, x + 2 * 1000, 96, 1000, collect, &g);
	/* both before the block that holds them; the first touches the last blank */
	bank_blank(b, 1150);
	bank_blank(b, 1300);
	bank_process(b, x + 2 * 1096, 324, 1096, collect, &g);
	/* announced late (a sample already processed): the rest of it still holds */
	bank_blank(b, 1400);
	bank_process(b, x + 2 * 1420, 580, 1420, collect, &g);
	for (i = 1000; i < 1500; i++) {
		size_t from = i >= 1420 && i < 1450 ? 1420 : i >= 1300 && i < 1350 ? 1300 :
			      i >= 1100 && i < 1200 ? 1100 : 0;
		float want = from ? x[2 * (from - 1)] : x[2 * i];

		if (h.raw[i] != want) {
			fail_msg("sample %zu: %g seen, %g expected (%s)", i, h.raw[i], want,
				 from ? "blanked" : "clean");
		}
	}
	bank_destroy(b);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_any),
		cmocka_unit_test(test_rule_all),
		cmocka_unit_test(test_rule_named),
		cmocka_unit_test(test_unknown_channel),
		cmocka_unit_test(test_hum_not_clipped),
		cmocka_unit_test(test_train_under_hum),
		cmocka_unit_test(test_blank_hides),
		cmocka_unit_test(test_blank_windows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
