/* SPDX-License-Identifier: MIT */
/*
 * Session clock: the virtual hand-off between an "acquire" (this test) and
 * a "stim" thread that records when each of its waits returned, and the
 * real clock's waits. Each case here once was, or could be, a lost pulse
 * or a hang.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "sclock.h"

#define MS 1000000LL

struct waiter {
	struct sclock *clk;
	atomic_uint word;
	int64_t deadlines[8];	/* waits to do, in order; SCLOCK_NEVER: wait for a kick */
	int n;
	int64_t woke[8];	/* session time each wait returned */
	atomic_int done;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;
	int i;

	for (i = 0; i < w->n; i++) {
		unsigned seen = atomic_load(&w->word);

		w->woke[i] = sclock_wait(w->clk, w->deadlines[i], &w->word, seen);
		atomic_store(&w->done, i + 1);
	}
	/* Like the stim thread: stay until the clock is stopped. */
	while (!sclock_stopped(w->clk)) {
		sclock_wait(w->clk, SCLOCK_NEVER, &w->word, atomic_load(&w->word));
	}
	return NULL;
}

static void test_sclock_virtual_steps_onto_deadlines(void **state)
{
	struct waiter w = { .n = 3, .deadlines = { 10 * MS, 25 * MS, 40 * MS } };
	pthread_t tid;

	(void)state;
	assert_int_equal(sclock_create(true, &w.clk), 0);
	assert_true(sclock_is_virtual(w.clk));
	assert_int_equal(pthread_create(&tid, NULL, waiter_thread, &w), 0);
	/* one big step: time must stop at 10 and 25 ms on the way */
	sclock_advance(w.clk, 30 * MS);
	assert_int_equal(atomic_load(&w.done), 2);
	assert_int_equal(w.woke[0], 10 * MS);
	assert_int_equal(w.woke[1], 25 * MS);
	assert_int_equal(sclock_now(w.clk), 30 * MS);
	/* a deadline exactly at the step's end fires at that time, not later */
	sclock_advance(w.clk, 40 * MS);
	assert_int_equal(atomic_load(&w.done), 3);
	assert_int_equal(w.woke[2], 40 * MS);
	/* time never goes backwards */
	sclock_advance(w.clk, 5 * MS);
	assert_int_equal(sclock_now(w.clk), 40 * MS);
	sclock_stop(w.clk);
	pthread_join(tid, NULL);
	sclock_destroy(w.clk);
}

static void test_sclock_virtual_kick_seen_before_time_moves(void **state)
{
	struct waiter w = { .n = 2, .deadlines = { SCLOCK_NEVER, SCLOCK_NEVER } };
	pthread_t tid;

	(void)state;
	assert_int_equal(sclock_create(true, &w.clk), 0);
	assert_int_equal(pthread_create(&tid, NULL, waiter_thread, &w), 0);
	sclock_advance(w.clk, 7 * MS);		/* waiter is idle: time just moves */
	sclock_kick(w.clk, &w.word);
	sclock_advance(w.clk, 100 * MS);	/* the kick is handled at 7 ms */
	assert_true(atomic_load(&w.done) >= 1);
	assert_int_equal(w.woke[0], 7 * MS);
	sclock_kick(w.clk, &w.word);
	sclock_advance(w.clk, 100 * MS);
	assert_int_equal(atomic_load(&w.done), 2);
	assert_int_equal(w.woke[1], 100 * MS);
	sclock_stop(w.clk);
	pthread_join(tid, NULL);
	sclock_destroy(w.clk);
}

static void test_sclock_stop_releases_waiter(void **state)
{
	struct waiter w = { .n = 1, .deadlines = { SCLOCK_NEVER } };
	pthread_t tid;
	int i;

	(void)state;
	/* Many rounds: a stop racing with the waiter going to sleep must not hang. */
	for (i = 0; i < 200; i++) {
		atomic_store(&w.done, 0);
		assert_int_equal(sclock_create(i % 2 == 0, &w.clk), 0);
		sclock_start(w.clk);
		assert_int_equal(pthread_create(&tid, NULL, waiter_thread, &w), 0);
		sclock_stop(w.clk);
		pthread_join(tid, NULL);
		assert_int_equal(atomic_load(&w.done), 1);
		sclock_destroy(w.clk);
	}
}

static void test_sclock_real_deadline_and_kick(void **state)
{
	struct waiter w = { .n = 2, .deadlines = { 20 * MS, SCLOCK_NEVER } };
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 30 * MS };
	pthread_t tid;

	(void)state;
	assert_int_equal(sclock_create(false, &w.clk), 0);
	assert_false(sclock_is_virtual(w.clk));
	sclock_start(w.clk);
	assert_int_equal(pthread_create(&tid, NULL, waiter_thread, &w), 0);
	nanosleep(&ts, NULL);
	/* the first wait ended at its deadline, never before it */
	assert_int_equal(atomic_load(&w.done), 1);
	assert_true(w.woke[0] >= 20 * MS);
	/* the second has no deadline: only the kick ends it */
	sclock_kick(w.clk, &w.word);
	while (atomic_load(&w.done) < 2) {
		nanosleep(&ts, NULL);
	}
	assert_true(w.woke[1] >= w.woke[0]);
	sclock_stop(w.clk);
	pthread_join(tid, NULL);
	/* sclock_advance is a no-op on the real clock */
	sclock_advance(w.clk, 3600 * 1000 * MS);
	assert_true(sclock_now(w.clk) < 3600 * 1000 * MS);
	sclock_destroy(w.clk);
	sclock_destroy(NULL);
}

static void test_sclock_last_sample(void **state)
{
	struct sclock *c;

	(void)state;
	assert_int_equal(sclock_create(true, &c), 0);
	assert_int_equal(sclock_last_sample(c), 0);
	sclock_set_last_sample(c, 12345);
	assert_int_equal(sclock_last_sample(c), 12345);
	sclock_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sclock_virtual_steps_onto_deadlines),
		cmocka_unit_test(test_sclock_virtual_kick_seen_before_time_moves),
		cmocka_unit_test(test_sclock_stop_releases_waiter),
		cmocka_unit_test(test_sclock_real_deadline_and_kick),
		cmocka_unit_test(test_sclock_last_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
