/* SPDX-License-Identifier: MIT */
/*
 * The train-duration table: the built-in cells, the conservative lookup
 * (grid lines rounded up, the monotone hull, nothing outside the table)
 * and every way a table file can be wrong, each named with its line.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "train_table.h"

static void test_table_default_cells(void **state)
{
	struct train_table t;

	(void)state;
	train_table_default(&t);
	assert_int_equal(t.n_rates, 5);
	assert_int_equal(t.n_levels, 14);
	/* on the grid: the published cell */
	assert_true(train_table_max_s(&t, 25.0, 100.0) == 1.28);
	assert_true(train_table_max_s(&t, 20.0, 110.0) == 1.6);
	assert_true(train_table_max_s(&t, 1.0, 90.0) == 1800.0);
	assert_true(train_table_max_s(&t, 5.0, 220.0) == 1.6);
	/* between grid lines: the higher rate and the higher intensity */
	assert_true(train_table_max_s(&t, 20.5, 100.0) == 1.28);
	assert_true(train_table_max_s(&t, 20.0, 100.5) == 1.6);
	/* below the grid: the first row and column */
	assert_true(train_table_max_s(&t, 0.2, 50.0) == 1800.0);
	assert_true(train_table_max_s(&t, 0.0, 0.0) == 1800.0);
	/* 10 Hz at 160 % is 0.9 s in the paper, but 150 % allows only 0.8 s */
	assert_true(train_table_max_s(&t, 10.0, 160.0) == 0.8);
	/* 25 Hz at 150 % is 0.24 s in the paper, but 140 % allows only 0.2 s */
	assert_true(train_table_max_s(&t, 25.0, 150.0) == 0.2);
	/* a whole-ns schedule of 25 Hz stays on its grid line */
	assert_true(train_table_max_s(&t, 25.0 * (1 + 1e-7), 100.0) == 1.28);
	/* outside the table: nothing is known, nothing is admitted */
	assert_true(train_table_max_s(&t, 26.0, 100.0) == 0.0);
	assert_true(train_table_max_s(&t, 50.0, 90.0) == 0.0);
	assert_true(train_table_max_s(&t, 10.0, 221.0) == 0.0);
	assert_true(train_table_max_s(&t, NAN, 100.0) == 0.0);
	assert_true(train_table_max_s(&t, 10.0, NAN) == 0.0);
	assert_true(train_table_max_s(&t, -1.0, 100.0) == 0.0);
	assert_true(train_table_max_s(&t, 10.0, INFINITY) == 0.0);
}

/* Higher rate or intensity never allows a longer train, anywhere. */
static void test_table_monotone(void **state)
{
	struct train_table t;
	double r, l;

	(void)state;
	train_table_default(&t);
	for (r = 0.5; r <= 25.0; r += 0.5) {
		for (l = 50.0; l <= 220.0; l += 2.5) {
			assert_true(train_table_max_s(&t, r + 0.5, l) <= train_table_max_s(&t, r, l));
			assert_true(train_table_max_s(&t, r, l + 2.5) <= train_table_max_s(&t, r, l));
		}
	}
}

static char table_path[64];

static int table_write(const char *text)
{
	FILE *f;
	int fd;

	strcpy(table_path, "/tmp/rpmsd-test-table-XXXXXX");
	fd = mkstemp(table_path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return 0;
}

static void expect_error(const char *text, const char *want)
{
	struct train_table t;
	char err[512], full[600];

	table_write(text);
	assert_int_equal(train_table_load(table_path, &t, err, sizeof(err)), -EINVAL);
	snprintf(full, sizeof(full), "%s:%s", table_path, want);
	if (strcmp(err, full) != 0) {
		fail_msg("got '%s', want '%s'", err, full);
	}
	unlink(table_path);
}

static void test_table_load(void **state)
{
	struct train_table t;
	char err[512];

	(void)state;
	table_write("# rig's own table, checked by our clinical lead\n"
		    "hz, 100, 120   # %% of motor threshold\n"
		    "\n"
		    "10, 5, 4.2\n"
		    "50, 2, 3\n");
	assert_int_equal(train_table_load(table_path, &t, err, sizeof(err)), 0);
	unlink(table_path);
	assert_int_equal(t.n_rates, 2);
	assert_int_equal(t.n_levels, 2);
	assert_true(train_table_max_s(&t, 50.0, 100.0) == 2.0);
	/* 3 s at 50 Hz and 120 % is lowered to 10 Hz and 120 %'s 4.2, then 50 Hz 100 %'s 2 */
	assert_true(train_table_max_s(&t, 50.0, 120.0) == 2.0);
	assert_true(t.max_s[1][1] == 3.0);
}

static void test_table_errors(void **state)
{
	struct train_table t;
	char err[512];

	(void)state;
	expect_error("", "0: no header: a table needs the 'hz,...' header and at least one rate");
	expect_error("hz,100\n", "1: no rates: a table needs the 'hz,...' header and at least one rate");
	expect_error("rate,100\n1,5\n",
		     "1: the header must start with 'hz,' followed by the intensities in % of motor threshold");
	expect_error("hz,100,x\n", "1: intensity 2: not a number, or more than 32 intensities");
	expect_error("hz,100,90\n", "1: intensity 2 (90): intensities must be above 0 and strictly ascending");
	expect_error("hz,100\n1,5,6\n", "2: 3 fields, the header has 2 (a rate and 1 durations)");
	expect_error("hz,100\n5,1\n1,5\n", "3: rate 1 Hz: rates must be above 0 and strictly ascending");
	expect_error("hz,100\n0,1\n", "2: rate 0 Hz: rates must be above 0 and strictly ascending");
	expect_error("hz,100\n1,-1\n", "2: duration 1 (-1 s): must be 0 or more");
	expect_error("hz,100\n1,5s\n", "2: field 2: not a number");
	expect_error("hz,100\n1,nan\n", "2: field 2: not a number");
	assert_int_equal(train_table_load("/nonexistent/table.csv", &t, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/table.csv: cannot read the train table: No such file or directory");
}

/* A NUL byte is named as such, with its line and column. */
static void test_table_nul_byte(void **state)
{
	static const char text[] = "hz,100\n1,5\n10,4\0junk\n";
	struct train_table t;
	char err[512], want[600];
	FILE *f;

	(void)state;
	table_write("");
	f = fopen(table_path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, f), sizeof(text) - 1);
	fclose(f);
	assert_int_equal(train_table_load(table_path, &t, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: a NUL byte at column 5 (a train table is text)",
		 table_path);
	assert_string_equal(err, want);
	unlink(table_path);
	/* a line that is really too long still says so */
	{
		char *big = malloc(2100);

		assert_non_null(big);
		memcpy(big, "hz,100\n#", 8);
		memset(big + 8, 'x', 2000);
		strcpy(big + 2008, "\n1,5\n");
		table_write(big);
		free(big);
		assert_int_equal(train_table_load(table_path, &t, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "%s:2: line longer than 1022 bytes", table_path);
		assert_string_equal(err, want);
		unlink(table_path);
	}
}

/* A directory, a device and a file too large each get their own message. */
static void test_table_not_a_file(void **state)
{
	struct train_table t;
	char dir[] = "/tmp/rpmsd-test-tabledir-XXXXXX", err[512], want[600];

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(train_table_load(dir, &t, err, sizeof(err)), -EISDIR);
	snprintf(want, sizeof(want), "%s: is a directory (allowed: a CSV file)", dir);
	assert_string_equal(err, want);
	rmdir(dir);
	/* /dev/zero would be read for ever */
	assert_int_equal(train_table_load("/dev/zero", &t, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/dev/zero: not a regular file (allowed: a CSV file; a FIFO, a device or a socket is never read)");
	/* a regular file of more than 1 MiB is not read at all */
	table_write("hz,100\n1,5\n");
	assert_int_equal(truncate(table_path, (1 << 20) + 1), 0);
	assert_int_equal(train_table_load(table_path, &t, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want),
		 "%s: 1048577 bytes, too large for a train table (allowed: at most 1048576 bytes)",
		 table_path);
	assert_string_equal(err, want);
	unlink(table_path);
}

static void table_alarm(int sig)
{
	static const char msg[] = "train_table_load blocked on a FIFO\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/*
 * A FIFO in place of the table, even with a writer holding it open and a
 * valid table in it, is refused at once: the open must not wait for a
 * writer and no read may wait for the rest. Without the fix the load
 * blocks; the alarm turns that into a failure instead of a hang.
 */
static void test_table_fifo(void **state)
{
	char dir[] = "/tmp/rpmsd-test-tablefifo-XXXXXX", path[64], err[512], want[600];
	static const char text[] = "hz,100\n1,5\n";
	struct train_table t;
	int wfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/table.csv", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	signal(SIGALRM, table_alarm);
	alarm(20);
	/* no writer: a blocking open would wait for one for ever */
	assert_int_equal(train_table_load(path, &t, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file (allowed: a CSV file; a FIFO, a device or a socket is never read)", path);
	assert_string_equal(err, want);
	/* a writer that keeps it open: a read would wait for the rest for ever */
	wfd = open(path, O_RDWR | O_NONBLOCK);
	assert_true(wfd >= 0);
	assert_int_equal(write(wfd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	assert_int_equal(train_table_load(path, &t, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	close(wfd);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_default_cells),
		cmocka_unit_test(test_table_monotone),
		cmocka_unit_test(test_table_load),
		cmocka_unit_test(test_table_errors),
		cmocka_unit_test(test_table_nul_byte),
		cmocka_unit_test(test_table_not_a_file),
		cmocka_unit_test(test_table_fifo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
