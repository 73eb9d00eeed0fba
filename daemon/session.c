/* SPDX-License-Identifier: MIT */
/*
 * Session: wiring and lifecycle. Start-up order matters for safety and
 * real time: everything is allocated first, signals are blocked before
 * any thread exists (so only signalfd sees them), memory is locked, the
 * stim thread starts disarmed, and acquisition starts last. Shutdown runs
 * the other way: acquisition stops, the stim thread disarms the coil and
 * exits, then the publisher drains every ring so no event is lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acquire.h"
#include "control.h"
#include "detect.h"
#include "dose.h"
#include "dsp.h"
#include "emg.h"
#include "event.h"
#include "log.h"
#include "notify.h"
#include "plugin.h"
#include "publish.h"
#include "record.h"
#include "rt.h"
#include "safety.h"
#include "sclock.h"
#include "session.h"
#include "source.h"
#include "stim.h"
#include "zone.h"

#define SESSION_ERR_MAX 2048
#define SESSION_MAIN_RING 64
#define SESSION_EMG_STREAM_S 10.0	/* EMG the ring to the publisher (rpms.emg) holds */

/* Reopening a failed source, from the main thread (session_wait). */
struct session_reopen {
	bool pending;		/* the acquire thread is parked */
	bool ever;		/* a reopen has happened */
	int64_t due_ns;		/* CLOCK_MONOTONIC of the next attempt */
	int backoff_ms;
	int attempts;		/* in a row without a block */
	uint64_t blocks_at_reopen;
	uint64_t reopens;	/* successful, for the summary */
};

/* The pulse ledger, owned by the main thread (it fsyncs). */
struct session_ledger {
	struct dose_ledger *dose;	/* NULL: unusable, arming is refused */
	struct zone *zone;		/* safety.day_zone, read once at start */
	struct dose_clock clock;	/* the boot id read once; times at each use */
	char dir[CONFIG_PATH_MAX];
	uint64_t recorded;		/* today's count on disk (a reservation) */
	uint64_t reserve;		/* pulses recorded ahead of delivery */
	bool failing;			/* the last write failed: arming held, retried each tick */
	bool failed;			/* a write failed during this run (exit status 3) */
	bool fault_pending;		/* a failure before the session started, not yet published */
	int fault_code;
	bool step_pending;		/* a new day reached by a step is not yet written */
	bool have_offset;
	int64_t wall_offset_ns;		/* CLOCK_REALTIME - CLOCK_MONOTONIC at the last tick */
};

/*
 * A change of the wall clock against the monotonic clock between two
 * ledger ticks (200 ms apart) larger than this is a step (settimeofday, an
 * NTP step, a person), not drift or an NTP slew.
 */
#define SESSION_CLOCK_STEP_NS INT64_C(30000000000)

/* The supervisor on the main thread: heartbeats, readiness, watchdog. */
struct session_super {
	bool ready;		/* READY=1 sent */
	bool hung;		/* an RT thread stopped; latched until exit */
	const char *hung_thread;
	int64_t hb_ns;		/* daemon.heartbeat_timeout_ms */
	int64_t acq_limit_ns;	/* the acquire thread may also wait out a read */
	int64_t wd_ns;		/* systemd's WatchdogSec, 0 none */
	int64_t wd_last;	/* CLOCK_MONOTONIC of the last WATCHDOG=1 */
	int64_t status_last;
};

struct session {
	const struct rpmsd_config *cfg;
	struct source *src;
	struct sclock *clock;
	struct plugin *plugin;
	struct stim *stim;
	struct acquire *acq;
	struct publish *pub;
	struct control *ctl;		/* the control socket */
	struct ring *main_events;
	struct emg_tap *tap;		/* EMG for the recording and rpms.emg, or NULL */
	struct record *rec;		/* record.directory set, else NULL */
	struct emg_stream *emg;		/* publish.emg_stream, else NULL */
	int sfd;
	sigset_t oldmask;
	bool masked;
	struct session_reopen reopen;
	struct session_ledger ledger;
	struct session_super super;
	int dma_fd;			/* /dev/cpu_dma_latency held, or -1 */
	bool running;			/* "started" published: events may follow */
	bool arm_start_pending;		/* daemon.arm_on_start asked, outcome not logged */
	unsigned arm_start_attempts;	/* stim_arm_result's count before it */
	enum config_log_level log_level;	/* in force: SIGHUP may change it */
};

static void session_state_code(struct session *s, enum event_state state, int code,
			       const char *reason)
{
	struct event ev;

	event_state_init(&ev, state, code, reason, sclock_last_sample(s->clock));
	event_stamp(&ev, sclock_now(s->clock));
	ring_push(s->main_events, &ev);
}

static void session_state(struct session *s, enum event_state state, const char *reason)
{
	session_state_code(s, state, 0, reason);
}

/* What the EMG is and where its time comes from, for the record. */
static void session_source_opened(struct session *s)
{
	struct event ev = { .type = EVENT_SOURCE_OPENED };

	ev.u.opened.rate_hz = s->src->rate_hz;
	ev.u.opened.channels = s->src->channels;
	ev.u.opened.block_frames = (uint32_t)s->cfg->source.block_frames;
	ev.u.opened.time_source = s->src->time_source;
	event_stamp(&ev, sclock_now(s->clock));
	ring_push(s->main_events, &ev);
}

static void session_free(struct session *s)
{
	control_destroy(s->ctl);
	acquire_destroy(s->acq);
	stim_destroy(s->stim);
	publish_destroy(s->pub);
	record_destroy(s->rec);
	emg_stream_destroy(s->emg);
	emg_tap_destroy(s->tap);
	plugin_unload(s->plugin);
	source_destroy(s->src);
	ring_destroy(s->main_events);
	sclock_destroy(s->clock);
	dose_close(s->ledger.dose);
	zone_free(s->ledger.zone);
	rt_dma_latency_release(s->dma_fd);
	if (s->sfd >= 0) {
		close(s->sfd);
	}
	if (s->masked) {
		pthread_sigmask(SIG_SETMASK, &s->oldmask, NULL);
	}
}

/*
 * The acquisition watchdog needs at least one block per timeout, or it
 * would disarm between two perfectly healthy blocks.
 * @return 0, or -EINVAL with the message in @err
 */
static int session_check_timing(const struct rpmsd_config *cfg, const struct source *src,
				char *err, size_t errlen)
{
	double block_ms = cfg->source.block_frames * 1000.0 / src->rate_hz;

	if (cfg->safety.acquisition_timeout_ms > block_ms) {
		return 0;
	}
	snprintf(err, errlen,
		 "%s: safety.acquisition_timeout_ms: %g ms is not longer than one block "
		 "(source.block_frames %d at %g Hz = %g ms)", cfg->path,
		 cfg->safety.acquisition_timeout_ms, cfg->source.block_frames, src->rate_hz,
		 block_ms);
	return -EINVAL;
}

/*
 * daemon.state_dir must be an existing directory the daemon may write:
 * rpmsd never creates it (a typo must not start a new ledger at zero).
 * The message names the key's line, or the file when it kept its default.
 */
static int session_check_state_dir(const struct rpmsd_config *cfg, char *err, size_t errlen)
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
static void session_clock(struct session_ledger *l)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	l->clock.real_s = (int64_t)ts.tv_sec;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	l->clock.boot_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* @a + @b, at most @cap: counts must neither wrap nor pass the day's cap. */
static uint64_t session_add_cap(uint64_t a, uint64_t b, uint64_t cap)
{
	return a > cap || b > cap - a ? cap : a + b;
}

/*
 * CLOCK_BOOTTIME of this run's last pulse, for the next run's gap between
 * trains: from the stim thread's CLOCK_MONOTONIC stamp. A suspend since
 * then makes it later than it was: never too early.
 */
static int64_t session_last_pulse(struct session *s)
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

	session_clock(l);
	ret = dose_record(l->dose, &l->clock, new_day, count, exact, session_last_pulse(s), err,
			  sizeof(err));
	if (ret < 0) {
		if (!l->failing) {
			log_err("pulse ledger: %s; coil disarmed, arming refused until the ledger "
				"can be written again (tried every 200 ms)", err);
			if (s->stim) {
				stim_hold_arming(s->stim, "arm refused: the pulse ledger cannot be "
						 "written (see the log)");
				stim_set_armed(s->stim, false, "pulse ledger write failed");
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
static void session_day_text(const struct session_ledger *l, char *buf, size_t len)
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
static void session_ledger_open(struct session *s, bool virtual_time)
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
	ret = session_check_state_dir(cfg, err, sizeof(err));
	if (ret == 0) {
		/* checked with the config; the file may have gone since */
		ret = zone_load(cfg->safety.day_zone, &l->zone, why, sizeof(why));
		if (ret < 0) {
			snprintf(err, sizeof(err), "safety.day_zone: %s", why);
		}
	}
	if (ret == 0) {
		/* cannot fail: session_check_state_dir resolved it */
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
	session_day_text(l, day, sizeof(day));
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
	(void)session_ledger_write(s, false, session_add_cap(start, l->reserve, cap), false,
				   false);
}

/*
 * Whether the wall clock was stepped since the last call, by how much.
 * The first call only takes the reference.
 */
static bool session_wall_step(struct session_ledger *l, int64_t *step_ns)
{
	struct timespec wall, mono;
	int64_t off;
	bool stepped;

	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	off = (int64_t)(wall.tv_sec - mono.tv_sec) * 1000000000 + (wall.tv_nsec - mono.tv_nsec);
	*step_ns = off - l->wall_offset_ns;
	stepped = l->have_offset &&
		  (*step_ns > SESSION_CLOCK_STEP_NS || *step_ns < -SESSION_CLOCK_STEP_NS);
	l->wall_offset_ns = off;
	l->have_offset = true;
	return stepped;
}

/*
 * Main loop: top up the reservation, begin a new day once the ledger's
 * day has ended, retry a write that failed.
 */
static void session_ledger_tick(struct session *s)
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
	stepped = session_wall_step(l, &step_ns);
	session_clock(l);
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
				session_day_text(l, day, sizeof(day));
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
			session_day_text(l, day, sizeof(day));
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
	(void)session_ledger_write(s, false, session_add_cap(delivered, l->reserve, cap), false,
				   false);
}

/* After the stim thread stopped: the exact count, for a clean restart. */
static void session_ledger_close(struct session *s)
{
	struct session_ledger *l = &s->ledger;

	if (!l->dose) {
		return;
	}
	/* a write that keeps failing is tried once more: space may have been freed */
	(void)session_ledger_write(s, false, stim_day_pulses(s->stim), false, true);
}

/* The configured source: a recording or a live IIO device. */
static int session_open_source(const struct rpmsd_config *cfg, bool paced,
			       struct source **out, char *err, size_t errlen)
{
	if (cfg->source.type == CONFIG_SOURCE_IIO) {
		return source_iio_open(cfg, out, err, errlen);
	}
	return source_replay_open(cfg, paced, out, err, errlen);
}

/*
 * The acquire thread's EMG for the recording thread (record.directory)
 * and for rpms.emg (publish.emg_stream), each only when configured.
 */
static int session_build_emg(struct session *s)
{
	const struct rpmsd_config *cfg = s->cfg;
	size_t frames = (size_t)cfg->source.block_frames;
	bool rec = cfg->record.directory[0] != '\0';
	char err[SESSION_ERR_MAX];
	int ret;

	if (!rec && !cfg->publish.emg_stream) {
		return 0;
	}
	ret = emg_tap_create(s->src->channels, frames,
			     rec ? emg_ring_records(cfg->record.buffer_s, s->src->rate_hz, frames) : 0,
			     cfg->publish.emg_stream ?
			     emg_ring_records(SESSION_EMG_STREAM_S, s->src->rate_hz, frames) : 0,
			     &s->tap);
	if (ret < 0) {
		log_err("EMG tap: %s", strerror(-ret));
		return ret;
	}
	/* Fast replay has no real-time duty: it may wait for the recorder. */
	emg_tap_set_lossless(s->tap, sclock_is_virtual(s->clock));
	if (rec) {
		ret = record_create(cfg, s->src, s->clock, emg_tap_record_ring(s->tap), &s->rec,
				    err, sizeof(err));
		if (ret < 0) {
			log_err("%s: %s", cfg->path, err[0] ? err : strerror(-ret));
			return ret;
		}
		publish_set_forward(s->pub, record_input(s->rec));
		publish_add_ring(s->pub, record_events(s->rec), "record");
	}
	if (cfg->publish.emg_stream) {
		ret = emg_stream_create(cfg, s->src, emg_tap_stream_ring(s->tap), &s->emg);
		if (ret < 0) {
			log_err("rpms.emg: %s", strerror(-ret));
			return ret;
		}
		publish_set_emg(s->pub, s->emg);
	}
	acquire_set_tap(s->acq, s->tap);
	return 0;
}

/*
 * The recording thread, and the session's file (record.patient_id and
 * session_id until the control socket starts sessions itself). A recording
 * that was asked for and cannot be made stops the start.
 */
static int session_start_recording(struct session *s)
{
	const struct rpmsd_config *cfg = s->cfg;
	int ret;

	if (!s->rec) {
		return 0;
	}
	ret = record_start(s->rec);
	if (ret == 0) {
		ret = record_start_session(s->rec, cfg->record.patient_id, cfg->record.session_id,
					   NULL, 0);
	}
	if (ret < 0) {
		log_err("record.directory: cannot record the session: %s", strerror(-ret));
	}
	return ret;
}

/*
 * The control socket: a bind that fails stops the start, like the
 * publisher's (the default endpoint without its directory aside, which
 * runs without one: control_create).
 */
static int session_build_control(struct session *s)
{
	struct control_deps deps = {
		.stim = s->stim, .acq = s->acq, .clock = s->clock, .pub = s->pub,
		.rec = s->rec,
	};
	char err[SESSION_ERR_MAX];
	int ret;

	ret = control_create(s->cfg, &deps, &s->ctl, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: %s", s->cfg->path, err[0] ? err : strerror(-ret));
		return ret;
	}
	publish_add_ring(s->pub, control_events(s->ctl), "control");
	return 0;
}

static int session_build(struct session *s, const struct session_options *opt)
{
	const struct rpmsd_config *cfg = s->cfg;
	char err[SESSION_ERR_MAX];
	bool iio = cfg->source.type == CONFIG_SOURCE_IIO;
	/* A live device sets its own pace: only a recording can run in virtual time. */
	bool paced = iio || (cfg->source.realtime && !opt->fast);
	int ret;

	if (iio && opt->fast) {
		log_err("--fast replays recordings as fast as possible; source.type = iio is live");
		return -EINVAL;
	}
	err[0] = '\0';
	ret = session_open_source(cfg, paced, &s->src, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err[0] ? err : strerror(-ret));
		return ret;
	}
	log_info("source: %s%s", s->src->description, paced ? "" : ", as fast as possible");
	ret = session_check_timing(cfg, s->src, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err);
		return ret;
	}
	/*
	 * Before anything is opened (the plugin, the ledger): binding an ipc
	 * endpoint deletes what is at its path; control_bind looks again.
	 */
	ret = control_check_endpoints(cfg, true, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: %s", cfg->path, err);
		return ret;
	}
	ret = sclock_create(!paced, &s->clock);
	if (ret < 0) {
		return ret;
	}
	ret = plugin_load(cfg, cfg->stim.plugin, &s->plugin, err, sizeof(err));
	if (ret == 0) {
		ret = plugin_open(s->plugin, cfg, s->clock, err, sizeof(err));
	}
	if (ret < 0) {
		log_err("%s", err);
		return ret;
	}
	log_info("coil plugin: %s (%s)", cfg->stim.plugin, plugin_path(s->plugin));
	ret = stim_create(cfg, s->clock, s->plugin, &s->stim);
	if (ret < 0) {
		log_err("stim: %s", strerror(-ret));
		return ret;
	}
	session_ledger_open(s, !paced);
	ret = acquire_create(cfg, s->src, s->clock, s->stim, &s->acq, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: at %g Hz (the rate of %s): %s", cfg->path, s->src->rate_hz,
			s->src->description, err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = ring_create(SESSION_MAIN_RING, sizeof(struct event), &s->main_events);
	if (ret < 0) {
		return ret;
	}
	ret = publish_create(cfg, s->src->rate_hz, &s->pub, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err[0] ? err : strerror(-ret));
		return ret;
	}
	publish_add_ring(s->pub, acquire_events(s->acq), "acquire");
	publish_add_ring(s->pub, stim_events(s->stim), "stim");
	publish_add_ring(s->pub, s->main_events, "main");
	/* The recorder first: the control socket starts and stops its sessions. */
	ret = session_build_emg(s);
	if (ret < 0) {
		return ret;
	}
	return session_build_control(s);
}

static int session_signals(struct session *s)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	/* Before any thread starts: every thread inherits the blocked mask. */
	if (pthread_sigmask(SIG_BLOCK, &mask, &s->oldmask) != 0) {
		return -errno;
	}
	s->masked = true;
	s->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sfd < 0) {
		return -errno;
	}
	return 0;
}

/*
 * Wait for a first subscriber in short slices so that SIGINT/SIGTERM (which
 * are blocked and only seen through the signalfd) still stop the daemon.
 * @return 0, or the signal that arrived
 */
static int session_wait_subscriber(struct session *s, double timeout_s)
{
	struct signalfd_siginfo si;
	double waited = 0.0, step;

	log_info("waiting up to %.1f s for a subscriber on %s", timeout_s,
		 publish_endpoint(s->pub));
	while (waited < timeout_s) {
		step = timeout_s - waited < 0.1 ? timeout_s - waited : 0.1;
		if (publish_wait_subscriber(s->pub, step) == 0) {
			return 0;
		}
		if (read(s->sfd, &si, sizeof(si)) == sizeof(si) &&
		    (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)) {
			return (int)si.ssi_signo;
		}
		waited += step;
	}
	log_warn("no subscriber after %.1f s; starting anyway", timeout_s);
	return 0;
}

/*
 * A real-time wish that was not granted: a warning on a developer machine,
 * a refusal to start with daemon.require_rt. @return 0, or -EPERM
 */
static int session_rt_denied(const struct rpmsd_config *cfg, const char *what)
{
	if (cfg->daemon.require_rt) {
		log_err("%s; daemon.require_rt is set: not starting", what);
		return -EPERM;
	}
	log_warn("%s", what);
	return 0;
}

static int session_check_rt_thread(const struct rpmsd_config *cfg, const char *thread,
				   int priority, bool got_rt)
{
	char what[256];

	if (priority <= 0 || got_rt) {
		return 0;
	}
	snprintf(what, sizeof(what), "%s thread: SCHED_FIFO priority %d refused (no CAP_SYS_NICE "
		 "or RLIMIT_RTPRIO); running with normal scheduling", thread, priority);
	return session_rt_denied(cfg, what);
}

/* The pinned CPUs must be ones this process may run on: say which key. */
static int session_check_cpus(const struct rpmsd_config *cfg)
{
	static const struct { const char *key; size_t off; } keys[] = {
		{ "daemon.acquire_cpu", offsetof(struct rpmsd_config, daemon.acquire_cpu) },
		{ "daemon.stim_cpu", offsetof(struct rpmsd_config, daemon.stim_cpu) },
	};
	size_t i;
	int cpu;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		cpu = *(const int *)((const char *)cfg + keys[i].off);
		if (cpu >= 0 && rt_cpu_allowed(cpu) < 0) {
			log_err("%s: %s = %d: not a CPU this process may run on (online CPUs: %ld; "
				"the affinity mask, e.g. systemd's CPUAffinity=, may narrow them)",
				cfg->path, keys[i].key, cpu, sysconf(_SC_NPROCESSORS_ONLN));
			return -EINVAL;
		}
	}
	return 0;
}

/* Memory locked, idle states held off: before the RT threads start. */
static int session_rt_setup(struct session *s)
{
	const struct rpmsd_config *cfg = s->cfg;
	char what[256];
	int ret;

	ret = rt_lock_memory();
	if (ret < 0) {
		snprintf(what, sizeof(what), "mlockall: %s; memory is not locked (page faults "
			 "possible; needs CAP_IPC_LOCK or LimitMEMLOCK=infinity)", strerror(-ret));
		if (sclock_is_virtual(s->clock)) {
			log_warn("%s", what);
		} else if (session_rt_denied(cfg, what) < 0) {
			return -EPERM;
		}
	}
	if (!cfg->daemon.cpu_dma_latency || sclock_is_virtual(s->clock)) {
		return 0;
	}
	s->dma_fd = rt_dma_latency_hold();
	if (s->dma_fd < 0) {
		snprintf(what, sizeof(what), "/dev/cpu_dma_latency: %s; CPU idle states are not held "
			 "off (wake-up latency may grow; set daemon.cpu_dma_latency = false to "
			 "silence this)", strerror(-s->dma_fd));
		return session_rt_denied(cfg, what);
	}
	log_info("/dev/cpu_dma_latency held at 0 us");
	return 0;
}

static void session_give_up(struct session *s)
{
	log_err("source: %d attempts in a row brought no EMG (source.reopen_attempts); "
		"ending the session", s->reopen.attempts);
	s->reopen.pending = false;
	acquire_resume(s->acq, false);
}

/* The next wait: twice the last, up to source.reopen_max_ms. */
static void session_backoff(struct session *s)
{
	int max = s->cfg->source.reopen_max_ms;

	s->reopen.backoff_ms = s->reopen.backoff_ms * 2 > max ? max : s->reopen.backoff_ms * 2;
}

/* Try again after the back-off, unless source.reopen_attempts ran out. */
static void session_schedule_reopen(struct session *s)
{
	int limit = s->cfg->source.reopen_attempts;

	if (limit > 0 && s->reopen.attempts >= limit) {
		session_give_up(s);
		return;
	}
	s->reopen.pending = true;
	s->reopen.due_ns = sclock_mono_ns() + (int64_t)s->reopen.backoff_ms * 1000000;
}

/*
 * The acquire thread parked after a read error (it has disarmed the coil
 * and published the fault). Schedule a reopen; the back-off starts again
 * only once a reopen has brought data, so a device that opens but never
 * delivers (stalled) backs off like one that is gone.
 */
static void session_source_fault(struct session *s)
{
	const struct rpmsd_config *cfg = s->cfg;
	struct session_reopen *r = &s->reopen;
	uint64_t v;
	int err = acquire_parked(s->acq);

	if (read(acquire_fault_fd(s->acq), &v, sizeof(v)) != sizeof(v) || err == 0) {
		return;
	}
	if (!r->ever || acquire_blocks(s->acq) != r->blocks_at_reopen) {
		r->attempts = 0;
		r->backoff_ms = cfg->source.reopen_ms;
	} else {
		session_backoff(s);
	}
	log_warn("source: read failed (%s); coil disarmed; reopening in %d ms",
		 strerror(-err), r->backoff_ms);
	session_schedule_reopen(s);
}

static void session_try_reopen(struct session *s)
{
	struct session_reopen *r = &s->reopen;
	char err[SESSION_ERR_MAX];
	int ret;

	r->attempts++;
	err[0] = '\0';
	ret = s->src->ops->reopen(s->src, err, sizeof(err));
	if (ret == 0) {
		log_info("source: reopened (attempt %d); the coil stays disarmed until armed again",
			 r->attempts);
		r->pending = false;
		r->ever = true;
		r->reopens++;
		r->blocks_at_reopen = acquire_blocks(s->acq);
		acquire_resume(s->acq, true);
		return;
	}
	session_backoff(s);
	log_warn("source: reopen attempt %d failed: %s; next in %d ms", r->attempts,
		 err[0] ? err : strerror(-ret), r->backoff_ms);
	session_schedule_reopen(s);
}

/* ---- supervisor -------------------------------------------------------- */

static void session_super_init(struct session *s)
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
static void session_hung(struct session *s, const char *thread, int64_t silent_ns)
{
	struct session_super *sv = &s->super;
	char reason[EVENT_REASON_MAX];
	int ret = 0;

	sv->hung = true;
	sv->hung_thread = thread;
	stim_lock_out(s->stim, "supervisor: a real-time thread is hung");
	if (!strcmp(thread, "stim")) {
		ret = plugin_force_disarm(s->plugin);
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
static void session_check_threads(struct session *s, int64_t now)
{
	struct session_super *sv = &s->super;
	int64_t silent;

	if (sv->hung || sclock_is_virtual(s->clock)) {
		return;
	}
	silent = now - stim_heartbeat(s->stim);
	if (silent > sv->hb_ns) {
		session_hung(s, "stim", silent);
		return;
	}
	/* Parked after a source fault, it waits for this thread on purpose. */
	silent = now - acquire_heartbeat(s->acq);
	if (!acquire_parked(s->acq) && silent > sv->acq_limit_ns) {
		session_hung(s, "acquire", silent);
	}
}

/* A person's one-line summary for `systemctl status`. */
static void session_status(struct session *s)
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
 * daemon.arm_on_start: ask the stim thread to arm; session_arm_outcome
 * logs what it came to. Only what happened is logged: never "armed"
 * before the gate is.
 */
static void session_arm_on_start(struct session *s)
{
	struct stim_arm_result r;

	/* even when arming is refused: the refusal is published, with its reason */
	log_warn("daemon.arm_on_start: asking to arm the coil without a command");
	stim_arm_result(s->stim, &r);
	s->arm_start_attempts = r.attempts;
	s->arm_start_pending = true;
	stim_set_armed(s->stim, true, "arm_on_start");
}

static void session_arm_outcome(struct session *s, bool final)
{
	struct stim_arm_result r;

	if (!s->arm_start_pending) {
		return;
	}
	stim_arm_result(s->stim, &r);
	if (r.attempts == s->arm_start_attempts) {
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
static void session_supervise(struct session *s)
{
	struct session_super *sv = &s->super;
	int64_t now = sclock_mono_ns();

	session_check_threads(s, now);
	session_arm_outcome(s, false);
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
		session_status(s);
		sv->status_last = now;
	}
}

/* How long the main loop may sleep and still supervise in time. */
static int session_super_period_ms(const struct session *s)
{
	int64_t p = s->super.hb_ns / 4;

	if (s->super.wd_ns > 0 && s->super.wd_ns / 8 < p) {
		p = s->super.wd_ns / 8;
	}
	p /= 1000000;
	return p < 10 ? 10 : p > 200 ? 200 : (int)p;
}

/* ---- SIGHUP ------------------------------------------------------------ */

struct session_reload {
	char restart[1024];	/* keys that need a restart, "a.b, c.d" */
	size_t n_restart;
	bool log_level;
	bool train_table;	/* safety.train_table (its name or its cells) changed */
};

static void session_reload_key(const char *section, const char *key, void *arg)
{
	struct session_reload *r = arg;
	size_t used = strlen(r->restart);

	if (!strcmp(section, "stim") && config_key_live(section, key)) {
		return;		/* the control thread compares with what is in force */
	}
	if (!strcmp(section, "daemon") && !strcmp(key, "log_level")) {
		r->log_level = true;
		return;
	}
	if (!strcmp(section, "safety") && !strcmp(key, "train_table")) {
		r->train_table = true;
	}
	r->n_restart++;
	if (used + 4 < sizeof(r->restart)) {
		snprintf(r->restart + used, sizeof(r->restart) - used, "%s%s.%s",
			 used ? ", " : "", section, key);
	}
}

/*
 * SIGHUP: read the file again. Nothing changes unless the whole file is
 * valid (its protocol against its own train table, as at a restart). Live:
 * the protocol keys, checked as a "set" command is, against the limits in
 * force (the train table loaded at start, not the file as edited since),
 * and daemon.log_level; every other difference is named as needing a
 * restart. Every file is opened without blocking (a FIFO is refused): this
 * thread also answers SIGTERM.
 */
static void session_reload(struct session *s)
{
	static struct rpmsd_config next;	/* main thread only; too big for the stack */
	struct session_reload r = { .restart = "" };
	char err[CONFIG_ERR_MAX];
	int ret;

	notify_reloading();
	ret = config_load(&next, s->cfg->path, err, sizeof(err));
	if (ret < 0) {
		log_err("SIGHUP: %s; nothing changed", err);
		goto out;
	}
	config_diff(s->cfg, &next, session_reload_key, &r);
	if (r.log_level && next.daemon.log_level != s->log_level) {
		s->log_level = next.daemon.log_level;
		log_set_level((enum log_level)s->log_level);
		log_info("SIGHUP: daemon.log_level changed");
	}
	ret = control_reload(s->ctl, &next);
	if (ret < 0) {
		log_err("SIGHUP: the protocol could not be handed over (%s); unchanged",
			strerror(-ret));
	}
	if (r.n_restart) {
		log_warn("SIGHUP: %s: %zu setting(s) changed that take effect only after a "
			 "restart (not applied): %s", s->cfg->path, r.n_restart, r.restart);
	}
	if (r.train_table) {
		/* a safety limit: say plainly which table the gate still holds */
		log_warn("SIGHUP: safety.train_table: the edited table is NOT applied: the gate, "
			 "set and this reload keep the table loaded at start (%s) until rpmsd is "
			 "restarted", s->cfg->safety.train_table_file[0]
			 ? s->cfg->safety.train_table_file : "built-in");
	}
out:
	notify_reloaded();
}

/* A signal while running. @return the signal that stops the daemon, or 0. */
static int session_signal(struct session *s, int signo)
{
	switch (signo) {
	case SIGHUP:
		session_reload(s);
		return 0;
	case SIGUSR1:
	case SIGUSR2:
		if (!s->cfg->daemon.test_hooks) {
			log_warn("%s ignored (daemon.test_hooks is off)", strsignal(signo));
			return 0;
		}
		log_warn("test hook: %s: the %s thread hangs now", strsignal(signo),
			 signo == SIGUSR1 ? "stim" : "acquire");
		if (signo == SIGUSR1) {
			stim_test_stall(s->stim);
		} else {
			acquire_test_stall(s->acq);
		}
		return 0;
	default:
		return signo;
	}
}

/*
 * The heartbeat's counters, read by the publisher just before it sends one
 * (publish_set_refresh): atomics only. The rest of its status (protocol,
 * acquisition, temperature) is the main loop's, through control_status,
 * which reads what the main thread may rewrite (a reopened source).
 */
static void session_refresh_heartbeat(void *arg, struct publish_counts *out)
{
	struct session *s = arg;

	out->armed = stim_armed(s->stim);
	out->pulses = stim_pulse_count(s->stim);
	out->samples = acquire_samples(s->acq);
	out->pulses_session = stim_session_pulses(s->stim);
	out->pulses_today = stim_day_pulses(s->stim);
}

/* Wait for the end of the recording or a signal. @return 0, or the signal. */
static int session_wait(struct session *s)
{
	struct pollfd fds[3] = {
		{ .fd = s->sfd, .events = POLLIN },
		{ .fd = acquire_done_fd(s->acq), .events = POLLIN },
		{ .fd = acquire_fault_fd(s->acq), .events = POLLIN },
	};
	struct signalfd_siginfo si;
	struct publish_status st;
	int timeout_ms;
	int64_t left;

	for (;;) {
		publish_set_health(s->pub, stim_armed(s->stim), stim_pulse_count(s->stim),
				   acquire_samples(s->acq));
		control_status(s->ctl, &st);
		publish_set_status(s->pub, &st);
		session_ledger_tick(s);
		session_supervise(s);
		timeout_ms = session_super_period_ms(s);
		if (s->reopen.pending) {
			left = (s->reopen.due_ns - sclock_mono_ns()) / 1000000;
			timeout_ms = left < 0 ? 0 : left < timeout_ms ? (int)left + 1 : timeout_ms;
		}
		if (poll(fds, 3, timeout_ms) < 0 && errno != EINTR) {
			return 0;
		}
		if (fds[1].revents & POLLIN) {
			return 0;
		}
		if ((fds[0].revents & POLLIN) && read(s->sfd, &si, sizeof(si)) == sizeof(si) &&
		    session_signal(s, (int)si.ssi_signo)) {
			return (int)si.ssi_signo;
		}
		if (fds[2].revents & POLLIN) {
			session_source_fault(s);
		}
		if (s->reopen.pending && sclock_mono_ns() >= s->reopen.due_ns) {
			session_try_reopen(s);
		}
	}
}

static void session_pct_line(FILE *f, const char *label, const char *what,
			     const struct acquire_pct *p, const char *unit)
{
	fprintf(f, "  %-16s %s p50 %.1f us, p99 %.1f us, max %.1f us (%" PRIu64 " %s",
		label, what, p->p50_ns / 1e3, p->p99_ns / 1e3, p->max_ns / 1e3, p->count, unit);
	if (p->kept < p->count) {
		fprintf(f, ", percentiles of the last %zu", p->kept);
	}
	fprintf(f, ")\n");
}

/*
 * Timing of a live or paced run, from the acquire thread's own records:
 * how long after a block arrives its stimulation request is posted.
 */
static void session_summary_timing(struct session *s, FILE *f)
{
	struct acquire_pct blk, req, gap;

	if (acquire_latency(s->acq, ACQUIRE_LAT_BLOCK, &blk) < 0 ||
	    acquire_latency(s->acq, ACQUIRE_LAT_REQUEST, &req) < 0 ||
	    acquire_latency(s->acq, ACQUIRE_LAT_INTERVAL, &gap) < 0) {
		return;
	}
	if (blk.count) {
		session_pct_line(f, "block latency:", "arrival -> processed", &blk, "blocks");
	}
	if (req.count) {
		session_pct_line(f, "request latency:", "arrival -> posted", &req, "requests");
	}
	if (gap.count) {
		fprintf(f, "  block period:    %.1f us nominal (%d frames at %g Hz)\n",
			s->cfg->source.block_frames * 1e6 / s->src->rate_hz,
			s->cfg->source.block_frames, s->src->rate_hz);
		session_pct_line(f, "block arrivals:", "every", &gap, "intervals");
	}
}

/* Why a channel never calibrated, for the summary: the right words per source. */
static const char *session_uncalibrated_why(const struct session *s, int signo)
{
	if (s->src->gaps) {
		return "gaps in the stream restarted the rest window each time";
	}
	if (s->cfg->source.type != CONFIG_SOURCE_IIO) {
		return signo ? "stopped before the rest window was complete"
			     : "the recording ended first";
	}
	return "the session stopped before the rest window was complete";
}

static void session_summary(struct session *s, FILE *f, int signo)
{
	struct acquire_stats as;
	struct stim_stats ss;
	struct publish_stats ps;
	uint64_t onsets = 0, offsets = 0, dropped = 0;
	unsigned ch, r;

	acquire_get_stats(s->acq, &as);
	stim_get_stats(s->stim, &ss);
	publish_stats(s->pub, &ps);
	for (ch = 0; ch < s->src->channels; ch++) {
		onsets += as.onsets[ch];
		offsets += as.offsets[ch];
	}
	for (r = 0; r < SAFETY_RULE_COUNT; r++) {
		dropped += ss.dropped_by_rule[r];
	}
	fprintf(f, "\nrpmsd session summary\n");
	fprintf(f, "  recording:       %s\n", s->src->description);
	fprintf(f, "  processed:       %" PRIu64 " samples (%.2f s)%s\n", as.samples,
		(double)as.samples / s->src->rate_hz,
		as.ended ? ", to the end" : signo ? ", stopped by a signal" : ", stopped early");
	fprintf(f, "  calibration:     rest window %.1f-%.1f s\n", s->cfg->detect.calibration_start_s,
		s->cfg->detect.calibration_start_s + s->cfg->detect.calibration_s);
	for (ch = 0; ch < s->src->channels; ch++) {
		if (as.calibrated[ch]) {
			char why[160];

			fprintf(f, "    %-8s baseline %.4g, onset above %.4g, offset below %.4g\n",
				s->src->channel_names[ch], as.baseline[ch], as.on_threshold[ch],
				as.off_threshold[ch]);
			if (as.cal_issues[ch]) {
				detect_cal_describe(as.cal_issues[ch], as.cal_artefacts[ch],
						    as.cal_unsteady_s[ch], as.baseline[ch], why,
						    sizeof(why));
				fprintf(f, "    %-8s IN DOUBT: %s (recalibrate at rest: rpmsctl calibrate)\n",
					"", why);
			}
		} else {
			fprintf(f, "    %-8s not calibrated (%s)\n", s->src->channel_names[ch],
				session_uncalibrated_why(s, signo));
		}
	}
	if (as.source_error) {
		fprintf(f, "  source error:    %s\n", strerror(-as.source_error));
	}
	if (as.source_faults) {
		fprintf(f, "  source faults:   %" PRIu64 " read failures, %" PRIu64 " reopens\n",
			as.source_faults, s->reopen.reopens);
	}
	if (s->src->gaps) {
		fprintf(f, "  gaps:            %" PRIu64 " in the stream, %" PRIu64 " samples missing (%.3f s)\n",
			s->src->gaps, s->src->lost, (double)s->src->lost / s->src->rate_hz);
	}
	fprintf(f, "  bursts detected: %" PRIu64 " (onsets), %" PRIu64 " ended (offsets)\n",
		onsets, offsets);
	if (s->cfg->stim.mode == CONFIG_MODE_OPEN_LOOP) {
		fprintf(f, "    open loop: the protocol ran from each arm; bursts started nothing\n");
	} else {
		fprintf(f, "    started stimulation %" PRIu64 ", ignored in refractory time %" PRIu64
			   ", ignored with a request pending %" PRIu64 "\n",
			as.requested, as.refractory, as.busy);
	}
	/*
	 * Trains that began (a first pulse fired), whole or cut short: not
	 * requests, of which open loop makes one more after each refusal.
	 */
	fprintf(f, "  pulses fired:    %" PRIu64 " in %" PRIu64 " trains: %" PRIu64 " whole, %" PRIu64
		   " cut short\n", ss.pulses, ss.trains_started, ss.trains_whole,
		ss.trains_started - ss.trains_whole);
	fprintf(f, "  pulses refused:  %" PRIu64 " not delivered (%" PRIu64 " refusals)\n",
		dropped, ss.refusals);
	for (r = 1; r < SAFETY_RULE_COUNT; r++) {
		if (ss.refused_by_rule[r] || ss.dropped_by_rule[r]) {
			fprintf(f, "    %-20s %" PRIu64 " refusals, %" PRIu64 " pulses not delivered\n",
				safety_rule_name(r), ss.refused_by_rule[r], ss.dropped_by_rule[r]);
		}
	}
	if (ss.summaries) {
		/* so that the rpms.safety events add up to the figures above */
		fprintf(f, "    on rpms.safety:  %" PRIu64 " one by one, %" PRIu64
			   " repeats in %" PRIu64 " summaries\n",
			ss.refusals_single, ss.refusals_summarised, ss.summaries);
	}
	if (ss.faults) {
		fprintf(f, "  coil faults:     %" PRIu64 " (coil disarmed)\n", ss.faults);
	}
	if (ss.estops) {
		fprintf(f, "  emergency stops: %" PRIu64 "\n", ss.estops);
	}
	if (s->ledger.dose) {
		fprintf(f, "  pulses today:    %" PRIu64 " (ledger %s/dose%s)\n",
			stim_day_pulses(s->stim), s->ledger.dir,
			s->ledger.failed ? ", a write failed" : "");
	} else {
		fprintf(f, "  pulses today:    unknown: the pulse ledger was unusable, arming refused\n");
	}
	if (ss.dropped_at_stop) {
		fprintf(f, "  not delivered:   %" PRIu64 " pulses pending at shutdown\n",
			ss.dropped_at_stop);
	}
	fprintf(f, "  events:          %" PRIu64 " published, %" PRIu64 " lost in rings\n",
		ps.sent, ps.ring_drops);
	if (s->rec) {
		struct record_stats rs;

		record_get_stats(s->rec, &rs);
		fprintf(f, "  session file:    %s: %" PRIu64 " data records, %" PRIu64
			   " annotations, %" PRIu64 " samples lost, %" PRIu64 " clipped, %" PRIu64
			   " events missing%s%s\n",
			rs.path[0] ? rs.path : "(none)", rs.records, rs.annotations, rs.lost,
			rs.clipped, rs.events_lost, rs.error ? ", write error: " : "",
			rs.error ? strerror(-rs.error) : "");
	}
	if (!sclock_is_virtual(s->clock)) {
		session_summary_timing(s, f);
	}
	fflush(f);
}

int session_run(const struct rpmsd_config *cfg, const struct session_options *opt,
		FILE *summary)
{
	struct session s = { .cfg = cfg, .sfd = -1, .dma_fd = -1,
			     .log_level = cfg->daemon.log_level };
	int stim_prio = cfg->daemon.stim_priority;
	int acq_prio = cfg->daemon.acquire_priority;
	bool got_rt;
	int ret, signo = 0, status = 0;

	/*
	 * Signals first: libzmq starts its I/O threads when the publisher's
	 * socket is made, and a thread that does not block SIGINT/SIGTERM
	 * would take a process-directed signal with its default action.
	 */
	ret = session_signals(&s);
	if (ret < 0) {
		log_err("signals: %s", strerror(-ret));
		goto err_free;
	}
	ret = session_build(&s, opt);
	if (ret < 0) {
		goto err_free;
	}
	if (opt->wait_subscriber_s > 0) {
		signo = session_wait_subscriber(&s, opt->wait_subscriber_s);
		if (signo) {
			log_info("%s before the session started: nothing ran", strsignal(signo));
			ret = 0;
			goto err_free;
		}
	}
	publish_set_refresh(s.pub, session_refresh_heartbeat, &s);
	ret = publish_start(s.pub);
	if (ret < 0) {
		log_err("publisher: %s", strerror(-ret));
		goto err_free;
	}
	ret = session_check_cpus(cfg);
	if (ret < 0) {
		goto err_stop;
	}
	ret = session_rt_setup(&s);
	if (ret < 0) {
		goto err_stop;
	}
	ret = session_start_recording(&s);
	if (ret < 0) {
		goto err_stop;
	}
	sclock_start(s.clock);
	session_state(&s, EVENT_STATE_STARTED, "session started");
	s.running = true;
	session_source_opened(&s);
	if (sclock_is_virtual(s.clock)) {
		/*
		 * Fast replay runs flat out in virtual time: real-time
		 * priorities would only starve the publisher.
		 */
		stim_prio = 0;
		acq_prio = 0;
		log_info("fast replay: real-time scheduling not used");
	}
	session_super_init(&s);
	ret = stim_start(s.stim, stim_prio, cfg->daemon.stim_cpu, &got_rt);
	if (ret < 0) {
		log_err("stim thread: %s", strerror(-ret));
		goto err_stop;
	}
	ret = session_check_rt_thread(cfg, "stim", stim_prio, got_rt);
	if (ret < 0) {
		goto err_stop;
	}
	if (cfg->daemon.arm_on_start) {
		session_arm_on_start(&s);
	}
	ret = acquire_start(s.acq, acq_prio, cfg->daemon.acquire_cpu, &got_rt);
	if (ret < 0) {
		log_err("acquire thread: %s", strerror(-ret));
		goto err_stop;
	}
	ret = session_check_rt_thread(cfg, "acquire", acq_prio, got_rt);
	if (ret < 0) {
		goto err_stop;
	}
	/* Last: a command acts on running threads only. */
	ret = control_start(s.ctl);
	if (ret < 0) {
		log_err("control thread: %s", strerror(-ret));
		goto err_stop;
	}
	log_info("running%s", s.arm_start_pending ? " (arming: arm_on_start)" : " (disarmed)");

	signo = session_wait(&s);
	if (signo) {
		/* Disarm first: acquisition may take a block to notice the stop. */
		stim_set_armed(s.stim, false, "signal");
		log_info("%s: stopping", strsignal(signo));
	}
	session_state(&s, EVENT_STATE_STOPPING, signo ? "signal" : "end of recording");
	notify_stopping(signo ? strsignal(signo) : "end of the recording");
	ret = 0;
err_stop:
	/*
	 * No command after this, and none left armed: an arm the control
	 * thread was handling as the stop came must not outlive it.
	 */
	control_stop(s.ctl);
	if (s.stim) {
		stim_set_armed(s.stim, false, "stopping");
	}
	acquire_stop(s.acq);
	stim_stop(s.stim);	/* disarms the coil */
	if (s.stim) {
		/* a fast run may end before the main loop saw the outcome */
		session_arm_outcome(&s, true);
	}
	session_ledger_close(&s);
	sclock_stop(s.clock);
	publish_stop(s.pub);
	record_stop(s.rec);	/* after the publisher: it copies the last events over */
	if (ret == 0 && summary) {
		session_summary(&s, summary, signo);
	}
	if (ret == 0) {
		struct acquire_stats as;
		struct stim_stats ss;

		acquire_get_stats(s.acq, &as);
		stim_get_stats(s.stim, &ss);
		status = (as.source_error || as.source_faults || ss.faults || !s.ledger.dose ||
			  s.ledger.failed) ? 3 : 0;
		if (s.rec) {
			struct record_stats rs;

			record_get_stats(s.rec, &rs);
			status = rs.error ? 3 : status;	/* the session's record is incomplete */
		}
	}
err_free:
	session_free(&s);
	return ret < 0 ? 1 : status;
}

int session_check(const struct rpmsd_config *cfg)
{
	char err[SESSION_ERR_MAX];
	struct plugin *plugin = NULL;
	struct source *src = NULL;
	struct dsp_chain *dsp = NULL;
	struct detect *det = NULL;
	int ret;

	err[0] = '\0';
	ret = plugin_load(cfg, cfg->stim.plugin, &plugin, err, sizeof(err));
	if (ret == 0) {
		ret = config_validate_plugin_keys(cfg, plugin_descriptor(plugin)->keys,
						  plugin_descriptor(plugin)->n_keys, err,
						  sizeof(err));
	}
	plugin_unload(plugin);
	if (ret < 0) {
		fprintf(stderr, "rpmsd: %s\n", err);
		return ret;
	}
	ret = session_open_source(cfg, false, &src, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "rpmsd: %s\n", err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = session_check_timing(cfg, src, err, sizeof(err));
	if (ret == 0) {
		ret = control_check_keys(cfg, err, sizeof(err));
	}
	if (ret == 0) {
		ret = control_check_endpoints(cfg, false, err, sizeof(err));
	}
	if (ret < 0) {
		fprintf(stderr, "rpmsd: %s\n", err);
		source_destroy(src);
		return ret;
	}
	/* Filters and detector depend on the recording's rate: design them too. */
	ret = dsp_chain_create(cfg, src->rate_hz, &dsp, err, sizeof(err));
	if (ret == 0) {
		ret = detect_create(cfg, src->rate_hz, &det, err, sizeof(err));
	}
	if (ret < 0) {
		fprintf(stderr, "rpmsd: %s: at %g Hz (the rate of %s): %s\n", cfg->path,
			src->rate_hz, src->description, err);
	}
	detect_destroy(det);
	dsp_chain_destroy(dsp);
	source_destroy(src);
	/* last: the pulse ledger's directory, as the run will need it */
	if (ret == 0) {
		ret = session_check_state_dir(cfg, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "rpmsd: %s\n", err);
		}
	}
	return ret;
}
