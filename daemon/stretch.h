/* SPDX-License-Identifier: MIT */
/*
 * Passive stretches found in a joint-angle signal, each with the angle and
 * the velocity at every channel's first EMG onset during it: the dynamic
 * stretch reflex threshold (DSRT) of that stretch, for the tonic stretch
 * reflex threshold (assess_tsrt, docs/outcomes.md).
 *
 * Runs on the acquire thread: stretch_angle for each block's angle before
 * the detector bank sees the block's EMG, stretch_edge for each channel's
 * own onset and offset as the bank decides it. A stretch is a movement
 * whose angular velocity rose above STRETCH_START_DPS and fell below
 * STRETCH_END_DPS (for STRETCH_END_MS) after at least STRETCH_MIN_DEG of
 * travel. It is handed on STRETCH_SETTLE_S after its end, when every onset
 * dated inside it has been decided. O(1) per sample, no allocation after
 * stretch_create: chrony's rule, samples never allocate.
 */
#ifndef RPMSD_STRETCH_H
#define RPMSD_STRETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

/** Velocity that starts a movement, degrees/s (smoothed, either direction). */
#define STRETCH_START_DPS 10.0
/** Velocity below which a movement ends... */
#define STRETCH_END_DPS 5.0
/** ...when it stays there this long, ms. */
#define STRETCH_END_MS 50.0
/** Least travel of a stretch, degrees: a smaller movement is not one. */
#define STRETCH_MIN_DEG 10.0
/** The velocity smoother's cut-off, Hz (2nd-order Butterworth on the angle). */
#define STRETCH_SMOOTH_HZ 10.0
/** An onset dated this long before the start still belongs to the stretch, s. */
#define STRETCH_GUARD_S 0.05
/** A stretch is handed on this long after it ended: onsets are decided late, s. */
#define STRETCH_SETTLE_S 1.0
/** The velocity at an onset: a least-squares line through the angle over +-this, ms. */
#define STRETCH_SLOPE_MS 25.0
/** Angle history kept for dating onsets, s (longer than any onset's dating). */
#define STRETCH_HISTORY_S 2.0
/** Stretches in progress or settling at once. */
#define STRETCH_PENDING 4

/** What a channel's EMG did during a stretch. */
enum stretch_emg {
	STRETCH_NO_ONSET = 0,	/* no onset dated inside it: no reflex in this range */
	STRETCH_ONSET,		/* an onset: its angle is the stretch's DSRT */
	STRETCH_NOT_AT_REST,	/* active when it began, or from before it: no DSRT */
};

/** One stretch, as handed to the control thread. */
struct stretch_rec {
	uint64_t start;			/* first sample the velocity was above the start level */
	uint64_t end;			/* last sample before it stayed below the end level */
	int dir;			/* +1: the angle rose, -1: it fell */
	float start_deg, end_deg;	/* the angle at start and end */
	float mean_dps;			/* travel / duration, > 0 */
	uint8_t emg[SOURCE_MAX_CHANNELS];	/* enum stretch_emg per channel */
	uint64_t onset[SOURCE_MAX_CHANNELS];	/* STRETCH_ONSET: the dated onset */
	float onset_deg[SOURCE_MAX_CHANNELS];	/* the angle there (the DSRT) */
	float onset_dps[SOURCE_MAX_CHANNELS];	/* the velocity there, in the stretch's
						 * direction (> 0 while stretching) */
};

struct stretch;

/**
 * Create a tracker for @channels EMG channels at @rate_hz.
 * @return 0, -EINVAL, -ENOMEM
 */
int stretch_create(unsigned channels, double rate_hz, struct stretch **out);

/** Free. Accepts NULL. */
void stretch_destroy(struct stretch *s);

/**
 * The angle (degrees) of samples @first .. @first + @n - 1, every sample
 * in order. Finished stretches whose settling time is over are handed on
 * (stretch_take). RT-safe.
 */
void stretch_angle(struct stretch *s, const float *deg, size_t n, uint64_t first);

/**
 * Channel @ch's own detector decided an onset (@onset true) or an offset
 * whose edge is dated at sample @dated. Called after stretch_angle of the
 * block it was decided in. RT-safe.
 */
void stretch_edge(struct stretch *s, unsigned ch, bool onset, uint64_t dated);

/**
 * Samples went missing before @first: stretches in progress or settling
 * are dropped (counted), as their angle or onsets are incomplete. RT-safe.
 */
void stretch_gap(struct stretch *s, uint64_t first);

/**
 * Take the oldest stretch handed on (the consumer's thread, one thread).
 * @return true with @out filled, false if there is none
 */
bool stretch_take(struct stretch *s, struct stretch_rec *out);

/** Stretches dropped: by a gap, or a full hand-off (any thread). */
uint64_t stretch_dropped(const struct stretch *s);

#endif /* RPMSD_STRETCH_H */
