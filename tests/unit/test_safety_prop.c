/* SPDX-License-Identifier: MIT */
/*
 * A seeded randomized property test of the safety gate: over random valid
 * limits and random request sequences (trains started and resumed, time
 * steps from zero to seconds, arming toggled, coil faults, not-ready and
 * temperatures around the limit, intensities around the cap, stale EMG),
 * every pulse the gate admits, checked against a timeline kept here and
 * not by the gate, keeps every limit; and every refusal names the first
 * rule, in table order, that the request breaks by this independent
 * reckoning. 2,000 configurations x 1,000 requests = 2 x 10^6 decisions.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "safety.h"

#define N_CONFIGS 2000
#define N_REQUESTS 1000
#define NS 1000000000LL

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static double rng_range(struct rng *r, double lo, double hi)
{
	return lo + (hi - lo) * rng_unit(r);
}

static int rng_chance(struct rng *r, double p)
{
	return rng_unit(r) < p;
}

/* Limits in the ranges the config table allows. */
static void random_limits(struct rng *r, struct safety_limits *lim)
{
	lim->max_frequency_hz = rng_range(r, 0.5, 100.0);
	lim->max_train_pulses = 1 + (uint32_t)(rng_next(r) % 50);
	lim->min_train_interval_ns = (int64_t)rng_range(r, 0.0, 3.0 * NS);
	lim->max_intensity_pct = rng_range(r, 1.0, 100.0);
	lim->max_coil_temp_c = rng_range(r, 20.0, 80.0);
	lim->acq_timeout_ns = (int64_t)rng_range(r, 0.01 * NS, 1.0 * NS);
}

/* What the pulses that were fired say, kept apart from the gate's state. */
struct timeline {
	int any;
	int64_t last_ns;
	uint32_t last_train;
	uint32_t run;		/* consecutive pulses of last_train */
	uint64_t fired;
};

/* The first rule @req breaks at @now, by this test's own reckoning. */
static enum safety_rule oracle(const struct safety_limits *lim, int armed,
			       const struct timeline *tl, const struct safety_request *req,
			       int64_t now)
{
	if (!armed) {
		return SAFETY_DISARMED;
	}
	if (req->acq_age_ns < 0 || req->acq_age_ns > lim->acq_timeout_ns) {
		return SAFETY_ACQ_STALE;
	}
	if (req->have_status && req->coil.fault) {
		return SAFETY_COIL_FAULT;
	}
	if (req->have_status && !req->coil.ready) {
		return SAFETY_NOT_READY;
	}
	if (req->have_status && !isnan(req->coil.temperature_c) &&
	    !(req->coil.temperature_c < lim->max_coil_temp_c)) {
		return SAFETY_COIL_TEMP;
	}
	if (!(req->intensity_pct >= 0.0 && req->intensity_pct <= lim->max_intensity_pct)) {
		return SAFETY_INTENSITY;
	}
	/* a period may come out one ns short of 1 / f from rounding; no more */
	if (tl->any && ((double)(now - tl->last_ns) + 1.0) * lim->max_frequency_hz < 1e9) {
		return SAFETY_MAX_FREQUENCY;
	}
	if ((tl->any && tl->last_train == req->train_id ? tl->run + 1 : 1) >
	    lim->max_train_pulses) {
		return SAFETY_TRAIN_PULSES;
	}
	if (tl->any && tl->last_train != req->train_id &&
	    now - tl->last_ns < lim->min_train_interval_ns) {
		return SAFETY_TRAIN_INTERVAL;
	}
	return SAFETY_OK;
}

static void random_request(struct rng *r, const struct safety_limits *lim,
			   uint32_t *train, struct safety_request *req)
{
	memset(req, 0, sizeof(*req));
	/* mostly the same train, sometimes a new one, now and then an old one */
	if (rng_chance(r, 0.08)) {
		(*train)++;
	} else if (rng_chance(r, 0.02) && *train > 1) {
		*train -= 1;
	}
	req->train_id = *train;
	req->intensity_pct = rng_chance(r, 0.9) ? rng_range(r, 0.0, lim->max_intensity_pct)
						: rng_range(r, -5.0, 120.0);
	if (rng_chance(r, 0.005)) {
		req->intensity_pct = NAN;
	}
	req->acq_age_ns = rng_chance(r, 0.95) ? (int64_t)rng_range(r, 0.0, (double)lim->acq_timeout_ns)
					    : (int64_t)rng_range(r, 0.0, 3.0 * (double)lim->acq_timeout_ns);
	if (rng_chance(r, 0.01)) {
		req->acq_age_ns = INT64_MAX;
	}
	req->have_status = rng_chance(r, 0.9);
	req->coil.fault = rng_chance(r, 0.02);
	req->coil.ready = !rng_chance(r, 0.03);
	req->coil.temperature_c = rng_range(r, lim->max_coil_temp_c - 10.0,
					    lim->max_coil_temp_c + 0.5);
	if (rng_chance(r, 0.05)) {
		req->coil.temperature_c = NAN;
	} else if (rng_chance(r, 0.005)) {
		req->coil.temperature_c = INFINITY;
	}
}

/* A time step: often around the rate limit, sometimes long pauses. */
static int64_t random_step(struct rng *r, const struct safety_limits *lim)
{
	double period = 1e9 / lim->max_frequency_hz;

	switch (rng_next(r) % 5) {
	case 0:
		return (int64_t)rng_range(r, 0.0, period);
	case 1:
		return (int64_t)floor(period) + (int64_t)(rng_next(r) % 3) - 1;
	case 2:
		return (int64_t)rng_range(r, period, 3.0 * period);
	case 3:
		return (int64_t)rng_range(r, 0.0, (double)lim->min_train_interval_ns * 1.5);
	default:
		return (int64_t)rng_range(r, 0.0, 2.0 * NS);
	}
}

static void test_gate_properties(void **state)
{
	struct rng r = { .s = 20261127 };
	uint64_t admitted = 0, refused_by[SAFETY_RULE_COUNT] = { 0 };
	int c, i;

	(void)state;
	for (c = 0; c < N_CONFIGS; c++) {
		struct safety_limits lim;
		struct safety_state st;
		struct timeline tl = { 0 };
		uint32_t train = 1;
		int64_t now = (int64_t)rng_range(&r, 0.0, 10.0 * NS);
		int armed = 0;

		random_limits(&r, &lim);
		safety_init(&st);
		for (i = 0; i < N_REQUESTS; i++) {
			struct safety_request req;
			struct safety_verdict v;
			enum safety_rule want;

			if (rng_chance(&r, 0.02) || i == 0) {
				armed = rng_chance(&r, 0.85);
				safety_set_armed(&st, armed);
			}
			now += random_step(&r, &lim);
			random_request(&r, &lim, &train, &req);
			v = safety_admit(&lim, &st, &req, now);
			want = oracle(&lim, armed, &tl, &req, now);
			if (v.rule != want) {
				fail_msg("config %d request %d: gate said %s, expected %s", c, i,
					 safety_rule_name(v.rule), safety_rule_name(want));
			}
			if (v.rule != SAFETY_OK) {
				refused_by[v.rule]++;
				continue;
			}
			/* Fired: check the timeline against every limit directly. */
			assert_true(armed);
			assert_true(req.intensity_pct <= lim.max_intensity_pct);
			if (tl.any) {
				assert_true((double)(now - tl.last_ns) >= 1e9 / lim.max_frequency_hz - 1.0);
				if (tl.last_train != req.train_id) {
					assert_true(now - tl.last_ns >= lim.min_train_interval_ns);
				}
			}
			tl.run = tl.any && tl.last_train == req.train_id ? tl.run + 1 : 1;
			assert_true(tl.run <= lim.max_train_pulses);
			tl.any = 1;
			tl.last_ns = now;
			tl.last_train = req.train_id;
			tl.fired++;
			admitted++;
			safety_commit(&st, &req, now);
		}
	}
	print_message("%llu admitted of %d requests;", (unsigned long long)admitted,
		      N_CONFIGS * N_REQUESTS);
	for (i = 1; i < SAFETY_RULE_COUNT; i++) {
		print_message(" %s %llu", safety_rule_name((unsigned)i),
			      (unsigned long long)refused_by[i]);
		/* every rule was exercised, or the test proves little */
		assert_true(refused_by[i] > 100);
	}
	print_message("\n");
	assert_true(admitted > 100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate_properties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
