/* SPDX-License-Identifier: MIT */
/*
 * Real-time set-up: memory locking and SCHED_FIFO threads.
 *
 * Without the privilege for either (a developer machine), rpmsd warns and
 * carries on with normal scheduling; the warning says what was not granted.
 */
#ifndef RPMSD_RT_H
#define RPMSD_RT_H

#include <pthread.h>
#include <stdbool.h>

/**
 * Lock current and future memory (mlockall). Call after everything is
 * allocated. @return 0 or -errno (the caller decides whether that is fatal)
 */
int rt_lock_memory(void);

/**
 * Start a thread, at SCHED_FIFO @priority when > 0. If the real-time
 * policy is refused (EPERM), the thread starts with normal scheduling and
 * *@got_rt is false.
 * @param name  thread name for ps/top (at most 15 characters)
 * @return 0 or -errno from pthread_create
 */
int rt_thread_start(pthread_t *tid, const char *name, int priority,
		    void *(*fn)(void *), void *arg, bool *got_rt);

/** Touch @bytes of stack so the RT thread never faults a page in later. */
void rt_prefault_stack(void);

#endif /* RPMSD_RT_H */
