/* SPDX-License-Identifier: MIT */
/*
 * Deliberately broken coil plugins for the loader test, one per build:
 *  -DBAD_ABI     claims ABI major 99
 *  -DBAD_NOPULSE has no pulse op
 *  -DBAD_NAME    calls itself by another name
 *  -DBAD_FAILPULSE  loads fine, but every pulse fails with -EIO
 *  -DBAD_FAILSTATUS loads fine, but its status op fails with -EIO
 */
#include <errno.h>

#include <rpmsd/coil.h>

#ifndef BAD_PLUGIN_NAME
#error "BAD_PLUGIN_NAME must be defined"
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
#ifdef BAD_FAILPULSE
	return -EIO;
#else
	return 0;
#endif
}

#ifdef BAD_FAILSTATUS
static int bad_status(void *h, struct rpmsd_coil_status *st)
{
	(void)h;
	(void)st;
	return -EIO;
}
#endif

static void bad_close(void *h)
{
	(void)h;
}

static const struct rpmsd_coil_descriptor bad_descriptor = {
#ifdef BAD_ABI
	.abi_major = 99,
#else
	.abi_major = RPMSD_COIL_ABI_MAJOR,
#endif
	.abi_minor = 0,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
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
#ifdef BAD_FAILSTATUS
		.status = bad_status,
#endif
		.close = bad_close,
	},
};

RPMSD_COIL_PLUGIN(&bad_descriptor)
