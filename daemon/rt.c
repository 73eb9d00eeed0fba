/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

#define RT_STACK_PREFAULT (64 * 1024)

int rt_lock_memory(void)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
		return -errno;
	}
	return 0;
}

void rt_prefault_stack(void)
{
	volatile unsigned char buf[RT_STACK_PREFAULT];

	/* volatile: the compiler must really touch every page. */
	memset((unsigned char *)buf, 0, sizeof(buf));
	buf[0] = buf[sizeof(buf) - 1];
}

int rt_cpu_allowed(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE) {
		return -EINVAL;
	}
	if (sched_getaffinity(0, sizeof(set), &set) < 0) {
		return -errno;
	}
	return CPU_ISSET(cpu, &set) ? 0 : -EINVAL;
}

/* The attributes every thread gets: the CPU when pinned. */
static int rt_attr_init(pthread_attr_t *attr, int cpu)
{
	cpu_set_t set;
	int ret;

	ret = pthread_attr_init(attr);
	if (ret != 0 || cpu < 0) {
		return -ret;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ret = pthread_attr_setaffinity_np(attr, sizeof(set), &set);
	if (ret != 0) {
		pthread_attr_destroy(attr);
	}
	return -ret;
}

int rt_thread_start(pthread_t *tid, const char *name, int priority, int cpu,
		    void *(*fn)(void *), void *arg, bool *got_rt)
{
	struct sched_param sp = { .sched_priority = priority };
	pthread_attr_t attr;
	int ret;

	*got_rt = false;
	if (cpu >= 0 && rt_cpu_allowed(cpu) < 0) {
		return -EINVAL;
	}
	if (priority > 0) {
		ret = rt_attr_init(&attr, cpu);
		if (ret < 0) {
			return ret;
		}
		pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
		pthread_attr_setschedparam(&attr, &sp);
		ret = pthread_create(tid, &attr, fn, arg);
		pthread_attr_destroy(&attr);
		if (ret == 0) {
			*got_rt = true;
			goto named;
		}
		if (ret != EPERM) {
			return -ret;
		}
	}
	ret = rt_attr_init(&attr, cpu);
	if (ret < 0) {
		return ret;
	}
	ret = pthread_create(tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		return -ret;
	}
named:
	pthread_setname_np(*tid, name);
	return 0;
}

void rt_test_hang(const atomic_bool *stop)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 10000000 };

	while (!atomic_load(stop)) {
		nanosleep(&tick, NULL);
	}
}

int rt_dma_latency_hold(void)
{
	int32_t zero = 0;
	int fd;

	fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	/* The kernel keeps the request only while this fd stays open. */
	if (write(fd, &zero, sizeof(zero)) != (ssize_t)sizeof(zero)) {
		int err = errno ? errno : EIO;

		close(fd);
		return -err;
	}
	return fd;
}

void rt_dma_latency_release(int fd)
{
	if (fd >= 0) {
		close(fd);
	}
}
