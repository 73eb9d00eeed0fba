/* SPDX-License-Identifier: MIT */
/*
 * The stim thread: takes requests from the policy, schedules each pulse at
 * an absolute session time, asks the safety gate about every single pulse
 * just before it fires, and only then calls the coil plugin.
 *
 * A refused pulse ends its train (the rest is dropped, never resumed
 * later). A plugin error on pulse is a fault: the gate and the coil are
 * disarmed at once. Every pulse, refusal, fault and arm state change is an
 * event in the stim thread's own ring. Repeated refusals of one rule are
 * published as the first one and then one summary per second at most,
 * and never take the half of the ring kept for pulses and state changes.
 */
#ifndef RPMSD_STIM_H
#define RPMSD_STIM_H

#include <stdbool.h>
#include <stdint.h>

#include "safety.h"

struct fresh;
struct plugin;
struct ring;
struct rpmsd_config;
struct sclock;
struct stim_request;

/** Counters for the session summary. */
struct stim_stats {
	/*
	 * Requests taken (closed loop: one per burst onset that asked; open
	 * loop: one per train, and one more each time a refusal cut one short).
	 */
	uint64_t requests;
	uint64_t pulses;			/* pulses delivered */
	uint64_t trains_started;		/* trains whose first pulse was delivered */
	/*
	 * Of those, trains that delivered every pulse they asked for (an
	 * open-loop count's last train may ask for fewer than the protocol's);
	 * the others were cut short (a refusal, a fault, a disarm, the stop).
	 */
	uint64_t trains_whole;
	uint64_t refusals;			/* refusals (published one by one or in summaries) */
	uint64_t refused_by_rule[SAFETY_RULE_COUNT];	/* refusal events per rule */
	/*
	 * Pulses requested and not delivered, per rule, each counted once: in
	 * open loop what the session's count did not deliver, when it ends.
	 */
	uint64_t dropped_by_rule[SAFETY_RULE_COUNT];
	uint64_t refusals_single;		/* published one by one on rpms.safety */
	uint64_t summaries;			/* rpms.safety summaries published */
	uint64_t refusals_summarised;		/* refusals counted in them */
	uint64_t faults;			/* plugin errors and alerts */
	uint64_t estops;			/* emergency stops */
	uint64_t dropped_at_stop;		/* pulses pending when stopped */
};

struct fresh;
struct stim;

/** Which coil a session fires (docs/sham.md). */
enum stim_coil {
	STIM_COIL_ACTIVE = 0,
	STIM_COIL_SHAM,
	STIM_COILS,
};

/**
 * Create the stim stage. @plugin must be open; it stays owned by the caller.
 * @return 0, -ENOMEM, -EINVAL
 */
int stim_create(const struct rpmsd_config *cfg, struct sclock *clock,
		struct plugin *plugin, struct stim **out);

/** Stop if running, free. Does not unload the plugin. Accepts NULL. */
void stim_destroy(struct stim *s);

/**
 * Start the thread at SCHED_FIFO @priority (0: normal scheduling), pinned
 * to CPU @cpu (-1: not pinned).
 * @param got_rt  false when the real-time policy was refused
 * @return 0, or -errno from pthread_create (-EINVAL: @cpu not allowed)
 */
int stim_start(struct stim *s, int priority, int cpu, bool *got_rt);

/**
 * CLOCK_MONOTONIC time (ns) at which the stim thread last went round its
 * loop; it goes round at least every daemon.heartbeat_timeout_ms / 4 in
 * paced time. For the supervisor (any thread).
 */
int64_t stim_heartbeat(const struct stim *s);

/**
 * The supervisor found an RT thread hung: disarm (through the stim thread,
 * if it still runs) and refuse every arm request from now on. @reason is
 * a string literal. Any thread.
 */
void stim_lock_out(struct stim *s, const char *reason);

/**
 * daemon.test_hooks only: make the thread hang when it takes this command,
 * as if stuck in a driver (no heartbeat, the coil left as it is) until
 * stim_stop. Through the command ring.
 * @return 0, or -ENOSPC when the ring is full
 */
int stim_test_stall(struct stim *s);

/**
 * Disarm, drop whatever is pending, and join the thread. The coil is
 * disarmed when this returns.
 */
void stim_stop(struct stim *s);

/**
 * Post a request (acquire thread only). RT-safe.
 * @return 0, or -EBUSY when the mailbox is full (nothing posted)
 */
int stim_post(struct stim *s, const struct stim_request *req);

/**
 * Ask the stim thread to disarm (any thread, RT-safe, never fails: a
 * shared word, not a command, so it works with the command ring full and
 * never waits behind an arm). It ends the request in progress and every
 * one waiting (each refused as disarmed), even when an arm follows at
 * once: after an arm only new requests fire. An arm posted before it and
 * not yet applied is dropped.
 * @param reason  a string with static storage (it is kept, not copied)
 */
void stim_disarm(struct stim *s, const char *reason);

/**
 * Ask the stim thread to arm, through its command ring (any thread,
 * RT-safe). The stim thread decides (ledger, e-stop, lock-out, coil
 * status); stim_arm_result says what it came to once its attempts reach
 * @ticket.
 * @param reason  a string with static storage (it is kept, not copied)
 * @param ticket  receives this command's number, or NULL
 * @return 0, or -ENOSPC when the command ring is full (nothing posted)
 */
int stim_arm(struct stim *s, const char *reason, unsigned *ticket);

/** True when no train is running and no request is waiting. */
bool stim_idle(const struct stim *s);

/** Number of pulses delivered so far (atomic; for blanking and heartbeats). */
uint64_t stim_pulse_count(const struct stim *s);

/**
 * The sampling rate of the EMG, before stim_start: the sample clock below
 * counts in its samples. 0 (the default): pulses have no sample.
 */
void stim_set_sample_rate(struct stim *s, double rate_hz);

/**
 * The sample clock (acquire thread, RT-safe, once per block): sample k of
 * the EMG is at session time @t0_ns + k / rate. Each pulse is placed on
 * it at its firing time (rpms.stim sample_at_fire, stim_pulse_sample).
 */
void stim_set_sample_clock(struct stim *s, int64_t t0_ns);

/**
 * The sample whose period holds the firing time of pulse @n (1 for the
 * first pulse, up to stim_pulse_count()), for the artefact blank; UINT64_MAX
 * when unknown (no sample clock, or pulse @n too far back). Any thread.
 */
uint64_t stim_pulse_sample(const struct stim *s, uint64_t n);

/** A simulated patient's response to a pulse (coil ABI 1.2 pulse_info's sim_*). */
struct stim_response {
	double uv;		/* M-wave peak-to-peak, µV */
	double latency_us;	/* its onset after the pulse */
	double artefact_uv;	/* stimulus artefact peak, µV */
	unsigned channel;	/* EMG channel it appears on */
};

/**
 * The simulated response to pulse @n (1 for the first, as
 * stim_pulse_sample), from the sim plugin's simulated patient: true with
 * @out filled, false when the plugin gave none or pulse @n is unknown or
 * too far back. Any thread (the acquire thread mixes it into a replay).
 */
bool stim_pulse_response(const struct stim *s, uint64_t n, struct stim_response *out);

/** True when the gate is armed (atomic snapshot). */
bool stim_armed(const struct stim *s);

/**
 * Disarms applied so far, whatever their cause (atomic): a change tells
 * the open-loop schedule that the coil was disarmed, even if it was armed
 * again before anyone looked at stim_armed().
 */
unsigned stim_disarms(const struct stim *s);

/**
 * Before stim_start: @day_pulses were delivered today in earlier runs (the
 * ledger's count), and that many are recorded.
 */
void stim_start_day(struct stim *s, uint64_t day_pulses);

/**
 * The ledger on disk now counts @recorded pulses for today; @new_day when
 * it was started afresh for a new calendar day. Main thread.
 */
void stim_set_ledger(struct stim *s, uint64_t recorded, bool new_day);

/**
 * Before stim_start, after stim_start_day: an earlier run's last pulse was
 * @ago_ns before the session clock's zero (the pulse ledger's
 * dose_prior_pulse_ns, taken a little before the clock starts, so the gap
 * the gate sees is never longer than the real one). The first train keeps
 * safety.min_train_interval_ms (and the rate limit) from it.
 */
void stim_prior_pulse(struct stim *s, int64_t ago_ns);

/**
 * CLOCK_MONOTONIC time of this run's last delivered pulse, INT64_MIN when
 * none (atomic; for the ledger).
 */
int64_t stim_last_pulse_mono(const struct stim *s);

/**
 * Refuse every arm request from now on (publishing @why, a string literal,
 * as an `rpms.state` fault); NULL allows arming again. It does not
 * disarm: follow it with stim_disarm(). For the main thread while
 * the pulse ledger cannot be written. Any non-RT thread.
 */
void stim_hold_arming(struct stim *s, const char *why);

/** Pulses delivered today, as the gate counts them (atomic). */
uint64_t stim_day_pulses(const struct stim *s);

/**
 * Before stim_start: refuse every arm request, publishing @why (copied),
 * e.g. because the pulse ledger cannot be read.
 */
void stim_block_arming(struct stim *s, const char *why);

/**
 * Start a new control session (control thread): the gate's per-session
 * pulse count (safety.max_session_pulses) restarts at 0 before the stim
 * thread handles anything else, and no request of before fires in it.
 * Only call it disarmed. Any thread; posted on the stim thread's command
 * ring, never blocks.
 * @param session_cap  this session's own pulse cap below
 *                     safety.max_session_pulses (a course session's), 0: none
 * @param motor_threshold_pct  the threshold the gate's train table level is
 *                     taken against in this session (a course session's
 *                     measured one); 0: safety.motor_threshold_pct at start
 * @return 0, or -ENOSPC when the ring is full (nothing posted: try again)
 */
int stim_new_session(struct stim *s, uint64_t session_cap, double motor_threshold_pct);

/**
 * The running session's motor threshold was measured (@motor_threshold_pct,
 * % of maximum output; 0: safety.motor_threshold_pct): the train table's
 * level is intensity over it from the next pulse on. The session's pulse
 * count and cap go on (its threshold probes count). Any thread; never
 * blocks. @return 0, or -ENOSPC when the ring is full (try again)
 */
int stim_session_threshold(struct stim *s, double motor_threshold_pct);

/**
 * stim_new_session, and the session fires @coil: the stim thread takes it
 * disarmed (it disarms both coils first), and from then on the arm, status
 * and pulse paths reach only that coil's plugin. Any thread; never blocks.
 * @return 0, -EINVAL for a coil that is not there (a sham session without
 * a sham coil is refused, never run on the active coil), or -ENOSPC
 */
int stim_new_session_coil(struct stim *s, enum stim_coil coil, uint64_t session_cap,
			  double motor_threshold_pct);

/**
 * Give the stim stage its sham coil (open, owned by the caller), before
 * stim_start. Its device envelope must equal the active coil's.
 * @return 0, -EXDEV (a different envelope), -EINVAL (started, NULL, or the
 * active coil itself)
 */
int stim_set_sham_coil(struct stim *s, struct plugin *sham);

/**
 * The connected device's envelope the gate holds pulses to (copied at
 * stim_create, constant after), or NULL. Any thread.
 */
const struct safety_device *stim_device(const struct stim *s);	/* NULL @s: NULL */

/**
 * Ask the device for output @pct (plugin_set_intensity): main or control
 * thread, never the stim thread. @return 0, -EOPNOTSUPP, or the plugin's error
 */
int stim_device_intensity(struct stim *s, double pct);

/**
 * True when a coil status read at or after @since_mono (CLOCK_MONOTONIC)
 * said ready (no fault, no e-stop); a plugin without a status op is taken
 * as ready. Otherwise asks the stim thread for a fresh read (taken when
 * it is idle, between trains) and returns false: call again. Control
 * thread; RT-safe.
 */
bool stim_coil_ready(struct stim *s, int64_t since_mono);

/**
 * The output the active coil's device last confirmed (coil ABI 1.2), NAN
 * when it has confirmed none or does not confirm (the device_intensity
 * rule then does not apply). Any thread.
 */
double stim_confirmed_intensity(struct stim *s);

/** The rule (enum safety_rule) of the last refusal, 0 before any. Any thread. */
unsigned stim_last_refusal(const struct stim *s);

/** Pulses delivered since the last stim_new_session, or since start (atomic). */
uint64_t stim_session_pulses(const struct stim *s);

/** What the last arm command came to (stim_arm_result). */
struct stim_arm_result {
	unsigned attempts;	/* the ticket (stim_arm) of the last arm command applied */
	int code;		/* 0: armed; else the negative errno of the refusal */
	const char *reason;	/* the refusal as published on rpms.state; "" when armed */
};

/**
 * Read the outcome of the last arm command the stim thread applied (any
 * thread). A caller that wants the outcome of its own stim_arm() waits
 * until (int)(attempts - ticket) >= 0.
 */
void stim_arm_result(const struct stim *s, struct stim_arm_result *out);

/**
 * The coil temperature the stim thread read last (before the last pulse,
 * or when arming), °C; NAN when none was read or the coil has no sensor.
 * @param at_ns  receives the session time of that read, INT64_MIN for none
 */
double stim_coil_temperature(const struct stim *s, int64_t *at_ns);

/** Why arming is refused (stim_block_arming, stim_hold_arming), or NULL when it is not. */
const char *stim_arm_blocked(const struct stim *s);

/**
 * The EMG freshness the stim thread's acquisition watchdog reads: the
 * acquire thread marks each block in it (fresh_mark). Owned by @s; any
 * thread.
 */
struct fresh *stim_fresh(struct stim *s);

/** The stim thread's event ring. */
struct ring *stim_events(struct stim *s);

/** Copy the counters (exact once the thread is stopped). */
void stim_get_stats(const struct stim *s, struct stim_stats *st);

#endif /* RPMSD_STIM_H */
