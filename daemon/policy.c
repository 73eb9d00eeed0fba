/* SPDX-License-Identifier: MIT */
/*
 * Policy: turns the configured protocol into stimulation requests.
 *
 * The protocol's timing is computed once (config_train_shape) into a
 * template request. Closed loop: a burst onset posts it, unless the
 * previous request plus the refractory time has not ended. Open loop: the
 * template repeats, off_ms between trains, from the moment the coil is
 * armed until open_loop_pulses are delivered, one train per request (a
 * protocol changed meanwhile applies from the next train), each posted a
 * little ahead of its start on the schedule; a train cut short by a
 * refusal is followed by a new one for the pulses still due, off_ms later.
 * Every pulse still goes through the safety gate in the stim thread.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"

/* Open loop: the train posted last, and where the next one goes. */
struct policy_ol {
	bool out;			/* a train was posted; its end not seen yet */
	bool chain;			/* the next train follows it on the schedule */
	uint64_t base;			/* pulses delivered when it was posted */
	uint64_t asked;			/* pulses it asked for */
	int64_t start_ns;		/* its start, as scheduled */
	int64_t on_ns;			/* its on-period: start to the pause */
	int64_t last_ns;		/* its last pulse, as scheduled */
	int64_t resume_at_ns;		/* after a cut or a disarm: not before this */
};

struct policy {
	struct stim_request proto;	/* template from the config */
	bool open_loop;
	uint64_t open_loop_pulses;
	int64_t off_ns;			/* open loop: pause after a train, or a cut-short one */
	int64_t refractory_ns;
	uint32_t next_train_id;
	bool have_last;
	int64_t busy_until_ns;		/* end of last request + refractory (closed loop) */
	int64_t prev_busy_until_ns;	/* for policy_cancel_last */
	bool prev_have_last;
	struct policy_ol ol;
	struct policy_ol prev_ol;	/* for policy_cancel_last */
	uint32_t prev_train_id;		/* for policy_cancel_last (open loop) */
};

void policy_protocol_from_config(const struct rpmsd_config *cfg, struct policy_protocol *pp)
{
	struct config_train_shape sh;

	memset(pp, 0, sizeof(*pp));
	config_train_shape(cfg, &sh);
	pp->proto.pulses = sh.pulses;
	pp->proto.frequency_hz = sh.rate_hz;
	pp->proto.burst_pulses = sh.burst_pulses;
	pp->proto.burst_period_ns = llround(sh.burst_period_s * 1e9);
	pp->proto.cycles = sh.cycles;
	pp->proto.cycle_period_ns = llround(sh.cycle_period_s * 1e9);
	pp->proto.intensity_pct = cfg->stim.intensity_pct;
	pp->proto.width_us = (uint32_t)cfg->stim.pulse_width_us;
	pp->off_ns = llround(cfg->stim.off_ms * 1e6);
	pp->refractory_ns = llround(cfg->stim.refractory_ms * 1e6);
	pp->open_loop_pulses = (uint64_t)cfg->stim.open_loop_pulses;
}

void policy_set_protocol(struct policy *p, const struct policy_protocol *pp)
{
	p->proto = pp->proto;
	p->off_ns = pp->off_ns;
	p->refractory_ns = pp->refractory_ns;
	p->open_loop_pulses = pp->open_loop_pulses;
}

int policy_create(const struct rpmsd_config *cfg, struct policy **out)
{
	struct policy *p = calloc(1, sizeof(*p));
	struct policy_protocol pp;

	if (!p) {
		return -ENOMEM;
	}
	policy_protocol_from_config(cfg, &pp);
	policy_set_protocol(p, &pp);
	p->open_loop = cfg->stim.mode == CONFIG_MODE_OPEN_LOOP;
	p->next_train_id = 1;
	*out = p;
	return 0;
}

void policy_destroy(struct policy *p)
{
	free(p);
}

enum event_action policy_on_onset(struct policy *p, int64_t now_ns, uint64_t sample,
				  uint32_t channel, struct stim_request *req)
{
	/* In open loop the EMG does not start anything; onsets are only reported. */
	if (p->open_loop) {
		return EVENT_ACTION_NONE;
	}
	if (p->have_last && now_ns < p->busy_until_ns) {
		return EVENT_ACTION_REFRACTORY;
	}
	*req = p->proto;
	req->train_id = p->next_train_id;
	p->next_train_id += req->cycles;
	req->start_ns = now_ns;
	req->trigger_sample = sample;
	req->channel = channel;
	p->prev_have_last = p->have_last;
	p->prev_busy_until_ns = p->busy_until_ns;
	p->have_last = true;
	p->busy_until_ns = now_ns + stim_request_span_ns(req) + p->refractory_ns;
	return EVENT_ACTION_REQUESTED;
}

void policy_cancel_last(struct policy *p)
{
	if (p->open_loop) {
		/* as if never asked: the same train is asked for at the next tick */
		p->ol = p->prev_ol;
		p->next_train_id = p->prev_train_id;
		return;
	}
	p->have_last = p->prev_have_last;
	p->busy_until_ns = p->prev_busy_until_ns;
}

uint32_t policy_claim_train_id(struct policy *p)
{
	return p->next_train_id++;
}

bool policy_done(const struct policy *p, uint64_t delivered)
{
	return p->open_loop && delivered >= p->open_loop_pulses;
}

/* Open loop: the request the stim thread was working on ended (it is idle). */
static void policy_ol_ended(struct policy *p, int64_t now_ns, uint64_t delivered)
{
	struct policy_ol *o = &p->ol;

	o->out = false;
	/* a new session restarts the count: whatever it was, it ended short */
	if (delivered >= o->base && delivered - o->base >= o->asked) {
		o->chain = true;
		return;
	}
	/* cut short (a refusal, a disarm): the rest off_ms from now, as between trains */
	o->chain = false;
	o->resume_at_ns = now_ns + p->off_ns;
}

bool policy_tick(struct policy *p, int64_t now_ns, int64_t lead_ns, bool armed, bool idle,
		 uint64_t delivered, struct stim_request *req)
{
	struct policy_ol *o = &p->ol;
	uint64_t due, n;
	int64_t start, gap;

	if (!p->open_loop || !idle) {
		return false;
	}
	if (o->out) {
		policy_ol_ended(p, now_ns, delivered);
	}
	if (!armed) {
		/* a disarm between trains ends the schedule as a cut does */
		if (o->chain) {
			o->chain = false;
			o->resume_at_ns = now_ns + p->off_ns;
		}
		return false;
	}
	if (now_ns < o->resume_at_ns || delivered >= p->open_loop_pulses) {
		return false;
	}
	start = now_ns;
	if (o->chain) {
		/* the previous train's on-period, then the pause in force now */
		start = o->start_ns + o->on_ns + p->off_ns;
		/*
		 * A protocol changed since (set) may need a longer pause after
		 * the last pulse than that: never less than its own, which its
		 * check judged. The same as the line above for an unchanged one.
		 */
		gap = p->proto.cycle_period_ns -
		      stim_request_offset_ns(&p->proto, p->proto.pulses - 1);
		if (start - o->last_ns < gap) {
			start = o->last_ns + gap;
		}
		if (start > now_ns && start - now_ns > lead_ns) {
			return false;
		}
	}
	due = p->open_loop_pulses - delivered;
	n = due < p->proto.pulses ? due : p->proto.pulses;
	*req = p->proto;
	req->train_id = p->next_train_id;
	req->cycles = 1;
	req->pulse_budget = n;
	req->due = due;
	req->start_ns = start;
	req->gap_ns = o->chain ? start - o->last_ns : 0;
	req->trigger_sample = 0;
	req->channel = 0;
	req->open_loop = true;
	p->prev_ol = *o;
	p->prev_train_id = p->next_train_id;
	p->next_train_id++;
	o->out = true;
	o->chain = false;
	o->base = delivered;
	o->asked = n;
	o->start_ns = start;
	o->on_ns = p->proto.cycle_period_ns - p->off_ns;
	o->last_ns = start + stim_request_offset_ns(req, (uint32_t)n - 1);
	return true;
}

/* ---- checking a protocol against the gate ------------------------------ */

struct policy_sim {
	const struct safety_limits *lim;
	struct safety_state st;		/* the gate's, as the stim thread would leave it */
	struct policy_refusal *out;
	uint32_t train0;		/* open loop: the run's train that is the request's first */
	/* open loop: the pulse with the shortest gap to the one before it */
	bool track_cut;
	bool have_cut;
	bool cut_moved;			/* ... found in the train being judged */
	int64_t cut_gap_ns;
	int64_t cut_at_ns;
	struct safety_state cut_st;	/* the gate's state just before that pulse */
};

/* Pulse k of train c (of the run) of @req. */
static enum policy_at policy_where(const struct stim_request *req, uint32_t c, uint32_t k)
{
	if (k == 0) {
		return c == 0 ? POLICY_AT_START : POLICY_AT_NEXT_TRAIN;
	}
	if (req->burst_pulses && k % req->burst_pulses == 0) {
		return POLICY_AT_NEXT_BURST;
	}
	return POLICY_AT_BURST;
}

/* The gate's request for pulse k of train c of @req, as stim_fire makes it. */
static struct safety_request policy_gate_request(const struct stim_request *req, uint32_t c)
{
	struct safety_request r = {
		.train_id = req->train_id + c,
		.frequency_hz = req->frequency_hz,
		.intensity_pct = req->intensity_pct,
		.acq_age_ns = 0,
		.have_status = false,
	};

	r.coil.temperature_c = NAN;
	return r;
}

/* Judge pulse k of train c of @req at @t_ns; commit it when admitted. */
static bool policy_sim_pulse(struct policy_sim *s, const struct stim_request *req, uint32_t c,
			     uint32_t k, int64_t t_ns, enum policy_at at)
{
	struct safety_request r = policy_gate_request(req, c);
	int64_t gap = s->st.any_pulse ? t_ns - s->st.last_pulse_ns : 0;
	struct safety_verdict v;

	if (s->track_cut && s->st.any_pulse && (!s->have_cut || gap < s->cut_gap_ns)) {
		s->have_cut = true;
		s->cut_moved = true;
		s->cut_gap_ns = gap;
		s->cut_at_ns = t_ns;
		s->cut_st = s->st;
	}
	v = safety_admit(s->lim, &s->st, &r, t_ns);
	if (v.rule != SAFETY_OK) {
		s->out->verdict = v;
		s->out->at = at;
		s->out->train = s->train0 + c;
		s->out->index = k;
		s->out->interval_ns = gap;
		/* the duration rule reports n / rate, n the pulse's number in its train */
		if (v.rule == SAFETY_TRAIN_DURATION && v.value > 0.0) {
			s->out->rate_hz = (double)(s->st.train_id == r.train_id && s->st.any_pulse
						   ? s->st.train_pulses + 1 : 1) / v.value;
		}
		return false;
	}
	safety_commit(&s->st, &r, t_ns);
	return true;
}

/* Pulses the counting rules still admit from @st: session, day, ledger. */
static uint64_t policy_count_room(const struct safety_limits *lim, const struct safety_state *st)
{
	uint64_t room, r;

	room = safety_session_max(lim, st) > st->session_pulses
		       ? safety_session_max(lim, st) - st->session_pulses : 0;
	r = lim->max_daily_pulses > st->day_pulses ? lim->max_daily_pulses - st->day_pulses : 0;
	room = r < room ? r : room;
	r = st->day_recorded > st->day_pulses ? st->day_recorded - st->day_pulses : 0;
	return r < room ? r : room;
}

/*
 * Every pulse of @req, in order, as the stim thread fires them on time
 * (stim_fire: the designed time of train c, pulse k; the budget cuts the
 * last train short). Train c >= 2 is train 1 again, cycle_period_ns later:
 * the gate's rules look only at the time since the last pulse and the
 * train's own pulses, so the state after train 1 moved on by whole cycles
 * is the state after any later one. Trains are skipped only as long as
 * the counting rules cannot be reached inside them.
 */
static bool policy_sim_request(struct policy_sim *s, const struct stim_request *req)
{
	uint32_t pulses = req->pulses ? req->pulses : 1;
	uint32_t cycles = req->cycles ? req->cycles : 1;
	uint64_t total = (uint64_t)cycles * pulses, n, skip, room;
	uint32_t c, k, last;
	int64_t t;

	if (req->pulse_budget && req->pulse_budget < total) {
		total = req->pulse_budget;
	}
	last = (uint32_t)((total - 1) / pulses);
	for (c = 0; c <= last; c++) {
		if (c == 2 && last > 2) {
			skip = last - 2;
			room = policy_count_room(s->lim, &s->st);
			if (skip * pulses > room) {
				skip = room / pulses;
			}
			s->st.last_pulse_ns += (int64_t)skip * req->cycle_period_ns;
			s->st.train_first_ns += (int64_t)skip * req->cycle_period_ns;
			s->st.train_id += (uint32_t)skip;
			s->st.session_pulses += skip * pulses;
			s->st.day_pulses += skip * pulses;
			c += (uint32_t)skip;
		}
		n = c == last ? total - (uint64_t)last * pulses : pulses;
		for (k = 0; k < n; k++) {
			t = stim_request_at_ns(req, c, k);
			if (!policy_sim_pulse(s, req, c, k, t, policy_where(req, c, k))) {
				return false;
			}
		}
	}
	return true;
}

/* Whether the gate's max_frequency rule refuses a pulse of a burst after the one before. */
static bool policy_burst_rate_refused(const struct stim_request *req,
				      const struct safety_limits *lim)
{
	struct safety_request r = policy_gate_request(req, 0);
	struct safety_state st;
	uint32_t per = req->burst_pulses ? req->burst_pulses : req->pulses, j;

	/* only the rate rule can refuse: nothing before it in the table does at 0 % */
	r.intensity_pct = 0.0;
	for (j = 1; j < per && j < req->pulses; j++) {
		safety_init(&st, 0);
		st.armed = true;
		st.any_pulse = true;
		st.last_pulse_ns = stim_request_offset_ns(req, j - 1);
		st.train_id = r.train_id;
		st.train_pulses = j;
		st.train_first_ns = 0;
		if (safety_admit(lim, &st, &r, stim_request_offset_ns(req, j)).rule ==
		    SAFETY_MAX_FREQUENCY) {
			return true;
		}
	}
	return false;
}

/* Whether @b is @a again: the same pulses at the same offsets, for the same gate rules. */
static bool policy_same_train(const struct stim_request *a, const struct stim_request *b)
{
	return a->pulses == b->pulses && a->pulse_budget == b->pulse_budget &&
	       a->frequency_hz == b->frequency_hz && a->burst_pulses == b->burst_pulses &&
	       a->burst_period_ns == b->burst_period_ns && a->intensity_pct == b->intensity_pct &&
	       a->cycles == 1 && b->cycles == 1;
}

/*
 * Open loop: every train of the count, as the policy's own policy_tick
 * asks for them (each when the one before has ended: the check judges the
 * schedule posted on time), every pulse at its designed time. A train that
 * is the one before again, as that one was the one before it, at the same
 * spacing, leaves the gate in the same state moved on by that spacing (its
 * rules look only at the time since the last pulse and the train's own
 * pulses): it is skipped as long as the counting rules cannot be reached
 * inside it. @cut_p receives the policy as it was when the train holding
 * the shortest gap was posted.
 */
static bool policy_sim_open_loop(struct policy *p, struct policy_sim *s,
				 struct stim_request *req, struct policy *cut_p)
{
	struct stim_request prev[2];
	uint64_t delivered = 0, n;
	uint32_t c, k;
	int64_t shift;

	for (c = 0;; c++) {
		n = req->pulse_budget;
		if (c >= 2 && policy_same_train(&prev[1], req) &&
		    policy_same_train(&prev[0], &prev[1]) &&
		    req->start_ns - prev[1].start_ns == prev[1].start_ns - prev[0].start_ns &&
		    n <= policy_count_room(s->lim, &s->st)) {
			shift = req->start_ns - prev[1].start_ns;
			s->st.last_pulse_ns += shift;
			s->st.train_first_ns += shift;
			s->st.train_id = req->train_id;
			s->st.session_pulses += n;
			s->st.day_pulses += n;
		} else {
			s->train0 = c;
			s->cut_moved = false;
			for (k = 0; k < n; k++) {
				if (!policy_sim_pulse(s, req, 0, k,
						      req->start_ns + stim_request_offset_ns(req, k),
						      policy_where(req, c, k))) {
					return false;
				}
			}
			if (s->cut_moved) {
				*cut_p = *p;
			}
		}
		delivered += n;
		prev[0] = prev[1];
		prev[1] = *req;
		/* it ended at its last pulse: the next, or the count is done */
		if (!policy_tick(p, req->start_ns + stim_request_offset_ns(req, (uint32_t)n - 1),
				 INT64_MAX, true, true, delivered, req)) {
			return true;
		}
	}
}

bool policy_check(const struct policy_protocol *pp, bool open_loop, uint64_t open_loop_pulses,
		  const struct safety_limits *lim, struct policy_refusal *out)
{
	struct policy p, cut_p;
	struct policy_sim s;
	struct stim_request req, next;
	uint64_t delivered;
	bool ok;

	memset(out, 0, sizeof(*out));
	out->verdict.rule = SAFETY_OK;
	/* the policy's own requests, from its own code */
	memset(&p, 0, sizeof(p));
	policy_set_protocol(&p, pp);
	p.open_loop = open_loop;
	p.open_loop_pulses = open_loop_pulses;
	p.next_train_id = 1;
	memset(&s, 0, sizeof(s));
	s.lim = lim;
	s.out = out;
	s.track_cut = open_loop;
	safety_init(&s.st, 0);
	safety_set_armed(&s.st, true);
	s.st.day_recorded = UINT64_MAX;	/* the ledger is not the protocol's */
	if (!open_loop) {
		if (policy_on_onset(&p, 0, 0, 0, &req) != EVENT_ACTION_REQUESTED) {
			return true;
		}
		ok = policy_sim_request(&s, &req);
		out->burst_rate = policy_burst_rate_refused(&req, lim);
		return ok;
	}
	if (!policy_tick(&p, 0, INT64_MAX, true, true, 0, &req)) {
		return true;	/* nothing to deliver */
	}
	out->burst_rate = policy_burst_rate_refused(&req, lim);
	cut_p = p;
	ok = policy_sim_open_loop(&p, &s, &req, &cut_p);
	if (!ok || !s.have_cut) {
		return ok;
	}
	/*
	 * A refusal (the coil not ready, a stale block, ...) ends the train
	 * at some pulse; the stim thread is idle from that pulse's time, and
	 * the policy asks for the rest off_ms later.
	 */
	s.st = s.cut_st;
	s.track_cut = false;
	s.train0 = 0;
	delivered = s.st.session_pulses;
	if (!policy_tick(&cut_p, s.cut_at_ns, INT64_MAX, true, true, delivered, &next) &&
	    !policy_tick(&cut_p, s.cut_at_ns + cut_p.off_ns, INT64_MAX, true, true, delivered,
			 &next)) {
		return true;
	}
	return policy_sim_pulse(&s, &next, 0, 0, next.start_ns, POLICY_AT_REPEAT);
}
