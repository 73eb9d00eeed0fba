/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl score: clinical scores (Modified Ashworth, Modified Tardieu,
 * Fugl-Meyer UE) entered by a clinician straight into the course database
 * the configuration names (docs/outcomes.md). Works without the daemon.
 */
#ifndef RPMSCTL_SCORE_H
#define RPMSCTL_SCORE_H

#include <stdio.h>

/**
 * Run "score PATIENT (--session ID | --course ID) (--pre | --post)
 * [--mas MUSCLE=GRADE]... [--tardieu MUSCLE=R1,R2]... [--fugl-meyer N]
 * [--config FILE]"; @argv[0] is "score". Every score is checked before
 * any is written; each is read back before "saved" is printed.
 * @return an exit status of rpmsctl_control.h: 0 saved, 1 refused by the
 * database (unknown patient, course or session), 2 usage or a value out
 * of range, 3 database unreachable, 4 a local error
 */
int rpmsctl_score_main(int argc, char **argv);

/** Print the score command's part of the usage text. */
void rpmsctl_score_usage(FILE *f);

#endif /* RPMSCTL_SCORE_H */
