/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magventure_proto.h"

/*
 * Twice the longest frame: after next() has taken what it can, less than
 * one frame is left, so feed() always has room for a whole one.
 */
#define MAGVENTURE_PROTO_READER_CAP (2 * MAGVENTURE_PROTO_FRAME_MAX)

struct magventure_proto_reader {
	uint8_t buf[MAGVENTURE_PROTO_READER_CAP];
	size_t n;
	bool lost;		/* bytes dropped since the last good frame */
	struct magventure_proto_reader_stats stats;
};

uint8_t magventure_proto_crc8(const uint8_t *buf, size_t len)
{
	uint8_t crc = 0;
	size_t i;
	int bit;

	for (i = 0; i < len; i++) {
		crc ^= buf[i];
		for (bit = 0; bit < 8; bit++) {
			crc = (crc & 1u) ? (uint8_t)((crc >> 1) ^ 0x8Cu) : (uint8_t)(crc >> 1);
		}
	}
	return crc;
}

int magventure_proto_frame_encode(const uint8_t *payload, size_t len, uint8_t *buf,
				  size_t size, char *err, size_t errlen)
{
	if (len == 0 || len > MAGVENTURE_PROTO_PAYLOAD_MAX) {
		snprintf(err, errlen, "magventure: payload of %zu bytes (allowed: 1-%d)", len,
			 MAGVENTURE_PROTO_PAYLOAD_MAX);
		return -EINVAL;
	}
	if (size < len + 4) {
		snprintf(err, errlen, "magventure: a frame of %zu bytes does not fit in %zu",
			 len + 4, size);
		return -ENOSPC;
	}
	buf[0] = MAGVENTURE_PROTO_START;
	buf[1] = (uint8_t)len;
	memmove(buf + 2, payload, len);
	buf[2 + len] = magventure_proto_crc8(buf + 2, len);
	buf[3 + len] = MAGVENTURE_PROTO_END;
	return (int)(len + 4);
}

int magventure_proto_encode_status(uint8_t *buf, size_t size, char *err, size_t errlen)
{
	const uint8_t p[] = { MAGVENTURE_PROTO_CMD_STATUS };

	return magventure_proto_frame_encode(p, sizeof(p), buf, size, err, errlen);
}

int magventure_proto_encode_ext_status(uint8_t *buf, size_t size, char *err, size_t errlen)
{
	const uint8_t p[] = { MAGVENTURE_PROTO_CMD_EXT_STATUS };

	return magventure_proto_frame_encode(p, sizeof(p), buf, size, err, errlen);
}

int magventure_proto_encode_amplitude(unsigned int pct, uint8_t *buf, size_t size,
				      char *err, size_t errlen)
{
	uint8_t p[2] = { MAGVENTURE_PROTO_CMD_AMPLITUDE, 0 };

	if (pct > MAGVENTURE_PROTO_AMPLITUDE_MAX) {
		snprintf(err, errlen, "magventure amplitude: %u%% out of range (allowed: 0-%d)",
			 pct, MAGVENTURE_PROTO_AMPLITUDE_MAX);
		return -ERANGE;
	}
	p[1] = (uint8_t)pct;
	return magventure_proto_frame_encode(p, sizeof(p), buf, size, err, errlen);
}

int magventure_proto_encode_enable(bool on, uint8_t *buf, size_t size, char *err,
				   size_t errlen)
{
	const uint8_t p[2] = { MAGVENTURE_PROTO_CMD_ENABLE, on ? 1 : 0 };

	return magventure_proto_frame_encode(p, sizeof(p), buf, size, err, errlen);
}

int magventure_proto_encode_fire(uint8_t *buf, size_t size, char *err, size_t errlen)
{
	const uint8_t p[2] = { MAGVENTURE_PROTO_CMD_FIRE, 1 };

	return magventure_proto_frame_encode(p, sizeof(p), buf, size, err, errlen);
}

int magventure_proto_decode_status(const struct magventure_proto_frame *f,
				   struct magventure_proto_status *out, char *err, size_t errlen)
{
	struct magventure_proto_status s;
	const uint8_t *p = f->payload;
	uint8_t mode;

	if (f->len < 1 || p[MAGVENTURE_PROTO_ST_CMD] != MAGVENTURE_PROTO_CMD_STATUS) {
		snprintf(err, errlen, "magventure status: frame is command 0x%02X, not 0x%02X",
			 f->len ? p[0] : 0u, MAGVENTURE_PROTO_CMD_STATUS);
		return -EPROTO;
	}
	if (f->len < MAGVENTURE_PROTO_ST_LEN) {
		snprintf(err, errlen, "magventure status: %zu bytes, expected at least %d",
			 f->len, MAGVENTURE_PROTO_ST_LEN);
		return -EMSGSIZE;
	}
	mode = p[MAGVENTURE_PROTO_ST_MODE];
	s.mode = mode & MAGVENTURE_PROTO_MODE_MODE_MASK;
	s.waveform = (mode >> MAGVENTURE_PROTO_MODE_WAVEFORM_SHIFT) &
		     MAGVENTURE_PROTO_MODE_WAVEFORM_MASK;
	s.enabled = mode & MAGVENTURE_PROTO_MODE_ENABLED;
	s.model = (mode >> MAGVENTURE_PROTO_MODE_MODEL_SHIFT) & MAGVENTURE_PROTO_MODE_MODEL_MASK;
	s.serial = (uint32_t)p[MAGVENTURE_PROTO_ST_SERIAL] << 16 |
		   (uint32_t)p[MAGVENTURE_PROTO_ST_SERIAL + 1] << 8 |
		   (uint32_t)p[MAGVENTURE_PROTO_ST_SERIAL + 2];
	s.coil_temp_c = p[MAGVENTURE_PROTO_ST_COIL_TEMP];
	s.coil_type = p[MAGVENTURE_PROTO_ST_COIL_TYPE];
	s.amplitude_a = p[MAGVENTURE_PROTO_ST_AMPLITUDE_A];
	s.amplitude_b = p[MAGVENTURE_PROTO_ST_AMPLITUDE_B];
	if (s.amplitude_a > MAGVENTURE_PROTO_AMPLITUDE_MAX ||
	    s.amplitude_b > MAGVENTURE_PROTO_AMPLITUDE_MAX) {
		snprintf(err, errlen, "magventure status: amplitude A %u%% / B %u%% over %d%%: "
			 "not a status layout this reader knows", s.amplitude_a, s.amplitude_b,
			 MAGVENTURE_PROTO_AMPLITUDE_MAX);
		return -EBADMSG;
	}
	*out = s;
	return 0;
}

const char *magventure_proto_coil_name(unsigned int code)
{
	switch (code) {
	case MAGVENTURE_PROTO_COIL_NONE:
		return "no coil";
	case MAGVENTURE_PROTO_COIL_COOL_B65:
		return "Cool-B65";
	case MAGVENTURE_PROTO_COIL_C_B60:
		return "C-B60";
	default:
		return NULL;
	}
}

int magventure_proto_reader_create(struct magventure_proto_reader **out)
{
	struct magventure_proto_reader *r = calloc(1, sizeof(*r));

	if (!r) {
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void magventure_proto_reader_destroy(struct magventure_proto_reader *r)
{
	free(r);
}

void magventure_proto_reader_reset(struct magventure_proto_reader *r)
{
	r->stats.dropped_bytes += r->n;
	r->n = 0;
	r->lost = false;
}

size_t magventure_proto_reader_feed(struct magventure_proto_reader *r, const uint8_t *data,
				    size_t len)
{
	size_t room = MAGVENTURE_PROTO_READER_CAP - r->n;
	size_t take = len < room ? len : room;

	memcpy(r->buf + r->n, data, take);
	r->n += take;
	return take;
}

/* Drop the first @k buffered bytes as not part of any good frame. */
static void magventure_proto_reader_drop(struct magventure_proto_reader *r, size_t k)
{
	if (!r->lost) {
		r->stats.resyncs++;
		r->lost = true;
	}
	r->stats.dropped_bytes += k;
	memmove(r->buf, r->buf + k, r->n - k);
	r->n -= k;
}

bool magventure_proto_reader_next(struct magventure_proto_reader *r,
				  struct magventure_proto_frame *frame)
{
	size_t i, len;

	for (;;) {
		for (i = 0; i < r->n && r->buf[i] != MAGVENTURE_PROTO_START; i++) {
		}
		if (i > 0) {
			magventure_proto_reader_drop(r, i);
		}
		if (r->n < 2) {
			return false;
		}
		len = r->buf[1];
		if (len == 0 || len > MAGVENTURE_PROTO_PAYLOAD_MAX) {
			r->stats.bad_lengths++;
			magventure_proto_reader_drop(r, 1);
			continue;
		}
		if (r->n < len + 4) {
			return false;
		}
		/*
		 * Give up on this start byte only: the next FE may begin a good
		 * frame inside the bytes this one claimed.
		 */
		if (magventure_proto_crc8(r->buf + 2, len) != r->buf[2 + len]) {
			r->stats.crc_errors++;
			magventure_proto_reader_drop(r, 1);
			continue;
		}
		if (r->buf[3 + len] != MAGVENTURE_PROTO_END) {
			r->stats.missing_ends++;
			magventure_proto_reader_drop(r, 1);
			continue;
		}
		frame->len = len;
		memcpy(frame->payload, r->buf + 2, len);
		r->stats.frames++;
		r->lost = false;
		r->n -= len + 4;
		memmove(r->buf, r->buf + len + 4, r->n);
		return true;
	}
}

void magventure_proto_reader_stats(const struct magventure_proto_reader *r,
				   struct magventure_proto_reader_stats *out)
{
	*out = r->stats;
}
