/* SPDX-License-Identifier: MIT */
/*
 * TTL line layer shared by the coil plugins that fire a stimulator
 * through GPIO lines (libgpiod 1.6, v1 API): gpio, and the serial
 * stimulator plugins, which add a serial link of their own on top.
 *
 * It owns the lines of one chip and their roles: trigger (output,
 * required), enable (output, active only while armed), estop and ready
 * (inputs watched by a thread of its own) and confirm (input, waited for
 * after every pulse). See docs/plugins-gpio.md for the behaviour.
 *
 * Threads: ttl_open and ttl_close on the host's main thread; ttl_arm,
 * ttl_disarm, ttl_pulse, ttl_status and ttl_last_confirm_ns on the RT stim
 * thread; ttl_force_disarm on the host's supervisor; ttl_fault on any
 * thread (a plugin's serial thread). Nothing but open and close allocates,
 * blocks beyond the line operation and the pulse itself, or logs.
 */
#ifndef RPMSD_TTL_H
#define RPMSD_TTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rpmsd/coil.h>

/** The TTL lines of one open plugin. Opaque. */
struct ttl;

/** Number of entries TTL_KEYS expands to. */
#define TTL_N_KEYS 18

/**
 * The configuration keys the TTL layer reads, as initialisers of struct
 * rpmsd_coil_key, in their declared order. A plugin splices them into its
 * own key table, so every plugin firing through TTL declares exactly the
 * same keys:
 *
 *     static const struct rpmsd_coil_key my_keys[] = { TTL_KEYS, { .name = ... } };
 *
 * ttl_open reads them by these names through the host's getters.
 */
#define TTL_KEYS                                                                        \
	{ .name = "chip", .type = RPMSD_COIL_KEY_STRING, .def = "gpiochip0", .unit = "",      \
	  .doc = "GPIO chip: name (gpiochip0), path (/dev/gpiochip0), label or number" },      \
	{ .name = "trigger_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",       \
	  .doc = "line that fires the stimulator: offset (\"5\") or line name; required" },    \
	{ .name = "trigger_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false",          \
	  .unit = "",                                                                        \
	  .doc = "trigger input fires on a low pulse (default: TTL high pulse)" },             \
	{ .name = "enable_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",        \
	  .doc = "output held active only while armed, offset or name (empty: none)" },        \
	{ .name = "enable_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false",           \
	  .unit = "",                                                                        \
	  .doc = "enable is active low (default high: a released or unpowered line reads disabled)" }, \
	{ .name = "estop_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",         \
	  .doc = "emergency stop input, offset or name (empty: none)" },                       \
	{ .name = "estop_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false",            \
	  .unit = "",                                                                        \
	  .doc = "e-stop asserted when low (default high: a normally-closed contact to ground opens, or its wire breaks)" }, \
	{ .name = "estop_bias", .type = RPMSD_COIL_KEY_STRING, .def = "pull-up", .unit = "",  \
	  .doc = "e-stop bias: as-is, disable, pull-up or pull-down (default: a broken wire reads as a stop)" }, \
	{ .name = "ready_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",         \
	  .doc = "stimulator ready input, offset or name (empty: none, always ready)" },       \
	{ .name = "ready_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false",            \
	  .unit = "", .doc = "ready is active low" },                                          \
	{ .name = "ready_bias", .type = RPMSD_COIL_KEY_STRING, .def = "pull-down", .unit = "", \
	  .doc = "ready bias: as-is, disable, pull-up or pull-down (default: a broken wire reads not ready)" }, \
	{ .name = "confirm_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",       \
	  .doc = "trigger-out/loopback input confirming each pulse, offset or name (empty: none)" }, \
	{ .name = "confirm_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false",          \
	  .unit = "", .doc = "confirmation is a falling edge" },                               \
	{ .name = "confirm_bias", .type = RPMSD_COIL_KEY_STRING, .def = "pull-down",          \
	  .unit = "",                                                                        \
	  .doc = "confirm bias: as-is, disable, pull-up or pull-down (default: a broken wire never confirms)" }, \
	{ .name = "confirm_timeout_us", .type = RPMSD_COIL_KEY_INT, .def = "2000",            \
	  .min = 1, .max = 100000, .unit = "µs",                                             \
	  .doc = "longest wait from the trigger's rise to the confirm edge; missing it is a fault" }, \
	{ .name = "watcher_priority", .type = RPMSD_COIL_KEY_INT, .def = "95",                \
	  .min = 0, .max = 99, .unit = "",                                                   \
	  .doc = "SCHED_FIFO priority of the e-stop/ready watcher, above the stim thread (0: normal scheduling)" }, \
	{ .name = "estop_log", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",          \
	  .doc = "CSV file written at close with each e-stop edge and its latency (empty: none)" }, \
	{ .name = "estop_log_max", .type = RPMSD_COIL_KEY_INT, .def = "10000",                \
	  .min = 1, .max = 1000000, .unit = "events",                                        \
	  .doc = "e-stop latencies kept (preallocated)" }

/**
 * Read the TTL keys through @host's getters, open the chip, request the
 * lines (outputs inactive) and start the e-stop/ready watcher when either
 * input is configured. Logs the lines found (INFO) and configurations
 * that are not fail-safe (WARN) through host->log. Main thread.
 * @param host     the host the plugin was opened with; must outlive the ttl
 * @param out      receives the handle
 * @param err      always filled on failure: names the key, the value and
 *                 the problem (e.g. "key chip: cannot open GPIO chip ...")
 * @param err_len  size of @err
 * @return 0 or a negative errno; on failure nothing stays requested
 */
int ttl_open(const struct rpmsd_coil_host *host, struct ttl **out, char *err, size_t err_len);

/**
 * Raise the enable line and arm. Refused with -EPERM (and the e-stop
 * latched) while the e-stop input is asserted, -EIO once the watcher has
 * died. A successful arm clears the latched fault and e-stop. RT-safe.
 * @return 0 or a negative errno
 */
int ttl_arm(struct ttl *t);

/**
 * Drop the enable line and disarm. An error is latched as a fault too.
 * RT-safe.
 * @return 0 or a negative errno
 */
int ttl_disarm(struct ttl *t);

/**
 * Hold the trigger active for @width_us (sleeping from 100 µs up, busy
 * waiting below), then, with a confirm line, wait for its edge up to
 * confirm_timeout_us after the rise. Any failure drops enable and
 * latches the fault. RT-safe (stim thread).
 * @return 0, -EPERM when not armed, -ETIMEDOUT when unconfirmed, or a
 *         negative errno from a line operation
 */
int ttl_pulse(struct ttl *t, uint32_t width_us);

/**
 * Trigger-to-confirm latency of the last ttl_pulse: the confirm edge's
 * kernel timestamp minus the time the trigger write was issued, in ns.
 * RT-safe.
 * @return the latency, or -1 when the last pulse was not confirmed (no
 *         confirm line, a fault, or no pulse yet)
 */
int64_t ttl_last_confirm_ns(const struct ttl *t);

/**
 * Fill @st from the lines: ready (the input's level, true without a ready
 * line), estop (the input as it is now), fault and fault_code (the first
 * fault latched since the last arm); temperature_c is NAN. RT-safe.
 * @return 0 or a negative errno from reading an input
 */
int ttl_status(struct ttl *t, struct rpmsd_coil_status *st);

/**
 * Drop enable and trigger now, without the lock: for the host's
 * supervisor while the stim thread is hung, perhaps inside another ttl
 * call. RT-safe.
 * @return 0 or a negative errno
 */
int ttl_force_disarm(struct ttl *t);

/**
 * A fault found outside the lines (a plugin's serial thread: no reply,
 * the device disarmed itself, a cable gone): drop the enable line under
 * the same priority-inheriting lock as the watcher, disarm, latch @code
 * as the fault (the first one since the last arm is kept) and call
 * host->alert(RPMSD_COIL_ALERT_FAULT, @code). Call it once per cause: the
 * host publishes every alert. RT-safe; any thread.
 * @param code  a negative errno or a plugin code, not 0
 * @return true when the coil was armed
 */
bool ttl_fault(struct ttl *t, int code);

/**
 * Drop enable, stop the watcher, log the e-stop, ready and confirm
 * figures, write estop_log, release every line (outputs inactive) and
 * free. Main thread, after every thread of the plugin that may call
 * ttl_fault has been joined. Accepts NULL.
 */
void ttl_close(struct ttl *t);

#endif /* RPMSD_TTL_H */
