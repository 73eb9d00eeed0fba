/* SPDX-License-Identifier: MIT */
/*
 * The session's state, shared by the files that make it up and by nothing
 * else (as control_private.h is for the control socket):
 *
 *   session.c          wiring, the run, signals, SIGHUP, source reopening,
 *                      --check-config (the checks a start makes)
 *   session_ledger.c   the session's side of the pulse ledger: open,
 *                      reservations, the day's end, clock steps, close
 *   session_super.c    the supervisor: heartbeats, readiness, watchdog,
 *                      the status line, daemon.arm_on_start
 *   session_summary.c  the end-of-session summary and the exit status
 *
 * Everything here runs on the main thread.
 */
#ifndef RPMSD_SESSION_PRIVATE_H
#define RPMSD_SESSION_PRIVATE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"	/* CONFIG_PATH_MAX, enum config_log_level */
#include "dose.h"	/* struct dose_clock */
#include "event.h"	/* enum event_state */

struct acquire;
struct control;
struct course;
struct emg_stream;
struct emg_tap;
struct plugin;
struct publish;
struct record;
struct ring;
struct sclock;
struct source;
struct stim;
struct zone;

/* Reopening a failed source, from the main thread (session_wait). */
struct session_reopen {
	bool pending;		/* the acquire thread is parked */
	bool ever;		/* a reopen has happened */
	int64_t due_ns;		/* CLOCK_MONOTONIC of the next attempt */
	int backoff_ms;
	int attempts;		/* in a row without a block */
	uint64_t blocks_at_reopen;
	uint64_t reopens;	/* successful, for the summary */
};

/* The pulse ledger, owned by the main thread (it fsyncs). */
struct session_ledger {
	struct dose_ledger *dose;	/* NULL: unusable, arming is refused */
	struct zone *zone;		/* safety.day_zone, read once at start */
	struct dose_clock clock;	/* the boot id read once; times at each use */
	char dir[CONFIG_PATH_MAX];
	uint64_t recorded;		/* today's count on disk (a reservation) */
	uint64_t reserve;		/* pulses recorded ahead of delivery */
	bool failing;			/* the last write failed: arming held, retried each tick */
	bool failed;			/* a write failed during this run (exit status 3) */
	bool fault_pending;		/* a failure before the session started, not yet published */
	int fault_code;
	bool step_pending;		/* a new day reached by a step is not yet written */
	bool have_offset;
	int64_t wall_offset_ns;		/* CLOCK_REALTIME - CLOCK_MONOTONIC at the last tick */
};

/* The supervisor on the main thread: heartbeats, readiness, watchdog. */
struct session_super {
	bool ready;		/* READY=1 sent */
	bool hung;		/* an RT thread stopped; latched until exit */
	const char *hung_thread;
	int64_t hb_ns;		/* daemon.heartbeat_timeout_ms */
	int64_t acq_limit_ns;	/* the acquire thread may also wait out a read */
	int64_t wd_ns;		/* systemd's WatchdogSec, 0 none */
	int64_t wd_last;	/* CLOCK_MONOTONIC of the last WATCHDOG=1 */
	int64_t status_last;
};

struct session {
	const struct rpmsd_config *cfg;
	struct source *src;
	struct sclock *clock;
	struct plugin *plugin;
	struct blind *blind;		/* sham coil and allocation, or NULL (docs/sham.md) */
	struct stim *stim;
	struct acquire *acq;
	struct publish *pub;
	struct control *ctl;		/* the control socket */
	struct course *course;		/* course.prescriptions set, else NULL */
	struct ring *main_events;
	struct emg_tap *tap;		/* EMG for the recording and rpms.emg, or NULL */
	struct record *rec;		/* record.directory set, else NULL */
	struct emg_stream *emg;		/* publish.emg_stream, else NULL */
	int sfd;
	sigset_t oldmask;
	bool masked;
	struct session_reopen reopen;
	struct session_ledger ledger;
	struct session_super super;
	int dma_fd;			/* /dev/cpu_dma_latency held, or -1 */
	bool running;			/* "started" published: events may follow */
	bool arm_start_pending;		/* daemon.arm_on_start asked, outcome not logged */
	unsigned arm_start_ticket;	/* its stim_arm ticket */
	enum config_log_level log_level;	/* in force: SIGHUP may change it */
};

/* ---- session.c ----------------------------------------------------------- */

/** Publish a state change with @code (0, or the negative errno of a fault). */
void session_state_code(struct session *s, enum event_state state, int code,
			const char *reason);

/** Publish a state change. */
void session_state(struct session *s, enum event_state state, const char *reason);

/* ---- session_ledger.c ---------------------------------------------------- */

/**
 * daemon.state_dir is an existing directory this user may write (rpmsd
 * never creates it).
 * @return 0, or -ENOENT / -ENAMETOOLONG with the message, naming the key's
 *         line (the file when the key kept its default), in @err
 */
int session_ledger_check_dir(const struct rpmsd_config *cfg, char *err, size_t errlen);

/**
 * Open the ledger and record the first reservation, before the stim
 * thread starts. A ledger that cannot be used blocks arming (logged, with
 * the reason); the session still runs.
 * @param virtual_time  fast replay: the whole session's allowance is
 *                      recorded up front
 */
void session_ledger_open(struct session *s, bool virtual_time);

/**
 * Once per main-loop turn: top up the reservation, begin a new day,
 * retry a failed write (arming is held while writes fail).
 */
void session_ledger_tick(struct session *s);

/** After the stim thread stopped: record the exact count. */
void session_ledger_close(struct session *s);

/* ---- session_super.c ----------------------------------------------------- */

/** Read the supervisor's limits from the config and systemd's watchdog. */
void session_super_init(struct session *s);

/**
 * Once per main-loop turn: readiness, the RT threads' heartbeats (a hung
 * one disarms the coil and locks arming out), the watchdog, the status.
 */
void session_super_tick(struct session *s);

/** How long the main loop may sleep and still supervise in time, in ms. */
int session_super_period_ms(const struct session *s);

/** daemon.arm_on_start: ask the stim thread to arm (after it started). */
void session_super_arm_on_start(struct session *s);

/**
 * Log what daemon.arm_on_start came to, once it is known; @final: the
 * session has ended (never armed is then logged too).
 */
void session_super_arm_outcome(struct session *s, bool final);

/* ---- session_summary.c --------------------------------------------------- */

/** The end-of-session summary, to @f; @signo the signal that stopped it, or 0. */
void session_summary_print(struct session *s, FILE *f, int signo);

/**
 * The exit status of a session that started: 3 when a fault happened
 * during the run (the source, the coil, the pulse ledger, the recording),
 * else 0.
 */
int session_summary_status(struct session *s);

#endif /* RPMSD_SESSION_PRIVATE_H */
