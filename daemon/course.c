/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of a course: prescriptions by course id, the course
 * database opened from the course_db.* keys, and the running course
 * session (course.h). Control thread only once open; never RT.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "course.h"
#include "course_db.h"
#include "log.h"
#include "zone.h"

#define COURSE_RX_TEXT_MAX 65536	/* a prescription file is far smaller */

struct course {
	struct course_db_config dbc;
	char dir[CONFIG_PATH_MAX];	/* course.prescriptions, resolved */
	char path[CONFIG_PATH_MAX];	/* course_db.path, resolved */
	char journal[CONFIG_PATH_MAX];
	char conninfo[CONFIG_PATH_MAX];
	char rig[COURSE_DB_ID_MAX + 1];
	int64_t max_daily_pulses;	/* safety.max_daily_pulses */
	struct zone *zone;		/* safety.day_zone */
	struct course_db *db;		/* NULL: not open (a server down at start) */

	char mark[CONFIG_PATH_MAX];	/* state_dir/course-session: a session running */
	uint64_t start_day_pulses;	/* the gate's pulses today at this start */

	/* the running course session */
	bool active;
	int64_t session;
	struct prescription rx;
	uint64_t pushed;		/* the pulses the database was last told */
};

static void course_recover(struct course *c, uint64_t day_pulses);

/* "FILE:LINE" of section.key, or FILE when it kept its default. */
static void course_where(const struct rpmsd_config *cfg, const char *section, const char *key,
			 char *buf, size_t len)
{
	int line = config_key_line(cfg, section, key);

	if (line) {
		snprintf(buf, len, "%s:%d", cfg->path, line);
	} else {
		snprintf(buf, len, "%s", cfg->path);
	}
}

/* @file (a key's value) against the config file's directory, or DIR/@dflt when empty. */
static int course_path(const struct rpmsd_config *cfg, const char *file, const char *dflt,
		       char *out, size_t len)
{
	size_t n;

	if (file[0]) {
		return config_resolve(cfg, file, out, len);
	}
	if (config_resolve(cfg, cfg->daemon.state_dir, out, len) < 0) {
		return -ENAMETOOLONG;
	}
	n = strlen(out);
	if (n + 1 + strlen(dflt) + 1 > len) {
		return -ENAMETOOLONG;
	}
	out[n] = '/';
	memcpy(out + n + 1, dflt, strlen(dflt) + 1);
	return 0;
}

int course_check(const struct rpmsd_config *cfg, char *err, size_t errlen)
{
	char dir[CONFIG_PATH_MAX], where[CONFIG_PATH_MAX + 16];
	struct stat st;

	if (!cfg->course.prescriptions[0]) {
		return 0;
	}
	course_where(cfg, "course", "prescriptions", where, sizeof(where));
	if (config_resolve(cfg, cfg->course.prescriptions, dir, sizeof(dir)) < 0) {
		snprintf(err, errlen, "%s: course.prescriptions: path too long", where);
		return -ENAMETOOLONG;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: course.prescriptions: '%.*s' %s (allowed: an existing "
			 "directory of prescription files, docs/prescriptions.md)", where,
			 (int)(errlen / 2), dir,
			 errno == ENOENT ? "does not exist" : "is not a directory");
		return -ENOENT;
	}
	if (cfg->course_db.backend == CONFIG_COURSE_DB_POSTGRESQL && !cfg->course_db.conninfo[0]) {
		course_where(cfg, "course_db", "backend", where, sizeof(where));
		snprintf(err, errlen, "%s: course_db.conninfo: empty, but course_db.backend = "
			 "postgresql needs it (allowed: a libpq conninfo such as \"host=db.example "
			 "dbname=rpms user=rig1\")", where);
		return -EINVAL;
	}
	/*
	 * The same check the connection makes first (course_db_open): a
	 * conninfo off this host without verify-full is refused by the check
	 * too, not only at the start, and without connecting.
	 */
	if (cfg->course_db.backend == CONFIG_COURSE_DB_POSTGRESQL) {
		char why[COURSE_DB_ERR_MAX];
		int ret = course_db_check_conninfo(cfg->course_db.conninfo, why, sizeof(why));

		if (ret < 0) {
			course_where(cfg, "course_db", "conninfo", where, sizeof(where));
			snprintf(err, errlen, "%s: %.*s", where, (int)(errlen / 2), why);
			return ret;
		}
	}
	if (course_path(cfg, cfg->course_db.path, "course.db", dir, sizeof(dir)) < 0 ||
	    course_path(cfg, cfg->course_db.journal, "course-journal.db", dir, sizeof(dir)) < 0) {
		snprintf(err, errlen, "%s: course_db.path or course_db.journal: path too long",
			 cfg->path);
		return -ENAMETOOLONG;
	}
	return 0;
}

int course_open(const struct rpmsd_config *cfg, uint64_t day_pulses, struct course **out, char *err,
		size_t errlen)
{
	char why[COURSE_DB_ERR_MAX];
	struct course *c;
	int ret;

	*out = NULL;
	if (!cfg->course.prescriptions[0]) {
		return 0;
	}
	ret = course_check(cfg, err, errlen);
	if (ret < 0) {
		return ret;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "course: out of memory");
		return -ENOMEM;
	}
	(void)config_resolve(cfg, cfg->course.prescriptions, c->dir, sizeof(c->dir));
	(void)course_path(cfg, cfg->course_db.path, "course.db", c->path, sizeof(c->path));
	(void)course_path(cfg, cfg->course_db.journal, "course-journal.db", c->journal,
			  sizeof(c->journal));
	if (course_path(cfg, "", "course-session", c->mark, sizeof(c->mark)) < 0) {
		snprintf(err, errlen, "daemon.state_dir: path too long");
		ret = -ENAMETOOLONG;
		goto err_free;
	}
	snprintf(c->conninfo, sizeof(c->conninfo), "%s", cfg->course_db.conninfo);
	if (cfg->course.rig[0]) {
		snprintf(c->rig, sizeof(c->rig), "%s", cfg->course.rig);
	} else if (gethostname(c->rig, sizeof(c->rig) - 1) < 0 || !c->rig[0]) {
		snprintf(c->rig, sizeof(c->rig), "rig");
	}
	c->max_daily_pulses = cfg->safety.max_daily_pulses;
	c->start_day_pulses = day_pulses;
	c->dbc.backend = cfg->course_db.backend == CONFIG_COURSE_DB_POSTGRESQL
				 ? COURSE_DB_POSTGRESQL : COURSE_DB_SQLITE;
	c->dbc.path = c->path;
	c->dbc.conninfo = c->conninfo;
	c->dbc.journal = c->journal;
	c->dbc.busy_timeout_ms = cfg->course_db.busy_timeout_ms;
	ret = zone_load(cfg->safety.day_zone, &c->zone, why, sizeof(why));
	if (ret < 0) {
		snprintf(err, errlen, "safety.day_zone: %s", why);
		goto err_free;
	}
	ret = course_db_open(&c->dbc, &c->db, why, sizeof(why));
	if (ret == -ENOTCONN) {
		/* the journal keeps the pulses; a course session waits for the server */
		log_warn("course: %s; a course session is refused until it answers", why);
	} else if (ret < 0) {
		snprintf(err, errlen, "course database: %s", why);
		goto err_free;
	} else {
		course_recover(c, day_pulses);
		log_info("course: prescriptions in %s, %s database %s, rig %s", c->dir,
			 c->dbc.backend == COURSE_DB_SQLITE ? "SQLite" : "PostgreSQL",
			 c->dbc.backend == COURSE_DB_SQLITE ? c->path : "server", c->rig);
	}
	*out = c;
	return 0;

err_free:
	course_close(c);
	return ret;
}

void course_close(struct course *c)
{
	if (!c) {
		return;
	}
	course_db_close(c->db);
	zone_free(c->zone);
	free(c);
}

/* Whether @name ends in ".rx". */
static bool course_is_rx(const char *name)
{
	size_t n = strlen(name);

	return n > 3 && !strcmp(name + n - 3, ".rx") && name[0] != '.';
}

int course_find(struct course *c, const char *course_id, const char *patient,
		struct prescription *rx, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX + 256], why[PRESCRIPTION_ERR_MAX], bad[PRESCRIPTION_ERR_MAX] = "";
	struct prescription *cand = malloc(sizeof(*cand));
	struct dirent *de;
	unsigned found = 0, unreadable = 0;
	DIR *d;
	int ret = 0;

	if (!cand) {
		snprintf(err, errlen, "course: out of memory");
		return -ENOMEM;
	}
	d = opendir(c->dir);
	if (!d) {
		ret = -errno;
		snprintf(err, errlen, "course.prescriptions: %s: %s", c->dir, strerror(-ret));
		goto out;
	}
	while ((de = readdir(d))) {
		if (!course_is_rx(de->d_name) ||
		    snprintf(path, sizeof(path), "%s/%s", c->dir, de->d_name) >= (int)sizeof(path)) {
			continue;
		}
		if (prescription_load(cand, path, why, sizeof(why)) < 0) {
			/* reported if the course is not found: it may be the one asked for */
			if (!unreadable++) {
				snprintf(bad, sizeof(bad), "%s", why);
			}
			continue;
		}
		if (strcmp(cand->course.id, course_id)) {
			continue;
		}
		if (found++) {
			snprintf(err, errlen, "course %s: two prescriptions claim it: %s and %s (allowed: "
				 "one file a course)", course_id, rx->path, cand->path);
			ret = -EINVAL;
			break;
		}
		*rx = *cand;
	}
	closedir(d);
	if (ret < 0) {
		goto out;
	}
	if (!found) {
		snprintf(err, errlen, "course %s: no prescription with course.id = %s in %s%s%s",
			 course_id, course_id, c->dir, unreadable ? "; a file could not be read: " : "",
			 bad);
		ret = -ENOENT;
	} else if (strcmp(rx->patient.id, patient)) {
		snprintf(err, errlen, "course %s is patient %s's (%s: patient.id), not patient %s's "
			 "(session_start patient_id)", course_id, rx->patient.id, rx->path, patient);
		ret = -EPERM;
	}
out:
	free(cand);
	return ret;
}

/* [day_start, day_end) of @now in safety.day_zone: the last day end not after @now. */
static void course_day(const struct course *c, int64_t now, int64_t *start, int64_t *end)
{
	int64_t s = zone_day_end(c->zone, now - 3 * 86400), n;

	while ((n = zone_day_end(c->zone, s)) <= now) {
		s = n;
	}
	*start = s;
	*end = zone_day_end(c->zone, now);
}

/* The prescription file's text, for the database (the prescription as written). */
static char *course_read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = f ? malloc(COURSE_RX_TEXT_MAX) : NULL;
	size_t n = 0;

	if (buf) {
		n = fread(buf, 1, COURSE_RX_TEXT_MAX - 1, f);
		buf[n] = '\0';
	}
	if (f) {
		fclose(f);
	}
	return buf;
}

/*
 * The mark of a running course session in daemon.state_dir: its database
 * id, its day, the gate's pulses of the day when it began and its cap,
 * written (fsynced) before the session can deliver a pulse and removed at
 * its end. A daemon killed mid-session finds it at the next start and ends
 * the session in the database with an upper bound of its pulses from the
 * pulse ledger, never fewer than it delivered (course_recover).
 */
static int course_mark_write(struct course *c, int64_t session, int64_t day, uint64_t day_pulses,
			     uint64_t cap)
{
	char tmp[CONFIG_PATH_MAX + 8], text[160];
	int fd, n, ret = 0;

	n = snprintf(text, sizeof(text), "session %lld day %lld day_pulses %llu cap %llu\n",
		     (long long)session, (long long)day, (unsigned long long)day_pulses,
		     (unsigned long long)cap);
	snprintf(tmp, sizeof(tmp), "%.*s.tmp", (int)(sizeof(tmp) - 8), c->mark);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		return -errno;
	}
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0) {
		ret = errno ? -errno : -EIO;
	}
	close(fd);
	if (ret == 0 && rename(tmp, c->mark) < 0) {
		ret = -errno;
	}
	if (ret < 0) {
		unlink(tmp);
	}
	return ret;
}

/*
 * End the session a killed daemon left running (its mark), @day_pulses the
 * gate's pulses of today as the ledger had them at this start (at least
 * every pulse delivered: the ledger records ahead of the pulses).
 */
static void course_recover(struct course *c, uint64_t day_pulses)
{
	char err[COURSE_DB_ERR_MAX], why[256];
	long long session, day;
	unsigned long long begun, cap, upper;
	int64_t now = (int64_t)time(NULL);
	FILE *f = fopen(c->mark, "re");
	int n;

	if (!f) {
		return;
	}
	n = fscanf(f, "session %lld day %lld day_pulses %llu cap %llu", &session, &day, &begun, &cap);
	fclose(f);
	if (n != 4) {
		log_warn("course: %s is damaged; left for the operator", c->mark);
		return;
	}
	/* the same day: what the ledger counted since the session began; else the cap */
	upper = cap;
	if (zone_day(c->zone, now) == day && day_pulses >= begun && day_pulses - begun < cap) {
		upper = day_pulses - begun;
	}
	snprintf(why, sizeof(why), "the daemon stopped without ending the session: %llu pulses, an "
		 "upper bound from the pulse ledger", upper);
	if (course_db_pulses(c->db, session, (int64_t)upper, err, sizeof(err)) < 0 ||
	    course_db_note_add(c->db, session, COURSE_DB_DEVIATION, now, "not ended", why, err,
			       sizeof(err)) < 0 ||
	    course_db_session_end(c->db, session, now, (int64_t)upper, why, err, sizeof(err)) < 0) {
		log_warn("course: session %lld left running by the last run: %s", session, err);
		return;
	}
	log_warn("course: session %lld was left running by the last run; ended with %llu pulses "
		 "(an upper bound from the pulse ledger)", session, upper);
	unlink(c->mark);
}

/* The database, opened again if it was not (a server down at start, or since). */
static int course_db_ready(struct course *c, char *err, size_t errlen)
{
	char why[COURSE_DB_ERR_MAX];
	int ret;

	if (c->db) {
		return 0;
	}
	ret = course_db_open(&c->dbc, &c->db, why, sizeof(why));
	if (ret < 0) {
		snprintf(err, errlen, "%s", why);
		return ret;
	}
	course_recover(c, c->start_day_pulses);
	return 0;
}

int course_begin(struct course *c, const struct prescription *rx, double mt_pct,
		 double intensity_pct, const char *arm_code, uint64_t day_pulses, uint64_t *cap,
		 char *err, size_t errlen)
{
	struct course_db_prescription p = { 0 };
	struct course_db_session_detail det;
	char target[160];
	int64_t now = (int64_t)time(NULL), day_start, day_end, today = 0, session, daily, left;
	char *text = NULL;
	int ret;

	if (c->active) {
		snprintf(err, errlen, "course session %lld is still running", (long long)c->session);
		return -EBUSY;
	}
	ret = course_db_ready(c, err, errlen);
	if (ret < 0) {
		return ret;
	}
	text = course_read_text(rx->path);
	if (!text) {
		snprintf(err, errlen, "%s: cannot read it again: %s", rx->path, strerror(errno));
		return -EIO;
	}
	/*
	 * The daily cap across rigs: the configured daily limit, or the
	 * prescription's day (its pulses times its sessions a day) when lower.
	 */
	daily = (int64_t)rx->protocol.pulses * rx->course.sessions_per_day;
	if (c->max_daily_pulses > 0 && c->max_daily_pulses < daily) {
		daily = c->max_daily_pulses;
	}
	p.patient = rx->patient.id;
	p.course = rx->course.id;
	p.text = text;
	p.sessions_per_course = rx->course.sessions;
	p.max_sessions_per_day = rx->course.sessions_per_day;
	p.min_hours_between = rx->course.min_hours_between;
	p.daily_pulse_cap = daily;
	course_day(c, now, &day_start, &day_end);
	ret = course_db_patient_add(c->db, rx->patient.id, err, errlen);
	if (ret == 0) {
		ret = course_db_prescription_put(c->db, &p, err, errlen);
	}
	/* before the begin: a session begun must have its cap; the DB syncs first */
	if (ret == 0) {
		ret = course_db_daily_pulses(c->db, rx->patient.id, day_start, day_end, &today, err,
					     errlen);
	}
	if (ret == 0) {
		ret = course_db_session_begin(c->db, rx->patient.id, rx->course.id, c->rig, now,
					      day_start, day_end, &session, err, errlen);
	}
	free(text);
	if (ret < 0) {
		return ret;
	}
	left = daily - today;
	if (left > rx->protocol.pulses) {
		left = rx->protocol.pulses;
	}
	/* begin refused a day already at its cap, so left > 0 here; never 0 (= no cap) */
	*cap = left > 0 ? (uint64_t)left : 1;
	ret = course_mark_write(c, session, zone_day(c->zone, now), day_pulses, *cap);
	if (ret < 0) {
		/* without the mark a killed run would leave the session open for ever */
		snprintf(err, errlen, "%s: %s; nothing started", c->mark, strerror(-ret));
		c->active = true;
		c->session = session;
		course_abort(c, "not started: the session's mark could not be written");
		return ret;
	}
	snprintf(target, sizeof(target), "%s %s %s",
		 rx->target.kind == PRESCRIPTION_NERVE_TRUNK ? "nerve_trunk" : "motor_point",
		 rx->target.site, rx->target.side == PRESCRIPTION_LEFT ? "left" : "right");
	det.intensity_pct = intensity_pct;
	det.motor_threshold_pct = mt_pct > 0.0 ? mt_pct : -1.0;
	det.target = target;
	det.arm_code = arm_code && arm_code[0] ? arm_code : NULL;	/* the code, never the arm */
	if (course_db_session_set(c->db, session, &det, err, errlen) < 0) {
		log_warn("course: session %lld: %s", (long long)session, err);
	}
	c->active = true;
	c->session = session;
	c->rx = *rx;
	c->pushed = 0;
	log_info("course: %s of patient %s: session %lld begun on rig %s, cap %llu pulses (%lld "
		 "of the day's %lld delivered on all rigs)", rx->course.id, rx->patient.id,
		 (long long)session, c->rig, (unsigned long long)*cap, (long long)today,
		 (long long)daily);
	return 0;
}

int course_threshold(struct course *c, double mt_pct, char *err, size_t errlen)
{
	return course_session_intensity(c, mt_pct, -1.0, err, errlen);
}

int course_session_intensity(struct course *c, double mt_pct, double intensity_pct, char *err,
			     size_t errlen)
{
	struct course_db_session_detail det = { .intensity_pct = intensity_pct,
						.motor_threshold_pct = mt_pct };

	if (!c || !c->active || !c->db) {
		snprintf(err, errlen, "no course session");
		return -ENOENT;
	}
	return course_db_session_set(c->db, c->session, &det, err, errlen);
}

void course_abort(struct course *c, const char *why)
{
	char err[COURSE_DB_ERR_MAX];

	if (!c || !c->active) {
		return;
	}
	if (course_db_session_end(c->db, c->session, (int64_t)time(NULL), 0, why, err,
				  sizeof(err)) < 0) {
		log_warn("course: ending session %lld: %s", (long long)c->session, err);
	}
	unlink(c->mark);
	c->active = false;
}

bool course_active(const struct course *c)
{
	return c && c->active;
}

const struct prescription *course_rx(const struct course *c)
{
	return c && c->active ? &c->rx : NULL;
}

int64_t course_session_id(const struct course *c)
{
	return c && c->active ? c->session : 0;
}

void course_pulses(struct course *c, uint64_t delivered)
{
	char err[COURSE_DB_ERR_MAX];

	if (!c || !c->active || delivered == c->pushed) {
		return;
	}
	if (course_db_pulses(c->db, c->session, (int64_t)delivered, err, sizeof(err)) < 0) {
		log_warn("course: session %lld: %llu pulses: %s", (long long)c->session,
			 (unsigned long long)delivered, err);
		return;
	}
	c->pushed = delivered;
}

int course_deviation(struct course *c, const char *what, const char *why, char *err,
		     size_t errlen)
{
	if (!c || !c->active) {
		snprintf(err, errlen, "no course session");
		return -ENOENT;
	}
	return course_db_note_add(c->db, c->session, COURSE_DB_DEVIATION, (int64_t)time(NULL), what,
				  why, err, errlen);
}

int course_assessment(struct course *c, struct course_db_assessment *a, char *err,
		      size_t errlen)
{
	if (!c || !c->active) {
		snprintf(err, errlen, "no course session");
		return -ENOENT;
	}
	a->session = c->session;
	return course_db_assessment_add(c->db, a, err, errlen);
}

void course_end(struct course *c, uint64_t delivered, const char *reason, const char *edf,
		char *deviation, size_t devlen)
{
	char err[COURSE_DB_ERR_MAX], hex[65];
	int64_t now = (int64_t)time(NULL);
	const char *why = reason && reason[0] ? reason : "no reason given";
	const char *base;

	deviation[0] = '\0';
	if (!c || !c->active) {
		return;
	}
	if (delivered < (uint64_t)c->rx.protocol.pulses) {
		snprintf(deviation, devlen, "stopped early: %llu of %d pulses: %s",
			 (unsigned long long)delivered, c->rx.protocol.pulses, why);
		if (course_db_note_add(c->db, c->session, COURSE_DB_DEVIATION, now, "stopped early",
				       deviation, err, sizeof(err)) < 0) {
			log_warn("course: session %lld: deviation: %s", (long long)c->session, err);
		}
	}
	if (course_db_session_end(c->db, c->session, now, (int64_t)delivered,
				  deviation[0] ? why : NULL, err, sizeof(err)) < 0) {
		log_warn("course: ending session %lld: %s", (long long)c->session, err);
	}
	if (edf && edf[0]) {
		if (course_sha256_file(edf, hex) < 0) {
			log_warn("course: session %lld: cannot hash %s", (long long)c->session, edf);
		} else {
			base = strrchr(edf, '/');
			if (course_db_session_recording(c->db, c->session, base ? base + 1 : edf, hex,
							err, sizeof(err)) < 0) {
				log_warn("course: session %lld: recording: %s", (long long)c->session,
					 err);
			}
		}
	}
	log_info("course: session %lld ended with %llu pulses%s%s", (long long)c->session,
		 (unsigned long long)delivered, deviation[0] ? "; deviation: " : "", deviation);
	unlink(c->mark);
	c->active = false;
}

void course_intensity_text(const struct prescription *rx, double mt_pct, char *buf, size_t len)
{
	if (rx->intensity.kind == PRESCRIPTION_INTENSITY_MT && !(mt_pct > 0.0)) {
		snprintf(buf, len, "%.4g %% of MT, MT not measured yet",
			 rx->intensity.motor_threshold_pct);
	} else if (rx->intensity.kind == PRESCRIPTION_INTENSITY_MT) {
		snprintf(buf, len, "%.4g %% of MT %.4g %% MSO = %.4g %% MSO",
			 rx->intensity.motor_threshold_pct, mt_pct,
			 rx->intensity.motor_threshold_pct * mt_pct / 100.0);
	} else {
		snprintf(buf, len, "%.4g %% MSO", rx->intensity.max_output_pct);
	}
}

static const char *course_pattern_name(enum prescription_pattern p)
{
	switch (p) {
	case PRESCRIPTION_CONTINUOUS:
		return "continuous";
	case PRESCRIPTION_ON_OFF:
		return "on_off";
	case PRESCRIPTION_THETA_BURST:
		return "theta_burst";
	case PRESCRIPTION_EMG_TRIGGERED:
		return "emg_triggered";
	}
	return "?";
}

void course_edf_notes(const struct prescription *rx, double mt_pct, char *buf, size_t len)
{
	char rule[96];

	/* course_intensity_text without its spaces: EDF+ keeps 40 characters */
	if (rx->intensity.kind == PRESCRIPTION_INTENSITY_MT && !(mt_pct > 0.0)) {
		/* the threshold procedure's result is annotated when it comes */
		snprintf(rule, sizeof(rule), "%.4g%% of MT (MT pending)",
			 rx->intensity.motor_threshold_pct);
	} else if (rx->intensity.kind == PRESCRIPTION_INTENSITY_MT) {
		snprintf(rule, sizeof(rule), "%.4g%% of MT %.4g%% = %.4g%% MSO",
			 rx->intensity.motor_threshold_pct, mt_pct,
			 rx->intensity.motor_threshold_pct * mt_pct / 100.0);
	} else {
		snprintf(rule, sizeof(rule), "%.4g%% MSO", rx->intensity.max_output_pct);
	}
	if (rx->protocol.preset[0]) {
		snprintf(buf, len, "course %s\ntarget %s %s %s\nprotocol preset %s\nintensity %s\n",
			 rx->course.id,
			 rx->target.kind == PRESCRIPTION_NERVE_TRUNK ? "nerve_trunk" : "motor_point",
			 rx->target.site, rx->target.side == PRESCRIPTION_LEFT ? "left" : "right",
			 rx->protocol.preset, rule);
	} else {
		snprintf(buf, len, "course %s\ntarget %s %s %s\nprotocol %s %.4g Hz %d pulses\n"
			 "intensity %s\n", rx->course.id,
			 rx->target.kind == PRESCRIPTION_NERVE_TRUNK ? "nerve_trunk" : "motor_point",
			 rx->target.site, rx->target.side == PRESCRIPTION_LEFT ? "left" : "right",
			 course_pattern_name(rx->protocol.pattern), prescription_rate_hz(rx),
			 rx->protocol.pulses, rule);
	}
}

int course_sha256_file(const char *path, char hex[65])
{
	crypto_hash_sha256_state st;
	unsigned char buf[65536], out[crypto_hash_sha256_BYTES];
	ssize_t n;
	int fd, ret = 0;

	if (sodium_init() < 0) {
		return -EIO;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			ret = -errno;
			break;
		}
		crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
	}
	close(fd);
	if (ret == 0) {
		crypto_hash_sha256_final(&st, out);
		sodium_bin2hex(hex, 65, out, sizeof(out));
	}
	return ret;
}
