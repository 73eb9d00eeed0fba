/* SPDX-License-Identifier: MIT */
/*
 * The EMG tap (acquire thread side) and the rpms.emg encoder (publisher
 * thread side). See emg.h.
 *
 * The tap fills a preallocated staging record per ring while the block is
 * processed and pushes it at the end: one copy per ring per block, no
 * allocation, no wait. The encoder decimates by sample index (frames whose
 * index is a multiple of the decimation), so the frames of a message are
 * always evenly spaced and the same samples are picked whatever the block
 * size; a gap, or blocks the ring dropped, end a message early.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bank.h"
#include "config.h"
#include "emg.h"
#include "event.h"
#include "ring.h"
#include "source.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rpms.emg sends float32 as they are in memory: little-endian hosts only"
#endif

#define EMG_MESSAGE_S 0.05		/* EMG per rpms.emg message */
#define EMG_HEADER_MAX 2048

struct emg_tap {
	unsigned channels;
	bool angle;			/* the recording has the joint angle after the EMG */
	size_t max_frames;
	struct ring *rec;
	struct ring *stream;
	struct emg_block *rec_blk;	/* staging records, max size */
	struct emg_block *stream_blk;
	uint64_t first;			/* the current block */
	size_t frames;
	bool lossless;			/* fast replay: wait for the recorder */
};

size_t emg_block_size(enum emg_kind kind, size_t frames, unsigned channels)
{
	size_t floats = frames * channels;

	if (kind == EMG_KIND_STREAM) {
		floats = 2 * floats + 2 * (size_t)channels;
	}
	return sizeof(struct emg_block) + floats * sizeof(float);
}

size_t emg_ring_records(double seconds, double rate_hz, size_t frames)
{
	double want = ceil(seconds * rate_hz / (double)frames);
	size_t n = 2;

	while ((double)n < want && n < ((size_t)1 << 24)) {
		n <<= 1;
	}
	return n;
}

/* A zeroed record whose pages are mapped now (the RT thread writes it). */
static struct emg_block *emg_alloc_block(size_t size)
{
	struct emg_block *b = malloc(size);

	if (b) {
		memset(b, 0, size);
	}
	return b;
}

int emg_tap_create(unsigned channels, bool angle, size_t max_frames, size_t record_records,
		   size_t stream_records, struct emg_tap **out)
{
	struct emg_tap *t;
	size_t size;
	int ret;

	if (channels == 0 || channels > SOURCE_MAX_CHANNELS || max_frames == 0) {
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		return -ENOMEM;
	}
	t->channels = channels;
	t->angle = angle;
	t->max_frames = max_frames;
	if (record_records) {
		size = emg_block_size(EMG_KIND_RECORD, max_frames, channels + (angle ? 1 : 0));
		ret = ring_create(record_records, size, &t->rec);
		if (ret < 0) {
			goto err_free;
		}
		t->rec_blk = emg_alloc_block(size);
		if (!t->rec_blk) {
			ret = -ENOMEM;
			goto err_free;
		}
	}
	if (stream_records) {
		size = emg_block_size(EMG_KIND_STREAM, max_frames, channels);
		ret = ring_create(stream_records, size, &t->stream);
		if (ret < 0) {
			goto err_free;
		}
		t->stream_blk = emg_alloc_block(size);
		if (!t->stream_blk) {
			ret = -ENOMEM;
			goto err_free;
		}
	}
	*out = t;
	return 0;

err_free:
	emg_tap_destroy(t);
	return ret;
}

void emg_tap_destroy(struct emg_tap *t)
{
	if (!t) {
		return;
	}
	ring_destroy(t->rec);
	ring_destroy(t->stream);
	free(t->rec_blk);
	free(t->stream_blk);
	free(t);
}

struct ring *emg_tap_record_ring(struct emg_tap *t)
{
	return t->rec;
}

struct ring *emg_tap_stream_ring(struct emg_tap *t)
{
	return t->stream;
}

bool emg_tap_wants_trace(const struct emg_tap *t)
{
	return t->stream != NULL;
}

static void emg_head(struct emg_block *b, uint64_t first, size_t frames, uint64_t lost,
		     unsigned channels)
{
	b->first_sample = first;
	b->lost = lost;
	b->frames = (uint32_t)frames;
	b->channels = channels;
}

void emg_tap_begin(struct emg_tap *t, uint64_t first, size_t frames, uint64_t lost)
{
	if (frames > t->max_frames) {
		frames = t->max_frames;		/* cannot happen: the acquire buffer is this size */
	}
	t->first = first;
	t->frames = frames;
	if (t->rec_blk) {
		emg_head(t->rec_blk, first, frames, lost, t->channels + (t->angle ? 1 : 0));
	}
	if (t->stream_blk) {
		emg_head(t->stream_blk, first, frames, lost, t->channels);
	}
}

void emg_tap_trace(void *ctx, const struct bank_trace *tr)
{
	struct emg_tap *t = ctx;
	size_t n = t->frames * t->channels, i;
	float *d;

	if (!t->stream_blk || tr->sample < t->first || tr->channel >= t->channels) {
		return;
	}
	i = (size_t)(tr->sample - t->first);
	if (i >= t->frames) {
		return;
	}
	d = t->stream_blk->data;
	d[i * t->channels + tr->channel] = tr->filtered;
	d[n + i * t->channels + tr->channel] = tr->envelope;
	if (i == t->frames - 1) {
		d[2 * n + tr->channel] = (float)tr->on_threshold;
		d[2 * n + t->channels + tr->channel] = (float)tr->off_threshold;
	}
}

/*
 * Fast replay only: wait up to EMG_LOSSLESS_WAIT_MS for room in the
 * recording ring. A recorder that does not drain it in that time (stopped
 * by an error) turns the waiting off for good: from then on blocks are
 * dropped and counted, as in real time.
 */
#define EMG_LOSSLESS_WAIT_MS 2000

static void emg_tap_wait_room(struct emg_tap *t)
{
	const struct timespec step = { .tv_sec = 0, .tv_nsec = 100000L };
	int i;

	for (i = 0; i < EMG_LOSSLESS_WAIT_MS * 10; i++) {
		if (ring_count(t->rec) < ring_capacity(t->rec)) {
			return;
		}
		nanosleep(&step, NULL);
	}
	t->lossless = false;
}

void emg_tap_set_lossless(struct emg_tap *t, bool on)
{
	t->lossless = on;
}

void emg_tap_push(struct emg_tap *t, const float *raw, const float *angle)
{
	if (t->rec) {
		if (t->angle) {
			unsigned n = t->channels + 1;

			for (size_t i = 0; i < t->frames; i++) {
				memcpy(t->rec_blk->data + i * n, raw + i * t->channels,
				       t->channels * sizeof(float));
				t->rec_blk->data[i * n + t->channels] = angle ? angle[i] : NAN;
			}
		} else {
			memcpy(t->rec_blk->data, raw, t->frames * t->channels * sizeof(float));
		}
		if (t->lossless) {
			emg_tap_wait_room(t);
		}
		ring_push(t->rec, t->rec_blk);
	}
	if (t->stream) {
		ring_push(t->stream, t->stream_blk);
	}
}

/* ---- rpms.emg ----------------------------------------------------------- */

struct emg_stream {
	struct ring *ring;
	unsigned channels;
	char names[SOURCE_MAX_CHANNELS][SOURCE_NAME_MAX];
	double rate_hz;			/* the source's */
	unsigned decimation;
	size_t per_message;		/* frames */
	struct emg_block *blk;		/* popped record */
	float *acc;			/* per_message x channels x (filtered, envelope) */
	size_t n;			/* frames in acc */
	uint64_t first;			/* sample of acc's first frame */
	uint64_t next;			/* first sample of the block expected next */
	bool have_next;
	float on[SOURCE_MAX_CHANNELS];
	float off[SOURCE_MAX_CHANNELS];
	uint64_t seq;
	char header[EMG_HEADER_MAX];
};

int emg_stream_create(const struct rpmsd_config *cfg, const struct source *src,
		      struct ring *ring, struct emg_stream **out)
{
	struct emg_stream *s;
	unsigned ch;

	if (!ring || src->channels == 0 || src->channels > SOURCE_MAX_CHANNELS ||
	    !(src->rate_hz > 0) || cfg->publish.emg_decimation < 1) {
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		return -ENOMEM;
	}
	s->ring = ring;
	s->channels = src->channels;
	memcpy(s->names, src->channel_names, sizeof(s->names));
	s->rate_hz = src->rate_hz;
	s->decimation = (unsigned)cfg->publish.emg_decimation;
	s->per_message = (size_t)lround(src->rate_hz / s->decimation * EMG_MESSAGE_S);
	if (s->per_message < 1) {
		s->per_message = 1;
	}
	s->blk = malloc(emg_block_size(EMG_KIND_STREAM, (size_t)cfg->source.block_frames,
				       s->channels));
	s->acc = calloc(s->per_message * s->channels * 2, sizeof(float));
	if (!s->blk || !s->acc) {
		emg_stream_destroy(s);
		return -ENOMEM;
	}
	for (ch = 0; ch < s->channels; ch++) {
		s->on[ch] = NAN;
		s->off[ch] = NAN;
	}
	*out = s;
	return 0;
}

void emg_stream_destroy(struct emg_stream *s)
{
	if (!s) {
		return;
	}
	free(s->blk);
	free(s->acc);
	free(s);
}

static void emg_json_floats(struct event_json *w, const char *key, const float *v, unsigned n)
{
	unsigned i;

	event_json_array(w, key);
	for (i = 0; i < n; i++) {
		event_json_item_double(w, v[i]);
	}
	event_json_array_end(w);
}

/* Send the accumulated frames as one message, and start a new one. */
static void emg_stream_send(struct emg_stream *s, emg_send_fn send, void *ctx)
{
	struct event_json w;
	struct event ev;
	unsigned ch;
	int len;

	if (s->n == 0) {
		return;
	}
	memset(&ev, 0, sizeof(ev));
	event_stamp(&ev, 0);
	ev.sample = s->first;
	event_json_begin(&w, s->header, sizeof(s->header));
	event_json_common(&w, EVENT_TOPIC_EMG, s->seq++, &ev, s->rate_hz, false);
	event_json_u64(&w, "frames", s->n);
	event_json_u64(&w, "decimation", s->decimation);
	event_json_double(&w, "rate_hz", s->rate_hz / s->decimation);
	event_json_array(&w, "channel_names");
	for (ch = 0; ch < s->channels; ch++) {
		event_json_item_str(&w, s->names[ch], sizeof(s->names[ch]));
	}
	event_json_array_end(&w);
	event_json_array(&w, "values");
	event_json_item_str(&w, "filtered", SIZE_MAX);
	event_json_item_str(&w, "envelope", SIZE_MAX);
	event_json_array_end(&w);
	event_json_str(&w, "unit", "uV", SIZE_MAX);
	emg_json_floats(&w, "on_threshold", s->on, s->channels);
	emg_json_floats(&w, "off_threshold", s->off, s->channels);
	/* Drops happen at the ring's head, long before the jump reaches us. */
	event_json_u64(&w, "dropped", ring_dropped(s->ring));
	len = event_json_end(&w);
	if (len >= 0) {
		send(ctx, s->header, (size_t)len, s->acc,
		     s->n * s->channels * 2 * sizeof(float));
	}
	s->n = 0;
}

/* Decimate one popped block into the message being built. */
static void emg_stream_block(struct emg_stream *s, const struct emg_block *b,
			     emg_send_fn send, void *ctx)
{
	size_t nf = (size_t)b->frames * s->channels, i;
	const float *filt = b->data, *env = b->data + nf;
	unsigned ch;
	uint64_t smp;
	float *dst;

	/* A gap, or blocks lost in the ring: a message holds evenly spaced frames. */
	if (s->have_next && (b->first_sample != s->next || b->lost)) {
		emg_stream_send(s, send, ctx);
	}
	for (ch = 0; ch < s->channels; ch++) {
		s->on[ch] = b->data[2 * nf + ch];
		s->off[ch] = b->data[2 * nf + s->channels + ch];
	}
	for (i = 0; i < b->frames; i++) {
		smp = b->first_sample + i;
		if (smp % s->decimation) {
			continue;
		}
		if (s->n == 0) {
			s->first = smp;
		}
		dst = s->acc + s->n * s->channels * 2;
		for (ch = 0; ch < s->channels; ch++) {
			dst[2 * ch] = filt[i * s->channels + ch];
			dst[2 * ch + 1] = env[i * s->channels + ch];
		}
		if (++s->n == s->per_message) {
			emg_stream_send(s, send, ctx);
		}
	}
	s->next = b->first_sample + b->frames;
	s->have_next = true;
}

size_t emg_stream_pump(struct emg_stream *s, size_t max_blocks, bool flush,
		       emg_send_fn send, void *ctx)
{
	size_t n = 0;

	while (n < max_blocks && ring_pop(s->ring, s->blk)) {
		emg_stream_block(s, s->blk, send, ctx);
		n++;
	}
	if (flush) {
		emg_stream_send(s, send, ctx);
	}
	return n;
}
