/* SPDX-License-Identifier: MIT */
/*
 * The command ring: post order kept, a full ring refused to the poster
 * (never a silent drop), many posters at once, and the drain.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cmdq.h"

#define TEST_CMDQ_POSTERS 4
#define TEST_CMDQ_EACH 20000

struct test_cmdq_rec {
	uint32_t poster;
	uint32_t n;
	uint64_t check;		/* a function of both: a torn copy shows */
};

static void test_cmdq_bad_sizes(void **state)
{
	struct cmdq *q = NULL;

	(void)state;
	assert_int_equal(cmdq_create(3, 8, &q), -EINVAL);
	assert_int_equal(cmdq_create(1, 8, &q), -EINVAL);
	assert_int_equal(cmdq_create(4, 0, &q), -EINVAL);
	assert_null(q);
	cmdq_destroy(NULL);
}

/* Taken in the order posted, across the ring's wrap. */
static void test_cmdq_order(void **state)
{
	struct cmdq *q;
	uint32_t v, i, got;

	(void)state;
	assert_int_equal(cmdq_create(4, sizeof(v), &q), 0);
	assert_false(cmdq_take(q, &got));
	for (i = 0; i < 10; i++) {
		v = 2 * i;
		assert_int_equal(cmdq_post(q, &v), 0);
		v = 2 * i + 1;
		assert_int_equal(cmdq_post(q, &v), 0);
		assert_true(cmdq_take(q, &got));
		assert_int_equal(got, 2 * i);
		assert_true(cmdq_take(q, &got));
		assert_int_equal(got, 2 * i + 1);
		assert_false(cmdq_take(q, &got));
	}
	cmdq_destroy(q);
}

/* A full ring refuses the post and keeps what it holds; a take makes room. */
static void test_cmdq_full(void **state)
{
	struct cmdq *q;
	uint32_t v, got;

	(void)state;
	assert_int_equal(cmdq_create(4, sizeof(v), &q), 0);
	assert_int_equal(cmdq_capacity(q), 4);
	for (v = 0; v < 4; v++) {
		assert_int_equal(cmdq_post(q, &v), 0);
	}
	v = 99;
	assert_int_equal(cmdq_post(q, &v), -ENOSPC);
	assert_true(cmdq_take(q, &got));
	assert_int_equal(got, 0);
	assert_int_equal(cmdq_post(q, &v), 0);
	for (v = 1; v < 4; v++) {
		assert_true(cmdq_take(q, &got));
		assert_int_equal(got, v);
	}
	assert_true(cmdq_take(q, &got));
	assert_int_equal(got, 99);
	assert_false(cmdq_take(q, &got));
	cmdq_destroy(q);
}

struct test_cmdq_poster {
	struct cmdq *q;
	uint32_t id;
	uint64_t refused;	/* posts the full ring refused (then tried again) */
	atomic_uint *finished;	/* posters done */
};

static void *test_cmdq_post_thread(void *arg)
{
	struct test_cmdq_poster *p = arg;
	struct test_cmdq_rec r = { .poster = p->id };

	for (r.n = 0; r.n < TEST_CMDQ_EACH; r.n++) {
		r.check = (uint64_t)r.poster * 1000003u + r.n;
		while (cmdq_post(p->q, &r) == -ENOSPC) {
			p->refused++;
			sched_yield();
		}
	}
	atomic_fetch_add(p->finished, 1);
	return NULL;
}

/*
 * Many posters, one consumer draining as it goes: every record arrives
 * once, whole, and each poster's in its own order.
 */
static void test_cmdq_many_posters(void **state)
{
	struct test_cmdq_poster p[TEST_CMDQ_POSTERS];
	pthread_t tid[TEST_CMDQ_POSTERS];
	uint32_t next[TEST_CMDQ_POSTERS] = { 0 };
	struct test_cmdq_rec r;
	struct cmdq *q;
	atomic_uint finished = 0;
	bool all_done = false;
	uint64_t got = 0;
	unsigned i;

	(void)state;
	assert_int_equal(cmdq_create(16, sizeof(r), &q), 0);
	for (i = 0; i < TEST_CMDQ_POSTERS; i++) {
		p[i] = (struct test_cmdq_poster){ .q = q, .id = i, .finished = &finished };
		assert_int_equal(pthread_create(&tid[i], NULL, test_cmdq_post_thread, &p[i]), 0);
	}
	for (;;) {
		if (!cmdq_take(q, &r)) {
			/* every poster done and nothing left: a lost record shows as a short count */
			if (all_done) {
				break;
			}
			all_done = atomic_load(&finished) == TEST_CMDQ_POSTERS;
			sched_yield();
			continue;
		}
		assert_true(r.poster < TEST_CMDQ_POSTERS);
		assert_int_equal(r.n, next[r.poster]);
		assert_int_equal(r.check, (uint64_t)r.poster * 1000003u + r.n);
		next[r.poster]++;
		got++;
	}
	for (i = 0; i < TEST_CMDQ_POSTERS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(next[i], TEST_CMDQ_EACH);
	}
	assert_int_equal(got, (uint64_t)TEST_CMDQ_POSTERS * TEST_CMDQ_EACH);
	assert_false(cmdq_take(q, &r));
	cmdq_destroy(q);
}

/* The drain: everything posted before it is taken in one pass, then nothing. */
static void test_cmdq_drain(void **state)
{
	struct cmdq *q;
	uint32_t v, n = 0;

	(void)state;
	assert_int_equal(cmdq_create(8, sizeof(v), &q), 0);
	for (v = 0; v < 8; v++) {
		assert_int_equal(cmdq_post(q, &v), 0);
	}
	while (cmdq_take(q, &v)) {
		assert_int_equal(v, n);
		n++;
	}
	assert_int_equal(n, 8);
	for (v = 0; v < 8; v++) {
		assert_int_equal(cmdq_post(q, &v), 0);	/* all the room is back */
	}
	cmdq_destroy(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmdq_bad_sizes),
		cmocka_unit_test(test_cmdq_order),
		cmocka_unit_test(test_cmdq_full),
		cmocka_unit_test(test_cmdq_many_posters),
		cmocka_unit_test(test_cmdq_drain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
