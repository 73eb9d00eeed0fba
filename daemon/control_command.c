/* SPDX-License-Identifier: MIT */
/*
 * The control socket's commands: arm, disarm, calibrate, session_start,
 * session_stop, set (and SIGHUP's protocol reload, which is a set), run on
 * the control thread for one parsed request, and the reply.
 *
 * Commands never touch the real-time threads' data: arming goes through
 * stim_arm, the stim thread's command ring (it keeps every refusal: ledger, e-stop,
 * coil status), a session through stim_new_session, a calibration and a
 * new protocol through flags and a copy the acquire thread takes between
 * two blocks. Replies report what the daemon did, not what was asked: an
 * arm waits (up to CONTROL_WAIT_MS) for the stim thread's own outcome.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "acquire.h"
#include "blind.h"
#include "config.h"
#include "control_private.h"
#include "course.h"
#include "event.h"
#include "log.h"
#include "policy.h"
#include "prescription.h"
#include "publish.h"
#include "record.h"
#include "ring.h"
#include "sclock.h"
#include "stim.h"

#define CONTROL_TICK_NS 2000000		/* how often a wait looks again */

/* One wait step: false once @deadline passed or the thread is stopping. */
static bool control_command_tick(struct control *c, int64_t deadline)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = CONTROL_TICK_NS };

	if (atomic_load(&c->stopping) || sclock_mono_ns() >= deadline) {
		return false;
	}
	nanosleep(&ts, NULL);
	return true;
}

static int64_t control_command_deadline(void)
{
	return sclock_mono_ns() + (int64_t)CONTROL_WAIT_MS * 1000000;
}

static void control_command_push(struct control *c, struct event *ev)
{
	event_stamp(ev, sclock_now(c->clock));
	ring_push(c->events, ev);
}

static void control_command_push_state(struct control *c, enum event_state state,
				       const char *reason)
{
	struct event ev;

	event_state_init(&ev, state, 0, reason, sclock_last_sample(c->clock));
	control_command_push(c, &ev);
}

static void control_command_push_session(struct control *c, bool started, const char *patient,
					 const char *session, uint64_t pulses, const char *arm_code)
{
	struct event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = EVENT_SESSION;
	ev.sample = sclock_last_sample(c->clock);
	ev.u.session.started = started;
	ev.u.session.pulses = pulses;
	snprintf(ev.u.session.patient_id, sizeof(ev.u.session.patient_id), "%s", patient);
	snprintf(ev.u.session.session_id, sizeof(ev.u.session.session_id), "%s", session);
	snprintf(ev.u.session.arm_code, sizeof(ev.u.session.arm_code), "%s", arm_code);
	control_command_push(c, &ev);
}

/* One key to apply: [stim] keys from "set", a prescription's keys from session_start. */
struct control_key {
	const char *section;
	const char *key;
	const char *value;
};

static struct rpmsd_config *control_command_prepare(struct control *c,
						    const struct control_key *keys, size_t n,
						    const char *origin, struct control_error *err);
static json_t *control_command_commit(struct control *c, const struct rpmsd_config *next,
				      const char *reason, struct control_error *err);

static json_t *control_command_arm(struct control *c, struct control_error *err)
{
	struct stim_arm_result after;
	int64_t deadline = control_command_deadline();
	unsigned ticket;

	if (acquire_parked(c->acq)) {
		control_request_fail(err, "acquisition", "the EMG source failed and is being "
				     "reopened: the coil cannot be armed without EMG (see "
				     "rpms.state)");
		return NULL;
	}
	if (stim_armed(c->stim)) {
		return json_pack("{s:b, s:b}", "armed", 1, "changed", 0);
	}
	if (c->blind && !c->in_session && !c->cfg->blind.course_id[0]) {
		/* every pulse of a blinded trial belongs to an allocated, audited session */
		control_request_fail(err, "no_session", "blinding is configured (blind.allocation): "
				     "arm only in a session started with an allocated course_id; "
				     "the coil stays disarmed");
		return NULL;
	}
	if (stim_arm(c->stim, "control: arm", &ticket) < 0) {
		control_request_fail(err, "busy", "the stim thread's command ring is full: "
				     "nothing was asked; the coil is %s",
				     stim_armed(c->stim) ? "armed" : "disarmed");
		return NULL;
	}
	/* The stim thread decides; its refusals are the reply. */
	do {
		stim_arm_result(c->stim, &after);
	} while ((int)(after.attempts - ticket) < 0 && control_command_tick(c, deadline));
	if ((int)(after.attempts - ticket) < 0) {
		control_request_fail(err, "timeout", "arm was requested but the stim thread gave "
				     "no outcome within %d ms; the coil is %s", CONTROL_WAIT_MS,
				     stim_armed(c->stim) ? "armed" : "disarmed");
		return NULL;
	}
	if (after.code != 0) {
		control_request_fail(err, "arm_refused", "%s (%s)", after.reason,
				     strerror(-after.code));
		return NULL;
	}
	if (!stim_armed(c->stim)) {
		control_request_fail(err, "arm_refused", "armed, then disarmed again at once (see "
				     "rpms.state)");
		return NULL;
	}
	return json_pack("{s:b, s:b}", "armed", 1, "changed", 1);
}

/* Ask the stim thread to disarm and wait for it. @return true when disarmed */
static bool control_command_disarm_wait(struct control *c, const char *reason)
{
	int64_t deadline = control_command_deadline();

	stim_disarm(c->stim, reason);
	while (stim_armed(c->stim) && control_command_tick(c, deadline)) {
		;
	}
	return !stim_armed(c->stim);
}

static json_t *control_command_disarm(struct control *c, struct control_error *err)
{
	bool was = stim_armed(c->stim);

	if (!control_command_disarm_wait(c, "control: disarm")) {
		control_request_fail(err, "timeout", "disarm was requested but the stim thread had "
				     "not disarmed within %d ms", CONTROL_WAIT_MS);
		return NULL;
	}
	return json_pack("{s:b, s:b}", "armed", 0, "changed", was);
}

static json_t *control_command_calibrate(struct control *c, struct control_error *err)
{
	if (stim_armed(c->stim)) {
		control_request_fail(err, "armed", "the coil is armed: disarm first (the patient "
				     "must be at rest, and not stimulated, for the %g s of "
				     "detect.calibration_s)", c->calibration_s);
		return NULL;
	}
	acquire_recalibrate(c->acq);
	return json_pack("{s:b, s:f, s:i}", "calibrating", 1, "window_s", c->calibration_s,
			 "channels", (int)acquire_channels(c->acq));
}

/*
 * Close the recording's file with every event published until now in it.
 * The stim thread clears stim_armed() before it tells the plugin and
 * queues its "disarmed", so that event may still be on its way when a
 * disarm wait returns: a turn of its loop that starts later (a newer
 * heartbeat) comes after it, and a repeated disarm (a no-op for a disarmed
 * gate; the plugin is told again) makes it turn at once. Then the
 * publisher is waited for until it has copied to the recorder every event
 * queued so far. Closing without waiting lost the disarm of a session stop
 * in 9 of 24 sessions; waiting for ever would let a stuck publisher hold
 * the operator's command: past the deadline the file is closed anyway and
 * says so.
 * @return what record_stop_session returned
 */
static int control_command_record_close(struct control *c)
{
	int64_t deadline = control_command_deadline(), seen = sclock_mono_ns();
	bool complete;

	stim_disarm(c->stim, "session stopped");
	while (stim_heartbeat(c->stim) <= seen && control_command_tick(c, deadline)) {
		;
	}
	complete = stim_heartbeat(c->stim) > seen && publish_flush(c->pub, deadline) == 0;
	if (!complete) {
		log_warn("control: the session's last events had not reached the recorder "
			 "within %d ms; its file is closed without them", CONTROL_WAIT_MS);
	}
	return record_stop_session(c->rec, complete);
}

/*
 * A session gets its own recording: the file open until now (the one of
 * the start-up ids, or of the previous session) is closed and a new one
 * made with the session's ids. A recording that cannot be made does not
 * stop the session (stimulation safety does not depend on the disk): the
 * reply and the recorder's own rpms.record event say why.
 * @return {"file": path} or {"error": message}, or JSON null without [record]
 */
static json_t *control_command_record_start(struct control *c, const char *patient,
					     const char *session, const char *notes)
{
	char path[CONFIG_PATH_MAX];
	int ret;

	c->rec_path[0] = '\0';
	if (!c->rec) {
		return json_null();
	}
	ret = control_command_record_close(c);
	if (ret < 0 && ret != -ENOENT) {
		return json_pack("{s:s}", "error", strerror(-ret));
	}
	ret = record_start_session(c->rec, patient, session, notes, path, sizeof(path));
	if (ret < 0) {
		return json_pack("{s:s}", "error", strerror(-ret));
	}
	snprintf(c->rec_path, sizeof(c->rec_path), "%s", path);
	return json_pack("{s:s}", "file", path);
}

/*
 * @rx's protocol at motor threshold @mt_pct as the configuration to
 * commit, held to every rule of "set" (control_command_prepare).
 * @return it (free() it), or NULL with @err filled
 */
static struct rpmsd_config *control_command_rx_prepare(struct control *c,
						       const struct prescription *rx,
						       double mt_pct, struct control_error *err)
{
	struct prescription_stim_key sk[PRESCRIPTION_STIM_KEYS_MAX];
	struct control_key keys[PRESCRIPTION_STIM_KEYS_MAX];
	char why[COURSE_ERR_MAX];
	size_t n = 0;

	if (prescription_stim_keys(rx, mt_pct, sk, &n, why, sizeof(why)) < 0) {
		control_request_fail(err, "invalid_value", "session_start: %s (send "
				     "motor_threshold_pct, the motor threshold measured in this "
				     "session, in %% of maximum output)", why);
		snprintf(err->key, sizeof(err->key), "motor_threshold_pct");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		keys[i] = (struct control_key){ sk[i].section, sk[i].key, sk[i].value };
	}
	return control_command_prepare(c, keys, n, rx->path, err);
}

/*
 * A course session's protocol and database session (session_start with a
 * course_id): the prescription found and checked to be the patient's, its
 * protocol held to every rule of "set", the limits across rigs checked by
 * the course database, and only then the protocol put in force. Any
 * refusal changes nothing: no protocol, no session, the coil disarmed.
 * @return the prepared configuration committed (*@proto set to the reply's
 *         protocol), or -1 with @err filled
 */
static int control_command_course_start(struct control *c, const struct control_request *req,
					const char *arm_code, uint64_t *cap, json_t **course,
					struct control_error *err)
{
	char why[COURSE_ERR_MAX], rule[96], reason[EVENT_REASON_MAX];
	struct prescription *rx = malloc(sizeof(*rx));
	struct rpmsd_config *next = NULL;
	json_t *proto;
	bool pending;
	double mt;
	int ret = -1;

	if (!rx) {
		control_request_fail(err, "internal", "out of memory");
		return -1;
	}
	if (!c->course) {
		control_request_fail(err, "no_course", "session_start: course_id %s, but this daemon "
				     "has no courses (course.prescriptions is empty)", req->course_id);
		snprintf(err->key, sizeof(err->key), "course.prescriptions");
		goto out;
	}
	ret = course_find(c->course, req->course_id, req->patient_id, rx, why, sizeof(why));
	if (ret < 0) {
		control_request_fail(err, ret == -EPERM ? "wrong_patient" : "no_prescription",
				     "session_start: %s", why);
		ret = -1;
		goto out;
	}
	ret = -1;
	/*
	 * "% of the motor threshold" without one: the session starts waiting
	 * for the threshold procedure (its result becomes the intensity). The
	 * protocol is checked now at the lowest intensity it can have (1 %:
	 * the train table's level, intensity over threshold, does not depend
	 * on the threshold), so that a protocol no threshold could make
	 * deliverable is refused before anything starts.
	 */
	pending = rx->intensity.kind == PRESCRIPTION_INTENSITY_MT &&
		  !(req->motor_threshold_pct > 0.0);
	mt = pending ? 100.0 / rx->intensity.motor_threshold_pct : req->motor_threshold_pct;
	next = control_command_rx_prepare(c, rx, mt, err);
	if (!next) {
		goto out;
	}
	if (course_begin(c->course, rx, pending ? 0.0 : mt, pending ? -1.0 :
			 next->stim.intensity_pct, arm_code, stim_day_pulses(c->stim), cap, why,
			 sizeof(why)) < 0) {
		control_request_fail(err, "course_refused", "session_start: course %s: %s",
				     req->course_id, why);
		goto out;
	}
	if (pending) {
		/* only threshold probes fire until the intensity is known */
		acquire_hold(c->acq, true);
		c->course_mt_pending = true;
		c->course_mt_refused[0] = '\0';
		c->course_cap = *cap;
		course_intensity_text(rx, 0.0, rule, sizeof(rule));
		*course = json_pack("{s:s, s:I, s:I, s:s, s:b}", "course_id", rx->course.id,
				    "db_session", (json_int_t)course_session_id(c->course),
				    "pulses_cap", (json_int_t)*cap, "intensity_rule", rule,
				    "motor_threshold_pending", 1);
		log_info("course %s: the session waits for its motor threshold (rpmsctl "
			 "threshold): only threshold probes fire until then", rx->course.id);
		ret = 0;
		goto out;
	}
	course_intensity_text(rx, req->motor_threshold_pct, rule, sizeof(rule));
	/* the event's reason has 160 characters: the file's name is cut, the rule kept */
	snprintf(reason, sizeof(reason), "course %.36s: intensity %.60s: %.40s", rx->course.id, rule,
		 rx->path);
	proto = control_command_commit(c, next, reason, err);
	if (!proto) {
		course_abort(c->course, "not started: the protocol could not be put in force");
		goto out;
	}
	c->course_mt_pct = req->motor_threshold_pct;
	c->course_cap = *cap;
	*course = json_pack("{s:s, s:I, s:I, s:s, s:o}", "course_id", rx->course.id, "db_session",
			    (json_int_t)course_session_id(c->course), "pulses_cap", (json_int_t)*cap,
			    "intensity_rule", rule, "protocol", proto);
	ret = 0;
out:
	free(next);
	free(rx);
	return ret;
}

static json_t *control_command_session_start(struct control *c, const struct control_request *req,
					     struct control_error *err)
{
	char notes[RECORD_NOTES_MAX] = "";
	char why[CONTROL_MSG_MAX];
	struct blind_start blind;
	json_t *rec, *course = json_null();
	uint64_t cap = 0;
	bool active;

	pthread_mutex_lock(&c->lock);
	active = c->in_session;
	pthread_mutex_unlock(&c->lock);
	if (active) {
		control_request_fail(err, "session_active", "session %s of patient %s is active: "
				     "stop it first (session_stop)", c->session_id, c->patient_id);
		return NULL;
	}
	if (stim_armed(c->stim)) {
		control_request_fail(err, "armed", "the coil is armed: disarm first (a session "
				     "starts disarmed, and its pulse count, "
				     "safety.max_session_pulses, starts at 0)");
		return NULL;
	}
	/*
	 * The allocation decides the coil; the true arm goes only to the sealed
	 * audit. First, so that a refusal here leaves the protocol and the
	 * course database as they were (a start the course database refuses
	 * after this leaves a sealed record of the attempt: docs/sham.md).
	 */
	if (blind_session_start(c->blind, req->patient_id, req->course_id, req->session_id,
				&blind, why, sizeof(why)) < 0) {
		control_request_fail(err, "not_allocated", "%s; no session started, the coil "
				     "stays disarmed", why);
		return NULL;
	}
	c->course_mt_pct = 0.0;
	c->course_mt_pending = false;
	if (req->course_id[0]) {
		if (control_command_course_start(c, req, blind.arm_code, &cap, &course, err) < 0) {
			return NULL;
		}
		course_edf_notes(course_rx(c->course), c->course_mt_pct, notes, sizeof(notes));
	}
	/*
	 * The new file first, then the session: closing the previous file waits
	 * for its last events to reach the recorder (publish_flush, which can
	 * take the publisher's reorder hold), and the new file starts with the
	 * EMG block the recorder has then; a session marked before that would
	 * begin before its own file.
	 */
	rec = control_command_record_start(c, req->patient_id, req->session_id, notes);
	if (stim_new_session_coil(c->stim, blind.coil, cap, c->course_mt_pct > 0.0 ?
				  c->course_mt_pct : c->cfg->safety.motor_threshold_pct) < 0) {
		/* the stim thread's command ring is full: it is far behind, say so */
		json_decref(rec);
		json_decref(course);
		course_abort(c->course, "not started: the stim thread was busy");
		control_request_fail(err, "busy", "the stim thread has not taken the commands "
				     "before this one yet: try session_start again");
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	c->in_session = true;
	memcpy(c->patient_id, req->patient_id, sizeof(c->patient_id));
	memcpy(c->session_id, req->session_id, sizeof(c->session_id));
	pthread_mutex_unlock(&c->lock);
	control_command_push_session(c, true, req->patient_id, req->session_id, 0,
				     blind.arm_code);
	rec = json_pack("{s:o, s:o}", "session",
			control_status_ids(req->patient_id, req->session_id), "recording", rec);
	if (rec && !json_is_null(course)) {
		json_object_set(rec, "course", course);
	}
	json_decref(course);
	return rec;
}

static json_t *control_command_session_stop(struct control *c, const struct control_request *req,
					    struct control_error *err)
{
	char patient[EVENT_ID_MAX + 1], session[EVENT_ID_MAX + 1], dev[CONTROL_REASON_MAX + 96];
	char reason[EVENT_REASON_MAX];
	uint64_t pulses;
	json_t *res;
	bool was;

	/* Always disarms, session or not: a stop must never leave the coil armed. */
	if (!control_command_disarm_wait(c, "session stopped")) {
		control_request_fail(err, "timeout", "the stim thread had not disarmed within %d "
				     "ms; the session is still active", CONTROL_WAIT_MS);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	was = c->in_session;
	memcpy(patient, c->patient_id, sizeof(patient));
	memcpy(session, c->session_id, sizeof(session));
	c->in_session = false;
	c->patient_id[0] = '\0';
	c->session_id[0] = '\0';
	pthread_mutex_unlock(&c->lock);
	pulses = stim_session_pulses(c->stim);
	if (c->course_mt_pending) {
		/* the session ends without its threshold: the policy is free again */
		c->course_mt_pending = false;
		acquire_hold(c->acq, control_threshold_running(c));
	}
	if (!was) {
		return json_pack("{s:b, s:b, s:n}", "stopped", 0, "armed", 0, "session");
	}
	if (c->rec) {
		/* the session's file is complete: closed, count and annotations written */
		(void)control_command_record_close(c);
	}
	dev[0] = '\0';
	if (course_active(c->course)) {
		/* disarmed: the gate's count is final, the ledger has it */
		course_end(c->course, pulses, req->reason, c->rec_path, dev, sizeof(dev));
		if (dev[0]) {
			snprintf(reason, sizeof(reason), "deviation: %s", dev);
			control_command_push_state(c, EVENT_STATE_PROTOCOL, reason);
		}
	}
	control_command_push_session(c, false, patient, session, pulses, "");
	res = json_pack("{s:b, s:b, s:o, s:I}", "stopped", 1, "armed", 0, "session",
			control_status_ids(patient, session), "pulses_session", (json_int_t)pulses);
	if (res && dev[0]) {
		json_object_set_new(res, "deviation", json_string(dev));
	}
	return res;
}

int control_command_course_threshold(struct control *c, double mt_pct, char *why, size_t len)
{
	const struct prescription *rx = course_rx(c->course);
	char rule[96], reason[EVENT_REASON_MAX], dberr[COURSE_ERR_MAX];
	struct control_error err;
	struct rpmsd_config *next;
	json_t *proto;

	if (!c->course_mt_pending || !rx) {
		return 0;
	}
	memset(&err, 0, sizeof(err));
	/* the rules of session_start: caps, train table, the device's envelope */
	next = control_command_rx_prepare(c, rx, mt_pct, &err);
	if (!next) {
		snprintf(why, len, "%s", err.message);
		goto refused;
	}
	/*
	 * Disarmed first: the stimulation begins only when the operator arms
	 * again, knowingly, at the intensity now shown; nothing fires at it
	 * on the arm the probes had.
	 */
	if (!control_command_disarm_wait(c, "motor threshold measured: arm again to stimulate "
					 "at the session's intensity") ||
	    stim_session_threshold(c->stim, mt_pct) < 0) {
		free(next);
		snprintf(why, len, "the stim thread did not take the threshold in time");
		goto refused;
	}
	course_intensity_text(rx, mt_pct, rule, sizeof(rule));
	snprintf(reason, sizeof(reason), "course %.36s: intensity %.60s (motor threshold measured)",
		 rx->course.id, rule);
	proto = control_command_commit(c, next, reason, &err);
	free(next);
	if (!proto) {
		/* the gate keeps the probes' threshold level: nothing else fires while held */
		(void)stim_session_threshold(c->stim, 0.0);
		snprintf(why, len, "%s", err.message);
		goto refused;
	}
	json_decref(proto);
	c->course_mt_pct = mt_pct;
	c->course_mt_pending = false;
	c->course_mt_refused[0] = '\0';
	if (course_session_intensity(c->course, mt_pct, c->cfg->stim.intensity_pct, dberr,
				     sizeof(dberr)) < 0) {
		log_warn("course: the session's intensity not stored: %s", dberr);
	}
	log_info("course %s: motor threshold %g %%: the session's intensity is %s; disarmed, arm "
		 "to stimulate", rx->course.id, mt_pct, rule);
	acquire_hold(c->acq, false);
	return 0;

refused:
	snprintf(c->course_mt_refused, sizeof(c->course_mt_refused), "%s", why);
	log_warn("course: motor threshold %g %% not put in force: %s; the session still waits for "
		 "its threshold", mt_pct, why);
	return -1;
}

void control_command_course_tick(struct control *c)
{
	course_pulses(c->course, stim_session_pulses(c->stim));
	control_assess_tick(c);
}

bool control_command_course_active(const struct control *c)
{
	return course_active(c->course) || control_assess_active(c);
}

/*
 * The first "section.key" token after @prefix in @msg into @out, or "".
 * config_recheck names the key at fault first and the limit it broke as
 * "safety.<key>"; the reply carries both.
 */
static void control_command_token(const char *msg, const char *prefix, char *out, size_t len)
{
	const char *p = strstr(msg, prefix);
	size_t n = 0;

	out[0] = '\0';
	if (!p) {
		return;
	}
	while (p[n] && (islower((unsigned char)p[n]) || isdigit((unsigned char)p[n]) ||
			p[n] == '_' || p[n] == '.')) {
		n++;
	}
	while (n > 0 && p[n - 1] == '.') {
		n--;
	}
	snprintf(out, len, "%.*s", (int)n, p);
}

/*
 * The checks every protocol change passes, "set" and a course's
 * prescription alike: each key through config_override, the whole through
 * config_recheck (the limits, as for a file) and the connected device's
 * envelope. A key that cannot change while running (stim.mode) must
 * already hold the value asked for.
 * @return the configuration to commit (free() it), or NULL with @err filled
 */
static struct rpmsd_config *control_command_prepare(struct control *c,
						    const struct control_key *keys, size_t n,
						    const char *origin, struct control_error *err)
{
	char why[CONFIG_ERR_MAX], now[CONTROL_VALUE_MAX];
	struct rpmsd_config *next = malloc(sizeof(*next));
	enum safety_rule rule;
	size_t i;

	if (!next) {
		control_request_fail(err, "internal", "out of memory");
		return NULL;
	}
	*next = *c->cfg;
	for (i = 0; i < n; i++) {
		/*
		 * open_loop_pulses travels with the protocol (policy_protocol),
		 * motor_threshold_pct with the session (stim_new_session)
		 */
		if (!config_key_live(keys[i].section, keys[i].key) &&
		    strcmp(keys[i].key, "open_loop_pulses") && strcmp(keys[i].key, "motor_threshold_pct")) {
			config_value_text(c->cfg, keys[i].section, keys[i].key, now, sizeof(now));
			if (strcmp(now, keys[i].value)) {
				control_request_fail(err, "invalid_value", "%s: %s.%s = %s is needed, but "
						     "this daemon runs with %s, which cannot change "
						     "while it runs (set it in the configuration and "
						     "restart); nothing changed", origin,
						     keys[i].section, keys[i].key, keys[i].value, now);
				snprintf(err->key, sizeof(err->key), "%s.%s", keys[i].section,
					 keys[i].key);
				goto err;
			}
			continue;
		}
		if (config_override(next, origin, keys[i].section, keys[i].key, keys[i].value,
				    why, sizeof(why)) < 0) {
			control_request_fail(err, "invalid_value", "%s", why);
			snprintf(err->key, sizeof(err->key), "%s.%s", keys[i].section, keys[i].key);
			goto err;
		}
	}
	/* The same rules as a configuration file: the protocol must fit the limits. */
	if (config_recheck(next, origin, why, sizeof(why)) < 0) {
		control_command_token(why, "safety.", err->rule, sizeof(err->rule));
		control_command_token(why, "stim.", err->key, sizeof(err->key));
		control_request_fail(err, err->rule[0] ? "beyond_safety_cap" : "invalid_value",
				     "%s", why);
		goto err;
	}
	/* ... and the connected device must be able to deliver it (its envelope) */
	if (safety_device_check(stim_device(c->stim), next, &rule, why, sizeof(why)) < 0) {
		/* "device.rate_cap" for the gate's device_rate_cap */
		snprintf(err->rule, sizeof(err->rule), "device.%s",
			 safety_rule_name(rule) + strlen("device_"));
		control_command_token(why, "stim.", err->key, sizeof(err->key));
		control_request_fail(err, "beyond_safety_cap", "%s", why);
		goto err;
	}
	return next;

err:
	free(next);
	return NULL;
}

/*
 * Put @next (from control_command_prepare) in force: the acquire thread
 * takes the protocol between two blocks, the device is asked for a new
 * intensity, and rpms.state "protocol" says @reason.
 * @return {"applied", "protocol"}, or NULL with @err filled (nothing changed)
 */
static json_t *control_command_commit(struct control *c, const struct rpmsd_config *next,
				      const char *reason, struct control_error *err)
{
	struct policy_protocol pp;
	int64_t deadline;
	bool applied, intensity_changed;
	int ret;

	policy_protocol_from_config(next, &pp);
	deadline = control_command_deadline();
	while ((ret = acquire_post_protocol(c->acq, &pp)) == -EBUSY &&
	       control_command_tick(c, deadline)) {
		;
	}
	if (ret < 0) {
		control_request_fail(err, "timeout", "the acquire thread was still taking the "
				     "previous protocol after %d ms; nothing changed",
				     CONTROL_WAIT_MS);
		return NULL;
	}
	intensity_changed = next->stim.intensity_pct != c->cfg->stim.intensity_pct;
	*c->cfg = *next;
	if (intensity_changed) {
		/*
		 * The device is asked for it off the stim thread; until it
		 * confirms, the gate's device_intensity rule refuses pulses.
		 */
		ret = stim_device_intensity(c->stim, next->stim.intensity_pct);
		if (ret < 0 && ret != -EOPNOTSUPP) {
			log_warn("set: asking the device for %g %%: %s", next->stim.intensity_pct,
				 strerror(-ret));
		}
	}
	pthread_mutex_lock(&c->lock);
	config_value_text(c->cfg, "stim", "protocol", c->protocol, sizeof(c->protocol));
	pthread_mutex_unlock(&c->lock);
	while (acquire_protocol_pending(c->acq) && control_command_tick(c, deadline)) {
		;
	}
	applied = !acquire_protocol_pending(c->acq);
	control_command_push_state(c, EVENT_STATE_PROTOCOL, reason);
	return json_pack("{s:b, s:o}", "applied", applied, "protocol",
			 control_status_protocol(c->cfg));
}

static json_t *control_command_set(struct control *c, const struct control_request *req,
				   const char *origin, struct control_error *err)
{
	char reason[EVENT_REASON_MAX], why[COURSE_ERR_MAX];
	struct control_key keys[CONTROL_SET_MAX];
	struct rpmsd_config *next;
	double before = c->cfg->stim.intensity_pct;
	const char *because = req->reason[0] ? req->reason : "no reason given";
	json_t *res;
	size_t i;

	if (c->course_mt_pending && !strcmp(origin, "set")) {
		control_request_fail(err, "mt_pending", "set: the course session waits for its "
				     "motor threshold (rpmsctl threshold): its intensity comes from "
				     "it; nothing changed");
		return NULL;
	}
	for (i = 0; i < req->n_params; i++) {
		keys[i] = (struct control_key){ "stim", req->params[i].key, req->params[i].value };
	}
	next = control_command_prepare(c, keys, req->n_params, origin, err);
	if (!next) {
		return NULL;
	}
	snprintf(reason, sizeof(reason), "%s:", origin);
	for (i = 0; i < req->n_params; i++) {
		size_t used = strlen(reason);

		snprintf(reason + used, sizeof(reason) - used, "%s%s", i ? "," : " ",
			 req->params[i].key);
	}
	/* a course session's intensity is the prescription's: a change is a deviation */
	if (course_active(c->course) && next->stim.intensity_pct != before) {
		size_t used = strlen(reason);

		snprintf(reason + used, sizeof(reason) - used, "; deviation: intensity %g -> %g %%: "
			 "%.60s", before, next->stim.intensity_pct, because);
	}
	res = control_command_commit(c, next, reason, err);
	if (res && course_active(c->course) && next->stim.intensity_pct != before) {
		char text[CONTROL_REASON_MAX + 96];

		snprintf(text, sizeof(text), "intensity %g -> %g %% MSO by %s: %s", before,
			 next->stim.intensity_pct, origin, because);
		if (course_deviation(c->course, "intensity changed", text, why, sizeof(why)) < 0) {
			log_warn("course: deviation not recorded: %s", why);
		}
		json_object_set_new(res, "deviation", json_string(text));
	}
	free(next);
	return res;
}

static json_t *control_command_run(struct control *c, const struct control_request *req,
				   struct control_error *err)
{
	switch (req->cmd) {
	case CONTROL_CMD_STATUS:
		return control_status_json(c);
	case CONTROL_CMD_ARM:
		return control_command_arm(c, err);
	case CONTROL_CMD_DISARM:
		return control_command_disarm(c, err);
	case CONTROL_CMD_CALIBRATE:
		return control_command_calibrate(c, err);
	case CONTROL_CMD_SESSION_START:
		return control_command_session_start(c, req, err);
	case CONTROL_CMD_SESSION_STOP:
		return control_command_session_stop(c, req, err);
	case CONTROL_CMD_SET:
		return control_command_set(c, req, "set", err);
	case CONTROL_CMD_ASSESS:
		return control_assess_start(c, req, err);
	case CONTROL_CMD_THRESHOLD:
		return control_threshold_start(c, req, err);
	case CONTROL_CMD_THRESHOLD_STATUS:
		return control_threshold_status(c, req);
	case CONTROL_CMD_COUNT:
		break;
	}
	control_request_fail(err, "internal", "no handler for the command");
	return NULL;
}

void control_command_log(struct control *c, const struct control_request *req,
				const struct control_error *err, bool ok)
{
	const char *name = control_request_cmd_name(req->cmd);
	unsigned long held;

	char detail[CONTROL_MSG_MAX] = "";
	size_t i, used;

	if (ok) {
		if (req->cmd == CONTROL_CMD_STATUS) {
			return;
		}
		if (req->cmd == CONTROL_CMD_SESSION_START) {
			snprintf(detail, sizeof(detail), " patient %s, session %s", req->patient_id,
				 req->session_id);
		}
		for (i = 0; i < req->n_params; i++) {
			used = strlen(detail);
			snprintf(detail + used, sizeof(detail) - used, " stim.%s=%s",
				 req->params[i].key, req->params[i].value);
		}
		control_request_printable(detail);
		log_info("control: %s: done%s", name, detail);
		return;
	}
	if (!name || !strcmp(err->code, "bad_request") || !strcmp(err->code, "too_large")) {
		/* a client sending garbage in a loop must not flood the log */
		if (control_log_ok(&c->log_bad, &held)) {
			log_warn("control: request refused (%s): %s%s", err->code, err->message,
				 held ? " (and similar ones held back)" : "");
		}
		return;
	}
	log_info("control: %s: refused (%s): %s", name, err->code, err->message);
}

/* The reply: @result (taken over), or else @err; a JSON string to free(). */
char *control_command_reply(enum control_cmd cmd, json_t *result, const struct control_error *err)
{
	const char *name = control_request_cmd_name(cmd);
	json_t *reply, *e;
	char *out;

	if (result) {
		reply = json_pack("{s:b, s:s, s:o}", "ok", 1, "cmd", name, "result", result);
	} else {
		e = json_pack("{s:s, s:s}", "code", err->code, "message", err->message);
		if (e && err->key[0]) {
			json_object_set_new(e, "key", json_string(err->key));
		}
		if (e && err->rule[0]) {
			json_object_set_new(e, "rule", json_string(err->rule));
		}
		reply = json_pack("{s:b, s:o, s:o}", "ok", 0, "cmd",
				  name ? json_string(name) : json_null(), "error", e);
	}
	out = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(reply);
	return out;
}

/* The reply to one request body, as a JSON string to free(). */
char *control_command_execute(struct control *c, const char *buf, size_t len)
{
	struct control_request req;
	struct control_error err;
	json_t *result = NULL;

	if (control_request_parse(buf, len, &req, &err) == 0) {
		result = control_command_run(c, &req, &err);
	}
	control_command_log(c, &req, &err, result != NULL);
	return control_command_reply(req.cmd, result, &err);
}

/*
 * SIGHUP: the protocol keys of the reloaded file that differ from those in
 * force go through exactly the path of a "set" command (the same checks
 * against the safety caps), so a reload can do nothing a client could not.
 */
void control_command_reload(struct control *c, const struct rpmsd_config *next)
{
	char now[CONTROL_VALUE_MAX], want[CONTROL_VALUE_MAX], keys[CONTROL_MSG_MAX] = "";
	struct control_request req = { .cmd = CONTROL_CMD_SET };
	struct control_error err = { 0 };
	const char *key;
	json_t *res;
	size_t i;

	for (i = 0; (key = config_key_nth("stim", CONFIG_KEY_LIVE, i)) && req.n_params < CONTROL_SET_MAX;
	     i++) {
		config_value_text(c->cfg, "stim", key, now, sizeof(now));
		config_value_text(next, "stim", key, want, sizeof(want));
		if (!strcmp(now, want)) {
			continue;
		}
		snprintf(req.params[req.n_params].key, sizeof(req.params[0].key), "%s", key);
		snprintf(req.params[req.n_params].value, sizeof(req.params[0].value), "%s", want);
		req.n_params++;
		snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%sstim.%s=%s",
			 req.n_params > 1 ? ", " : "", key, want);
	}
	if (!req.n_params) {
		log_info("SIGHUP: the protocol is unchanged");
		return;
	}
	res = control_command_set(c, &req, "reload", &err);
	if (!res) {
		log_err("SIGHUP: protocol NOT changed (%s): %s", err.code, err.message);
		return;
	}
	log_info("SIGHUP: protocol changed: %s", keys);
	json_decref(res);
}
