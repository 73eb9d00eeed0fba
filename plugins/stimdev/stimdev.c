/* SPDX-License-Identifier: MIT */
/*
 * The serial stimulator core (stimdev.h): the ops the host calls, the
 * TTL lines, and the link thread that owns the tty and the driver.
 *
 * Between the stim thread and the link thread there are only words: what
 * is asked (armed, output, serial fires) and what the device said (armed,
 * ready, settling, temperature, confirmed output, the latched fault).
 * The stim thread never waits for the link thread: a device that is not
 * ready is a pulse the gate refuses (status.ready), an output not
 * confirmed is a pulse the gate refuses (confirmed_intensity).
 *
 * A fault latches once (the first cause wins and is what the alert and
 * the log name); it clears only when the plugin is opened again, as a
 * device that has lost remote control or disarmed itself must be looked
 * at before the coil fires again.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "stimdev.h"
#include "ttl.h"
#include "tty.h"

#define STIMDEV_ERR_MAX 256
#define STIMDEV_MS 1000000LL
/* serial fires asked and not yet sent that the ring can hold */
#define STIMDEV_FIRES 64
/* a serial fire is never sent closer to the one before than asked, less this */
#define STIMDEV_FIRE_SLACK_NS 500000LL

struct stimdev {
	const struct stimdev_driver *drv;
	const struct rpmsd_coil_host *host;
	void *priv;
	struct ttl *ttl;		/* NULL: fire = serial */
	struct tty *tty;
	bool serial_fire;
	int wake_fd;			/* eventfd: kicks the link thread */
	pthread_t thread;
	bool started;

	/* keys */
	int reply_timeout_ms;
	unsigned fault_after;
	int64_t arm_timeout_ns;
	int64_t confirm_margin_ns;
	int64_t temp_period_ns;
	int64_t fire_late_ns;

	/* asked by the host's threads */
	atomic_bool stop;
	atomic_bool want_armed;
	atomic_int want_pct;		/* -1: nothing asked yet */
	atomic_uint fire_asked;		/* serial fires asked (pulse) */
	/* CLOCK_MONOTONIC of fire n at [n % STIMDEV_FIRES], written before the count */
	_Atomic int64_t fire_at[STIMDEV_FIRES];

	/* what the device said (link thread -> everyone) */
	atomic_bool dev_armed;
	atomic_bool dev_ready;		/* armed, ready, and not settling */
	_Atomic uint64_t confirmed_bits;	/* double: the read-back output, NAN none */
	_Atomic uint64_t temp_bits;	/* double: coil temperature, NAN none */
	atomic_bool fault_claimed;	/* the first cause has taken the latch */
	atomic_int fault;		/* 0, or the negative errno of the latched fault */
	char fault_text[STIMDEV_ERR_MAX];	/* written once, before fault is set */

	/* link thread only */
	unsigned fire_done;
	int64_t fire_sent_at;		/* when the last serial fire went out, 0 none */
	int64_t fire_sent_req;		/* when that one was asked for */
	int set_pct;			/* the output last written, -1 none */
	int64_t settle_until;		/* read back after this (INT64_MAX: nothing pending) */
	bool armed_seen;		/* the device reported armed since we asked */
	int64_t arm_deadline;
	int64_t next_poll, next_full;
	unsigned misses;		/* replies missing or corrupt in a row */
	struct stimdev_state st;
};

static int64_t stimdev_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void stimdev_store_double(_Atomic uint64_t *w, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	atomic_store(w, bits);
}

static double stimdev_load_double(const _Atomic uint64_t *w)
{
	uint64_t bits = atomic_load((_Atomic uint64_t *)w);
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

static void stimdev_log(struct stimdev *d, enum rpmsd_coil_log_level lvl, const char *what)
{
	d->host->log(d->host->ctx, lvl, "%s: %s", d->drv->name, what);
}

static void stimdev_kick(struct stimdev *d)
{
	uint64_t one = 1;
	ssize_t n = write(d->wake_fd, &one, sizeof(one));

	(void)n;	/* EAGAIN: the counter is full, the thread wakes anyway */
}

/*
 * Latch a fault (any thread but the stim thread's ops, which only read
 * it): the first cause wins. The enable line drops at once (ttl_fault
 * also raises the host's alert); without TTL lines the alert is raised
 * here. The device is disarmed over serial by the link thread when it
 * sees the fault.
 */
static void stimdev_fault(struct stimdev *d, int code, const char *why)
{
	if (atomic_exchange(&d->fault_claimed, true)) {
		return;
	}
	/* the text before anyone can see the code: readers check the code first */
	snprintf(d->fault_text, sizeof(d->fault_text), "%s", why);
	atomic_store(&d->fault, code < 0 ? code : -EIO);
	atomic_store(&d->dev_ready, false);
	stimdev_log(d, RPMSD_COIL_LOG_ERR, why);
	if (d->ttl) {
		ttl_fault(d->ttl, code);
	} else {
		d->host->alert(d->host->ctx, RPMSD_COIL_ALERT_FAULT, code);
	}
	stimdev_kick(d);
}

/* Fault from a driver call's failure; a miss counts until fault_after. */
static void stimdev_link_error(struct stimdev *d, int ret, const char *what, const char *err)
{
	char why[STIMDEV_ERR_MAX];

	if ((ret == -ETIMEDOUT || ret == -EBADMSG) && ++d->misses < d->fault_after) {
		return;
	}
	if (ret == -ETIMEDOUT || ret == -EBADMSG) {
		snprintf(why, sizeof(why), "%s: %s %u times in a row (last: %s)", what,
			 ret == -ETIMEDOUT ? "no reply" : "corrupt reply", d->misses, err);
	} else if (ret == -EIO || ret == -ENODEV || ret == -ENXIO) {
		snprintf(why, sizeof(why), "%s: the serial link is gone (cable unplugged?): %s",
			 what, err);
	} else {
		snprintf(why, sizeof(why), "%s: %s", what, err);
	}
	stimdev_fault(d, ret, why);
}

/* What the device said, checked against what we asked of it. */
static void stimdev_judge(struct stimdev *d, int64_t now)
{
	const struct stimdev_state *st = &d->st;
	char why[STIMDEV_ERR_MAX];
	bool want = atomic_load(&d->want_armed);

	if (!st->remote) {
		stimdev_fault(d, -ENOLINK, "the device dropped remote control");
		return;
	}
	if (!st->coil_present) {
		stimdev_fault(d, -ENXIO, "no coil connected to the device");
		return;
	}
	if (st->replace_coil) {
		stimdev_fault(d, -EIO, "the device asks for the coil to be replaced");
		return;
	}
	if (st->error) {
		snprintf(why, sizeof(why), "the device reports an error (code %u)", st->error_code);
		stimdev_fault(d, -EIO, why);
		return;
	}
	if (!isnan(st->temperature_c)) {
		stimdev_store_double(&d->temp_bits, st->temperature_c);
	}
	atomic_store(&d->dev_armed, st->armed);
	if (want && st->armed) {
		d->armed_seen = true;
	}
	if (want && d->armed_seen && !st->armed) {
		stimdev_fault(d, -ECANCELED, "the device disarmed itself (its idle time-out, "
			      "lost remote control, over-temperature or its own stop)");
		return;
	}
	if (want && !st->ready && d->arm_deadline && now > d->arm_deadline) {
		snprintf(why, sizeof(why), "the device was not armed and ready %lld ms after "
			 "arming (armed %d, ready %d)", (long long)(d->arm_timeout_ns / STIMDEV_MS),
			 st->armed, st->ready);
		stimdev_fault(d, -ETIMEDOUT, why);
		return;
	}
	if (want && st->ready) {
		d->arm_deadline = 0;
	}
	atomic_store(&d->dev_ready, want && st->ready && d->settle_until == INT64_MAX);
}

static int stimdev_poll_now(struct stimdev *d, bool full, int64_t now)
{
	char err[STIMDEV_ERR_MAX];
	int ret;

	d->st.power_pct = NAN;
	d->st.temperature_c = NAN;
	ret = d->drv->poll(d->priv, d->tty, atomic_load(&d->want_armed), full, &d->st, err,
			   sizeof(err));
	if (ret < 0) {
		stimdev_link_error(d, ret, "status", err);
		return ret;
	}
	d->misses = 0;
	stimdev_judge(d, now);
	return 0;
}

/* After the settle time: the output the device reports is what is confirmed. */
static void stimdev_read_back(struct stimdev *d, int64_t now)
{
	char why[STIMDEV_ERR_MAX];

	if (stimdev_poll_now(d, true, now) < 0 || isnan(d->st.power_pct)) {
		return;		/* tried again at the next turn */
	}
	d->settle_until = INT64_MAX;
	stimdev_store_double(&d->confirmed_bits, d->st.power_pct);
	if ((int)lround(d->st.power_pct) != d->set_pct) {
		/* The gate refuses pulses with both numbers; say it here too. */
		snprintf(why, sizeof(why), "output %d %% was written but the device reads back "
			 "%.0f %%", d->set_pct, d->st.power_pct);
		stimdev_log(d, RPMSD_COIL_LOG_WARN, why);
	}
	stimdev_judge(d, now);
}

static void stimdev_take_power(struct stimdev *d, int64_t now)
{
	char err[STIMDEV_ERR_MAX];
	int want = atomic_load(&d->want_pct), from = d->set_pct, ret;
	unsigned settle;

	if (want < 0 || want == d->set_pct) {
		return;
	}
	/* nothing is confirmed from the moment the output is asked to change */
	stimdev_store_double(&d->confirmed_bits, NAN);
	atomic_store(&d->dev_ready, false);
	ret = d->drv->set_power(d->priv, d->tty, (unsigned)want, err, sizeof(err));
	if (ret < 0) {
		stimdev_link_error(d, ret, "setting the output", err);
		return;
	}
	d->set_pct = want;
	settle = d->drv->settle_ms(d->priv, from < 0 ? 0 : (unsigned)from, (unsigned)want);
	d->settle_until = now + (int64_t)settle * STIMDEV_MS + d->confirm_margin_ns;
}

static void stimdev_take_arming(struct stimdev *d, int64_t now)
{
	char err[STIMDEV_ERR_MAX];
	bool want = atomic_load(&d->want_armed);
	int ret;

	if (want == d->st.armed || (want && d->arm_deadline)) {
		return;
	}
	ret = d->drv->arm(d->priv, d->tty, want, err, sizeof(err));
	if (ret < 0) {
		stimdev_link_error(d, ret, want ? "arming" : "disarming", err);
		return;
	}
	d->armed_seen = false;
	d->arm_deadline = want ? now + d->arm_timeout_ns : 0;
	/* see it at once: the next poll says whether it took */
	d->next_poll = now;
}

/*
 * fire = serial: send the fires pulse asked for, in order. A fire waits
 * for the link (a poll in progress), so it may go out late; it is then
 * held back as needed so that no two go out closer together than they
 * were asked (the gate admitted them at those times), and one later than
 * serial_fire_late_ms is not sent at all: a fault.
 */
static void stimdev_take_fires(struct stimdev *d)
{
	char err[STIMDEV_ERR_MAX];
	unsigned asked = atomic_load(&d->fire_asked);
	int64_t req, now, earliest;
	struct timespec ts;
	int ret;

	if (asked - d->fire_done > STIMDEV_FIRES) {
		d->fire_done = asked;
		stimdev_fault(d, -EOVERFLOW, "serial fires asked faster than the link sends them");
		return;
	}
	while (d->fire_done != asked) {
		req = atomic_load(&d->fire_at[(d->fire_done + 1) % STIMDEV_FIRES]);
		d->fire_done++;
		earliest = d->fire_sent_at ? d->fire_sent_at + (req - d->fire_sent_req) -
					     STIMDEV_FIRE_SLACK_NS : 0;
		now = stimdev_now();
		if (now < earliest) {
			ts.tv_sec = earliest / 1000000000LL;
			ts.tv_nsec = earliest % 1000000000LL;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			now = stimdev_now();
		}
		if (now - req > d->fire_late_ns) {
			d->fire_done = asked;
			stimdev_fault(d, -ETIME, "a serial fire reached the link later than "
				      "serial_fire_late_ms: not sent");
			return;
		}
		ret = d->drv->fire(d->priv, d->tty, err, sizeof(err));
		d->fire_sent_at = now;
		d->fire_sent_req = req;
		if (ret < 0) {
			stimdev_link_error(d, ret, "serial fire", err);
			return;
		}
	}
}

/* Once a fault is latched: make the device safe over the link, if it answers. */
static void stimdev_make_safe(struct stimdev *d)
{
	char err[STIMDEV_ERR_MAX];

	atomic_store(&d->want_armed, false);
	if (d->drv->arm(d->priv, d->tty, false, err, sizeof(err)) < 0) {
		stimdev_log(d, RPMSD_COIL_LOG_WARN, "could not disarm the device over the link "
			    "after the fault (it may not answer)");
	}
	atomic_store(&d->dev_armed, false);
}

static void stimdev_wait(struct stimdev *d, int64_t until)
{
	struct pollfd p = { .fd = d->wake_fd, .events = POLLIN };
	int64_t left = until - stimdev_now();
	uint64_t v;

	if (left > 0) {
		if (poll(&p, 1, (int)((left + STIMDEV_MS - 1) / STIMDEV_MS)) > 0) {
			ssize_t n = read(d->wake_fd, &v, sizeof(v));

			(void)n;
		}
	}
}

static void *stimdev_thread(void *arg)
{
	struct stimdev *d = arg;
	bool safe = false;
	int64_t now, until;

	while (!atomic_load(&d->stop)) {
		now = stimdev_now();
		if (atomic_load(&d->fault)) {
			if (!safe) {
				stimdev_make_safe(d);
				safe = true;
			}
			stimdev_wait(d, now + 1000 * STIMDEV_MS);
			continue;
		}
		if (d->serial_fire) {
			stimdev_take_fires(d);
			now = stimdev_now();
		}
		stimdev_take_arming(d, now);
		stimdev_take_power(d, now);
		/*
		 * While serial fires go out, no poll holds the link: each fire's
		 * reply keeps remote control alive, and a train is short. A poll
		 * in progress when a fire is asked makes that fire late.
		 */
		if (d->serial_fire && d->fire_sent_at &&
		    now - d->fire_sent_at < (int64_t)d->drv->poll_armed_ms * STIMDEV_MS) {
			stimdev_wait(d, d->fire_sent_at +
					(int64_t)d->drv->poll_armed_ms * STIMDEV_MS);
			continue;
		}
		if (now >= d->settle_until) {
			stimdev_read_back(d, now);
		} else if (now >= d->next_poll) {
			bool full = now >= d->next_full;

			if (stimdev_poll_now(d, full, now) == 0 && full) {
				d->next_full = now + d->temp_period_ns;
			}
		}
		if (now >= d->next_poll) {
			d->next_poll = now + (int64_t)(atomic_load(&d->want_armed) ?
						       d->drv->poll_armed_ms :
						       d->drv->poll_disarmed_ms) * STIMDEV_MS;
		}
		until = d->next_poll;
		if (d->settle_until < until) {
			until = d->settle_until;
		}
		if (d->serial_fire && d->fire_done != atomic_load(&d->fire_asked)) {
			continue;
		}
		stimdev_wait(d, until);
	}
	return NULL;
}

static int stimdev_keys(struct stimdev *d, const struct rpmsd_coil_host *h, const char **tty,
			char *err, size_t len)
{
	const char *fire;
	long long v[6];
	static const char *const names[6] = { "reply_timeout_ms", "fault_after", "arm_timeout_ms",
					      "confirm_margin_ms", "temperature_period_ms",
					      "serial_fire_late_ms" };
	int i, ret;

	ret = h->get_string(h->ctx, "tty", tty);
	if (ret == 0 && !**tty) {
		snprintf(err, len, "key tty: not set (the stimulator's serial port, e.g. "
			 "/dev/ttyUSB0)");
		return -EINVAL;
	}
	if (ret == 0) {
		ret = h->get_string(h->ctx, "fire", &fire);
	}
	if (ret == 0 && strcmp(fire, "ttl") != 0 && strcmp(fire, "serial") != 0) {
		snprintf(err, len, "key fire: '%s' is neither ttl nor serial", fire);
		return -EINVAL;
	}
	for (i = 0; ret == 0 && i < 6; i++) {
		ret = h->get_int(h->ctx, names[i], &v[i]);
	}
	if (ret < 0) {
		snprintf(err, len, "cannot read the plugin's keys (%s)", strerror(-ret));
		return ret;
	}
	d->serial_fire = strcmp(fire, "serial") == 0;
	d->reply_timeout_ms = (int)v[0];
	d->fault_after = (unsigned)v[1];
	d->arm_timeout_ns = v[2] * STIMDEV_MS;
	d->confirm_margin_ns = v[3] * STIMDEV_MS;
	d->temp_period_ns = v[4] * STIMDEV_MS;
	d->fire_late_ns = v[5] * STIMDEV_MS;
	return 0;
}

int stimdev_open(const struct stimdev_driver *drv, const struct rpmsd_coil_host *host,
		 void **out)
{
	char err[STIMDEV_ERR_MAX] = "", e[STIMDEV_ERR_MAX - 16];
	struct stimdev *d = calloc(1, sizeof(*d));
	const char *path = NULL;
	int ret;

	if (!d) {
		return -ENOMEM;
	}
	d->drv = drv;
	d->host = host;
	d->wake_fd = -1;
	d->set_pct = -1;
	d->settle_until = INT64_MAX;
	atomic_init(&d->want_pct, -1);
	stimdev_store_double(&d->confirmed_bits, NAN);
	stimdev_store_double(&d->temp_bits, NAN);
	ret = stimdev_keys(d, host, &path, err, sizeof(err));
	if (ret < 0) {
		goto err_free;
	}
	ret = drv->open(host, &d->priv, err, sizeof(err));
	if (ret < 0) {
		goto err_free;
	}
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wake_fd < 0) {
		ret = -errno;
		snprintf(err, sizeof(err), "eventfd: %s", strerror(errno));
		goto err_priv;
	}
	if (!d->serial_fire) {
		ret = ttl_open(host, &d->ttl, err, sizeof(err));
		if (ret < 0) {
			goto err_fd;
		}
	}
	ret = tty_open(path, drv->baud, &d->tty, e, sizeof(e));
	if (ret < 0) {
		snprintf(err, sizeof(err), "key tty: %s", e);
		goto err_ttl;
	}
	ret = drv->connect(d->priv, d->tty, &d->st, err, sizeof(err));
	if (ret == 0) {
		/* the temperature and the output known before the first arm */
		ret = drv->poll(d->priv, d->tty, false, true, &d->st, err, sizeof(err));
	}
	if (ret < 0) {
		goto err_tty;
	}
	if (!isnan(d->st.power_pct)) {
		d->set_pct = (int)lround(d->st.power_pct);
	}
	stimdev_judge(d, stimdev_now());
	if (atomic_load(&d->fault)) {
		ret = atomic_load(&d->fault);
		snprintf(err, sizeof(err), "%s", d->fault_text);
		goto err_tty;
	}
	ret = pthread_create(&d->thread, NULL, stimdev_thread, d);
	if (ret != 0) {
		snprintf(err, sizeof(err), "link thread: %s", strerror(ret));
		ret = -ret;
		goto err_tty;
	}
	d->started = true;
	/* serial firing has milliseconds of jitter: never quietly */
	host->log(host->ctx, d->serial_fire ? RPMSD_COIL_LOG_WARN : RPMSD_COIL_LOG_INFO,
		  "%s: %s at %u baud, fired by %s", drv->name, path, drv->baud,
		  d->serial_fire ? "the serial fire command (fire = serial: bench checks only, "
				   "not for treatment)" : "the TTL trigger line");
	*out = d;
	return 0;

err_tty:
	tty_close(d->tty);
err_ttl:
	ttl_close(d->ttl);
err_fd:
	close(d->wake_fd);
err_priv:
	drv->close(d->priv, NULL);
err_free:
	host->log(host->ctx, RPMSD_COIL_LOG_ERR, "%s: %s", drv->name,
		  err[0] ? err : strerror(-ret));
	free(d);
	return ret;
}

int stimdev_arm(void *handle)
{
	struct stimdev *d = handle;
	int ret;

	if (atomic_load(&d->fault)) {
		return atomic_load(&d->fault);
	}
	if (d->ttl) {
		ret = ttl_arm(d->ttl);
		if (ret < 0) {
			return ret;
		}
	}
	atomic_store(&d->want_armed, true);
	stimdev_kick(d);
	return 0;
}

int stimdev_disarm(void *handle)
{
	struct stimdev *d = handle;
	int ret = 0;

	atomic_store(&d->want_armed, false);
	atomic_store(&d->dev_ready, false);
	if (d->ttl) {
		ret = ttl_disarm(d->ttl);
	}
	stimdev_kick(d);
	return ret;
}

int stimdev_pulse(void *handle, double intensity_pct, uint32_t width_us)
{
	struct stimdev *d = handle;
	unsigned n;

	(void)intensity_pct;	/* the gate holds it to the confirmed output */
	if (atomic_load(&d->fault)) {
		return atomic_load(&d->fault);
	}
	if (d->ttl) {
		return ttl_pulse(d->ttl, width_us);
	}
	n = atomic_load(&d->fire_asked) + 1;
	atomic_store(&d->fire_at[n % STIMDEV_FIRES], stimdev_now());
	/* after the time: the link thread reads the count, then the time */
	atomic_store(&d->fire_asked, n);
	stimdev_kick(d);
	return 0;
}

int stimdev_pulse_info(void *handle, struct rpmsd_coil_pulse_info *info)
{
	struct stimdev *d = handle;
	uint64_t pulse;
	double didt;

	info->confirm_ns = d->ttl ? ttl_last_confirm_ns(d->ttl) : -1;
	info->readback_pulse = 0;
	info->didt_a_per_us = NAN;
	if (d->drv->readback && d->drv->readback(d->priv, &pulse, &didt)) {
		info->readback_pulse = pulse;
		info->didt_a_per_us = didt;
	}
	return 0;
}

int stimdev_status(void *handle, struct rpmsd_coil_status *st)
{
	struct stimdev *d = handle;
	int fault = atomic_load(&d->fault), ret = 0;

	memset(st, 0, sizeof(*st));
	if (d->ttl) {
		ret = ttl_status(d->ttl, st);
	}
	st->temperature_c = stimdev_load_double(&d->temp_bits);
	/* ready only when the lines and the device both say so */
	st->ready = (d->ttl ? st->ready : true) && atomic_load(&d->dev_ready);
	if (fault) {
		st->fault = true;
		st->fault_code = fault;
	}
	return ret;
}

int stimdev_force_disarm(void *handle)
{
	struct stimdev *d = handle;

	atomic_store(&d->want_armed, false);
	return d->ttl ? ttl_force_disarm(d->ttl) : 0;
}

int stimdev_set_intensity(void *handle, double pct)
{
	struct stimdev *d = handle;

	if (!(pct >= 0.0) || pct > 110.0) {
		return -ERANGE;
	}
	/* the devices take whole per cent: the gate compares what it asked with this */
	atomic_store(&d->want_pct, (int)lround(pct));
	stimdev_kick(d);
	return 0;
}

int stimdev_confirmed_intensity(void *handle, double *pct)
{
	struct stimdev *d = handle;

	*pct = stimdev_load_double(&d->confirmed_bits);
	return 0;
}

size_t stimdev_alert_text(void *handle, char *buf, size_t len)
{
	struct stimdev *d = handle;
	size_t n = 0;

	/* the text is written once, before the code that makes it readable */
	if (len == 0) {
		return 0;
	}
	buf[0] = '\0';
	if (atomic_load(&d->fault)) {
		n = strnlen(d->fault_text, sizeof(d->fault_text));
		n = n < len - 1 ? n : len - 1;
		memcpy(buf, d->fault_text, n);
		buf[n] = '\0';
	}
	return n;
}

const struct rpmsd_coil_envelope *stimdev_envelope(void *handle)
{
	struct stimdev *d = handle;

	return d->drv->envelope ? d->drv->envelope(d->priv) : NULL;
}

void stimdev_close(void *handle)
{
	struct stimdev *d = handle;
	char err[STIMDEV_ERR_MAX];

	if (!d) {
		return;
	}
	if (d->ttl) {
		ttl_disarm(d->ttl);
	}
	if (d->started) {
		atomic_store(&d->stop, true);
		stimdev_kick(d);
		pthread_join(d->thread, NULL);
	}
	if (d->drv->arm(d->priv, d->tty, false, err, sizeof(err)) < 0) {
		stimdev_log(d, RPMSD_COIL_LOG_WARN, "could not disarm the device over the link "
			    "at close");
	}
	d->drv->close(d->priv, d->tty);
	tty_close(d->tty);
	ttl_close(d->ttl);
	close(d->wake_fd);
	free(d);
}
