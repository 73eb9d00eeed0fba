/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "magstim_proto.h"

/*
 * One row per command: its bytes and its reply length. The facts and the
 * assumptions behind the lengths are listed in magstim_proto.h; this
 * table is the one place that holds them (0 = "\@", given by the caller).
 */
struct magstim_proto_row {
	const char *bytes;
	int reply_len;
	const char *name;
};

static const struct magstim_proto_row magstim_proto_rows[MAGSTIM_PROTO_N_CMDS] = {
	[MAGSTIM_PROTO_REMOTE_ON] = { "Q@", 3, "Q@" },		/* notes */
	[MAGSTIM_PROTO_REMOTE_OFF] = { "R@", 3, "R@" },		/* assumed */
	[MAGSTIM_PROTO_ARM] = { "EB", 3, "EB" },		/* assumed */
	[MAGSTIM_PROTO_DISARM] = { "EA", 3, "EA" },		/* assumed */
	[MAGSTIM_PROTO_FIRE] = { "EH", 3, "EH" },		/* assumed */
	[MAGSTIM_PROTO_POWER] = { "@", 3, "@NNN" },		/* assumed */
	[MAGSTIM_PROTO_TEMPERATURE] = { "F@", 9, "F@" },	/* notes */
	[MAGSTIM_PROTO_ERROR_CODE] = { "I@", 6, "I@" },		/* assumed */
	[MAGSTIM_PROTO_SYSTEM_STATUS] = { "x@", 6, "x@" },	/* assumed */
	[MAGSTIM_PROTO_PARAMETERS] = { "\\@", 0, "\\@" },	/* notes: 21/22/24 */
};

/* The "F@" data: two temperatures of this many ASCII digits (assumed). */
#define MAGSTIM_PROTO_TEMP_DIGITS 3

static bool magstim_proto_cmd_ok(enum magstim_proto_cmd cmd)
{
	return (unsigned int)cmd < MAGSTIM_PROTO_N_CMDS;
}

uint8_t magstim_proto_checksum(const uint8_t *buf, size_t len)
{
	unsigned int sum = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		sum += buf[i];
	}
	return (uint8_t)(~sum & 0xFFu);
}

const char *magstim_proto_cmd_name(enum magstim_proto_cmd cmd)
{
	return magstim_proto_cmd_ok(cmd) ? magstim_proto_rows[cmd].name : "?";
}

/* Copy @n bytes to @buf and append their checksum. */
static int magstim_proto_put(const char *what, const uint8_t *bytes, size_t n, uint8_t *buf,
			     size_t size, char *err, size_t errlen)
{
	if (size < n + 1) {
		snprintf(err, errlen, "magstim %s: %zu bytes do not fit in a buffer of %zu",
			 what, n + 1, size);
		return -ENOSPC;
	}
	memcpy(buf, bytes, n);
	buf[n] = magstim_proto_checksum(bytes, n);
	return (int)(n + 1);
}

int magstim_proto_encode(enum magstim_proto_cmd cmd, uint8_t *buf, size_t size,
			 char *err, size_t errlen)
{
	if (!magstim_proto_cmd_ok(cmd)) {
		snprintf(err, errlen, "magstim: unknown command %d", (int)cmd);
		return -EINVAL;
	}
	if (cmd == MAGSTIM_PROTO_POWER) {
		snprintf(err, errlen, "magstim @NNN: a power needs magstim_proto_encode_power");
		return -EINVAL;
	}
	return magstim_proto_put(magstim_proto_rows[cmd].name,
				 (const uint8_t *)magstim_proto_rows[cmd].bytes, 2, buf, size,
				 err, errlen);
}

int magstim_proto_encode_power(unsigned int pct, bool enhanced, uint8_t *buf, size_t size,
			       char *err, size_t errlen)
{
	unsigned int max = enhanced ? MAGSTIM_PROTO_POWER_MAX_ENHANCED : MAGSTIM_PROTO_POWER_MAX;
	char bytes[5];

	if (pct > max) {
		snprintf(err, errlen, "magstim @NNN: power %u%% out of range (allowed: 0-%u%s)",
			 pct, max, enhanced ? " in enhanced mode" : ", 0-110 in enhanced mode");
		return -ERANGE;
	}
	snprintf(bytes, sizeof(bytes), "@%03u", pct);
	return magstim_proto_put("@NNN", (const uint8_t *)bytes, 4, buf, size, err, errlen);
}

int magstim_proto_encode_connect(const char *code, uint8_t *buf, size_t size,
				 char *err, size_t errlen)
{
	uint8_t bytes[1 + MAGSTIM_PROTO_CODE_MAX];
	size_t n, i;

	if (!code || !code[0]) {
		return magstim_proto_encode(MAGSTIM_PROTO_REMOTE_ON, buf, size, err, errlen);
	}
	n = strnlen(code, MAGSTIM_PROTO_CODE_MAX + 1);
	if (n > MAGSTIM_PROTO_CODE_MAX) {
		snprintf(err, errlen, "magstim connect: unlock code longer than %d characters",
			 MAGSTIM_PROTO_CODE_MAX);
		return -EINVAL;
	}
	/* The code is a secret of the rig: name its fault, never echo it. */
	for (i = 0; i < n; i++) {
		if (code[i] < 0x21 || code[i] > 0x7E) {
			snprintf(err, errlen, "magstim connect: unlock code character %zu is not "
				 "printable ASCII (allowed: 0x21-0x7E)", i + 1);
			return -EINVAL;
		}
	}
	bytes[0] = 'Q';
	memcpy(bytes + 1, code, n);
	return magstim_proto_put("connect", bytes, n + 1, buf, size, err, errlen);
}

int magstim_proto_reply_len(enum magstim_proto_cmd cmd, unsigned int params_len)
{
	if (!magstim_proto_cmd_ok(cmd)) {
		return -EINVAL;
	}
	if (cmd != MAGSTIM_PROTO_PARAMETERS) {
		return magstim_proto_rows[cmd].reply_len;
	}
	if (params_len != 21 && params_len != 22 && params_len != 24) {
		return -EINVAL;
	}
	return (int)params_len;
}

void magstim_proto_status_parse(uint8_t byte, struct magstim_proto_status *out)
{
	out->raw = byte;
	out->standby = byte & MAGSTIM_PROTO_ST_STANDBY;
	out->armed = byte & MAGSTIM_PROTO_ST_ARMED;
	out->ready = byte & MAGSTIM_PROTO_ST_READY;
	out->coil_present = byte & MAGSTIM_PROTO_ST_COIL_PRESENT;
	out->replace_coil = byte & MAGSTIM_PROTO_ST_REPLACE_COIL;
	out->error_present = byte & MAGSTIM_PROTO_ST_ERROR_PRESENT;
	out->error_type = byte & MAGSTIM_PROTO_ST_ERROR_TYPE;
	out->remote = byte & MAGSTIM_PROTO_ST_REMOTE;
}

/* Up to the first 8 bytes of a reply in hex, for messages. */
static void magstim_proto_hex(const uint8_t *buf, size_t len, char *out, size_t outlen)
{
	size_t i, used = 0;

	out[0] = '\0';
	for (i = 0; i < len && i < 8 && used + 4 < outlen; i++) {
		used += (size_t)snprintf(out + used, outlen - used, "%s%02X", i ? " " : "", buf[i]);
	}
	if (i < len && used + 4 < outlen) {
		snprintf(out + used, outlen - used, " ...");
	}
}

/* Three ASCII decimal digits, or -1. */
static int magstim_proto_digits(const uint8_t *p)
{
	int v = 0, i;

	for (i = 0; i < MAGSTIM_PROTO_TEMP_DIGITS; i++) {
		if (p[i] < '0' || p[i] > '9') {
			return -1;
		}
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

int magstim_proto_decode(enum magstim_proto_cmd cmd, unsigned int params_len,
			 const uint8_t *buf, size_t len, struct magstim_proto_reply *out,
			 char *err, size_t errlen)
{
	struct magstim_proto_reply r;
	const char *name;
	char heard[40];
	int want;

	if (!magstim_proto_cmd_ok(cmd)) {
		snprintf(err, errlen, "magstim: unknown command %d", (int)cmd);
		return -EINVAL;
	}
	name = magstim_proto_rows[cmd].name;
	want = magstim_proto_reply_len(cmd, params_len);
	if (want < 0) {
		snprintf(err, errlen, "magstim %s: parameter reply length %u (allowed: 21, 22, 24)",
			 name, params_len);
		return -EINVAL;
	}
	magstim_proto_hex(buf, len, heard, sizeof(heard));
	if (len == 0) {
		snprintf(err, errlen, "magstim %s: no reply", name);
		return -EMSGSIZE;
	}
	if (buf[0] == '?') {
		snprintf(err, errlen, "magstim %s: the unit calls the command invalid (heard: %s)",
			 name, heard);
		return -EOPNOTSUPP;
	}
	if (buf[0] != (uint8_t)magstim_proto_rows[cmd].bytes[0]) {
		snprintf(err, errlen, "magstim %s: reply does not echo '%c' (heard: %s)", name,
			 magstim_proto_rows[cmd].bytes[0], heard);
		return -EPROTO;
	}
	if (len >= 2 && buf[1] == '?') {
		snprintf(err, errlen, "magstim %s: the unit refused the data (heard: %s)", name,
			 heard);
		return -EINVAL;
	}
	if (len >= 2 && buf[1] == 'S') {
		snprintf(err, errlen, "magstim %s: the command conflicts with the unit's state "
			 "(heard: %s)", name, heard);
		return -EBUSY;
	}
	if (len != (size_t)want) {
		snprintf(err, errlen, "magstim %s: reply of %zu bytes, expected %d (heard: %s)",
			 name, len, want, heard);
		return -EMSGSIZE;
	}
	if (magstim_proto_checksum(buf, len - 1) != buf[len - 1]) {
		snprintf(err, errlen, "magstim %s: bad checksum %02X, expected %02X (heard: %s)",
			 name, buf[len - 1], magstim_proto_checksum(buf, len - 1), heard);
		return -EBADMSG;
	}
	memset(&r, 0, sizeof(r));
	r.cmd = cmd;
	magstim_proto_status_parse(buf[1], &r.status);
	r.data_len = len - 3;
	memcpy(r.data, buf + 2, r.data_len);
	r.temp_dc[0] = -1;
	r.temp_dc[1] = -1;
	if (cmd == MAGSTIM_PROTO_TEMPERATURE) {
		r.temp_dc[0] = magstim_proto_digits(r.data);
		r.temp_dc[1] = magstim_proto_digits(r.data + MAGSTIM_PROTO_TEMP_DIGITS);
		if (r.temp_dc[0] < 0 || r.temp_dc[1] < 0) {
			snprintf(err, errlen, "magstim %s: temperatures are not 2 x 3 decimal "
				 "digits (heard: %s)", name, heard);
			return -EBADMSG;
		}
	}
	*out = r;
	return 0;
}

unsigned int magstim_proto_settle_ms(unsigned int from_pct, unsigned int to_pct)
{
	if (to_pct > from_pct) {
		return (to_pct - from_pct) * MAGSTIM_PROTO_SETTLE_UP_MS_PER_PCT;
	}
	return (from_pct - to_pct) * MAGSTIM_PROTO_SETTLE_DOWN_MS_PER_PCT;
}
