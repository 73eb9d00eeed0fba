/* SPDX-License-Identifier: MIT */
/*
 * The guard of a ZeroMQ server socket (zap.h): the ZAP handler that lets
 * in only the allowed CURVE client keys, and the socket monitor that
 * reports failed handshakes (logged and counted here, with the client's
 * address). The control socket and the event stream each have one, in
 * their own ZeroMQ context (a context has one ZAP endpoint).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <zmq.h>

#include "config.h"
#include "log.h"
#include "sclock.h"
#include "zap.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"	/* RFC 27: fixed, one per context */
#define ZAP_MAX_REFUSED 256		/* refused clients told apart */
#define ZAP_PEERS 64			/* connections whose address is known */
#define ZAP_ADDR_LEN 96
#define ZAP_NAME_LEN 64
#define ZAP_LOG_PERIOD_NS INT64_C(1000000000)
#define ZAP_BATCH 64			/* key checks or monitor events per zap_serve */

/* Why a client was refused, for the log: each client's first of each is logged. */
enum zap_why {
	ZAP_WHY_KEY,			/* ZAP: a CURVE key not in the allowlist */
	ZAP_WHY_MECHANISM,		/* ZAP: not CURVE */
	ZAP_WHY_NO_CURVE,		/* mechanism mismatch before ZAP */
	ZAP_WHY_SERVER_KEY,		/* the HELLO cannot be decrypted */
	ZAP_WHY_PROTOCOL,		/* anything else ZMTP */
	ZAP_WHY_CLOSED,			/* gone during the handshake */
};

/*
 * A connection the socket monitor announced (ZMQ_EVENT_ACCEPTED carries its
 * file descriptor): who is behind it, for the log when its handshake fails.
 */
struct zap_peer {
	int fd;				/* -1: free */
	char addr[ZAP_ADDR_LEN];	/* for people: "127.0.0.1:40312" */
	char id[ZAP_ADDR_LEN];		/* the client, for counting: "ip 127.0.0.1" */
};

struct zap {
	struct zap_opts o;
	void *ctx;
	void *handler;			/* REP on the ZAP endpoint; NULL without CURVE */
	void *mon;			/* PAIR: the socket monitor's events */
	char mon_endpoint[ZAP_NAME_LEN];
	char domain[ZAP_NAME_LEN];
	bool curve;
	char secret[CURVE_KEY_Z85_LEN + 1];	/* until zap_apply */
	char server_key[CURVE_KEY_Z85_LEN + 1];	/* public, for status and the log */
	uint8_t (*allowed)[CURVE_KEY_LEN];
	size_t n_allowed;
	/*
	 * Refusals: clients are told apart by the key they presented, else by
	 * address (IP, or uid over ipc); every refused handshake counts too.
	 * The serving thread only, the counters aside.
	 */
	atomic_uint_fast64_t refused;
	atomic_uint_fast64_t handshakes_refused;
	char refused_ids[ZAP_MAX_REFUSED][ZAP_ADDR_LEN];
	unsigned refused_whys[ZAP_MAX_REFUSED];	/* bit per enum zap_why logged */
	size_t n_refused_ids;
	struct zap_peer peers[ZAP_PEERS];
	size_t next_peer;		/* the slot to reuse when all are taken */
	uint16_t pending_event;		/* a handshake failure awaiting its DISCONNECTED */
	uint32_t pending_value;
	int64_t log_last_ns;		/* rate limit of the refusal log */
	unsigned long log_suppressed;
};

static void zap_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void zap_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- key files --------------------------------------------------------- */

/* Both key files, resolved against the config file's directory; @keys NULL: check only. */
static int zap_load_keys(const struct rpmsd_config *cfg, const char *section,
			 const char *secret_file, const char *allowed,
			 char secret[CURVE_KEY_Z85_LEN + 1], uint8_t (**keys)[CURVE_KEY_LEN],
			 size_t *n, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX], name[ZAP_NAME_LEN];
	int rc;

	snprintf(name, sizeof(name), "%s.curve_server_secret_file", section);
	if (config_resolve(cfg, secret_file, path, sizeof(path)) < 0) {
		zap_errf(err, errlen, "%s: path too long", name);
		return -ENAMETOOLONG;
	}
	rc = curve_key_read_secret(name, path, secret, err, errlen);
	if (rc < 0) {
		return rc;
	}
	snprintf(name, sizeof(name), "%s.curve_allowed_keys", section);
	if (config_resolve(cfg, allowed, path, sizeof(path)) < 0) {
		zap_errf(err, errlen, "%s: path too long", name);
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
			zap_errf(err, errlen, "%s: out of memory", section);
			return -ENOMEM;
		}
	}
	return curve_key_read_allowed(name, path, keys ? *keys : NULL, n, err, errlen);
}

int zap_check_keys(const struct rpmsd_config *cfg, const char *section, const char *secret_file,
		   const char *allowed, char *err, size_t errlen)
{
	char secret[CURVE_KEY_Z85_LEN + 1];
	size_t n = 0;
	int rc;

	if (!secret_file[0]) {
		return 0;
	}
	rc = zap_load_keys(cfg, section, secret_file, allowed, secret, NULL, &n, err, errlen);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

/* ---- set-up ------------------------------------------------------------ */

static int zap_setsockopt_int(void *sock, int opt, int value)
{
	return zmq_setsockopt(sock, opt, &value, sizeof(value)) == 0 ? 0 : -errno;
}

int zap_create(void *ctx, const struct zap_opts *o, const struct rpmsd_config *cfg,
	       struct zap **out, char *err, size_t errlen)
{
	struct zap *z;
	int ret;

	if (errlen) {
		err[0] = '\0';
	}
	z = calloc(1, sizeof(*z));
	if (!z) {
		zap_errf(err, errlen, "%s: out of memory", o->section);
		return -ENOMEM;
	}
	z->o = *o;
	z->ctx = ctx;
	z->curve = o->secret_file[0] != '\0';
	atomic_init(&z->refused, 0);
	atomic_init(&z->handshakes_refused, 0);
	for (size_t i = 0; i < ZAP_PEERS; i++) {
		z->peers[i].fd = -1;
	}
	snprintf(z->mon_endpoint, sizeof(z->mon_endpoint), "inproc://rpmsd-%s-monitor", o->section);
	snprintf(z->domain, sizeof(z->domain), "rpmsd-%s", o->section);
	if (z->curve) {
		if (!zmq_has("curve")) {
			zap_errf(err, errlen, "%s.curve_server_secret_file: this libzmq has no CURVE "
				 "support", o->section);
			ret = -ENOTSUP;
			goto err_free;
		}
		ret = zap_load_keys(cfg, o->section, o->secret_file, o->allowed, z->secret,
				    &z->allowed, &z->n_allowed, err, errlen);
		if (ret < 0) {
			goto err_free;
		}
		if (zmq_curve_public(z->server_key, z->secret) != 0) {
			zap_errf(err, errlen, "%s.curve_server_secret_file: not a valid key",
				 o->section);
			ret = -EINVAL;
			goto err_free;
		}
		/* The handler must be bound before any client can connect. */
		z->handler = zmq_socket(ctx, ZMQ_REP);
		if (!z->handler || zap_setsockopt_int(z->handler, ZMQ_LINGER, 0) < 0 ||
		    zmq_bind(z->handler, ZAP_ENDPOINT) != 0) {
			ret = -errno;
			zap_errf(err, errlen, "%s: cannot start the ZAP handler: %s", o->section,
				 zmq_strerror(-ret));
			goto err_free;
		}
	}
	*out = z;
	return 0;

err_free:
	zap_destroy(z);
	return ret;
}

int zap_apply(struct zap *z, void *sock, char *err, size_t errlen)
{
	int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;
	int ret = 0;

	if (z->curve) {
		ret = zap_setsockopt_int(sock, ZMQ_CURVE_SERVER, 1);
		if (!ret &&
		    (zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->secret, CURVE_KEY_Z85_LEN) != 0 ||
		     zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, z->domain, strlen(z->domain)) != 0)) {
			ret = -errno;
		}
		explicit_bzero(z->secret, sizeof(z->secret));
		if (ret) {
			zap_errf(err, errlen, "%s: cannot set the CURVE options: %s", z->o.section,
				 zmq_strerror(-ret));
			return ret;
		}
	}
	/* Refused handshakes are logged; the monitor reports them. */
	if (zmq_socket_monitor(sock, z->mon_endpoint, events) != 0) {
		ret = -errno;
		zap_errf(err, errlen, "%s: cannot monitor the socket: %s", z->o.section,
			 zmq_strerror(-ret));
		return ret;
	}
	z->mon = zmq_socket(z->ctx, ZMQ_PAIR);
	if (!z->mon || zap_setsockopt_int(z->mon, ZMQ_LINGER, 0) < 0 ||
	    zmq_connect(z->mon, z->mon_endpoint) != 0) {
		ret = -errno;
		zap_errf(err, errlen, "%s: cannot monitor the socket: %s", z->o.section,
			 zmq_strerror(-ret));
		return ret;
	}
	return 0;
}

int zap_pollitems(const struct zap *z, zmq_pollitem_t *items)
{
	int n = 0;

	if (z && z->handler) {
		items[n++] = (zmq_pollitem_t){ .socket = z->handler, .events = ZMQ_POLLIN };
	}
	if (z && z->mon) {
		items[n++] = (zmq_pollitem_t){ .socket = z->mon, .events = ZMQ_POLLIN };
	}
	return n;
}

bool zap_curve(const struct zap *z)
{
	return z && z->curve;
}

const char *zap_server_key(const struct zap *z)
{
	return z && z->curve ? z->server_key : "";
}

size_t zap_allowed(const struct zap *z)
{
	return z ? z->n_allowed : 0;
}

void zap_refusals(const struct zap *z, uint64_t *clients, uint64_t *handshakes)
{
	struct zap *w = (struct zap *)z;	/* atomic_load takes no const */

	*clients = z ? atomic_load(&w->refused) : 0;
	*handshakes = z ? atomic_load(&w->handshakes_refused) : 0;
}

void zap_close(struct zap *z)
{
	if (!z) {
		return;
	}
	if (z->mon) {
		zmq_close(z->mon);
		z->mon = NULL;
	}
	if (z->handler) {
		zmq_close(z->handler);
		z->handler = NULL;
	}
}

void zap_destroy(struct zap *z)
{
	if (!z) {
		return;
	}
	zap_close(z);
	explicit_bzero(z->secret, sizeof(z->secret));
	free(z->allowed);
	free(z);
}

/* ---- refusals ---------------------------------------------------------- */

static void zap_drain(void *sock, bool more)
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

/* True at most once per ZAP_LOG_PERIOD_NS; counts what it holds back. */
static bool zap_log_ok(struct zap *z, unsigned long *held)
{
	int64_t now = sclock_mono_ns();

	if (z->log_last_ns && now - z->log_last_ns < ZAP_LOG_PERIOD_NS) {
		z->log_suppressed++;
		return false;
	}
	z->log_last_ns = now;
	*held = z->log_suppressed;
	z->log_suppressed = 0;
	return true;
}

static bool zap_key_allowed(const struct zap *z, const uint8_t *key)
{
	size_t i;

	for (i = 0; i < z->n_allowed; i++) {
		if (!memcmp(z->allowed[i], key, CURVE_KEY_LEN)) {
			return true;
		}
	}
	return false;
}

/* A frame's bytes as printable text into @buf. */
static void zap_frame_text(zmq_msg_t *m, char *buf, size_t len)
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
 * Remember client @id refused for @why (up to ZAP_MAX_REFUSED clients).
 * @return whether the client is new; *@why_new: whether it was not refused
 *         for @why before
 */
static bool zap_refused_new(struct zap *z, const char *id, enum zap_why why, bool *why_new)
{
	size_t i;

	for (i = 0; i < z->n_refused_ids; i++) {
		if (!strcmp(z->refused_ids[i], id)) {
			*why_new = !(z->refused_whys[i] & (1u << why));
			z->refused_whys[i] |= 1u << why;
			return false;
		}
	}
	/*
	 * Beyond the table every refusal counts (over-count rather than
	 * under-count), and is logged only as often as the limit allows.
	 */
	*why_new = z->n_refused_ids < ZAP_MAX_REFUSED;
	if (*why_new) {
		z->refused_whys[z->n_refused_ids] = 1u << why;
		snprintf(z->refused_ids[z->n_refused_ids++], ZAP_ADDR_LEN, "%s", id);
	}
	return true;
}

/*
 * Count and log one refused handshake. A client's first refusal for each
 * reason is always logged (at most ZAP_MAX_REFUSED clients times their
 * reasons); the rest, e.g. a client that keeps retrying (ZeroMQ reconnects
 * on its own), at most once a second, so that nobody can flood the log.
 */
static void zap_refuse(struct zap *z, const char *addr, const char *id, enum zap_why kind,
		       const char *why)
{
	unsigned long held = 0;
	bool why_new, fresh = zap_refused_new(z, id, kind, &why_new);

	atomic_fetch_add(&z->handshakes_refused, 1);
	if (fresh) {
		atomic_fetch_add(&z->refused, 1);
	}
	if (!why_new && !zap_log_ok(z, &held)) {
		return;
	}
	log_warn("%s: refused %s %s: %s%s%s%s", z->o.section, z->o.who, addr, why,
		 held ? " (and refusals held back: " : "", held ? z->o.held : "", held ? ")" : "");
}

/*
 * ZAP (RFC 27): libzmq asks, for every CURVE handshake on the guarded
 * socket, whether this client key may in. Frames: version, request id,
 * domain, address, routing id, mechanism, credentials (the 32-byte key).
 * @return whether there was a request
 */
static bool zap_handle(struct zap *z)
{
	enum { ZAP_FRAMES = 8 };
	zmq_msg_t f[ZAP_FRAMES];
	char addr[64], mech[16], z85[CURVE_KEY_Z85_LEN + 1] = "";
	char id[ZAP_ADDR_LEN], why[160];
	const char *status = "400", *text = "client key not allowed";
	size_t n = 0, i;
	bool more = true;

	while (more && n < ZAP_FRAMES) {
		zmq_msg_init(&f[n]);
		if (zmq_msg_recv(&f[n], z->handler, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&f[n]);
			break;
		}
		more = zmq_msg_more(&f[n]);
		n++;
	}
	zap_drain(z->handler, more && n == ZAP_FRAMES);
	if (n < 2) {
		goto out;
	}
	addr[0] = mech[0] = '\0';
	if (n >= 6) {
		zap_frame_text(&f[3], addr, sizeof(addr));
		zap_frame_text(&f[5], mech, sizeof(mech));
	}
	if (n >= 7 && !strcmp(mech, "CURVE") && zmq_msg_size(&f[6]) == CURVE_KEY_LEN) {
		zmq_z85_encode(z85, zmq_msg_data(&f[6]), CURVE_KEY_LEN);
		if (zap_key_allowed(z, zmq_msg_data(&f[6]))) {
			status = "200";
			text = "OK";
		}
	}
	if (strcmp(status, "200")) {
		if (z85[0]) {
			snprintf(id, sizeof(id), "key %s", z85);
			snprintf(why, sizeof(why), "its CURVE public key %s is not in "
				 "%s.curve_allowed_keys", z85, z->o.section);
		} else {
			snprintf(id, sizeof(id), "ip %s", addr[0] ? addr : "?");
			snprintf(why, sizeof(why), "it asked for the %s mechanism (allowed: CURVE)",
				 mech[0] ? mech : "?");
		}
		zap_refuse(z, addr[0] ? addr : "(address unknown)", id,
			   z85[0] ? ZAP_WHY_KEY : ZAP_WHY_MECHANISM, why);
	}
	/*
	 * reply: version, request id, status code, status text, user id,
	 * metadata. To libzmq's own ZAP client over inproc, which reads it at
	 * once: the sends do not wait.
	 */
	zmq_send(z->handler, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(z->handler, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
	zmq_send(z->handler, status, 3, ZMQ_SNDMORE);
	zmq_send(z->handler, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(z->handler, z85, strlen(z85), ZMQ_SNDMORE);
	zmq_send(z->handler, "", 0, 0);
out:
	for (i = 0; i < n; i++) {
		zmq_msg_close(&f[i]);
	}
	return n > 0;
}

/*
 * Why a handshake failed, in words: the monitor's event and value
 * (ZMQ_PROTOCOL_ERROR_* for a protocol failure, errno without detail).
 */
static enum zap_why zap_handshake_why(const struct zap *z, uint16_t event, uint32_t value,
				      char *buf, size_t len)
{
	const char *what;

	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
		/* Which side saw the mismatch first is a race: the client may hang up first. */
		snprintf(buf, len, "it hung up during the handshake (%s)%s",
			 value ? strerror((int)value) : "connection closed",
			 z->curve ? ": a ZeroMQ client without CURVE does so when it sees this "
				    "CURVE server" : "");
		return ZAP_WHY_CLOSED;
	}
	switch (value) {
	case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
		snprintf(buf, len, z->curve ? "it does not use CURVE (a ZeroMQ client without this "
				    "server's public key and a key of its own, or not ZeroMQ at all)"
					    : "it asked for a security mechanism (CURVE or PLAIN) this "
					      "socket does not use");
		return ZAP_WHY_NO_CURVE;
	case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
		snprintf(buf, len, "its CURVE handshake cannot be decrypted: it was given the wrong "
			 "server public key (this server's is %s)", z->server_key);
		return ZAP_WHY_SERVER_KEY;
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
			return ZAP_WHY_PROTOCOL;
		}
		what = "an unspecified ZMTP error";
		break;
	}
	snprintf(buf, len, "protocol error: %s (not a ZeroMQ client, or another version or "
		 "mechanism)", what);
	return ZAP_WHY_PROTOCOL;
}

/* Who is behind connection @fd: "IP:port" (id "ip IP"), or a local process by uid. */
static void zap_peer_name(int fd, char *addr, size_t alen, char *id, size_t idlen)
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

static struct zap_peer *zap_peer_find(struct zap *z, int fd)
{
	size_t i;

	for (i = 0; i < ZAP_PEERS; i++) {
		if (z->peers[i].fd == fd) {
			return &z->peers[i];
		}
	}
	return NULL;
}

/* A failed handshake the monitor reported; @peer NULL when nobody is known. */
static void zap_handshake_failed(struct zap *z, const struct zap_peer *peer)
{
	enum zap_why kind;
	char why[256];

	kind = zap_handshake_why(z, z->pending_event, z->pending_value, why, sizeof(why));
	z->pending_event = 0;
	zap_refuse(z, peer ? peer->addr : "(address unknown)", peer ? peer->id : "unknown", kind,
		   why);
}

/* One socket monitor event: what and its value (a file descriptor, an error). */
struct zap_mon_event {
	uint16_t event;
	uint32_t value;
};

/* Read one monitor event without waiting. @return 0, or -EAGAIN when none is left */
static int zap_monitor_recv(struct zap *z, struct zap_mon_event *ev)
{
	zmq_msg_t m;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, z->mon, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		return -EAGAIN;
	}
	ev->event = 0;
	ev->value = 0;
	if (zmq_msg_size(&m) >= 6) {
		memcpy(&ev->event, zmq_msg_data(&m), sizeof(ev->event));
		memcpy(&ev->value, (const char *)zmq_msg_data(&m) + 2, sizeof(ev->value));
	}
	zap_drain(z->mon, zmq_msg_more(&m));	/* the endpoint frame: our own */
	zmq_msg_close(&m);
	return 0;
}

/* A connection was accepted on @fd; @gone: it has already been closed again. */
static void zap_peer_accepted(struct zap *z, int fd, bool gone)
{
	struct zap_peer *peer = zap_peer_find(z, fd);

	if (!peer) {
		peer = zap_peer_find(z, -1);
	}
	if (!peer) {
		peer = &z->peers[z->next_peer];
		z->next_peer = (z->next_peer + 1) % ZAP_PEERS;
	}
	peer->fd = fd;
	if (gone) {
		/* the descriptor may belong to the next connection already */
		snprintf(peer->addr, sizeof(peer->addr), "(address unknown: the connection ended "
			 "before it could be read)");
		snprintf(peer->id, sizeof(peer->id), "unknown");
		return;
	}
	zap_peer_name(fd, peer->addr, sizeof(peer->addr), peer->id, sizeof(peer->id));
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
 * @return events read
 */
static size_t zap_monitor(struct zap *z)
{
	struct zap_mon_event ev[ZAP_BATCH];
	struct zap_peer *peer;
	size_t n = 0, i, j;
	bool gone;
	int fd;

	while (n < ZAP_BATCH && zap_monitor_recv(z, &ev[n]) == 0) {
		n++;
	}
	for (i = 0; i < n; i++) {
		fd = (int)ev[i].value;
		switch (ev[i].event) {
		case ZMQ_EVENT_ACCEPTED:
			if (z->pending_event) {
				zap_handshake_failed(z, NULL);
			}
			gone = false;
			for (j = i + 1; j < n && !gone; j++) {
				gone = ev[j].event == ZMQ_EVENT_DISCONNECTED && ev[j].value == ev[i].value;
			}
			zap_peer_accepted(z, fd, gone);
			break;
		case ZMQ_EVENT_DISCONNECTED:
			peer = zap_peer_find(z, fd);
			if (z->pending_event) {
				zap_handshake_failed(z, peer);
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
			if (z->pending_event) {
				zap_handshake_failed(z, NULL);
			}
			z->pending_event = ev[i].event;
			z->pending_value = ev[i].value;
			break;
		default:
			break;
		}
	}
	return n;
}

void zap_serve(struct zap *z)
{
	size_t i;

	if (!z) {
		return;
	}
	/* Key checks first: a handshake waits for each. */
	for (i = 0; z->handler && i < ZAP_BATCH && zap_handle(z); i++) {
		;
	}
	if (z->mon) {
		zap_monitor(z);
	}
}
