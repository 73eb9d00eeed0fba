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
	int64_t armed_at;		/* session time of the last arm (stim thread) */
	_Atomic uint64_t pulse_count;
	pthread_t tid;
	bool started;

	/* current train, stim thread only */
	bool in_train;
	struct stim_request train;
	uint32_t next_index;
	int64_t next_deadline;
	int64_t period_ns;

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
	ret = plugin_arm(s->plugin);
	if (ret < 0) {
		s->stats.faults++;
		plugin_disarm(s->plugin);
		stim_emit_state(s, EVENT_STATE_FAULT, ret, "arm failed");
		return;
	}
	safety_set_armed(&s->gate, true);
	atomic_store(&s->armed, true);
	s->armed_at = sclock_now(s->clock);
	stim_emit_state(s, EVENT_STATE_ARMED, 0, reason);
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
	s->in_train = true;
	s->next_index = 0;
	s->period_ns = req->pulses > 1 ? llround(1e9 / req->frequency_hz) : 0;
	s->next_deadline = req->start_ns > now ? req->start_ns : now;
	s->stats.requests++;
}

static void stim_refuse(struct stim *s, const struct safety_verdict *v, int64_t now)
{
	struct event ev = { .type = EVENT_REFUSAL, .channel = s->train.channel };
	uint32_t dropped = s->train.pulses - s->next_index;

	ev.sample = sclock_last_sample(s->clock);
	ev.u.refusal.rule = v->rule;
	ev.u.refusal.train_id = s->train.train_id;
	ev.u.refusal.index = s->next_index;
	ev.u.refusal.dropped = dropped;
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
		.train_id = s->train.train_id,
		.intensity_pct = s->train.intensity_pct,
	};
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
		s->stats.faults++;
		s->stats.dropped_by_rule[SAFETY_COIL_FAULT] += s->train.pulses - s->next_index;
		stim_end_train(s);
		stim_apply_armed(s, false, "pulse failed");
		stim_emit_state(s, EVENT_STATE_FAULT, ret, "coil plugin pulse failed");
		return now;
	}
	safety_commit(&s->gate, &req, now);
	s->stats.pulses++;
	atomic_store(&s->pulse_count, s->stats.pulses);

	ev.sample = sclock_last_sample(s->clock);
	ev.u.pulse.train_id = s->train.train_id;
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
	if (s->next_index >= s->train.pulses) {
		stim_end_train(s);
		return now;
	}
	/*
	 * Never closer than one period to the pulse just fired, even if it
	 * was late: a late pulse delays the rest of the train rather than
	 * squeezing the next one in early.
	 */
	s->next_deadline = s->train.start_ns + llround((double)s->next_index * 1e9 /
						       s->train.frequency_hz);
	if (s->next_deadline < now + s->period_ns) {
		s->next_deadline = now + s->period_ns;
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

static void *stim_thread(void *arg)
{
	struct stim *s = arg;
	struct stim_request req;
	unsigned seen;
	int64_t now, wake_at;
	int cmd;

	rt_prefault_stack();
	now = sclock_now(s->clock);
	while (!atomic_load(&s->stop)) {
		/* Read the word before looking at the inputs: no lost wake-up. */
		seen = atomic_load(&s->wake);
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
		now = sclock_wait(s->clock, wake_at, &s->wake, seen);
	}
	if (s->in_train) {
		s->stats.dropped_at_stop += s->train.pulses - s->next_index;
	}
	while (ring_pop(s->mailbox, &req)) {
		s->stats.dropped_at_stop += req.pulses;
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
	safety_init(&s->gate);
	atomic_init(&s->wake, 0);
	atomic_init(&s->cmd, STIM_CMD_NONE);
	atomic_init(&s->cmd_reason, "");
	atomic_init(&s->stop, false);
	atomic_init(&s->busy, false);
	atomic_init(&s->armed, false);
	atomic_init(&s->pulse_count, 0);
	s->next_deadline = SCLOCK_NEVER;
	*out = s;
	return 0;

err_mailbox:
	ring_destroy(s->mailbox);
err_free:
	free(s);
	return ret;
}

int stim_start(struct stim *s, int priority, bool *got_rt)
{
	int ret;

	ret = rt_thread_start(&s->tid, "rpmsd-stim", priority, stim_thread, s, got_rt);
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
