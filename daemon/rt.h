/* SPDX-License-Identifier: MIT */
/*
 * Real-time set-up: memory locking, SCHED_FIFO threads pinned to a CPU,
 * and the CPU idle-state latency request.
 *
 * Without the privilege for any of them (a developer machine), rpmsd warns
 * and carries on with normal scheduling; the warning says what was not
 * granted. daemon.require_rt turns each of these warnings into a refusal.
 */
#ifndef RPMSD_RT_H
#define RPMSD_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/**
 * Lock current and future memory (mlockall). Call after everything is
 * allocated. @return 0 or -errno (the caller decides whether that is fatal)
 */
int rt_lock_memory(void);

/**
 * Start a thread, at SCHED_FIFO @priority when > 0, on CPU @cpu when
 * >= 0. If the real-time policy is refused (EPERM), the thread starts with
 * normal scheduling (still pinned) and *@got_rt is false.
 * @param name  thread name for ps/top (at most 15 characters)
 * @return 0 or -errno from pthread_create (-EINVAL: @cpu not allowed)
 */
int rt_thread_start(pthread_t *tid, const char *name, int priority, int cpu,
		    void *(*fn)(void *), void *arg, bool *got_rt);

/**
 * Check that @cpu (>= 0) is one this process may run on (online and in
 * its affinity mask, which a cgroup cpuset or systemd's CPUAffinity=
 * narrows). @return 0, or -EINVAL
 */
int rt_cpu_allowed(int cpu);

/**
 * daemon.test_hooks only: behave like a thread stuck in a driver call, to
 * prove the supervisor and systemd's watchdog. Sleeps in 10 ms steps with
 * no heartbeat until *@stop is set (which a really hung thread would not
 * see), so a test can still shut down cleanly.
 */
void rt_test_hang(const atomic_bool *stop);

/** Touch @bytes of stack so the RT thread never faults a page in later. */
void rt_prefault_stack(void);

/**
 * Ask the kernel's PM QoS for a CPU wake-up latency of 0 (no deep idle
 * states) by holding /dev/cpu_dma_latency open with 0 written; the request
 * lasts until rt_dma_latency_release or the process ends.
 * @return an fd >= 0 to release later, or -errno
 */
int rt_dma_latency_hold(void);

/** Drop the request of rt_dma_latency_hold. Accepts a negative fd. */
void rt_dma_latency_release(int fd);

#endif /* RPMSD_RT_H */
