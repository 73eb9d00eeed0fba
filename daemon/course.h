/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of a course (docs/course_db.md): the prescriptions in
 * course.prescriptions, the course database (course_db.h) opened from the
 * course_db.* keys, and the one course session a rig runs at a time.
 *
 * The control thread owns a struct course after course_open (the main
 * thread opens and closes it, before the control thread starts and after
 * it stopped): every call here may block on disk or the network and is
 * never made from the real-time threads. The daemon's pulse ledger stays
 * the truth on the rig; the database is told what the gate counted.
 */
#ifndef RPMSD_COURSE_H
#define RPMSD_COURSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prescription.h"

struct rpmsd_config;
struct course;

/** A good size for the err buffers below. */
#define COURSE_ERR_MAX 1024
/** Room for course_edf_notes: a few annotations, one a line. */
#define COURSE_NOTES_MAX 512

/**
 * For --check-config and the start: course.prescriptions an existing
 * directory, course_db.conninfo given for postgresql, the paths resolvable.
 * Nothing to check (0) when course.prescriptions is empty.
 * @return 0, or a negative errno with "FILE:LINE: section.key: ..." in @err
 */
int course_check(const struct rpmsd_config *cfg, char *err, size_t errlen);

/**
 * Open the course side of @cfg (main thread, before the control thread
 * starts): the day zone and the course database. *@out is NULL when
 * course.prescriptions is empty. A PostgreSQL server unreachable now is
 * not an error (logged): the database is opened again at the next
 * session_start, and until then a course session is refused.
 * A course session a killed run left running (its mark in daemon.state_dir)
 * is ended in the database with an upper bound of its pulses from
 * @day_pulses, the gate's count of today from the pulse ledger.
 * @return 0, or a negative errno with @err filled (a bad path, a newer
 *         schema than this build knows, a file that is not a database)
 */
int course_open(const struct rpmsd_config *cfg, uint64_t day_pulses, struct course **out, char *err,
		size_t errlen);

/** Close @c (NULL: nothing); a running course session is left as the DB has it. */
void course_close(struct course *c);

/**
 * Find the prescription of @course_id in course.prescriptions (a file
 * FILE.rx whose course.id is @course_id) and check it is @patient's.
 * @return 0 and *@rx; -ENOENT without one; -EPERM when it is another
 *         patient's (both named); -EINVAL when two files claim the course
 */
int course_find(struct course *c, const char *course_id, const char *patient,
		struct prescription *rx, char *err, size_t errlen);

/**
 * Begin a course session of @rx in the database, the limits across rigs
 * checked there (course_db_session_begin): the patient and prescription
 * stored first, the day from safety.day_zone.
 * @param mt_pct  the session's motor threshold, % of maximum output; 0: none
 * @param intensity_pct  the output the protocol runs at, % of maximum
 * @param arm_code  the blinded arm code (blind_session_start), NULL or ""
 *             when the session is not blinded; never the arm
 * @param day_pulses  the gate's pulses of today now (stim_day_pulses), for
 *             the mark a killed run is recovered from (course_open)
 * @param cap  receives this session's pulse cap: the prescription's
 *             pulses, or what the daily cap leaves today on all rigs
 * @return 0; -EPERM (a limit, named with its numbers); -ENOTCONN ("course
 *         database unreachable: ..."); another negative errno. Nothing is
 *         begun on failure.
 */
int course_begin(struct course *c, const struct prescription *rx, double mt_pct,
		 double intensity_pct, const char *arm_code, uint64_t day_pulses, uint64_t *cap,
		 char *err, size_t errlen);

/**
 * Undo a course_begin whose session could not start after all (the
 * protocol could not be posted): ended at once with 0 pulses, @why.
 */
void course_abort(struct course *c, const char *why);

/**
 * The running course session's motor threshold, measured now (the
 * threshold procedure, docs/threshold.md): into its database row.
 * @return 0, -ENOENT (no course session), or the database's error
 */
int course_threshold(struct course *c, double mt_pct, char *err, size_t errlen);

/**
 * The course session's motor threshold @mt_pct and the intensity it gave
 * (@intensity_pct, % of maximum output; < 0: left as it is) into its
 * database row. @return 0, or a negative errno with @err filled
 */
int course_session_intensity(struct course *c, double mt_pct, double intensity_pct, char *err,
			     size_t errlen);

/** Whether a course session is running (between course_begin and course_end). */
bool course_active(const struct course *c);

/** The running course session's prescription, or NULL. */
const struct prescription *course_rx(const struct course *c);

/** The running course session's id in the database, 0 none. */
int64_t course_session_id(const struct course *c);

/**
 * Tell the database the running session's pulses (control thread, about
 * once a second): only when the count moved. Monotonic; with PostgreSQL
 * down it goes to the journal. Errors are logged, never fatal.
 */
void course_pulses(struct course *c, uint64_t delivered);

/**
 * Record a deviation of the running session (@what deviated, @why).
 * @return 0, or a negative errno with @err filled (logged by the caller)
 */
int course_deviation(struct course *c, const char *what, const char *why, char *err,
		     size_t errlen);

struct course_db_assessment;

/**
 * Store the outcome assessment @a in the running session (its session id
 * is filled in here). With PostgreSQL down it goes to the journal.
 * @return 0, -ENOENT without a course session, or a negative errno with
 *         @err filled
 */
int course_assessment(struct course *c, struct course_db_assessment *a, char *err,
		      size_t errlen);

/**
 * End the running session with @delivered pulses: a deviation "stopped
 * early" when fewer than prescribed (@reason, NULL: "no reason given",
 * written to @deviation, "" when none), the end, and the EDF+ file @edf
 * (NULL: none) with its SHA-256. Errors are logged; the session is over
 * on the rig whatever the database says.
 */
void course_end(struct course *c, uint64_t delivered, const char *reason, const char *edf,
		char *deviation, size_t devlen);

/**
 * The intensity rule of @rx at @mt_pct, for people and the EDF+:
 * "110 % of MT 45 % MSO = 49.5 % MSO" or "60 % MSO".
 */
void course_intensity_text(const struct prescription *rx, double mt_pct, char *buf, size_t len);

/**
 * The EDF+ annotations of a course session, one a line, each within EDF+'s
 * 40 characters: course, target, protocol, intensity rule.
 */
void course_edf_notes(const struct prescription *rx, double mt_pct, char *buf, size_t len);

/**
 * The SHA-256 of the file @path as 64 hex digits (libsodium).
 * @return 0, or a negative errno
 */
int course_sha256_file(const char *path, char hex[65]);

#endif /* RPMSD_COURSE_H */
