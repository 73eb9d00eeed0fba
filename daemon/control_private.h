/* SPDX-License-Identifier: MIT */
/*
 * The control socket's state, shared by the files that make it up and by
 * nothing else (the model: linuxptp's port_private.h):
 *
 *   control.c          set-up: sockets, endpoints, key files, start, stop
 *   control_status.c   the status reply and the heartbeat's view
 *   control_command.c  running a request: arm, sessions, calibrate, set
 *   control_thread.c   the thread: requests, and the guard's key checks
 *
 * Requests are parsed by control_request.c; the CURVE guard (ZAP handler,
 * allowlist, refused handshakes) is zap.c's, shared with the event stream.
 * Everything here runs on the control thread unless its comment says
 * otherwise (control_status: the main thread).
 */
#ifndef RPMSD_CONTROL_PRIVATE_H
#define RPMSD_CONTROL_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bank.h"	/* struct bank_tally */
#include "config.h"	/* CONFIG_PATH_MAX */
#include "control_request.h"
#include "event.h"	/* EVENT_ID_MAX */
#include "stretch.h"	/* struct stretch_rec */

struct acquire;
struct course;
struct publish;
struct record;
struct ring;
struct sclock;
struct stim;
struct zap;

#define CONTROL_WAIT_MS 1000		/* for the stim or acquire thread to act */
#define CONTROL_ASSESS_STRETCHES 128	/* stretches an assess stretch block keeps */
/* At most one log line a second of a kind, so a client retrying cannot flood the log. */
struct control_log_limit {
	int64_t last_ns;
	unsigned long suppressed;
};

struct control {
	struct rpmsd_config *cfg;	/* in force (protocol after "set"); control thread */
	struct stim *stim;
	struct acquire *acq;
	struct sclock *clock;
	struct publish *pub;
	struct record *rec;		/* session recordings, or NULL */
	struct blind *blind;		/* docs/sham.md, or NULL */
	struct course *course;		/* courses, or NULL; control thread only */
	char rec_path[CONFIG_PATH_MAX];	/* the session's recording, "" none; control thread */
	double course_mt_pct;		/* the course session's motor threshold, 0 none */
	/*
	 * A course session whose intensity is in % of a motor threshold not
	 * measured yet: the policy is held (only threshold probes fire) until
	 * the threshold procedure's result puts the intensity in force.
	 */
	bool course_mt_pending;
	char course_mt_refused[CONTROL_MSG_MAX];	/* why the last result was not applied */
	uint64_t course_cap;		/* the course session's pulses cap, for status */
	struct control_threshold *thr;	/* the threshold procedure, or NULL; control thread */
	struct ring *events;		/* control thread -> publisher */
	double acq_timeout_ms;		/* safety.acquisition_timeout_ms, for control_status */
	double calibration_s;

	void *ctx;
	void *sock;			/* ROUTER: the requests */
	struct zap *guard;		/* CURVE keys, refused handshakes */
	int stop_fd;
	int reload_fd;			/* main -> control thread: reload_next is set */
	struct rpmsd_config *reload_next;	/* under lock; NULL until a reload */
	atomic_bool stopping;
	pthread_t tid;
	bool started;
	bool joined;
	char endpoint[CONFIG_PATH_MAX + 8];

	bool curve;
	struct control_log_limit log_bad;

	/* control_assess.c: the outcome assessment under way (control thread) */
	int assess_state;		/* enum control_assess_state */
	int assess_phase;		/* 0 pre, 1 post */
	double assess_seconds;
	uint64_t assess_first;		/* the block's first sample */
	int64_t assess_deadline_ns;	/* CLOCK_MONOTONIC: no EMG came for it, given up */
	struct bank_tally assess_from;	/* the totals at its start */
	/* mvc and cci: the block's windows, copied from the tallies' rings as they come */
	int assess_kind;		/* enum course_db_assess_kind */
	unsigned assess_pair[2];	/* cci: agonist, antagonist */
	uint64_t assess_win_first;	/* the block's first window (bank_tally windows) */
	uint64_t assess_win_next;	/* the next one to copy */
	uint64_t assess_win_end;	/* one past its last */
	float assess_win[CONTROL_ASSESS_MAX_S * 5][BANK_MAX_CHANNELS];
	/* stretch: the muscle, the way the angle goes, the stretches handed on in the block */
	unsigned assess_muscle;
	int assess_direction;
	uint64_t assess_end;		/* one past the block's last sample, once known */
	uint64_t assess_blanked;	/* samples of the block in a stimulation blank */
	size_t assess_n_str;
	uint64_t assess_str_over;	/* stretches beyond CONTROL_ASSESS_STRETCHES */
	struct stretch_rec assess_str[CONTROL_ASSESS_STRETCHES];
	/* the session's MVC block: the references a cci is normalised to */
	int64_t assess_mvc_session;	/* course_session_id it belongs to, 0 none */
	double assess_mvc_rms[BANK_MAX_CHANNELS];

	/* control thread writes, control_status (main thread) reads */
	pthread_mutex_t lock;
	bool in_session;
	char patient_id[EVENT_ID_MAX + 1];
	char session_id[EVENT_ID_MAX + 1];
	char protocol[16];
};

/* ---- control.c ----------------------------------------------------------- */

/**
 * Whether a rate-limited log line may go out now: true at most once a
 * second per @l, which counts what it holds back; *@held receives that
 * count when it lets one through.
 */
bool control_log_ok(struct control_log_limit *l, unsigned long *held);

/* ---- control_status.c ---------------------------------------------------- */

/** The "status" command's result: a new JSON object. */
json_t *control_status_json(struct control *c);

/**
 * The [stim] protocol of @cfg as JSON (mode, the settable keys,
 * open_loop_pulses), as status and the reply to "set" show it.
 */
json_t *control_status_protocol(const struct rpmsd_config *cfg);

/** {"patient_id": @patient, "session_id": @session}. */
json_t *control_status_ids(const char *patient, const char *session);

/* ---- control_command.c --------------------------------------------------- */

/**
 * Parse and run one request body (@len bytes, not NUL-terminated), log
 * its outcome and build the reply.
 * @return the reply, a JSON string to free(); NULL when out of memory
 */
char *control_command_execute(struct control *c, const char *buf, size_t len);

/**
 * The reply to a request: {"ok": true, "cmd", "result": @result} (taken
 * over), or without @result {"ok": false, "cmd", "error"} from @err.
 * @return a JSON string to free(); NULL when out of memory
 */
char *control_command_reply(enum control_cmd cmd, json_t *result,
			    const struct control_error *err);

/**
 * Log a request's outcome: what was done (status requests aside), or why
 * not; refusals of malformed requests rate-limited (c->log_bad).
 */
void control_command_log(struct control *c, const struct control_request *req,
			 const struct control_error *err, bool ok);

/**
 * SIGHUP: the protocol keys of @next (a freshly loaded configuration) that
 * differ from those in force, through the path and checks of "set"; the
 * outcome is logged and published. On the control thread, or on the main
 * thread when there is none.
 */
void control_command_reload(struct control *c, const struct rpmsd_config *next);

/**
 * The course session's pulses to the course database, when they moved
 * (about once a second, from the control thread's poll). Nothing without one.
 */
void control_command_course_tick(struct control *c);

/** Whether a course session runs: the control thread then wakes each second. */
bool control_command_course_active(const struct control *c);

/**
 * The threshold procedure found @mt_pct (control thread): if the course
 * session waits for its motor threshold (course_mt_pending), disarm, put
 * the prescription's "% of motor threshold" in force as the session's
 * intensity (the same checks as session_start: caps, train table, device
 * envelope), store it with the session and release the policy. The
 * operator arms again to stimulate at it.
 * @return 0 applied (or nothing waited for it), or -1 with @why filled:
 * the session still waits
 */
int control_command_course_threshold(struct control *c, double mt_pct, char *why, size_t len);

/* ---- control_assess.c ---------------------------------------------------- */

/**
 * "assess": start an outcome assessment block of the running course
 * session (coil disarmed, channels calibrated, the recording open). The
 * reply comes at once; the numbers follow on rpms.state "assessment",
 * in the course database and as a stretch of the EDF+ file.
 */
json_t *control_assess_start(struct control *c, const struct control_request *req,
			     struct control_error *err);

/** Move the assessment under way on (each turn of the control thread). */
void control_assess_tick(struct control *c);

/** Whether an assessment is under way: the control thread then wakes often. */
bool control_assess_active(const struct control *c);

/* ---- control_threshold.c ------------------------------------------------- */

struct control_threshold;

/** "threshold": start the motor threshold procedure (or stop it: "stop"). */
json_t *control_threshold_start(struct control *c, const struct control_request *req,
				struct control_error *err);

/** "threshold_status": the probes from req->threshold.since on, and the result. */
json_t *control_threshold_status(struct control *c, const struct control_request *req);

/** Advance the procedure (the control thread's loop, between requests). */
void control_threshold_tick(struct control *c);

/** Whether one runs: the control thread then polls every few ms. */
bool control_threshold_running(const struct control *c);

/** Free its state (the control thread has stopped). Accepts none. */
void control_threshold_free(struct control *c);

/* ---- control_thread.c ---------------------------------------------------- */

/**
 * The control thread (pthread_create's start routine, @arg the struct
 * control): serves until c->stopping is set and c->stop_fd is written.
 * @return NULL
 */
void *control_thread_main(void *arg);

#endif /* RPMSD_CONTROL_PRIVATE_H */
