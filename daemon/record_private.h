/* SPDX-License-Identifier: MIT */
/*
 * The recorder's inner parts, shared by the files that make it up and by
 * nothing else (as control_private.h is for the control socket):
 *
 *   record.c          set-up, the recording thread (its rings, the
 *                     requests to open and close), rpms.record events
 *   record_edf.c      the EDF+/BDF+ file: header, samples quantised into
 *                     data records, annotations, open and close (edflib)
 *   record_repair.c   files a crash or a full disk left open: cut back to
 *                     their complete data records (no edflib)
 *
 * Everything here runs on the recording thread (rpmsd-record), except set-up
 * and record_repair_dir (record_create, before the thread starts).
 */
#ifndef RPMSD_RECORD_PRIVATE_H
#define RPMSD_RECORD_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"	/* CONFIG_PATH_MAX, CONFIG_NAME_MAX */
#include "event.h"	/* enum event_record_kind */
#include "record.h"	/* struct record_stats */
#include "source.h"	/* SOURCE_MAX_CHANNELS, SOURCE_NAME_MAX */

struct emg_block;
struct ring;
struct sclock;

#define RECORD_ANNOT_TEXT 41		/* edflib keeps 40 characters */
#define RECORD_EDF_ID 80		/* bytes of each identification field */

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
	char notes[RECORD_NOTES_MAX];	/* annotations due at the file's first sample, a line each */
	struct record_stats st;
};

struct record {
	struct sclock *clock;
	unsigned channels;		/* signals: the EMG channels, and the angle if any */
	bool angle;			/* the last signal is the joint angle, degrees */
	char names[SOURCE_MAX_CHANNELS + 1][SOURCE_NAME_MAX];
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
	char req_notes[RECORD_NOTES_MAX];
	char req_path[CONFIG_PATH_MAX];
	struct record_stats shown;	/* for record_get_stats */
	_Atomic uint64_t first_shown;	/* f.first + 1 once the file started, 0 none */
};

/* record.c */

/** Push an rpms.record event of @kind about @path (the file's stats with it). */
void record_emit(struct record *r, enum event_record_kind kind, int code, const char *path);

/** Show the file's stats to record_get_stats (takes r->lock). */
void record_publish_stats(struct record *r);

/* record_edf.c */

/**
 * Create a new file for @patient and @session (DIR/NAME.ext, never over an
 * existing file), write its header, start it with the last block received.
 * @return 0, -EBUSY (a file is open) or -errno; logged
 */
int record_edf_open(struct record *r, const char *patient, const char *session,
		    const char *notes);

/**
 * Fill the file to its last event, pad its last data record, close it.
 * @return 0, -ENOENT (none open), or the error that closed it
 */
int record_edf_close(struct record *r);

/** Write the EMG block @b (zeros for what never arrived before it). */
void record_edf_block(struct record *r, const struct emg_block *b);

/** One published event as an annotation (EDF+ keeps 40 characters of it). */
void record_edf_event(struct record *r, const struct event *ev);

/**
 * Annotate @text at @sample (on the sample clock, may be fractional),
 * lasting @dur samples (0: none). Nothing before the file's first sample.
 */
void record_edf_annotate(struct record *r, double sample, uint64_t dur, const char *text);

/* record_repair.c */

/** Repair what a crash left open in the recording directory (header count "-1"). */
void record_repair_dir(struct record *r);

#endif /* RPMSD_RECORD_PRIVATE_H */
