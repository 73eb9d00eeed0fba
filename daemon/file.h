/* SPDX-License-Identifier: MIT */
/*
 * Opening the files rpmsd reads at start-up (configuration, recordings).
 */
#ifndef RPMSD_FILE_H
#define RPMSD_FILE_H

#include <stdio.h>

/**
 * Open @path for reading, only if it is a regular file. A FIFO would block
 * the start for ever and a device such as /dev/zero never end.
 * @param rc  receives -EISDIR, -EINVAL (not a regular file) or -errno
 * @return the stream, or NULL
 */
FILE *file_open_regular(const char *path, int *rc);

#endif /* RPMSD_FILE_H */
