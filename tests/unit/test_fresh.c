/* SPDX-License-Identifier: MIT */
/*
 * EMG freshness: the last block's time and the longest gap between two
 * blocks, which the stim thread's stall check takes (a stall both threads
 * slept through must still show).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fresh.h"

#define MS 1000000LL

/* The longest gap between fresh blocks, reported once, the first block never a gap. */
static void test_fresh_stall(void **state)
{
	struct fresh *f;

	(void)state;
	assert_int_equal(fresh_create(&f), 0);
	assert_int_equal(fresh_last(f), INT64_MIN);
	assert_int_equal(fresh_take_stall(f), 0);
	fresh_mark(f, 5 * MS);
	assert_int_equal(fresh_take_stall(f), 0);
	fresh_mark(f, 7 * MS);
	fresh_mark(f, 900 * MS);
	fresh_mark(f, 902 * MS);
	assert_int_equal(fresh_take_stall(f), 893 * MS);
	assert_int_equal(fresh_take_stall(f), 0);
	assert_int_equal(fresh_last(f), 902 * MS);
	fresh_destroy(f);
	fresh_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_stall),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
