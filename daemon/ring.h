/* SPDX-License-Identifier: MIT */
/*
 * Single-producer/single-consumer ring of fixed-size records.
 *
 * Lock-free and wait-free on both ends: push and pop never allocate, block
 * or make a system call, so a real-time thread may push. Memory is
 * allocated and prefaulted by ring_create. A push into a full ring drops
 * the new record and counts it; the count is never reset, so a consumer
 * can report every loss.
 */
#ifndef RPMSD_RING_H
#define RPMSD_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ring;

/**
 * Create a ring.
 * @param capacity   number of records, a power of two >= 2
 * @param elem_size  size of one record in bytes, > 0
 * @param out        receives the ring
 * @return 0, -EINVAL for a bad size, -ENOMEM
 */
int ring_create(size_t capacity, size_t elem_size, struct ring **out);

/** Free a ring. Accepts NULL. No thread may use it any more. */
void ring_destroy(struct ring *r);

/**
 * Producer: copy one record in.
 * @return true, or false when full (the record is dropped and counted)
 */
bool ring_push(struct ring *r, const void *elem);

/**
 * Producer: copy one record in only if at least @reserve slots stay free
 * after it, so that less important records can never take the room kept
 * for more important ones (the stim thread keeps room for pulses this
 * way). A record refused for the reserve is not counted as dropped: the
 * caller still has it and decides what to do with it.
 * @return true, or false when it did not fit (nothing pushed)
 */
bool ring_push_reserved(struct ring *r, const void *elem, size_t reserve);

/**
 * Consumer: copy the oldest record out.
 * @return true, or false when empty
 */
bool ring_pop(struct ring *r, void *elem);

/**
 * Records pushed since creation (dropped ones not counted), modulo
 * SIZE_MAX + 1: the consumer has taken all of them once it has popped
 * that many. Any thread.
 */
size_t ring_pushed(const struct ring *r);

/** Records dropped because the ring was full, since creation. */
uint64_t ring_dropped(const struct ring *r);

/** Records waiting (a snapshot; exact only from the consumer thread). */
size_t ring_count(const struct ring *r);

/** Capacity in records. */
size_t ring_capacity(const struct ring *r);

#endif /* RPMSD_RING_H */
