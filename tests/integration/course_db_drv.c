// SPDX-License-Identifier: MIT
/*
 * A rig's view of the course database for the tests (test_course_db.py):
 * opens one handle (one connection) and runs the commands it reads, one a
 * line, answering "ok ..." or "err RC MESSAGE" on one line each.
 *
 *   course_db_drv sqlite PATH [SCHEMA_TARGET]
 *   course_db_drv pg CONNINFO JOURNAL [SCHEMA_TARGET]
 *   course_db_drv pgclient CONNINFO JOURNAL	(COURSE_DB_CLIENT, as rpmsctl)
 *   course_db_drv pgcheck CONNINFO      (course_db_check_conninfo only)
 *
 * Commands: patient P | rx P C SESSIONS PER_DAY MIN_HOURS CAP |
 * begin P C RIG NOW DAY_START DAY_END | pulses ID N | end ID NOW N |
 * endr ID NOW N REASON | set ID INTENSITY MT ARM_CODE TARGET... |
 * note ID deviation|adverse NOW WHAT TEXT | daily P DAY_START DAY_END |
 * dose P C | sync | pending | version | check |
 * assess ID pre|post KIND AT ONSET DURATION CH/NAME=V,CH/NAME=V,... |
 * score P SESSION pre|post mas MUSCLE GRADE | score P SESSION pre|post
 * tardieu MUSCLE R1 R2 | score P SESSION pre|post fm TOTAL (SESSION 0: the
 * course C1) | outcomes P (the report's assessments and scores, one line) |
 * quit
 */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "course_db.h"

#define DRV_ARGS 8

static void drv_reply(int rc, const char *err, const char *ok)
{
	if (rc < 0) {
		printf("err %d %s\n", rc, err);
	} else {
		printf("ok%s%s\n", ok && *ok ? " " : "", ok ? ok : "");
	}
	fflush(stdout);
}

static int64_t drv_i(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

/* assess ID PHASE KIND AT ONSET DURATION RESULTS: a[1..4], then rest "ONSET DURATION R". */
static int drv_assess(struct course_db *db, char **a, char *rest, char *err, size_t errlen)
{
	/* a stretch block holds two results a fitted stretch: more than 16 */
	struct course_db_result res[64];
	struct course_db_assessment x = { 0 };
	char *s2 = NULL, *onset, *dur, *list, *s3 = NULL;
	size_t n = 0;

	onset = rest ? strtok_r(rest, " ", &s2) : NULL;
	dur = onset ? strtok_r(NULL, " ", &s2) : NULL;
	list = dur ? strtok_r(NULL, " ", &s2) : NULL;
	if (!a[4] || !dur) {
		snprintf(err, errlen, "assess: ID PHASE KIND AT ONSET DURATION [RESULTS]");
		return -EINVAL;
	}
	x.session = drv_i(a[1]);
	x.phase = strcmp(a[2], "post") ? COURSE_DB_PRE : COURSE_DB_POST;
	x.kind = !strcmp(a[3], "rest") ? COURSE_DB_ASSESS_REST :
		 !strcmp(a[3], "mvc") ? COURSE_DB_ASSESS_MVC :
		 !strcmp(a[3], "cci") ? COURSE_DB_ASSESS_CCI : COURSE_DB_ASSESS_STRETCH;
	x.at = drv_i(a[4]);
	x.onset_s = strtod(onset, NULL);
	x.duration_s = strtod(dur, NULL);
	for (char *t = list ? strtok_r(list, ",", &s3) : NULL; t;
	     t = strtok_r(NULL, ",", &s3)) {
		char *slash = strchr(t, '/'), *eq = strchr(t, '=');

		if (n == sizeof(res) / sizeof(res[0])) {
			snprintf(err, errlen, "assess: more than %zu results", n);
			return -E2BIG;
		}
		if (!slash || !eq) {
			snprintf(err, errlen, "assess: result '%s' is not CH/NAME=V", t);
			return -EINVAL;
		}
		*slash = *eq = '\0';
		res[n].channel = t;
		res[n].name = slash + 1;
		res[n++].value = strtod(eq + 1, NULL);
	}
	x.n_results = n;
	x.results = res;
	return course_db_assessment_add(db, &x, err, errlen);
}

/* score P SESSION PHASE INSTRUMENT ...: a[1..4], then rest. */
static int drv_score(struct course_db *db, char **a, char *rest, int64_t *id, char *err,
		     size_t errlen)
{
	struct course_db_score s = { .patient = a[1], .author = "drv", .at = 1795740000 };
	char *s2 = NULL, *f1 = rest ? strtok_r(rest, " ", &s2) : NULL;
	char *f2 = f1 ? strtok_r(NULL, " ", &s2) : NULL;
	char *f3 = f2 ? strtok_r(NULL, " ", &s2) : NULL;

	if (!a[4] || !f1) {
		snprintf(err, errlen, "score: P SESSION PHASE INSTRUMENT ...");
		return -EINVAL;
	}
	s.session = drv_i(a[2]);
	s.course = s.session ? NULL : "C1";
	s.phase = strcmp(a[3], "post") ? COURSE_DB_PRE : COURSE_DB_POST;
	if (!strcmp(a[4], "mas")) {
		s.instrument = COURSE_DB_MODIFIED_ASHWORTH;
		s.muscle = f1;
		s.mas_grade = f2;
	} else if (!strcmp(a[4], "tardieu")) {
		s.instrument = COURSE_DB_MODIFIED_TARDIEU;
		s.muscle = f1;
		s.r1_deg = f2 ? strtod(f2, NULL) : NAN;
		s.r2_deg = f3 ? strtod(f3, NULL) : NAN;
	} else {
		s.instrument = COURSE_DB_FUGL_MEYER_UE;
		s.fugl_meyer = (int)drv_i(f1);
	}
	return course_db_score_add(db, &s, id, err, errlen);
}

/* The report's outcomes of @patient on one line: "A:SESSION:PHASE:KIND:CH/NAME=V;..." and "S:...". */
static int drv_outcomes(struct course_db *db, const char *patient, char *err, size_t errlen)
{
	struct course_db_report *r = NULL;
	int rc = course_db_report(db, patient, NULL, &r, err, errlen);

	if (rc < 0) {
		return rc;
	}
	printf("ok");
	for (size_t i = 0; i < r->n_courses; i++) {
		const struct course_db_report_course *c = &r->courses[i];

		for (size_t j = 0; j < c->n_sessions; j++) {
			for (size_t k = 0; k < c->sessions[j].n_assessments; k++) {
				const struct course_db_report_assessment *x =
					&c->sessions[j].assessments[k];

				printf(" A:%" PRId64 ":%s:%s:%g:%g", c->sessions[j].id,
				       course_db_phase_name(x->phase),
				       course_db_assess_kind_name(x->kind), x->onset_s,
				       x->duration_s);
				for (size_t m = 0; m < x->n_results; m++) {
					printf("%c%s/%s=%.17g", m ? ';' : ':', x->results[m].channel,
					       x->results[m].name, x->results[m].value);
				}
			}
		}
		for (size_t j = 0; j < c->n_scores; j++) {
			const struct course_db_report_score *s = &c->scores[j];

			printf(" S:%" PRId64 ":%s:%s:%s:%s:%g:%g:%d", s->session,
			       course_db_phase_name(s->phase),
			       course_db_instrument_name(s->instrument), s->muscle, s->mas_grade,
			       s->r1_deg, s->r2_deg, s->fugl_meyer);
		}
	}
	printf("\n");
	fflush(stdout);
	course_db_report_free(r);
	return 0;
}

int main(int argc, char **argv)
{
	struct course_db_config cfg = { 0 };
	char err[COURSE_DB_ERR_MAX] = "";
	struct course_db *db = NULL;
	char line[4096];
	int rc;

	if (argc == 3 && !strcmp(argv[1], "pgcheck")) {
		rc = course_db_check_conninfo(argv[2], err, sizeof(err));
		drv_reply(rc, err, "check");
		return rc < 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "sqlite")) {
		cfg.backend = COURSE_DB_SQLITE;
		cfg.path = argv[2];
		cfg.schema_target = argc > 3 ? atoi(argv[3]) : 0;
	} else if (argc >= 4 && (!strcmp(argv[1], "pg") || !strcmp(argv[1], "pgclient"))) {
		/* pgclient: as rpmsctl opens it (COURSE_DB_CLIENT) */
		cfg.mode = strcmp(argv[1], "pg") ? COURSE_DB_CLIENT : COURSE_DB_RIG;
		cfg.backend = COURSE_DB_POSTGRESQL;
		cfg.conninfo = argv[2];
		cfg.journal = argv[3];
		cfg.schema_target = argc > 4 ? atoi(argv[4]) : 0;
	} else {
		fprintf(stderr, "usage: course_db_drv sqlite PATH [TARGET] | pg CONNINFO JOURNAL "
			"[TARGET]\n");
		return 2;
	}
	rc = course_db_open(&cfg, &db, err, sizeof(err));
	drv_reply(rc, err, "open");
	if (rc < 0) {
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		char *a[DRV_ARGS] = { 0 };
		char *save = NULL, *rest = NULL, out[128] = "";
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < DRV_ARGS;
		     t = strtok_r(NULL, n == 5 ? "" : " ", &save)) {
			a[n++] = t;
		}
		rest = a[5];
		err[0] = '\0';
		if (!a[0]) {
			continue;
		} else if (!strcmp(a[0], "quit")) {
			break;
		} else if (!strcmp(a[0], "patient")) {
			rc = course_db_patient_add(db, a[1], err, sizeof(err));
		} else if (!strcmp(a[0], "rx")) {
			char more[64] = "", *s2 = NULL;
			char *f[3] = { 0 };
			int k = 0;

			snprintf(more, sizeof(more), "%s", rest ? rest : "");
			for (char *t = strtok_r(more, " ", &s2); t && k < 3; t = strtok_r(NULL, " ", &s2)) {
				f[k++] = t;
			}
			struct course_db_prescription rx = {
				.patient = a[1], .course = a[2], .text = "[prescription]\n",
				.sessions_per_course = (int)drv_i(a[3]),
				.max_sessions_per_day = (int)drv_i(a[4]),
				.min_hours_between = f[0] ? strtod(f[0], NULL) : 0,
				.daily_pulse_cap = drv_i(f[1]),
			};
			rc = course_db_prescription_put(db, &rx, err, sizeof(err));
		} else if (!strcmp(a[0], "begin")) {
			int64_t id = 0, ds, de;
			char *s2 = NULL;

			ds = drv_i(strtok_r(rest, " ", &s2));
			de = drv_i(strtok_r(NULL, " ", &s2));
			rc = course_db_session_begin(db, a[1], a[2], a[3], drv_i(a[4]), ds, de, &id,
						     err, sizeof(err));
			snprintf(out, sizeof(out), "%" PRId64, id);
		} else if (!strcmp(a[0], "pulses")) {
			rc = course_db_pulses(db, drv_i(a[1]), drv_i(a[2]), err, sizeof(err));
		} else if (!strcmp(a[0], "end")) {
			rc = course_db_session_end(db, drv_i(a[1]), drv_i(a[2]), drv_i(a[3]), NULL,
						   err, sizeof(err));
		} else if (!strcmp(a[0], "endr")) {
			rc = course_db_session_end(db, drv_i(a[1]), drv_i(a[2]), drv_i(a[3]), a[4],
						   err, sizeof(err));
		} else if (!strcmp(a[0], "set")) {
			struct course_db_session_detail d = {
				.intensity_pct = a[2] ? strtod(a[2], NULL) : -1,
				.motor_threshold_pct = a[3] ? strtod(a[3], NULL) : -1,
				.arm_code = a[4] && strcmp(a[4], "-") ? a[4] : NULL,
				.target = rest,
			};

			rc = course_db_session_set(db, drv_i(a[1]), &d, err, sizeof(err));
		} else if (!strcmp(a[0], "note")) {
			rc = course_db_note_add(db, drv_i(a[1]), strcmp(a[2], "deviation") ?
						COURSE_DB_ADVERSE : COURSE_DB_DEVIATION,
						drv_i(a[3]), a[4], rest ? rest : "", err,
						sizeof(err));
		} else if (!strcmp(a[0], "daily")) {
			int64_t p = 0;

			rc = course_db_daily_pulses(db, a[1], drv_i(a[2]), drv_i(a[3]), &p, err,
						    sizeof(err));
			snprintf(out, sizeof(out), "%" PRId64, p);
		} else if (!strcmp(a[0], "dose")) {
			struct course_db_dose d;

			rc = course_db_course_dose(db, a[1], a[2], &d, err, sizeof(err));
			snprintf(out, sizeof(out), "%" PRId64 " %" PRId64, d.sessions, d.pulses);
		} else if (!strcmp(a[0], "sync")) {
			rc = course_db_sync(db, err, sizeof(err));
		} else if (!strcmp(a[0], "pending")) {
			int64_t p = course_db_pending(db, err, sizeof(err));

			rc = p < 0 ? (int)p : 0;
			snprintf(out, sizeof(out), "%" PRId64, p);
		} else if (!strcmp(a[0], "assess")) {
			rc = drv_assess(db, a, rest, err, sizeof(err));
		} else if (!strcmp(a[0], "score")) {
			int64_t id = 0;

			rc = drv_score(db, a, rest, &id, err, sizeof(err));
			snprintf(out, sizeof(out), "%" PRId64, id);
		} else if (!strcmp(a[0], "outcomes")) {
			rc = drv_outcomes(db, a[1], err, sizeof(err));
			if (rc == 0) {
				continue;	/* answered there */
			}
		} else if (!strcmp(a[0], "version")) {
			rc = course_db_schema_version(db, err, sizeof(err));
			snprintf(out, sizeof(out), "%d", rc);
		} else if (!strcmp(a[0], "check")) {
			rc = course_db_check(db, err, sizeof(err));
		} else {
			rc = -EINVAL;
			snprintf(err, sizeof(err), "unknown command %s", a[0]);
		}
		drv_reply(rc, err, out);
	}
	course_db_close(db);
	return 0;
}
