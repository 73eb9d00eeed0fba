// SPDX-License-Identifier: MIT
/*
 * The course report (course_db_report) and adverse-event notes
 * (course_db_adverse_add): the front end's checks and the report's memory.
 * A backend reads its rows in one read transaction and hands them, one at a
 * time, to the course_db_report_*_add functions here, which copy them and
 * hold the bounds (COURSE_DB_REPORT_SESSIONS_MAX, _NOTES_MAX): a report
 * that would not fit is refused, never cut short.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "course_db.h"
#include "course_db_private.h"

/* The report's own counts: how much it holds, for the bounds. */
struct course_db_report_alloc {
	size_t sessions;
	size_t notes;
};

/* A copy of @s (NULL stays NULL); false when out of memory. */
static bool course_db_report_dup(char **dst, const char *s)
{
	*dst = NULL;
	if (!s) {
		return true;
	}
	*dst = strdup(s);
	return *dst != NULL;
}

/* Grow the array *@a of *@n elements of @size by one, zeroed; NULL when out of memory. */
static void *course_db_report_grow(void **a, size_t *n, size_t size)
{
	char *p = realloc(*a, (*n + 1) * size);

	if (!p) {
		return NULL;
	}
	*a = p;
	memset(p + *n * size, 0, size);
	return p + (*n)++ * size;
}

int course_db_report_nomem(char *err, size_t errlen)
{
	return course_db_fail(-ENOMEM, err, errlen, "course report: out of memory");
}

struct course_db_report_course *course_db_report_course_find(struct course_db_report *r,
							     const char *course)
{
	struct course_db_report_course *c = NULL;

	for (size_t i = 0; i < r->n_courses; i++) {
		if (!strcmp(r->courses[i].course, course)) {
			c = &r->courses[i];
		}
	}
	return c;
}

/* The bounds are counted over the whole report: the sum of every course's. */
static void course_db_report_count(const struct course_db_report *r,
				   struct course_db_report_alloc *a)
{
	a->sessions = 0;
	a->notes = 0;
	for (size_t i = 0; i < r->n_courses; i++) {
		a->sessions += r->courses[i].n_sessions;
		for (size_t j = 0; j < r->courses[i].n_sessions; j++) {
			a->notes += r->courses[i].sessions[j].n_notes;
		}
	}
}

int course_db_report_course_add(struct course_db_report *r,
				const struct course_db_report_course *c, char *err, size_t errlen)
{
	struct course_db_report_course *d;

	if (r->n_courses >= COURSE_DB_REPORT_SESSIONS_MAX) {
		return course_db_fail(-EFBIG, err, errlen,
				      "course report: patient %s has more than %d courses "
				      "(refused rather than cut short; use --course)",
				      r->patient, COURSE_DB_REPORT_SESSIONS_MAX);
	}
	/* libpq holds a whole result: the backends ask for at most one row past a bound. */
	d = course_db_report_grow((void **)&r->courses, &r->n_courses, sizeof(*d));
	if (!d) {
		return course_db_report_nomem(err, errlen);
	}
	snprintf(d->course, sizeof(d->course), "%s", c->course);
	d->sessions_per_course = c->sessions_per_course;
	d->max_sessions_per_day = c->max_sessions_per_day;
	d->min_hours_between = c->min_hours_between;
	d->daily_pulse_cap = c->daily_pulse_cap;
	if (!course_db_report_dup(&d->text, c->text)) {
		return course_db_report_nomem(err, errlen);
	}
	return 0;
}

int course_db_report_session_add(struct course_db_report *r, const char *course,
				 const struct course_db_report_session *s, char *err, size_t errlen)
{
	struct course_db_report_course *c = course_db_report_course_find(r, course);
	struct course_db_report_session *d;
	struct course_db_report_alloc a;

	if (!c) {
		/* The schema's foreign key makes this a broken database, not a caller's slip. */
		return course_db_fail(-EBADMSG, err, errlen,
				      "course report: session %" PRId64 " of course %s, "
				      "which has no prescription", s->id, course);
	}
	course_db_report_count(r, &a);
	if (a.sessions >= COURSE_DB_REPORT_SESSIONS_MAX) {
		return course_db_fail(-EFBIG, err, errlen,
				      "course report: patient %s has more than %d sessions "
				      "(refused rather than cut short; use --course)",
				      r->patient, COURSE_DB_REPORT_SESSIONS_MAX);
	}
	d = course_db_report_grow((void **)&c->sessions, &c->n_sessions, sizeof(*d));
	if (!d) {
		return course_db_report_nomem(err, errlen);
	}
	d->id = s->id;
	snprintf(d->rig, sizeof(d->rig), "%s", s->rig);
	d->started = s->started;
	d->stopped = s->stopped;
	d->pulses = s->pulses;
	d->intensity_pct = s->intensity_pct;
	d->motor_threshold_pct = s->motor_threshold_pct;
	snprintf(d->arm_code, sizeof(d->arm_code), "%s", s->arm_code);
	snprintf(d->edf_sha256, sizeof(d->edf_sha256), "%s", s->edf_sha256);
	if (!course_db_report_dup(&d->stop_reason, s->stop_reason) ||
	    !course_db_report_dup(&d->target, s->target) ||
	    !course_db_report_dup(&d->edf_file, s->edf_file)) {
		return course_db_report_nomem(err, errlen);
	}
	c->dose.sessions++;
	c->dose.pulses += s->pulses;
	return 0;
}

int course_db_report_note_add(struct course_db_report *r, int64_t session,
			      const struct course_db_report_note *n, char *err, size_t errlen)
{
	struct course_db_report_session *s = NULL;
	struct course_db_report_note *d;
	struct course_db_report_alloc a;

	for (size_t i = 0; i < r->n_courses && !s; i++) {
		for (size_t j = 0; j < r->courses[i].n_sessions; j++) {
			if (r->courses[i].sessions[j].id == session) {
				s = &r->courses[i].sessions[j];
				break;
			}
		}
	}
	if (!s) {
		return course_db_fail(-EBADMSG, err, errlen,
				      "course report: note %" PRId64 " of session %" PRId64
				      ", which is not in the report", n->id, session);
	}
	course_db_report_count(r, &a);
	if (a.notes >= COURSE_DB_REPORT_NOTES_MAX) {
		return course_db_fail(-EFBIG, err, errlen,
				      "course report: patient %s has more than %d notes "
				      "(refused rather than cut short; use --course)",
				      r->patient, COURSE_DB_REPORT_NOTES_MAX);
	}
	d = course_db_report_grow((void **)&s->notes, &s->n_notes, sizeof(*d));
	if (!d) {
		return course_db_report_nomem(err, errlen);
	}
	d->id = n->id;
	d->kind = n->kind;
	d->at = n->at;
	if (!course_db_report_dup(&d->what, n->what) || !course_db_report_dup(&d->text, n->text)) {
		return course_db_report_nomem(err, errlen);
	}
	return 0;
}

void course_db_report_free(struct course_db_report *r)
{
	if (!r) {
		return;
	}
	for (size_t i = 0; i < r->n_courses; i++) {
		struct course_db_report_course *c = &r->courses[i];

		for (size_t j = 0; j < c->n_sessions; j++) {
			struct course_db_report_session *s = &c->sessions[j];

			for (size_t k = 0; k < s->n_notes; k++) {
				free(s->notes[k].what);
				free(s->notes[k].text);
			}
			free(s->notes);
			for (size_t k = 0; k < s->n_assessments; k++) {
				free(s->assessments[k].results);
			}
			free(s->assessments);
			free(s->stop_reason);
			free(s->target);
			free(s->edf_file);
		}
		free(c->sessions);
		free(c->scores);
		free(c->text);
	}
	free(r->courses);
	free(r);
}

/*
 * After "patient P has no course C": append the courses P has, when it is
 * known at all, so the caller sees what to ask for instead.
 */
static void course_db_report_courses(struct course_db *db, const char *patient, char *err,
				     size_t errlen)
{
	struct course_db_report *all = calloc(1, sizeof(*all));
	char ignored[COURSE_DB_ERR_MAX];
	size_t len;

	if (!all) {
		return;
	}
	snprintf(all->patient, sizeof(all->patient), "%s", patient);
	if (db->ops->report(db, all, NULL, ignored, sizeof(ignored)) == 0) {
		len = strlen(err);
		snprintf(err + len, errlen - len, " (its courses: %s", all->n_courses ? "" : "none");
		for (size_t i = 0; i < all->n_courses; i++) {
			len = strlen(err);
			snprintf(err + len, errlen - len, "%s%s", i ? ", " : "",
				 all->courses[i].course);
		}
		len = strlen(err);
		snprintf(err + len, errlen - len, ")");
	}
	course_db_report_free(all);
}

int course_db_report(struct course_db *db, const char *patient, const char *course,
		     struct course_db_report **out, char *err, size_t errlen)
{
	struct course_db_report *r;
	int rc;

	*out = NULL;
	rc = course_db_id_check("patient", patient, err, errlen);
	if (rc == 0 && course) {
		rc = course_db_id_check("course", course, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		return course_db_report_nomem(err, errlen);
	}
	snprintf(r->patient, sizeof(r->patient), "%s", patient);
	r->backend = db->ops->name;
	rc = db->ops->report(db, r, course, err, errlen);
	if (rc == -ENOENT && course) {
		course_db_report_courses(db, patient, err, errlen);
	}
	if (rc < 0) {
		course_db_report_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int course_db_adverse_add(struct course_db *db, const char *patient, int64_t session,
			  int64_t now, const char *author, const char *text, int64_t *note_id,
			  char *err, size_t errlen)
{
	int rc;

	*note_id = 0;
	rc = course_db_id_check("patient", patient, err, errlen);
	if (rc == 0 && session <= 0) {
		rc = course_db_fail(-EINVAL, err, errlen,
				    "course database: session id %" PRId64 " is not valid",
				    session);
	}
	if (rc == 0) {
		rc = course_db_text_check("adverse-event note", text, false, err, errlen);
	}
	if (rc == 0) {
		rc = course_db_text_check("author", author, false, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	if (!text[strspn(text, " \t\r\n")]) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: the adverse-event note is empty");
	}
	if (!*author || strlen(author) > COURSE_DB_ID_MAX) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: author '%s' is empty or longer than "
				      "%d characters", author, COURSE_DB_ID_MAX);
	}
	return db->ops->adverse_add(db, patient, session, now, author, text, note_id,
				    err, errlen);
}

int course_db_schema_other(const char *where, int found, char *err, size_t errlen)
{
	if (found <= 0) {
		return course_db_fail(-ENOENT, err, errlen,
				      "course database %s: not a course database (no schema "
				      "version in it): nothing read or changed", where);
	}
	if (found > COURSE_DB_SCHEMA_VERSION) {
		return course_db_schema_newer(where, found, err, errlen);
	}
	return course_db_fail(-EPROTONOSUPPORT, err, errlen,
			      "course database %s: schema version %d is older than this "
			      "build reads (%d): the rig's rpmsd migrates it when it next "
			      "opens it; nothing read or changed", where, found,
			      COURSE_DB_SCHEMA_VERSION);
}
