/* SPDX-License-Identifier: MIT */
/*
 * Train-duration table: parsing, the built-in default and the
 * conservative lookup the safety gate uses on every pulse.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "train_table.h"

/* A table is a few lines: a longer line, or a bigger file, is not a table. */
#define TRAIN_TABLE_LINE_MAX 1022
#define TRAIN_TABLE_FILE_MAX (1 << 20)

/*
 * Wassermann EM (1998), Risk and safety of repetitive transcranial
 * magnetic stimulation, Electroencephalogr Clin Neurophysiol 108:1-16,
 * Table 4 (from Chen et al. 1997 and Pascual-Leone et al. 1993),
 * reproduced in Rossi et al. (2009) Clin Neurophysiol 120:2008-2039.
 * Cells the paper gives as "> x" (the longest train tested without an
 * adverse effect) are taken as x.
 */
static const double train_table_levels[] = {
	90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 210, 220,
};

static const double train_table_rates[] = { 1, 5, 10, 20, 25 };

static const double train_table_cells[][14] = {
	{ 1800, 1800, 1800, 360, 50, 50, 50, 50, 27, 11, 11, 8, 7, 6 },
	{ 10, 10, 10, 10, 10, 10, 10, 10, 7.6, 5.2, 3.6, 2.6, 2.4, 1.6 },
	{ 5, 5, 5, 4.2, 2.9, 1.3, 0.8, 0.9, 0.8, 0.5, 0.6, 0.4, 0.3, 0.3 },
	{ 2.05, 2.05, 1.6, 1.0, 0.55, 0.35, 0.25, 0.25, 0.15, 0.2, 0.25, 0.2, 0.1, 0.1 },
	{ 1.28, 1.28, 0.84, 0.4, 0.24, 0.2, 0.24, 0.2, 0.12, 0.08, 0.12, 0.12, 0.08, 0.08 },
};

#define TRAIN_TABLE_N(a) (sizeof(a) / sizeof((a)[0]))

/* Lower every cell to the least value at any lower-or-equal rate and level. */
static void train_table_hull(struct train_table *t)
{
	unsigned i, j;
	double v;

	for (i = 0; i < t->n_rates; i++) {
		for (j = 0; j < t->n_levels; j++) {
			v = t->max_s[i][j];
			if (i > 0 && t->hull_s[i - 1][j] < v) {
				v = t->hull_s[i - 1][j];
			}
			if (j > 0 && t->hull_s[i][j - 1] < v) {
				v = t->hull_s[i][j - 1];
			}
			t->hull_s[i][j] = v;
		}
	}
}

void train_table_default(struct train_table *t)
{
	unsigned i, j;

	memset(t, 0, sizeof(*t));
	t->n_rates = TRAIN_TABLE_N(train_table_rates);
	t->n_levels = TRAIN_TABLE_N(train_table_levels);
	for (i = 0; i < t->n_rates; i++) {
		t->rate_hz[i] = train_table_rates[i];
		for (j = 0; j < t->n_levels; j++) {
			t->max_s[i][j] = train_table_cells[i][j];
		}
	}
	for (j = 0; j < t->n_levels; j++) {
		t->level_pct[j] = train_table_levels[j];
	}
	train_table_hull(t);
}

__attribute__((format(printf, 5, 6)))
static int train_table_fail(char *err, size_t errlen, const char *path, unsigned line,
			    const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%u: %s", path, line, msg);
	return -EINVAL;
}

/*
 * Split @line at commas into numbers. Every field must be a finite number
 * with nothing else in it but blanks.
 * @return the number of fields, or -1 with @bad set to the 1-based field
 */
static int train_table_fields(char *line, double *out, unsigned max, unsigned *bad)
{
	unsigned n = 0;
	char *p = line, *end;

	for (;;) {
		if (n == max) {
			*bad = n + 1;
			return -1;
		}
		out[n] = strtod(p, &end);
		while (*end == ' ' || *end == '\t') {
			end++;
		}
		if (end == p || !isfinite(out[n]) || (*end != ',' && *end != '\0')) {
			*bad = n + 1;
			return -1;
		}
		n++;
		if (*end == '\0') {
			return (int)n;
		}
		p = end + 1;
	}
}

/* Strip a comment, trailing blanks and the newline; skip leading blanks. */
static char *train_table_clean(char *line)
{
	char *hash = strchr(line, '#');
	size_t n;

	if (hash) {
		*hash = '\0';
	}
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
			 line[n - 1] == '\t')) {
		line[--n] = '\0';
	}
	while (*line == ' ' || *line == '\t') {
		line++;
	}
	return line;
}

/*
 * Open @path only if it is a regular file of a sensible size. The open
 * never blocks: a FIFO put in place of the table (at start-up or before a
 * SIGHUP) would otherwise hold the thread that reads it for ever, and
 * that thread also answers SIGTERM.
 */
static FILE *train_table_open(const char *path, char *err, size_t errlen, int *ret)
{
	struct stat st;
	FILE *f;

	f = file_open_regular(path, ret);
	if (!f) {
		if (*ret == -EISDIR) {
			snprintf(err, errlen, "%s: is a directory (allowed: a CSV file)", path);
		} else if (*ret == -EINVAL) {
			snprintf(err, errlen,
				 "%s: not a regular file (allowed: a CSV file; a FIFO, a device or a socket is never read)",
				 path);
		} else {
			snprintf(err, errlen, "%s: cannot read the train table: %s", path,
				 strerror(-*ret));
		}
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0) {
		*ret = -errno;
		snprintf(err, errlen, "%s: cannot read the train table: %s", path, strerror(errno));
		fclose(f);
		return NULL;
	}
	if (st.st_size > TRAIN_TABLE_FILE_MAX) {
		*ret = -EFBIG;
		snprintf(err, errlen,
			 "%s: %lld bytes, too large for a train table (allowed: at most %d bytes)",
			 path, (long long)st.st_size, TRAIN_TABLE_FILE_MAX);
		fclose(f);
		return NULL;
	}
	return f;
}

int train_table_load(const char *path, struct train_table *t, char *err, size_t errlen)
{
	double vals[TRAIN_TABLE_MAX_LEVELS + 1];
	char *buf = NULL, *line, *nul;
	size_t cap = 0, total = 0;
	ssize_t len;
	unsigned lineno = 0, bad = 0, j;
	bool header = false;
	FILE *f;
	int n, ret;

	memset(t, 0, sizeof(*t));
	f = train_table_open(path, err, errlen, &ret);
	if (!f) {
		return ret;
	}
	for (;;) {
		errno = 0;
		len = getline(&buf, &cap, f);
		if (len < 0) {
			break;
		}
		lineno++;
		total += (size_t)len;
		if (total > TRAIN_TABLE_FILE_MAX) {
			/* it grew while being read */
			ret = train_table_fail(err, errlen, path, lineno,
					       "the file is larger than %d bytes",
					       TRAIN_TABLE_FILE_MAX);
			goto err_close;
		}
		/* fgets-style reading would take a NUL for the end of the line */
		nul = memchr(buf, '\0', (size_t)len);
		if (nul) {
			ret = train_table_fail(err, errlen, path, lineno,
					       "a NUL byte at column %zu (a train table is text)",
					       (size_t)(nul - buf) + 1);
			goto err_close;
		}
		if (len > TRAIN_TABLE_LINE_MAX + 1 ||
		    (len == TRAIN_TABLE_LINE_MAX + 1 && buf[len - 1] != '\n')) {
			ret = train_table_fail(err, errlen, path, lineno, "line longer than %d bytes",
					       TRAIN_TABLE_LINE_MAX);
			goto err_close;
		}
		line = train_table_clean(buf);
		if (!*line) {
			continue;
		}
		if (!header) {
			/* "hz," then the intensity levels */
			if (strncmp(line, "hz,", 3) != 0) {
				ret = train_table_fail(err, errlen, path, lineno,
						       "the header must start with 'hz,' followed by the intensities in %% of motor threshold");
				goto err_close;
			}
			n = train_table_fields(line + 3, t->level_pct, TRAIN_TABLE_MAX_LEVELS, &bad);
			if (n < 0) {
				ret = train_table_fail(err, errlen, path, lineno,
						       "intensity %u: not a number, or more than %d intensities",
						       bad, TRAIN_TABLE_MAX_LEVELS);
				goto err_close;
			}
			t->n_levels = (unsigned)n;
			for (j = 0; j < t->n_levels; j++) {
				if (!(t->level_pct[j] > 0) ||
				    (j > 0 && !(t->level_pct[j] > t->level_pct[j - 1]))) {
					ret = train_table_fail(err, errlen, path, lineno,
							       "intensity %u (%g): intensities must be above 0 and strictly ascending",
							       j + 1, t->level_pct[j]);
					goto err_close;
				}
			}
			header = true;
			continue;
		}
		if (t->n_rates == TRAIN_TABLE_MAX_RATES) {
			ret = train_table_fail(err, errlen, path, lineno, "more than %d rates",
					       TRAIN_TABLE_MAX_RATES);
			goto err_close;
		}
		n = train_table_fields(line, vals, TRAIN_TABLE_MAX_LEVELS + 1, &bad);
		if (n < 0) {
			ret = train_table_fail(err, errlen, path, lineno, "field %u: not a number", bad);
			goto err_close;
		}
		if ((unsigned)n != t->n_levels + 1) {
			ret = train_table_fail(err, errlen, path, lineno,
					       "%d fields, the header has %u (a rate and %u durations)",
					       n, t->n_levels + 1, t->n_levels);
			goto err_close;
		}
		if (!(vals[0] > 0) || (t->n_rates > 0 && !(vals[0] > t->rate_hz[t->n_rates - 1]))) {
			ret = train_table_fail(err, errlen, path, lineno,
					       "rate %g Hz: rates must be above 0 and strictly ascending",
					       vals[0]);
			goto err_close;
		}
		for (j = 0; j < t->n_levels; j++) {
			if (!(vals[j + 1] >= 0)) {
				ret = train_table_fail(err, errlen, path, lineno,
						       "duration %u (%g s): must be 0 or more", j + 1,
						       vals[j + 1]);
				goto err_close;
			}
			t->max_s[t->n_rates][j] = vals[j + 1];
		}
		t->rate_hz[t->n_rates++] = vals[0];
	}
	/* getline leaves errno alone at the end of the file */
	if (ferror(f) || errno == ENOMEM) {
		ret = errno ? -errno : -EIO;
		train_table_fail(err, errlen, path, lineno + 1, "read error: %s", strerror(-ret));
		goto err_close;
	}
	if (!header || t->n_rates == 0) {
		ret = train_table_fail(err, errlen, path, lineno,
				       "no %s: a table needs the 'hz,...' header and at least one rate",
				       header ? "rates" : "header");
		goto err_close;
	}
	free(buf);
	fclose(f);
	train_table_hull(t);
	return 0;

err_close:
	free(buf);
	fclose(f);
	memset(t, 0, sizeof(*t));
	return ret;
}

/* Index of the first grid value >= @x (within a relative 1e-6), or @n. */
static unsigned train_table_up(const double *grid, unsigned n, double x)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (x <= grid[i] * (1.0 + 1e-6)) {
			return i;
		}
	}
	return n;
}

double train_table_max_s(const struct train_table *t, double rate_hz, double level_pct)
{
	unsigned i, j;

	/* NaN compares false everywhere: refuse it outright. */
	if (!(rate_hz >= 0.0) || !(level_pct >= 0.0)) {
		return 0.0;
	}
	i = train_table_up(t->rate_hz, t->n_rates, rate_hz);
	j = train_table_up(t->level_pct, t->n_levels, level_pct);
	if (i >= t->n_rates || j >= t->n_levels) {
		return 0.0;
	}
	return t->hull_s[i][j];
}
