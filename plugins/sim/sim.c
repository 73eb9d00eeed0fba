/* SPDX-License-Identifier: MIT */
/*
 * Simulated coil: fires nothing, records every pulse with its session time
 * and models the coil's temperature (first-order heating and cooling), so
 * the demo and the tests exercise the real plugin path and the thermal
 * safety rule.
 *
 * The pulse record is preallocated in open; pulse only writes into it. It
 * is written to pulse_log (CSV) at close, when that key is set.
 *
 * Fault knobs, for tests of the daemon's safety paths: fail_every (every
 * Nth pulse returns -EIO), overheat_after (after N pulses the coil reports
 * a temperature far above any limit) and never_ready (the stimulator never
 * says it is ready).
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rpmsd/coil.h>

struct sim_pulse {
	int64_t t_ns;
	double intensity_pct;
	uint32_t width_us;
	double temperature_c;	/* after the pulse */
};

struct sim {
	const struct rpmsd_coil_host *host;
	double ambient_c;
	double heat_per_pulse_c;	/* at 100 % intensity */
	double tau_s;
	double temp_c;			/* at t_temp_ns */
	int64_t t_temp_ns;
	atomic_bool armed;
	struct sim_pulse *log;
	size_t log_cap;
	size_t log_len;
	uint64_t unlogged;		/* pulses beyond the log's capacity */
	char log_path[1024];
	long long fail_every;		/* 0: never */
	long long overheat_after;	/* 0: never */
	bool never_ready;
	uint64_t pulses;		/* attempts, failed ones included */
	uint64_t fired;
};

#define SIM_OVERHEAT_C 100.0	/* above ambient, far beyond any coil limit */

static const struct rpmsd_coil_key sim_keys[] = {
	{ "ambient_c", RPMSD_COIL_KEY_DOUBLE, "25", -20, 60, "C",
	  "coil temperature at rest" },
	{ "heat_per_pulse_c", RPMSD_COIL_KEY_DOUBLE, "0.05", 0, 10, "C",
	  "temperature rise of one pulse at 100 % intensity (scales with intensity squared)" },
	{ "cooling_tau_s", RPMSD_COIL_KEY_DOUBLE, "300", 1, 36000, "s",
	  "time constant of cooling towards ambient" },
	{ "pulse_log", RPMSD_COIL_KEY_STRING, "", 0, 0, "",
	  "CSV file written at close with every pulse (empty: none)" },
	{ "pulse_log_max", RPMSD_COIL_KEY_INT, "100000", 1, 10000000, "pulses",
	  "pulses kept for pulse_log (preallocated)" },
	{ "fail_every", RPMSD_COIL_KEY_INT, "0", 0, 1000000, "pulses",
	  "test fault: every Nth pulse fails with EIO (0: never)" },
	{ "overheat_after", RPMSD_COIL_KEY_INT, "0", 0, 1000000, "pulses",
	  "test fault: after N pulses the coil reports 100 C above ambient (0: never)" },
	{ "never_ready", RPMSD_COIL_KEY_BOOL, "false", 0, 0, "",
	  "test fault: the stimulator never reports ready" },
};

/* Temperature at @now, cooled exponentially since the last update. */
static double sim_temp_at(const struct sim *s, int64_t now)
{
	double dt = (double)(now - s->t_temp_ns) / 1e9;

	if (dt <= 0.0) {
		return s->temp_c;
	}
	return s->ambient_c + (s->temp_c - s->ambient_c) * exp(-dt / s->tau_s);
}

static int sim_open(const struct rpmsd_coil_host *host, void **out)
{
	struct sim *s = calloc(1, sizeof(*s));
	const char *path = "";
	long long cap = 0;
	int ret;

	if (!s) {
		return -ENOMEM;
	}
	s->host = host;
	ret = host->get_double(host->ctx, "ambient_c", &s->ambient_c);
	if (ret == 0) {
		ret = host->get_double(host->ctx, "heat_per_pulse_c", &s->heat_per_pulse_c);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "cooling_tau_s", &s->tau_s);
	}
	if (ret == 0) {
		ret = host->get_string(host->ctx, "pulse_log", &path);
	}
	if (ret == 0) {
		ret = host->get_int(host->ctx, "pulse_log_max", &cap);
	}
	if (ret == 0) {
		ret = host->get_int(host->ctx, "fail_every", &s->fail_every);
	}
	if (ret == 0) {
		ret = host->get_int(host->ctx, "overheat_after", &s->overheat_after);
	}
	if (ret == 0) {
		ret = host->get_bool(host->ctx, "never_ready", &s->never_ready);
	}
	if (ret < 0) {
		goto err_free;
	}
	if (strlen(path) >= sizeof(s->log_path)) {
		ret = -ENAMETOOLONG;
		goto err_free;
	}
	strcpy(s->log_path, path);
	s->log_cap = (size_t)cap;
	s->log = calloc(s->log_cap, sizeof(*s->log));
	if (!s->log) {
		ret = -ENOMEM;
		goto err_free;
	}
	/* Prefault: the RT thread must not take page faults on first use. */
	memset(s->log, 0, s->log_cap * sizeof(*s->log));
	s->temp_c = s->ambient_c;
	s->t_temp_ns = host->now_ns(host->ctx);
	atomic_init(&s->armed, false);
	*out = s;
	return 0;

err_free:
	free(s);
	return ret;
}

static int sim_arm(void *h)
{
	struct sim *s = h;

	atomic_store(&s->armed, true);
	return 0;
}

static int sim_disarm(void *h)
{
	struct sim *s = h;

	atomic_store(&s->armed, false);
	return 0;
}

static int sim_pulse(void *h, double intensity_pct, uint32_t width_us)
{
	struct sim *s = h;
	int64_t now = s->host->now_ns(s->host->ctx);
	double frac = intensity_pct / 100.0;

	/* A real stimulator with its enable line low would not fire either. */
	if (!atomic_load(&s->armed)) {
		return -EPERM;
	}
	if (s->fail_every > 0 && ++s->pulses % (uint64_t)s->fail_every == 0) {
		return -EIO;
	}
	s->fired++;
	s->temp_c = sim_temp_at(s, now) + s->heat_per_pulse_c * frac * frac;
	s->t_temp_ns = now;
	if (s->log_len < s->log_cap) {
		s->log[s->log_len++] = (struct sim_pulse){
			.t_ns = now,
			.intensity_pct = intensity_pct,
			.width_us = width_us,
			.temperature_c = s->temp_c,
		};
	} else {
		s->unlogged++;
	}
	return 0;
}

static int sim_status(void *h, struct rpmsd_coil_status *st)
{
	struct sim *s = h;

	st->temperature_c = sim_temp_at(s, s->host->now_ns(s->host->ctx));
	if (s->overheat_after > 0 && s->fired >= (uint64_t)s->overheat_after) {
		st->temperature_c += SIM_OVERHEAT_C;
	}
	st->ready = !s->never_ready;
	st->fault = false;
	st->fault_code = 0;
	return 0;
}

static void sim_write_log(struct sim *s)
{
	FILE *f;
	size_t i;

	f = fopen(s->log_path, "w");
	if (!f) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR, "cannot write pulse_log %s: %s",
			     s->log_path, strerror(errno));
		return;
	}
	fprintf(f, "t_session_s,intensity_pct,width_us,temperature_c\n");
	for (i = 0; i < s->log_len; i++) {
		fprintf(f, "%.9f,%.3f,%u,%.4f\n", (double)s->log[i].t_ns / 1e9,
			s->log[i].intensity_pct, s->log[i].width_us, s->log[i].temperature_c);
	}
	if (fclose(f) != 0) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR, "error writing pulse_log %s: %s",
			     s->log_path, strerror(errno));
	}
	if (s->unlogged) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_WARN,
			     "%llu pulses beyond pulse_log_max were not logged",
			     (unsigned long long)s->unlogged);
	}
}

static void sim_close(void *h)
{
	struct sim *s = h;

	if (!s) {
		return;
	}
	atomic_store(&s->armed, false);
	if (s->log_path[0]) {
		sim_write_log(s);
	}
	free(s->log);
	free(s);
}

static const struct rpmsd_coil_descriptor sim_descriptor = {
	.abi_major = RPMSD_COIL_ABI_MAJOR,
	.abi_minor = RPMSD_COIL_ABI_MINOR,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
	.name = "sim",
	.description = "simulated coil: records pulses, models coil temperature",
	.keys = sim_keys,
	.n_keys = sizeof(sim_keys) / sizeof(sim_keys[0]),
	.ops = {
		.open = sim_open,
		.arm = sim_arm,
		.disarm = sim_disarm,
		.pulse = sim_pulse,
		.status = sim_status,
		.close = sim_close,
	},
};

RPMSD_COIL_PLUGIN(&sim_descriptor)
