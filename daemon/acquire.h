/* SPDX-License-Identifier: MIT */
/*
 * The acquire thread: reads blocks from the source and runs, per sample
 * and channel, dsp -> detect, and on a burst onset the policy, posting
 * stimulation requests to the stim thread. Everything it needs is
 * allocated in acquire_create; its loop only reads, computes and pushes
 * fixed-size records.
 *
 * After each block it marks the EMG fresh (fresh.h, the stim thread's
 * acquisition watchdog, through stim_fresh). At the end of the data it disarms
 * the coil, then signals the main thread through an eventfd.
 *
 * When a read fails and the source can be reopened (IIO, with
 * source.reopen_ms > 0), it disarms the coil, publishes the fault and
 * parks: acquire_fault_fd() becomes readable, the main thread reopens the
 * source (with back-off, off the real-time thread) and calls
 * acquire_resume(). The outage reaches the pipeline as a gap.
 */
#ifndef RPMSD_ACQUIRE_H
#define RPMSD_ACQUIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "source.h"

struct bank_tally;
struct policy_protocol;
struct ring;
struct rpmsd_config;
struct sclock;
struct stim;
struct stretch;

/** Counters for the session summary. */
struct acquire_stats {
	uint64_t samples;			/* frames processed */
	uint64_t blocks;
	uint64_t onsets[SOURCE_MAX_CHANNELS];
	uint64_t offsets[SOURCE_MAX_CHANNELS];
	uint64_t requested;			/* onsets that posted a request */
	uint64_t refractory;			/* onsets ignored: refractory */
	uint64_t busy;				/* onsets ignored: mailbox full */
	uint64_t calibrating;			/* onsets ignored: not calibrated */
	bool calibrated[SOURCE_MAX_CHANNELS];
	double baseline[SOURCE_MAX_CHANNELS];	/* calibrated, µV */
	double on_threshold[SOURCE_MAX_CHANNELS];
	double off_threshold[SOURCE_MAX_CHANNELS];
	/* the last calibration's doubts (detect_result.cal_*) */
	unsigned cal_issues[SOURCE_MAX_CHANNELS];
	uint64_t cal_artefacts[SOURCE_MAX_CHANNELS];
	double cal_unsteady_s[SOURCE_MAX_CHANNELS];
	int source_error;			/* negative errno of the last read, 0 */
	uint64_t source_faults;			/* read failures survived by a reopen */
	bool ended;				/* the source reached its end */
};

/*
 * Timings kept for the summary and the benchmarks: the last
 * ACQUIRE_LAT_MAX of each kind. "Arrival" is the source's
 * source_block.arrival_ns (IIO: CLOCK_MONOTONIC at the refill's return,
 * before conversion), else CLOCK_MONOTONIC when its read returns. Pieces
 * of one refill split at a gap share its arrival.
 */
#define ACQUIRE_LAT_MAX 65536

enum acquire_lat {
	ACQUIRE_LAT_BLOCK,	/* arrival -> block fully processed */
	ACQUIRE_LAT_REQUEST,	/* arrival -> stim request posted */
	ACQUIRE_LAT_INTERVAL,	/* arrival -> next arrival (refills, not pieces) */
	ACQUIRE_LAT_COUNT
};

/** Percentiles (nearest rank) of one kind of timing. */
struct acquire_pct {
	uint64_t count;		/* recorded since start */
	size_t kept;		/* of which the percentiles cover the last */
	int64_t p50_ns;
	int64_t p99_ns;
	int64_t max_ns;
};

struct acquire;

/**
 * Create the acquire stage for @src (kept, not owned).
 * @param err  receives a message naming the offending config key
 * @return 0, -EINVAL, -ENOMEM
 */
int acquire_create(const struct rpmsd_config *cfg, struct source *src,
		   struct sclock *clock, struct stim *stim, struct acquire **out,
		   char *err, size_t errlen);

/** Stop if running, free. Accepts NULL. */
void acquire_destroy(struct acquire *a);

/**
 * Start the thread at SCHED_FIFO @priority (0: normal scheduling), pinned
 * to CPU @cpu (-1: not pinned).
 * @param got_rt  false when the real-time policy was refused
 * @return 0, or -errno from pthread_create (-EINVAL: @cpu not allowed)
 */
int acquire_start(struct acquire *a, int priority, int cpu, bool *got_rt);

/**
 * CLOCK_MONOTONIC time (ns) at which a source read last returned (data or
 * an error) or the thread left its parked state. While parked
 * (acquire_parked() != 0) the thread waits for the main thread on purpose.
 * For the supervisor (any thread).
 */
int64_t acquire_heartbeat(const struct acquire *a);

/**
 * daemon.test_hooks only: make the thread hang after its current read, as
 * if stuck in a driver (no heartbeat, no EMG) until acquire_stop.
 */
void acquire_test_stall(struct acquire *a);

/** Ask the thread to stop and join it. */
void acquire_stop(struct acquire *a);

/** An eventfd that becomes readable when the thread has finished. */
int acquire_done_fd(const struct acquire *a);

/** Readable (eventfd, read it to clear) when the thread parks after a fault. */
int acquire_fault_fd(const struct acquire *a);

/** The read error the thread is parked on, 0 when not parked. */
int acquire_parked(const struct acquire *a);

/**
 * Wake the parked thread: @ok true after the source was reopened (it reads
 * again), false to end acquisition with the read error.
 */
void acquire_resume(struct acquire *a, bool ok);

/** Blocks processed so far (atomic): tells whether a reopen brought data. */
uint64_t acquire_blocks(const struct acquire *a);

/** Samples processed so far (atomic). */
uint64_t acquire_samples(const struct acquire *a);

/**
 * Ask for a copy of the detector bank's running totals (bank.h's
 * bank_tally) at the end of the first block that ends after sample @at
 * (0: the next block): the control thread, for an outcome assessment. One
 * request at a time; asking again before acquire_tally_take replaces it.
 * RT-safe for the acquire thread (it copies a fixed-size struct).
 */
void acquire_tally_request(struct acquire *a, uint64_t at);

/**
 * The copy asked for, once the acquire thread made it: true, with *@out
 * and *@end_sample, the sample after the block it was made at.
 */
bool acquire_tally_take(struct acquire *a, struct bank_tally *out, uint64_t *end_sample);

/** The acquire thread's event ring. */
struct ring *acquire_events(struct acquire *a);

struct emg_tap;

/**
 * Copy every block into @tap's rings (emg.h) from now on; NULL: none.
 * Before acquire_start: the tap (kept, not owned) must hold blocks of
 * source.block_frames frames.
 */
void acquire_set_tap(struct acquire *a, struct emg_tap *tap);

/** Copy the counters (exact once the thread is stopped). */
void acquire_get_stats(const struct acquire *a, struct acquire_stats *st);

/**
 * Calibrate every channel again (control thread): the acquire thread
 * starts a new rest window of detect.calibration_s with its next block,
 * publishes rpms.state "calibrating", then "calibrated" per channel.
 */
void acquire_recalibrate(struct acquire *a);

/** Bit per channel that is calibrated now (atomic). */
unsigned acquire_calibrated(const struct acquire *a);

/** The source (its rate and channel names), for the control thread's reading. */
const struct source *acquire_source(const struct acquire *a);

/**
 * The passive stretches found in the joint angle (source.angle_channel),
 * or NULL without one: stretch_take from the control thread only.
 */
struct stretch *acquire_stretch(const struct acquire *a);

/** Number of EMG channels. */
unsigned acquire_channels(const struct acquire *a);

/** The EMG's sampling rate, Hz. */
double acquire_rate(const struct acquire *a);

/**
 * Hand a new protocol to the acquire thread (one control thread only): it
 * takes a copy between two blocks and uses it from the next request on
 * (closed loop: the next burst onset's; open loop: the next train's).
 * One that was not taken yet is replaced.
 * @return 0, or -EBUSY while the thread is copying the previous one (retry)
 */
int acquire_post_protocol(struct acquire *a, const struct policy_protocol *pp);

/**
 * True until the acquire thread has taken the last posted protocol and,
 * in open loop, the train it had already asked for before (posted ahead
 * of its start) has begun: once false, every train still to begin is of
 * the new protocol.
 */
bool acquire_protocol_pending(const struct acquire *a);

/** Where a motor threshold probe is (acquire_probe_poll). */
enum acquire_probe_state {
	ACQUIRE_PROBE_IDLE = 0,	/* none asked for */
	ACQUIRE_PROBE_PENDING,	/* asked for, the acquire thread has not posted it yet */
	ACQUIRE_PROBE_POSTED,	/* posted to the stim thread: waiting for the pulse */
	ACQUIRE_PROBE_CAPTURING,/* fired: copying the EMG after it */
	ACQUIRE_PROBE_DONE,	/* the window after the pulse is captured */
	ACQUIRE_PROBE_REFUSED,	/* not delivered (the gate refused it: stim_last_refusal) */
	ACQUIRE_PROBE_BUSY,	/* the stim mailbox was full: not posted */
};

/** Longest EMG a probe captures after its pulse, ms. */
#define ACQUIRE_PROBE_MAX_MS 200.0

/**
 * Hold the policy (control thread): while on, no burst onset asks for
 * stimulation and no open-loop train is posted (a motor threshold
 * procedure's single probes are the only pulses).
 */
void acquire_hold(struct acquire *a, bool on);

/**
 * Ask for one probe pulse (control thread, one at a time): the acquire
 * thread posts a single-pulse request at @pct and @width_us to the stim
 * thread between two blocks, the normal path through the safety gate, and
 * once it fired copies @ms (at most ACQUIRE_PROBE_MAX_MS) of channel @ch
 * from the pulse's sample on, the simulated patient's response included.
 * @return 0, -EBUSY (a probe is in progress), -EINVAL
 */
int acquire_probe(struct acquire *a, double pct, uint32_t width_us, unsigned ch, double ms);

/**
 * The probe's state (control thread). At ACQUIRE_PROBE_DONE: @x the
 * captured samples (@n of them, @x[0] at the pulse's sample), @sample
 * that sample and @pulse the pulse's number (stim_pulse_count). Valid
 * until acquire_probe_reset.
 */
enum acquire_probe_state acquire_probe_poll(struct acquire *a, const float **x, size_t *n,
					    uint64_t *sample, uint64_t *pulse);

/**
 * Withdraw a probe the acquire thread has not posted yet (control thread).
 * @return true when withdrawn; false when it was posted (its pulse goes
 *         to the gate) or there was none
 */
bool acquire_probe_cancel(struct acquire *a);

/** Forget a finished probe (DONE, REFUSED or BUSY) so another may be asked for. */
void acquire_probe_reset(struct acquire *a);

/**
 * Percentiles of one kind of timing (main thread, after acquire_stop:
 * allocates a sorted copy).
 * @return 0 or -ENOMEM
 */
int acquire_latency(const struct acquire *a, enum acquire_lat which,
		    struct acquire_pct *out);

#endif /* RPMSD_ACQUIRE_H */
