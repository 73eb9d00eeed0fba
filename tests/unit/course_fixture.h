/* SPDX-License-Identifier: MIT */
/*
 * The fixture test_course_db.c and test_course_report.c share: a fresh
 * directory per test with the SQLite course database's path in it, an error
 * buffer, and the handle the test opened (closed by the teardown).
 */
#ifndef RPMSD_TESTS_COURSE_FIXTURE_H
#define RPMSD_TESTS_COURSE_FIXTURE_H

#include <stdint.h>

#include "course_db.h"

/* 2026-11-27 00:00 UTC: a day of the caller's zone is [DAY0 + k * 86400, + 86400) here. */
#define DAY0 INT64_C(1795737600)
#define DAY_S INT64_C(86400)
#define HOUR_S INT64_C(3600)

struct fixture {
	char dir[64];
	char path[96];
	char err[COURSE_DB_ERR_MAX];
	struct course_db *db;
};

/** cmocka setup: a fresh directory (mkdtemp) and course.db's path in it. */
int fixture_setup(void **state);

/** cmocka teardown: closes fx->db (NULL is fine) and removes the directory. */
int fixture_teardown(void **state);

/** Fails the test unless @part is in the fixture's error buffer. */
void assert_err_has(const struct fixture *fx, const char *part);

#endif
