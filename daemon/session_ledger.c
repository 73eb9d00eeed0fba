/* SPDX-License-Identifier: MIT */
/*
 * The session's side of the pulse ledger (dose.c keeps the file): the
 * main thread records a reservation ahead of the pulses the stim thread
 * delivers, tops it up, begins a new day when the ledger's day has ended
 * (never on a step of the wall clock alone), holds arming while a write
 * fails and records the exact count at the end. The gate that refuses a
 * pulse beyond the day's count is the stim thread's (stim_set_ledger).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dose.h"
#include "event.h"
#include "log.h"
#include "sclock.h"
#include "session_private.h"
#include "stim.h"
#include "zone.h"

/*
 * A change of the wall clock against the monotonic clock between two
 * ledger ticks (200 ms apart) larger than this is a step (settimeofday, an
 * NTP step, a person), not drift or an NTP slew.
 */
#define SESSION_LEDGER_CLOCK_STEP_NS INT64_C(30000000000)

/*
 * daemon.state_dir must be an existing directory the daemon may write:
 * rpmsd never creates it (a typo must not start a new ledger at zero).
 * The message names the key's line, or the file when it kept its default.
 */
int session_ledger_check_dir(const struct rpmsd_config *cfg, char *err, size_t errlen)
{
	char dir[CONFIG_PATH_MAX], where[CONFIG_PATH_MAX + 16];
	int line = config_key_line(cfg, "daemon", "state_dir");
	const char *what;
	struct stat st;

	if (line) {
		snprintf(where, sizeof(where), "%s:%d", cfg->path, line);
	} else {
		snprintf(where, sizeof(where), "%s", cfg->path);
	}
	if (config_resolve(cfg, cfg->daemon.state_dir, dir, sizeof(dir)) < 0) {
		snprintf(err, errlen, "%s: daemon.state_dir: path too long", where);
		return -ENAMETOOLONG;
	}
	if (stat(dir, &st) < 0) {
		what = errno == ENOENT ? "does not exist" : strerror(errno);
	} else if (!S_ISDIR(st.st_mode)) {
		what = "is not a directory";
	} else if (access(dir, W_OK | X_OK) < 0) {
		what = "is not writable by this user";
	} else {
		return 0;
	}
	/* paths of any length: a cut message still names the file and key first */
	if (snprintf(err, errlen,
		     "%s: daemon.state_dir: '%s'%s %s (allowed: an existing directory, writable by the user rpmsd runs as, for the pulse ledger; systemd's StateDirectory= creates it, rpmsd does not)",
		     where, dir, line ? "" : " (the default)", what) >= (int)errlen) {
		err[errlen - 1] = '\0';
	}
	return -ENOENT;
}

/* What the clocks say now (the boot id stays the one read at start). */
static void session_ledger_clock(struct session_ledger *l)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	l->clock.real_s = (int64_t)ts.tv_sec;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	l->clock.boot_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* @a + @b, at most @cap: counts must neither wrap nor pass the day's cap. */
static uint64_t session_ledger_add_cap(uint64_t a, uint64_t b, uint64_t cap)
{
	return a > cap || b > cap - a ? cap : a + b;
}

/*
 * CLOCK_BOOTTIME of this run's last pulse, for the next run's gap between
 * trains: from the stim thread's CLOCK_MONOTONIC stamp. A suspend since
 * then makes it later than it was: never too early.
 */
static int64_t session_ledger_last_pulse(struct session *s)
{
	int64_t mono = s->stim ? stim_last_pulse_mono(s->stim) : INT64_MIN;

	if (mono == INT64_MIN) {
		return DOSE_KEEP_PULSE;
	}
	return s->ledger.clock.boot_ns - (sclock_mono_ns() - mono);
}

/* Publish a ledger fault, once the session's events can be published. */
static void session_ledger_fault(struct session *s)
{
	struct session_ledger *l = &s->ledger;

	if (!l->fault_pending || !s->running) {
		return;
	}
	l->fault_pending = false;
	session_state_code(s, EVENT_STATE_FAULT, l->fault_code,
			   "pulse ledger write failed: coil disarmed, arming refused until it can be written");
}

/*
 * Record @count (a new day when @new_day) and hand it to the gate
 * (@gate_new_day: the gate's day count restarts). On failure the coil is
 * disarmed at once and arming is held, a fault: pulses the ledger cannot
 * count are not fired (the gate refuses them anyway once the reservation
 * runs out). The tick retries; the first write that succeeds again
 * releases arming and publishes `recovered`.
 */
static int session_ledger_write(struct session *s, bool new_day, uint64_t count,
				bool gate_new_day, bool exact)
{
	struct session_ledger *l = &s->ledger;
	char err[DOSE_ERR_MAX];
	int ret;

	session_ledger_clock(l);
	ret = dose_record(l->dose, &l->clock, new_day, count, exact, session_ledger_last_pulse(s),
			  err, sizeof(err));
	if (ret < 0) {
		if (!l->failing) {
			log_err("pulse ledger: %s; coil disarmed, arming refused until the ledger "
				"can be written again (tried every 200 ms)", err);
			if (s->stim) {
				stim_hold_arming(s->stim, "arm refused: the pulse ledger cannot be "
						 "written (see the log)");
				stim_disarm(s->stim, "pulse ledger write failed");
			}
			l->failing = true;
			l->failed = true;
			l->fault_pending = true;
			l->fault_code = ret;
			session_ledger_fault(s);
		}
		return ret;
	}
	l->recorded = count;
	if (s->stim && !exact) {
		stim_set_ledger(s->stim, count, gate_new_day);
	}
	if (l->failing) {
		l->failing = false;
		if (s->stim) {
			stim_hold_arming(s->stim, NULL);
		}
		log_info("pulse ledger: written again; arming is allowed (the coil stays disarmed "
			 "until armed)");
		if (l->fault_pending) {
			l->fault_pending = false;
		} else if (s->main_events) {
			session_state(s, EVENT_STATE_RECOVERED,
				      "pulse ledger written again: arming allowed");
		}
	}
	return 0;
}

/* The ledger's day for the log: "2026-11-27 (Europe/Berlin, ends 2026-11-27T23:00:00Z)". */
static void session_ledger_day_text(const struct session_ledger *l, char *buf, size_t len)
{
	char ds[DOSE_DAY_STRLEN];
	int64_t end = dose_day_end(l->dose), sec = ((end % 86400) + 86400) % 86400;

	dose_day_string(dose_day(l->dose), ds, sizeof(ds));
	snprintf(buf, len, "%s", ds);
	dose_day_string((end - sec) / 86400, ds, sizeof(ds));
	snprintf(buf + strlen(buf), len - strlen(buf), " (%s, ends %sT%02d:%02d:%02dZ)",
		 zone_name(l->zone), ds, (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60));
}

/*
 * Open the ledger in daemon.state_dir and record the first reservation
 * before the stim thread starts. A ledger that cannot be read blocks
 * arming with the reason; the daemon still runs, so that the EMG can be
 * watched and the problem seen on the event stream.
 */
void session_ledger_open(struct session *s, bool virtual_time)
{
	const struct rpmsd_config *cfg = s->cfg;
	struct session_ledger *l = &s->ledger;
	char err[DOSE_ERR_MAX], why[DOSE_ERR_MAX - 32], day[128];
	uint64_t start, cap = (uint64_t)cfg->safety.max_daily_pulses;
	int64_t prior;
	int ret;

	/*
	 * In fast replay virtual time outruns this thread's 200 ms loop, so
	 * the whole session's allowance is recorded up front.
	 */
	l->reserve = virtual_time ? (uint64_t)cfg->safety.max_session_pulses
				  : (uint64_t)cfg->safety.ledger_reserve_pulses;
	dose_clock_now(&l->clock);
	ret = session_ledger_check_dir(cfg, err, sizeof(err));
	if (ret == 0) {
		/* checked with the config; the file may have gone since */
		ret = zone_load(cfg->safety.day_zone, &l->zone, why, sizeof(why));
		if (ret < 0) {
			snprintf(err, sizeof(err), "safety.day_zone: %s", why);
		}
	}
	if (ret == 0) {
		/* cannot fail: session_ledger_check_dir resolved it */
		(void)config_resolve(cfg, cfg->daemon.state_dir, l->dir, sizeof(l->dir));
		ret = dose_open(l->dir, l->zone, &l->clock, &l->dose, err, sizeof(err));
	}
	if (ret < 0) {
		log_err("pulse ledger: %s", err);
		log_err("the coil cannot be armed until the pulse ledger is usable; it stays disarmed");
		stim_block_arming(s->stim, "the pulse ledger in daemon.state_dir is unusable (see the log)");
		l->dose = NULL;
		return;
	}
	if (dose_notice(l->dose)) {
		log_warn("pulse ledger: %s", dose_notice(l->dose));
	}
	start = dose_pulses(l->dose);
	session_ledger_day_text(l, day, sizeof(day));
	log_info("pulse ledger %s/dose: %" PRIu64 " pulses on %s%s", l->dir, start, day,
		 dose_exact(l->dose) ? "" : " (a reservation: the last run did not stop cleanly)");
	stim_start_day(s->stim, start);
	prior = dose_prior_pulse_ns(l->dose);
	if (prior != DOSE_NO_PULSE) {
		stim_prior_pulse(s->stim, prior);
		if (prior < (int64_t)llround(cfg->safety.min_train_interval_ms * 1e6)) {
			log_info("pulse ledger: the previous run's last pulse was %s%.3f s ago: the "
				 "first train keeps safety.min_train_interval_ms from it",
				 prior ? "" : "not known for sure (a crash or a reboot); taken as ",
				 prior / 1e9);
		}
	}
	l->recorded = start;
	(void)session_ledger_write(s, false, session_ledger_add_cap(start, l->reserve, cap),
				   false, false);
}

/*
 * Whether the wall clock was stepped since the last call, by how much.
 * The first call only takes the reference.
 */
static bool session_ledger_wall_step(struct session_ledger *l, int64_t *step_ns)
{
	struct timespec wall, mono;
	int64_t off;
	bool stepped;

	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	off = (int64_t)(wall.tv_sec - mono.tv_sec) * 1000000000 + (wall.tv_nsec - mono.tv_nsec);
	*step_ns = off - l->wall_offset_ns;
	stepped = l->have_offset && (*step_ns > SESSION_LEDGER_CLOCK_STEP_NS ||
				     *step_ns < -SESSION_LEDGER_CLOCK_STEP_NS);
	l->wall_offset_ns = off;
	l->have_offset = true;
	return stepped;
}

/*
 * Main loop: top up the reservation, begin a new day once the ledger's
 * day has ended, retry a write that failed.
 */
void session_ledger_tick(struct session *s)
{
	struct session_ledger *l = &s->ledger;
	uint64_t cap = (uint64_t)s->cfg->safety.max_daily_pulses;
	uint64_t delivered;
	int64_t step_ns;
	bool stepped;
	char day[128];

	if (!l->dose) {
		return;
	}
	session_ledger_fault(s);
	stepped = session_ledger_wall_step(l, &step_ns);
	session_ledger_clock(l);
	if (dose_day_over(l->dose, &l->clock)) {
		if (stepped || l->step_pending) {
			/*
			 * The day's end reached by a step of the wall clock, not
			 * by time passing: the step may be the mistake, and a
			 * reset count would then give the real day a second
			 * allowance. Carry the count over: never under-count.
			 */
			l->step_pending = session_ledger_write(s, true, l->recorded, false, false) < 0;
			if (!l->step_pending) {
				session_ledger_day_text(l, day, sizeof(day));
				log_warn("pulse ledger: the wall clock was stepped by %+.0f s past the "
					 "end of the day: the new day %s keeps the %" PRIu64 " pulses "
					 "counted so far (a step must never reset the count); it starts "
					 "at 0 on the next day's end reached by time passing",
					 step_ns / 1e9, day, stim_day_pulses(s->stim));
			}
			return;
		}
		if (session_ledger_write(s, true, l->reserve > cap ? cap : l->reserve, true,
					 false) == 0) {
			session_ledger_day_text(l, day, sizeof(day));
			log_info("pulse ledger: a new day, %s; its count starts at 0", day);
		}
		return;
	}
	if (stepped) {
		log_warn("pulse ledger: the wall clock was stepped by %+.0f s; the ledger stays "
			 "on its day, which ends when real time reaches its end", step_ns / 1e9);
	}
	delivered = stim_day_pulses(s->stim);
	if (!l->failing &&
	    (l->recorded >= cap || l->recorded - delivered > l->reserve / 2)) {
		return;
	}
	(void)session_ledger_write(s, false, session_ledger_add_cap(delivered, l->reserve, cap),
				   false, false);
}

/* After the stim thread stopped: the exact count, for a clean restart. */
void session_ledger_close(struct session *s)
{
	struct session_ledger *l = &s->ledger;

	if (!l->dose) {
		return;
	}
	/* a write that keeps failing is tried once more: space may have been freed */
	(void)session_ledger_write(s, false, stim_day_pulses(s->stim), false, true);
}

