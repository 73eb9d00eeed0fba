/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the replay reader (source_replay.c: headers, rate lines, CSV with
 * a header row and columns by name or number, two-column time/value text,
 * numbers of every shape): open the bytes as a recording and read every
 * block, in each format. Any input must be refused with a message or read
 * to its end, never crash or read out of bounds.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_common.h"
#include "source.h"

#define FUZZ_FRAMES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_read_all(const struct rpmsd_config *cfg)
{
	static float buf[FUZZ_FRAMES * SOURCE_MAX_CHANNELS];
	struct source_block blk;
	struct source *src = NULL;
	char err[1024];
	int i, ret;

	err[0] = '\0';
	ret = source_replay_open(cfg, false, &src, err, sizeof(err));
	if (ret < 0) {
		if (err[0] == '\0') {
			__builtin_trap();
		}
		return;
	}
	if (src->ops->start(src, 0, NULL) == 0) {
		for (i = 0; i < 100000; i++) {
			if (src->ops->read(src, buf, FUZZ_FRAMES, &blk) <= 0) {
				break;
			}
		}
	}
	source_destroy(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum config_replay_format formats[] = {
		CONFIG_FORMAT_AUTO, CONFIG_FORMAT_TEXT, CONFIG_FORMAT_CSV, CONFIG_FORMAT_TIMEVALUE,
	};
	static const char *const columns[] = { "1", "2", "1,2", "emg" };
	static struct rpmsd_config cfg;
	char path[64];
	size_t i;
	int fd;

	fd = fuzz_memfile(data, size, path, sizeof(path));
	if (fd < 0) {
		return 0;
	}
	config_defaults(&cfg);
	strcpy(cfg.source.file, path);
	cfg.source.realtime = false;
	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		cfg.source.format = formats[i];
		strcpy(cfg.source.column, columns[i]);
		/* a rate from the config for text without a header, else the file's */
		cfg.source.rate_hz = (i & 1) ? 1000.0 : 0.0;
		fuzz_read_all(&cfg);
	}
	close(fd);
	return 0;
}
