/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"
#include "policy.h"

#define MS 1000000LL

static void test_policy_train_and_refractory(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_TRAIN;
	cfg.stim.train_pulses = 5;
	cfg.stim.train_frequency_hz = 20.0;
	cfg.stim.intensity_pct = 35.0;
	cfg.stim.pulse_width_us = 200;
	cfg.stim.refractory_ms = 300.0;
	assert_int_equal(policy_create(&cfg, &p), 0);

	assert_int_equal(policy_on_onset(p, 1000 * MS, 1000, 2, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 1);
	assert_int_equal(r.pulses, 5);
	assert_true(r.frequency_hz == 20.0);
	assert_true(r.intensity_pct == 35.0);
	assert_int_equal(r.width_us, 200);
	assert_int_equal(r.start_ns, 1000 * MS);
	assert_int_equal(r.trigger_sample, 1000);
	assert_int_equal(r.channel, 2);
	/* busy until 1000 + 200 (train span) + 300 (refractory) ms */
	assert_int_equal(policy_on_onset(p, 1499 * MS, 1499, 0, &r), EVENT_ACTION_REFRACTORY);
	assert_int_equal(policy_on_onset(p, 1500 * MS, 1500, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 2);
	/* a request that could not be posted does not start a refractory time */
	policy_cancel_last(p);
	assert_int_equal(policy_on_onset(p, 1501 * MS, 1501, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 3);
	policy_destroy(p);
	policy_destroy(NULL);
}

static void test_policy_single(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_SINGLE;
	cfg.stim.refractory_ms = 0.0;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.pulses, 1);
	/* refractory 0 and no train span: the very next onset may ask again */
	assert_int_equal(policy_on_onset(p, 0, 1, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(policy_span_ns(&r), 0);
	assert_int_equal(r.cycles, 1);
	policy_destroy(p);
}

/* 25 Hz, 1 s on / 2 s off, 3 cycles: the clinical rPMS pattern. */
static void test_policy_onoff(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_ONOFF;
	cfg.stim.train_frequency_hz = 25.0;
	cfg.stim.on_ms = 1000.0;
	cfg.stim.off_ms = 2000.0;
	cfg.stim.cycles = 3;
	cfg.stim.refractory_ms = 0.0;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.pulses, 25);
	assert_int_equal(r.burst_pulses, 25);
	assert_int_equal(r.burst_period_ns, 0);
	assert_int_equal(r.cycles, 3);
	assert_int_equal(r.cycle_period_ns, 3000 * MS);
	assert_int_equal(policy_pulse_offset_ns(&r, 0), 0);
	assert_int_equal(policy_pulse_offset_ns(&r, 24), 960 * MS);
	/* two whole cycles, then the third train's 24 periods */
	assert_int_equal(policy_span_ns(&r), 6960 * MS);
	/* each train is its own train for the gate: ids 1, 2, 3 */
	assert_int_equal(r.train_id, 1);
	assert_int_equal(policy_on_onset(p, 6959 * MS, 1, 0, &r), EVENT_ACTION_REFRACTORY);
	assert_int_equal(policy_on_onset(p, 6960 * MS, 2, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 4);
	policy_destroy(p);
}

/* Theta burst: 3 pulses at 50 Hz every 200 ms, 10 bursts per train. */
static void test_policy_theta(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_THETA;
	cfg.stim.off_ms = 8000.0;
	cfg.stim.cycles = 2;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_REQUESTED);
	assert_false(r.open_loop);
	assert_int_equal(r.pulses, 30);
	assert_int_equal(r.burst_pulses, 3);
	assert_true(r.frequency_hz == 50.0);
	assert_int_equal(r.burst_period_ns, 200 * MS);
	/* a 2 s train every 10 s (intermittent theta burst) */
	assert_int_equal(r.cycle_period_ns, 10000 * MS);
	assert_int_equal(policy_pulse_offset_ns(&r, 1), 20 * MS);
	assert_int_equal(policy_pulse_offset_ns(&r, 2), 40 * MS);
	assert_int_equal(policy_pulse_offset_ns(&r, 3), 200 * MS);
	assert_int_equal(policy_pulse_offset_ns(&r, 29), 1840 * MS);
	policy_destroy(p);
}

/* Open loop: runs while armed, to the count, and ignores the EMG. */
static void test_policy_open_loop(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.mode = CONFIG_MODE_OPEN_LOOP;
	cfg.stim.protocol = CONFIG_PROTOCOL_ONOFF;
	cfg.stim.train_frequency_hz = 20.0;
	cfg.stim.on_ms = 500.0;
	cfg.stim.off_ms = 1000.0;
	cfg.stim.open_loop_pulses = 25;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_NONE);
	/* not armed: nothing */
	assert_false(policy_tick(p, 0, false, true, 0, &r));
	assert_true(policy_tick(p, 5 * MS, true, true, 0, &r));
	assert_int_equal(r.pulses, 10);
	assert_int_equal(r.cycles, 3);		/* 10 + 10 + 5 */
	assert_int_equal(r.pulse_budget, 25);
	assert_int_equal(r.start_ns, 5 * MS);
	assert_int_equal(r.train_id, 1);
	/* what it does not deliver is asked for again: counted once (stim.c) */
	assert_true(r.open_loop);
	/* running: nothing more */
	assert_false(policy_tick(p, 100 * MS, true, false, 3, &r));
	/* cut short after 12 pulses: off_ms later, a request for the 13 left */
	assert_false(policy_tick(p, 2000 * MS, true, true, 12, &r));
	assert_false(policy_tick(p, 2999 * MS, true, true, 12, &r));
	assert_true(policy_tick(p, 3000 * MS, true, true, 12, &r));
	assert_int_equal(r.pulse_budget, 13);
	assert_int_equal(r.cycles, 2);
	assert_int_equal(r.train_id, 4);
	assert_false(policy_done(p, 24));
	assert_true(policy_done(p, 25));
	assert_false(policy_tick(p, 9000 * MS, true, true, 25, &r));
	policy_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_train_and_refractory),
		cmocka_unit_test(test_policy_single),
		cmocka_unit_test(test_policy_onoff),
		cmocka_unit_test(test_policy_theta),
		cmocka_unit_test(test_policy_open_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
