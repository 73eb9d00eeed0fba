/* SPDX-License-Identifier: MIT */
/* EMG freshness: the last block's time and the longest gap since taken. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "fresh.h"

struct fresh {
	_Atomic int64_t last;	/* session time of the last block, INT64_MIN none */
	_Atomic int64_t stall;	/* longest gap between blocks, since taken */
};

int fresh_create(struct fresh **out)
{
	struct fresh *f = calloc(1, sizeof(*f));

	if (!f) {
		return -ENOMEM;
	}
	atomic_init(&f->last, INT64_MIN);
	atomic_init(&f->stall, 0);
	*out = f;
	return 0;
}

void fresh_destroy(struct fresh *f)
{
	free(f);
}

void fresh_mark(struct fresh *f, int64_t t_ns)
{
	int64_t prev = atomic_exchange_explicit(&f->last, t_ns, memory_order_acq_rel);

	/* one writer: a lost race with fresh_take_stall only delays a report */
	if (prev != INT64_MIN && t_ns - prev > atomic_load_explicit(&f->stall, memory_order_relaxed)) {
		atomic_store_explicit(&f->stall, t_ns - prev, memory_order_relaxed);
	}
}

int64_t fresh_take_stall(struct fresh *f)
{
	return atomic_exchange_explicit(&f->stall, 0, memory_order_relaxed);
}

int64_t fresh_last(const struct fresh *f)
{
	return atomic_load_explicit(&((struct fresh *)f)->last, memory_order_acquire);
}
