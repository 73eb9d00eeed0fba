/* SPDX-License-Identifier: MIT */
/*
 * Safety gate tests: each rule at and around its limit, the rule order,
 * an exhaustive grid against an independent reference written from the
 * spec (docs/safety.md), and randomized property tests: whatever stream
 * of requests comes in, under whatever valid limits, the pulses the gate
 * admits never break a limit, and every verdict is the reference's.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "safety.h"
#include "train_table.h"

#define MS 1000000LL
#define SEC 1000000000LL

static struct safety_limits lim_default(void)
{
	struct safety_limits lim = {
		.max_frequency_hz = 25.0,
		.max_train_pulses = 5,
		.min_train_interval_ns = 500 * MS,
		.max_intensity_pct = 60.0,
		.max_coil_temp_c = 40.0,
		.acq_timeout_ns = 250 * MS,
		.motor_threshold_pct = 40.0,
		.max_session_pulses = 1000000,
		.max_daily_pulses = 1000000,
	};

	train_table_default(&lim.table);
	return lim;
}

/* Disarmed, nothing delivered, and plenty recorded in the ledger. */
static void st_init(struct safety_state *st)
{
	safety_init(st, 0);
	safety_set_recorded(st, 1000000, false);
}

static struct safety_request req_make(uint32_t train, double intensity)
{
	struct safety_request r = { .train_id = train, .intensity_pct = intensity };

	r.coil.temperature_c = NAN;
	r.acq_age_ns = 0;
	return r;
}

/* The rules of a connected device's envelope and read-back (safety_device.c). */
static bool test_device_rule(unsigned r)
{
	return r == SAFETY_DEVICE_INTENSITY || r == SAFETY_DEVICE_MAX_OUTPUT ||
	       r == SAFETY_DEVICE_RATE || r == SAFETY_DEVICE_SINGLE_RATE ||
	       r == SAFETY_DEVICE_TRAIN_GAP || r == SAFETY_DEVICE_ENERGY_WAIT ||
	       r == SAFETY_DEVICE_ENERGY;
}

static void test_safety_starts_disarmed(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;

	(void)state;
	st_init(&st);
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_DISARMED);
	safety_set_armed(&st, true);
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_OK);
	safety_set_armed(&st, false);
	assert_int_equal(safety_admit(&lim, &st, &r, 10 * SEC).rule, SAFETY_DISARMED);
}

static void test_safety_intensity(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r;
	struct safety_verdict v;

	(void)state;
	st_init(&st);
	safety_set_armed(&st, true);
	r = req_make(1, 60.0);
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	r = req_make(1, 60.001);
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_INTENSITY);
	assert_true(v.value == 60.001);
	assert_true(v.limit == 60.0);
	r = req_make(1, -1.0);
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_INTENSITY);
	r = req_make(1, NAN);
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_INTENSITY);
}

static void test_safety_coil_status(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;

	(void)state;
	st_init(&st);
	safety_set_armed(&st, true);
	r.have_status = true;
	r.coil.ready = true;
	r.coil.temperature_c = 39.99;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	r.coil.temperature_c = 40.0;
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_COIL_TEMP);
	assert_true(v.value == 40.0 && v.limit == 40.0);
	r.coil.temperature_c = INFINITY;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_COIL_TEMP);
	r.coil.temperature_c = NAN;	/* no sensor: not held to the limit */
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	r.coil.ready = false;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_NOT_READY);
	r.coil.fault = true;
	r.coil.fault_code = -5;
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_COIL_FAULT);
	assert_true(v.value == -5.0);
}

static void test_safety_frequency_and_train(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(7, 30);
	struct safety_verdict v;
	int64_t t = 1 * SEC, period = 40 * MS;	/* 25 Hz */
	int i;

	(void)state;
	st_init(&st);
	safety_set_armed(&st, true);
	for (i = 0; i < 5; i++) {
		assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
		safety_commit(&st, &r, t);
		/* one ns short of the period is refused, except for whole-ns rounding */
		v = safety_admit(&lim, &st, &r, t + period - 2);
		assert_int_equal(v.rule, SAFETY_MAX_FREQUENCY);
		assert_true(fabs(v.limit - 0.04) < 1e-12);
		t += period;
	}
	/* sixth pulse of the same train: too many */
	v = safety_admit(&lim, &st, &r, t);
	assert_int_equal(v.rule, SAFETY_TRAIN_PULSES);
	assert_true(v.value == 6.0 && v.limit == 5.0);
	/* a new train must wait min_train_interval after the last pulse */
	r.train_id = 8;
	v = safety_admit(&lim, &st, &r, t - period + 499 * MS);
	assert_int_equal(v.rule, SAFETY_TRAIN_INTERVAL);
	assert_true(fabs(v.value - 0.499) < 1e-9);
	assert_true(fabs(v.limit - 0.5) < 1e-12);
	assert_int_equal(safety_admit(&lim, &st, &r, t - period + 500 * MS).rule, SAFETY_OK);
	/* time going backwards is refused, not wrapped */
	assert_int_equal(safety_admit(&lim, &st, &r, t - 2 * period).rule, SAFETY_MAX_FREQUENCY);
}

static void test_safety_acquisition_stale(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;

	(void)state;
	st_init(&st);
	safety_set_armed(&st, true);
	r.acq_age_ns = 250 * MS;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	r.acq_age_ns = 250 * MS + 1;
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_ACQ_STALE);
	assert_true(fabs(v.limit - 0.25) < 1e-12);
	r.acq_age_ns = INT64_MAX;	/* no EMG yet */
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_ACQ_STALE);
	assert_true(isinf(v.value));
	r.acq_age_ns = -1;	/* EMG from the future: a clock in doubt */
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_ACQ_STALE);
	/* disarmed comes first */
	safety_set_armed(&st, false);
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_DISARMED);
}

/* The e-stop comes first: it outranks even "disarmed". */
static void test_safety_estop(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;

	(void)state;
	st_init(&st);
	safety_set_armed(&st, true);
	r.have_status = true;
	r.coil.ready = true;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	r.coil.estop = true;
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_ESTOP);
	assert_true(v.value == 1.0 && v.limit == 0.0);
	safety_set_armed(&st, false);
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_ESTOP);
	/* a plugin without a status op cannot report one */
	r.have_status = false;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_DISARMED);
}

/*
 * The table at its boundary: 20 Hz at 75 % of motor threshold (30 % of
 * output, threshold 40 %) allows 2.05 s = 41 pulses; at 110 % MT (44 %)
 * 1.6 s = 32 pulses.
 */
static void test_safety_train_duration(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;
	int64_t t = 0, period = 50 * MS;
	uint32_t i;

	(void)state;
	lim.max_train_pulses = 1000;
	st_init(&st);
	safety_set_armed(&st, true);
	r.frequency_hz = 20.0;
	for (i = 1; i <= 41; i++) {
		v = safety_admit(&lim, &st, &r, t);
		assert_int_equal(v.rule, SAFETY_OK);
		safety_commit(&st, &r, t);
		t += period;
	}
	/* pulse 42: 2.1 s > 2.05 s */
	v = safety_admit(&lim, &st, &r, t);
	assert_int_equal(v.rule, SAFETY_TRAIN_DURATION);
	assert_true(fabs(v.value - 42.0 / 20.0) < 1e-9);
	assert_true(v.limit == 2.05);
	/* the same train at 110 % MT: 32 pulses (1.6 s) fit, the 33rd not */
	st_init(&st);
	safety_set_armed(&st, true);
	r = req_make(2, 44.0);
	r.frequency_hz = 20.0;
	for (t = 0, i = 1; i <= 32; i++, t += period) {
		assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
		safety_commit(&st, &r, t);
	}
	assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_TRAIN_DURATION);
	/* just above 110 % MT (44.01 %) is read as 120 %: 1.0 s, 20 pulses */
	st_init(&st);
	safety_set_armed(&st, true);
	r = req_make(3, 44.01);
	r.frequency_hz = 20.0;
	for (t = 0, i = 1; i <= 20; i++, t += period) {
		assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
		safety_commit(&st, &r, t);
	}
	assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_TRAIN_DURATION);
	/*
	 * A train that says 10 Hz but comes at 20 Hz is held to the 20 Hz row:
	 * at 10 Hz and 75 % MT it could last 5 s (50 pulses).
	 */
	st_init(&st);
	safety_set_armed(&st, true);
	r = req_make(4, 30.0);
	r.frequency_hz = 10.0;
	for (t = 0, i = 1; i <= 41; i++, t += period) {
		assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
		safety_commit(&st, &r, t);
	}
	v = safety_admit(&lim, &st, &r, t);
	assert_int_equal(v.rule, SAFETY_TRAIN_DURATION);
	assert_true(v.limit == 2.05);
	/* no motor threshold: no train at all, single pulses still */
	lim.motor_threshold_pct = 0.0;
	st_init(&st);
	safety_set_armed(&st, true);
	r = req_make(5, 30.0);
	r.frequency_hz = 20.0;
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_TRAIN_DURATION);
	assert_true(v.limit == 0.0);
	r.frequency_hz = 0.0;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	/* a rate the table does not list: nothing */
	lim.motor_threshold_pct = 40.0;
	r.frequency_hz = 25.5;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_TRAIN_DURATION);
	r.frequency_hz = NAN;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_TRAIN_DURATION);
}

/* Session, day and ledger counts: just inside, at, just outside. */
static void test_safety_pulse_counts(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;
	int64_t t = 0;
	int i;

	(void)state;
	lim.max_train_pulses = 100;
	lim.min_train_interval_ns = 0;
	lim.max_session_pulses = 5;
	lim.max_daily_pulses = 8;
	/* 4 delivered today before this run, 6 recorded */
	safety_init(&st, 4);
	safety_set_recorded(&st, 6, false);
	safety_set_armed(&st, true);
	for (i = 0; i < 2; i++, t += SEC) {
		assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
		safety_commit(&st, &r, t);
	}
	/* the 7th of the day is not on disk yet */
	v = safety_admit(&lim, &st, &r, t);
	assert_int_equal(v.rule, SAFETY_UNRECORDED);
	assert_true(v.value == 7.0 && v.limit == 6.0);
	safety_set_recorded(&st, 7, false);
	assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
	safety_commit(&st, &r, t);
	t += SEC;
	safety_set_recorded(&st, 100, false);
	/* pulse 4 of the session is the 8th of the day: the day's last */
	assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
	safety_commit(&st, &r, t);
	t += SEC;
	v = safety_admit(&lim, &st, &r, t);
	assert_int_equal(v.rule, SAFETY_DAILY_PULSES);
	assert_true(v.value == 9.0 && v.limit == 8.0);
	/* midnight: the day restarts, the session does not */
	safety_set_recorded(&st, 100, true);
	assert_int_equal(st.day_pulses, 0);
	assert_int_equal(safety_admit(&lim, &st, &r, t).rule, SAFETY_OK);
	safety_commit(&st, &r, t);
	t += SEC;
	v = safety_admit(&lim, &st, &r, t);
	assert_int_equal(v.rule, SAFETY_SESSION_PULSES);
	assert_true(v.value == 6.0 && v.limit == 5.0);
	assert_int_equal(st.session_pulses, 5);
	assert_int_equal(st.day_pulses, 1);
}

/*
 * Issue 16, D4: a day count of 2^64 - 1 (from a ledger) made "the next
 * pulse" number 0, under every cap. Counts saturate: it is refused.
 */
static void test_safety_counts_saturate(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;

	(void)state;
	safety_init(&st, UINT64_MAX);
	safety_set_recorded(&st, UINT64_MAX, false);
	safety_set_armed(&st, true);
	v = safety_admit(&lim, &st, &r, SEC);
	assert_int_equal(v.rule, SAFETY_DAILY_PULSES);
	assert_true(v.value == (double)UINT64_MAX && v.limit == 1000000.0);
	st.session_pulses = UINT64_MAX;
	assert_int_equal(safety_admit(&lim, &st, &r, SEC).rule, SAFETY_SESSION_PULSES);
	/* the ledger's rule too, and a commit does not wrap */
	safety_init(&st, 0);
	safety_set_recorded(&st, 0, false);
	safety_set_armed(&st, true);
	assert_int_equal(safety_admit(&lim, &st, &r, SEC).rule, SAFETY_UNRECORDED);
	st.day_pulses = UINT64_MAX;
	safety_commit(&st, &r, SEC);
	assert_true(st.day_pulses == UINT64_MAX);
}

/*
 * Issue 16, D12: the previous run's last pulse, handed over at start,
 * holds the first train to the gap between trains and the rate.
 */
static void test_safety_prior_pulse(void **state)
{
	struct safety_limits lim = lim_default();
	struct safety_state st;
	struct safety_request r = req_make(1, 30);
	struct safety_verdict v;

	(void)state;
	st_init(&st);
	safety_prior_pulse(&st, -300 * MS);
	safety_set_armed(&st, true);
	/* 0.3 s before the start, 0.5 s minimum: not before 0.2 s */
	v = safety_admit(&lim, &st, &r, 199 * MS);
	assert_int_equal(v.rule, SAFETY_TRAIN_INTERVAL);
	assert_true(fabs(v.value - 0.499) < 1e-9 && v.limit == 0.5);
	assert_int_equal(safety_admit(&lim, &st, &r, 200 * MS).rule, SAFETY_OK);
	/* it does not count in this run's session, nor start a train of this run's */
	assert_int_equal(st.session_pulses, 0);
	safety_commit(&st, &r, 200 * MS);
	assert_int_equal(st.train_pulses, 1);
}

static void test_safety_rule_names(void **state)
{
	unsigned r;

	(void)state;
	assert_string_equal(safety_rule_name(SAFETY_OK), "ok");
	assert_string_equal(safety_rule_name(SAFETY_MAX_FREQUENCY), "max_frequency");
	assert_string_equal(safety_rule_name(SAFETY_TRAIN_INTERVAL), "min_train_interval");
	assert_string_equal(safety_rule_name(999), "unknown");
	for (r = 1; r < SAFETY_RULE_COUNT; r++) {
		assert_string_not_equal(safety_rule_name(r), "unknown");
	}
}

/*
 * Independent reference for the train table: the smallest cell at or
 * below the grid lines at or above the rate and the level, found by
 * scanning the table as written (not the gate's precomputed hull).
 */
static double ref_table(const struct train_table *t, double rate, double level)
{
	unsigned i, j, ri = t->n_rates, lj = t->n_levels;
	double m = INFINITY;

	if (!(rate >= 0) || !(level >= 0)) {
		return 0.0;
	}
	for (i = t->n_rates; i-- > 0;) {
		if (rate <= t->rate_hz[i] * (1 + 1e-6)) {
			ri = i;
		}
	}
	for (j = t->n_levels; j-- > 0;) {
		if (level <= t->level_pct[j] * (1 + 1e-6)) {
			lj = j;
		}
	}
	if (ri == t->n_rates || lj == t->n_levels) {
		return 0.0;
	}
	for (i = 0; i <= ri; i++) {
		for (j = 0; j <= lj; j++) {
			m = fmin(m, t->max_s[i][j]);
		}
	}
	return m;
}

/* Independent reference: the rules of docs/safety.md, written out plainly. */
static enum safety_rule ref_admit(const struct safety_limits *lim, const struct safety_state *st,
				  const struct safety_request *r, int64_t now)
{
	bool same = st->any_pulse && st->train_id == r->train_id;
	uint32_t n = same ? st->train_pulses + 1 : 1;

	if (r->have_status && r->coil.estop) {
		return SAFETY_ESTOP;
	}
	if (!st->armed) {
		return SAFETY_DISARMED;
	}
	if (r->acq_age_ns < 0 || r->acq_age_ns > lim->acq_timeout_ns) {
		return SAFETY_ACQ_STALE;
	}
	if (r->have_status && r->coil.fault) {
		return SAFETY_COIL_FAULT;
	}
	if (r->have_status && !r->coil.ready) {
		return SAFETY_NOT_READY;
	}
	if (r->have_status && !isnan(r->coil.temperature_c) &&
	    !(r->coil.temperature_c < lim->max_coil_temp_c)) {
		return SAFETY_COIL_TEMP;
	}
	if (!(r->intensity_pct >= 0 && r->intensity_pct <= lim->max_intensity_pct)) {
		return SAFETY_INTENSITY;
	}
	if (st->any_pulse) {
		int64_t gap = now - st->last_pulse_ns;
		long double min_gap = 1e9L / lim->max_frequency_hz;

		if (gap < 0 || (long double)gap + 1 < min_gap) {
			return SAFETY_MAX_FREQUENCY;
		}
	}
	if (n > lim->max_train_pulses) {
		return SAFETY_TRAIN_PULSES;
	}
	if (r->frequency_hz != 0.0) {
		double rate = r->frequency_hz;
		double level = lim->motor_threshold_pct > 0
				       ? r->intensity_pct * 100.0 / lim->motor_threshold_pct
				       : INFINITY;

		if (n >= 2) {
			double span = (double)(now - st->train_first_ns);
			double measured = span > 0 ? (n - 1) * 1e9 / span : INFINITY;

			rate = measured > rate ? measured : rate;
		}
		if (!((double)n <= ref_table(&lim->table, rate, level) * rate * (1 + 1e-6))) {
			return SAFETY_TRAIN_DURATION;
		}
	}
	if (st->any_pulse && !same && now - st->last_pulse_ns < lim->min_train_interval_ns) {
		return SAFETY_TRAIN_INTERVAL;
	}
	if (st->session_pulses >= lim->max_session_pulses) {
		return SAFETY_SESSION_PULSES;
	}
	if (st->day_pulses >= lim->max_daily_pulses) {
		return SAFETY_DAILY_PULSES;
	}
	if (st->day_pulses >= st->day_recorded) {
		return SAFETY_UNRECORDED;
	}
	return SAFETY_OK;
}

/* Every combination of a grid of states, requests and times. */
static void test_safety_exhaustive_grid(void **state)
{
	static const double temps[] = { NAN, 20.0, 39.9, 40.0, 41.0 };
	static const double intens[] = { 0.0, 30.0, 60.0, 60.5, 100.0 };
	static const int64_t gaps[] = { -1, 0, 39 * MS, 40 * MS - 2, 40 * MS - 1, 40 * MS,
					100 * MS, 499 * MS, 500 * MS, 5 * SEC };
	static const uint32_t counts[] = { 0, 1, 4, 5, 6 };
	static const int64_t ages[] = { 0, 250 * MS, 250 * MS + 1, INT64_MAX };
	struct safety_limits lim = lim_default();
	unsigned armed, any, same, hs, ready, fault, ti, ii, gi, ci, ai, es;
	unsigned long checked = 0;

	(void)state;
	for (armed = 0; armed < 2; armed++)
	for (any = 0; any < 2; any++)
	for (same = 0; same < 2; same++)
	for (hs = 0; hs < 2; hs++)
	for (ready = 0; ready < 2; ready++)
	for (fault = 0; fault < 2; fault++)
	for (ti = 0; ti < sizeof(temps) / sizeof(temps[0]); ti++)
	for (ii = 0; ii < sizeof(intens) / sizeof(intens[0]); ii++)
	for (gi = 0; gi < sizeof(gaps) / sizeof(gaps[0]); gi++)
	for (ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++)
	for (ai = 0; ai < sizeof(ages) / sizeof(ages[0]); ai++)
	for (es = 0; es < 2; es++) {
		struct safety_state st = {
			.armed = armed, .any_pulse = any, .last_pulse_ns = 10 * SEC,
			.train_id = 3, .train_pulses = counts[ci],
			.day_recorded = 1000,
		};
		struct safety_request r = req_make(same ? 3 : 4, intens[ii]);
		struct safety_verdict v;

		r.have_status = hs;
		r.coil.ready = ready;
		r.coil.fault = fault;
		r.coil.temperature_c = temps[ti];
		r.acq_age_ns = ages[ai];
		r.coil.estop = es;
		v = safety_admit(&lim, &st, &r, 10 * SEC + gaps[gi]);
		if (v.rule != ref_admit(&lim, &st, &r, 10 * SEC + gaps[gi])) {
			fail_msg("grid: armed %u any %u same %u status %u ready %u fault %u temp %g "
				 "intensity %g gap %lld count %u age %lld: gate says %s",
				 armed, any, same, hs, ready, fault, temps[ti], intens[ii],
				 (long long)gaps[gi], counts[ci], (long long)ages[ai],
				 safety_rule_name(v.rule));
		}
		checked++;
	}
	assert_int_equal(checked, 2 * 2 * 2 * 2 * 2 * 2 * 5 * 5 * 10 * 5 * 4 * 2);
}

static uint64_t prng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t prng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	prng_state ^= prng_state >> 12;
	prng_state ^= prng_state << 25;
	prng_state ^= prng_state >> 27;
	return prng_state * 0x2545F4914F6CDD1DULL;
}

/*
 * Random request streams: the admitted pulses, checked afterwards against
 * the limits directly (not against the gate's own state).
 */
static void test_safety_property_random_streams(void **state)
{
	struct safety_limits lim = lim_default();
	int stream;
	unsigned long admitted_total = 0, refused_total = 0;

	(void)state;
	for (stream = 0; stream < 200; stream++) {
		struct safety_state st;
		int64_t t = 0, last = INT64_MIN, train_last_pulse = INT64_MIN;
		uint32_t train = 1, last_train = 0, in_train = 0;
		bool armed = false;
		int i;

		lim.max_frequency_hz = 1.0 + (double)(prng() % 100);
		lim.max_train_pulses = 1 + (uint32_t)(prng() % 20);
		lim.min_train_interval_ns = (int64_t)(prng() % 2000) * MS;
		st_init(&st);
		for (i = 0; i < 2000; i++) {
			struct safety_request r;
			struct safety_verdict v;
			uint64_t x = prng();

			/* time mostly forward, by 0..100 ms, occasionally backwards */
			t += (x % 50 == 0) ? -(int64_t)(prng() % (20 * MS)) : (int64_t)(prng() % (100 * MS));
			if (x % 97 == 0) {
				armed = !armed;
				safety_set_armed(&st, armed);
			}
			if (x % 7 == 0) {
				train++;
			}
			r = req_make(train, (double)(prng() % 800) / 10.0);
			r.have_status = (x & 1) != 0;
			r.coil.ready = (prng() % 20) != 0;
			r.coil.fault = (prng() % 50) == 0;
			r.coil.temperature_c = 30.0 + (double)(prng() % 150) / 10.0;
			r.acq_age_ns = (int64_t)(prng() % (300 * MS));
			v = safety_admit(&lim, &st, &r, t);
			if (v.rule != SAFETY_OK) {
				refused_total++;
				continue;
			}
			safety_commit(&st, &r, t);
			admitted_total++;
			/* The invariants, from the admitted pulse alone: */
			assert_true(armed);
			assert_true(r.acq_age_ns >= 0 && r.acq_age_ns <= lim.acq_timeout_ns);
			assert_true(r.intensity_pct <= lim.max_intensity_pct);
			if (r.have_status) {
				assert_true(r.coil.ready && !r.coil.fault);
				assert_true(r.coil.temperature_c < lim.max_coil_temp_c);
			}
			if (last != INT64_MIN) {
				assert_true((long double)(t - last) + 1 >= 1e9L / lim.max_frequency_hz);
			}
			if (r.train_id == last_train) {
				in_train++;
			} else {
				if (train_last_pulse != INT64_MIN) {
					assert_true(t - train_last_pulse >= lim.min_train_interval_ns);
				}
				in_train = 1;
				last_train = r.train_id;
			}
			assert_true(in_train <= lim.max_train_pulses);
			last = t;
			train_last_pulse = t;
		}
	}
	/* The streams must exercise both outcomes, or the test proves nothing. */
	assert_true(admitted_total > 1000);
	assert_true(refused_total > 1000);
}

/* prng() as a double in [0, 1), a range, a chance. */
static double prng_unit(void)
{
	return (double)(prng() >> 11) / 9007199254740992.0;
}

static double prng_range(double lo, double hi)
{
	return lo + (hi - lo) * prng_unit();
}

static bool prng_chance(double p)
{
	return prng_unit() < p;
}

/* A random valid table: ascending grids, any durations (non-monotone too). */
static void prop_table(struct train_table *t)
{
	unsigned i, j;

	memset(t, 0, sizeof(*t));
	t->n_rates = 1 + (unsigned)(prng() % 6);
	t->n_levels = 1 + (unsigned)(prng() % 10);
	for (i = 0; i < t->n_rates; i++) {
		t->rate_hz[i] = (i ? t->rate_hz[i - 1] : 0.0) + prng_range(0.5, 20.0);
		for (j = 0; j < t->n_levels; j++) {
			t->max_s[i][j] = prng_chance(0.05) ? 0.0 : prng_range(0.02, 5.0);
		}
	}
	for (j = 0; j < t->n_levels; j++) {
		t->level_pct[j] = (j ? t->level_pct[j - 1] : 40.0) + prng_range(1.0, 30.0);
	}
	/* what train_table_load does after parsing */
	{
		char path[] = "/tmp/rpmsd-table-XXXXXX";
		char err[256];
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");

		assert_non_null(f);
		fprintf(f, "hz");
		for (j = 0; j < t->n_levels; j++) {
			fprintf(f, ",%.17g", t->level_pct[j]);
		}
		fprintf(f, "\n");
		for (i = 0; i < t->n_rates; i++) {
			fprintf(f, "%.17g", t->rate_hz[i]);
			for (j = 0; j < t->n_levels; j++) {
				fprintf(f, ",%.17g", t->max_s[i][j]);
			}
			fprintf(f, "\n");
		}
		fclose(f);
		assert_int_equal(train_table_load(path, t, err, sizeof(err)), 0);
		unlink(path);
	}
}

/* Today's count so far and the ledger's reservation, gate and shadow alike. */
static void prop_day(const struct safety_limits *lim, struct safety_state *st,
		     struct safety_state *shadow)
{
	uint64_t day = prng_chance(0.7) ? 0 : prng() % (lim->max_daily_pulses + 1);
	uint64_t rec = day + prng() % 300;

	safety_init(st, day);
	safety_set_recorded(st, rec, false);
	*shadow = *st;
}

/* Limits in the ranges the config table allows. */
static void prop_limits(struct safety_limits *lim)
{
	lim->max_frequency_hz = prng_range(0.5, 100.0);
	lim->max_train_pulses = 1 + (uint32_t)(prng() % 50);
	lim->min_train_interval_ns = (int64_t)prng_range(0.0, 3.0 * SEC);
	lim->max_intensity_pct = prng_range(1.0, 100.0);
	lim->max_coil_temp_c = prng_range(20.0, 80.0);
	lim->acq_timeout_ns = (int64_t)prng_range(0.01 * SEC, 1.0 * SEC);
	/* levels mostly inside the table: thresholds near the intensities */
	lim->motor_threshold_pct = prng_chance(0.02) ? 0.0
						    : prng_range(0.4 * lim->max_intensity_pct, 100.0);
	if (prng_chance(0.5)) {
		train_table_default(&lim->table);
	} else {
		prop_table(&lim->table);
	}
	lim->max_session_pulses = 1 + prng() % 800;
	lim->max_daily_pulses = lim->max_session_pulses + prng() % 800;
}

static void prop_request(const struct safety_limits *lim, uint32_t *train,
			 struct safety_request *req)
{
	memset(req, 0, sizeof(*req));
	/* mostly the same train, sometimes a new one, now and then an old one */
	if (prng_chance(0.08)) {
		(*train)++;
	} else if (prng_chance(0.02) && *train > 1) {
		*train -= 1;
	}
	req->train_id = *train;
	/* a train's nominal rate: mostly steady, at times single pulses or nonsense */
	req->frequency_hz = prng_chance(0.3) ? 0.0 : lim->max_frequency_hz * prng_range(0.2, 1.0);
	if (prng_chance(0.002)) {
		req->frequency_hz = prng_chance(0.5) ? NAN : -1.0;
	}
	req->intensity_pct = prng_chance(0.9) ? prng_range(0.0, lim->max_intensity_pct)
					      : prng_range(-5.0, 120.0);
	if (prng_chance(0.005)) {
		req->intensity_pct = NAN;
	}
	req->acq_age_ns = prng_chance(0.95) ? (int64_t)prng_range(0.0, (double)lim->acq_timeout_ns)
					   : (int64_t)prng_range(0.0, 3.0 * (double)lim->acq_timeout_ns);
	if (prng_chance(0.01)) {
		req->acq_age_ns = INT64_MAX;
	}
	req->have_status = prng_chance(0.9);
	req->coil.estop = prng_chance(0.01);
	req->coil.fault = prng_chance(0.02);
	req->coil.ready = !prng_chance(0.03);
	req->coil.temperature_c = prng_range(lim->max_coil_temp_c - 10.0, lim->max_coil_temp_c + 0.5);
	if (prng_chance(0.05)) {
		req->coil.temperature_c = NAN;
	} else if (prng_chance(0.005)) {
		req->coil.temperature_c = INFINITY;
	}
}

/* A time step: often around the rate limit, sometimes long pauses. */
static int64_t prop_step(const struct safety_limits *lim)
{
	double period = 1e9 / lim->max_frequency_hz;

	switch (prng() % 5) {
	case 0:
		return (int64_t)prng_range(0.0, period);
	case 1:
		return (int64_t)floor(period) + (int64_t)(prng() % 3) - 1;
	case 2:
		return (int64_t)prng_range(period, 3.0 * period);
	case 3:
		return (int64_t)prng_range(0.0, (double)lim->min_train_interval_ns * 1.5);
	default:
		return (int64_t)prng_range(0.0, 2.0 * SEC);
	}
}

/*
 * The wide property test: 2,000 random valid limit sets x 1,000 random
 * requests (trains started, resumed and interleaved, steps around the rate
 * limit, arming toggled, faults, not-ready, NaN and infinite temperatures,
 * intensities around the cap, stale EMG) = 2 x 10^6 decisions. The test
 * keeps its own timeline of the admitted pulses: every admitted pulse is
 * checked against it, and every verdict must be ref_admit()'s on a state
 * built from that timeline, not from the gate's.
 */
static void test_safety_property_random_limits(void **state)
{
	uint64_t admitted = 0, refused_by[SAFETY_RULE_COUNT] = { 0 };
	int c, i;

	(void)state;
	prng_state = 20261127;
	for (c = 0; c < 2000; c++) {
		struct safety_limits lim;
		struct safety_state st, shadow;
		uint32_t train = 1;
		int64_t now = (int64_t)prng_range(0.0, 10.0 * SEC);

		prop_limits(&lim);
		prop_day(&lim, &st, &shadow);
		for (i = 0; i < 1000; i++) {
			struct safety_request req;
			struct safety_verdict v;
			enum safety_rule want;

			if (prng_chance(0.02) || i == 0) {
				shadow.armed = prng_chance(0.85);
				safety_set_armed(&st, shadow.armed);
			}
			if (prng_chance(0.01)) {
				/* the main thread tops up the ledger, or starts a new day */
				bool new_day = prng_chance(0.05);
				uint64_t base = new_day ? 0 : shadow.day_pulses;

				shadow.day_recorded = base + prng() % 200;
				if (new_day) {
					shadow.day_pulses = 0;
				}
				safety_set_recorded(&st, shadow.day_recorded, new_day);
			}
			now += prop_step(&lim);
			prop_request(&lim, &train, &req);
			v = safety_admit(&lim, &st, &req, now);
			want = ref_admit(&lim, &shadow, &req, now);
			if (v.rule != want) {
				fail_msg("limits %d request %d: gate said %s, expected %s", c, i,
					 safety_rule_name(v.rule), safety_rule_name(want));
			}
			if (v.rule != SAFETY_OK) {
				refused_by[v.rule]++;
				continue;
			}
			/* Fired: the timeline against every limit directly. */
			assert_true(shadow.armed);
			assert_true(req.intensity_pct <= lim.max_intensity_pct);
			if (shadow.any_pulse) {
				assert_true((double)(now - shadow.last_pulse_ns) >=
					    1e9 / lim.max_frequency_hz - 1.0);
				if (shadow.train_id != req.train_id) {
					assert_true(now - shadow.last_pulse_ns >= lim.min_train_interval_ns);
				}
			}
			if (!(shadow.any_pulse && shadow.train_id == req.train_id)) {
				shadow.train_first_ns = now;
				shadow.train_pulses = 0;
			}
			shadow.train_pulses++;
			assert_true(shadow.train_pulses <= lim.max_train_pulses);
			/* the train so far fits the table at its real and nominal rate */
			if (req.frequency_hz != 0.0) {
				double rate = req.frequency_hz;

				if (shadow.train_pulses > 1) {
					rate = fmax(rate, (shadow.train_pulses - 1) * 1e9 /
							  (double)(now - shadow.train_first_ns));
				}
				assert_true(shadow.train_pulses <=
					    ref_table(&lim.table, rate,
						      req.intensity_pct * 100.0 / lim.motor_threshold_pct) *
						    rate * (1 + 1e-6));
			}
			assert_false(req.have_status && req.coil.estop);
			shadow.session_pulses++;
			shadow.day_pulses++;
			assert_true(shadow.session_pulses <= lim.max_session_pulses);
			assert_true(shadow.day_pulses <= lim.max_daily_pulses);
			assert_true(shadow.day_pulses <= shadow.day_recorded);
			shadow.any_pulse = true;
			shadow.last_pulse_ns = now;
			shadow.train_id = req.train_id;
			admitted++;
			safety_commit(&st, &req, now);
		}
	}
	print_message("%llu admitted of 2000000 requests;", (unsigned long long)admitted);
	for (i = 1; i < SAFETY_RULE_COUNT; i++) {
		print_message(" %s %llu", safety_rule_name((unsigned)i),
			      (unsigned long long)refused_by[i]);
		/*
		 * every rule was exercised, or the test proves little; the
		 * device's rules (no device in these limits) have tests of
		 * their own below
		 */
		if (!test_device_rule((unsigned)i)) {
			assert_true(refused_by[i] > 100);
		}
	}
	print_message("\n");
	assert_true(admitted > 100000);
}

/*
 * A device envelope of the tests' own: a standard 240 V Rapid2's
 * "25 Hz only up to 61 %" as a step, 500 ms between trains, single
 * pulses at 1 Hz, and an energy table (invented for the test, not a
 * Magstim figure) with 100 J at 60 % and 150 J at 80 %, 1050 W sustained.
 */
static const struct rpmsd_coil_rate_cap dev_caps[] = { { 61.0, 25.0 }, { 100.0, 10.0 } };
static const struct rpmsd_coil_energy_point dev_energy[] = {
	{ 50.0, 80.0 }, { 60.0, 100.0 }, { 80.0, 150.0 }, { 100.0, 220.0 },
};

static struct safety_limits lim_device(bool caps, bool energy)
{
	struct safety_limits lim = lim_default();
	const struct rpmsd_coil_envelope env = {
		.struct_size = sizeof(env),
		.model = "test rapid2",
		.max_output_pct = 100.0,
		.rate_caps = caps ? dev_caps : NULL,
		.n_rate_caps = caps ? 2 : 0,
		.min_train_gap_ms = 500.0,
		.single_pulse_max_hz = 1.0,
		.energy = energy ? dev_energy : NULL,
		.n_energy = energy ? 4 : 0,
		.sustained_power_w = 1050.0,
	};
	char err[256];

	/* the device's rules alone: rpmsd's own limits out of the way */
	lim.max_frequency_hz = 1000.0;
	lim.max_train_pulses = 100000;
	lim.min_train_interval_ns = 0;
	lim.max_intensity_pct = 100.0;
	lim.motor_threshold_pct = 100.0;
	assert_int_equal(safety_device_set(&lim.dev, &env, err, sizeof(err)), 0);
	return lim;
}

/* A fresh armed gate; EMG fresh, nothing else reported. */
static void st_armed(struct safety_state *st)
{
	st_init(st);
	safety_set_armed(st, true);
}

/* Deliver train @id of @n pulses at @f Hz from @t0; @return the first refusal or OK. */
static struct safety_verdict dev_train(const struct safety_limits *lim, struct safety_state *st,
				       uint32_t id, unsigned n, double f, double pct, int64_t t0)
{
	struct safety_request r = req_make(id, pct);
	struct safety_verdict v = { .rule = SAFETY_OK };
	unsigned k;

	r.frequency_hz = f;
	for (k = 0; k < n; k++) {
		int64_t t = t0 + (f > 0 ? llround(k * 1e9 / f) : 0);

		v = safety_admit_device(lim, st, &r, t);
		if (v.rule != SAFETY_OK) {
			return v;
		}
		safety_commit(st, &r, t);
	}
	return v;
}

static void test_safety_device_rate_cap(void **state)
{
	struct safety_limits lim = lim_device(true, false);
	struct safety_state st;
	struct safety_verdict v;
	struct safety_request r;

	(void)state;
	assert_true(safety_device_rate_cap(&lim.dev, 61.0) == 25.0);
	assert_true(safety_device_rate_cap(&lim.dev, 62.0) == 10.0);
	assert_true(safety_device_rate_cap(&lim.dev, 100.5) == 0.0);
	st_armed(&st);
	assert_int_equal(dev_train(&lim, &st, 1, 25, 25.0, 61.0, 0).rule, SAFETY_OK);
	st_armed(&st);
	v = dev_train(&lim, &st, 1, 25, 25.0, 62.0, 0);
	assert_int_equal(v.rule, SAFETY_DEVICE_RATE);
	assert_true(v.value == 25.0 && v.limit == 10.0);
	/* declared at 10 Hz but coming at 25 Hz: held to the rate it comes at */
	st_armed(&st);
	r = req_make(1, 70.0);
	r.frequency_hz = 10.0;
	assert_int_equal(safety_admit_device(&lim, &st, &r, 0).rule, SAFETY_OK);
	safety_commit(&st, &r, 0);
	v = safety_admit_device(&lim, &st, &r, 40 * MS);
	assert_int_equal(v.rule, SAFETY_DEVICE_RATE);
	assert_true(fabs(v.value - 25.0) < 1e-9 && v.limit == 10.0);
	assert_int_equal(safety_admit_device(&lim, &st, &r, 100 * MS).rule, SAFETY_OK);
	/* above the device's maximum output */
	r = req_make(2, 100.5);
	lim.max_intensity_pct = 110.0;
	v = safety_admit(&lim, &st, &r, 10 * SEC);
	assert_int_equal(v.rule, SAFETY_DEVICE_MAX_OUTPUT);
	assert_string_equal(safety_rule_name(SAFETY_DEVICE_RATE), "device_rate_cap");
}

static void test_safety_device_gap_and_single(void **state)
{
	struct safety_limits lim = lim_device(true, false);
	struct safety_state st;
	struct safety_verdict v;
	struct safety_request r;

	(void)state;
	st_armed(&st);
	assert_int_equal(dev_train(&lim, &st, 1, 10, 20.0, 50.0, 0).rule, SAFETY_OK);
	/* last pulse at 450 ms: the next train 400 ms later is too soon */
	v = dev_train(&lim, &st, 2, 10, 20.0, 50.0, 850 * MS);
	assert_int_equal(v.rule, SAFETY_DEVICE_TRAIN_GAP);
	assert_true(fabs(v.value - 0.4) < 1e-9 && fabs(v.limit - 0.5) < 1e-9);
	assert_int_equal(dev_train(&lim, &st, 2, 10, 20.0, 50.0, 950 * MS).rule, SAFETY_OK);
	/* single pulses: 1 Hz at most */
	st_armed(&st);
	r = req_make(1, 50.0);
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	safety_commit(&st, &r, 0);
	r = req_make(2, 50.0);
	v = safety_admit(&lim, &st, &r, 900 * MS);
	assert_int_equal(v.rule, SAFETY_DEVICE_SINGLE_RATE);
	assert_true(fabs(v.value - 0.9) < 1e-9 && fabs(v.limit - 1.0) < 1e-9);
	assert_int_equal(safety_admit(&lim, &st, &r, 1000 * MS).rule, SAFETY_OK);
}

/*
 * MagPy's model with the test table: 25 Hz, 1 s on / 2 s off, for three
 * minutes, passes at 60 % (100 J: wait 1.38 s, 50.1 kJ a minute of the
 * 63 kJ) and fails at 80 % (150 J: a wait of 2.57 s after each train).
 */
static void test_safety_device_energy(void **state)
{
	struct safety_limits lim = lim_device(false, true);
	struct safety_state st;
	struct safety_verdict v = { .rule = SAFETY_OK };
	uint32_t c;

	(void)state;
	assert_true(safety_device_joules(&lim.dev, 60.0) == 100.0);
	assert_true(safety_device_joules(&lim.dev, 70.0) == 125.0);
	assert_true(isinf(safety_device_joules(&lim.dev, 100.5)));
	st_armed(&st);
	for (c = 0; c < 60 && v.rule == SAFETY_OK; c++) {
		v = dev_train(&lim, &st, c + 1, 25, 25.0, 60.0, (int64_t)c * 3 * SEC);
	}
	assert_int_equal(v.rule, SAFETY_OK);
	st_armed(&st);
	v = dev_train(&lim, &st, 1, 25, 25.0, 80.0, 0);
	assert_int_equal(v.rule, SAFETY_OK);
	v = dev_train(&lim, &st, 2, 25, 25.0, 80.0, 3 * SEC);
	assert_int_equal(v.rule, SAFETY_DEVICE_ENERGY_WAIT);
	/* 25 x (25 x 150 - 1050) / (1050 x 25) s; the gap is 3 s - 0.96 s */
	assert_true(fabs(v.limit - 25.0 * (25.0 * 150.0 - 1050.0) / (1050.0 * 25.0)) < 1e-9);
	assert_true(fabs(v.value - 2.04) < 1e-6);
	/* trains far enough apart for the wait, but too many in a minute */
	st_armed(&st);
	v.rule = SAFETY_OK;
	for (c = 0; c < 60 && v.rule == SAFETY_OK; c++) {
		v = dev_train(&lim, &st, c + 1, 25, 25.0, 80.0, (int64_t)c * 3640 * MS);
	}
	assert_int_equal(v.rule, SAFETY_DEVICE_ENERGY);
	assert_true(v.limit == 63000.0 && v.value > 63000.0);
	/* the 17th train is the one the minute cannot hold: 16 x 3.75 kJ fit */
	assert_int_equal(c, 17);
}

static void test_safety_device_intensity(void **state)
{
	struct safety_limits lim = lim_device(false, false);
	struct safety_state st;
	struct safety_verdict v;
	struct safety_request r = req_make(1, 40.0);
	char text[256];

	(void)state;
	st_armed(&st);
	/* a device that cannot confirm: the rule does not apply */
	r.confirmed_pct = NAN;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	lim.dev.confirms = true;
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_DEVICE_INTENSITY);
	safety_verdict_text(&v, &lim.dev, text, sizeof(text));
	assert_string_equal(text, "requested 40 %, the device has not confirmed an intensity");
	r.confirmed_pct = 35.0;
	v = safety_admit(&lim, &st, &r, 0);
	assert_int_equal(v.rule, SAFETY_DEVICE_INTENSITY);
	assert_true(v.value == 40.0 && v.limit == 35.0);
	safety_verdict_text(&v, &lim.dev, text, sizeof(text));
	assert_string_equal(text, "requested 40 %, the device confirmed 35 %");
	assert_string_equal(safety_rule_name(v.rule), "device_intensity");
	/* half the devices' 1 % step either way */
	r.confirmed_pct = 40.0;
	r.intensity_pct = 40.5;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	r.intensity_pct = 39.5;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_OK);
	r.intensity_pct = 40.6;
	assert_int_equal(safety_admit(&lim, &st, &r, 0).rule, SAFETY_DEVICE_INTENSITY);
}

/* A bad envelope from a plugin is refused with what is wrong, never used. */
static void test_safety_device_set_checks(void **state)
{
	static const struct rpmsd_coil_rate_cap unsorted[] = { { 61.0, 25.0 }, { 50.0, 30.0 } };
	struct rpmsd_coil_envelope env = {
		.struct_size = sizeof(env), .model = "x", .rate_caps = unsorted, .n_rate_caps = 2,
	};
	struct safety_device dev;
	char err[256];

	(void)state;
	assert_int_equal(safety_device_set(&dev, &env, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rate cap 1"));
	assert_false(dev.present);
	env.n_rate_caps = 1;
	env.energy = dev_energy;
	env.n_energy = 4;
	assert_int_equal(safety_device_set(&dev, &env, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "sustained_power_w"));
	env.sustained_power_w = 1050.0;
	assert_int_equal(safety_device_set(&dev, &env, err, sizeof(err)), 0);
	assert_true(dev.present && dev.max_output_pct == 100.0);
	assert_int_equal(safety_device_set(&dev, NULL, err, sizeof(err)), 0);
	assert_false(dev.present);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_safety_starts_disarmed),
		cmocka_unit_test(test_safety_intensity),
		cmocka_unit_test(test_safety_coil_status),
		cmocka_unit_test(test_safety_frequency_and_train),
		cmocka_unit_test(test_safety_acquisition_stale),
		cmocka_unit_test(test_safety_estop),
		cmocka_unit_test(test_safety_train_duration),
		cmocka_unit_test(test_safety_pulse_counts),
		cmocka_unit_test(test_safety_counts_saturate),
		cmocka_unit_test(test_safety_prior_pulse),
		cmocka_unit_test(test_safety_rule_names),
		cmocka_unit_test(test_safety_exhaustive_grid),
		cmocka_unit_test(test_safety_property_random_streams),
		cmocka_unit_test(test_safety_property_random_limits),
		cmocka_unit_test(test_safety_device_rate_cap),
		cmocka_unit_test(test_safety_device_gap_and_single),
		cmocka_unit_test(test_safety_device_energy),
		cmocka_unit_test(test_safety_device_intensity),
		cmocka_unit_test(test_safety_device_set_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
