// SPDX-License-Identifier: MIT
/*
 * rpmsctl course: a patient's course (sessions, dose, thresholds,
 * deviations, adverse events) read from the course database the
 * configuration's [course_db] keys name, and adverse-event notes entered
 * into it. It opens the database as a client (COURSE_DB_CLIENT): never
 * creates, migrates or syncs anything, so it is safe beside a running
 * daemon and from any machine that reaches the database.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "course_db.h"
#include "course_db_config.h"
#include "prescription.h"
#include "rpmsd-build.h"
#include "rpmsctl_control.h"
#include "rpmsctl_course.h"
#include "rpmsctl_db.h"
#include "zone.h"

struct rpmsctl_course {
	const char *config;
	const char *patient;
	const char *course;
	const char *adverse;
	int64_t session;	/* note: 0 until --session */
	bool json;
	bool note;
	struct zone *zone;	/* safety.day_zone; NULL: UTC */
	char zone_why[COURSE_DB_ERR_MAX + 128];	/* why UTC, when the zone is unusable */
	struct rpmsctl_db *store;
	struct course_db *db;			/* store's */
	const struct course_db_config *dbc;	/* store's */
};

void rpmsctl_course_usage(FILE *f)
{
	fprintf(f,
		"\n"
		"The course database (docs/course_db.md; read directly, the daemon need not run):\n"
		"  course PATIENT [--course ID] [--config FILE] [--json]\n"
		"                     the patient's course: sessions, pulses, intensity,\n"
		"                     motor threshold, end reasons, deviations, adverse events,\n"
		"                     the course's dose; times in safety.day_zone\n"
		"  course note PATIENT --session ID --adverse TEXT [--config FILE]\n"
		"                     add an adverse-event note to one of PATIENT's sessions,\n"
		"                     under your user name; said saved once read back\n"
		"Options of course:\n"
		"  -c, --config FILE  rpmsd's configuration ([course_db], daemon.state_dir,\n"
		"                     safety.day_zone; default %s)\n"
		"  -C, --course ID    one course of the patient (default: all of them)\n"
		"  -j, --json         one JSON object for programs\n"
		"  -s, --session ID   note: the session (its id in the report)\n"
		"  -a, --adverse TEXT note: the adverse event, as free text\n"
		"Exit status of course: 0 done, 1 refused by the database (unknown patient,\n"
		"course or session), 2 usage error, 3 database unreachable, 4 a local error\n"
		"(configuration, database file).\n",
		RPMSD_CONFIG_FILE);
}

/* "rpmsctl course: ..." on stderr; the exit status @status. */
#define rpmsctl_course_fail(status, ...) rpmsctl_db_fail("course", (status), __VA_ARGS__)

/* ---- options ------------------------------------------------------------- */

static int rpmsctl_course_options(struct rpmsctl_course *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "course", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "session", required_argument, NULL, 's' },
		{ "adverse", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *session = NULL;
	char *end;
	int opt, npos;

	c->config = RPMSD_CONFIG_FILE;
	opterr = 0;
	optind = 0;	/* 0: glibc starts afresh (rpmsctl.c parsed with a leading '+') */
	while ((opt = getopt_long(argc, argv, ":c:C:js:a:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c->config = optarg;
			break;
		case 'C':
			c->course = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 's':
			session = optarg;
			break;
		case 'a':
			c->adverse = optarg;
			break;
		case 'h':
			rpmsctl_course_usage(stdout);
			return -1;
		default:
			return rpmsctl_control_getopt_error("course", opt, argv);
		}
	}
	npos = argc - optind;
	/* "course note PATIENT": a patient called "note" is still reachable alone */
	if (npos == 2 && !strcmp(argv[optind], "note")) {
		c->note = true;
		c->patient = argv[optind + 1];
	} else if (npos == 1) {
		c->patient = argv[optind];
	} else {
		return rpmsctl_control_usage_error(npos == 0 ? "course: missing PATIENT" :
						   "course: expected PATIENT or note PATIENT, "
						   "got %d arguments", npos);
	}
	if (c->note) {
		if (!session || !c->adverse) {
			return rpmsctl_control_usage_error("course note: needs --session ID and "
							   "--adverse TEXT");
		}
		if (c->course || c->json) {
			return rpmsctl_control_usage_error("course note: takes no --course or "
							   "--json");
		}
		errno = 0;
		c->session = strtoll(session, &end, 10);
		if (errno || end == session || *end || c->session <= 0) {
			return rpmsctl_control_usage_error("course note: --session: '%s' is not "
							   "a session id (a positive integer)",
							   session);
		}
	} else if (session || c->adverse) {
		return rpmsctl_control_usage_error("course: --session and --adverse belong to "
						   "'course note PATIENT'");
	}
	return 0;
}

/* ---- the configuration and the database ---------------------------------- */

static int rpmsctl_course_open(struct rpmsctl_course *c)
{
	const struct rpmsd_config *cfg;
	char err[COURSE_DB_ERR_MAX];
	int rc;

	rc = rpmsctl_db_open("course", c->config, &c->store);
	if (rc != RPMSCTL_CONTROL_OK) {
		return rc;
	}
	c->db = rpmsctl_db_handle(c->store);
	c->dbc = rpmsctl_db_dbc(c->store);
	cfg = rpmsctl_db_config(c->store);
	if (zone_load(cfg->safety.day_zone, &c->zone, err, sizeof(err)) < 0) {
		/* The times are still true in UTC; the report says which it used. */
		snprintf(c->zone_why, sizeof(c->zone_why), "safety.day_zone %s: %s",
			 cfg->safety.day_zone, err);
		c->zone = NULL;
	}
	return 0;
}

/* ---- formatting ---------------------------------------------------------- */

/* "YYYY-MM-DD HH:MM" of @t in the report's zone (UTC without one). */
static void rpmsctl_course_time(const struct rpmsctl_course *c, int64_t t, char *buf,
				size_t len)
{
	int64_t local = t + (c->zone ? zone_offset(c->zone, t, NULL) : 0);
	int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
	int64_t sec = local - days * 86400, y;
	unsigned m, d;

	zone_civil_from_days(days, &y, &m, &d);
	snprintf(buf, len, "%04" PRId64 "-%02u-%02u %02d:%02d", y, m, d, (int)(sec / 3600),
		 (int)(sec % 3600 / 60));
}

/* "HH:MM" of @t, with the date when it is not @day's. */
static void rpmsctl_course_clock(const struct rpmsctl_course *c, int64_t t, int64_t day,
				 char *buf, size_t len)
{
	char a[32], b[32];

	rpmsctl_course_time(c, t, a, sizeof(a));
	rpmsctl_course_time(c, day, b, sizeof(b));
	snprintf(buf, len, "%s", strncmp(a, b, 10) ? a : a + 11);
}

/* @s safe for a terminal, on one line: controls and DEL become '?'. */
static void rpmsctl_course_put(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
	}
}

/*
 * The prescribed pulses a session, from the prescription text as stored
 * (prescription_load through a memory file); 0 when the text is not a
 * prescription file this build reads.
 */
static int rpmsctl_course_rx_pulses(const char *text)
{
	struct prescription *rx;
	char path[64], err[512];
	int fd, pulses = 0;
	size_t n;

	if (!text) {
		return 0;
	}
	fd = memfd_create("rpmsctl-rx", MFD_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	n = strlen(text);
	rx = malloc(sizeof(*rx));
	if (rx && write(fd, text, n) == (ssize_t)n) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (prescription_load(rx, path, err, sizeof(err)) == 0) {
			pulses = rx->protocol.pulses;
		}
	}
	free(rx);
	close(fd);
	return pulses;
}

static const char *rpmsctl_course_zone(const struct rpmsctl_course *c)
{
	return c->zone ? zone_name(c->zone) : "UTC";
}

/* ---- text ------------------------------------------------------------------ */

static void rpmsctl_course_text_notes(const struct rpmsctl_course *c,
				      const struct course_db_report_session *s)
{
	for (size_t k = 0; k < s->n_notes; k++) {
		const struct course_db_report_note *n = &s->notes[k];
		char at[32];

		rpmsctl_course_clock(c, n->at, s->started, at, sizeof(at));
		if (n->kind == COURSE_DB_DEVIATION) {
			printf("        deviation %s: ", at);
			rpmsctl_course_put(stdout, n->what);
			fputs(": ", stdout);
		} else {
			printf("        ADVERSE EVENT %s (note %" PRId64 ", entered by ", at, n->id);
			rpmsctl_course_put(stdout, n->what);
			fputs("): ", stdout);
		}
		rpmsctl_course_put(stdout, n->text);
		fputc('\n', stdout);
	}
}

/* A session's assessments: what, when in its recording, and every result. */
static void rpmsctl_course_text_assessments(const struct course_db_report_session *s)
{
	for (size_t k = 0; k < s->n_assessments; k++) {
		const struct course_db_report_assessment *a = &s->assessments[k];

		printf("        assessment %s %s: %.1f s at %.1f s of the recording:",
		       course_db_phase_name(a->phase), course_db_assess_kind_name(a->kind),
		       a->duration_s, a->onset_s);
		for (size_t m = 0; m < a->n_results; m++) {
			printf("%s %s%s%s %.4g", m ? "," : "", a->results[m].channel,
			       a->results[m].channel[0] ? " " : "", a->results[m].name,
			       a->results[m].value);
		}
		fputc('\n', stdout);
	}
}

/* The course's clinical scores, in the order entered. */
static void rpmsctl_course_text_scores(const struct rpmsctl_course *c,
				       const struct course_db_report_course *k)
{
	char at[32], on[32];

	if (k->n_scores) {
		printf("\n  clinical scores:\n");
	}
	for (size_t i = 0; i < k->n_scores; i++) {
		const struct course_db_report_score *x = &k->scores[i];

		rpmsctl_course_time(c, x->at, at, sizeof(at));
		if (x->session > 0) {
			snprintf(on, sizeof(on), "session %" PRId64, x->session);
		} else {
			snprintf(on, sizeof(on), "course");
		}
		printf("    %-12s %-4s ", on, course_db_phase_name(x->phase));
		switch (x->instrument) {
		case COURSE_DB_MODIFIED_ASHWORTH:
			printf("Modified Ashworth %s: %s", x->muscle, x->mas_grade);
			break;
		case COURSE_DB_MODIFIED_TARDIEU:
			printf("Modified Tardieu %s: R1 %g, R2 %g, R2-R1 %g degrees", x->muscle,
			       x->r1_deg, x->r2_deg, x->r2_deg - x->r1_deg);
			break;
		default:
			printf("Fugl-Meyer UE: %d/%d", x->fugl_meyer, COURSE_DB_FUGL_MEYER_UE_MAX);
			break;
		}
		printf(" (score %" PRId64 ", entered by %s at %s)\n", x->id, x->author, at);
	}
}

static void rpmsctl_course_text_course(const struct rpmsctl_course *c,
				       const struct course_db_report_course *k)
{
	int per = rpmsctl_course_rx_pulses(k->text);
	int64_t left = k->sessions_per_course - k->dose.sessions;
	char when[32], pulses[48], num[24];

	printf("course %s: %d sessions, at most %d a day, at least %g h apart, daily cap %"
	       PRId64 " pulses", k->course, k->sessions_per_course, k->max_sessions_per_day,
	       k->min_hours_between, k->daily_pulse_cap);
	if (per > 0) {
		printf(", %d pulses a session", per);
	}
	printf("\n\n");
	if (!k->n_sessions) {
		printf("  no sessions yet\n");
	} else {
		printf("  %3s %7s  %-16s  %-12s %11s %7s %6s  %-8s %s\n", "#", "session",
		       "started", "rig", "pulses", "int %", "MT %", "arm", "end");
	}
	for (size_t i = 0; i < k->n_sessions; i++) {
		const struct course_db_report_session *s = &k->sessions[i];
		char inten[16] = "-", mt[16] = "-";

		rpmsctl_course_time(c, s->started, when, sizeof(when));
		if (per > 0) {
			snprintf(pulses, sizeof(pulses), "%" PRId64 "/%d", s->pulses, per);
		} else {
			snprintf(pulses, sizeof(pulses), "%" PRId64, s->pulses);
		}
		if (s->intensity_pct >= 0) {
			snprintf(inten, sizeof(inten), "%.1f", s->intensity_pct);
		}
		if (s->motor_threshold_pct >= 0) {
			snprintf(mt, sizeof(mt), "%.1f", s->motor_threshold_pct);
		}
		printf("  %3zu %7" PRId64 "  %-16s  %-12s %11s %7s %6s  %-8s ", i + 1, s->id, when,
		       s->rig, pulses, inten, mt, s->arm_code[0] ? s->arm_code : "-");
		if (s->stopped < 0) {
			fputs("not ended (running, or its end not on the server yet)", stdout);
		} else {
			rpmsctl_course_clock(c, s->stopped, s->started, when, sizeof(when));
			rpmsctl_course_put(stdout, s->stop_reason ? s->stop_reason : "?");
			printf(" at %s", when);
		}
		fputc('\n', stdout);
		if (s->target && *s->target) {
			fputs("        target: ", stdout);
			rpmsctl_course_put(stdout, s->target);
			fputc('\n', stdout);
		}
		rpmsctl_course_text_notes(c, s);
		rpmsctl_course_text_assessments(s);
	}
	rpmsctl_course_text_scores(c, k);
	snprintf(num, sizeof(num), "%" PRId64, left > 0 ? left : 0);
	printf("\n  sessions: %" PRId64 " of %d (%s left); pulses: %" PRId64 " delivered",
	       k->dose.sessions, k->sessions_per_course, num, k->dose.pulses);
	if (per > 0) {
		printf(" of %" PRId64 " prescribed for the course",
		       (int64_t)per * k->sessions_per_course);
	}
	printf("\n\n");
}

static void rpmsctl_course_text(const struct rpmsctl_course *c, const struct course_db_report *r)
{
	printf("patient %s: %zu course(s) in the %s course database%s%s\n", r->patient,
	       r->n_courses, r->backend, c->dbc->path ? " " : "", c->dbc->path ? c->dbc->path : "");
	printf("times in %s (%s)\n\n", rpmsctl_course_zone(c),
	       c->zone ? "safety.day_zone" : c->zone_why);
	for (size_t i = 0; i < r->n_courses; i++) {
		rpmsctl_course_text_course(c, &r->courses[i]);
	}
	if (c->dbc->backend != COURSE_DB_POSTGRESQL) {
		return;
	}
	if (r->pending > 0) {
		printf("INCOMPLETE: %" PRId64 " entries of this rig's journal %s are not on the "
		       "server yet: pulses, ends and notes above may be missing them\n", r->pending,
		       c->dbc->journal);
	} else if (r->pending == 0) {
		printf("this rig's journal %s: every entry is on the server\n", c->dbc->journal);
	} else {
		printf("MAY BE INCOMPLETE: %s\n", r->pending_why);
	}
	printf("(entries other rigs hold in their journals are not shown until they sync)\n");
}

/* ---- JSON ------------------------------------------------------------------ */

/*
 * @s as a JSON string; text that is not UTF-8 (a database written by
 * something else) keeps its ASCII and gets '?' for the other bytes, so it
 * is shown rather than dropped. NULL only when out of memory.
 */
static json_t *rpmsctl_course_jstr(const char *s)
{
	json_t *v;
	char *copy;

	if (!s) {
		return json_null();
	}
	v = json_string(s);
	if (v || !(copy = strdup(s))) {
		return v;
	}
	for (char *p = copy; *p; p++) {
		if ((unsigned char)*p >= 0x80) {
			*p = '?';
		}
	}
	v = json_string(copy);
	free(copy);
	return v;
}

/* Append @v to @a; false (and @v freed) when @v is NULL or the append fails. */
static bool rpmsctl_course_jadd(json_t *a, json_t *v)
{
	return v && json_array_append_new(a, v) == 0;
}

static json_t *rpmsctl_course_jpct(double v)
{
	return v >= 0 && isfinite(v) ? json_real(v) : json_null();
}

/* A session's assessments as JSON: results as [{channel, name, value}]. */
static json_t *rpmsctl_course_json_assessments(const struct course_db_report_session *s)
{
	json_t *all = json_array();

	for (size_t k = 0; all && k < s->n_assessments; k++) {
		const struct course_db_report_assessment *a = &s->assessments[k];
		json_t *res = json_array();

		for (size_t m = 0; res && m < a->n_results; m++) {
			if (!rpmsctl_course_jadd(res, json_pack("{s:s, s:s, s:f}", "channel",
							       a->results[m].channel, "name",
							       a->results[m].name, "value",
							       a->results[m].value))) {
				json_decref(res);
				res = NULL;
			}
		}
		if (!res || !rpmsctl_course_jadd(all, json_pack(
			"{s:I, s:s, s:s, s:I, s:f, s:f, s:o}", "id", (json_int_t)a->id,
			"phase", course_db_phase_name(a->phase),
			"kind", course_db_assess_kind_name(a->kind), "at", (json_int_t)a->at,
			"edf_onset_s", a->onset_s, "edf_duration_s", a->duration_s,
			"results", res))) {
			json_decref(all);
			return NULL;
		}
	}
	return all;
}

static json_t *rpmsctl_course_jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* A course's clinical scores as JSON; the instrument's fields, the others null. */
static json_t *rpmsctl_course_json_scores(const struct course_db_report_course *k)
{
	json_t *all = json_array();

	for (size_t i = 0; all && i < k->n_scores; i++) {
		const struct course_db_report_score *x = &k->scores[i];
		bool t = x->instrument == COURSE_DB_MODIFIED_TARDIEU;

		if (!rpmsctl_course_jadd(all, json_pack(
			"{s:I, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:I}",
			"id", (json_int_t)x->id,
			"session", x->session > 0 ? json_integer(x->session) : json_null(),
			"phase", course_db_phase_name(x->phase),
			"instrument", course_db_instrument_name(x->instrument),
			"muscle", rpmsctl_course_jstr(x->muscle[0] ? x->muscle : NULL),
			"mas_grade", rpmsctl_course_jstr(x->mas_grade[0] ? x->mas_grade : NULL),
			"r1_deg", t ? rpmsctl_course_jnum(x->r1_deg) : json_null(),
			"r2_deg", t ? rpmsctl_course_jnum(x->r2_deg) : json_null(),
			"r2_minus_r1_deg", t ? rpmsctl_course_jnum(x->r2_deg - x->r1_deg) :
			json_null(),
			"fugl_meyer_ue", x->fugl_meyer >= 0 ? json_integer(x->fugl_meyer) :
			json_null(),
			"entered_by", x->author, "at", (json_int_t)x->at))) {
			json_decref(all);
			return NULL;
		}
	}
	return all;
}

static json_t *rpmsctl_course_json_session(const struct rpmsctl_course *c,
					   const struct course_db_report_session *s, size_t i)
{
	json_t *notes = json_array(), *assessments;
	char when[32];

	for (size_t k = 0; k < s->n_notes; k++) {
		const struct course_db_report_note *n = &s->notes[k];
		bool dev = n->kind == COURSE_DB_DEVIATION;

		if (!rpmsctl_course_jadd(notes, json_pack("{s:I, s:s, s:I, s:o, s:o}", "id",
							  (json_int_t)n->id, "kind",
							  dev ? "deviation" : "adverse", "at",
							  (json_int_t)n->at,
							  dev ? "what" : "entered_by",
							  rpmsctl_course_jstr(n->what), "text",
							  rpmsctl_course_jstr(n->text)))) {
			/* never a report with a note missing */
			json_decref(notes);
			return NULL;
		}
	}
	rpmsctl_course_time(c, s->started, when, sizeof(when));
	assessments = rpmsctl_course_json_assessments(s);
	if (!assessments) {
		json_decref(notes);
		return NULL;
	}
	return json_pack("{s:I, s:I, s:s, s:I, s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, "
			 "s:o, s:o}",
			 "number", (json_int_t)(i + 1), "id", (json_int_t)s->id, "rig", s->rig,
			 "started", (json_int_t)s->started, "started_local", when,
			 "stopped", s->stopped < 0 ? json_null() : json_integer(s->stopped),
			 "end_reason", rpmsctl_course_jstr(s->stop_reason),
			 "pulses", (json_int_t)s->pulses,
			 "intensity_pct", rpmsctl_course_jpct(s->intensity_pct),
			 "motor_threshold_pct", rpmsctl_course_jpct(s->motor_threshold_pct),
			 "target", rpmsctl_course_jstr(s->target),
			 "arm_code", rpmsctl_course_jstr(s->arm_code[0] ? s->arm_code : NULL),
			 "edf_file", rpmsctl_course_jstr(s->edf_file),
			 "edf_sha256", rpmsctl_course_jstr(s->edf_sha256[0] ? s->edf_sha256 : NULL),
			 "notes", notes, "assessments", assessments);
}

static int rpmsctl_course_json(const struct rpmsctl_course *c, const struct course_db_report *r)
{
	json_t *courses = json_array(), *root;
	bool ok = courses != NULL;
	int rc;

	for (size_t i = 0; i < r->n_courses; i++) {
		const struct course_db_report_course *k = &r->courses[i];
		int per = rpmsctl_course_rx_pulses(k->text);
		json_t *sessions = json_array();

		ok = ok && sessions;
		for (size_t j = 0; ok && j < k->n_sessions; j++) {
			ok = rpmsctl_course_jadd(sessions,
						 rpmsctl_course_json_session(c, &k->sessions[j], j));
		}
		if (!ok) {
			json_decref(sessions);
			break;
		}
		json_t *scores = rpmsctl_course_json_scores(k);

		if (!scores) {
			json_decref(sessions);
			ok = false;
			break;
		}
		ok = rpmsctl_course_jadd(courses, json_pack(
			"{s:s, s:{s:i, s:i, s:f, s:I, s:o, s:o}, s:{s:I, s:I}, s:o, s:o}",
			"course", k->course, "prescription",
			"sessions_per_course", k->sessions_per_course,
			"max_sessions_per_day", k->max_sessions_per_day,
			"min_hours_between", k->min_hours_between,
			"daily_pulse_cap", (json_int_t)k->daily_pulse_cap,
			"pulses_per_session", per > 0 ? json_integer(per) : json_null(),
			"text", rpmsctl_course_jstr(k->text),
			"dose", "sessions", (json_int_t)k->dose.sessions,
			"pulses", (json_int_t)k->dose.pulses, "sessions", sessions,
			"scores", scores));
	}
	if (!ok) {
		json_decref(courses);
		return rpmsctl_course_fail(RPMSCTL_CONTROL_LOCAL, "JSON: out of memory");
	}
	root = json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:o}", "patient", r->patient,
			 "backend", r->backend, "database", rpmsctl_course_jstr(c->dbc->path),
			 "time_zone", rpmsctl_course_zone(c),
			 "pending_journal_entries",
			 c->dbc->backend != COURSE_DB_POSTGRESQL ? json_integer(0) :
			 r->pending < 0 ? json_null() : json_integer(r->pending),
			 "pending_why", rpmsctl_course_jstr(r->pending < 0 ? r->pending_why : NULL),
			 "courses", courses);
	if (!root) {
		return rpmsctl_course_fail(RPMSCTL_CONTROL_LOCAL, "JSON: out of memory");
	}
	rc = json_dumpf(root, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	if (rc < 0 || fputc('\n', stdout) == EOF) {
		return rpmsctl_course_fail(RPMSCTL_CONTROL_LOCAL, "writing the report failed");
	}
	return RPMSCTL_CONTROL_OK;
}

/* ---- commands --------------------------------------------------------------- */

static int rpmsctl_course_report(struct rpmsctl_course *c)
{
	struct course_db_report *r = NULL;
	char err[COURSE_DB_ERR_MAX];
	int rc;

	rc = course_db_report(c->db, c->patient, c->course, &r, err, sizeof(err));
	if (rc < 0) {
		return rpmsctl_course_fail(rpmsctl_db_status(rc), "%s", err);
	}
	if (c->json) {
		rc = rpmsctl_course_json(c, r);
	} else {
		rpmsctl_course_text(c, r);
		rc = fflush(stdout) == 0 ? RPMSCTL_CONTROL_OK :
		     rpmsctl_course_fail(RPMSCTL_CONTROL_LOCAL, "writing the report failed");
	}
	course_db_report_free(r);
	return rc;
}

/* The note @id as the database has it now, or NULL. */
static const struct course_db_report_note *rpmsctl_course_find(const struct course_db_report *r,
							       int64_t session, int64_t id)
{
	for (size_t i = 0; i < r->n_courses; i++) {
		for (size_t j = 0; j < r->courses[i].n_sessions; j++) {
			const struct course_db_report_session *s = &r->courses[i].sessions[j];

			for (size_t k = 0; s->id == session && k < s->n_notes; k++) {
				if (s->notes[k].id == id) {
					return &s->notes[k];
				}
			}
		}
	}
	return NULL;
}

static int rpmsctl_course_note(struct rpmsctl_course *c)
{
	const struct course_db_report_note *n;
	struct course_db_report *r = NULL;
	char err[COURSE_DB_ERR_MAX], who[COURSE_DB_ID_MAX + 1], at[32];
	struct passwd *pw = getpwuid(getuid());
	int64_t id = 0, now = (int64_t)time(NULL);
	int rc;

	/* Who entered it: the login of the real user (under sudo: the one sudo ran as). */
	if (pw && pw->pw_name && strlen(pw->pw_name) <= COURSE_DB_ID_MAX) {
		snprintf(who, sizeof(who), "%s", pw->pw_name);
	} else {
		snprintf(who, sizeof(who), "uid %u", (unsigned)getuid());
	}
	rc = course_db_adverse_add(c->db, c->patient, c->session, now, who, c->adverse, &id, err,
				   sizeof(err));
	if (rc < 0) {
		return rpmsctl_course_fail(rpmsctl_db_status(rc), "%s", err);
	}
	/* Saved is said only after the database gives the note back as written. */
	rc = course_db_report(c->db, c->patient, NULL, &r, err, sizeof(err));
	if (rc < 0) {
		return rpmsctl_course_fail(rpmsctl_db_status(rc), "note %" PRId64 " written "
					   "but not read back: %s", id, err);
	}
	n = rpmsctl_course_find(r, c->session, id);
	if (!n || n->kind != COURSE_DB_ADVERSE || !n->text || strcmp(n->text, c->adverse) ||
	    !n->what || strcmp(n->what, who)) {
		course_db_report_free(r);
		return rpmsctl_course_fail(RPMSCTL_CONTROL_REFUSED, "note %" PRId64 " on session %"
					   PRId64 " was written but does not read back as written: "
					   "enter it again", id, c->session);
	}
	rpmsctl_course_time(c, now, at, sizeof(at));
	printf("adverse-event note %" PRId64 " saved on session %" PRId64 " of patient %s, "
	       "entered by %s at %s %s\n", id, c->session, c->patient, who, at,
	       rpmsctl_course_zone(c));
	course_db_report_free(r);
	return RPMSCTL_CONTROL_OK;
}

int rpmsctl_course_main(int argc, char **argv)
{
	struct rpmsctl_course c = { 0 };
	int rc;

	rc = rpmsctl_course_options(&c, argc, argv);
	if (rc != 0) {
		return rc < 0 ? RPMSCTL_CONTROL_OK : rc;
	}
	rc = rpmsctl_course_open(&c);
	if (rc == 0) {
		rc = c.note ? rpmsctl_course_note(&c) : rpmsctl_course_report(&c);
	}
	zone_free(c.zone);
	rpmsctl_db_close(c.store);
	return rc;
}
