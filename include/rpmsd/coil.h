/* SPDX-License-Identifier: MIT */
/*
 * rpmsd coil plugin ABI.
 *
 * This is the only header a coil plugin includes. A plugin is a shared
 * object exporting one symbol, RPMSD_COIL_ENTRY_SYMBOL, a function that
 * returns a pointer to a constant descriptor. The host refuses a plugin
 * whose abi_major differs from its own and treats NULL optional ops as
 * "not supported".
 *
 * Threading contract:
 *  - open and close run on the main thread and may block, allocate and
 *    log.
 *  - arm, disarm, pulse and status run on the real-time stim thread, one
 *    at a time, so a disarm is ordered with the pulses around it and takes
 *    effect between two of them: they must not allocate, take a lock that
 *    is not priority-inheriting, log, or block for longer than the
 *    hardware operation itself (a GPIO line change, an SPI transfer). Do
 *    all set-up in open.
 *
 * Errors are reported as negative errno values. A pulse that returns an
 * error is a fault: the host disarms the coil and publishes the fault.
 *
 * Asynchronous inputs (an emergency stop button, a stimulator that drops
 * its ready line while armed) are watched by the plugin itself, in a
 * thread of its own started in open. On such an event the plugin drops
 * its enable line at once, without waiting for the host, then calls
 * rpmsd_coil_host.alert; the host disarms its gate and publishes the
 * alert. status.estop stays true while the stop is asserted.
 */
#ifndef RPMSD_COIL_H
#define RPMSD_COIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major version: a plugin built for another major is refused. */
#define RPMSD_COIL_ABI_MAJOR 1
/**
 * ABI minor version: additions only, detected through struct sizes.
 * 1.1 added rpmsd_coil_ops.force_disarm.
 * 1.2 added rpmsd_coil_ops.set_intensity, .confirmed_intensity,
 * .envelope and .alert_text, with struct rpmsd_coil_envelope and its
 * two table entries (struct rpmsd_coil_rate_cap, struct
 * rpmsd_coil_energy_point); then .pulse_info with struct
 * rpmsd_coil_pulse_info (delivery verification); then the sim_*
 * members at the end of struct rpmsd_coil_pulse_info (a simulated
 * patient's EMG response, for test rigs).
 */
#define RPMSD_COIL_ABI_MINOR 2

/** Name of the one symbol every plugin exports. */
#define RPMSD_COIL_ENTRY_SYMBOL "rpmsd_coil_entry"

/** Type of a configuration key a plugin declares. */
enum rpmsd_coil_key_type {
	RPMSD_COIL_KEY_BOOL = 1,
	RPMSD_COIL_KEY_INT,
	RPMSD_COIL_KEY_DOUBLE,
	RPMSD_COIL_KEY_STRING,
};

/**
 * One configuration key of a plugin, read from the config section
 * [coil.<name>]. The host validates the section against this table (type
 * and range) before open is called, so open only sees valid values.
 */
struct rpmsd_coil_key {
	const char *name;		/**< key name, [a-z0-9_]+ */
	enum rpmsd_coil_key_type type;	/**< value type */
	const char *def;		/**< default value as text, never NULL */
	double min;			/**< inclusive minimum (INT, DOUBLE) */
	double max;			/**< inclusive maximum (INT, DOUBLE) */
	const char *unit;		/**< unit for documentation, "" if none */
	const char *doc;		/**< one-line meaning */
};

/** What a plugin reports through rpmsd_coil_host.alert. */
enum rpmsd_coil_alert {
	RPMSD_COIL_ALERT_ESTOP = 1,	/**< emergency stop input asserted */
	RPMSD_COIL_ALERT_FAULT = 2,	/**< a fault found between pulses */
};

/** Log levels for rpmsd_coil_host.log. */
enum rpmsd_coil_log_level {
	RPMSD_COIL_LOG_ERR = 3,
	RPMSD_COIL_LOG_WARN = 4,
	RPMSD_COIL_LOG_INFO = 6,
	RPMSD_COIL_LOG_DEBUG = 7,
};

/**
 * What the host gives a plugin at open. Valid until close returns.
 * The getters return the validated value of a declared key (the default
 * when the config does not set it) and -ENOENT for an undeclared key.
 */
struct rpmsd_coil_host {
	size_t struct_size;	/**< sizeof(struct rpmsd_coil_host) of the host */
	void *ctx;		/**< opaque host context, passed back to every call */
	/** Read a BOOL key. */
	int (*get_bool)(void *ctx, const char *key, bool *out);
	/** Read an INT key. */
	int (*get_int)(void *ctx, const char *key, long long *out);
	/** Read a DOUBLE key. */
	int (*get_double)(void *ctx, const char *key, double *out);
	/** Read a STRING key; the string lives as long as the host struct. */
	int (*get_string)(void *ctx, const char *key, const char **out);
	/** Session clock in ns (monotonic; virtual time in fast replay). RT-safe. */
	int64_t (*now_ns)(void *ctx);
	/** Log a line. Not RT-safe: never call from pulse or status. */
	void (*log)(void *ctx, enum rpmsd_coil_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
	/**
	 * Ask the host to disarm now, from any thread, the plugin's own
	 * input watcher included. RT-safe and async-signal-safe: it only
	 * sets a flag and wakes the stim thread, which disarms the gate,
	 * calls disarm and publishes the alert with @code (a negative errno
	 * or a plugin code). Drop the enable line yourself before calling it.
	 */
	void (*alert)(void *ctx, enum rpmsd_coil_alert what, int code);
};

/** Coil and stimulator state, filled by the status op. */
struct rpmsd_coil_status {
	double temperature_c;	/**< coil temperature, NAN when unknown */
	bool ready;		/**< stimulator ready to fire */
	bool fault;		/**< a fault is latched */
	int fault_code;		/**< plugin-specific code, 0 when no fault */
	bool estop;		/**< emergency stop input asserted now */
};

/**
 * (ABI 1.2) One step of a device's rate cap: at outputs up to and
 * including @max_output_pct (and above the step before), a repetitive
 * train may run at up to @max_rate_hz. Array element: its layout never
 * changes.
 */
struct rpmsd_coil_rate_cap {
	double max_output_pct;	/**< upper edge of this step, % of maximum output */
	double max_rate_hz;	/**< highest pulse rate of a train at these outputs */
};

/**
 * (ABI 1.2) One point of a device's energy-per-pulse curve. Array
 * element: its layout never changes.
 */
struct rpmsd_coil_energy_point {
	double output_pct;	/**< % of maximum output */
	double joules;		/**< energy one pulse at that output takes, J */
};

/**
 * (ABI 1.2) The connected device's own limits, as data (the envelope op).
 * The host copies it once after open into the gate's own memory and holds
 * every protocol and every pulse to it besides rpmsd's [safety] limits
 * (docs/safety.md, "The device's envelope"). A zero (or empty table) means
 * "the device sets no such limit". How the host reads it:
 *  - max_output_pct: no pulse above it (100, or 110 on a Magstim in
 *    enhanced-power mode).
 *  - rate_caps: steps sorted by strictly rising max_output_pct; a train at
 *    output x may run at the max_rate_hz of the first step with
 *    x <= max_output_pct; above the last step no train may run at all. A
 *    standard 240 V Rapid2 "25 Hz only up to 61 %" is a step
 *    { 61, 25 } followed by a lower-rate step.
 *  - min_train_gap_ms: last pulse of a train to the first of the next
 *    (Magstim Rapid2: 500 ms).
 *  - single_pulse_max_hz: single pulses (not part of a train) no closer
 *    than 1/single_pulse_max_hz (Rapid2: 1 Hz).
 *  - energy, n_energy, sustained_power_w: an energy model (MagPy's model
 *    of the Rapid2, not a Magstim document): J(x) is interpolated
 *    linearly between points sorted by strictly rising output_pct (below
 *    the first: the first's J; above the last: no train), P is
 *    sustained_power_w, and a train of N pulses at f Hz and output x
 *    must keep on-time per minute <= 60 * P / (f * J(x)) s (MagPy:
 *    63000 / (f J) with P = 1050 W) and be followed by a wait of at least
 *    N * (f * J(x) - P) / (P * f) s before the next train.
 *  - coil_cutoff_c: the device stops at this coil temperature; the gate
 *    holds the coil [safety] device_temp_margin_c below it (and below
 *    max_coil_temp_c), and refuses a pulse while the temperature is unknown.
 * The tables may hold at most 128 entries each (a Rapid2's caps and
 * energy at every whole per cent fit). Valid while the plugin is
 * open; the host reads it only on the main thread, right after open.
 */
struct rpmsd_coil_envelope {
	size_t struct_size;		/**< sizeof(struct rpmsd_coil_envelope) of the plugin */
	const char *model;		/**< device model name, for messages, never NULL */
	double max_output_pct;		/**< highest output, %; 0: 100 */
	const struct rpmsd_coil_rate_cap *rate_caps;	/**< rate cap steps */
	size_t n_rate_caps;		/**< entries in rate_caps; 0: no cap by output */
	double min_train_gap_ms;	/**< between trains, ms; 0: none */
	double single_pulse_max_hz;	/**< single-pulse rate, Hz; 0: none */
	const struct rpmsd_coil_energy_point *energy;	/**< energy per pulse by output */
	size_t n_energy;		/**< entries in energy; 0: no energy model */
	double sustained_power_w;	/**< power the device sustains, W (MagPy Rapid2: 1050) */
	double coil_cutoff_c;		/**< the device's own coil temperature cut-off, °C; 0: none known */
};

/**
 * (ABI 1.2) What a plugin knows about a delivered pulse (the pulse_info
 * op). It carries its own size and may grow at its end: the host sets
 * @struct_size to its own sizeof and a plugin writes no member that does
 * not fit in it (the four below are the first version: always there).
 *
 * Two different things arrive at different times, so they are apart:
 *  - @confirm_ns belongs to the pulse just fired: the pulse op has already
 *    waited for the device's trigger-out on the confirm line (TTL), so its
 *    latency is known when the op returns.
 *  - The device's own read-back of a pulse (MagVenture's di/dt report)
 *    comes over the serial link milliseconds after the pulse, read by the
 *    plugin's link thread at its next poll: it can never belong to the
 *    pulse just fired. So it is given with the number of the pulse it
 *    belongs to (@readback_pulse: the plugin's count of pulse ops that
 *    returned 0 since open, 1 the first), at most one per call, oldest
 *    first, on a later call. The host names that pulse in its event; a
 *    read-back still queued when the session ends is not published.
 */
struct rpmsd_coil_pulse_info {
	size_t struct_size;	/**< sizeof(struct rpmsd_coil_pulse_info) of the host */
	/** This pulse: trigger to confirm edge, ns; -1 none (no confirm line, serial fire). */
	int64_t confirm_ns;
	/** The pulse @didt_a_per_us belongs to (1 = the first since open); 0: no read-back. */
	uint64_t readback_pulse;
	/** Device read-back of pulse @readback_pulse: realised di/dt, A/µs; NAN none. */
	double didt_a_per_us;
	/*
	 * A simulated patient's response to this pulse (the sim plugin's; a
	 * real device knows nothing of the kind and leaves these alone). The
	 * host mixes it into a replayed EMG (docs/plugins-sim.md): the
	 * stimulus artefact at the pulse's sample, then a biphasic M-wave of
	 * @sim_response_uv peak-to-peak @sim_latency_us later on channel
	 * @sim_channel. Only when struct_size holds them.
	 */
	/** M-wave peak-to-peak, µV; NAN (the host's default): no simulated response. */
	double sim_response_uv;
	/** M-wave onset after the pulse, µs. */
	double sim_latency_us;
	/** Stimulus artefact peak, µV (0: none). */
	double sim_artefact_uv;
	/** EMG channel (0 = the first) the response appears on. */
	uint32_t sim_channel;
};

/** Operations of a plugin. open, pulse and close are required. */
struct rpmsd_coil_ops {
	/**
	 * Open the device and allocate everything the plugin needs.
	 * @param host  host services and configuration accessors
	 * @param out   receives the plugin's handle
	 * @return 0 or a negative errno
	 */
	int (*open)(const struct rpmsd_coil_host *host, void **out);
	/** Make the coil ready to fire (enable line active). RT-safe. Optional. */
	int (*arm)(void *handle);
	/** Make the coil unable to fire (enable line inactive). RT-safe.
	 * Optional but strongly recommended: the host calls it on every fault
	 * and exit. An error here is a fault too. */
	int (*disarm)(void *handle);
	/**
	 * Fire one pulse now. RT-safe: no allocation, no blocking.
	 * @param intensity_pct  intensity in % of maximum stimulator output
	 * @param width_us       pulse (trigger) width in microseconds
	 * @return 0 or a negative errno (a fault)
	 */
	int (*pulse)(void *handle, double intensity_pct, uint32_t width_us);
	/** Read the coil status. RT-safe. Optional. */
	int (*status)(void *handle, struct rpmsd_coil_status *st);
	/** Disarm if needed and free everything (main thread). Accepts NULL. */
	void (*close)(void *handle);
	/**
	 * (ABI 1.1, optional) Make the coil unable to fire now, called by the
	 * host's supervisor on another thread because the stim thread is hung,
	 * possibly inside another op of this plugin. Drop the enable (and
	 * trigger) line directly: take no lock another op may hold, do not
	 * allocate, log or block. Without it the host can only stop feeding
	 * the service watchdog.
	 * @return 0 or a negative errno
	 */
	int (*force_disarm)(void *handle);
	/**
	 * (ABI 1.2, optional) Ask the device for output @pct % (main or
	 * control thread, never the stim thread; concurrently with the stim
	 * thread's ops). Must not block for long: queue it for the plugin's
	 * own link thread, which writes it, waits the device's settle time and
	 * reads it back; confirmed_intensity reports the result. The host
	 * calls it after open and after each change of stim.intensity_pct.
	 * @return 0 (queued) or a negative errno
	 */
	int (*set_intensity)(void *handle, double pct);
	/**
	 * (ABI 1.2, optional) The output the device last confirmed by
	 * read-back, in @pct: NAN when it has confirmed none yet. RT-safe, any
	 * thread (the stim thread calls it before every pulse). The host calls
	 * it once on the main thread after open: -EOPNOTSUPP there means the
	 * connected device cannot confirm its output and the gate's
	 * device_intensity rule is not applied. Any other error before a
	 * pulse counts as "not confirmed".
	 * @return 0 or a negative errno
	 */
	int (*confirmed_intensity)(void *handle, double *pct);
	/**
	 * (ABI 1.2, optional) The connected device's limits (struct
	 * rpmsd_coil_envelope), or NULL when it has none to declare. Main
	 * thread, after open; the result must stay valid until close.
	 */
	const struct rpmsd_coil_envelope *(*envelope)(void *handle);
	/**
	 * (ABI 1.2, optional) Why the plugin raised its last alert, as text
	 * for the safety event (e.g. "status: no reply 3 times in a row"):
	 * copied into @buf, NUL-terminated, cut to @len. RT-safe: the host
	 * calls it on the stim thread when it takes the alert. Write the text
	 * before calling rpmsd_coil_host.alert.
	 * @return the length copied, 0 when there is nothing to say
	 */
	size_t (*alert_text)(void *handle, char *buf, size_t len);
	/**
	 * (ABI 1.2, optional) Delivery verification: fill @info (struct
	 * rpmsd_coil_pulse_info; members beyond info->struct_size are not
	 * there) for the pulse op that just returned 0. RT-safe: the host
	 * calls it on the stim thread right after every successful pulse and
	 * at no other time. The plugin sets every member it has room for
	 * (-1, 0, NAN when it knows nothing).
	 * @return 0 or a negative errno (the host then records nothing; not a fault)
	 */
	int (*pulse_info)(void *handle, struct rpmsd_coil_pulse_info *info);
};

/** The descriptor a plugin's entry function returns. */
struct rpmsd_coil_descriptor {
	uint32_t abi_major;		/**< RPMSD_COIL_ABI_MAJOR at build time */
	uint32_t abi_minor;		/**< RPMSD_COIL_ABI_MINOR at build time */
	size_t struct_size;		/**< sizeof(struct rpmsd_coil_descriptor) */
	const char *name;		/**< short name, matches the file name */
	const char *description;	/**< one line for humans */
	const struct rpmsd_coil_key *keys;	/**< declared config keys */
	size_t n_keys;			/**< number of entries in keys */
	struct rpmsd_coil_ops ops;	/**< operations */
};

/** Signature of the exported entry function. */
typedef const struct rpmsd_coil_descriptor *(*rpmsd_coil_entry_fn)(void);

/** Declare the entry function in a plugin: RPMSD_COIL_PLUGIN(&my_desc); */
#define RPMSD_COIL_PLUGIN(desc_ptr)                                            \
	__attribute__((visibility("default"))) const struct rpmsd_coil_descriptor \
		*rpmsd_coil_entry(void);                                       \
	const struct rpmsd_coil_descriptor *rpmsd_coil_entry(void)             \
	{                                                                      \
		return (desc_ptr);                                             \
	}

#ifdef __cplusplus
}
#endif

#endif /* RPMSD_COIL_H */
