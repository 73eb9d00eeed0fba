/* SPDX-License-Identifier: MIT */
/*
 * Regression pins for the detector (the daemon's bank, through the replay
 * source, exactly as rpms-detect runs it) on fixed recordings:
 *  - two trials of a simulated set with true onsets (tests/data/detect,
 *    Apache-2.0): every true onset is found within +/-50 ms, and every
 *    detected onset is pinned within +/-5 ms of what the detector gave
 *    when the pins were written;
 *  - the bundled real recording (data/emg/emg_1.txt): the three bursts
 *    after calibration, pinned the same way, and nothing else.
 * A change to the detector that moves an onset fails here: look at
 * docs/detection.md (bench/eval) before moving a pin.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bank.h"
#include "config.h"
#include "source.h"

#define MAX_ONSETS 32
#define PIN_TOL 5		/* samples, 1 kHz: 5 ms */
#define TRUTH_TOL 50		/* samples: the evaluation's matching window */

struct found {
	uint64_t onset[MAX_ONSETS];
	size_t n_on, n_off;
};

static void collect(void *ctx, const struct bank_event *ev)
{
	struct found *f = ctx;

	if (ev->edge == DETECT_ONSET) {
		assert_true(f->n_on < MAX_ONSETS);
		f->onset[f->n_on++] = ev->r.edge_sample;
	} else if (ev->edge == DETECT_OFFSET) {
		f->n_off++;
	}
}

/* Run the detector with its defaults (and @cal_s of calibration) on @path. */
static void detect_file(const char *path, double cal_s, struct found *f)
{
	static struct rpmsd_config cfg;
	char err[2048] = "", num[32];
	struct source *src = NULL;
	struct bank *b = NULL;
	struct source_block blk;
	float buf[64];
	int ret;

	config_defaults(&cfg);
	snprintf(num, sizeof(num), "%g", cal_s);
	assert_int_equal(config_override(&cfg, "test", "source", "file", path, err,
					 sizeof(err)), 0);
	assert_int_equal(config_override(&cfg, "test", "detect", "calibration_s", num, err,
					 sizeof(err)), 0);
	assert_int_equal(config_override(&cfg, "test", "source", "block_frames", "64", err,
					 sizeof(err)), 0);
	if (source_replay_open(&cfg, false, &src, err, sizeof(err)) < 0) {
		fail_msg("%s: %s", path, err);
	}
	assert_int_equal(src->channels, 1);
	if (bank_create(&cfg, src->rate_hz, 1, NULL, &b, err, sizeof(err)) < 0) {
		fail_msg("bank: %s", err);
	}
	memset(f, 0, sizeof(*f));
	assert_int_equal(src->ops->start(src, 0, NULL), 0);
	while ((ret = src->ops->read(src, buf, 64, &blk)) > 0) {
		bank_process(b, buf, blk.frames, blk.first_sample, collect, f);
	}
	assert_int_equal(ret, 0);
	bank_destroy(b);
	source_destroy(src);
}

static void expect_pins(const struct found *f, const uint64_t *pins, size_t n)
{
	size_t i;

	assert_int_equal(f->n_on, n);
	for (i = 0; i < n; i++) {
		if (f->onset[i] + PIN_TOL < pins[i] || f->onset[i] > pins[i] + PIN_TOL) {
			fail_msg("onset %zu at %llu, pinned at %llu (+/-%d)", i,
				 (unsigned long long)f->onset[i], (unsigned long long)pins[i],
				 PIN_TOL);
		}
	}
}

static void expect_truth(const struct found *f, const uint64_t *truth, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < f->n_on; j++) {
			if (f->onset[j] + TRUTH_TOL >= truth[i] && f->onset[j] <= truth[i] + TRUTH_TOL) {
				break;
			}
		}
		if (j == f->n_on) {
			fail_msg("true onset %llu: no onset within +/-%d samples",
				 (unsigned long long)truth[i], TRUTH_TOL);
		}
	}
}

/* Calibration must end before the first burst (607): 0.4 s of rest. */
static void test_sim_trial6(void **state)
{
	static const uint64_t truth[] = { 607, 5272, 9547, 13195, 18699 };
	static const uint64_t pins[] = { 631, 5296, 9562, 13209, 18748 };
	struct found f;

	(void)state;
	detect_file(TEST_DATA_DIR "/detect/sim_trial6.txt", 0.4, &f);
	expect_truth(&f, truth, 5);
	expect_pins(&f, pins, 5);
	assert_int_equal(f.n_off, 5);
}

static void test_sim_trial10(void **state)
{
	static const uint64_t truth[] = { 914, 5604, 10034, 14732, 19645 };
	static const uint64_t pins[] = { 930, 5599, 10050, 14755, 19651 };
	struct found f;

	(void)state;
	detect_file(TEST_DATA_DIR "/detect/sim_trial10.txt", 0.4, &f);
	expect_truth(&f, truth, 5);
	expect_pins(&f, pins, 5);
	assert_int_equal(f.n_off, 5);
}

/* The real recording, default 2 s calibration: 15.5, 25.6, 26.3 s. */
static void test_bundled_recording(void **state)
{
	static const uint64_t pins[] = { 15455, 25611, 26332 };
	struct found f;

	(void)state;
	detect_file(TEST_SOURCE_ROOT "/data/emg/emg_1.txt", 2.0, &f);
	expect_pins(&f, pins, 3);
	assert_int_equal(f.n_off, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_trial6),
		cmocka_unit_test(test_sim_trial10),
		cmocka_unit_test(test_bundled_recording),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
