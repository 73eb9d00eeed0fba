/* SPDX-License-Identifier: MIT */
/*
 * GPIO coil plugin: drives a stimulator's TTL trigger and enable inputs
 * through the Linux GPIO character device (libgpiod 1.6, v1 API).
 *
 * All of it is the shared TTL line layer (plugins/ttl, ttl.h): the lines,
 * their keys, the pulse, the e-stop/ready watcher and the confirmation.
 * This file only declares the plugin and forwards its ops, so the serial
 * stimulator plugins that fire through the same layer behave as this one
 * does.
 */
#include <math.h>
#include <stdint.h>

#include <rpmsd/coil.h>

#include "ttl.h"

static const struct rpmsd_coil_key gpio_keys[] = { TTL_KEYS };

static int gpio_open(const struct rpmsd_coil_host *host, void **out)
{
	struct ttl *t;
	char err[512];
	int ret;

	ret = ttl_open(host, &t, err, sizeof(err));
	if (ret < 0) {
		host->log(host->ctx, RPMSD_COIL_LOG_ERR, "%s", err);
		return ret;
	}
	*out = t;
	return 0;
}

static int gpio_arm(void *h)
{
	return ttl_arm(h);
}

static int gpio_disarm(void *h)
{
	return ttl_disarm(h);
}

static int gpio_pulse(void *h, double intensity_pct, uint32_t width_us)
{
	/* The stimulator's own panel sets the intensity; TTL carries none. */
	(void)intensity_pct;
	return ttl_pulse(h, width_us);
}

static int gpio_status(void *h, struct rpmsd_coil_status *st)
{
	return ttl_status(h, st);
}

static int gpio_force_disarm(void *h)
{
	return ttl_force_disarm(h);
}

/* Delivery verification: the confirm line's latency; a TTL line reads nothing back. */
static int gpio_pulse_info(void *h, struct rpmsd_coil_pulse_info *info)
{
	/* the four members are the struct's first version: always there */
	info->confirm_ns = ttl_last_confirm_ns(h);
	info->readback_pulse = 0;
	info->didt_a_per_us = NAN;
	return 0;
}

static void gpio_close(void *h)
{
	ttl_close(h);
}

static const struct rpmsd_coil_descriptor gpio_descriptor = {
	.abi_major = RPMSD_COIL_ABI_MAJOR,
	.abi_minor = RPMSD_COIL_ABI_MINOR,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
	.name = "gpio",
	.description = "TTL trigger and enable lines through the GPIO chardev (libgpiod)",
	.keys = gpio_keys,
	.n_keys = sizeof(gpio_keys) / sizeof(gpio_keys[0]),
	.ops = {
		.open = gpio_open,
		.arm = gpio_arm,
		.disarm = gpio_disarm,
		.pulse = gpio_pulse,
		.status = gpio_status,
		.close = gpio_close,
		.force_disarm = gpio_force_disarm,
		.pulse_info = gpio_pulse_info,
	},
};

RPMSD_COIL_PLUGIN(&gpio_descriptor)
