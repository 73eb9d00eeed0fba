/* SPDX-License-Identifier: MIT */
/*
 * The recording thread and its EDF+/BDF+ files (see record.h and
 * docs/recording.md).
 *
 * Only this thread calls edflib (which is not thread-safe); the main or
 * control thread asks it to open and close files through a mutex and a
 * condition variable, and waits for the answer. The thread polls its two
 * rings every RECORD_IDLE_NS when they are empty.
 *
 * Samples are quantised here, not by edflib: digital = lround(µV x D / P)
 * with D = 32767 (EDF) or 8388607 (BDF) and P the integer physical range,
 * written with edfwrite_digital_samples. The header then says exactly that
 * step (P / D), so the samples in the file can be checked against the
 * input exactly.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <edflib.h>

#include "emg.h"
#include "event.h"
#include "log.h"
#include "record.h"
#include "ring.h"
#include "rpmsd-build.h"
#include "safety.h"
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
#define RECORD_NAME_TRIES 100		/* NAME, NAME-1, ... NAME-99 */
#define RECORD_ANNOT_SIGNALS_MAX 64	/* edflib's limit */
#define RECORD_ANNOT_TEXT 41		/* edflib keeps 40 characters */
#define RECORD_RECORD_MAX (10 * 1024 * 1024)	/* edflib's data record limit */
#define RECORD_EDF_HDR 256		/* bytes: the header, and per signal */
#define RECORD_EDF_ID 80		/* bytes of each identification field */
#define RECORD_EDF_RECID_AT 88		/* offset of the local recording identification */
#define RECORD_EQUIPMENT "rpmsd-" RPMSD_VERSION
#define RECORD_EMG_WAIT_NS INT64_C(250000000)	/* at a close, for EMG already dated */
#define RECORD_EMG_TICK_NS 1000000L	/* how often that wait looks again */

enum record_op {
	RECORD_OP_NONE = 0,
	RECORD_OP_OPEN,
	RECORD_OP_CLOSE,
};

/* The file being written: recorder thread only. */
struct record_file {
	int handle;			/* edflib's, -1 when none */
	char path[CONFIG_PATH_MAX];
	bool started;			/* the first block fixed @first */
	uint64_t first;			/* sample index of the file's first sample */
	uint64_t next;			/* sample index the record buffer expects */
	size_t fill;			/* frames in the record buffer */
	uint64_t last_event_sample;	/* the largest event sample seen */
	char recording_id[RECORD_EDF_ID + 1];	/* the header's, as EDF+ has it */
	struct record_stats st;
};

/* "Startdate " + DD-MMM-YYYY + 3 separators and X: what the admincode leaves */
_Static_assert(10 + 11 + 3 + 1 + CONFIG_EDF_ADMINCODE_MAX + sizeof(RECORD_EQUIPMENT) - 1 <=
	       RECORD_EDF_ID, "the recording identification must hold the longest session id");

struct record {
	struct sclock *clock;
	unsigned channels;
	char names[SOURCE_MAX_CHANNELS][SOURCE_NAME_MAX];
	double rate_hz;
	char dir[CONFIG_PATH_MAX];
	char pattern[CONFIG_PATH_MAX];
	bool bdf;
	int dig;			/* D: digital range is -D..D */
	double phys;			/* P: physical range is -P..P µV, an integer */
	size_t spr;			/* samples per data record */
	int duration_10us;		/* data record duration, edflib's unit */
	int annot_signals;

	struct ring *emg;		/* from the acquire thread (not owned) */
	struct ring *in;		/* events copied by the publisher */
	struct ring *out;		/* rpms.record */
	struct emg_block *blk;		/* popped EMG record */
	struct emg_block *last;		/* the one popped before it (blk's spare) */
	bool have_last;
	int *rec;			/* channels x spr digital samples */
	struct record_file f;
	int64_t lost_reported_ns;
	uint64_t lost_reported;
	uint64_t in_dropped;		/* ring_dropped(in) already accounted for */

	pthread_t tid;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock */
	bool stop;
	enum record_op op;
	bool op_done;
	int op_ret;
	bool req_complete;		/* close: every event of the file was sent */
	char req_patient[CONFIG_NAME_MAX];
	char req_session[CONFIG_NAME_MAX];
	char req_path[CONFIG_PATH_MAX];
	struct record_stats shown;	/* for record_get_stats */
};

/* ---- repair ------------------------------------------------------------- */

/* An ASCII header field of @n characters as an integer; -1 if it is not one. */
static long long record_field(const char *p, size_t n)
{
	char buf[16];
	char *end;
	long long v;

	if (n >= sizeof(buf)) {
		return -1;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	while (*end == ' ') {
		end++;
	}
	if (end == buf || *end || errno) {
		return -1;
	}
	return v;
}

/*
 * The layout of an EDF/BDF file from its headers: header bytes, record
 * bytes and the record count field.
 */
static int record_layout(int fd, long long *hdr_bytes, long long *rec_bytes, long long *count)
{
	char head[RECORD_EDF_HDR], field[8];
	long long ns, spr, sum = 0, i;
	int bps;

	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head)) {
		return -EINVAL;
	}
	if (!memcmp(head, "0       ", 8)) {
		bps = 2;
	} else if (!memcmp(head, "\xff" "BIOSEMI", 8)) {
		bps = 3;
	} else {
		return -EINVAL;
	}
	*hdr_bytes = record_field(head + 184, 8);
	*count = record_field(head + 236, 8);
	ns = record_field(head + 252, 4);
	if (ns < 1 || ns > 4096 || *hdr_bytes != RECORD_EDF_HDR * (ns + 1)) {
		return -EINVAL;
	}
	/* samples per record: ns fields of 8 at 256 + ns x 216 */
	for (i = 0; i < ns; i++) {
		if (pread(fd, field, sizeof(field), RECORD_EDF_HDR + ns * 216 + i * 8) !=
		    (ssize_t)sizeof(field)) {
			return -EINVAL;
		}
		spr = record_field(field, sizeof(field));
		if (spr < 1) {
			return -EINVAL;
		}
		sum += spr;
	}
	*rec_bytes = sum * bps;
	return 0;
}

int record_repair(const char *path, uint64_t valid_bytes, uint64_t *records)
{
	long long hdr = 0, rec = 0, count = 0, k;
	char field[24];
	struct stat sb;
	uint64_t size;
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		return -errno;
	}
	ret = fstat(fd, &sb) < 0 ? -errno : !S_ISREG(sb.st_mode) ? -EINVAL
	      : record_layout(fd, &hdr, &rec, &count);
	if (ret < 0) {
		goto out;
	}
	size = (uint64_t)sb.st_size < valid_bytes ? (uint64_t)sb.st_size : valid_bytes;
	k = size >= (uint64_t)hdr ? (long long)((size - (uint64_t)hdr) / (uint64_t)rec) : 0;
	if (records) {
		*records = (uint64_t)k;
	}
	if (count == k && (uint64_t)sb.st_size == (uint64_t)(hdr + k * rec)) {
		ret = 0;
		goto out;
	}
	if (k > 99999999) {
		ret = -EFBIG;	/* the count field has 8 characters */
		goto out;
	}
	/* The complete records stay; what follows them was never finished. */
	if (ftruncate(fd, hdr + k * rec) < 0) {
		ret = -errno;
		goto out;
	}
	snprintf(field, sizeof(field), "%-8lld", k);
	if (pwrite(fd, field, 8, 236) != 8 || fsync(fd) < 0) {
		ret = errno ? -errno : -EIO;
		goto out;
	}
	ret = 1;
out:
	close(fd);
	return ret;
}

/* ---- events out ------------------------------------------------------- */

static void record_emit(struct record *r, enum event_record_kind kind, int code,
			const char *path)
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

/* Repair what a crash left open in the directory: header count "-1". */
static void record_repair_dir(struct record *r)
{
	char path[CONFIG_PATH_MAX + 256], head[RECORD_EDF_HDR];
	struct dirent *de;
	struct stat sb;
	uint64_t k;
	size_t n;
	DIR *d;
	int fd, ret;

	d = opendir(r->dir);
	if (!d) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || (strcasecmp(de->d_name + n - 4, ".edf") &&
			      strcasecmp(de->d_name + n - 4, ".bdf"))) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", r->dir, de->d_name);
		/* a FIFO under that name must not block the start: regular files only */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0) {
			continue;
		}
		if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			log_warn("recording: %s is not a regular file: not looked at", path);
			close(fd);
			continue;
		}
		ret = pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
		      record_field(head + 236, 8) == -1;
		close(fd);
		if (!ret) {
			continue;
		}
		ret = record_repair(path, UINT64_MAX, &k);
		if (ret < 0) {
			log_warn("recording: %s was left open by a crash and cannot be repaired: %s",
				 path, strerror(-ret));
			continue;
		}
		log_warn("recording: %s was left open by a crash: repaired, %" PRIu64
			 " complete data records kept (its annotations were lost)", path, k);
		r->f.st.records = k;
		record_emit(r, EVENT_RECORD_REPAIRED, 0, path);
		r->f.st.records = 0;
	}
	closedir(d);
}

/* ---- writing ---------------------------------------------------------- */

static void record_publish_stats(struct record *r)
{
	pthread_mutex_lock(&r->lock);
	r->shown = r->f.st;
	pthread_mutex_unlock(&r->lock);
}

/*
 * A write failed (ENOSPC, EIO): close the file as far as possible, cut it
 * back to the records that reached the disk before the failure, publish.
 */
static void record_fail(struct record *r, int err)
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
static void record_write_recording_id(struct record *r)
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
static void record_write_record(struct record *r)
{
	unsigned ch;

	for (ch = 0; ch < r->channels; ch++) {
		errno = 0;
		if (edfwrite_digital_samples(r->f.handle, r->rec + ch * r->spr) < 0) {
			record_fail(r, errno ? -errno : -EIO);
			return;
		}
	}
	r->f.st.records++;
	r->f.fill = 0;
	if (r->f.st.records == 1) {
		record_write_recording_id(r);
	}
}

/* µV to the file's digital value: lround(x D / P), clipped at +-D (counted). */
static int record_quantise(struct record *r, float x)
{
	double v = (double)x * r->dig / r->phys;

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
static void record_put(struct record *r, const float *frame)
{
	struct record_file *f = &r->f;
	unsigned ch;

	for (ch = 0; ch < r->channels; ch++) {
		r->rec[ch * r->spr + f->fill] = frame ? record_quantise(r, frame[ch]) : 0;
	}
	f->fill++;
	f->next++;
	if (frame) {
		f->st.samples++;
	}
	if (f->fill == r->spr) {
		record_write_record(r);
	}
}

static void record_annotate(struct record *r, double sample, uint64_t dur, const char *text)
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

/* Samples that never reached us: zeros, so that the file's time stays the recording's. */
static void record_fill(struct record *r, uint64_t upto, uint64_t gap)
{
	struct record_file *f = &r->f;
	uint64_t missing = upto - f->next, lost = missing > gap ? missing - gap : 0;
	char text[RECORD_ANNOT_TEXT * 2];

	if (lost) {
		/* A source gap is annotated by its own event; this is ours. */
		snprintf(text, sizeof(text), "recording lost %" PRIu64 " samples", lost);
		record_annotate(r, f->next, lost, text);
		f->st.lost += lost;
	}
	while (f->next < upto && f->handle >= 0) {
		record_put(r, NULL);
	}
}

static void record_block(struct record *r, const struct emg_block *b)
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
	}
	if (b->first_sample > f->next) {
		record_fill(r, b->first_sample, b->lost);
	} else if (b->first_sample < f->next) {
		i = f->next - b->first_sample;	/* cannot happen: indices only grow */
	}
	for (; i < b->frames && f->handle >= 0; i++) {
		record_put(r, b->data + i * r->channels);
	}
}

/* The daemon's states as annotations: the same names as rpms.state. */
static const char *record_state_name(uint32_t state)
{
	const char *name = event_state_name(state);

	return name ? name : "state";
}

static const char *record_channel(struct record *r, uint32_t ch)
{
	return ch < r->channels ? r->names[ch] : "?";
}

/* One published event as an annotation (EDF+ keeps 40 characters of it). */
static void record_event(struct record *r, const struct event *ev)
{
	char t[RECORD_ANNOT_TEXT * 2];
	const char *rule;
	uint64_t at = ev->sample, dur = 0;
	double fired = NAN;

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
			snprintf(t, sizeof(t), "onset %s train %u", record_channel(r, ev->channel),
				 ev->u.burst.train_id);
		} else {
			snprintf(t, sizeof(t), "onset %s", record_channel(r, ev->channel));
		}
		break;
	case EVENT_BURST_OFFSET:
		at = ev->u.burst.edge_sample;
		snprintf(t, sizeof(t), "offset %s", record_channel(r, ev->channel));
		break;
	case EVENT_CALIBRATED:
		snprintf(t, sizeof(t), "calibrated %s", record_channel(r, ev->channel));
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
			snprintf(t, sizeof(t), "%s %d: %.*s", record_state_name(ev->u.state.state),
				 ev->u.state.code, EVENT_REASON_MAX, ev->u.state.reason);
		} else {
			snprintf(t, sizeof(t), "%s: %.*s", record_state_name(ev->u.state.state),
				 EVENT_REASON_MAX, ev->u.state.reason);
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
	record_annotate(r, isnan(fired) ? (double)at : fired, dur, t);
}

/* ---- files ------------------------------------------------------------ */

/* Replace {patient} and {session} (strftime's '%' and '/' made harmless). */
static void record_expand(const char *pattern, const char *patient, const char *session,
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
static int record_create_file(struct record *r, const char *patient, const char *session,
			      const struct tm *tm, char *path, size_t len)
{
	char pattern[CONFIG_PATH_MAX * 2], name[CONFIG_PATH_MAX];
	const char *ext = r->bdf ? "bdf" : "edf";
	int i, fd, n;

	record_expand(r->pattern, patient, session, pattern, sizeof(pattern));
	/* record.name is a strftime pattern by design */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = (int)strftime(name, sizeof(name), pattern, tm);
#pragma GCC diagnostic pop
	if (n == 0) {
		return -ENAMETOOLONG;
	}
	for (i = 0; i < RECORD_NAME_TRIES; i++) {
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

static const char *const record_months[12] = {
	"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
};

/*
 * EDF+ 2.1.3.3: "Startdate DD-MMM-YYYY ADMINCODE TECHNICIAN EQUIPMENT",
 * X for an unknown technician, padded with spaces to 80 characters. The
 * session id is at most CONFIG_EDF_ADMINCODE_MAX characters (checked), so
 * it all fits.
 */
static void record_recording_id(struct record_file *f, const struct tm *tm, const char *session)
{
	char text[RECORD_EDF_ID + CONFIG_NAME_MAX + 64];
	int n;

	n = snprintf(text, sizeof(text), "Startdate %02d-%s-%04d %s X %s", tm->tm_mday,
		     record_months[tm->tm_mon % 12], tm->tm_year + 1900, session, RECORD_EQUIPMENT);
	if (n < 0) {
		n = 0;
	}
	memset(f->recording_id, ' ', RECORD_EDF_ID);
	memcpy(f->recording_id, text, n < RECORD_EDF_ID ? (size_t)n : RECORD_EDF_ID);
	f->recording_id[RECORD_EDF_ID] = '\0';
}

static int record_setup(struct record *r, int h, const char *patient, const char *session,
			const struct tm *tm, long subsec_100ns)
{
	int ret = 0;
	unsigned ch;

	for (ch = 0; ch < r->channels; ch++) {
		ret |= edf_set_samplefrequency(h, (int)ch, (int)r->spr);
		ret |= edf_set_physical_maximum(h, (int)ch, r->phys);
		ret |= edf_set_physical_minimum(h, (int)ch, -r->phys);
		ret |= edf_set_digital_maximum(h, (int)ch, r->dig);
		ret |= edf_set_digital_minimum(h, (int)ch, -r->dig);
		ret |= edf_set_label(h, (int)ch, r->names[ch]);
		ret |= edf_set_physical_dimension(h, (int)ch, "uV");
		ret |= edf_set_transducer(h, (int)ch, "EMG");
		ret |= edf_set_prefilter(h, (int)ch, "none (raw)");
	}
	if (r->duration_10us != 100000) {
		ret |= edf_set_datarecord_duration(h, r->duration_10us);
	}
	ret |= edf_set_number_of_annotation_signals(h, r->annot_signals);
	/* sex, birthdate and name unset: edflib writes X (unknown), as EDF+ asks */
	ret |= edf_set_patientcode(h, patient);
	ret |= edf_set_admincode(h, session);
	ret |= edf_set_equipment(h, RECORD_EQUIPMENT);
	ret |= edf_set_startdatetime(h, tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday,
				     tm->tm_hour, tm->tm_min, tm->tm_sec);
	ret |= edf_set_subsecond_starttime(h, (int)subsec_100ns);
	return ret ? -EINVAL : 0;
}

static int record_open(struct record *r, const char *patient, const char *session)
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
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	ret = record_create_file(r, patient, session, &tm, f->path, sizeof(f->path));
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
	ret = record_setup(r, h, patient, session, &tm, now.tv_nsec / 100000 * 1000);
	record_recording_id(f, &tm, session);
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
		record_block(r, r->last);
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

static int record_close(struct record *r)
{
	struct record_file *f = &r->f;
	uint64_t space;
	int ret = 0;

	if (f->handle < 0) {
		return f->st.error ? f->st.error : -ENOENT;
	}
	/* EMG lost after the last block that reached us (the events went on). */
	if (f->started && f->last_event_sample + 1 > f->next) {
		record_fill(r, f->last_event_sample + 1, 0);
	}
	if (f->handle >= 0 && f->fill > 0) {
		record_annotate(r, f->next, 0, "end of data");
		while (f->fill > 0 && f->handle >= 0) {
			record_put(r, NULL);	/* an EDF record is whole: zeros */
		}
	}
	if (f->handle >= 0 && f->st.records == 0) {
		/* No EMG at all: one record of zeros keeps the file valid. */
		f->started = true;
		record_annotate(r, f->next, 0, "no EMG");
		while (f->handle >= 0 && f->st.records == 0) {
			record_put(r, NULL);
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
		record_annotate(r, (double)r->f.last_event_sample, 0, text);
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
		record_block(r, r->blk);
		record_keep(r);
		n++;
	}
	while (m < RECORD_BATCH && (all || r->f.handle < 0 || r->f.started) &&
	       ring_pop(r->in, &ev)) {
		record_event(r, &ev);
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
			record_block(r, r->blk);
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
		ret = record_open(r, r->req_patient, r->req_session);
	} else {
		record_drain(r);
		record_await_emg(r);
		if (!r->req_complete && r->f.handle >= 0) {
			log_warn("recording: %s is closed without the session's last events: the "
				 "publisher did not pass them on in time", r->f.path);
			record_annotate(r, r->f.next, 0, "events at the end may be missing");
		}
		record_report_lost(r, true);
		ret = record_close(r);
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
		record_close(r);
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
	r->channels = src->channels;
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
	r->channels = src->channels;
	r->rate_hz = src->rate_hz;
	memcpy(r->names, src->channel_names, sizeof(r->names));
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
			 const char *session_id, char *path, size_t pathlen)
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

void record_get_stats(struct record *r, struct record_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->shown;
	pthread_mutex_unlock(&r->lock);
}
