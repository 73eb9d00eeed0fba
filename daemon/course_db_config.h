/* SPDX-License-Identifier: MIT */
/*
 * Where the course database is, from the configuration's [course_db] keys:
 * the one reading of them, for the daemon (course.c) and rpmsctl course.
 * Pure: reads no file, opens nothing.
 */
#ifndef RPMSD_COURSE_DB_CONFIG_H
#define RPMSD_COURSE_DB_CONFIG_H

#include <stddef.h>

#include "config.h"
#include "course_db.h"

/** The resolved paths a struct course_db_config points into. */
struct course_db_config_paths {
	char path[CONFIG_PATH_MAX];	/* SQLite's file */
	char journal[CONFIG_PATH_MAX];	/* PostgreSQL's local journal */
};

/**
 * course_db_config_from() - the course database @cfg names
 * @cfg: a loaded configuration (relative paths resolve against the
 *	directory of cfg->path, as the daemon's other files)
 * @mode: COURSE_DB_RIG (the daemon) or COURSE_DB_CLIENT (rpmsctl)
 * @paths: receives the resolved paths; @out's strings point into it and
 *	into @cfg, so both must outlive @out
 * @out: receives the backend, paths, conninfo and busy timeout
 * @err: receives "FILE:LINE: course_db.KEY: problem" (line 0: the default)
 * @errlen: size of @err
 *
 * course_db.path empty: course.db in daemon.state_dir; course_db.journal
 * empty: course-journal.db there. PostgreSQL needs course_db.conninfo.
 *
 * Return: 0, -EINVAL (postgresql without a conninfo) or -ENAMETOOLONG.
 */
int course_db_config_from(const struct rpmsd_config *cfg, enum course_db_mode mode,
			  struct course_db_config_paths *paths, struct course_db_config *out,
			  char *err, size_t errlen);

#endif /* RPMSD_COURSE_DB_CONFIG_H */
