// SPDX-License-Identifier: MIT
/*
 * The course database's front end: argument checks, the limits' wording,
 * dispatch to the backend (course_db_sqlite.c, course_db_pg.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "course_db.h"
#include "course_db_private.h"

/* No pulse count of a session or a day is larger (dose.h's DOSE_PULSES_MAX). */
#define COURSE_DB_PULSES_MAX 10000000
/* Free text (prescription, notes, reasons) stays below this. */
#define COURSE_DB_TEXT_MAX 65536

int course_db_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Pseudonymous ids: a character set that cannot hold a name with spaces or an e-mail. */
int course_db_id_check(const char *what, const char *id, char *err, size_t errlen)
{
	size_t n;

	if (!id || !*id) {
		return course_db_fail(-EINVAL, err, errlen, "course database: %s id is empty",
				      what);
	}
	n = strlen(id);
	if (n > COURSE_DB_ID_MAX) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: %s id is %zu characters long (at most %d)",
				      what, n, COURSE_DB_ID_MAX);
	}
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			return course_db_fail(-EINVAL, err, errlen,
					      "course database: %s id '%s': character %zu is not "
					      "allowed (allowed: A-Z a-z 0-9 . _ -; pseudonyms only)",
					      what, id, i + 1);
		}
	}
	return 0;
}

int course_db_text_check(const char *what, const char *s, bool may_be_null,
				char *err, size_t errlen)
{
	if (!s) {
		return may_be_null ? 0 : course_db_fail(-EINVAL, err, errlen,
							"course database: %s is missing", what);
	}
	if (strlen(s) >= COURSE_DB_TEXT_MAX) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: %s is longer than %d bytes", what,
				      COURSE_DB_TEXT_MAX - 1);
	}
	return 0;
}

static int course_db_pulses_check(int64_t n, char *err, size_t errlen)
{
	if (n < 0 || n > COURSE_DB_PULSES_MAX) {
		return course_db_fail(-ERANGE, err, errlen,
				      "course database: %" PRId64 " pulses delivered is out of "
				      "range (allowed: 0..%d)", n, COURSE_DB_PULSES_MAX);
	}
	return 0;
}

static int course_db_session_check(int64_t session, char *err, size_t errlen)
{
	if (session <= 0) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: session id %" PRId64 " is not valid",
				      session);
	}
	return 0;
}

int course_db_open(const struct course_db_config *cfg, struct course_db **out,
		   char *err, size_t errlen)
{
	struct course_db *db;
	int rc;

	*out = NULL;
	if (!cfg) {
		return course_db_fail(-EINVAL, err, errlen, "course database: no configuration");
	}
	if (cfg->schema_target < 0 || cfg->schema_target > COURSE_DB_SCHEMA_VERSION) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: schema target %d is out of range "
				      "(allowed: 0..%d)", cfg->schema_target,
				      COURSE_DB_SCHEMA_VERSION);
	}
	db = calloc(1, sizeof(*db));
	if (!db) {
		return course_db_fail(-ENOMEM, err, errlen, "course database: out of memory");
	}
	switch (cfg->backend) {
	case COURSE_DB_SQLITE:
		db->ops = &course_db_sqlite_ops;
		break;
	case COURSE_DB_POSTGRESQL:
		db->ops = &course_db_pg_ops;
		break;
	default:
		rc = course_db_fail(-EINVAL, err, errlen,
				    "course database: backend %d unknown (allowed: sqlite, "
				    "postgresql)", (int)cfg->backend);
		goto err_free;
	}
	rc = db->ops->open(db, cfg, err, errlen);
	if (rc < 0) {
		goto err_free;
	}
	*out = db;
	return 0;

err_free:
	free(db);
	return rc;
}

void course_db_close(struct course_db *db)
{
	if (!db) {
		return;
	}
	db->ops->close(db);
	free(db);
}

int course_db_schema_version(struct course_db *db, char *err, size_t errlen)
{
	return db->ops->schema_version(db, err, errlen);
}

int course_db_patient_add(struct course_db *db, const char *patient, char *err, size_t errlen)
{
	int rc = course_db_id_check("patient", patient, err, errlen);

	return rc < 0 ? rc : db->ops->patient_add(db, patient, err, errlen);
}

int course_db_prescription_put(struct course_db *db, const struct course_db_prescription *rx,
			       char *err, size_t errlen)
{
	int rc;

	rc = course_db_id_check("patient", rx->patient, err, errlen);
	if (rc == 0) {
		rc = course_db_id_check("course", rx->course, err, errlen);
	}
	if (rc == 0) {
		rc = course_db_text_check("prescription text", rx->text, false, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	if (rx->sessions_per_course <= 0 || rx->max_sessions_per_day <= 0 ||
	    !isfinite(rx->min_hours_between) || rx->min_hours_between < 0 ||
	    rx->min_hours_between > 24.0 * 366 || rx->daily_pulse_cap <= 0 ||
	    rx->daily_pulse_cap > COURSE_DB_PULSES_MAX) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: prescription %s/%s: limits out of range "
				      "(sessions_per_course %d > 0, max_sessions_per_day %d > 0, "
				      "min_hours_between %g in 0..8784, daily_pulse_cap %" PRId64
				      " in 1..%d)", rx->patient, rx->course,
				      rx->sessions_per_course, rx->max_sessions_per_day,
				      rx->min_hours_between, rx->daily_pulse_cap,
				      COURSE_DB_PULSES_MAX);
	}
	return db->ops->prescription_put(db, rx, err, errlen);
}

int course_db_session_begin(struct course_db *db, const char *patient, const char *course,
			    const char *rig, int64_t now, int64_t day_start, int64_t day_end,
			    int64_t *session_id, char *err, size_t errlen)
{
	int rc;

	*session_id = 0;
	rc = course_db_id_check("patient", patient, err, errlen);
	if (rc == 0) {
		rc = course_db_id_check("course", course, err, errlen);
	}
	if (rc == 0) {
		rc = course_db_id_check("rig", rig, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	if (now < 0 || day_start < 0 || day_end <= day_start || now < day_start ||
	    now >= day_end) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: session start %" PRId64 " is not within "
				      "its day [%" PRId64 ", %" PRId64 ")", now, day_start,
				      day_end);
	}
	return db->ops->session_begin(db, patient, course, rig, now, day_start, day_end,
				      session_id, err, errlen);
}

int course_db_session_set(struct course_db *db, int64_t session,
			  const struct course_db_session_detail *d, char *err, size_t errlen)
{
	int rc = course_db_session_check(session, err, errlen);

	if (rc == 0) {
		rc = course_db_text_check("target", d->target, true, err, errlen);
	}
	if (rc == 0 && d->arm_code) {
		rc = course_db_id_check("arm code", d->arm_code, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	if (!isfinite(d->intensity_pct) || d->intensity_pct > 1000 ||
	    !isfinite(d->motor_threshold_pct) || d->motor_threshold_pct > 100) {
		return course_db_fail(-ERANGE, err, errlen,
				      "course database: session %" PRId64 ": intensity %g %% or "
				      "motor threshold %g %% out of range", session,
				      d->intensity_pct, d->motor_threshold_pct);
	}
	return db->ops->session_set(db, session, d, err, errlen);
}

int course_db_pulses(struct course_db *db, int64_t session, int64_t delivered,
		     char *err, size_t errlen)
{
	int rc = course_db_session_check(session, err, errlen);

	if (rc == 0) {
		rc = course_db_pulses_check(delivered, err, errlen);
	}
	return rc < 0 ? rc : db->ops->pulses(db, session, delivered, err, errlen);
}

int course_db_session_end(struct course_db *db, int64_t session, int64_t now,
			  int64_t delivered, const char *reason, char *err, size_t errlen)
{
	int rc = course_db_session_check(session, err, errlen);

	if (rc == 0) {
		rc = course_db_pulses_check(delivered, err, errlen);
	}
	if (rc == 0) {
		rc = course_db_text_check("stop reason", reason, true, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	return db->ops->session_end(db, session, now, delivered, reason ? reason : "completed",
				    err, errlen);
}

int course_db_note_add(struct course_db *db, int64_t session, enum course_db_note_kind kind,
		       int64_t now, const char *what, const char *text, char *err, size_t errlen)
{
	int rc = course_db_session_check(session, err, errlen);

	if (rc == 0 && kind != COURSE_DB_DEVIATION && kind != COURSE_DB_ADVERSE) {
		rc = course_db_fail(-EINVAL, err, errlen, "course database: note kind %d unknown",
				    (int)kind);
	}
	if (rc == 0) {
		rc = course_db_text_check("note", text, false, err, errlen);
	}
	if (rc == 0) {
		rc = course_db_text_check("deviation", what, kind != COURSE_DB_DEVIATION,
					  err, errlen);
	}
	return rc < 0 ? rc : db->ops->note_add(db, session, kind, now, what ? what : "", text,
					       err, errlen);
}

int course_db_session_recording(struct course_db *db, int64_t session, const char *edf_file,
				const char *sha256_hex, char *err, size_t errlen)
{
	int rc = course_db_session_check(session, err, errlen);

	if (rc == 0) {
		rc = course_db_text_check("EDF+ file name", edf_file, false, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	if (!sha256_hex || strlen(sha256_hex) != 64 ||
	    strspn(sha256_hex, "0123456789abcdef") != 64) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: session %" PRId64 ": SHA-256 of %s is "
				      "not 64 lower-case hex digits", session, edf_file);
	}
	return db->ops->recording(db, session, edf_file, sha256_hex, err, errlen);
}

int course_db_daily_pulses(struct course_db *db, const char *patient, int64_t day_start,
			   int64_t day_end, int64_t *pulses, char *err, size_t errlen)
{
	int rc = course_db_id_check("patient", patient, err, errlen);

	*pulses = 0;
	if (rc < 0) {
		return rc;
	}
	if (day_end <= day_start) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: day [%" PRId64 ", %" PRId64 ") is empty",
				      day_start, day_end);
	}
	return db->ops->daily_pulses(db, patient, day_start, day_end, pulses, err, errlen);
}

int course_db_course_dose(struct course_db *db, const char *patient, const char *course,
			  struct course_db_dose *dose, char *err, size_t errlen)
{
	int rc = course_db_id_check("patient", patient, err, errlen);

	memset(dose, 0, sizeof(*dose));
	if (rc == 0) {
		rc = course_db_id_check("course", course, err, errlen);
	}
	return rc < 0 ? rc : db->ops->course_dose(db, patient, course, dose, err, errlen);
}

int course_db_sync(struct course_db *db, char *err, size_t errlen)
{
	return db->ops->sync(db, err, errlen);
}

int64_t course_db_pending(struct course_db *db, char *err, size_t errlen)
{
	return db->ops->pending(db, err, errlen);
}

int course_db_check(struct course_db *db, char *err, size_t errlen)
{
	return db->ops->check(db, err, errlen);
}

int course_db_limits_check(const struct course_db_prescription *rx,
			   const struct course_db_limits *l, int64_t now,
			   int64_t day_start, int64_t day_end, char *err, size_t errlen)
{
	if (l->running_id > 0) {
		return course_db_fail(-EPERM, err, errlen,
				      "patient %s: session %" PRId64 " on rig %s is still running "
				      "(end it first)", rx->patient, l->running_id,
				      l->running_rig ? l->running_rig : "?");
	}
	if (l->course_sessions >= rx->sessions_per_course) {
		return course_db_fail(-EPERM, err, errlen,
				      "patient %s course %s: sessions_per_course: %" PRId64
				      " of %d sessions done, the course is complete",
				      rx->patient, rx->course, l->course_sessions,
				      rx->sessions_per_course);
	}
	if (l->day_sessions >= rx->max_sessions_per_day) {
		return course_db_fail(-EPERM, err, errlen,
				      "patient %s: max_sessions_per_day: %" PRId64 " session(s) "
				      "already began this day [%" PRId64 ", %" PRId64 "), at "
				      "most %d", rx->patient, l->day_sessions, day_start, day_end,
				      rx->max_sessions_per_day);
	}
	if (l->last_end >= 0 && (double)(now - l->last_end) < rx->min_hours_between * 3600.0) {
		return course_db_fail(-EPERM, err, errlen,
				      "patient %s: min_hours_between: the previous session ended "
				      "%.2f h ago (at %" PRId64 "), at least %g h required",
				      rx->patient, (double)(now - l->last_end) / 3600.0,
				      l->last_end, rx->min_hours_between);
	}
	if (l->day_pulses >= rx->daily_pulse_cap) {
		return course_db_fail(-EPERM, err, errlen,
				      "patient %s: daily_pulse_cap: %" PRId64 " pulses delivered "
				      "this day [%" PRId64 ", %" PRId64 "), cap %" PRId64,
				      rx->patient, l->day_pulses, day_start, day_end,
				      rx->daily_pulse_cap);
	}
	return 0;
}

/* One query of the front end through the backend (va_list to the op). */
static int course_db_q(struct course_db *db, const char *sql, int64_t *row, int ncol,
		       char *err, size_t errlen, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = db->ops->q(db, sql, row, ncol, err, errlen, types, ap);
	va_end(ap);
	return rc;
}

/*
 * The SQL is the same on both backends: PostgreSQL's $n placeholders are
 * named parameters to SQLite, numbered in order of first appearance, which
 * is $1, $2, $3 in every query here.
 */
int course_db_limits_read(struct course_db *db, const struct course_db_prescription *rx,
			  int64_t now, int64_t day_start, int64_t day_end,
			  char *err, size_t errlen)
{
	struct course_db_limits l = { 0 };
	char running_rig[COURSE_DB_ID_MAX + 1] = "?";
	int64_t v[2] = { 0 };
	int rc;

	rc = course_db_q(db, "SELECT id FROM sessions WHERE patient = $1 AND stopped IS"
			 " NULL ORDER BY id LIMIT 1", v, 1, err, errlen, "s", rx->patient);
	if (rc < 0) {
		return rc;
	}
	if (v[0] > 0) {
		l.running_id = v[0];
		db->ops->session_rig(db, v[0], running_rig, sizeof(running_rig));
		l.running_rig = running_rig;
	}
	rc = course_db_q(db, "SELECT COUNT(*) FROM sessions WHERE patient = $1 AND"
			 " course = $2", v, 1, err, errlen, "ss", rx->patient, rx->course);
	if (rc < 0) {
		return rc;
	}
	l.course_sessions = v[0];
	rc = course_db_q(db, "SELECT COUNT(*), COALESCE(SUM(pulses), 0) FROM sessions"
			 " WHERE patient = $1 AND started >= $2 AND started < $3", v, 2,
			 err, errlen, "sii", rx->patient, day_start, day_end);
	if (rc < 0) {
		return rc;
	}
	l.day_sessions = v[0];
	l.day_pulses = v[1];
	rc = course_db_q(db, "SELECT MAX(COALESCE(stopped, started)) FROM sessions"
			 " WHERE patient = $1", v, 1, err, errlen, "s", rx->patient);
	if (rc < 0) {
		return rc;
	}
	l.last_end = v[0];
	return course_db_limits_check(rx, &l, now, day_start, day_end, err, errlen);
}

int course_db_prescription_store(struct course_db *db, const struct course_db_prescription *rx,
				 char *err, size_t errlen)
{
	return course_db_q(db, "INSERT INTO prescriptions VALUES ($1, $2, $3, $4, $5, $6, $7)"
			   " ON CONFLICT (patient, course) DO UPDATE SET text = excluded.text,"
			   " sessions_per_course = excluded.sessions_per_course,"
			   " max_sessions_per_day = excluded.max_sessions_per_day,"
			   " min_hours_between = excluded.min_hours_between,"
			   " daily_pulse_cap = excluded.daily_pulse_cap", NULL, 0, err, errlen,
			   "sssiidi", rx->patient, rx->course, rx->text,
			   (int64_t)rx->sessions_per_course, (int64_t)rx->max_sessions_per_day,
			   rx->min_hours_between, rx->daily_pulse_cap);
}

/* The score's INSERT through the backend (va_list to the op). */
static int course_db_insert(struct course_db *db, const char *sql, int64_t *id, char *err,
			    size_t errlen, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = db->ops->insert(db, sql, id, err, errlen, types, ap);
	va_end(ap);
	return rc;
}

int course_db_score_insert(struct course_db *db, const struct course_db_score *sc,
			   const char *course, int64_t *score_id, char *err, size_t errlen)
{
	bool mas = sc->instrument == COURSE_DB_MODIFIED_ASHWORTH;
	bool tardieu = sc->instrument == COURSE_DB_MODIFIED_TARDIEU;
	bool fm = sc->instrument == COURSE_DB_FUGL_MEYER_UE;

	return course_db_insert(db, "INSERT INTO scores (patient, course, session, phase,"
				" instrument, muscle, mas_grade, r1_deg, r2_deg, fugl_meyer,"
				" author, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
				" $11, $12)", score_id, err, errlen, "ssIssssDDIsi",
				sc->patient, course, sc->session > 0 ? sc->session : -1,
				course_db_phase_name(sc->phase),
				course_db_instrument_name(sc->instrument),
				fm ? NULL : sc->muscle, mas ? sc->mas_grade : NULL,
				tardieu ? sc->r1_deg : NAN, tardieu ? sc->r2_deg : NAN,
				fm ? (int64_t)sc->fugl_meyer : -1, sc->author, sc->at);
}

int course_db_schema_newer(const char *where, int found, char *err, size_t errlen)
{
	return course_db_fail(-EPROTONOSUPPORT, err, errlen,
			      "course database %s: schema version %d is newer than this rpmsd "
			      "knows (%d): refused, nothing changed; upgrade rpmsd or use "
			      "another database", where, found, COURSE_DB_SCHEMA_VERSION);
}
