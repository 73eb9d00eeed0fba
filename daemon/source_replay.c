/* SPDX-License-Identifier: MIT */
/*
 * Replay source: recorded EMG files through the source interface.
 *
 * The whole file is read, parsed and converted to µV at open
 * (source_replay_parse.c, its formats), so that read, which runs on the
 * real-time acquire thread, only copies memory and, when paced, sleeps
 * until the last sample of the block would have arrived from an ADC.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "file.h"
#include "source.h"
#include "source_replay_private.h"

#define NS_PER_S 1000000000L

struct source_replay {
	struct source base;
	float *data;		/* total_frames * source_frame_floats(), frame-major */
	uint64_t pos;		/* next frame to deliver */
	int64_t t0_ns;		/* CLOCK_MONOTONIC of sample 0 */
	const atomic_bool *stop;	/* the reader's stop flag, may be NULL */
	bool paced;
	bool started;
};

static const char *source_replay_format_name(enum config_replay_format format)
{
	switch (format) {
	case CONFIG_FORMAT_CSV:
		return "csv";
	case CONFIG_FORMAT_TIMEVALUE:
		return "timevalue";
	default:
		return "text";
	}
}

/* "emg_1.txt (text, 1 channel, 1000 Hz, 63880 frames)" */
static void source_replay_describe(struct source_replay *r,
				   const struct source_replay_parser *p)
{
	const char *base = strrchr(p->path, '/');
	char cols[(SOURCE_MAX_CHANNELS + 1) * SOURCE_NAME_MAX + 24] = "";
	size_t len = 0;
	unsigned k;

	base = base ? base + 1 : p->path;
	if (p->format == CONFIG_FORMAT_CSV) {
		len = (size_t)snprintf(cols, sizeof(cols), " column%s ",
				       p->channels > 1 ? "s" : "");
		for (k = 0; k < p->channels; k++) {
			len += (size_t)snprintf(cols + len, sizeof(cols) - len, "%s%s",
						k ? "," : "", p->names[k]);
		}
	}
	if (p->has_angle) {
		snprintf(cols + len, sizeof(cols) - len, ", angle %s", p->angle_name);
	}
	if (snprintf(r->base.description, sizeof(r->base.description),
		     "%s (%s%s, %u channel%s, %g Hz, %llu frames)", base,
		     source_replay_format_name(p->format), cols, p->channels,
		     p->channels > 1 ? "s" : "", p->rate,
		     (unsigned long long)r->base.total_frames) < 0) {
		r->base.description[0] = '\0';
	}
}

static int source_replay_start(struct source *src, int64_t t0_mono_ns,
			       const atomic_bool *stop)
{
	struct source_replay *r = (struct source_replay *)src;

	r->t0_ns = t0_mono_ns;
	r->stop = stop;
	r->pos = 0;
	r->started = true;
	return 0;
}

/*
 * Sleep until @samples samples have been due since t0, in absolute steps
 * of at most SOURCE_STOP_LATENCY_NS so a stop request is seen promptly even
 * with long blocks at low rates. @return 0, or -EINTR when stopped.
 */
static int source_replay_wait(const struct source_replay *r, uint64_t samples)
{
	struct timespec ts;
	long double ns;
	int64_t due, now, until;
	int ret;

	/* From the index, not by accumulating steps, so nothing drifts. */
	ns = ceill((long double)samples * 1e9L / (long double)r->base.rate_hz);
	due = r->t0_ns + (int64_t)ns;
	for (;;) {
		if (r->stop && atomic_load(r->stop)) {
			return -EINTR;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
		if (now >= due) {
			return 0;
		}
		until = due - now > SOURCE_STOP_LATENCY_NS ? now + SOURCE_STOP_LATENCY_NS : due;
		ts.tv_sec = (time_t)(until / NS_PER_S);
		ts.tv_nsec = (long)(until % NS_PER_S);
		ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (ret != 0 && ret != EINTR) {
			return -ret;
		}
	}
}

/* Real-time: copies memory and sleeps, nothing else. */
static int source_replay_read(struct source *src, float *buf, size_t max_frames,
			      struct source_block *blk)
{
	struct source_replay *r = (struct source_replay *)src;
	uint64_t n;
	int ret;

	if (!r->started || !buf || !blk || max_frames == 0) {
		return -EINVAL;
	}
	blk->lost = 0;
	blk->lost_estimated = false;
	blk->arrival_ns = 0;
	blk->stamp_ns = 0;
	if (r->pos >= src->total_frames) {
		blk->frames = 0;
		blk->first_sample = r->pos;
		return 0;
	}
	n = src->total_frames - r->pos;
	if (n > max_frames) {
		n = max_frames;
	}
	memcpy(buf, r->data + r->pos * source_frame_floats(src),
	       (size_t)n * source_frame_floats(src) * sizeof(float));
	if (r->paced) {
		ret = source_replay_wait(r, r->pos + n);
		if (ret) {
			return ret;
		}
	}
	blk->frames = (size_t)n;
	blk->first_sample = r->pos;
	r->pos += n;
	return 1;
}

static void source_replay_destroy(struct source *src)
{
	struct source_replay *r = (struct source_replay *)src;

	if (!r) {
		return;
	}
	free(r->data);
	free(r);
}

static const struct source_ops source_replay_ops = {
	.start = source_replay_start,
	.read = source_replay_read,
	.destroy = source_replay_destroy,
};

/**
 * source_replay_open() - load a recorded file as a source
 * @cfg:    configuration; cfg->source says which file, format and columns
 * @paced:  deliver blocks at the sampling rate instead of as fast as read
 * @out:    receives the source, free with source_destroy()
 * @err:    receives "FILE:LINE: problem" on failure
 * @errlen: size of @err
 *
 * Reads, parses and converts the whole file to µV here, so that read never
 * allocates or touches the file.
 *
 * Return: 0, -EINVAL for bad content, -ENOMEM, or -errno from opening.
 */
int source_replay_open(const struct rpmsd_config *cfg, bool paced,
		       struct source **out, char *err, size_t errlen)
{
	struct source_replay_parser *p;
	struct source_replay *r;
	char path[CONFIG_PATH_MAX];
	float *data;
	FILE *f;
	int ret;

	*out = NULL;
	if (err && errlen > 0) {
		err[0] = '\0';
	}
	/* About 16 KiB of buffered time steps: keep it off the stack. */
	p = calloc(1, sizeof(*p));
	if (!p) {
		ret = -ENOMEM;
		goto err;
	}
	p->cfg = cfg;
	p->path = path;
	p->err = err;
	p->errlen = errlen;
	p->format = cfg->source.format;

	ret = config_source_path(cfg, path, sizeof(path));
	if (ret) {
		if (err && errlen > 0) {
			snprintf(err, errlen, "source.file: path too long");
		}
		goto err_parser;
	}
	if (path[0] == '\0') {
		if (err && errlen > 0) {
			snprintf(err, errlen, "source.file is not set");
		}
		ret = -EINVAL;
		goto err_parser;
	}
	f = file_open_regular(path, &ret);
	if (!f) {
		if (ret == -EINVAL) {
			source_replay_parse_fail(p, 0, ret,
						 "not a regular file (allowed: a recording)");
		} else {
			source_replay_parse_fail(p, 0, ret, "cannot open: %s", strerror(-ret));
		}
		goto err_parser;
	}
	ret = source_replay_parse_file(p, f);
	fclose(f);
	if (ret) {
		goto err_parser;
	}

	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = source_replay_parse_fail(p, 0, -ENOMEM, "out of memory");
		goto err_parser;
	}
	/* Give back the unused tail of the doubling buffer. */
	data = realloc(p->data, p->n * sizeof(float));
	r->data = data ? data : p->data;
	p->data = NULL;
	r->paced = paced;
	r->base.ops = &source_replay_ops;
	r->base.channels = p->channels;
	r->base.rate_hz = p->rate;
	r->base.has_angle = p->has_angle;
	r->base.total_frames = p->n / source_frame_floats(&r->base);
	memcpy(r->base.channel_names, p->names, sizeof(r->base.channel_names));
	memcpy(r->base.angle_name, p->angle_name, sizeof(r->base.angle_name));
	source_replay_describe(r, p);
	source_replay_parse_fini(p);
	free(p);
	*out = &r->base;
	return 0;

err_parser:
	source_replay_parse_fini(p);
	free(p);
err:
	return ret;
}

/**
 * source_destroy() - free any source
 * @src: source or NULL
 */
void source_destroy(struct source *src)
{
	if (!src) {
		return;
	}
	src->ops->destroy(src);
}
