/* SPDX-License-Identifier: MIT */
/*
 * The publisher thread. It owns the XPUB socket once started (ZeroMQ
 * sockets are not thread-safe; pthread_create and pthread_join are the
 * memory barriers that hand it over and back).
 *
 * Never blocks on a subscriber: every send is ZMQ_DONTWAIT, and a
 * subscriber whose queue is at the high-water mark loses that message on
 * its own, while every other subscriber still gets it. (XPUB_NODROP would
 * let us count such losses, but then one stalled subscriber would make
 * every subscriber lose the message: a stuck viewer would punch holes in
 * a researcher's recording.) The subscriber sees its own losses as gaps
 * in the per-topic sequence numbers.
 *
 * Beyond this host the stream is a CURVE server (config_rule_publish): the
 * guard (zap.c, as the control socket's) answers libzmq's key checks and
 * logs refused subscribers, here on the publisher thread, between passes
 * and without waiting; a refused subscriber never subscribes, so it gets
 * nothing.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "config.h"
#include "detect.h"
#include "emg.h"
#include "event.h"
#include "log.h"
#include "publish.h"
#include "ring.h"
#include "sclock.h"
#include "zap.h"

#define PUBLISH_MAX_RINGS 8
#define PUBLISH_RING_NAME_MAX 32
#define PUBLISH_BATCH 64		/* records per ring per pass, on average */
#define PUBLISH_REORDER_NS INT64_C(20000000)	/* a record waits this long for older ones */
#define PUBLISH_IDLE_MS 2		/* poll timeout when every ring was empty */
#define PUBLISH_LINGER_MS 500		/* bounded wait for queued messages on close */
#define PUBLISH_BODY_MAX 2048
#define PUBLISH_OVERFLOW_PERIOD_NS INT64_C(100000000)	/* one report per ring per 100 ms */
#define PUBLISH_NS_PER_S INT64_C(1000000000)
#define PUBLISH_FLUSH_TICK_NS 1000000L	/* how often publish_flush looks again */

struct publish_ring {
	struct ring *ring;
	char name[PUBLISH_RING_NAME_MAX];
	uint64_t dropped_reported;	/* total in the last overflow event */
	int64_t reported_ns;		/* monotonic time of that event */
	/* records popped and published, each copied to the recorder first */
	atomic_size_t handled;
	struct event head;		/* popped, not published yet (publish_drain_pass) */
	bool has_head;
};

struct publish {
	void *ctx;
	void *sock;
	struct zap *guard;		/* CURVE: keys, refused subscribers; or NULL */
	char endpoint[CONFIG_PATH_MAX];	/* as bound, wildcards resolved */
	double rate_hz;
	int64_t heartbeat_ns;		/* 0: no heartbeat */
	void (*refresh)(void *ctx, struct publish_counts *out);	/* or NULL */
	void *refresh_ctx;

	struct publish_ring rings[PUBLISH_MAX_RINGS];
	size_t n_rings;
	struct ring *forward;		/* a copy of every event (the recorder), or NULL */
	struct emg_stream *emg;		/* rpms.emg, or NULL */

	pthread_t thread;
	bool started;
	bool joined;
	atomic_bool stop;

	/* Publisher thread only (the main thread before start). */
	uint64_t seq[EVENT_TOPIC_COUNT];
	char body[PUBLISH_BODY_MAX];

	atomic_uint_fast64_t sent;
	atomic_uint_fast64_t ring_drops;
	atomic_uint_fast64_t subscriptions;

	atomic_bool armed;
	atomic_uint_fast64_t pulses;
	atomic_uint_fast64_t samples;

	/* main thread (status) and publisher thread (last fault) -> heartbeat */
	pthread_mutex_t status_lock;
	struct publish_status status;
	struct publish_fault fault;
};

static int publish_setsockopt_int(void *sock, int opt, int value)
{
	if (zmq_setsockopt(sock, opt, &value, sizeof(value)) != 0) {
		return -errno;
	}
	return 0;
}

int publish_create(const struct rpmsd_config *cfg, double rate_hz,
		   struct publish **out, char *err, size_t errlen)
{
	static const struct zap_opts opts = {
		.section = "publish", .who = "subscriber", .held = "not logged",
	};
	const char *endpoint = cfg->publish.endpoint;
	struct zap_opts o = opts;
	struct publish *p;
	size_t eplen;
	int ret;

	if (errlen > 0) {
		err[0] = '\0';
	}
	if (cfg->publish.sndhwm < 0) {
		snprintf(err, errlen, "publish.sndhwm: must not be negative (got %d)",
			 cfg->publish.sndhwm);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "publish: out of memory");
		return -ENOMEM;
	}
	p->rate_hz = rate_hz > 0 ? rate_hz : 0;
	if (cfg->publish.heartbeat_s > 0) {
		p->heartbeat_ns = (int64_t)(cfg->publish.heartbeat_s * PUBLISH_NS_PER_S);
	}
	atomic_init(&p->stop, false);
	atomic_init(&p->sent, 0);
	atomic_init(&p->ring_drops, 0);
	atomic_init(&p->subscriptions, 0);
	atomic_init(&p->armed, false);
	atomic_init(&p->pulses, 0);
	atomic_init(&p->samples, 0);
	pthread_mutex_init(&p->status_lock, NULL);
	p->status.coil_temperature_c = NAN;
	p->status.coil_temperature_age_s = NAN;
	p->status.acquisition = "waiting";
	p->status.block_age_ms = NAN;

	p->ctx = zmq_ctx_new();
	if (!p->ctx) {
		ret = errno ? -errno : -ENOMEM;
		snprintf(err, errlen, "publish: cannot create a ZeroMQ context: %s",
			 zmq_strerror(-ret));
		goto err_free;
	}
	/* Before the socket: the ZAP handler must be there before any subscriber. */
	if (cfg->publish.curve_server_secret_file[0]) {
		o.secret_file = cfg->publish.curve_server_secret_file;
		o.allowed = cfg->publish.curve_allowed_keys;
		ret = zap_create(p->ctx, &o, cfg, &p->guard, err, errlen);
		if (ret < 0) {
			goto err_ctx;
		}
	}
	p->sock = zmq_socket(p->ctx, ZMQ_XPUB);
	if (!p->sock) {
		ret = -errno;
		snprintf(err, errlen, "publish: cannot create the XPUB socket: %s",
			 zmq_strerror(-ret));
		goto err_ctx;
	}
	/*
	 * VERBOSE: every subscribe reaches us (and is counted), not only the
	 * first per prefix.
	 */
	ret = publish_setsockopt_int(p->sock, ZMQ_SNDHWM, cfg->publish.sndhwm);
	if (!ret) {
		ret = publish_setsockopt_int(p->sock, ZMQ_LINGER, PUBLISH_LINGER_MS);
	}
	if (!ret) {
		ret = publish_setsockopt_int(p->sock, ZMQ_XPUB_VERBOSE, 1);
	}
	if (ret) {
		snprintf(err, errlen, "publish: cannot set socket options: %s",
			 zmq_strerror(-ret));
		goto err_sock;
	}
	if (p->guard) {
		ret = zap_apply(p->guard, p->sock, err, errlen);
		if (ret < 0) {
			goto err_sock;
		}
	}
	if (zmq_bind(p->sock, endpoint) != 0) {
		ret = -errno;
		snprintf(err, errlen, "publish.endpoint: cannot bind '%s': %s",
			 endpoint, zmq_strerror(-ret));
		goto err_sock;
	}
	/* The resolved address, e.g. the port chosen for "tcp://127.0.0.1:*". */
	eplen = sizeof(p->endpoint);
	if (zmq_getsockopt(p->sock, ZMQ_LAST_ENDPOINT, p->endpoint, &eplen) != 0) {
		snprintf(p->endpoint, sizeof(p->endpoint), "%s", endpoint);
	}
	if (p->guard) {
		log_info("publish: %s, CURVE: server public key %s, %zu subscriber key(s) allowed",
			 p->endpoint, zap_server_key(p->guard), zap_allowed(p->guard));
	}
	*out = p;
	return 0;

err_sock:
	zmq_socket_monitor(p->sock, NULL, 0);
	zmq_close(p->sock);
err_ctx:
	zap_destroy(p->guard);
	zmq_ctx_term(p->ctx);
err_free:
	pthread_mutex_destroy(&p->status_lock);
	free(p);
	return ret;
}

const char *publish_endpoint(const struct publish *p)
{
	return p->endpoint;
}

int publish_add_ring(struct publish *p, struct ring *r, const char *name)
{
	struct publish_ring *pr;

	if (!r || !name) {
		return -EINVAL;
	}
	if (p->started) {
		return -EBUSY;
	}
	if (p->n_rings == PUBLISH_MAX_RINGS) {
		return -ENOSPC;
	}
	pr = &p->rings[p->n_rings++];
	pr->ring = r;
	snprintf(pr->name, sizeof(pr->name), "%s", name);
	pr->dropped_reported = 0;
	pr->reported_ns = 0;
	atomic_init(&pr->handled, 0);
	pr->has_head = false;
	return 0;
}

/*
 * Read every subscription message waiting on the XPUB socket (a frame
 * whose first byte is 1 to subscribe, 0 to unsubscribe, then the prefix).
 * @return subscribe messages read
 */
static unsigned publish_read_subscriptions(struct publish *p)
{
	unsigned char msg[256];
	unsigned subs = 0;
	int n;

	for (;;) {
		n = zmq_recv(p->sock, msg, sizeof(msg), ZMQ_DONTWAIT);
		if (n < 0) {
			break;
		}
		if (n > 0 && msg[0] == 1) {
			subs++;
		}
	}
	if (subs > 0) {
		atomic_fetch_add_explicit(&p->subscriptions, subs, memory_order_relaxed);
	}
	return subs;
}

int publish_wait_subscriber(struct publish *p, double timeout_s)
{
	int64_t deadline = sclock_mono_ns() + (int64_t)(timeout_s * PUBLISH_NS_PER_S);
	zmq_pollitem_t items[1 + ZAP_POLLITEMS] = { { .socket = p->sock, .events = ZMQ_POLLIN } };
	int n = 1 + zap_pollitems(p->guard, &items[1]);
	int64_t left;

	if (p->started) {
		return -EBUSY;
	}
	for (;;) {
		zap_serve(p->guard);	/* a subscriber's handshake waits for it */
		if (publish_read_subscriptions(p) > 0) {
			return 0;
		}
		left = deadline - sclock_mono_ns();
		if (left <= 0) {
			return -ETIMEDOUT;
		}
		/* Round up: a 0 ms poll would spin for the last millisecond. */
		if (zmq_poll(items, n, (long)((left + 999999) / 1000000)) < 0 &&
		    errno != EINTR) {
			return -errno;
		}
	}
}

/*
 * Send one message, topic frame then body, never blocking: without
 * XPUB_NODROP an XPUB send does not fail at the high-water mark, the
 * full subscriber's pipe just skips the message.
 */
static void publish_send(struct publish *p, enum event_topic topic,
			 const char *body, size_t len)
{
	const char *name = event_topic_name(topic);

	if (zmq_send(p->sock, name, strlen(name), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		log_err("publish: cannot send on %s: %s", name, zmq_strerror(errno));
		return;
	}
	if (zmq_send(p->sock, body, len, ZMQ_DONTWAIT) < 0) {
		log_err("publish: cannot send the body of a %s message: %s", name,
			zmq_strerror(errno));
		return;
	}
	atomic_fetch_add_explicit(&p->sent, 1, memory_order_relaxed);
}

/* Remember a fault for the heartbeat's last_fault and for status. */
static void publish_note_fault(struct publish *p, const struct event *ev, uint64_t seq)
{
	struct publish_fault *f = &p->fault;

	pthread_mutex_lock(&p->status_lock);
	f->valid = true;
	snprintf(f->state, sizeof(f->state), "%s",
		 ev->u.state.state == EVENT_STATE_ESTOP ? "estop" : "fault");
	f->code = ev->u.state.code;
	/* reason need not be NUL-terminated when it fills the array */
	snprintf(f->reason, sizeof(f->reason), "%.*s", (int)sizeof(ev->u.state.reason) - 1,
		 ev->u.state.reason);
	f->seq = seq;
	f->wall_ns = ev->wall_ns;
	pthread_mutex_unlock(&p->status_lock);
}

/* One rpms.emg message (emg_send_fn): topic, JSON header, float32 frame. */
static void publish_send_emg(void *ctx, const char *header, size_t header_len,
			     const void *payload, size_t payload_len)
{
	struct publish *p = ctx;
	const char *name = event_topic_name(EVENT_TOPIC_EMG);

	if (zmq_send(p->sock, name, strlen(name), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(p->sock, header, header_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(p->sock, payload, payload_len, ZMQ_DONTWAIT) < 0) {
		log_err("publish: cannot send on %s: %s", name, zmq_strerror(errno));
		return;
	}
	atomic_fetch_add_explicit(&p->sent, 1, memory_order_relaxed);
}

static void publish_event(struct publish *p, const struct event *ev)
{
	enum event_topic topic = event_topic_of(ev);
	uint64_t seq;
	int len;

	if (topic == EVENT_TOPIC_COUNT) {
		log_err("publish: dropped an event of unknown type %u", ev->type);
		return;
	}
	/* Taken even if encoding fails: the loss must show as a gap. */
	seq = p->seq[topic]++;
	if (p->forward) {
		ring_push(p->forward, ev);	/* full: the recorder counts nothing lost here */
	}
	if (ev->type == EVENT_STATE && (ev->u.state.state == EVENT_STATE_FAULT ||
					ev->u.state.state == EVENT_STATE_ESTOP)) {
		publish_note_fault(p, ev, seq);
	}
	if (ev->type == EVENT_CALIBRATED && ev->u.calib.issues) {
		char why[160];

		/* The acquire thread cannot log: its calibration's doubts are said here. */
		detect_cal_describe(ev->u.calib.issues, ev->u.calib.artefacts,
				    ev->u.calib.unsteady_s, ev->u.calib.baseline, why, sizeof(why));
		log_warn("channel %u: calibration in doubt: %s; recalibrate at rest (rpmsctl calibrate)",
			 (unsigned)ev->channel, why);
	}
	len = event_to_json(ev, seq, p->rate_hz, p->body, sizeof(p->body));
	if (len < 0) {
		log_err("publish: cannot encode %s seq %llu (type %u): %s",
			event_topic_name(topic), (unsigned long long)seq, ev->type,
			strerror(-len));
		return;
	}
	publish_send(p, topic, p->body, (size_t)len);
}

/*
 * Common fields of a body the publisher makes itself: it has no session
 * clock, so t_session_s is left out; the sample is the last count the main
 * thread gave publish_set_health.
 */
static void publish_own_begin(struct publish *p, struct event_json *w,
			      enum event_topic topic)
{
	struct event ev;

	memset(&ev, 0, sizeof(ev));
	event_stamp(&ev, 0);
	ev.sample = atomic_load_explicit(&p->samples, memory_order_relaxed);
	event_json_begin(w, p->body, sizeof(p->body));
	event_json_common(w, topic, p->seq[topic]++, &ev, p->rate_hz, false);
}

static void publish_own_send(struct publish *p, struct event_json *w,
			     enum event_topic topic)
{
	int len = event_json_end(w);

	if (len < 0) {
		log_err("publish: %s body does not fit in %zu bytes",
			event_topic_name(topic), sizeof(p->body));
		return;
	}
	publish_send(p, topic, p->body, (size_t)len);
}

static void publish_overflow(struct publish *p, struct publish_ring *pr,
			     uint64_t total)
{
	struct event_json w;

	log_warn("publish: ring '%s' full: %llu events dropped since start",
		 pr->name, (unsigned long long)total);
	publish_own_begin(p, &w, EVENT_TOPIC_STATE);
	event_json_str(&w, "state", "overflow", SIZE_MAX);
	event_json_str(&w, "ring", pr->name, sizeof(pr->name));
	event_json_u64(&w, "dropped", total);
	publish_own_send(p, &w, EVENT_TOPIC_STATE);
}

/*
 * Update the ring_drops counter and report rings whose drop count grew,
 * at most once per ring per PUBLISH_OVERFLOW_PERIOD_NS so that a ring that
 * stays full does not flood rpms.state; @force reports regardless.
 */
static void publish_check_drops(struct publish *p, bool force)
{
	int64_t now = sclock_mono_ns();
	uint64_t total = 0, d;
	size_t i;

	/* Counter first: whoever sees the event may read the stats at once. */
	for (i = 0; i < p->n_rings; i++) {
		total += ring_dropped(p->rings[i].ring);
	}
	atomic_store_explicit(&p->ring_drops, total, memory_order_relaxed);

	for (i = 0; i < p->n_rings; i++) {
		struct publish_ring *pr = &p->rings[i];

		d = ring_dropped(pr->ring);
		if (d == pr->dropped_reported) {
			continue;
		}
		if (!force && pr->reported_ns != 0 &&
		    now - pr->reported_ns < PUBLISH_OVERFLOW_PERIOD_NS) {
			continue;
		}
		pr->dropped_reported = d;
		pr->reported_ns = now;
		publish_overflow(p, pr, d);
	}
}

/* The members of the heartbeat that come from publish_set_status. */
static void publish_heartbeat_status(struct event_json *w, const struct publish_status *st,
				     const struct publish_fault *f)
{
	if (st->protocol[0]) {
		event_json_str(w, "protocol", st->protocol, sizeof(st->protocol));
	} else {
		event_json_null(w, "protocol");
	}
	event_json_u64(w, "pulses_session", st->pulses_session);
	event_json_u64(w, "pulses_today", st->pulses_today);
	event_json_double(w, "coil_temperature_c", st->coil_temperature_c);
	event_json_double(w, "coil_temperature_age_s", st->coil_temperature_age_s);
	event_json_object(w, "acquisition");
	event_json_str(w, "state", st->acquisition, SIZE_MAX);
	event_json_double(w, "block_age_ms", st->block_age_ms);
	event_json_u64(w, "channels", st->channels);
	event_json_u64(w, "calibrated", st->calibrated);
	event_json_object_end(w);
	if (st->in_session) {
		event_json_object(w, "session");
		event_json_str(w, "patient_id", st->patient_id, sizeof(st->patient_id));
		event_json_str(w, "session_id", st->session_id, sizeof(st->session_id));
		event_json_object_end(w);
	} else {
		event_json_null(w, "session");
	}
	if (f->valid) {
		event_json_object(w, "last_fault");
		event_json_str(w, "state", f->state, sizeof(f->state));
		event_json_i64(w, "code", f->code);
		event_json_str(w, "reason", f->reason, sizeof(f->reason));
		event_json_u64(w, "seq", f->seq);
		event_json_i64(w, "t_wall_ns", f->wall_ns);
		event_json_object_end(w);
	} else {
		event_json_null(w, "last_fault");
	}
}

static void publish_heartbeat(struct publish *p)
{
	struct publish_status st;
	struct publish_counts c;
	struct publish_fault f;
	struct event_json w;
	size_t i;

	pthread_mutex_lock(&p->status_lock);
	st = p->status;
	f = p->fault;
	pthread_mutex_unlock(&p->status_lock);
	c.armed = atomic_load(&p->armed);
	c.pulses = atomic_load(&p->pulses);
	c.samples = atomic_load(&p->samples);
	c.pulses_session = st.pulses_session;
	c.pulses_today = st.pulses_today;
	if (p->refresh) {
		/* after the copy: the counts are never older than the status */
		p->refresh(p->refresh_ctx, &c);
		atomic_store_explicit(&p->samples, c.samples, memory_order_relaxed);
		st.pulses_session = c.pulses_session;
		st.pulses_today = c.pulses_today;
	}
	/* "sent" is the total before this heartbeat. */
	publish_own_begin(p, &w, EVENT_TOPIC_HEARTBEAT);
	event_json_bool(&w, "armed", c.armed);
	event_json_u64(&w, "pulses", c.pulses);
	event_json_u64(&w, "samples", c.samples);
	event_json_u64(&w, "sent", atomic_load(&p->sent));
	event_json_object(&w, "ring_drops");
	for (i = 0; i < p->n_rings; i++) {
		event_json_u64(&w, p->rings[i].name, ring_dropped(p->rings[i].ring));
	}
	event_json_object_end(&w);
	publish_heartbeat_status(&w, &st, &f);
	publish_own_send(p, &w, EVENT_TOPIC_HEARTBEAT);
}

/*
 * Whether ring @ia's head goes before ring @ib's: in recording order (the
 * sample), and at the same sample the first ring's (the acquire thread's:
 * the other threads act on what it decided, e.g. a pulse on its onset),
 * then in the order they were recorded.
 */
static bool publish_before(const struct publish *p, size_t ia, size_t ib)
{
	const struct event *a = &p->rings[ia].head, *b = &p->rings[ib].head;

	if (a->sample != b->sample) {
		return a->sample < b->sample;
	}
	if ((ia == 0) != (ib == 0)) {
		return ia == 0;
	}
	return a->mono_ns <= b->mono_ns;
}

/*
 * Publish the records of every ring merged into one order (publish_before),
 * not ring after ring: each producer thread has its own ring, and draining
 * them in turn published every burst of a fast replay before every pulse,
 * and in real time a pulse could go out before the onset that caused it
 * (the acquire thread posts the train before it records the onset). Each
 * ring's oldest record waits as its head; the earliest head goes first once
 * it was recorded PUBLISH_REORDER_NS ago, time for a record of another
 * thread that belongs before it to reach its ring. Not when @flush (the
 * producers have stopped), nor while a ring is half full: the order never
 * costs an event.
 * @return records published; *@held: a head is waiting for its time
 */
static size_t publish_drain_pass(struct publish *p, bool flush, bool *held)
{
	struct publish_ring *pr;
	struct event *ev;
	size_t i, best, total = 0;
	bool hurry = flush;

	*held = false;
	for (i = 0; i < p->n_rings && !hurry; i++) {
		hurry = ring_count(p->rings[i].ring) * 2 >= ring_capacity(p->rings[i].ring);
	}
	while (total < PUBLISH_BATCH * p->n_rings) {
		best = p->n_rings;
		for (i = 0; i < p->n_rings; i++) {
			pr = &p->rings[i];
			if (!pr->has_head) {
				pr->has_head = ring_pop(pr->ring, &pr->head);
			}
			if (pr->has_head && (best == p->n_rings || publish_before(p, i, best))) {
				best = i;
			}
		}
		if (best == p->n_rings) {
			break;
		}
		ev = &p->rings[best].head;
		if (!hurry && sclock_mono_ns() - ev->mono_ns < PUBLISH_REORDER_NS) {
			*held = true;
			break;
		}
		publish_event(p, ev);
		/* after the copy to the recorder: publish_flush relies on it */
		atomic_fetch_add_explicit(&p->rings[best].handled, 1, memory_order_release);
		p->rings[best].has_head = false;
		total++;
	}
	if (p->emg) {
		total += emg_stream_pump(p->emg, PUBLISH_BATCH, false, publish_send_emg, p);
	}
	return total;
}

static void *publish_thread(void *arg)
{
	struct publish *p = arg;
	zmq_pollitem_t items[1 + ZAP_POLLITEMS] = { { .socket = p->sock, .events = ZMQ_POLLIN } };
	int n_items = 1 + zap_pollitems(p->guard, &items[1]);
	int64_t next_hb = sclock_mono_ns() + p->heartbeat_ns;
	int64_t now;
	bool held;	/* a record waits its turn: the passes go on (idle poll below) */

	while (!atomic_load_explicit(&p->stop, memory_order_acquire)) {
		size_t n = publish_drain_pass(p, false, &held);

		publish_check_drops(p, false);
		if (p->heartbeat_ns > 0) {
			now = sclock_mono_ns();
			if (now >= next_hb) {
				publish_heartbeat(p);
				next_hb += p->heartbeat_ns;
				/* After a stall, resume the rhythm instead of bursting. */
				if (next_hb <= now) {
					next_hb = now + p->heartbeat_ns;
				}
			}
		}
		/*
		 * Nothing sent (idle, or only records waiting their turn): wait on
		 * the socket, so that subscriptions are still serviced.
		 */
		if (n == 0) {
			zmq_poll(items, n_items, PUBLISH_IDLE_MS);
		}
		zap_serve(p->guard);	/* never waits: key checks, refusals logged */
		publish_read_subscriptions(p);
	}
	/* The producers have stopped: empty every ring before leaving. */
	while (publish_drain_pass(p, true, &held) > 0) {
		;
	}
	if (p->emg) {
		emg_stream_pump(p->emg, 0, true, publish_send_emg, p);
	}
	publish_check_drops(p, true);
	return NULL;
}

int publish_set_forward(struct publish *p, struct ring *r)
{
	if (p->started) {
		return -EBUSY;
	}
	p->forward = r;
	return 0;
}

int publish_set_emg(struct publish *p, struct emg_stream *s)
{
	if (p->started) {
		return -EBUSY;
	}
	p->emg = s;
	return 0;
}

int publish_start(struct publish *p)
{
	int ret;

	if (p->started) {
		return -EBUSY;
	}
	atomic_store(&p->stop, false);
	ret = pthread_create(&p->thread, NULL, publish_thread, p);
	if (ret) {
		return -ret;
	}
	pthread_setname_np(p->thread, "rpmsd-publish");
	p->started = true;
	p->joined = false;
	return 0;
}

int publish_flush(struct publish *p, int64_t deadline_ns)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = PUBLISH_FLUSH_TICK_NS };
	size_t mark[PUBLISH_MAX_RINGS];
	size_t i, n = p->n_rings;	/* fixed once started */
	bool behind;

	for (i = 0; i < n; i++) {
		mark[i] = ring_pushed(p->rings[i].ring);
	}
	/*
	 * Poll: the publisher never waits for anyone, so it cannot signal
	 * either; it passes a mark within one of its passes (PUBLISH_IDLE_MS
	 * when idle).
	 */
	for (;;) {
		behind = false;
		for (i = 0; i < n && !behind; i++) {
			size_t done = atomic_load_explicit(&p->rings[i].handled,
							   memory_order_acquire);

			/* handled never passes pushed; modulo SIZE_MAX + 1 */
			behind = done != mark[i] && mark[i] - done <= SIZE_MAX / 2;
		}
		if (!behind) {
			return 0;
		}
		if (sclock_mono_ns() >= deadline_ns) {
			return -ETIMEDOUT;
		}
		nanosleep(&tick, NULL);
	}
}

void publish_stop(struct publish *p)
{
	if (!p || !p->started || p->joined) {
		return;
	}
	atomic_store_explicit(&p->stop, true, memory_order_release);
	pthread_join(p->thread, NULL);
	p->joined = true;
}

void publish_stats(const struct publish *p, struct publish_stats *st)
{
	struct publish *q = (struct publish *)p;

	st->sent = atomic_load_explicit(&q->sent, memory_order_relaxed);
	st->ring_drops = atomic_load_explicit(&q->ring_drops, memory_order_relaxed);
	st->subscriptions = atomic_load_explicit(&q->subscriptions,
						 memory_order_relaxed);
}

void publish_set_health(struct publish *p, bool armed, uint64_t pulses,
			uint64_t samples)
{
	atomic_store_explicit(&p->armed, armed, memory_order_relaxed);
	atomic_store_explicit(&p->pulses, pulses, memory_order_relaxed);
	atomic_store_explicit(&p->samples, samples, memory_order_relaxed);
}

void publish_set_refresh(struct publish *p,
			 void (*fn)(void *ctx, struct publish_counts *out), void *ctx)
{
	p->refresh = fn;
	p->refresh_ctx = ctx;
}

void publish_set_status(struct publish *p, const struct publish_status *st)
{
	pthread_mutex_lock(&p->status_lock);
	p->status = *st;
	pthread_mutex_unlock(&p->status_lock);
}

void publish_last_fault(struct publish *p, struct publish_fault *out)
{
	pthread_mutex_lock(&p->status_lock);
	*out = p->fault;
	pthread_mutex_unlock(&p->status_lock);
}

void publish_destroy(struct publish *p)
{
	if (!p) {
		return;
	}
	publish_stop(p);
	if (p->guard) {
		zmq_socket_monitor(p->sock, NULL, 0);
	}
	zmq_close(p->sock);
	zap_destroy(p->guard);
	zmq_ctx_term(p->ctx);
	pthread_mutex_destroy(&p->status_lock);
	free(p);
}
