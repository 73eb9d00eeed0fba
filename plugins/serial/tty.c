/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tty.h"

struct tty {
	int fd;
	char *path;
};

struct tty_rate {
	unsigned int baud;
	speed_t speed;
};

static const struct tty_rate tty_rates[] = {
	{ 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 },
	{ 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 }, { 115200, B115200 },
	{ 230400, B230400 }, { 460800, B460800 }, { 500000, B500000 }, { 576000, B576000 },
	{ 921600, B921600 }, { 1000000, B1000000 }, { 1152000, B1152000 },
	{ 1500000, B1500000 }, { 2000000, B2000000 }, { 2500000, B2500000 },
	{ 3000000, B3000000 }, { 3500000, B3500000 }, { 4000000, B4000000 },
};

#define TTY_N_RATES (sizeof(tty_rates) / sizeof(tty_rates[0]))

static int tty_speed(unsigned int baud, speed_t *out)
{
	size_t i;

	for (i = 0; i < TTY_N_RATES; i++) {
		if (tty_rates[i].baud == baud) {
			*out = tty_rates[i].speed;
			return 0;
		}
	}
	return -EINVAL;
}

static void tty_rate_list(char *out, size_t len)
{
	size_t i, used = 0;
	int n;

	out[0] = '\0';
	for (i = 0; i < TTY_N_RATES && used < len; i++) {
		n = snprintf(out + used, len - used, "%s%u", i ? ", " : "", tty_rates[i].baud);
		if (n < 0) {
			break;
		}
		used += (size_t)n;
	}
}

/* The message for a failed open(), TIOCEXCL or flock(). */
static int tty_open_error(const char *path, const char *what, int e, char *err, size_t errlen)
{
	switch (e) {
	case ENOENT:
		snprintf(err, errlen, "%s: no such tty (is the adapter plugged in?)", path);
		break;
	case EBUSY:
	case EWOULDBLOCK:
		snprintf(err, errlen, "%s: in use by another program (exclusive open)", path);
		e = EBUSY;
		break;
	case ENOTTY:
		snprintf(err, errlen, "%s: not a terminal", path);
		break;
	case EACCES:
	case EPERM:
		snprintf(err, errlen, "%s: permission denied (add the user running rpmsd to "
			 "the 'dialout' group, or check the device's udev rule)", path);
		break;
	default:
		snprintf(err, errlen, "%s: %s failed: %s", path, what, strerror(e));
		break;
	}
	return -e;
}

static int tty_setup(int fd, const char *path, speed_t speed, unsigned int baud, char *err,
		     size_t errlen)
{
	struct termios tio, got;
	int rts = TIOCM_RTS;

	if (tcgetattr(fd, &tio) < 0) {
		return tty_open_error(path, "tcgetattr", errno, err, errlen);
	}
	cfmakeraw(&tio);
	tio.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY | INPCK);
	tio.c_iflag |= IGNBRK;
	tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS | HUPCL);
	tio.c_cflag |= CS8 | CLOCAL | CREAD;
	tio.c_cc[VMIN] = 0;
	tio.c_cc[VTIME] = 0;
	if (cfsetispeed(&tio, speed) < 0 || cfsetospeed(&tio, speed) < 0) {
		snprintf(err, errlen, "%s: cannot set %u baud: %s", path, baud, strerror(errno));
		return -EINVAL;
	}
	if (tcsetattr(fd, TCSANOW, &tio) < 0) {
		return tty_open_error(path, "tcsetattr", errno, err, errlen);
	}
	/* tcsetattr succeeds when any of it took: read back what the driver kept. */
	if (tcgetattr(fd, &got) < 0) {
		return tty_open_error(path, "tcgetattr", errno, err, errlen);
	}
	if (cfgetospeed(&got) != speed || (got.c_cflag & CSIZE) != CS8 ||
	    (got.c_cflag & (PARENB | CSTOPB | CRTSCTS))) {
		snprintf(err, errlen, "%s: the driver did not keep %u baud 8N1 without flow control",
			 path, baud);
		return -EINVAL;
	}
	/* A pty has no modem lines: nothing to hold low there. */
	if (ioctl(fd, TIOCMBIC, &rts) < 0 && errno != ENOTTY && errno != EINVAL) {
		return tty_open_error(path, "TIOCMBIC (RTS low)", errno, err, errlen);
	}
	/* Bytes the device or the pty held before we came are not replies to us. */
	if (tcflush(fd, TCIFLUSH) < 0) {
		return tty_open_error(path, "tcflush", errno, err, errlen);
	}
	return 0;
}

int tty_open(const char *path, unsigned int baud, struct tty **out, char *err, size_t errlen)
{
	char rates[256];
	struct tty *t;
	speed_t speed;
	int ret;

	if (tty_speed(baud, &speed) < 0) {
		tty_rate_list(rates, sizeof(rates));
		snprintf(err, errlen, "%s: unsupported baud rate %u (allowed: %s)", path, baud,
			 rates);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	t->path = strdup(path);
	if (!t->path) {
		snprintf(err, errlen, "%s: out of memory", path);
		ret = -ENOMEM;
		goto err_free;
	}
	/* O_NONBLOCK: no wait for carrier on open, and every wait is our poll(). */
	t->fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (t->fd < 0) {
		ret = tty_open_error(path, "open", errno, err, errlen);
		goto err_path;
	}
	/*
	 * TIOCEXCL does not stop root: the lock does, for every flock() user.
	 * Lock first, so that a second opener changes nothing on the tty.
	 */
	if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
		ret = tty_open_error(path, "flock", errno, err, errlen);
		goto err_close;
	}
	if (ioctl(t->fd, TIOCEXCL) < 0) {
		ret = tty_open_error(path, "TIOCEXCL", errno, err, errlen);
		goto err_close;
	}
	ret = tty_setup(t->fd, path, speed, baud, err, errlen);
	if (ret < 0) {
		goto err_unexcl;
	}
	*out = t;
	return 0;

err_unexcl:
	ioctl(t->fd, TIOCNXCL);
err_close:
	close(t->fd);
err_path:
	free(t->path);
err_free:
	free(t);
	return ret;
}

void tty_close(struct tty *t)
{
	if (!t) {
		return;
	}
	/*
	 * A pty slave's tty outlives our close while its master is open, and
	 * with it the exclusive flag: clear it, so that we can open it again.
	 */
	ioctl(t->fd, TIOCNXCL);
	close(t->fd);
	free(t->path);
	free(t);
}

int tty_fd(const struct tty *t)
{
	return t->fd;
}

const char *tty_path(const struct tty *t)
{
	return t->path;
}

static int64_t tty_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before @deadline, 0 when passed. */
static int tty_left_ms(int64_t deadline)
{
	int64_t left = deadline - tty_now_ms();

	return left > 0 ? (int)left : 0;
}

/*
 * Wait for @events until @deadline. @return 1 ready, 0 time is up, -EIO the
 * device hung up (and has nothing left to read), or -errno.
 */
static int tty_wait(struct tty *t, short events, int64_t deadline, short *revents)
{
	struct pollfd pfd = { .fd = t->fd, .events = events };
	int n;

	for (;;) {
		n = poll(&pfd, 1, tty_left_ms(deadline));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		if (n == 0) {
			return 0;
		}
		*revents = pfd.revents;
		if (pfd.revents & POLLNVAL) {
			return -EBADF;
		}
		if ((pfd.revents & (POLLHUP | POLLERR)) && !(pfd.revents & events & POLLIN)) {
			return -EIO;
		}
		return 1;
	}
}

static int tty_gone(struct tty *t, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: the device is gone (unplugged?)", t->path);
	return -EIO;
}

int tty_write_all(struct tty *t, const uint8_t *buf, size_t len, int timeout_ms, char *err,
		  size_t errlen)
{
	int64_t deadline = tty_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t done = 0;
	short revents = 0;
	ssize_t n;
	int ret;

	while (done < len) {
		n = write(t->fd, buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EIO) {
			return tty_gone(t, err, errlen);
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			ret = -errno;
			snprintf(err, errlen, "%s: write failed: %s", t->path, strerror(errno));
			return ret;
		}
		ret = tty_wait(t, POLLOUT, deadline, &revents);
		if (ret == -EIO) {
			return tty_gone(t, err, errlen);
		}
		if (ret < 0) {
			snprintf(err, errlen, "%s: poll failed: %s", t->path, strerror(-ret));
			return ret;
		}
		if (ret == 0) {
			snprintf(err, errlen, "%s: write timed out after %d ms (%zu of %zu bytes "
				 "sent)", t->path, timeout_ms, done, len);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/*
 * One read after poll() said there is something. @return bytes (> 0), 0 for
 * nothing yet, or -errno (-EIO: gone).
 */
static ssize_t tty_read_some(struct tty *t, uint8_t *buf, size_t size, short revents)
{
	ssize_t n = read(t->fd, buf, size);

	if (n > 0) {
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return 0;
	}
	if (n < 0) {
		return -errno;
	}
	/* VMIN=0: 0 means no data, unless the line hung up (EOF). */
	return (revents & POLLHUP) ? -EIO : 0;
}

static ssize_t tty_read_until(struct tty *t, uint8_t *buf, size_t len, bool all,
			      int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = tty_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	size_t done = 0;
	short revents;
	ssize_t n;
	int ret;

	while (done < len) {
		revents = 0;
		ret = tty_wait(t, POLLIN, deadline, &revents);
		if (ret == 0) {
			break;
		}
		n = ret < 0 ? ret : tty_read_some(t, buf + done, len - done, revents);
		if (n == -EIO) {
			return tty_gone(t, err, errlen);
		}
		if (n < 0) {
			snprintf(err, errlen, "%s: read failed: %s", t->path, strerror((int)-n));
			return n;
		}
		done += (size_t)n;
		if (!all && done > 0) {
			break;
		}
	}
	if (!all && done == 0 && len > 0) {
		snprintf(err, errlen, "%s: nothing received within %d ms", t->path, timeout_ms);
		return -ETIMEDOUT;
	}
	return (ssize_t)done;
}

ssize_t tty_read(struct tty *t, uint8_t *buf, size_t size, int timeout_ms, char *err,
		 size_t errlen)
{
	return tty_read_until(t, buf, size, false, timeout_ms, err, errlen);
}

ssize_t tty_read_n(struct tty *t, uint8_t *buf, size_t len, int timeout_ms, char *err,
		   size_t errlen)
{
	return tty_read_until(t, buf, len, true, timeout_ms, err, errlen);
}

int tty_flush_input(struct tty *t)
{
	return tcflush(t->fd, TCIFLUSH) < 0 ? -errno : 0;
}
