// SPDX-License-Identifier: MIT
/*
 * Outcome assessments on the control thread (docs/outcomes.md): "assess"
 * asks the acquire thread for a copy of the detector bank's running totals
 * at the next block, then at the block that ends the requested seconds
 * later; the difference (assess.c) is the block's rest RMS, bursts a
 * minute and % of time active per channel, exactly as the detectors saw
 * the EMG. The numbers go to the course database with the session, to
 * rpms.state as "assessment", and to the EDF+ file as a stretch (onset,
 * duration) through the publisher's copy of that event. Nothing here runs
 * on, or waits for, a real-time thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "acquire.h"
#include "assess.h"
#include "control_private.h"
#include "course.h"
#include "course_db.h"
#include "event.h"
#include "log.h"
#include "record.h"
#include "ring.h"
#include "sclock.h"
#include "stim.h"

enum control_assess_state {
	CONTROL_ASSESS_IDLE = 0,
	CONTROL_ASSESS_STARTING,	/* waiting for the totals at the block's start */
	CONTROL_ASSESS_RUNNING,		/* waiting for the totals at its end */
};

bool control_assess_active(const struct control *c)
{
	return c->assess_state != CONTROL_ASSESS_IDLE;
}

json_t *control_assess_start(struct control *c, const struct control_request *req,
			     struct control_error *err)
{
	const struct source *src = acquire_source(c->acq);
	unsigned all = (1u << acquire_channels(c->acq)) - 1;

	if (c->assess_state != CONTROL_ASSESS_IDLE) {
		control_request_fail(err, "busy", "assess: an assessment is under way (its result "
				     "comes on rpms.state \"assessment\")");
		return NULL;
	}
	if (!course_active(c->course)) {
		control_request_fail(err, "no_session", "assess: needs a course session "
				     "(session_start with a course_id): an assessment is stored "
				     "with its session");
		return NULL;
	}
	if (stim_armed(c->stim)) {
		control_request_fail(err, "armed", "assess: disarm the coil first: an assessment "
				     "measures EMG without stimulation");
		return NULL;
	}
	if ((acquire_calibrated(c->acq) & all) != all) {
		control_request_fail(err, "calibrating", "assess: not every channel is calibrated "
				     "yet: the detector's numbers need its rest level");
		return NULL;
	}
	if (!c->rec || record_first_sample(c->rec) == UINT64_MAX) {
		control_request_fail(err, "no_recording", "assess: the session has no recording "
				     "started: an assessment is a stretch of it");
		return NULL;
	}
	c->assess_phase = req->assess_phase;
	c->assess_seconds = req->assess_seconds;
	c->assess_state = CONTROL_ASSESS_STARTING;
	c->assess_first = 0;
	/* EMG that stops coming (the replay ended, a device lost) must not hold "busy" forever */
	c->assess_deadline_ns = sclock_mono_ns() + (int64_t)((3 * req->assess_seconds + 30) * 1e9);
	acquire_tally_request(c->acq, 0);
	log_info("assessment: %s rest over %g s of EMG begins", req->assess_phase ? "post" : "pre",
		 req->assess_seconds);
	return json_pack("{s:s, s:s, s:f, s:f}", "kind", "rest", "phase",
			 req->assess_phase ? "post" : "pre", "seconds", req->assess_seconds,
			 "rate_hz", src->rate_hz);
}

/* The block is over: its numbers to the database, the stream and the recording. */
static void control_assess_finish(struct control *c, const struct bank_tally *to,
				  uint64_t end_sample)
{
	const struct source *src = acquire_source(c->acq);
	struct course_db_result res[3 * EVENT_ASSESS_CHANNELS];
	struct course_db_assessment a = { 0 };
	struct assess_rest r;
	struct event ev;
	char err[COURSE_DB_ERR_MAX];
	uint64_t first = record_first_sample(c->rec);
	unsigned n = acquire_channels(c->acq);
	int rc;

	c->assess_state = CONTROL_ASSESS_IDLE;
	rc = assess_rest(&c->assess_from, to, n, src->rate_hz, &r, err, sizeof(err));
	memset(&ev, 0, sizeof(ev));
	ev.type = EVENT_ASSESS;
	/* published now, in recording order: the block itself is first_sample and samples */
	ev.sample = sclock_last_sample(c->clock);
	ev.u.assess.first_sample = c->assess_first;
	ev.u.assess.samples = end_sample - c->assess_first;
	ev.u.assess.phase = (uint32_t)c->assess_phase;
	ev.u.assess.channels = n;
	if (rc == 0 && r.blanked) {
		/* a pulse fell in the block (armed after it began): not a rest measure */
		snprintf(err, sizeof(err), "%" PRIu64 " samples of the block were in a "
			 "stimulation blank", r.blanked);
		rc = -ECANCELED;
	}
	for (unsigned ch = 0; rc == 0 && ch < n; ch++) {
		ev.u.assess.rms_uv[ch] = (float)r.ch[ch].rms_uv;
		ev.u.assess.bursts_per_min[ch] = (float)r.ch[ch].bursts_per_min;
		ev.u.assess.active_pct[ch] = (float)r.ch[ch].active_pct;
		res[3 * ch] = (struct course_db_result){ src->channel_names[ch], "rms_uv",
							  r.ch[ch].rms_uv };
		res[3 * ch + 1] = (struct course_db_result){ src->channel_names[ch],
							      "bursts_per_min",
							      r.ch[ch].bursts_per_min };
		res[3 * ch + 2] = (struct course_db_result){ src->channel_names[ch], "active_pct",
							      r.ch[ch].active_pct };
	}
	if (rc == 0 && (first == UINT64_MAX || c->assess_first < first)) {
		snprintf(err, sizeof(err), "the session's recording closed during the block");
		rc = -ESRCH;
	}
	if (rc == 0) {
		a.phase = c->assess_phase ? COURSE_DB_POST : COURSE_DB_PRE;
		a.kind = COURSE_DB_ASSESS_REST;
		a.at = (int64_t)time(NULL);
		a.onset_s = (double)(c->assess_first - first) / src->rate_hz;
		a.duration_s = (double)ev.u.assess.samples / src->rate_hz;
		a.n_results = 3 * n;
		a.results = res;
		rc = course_assessment(c->course, &a, err, sizeof(err));
	}
	ev.u.assess.code = rc;
	if (rc < 0) {
		log_warn("assessment: %s rest not stored: %s", c->assess_phase ? "post" : "pre",
			 err);
	} else {
		log_info("assessment: %s rest over %.1f s stored (%u channels)",
			 c->assess_phase ? "post" : "pre", a.duration_s, n);
	}
	event_stamp(&ev, sclock_now(c->clock));
	ring_push(c->events, &ev);
}

void control_assess_tick(struct control *c)
{
	const struct source *src;
	struct bank_tally t;
	uint64_t end;

	if (c->assess_state == CONTROL_ASSESS_IDLE) {
		return;
	}
	if (!acquire_tally_take(c->acq, &t, &end)) {
		if (sclock_mono_ns() > c->assess_deadline_ns) {
			struct event ev;

			log_warn("assessment: %s rest given up: the EMG of its %g s did not come",
				 c->assess_phase ? "post" : "pre", c->assess_seconds);
			c->assess_state = CONTROL_ASSESS_IDLE;
			memset(&ev, 0, sizeof(ev));
			ev.type = EVENT_ASSESS;
			ev.sample = sclock_last_sample(c->clock);
			ev.u.assess.phase = (uint32_t)c->assess_phase;
			ev.u.assess.first_sample = c->assess_first;
			ev.u.assess.code = -ETIMEDOUT;
			event_stamp(&ev, sclock_now(c->clock));
			ring_push(c->events, &ev);
		}
		return;
	}
	if (c->assess_state == CONTROL_ASSESS_STARTING) {
		src = acquire_source(c->acq);
		c->assess_first = end;
		c->assess_from = t;
		c->assess_state = CONTROL_ASSESS_RUNNING;
		/* the totals at the end of the block holding sample first + N s - 1 */
		acquire_tally_request(c->acq, end + (uint64_t)llround(c->assess_seconds *
								     src->rate_hz) - 1);
		return;
	}
	control_assess_finish(c, &t, end);
}
