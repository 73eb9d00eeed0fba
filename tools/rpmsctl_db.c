// SPDX-License-Identifier: MIT
/*
 * rpmsctl_db (rpmsctl_db.h): the one preamble of the subcommands that go
 * to the course database themselves, so that course and score load the
 * configuration, open the database and word their failures alike.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "course_db.h"
#include "course_db_config.h"
#include "rpmsctl_control.h"
#include "rpmsctl_db.h"

struct rpmsctl_db {
	struct rpmsd_config cfg;
	struct course_db_config_paths paths;	/* dbc's strings point into it */
	struct course_db_config dbc;
	struct course_db *db;
};

int rpmsctl_db_fail(const char *cmd, int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rpmsctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

int rpmsctl_db_status(int rc)
{
	return rc == -ENOTCONN ? RPMSCTL_CONTROL_UNREACHED : RPMSCTL_CONTROL_REFUSED;
}

int rpmsctl_db_open(const char *cmd, const char *config, struct rpmsctl_db **out)
{
	char err[COURSE_DB_ERR_MAX];
	struct rpmsctl_db *d;
	int rc, ret;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d) {
		return rpmsctl_db_fail(cmd, RPMSCTL_CONTROL_LOCAL, "out of memory");
	}
	rc = config_load_flags(&d->cfg, config, CONFIG_LOAD_INPUT_GIVEN, err, sizeof(err));
	if (rc < 0) {
		/* -EINVAL: err names file:line and key; otherwise the file itself failed */
		ret = rc == -EINVAL ? rpmsctl_db_fail(cmd, RPMSCTL_CONTROL_LOCAL, "%s", err) :
		      rpmsctl_db_fail(cmd, RPMSCTL_CONTROL_LOCAL, "--config %s: %s", config,
				      strerror(-rc));
		goto err_free;
	}
	rc = course_db_config_from(&d->cfg, COURSE_DB_CLIENT, &d->paths, &d->dbc, err,
				   sizeof(err));
	if (rc < 0) {
		ret = rpmsctl_db_fail(cmd, RPMSCTL_CONTROL_LOCAL, "%s", err);
		goto err_free;
	}
	rc = course_db_open(&d->dbc, &d->db, err, sizeof(err));
	if (rc < 0) {
		ret = rpmsctl_db_fail(cmd, rc == -ENOTCONN ? RPMSCTL_CONTROL_UNREACHED :
				      RPMSCTL_CONTROL_LOCAL, "%s", err);
		goto err_free;
	}
	*out = d;
	return RPMSCTL_CONTROL_OK;

err_free:
	free(d);
	return ret;
}

void rpmsctl_db_close(struct rpmsctl_db *d)
{
	if (!d) {
		return;
	}
	course_db_close(d->db);
	free(d);
}

struct course_db *rpmsctl_db_handle(const struct rpmsctl_db *d)
{
	return d->db;
}

const struct rpmsd_config *rpmsctl_db_config(const struct rpmsctl_db *d)
{
	return &d->cfg;
}

const struct course_db_config *rpmsctl_db_dbc(const struct rpmsctl_db *d)
{
	return &d->dbc;
}
