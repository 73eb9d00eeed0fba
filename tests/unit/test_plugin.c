/* SPDX-License-Identifier: MIT */
/*
 * Plugin loader tests against real shared objects: the sim plugin from the
 * build tree, and deliberately broken plugins built beside this test.
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "plugin.h"
#include "sclock.h"

#define BAD_DIR TEST_BUILD_ROOT "/tests"

static struct rpmsd_config cfg;

static int setup(void **state)
{
	(void)state;
	config_defaults(&cfg);
	unsetenv("RPMSD_PLUGIN_PATH");
	return 0;
}

static void test_plugin_missing(void **state)
{
	char err[2048];
	struct plugin *p = NULL;

	(void)state;
	strcpy(cfg.daemon.plugin_dir, "/nonexistent-dir");
	assert_int_equal(plugin_load(&cfg, "nosuchcoil", &p, err, sizeof(err)), -ENOENT);
	assert_null(p);
	/* The message names the plugin and every place searched. */
	assert_non_null(strstr(err, "coil plugin 'nosuchcoil': nosuchcoil.so not found (searched: "
				    "/nonexistent-dir, "));
	assert_non_null(strstr(err, TEST_BUILD_ROOT "/plugins/nosuchcoil"));
	cfg.daemon.plugin_dir[0] = '\0';
}

static void test_plugin_bad_name(void **state)
{
	char err[512];
	struct plugin *p = NULL;

	(void)state;
	assert_int_equal(plugin_load(&cfg, "../sim", &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "coil plugin '../sim': invalid name (allowed: a-z, 0-9, '_', '-')");
}

static void test_plugin_wrong_abi(void **state)
{
	char err[2048], want[2048];
	struct plugin *p = NULL;

	(void)state;
	strcpy(cfg.daemon.plugin_dir, BAD_DIR);
	assert_int_equal(plugin_load(&cfg, "abi99", &p, err, sizeof(err)), -ENOEXEC);
	assert_null(p);
	snprintf(want, sizeof(want),
		 "coil plugin 'abi99' (%s/abi99.so): ABI version 99.0, this rpmsd needs %d.x",
		 BAD_DIR, RPMSD_COIL_ABI_MAJOR);
	assert_string_equal(err, want);
	cfg.daemon.plugin_dir[0] = '\0';
}

static void test_plugin_missing_op(void **state)
{
	char err[2048];
	struct plugin *p = NULL;

	(void)state;
	strcpy(cfg.daemon.plugin_dir, BAD_DIR);
	assert_int_equal(plugin_load(&cfg, "nopulse", &p, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "required op missing (open, pulse and close are required)"));
	assert_int_equal(plugin_load(&cfg, "misnamed", &p, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "calls itself 'somebody-else'"));
	cfg.daemon.plugin_dir[0] = '\0';
}

static void test_plugin_env_path(void **state)
{
	char err[2048];
	struct plugin *p = NULL;

	(void)state;
	setenv("RPMSD_PLUGIN_PATH", "/nope:" BAD_DIR, 1);
	assert_int_equal(plugin_load(&cfg, "abi99", &p, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, BAD_DIR "/abi99.so"));
	unsetenv("RPMSD_PLUGIN_PATH");
}

static void test_plugin_sim_roundtrip(void **state)
{
	char err[2048];
	struct plugin *p = NULL;
	struct sclock *clk;
	struct rpmsd_coil_status st;
	const struct rpmsd_coil_descriptor *d;
	double t0;
	int i;

	(void)state;
	assert_int_equal(sclock_create(false, &clk), 0);
	sclock_start(clk);
	assert_int_equal(plugin_load(&cfg, "sim", &p, err, sizeof(err)), 0);
	assert_non_null(strstr(plugin_path(p), TEST_BUILD_ROOT "/plugins/sim/sim.so"));
	d = plugin_descriptor(p);
	assert_string_equal(d->name, "sim");
	assert_int_equal(d->abi_major, RPMSD_COIL_ABI_MAJOR);
	assert_int_equal(plugin_open(p, &cfg, clk, err, sizeof(err)), 0);

	assert_int_equal(plugin_status(p, &st), 0);
	assert_true(st.ready && !st.fault);
	t0 = st.temperature_c;
	assert_true(fabs(t0 - 25.0) < 1e-6);
	/* Disarmed: the simulated stimulator refuses, like a real one with enable low. */
	assert_int_equal(plugin_pulse(p, 50.0, 100), -EPERM);
	assert_int_equal(plugin_arm(p), 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(plugin_pulse(p, 100.0, 100), 0);
	}
	assert_int_equal(plugin_status(p, &st), 0);
	/* 100 pulses at 100 % and 0.05 C each, minus a little cooling. */
	assert_true(st.temperature_c > t0 + 4.9);
	assert_true(st.temperature_c <= t0 + 5.0 + 1e-9);
	assert_int_equal(plugin_disarm(p), 0);
	assert_int_equal(plugin_pulse(p, 50.0, 100), -EPERM);
	/* The supervisor's path (ABI 1.1): armed, then forced off. */
	assert_int_equal(plugin_arm(p), 0);
	assert_int_equal(plugin_force_disarm(p), 0);
	assert_int_equal(plugin_pulse(p, 50.0, 100), -EPERM);
	plugin_unload(p);
	plugin_unload(NULL);
	sclock_destroy(clk);
}

/* A 1.0 plugin still loads; the 1.1 op beyond its struct_size is never called. */
static void test_plugin_abi10(void **state)
{
	char err[2048];
	struct plugin *p = NULL;
	struct sclock *clk;
	int *forced;

	(void)state;
	assert_int_equal(sclock_create(false, &clk), 0);
	strcpy(cfg.daemon.plugin_dir, BAD_DIR);
	assert_int_equal(plugin_load(&cfg, "abi10", &p, err, sizeof(err)), 0);
	assert_int_equal(plugin_open(p, &cfg, clk, err, sizeof(err)), 0);
	assert_int_equal(plugin_force_disarm(p), -EOPNOTSUPP);
	forced = dlsym(RTLD_DEFAULT, "bad_forced");
	if (!forced) {
		void *h = dlopen(BAD_DIR "/abi10.so", RTLD_NOW | RTLD_NOLOAD);

		assert_non_null(h);
		forced = dlsym(h, "bad_forced");
		dlclose(h);
	}
	assert_non_null(forced);
	assert_int_equal(*forced, 0);
	plugin_unload(p);
	cfg.daemon.plugin_dir[0] = '\0';
	sclock_destroy(clk);
}

static void test_plugin_sim_config_keys(void **state)
{
	char err[2048];
	struct plugin *p = NULL;
	struct sclock *clk;

	(void)state;
	assert_int_equal(sclock_create(false, &clk), 0);
	strcpy(cfg.path, "test.conf");
	strcpy(cfg.plugin_section, "sim");
	cfg.plugin_section_line = 3;
	cfg.n_plugin_kv = 1;
	strcpy(cfg.plugin_kv[0].key, "ambient_c");
	strcpy(cfg.plugin_kv[0].value, "500");
	cfg.plugin_kv[0].line = 4;
	assert_int_equal(plugin_load(&cfg, "sim", &p, err, sizeof(err)), 0);
	assert_int_equal(plugin_open(p, &cfg, clk, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "test.conf:4: coil.sim.ambient_c: 500 is out of range (allowed: -20 to 60 C)");
	plugin_unload(p);
	cfg.n_plugin_kv = 0;
	cfg.plugin_section[0] = '\0';
	sclock_destroy(clk);
}

/* A 1.1 plugin still loads; the 1.2 ops beyond its struct_size are never called. */
static void test_plugin_abi11(void **state)
{
	char err[2048];
	struct plugin *p = NULL;
	struct sclock *clk;
	int *calls;
	void *h;

	(void)state;
	assert_int_equal(sclock_create(false, &clk), 0);
	strcpy(cfg.daemon.plugin_dir, BAD_DIR);
	assert_int_equal(plugin_load(&cfg, "abi11", &p, err, sizeof(err)), 0);
	assert_int_equal(plugin_open(p, &cfg, clk, err, sizeof(err)), 0);
	assert_false(plugin_has_envelope(p));
	assert_null(plugin_device(p));
	assert_int_equal(plugin_set_intensity(p, 40.0), -EOPNOTSUPP);
	assert_true(isnan(plugin_confirmed_intensity(p)));
	h = dlopen(BAD_DIR "/abi11.so", RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(h);
	calls = dlsym(h, "bad_calls_12");
	dlclose(h);
	assert_non_null(calls);
	assert_int_equal(*calls, 0);
	plugin_unload(p);
	cfg.daemon.plugin_dir[0] = '\0';
	sclock_destroy(clk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_plugin_missing, setup),
		cmocka_unit_test_setup(test_plugin_bad_name, setup),
		cmocka_unit_test_setup(test_plugin_wrong_abi, setup),
		cmocka_unit_test_setup(test_plugin_missing_op, setup),
		cmocka_unit_test_setup(test_plugin_env_path, setup),
		cmocka_unit_test_setup(test_plugin_sim_roundtrip, setup),
		cmocka_unit_test_setup(test_plugin_sim_config_keys, setup),
		cmocka_unit_test_setup(test_plugin_abi10, setup),
		cmocka_unit_test_setup(test_plugin_abi11, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
