/* SPDX-License-Identifier: MIT */
/*
 * Test-only LD_PRELOAD library: steps rpmsd's wall clock without touching
 * the machine's. CLOCK_REALTIME (and its coarse variant), gettimeofday()
 * and time() get an offset in seconds added; CLOCK_MONOTONIC and
 * everything else are left alone, as a real step of the clock leaves them.
 *
 * The offset is an int64 (native byte order) at the start of the file
 * named by $WALLTIME_OFFSET_FILE, mapped shared: a test steps the clock by
 * rewriting those 8 bytes in place, and no read here makes a system call
 * (the RT threads stamp events with CLOCK_REALTIME).
 *
 * Stepping CLOCK_REALTIME for real needs CAP_SYS_TIME and steps the whole
 * host: the VM rig's clockstep test does that inside its guest.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SHIM_EXPORT __attribute__((visibility("default")))

typedef int (*shim_clock_gettime_fn)(clockid_t, struct timespec *);

static _Atomic(const volatile int64_t *) shim_offset;

static int64_t shim_offset_s(void)
{
	const volatile int64_t *p = atomic_load(&shim_offset);
	const char *path;
	void *m;
	int fd;

	if (!p) {
		path = getenv("WALLTIME_OFFSET_FILE");
		if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			return 0;
		}
		m = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
		close(fd);
		if (m == MAP_FAILED) {
			return 0;
		}
		p = m;
		atomic_store(&shim_offset, p);
	}
	return *p;
}

static int shim_real(clockid_t id, struct timespec *ts)
{
	static _Atomic(shim_clock_gettime_fn) real;
	shim_clock_gettime_fn fn = atomic_load(&real);

	if (!fn) {
		fn = (shim_clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
		atomic_store(&real, fn);
	}
	return fn(id, ts);
}

SHIM_EXPORT int clock_gettime(clockid_t id, struct timespec *ts)
{
	int ret = shim_real(id, ts);

	if (ret == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
		ts->tv_sec += (time_t)shim_offset_s();
	}
	return ret;
}

SHIM_EXPORT int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;

	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

SHIM_EXPORT time_t time(time_t *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (t) {
		*t = ts.tv_sec;
	}
	return ts.tv_sec;
}
