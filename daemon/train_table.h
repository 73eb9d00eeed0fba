/* SPDX-License-Identifier: MIT */
/*
 * The train-duration table: the longest train the safety gate admits at a
 * given pulse rate and intensity, in the style of the published rTMS
 * safety tables (rate in Hz down the rows, intensity in % of the patient's
 * motor threshold across the columns, seconds in the cells).
 *
 * A table is read from a small CSV file (safety.train_table) or is the
 * built-in default, transcribed from Wassermann 1998, Table 4 (see
 * docs/safety.md). Lookups are conservative: a rate or an intensity
 * between two grid lines takes the higher one, and every cell is lowered
 * to the smallest value at any lower-or-equal rate and intensity, so that
 * more pulses per second or more intensity can never allow a longer train.
 */
#ifndef RPMSD_TRAIN_TABLE_H
#define RPMSD_TRAIN_TABLE_H

#include <stddef.h>

/** Most rows (rates) in a table. */
#define TRAIN_TABLE_MAX_RATES 16
/** Most columns (intensities) in a table. */
#define TRAIN_TABLE_MAX_LEVELS 32

/** A table as written, and its conservative hull. Plain data. */
struct train_table {
	unsigned n_rates;
	unsigned n_levels;
	double rate_hz[TRAIN_TABLE_MAX_RATES];		/* strictly ascending */
	double level_pct[TRAIN_TABLE_MAX_LEVELS];	/* % motor threshold, strictly ascending */
	double max_s[TRAIN_TABLE_MAX_RATES][TRAIN_TABLE_MAX_LEVELS];	/* as written */
	double hull_s[TRAIN_TABLE_MAX_RATES][TRAIN_TABLE_MAX_LEVELS];	/* lowered, monotone */
};

/** Fill @t with the built-in table (Wassermann 1998, Table 4). */
void train_table_default(struct train_table *t);

/**
 * Read a table from the CSV file @path: a header line "hz,L1,L2,..." with
 * the intensities in % of motor threshold, then one line per rate
 * "F,S1,S2,..." with the longest train in seconds. '#' starts a comment.
 * Only a regular file of at most 1 MiB is read, and opening it never
 * blocks (a FIFO, a device, a socket or a directory is refused at once).
 * @param err  receives "PATH:LINE: what was wrong" or "PATH: what was wrong"
 * @return 0; -errno when the file cannot be opened or read (-EISDIR a
 *         directory, -EFBIG too large); -EINVAL when it is not a regular
 *         file or is malformed. @t is zeroed on failure.
 */
int train_table_load(const char *path, struct train_table *t, char *err, size_t errlen);

/**
 * Longest train, in seconds, admitted at @rate_hz and @level_pct (% of
 * motor threshold). 0 outside the table: above its highest rate or
 * intensity nothing is known, so nothing is admitted. A rate or level
 * within a relative 1e-6 of a grid line counts as on it (schedules in whole
 * nanoseconds). Pure and RT-safe.
 */
double train_table_max_s(const struct train_table *t, double rate_hz, double level_pct);

#endif /* RPMSD_TRAIN_TABLE_H */
