/* SPDX-License-Identifier: MIT */
/*
 * Replay source: formats, detection, error messages, block reading, pacing.
 * Small inputs live in tests/data/replay; the real recordings in data/emg
 * (their sources, licences and cuts in data/emg/README.md). Nothing outside
 * the source tree is read: a clone needs nothing beside it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "source.h"

#define REPLAY_DIR TEST_DATA_DIR "/replay"
#define EMG_DIR TEST_SOURCE_ROOT "/data/emg"

static char err[CONFIG_ERR_MAX];

/* A configuration reading @file (relative to tests/data/replay). */
static void cfg_for(struct rpmsd_config *cfg, const char *file)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->source.file, sizeof(cfg->source.file), "%s/%s",
		 REPLAY_DIR, file);
	cfg->source.format = CONFIG_FORMAT_AUTO;
	strcpy(cfg->source.column, "1");
	cfg->source.scale_uv = 1.0;
}

static struct source *open_ok(const struct rpmsd_config *cfg)
{
	struct source *src = NULL;
	int ret;

	ret = source_replay_open(cfg, false, &src, err, sizeof(err));
	if (ret) {
		print_error("unexpected error %d: %s\n", ret, err);
	}
	assert_int_equal(ret, 0);
	assert_non_null(src);
	return src;
}

/* Read everything in one go into a new array. */
static float *read_all(struct source *src)
{
	struct source_block blk;
	size_t n = (size_t)src->total_frames;
	float *buf = calloc(n * src->channels + 1, sizeof(float));

	assert_non_null(buf);
	assert_int_equal(src->ops->start(src, 0, NULL), 0);
	assert_int_equal(src->ops->read(src, buf, n + 10, &blk), 1);
	assert_int_equal(blk.frames, n);
	assert_int_equal(blk.first_sample, 0);
	assert_int_equal(src->ops->read(src, buf, n + 10, &blk), 0);
	return buf;
}

/* Opening must fail with @ret and exactly "<file path><rest>". */
static void expect_error(const struct rpmsd_config *cfg, int ret, const char *rest)
{
	char want[CONFIG_ERR_MAX * 2];
	struct source dummy;
	struct source *src = &dummy;

	snprintf(want, sizeof(want), "%s%s", cfg->source.file, rest);
	assert_int_equal(source_replay_open(cfg, false, &src, err, sizeof(err)), ret);
	assert_null(src);
	assert_string_equal(err, want);
}

static void expect_file_error(const char *file, int ret, const char *rest)
{
	struct rpmsd_config cfg;

	cfg_for(&cfg, file);
	expect_error(&cfg, ret, rest);
}

/*
 * A real recording of data/emg (@name relative to it). A missing one
 * fails the test: a skip would count as a pass.
 */
static void cfg_for_real(struct rpmsd_config *cfg, const char *name)
{
	cfg_for(cfg, "");
	snprintf(cfg->source.file, sizeof(cfg->source.file), "%s/%s", EMG_DIR, name);
	if (access(cfg->source.file, R_OK) != 0) {
		fail_msg("%s: missing from the source tree (see data/emg/README.md)",
			 cfg->source.file);
	}
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_text_header(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;
	float *v;

	(void)state;
	cfg_for(&cfg, "text_basic.txt");
	cfg.source.scale_uv = 2.0;
	src = open_ok(&cfg);
	assert_int_equal(src->channels, 1);
	assert_true(src->rate_hz == 500.0);
	assert_int_equal(src->total_frames, 4);
	assert_string_equal(src->channel_names[0], "BICEPS");
	assert_string_equal(src->description,
			    "text_basic.txt (text, 1 channel, 500 Hz, 4 frames)");
	v = read_all(src);
	assert_true(v[0] == 20.0f);
	assert_true(v[1] == -41.0f);
	assert_true(v[2] == 600.0f);
	assert_true(v[3] == 14.0f);
	free(v);
	source_destroy(src);
}

static void test_text_cfg_rate(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;

	(void)state;
	cfg_for(&cfg, "text_plain.txt");
	cfg.source.format = CONFIG_FORMAT_TEXT;
	cfg.source.rate_hz = 2048;
	src = open_ok(&cfg);
	assert_true(src->rate_hz == 2048.0);
	assert_int_equal(src->total_frames, 3);
	assert_string_equal(src->channel_names[0], "emg0");
	source_destroy(src);

	/* Within 0.1% of the header's 500 Hz: the configured rate is used. */
	cfg_for(&cfg, "text_basic.txt");
	cfg.source.rate_hz = 500.4;
	src = open_ok(&cfg);
	assert_true(src->rate_hz == 500.4);
	source_destroy(src);
}

static void test_text_crlf(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;
	float *v;

	(void)state;
	cfg_for(&cfg, "text_crlf.txt");
	src = open_ok(&cfg);
	assert_true(src->rate_hz == 250.0);
	assert_int_equal(src->total_frames, 3);
	v = read_all(src);
	assert_true(v[0] == 1.5f);
	assert_true(v[1] == -2.5f);
	assert_true(v[2] == 4.0f);
	free(v);
	source_destroy(src);
}

static void test_relative_path(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;

	(void)state;
	cfg_for(&cfg, "");
	snprintf(cfg.path, sizeof(cfg.path), "%s/rpmsd.conf", REPLAY_DIR);
	strcpy(cfg.source.file, "text_basic.txt");
	src = open_ok(&cfg);
	assert_int_equal(src->total_frames, 4);
	source_destroy(src);
}

static void test_csv_columns(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;
	float *v;

	(void)state;
	cfg_for(&cfg, "csv_basic.csv");
	cfg.source.scale_uv = 0.5;
	src = open_ok(&cfg);		/* column "1": never empty */
	assert_int_equal(src->channels, 1);
	assert_true(src->rate_hz == 2000.0);
	assert_int_equal(src->total_frames, 5);
	assert_string_equal(src->channel_names[0], "a");
	v = read_all(src);
	assert_true(v[0] == 0.5f);
	assert_true(v[4] == 2.5f);
	free(v);
	source_destroy(src);

	/* By name, padded in the header; its empty cell on line 7 ends it. */
	cfg_for(&cfg, "csv_basic.csv");
	strcpy(cfg.source.column, "b");
	src = open_ok(&cfg);
	assert_int_equal(src->total_frames, 3);
	assert_string_equal(src->channel_names[0], "b");
	assert_string_equal(src->description,
			    "csv_basic.csv (csv column b, 1 channel, 2000 Hz, 3 frames)");
	v = read_all(src);
	assert_true(v[0] == 10.0f);
	assert_true(v[1] == 20.0f);
	assert_true(v[2] == 30.0f);
	free(v);
	source_destroy(src);

	/* Two columns interleave; the shorter one ends the data. */
	cfg_for(&cfg, "csv_basic.csv");
	strcpy(cfg.source.column, "3, a");
	src = open_ok(&cfg);
	assert_int_equal(src->channels, 2);
	assert_int_equal(src->total_frames, 2);
	assert_string_equal(src->channel_names[0], "c");
	assert_string_equal(src->channel_names[1], "a");
	assert_string_equal(src->description,
			    "csv_basic.csv (csv columns c,a, 2 channels, 2000 Hz, 2 frames)");
	v = read_all(src);
	assert_true(v[0] == 100.0f);
	assert_true(v[1] == 1.0f);
	assert_true(v[2] == 200.0f);
	assert_true(v[3] == 2.0f);
	free(v);
	source_destroy(src);
}

static void test_csv_end(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;
	float *v;

	(void)state;
	/* Rows after the end are not looked at, even a broken one. */
	cfg_for(&cfg, "csv_end.csv");
	cfg.source.rate_hz = 1000;
	strcpy(cfg.source.column, "y");
	src = open_ok(&cfg);
	assert_int_equal(src->total_frames, 1);
	v = read_all(src);
	assert_true(v[0] == 2.0f);
	free(v);
	source_destroy(src);

	/* An empty cell in a column not chosen is fine; the broken row is not. */
	cfg_for(&cfg, "csv_end.csv");
	cfg.source.rate_hz = 1000;
	strcpy(cfg.source.column, "x");
	expect_error(&cfg, -EINVAL, ":4: expected 2 cells, found 1");

	/* A malformed cell in a column not chosen is not parsed. */
	cfg_for(&cfg, "csv_malformed.csv");
	cfg.source.rate_hz = 1000;
	src = open_ok(&cfg);
	assert_int_equal(src->total_frames, 2);
	source_destroy(src);
}

static void test_csv_single_and_crlf(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;
	float *v;

	(void)state;
	/* A non-numeric first line makes a one-column csv; an empty row ends it. */
	cfg_for(&cfg, "csv_single.csv");
	cfg.source.rate_hz = 1000;
	src = open_ok(&cfg);
	assert_string_equal(src->channel_names[0], "emg");
	assert_int_equal(src->total_frames, 2);
	source_destroy(src);

	cfg_for(&cfg, "csv_crlf.csv");
	cfg.source.rate_hz = 1000;
	strcpy(cfg.source.column, "b,a");
	src = open_ok(&cfg);
	assert_string_equal(src->channel_names[0], "b");
	assert_int_equal(src->total_frames, 2);
	v = read_all(src);
	assert_true(v[0] == 2.0f);
	assert_true(v[1] == 1.0f);
	assert_true(v[2] == 4.0f);
	assert_true(v[3] == 3.0f);
	free(v);
	source_destroy(src);
}

static void test_csv_long_lines(void **state)
{
	char path[] = "/tmp/test_source_replay_XXXXXX";
	struct rpmsd_config cfg;
	struct source *src;
	FILE *f;
	float *v;
	int fd, i, row;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (i = 1; i <= 1000; i++) {
		fprintf(f, "%scolumn_number_%d", i > 1 ? "," : "", i);
	}
	fputc('\n', f);
	for (row = 0; row < 3; row++) {
		for (i = 1; i <= 1000; i++) {
			fprintf(f, "%s%d.000125", i > 1 ? "," : "", row * 10000 + i);
		}
		fputc('\n', f);
	}
	fclose(f);

	cfg_for(&cfg, "");
	strcpy(cfg.source.file, path);
	cfg.source.rate_hz = 1000;
	strcpy(cfg.source.column, "column_number_999");
	src = open_ok(&cfg);
	unlink(path);
	assert_int_equal(src->total_frames, 3);
	v = read_all(src);
	assert_float_equal(v[0], 999.000125, 1e-3);
	assert_float_equal(v[2], 20999.000125, 1e-2);
	free(v);
	source_destroy(src);
}

static void test_timevalue(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;
	float *v;

	(void)state;
	cfg_for(&cfg, "tv_basic.txt");
	cfg.source.scale_uv = 1000;
	src = open_ok(&cfg);
	assert_true(src->rate_hz == 250.0);
	assert_int_equal(src->total_frames, 5);
	assert_string_equal(src->channel_names[0], "emg0");
	assert_string_equal(src->description,
			    "tv_basic.txt (timevalue, 1 channel, 250 Hz, 5 frames)");
	v = read_all(src);
	assert_true(v[0] == 1000.0f);
	assert_true(v[2] == -3000.0f);
	assert_true(v[3] == 4500.0f);
	free(v);
	source_destroy(src);

	cfg.source.format = CONFIG_FORMAT_TIMEVALUE;
	cfg.source.rate_hz = 250;
	src = open_ok(&cfg);
	assert_int_equal(src->total_frames, 5);
	source_destroy(src);
}

static void test_auto_detect(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;

	(void)state;
	cfg_for(&cfg, "text_basic.txt");
	src = open_ok(&cfg);
	assert_non_null(strstr(src->description, "(text,"));
	source_destroy(src);

	cfg_for(&cfg, "csv_basic.csv");
	src = open_ok(&cfg);
	assert_non_null(strstr(src->description, "(csv column"));
	source_destroy(src);

	cfg_for(&cfg, "tv_basic.txt");
	src = open_ok(&cfg);
	assert_non_null(strstr(src->description, "(timevalue,"));
	source_destroy(src);

	/* Forcing a format parses the same file differently. */
	cfg_for(&cfg, "tv_basic.txt");
	cfg.source.format = CONFIG_FORMAT_TEXT;
	cfg.source.rate_hz = 250;
	expect_error(&cfg, -EINVAL, ":2: malformed value '0.000 1'");

	expect_file_error("tv_three.txt", -EINVAL,
			  ":1: cannot tell the format from 3 values in a line: set source.format");
}

static void test_text_errors(void **state)
{
	struct rpmsd_config cfg;

	(void)state;
	expect_file_error("text_malformed.txt", -EINVAL, ":4: malformed value 'abc'");
	expect_file_error("text_garbage.txt", -EINVAL, ":3: malformed value '12abc'");
	expect_file_error("text_nan.txt", -EINVAL, ":3: malformed value 'nan'");
	expect_file_error("text_inf.txt", -EINVAL, ":3: malformed value '-inf'");
	expect_file_error("text_empty.txt", -EINVAL, ": no samples");
	expect_file_error("text_badrate.txt", -EINVAL,
			  ":1: malformed sampling rate 'fast'");
	expect_file_error("text_plain.txt", -EINVAL,
			  ": sampling rate unknown: set source.rate_hz or add a '# Sampling Rate (Hz):= ...' header");
	expect_file_error("tv_ufffd.txt", -EINVAL,
			  ":3: malformed value '0.2617\xef\xbf\xbd" "0.0850'");

	cfg_for(&cfg, "text_basic.txt");
	cfg.source.rate_hz = 1000;
	expect_error(&cfg, -EINVAL,
		     ":2: the file says 500 Hz but source.rate_hz is 1000 Hz");

	cfg_for(&cfg, "text_basic.txt");
	strcpy(cfg.source.column, "2");
	expect_error(&cfg, -EINVAL,
		     ": source.column '2' needs a csv file (this is a text file with one channel)");

	expect_file_error("does_not_exist.txt", -ENOENT,
			  ": cannot open: No such file or directory");
}

static void test_csv_errors(void **state)
{
	struct rpmsd_config cfg;

	(void)state;
	cfg_for(&cfg, "csv_malformed.csv");
	cfg.source.rate_hz = 1000;
	strcpy(cfg.source.column, "r");
	expect_error(&cfg, -EINVAL, ":3: column 3: malformed value 'x'");

	cfg_for(&cfg, "csv_count.csv");
	cfg.source.rate_hz = 1000;
	expect_error(&cfg, -EINVAL, ":3: expected 12 cells, found 7");

	strcpy(cfg.source.column, "foo");
	expect_error(&cfg, -EINVAL,
		     ":1: column 'foo' not found (columns: c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, ...)");

	strcpy(cfg.source.column, "13");
	expect_error(&cfg, -EINVAL, ":1: column 13 not found (the file has 12 columns)");

	strcpy(cfg.source.column, "0");
	expect_error(&cfg, -EINVAL, ":1: column 0 not found (the file has 12 columns)");

	strcpy(cfg.source.column, "1,,2");
	expect_error(&cfg, -EINVAL, ": source.column '1,,2': empty entry");

	strcpy(cfg.source.column, "1,2,3,4,5,6,7,8,9");
	expect_error(&cfg, -EINVAL, ": source.column '1,2,3,4,5,6,7,8,9': at most 8 columns");

	/* No rate anywhere. */
	cfg_for(&cfg, "csv_end.csv");
	strcpy(cfg.source.column, "y");
	expect_error(&cfg, -EINVAL,
		     ": sampling rate unknown: set source.rate_hz or add a '# Sampling Rate (Hz):= ...' header");
}

static void test_timevalue_errors(void **state)
{
	struct rpmsd_config cfg;

	(void)state;
	expect_file_error("tv_jump.txt", -EINVAL,
			  ":4: time jumps from 0.002 to 0.004, expected step 0.001");
	expect_file_error("tv_back.txt", -EINVAL,
			  ":4: time does not increase from 0.002 to 0.002");
	expect_file_error("tv_header.txt", -EINVAL,
			  ":1: the file says 1000 Hz but the time column gives 250 Hz");

	cfg_for(&cfg, "tv_basic.txt");
	cfg.source.rate_hz = 1000;
	expect_error(&cfg, -EINVAL,
		     ": the time column gives 250 Hz but source.rate_hz is 1000 Hz");

	cfg_for(&cfg, "tv_three.txt");
	cfg.source.format = CONFIG_FORMAT_TIMEVALUE;
	expect_error(&cfg, -EINVAL, ":1: expected 2 values (time value), found 3");
}

static void test_real_emg_1(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;
	float *v;

	(void)state;
	cfg_for_real(&cfg, "emg_1.txt");
	cfg.source.scale_uv = 0.5;
	src = open_ok(&cfg);
	assert_int_equal(src->total_frames, 63880);
	assert_true(src->rate_hz == 1000.0);
	assert_string_equal(src->channel_names[0], "EMG");
	assert_string_equal(src->description,
			    "emg_1.txt (text, 1 channel, 1000 Hz, 63880 frames)");
	v = read_all(src);
	assert_true(v[0] == 2034 * 0.5f);
	assert_true(v[1] == 2011 * 0.5f);
	free(v);
	source_destroy(src);
}

static void test_real_signals_csv(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;

	(void)state;
	cfg_for_real(&cfg, "simulated_onsets/signals.csv");
	cfg.source.rate_hz = 1000;
	strcpy(cfg.source.column, "trial9");
	src = open_ok(&cfg);
	/* awk -F, 'NR>2 && $9!=""' signals.csv | wc -l */
	assert_int_equal(src->total_frames, 22469);
	assert_string_equal(src->channel_names[0], "trial9");
	source_destroy(src);

	strcpy(cfg.source.column, "foo");
	expect_error(&cfg, -EINVAL,
		     ":2: column 'foo' not found (columns: trial1, trial2, trial3, trial4, trial5, trial6, trial7, trial8, trial9, trial10)");

	/* Its only comment line mentions 1000 Hz, but not as a header. */
	cfg.source.rate_hz = 0;
	strcpy(cfg.source.column, "9");
	expect_error(&cfg, -EINVAL,
		     ": sampling rate unknown: set source.rate_hz or add a '# Sampling Rate (Hz):= ...' header");
}

static void test_real_physionet(void **state)
{
	struct rpmsd_config cfg;
	struct source *src;

	(void)state;
	/* Clean, CRLF on some lines, 4 decimals of time after 10 s. */
	cfg_for_real(&cfg, "physionet_emgdb/emg_healthy.txt");
	src = open_ok(&cfg);
	assert_true(src->rate_hz == 4000.0);
	assert_int_equal(src->total_frames, 50860);
	source_destroy(src);

	/* The missing sample at t = 5.511 s is caught (the file's first 22100 lines). */
	cfg_for_real(&cfg, "physionet_emgdb/emg_myopathy_head.txt");
	expect_error(&cfg, -EINVAL,
		     ":22044: time jumps from 5.51075 to 5.51125, expected step 0.00025");

	/* A time step rounded wrong (its first 49000 lines). */
	cfg_for_real(&cfg, "physionet_emgdb/emg_neuropathy_head.txt");
	expect_error(&cfg, -EINVAL,
		     ":48970: time jumps from 12.2423 to 12.243, expected step 0.00025");
}

/*
 * The stray U+FFFD of emg_myopathy.txt line 93751 cannot be reached in the
 * file itself (the time jump at line 22044 comes first), so its lines
 * 93700-93800 (all that data/emg keeps of them) are replayed behind
 * comment lines that keep the line numbers.
 */
static void test_real_myopathy_ufffd(void **state)
{
	char path[] = "/tmp/test_source_replay_XXXXXX";
	char want[CONFIG_ERR_MAX];
	struct rpmsd_config cfg;
	struct source *src = NULL;
	char *line = NULL;
	size_t cap = 0;
	FILE *in, *out;
	long n;
	int fd;

	(void)state;
	cfg_for_real(&cfg, "physionet_emgdb/emg_myopathy_93700-93800.txt");
	in = fopen(cfg.source.file, "r");
	assert_non_null(in);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	out = fdopen(fd, "w");
	assert_non_null(out);
	for (n = 1; n < 93700; n++) {
		fputs("#\n", out);
	}
	while (getline(&line, &cap, in) >= 0) {
		fputs(line, out);
		n++;
	}
	free(line);
	fclose(in);
	fclose(out);
	assert_int_equal(n, 93801);

	strcpy(cfg.source.file, path);
	snprintf(want, sizeof(want), "%s:93751: malformed value '0.2617\xef\xbf\xbd" "0.0850'",
		 path);
	assert_int_equal(source_replay_open(&cfg, false, &src, err, sizeof(err)), -EINVAL);
	unlink(path);
	assert_string_equal(err, want);
}

static void test_blocks(void **state)
{
	struct rpmsd_config cfg;
	struct source_block blk;
	struct source *src;
	float *all, *buf;
	uint64_t next = 0;
	int blocks = 0;

	(void)state;
	cfg_for_real(&cfg, "emg_1.txt");
	src = open_ok(&cfg);
	all = read_all(src);
	buf = calloc(1000, sizeof(float));
	assert_non_null(buf);

	assert_int_equal(src->ops->start(src, 0, NULL), 0);
	while (src->ops->read(src, buf, 1000, &blk) == 1) {
		assert_int_equal(blk.first_sample, next);
		assert_memory_equal(buf, all + next, blk.frames * sizeof(float));
		next += blk.frames;
		blocks++;
		assert_int_equal(blk.frames, next == 63880 ? 880 : 1000);
	}
	assert_int_equal(blocks, 64);
	assert_int_equal(next, 63880);
	assert_int_equal(src->ops->read(src, buf, 1000, &blk), 0);
	assert_int_equal(blk.frames, 0);

	/* start replays from the beginning. */
	assert_int_equal(src->ops->start(src, 0, NULL), 0);
	assert_int_equal(src->ops->read(src, buf, 10, &blk), 1);
	assert_int_equal(blk.first_sample, 0);
	assert_memory_equal(buf, all, 10 * sizeof(float));

	free(buf);
	free(all);
	source_destroy(src);
}

static void test_blocks_multichannel(void **state)
{
	struct rpmsd_config cfg;
	struct source_block blk;
	struct source *src;
	float buf[4 * 2];

	(void)state;
	cfg_for(&cfg, "csv_basic.csv");
	strcpy(cfg.source.column, "1,2");
	src = open_ok(&cfg);
	assert_int_equal(src->total_frames, 3);
	assert_int_equal(src->ops->start(src, 0, NULL), 0);
	assert_int_equal(src->ops->read(src, buf, 2, &blk), 1);
	assert_int_equal(blk.frames, 2);
	assert_int_equal(blk.first_sample, 0);
	assert_true(buf[0] == 1.0f && buf[1] == 10.0f);
	assert_true(buf[2] == 2.0f && buf[3] == 20.0f);
	assert_int_equal(src->ops->read(src, buf, 2, &blk), 1);
	assert_int_equal(blk.frames, 1);
	assert_int_equal(blk.first_sample, 2);
	assert_true(buf[0] == 3.0f && buf[1] == 30.0f);
	assert_int_equal(src->ops->read(src, buf, 2, &blk), 0);
	source_destroy(src);
}

static void test_read_rejects(void **state)
{
	struct rpmsd_config cfg;
	struct source_block blk;
	struct source *src;
	float buf[4];

	(void)state;
	cfg_for(&cfg, "text_basic.txt");
	src = open_ok(&cfg);
	assert_int_equal(src->ops->read(src, buf, 4, &blk), -EINVAL);	/* not started */
	assert_int_equal(src->ops->start(src, 0, NULL), 0);
	assert_int_equal(src->ops->read(src, buf, 0, &blk), -EINVAL);
	source_destroy(src);
	source_destroy(NULL);
}

static void test_paced(void **state)
{
	struct rpmsd_config cfg;
	struct source_block blk;
	struct source *src = NULL;
	float buf[8];
	int64_t t0, due;
	int i;

	(void)state;
	cfg_for_real(&cfg, "emg_1.txt");
	assert_int_equal(source_replay_open(&cfg, true, &src, err, sizeof(err)), 0);
	t0 = now_ns() + 5000000;
	assert_int_equal(src->ops->start(src, t0, NULL), 0);
	for (i = 0; i < 50; i++) {
		assert_int_equal(src->ops->read(src, buf, 8, &blk), 1);
		assert_int_equal(blk.first_sample, (uint64_t)i * 8);
		/* Never before the ADC would have delivered the last sample. */
		due = t0 + (int64_t)(blk.first_sample + blk.frames) * 1000000;
		assert_true(now_ns() >= due);
	}
	assert_true(now_ns() >= t0 + 400 * 1000000LL);
	source_destroy(src);
}

/* A paced read waiting for data gives up when its stop flag is set. */
static void test_paced_stop(void **state)
{
	struct rpmsd_config cfg;
	struct source_block blk;
	struct source *src = NULL;
	atomic_bool stop;
	float buf[8];

	(void)state;
	cfg_for_real(&cfg, "emg_1.txt");
	assert_int_equal(source_replay_open(&cfg, true, &src, err, sizeof(err)), 0);
	atomic_init(&stop, false);
	/* sample 0 is due in an hour: only the stop flag can end this read */
	assert_int_equal(src->ops->start(src, now_ns() + 3600 * 1000000000LL, &stop), 0);
	atomic_store(&stop, true);
	assert_int_equal(src->ops->read(src, buf, 8, &blk), -EINTR);
	source_destroy(src);
}

/* Steps each within tolerance but drifting: refused where the drift shows. */
static void test_time_drift(void **state)
{
	(void)state;
	expect_file_error("tv_drift.txt", -EINVAL,
			  ":1004: time 1.0036 drifts from 1.003, where sample 1003 is due at 1000 Hz");
}

/* A header rate outside what the filters are designed for. */
static void test_rate_out_of_range(void **state)
{
	(void)state;
	expect_file_error("text_rate_low.txt", -EINVAL,
			  ":1: sampling rate 10 Hz is out of range (allowed: 100 to 100000 Hz)");
}

/* A FIFO as recording would block the start for ever: refused. */
static void test_not_regular_file(void **state)
{
	struct rpmsd_config cfg;
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/rpmsd-test-replay-fifo-%d", (int)getpid());
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	cfg_for(&cfg, "");
	snprintf(cfg.source.file, sizeof(cfg.source.file), "%s", path);
	expect_error(&cfg, -EINVAL, ": not a regular file (allowed: a recording)");
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_drift),
		cmocka_unit_test(test_rate_out_of_range),
		cmocka_unit_test(test_not_regular_file),
		cmocka_unit_test(test_paced_stop),
		cmocka_unit_test(test_text_header),
		cmocka_unit_test(test_text_cfg_rate),
		cmocka_unit_test(test_text_crlf),
		cmocka_unit_test(test_relative_path),
		cmocka_unit_test(test_csv_columns),
		cmocka_unit_test(test_csv_end),
		cmocka_unit_test(test_csv_single_and_crlf),
		cmocka_unit_test(test_csv_long_lines),
		cmocka_unit_test(test_timevalue),
		cmocka_unit_test(test_auto_detect),
		cmocka_unit_test(test_text_errors),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_timevalue_errors),
		cmocka_unit_test(test_real_emg_1),
		cmocka_unit_test(test_real_signals_csv),
		cmocka_unit_test(test_real_physionet),
		cmocka_unit_test(test_real_myopathy_ufffd),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_blocks_multichannel),
		cmocka_unit_test(test_read_rejects),
		cmocka_unit_test(test_paced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
