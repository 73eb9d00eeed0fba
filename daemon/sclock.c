/* SPDX-License-Identifier: MIT */
/*
 * Session clock, real and virtual.
 *
 * The virtual hand-off works in rounds. The acquire thread sets the time,
 * bumps gen and waits until the stim thread reports idle_gen == gen. The
 * stim thread only reports idle after it has looked at the time, its
 * request word and its deadline under that gen, and it announces its next
 * deadline before reporting, so the acquire thread can step exactly onto
 * every pulse time. A kick (new request) forces one extra round at the
 * same time so the request is seen before time moves on.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sclock.h"

struct sclock {
	bool virtual_time;
	int64_t t0_mono;
	atomic_bool stopped;
	/* virtual mode */
	_Atomic int64_t vnow;
	atomic_uint gen;
	atomic_uint idle_gen;
	atomic_uint bell;	/* the stim thread sleeps on this: rounds and kicks ring it */
	_Atomic int64_t next_deadline;
	atomic_bool kicked;
	_Atomic uint64_t last_sample;
	/* the word the stim thread waits on, so stop can wake it */
	_Atomic(atomic_uint *) waiting_word;
};

int64_t sclock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec sclock_ts(int64_t ns)
{
	struct timespec ts = {
		.tv_sec = ns / 1000000000LL,
		.tv_nsec = ns % 1000000000LL,
	};

	return ts;
}

static void sclock_futex_wait(atomic_uint *word, unsigned val,
			      const struct timespec *abs_mono)
{
	/* BITSET wait: the timeout is absolute on CLOCK_MONOTONIC. */
	syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
		val, abs_mono, NULL, FUTEX_BITSET_MATCH_ANY);
}

static void sclock_futex_wake(atomic_uint *word)
{
	syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX,
		NULL, NULL, 0);
}

int sclock_create(bool virtual_time, struct sclock **out)
{
	struct sclock *c = calloc(1, sizeof(*c));

	if (!c) {
		return -ENOMEM;
	}
	c->virtual_time = virtual_time;
	atomic_init(&c->stopped, false);
	atomic_init(&c->vnow, 0);
	atomic_init(&c->gen, 0);
	atomic_init(&c->idle_gen, UINT_MAX);
	atomic_init(&c->bell, 0);
	atomic_init(&c->last_sample, 0);
	atomic_init(&c->next_deadline, SCLOCK_NEVER);
	atomic_init(&c->kicked, false);
	atomic_init(&c->waiting_word, NULL);
	c->t0_mono = sclock_mono_ns();
	*out = c;
	return 0;
}

void sclock_destroy(struct sclock *c)
{
	free(c);
}

void sclock_start(struct sclock *c)
{
	c->t0_mono = sclock_mono_ns();
}

int64_t sclock_t0_mono(const struct sclock *c)
{
	return c->t0_mono;
}

bool sclock_is_virtual(const struct sclock *c)
{
	return c->virtual_time;
}

int64_t sclock_now(const struct sclock *c)
{
	if (c->virtual_time) {
		return atomic_load(&((struct sclock *)c)->vnow);
	}
	return sclock_mono_ns() - c->t0_mono;
}

static int64_t sclock_wait_real(struct sclock *c, int64_t deadline, atomic_uint *word,
				unsigned seen)
{
	struct timespec abs;
	int64_t now;

	for (;;) {
		now = sclock_now(c);
		if (atomic_load(&c->stopped) || now >= deadline ||
		    (word && atomic_load(word) != seen)) {
			return now;
		}
		if (deadline != SCLOCK_NEVER) {
			abs = sclock_ts(c->t0_mono + deadline);
		}
		if (!word) {
			if (deadline == SCLOCK_NEVER) {
				return now;
			}
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
			continue;
		}
		/*
		 * A futex with an absolute CLOCK_MONOTONIC timeout is the same
		 * hrtimer as clock_nanosleep(TIMER_ABSTIME), and a kick (a new
		 * request, a disarm) ends it at once.
		 */
		sclock_futex_wait(word, seen, deadline == SCLOCK_NEVER ? NULL : &abs);
	}
}

static int64_t sclock_wait_virtual(struct sclock *c, int64_t deadline,
				   atomic_uint *word, unsigned seen)
{
	unsigned g, b;

	for (;;) {
		/* Read the bell first: a ring after this makes the wait return. */
		b = atomic_load(&c->bell);
		g = atomic_load(&c->gen);
		if (atomic_load(&c->stopped) || atomic_load(&c->vnow) >= deadline ||
		    (word && atomic_load(word) != seen)) {
			return atomic_load(&c->vnow);
		}
		atomic_store(&c->next_deadline, deadline);
		atomic_store(&c->idle_gen, g);
		sclock_futex_wake(&c->idle_gen);
		sclock_futex_wait(&c->bell, b, NULL);
	}
}

int64_t sclock_wait(struct sclock *c, int64_t deadline, atomic_uint *word,
		    unsigned seen)
{
	atomic_store(&c->waiting_word, word);
	if (c->virtual_time) {
		return sclock_wait_virtual(c, deadline, word, seen);
	}
	return sclock_wait_real(c, deadline, word, seen);
}

void sclock_kick(struct sclock *c, atomic_uint *word)
{
	atomic_fetch_add(word, 1);
	sclock_futex_wake(word);
	if (c->virtual_time) {
		atomic_store(&c->kicked, true);
		/* The virtual waiter sleeps on the bell, not on the word. */
		atomic_fetch_add(&c->bell, 1);
		sclock_futex_wake(&c->bell);
	}
}

static void sclock_round(struct sclock *c, int64_t t)
{
	unsigned g, idle;

	atomic_store(&c->vnow, t);
	g = atomic_fetch_add(&c->gen, 1) + 1;
	atomic_fetch_add(&c->bell, 1);
	sclock_futex_wake(&c->bell);
	for (;;) {
		idle = atomic_load(&c->idle_gen);
		if (idle == g || atomic_load(&c->stopped)) {
			return;
		}
		sclock_futex_wait(&c->idle_gen, idle, NULL);
	}
}

void sclock_advance(struct sclock *c, int64_t t)
{
	int64_t nd;

	if (!c->virtual_time) {
		return;
	}
	/*
	 * A kick since the last round, or a stim thread not (yet) idle at
	 * the current gen: let it settle at the current time first, so any
	 * deadline it is about to announce is known before time moves.
	 */
	if (atomic_exchange(&c->kicked, false) ||
	    atomic_load(&c->idle_gen) != atomic_load(&c->gen)) {
		sclock_round(c, atomic_load(&c->vnow));
	}
	for (;;) {
		if (atomic_load(&c->stopped)) {
			return;
		}
		nd = atomic_load(&c->next_deadline);
		if (nd > atomic_load(&c->vnow) && nd < t) {
			sclock_round(c, nd);
			continue;
		}
		if (t <= atomic_load(&c->vnow)) {
			return;
		}
		/*
		 * The stim thread is idle at the current gen with nothing
		 * due up to and including t and no kick since: it has
		 * nothing to do until after t, so time may simply move on. This skips
		 * the hand-off for the many blocks without stimulation.
		 */
		if (nd > t && atomic_load(&c->idle_gen) == atomic_load(&c->gen) &&
		    !atomic_load(&c->kicked)) {
			atomic_store(&c->vnow, t);
			return;
		}
		sclock_round(c, t);
		return;
	}
}

void sclock_set_last_sample(struct sclock *c, uint64_t index)
{
	atomic_store_explicit(&c->last_sample, index, memory_order_relaxed);
}

uint64_t sclock_last_sample(const struct sclock *c)
{
	return atomic_load_explicit(&((struct sclock *)c)->last_sample, memory_order_relaxed);
}

void sclock_stop(struct sclock *c)
{
	atomic_uint *w;

	atomic_store(&c->stopped, true);
	atomic_fetch_add(&c->gen, 1);
	atomic_fetch_add(&c->bell, 1);
	sclock_futex_wake(&c->bell);
	atomic_store(&c->idle_gen, UINT_MAX - 1);
	sclock_futex_wake(&c->idle_gen);
	w = atomic_load(&c->waiting_word);
	if (w) {
		atomic_fetch_add(w, 1);
		sclock_futex_wake(w);
	}
}

bool sclock_stopped(const struct sclock *c)
{
	return atomic_load(&((struct sclock *)c)->stopped);
}
