/* SPDX-License-Identifier: MIT */
/*
 * SPSC ring: head is written only by the producer, tail only by the
 * consumer. Each side reads the other's index with acquire ordering and
 * publishes its own with release ordering, which is all the
 * synchronisation one producer and one consumer need. Indices run freely
 * and are masked on use, so full and empty are told apart without a
 * wasted slot.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define RING_CACHELINE 64

struct ring {
	alignas(RING_CACHELINE) atomic_size_t head;	/* producer */
	atomic_uint_fast64_t dropped;			/* producer */
	alignas(RING_CACHELINE) atomic_size_t tail;	/* consumer */
	alignas(RING_CACHELINE) size_t mask;
	size_t elem_size;
	unsigned char *buf;
};

int ring_create(size_t capacity, size_t elem_size, struct ring **out)
{
	struct ring *r;

	if (capacity < 2 || (capacity & (capacity - 1)) != 0 || elem_size == 0 ||
	    capacity > SIZE_MAX / elem_size) {
		return -EINVAL;
	}
	r = aligned_alloc(RING_CACHELINE, sizeof(*r));
	if (!r) {
		return -ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	r->buf = calloc(capacity, elem_size);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	/* Touch every page now so the RT producer never faults one in. */
	memset(r->buf, 0, capacity * elem_size);
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->dropped, 0);
	r->mask = capacity - 1;
	r->elem_size = elem_size;
	*out = r;
	return 0;
}

void ring_destroy(struct ring *r)
{
	if (!r) {
		return;
	}
	free(r->buf);
	free(r);
}

bool ring_push(struct ring *r, const void *elem)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (head - tail > r->mask) {
		atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
		return false;
	}
	memcpy(r->buf + (head & r->mask) * r->elem_size, elem, r->elem_size);
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return true;
}

bool ring_push_reserved(struct ring *r, const void *elem, size_t reserve)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	/* free after the push = capacity - used - 1 = mask - used */
	if (reserve > r->mask || head - tail > r->mask - reserve) {
		return false;
	}
	memcpy(r->buf + (head & r->mask) * r->elem_size, elem, r->elem_size);
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return true;
}

bool ring_pop(struct ring *r, void *elem)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	if (head == tail) {
		return false;
	}
	memcpy(elem, r->buf + (tail & r->mask) * r->elem_size, r->elem_size);
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return true;
}

size_t ring_pushed(const struct ring *r)
{
	return atomic_load_explicit(&((struct ring *)r)->head, memory_order_acquire);
}

uint64_t ring_dropped(const struct ring *r)
{
	return atomic_load_explicit(&((struct ring *)r)->dropped, memory_order_relaxed);
}

size_t ring_count(const struct ring *r)
{
	size_t head = atomic_load_explicit(&((struct ring *)r)->head, memory_order_acquire);
	size_t tail = atomic_load_explicit(&((struct ring *)r)->tail, memory_order_acquire);

	return head - tail;
}

size_t ring_capacity(const struct ring *r)
{
	return r->mask + 1;
}
