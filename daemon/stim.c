/* SPDX-License-Identifier: MIT */
/*
 * Stim thread. Its loop, once per wake-up: apply an arm/disarm command,
 * start the next request when no train runs, fire the pulse that is due,
 * then sleep until the next pulse time or a kick. The only call to
 * plugin_pulse() in rpmsd is in stim_fire(), right after safety_admit()
 * returned SAFETY_OK for that pulse at that time.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "rt.h"
#include "stim.h"

#define STIM_MAILBOX 8

enum stim_cmd {
	STIM_CMD_NONE = 0,
	STIM_CMD_ARM,
	STIM_CMD_DISARM,
};

struct stim {
	struct sclock *clock;
	struct plugin *plugin;
	struct safety_limits limits;
	struct safety_state gate;	/* stim thread only */
	struct ring *mailbox;		/* acquire -> stim, struct stim_request */
	struct ring *events;		/* stim -> publisher */
	atomic_uint wake;		/* futex word: bumped on post and command */
	atomic_int cmd;			/* enum stim_cmd, latest wins */
	_Atomic(const char *) cmd_reason;	/* static strings only */
	atomic_bool stop;
	atomic_bool busy;		/* a train is running */
	atomic_bool armed;		/* mirror of gate.armed for readers */
	_Atomic int64_t beat_ns;	/* CLOCK_MONOTONIC of the last loop turn */
	atomic_bool locked_out;		/* the supervisor found an RT thread hung */
	atomic_bool test_stall;		/* daemon.test_hooks: hang on purpose */
	int64_t beat_period_ns;		/* the longest sleep without a turn */
	int64_t armed_at;		/* session time of the last arm (stim thread) */
	_Atomic uint64_t pulse_count;
	pthread_t tid;
	bool started;
	char arm_block[160];		/* why arming is refused; "" = it is not (set before start) */

	/* the pulse ledger: main thread -> stim thread, and back */
	_Atomic uint64_t ledger_recorded;	/* today's count on disk */
	atomic_uint ledger_day;		/* bumped on a new day, after ledger_recorded */
	unsigned ledger_day_seen;	/* stim thread */
	_Atomic uint64_t day_pulses;	/* mirror of gate.day_pulses */
	_Atomic int64_t last_pulse_mono;	/* CLOCK_MONOTONIC of this run's last pulse */
	_Atomic(const char *) arm_hold;	/* why the main thread refuses arming now, or NULL */

	/* the control socket: main/control thread -> stim thread, and back */
	atomic_uint session_seq;	/* bumped by stim_new_session */
	unsigned session_seen;		/* stim thread */
	_Atomic uint64_t session_pulses;	/* mirror of gate.session_pulses */
	atomic_uint arm_attempts;	/* bumped after each arm command is applied */
	atomic_int arm_code;		/* its outcome: 0 armed, or -errno */
	_Atomic(const char *) arm_reason;	/* why it was refused ("" when armed) */
	_Atomic uint64_t coil_temp_bits;	/* last temperature read (double bits) */
	_Atomic int64_t coil_temp_at;	/* session time of that read, INT64_MIN none */

	/* current request, stim thread only */
	bool in_train;
	struct stim_request train;
	uint32_t cycle;			/* train of the request being fired */
	uint32_t next_index;		/* pulse of that train */
	uint64_t req_delivered;		/* pulses delivered for this request */
	int64_t next_deadline;

	struct stim_stats stats;	/* written by the stim thread */
};

static void stim_emit_state(struct stim *s, enum event_state state, int code,
			    const char *reason)
{
	struct event ev;

	event_state_init(&ev, state, code, reason, sclock_last_sample(s->clock));
	event_stamp(&ev, sclock_now(s->clock));
	ring_push(s->events, &ev);
}

/* What an arm command came to, for stim_arm_result (control replies). */
static void stim_arm_outcome(struct stim *s, int code, const char *why)
{
	atomic_store(&s->arm_code, code);
	atomic_store(&s->arm_reason, why);
	atomic_fetch_add_explicit(&s->arm_attempts, 1, memory_order_release);
}

/* The last coil temperature read, for status and heartbeats. */
static void stim_note_temperature(struct stim *s, double t)
{
	uint64_t bits;

	memcpy(&bits, &t, sizeof(bits));
	atomic_store(&s->coil_temp_bits, bits);
	atomic_store(&s->coil_temp_at, sclock_now(s->clock));
}

static void stim_apply_armed(struct stim *s, bool arm, const char *reason)
{
	int ret;

	if (!arm) {
		bool was_armed = s->gate.armed;

		/* Gate first: from here on nothing is admitted, whatever the plugin says. */
		safety_set_armed(&s->gate, false);
		atomic_store(&s->armed, false);
		/* Always tell the plugin (belt and braces); report only a change. */
		ret = plugin_disarm(s->plugin);
		if (ret < 0) {
			s->stats.faults++;
			stim_emit_state(s, EVENT_STATE_FAULT, ret, "disarm failed");
		} else if (was_armed) {
			stim_emit_state(s, EVENT_STATE_DISARMED, 0, reason);
		}
		return;
	}
	if (s->arm_block[0]) {
		stim_emit_state(s, EVENT_STATE_FAULT, -EPERM, s->arm_block);
		stim_arm_outcome(s, -EPERM, s->arm_block);
		return;
	}
	if (atomic_load(&s->arm_hold)) {
		const char *why = atomic_load(&s->arm_hold);

		stim_emit_state(s, EVENT_STATE_FAULT, -EIO, why);
		stim_arm_outcome(s, -EIO, why);
		return;
	}
	if (atomic_load(&s->locked_out)) {
		static const char why[] = "arm refused: a real-time thread is hung (supervisor); "
					  "restart rpmsd";

		stim_emit_state(s, EVENT_STATE_FAULT, -EPERM, why);
		stim_arm_outcome(s, -EPERM, why);
		return;
	}
	if (plugin_has_status(s->plugin)) {
		struct rpmsd_coil_status st = { .temperature_c = NAN };

		/* Never arm into a pressed emergency stop or a status in doubt. */
		ret = plugin_status(s->plugin, &st);
		if (ret != 0 || st.estop) {
			const char *why = ret != 0 ? "arm refused: coil status unreadable"
						   : "arm refused: emergency stop asserted";

			plugin_disarm(s->plugin);
			stim_emit_state(s, ret != 0 ? EVENT_STATE_FAULT : EVENT_STATE_ESTOP,
					ret != 0 ? (ret < 0 ? ret : -EIO) : 0, why);
			stim_arm_outcome(s, ret != 0 ? (ret < 0 ? ret : -EIO) : -EPERM, why);
			return;
		}
		stim_note_temperature(s, st.temperature_c);
	}
	ret = plugin_arm(s->plugin);
	if (ret < 0) {
		s->stats.faults++;
		plugin_disarm(s->plugin);
		stim_emit_state(s, EVENT_STATE_FAULT, ret, "arm failed");
		stim_arm_outcome(s, ret, "arm failed: the coil plugin's arm op failed");
		return;
	}
	safety_set_armed(&s->gate, true);
	atomic_store(&s->armed, true);
	s->armed_at = sclock_now(s->clock);
	stim_emit_state(s, EVENT_STATE_ARMED, 0, reason);
	stim_arm_outcome(s, 0, "");
}

static void stim_end_train(struct stim *s)
{
	s->in_train = false;
	s->next_deadline = SCLOCK_NEVER;
	atomic_store(&s->busy, ring_count(s->mailbox) > 0);
}

static void stim_begin_train(struct stim *s, const struct stim_request *req, int64_t now)
{
	s->train = *req;
	if (s->train.cycles == 0) {
		s->train.cycles = 1;
	}
	s->in_train = true;
	s->cycle = 0;
	s->next_index = 0;
	s->req_delivered = 0;
	s->next_deadline = req->start_ns > now ? req->start_ns : now;
	s->stats.requests++;
}

/* Pulses of the current request not delivered yet (this train and later ones). */
static uint64_t stim_pending(const struct stim *s)
{
	uint64_t left = (uint64_t)(s->train.pulses - s->next_index) +
			(uint64_t)(s->train.cycles - s->cycle - 1) * s->train.pulses;

	if (s->train.pulse_budget && left > s->train.pulse_budget - s->req_delivered) {
		left = s->train.pulse_budget - s->req_delivered;
	}
	return left;
}

/* End the request in progress, its undelivered pulses counted under @rule. */
static void stim_drop_request(struct stim *s, enum safety_rule rule)
{
	if (!s->in_train) {
		return;
	}
	s->stats.dropped_by_rule[rule] += stim_pending(s);
	stim_end_train(s);
}

/* Something failed: drop the request, disarm, publish the fault. */
static void stim_fault(struct stim *s, enum safety_rule rule, int code,
		       const char *disarm_reason, const char *reason)
{
	s->stats.faults++;
	stim_drop_request(s, rule);
	stim_apply_armed(s, false, disarm_reason);
	stim_emit_state(s, EVENT_STATE_FAULT, code, reason);
}

static void stim_refuse(struct stim *s, const struct safety_verdict *v, int64_t now)
{
	struct event ev = { .type = EVENT_REFUSAL, .channel = s->train.channel };
	uint64_t dropped = stim_pending(s);

	ev.sample = sclock_last_sample(s->clock);
	ev.u.refusal.rule = v->rule;
	ev.u.refusal.train_id = s->train.train_id + s->cycle;
	ev.u.refusal.index = s->next_index;
	ev.u.refusal.dropped = dropped > UINT32_MAX ? UINT32_MAX : (uint32_t)dropped;
	ev.u.refusal.value = v->value;
	ev.u.refusal.limit = v->limit;
	ev.u.refusal.sched_ns = s->next_deadline;
	event_stamp(&ev, now);
	ring_push(s->events, &ev);
	s->stats.refusals++;
	s->stats.refused_by_rule[v->rule]++;
	s->stats.dropped_by_rule[v->rule] += dropped;
	stim_end_train(s);
}

/*
 * Fire pulse next_index of the current train, if the gate admits it. The
 * time the gate judges is read after the plugin's status, immediately
 * before the pulse: a slow status read or a preemption must not let the
 * gate judge a pulse at an earlier time than it fires.
 * @return the time the pulse was judged (and fired) at
 */
static int64_t stim_fire(struct stim *s)
{
	int64_t now;
	struct safety_request req = {
		.train_id = s->train.train_id + s->cycle,
		.frequency_hz = s->train.frequency_hz,
		.intensity_pct = s->train.intensity_pct,
	};
	int64_t gap;
	struct safety_verdict v;
	struct event ev = { .type = EVENT_PULSE, .channel = s->train.channel };
	int ret;

	req.coil.temperature_c = NAN;
	if (plugin_has_status(s->plugin)) {
		req.have_status = true;
		ret = plugin_status(s->plugin, &req.coil);
		if (ret != 0) {
			/* A plugin that cannot tell its state is in doubt: a fault. */
			req.coil.fault = true;
			req.coil.fault_code = ret < 0 ? ret : -EIO;
		} else {
			stim_note_temperature(s, req.coil.temperature_c);
		}
	}
	now = sclock_now(s->clock);
	req.acq_age_ns = sclock_fresh(s->clock) == INT64_MIN ? INT64_MAX
							     : now - sclock_fresh(s->clock);
	v = safety_admit(&s->limits, &s->gate, &req, now);
	if (v.rule != SAFETY_OK) {
		stim_refuse(s, &v, now);
		return now;
	}
	ret = plugin_pulse(s->plugin, s->train.intensity_pct, s->train.width_us);
	if (ret < 0) {
		stim_fault(s, SAFETY_COIL_FAULT, ret, "pulse failed", "coil plugin pulse failed");
		return now;
	}
	safety_commit(&s->gate, &req, now);
	s->stats.pulses++;
	s->req_delivered++;
	atomic_store(&s->pulse_count, s->stats.pulses);
	atomic_store(&s->day_pulses, s->gate.day_pulses);
	atomic_store(&s->session_pulses, s->gate.session_pulses);
	/* for the ledger: the next run keeps the gap between trains (a vDSO read) */
	atomic_store(&s->last_pulse_mono, sclock_mono_ns());

	ev.sample = sclock_last_sample(s->clock);
	ev.u.pulse.train_id = req.train_id;
	ev.u.pulse.index = s->next_index;
	ev.u.pulse.count = s->train.pulses;
	ev.u.pulse.width_us = s->train.width_us;
	ev.u.pulse.intensity_pct = s->train.intensity_pct;
	ev.u.pulse.sched_ns = s->next_deadline;
	ev.u.pulse.actual_ns = now;
	ev.u.pulse.temperature_c = req.coil.temperature_c;
	ev.u.pulse.trigger_sample = s->train.trigger_sample;
	event_stamp(&ev, now);
	ring_push(s->events, &ev);

	s->next_index++;
	if (s->train.pulse_budget && s->req_delivered >= s->train.pulse_budget) {
		stim_end_train(s);
		return now;
	}
	if (s->next_index >= s->train.pulses) {
		if (++s->cycle >= s->train.cycles) {
			stim_end_train(s);
			return now;
		}
		s->next_index = 0;
		/* the designed pause after a train, even if this one ran late */
		gap = s->train.cycle_period_ns - policy_pulse_offset_ns(&s->train, s->train.pulses - 1);
		s->next_deadline = s->train.start_ns + (int64_t)s->cycle * s->train.cycle_period_ns;
	} else {
		/* the designed spacing to the previous pulse: within a burst one period */
		gap = policy_pulse_offset_ns(&s->train, s->next_index) -
		      policy_pulse_offset_ns(&s->train, s->next_index - 1);
		s->next_deadline = s->train.start_ns +
				   (int64_t)s->cycle * s->train.cycle_period_ns +
				   policy_pulse_offset_ns(&s->train, s->next_index);
	}
	/*
	 * Never closer than the designed spacing to the pulse just fired,
	 * even if it was late: a late pulse delays the rest rather than
	 * squeezing the next one in early.
	 */
	if (s->next_deadline < now + gap) {
		s->next_deadline = now + gap;
	}
	return now;
}

/*
 * The acquisition watchdog: armed, and no fresh EMG block (nor an arm)
 * for longer than the limit, disarm at once. The gate's own rule refuses
 * every pulse in that state too; this also drops the enable line.
 * @return the session time at which to look again (SCLOCK_NEVER: disarmed)
 */
static int64_t stim_watchdog(struct stim *s, int64_t now)
{
	int64_t fresh, ref;

	if (!s->gate.armed) {
		return SCLOCK_NEVER;
	}
	fresh = sclock_fresh(s->clock);
	ref = fresh > s->armed_at ? fresh : s->armed_at;
	if (now - ref <= s->limits.acq_timeout_ns) {
		return ref + s->limits.acq_timeout_ns + 1;
	}
	s->stats.faults++;
	stim_apply_armed(s, false, "acquisition stale");
	stim_emit_state(s, EVENT_STATE_FAULT, -ETIMEDOUT, "no fresh EMG: disarmed");
	return SCLOCK_NEVER;
}

/*
 * The whole process may have been stopped (SIGSTOP, a debugger, a stall
 * of the host) with both threads frozen: on resume the acquire thread can
 * refresh the EMG before this thread looks, and the plain watchdog would
 * never see the gap. The clock keeps the longest gap between two fresh
 * blocks: armed through a gap longer than the limit, disarm.
 */
static void stim_stall_check(struct stim *s)
{
	int64_t stall = sclock_take_stall(s->clock);

	if (!s->gate.armed || stall <= s->limits.acq_timeout_ns) {
		return;
	}
	stim_fault(s, SAFETY_ACQ_STALE, -ETIMEDOUT, "acquisition stalled",
		   "EMG stalled longer than the limit: disarmed");
}

/* Take in what the main thread wrote to the ledger since the last look. */
static void stim_ledger_sync(struct stim *s)
{
	unsigned day = atomic_load_explicit(&s->ledger_day, memory_order_acquire);
	bool new_day = day != s->ledger_day_seen;

	/* day before count: a new day is never seen with the old day's count */
	safety_set_recorded(&s->gate, atomic_load_explicit(&s->ledger_recorded, memory_order_acquire),
			    new_day);
	if (new_day) {
		s->ledger_day_seen = day;
		atomic_store(&s->day_pulses, s->gate.day_pulses);
	}
}

/*
 * A new control session: the per-session pulse count restarts. Taken in
 * before an arm command of the same wake-up, so the first pulse of a
 * session is already counted against the new session.
 */
static void stim_session_sync(struct stim *s)
{
	unsigned seq = atomic_load_explicit(&s->session_seq, memory_order_acquire);

	if (seq == s->session_seen) {
		return;
	}
	s->session_seen = seq;
	s->gate.session_pulses = 0;
	atomic_store(&s->session_pulses, 0);
}

/* An alert from the plugin's own threads: disarm now, say why. */
static void stim_take_alert(struct stim *s)
{
	enum rpmsd_coil_alert what;
	bool was_armed = s->gate.armed;
	int code;

	if (!plugin_take_alert(s->plugin, &what, &code)) {
		return;
	}
	if (what != RPMSD_COIL_ALERT_ESTOP) {
		stim_fault(s, SAFETY_COIL_FAULT, code, "coil alert", "coil plugin alert: disarmed");
		return;
	}
	/*
	 * An operator's stop is not a device fault (the exit status does not
	 * say "fault" for it); it is always published, armed or not, since
	 * someone pressed it.
	 */
	stim_drop_request(s, SAFETY_ESTOP);
	stim_apply_armed(s, false, "emergency stop");
	s->stats.estops++;
	stim_emit_state(s, EVENT_STATE_ESTOP, code,
			was_armed ? "emergency stop input: disarmed"
				  : "emergency stop input (the coil was not armed)");
}

static void *stim_thread(void *arg)
{
	struct stim *s = arg;
	struct stim_request req;
	unsigned seen;
	int64_t now, wake_at;
	int cmd;

	rt_prefault_stack();
	now = sclock_now(s->clock);
	for (;;) {
		/* The supervisor's proof that this thread still turns. */
		atomic_store_explicit(&s->beat_ns, sclock_mono_ns(), memory_order_release);
		if (atomic_load_explicit(&s->test_stall, memory_order_relaxed)) {
			rt_test_hang(&s->stop);	/* the coil left as it is */
		}
		/*
		 * Read the word before looking at the inputs, the stop flag
		 * first among them: stim_stop sets the flag and then bumps the
		 * word, so a stop that lands after this read still ends the
		 * wait below. (Checking the flag before the read lost that
		 * wake-up: with no deadline, as in virtual time, the thread
		 * then slept forever and stop hung in pthread_join.)
		 */
		seen = atomic_load(&s->wake);
		if (atomic_load(&s->stop)) {
			break;
		}
		stim_take_alert(s);
		stim_ledger_sync(s);
		stim_stall_check(s);
		stim_session_sync(s);
		cmd = atomic_exchange(&s->cmd, STIM_CMD_NONE);
		if (cmd != STIM_CMD_NONE) {
			stim_apply_armed(s, cmd == STIM_CMD_ARM, atomic_load(&s->cmd_reason));
		}
		if (!s->in_train && ring_pop(s->mailbox, &req)) {
			atomic_store(&s->busy, true);
			stim_begin_train(s, &req, now);
		}
		if (s->in_train && now >= s->next_deadline) {
			now = stim_fire(s);
			continue;
		}
		wake_at = stim_watchdog(s, now);
		if (s->in_train && s->next_deadline < wake_at) {
			wake_at = s->next_deadline;
		}
		/* Idle or not, turn often enough for the heartbeat to stay fresh. */
		if (s->beat_period_ns > 0 && wake_at - now > s->beat_period_ns) {
			wake_at = now + s->beat_period_ns;
		}
		now = sclock_wait(s->clock, wake_at, &s->wake, seen);
	}
	if (s->in_train) {
		s->stats.dropped_at_stop += stim_pending(s);
	}
	while (ring_pop(s->mailbox, &req)) {
		s->stats.dropped_at_stop += (uint64_t)req.pulses * (req.cycles ? req.cycles : 1);
	}
	s->in_train = false;
	stim_apply_armed(s, false, "stopping");
	atomic_store(&s->busy, false);
	return NULL;
}

int stim_create(const struct rpmsd_config *cfg, struct sclock *clock,
		struct plugin *plugin, struct stim **out)
{
	struct stim *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		return -ENOMEM;
	}
	ret = ring_create(STIM_MAILBOX, sizeof(struct stim_request), &s->mailbox);
	if (ret < 0) {
		goto err_free;
	}
	ret = ring_create((size_t)cfg->publish.ring_records, sizeof(struct event), &s->events);
	if (ret < 0) {
		goto err_mailbox;
	}
	s->clock = clock;
	s->plugin = plugin;
	safety_limits_from_config(cfg, &s->limits);
	/* nothing recorded in a ledger yet: no pulse until stim_set_ledger */
	safety_init(&s->gate, 0);
	atomic_init(&s->ledger_recorded, 0);
	atomic_init(&s->ledger_day, 0);
	atomic_init(&s->day_pulses, 0);
	atomic_init(&s->last_pulse_mono, INT64_MIN);
	atomic_init(&s->arm_hold, NULL);
	atomic_init(&s->wake, 0);
	atomic_init(&s->cmd, STIM_CMD_NONE);
	atomic_init(&s->cmd_reason, "");
	atomic_init(&s->stop, false);
	atomic_init(&s->busy, false);
	atomic_init(&s->armed, false);
	atomic_init(&s->pulse_count, 0);
	atomic_init(&s->session_seq, 0);
	atomic_init(&s->session_pulses, 0);
	atomic_init(&s->arm_attempts, 0);
	atomic_init(&s->arm_code, 0);
	atomic_init(&s->arm_reason, "");
	atomic_init(&s->coil_temp_bits, 0);
	atomic_init(&s->coil_temp_at, INT64_MIN);
	s->next_deadline = SCLOCK_NEVER;
	atomic_init(&s->beat_ns, 0);
	atomic_init(&s->locked_out, false);
	atomic_init(&s->test_stall, false);
	/*
	 * A quarter of the supervisor's limit: a missed turn or two is not
	 * a hang. Virtual time only moves with the EMG: no heartbeat there.
	 */
	if (!sclock_is_virtual(clock) && cfg->daemon.heartbeat_timeout_ms > 0) {
		s->beat_period_ns = (int64_t)cfg->daemon.heartbeat_timeout_ms * 1000000 / 4;
	}
	*out = s;
	return 0;

err_mailbox:
	ring_destroy(s->mailbox);
err_free:
	free(s);
	return ret;
}

int stim_start(struct stim *s, int priority, int cpu, bool *got_rt)
{
	int ret;

	plugin_set_wake(s->plugin, &s->wake);
	atomic_store(&s->beat_ns, sclock_mono_ns());
	ret = rt_thread_start(&s->tid, "rpmsd-stim", priority, cpu, stim_thread, s, got_rt);
	if (ret < 0) {
		return ret;
	}
	s->started = true;
	return 0;
}

void stim_stop(struct stim *s)
{
	if (!s || !s->started) {
		return;
	}
	plugin_set_wake(s->plugin, NULL);
	atomic_store(&s->stop, true);
	sclock_kick(s->clock, &s->wake);
	pthread_join(s->tid, NULL);
	s->started = false;
}

void stim_destroy(struct stim *s)
{
	if (!s) {
		return;
	}
	stim_stop(s);
	ring_destroy(s->events);
	ring_destroy(s->mailbox);
	free(s);
}

int stim_post(struct stim *s, const struct stim_request *req)
{
	if (!ring_push(s->mailbox, req)) {
		return -EBUSY;
	}
	atomic_store(&s->busy, true);
	sclock_kick(s->clock, &s->wake);
	return 0;
}

void stim_set_armed(struct stim *s, bool armed, const char *reason)
{
	atomic_store(&s->cmd_reason, reason);
	atomic_store(&s->cmd, armed ? STIM_CMD_ARM : STIM_CMD_DISARM);
	sclock_kick(s->clock, &s->wake);
}

bool stim_idle(const struct stim *s)
{
	return !atomic_load(&((struct stim *)s)->busy) && ring_count(s->mailbox) == 0;
}

uint64_t stim_pulse_count(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->pulse_count);
}

bool stim_armed(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->armed);
}

struct ring *stim_events(struct stim *s)
{
	return s->events;
}

void stim_get_stats(const struct stim *s, struct stim_stats *st)
{
	*st = s->stats;
}

void stim_start_day(struct stim *s, uint64_t day_pulses)
{
	safety_init(&s->gate, day_pulses);
	atomic_store(&s->ledger_recorded, day_pulses);
	atomic_store(&s->day_pulses, day_pulses);
}

void stim_set_ledger(struct stim *s, uint64_t recorded, bool new_day)
{
	atomic_store_explicit(&s->ledger_recorded, recorded, memory_order_release);
	if (new_day) {
		atomic_fetch_add_explicit(&s->ledger_day, 1, memory_order_release);
	}
	sclock_kick(s->clock, &s->wake);
}

void stim_prior_pulse(struct stim *s, int64_t ago_ns)
{
	safety_prior_pulse(&s->gate, ago_ns > 0 ? -ago_ns : 0);
}

int64_t stim_last_pulse_mono(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->last_pulse_mono);
}

void stim_hold_arming(struct stim *s, const char *why)
{
	atomic_store(&s->arm_hold, why);
}

uint64_t stim_day_pulses(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->day_pulses);
}

void stim_block_arming(struct stim *s, const char *why)
{
	snprintf(s->arm_block, sizeof(s->arm_block), "arm refused: %s", why);
}

void stim_new_session(struct stim *s)
{
	atomic_fetch_add_explicit(&s->session_seq, 1, memory_order_release);
	sclock_kick(s->clock, &s->wake);
}

uint64_t stim_session_pulses(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->session_pulses);
}

void stim_arm_result(const struct stim *s, struct stim_arm_result *out)
{
	struct stim *q = (struct stim *)s;
	unsigned before;

	/* Three atomics: read again if an arm command was applied meanwhile. */
	do {
		before = atomic_load_explicit(&q->arm_attempts, memory_order_acquire);
		out->code = atomic_load(&q->arm_code);
		out->reason = atomic_load(&q->arm_reason);
		out->attempts = before;
	} while (atomic_load_explicit(&q->arm_attempts, memory_order_acquire) != before);
}

double stim_coil_temperature(const struct stim *s, int64_t *at_ns)
{
	struct stim *q = (struct stim *)s;
	uint64_t bits = atomic_load(&q->coil_temp_bits);
	double t;

	*at_ns = atomic_load(&q->coil_temp_at);
	if (*at_ns == INT64_MIN) {
		return NAN;
	}
	memcpy(&t, &bits, sizeof(t));
	return t;
}

const char *stim_arm_blocked(const struct stim *s)
{
	return s->arm_block[0] ? s->arm_block : atomic_load(&((struct stim *)s)->arm_hold);
}

int64_t stim_heartbeat(const struct stim *s)
{
	return atomic_load_explicit(&((struct stim *)s)->beat_ns, memory_order_acquire);
}

void stim_lock_out(struct stim *s, const char *reason)
{
	atomic_store(&s->locked_out, true);
	/* Through the thread when it still runs: it orders the disarm with pulses. */
	stim_set_armed(s, false, reason);
}

void stim_test_stall(struct stim *s)
{
	atomic_store(&s->test_stall, true);
	sclock_kick(s->clock, &s->wake);
}
