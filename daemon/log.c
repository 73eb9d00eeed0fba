/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "log.h"

static atomic_int log_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	atomic_store(&log_level, (int)level);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {
		[LOG_LEVEL_ERR] = "error", [LOG_LEVEL_WARN] = "warning",
		[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
	};
	char line[1024];
	va_list ap;

	if ((int)level > atomic_load(&log_level)) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line: lines from different threads do not interleave. */
	fprintf(stderr, "rpmsd: %s: %s\n", names[level] ? names[level] : "log", line);
}
