/* SPDX-License-Identifier: MIT */
/*
 * The control socket: JSON requests on a ZeroMQ ROUTER socket (clients use
 * REQ), each answered by one JSON reply (docs/control.md). Commands:
 * status, arm, disarm, calibrate, session_start, session_stop, set.
 *
 * A thread of its own ("rpmsd-control", normal scheduling) owns the socket,
 * the ZAP handler that lets in only the allowed CURVE client keys, and a
 * monitor that logs failed handshakes. It may block and allocate; it acts
 * only through the thread-safe entry points of stim.c (arming, sessions)
 * and acquire.c (calibration, a new protocol), so every safety rule of the
 * stim thread still applies to what a command asks for.
 *
 * A request that is malformed, unknown, or refused changes nothing and is
 * answered with an error code and a message naming what was wrong.
 *
 * This is the daemon's side; requests are parsed by control_request.h
 * (pure), key files read by curve_key.h, and the files behind this header
 * are listed in control_private.h.
 */
#ifndef RPMSD_CONTROL_H
#define RPMSD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

struct acquire;
struct control;
struct publish;
struct publish_status;
struct record;
struct course;
struct ring;
struct rpmsd_config;
struct sclock;
struct stim;

#define CONTROL_FRAME_MAX 1048576	/* longer frames: the client is disconnected */

/**
 * Read the CURVE key files of cfg->control and cfg->publish (of each that
 * has CURVE configured) and report the first problem, naming the key, the
 * file and the line; for --check-config and the start.
 * @return 0, or -EINVAL / -errno with the message in @err
 */
int control_check_keys(const struct rpmsd_config *cfg, char *err, size_t errlen);

/** What the control thread acts on; all created before control_create. */
struct control_deps {
	struct stim *stim;
	struct acquire *acq;
	struct sclock *clock;
	struct publish *pub;
	struct record *rec;	/* the session recorder, or NULL (no [record]) */
	struct blind *blind;	/* blinding (docs/sham.md), or NULL */
	struct course *course;	/* courses (course.prescriptions), or NULL; the control thread's */
};

/**
 * Refuse an ipc endpoint (publish.endpoint, control.endpoint) whose path
 * holds anything but nothing or a socket: binding would delete it (libzmq
 * unlinks the path first). With @starting, a socket another process
 * listens on is refused too (it would be taken over); without it
 * (--check-config) it is let be: it is likely the running daemon's.
 * @return 0, or -EEXIST, -EADDRINUSE, -errno with the message in @err
 */
int control_check_endpoints(const struct rpmsd_config *cfg, bool starting, char *err,
			    size_t errlen);

/**
 * Create the socket and bind cfg->control.endpoint (with CURVE and its ZAP
 * handler when configured). An ipc endpoint another process listens on is
 * refused, not taken over. When the endpoint is the default
 * (CONFIG_CONTROL_ENDPOINT) and its directory does not exist, the daemon
 * runs without a control socket (a warning says so): nothing can arm it.
 * @param err  receives a message naming control.* on failure
 * @return 0, or a negative errno
 */
int control_create(const struct rpmsd_config *cfg, const struct control_deps *deps,
		   struct control **out, char *err, size_t errlen);

/** The bound endpoint (wildcards resolved). Valid until control_destroy. */
const char *control_endpoint(const struct control *c);

/** The control thread's event ring (sessions, protocol changes). */
struct ring *control_events(struct control *c);

/**
 * Start the control thread (once); nothing to start when the default
 * endpoint's directory did not exist (control_endpoint() is then "").
 * @return 0, -EBUSY, or -errno
 */
int control_start(struct control *c);

/**
 * Stop the thread: a command in progress finishes (at most about a second
 * of waiting for the stim thread). Safe when not started, and twice.
 */
void control_stop(struct control *c);

/**
 * Fill the heartbeat's view of the daemon (main thread, any time): the
 * protocol and session in force, pulse counts, coil temperature,
 * acquisition health.
 */
void control_status(struct control *c, struct publish_status *st);

/** Stop, close the sockets, free. Accepts NULL. */
void control_destroy(struct control *c);

/**
 * SIGHUP (main thread): apply the protocol keys of @next (a freshly loaded
 * configuration) that differ from those in force, through the checks of a
 * "set" command, on the control thread (or here, when there is none). The
 * outcome is logged and published as a "protocol" state event.
 * @return 0, or -errno when the request could not be handed over
 */
int control_reload(struct control *c, const struct rpmsd_config *next);

#endif /* RPMSD_CONTROL_H */
