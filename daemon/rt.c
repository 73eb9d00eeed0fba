/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

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

int rt_thread_start(pthread_t *tid, const char *name, int priority,
		    void *(*fn)(void *), void *arg, bool *got_rt)
{
	struct sched_param sp = { .sched_priority = priority };
	pthread_attr_t attr;
	int ret;

	*got_rt = false;
	if (priority > 0) {
		pthread_attr_init(&attr);
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
	ret = pthread_create(tid, NULL, fn, arg);
	if (ret != 0) {
		return -ret;
	}
named:
	pthread_setname_np(*tid, name);
	return 0;
}
