/* SPDX-License-Identifier: MIT */
/*
 * MagVenture coil plugin (MagPro R30, X100): the device's serial protocol
 * (plugins/serial/magventure_proto.c) on the shared serial stimulator
 * core (plugins/stimdev), fired by the TTL trigger line.
 *
 * MagVenture acknowledges no write: every setting is confirmed by reading
 * the status back. The status is requested at each poll (about 2 Hz,
 * MagVenture has no keep-alive); the stream also carries frames nobody
 * asked for (one after each pulse with the realised di/dt), so replies
 * are read through a frame reader that resynchronises on FE ... FF and
 * skips what it does not wait for. The per-pulse di/dt is queued for the
 * host's pulse events (magventure_readback, the pulse_info op).
 *
 * Byte layouts the notes do not give (the status reply's field order, an
 * error byte after the amplitudes, the pulse report) are assumptions,
 * listed in docs/plugins-magventure.md: verify them on a real device.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rpmsd/coil.h>

#include "magventure_proto.h"
#include "stimdev.h"
#include "ttl.h"
#include "tty.h"

#define MAGVENTURE_ERR 256
/* Assumed: an error byte after amplitude B, when the reply carries one. */
#define MAGVENTURE_ST_ERROR 9
/* Assumed: the report after a pulse: 03, di/dt (A/µs, big-endian), amplitude, count. */
#define MAGVENTURE_PULSE_REPORT 0x03
#define MAGVENTURE_PULSE_REPORT_LEN 5
/* pulse reports read and not yet taken by a pulse that the ring holds */
#define MAGVENTURE_REPORTS 64

struct magventure {
	const struct rpmsd_coil_host *host;
	unsigned max_pps;
	const char *model;
	int timeout_ms;
	double cutoff_c;
	struct magventure_proto_reader *rd;
	/*
	 * Pulse reports, link thread -> stim thread (magventure_readback): a
	 * single-producer single-consumer ring of the device's pulse number
	 * and di/dt. Full, the newest report is dropped (counted).
	 */
	uint64_t report_pulse;		/* link thread: pulse number of the last report */
	int report_count;		/* link thread: its device counter, -1 none yet */
	uint64_t rep_pulse[MAGVENTURE_REPORTS];
	double rep_didt[MAGVENTURE_REPORTS];
	atomic_uint rep_head;		/* written by the link thread */
	atomic_uint rep_tail;		/* written by the stim thread */
	atomic_uint rep_dropped;
	struct rpmsd_coil_rate_cap cap;
	struct rpmsd_coil_envelope env;
};

static const struct rpmsd_coil_key magventure_keys[] = {
	TTL_KEYS,
	STIMDEV_KEYS,
	{ .name = "model", .type = RPMSD_COIL_KEY_STRING, .def = "r30", .unit = "",
	  .doc = "the unit: r30 (MagPro R30, up to 30 pulses/s) or x100 (MagPro X100, up to 100)" },
	{ .name = "max_pps", .type = RPMSD_COIL_KEY_INT, .def = "0", .min = 0, .max = 100,
	  .unit = "Hz",
	  .doc = "the unit's highest pulse rate with its options (0: the model's, 30 or 100)" },
	{ .name = "coil_cutoff_c", .type = RPMSD_COIL_KEY_DOUBLE, .def = "40", .min = 20,
	  .max = 60, .unit = "°C",
	  .doc = "the coil's temperature cut-off (not in our sources: check the coil's manual)" },
};

static int magventure_open(const struct rpmsd_coil_host *h, void **out, char *err, size_t len)
{
	struct magventure *m = calloc(1, sizeof(*m));
	const char *model;
	long long pps, timeout;
	int ret;

	if (!m) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	ret = h->get_string(h->ctx, "model", &model);
	ret = ret ? ret : h->get_int(h->ctx, "max_pps", &pps);
	ret = ret ? ret : h->get_int(h->ctx, "reply_timeout_ms", &timeout);
	ret = ret ? ret : h->get_double(h->ctx, "coil_cutoff_c", &m->cutoff_c);
	if (ret < 0) {
		snprintf(err, len, "cannot read the plugin's keys (%s)", strerror(-ret));
		goto err_free;
	}
	if (strcmp(model, "r30") == 0) {
		m->model = "MagPro R30";
		m->max_pps = 30;
	} else if (strcmp(model, "x100") == 0) {
		m->model = "MagPro X100";
		m->max_pps = 100;
	} else {
		snprintf(err, len, "key model: '%s' is not r30 or x100", model);
		ret = -EINVAL;
		goto err_free;
	}
	if (pps > 0) {
		if ((unsigned)pps > m->max_pps) {
			snprintf(err, len, "key max_pps: %lld is above the %s's %u", pps, m->model,
				 m->max_pps);
			ret = -EINVAL;
			goto err_free;
		}
		m->max_pps = (unsigned)pps;
	}
	m->timeout_ms = (int)timeout;
	m->report_count = -1;
	m->host = h;
	ret = magventure_proto_reader_create(&m->rd);
	if (ret < 0) {
		snprintf(err, len, "out of memory");
		goto err_free;
	}
	*out = m;
	return 0;

err_free:
	free(m);
	return ret;
}

static int64_t magventure_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A frame nobody waits for: a pulse report is kept, anything else skipped. */
static void magventure_aside(struct magventure *m, const struct magventure_proto_frame *f)
{
	unsigned head, count, skip;

	if (f->payload[0] != MAGVENTURE_PULSE_REPORT || f->len < MAGVENTURE_PULSE_REPORT_LEN) {
		return;
	}
	/*
	 * The device counts its pulses (mod 256): a report lost on the link
	 * shows as a jump, so the numbering stays with the device's. The first
	 * report after open is taken as pulse 1.
	 */
	count = f->payload[4];
	skip = m->report_count < 0 ? 1 : ((count - (unsigned)m->report_count) & 0xFF);
	m->report_pulse += skip ? skip : 1;
	m->report_count = (int)count;
	head = atomic_load_explicit(&m->rep_head, memory_order_relaxed);
	if (head - atomic_load_explicit(&m->rep_tail, memory_order_acquire) >= MAGVENTURE_REPORTS) {
		atomic_fetch_add(&m->rep_dropped, 1);
		return;
	}
	m->rep_pulse[head % MAGVENTURE_REPORTS] = m->report_pulse;
	m->rep_didt[head % MAGVENTURE_REPORTS] = (double)((unsigned)f->payload[1] << 8 |
							  f->payload[2]);
	atomic_store_explicit(&m->rep_head, head + 1, memory_order_release);
}

/* The stim thread's side of the report ring (stimdev_driver.readback). */
static bool magventure_readback(void *priv, uint64_t *pulse, double *didt)
{
	struct magventure *m = priv;
	unsigned tail = atomic_load_explicit(&m->rep_tail, memory_order_relaxed);

	if (tail == atomic_load_explicit(&m->rep_head, memory_order_acquire)) {
		return false;
	}
	*pulse = m->rep_pulse[tail % MAGVENTURE_REPORTS];
	*didt = m->rep_didt[tail % MAGVENTURE_REPORTS];
	atomic_store_explicit(&m->rep_tail, tail + 1, memory_order_release);
	return true;
}

static int magventure_send(struct magventure *m, struct tty *tty, const uint8_t *b, int n,
			   char *err, size_t len)
{
	char e[MAGVENTURE_ERR];
	int ret;

	if (n < 0) {
		return n;
	}
	ret = tty_write_all(tty, b, (size_t)n, m->timeout_ms, e, sizeof(e));
	if (ret < 0) {
		snprintf(err, len, "%s", e);
	}
	return ret;
}

/*
 * Ask for the status and read frames until its reply: anything else that
 * comes is set aside. No good frame at all in time is -ETIMEDOUT when
 * nothing came, and -EBADMSG when bytes came that made no frame (another
 * protocol, a wrong baud rate, a corrupt reply), with what was heard.
 */
static int magventure_status(struct magventure *m, struct tty *tty,
			     struct magventure_proto_status *s, int *error_bits, char *err,
			     size_t len)
{
	struct magventure_proto_frame f;
	struct magventure_proto_reader_stats before, after;
	uint8_t out[MAGVENTURE_PROTO_FRAME_MAX], in[64];
	char e[MAGVENTURE_ERR], hex[40] = "";
	int64_t deadline;
	size_t off, heard = 0, h;
	ssize_t got;
	int ret;

	ret = magventure_send(m, tty, out, magventure_proto_encode_status(out, sizeof(out), e,
									  sizeof(e)), err, len);
	if (ret < 0) {
		return ret;
	}
	magventure_proto_reader_stats(m->rd, &before);
	deadline = magventure_ms() + m->timeout_ms;
	for (;;) {
		int left = (int)(deadline - magventure_ms());

		if (left <= 0) {
			break;
		}
		got = tty_read(tty, in, sizeof(in), left, e, sizeof(e));
		if (got == -ETIMEDOUT) {
			break;
		}
		if (got < 0) {
			snprintf(err, len, "status: %s", e);
			return (int)got;
		}
		for (h = 0; h < (size_t)got && heard + h < 8; h++) {
			snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%s%02X",
				 heard + h ? " " : "", in[h]);
		}
		heard += (size_t)got;
		for (off = 0; off < (size_t)got;) {
			off += magventure_proto_reader_feed(m->rd, in + off, (size_t)got - off);
			while (magventure_proto_reader_next(m->rd, &f)) {
				if (f.payload[0] != MAGVENTURE_PROTO_CMD_STATUS) {
					magventure_aside(m, &f);
					continue;
				}
				ret = magventure_proto_decode_status(&f, s, e, sizeof(e));
				if (ret < 0) {
					snprintf(err, len, "status: %s", e);
					return -EBADMSG;
				}
				*error_bits = f.len > MAGVENTURE_ST_ERROR ?
					      f.payload[MAGVENTURE_ST_ERROR] : 0;
				return 0;
			}
		}
	}
	magventure_proto_reader_stats(m->rd, &after);
	if (heard == 0) {
		snprintf(err, len, "status: no reply within %d ms", m->timeout_ms);
		return -ETIMEDOUT;
	}
	snprintf(err, len, "status: %zu bytes heard in %d ms (%s%s) but no status frame (%llu "
		 "bytes dropped, %llu CRC errors)", heard, m->timeout_ms, hex,
		 heard > 8 ? " ..." : "",
		 (unsigned long long)(after.dropped_bytes - before.dropped_bytes),
		 (unsigned long long)(after.crc_errors - before.crc_errors));
	return -EBADMSG;
}

static void magventure_state(const struct magventure_proto_status *s, int error_bits,
			     struct stimdev_state *st)
{
	st->armed = s->enabled;
	st->ready = s->enabled;		/* no separate ready bit is known */
	st->remote = true;		/* no remote-control mode to lose */
	st->coil_present = s->coil_type != MAGVENTURE_PROTO_COIL_NONE;
	st->replace_coil = false;
	st->error = error_bits != 0;
	st->error_code = (unsigned)error_bits;
	st->power_pct = s->amplitude_a;
	st->temperature_c = s->coil_temp_c;
}

static int magventure_connect(void *priv, struct tty *tty, struct stimdev_state *st, char *err,
			      size_t len)
{
	struct magventure *m = priv;
	struct magventure_proto_status s;
	char e[MAGVENTURE_ERR];
	int bits, ret;

	magventure_proto_reader_reset(m->rd);
	ret = magventure_status(m, tty, &s, &bits, e, sizeof(e));
	if (ret == -ETIMEDOUT) {
		snprintf(err, len, "key tty: %s: no reply to a status request within %d ms (is the "
			 "unit on, the cable in its COM2, the baud rate 38400?)", tty_path(tty),
			 m->timeout_ms);
		return ret;
	}
	if (ret < 0) {
		snprintf(err, len, "key tty: %s: not a MagVenture answering: %s; check the key "
			 "plugin and the baud rate", tty_path(tty), e);
		return -EPROTO;
	}
	magventure_state(&s, bits, st);
	/* it may have been left enabled by the last user: nothing is armed until asked */
	return 0;
}

static int magventure_poll(void *priv, struct tty *tty, bool armed, bool full,
			   struct stimdev_state *st, char *err, size_t len)
{
	struct magventure *m = priv;
	struct magventure_proto_status s;
	int bits, ret;

	(void)armed;
	(void)full;	/* the one status reply carries temperature and amplitude */
	ret = magventure_status(m, tty, &s, &bits, err, len);
	if (ret == 0) {
		magventure_state(&s, bits, st);
	}
	return ret;
}

static int magventure_set_power(void *priv, struct tty *tty, unsigned pct, char *err,
				size_t len)
{
	uint8_t out[MAGVENTURE_PROTO_FRAME_MAX];

	return magventure_send(priv, tty, out, magventure_proto_encode_amplitude(pct, out,
		sizeof(out), err, len), err, len);
}

static unsigned magventure_settle(void *priv, unsigned from, unsigned to)
{
	(void)priv;
	(void)from;
	(void)to;
	return MAGVENTURE_PROTO_WRITE_SETTLE_MS;
}

static int magventure_arm(void *priv, struct tty *tty, bool on, char *err, size_t len)
{
	uint8_t out[MAGVENTURE_PROTO_FRAME_MAX];

	return magventure_send(priv, tty, out, magventure_proto_encode_enable(on, out,
		sizeof(out), err, len), err, len);
}

static int magventure_fire(void *priv, struct tty *tty, char *err, size_t len)
{
	uint8_t out[MAGVENTURE_PROTO_FRAME_MAX];

	return magventure_send(priv, tty, out, magventure_proto_encode_fire(out, sizeof(out),
		err, len), err, len);
}

static const struct rpmsd_coil_envelope *magventure_envelope(void *priv)
{
	struct magventure *m = priv;

	m->cap.max_output_pct = 100.0;
	m->cap.max_rate_hz = m->max_pps;
	m->env.struct_size = sizeof(m->env);
	m->env.model = m->model;
	m->env.max_output_pct = 100.0;
	m->env.rate_caps = &m->cap;
	m->env.n_rate_caps = 1;
	m->env.coil_cutoff_c = m->cutoff_c;
	return &m->env;
}

static void magventure_close(void *priv, struct tty *tty)
{
	struct magventure *m = priv;

	(void)tty;
	if (m) {
		if (atomic_load(&m->rep_dropped)) {
			m->host->log(m->host->ctx, RPMSD_COIL_LOG_WARN,
				     "magventure: %u pulse reports (di/dt) not recorded: more than "
				     "%d waited for a pulse to carry them", atomic_load(&m->rep_dropped),
				     MAGVENTURE_REPORTS);
		}
		magventure_proto_reader_destroy(m->rd);
	}
	free(m);
}

static const struct stimdev_driver magventure_driver = {
	.name = "magventure",
	.baud = MAGVENTURE_PROTO_BAUD,
	.poll_disarmed_ms = MAGVENTURE_PROTO_POLL_MS,
	.poll_armed_ms = MAGVENTURE_PROTO_POLL_MS,
	.open = magventure_open,
	.connect = magventure_connect,
	.poll = magventure_poll,
	.set_power = magventure_set_power,
	.settle_ms = magventure_settle,
	.arm = magventure_arm,
	.fire = magventure_fire,
	.envelope = magventure_envelope,
	.readback = magventure_readback,
	.close = magventure_close,
};

static int magventure_plugin_open(const struct rpmsd_coil_host *host, void **out)
{
	return stimdev_open(&magventure_driver, host, out);
}

static const struct rpmsd_coil_descriptor magventure_desc = {
	.abi_major = RPMSD_COIL_ABI_MAJOR,
	.abi_minor = RPMSD_COIL_ABI_MINOR,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
	.name = "magventure",
	.description = "MagVenture MagPro R30, X100: serial control confirmed by read-back, "
		       "TTL trigger",
	.keys = magventure_keys,
	.n_keys = sizeof(magventure_keys) / sizeof(magventure_keys[0]),
	.ops = STIMDEV_OPS(magventure_plugin_open),
};

RPMSD_COIL_PLUGIN(&magventure_desc)
