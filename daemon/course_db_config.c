// SPDX-License-Identifier: MIT
/*
 * The [course_db] keys as a struct course_db_config: paths resolved as the
 * daemon resolves its other files (relative: to the configuration file's
 * directory), the state directory's defaults filled in.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "course_db.h"
#include "course_db_config.h"

/*
 * @file resolved, or @dflt in daemon.state_dir when @file is empty. @key
 * names the key in messages.
 */
static int course_db_config_path(const struct rpmsd_config *cfg, const char *key,
				 const char *file, const char *dflt, char *out, size_t outlen,
				 char *err, size_t errlen)
{
	char dir[CONFIG_PATH_MAX];
	int n;

	if (*file) {
		if (config_resolve(cfg, file, out, outlen) == 0) {
			return 0;
		}
	} else if (config_resolve(cfg, cfg->daemon.state_dir, dir, sizeof(dir)) == 0) {
		n = snprintf(out, outlen, "%s/%s", dir, dflt);
		if (n >= 0 && (size_t)n < outlen) {
			return 0;
		}
	}
	snprintf(err, errlen, "%s:%d: course_db.%s: path too long (at most %d bytes)", cfg->path,
		 config_key_line(cfg, "course_db", key), key, CONFIG_PATH_MAX - 1);
	return -ENAMETOOLONG;
}

int course_db_config_from(const struct rpmsd_config *cfg, enum course_db_mode mode,
			  struct course_db_config_paths *paths, struct course_db_config *out,
			  char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof(*out));
	memset(paths, 0, sizeof(*paths));
	out->mode = mode;
	out->busy_timeout_ms = cfg->course_db.busy_timeout_ms;
	switch (cfg->course_db.backend) {
	case CONFIG_COURSE_DB_POSTGRESQL:
		out->backend = COURSE_DB_POSTGRESQL;
		if (!cfg->course_db.conninfo[0]) {
			snprintf(err, errlen, "%s:%d: course_db.conninfo: empty (allowed: a libpq "
				 "connection string; required with course_db.backend = postgresql)",
				 cfg->path, config_key_line(cfg, "course_db", "backend"));
			return -EINVAL;
		}
		out->conninfo = cfg->course_db.conninfo;
		rc = course_db_config_path(cfg, "journal", cfg->course_db.journal,
					   "course-journal.db", paths->journal,
					   sizeof(paths->journal), err, errlen);
		if (rc < 0) {
			return rc;
		}
		out->journal = paths->journal;
		return 0;
	case CONFIG_COURSE_DB_SQLITE:
	default:
		out->backend = COURSE_DB_SQLITE;
		rc = course_db_config_path(cfg, "path", cfg->course_db.path, "course.db",
					   paths->path, sizeof(paths->path), err, errlen);
		if (rc < 0) {
			return rc;
		}
		out->path = paths->path;
		return 0;
	}
}
