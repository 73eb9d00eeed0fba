/* SPDX-License-Identifier: MIT */
/*
 * One run of the daemon: builds the pipeline from a validated config,
 * runs it until the recording ends or a signal arrives, shuts it down coil
 * first, and prints the session summary.
 */
#ifndef RPMSD_SESSION_H
#define RPMSD_SESSION_H

#include <stdbool.h>
#include <stdio.h>

struct rpmsd_config;

/** Command-line choices that are not config keys. */
struct session_options {
	bool fast;			/* replay as fast as possible (virtual time) */
	double wait_subscriber_s;	/* > 0: wait for a subscriber before starting */
};

/**
 * Run a session.
 * @param summary  where the end-of-session summary goes (NULL: nowhere)
 * @return 0 on a clean end (recording ended or SIGINT/SIGTERM), 1 on a
 *         start-up error (already reported), 3 on a fault during the run
 */
int session_run(const struct rpmsd_config *cfg, const struct session_options *opt,
		FILE *summary);

/**
 * Validate a config completely without running (--check-config): the
 * checks a start makes before it opens the coil, binds a socket or starts a
 * thread (the same code as session_run's), then daemon.state_dir. Opens
 * the source (a recording, or the IIO device) and loads the plugin without
 * opening it. Prints the first problem on stderr.
 * @return 0 when valid, -EINVAL or another -errno otherwise
 */
int session_check(const struct rpmsd_config *cfg);

#endif /* RPMSD_SESSION_H */
