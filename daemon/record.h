/* SPDX-License-Identifier: MIT */
/*
 * Session recording: one EDF+ (or BDF+) file per session, written with
 * libedf (edflib) by a non-real-time thread of its own.
 *
 * Every EMG channel at the full rate in µV (the raw samples, quantised to
 * the file's digital step: see docs/recording.md), the patient and session
 * ids in the header, and annotations for burst onsets and offsets, every
 * pulse, every refusal, arming, disarming, faults, gaps and losses.
 *
 * Inputs are two SPSC rings: the acquire thread's EMG (emg.h: the tap's
 * recording ring) and a copy of every event the publisher publishes
 * (record_input). Nothing waits for the disk: a full EMG ring loses blocks,
 * which the recorder counts, zero-fills in the file (so the file's time
 * stays the recording's), annotates and publishes on rpms.record. A write
 * error (ENOSPC) closes the file, makes it consistent and is published;
 * the daemon goes on.
 *
 * edflib writes the header's record count ("-1" until then) and every
 * annotation only when the file is closed. A file left open by a crash is
 * therefore not readable by edflib (MNE reads its complete records); the
 * next record_create in the same directory repairs it: the partial last
 * record is cut and the count written (record_repair).
 */
#ifndef RPMSD_RECORD_H
#define RPMSD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct ring;
struct sclock;
struct source;

#define RECORD_ERR_MAX 512
/** Room for a session's notes (record_start_session). */
#define RECORD_NOTES_MAX 512

struct record;

/** Counters of the current (or last) file, for the summary. */
struct record_stats {
	char path[CONFIG_PATH_MAX];	/* "" if no file was opened */
	uint64_t records;		/* data records written */
	uint64_t samples;		/* frames in them that were data (no padding) */
	uint64_t lost;			/* samples lost on the way (zero-filled) */
	uint64_t clipped;		/* samples beyond the range, clipped */
	uint64_t annotations;		/* annotations written */
	uint64_t annotations_lost;	/* beyond the file's annotation space */
	uint64_t events_lost;		/* events the recorder's input ring had no room for */
	int error;			/* negative errno of a write error, else 0 */
};

/**
 * Create the recorder for cfg->record with @emg (the tap's recording ring,
 * kept, not owned); @clock (kept; may be NULL) stamps its events. Checks record.directory, the rate against
 * record.record_s and the range; repairs files in the directory that a
 * crash left open (an rpms.record "repaired" event each).
 * @param err  receives a message naming the record.* key at fault
 * @return 0, -EINVAL, -ENOENT, -ENOMEM, or another -errno
 */
int record_create(const struct rpmsd_config *cfg, const struct source *src,
		  struct sclock *clock, struct ring *emg, struct record **out,
		  char *err, size_t errlen);

/**
 * What record_create checks of cfg->record against @src (record.directory,
 * record.record_s at the source's rate, record.range_uv), without creating
 * anything or touching the directory's files: for --check-config and the
 * start's own checks (session.c).
 * @param err  receives a message naming the record.* key at fault
 * @return 0, -EINVAL, -ENOENT, -ENAMETOOLONG or -ENOMEM
 */
int record_check(const struct rpmsd_config *cfg, const struct source *src, char *err,
		 size_t errlen);

/** Stop if running, close any file, free. Accepts NULL. */
void record_destroy(struct record *r);

/** rpms.record events the recorder publishes (a ring of struct event). */
struct ring *record_events(struct record *r);

/** Where the publisher copies every event it publishes (struct event). */
struct ring *record_input(struct record *r);

/** Start the recording thread. @return 0 or -errno */
int record_start(struct record *r);

/**
 * Open a new file for a session and record into it from the next EMG
 * block on. For the control socket's session start (today: session.c at
 * start-up with record.patient_id and record.session_id). Synchronous:
 * returns once the file exists. Any thread but the recorder's.
 * @param patient_id  EDF+ patient code, one word of printable ASCII
 * @param session_id  EDF+ admincode, likewise, at most 40 characters
 * @param notes       annotations at the file's first sample, one a line
 *                    (each cut to EDF+'s 40 characters), or NULL
 * @param path        receives the file's path (may be NULL)
 * @return 0, -EBUSY (a session is being recorded), -EINVAL (an id that
 *         is not one word, or a session id of more than
 *         CONFIG_EDF_ADMINCODE_MAX characters),
 *         -ESRCH (thread not running), or -errno from creating the file
 */
int record_start_session(struct record *r, const char *patient_id,
			 const char *session_id, const char *notes, char *path, size_t pathlen);

/**
 * Close the session's file (the last data record padded with zeros, the
 * count and annotations written by edflib). Synchronous. Events already
 * copied to record_input are annotated first, and the EMG of the newest
 * of them is waited for (at most 250 ms). The caller makes sure every
 * event of the session has been copied (publish_flush) first.
 * @param complete  false: it could not (the publisher was late); the file
 *                  then says that events at its end may be missing
 * @return 0, -ENOENT (none open), or a negative errno of a write error
 */
int record_stop_session(struct record *r, bool complete);

/**
 * Drain both rings completely, close any file, stop the thread. Call once
 * the acquire thread and the publisher have stopped. Safe when not
 * started, and more than once.
 */
void record_stop(struct record *r);

/**
 * The sample the open recording's first data record holds (its onset 0),
 * or UINT64_MAX while no file has started (any thread): an assessment's
 * stretch of the file in seconds is (sample - this) / rate.
 */
uint64_t record_first_sample(struct record *r);

/** Copy the counters (exact once stopped). Thread-safe. */
void record_get_stats(struct record *r, struct record_stats *st);

/**
 * Make an EDF+/BDF+ file that was not closed readable: cut a partial last
 * data record and write the header's record count. Files already
 * consistent are left as they are.
 * @param valid_bytes  keep only records within the first @valid_bytes
 *                     bytes (what reached the disk before a write error;
 *                     UINT64_MAX: the whole file)
 * @param records      receives the records the file now has (may be NULL)
 * @return 1 repaired, 0 nothing to do, or -EINVAL (not an EDF/BDF file),
 *         -errno
 */
int record_repair(const char *path, uint64_t valid_bytes, uint64_t *records);

#endif /* RPMSD_RECORD_H */
