/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "policy.h"
#include "safety.h"
#include "train_table.h"

#define MS 1000000LL

static void test_policy_train_and_refractory(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_TRAIN;
	cfg.stim.train_pulses = 5;
	cfg.stim.train_frequency_hz = 20.0;
	cfg.stim.intensity_pct = 35.0;
	cfg.stim.pulse_width_us = 200;
	cfg.stim.refractory_ms = 300.0;
	assert_int_equal(policy_create(&cfg, &p), 0);

	assert_int_equal(policy_on_onset(p, 1000 * MS, 1000, 2, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 1);
	assert_int_equal(r.pulses, 5);
	assert_true(r.frequency_hz == 20.0);
	assert_true(r.intensity_pct == 35.0);
	assert_int_equal(r.width_us, 200);
	assert_int_equal(r.start_ns, 1000 * MS);
	assert_int_equal(r.trigger_sample, 1000);
	assert_int_equal(r.channel, 2);
	/* busy until 1000 + 200 (train span) + 300 (refractory) ms */
	assert_int_equal(policy_on_onset(p, 1499 * MS, 1499, 0, &r), EVENT_ACTION_REFRACTORY);
	assert_int_equal(policy_on_onset(p, 1500 * MS, 1500, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 2);
	/* a request that could not be posted does not start a refractory time */
	policy_cancel_last(p);
	assert_int_equal(policy_on_onset(p, 1501 * MS, 1501, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 3);
	policy_destroy(p);
	policy_destroy(NULL);
}

static void test_policy_single(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_SINGLE;
	cfg.stim.refractory_ms = 0.0;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.pulses, 1);
	/* refractory 0 and no train span: the very next onset may ask again */
	assert_int_equal(policy_on_onset(p, 0, 1, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(stim_request_span_ns(&r), 0);
	assert_int_equal(r.cycles, 1);
	policy_destroy(p);
}

/* 25 Hz, 1 s on / 2 s off, 3 cycles: the clinical rPMS pattern. */
static void test_policy_onoff(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_ONOFF;
	cfg.stim.train_frequency_hz = 25.0;
	cfg.stim.on_ms = 1000.0;
	cfg.stim.off_ms = 2000.0;
	cfg.stim.cycles = 3;
	cfg.stim.refractory_ms = 0.0;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.pulses, 25);
	assert_int_equal(r.burst_pulses, 25);
	assert_int_equal(r.burst_period_ns, 0);
	assert_int_equal(r.cycles, 3);
	assert_int_equal(r.cycle_period_ns, 3000 * MS);
	assert_int_equal(stim_request_offset_ns(&r, 0), 0);
	assert_int_equal(stim_request_offset_ns(&r, 24), 960 * MS);
	/* off_ms follows the on-period (25 / 25 Hz = 1 s): last pulse to next first 2.04 s */
	assert_int_equal(r.cycle_period_ns - stim_request_offset_ns(&r, 24), 2040 * MS);
	/* two whole cycles, then the third train's 24 periods */
	assert_int_equal(stim_request_span_ns(&r), 6960 * MS);
	/* each train is its own train for the gate: ids 1, 2, 3 */
	assert_int_equal(r.train_id, 1);
	assert_int_equal(policy_on_onset(p, 6959 * MS, 1, 0, &r), EVENT_ACTION_REFRACTORY);
	assert_int_equal(policy_on_onset(p, 6960 * MS, 2, 0, &r), EVENT_ACTION_REQUESTED);
	assert_int_equal(r.train_id, 4);
	policy_destroy(p);
}

/* Theta burst: 3 pulses at 50 Hz every 200 ms, 10 bursts per train. */
static void test_policy_theta(void **state)
{
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.protocol = CONFIG_PROTOCOL_THETA;
	cfg.stim.off_ms = 8000.0;
	cfg.stim.cycles = 2;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_REQUESTED);
	assert_false(r.open_loop);
	assert_int_equal(r.pulses, 30);
	assert_int_equal(r.burst_pulses, 3);
	assert_true(r.frequency_hz == 50.0);
	assert_int_equal(r.burst_period_ns, 200 * MS);
	/* a 2 s train every 10 s (intermittent theta burst) */
	assert_int_equal(r.cycle_period_ns, 10000 * MS);
	assert_int_equal(stim_request_offset_ns(&r, 1), 20 * MS);
	assert_int_equal(stim_request_offset_ns(&r, 2), 40 * MS);
	assert_int_equal(stim_request_offset_ns(&r, 3), 200 * MS);
	assert_int_equal(stim_request_offset_ns(&r, 29), 1840 * MS);
	policy_destroy(p);
}

/*
 * Open loop: runs while armed, to the count, and ignores the EMG; one
 * train per request, each posted up to the lead ahead of its start on the
 * protocol's schedule (start + c x (on-period + off_ms)), so that a
 * protocol changed meanwhile applies from the next train (issue 16 D2).
 */
static void test_policy_open_loop(void **state)
{
	const int64_t lead = 16 * MS;
	struct rpmsd_config cfg;
	struct policy_protocol pp;
	struct policy *p;
	struct stim_request r, again;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.mode = CONFIG_MODE_OPEN_LOOP;
	cfg.stim.protocol = CONFIG_PROTOCOL_ONOFF;
	cfg.stim.train_frequency_hz = 20.0;
	cfg.stim.on_ms = 500.0;
	cfg.stim.off_ms = 1000.0;
	cfg.stim.open_loop_pulses = 25;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_int_equal(policy_on_onset(p, 0, 0, 0, &r), EVENT_ACTION_NONE);
	/* not armed: nothing */
	assert_false(policy_tick(p, 0, lead, false, true, 0, &r));
	/* the first train at the arm: 10 pulses (a train every 1.5 s) */
	assert_true(policy_tick(p, 5 * MS, lead, true, true, 0, &r));
	assert_int_equal(r.pulses, 10);
	assert_int_equal(r.cycles, 1);
	assert_int_equal(r.pulse_budget, 10);
	assert_int_equal(r.due, 25);
	assert_int_equal(r.start_ns, 5 * MS);
	assert_int_equal(r.gap_ns, 0);
	assert_int_equal(r.train_id, 1);
	/* what it does not deliver is asked for again: counted once (stim.c) */
	assert_true(r.open_loop);
	/* running: nothing more */
	assert_false(policy_tick(p, 100 * MS, lead, true, false, 3, &r));
	/* delivered whole: the next at 5 + 1500 ms, posted no more than the lead ahead */
	assert_false(policy_tick(p, 500 * MS, lead, true, true, 10, &r));
	assert_false(policy_tick(p, 1488 * MS, lead, true, true, 10, &r));
	/* a mailbox that was full: forgotten, the same train asked for again */
	assert_true(policy_tick(p, 1489 * MS, lead, true, true, 10, &again));
	policy_cancel_last(p);
	assert_true(policy_tick(p, 1489 * MS, lead, true, true, 10, &r));
	assert_int_equal(again.train_id, r.train_id);
	assert_int_equal(again.start_ns, r.start_ns);
	assert_int_equal(r.start_ns, 1505 * MS);
	assert_int_equal(r.train_id, 2);
	assert_int_equal(r.pulse_budget, 10);
	assert_int_equal(r.due, 15);
	/* the designed pause from the last pulse before (at 5 + 450 ms) */
	assert_int_equal(r.gap_ns, 1050 * MS);
	/* a new protocol applies from the next train: 45 % from train 3 */
	cfg.stim.intensity_pct = 45.0;
	policy_protocol_from_config(&cfg, &pp);
	policy_set_protocol(p, &pp);
	assert_true(r.intensity_pct != 45.0);
	/* seen late (a block after its start): it starts late, never early */
	assert_true(policy_tick(p, 3010 * MS, lead, true, true, 20, &r));
	assert_int_equal(r.start_ns, 3005 * MS);
	assert_true(r.intensity_pct == 45.0);
	assert_int_equal(r.pulse_budget, 5);	/* the count's last 5 */
	assert_int_equal(r.due, 5);
	assert_int_equal(r.train_id, 3);
	/* cut short after 2 of them: the rest off_ms after the policy saw it */
	assert_false(policy_tick(p, 3200 * MS, lead, true, true, 22, &r));
	assert_false(policy_tick(p, 4199 * MS, lead, true, true, 22, &r));
	assert_true(policy_tick(p, 4200 * MS, lead, true, true, 22, &r));
	assert_int_equal(r.start_ns, 4200 * MS);
	assert_int_equal(r.pulse_budget, 3);
	assert_int_equal(r.gap_ns, 0);
	assert_int_equal(r.train_id, 4);
	assert_false(policy_done(p, 24));
	assert_true(policy_done(p, 25));
	assert_false(policy_tick(p, 9000 * MS, lead, true, true, 25, &r));
	policy_destroy(p);
}

/*
 * Open loop, a protocol changed between two trains (set): the next train
 * starts the previous one's on-period plus the new off_ms after it began,
 * and never closer to its last pulse than the new protocol's own pause.
 */
static void test_policy_open_loop_set(void **state)
{
	struct rpmsd_config cfg;
	struct policy_protocol pp;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.mode = CONFIG_MODE_OPEN_LOOP;
	cfg.stim.protocol = CONFIG_PROTOCOL_TRAIN;
	cfg.stim.train_pulses = 5;
	cfg.stim.train_frequency_hz = 25.0;	/* 200 ms on, the last pulse at 160 ms */
	cfg.stim.off_ms = 600.0;
	cfg.stim.open_loop_pulses = 100;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_true(policy_tick(p, 0, INT64_MAX, true, true, 0, &r));
	/* a longer pause: 200 ms on, then 1000 ms off */
	cfg.stim.off_ms = 1000.0;
	policy_protocol_from_config(&cfg, &pp);
	policy_set_protocol(p, &pp);
	assert_true(policy_tick(p, 300 * MS, INT64_MAX, true, true, 5, &r));
	assert_int_equal(r.start_ns, 1200 * MS);
	assert_int_equal(r.gap_ns, 1040 * MS);
	/* 10 Hz: its own pause is 100 + 1000 ms after the last pulse (at 1360 ms) */
	cfg.stim.train_frequency_hz = 10.0;
	policy_protocol_from_config(&cfg, &pp);
	policy_set_protocol(p, &pp);
	assert_true(policy_tick(p, 1400 * MS, INT64_MAX, true, true, 10, &r));
	assert_int_equal(r.start_ns, 2460 * MS);
	assert_int_equal(r.gap_ns, 1100 * MS);
	assert_true(r.frequency_hz == 10.0);
	/* and from then on its own schedule: 500 ms on, 1000 ms off */
	assert_true(policy_tick(p, 3000 * MS, INT64_MAX, true, true, 15, &r));
	assert_int_equal(r.start_ns, 3960 * MS);
	policy_destroy(p);
}

/*
 * Open loop: a disarm between two trains, or a new session, ends the
 * schedule; the next train starts at the arm, off_ms after the policy saw
 * the disarm at the earliest. A request still out when the session's count
 * restarts ended short.
 */
static void test_policy_open_loop_disarm(void **state)
{
	const int64_t lead = 16 * MS;
	struct rpmsd_config cfg;
	struct policy *p;
	struct stim_request r;

	(void)state;
	config_defaults(&cfg);
	cfg.stim.mode = CONFIG_MODE_OPEN_LOOP;
	cfg.stim.protocol = CONFIG_PROTOCOL_TRAIN;
	cfg.stim.train_pulses = 5;
	cfg.stim.train_frequency_hz = 20.0;
	cfg.stim.off_ms = 600.0;
	cfg.stim.open_loop_pulses = 100;
	assert_int_equal(policy_create(&cfg, &p), 0);
	assert_true(policy_tick(p, 0, lead, true, true, 0, &r));
	/* whole at 200 ms; the next would start at 850 ms */
	assert_false(policy_tick(p, 300 * MS, lead, true, true, 5, &r));
	/* disarmed (and perhaps armed again) at 400 ms: no train at 850 ms */
	assert_false(policy_tick(p, 400 * MS, lead, false, true, 5, &r));
	assert_false(policy_tick(p, 840 * MS, lead, true, true, 5, &r));
	assert_false(policy_tick(p, 999 * MS, lead, true, true, 5, &r));
	assert_true(policy_tick(p, 1000 * MS, lead, true, true, 5, &r));
	assert_int_equal(r.start_ns, 1000 * MS);
	assert_int_equal(r.gap_ns, 0);
	assert_int_equal(r.due, 95);
	/* a new session while it is out: the count restarts, the train ended short */
	assert_false(policy_tick(p, 1100 * MS, lead, false, true, 0, &r));
	assert_false(policy_tick(p, 1699 * MS, lead, true, true, 0, &r));
	assert_true(policy_tick(p, 1700 * MS, lead, true, true, 0, &r));
	assert_int_equal(r.start_ns, 1700 * MS);
	assert_int_equal(r.due, 100);
	policy_destroy(p);
}

/* ---- the load check against the gate: a property test ------------------ */

static uint64_t prng_state = 0x5eed16d7ULL;

static uint64_t prng(void)
{
	/* splitmix64: seeded, the same run every time */
	uint64_t z = (prng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

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

static int prng_int(int lo, int hi)
{
	return lo + (int)(prng() % (uint64_t)(hi - lo + 1));
}

/* Set section.key from text, as a file line would; false if out of range. */
static bool set_key(struct rpmsd_config *cfg, const char *section, const char *key,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool set_key(struct rpmsd_config *cfg, const char *section, const char *key,
		    const char *fmt, ...)
{
	char value[64], err[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	return config_override(cfg, "prop", section, key, value, err, sizeof(err)) == 0;
}

/* A value near @edge: on it, a hair either side, or a little further. */
static double near(double edge)
{
	static const double rel[] = { 0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6, 1e-3, -1e-3 };
	double r = rel[prng() % (sizeof(rel) / sizeof(rel[0]))];

	return prng_chance(0.15) ? edge + prng_range(-0.05, 0.05) * edge : edge * (1.0 + r);
}

/* A random table file (ascending grids, any durations, non-monotone too), loaded by the override. */
static void prop_table(struct rpmsd_config *cfg, double rate)
{
	char path[] = "/tmp/rpmsd-proptable-XXXXXX";
	double r = 0.0, l = 40.0;
	unsigned n_rates = 1 + (unsigned)(prng() % 5), n_levels = 1 + (unsigned)(prng() % 6), i, j;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	assert_non_null(f);
	fprintf(f, "hz");
	for (j = 0; j < n_levels; j++) {
		l += prng_range(5.0, 40.0);
		fprintf(f, ",%.17g", l);
	}
	fprintf(f, "\n");
	for (i = 0; i < n_rates; i++) {
		/* now and then a row exactly at the protocol's rate */
		r = prng_chance(0.3) && rate > r ? rate : r + prng_range(0.5, 15.0);
		fprintf(f, "%.17g", r);
		for (j = 0; j < n_levels; j++) {
			fprintf(f, ",%.17g", prng_chance(0.05) ? 0.0 : prng_range(0.05, 4.0));
		}
		fprintf(f, "\n");
	}
	fclose(f);
	assert_true(set_key(cfg, "safety", "train_table", "%s", path));
	unlink(path);
}

/*
 * A random configuration, biased to the edges the gate decides on: rates
 * at the cap, theta periods at burst + one period, pauses at the train
 * gap, trains at the table's duration, counts at the session cap.
 * @return false when a value fell out of its key's range (skip it)
 */
static bool prop_config(struct rpmsd_config *cfg)
{
	static const char *const protocols[] = { "single", "train", "onoff", "theta_burst" };
	static const double grid[] = { 1, 5, 10, 20, 25, 50 };
	double maxf, rate, gap_ms, mt, per;
	int proto = prng_int(0, 3), bp = 1, pulses = 1;
	bool ok = true;

	config_defaults(cfg);
	ok &= set_key(cfg, "source", "file", "x.txt");
	ok &= set_key(cfg, "stim", "mode", "%s", prng_chance(0.5) ? "open_loop" : "closed_loop");
	ok &= set_key(cfg, "stim", "protocol", "%s", protocols[proto]);
	maxf = prng_chance(0.5) ? grid[prng() % 6] : prng_range(1.0, 100.0);
	ok &= set_key(cfg, "safety", "max_frequency_hz", "%.17g", maxf);
	switch (prng() % 4) {
	case 0:
		rate = near(maxf);
		break;
	case 1:
		rate = grid[prng() % 6];
		break;
	case 2:
		rate = 1.182;
		break;
	default:
		rate = prng_range(1.0, maxf * 1.2);
	}
	ok &= set_key(cfg, "stim", "train_frequency_hz", "%.17g", rate);
	ok &= set_key(cfg, "stim", "theta_frequency_hz", "%.17g", rate);
	ok &= set_key(cfg, "safety", "max_train_pulses", "%d", prng_int(1, 60));
	ok &= set_key(cfg, "safety", "min_train_interval_ms", "%.17g",
		      prng_chance(0.2) ? 0.0 : prng_range(0.0, 2000.0));
	if (proto == 1) {
		pulses = prng_int(1, 60);
		ok &= set_key(cfg, "stim", "train_pulses", "%d", pulses);
	} else if (proto == 2) {
		pulses = prng_int(1, 60);
		ok &= set_key(cfg, "stim", "on_ms", "%.17g", near(pulses / rate * 1e3));
	} else if (proto == 3) {
		bp = prng_int(1, 5);
		pulses = bp * prng_int(1, 12);
		ok &= set_key(cfg, "stim", "theta_burst_pulses", "%d", bp);
		ok &= set_key(cfg, "stim", "theta_bursts", "%d", pulses / bp);
		per = prng_chance(0.7) ? near((bp - 1) / rate * 1e3 + 1e3 / maxf)
				       : prng_range(10.0, 400.0);
		ok &= set_key(cfg, "stim", "theta_period_ms", "%.17g", per);
	}
	/* off_ms: a pause that puts the train gap at one of the limits, or anything */
	gap_ms = prng_chance(0.5) ? cfg->safety.min_train_interval_ms : 1e3 / maxf;
	switch (prng() % 3) {
	case 0:
		ok &= set_key(cfg, "stim", "off_ms", "%.17g", fmax(0.0, near(gap_ms - 1e3 / rate)));
		break;
	case 1:
		ok &= set_key(cfg, "stim", "off_ms", "%.17g", fmax(0.0, near(gap_ms)));
		break;
	default:
		ok &= set_key(cfg, "stim", "off_ms", "%.17g", prng_range(0.0, 2500.0));
	}
	ok &= set_key(cfg, "stim", "cycles", "%d", prng_chance(0.2) ? prng_int(4, 80) : prng_int(1, 3));
	ok &= set_key(cfg, "stim", "open_loop_pulses", "%d",
		      prng_chance(0.5) ? prng_int(1, 40) : prng_int(40, 300));
	ok &= set_key(cfg, "safety", "max_intensity_pct", "%.17g", prng_range(20.0, 70.0));
	ok &= set_key(cfg, "stim", "intensity_pct", "%.17g",
		      prng_chance(0.05) ? cfg->safety.max_intensity_pct + 1.0
					: prng_range(0.0, cfg->safety.max_intensity_pct));
	mt = prng_chance(0.05) ? 0.0 : prng_range(cfg->stim.intensity_pct * 0.4 + 1.0, 100.0);
	ok &= set_key(cfg, "safety", "motor_threshold_pct", "%.17g", fmin(mt, 100.0));
	if (prng_chance(0.5)) {
		prop_table(cfg, rate);
	}
	ok &= set_key(cfg, "safety", "max_session_pulses", "%d",
		      prng_chance(0.3) ? prng_int(1, 300) : 6000);
	ok &= set_key(cfg, "safety", "max_daily_pulses", "%d",
		      cfg->safety.max_session_pulses + prng_int(0, 1000));
	return ok;
}

struct prop_ref {
	bool refused;
	enum safety_rule rule;	/* of the first pulse refused */
	bool repeat;		/* ... which followed a request cut short (open loop) */
	unsigned repeat_rules;	/* open loop: bit per rule refusing some repeat */
};

/* One pulse through the real gate, as stim_fire asks; committed when admitted. */
static bool ref_fire(const struct safety_limits *lim, struct safety_state *st,
		     const struct stim_request *req, uint32_t c, int64_t t, enum safety_rule *rule)
{
	struct safety_request r = {
		.train_id = req->train_id + c,
		.frequency_hz = req->frequency_hz,
		.intensity_pct = req->intensity_pct,
	};
	struct safety_verdict v;

	r.coil.temperature_c = NAN;
	v = safety_admit(lim, st, &r, t);
	if (v.rule != SAFETY_OK) {
		*rule = v.rule;
		return false;
	}
	safety_commit(st, &r, t);
	return true;
}

/* Open loop: a tick of the policy that posted a train (time, pulses delivered). */
struct prop_post {
	int64_t now_ns;
	uint64_t delivered;
};

#define PROP_TRAINS_MAX 1024

/*
 * Open loop: pulse @t_cut of train @c refused for a reason that is not
 * the protocol's. A policy that posted trains 0..@c as the real one did
 * (@posts) asks for the rest when it next sees the stim thread idle:
 * not a moment before off_ms, then at once. Judge that request's first
 * pulse.
 */
static void ref_repeat(const struct rpmsd_config *cfg, const struct safety_limits *lim,
		       const struct safety_state *before, int64_t t_cut, uint64_t delivered,
		       const struct prop_post *posts, uint32_t c, struct prop_ref *ref)
{
	struct safety_state st = *before;
	struct stim_request req, next;
	struct policy *p;
	enum safety_rule rule;
	int64_t off = llround(cfg->stim.off_ms * 1e6);
	uint32_t j;

	assert_int_equal(policy_create(cfg, &p), 0);
	for (j = 0; j <= c; j++) {
		assert_true(policy_tick(p, posts[j].now_ns, INT64_MAX, true, true,
					posts[j].delivered, &req));
	}
	if (!policy_tick(p, t_cut, INT64_MAX, true, true, delivered, &next)) {
		assert_false(policy_tick(p, t_cut + off - 1, INT64_MAX, true, true, delivered,
					 &next));
		assert_true(policy_tick(p, t_cut + off, INT64_MAX, true, true, delivered, &next));
	}
	policy_destroy(p);
	assert_int_equal(next.start_ns, t_cut + off);
	if (!ref_fire(lim, &st, &next, 0, next.start_ns, &rule)) {
		ref->repeat_rules |= 1u << rule;
	}
}

/*
 * The reference: the real policy's requests, every one of their pulses at
 * the time stim_fire schedules it (a pulse whose time has passed fires at
 * once), through the real gate from a new session. Open loop: the policy
 * asked for each train when the one before ended (on time), and train c
 * must start where the documented schedule puts it, the first train's
 * start + c x (on-period + off_ms); also the request that follows a cut at
 * every pulse.
 */
static void prop_reference(const struct rpmsd_config *cfg, struct prop_ref *ref)
{
	static struct prop_post posts[PROP_TRAINS_MAX];
	struct safety_limits lim;
	struct safety_state st;
	struct stim_request req;
	struct policy *p;
	uint64_t delivered = 0, n;
	bool open_loop = cfg->stim.mode == CONFIG_MODE_OPEN_LOOP;
	int64_t t, prev = INT64_MIN, first = 0;
	uint32_t c, k, train = 0;

	memset(ref, 0, sizeof(*ref));
	safety_limits_from_config(cfg, &lim);
	safety_init(&st, 0);
	safety_set_armed(&st, true);
	st.day_recorded = UINT64_MAX;
	assert_int_equal(policy_create(cfg, &p), 0);
	if (open_loop) {
		assert_true(policy_tick(p, 0, INT64_MAX, true, true, 0, &req));
		posts[0].now_ns = 0;
		posts[0].delivered = 0;
		first = req.start_ns;
	} else {
		assert_int_equal(policy_on_onset(p, 0, 0, 0, &req), EVENT_ACTION_REQUESTED);
	}
	for (;;) {
		if (open_loop) {
			/* one train per request, on the documented schedule */
			assert_int_equal(req.cycles, 1);
			assert_int_equal(req.train_id, train + 1);
			assert_int_equal(req.start_ns, first + (int64_t)train * req.cycle_period_ns);
		}
		n = 0;
		for (c = 0; c < req.cycles; c++) {
			for (k = 0; k < req.pulses; k++) {
				if (req.pulse_budget && n >= req.pulse_budget) {
					goto done;
				}
				t = req.start_ns + (int64_t)c * req.cycle_period_ns +
				    stim_request_offset_ns(&req, k);
				if (t < prev) {
					t = prev;
				}
				if (open_loop && delivered > 0) {
					ref_repeat(cfg, &lim, &st, t, delivered, posts, train, ref);
				}
				if (!ref_fire(&lim, &st, &req, c, t, &ref->rule)) {
					ref->refused = true;
					policy_destroy(p);
					return;
				}
				prev = t;
				delivered++;
				n++;
			}
		}
done:
		/* the train ended with its last pulse: the next, or the count is done */
		if (!open_loop || !policy_tick(p, prev, INT64_MAX, true, true, delivered, &req)) {
			break;
		}
		train++;
		assert_true(train < PROP_TRAINS_MAX);
		posts[train].now_ns = prev;
		posts[train].delivered = delivered;
	}
	policy_destroy(p);
	if (open_loop) {
		assert_int_equal(delivered, (uint64_t)cfg->stim.open_loop_pulses);
	}
	if (ref->repeat_rules) {
		ref->refused = true;
		ref->repeat = true;
	}
}

#define PROP_PROTOCOLS 20000

/*
 * Random protocols (seeded): the load check (config_recheck, and now and
 * then config_load from a file) accepts exactly those whose every pulse
 * the real gate admits when the real policy schedules them, and
 * policy_check names the rule of the first pulse refused.
 */
static void test_policy_check_is_the_gate(void **state)
{
	static struct rpmsd_config cfg, loaded;
	unsigned n = 0, accepted = 0, repeats = 0, files = 0, by_rule[SAFETY_RULE_COUNT] = { 0 };
	char err[CONFIG_ERR_MAX], err2[CONFIG_ERR_MAX];
	struct policy_protocol pp;
	struct policy_refusal out;
	struct safety_limits lim;
	struct prop_ref ref;
	bool ok, checked;
	unsigned rule;

	(void)state;
	while (n < PROP_PROTOCOLS) {
		if (!prop_config(&cfg)) {
			continue;
		}
		n++;
		prop_reference(&cfg, &ref);
		loaded = cfg;
		ok = config_recheck(&loaded, "prop", err, sizeof(err)) == 0;
		if (ok == ref.refused) {
			fail_msg("protocol %u: the load check %s it, the gate %s it (rule %s%s): %s",
				 n, ok ? "accepts" : "refuses", ref.refused ? "refuses" : "admits",
				 safety_rule_name(ref.rule), ref.repeat ? ", after a cut" : "",
				 ok ? "" : err);
		}
		policy_protocol_from_config(&cfg, &pp);
		safety_limits_from_config(&cfg, &lim);
		checked = policy_check(&pp, cfg.stim.mode == CONFIG_MODE_OPEN_LOOP,
				       (uint64_t)cfg.stim.open_loop_pulses, &lim, &out);
		assert_true(checked == !ref.refused);
		if (ref.refused && !ref.repeat) {
			assert_int_equal(out.verdict.rule, ref.rule);
			assert_true(out.at != POLICY_AT_REPEAT);
		} else if (ref.repeat) {
			assert_int_equal(out.at, POLICY_AT_REPEAT);
			assert_true(ref.repeat_rules & (1u << out.verdict.rule));
			repeats++;
		}
		if (ok) {
			accepted++;
		} else {
			by_rule[ref.rule]++;
		}
		/* the same verdict from a file, now and then */
		if (n % 97 == 0 && !cfg.safety.train_table_file[0]) {
			char path[] = "/tmp/rpmsd-propconf-XXXXXX";
			int fd = mkstemp(path);
			FILE *f = fdopen(fd, "w");
			static const char *const keys[][2] = {
				{ "stim", "mode" }, { "stim", "protocol" }, { "stim", "train_pulses" },
				{ "stim", "train_frequency_hz" }, { "stim", "on_ms" }, { "stim", "off_ms" },
				{ "stim", "cycles" }, { "stim", "theta_bursts" },
				{ "stim", "theta_burst_pulses" }, { "stim", "theta_frequency_hz" },
				{ "stim", "theta_period_ms" }, { "stim", "open_loop_pulses" },
				{ "stim", "intensity_pct" }, { "safety", "max_frequency_hz" },
				{ "safety", "max_train_pulses" }, { "safety", "min_train_interval_ms" },
				{ "safety", "max_intensity_pct" }, { "safety", "motor_threshold_pct" },
				{ "safety", "max_session_pulses" }, { "safety", "max_daily_pulses" },
			};
			static struct rpmsd_config same;
			char v[64];
			size_t i;

			assert_non_null(f);
			config_defaults(&same);
			assert_true(set_key(&same, "source", "file", "x.txt"));
			fprintf(f, "[source]\nfile = x.txt\n");
			for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
				assert_int_equal(config_value_text(&cfg, keys[i][0], keys[i][1], v,
								   sizeof(v)), 0);
				fprintf(f, "[%s]\n%s = %s\n", keys[i][0], keys[i][1], v);
				/* the values as the file has them (%.15g may round) */
				assert_true(set_key(&same, keys[i][0], keys[i][1], "%s", v));
			}
			fclose(f);
			prop_reference(&same, &ref);
			ok = config_load(&loaded, path, err2, sizeof(err2)) == 0;
			if (ok == ref.refused) {
				fail_msg("%s: config_load %s it, the gate %s it: %s", path,
					 ok ? "accepts" : "refuses", ref.refused ? "refuses" : "admits",
					 ok ? "" : err2);
			}
			unlink(path);
			files++;
		}
	}
	printf("policy_check: %u random protocols, %u accepted, %u refused after a cut "
	       "(open loop), %u loaded from a file; refused by rule:", n, accepted, repeats, files);
	for (rule = 1; rule < SAFETY_RULE_COUNT; rule++) {
		if (by_rule[rule]) {
			printf(" %s %u", safety_rule_name(rule), by_rule[rule]);
		}
	}
	printf("\n");
	/* every rule a protocol can break was broken, and many protocols pass */
	assert_true(accepted > n / 10);
	assert_true(repeats > 20);
	assert_true(by_rule[SAFETY_INTENSITY] > 100);
	assert_true(by_rule[SAFETY_MAX_FREQUENCY] > 100);
	assert_true(by_rule[SAFETY_TRAIN_PULSES] > 100);
	assert_true(by_rule[SAFETY_TRAIN_DURATION] > 100);
	assert_true(by_rule[SAFETY_TRAIN_INTERVAL] > 100);
	assert_true(by_rule[SAFETY_SESSION_PULSES] > 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_train_and_refractory),
		cmocka_unit_test(test_policy_single),
		cmocka_unit_test(test_policy_onoff),
		cmocka_unit_test(test_policy_theta),
		cmocka_unit_test(test_policy_open_loop),
		cmocka_unit_test(test_policy_open_loop_set),
		cmocka_unit_test(test_policy_open_loop_disarm),
		cmocka_unit_test(test_policy_check_is_the_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
