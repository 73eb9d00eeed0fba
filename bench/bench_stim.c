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
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "event.h"
#include "plugin.h"
#include "sclock.h"
#include "stim.h"

#define TRAINS 20
#define PULSES 25
#define SINGLES 500

static int bench_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void bench_report(const char *what, int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench_cmp);
	printf("%s (%zu): p50 %.1f us, p99 %.1f us, max %.1f us\n", what, n,
	       (double)v[n / 2] / 1e3, (double)v[n * 99 / 100] / 1e3, (double)v[n - 1] / 1e3);
}

static void bench_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
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
	bool got_rt;
	int i;

	config_defaults(&cfg);
	cfg.safety.max_frequency_hz = 50;
	cfg.safety.max_train_pulses = PULSES;
	cfg.safety.min_train_interval_ms = 0;
	cfg.safety.max_intensity_pct = 100;
	if (sclock_create(false, &clk) < 0 ||
	    plugin_load(&cfg, "sim", &plugin, err, sizeof(err)) < 0 ||
	    plugin_open(plugin, &cfg, clk, err, sizeof(err)) < 0 ||
	    stim_create(&cfg, clk, plugin, &stim) < 0) {
		fprintf(stderr, "bench: %s\n", err);
		return 1;
	}
	sclock_start(clk);
	if (stim_start(stim, 90, &got_rt) < 0) {
		return 1;
	}
	printf("stim thread: %s\n", got_rt ? "SCHED_FIFO 90" : "normal scheduling (RT refused)");
	stim_set_armed(stim, true, "bench");
	bench_sleep_ms(10);

	/* trains: 25 pulses at 50 Hz, back to back */
	for (i = 0; i < TRAINS; i++) {
		struct stim_request q = {
			.train_id = (uint32_t)i + 1, .pulses = PULSES, .frequency_hz = 50,
			.intensity_pct = 10, .width_us = 100,
			.start_ns = sclock_now(clk) + 5000000,
		};

		stim_post(stim, &q);
		bench_sleep_ms(PULSES * 20 + 30);
		while (ring_pop(stim_events(stim), &ev)) {
			if (ev.type == EVENT_PULSE && nl < TRAINS * PULSES) {
				late[nl++] = ev.u.pulse.actual_ns - ev.u.pulse.sched_ns;
			}
		}
	}
	/* single pulses asked for "now": post-to-pulse latency */
	for (i = 0; i < SINGLES; i++) {
		struct stim_request q = {
			.train_id = (uint32_t)(TRAINS + i + 1), .pulses = 1, .frequency_hz = 0,
			.intensity_pct = 10, .width_us = 100,
		};
		int64_t posted;

		q.start_ns = sclock_now(clk);
		posted = q.start_ns;
		stim_post(stim, &q);
		bench_sleep_ms(25);
		while (ring_pop(stim_events(stim), &ev)) {
			if (ev.type == EVENT_PULSE && nw < SINGLES) {
				wake[nw++] = ev.u.pulse.actual_ns - posted;
			}
		}
	}
	stim_destroy(stim);
	plugin_unload(plugin);
	sclock_destroy(clk);
	if (nl == 0 || nw == 0) {
		fprintf(stderr, "bench: no pulses (%zu, %zu)\n", nl, nw);
		return 1;
	}
	bench_report("pulse lateness vs absolute schedule, 50 Hz trains", late, nl);
	bench_report("request posted -> pulse fired, single pulses", wake, nw);
	return 0;
}
