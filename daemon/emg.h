/* SPDX-License-Identifier: MIT */
/*
 * The EMG tap: the acquire thread's blocks, copied into SPSC rings for the
 * non-real-time consumers, and the rpms.emg stream made from them.
 *
 * Two rings, each optional: the recording ring carries every block's raw
 * EMG in µV (the recorder writes it at the full rate); the stream ring
 * carries every block's filtered EMG and envelope as the detector saw them
 * (bank_set_trace), which the publisher decimates into rpms.emg messages.
 * Pushing is a copy of a preallocated record: the acquire thread never
 * allocates or waits, and a full ring drops the block and counts it
 * (ring_dropped), which the consumers turn into published losses.
 */
#ifndef RPMSD_EMG_H
#define RPMSD_EMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bank_trace;
struct ring;
struct rpmsd_config;
struct source;

/**
 * One block as a ring record. Records of one ring all have the size
 * emg_block_size() gave for it; @frames of them are used.
 *
 * Recording ring: data = raw[frames][channels] (µV, as the source
 * delivered them, before the artefact blank), each frame followed by the
 * joint angle (degrees) when the tap has one: the record's channels count
 * it.
 * Stream ring: data = filtered[frames][channels], envelope[frames][channels]
 * (µV), then on_threshold[channels], off_threshold[channels] at the
 * block's last sample (NAN until calibrated).
 */
struct emg_block {
	uint64_t first_sample;	/* index of data's first frame */
	uint64_t lost;		/* samples missing right before it (a gap) */
	uint32_t frames;
	uint32_t channels;
	float data[];
};

/** Which ring a block record is for (its layout). */
enum emg_kind {
	EMG_KIND_RECORD = 0,	/* raw µV */
	EMG_KIND_STREAM,	/* filtered, envelope, thresholds */
};

/** Size in bytes of a record of @kind for blocks of at most @frames x @channels. */
size_t emg_block_size(enum emg_kind kind, size_t frames, unsigned channels);

/**
 * Ring capacity for @seconds of EMG in blocks of @frames at @rate_hz: the
 * next power of two, at least 2.
 */
size_t emg_ring_records(double seconds, double rate_hz, size_t frames);

struct emg_tap;

/**
 * Create the tap for blocks of at most @max_frames frames of @channels
 * EMG channels, and the joint angle on the recording ring if @angle.
 * @param record_records  capacity of the recording ring (power of two), 0 = none
 * @param stream_records  capacity of the stream ring (power of two), 0 = none
 * @return 0, -EINVAL, -ENOMEM
 */
int emg_tap_create(unsigned channels, bool angle, size_t max_frames, size_t record_records,
		   size_t stream_records, struct emg_tap **out);

/** Free. Accepts NULL. No thread may use it any more. */
void emg_tap_destroy(struct emg_tap *t);

/**
 * Fast replay only (virtual time, no real-time duty): emg_tap_push waits
 * for room in the recording ring instead of dropping, so a fast replay
 * records every sample. Set before the acquire thread starts. Never in
 * real time, where the acquire thread must not wait for a disk.
 */
void emg_tap_set_lossless(struct emg_tap *t, bool on);

/** The recording ring (records of EMG_KIND_RECORD), NULL if none. */
struct ring *emg_tap_record_ring(struct emg_tap *t);

/** The stream ring (records of EMG_KIND_STREAM), NULL if none. */
struct ring *emg_tap_stream_ring(struct emg_tap *t);

/** Whether the tap needs every sample through emg_tap_trace (a stream ring). */
bool emg_tap_wants_trace(const struct emg_tap *t);

/**
 * Start a block of @frames frames (at most max_frames) whose first is
 * sample @first, after @lost missing samples. Acquire thread, RT-safe.
 */
void emg_tap_begin(struct emg_tap *t, uint64_t first, size_t frames, uint64_t lost);

/** bank_trace_fn: one filtered sample of the current block. RT-safe. */
void emg_tap_trace(void *ctx, const struct bank_trace *tr);

/**
 * End the block: push its raw frames @raw (frame-major, µV) and, with an
 * angle, its angles @angle (degrees, one a frame) to the recording ring,
 * and its traced samples to the stream ring. RT-safe: a full ring drops
 * the block and counts it.
 */
void emg_tap_push(struct emg_tap *t, const float *raw, const float *angle);

struct emg_stream;

/**
 * Called by emg_stream_pump with one rpms.emg message: the JSON header
 * (not NUL-terminated in the count) and the float32 payload.
 */
typedef void (*emg_send_fn)(void *ctx, const char *header, size_t header_len,
			    const void *payload, size_t payload_len);

/**
 * Create the rpms.emg encoder over @ring (the tap's stream ring), for the
 * publisher thread: publish.emg_decimation, the source's rate and channel
 * names. Allocates its message buffers here.
 * @return 0, -EINVAL, -ENOMEM
 */
int emg_stream_create(const struct rpmsd_config *cfg, const struct source *src,
		      struct ring *ring, struct emg_stream **out);

/** Free. Accepts NULL. */
void emg_stream_destroy(struct emg_stream *s);

/**
 * Publisher thread: take at most @max_blocks blocks from the ring and send
 * every message that is complete (about 50 ms of EMG each; a gap or a lost
 * block ends a message early). @flush also sends a partial one.
 * @return blocks taken
 */
size_t emg_stream_pump(struct emg_stream *s, size_t max_blocks, bool flush,
		       emg_send_fn send, void *ctx);

#endif /* RPMSD_EMG_H */
