/* SPDX-License-Identifier: MIT */
/*
 * Session: wiring and lifecycle. Start-up order matters for safety and
 * real time: everything is allocated first, signals are blocked before
 * any thread exists (so only signalfd sees them), memory is locked, the
 * stim thread starts disarmed, and acquisition starts last. Shutdown runs
 * the other way: acquisition stops, the stim thread disarms the coil and
 * exits, then the publisher drains every ring so no event is lost.
 *
 * Also here: signals, SIGHUP, reopening a failed source, and
 * --check-config, which runs the start's own checks (session_validate).
 * The pulse ledger, the supervisor and the summary have files of their
 * own (session_private.h).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "acquire.h"
#include "bank.h"
#include "blind.h"
#include "control.h"
#include "dose.h"
#include "emg.h"
#include "event.h"
#include "log.h"
#include "notify.h"
#include "plugin.h"
#include "publish.h"
#include "record.h"
#include "ring.h"
#include "rt.h"
#include "sclock.h"
#include "session.h"
#include "session_private.h"
#include "source.h"
#include "stim.h"
#include "zone.h"
#include "course.h"

#define SESSION_ERR_MAX 2048
#define SESSION_MAIN_RING 64
#define SESSION_EMG_STREAM_S 10.0	/* EMG the ring to the publisher (rpms.emg) holds */

void session_state_code(struct session *s, enum event_state state, int code,
			const char *reason)
{
	struct event ev;

	event_state_init(&ev, state, code, reason, sclock_last_sample(s->clock));
	event_stamp(&ev, sclock_now(s->clock));
	ring_push(s->main_events, &ev);
}

void session_state(struct session *s, enum event_state state, const char *reason)
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
	char dev[COURSE_ERR_MAX];

	control_destroy(s->ctl);
	/*
	 * After the control thread, its only user, has stopped, and the stim
	 * thread (the count is final): a course session still running ends.
	 */
	if (s->stim) {
		course_end(s->course, stim_session_pulses(s->stim),
			   "the daemon stopped during the session", NULL, dev, sizeof(dev));
	}
	course_close(s->course);
	acquire_destroy(s->acq);
	stim_destroy(s->stim);
	blind_destroy(s->blind);
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
	ret = emg_tap_create(s->src->channels, s->src->has_angle, frames,
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
		ret = record_start_session(s->rec, cfg->record.patient_id, cfg->record.session_id, NULL,
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
		.rec = s->rec, .blind = s->blind,
	};
	char err[SESSION_ERR_MAX];
	int ret;

	/*
	 * The course database before the control thread, its only user. A
	 * PostgreSQL server down now does not stop the start (course_open).
	 */
	ret = course_open(s->cfg, stim_day_pulses(s->stim), &s->course, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: %s", s->cfg->path, err);
		return ret;
	}
	deps.course = s->course;

	ret = control_create(s->cfg, &deps, &s->ctl, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: %s", s->cfg->path, err[0] ? err : strerror(-ret));
		return ret;
	}
	publish_add_ring(s->pub, control_events(s->ctl), "control");
	return 0;
}

/*
 * Every check of a start that needs the source open and the plugin loaded
 * but nothing else opened, bound or started: the start and --check-config
 * both run exactly this, so that they cannot disagree. Opens the source
 * into @src and loads the plugin into @plugin (the caller frees both, on
 * failure too).
 * @param starting  a start, not --check-config: an ipc endpoint another
 *                  process listens on is refused (control_check_endpoints)
 * @return 0, or a negative errno with the whole message in @err
 */
static int session_validate(const struct rpmsd_config *cfg, bool paced, bool starting,
			    struct source **src, struct plugin **plugin, char *err,
			    size_t errlen)
{
	char why[SESSION_ERR_MAX];
	struct bank *bank = NULL;
	int ret;

	err[0] = '\0';
	why[0] = '\0';
	ret = session_open_source(cfg, paced, src, err, errlen);
	if (ret < 0) {
		if (!err[0]) {
			snprintf(err, errlen, "%s", strerror(-ret));
		}
		return ret;
	}
	ret = session_check_timing(cfg, *src, err, errlen);
	if (ret < 0) {
		return ret;
	}
	/*
	 * Before anything is opened (the plugin, the ledger): binding an ipc
	 * endpoint deletes what is at its path; control_bind looks again.
	 */
	ret = control_check_endpoints(cfg, starting, why, sizeof(why));
	if (ret == 0) {
		ret = control_check_keys(cfg, why, sizeof(why));
	}
	if (ret < 0) {
		snprintf(err, errlen, "%s: %s", cfg->path, why);
		return ret;
	}
	ret = plugin_load(cfg, cfg->stim.plugin, plugin, err, errlen);
	if (ret == 0) {
		ret = config_validate_plugin_keys(cfg, plugin_descriptor(*plugin)->keys,
						  plugin_descriptor(*plugin)->n_keys, err, errlen);
	}
	if (ret < 0) {
		return ret;
	}
	/* Filters and detector depend on the source's rate and its channels. */
	ret = bank_create(cfg, (*src)->rate_hz, (*src)->channels,
			  (const char (*)[BANK_NAME_MAX])(*src)->channel_names, &bank, why,
			  sizeof(why));
	bank_destroy(bank);
	if (ret < 0) {
		snprintf(err, errlen, "%s: at %g Hz (the rate of %s): %s", cfg->path,
			 (*src)->rate_hz, (*src)->description, why[0] ? why : strerror(-ret));
		return ret;
	}
	if (cfg->record.directory[0]) {
		ret = record_check(cfg, *src, why, sizeof(why));
		if (ret < 0) {
			snprintf(err, errlen, "%s: %s", cfg->path, why);
			return ret;
		}
	}
	return 0;
}

/*
 * The check that needs the plugin open: the protocol against the
 * connected device's envelope (ABI 1.2). The start and --check-config
 * both run it right after plugin_open, so that they cannot disagree.
 * @return 0, or -EINVAL with the whole message in @err
 */
static int session_check_device(const struct rpmsd_config *cfg, struct plugin *plugin,
				char *err, size_t errlen)
{
	char why[CONFIG_ERR_MAX];
	int ret;

	ret = safety_device_check(plugin_device(plugin), cfg, NULL, why, sizeof(why));
	if (ret < 0) {
		snprintf(err, errlen, "%.*s: %s", (int)(errlen > sizeof(why) + 2 ? errlen - sizeof(why) - 2 : 0),
			 cfg->path, why);
	}
	return ret;
}

/* Blinding (docs/sham.md): the allocation, the key, the audit and the sham coil. */
static int session_build_blind(struct session *s)
{
	char err[SESSION_ERR_MAX];
	int ret;

	ret = blind_create(s->cfg, s->clock, &s->blind, err, sizeof(err));
	if (ret < 0) {
		log_err("%s: %s", s->cfg->path, err[0] ? err : strerror(-ret));
		return ret;
	}
	if (!s->blind) {
		return 0;
	}
	ret = stim_set_sham_coil(s->stim, blind_sham_coil(s->blind));
	if (ret == -EXDEV) {
		log_err("%s: sham_coil.%s: its device envelope differs from the active coil's "
			"(required: the same, so that the safety gate judges both alike)",
			s->cfg->path, config_sham_plugin(s->cfg));
	} else if (ret < 0) {
		log_err("%s: the sham coil: %s", s->cfg->path, strerror(-ret));
	}
	return ret;
}

/*
 * blind.course_id: the start-up session (record.patient_id, session_id) is
 * blinded like a control session: its arm sealed, its coil chosen before the
 * stim thread starts, its code on the stream and in the recording.
 */
static int session_start_blind(struct session *s)
{
	const struct rpmsd_config *cfg = s->cfg;
	struct blind_start bs;
	char err[SESSION_ERR_MAX];
	struct event ev;
	int ret;

	if (!s->blind || !cfg->blind.course_id[0]) {
		return 0;
	}
	ret = blind_session_start(s->blind, cfg->record.patient_id, cfg->blind.course_id,
				  cfg->record.session_id, &bs, err, sizeof(err));
	if (ret == 0) {
		ret = stim_new_session_coil(s->stim, bs.coil, 0, 0.0);
	}
	if (ret < 0) {
		log_err("blind.course_id: %s", err[0] ? err : strerror(-ret));
		return ret;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = EVENT_SESSION;
	ev.u.session.started = 1;
	snprintf(ev.u.session.patient_id, sizeof(ev.u.session.patient_id), "%.*s", EVENT_ID_MAX,
		 cfg->record.patient_id);
	snprintf(ev.u.session.session_id, sizeof(ev.u.session.session_id), "%.*s", EVENT_ID_MAX,
		 cfg->record.session_id);
	memcpy(ev.u.session.arm_code, bs.arm_code, sizeof(ev.u.session.arm_code));
	event_stamp(&ev, sclock_now(s->clock));
	ring_push(s->main_events, &ev);
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
	ret = session_validate(cfg, paced, true, &s->src, &s->plugin, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err);
		return ret;
	}
	log_info("source: %s%s", s->src->description, paced ? "" : ", as fast as possible");
	ret = sclock_create(!paced, &s->clock);
	if (ret < 0) {
		return ret;
	}
	ret = plugin_open(s->plugin, cfg, s->clock, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err);
		return ret;
	}
	log_info("coil plugin: %s (%s)", cfg->stim.plugin, plugin_path(s->plugin));
	ret = session_check_device(cfg, s->plugin, err, sizeof(err));
	if (ret < 0) {
		log_err("%s", err);
		return ret;
	}
	/* off the stim thread: the plugin's link writes it and reads it back */
	ret = plugin_set_intensity(s->plugin, cfg->stim.intensity_pct);
	if (ret < 0 && ret != -EOPNOTSUPP) {
		log_warn("coil plugin: asking the device for %g %%: %s", cfg->stim.intensity_pct,
			 strerror(-ret));
	}
	ret = stim_create(cfg, s->clock, s->plugin, &s->stim);
	if (ret < 0) {
		log_err("stim: %s", strerror(-ret));
		return ret;
	}
	ret = session_build_blind(s);
	if (ret < 0) {
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
			if (stim_test_stall(s->stim) < 0) {
				log_warn("test hook: the stim thread's command ring is full");
			}
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
		session_super_tick(s);
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
	ret = session_start_blind(&s);
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
		session_super_arm_on_start(&s);
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
		stim_disarm(s.stim, "signal");
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
		stim_disarm(s.stim, "stopping");
	}
	acquire_stop(s.acq);
	stim_stop(s.stim);	/* disarms the coil */
	if (s.stim) {
		/* a fast run may end before the main loop saw the outcome */
		session_super_arm_outcome(&s, true);
	}
	session_ledger_close(&s);
	sclock_stop(s.clock);
	publish_stop(s.pub);
	record_stop(s.rec);	/* after the publisher: it copies the last events over */
	if (ret == 0 && summary) {
		session_summary_print(&s, summary, signo);
	}
	if (ret == 0) {
		status = session_summary_status(&s);
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
	struct sclock *clock = NULL;
	int ret;

	ret = session_validate(cfg, false, false, &src, &plugin, err, sizeof(err));
	/*
	 * A plugin that may declare a device is opened, as the start opens
	 * it, to hold the protocol to the device's envelope; others are not
	 * (opening takes their hardware, maybe from a running daemon).
	 */
	if (ret == 0 && plugin_has_envelope(plugin)) {
		ret = sclock_create(true, &clock);
		if (ret == 0) {
			ret = plugin_open(plugin, cfg, clock, err, sizeof(err));
		}
		if (ret == 0) {
			ret = session_check_device(cfg, plugin, err, sizeof(err));
		} else if (!err[0]) {
			snprintf(err, sizeof(err), "%s", strerror(-ret));
		}
	}
	plugin_unload(plugin);
	sclock_destroy(clock);
	source_destroy(src);
	/*
	 * Last: the pulse ledger's directory, as the run will need it. A run
	 * starts without it, arming refused (session_ledger_open), so that the
	 * problem can be seen on the event stream; a check refuses it.
	 */
	if (ret == 0) {
		ret = session_ledger_check_dir(cfg, err, sizeof(err));
	}
	if (ret == 0) {
		ret = course_check(cfg, err, sizeof(err));
	}
	if (ret == 0) {
		/* as session_build_blind's blind_create words it: "FILE: what" */
		char why[SESSION_ERR_MAX - CONFIG_PATH_MAX - 4];

		ret = blind_check(cfg, why, sizeof(why));
		if (ret < 0) {
			snprintf(err, sizeof(err), "%s: %s", cfg->path, why[0] ? why : strerror(-ret));
		}
	}
	if (ret < 0) {
		fprintf(stderr, "rpmsd: %s\n", err);
	}
	return ret;
}
