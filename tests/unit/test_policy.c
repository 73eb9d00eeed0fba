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
	assert_int_equal(policy_train_span_ns(1, 20.0), 0);
	assert_int_equal(policy_train_span_ns(5, 20.0), 200 * MS);
	assert_int_equal(policy_train_span_ns(3, 0.0), 0);
	policy_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_train_and_refractory),
		cmocka_unit_test(test_policy_single),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
