/* SPDX-License-Identifier: MIT */
/*
 * The service manager's side of the daemon: sd_notify(3) readiness,
 * status lines and the watchdog. Every call is a no-op when rpmsd was not
 * started by systemd (no $NOTIFY_SOCKET), so the same binary runs by hand.
 * Main thread only: sd_notify opens a socket and may block briefly.
 */
#ifndef RPMSD_NOTIFY_H
#define RPMSD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/** Tell the service manager start-up is complete (READY=1) with a status. */
void notify_ready(const char *status);

/** Send a STATUS= line; repeated identical lines are not sent again. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** The service is stopping (STOPPING=1) and why, as a status line. */
void notify_stopping(const char *why);

/** The service is reloading its configuration (RELOADING=1). */
void notify_reloading(void);

/** Reloading is over (READY=1 again). */
void notify_reloaded(void);

/**
 * The watchdog period the service manager asked for (WatchdogSec=), in
 * ns, or 0 when there is no watchdog.
 */
int64_t notify_watchdog_ns(void);

/** Feed the watchdog (WATCHDOG=1). */
void notify_watchdog(void);

#endif /* RPMSD_NOTIFY_H */
