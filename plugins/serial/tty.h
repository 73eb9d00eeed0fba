/* SPDX-License-Identifier: MIT */
/*
 * A stimulator's serial link: a tty opened exclusively, raw 8N1 at a
 * given baud rate with no flow control and RTS low, and writes and reads
 * bounded by a deadline. Every call may block up to its deadline: use it
 * from the plugin's serial thread, never from the stim thread.
 *
 * Exclusive means both TIOCEXCL (other opens get EBUSY, except by a
 * process with CAP_SYS_ADMIN) and an flock() on the open file (so a
 * second rpmsd, even as root, or another flock-aware program such as
 * pyserial with exclusive=True, is refused too).
 *
 * Not thread-safe: one thread owns a link.
 */
#ifndef RPMSD_TTY_H
#define RPMSD_TTY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** A good size for the err buffers below: they name the path. */
#define TTY_ERR_MAX 512

struct tty;

/**
 * Open @path (O_RDWR|O_NOCTTY|O_CLOEXEC|O_NONBLOCK), take it exclusively,
 * set raw 8N1 at @baud, no flow control, CLOCAL|CREAD, VMIN=0/VTIME=0,
 * RTS low where the device has it, and flush what it held before.
 * @param baud  a standard rate (1200 .. 4000000, e.g. 9600, 38400)
 * @param out   receives the link
 * @return 0, or a negative errno with @err naming the path and what
 *         failed: -ENOENT no such tty, -EBUSY in use by another program,
 *         -ENOTTY not a terminal, -EACCES (with a hint about the dialout
 *         group), -EINVAL an unsupported baud rate (the allowed ones
 *         listed), -ENOMEM, or the errno of the failed call
 */
int tty_open(const char *path, unsigned int baud, struct tty **out, char *err, size_t errlen);

/** Close the link: clears the exclusive flag, drops the lock. Accepts NULL. */
void tty_close(struct tty *t);

/** The link's file descriptor, for poll() alongside other fds. */
int tty_fd(const struct tty *t);

/** The path it was opened with. */
const char *tty_path(const struct tty *t);

/**
 * Write all @len bytes within @timeout_ms.
 * @return 0; -ETIMEDOUT when not all were written in time (how many were
 *         is in @err); -EIO when the device is gone (unplugged); or the
 *         errno of the failed call. @err is filled on every failure.
 */
int tty_write_all(struct tty *t, const uint8_t *buf, size_t len, int timeout_ms, char *err,
		  size_t errlen);

/**
 * Read what arrives within @timeout_ms: returns as soon as at least one
 * byte has been read.
 * @return the number of bytes read (1..@size); -ETIMEDOUT when none came
 *         in time; -EIO when the device is gone; or the errno of the
 *         failed call. @err is filled on every failure.
 */
ssize_t tty_read(struct tty *t, uint8_t *buf, size_t size, int timeout_ms, char *err,
		 size_t errlen);

/**
 * Read until @len bytes have arrived or @timeout_ms has passed (a reply
 * of known length).
 * @return the number of bytes read, @len or fewer when the deadline
 *         passed (0..@len, not an error: the caller decides what a short
 *         reply means); -EIO when the device is gone; or the errno of the
 *         failed call, with @err filled.
 */
ssize_t tty_read_n(struct tty *t, uint8_t *buf, size_t len, int timeout_ms, char *err,
		   size_t errlen);

/** Discard the bytes received and not read yet. @return 0 or -errno */
int tty_flush_input(struct tty *t);

#endif /* RPMSD_TTY_H */
