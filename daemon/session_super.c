/* SPDX-License-Identifier: MIT */
/*
 * The supervisor on the main thread: readiness for systemd, the RT
 * threads' heartbeats (a hung thread disarms the coil and locks arming
 * out), the systemd watchdog, the status line, and what
 * daemon.arm_on_start came to.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "acquire.h"
#include "blind.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "notify.h"
#include "plugin.h"
#include "sclock.h"
#include "session_private.h"
#include "source.h"
#include "stim.h"

void session_super_init(struct session *s)
{
	struct session_super *sv = &s->super;
	const struct rpmsd_config *cfg = s->cfg;

	sv->hb_ns = (int64_t)cfg->daemon.heartbeat_timeout_ms * 1000000;
	/* An IIO read may wait source.timeout_ms before it returns an error. */
	sv->acq_limit_ns = sv->hb_ns + (cfg->source.type == CONFIG_SOURCE_IIO
						? (int64_t)cfg->source.timeout_ms * 1000000 : 0);
	sv->wd_ns = notify_watchdog_ns();
	if (sv->wd_ns > 0) {
		log_info("systemd watchdog: %.1f s, fed while both real-time threads show progress "
			 "within %d ms", sv->wd_ns / 1e9, cfg->daemon.heartbeat_timeout_ms);
		if (sv->acq_limit_ns >= sv->wd_ns) {
			log_warn("systemd watchdog: WatchdogSec (%.1f s) is not above the time a hung "
				 "acquire thread takes to notice (%.1f s): the service may be killed "
				 "before the supervisor disarms", sv->wd_ns / 1e9,
				 sv->acq_limit_ns / 1e9);
		}
	}
}

/*
 * An RT thread has stopped turning. The coil is disarmed first (through
 * the stim thread when that one still runs, directly through the plugin's
 * force_disarm when it is the hung one), arming is refused from now on,
 * and the systemd watchdog is no longer fed: the service manager kills and
 * restarts the daemon, which starts disarmed.
 */
static void session_super_hung(struct session *s, const char *thread, int64_t silent_ns)
{
	struct session_super *sv = &s->super;
	char reason[EVENT_REASON_MAX];
	int ret = 0;

	sv->hung = true;
	sv->hung_thread = thread;
	stim_lock_out(s->stim, "supervisor: a real-time thread is hung");
	if (!strcmp(thread, "stim")) {
		ret = plugin_force_disarm(s->plugin);
		if (blind_sham_coil(s->blind)) {
			int sham = plugin_force_disarm(blind_sham_coil(s->blind));

			ret = ret < 0 ? ret : sham;
		}
	}
	snprintf(reason, sizeof(reason), "%s thread hung: coil disarmed", thread);
	session_state_code(s, EVENT_STATE_FAULT, -ETIMEDOUT, reason);
	log_err("supervisor: the %s thread has shown no progress for %.0f ms "
		"(daemon.heartbeat_timeout_ms %d): coil disarmed%s, arming refused; %s",
		thread, silent_ns / 1e6, s->cfg->daemon.heartbeat_timeout_ms,
		ret == -EOPNOTSUPP ? " as far as possible (the coil plugin has no force_disarm)"
		: ret < 0 ? " (force_disarm FAILED)" : "",
		sv->wd_ns ? "the systemd watchdog is no longer fed and will restart the service"
			  : "restart rpmsd");
}

/* Heartbeats of both RT threads; paced time only (virtual time has none). */
static void session_super_check_threads(struct session *s, int64_t now)
{
	struct session_super *sv = &s->super;
	int64_t silent;

	if (sv->hung || sclock_is_virtual(s->clock)) {
		return;
	}
	silent = now - stim_heartbeat(s->stim);
	if (silent > sv->hb_ns) {
		session_super_hung(s, "stim", silent);
		return;
	}
	/* Parked after a source fault, it waits for this thread on purpose. */
	silent = now - acquire_heartbeat(s->acq);
	if (!acquire_parked(s->acq) && silent > sv->acq_limit_ns) {
		session_super_hung(s, "acquire", silent);
	}
}

/* A person's one-line summary for `systemctl status`. */
static void session_super_status(struct session *s)
{
	const char *blocked = stim_arm_blocked(s->stim);

	if (s->super.hung) {
		notify_status("FAULT: the %s thread is hung; coil disarmed, arming refused",
			      s->super.hung_thread);
	} else if (!s->super.ready) {
		notify_status("starting: waiting for EMG from %s", s->src->description);
	} else if (s->reopen.pending) {
		notify_status("EMG lost: coil disarmed, reopening the source (attempt %d)",
			      s->reopen.attempts + 1);
	} else {
		notify_status("%s; %" PRIu64 " pulses this run, %" PRIu64 " today%s%s",
			      stim_armed(s->stim) ? "ARMED" : "disarmed",
			      stim_pulse_count(s->stim), stim_day_pulses(s->stim),
			      blocked ? "; " : "", blocked ? blocked : "");
	}
}

/*
 * daemon.arm_on_start: ask the stim thread to arm; session_super_arm_outcome
 * logs what it came to. Only what happened is logged: never "armed"
 * before the gate is.
 */
void session_super_arm_on_start(struct session *s)
{
	/* even when arming is refused: the refusal is published, with its reason */
	log_warn("daemon.arm_on_start: asking to arm the coil without a command");
	if (stim_arm(s->stim, "arm_on_start", &s->arm_start_ticket) < 0) {
		log_err("daemon.arm_on_start: the coil is not armed: the stim thread's command "
			"ring is full");
		return;
	}
	s->arm_start_pending = true;
}

void session_super_arm_outcome(struct session *s, bool final)
{
	struct stim_arm_result r;

	if (!s->arm_start_pending) {
		return;
	}
	stim_arm_result(s->stim, &r);
	if ((int)(r.attempts - s->arm_start_ticket) < 0) {
		if (final) {
			s->arm_start_pending = false;
			log_warn("daemon.arm_on_start: the coil was never armed: the session "
				 "ended first");
		}
		return;
	}
	s->arm_start_pending = false;
	if (r.code == 0) {
		log_warn("daemon.arm_on_start: the coil is armed (without a command)");
	} else {
		log_err("daemon.arm_on_start: the coil is not armed: %s", r.reason);
	}
}

/*
 * Once per main-loop turn: readiness (the plugin is open before the
 * threads start; here the EMG flows and the ledger is loaded), the
 * threads' heartbeats, the watchdog and the status line.
 */
void session_super_tick(struct session *s)
{
	struct session_super *sv = &s->super;
	int64_t now = sclock_mono_ns();

	session_super_check_threads(s, now);
	session_super_arm_outcome(s, false);
	if (!sv->ready && !sv->hung && s->ledger.dose && acquire_samples(s->acq) > 0) {
		sv->ready = true;
		notify_ready("running: EMG flowing, coil disarmed");
		log_info("ready: the coil plugin is open, EMG flows, the pulse ledger is loaded");
	}
	if (sv->wd_ns > 0 && !sv->hung && now - sv->wd_last >= sv->wd_ns / 4) {
		notify_watchdog();
		sv->wd_last = now;
	}
	if (now - sv->status_last >= 1000000000) {
		session_super_status(s);
		sv->status_last = now;
	}
}

/* How long the main loop may sleep and still supervise in time. */
int session_super_period_ms(const struct session *s)
{
	int64_t p = s->super.hb_ns / 4;

	if (s->super.wd_ns > 0 && s->super.wd_ns / 8 < p) {
		p = s->super.wd_ns / 8;
	}
	p /= 1000000;
	return p < 10 ? 10 : p > 200 ? 200 : (int)p;
}

