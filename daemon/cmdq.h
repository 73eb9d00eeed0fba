/* SPDX-License-Identifier: MIT */
/*
 * A command ring: many posters, one real-time consumer, fixed-size
 * records (the model: SPA's invoke on a loop). Any thread may post; the
 * thread that owns the ring drains it at its wake-up, in post order. A
 * post never blocks, allocates or makes a system call, so even a real-time
 * thread may post; a full ring is an error the poster sees (nothing is
 * dropped silently). Waking the consumer is the owner's business (stim.c
 * kicks its futex word after each post).
 *
 * Bounded MPMC-style slots with a sequence number each (Vyukov): posters
 * claim a slot with one compare-and-swap and publish it with a release
 * store; the consumer takes slots in order and hands each back. Memory is
 * allocated and prefaulted by cmdq_create.
 */
#ifndef RPMSD_CMDQ_H
#define RPMSD_CMDQ_H

#include <stdbool.h>
#include <stddef.h>

struct cmdq;

/**
 * Create a ring.
 * @param capacity   records, a power of two >= 2
 * @param elem_size  bytes per record, > 0
 * @return 0, -EINVAL for a bad size, -ENOMEM
 */
int cmdq_create(size_t capacity, size_t elem_size, struct cmdq **out);

/** Free. Accepts NULL. No thread may use it any more. */
void cmdq_destroy(struct cmdq *q);

/**
 * Post one record (copied). Any thread, RT-safe, lock-free.
 * @return 0, or -ENOSPC when the ring is full (nothing posted)
 */
int cmdq_post(struct cmdq *q, const void *elem);

/**
 * Consumer (one thread only): take the oldest record. A record whose
 * poster has claimed its slot but not finished copying is not there yet
 * (nor is any after it): the poster wakes the consumer when it is.
 * @return true, or false when there is none
 */
bool cmdq_take(struct cmdq *q, void *elem);

/** Capacity in records. */
size_t cmdq_capacity(const struct cmdq *q);

#endif /* RPMSD_CMDQ_H */
