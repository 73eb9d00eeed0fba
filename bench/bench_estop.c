/* SPDX-License-Identifier: MIT */
/*
 * Emergency stop latency on the real clock, through the real host path:
 * the sim plugin's e-stop input (a FIFO) is pressed PRESSES times while
 * armed. For each press the sim records (CLOCK_MONOTONIC) the edge time
 * stamped by this program just before its write, when its watcher dropped
 * the simulated enable line, and when the stim thread's disarm arrived
 * after the alert. Reported: edge -> enable dropped (the plugin's own
 * reaction) and edge -> host disarmed (alert, futex wake of the stim
 * thread, gate disarmed, plugin disarm op), p50 / p99 / max.
 *
 * The sim's watcher is a plain thread (the gpio plugin's runs at SCHED_FIFO
 * 95 and timestamps the edge in the kernel); the stim thread runs at
 * SCHED_FIFO 90 when allowed (said in the output). A shared, non-RT
 * machine: these figures describe it, not a rig.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fresh.h"
#include "plugin.h"
#include "sclock.h"
#include "stim.h"

#define PRESSES 1000

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

/* Wait up to 1 s for the armed state, keeping the EMG fresh meanwhile. */
static int bench_wait_armed(struct stim *stim, struct sclock *clk, bool want)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 100000L };
	int i;

	for (i = 0; i < 10000; i++) {
		fresh_mark(stim_fresh(stim), sclock_now(clk));
		if (stim_armed(stim) == want) {
			return 0;
		}
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int bench_say(int fd, const char *line)
{
	size_t n = strlen(line);

	return write(fd, line, n) == (ssize_t)n ? 0 : -EIO;
}

int main(void)
{
	static struct rpmsd_config cfg;
	static int64_t drop[PRESSES], host[PRESSES];
	char dir[] = "/tmp/rpmsd-bench-estop-XXXXXX", fifo[64], log[64], err[2048], line[64];
	struct sclock *clk;
	struct plugin *plugin;
	struct stim *stim;
	size_t n = 0;
	bool got_rt;
	FILE *f;
	int fd, i;

	if (!mkdtemp(dir)) {
		perror("bench_estop: mkdtemp");
		return 1;
	}
	snprintf(fifo, sizeof(fifo), "%s/in", dir);
	snprintf(log, sizeof(log), "%s/log.csv", dir);
	if (mkfifo(fifo, 0600) < 0) {
		perror("bench_estop: mkfifo");
		return 1;
	}
	config_defaults(&cfg);
	strcpy(cfg.plugin_section, "sim");
	cfg.n_plugin_kv = 2;
	strcpy(cfg.plugin_kv[0].key, "estop_fifo");
	strcpy(cfg.plugin_kv[0].value, fifo);
	strcpy(cfg.plugin_kv[1].key, "estop_log");
	strcpy(cfg.plugin_kv[1].value, log);
	if (sclock_create(false, &clk) < 0 ||
	    plugin_load(&cfg, "sim", &plugin, err, sizeof(err)) < 0 ||
	    plugin_open(plugin, &cfg, clk, err, sizeof(err)) < 0 ||
	    stim_create(&cfg, clk, plugin, &stim) < 0) {
		fprintf(stderr, "bench_estop: %s\n", err);
		return 1;
	}
	sclock_start(clk);
	if (stim_start(stim, 90, -1, &got_rt) < 0) {
		return 1;
	}
	printf("stim thread: %s\n", got_rt ? "SCHED_FIFO 90" : "normal scheduling (RT refused)");
	fd = open(fifo, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("bench_estop: open fifo");
		return 1;
	}
	for (i = 0; i < PRESSES; i++) {
		stim_arm(stim, "bench", NULL);
		if (bench_wait_armed(stim, clk, true) < 0) {
			fprintf(stderr, "bench_estop: press %d: not armed\n", i);
			return 1;
		}
		snprintf(line, sizeof(line), "press %" PRId64 "\n", sclock_mono_ns());
		if (bench_say(fd, line) < 0 || bench_wait_armed(stim, clk, false) < 0) {
			fprintf(stderr, "bench_estop: press %d: not disarmed\n", i);
			return 1;
		}
		if (bench_say(fd, "release\n") < 0) {
			return 1;
		}
		/* a settled release before the next arm */
		usleep(2000);
	}
	close(fd);
	stim_destroy(stim);
	plugin_unload(plugin);	/* writes the log */
	sclock_destroy(clk);
	f = fopen(log, "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		fprintf(stderr, "bench_estop: no log %s\n", log);
		return 1;
	}
	while (n < PRESSES && fgets(line, sizeof(line), f)) {
		long long e, d, h;

		if (sscanf(line, "%lld,%lld,%lld", &e, &d, &h) == 3 && h > 0) {
			drop[n] = d - e;
			host[n] = h - e;
			n++;
		}
	}
	fclose(f);
	unlink(log);
	unlink(fifo);
	rmdir(dir);
	if (n < PRESSES) {
		fprintf(stderr, "bench_estop: %zu of %d presses logged\n", n, PRESSES);
		return 1;
	}
	bench_report("e-stop edge -> sim enable line dropped", drop, n);
	bench_report("e-stop edge -> host disarmed (stim thread, plugin disarm op)", host, n);
	return 0;
}
