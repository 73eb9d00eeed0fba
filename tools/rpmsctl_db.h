/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl's way into the course database: the configuration loaded, the
 * [course_db] keys read, the database opened as a client
 * (COURSE_DB_CLIENT: never created, migrated or synced), for every
 * subcommand that reads or writes it directly (course, score).
 */
#ifndef RPMSCTL_DB_H
#define RPMSCTL_DB_H

struct course_db;
struct course_db_config;
struct rpmsd_config;
struct rpmsctl_db;

/**
 * Print "rpmsctl CMD: MESSAGE" on stderr.
 * @return @status
 */
int rpmsctl_db_fail(const char *cmd, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * The exit status of a course database call's error @rc: unreachable
 * (-ENOTCONN) or refused.
 */
int rpmsctl_db_status(int rc);

/**
 * Load configuration file @config and open the course database it names,
 * as a client, for subcommand @cmd (its name in the error messages).
 * @return RPMSCTL_CONTROL_OK with *@out (rpmsctl_db_close()), or
 *         RPMSCTL_CONTROL_LOCAL / _UNREACHED with the message printed and
 *         *@out NULL
 */
int rpmsctl_db_open(const char *cmd, const char *config, struct rpmsctl_db **out);

/** Close the database and drop the configuration; NULL is fine. */
void rpmsctl_db_close(struct rpmsctl_db *d);

/** The open course database of @d. */
struct course_db *rpmsctl_db_handle(const struct rpmsctl_db *d);

/** The loaded configuration of @d. */
const struct rpmsd_config *rpmsctl_db_config(const struct rpmsctl_db *d);

/** Where and how @d's database was opened (backend, path, journal). */
const struct course_db_config *rpmsctl_db_dbc(const struct rpmsctl_db *d);

#endif /* RPMSCTL_DB_H */
