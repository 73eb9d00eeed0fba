/* SPDX-License-Identifier: MIT */
/*
 * The control thread ("rpmsd-control", normal scheduling): one poll over
 * the ROUTER socket's requests, the ZAP handler that lets in only the
 * allowed CURVE client keys, the socket monitor that reports failed
 * handshakes (logged and counted here, with the client's address), the
 * SIGHUP hand-over and the stop eventfd. It may block and allocate; it
 * acts on the daemon only through control_command.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zmq.h>

#include "config.h"
#include "control_private.h"
#include "log.h"

#define CONTROL_FRAMES 4		/* routing id, delimiter, body, one too many */

static void control_thread_drain(void *sock, bool more)
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
static void control_thread_serve(struct control *c)
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
		reply = control_command_execute(c, zmq_msg_data(&f[first]),
						zmq_msg_size(&f[first]));
	} else {
		/* a body of several frames, or none: not ours to guess */
		memset(&req, 0, sizeof(req));
		req.cmd = CONTROL_CMD_COUNT;
		memset(&err, 0, sizeof(err));
		control_request_fail(&err, "bad_request", "a request is one frame of JSON (got %zu "
				     "frames)", total - first);
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

static bool control_thread_key_allowed(const struct control *c, const uint8_t *key)
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
static void control_thread_frame_text(zmq_msg_t *m, char *buf, size_t len)
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
static bool control_thread_refused_new(struct control *c, const char *id, enum control_why why,
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
static void control_thread_refuse(struct control *c, const char *addr, const char *id,
				  enum control_why kind, const char *why)
{
	unsigned long held = 0;
	bool why_new, fresh = control_thread_refused_new(c, id, kind, &why_new);

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
static void control_thread_zap(struct control *c)
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
	control_thread_drain(c->zap, more && n == ZAP_FRAMES);
	if (n < 2) {
		goto out;
	}
	addr[0] = mech[0] = '\0';
	if (n >= 6) {
		control_thread_frame_text(&f[3], addr, sizeof(addr));
		control_thread_frame_text(&f[5], mech, sizeof(mech));
	}
	if (n >= 7 && !strcmp(mech, "CURVE") && zmq_msg_size(&f[6]) == CURVE_KEY_LEN) {
		zmq_z85_encode(z85, zmq_msg_data(&f[6]), CURVE_KEY_LEN);
		if (control_thread_key_allowed(c, zmq_msg_data(&f[6]))) {
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
		control_thread_refuse(c, addr[0] ? addr : "(address unknown)", id,
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
static enum control_why control_thread_handshake_why(const struct control *c, uint16_t event,
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
static void control_thread_peer_name(int fd, char *addr, size_t alen, char *id, size_t idlen)
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

static struct control_peer *control_thread_peer_find(struct control *c, int fd)
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
static void control_thread_handshake_failed(struct control *c, const struct control_peer *peer)
{
	enum control_why kind;
	char why[256];

	kind = control_thread_handshake_why(c, c->pending_event, c->pending_value, why,
					    sizeof(why));
	c->pending_event = 0;
	control_thread_refuse(c, peer ? peer->addr : "(address unknown)",
			      peer ? peer->id : "unknown", kind, why);
}

/* One socket monitor event: what and its value (a file descriptor, an error). */
struct control_mon_event {
	uint16_t event;
	uint32_t value;
};

/* Read one monitor event without waiting. @return 0, or -EAGAIN when none is left */
static int control_thread_monitor_recv(struct control *c, struct control_mon_event *ev)
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
	control_thread_drain(c->mon, zmq_msg_more(&m));	/* the endpoint frame: our own */
	zmq_msg_close(&m);
	return 0;
}

/* A connection was accepted on @fd; @gone: it has already been closed again. */
static void control_thread_peer_accepted(struct control *c, int fd, bool gone)
{
	struct control_peer *peer = control_thread_peer_find(c, fd);

	if (!peer) {
		peer = control_thread_peer_find(c, -1);
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
	control_thread_peer_name(fd, peer->addr, sizeof(peer->addr), peer->id, sizeof(peer->id));
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
static void control_thread_monitor(struct control *c)
{
	enum { MON_BATCH = 64 };
	struct control_mon_event ev[MON_BATCH];
	struct control_peer *peer;
	size_t n = 0, i, j;
	bool gone;
	int fd;

	while (n < MON_BATCH && control_thread_monitor_recv(c, &ev[n]) == 0) {
		n++;
	}
	for (i = 0; i < n; i++) {
		fd = (int)ev[i].value;
		switch (ev[i].event) {
		case ZMQ_EVENT_ACCEPTED:
			if (c->pending_event) {
				control_thread_handshake_failed(c, NULL);
			}
			gone = false;
			for (j = i + 1; j < n && !gone; j++) {
				gone = ev[j].event == ZMQ_EVENT_DISCONNECTED && ev[j].value == ev[i].value;
			}
			control_thread_peer_accepted(c, fd, gone);
			break;
		case ZMQ_EVENT_DISCONNECTED:
			peer = control_thread_peer_find(c, fd);
			if (c->pending_event) {
				control_thread_handshake_failed(c, peer);
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
				control_thread_handshake_failed(c, NULL);
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
static void control_thread_take_reload(struct control *c)
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

void *control_thread_main(void *arg)
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
		/* a course session's pulses go to the course database about once a second */
		if (zmq_poll(items, n, control_command_course_active(c) ? 1000 : -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			log_err("control: poll: %s; the control socket stops answering",
				zmq_strerror(errno));
			break;
		}
		/* ZAP first: a handshake waits for it. */
		if (i_zap >= 0 && (items[i_zap].revents & ZMQ_POLLIN)) {
			control_thread_zap(c);
		}
		if (items[i_mon].revents & ZMQ_POLLIN) {
			control_thread_monitor(c);
		}
		if (items[i_sock].revents & ZMQ_POLLIN) {
			control_thread_serve(c);
		}
		if (items[i_reload].revents & ZMQ_POLLIN) {
			control_thread_take_reload(c);
		}
		control_command_course_tick(c);
	}
	return NULL;
}
