/* SPDX-License-Identifier: MIT */
/* The stim thread's request in progress (stim_train.h). */
#include "stim_train.h"

#include "sclock.h"
#include "stim.h"

void stim_train_init(struct stim_train *t)
{
	t->in_train = false;
	t->next_deadline = SCLOCK_NEVER;
	t->ol_due = 0;
	t->ol_rule = SAFETY_OK;
}

void stim_train_begin(struct stim_train *t, const struct stim_request *req, int64_t now,
		      bool any_pulse, int64_t last_pulse_ns)
{
	if (req->open_loop) {
		/* the policy asks for a train of what is still due of the session's count */
		t->ol_due = req->due;
	}
	t->train = *req;
	if (t->train.cycles == 0) {
		t->train.cycles = 1;
	}
	t->in_train = true;
	t->cycle = 0;
	t->next_index = 0;
	t->req_delivered = 0;
	t->next_deadline = stim_request_first_ns(req, now, any_pulse, last_pulse_ns);
}

void stim_train_end(struct stim_train *t)
{
	t->in_train = false;
	t->next_deadline = SCLOCK_NEVER;
}

void stim_train_count(struct stim_train *t, struct stim_stats *st)
{
	if (t->next_index == 0) {
		st->trains_started++;
	}
	t->req_delivered++;
	if (t->train.open_loop) {
		t->ol_due -= t->ol_due ? 1 : 0;
		t->ol_rule = SAFETY_OK;	/* whatever refused before did not stop it */
	}
}

bool stim_train_next(struct stim_train *t, struct stim_stats *st, int64_t now)
{
	t->next_index++;
	if (t->train.pulse_budget && t->req_delivered >= t->train.pulse_budget) {
		st->trains_whole++;	/* all it asked for */
		return false;
	}
	if (t->next_index >= t->train.pulses) {
		st->trains_whole++;
		if (++t->cycle >= t->train.cycles) {
			return false;
		}
		t->next_index = 0;
	}
	t->next_deadline = stim_request_next_ns(&t->train, t->cycle, t->next_index, now);
	return true;
}

uint64_t stim_train_pending(const struct stim_train *t)
{
	return stim_request_left(&t->train, t->cycle, t->next_index, t->req_delivered);
}

uint64_t stim_train_lost(struct stim_train *t, enum safety_rule rule)
{
	if (t->train.open_loop) {
		/* a disarm does not hide the rule that held the count back */
		if (rule != SAFETY_DISARMED || t->ol_rule == SAFETY_OK) {
			t->ol_rule = rule;
		}
		return 0;
	}
	return stim_train_pending(t);
}

void stim_train_settle(struct stim_train *t, struct stim_stats *st, bool stopping)
{
	if (t->ol_due == 0) {
		return;
	}
	if (t->ol_rule != SAFETY_OK) {
		st->dropped_by_rule[t->ol_rule] += t->ol_due;
	} else if (stopping) {
		st->dropped_at_stop += t->ol_due;
	} else {
		st->dropped_by_rule[SAFETY_DISARMED] += t->ol_due;
	}
	t->ol_due = 0;
	t->ol_rule = SAFETY_OK;
}
