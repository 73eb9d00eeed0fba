/* SPDX-License-Identifier: MIT */
/*
 * Test tool: open the IIO source exactly as rpmsd does (source_iio_open on
 * a config file) and print N frames, one line each: the sample index then
 * each channel in µV, then the angle in degrees when the source has one
 * (source.angle_channel), as the acquire thread gets it. Lets the IIO tests check conversion bit for bit
 * through libiio's real local backend.
 *
 *   iio_read CONFIG FRAMES
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "source.h"

int main(int argc, char **argv)
{
	static struct rpmsd_config cfg;
	char err[2048];
	struct source *src;
	struct source_block blk;
	float *buf;
	long want, got = 0;
	unsigned ch, stride;
	size_t i;
	int ret;

	if (argc != 3 || (want = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: iio_read CONFIG FRAMES\n");
		return 2;
	}
	if (config_load(&cfg, argv[1], err, sizeof(err)) < 0 ||
	    source_iio_open(&cfg, &src, err, sizeof(err)) < 0) {
		fprintf(stderr, "iio_read: %s\n", err);
		return 1;
	}
	printf("# %s\n", src->description);
	if (src->has_angle) {
		printf("# angle %s\n", src->angle_name);
	}
	stride = source_frame_floats(src);
	buf = calloc((size_t)cfg.source.block_frames * stride, sizeof(float));
	if (!buf) {
		return 1;
	}
	/*
	 * The fake rig's generator polls buffer/enable every millisecond; a
	 * real kernel resets its kfifo on every disable. Give the rig time to
	 * see the disable of open's trial buffer before start enables again.
	 */
	{
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 50000000 };

		nanosleep(&ts, NULL);
	}
	if (src->ops->start(src, 0, NULL) < 0) {
		fprintf(stderr, "iio_read: start failed\n");
		return 1;
	}
	while (got < want) {
		ret = src->ops->read(src, buf, (size_t)cfg.source.block_frames, &blk);
		if (ret <= 0) {
			fprintf(stderr, "iio_read: read: %d\n", ret);
			return 1;
		}
		for (i = 0; i < blk.frames && got < want; i++, got++) {
			printf("%" PRIu64, blk.first_sample + i);
			for (ch = 0; ch < stride; ch++) {
				printf(" %.9g", (double)buf[i * stride + ch]);
			}
			printf("\n");
		}
	}
	printf("# gaps %" PRIu64 " lost %" PRIu64 "\n", src->gaps, src->lost);
	free(buf);
	source_destroy(src);
	return 0;
}
