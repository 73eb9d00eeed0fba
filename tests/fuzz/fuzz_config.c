/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the configuration parser (config_load_flags: inih, the typed key
 * table, the [coil.<plugin>] section, cross-key checks and the train
 * table file it may name). Any input must give 0 or a negative errno with
 * a message, never a crash, a leak or a read past a buffer; a file that
 * loads must also survive config_recheck and --print-config's writer.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rpmsd_config cfg;
	char path[64], err[CONFIG_ERR_MAX];
	FILE *null;
	int fd, ret;

	fd = fuzz_memfile(data, size, path, sizeof(path));
	if (fd < 0) {
		return 0;
	}
	err[0] = '\0';
	ret = config_load_flags(&cfg, path, CONFIG_LOAD_INPUT_GIVEN, err, sizeof(err));
	if (ret < 0 && err[0] == '\0') {
		/* every refusal must say what was wrong */
		__builtin_trap();
	}
	if (ret == 0) {
		(void)config_recheck(&cfg, "fuzz", err, sizeof(err));
		null = fopen("/dev/null", "w");
		if (null) {
			config_write_template(null);
			fclose(null);
		}
	}
	close(fd);
	return 0;
}
