/* SPDX-License-Identifier: MIT */
/*
 * The MagVenture MagPro serial protocol (R30, X100, R20), pure: frames to
 * bytes, a streaming frame reader, the status reply decoded. No I/O; the
 * reader allocates once when created and never while reading. The
 * magventure plugin's serial thread owns the link (tty.h) and the timing.
 *
 * Written from the protocol facts in the project's stimulator notes (not
 * from any driver's code). A frame is
 *
 *     FE <len> <payload: len bytes> <CRC-8 over the payload> FF
 *
 * with the CRC-8 of Dallas/Maxim (polynomial 0x31 reflected, 0x8C; initial
 * value 0; no final xor). The payload's first byte is the command id:
 * 0x00 status, 0x01 amplitude, 0x02 enable, 0x03 fire, 0x05 extended
 * status (others exist and differ between models and firmware). Writes
 * are not acknowledged: confirm a setting by reading the status back. The
 * device also sends frames of its own, so the reader resynchronises on
 * frame boundaries.
 *
 * Link: 38400 baud, 8N1, 3-wire, the stimulator's COM2.
 *
 * ASSUMPTIONS (verify on a real device; the notes do not give them):
 *   - the extended status request is the 1-byte payload 0x05, like 0x00;
 *   - a status reply's payload starts with its command id (0x00) and its
 *     fields lie at the offsets of the MAGVENTURE_PROTO_ST_* table below,
 *     one byte each except the serial number (3 bytes, most significant
 *     first). The notes give the fields and the bits of the mode byte,
 *     not the byte order: the table is the one place that holds it;
 *   - a payload is at most MAGVENTURE_PROTO_PAYLOAD_MAX bytes: a longer
 *     length byte is taken as noise and resynchronised over.
 */
#ifndef RPMSD_MAGVENTURE_PROTO_H
#define RPMSD_MAGVENTURE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The link's baud rate (8N1, 3-wire). */
#define MAGVENTURE_PROTO_BAUD 38400

#define MAGVENTURE_PROTO_START 0xFE
#define MAGVENTURE_PROTO_END 0xFF

/** The longest payload accepted (an ASSUMPTION, see above). */
#define MAGVENTURE_PROTO_PAYLOAD_MAX 64

/** Room for any frame: start, length, payload, CRC, end. */
#define MAGVENTURE_PROTO_FRAME_MAX (MAGVENTURE_PROTO_PAYLOAD_MAX + 4)

/** Command ids, the payload's first byte. */
#define MAGVENTURE_PROTO_CMD_STATUS 0x00
#define MAGVENTURE_PROTO_CMD_AMPLITUDE 0x01
#define MAGVENTURE_PROTO_CMD_ENABLE 0x02
#define MAGVENTURE_PROTO_CMD_FIRE 0x03
#define MAGVENTURE_PROTO_CMD_EXT_STATUS 0x05

/** Amplitude limit, % of the device's maximum output. */
#define MAGVENTURE_PROTO_AMPLITUDE_MAX 100

/** Poll the status about this often (no keep-alive is documented). */
#define MAGVENTURE_PROTO_POLL_MS 500

/** Wait about this long after a write before reading the setting back. */
#define MAGVENTURE_PROTO_WRITE_SETTLE_MS 300

/*
 * The status reply's payload layout: the byte offset of each field. AN
 * ASSUMPTION, the one place that holds it; verify on a real device.
 */
#define MAGVENTURE_PROTO_ST_CMD 0		/* 0x00, the command id */
#define MAGVENTURE_PROTO_ST_MODE 1		/* mode, waveform, enabled, model */
#define MAGVENTURE_PROTO_ST_SERIAL 2		/* 3 bytes, most significant first */
#define MAGVENTURE_PROTO_ST_COIL_TEMP 5		/* coil temperature, °C */
#define MAGVENTURE_PROTO_ST_COIL_TYPE 6		/* coil type code, 0 = no coil */
#define MAGVENTURE_PROTO_ST_AMPLITUDE_A 7	/* amplitude A, % */
#define MAGVENTURE_PROTO_ST_AMPLITUDE_B 8	/* amplitude B, % */
#define MAGVENTURE_PROTO_ST_LEN 9		/* shortest status payload */

/** The bits of the mode byte (given by the notes). */
#define MAGVENTURE_PROTO_MODE_MODE_MASK 0x03u		/* bits 0-1 */
#define MAGVENTURE_PROTO_MODE_WAVEFORM_SHIFT 2		/* bits 2-3 */
#define MAGVENTURE_PROTO_MODE_WAVEFORM_MASK 0x03u
#define MAGVENTURE_PROTO_MODE_ENABLED (1u << 4)		/* bit 4 */
#define MAGVENTURE_PROTO_MODE_MODEL_SHIFT 5		/* bits 5-7 */
#define MAGVENTURE_PROTO_MODE_MODEL_MASK 0x07u

/** Coil type codes named in the notes. */
#define MAGVENTURE_PROTO_COIL_NONE 0
#define MAGVENTURE_PROTO_COIL_COOL_B65 60
#define MAGVENTURE_PROTO_COIL_C_B60 72

/** One frame's payload. */
struct magventure_proto_frame {
	size_t len;				/* 1..MAGVENTURE_PROTO_PAYLOAD_MAX */
	uint8_t payload[MAGVENTURE_PROTO_PAYLOAD_MAX];
};

/** The status reply, decoded. */
struct magventure_proto_status {
	unsigned int mode;		/* bits 0-1 of the mode byte */
	unsigned int waveform;		/* bits 2-3 */
	bool enabled;			/* bit 4 */
	unsigned int model;		/* bits 5-7 */
	uint32_t serial;		/* 24 bits */
	unsigned int coil_temp_c;	/* °C */
	unsigned int coil_type;		/* MAGVENTURE_PROTO_COIL_*, 0 = no coil */
	unsigned int amplitude_a;	/* % */
	unsigned int amplitude_b;	/* % */
};

/** What a reader has thrown away, counted since it was created. */
struct magventure_proto_reader_stats {
	uint64_t frames;		/* good frames yielded */
	uint64_t resyncs;		/* times it lost the frame boundary */
	uint64_t crc_errors;		/* frames with a wrong CRC */
	uint64_t bad_lengths;		/* a length byte of 0 or over the maximum */
	uint64_t missing_ends;		/* no FF where the length put it */
	uint64_t dropped_bytes;		/* bytes not part of any good frame */
};

/** The frame reader; opaque. */
struct magventure_proto_reader;

/**
 * The CRC-8 Dallas/Maxim of @len bytes (reflected 0x31, initial 0).
 */
uint8_t magventure_proto_crc8(const uint8_t *buf, size_t len);

/**
 * Wrap @len payload bytes in a frame.
 * @param buf   receives FE, len, the payload, its CRC, FF
 * @param size  room in @buf (MAGVENTURE_PROTO_FRAME_MAX is always enough)
 * @return the frame's length (@len + 4), -EINVAL for a @len of 0 or over
 *         MAGVENTURE_PROTO_PAYLOAD_MAX, -ENOSPC when @buf is too small;
 *         @err says which
 */
int magventure_proto_frame_encode(const uint8_t *payload, size_t len, uint8_t *buf,
				  size_t size, char *err, size_t errlen);

/**
 * The status request, FE 01 00 00 FF.
 * @return as magventure_proto_frame_encode
 */
int magventure_proto_encode_status(uint8_t *buf, size_t size, char *err, size_t errlen);

/**
 * The extended status request, FE 01 05 <crc> FF (the 1-byte payload is
 * an ASSUMPTION).
 * @return as magventure_proto_frame_encode
 */
int magventure_proto_encode_ext_status(uint8_t *buf, size_t size, char *err, size_t errlen);

/**
 * Set the amplitude: FE 02 01 <pct> <crc> FF (50 %: FE 02 01 32 C6 FF).
 * @param pct  0..MAGVENTURE_PROTO_AMPLITUDE_MAX
 * @return as magventure_proto_frame_encode, or -ERANGE for a @pct out of
 *         range (the message names it and the range)
 */
int magventure_proto_encode_amplitude(unsigned int pct, uint8_t *buf, size_t size,
				      char *err, size_t errlen);

/**
 * Enable or disable the output: FE 02 02 01 CF FF enables, FE 02 02 00
 * <crc> FF disables.
 * @return as magventure_proto_frame_encode
 */
int magventure_proto_encode_enable(bool on, uint8_t *buf, size_t size, char *err,
				   size_t errlen);

/**
 * Fire one pulse: FE 02 03 01 0B FF. (rpmsd fires by TTL; this is for a
 * bring-up check only, serial latency is milliseconds and variable.)
 * @return as magventure_proto_frame_encode
 */
int magventure_proto_encode_fire(uint8_t *buf, size_t size, char *err, size_t errlen);

/**
 * Decode a status reply.
 * @param f    a frame from the reader
 * @param out  receives the fields; untouched on failure
 * @return 0; -EPROTO when @f is not a status reply (its command id is
 *         named); -EMSGSIZE when it is shorter than the layout; -EBADMSG
 *         for an amplitude over 100 %. @err says which on every failure.
 */
int magventure_proto_decode_status(const struct magventure_proto_frame *f,
				   struct magventure_proto_status *out, char *err, size_t errlen);

/**
 * The name of a coil type code: "no coil", "Cool-B65", "C-B60", or NULL
 * for a code this module does not know.
 */
const char *magventure_proto_coil_name(unsigned int code);

/**
 * Create a frame reader, its buffer allocated here once.
 * @return 0 and *@out, or -ENOMEM
 */
int magventure_proto_reader_create(struct magventure_proto_reader **out);

/** Free a reader. Accepts NULL. */
void magventure_proto_reader_destroy(struct magventure_proto_reader *r);

/**
 * Forget a partial frame (after the link was reopened). Keeps the counts.
 */
void magventure_proto_reader_reset(struct magventure_proto_reader *r);

/**
 * Give the reader bytes as they arrive, in chunks of any size. It takes
 * as many as it has room for and never allocates; take the frames out
 * with magventure_proto_reader_next before feeding the rest:
 *
 *     while (len > 0) {
 *             n = magventure_proto_reader_feed(r, p, len);
 *             p += n; len -= n;
 *             while (magventure_proto_reader_next(r, &frame)) { ... }
 *     }
 *
 * After magventure_proto_reader_next has returned false, the reader has
 * room for at least MAGVENTURE_PROTO_FRAME_MAX bytes.
 * @return the number of bytes taken (0 only when @len is 0 or frames
 *         are waiting to be taken)
 */
size_t magventure_proto_reader_feed(struct magventure_proto_reader *r, const uint8_t *data,
				    size_t len);

/**
 * Take the next complete, good frame. Garbage before a start byte, a bad
 * length, a wrong CRC or a missing end byte are counted and skipped: the
 * reader looks for the next FE after the start of the frame it gave up
 * on, so a good frame hidden inside a bad one is still found.
 * @return true and *@frame set, or false when it needs more bytes
 */
bool magventure_proto_reader_next(struct magventure_proto_reader *r,
				  struct magventure_proto_frame *frame);

/** Copy the reader's counts to @out. */
void magventure_proto_reader_stats(const struct magventure_proto_reader *r,
				   struct magventure_proto_reader_stats *out);

#endif /* RPMSD_MAGVENTURE_PROTO_H */
