/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

/*
 * Open @path for reading only if it is a regular file: a FIFO would block
 * the open (and the daemon's start) forever, and a device such as
 * /dev/zero would feed getline without end. O_NONBLOCK makes the open of a
 * FIFO return at once so fstat can refuse it.
 * @return the stream, or NULL with *@rc = -EISDIR, -EINVAL (not regular)
 *         or -errno
 */
FILE *file_open_regular(const char *path, int *rc)
{
	struct stat st;
	FILE *f;
	int fd;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*rc = -errno;
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		*rc = -errno;
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		close(fd);
		return NULL;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	f = fdopen(fd, "r");
	if (!f) {
		*rc = -errno;
		close(fd);
	}
	return f;
}
