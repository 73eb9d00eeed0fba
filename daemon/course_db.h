/* SPDX-License-Identifier: MIT */
/*
 * The course database: patients (pseudonymous ids only), their
 * prescriptions, the sessions of each course and the course's cumulative
 * dose, with the limits that must hold across rigs (sessions per course,
 * sessions per day, minimum hours between sessions, a daily pulse cap)
 * checked and recorded in one transaction by course_db_session_begin.
 *
 * One interface, two backends (a table of operations, struct
 * course_db_ops in course_db_private.h):
 *   sqlite      libsqlite3, a file in the state directory: WAL,
 *               synchronous=FULL, a busy timeout; one rig.
 *   postgresql  libpq, a site's server shared by several rigs; every
 *               write of a running session (pulses, end, notes, the
 *               recording) is appended to a local journal first (a small
 *               SQLite file, synchronous=FULL) and synced from it, so an
 *               outage of the server loses nothing; starting a session
 *               needs the server ("course database unreachable: ...").
 *
 * Schema 3 adds outcome assessments (measured by the rig, per session and
 * pre/post, each a stretch of the session's EDF+ recording) and clinical
 * scores (entered by a clinician): docs/outcomes.md.
 *
 * Times are seconds since 1970 (UTC). A "day" is [day_start, day_end) as
 * computed by the caller's zone code (zone.h, safety.day_zone): this
 * module never guesses a zone.
 *
 * Errors: 0 or a negative errno; the err buffer is always filled on
 * failure. A refusal by a limit is -EPERM with the rule and its numbers.
 * Not thread-safe: one thread uses a handle; two rigs, or two threads, use
 * two handles (two connections), and the database keeps them apart. Every
 * call may block on disk or the network: never from the RT threads.
 */
#ifndef RPMSD_COURSE_DB_H
#define RPMSD_COURSE_DB_H

#include <stddef.h>
#include <stdint.h>

/** A good size for the err buffers below. */
#define COURSE_DB_ERR_MAX 1024

/** The newest schema this build knows (course_db.c's migration lists). */
#define COURSE_DB_SCHEMA_VERSION 3

/** Longest patient, course, rig or arm id (pseudonyms: [A-Za-z0-9._-]). */
#define COURSE_DB_ID_MAX 64

/** The backends. */
enum course_db_backend {
	COURSE_DB_SQLITE,
	COURSE_DB_POSTGRESQL,
};

/** Who opens the database (struct course_db_config.mode). */
enum course_db_mode {
	/*
	 * The daemon of a rig (the default): creates and migrates the
	 * database, PostgreSQL journals this rig's writes and syncs them.
	 */
	COURSE_DB_RIG = 0,
	/*
	 * rpmsctl, reading a course and adding adverse-event notes, on the rig
	 * or on any machine that reaches the database: never creates a file,
	 * never migrates (a missing file, a file that is not a course database
	 * or another schema version is refused, naming it), never syncs or
	 * writes a rig's journal. PostgreSQL: the journal, when its file is
	 * there, is opened read-only to count what is not yet on the server;
	 * course_db_sync, course_db_daily_pulses and course_db_course_dose
	 * return -EAGAIN unless that journal is there and empty, rather than
	 * answer low (course_db_report reads the server and says what is
	 * pending instead).
	 */
	COURSE_DB_CLIENT,
};

/** How to open the database (the proposed course_db.* keys in brackets). */
struct course_db_config {
	enum course_db_backend backend;	/* [course_db.backend] sqlite|postgresql */
	const char *path;		/* [course_db.path] the SQLite file */
	const char *conninfo;		/* [course_db.conninfo] libpq conninfo */
	const char *journal;		/* [course_db.journal] PostgreSQL's local journal */
	int busy_timeout_ms;		/* [course_db.busy_timeout_ms] SQLite; 0: 5000 */
	int schema_target;		/* migrate up to this version; 0: newest (tests) */
	enum course_db_mode mode;	/* 0: COURSE_DB_RIG */
};

/** A prescription's text and the fields the limits need. */
struct course_db_prescription {
	const char *patient;
	const char *course;
	const char *text;		/* the prescription file as written */
	int sessions_per_course;	/* > 0 */
	int max_sessions_per_day;	/* > 0 */
	double min_hours_between;	/* >= 0, from the previous session's end */
	int64_t daily_pulse_cap;	/* > 0, summed over the patient's day, all rigs */
};

/** What a session learns after it began (NULL strings: left as they are). */
struct course_db_session_detail {
	double intensity_pct;		/* < 0: left as it is */
	double motor_threshold_pct;	/* < 0: left as it is */
	const char *target;
	const char *arm_code;		/* the blinded code, never the arm */
};

/** Kinds of note on a session. */
enum course_db_note_kind {
	COURSE_DB_DEVIATION,		/* @what deviated, @text why */
	COURSE_DB_ADVERSE,		/* @what who entered it, @text the adverse-event note */
};

/** A course's cumulative dose. */
struct course_db_dose {
	int64_t sessions;		/* begun, ended or not */
	int64_t pulses;			/* delivered, all sessions */
};

struct course_db;

/**
 * Check a PostgreSQL conninfo as libpq resolves it (its service file and
 * PG* variables too), without connecting: a server that is not on this
 * host (a host or hostaddr other than a Unix socket directory, localhost
 * or a loopback address) needs sslmode=verify-full. course_db_open checks
 * the same and, off the host, also demands SCRAM by channel binding
 * (docs/course_db.md, "Security").
 * @return 0, -EINVAL for a conninfo libpq cannot parse, -EPERM for one
 *         that would leave the host unprotected; the message names
 *         course_db.conninfo and what to add
 */
int course_db_check_conninfo(const char *conninfo, char *err, size_t errlen);

/**
 * Open (creating it if needed) and migrate the database @cfg names.
 * Migrations run in one transaction; a database whose schema is newer than
 * COURSE_DB_SCHEMA_VERSION is refused (-EPROTONOSUPPORT, naming both
 * versions) and left untouched. For PostgreSQL an unreachable server is
 * -ENOTCONN ("course database unreachable: ...") and the journal is opened
 * first, so what it holds is kept.
 * @return 0 and *@out, or a negative errno with @err filled.
 */
int course_db_open(const struct course_db_config *cfg, struct course_db **out,
		   char *err, size_t errlen);

/** Close @db (NULL: nothing). What the journal holds stays in it. */
void course_db_close(struct course_db *db);

/**
 * The schema version of the database, read from it.
 * @return the version (> 0), or a negative errno with @err filled.
 */
int course_db_schema_version(struct course_db *db, char *err, size_t errlen);

/** Add the patient @patient if absent (ids: see COURSE_DB_ID_MAX). */
int course_db_patient_add(struct course_db *db, const char *patient, char *err, size_t errlen);

/**
 * Store @rx (the patient must exist), replacing the prescription of the
 * same patient and course.
 */
int course_db_prescription_put(struct course_db *db, const struct course_db_prescription *rx,
			       char *err, size_t errlen);

/**
 * Check every limit of @patient's prescription for @course at @now and,
 * when all hold, record the session's start on @rig, atomically: two
 * handles racing for the same slot never both win.
 * The rules, in this order: the prescription exists; no session of the
 * patient is still running; the course has fewer than sessions_per_course
 * sessions; fewer than max_sessions_per_day began in [@day_start,
 * @day_end); the previous session ended (or began, if it never ended) at
 * least min_hours_between before @now; the patient's pulses of the day
 * are below daily_pulse_cap.
 * @return 0 and *@session_id; -EPERM naming the rule and its numbers;
 * -ENOENT without a prescription; -ENOTCONN when the server (PostgreSQL)
 * is unreachable or this rig's journal cannot be synced to it first.
 */
int course_db_session_begin(struct course_db *db, const char *patient, const char *course,
			    const char *rig, int64_t now, int64_t day_start, int64_t day_end,
			    int64_t *session_id, char *err, size_t errlen);

/** Record what @session learnt after it began (intensity, threshold, target, arm code). */
int course_db_session_set(struct course_db *db, int64_t session,
			  const struct course_db_session_detail *d, char *err, size_t errlen);

/**
 * Record that @session has delivered @delivered pulses in all. Monotonic:
 * a value lower than the one recorded is ignored (the higher one stays).
 * PostgreSQL: journalled first, then synced; with the server unreachable
 * this still returns 0 (the journal has it; course_db_pending counts it).
 */
int course_db_pulses(struct course_db *db, int64_t session, int64_t delivered,
		     char *err, size_t errlen);

/**
 * End @session at @now with @delivered pulses (monotonic as above) and a
 * reason (NULL: "completed"). Ending twice keeps the first end.
 * Journalled like course_db_pulses.
 */
int course_db_session_end(struct course_db *db, int64_t session, int64_t now,
			  int64_t delivered, const char *reason, char *err, size_t errlen);

/** Add a deviation (@what, @text why) or an adverse-event note (@text) to @session. */
int course_db_note_add(struct course_db *db, int64_t session, enum course_db_note_kind kind,
		       int64_t now, const char *what, const char *text, char *err, size_t errlen);

/** Record @session's EDF+ file name and its SHA-256 (64 hex digits). */
int course_db_session_recording(struct course_db *db, int64_t session, const char *edf_file,
				const char *sha256_hex, char *err, size_t errlen);

/**
 * The pulses of @patient's sessions begun in [@day_start, @day_end), all
 * rigs. PostgreSQL syncs the journal first and fails (-ENOTCONN) rather
 * than answer low.
 */
int course_db_daily_pulses(struct course_db *db, const char *patient, int64_t day_start,
			   int64_t day_end, int64_t *pulses, char *err, size_t errlen);

/** The cumulative dose of @patient's @course. */
int course_db_course_dose(struct course_db *db, const char *patient, const char *course,
			  struct course_db_dose *dose, char *err, size_t errlen);

/**
 * Push what the journal holds to the server (PostgreSQL; SQLite: 0).
 * @return 0 when the journal is empty afterwards, -ENOTCONN otherwise.
 */
int course_db_sync(struct course_db *db, char *err, size_t errlen);

/** Journal entries not yet on the server (SQLite: 0); negative errno on failure. */
int64_t course_db_pending(struct course_db *db, char *err, size_t errlen);

/** Check the database's integrity (SQLite: PRAGMA integrity_check). */
int course_db_check(struct course_db *db, char *err, size_t errlen);

/* ---- outcome assessments and clinical scores (schema 3) --------------- */

/** Before or after the session's stimulation. */
enum course_db_phase {
	COURSE_DB_PRE = 0,
	COURSE_DB_POST,
};

/** What an assessment block measured (docs/outcomes.md). */
enum course_db_assess_kind {
	COURSE_DB_ASSESS_REST = 0,	/* rest RMS, bursts per minute, % of time active */
	COURSE_DB_ASSESS_STRETCH,	/* stretch reflex thresholds (DSRT, TSRT) */
	COURSE_DB_ASSESS_CCI,		/* co-contraction index of two channels */
	COURSE_DB_ASSESS_MVC,		/* maximal voluntary contraction RMS */
};

/** The clinical instruments a clinician enters (rpmsctl score). */
enum course_db_instrument {
	COURSE_DB_MODIFIED_ASHWORTH = 0,	/* per muscle: 0, 1, 1+, 2, 3, 4 */
	COURSE_DB_MODIFIED_TARDIEU,		/* per muscle: R1, R2 angles (degrees) */
	COURSE_DB_FUGL_MEYER_UE,		/* the upper extremity total, 0..66 */
};

/** Most named numbers one assessment holds. */
#define COURSE_DB_RESULTS_MAX 256
/** Tardieu angles are within [-COURSE_DB_ANGLE_MAX, COURSE_DB_ANGLE_MAX] degrees. */
#define COURSE_DB_ANGLE_MAX 180.0
/** The Fugl-Meyer upper-extremity motor total's maximum. */
#define COURSE_DB_FUGL_MEYER_UE_MAX 66

/**
 * One named number of an assessment: @channel is an EMG channel's label
 * (or "A+B" for a pair, "" for the block), @name what it is with its unit
 * in the name ("rms_uv", "bursts_per_min", "active_pct"); both in the id
 * character set, at most COURSE_DB_ID_MAX long; @value finite.
 */
struct course_db_result {
	const char *channel;
	const char *name;
	double value;
};

/** One assessment block of a session. */
struct course_db_assessment {
	int64_t session;
	enum course_db_phase phase;
	enum course_db_assess_kind kind;
	int64_t at;			/* when it ended, seconds since 1970 (UTC) */
	double onset_s;			/* the EDF+ stretch: seconds from the recording's start */
	double duration_s;		/* > 0 */
	size_t n_results;		/* 0..COURSE_DB_RESULTS_MAX */
	const struct course_db_result *results;
};

/**
 * A clinical score. @session > 0 ties it to a session (its course is the
 * session's; @course, when given, must be it); @session 0 ties it to the
 * course @course. Per instrument: MODIFIED_ASHWORTH needs @muscle and
 * @mas_grade; MODIFIED_TARDIEU @muscle, @r1_deg and @r2_deg; FUGL_MEYER_UE
 * @fugl_meyer (0..66) and no muscle. @author: who entered it.
 */
struct course_db_score {
	const char *patient;
	const char *course;
	int64_t session;
	enum course_db_phase phase;
	enum course_db_instrument instrument;
	const char *muscle;
	const char *mas_grade;		/* "0", "1", "1+", "2", "3", "4" */
	double r1_deg;			/* angle of catch at fast velocity */
	double r2_deg;			/* passive range at slow velocity */
	int fugl_meyer;
	const char *author;
	int64_t at;
};

/** "pre" or "post". */
const char *course_db_phase_name(enum course_db_phase phase);

/** "rest", "stretch", "cci" or "mvc". */
const char *course_db_assess_kind_name(enum course_db_assess_kind kind);

/** "modified_ashworth", "modified_tardieu" or "fugl_meyer_ue". */
const char *course_db_instrument_name(enum course_db_instrument instrument);

/**
 * Check a Modified Ashworth grade as written: exactly "0", "1", "1+", "2",
 * "3" or "4". @return 0, or -ERANGE with @err naming the grade and the
 * allowed ones.
 */
int course_db_mas_check(const char *grade, char *err, size_t errlen);

/**
 * Check @s as course_db_score_add does before it writes (ids, the
 * instrument's fields and ranges, the author), without a database: for a
 * tool that checks every score of a command line before it writes one.
 * @return 0, or -EINVAL/-ERANGE with @err naming what and its value.
 */
int course_db_score_check(const struct course_db_score *s, char *err, size_t errlen);

/**
 * Store the assessment @a of its session. PostgreSQL: journalled like
 * course_db_pulses (an outage loses nothing; replays are idempotent).
 * @return 0, or a negative errno with @err filled: -EINVAL/-ERANGE for an
 * argument (named), -ENOENT for an unknown session (SQLite).
 */
int course_db_assessment_add(struct course_db *db, const struct course_db_assessment *a,
			     char *err, size_t errlen);

/**
 * Store the clinical score @s, checked first (every range named with its
 * value), straight to the database in one transaction, never a journal
 * (PostgreSQL: needs the server, -ENOTCONN otherwise). An unknown session
 * is -ENOENT, another patient's -EPERM, a course the patient has not
 * -ENOENT. The caller reads it back (course_db_report) before saying saved.
 * @return 0 and *@score_id, or a negative errno with @err filled.
 */
int course_db_score_add(struct course_db *db, const struct course_db_score *s,
			int64_t *score_id, char *err, size_t errlen);

/* ---- the course report (rpmsctl course) ------------------------------- */

/** Most sessions (and courses) one report holds (a course has tens): more is refused, never cut. */
#define COURSE_DB_REPORT_SESSIONS_MAX 4096
/** Most notes one report holds, all its sessions together. */
#define COURSE_DB_REPORT_NOTES_MAX 16384
/** Most assessments, and most scores, one report holds. */
#define COURSE_DB_REPORT_OUTCOMES_MAX 16384
/** Most assessment results one report holds, all assessments together. */
#define COURSE_DB_REPORT_RESULTS_MAX 262144

/** One named number of an assessment in a report. */
struct course_db_report_result {
	char channel[COURSE_DB_ID_MAX + 1];
	char name[COURSE_DB_ID_MAX + 1];
	double value;
};

/** One assessment of a session in a report. */
struct course_db_report_assessment {
	int64_t id;
	enum course_db_phase phase;
	enum course_db_assess_kind kind;
	int64_t at;
	double onset_s;
	double duration_s;
	size_t n_results;
	struct course_db_report_result *results;	/* by channel, then name */
};

/** One clinical score of a course in a report. */
struct course_db_report_score {
	int64_t id;
	int64_t session;		/* 0: a score of the course, not of one session */
	enum course_db_phase phase;
	enum course_db_instrument instrument;
	char muscle[COURSE_DB_ID_MAX + 1];	/* "" for Fugl-Meyer */
	char mas_grade[4];		/* Modified Ashworth; "" otherwise */
	double r1_deg, r2_deg;		/* Modified Tardieu; NAN otherwise */
	int fugl_meyer;			/* Fugl-Meyer UE; -1 otherwise */
	char author[COURSE_DB_ID_MAX + 1];
	int64_t at;
};

/** One note of a session in a report. */
struct course_db_report_note {
	int64_t id;
	enum course_db_note_kind kind;
	int64_t at;			/* seconds since 1970 (UTC) */
	char *what;			/* deviation: what deviated; adverse: who entered it */
	char *text;
};

/** One session in a report. Strings are NULL (or "") when not recorded. */
struct course_db_report_session {
	int64_t id;
	char rig[COURSE_DB_ID_MAX + 1];
	int64_t started;
	int64_t stopped;		/* -1: not ended (running, or its end not synced) */
	char *stop_reason;
	int64_t pulses;			/* delivered */
	double intensity_pct;		/* -1: not recorded */
	double motor_threshold_pct;	/* -1: not recorded */
	char *target;
	char arm_code[COURSE_DB_ID_MAX + 1];	/* the blinded code, never the arm; "" none */
	char *edf_file;
	char edf_sha256[65];		/* "" none */
	size_t n_notes;
	struct course_db_report_note *notes;	/* in the order they were made */
	size_t n_assessments;
	struct course_db_report_assessment *assessments;	/* by onset, then id */
};

/** One course of the patient: its prescription, sessions and dose. */
struct course_db_report_course {
	char course[COURSE_DB_ID_MAX + 1];
	int sessions_per_course;
	int max_sessions_per_day;
	double min_hours_between;
	int64_t daily_pulse_cap;
	char *text;			/* the prescription as stored */
	struct course_db_dose dose;	/* as course_db_course_dose, same snapshot */
	size_t n_sessions;
	struct course_db_report_session *sessions;	/* by start, then id */
	size_t n_scores;
	struct course_db_report_score *scores;	/* by time entered, then id */
};

/** A patient's courses, read in one snapshot of the database. */
struct course_db_report {
	char patient[COURSE_DB_ID_MAX + 1];
	const char *backend;		/* "sqlite" or "postgresql" (static) */
	size_t n_courses;
	struct course_db_report_course *courses;	/* by course id */
	/*
	 * Entries of this rig's journal not yet on the server (PostgreSQL):
	 * pulses, ends and notes the report does not show yet. 0 for SQLite;
	 * -1 when no journal could be read here (@pending_why says why).
	 */
	int64_t pending;
	char pending_why[COURSE_DB_ERR_MAX];
};

/**
 * Read @patient's course @course (NULL: every course of the patient):
 * prescriptions, sessions with their notes, and each course's dose, in one
 * read transaction. Reads what the database has: PostgreSQL reads the
 * server and never syncs; the report's pending says how many entries this
 * rig's journal still holds. Memory is bounded by
 * COURSE_DB_REPORT_SESSIONS_MAX and COURSE_DB_REPORT_NOTES_MAX.
 * @return 0 and *@out (free with course_db_report_free); -ENOENT for an
 * unknown patient or a course the patient does not have (naming the ones
 * it has); -EFBIG past the bounds; -ENOTCONN with the server unreachable.
 */
int course_db_report(struct course_db *db, const char *patient, const char *course,
		     struct course_db_report **out, char *err, size_t errlen);

/** Free @r (NULL: nothing). */
void course_db_report_free(struct course_db_report *r);

/**
 * Add the adverse-event note @text, entered by @author (a user name), to
 * @session, which must be one of @patient's sessions: an unknown session
 * is -ENOENT, another patient's -EPERM (without naming that patient).
 * Written straight to the database in one transaction, never to a journal
 * (PostgreSQL: needs the server, -ENOTCONN otherwise): the caller reads
 * it back (course_db_report) before saying it is saved.
 * @return 0 and *@note_id, or a negative errno with @err filled.
 */
int course_db_adverse_add(struct course_db *db, const char *patient, int64_t session,
			  int64_t now, const char *author, const char *text, int64_t *note_id,
			  char *err, size_t errlen);

#endif /* RPMSD_COURSE_DB_H */
