/* SPDX-License-Identifier: MIT */
/*
 * The control socket (docs/control.md).
 *
 * ROUTER rather than REP: a REP socket whose reply cannot be queued stays
 * in its "must send" state and then refuses every later request, so one
 * misbehaving client (a DEALER that never reads) could lock everyone out.
 * A ROUTER drops what it cannot route and carries on. Clients use REQ.
 *
 * The commands are control_command.c's, the status reply
 * control_status.c's (control_private.h lists the files).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "control.h"
#include "control_private.h"
#include "record.h"
#include "log.h"
#include "policy.h"

#define CONTROL_RING 256		/* events: sessions, protocol changes */
#define CONTROL_HWM 64			/* messages queued per client */
#define CONTROL_FRAMES 4		/* routing id, delimiter, body, one too many */
#define CONTROL_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define CONTROL_MON_ENDPOINT "inproc://rpmsd-control-monitor"
#define CONTROL_ZAP_DOMAIN "rpmsd-control"
#define CONTROL_LOG_PERIOD_NS INT64_C(1000000000)

static void control_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void control_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* True at most once per CONTROL_LOG_PERIOD_NS; counts what it holds back. */
bool control_log_ok(struct control_log_limit *l, unsigned long *held)
{
	int64_t now = sclock_mono_ns();

	if (l->last_ns && now - l->last_ns < CONTROL_LOG_PERIOD_NS) {
		l->suppressed++;
		return false;
	}
	l->last_ns = now;
	*held = l->suppressed;
	l->suppressed = 0;
	return true;
}

/* ---- CURVE keys -------------------------------------------------------- */

/* Both files of cfg->control, resolved against the config file's directory. */
static int control_load_keys(const struct rpmsd_config *cfg,
			     char secret[CURVE_KEY_Z85_LEN + 1], uint8_t (**keys)[CURVE_KEY_LEN],
			     size_t *n, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX];
	int rc;

	if (config_resolve(cfg, cfg->control.curve_server_secret_file, path, sizeof(path)) < 0) {
		control_errf(err, errlen, "control.curve_server_secret_file: path too long");
		return -ENAMETOOLONG;
	}
	rc = curve_key_read_secret("control.curve_server_secret_file", path, secret, err,
				   errlen);
	if (rc < 0) {
		return rc;
	}
	if (config_resolve(cfg, cfg->control.curve_allowed_keys, path, sizeof(path)) < 0) {
		control_errf(err, errlen, "control.curve_allowed_keys: path too long");
		return -ENAMETOOLONG;
	}
	/*
	 * Read once, into room for the most a list may hold (32 KiB): a count
	 * first and a second read into an array of that size would write past
	 * it if the list grew in between.
	 */
	if (keys) {
		*keys = calloc(CURVE_KEY_ALLOWED_MAX, sizeof(**keys));
		if (!*keys) {
			control_errf(err, errlen, "control: out of memory");
			return -ENOMEM;
		}
	}
	return curve_key_read_allowed("control.curve_allowed_keys", path, keys ? *keys : NULL, n,
				      err, errlen);
}

int control_check_keys(const struct rpmsd_config *cfg, char *err, size_t errlen)
{
	char secret[CURVE_KEY_Z85_LEN + 1];
	size_t n = 0;
	int rc;

	if (!cfg->control.curve_server_secret_file[0]) {
		return 0;
	}
	rc = control_load_keys(cfg, secret, NULL, &n, err, errlen);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

/* ---- the thread -------------------------------------------------------- */

static void control_drain(void *sock, bool more)
{
	zmq_msg_t m;

	while (more) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	}
}

/*
 * One request: [routing id][empty delimiter][body] from a REQ client, or
 * [routing id][body] from a DEALER that sends no delimiter. Anything else
 * still gets an answer (an error), in the envelope it came in.
 */
static void control_serve(struct control *c)
{
	static const char nomem[] =
		"{\"ok\":false,\"cmd\":null,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
	struct control_request req;
	struct control_error err;
	zmq_msg_t f[CONTROL_FRAMES];
	size_t n = 0, total = 0, first, i;
	bool more = true, delim;
	char *reply = NULL;
	const char *body;
	size_t blen;

	while (more) {
		zmq_msg_init(&f[n]);
		if (zmq_msg_recv(&f[n], c->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&f[n]);
			break;
		}
		more = zmq_msg_more(&f[n]);
		total++;
		if (n + 1 < CONTROL_FRAMES) {
			n++;
		} else {
			zmq_msg_close(&f[n]);
		}
	}
	if (n == 0) {
		return;
	}
	delim = n >= 2 && zmq_msg_size(&f[1]) == 0;
	first = delim ? 2 : 1;
	if (total == first + 1) {
		reply = control_command_execute(c, zmq_msg_data(&f[first]), zmq_msg_size(&f[first]));
	} else {
		/* a body of several frames, or none: not ours to guess */
		memset(&req, 0, sizeof(req));
		req.cmd = CONTROL_CMD_COUNT;
		memset(&err, 0, sizeof(err));
		control_request_fail(&err, "bad_request", "a request is one frame of JSON (got %zu frames)",
				     total - first);
		control_command_log(c, &req, &err, false);
		reply = control_command_reply(CONTROL_CMD_COUNT, NULL, &err);
	}
	body = reply ? reply : nomem;
	blen = strlen(body);
	/* Never blocks: a client that does not read loses its own reply only. */
	if (zmq_send(c->sock, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]),
		     ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
	    (!delim || zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)) {
		zmq_send(c->sock, body, blen, ZMQ_DONTWAIT);
	}
	free(reply);
	for (i = 0; i < n; i++) {
		zmq_msg_close(&f[i]);
	}
}

static bool control_key_allowed(const struct control *c, const uint8_t *key)
{
	size_t i;

	for (i = 0; i < c->n_allowed; i++) {
		if (!memcmp(c->allowed[i], key, CURVE_KEY_LEN)) {
			return true;
		}
	}
	return false;
}

/* A frame's bytes as printable text into @buf. */
static void control_frame_text(zmq_msg_t *m, char *buf, size_t len)
{
	size_t n = zmq_msg_size(m) < len - 1 ? zmq_msg_size(m) : len - 1;

	memcpy(buf, zmq_msg_data(m), n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e) {
			buf[i] = '?';
		}
	}
}

/*
 * Remember client @id refused for @why (up to CONTROL_MAX_REFUSED clients).
 * @return whether the client is new; *@why_new: whether it was not refused
 *         for @why before
 */
static bool control_refused_new(struct control *c, const char *id, enum control_why why,
				bool *why_new)
{
	size_t i;

	for (i = 0; i < c->n_refused_ids; i++) {
		if (!strcmp(c->refused_ids[i], id)) {
			*why_new = !(c->refused_whys[i] & (1u << why));
			c->refused_whys[i] |= 1u << why;
			return false;
		}
	}
	/*
	 * Beyond the table every refusal counts (over-count rather than
	 * under-count), and is logged only as often as the limit allows.
	 */
	*why_new = c->n_refused_ids < CONTROL_MAX_REFUSED;
	if (*why_new) {
		c->refused_whys[c->n_refused_ids] = 1u << why;
		snprintf(c->refused_ids[c->n_refused_ids++], CONTROL_ADDR_LEN, "%s", id);
	}
	return true;
}

/*
 * Count and log one refused handshake. A client's first refusal for each
 * reason is always logged (at most CONTROL_MAX_REFUSED clients times their
 * reasons); the rest, e.g. a client that keeps retrying (ZeroMQ reconnects
 * on its own), at most once a second, so that nobody can flood the log.
 */
static void control_refuse(struct control *c, const char *addr, const char *id,
			   enum control_why kind, const char *why)
{
	unsigned long held = 0;
	bool why_new, fresh = control_refused_new(c, id, kind, &why_new);

	atomic_fetch_add(&c->handshakes_refused, 1);
	if (fresh) {
		atomic_fetch_add(&c->refused, 1);
	}
	if (!why_new && !control_log_ok(&c->log_refused, &held)) {
		return;
	}
	log_warn("control: refused client %s: %s%s", addr, why,
		 held ? " (and refusals held back: see status control.handshakes_refused)" : "");
}

/*
 * ZAP (RFC 27): libzmq asks, for every CURVE handshake on the control
 * socket, whether this client key may in. Frames: version, request id,
 * domain, address, routing id, mechanism, credentials (the 32-byte key).
 */
static void control_zap(struct control *c)
{
	enum { ZAP_FRAMES = 8 };
	zmq_msg_t f[ZAP_FRAMES];
	char addr[64], mech[16], z85[CURVE_KEY_Z85_LEN + 1] = "";
	char id[CONTROL_ADDR_LEN], why[160];
	const char *status = "400", *text = "client key not allowed";
	size_t n = 0, i;
	bool more = true;

	while (more && n < ZAP_FRAMES) {
		zmq_msg_init(&f[n]);
		if (zmq_msg_recv(&f[n], c->zap, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&f[n]);
			break;
		}
		more = zmq_msg_more(&f[n]);
		n++;
	}
	control_drain(c->zap, more && n == ZAP_FRAMES);
	if (n < 2) {
		goto out;
	}
	addr[0] = mech[0] = '\0';
	if (n >= 6) {
		control_frame_text(&f[3], addr, sizeof(addr));
		control_frame_text(&f[5], mech, sizeof(mech));
	}
	if (n >= 7 && !strcmp(mech, "CURVE") && zmq_msg_size(&f[6]) == CURVE_KEY_LEN) {
		zmq_z85_encode(z85, zmq_msg_data(&f[6]), CURVE_KEY_LEN);
		if (control_key_allowed(c, zmq_msg_data(&f[6]))) {
			status = "200";
			text = "OK";
		}
	}
	if (strcmp(status, "200")) {
		if (z85[0]) {
			snprintf(id, sizeof(id), "key %s", z85);
			snprintf(why, sizeof(why), "its CURVE public key %s is not in "
				 "control.curve_allowed_keys", z85);
		} else {
			snprintf(id, sizeof(id), "ip %s", addr[0] ? addr : "?");
			snprintf(why, sizeof(why), "it asked for the %s mechanism (allowed: CURVE)",
				 mech[0] ? mech : "?");
		}
		control_refuse(c, addr[0] ? addr : "(address unknown)", id,
			       z85[0] ? CONTROL_WHY_KEY : CONTROL_WHY_MECHANISM, why);
	}
	/* reply: version, request id, status code, status text, user id, metadata */
	zmq_send(c->zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(c->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
	zmq_send(c->zap, status, 3, ZMQ_SNDMORE);
	zmq_send(c->zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(c->zap, z85, strlen(z85), ZMQ_SNDMORE);
	zmq_send(c->zap, "", 0, 0);
out:
	for (i = 0; i < n; i++) {
		zmq_msg_close(&f[i]);
	}
}

/*
 * Why a handshake failed, in words: the monitor's event and value
 * (ZMQ_PROTOCOL_ERROR_* for a protocol failure, errno without detail).
 */
static enum control_why control_handshake_why(const struct control *c, uint16_t event,
					       uint32_t value, char *buf, size_t len)
{
	const char *what;

	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
		/* Which side saw the mismatch first is a race: the client may hang up first. */
		snprintf(buf, len, "it hung up during the handshake (%s)%s",
			 value ? strerror((int)value) : "connection closed",
			 c->curve ? ": a ZeroMQ client without CURVE does so when it sees this "
				    "CURVE server" : "");
		return CONTROL_WHY_CLOSED;
	}
	switch (value) {
	case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
		snprintf(buf, len, c->curve ? "it does not use CURVE (a ZeroMQ client without this "
				    "server's public key and a key of its own, or not ZeroMQ at all)"
					    : "it asked for a security mechanism (CURVE or PLAIN) this "
					      "socket does not use");
		return CONTROL_WHY_NO_CURVE;
	case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
		snprintf(buf, len, "its CURVE handshake cannot be decrypted: it was given the wrong "
			 "server public key (this server's is %s)", c->server_key);
		return CONTROL_WHY_SERVER_KEY;
	case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
		what = "a failed key exchange";
		break;
	case ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND:
	case ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE:
		what = "a handshake command out of order";
		break;
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_MESSAGE:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_INITIATE:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_ERROR:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_READY:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_WELCOME:
		what = "a malformed handshake command";
		break;
	case ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA:
		what = "invalid metadata";
		break;
	default:
		if ((value & 0xf0000000u) == ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED) {
			/* Our own ZAP handler's reply: a bug here, not the client's. */
			snprintf(buf, len, "rpmsd's key check (ZAP) answered badly (protocol error "
				 "0x%x)", (unsigned)value);
			return CONTROL_WHY_PROTOCOL;
		}
		what = "an unspecified ZMTP error";
		break;
	}
	snprintf(buf, len, "protocol error: %s (not a ZeroMQ client, or another version or "
		 "mechanism)", what);
	return CONTROL_WHY_PROTOCOL;
}

/* Who is behind connection @fd: "IP:port" (id "ip IP"), or a local process by uid. */
static void control_peer_name(int fd, char *addr, size_t alen, char *id, size_t idlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[64];
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(addr, alen, "(address unknown: %s)", strerror(errno));
		snprintf(id, idlen, "fd %d", fd);
		return;
	}
	if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip))) {
		snprintf(addr, alen, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
		snprintf(id, idlen, "ip %s", ip);
	} else if (ss.ss_family == AF_INET6 &&
		   inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip))) {
		snprintf(addr, alen, "[%s]:%u", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		snprintf(id, idlen, "ip %s", ip);
	} else if (ss.ss_family == AF_UNIX &&
		   getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
		snprintf(addr, alen, "local process %ld (uid %u)", (long)cred.pid, (unsigned)cred.uid);
		snprintf(id, idlen, "uid %u", (unsigned)cred.uid);
	} else {
		snprintf(addr, alen, "(address family %d)", (int)ss.ss_family);
		snprintf(id, idlen, "family %d", (int)ss.ss_family);
	}
}

static struct control_peer *control_peer_find(struct control *c, int fd)
{
	size_t i;

	for (i = 0; i < CONTROL_PEERS; i++) {
		if (c->peers[i].fd == fd) {
			return &c->peers[i];
		}
	}
	return NULL;
}

/* A failed handshake the monitor reported; @peer NULL when nobody is known. */
static void control_handshake_failed(struct control *c, const struct control_peer *peer)
{
	enum control_why kind;
	char why[256];

	kind = control_handshake_why(c, c->pending_event, c->pending_value, why, sizeof(why));
	c->pending_event = 0;
	control_refuse(c, peer ? peer->addr : "(address unknown)", peer ? peer->id : "unknown",
		       kind, why);
}

/* One socket monitor event: what and its value (a file descriptor, an error). */
struct control_mon_event {
	uint16_t event;
	uint32_t value;
};

/* Read one monitor event without waiting. @return 0, or -EAGAIN when none is left */
static int control_monitor_recv(struct control *c, struct control_mon_event *ev)
{
	zmq_msg_t m;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		return -EAGAIN;
	}
	ev->event = 0;
	ev->value = 0;
	if (zmq_msg_size(&m) >= 6) {
		memcpy(&ev->event, zmq_msg_data(&m), sizeof(ev->event));
		memcpy(&ev->value, (const char *)zmq_msg_data(&m) + 2, sizeof(ev->value));
	}
	control_drain(c->mon, zmq_msg_more(&m));	/* the endpoint frame: our own */
	zmq_msg_close(&m);
	return 0;
}

/* A connection was accepted on @fd; @gone: it has already been closed again. */
static void control_peer_accepted(struct control *c, int fd, bool gone)
{
	struct control_peer *peer = control_peer_find(c, fd);

	if (!peer) {
		peer = control_peer_find(c, -1);
	}
	if (!peer) {
		peer = &c->peers[c->next_peer];
		c->next_peer = (c->next_peer + 1) % CONTROL_PEERS;
	}
	peer->fd = fd;
	if (gone) {
		/* the descriptor may belong to the next connection already */
		snprintf(peer->addr, sizeof(peer->addr), "(address unknown: the connection ended "
			 "before it could be read)");
		snprintf(peer->id, sizeof(peer->id), "unknown");
		return;
	}
	control_peer_name(fd, peer->addr, sizeof(peer->addr), peer->id, sizeof(peer->id));
}

/*
 * The socket monitor. A handshake that fails before the ZAP handler is
 * asked (no CURVE, the wrong server key, garbage) is reported as an event
 * on the socket's own endpoint, without the client. libzmq's I/O thread
 * reports such a failure and then at once the DISCONNECTED of that
 * connection, with its file descriptor, which ACCEPTED announced: the
 * failure is logged with the DISCONNECTED that follows it, and the address
 * read (getpeername) when this thread saw the ACCEPTED. The events are read
 * in batches so that a connection already closed again by then is known
 * (its DISCONNECTED is in the batch): its descriptor may have been reused,
 * so its address is "unknown" rather than someone else's.
 */
static void control_monitor(struct control *c)
{
	enum { MON_BATCH = 64 };
	struct control_mon_event ev[MON_BATCH];
	struct control_peer *peer;
	size_t n = 0, i, j;
	bool gone;
	int fd;

	while (n < MON_BATCH && control_monitor_recv(c, &ev[n]) == 0) {
		n++;
	}
	for (i = 0; i < n; i++) {
		fd = (int)ev[i].value;
		switch (ev[i].event) {
		case ZMQ_EVENT_ACCEPTED:
			if (c->pending_event) {
				control_handshake_failed(c, NULL);
			}
			gone = false;
			for (j = i + 1; j < n && !gone; j++) {
				gone = ev[j].event == ZMQ_EVENT_DISCONNECTED && ev[j].value == ev[i].value;
			}
			control_peer_accepted(c, fd, gone);
			break;
		case ZMQ_EVENT_DISCONNECTED:
			peer = control_peer_find(c, fd);
			if (c->pending_event) {
				control_handshake_failed(c, peer);
			}
			if (peer) {
				peer->fd = -1;
			}
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
			/* The ZAP handler refused it and has logged it with its key. */
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
			if (c->pending_event) {
				control_handshake_failed(c, NULL);
			}
			c->pending_event = ev[i].event;
			c->pending_value = ev[i].value;
			break;
		default:
			break;
		}
	}
}

/* The control thread's side of control_reload. */
static void control_take_reload(struct control *c)
{
	struct rpmsd_config *next = malloc(sizeof(*next));
	uint64_t v;

	if (read(c->reload_fd, &v, sizeof(v)) != sizeof(v) || !next) {
		free(next);
		return;
	}
	pthread_mutex_lock(&c->lock);
	*next = *c->reload_next;
	pthread_mutex_unlock(&c->lock);
	control_command_reload(c, next);
	free(next);
}

static void *control_thread(void *arg)
{
	struct control *c = arg;
	zmq_pollitem_t items[5];
	int n = 0, i_zap = -1, i_mon, i_sock, i_reload;

	items[n] = (zmq_pollitem_t){ .socket = c->sock, .events = ZMQ_POLLIN };
	i_sock = n++;
	if (c->zap) {
		items[n] = (zmq_pollitem_t){ .socket = c->zap, .events = ZMQ_POLLIN };
		i_zap = n++;
	}
	items[n] = (zmq_pollitem_t){ .socket = c->mon, .events = ZMQ_POLLIN };
	i_mon = n++;
	items[n] = (zmq_pollitem_t){ .socket = NULL, .fd = c->reload_fd, .events = ZMQ_POLLIN };
	i_reload = n++;
	items[n] = (zmq_pollitem_t){ .socket = NULL, .fd = c->stop_fd, .events = ZMQ_POLLIN };
	n++;
	while (!atomic_load(&c->stopping)) {
		if (zmq_poll(items, n, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			log_err("control: poll: %s; the control socket stops answering",
				zmq_strerror(errno));
			break;
		}
		/* ZAP first: a handshake waits for it. */
		if (i_zap >= 0 && (items[i_zap].revents & ZMQ_POLLIN)) {
			control_zap(c);
		}
		if (items[i_mon].revents & ZMQ_POLLIN) {
			control_monitor(c);
		}
		if (items[i_sock].revents & ZMQ_POLLIN) {
			control_serve(c);
		}
		if (items[i_reload].revents & ZMQ_POLLIN) {
			control_take_reload(c);
		}
	}
	return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

/* Close the sockets and the context (no thread uses them). */
static void control_close(struct control *c)
{
	if (c->sock) {
		zmq_socket_monitor(c->sock, NULL, 0);
		zmq_close(c->sock);
		c->sock = NULL;
	}
	if (c->mon) {
		zmq_close(c->mon);
		c->mon = NULL;
	}
	if (c->zap) {
		zmq_close(c->zap);
		c->zap = NULL;
	}
	if (c->ctx) {
		zmq_ctx_term(c->ctx);
		c->ctx = NULL;
	}
}

static int control_setsockopt_int(void *sock, int opt, int value)
{
	return zmq_setsockopt(sock, opt, &value, sizeof(value)) == 0 ? 0 : -errno;
}

/* "ipc://relative" is relative to the config file, like every other path. */
static int control_resolve_endpoint(const struct rpmsd_config *cfg, char *out, size_t len)
{
	const char *ep = cfg->control.endpoint;
	char path[CONFIG_PATH_MAX];

	if (strncmp(ep, "ipc://", 6) || ep[6] == '/' || ep[6] == '@' || !strcmp(ep + 6, "*")) {
		return snprintf(out, len, "%s", ep) >= (int)len ? -ENAMETOOLONG : 0;
	}
	if (config_resolve(cfg, ep + 6, path, sizeof(path)) < 0) {
		return -ENAMETOOLONG;
	}
	return snprintf(out, len, "ipc://%s", path) >= (int)len ? -ENAMETOOLONG : 0;
}

/* What lstat found at an ipc path, for messages. */
static const char *control_file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symbolic link";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
	case S_IFBLK:
		return "a device";
	default:
		return "not a socket";
	}
}

/*
 * libzmq unlink()s whatever is at an ipc path before it binds (checked
 * against 4.3.4): a typo'd endpoint would delete a file, and a second
 * daemon would take a live socket over silently. Only nothing, or a UNIX
 * socket nobody listens on (a dead daemon's), may be replaced. Connecting
 * tells a live socket from a stale one; non-blocking, so that a listener
 * whose backlog is full counts as live instead of hanging the start.
 * @starting  false for --check-config: a live socket there is the running
 *            daemon's, not an error yet
 */
static int control_ipc_free(const char *key, const char *path, bool starting,
			    char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		control_errf(err, errlen, "%s: ipc://%s: the path is too long for a UNIX socket "
			     "(allowed: at most %zu characters)", key, path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) < 0) {
		/* nothing there (or no directory: the bind says so) */
		return 0;
	}
	if (!S_ISSOCK(st.st_mode)) {
		control_errf(err, errlen, "%s: ipc://%s: %s is %s, not a socket: rpmsd will not "
			     "replace it (binding removes whatever is at the path; allowed: a path "
			     "where nothing is, or a socket left by a daemon that is gone)", key, path,
			     path, control_file_kind(st.st_mode));
		return -EEXIST;
	}
	if (!starting) {
		return 0;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		control_errf(err, errlen, "%s: ipc://%s: cannot tell whether another process listens "
			     "there: %s", key, path, strerror(-rc));
		return rc;
	}
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	close(fd);
	if (rc == -ECONNREFUSED) {
		return 0;	/* stale: nobody listens */
	}
	if (rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS) {
		control_errf(err, errlen, "%s: ipc://%s is in use by another process (another "
			     "rpmsd?)", key, path);
		return -EADDRINUSE;
	}
	control_errf(err, errlen, "%s: ipc://%s: cannot tell whether another process listens "
		     "there: %s", key, path, strerror(-rc));
	return rc;
}

/* The file of an "ipc://PATH" endpoint, or NULL (tcp, abstract "@name", "*"). */
static const char *control_ipc_path(const char *endpoint)
{
	if (strncmp(endpoint, "ipc://", 6) || endpoint[6] == '@' || !strcmp(endpoint + 6, "*")) {
		return NULL;
	}
	return endpoint + 6;
}

int control_check_endpoints(const struct rpmsd_config *cfg, bool starting, char *err,
			    size_t errlen)
{
	char endpoint[CONFIG_PATH_MAX + 8];
	const char *path;
	int ret;

	if (errlen) {
		err[0] = '\0';
	}
	/* The publisher binds its endpoint as written (relative to the working directory). */
	path = control_ipc_path(cfg->publish.endpoint);
	if (path) {
		ret = control_ipc_free("publish.endpoint", path, starting, err, errlen);
		if (ret < 0) {
			return ret;
		}
	}
	if (control_resolve_endpoint(cfg, endpoint, sizeof(endpoint)) < 0) {
		control_errf(err, errlen, "control.endpoint: path too long");
		return -ENAMETOOLONG;
	}
	path = control_ipc_path(endpoint);
	return path ? control_ipc_free("control.endpoint", path, starting, err, errlen) : 0;
}

static int control_sockets(struct control *c, const char *secret, char *err, size_t errlen)
{
	int64_t maxmsg = CONTROL_FRAME_MAX;
	int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;
	int ret;

	c->ctx = zmq_ctx_new();
	if (!c->ctx) {
		ret = errno ? -errno : -ENOMEM;
		control_errf(err, errlen, "control: cannot create a ZeroMQ context: %s",
			     zmq_strerror(-ret));
		return ret;
	}
	if (c->curve) {
		/* The handler must be bound before any client can connect. */
		c->zap = zmq_socket(c->ctx, ZMQ_REP);
		if (!c->zap || control_setsockopt_int(c->zap, ZMQ_LINGER, 0) < 0 ||
		    zmq_bind(c->zap, CONTROL_ZAP_ENDPOINT) != 0) {
			ret = -errno;
			control_errf(err, errlen, "control: cannot start the ZAP handler: %s",
				     zmq_strerror(-ret));
			return ret;
		}
	}
	c->sock = zmq_socket(c->ctx, ZMQ_ROUTER);
	if (!c->sock) {
		ret = -errno;
		control_errf(err, errlen, "control: cannot create the socket: %s", zmq_strerror(-ret));
		return ret;
	}
	ret = control_setsockopt_int(c->sock, ZMQ_LINGER, 0);
	if (!ret) {
		ret = control_setsockopt_int(c->sock, ZMQ_SNDHWM, CONTROL_HWM);
	}
	if (!ret) {
		ret = control_setsockopt_int(c->sock, ZMQ_RCVHWM, CONTROL_HWM);
	}
	if (!ret && zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0) {
		ret = -errno;
	}
	if (!ret && c->curve) {
		ret = control_setsockopt_int(c->sock, ZMQ_CURVE_SERVER, 1);
		if (!ret &&
		    (zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, secret, CURVE_KEY_Z85_LEN) != 0 ||
		     zmq_setsockopt(c->sock, ZMQ_ZAP_DOMAIN, CONTROL_ZAP_DOMAIN,
				    strlen(CONTROL_ZAP_DOMAIN)) != 0)) {
			ret = -errno;
		}
	}
	if (ret) {
		control_errf(err, errlen, "control: cannot set socket options: %s", zmq_strerror(-ret));
		return ret;
	}
	/* Refused handshakes are logged; the monitor reports them. */
	if (zmq_socket_monitor(c->sock, CONTROL_MON_ENDPOINT, events) != 0) {
		ret = -errno;
		control_errf(err, errlen, "control: cannot monitor the socket: %s", zmq_strerror(-ret));
		return ret;
	}
	c->mon = zmq_socket(c->ctx, ZMQ_PAIR);
	if (!c->mon || control_setsockopt_int(c->mon, ZMQ_LINGER, 0) < 0 ||
	    zmq_connect(c->mon, CONTROL_MON_ENDPOINT) != 0) {
		ret = -errno;
		control_errf(err, errlen, "control: cannot monitor the socket: %s", zmq_strerror(-ret));
		return ret;
	}
	return 0;
}

/*
 * Bind @endpoint. @return 0, 1 when the default endpoint's directory does
 * not exist (no systemd RuntimeDirectory=: run without control), or -errno
 */
static int control_bind(struct control *c, const char *endpoint, bool is_default,
			char *err, size_t errlen)
{
	const char *path = control_ipc_path(endpoint);
	bool ipc_file = path != NULL;
	size_t len;
	int ret;

	if (ipc_file) {
		ret = control_ipc_free("control.endpoint", path, true, err, errlen);
		if (ret < 0) {
			return ret;
		}
	}
	if (zmq_bind(c->sock, endpoint) != 0) {
		ret = -errno;
		if (ret == -ENOENT && is_default) {
			return 1;
		}
		control_errf(err, errlen, "control.endpoint: cannot bind '%s': %s%s", endpoint,
			     zmq_strerror(-ret), ret == -ENOENT ? " (its directory does not exist)" : "");
		return ret;
	}
	len = sizeof(c->endpoint);
	if (zmq_getsockopt(c->sock, ZMQ_LAST_ENDPOINT, c->endpoint, &len) != 0) {
		snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
	}
	/* Who may connect is the group's and the directory's decision, not umask's. */
	if (ipc_file && chmod(path, 0660) != 0) {
		ret = -errno;
		control_errf(err, errlen, "control.endpoint: cannot make %s mode 0660: %s", path,
			     strerror(errno));
		return ret;
	}
	return 0;
}

int control_create(const struct rpmsd_config *cfg, const struct control_deps *deps,
		   struct control **out, char *err, size_t errlen)
{
	char endpoint[CONFIG_PATH_MAX + 8], secret[CURVE_KEY_Z85_LEN + 1] = "";
	struct control *c;
	int ret;

	if (errlen) {
		err[0] = '\0';
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		control_errf(err, errlen, "control: out of memory");
		return -ENOMEM;
	}
	c->stop_fd = -1;
	c->reload_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->stopping, false);
	atomic_init(&c->refused, 0);
	atomic_init(&c->handshakes_refused, 0);
	for (size_t i = 0; i < CONTROL_PEERS; i++) {
		c->peers[i].fd = -1;
	}
	c->stim = deps->stim;
	c->acq = deps->acq;
	c->clock = deps->clock;
	c->pub = deps->pub;
	c->rec = deps->rec;
	c->acq_timeout_ms = cfg->safety.acquisition_timeout_ms;
	c->calibration_s = cfg->detect.calibration_s;
	c->curve = cfg->control.curve_server_secret_file[0] != '\0';
	config_value_text(cfg, "stim", "protocol", c->protocol, sizeof(c->protocol));
	c->cfg = malloc(sizeof(*c->cfg));
	if (!c->cfg) {
		control_errf(err, errlen, "control: out of memory");
		ret = -ENOMEM;
		goto err_free;
	}
	*c->cfg = *cfg;
	ret = ring_create(CONTROL_RING, sizeof(struct event), &c->events);
	if (ret == 0) {
		c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		c->reload_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ret = c->stop_fd < 0 || c->reload_fd < 0 ? -errno : 0;
	}
	if (ret < 0) {
		control_errf(err, errlen, "control: %s", strerror(-ret));
		goto err_free;
	}
	if (control_resolve_endpoint(cfg, endpoint, sizeof(endpoint)) < 0) {
		control_errf(err, errlen, "control.endpoint: path too long");
		ret = -ENAMETOOLONG;
		goto err_free;
	}
	if (c->curve) {
		if (!zmq_has("curve")) {
			control_errf(err, errlen, "control.curve_server_secret_file: this libzmq has no "
				     "CURVE support");
			ret = -ENOTSUP;
			goto err_free;
		}
		ret = control_load_keys(cfg, secret, &c->allowed, &c->n_allowed, err, errlen);
		if (ret < 0) {
			goto err_free;
		}
		if (zmq_curve_public(c->server_key, secret) != 0) {
			control_errf(err, errlen, "control.curve_server_secret_file: not a valid key");
			ret = -EINVAL;
			goto err_free;
		}
	}
	ret = control_sockets(c, secret, err, errlen);
	if (ret == 0) {
		ret = control_bind(c, endpoint, !strcmp(cfg->control.endpoint, CONFIG_CONTROL_ENDPOINT),
				   err, errlen);
	}
	if (ret < 0) {
		goto err_free;
	}
	explicit_bzero(secret, sizeof(secret));
	if (ret == 1) {
		/*
		 * Fail safe, not fail to start: without a control socket nothing
		 * can arm the coil (daemon.arm_on_start aside), and a run that
		 * was never meant to be controlled (a bench, a replay) still runs.
		 */
		log_warn("control: %s: the directory does not exist (it is the systemd unit's "
			 "RuntimeDirectory=); running WITHOUT a control socket: set "
			 "control.endpoint to control this daemon", endpoint);
		control_close(c);
		c->endpoint[0] = '\0';
	} else if (c->curve) {
		log_info("control: %s, CURVE: server public key %s, %zu client key(s) allowed",
			 c->endpoint, c->server_key, c->n_allowed);
	} else {
		log_info("control: %s", c->endpoint);
	}
	*out = c;
	return 0;

err_free:
	explicit_bzero(secret, sizeof(secret));
	control_destroy(c);
	return ret;
}

const char *control_endpoint(const struct control *c)
{
	return c->endpoint;
}

struct ring *control_events(struct control *c)
{
	return c->events;
}

int control_start(struct control *c)
{
	int ret;

	if (c->started) {
		return -EBUSY;
	}
	if (!c->sock) {
		return 0;	/* no control socket: nothing to serve */
	}
	ret = pthread_create(&c->tid, NULL, control_thread, c);
	if (ret) {
		return -ret;
	}
	pthread_setname_np(c->tid, "rpmsd-control");
	c->started = true;
	return 0;
}

void control_stop(struct control *c)
{
	uint64_t one = 1;

	if (!c || !c->started || c->joined) {
		return;
	}
	atomic_store(&c->stopping, true);
	if (write(c->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd write cannot fail here; the flag is seen within a tick */
	}
	pthread_join(c->tid, NULL);
	c->joined = true;
}

void control_destroy(struct control *c)
{
	if (!c) {
		return;
	}
	control_stop(c);
	control_close(c);
	if (c->stop_fd >= 0) {
		close(c->stop_fd);
	}
	if (c->reload_fd >= 0) {
		close(c->reload_fd);
	}
	free(c->reload_next);
	ring_destroy(c->events);
	free(c->allowed);
	free(c->cfg);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int control_reload(struct control *c, const struct rpmsd_config *next)
{
	uint64_t one = 1;

	if (!c->started || c->joined) {
		/* No control thread: this thread is the only one using c->cfg. */
		control_command_reload(c, next);
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	if (!c->reload_next) {
		c->reload_next = malloc(sizeof(*c->reload_next));
	}
	if (c->reload_next) {
		*c->reload_next = *next;
	}
	pthread_mutex_unlock(&c->lock);
	if (!c->reload_next) {
		return -ENOMEM;
	}
	if (write(c->reload_fd, &one, sizeof(one)) < 0) {
		return -errno;
	}
	return 0;
}

bool control_key_settable(const char *key)
{
	return control_request_is_settable(key);
}
