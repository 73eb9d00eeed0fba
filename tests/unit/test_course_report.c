/* SPDX-License-Identifier: MIT */
/*
 * Tests of the course report (course_db_report), adverse-event notes
 * (course_db_adverse_add), the client mode rpmsctl opens the database in,
 * and the [course_db] keys' reading (course_db_config_from), on SQLite in
 * a fresh directory each. rpmsctl course itself, and the PostgreSQL side,
 * run in tests/integration/test_course_report.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config.h"
#include "course_db.h"
#include "course_fixture.h"
#include "course_db_config.h"


static int open_mode(struct fixture *fx, enum course_db_mode mode, int target,
		     struct course_db **db)
{
	struct course_db_config cfg = {
		.backend = COURSE_DB_SQLITE, .path = fx->path, .schema_target = target,
		.mode = mode,
	};

	fx->err[0] = '\0';
	return course_db_open(&cfg, db, fx->err, sizeof(fx->err));
}

static struct course_db *open_rig(struct fixture *fx)
{
	struct course_db *db = NULL;

	if (open_mode(fx, COURSE_DB_RIG, 0, &db) < 0) {
		fail_msg("open: %s", fx->err);
	}
	return db;
}

static void rx_put(struct fixture *fx, const char *patient, const char *course, int per_course)
{
	struct course_db_prescription rx = {
		.patient = patient, .course = course, .text = "[course]\nsessions = 10\n",
		.sessions_per_course = per_course, .max_sessions_per_day = 1,
		.min_hours_between = 20, .daily_pulse_cap = 5000,
	};

	assert_int_equal(course_db_patient_add(fx->db, patient, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_prescription_put(fx->db, &rx, fx->err, sizeof(fx->err)), 0);
}

/* A session of @patient's @course on day @k at 10:00, ended at 10:30 with @pulses. */
static int64_t session(struct fixture *fx, const char *patient, const char *course, int k,
		       int64_t pulses, const char *reason)
{
	int64_t ds = DAY0 + k * DAY_S, id = 0;

	if (course_db_session_begin(fx->db, patient, course, "rig1", ds + 10 * HOUR_S, ds,
				    ds + DAY_S, &id, fx->err, sizeof(fx->err)) < 0) {
		fail_msg("begin: %s", fx->err);
	}
	if (reason) {
		assert_int_equal(course_db_session_end(fx->db, id, ds + 10 * HOUR_S + 1800, pulses,
						       reason, fx->err, sizeof(fx->err)), 0);
	} else {
		assert_int_equal(course_db_pulses(fx->db, id, pulses, fx->err, sizeof(fx->err)), 0);
	}
	return id;
}

static struct course_db_report *report(struct fixture *fx, struct course_db *db,
				       const char *patient, const char *course)
{
	struct course_db_report *r = NULL;

	if (course_db_report(db, patient, course, &r, fx->err, sizeof(fx->err)) < 0) {
		fail_msg("report: %s", fx->err);
	}
	return r;
}

static void test_report_empty_course(void **state)
{
	struct fixture *fx = *state;
	struct course_db_report *r;

	fx->db = open_rig(fx);
	rx_put(fx, "P01", "C1", 10);
	r = report(fx, fx->db, "P01", NULL);
	assert_string_equal(r->patient, "P01");
	assert_string_equal(r->backend, "sqlite");
	assert_int_equal(r->pending, 0);
	assert_int_equal(r->n_courses, 1);
	assert_string_equal(r->courses[0].course, "C1");
	assert_int_equal(r->courses[0].sessions_per_course, 10);
	assert_int_equal(r->courses[0].max_sessions_per_day, 1);
	assert_true(r->courses[0].min_hours_between == 20);
	assert_int_equal(r->courses[0].daily_pulse_cap, 5000);
	assert_string_equal(r->courses[0].text, "[course]\nsessions = 10\n");
	assert_int_equal(r->courses[0].n_sessions, 0);
	assert_int_equal(r->courses[0].dose.sessions, 0);
	assert_int_equal(r->courses[0].dose.pulses, 0);
	course_db_report_free(r);
	course_db_report_free(NULL);
}

static void test_report_sessions_and_notes(void **state)
{
	struct fixture *fx = *state;
	struct course_db_session_detail d = {
		.intensity_pct = 35, .motor_threshold_pct = 42.5, .target = "radial, right",
		.arm_code = "K7",
	};
	struct course_db_dose dose;
	struct course_db_report *r;
	const struct course_db_report_session *s;
	int64_t a, b, c, note = 0;

	fx->db = open_rig(fx);
	rx_put(fx, "P01", "C1", 10);
	rx_put(fx, "P02", "C1", 10);
	a = session(fx, "P01", "C1", 0, 1200, "completed");
	b = session(fx, "P01", "C1", 1, 400, "stopped_early");
	(void)session(fx, "P02", "C1", 1, 999, "completed");
	c = session(fx, "P01", "C1", 2, 150, NULL);	/* still running */
	assert_int_equal(course_db_session_set(fx->db, a, &d, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_note_add(fx->db, b, COURSE_DB_DEVIATION,
					    DAY0 + DAY_S + 11 * HOUR_S, "stopped", "patient asked to stop", fx->err,
					    sizeof(fx->err)), 0);
	assert_int_equal(course_db_adverse_add(fx->db, "P01", b, DAY0 + DAY_S + 12 * HOUR_S,
					       "alice", "tingling, resolved in 10 min", &note,
					       fx->err, sizeof(fx->err)), 0);
	assert_true(note > 0);

	r = report(fx, fx->db, "P01", "C1");
	assert_int_equal(r->n_courses, 1);
	assert_int_equal(r->courses[0].n_sessions, 3);
	s = r->courses[0].sessions;
	assert_int_equal(s[0].id, a);
	assert_int_equal(s[0].pulses, 1200);
	assert_string_equal(s[0].stop_reason, "completed");
	assert_int_equal(s[0].started, DAY0 + 10 * HOUR_S);
	assert_int_equal(s[0].stopped, DAY0 + 10 * HOUR_S + 1800);
	assert_true(s[0].intensity_pct == 35 && s[0].motor_threshold_pct == 42.5);
	assert_string_equal(s[0].target, "radial, right");
	assert_string_equal(s[0].arm_code, "K7");
	assert_string_equal(s[0].rig, "rig1");
	assert_int_equal(s[0].n_notes, 0);
	assert_int_equal(s[1].id, b);
	assert_string_equal(s[1].stop_reason, "stopped_early");
	assert_true(s[1].intensity_pct < 0 && s[1].motor_threshold_pct < 0);
	assert_null(s[1].target);
	assert_string_equal(s[1].arm_code, "");
	assert_int_equal(s[1].n_notes, 2);
	assert_int_equal(s[1].notes[0].kind, COURSE_DB_DEVIATION);
	assert_string_equal(s[1].notes[0].what, "stopped");
	assert_string_equal(s[1].notes[0].text, "patient asked to stop");
	assert_int_equal(s[1].notes[1].kind, COURSE_DB_ADVERSE);
	assert_int_equal(s[1].notes[1].id, note);
	assert_int_equal(s[1].notes[1].at, DAY0 + DAY_S + 12 * HOUR_S);
	assert_string_equal(s[1].notes[1].what, "alice");
	assert_string_equal(s[1].notes[1].text, "tingling, resolved in 10 min");
	assert_int_equal(s[2].id, c);
	assert_int_equal(s[2].stopped, -1);
	assert_null(s[2].stop_reason);
	assert_int_equal(s[2].pulses, 150);
	/* The dose is course_db_course_dose's, the other patient's session not in it. */
	assert_int_equal(course_db_course_dose(fx->db, "P01", "C1", &dose, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(r->courses[0].dose.sessions, dose.sessions);
	assert_int_equal(r->courses[0].dose.pulses, dose.pulses);
	assert_int_equal(dose.sessions, 3);
	assert_int_equal(dose.pulses, 1750);
	course_db_report_free(r);
}

static void test_report_courses(void **state)
{
	struct fixture *fx = *state;
	struct course_db_report *r;

	fx->db = open_rig(fx);
	rx_put(fx, "P01", "C2", 5);
	rx_put(fx, "P01", "C1", 10);
	(void)session(fx, "P01", "C1", 0, 100, "completed");
	(void)session(fx, "P01", "C2", 2, 200, "completed");
	r = report(fx, fx->db, "P01", NULL);
	assert_int_equal(r->n_courses, 2);
	assert_string_equal(r->courses[0].course, "C1");
	assert_string_equal(r->courses[1].course, "C2");
	assert_int_equal(r->courses[0].dose.pulses, 100);
	assert_int_equal(r->courses[1].dose.pulses, 200);
	course_db_report_free(r);
	r = report(fx, fx->db, "P01", "C2");
	assert_int_equal(r->n_courses, 1);
	assert_string_equal(r->courses[0].course, "C2");
	assert_int_equal(r->courses[0].n_sessions, 1);
	course_db_report_free(r);
}

static void test_report_unknown(void **state)
{
	struct fixture *fx = *state;
	struct course_db_report *r = (void *)1;

	fx->db = open_rig(fx);
	rx_put(fx, "P01", "C1", 10);
	rx_put(fx, "P01", "C2", 10);
	assert_int_equal(course_db_report(fx->db, "P99", NULL, &r, fx->err, sizeof(fx->err)),
			 -ENOENT);
	assert_null(r);
	assert_err_has(fx, "patient P99 unknown");
	assert_int_equal(course_db_report(fx->db, "P01", "C9", &r, fx->err, sizeof(fx->err)),
			 -ENOENT);
	assert_err_has(fx, "patient P01 has no course C9 (its courses: C1, C2)");
	assert_int_equal(course_db_report(fx->db, "Jane Doe", NULL, &r, fx->err,
					  sizeof(fx->err)), -EINVAL);
	assert_err_has(fx, "pseudonyms only");
}

static void test_adverse_refusals(void **state)
{
	struct fixture *fx = *state;
	struct course_db_report *r;
	int64_t mine, theirs, id = 7;

	fx->db = open_rig(fx);
	rx_put(fx, "P01", "C1", 10);
	rx_put(fx, "P02", "C1", 10);
	mine = session(fx, "P01", "C1", 0, 10, "completed");
	theirs = session(fx, "P02", "C1", 0, 10, "completed");
	assert_int_equal(course_db_adverse_add(fx->db, "P01", 999, DAY0, "alice", "x", &id,
					       fx->err, sizeof(fx->err)), -ENOENT);
	assert_int_equal(id, 0);
	assert_err_has(fx, "session 999 unknown");
	assert_int_equal(course_db_adverse_add(fx->db, "P01", theirs, DAY0, "alice", "x", &id,
					       fx->err, sizeof(fx->err)), -EPERM);
	assert_err_has(fx, "is not a session of patient P01: no note added");
	/* the other patient is not named */
	assert_null(strstr(fx->err, "P02"));
	assert_int_equal(course_db_adverse_add(fx->db, "P01", mine, DAY0, "alice", " \n", &id,
					       fx->err, sizeof(fx->err)), -EINVAL);
	assert_err_has(fx, "adverse-event note is empty");
	assert_int_equal(course_db_adverse_add(fx->db, "P01", mine, DAY0, "", "x", &id,
					       fx->err, sizeof(fx->err)), -EINVAL);
	/* nothing of the refused ones was written */
	r = report(fx, fx->db, "P02", NULL);
	assert_int_equal(r->courses[0].sessions[0].n_notes, 0);
	course_db_report_free(r);
	r = report(fx, fx->db, "P01", NULL);
	assert_int_equal(r->courses[0].sessions[0].n_notes, 0);
	course_db_report_free(r);
}

static void test_client_missing_file(void **state)
{
	struct fixture *fx = *state;
	struct course_db *db = NULL;

	assert_int_equal(open_mode(fx, COURSE_DB_CLIENT, 0, &db), -ENOENT);
	assert_null(db);
	assert_err_has(fx, "a client never creates one: check course_db.path");
	/* and nothing was created in its place */
	assert_int_equal(access(fx->path, F_OK), -1);
}

static void test_client_not_a_course_db(void **state)
{
	struct fixture *fx = *state;
	struct course_db *db = NULL;
	sqlite3 *h = NULL;

	assert_int_equal(sqlite3_open(fx->path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TABLE other (x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(open_mode(fx, COURSE_DB_CLIENT, 0, &db), -ENOENT);
	assert_err_has(fx, "not a course database");
}

static void test_client_older_schema(void **state)
{
	struct fixture *fx = *state;
	struct course_db *db = NULL;

	assert_int_equal(open_mode(fx, COURSE_DB_RIG, 1, &db), 0);
	course_db_close(db);
	db = NULL;
	assert_int_equal(open_mode(fx, COURSE_DB_CLIENT, 0, &db), -EPROTONOSUPPORT);
	assert_err_has(fx, "schema version 1 is older than this build reads (3)");
	/* not migrated by the reader */
	assert_int_equal(open_mode(fx, COURSE_DB_RIG, 1, &db), 0);
	assert_int_equal(course_db_schema_version(db, fx->err, sizeof(fx->err)), 1);
	course_db_close(db);
}

/* A client beside the rig's open handle reads what the rig committed and adds notes. */
static void test_client_beside_rig(void **state)
{
	struct fixture *fx = *state;
	struct course_db *client = NULL;
	struct course_db_report *r;
	int64_t s, id = 0;

	fx->db = open_rig(fx);
	rx_put(fx, "P01", "C1", 10);
	s = session(fx, "P01", "C1", 0, 300, NULL);
	assert_int_equal(open_mode(fx, COURSE_DB_CLIENT, 0, &client), 0);
	assert_int_equal(course_db_adverse_add(client, "P01", s, DAY0 + 11 * HOUR_S, "bob",
					       "redness at the coil site", &id, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(course_db_pulses(fx->db, s, 600, fx->err, sizeof(fx->err)), 0);
	r = report(fx, client, "P01", NULL);
	assert_int_equal(r->courses[0].sessions[0].pulses, 600);
	assert_int_equal(r->courses[0].sessions[0].n_notes, 1);
	assert_string_equal(r->courses[0].sessions[0].notes[0].text, "redness at the coil site");
	course_db_report_free(r);
	course_db_close(client);
}

/* Past the bound the report is refused, never cut short. */
static void test_report_bounded(void **state)
{
	struct fixture *fx = *state;
	struct course_db_report *r = NULL;
	char sql[512];
	sqlite3 *h = NULL;

	fx->db = open_rig(fx);
	rx_put(fx, "P01", "C1", 100000);
	snprintf(sql, sizeof(sql), "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM"
		 " n WHERE i < %d) INSERT INTO sessions (patient, course, rig, started, stopped)"
		 " SELECT 'P01', 'C1', 'rig1', %lld + i, %lld + i FROM n",
		 COURSE_DB_REPORT_SESSIONS_MAX + 1, (long long)DAY0, (long long)DAY0);
	assert_int_equal(sqlite3_open(fx->path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(course_db_report(fx->db, "P01", NULL, &r, fx->err, sizeof(fx->err)),
			 -EFBIG);
	assert_null(r);
	assert_err_has(fx, "more than 4096 sessions (refused rather than cut short");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void test_config_from(void **state)
{
	struct fixture *fx = *state;
	struct course_db_config_paths paths;
	struct course_db_config out;
	struct rpmsd_config *cfg = calloc(1, sizeof(*cfg));
	char conf[128], want[256];

	assert_non_null(cfg);
	snprintf(conf, sizeof(conf), "%s/rpmsd.conf", fx->dir);
	/* empty course_db.path: course.db in daemon.state_dir, itself relative to the file */
	write_file(conf, "[daemon]\nstate_dir = state\n");
	assert_int_equal(config_load_flags(cfg, conf, CONFIG_LOAD_INPUT_GIVEN, fx->err,
					   sizeof(fx->err)), 0);
	assert_int_equal(course_db_config_from(cfg, COURSE_DB_CLIENT, &paths, &out, fx->err,
					       sizeof(fx->err)), 0);
	snprintf(want, sizeof(want), "%s/state/course.db", fx->dir);
	assert_int_equal(out.backend, COURSE_DB_SQLITE);
	assert_int_equal(out.mode, COURSE_DB_CLIENT);
	assert_string_equal(out.path, want);
	/* a relative course_db.path: against the file's directory */
	write_file(conf, "[course_db]\npath = db/c.db\nbusy_timeout_ms = 700\n");
	assert_int_equal(config_load_flags(cfg, conf, CONFIG_LOAD_INPUT_GIVEN, fx->err,
					   sizeof(fx->err)), 0);
	assert_int_equal(course_db_config_from(cfg, COURSE_DB_RIG, &paths, &out, fx->err,
					       sizeof(fx->err)), 0);
	snprintf(want, sizeof(want), "%s/db/c.db", fx->dir);
	assert_string_equal(out.path, want);
	assert_int_equal(out.busy_timeout_ms, 700);
	/* postgresql: the journal's default in the state directory, a conninfo required */
	write_file(conf, "[daemon]\nstate_dir = /var/lib/x\n[course_db]\nbackend = postgresql\n"
		   "conninfo = host=db.example dbname=course\n");
	assert_int_equal(config_load_flags(cfg, conf, CONFIG_LOAD_INPUT_GIVEN, fx->err,
					   sizeof(fx->err)), 0);
	assert_int_equal(course_db_config_from(cfg, COURSE_DB_RIG, &paths, &out, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(out.backend, COURSE_DB_POSTGRESQL);
	assert_string_equal(out.journal, "/var/lib/x/course-journal.db");
	assert_string_equal(out.conninfo, "host=db.example dbname=course");
	write_file(conf, "[course_db]\nbackend = postgresql\n");
	assert_int_equal(config_load_flags(cfg, conf, CONFIG_LOAD_INPUT_GIVEN, fx->err,
					   sizeof(fx->err)), 0);
	assert_int_equal(course_db_config_from(cfg, COURSE_DB_RIG, &paths, &out, fx->err,
					       sizeof(fx->err)), -EINVAL);
	assert_err_has(fx, "rpmsd.conf:2: course_db.conninfo: empty");
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_report_empty_course, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_report_sessions_and_notes, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_report_courses, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_report_unknown, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_adverse_refusals, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_missing_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_not_a_course_db, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_older_schema, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_beside_rig, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_report_bounded, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_config_from, fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
