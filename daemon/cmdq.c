/* SPDX-License-Identifier: MIT */
/* Many posters, one consumer: a bounded ring of sequenced slots. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmdq.h"

struct cmdq {
	size_t mask;
	size_t elem_size;
	_Atomic size_t head;		/* next position to claim (posters) */
	size_t tail;			/* next position to take (consumer only) */
	_Atomic size_t *seq;		/* per slot: pos when free for pos, pos + 1 when full */
	unsigned char *data;
};

int cmdq_create(size_t capacity, size_t elem_size, struct cmdq **out)
{
	struct cmdq *q;
	size_t i;

	if (capacity < 2 || (capacity & (capacity - 1)) || elem_size == 0 ||
	    capacity > SIZE_MAX / elem_size) {
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		return -ENOMEM;
	}
	q->seq = calloc(capacity, sizeof(*q->seq));
	q->data = malloc(capacity * elem_size);
	if (!q->seq || !q->data) {
		goto err_free;
	}
	/* Touch every page now so no poster, RT ones included, faults one in. */
	memset(q->data, 0, capacity * elem_size);
	for (i = 0; i < capacity; i++) {
		atomic_init(&q->seq[i], i);
	}
	q->mask = capacity - 1;
	q->elem_size = elem_size;
	atomic_init(&q->head, 0);
	q->tail = 0;
	*out = q;
	return 0;

err_free:
	free(q->data);
	free((void *)q->seq);
	free(q);
	return -ENOMEM;
}

void cmdq_destroy(struct cmdq *q)
{
	if (!q) {
		return;
	}
	free(q->data);
	free((void *)q->seq);
	free(q);
}

int cmdq_post(struct cmdq *q, const void *elem)
{
	size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed), seq;
	intptr_t dif;

	for (;;) {
		seq = atomic_load_explicit(&q->seq[pos & q->mask], memory_order_acquire);
		dif = (intptr_t)seq - (intptr_t)pos;
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				break;
			}
		} else if (dif < 0) {
			/* the slot still holds a record a lap behind: full */
			return -ENOSPC;
		} else {
			pos = atomic_load_explicit(&q->head, memory_order_relaxed);
		}
	}
	memcpy(q->data + (pos & q->mask) * q->elem_size, elem, q->elem_size);
	atomic_store_explicit(&q->seq[pos & q->mask], pos + 1, memory_order_release);
	return 0;
}

bool cmdq_take(struct cmdq *q, void *elem)
{
	size_t pos = q->tail;

	if (atomic_load_explicit(&q->seq[pos & q->mask], memory_order_acquire) != pos + 1) {
		return false;
	}
	memcpy(elem, q->data + (pos & q->mask) * q->elem_size, q->elem_size);
	/* free for the poster one lap on */
	atomic_store_explicit(&q->seq[pos & q->mask], pos + q->mask + 1, memory_order_release);
	q->tail = pos + 1;
	return true;
}

size_t cmdq_capacity(const struct cmdq *q)
{
	return q->mask + 1;
}
