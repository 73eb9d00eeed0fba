/* SPDX-License-Identifier: MIT */
/*
 * GPIO coil plugin: drives a stimulator's TTL trigger and enable inputs
 * through the Linux GPIO character device (libgpiod 1.6, v1 API).
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
 * to stop it. Both threads write the enable line, so it and the armed
 * flag are under a priority-inheriting mutex. The trigger and confirm
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rpmsd/coil.h>

#define GPIO_CONSUMER "rpmsd"
/* Below this width a sleep's wake-up latency is a large part of the pulse. */
#define GPIO_SLEEP_MIN_NS 100000LL
/* An edge timestamp further than this from now is not on CLOCK_MONOTONIC. */
#define GPIO_TS_SANE_NS 10000000000LL
#define GPIO_EVENTS_MAX 16	/* the kernel's v1 event FIFO depth */

enum gpio_role {
	GPIO_TRIGGER,
	GPIO_ENABLE,
	GPIO_ESTOP,
	GPIO_READY,
	GPIO_CONFIRM,
	GPIO_N_ROLES,
};

struct gpio_role_def {
	const char *key;
	const char *low_key;
	const char *bias_key;	/* NULL: an output */
	int request_type;
	const char *as;		/* for messages: how it is requested */
};

static const struct gpio_role_def gpio_roles[GPIO_N_ROLES] = {
	[GPIO_TRIGGER] = { "trigger_line", "trigger_active_low", NULL,
			   GPIOD_LINE_REQUEST_DIRECTION_OUTPUT, "output" },
	[GPIO_ENABLE] = { "enable_line", "enable_active_low", NULL,
			  GPIOD_LINE_REQUEST_DIRECTION_OUTPUT, "output" },
	[GPIO_ESTOP] = { "estop_line", "estop_active_low", "estop_bias",
			 GPIOD_LINE_REQUEST_EVENT_RISING_EDGE, "input with edge events" },
	[GPIO_READY] = { "ready_line", "ready_active_low", "ready_bias",
			 GPIOD_LINE_REQUEST_EVENT_FALLING_EDGE, "input with edge events" },
	[GPIO_CONFIRM] = { "confirm_line", "confirm_active_low", "confirm_bias",
			   GPIOD_LINE_REQUEST_EVENT_RISING_EDGE, "input with edge events" },
};

static const struct {
	const char *name;
	int flag;
} gpio_biases[] = {
	{ "as-is", 0 },
	{ "disable", GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE },
	{ "pull-up", GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP },
	{ "pull-down", GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN },
};

struct gpio_estop_sample {
	int64_t edge_ns;	/* kernel timestamp of the asserting edge */
	int64_t drop_ns;	/* after the enable line was set inactive */
	bool armed;		/* the enable line was active when it came */
};

struct gpio {
	const struct rpmsd_coil_host *host;
	void (*alert)(void *ctx, enum rpmsd_coil_alert what, int code);
	const char *chip_spec;
	const char *spec[GPIO_N_ROLES];
	bool active_low[GPIO_N_ROLES];
	int bias[GPIO_N_ROLES];
	struct gpiod_chip *chip;
	char chip_desc[128];
	struct gpiod_line *line[GPIO_N_ROLES];
	int event_fd[GPIO_N_ROLES];
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
	struct gpio_estop_sample *estops;
	size_t estops_cap;
	size_t estops_len;
	uint64_t estop_edges;
	uint64_t estop_unlogged;
	uint64_t estop_odd_ts;
	uint64_t ready_faults;
	/* Written by the stim thread only, read in close. */
	uint64_t confirm_timeouts;
	uint64_t confirm_stray;
};

static const struct rpmsd_coil_key gpio_keys[] = {
	{ .name = "chip", .type = RPMSD_COIL_KEY_STRING, .def = "gpiochip0", .unit = "",
	  .doc = "GPIO chip: name (gpiochip0), path (/dev/gpiochip0), label or number" },
	{ .name = "trigger_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "line that fires the stimulator: offset (\"5\") or line name; required" },
	{ .name = "trigger_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false", .unit = "",
	  .doc = "trigger input fires on a low pulse (default: TTL high pulse)" },
	{ .name = "enable_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "output held active only while armed, offset or name (empty: none)" },
	{ .name = "enable_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false", .unit = "",
	  .doc = "enable is active low (default high: a released or unpowered line reads disabled)" },
	{ .name = "estop_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "emergency stop input, offset or name (empty: none)" },
	{ .name = "estop_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false", .unit = "",
	  .doc = "e-stop asserted when low (default high: a normally-closed contact to ground opens, or its wire breaks)" },
	{ .name = "estop_bias", .type = RPMSD_COIL_KEY_STRING, .def = "pull-up", .unit = "",
	  .doc = "e-stop bias: as-is, disable, pull-up or pull-down (default: a broken wire reads as a stop)" },
	{ .name = "ready_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "stimulator ready input, offset or name (empty: none, always ready)" },
	{ .name = "ready_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false", .unit = "",
	  .doc = "ready is active low" },
	{ .name = "ready_bias", .type = RPMSD_COIL_KEY_STRING, .def = "pull-down", .unit = "",
	  .doc = "ready bias: as-is, disable, pull-up or pull-down (default: a broken wire reads not ready)" },
	{ .name = "confirm_line", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "trigger-out/loopback input confirming each pulse, offset or name (empty: none)" },
	{ .name = "confirm_active_low", .type = RPMSD_COIL_KEY_BOOL, .def = "false", .unit = "",
	  .doc = "confirmation is a falling edge" },
	{ .name = "confirm_bias", .type = RPMSD_COIL_KEY_STRING, .def = "pull-down", .unit = "",
	  .doc = "confirm bias: as-is, disable, pull-up or pull-down (default: a broken wire never confirms)" },
	{ .name = "confirm_timeout_us", .type = RPMSD_COIL_KEY_INT, .def = "2000",
	  .min = 1, .max = 100000, .unit = "µs",
	  .doc = "longest wait from the trigger's rise to the confirm edge; missing it is a fault" },
	{ .name = "watcher_priority", .type = RPMSD_COIL_KEY_INT, .def = "95",
	  .min = 0, .max = 99, .unit = "",
	  .doc = "SCHED_FIFO priority of the e-stop/ready watcher, above the stim thread (0: normal scheduling)" },
	{ .name = "estop_log", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "CSV file written at close with each e-stop edge and its latency (empty: none)" },
	{ .name = "estop_log_max", .type = RPMSD_COIL_KEY_INT, .def = "10000",
	  .min = 1, .max = 1000000, .unit = "events",
	  .doc = "e-stop latencies kept (preallocated)" },
};

static int64_t gpio_ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int64_t gpio_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return gpio_ts_ns(&ts);
}

static int gpio_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* 1 when @role's input is active, 0 when not, or a negative errno. */
static int gpio_get(struct gpio *g, enum gpio_role role)
{
	int v = gpiod_line_get_value(g->line[role]);

	return v < 0 ? gpio_errno() : v;
}

static int gpio_set(struct gpio *g, enum gpio_role role, int value)
{
	if (!g->line[role]) {
		return 0;
	}
	return gpiod_line_set_value(g->line[role], value) < 0 ? gpio_errno() : 0;
}

/* Drop the enable line and disarm. Call with g->lock held. */
static int gpio_drop_locked(struct gpio *g)
{
	atomic_store(&g->armed, false);
	return gpio_set(g, GPIO_ENABLE, 0);
}

/* Keep the first fault's code: it is the cause, later ones follow from it. */
static void gpio_latch_fault(struct gpio *g, int code)
{
	int none = 0;

	atomic_compare_exchange_strong(&g->fault_code, &none, code);
}

/* A fault: enable line down, latched. RT-safe. */
static void gpio_fault(struct gpio *g, int code)
{
	int ret;

	pthread_mutex_lock(&g->lock);
	ret = gpio_drop_locked(g);
	pthread_mutex_unlock(&g->lock);
	gpio_latch_fault(g, code);
	if (ret < 0) {
		gpio_latch_fault(g, ret);
	}
}

static void gpio_alert(struct gpio *g, enum rpmsd_coil_alert what, int code)
{
	if (g->alert) {
		g->alert(g->host->ctx, what, code);
	}
}

/* Non-blocking read of up to GPIO_EVENTS_MAX events: count, 0 or -errno. */
static int gpio_read_events(int fd, struct gpiod_line_event *ev)
{
	int n = gpiod_line_event_read_fd_multiple(fd, ev, GPIO_EVENTS_MAX);

	if (n < 0) {
		return errno == EAGAIN ? 0 : gpio_errno();
	}
	return n;
}

static int gpio_on_estop(struct gpio *g)
{
	struct gpiod_line_event ev[GPIO_EVENTS_MAX];
	int64_t drop_ns, lat;
	bool was_armed;
	int ret, n;

	/* Drop first: reading the event can wait until the line is safe. */
	pthread_mutex_lock(&g->lock);
	was_armed = atomic_load(&g->armed);
	ret = gpio_drop_locked(g);
	drop_ns = gpio_mono_ns();
	pthread_mutex_unlock(&g->lock);
	atomic_store(&g->estop_latched, true);
	if (ret < 0) {
		gpio_latch_fault(g, ret);
	}
	gpio_alert(g, RPMSD_COIL_ALERT_ESTOP, 0);

	/* An unread error would keep POLLIN set: a SCHED_FIFO busy loop. */
	n = gpio_read_events(g->event_fd[GPIO_ESTOP], ev);
	if (n <= 0) {
		return n;
	}
	g->estop_edges += (uint64_t)n;
	/* One sample per wake-up: the first edge is what the drop answered. */
	lat = drop_ns - gpio_ts_ns(&ev[0].ts);
	if (lat < 0 || lat > GPIO_TS_SANE_NS) {
		g->estop_odd_ts++;
	} else if (g->estops_len < g->estops_cap) {
		g->estops[g->estops_len++] = (struct gpio_estop_sample){
			.edge_ns = gpio_ts_ns(&ev[0].ts),
			.drop_ns = drop_ns,
			.armed = was_armed,
		};
	} else {
		g->estop_unlogged++;
	}
	return 0;
}

static int gpio_on_ready_drop(struct gpio *g)
{
	struct gpiod_line_event ev[GPIO_EVENTS_MAX];
	bool was_armed;
	int ret, n;

	n = gpio_read_events(g->event_fd[GPIO_READY], ev);
	if (n < 0) {
		return n;
	}
	pthread_mutex_lock(&g->lock);
	was_armed = atomic_load(&g->armed);
	ret = was_armed ? gpio_drop_locked(g) : 0;
	pthread_mutex_unlock(&g->lock);
	if (!was_armed) {
		/* Not a fault: status.ready tells the gate, which refuses pulses. */
		return 0;
	}
	g->ready_faults++;
	gpio_latch_fault(g, -ENODEV);
	if (ret < 0) {
		gpio_latch_fault(g, ret);
	}
	gpio_alert(g, RPMSD_COIL_ALERT_FAULT, -ENODEV);
	return 0;
}

/* The watcher cannot watch any more: the coil must not stay armable. */
static void gpio_watch_failed(struct gpio *g, int code, const char *what)
{
	atomic_store(&g->watcher_dead, true);
	gpio_fault(g, code);
	gpio_alert(g, RPMSD_COIL_ALERT_FAULT, code);
	/* Not the RT path, and the coil is already safe: worth a line. */
	g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
		     "input watcher stopped (%s: %s): the coil stays disarmed", what,
		     strerror(-code));
}

static void *gpio_watch(void *arg)
{
	struct gpio *g = arg;
	struct pollfd pfd[3] = { { .fd = g->stop_fd, .events = POLLIN } };
	int estop = -1, ready = -1, ret;
	nfds_t n = 1;

	if (g->line[GPIO_ESTOP]) {
		estop = (int)n;
		pfd[n++] = (struct pollfd){ .fd = g->event_fd[GPIO_ESTOP], .events = POLLIN };
	}
	if (g->line[GPIO_READY]) {
		ready = (int)n;
		pfd[n++] = (struct pollfd){ .fd = g->event_fd[GPIO_READY], .events = POLLIN };
	}
	for (;;) {
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			gpio_watch_failed(g, gpio_errno(), "poll");
			return NULL;
		}
		if (pfd[0].revents) {
			return NULL;
		}
		if (estop >= 0 && (pfd[estop].revents & POLLIN)) {
			ret = gpio_on_estop(g);
			if (ret < 0) {
				gpio_watch_failed(g, ret, "estop_line");
				return NULL;
			}
		}
		if (ready >= 0 && (pfd[ready].revents & POLLIN)) {
			ret = gpio_on_ready_drop(g);
			if (ret < 0) {
				gpio_watch_failed(g, ret, "ready_line");
				return NULL;
			}
		}
		if ((estop >= 0 && (pfd[estop].revents & (POLLERR | POLLHUP | POLLNVAL))) ||
		    (ready >= 0 && (pfd[ready].revents & (POLLERR | POLLHUP | POLLNVAL)))) {
			gpio_watch_failed(g, -EIO, "event fd error");
			return NULL;
		}
	}
}

static int gpio_watch_start(struct gpio *g)
{
	struct sched_param sp = { .sched_priority = (int)g->watcher_priority };
	pthread_attr_t attr;
	sigset_t all, old;
	int ret = EPERM;

	/* The daemon takes its signals through signalfd: none may land here. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (g->watcher_priority > 0) {
		pthread_attr_init(&attr);
		pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
		pthread_attr_setschedparam(&attr, &sp);
		ret = pthread_create(&g->watcher, &attr, gpio_watch, g);
		pthread_attr_destroy(&attr);
	}
	if (ret == EPERM) {
		if (g->watcher_priority > 0) {
			g->host->log(g->host->ctx, RPMSD_COIL_LOG_WARN,
				     "key watcher_priority: SCHED_FIFO %lld refused (EPERM); the e-stop watcher runs with normal scheduling",
				     g->watcher_priority);
		}
		ret = pthread_create(&g->watcher, NULL, gpio_watch, g);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR, "cannot start the input watcher: %s",
			     strerror(ret));
		return -ret;
	}
	pthread_setname_np(g->watcher, "rpmsd-gpio");
	g->watching = true;
	return 0;
}

static void gpio_watch_stop(struct gpio *g)
{
	uint64_t one = 1;

	if (!g->watching) {
		return;
	}
	while (write(g->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
	}
	pthread_join(g->watcher, NULL);
	g->watching = false;
}

static int gpio_bias(struct gpio *g, enum gpio_role role, const char *value)
{
	size_t i;

	for (i = 0; i < sizeof(gpio_biases) / sizeof(gpio_biases[0]); i++) {
		if (strcmp(value, gpio_biases[i].name) == 0) {
			g->bias[role] = gpio_biases[i].flag;
			return 0;
		}
	}
	g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
		     "key %s: '%s' is not a bias (allowed: as-is, disable, pull-up, pull-down)",
		     gpio_roles[role].bias_key, value);
	return -EINVAL;
}

static int gpio_read_keys(struct gpio *g)
{
	const struct rpmsd_coil_host *h = g->host;
	const char *bias;
	long long timeout_us;
	int role, ret;

	ret = h->get_string(h->ctx, "chip", &g->chip_spec);
	if (ret < 0) {
		return ret;
	}
	for (role = 0; role < GPIO_N_ROLES; role++) {
		const struct gpio_role_def *d = &gpio_roles[role];

		ret = h->get_string(h->ctx, d->key, &g->spec[role]);
		if (ret == 0) {
			ret = h->get_bool(h->ctx, d->low_key, &g->active_low[role]);
		}
		if (ret == 0 && d->bias_key) {
			ret = h->get_string(h->ctx, d->bias_key, &bias);
			if (ret == 0) {
				ret = gpio_bias(g, role, bias);
			}
		}
		if (ret < 0) {
			return ret;
		}
	}
	ret = h->get_int(h->ctx, "confirm_timeout_us", &timeout_us);
	if (ret == 0) {
		ret = h->get_int(h->ctx, "watcher_priority", &g->watcher_priority);
	}
	if (ret == 0) {
		ret = h->get_string(h->ctx, "estop_log", &g->estop_log);
	}
	if (ret == 0) {
		long long cap;

		ret = h->get_int(h->ctx, "estop_log_max", &cap);
		g->estops_cap = (size_t)cap;
	}
	if (ret < 0) {
		return ret;
	}
	g->confirm_timeout_ns = timeout_us * 1000;
	if (!g->spec[GPIO_TRIGGER][0]) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "key trigger_line: not set (the offset or name of the line that fires the stimulator)");
		return -EINVAL;
	}
	return 0;
}

/* "gpiochip0 [label], gpiochip1 [label]" or a note that there are none. */
static void gpio_list_chips(char *out, size_t len)
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

static int gpio_open_chip(struct gpio *g)
{
	const char *desc = g->chip_spec;

	if (!desc[0]) {
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
			     "key chip: not set (a chip name, path, label or number)");
		return -EINVAL;
	}
	errno = 0;
	g->chip = gpiod_chip_open_lookup(desc);
	if (!g->chip) {
		int ret = gpio_errno();
		char avail[512];

		gpio_list_chips(avail, sizeof(avail));
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
			     "key chip: cannot open GPIO chip '%s': %s (%s)", desc,
			     strerror(-ret), avail);
		return ret;
	}
	snprintf(g->chip_desc, sizeof(g->chip_desc), "%s (label %s)", gpiod_chip_name(g->chip),
		 gpiod_chip_label(g->chip));
	return 0;
}

static bool gpio_is_offset(const char *s)
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
static int gpio_find_line(struct gpio *g, enum gpio_role role)
{
	const char *spec = g->spec[role], *key = gpio_roles[role].key;
	int r;

	if (!spec[0]) {
		return 0;
	}
	if (gpio_is_offset(spec)) {
		unsigned long off;

		errno = 0;
		off = strtoul(spec, NULL, 10);
		if (errno || off >= gpiod_chip_num_lines(g->chip)) {
			g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
				     "key %s: offset %s is out of range: chip %s has lines 0 to %u",
				     key, spec, g->chip_desc, gpiod_chip_num_lines(g->chip) - 1);
			return -EINVAL;
		}
		g->line[role] = gpiod_chip_get_line(g->chip, (unsigned int)off);
	} else {
		errno = 0;
		g->line[role] = gpiod_chip_find_line(g->chip, spec);
		if (!g->line[role] && (errno == 0 || errno == ENOENT)) {
			g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
				     "key %s: no line named '%s' on chip %s", key, spec,
				     g->chip_desc);
			return -ENOENT;
		}
	}
	if (!g->line[role]) {
		r = gpio_errno();
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR, "key %s: line '%s' on chip %s: %s",
			     key, spec, g->chip_desc, strerror(-r));
		return r;
	}
	for (r = 0; r < (int)role; r++) {
		if (g->line[r] == g->line[role]) {
			g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
				     "key %s: line %u ('%s') is already %s", key,
				     gpiod_line_offset(g->line[role]), spec, gpio_roles[r].key);
			g->line[role] = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

static int gpio_request_line(struct gpio *g, enum gpio_role role)
{
	const struct gpio_role_def *d = &gpio_roles[role];
	struct gpiod_line_request_config rc = {
		.consumer = GPIO_CONSUMER,
		.request_type = d->request_type,
		.flags = g->bias[role] |
			 (g->active_low[role] ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0),
	};
	struct gpiod_line *l = g->line[role];
	int ret, fd;

	/* Outputs start inactive: requesting must never fire nor enable. */
	if (gpiod_line_request(l, &rc, 0) < 0) {
		const char *name, *user;

		ret = gpio_errno();
		gpiod_line_update(l);
		name = gpiod_line_name(l);
		user = gpiod_line_consumer(l);
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR,
			     "key %s: cannot request line %u%s%s%s on chip %s as %s: %s%s%s%s",
			     d->key, gpiod_line_offset(l), name ? " ('" : "", name ? name : "",
			     name ? "')" : "", g->chip_desc, d->as, strerror(-ret),
			     user ? " (in use by '" : "", user ? user : "", user ? "')" : "");
		g->line[role] = NULL;
		return ret;
	}
	if (!d->bias_key) {
		return 0;
	}
	/* The watcher and pulse drain events without ever blocking in read. */
	fd = gpiod_line_event_get_fd(l);
	if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		ret = gpio_errno();
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR, "key %s: event fd of line %u: %s",
			     d->key, gpiod_line_offset(l), strerror(-ret));
		return ret;
	}
	g->event_fd[role] = fd;
	return 0;
}

/* Set every requested output inactive and release every line. */
static void gpio_release_lines(struct gpio *g)
{
	int role;

	gpio_set(g, GPIO_ENABLE, 0);
	gpio_set(g, GPIO_TRIGGER, 0);
	for (role = GPIO_N_ROLES - 1; role >= 0; role--) {
		if (g->line[role]) {
			gpiod_line_release(g->line[role]);
			g->line[role] = NULL;
		}
	}
}

static int gpio_request_lines(struct gpio *g)
{
	int role, ret;

	for (role = 0; role < GPIO_N_ROLES; role++) {
		ret = gpio_find_line(g, role);
		if (ret < 0) {
			goto err_release;
		}
	}
	for (role = 0; role < GPIO_N_ROLES; role++) {
		if (!g->line[role]) {
			continue;
		}
		ret = gpio_request_line(g, role);
		if (ret < 0) {
			goto err_release;
		}
	}
	return 0;

err_release:
	/* Found but not requested lines are released as a no-op by libgpiod. */
	gpio_release_lines(g);
	return ret;
}

static void gpio_describe(struct gpio *g)
{
	char buf[512];
	size_t used = 0;
	int role, n;

	for (role = 0; role < GPIO_N_ROLES; role++) {
		const char *name;

		if (!g->line[role]) {
			continue;
		}
		name = gpiod_line_name(g->line[role]);
		n = snprintf(buf + used, sizeof(buf) - used, "%s%.*s %u%s%s%s active-%s",
			     used ? ", " : "", (int)(strlen(gpio_roles[role].key) - 5),
			     gpio_roles[role].key, gpiod_line_offset(g->line[role]),
			     name ? " '" : "", name ? name : "", name ? "'" : "",
			     g->active_low[role] ? "low" : "high");
		if (n < 0 || (size_t)n >= sizeof(buf) - used) {
			break;
		}
		used += (size_t)n;
	}
	g->host->log(g->host->ctx, RPMSD_COIL_LOG_INFO, "%s: %s", g->chip_desc, buf);
}

/* Configurations that work but are not fail-safe deserve a warning. */
static void gpio_warn(struct gpio *g)
{
	const struct rpmsd_coil_host *h = g->host;
	int b = g->bias[GPIO_ESTOP];

	if (!g->line[GPIO_ENABLE]) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "no enable_line: disarm and e-stop cannot gate the stimulator in hardware");
	}
	if (!g->line[GPIO_ESTOP]) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "no estop_line: the emergency stop must cut the stimulator by itself");
	} else if ((g->active_low[GPIO_ESTOP] && b == GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP) ||
		   (!g->active_low[GPIO_ESTOP] && b == GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "key estop_bias: pulls towards 'released': a broken e-stop wire goes unnoticed");
	}
	if ((g->line[GPIO_ESTOP] || g->line[GPIO_READY]) && !g->alert) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "the host has no alert callback: an e-stop drops the enable line, and the host learns of it at the next status or pulse");
	}
	if (g->line[GPIO_ESTOP] && gpio_get(g, GPIO_ESTOP) == 1) {
		h->log(h->ctx, RPMSD_COIL_LOG_WARN,
		       "e-stop is asserted: arming is refused until it is released");
	}
}

static int gpio_open(const struct rpmsd_coil_host *host, void **out)
{
	pthread_mutexattr_t ma;
	struct gpio *g = calloc(1, sizeof(*g));
	int role, ret;

	if (!g) {
		return -ENOMEM;
	}
	g->host = host;
	g->stop_fd = -1;
	for (role = 0; role < GPIO_N_ROLES; role++) {
		g->event_fd[role] = -1;
	}
	if (host->struct_size >= offsetof(struct rpmsd_coil_host, alert) + sizeof(host->alert)) {
		g->alert = host->alert;
	}
	atomic_init(&g->armed, false);
	atomic_init(&g->estop_latched, false);
	atomic_init(&g->fault_code, 0);
	atomic_init(&g->watcher_dead, false);
	ret = gpio_read_keys(g);
	if (ret < 0) {
		goto err_free;
	}
	g->estops = calloc(g->estops_cap, sizeof(*g->estops));
	if (!g->estops) {
		ret = -ENOMEM;
		goto err_free;
	}
	/* Prefault: the watcher must not take page faults on an e-stop. */
	memset(g->estops, 0, g->estops_cap * sizeof(*g->estops));

	pthread_mutexattr_init(&ma);
	ret = -pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	if (ret == 0) {
		ret = -pthread_mutex_init(&g->lock, &ma);
	}
	pthread_mutexattr_destroy(&ma);
	if (ret < 0) {
		host->log(host->ctx, RPMSD_COIL_LOG_ERR, "priority-inheriting mutex: %s",
			  strerror(-ret));
		goto err_free_log;
	}
	g->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (g->stop_fd < 0) {
		ret = gpio_errno();
		goto err_mutex;
	}
	ret = gpio_open_chip(g);
	if (ret < 0) {
		goto err_stop_fd;
	}
	ret = gpio_request_lines(g);
	if (ret < 0) {
		goto err_chip;
	}
	if (g->line[GPIO_ESTOP] || g->line[GPIO_READY]) {
		ret = gpio_watch_start(g);
		if (ret < 0) {
			goto err_lines;
		}
	}
	gpio_describe(g);
	gpio_warn(g);
	*out = g;
	return 0;

err_lines:
	gpio_release_lines(g);
err_chip:
	gpiod_chip_close(g->chip);
err_stop_fd:
	close(g->stop_fd);
err_mutex:
	pthread_mutex_destroy(&g->lock);
err_free_log:
	free(g->estops);
err_free:
	free(g);
	return ret;
}

static int gpio_arm(void *h)
{
	struct gpio *g = h;
	int ret = 0;

	pthread_mutex_lock(&g->lock);
	if (atomic_load(&g->watcher_dead)) {
		ret = -EIO;
		goto out;
	}
	if (g->line[GPIO_ESTOP]) {
		ret = gpio_get(g, GPIO_ESTOP);
		if (ret == 1) {
			atomic_store(&g->estop_latched, true);
			ret = -EPERM;
		}
		if (ret < 0) {
			goto out;
		}
	}
	/* Arming acknowledges what was latched; the causes are checked again. */
	atomic_store(&g->estop_latched, false);
	atomic_store(&g->fault_code, 0);
	ret = gpio_set(g, GPIO_ENABLE, 1);
	if (ret < 0) {
		gpio_drop_locked(g);
		gpio_latch_fault(g, ret);
		goto out;
	}
	atomic_store(&g->armed, true);
out:
	pthread_mutex_unlock(&g->lock);
	return ret;
}

static int gpio_disarm(void *h)
{
	struct gpio *g = h;
	int ret;

	pthread_mutex_lock(&g->lock);
	ret = gpio_drop_locked(g);
	pthread_mutex_unlock(&g->lock);
	if (ret < 0) {
		gpio_latch_fault(g, ret);
	}
	return ret;
}

/*
 * The host's supervisor, on its own thread, because the stim thread is
 * hung, maybe inside arm or pulse holding g->lock: no lock here. Both lines
 * go inactive straight through the kernel (one ioctl each, serialised
 * there); the worst a racing op can do is set a line again, and a hung one
 * does not.
 */
static int gpio_force_disarm(void *h)
{
	struct gpio *g = h;
	int ret, ret2;

	atomic_store(&g->armed, false);
	ret = gpio_set(g, GPIO_ENABLE, 0);
	ret2 = gpio_set(g, GPIO_TRIGGER, 0);
	return ret < 0 ? ret : ret2;
}

static void gpio_wait_until(int64_t deadline_ns, bool sleep)
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
	while (gpio_mono_ns() < deadline_ns) {
	}
}

/* Drop confirm edges that no pulse of ours caused: they confirm nothing. */
static int gpio_confirm_drain(struct gpio *g)
{
	struct gpiod_line_event ev[GPIO_EVENTS_MAX];
	int n;

	while ((n = gpio_read_events(g->event_fd[GPIO_CONFIRM], ev)) > 0) {
		g->confirm_stray += (uint64_t)n;
	}
	return n;
}

/* Wait until @deadline_ns for a confirm edge stamped at or after @since_ns. */
static int gpio_confirm_wait(struct gpio *g, int64_t since_ns, int64_t deadline_ns)
{
	struct pollfd pfd = { .fd = g->event_fd[GPIO_CONFIRM], .events = POLLIN };
	struct gpiod_line_event ev[GPIO_EVENTS_MAX];
	struct timespec ts;

	for (;;) {
		int64_t left = deadline_ns - gpio_mono_ns();
		int n;

		if (left < 0) {
			left = 0;
		}
		ts.tv_sec = left / 1000000000LL;
		ts.tv_nsec = left % 1000000000LL;
		n = ppoll(&pfd, 1, &ts, NULL);
		if (n < 0 && errno != EINTR) {
			return gpio_errno();
		}
		if (n > 0) {
			int i;

			n = gpio_read_events(pfd.fd, ev);
			if (n < 0) {
				return n;
			}
			for (i = 0; i < n; i++) {
				if (gpio_ts_ns(&ev[i].ts) >= since_ns) {
					return 0;
				}
				g->confirm_stray++;
			}
		}
		if (left == 0) {
			return -ETIMEDOUT;
		}
	}
}

static int gpio_pulse(void *h, double intensity_pct, uint32_t width_us)
{
	struct gpio *g = h;
	int64_t t_start, t_rise;
	int ret;

	/* The stimulator's own panel sets the intensity; TTL carries none. */
	(void)intensity_pct;
	if (!atomic_load(&g->armed)) {
		return -EPERM;
	}
	if (g->line[GPIO_CONFIRM]) {
		ret = gpio_confirm_drain(g);
		if (ret < 0) {
			goto err_fault;
		}
	}
	t_start = gpio_mono_ns();
	ret = gpio_set(g, GPIO_TRIGGER, 1);
	if (ret < 0) {
		gpio_set(g, GPIO_TRIGGER, 0);
		goto err_fault;
	}
	t_rise = gpio_mono_ns();
	gpio_wait_until(t_rise + (int64_t)width_us * 1000, width_us * 1000LL >= GPIO_SLEEP_MIN_NS);
	ret = gpio_set(g, GPIO_TRIGGER, 0);
	if (ret < 0) {
		goto err_fault;
	}
	if (g->line[GPIO_CONFIRM]) {
		ret = gpio_confirm_wait(g, t_start, t_rise + g->confirm_timeout_ns);
		if (ret == -ETIMEDOUT) {
			g->confirm_timeouts++;
		}
		if (ret < 0) {
			goto err_fault;
		}
	}
	return 0;

err_fault:
	gpio_fault(g, ret);
	return ret;
}

static int gpio_status(void *h, struct rpmsd_coil_status *st)
{
	struct gpio *g = h;
	int ready = 1, estop = 0;

	if (g->line[GPIO_READY]) {
		ready = gpio_get(g, GPIO_READY);
		if (ready < 0) {
			return ready;
		}
	}
	if (g->line[GPIO_ESTOP]) {
		estop = gpio_get(g, GPIO_ESTOP);
		if (estop < 0) {
			return estop;
		}
	}
	st->temperature_c = NAN;
	st->ready = ready == 1;
	st->fault_code = atomic_load(&g->fault_code);
	st->fault = st->fault_code != 0;
	/*
	 * The input as it is now (the ABI's meaning): the host refuses to arm
	 * while it is pressed. The latch is this plugin's own business: arm
	 * clears it once the input is released.
	 */
	st->estop = estop == 1;
	return 0;
}

static int gpio_cmp_latency(const void *a, const void *b)
{
	const struct gpio_estop_sample *x = a, *y = b;
	int64_t lx = x->drop_ns - x->edge_ns, ly = y->drop_ns - y->edge_ns;

	return (lx > ly) - (lx < ly);
}

/*
 * fopen(@path, "w") for a regular file only: a FIFO there would block the
 * close (the daemon's shutdown) until someone reads it.
 */
static FILE *gpio_create(const char *path)
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

static void gpio_write_estop_log(struct gpio *g)
{
	FILE *f;
	size_t i;

	f = gpio_create(g->estop_log);
	if (!f) {
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR, "cannot write estop_log %s: %s",
			     g->estop_log, strerror(errno));
		return;
	}
	fprintf(f, "edge_mono_ns,drop_mono_ns,latency_us,armed\n");
	for (i = 0; i < g->estops_len; i++) {
		const struct gpio_estop_sample *s = &g->estops[i];

		fprintf(f, "%lld,%lld,%.3f,%d\n", (long long)s->edge_ns, (long long)s->drop_ns,
			(double)(s->drop_ns - s->edge_ns) / 1e3, s->armed);
	}
	if (fclose(f) != 0) {
		g->host->log(g->host->ctx, RPMSD_COIL_LOG_ERR, "error writing estop_log %s: %s",
			     g->estop_log, strerror(errno));
	}
}

static void gpio_report(struct gpio *g)
{
	const struct rpmsd_coil_host *h = g->host;

	if (g->line[GPIO_ESTOP]) {
		if (g->estop_log[0]) {
			gpio_write_estop_log(g);
		}
		if (g->estops_len) {
			const struct gpio_estop_sample *p50, *max;

			/* Chronological order is written; now sort for the figures. */
			qsort(g->estops, g->estops_len, sizeof(*g->estops), gpio_cmp_latency);
			p50 = &g->estops[(g->estops_len - 1) / 2];
			max = &g->estops[g->estops_len - 1];
			h->log(h->ctx, RPMSD_COIL_LOG_INFO,
			       "e-stop: %llu edges, %zu measured, edge to enable drop p50 %.1f us, max %.1f us",
			       (unsigned long long)g->estop_edges, g->estops_len,
			       (double)(p50->drop_ns - p50->edge_ns) / 1e3,
			       (double)(max->drop_ns - max->edge_ns) / 1e3);
		} else {
			h->log(h->ctx, RPMSD_COIL_LOG_INFO, "e-stop: %llu edges, none measured",
			       (unsigned long long)g->estop_edges);
		}
		if (g->estop_unlogged) {
			h->log(h->ctx, RPMSD_COIL_LOG_WARN,
			       "e-stop: %llu latencies beyond estop_log_max were not kept",
			       (unsigned long long)g->estop_unlogged);
		}
		if (g->estop_odd_ts) {
			h->log(h->ctx, RPMSD_COIL_LOG_WARN,
			       "e-stop: %llu edge timestamps not on CLOCK_MONOTONIC (kernel before 5.7?) were not measured",
			       (unsigned long long)g->estop_odd_ts);
		}
	}
	if (g->ready_faults) {
		h->log(h->ctx, RPMSD_COIL_LOG_INFO, "ready dropped while armed %llu times",
		       (unsigned long long)g->ready_faults);
	}
	if (g->confirm_timeouts || g->confirm_stray) {
		h->log(h->ctx, RPMSD_COIL_LOG_INFO,
		       "confirm: %llu pulses unconfirmed, %llu edges without a pulse",
		       (unsigned long long)g->confirm_timeouts,
		       (unsigned long long)g->confirm_stray);
	}
}

static void gpio_close(void *h)
{
	struct gpio *g = h;

	if (!g) {
		return;
	}
	/* Drop enable before the join too: a stuck watcher must not delay it. */
	pthread_mutex_lock(&g->lock);
	gpio_drop_locked(g);
	pthread_mutex_unlock(&g->lock);
	gpio_watch_stop(g);
	gpio_report(g);
	gpio_release_lines(g);
	gpiod_chip_close(g->chip);
	close(g->stop_fd);
	pthread_mutex_destroy(&g->lock);
	free(g->estops);
	free(g);
}

static const struct rpmsd_coil_descriptor gpio_descriptor = {
	.abi_major = RPMSD_COIL_ABI_MAJOR,
	.abi_minor = RPMSD_COIL_ABI_MINOR,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
	.name = "gpio",
	.description = "TTL trigger and enable lines through the GPIO chardev (libgpiod)",
	.keys = gpio_keys,
	.n_keys = sizeof(gpio_keys) / sizeof(gpio_keys[0]),
	.ops = {
		.open = gpio_open,
		.arm = gpio_arm,
		.disarm = gpio_disarm,
		.pulse = gpio_pulse,
		.status = gpio_status,
		.close = gpio_close,
		.force_disarm = gpio_force_disarm,
	},
};

RPMSD_COIL_PLUGIN(&gpio_descriptor)
