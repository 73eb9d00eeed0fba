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
 * a temperature far above any limit), never_ready (the stimulator never
 * says it is ready) and disarm_ms (the disarm op takes that long, as over a
 * slow stimulator interface: the host's "disarmed" event comes that much
 * after its gate was disarmed).
 *
 * A simulated emergency stop input: with estop_fifo set, a watcher thread
 * reads lines from that FIFO. "press T" is an asserting edge at
 * CLOCK_MONOTONIC time T (ns, stamped by the writer): the watcher drops
 * the simulated enable line at once, as the gpio plugin does, then alerts
 * the host. "release" releases the input. For each press the plugin keeps
 * the edge time, when its enable line dropped and when the host's disarm
 * arrived, and writes them to estop_log at close: the e-stop latency,
 * measured through the real host path.
 *
 * A simulated serial stimulator (ABI 1.2), off unless device_model is
 * set: set_intensity asks it for an output, which it confirms (as a whole
 * %, plus confirm_offset_pct: a device that applies something else)
 * confirm_delay_ms later in session time, or never (-1);
 * confirmed_intensity reports it, NAN before the first confirmation. With
 * envelope = test-rapid2 it declares the test envelope below. With
 * device_model empty the three ops say "no device" (confirmed_intensity
 * -EOPNOTSUPP, envelope NULL): the host behaves as before 1.2.
 *
 * A simulated patient, off unless patient_threshold_pct is set: each
 * pulse at output I draws an M-wave amplitude from a sigmoid recruitment
 * curve (simpatient.c: true threshold, slope, maximum, log-normal trial
 * noise, seed) and reports it with the pulse (pulse_info's sim_*), and
 * the host mixes artefact and M-wave into a replayed EMG on
 * patient_channel (daemon/simemg.c, docs/plugins-sim.md). The draw is
 * made on the stim thread from memory set up in open: no allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rpmsd/coil.h>

#include "simpatient.h"

struct sim_pulse {
	int64_t t_ns;
	double intensity_pct;
	uint32_t width_us;
	double temperature_c;	/* after the pulse */
};

struct sim_estop {
	int64_t edge_ns;		/* CLOCK_MONOTONIC, from the writer */
	int64_t drop_ns;		/* enable line dropped by the watcher */
	_Atomic int64_t host_ns;	/* the host's disarm arrived; 0 = not yet */
};

struct sim {
	const struct rpmsd_coil_host *host;
	double ambient_c;
	double heat_per_pulse_c;	/* at 100 % intensity */
	double tau_s;
	double temp_c;			/* at t_temp_ns */
	int64_t t_temp_ns;
	atomic_bool armed;
	atomic_uint forced;		/* force_disarm calls, reported at close */
	struct sim_pulse *log;
	size_t log_cap;
	size_t log_len;
	uint64_t unlogged;		/* pulses beyond the log's capacity */
	char log_path[1024];
	long long fail_every;		/* 0: never */
	long long overheat_after;	/* 0: never */
	bool never_ready;
	long long disarm_ms;		/* the disarm op's duration */
	uint64_t pulses;		/* attempts, failed ones included */
	uint64_t fired;
	/* simulated e-stop input */
	char estop_fifo[1024];
	char estop_log_path[1024];
	int fifo_fd;
	int stop_fd;			/* eventfd: ends the watcher */
	pthread_t watcher;
	bool watching;
	atomic_bool estop;		/* asserted now */
	struct sim_estop *estops;	/* preallocated */
	size_t estop_cap;
	atomic_size_t estop_len;
	/* simulated serial device (ABI 1.2) */
	char device_model[64];		/* "" = none */
	long long confirm_delay_ms;	/* -1: never confirms */
	double confirm_offset_pct;
	struct rpmsd_coil_envelope env;
	bool have_env;
	/*
	 * What was asked and when, under a sequence count (odd while the
	 * control thread writes): the stim thread reads it without a lock.
	 */
	atomic_uint dev_seq;
	_Atomic double dev_asked_pct;	/* confirmed value once due, NAN: none asked */
	_Atomic int64_t dev_asked_ns;
	_Atomic double dev_before_pct;	/* confirmed before that ask, NAN: none */	/* delivery verification (ABI 1.2 pulse_info) */
	double confirm_latency_us;	/* 0: no confirm line */
	double confirm_step_us;
	double didt_per_pct;		/* 0: no read-back */
	double last_intensity_pct;	/* of pulse number fired */
	double prev_intensity_pct;	/* of pulse number fired - 1 */
	/* simulated patient */
	struct simpatient *patient;	/* NULL: none */
	double response_uv;		/* of pulse number fired */
	double patient_latency_us;
	double patient_artefact_uv;
	long long patient_channel;
};

/*
 * The envelope preset "test-rapid2": a test table, NOT a Magstim
 * figure except the one MagPy lists for a standard 240 V Rapid2 (25 Hz
 * only up to 61 % output), with Magstim's 500 ms between trains and 1 Hz
 * single-pulse mode. The energy per pulse is invented for the tests so
 * that MagPy's model (1050 W sustained) passes 25 Hz 1 s on / 2 s off at
 * 60 % (100 J) and fails it at 80 % (150 J); real units' figures are for
 * their plugins to declare.
 */
static const struct rpmsd_coil_rate_cap sim_test_caps[] = {
	{ 30.0, 50.0 }, { 61.0, 25.0 }, { 80.0, 15.0 }, { 100.0, 10.0 },
};
static const struct rpmsd_coil_energy_point sim_test_energy[] = {
	{ 0.0, 20.0 }, { 50.0, 80.0 }, { 60.0, 100.0 }, { 80.0, 150.0 }, { 100.0, 220.0 },
};

#define SIM_OVERHEAT_C 100.0	/* above ambient, far beyond any coil limit */

static const struct rpmsd_coil_key sim_keys[] = {
	{ .name = "ambient_c", .type = RPMSD_COIL_KEY_DOUBLE, .def = "25",
	  .min = -20, .max = 60, .unit = "C",
	  .doc = "coil temperature at rest" },
	{ .name = "heat_per_pulse_c", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0.05",
	  .min = 0, .max = 10, .unit = "C",
	  .doc = "temperature rise of one pulse at 100 % intensity (scales with intensity squared)" },
	{ .name = "cooling_tau_s", .type = RPMSD_COIL_KEY_DOUBLE, .def = "300",
	  .min = 1, .max = 36000, .unit = "s",
	  .doc = "time constant of cooling towards ambient" },
	{ .name = "pulse_log", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "CSV file written at close with every pulse (empty: none)" },
	{ .name = "pulse_log_max", .type = RPMSD_COIL_KEY_INT, .def = "100000",
	  .min = 1, .max = 10000000, .unit = "pulses",
	  .doc = "pulses kept for pulse_log (preallocated)" },
	{ .name = "fail_every", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 1000000, .unit = "pulses",
	  .doc = "test fault: every Nth pulse fails with EIO (0: never)" },
	{ .name = "overheat_after", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 1000000, .unit = "pulses",
	  .doc = "test fault: after N pulses the coil reports 100 C above ambient (0: never)" },
	{ .name = "never_ready", .type = RPMSD_COIL_KEY_BOOL, .def = "false", .unit = "",
	  .doc = "test fault: the stimulator never reports ready" },
	{ .name = "disarm_ms", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 100, .unit = "ms",
	  .doc = "test: the disarm op takes this long (a slow stimulator interface)" },
	{ .name = "estop_fifo", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "simulated emergency stop input: a FIFO that takes 'press T_NS' and 'release' lines (empty: none)" },
	{ .name = "estop_log", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "CSV written at close: each e-stop's edge, enable drop and host disarm times (empty: none)" },
	{ .name = "estop_log_max", .type = RPMSD_COIL_KEY_INT, .def = "10000",
	  .min = 1, .max = 1000000, .unit = "presses",
	  .doc = "e-stop presses kept for estop_log (preallocated)" },
	{ .name = "device_model", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "act as a serial stimulator of this name that confirms its output by read-back (empty: no device)" },
	{ .name = "confirm_delay_ms", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = -1, .max = 600000, .unit = "ms",
	  .doc = "device_model: an output asked for is confirmed this long after (-1: never)" },
	{ .name = "confirm_offset_pct", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0",
	  .min = -100, .max = 100, .unit = "%",
	  .doc = "device_model: the device applies and confirms the whole % asked plus this (test of a mismatch)" },
	{ .name = "envelope", .type = RPMSD_COIL_KEY_STRING, .def = "none", .unit = "",
	  .doc = "device_model: the limits it declares: none, or test-rapid2 (a test table, docs/plugins.md)" },
	{ .name = "confirm_latency_us", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0",
	  .min = 0, .max = 100000, .unit = "us",
	  .doc = "emulated trigger-to-confirm latency of each pulse, as a confirm line would measure it (0: no confirm line)" },
	{ .name = "confirm_latency_step_us", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0",
	  .min = 0, .max = 100000, .unit = "us",
	  .doc = "confirm_latency_us: pulse n (from 1) is confirmed ((n - 1) mod 4) times this later" },
	{ .name = "didt_per_pct", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0",
	  .min = 0, .max = 1000, .unit = "A/us",
	  .doc = "emulated di/dt read-back, intensity times this, reported late (with the next pulse) as a serial device's would be (0: none)" },
	{ .name = "patient_threshold_pct", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0",
	  .min = 0, .max = 100, .unit = "%",
	  .doc = "simulated patient: true motor threshold, the output whose median M-wave is 50 uV peak-to-peak (0: no patient)" },
	{ .name = "patient_slope_pct", .type = RPMSD_COIL_KEY_DOUBLE, .def = "2",
	  .min = 0.1, .max = 50, .unit = "%",
	  .doc = "simulated patient: spread of the sigmoid recruitment curve" },
	{ .name = "patient_max_uv", .type = RPMSD_COIL_KEY_DOUBLE, .def = "2000",
	  .min = 101, .max = 100000, .unit = "uV",
	  .doc = "simulated patient: maximum M-wave, peak-to-peak" },
	{ .name = "patient_noise", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0.2",
	  .min = 0, .max = 2, .unit = "",
	  .doc = "simulated patient: trial-to-trial noise, SD of the log amplitude" },
	{ .name = "patient_seed", .type = RPMSD_COIL_KEY_INT, .def = "1",
	  .min = 0, .max = 9007199254740991.0, .unit = "",
	  .doc = "simulated patient: seed of its noise (the same seed, the same draws)" },
	{ .name = "patient_channel", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 7, .unit = "",
	  .doc = "simulated patient: replayed EMG channel (0 = the first) the responses appear on" },
	{ .name = "patient_latency_ms", .type = RPMSD_COIL_KEY_DOUBLE, .def = "4",
	  .min = 0.5, .max = 30, .unit = "ms",
	  .doc = "simulated patient: M-wave onset after the pulse" },
	{ .name = "patient_artefact_uv", .type = RPMSD_COIL_KEY_DOUBLE, .def = "2000",
	  .min = 0, .max = 100000, .unit = "uV",
	  .doc = "simulated patient: stimulus artefact peak at the pulse (decays within 1.5 ms)" },
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

static int64_t sim_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One line from the FIFO: press drops the enable line first, then alerts. */
static void sim_estop_line(struct sim *s, const char *line)
{
	long long t;
	size_t n;

	if (sscanf(line, "press %lld", &t) == 1) {
		/* the line drops before anything else is done, as on real hardware */
		atomic_store(&s->armed, false);
		atomic_store(&s->estop, true);
		n = atomic_load(&s->estop_len);
		if (n < s->estop_cap) {
			s->estops[n].edge_ns = t;
			s->estops[n].drop_ns = sim_mono_ns();
			atomic_store(&s->estops[n].host_ns, 0);
			atomic_store(&s->estop_len, n + 1);
		}
		s->host->alert(s->host->ctx, RPMSD_COIL_ALERT_ESTOP, 0);
	} else if (strncmp(line, "release", 7) == 0) {
		atomic_store(&s->estop, false);
	}
}

static void *sim_watch(void *arg)
{
	struct sim *s = arg;
	struct pollfd fds[2] = {
		{ .fd = s->fifo_fd, .events = POLLIN },
		{ .fd = s->stop_fd, .events = POLLIN },
	};
	char buf[256];
	size_t used = 0;
	ssize_t got;
	char *nl;

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			break;
		}
		if (fds[1].revents) {
			break;
		}
		got = read(s->fifo_fd, buf + used, sizeof(buf) - 1 - used);
		if (got <= 0) {
			continue;
		}
		used += (size_t)got;
		buf[used] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			sim_estop_line(s, buf);
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used + 1);
		}
		if (used == sizeof(buf) - 1) {
			used = 0;	/* a line too long to be ours */
		}
	}
	return NULL;
}

/* Open the FIFO and start the watcher; nothing to do without estop_fifo. */
static int sim_estop_start(struct sim *s, long long cap)
{
	int ret;

	if (!s->estop_fifo[0]) {
		return 0;
	}
	s->estops = calloc((size_t)cap, sizeof(*s->estops));
	if (!s->estops) {
		return -ENOMEM;
	}
	s->estop_cap = (size_t)cap;
	/* O_RDWR: never blocks at open, and no EOF when a writer goes away */
	s->fifo_fd = open(s->estop_fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s->fifo_fd < 0) {
		ret = -errno;
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR, "key estop_fifo: cannot open '%s': %s",
			     s->estop_fifo, strerror(errno));
		return ret;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_fd < 0) {
		return -errno;
	}
	ret = pthread_create(&s->watcher, NULL, sim_watch, s);
	if (ret != 0) {
		return -ret;
	}
	s->watching = true;
	return 0;
}

static void sim_estop_stop(struct sim *s)
{
	uint64_t one = 1;

	if (s->watching) {
		if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one)) {
			s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR, "cannot stop the e-stop watcher");
		}
		pthread_join(s->watcher, NULL);
		s->watching = false;
	}
	if (s->stop_fd >= 0) {
		close(s->stop_fd);
	}
	if (s->fifo_fd >= 0) {
		close(s->fifo_fd);
	}
}

/*
 * fopen(@path, "w") for a regular file only: a FIFO there would block the
 * close (the daemon's shutdown) until someone reads it. O_NONBLOCK makes
 * that open fail or return at once.
 */
static FILE *sim_create(const char *path)
{
	struct stat st;
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) < 0) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
	}
	return f;
}

static void sim_write_estops(struct sim *s)
{
	size_t i, n = atomic_load(&s->estop_len);
	FILE *f = sim_create(s->estop_log_path);

	if (!f) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR, "cannot write estop_log %s: %s",
			     s->estop_log_path, strerror(errno));
		return;
	}
	fprintf(f, "edge_ns,enable_drop_ns,host_disarm_ns\n");
	for (i = 0; i < n; i++) {
		fprintf(f, "%lld,%lld,%lld\n", (long long)s->estops[i].edge_ns,
			(long long)s->estops[i].drop_ns,
			(long long)atomic_load(&s->estops[i].host_ns));
	}
	if (fclose(f) != 0) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR, "error writing estop_log %s",
			     s->estop_log_path);
	}
}

/* The simulated serial device's keys; nothing asked or confirmed yet. */
static int sim_device_open(struct sim *s, const struct rpmsd_coil_host *host)
{
	const char *model = "", *env = "";
	int ret;

	atomic_init(&s->dev_seq, 0);
	atomic_init(&s->dev_asked_pct, NAN);
	atomic_init(&s->dev_asked_ns, 0);
	atomic_init(&s->dev_before_pct, NAN);
	ret = host->get_string(host->ctx, "device_model", &model);
	if (ret == 0) {
		ret = host->get_int(host->ctx, "confirm_delay_ms", &s->confirm_delay_ms);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "confirm_offset_pct", &s->confirm_offset_pct);
	}
	if (ret == 0) {
		ret = host->get_string(host->ctx, "envelope", &env);
	}
	if (ret < 0) {
		return ret;
	}
	if (strlen(model) >= sizeof(s->device_model)) {
		host->log(host->ctx, RPMSD_COIL_LOG_ERR, "key device_model: longer than %zu characters",
			  sizeof(s->device_model) - 1);
		return -EINVAL;
	}
	strcpy(s->device_model, model);
	if (strcmp(env, "none") != 0 && strcmp(env, "test-rapid2") != 0) {
		host->log(host->ctx, RPMSD_COIL_LOG_ERR,
			  "key envelope: '%s' is not a preset (allowed: none, test-rapid2)", env);
		return -EINVAL;
	}
	s->have_env = model[0] && strcmp(env, "test-rapid2") == 0;
	s->env = (struct rpmsd_coil_envelope){
		.struct_size = sizeof(s->env),
		.model = s->device_model,
		.max_output_pct = 100.0,
		.rate_caps = sim_test_caps,
		.n_rate_caps = sizeof(sim_test_caps) / sizeof(sim_test_caps[0]),
		.min_train_gap_ms = 500.0,
		.single_pulse_max_hz = 1.0,
		.energy = sim_test_energy,
		.n_energy = sizeof(sim_test_energy) / sizeof(sim_test_energy[0]),
		.sustained_power_w = 1050.0,
	};
	return 0;
}

/* The simulated patient's keys; none without patient_threshold_pct. */
static int sim_patient_open(struct sim *s, const struct rpmsd_coil_host *host)
{
	struct simpatient_params prm = { 0 };
	long long seed = 0;
	double lat_ms = 0.0;
	char err[160];
	int ret;

	s->response_uv = NAN;
	ret = host->get_double(host->ctx, "patient_threshold_pct", &prm.threshold_pct);
	if (ret == 0) {
		ret = host->get_double(host->ctx, "patient_slope_pct", &prm.slope_pct);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "patient_max_uv", &prm.max_uv);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "patient_noise", &prm.noise);
	}
	if (ret == 0) {
		ret = host->get_int(host->ctx, "patient_seed", &seed);
	}
	if (ret == 0) {
		ret = host->get_int(host->ctx, "patient_channel", &s->patient_channel);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "patient_latency_ms", &lat_ms);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "patient_artefact_uv", &s->patient_artefact_uv);
	}
	if (ret < 0 || prm.threshold_pct == 0.0) {
		return ret;
	}
	s->patient_latency_us = lat_ms * 1000.0;
	prm.seed = (uint64_t)seed;
	ret = simpatient_create(&prm, &s->patient, err, sizeof(err));
	if (ret < 0) {
		host->log(host->ctx, RPMSD_COIL_LOG_ERR, "key patient_%s", err);
		return ret;
	}
	host->log(host->ctx, RPMSD_COIL_LOG_INFO,
		  "simulated patient: threshold %g %%, slope %g %%, max %g uV, noise %g, seed %lld, "
		  "channel %lld", prm.threshold_pct, prm.slope_pct, prm.max_uv, prm.noise, seed,
		  s->patient_channel);
	return 0;
}

static int sim_open(const struct rpmsd_coil_host *host, void **out)
{
	struct sim *s = calloc(1, sizeof(*s));
	const char *path = "", *fifo = "", *elog = "";
	long long cap = 0, ecap = 0;
	int ret;

	if (!s) {
		return -ENOMEM;
	}
	s->host = host;
	s->fifo_fd = -1;
	s->stop_fd = -1;
	atomic_init(&s->estop, false);
	atomic_init(&s->estop_len, 0);
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
	if (ret == 0) {
		ret = host->get_int(host->ctx, "disarm_ms", &s->disarm_ms);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "confirm_latency_us", &s->confirm_latency_us);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "confirm_latency_step_us", &s->confirm_step_us);
	}
	if (ret == 0) {
		ret = host->get_double(host->ctx, "didt_per_pct", &s->didt_per_pct);
	}
	if (ret == 0) {
		ret = host->get_string(host->ctx, "estop_fifo", &fifo);
	}
	if (ret == 0) {
		ret = host->get_string(host->ctx, "estop_log", &elog);
	}
	if (ret == 0) {
		ret = host->get_int(host->ctx, "estop_log_max", &ecap);
	}
	if (ret == 0) {
		ret = sim_device_open(s, host);
	}
	if (ret == 0) {
		ret = sim_patient_open(s, host);
	}
	if (ret < 0) {
		goto err_free;
	}
	if (strlen(path) >= sizeof(s->log_path) || strlen(fifo) >= sizeof(s->estop_fifo) ||
	    strlen(elog) >= sizeof(s->estop_log_path)) {
		ret = -ENAMETOOLONG;
		goto err_free;
	}
	strcpy(s->log_path, path);
	strcpy(s->estop_fifo, fifo);
	strcpy(s->estop_log_path, elog);
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
	atomic_init(&s->forced, 0);
	ret = sim_estop_start(s, ecap);
	if (ret < 0) {
		goto err_estop;
	}
	*out = s;
	return 0;

err_estop:
	sim_estop_stop(s);
	free(s->estops);
	free(s->log);
err_free:
	simpatient_destroy(s->patient);
	free(s);
	return ret;
}

static int sim_arm(void *h)
{
	struct sim *s = h;

	/* A pressed emergency stop holds the enable line low. */
	if (atomic_load(&s->estop)) {
		return -EPERM;
	}
	atomic_store(&s->armed, true);
	return 0;
}

static int sim_disarm(void *h)
{
	struct sim *s = h;
	size_t n = atomic_load(&s->estop_len);
	struct timespec d = { .tv_sec = 0, .tv_nsec = (long)(s->disarm_ms * 1000000) };

	atomic_store(&s->armed, false);
	if (s->disarm_ms > 0) {
		nanosleep(&d, NULL);	/* the bus transaction of a real stimulator */
	}
	/* the first disarm after a press: when the host acted on the alert */
	if (n > 0 && atomic_load(&s->estops[n - 1].host_ns) == 0) {
		atomic_store(&s->estops[n - 1].host_ns, sim_mono_ns());
	}
	return 0;
}

/* The supervisor's disarm from another thread: a flag, nothing else. */
static int sim_force_disarm(void *h)
{
	struct sim *s = h;

	atomic_store(&s->armed, false);
	atomic_fetch_add(&s->forced, 1);
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
	/* the patient's response to this pulse, at the output it fired at */
	s->response_uv = s->patient ? simpatient_response_uv(s->patient, intensity_pct) : NAN;
	s->prev_intensity_pct = s->last_intensity_pct;
	s->last_intensity_pct = intensity_pct;
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

/*
 * Delivery verification as a wired confirm line and a serial device's
 * late read-back would give it: the latency of the pulse just fired, and
 * the di/dt of the one before (a serial report comes after the pulse).
 */
static int sim_pulse_info(void *h, struct rpmsd_coil_pulse_info *info)
{
	struct sim *s = h;
	double us;

	info->confirm_ns = -1;
	info->readback_pulse = 0;
	info->didt_a_per_us = NAN;
	if (s->confirm_latency_us > 0.0 && s->fired > 0) {
		us = s->confirm_latency_us + s->confirm_step_us * (double)((s->fired - 1) % 4);
		info->confirm_ns = llround(us * 1000.0);
	}
	if (s->didt_per_pct > 0.0 && s->fired > 1) {
		info->readback_pulse = s->fired - 1;
		info->didt_a_per_us = s->prev_intensity_pct * s->didt_per_pct;
	}
	/* a host older than the sim_* members has no room for them */
	if (s->patient && info->struct_size >= offsetof(struct rpmsd_coil_pulse_info, sim_channel) +
							 sizeof(info->sim_channel)) {
		info->sim_response_uv = s->response_uv;
		info->sim_latency_us = s->patient_latency_us;
		info->sim_artefact_uv = s->patient_artefact_uv;
		info->sim_channel = (uint32_t)s->patient_channel;
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
	st->estop = atomic_load(&s->estop);
	return 0;
}

static void sim_write_log(struct sim *s)
{
	FILE *f;
	size_t i;

	f = sim_create(s->log_path);
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
	sim_estop_stop(s);
	if (atomic_load(&s->forced)) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_WARN, "force_disarm called %u time(s)",
			     atomic_load(&s->forced));
	}
	if (s->log_path[0]) {
		sim_write_log(s);
	}
	if (s->estop_log_path[0] && s->estops) {
		sim_write_estops(s);
	}
	free(s->estops);
	free(s->log);
	simpatient_destroy(s->patient);
	free(s);
}

/* The output confirmed at @now: the last ask once its delay has passed. */
static double sim_device_confirmed_at(struct sim *s, int64_t now)
{
	unsigned seq;
	double asked, before;
	int64_t at;

	do {
		seq = atomic_load(&s->dev_seq);
		asked = atomic_load(&s->dev_asked_pct);
		at = atomic_load(&s->dev_asked_ns);
		before = atomic_load(&s->dev_before_pct);
	} while ((seq & 1u) || seq != atomic_load(&s->dev_seq));
	if (isnan(asked) || s->confirm_delay_ms < 0 || now - at < s->confirm_delay_ms * 1000000LL) {
		return before;
	}
	return asked;
}

static int sim_set_intensity(void *h, double pct)
{
	struct sim *s = h;
	int64_t now;
	double before;

	if (!s->device_model[0]) {
		return -EOPNOTSUPP;
	}
	now = s->host->now_ns(s->host->ctx);
	before = sim_device_confirmed_at(s, now);
	/* the control thread is the only writer */
	atomic_fetch_add(&s->dev_seq, 1);
	atomic_store(&s->dev_before_pct, before);
	/* a device sets a whole %; this one applies the offset too */
	atomic_store(&s->dev_asked_pct, round(pct) + s->confirm_offset_pct);
	atomic_store(&s->dev_asked_ns, now);
	atomic_fetch_add(&s->dev_seq, 1);
	s->host->log(s->host->ctx, RPMSD_COIL_LOG_INFO, "device %s: asked for %g %%",
		     s->device_model, pct);
	return 0;
}

static int sim_confirmed_intensity(void *h, double *pct)
{
	struct sim *s = h;

	if (!s->device_model[0]) {
		return -EOPNOTSUPP;
	}
	*pct = sim_device_confirmed_at(s, s->host->now_ns(s->host->ctx));
	return 0;
}

static const struct rpmsd_coil_envelope *sim_envelope(void *h)
{
	struct sim *s = h;

	return s->have_env ? &s->env : NULL;
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
		.force_disarm = sim_force_disarm,
		.set_intensity = sim_set_intensity,
		.confirmed_intensity = sim_confirmed_intensity,
		.envelope = sim_envelope,
		.pulse_info = sim_pulse_info,
	},
};

RPMSD_COIL_PLUGIN(&sim_descriptor)
