/* SPDX-License-Identifier: MIT */
/*
 * The recording's EDF+/BDF+ file (record_private.h): its header, the EMG
 * quantised into data records, the annotations, open and close. Only the
 * recording thread calls edflib (which is not thread-safe).
 *
 * Samples are quantised here, not by edflib: digital = lround(µV x D / P)
 * with D = 32767 (EDF) or 8388607 (BDF) and P the integer physical range,
 * written with edfwrite_digital_samples. The header then says exactly that
 * step (P / D), so the samples in the file can be checked against the
 * input exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <edflib.h>

#include "emg.h"
#include "event.h"
#include "log.h"
#include "record.h"
#include "record_private.h"
#include "rpmsd-build.h"
#include "safety.h"

#define RECORD_EDF_NAME_TRIES 100		/* NAME, NAME-1, ... NAME-99 */
#define RECORD_EDF_RECID_AT 88		/* offset of the local recording identification */
#define RECORD_EDF_EQUIPMENT "rpmsd-" RPMSD_VERSION
/*
 * The joint angle's physical range, degrees: a full turn either way, so any
 * goniometer's zero fits; 16-bit EDF gives it a step of 0.011 degrees.
 */
#define RECORD_EDF_ANGLE_DEG 360.0

/* "Startdate " + DD-MMM-YYYY + 3 separators and X: what the admincode leaves */
_Static_assert(10 + 11 + 3 + 1 + CONFIG_EDF_ADMINCODE_MAX + sizeof(RECORD_EDF_EQUIPMENT) - 1 <=
	       RECORD_EDF_ID, "the recording identification must hold the longest session id");

/* ---- writing ---------------------------------------------------------- */

/*
 * A write failed (ENOSPC, EIO): close the file as far as possible, cut it
 * back to the records that reached the disk before the failure, publish.
 */
static void record_edf_fail(struct record *r, int err)
{
	struct record_file *f = &r->f;
	struct stat sb;
	uint64_t valid = UINT64_MAX, k = 0;

	/* What reached the file before edfclose_file appends anything more. */
	if (stat(f->path, &sb) == 0) {
		valid = (uint64_t)sb.st_size;
	}
	edfclose_file(f->handle);
	f->handle = -1;
	if (record_repair(f->path, valid, &k) >= 0) {
		f->st.records = k;
	}
	f->st.error = err;
	log_err("recording: writing %s failed: %s; the file is closed with %" PRIu64
		" complete data records; the session goes on without a recording",
		f->path, strerror(-err), k);
	record_emit(r, EVENT_RECORD_ERROR, err, f->path);
	record_publish_stats(r);
}

/*
 * edflib gives the admincode, technician and equipment of the local
 * recording identification 42 characters together and cuts the rest: a
 * 36-character session id (a UUID) left "rpms" of the equipment, a longer
 * one ran the subfields together. Once edflib has written the header with
 * the first data record (and flushed it), put the whole field there.
 */
static void record_edf_write_recording_id(struct record *r)
{
	struct record_file *f = &r->f;
	ssize_t n = -1;
	int fd;

	fd = open(f->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = pwrite(fd, f->recording_id, RECORD_EDF_ID, RECORD_EDF_RECID_AT);
		if (close(fd) < 0) {
			n = -1;
		}
	}
	if (n != RECORD_EDF_ID) {
		log_warn("recording: cannot complete the recording identification of %s: %s",
			 f->path, strerror(errno));
	}
}

/* Write the full record buffer as one data record. */
static void record_edf_write_record(struct record *r)
{
	unsigned ch;

	for (ch = 0; ch < r->channels; ch++) {
		errno = 0;
		if (edfwrite_digital_samples(r->f.handle, r->rec + ch * r->spr) < 0) {
			record_edf_fail(r, errno ? -errno : -EIO);
			return;
		}
	}
	r->f.st.records++;
	r->f.fill = 0;
	if (r->f.st.records == 1) {
		record_edf_write_recording_id(r);
	}
}

/* The physical range of signal @ch: the EMG's, or the angle's. */
static double record_edf_phys(const struct record *r, unsigned ch)
{
	return r->angle && ch == r->channels - 1 ? RECORD_EDF_ANGLE_DEG : r->phys;
}

/* µV (or degrees) to the file's digital value: lround(x D / P), clipped at +-D (counted). */
static int record_edf_quantise(struct record *r, float x, double phys)
{
	double v = (double)x * r->dig / phys;

	if (isnan(v)) {
		r->f.st.clipped++;
		return 0;
	}
	if (v >= r->dig + 0.5 || v <= -r->dig - 0.5) {
		r->f.st.clipped++;
		return v > 0 ? r->dig : -r->dig;
	}
	return (int)lround(v);
}

/* One frame (NULL: zeros) into the record buffer. */
static void record_edf_put(struct record *r, const float *frame)
{
	struct record_file *f = &r->f;
	unsigned ch;

	for (ch = 0; ch < r->channels; ch++) {
		r->rec[ch * r->spr + f->fill] = frame ? record_edf_quantise(r, frame[ch],
									    record_edf_phys(r, ch)) : 0;
	}
	f->fill++;
	f->next++;
	if (frame) {
		f->st.samples++;
	}
	if (f->fill == r->spr) {
		record_edf_write_record(r);
	}
}

void record_edf_annotate(struct record *r, double sample, uint64_t dur, const char *text)
{
	struct record_file *f = &r->f;
	long long onset, len = -1;

	/* @sample may be fractional: a pulse's firing time on the sample clock */
	if (f->handle < 0 || !f->started || !(sample >= (double)f->first)) {
		return;
	}
	/* edflib's unit is 100 µs: onsets are rounded to it. */
	onset = llround((sample - (double)f->first) * 10000.0 / r->rate_hz);
	if (dur) {
		len = llround((double)dur * 10000.0 / r->rate_hz);
	}
	if (edfwrite_annotation_utf8(f->handle, onset, len, text) == 0) {
		f->st.annotations++;
	}
}

/*
 * The session's notes (a course session's course, target, protocol and
 * intensity rule) as annotations at the file's first sample, once it has one.
 */
static void record_edf_notes(struct record *r)
{
	char *line = r->f.notes, *nl;

	while (*line) {
		nl = strchr(line, '\n');
		if (nl) {
			*nl = '\0';
		}
		if (strlen(line) >= RECORD_ANNOT_TEXT) {
			line[RECORD_ANNOT_TEXT - 1] = '\0';
		}
		record_edf_annotate(r, (double)r->f.first, 0, line);
		if (!nl) {
			break;
		}
		line = nl + 1;
	}
	r->f.notes[0] = '\0';
}

/* Samples that never reached us: zeros, so that the file's time stays the recording's. */
static void record_edf_fill(struct record *r, uint64_t upto, uint64_t gap)
{
	struct record_file *f = &r->f;
	uint64_t missing = upto - f->next, lost = missing > gap ? missing - gap : 0;
	char text[RECORD_ANNOT_TEXT * 2];

	if (lost) {
		/* A source gap is annotated by its own event; this is ours. */
		snprintf(text, sizeof(text), "recording lost %" PRIu64 " samples", lost);
		record_edf_annotate(r, f->next, lost, text);
		f->st.lost += lost;
	}
	while (f->next < upto && f->handle >= 0) {
		record_edf_put(r, NULL);
	}
}

void record_edf_block(struct record *r, const struct emg_block *b)
{
	struct record_file *f = &r->f;
	uint64_t i = 0;

	if (f->handle < 0) {
		return;
	}
	if (!f->started) {
		f->started = true;
		f->first = b->first_sample;
		f->next = b->first_sample;
		atomic_store(&r->first_shown, f->first + 1);
		record_edf_notes(r);
	}
	if (b->first_sample > f->next) {
		record_edf_fill(r, b->first_sample, b->lost);
	} else if (b->first_sample < f->next) {
		i = f->next - b->first_sample;	/* cannot happen: indices only grow */
	}
	for (; i < b->frames && f->handle >= 0; i++) {
		record_edf_put(r, b->data + i * r->channels);
	}
}

/* The daemon's states as annotations: the same names as rpms.state. */
static const char *record_edf_state_name(uint32_t state)
{
	const char *name = event_state_name(state);

	return name ? name : "state";
}

static const char *record_edf_channel(struct record *r, uint32_t ch)
{
	return ch < r->channels ? r->names[ch] : "?";
}

/* One published event as an annotation (EDF+ keeps 40 characters of it). */
void record_edf_event(struct record *r, const struct event *ev)
{
	char t[RECORD_ANNOT_TEXT * 2];
	const char *rule;
	uint64_t at = ev->sample, dur = 0;
	double fired = NAN;
	int n;

	/*
	 * Our own rpms.record events come back from the publisher like every
	 * event, and are about files, not EMG: a "closed" of the previous file
	 * arriving after this one opened once made its padded end look like
	 * EMG lost here (B2).
	 */
	if (ev->type == EVENT_RECORD) {
		return;
	}
	if (ev->sample > r->f.last_event_sample) {
		r->f.last_event_sample = ev->sample;
	}
	switch (ev->type) {
	case EVENT_BURST_ONSET:
		at = ev->u.burst.edge_sample;
		if (ev->u.burst.action == EVENT_ACTION_REQUESTED) {
			snprintf(t, sizeof(t), "onset %s train %u",
				 record_edf_channel(r, ev->channel), ev->u.burst.train_id);
		} else {
			snprintf(t, sizeof(t), "onset %s", record_edf_channel(r, ev->channel));
		}
		break;
	case EVENT_BURST_OFFSET:
		at = ev->u.burst.edge_sample;
		snprintf(t, sizeof(t), "offset %s", record_edf_channel(r, ev->channel));
		break;
	case EVENT_CALIBRATED:
		snprintf(t, sizeof(t), "calibrated %s", record_edf_channel(r, ev->channel));
		break;
	case EVENT_PULSE:
		snprintf(t, sizeof(t), "pulse %u.%u %.4g%%", ev->u.pulse.train_id,
			 ev->u.pulse.index, ev->u.pulse.intensity_pct);
		/* when it fired, on the sample clock: not the last sample read then */
		fired = ev->u.pulse.sample_at_fire;
		break;
	case EVENT_REFUSAL:
		rule = safety_rule_name(ev->u.refusal.rule);
		snprintf(t, sizeof(t), "refused %s %u.%u", rule ? rule : "unknown",
			 ev->u.refusal.train_id, ev->u.refusal.index);
		break;
	case EVENT_STATE:
		fired = ev->u.state.at_sample;	/* the stim thread's: arming, faults */
		if (ev->u.state.code) {
			n = snprintf(t, sizeof(t), "%s %d: %.*s",
				     record_edf_state_name(ev->u.state.state), ev->u.state.code,
				     EVENT_REASON_MAX, ev->u.state.reason);
		} else {
			n = snprintf(t, sizeof(t), "%s: %.*s",
				     record_edf_state_name(ev->u.state.state), EVENT_REASON_MAX,
				     ev->u.state.reason);
		}
		/* a long reason is cut to the annotation's room; the event stream has it whole */
		if (n < 0) {
			t[0] = '\0';
		}
		break;
	case EVENT_SESSION:
		/* a blinded session's code, never its arm (docs/sham.md) */
		if (!ev->u.session.started || !ev->u.session.arm_code[0]) {
			return;
		}
		snprintf(t, sizeof(t), "arm code %.*s", EVENT_ARM_CODE_MAX,
			 ev->u.session.arm_code);
		break;
	case EVENT_ASSESS: {
		static const char *const kinds[] = { "rest", "stretch", "cci", "mvc" };

		/* the block as a stretch of the recording, as the database has it: stored ones only */
		if (ev->u.assess.code) {
			return;
		}
		at = ev->u.assess.first_sample;
		dur = ev->u.assess.samples;
		snprintf(t, sizeof(t), "assessment %s %s",
			 ev->u.assess.phase ? "post" : "pre",
			 ev->u.assess.kind < 4 ? kinds[ev->u.assess.kind] : "other");
		if (ev->u.assess.kind == 1 && isfinite(ev->u.assess.tsrt_deg)) {
			size_t used = strlen(t);

			snprintf(t + used, sizeof(t) - used, " TSRT %.1f deg n %u",
				 (double)ev->u.assess.tsrt_deg, ev->u.assess.fitted);
		}
		break;
	}
	case EVENT_THRESHOLD:
		/* one annotation per probe, at its pulse, with its amplitude */
		if (!ev->u.threshold.result) {
			fired = ev->u.threshold.sample_at_fire;
			snprintf(t, sizeof(t), "threshold probe %u %.4g%% %.1f uV%s",
				 ev->u.threshold.probe, ev->u.threshold.intensity_pct,
				 ev->u.threshold.amplitude_uv,
				 ev->u.threshold.response ? " response" : "");
		} else if (ev->u.threshold.outcome == EVENT_THRESHOLD_FOUND) {
			snprintf(t, sizeof(t), "motor threshold %.4g%% (%u pulses)",
				 ev->u.threshold.threshold_pct, ev->u.threshold.pulses);
		} else {
			n = snprintf(t, sizeof(t), "motor threshold not found (%u pulses): %.*s",
				     ev->u.threshold.pulses, EVENT_REASON_MAX,
				     ev->u.threshold.reason);
			/* cut to the annotation's room; the event stream has it whole */
			if (n < 0) {
				t[0] = '\0';
			}
		}
		break;
	case EVENT_GAP:
		at = ev->u.gap.first_sample;
		dur = ev->u.gap.lost;
		snprintf(t, sizeof(t), "gap %" PRIu64 " samples", ev->u.gap.lost);
		break;
	default:
		return;
	}
	t[RECORD_ANNOT_TEXT - 1] = '\0';
	record_edf_annotate(r, isnan(fired) ? (double)at : fired, dur, t);
}

/* ---- the file ------------------------------------------------------------ */

/* Replace {patient} and {session} (strftime's '%' and '/' made harmless). */
static void record_edf_expand(const char *pattern, const char *patient, const char *session,
			      char *out, size_t len)
{
	size_t o = 0;
	const char *p = pattern, *v;

	while (*p && o + 1 < len) {
		v = NULL;
		if (!strncmp(p, "{patient}", 9)) {
			v = patient;
			p += 9;
		} else if (!strncmp(p, "{session}", 9)) {
			v = session;
			p += 9;
		} else {
			out[o++] = *p++;
			continue;
		}
		for (; *v && o + 2 < len; v++) {
			if (*v == '%') {
				out[o++] = '%';
				out[o++] = '%';
			} else {
				out[o++] = *v == '/' ? '_' : *v;
			}
		}
	}
	out[o] = '\0';
}

/*
 * Create DIR/NAME.ext, never over an existing file: NAME-1, NAME-2, ...
 * @return 0 with @path set, or -errno
 */
static int record_edf_create_file(struct record *r, const char *patient, const char *session,
				  const struct tm *tm, char *path, size_t len)
{
	char pattern[CONFIG_PATH_MAX * 2], name[CONFIG_PATH_MAX];
	const char *ext = r->bdf ? "bdf" : "edf";
	int i, fd, n;

	record_edf_expand(r->pattern, patient, session, pattern, sizeof(pattern));
	/* record.name is a strftime pattern by design */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = (int)strftime(name, sizeof(name), pattern, tm);
#pragma GCC diagnostic pop
	if (n == 0) {
		return -ENAMETOOLONG;
	}
	for (i = 0; i < RECORD_EDF_NAME_TRIES; i++) {
		if (i) {
			n = snprintf(path, len, "%s/%s-%d.%s", r->dir, name, i, ext);
		} else {
			n = snprintf(path, len, "%s/%s.%s", r->dir, name, ext);
		}
		if (n < 0 || (size_t)n >= len) {
			return -ENAMETOOLONG;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EEXIST) {
			return -errno;
		}
	}
	return -EEXIST;
}

static const char *const record_edf_months[12] = {
	"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
};

/*
 * EDF+ 2.1.3.3: "Startdate DD-MMM-YYYY ADMINCODE TECHNICIAN EQUIPMENT",
 * X for an unknown technician, padded with spaces to 80 characters. The
 * session id is at most CONFIG_EDF_ADMINCODE_MAX characters (checked), so
 * it all fits.
 */
static void record_edf_recording_id(struct record_file *f, const struct tm *tm,
				    const char *session)
{
	char text[RECORD_EDF_ID + CONFIG_NAME_MAX + 64];
	int n;

	n = snprintf(text, sizeof(text), "Startdate %02d-%s-%04d %s X %s", tm->tm_mday,
		     record_edf_months[tm->tm_mon % 12], tm->tm_year + 1900, session,
		     RECORD_EDF_EQUIPMENT);
	if (n < 0) {
		n = 0;
	}
	memset(f->recording_id, ' ', RECORD_EDF_ID);
	memcpy(f->recording_id, text, n < RECORD_EDF_ID ? (size_t)n : RECORD_EDF_ID);
	f->recording_id[RECORD_EDF_ID] = '\0';
}

static int record_edf_setup(struct record *r, int h, const char *patient, const char *session,
			    const struct tm *tm, long subsec_100ns)
{
	int ret = 0;
	unsigned ch;

	for (ch = 0; ch < r->channels; ch++) {
		bool angle = r->angle && ch == r->channels - 1;

		ret |= edf_set_samplefrequency(h, (int)ch, (int)r->spr);
		ret |= edf_set_physical_maximum(h, (int)ch, record_edf_phys(r, ch));
		ret |= edf_set_physical_minimum(h, (int)ch, -record_edf_phys(r, ch));
		ret |= edf_set_digital_maximum(h, (int)ch, r->dig);
		ret |= edf_set_digital_minimum(h, (int)ch, -r->dig);
		ret |= edf_set_label(h, (int)ch, r->names[ch]);
		ret |= edf_set_physical_dimension(h, (int)ch, angle ? "deg" : "uV");
		ret |= edf_set_transducer(h, (int)ch, angle ? "joint angle" : "EMG");
		ret |= edf_set_prefilter(h, (int)ch, "none (raw)");
	}
	if (r->duration_10us != 100000) {
		ret |= edf_set_datarecord_duration(h, r->duration_10us);
	}
	ret |= edf_set_number_of_annotation_signals(h, r->annot_signals);
	/* sex, birthdate and name unset: edflib writes X (unknown), as EDF+ asks */
	ret |= edf_set_patientcode(h, patient);
	ret |= edf_set_admincode(h, session);
	ret |= edf_set_equipment(h, RECORD_EDF_EQUIPMENT);
	ret |= edf_set_startdatetime(h, tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday,
				     tm->tm_hour, tm->tm_min, tm->tm_sec);
	ret |= edf_set_subsecond_starttime(h, (int)subsec_100ns);
	return ret ? -EINVAL : 0;
}

int record_edf_open(struct record *r, const char *patient, const char *session,
		    const char *notes)
{
	struct record_file *f = &r->f;
	struct timespec now;
	struct tm tm;
	int h, ret;

	if (f->handle >= 0) {
		return -EBUSY;
	}
	memset(f, 0, sizeof(*f));
	f->handle = -1;
	snprintf(f->notes, sizeof(f->notes), "%s", notes ? notes : "");
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	ret = record_edf_create_file(r, patient, session, &tm, f->path, sizeof(f->path));
	if (ret < 0) {
		log_err("recording: cannot create a file in %s: %s", r->dir, strerror(-ret));
		return ret;
	}
	h = edfopen_file_writeonly(f->path, r->bdf ? EDFLIB_FILETYPE_BDFPLUS
						 : EDFLIB_FILETYPE_EDFPLUS, (int)r->channels);
	if (h < 0) {
		log_err("recording: edflib cannot open %s (error %d)", f->path, h);
		ret = h == EDFLIB_MALLOC_ERROR ? -ENOMEM : -EIO;
		goto err_unlink;
	}
	/* 100 µs resolution, as edflib recommends */
	ret = record_edf_setup(r, h, patient, session, &tm, now.tv_nsec / 100000 * 1000);
	record_edf_recording_id(f, &tm, session);
	if (ret < 0) {
		log_err("recording: edflib refused the header of %s", f->path);
		edfclose_file(h);
		goto err_unlink;
	}
	f->handle = h;
	snprintf(f->st.path, sizeof(f->st.path), "%s", f->path);
	/*
	 * Start with the last block received (written to the previous file
	 * or not): an event of the new session dated before the next block
	 * arrives carries the last sample consumed, which only that block
	 * holds. Without it the file began after such an event (a session's
	 * arm at its start was missing from its file).
	 */
	if (r->have_last) {
		record_edf_block(r, r->last);
	}
	log_info("recording: %s (%s+, %u channels at %g Hz, +-%g uV, step %.6g uV)", f->path,
		 r->bdf ? "BDF" : "EDF", r->channels, r->rate_hz, r->phys, r->phys / r->dig);
	record_emit(r, EVENT_RECORD_OPENED, 0, f->path);
	record_publish_stats(r);
	return 0;

err_unlink:
	unlink(f->path);
	f->path[0] = '\0';
	return ret;
}

int record_edf_close(struct record *r)
{
	struct record_file *f = &r->f;
	uint64_t space;
	int ret = 0;

	if (f->handle < 0) {
		return f->st.error ? f->st.error : -ENOENT;
	}
	atomic_store(&r->first_shown, 0);
	/* EMG lost after the last block that reached us (the events went on). */
	if (f->started && f->last_event_sample + 1 > f->next) {
		record_edf_fill(r, f->last_event_sample + 1, 0);
	}
	if (f->handle >= 0 && f->fill > 0) {
		record_edf_annotate(r, f->next, 0, "end of data");
		while (f->fill > 0 && f->handle >= 0) {
			record_edf_put(r, NULL);	/* an EDF record is whole: zeros */
		}
	}
	if (f->handle >= 0 && f->st.records == 0) {
		/* No EMG at all: one record of zeros keeps the file valid. */
		f->started = true;
		record_edf_notes(r);
		record_edf_annotate(r, f->next, 0, "no EMG");
		while (f->handle >= 0 && f->st.records == 0) {
			record_edf_put(r, NULL);
		}
	}
	if (f->handle < 0) {
		return f->st.error;
	}
	space = f->st.records * (uint64_t)r->annot_signals;
	f->st.annotations_lost = f->st.annotations > space ? f->st.annotations - space : 0;
	errno = 0;
	if (edfclose_file(f->handle) < 0) {
		ret = errno ? -errno : -EIO;
		f->st.error = ret;
	}
	f->handle = -1;
	if (ret < 0) {
		record_repair(f->path, UINT64_MAX, NULL);
		log_err("recording: closing %s failed: %s", f->path, strerror(-ret));
		record_emit(r, EVENT_RECORD_ERROR, ret, f->path);
	} else {
		log_info("recording: %s closed: %" PRIu64 " data records, %" PRIu64
			 " annotations%s", f->path, f->st.records, f->st.annotations,
			 f->st.lost ? ", samples lost (see rpms.record)" : "");
		record_emit(r, EVENT_RECORD_CLOSED, 0, f->path);
	}
	if (f->st.annotations_lost) {
		log_warn("recording: %" PRIu64 " annotations did not fit in %s (%d per data record)",
			 f->st.annotations_lost, f->path, r->annot_signals);
	}
	if (f->st.events_lost) {
		log_warn("recording: %" PRIu64 " events are missing from %s: the recorder fell "
			 "behind the publisher (annotated where it happened)", f->st.events_lost,
			 f->path);
	}
	record_publish_stats(r);
	return ret;
}
