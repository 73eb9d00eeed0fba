/* SPDX-License-Identifier: MIT */
/*
 * Event publisher: a non-real-time thread that drains the producers' SPSC
 * rings and sends every event on a ZeroMQ XPUB socket as a multipart
 * message (topic frame, JSON body), plus rpms.heartbeat once per
 * publish.heartbeat_s.
 *
 * Sequence numbers are per topic and start at 0 for each daemon run, so a
 * subscriber sees gaps. Records a ring dropped (ring full) and messages the
 * socket refused (high-water mark) are counted and reported in every
 * heartbeat; ring drops also in an rpms.state "overflow" event when they
 * grow (HWM drops show as sequence gaps instead). See docs/events.md.
 */
#ifndef RPMSD_PUBLISH_H
#define RPMSD_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct ring;
struct rpmsd_config;

struct publish;

/** Counters, read with publish_stats. */
struct publish_stats {
	uint64_t sent;			/* messages sent */
	uint64_t ring_drops;		/* dropped by full rings */
	uint64_t subscriptions;		/* subscribe messages seen on XPUB */
};

/**
 * Create the publisher and bind cfg->publish.endpoint. A heartbeat is sent
 * every cfg->publish.heartbeat_s seconds; 0 or less disables it.
 * @param rate_hz  sampling rate, for the recording time of events
 * @param err      receives a message naming publish.endpoint on failure
 * @return 0, -EADDRINUSE, -EINVAL, -ENOMEM, or another -errno
 */
int publish_create(const struct rpmsd_config *cfg, double rate_hz,
		   struct publish **out, char *err, size_t errlen);

/**
 * The bound endpoint with wildcards resolved ("tcp://127.0.0.1:*" becomes
 * the port the kernel chose). Valid until publish_destroy.
 */
const char *publish_endpoint(const struct publish *p);

/**
 * Register a ring of struct event to drain. All rings are added before
 * publish_start. @name is used in drop reports ("acquire", "stim", ...);
 * up to 31 bytes of it are kept.
 * @return 0, -ENOSPC (too many rings), -EBUSY (already started)
 */
int publish_add_ring(struct publish *p, struct ring *r, const char *name);

/**
 * Block (main thread, before start) until at least one subscriber has
 * subscribed, or @timeout_s passed.
 * @return 0, -ETIMEDOUT, or -EBUSY (already started: the thread owns the socket)
 */
int publish_wait_subscriber(struct publish *p, double timeout_s);

/**
 * Copy every event published from the rings into @r (a ring of struct
 * event: the recorder's input) as well; NULL: none. Before start. A full
 * @r loses the copy, never the publication.
 * @return 0 or -EBUSY
 */
int publish_set_forward(struct publish *p, struct ring *r);

struct emg_stream;

/**
 * Publish rpms.emg from @s (emg.h; kept, not owned), NULL: none. Before
 * start.
 * @return 0 or -EBUSY
 */
int publish_set_emg(struct publish *p, struct emg_stream *s);

/** Start the publisher thread (once). @return 0, -EBUSY, or -errno */
int publish_start(struct publish *p);

/**
 * Wait until every event pushed into the rings before this call has been
 * published, and copied to the forward ring first (publish_set_forward):
 * what a producer queued before, the recorder has received. Any thread but
 * the publisher's, once it runs; the producers are never held up.
 * @param deadline_ns  CLOCK_MONOTONIC (sclock_mono_ns) time to give up at
 * @return 0, or -ETIMEDOUT (the publisher is behind or stuck)
 */
int publish_flush(struct publish *p, int64_t deadline_ns);

/**
 * Drain every ring completely, send what remains, stop the thread.
 * Stop the producers first: the final drain runs until every ring is empty.
 * Safe to call when not started, and more than once.
 */
void publish_stop(struct publish *p);

/** Copy the counters. Thread-safe. */
void publish_stats(const struct publish *p, struct publish_stats *st);

/**
 * Set the fields the heartbeat reports that the publisher cannot see.
 * Called by the main thread; values are read atomically.
 */
void publish_set_health(struct publish *p, bool armed, uint64_t pulses,
			uint64_t samples);

/** What the heartbeat reports of the daemon's state (publish_set_status). */
struct publish_status {
	char protocol[16];		/* stim.protocol in force; "" unknown */
	uint64_t pulses_session;	/* since the control session started (or the daemon) */
	uint64_t pulses_today;		/* the gate's day count, earlier runs included */
	double coil_temperature_c;	/* last read; NAN unknown */
	double coil_temperature_age_s;	/* since it was read; NAN none */
	const char *acquisition;	/* static string: "waiting", "ok", "stale", "reopening" */
	double block_age_ms;		/* since the last EMG block; NAN none yet */
	unsigned channels;
	unsigned calibrated;		/* channels calibrated now */
	bool in_session;		/* a control session is active */
	char patient_id[EVENT_ID_MAX + 1];
	char session_id[EVENT_ID_MAX + 1];
};

/**
 * Set what the next heartbeats report besides publish_set_health's
 * counters (main thread; copied under a lock the publisher also takes).
 */
void publish_set_status(struct publish *p, const struct publish_status *st);

/** The heartbeat's counters, read at the moment it is sent. */
struct publish_counts {
	bool armed;
	uint64_t pulses;		/* this run */
	uint64_t samples;
	uint64_t pulses_session;
	uint64_t pulses_today;
};

/**
 * Have the publisher call @fn(@ctx, out) on its own thread just before
 * each heartbeat; what it fills replaces publish_set_health's values and
 * publish_status's pulse counts in that heartbeat. A heartbeat then never
 * reports fewer pulses than the rpms.stim events already published before
 * it (their counters are stored before the events are queued). Call before
 * publish_start. @fn may only read atomics: it runs beside every thread.
 */
void publish_set_refresh(struct publish *p,
			 void (*fn)(void *ctx, struct publish_counts *out), void *ctx);

/** The last fault or emergency stop this publisher sent on rpms.state. */
struct publish_fault {
	bool valid;			/* false: none yet */
	char state[16];			/* "fault" or "estop" */
	int code;			/* negative errno, or 0 */
	char reason[EVENT_REASON_MAX];
	uint64_t seq;			/* of that rpms.state message */
	int64_t wall_ns;		/* when it was recorded, CLOCK_REALTIME */
};

/** Copy the last fault (any non-RT thread). */
void publish_last_fault(struct publish *p, struct publish_fault *out);

/** Stop if running, close the socket, free. Accepts NULL. */
void publish_destroy(struct publish *p);

#endif /* RPMSD_PUBLISH_H */
