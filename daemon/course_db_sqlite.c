// SPDX-License-Identifier: MIT
/*
 * The course database on SQLite: one file on the rig, WAL, synchronous=FULL
 * (a committed session start or pulse count survives a power cut), a busy
 * timeout so that two handles wait for each other rather than fail.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "course_db.h"
#include "course_db_private.h"

/* The schema, one step per version, applied in order in one transaction. */
static const char *const course_db_sqlite_steps[COURSE_DB_SCHEMA_VERSION] = {
	/* 1: patients, prescriptions, sessions */
	"CREATE TABLE patients (id TEXT PRIMARY KEY, created INTEGER NOT NULL);"
	"CREATE TABLE prescriptions (patient TEXT NOT NULL REFERENCES patients(id),"
	" course TEXT NOT NULL, text TEXT NOT NULL,"
	" sessions_per_course INTEGER NOT NULL CHECK (sessions_per_course > 0),"
	" max_sessions_per_day INTEGER NOT NULL CHECK (max_sessions_per_day > 0),"
	" min_hours_between REAL NOT NULL CHECK (min_hours_between >= 0),"
	" daily_pulse_cap INTEGER NOT NULL CHECK (daily_pulse_cap > 0),"
	" PRIMARY KEY (patient, course));"
	"CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" patient TEXT NOT NULL, course TEXT NOT NULL, rig TEXT NOT NULL,"
	" started INTEGER NOT NULL, stopped INTEGER, stop_reason TEXT,"
	" pulses INTEGER NOT NULL DEFAULT 0 CHECK (pulses >= 0),"
	" FOREIGN KEY (patient, course) REFERENCES prescriptions(patient, course));"
	"CREATE INDEX sessions_patient_started ON sessions(patient, started);",
	/* 2: what a session learns, its notes and recording, the course's dose */
	"ALTER TABLE sessions ADD COLUMN intensity_pct REAL;"
	"ALTER TABLE sessions ADD COLUMN motor_threshold_pct REAL;"
	"ALTER TABLE sessions ADD COLUMN target TEXT;"
	"ALTER TABLE sessions ADD COLUMN arm_code TEXT;"
	"ALTER TABLE sessions ADD COLUMN edf_file TEXT;"
	"ALTER TABLE sessions ADD COLUMN edf_sha256 TEXT;"
	"CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" session INTEGER NOT NULL REFERENCES sessions(id),"
	" kind TEXT NOT NULL CHECK (kind IN ('deviation', 'adverse')),"
	" at INTEGER NOT NULL, what TEXT NOT NULL, text TEXT NOT NULL,"
	" origin TEXT, origin_seq INTEGER, UNIQUE (origin, origin_seq));"
	"CREATE VIEW course_dose AS SELECT patient, course, COUNT(*) AS sessions,"
	" COALESCE(SUM(pulses), 0) AS pulses FROM sessions GROUP BY patient, course;",
	/* 3: outcome assessments (a stretch of the recording each) and clinical scores */
	"CREATE TABLE assessments (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" session INTEGER NOT NULL REFERENCES sessions(id),"
	" phase TEXT NOT NULL CHECK (phase IN ('pre', 'post')),"
	" kind TEXT NOT NULL CHECK (kind IN ('rest', 'stretch', 'cci', 'mvc')),"
	" at INTEGER NOT NULL, onset REAL NOT NULL CHECK (onset >= 0),"
	" duration REAL NOT NULL CHECK (duration > 0),"
	" origin TEXT, origin_seq INTEGER, UNIQUE (origin, origin_seq));"
	"CREATE TABLE assessment_results ("
	" assessment INTEGER NOT NULL REFERENCES assessments(id),"
	" channel TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,"
	" PRIMARY KEY (assessment, channel, name));"
	"CREATE TABLE scores (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" patient TEXT NOT NULL, course TEXT NOT NULL,"
	" session INTEGER REFERENCES sessions(id),"
	" phase TEXT NOT NULL CHECK (phase IN ('pre', 'post')),"
	" instrument TEXT NOT NULL CHECK (instrument IN ('modified_ashworth',"
	" 'modified_tardieu', 'fugl_meyer_ue')),"
	" muscle TEXT, mas_grade TEXT CHECK (mas_grade IN ('0', '1', '1+', '2', '3', '4')),"
	" r1_deg REAL CHECK (r1_deg BETWEEN -180 AND 180),"
	" r2_deg REAL CHECK (r2_deg BETWEEN -180 AND 180),"
	" fugl_meyer INTEGER CHECK (fugl_meyer BETWEEN 0 AND 66),"
	" author TEXT NOT NULL, at INTEGER NOT NULL,"
	" CHECK ((instrument = 'modified_ashworth' AND muscle IS NOT NULL AND"
	" mas_grade IS NOT NULL) OR (instrument = 'modified_tardieu' AND muscle IS NOT NULL"
	" AND r1_deg IS NOT NULL AND r2_deg IS NOT NULL) OR (instrument = 'fugl_meyer_ue'"
	" AND muscle IS NULL AND fugl_meyer IS NOT NULL)),"
	" FOREIGN KEY (patient, course) REFERENCES prescriptions(patient, course));"
	"CREATE INDEX scores_patient_course ON scores(patient, course);",
};

struct course_db_sqlite {
	sqlite3 *h;
	char *path;
};

static struct course_db_sqlite *course_db_sqlite_of(struct course_db *db)
{
	return db->priv;
}

/* The error of the last call on @s, with what was being done. */
static int course_db_sqlite_fail(struct course_db_sqlite *s, const char *what,
				 char *err, size_t errlen)
{
	int code = sqlite3_errcode(s->h);

	snprintf(err, errlen, "course database %s: %s: %s", s->path, what, sqlite3_errmsg(s->h));
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
		return -EBUSY;
	}
	if (code == SQLITE_NOMEM) {
		return -ENOMEM;
	}
	return -EIO;
}

static int course_db_sqlite_exec(struct course_db_sqlite *s, const char *sql, const char *what,
				 char *err, size_t errlen)
{
	if (sqlite3_exec(s->h, sql, NULL, NULL, NULL) != SQLITE_OK) {
		return course_db_sqlite_fail(s, what, err, errlen);
	}
	return 0;
}

static void course_db_sqlite_rollback(struct course_db_sqlite *s)
{
	sqlite3_exec(s->h, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * Run @sql with the arguments @types says ('s' text, NULL for NULL, 'i'
 * int64_t, 'd' double, 'I' int64_t with < 0 for NULL, 'D' double with NAN
 * for NULL) and read up to @ncol integer columns of
 * its first row into @row (NULL: -1). *@found says whether there was one.
 */
static int course_db_sqlite_vq(struct course_db_sqlite *s, const char *sql, int64_t *row,
			       int ncol, bool *found, char *err, size_t errlen,
			       const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int rc, i;

	if (found) {
		*found = false;
	}
	if (sqlite3_prepare_v2(s->h, sql, -1, &st, NULL) != SQLITE_OK) {
		return course_db_sqlite_fail(s, sql, err, errlen);
	}
	for (i = 0; types[i]; i++) {
		switch (types[i]) {
		case 's': {
			const char *v = va_arg(ap, const char *);

			rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT) :
			     sqlite3_bind_null(st, i + 1);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'd':
			rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
			break;
		case 'I': {
			int64_t v = va_arg(ap, int64_t);

			rc = v < 0 ? sqlite3_bind_null(st, i + 1) : sqlite3_bind_int64(st, i + 1, v);
			break;
		}
		case 'D': {
			double v = va_arg(ap, double);

			rc = isnan(v) ? sqlite3_bind_null(st, i + 1) :
			     sqlite3_bind_double(st, i + 1, v);
			break;
		}
		default:
			rc = SQLITE_MISUSE;
			break;
		}
		if (rc != SQLITE_OK) {
			break;
		}
	}
	if (types[i]) {
		rc = course_db_sqlite_fail(s, sql, err, errlen);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (found) {
			*found = true;
		}
		for (i = 0; i < ncol; i++) {
			row[i] = sqlite3_column_type(st, i) == SQLITE_NULL ?
				 -1 : sqlite3_column_int64(st, i);
		}
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		for (i = 0; i < ncol; i++) {
			row[i] = -1;
		}
		rc = 0;
	} else {
		rc = course_db_sqlite_fail(s, sql, err, errlen);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/* See course_db_sqlite_vq. */
static int course_db_sqlite_q(struct course_db_sqlite *s, const char *sql, int64_t *row,
			      int ncol, bool *found, char *err, size_t errlen,
			      const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = course_db_sqlite_vq(s, sql, row, ncol, found, err, errlen, types, ap);
	va_end(ap);
	return rc;
}

/*
 * The end of a transaction begun with BEGIN IMMEDIATE: run the INSERT @sql
 * (arguments as course_db_sqlite_q), commit (@what names it in @err) and
 * set *@id to the new row's id; on any failure roll back, *@id 0.
 */
static int course_db_sqlite_insert_commit(struct course_db_sqlite *s, int64_t *id,
					  const char *what, char *err, size_t errlen,
					  const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = course_db_sqlite_vq(s, sql, NULL, 0, NULL, err, errlen, types, ap);
	va_end(ap);
	if (rc == 0) {
		*id = sqlite3_last_insert_rowid(s->h);
		rc = course_db_sqlite_exec(s, "COMMIT", what, err, errlen);
	}
	if (rc < 0) {
		*id = 0;
		course_db_sqlite_rollback(s);
	}
	return rc;
}

static int course_db_sqlite_version(struct course_db_sqlite *s, char *err, size_t errlen)
{
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_sqlite_q(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version",
				v, 1, NULL, err, errlen, "");
	return rc < 0 ? rc : (int)v[0];
}

/* Bring the schema to @target in one transaction; a newer one is refused untouched. */
static int course_db_sqlite_migrate(struct course_db_sqlite *s, int target,
				    char *err, size_t errlen)
{
	int rc, v;

	rc = course_db_sqlite_exec(s, "BEGIN IMMEDIATE", "begin migration", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_sqlite_exec(s, "CREATE TABLE IF NOT EXISTS schema_version ("
				   "version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
				   "schema_version", err, errlen);
	if (rc < 0) {
		goto err_rollback;
	}
	v = course_db_sqlite_version(s, err, errlen);
	if (v < 0) {
		rc = v;
		goto err_rollback;
	}
	if (v > COURSE_DB_SCHEMA_VERSION) {
		rc = course_db_schema_newer(s->path, v, err, errlen);
		goto err_rollback;
	}
	for (; v < target; v++) {
		char what[64];

		snprintf(what, sizeof(what), "migration to schema version %d", v + 1);
		rc = course_db_sqlite_exec(s, course_db_sqlite_steps[v], what, err, errlen);
		if (rc == 0) {
			rc = course_db_sqlite_q(s, "INSERT INTO schema_version VALUES (?, "
						"strftime('%s', 'now'))", NULL, 0, NULL, err,
						errlen, "i", (int64_t)(v + 1));
		}
		if (rc < 0) {
			goto err_rollback;
		}
	}
	return course_db_sqlite_exec(s, "COMMIT", "commit migration", err, errlen);

err_rollback:
	course_db_sqlite_rollback(s);
	return rc;
}

/* COURSE_DB_CLIENT: this build's schema exactly, or a refusal naming what is there. */
static int course_db_sqlite_client_schema(struct course_db_sqlite *s, char *err, size_t errlen)
{
	bool found;
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_sqlite_q(s, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND"
				" name = 'schema_version'", v, 1, &found, err, errlen, "");
	if (rc < 0) {
		return rc;
	}
	rc = found ? course_db_sqlite_version(s, err, errlen) : 0;
	if (rc < 0) {
		return rc;
	}
	return rc == COURSE_DB_SCHEMA_VERSION ? 0 : course_db_schema_other(s->path, rc, err, errlen);
}

static int course_db_sqlite_open(struct course_db *db, const struct course_db_config *cfg,
				 char *err, size_t errlen)
{
	struct course_db_sqlite *s;
	char pragmas[160];
	int rc;

	if (!cfg->path || !*cfg->path) {
		snprintf(err, errlen, "course database: sqlite: no path (course_db.path)");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		goto err_nomem;
	}
	s->path = strdup(cfg->path);
	if (!s->path) {
		goto err_free;
	}
	if (cfg->mode == COURSE_DB_CLIENT && access(cfg->path, F_OK) != 0) {
		/* A client never creates one: a wrong path must not leave an empty database. */
		rc = -errno;
		snprintf(err, errlen, "course database %s: %s (a client never creates one: "
			 "check course_db.path)", cfg->path, strerror(errno));
		free(s->path);
		free(s);
		return rc;
	}
	rc = sqlite3_open_v2(cfg->path, &s->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
			     (cfg->mode == COURSE_DB_CLIENT ? 0 : SQLITE_OPEN_CREATE), NULL);
	if (rc != SQLITE_OK) {
		if (!s->h) {
			goto err_path;
		}
		rc = course_db_sqlite_fail(s, "open", err, errlen);
		goto err_close;
	}
	sqlite3_extended_result_codes(s->h, 0);
	/* The busy timeout first: the journal_mode switch itself may wait for a writer. */
	sqlite3_busy_timeout(s->h, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
	if (cfg->mode == COURSE_DB_CLIENT) {
		/* A client reads the schema as it is (the rig's daemon migrates). */
		rc = course_db_sqlite_exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
					   "pragmas", err, errlen);
		if (rc == 0) {
			rc = course_db_sqlite_client_schema(s, err, errlen);
		}
		if (rc < 0) {
			goto err_close;
		}
		db->priv = s;
		return 0;
	}
	snprintf(pragmas, sizeof(pragmas), "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		 " PRAGMA foreign_keys=ON;");
	rc = course_db_sqlite_exec(s, pragmas, "pragmas", err, errlen);
	if (rc < 0) {
		goto err_close;
	}
	rc = course_db_sqlite_migrate(s, cfg->schema_target ? cfg->schema_target :
				      COURSE_DB_SCHEMA_VERSION, err, errlen);
	if (rc < 0) {
		goto err_close;
	}
	db->priv = s;
	return 0;

err_close:
	sqlite3_close(s->h);
	free(s->path);
	free(s);
	return rc;
err_path:
	free(s->path);
err_free:
	free(s);
err_nomem:
	snprintf(err, errlen, "course database %s: out of memory", cfg->path);
	return -ENOMEM;
}

static void course_db_sqlite_close(struct course_db *db)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);

	sqlite3_close(s->h);
	free(s->path);
	free(s);
}

static int course_db_sqlite_schema_version(struct course_db *db, char *err, size_t errlen)
{
	return course_db_sqlite_version(course_db_sqlite_of(db), err, errlen);
}

static int course_db_sqlite_patient_add(struct course_db *db, const char *patient,
					char *err, size_t errlen)
{
	return course_db_sqlite_q(course_db_sqlite_of(db),
				  "INSERT OR IGNORE INTO patients VALUES (?, strftime('%s', 'now'))",
				  NULL, 0, NULL, err, errlen, "s", patient);
}

static int course_db_sqlite_prescription_put(struct course_db *db,
					     const struct course_db_prescription *rx,
					     char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	bool found;
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_sqlite_q(s, "SELECT 1 FROM patients WHERE id = ?", v, 1, &found,
				err, errlen, "s", rx->patient);
	if (rc == 0 && !found) {
		snprintf(err, errlen, "course database %s: patient %s unknown (add it first)",
			 s->path, rx->patient);
		return -ENOENT;
	}
	if (rc < 0) {
		return rc;
	}
	return course_db_prescription_store(db, rx, err, errlen);
}

/* The prescription's limits, or -ENOENT. */
static int course_db_sqlite_rx(struct course_db_sqlite *s, struct course_db_prescription *rx,
			       char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->h, "SELECT sessions_per_course, max_sessions_per_day,"
			       " min_hours_between, daily_pulse_cap FROM prescriptions"
			       " WHERE patient = ? AND course = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, rx->patient, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, rx->course, -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = course_db_sqlite_fail(s, "read prescription", err, errlen);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rx->sessions_per_course = sqlite3_column_int(st, 0);
		rx->max_sessions_per_day = sqlite3_column_int(st, 1);
		rx->min_hours_between = sqlite3_column_double(st, 2);
		rx->daily_pulse_cap = sqlite3_column_int64(st, 3);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "patient %s: no prescription for course %s", rx->patient,
			 rx->course);
		rc = -ENOENT;
	} else {
		rc = course_db_sqlite_fail(s, "read prescription", err, errlen);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

static int course_db_sqlite_q_op(struct course_db *db, const char *sql, int64_t *row,
				 int ncol, char *err, size_t errlen, const char *types,
				 va_list ap)
{
	return course_db_sqlite_vq(course_db_sqlite_of(db), sql, row, ncol, NULL, err, errlen,
				   types, ap);
}

static void course_db_sqlite_session_rig(struct course_db *db, int64_t session, char *rig,
					 size_t len)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(course_db_sqlite_of(db)->h, "SELECT rig FROM sessions WHERE"
			       " id = ?", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_int64(st, 1, session) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(rig, len, "%s", (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
}

static int course_db_sqlite_session_begin(struct course_db *db, const char *patient,
					  const char *course, const char *rig, int64_t now,
					  int64_t day_start, int64_t day_end,
					  int64_t *session_id, char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	struct course_db_prescription rx = { .patient = patient, .course = course };
	int rc;

	/* IMMEDIATE: the write lock before the first read, so no other handle checks between. */
	rc = course_db_sqlite_exec(s, "BEGIN IMMEDIATE", "begin session", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_sqlite_rx(s, &rx, err, errlen);
	if (rc < 0) {
		goto err_rollback;
	}
	rc = course_db_limits_read(db, &rx, now, day_start, day_end, err, errlen);
	if (rc < 0) {
		goto err_rollback;
	}
	return course_db_sqlite_insert_commit(s, session_id, "commit session start", err, errlen,
					      "INSERT INTO sessions (patient, course, rig,"
					      " started) VALUES (?, ?, ?, ?)", "sssi", patient,
					      course, rig, now);

err_rollback:
	*session_id = 0;
	course_db_sqlite_rollback(s);
	return rc;
}

/* Run an UPDATE of one session; -ENOENT when there is no such session. */
static int course_db_sqlite_session_exists(struct course_db_sqlite *s, int64_t session,
					   char *err, size_t errlen)
{
	bool found;
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_sqlite_q(s, "SELECT 1 FROM sessions WHERE id = ?", v, 1, &found, err,
				errlen, "i", session);
	if (rc == 0 && !found) {
		snprintf(err, errlen, "course database %s: session %" PRId64 " unknown", s->path,
			 session);
		return -ENOENT;
	}
	return rc;
}

static int course_db_sqlite_session_set(struct course_db *db, int64_t session,
					const struct course_db_session_detail *d,
					char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int rc = course_db_sqlite_session_exists(s, session, err, errlen);

	if (rc < 0) {
		return rc;
	}
	return course_db_sqlite_q(s, "UPDATE sessions SET"
				  " intensity_pct = CASE WHEN ?1 < 0 THEN intensity_pct ELSE ?1 END,"
				  " motor_threshold_pct = CASE WHEN ?2 < 0 THEN motor_threshold_pct"
				  " ELSE ?2 END, target = COALESCE(?3, target),"
				  " arm_code = COALESCE(?4, arm_code) WHERE id = ?5",
				  NULL, 0, NULL, err, errlen, "ddssi", d->intensity_pct,
				  d->motor_threshold_pct, d->target, d->arm_code, session);
}

static int course_db_sqlite_pulses(struct course_db *db, int64_t session, int64_t delivered,
				   char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int rc = course_db_sqlite_session_exists(s, session, err, errlen);

	/* max(): a lower count (a stale or reordered report) never lowers what is known */
	return rc < 0 ? rc : course_db_sqlite_q(s, "UPDATE sessions SET pulses = max(pulses, ?)"
						" WHERE id = ?", NULL, 0, NULL, err, errlen,
						"ii", delivered, session);
}

static int course_db_sqlite_session_end(struct course_db *db, int64_t session, int64_t now,
					int64_t delivered, const char *reason,
					char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int rc = course_db_sqlite_session_exists(s, session, err, errlen);

	return rc < 0 ? rc : course_db_sqlite_q(s, "UPDATE sessions SET pulses = max(pulses, ?),"
						" stopped = COALESCE(stopped, ?),"
						" stop_reason = COALESCE(stop_reason, ?)"
						" WHERE id = ?", NULL, 0, NULL, err, errlen,
						"iisi", delivered, now, reason, session);
}

static int course_db_sqlite_note_add(struct course_db *db, int64_t session,
				     enum course_db_note_kind kind, int64_t now, const char *what,
				     const char *text, char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int rc = course_db_sqlite_session_exists(s, session, err, errlen);

	return rc < 0 ? rc : course_db_sqlite_q(s, "INSERT INTO notes (session, kind, at, what,"
						" text) VALUES (?, ?, ?, ?, ?)", NULL, 0, NULL,
						err, errlen, "isiss", session,
						kind == COURSE_DB_DEVIATION ? "deviation" :
						"adverse", now, what, text);
}

static int course_db_sqlite_recording(struct course_db *db, int64_t session,
				      const char *edf_file, const char *sha256_hex,
				      char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int rc = course_db_sqlite_session_exists(s, session, err, errlen);

	return rc < 0 ? rc : course_db_sqlite_q(s, "UPDATE sessions SET edf_file = ?,"
						" edf_sha256 = ? WHERE id = ?", NULL, 0, NULL,
						err, errlen, "ssi", edf_file, sha256_hex,
						session);
}

static int course_db_sqlite_daily_pulses(struct course_db *db, const char *patient,
					 int64_t day_start, int64_t day_end, int64_t *pulses,
					 char *err, size_t errlen)
{
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_sqlite_q(course_db_sqlite_of(db), "SELECT COALESCE(SUM(pulses), 0) FROM"
				" sessions WHERE patient = ? AND started >= ? AND started < ?",
				v, 1, NULL, err, errlen, "sii", patient, day_start, day_end);
	*pulses = rc < 0 ? 0 : v[0];
	return rc;
}

static int course_db_sqlite_course_dose(struct course_db *db, const char *patient,
					const char *course, struct course_db_dose *dose,
					char *err, size_t errlen)
{
	int64_t v[2] = { 0 };
	int rc;

	rc = course_db_sqlite_q(course_db_sqlite_of(db), "SELECT COUNT(*), COALESCE(SUM(pulses),"
				" 0) FROM sessions WHERE patient = ? AND course = ?", v, 2, NULL,
				err, errlen, "ss", patient, course);
	if (rc == 0) {
		dose->sessions = v[0];
		dose->pulses = v[1];
	}
	return rc;
}

static int course_db_sqlite_sync(struct course_db *db, char *err, size_t errlen)
{
	(void)db;
	(void)err;
	(void)errlen;
	return 0;
}

static int64_t course_db_sqlite_pending(struct course_db *db, char *err, size_t errlen)
{
	(void)db;
	(void)err;
	(void)errlen;
	return 0;
}

static int course_db_sqlite_check(struct course_db *db, char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->h, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		return course_db_sqlite_fail(s, "integrity check", err, errlen);
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = course_db_sqlite_fail(s, "integrity check", err, errlen);
	} else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		snprintf(err, errlen, "course database %s: integrity check: %s", s->path,
			 (const char *)sqlite3_column_text(st, 0));
		rc = -EBADMSG;
	} else {
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Column @i of @st as text, NULL for NULL. */
static const char *course_db_sqlite_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Prepare @sql with @patient as ?1 and @course (NULL: every course) as ?2. */
static int course_db_sqlite_prep2(struct course_db_sqlite *s, const char *sql,
				  const char *patient, const char *course, sqlite3_stmt **st,
				  char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(s->h, sql, -1, st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(*st, 1, patient, -1, SQLITE_STATIC) != SQLITE_OK ||
	    (course ? sqlite3_bind_text(*st, 2, course, -1, SQLITE_STATIC) :
	     sqlite3_bind_null(*st, 2)) != SQLITE_OK) {
		return course_db_sqlite_fail(s, "read course report", err, errlen);
	}
	return 0;
}

/* Column @i of @st as a double, NAN for NULL. */
static double course_db_sqlite_real(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* One row of @st into @r. */
typedef int (*course_db_sqlite_row_fn)(struct course_db_report *r, sqlite3_stmt *st,
				       char *err, size_t errlen);

/*
 * Run the report query @sql (?1 the patient, ?2 @course or NULL for all)
 * and hand each row to @row, after the report's BEGIN; @what names the
 * read in an error.
 */
static int course_db_sqlite_report_each(struct course_db_sqlite *s, struct course_db_report *r,
					const char *course, const char *sql, const char *what,
					course_db_sqlite_row_fn row, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, step = SQLITE_DONE;

	rc = course_db_sqlite_prep2(s, sql, r->patient, course, &st, err, errlen);
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		rc = row(r, st, err, errlen);
	}
	if (rc == 0 && step != SQLITE_DONE) {
		rc = course_db_sqlite_fail(s, what, err, errlen);
	}
	sqlite3_finalize(st);
	return rc;
}

static int course_db_sqlite_row_course(struct course_db_report *r, sqlite3_stmt *st,
				       char *err, size_t errlen)
{
	struct course_db_report_course c = {
		.sessions_per_course = sqlite3_column_int(st, 1),
		.max_sessions_per_day = sqlite3_column_int(st, 2),
		.min_hours_between = sqlite3_column_double(st, 3),
		.daily_pulse_cap = sqlite3_column_int64(st, 4),
		.text = (char *)course_db_sqlite_text(st, 5),
	};

	snprintf(c.course, sizeof(c.course), "%s", course_db_sqlite_text(st, 0));
	return course_db_report_course_add(r, &c, err, errlen);
}

static int course_db_sqlite_row_session(struct course_db_report *r, sqlite3_stmt *st,
					char *err, size_t errlen)
{
	struct course_db_report_session x = {
		.id = sqlite3_column_int64(st, 0),
		.started = sqlite3_column_int64(st, 3),
		.stopped = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 :
			   sqlite3_column_int64(st, 4),
		.stop_reason = (char *)course_db_sqlite_text(st, 5),
		.pulses = sqlite3_column_int64(st, 6),
		.intensity_pct = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 :
				 sqlite3_column_double(st, 7),
		.motor_threshold_pct = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 :
				       sqlite3_column_double(st, 8),
		.target = (char *)course_db_sqlite_text(st, 9),
		.edf_file = (char *)course_db_sqlite_text(st, 11),
	};
	const char *code = course_db_sqlite_text(st, 10);
	const char *sha = course_db_sqlite_text(st, 12);

	snprintf(x.rig, sizeof(x.rig), "%s", course_db_sqlite_text(st, 2));
	snprintf(x.arm_code, sizeof(x.arm_code), "%s", code ? code : "");
	snprintf(x.edf_sha256, sizeof(x.edf_sha256), "%s", sha ? sha : "");
	return course_db_report_session_add(r, course_db_sqlite_text(st, 1), &x, err, errlen);
}

static int course_db_sqlite_row_note(struct course_db_report *r, sqlite3_stmt *st,
				     char *err, size_t errlen)
{
	struct course_db_report_note n = {
		.id = sqlite3_column_int64(st, 1),
		.kind = strcmp(course_db_sqlite_text(st, 2), "deviation") ?
			COURSE_DB_ADVERSE : COURSE_DB_DEVIATION,
		.at = sqlite3_column_int64(st, 3),
		.what = (char *)course_db_sqlite_text(st, 4),
		.text = (char *)course_db_sqlite_text(st, 5),
	};

	return course_db_report_note_add(r, sqlite3_column_int64(st, 0), &n, err, errlen);
}

static int course_db_sqlite_row_assessment(struct course_db_report *r, sqlite3_stmt *st,
					   char *err, size_t errlen)
{
	struct course_db_report_assessment a = {
		.id = sqlite3_column_int64(st, 1),
		.phase = course_db_phase_parse(course_db_sqlite_text(st, 2)),
		.kind = course_db_assess_kind_parse(course_db_sqlite_text(st, 3)),
		.at = sqlite3_column_int64(st, 4),
		.onset_s = sqlite3_column_double(st, 5),
		.duration_s = sqlite3_column_double(st, 6),
	};

	return course_db_report_assessment_add(r, sqlite3_column_int64(st, 0), &a, err, errlen);
}

static int course_db_sqlite_row_result(struct course_db_report *r, sqlite3_stmt *st,
				       char *err, size_t errlen)
{
	struct course_db_report_result x = { .value = sqlite3_column_double(st, 3) };

	snprintf(x.channel, sizeof(x.channel), "%s", course_db_sqlite_text(st, 1));
	snprintf(x.name, sizeof(x.name), "%s", course_db_sqlite_text(st, 2));
	return course_db_report_result_add(r, sqlite3_column_int64(st, 0), &x, err, errlen);
}

static int course_db_sqlite_row_score(struct course_db_report *r, sqlite3_stmt *st,
				      char *err, size_t errlen)
{
	struct course_db_report_score x = {
		.id = sqlite3_column_int64(st, 1),
		.session = sqlite3_column_type(st, 2) == SQLITE_NULL ? 0 :
			   sqlite3_column_int64(st, 2),
		.phase = course_db_phase_parse(course_db_sqlite_text(st, 3)),
		.instrument = course_db_instrument_parse(course_db_sqlite_text(st, 4)),
		.r1_deg = course_db_sqlite_real(st, 7),
		.r2_deg = course_db_sqlite_real(st, 8),
		.fugl_meyer = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 :
			      sqlite3_column_int(st, 9),
		.at = sqlite3_column_int64(st, 11),
	};
	const char *m = course_db_sqlite_text(st, 5), *g = course_db_sqlite_text(st, 6);

	snprintf(x.muscle, sizeof(x.muscle), "%s", m ? m : "");
	snprintf(x.mas_grade, sizeof(x.mas_grade), "%s", g ? g : "");
	snprintf(x.author, sizeof(x.author), "%s", course_db_sqlite_text(st, 10));
	return course_db_report_score_add(r, course_db_sqlite_text(st, 0), &x, err, errlen);
}

/*
 * The courses, sessions and notes, then (schema 3) the assessments with
 * their results and the scores of the report's sessions, read after the
 * report's BEGIN.
 */
static int course_db_sqlite_report_rows(struct course_db_sqlite *s, struct course_db_report *r,
					const char *course, char *err, size_t errlen)
{
	static const struct {
		const char *sql;
		const char *what;
		course_db_sqlite_row_fn row;
	} q[] = {
		{ "SELECT course, sessions_per_course, max_sessions_per_day,"
		  " min_hours_between, daily_pulse_cap, text FROM prescriptions"
		  " WHERE patient = ?1 AND (?2 IS NULL OR course = ?2)"
		  " ORDER BY course",
		  "read prescriptions", course_db_sqlite_row_course },
		{ "SELECT id, course, rig, started, stopped, stop_reason,"
		  " pulses, intensity_pct, motor_threshold_pct, target, arm_code,"
		  " edf_file, edf_sha256 FROM sessions WHERE patient = ?1 AND"
		  " (?2 IS NULL OR course = ?2) ORDER BY started, id",
		  "read sessions", course_db_sqlite_row_session },
		{ "SELECT n.session, n.id, n.kind, n.at, n.what, n.text"
		  " FROM notes n JOIN sessions s ON s.id = n.session"
		  " WHERE s.patient = ?1 AND (?2 IS NULL OR s.course = ?2)"
		  " ORDER BY n.session, n.at, n.id",
		  "read notes", course_db_sqlite_row_note },
		{ "SELECT a.session, a.id, a.phase, a.kind, a.at, a.onset,"
		  " a.duration FROM assessments a JOIN sessions s ON"
		  " s.id = a.session WHERE s.patient = ?1 AND (?2 IS NULL OR"
		  " s.course = ?2) ORDER BY a.session, a.onset, a.id",
		  "read assessments", course_db_sqlite_row_assessment },
		{ "SELECT x.assessment, x.channel, x.name, x.value FROM"
		  " assessment_results x JOIN assessments a ON"
		  " a.id = x.assessment JOIN sessions s ON s.id = a.session"
		  " WHERE s.patient = ?1 AND (?2 IS NULL OR s.course = ?2)"
		  " ORDER BY x.assessment, x.channel, x.name",
		  "read assessment results", course_db_sqlite_row_result },
		{ "SELECT course, id, session, phase, instrument, muscle,"
		  " mas_grade, r1_deg, r2_deg, fugl_meyer, author, at FROM scores"
		  " WHERE patient = ?1 AND (?2 IS NULL OR course = ?2)"
		  " ORDER BY at, id",
		  "read scores", course_db_sqlite_row_score },
	};
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < sizeof(q) / sizeof(q[0]); k++) {
		rc = course_db_sqlite_report_each(s, r, course, q[k].sql, q[k].what, q[k].row,
						  err, errlen);
	}
	return rc;
}

/* The patient's courses, or -ENOENT naming what is missing. */
static int course_db_sqlite_report_who(struct course_db_sqlite *s, const char *patient,
				       const char *course, char *err, size_t errlen)
{
	bool found;
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_sqlite_q(s, "SELECT 1 FROM patients WHERE id = ?", v, 1, &found, err,
				errlen, "s", patient);
	if (rc == 0 && !found) {
		snprintf(err, errlen, "course database %s: patient %s unknown", s->path, patient);
		return -ENOENT;
	}
	if (rc == 0 && course) {
		rc = course_db_sqlite_q(s, "SELECT 1 FROM prescriptions WHERE patient = ? AND"
					" course = ?", v, 1, &found, err, errlen, "ss", patient,
					course);
		if (rc == 0 && !found) {
			snprintf(err, errlen, "course database %s: patient %s has no course %s",
				 s->path, patient, course);
			return -ENOENT;
		}
	}
	return rc;
}

static int course_db_sqlite_report(struct course_db *db, struct course_db_report *r,
				   const char *course, char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int rc;

	/* One read transaction: the sessions, notes and dose of one moment. */
	rc = course_db_sqlite_exec(s, "BEGIN", "begin report", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_sqlite_report_who(s, r->patient, course, err, errlen);
	if (rc == 0) {
		rc = course_db_sqlite_report_rows(s, r, course, err, errlen);
	}
	course_db_sqlite_rollback(s);
	r->pending = 0;
	return rc;
}

static int course_db_sqlite_adverse_add(struct course_db *db, const char *patient,
					int64_t session, int64_t now, const char *author,
					const char *text, int64_t *note_id, char *err,
					size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	sqlite3_stmt *st = NULL;
	bool mine = false;
	int rc;

	rc = course_db_sqlite_exec(s, "BEGIN IMMEDIATE", "begin note", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_sqlite_session_exists(s, session, err, errlen);
	if (rc < 0) {
		goto err_rollback;
	}
	if (sqlite3_prepare_v2(s->h, "SELECT patient = ? FROM sessions WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, patient, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, session) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		rc = course_db_sqlite_fail(s, "read session", err, errlen);
		sqlite3_finalize(st);
		goto err_rollback;
	}
	mine = sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	if (!mine) {
		snprintf(err, errlen, "course database %s: session %" PRId64 " is not a session of "
			 "patient %s: no note added", s->path, session, patient);
		rc = -EPERM;
		goto err_rollback;
	}
	return course_db_sqlite_insert_commit(s, note_id, "commit note", err, errlen,
					      "INSERT INTO notes (session, kind, at, what, text)"
					      " VALUES (?, 'adverse', ?, ?, ?)", "iiss", session,
					      now, author, text);

err_rollback:
	*note_id = 0;
	course_db_sqlite_rollback(s);
	return rc;
}

static int course_db_sqlite_assessment_add(struct course_db *db,
					   const struct course_db_assessment *a,
					   char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int64_t id;
	int rc;

	/* One transaction: an assessment is stored with all its results or not at all. */
	rc = course_db_sqlite_exec(s, "BEGIN IMMEDIATE", "begin assessment", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_sqlite_session_exists(s, a->session, err, errlen);
	if (rc == 0) {
		rc = course_db_sqlite_q(s, "INSERT INTO assessments (session, phase, kind, at,"
					" onset, duration) VALUES (?, ?, ?, ?, ?, ?)", NULL, 0,
					NULL, err, errlen, "issidd", a->session,
					course_db_phase_name(a->phase),
					course_db_assess_kind_name(a->kind), a->at, a->onset_s,
					a->duration_s);
	}
	id = sqlite3_last_insert_rowid(s->h);
	for (size_t i = 0; rc == 0 && i < a->n_results; i++) {
		rc = course_db_sqlite_q(s, "INSERT INTO assessment_results VALUES (?, ?, ?, ?)",
					NULL, 0, NULL, err, errlen, "issd", id,
					a->results[i].channel, a->results[i].name,
					a->results[i].value);
	}
	if (rc == 0) {
		rc = course_db_sqlite_exec(s, "COMMIT", "commit assessment", err, errlen);
	}
	if (rc < 0) {
		course_db_sqlite_rollback(s);
	}
	return rc;
}

/* Which course a score goes to: the session's (checked to be @sc's patient's) or @sc's. */
static int course_db_sqlite_score_course(struct course_db_sqlite *s,
					 const struct course_db_score *sc, char *course,
					 size_t len, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	bool found;
	int64_t v[1];
	int rc;

	if (sc->session == 0) {
		rc = course_db_sqlite_q(s, "SELECT 1 FROM prescriptions WHERE patient = ? AND"
					" course = ?", v, 1, &found, err, errlen, "ss",
					sc->patient, sc->course);
		if (rc == 0 && !found) {
			snprintf(err, errlen, "course database %s: patient %s has no course %s: "
				 "no score added", s->path, sc->patient, sc->course);
			rc = -ENOENT;
		}
		snprintf(course, len, "%s", sc->course);
		return rc;
	}
	if (sqlite3_prepare_v2(s->h, "SELECT patient, course FROM sessions WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, sc->session) != SQLITE_OK) {
		rc = course_db_sqlite_fail(s, "read session", err, errlen);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "course database %s: session %" PRId64 " unknown: no score "
			 "added", s->path, sc->session);
		rc = -ENOENT;
	} else if (rc != SQLITE_ROW) {
		rc = course_db_sqlite_fail(s, "read session", err, errlen);
	} else if (strcmp(course_db_sqlite_text(st, 0), sc->patient)) {
		snprintf(err, errlen, "course database %s: session %" PRId64 " is not a session of "
			 "patient %s: no score added", s->path, sc->session, sc->patient);
		rc = -EPERM;
	} else if (sc->course && strcmp(course_db_sqlite_text(st, 1), sc->course)) {
		snprintf(err, errlen, "course database %s: session %" PRId64 " is of course %s, "
			 "not %s: no score added", s->path, sc->session,
			 course_db_sqlite_text(st, 1), sc->course);
		rc = -EINVAL;
	} else {
		snprintf(course, len, "%s", course_db_sqlite_text(st, 1));
		rc = 0;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

static int course_db_sqlite_score_add(struct course_db *db, const struct course_db_score *sc,
				      int64_t *score_id, char *err, size_t errlen)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	char course[COURSE_DB_ID_MAX + 1] = "";
	int rc;

	rc = course_db_sqlite_exec(s, "BEGIN IMMEDIATE", "begin score", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_sqlite_score_course(s, sc, course, sizeof(course), err, errlen);
	if (rc == 0) {
		rc = course_db_score_insert(db, sc, course, score_id, err, errlen);
	}
	if (rc == 0) {
		rc = course_db_sqlite_exec(s, "COMMIT", "commit score", err, errlen);
	}
	if (rc < 0) {
		*score_id = 0;
		course_db_sqlite_rollback(s);
	}
	return rc;
}

static int course_db_sqlite_insert(struct course_db *db, const char *sql, int64_t *id,
				   char *err, size_t errlen, const char *types, va_list ap)
{
	struct course_db_sqlite *s = course_db_sqlite_of(db);
	int rc = course_db_sqlite_vq(s, sql, NULL, 0, NULL, err, errlen, types, ap);

	*id = rc < 0 ? 0 : sqlite3_last_insert_rowid(s->h);
	return rc;
}

const struct course_db_ops course_db_sqlite_ops = {
	.name = "sqlite",
	.open = course_db_sqlite_open,
	.close = course_db_sqlite_close,
	.schema_version = course_db_sqlite_schema_version,
	.patient_add = course_db_sqlite_patient_add,
	.prescription_put = course_db_sqlite_prescription_put,
	.session_begin = course_db_sqlite_session_begin,
	.session_set = course_db_sqlite_session_set,
	.pulses = course_db_sqlite_pulses,
	.session_end = course_db_sqlite_session_end,
	.note_add = course_db_sqlite_note_add,
	.recording = course_db_sqlite_recording,
	.daily_pulses = course_db_sqlite_daily_pulses,
	.course_dose = course_db_sqlite_course_dose,
	.sync = course_db_sqlite_sync,
	.pending = course_db_sqlite_pending,
	.check = course_db_sqlite_check,
	.report = course_db_sqlite_report,
	.adverse_add = course_db_sqlite_adverse_add,
	.assessment_add = course_db_sqlite_assessment_add,
	.score_add = course_db_sqlite_score_add,
	.q = course_db_sqlite_q_op,
	.session_rig = course_db_sqlite_session_rig,
	.insert = course_db_sqlite_insert,
};
