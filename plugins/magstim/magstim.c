/* SPDX-License-Identifier: MIT */
/*
 * Magstim coil plugin (200², BiStim², Rapid²): the device's serial
 * protocol (plugins/serial/magstim_proto.c) on the shared serial
 * stimulator core (plugins/stimdev), fired by the TTL trigger line.
 *
 * What it does on the link, all on the core's link thread:
 *  - connect: remote control on (`Q@`, or `Q` + the unlock code on
 *    software version 9 and later), then the status it answers with;
 *  - keep-alive: `Q@` (`x@` with an unlock code) at least every 5 s
 *    disarmed and 0.5 s armed, the status byte of each reply judged;
 *  - every temperature_period_ms: the parameters (`\@`, whose first three
 *    digits are the output) and the coil temperature (`F@`, the hotter of
 *    its two windings);
 *  - power `@NNN`, confirmed by reading the parameters back after the
 *    settle time (raising 10 ms per %, lowering 100 ms per %);
 *  - arm `EB` / disarm `EA`; fire `EH` only with fire = serial.
 * Reply layouts the notes do not give are the codec's assumptions
 * (magstim_proto.h); docs/plugins-magstim.md lists them.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rpmsd/coil.h>

#include "magstim_proto.h"
#include "stimdev.h"
#include "ttl.h"
#include "tty.h"

#define MAGSTIM_ERR 256

enum magstim_model {
	MAGSTIM_200,
	MAGSTIM_BISTIM,
	MAGSTIM_RAPID2,
};

struct magstim {
	enum magstim_model model;
	char code[MAGSTIM_PROTO_CODE_MAX + 1];	/* unlock code, "" none */
	bool enhanced;
	bool rtms;
	unsigned params_len;
	int timeout_ms;
	double single_hz;
	const struct magstim_rapid *rapid;
	struct rpmsd_coil_rate_cap caps[101];
	struct rpmsd_coil_energy_point energy[101];
	struct rpmsd_coil_envelope env;
};

/*
 * The Rapid²'s highest train rate by output, per mains voltage and
 * variant (standard, Super, Super Plus), and the energy a pulse takes by
 * output: facts from MagPy's rapid_system_info.yaml (nicolasmcnair/magpy),
 * Hz and J at 0..100 %. The energy model using them (sustained 1050 W) is
 * MagPy's, not a Magstim document.
 */
struct magstim_rapid {
	const char *name;
	unsigned mains_v;
	const char *variant;
	unsigned char hz[101];
};

static const struct magstim_rapid magstim_rapids[] = {
	{ "Rapid2 240 V standard", 240, "standard", {
		50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
		50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 46, 45, 44, 42, 41, 41, 39, 39, 38,
		37, 36, 34, 33, 33, 33, 33, 33, 32, 31, 30, 30, 29, 29, 28, 28, 27, 27, 26, 26,
		25, 25, 24, 24, 23, 23, 22, 22, 21, 21, 20, 20, 20, 20, 19, 19, 19, 19, 19, 18,
		18, 18, 18, 18, 18, 17, 17, 17, 17, 17, 17, 17, 16, 16, 16, 16, 16, 16, 15, 15,
		15 } },
	{ "Rapid2 240 V Super", 240, "super", {
		100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
		100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 98,
		95, 93, 90, 88, 85, 83, 80, 78, 75, 73, 70, 68, 65, 63, 60, 58, 55, 53, 50, 50,
		49, 49, 48, 48, 47, 47, 46, 46, 45, 45, 44, 44, 43, 43, 42, 42, 41, 41, 40, 40,
		39, 39, 38, 38, 37, 37, 36, 36, 35, 35, 34, 34, 33, 33, 32, 32, 31, 31, 30, 30,
		29, 29, 28, 28, 27, 27, 26, 26, 25 } },
	{ "Rapid2 240 V Super Plus", 240, "superplus", {
		100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
		100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
		100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
		100, 98, 97, 95, 93, 91, 88, 88, 87, 85, 84, 82, 80, 79, 77, 74, 74, 74, 74, 71,
		70, 69, 68, 68, 66, 65, 62, 62, 62, 60, 59, 58, 57, 57, 56, 55, 55, 53, 52, 51,
		50, 50, 49, 48, 47, 46, 46, 45, 44, 43, 42, 42, 41 } },
	{ "Rapid2 115 V standard", 115, "standard", {
		36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36,
		36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 35, 35, 34, 33, 32, 32, 31, 30, 29,
		28, 28, 27, 26, 26, 25, 25, 24, 24, 23, 23, 22, 22, 21, 21, 21, 20, 20, 19, 19,
		19, 18, 18, 18, 18, 17, 17, 17, 16, 16, 16, 16, 16, 15, 15, 15, 15, 14, 14, 14,
		14, 14, 13, 13, 13, 13, 13, 12, 12, 12, 12, 12, 12, 12, 12, 11, 11, 11, 11, 11,
		11 } },
	{ "Rapid2 115 V Super", 115, "super", {
		60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60,
		60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 59, 57,
		55, 54, 53, 52, 51, 50, 49, 47, 46, 45, 44, 43, 42, 42, 41, 40, 40, 39, 38, 38,
		37, 36, 36, 35, 35, 34, 34, 33, 33, 32, 32, 31, 31, 30, 30, 29, 29, 28, 28, 28,
		27, 27, 27, 26, 26, 26, 26, 25, 25, 25, 24, 24, 24, 24, 23, 23, 23, 22, 22, 22,
		22 } },
	{ "Rapid2 115 V Super Plus", 115, "superplus", {
		60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60,
		60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60,
		60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 58, 56, 56, 54, 53, 52, 51, 50, 49, 48,
		47, 46, 46, 45, 44, 43, 43, 42, 41, 40, 40, 39, 39, 38, 37, 37, 36, 36, 35, 35,
		34, 34, 33, 33, 33, 32, 32, 31, 31, 30, 30, 30, 29, 29, 28, 28, 28, 27, 27, 27,
		25 } },
};

static const double magstim_joules[101] = {
	0.0, 0.0, 0.1, 0.2, 0.4, 0.6, 0.9, 1.2, 1.6, 2.0, 2.5, 3.0, 3.6, 4.3, 4.9, 5.7, 6.4,
	7.3, 8.2, 9.1, 10.1, 11.1, 12.2, 13.3, 14.5, 15.7, 17.0, 18.4, 19.7, 21.2, 22.7, 24.2,
	25.8, 27.4, 29.1, 30.8, 32.6, 34.5, 36.4, 38.3, 40.3, 42.3, 44.4, 46.6, 48.8, 51.0,
	53.3, 55.6, 58.0, 60.5, 63.0, 65.5, 68.1, 70.7, 73.4, 76.2, 79.0, 81.8, 84.7, 87.7,
	90.7, 93.7, 96.8, 100.0, 103.2, 106.4, 109.7, 113.0, 116.4, 119.9, 123.4, 126.9, 130.5,
	134.2, 137.9, 141.7, 145.5, 149.3, 153.2, 157.2, 161.2, 165.2, 169.3, 173.5, 177.7,
	181.9, 186.3, 190.6, 195.0, 199.5, 204.0, 208.5, 213.1, 217.8, 222.5, 227.3, 232.1,
	236.9, 241.9, 246.8, 252.0,
};

static const struct rpmsd_coil_key magstim_keys[] = {
	TTL_KEYS,
	STIMDEV_KEYS,
	{ .name = "model", .type = RPMSD_COIL_KEY_STRING, .def = "rapid2", .unit = "",
	  .doc = "the unit: 200 (Magstim 200²), bistim (BiStim²) or rapid2 (Rapid²)" },
	{ .name = "mains_v", .type = RPMSD_COIL_KEY_INT, .def = "240", .min = 115, .max = 240,
	  .unit = "V", .doc = "rapid2: the unit's mains supply, 240 or 115 (its rate caps differ)" },
	{ .name = "variant", .type = RPMSD_COIL_KEY_STRING, .def = "standard", .unit = "",
	  .doc = "rapid2: standard, super or superplus (its rate caps differ)" },
	{ .name = "unlock_code", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "software version 9 and later: the unit's unlock code (empty: none)" },
	{ .name = "rtms", .type = RPMSD_COIL_KEY_BOOL, .def = "true", .unit = "",
	  .doc = "rapid2: the unit is in rTMS (repetitive) mode, set on its panel; false: single pulses at 1 Hz at most" },
	{ .name = "enhanced", .type = RPMSD_COIL_KEY_BOOL, .def = "false", .unit = "",
	  .doc = "the unit is in enhanced-power mode (outputs up to 110 %)" },
	{ .name = "params_len", .type = RPMSD_COIL_KEY_INT, .def = "21", .min = 21, .max = 24,
	  .unit = "bytes",
	  .doc = "length of the unit's parameter reply (21, 22 or 24 by software version)" },
	{ .name = "single_pulse_max_hz", .type = RPMSD_COIL_KEY_DOUBLE, .def = "0.25",
	  .min = 0.01, .max = 1.0, .unit = "Hz",
	  .doc = "200 and bistim: highest single-pulse rate (not in our sources: check the manual)" },
};

static int magstim_open(const struct rpmsd_coil_host *h, void **out, char *err, size_t len)
{
	struct magstim *m = calloc(1, sizeof(*m));
	const char *model, *variant, *code;
	long long mains, plen, timeout;
	bool enh;
	size_t i;
	int ret;

	if (!m) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	ret = h->get_string(h->ctx, "model", &model);
	ret = ret ? ret : h->get_string(h->ctx, "variant", &variant);
	ret = ret ? ret : h->get_string(h->ctx, "unlock_code", &code);
	ret = ret ? ret : h->get_int(h->ctx, "mains_v", &mains);
	ret = ret ? ret : h->get_int(h->ctx, "params_len", &plen);
	ret = ret ? ret : h->get_int(h->ctx, "reply_timeout_ms", &timeout);
	ret = ret ? ret : h->get_bool(h->ctx, "enhanced", &enh);
	ret = ret ? ret : h->get_bool(h->ctx, "rtms", &m->rtms);
	ret = ret ? ret : h->get_double(h->ctx, "single_pulse_max_hz", &m->single_hz);
	if (ret < 0) {
		snprintf(err, len, "cannot read the plugin's keys (%s)", strerror(-ret));
		goto err_free;
	}
	ret = -EINVAL;
	if (strcmp(model, "200") == 0) {
		m->model = MAGSTIM_200;
	} else if (strcmp(model, "bistim") == 0) {
		m->model = MAGSTIM_BISTIM;
	} else if (strcmp(model, "rapid2") == 0) {
		m->model = MAGSTIM_RAPID2;
	} else {
		snprintf(err, len, "key model: '%s' is not 200, bistim or rapid2", model);
		goto err_free;
	}
	if (plen != 21 && plen != 22 && plen != 24) {
		snprintf(err, len, "key params_len: %lld is not 21, 22 or 24", plen);
		goto err_free;
	}
	if (strlen(code) > MAGSTIM_PROTO_CODE_MAX) {
		snprintf(err, len, "key unlock_code: longer than %d characters",
			 MAGSTIM_PROTO_CODE_MAX);
		goto err_free;
	}
	if (m->model == MAGSTIM_RAPID2) {
		for (i = 0; i < sizeof(magstim_rapids) / sizeof(magstim_rapids[0]); i++) {
			if (magstim_rapids[i].mains_v == (unsigned)mains &&
			    strcmp(magstim_rapids[i].variant, variant) == 0) {
				m->rapid = &magstim_rapids[i];
			}
		}
		if (!m->rapid) {
			snprintf(err, len, "keys mains_v and variant: no Rapid2 of %lld V '%s' "
				 "(mains_v 240 or 115; variant standard, super or superplus)",
				 mains, variant);
			goto err_free;
		}
	}
	snprintf(m->code, sizeof(m->code), "%s", code);
	m->enhanced = enh;
	m->params_len = (unsigned)plen;
	m->timeout_ms = (int)timeout;
	*out = m;
	return 0;

err_free:
	free(m);
	return ret;
}

/* The bytes heard, in hex, for an error that says what came back. */
static void magstim_hex(const uint8_t *b, size_t n, char *out, size_t len)
{
	size_t i, used = 0;

	out[0] = '\0';
	for (i = 0; i < n && i < 12 && used + 4 < len; i++) {
		used += (size_t)snprintf(out + used, len - used, "%s%02X", i ? " " : "", b[i]);
	}
	if (n == 0) {
		snprintf(out, len, "nothing");
	}
}

/*
 * One exchange: send @cmd's bytes, read its reply, decode it. What was
 * heard is named in @err when the reply is wrong: another protocol or a
 * wrong baud rate shows as bytes that are not the echo.
 */
static int magstim_xfer(struct magstim *m, struct tty *tty, enum magstim_proto_cmd cmd,
			const uint8_t *out, size_t out_len, struct magstim_proto_reply *rep,
			char *err, size_t len)
{
	uint8_t in[MAGSTIM_PROTO_REPLY_MAX];
	char e[MAGSTIM_ERR], hex[64];
	int want = magstim_proto_reply_len(cmd, m->params_len);
	ssize_t got;
	int ret;

	tty_flush_input(tty);
	ret = tty_write_all(tty, out, out_len, m->timeout_ms, e, sizeof(e));
	if (ret < 0) {
		snprintf(err, len, "%s: %s", magstim_proto_cmd_name(cmd), e);
		return ret;
	}
	got = tty_read_n(tty, in, (size_t)want, m->timeout_ms, e, sizeof(e));
	if (got < 0) {
		snprintf(err, len, "%s: %s", magstim_proto_cmd_name(cmd), e);
		return (int)got;
	}
	if (got == 0) {
		snprintf(err, len, "%s: no reply within %d ms", magstim_proto_cmd_name(cmd),
			 m->timeout_ms);
		return -ETIMEDOUT;
	}
	ret = magstim_proto_decode(cmd, m->params_len, in, (size_t)got, rep, e, sizeof(e));
	if (ret < 0) {
		magstim_hex(in, (size_t)got, hex, sizeof(hex));
		snprintf(err, len, "%s (heard %s)", e, hex);
		/* a short or mangled reply is a corrupt one; the rest say what they are */
		return ret == -EMSGSIZE ? -EBADMSG : ret;
	}
	return 0;
}

static int magstim_cmd(struct magstim *m, struct tty *tty, enum magstim_proto_cmd cmd,
		       struct magstim_proto_reply *rep, char *err, size_t len)
{
	uint8_t out[MAGSTIM_PROTO_CMD_MAX];
	int n = magstim_proto_encode(cmd, out, sizeof(out), err, len);

	if (n < 0) {
		return n;
	}
	return magstim_xfer(m, tty, cmd, out, (size_t)n, rep, err, len);
}

static void magstim_state(const struct magstim_proto_status *s, struct stimdev_state *st)
{
	st->armed = s->armed;
	st->ready = s->ready;
	st->remote = s->remote;
	st->coil_present = s->coil_present;
	st->replace_coil = s->replace_coil;
	st->error = s->error_present;
}

/* The output in the parameters reply: its first three digits. */
static int magstim_power_of(const struct magstim_proto_reply *rep, double *pct)
{
	unsigned v = 0;
	size_t i;

	if (rep->data_len < 3) {
		return -EBADMSG;
	}
	for (i = 0; i < 3; i++) {
		if (rep->data[i] < '0' || rep->data[i] > '9') {
			return -EBADMSG;
		}
		v = v * 10 + (unsigned)(rep->data[i] - '0');
	}
	*pct = v;
	return 0;
}

static int magstim_connect(void *priv, struct tty *tty, struct stimdev_state *st, char *err,
			   size_t len)
{
	struct magstim *m = priv;
	struct magstim_proto_reply rep;
	uint8_t out[MAGSTIM_PROTO_CMD_MAX];
	char e[MAGSTIM_ERR];
	int n, ret;

	if (m->code[0]) {
		n = magstim_proto_encode_connect(m->code, out, sizeof(out), e, sizeof(e));
	} else {
		n = magstim_proto_encode(MAGSTIM_PROTO_REMOTE_ON, out, sizeof(out), e, sizeof(e));
	}
	if (n < 0) {
		snprintf(err, len, "key unlock_code: %s", e);
		return n;
	}
	ret = magstim_xfer(m, tty, MAGSTIM_PROTO_REMOTE_ON, out, (size_t)n, &rep, e, sizeof(e));
	if (ret == -ETIMEDOUT) {
		snprintf(err, len, "key tty: %s: no reply to remote control on within %d ms (is "
			 "the unit on, the cable in its serial port, the baud rate 9600?)",
			 tty_path(tty), m->timeout_ms);
		return ret;
	}
	if (ret == -EBUSY && !m->code[0]) {
		snprintf(err, len, "key unlock_code: the unit refused remote control (%s): it may "
			 "need its unlock code", e);
		return -EPROTO;
	}
	if (ret < 0) {
		/* FE starts every MagVenture frame */
		snprintf(err, len, "key tty: %s: not a Magstim answering (%s)%s; check the key "
			 "plugin and the baud rate", tty_path(tty), e,
			 strstr(e, "heard FE") ? ": FE starts a MagVenture frame" : "");
		return ret == -EBADMSG || ret == -EOPNOTSUPP ? -EPROTO : ret;
	}
	magstim_state(&rep.status, st);
	st->power_pct = NAN;
	st->temperature_c = NAN;
	if (!rep.status.remote) {
		snprintf(err, len, "key tty: %s: the unit answered but did not take remote "
			 "control (status 0x%02X)", tty_path(tty), rep.status.raw);
		return -EPROTO;
	}
	return 0;
}

static int magstim_poll(void *priv, struct tty *tty, bool armed, bool full,
			struct stimdev_state *st, char *err, size_t len)
{
	struct magstim *m = priv;
	struct magstim_proto_reply rep;
	enum magstim_proto_cmd keep = m->code[0] ? MAGSTIM_PROTO_SYSTEM_STATUS :
						   MAGSTIM_PROTO_REMOTE_ON;
	int ret;

	(void)armed;
	ret = magstim_cmd(m, tty, full ? MAGSTIM_PROTO_PARAMETERS : keep, &rep, err, len);
	if (ret < 0) {
		return ret;
	}
	magstim_state(&rep.status, st);
	if (!full) {
		return 0;
	}
	ret = magstim_power_of(&rep, &st->power_pct);
	if (ret < 0) {
		snprintf(err, len, "parameters: no output in the reply");
		return ret;
	}
	ret = magstim_cmd(m, tty, MAGSTIM_PROTO_TEMPERATURE, &rep, err, len);
	if (ret < 0) {
		return ret;
	}
	if (rep.temp_dc[0] >= 0) {
		int hot = rep.temp_dc[1] > rep.temp_dc[0] ? rep.temp_dc[1] : rep.temp_dc[0];

		st->temperature_c = hot / 10.0;
	}
	if (rep.status.error_present) {
		if (magstim_cmd(m, tty, MAGSTIM_PROTO_ERROR_CODE, &rep, err, len) == 0 &&
		    rep.data_len >= 3) {
			st->error_code = (unsigned)strtoul((const char *)rep.data, NULL, 10);
		}
	}
	return 0;
}

static int magstim_set_power(void *priv, struct tty *tty, unsigned pct, char *err, size_t len)
{
	struct magstim *m = priv;
	struct magstim_proto_reply rep;
	uint8_t out[MAGSTIM_PROTO_CMD_MAX];
	int n = magstim_proto_encode_power(pct, m->enhanced, out, sizeof(out), err, len);

	if (n < 0) {
		return n;
	}
	return magstim_xfer(m, tty, MAGSTIM_PROTO_POWER, out, (size_t)n, &rep, err, len);
}

static unsigned magstim_settle(void *priv, unsigned from, unsigned to)
{
	(void)priv;
	return magstim_proto_settle_ms(from, to);
}

static int magstim_arm(void *priv, struct tty *tty, bool on, char *err, size_t len)
{
	struct magstim_proto_reply rep;

	return magstim_cmd(priv, tty, on ? MAGSTIM_PROTO_ARM : MAGSTIM_PROTO_DISARM, &rep, err,
			   len);
}

static int magstim_fire(void *priv, struct tty *tty, char *err, size_t len)
{
	struct magstim_proto_reply rep;

	return magstim_cmd(priv, tty, MAGSTIM_PROTO_FIRE, &rep, err, len);
}

/*
 * The envelope: a Rapid²'s rate caps as steps (merged where the rate does
 * not change), its 500 ms between trains and 1 Hz single pulses, and
 * MagPy's energy model; a 200² or BiStim² fires single pulses only.
 */
static const struct rpmsd_coil_envelope *magstim_envelope(void *priv)
{
	struct magstim *m = priv;
	size_t n = 0, i;

	m->env.struct_size = sizeof(m->env);
	m->env.max_output_pct = m->enhanced ? MAGSTIM_PROTO_POWER_MAX_ENHANCED : 100.0;
	m->env.coil_cutoff_c = MAGSTIM_PROTO_TEMP_CUTOFF_DC / 10.0;
	if (!m->rapid || !m->rtms) {
		m->env.model = m->rapid ? m->rapid->name :
			       m->model == MAGSTIM_200 ? "Magstim 200" : "Magstim BiStim";
		if (m->rapid) {
			/* a Rapid2 in single-pulse mode: 1 Hz (the notes), no trains */
			m->single_hz = 1.0;
		}
		m->env.single_pulse_max_hz = m->single_hz;
		/* no trains at all: the rate cap is a single step at the single-pulse rate */
		m->caps[0].max_output_pct = m->env.max_output_pct;
		m->caps[0].max_rate_hz = m->single_hz;
		m->env.rate_caps = m->caps;
		m->env.n_rate_caps = 1;
		return &m->env;
	}
	m->env.model = m->rapid->name;
	for (i = 0; i <= 100; i++) {
		if (i == 100 || m->rapid->hz[i + 1] != m->rapid->hz[i]) {
			m->caps[n].max_output_pct = (double)i;
			m->caps[n].max_rate_hz = m->rapid->hz[i];
			n++;
		}
	}
	m->env.rate_caps = m->caps;
	m->env.n_rate_caps = n;
	m->env.min_train_gap_ms = 500.0;
	m->env.single_pulse_max_hz = 1.0;
	for (i = 0; i <= 100; i++) {
		m->energy[i].output_pct = (double)i;
		m->energy[i].joules = magstim_joules[i];
	}
	m->env.energy = m->energy;
	m->env.n_energy = 101;
	m->env.sustained_power_w = 1050.0;
	return &m->env;
}

static void magstim_close(void *priv, struct tty *tty)
{
	struct magstim *m = priv;
	struct magstim_proto_reply rep;
	char err[MAGSTIM_ERR];

	if (m && tty) {
		(void)magstim_cmd(m, tty, MAGSTIM_PROTO_REMOTE_OFF, &rep, err, sizeof(err));
	}
	free(m);
}

static const struct stimdev_driver magstim_driver = {
	.name = "magstim",
	.baud = MAGSTIM_PROTO_BAUD,
	.poll_disarmed_ms = 1000,
	.poll_armed_ms = 400,
	.open = magstim_open,
	.connect = magstim_connect,
	.poll = magstim_poll,
	.set_power = magstim_set_power,
	.settle_ms = magstim_settle,
	.arm = magstim_arm,
	.fire = magstim_fire,
	.envelope = magstim_envelope,
	.close = magstim_close,
};

static int magstim_plugin_open(const struct rpmsd_coil_host *host, void **out)
{
	return stimdev_open(&magstim_driver, host, out);
}

static const struct rpmsd_coil_descriptor magstim_desc = {
	.abi_major = RPMSD_COIL_ABI_MAJOR,
	.abi_minor = RPMSD_COIL_ABI_MINOR,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
	.name = "magstim",
	.description = "Magstim 200², BiStim², Rapid²: serial control verified by read-back, "
		       "TTL trigger",
	.keys = magstim_keys,
	.n_keys = sizeof(magstim_keys) / sizeof(magstim_keys[0]),
	.ops = STIMDEV_OPS(magstim_plugin_open),
};

RPMSD_COIL_PLUGIN(&magstim_desc)
