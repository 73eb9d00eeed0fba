/* SPDX-License-Identifier: MIT */
/*
 * The recording thread (see record.h and docs/recording.md): set-up, its
 * rings, the requests to open and close a session's file, rpms.record.
 * The file itself is record_edf.c's, the repair of what a crash left
 * record_repair.c's (record_private.h).
 *
 * Only this thread calls edflib (which is not thread-safe); the main or
 * control thread asks it to open and close files through a mutex and a
 * condition variable, and waits for the answer. The thread polls its two
 * rings every RECORD_IDLE_NS when they are empty.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "emg.h"
#include "event.h"
#include "log.h"
#include "record.h"
#include "record_private.h"
#include "ring.h"
#include "sclock.h"
#include "source.h"

#define RECORD_IDLE_NS 5000000L		/* ring poll period when idle */
#define RECORD_BATCH 256		/* records per ring per pass */
#define RECORD_OUT_RING 64		/* rpms.record events */
#define RECORD_LOST_PERIOD_NS INT64_C(1000000000)	/* rpms.record "lost" at most 1/s */
#define RECORD_EDF_DIG 32767
#define RECORD_BDF_DIG 8388607
#define RECORD_DEFAULT_RANGE_UV 10000.0
#define RECORD_MAX_RANGE_UV 10000000.0	/* 8 characters in the header */
#define RECORD_ANNOT_SIGNALS_MAX 64	/* edflib's limit */
#define RECORD_RECORD_MAX (10 * 1024 * 1024)	/* edflib's data record limit */
#define RECORD_EMG_WAIT_NS INT64_C(250000000)	/* at a close, for EMG already dated */
#define RECORD_EMG_TICK_NS 1000000L	/* how often that wait looks again */

/* ---- events out ------------------------------------------------------- */

void record_emit(struct record *r, enum event_record_kind kind, int code, const char *path)
{
	const char *base = strrchr(path, '/');
	struct event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = EVENT_RECORD;
	/*
	 * The daemon's sample, like every other event: the file's own end
	 * (r->f.next) runs ahead of it by the zero padding of the last record.
	 */
	ev.sample = r->clock ? sclock_last_sample(r->clock) : 0;
	ev.u.record.kind = kind;
	ev.u.record.code = code;
	ev.u.record.records = r->f.st.records;
	ev.u.record.lost = r->f.st.lost;
	ev.u.record.annotations = r->f.st.annotations;
	ev.u.record.clipped = r->f.st.clipped;
	snprintf(ev.u.record.file, sizeof(ev.u.record.file), "%s", base ? base + 1 : path);
	event_stamp(&ev, r->clock ? sclock_now(r->clock) : 0);
	ring_push(r->out, &ev);
}

void record_publish_stats(struct record *r)
{
	pthread_mutex_lock(&r->lock);
	r->shown = r->f.st;
	pthread_mutex_unlock(&r->lock);
}

/* ---- the thread ------------------------------------------------------- */

static void record_report_lost(struct record *r, bool force)
{
	int64_t now = sclock_mono_ns();

	if (r->f.st.lost == r->lost_reported || r->f.handle < 0) {
		return;
	}
	if (!force && r->lost_reported_ns && now - r->lost_reported_ns < RECORD_LOST_PERIOD_NS) {
		return;
	}
	log_warn("recording: %" PRIu64 " samples lost so far (the disk does not keep up)",
		 r->f.st.lost);
	record_emit(r, EVENT_RECORD_LOST, 0, r->f.path);
	r->lost_reported = r->f.st.lost;
	r->lost_reported_ns = now;
}

/* Keep the block just written (or not: no file) for the next file's start. */
static void record_keep(struct record *r)
{
	struct emg_block *b = r->last;

	r->last = r->blk;
	r->blk = b;
	r->have_last = true;
}

/*
 * Events the publisher could not copy to us (our input ring was full: the
 * disk or this thread fell behind) are gone: the file says so where it
 * happened, and its summary counts them. They were still published.
 */
static void record_count_missed(struct record *r)
{
	char text[RECORD_ANNOT_TEXT * 2];	/* the annotation keeps 40 of them */
	uint64_t d = ring_dropped(r->in), n = d - r->in_dropped;

	if (!n) {
		return;
	}
	r->in_dropped = d;
	r->f.st.events_lost += n;
	if (r->f.handle >= 0 && r->f.started) {
		snprintf(text, sizeof(text), "recording missed %" PRIu64 " events", n);
		record_edf_annotate(r, (double)r->f.last_event_sample, 0, text);
	}
}

/*
 * Take what the rings hold. Events wait until the file has its first
 * sample (their onsets are relative to it), unless @all.
 * @return records taken
 */
static size_t record_pump(struct record *r, bool all)
{
	struct event ev;
	size_t n = 0, m = 0;

	while (n < RECORD_BATCH && ring_pop(r->emg, r->blk)) {
		record_edf_block(r, r->blk);
		record_keep(r);
		n++;
	}
	while (m < RECORD_BATCH && (all || r->f.handle < 0 || r->f.started) &&
	       ring_pop(r->in, &ev)) {
		record_edf_event(r, &ev);
		m++;
	}
	record_count_missed(r);
	record_report_lost(r, false);
	if (n + m) {
		record_publish_stats(r);
	}
	return n + m;
}

static void record_drain(struct record *r)
{
	while (record_pump(r, true) > 0) {
		;
	}
}

/*
 * The acquire thread dates events (its own, and those of the threads that
 * read sclock_last_sample) before it hands the block of that sample over:
 * at a session's close the newest events can be a block ahead of the EMG.
 * Wait for that block, a while; what does not come was lost on the way.
 */
static void record_await_emg(struct record *r)
{
	struct timespec tick = { .tv_sec = 0, .tv_nsec = RECORD_EMG_TICK_NS };
	struct record_file *f = &r->f;
	uint64_t dropped = ring_dropped(r->emg);
	int64_t deadline = sclock_mono_ns() + RECORD_EMG_WAIT_NS;

	while (f->handle >= 0 && f->started && f->last_event_sample >= f->next &&
	       ring_dropped(r->emg) == dropped && sclock_mono_ns() < deadline) {
		if (ring_pop(r->emg, r->blk)) {
			record_edf_block(r, r->blk);
			record_keep(r);
		} else {
			nanosleep(&tick, NULL);
		}
	}
}

static void record_do_op(struct record *r, enum record_op op)
{
	int ret;

	if (op == RECORD_OP_OPEN) {
		ret = record_edf_open(r, r->req_patient, r->req_session, r->req_notes);
	} else {
		record_drain(r);
		record_await_emg(r);
		if (!r->req_complete && r->f.handle >= 0) {
			log_warn("recording: %s is closed without the session's last events: the "
				 "publisher did not pass them on in time", r->f.path);
			record_edf_annotate(r, r->f.next, 0, "events at the end may be missing");
		}
		record_report_lost(r, true);
		ret = record_edf_close(r);
	}
	pthread_mutex_lock(&r->lock);
	r->op_ret = ret;
	if (op == RECORD_OP_OPEN && ret == 0) {
		snprintf(r->req_path, sizeof(r->req_path), "%s", r->f.path);
	}
	r->op = RECORD_OP_NONE;
	r->op_done = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void *record_thread(void *arg)
{
	struct record *r = arg;
	enum record_op op;
	struct timespec ts;
	bool stop;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		op = r->op_done ? RECORD_OP_NONE : r->op;
		stop = r->stop;
		pthread_mutex_unlock(&r->lock);
		if (op != RECORD_OP_NONE) {
			record_do_op(r, op);
			continue;
		}
		if (record_pump(r, false) > 0) {
			continue;
		}
		if (stop) {
			break;
		}
		pthread_mutex_lock(&r->lock);
		if (!r->stop && (r->op == RECORD_OP_NONE || r->op_done)) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += RECORD_IDLE_NS;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_nsec -= 1000000000L;
				ts.tv_sec++;
			}
			pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		}
		pthread_mutex_unlock(&r->lock);
	}
	/* The producers have stopped: everything they sent goes in the file. */
	record_drain(r);
	record_report_lost(r, true);
	if (r->f.handle >= 0) {
		record_edf_close(r);
	}
	return NULL;
}

/* ---- set-up ----------------------------------------------------------- */

static int record_fail_cfg(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int record_fail_cfg(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

/* The timing and range of the files from the config and the source. */
static int record_params(struct record *r, const struct rpmsd_config *cfg,
			 const struct source *src, char *err, size_t errlen)
{
	double spr = src->rate_hz * cfg->record.record_s;
	double dur = cfg->record.record_s * 1e5;
	double range = cfg->record.range_uv;
	double annot;

	if (fabs(spr - llround(spr)) > 1e-6 * spr || fabs(dur - llround(dur)) > 1e-6) {
		return record_fail_cfg(err, errlen, -EINVAL,
				       "record.record_s: %g s at %g Hz is %.9g samples, not a whole number (allowed: a duration of whole samples, in steps of 10 us)",
				       cfg->record.record_s, src->rate_hz, spr);
	}
	r->spr = (size_t)llround(spr);
	r->duration_10us = (int)llround(dur);
	r->bdf = cfg->record.format == CONFIG_RECORD_BDF ||
		 (cfg->record.format == CONFIG_RECORD_AUTO && src->adc_bits > 16);
	r->dig = r->bdf ? RECORD_BDF_DIG : RECORD_EDF_DIG;
	/* Enough annotation space for pulses at the highest rate the gate allows. */
	annot = ceil(cfg->record.record_s * (cfg->safety.max_frequency_hz + 5.0));
	r->annot_signals = annot < 2 ? 2 : annot > RECORD_ANNOT_SIGNALS_MAX ?
			   RECORD_ANNOT_SIGNALS_MAX : (int)annot;
	if (r->spr * r->channels * (r->bdf ? 3 : 2) + (size_t)r->annot_signals * 120 >
	    RECORD_RECORD_MAX) {
		return record_fail_cfg(err, errlen, -EINVAL,
				       "record.record_s: a data record of %g s at %g Hz x %u channels is larger than edflib's 10 MB (allowed: a shorter record)",
				       cfg->record.record_s, src->rate_hz, r->channels);
	}
	if (!(range > 0)) {
		range = src->range_uv > 0 ? src->range_uv : RECORD_DEFAULT_RANGE_UV;
	}
	/* An integer prints exactly in the header's 8 characters. */
	r->phys = ceil(range);
	if (r->phys < 1) {
		r->phys = 1;
	}
	if (r->phys > RECORD_MAX_RANGE_UV) {
		return record_fail_cfg(err, errlen, -EINVAL,
				       "record.range_uv: %.15g uV does not fit the EDF header (allowed: at most %g)",
				       range, RECORD_MAX_RANGE_UV);
	}
	return 0;
}

/*
 * What the config asks of the directory and the files, before anything is
 * touched: shared by record_create and record_check. Needs r->channels.
 */
static int record_check_cfg(struct record *r, const struct rpmsd_config *cfg,
			    const struct source *src, char *err, size_t errlen)
{
	struct stat sb;

	if (config_resolve(cfg, cfg->record.directory, r->dir, sizeof(r->dir)) < 0) {
		return record_fail_cfg(err, errlen, -ENAMETOOLONG, "record.directory: path too long");
	}
	if (stat(r->dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		return record_fail_cfg(err, errlen, -ENOENT,
				       "record.directory: '%s' is not an existing directory (rpmsd does not create it)",
				       r->dir);
	}
	return record_params(r, cfg, src, err, errlen);
}

int record_check(const struct rpmsd_config *cfg, const struct source *src, char *err,
		 size_t errlen)
{
	struct record *r;
	int ret;

	err[0] = '\0';
	/* only the plain fields: nothing in it is initialised for record_destroy */
	r = calloc(1, sizeof(*r));
	if (!r) {
		return record_fail_cfg(err, errlen, -ENOMEM, "record: out of memory");
	}
	r->channels = source_frame_floats(src);
	ret = record_check_cfg(r, cfg, src, err, errlen);
	free(r);
	return ret;
}

int record_create(const struct rpmsd_config *cfg, const struct source *src,
		  struct sclock *clock, struct ring *emg, struct record **out,
		  char *err, size_t errlen)
{
	struct record *r;
	pthread_condattr_t ca;
	int ret;

	err[0] = '\0';
	r = calloc(1, sizeof(*r));
	if (!r) {
		return -ENOMEM;
	}
	r->f.handle = -1;
	r->clock = clock;
	r->emg = emg;
	r->channels = source_frame_floats(src);
	r->angle = src->has_angle;
	r->rate_hz = src->rate_hz;
	memcpy(r->names, src->channel_names, sizeof(src->channel_names));
	if (r->angle) {
		memcpy(r->names[src->channels], src->angle_name, sizeof(r->names[0]));
	}
	snprintf(r->pattern, sizeof(r->pattern), "%s", cfg->record.name);
	pthread_mutex_init(&r->lock, NULL);
	/*
	 * The idle wait's deadline is on CLOCK_MONOTONIC: a condition
	 * variable on the default CLOCK_REALTIME took it as long past and
	 * returned at once, so this thread spun a whole core when idle.
	 */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = record_check_cfg(r, cfg, src, err, errlen);
	if (ret < 0) {
		goto err_free;
	}
	ret = ring_create((size_t)cfg->publish.ring_records, sizeof(struct event), &r->in);
	if (ret == 0) {
		ret = ring_create(RECORD_OUT_RING, sizeof(struct event), &r->out);
	}
	if (ret < 0) {
		goto err_free;
	}
	r->blk = malloc(emg_block_size(EMG_KIND_RECORD, (size_t)cfg->source.block_frames,
				       r->channels));
	r->last = malloc(emg_block_size(EMG_KIND_RECORD, (size_t)cfg->source.block_frames,
					r->channels));
	r->rec = calloc(r->spr * r->channels, sizeof(int));
	if (!r->blk || !r->last || !r->rec) {
		ret = -ENOMEM;
		goto err_free;
	}
	record_repair_dir(r);
	*out = r;
	return 0;

err_free:
	record_destroy(r);
	return ret;
}

void record_destroy(struct record *r)
{
	if (!r) {
		return;
	}
	record_stop(r);
	ring_destroy(r->in);
	ring_destroy(r->out);
	free(r->blk);
	free(r->last);
	free(r->rec);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct ring *record_events(struct record *r)
{
	return r->out;
}

struct ring *record_input(struct record *r)
{
	return r->in;
}

int record_start(struct record *r)
{
	int ret;

	if (r->started) {
		return -EBUSY;
	}
	ret = pthread_create(&r->tid, NULL, record_thread, r);
	if (ret) {
		return -ret;
	}
	pthread_setname_np(r->tid, "rpmsd-record");
	r->started = true;
	return 0;
}

/* Hand @op to the thread and wait for its answer. */
static int record_request(struct record *r, enum record_op op)
{
	int ret;

	/* caller holds r->lock */
	while (r->op != RECORD_OP_NONE && !r->op_done) {
		pthread_cond_wait(&r->cond, &r->lock);
	}
	r->op = op;
	r->op_done = false;
	pthread_cond_broadcast(&r->cond);
	while (!r->op_done) {
		pthread_cond_wait(&r->cond, &r->lock);
	}
	ret = r->op_ret;
	r->op = RECORD_OP_NONE;
	return ret;
}

/* One word of printable ASCII (EDF+ subfields are separated by spaces), 1 to @max. */
static bool record_id_ok(const char *id, size_t max)
{
	const char *p;

	for (p = id; *p; p++) {
		if (*p <= ' ' || *p > '~') {
			return false;
		}
	}
	return p != id && (size_t)(p - id) <= max;
}

int record_start_session(struct record *r, const char *patient_id,
			 const char *session_id, const char *notes, char *path, size_t pathlen)
{
	int ret;

	if (!record_id_ok(patient_id, CONFIG_NAME_MAX - 1) ||
	    !record_id_ok(session_id, CONFIG_EDF_ADMINCODE_MAX)) {
		return -EINVAL;
	}
	pthread_mutex_lock(&r->lock);
	if (!r->started || r->stop) {
		pthread_mutex_unlock(&r->lock);
		return -ESRCH;
	}
	snprintf(r->req_patient, sizeof(r->req_patient), "%s", patient_id);
	snprintf(r->req_session, sizeof(r->req_session), "%s", session_id);
	snprintf(r->req_notes, sizeof(r->req_notes), "%s", notes ? notes : "");
	ret = record_request(r, RECORD_OP_OPEN);
	if (ret == 0 && path && pathlen) {
		snprintf(path, pathlen, "%s", r->req_path);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int record_stop_session(struct record *r, bool complete)
{
	int ret;

	pthread_mutex_lock(&r->lock);
	if (!r->started || r->stop) {
		pthread_mutex_unlock(&r->lock);
		return -ESRCH;
	}
	r->req_complete = complete;
	ret = record_request(r, RECORD_OP_CLOSE);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void record_stop(struct record *r)
{
	if (!r || !r->started) {
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->tid, NULL);
	r->started = false;
}

uint64_t record_first_sample(struct record *r)
{
	uint64_t v = r ? atomic_load(&r->first_shown) : 0;

	return v ? v - 1 : UINT64_MAX;
}

void record_get_stats(struct record *r, struct record_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->shown;
	pthread_mutex_unlock(&r->lock);
}
