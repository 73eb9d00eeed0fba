/* SPDX-License-Identifier: MIT */
/*
 * EMG source interface: what the acquire thread reads blocks from.
 *
 * A source delivers blocks of interleaved frames (frame-major, one float
 * per channel, in microvolts) with the index of the first sample. A
 * source with a joint-angle input (source.angle_channel) appends one more
 * float to every frame, the angle in degrees: source_frame_floats() is
 * the stride. The acquire thread takes it off before any EMG consumer
 * sees the block, so the detectors never see an angle. The
 * replay source (recorded files) and the IIO source (libiio) implement
 * the same ops, so the rest of the pipeline cannot tell them apart.
 *
 * read runs on the real-time acquire thread: it must not allocate. The
 * replay source loads and converts its whole file in its constructor, so
 * read only copies memory and, when paced, sleeps to an absolute time.
 */
#ifndef RPMSD_SOURCE_H
#define RPMSD_SOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rpmsd_config;

#define SOURCE_MAX_CHANNELS 8
/* Longest a waiting read takes to notice its stop flag. */
#define SOURCE_STOP_LATENCY_NS 20000000LL
#define SOURCE_NAME_MAX 32

/** One block as returned by read. */
struct source_block {
	size_t frames;		/* frames written to the caller's buffer */
	uint64_t first_sample;	/* index of the first frame since start */
	/*
	 * Samples missing right before this block (a gap: the indices
	 * first_sample - lost .. first_sample - 1 never arrived), 0 normally.
	 */
	uint64_t lost;
	/* The gap was estimated from CLOCK_MONOTONIC, not hardware timestamps. */
	bool lost_estimated;
	/*
	 * CLOCK_MONOTONIC when the data became available to us (IIO: the
	 * refill's return, before conversion), 0 if the source does not say.
	 */
	int64_t arrival_ns;
	/*
	 * The source's own time of the block's last sample (IIO: its hardware
	 * timestamp, asked for on CLOCK_MONOTONIC), 0 if it has none.
	 */
	int64_t stamp_ns;
};

struct source;

/** Operations of a source implementation. */
struct source_ops {
	/**
	 * Start delivering. @t0_mono_ns is CLOCK_MONOTONIC of sample 0 for a
	 * paced source (sample i is due at t0 + i / rate). @stop (may be
	 * NULL) is the reader's stop flag: a read waiting for data returns
	 * -EINTR within SOURCE_STOP_LATENCY_NS once it is set.
	 */
	int (*start)(struct source *src, int64_t t0_mono_ns, const atomic_bool *stop);
	/**
	 * Wait for the next block and copy at most @max_frames frames of
	 * source_frame_floats() floats each into @buf.
	 * @return 1 with @blk filled, 0 at the end of the data, -EINTR when
	 *         stopped while waiting, another negative errno on error
	 */
	int (*read)(struct source *src, float *buf, size_t max_frames,
		    struct source_block *blk);
	/**
	 * Optional, from another thread: make a read that is waiting return
	 * at once (it then returns -EINTR if the stop flag is set).
	 */
	void (*cancel)(struct source *src);
	/**
	 * Optional: after a read failed, tear the connection down and build
	 * it again (same device, channels, formats and rate, or an error).
	 * Runs on a non-real-time thread while the reader waits; may
	 * allocate. The next read continues the sample index, the outage
	 * reported as a gap (source_block.lost) of the time it lasted.
	 * @param err  receives a message naming what is wrong
	 * @return 0, or a negative errno (the reader stays parked)
	 */
	int (*reopen)(struct source *src, char *err, size_t errlen);
	/** Free the source. */
	void (*destroy)(struct source *src);
};

/** Where a block's time comes from. */
enum source_time {
	SOURCE_TIME_RECORDING = 0,	/* a file: sample index / rate */
	SOURCE_TIME_HARDWARE,		/* the device's timestamp channel */
	SOURCE_TIME_CLOCK,		/* CLOCK_MONOTONIC when the block arrives */
};

/** Common part of every source; implementations embed it first. */
struct source {
	const struct source_ops *ops;
	unsigned channels;			/* 1..SOURCE_MAX_CHANNELS */
	double rate_hz;				/* sampling rate */
	uint64_t total_frames;			/* known length, 0 if unbounded */
	char channel_names[SOURCE_MAX_CHANNELS][SOURCE_NAME_MAX];
	char description[256];			/* for logs: file, format, column */
	enum source_time time_source;
	uint64_t gaps;				/* gaps seen in the stream (reader thread) */
	uint64_t lost;				/* samples missing in them */
	/* The amplifier's input range, +-µV, and ADC bits; 0 when unknown (replay). */
	double range_uv;
	unsigned adc_bits;
	/* A joint angle (degrees) after the EMG of every frame, or none. */
	bool has_angle;
	char angle_name[SOURCE_NAME_MAX];
};

/** Floats per frame a read writes: the EMG channels, and the angle if any. */
static inline unsigned source_frame_floats(const struct source *src)
{
	return src->channels + (src->has_angle ? 1u : 0u);
}

/**
 * Open the replay source described by cfg->source. The whole file is read,
 * parsed and converted to µV (times source.scale_uv) here.
 * @param paced  deliver blocks at the sampling rate (false: as fast as read)
 * @param err    receives "FILE:LINE: problem" for a malformed file
 * @return 0, -EINVAL (bad content), -errno (cannot open)
 */
int source_replay_open(const struct rpmsd_config *cfg, bool paced,
		       struct source **out, char *err, size_t errlen);

/**
 * Open the IIO source described by cfg->source (libiio): context, device,
 * channels, rate, trigger and buffer are all set up here.
 * @param err  receives a message naming the source.* key at fault
 * @return 0, -ENOENT (no such device or channel), -EINVAL, or -errno
 */
int source_iio_open(const struct rpmsd_config *cfg, struct source **out,
		    char *err, size_t errlen);

/** Free any source. Accepts NULL. */
void source_destroy(struct source *src);

#endif /* RPMSD_SOURCE_H */
