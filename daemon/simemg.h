/* SPDX-License-Identifier: MIT */
/*
 * A simulated patient's evoked EMG mixed into a replayed recording: for
 * each pulse the sim plugin says a response to (coil ABI 1.2 pulse_info's
 * sim_* members), the stimulus artefact at the pulse's sample and a
 * biphasic M-wave of the drawn peak-to-peak amplitude after its latency,
 * added to the block samples they fall in (docs/plugins-sim.md).
 *
 * The acquire thread queues each pulse's response as it learns of the
 * pulse (after the virtual clock's hand-off in a fast replay, so it always
 * learns of it before the block the M-wave starts in: the onset latency is
 * at least a sample) and mixes every block before anything reads it, so
 * detection, the recording and the threshold probe all see the same EMG.
 *
 * Pure and RT-safe after simemg_create: a fixed queue, no allocation.
 */
#ifndef RPMSD_SIMEMG_H
#define RPMSD_SIMEMG_H

#include <stddef.h>
#include <stdint.h>

/** M-wave duration, ms: one period of a sine, so its peak-to-peak is the amplitude. */
#define SIMEMG_WAVE_MS 10.0
/** The artefact: an alternating decay over this long, ms. */
#define SIMEMG_ARTEFACT_MS 1.5
/** Responses waiting or in progress at once; more are dropped and counted. */
#define SIMEMG_QUEUE 16

struct simemg;

/**
 * Create the mixer for @channels channels at @rate_hz.
 * @return 0, -EINVAL, -ENOMEM
 */
int simemg_create(unsigned channels, double rate_hz, struct simemg **out);

/** Free. Accepts NULL. */
void simemg_destroy(struct simemg *m);

/**
 * Queue a response to a pulse at sample @pulse_sample: @uv peak-to-peak
 * on @channel, @latency_us after the pulse, after an artefact of
 * @artefact_uv. A channel out of range or a full queue drops it (counted).
 * RT-safe.
 */
void simemg_queue(struct simemg *m, uint64_t pulse_sample, unsigned channel, double uv,
		  double latency_us, double artefact_uv);

/**
 * Add what falls in the block of @frames frames from sample @first into
 * @buf (frame-major, channels floats per frame), and retire what is
 * complete. RT-safe.
 */
void simemg_mix(struct simemg *m, float *buf, uint64_t first, size_t frames);

/** Responses dropped (queue full, bad channel, or already past). */
uint64_t simemg_dropped(const struct simemg *m);

/** Responses mixed in so far (whole or begun). */
uint64_t simemg_mixed(const struct simemg *m);

#endif /* RPMSD_SIMEMG_H */
