/* SPDX-License-Identifier: MIT */
/*
 * IIO source: an amplifier's ADC through libiio (local sysfs/chardev, or
 * a remote iiod), behind the same interface as the replay source.
 *
 * Everything is found, checked, configured and allocated in
 * source_iio_open on the main thread; the buffer is made there once to
 * prove streaming works, then again by start, once, before the acquire
 * loop, so that sample 0 is the session's first frame. read runs on
 * the acquire thread: iio_buffer_refill, then libiio's own demultiplexing
 * and conversion (iio_channel_read: endianness, shift, sign) into a
 * preallocated scratch array, then raw -> µV with the channel's scale and
 * offset and the configured amplifier gain.
 *
 * A joint angle (source.angle_channel) is one more scan element of the
 * same device, enabled with the EMG and read from the same frames:
 * (raw + offset) * scale in the channel's own unit (millivolts for a
 * voltage; not divided by source.gain, the EMG amplifier's), then to
 * degrees. It goes after the EMG of every frame (source_frame_floats).
 *
 * Timestamps: the device's timestamp channel when it has one, else
 * CLOCK_MONOTONIC at refill. Two consecutive frames' timestamps more than
 * 1.5 periods apart are a gap: it is counted, the block is split there,
 * and the sample index skips the missing samples so the index stays the
 * recording's time.
 *
 * Faults: after a failed read the acquire thread parks and the main thread
 * calls reopen, which tears the context down and builds it again from the
 * configuration, refusing a device that came back different (rate,
 * channels, formats, scales). The outage becomes one gap, measured with
 * CLOCK_MONOTONIC (a re-probed device's timestamps need not continue).
 */
#include <errno.h>
#include <iio.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "sclock.h"
#include "source.h"

#define IIO_RATE_TOL 1e-3	/* relative difference between asked and got */
/* Scan elements read a frame: the EMG channels, then the angle's (source.h). */
#define IIO_ELEMENTS (SOURCE_MAX_CHANNELS + 1)

/* What a reopened device must match: it is the same amplifier or none. */
struct source_iio_shape {
	double rate;
	unsigned channels;
	bool ts;
	double mul[IIO_ELEMENTS];
	double offset[IIO_ELEMENTS];
	unsigned bytes[IIO_ELEMENTS];
	bool is_signed[IIO_ELEMENTS];
};

struct source_iio {
	struct source base;
	const struct rpmsd_config *cfg;	/* outlives the source */
	struct source_iio_shape shape;	/* as first opened */
	struct iio_context *ctx;
	struct iio_device *dev;
	bool left_enabled;		/* a dead process's buffer was switched off */
	/*
	 * Per scan element read, in frame order: the EMG channels, then
	 * source.angle_channel's at index channels when there is one. A
	 * value is (raw + offset) * mul + add: µV (add 0), or degrees.
	 */
	struct iio_channel *chn[IIO_ELEMENTS];
	struct iio_channel *ts;		/* timestamp channel, or NULL */
	double mul[IIO_ELEMENTS];	/* µV (the angle: degrees) per raw unit */
	double offset[IIO_ELEMENTS];	/* raw units */
	double add[IIO_ELEMENTS];	/* the angle's angle_offset_deg, else 0 */
	unsigned bytes[IIO_ELEMENTS];	/* storage bytes of one sample */
	bool is_signed[IIO_ELEMENTS];
	struct iio_buffer *buf;		/* reader thread only, after start */
	_Atomic(struct iio_buffer *) live;	/* the same, for cancel */
	size_t frames;			/* buffer size in frames */
	void *scratch;			/* frames * 8 bytes */
	int64_t *stamps;		/* frames timestamps */
	float *conv;			/* the refilled block, frames x source_frame_floats */
	size_t have;			/* frames in conv */
	size_t pos;			/* first of them not yet delivered */
	uint64_t lost_at_pos;		/* samples missing just before conv[pos] */
	bool estimated_at_pos;		/* ... measured by the clock */
	int64_t refill_ns;		/* CLOCK_MONOTONIC at the refill's return */
	uint64_t next_sample;
	int64_t last_stamp;
	bool have_stamp;
	int64_t period_ns;
	int64_t last_mono;		/* CLOCK_MONOTONIC of the last refill */
	bool resync;			/* reopened: the next block follows a gap */
	const atomic_bool *stop;
};

static void source_iio_disconnect(struct source_iio *s);

static int source_iio_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int source_iio_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* Device by name, by id (iio:device0), or by index in the context. */
static struct iio_device *source_iio_find_device(struct iio_context *ctx, const char *want)
{
	struct iio_device *dev = iio_context_find_device(ctx, want);
	char *end;
	unsigned long idx;

	if (dev) {
		return dev;
	}
	idx = strtoul(want, &end, 10);
	if (*want && *end == '\0' && idx < iio_context_get_devices_count(ctx)) {
		return iio_context_get_device(ctx, (unsigned)idx);
	}
	return NULL;
}

/* "0: iio:device0 (emg-sim), 1: ..." of the context's devices, for error messages. */
static void source_iio_list_devices(const struct iio_context *ctx, char *out, size_t len)
{
	unsigned i, n = iio_context_get_devices_count(ctx);
	size_t used = 0;
	int w;

	out[0] = '\0';
	for (i = 0; i < n && used + 1 < len; i++) {
		const struct iio_device *d = iio_context_get_device(ctx, i);
		const char *name = iio_device_get_name(d);

		w = snprintf(out + used, len - used, "%s%u: %s%s%s%s", used ? ", " : "", i,
			     iio_device_get_id(d), name ? " (" : "", name ? name : "",
			     name ? ")" : "");
		used += w > 0 ? (size_t)w : 0;
	}
	if (used >= len && len > 4) {
		memcpy(out + len - 4, "...", 4);	/* cut: say so */
	}
}

/* "a, b, c" of the device's input scan elements, for error messages. */
static void source_iio_list_channels(const struct iio_device *dev, char *out, size_t len)
{
	unsigned i, n = iio_device_get_channels_count(dev);
	size_t used = 0;

	out[0] = '\0';
	for (i = 0; i < n && used + 1 < len; i++) {
		const struct iio_channel *c = iio_device_get_channel(dev, i);

		if (iio_channel_is_output(c) || !iio_channel_is_scan_element(c)) {
			continue;
		}
		used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ", " : "",
					 iio_channel_get_id(c));
	}
	if (!out[0]) {
		snprintf(out, len, "none");
	}
}

/*
 * Channel @id of the device for config key @key: a scan element with a
 * usable storage, its scale and offset (1 and 0 when it has none: raw
 * ADC counts, said in the log). @return 0, or a negative errno with @err
 * naming @key
 */
static int source_iio_lookup(struct source_iio *s, const char *key, const char *id,
			     struct iio_channel **out, double *scale, double *offset, char *err,
			     size_t errlen)
{
	const struct iio_data_format *fmt;
	struct iio_channel *c = iio_device_find_channel(s->dev, id, false);
	char names[512];

	if (!c || !iio_channel_is_scan_element(c)) {
		source_iio_list_channels(s->dev, names, sizeof(names));
		return source_iio_fail(err, errlen, -ENOENT,
				       "%s: device '%s' has no input channel '%s' that can be streamed (channels: %s)",
				       key, iio_device_get_id(s->dev), id, names);
	}
	fmt = iio_channel_get_data_format(c);
	if (fmt->length == 0 || fmt->length > 64 || fmt->length % 8 != 0) {
		return source_iio_fail(err, errlen, -EINVAL,
				       "%s: channel '%s' has an unusable storage of %u bits",
				       key, id, fmt->length);
	}
	if (iio_channel_attr_read_double(c, "scale", scale) < 0 || !(*scale > 0)) {
		*scale = 1.0;
	}
	if (iio_channel_attr_read_double(c, "offset", offset) < 0 || !isfinite(*offset)) {
		*offset = 0.0;
	}
	*out = c;
	return 0;
}

/* Element @i reads channel @c at @mul per raw unit (after @offset), plus @add. */
static void source_iio_element(struct source_iio *s, unsigned i, struct iio_channel *c,
			       double mul, double offset, double add)
{
	const struct iio_data_format *fmt = iio_channel_get_data_format(c);

	s->chn[i] = c;
	s->mul[i] = mul;
	s->offset[i] = offset;
	s->add[i] = add;
	s->bytes[i] = fmt->length / 8;
	s->is_signed[i] = fmt->is_signed;
	iio_channel_enable(c);
}

/*
 * source.angle_channel: a scan element of the same device, never one of
 * the EMG channels (an angle read as EMG would reach the detectors, and
 * one element cannot be both). Compared as channels, not as names, so an
 * id and its label cannot smuggle the same element in twice.
 */
static int source_iio_angle(struct source_iio *s, const struct rpmsd_config *cfg,
			    char *err, size_t errlen)
{
	const char *want = cfg->source.angle_channel;
	struct iio_channel *c;
	double scale, offset;
	unsigned ch;
	int ret;

	if (want[0] == '\0') {
		return 0;
	}
	ret = source_iio_lookup(s, "source.angle_channel", want, &c, &scale, &offset, err,
				errlen);
	if (ret < 0) {
		return ret;
	}
	for (ch = 0; ch < s->base.channels; ch++) {
		if (s->chn[ch] == c) {
			return source_iio_fail(err, errlen, -EINVAL,
					       "source.angle_channel: channel '%s' is also an EMG channel of source.channels ('%s'): the angle must be a channel of its own, or it would reach the burst detectors",
					       want, s->base.channel_names[ch]);
		}
	}
	if (iio_channel_get_type(c) == IIO_TIMESTAMP) {
		return source_iio_fail(err, errlen, -EINVAL,
				       "source.angle_channel: '%s' is the device's timestamp, not an angle",
				       want);
	}
	/* The channel's own unit (mV for a voltage), then degrees: no EMG gain. */
	source_iio_element(s, s->base.channels, c, scale * cfg->source.angle_scale_deg, offset,
			   cfg->source.angle_offset_deg);
	s->base.has_angle = true;
	snprintf(s->base.angle_name, SOURCE_NAME_MAX, "%.*s", SOURCE_NAME_MAX - 1, want);
	return 0;
}

/* Find, check and enable the configured channels. */
static int source_iio_channels(struct source_iio *s, const struct rpmsd_config *cfg,
			       char *err, size_t errlen)
{
	char list[CONFIG_PATH_MAX];
	char *save = NULL, *tok;
	unsigned n = 0;
	int ret;

	snprintf(list, sizeof(list), "%s", cfg->source.channels);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const struct iio_data_format *fmt;
		struct iio_channel *c;
		double scale, offset;

		while (*tok == ' ') {
			tok++;
		}
		if (n == SOURCE_MAX_CHANNELS) {
			return source_iio_fail(err, errlen, -EINVAL,
					       "source.channels: more than %d channels",
					       SOURCE_MAX_CHANNELS);
		}
		ret = source_iio_lookup(s, "source.channels", tok, &c, &scale, &offset, err,
					errlen);
		if (ret < 0) {
			return ret;
		}
		/* IIO voltages: (raw + offset) * scale is millivolts. */
		source_iio_element(s, n, c, scale * 1000.0 / cfg->source.gain, offset, 0.0);
		fmt = iio_channel_get_data_format(c);
		/* The widest channel's full scale, for the recording's header. */
		if (fmt->bits > 0 && fmt->bits <= 32) {
			double full = ldexp(1.0, (int)fmt->bits - (fmt->is_signed ? 1 : 0));

			if (fmt->bits > s->base.adc_bits) {
				s->base.adc_bits = fmt->bits;
			}
			if (full * s->mul[n] > s->base.range_uv) {
				s->base.range_uv = full * s->mul[n];
			}
		}
		snprintf(s->base.channel_names[n], SOURCE_NAME_MAX, "%s", tok);
		n++;
	}
	if (n == 0) {
		return source_iio_fail(err, errlen, -EINVAL, "source.channels: no channel named");
	}
	s->base.channels = n;
	ret = source_iio_angle(s, cfg, err, errlen);
	if (ret < 0) {
		return ret;
	}
	s->ts = iio_device_find_channel(s->dev, "timestamp", false);
	if (s->ts && iio_channel_is_scan_element(s->ts) &&
	    iio_channel_get_data_format(s->ts)->length == 64) {
		iio_channel_enable(s->ts);
	} else {
		s->ts = NULL;
	}
	return 0;
}

/*
 * The frame size the kernel uses for the enabled scan elements: each one
 * aligned to its own storage size, in index order, the frame padded to
 * the largest. libiio 0.24 leaves the final padding out (fixed upstream
 * later), so with a layout such as s16 + s32 + s16 its idea of a frame is
 * short and every sample after the first frame would be read from the
 * wrong bytes. Refuse such a layout rather than read garbage.
 */
static int source_iio_check_layout(struct source_iio *s, char *err, size_t errlen)
{
	unsigned i, n = iio_device_get_channels_count(s->dev);
	long idx, next = -1, last = -2;
	size_t off = 0, align = 1, size;
	ssize_t libiio;

	/* Walk the enabled scan elements in index order (indices are unique). */
	for (;;) {
		const struct iio_channel *pick = NULL;

		next = -1;
		for (i = 0; i < n; i++) {
			const struct iio_channel *c = iio_device_get_channel(s->dev, i);

			idx = iio_channel_get_index(c);
			if (!iio_channel_is_enabled(c) || idx <= last) {
				continue;
			}
			if (!pick || idx < next) {
				pick = c;
				next = idx;
			}
		}
		if (!pick) {
			break;
		}
		last = next;
		size = iio_channel_get_data_format(pick)->length / 8 *
		       iio_channel_get_data_format(pick)->repeat;
		size = size ? size : 1;
		off = (off + size - 1) / size * size + size;
		align = size > align ? size : align;
	}
	off = (off + align - 1) / align * align;
	libiio = iio_device_get_sample_size(s->dev);
	if (libiio < 0 || (size_t)libiio != off) {
		return source_iio_fail(err, errlen, -EINVAL,
				       "%s: libiio computes %zd bytes per frame for these channels, the kernel uses %zu (a libiio 0.24 bug with padded frames): enable channels whose layout ends in its largest element",
				       s->base.has_angle ? "source.channels, source.angle_channel" :
				       "source.channels", libiio, off);
	}
	return 0;
}

static int source_iio_rate(struct source_iio *s, const struct rpmsd_config *cfg,
			   char *err, size_t errlen)
{
	double rate = 0.0;
	int ret;

	if (cfg->source.rate_hz > 0) {
		ret = iio_device_attr_write_double(s->dev, "sampling_frequency",
						   cfg->source.rate_hz);
		if (ret < 0) {
			return source_iio_fail(err, errlen, ret,
					       "source.rate_hz: cannot set sampling_frequency of '%s' to %g Hz: %s",
					       iio_device_get_id(s->dev), cfg->source.rate_hz,
					       strerror(-ret));
		}
	}
	ret = iio_device_attr_read_double(s->dev, "sampling_frequency", &rate);
	if (ret < 0 || !(rate > 0) || !isfinite(rate)) {
		if (cfg->source.rate_hz > 0) {
			rate = cfg->source.rate_hz;
		} else {
			return source_iio_fail(err, errlen, -EINVAL,
					       "source.rate_hz: device '%s' does not say its sampling_frequency: set source.rate_hz",
					       iio_device_get_id(s->dev));
		}
	}
	if (cfg->source.rate_hz > 0 &&
	    fabs(rate - cfg->source.rate_hz) > IIO_RATE_TOL * cfg->source.rate_hz) {
		return source_iio_fail(err, errlen, -EINVAL,
				       "source.rate_hz: asked device '%s' for %g Hz, it runs at %g Hz",
				       iio_device_get_id(s->dev), cfg->source.rate_hz, rate);
	}
	if (rate < 100.0 || rate > 100000.0) {
		return source_iio_fail(err, errlen, -EINVAL,
				       "source.rate_hz: device '%s' runs at %g Hz (allowed: 100 to 100000 Hz)",
				       iio_device_get_id(s->dev), rate);
	}
	s->base.rate_hz = rate;
	s->period_ns = llround(1e9 / rate);
	return 0;
}

static int source_iio_start(struct source *src, int64_t t0_mono_ns, const atomic_bool *stop)
{
	struct source_iio *s = (struct source_iio *)src;
	int ret;

	(void)t0_mono_ns;
	/*
	 * Streaming starts here, not at open, so sample 0 is the first frame
	 * after the session started. This is set-up, before the acquire loop:
	 * the one allocation of the buffer happens here, once.
	 */
	if (!s->buf) {
		s->buf = iio_device_create_buffer(s->dev, s->frames, false);
		if (!s->buf) {
			ret = -errno;
			return ret < 0 ? ret : -EIO;
		}
		atomic_store(&s->live, s->buf);
	}
	s->stop = stop;
	s->next_sample = 0;
	s->have_stamp = false;
	s->resync = false;
	s->have = 0;
	s->pos = 0;
	s->last_mono = sclock_mono_ns();
	return 0;
}

/* Widen one converted sample of @bytes bytes at @p. */
static double source_iio_sample(const void *p, unsigned bytes, bool is_signed)
{
	switch (bytes) {
	case 1:
		return is_signed ? (double)*(const int8_t *)p : (double)*(const uint8_t *)p;
	case 2:
		return is_signed ? (double)*(const int16_t *)p : (double)*(const uint16_t *)p;
	case 4:
		return is_signed ? (double)*(const int32_t *)p : (double)*(const uint32_t *)p;
	default:
		return is_signed ? (double)*(const int64_t *)p : (double)*(const uint64_t *)p;
	}
}

/* Samples missing between two consecutive timestamps (0: none). */
static uint64_t source_iio_missing(const struct source_iio *s, int64_t prev, int64_t next)
{
	/* Over 1.5 periods apart; frame-to-frame, so rate drift never adds up. */
	int64_t missing = llround((double)(next - prev) / (double)s->period_ns) - 1;

	return missing > 0 ? (uint64_t)missing : 0;
}

/* Refill and convert a whole block into conv. Real-time: no allocation. */
static int source_iio_refill(struct source_iio *s)
{
	unsigned stride = source_frame_floats(&s->base), ch;
	ssize_t got;
	size_t frames, i;
	int64_t now;

	got = iio_buffer_refill(s->buf);
	if (got < 0) {
		if (s->stop && atomic_load(s->stop)) {
			return -EINTR;
		}
		return (int)got;
	}
	now = sclock_mono_ns();
	frames = (size_t)got / (size_t)iio_buffer_step(s->buf);
	if (frames == 0) {
		return -EIO;
	}
	for (ch = 0; ch < stride; ch++) {
		const unsigned char *raw = s->scratch;

		iio_channel_read(s->chn[ch], s->buf, s->scratch, frames * s->bytes[ch]);
		for (i = 0; i < frames; i++) {
			double v = source_iio_sample(raw + i * s->bytes[ch], s->bytes[ch],
						     s->is_signed[ch]);

			s->conv[i * stride + ch] = (float)((v + s->offset[ch]) * s->mul[ch] +
							   s->add[ch]);
		}
	}
	s->refill_ns = now;
	s->lost_at_pos = 0;
	s->estimated_at_pos = false;
	if (s->resync) {
		/*
		 * The first block after a reopen: the outage, by the clock,
		 * less this block (which ends about now). Good to a block or
		 * so: the reference is the previous refill's return.
		 */
		int64_t missing = llround((double)(now - s->last_mono) /
					  (double)s->period_ns) - (int64_t)frames;

		if (missing > 0) {
			s->lost_at_pos = (uint64_t)missing;
			s->estimated_at_pos = true;
		}
		s->resync = false;
		s->have_stamp = false;
	}
	s->last_mono = now;
	if (s->ts) {
		iio_channel_read(s->ts, s->buf, s->stamps, frames * sizeof(int64_t));
		if (s->have_stamp) {
			s->lost_at_pos = source_iio_missing(s, s->last_stamp, s->stamps[0]);
		}
		s->have_stamp = true;
	}
	s->have = frames;
	s->pos = 0;
	return 0;
}

/*
 * Deliver conv from pos up to the next gap in the timestamps (or the end
 * of the block): a gap inside a refilled block splits it, so that every
 * block handed on is contiguous and its first_sample exact.
 */
static int source_iio_read(struct source *src, float *out, size_t max_frames,
			   struct source_block *blk)
{
	struct source_iio *s = (struct source_iio *)src;
	unsigned nch = source_frame_floats(src);
	size_t end;
	int ret;

	if (max_frames < s->frames) {
		return -EINVAL;
	}
	if (s->pos >= s->have) {
		ret = source_iio_refill(s);
		if (ret < 0) {
			return ret;
		}
	}
	end = s->pos + 1;
	while (end < s->have &&
	       !(s->ts && source_iio_missing(s, s->stamps[end - 1], s->stamps[end]))) {
		end++;
	}
	blk->lost = s->lost_at_pos;
	blk->lost_estimated = s->estimated_at_pos;
	blk->arrival_ns = s->refill_ns;
	blk->stamp_ns = s->ts ? s->stamps[end - 1] : 0;
	/* Skip the missing samples' indices: the index stays the recording's time. */
	if (blk->lost) {
		s->base.gaps++;
		s->base.lost += blk->lost;
		s->next_sample += blk->lost;
	}
	memcpy(out, s->conv + s->pos * nch, (end - s->pos) * nch * sizeof(float));
	blk->frames = end - s->pos;
	blk->first_sample = s->next_sample;
	s->next_sample += blk->frames;
	if (s->ts) {
		s->last_stamp = s->stamps[end - 1];
		if (end < s->have) {
			s->lost_at_pos = source_iio_missing(s, s->stamps[end - 1], s->stamps[end]);
			s->estimated_at_pos = false;
		}
	}
	s->pos = end;
	return 1;
}

static void source_iio_cancel(struct source *src)
{
	struct source_iio *s = (struct source_iio *)src;
	struct iio_buffer *buf = atomic_load(&s->live);

	/* Not started yet: the reader's first refill times out and sees stop. */
	if (buf) {
		iio_buffer_cancel(buf);
	}
}

static void source_iio_destroy(struct source *src)
{
	struct source_iio *s = (struct source_iio *)src;

	if (!s) {
		return;
	}
	source_iio_disconnect(s);
	free(s->conv);
	free(s->stamps);
	free(s->scratch);
	free(s);
}

static int source_iio_reopen(struct source *src, char *err, size_t errlen);

static const struct source_ops source_iio_ops = {
	.start = source_iio_start,
	.read = source_iio_read,
	.cancel = source_iio_cancel,
	.reopen = source_iio_reopen,
	.destroy = source_iio_destroy,
};

/* Drop the buffer and the context (the reader is parked or gone). */
static void source_iio_disconnect(struct source_iio *s)
{
	atomic_store(&s->live, NULL);
	if (s->buf) {
		iio_buffer_destroy(s->buf);
		s->buf = NULL;
	}
	if (s->ctx) {
		iio_context_destroy(s->ctx);
		s->ctx = NULL;
	}
	s->dev = NULL;
	s->ts = NULL;
	memset(s->chn, 0, sizeof(s->chn));
}

/*
 * A process killed while streaming (SIGKILL, a crash) leaves the device's
 * buffer enabled: closing the chardev does not disable it, and the kernel
 * then refuses a new trigger or rate with EBUSY, so the daemon could not
 * start again after a crash (seen in the VM rig). Switch it off. Were a
 * second reader really streaming from the same device, it would lose its
 * stream and fault: the safe way round.
 */
static void source_iio_disable_leftover(struct source_iio *s)
{
	bool on = false;

	if (iio_device_buffer_attr_read_bool(s->dev, "enable", &on) == 0 && on) {
		(void)iio_device_buffer_attr_write_bool(s->dev, "enable", false);
		s->left_enabled = true;
	}
}

/* Context, device, channels, layout, rate, trigger: everything but buffers. */
static int source_iio_connect(struct source_iio *s, char *err, size_t errlen)
{
	const struct rpmsd_config *cfg = s->cfg;
	int ret;

	s->ctx = iio_create_context_from_uri(cfg->source.uri);
	if (!s->ctx) {
		ret = errno ? -errno : -EIO;
		return source_iio_fail(err, errlen, ret,
				       "source.uri: cannot open IIO context '%s': %s",
				       cfg->source.uri, strerror(-ret));
	}
	ret = iio_context_set_timeout(s->ctx, (unsigned)cfg->source.timeout_ms);
	if (ret < 0) {
		return source_iio_fail(err, errlen, ret, "source.uri: cannot set the timeout: %s",
				       strerror(-ret));
	}
	s->dev = source_iio_find_device(s->ctx, cfg->source.device);
	if (!s->dev) {
		char devices[512];

		source_iio_list_devices(s->ctx, devices, sizeof(devices));
		return source_iio_fail(err, errlen, -ENOENT,
				       "source.device: no IIO device '%s' at '%s' (allowed: a name, id "
				       "or index of %s)", cfg->source.device, cfg->source.uri,
				       devices[0] ? devices : "none: the context has no device");
	}
	ret = source_iio_channels(s, cfg, err, errlen);
	if (ret < 0) {
		return ret;
	}
	ret = source_iio_check_layout(s, err, errlen);
	if (ret < 0) {
		return ret;
	}
	source_iio_disable_leftover(s);
	ret = source_iio_rate(s, cfg, err, errlen);
	if (ret < 0) {
		return ret;
	}
	if (cfg->source.trigger[0]) {
		const struct iio_device *trig = iio_context_find_device(s->ctx, cfg->source.trigger);

		ret = trig ? iio_device_set_trigger(s->dev, trig) : -ENOENT;
		if (ret < 0) {
			return source_iio_fail(err, errlen, ret,
					       "source.trigger: cannot set trigger '%s' on '%s': %s",
					       cfg->source.trigger, iio_device_get_id(s->dev),
					       strerror(-ret));
		}
	}
	if (s->ts) {
		/*
		 * IIO stamps with CLOCK_REALTIME by default, which NTP or an
		 * operator can step: that would look like a gap. Ask for the
		 * monotonic clock; a driver without the attribute keeps its own.
		 */
		(void)iio_device_attr_write(s->dev, "current_timestamp_clock", "monotonic");
	}
	if (cfg->source.kernel_buffers > 0) {
		/* Not every backend can; a refusal only costs latency headroom. */
		(void)iio_device_set_kernel_buffers_count(s->dev,
							  (unsigned)cfg->source.kernel_buffers);
	}
	return 0;
}

static void source_iio_get_shape(const struct source_iio *s, struct source_iio_shape *sh)
{
	memset(sh, 0, sizeof(*sh));
	sh->rate = s->base.rate_hz;
	sh->channels = s->base.channels;
	sh->ts = s->ts != NULL;
	memcpy(sh->mul, s->mul, sizeof(sh->mul));
	memcpy(sh->offset, s->offset, sizeof(sh->offset));
	memcpy(sh->bytes, s->bytes, sizeof(sh->bytes));
	memcpy(sh->is_signed, s->is_signed, sizeof(sh->is_signed));
}

/* A device that came back must be the one we calibrated on. */
static int source_iio_same_shape(const struct source_iio *s, char *err, size_t errlen)
{
	const struct source_iio_shape *was = &s->shape;
	struct source_iio_shape now;
	unsigned ch;

	source_iio_get_shape(s, &now);
	if (now.rate != was->rate) {
		return source_iio_fail(err, errlen, -EINVAL,
				       "source.rate_hz: device '%s' came back at %g Hz, not %g Hz",
				       s->cfg->source.device, now.rate, was->rate);
	}
	if (now.ts != was->ts) {
		return source_iio_fail(err, errlen, -EINVAL,
				       "source.device: device '%s' came back %s a timestamp channel",
				       s->cfg->source.device, now.ts ? "with" : "without");
	}
	/* the angle too: a goniometer re-scaled would shift every angle, and the TSRT */
	for (ch = 0; ch < source_frame_floats(&s->base); ch++) {
		bool angle = ch == now.channels;

		if (now.bytes[ch] != was->bytes[ch] || now.is_signed[ch] != was->is_signed[ch] ||
		    now.mul[ch] != was->mul[ch] || now.offset[ch] != was->offset[ch]) {
			return source_iio_fail(err, errlen, -EINVAL,
					       "%s: channel '%s' of '%s' came back with another format or scale",
					       angle ? "source.angle_channel" : "source.channels",
					       angle ? s->base.angle_name : s->base.channel_names[ch],
					       s->cfg->source.device);
		}
	}
	return 0;
}

static int source_iio_reopen(struct source *src, char *err, size_t errlen)
{
	struct source_iio *s = (struct source_iio *)src;
	int ret;

	source_iio_disconnect(s);
	ret = source_iio_connect(s, err, errlen);
	if (ret == 0) {
		ret = source_iio_same_shape(s, err, errlen);
	}
	if (ret < 0) {
		source_iio_disconnect(s);
		return ret;
	}
	/* Streaming starts now; the reader picks up from the first frame. */
	s->buf = iio_device_create_buffer(s->dev, s->frames, false);
	if (!s->buf) {
		ret = errno ? -errno : -EIO;
		source_iio_disconnect(s);
		return source_iio_fail(err, errlen, ret,
				       "source.device: cannot start streaming from '%s': %s",
				       s->cfg->source.device, strerror(-ret));
	}
	atomic_store(&s->live, s->buf);
	s->resync = true;
	s->have = 0;	/* what the old buffer held is gone with it */
	s->pos = 0;
	return 0;
}

int source_iio_open(const struct rpmsd_config *cfg, struct source **out, char *err,
		    size_t errlen)
{
	struct source_iio *s;
	char desc[64], angle[SOURCE_NAME_MAX + 16] = "";
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s) {
		return source_iio_fail(err, errlen, -ENOMEM, "out of memory");
	}
	s->base.ops = &source_iio_ops;
	s->cfg = cfg;
	ret = source_iio_connect(s, err, errlen);
	if (ret < 0) {
		goto err_free;
	}
	source_iio_get_shape(s, &s->shape);
	s->base.time_source = s->ts ? SOURCE_TIME_HARDWARE : SOURCE_TIME_CLOCK;
	s->frames = (size_t)cfg->source.block_frames;
	s->scratch = calloc(s->frames, sizeof(int64_t));
	s->stamps = calloc(s->frames, sizeof(int64_t));
	s->conv = calloc(s->frames * source_frame_floats(&s->base), sizeof(float));
	if (!s->scratch || !s->stamps || !s->conv) {
		ret = source_iio_fail(err, errlen, -ENOMEM, "out of memory");
		goto err_free;
	}
	/* Prove now that streaming works, so a refusal is a start-up error. */
	s->buf = iio_device_create_buffer(s->dev, s->frames, false);
	if (!s->buf) {
		ret = errno ? -errno : -EIO;
		source_iio_fail(err, errlen, ret,
				"source.device: cannot start streaming from '%s': %s",
				iio_device_get_id(s->dev), strerror(-ret));
		goto err_free;
	}
	iio_buffer_destroy(s->buf);
	s->buf = NULL;
	snprintf(desc, sizeof(desc), "%s", iio_device_get_name(s->dev) ?
		 iio_device_get_name(s->dev) : iio_device_get_id(s->dev));
	if (s->base.has_angle) {
		snprintf(angle, sizeof(angle), ", angle %s", s->base.angle_name);
	}
	snprintf(s->base.description, sizeof(s->base.description),
		 "IIO %s at %.64s (%u channel%s%s, %g Hz, %zu-frame buffers, %s timestamps)", desc,
		 cfg->source.uri, s->base.channels, s->base.channels == 1 ? "" : "s", angle,
		 s->base.rate_hz, s->frames, s->ts ? "hardware" : "CLOCK_MONOTONIC");
	if (s->left_enabled) {
		size_t n = strnlen(s->base.description, sizeof(s->base.description));

		/* said where the operator looks: the log's source line */
		if (n + 1 < sizeof(s->base.description)) {
			snprintf(s->base.description + n, sizeof(s->base.description) - n, "%s",
				 "; a buffer left enabled by a dead process was switched off");
		}
	}
	*out = &s->base;
	return 0;

err_free:
	source_iio_destroy(&s->base);
	return ret;
}
