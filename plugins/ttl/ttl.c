/* SPDX-License-Identifier: MIT */
/*
 * TTL lines shared by the coil plugins that fire through them (gpio, and
 * the serial stimulator plugins): drives a stimulator's TTL trigger and
 * enable inputs and watches its e-stop, ready and confirm outputs through
 * the Linux GPIO character device (libgpiod 1.6, v1 API). ttl.h has the
 * API; this is what used to be the body of plugins/gpio/gpio.c.
 *
 * Lines, all on one chip, all requested with consumer "rpmsd":
 *  - trigger (output, required): pulsed for width_us on each pulse.
 *  - enable (output, optional): active only while armed. arm raises it;
 *    disarm, every fault, an e-stop, close and every error path of open
 *    drop it.
 *  - estop (input, optional): rising-edge events (logical, after the
 *    active-low inversion) on the asserting edge only, so a short press
 *    cannot be misread as a release by a late level read.
 *  - ready (input, optional): falling-edge events (the stimulator stops
 *    being ready); status.ready reads the level.
 *  - confirm (input, optional): rising-edge events; each pulse waits for
 *    one, up to confirm_timeout_us after the trigger rose.
 *
 * Polarity is handed to the kernel (GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW):
 * every value and edge in this file is logical, 1 = active.
 *
 * Threads. arm, disarm, pulse and status run on the host's RT stim
 * thread; a watcher thread of our own, started in open when there is an
 * estop or ready line, polls their event fds and an eventfd close uses
 * to stop it. Both threads write the enable line, and so does ttl_fault
 * from a plugin's own thread (a serial link's), so it and the armed flag
 * are under a priority-inheriting mutex. The trigger and confirm
 * lines belong to the stim thread alone. Nothing on the RT path allocates
 * or logs; the e-stop latency record is preallocated in open and read
 * only after the watcher is joined.
 *
 * On an e-stop edge the watcher drops the enable line first, latches,
 * calls host->alert, and only then reads the edge's kernel timestamp
 * (CLOCK_MONOTONIC on v1 since Linux 5.7) for the latency record. The
 * latch (status.estop) clears at the next arm, which is refused while the
 * input is still asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rpmsd/coil.h>

#include "ttl.h"

#define TTL_CONSUMER "rpmsd"
/* Below this width a sleep's wake-up latency is a large part of the pulse. */
#define TTL_SLEEP_MIN_NS 100000LL
/* An edge timestamp further than this from now is not on CLOCK_MONOTONIC. */
#define TTL_TS_SANE_NS 10000000000LL
#define TTL_EVENTS_MAX 16	/* the kernel's v1 event FIFO depth */

enum ttl_role {
	TTL_TRIGGER,
	TTL_ENABLE,
	TTL_ESTOP,
	TTL_READY,
	TTL_CONFIRM,
	TTL_N_ROLES,
};

struct ttl_role_def {
	const char *key;
	const char *low_key;
	const char *bias_key;	/* NULL: an output */
	int request_type;
	const char *as;		/* for messages: how it is requested */
};

static const struct ttl_role_def ttl_roles[TTL_N_ROLES] = {
	[TTL_TRIGGER] = { "trigger_line", "trigger_active_low", NULL,
			   GPIOD_LINE_REQUEST_DIRECTION_OUTPUT, "output" },
	[TTL_ENABLE] = { "enable_line", "enable_active_low", NULL,
			  GPIOD_LINE_REQUEST_DIRECTION_OUTPUT, "output" },
	[TTL_ESTOP] = { "estop_line", "estop_active_low", "estop_bias",
			 GPIOD_LINE_REQUEST_EVENT_RISING_EDGE, "input with edge events" },
	[TTL_READY] = { "ready_line", "ready_active_low", "ready_bias",
			 GPIOD_LINE_REQUEST_EVENT_FALLING_EDGE, "input with edge events" },
	[TTL_CONFIRM] = { "confirm_line", "confirm_active_low", "confirm_bias",
			   GPIOD_LINE_REQUEST_EVENT_RISING_EDGE, "input with edge events" },
};

static const struct {
	const char *name;
	int flag;
} ttl_biases[] = {
	{ "as-is", 0 },
	{ "disable", GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE },
	{ "pull-up", GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP },
	{ "pull-down", GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN },
};

struct ttl_estop_sample {
	int64_t edge_ns;	/* kernel timestamp of the asserting edge */
	int64_t drop_ns;	/* after the enable line was set inactive */
	bool armed;		/* the enable line was active when it came */
};

struct ttl {
	const struct rpmsd_coil_host *host;
	void (*alert)(void *ctx, enum rpmsd_coil_alert what, int code);
	const char *chip_spec;
	const char *spec[TTL_N_ROLES];
	bool active_low[TTL_N_ROLES];
	int bias[TTL_N_ROLES];
	struct gpiod_chip *chip;
	char chip_desc[128];
	struct gpiod_line *line[TTL_N_ROLES];
	int event_fd[TTL_N_ROLES];
	int64_t confirm_timeout_ns;
	long long watcher_priority;
	const char *estop_log;

	pthread_mutex_t lock;	/* PI: the enable line and armed */
	atomic_bool armed;	/* written under lock, read by pulse without */
	atomic_bool estop_latched;
	atomic_int fault_code;	/* first fault since the last arm, 0: none */
	atomic_bool watcher_dead;
	int stop_fd;
	pthread_t watcher;
	bool watching;

	/* Written by the watcher only, read in close after the join. */
	struct ttl_estop_sample *estops;
	size_t estops_cap;
	size_t estops_len;
	uint64_t estop_edges;
	uint64_t estop_unlogged;
	uint64_t estop_odd_ts;
	uint64_t ready_faults;
	/* Written by the stim thread only, read in close. */
	uint64_t confirm_timeouts;
	uint64_t confirm_stray;
	/* Written by the stim thread, read by ttl_last_confirm_ns. */
	_Atomic int64_t confirm_ns;

	/* ttl_open's error buffer, valid during open only. */
	char *err;
	size_t err_len;
};

/* The key table is a macro in ttl.h: plugins splice it into their own. */
_Static_assert(sizeof((struct rpmsd_coil_key[]){ TTL_KEYS }) / sizeof(struct rpmsd_coil_key) ==
		       TTL_N_KEYS,
	       "TTL_N_KEYS is the number of entries in TTL_KEYS");

static int64_t ttl_ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int64_t ttl_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ttl_ts_ns(&ts);
}

/* The error ttl_open returns; the first one wins, later ones follow from it. */
__attribute__((format(printf, 2, 3))) static void ttl_err(struct ttl *t, const char *fmt, ...)
{
	va_list ap;

	if (!t->err || t->err[0]) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(t->err, t->err_len, fmt, ap);
	va_end(ap);
}

static int ttl_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* 1 when @role's input is active, 0 when not, or a negative errno. */
static int ttl_get(struct ttl *t, enum ttl_role role)
{
	int v = gpiod_line_get_value(t->line[role]);

	return v < 0 ? ttl_errno() : v;
}

static int ttl_set(struct ttl *t, enum ttl_role role, int value)
{
	if (!t->line[role]) {
		return 0;
	}
	return gpiod_line_set_value(t->line[role], value) < 0 ? ttl_errno() : 0;
}

/* Drop the enable line and disarm. Call with t->lock held. */
static int ttl_drop_locked(struct ttl *t)
{
	atomic_store(&t->armed, false);
	return ttl_set(t, TTL_ENABLE, 0);
}

/* Keep the first fault's code: it is the cause, later ones follow from it. */
static void ttl_latch_fault(struct ttl *t, int code)
{
	int none = 0;

	atomic_compare_exchange_strong(&t->fault_code, &none, code);
}

/* A fault: enable line down, latched. RT-safe. @return armed before. */
static bool ttl_drop_fault(struct ttl *t, int code)
{
	bool was_armed;
	int ret;

	pthread_mutex_lock(&t->lock);
	was_armed = atomic_load(&t->armed);
	ret = ttl_drop_locked(t);
	pthread_mutex_unlock(&t->lock);
	ttl_latch_fault(t, code);
	if (ret < 0) {
		ttl_latch_fault(t, ret);
	}
	return was_armed;
}

static void ttl_alert(struct ttl *t, enum rpmsd_coil_alert what, int code)
{
	if (t->alert) {
		t->alert(t->host->ctx, what, code);
	}
}

/* Non-blocking read of up to TTL_EVENTS_MAX events: count, 0 or -errno. */
static int ttl_read_events(int fd, struct gpiod_line_event *ev)
{
	int n = gpiod_line_event_read_fd_multiple(fd, ev, TTL_EVENTS_MAX);

	if (n < 0) {
		return errno == EAGAIN ? 0 : ttl_errno();
	}
	return n;
}

static int ttl_on_estop(struct ttl *t)
{
	struct gpiod_line_event ev[TTL_EVENTS_MAX];
	int64_t drop_ns, lat;
	bool was_armed;
	int ret, n;

	/* Drop first: reading the event can wait until the line is safe. */
	pthread_mutex_lock(&t->lock);
	was_armed = atomic_load(&t->armed);
	ret = ttl_drop_locked(t);
	drop_ns = ttl_mono_ns();
	pthread_mutex_unlock(&t->lock);
	atomic_store(&t->estop_latched, true);
	if (ret < 0) {
		ttl_latch_fault(t, ret);
	}
	ttl_alert(t, RPMSD_COIL_ALERT_ESTOP, 0);

	/* An unread error would keep POLLIN set: a SCHED_FIFO busy loop. */
	n = ttl_read_events(t->event_fd[TTL_ESTOP], ev);
	if (n <= 0) {
		return n;
	}
	t->estop_edges += (uint64_t)n;
	/* One sample per wake-up: the first edge is what the drop answered. */
	lat = drop_ns - ttl_ts_ns(&ev[0].ts);
	if (lat < 0 || lat > TTL_TS_SANE_NS) {
		t->estop_odd_ts++;
	} else if (t->estops_len < t->estops_cap) {
		t->estops[t->estops_len++] = (struct ttl_estop_sample){
			.edge_ns = ttl_ts_ns(&ev[0].ts),
			.drop_ns = drop_ns,
			.armed = was_armed,
		};
	} else {
		t->estop_unlogged++;
	}
	return 0;
}

static int ttl_on_ready_drop(struct ttl *t)
{
	struct gpiod_line_event ev[TTL_EVENTS_MAX];
	bool was_armed;
	int ret, n;

	n = ttl_read_events(t->event_fd[TTL_READY], ev);
	if (n < 0) {
		return n;
	}
	pthread_mutex_lock(&t->lock);
	was_armed = atomic_load(&t->armed);
	ret = was_armed ? ttl_drop_locked(t) : 0;
	pthread_mutex_unlock(&t->lock);
	if (!was_armed) {
		/* Not a fault: status.ready tells the gate, which refuses pulses. */
		return 0;
	}
	t->ready_faults++;
	ttl_latch_fault(t, -ENODEV);
	if (ret < 0) {
		ttl_latch_fault(t, ret);
	}
	ttl_alert(t, RPMSD_COIL_ALERT_FAULT, -ENODEV);
	return 0;
}

/* The watcher cannot watch any more: the coil must not stay armable. */
static void ttl_watch_failed(struct ttl *t, int code, const char *what)
{
	atomic_store(&t->watcher_dead, true);
	ttl_drop_fault(t, code);
	ttl_alert(t, RPMSD_COIL_ALERT_FAULT, code);
	/* Not the RT path, and the coil is already safe: worth a line. */
	t->host->log(t->host->ctx, RPMSD_COIL_LOG_ERR,
		     "input watcher stopped (%s: %s): the coil stays disarmed", what,
		     strerror(-code));
}

static void *ttl_watch(void *arg)
{
	struct ttl *t = arg;
	struct pollfd pfd[3] = { { .fd = t->stop_fd, .events = POLLIN } };
	int estop = -1, ready = -1, ret;
	nfds_t n = 1;

	if (t->line[TTL_ESTOP]) {
		estop = (int)n;
		pfd[n++] = (struct pollfd){ .fd = t->event_fd[TTL_ESTOP], .events = POLLIN };
	}
	if (t->line[TTL_READY]) {
		ready = (int)n;
		pfd[n++] = (struct pollfd){ .fd = t->event_fd[TTL_READY], .events = POLLIN };
	}
	for (;;) {
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			ttl_watch_failed(t, ttl_errno(), "poll");
			return NULL;
		}
		if (pfd[0].revents) {
			return NULL;
		}
		if (estop >= 0 && (pfd[estop].revents & POLLIN)) {
			ret = ttl_on_estop(t);
			if (ret < 0) {
				ttl_watch_failed(t, ret, "estop_line");
				return NULL;
			}
		}
		if (ready >= 0 && (pfd[ready].revents & POLLIN)) {
			ret = ttl_on_ready_drop(t);
			if (ret < 0) {
				ttl_watch_failed(t, ret, "ready_line");
				return NULL;
			}
		}
		if ((estop >= 0 && (pfd[estop].revents & (POLLERR | POLLHUP | POLLNVAL))) ||
		    (ready >= 0 && (pfd[ready].revents & (POLLERR | POLLHUP | POLLNVAL)))) {
			ttl_watch_failed(t, -EIO, "event fd error");
			return NULL;
		}
	}
}

static int ttl_watch_start(struct ttl *t)
{
	struct sched_param sp = { .sched_priority = (int)t->watcher_priority };
	pthread_attr_t attr;
	sigset_t all, old;
	int ret = EPERM;

	/* The daemon takes its signals through signalfd: none may land here. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (t->watcher_priority > 0) {
		pthread_attr_init(&attr);
		pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
		pthread_attr_setschedparam(&attr, &sp);
		ret = pthread_create(&t->watcher, &attr, ttl_watch, t);
		pthread_attr_destroy(&attr);
	}
	if (ret == EPERM) {
		if (t->watcher_priority > 0) {
			t->host->log(t->host->ctx, RPMSD_COIL_LOG_WARN,
				     "key watcher_priority: SCHED_FIFO %lld refused (EPERM); the e-stop watcher runs with normal scheduling",
				     t->watcher_priority);
		}
		ret = pthread_create(&t->watcher, NULL, ttl_watch, t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		ttl_err(t, "cannot start the input watcher: %s",
			strerror(ret));
		return -ret;
	}
	pthread_setname_np(t->watcher, "rpmsd-gpio");
	t->watching = true;
	return 0;
}

static void ttl_watch_stop(struct ttl *t)
{
	uint64_t one = 1;

	if (!t->watching) {
		return;
	}
	while (write(t->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
	}
	pthread_join(t->watcher, NULL);
	t->watching = false;
}

static int ttl_bias(struct ttl *t, enum ttl_role role, const char *value)
{
	size_t i;

	for (i = 0; i < sizeof(ttl_biases) / sizeof(ttl_biases[0]); i++) {
		if (strcmp(value, ttl_biases[i].name) == 0) {
			t->bias[role] = ttl_biases[i].flag;
			return 0;
		}
	}
	ttl_err(t, "key %s: '%s' is not a bias (allowed: as-is, disable, pull-up, pull-down)",
		ttl_roles[role].bias_key, value);
	return -EINVAL;
}

/* A getter's error names the key: a plugin that did not splice TTL_KEYS. */
static int ttl_key_failed(struct ttl *t, const char *key, int ret)
{
	if (ret < 0) {
		ttl_err(t, "key %s: cannot read it: %s (does the plugin declare TTL_KEYS?)", key,
			strerror(-ret));
	}
	return ret;
}

static int ttl_get_string(struct ttl *t, const char *key, const char **out)
{
	return ttl_key_failed(t, key, t->host->get_string(t->host->ctx, key, out));
}

static int ttl_get_int(struct ttl *t, const char *key, long long *out)
{
	return ttl_key_failed(t, key, t->host->get_int(t->host->ctx, key, out));
}

static int ttl_get_bool(struct ttl *t, const char *key, bool *out)
{
	return ttl_key_failed(t, key, t->host->get_bool(t->host->ctx, key, out));
}

static int ttl_read_keys(struct ttl *t)
{
	const char *bias;
	long long timeout_us;
	int role, ret;

	ret = ttl_get_string(t, "chip", &t->chip_spec);
	if (ret < 0) {
		return ret;
	}
	for (role = 0; role < TTL_N_ROLES; role++) {
		const struct ttl_role_def *d = &ttl_roles[role];

		ret = ttl_get_string(t, d->key, &t->spec[role]);
		if (ret == 0) {
			ret = ttl_get_bool(t, d->low_key, &t->active_low[role]);
		}
		if (ret == 0 && d->bias_key) {
			ret = ttl_get_string(t, d->bias_key, &bias);
			if (ret == 0) {
				ret = ttl_bias(t, role, bias);
			}
		}
		if (ret < 0) {
			return ret;
		}
	}
	ret = ttl_get_int(t, "confirm_timeout_us", &timeout_us);
	if (ret == 0) {
		ret = ttl_get_int(t, "watcher_priority", &t->watcher_priority);
	}
	if (ret == 0) {
		ret = ttl_get_string(t, "estop_log", &t->estop_log);
	}
	if (ret == 0) {
		long long cap;

		ret = ttl_get_int(t, "estop_log_max", &cap);
		t->estops_cap = (size_t)cap;
	}
	if (ret < 0) {
		return ret;
	}
	t->confirm_timeout_ns = timeout_us * 1000;
	if (!t->spec[TTL_TRIGGER][0]) {
		ttl_err(t,
			"key trigger_line: not set (the offset or name of the line that fires the stimulator)");
		return -EINVAL;
	}
	return 0;
}

/* "gpiochip0 [label], gpiochip1 [label]" or a note that there are none. */
static void ttl_list_chips(char *out, size_t len)
{
	struct gpiod_chip_iter *it = gpiod_chip_iter_new();
	struct gpiod_chip *c;
	size_t used = 0;

	out[0] = '\0';
	if (!it) {
		snprintf(out, len, "cannot list GPIO chips: %s", strerror(errno));
		return;
	}
	gpiod_foreach_chip(it, c) {
		int n = snprintf(out + used, len - used, "%s%s [%s]", used ? ", " : "available: ",
				 gpiod_chip_name(c), gpiod_chip_label(c));

		if (n < 0 || (size_t)n >= len - used) {
			break;
		}
		used += (size_t)n;
	}
	gpiod_chip_iter_free(it);
	if (!used) {
		snprintf(out, len, "no GPIO chips on this system");
	}
}

static int ttl_open_chip(struct ttl *t)
{
	const char *desc = t->chip_spec;

	if (!desc[0]) {
		ttl_err(t, "key chip: not set (a chip name, path, label or number)");
		return -EINVAL;
	}
	errno = 0;
	t->chip = gpiod_chip_open_lookup(desc);
	if (!t->chip) {
		int ret = ttl_errno();
		char avail[512];

		ttl_list_chips(avail, sizeof(avail));
		ttl_err(t, "key chip: cannot open GPIO chip '%s': %s (%s)", desc,
			strerror(-ret), avail);
		return ret;
	}
	snprintf(t->chip_desc, sizeof(t->chip_desc), "%s (label %s)", gpiod_chip_name(t->chip),
		 gpiod_chip_label(t->chip));
	return 0;
}

static bool ttl_is_offset(const char *s)
{
	if (!*s) {
		return false;
	}
	for (; *s; s++) {
		if (*s < '0' || *s > '9') {
			return false;
		}
	}
	return true;
}

/* Find @role's line by offset or name; NULL line when the key is empty. */
static int ttl_find_line(struct ttl *t, enum ttl_role role)
{
	const char *spec = t->spec[role], *key = ttl_roles[role].key;
	int r;

	if (!spec[0]) {
		return 0;
	}
	if (ttl_is_offset(spec)) {
		unsigned long off;

		errno = 0;
		off = strtoul(spec, NULL, 10);
		if (errno || off >= gpiod_chip_num_lines(t->chip)) {
			ttl_err(t, "key %s: offset %s is out of range: chip %s has lines 0 to %u",
				key, spec, t->chip_desc, gpiod_chip_num_lines(t->chip) - 1);
			return -EINVAL;
		}
		t->line[role] = gpiod_chip_get_line(t->chip, (unsigned int)off);
	} else {
		errno = 0;
		t->line[role] = gpiod_chip_find_line(t->chip, spec);
		if (!t->line[role] && (errno == 0 || errno == ENOENT)) {
			ttl_err(t, "key %s: no line named '%s' on chip %s", key, spec,
				t->chip_desc);
			return -ENOENT;
		}
	}
	if (!t->line[role]) {
		r = ttl_errno();
		ttl_err(t, "key %s: line '%s' on chip %s: %s",
			key, spec, t->chip_desc, strerror(-r));
		return r;
	}
	for (r = 0; r < (int)role; r++) {
		if (t->line[r] == t->line[role]) {
			ttl_err(t, "key %s: line %u ('%s') is already %s", key,
				gpiod_line_offset(t->line[role]), spec, ttl_roles[r].key);
			t->line[role] = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

static int ttl_request_line(struct ttl *t, enum ttl_role role)
{
	const struct ttl_role_def *d = &ttl_roles[role];
	struct gpiod_line_request_config rc = {
		.consumer = TTL_CONSUMER,
		.request_type = d->request_type,
		.flags = t->bias[role] |
			 (t->active_low[role] ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0),
	};
	struct gpiod_line *l = t->line[role];
	int ret, fd;

	/* Outputs start inactive: requesting must never fire nor enable. */
	if (gpiod_line_request(l, &rc, 0) < 0) {
		const char *name, *user;

		ret = ttl_errno();
		gpiod_line_update(l);
		name = gpiod_line_name(l);
		user = gpiod_line_consumer(l);
		ttl_err(t, "key %s: cannot request line %u%s%s%s on chip %s as %s: %s%s%s%s",
			d->key, gpiod_line_offset(l), name ? " ('" : "", name ? name : "",
			name ? "')" : "", t->chip_desc, d->as, strerror(-ret),
			user ? " (in use by '" : "", user ? user : "", user ? "')" : "");
		t->line[role] = NULL;
		return ret;
	}
	if (!d->bias_key) {
		return 0;
	}
	/* The watcher and pulse drain events without ever blocking in read. */
	fd = gpiod_line_event_get_fd(l);
	if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		ret = ttl_errno();
		ttl_err(t, "key %s: event fd of line %u: %s",
			d->key, gpiod_line_offset(l), strerror(-ret));
		return ret;
	}
	t->event_fd[role] = fd;
	return 0;
}

/* Set every requested output inactive and release every line. */
static void ttl_release_lines(struct ttl *t)
{
	int role;

	ttl_set(t, TTL_ENABLE, 0);
	ttl_set(t, TTL_TRIGGER, 0);
	for (role = TTL_N_ROLES - 1; role >= 0; role--) {
		if (t->line[role]) {
			gpiod_line_release(t->line[role]);
			t->line[role] = NULL;
		}
	}
}

static int ttl_request_lines(struct ttl *t)
{
	int role, ret;

	for (role = 0; role < TTL_N_ROLES; role++) {
		ret = ttl_find_line(t, role);
		if (ret < 0) {
			goto err_release;
		}
	}
	for (role = 0; role < TTL_N_ROLES; role++) {
		if (!t->line[role]) {
			continue;
		}
		ret = ttl_request_line(t, role);
		if (ret < 0) {
			goto err_release;
		}
	}
	return 0;

err_release:
	/* Found but not requested lines are released as a no-op by libgpiod. */
	ttl_release_lines(t);
	return ret;
}

static void ttl_describe(struct ttl *t)
{
	char buf[512];
	size_t used = 0;
	int role, n;

	for (role = 0; role < TTL_N_ROLES; role++) {
		const char *name;

		if (!t->line[role]) {
			continue;
		}
		name = gpiod_line_name(t->line[role]);
		n = snprintf(buf + used, sizeof(buf) - used, "%s%.*s %u%s%s%s active-%s",
			     used ? ", " : "", (int)(strlen(ttl_roles[role].key) - 5),
			     ttl_roles[role].key, gpiod_line_offset(t->line[role]),
			     name ? " '" : "", name ? name : "", name ? "'" : "",
			     t->active_low[role] ? "low" : "high");
		if (n < 0 || (size_t)n >= sizeof(buf) - used) {
			break;
		}
		used += (size_t)n;
	}
	t->host->log(t->host->ctx, RPMSD_COIL_LOG_INFO, "%s: %s", t->chip_desc, buf);
}

/* Configurations that work but are not fail-safe deserve a warning. */
static void ttl_warn(struct ttl *t)
{
	const struct rpmsd_coil_host *h = t->host;
	int b = t->bias[TTL_ESTOP];

	if (!t->line[TTL_ENABLE]) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "no enable_line: disarm and e-stop cannot gate the stimulator in hardware");
	}
	if (!t->line[TTL_ESTOP]) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "no estop_line: the emergency stop must cut the stimulator by itself");
	} else if ((t->active_low[TTL_ESTOP] && b == GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP) ||
		   (!t->active_low[TTL_ESTOP] && b == GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "key estop_bias: pulls towards 'released': a broken e-stop wire goes unnoticed");
	}
	if ((t->line[TTL_ESTOP] || t->line[TTL_READY]) && !t->alert) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "the host has no alert callback: an e-stop drops the enable line, and the host learns of it at the next status or pulse");
	}
	if (t->line[TTL_ESTOP] && ttl_get(t, TTL_ESTOP) == 1) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "e-stop is asserted: arming is refused until it is released");
	}
}

int ttl_open(const struct rpmsd_coil_host *host, struct ttl **out, char *err, size_t err_len)
{
	pthread_mutexattr_t ma;
	struct ttl *t;
	int role, ret;

	if (err_len) {
		err[0] = '\0';
	}
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, err_len, "TTL lines: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	t->host = host;
	t->err = err_len ? err : NULL;
	t->err_len = err_len;
	t->stop_fd = -1;
	for (role = 0; role < TTL_N_ROLES; role++) {
		t->event_fd[role] = -1;
	}
	if (host->struct_size >= offsetof(struct rpmsd_coil_host, alert) + sizeof(host->alert)) {
		t->alert = host->alert;
	}
	atomic_init(&t->armed, false);
	atomic_init(&t->estop_latched, false);
	atomic_init(&t->fault_code, 0);
	atomic_init(&t->watcher_dead, false);
	atomic_init(&t->confirm_ns, -1);
	ret = ttl_read_keys(t);
	if (ret < 0) {
		goto err_free;
	}
	t->estops = calloc(t->estops_cap, sizeof(*t->estops));
	if (!t->estops) {
		ret = -ENOMEM;
		ttl_err(t, "key estop_log_max: %zu samples: %s", t->estops_cap, strerror(ENOMEM));
		goto err_free;
	}
	/* Prefault: the watcher must not take page faults on an e-stop. */
	memset(t->estops, 0, t->estops_cap * sizeof(*t->estops));

	pthread_mutexattr_init(&ma);
	ret = -pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	if (ret == 0) {
		ret = -pthread_mutex_init(&t->lock, &ma);
	}
	pthread_mutexattr_destroy(&ma);
	if (ret < 0) {
		ttl_err(t, "priority-inheriting mutex: %s", strerror(-ret));
		goto err_free_log;
	}
	t->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (t->stop_fd < 0) {
		ret = ttl_errno();
		ttl_err(t, "eventfd for the input watcher: %s", strerror(-ret));
		goto err_mutex;
	}
	ret = ttl_open_chip(t);
	if (ret < 0) {
		goto err_stop_fd;
	}
	ret = ttl_request_lines(t);
	if (ret < 0) {
		goto err_chip;
	}
	if (t->line[TTL_ESTOP] || t->line[TTL_READY]) {
		ret = ttl_watch_start(t);
		if (ret < 0) {
			goto err_lines;
		}
	}
	ttl_describe(t);
	ttl_warn(t);
	t->err = NULL;
	t->err_len = 0;
	*out = t;
	return 0;

err_lines:
	ttl_release_lines(t);
err_chip:
	gpiod_chip_close(t->chip);
err_stop_fd:
	close(t->stop_fd);
err_mutex:
	pthread_mutex_destroy(&t->lock);
err_free_log:
	free(t->estops);
err_free:
	/* Always filled: no path above may leave the caller without a reason. */
	ttl_err(t, "TTL lines: %s", strerror(-ret));
	free(t);
	return ret;
}

int ttl_arm(struct ttl *t)
{
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	if (atomic_load(&t->watcher_dead)) {
		ret = -EIO;
		goto out;
	}
	if (t->line[TTL_ESTOP]) {
		ret = ttl_get(t, TTL_ESTOP);
		if (ret == 1) {
			atomic_store(&t->estop_latched, true);
			ret = -EPERM;
		}
		if (ret < 0) {
			goto out;
		}
	}
	/* Arming acknowledges what was latched; the causes are checked again. */
	atomic_store(&t->estop_latched, false);
	atomic_store(&t->fault_code, 0);
	ret = ttl_set(t, TTL_ENABLE, 1);
	if (ret < 0) {
		ttl_drop_locked(t);
		ttl_latch_fault(t, ret);
		goto out;
	}
	atomic_store(&t->armed, true);
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int ttl_disarm(struct ttl *t)
{
	int ret;

	pthread_mutex_lock(&t->lock);
	ret = ttl_drop_locked(t);
	pthread_mutex_unlock(&t->lock);
	if (ret < 0) {
		ttl_latch_fault(t, ret);
	}
	return ret;
}

/*
 * The host's supervisor, on its own thread, because the stim thread is
 * hung, maybe inside arm or pulse holding t->lock: no lock here. Both lines
 * go inactive straight through the kernel (one ioctl each, serialised
 * there); the worst a racing op can do is set a line again, and a hung one
 * does not.
 */
int ttl_force_disarm(struct ttl *t)
{
	int ret, ret2;

	atomic_store(&t->armed, false);
	ret = ttl_set(t, TTL_ENABLE, 0);
	ret2 = ttl_set(t, TTL_TRIGGER, 0);
	return ret < 0 ? ret : ret2;
}

bool ttl_fault(struct ttl *t, int code)
{
	bool was_armed = ttl_drop_fault(t, code);

	ttl_alert(t, RPMSD_COIL_ALERT_FAULT, code);
	return was_armed;
}

int64_t ttl_last_confirm_ns(const struct ttl *t)
{
	return atomic_load_explicit(&t->confirm_ns, memory_order_relaxed);
}

static void ttl_wait_until(int64_t deadline_ns, bool sleep)
{
	struct timespec ts = {
		.tv_sec = deadline_ns / 1000000000LL,
		.tv_nsec = deadline_ns % 1000000000LL,
	};

	if (sleep) {
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
		}
		return;
	}
	while (ttl_mono_ns() < deadline_ns) {
	}
}

/* Drop confirm edges that no pulse of ours caused: they confirm nothing. */
static int ttl_confirm_drain(struct ttl *t)
{
	struct gpiod_line_event ev[TTL_EVENTS_MAX];
	int n;

	while ((n = ttl_read_events(t->event_fd[TTL_CONFIRM], ev)) > 0) {
		t->confirm_stray += (uint64_t)n;
	}
	return n;
}

/*
 * Wait until @deadline_ns for a confirm edge stamped at or after @since_ns;
 * its kernel timestamp goes to @edge_ns.
 */
static int ttl_confirm_wait(struct ttl *t, int64_t since_ns, int64_t deadline_ns,
			    int64_t *edge_ns)
{
	struct pollfd pfd = { .fd = t->event_fd[TTL_CONFIRM], .events = POLLIN };
	struct gpiod_line_event ev[TTL_EVENTS_MAX];
	struct timespec ts;

	for (;;) {
		int64_t left = deadline_ns - ttl_mono_ns();
		int n;

		if (left < 0) {
			left = 0;
		}
		ts.tv_sec = left / 1000000000LL;
		ts.tv_nsec = left % 1000000000LL;
		n = ppoll(&pfd, 1, &ts, NULL);
		if (n < 0 && errno != EINTR) {
			return ttl_errno();
		}
		if (n > 0) {
			int i;

			n = ttl_read_events(pfd.fd, ev);
			if (n < 0) {
				return n;
			}
			for (i = 0; i < n; i++) {
				if (ttl_ts_ns(&ev[i].ts) >= since_ns) {
					*edge_ns = ttl_ts_ns(&ev[i].ts);
					return 0;
				}
				t->confirm_stray++;
			}
		}
		if (left == 0) {
			return -ETIMEDOUT;
		}
	}
}

int ttl_pulse(struct ttl *t, uint32_t width_us)
{
	int64_t t_start, t_rise, edge_ns;
	int ret;

	atomic_store_explicit(&t->confirm_ns, -1, memory_order_relaxed);
	if (!atomic_load(&t->armed)) {
		return -EPERM;
	}
	if (t->line[TTL_CONFIRM]) {
		ret = ttl_confirm_drain(t);
		if (ret < 0) {
			goto err_fault;
		}
	}
	t_start = ttl_mono_ns();
	ret = ttl_set(t, TTL_TRIGGER, 1);
	if (ret < 0) {
		ttl_set(t, TTL_TRIGGER, 0);
		goto err_fault;
	}
	t_rise = ttl_mono_ns();
	ttl_wait_until(t_rise + (int64_t)width_us * 1000, width_us * 1000LL >= TTL_SLEEP_MIN_NS);
	ret = ttl_set(t, TTL_TRIGGER, 0);
	if (ret < 0) {
		goto err_fault;
	}
	if (t->line[TTL_CONFIRM]) {
		ret = ttl_confirm_wait(t, t_start, t_rise + t->confirm_timeout_ns, &edge_ns);
		if (ret == -ETIMEDOUT) {
			t->confirm_timeouts++;
		}
		if (ret < 0) {
			goto err_fault;
		}
		/* From the trigger write's start: the edge cannot precede it. */
		atomic_store_explicit(&t->confirm_ns, edge_ns - t_start, memory_order_relaxed);
	}
	return 0;

err_fault:
	ttl_drop_fault(t, ret);
	return ret;
}

int ttl_status(struct ttl *t, struct rpmsd_coil_status *st)
{
	int ready = 1, estop = 0;

	if (t->line[TTL_READY]) {
		ready = ttl_get(t, TTL_READY);
		if (ready < 0) {
			return ready;
		}
	}
	if (t->line[TTL_ESTOP]) {
		estop = ttl_get(t, TTL_ESTOP);
		if (estop < 0) {
			return estop;
		}
	}
	st->temperature_c = NAN;
	st->ready = ready == 1;
	st->fault_code = atomic_load(&t->fault_code);
	st->fault = st->fault_code != 0;
	/*
	 * The input as it is now (the ABI's meaning): the host refuses to arm
	 * while it is pressed. The latch is this plugin's own business: arm
	 * clears it once the input is released.
	 */
	st->estop = estop == 1;
	return 0;
}

static int ttl_cmp_latency(const void *a, const void *b)
{
	const struct ttl_estop_sample *x = a, *y = b;
	int64_t lx = x->drop_ns - x->edge_ns, ly = y->drop_ns - y->edge_ns;

	return (lx > ly) - (lx < ly);
}

/*
 * fopen(@path, "w") for a regular file only: a FIFO there would block the
 * close (the daemon's shutdown) until someone reads it.
 */
static FILE *ttl_create(const char *path)
{
	struct stat st;
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) < 0) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
	}
	return f;
}

static void ttl_write_estop_log(struct ttl *t)
{
	FILE *f;
	size_t i;

	f = ttl_create(t->estop_log);
	if (!f) {
		t->host->log(t->host->ctx, RPMSD_COIL_LOG_ERR, "cannot write estop_log %s: %s",
			     t->estop_log, strerror(errno));
		return;
	}
	fprintf(f, "edge_mono_ns,drop_mono_ns,latency_us,armed\n");
	for (i = 0; i < t->estops_len; i++) {
		const struct ttl_estop_sample *s = &t->estops[i];

		fprintf(f, "%lld,%lld,%.3f,%d\n", (long long)s->edge_ns, (long long)s->drop_ns,
			(double)(s->drop_ns - s->edge_ns) / 1e3, s->armed);
	}
	if (fclose(f) != 0) {
		t->host->log(t->host->ctx, RPMSD_COIL_LOG_ERR, "error writing estop_log %s: %s",
			     t->estop_log, strerror(errno));
	}
}

static void ttl_report(struct ttl *t)
{
	const struct rpmsd_coil_host *h = t->host;

	if (t->line[TTL_ESTOP]) {
		if (t->estop_log[0]) {
			ttl_write_estop_log(t);
		}
		if (t->estops_len) {
			const struct ttl_estop_sample *p50, *max;

			/* Chronological order is written; now sort for the figures. */
			qsort(t->estops, t->estops_len, sizeof(*t->estops), ttl_cmp_latency);
			p50 = &t->estops[(t->estops_len - 1) / 2];
			max = &t->estops[t->estops_len - 1];
			h->log(h->ctx, RPMSD_COIL_LOG_INFO,
			       "e-stop: %llu edges, %zu measured, edge to enable drop p50 %.1f us, max %.1f us",
			       (unsigned long long)t->estop_edges, t->estops_len,
			       (double)(p50->drop_ns - p50->edge_ns) / 1e3,
			       (double)(max->drop_ns - max->edge_ns) / 1e3);
		} else {
			h->log(h->ctx, RPMSD_COIL_LOG_INFO, "e-stop: %llu edges, none measured",
			       (unsigned long long)t->estop_edges);
		}
		if (t->estop_unlogged) {
			h->log(h->ctx, RPMSD_COIL_LOG_WARN,
			       "e-stop: %llu latencies beyond estop_log_max were not kept",
			       (unsigned long long)t->estop_unlogged);
		}
		if (t->estop_odd_ts) {
			h->log(h->ctx, RPMSD_COIL_LOG_WARN,
			       "e-stop: %llu edge timestamps not on CLOCK_MONOTONIC (kernel before 5.7?) were not measured",
			       (unsigned long long)t->estop_odd_ts);
		}
	}
	if (t->ready_faults) {
		h->log(h->ctx, RPMSD_COIL_LOG_INFO, "ready dropped while armed %llu times",
		       (unsigned long long)t->ready_faults);
	}
	if (t->confirm_timeouts || t->confirm_stray) {
		h->log(h->ctx, RPMSD_COIL_LOG_INFO,
		       "confirm: %llu pulses unconfirmed, %llu edges without a pulse",
		       (unsigned long long)t->confirm_timeouts,
		       (unsigned long long)t->confirm_stray);
	}
}

void ttl_close(struct ttl *t)
{
	if (!t) {
		return;
	}
	/* Drop enable before the join too: a stuck watcher must not delay it. */
	pthread_mutex_lock(&t->lock);
	ttl_drop_locked(t);
	pthread_mutex_unlock(&t->lock);
	ttl_watch_stop(t);
	ttl_report(t);
	ttl_release_lines(t);
	gpiod_chip_close(t->chip);
	close(t->stop_fd);
	pthread_mutex_destroy(&t->lock);
	free(t->estops);
	free(t);
}
