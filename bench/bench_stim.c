/* SPDX-License-Identifier: MIT */
/*
 * Pulse timing on the real clock: the stim thread with the sim plugin,
 * armed, fed back-to-back trains. Reports how late each pulse fired
 * against its absolute schedule (p50, p99, max), and the wake-up latency
 * from stim_post() of an immediate single pulse to the pulse (the
 * request-to-coil part of the closed loop).
 *
 * The thread runs at SCHED_FIFO 90 when allowed, else normal scheduling
 * (said in the output): on a non-RT kernel and a shared machine these
 * figures describe this machine, not a rig.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "event.h"
#include "fresh.h"
#include "plugin.h"
#include "policy.h"
#include "ring.h"
#include "sclock.h"
#include "stim.h"

/* 10^4 scheduled pulses (issue 5's floor for a jitter figure), then singles. */
#define TRAINS 400
#define PULSES 25
#define TRAIN_HZ 200
#define SINGLES 1000

static int bench_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void bench_report(const char *what, int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench_cmp);
	printf("%s (%zu): p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", what, n,
	       (double)v[n / 2] / 1e3, (double)v[n * 99 / 100] / 1e3,
	       (double)v[n * 999 / 1000] / 1e3, (double)v[n - 1] / 1e3);
}

/*
 * Sleep @ms while standing in for the acquire thread: fresh EMG every
 * millisecond, or the gate's acquisition rule (and the stim thread's
 * watchdog) would refuse every pulse, as they must without EMG.
 */
static void bench_sleep_ms(struct stim *stim, struct sclock *clk, int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 1000000L };
	int i;

	for (i = 0; i < ms; i++) {
		fresh_mark(stim_fresh(stim), sclock_now(clk));
		nanosleep(&ts, NULL);
	}
}

int main(void)
{
	static struct rpmsd_config cfg;
	static int64_t late[TRAINS * PULSES], wake[SINGLES];
	struct sclock *clk;
	struct plugin *plugin;
	struct stim *stim;
	struct event ev;
	char err[2048];
	size_t nl = 0, nw = 0;
	uint64_t refused[SAFETY_RULE_COUNT] = { 0 };
	unsigned r;
	bool got_rt;
	int i;

	config_defaults(&cfg);
	cfg.safety.max_frequency_hz = TRAIN_HZ;
	cfg.safety.max_train_pulses = PULSES;
	cfg.safety.min_train_interval_ms = 0;
	cfg.safety.max_intensity_pct = 100;
	/*
	 * The bench's own thread stands in for acquisition at normal priority;
	 * on a loaded machine it can be starved for a while. The watchdog is
	 * not what is measured here.
	 */
	cfg.safety.acquisition_timeout_ms = 10000;
	cfg.safety.max_session_pulses = 1000000;
	cfg.safety.max_daily_pulses = 1000000;
	/*
	 * Timing, not the table, is measured here: one generous row at 200 Hz
	 * (the gate still evaluates the rule on every pulse).
	 */
	cfg.safety.motor_threshold_pct = 50;
	memset(&cfg.safety.train_table, 0, sizeof(cfg.safety.train_table));
	cfg.safety.train_table.n_rates = 1;
	cfg.safety.train_table.n_levels = 1;
	cfg.safety.train_table.rate_hz[0] = TRAIN_HZ;
	cfg.safety.train_table.level_pct[0] = 100;
	cfg.safety.train_table.max_s[0][0] = 10;
	cfg.safety.train_table.hull_s[0][0] = 10;
	if (sclock_create(false, &clk) < 0 ||
	    plugin_load(&cfg, "sim", &plugin, err, sizeof(err)) < 0 ||
	    plugin_open(plugin, &cfg, clk, err, sizeof(err)) < 0 ||
	    stim_create(&cfg, clk, plugin, &stim) < 0) {
		fprintf(stderr, "bench: %s\n", err);
		return 1;
	}
	sclock_start(clk);
	/* no ledger here: everything counts as recorded */
	stim_set_ledger(stim, UINT64_MAX, false);
	if (stim_start(stim, 90, -1, &got_rt) < 0) {
		return 1;
	}
	printf("stim thread: %s\n", got_rt ? "SCHED_FIFO 90" : "normal scheduling (RT refused)");
	stim_arm(stim, "bench", NULL);
	bench_sleep_ms(stim, clk, 10);

	/* trains: 25 pulses at 200 Hz, back to back */
	for (i = 0; i < TRAINS; i++) {
		struct stim_request q = {
			.train_id = (uint32_t)i + 1, .pulses = PULSES, .frequency_hz = TRAIN_HZ,
			.burst_pulses = PULSES, .cycles = 1,
			.intensity_pct = 10, .width_us = 100,
			.start_ns = sclock_now(clk) + 5000000,
		};

		stim_post(stim, &q);
		bench_sleep_ms(stim, clk, PULSES * 1000 / TRAIN_HZ + 30);
		while (ring_pop(stim_events(stim), &ev)) {
			if (ev.type == EVENT_PULSE && nl < TRAINS * PULSES) {
				late[nl++] = ev.u.pulse.actual_ns - ev.u.pulse.sched_ns;
			} else if (ev.type == EVENT_REFUSAL && ev.u.refusal.rule < SAFETY_RULE_COUNT) {
				refused[ev.u.refusal.rule] += ev.u.refusal.dropped;
			}
		}
	}
	/* single pulses asked for "now": post-to-pulse latency */
	for (i = 0; i < SINGLES; i++) {
		struct stim_request q = {
			.train_id = (uint32_t)(TRAINS + i + 1), .pulses = 1, .frequency_hz = 0,
			.burst_pulses = 1, .cycles = 1,
			.intensity_pct = 10, .width_us = 100,
		};
		int64_t posted;

		q.start_ns = sclock_now(clk);
		posted = q.start_ns;
		stim_post(stim, &q);
		bench_sleep_ms(stim, clk, 25);
		while (ring_pop(stim_events(stim), &ev)) {
			if (ev.type == EVENT_PULSE && nw < SINGLES) {
				wake[nw++] = ev.u.pulse.actual_ns - posted;
			} else if (ev.type == EVENT_REFUSAL && ev.u.refusal.rule < SAFETY_RULE_COUNT) {
				refused[ev.u.refusal.rule] += ev.u.refusal.dropped;
			}
		}
	}
	stim_destroy(stim);
	plugin_unload(plugin);
	sclock_destroy(clk);
	if (nl < (size_t)TRAINS * PULSES || nw < SINGLES) {
		fprintf(stderr, "bench: %zu of %d scheduled and %zu of %d single pulses fired\n",
			nl, TRAINS * PULSES, nw, SINGLES);
		for (r = 1; r < SAFETY_RULE_COUNT; r++) {
			if (refused[r]) {
				fprintf(stderr, "bench:   %" PRIu64 " refused by %s\n", refused[r],
					safety_rule_name(r));
			}
		}
		return 1;
	}
	bench_report("pulse lateness vs absolute schedule, 200 Hz trains", late, nl);
	bench_report("request posted -> pulse fired, single pulses", wake, nw);
	return 0;
}
