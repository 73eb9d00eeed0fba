/* SPDX-License-Identifier: MIT */
/*
 * The motor threshold procedure (daemon/threshold.c) against the sim
 * plugin's simulated patients (plugins/sim/simpatient.c): the estimate
 * within 2 % of maximum output of the true threshold for 200 seeded
 * patients, in a bounded number of pulses; the cap; the M-wave measure.
 */
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

#include "simpatient.h"
#include "threshold.h"

#define PATIENTS 200
/* The bound the docs state (docs/threshold.md): no run may take more. */
#define PULSES_BOUND 80

/* Patient @i of the benchmark population, drawn from a seeded generator. */
static struct simpatient *test_patient(uint64_t i, struct simpatient_params *prm)
{
	struct simpatient_params gen = {
		.threshold_pct = 50, .slope_pct = 1, .max_uv = 1000, .noise = 0, .seed = 1000 + i,
	};
	struct simpatient *g = NULL, *p = NULL;
	char err[128];

	assert_int_equal(simpatient_create(&gen, &g, err, sizeof(err)), 0);
	prm->threshold_pct = 20.0 + 60.0 * simpatient_uniform(g);
	prm->slope_pct = 1.0 + 3.0 * simpatient_uniform(g);
	prm->max_uv = 500.0 + 4500.0 * simpatient_uniform(g);
	prm->noise = 0.1 + 0.3 * simpatient_uniform(g);
	prm->seed = 7777 + i;
	simpatient_destroy(g);
	assert_int_equal(simpatient_create(prm, &p, err, sizeof(err)), 0);
	return p;
}

/* Run the procedure on @p; every probe is checked against the cap. */
static void test_run(struct simpatient *p, const struct threshold_params *tp,
		     struct threshold_result *res)
{
	struct threshold *t = NULL;
	char err[128];
	double pct;

	assert_int_equal(threshold_create(tp, &t, err, sizeof(err)), 0);
	while (threshold_next(t, &pct) == THRESHOLD_PROBE) {
		assert_true(pct >= 1.0 && pct <= tp->cap_pct);
		assert_true(pct == round(pct));
		assert_int_equal(threshold_feed(t, simpatient_response_uv(p, pct)), 0);
	}
	assert_true(isnan(pct));
	assert_int_equal(threshold_feed(t, 100.0), -EALREADY);
	threshold_result(t, res);
	threshold_destroy(t);
}

static int test_cmp_uint(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return (x > y) - (x < y);
}

static void test_threshold_population(void **state)
{
	struct threshold_params tp;
	struct simpatient_params prm;
	struct threshold_result res;
	unsigned pulses[PATIENTS], i, within1 = 0;
	double err_max = 0.0, e;

	(void)state;
	threshold_defaults(&tp);
	for (i = 0; i < PATIENTS; i++) {
		struct simpatient *p = test_patient(i, &prm);

		test_run(p, &tp, &res);
		simpatient_destroy(p);
		assert_int_equal(res.state, THRESHOLD_DONE);
		e = fabs(res.threshold_pct - prm.threshold_pct);
		if (e > 2.0) {
			fail_msg("patient %u: threshold %.2f %%, estimate %.0f %% (%u pulses)", i,
				 prm.threshold_pct, res.threshold_pct, res.pulses);
		}
		within1 += e <= 1.0;
		err_max = fmax(err_max, e);
		pulses[i] = res.pulses;
	}
	qsort(pulses, PATIENTS, sizeof(pulses[0]), test_cmp_uint);
	/* the figures docs/threshold.md quotes */
	printf("threshold: %d patients, error max %.2f %%, within 1 %%: %u; pulses median %u, "
	       "p95 %u, max %u\n", PATIENTS, err_max, within1, pulses[PATIENTS / 2],
	       pulses[PATIENTS * 95 / 100 - 1], pulses[PATIENTS - 1]);
	assert_true(pulses[PATIENTS - 1] <= PULSES_BOUND);
}

/* The same seed: the same probes, the same result. */
static void test_threshold_repeatable(void **state)
{
	struct threshold_params tp;
	struct simpatient_params prm;
	struct threshold_result a, b;
	struct simpatient *p;

	(void)state;
	threshold_defaults(&tp);
	p = test_patient(3, &prm);
	test_run(p, &tp, &a);
	simpatient_destroy(p);
	p = test_patient(3, &prm);
	test_run(p, &tp, &b);
	simpatient_destroy(p);
	assert_int_equal(a.pulses, b.pulses);
	assert_true(a.threshold_pct == b.threshold_pct);
}

/* A cap below the threshold: capped, never a probe above it, a bounded run. */
static void test_threshold_cap(void **state)
{
	struct simpatient_params prm = {
		.threshold_pct = 62.3, .slope_pct = 2, .max_uv = 2000, .noise = 0.2, .seed = 5,
	};
	struct threshold_params tp;
	struct threshold_result res;
	struct simpatient *p = NULL;
	char err[128];

	(void)state;
	assert_int_equal(simpatient_create(&prm, &p, err, sizeof(err)), 0);
	threshold_defaults(&tp);
	tp.cap_pct = 50.0;
	test_run(p, &tp, &res);
	assert_int_equal(res.state, THRESHOLD_CAPPED);
	assert_true(isnan(res.threshold_pct));
	assert_true(res.pulses <= 20);
	assert_string_equal(threshold_state_name(res.state), "capped");
	/* a cap just above the threshold finds it */
	tp.cap_pct = 64.0;
	test_run(p, &tp, &res);
	assert_int_equal(res.state, THRESHOLD_DONE);
	assert_true(fabs(res.threshold_pct - prm.threshold_pct) <= 2.0);
	simpatient_destroy(p);
}

/* No response ever (no muscle on the channel): it ends at the cap, bounded. */
static void test_threshold_no_response(void **state)
{
	struct threshold_params tp;
	struct threshold_result res;
	struct threshold *t = NULL;
	char err[128];
	double pct;

	(void)state;
	threshold_defaults(&tp);
	assert_int_equal(threshold_create(&tp, &t, err, sizeof(err)), 0);
	while (threshold_next(t, &pct) == THRESHOLD_PROBE) {
		assert_int_equal(threshold_feed(t, NAN), 0);
	}
	threshold_result(t, &res);
	assert_int_equal(res.state, THRESHOLD_CAPPED);
	assert_true(res.pulses <= 20);
	threshold_destroy(t);
	/* a response to everything: the floor, 1 % */
	assert_int_equal(threshold_create(&tp, &t, err, sizeof(err)), 0);
	while (threshold_next(t, &pct) == THRESHOLD_PROBE) {
		assert_int_equal(threshold_feed(t, 1000.0), 0);
	}
	threshold_result(t, &res);
	assert_int_equal(res.state, THRESHOLD_DONE);
	assert_true(res.threshold_pct == 1.0);
	threshold_destroy(t);
	/* max_pulses ends a run that has not converged */
	tp.max_pulses = 10;
	assert_int_equal(threshold_create(&tp, &t, err, sizeof(err)), 0);
	while (threshold_next(t, &pct) == THRESHOLD_PROBE) {
		assert_int_equal(threshold_feed(t, pct >= 33 ? 1000.0 : 0.0), 0);
	}
	threshold_result(t, &res);
	assert_int_equal(res.state, THRESHOLD_LIMIT);
	assert_int_equal(res.pulses, 10);
	threshold_destroy(t);
}

static void test_threshold_bad_params(void **state)
{
	struct threshold_params tp;
	struct threshold *t = (struct threshold *)&tp;
	char err[128];

	(void)state;
	threshold_defaults(&tp);
	tp.start_pct = 60;
	tp.cap_pct = 50;
	assert_int_equal(threshold_create(&tp, &t, err, sizeof(err)), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(err, "start_pct"));
	threshold_defaults(&tp);
	tp.hits = 11;
	assert_int_equal(threshold_create(&tp, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "hits"));
	threshold_defaults(&tp);
	tp.cap_pct = 0;
	assert_int_equal(threshold_create(&tp, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cap_pct"));
	threshold_destroy(NULL);
}

/* Peak-to-peak in the window, the artefact before blank_ms left out. */
static void test_threshold_p2p(void **state)
{
	float x[2 * 100] = { 0 };	/* 2 channels, 100 frames at 1 kHz */
	size_t i;

	(void)state;
	for (i = 0; i < 100; i++) {
		x[2 * i] = 1000.0f;	/* channel 0: something else */
	}
	x[2 * 10 + 1] = 5000.0f;	/* the artefact at the pulse (sample 10) */
	x[2 * 11 + 1] = -5000.0f;
	x[2 * 15 + 1] = 40.0f;		/* the M-wave, 5 ms after */
	x[2 * 18 + 1] = -30.0f;
	x[2 * 40 + 1] = 900.0f;		/* after the window (30 ms) */
	assert_true(threshold_p2p(x + 1, 100, 2, 1000.0, 10, 2.0, 2.0, 20.0) == 70.0);
	/* without the blank the artefact would be measured */
	assert_true(threshold_p2p(x + 1, 100, 2, 1000.0, 10, 0.0, 0.0, 20.0) == 10000.0);
	/* a window past the data: what is there; none at all: NAN */
	assert_true(threshold_p2p(x + 1, 20, 2, 1000.0, 10, 2.0, 2.0, 20.0) == 70.0);
	assert_true(isnan(threshold_p2p(x + 1, 100, 2, 1000.0, 95, 2.0, 10.0, 20.0)));
	assert_true(isnan(threshold_p2p(x + 1, 100, 2, 1000.0, 10, 2.0, 20.0, 20.0)));
}

/* The recruitment curve: 50 µV at the threshold, half the draws reach it. */
static void test_simpatient_curve(void **state)
{
	struct simpatient_params prm = {
		.threshold_pct = 45, .slope_pct = 3, .max_uv = 3000, .noise = 0.3, .seed = 42,
	};
	struct simpatient *p = NULL;
	char err[128];
	unsigned i, hits = 0;

	(void)state;
	assert_int_equal(simpatient_create(&prm, &p, err, sizeof(err)), 0);
	assert_true(fabs(simpatient_mean_uv(p, 45) - 50.0) < 1e-9);
	assert_true(fabs(simpatient_probability(p, 45, 50.0) - 0.5) < 1e-12);
	assert_true(simpatient_mean_uv(p, 100) > 2990.0);
	assert_true(simpatient_mean_uv(p, 30) < 50.0 * exp(-4.0));
	for (i = 0; i < 20000; i++) {
		hits += simpatient_response_uv(p, 45) >= 50.0;
	}
	assert_true(hits > 9700 && hits < 10300);
	simpatient_destroy(p);
	prm.slope_pct = 0;
	assert_int_equal(simpatient_create(&prm, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "slope_pct"));
	prm.slope_pct = 3;
	prm.max_uv = 80;
	assert_int_equal(simpatient_create(&prm, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "max_uv"));
	simpatient_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_population),
		cmocka_unit_test(test_threshold_repeatable),
		cmocka_unit_test(test_threshold_cap),
		cmocka_unit_test(test_threshold_no_response),
		cmocka_unit_test(test_threshold_bad_params),
		cmocka_unit_test(test_threshold_p2p),
		cmocka_unit_test(test_simpatient_curve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
