// SPDX-License-Identifier: MIT
/*
 * Outcome assessments and clinical scores in the course database (schema
 * 3, docs/outcomes.md): the front end's checks, the names as stored, and
 * the report's copies of them. The ranges are checked here once, before a
 * backend sees anything, and again by the schema's CHECK constraints, so a
 * score that is not one of the instrument's values never reaches a table.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "course_db.h"
#include "course_db_private.h"

static const char *const course_db_outcome_phases[] = { "pre", "post" };
static const char *const course_db_outcome_kinds[] = { "rest", "stretch", "cci", "mvc" };
static const char *const course_db_outcome_instruments[] = {
	"modified_ashworth", "modified_tardieu", "fugl_meyer_ue",
};
static const char *const course_db_outcome_mas[] = { "0", "1", "1+", "2", "3", "4" };

#define COURSE_DB_OUTCOME_N(a) (sizeof(a) / sizeof((a)[0]))
/* An assessment block longer than a day is not an assessment. */
#define COURSE_DB_OUTCOME_DURATION_MAX 86400.0

static int course_db_outcome_find(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++) {
		if (!strcmp(names[i], s)) {
			return (int)i;
		}
	}
	return -1;
}

const char *course_db_phase_name(enum course_db_phase phase)
{
	return (unsigned)phase < COURSE_DB_OUTCOME_N(course_db_outcome_phases) ?
	       course_db_outcome_phases[phase] : "?";
}

const char *course_db_assess_kind_name(enum course_db_assess_kind kind)
{
	return (unsigned)kind < COURSE_DB_OUTCOME_N(course_db_outcome_kinds) ?
	       course_db_outcome_kinds[kind] : "?";
}

const char *course_db_instrument_name(enum course_db_instrument instrument)
{
	return (unsigned)instrument < COURSE_DB_OUTCOME_N(course_db_outcome_instruments) ?
	       course_db_outcome_instruments[instrument] : "?";
}

int course_db_phase_parse(const char *s)
{
	return course_db_outcome_find(course_db_outcome_phases,
				      COURSE_DB_OUTCOME_N(course_db_outcome_phases), s);
}

int course_db_assess_kind_parse(const char *s)
{
	return course_db_outcome_find(course_db_outcome_kinds,
				      COURSE_DB_OUTCOME_N(course_db_outcome_kinds), s);
}

int course_db_instrument_parse(const char *s)
{
	return course_db_outcome_find(course_db_outcome_instruments,
				      COURSE_DB_OUTCOME_N(course_db_outcome_instruments), s);
}

int course_db_mas_check(const char *grade, char *err, size_t errlen)
{
	if (course_db_outcome_find(course_db_outcome_mas, COURSE_DB_OUTCOME_N(course_db_outcome_mas),
				   grade) < 0) {
		return course_db_fail(-ERANGE, err, errlen,
				      "Modified Ashworth grade '%s' is not one of 0, 1, 1+, "
				      "2, 3, 4", grade ? grade : "");
	}
	return 0;
}

/* A result's channel: an id, or "" for the block, or "A+B" for a pair of ids. */
static int course_db_outcome_channel(const char *ch, char *err, size_t errlen)
{
	char a[COURSE_DB_ID_MAX + 1];
	const char *plus;
	int rc;

	if (!ch) {
		return course_db_fail(-EINVAL, err, errlen,
				      "course database: assessment result without a channel");
	}
	if (!*ch) {
		return 0;
	}
	plus = strchr(ch, '+');
	if (!plus) {
		return course_db_id_check("channel", ch, err, errlen);
	}
	if ((size_t)(plus - ch) > COURSE_DB_ID_MAX || strlen(plus + 1) > COURSE_DB_ID_MAX) {
		return course_db_fail(-EINVAL, err, errlen, "course database: channel "
				      "pair '%s' is too long", ch);
	}
	snprintf(a, sizeof(a), "%.*s", (int)(plus - ch), ch);
	rc = course_db_id_check("channel", a, err, errlen);
	return rc < 0 ? rc : course_db_id_check("channel", plus + 1, err, errlen);
}

int course_db_assessment_add(struct course_db *db, const struct course_db_assessment *a,
			     char *err, size_t errlen)
{
	int rc;

	if (a->session <= 0) {
		return course_db_fail(-EINVAL, err, errlen, "course database: session id %"
				      PRId64 " is not valid", a->session);
	}
	if ((unsigned)a->phase > COURSE_DB_POST || (unsigned)a->kind > COURSE_DB_ASSESS_MVC) {
		return course_db_fail(-EINVAL, err, errlen, "course database: assessment "
				      "phase %d or kind %d unknown", (int)a->phase,
				      (int)a->kind);
	}
	if (!isfinite(a->onset_s) || a->onset_s < 0 || !isfinite(a->duration_s) ||
	    a->duration_s <= 0 || a->duration_s > COURSE_DB_OUTCOME_DURATION_MAX) {
		return course_db_fail(-ERANGE, err, errlen, "course database: assessment "
				      "stretch [onset %g s, duration %g s] out of range "
				      "(onset >= 0, duration in (0, %g])", a->onset_s,
				      a->duration_s, COURSE_DB_OUTCOME_DURATION_MAX);
	}
	if (a->n_results > COURSE_DB_RESULTS_MAX || (a->n_results && !a->results)) {
		return course_db_fail(-EINVAL, err, errlen, "course database: %zu "
				      "assessment results (at most %d)", a->n_results,
				      COURSE_DB_RESULTS_MAX);
	}
	for (size_t i = 0; i < a->n_results; i++) {
		const struct course_db_result *x = &a->results[i];

		rc = course_db_outcome_channel(x->channel, err, errlen);
		if (rc == 0) {
			rc = course_db_id_check("result name", x->name, err, errlen);
		}
		if (rc < 0) {
			return rc;
		}
		if (!isfinite(x->value)) {
			return course_db_fail(-ERANGE, err, errlen, "course database: result "
					      "%s of channel '%s' is not a finite number",
					      x->name, x->channel);
		}
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(a->results[k].channel, x->channel) &&
			    !strcmp(a->results[k].name, x->name)) {
				return course_db_fail(-EINVAL, err, errlen, "course "
						      "database: result %s of channel "
						      "'%s' given twice", x->name,
						      x->channel);
			}
		}
	}
	return db->ops->assessment_add(db, a, err, errlen);
}

/* The instrument's fields of @s, each range named with its value. */
static int course_db_outcome_score_check(const struct course_db_score *s, char *err,
					 size_t errlen)
{
	int rc;

	switch (s->instrument) {
	case COURSE_DB_MODIFIED_ASHWORTH:
		rc = course_db_id_check("muscle", s->muscle, err, errlen);
		return rc < 0 ? rc : course_db_mas_check(s->mas_grade, err, errlen);
	case COURSE_DB_MODIFIED_TARDIEU:
		rc = course_db_id_check("muscle", s->muscle, err, errlen);
		if (rc < 0) {
			return rc;
		}
		if (!isfinite(s->r1_deg) || !isfinite(s->r2_deg) ||
		    fabs(s->r1_deg) > COURSE_DB_ANGLE_MAX || fabs(s->r2_deg) > COURSE_DB_ANGLE_MAX) {
			return course_db_fail(-ERANGE, err, errlen, "Modified Tardieu of %s: "
					      "R1 %g and R2 %g degrees must be within "
					      "-%g..%g", s->muscle, s->r1_deg, s->r2_deg,
					      COURSE_DB_ANGLE_MAX, COURSE_DB_ANGLE_MAX);
		}
		return 0;
	case COURSE_DB_FUGL_MEYER_UE:
		if (s->muscle) {
			return course_db_fail(-EINVAL, err, errlen, "Fugl-Meyer UE is a "
					      "total, not per muscle (muscle '%s' given)",
					      s->muscle);
		}
		if (s->fugl_meyer < 0 || s->fugl_meyer > COURSE_DB_FUGL_MEYER_UE_MAX) {
			return course_db_fail(-ERANGE, err, errlen, "Fugl-Meyer UE %d is out "
					      "of range (0..%d)", s->fugl_meyer,
					      COURSE_DB_FUGL_MEYER_UE_MAX);
		}
		return 0;
	default:
		return course_db_fail(-EINVAL, err, errlen, "course database: instrument "
				      "%d unknown", (int)s->instrument);
	}
}

int course_db_score_add(struct course_db *db, const struct course_db_score *s,
			int64_t *score_id, char *err, size_t errlen)
{
	int rc;

	*score_id = 0;
	rc = course_db_score_check(s, err, errlen);
	return rc < 0 ? rc : db->ops->score_add(db, s, score_id, err, errlen);
}

int course_db_score_check(const struct course_db_score *s, char *err, size_t errlen)
{
	int rc;

	rc = course_db_id_check("patient", s->patient, err, errlen);
	if (rc == 0 && s->course) {
		rc = course_db_id_check("course", s->course, err, errlen);
	}
	if (rc < 0) {
		return rc;
	}
	if (s->session < 0 || (s->session == 0 && !s->course)) {
		return course_db_fail(-EINVAL, err, errlen, "course database: a score "
				      "needs a session (id > 0) or a course");
	}
	if ((unsigned)s->phase > COURSE_DB_POST) {
		return course_db_fail(-EINVAL, err, errlen, "course database: phase %d "
				      "unknown", (int)s->phase);
	}
	rc = course_db_outcome_score_check(s, err, errlen);
	if (rc < 0) {
		return rc;
	}
	if (!s->author || !*s->author || strlen(s->author) > COURSE_DB_ID_MAX) {
		return course_db_fail(-EINVAL, err, errlen, "course database: author '%s' "
				      "is empty or longer than %d characters",
				      s->author ? s->author : "", COURSE_DB_ID_MAX);
	}
	return 0;
}

/* ---- the report's copies ------------------------------------------------- */

/* Grow *@a of *@n elements of @size by one, zeroed; NULL when out of memory. */
static void *course_db_outcome_grow(void **a, size_t *n, size_t size)
{
	char *p = realloc(*a, (*n + 1) * size);

	if (!p) {
		return NULL;
	}
	*a = p;
	memset(p + *n * size, 0, size);
	return p + (*n)++ * size;
}

static void course_db_outcome_count(const struct course_db_report *r, size_t *assessments,
				    size_t *results, size_t *scores)
{
	*assessments = *results = *scores = 0;
	for (size_t i = 0; i < r->n_courses; i++) {
		*scores += r->courses[i].n_scores;
		for (size_t j = 0; j < r->courses[i].n_sessions; j++) {
			const struct course_db_report_session *s = &r->courses[i].sessions[j];

			*assessments += s->n_assessments;
			for (size_t k = 0; k < s->n_assessments; k++) {
				*results += s->assessments[k].n_results;
			}
		}
	}
}

int course_db_report_assessment_add(struct course_db_report *r, int64_t session,
				    const struct course_db_report_assessment *a,
				    char *err, size_t errlen)
{
	struct course_db_report_session *s = NULL;
	struct course_db_report_assessment *d;
	size_t na, nr, ns;

	for (size_t i = 0; i < r->n_courses && !s; i++) {
		for (size_t j = 0; j < r->courses[i].n_sessions; j++) {
			if (r->courses[i].sessions[j].id == session) {
				s = &r->courses[i].sessions[j];
				break;
			}
		}
	}
	if (!s) {
		return course_db_fail(-EBADMSG, err, errlen, "course report: assessment %"
				      PRId64 " of session %" PRId64 ", which is not in "
				      "the report", a->id, session);
	}
	course_db_outcome_count(r, &na, &nr, &ns);
	if (na >= COURSE_DB_REPORT_OUTCOMES_MAX) {
		return course_db_fail(-EFBIG, err, errlen, "course report: patient %s has "
				      "more than %d assessments (refused rather than cut "
				      "short; use --course)", r->patient,
				      COURSE_DB_REPORT_OUTCOMES_MAX);
	}
	d = course_db_outcome_grow((void **)&s->assessments, &s->n_assessments, sizeof(*d));
	if (!d) {
		return course_db_report_nomem(err, errlen);
	}
	*d = *a;
	d->n_results = 0;
	d->results = NULL;
	return 0;
}

int course_db_report_result_add(struct course_db_report *r, int64_t assessment,
				const struct course_db_report_result *x, char *err, size_t errlen)
{
	struct course_db_report_assessment *a = NULL;
	struct course_db_report_result *d;
	size_t na, nr, ns;

	for (size_t i = 0; i < r->n_courses && !a; i++) {
		for (size_t j = 0; j < r->courses[i].n_sessions && !a; j++) {
			struct course_db_report_session *s = &r->courses[i].sessions[j];

			for (size_t k = 0; k < s->n_assessments; k++) {
				if (s->assessments[k].id == assessment) {
					a = &s->assessments[k];
					break;
				}
			}
		}
	}
	if (!a) {
		return course_db_fail(-EBADMSG, err, errlen, "course report: result of "
				      "assessment %" PRId64 ", which is not in the report",
				      assessment);
	}
	course_db_outcome_count(r, &na, &nr, &ns);
	if (nr >= COURSE_DB_REPORT_RESULTS_MAX) {
		return course_db_fail(-EFBIG, err, errlen, "course report: patient %s has "
				      "more than %d assessment results (refused rather "
				      "than cut short; use --course)", r->patient,
				      COURSE_DB_REPORT_RESULTS_MAX);
	}
	d = course_db_outcome_grow((void **)&a->results, &a->n_results, sizeof(*d));
	if (!d) {
		return course_db_report_nomem(err, errlen);
	}
	*d = *x;
	return 0;
}

int course_db_report_score_add(struct course_db_report *r, const char *course,
			       const struct course_db_report_score *s, char *err, size_t errlen)
{
	struct course_db_report_course *c = course_db_report_course_find(r, course);
	struct course_db_report_score *d;
	size_t na, nr, ns;

	if (!c) {
		return course_db_fail(-EBADMSG, err, errlen, "course report: score %" PRId64
				      " of course %s, which has no prescription", s->id,
				      course);
	}
	course_db_outcome_count(r, &na, &nr, &ns);
	if (ns >= COURSE_DB_REPORT_OUTCOMES_MAX) {
		return course_db_fail(-EFBIG, err, errlen, "course report: patient %s has "
				      "more than %d scores (refused rather than cut short; "
				      "use --course)", r->patient,
				      COURSE_DB_REPORT_OUTCOMES_MAX);
	}
	d = course_db_outcome_grow((void **)&c->scores, &c->n_scores, sizeof(*d));
	if (!d) {
		return course_db_report_nomem(err, errlen);
	}
	*d = *s;
	return 0;
}
