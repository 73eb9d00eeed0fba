/* SPDX-License-Identifier: MIT */
/*
 * The serial link (plugins/serial/tty.c) on a real pseudo-terminal: the
 * client opens the slave by its path as it would /dev/ttyUSB0, the test
 * holds the master as the device. Raw 8N1 at the baud asked, exclusive
 * open, bytes both ways, deadlines, a device that vanishes, and the clear
 * errors of a missing path, a file that is not a tty, a refused
 * permission and an unsupported rate.
 *
 * No timing is asserted: a deadline is only ever let pass where nothing
 * can arrive, and every wait for a byte has a generous bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "tty.h"

/* A bound for what must happen, never a measure of how fast. */
#define TEST_TTY_WAIT_MS 10000
/* A deadline let pass where nothing can arrive. */
#define TEST_TTY_SHORT_MS 50

struct test_tty_pty {
	int master;
	int slave;		/* the test's own handle on the slave's termios */
	char path[64];
};

static void test_tty_pty_open(struct test_tty_pty *p)
{
	struct termios tio;

	assert_int_equal(openpty(&p->master, &p->slave, p->path, NULL, NULL), 0);
	/* Start from the cooked defaults of a new pty, with odd settings on top. */
	assert_int_equal(tcgetattr(p->slave, &tio), 0);
	tio.c_cflag |= PARENB | CSTOPB;
	tio.c_iflag |= IXON | ICRNL;
	cfsetspeed(&tio, B1200);
	assert_int_equal(tcsetattr(p->slave, TCSANOW, &tio), 0);
}

static void test_tty_pty_close(struct test_tty_pty *p)
{
	if (p->master >= 0) {
		close(p->master);
	}
	close(p->slave);
}

/* Read exactly @len bytes from the master, waiting for each. */
static void test_tty_master_read(int fd, uint8_t *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		assert_int_equal(poll(&pfd, 1, TEST_TTY_WAIT_MS), 1);
		n = read(fd, buf + done, len - done);
		assert_true(n > 0);
		done += (size_t)n;
	}
}

/* Wait until the slave holds @n unread bytes (the pty moves them later). */
static void test_tty_wait_pending(int slave, int n)
{
	int have = 0, i;

	for (i = 0; i < TEST_TTY_WAIT_MS; i++) {
		assert_int_equal(ioctl(slave, FIONREAD, &have), 0);
		if (have >= n) {
			return;
		}
		usleep(1000);
	}
	fail_msg("the pty never delivered %d bytes (has %d)", n, have);
}

static void test_tty_open_raw(void **state)
{
	static const struct {
		unsigned int baud;
		speed_t speed;
	} rates[] = { { 9600, B9600 }, { 38400, B38400 }, { 115200, B115200 } };
	struct test_tty_pty p;
	struct termios tio;
	struct tty *t;
	char err[TTY_ERR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		test_tty_pty_open(&p);
		assert_int_equal(tty_open(p.path, rates[i].baud, &t, err, sizeof(err)), 0);
		assert_string_equal(tty_path(t), p.path);
		assert_true(tty_fd(t) >= 0);
		assert_int_equal(fcntl(tty_fd(t), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		/* What the tty itself now holds, read through another handle. */
		assert_int_equal(tcgetattr(p.slave, &tio), 0);
		assert_int_equal(cfgetispeed(&tio), rates[i].speed);
		assert_int_equal(cfgetospeed(&tio), rates[i].speed);
		assert_int_equal(tio.c_cflag & CSIZE, CS8);
		assert_int_equal(tio.c_cflag & (PARENB | CSTOPB | CRTSCTS), 0);
		assert_int_equal(tio.c_cflag & (CLOCAL | CREAD), CLOCAL | CREAD);
		assert_int_equal(tio.c_lflag & (ICANON | ECHO | ECHONL | ISIG | IEXTEN), 0);
		assert_int_equal(tio.c_iflag & (IXON | IXOFF | ICRNL | INLCR | ISTRIP), 0);
		assert_int_equal(tio.c_oflag & OPOST, 0);
		assert_int_equal(tio.c_cc[VMIN], 0);
		assert_int_equal(tio.c_cc[VTIME], 0);
		tty_close(t);
		test_tty_pty_close(&p);
	}
	tty_close(NULL);
}

/* A second open is refused, whoever we are; closing gives the port back. */
static void test_tty_exclusive(void **state)
{
	struct test_tty_pty p;
	struct tty *t, *t2 = NULL;
	char err[TTY_ERR_MAX];

	(void)state;
	test_tty_pty_open(&p);
	assert_int_equal(tty_open(p.path, 9600, &t, err, sizeof(err)), 0);
	assert_int_equal(tty_open(p.path, 9600, &t2, err, sizeof(err)), -EBUSY);
	assert_null(t2);
	assert_non_null(strstr(err, p.path));
	assert_non_null(strstr(err, "in use by another program"));
	tty_close(t);
	assert_int_equal(tty_open(p.path, 38400, &t2, err, sizeof(err)), 0);
	tty_close(t2);
	test_tty_pty_close(&p);
}

/* Bytes both ways; what the pty held before the open is flushed. */
static void test_tty_round_trip(void **state)
{
	static const uint8_t cmd[] = { 'Q', '@', 0x6E };
	static const uint8_t reply[] = { 'Q', 0x88, 0x26, 0xFE, 0xFF, 0x00 };
	uint8_t buf[16];
	struct test_tty_pty p;
	struct termios tio;
	struct tty *t;
	char err[TTY_ERR_MAX];

	(void)state;
	test_tty_pty_open(&p);
	/* Stale bytes, waiting on the slave before the client comes. */
	assert_int_equal(tcgetattr(p.slave, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(p.slave, TCSANOW, &tio), 0);
	assert_int_equal(write(p.master, "stale", 5), 5);
	test_tty_wait_pending(p.slave, 5);

	assert_int_equal(tty_open(p.path, 9600, &t, err, sizeof(err)), 0);
	assert_int_equal(tty_read(t, buf, sizeof(buf), TEST_TTY_SHORT_MS, err, sizeof(err)),
			 -ETIMEDOUT);

	assert_int_equal(tty_write_all(t, cmd, sizeof(cmd), TEST_TTY_WAIT_MS, err, sizeof(err)),
			 0);
	test_tty_master_read(p.master, buf, sizeof(cmd));
	assert_memory_equal(buf, cmd, sizeof(cmd));

	/* Every byte value passes untouched (raw: no CR/NL mapping, no XON/XOFF). */
	assert_int_equal(write(p.master, reply, sizeof(reply)), (ssize_t)sizeof(reply));
	assert_int_equal(tty_read_n(t, buf, sizeof(reply), TEST_TTY_WAIT_MS, err, sizeof(err)),
			 (ssize_t)sizeof(reply));
	assert_memory_equal(buf, reply, sizeof(reply));

	assert_int_equal(write(p.master, "\r\n\x11\x13", 4), 4);
	assert_true(tty_read(t, buf, 1, TEST_TTY_WAIT_MS, err, sizeof(err)) == 1);
	assert_int_equal(buf[0], '\r');
	assert_int_equal(tty_read_n(t, buf, 3, TEST_TTY_WAIT_MS, err, sizeof(err)), 3);
	assert_memory_equal(buf, "\n\x11\x13", 3);
	tty_close(t);
	test_tty_pty_close(&p);
}

/* A reply cut short is returned as it is once the deadline passes. */
static void test_tty_read_deadline(void **state)
{
	uint8_t buf[16];
	struct test_tty_pty p;
	struct tty *t;
	char err[TTY_ERR_MAX];

	(void)state;
	test_tty_pty_open(&p);
	assert_int_equal(tty_open(p.path, 9600, &t, err, sizeof(err)), 0);
	strcpy(err, "untouched");
	assert_int_equal(tty_read(t, buf, sizeof(buf), TEST_TTY_SHORT_MS, err, sizeof(err)),
			 -ETIMEDOUT);
	assert_non_null(strstr(err, "nothing received"));
	assert_non_null(strstr(err, p.path));
	assert_int_equal(tty_read_n(t, buf, 5, TEST_TTY_SHORT_MS, err, sizeof(err)), 0);

	assert_int_equal(write(p.master, "ab", 2), 2);
	test_tty_wait_pending(p.slave, 2);
	assert_int_equal(tty_read_n(t, buf, 5, TEST_TTY_SHORT_MS, err, sizeof(err)), 2);
	assert_memory_equal(buf, "ab", 2);
	tty_close(t);
	test_tty_pty_close(&p);
}

/* A device that reads nothing: the write gives up at its deadline. */
static void test_tty_write_deadline(void **state)
{
	const size_t len = 1 << 20;
	struct test_tty_pty p;
	struct tty *t;
	char err[TTY_ERR_MAX];
	uint8_t *big;

	(void)state;
	big = calloc(1, len);
	assert_non_null(big);
	test_tty_pty_open(&p);
	assert_int_equal(tty_open(p.path, 9600, &t, err, sizeof(err)), 0);
	strcpy(err, "untouched");
	assert_int_equal(tty_write_all(t, big, len, TEST_TTY_SHORT_MS, err, sizeof(err)),
			 -ETIMEDOUT);
	assert_non_null(strstr(err, "timed out"));
	assert_non_null(strstr(err, "of 1048576 bytes"));
	tty_close(t);
	test_tty_pty_close(&p);
	free(big);
}

/* The device vanishes (the emulator closes the master): -EIO, named. */
static void test_tty_gone(void **state)
{
	uint8_t buf[4] = { 0 };
	struct test_tty_pty p;
	struct tty *t;
	char err[TTY_ERR_MAX];

	(void)state;
	test_tty_pty_open(&p);
	assert_int_equal(tty_open(p.path, 9600, &t, err, sizeof(err)), 0);
	close(p.master);
	p.master = -1;
	strcpy(err, "untouched");
	assert_int_equal(tty_read(t, buf, sizeof(buf), TEST_TTY_WAIT_MS, err, sizeof(err)),
			 -EIO);
	assert_non_null(strstr(err, "gone"));
	strcpy(err, "untouched");
	assert_int_equal(tty_write_all(t, buf, sizeof(buf), TEST_TTY_WAIT_MS, err, sizeof(err)),
			 -EIO);
	assert_non_null(strstr(err, "gone"));
	tty_close(t);
	test_tty_pty_close(&p);
}

static void test_tty_open_errors(void **state)
{
	char path[] = "/tmp/rpmsd-test-tty-XXXXXX";
	struct tty *t = NULL;
	char err[TTY_ERR_MAX];
	int fd;

	(void)state;
	assert_int_equal(tty_open("/nonexistent/ttyRPMSD0", 9600, &t, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/ttyRPMSD0: no such tty (is the adapter "
			    "plugged in?)");

	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(tty_open(path, 9600, &t, err, sizeof(err)), -ENOTTY);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "not a terminal"));
	unlink(path);

	assert_int_equal(tty_open("/dev/null", 9600, &t, err, sizeof(err)), -ENOTTY);
	assert_string_equal(err, "/dev/null: not a terminal");

	assert_int_equal(tty_open("/dev/null", 12345, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unsupported baud rate 12345"));
	assert_non_null(strstr(err, "9600, 19200, 38400"));
	assert_null(t);
}

/*
 * A tty the user may not open: the message says what to do. Root opens
 * anything, so as root the check runs in a child that gave root up.
 */
static void test_tty_permission(void **state)
{
	struct test_tty_pty p;
	struct tty *t = NULL;
	char err[TTY_ERR_MAX];
	int status, ret;
	pid_t pid;

	(void)state;
	test_tty_pty_open(&p);
	assert_int_equal(chmod(p.path, 0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0)) {
			_exit(77);
		}
		ret = tty_open(p.path, 9600, &t, err, sizeof(err));
		if (ret != -EACCES || !strstr(err, "dialout") || !strstr(err, p.path)) {
			fprintf(stderr, "tty_open: %d %s\n", ret, ret < 0 ? err : "");
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		test_tty_pty_close(&p);
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	test_tty_pty_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tty_open_raw),
		cmocka_unit_test(test_tty_exclusive),
		cmocka_unit_test(test_tty_round_trip),
		cmocka_unit_test(test_tty_read_deadline),
		cmocka_unit_test(test_tty_write_deadline),
		cmocka_unit_test(test_tty_gone),
		cmocka_unit_test(test_tty_open_errors),
		cmocka_unit_test(test_tty_permission),
	};

	/* A write to a vanished device must come back as EIO, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
