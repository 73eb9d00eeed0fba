/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "notify.h"

#define NOTIFY_STATUS_MAX 256

/* The last status sent: systemctl status shows the latest only. */
static char notify_last[NOTIFY_STATUS_MAX];

static void notify_send(const char *msg)
{
	/* unset_environment = 0: a reload must still reach the manager. */
	(void)sd_notify(0, msg);
}

void notify_ready(const char *status)
{
	char msg[NOTIFY_STATUS_MAX + 32];

	snprintf(notify_last, sizeof(notify_last), "%s", status);
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", notify_last);
	notify_send(msg);
}

void notify_status(const char *fmt, ...)
{
	char line[NOTIFY_STATUS_MAX], msg[NOTIFY_STATUS_MAX + 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (strcmp(line, notify_last) == 0) {
		return;
	}
	memcpy(notify_last, line, sizeof(notify_last));
	snprintf(msg, sizeof(msg), "STATUS=%s", line);
	notify_send(msg);
}

void notify_stopping(const char *why)
{
	char msg[NOTIFY_STATUS_MAX + 32];

	snprintf(notify_last, sizeof(notify_last), "stopping: %s", why);
	snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=%s", notify_last);
	notify_send(msg);
}

void notify_reloading(void)
{
	notify_send("RELOADING=1\nSTATUS=reloading the configuration");
	notify_last[0] = '\0';
}

void notify_reloaded(void)
{
	notify_send("READY=1");
}

int64_t notify_watchdog_ns(void)
{
	uint64_t usec = 0;

	/* > 0: enabled for this process (WATCHDOG_PID matches or is unset). */
	if (sd_watchdog_enabled(0, &usec) <= 0) {
		return 0;
	}
	return (int64_t)usec * 1000;
}

void notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}
