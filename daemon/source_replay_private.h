/* SPDX-License-Identifier: MIT */
/*
 * The replay source's inner parts, shared by its two files and by nothing
 * else (as dose_private.h is for the pulse ledger):
 *
 *   source_replay.c        the source: open, its description, the read of
 *                          the acquire thread (copy a block, sleep to its
 *                          due time)
 *   source_replay_parse.c  the recording's text formats (text, csv,
 *                          timevalue): the whole file parsed, checked and
 *                          converted to µV at open; no clock, no thread
 */
#ifndef RPMSD_SOURCE_REPLAY_PRIVATE_H
#define RPMSD_SOURCE_REPLAY_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "source.h"

#define SOURCE_REPLAY_HEAD_STEPS 1000	/* time steps the rate is derived from */

/* State of one parse, alive during source_replay_open only. */
struct source_replay_parser {
	const struct rpmsd_config *cfg;
	const char *path;
	char *err;
	size_t errlen;
	enum config_replay_format format;
	long line;			/* current line, 1-based */
	bool in_data;			/* first non-comment line seen */

	/* from '#' lines before the data */
	double header_rate;
	long header_rate_line;
	char label[SOURCE_NAME_MAX];

	/* csv */
	char **cells;			/* ncols pointers into the current line */
	unsigned ncols;
	unsigned sel[SOURCE_MAX_CHANNELS];	/* chosen columns, 0-based */
	char names[SOURCE_MAX_CHANNELS][SOURCE_NAME_MAX];
	bool has_angle;			/* source.angle_channel: one more float a frame */
	unsigned angle_sel;		/* its column, 0-based */
	char angle_name[SOURCE_NAME_MAX];

	/* timevalue: the first steps are kept until the rate is known */
	double head_t[SOURCE_REPLAY_HEAD_STEPS + 1];
	long head_line[SOURCE_REPLAY_HEAD_STEPS + 1];
	size_t nhead;
	bool step_known;
	double step;			/* expected time step, s */
	double prev_t;
	double time_rate;		/* from the time column, 0 unknown */

	double rate;			/* resolved rate, 0 until known */
	unsigned channels;
	float *data;
	size_t n;			/* floats stored */
	size_t cap;			/* floats allocated */
};

/**
 * Report "PATH:LINE: message" (or "PATH: message" for @line 0) into @p's
 * error buffer (left alone when there is none). @return @ret
 */
int source_replay_parse_fail(struct source_replay_parser *p, long line, int ret,
			     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/**
 * Read the whole of @f (p->path) in p->format (CONFIG_FORMAT_AUTO: told
 * from the first data line) into p->data, p->channels, p->names and
 * p->rate. @p is zeroed but for cfg, path, err, errlen and format.
 * @return 0, or -EINVAL (bad content), -ENOMEM or -errno (a read error)
 * with "PATH:LINE: problem" in p->err
 */
int source_replay_parse_file(struct source_replay_parser *p, FILE *f);

/** Free what a parse allocated (p->data unless taken, p->cells); not @p. */
void source_replay_parse_fini(struct source_replay_parser *p);

#endif /* RPMSD_SOURCE_REPLAY_PRIVATE_H */
