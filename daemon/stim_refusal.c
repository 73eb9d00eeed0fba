/* SPDX-License-Identifier: MIT */
/*
 * The stim thread's refusal summariser (stim_refusal.h). A summary is
 * stamped when it is made, so the ring stays in time order.
 */
#include "stim_refusal.h"

#include "ring.h"
#include "sclock.h"
#include "stim.h"

void stim_refusal_init(struct stim_refusal *r, struct ring *events, struct sclock *clock,
		       struct stim_stats *stats, size_t reserve)
{
	unsigned i;

	r->events = events;
	r->clock = clock;
	r->stats = stats;
	r->reserve = reserve;
	for (i = 0; i < SAFETY_RULE_COUNT; i++) {
		r->until[i] = INT64_MIN;
		r->rep[i].u.refusal.refusals = 0;
	}
}

/* Count @ev into the summary of rule @rule. */
static void stim_refusal_fold(struct stim_refusal *r, unsigned rule, const struct event *ev)
{
	struct event *sum = &r->rep[rule];
	uint32_t n = sum->u.refusal.refusals, dropped = sum->u.refusal.dropped;
	int64_t first = sum->u.refusal.first_sched_ns;

	if (n == 0) {
		dropped = 0;
		first = ev->u.refusal.sched_ns;
	}
	/* the last refusal's details, the first one's time, the sums */
	*sum = *ev;
	sum->u.refusal.summary = 1;
	sum->u.refusal.first_sched_ns = first;
	sum->u.refusal.refusals = n < UINT32_MAX ? n + 1 : n;
	sum->u.refusal.dropped = dropped > UINT32_MAX - ev->u.refusal.dropped ?
				 UINT32_MAX : dropped + ev->u.refusal.dropped;
}

static void stim_refusal_flush_some(struct stim_refusal *r, int64_t now, bool all,
				    size_t reserve)
{
	unsigned i;

	for (i = 0; i < SAFETY_RULE_COUNT; i++) {
		struct event *sum = &r->rep[i];

		if (sum->u.refusal.refusals == 0 || (!all && now < r->until[i])) {
			continue;
		}
		sum->sample = sclock_last_sample(r->clock);
		event_stamp(sum, now);
		if (ring_push_reserved(r->events, sum, reserve)) {
			r->stats->summaries++;
			r->stats->refusals_summarised += sum->u.refusal.refusals;
			sum->u.refusal.refusals = 0;
		}
		/* the next summary of this rule a period from now, at the earliest */
		r->until[i] = now + STIM_REFUSAL_PERIOD_NS;
	}
}

void stim_refusal_flush(struct stim_refusal *r, int64_t now, bool all)
{
	stim_refusal_flush_some(r, now, all, r->reserve);
}

void stim_refusal_flush_all(struct stim_refusal *r, int64_t now, size_t reserve)
{
	stim_refusal_flush_some(r, now, true, reserve);
}

int64_t stim_refusal_deadline(const struct stim_refusal *r)
{
	int64_t t = SCLOCK_NEVER;
	unsigned i;

	for (i = 0; i < SAFETY_RULE_COUNT; i++) {
		if (r->rep[i].u.refusal.refusals && r->until[i] < t) {
			t = r->until[i];
		}
	}
	return t;
}

void stim_refusal_publish(struct stim_refusal *r, struct event *ev, int64_t now)
{
	unsigned rule = ev->u.refusal.rule < SAFETY_RULE_COUNT ? ev->u.refusal.rule : SAFETY_OK;

	ev->u.refusal.refusals = 1;
	if (now < r->until[rule] || r->rep[rule].u.refusal.refusals) {
		stim_refusal_fold(r, rule, ev);
		return;
	}
	r->until[rule] = now + STIM_REFUSAL_PERIOD_NS;
	/* never into the room kept for pulses and state changes */
	if (ring_push_reserved(r->events, ev, r->reserve)) {
		r->stats->refusals_single++;
	} else {
		stim_refusal_fold(r, rule, ev);	/* no room now: it goes out in the summary */
	}
}
