/* SPDX-License-Identifier: MIT */
/*
 * An out-of-tree rpmsd coil plugin: the smallest complete one. It fires
 * nothing; it counts the pulses it is asked for, refuses them while
 * disarmed as a real stimulator's enable line would, and reports the
 * count when rpmsd closes it. Build it against the installed header only:
 *
 *   cc -shared -fPIC $(pkg-config --cflags rpmsd-coil) counter.c -o counter.so
 *
 * then point rpmsd at it: [daemon] plugin_dir = <dir of counter.so>,
 * [stim] plugin = counter, and its one key in [coil.counter].
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <rpmsd/coil.h>

struct counter {
	const struct rpmsd_coil_host *host;
	long long limit;	/* refuse pulses beyond this many, 0: no limit */
	atomic_bool armed;
	unsigned long long pulses;
};

static const struct rpmsd_coil_key counter_keys[] = {
	{ .name = "limit", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 1000000, .unit = "pulses",
	  .doc = "refuse (fail) every pulse beyond this many, 0 = no limit" },
};

static int counter_open(const struct rpmsd_coil_host *host, void **out)
{
	struct counter *c = calloc(1, sizeof(*c));
	int ret;

	if (!c) {
		return -ENOMEM;
	}
	c->host = host;
	ret = host->get_int(host->ctx, "limit", &c->limit);
	if (ret < 0) {
		free(c);
		return ret;
	}
	atomic_init(&c->armed, false);
	*out = c;
	return 0;
}

static int counter_arm(void *h)
{
	atomic_store(&((struct counter *)h)->armed, true);
	return 0;
}

static int counter_disarm(void *h)
{
	atomic_store(&((struct counter *)h)->armed, false);
	return 0;
}

/* Called on rpmsd's stim thread: no allocation, no blocking, no logging. */
static int counter_pulse(void *h, double intensity_pct, uint32_t width_us)
{
	struct counter *c = h;

	(void)intensity_pct;
	(void)width_us;
	if (!atomic_load(&c->armed)) {
		return -EPERM;
	}
	if (c->limit > 0 && c->pulses >= (unsigned long long)c->limit) {
		return -EIO;
	}
	c->pulses++;
	return 0;
}

static int counter_status(void *h, struct rpmsd_coil_status *st)
{
	(void)h;
	st->temperature_c = NAN;	/* no sensor */
	st->ready = true;
	st->fault = false;
	st->fault_code = 0;
	st->estop = false;	/* no emergency stop input wired to this one */
	return 0;
}

static void counter_close(void *h)
{
	struct counter *c = h;

	if (!c) {
		return;
	}
	c->host->log(c->host->ctx, RPMSD_COIL_LOG_INFO, "counter: %llu pulses", c->pulses);
	free(c);
}

static const struct rpmsd_coil_descriptor counter_descriptor = {
	.abi_major = RPMSD_COIL_ABI_MAJOR,
	.abi_minor = RPMSD_COIL_ABI_MINOR,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
	.name = "counter",
	.description = "example out-of-tree plugin: counts pulses, fires nothing",
	.keys = counter_keys,
	.n_keys = sizeof(counter_keys) / sizeof(counter_keys[0]),
	.ops = {
		.open = counter_open,
		.arm = counter_arm,
		.disarm = counter_disarm,
		.pulse = counter_pulse,
		.status = counter_status,
		.close = counter_close,
		/* lock-free already: safe from the supervisor's thread too */
		.force_disarm = counter_disarm,
	},
};

RPMSD_COIL_PLUGIN(&counter_descriptor)
