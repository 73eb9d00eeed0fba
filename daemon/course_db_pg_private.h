/* SPDX-License-Identifier: MIT */
/*
 * What course_db_pg.c (the connection, the schema, session starts,
 * reports, outcomes) shares with course_db_pg_journal.c (the local
 * journal of a running session's writes and its replay to the server).
 */
#ifndef RPMSD_COURSE_DB_PG_PRIVATE_H
#define RPMSD_COURSE_DB_PG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "course_db.h"

/** The PostgreSQL backend's state: the connection and the journal. */
struct course_db_pg {
	PGconn *conn;
	sqlite3 *journal;
	char *journal_path;
	char origin[33];		/* this journal's id, for the notes' uniqueness */
	bool client;			/* COURSE_DB_CLIENT: journal read-only or NULL */
	char journal_why[COURSE_DB_ERR_MAX];	/* client: why there is no journal */
};

/** The backend's state of @db. */
static inline struct course_db_pg *course_db_pg_of(struct course_db *db)
{
	return db->priv;
}

/* course_db_pg.c */

/** The connection, reset once if it broke; -ENOTCONN with @err otherwise. */
int course_db_pg_connected(struct course_db_pg *p, char *err, size_t errlen);

/**
 * Run @sql ($1.. placeholders) with the arguments @types says ('s' text,
 * NULL for NULL, 'i' int64_t, 'd' double, 'I' int64_t with < 0 for NULL,
 * 'D' double with NAN for NULL), reading up to @ncol integers of the first
 * row into @row (NULL: -1); *@found (when not NULL) says whether there was
 * one. @return 0, -ENOTCONN when the connection is gone, -EBUSY, -EIO.
 */
int course_db_pg_q(struct course_db_pg *p, const char *sql, int64_t *row, int ncol,
		   bool *found, char *err, size_t errlen, const char *types, ...);

/** Run @sql without arguments or rows (BEGIN, COMMIT); as course_db_pg_q. */
int course_db_pg_exec(struct course_db_pg *p, const char *sql, char *err, size_t errlen);

/** Roll back the transaction in progress, if any. */
void course_db_pg_rollback(struct course_db_pg *p);

/* course_db_pg_journal.c */

/** Open (creating it) the rig's journal at @path and read or make its origin id. */
int course_db_pg_journal_open(struct course_db_pg *p, const char *path,
			      char *err, size_t errlen);

/**
 * COURSE_DB_CLIENT: open the rig's journal at @path read-only when this
 * machine has it; otherwise none, with p->journal_why saying why.
 */
void course_db_pg_journal_peek(struct course_db_pg *p, const char *path);

/**
 * Append one entry to the journal (durable before return), then try a
 * sync: the server being away is not a failure here.
 */
int course_db_pg_journal_write(struct course_db *db, const char *op, int64_t session,
			       int64_t at, int64_t n, double x, double y, const char *a,
			       const char *b, char *err, size_t errlen);

/**
 * Replay the whole journal to the server (the ops' sync). A client never
 * syncs: it gets 0 only when the rig's journal is known to be empty.
 */
int course_db_pg_journal_sync(struct course_db *db, char *err, size_t errlen);

/** The journal's entries not on the server yet (the ops' pending), or -errno. */
int64_t course_db_pg_journal_pending(struct course_db *db, char *err, size_t errlen);

/** The journal's integrity (PRAGMA integrity_check); 0 when there is no journal. */
int course_db_pg_journal_check(struct course_db_pg *p, char *err, size_t errlen);

/**
 * An assessment's results as one journal text, a line per result
 * (malloc'ed; NULL when out of memory).
 */
char *course_db_pg_journal_results_text(const struct course_db_assessment *a);

#endif /* RPMSD_COURSE_DB_PG_PRIVATE_H */
