/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "acquire.h"
#include "bank.h"
#include "config.h"
#include "emg.h"
#include "event.h"
#include "fresh.h"
#include "policy.h"
#include "ring.h"
#include "rt.h"
#include "sclock.h"
#include "simemg.h"
#include "stim.h"
#include "stretch.h"

/* The calibrated event carries the detector's issue bits as they are. */
_Static_assert((unsigned)EVENT_CAL_ARTEFACTS == (unsigned)DETECT_CAL_ARTEFACTS &&
	       (unsigned)EVENT_CAL_UNSTEADY == (unsigned)DETECT_CAL_UNSTEADY &&
	       (unsigned)EVENT_CAL_HIGH_REST == (unsigned)DETECT_CAL_HIGH_REST,
	       "event_cal_issue and detect_cal_issue differ");

/* The protocol hand-off from the control thread (acquire_post_protocol). */
enum acquire_proto_state {
	ACQUIRE_PROTO_IDLE = 0,		/* proto_next is the control thread's */
	ACQUIRE_PROTO_PENDING,		/* written; the acquire thread may take it */
	ACQUIRE_PROTO_TAKING,		/* the acquire thread is copying it */
};

/* A copy of the bank's totals for the control thread (acquire_tally_request). */
enum acquire_tally_state {
	ACQUIRE_TALLY_IDLE = 0,		/* nothing asked */
	ACQUIRE_TALLY_ASKED,		/* the acquire thread copies at the first block past tally_at */
	ACQUIRE_TALLY_DONE,		/* copied: tally and tally_end are the control thread's */
};

struct acquire {
	struct source *src;
	struct sclock *clock;
	struct stim *stim;
	struct policy *policy;
	struct bank *bank;
	struct ring *events;
	struct emg_tap *tap;			/* EMG for the recorder and rpms.emg, or NULL */
	struct simemg *sim;			/* replay: a simulated patient's responses */
	float *buf;				/* the block's EMG: channels floats a frame */
	/*
	 * A joint angle (source.angle_channel): the source writes frames of
	 * channels + 1 floats into raw; the angle is taken off into angle
	 * before anything reads the block, so no EMG consumer ever sees it.
	 */
	float *raw;
	float *angle;
	struct stretch *stretch;		/* passive stretches in it, for assess stretch */
	size_t block_frames;
	int done_fd;
	int fault_fd;				/* to main: parked, reopen the source */
	int resume_fd;				/* from main: reopened, or give up */
	bool can_reopen;
	bool open_loop_done;			/* open loop: the count was reached */
	int64_t lead_ns;			/* open loop: a train is posted this far ahead */
	unsigned disarms_seen;			/* open loop: stim_disarms() at the last block */
	/*
	 * Open loop: a train was posted and has not begun yet (no pulse since,
	 * and the stim thread not idle): a protocol taken now is not its.
	 */
	bool ol_waiting;
	uint64_t ol_count_at_post;		/* stim_pulse_count() when it was posted */
	atomic_bool resume_ok;
	atomic_int parked_err;			/* the read error while parked, else 0 */
	_Atomic uint64_t blocks;
	atomic_bool stop;
	atomic_bool test_stall;			/* daemon.test_hooks: hang on purpose */
	_Atomic int64_t beat_ns;		/* CLOCK_MONOTONIC of the last read return */
	_Atomic uint64_t samples;
	pthread_t tid;
	bool started;
	struct acquire_stats stats;
	/* requests from the control thread, taken in between two blocks */
	atomic_bool recal_req;
	atomic_uint calibrated_mask;		/* bit per channel */
	atomic_int proto_state;			/* enum acquire_proto_state */
	/*
	 * Open loop: a protocol was taken while a train asked for before it
	 * waited for its start; it stays "pending" until that train began,
	 * so that a set is answered once every train still to begin is its.
	 */
	atomic_bool proto_hold;
	struct policy_protocol proto_next;
	/*
	 * Timing of the last ACQUIRE_LAT_MAX blocks and requests, in ns:
	 * preallocated, written by the acquire thread, read after it stops.
	 */
	int32_t *lat[ACQUIRE_LAT_COUNT];
	uint64_t lat_n[ACQUIRE_LAT_COUNT];
	int64_t arrival_ns;			/* CLOCK_MONOTONIC at read return */
	/* acquire_tally_request: the control thread asks, this thread copies once */
	atomic_int tally_state;			/* enum acquire_tally_state */
	_Atomic uint64_t tally_at;
	uint64_t tally_end;
	struct bank_tally tally;
	/*
	 * A motor threshold probe (acquire_probe): the control thread fills
	 * the request and moves the state to PENDING; from then on only this
	 * thread writes until DONE, REFUSED or BUSY (release), when the
	 * control thread reads and resets it.
	 */
	atomic_bool hold;			/* the policy asks for nothing */
	atomic_int probe_state;			/* enum acquire_probe_state */
	double probe_pct;
	uint32_t probe_width_us;
	unsigned probe_ch;
	size_t probe_len;			/* samples to capture */
	float *probe_buf;			/* ACQUIRE_PROBE_MAX_MS of samples, preallocated */
	size_t probe_got;
	uint64_t probe_count_at_post;		/* stim_pulse_count() when posted */
	uint64_t probe_sample;			/* the pulse's sample */
	size_t probe_cap;
};

static void acquire_lat_record(struct acquire *a, enum acquire_lat which, int64_t ns)
{
	a->lat[which][a->lat_n[which] % ACQUIRE_LAT_MAX] =
		ns > INT32_MAX ? INT32_MAX : ns < 0 ? 0 : (int32_t)ns;
	a->lat_n[which]++;
}

static void acquire_push(struct acquire *a, struct event *ev, int64_t t)
{
	event_stamp(ev, t);
	ring_push(a->events, ev);
}

static void acquire_state(struct acquire *a, enum event_state state, int code,
			  const char *reason, uint64_t sample)
{
	struct event ev;

	event_state_init(&ev, state, code, reason, sample);
	acquire_push(a, &ev, sclock_now(a->clock));
}

/*
 * Open loop: the protocol runs while armed, whatever the EMG, until its
 * pulse count is delivered in this session (a control session_start
 * begins a new count); then the coil is disarmed. One train per request,
 * posted up to lead_ns ahead of its start on the schedule (policy_tick).
 */
static void acquire_open_loop(struct acquire *a)
{
	struct stim_request req;
	/* idle first: once idle, the count already holds the request's pulses */
	bool idle = stim_idle(a->stim), done;
	uint64_t delivered = stim_session_pulses(a->stim);
	/* armed, then the count: an arm seen after a disarm comes with its count */
	bool armed = stim_armed(a->stim);
	unsigned disarms = stim_disarms(a->stim);

	/* a disarm since the last block, even one an arm followed at once, ends the schedule */
	armed = armed && disarms == a->disarms_seen;
	a->disarms_seen = disarms;
	if (policy_tick(a->policy, sclock_now(a->clock), a->lead_ns, armed, idle, delivered,
			&req)) {
		/* before the post: idle, no pulse can come in between */
		a->ol_count_at_post = stim_pulse_count(a->stim);
		if (stim_post(a->stim, &req) == 0) {
			a->ol_waiting = true;
		} else {
			policy_cancel_last(a->policy);
		}
	}
	done = policy_done(a->policy, delivered);
	if (done && !a->open_loop_done) {
		stim_disarm(a->stim, "open-loop protocol complete");
	}
	a->open_loop_done = done;
}

static void acquire_onset(struct acquire *a, unsigned ch, uint64_t sample,
			  const struct detect_result *r)
{
	struct event ev = { .type = EVENT_BURST_ONSET, .channel = ch, .sample = sample };
	struct stim_request req;
	int64_t now = sclock_now(a->clock);
	enum event_action act;

	/* a threshold procedure's probes are the only pulses meanwhile */
	act = atomic_load_explicit(&a->hold, memory_order_relaxed)
		      ? EVENT_ACTION_NONE
		      : policy_on_onset(a->policy, now, sample, ch, &req);
	if (act == EVENT_ACTION_REQUESTED) {
		if (stim_post(a->stim, &req) < 0) {
			policy_cancel_last(a->policy);
			act = EVENT_ACTION_BUSY;
		} else {
			acquire_lat_record(a, ACQUIRE_LAT_REQUEST,
					   sclock_mono_ns() - a->arrival_ns);
			ev.u.burst.train_id = req.train_id;
		}
	}
	switch (act) {
	case EVENT_ACTION_REQUESTED:
		a->stats.requested++;
		break;
	case EVENT_ACTION_REFRACTORY:
		a->stats.refractory++;
		break;
	case EVENT_ACTION_BUSY:
		a->stats.busy++;
		break;
	default:
		break;
	}
	a->stats.onsets[ch]++;
	ev.u.burst.edge_sample = r->edge_sample;
	ev.u.burst.envelope = r->envelope;
	ev.u.burst.threshold = r->threshold;
	ev.u.burst.baseline = r->baseline;
	ev.u.burst.action = act;
	acquire_push(a, &ev, now);
}

/* A decision of the detector bank (bank_emit_fn). */
static void acquire_edge(void *ctx, const struct bank_event *be)
{
	struct acquire *a = ctx;
	const struct detect_result *r = &be->r;
	unsigned ch = be->channel;
	struct event ev = { .channel = ch, .sample = be->sample };

	switch (be->edge) {
	case DETECT_CALIBRATED:
		a->stats.calibrated[ch] = true;
		atomic_fetch_or(&a->calibrated_mask, 1u << ch);
		ev.type = EVENT_CALIBRATED;
		ev.u.calib.baseline = r->baseline;
		ev.u.calib.spread = r->spread;
		ev.u.calib.on_threshold = r->threshold;
		ev.u.calib.off_threshold = r->off_threshold;
		ev.u.calib.issues = r->cal_issues;
		ev.u.calib.artefacts = r->cal_artefacts;
		ev.u.calib.unsteady_s = r->cal_unsteady_s;
		a->stats.cal_issues[ch] = r->cal_issues;
		a->stats.cal_artefacts[ch] = r->cal_artefacts;
		a->stats.cal_unsteady_s[ch] = r->cal_unsteady_s;
		a->stats.baseline[ch] = r->baseline;
		a->stats.on_threshold[ch] = ev.u.calib.on_threshold;
		a->stats.off_threshold[ch] = ev.u.calib.off_threshold;
		break;
	case DETECT_ONSET:
		acquire_onset(a, ch, be->sample, r);
		return;
	case DETECT_OFFSET:
		a->stats.offsets[ch]++;
		ev.type = EVENT_BURST_OFFSET;
		ev.u.burst.edge_sample = r->edge_sample;
		ev.u.burst.envelope = r->envelope;
		ev.u.burst.threshold = r->threshold;
		ev.u.burst.baseline = r->baseline;
		break;
	default:
		return;
	}
	acquire_push(a, &ev, sclock_now(a->clock));
}

/*
 * The sample clock: where sample 0 lies on the session clock, from this
 * block, for the stim thread to place each pulse on the samples. Sample k
 * covers the period from k / rate to (k + 1) / rate and is ready at its
 * end. A file is delivered on its own schedule (paced or not): exact. An
 * amplifier's hardware timestamps date its samples; without them the best
 * there is, is the block's arrival (its last sample was ready at most
 * that early: pulses are placed up to the read latency early).
 */
static void acquire_sample_clock(struct acquire *a, const struct source_block *blk,
				 uint64_t end_sample)
{
	double rate = a->src->rate_hz;
	int64_t t0 = sclock_t0_mono(a->clock), at;

	if (a->src->time_source == SOURCE_TIME_RECORDING) {
		stim_set_sample_clock(a->stim, 0);
		return;
	}
	/*
	 * The hardware stamp of the last sample (unless it is not on
	 * CLOCK_MONOTONIC): taken when the sample is ready, at the end of its
	 * period, as a replay's sample k is ready at (k + 1) / rate.
	 */
	if (blk->stamp_ns && blk->stamp_ns <= a->arrival_ns &&
	    a->arrival_ns - blk->stamp_ns < 1000000000LL) {
		at = blk->stamp_ns - t0 - llround((double)end_sample * 1e9 / rate);
	} else {
		at = a->arrival_ns - t0 - llround((double)end_sample * 1e9 / rate);
	}
	stim_set_sample_clock(a->stim, at);
}

/*
 * Our own pulses since the last block: blank the stimulation artefact from
 * each pulse's own sample (its firing time on the sample clock), not from
 * the block in which this thread happens to learn of it, so that paced,
 * fast and IIO runs blank the same samples.
 */
static void acquire_blank_pulses(struct acquire *a, uint64_t *seen, uint64_t first)
{
	uint64_t pulses = stim_pulse_count(a->stim), n, at;

	struct stim_response r;

	for (n = *seen + 1; n <= pulses; n++) {
		at = stim_pulse_sample(a->stim, n);
		bank_blank(a->bank, at == UINT64_MAX ? first : at);
		/* a simulated patient's response (sim plugin) joins a replay here */
		if (a->sim && at != UINT64_MAX && stim_pulse_response(a->stim, n, &r)) {
			simemg_queue(a->sim, at, r.channel, r.uv, r.latency_us, r.artefact_uv);
		}
	}
	*seen = pulses;
}

/*
 * Fast replay only: virtual time runs as fast as the threads go, and would
 * outrun the publisher; it waits for the publisher to take the events
 * instead, so that a fast replay publishes everything a paced one does.
 * (Paced or live, the publisher keeps up with real time: never here.)
 */
static void acquire_wait_publisher(struct acquire *a)
{
	const struct timespec nap = { .tv_sec = 0, .tv_nsec = 200000 };
	struct ring *rings[] = { a->events, stim_events(a->stim) };
	size_t i;

	for (i = 0; i < sizeof(rings) / sizeof(rings[0]); i++) {
		while (ring_count(rings[i]) > ring_capacity(rings[i]) / 4 &&
		       !atomic_load(&a->stop) && !sclock_stopped(a->clock)) {
			nanosleep(&nap, NULL);
		}
	}
}

/* Wake whoever polls @fd (an eventfd). RT-safe: one syscall, no wait. */
static void acquire_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* An eventfd counter cannot overflow from one write: nothing to do. */
	}
}

/* Take the angle off the end of every frame: the EMG in buf, the angle in angle. */
static void acquire_split_angle(struct acquire *a, size_t frames)
{
	unsigned c = a->src->channels;

	for (size_t i = 0; i < frames; i++) {
		memcpy(a->buf + i * c, a->raw + i * (c + 1), c * sizeof(float));
		a->angle[i] = a->raw[i * (c + 1) + c];
	}
}

/* bank_set_own_edges: each channel's own onsets and offsets, for the stretches. */
static void acquire_own_edge(void *ctx, const struct bank_event *be)
{
	struct acquire *a = ctx;

	stretch_edge(a->stretch, be->channel, be->edge == DETECT_ONSET, be->r.edge_sample);
}

/*
 * After a gap: say so, and restart the filters and detectors on the new
 * data so that the jump across the gap is never taken for a burst.
 */
static void acquire_gap(struct acquire *a, const struct source_block *blk)
{
	struct event ev = { .type = EVENT_GAP, .sample = blk->first_sample };
	uint64_t from = blk->first_sample - blk->lost;

	bank_gap(a->bank, from, blk->lost);
	if (a->stretch) {
		stretch_gap(a->stretch, blk->first_sample);
	}
	ev.u.gap.first_sample = from;
	ev.u.gap.lost = blk->lost;
	/* The source counts them as it skips the indices (same thread). */
	ev.u.gap.gaps_total = a->src->gaps;
	ev.u.gap.lost_total = a->src->lost;
	ev.u.gap.estimated = blk->lost_estimated;
	acquire_push(a, &ev, sclock_now(a->clock));
}

/*
 * A read failed on a source that can be reopened: the coil is disarmed at
 * once (no pulse may rest on EMG we no longer see), the fault published,
 * and this thread waits while the main thread reopens the source (which
 * may allocate and block, so it is not done here).
 * @return true to read again, false to end
 */
static bool acquire_park(struct acquire *a, int err, uint64_t last)
{
	struct pollfd pfd = { .fd = a->resume_fd, .events = POLLIN };
	uint64_t v;

	stim_disarm(a->stim, "acquisition fault");
	a->stats.source_faults++;
	acquire_state(a, EVENT_STATE_FAULT, err, "source read failed", last);
	atomic_store(&a->parked_err, err);
	acquire_signal(a->fault_fd);
	while (!atomic_load(&a->stop)) {
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			break;
		}
		if (read(a->resume_fd, &v, sizeof(v)) == sizeof(v)) {
			break;
		}
	}
	atomic_store(&a->parked_err, 0);
	atomic_store_explicit(&a->beat_ns, sclock_mono_ns(), memory_order_release);
	return !atomic_load(&a->stop) && atomic_load(&a->resume_ok);
}

/*
 * Between two blocks: what the control thread asked for. A recalibration
 * starts with the block about to be processed; a new protocol applies to
 * the next request (open loop: the next train asked for, in this block at
 * the earliest). Flags and a copy: nothing here allocates or waits.
 */
static void acquire_take_requests(struct acquire *a, uint64_t first)
{
	int pending = ACQUIRE_PROTO_PENDING;

	if (atomic_exchange(&a->recal_req, false)) {
		bank_recalibrate(a->bank, first);
		atomic_store(&a->calibrated_mask, 0);
		acquire_state(a, EVENT_STATE_CALIBRATING, 0, "recalibration requested", first);
	}
	/* the open-loop train posted last began (a pulse since, or it ended) */
	if (a->ol_waiting && (stim_pulse_count(a->stim) != a->ol_count_at_post ||
			      stim_idle(a->stim))) {
		a->ol_waiting = false;
	}
	if (!a->ol_waiting && atomic_load_explicit(&a->proto_hold, memory_order_relaxed)) {
		atomic_store(&a->proto_hold, false);
	}
	if (atomic_compare_exchange_strong(&a->proto_state, &pending, ACQUIRE_PROTO_TAKING)) {
		policy_set_protocol(a->policy, &a->proto_next);
		/* a train already asked for keeps the old one: answered once it began */
		if (a->ol_waiting) {
			atomic_store(&a->proto_hold, true);
		}
		atomic_store(&a->proto_state, ACQUIRE_PROTO_IDLE);
	}
}

/*
 * A motor threshold probe, between two blocks: post its single pulse, then
 * once it fired copy the EMG after it. Refused (the gate) when the stim
 * thread went idle without a pulse: idle is read first, so the count read
 * after it already holds the request's pulse if there was one.
 */
static void acquire_probe_post(struct acquire *a, uint64_t first)
{
	struct stim_request req = {
		.pulses = 1, .frequency_hz = 0.0, .burst_pulses = 1, .cycles = 1,
		.intensity_pct = a->probe_pct, .width_us = a->probe_width_us,
		.start_ns = sclock_now(a->clock), .trigger_sample = first,
		.channel = a->probe_ch,
	};

	int pending = ACQUIRE_PROBE_PENDING;

	/* claimed from PENDING first: the control thread's cancel either wins or sees it posted */
	if (!atomic_compare_exchange_strong(&a->probe_state, &pending, ACQUIRE_PROBE_POSTED)) {
		return;
	}
	req.train_id = policy_claim_train_id(a->policy);
	a->probe_count_at_post = stim_pulse_count(a->stim);
	a->probe_got = 0;
	if (stim_post(a->stim, &req) < 0) {
		atomic_store_explicit(&a->probe_state, ACQUIRE_PROBE_BUSY, memory_order_release);
	}
}

static void acquire_probe_step(struct acquire *a, uint64_t first, size_t frames)
{
	int st = atomic_load_explicit(&a->probe_state, memory_order_acquire);
	uint64_t n, at, s, end = first + frames;
	unsigned ch = a->src->channels;
	bool idle;

	if (st == ACQUIRE_PROBE_PENDING) {
		/*
		 * Only with nothing else in flight (a train the policy asked for
		 * before it was held): then the next pulse is the probe's.
		 */
		if (stim_idle(a->stim)) {
			acquire_probe_post(a, first);
		}
		return;
	}
	if (st == ACQUIRE_PROBE_POSTED) {
		idle = stim_idle(a->stim);
		n = stim_pulse_count(a->stim);
		if (n == a->probe_count_at_post) {
			if (idle) {
				atomic_store_explicit(&a->probe_state, ACQUIRE_PROBE_REFUSED,
						      memory_order_release);
			}
			return;
		}
		/* the policy is held: the next pulse is the probe's */
		at = stim_pulse_sample(a->stim, a->probe_count_at_post + 1);
		a->probe_sample = at == UINT64_MAX ? first : at;
		st = ACQUIRE_PROBE_CAPTURING;
		atomic_store_explicit(&a->probe_state, st, memory_order_relaxed);
	}
	if (st != ACQUIRE_PROBE_CAPTURING) {
		return;
	}
	/* this block's part of [pulse, pulse + len) */
	for (s = a->probe_sample + a->probe_got; s < end && a->probe_got < a->probe_len; s++) {
		if (s >= first) {
			a->probe_buf[a->probe_got] = a->buf[(s - first) * ch + a->probe_ch];
		} else {
			a->probe_buf[a->probe_got] = NAN;	/* before this block: gone */
		}
		a->probe_got++;
	}
	if (a->probe_got == a->probe_len) {
		atomic_store_explicit(&a->probe_state, ACQUIRE_PROBE_DONE, memory_order_release);
	}
}

void acquire_hold(struct acquire *a, bool on)
{
	atomic_store(&a->hold, on);
}

int acquire_probe(struct acquire *a, double pct, uint32_t width_us, unsigned ch, double ms)
{
	size_t len = (size_t)ceil(ms * a->src->rate_hz / 1000.0);

	if (ch >= a->src->channels || !(ms > 0.0) || len > a->probe_cap || !(pct > 0.0)) {
		return -EINVAL;
	}
	if (atomic_load_explicit(&a->probe_state, memory_order_acquire) != ACQUIRE_PROBE_IDLE) {
		return -EBUSY;
	}
	a->probe_pct = pct;
	a->probe_width_us = width_us;
	a->probe_ch = ch;
	a->probe_len = len ? len : 1;
	atomic_store_explicit(&a->probe_state, ACQUIRE_PROBE_PENDING, memory_order_release);
	return 0;
}

enum acquire_probe_state acquire_probe_poll(struct acquire *a, const float **x, size_t *n,
					    uint64_t *sample, uint64_t *pulse)
{
	int st = atomic_load_explicit(&a->probe_state, memory_order_acquire);

	if (st == ACQUIRE_PROBE_DONE) {
		*x = a->probe_buf;
		*n = a->probe_got;
		*sample = a->probe_sample;
		*pulse = a->probe_count_at_post + 1;
	}
	return (enum acquire_probe_state)st;
}

bool acquire_probe_cancel(struct acquire *a)
{
	int pending = ACQUIRE_PROBE_PENDING;

	return atomic_compare_exchange_strong(&a->probe_state, &pending, ACQUIRE_PROBE_IDLE);
}

void acquire_probe_reset(struct acquire *a)
{
	int st = atomic_load_explicit(&a->probe_state, memory_order_acquire);

	if (st == ACQUIRE_PROBE_DONE || st == ACQUIRE_PROBE_REFUSED || st == ACQUIRE_PROBE_BUSY) {
		atomic_store_explicit(&a->probe_state, ACQUIRE_PROBE_IDLE, memory_order_release);
	}
}

static void *acquire_thread(void *arg)
{
	struct acquire *a = arg;
	struct source_block blk;
	uint64_t pulses_seen = 0, end_sample = 0, last;
	double rate = a->src->rate_hz;
	int64_t prev_arrival = 0;
	bool recovering = false, gave_up = false;
	int ret;

	rt_prefault_stack();
	ret = a->src->ops->start(a->src, sclock_t0_mono(a->clock), &a->stop);
	while (ret >= 0 && !atomic_load(&a->stop)) {
		ret = a->src->ops->read(a->src, a->raw ? a->raw : a->buf, a->block_frames, &blk);
		/* Every return counts, errors too: the thread is not hung. */
		atomic_store_explicit(&a->beat_ns, sclock_mono_ns(), memory_order_release);
		if (atomic_load_explicit(&a->test_stall, memory_order_relaxed)) {
			rt_test_hang(&a->stop);	/* no heartbeat, no fresh EMG */
		}
		if (ret < 0 && ret != -EINTR && a->can_reopen && !atomic_load(&a->stop)) {
			last = end_sample ? end_sample - 1 : 0;
			if (acquire_park(a, ret, last)) {
				prev_arrival = 0;	/* the outage is not a block interval */
				recovering = true;
				ret = 1;
				continue;
			}
			gave_up = !atomic_load(&a->stop);
		}
		if (ret <= 0) {
			break;
		}
		/* The source's own arrival time when it has one (IIO: refill return). */
		a->arrival_ns = blk.arrival_ns ? blk.arrival_ns : sclock_mono_ns();
		if (prev_arrival && a->arrival_ns != prev_arrival) {
			acquire_lat_record(a, ACQUIRE_LAT_INTERVAL, a->arrival_ns - prev_arrival);
		}
		prev_arrival = a->arrival_ns;
		if (recovering) {
			/* Not at the reopen: only EMG that flows again is a recovery. */
			acquire_state(a, EVENT_STATE_RECOVERED, 0, "EMG flows again",
				      blk.first_sample);
			recovering = false;
		}
		if (a->raw) {
			acquire_split_angle(a, blk.frames);
		}
		if (blk.lost) {
			acquire_gap(a, &blk);
		}
		end_sample = blk.first_sample + blk.frames;
		sclock_set_last_sample(a->clock, end_sample - 1);
		/* before time moves on: a pulse on the way is placed by this block */
		acquire_sample_clock(a, &blk, end_sample);
		if (sclock_is_virtual(a->clock)) {
			acquire_wait_publisher(a);
			/* The block "arrives" when its last sample does, as from an ADC. */
			sclock_advance(a->clock, llround((double)end_sample * 1e9 / rate));
		}
		acquire_blank_pulses(a, &pulses_seen, blk.first_sample);
		acquire_take_requests(a, blk.first_sample);
		if (a->sim) {
			/* before anything reads the block: detection, the tap, a probe */
			simemg_mix(a->sim, a->buf, blk.first_sample, blk.frames);
		}
		acquire_probe_step(a, blk.first_sample, blk.frames);
		if (a->tap) {
			emg_tap_begin(a->tap, blk.first_sample, blk.frames, blk.lost);
		}
		if (a->stretch) {
			/* before the bank: its onsets are dated in angles already seen */
			stretch_angle(a->stretch, a->angle, blk.frames, blk.first_sample);
		}
		bank_process(a->bank, a->buf, blk.frames, blk.first_sample, acquire_edge, a);
		acquire_lat_record(a, ACQUIRE_LAT_BLOCK, sclock_mono_ns() - a->arrival_ns);
		if (atomic_load_explicit(&a->tally_state, memory_order_acquire) ==
		    ACQUIRE_TALLY_ASKED && end_sample > atomic_load(&a->tally_at)) {
			bank_get_tally(a->bank, &a->tally);
			a->tally_end = end_sample;
			atomic_store_explicit(&a->tally_state, ACQUIRE_TALLY_DONE,
					      memory_order_release);
		}
		if (a->tap) {
			emg_tap_push(a->tap, a->buf, a->angle);	/* a copy per ring; full: counted */
		}
		/* Fresh EMG: what the stim thread's acquisition watchdog waits for. */
		fresh_mark(stim_fresh(a->stim), sclock_now(a->clock));
		/* after the EMG is marked fresh: the gate must not see it stale */
		if (!atomic_load_explicit(&a->hold, memory_order_relaxed)) {
			acquire_open_loop(a);
		}
		a->stats.blocks++;
		a->stats.samples = end_sample;
		atomic_store(&a->samples, end_sample);
		atomic_fetch_add(&a->blocks, 1);
	}
	last = end_sample ? end_sample - 1 : 0;
	if (ret == -EINTR && atomic_load(&a->stop)) {
		ret = 1;	/* asked to stop while waiting: not a source error */
	}
	if (ret < 0) {
		a->stats.source_error = ret;
		/* Nothing will refresh the EMG: do not wait for the watchdog. */
		stim_disarm(a->stim, "acquisition fault");
		acquire_state(a, EVENT_STATE_FAULT, ret,
			      gave_up ? "source lost: gave up reopening" : "source read failed",
			      last);
	} else if (ret == 0) {
		/*
		 * No more EMG, so no more stimulation: disarm now rather than
		 * let the acquisition watchdog call it a fault. A train still
		 * running is cut short and its pulses counted as not delivered.
		 */
		a->stats.ended = true;
		stim_disarm(a->stim, "end of recording");
		acquire_state(a, EVENT_STATE_SOURCE_END, 0, "end of recording", last);
	}
	/* no train begins any more (disarmed): none waits with an old protocol */
	atomic_store(&a->proto_hold, false);
	acquire_signal(a->done_fd);
	return NULL;
}

int acquire_create(const struct rpmsd_config *cfg, struct source *src,
		   struct sclock *clock, struct stim *stim, struct acquire **out,
		   char *err, size_t errlen)
{
	struct acquire *a = calloc(1, sizeof(*a));
	unsigned i;
	int ret;

	if (!a) {
		return -ENOMEM;
	}
	a->src = src;
	a->clock = clock;
	a->stim = stim;
	a->done_fd = -1;
	a->fault_fd = -1;
	a->resume_fd = -1;
	a->can_reopen = src->ops->reopen && cfg->source.reopen_ms > 0;
	a->block_frames = (size_t)cfg->source.block_frames;
	a->buf = calloc(a->block_frames * src->channels, sizeof(float));
	if (!a->buf) {
		ret = -ENOMEM;
		goto err_free;
	}
	if (src->has_angle) {
		a->raw = calloc(a->block_frames * source_frame_floats(src), sizeof(float));
		a->angle = calloc(a->block_frames, sizeof(float));
		if (!a->raw || !a->angle) {
			ret = -ENOMEM;
			goto err_free;
		}
		ret = stretch_create(src->channels, src->rate_hz, &a->stretch);
		if (ret < 0) {
			goto err_free;
		}
	}
	/*
	 * A replay's samples are at k / rate on the session clock, exactly:
	 * the only source a simulated response can be placed in. (A live
	 * amplifier records the real muscle.)
	 */
	/* a probe's capture, prefaulted: the acquire thread only writes it */
	a->probe_cap = (size_t)ceil(ACQUIRE_PROBE_MAX_MS * src->rate_hz / 1000.0);
	a->probe_buf = calloc(a->probe_cap ? a->probe_cap : 1, sizeof(float));
	if (!a->probe_buf) {
		ret = -ENOMEM;
		goto err_free;
	}
	memset(a->probe_buf, 0, (a->probe_cap ? a->probe_cap : 1) * sizeof(float));
	atomic_init(&a->probe_state, ACQUIRE_PROBE_IDLE);
	atomic_init(&a->hold, false);
	if (src->time_source == SOURCE_TIME_RECORDING) {
		ret = simemg_create(src->channels, src->rate_hz, &a->sim);
		if (ret < 0) {
			goto err_free;
		}
	}
	ret = bank_create(cfg, src->rate_hz, src->channels,
			  (const char (*)[BANK_NAME_MAX])src->channel_names, &a->bank, err, errlen);
	if (ret < 0) {
		goto err_free;
	}
	if (a->stretch) {
		bank_set_own_edges(a->bank, acquire_own_edge, a);
	}
	ret = policy_create(cfg, &a->policy);
	if (ret < 0) {
		goto err_free;
	}
	/*
	 * Two blocks: the train is posted at the last block or the one before
	 * its start, so that a block that comes a little late does not make it
	 * late too; a protocol taken in between waits for it (proto_hold).
	 */
	a->lead_ns = llround(2.0 * (double)a->block_frames * 1e9 / src->rate_hz);
	stim_set_sample_rate(stim, src->rate_hz);
	ret = ring_create((size_t)cfg->publish.ring_records, sizeof(struct event), &a->events);
	if (ret < 0) {
		goto err_free;
	}
	for (i = 0; i < ACQUIRE_LAT_COUNT; i++) {
		/* calloc touches nothing: write once so the pages are mapped now. */
		a->lat[i] = malloc(ACQUIRE_LAT_MAX * sizeof(int32_t));
		if (!a->lat[i]) {
			ret = -ENOMEM;
			goto err_free;
		}
		memset(a->lat[i], 0, ACQUIRE_LAT_MAX * sizeof(int32_t));
	}
	a->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->fault_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->resume_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->done_fd < 0 || a->fault_fd < 0 || a->resume_fd < 0) {
		ret = -errno;
		goto err_free;
	}
	atomic_init(&a->stop, false);
	atomic_init(&a->test_stall, false);
	atomic_init(&a->beat_ns, 0);
	atomic_init(&a->resume_ok, false);
	atomic_init(&a->parked_err, 0);
	atomic_init(&a->blocks, 0);
	atomic_init(&a->samples, 0);
	atomic_init(&a->recal_req, false);
	atomic_init(&a->calibrated_mask, 0);
	atomic_init(&a->proto_state, ACQUIRE_PROTO_IDLE);
	atomic_init(&a->proto_hold, false);
	*out = a;
	return 0;

err_free:
	acquire_destroy(a);
	return ret;
}

void acquire_destroy(struct acquire *a)
{
	unsigned ch;

	if (!a) {
		return;
	}
	acquire_stop(a);
	if (a->done_fd >= 0) {
		close(a->done_fd);
	}
	if (a->fault_fd >= 0) {
		close(a->fault_fd);
	}
	if (a->resume_fd >= 0) {
		close(a->resume_fd);
	}
	ring_destroy(a->events);
	policy_destroy(a->policy);
	bank_destroy(a->bank);
	for (ch = 0; ch < ACQUIRE_LAT_COUNT; ch++) {
		free(a->lat[ch]);
	}
	simemg_destroy(a->sim);
	stretch_destroy(a->stretch);
	free(a->probe_buf);
	free(a->angle);
	free(a->raw);
	free(a->buf);
	free(a);
}

int acquire_start(struct acquire *a, int priority, int cpu, bool *got_rt)
{
	int ret;

	atomic_store(&a->beat_ns, sclock_mono_ns());
	ret = rt_thread_start(&a->tid, "rpmsd-acquire", priority, cpu, acquire_thread, a,
			      got_rt);
	if (ret < 0) {
		return ret;
	}
	a->started = true;
	return 0;
}

void acquire_stop(struct acquire *a)
{
	if (!a || !a->started) {
		return;
	}
	atomic_store(&a->stop, true);
	acquire_resume(a, false);	/* a thread parked after a fault wakes */
	if (a->src->ops->cancel) {
		a->src->ops->cancel(a->src);	/* a refill waiting for data returns */
	}
	/*
	 * A paced read sees the flag within SOURCE_STOP_LATENCY_NS; a
	 * virtual-time hand-off in progress completes first, which needs the
	 * stim thread: stop this thread before that one.
	 */
	pthread_join(a->tid, NULL);
	a->started = false;
}

int acquire_done_fd(const struct acquire *a)
{
	return a->done_fd;
}

int acquire_fault_fd(const struct acquire *a)
{
	return a->fault_fd;
}

int acquire_parked(const struct acquire *a)
{
	return atomic_load(&((struct acquire *)a)->parked_err);
}

void acquire_resume(struct acquire *a, bool ok)
{
	atomic_store(&a->resume_ok, ok);
	acquire_signal(a->resume_fd);
}

uint64_t acquire_blocks(const struct acquire *a)
{
	return atomic_load(&((struct acquire *)a)->blocks);
}

const struct source *acquire_source(const struct acquire *a)
{
	return a->src;
}

void acquire_tally_request(struct acquire *a, uint64_t at)
{
	atomic_store(&a->tally_at, at);
	atomic_store_explicit(&a->tally_state, ACQUIRE_TALLY_ASKED, memory_order_release);
}

bool acquire_tally_take(struct acquire *a, struct bank_tally *out, uint64_t *end_sample)
{
	if (atomic_load_explicit(&a->tally_state, memory_order_acquire) != ACQUIRE_TALLY_DONE) {
		return false;
	}
	*out = a->tally;
	*end_sample = a->tally_end;
	atomic_store(&a->tally_state, ACQUIRE_TALLY_IDLE);
	return true;
}

uint64_t acquire_samples(const struct acquire *a)
{
	return atomic_load(&((struct acquire *)a)->samples);
}

void acquire_set_tap(struct acquire *a, struct emg_tap *tap)
{
	a->tap = tap;
	/* The filtered EMG exists only inside the bank: traced, per sample. */
	bank_set_trace(a->bank, tap && emg_tap_wants_trace(tap) ? emg_tap_trace : NULL, tap);
}

struct ring *acquire_events(struct acquire *a)
{
	return a->events;
}

void acquire_get_stats(const struct acquire *a, struct acquire_stats *st)
{
	*st = a->stats;
}

static int acquire_cmp_i32(const void *x, const void *y)
{
	int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;

	return (a > b) - (a < b);
}

int acquire_latency(const struct acquire *a, enum acquire_lat which,
		    struct acquire_pct *out)
{
	size_t n, rank;
	int32_t *v;

	memset(out, 0, sizeof(*out));
	out->count = a->lat_n[which];
	n = out->count < ACQUIRE_LAT_MAX ? (size_t)out->count : ACQUIRE_LAT_MAX;
	out->kept = n;
	if (n == 0) {
		return 0;
	}
	v = malloc(n * sizeof(*v));
	if (!v) {
		return -ENOMEM;
	}
	memcpy(v, a->lat[which], n * sizeof(*v));
	qsort(v, n, sizeof(*v), acquire_cmp_i32);
	/* Nearest rank: the smallest value with at least p% at or below it. */
	rank = (n * 50 + 99) / 100;
	out->p50_ns = v[rank ? rank - 1 : 0];
	rank = (n * 99 + 99) / 100;
	out->p99_ns = v[rank ? rank - 1 : 0];
	out->max_ns = v[n - 1];
	free(v);
	return 0;
}

void acquire_recalibrate(struct acquire *a)
{
	atomic_store(&a->recal_req, true);
}

unsigned acquire_calibrated(const struct acquire *a)
{
	return atomic_load(&((struct acquire *)a)->calibrated_mask);
}

struct stretch *acquire_stretch(const struct acquire *a)
{
	return a->stretch;
}

unsigned acquire_channels(const struct acquire *a)
{
	return a->src->channels;
}

double acquire_rate(const struct acquire *a)
{
	return a->src->rate_hz;
}

int acquire_post_protocol(struct acquire *a, const struct policy_protocol *pp)
{
	int pending = ACQUIRE_PROTO_PENDING;

	/* One the thread has not begun to take is withdrawn: this one replaces it. */
	if (!atomic_compare_exchange_strong(&a->proto_state, &pending, ACQUIRE_PROTO_IDLE) &&
	    pending == ACQUIRE_PROTO_TAKING) {
		return -EBUSY;
	}
	a->proto_next = *pp;
	atomic_store(&a->proto_state, ACQUIRE_PROTO_PENDING);
	return 0;
}

bool acquire_protocol_pending(const struct acquire *a)
{
	struct acquire *q = (struct acquire *)a;

	return atomic_load(&q->proto_state) != ACQUIRE_PROTO_IDLE || atomic_load(&q->proto_hold);
}

int64_t acquire_heartbeat(const struct acquire *a)
{
	return atomic_load_explicit(&((struct acquire *)a)->beat_ns, memory_order_acquire);
}

void acquire_test_stall(struct acquire *a)
{
	atomic_store(&a->test_stall, true);
}
