/* SPDX-License-Identifier: MIT */
/*
 * The replay source's file formats (source_replay_private.h): a recording
 * read, checked and converted to µV, all at open.
 *
 * Formats: "text" (one value per line, '#' header lines), "csv" (header row,
 * chosen columns, an empty cell ends the data) and "timevalue" (two columns
 * "time value", the time column checked for a uniform step).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "source.h"
#include "source_replay_private.h"

#define REPLAY_RATE_TOL 1e-3	/* relative rate difference tolerated */
#define REPLAY_STEP_TOL 0.25	/* relative time step deviation tolerated */
#define REPLAY_DRIFT_TOL 0.5	/* time off its due position, in steps */
#define REPLAY_RATE_MIN 100.0	/* the range source.rate_hz allows */
#define REPLAY_RATE_MAX 100000.0
#define REPLAY_SHOW_MAX 64	/* bytes of a bad value quoted in errors */
#define REPLAY_LIST_MAX 10	/* column names listed in errors */
#define REPLAY_MIN_CAP 4096	/* floats allocated at first */

int source_replay_parse_fail(struct source_replay_parser *p, long line, int ret,
			     const char *fmt, ...)
{
	va_list ap;
	int len;

	if (!p->err || p->errlen == 0) {
		return ret;
	}
	if (line > 0) {
		len = snprintf(p->err, p->errlen, "%s:%ld: ", p->path, line);
	} else {
		len = snprintf(p->err, p->errlen, "%s: ", p->path);
	}
	if (len < 0 || (size_t)len >= p->errlen) {
		return ret;
	}
	va_start(ap, fmt);
	vsnprintf(p->err + len, p->errlen - (size_t)len, fmt, ap);
	va_end(ap);
	return ret;
}

/*
 * Copy @src into @dst of @size bytes, cutting at a UTF-8 character boundary
 * so a quoted value never ends in half a character.
 * @return true if @src was cut
 */
static bool source_replay_parse_clip(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);
	bool cut = false;

	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80) {
			len--;
		}
		cut = true;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return cut;
}

/* A bad value as quoted in an error message: bounded, "..." if cut. */
static void source_replay_parse_show(char *dst, size_t size, const char *src)
{
	size_t len;

	if (source_replay_parse_clip(dst, size - 3, src)) {
		len = strlen(dst);
		memcpy(dst + len, "...", 4);
	}
}

/* Strip leading and trailing white space in place. */
static char *source_replay_parse_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s)) {
		s++;
	}
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1])) {
		end--;
	}
	*end = '\0';
	return s;
}

/* Parse a whole token as a finite number: no garbage, nan, inf or empty. */
static bool source_replay_parse_number(const char *s, double *out)
{
	char *end;
	double v;

	if (*s == '\0') {
		return false;
	}
	v = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(v)) {
		return false;
	}
	*out = v;
	return true;
}

static int source_replay_parse_push(struct source_replay_parser *p, float v)
{
	size_t cap;
	float *data;

	if (p->n == p->cap) {
		cap = p->cap ? p->cap * 2 : REPLAY_MIN_CAP;
		if (cap < p->cap || cap > SIZE_MAX / sizeof(float)) {
			return source_replay_parse_fail(p, p->line, -ENOMEM, "too many samples");
		}
		data = realloc(p->data, cap * sizeof(float));
		if (!data) {
			return source_replay_parse_fail(p, 0, -ENOMEM, "out of memory");
		}
		p->data = data;
		p->cap = cap;
	}
	p->data[p->n++] = v;
	return 0;
}

/*
 * Parse token @tok (trimmed in place) as a sample, scale it (EMG: to µV;
 * the angle: to degrees) and append it. @col is the 1-based file column
 * named in errors, 0 for none.
 */
static int source_replay_parse_value(struct source_replay_parser *p, char *tok,
				     unsigned col, double scale, double offset)
{
	char shown[REPLAY_SHOW_MAX + 1];
	char where[32] = "";
	double v;
	float f;

	tok = source_replay_parse_trim(tok);
	if (col > 0) {
		snprintf(where, sizeof(where), "column %u: ", col);
	}
	if (!source_replay_parse_number(tok, &v)) {
		source_replay_parse_show(shown, sizeof(shown), tok);
		return source_replay_parse_fail(p, p->line, -EINVAL,
						"%smalformed value '%s'", where, shown);
	}
	f = (float)(v * scale + offset);
	if (!isfinite(f)) {
		source_replay_parse_show(shown, sizeof(shown), tok);
		return source_replay_parse_fail(p, p->line, -EINVAL,
						"%svalue '%s' out of range", where, shown);
	}
	return source_replay_parse_push(p, f);
}

/* Relative difference of @a from the reference @ref beyond the tolerance? */
static bool source_replay_parse_rate_differs(double a, double ref)
{
	return fabs(a - ref) > REPLAY_RATE_TOL * ref;
}

/*
 * Settle the sampling rate: source.rate_hz, else the file's header, else the
 * time column. Every rate the file states must agree with the one used,
 * because a wrong rate silently detunes every filter downstream.
 */
static int source_replay_parse_rate(struct source_replay_parser *p)
{
	double cfg_rate = p->cfg->source.rate_hz;

	if (cfg_rate > 0) {
		if (p->header_rate > 0 &&
		    source_replay_parse_rate_differs(p->header_rate, cfg_rate)) {
			return source_replay_parse_fail(p, p->header_rate_line, -EINVAL,
							"the file says %g Hz but source.rate_hz is %g Hz",
							p->header_rate, cfg_rate);
		}
		if (p->time_rate > 0 &&
		    source_replay_parse_rate_differs(p->time_rate, cfg_rate)) {
			return source_replay_parse_fail(p, 0, -EINVAL,
							"the time column gives %g Hz but source.rate_hz is %g Hz",
							p->time_rate, cfg_rate);
		}
		p->rate = cfg_rate;
	} else if (p->header_rate > 0) {
		if (p->time_rate > 0 &&
		    source_replay_parse_rate_differs(p->time_rate, p->header_rate)) {
			return source_replay_parse_fail(p, p->header_rate_line, -EINVAL,
							"the file says %g Hz but the time column gives %g Hz",
							p->header_rate, p->time_rate);
		}
		p->rate = p->header_rate;
	} else if (p->time_rate > 0) {
		p->rate = p->time_rate;
	} else {
		return source_replay_parse_fail(p, 0, -EINVAL,
						"sampling rate unknown: set source.rate_hz or add a '# Sampling Rate (Hz):= ...' header");
	}
	/* The same range as source.rate_hz: the filters are designed for it. */
	if (p->rate < REPLAY_RATE_MIN || p->rate > REPLAY_RATE_MAX) {
		return source_replay_parse_fail(p, cfg_rate > 0 ? 0 : p->header_rate > 0 ?
						p->header_rate_line : 0, -EINVAL,
						"sampling rate %g Hz is out of range (allowed: %g to %g Hz)",
						p->rate, REPLAY_RATE_MIN, REPLAY_RATE_MAX);
	}
	return 0;
}

/* Parse a '#' line before the data: sampling rate and channel label. */
static int source_replay_parse_header(struct source_replay_parser *p, char *s)
{
	char shown[REPLAY_SHOW_MAX + 1];
	char *k, *end;
	double v;

	k = strcasestr(s, "sampling rate");
	if (k) {
		/* Prose mentioning the rate has no ':' after it: not a header. */
		k = strchr(k, ':');
		if (!k) {
			return 0;
		}
		k++;
		if (*k == '=') {
			k++;
		}
		k = source_replay_parse_trim(k);
		v = strtod(k, &end);
		while (isspace((unsigned char)*end)) {
			end++;
		}
		if (strcasecmp(end, "hz") == 0) {
			end += 2;
		}
		if (end == k || *end != '\0' || !isfinite(v) || v <= 0) {
			source_replay_parse_show(shown, sizeof(shown), k);
			return source_replay_parse_fail(p, p->line, -EINVAL,
							"malformed sampling rate '%s'", shown);
		}
		if (p->header_rate > 0 &&
		    source_replay_parse_rate_differs(v, p->header_rate)) {
			return source_replay_parse_fail(p, p->line, -EINVAL,
							"sampling rate %g Hz differs from %g Hz on line %ld",
							v, p->header_rate, p->header_rate_line);
		}
		if (p->header_rate <= 0) {
			p->header_rate = v;
			p->header_rate_line = p->line;
		}
		return 0;
	}

	while (isspace((unsigned char)*s)) {
		s++;
	}
	if (strncasecmp(s, "label", 5) != 0) {
		return 0;
	}
	s += 5;
	if (*s == 's' || *s == 'S') {
		s++;
	}
	while (isspace((unsigned char)*s)) {
		s++;
	}
	if (*s != ':') {
		return 0;
	}
	s++;
	if (*s == '=') {
		s++;
	}
	s = source_replay_parse_trim(s);
	if (*s != '\0') {
		source_replay_parse_clip(p->label, sizeof(p->label), s);
	}
	return 0;
}

/*
 * Decide the format from the first data line: a ',' or a non-numeric token
 * means csv (a header row), two numbers timevalue, one number text.
 */
static int source_replay_parse_detect(struct source_replay_parser *p, const char *s)
{
	unsigned ntok = 0;
	bool text = false;
	char *end;
	double v;

	if (strchr(s, ',')) {
		p->format = CONFIG_FORMAT_CSV;
		return 0;
	}
	for (;;) {
		while (isspace((unsigned char)*s)) {
			s++;
		}
		if (*s == '\0') {
			break;
		}
		ntok++;
		v = strtod(s, &end);
		if (end == s || (*end != '\0' && !isspace((unsigned char)*end)) ||
		    !isfinite(v)) {
			text = true;
			while (*s != '\0' && !isspace((unsigned char)*s)) {
				s++;
			}
		} else {
			s = end;
		}
	}
	if (text) {
		p->format = CONFIG_FORMAT_CSV;
	} else if (ntok == 1) {
		p->format = CONFIG_FORMAT_TEXT;
	} else if (ntok == 2) {
		p->format = CONFIG_FORMAT_TIMEVALUE;
	} else {
		return source_replay_parse_fail(p, p->line, -EINVAL,
						"cannot tell the format from %u values in a line: set source.format",
						ntok);
	}
	return 0;
}

/* Only "" or "1" make sense for a one-channel format. */
static int source_replay_parse_single_column(struct source_replay_parser *p,
					     const char *fmt_name)
{
	const char *col = p->cfg->source.column;

	if (col[0] != '\0' && strcmp(col, "1") != 0) {
		return source_replay_parse_fail(p, 0, -EINVAL,
						"source.column '%s' needs a csv file (this is a %s file with one channel)",
						col, fmt_name);
	}
	if (p->cfg->source.angle_channel[0] != '\0') {
		return source_replay_parse_fail(p, 0, -EINVAL,
						"source.angle_channel '%s' needs a csv file with "
						"the angle in a column of its own (this is a %s file "
						"with one channel)", p->cfg->source.angle_channel,
						fmt_name);
	}
	return 0;
}

/*
 * Split @s at commas, storing at most @max cell pointers.
 * @return the number of cells in the line
 */
static unsigned source_replay_parse_split(char *s, char **cells, unsigned max)
{
	unsigned n = 0;
	char *c;

	for (;;) {
		if (n < max) {
			cells[n] = s;
		}
		n++;
		c = strchr(s, ',');
		if (!c) {
			break;
		}
		*c = '\0';
		s = c + 1;
	}
	return n;
}

/* Report a column name that is not in the header, listing the columns. */
static int source_replay_parse_no_column(struct source_replay_parser *p, const char *name)
{
	char list[512];
	char shown[REPLAY_SHOW_MAX + 1];
	size_t len = 0;
	unsigned i;
	int w;

	list[0] = '\0';
	for (i = 0; i < p->ncols && i < REPLAY_LIST_MAX; i++) {
		w = snprintf(list + len, sizeof(list) - len, "%s%s",
			     i ? ", " : "", p->cells[i]);
		if (w < 0 || (size_t)w >= sizeof(list) - len) {
			break;
		}
		len += (size_t)w;
	}
	if (i < p->ncols && len + 6 < sizeof(list)) {
		memcpy(list + len, ", ...", 6);
	}
	source_replay_parse_show(shown, sizeof(shown), name);
	return source_replay_parse_fail(p, p->line, -EINVAL,
					"column '%s' not found (columns: %s)", shown,
					list);
}

/*
 * source.angle_channel: one column more, read as degrees and kept apart
 * from the EMG. It may not be one of the EMG columns: an angle read as
 * EMG would reach the detectors.
 */
static int source_replay_parse_angle(struct source_replay_parser *p)
{
	const char *name = p->cfg->source.angle_channel;
	char *end;
	unsigned i, k;
	long long n;

	if (name[0] == '\0') {
		return 0;
	}
	errno = 0;
	n = strtoll(name, &end, 10);
	if (*end == '\0') {
		if (errno || n < 1 || n > p->ncols) {
			return source_replay_parse_fail(p, p->line, -EINVAL,
							"source.angle_channel: column %s not found "
							"(the file has %u columns)", name, p->ncols);
		}
		i = (unsigned)(n - 1);
	} else {
		for (i = 0; i < p->ncols && strcmp(p->cells[i], name); i++) {
		}
		if (i == p->ncols) {
			return source_replay_parse_fail(p, p->line, -EINVAL,
							"source.angle_channel: no column '%s' in the "
							"header", name);
		}
	}
	for (k = 0; k < p->channels; k++) {
		if (p->sel[k] == i) {
			return source_replay_parse_fail(p, p->line, -EINVAL,
							"source.angle_channel: column %u is also an "
							"EMG column of source.column: the angle must "
							"never reach the detectors", i + 1);
		}
	}
	p->has_angle = true;
	p->angle_sel = i;
	if (p->cells[i][0] != '\0') {
		source_replay_parse_clip(p->angle_name, sizeof(p->angle_name), p->cells[i]);
	} else {
		snprintf(p->angle_name, sizeof(p->angle_name), "angle");
	}
	return 0;
}

/* Map source.column ("2", "trial3", "1,trial4") onto the header cells. */
static int source_replay_parse_select(struct source_replay_parser *p)
{
	char spec[CONFIG_PATH_MAX];
	char *tok, *next, *end;
	unsigned i, k;
	long long n;

	if (source_replay_parse_clip(spec, sizeof(spec), p->cfg->source.column)) {
		return source_replay_parse_fail(p, 0, -EINVAL, "source.column too long");
	}
	if (source_replay_parse_trim(spec)[0] == '\0') {
		strcpy(spec, "1");
	}
	for (tok = spec; tok; tok = next) {
		next = strchr(tok, ',');
		if (next) {
			*next++ = '\0';
		}
		tok = source_replay_parse_trim(tok);
		if (*tok == '\0') {
			return source_replay_parse_fail(p, 0, -EINVAL,
							"source.column '%s': empty entry",
							p->cfg->source.column);
		}
		if (p->channels == SOURCE_MAX_CHANNELS) {
			return source_replay_parse_fail(p, 0, -EINVAL,
							"source.column '%s': at most %d columns",
							p->cfg->source.column, SOURCE_MAX_CHANNELS);
		}
		/* Whatever reads as a number is a column number, as in config.c. */
		errno = 0;
		n = strtoll(tok, &end, 10);
		if (*end == '\0') {
			if (errno || n < 1 || n > p->ncols) {
				return source_replay_parse_fail(p, p->line, -EINVAL,
								"column %s not found (the file has %u columns)",
								tok, p->ncols);
			}
			i = (unsigned)(n - 1);
		} else {
			for (i = 0; i < p->ncols; i++) {
				if (strcmp(p->cells[i], tok) == 0) {
					break;
				}
			}
			if (i == p->ncols) {
				return source_replay_parse_no_column(p, tok);
			}
		}
		k = p->channels++;
		p->sel[k] = i;
		if (p->cells[i][0] != '\0') {
			source_replay_parse_clip(p->names[k], sizeof(p->names[k]), p->cells[i]);
		} else {
			snprintf(p->names[k], sizeof(p->names[k]), "emg%u", k);
		}
	}
	return source_replay_parse_angle(p);
}

/* The csv header row: column names, then the chosen columns. */
static int source_replay_parse_csv_header(struct source_replay_parser *p, char *s)
{
	unsigned n = 1, i;
	const char *c;

	for (c = s; (c = strchr(c, ',')); c++) {
		n++;
	}
	p->cells = calloc(n, sizeof(*p->cells));
	if (!p->cells) {
		return source_replay_parse_fail(p, 0, -ENOMEM, "out of memory");
	}
	p->ncols = source_replay_parse_split(s, p->cells, n);
	for (i = 0; i < p->ncols; i++) {
		p->cells[i] = source_replay_parse_trim(p->cells[i]);
	}
	return source_replay_parse_select(p);
}

/*
 * A csv data row. @return 0, 1 at the end of the data (an empty chosen
 * cell: NaN padding after the recording), negative errno
 */
static int source_replay_parse_csv_row(struct source_replay_parser *p, char *s)
{
	unsigned n, k;
	int ret;

	n = source_replay_parse_split(s, p->cells, p->ncols);
	if (n != p->ncols) {
		return source_replay_parse_fail(p, p->line, -EINVAL,
						"expected %u cells, found %u", p->ncols, n);
	}
	for (k = 0; k < p->channels; k++) {
		if (source_replay_parse_trim(p->cells[p->sel[k]])[0] == '\0') {
			return 1;
		}
	}
	if (p->has_angle && source_replay_parse_trim(p->cells[p->angle_sel])[0] == '\0') {
		return 1;
	}
	for (k = 0; k < p->channels; k++) {
		ret = source_replay_parse_value(p, p->cells[p->sel[k]], p->sel[k] + 1,
						p->cfg->source.scale_uv, 0.0);
		if (ret) {
			return ret;
		}
	}
	if (p->has_angle) {
		return source_replay_parse_value(p, p->cells[p->angle_sel], p->angle_sel + 1,
						 p->cfg->source.angle_scale_deg,
						 p->cfg->source.angle_offset_deg);
	}
	return 0;
}

/*
 * Compare one time step with the expected one, and the time itself with
 * where the first time and the rate put sample @k: steps that are each
 * within tolerance but consistently off (a drifting clock, a changed rate)
 * would replay the whole file at the wrong speed.
 */
static int source_replay_parse_step(struct source_replay_parser *p, double from,
				    double to, long line, uint64_t k)
{
	double d = to - from;
	double want = p->head_t[0] + (double)k * p->step;

	if (!(d > 0)) {
		return source_replay_parse_fail(p, line, -EINVAL,
						"time does not increase from %.10g to %.10g",
						from, to);
	}
	/* A missing sample would silently shift everything after it. */
	if (fabs(d - p->step) > REPLAY_STEP_TOL * p->step) {
		return source_replay_parse_fail(p, line, -EINVAL,
						"time jumps from %.10g to %.10g, expected step %g",
						from, to, p->step);
	}
	if (fabs(to - want) > REPLAY_DRIFT_TOL * p->step) {
		return source_replay_parse_fail(p, line, -EINVAL,
						"time %.10g drifts from %.10g, where sample %llu is due at %g Hz",
						to, want, (unsigned long long)k, p->rate);
	}
	return 0;
}

static int source_replay_parse_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, w = *(const double *)b;

	return (x > w) - (x < w);
}

/*
 * Derive the rate from the buffered first time steps, settle the rate, then
 * check the buffered steps against it.
 */
static int source_replay_parse_head(struct source_replay_parser *p)
{
	double steps[SOURCE_REPLAY_HEAD_STEPS];
	double median, sum = 0, rate;
	size_t n = p->nhead - 1, i, used = 0;
	int ret;

	p->time_rate = 0;
	if (n > 0) {
		for (i = 0; i < n; i++) {
			steps[i] = p->head_t[i + 1] - p->head_t[i];
		}
		qsort(steps, n, sizeof(steps[0]), source_replay_parse_cmp_double);
		median = n % 2 ? steps[n / 2] : (steps[n / 2 - 1] + steps[n / 2]) / 2;
		/*
		 * The median ignores missing samples; averaging the steps near it
		 * then undoes the rounding of times printed with few decimals.
		 */
		for (i = 0; median > 0 && i < n; i++) {
			if (steps[i] >= 0.5 * median && steps[i] <= 1.5 * median) {
				sum += steps[i];
				used++;
			}
		}
		if (used > 0 && sum > 0) {
			rate = (double)used / sum;
			/* Floating-point noise on an integral rate. */
			if (fabs(rate - round(rate)) <= 1e-6 * rate) {
				rate = round(rate);
			}
			if (isfinite(rate)) {
				p->time_rate = rate;
			}
		}
	}
	for (i = 0; p->time_rate == 0 && i < n; i++) {
		if (!(p->head_t[i + 1] > p->head_t[i])) {
			return source_replay_parse_step(p, p->head_t[i], p->head_t[i + 1],
							p->head_line[i + 1], i + 1);
		}
	}
	ret = source_replay_parse_rate(p);
	if (ret) {
		return ret;
	}
	p->step = 1.0 / p->rate;
	p->step_known = true;
	for (i = 0; i < n; i++) {
		ret = source_replay_parse_step(p, p->head_t[i], p->head_t[i + 1],
					       p->head_line[i + 1], i + 1);
		if (ret) {
			return ret;
		}
	}
	p->prev_t = p->head_t[p->nhead - 1];
	return 0;
}

/* A "time value" line. */
static int source_replay_parse_timevalue(struct source_replay_parser *p, char *s)
{
	char shown[REPLAY_SHOW_MAX + 1];
	char *tok[3];
	unsigned n = 0;
	double t;
	int ret;

	for (;;) {
		while (isspace((unsigned char)*s)) {
			s++;
		}
		if (*s == '\0') {
			break;
		}
		if (n < 3) {
			tok[n] = s;
		}
		n++;
		while (*s != '\0' && !isspace((unsigned char)*s)) {
			s++;
		}
		if (*s != '\0') {
			*s++ = '\0';
		}
	}
	if (n != 2) {
		return source_replay_parse_fail(p, p->line, -EINVAL,
						"expected 2 values (time value), found %u", n);
	}
	if (!source_replay_parse_number(tok[0], &t)) {
		source_replay_parse_show(shown, sizeof(shown), tok[0]);
		return source_replay_parse_fail(p, p->line, -EINVAL,
						"malformed value '%s'", shown);
	}
	ret = source_replay_parse_value(p, tok[1], 0, p->cfg->source.scale_uv, 0.0);
	if (ret) {
		return ret;
	}
	if (p->step_known) {
		/* one channel: the value just stored is sample n - 1 */
		ret = source_replay_parse_step(p, p->prev_t, t, p->line, p->n - 1);
		p->prev_t = t;
		return ret;
	}
	p->head_t[p->nhead] = t;
	p->head_line[p->nhead] = p->line;
	p->nhead++;
	if (p->nhead == SOURCE_REPLAY_HEAD_STEPS + 1) {
		return source_replay_parse_head(p);
	}
	return 0;
}

/*
 * One non-comment, non-empty line.
 * @return 0, 1 at the end of the data, negative errno
 */
static int source_replay_parse_data_line(struct source_replay_parser *p, char *s)
{
	int ret;

	if (!p->in_data) {
		p->in_data = true;
		if (p->format == CONFIG_FORMAT_AUTO) {
			ret = source_replay_parse_detect(p, s);
			if (ret) {
				return ret;
			}
		}
		switch (p->format) {
		case CONFIG_FORMAT_CSV:
			return source_replay_parse_csv_header(p, s);
		case CONFIG_FORMAT_TIMEVALUE:
			ret = source_replay_parse_single_column(p, "timevalue");
			break;
		default:
			ret = source_replay_parse_single_column(p, "text");
			break;
		}
		if (ret) {
			return ret;
		}
		p->channels = 1;
		if (p->label[0] != '\0') {
			memcpy(p->names[0], p->label, sizeof(p->names[0]));
		} else {
			strcpy(p->names[0], "emg0");
		}
	}
	switch (p->format) {
	case CONFIG_FORMAT_CSV:
		return source_replay_parse_csv_row(p, s);
	case CONFIG_FORMAT_TIMEVALUE:
		return source_replay_parse_timevalue(p, s);
	default:
		return source_replay_parse_value(p, s, 0, p->cfg->source.scale_uv, 0.0);
	}
}

int source_replay_parse_file(struct source_replay_parser *p, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	char *s;
	int ret = 0;

	for (;;) {
		errno = 0;
		len = getline(&line, &cap, f);
		if (len < 0) {
			if (!feof(f)) {
				ret = errno ? -errno : -EIO;
				source_replay_parse_fail(p, 0, ret, "read error: %s",
							 strerror(-ret));
			}
			break;
		}
		p->line++;
		if (memchr(line, '\0', (size_t)len)) {
			ret = source_replay_parse_fail(p, p->line, -EINVAL,
						       "NUL byte in line (not a text file?)");
			break;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
			line[--len] = '\0';
		}
		s = line;
		/* A UTF-8 byte order mark, as some spreadsheets write. */
		if (p->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0) {
			s += 3;
		}
		while (isspace((unsigned char)*s)) {
			s++;
		}
		if (*s == '#') {
			if (!p->in_data) {
				ret = source_replay_parse_header(p, s + 1);
				if (ret) {
					break;
				}
			}
			continue;
		}
		if (*s == '\0') {
			/* In a csv an empty row is all empty cells: the end. */
			if (p->in_data && p->format == CONFIG_FORMAT_CSV) {
				break;
			}
			continue;
		}
		ret = source_replay_parse_data_line(p, s);
		if (ret) {
			if (ret > 0) {
				ret = 0;
			}
			break;
		}
	}
	free(line);
	if (ret) {
		return ret;
	}
	if (p->n == 0) {
		return source_replay_parse_fail(p, 0, -EINVAL, "no samples");
	}
	if (p->format == CONFIG_FORMAT_TIMEVALUE && !p->step_known) {
		ret = source_replay_parse_head(p);
	} else if (p->rate == 0) {
		ret = source_replay_parse_rate(p);
	}
	return ret;
}

void source_replay_parse_fini(struct source_replay_parser *p)
{
	free(p->cells);
	free(p->data);
}
