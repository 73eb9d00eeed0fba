/* SPDX-License-Identifier: MIT */
/*
 * The core every serial stimulator plugin shares (magstim, magventure): a
 * coil plugin whose device is set up over a serial link and fired by a
 * TTL trigger line (plugins/ttl), or, for bench checks without GPIO, by
 * the serial fire command.
 *
 * The core owns the plugin's ops, the TTL lines, the tty and a link
 * thread of its own. A device driver (a small vtable, struct
 * stimdev_driver) knows the protocol: how to take remote control, read
 * the device's state, set its output, arm it and fire it. Every driver
 * call runs on the link thread and may block up to the reply time-out;
 * nothing serial runs on the stim thread: arm, disarm, pulse and status
 * only change or read atomics, the TTL lines, and kick the link thread.
 *
 * What the link thread does, in this order at each turn:
 *  - a fault latched by anyone: the TTL enable dropped (ttl_fault), the
 *    device disarmed over serial if it still answers, host->alert once;
 *  - the output asked for (set_intensity): written, then after the
 *    device's settle time read back; the read-back is what
 *    confirmed_intensity reports (NAN while settling);
 *  - arming asked for: the device armed, and ready within arm_timeout_ms
 *    or a fault; disarming: the device disarmed and seen disarmed;
 *  - serial fires asked for by pulse (fire = serial);
 *  - the keep-alive and status poll, at the driver's period (shorter
 *    while armed): no reply, a checksum or CRC error that repeats, an
 *    unplugged cable, loss of remote control, a device that disarmed
 *    itself, a missing coil, "replace coil", an error bit: each a fault.
 */
#ifndef RPMSD_STIMDEV_H
#define RPMSD_STIMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rpmsd/coil.h>

struct tty;

/** What the device said about itself in its last status read. */
struct stimdev_state {
	bool armed;		/* the device is armed (charging or charged) */
	bool ready;		/* armed and ready to fire */
	bool remote;		/* under remote control (always true where there is no such thing) */
	bool coil_present;
	bool replace_coil;	/* the device asks for the coil to be replaced */
	bool error;		/* an error bit */
	unsigned error_code;	/* the device's own code, 0 none or unknown */
	double power_pct;	/* output the device reports, NAN when this read carries none */
	double temperature_c;	/* coil temperature, NAN when this read carries none */
};

/**
 * A device driver. Every op runs on the link thread (open and close on
 * the main thread) and returns 0 or a negative errno, with @err filled:
 * -ETIMEDOUT no reply in time, -EBADMSG a checksum or CRC error,
 * -EIO/-ENODEV the link is gone, -EPROTO a reply of another protocol or
 * device, -EBUSY the device refused (a conflict).
 */
struct stimdev_driver {
	const char *name;		/* plugin name, for messages */
	unsigned baud;
	/* poll period while disarmed / armed (keep-alive and status), ms */
	unsigned poll_disarmed_ms, poll_armed_ms;
	/* read the driver's keys, allocate its state (main thread) */
	int (*open)(const struct rpmsd_coil_host *host, void **priv, char *err, size_t len);
	/* take remote control and check the device is what the keys say */
	int (*connect)(void *priv, struct tty *tty, struct stimdev_state *st, char *err,
		       size_t len);
	/* the keep-alive and status read; @full: also temperature and output */
	int (*poll)(void *priv, struct tty *tty, bool armed, bool full,
		    struct stimdev_state *st, char *err, size_t len);
	/* write the output (whole %) */
	int (*set_power)(void *priv, struct tty *tty, unsigned pct, char *err, size_t len);
	/* how long the device takes to settle from one output to another, ms */
	unsigned (*settle_ms)(void *priv, unsigned from_pct, unsigned to_pct);
	/* arm (@on) or disarm */
	int (*arm)(void *priv, struct tty *tty, bool on, char *err, size_t len);
	/* fire one pulse over the link (fire = serial) */
	int (*fire)(void *priv, struct tty *tty, char *err, size_t len);
	/* the device's limits as data, or NULL */
	const struct rpmsd_coil_envelope *(*envelope)(void *priv);
	/*
	 * Optional, and the one op not on the link thread: RT-safe, called
	 * on the stim thread by pulse_info. Take the oldest per-pulse report
	 * the device sent and the link thread has read (its own words, e.g.
	 * MagVenture's di/dt): the device's number of that pulse counted from
	 * 1 (the first report since open is pulse 1, as the core counts its
	 * pulses), and the di/dt in A/µs. Return false when none is waiting.
	 */
	bool (*readback)(void *priv, uint64_t *pulse, double *didt);
	/* give up remote control, best effort; free (main thread, NULL ok) */
	void (*close)(void *priv, struct tty *tty);
};

/** Keys of the core, after TTL_KEYS, before the driver's own (see STIMDEV_KEYS). */
#define STIMDEV_N_KEYS 8

/**
 * The core's keys as initialisers of struct rpmsd_coil_key, spliced into
 * each serial plugin's table after TTL_KEYS.
 */
#define STIMDEV_KEYS                                                                      \
	{ .name = "tty", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",               \
	  .doc = "the stimulator's serial port, e.g. /dev/ttyUSB0 or a /dev/serial/by-id/ link; required" }, \
	{ .name = "fire", .type = RPMSD_COIL_KEY_STRING, .def = "ttl", .unit = "",           \
	  .doc = "how pulses are fired: ttl (the trigger line) or serial (the device's fire command: bench checks only, timing within milliseconds)" }, \
	{ .name = "reply_timeout_ms", .type = RPMSD_COIL_KEY_INT, .def = "200",            \
	  .min = 20, .max = 5000, .unit = "ms",                                            \
	  .doc = "longest wait for a reply; a reply missed fault_after times in a row is a fault" }, \
	{ .name = "fault_after", .type = RPMSD_COIL_KEY_INT, .def = "3",                   \
	  .min = 1, .max = 20, .unit = "",                                                 \
	  .doc = "missing or corrupt replies in a row that make a fault" },                 \
	{ .name = "arm_timeout_ms", .type = RPMSD_COIL_KEY_INT, .def = "3000",             \
	  .min = 100, .max = 60000, .unit = "ms",                                          \
	  .doc = "longest wait from arming to the device reporting armed and ready" },      \
	{ .name = "confirm_margin_ms", .type = RPMSD_COIL_KEY_INT, .def = "300",          \
	  .min = 0, .max = 10000, .unit = "ms",                                            \
	  .doc = "wait past the device's settle time before reading the output back" },    \
	{ .name = "temperature_period_ms", .type = RPMSD_COIL_KEY_INT, .def = "1000",       \
	  .min = 100, .max = 60000, .unit = "ms",                                          \
	  .doc = "how often the coil temperature and the output are read back" },          \
	{ .name = "serial_fire_late_ms", .type = RPMSD_COIL_KEY_INT, .def = "20",          \
	  .min = 1, .max = 1000, .unit = "ms",                                             \
	  .doc = "fire = serial: a fire the link thread reaches later than this is not sent, and is a fault" }

/** The plugin handle. Opaque. */
struct stimdev;

/**
 * Open: the TTL lines (fire = ttl), the tty, the driver's connect (so a
 * bad port, another protocol or a silent device is an error at start-up
 * that names the key and what was heard), then the link thread.
 * Main thread. @return 0 or a negative errno, logged with its reason
 */
int stimdev_open(const struct stimdev_driver *drv, const struct rpmsd_coil_host *host,
		 void **out);

/** Ops for the descriptor: each takes the handle stimdev_open made. */
int stimdev_arm(void *handle);
/** Disarm: the enable line now, the device over serial next. RT-safe. */
int stimdev_disarm(void *handle);
/** Fire: the trigger line, or a serial fire queued. RT-safe. */
int stimdev_pulse(void *handle, double intensity_pct, uint32_t width_us);
/** Status: the device's state as the link thread last read it. RT-safe. */
int stimdev_status(void *handle, struct rpmsd_coil_status *st);
/** Stop the link thread, disarm, give up remote control, free. Accepts NULL. */
void stimdev_close(void *handle);
/** Drop the enable line without a lock (the supervisor's). */
int stimdev_force_disarm(void *handle);
/** Queue an output for the link thread. Main or control thread. */
int stimdev_set_intensity(void *handle, double pct);
/** The output the device confirmed by read-back, NAN none. RT-safe. */
int stimdev_confirmed_intensity(void *handle, double *pct);
/** The latched fault's cause, copied into @buf. RT-safe. */
size_t stimdev_alert_text(void *handle, char *buf, size_t len);
/**
 * Delivery verification: the trigger line's confirm latency (fire = ttl
 * with a confirm line) and the driver's oldest waiting per-pulse report
 * (readback). RT-safe, stim thread.
 */
int stimdev_pulse_info(void *handle, struct rpmsd_coil_pulse_info *info);
/** The driver's envelope. */
const struct rpmsd_coil_envelope *stimdev_envelope(void *handle);

/**
 * The ops of a serial stimulator plugin: its own open (which calls
 * stimdev_open with its driver), everything else the core's. Every
 * plugin on the core has the same ops, so they are written once here.
 */
#define STIMDEV_OPS(open_fn)                                            \
	{                                                               \
		.open = (open_fn),                                      \
		.arm = stimdev_arm,                                     \
		.disarm = stimdev_disarm,                               \
		.pulse = stimdev_pulse,                                 \
		.status = stimdev_status,                               \
		.close = stimdev_close,                                 \
		.force_disarm = stimdev_force_disarm,                   \
		.set_intensity = stimdev_set_intensity,                 \
		.confirmed_intensity = stimdev_confirmed_intensity,     \
		.envelope = stimdev_envelope,                           \
		.alert_text = stimdev_alert_text,                       \
		.pulse_info = stimdev_pulse_info,                       \
	}

#endif /* RPMSD_STIMDEV_H */
