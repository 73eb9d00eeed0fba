/* SPDX-License-Identifier: MIT */
/*
 * The coil plugin ABI (include/rpmsd/coil.h), pinned: the size of every
 * struct a plugin and the host exchange, the offset, size and type of every
 * member, the values of every enum and the version macros.
 *
 * A plugin built against an older header is a binary that cannot be
 * rebuilt with this one, so the layout is a promise, not an implementation
 * detail. A failure here means the ABI changed. Either
 *  - bump RPMSD_COIL_ABI_MAJOR (every existing plugin is then refused), or
 *  - grow it compatibly: add members only at the end of a struct, bump
 *    RPMSD_COIL_ABI_MINOR, and make the host read the new members only when
 *    the plugin's struct_size covers them (plugin.c, PLUGIN_HAS_OP),
 * then pin the new numbers here. Never edit a number here to make the test
 * pass without doing one of the two.
 *
 * Only the structs that carry their size can grow: the descriptor (with
 * ops, its last member), the host struct and (1.2) the envelope. struct rpmsd_coil_key is an
 * array element, so its size is the stride the host walks an old plugin's
 * table with, and struct rpmsd_coil_status is filled by the plugin in the
 * host's memory with no size passed: changing either is a major bump.
 *
 * Data model: LP64 (int 32 bits; long, pointers and size_t 64 bits;
 * natural alignment), as on x86_64, where these numbers were taken. Any
 * other LP64 ABI with natural alignment (aarch64, riscv64) gives the same;
 * a 32-bit target would need a table of its own, and test_abi_data_model
 * says so first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rpmsd/coil.h>

/*
 * Member m of struct s sits at offset off, takes size bytes and has type T
 * (same size is not enough: a double turned float in pulse's arguments
 * keeps every size and breaks every plugin).
 */
#define ABI_PIN(s, m, off, size, T)                                                     \
	do {                                                                            \
		assert_int_equal(offsetof(struct s, m), (off));                        \
		assert_int_equal(sizeof(((struct s){ 0 }).m), (size));                  \
		assert_true(__builtin_types_compatible_p(__typeof__(((struct s){ 0 }).m), T)); \
	} while (0)

static void test_abi_data_model(void **state)
{
	(void)state;
	/* The numbers below are LP64's. */
	assert_int_equal(sizeof(int), 4);
	assert_int_equal(sizeof(long), 8);
	assert_int_equal(sizeof(void *), 8);
	assert_int_equal(sizeof(void (*)(void)), 8);
	assert_int_equal(sizeof(size_t), 8);
	assert_int_equal(sizeof(double), 8);
	assert_int_equal(_Alignof(double), 8);
	assert_int_equal(_Alignof(int64_t), 8);
	assert_int_equal(sizeof(bool), 1);
	/* Enums travel as int (the ABI's enum members are 4-byte fields). */
	assert_int_equal(sizeof(enum rpmsd_coil_key_type), 4);
	assert_int_equal(sizeof(enum rpmsd_coil_alert), 4);
	assert_int_equal(sizeof(enum rpmsd_coil_log_level), 4);
}

static void test_abi_version(void **state)
{
	(void)state;
	assert_int_equal(RPMSD_COIL_ABI_MAJOR, 1);
	assert_int_equal(RPMSD_COIL_ABI_MINOR, 2);
	assert_string_equal(RPMSD_COIL_ENTRY_SYMBOL, "rpmsd_coil_entry");
	assert_true(__builtin_types_compatible_p(rpmsd_coil_entry_fn,
						 const struct rpmsd_coil_descriptor *(*)(void)));
}

/* Plugins put enum values in their key tables and pass them to alert and log. */
static void test_abi_enums(void **state)
{
	(void)state;
	assert_int_equal(RPMSD_COIL_KEY_BOOL, 1);
	assert_int_equal(RPMSD_COIL_KEY_INT, 2);
	assert_int_equal(RPMSD_COIL_KEY_DOUBLE, 3);
	assert_int_equal(RPMSD_COIL_KEY_STRING, 4);
	assert_int_equal(RPMSD_COIL_ALERT_ESTOP, 1);
	assert_int_equal(RPMSD_COIL_ALERT_FAULT, 2);
	assert_int_equal(RPMSD_COIL_LOG_ERR, 3);
	assert_int_equal(RPMSD_COIL_LOG_WARN, 4);
	assert_int_equal(RPMSD_COIL_LOG_INFO, 6);
	assert_int_equal(RPMSD_COIL_LOG_DEBUG, 7);
}

static void test_abi_descriptor(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct rpmsd_coil_descriptor), 144);
	ABI_PIN(rpmsd_coil_descriptor, abi_major, 0, 4, uint32_t);
	ABI_PIN(rpmsd_coil_descriptor, abi_minor, 4, 4, uint32_t);
	ABI_PIN(rpmsd_coil_descriptor, struct_size, 8, 8, size_t);
	ABI_PIN(rpmsd_coil_descriptor, name, 16, 8, const char *);
	ABI_PIN(rpmsd_coil_descriptor, description, 24, 8, const char *);
	ABI_PIN(rpmsd_coil_descriptor, keys, 32, 8, const struct rpmsd_coil_key *);
	ABI_PIN(rpmsd_coil_descriptor, n_keys, 40, 8, size_t);
	ABI_PIN(rpmsd_coil_descriptor, ops, 48, 96, struct rpmsd_coil_ops);
	/* A 1.0 plugin's descriptor ends where 1.1 added force_disarm. */
	assert_int_equal(offsetof(struct rpmsd_coil_descriptor, ops.force_disarm), 96);
	/* A 1.1 plugin's descriptor ends where 1.2 added set_intensity. */
	assert_int_equal(offsetof(struct rpmsd_coil_descriptor, ops.set_intensity), 104);
	assert_int_equal(offsetof(struct rpmsd_coil_descriptor, ops.confirmed_intensity), 112);
	assert_int_equal(offsetof(struct rpmsd_coil_descriptor, ops.envelope), 120);
	assert_int_equal(offsetof(struct rpmsd_coil_descriptor, ops.alert_text), 128);
	assert_int_equal(offsetof(struct rpmsd_coil_descriptor, ops.pulse_info), 136);
}

static void test_abi_ops(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct rpmsd_coil_ops), 96);
	ABI_PIN(rpmsd_coil_ops, open, 0, 8, int (*)(const struct rpmsd_coil_host *, void **));
	ABI_PIN(rpmsd_coil_ops, arm, 8, 8, int (*)(void *));
	ABI_PIN(rpmsd_coil_ops, disarm, 16, 8, int (*)(void *));
	ABI_PIN(rpmsd_coil_ops, pulse, 24, 8, int (*)(void *, double, uint32_t));
	ABI_PIN(rpmsd_coil_ops, status, 32, 8, int (*)(void *, struct rpmsd_coil_status *));
	ABI_PIN(rpmsd_coil_ops, close, 40, 8, void (*)(void *));
	/* 1.1 */
	ABI_PIN(rpmsd_coil_ops, force_disarm, 48, 8, int (*)(void *));
	/* 1.2 */
	ABI_PIN(rpmsd_coil_ops, set_intensity, 56, 8, int (*)(void *, double));
	ABI_PIN(rpmsd_coil_ops, confirmed_intensity, 64, 8, int (*)(void *, double *));
	ABI_PIN(rpmsd_coil_ops, envelope, 72, 8,
		const struct rpmsd_coil_envelope *(*)(void *));
	ABI_PIN(rpmsd_coil_ops, alert_text, 80, 8, size_t (*)(void *, char *, size_t));
	ABI_PIN(rpmsd_coil_ops, pulse_info, 88, 8,
		int (*)(void *, struct rpmsd_coil_pulse_info *));
}

/*
 * 1.2: what a plugin reports of a delivered pulse carries its size (set
 * by the host) and may grow at its end.
 */
static void test_abi_pulse_info(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct rpmsd_coil_pulse_info), 64);
	ABI_PIN(rpmsd_coil_pulse_info, struct_size, 0, 8, size_t);
	ABI_PIN(rpmsd_coil_pulse_info, confirm_ns, 8, 8, int64_t);
	ABI_PIN(rpmsd_coil_pulse_info, readback_pulse, 16, 8, uint64_t);
	ABI_PIN(rpmsd_coil_pulse_info, didt_a_per_us, 24, 8, double);
	/* grown at its end: the simulated patient's response */
	ABI_PIN(rpmsd_coil_pulse_info, sim_response_uv, 32, 8, double);
	ABI_PIN(rpmsd_coil_pulse_info, sim_latency_us, 40, 8, double);
	ABI_PIN(rpmsd_coil_pulse_info, sim_artefact_uv, 48, 8, double);
	ABI_PIN(rpmsd_coil_pulse_info, sim_channel, 56, 4, uint32_t);
}

/*
 * 1.2: the envelope carries its size and may grow at its end like the
 * descriptor; its two table entries are array elements (strides) and
 * never change.
 */
static void test_abi_envelope(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct rpmsd_coil_envelope), 88);
	ABI_PIN(rpmsd_coil_envelope, struct_size, 0, 8, size_t);
	ABI_PIN(rpmsd_coil_envelope, model, 8, 8, const char *);
	ABI_PIN(rpmsd_coil_envelope, max_output_pct, 16, 8, double);
	ABI_PIN(rpmsd_coil_envelope, rate_caps, 24, 8, const struct rpmsd_coil_rate_cap *);
	ABI_PIN(rpmsd_coil_envelope, n_rate_caps, 32, 8, size_t);
	ABI_PIN(rpmsd_coil_envelope, min_train_gap_ms, 40, 8, double);
	ABI_PIN(rpmsd_coil_envelope, single_pulse_max_hz, 48, 8, double);
	ABI_PIN(rpmsd_coil_envelope, energy, 56, 8, const struct rpmsd_coil_energy_point *);
	ABI_PIN(rpmsd_coil_envelope, n_energy, 64, 8, size_t);
	ABI_PIN(rpmsd_coil_envelope, sustained_power_w, 72, 8, double);
	ABI_PIN(rpmsd_coil_envelope, coil_cutoff_c, 80, 8, double);
	assert_int_equal(sizeof(struct rpmsd_coil_rate_cap), 16);
	ABI_PIN(rpmsd_coil_rate_cap, max_output_pct, 0, 8, double);
	ABI_PIN(rpmsd_coil_rate_cap, max_rate_hz, 8, 8, double);
	assert_int_equal(sizeof(struct rpmsd_coil_energy_point), 16);
	ABI_PIN(rpmsd_coil_energy_point, output_pct, 0, 8, double);
	ABI_PIN(rpmsd_coil_energy_point, joules, 8, 8, double);
}

static void test_abi_host(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct rpmsd_coil_host), 72);
	ABI_PIN(rpmsd_coil_host, struct_size, 0, 8, size_t);
	ABI_PIN(rpmsd_coil_host, ctx, 8, 8, void *);
	ABI_PIN(rpmsd_coil_host, get_bool, 16, 8, int (*)(void *, const char *, bool *));
	ABI_PIN(rpmsd_coil_host, get_int, 24, 8, int (*)(void *, const char *, long long *));
	ABI_PIN(rpmsd_coil_host, get_double, 32, 8, int (*)(void *, const char *, double *));
	ABI_PIN(rpmsd_coil_host, get_string, 40, 8,
		int (*)(void *, const char *, const char **));
	ABI_PIN(rpmsd_coil_host, now_ns, 48, 8, int64_t (*)(void *));
	ABI_PIN(rpmsd_coil_host, log, 56, 8,
		void (*)(void *, enum rpmsd_coil_log_level, const char *, ...));
	ABI_PIN(rpmsd_coil_host, alert, 64, 8, void (*)(void *, enum rpmsd_coil_alert, int));
}

/*
 * The key table a plugin exports and the status it fills are ABI too, and
 * neither carries a size: any change to them is a major bump.
 */
static void test_abi_key(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct rpmsd_coil_key), 56);
	ABI_PIN(rpmsd_coil_key, name, 0, 8, const char *);
	ABI_PIN(rpmsd_coil_key, type, 8, 4, enum rpmsd_coil_key_type);
	ABI_PIN(rpmsd_coil_key, def, 16, 8, const char *);
	ABI_PIN(rpmsd_coil_key, min, 24, 8, double);
	ABI_PIN(rpmsd_coil_key, max, 32, 8, double);
	ABI_PIN(rpmsd_coil_key, unit, 40, 8, const char *);
	ABI_PIN(rpmsd_coil_key, doc, 48, 8, const char *);
}

static void test_abi_status(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct rpmsd_coil_status), 24);
	ABI_PIN(rpmsd_coil_status, temperature_c, 0, 8, double);
	ABI_PIN(rpmsd_coil_status, ready, 8, 1, bool);
	ABI_PIN(rpmsd_coil_status, fault, 9, 1, bool);
	ABI_PIN(rpmsd_coil_status, fault_code, 12, 4, int);
	ABI_PIN(rpmsd_coil_status, estop, 16, 1, bool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi_data_model),
		cmocka_unit_test(test_abi_version),
		cmocka_unit_test(test_abi_enums),
		cmocka_unit_test(test_abi_descriptor),
		cmocka_unit_test(test_abi_ops),
		cmocka_unit_test(test_abi_envelope),
		cmocka_unit_test(test_abi_pulse_info),
		cmocka_unit_test(test_abi_host),
		cmocka_unit_test(test_abi_key),
		cmocka_unit_test(test_abi_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
