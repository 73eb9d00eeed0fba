/* SPDX-License-Identifier: MIT */
/*
 * Tests of the course database's SQLite backend, each in a fresh
 * directory: migrations (from version 1, and a newer schema refused
 * untouched), every limit of course_db_session_begin with its message, two
 * handles racing for one daily slot in two threads, monotonic pulses, the
 * daily pulses and course dose, pseudonymous ids, and a writer SIGKILLed
 * mid-write (reopened, intact, nothing it reported committed lost).
 * The PostgreSQL backend runs against a real server in
 * tests/integration/test_course_db.py.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "course_db.h"
#include "course_fixture.h"

#define RACE_ROUNDS 60

static struct course_db *open_db(struct fixture *fx, int target)
{
	struct course_db_config cfg = {
		.backend = COURSE_DB_SQLITE, .path = fx->path, .schema_target = target,
	};
	struct course_db *db = NULL;
	int rc = course_db_open(&cfg, &db, fx->err, sizeof(fx->err));

	if (rc < 0) {
		fail_msg("open: %s", fx->err);
	}
	return db;
}

/* A patient with a prescription: @per_course sessions, @per_day a day, @hours between. */
static void rx_put(struct fixture *fx, struct course_db *db, const char *patient,
		   int per_course, int per_day, double hours, int64_t cap)
{
	struct course_db_prescription rx = {
		.patient = patient, .course = "C1", .text = "[prescription]\npatient = x\n",
		.sessions_per_course = per_course, .max_sessions_per_day = per_day,
		.min_hours_between = hours, .daily_pulse_cap = cap,
	};

	assert_int_equal(course_db_patient_add(db, patient, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_prescription_put(db, &rx, fx->err, sizeof(fx->err)), 0);
}

static int begin(struct fixture *fx, const char *patient, const char *rig, int64_t now,
		 int64_t *id)
{
	int64_t ds = DAY0 + (now - DAY0) / DAY_S * DAY_S;

	fx->err[0] = '\0';
	return course_db_session_begin(fx->db, patient, "C1", rig, now, ds, ds + DAY_S, id,
				       fx->err, sizeof(fx->err));
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *h = NULL;

	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void test_course_db_migrate(void **state)
{
	struct fixture *fx = *state;
	struct course_db *db1 = open_db(fx, 1);
	struct course_db_session_detail d = { .intensity_pct = 120, .motor_threshold_pct = 45,
					      .target = "radial nerve", .arm_code = "K7" };
	int64_t id;

	assert_int_equal(course_db_schema_version(db1, fx->err, sizeof(fx->err)), 1);
	rx_put(fx, db1, "P001", 10, 1, 20, 5000);
	fx->db = db1;
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 10 * HOUR_S, &id), 0);
	course_db_close(db1);
	fx->db = open_db(fx, 0);
	assert_int_equal(course_db_schema_version(fx->db, fx->err, sizeof(fx->err)),
			 COURSE_DB_SCHEMA_VERSION);
	/* The version 1 session is still there, and takes version 2's columns. */
	assert_int_equal(course_db_session_set(fx->db, id, &d, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_note_add(fx->db, id, COURSE_DB_DEVIATION, DAY0 + 11 * HOUR_S,
					    "stopped early", "patient asked", fx->err,
					    sizeof(fx->err)), 0);
	assert_int_equal(course_db_session_recording(fx->db, id, "s1.edf",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_check(fx->db, fx->err, sizeof(fx->err)), 0);
}

static void test_course_db_newer_schema(void **state)
{
	struct fixture *fx = *state;
	struct course_db_config cfg = { .backend = COURSE_DB_SQLITE, .path = fx->path };
	struct course_db *db = open_db(fx, 0);
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	course_db_close(db);
	raw_exec(fx->path, "INSERT INTO schema_version VALUES (99, 0)");
	db = (struct course_db *)&cfg;
	assert_int_equal(course_db_open(&cfg, &db, fx->err, sizeof(fx->err)), -EPROTONOSUPPORT);
	assert_null(db);
	assert_err_has(fx, "schema version 99 is newer than this rpmsd knows (3)");
	assert_err_has(fx, fx->path);
	/* Left as it was: no migration ran, the version row is still 99. */
	assert_int_equal(sqlite3_open(fx->path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT MAX(version), COUNT(*) FROM schema_version",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 99);
	assert_int_equal(sqlite3_column_int(st, 1), COURSE_DB_SCHEMA_VERSION + 1);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

static void test_course_db_limit_no_prescription(void **state)
{
	struct fixture *fx = *state;
	int64_t id = -1;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 1, 20, 5000);
	assert_int_equal(course_db_session_begin(fx->db, "P001", "C9", "rig1", DAY0 + 1, DAY0,
						 DAY0 + DAY_S, &id, fx->err, sizeof(fx->err)),
			 -ENOENT);
	assert_int_equal(id, 0);
	assert_err_has(fx, "patient P001: no prescription for course C9");
	assert_int_equal(begin(fx, "P404", "rig1", DAY0 + 1, &id), -ENOENT);
	assert_err_has(fx, "patient P404: no prescription for course C1");
}

static void test_course_db_limit_running(void **state)
{
	struct fixture *fx = *state;
	int64_t id, id2;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 3, 0, 5000);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 8 * HOUR_S, &id), 0);
	assert_int_equal(begin(fx, "P001", "rig2", DAY0 + 9 * HOUR_S, &id2), -EPERM);
	assert_err_has(fx, "still running");
	assert_err_has(fx, "on rig rig1");
	assert_int_equal(course_db_session_end(fx->db, id, DAY0 + 9 * HOUR_S, 10, NULL, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(begin(fx, "P001", "rig2", DAY0 + 9 * HOUR_S, &id2), 0);
	assert_true(id2 > id);
}

static void test_course_db_limit_per_course(void **state)
{
	struct fixture *fx = *state;
	int64_t id;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 3, 1, 20, 5000);
	for (int k = 0; k < 3; k++) {
		int64_t t = DAY0 + k * DAY_S + 10 * HOUR_S;

		assert_int_equal(begin(fx, "P001", "rig1", t, &id), 0);
		assert_int_equal(course_db_session_end(fx->db, id, t + HOUR_S, 100, NULL, fx->err,
						       sizeof(fx->err)), 0);
	}
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 3 * DAY_S + 10 * HOUR_S, &id), -EPERM);
	assert_err_has(fx, "sessions_per_course: 3 of 3 sessions done");
}

static void test_course_db_limit_per_day(void **state)
{
	struct fixture *fx = *state;
	int64_t id;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 1, 0, 5000);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 1 * HOUR_S, &id), 0);
	assert_int_equal(course_db_session_end(fx->db, id, DAY0 + 2 * HOUR_S, 100, NULL, fx->err,
					       sizeof(fx->err)), 0);
	/* The last second of the same day: refused; the first of the next: allowed. */
	assert_int_equal(begin(fx, "P001", "rig2", DAY0 + DAY_S - 1, &id), -EPERM);
	assert_err_has(fx, "max_sessions_per_day: 1 session(s) already began this day");
	assert_err_has(fx, "at most 1");
	assert_int_equal(begin(fx, "P001", "rig2", DAY0 + DAY_S, &id), 0);
}

static void test_course_db_limit_min_hours(void **state)
{
	struct fixture *fx = *state;
	int64_t id;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 1, 20, 5000);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 20 * HOUR_S, &id), 0);
	assert_int_equal(course_db_session_end(fx->db, id, DAY0 + 21 * HOUR_S, 100, NULL, fx->err,
					       sizeof(fx->err)), 0);
	/* Next day, but 10 h after the end: refused; 20 h after: allowed. */
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 31 * HOUR_S, &id), -EPERM);
	assert_err_has(fx, "min_hours_between: the previous session ended 10.00 h ago");
	assert_err_has(fx, "at least 20 h required");
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 41 * HOUR_S, &id), 0);
}

static void test_course_db_limit_daily_cap(void **state)
{
	struct fixture *fx = *state;
	int64_t id, pulses;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 5, 0, 1200);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 8 * HOUR_S, &id), 0);
	assert_int_equal(course_db_session_end(fx->db, id, DAY0 + 9 * HOUR_S, 700, NULL, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(begin(fx, "P001", "rig2", DAY0 + 10 * HOUR_S, &id), 0);
	assert_int_equal(course_db_session_end(fx->db, id, DAY0 + 11 * HOUR_S, 500, NULL, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(course_db_daily_pulses(fx->db, "P001", DAY0, DAY0 + DAY_S, &pulses,
						fx->err, sizeof(fx->err)), 0);
	assert_int_equal(pulses, 1200);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 12 * HOUR_S, &id), -EPERM);
	assert_err_has(fx, "daily_pulse_cap: 1200 pulses delivered this day");
	assert_err_has(fx, "cap 1200");
}

static void test_course_db_pulses_monotonic(void **state)
{
	struct fixture *fx = *state;
	struct course_db_dose dose;
	int64_t id;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 1, 0, 5000);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + HOUR_S, &id), 0);
	assert_int_equal(course_db_pulses(fx->db, id, 300, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_pulses(fx->db, id, 120, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_course_dose(fx->db, "P001", "C1", &dose, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(dose.pulses, 300);
	assert_int_equal(course_db_session_end(fx->db, id, DAY0 + 2 * HOUR_S, 250, "stopped",
					       fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_course_dose(fx->db, "P001", "C1", &dose, fx->err,
					       sizeof(fx->err)), 0);
	assert_int_equal(dose.sessions, 1);
	assert_int_equal(dose.pulses, 300);
	assert_int_equal(course_db_pulses(fx->db, id, -1, fx->err, sizeof(fx->err)), -ERANGE);
	assert_int_equal(course_db_pulses(fx->db, id + 5, 10, fx->err, sizeof(fx->err)), -ENOENT);
	assert_err_has(fx, "unknown");
}

static void test_course_db_pseudonyms(void **state)
{
	struct fixture *fx = *state;

	fx->db = open_db(fx, 0);
	assert_int_equal(course_db_patient_add(fx->db, "Jane Doe", fx->err, sizeof(fx->err)),
			 -EINVAL);
	assert_err_has(fx, "patient id 'Jane Doe': character 5 is not allowed");
	assert_int_equal(course_db_patient_add(fx->db, "jane@example.org", fx->err,
					       sizeof(fx->err)), -EINVAL);
}

struct racer {
	struct fixture *fx;
	pthread_barrier_t *barrier;
	const char *rig;
	const char *patient;
	int wins;
	int refusals;
	int other;
};

static void *racer_run(void *arg)
{
	struct racer *r = arg;
	struct course_db_config cfg = { .backend = COURSE_DB_SQLITE, .path = r->fx->path };
	char err[COURSE_DB_ERR_MAX];
	struct course_db *db = NULL;

	if (course_db_open(&cfg, &db, err, sizeof(err)) < 0) {
		r->other = -1;
		pthread_barrier_wait(r->barrier);
		return NULL;
	}
	for (int k = 0; k < RACE_ROUNDS; k++) {
		int64_t ds = DAY0 + k * DAY_S, id = 0;
		int rc;

		pthread_barrier_wait(r->barrier);
		rc = course_db_session_begin(db, r->patient, "C1", r->rig, ds + 10 * HOUR_S, ds,
					     ds + DAY_S, &id, err, sizeof(err));
		if (rc == 0) {
			r->wins++;
			rc = course_db_session_end(db, id, ds + 11 * HOUR_S, 10, NULL, err,
						   sizeof(err));
			r->other += rc < 0;
		} else if (rc == -EPERM && (strstr(err, "max_sessions_per_day") ||
					    strstr(err, "is still running"))) {
			/* the winner's session read while running or after its end */
			r->refusals++;
		} else {
			r->other++;
		}
		pthread_barrier_wait(r->barrier);
	}
	course_db_close(db);
	return NULL;
}

/* Two handles (two rigs) start the same patient's session at once, day after day. */
static void test_course_db_race_same_patient(void **state)
{
	struct fixture *fx = *state;
	pthread_barrier_t barrier;
	struct racer r[2] = {
		{ .fx = fx, .barrier = &barrier, .rig = "rig1", .patient = "P001" },
		{ .fx = fx, .barrier = &barrier, .rig = "rig2", .patient = "P001" },
	};
	pthread_t th[2];

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 1000, 1, 0, 100000);
	assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, racer_run, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(r[0].other + r[1].other, 0);
	assert_int_equal(r[0].wins + r[1].wins, RACE_ROUNDS);
	assert_int_equal(r[0].refusals + r[1].refusals, RACE_ROUNDS);
}

/* Different patients at once: both win every round. */
static void test_course_db_race_two_patients(void **state)
{
	struct fixture *fx = *state;
	pthread_barrier_t barrier;
	struct racer r[2] = {
		{ .fx = fx, .barrier = &barrier, .rig = "rig1", .patient = "P001" },
		{ .fx = fx, .barrier = &barrier, .rig = "rig2", .patient = "P002" },
	};
	pthread_t th[2];

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 1000, 1, 0, 100000);
	rx_put(fx, fx->db, "P002", 1000, 1, 0, 100000);
	assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, racer_run, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(r[0].other + r[1].other, 0);
	assert_int_equal(r[0].wins, RACE_ROUNDS);
	assert_int_equal(r[1].wins, RACE_ROUNDS);
}

/*
 * A writer SIGKILLed while it writes pulse counts: after the kill the file
 * opens, passes the integrity check, and holds at least the last count the
 * writer reported as committed (synchronous=FULL: committed is on disk).
 */
static void test_course_db_kill9(void **state)
{
	struct fixture *fx = *state;
	struct course_db_dose dose;
	int64_t id, last = 0;
	int fds[2], status;
	pid_t pid;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 1, 0, 10000000);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + HOUR_S, &id), 0);
	course_db_close(fx->db);
	fx->db = NULL;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct course_db_config cfg = { .backend = COURSE_DB_SQLITE, .path = fx->path };
		char err[COURSE_DB_ERR_MAX];
		struct course_db *db = NULL;

		close(fds[0]);
		if (course_db_open(&cfg, &db, err, sizeof(err)) < 0) {
			_exit(3);
		}
		for (int64_t n = 1;; n++) {
			if (course_db_pulses(db, id, n, err, sizeof(err)) < 0 ||
			    write(fds[1], &n, sizeof(n)) != (ssize_t)sizeof(n)) {
				_exit(4);
			}
		}
	}
	close(fds[1]);
	/* Killed once it has committed a good number: mid-write, whatever the speed. */
	while (last < 200) {
		int64_t n;

		assert_int_equal(read(fds[0], &n, sizeof(n)), (ssize_t)sizeof(n));
		last = n;
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	for (int64_t n; read(fds[0], &n, sizeof(n)) == (ssize_t)sizeof(n);) {
		last = n;
	}
	close(fds[0]);
	fx->db = open_db(fx, 0);
	assert_int_equal(course_db_check(fx->db, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(course_db_course_dose(fx->db, "P001", "C1", &dose, fx->err,
					       sizeof(fx->err)), 0);
	assert_true(dose.pulses >= last);
	assert_true(dose.pulses <= last + 1);
}

/* A session of P001 on course C1 in a fresh schema-3 database. */
static int64_t outcome_session(struct fixture *fx)
{
	int64_t id = 0;

	fx->db = open_db(fx, 0);
	rx_put(fx, fx->db, "P001", 10, 2, 0, 5000);
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 10 * HOUR_S, &id), 0);
	return id;
}

/* The only course of the patient's report (the caller frees @r). */
static const struct course_db_report_course *outcome_report(struct fixture *fx,
							    struct course_db_report **r)
{
	assert_int_equal(course_db_report(fx->db, "P001", NULL, r, fx->err, sizeof(fx->err)), 0);
	assert_int_equal((*r)->n_courses, 1);
	return &(*r)->courses[0];
}

static void test_course_db_migrate_v2(void **state)
{
	struct fixture *fx = *state;
	struct course_db *db2 = open_db(fx, 2);
	struct course_db_result res[] = { { "FCR", "rms_uv", 4.25 } };
	struct course_db_assessment a = {
		.phase = COURSE_DB_PRE, .kind = COURSE_DB_ASSESS_REST, .at = DAY0 + 11 * HOUR_S,
		.onset_s = 3, .duration_s = 60, .n_results = 1, .results = res,
	};
	struct course_db_report *r = NULL;
	int64_t id;

	assert_int_equal(course_db_schema_version(db2, fx->err, sizeof(fx->err)), 2);
	rx_put(fx, db2, "P001", 10, 1, 20, 5000);
	fx->db = db2;
	assert_int_equal(begin(fx, "P001", "rig1", DAY0 + 10 * HOUR_S, &id), 0);
	assert_int_equal(course_db_note_add(db2, id, COURSE_DB_DEVIATION, DAY0 + 10 * HOUR_S,
					    "x", "y", fx->err, sizeof(fx->err)), 0);
	course_db_close(db2);
	fx->db = open_db(fx, 0);
	assert_int_equal(course_db_schema_version(fx->db, fx->err, sizeof(fx->err)), 3);
	/* The version 2 session and note are kept, and the session takes assessments. */
	a.session = id;
	assert_int_equal(course_db_assessment_add(fx->db, &a, fx->err, sizeof(fx->err)), 0);
	outcome_report(fx, &r);
	assert_int_equal(r->courses[0].n_sessions, 1);
	assert_int_equal(r->courses[0].sessions[0].n_notes, 1);
	assert_int_equal(r->courses[0].sessions[0].n_assessments, 1);
	course_db_report_free(r);
	assert_int_equal(course_db_check(fx->db, fx->err, sizeof(fx->err)), 0);
}

static void test_course_db_assessment(void **state)
{
	struct fixture *fx = *state;
	int64_t id = outcome_session(fx);
	struct course_db_result res[] = {
		{ "FCR", "rms_uv", 4.125 }, { "FCR", "bursts_per_min", 2.5 },
		{ "ECR", "rms_uv", 3.0625 }, { "FCR+ECR", "cci_pct", 41.5 },
	};
	struct course_db_assessment a = {
		.session = id, .phase = COURSE_DB_POST, .kind = COURSE_DB_ASSESS_REST,
		.at = DAY0 + 11 * HOUR_S, .onset_s = 1812.5, .duration_s = 60,
		.n_results = 4, .results = res,
	};
	const struct course_db_report_assessment *x;
	struct course_db_report *r = NULL;

	assert_int_equal(course_db_assessment_add(fx->db, &a, fx->err, sizeof(fx->err)), 0);
	outcome_report(fx, &r);
	assert_int_equal(r->courses[0].sessions[0].n_assessments, 1);
	x = &r->courses[0].sessions[0].assessments[0];
	assert_int_equal(x->phase, COURSE_DB_POST);
	assert_int_equal(x->kind, COURSE_DB_ASSESS_REST);
	assert_true(x->onset_s == 1812.5 && x->duration_s == 60);
	assert_int_equal(x->n_results, 4);
	/* by channel, then name: ECR, FCR (bursts, rms), FCR+ECR */
	assert_string_equal(x->results[0].channel, "ECR");
	assert_true(x->results[0].value == 3.0625);
	assert_string_equal(x->results[1].name, "bursts_per_min");
	assert_true(x->results[2].value == 4.125);
	assert_string_equal(x->results[3].channel, "FCR+ECR");
	course_db_report_free(r);

	/* Refusals: each names what was wrong, nothing is stored. */
	a.session = id + 99;
	assert_int_equal(course_db_assessment_add(fx->db, &a, fx->err, sizeof(fx->err)), -ENOENT);
	assert_err_has(fx, "unknown");
	a.session = id;
	res[1].value = NAN;
	assert_int_equal(course_db_assessment_add(fx->db, &a, fx->err, sizeof(fx->err)), -ERANGE);
	assert_err_has(fx, "bursts_per_min of channel 'FCR' is not a finite number");
	res[1].value = 2.5;
	res[1].name = "rms_uv";
	assert_int_equal(course_db_assessment_add(fx->db, &a, fx->err, sizeof(fx->err)), -EINVAL);
	assert_err_has(fx, "given twice");
	res[1].name = "bursts per min";
	assert_int_equal(course_db_assessment_add(fx->db, &a, fx->err, sizeof(fx->err)), -EINVAL);
	assert_err_has(fx, "result name id 'bursts per min'");
	res[1].name = "bursts_per_min";
	a.duration_s = 0;
	assert_int_equal(course_db_assessment_add(fx->db, &a, fx->err, sizeof(fx->err)), -ERANGE);
	assert_err_has(fx, "duration 0 s");
	outcome_report(fx, &r);
	assert_int_equal(r->courses[0].sessions[0].n_assessments, 1);
	course_db_report_free(r);
}

static int64_t score(struct fixture *fx, struct course_db_score *s)
{
	int64_t id = -1;

	fx->err[0] = '\0';
	s->patient = s->patient ? s->patient : "P001";
	s->author = s->author ? s->author : "dr.a";
	s->at = DAY0 + 12 * HOUR_S;
	return course_db_score_add(fx->db, s, &id, fx->err, sizeof(fx->err)) < 0 ? -1 : id;
}

static void test_course_db_scores(void **state)
{
	struct fixture *fx = *state;
	int64_t id = outcome_session(fx), other = 0;
	static const char *const good[] = { "0", "1", "1+", "2", "3", "4" };
	static const char *const bad[] = { "5", "1-", "+1", "1++", "", "2+", "-1" };
	const struct course_db_report_course *c;
	struct course_db_report *r = NULL;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct course_db_score s = { .session = id, .instrument = COURSE_DB_MODIFIED_ASHWORTH,
					     .muscle = "elbow_flexors", .mas_grade = good[i] };

		assert_true(score(fx, &s) > 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct course_db_score s = { .session = id, .instrument = COURSE_DB_MODIFIED_ASHWORTH,
					     .muscle = "elbow_flexors", .mas_grade = bad[i] };

		assert_int_equal(score(fx, &s), -1);
		assert_err_has(fx, "is not one of 0, 1, 1+, 2, 3, 4");
	}
	{
		struct course_db_score s = { .session = id, .phase = COURSE_DB_POST,
					     .instrument = COURSE_DB_MODIFIED_TARDIEU,
					     .muscle = "FCR", .r1_deg = 95, .r2_deg = 150 };

		assert_true(score(fx, &s) > 0);
		s.r2_deg = 181;
		assert_int_equal(score(fx, &s), -1);
		assert_err_has(fx, "R1 95 and R2 181 degrees must be within -180..180");
	}
	{
		struct course_db_score s = { .course = "C1", .instrument = COURSE_DB_FUGL_MEYER_UE,
					     .fugl_meyer = 66 };

		assert_true(score(fx, &s) > 0);
		s.fugl_meyer = 67;
		assert_int_equal(score(fx, &s), -1);
		assert_err_has(fx, "Fugl-Meyer UE 67 is out of range (0..66)");
		s.fugl_meyer = -1;
		assert_int_equal(score(fx, &s), -1);
		s.fugl_meyer = 30;
		s.course = "C9";
		assert_int_equal(score(fx, &s), -1);
		assert_err_has(fx, "patient P001 has no course C9");
		s.course = "C1";
		s.muscle = "FCR";
		assert_int_equal(score(fx, &s), -1);
		assert_err_has(fx, "not per muscle");
	}
	/* Another patient's session is refused without naming that patient. */
	rx_put(fx, fx->db, "P002", 10, 2, 0, 5000);
	assert_int_equal(begin(fx, "P002", "rig2", DAY0 + 10 * HOUR_S, &other), 0);
	{
		struct course_db_score s = { .session = other, .instrument = COURSE_DB_FUGL_MEYER_UE,
					     .fugl_meyer = 10 };

		assert_int_equal(score(fx, &s), -1);
		assert_err_has(fx, "is not a session of patient P001");
		s.session = other + 50;
		assert_int_equal(score(fx, &s), -1);
		assert_err_has(fx, "unknown");
	}
	c = outcome_report(fx, &r);
	assert_int_equal(c->n_scores, 8);
	assert_string_equal(c->scores[2].mas_grade, "1+");
	assert_string_equal(c->scores[2].muscle, "elbow_flexors");
	assert_int_equal(c->scores[2].fugl_meyer, -1);
	assert_int_equal(c->scores[6].instrument, COURSE_DB_MODIFIED_TARDIEU);
	assert_int_equal(c->scores[6].phase, COURSE_DB_POST);
	assert_true(c->scores[6].r1_deg == 95 && c->scores[6].r2_deg == 150);
	assert_int_equal(c->scores[7].session, 0);
	assert_int_equal(c->scores[7].fugl_meyer, 66);
	assert_string_equal(c->scores[7].author, "dr.a");
	course_db_report_free(r);
	/* The schema holds the ranges too: a grade written around the API is refused. */
	course_db_close(fx->db);
	fx->db = NULL;
	{
		sqlite3 *h = NULL;

		assert_int_equal(sqlite3_open(fx->path, &h), SQLITE_OK);
		assert_int_not_equal(sqlite3_exec(h, "INSERT INTO scores (patient, course, phase,"
						  " instrument, muscle, mas_grade, author, at)"
						  " VALUES ('P001', 'C1', 'pre', 'modified_ashworth',"
						  " 'FCR', '5', 'x', 0)", NULL, NULL, NULL),
				     SQLITE_OK);
		assert_int_not_equal(sqlite3_exec(h, "INSERT INTO scores (patient, course, phase,"
						  " instrument, fugl_meyer, author, at) VALUES"
						  " ('P001', 'C1', 'pre', 'fugl_meyer_ue', 67, 'x', 0)",
						  NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_course_db_migrate, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_newer_schema, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_limit_no_prescription, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_limit_running, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_limit_per_course, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_limit_per_day, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_limit_min_hours, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_limit_daily_cap, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_pulses_monotonic, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_pseudonyms, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_race_same_patient, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_race_two_patients, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_kill9, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_migrate_v2, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_assessment, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_course_db_scores, fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
