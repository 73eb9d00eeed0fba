/* SPDX-License-Identifier: MIT */
/*
 * The control socket's view of the daemon: the "status" reply, and the
 * heartbeat's fields that control_status fills on the main thread. Reads
 * only what the other threads publish for it (stim_*, acquire_*, sclock,
 * the publisher's last fault) and the session ids under c->lock.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acquire.h"
#include "config.h"
#include "control.h"
#include "control_private.h"
#include "course.h"
#include "fresh.h"
#include "prescription.h"
#include "publish.h"
#include "sclock.h"
#include "stim.h"
#include "zap.h"

#define CONTROL_NS_PER_MS 1000000.0
#define CONTROL_NS_PER_S 1e9

static unsigned control_status_popcount(unsigned v)
{
	unsigned n = 0;

	for (; v; v &= v - 1) {
		n++;
	}
	return n;
}

void control_status(struct control *c, struct publish_status *st)
{
	int64_t now = sclock_now(c->clock), fresh = fresh_last(stim_fresh(c->stim)), at;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&c->lock);
	memcpy(st->protocol, c->protocol, sizeof(st->protocol));
	st->in_session = c->in_session;
	memcpy(st->patient_id, c->patient_id, sizeof(st->patient_id));
	memcpy(st->session_id, c->session_id, sizeof(st->session_id));
	pthread_mutex_unlock(&c->lock);
	st->pulses_session = stim_session_pulses(c->stim);
	st->pulses_today = stim_day_pulses(c->stim);
	st->coil_temperature_c = stim_coil_temperature(c->stim, &at);
	st->coil_temperature_age_s = at == INT64_MIN ? NAN
				     : now > at ? (double)(now - at) / CONTROL_NS_PER_S : 0.0;
	st->channels = acquire_channels(c->acq);
	st->calibrated = control_status_popcount(acquire_calibrated(c->acq));
	st->block_age_ms = fresh == INT64_MIN ? NAN
			   : now > fresh ? (double)(now - fresh) / CONTROL_NS_PER_MS : 0.0;
	if (acquire_parked(c->acq)) {
		st->acquisition = "reopening";
	} else if (fresh == INT64_MIN) {
		st->acquisition = "waiting";
	} else if (st->block_age_ms > c->acq_timeout_ms) {
		st->acquisition = "stale";
	} else {
		st->acquisition = "ok";
	}
}

/* A number to the microunit, or null when it is not finite (JSON has no NaN). */
static json_t *control_status_num(double v)
{
	return isfinite(v) ? json_real(round(v * 1e6) / 1e6) : json_null();
}

/* A key's value as JSON: an integer, a number or a string, as it reads. */
static json_t *control_status_value(const struct rpmsd_config *cfg, const char *section,
				    const char *key)
{
	char text[CONFIG_PATH_MAX], *end;
	long long i;
	double d;

	if (config_value_text(cfg, section, key, text, sizeof(text)) < 0) {
		return json_null();
	}
	errno = 0;
	i = strtoll(text, &end, 10);
	if (text[0] && !*end && !errno) {
		return json_integer(i);
	}
	d = strtod(text, &end);
	if (text[0] && !*end && isfinite(d)) {
		return json_real(d);
	}
	return json_string(text);
}

json_t *control_status_protocol(const struct rpmsd_config *cfg)
{
	json_t *o = json_object();
	const char *key;
	size_t i;

	json_object_set_new(o, "mode", control_status_value(cfg, "stim", "mode"));
	for (i = 0; (key = config_key_nth("stim", CONFIG_KEY_LIVE, i)); i++) {
		json_object_set_new(o, key, control_status_value(cfg, "stim", key));
	}
	json_object_set_new(o, "open_loop_pulses",
			    control_status_value(cfg, "stim", "open_loop_pulses"));
	return o;
}

json_t *control_status_ids(const char *patient, const char *session)
{
	return json_pack("{s:s, s:s}", "patient_id", patient, "session_id", session);
}

/*
 * The running course session as status shows it (control thread, which
 * owns c->course): its course, database session, cap and intensity rule.
 * Never its arm: the stream and the recording carry only the arm code.
 */
static json_t *control_status_course(struct control *c)
{
	const struct prescription *rx = course_rx(c->course);
	char rule[96];

	if (!course_active(c->course) || !rx) {
		return json_null();
	}
	json_t *o;

	/* 0 while the session waits for its threshold: "MT not measured yet" */
	course_intensity_text(rx, c->course_mt_pct, rule, sizeof(rule));
	o = json_pack("{s:s, s:I, s:I, s:s, s:b}", "course_id", rx->course.id,
		      "db_session", (json_int_t)course_session_id(c->course), "pulses_cap",
		      (json_int_t)c->course_cap, "intensity_rule", rule, "motor_threshold_pending",
		      c->course_mt_pending);
	if (o && c->course_mt_pending && c->course_mt_refused[0]) {
		json_object_set_new(o, "motor_threshold_refused", json_string(c->course_mt_refused));
	}
	return o;
}

json_t *control_status_json(struct control *c)
{
	struct publish_status st;
	struct publish_fault f;
	const char *blocked = stim_arm_blocked(c->stim);
	json_t *o = json_object(), *acq, *lim, *ctl;
	uint64_t clients, handshakes;
	const char *key;
	size_t i;

	control_status(c, &st);
	publish_last_fault(c->pub, &f);
	json_object_set_new(o, "armed", json_boolean(stim_armed(c->stim)));
	json_object_set_new(o, "arm_blocked", blocked ? json_string(blocked) : json_null());
	json_object_set_new(o, "session", st.in_session ? control_status_ids(st.patient_id,
									     st.session_id)
							: json_null());
	json_object_set_new(o, "course", control_status_course(c));
	json_object_set_new(o, "protocol", control_status_protocol(c->cfg));
	json_object_set_new(o, "pulses", json_integer((json_int_t)stim_pulse_count(c->stim)));
	json_object_set_new(o, "pulses_session", json_integer((json_int_t)st.pulses_session));
	json_object_set_new(o, "pulses_today", json_integer((json_int_t)st.pulses_today));
	json_object_set_new(o, "coil_temperature_c", control_status_num(st.coil_temperature_c));
	json_object_set_new(o, "coil_temperature_age_s",
			    control_status_num(st.coil_temperature_age_s));
	acq = json_object();
	json_object_set_new(acq, "state", json_string(st.acquisition));
	json_object_set_new(acq, "block_age_ms", control_status_num(st.block_age_ms));
	json_object_set_new(acq, "samples", json_integer((json_int_t)acquire_samples(c->acq)));
	json_object_set_new(acq, "channels", json_integer(st.channels));
	json_object_set_new(acq, "calibrated", json_integer(st.calibrated));
	json_object_set_new(o, "acquisition", acq);
	lim = json_object();
	/* what "set" is held to: the keys the table marks as limits */
	for (i = 0; (key = config_key_nth("safety", CONFIG_KEY_LIMIT, i)); i++) {
		json_object_set_new(lim, key, control_status_value(c->cfg, "safety", key));
	}
	json_object_set_new(o, "limits", lim);
	json_object_set_new(o, "last_fault",
			    f.valid ? json_pack("{s:s, s:i, s:s, s:I, s:I}", "state", f.state,
						"code", f.code, "reason", f.reason,
						"seq", (json_int_t)f.seq, "t_wall_ns",
						(json_int_t)f.wall_ns)
				    : json_null());
	zap_refusals(c->guard, &clients, &handshakes);
	ctl = json_object();
	json_object_set_new(ctl, "endpoint", json_string(c->endpoint));
	json_object_set_new(ctl, "curve", json_boolean(c->curve));
	json_object_set_new(ctl, "server_public_key",
			    c->curve ? json_string(zap_server_key(c->guard)) : json_null());
	json_object_set_new(ctl, "clients_refused", json_integer((json_int_t)clients));
	json_object_set_new(ctl, "handshakes_refused", json_integer((json_int_t)handshakes));
	json_object_set_new(o, "control", ctl);
	return o;
}
