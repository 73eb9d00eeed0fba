/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer harnesses: put the fuzzer's bytes in a memory
 * file and give the code under test its /proc path, so the real file
 * readers run exactly as on a file on disk.
 */
#ifndef RPMSD_FUZZ_COMMON_H
#define RPMSD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* A memory file holding @data; its path in @path. @return the fd or -1 */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t len)
{
	int fd = memfd_create("rpmsd-fuzz", MFD_CLOEXEC);
	size_t done = 0;

	if (fd < 0) {
		return -1;
	}
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

#endif /* RPMSD_FUZZ_COMMON_H */
