/* SPDX-License-Identifier: MIT */
/*
 * Coil plugin host: finds a plugin by name, dlopens it, checks its ABI and
 * ops, validates its config section and opens it.
 *
 * Search order for "<name>.so": daemon.plugin_dir, each directory of
 * $RPMSD_PLUGIN_PATH (colon-separated), the build tree's plugins/<name>/
 * when rpmsd runs from its build tree, then the installed plugin
 * directory. The first file that exists is used; a file that fails to load
 * is an error, never skipped.
 */
#ifndef RPMSD_PLUGIN_H
#define RPMSD_PLUGIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <rpmsd/coil.h>

struct rpmsd_config;
struct safety_device;
struct sclock;

struct plugin;

/**
 * Find and dlopen plugin @name and check its descriptor, without opening
 * it. For --check-config and the loader tests.
 * @param err  receives a message naming the plugin and the problem
 * @return 0, -ENOENT (not found), -ENOEXEC (bad ABI or descriptor), -ENOMEM
 */
int plugin_load(const struct rpmsd_config *cfg, const char *name,
		struct plugin **out, char *err, size_t errlen);

/**
 * Validate the config's [coil.<name>] section against the plugin's keys,
 * then call its open op.
 * @return 0, -EINVAL (config), or the plugin's negative errno
 */
int plugin_open(struct plugin *p, const struct rpmsd_config *cfg,
		struct sclock *clock, char *err, size_t errlen);

/** Disarm, close and dlclose. Accepts NULL. */
void plugin_unload(struct plugin *p);

/** The plugin's descriptor. */
const struct rpmsd_coil_descriptor *plugin_descriptor(const struct plugin *p);

/** Full path of the loaded file. */
const char *plugin_path(const struct plugin *p);

/** Arm (no-op returning 0 if the plugin has no arm op). */
int plugin_arm(struct plugin *p);

/** Disarm (no-op returning 0 if the plugin has no disarm op). */
int plugin_disarm(struct plugin *p);

/** Fire one pulse. RT-safe. Call only with a SAFETY_OK verdict. */
/**
 * The supervisor's disarm while the stim thread is hung (any thread).
 * @return 0, -EOPNOTSUPP when the plugin has no force_disarm (ABI 1.0, or
 * NULL), or the plugin's error
 */
int plugin_force_disarm(struct plugin *p);

int plugin_pulse(struct plugin *p, double intensity_pct, uint32_t width_us);

/** True when the plugin has a status op. */
bool plugin_has_status(const struct plugin *p);

/**
 * Read the coil status. RT-safe. Call only when plugin_has_status().
 * @return 0, or the plugin's error (whatever it is, the status is in doubt)
 */
int plugin_status(struct plugin *p, struct rpmsd_coil_status *st);

/**
 * Wake *@word (sclock_kick) whenever the plugin raises an alert. Set it
 * before the thread that waits on it starts. RT-safe.
 */
void plugin_set_wake(struct plugin *p, atomic_uint *word);

/**
 * Take the alerts the plugin raised since the last call (any thread may
 * have raised them). RT-safe.
 * @return false when there were none; else @what (an e-stop wins over a
 *         fault) and the last @code given
 */
bool plugin_take_alert(struct plugin *p, enum rpmsd_coil_alert *what, int *code);

/**
 * The plugin's own words for its last alert (ABI 1.2 alert_text), in
 * @buf; "" when it has none. RT-safe.
 */
void plugin_alert_text(struct plugin *p, char *buf, size_t len);

/**
 * True when the plugin may declare a device (ABI 1.2 envelope or
 * confirmed_intensity op within its struct_size): --check-config opens
 * such a plugin to ask it (session_check). Any thread.
 */
bool plugin_has_envelope(const struct plugin *p);

/**
 * The connected device's envelope as plugin_open copied it (ABI 1.2:
 * envelope, and confirmed_intensity answering anything but -EOPNOTSUPP
 * there, which sets confirms), or NULL: no device rules. Constant after
 * open; any thread.
 */
const struct safety_device *plugin_device(const struct plugin *p);

/**
 * Ask the device for output @pct (ABI 1.2 set_intensity). Main or control
 * thread, never the stim thread.
 * @return 0, -EOPNOTSUPP without the op, or the plugin's error
 */
int plugin_set_intensity(struct plugin *p, double pct);

/**
 * The output the device last confirmed (ABI 1.2 confirmed_intensity):
 * NAN when none, when the op fails, or without the op. RT-safe.
 */
double plugin_confirmed_intensity(struct plugin *p);

/*
 * Delivery verification (ABI 1.2 pulse_info): the trigger-to-confirm
 * latencies of the pulses, in fixed bins: 10 µs wide below 2 ms, 1 ms wide
 * from 2 ms to 100 ms (confirm_timeout_us's range), then one bin for
 * longer. Counted on the stim thread (an increment each), read by the
 * session summary.
 */
#define PLUGIN_CONFIRM_FINE_US 10
#define PLUGIN_CONFIRM_FINE_BINS 200	/* 0-2 ms */
#define PLUGIN_CONFIRM_COARSE_US 1000
#define PLUGIN_CONFIRM_COARSE_BINS 98	/* 2-100 ms */
#define PLUGIN_CONFIRM_BINS (PLUGIN_CONFIRM_FINE_BINS + PLUGIN_CONFIRM_COARSE_BINS + 1)

/** What the pulse event gets from plugin_pulse_verify. */
struct plugin_pulse_verify {
	int64_t confirm_ns;	/* this pulse's trigger to confirm, ns; -1 none */
	bool has_didt;		/* a device read-back of an earlier pulse came */
	double didt;		/* its di/dt, A/µs */
	uint32_t didt_train_id;	/* the pulse it belongs to */
	uint32_t didt_index;
	/* a simulated patient's response to this pulse (sim plugin); NAN none */
	double sim_response_uv;
	double sim_latency_us;
	double sim_artefact_uv;
	uint32_t sim_channel;
};

/** The latency histogram and counts, for the session summary. */
struct plugin_confirm_stats {
	bool supported;		/* the plugin has pulse_info */
	uint64_t confirmed;	/* pulses with a latency */
	uint64_t unconfirmed;	/* pulses without one (no confirm line, serial fire) */
	int64_t max_ns;		/* the longest latency, ns */
	uint64_t didt;		/* device read-backs matched to their pulse */
	uint64_t bins[PLUGIN_CONFIRM_BINS];
};

/**
 * Right after a plugin_pulse that returned 0, on the stim thread: record
 * the pulse as @train_id/@index, ask the plugin's pulse_info (ABI 1.2)
 * and fill @out (confirm_ns -1 and no di/dt without the op, on its error,
 * or for a read-back of a pulse no longer remembered: the last 256 are).
 * Counts the latency into the histogram. RT-safe: no allocation, no lock.
 */
void plugin_pulse_verify(struct plugin *p, uint32_t train_id, uint32_t index,
			 struct plugin_pulse_verify *out);

/** Copy the latency histogram and counts (after the stim thread stopped). */
void plugin_confirm_stats(const struct plugin *p, struct plugin_confirm_stats *st);

/** Lower and upper edge of histogram bin @i, µs (upper INFINITY for the last). */
void plugin_confirm_bin(unsigned i, double *lo_us, double *hi_us);

/** Print the plugin's keys as an INI [coil.<name>] section with docs. */
void plugin_write_keys(const struct plugin *p, FILE *f);

#endif /* RPMSD_PLUGIN_H */
