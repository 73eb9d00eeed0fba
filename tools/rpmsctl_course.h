/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl course: a patient's course read straight from the course
 * database the configuration names (docs/course_db.md), and adverse-event
 * notes entered into it. Works without the daemon running.
 */
#ifndef RPMSCTL_COURSE_H
#define RPMSCTL_COURSE_H

#include <stdio.h>

/**
 * Run "course PATIENT [--course ID] [--config FILE] [--json]" or
 * "course note PATIENT --session ID --adverse TEXT [--config FILE]";
 * @argv[0] is "course".
 * @return an exit status of rpmsctl_control.h: 0 done, 1 refused by the
 * database (unknown patient, course or session), 2 usage, 3 database
 * unreachable, 4 a local error (configuration, database file)
 */
int rpmsctl_course_main(int argc, char **argv);

/** Print the course commands' part of the usage text. */
void rpmsctl_course_usage(FILE *f);

#endif /* RPMSCTL_COURSE_H */
