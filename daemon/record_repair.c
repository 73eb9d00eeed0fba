/* SPDX-License-Identifier: MIT */
/*
 * EDF/BDF files a crash (or a failed write) left open: edflib writes the
 * header's record count ("-1" until then) and the annotations only at the
 * close, so such a file is cut back to its complete data records and the
 * count written (record.h, record_repair). Plain file I/O, no edflib.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "record_private.h"

#define RECORD_REPAIR_HDR 256		/* bytes: the header, and per signal */

/* An ASCII header field of @n characters as an integer; -1 if it is not one. */
static long long record_repair_field(const char *p, size_t n)
{
	char buf[16];
	char *end;
	long long v;

	if (n >= sizeof(buf)) {
		return -1;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	while (*end == ' ') {
		end++;
	}
	if (end == buf || *end || errno) {
		return -1;
	}
	return v;
}

/*
 * The layout of an EDF/BDF file from its headers: header bytes, record
 * bytes and the record count field.
 */
static int record_repair_layout(int fd, long long *hdr_bytes, long long *rec_bytes,
				long long *count)
{
	char head[RECORD_REPAIR_HDR], field[8];
	long long ns, spr, sum = 0, i;
	int bps;

	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head)) {
		return -EINVAL;
	}
	if (!memcmp(head, "0       ", 8)) {
		bps = 2;
	} else if (!memcmp(head, "\xff" "BIOSEMI", 8)) {
		bps = 3;
	} else {
		return -EINVAL;
	}
	*hdr_bytes = record_repair_field(head + 184, 8);
	*count = record_repair_field(head + 236, 8);
	ns = record_repair_field(head + 252, 4);
	if (ns < 1 || ns > 4096 || *hdr_bytes != RECORD_REPAIR_HDR * (ns + 1)) {
		return -EINVAL;
	}
	/* samples per record: ns fields of 8 at 256 + ns x 216 */
	for (i = 0; i < ns; i++) {
		if (pread(fd, field, sizeof(field), RECORD_REPAIR_HDR + ns * 216 + i * 8) !=
		    (ssize_t)sizeof(field)) {
			return -EINVAL;
		}
		spr = record_repair_field(field, sizeof(field));
		if (spr < 1) {
			return -EINVAL;
		}
		sum += spr;
	}
	*rec_bytes = sum * bps;
	return 0;
}

int record_repair(const char *path, uint64_t valid_bytes, uint64_t *records)
{
	long long hdr = 0, rec = 0, count = 0, k;
	char field[24];
	struct stat sb;
	uint64_t size;
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		return -errno;
	}
	ret = fstat(fd, &sb) < 0 ? -errno : !S_ISREG(sb.st_mode) ? -EINVAL
	      : record_repair_layout(fd, &hdr, &rec, &count);
	if (ret < 0) {
		goto out;
	}
	size = (uint64_t)sb.st_size < valid_bytes ? (uint64_t)sb.st_size : valid_bytes;
	k = size >= (uint64_t)hdr ? (long long)((size - (uint64_t)hdr) / (uint64_t)rec) : 0;
	if (records) {
		*records = (uint64_t)k;
	}
	if (count == k && (uint64_t)sb.st_size == (uint64_t)(hdr + k * rec)) {
		ret = 0;
		goto out;
	}
	if (k > 99999999) {
		ret = -EFBIG;	/* the count field has 8 characters */
		goto out;
	}
	/* The complete records stay; what follows them was never finished. */
	if (ftruncate(fd, hdr + k * rec) < 0) {
		ret = -errno;
		goto out;
	}
	snprintf(field, sizeof(field), "%-8lld", k);
	if (pwrite(fd, field, 8, 236) != 8 || fsync(fd) < 0) {
		ret = errno ? -errno : -EIO;
		goto out;
	}
	ret = 1;
out:
	close(fd);
	return ret;
}

/* Repair what a crash left open in the directory: header count "-1". */
void record_repair_dir(struct record *r)
{
	char path[CONFIG_PATH_MAX + 256], head[RECORD_REPAIR_HDR];
	struct dirent *de;
	struct stat sb;
	uint64_t k;
	size_t n;
	DIR *d;
	int fd, ret;

	d = opendir(r->dir);
	if (!d) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || (strcasecmp(de->d_name + n - 4, ".edf") &&
			      strcasecmp(de->d_name + n - 4, ".bdf"))) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", r->dir, de->d_name);
		/* a FIFO under that name must not block the start: regular files only */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0) {
			continue;
		}
		if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			log_warn("recording: %s is not a regular file: not looked at", path);
			close(fd);
			continue;
		}
		ret = pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
		      record_repair_field(head + 236, 8) == -1;
		close(fd);
		if (!ret) {
			continue;
		}
		ret = record_repair(path, UINT64_MAX, &k);
		if (ret < 0) {
			log_warn("recording: %s was left open by a crash and cannot be repaired: %s",
				 path, strerror(-ret));
			continue;
		}
		log_warn("recording: %s was left open by a crash: repaired, %" PRIu64
			 " complete data records kept (its annotations were lost)", path, k);
		r->f.st.records = k;
		record_emit(r, EVENT_RECORD_REPAIRED, 0, path);
		r->f.st.records = 0;
	}
	closedir(d);
}
