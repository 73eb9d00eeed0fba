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

#include "cmdq.h"
#include "config.h"
#include "event.h"
#include "fresh.h"
#include "log.h"
#include "plugin.h"
#include "policy.h"
#include "ring.h"
#include "rt.h"
#include "sclock.h"
#include "simpatient.h"
#include "stim.h"
#include "stim_refusal.h"
#include "stim_train.h"

#define STIM_MAILBOX 8
/* Requests from the other threads waiting for the stim thread (stim_post_cmd). */
#define STIM_CMDQ 16
/* Pulses whose sample the acquire thread can look up (stim_pulse_sample). */
#define STIM_PULSE_LOG 64
/*
 * Refusals of one rule: the first is published at once, the repeats that
 * follow within this time are counted and published as one summary at
 * its end (at most one summary per rule per period).
 */


/*
 * What the other threads ask of the stim thread through its command ring
 * (cmdq.h), taken in post order at each wake-up before anything else.
 */
enum stim_cmdq_kind {
	STIM_CMDQ_NEW_SESSION = 1,	/* stim_new_session */
	STIM_CMDQ_ARM,			/* stim_arm */
	STIM_CMDQ_TEST_STALL,		/* stim_test_stall */
	STIM_CMDQ_SESSION_MT,		/* stim_session_threshold */
};

struct stim_cmdq_rec {
	enum stim_cmdq_kind kind;
	const char *reason;		/* ARM: static storage */
	unsigned ticket;		/* ARM: its number, for stim_arm_result */
	unsigned disarm_seq;		/* ARM: disarms posted before it */
	enum stim_coil coil;		/* NEW_SESSION: the coil the session fires */
	uint64_t session_cap;		/* NEW_SESSION: the session's own cap, 0 none */
	double motor_threshold_pct;	/* NEW_SESSION, SESSION_MT: the session's, 0 the config's */
};

/*
 * What stays a shared word rather than a command, and why:
 *  - stop, the disarms and the supervisor's lock-out must work with the
 *    ring full and must never wait behind an arm;
 *  - the ledger count and the arm hold are the main thread's latest
 *    state, not requests: a ring could lose the newest value to a full
 *    ring, a word cannot;
 *  - the heartbeat, the mirrors and the arm outcome are read by other
 *    threads (stim -> them);
 *  - EMG freshness is the acquire thread's, kept by fresh.c.
 */

struct stim {
	struct sclock *clock;
	/*
	 * The coil this session fires: the only plugin the arm, status and
	 * pulse paths ever use. A session's coil is chosen when it starts
	 * (stim_new_session_coil, taken disarmed on this thread); during a
	 * sham session it is the sham coil, and the active coil is only in
	 * coils[], which nothing but stim_select_coil and the alert check
	 * reads (docs/sham.md).
	 */
	struct plugin *plugin;
	struct plugin *coils[STIM_COILS];	/* constant after stim_start */
	struct safety_limits limits;
	double cfg_motor_threshold_pct;	/* safety.motor_threshold_pct at start */
	struct safety_state gate;	/* stim thread only */
	struct ring *mailbox;		/* acquire -> stim, struct stim_request */
	struct ring *events;		/* stim -> publisher */
	struct fresh *fresh;		/* acquire -> stim: the last EMG block, stalls */
	atomic_uint wake;		/* futex word: bumped on post and command */
	/* a word, not a command: the stop must work with the command ring full */
	atomic_bool stop;
	atomic_bool busy;		/* a train is running */
	atomic_bool armed;		/* mirror of gate.armed for readers */
	/* a word the supervisor reads: it must show a stim thread that drains nothing */
	_Atomic int64_t beat_ns;	/* CLOCK_MONOTONIC of the last loop turn */
	atomic_bool locked_out;		/* the supervisor found an RT thread hung */
	int64_t beat_period_ns;		/* the longest sleep without a turn */
	int64_t armed_at;		/* session time of the last arm (stim thread) */
	int64_t status_at;		/* session time of the last idle status read */
	/* stim_coil_ready: a reader asks for a fresh read, the thread answers */
	atomic_bool status_wanted;
	atomic_bool coil_ready;		/* the last idle read's ready */
	_Atomic int64_t coil_ready_mono;	/* CLOCK_MONOTONIC of it, INT64_MIN none */
	unsigned arm_ticket;		/* the arm command being applied (stim thread) */
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
	struct cmdq *cmds;		/* any thread -> stim: struct stim_cmdq_rec */
	_Atomic uint64_t session_pulses;	/* mirror of gate.session_pulses */
	atomic_uint arm_tickets;	/* arm commands posted (stim_arm) */
	atomic_uint arm_attempts;	/* the ticket of the last arm command applied */
	atomic_int arm_code;		/* its outcome: 0 armed, or -errno */
	_Atomic(const char *) arm_reason;	/* why it was refused ("" when armed) */
	_Atomic uint64_t coil_temp_bits;	/* last temperature read (double bits) */
	_Atomic int64_t coil_temp_at;	/* session time of that read, INT64_MIN none */

	/*
	 * The sample clock (acquire thread -> stim thread): sample k is at
	 * session time sample_t0 + k / rate. Set per block; the rate before
	 * the threads start.
	 */
	double rate_hz;				/* 0: no sample clock */
	_Atomic int64_t sample_t0_ns;
	atomic_bool have_sample_clock;
	/* the sample of pulse n (1-based count) at [n % STIM_PULSE_LOG] */
	_Atomic uint64_t pulse_sample[STIM_PULSE_LOG];
	/* a simulated patient's response to pulse n (stim_pulse_response), same index */
	_Atomic double resp_uv[STIM_PULSE_LOG];		/* NAN: none */
	_Atomic double resp_latency_us[STIM_PULSE_LOG];
	_Atomic double resp_artefact_uv[STIM_PULSE_LOG];
	_Atomic uint32_t resp_channel[STIM_PULSE_LOG];
	/* [sim_patient] (replay only): drawn on this thread; NULL none */
	struct simpatient *patient;
	double patient_latency_us;
	double patient_artefact_uv;
	uint32_t patient_channel;
	atomic_uint last_refusal_rule;		/* enum safety_rule of the last refusal */

	/* every disarm ends the running request, even one an arm follows at once */
	atomic_uint disarm_seq;			/* bumped by each disarm command */
	unsigned disarm_seen;			/* stim thread */
	_Atomic(const char *) disarm_reason;
	atomic_uint disarms;			/* disarms applied, whatever the cause */

	/* Refusals, stim thread only: the first of a rule at once, repeats summarised. */
	struct stim_refusal refusals;

	/* the request in progress and the open-loop count, stim thread only */
	struct stim_train cur;

	struct stim_stats stats;	/* written by the stim thread */
};

static void stim_cancel_requests(struct stim *s, int64_t now);
static double stim_sample_at(const struct stim *s, int64_t t_ns);

static void stim_emit_state(struct stim *s, enum event_state state, int code,
			    const char *reason)
{
	struct event ev;
	int64_t now = sclock_now(s->clock);

	/* Refusals summarised so far come first: no summary spans a state change. */
	stim_refusal_flush(&s->refusals, now, true);
	event_state_init(&ev, state, code, reason, sclock_last_sample(s->clock));
	/*
	 * On the sample clock as pulses are: a disarm just after a pulse of the
	 * same block must not be annotated before it in the recording.
	 */
	ev.u.state.at_sample = stim_sample_at(s, now);
	event_stamp(&ev, now);
	ring_push(s->events, &ev);
}

/* Session time @t_ns on the sample clock: a fractional sample index, NAN if unknown. */
static double stim_sample_at(const struct stim *s, int64_t t_ns)
{
	struct stim *q = (struct stim *)s;
	double x;

	if (!(s->rate_hz > 0.0) || !atomic_load_explicit(&q->have_sample_clock, memory_order_acquire)) {
		return NAN;
	}
	x = (double)(t_ns - atomic_load_explicit(&q->sample_t0_ns, memory_order_relaxed)) *
	    s->rate_hz / 1e9;
	return x > 0.0 ? x : 0.0;
}

/* What an arm command came to, for stim_arm_result (control replies). */
static void stim_arm_outcome(struct stim *s, int code, const char *why)
{
	atomic_store(&s->arm_code, code);
	atomic_store(&s->arm_reason, why);
	atomic_store_explicit(&s->arm_attempts, s->arm_ticket, memory_order_release);
}

/* How often an idle stim thread reads the coil status (temperature for heartbeats). */
#define STIM_STATUS_PERIOD_NS 1000000000LL

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
		/* after the flag: whoever sees the next arm also sees this count */
		if (was_armed) {
			atomic_fetch_add(&s->disarms, 1);
		}
		stim_cancel_requests(s, sclock_now(s->clock));
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
	stim_train_end(&s->cur);
	atomic_store(&s->busy, ring_count(s->mailbox) > 0);
}

static void stim_begin_train(struct stim *s, const struct stim_request *req, int64_t now)
{
	stim_train_begin(&s->cur, req, now, s->gate.any_pulse, s->gate.last_pulse_ns);
	s->stats.requests++;
}

/* End the request in progress, its undelivered pulses counted under @rule. */
static void stim_drop_request(struct stim *s, enum safety_rule rule)
{
	if (!s->cur.in_train) {
		return;
	}
	s->stats.dropped_by_rule[rule] += stim_train_lost(&s->cur, rule);
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
	struct event ev = { .type = EVENT_REFUSAL, .channel = s->cur.train.channel };
	uint64_t dropped = stim_train_lost(&s->cur, v->rule);

	ev.sample = sclock_last_sample(s->clock);
	ev.u.refusal.rule = v->rule;
	ev.u.refusal.train_id = s->cur.train.train_id + s->cur.cycle;
	ev.u.refusal.index = s->cur.next_index;
	ev.u.refusal.dropped = dropped > UINT32_MAX ? UINT32_MAX : (uint32_t)dropped;
	ev.u.refusal.value = v->value;
	ev.u.refusal.limit = v->limit;
	ev.u.refusal.sched_ns = s->cur.next_deadline;
	event_stamp(&ev, now);
	stim_refusal_publish(&s->refusals, &ev, now);
	/* before the train ends (busy drops): a probe's refusal is read after it */
	atomic_store(&s->last_refusal_rule, v->rule);
	s->stats.refusals++;
	s->stats.refused_by_rule[v->rule]++;
	s->stats.dropped_by_rule[v->rule] += dropped;
	stim_end_train(s);
}

/*
 * A disarm (or a new session) ends the request in progress and every
 * request waiting: none of them may fire after a later arm, with the
 * parameters it was made with before (what the operator set since must
 * be what the coil does). Each is refused as disarmed, as its next pulse
 * would have been once it fell due.
 */
static void stim_cancel_requests(struct stim *s, int64_t now)
{
	const struct safety_verdict v = { .rule = SAFETY_DISARMED, .value = 0.0, .limit = 1.0 };
	struct stim_request req;

	if (s->cur.in_train) {
		stim_refuse(s, &v, now);
	}
	while (ring_pop(s->mailbox, &req)) {
		stim_begin_train(s, &req, now);
		stim_refuse(s, &v, now);
	}
}

/*
 * Delivery verification into the pulse event: this pulse's confirm latency
 * and a late device read-back of an earlier one (plugin_pulse_verify).
 */
static void stim_verify(struct stim *s, struct event *ev, uint32_t train_id,
			double confirmed_pct)
{
	struct plugin_pulse_verify v;
	double pct;

	size_t i = s->stats.pulses % STIM_PULSE_LOG;

	plugin_pulse_verify(s->plugin, train_id, s->cur.next_index, &v);
	/*
	 * [sim_patient], for a plugin without a patient of its own: the
	 * response to the output the device confirmed before this pulse (the
	 * gate's read), so a device that fired something else than asked is
	 * seen in the EMG; a device that confirms nothing at all is taken at
	 * the asked output. The sham coil evokes nothing.
	 */
	if (s->patient && isnan(v.sim_response_uv) && s->plugin == s->coils[STIM_COIL_ACTIVE]) {
		pct = s->limits.dev.confirms ? confirmed_pct : s->cur.train.intensity_pct;
		if (isfinite(pct)) {
			v.sim_response_uv = simpatient_response_uv(s->patient, pct);
			v.sim_latency_us = s->patient_latency_us;
			v.sim_artefact_uv = s->patient_artefact_uv;
			v.sim_channel = s->patient_channel;
		}
	}
	/* before the count that makes the acquire thread look (stim_pulse_response) */
	atomic_store_explicit(&s->resp_uv[i], v.sim_response_uv, memory_order_relaxed);
	atomic_store_explicit(&s->resp_latency_us[i], v.sim_latency_us, memory_order_relaxed);
	atomic_store_explicit(&s->resp_artefact_uv[i], v.sim_artefact_uv, memory_order_relaxed);
	atomic_store_explicit(&s->resp_channel[i], v.sim_channel, memory_order_relaxed);
	ev->u.pulse.confirm_ns = v.confirm_ns;
	ev->u.pulse.didt_valid = v.has_didt;
	ev->u.pulse.didt = v.didt;
	ev->u.pulse.didt_train_id = v.didt_train_id;
	ev->u.pulse.didt_index = v.didt_index;
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
		.train_id = s->cur.train.train_id + s->cur.cycle,
		.frequency_hz = s->cur.train.frequency_hz,
		.intensity_pct = s->cur.train.intensity_pct,
	};
	struct safety_verdict v;
	struct event ev = { .type = EVENT_PULSE, .channel = s->cur.train.channel };
	double x;
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
	req.confirmed_pct = s->limits.dev.confirms ? plugin_confirmed_intensity(s->plugin) : NAN;
	now = sclock_now(s->clock);
	req.acq_age_ns = fresh_last(s->fresh) == INT64_MIN ? INT64_MAX
							   : now - fresh_last(s->fresh);
	v = safety_admit(&s->limits, &s->gate, &req, now);
	if (v.rule != SAFETY_OK) {
		stim_refuse(s, &v, now);
		return now;
	}
	ret = plugin_pulse(s->plugin, s->cur.train.intensity_pct, s->cur.train.width_us);
	if (ret < 0) {
		stim_fault(s, SAFETY_COIL_FAULT, ret, "pulse failed", "coil plugin pulse failed");
		return now;
	}
	safety_commit(&s->gate, &req, now);
	s->stats.pulses++;
	stim_train_count(&s->cur, &s->stats);
	stim_verify(s, &ev, req.train_id, req.confirmed_pct);
	/*
	 * Where the pulse fell on the sample clock, for the artefact blank:
	 * the sample whose period holds the firing time (a nanosecond of
	 * slack, so a pulse exactly on a sample is not put in the one before
	 * by the rounding of its time to ns). Written before the count that
	 * makes the acquire thread look.
	 */
	x = stim_sample_at(s, now);
	atomic_store_explicit(&s->pulse_sample[s->stats.pulses % STIM_PULSE_LOG],
			      isnan(x) ? UINT64_MAX
				       : (uint64_t)floor(x + s->rate_hz * 1e-9),
			      memory_order_relaxed);
	atomic_store_explicit(&s->pulse_count, s->stats.pulses, memory_order_release);
	atomic_store(&s->day_pulses, s->gate.day_pulses);
	atomic_store(&s->session_pulses, s->gate.session_pulses);
	/* for the ledger: the next run keeps the gap between trains (a vDSO read) */
	atomic_store(&s->last_pulse_mono, sclock_mono_ns());

	ev.sample = sclock_last_sample(s->clock);
	ev.u.pulse.train_id = req.train_id;
	ev.u.pulse.index = s->cur.next_index;
	ev.u.pulse.count = s->cur.train.pulses;
	ev.u.pulse.width_us = s->cur.train.width_us;
	ev.u.pulse.intensity_pct = s->cur.train.intensity_pct;
	ev.u.pulse.sched_ns = s->cur.next_deadline;
	ev.u.pulse.actual_ns = now;
	ev.u.pulse.temperature_c = req.coil.temperature_c;
	ev.u.pulse.trigger_sample = s->cur.train.trigger_sample;
	ev.u.pulse.sample_at_fire = x;
	event_stamp(&ev, now);
	ring_push(s->events, &ev);

	if (!stim_train_next(&s->cur, &s->stats, now)) {
		stim_end_train(s);
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
	fresh = fresh_last(s->fresh);
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
 * never see the gap. fresh.c keeps the longest gap between two fresh
 * blocks: armed through a gap longer than the limit, disarm.
 */
static void stim_stall_check(struct stim *s)
{
	int64_t stall = fresh_take_stall(s->fresh);

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
/*
 * Make @coil the one the arm and pulse paths use, disarmed: the gate is
 * closed and both coils are told to disarm before the pointer changes,
 * so nothing armed for one session can fire in the next.
 */
static void stim_select_coil(struct stim *s, enum stim_coil coil)
{
	unsigned i;

	if (s->coils[coil] == s->plugin) {
		return;
	}
	if (s->gate.armed) {
		stim_apply_armed(s, false, "session started");
	}
	for (i = 0; i < STIM_COILS; i++) {
		if (s->coils[i]) {
			(void)plugin_disarm(s->coils[i]);
		}
	}
	s->plugin = s->coils[coil];
}

static void stim_session_begin(struct stim *s, const struct stim_cmdq_rec *c)
{
	/* Nothing of the last session fires in this one; its open-loop count ends. */
	stim_cancel_requests(s, sclock_now(s->clock));
	stim_train_settle(&s->cur, &s->stats, false);
	s->gate.session_pulses = 0;
	s->gate.session_cap = c->session_cap;
	/*
	 * The train table's level is intensity over this threshold: a course
	 * session's measured one, as its protocol was checked with (config_recheck).
	 */
	s->limits.motor_threshold_pct = c->motor_threshold_pct > 0.0 ? c->motor_threshold_pct
								      : s->cfg_motor_threshold_pct;
	atomic_store(&s->session_pulses, 0);
}

/*
 * An arm command. A disarm posted after it (its count moved on) wins,
 * whichever the thread sees first: the arm is dropped, not applied late.
 * The count is read again here, after the disarms of this turn, so a
 * disarm that lands later still follows this arm.
 */
static void stim_take_arm(struct stim *s, const struct stim_cmdq_rec *c)
{
	s->arm_ticket = c->ticket;
	if (atomic_load(&s->disarm_seq) != c->disarm_seq) {
		stim_arm_outcome(s, -ECANCELED, "arm dropped: a disarm was asked after it");
		return;
	}
	stim_apply_armed(s, true, c->reason);
}

/* Take in, in post order, what the other threads asked since the last wake-up. */
static void stim_take_cmds(struct stim *s)
{
	struct stim_cmdq_rec c;

	while (cmdq_take(s->cmds, &c)) {
		switch (c.kind) {
		case STIM_CMDQ_NEW_SESSION:
			stim_select_coil(s, c.coil);
			stim_session_begin(s, &c);
			break;
		case STIM_CMDQ_ARM:
			stim_take_arm(s, &c);
			break;
		case STIM_CMDQ_TEST_STALL:
			rt_test_hang(&s->stop);	/* the coil left as it is */
			break;
		case STIM_CMDQ_SESSION_MT:
			/* the session's count and cap go on: its threshold probes count */
			s->limits.motor_threshold_pct = c.motor_threshold_pct > 0.0 ?
							c.motor_threshold_pct :
							s->cfg_motor_threshold_pct;
			break;
		}
	}
}

/* An alert from the plugin's own threads: disarm now, say why. */
static void stim_take_alert(struct stim *s)
{
	enum rpmsd_coil_alert what;
	bool was_armed = s->gate.armed;
	struct plugin *from = s->plugin;
	int code;

	/*
	 * Either coil's alert disarms (an e-stop may be wired to either
	 * plugin); the other coil is only asked, never armed or fired.
	 */
	if (!plugin_take_alert(s->plugin, &what, &code)) {
		from = s->coils[STIM_COIL_SHAM] == s->plugin ? s->coils[STIM_COIL_ACTIVE]
							     : s->coils[STIM_COIL_SHAM];
		if (!from || !plugin_take_alert(from, &what, &code)) {
			return;
		}
	}
	if (what != RPMSD_COIL_ALERT_ESTOP) {
		char text[EVENT_REASON_MAX - 40], reason[EVENT_REASON_MAX];

		/* the plugin's words name the cause (a device fault, a lost link) */
		plugin_alert_text(from, text, sizeof(text));
		snprintf(reason, sizeof(reason), "coil plugin alert: disarmed%s%s",
			 text[0] ? ": " : "", text);
		stim_fault(s, SAFETY_COIL_FAULT, code, "coil alert", reason);
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

/*
 * Between trains the coil's temperature still moves (a stimulator that
 * reads it back over its link cools or heats): read the status once a
 * second so the heartbeat and `status` show it, not the value of the last
 * pulse. Status is one of the RT-safe ops.
 */
static void stim_idle_status(struct stim *s, int64_t now)
{
	struct rpmsd_coil_status st = { .temperature_c = NAN };
	bool wanted = atomic_exchange(&s->status_wanted, false);

	if (s->cur.in_train) {
		if (wanted) {
			atomic_store(&s->status_wanted, true);	/* after the train */
		}
		return;
	}
	if (!plugin_has_status(s->plugin)) {
		/* a plugin that cannot say otherwise is taken as ready */
		if (wanted) {
			atomic_store(&s->coil_ready, true);
			atomic_store(&s->coil_ready_mono, sclock_mono_ns());
		}
		return;
	}
	if (!wanted && now - s->status_at < STIM_STATUS_PERIOD_NS) {
		return;
	}
	s->status_at = now;
	if (plugin_status(s->plugin, &st) == 0) {
		stim_note_temperature(s, st.temperature_c);
		/* the value before its time: a reader that sees the time sees it */
		atomic_store(&s->coil_ready, st.ready && !st.fault && !st.estop);
		atomic_store(&s->coil_ready_mono, sclock_mono_ns());
	}
}

static void *stim_thread(void *arg)
{
	struct stim *s = arg;
	struct stim_request req;
	unsigned seen, dseq;
	int64_t now, wake_at;

	rt_prefault_stack();
	now = sclock_now(s->clock);
	for (;;) {
		/* The supervisor's proof that this thread still turns. */
		atomic_store_explicit(&s->beat_ns, sclock_mono_ns(), memory_order_release);
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
		stim_idle_status(s, now);
		stim_ledger_sync(s);
		stim_stall_check(s);
		/*
		 * Disarms first, then the ring: a disarm is never queued behind
		 * anything, and an arm posted before it is dropped (stim_take_arm).
		 */
		dseq = atomic_load(&s->disarm_seq);
		if (dseq != s->disarm_seen) {
			s->disarm_seen = dseq;
			stim_apply_armed(s, false, atomic_load(&s->disarm_reason));
		}
		stim_take_cmds(s);
		if (!s->cur.in_train && ring_pop(s->mailbox, &req)) {
			atomic_store(&s->busy, true);
			stim_begin_train(s, &req, now);
		}
		if (s->cur.in_train && now >= s->cur.next_deadline) {
			now = stim_fire(s);
			continue;
		}
		stim_refusal_flush(&s->refusals, now, false);
		wake_at = stim_watchdog(s, now);
		if (s->cur.in_train && s->cur.next_deadline < wake_at) {
			wake_at = s->cur.next_deadline;
		}
		if (stim_refusal_deadline(&s->refusals) < wake_at) {
			wake_at = stim_refusal_deadline(&s->refusals);
		}
		/* Idle or not, turn often enough for the heartbeat to stay fresh. */
		if (s->beat_period_ns > 0 && wake_at - now > s->beat_period_ns) {
			wake_at = now + s->beat_period_ns;
		}
		now = sclock_wait(s->clock, wake_at, &s->wake, seen);
	}
	if (s->cur.in_train && !s->cur.train.open_loop) {
		s->stats.dropped_at_stop += stim_train_pending(&s->cur);
	}
	while (ring_pop(s->mailbox, &req)) {
		if (!req.open_loop) {
			s->stats.dropped_at_stop += (uint64_t)req.pulses * (req.cycles ? req.cycles : 1);
		}
	}
	s->cur.in_train = false;
	stim_train_settle(&s->cur, &s->stats, true);
	/* the last of them: no pulse can follow, one slot for the disarm */
	stim_refusal_flush_all(&s->refusals, sclock_now(s->clock), 1);
	stim_apply_armed(s, false, "stopping");
	atomic_store(&s->busy, false);
	return NULL;
}

/* The [sim_patient] section's patient (replay only). */
static int stim_patient_create(const struct rpmsd_config *cfg, struct stim *s)
{
	const struct simpatient_params prm = {
		.threshold_pct = cfg->sim_patient.threshold_pct,
		.slope_pct = cfg->sim_patient.slope_pct,
		.max_uv = cfg->sim_patient.max_uv,
		.noise = cfg->sim_patient.noise,
		.seed = (uint64_t)cfg->sim_patient.seed,
	};
	char err[160];
	int ret;

	ret = simpatient_create(&prm, &s->patient, err, sizeof(err));
	if (ret < 0) {
		log_err("sim_patient.%s", err);
		return ret;
	}
	s->patient_latency_us = cfg->sim_patient.latency_ms * 1000.0;
	s->patient_artefact_uv = cfg->sim_patient.artefact_uv;
	s->patient_channel = (uint32_t)cfg->sim_patient.channel;
	log_warn("sim_patient: a SIMULATED patient answers the coil's pulses in the replayed EMG "
		 "(threshold %g %%, slope %g %%, max %g uV, noise %g, seed %d, channel %d): testing only",
		 prm.threshold_pct, prm.slope_pct, prm.max_uv, prm.noise, cfg->sim_patient.seed,
		 cfg->sim_patient.channel);
	return 0;
}

int stim_create(const struct rpmsd_config *cfg, struct sclock *clock,
		struct plugin *plugin, struct stim **out)
{
	struct stim *s = calloc(1, sizeof(*s));
	unsigned i;
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
	ret = fresh_create(&s->fresh);
	if (ret < 0) {
		goto err_events;
	}
	ret = cmdq_create(STIM_CMDQ, sizeof(struct stim_cmdq_rec), &s->cmds);
	if (ret < 0) {
		goto err_fresh;
	}
	s->clock = clock;
	s->plugin = plugin;
	s->coils[STIM_COIL_ACTIVE] = plugin;
	safety_limits_from_config(cfg, &s->limits);
	s->cfg_motor_threshold_pct = s->limits.motor_threshold_pct;
	if (plugin_device(plugin)) {
		/* the gate's own copy of the device's envelope: read on the stim thread */
		s->limits.dev = *plugin_device(plugin);
		safety_device_temp_limit(&s->limits);
	}
	/* config_rule.c refuses a simulated patient with any source but a replay */
	if (cfg->sim_patient.threshold_pct > 0.0 && cfg->source.type == CONFIG_SOURCE_REPLAY) {
		ret = stim_patient_create(cfg, s);
		if (ret < 0) {
			goto err_cmds;
		}
	}
	/* nothing recorded in a ledger yet: no pulse until stim_set_ledger */
	safety_init(&s->gate, 0);
	atomic_init(&s->ledger_recorded, 0);
	atomic_init(&s->ledger_day, 0);
	atomic_init(&s->day_pulses, 0);
	atomic_init(&s->last_pulse_mono, INT64_MIN);
	atomic_init(&s->status_wanted, false);
	atomic_init(&s->coil_ready, false);
	atomic_init(&s->coil_ready_mono, INT64_MIN);
	atomic_init(&s->arm_hold, NULL);
	atomic_init(&s->wake, 0);
	atomic_init(&s->stop, false);
	atomic_init(&s->busy, false);
	atomic_init(&s->last_refusal_rule, 0);
	atomic_init(&s->armed, false);
	atomic_init(&s->pulse_count, 0);
	atomic_init(&s->session_pulses, 0);
	atomic_init(&s->arm_tickets, 0);
	atomic_init(&s->arm_attempts, 0);
	atomic_init(&s->arm_code, 0);
	atomic_init(&s->arm_reason, "");
	atomic_init(&s->coil_temp_bits, 0);
	atomic_init(&s->coil_temp_at, INT64_MIN);
	atomic_init(&s->sample_t0_ns, 0);
	atomic_init(&s->have_sample_clock, false);
	for (i = 0; i < STIM_PULSE_LOG; i++) {
		atomic_init(&s->pulse_sample[i], UINT64_MAX);
		atomic_init(&s->resp_uv[i], NAN);
		atomic_init(&s->resp_latency_us[i], 0.0);
		atomic_init(&s->resp_artefact_uv[i], 0.0);
		atomic_init(&s->resp_channel[i], 0);
	}
	atomic_init(&s->disarm_seq, 0);
	atomic_init(&s->disarm_reason, "");
	atomic_init(&s->disarms, 0);
	/* Refusals may fill half the ring at most: the rest is for pulses and states. */
	stim_refusal_init(&s->refusals, s->events, clock, &s->stats,
			  ring_capacity(s->events) / 2);
	stim_train_init(&s->cur);
	atomic_init(&s->beat_ns, 0);
	atomic_init(&s->locked_out, false);
	/*
	 * A quarter of the supervisor's limit: a missed turn or two is not
	 * a hang. Virtual time only moves with the EMG: no heartbeat there.
	 */
	if (!sclock_is_virtual(clock) && cfg->daemon.heartbeat_timeout_ms > 0) {
		s->beat_period_ns = (int64_t)cfg->daemon.heartbeat_timeout_ms * 1000000 / 4;
	}
	*out = s;
	return 0;

err_cmds:
	cmdq_destroy(s->cmds);
err_fresh:
	fresh_destroy(s->fresh);
err_events:
	ring_destroy(s->events);
err_mailbox:
	ring_destroy(s->mailbox);
err_free:
	free(s);
	return ret;
}

int stim_start(struct stim *s, int priority, int cpu, bool *got_rt)
{
	int ret;

	plugin_set_wake(s->coils[STIM_COIL_ACTIVE], &s->wake);
	if (s->coils[STIM_COIL_SHAM]) {
		plugin_set_wake(s->coils[STIM_COIL_SHAM], &s->wake);
	}
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
	plugin_set_wake(s->coils[STIM_COIL_ACTIVE], NULL);
	if (s->coils[STIM_COIL_SHAM]) {
		plugin_set_wake(s->coils[STIM_COIL_SHAM], NULL);
	}
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
	simpatient_destroy(s->patient);
	cmdq_destroy(s->cmds);
	fresh_destroy(s->fresh);
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

void stim_disarm(struct stim *s, const char *reason)
{
	/* the reason before the count: a thread that sees the count sees it */
	atomic_store(&s->disarm_reason, reason);
	atomic_fetch_add(&s->disarm_seq, 1);
	sclock_kick(s->clock, &s->wake);
}

bool stim_idle(const struct stim *s)
{
	return !atomic_load(&((struct stim *)s)->busy) && ring_count(s->mailbox) == 0;
}

uint64_t stim_pulse_count(const struct stim *s)
{
	return atomic_load_explicit(&((struct stim *)s)->pulse_count, memory_order_acquire);
}

void stim_set_sample_rate(struct stim *s, double rate_hz)
{
	s->rate_hz = rate_hz;
}

void stim_set_sample_clock(struct stim *s, int64_t t0_ns)
{
	atomic_store_explicit(&s->sample_t0_ns, t0_ns, memory_order_relaxed);
	atomic_store_explicit(&s->have_sample_clock, true, memory_order_release);
}

uint64_t stim_pulse_sample(const struct stim *s, uint64_t n)
{
	struct stim *q = (struct stim *)s;
	uint64_t count = atomic_load_explicit(&q->pulse_count, memory_order_acquire), at;

	if (n == 0 || n > count || count - n >= STIM_PULSE_LOG) {
		return UINT64_MAX;
	}
	at = atomic_load_explicit(&q->pulse_sample[n % STIM_PULSE_LOG], memory_order_acquire);
	/* overwritten meanwhile by a pulse STIM_PULSE_LOG later: too old to tell */
	count = atomic_load_explicit(&q->pulse_count, memory_order_acquire);
	return count - n >= STIM_PULSE_LOG ? UINT64_MAX : at;
}

bool stim_pulse_response(const struct stim *s, uint64_t n, struct stim_response *out)
{
	struct stim *q = (struct stim *)s;
	uint64_t count = atomic_load_explicit(&q->pulse_count, memory_order_acquire);
	size_t i = n % STIM_PULSE_LOG;

	if (n == 0 || n > count || count - n >= STIM_PULSE_LOG) {
		return false;
	}
	out->uv = atomic_load_explicit(&q->resp_uv[i], memory_order_relaxed);
	out->latency_us = atomic_load_explicit(&q->resp_latency_us[i], memory_order_relaxed);
	out->artefact_uv = atomic_load_explicit(&q->resp_artefact_uv[i], memory_order_relaxed);
	out->channel = atomic_load_explicit(&q->resp_channel[i], memory_order_relaxed);
	/* overwritten meanwhile by a pulse STIM_PULSE_LOG later: too old to tell */
	atomic_thread_fence(memory_order_acquire);
	count = atomic_load_explicit(&q->pulse_count, memory_order_relaxed);
	return count - n < STIM_PULSE_LOG && !isnan(out->uv);
}

bool stim_armed(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->armed);
}

unsigned stim_disarms(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->disarms);
}

struct fresh *stim_fresh(struct stim *s)
{
	return s->fresh;
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

/* Post @c to the stim thread's command ring and wake it. Any thread, never blocks. */
static int stim_post_cmd(struct stim *s, const struct stim_cmdq_rec *c)
{
	int ret = cmdq_post(s->cmds, c);

	if (ret < 0) {
		return ret;
	}
	sclock_kick(s->clock, &s->wake);
	return 0;
}

int stim_arm(struct stim *s, const char *reason, unsigned *ticket)
{
	struct stim_cmdq_rec c = { .kind = STIM_CMDQ_ARM, .reason = reason };
	int ret;

	/* the disarms before the ticket: a disarm after the post drops this arm */
	c.disarm_seq = atomic_load(&s->disarm_seq);
	c.ticket = atomic_fetch_add(&s->arm_tickets, 1) + 1;
	ret = stim_post_cmd(s, &c);
	if (ret < 0) {
		return ret;
	}
	if (ticket) {
		*ticket = c.ticket;
	}
	return 0;
}

int stim_session_threshold(struct stim *s, double motor_threshold_pct)
{
	const struct stim_cmdq_rec c = {
		.kind = STIM_CMDQ_SESSION_MT, .motor_threshold_pct = motor_threshold_pct,
	};

	return stim_post_cmd(s, &c);
}

int stim_new_session(struct stim *s, uint64_t session_cap, double motor_threshold_pct)
{
	return stim_new_session_coil(s, STIM_COIL_ACTIVE, session_cap, motor_threshold_pct);
}

int stim_new_session_coil(struct stim *s, enum stim_coil coil, uint64_t session_cap,
			  double motor_threshold_pct)
{
	const struct stim_cmdq_rec c = {
		.kind = STIM_CMDQ_NEW_SESSION, .coil = coil, .session_cap = session_cap,
		.motor_threshold_pct = motor_threshold_pct,
	};

	/* never a fall-back to the active coil for a sham session */
	if ((unsigned)coil >= STIM_COILS || !s->coils[coil]) {
		return -EINVAL;
	}
	return stim_post_cmd(s, &c);
}

/* Two envelopes hold pulses to the same rules (field by field: no padding compared). */
static bool stim_same_device(const struct safety_device *a, const struct safety_device *b)
{
	size_t i;

	if (a->present != b->present || a->confirms != b->confirms ||
	    strcmp(a->model, b->model) || a->max_output_pct != b->max_output_pct ||
	    a->n_caps != b->n_caps || a->min_train_gap_ns != b->min_train_gap_ns ||
	    a->single_max_hz != b->single_max_hz || a->n_energy != b->n_energy ||
	    a->power_w != b->power_w || a->cutoff_c != b->cutoff_c) {
		return false;
	}
	for (i = 0; i < a->n_caps; i++) {
		if (a->caps[i].max_output_pct != b->caps[i].max_output_pct ||
		    a->caps[i].max_rate_hz != b->caps[i].max_rate_hz) {
			return false;
		}
	}
	for (i = 0; i < a->n_energy; i++) {
		if (a->energy[i].output_pct != b->energy[i].output_pct ||
		    a->energy[i].joules != b->energy[i].joules) {
			return false;
		}
	}
	return true;
}

int stim_set_sham_coil(struct stim *s, struct plugin *sham)
{
	const struct safety_device *a, *b;

	if (s->started || !sham || sham == s->coils[STIM_COIL_ACTIVE]) {
		return -EINVAL;
	}
	a = plugin_device(s->coils[STIM_COIL_ACTIVE]);
	b = plugin_device(sham);
	/*
	 * The gate holds pulses to one envelope (s->limits.dev): a sham coil
	 * judged by another device's rules would refuse or admit differently,
	 * which would unblind, or be unsafe.
	 */
	if (!a != !b || (a && !stim_same_device(a, b))) {
		return -EXDEV;
	}
	s->coils[STIM_COIL_SHAM] = sham;
	return 0;
}

const struct safety_device *stim_device(const struct stim *s)
{
	return s && s->limits.dev.present ? &s->limits.dev : NULL;
}

int stim_device_intensity(struct stim *s, double pct)
{
	int ret, sham = 0;

	if (!s) {
		return -EOPNOTSUPP;
	}
	/* both coils at the same output: a sham coil must look the same */
	ret = plugin_set_intensity(s->coils[STIM_COIL_ACTIVE], pct);
	if (s->coils[STIM_COIL_SHAM]) {
		sham = plugin_set_intensity(s->coils[STIM_COIL_SHAM], pct);
	}
	return ret < 0 ? ret : sham;
}

bool stim_coil_ready(struct stim *s, int64_t since_mono)
{
	/* the time first: a read at or after since_mono carries its own value */
	if (atomic_load(&s->coil_ready_mono) >= since_mono && atomic_load(&s->coil_ready)) {
		return true;
	}
	atomic_store(&s->status_wanted, true);
	sclock_kick(s->clock, &s->wake);
	return false;
}

double stim_confirmed_intensity(struct stim *s)
{
	if (!s || !s->limits.dev.confirms) {
		return NAN;
	}
	return plugin_confirmed_intensity(s->coils[STIM_COIL_ACTIVE]);
}

unsigned stim_last_refusal(const struct stim *s)
{
	return atomic_load(&((struct stim *)s)->last_refusal_rule);
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
	stim_disarm(s, reason);
}

int stim_test_stall(struct stim *s)
{
	const struct stim_cmdq_rec c = { .kind = STIM_CMDQ_TEST_STALL };

	return stim_post_cmd(s, &c);
}
