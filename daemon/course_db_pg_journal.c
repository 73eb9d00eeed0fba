// SPDX-License-Identifier: MIT
/*
 * The PostgreSQL backend's journal (course_db_pg.c): everything a running
 * session writes goes first to a local SQLite file (synchronous=FULL) and
 * is replayed from it to the server in order, in batches, each entry
 * idempotent there (GREATEST, COALESCE, a unique (origin, seq)), so a
 * server that is away loses nothing and a crash between the server's
 * commit and the journal's delete replays harmlessly.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "course_db.h"
#include "course_db_private.h"
#include "course_db_pg_private.h"

/* Journal entries pushed in one server transaction. */
#define COURSE_DB_PG_BATCH 256

/* The journal's entries: one row per write of a running session. */
static const char course_db_pg_journal_schema[] =
	"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS origin (id TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" op TEXT NOT NULL, session INTEGER NOT NULL, at INTEGER, n INTEGER,"
	" x REAL, y REAL, a TEXT, b TEXT);";

static int course_db_pg_journal_fail(struct course_db_pg *p, const char *what,
				     char *err, size_t errlen)
{
	snprintf(err, errlen, "course database journal %s: %s: %s", p->journal_path, what,
		 sqlite3_errmsg(p->journal));
	return -EIO;
}

/*
 * Append one entry; synchronous=FULL makes it durable before we return, so
 * it is on the rig's disk before anything is sent.
 */
static int course_db_pg_journal_add(struct course_db_pg *p, const char *op, int64_t session,
				    int64_t at, int64_t n, double x, double y, const char *a,
				    const char *b, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (p->client) {
		/* The journal is the rig daemon's: a client never writes to it. */
		snprintf(err, errlen, "course database: opened as a client: sessions are written "
			 "by the rig's rpmsd, not here");
		return -EROFS;
	}
	if (sqlite3_prepare_v2(p->journal, "INSERT INTO journal (op, session, at, n, x, y, a, b)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, session) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, at) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, n) != SQLITE_OK ||
	    sqlite3_bind_double(st, 5, x) != SQLITE_OK ||
	    sqlite3_bind_double(st, 6, y) != SQLITE_OK ||
	    (a ? sqlite3_bind_text(st, 7, a, -1, SQLITE_STATIC) :
	     sqlite3_bind_null(st, 7)) != SQLITE_OK ||
	    (b ? sqlite3_bind_text(st, 8, b, -1, SQLITE_STATIC) :
	     sqlite3_bind_null(st, 8)) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		rc = course_db_pg_journal_fail(p, "append", err, errlen);
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * The results of an assessment as one journal text: a line per result,
 * "CHANNEL<TAB>NAME<TAB>VALUE" (ids never hold a tab or a newline; the
 * value as %.17g, so it reads back exactly).
 */
char *course_db_pg_journal_results_text(const struct course_db_assessment *a)
{
	size_t cap = 1, len = 0;
	char *t;

	for (size_t i = 0; i < a->n_results; i++) {
		cap += strlen(a->results[i].channel) + strlen(a->results[i].name) + 32;
	}
	t = malloc(cap);
	if (!t) {
		return NULL;
	}
	t[0] = '\0';
	for (size_t i = 0; i < a->n_results; i++) {
		len += (size_t)snprintf(t + len, cap - len, "%s\t%s\t%.17g\n",
					a->results[i].channel, a->results[i].name,
					a->results[i].value);
	}
	return t;
}

/*
 * Apply an "assess" journal entry: the assessment once per (origin, seq);
 * its results only when this run inserted it, so a replay adds nothing.
 * @a is "PHASE KIND", @b the results text.
 */
static int course_db_pg_journal_apply_assess(struct course_db_pg *p, int64_t seq, int64_t session,
				     int64_t at, double onset, double duration, const char *a,
				     const char *b, bool *found, char *err, size_t errlen)
{
	char phase[8] = "", kind[16] = "";
	bool inserted = false;
	int64_t id[1] = { 0 }, row[1];
	int rc;

	if (!a || sscanf(a, "%7s %15s", phase, kind) != 2) {
		snprintf(err, errlen, "course database: journal %s entry %" PRId64 ": assessment "
			 "without phase and kind; kept in the journal", p->journal_path, seq);
		return -EBADMSG;
	}
	rc = course_db_pg_q(p, "INSERT INTO assessments (session, phase, kind, at, onset,"
			    " duration, origin, origin_seq) SELECT id, $1, $2, $3, $4, $5, $6, $7"
			    " FROM sessions WHERE id = $8 ON CONFLICT (origin, origin_seq)"
			    " DO NOTHING RETURNING id", id, 1, &inserted, err, errlen, "ssiddsii",
			    phase, kind, at, onset, duration, p->origin, seq, session);
	for (const char *l = b; rc == 0 && inserted && l && *l;) {
		const char *nl = strchr(l, '\n');
		char line[2 * COURSE_DB_ID_MAX + 64], ch[COURSE_DB_ID_MAX * 2 + 2] = "";
		char name[COURSE_DB_ID_MAX + 1] = "";
		char *t1, *t2;
		size_t n = nl ? (size_t)(nl - l) : strlen(l);

		snprintf(line, sizeof(line), "%.*s", (int)n, l);
		l = nl ? nl + 1 : l + n;
		t1 = strchr(line, '\t');
		t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (!t2) {
			snprintf(err, errlen, "course database: journal %s entry %" PRId64 ": bad "
				 "result line; kept in the journal", p->journal_path, seq);
			return -EBADMSG;
		}
		snprintf(ch, sizeof(ch), "%.*s", (int)(t1 - line), line);
		snprintf(name, sizeof(name), "%.*s", (int)(t2 - t1 - 1), t1 + 1);
		rc = course_db_pg_q(p, "INSERT INTO assessment_results VALUES ($1, $2, $3, $4)",
				    NULL, 0, NULL, err, errlen, "issd", id[0], ch, name,
				    strtod(t2 + 1, NULL));
	}
	if (rc == 0) {
		rc = course_db_pg_q(p, "SELECT id FROM sessions WHERE id = $1", row, 1, found, err,
				    errlen, "i", session);
	}
	return rc;
}

/* Apply the journal entry @st points at to the server, inside its transaction. */
static int course_db_pg_journal_apply(struct course_db_pg *p, sqlite3_stmt *st, char *err, size_t errlen)
{
	int64_t seq = sqlite3_column_int64(st, 0);
	const char *op = (const char *)sqlite3_column_text(st, 1);
	int64_t session = sqlite3_column_int64(st, 2);
	int64_t at = sqlite3_column_int64(st, 3);
	int64_t n = sqlite3_column_int64(st, 4);
	double x = sqlite3_column_double(st, 5);
	double y = sqlite3_column_double(st, 6);
	const char *a = (const char *)sqlite3_column_text(st, 7);
	const char *b = (const char *)sqlite3_column_text(st, 8);
	bool found = false;
	int64_t row[1];
	int rc;

	if (!strcmp(op, "pulses")) {
		rc = course_db_pg_q(p, "UPDATE sessions SET pulses = GREATEST(pulses, $1) WHERE"
				    " id = $2 RETURNING id", row, 1, &found, err, errlen, "ii",
				    n, session);
	} else if (!strcmp(op, "end")) {
		rc = course_db_pg_q(p, "UPDATE sessions SET pulses = GREATEST(pulses, $1),"
				    " stopped = COALESCE(stopped, $2),"
				    " stop_reason = COALESCE(stop_reason, $3) WHERE id = $4"
				    " RETURNING id", row, 1, &found, err, errlen, "iisi", n, at, a,
				    session);
	} else if (!strcmp(op, "set")) {
		rc = course_db_pg_q(p, "UPDATE sessions SET"
				    " intensity_pct = CASE WHEN $1::float8 < 0 THEN intensity_pct"
				    " ELSE $1::float8 END, motor_threshold_pct = CASE WHEN"
				    " $2::float8 < 0 THEN motor_threshold_pct ELSE $2::float8 END,"
				    " target = COALESCE($3, target), arm_code = COALESCE($4,"
				    " arm_code) WHERE id = $5 RETURNING id", row, 1, &found, err,
				    errlen, "ddssi", x, y, a, b, session);
	} else if (!strcmp(op, "assess")) {
		rc = course_db_pg_journal_apply_assess(p, seq, session, at, x, y, a, b, &found, err,
					       errlen);
	} else if (!strcmp(op, "recording")) {
		rc = course_db_pg_q(p, "UPDATE sessions SET edf_file = $1, edf_sha256 = $2"
				    " WHERE id = $3 RETURNING id", row, 1, &found, err, errlen,
				    "ssi", a, b, session);
	} else {
		rc = course_db_pg_q(p, "INSERT INTO notes (session, kind, at, what, text, origin,"
				    " origin_seq) SELECT id, $1, $2, $3, $4, $5, $6 FROM sessions"
				    " WHERE id = $7 ON CONFLICT (origin, origin_seq) DO NOTHING",
				    NULL, 0, NULL, err, errlen, "sisssii", op, at, a ? a : "",
				    b ? b : "", p->origin, seq, session);
		if (rc == 0) {
			rc = course_db_pg_q(p, "SELECT id FROM sessions WHERE id = $1", row, 1,
					    &found, err, errlen, "i", session);
		}
	}
	if (rc == 0 && !found) {
		/* Kept in the journal: a server that lost a session is the operator's to see. */
		snprintf(err, errlen, "course database: journal %s entry %" PRId64 " (%s): session "
			 "%" PRId64 " unknown on the server; kept in the journal", p->journal_path,
			 seq, op, session);
		rc = -ENOENT;
	}
	return rc;
}

/* Push one batch of the journal; *@left: entries still in it. */
static int course_db_pg_journal_sync_batch(struct course_db_pg *p, int64_t *left, char *err,
				   size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t last = -1;
	char del[96];
	int rc, step;

	*left = 1;
	rc = course_db_pg_connected(p, err, errlen);
	if (rc < 0) {
		return rc;
	}
	if (sqlite3_prepare_v2(p->journal, "SELECT seq, op, session, at, n, x, y, a, b FROM"
			       " journal ORDER BY seq LIMIT 256", -1, &st, NULL) != SQLITE_OK) {
		return course_db_pg_journal_fail(p, "read", err, errlen);
	}
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		*left = 0;
		goto out;
	}
	rc = course_db_pg_exec(p, "BEGIN", err, errlen);
	if (rc < 0) {
		goto out;
	}
	for (; step == SQLITE_ROW; step = sqlite3_step(st)) {
		rc = course_db_pg_journal_apply(p, st, err, errlen);
		if (rc < 0) {
			course_db_pg_rollback(p);
			goto out;
		}
		last = sqlite3_column_int64(st, 0);
	}
	if (step != SQLITE_DONE) {
		rc = course_db_pg_journal_fail(p, "read", err, errlen);
		course_db_pg_rollback(p);
		goto out;
	}
	rc = course_db_pg_exec(p, "COMMIT", err, errlen);
	if (rc < 0) {
		goto out;
	}
	/* On the server now: a crash before this delete replays idempotent entries. */
	snprintf(del, sizeof(del), "DELETE FROM journal WHERE seq <= %" PRId64, last);
	if (sqlite3_exec(p->journal, del, NULL, NULL, NULL) != SQLITE_OK) {
		rc = course_db_pg_journal_fail(p, "delete synced entries", err, errlen);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

int64_t course_db_pg_journal_pending(struct course_db *db, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	sqlite3_stmt *st = NULL;
	int64_t n;

	if (!p->journal) {
		snprintf(err, errlen, "%s", p->journal_why);
		return -ENOENT;
	}
	if (sqlite3_prepare_v2(p->journal, "SELECT COUNT(*) FROM journal", -1, &st,
			       NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return course_db_pg_journal_fail(p, "count", err, errlen);
	}
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* COURSE_DB_CLIENT: 0 when this rig's journal is known to be empty, -EAGAIN otherwise. */
static int course_db_pg_journal_client_synced(struct course_db *db, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	char why[COURSE_DB_ERR_MAX];
	int64_t n = course_db_pg_journal_pending(db, why, sizeof(why));

	if (n == 0) {
		return 0;
	}
	if (n > 0) {
		snprintf(err, errlen, "course database: %" PRId64 " entries of the journal %s are "
			 "not on the server yet (only the rig's rpmsd syncs them): a total read "
			 "now could be low", n, p->journal_path);
	} else {
		snprintf(err, errlen, "course database: %s: a total read now could be low", why);
	}
	return -EAGAIN;
}

int course_db_pg_journal_sync(struct course_db *db, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	int64_t left = 1;
	int rc = 0;

	if (p->client) {
		/*
		 * Only the rig syncs its journal (two syncing it could reorder its
		 * entries); a total read past unsynced entries could be low: refused.
		 */
		return course_db_pg_journal_client_synced(db, err, errlen);
	}
	while (left && rc == 0) {
		rc = course_db_pg_journal_sync_batch(p, &left, err, errlen);
	}
	return rc;
}

/* Journal first, then an attempt to sync; the server being away is not a failure here. */
int course_db_pg_journal_write(struct course_db *db, const char *op, int64_t session,
			       int64_t at, int64_t n, double x, double y, const char *a,
			       const char *b, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	char ignored[COURSE_DB_ERR_MAX];
	int rc;

	rc = course_db_pg_journal_add(p, op, session, at, n, x, y, a, b, err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_pg_journal_sync(db, ignored, sizeof(ignored));
	if (rc < 0 && rc != -ENOTCONN) {
		snprintf(err, errlen, "%s", ignored);
		return rc;
	}
	return 0;
}

int course_db_pg_journal_open(struct course_db_pg *p, const char *path,
			      char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	unsigned char rnd[16];
	int rc = 0;

	if (sqlite3_open_v2(path, &p->journal, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		return p->journal ? course_db_pg_journal_fail(p, "open", err, errlen) : -ENOMEM;
	}
	sqlite3_busy_timeout(p->journal, 5000);
	if (sqlite3_exec(p->journal, course_db_pg_journal_schema, NULL, NULL, NULL) != SQLITE_OK) {
		return course_db_pg_journal_fail(p, "schema", err, errlen);
	}
	if (sqlite3_prepare_v2(p->journal, "SELECT id FROM origin", -1, &st, NULL) != SQLITE_OK) {
		return course_db_pg_journal_fail(p, "origin", err, errlen);
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(p->origin, sizeof(p->origin), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		goto out;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, errlen, "course database journal %s: getrandom failed", path);
		rc = -EIO;
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		snprintf(p->origin + 2 * i, 3, "%02x", rnd[i]);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(p->journal, "INSERT INTO origin VALUES (?)", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, p->origin, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		rc = course_db_pg_journal_fail(p, "origin", err, errlen);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * COURSE_DB_CLIENT: the rig's journal, read-only, when this machine has it;
 * otherwise none, and journal_why says so (the report's pending is -1).
 */
void course_db_pg_journal_peek(struct course_db_pg *p, const char *path)
{
	if (!path || !*path) {
		snprintf(p->journal_why, sizeof(p->journal_why), "no journal configured "
			 "(course_db.journal): this rig's unsynced entries cannot be counted");
		return;
	}
	if (access(path, F_OK) != 0) {
		snprintf(p->journal_why, sizeof(p->journal_why), "journal %s: %s: this rig's "
			 "unsynced entries cannot be counted here", path, strerror(errno));
		return;
	}
	if (sqlite3_open_v2(path, &p->journal, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK) {
		snprintf(p->journal_why, sizeof(p->journal_why), "journal %s: %s", path,
			 p->journal ? sqlite3_errmsg(p->journal) : "out of memory");
		sqlite3_close(p->journal);
		p->journal = NULL;
		return;
	}
	sqlite3_busy_timeout(p->journal, 5000);
}

int course_db_pg_journal_check(struct course_db_pg *p, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (!p->journal) {
		return 0;
	}
	if (sqlite3_prepare_v2(p->journal, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = course_db_pg_journal_fail(p, "integrity check", err, errlen);
	} else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		snprintf(err, errlen, "course database journal %s: integrity check: %s",
			 p->journal_path, (const char *)sqlite3_column_text(st, 0));
		rc = -EBADMSG;
	}
	sqlite3_finalize(st);
	return rc;
}
