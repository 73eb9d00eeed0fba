/* SPDX-License-Identifier: MIT */
/*
 * A control request, parsed and checked (docs/control.md): one JSON object
 * with "cmd" and that command's members. Pure: no daemon state, no socket;
 * the control fuzzer (tests/fuzz/fuzz_control.c) links this file alone.
 * Any thread may call it.
 */
#ifndef RPMSD_CONTROL_REQUEST_H
#define RPMSD_CONTROL_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"	/* CONFIG_NAME_MAX */
#include "event.h"	/* EVENT_ID_MAX */

#define CONTROL_REQUEST_MAX 16384	/* longer requests: error "too_large" */
#define CONTROL_SET_MAX 16		/* keys in one "set" */
#define CONTROL_VALUE_MAX 64		/* a value's text, NUL included */
#define CONTROL_MSG_MAX 768
#define CONTROL_REASON_MAX 200
#define CONTROL_ASSESS_MAX_S 600	/* the longest assessment block, seconds */		/* "reason" of session_stop and set, NUL excluded */

/** The commands. */
enum control_cmd {
	CONTROL_CMD_STATUS = 0,
	CONTROL_CMD_ARM,
	CONTROL_CMD_DISARM,
	CONTROL_CMD_CALIBRATE,
	CONTROL_CMD_SESSION_START,
	CONTROL_CMD_SESSION_STOP,
	CONTROL_CMD_SET,
	CONTROL_CMD_ASSESS,
	CONTROL_CMD_THRESHOLD,		/* start (or stop) the motor threshold procedure */
	CONTROL_CMD_THRESHOLD_STATUS,	/* its probes and result */
	CONTROL_CMD_COUNT,		/* none: the request did not name one */
};

/** One key of a "set": a [stim] key and its value as a file would hold it. */
struct control_param {
	char key[CONFIG_NAME_MAX];	/* without "stim." */
	char value[CONTROL_VALUE_MAX];
};

/** A request that passed control_request_parse. */
struct control_request {
	enum control_cmd cmd;
	char patient_id[EVENT_ID_MAX + 1];	/* session_start */
	char session_id[EVENT_ID_MAX + 1];
	char course_id[EVENT_ID_MAX + 1];	/* session_start, optional: "" none */
	double motor_threshold_pct;		/* session_start, optional: 0 none */
	char reason[CONTROL_REASON_MAX + 1];	/* session_stop, set; optional: "" none */
	int assess_kind;			/* assess: 0 rest, 1 stretch, 2 cci, 3 mvc (course_db.h's order) */
	char assess_agonist[CONTROL_VALUE_MAX];	/* assess cci: the two channels' names */
	char assess_antagonist[CONTROL_VALUE_MAX];
	char assess_muscle[CONTROL_VALUE_MAX];	/* assess stretch: the stretched muscle's channel */
	int assess_direction;			/* assess stretch: +1 the angle rises while stretching, -1 falls */
	int assess_phase;			/* assess: 0 pre, 1 post */
	double assess_seconds;			/* assess: 1..CONTROL_ASSESS_MAX_S, 60 by default */
	size_t n_params;			/* set */
	struct control_param params[CONTROL_SET_MAX];
	/* threshold: each optional; NAN / -1: the default (docs/control.md) */
	struct {
		bool stop;		/* stop the one running */
		int channel;		/* -1: 0 */
		double win_start_ms;	/* window after the pulse (the artefact blanked before it) */
		double win_end_ms;
		double interval_s;	/* between probes, at least */
		double start_pct;
		double cap_pct;
		long since;		/* threshold_status: probes from this number on */
	} threshold;
};

/** Why a request was not carried out. */
struct control_error {
	const char *code;		/* stable, e.g. "bad_request"; docs/control.md */
	char message[CONTROL_MSG_MAX];	/* for people; printable ASCII */
	char key[CONFIG_NAME_MAX + 16];	/* "section.key" at fault, "" none */
	char rule[CONFIG_NAME_MAX + 16];	/* "safety.key" that forbids it, "" none */
};

/**
 * Parse and check one request (pure: no daemon state). Unknown members,
 * duplicate keys, wrong types, ids outside their charset and keys that are
 * not settable are all errors.
 * @param buf  @len bytes, not necessarily NUL-terminated
 * @param req  filled on success; req->cmd is set as soon as it is known
 *             (CONTROL_CMD_COUNT until then)
 * @param err  zeroed, then filled on failure
 * @return 0, or -EINVAL with @err filled
 */
int control_request_parse(const char *buf, size_t len, struct control_request *req,
			  struct control_error *err);

/** Name of a command as in requests ("session_start"); NULL out of range. */
const char *control_request_cmd_name(enum control_cmd cmd);

/**
 * Whether @id is a valid patient or session id: 1 to EVENT_ID_MAX
 * characters of A-Z a-z 0-9 . _ -, starting with a letter or digit.
 */
bool control_request_id_valid(const char *id);

/**
 * Fill @err: @code (a stable string, kept by pointer) and the message,
 * every byte outside printable ASCII replaced by '?' (messages quote
 * requests). err->key and err->rule are left as they are.
 */
void control_request_fail(struct control_error *err, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** Replace every byte of @s outside printable ASCII by '?'. */
void control_request_printable(char *s);

#endif /* RPMSD_CONTROL_REQUEST_H */
