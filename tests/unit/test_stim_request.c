/* SPDX-License-Identifier: MIT */
/*
 * A request's timing, which the policy's check and the stim thread share:
 * pulse offsets in a theta burst, the schedule, and a late pulse that
 * delays the rest instead of squeezing the next one in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stim_request.h"

#define MS 1000000LL

/* Theta burst: 3 pulses at 50 Hz per burst, bursts 200 ms apart, 2 trains 2 s apart. */
static const struct stim_request stim_request_theta = {
	.pulses = 6, .frequency_hz = 50.0, .burst_pulses = 3, .burst_period_ns = 200 * MS,
	.cycles = 2, .cycle_period_ns = 2000 * MS, .start_ns = 1000 * MS,
};

static void test_stim_request_schedule(void **state)
{
	const struct stim_request *r = &stim_request_theta;

	(void)state;
	assert_int_equal(stim_request_offset_ns(r, 0), 0);
	assert_int_equal(stim_request_offset_ns(r, 2), 40 * MS);
	assert_int_equal(stim_request_offset_ns(r, 3), 200 * MS);
	assert_int_equal(stim_request_span_ns(r), 2000 * MS + 240 * MS);
	assert_int_equal(stim_request_at_ns(r, 1, 4), 1000 * MS + 2000 * MS + 220 * MS);
	/* on time: on the schedule */
	assert_int_equal(stim_request_next_ns(r, 0, 1, 1000 * MS), 1020 * MS);
	assert_int_equal(stim_request_next_ns(r, 1, 0, 1240 * MS), 3000 * MS);
	/* late: the designed spacing from the late pulse, within a burst and across trains */
	assert_int_equal(stim_request_next_ns(r, 0, 1, 1015 * MS), 1035 * MS);
	assert_int_equal(stim_request_next_ns(r, 0, 3, 1150 * MS), 1310 * MS);
	assert_int_equal(stim_request_next_ns(r, 1, 0, 2900 * MS), 2900 * MS + 1760 * MS);
}

static void test_stim_request_first_and_left(void **state)
{
	struct stim_request r = stim_request_theta;

	(void)state;
	assert_int_equal(stim_request_first_ns(&r, 500 * MS, false, 0), 1000 * MS);
	assert_int_equal(stim_request_first_ns(&r, 1500 * MS, false, 0), 1500 * MS);
	r.gap_ns = 300 * MS;	/* open loop: never closer than 300 ms to the last pulse */
	assert_int_equal(stim_request_first_ns(&r, 500 * MS, true, 900 * MS), 1200 * MS);
	assert_int_equal(stim_request_first_ns(&r, 500 * MS, false, 900 * MS), 1000 * MS);
	assert_int_equal(stim_request_left(&r, 0, 0, 0), 12);
	assert_int_equal(stim_request_left(&r, 1, 2, 8), 4);
	r.pulse_budget = 5;
	assert_int_equal(stim_request_left(&r, 0, 3, 3), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stim_request_schedule),
		cmocka_unit_test(test_stim_request_first_and_left),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
