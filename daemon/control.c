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
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <zmq.h>

#include "config.h"
#include "control.h"
#include "control_private.h"
#include "event.h"
#include "log.h"
#include "ring.h"
#include "sclock.h"
#include "zap.h"

#define CONTROL_RING 256		/* events: sessions, protocol changes */
#define CONTROL_HWM 64			/* messages queued per client */
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

/* The key files of both guarded sockets: this one and the event stream (zap.c). */
int control_check_keys(const struct rpmsd_config *cfg, char *err, size_t errlen)
{
	int rc;

	rc = zap_check_keys(cfg, "control", cfg->control.curve_server_secret_file,
			    cfg->control.curve_allowed_keys, err, errlen);
	if (rc == 0) {
		rc = zap_check_keys(cfg, "publish", cfg->publish.curve_server_secret_file,
				    cfg->publish.curve_allowed_keys, err, errlen);
	}
	return rc;
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
	zap_close(c->guard);
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

static int control_sockets(struct control *c, const struct rpmsd_config *cfg, char *err,
			   size_t errlen)
{
	static const struct zap_opts opts = {
		.section = "control", .who = "client",
		.held = "see status control.handshakes_refused",
	};
	struct zap_opts o = opts;
	int64_t maxmsg = CONTROL_FRAME_MAX;
	int ret;

	c->ctx = zmq_ctx_new();
	if (!c->ctx) {
		ret = errno ? -errno : -ENOMEM;
		control_errf(err, errlen, "control: cannot create a ZeroMQ context: %s",
			     zmq_strerror(-ret));
		return ret;
	}
	/* Before the socket: its ZAP handler must be there before any client. */
	o.secret_file = cfg->control.curve_server_secret_file;
	o.allowed = cfg->control.curve_allowed_keys;
	ret = zap_create(c->ctx, &o, cfg, &c->guard, err, errlen);
	if (ret < 0) {
		return ret;
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
	if (ret) {
		control_errf(err, errlen, "control: cannot set socket options: %s", zmq_strerror(-ret));
		return ret;
	}
	/* CURVE with the guard's keys, and refused handshakes logged. */
	return zap_apply(c->guard, c->sock, err, errlen);
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
	char endpoint[CONFIG_PATH_MAX + 8];
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
	c->stim = deps->stim;
	c->acq = deps->acq;
	c->clock = deps->clock;
	c->pub = deps->pub;
	c->rec = deps->rec;
	c->blind = deps->blind;
	c->course = deps->course;
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
	ret = control_sockets(c, cfg, err, errlen);
	if (ret == 0) {
		ret = control_bind(c, endpoint, !strcmp(cfg->control.endpoint, CONFIG_CONTROL_ENDPOINT),
				   err, errlen);
	}
	if (ret < 0) {
		goto err_free;
	}
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
			 c->endpoint, zap_server_key(c->guard), zap_allowed(c->guard));
	} else {
		log_info("control: %s", c->endpoint);
	}
	*out = c;
	return 0;

err_free:
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
	ret = pthread_create(&c->tid, NULL, control_thread_main, c);
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
	zap_destroy(c->guard);
	free(c->cfg);
	control_threshold_free(c);
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
