/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ring.h"

static void test_ring_create_rejects(void **state)
{
	struct ring *r = NULL;

	(void)state;
	assert_int_equal(ring_create(0, 8, &r), -EINVAL);
	assert_int_equal(ring_create(1, 8, &r), -EINVAL);
	assert_int_equal(ring_create(6, 8, &r), -EINVAL);
	assert_int_equal(ring_create(8, 0, &r), -EINVAL);
	assert_null(r);
	ring_destroy(NULL);
}

static void test_ring_fifo_wraps(void **state)
{
	struct ring *r;
	uint64_t v, next_in = 0, next_out = 0;
	int round, i;

	(void)state;
	assert_int_equal(ring_create(4, sizeof(uint64_t), &r), 0);
	assert_int_equal(ring_capacity(r), 4);
	assert_false(ring_pop(r, &v));
	/* 3 in, 3 out, many times: indices run far past the capacity. */
	for (round = 0; round < 1000; round++) {
		for (i = 0; i < 3; i++) {
			assert_true(ring_push(r, &next_in));
			next_in++;
		}
		assert_int_equal(ring_count(r), 3);
		for (i = 0; i < 3; i++) {
			assert_true(ring_pop(r, &v));
			assert_int_equal(v, next_out);
			next_out++;
		}
		assert_int_equal(ring_count(r), 0);
	}
	assert_int_equal(ring_dropped(r), 0);
	ring_destroy(r);
}

static void test_ring_full_counts_drops(void **state)
{
	struct ring *r;
	uint64_t v;
	uint64_t i;

	(void)state;
	assert_int_equal(ring_create(8, sizeof(uint64_t), &r), 0);
	for (i = 0; i < 8; i++) {
		assert_true(ring_push(r, &i));
	}
	for (i = 100; i < 105; i++) {
		assert_false(ring_push(r, &i));
	}
	assert_int_equal(ring_dropped(r), 5);
	assert_int_equal(ring_count(r), 8);
	/* The dropped records are the new ones: the old ones come out intact. */
	for (i = 0; i < 8; i++) {
		assert_true(ring_pop(r, &v));
		assert_int_equal(v, i);
	}
	assert_false(ring_pop(r, &v));
	/* Room again, and the drop count is never reset. */
	assert_true(ring_push(r, &i));
	assert_int_equal(ring_dropped(r), 5);
	ring_destroy(r);
}

/* A reserved push leaves room for plain pushes, and is not a drop. */
static void test_ring_reserved_keeps_room(void **state)
{
	struct ring *r;
	uint64_t v, i;

	(void)state;
	assert_int_equal(ring_create(8, sizeof(uint64_t), &r), 0);
	/* reserve 3: at most 8 - 3 records by reserved pushes */
	for (i = 0; i < 5; i++) {
		assert_true(ring_push_reserved(r, &i, 3));
	}
	assert_false(ring_push_reserved(r, &i, 3));
	assert_int_equal(ring_dropped(r), 0);
	assert_int_equal(ring_count(r), 5);
	/* the reserve is for plain pushes: all three still fit */
	for (i = 10; i < 13; i++) {
		assert_true(ring_push(r, &i));
	}
	assert_false(ring_push_reserved(r, &i, 0));
	assert_false(ring_push_reserved(r, &i, (size_t)-1));
	assert_int_equal(ring_dropped(r), 0);
	assert_true(ring_pop(r, &v));
	assert_int_equal(v, 0);
	assert_true(ring_push_reserved(r, &i, 0));
	assert_false(ring_push_reserved(r, &i, 0));
	ring_destroy(r);
}

struct ring_rec {
	uint64_t seq;
	uint64_t check;
	char pad[40];
};

#define RING_STRESS_N 2000000ULL

static void *ring_producer(void *arg)
{
	struct ring *r = arg;
	struct ring_rec rec = { 0 };
	uint64_t i;

	for (i = 0; i < RING_STRESS_N; i++) {
		rec.seq = i;
		rec.check = ~i;
		ring_push(r, &rec);
	}
	return NULL;
}

/* One producer, one consumer, concurrently: order kept, records intact,
 * and every record either arrives or is counted as dropped. */
static void test_ring_spsc_threads(void **state)
{
	struct ring *r;
	struct ring_rec rec;
	pthread_t tid;
	uint64_t received = 0, last = 0;
	bool any = false;

	(void)state;
	assert_int_equal(ring_create(256, sizeof(struct ring_rec), &r), 0);
	assert_int_equal(pthread_create(&tid, NULL, ring_producer, r), 0);
	for (;;) {
		if (ring_pop(r, &rec)) {
			assert_int_equal(rec.check, ~rec.seq);
			if (any) {
				assert_true(rec.seq > last);
			}
			last = rec.seq;
			any = true;
			received++;
			if (rec.seq == RING_STRESS_N - 1) {
				break;
			}
			continue;
		}
		if (received + ring_dropped(r) == RING_STRESS_N) {
			break;
		}
	}
	pthread_join(tid, NULL);
	while (ring_pop(r, &rec)) {
		received++;
	}
	assert_int_equal(received + ring_dropped(r), RING_STRESS_N);
	ring_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_create_rejects),
		cmocka_unit_test(test_ring_fifo_wraps),
		cmocka_unit_test(test_ring_full_counts_drops),
		cmocka_unit_test(test_ring_reserved_keeps_room),
		cmocka_unit_test(test_ring_spsc_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
