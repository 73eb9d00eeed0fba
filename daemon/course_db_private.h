/* SPDX-License-Identifier: MIT */
/*
 * What course_db.c shares with its backends (course_db_sqlite.c,
 * course_db_pg.c): the table of backend operations, linuxptp style. The
 * front end checks the arguments (ids, ranges) once; a backend gets them
 * valid and fills err on every failure of its own.
 */
#ifndef RPMSD_COURSE_DB_PRIVATE_H
#define RPMSD_COURSE_DB_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "course_db.h"

/** One backend. Every operation fills err on failure. */
struct course_db_ops {
	const char *name;
	int (*open)(struct course_db *db, const struct course_db_config *cfg,
		    char *err, size_t errlen);
	void (*close)(struct course_db *db);
	int (*schema_version)(struct course_db *db, char *err, size_t errlen);
	int (*patient_add)(struct course_db *db, const char *patient, char *err, size_t errlen);
	int (*prescription_put)(struct course_db *db, const struct course_db_prescription *rx,
				char *err, size_t errlen);
	int (*session_begin)(struct course_db *db, const char *patient, const char *course,
			     const char *rig, int64_t now, int64_t day_start, int64_t day_end,
			     int64_t *session_id, char *err, size_t errlen);
	int (*session_set)(struct course_db *db, int64_t session,
			   const struct course_db_session_detail *d, char *err, size_t errlen);
	int (*pulses)(struct course_db *db, int64_t session, int64_t delivered,
		      char *err, size_t errlen);
	int (*session_end)(struct course_db *db, int64_t session, int64_t now, int64_t delivered,
			   const char *reason, char *err, size_t errlen);
	int (*note_add)(struct course_db *db, int64_t session, enum course_db_note_kind kind,
			int64_t now, const char *what, const char *text, char *err, size_t errlen);
	int (*recording)(struct course_db *db, int64_t session, const char *edf_file,
			 const char *sha256_hex, char *err, size_t errlen);
	int (*daily_pulses)(struct course_db *db, const char *patient, int64_t day_start,
			    int64_t day_end, int64_t *pulses, char *err, size_t errlen);
	int (*course_dose)(struct course_db *db, const char *patient, const char *course,
			   struct course_db_dose *dose, char *err, size_t errlen);
	int (*sync)(struct course_db *db, char *err, size_t errlen);
	int64_t (*pending)(struct course_db *db, char *err, size_t errlen);
	int (*check)(struct course_db *db, char *err, size_t errlen);
	/* Fill @r (patient and backend set, pending 0) through course_db_report_*_add. */
	int (*report)(struct course_db *db, struct course_db_report *r, const char *course,
		      char *err, size_t errlen);
	int (*adverse_add)(struct course_db *db, const char *patient, int64_t session,
			   int64_t now, const char *author, const char *text, int64_t *note_id,
			   char *err, size_t errlen);
	int (*assessment_add)(struct course_db *db, const struct course_db_assessment *a,
			      char *err, size_t errlen);
	int (*score_add)(struct course_db *db, const struct course_db_score *s,
			 int64_t *score_id, char *err, size_t errlen);
	/*
	 * For the SQL the front end runs through the backend (course_db_limits_read
	 * inside session_begin's transaction, course_db_prescription_store): run
	 * @sql ($1.. placeholders) with the arguments @types says (the backends'
	 * letters: 's' text, 'i' int64_t, 'd' double) and read up to @ncol integer
	 * columns of its first row into @row (NULL or no row: -1).
	 */
	int (*q)(struct course_db *db, const char *sql, int64_t *row, int ncol,
		 char *err, size_t errlen, const char *types, va_list ap);
	/* The rig of @session into @rig; left as it is when it cannot be read. */
	void (*session_rig)(struct course_db *db, int64_t session, char *rig, size_t len);
	/*
	 * For course_db_score_insert, inside the backend's transaction: run the
	 * INSERT @sql ($1.. placeholders, arguments as limits_q's plus 'I', 'D'
	 * for NULLs) and set *@id to the new row's id.
	 */
	int (*insert)(struct course_db *db, const char *sql, int64_t *id, char *err,
		      size_t errlen, const char *types, va_list ap);
};

/** The handle: the backend's operations and its state. */
struct course_db {
	const struct course_db_ops *ops;
	void *priv;
};

/** The limits' verdict a backend reached, turned into the refusal's words. */
struct course_db_limits {
	int64_t running_id;		/* a session still running, or 0 */
	const char *running_rig;
	int64_t course_sessions;	/* sessions of the course so far */
	int64_t day_sessions;		/* the patient's sessions begun this day */
	int64_t last_end;		/* the previous session's end (or start), or -1 */
	int64_t day_pulses;		/* the patient's pulses this day */
};

extern const struct course_db_ops course_db_sqlite_ops;
extern const struct course_db_ops course_db_pg_ops;

/**
 * Apply the rules of course_db_session_begin to @l under @rx.
 * @return 0 when all hold, -EPERM with @err naming the rule and numbers.
 */
int course_db_limits_check(const struct course_db_prescription *rx,
			   const struct course_db_limits *l, int64_t now,
			   int64_t day_start, int64_t day_end, char *err, size_t errlen);

/**
 * Read the limits of a start of @rx's patient and course at @now (the
 * running session, the course's and the day's sessions and pulses, the last
 * end) through the backend's q and apply course_db_limits_check. The
 * backend calls it inside the transaction that also inserts the session, so
 * what is read still holds when the session is written.
 * @return 0 when the start is allowed, -EPERM with @err naming the rule,
 * or the backend's error.
 */
int course_db_limits_read(struct course_db *db, const struct course_db_prescription *rx,
			  int64_t now, int64_t day_start, int64_t day_end,
			  char *err, size_t errlen);

/**
 * Store @rx (course_db_prescription_put's checks done, its patient found by
 * the backend) through the backend's q: added, or replacing the patient's
 * prescription of the same course.
 * @return 0 or the backend's error.
 */
int course_db_prescription_store(struct course_db *db, const struct course_db_prescription *rx,
				 char *err, size_t errlen);

/**
 * Insert the score @sc into @course (course_db_score_add's checks done, the
 * course found by the backend) through the backend's insert, inside its
 * transaction: what @sc's instrument does not use is stored as NULL.
 * @return 0 with *@score_id set, or the backend's error.
 */
int course_db_score_insert(struct course_db *db, const struct course_db_score *sc,
			   const char *course, int64_t *score_id, char *err, size_t errlen);

/** Fill @err (when there is one) with the message @fmt; @return @rc. */
int course_db_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** Fill @err with the refusal of a schema @found newer than this build knows. */
int course_db_schema_newer(const char *where, int found, char *err, size_t errlen);

/** Check a patient, course, rig or arm id (@what names it); -EINVAL with @err. */
int course_db_id_check(const char *what, const char *id, char *err, size_t errlen);

/** Check free text @s (NULL allowed when @may_be_null); -EINVAL with @err. */
int course_db_text_check(const char *what, const char *s, bool may_be_null,
			 char *err, size_t errlen);

/**
 * Add a course to @r (course_db_report.c): a backend calls it once per
 * prescription, in course order, before that course's sessions.
 */
int course_db_report_course_add(struct course_db_report *r,
				const struct course_db_report_course *c, char *err, size_t errlen);

/**
 * Add a copy of @s (its strings are copied, its notes ignored) to the
 * course @course of @r, added before.
 */
int course_db_report_session_add(struct course_db_report *r, const char *course,
				 const struct course_db_report_session *s, char *err, size_t errlen);

/** The course @course of @r, added before, or NULL. */
struct course_db_report_course *course_db_report_course_find(struct course_db_report *r,
							     const char *course);

/** Fill @err with the report's out of memory; @return -ENOMEM. */
int course_db_report_nomem(char *err, size_t errlen);

/** Add a copy of @n to the session @session of @r, added before. */
int course_db_report_note_add(struct course_db_report *r, int64_t session,
			      const struct course_db_report_note *n, char *err, size_t errlen);

/** Add a copy of @a (its results ignored) to the session @session of @r, added before. */
int course_db_report_assessment_add(struct course_db_report *r, int64_t session,
				    const struct course_db_report_assessment *a,
				    char *err, size_t errlen);

/** Add @x to the assessment @assessment of @r, added before. */
int course_db_report_result_add(struct course_db_report *r, int64_t assessment,
				const struct course_db_report_result *x, char *err, size_t errlen);

/** Add a copy of @s to the course @course of @r, added before. */
int course_db_report_score_add(struct course_db_report *r, const char *course,
			       const struct course_db_report_score *s, char *err, size_t errlen);

/** Parse a phase, kind or instrument name as stored; -1 when unknown. */
int course_db_phase_parse(const char *s);
/** See course_db_phase_parse. */
int course_db_assess_kind_parse(const char *s);
/** See course_db_phase_parse. */
int course_db_instrument_parse(const char *s);

/** The refusal of another schema than this build's, for COURSE_DB_CLIENT (@found 0: none). */
int course_db_schema_other(const char *where, int found, char *err, size_t errlen);

#endif /* RPMSD_COURSE_DB_PRIVATE_H */
