/* SPDX-License-Identifier: MIT */
/*
 * Deliberately broken coil plugins for the loader test, one per build:
 *  -DBAD_ABI     claims ABI major 99
 *  -DBAD_NOPULSE has no pulse op
 *  -DBAD_NAME    calls itself by another name
 *  -DBAD_FAILPULSE  loads fine, but every pulse fails with -EIO
 *  -DBAD_FAILSTATUS=-EIO  loads fine, but its status op fails with that error
 *  -DBAD_SLOWSTATUS loads fine, its first status call takes 30 ms, and it
 *                   records when each pulse really happened
 *  -DBAD_FAILARM    loads fine, but arm fails with -EIO
 *  -DBAD_ABI10      an ABI 1.0 plugin: its descriptor ends before
 *                   ops.force_disarm, and what lies beyond must not be read
 *  -DBAD_ABI11      an ABI 1.1 plugin: its descriptor ends before
 *                   ops.set_intensity; the 1.2 ops beyond it count their calls
 */
#include <errno.h>
#include <stddef.h>
#include <time.h>

#include <rpmsd/coil.h>

#ifndef BAD_PLUGIN_NAME
#error "BAD_PLUGIN_NAME must be defined"
#endif

#ifdef BAD_SLOWSTATUS
/* CLOCK_MONOTONIC ns of each pulse, for the test to read with dlsym. */
__attribute__((visibility("default"))) long long bad_pulse_times[64];
__attribute__((visibility("default"))) int bad_pulse_count;
#endif

static int bad_open(const struct rpmsd_coil_host *host, void **out)
{
	(void)host;
	*out = NULL;
	return 0;
}

__attribute__((unused)) static int bad_pulse(void *h, double intensity_pct, uint32_t width_us)
{
	(void)h;
	(void)intensity_pct;
	(void)width_us;
#if defined(BAD_FAILPULSE)
	return -EIO;
#elif defined(BAD_SLOWSTATUS)
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (bad_pulse_count < 64) {
		bad_pulse_times[bad_pulse_count++] = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	}
	return 0;
#else
	return 0;
#endif
}

#ifdef BAD_FAILSTATUS
static int bad_status(void *h, struct rpmsd_coil_status *st)
{
	(void)h;
	/* Says everything is fine, then fails: the host must not believe it. */
	st->ready = true;
	st->fault = false;
	st->temperature_c = 20.0;
	return BAD_FAILSTATUS;
}
#endif

#ifdef BAD_SLOWSTATUS

static int bad_status(void *h, struct rpmsd_coil_status *st)
{
	static int calls;
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 30000000 };

	(void)h;
	if (calls++ == 0) {
		nanosleep(&ts, NULL);
	}
	st->ready = true;
	st->fault = false;
	st->temperature_c = 20.0;
	return 0;
}
#endif

#ifdef BAD_FAILARM
static int bad_arm(void *h)
{
	(void)h;
	return -EIO;
}
#endif

static void bad_close(void *h)
{
	(void)h;
}

#ifdef BAD_ABI10
/* Counted if the host calls what a 1.0 plugin does not have. */
__attribute__((visibility("default"))) int bad_forced;

static int bad_force_disarm(void *h)
{
	(void)h;
	bad_forced++;
	return 0;
}
#endif

#ifdef BAD_ABI11
/* Counted if the host calls what a 1.1 plugin does not have. */
__attribute__((visibility("default"))) int bad_calls_12;

static int bad_set_intensity(void *h, double pct)
{
	(void)h;
	(void)pct;
	bad_calls_12++;
	return 0;
}

static int bad_confirmed(void *h, double *pct)
{
	(void)h;
	*pct = 50.0;
	bad_calls_12++;
	return 0;
}

static const struct rpmsd_coil_envelope *bad_envelope(void *h)
{
	(void)h;
	bad_calls_12++;
	return NULL;
}
#endif

static const struct rpmsd_coil_descriptor bad_descriptor = {
#ifdef BAD_ABI
	.abi_major = 99,
#else
	.abi_major = RPMSD_COIL_ABI_MAJOR,
#endif
	.abi_minor = 0,
#ifdef BAD_ABI10
	.struct_size = offsetof(struct rpmsd_coil_descriptor, ops.force_disarm),
#elif defined(BAD_ABI11)
	.struct_size = offsetof(struct rpmsd_coil_descriptor, ops.set_intensity),
#else
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
#endif
#ifdef BAD_NAME
	.name = "somebody-else",
#else
	.name = BAD_PLUGIN_NAME,
#endif
	.description = "broken on purpose, for tests",
	.ops = {
		.open = bad_open,
#ifndef BAD_NOPULSE
		.pulse = bad_pulse,
#endif
#if defined(BAD_FAILSTATUS) || defined(BAD_SLOWSTATUS)
		.status = bad_status,
#endif
#ifdef BAD_FAILARM
		.arm = bad_arm,
#endif
		.close = bad_close,
#ifdef BAD_ABI10
		.force_disarm = bad_force_disarm,
#endif
#ifdef BAD_ABI11
		.set_intensity = bad_set_intensity,
		.confirmed_intensity = bad_confirmed,
		.envelope = bad_envelope,
#endif
	},
};

RPMSD_COIL_PLUGIN(&bad_descriptor)
