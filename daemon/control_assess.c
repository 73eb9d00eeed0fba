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
#include "stretch.h"

enum control_assess_state {
	CONTROL_ASSESS_IDLE = 0,
	CONTROL_ASSESS_STARTING,	/* waiting for the totals at the block's start */
	CONTROL_ASSESS_RUNNING,		/* waiting for the totals at its end */
	CONTROL_ASSESS_SETTLING,	/* stretch: waiting for its last stretches to be handed on */
};

bool control_assess_active(const struct control *c)
{
	return c->assess_state != CONTROL_ASSESS_IDLE;
}

/*
 * The EMG channel named @name, for request key @key of assess @kind.
 * @return its index, or -1 with @err filled (naming the source's channels)
 */
static int control_assess_channel(struct control *c, const char *kind, const char *key,
				  const char *name, struct control_error *err)
{
	const struct source *src = acquire_source(c->acq);
	unsigned n = acquire_channels(c->acq), ch;

	for (ch = 0; ch < n && strcmp(src->channel_names[ch], name); ch++) {
	}
	if (ch == n) {
		control_request_fail(err, "invalid_value", "assess %s: %s \"%.64s\" is not an EMG "
				     "channel of the source (%u channels: %s%s%s%s)", kind, key, name,
				     n, src->channel_names[0], n > 1 ? ", " : "",
				     n > 1 ? src->channel_names[1] : "", n > 2 ? ", ..." : "");
		snprintf(err->key, sizeof(err->key), "%s", key);
		return -1;
	}
	return (int)ch;
}

/*
 * cci: the two named channels, and the session's MVC block they are
 * normalised to. @return 0, or -1 with @err filled
 */
static int control_assess_pair(struct control *c, const struct control_request *req,
			       struct control_error *err)
{
	const char *names[2] = { req->assess_agonist, req->assess_antagonist };

	for (int i = 0; i < 2; i++) {
		int ch = control_assess_channel(c, "cci", i ? "antagonist" : "agonist", names[i],
						err);

		if (ch < 0) {
			return -1;
		}
		c->assess_pair[i] = (unsigned)ch;
	}
	if (c->assess_pair[0] == c->assess_pair[1]) {
		control_request_fail(err, "invalid_value", "assess cci: agonist and antagonist are "
				     "both \"%.64s\": two different channels are needed", names[0]);
		snprintf(err->key, sizeof(err->key), "antagonist");
		return -1;
	}
	if (c->assess_mvc_session == 0 || c->assess_mvc_session != course_session_id(c->course)) {
		control_request_fail(err, "no_mvc", "assess cci: this session has no stored mvc "
				     "block: run \"assess mvc\" first (each channel is normalised "
				     "to its maximal voluntary contraction)");
		return -1;
	}
	return 0;
}

/*
 * stretch: the source has a joint angle, and the muscle is one of its EMG
 * channels. @return 0, or -1 with @err filled
 */
static int control_assess_muscle(struct control *c, const struct control_request *req,
				 struct control_error *err)
{
	int ch;

	if (!acquire_stretch(c->acq)) {
		control_request_fail(err, "no_angle", "assess stretch: the source has no joint-angle "
				     "input (source.angle_channel): the reflex threshold is an angle");
		return -1;
	}
	ch = control_assess_channel(c, "stretch", "muscle", req->assess_muscle, err);
	if (ch < 0) {
		return -1;
	}
	c->assess_muscle = (unsigned)ch;
	c->assess_direction = req->assess_direction < 0 ? -1 : 1;
	return 0;
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
	if (req->assess_kind == COURSE_DB_ASSESS_CCI && control_assess_pair(c, req, err) < 0) {
		return NULL;
	}
	if (req->assess_kind == COURSE_DB_ASSESS_STRETCH && control_assess_muscle(c, req, err) < 0) {
		return NULL;
	}
	c->assess_kind = req->assess_kind;
	c->assess_phase = req->assess_phase;
	c->assess_seconds = req->assess_seconds;
	c->assess_state = CONTROL_ASSESS_STARTING;
	c->assess_first = 0;
	c->assess_end = UINT64_MAX;
	c->assess_n_str = 0;
	c->assess_str_over = 0;
	/* EMG that stops coming (the replay ended, a device lost) must not hold "busy" forever */
	c->assess_deadline_ns = sclock_mono_ns() + (int64_t)((3 * (req->assess_seconds +
								   STRETCH_SETTLE_S) + 30) * 1e9);
	acquire_tally_request(c->acq, 0);
	log_info("assessment: %s %s over %g s of EMG begins", req->assess_phase ? "post" : "pre",
		 course_db_assess_kind_name(c->assess_kind), req->assess_seconds);
	if (c->assess_kind == COURSE_DB_ASSESS_CCI) {
		return json_pack("{s:s, s:s, s:f, s:f, s:s, s:s, s:s, s:f}", "kind", "cci", "phase",
				 req->assess_phase ? "post" : "pre", "seconds", req->assess_seconds,
				 "rate_hz", src->rate_hz, "agonist",
				 src->channel_names[c->assess_pair[0]], "antagonist",
				 src->channel_names[c->assess_pair[1]], "formula", "falconer_winter",
				 "window_s", ASSESS_CCI_WINDOW_S);
	}
	if (c->assess_kind == COURSE_DB_ASSESS_STRETCH) {
		return json_pack("{s:s, s:s, s:f, s:f, s:s, s:s, s:s}", "kind", "stretch", "phase",
				 req->assess_phase ? "post" : "pre", "seconds", req->assess_seconds,
				 "rate_hz", src->rate_hz, "muscle",
				 src->channel_names[c->assess_muscle], "direction",
				 c->assess_direction < 0 ? "decreasing" : "increasing", "angle",
				 src->angle_name);
	}
	return json_pack("{s:s, s:s, s:f, s:f}", "kind",
			 course_db_assess_kind_name(c->assess_kind), "phase",
			 req->assess_phase ? "post" : "pre", "seconds", req->assess_seconds,
			 "rate_hz", src->rate_hz);
}

/*
 * The block (c->assess_first, @samples long) as a stretch of the session's
 * recording, with its results, into the course database.
 * @return 0, or a negative errno with @err filled
 */
static int control_assess_store(struct control *c, enum course_db_assess_kind kind,
				uint64_t samples, struct course_db_result *res, size_t nres,
				char *err, size_t errlen)
{
	const struct source *src = acquire_source(c->acq);
	uint64_t first = record_first_sample(c->rec);
	struct course_db_assessment a = { 0 };

	if (first == UINT64_MAX || c->assess_first < first) {
		snprintf(err, errlen, "the session's recording closed during the block");
		return -ESRCH;
	}
	a.phase = c->assess_phase ? COURSE_DB_POST : COURSE_DB_PRE;
	a.kind = kind;
	a.at = (int64_t)time(NULL);
	a.onset_s = (double)(c->assess_first - first) / src->rate_hz;
	a.duration_s = (double)samples / src->rate_hz;
	a.n_results = nres;
	a.results = res;
	return course_assessment(c->course, &a, err, errlen);
}

/* The block is over: its numbers to the database, the stream and the recording. */
static void control_assess_finish(struct control *c, const struct bank_tally *to,
				  uint64_t end_sample)
{
	const struct source *src = acquire_source(c->acq);
	struct course_db_result res[3 * EVENT_ASSESS_CHANNELS];
	struct assess_rest r;
	struct event ev;
	char err[COURSE_DB_ERR_MAX];
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
	if (rc == 0) {
		rc = control_assess_store(c, COURSE_DB_ASSESS_REST, ev.u.assess.samples, res, 3 * n,
					  err, sizeof(err));
	}
	ev.u.assess.code = rc;
	if (rc < 0) {
		log_warn("assessment: %s rest not stored: %s", c->assess_phase ? "post" : "pre",
			 err);
	} else {
		log_info("assessment: %s rest over %.1f s stored (%u channels)",
			 c->assess_phase ? "post" : "pre",
			 (double)ev.u.assess.samples / src->rate_hz, n);
	}
	event_stamp(&ev, sclock_now(c->clock));
	ring_push(c->events, &ev);
}

/* An mvc or cci block's windows are all copied: its numbers out, as for rest. */
static void control_assess_finish_windows(struct control *c, const struct bank_tally *last,
					  int rc, const char *why)
{
	const struct source *src = acquire_source(c->acq);
	struct course_db_result res[2 * EVENT_ASSESS_CHANNELS + 2];
	uint64_t w = (uint64_t)llround(BANK_TALLY_WINDOW_S * src->rate_hz);
	size_t nw = (size_t)(c->assess_win_end - c->assess_win_first), nres = 0;
	unsigned n = acquire_channels(c->acq);
	const char *kind = course_db_assess_kind_name(c->assess_kind);
	char err[COURSE_DB_ERR_MAX], pair[2 * SOURCE_NAME_MAX + 2];
	float col[2][CONTROL_ASSESS_MAX_S * 5];
	double mvc[BANK_MAX_CHANNELS] = { 0 };
	struct assess_cci cci = { 0 };
	struct event ev;

	c->assess_state = CONTROL_ASSESS_IDLE;
	snprintf(err, sizeof(err), "%s", why ? why : "");
	memset(&ev, 0, sizeof(ev));
	ev.type = EVENT_ASSESS;
	ev.sample = sclock_last_sample(c->clock);
	ev.u.assess.first_sample = c->assess_first;
	ev.u.assess.samples = nw * w;
	ev.u.assess.phase = (uint32_t)c->assess_phase;
	ev.u.assess.kind = (uint32_t)c->assess_kind;
	ev.u.assess.channels = n;
	ev.u.assess.windows = (uint32_t)nw;
	if (rc == 0 && last->blanked > c->assess_from.blanked) {
		/* a pulse fell in the block (armed after it began): no clean contraction */
		snprintf(err, sizeof(err), "%" PRIu64 " samples of the block were in a "
			 "stimulation blank", last->blanked - c->assess_from.blanked);
		rc = -ECANCELED;
	}
	if (rc == 0 && c->assess_kind == COURSE_DB_ASSESS_MVC) {
		for (unsigned ch = 0; rc == 0 && ch < n; ch++) {
			for (size_t k = 0; k < nw; k++) {
				col[0][k] = c->assess_win[k][ch];
			}
			rc = assess_mvc_windows(col[0], nw, &mvc[ch], err, sizeof(err));
			if (rc < 0) {
				size_t used = strlen(err);

				snprintf(err + used, sizeof(err) - used, " (channel %s)",
					 src->channel_names[ch]);
			}
			ev.u.assess.rms_uv[ch] = (float)mvc[ch];
			res[nres++] = (struct course_db_result){ src->channel_names[ch], "mvc_rms_uv",
								  mvc[ch] };
		}
	} else if (rc == 0) {
		unsigned ag = c->assess_pair[0], an = c->assess_pair[1];

		for (unsigned ch = 0; ch < n; ch++) {
			double ss = 0;

			for (size_t k = 0; k < nw; k++) {
				ss += (double)c->assess_win[k][ch] * c->assess_win[k][ch];
			}
			ev.u.assess.rms_uv[ch] = nw ? (float)sqrt(ss / (double)nw) : 0;
		}
		for (size_t k = 0; k < nw; k++) {
			col[0][k] = c->assess_win[k][ag];
			col[1][k] = c->assess_win[k][an];
		}
		rc = assess_cci_windows(col[0], col[1], nw, c->assess_mvc_rms[ag],
					c->assess_mvc_rms[an], &cci, err, sizeof(err));
		ev.u.assess.cci_pct = (float)cci.cci_pct;
		ev.u.assess.agonist = ag;
		ev.u.assess.antagonist = an;
		snprintf(pair, sizeof(pair), "%s+%s", src->channel_names[ag],
			 src->channel_names[an]);
		res[nres++] = (struct course_db_result){ pair, "cci_pct", cci.cci_pct };
		res[nres++] = (struct course_db_result){ pair, "windows", (double)cci.windows };
		res[nres++] = (struct course_db_result){ src->channel_names[ag], "mvc_rms_uv",
							  c->assess_mvc_rms[ag] };
		res[nres++] = (struct course_db_result){ src->channel_names[an], "mvc_rms_uv",
							  c->assess_mvc_rms[an] };
	}
	if (rc == 0) {
		rc = control_assess_store(c, (enum course_db_assess_kind)c->assess_kind,
					  ev.u.assess.samples, res, nres, err, sizeof(err));
	}
	if (rc == 0 && c->assess_kind == COURSE_DB_ASSESS_MVC) {
		/* the references the session's cci blocks are normalised to */
		memcpy(c->assess_mvc_rms, mvc, sizeof(mvc));
		c->assess_mvc_session = course_session_id(c->course);
	}
	ev.u.assess.code = rc;
	if (rc < 0) {
		log_warn("assessment: %s %s not stored: %s", c->assess_phase ? "post" : "pre", kind,
			 err);
	} else if (c->assess_kind == COURSE_DB_ASSESS_CCI) {
		log_info("assessment: %s cci %s = %.1f %% (falconer_winter, %zu windows of %g s) "
			 "stored", c->assess_phase ? "post" : "pre", pair, cci.cci_pct,
			 cci.windows, ASSESS_CCI_WINDOW_S);
	} else {
		log_info("assessment: %s mvc over %zu windows stored (%u channels)",
			 c->assess_phase ? "post" : "pre", nw, n);
	}
	event_stamp(&ev, sclock_now(c->clock));
	ring_push(c->events, &ev);
}

/* The stretches handed on: those inside the block are kept, the others dropped. */
static void control_assess_drain(struct control *c)
{
	struct stretch *st = acquire_stretch(c->acq);
	struct stretch_rec r;

	if (!st) {
		return;
	}
	while (stretch_take(st, &r)) {
		if (c->assess_kind != COURSE_DB_ASSESS_STRETCH ||
		    (c->assess_state != CONTROL_ASSESS_RUNNING &&
		     c->assess_state != CONTROL_ASSESS_SETTLING) ||
		    r.start < c->assess_first || r.end >= c->assess_end) {
			continue;
		}
		if (c->assess_n_str == CONTROL_ASSESS_STRETCHES) {
			c->assess_str_over++;
			continue;
		}
		c->assess_str[c->assess_n_str++] = r;
	}
}

/* A stretch block is over and its last stretches are in: the fit, stored and published. */
static void control_assess_finish_stretch(struct control *c)
{
	const struct source *src = acquire_source(c->acq);
	struct course_db_result res[3 * CONTROL_ASSESS_STRETCHES + 10];
	char names[CONTROL_ASSESS_STRETCHES][3][32];
	double vel[CONTROL_ASSESS_STRETCHES], ang[CONTROL_ASSESS_STRETCHES];
	uint64_t onset[CONTROL_ASSESS_STRETCHES], first = record_first_sample(c->rec);
	struct assess_tsrt fit = { .tsrt_deg = NAN, .slope = NAN, .r2 = NAN };
	char err[COURSE_DB_ERR_MAX] = "", why[COURSE_DB_ERR_MAX] = "";
	unsigned m = c->assess_muscle;
	size_t stretches = 0, n = 0, nres = 0, no_onset = 0, not_at_rest = 0, late = 0;
	const char *mname = src->channel_names[m];
	struct event ev;
	int rc = 0, fit_rc;

	c->assess_state = CONTROL_ASSESS_IDLE;
	for (size_t k = 0; k < c->assess_n_str; k++) {
		const struct stretch_rec *r = &c->assess_str[k];

		/*
		 * the return movement; or one past the block, kept by the drain
		 * while the block's end was not known yet (a slow control thread)
		 */
		if (r->dir != c->assess_direction || r->end >= c->assess_end) {
			continue;
		}
		stretches++;
		if (r->emg[m] == STRETCH_NOT_AT_REST) {
			not_at_rest++;
		} else if (r->emg[m] == STRETCH_NO_ONSET) {
			no_onset++;
		} else if (!(r->onset_dps[m] >= STRETCH_END_DPS)) {
			/* the onset came once the joint had (all but) stopped: no velocity to fit */
			late++;
		} else {
			vel[n] = r->onset_dps[m];
			ang[n] = r->onset_deg[m];
			onset[n] = r->onset[m];
			n++;
		}
	}
	fit_rc = assess_tsrt(vel, ang, n, &fit, why, sizeof(why));
	if (fit_rc < 0) {
		fit.tsrt_deg = fit.slope = fit.r2 = NAN;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = EVENT_ASSESS;
	ev.sample = sclock_last_sample(c->clock);
	ev.u.assess.first_sample = c->assess_first;
	ev.u.assess.samples = c->assess_end - c->assess_first;
	ev.u.assess.phase = (uint32_t)c->assess_phase;
	ev.u.assess.kind = (uint32_t)COURSE_DB_ASSESS_STRETCH;
	ev.u.assess.channels = 0;
	ev.u.assess.muscle = m;
	ev.u.assess.direction = c->assess_direction;
	ev.u.assess.stretches = (uint32_t)stretches;
	ev.u.assess.fitted = (uint32_t)n;
	ev.u.assess.tsrt_deg = (float)fit.tsrt_deg;
	ev.u.assess.slope_s = (float)fit.slope;
	ev.u.assess.r2 = (float)fit.r2;
	if (c->assess_blanked) {
		snprintf(err, sizeof(err), "%" PRIu64 " samples of the block were in a "
			 "stimulation blank", c->assess_blanked);
		rc = -ECANCELED;
	} else if (stretches == 0) {
		/* most likely the angle input does not move, or moves the other way */
		snprintf(err, sizeof(err), "no passive stretch of at least %g degrees found with the "
			 "angle %s", STRETCH_MIN_DEG, c->assess_direction < 0 ? "decreasing" :
			 "increasing");
		rc = -ENODATA;
	}
	if (rc == 0) {
		res[nres++] = (struct course_db_result){ mname, "direction", c->assess_direction };
		res[nres++] = (struct course_db_result){ mname, "stretches", (double)stretches };
		res[nres++] = (struct course_db_result){ mname, "n", (double)n };
		res[nres++] = (struct course_db_result){ mname, "no_onset", (double)no_onset };
		res[nres++] = (struct course_db_result){ mname, "not_at_rest", (double)not_at_rest };
		res[nres++] = (struct course_db_result){ mname, "late_onset", (double)late };
		if (fit_rc == 0) {
			res[nres++] = (struct course_db_result){ mname, "tsrt_deg", fit.tsrt_deg };
			res[nres++] = (struct course_db_result){ mname, "slope_s", fit.slope };
			res[nres++] = (struct course_db_result){ mname, "r2", fit.r2 };
		}
		for (size_t k = 0; k < n; k++) {
			snprintf(names[k][0], sizeof(names[k][0]), "s%zu.velocity_dps", k + 1);
			snprintf(names[k][1], sizeof(names[k][1]), "s%zu.dsrt_deg", k + 1);
			/* where the onset lies: seconds of the session's recording, for a look at it */
			snprintf(names[k][2], sizeof(names[k][2]), "s%zu.onset_s", k + 1);
			res[nres++] = (struct course_db_result){ mname, names[k][0], vel[k] };
			res[nres++] = (struct course_db_result){ mname, names[k][1], ang[k] };
			if (first != UINT64_MAX && onset[k] >= first) {
				res[nres++] = (struct course_db_result){
					mname, names[k][2], (double)(onset[k] - first) / src->rate_hz
				};
			}
		}
		rc = control_assess_store(c, COURSE_DB_ASSESS_STRETCH, ev.u.assess.samples, res,
					  nres, err, sizeof(err));
	}
	ev.u.assess.code = rc;
	if (rc < 0) {
		log_warn("assessment: %s stretch not stored: %s", c->assess_phase ? "post" : "pre",
			 err);
	} else if (fit_rc < 0) {
		log_info("assessment: %s stretch of %s stored: %zu stretches, %zu with an onset from "
			 "rest (%zu none, %zu not at rest, %zu late); %s",
			 c->assess_phase ? "post" : "pre", mname, stretches, n, no_onset,
			 not_at_rest, late, why);
	} else {
		log_info("assessment: %s stretch of %s stored: TSRT %.1f deg, slope %.3f s, R2 %.2f "
			 "over %zu of %zu stretches", c->assess_phase ? "post" : "pre", mname,
			 fit.tsrt_deg, fit.slope, fit.r2, n, stretches);
	}
	if (c->assess_str_over) {
		log_warn("assessment: %" PRIu64 " stretches beyond the first %d of the block were "
			 "left out", c->assess_str_over, CONTROL_ASSESS_STRETCHES);
	}
	event_stamp(&ev, sclock_now(c->clock));
	ring_push(c->events, &ev);
}

/*
 * rest, stretch: the totals at the block's start (@t, copied at the end of
 * the block holding sample @end - 1) begin it; the next come at the end of
 * the block holding sample first + N s - 1.
 */
static void control_assess_begin_block(struct control *c, const struct bank_tally *t,
				       uint64_t end)
{
	const struct source *src = acquire_source(c->acq);

	c->assess_first = end;
	c->assess_from = *t;
	c->assess_state = CONTROL_ASSESS_RUNNING;
	acquire_tally_request(c->acq, end + (uint64_t)llround(c->assess_seconds * src->rate_hz) - 1);
}

/* stretch: the totals at the block's start, at its end, then once its stretches settled. */
static void control_assess_stretch_step(struct control *c, const struct bank_tally *t,
					uint64_t end)
{
	const struct source *src = acquire_source(c->acq);

	if (c->assess_state == CONTROL_ASSESS_STARTING) {
		control_assess_begin_block(c, t, end);
		return;
	}
	if (c->assess_state == CONTROL_ASSESS_RUNNING) {
		c->assess_end = end;
		c->assess_blanked = t->blanked - c->assess_from.blanked;
		c->assess_state = CONTROL_ASSESS_SETTLING;
		/* a stretch that ended in the block is handed on STRETCH_SETTLE_S later */
		acquire_tally_request(c->acq, end + (uint64_t)llround((STRETCH_SETTLE_S + 0.2) *
								     src->rate_hz));
		return;
	}
	control_assess_drain(c);
	control_assess_finish_stretch(c);
}

/*
 * mvc, cci: copy the windows this tally holds into the block; ask for the
 * next copy before the ring (BANK_TALLY_WINDOWS) could wrap past them.
 */
static void control_assess_windows(struct control *c, const struct bank_tally *t,
				   uint64_t end)
{
	const struct source *src = acquire_source(c->acq);
	uint64_t w = (uint64_t)llround(BANK_TALLY_WINDOW_S * src->rate_hz);
	unsigned n = acquire_channels(c->acq);
	uint64_t upto, target;

	w = w ? w : 1;
	if (c->assess_state == CONTROL_ASSESS_STARTING) {
		uint64_t nwin = (uint64_t)llround(c->assess_seconds * src->rate_hz) / w;

		/* the first whole window that begins at or after this copy */
		c->assess_win_first = (t->samples + w - 1) / w;
		c->assess_win_next = c->assess_win_first;
		c->assess_win_end = c->assess_win_first + nwin;
		c->assess_first = end + (c->assess_win_first * w - t->samples);
		/* blanks from here to the last copy: a superset of the block's */
		c->assess_from = *t;
		c->assess_state = CONTROL_ASSESS_RUNNING;
	} else if (t->windows > c->assess_win_next + BANK_TALLY_WINDOWS) {
		control_assess_finish_windows(c, t, -EOVERFLOW, "the control thread fell behind: "
					      "windows of the block were overwritten before they "
					      "were copied");
		return;
	}
	upto = t->windows < c->assess_win_end ? t->windows : c->assess_win_end;
	for (; c->assess_win_next < upto; c->assess_win_next++) {
		memcpy(c->assess_win[c->assess_win_next - c->assess_win_first],
		       t->win_rms[c->assess_win_next % BANK_TALLY_WINDOWS],
		       n * sizeof(float));
	}
	if (c->assess_win_next == c->assess_win_end) {
		control_assess_finish_windows(c, t, 0, NULL);
		return;
	}
	/* half the ring on: the copy comes long before it could wrap */
	target = c->assess_win_next + BANK_TALLY_WINDOWS / 2;
	target = target < c->assess_win_end ? target : c->assess_win_end;
	acquire_tally_request(c->acq, end + (target * w - t->samples) - 1);
}

void control_assess_tick(struct control *c)
{
	struct bank_tally t;
	uint64_t end;

	control_assess_drain(c);
	if (c->assess_state == CONTROL_ASSESS_IDLE) {
		return;
	}
	if (!acquire_tally_take(c->acq, &t, &end)) {
		if (sclock_mono_ns() > c->assess_deadline_ns) {
			struct event ev;

			log_warn("assessment: %s %s given up: the EMG of its %g s did not come",
				 c->assess_phase ? "post" : "pre",
				 course_db_assess_kind_name(c->assess_kind), c->assess_seconds);
			c->assess_state = CONTROL_ASSESS_IDLE;
			memset(&ev, 0, sizeof(ev));
			ev.type = EVENT_ASSESS;
			ev.sample = sclock_last_sample(c->clock);
			ev.u.assess.phase = (uint32_t)c->assess_phase;
			ev.u.assess.kind = (uint32_t)c->assess_kind;
			ev.u.assess.first_sample = c->assess_first;
			ev.u.assess.code = -ETIMEDOUT;
			event_stamp(&ev, sclock_now(c->clock));
			ring_push(c->events, &ev);
		}
		return;
	}
	if (c->assess_kind == COURSE_DB_ASSESS_STRETCH) {
		control_assess_stretch_step(c, &t, end);
		return;
	}
	if (c->assess_kind != COURSE_DB_ASSESS_REST) {
		control_assess_windows(c, &t, end);
		return;
	}
	if (c->assess_state == CONTROL_ASSESS_STARTING) {
		control_assess_begin_block(c, &t, end);
		return;
	}
	control_assess_finish(c, &t, end);
}
