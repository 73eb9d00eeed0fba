/* SPDX-License-Identifier: MIT */
/*
 * The shared TTL line layer (plugins/ttl) on a host without a GPIO
 * character device: its key table and the contract of ttl_open, whose
 * error goes to the caller's buffer (always filled, naming the key) and
 * never to the host's log, so a plugin logs it once. Lines, pulses, the
 * e-stop and the confirmation need gpio-sim: the VM rig tests them through
 * the gpio plugin (docs/plugins-gpio.md).
 *
 * The host here is the smallest real one: getters over the TTL_KEYS table
 * with a few values set, as the daemon's plugin.c gives a plugin its
 * validated section.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rpmsd/coil.h>

#include "ttl.h"

#define NO_CHIP "rpmsd-test-no-such-chip"

static const struct rpmsd_coil_key keys[] = { TTL_KEYS };

struct test_host {
	const char *set[8][2];	/* key, value; NULL-terminated */
	const char *undeclared;	/* a key the plugin "forgot" to declare */
	int errors;		/* ERR lines logged */
};

static const char *th_value(struct test_host *th, const char *key, int *ret)
{
	size_t i;

	*ret = -ENOENT;
	if (th->undeclared && strcmp(key, th->undeclared) == 0) {
		return NULL;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].name, key) == 0) {
			size_t j;

			*ret = 0;
			for (j = 0; th->set[j][0]; j++) {
				if (strcmp(th->set[j][0], key) == 0) {
					return th->set[j][1];
				}
			}
			return keys[i].def;
		}
	}
	return NULL;
}

static int th_get_bool(void *ctx, const char *key, bool *out)
{
	int ret;
	const char *v = th_value(ctx, key, &ret);

	if (ret == 0) {
		*out = strcmp(v, "true") == 0;
	}
	return ret;
}

static int th_get_int(void *ctx, const char *key, long long *out)
{
	int ret;
	const char *v = th_value(ctx, key, &ret);

	if (ret == 0) {
		*out = strtoll(v, NULL, 10);
	}
	return ret;
}

static int th_get_double(void *ctx, const char *key, double *out)
{
	int ret;
	const char *v = th_value(ctx, key, &ret);

	if (ret == 0) {
		*out = strtod(v, NULL);
	}
	return ret;
}

static int th_get_string(void *ctx, const char *key, const char **out)
{
	int ret;
	const char *v = th_value(ctx, key, &ret);

	if (ret == 0) {
		*out = v;
	}
	return ret;
}

static int64_t th_now_ns(void *ctx)
{
	(void)ctx;
	return 0;
}

__attribute__((format(printf, 3, 4))) static void th_log(void *ctx,
							enum rpmsd_coil_log_level level,
							const char *fmt, ...)
{
	struct test_host *th = ctx;
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (level == RPMSD_COIL_LOG_ERR) {
		th->errors++;
	}
}

static void th_alert(void *ctx, enum rpmsd_coil_alert what, int code)
{
	(void)ctx;
	(void)what;
	(void)code;
}

/* ttl_open must fail with @want_ret and an err starting with @want_err. */
static void expect_open_fails(struct test_host *th, int want_ret, const char *want_err)
{
	const struct rpmsd_coil_host host = {
		.struct_size = sizeof(host),
		.ctx = th,
		.get_bool = th_get_bool,
		.get_int = th_get_int,
		.get_double = th_get_double,
		.get_string = th_get_string,
		.now_ns = th_now_ns,
		.log = th_log,
		.alert = th_alert,
	};
	struct ttl *t = (struct ttl *)&host;	/* must be overwritten */
	char err[512];
	int ret;

	memset(err, 'x', sizeof(err));
	ret = ttl_open(&host, &t, err, sizeof(err));
	printf("ttl_open: %d: %s\n", ret, err);
	assert_int_equal(ret, want_ret);
	assert_null(t);
	assert_true(strncmp(err, want_err, strlen(want_err)) == 0);
	/* The caller logs err: the layer itself must not log it too. */
	assert_int_equal(th->errors, 0);
}

static void test_ttl_keys(void **state)
{
	size_t i, j;

	(void)state;
	assert_int_equal(sizeof(keys) / sizeof(keys[0]), TTL_N_KEYS);
	assert_string_equal(keys[0].name, "chip");
	assert_string_equal(keys[1].name, "trigger_line");
	assert_string_equal(keys[TTL_N_KEYS - 1].name, "estop_log_max");
	for (i = 0; i < TTL_N_KEYS; i++) {
		assert_non_null(keys[i].def);
		assert_true(strlen(keys[i].doc) > 10);
		for (j = 0; j < i; j++) {
			assert_string_not_equal(keys[i].name, keys[j].name);
		}
	}
}

static void test_ttl_open_trigger_unset(void **state)
{
	struct test_host th = { .set = { { "chip", NO_CHIP } } };

	(void)state;
	expect_open_fails(&th, -EINVAL,
			  "key trigger_line: not set (the offset or name of the line that fires the stimulator)");
}

static void test_ttl_open_bad_bias(void **state)
{
	struct test_host th = { .set = { { "chip", NO_CHIP },
					 { "trigger_line", "0" },
					 { "ready_line", "1" },
					 { "ready_bias", "down" } } };

	(void)state;
	expect_open_fails(&th, -EINVAL,
			  "key ready_bias: 'down' is not a bias (allowed: as-is, disable, pull-up, pull-down)");
}

static void test_ttl_open_no_chip(void **state)
{
	struct test_host th = { .set = { { "chip", NO_CHIP }, { "trigger_line", "0" } } };

	(void)state;
	expect_open_fails(&th, -ENOENT,
			  "key chip: cannot open GPIO chip '" NO_CHIP "': No such file or directory (");
}

static void test_ttl_open_chip_unset(void **state)
{
	struct test_host th = { .set = { { "chip", "" }, { "trigger_line", "0" } } };

	(void)state;
	expect_open_fails(&th, -EINVAL, "key chip: not set (a chip name, path, label or number)");
}

/* A plugin that did not splice TTL_KEYS: the error names the key. */
static void test_ttl_open_key_undeclared(void **state)
{
	struct test_host th = { .set = { { "trigger_line", "0" } },
				.undeclared = "estop_log_max" };

	(void)state;
	expect_open_fails(&th, -ENOENT,
			  "key estop_log_max: cannot read it: No such file or directory (does the plugin declare TTL_KEYS?)");
}

static void test_ttl_close_null(void **state)
{
	(void)state;
	ttl_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_keys),
		cmocka_unit_test(test_ttl_open_trigger_unset),
		cmocka_unit_test(test_ttl_open_bad_bias),
		cmocka_unit_test(test_ttl_open_no_chip),
		cmocka_unit_test(test_ttl_open_chip_unset),
		cmocka_unit_test(test_ttl_open_key_undeclared),
		cmocka_unit_test(test_ttl_close_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
