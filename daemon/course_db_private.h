/* SPDX-License-Identifier: MIT */
/*
 * What course_db.c shares with its backends (course_db_sqlite.c,
 * course_db_pg.c): the table of backend operations, linuxptp style. The
 * front end checks the arguments (ids, ranges) once; a backend gets them
 * valid and fills err on every failure of its own.
 */
#ifndef RPMSD_COURSE_DB_PRIVATE_H
#define RPMSD_COURSE_DB_PRIVATE_H

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

/** Fill @err with the refusal of a schema @found newer than this build knows. */
int course_db_schema_newer(const char *where, int found, char *err, size_t errlen);

#endif /* RPMSD_COURSE_DB_PRIVATE_H */
