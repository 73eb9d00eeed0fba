/* SPDX-License-Identifier: MIT */
/*
 * Logging for non-real-time threads: one line per call on stderr.
 * Real-time threads never log; they push event records instead.
 */
#ifndef RPMSD_LOG_H
#define RPMSD_LOG_H

/** Severity, syslog numbering. */
enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARN = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/** Lines above this level are dropped. Default LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);

/** Print "rpmsd: <level>: message" on stderr if @level is enabled. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif /* RPMSD_LOG_H */
