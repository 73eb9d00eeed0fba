/* SPDX-License-Identifier: MIT */
/*
 * The motor threshold procedure, as a pure state machine: it says which
 * output to probe next, is told each probe's M-wave amplitude, and ends
 * with the threshold and the number of pulses it took (docs/threshold.md).
 *
 * The method (relative frequency, Rossini 1994 / 2015, searched by a
 * staircase, on whole % of maximum output as devices set them):
 *  1. Bracketing: single pulses, down after a response (>= criterion_uv
 *     peak-to-peak) and up after none, by step_pct, halved at each
 *     reversal down to 1 %; ends at the first reversal at 1 %.
 *  2. Relative frequency: from the last output that responded in step 1,
 *     each output gets up to trials pulses and passes at hits responses
 *     (5 of 10), or fails at trials - hits + 1 misses (pulses that cannot
 *     change the verdict are not given). A pass steps down 1 %, a fail up
 *     1 %; the threshold is the lowest output that passed with the one
 *     below it failed.
 * Outputs stay within [1, cap_pct]; a fail at cap_pct ends the procedure
 * as capped (the threshold is above the cap), and max_pulses bounds it.
 *
 * Also here: the M-wave's peak-to-peak amplitude in a window after a
 * pulse, the stimulus artefact blanked.
 *
 * Pure: no allocation after threshold_create, no I/O, any thread.
 */
#ifndef RPMSD_THRESHOLD_H
#define RPMSD_THRESHOLD_H

#include <stdbool.h>
#include <stddef.h>

/** The procedure's settings. */
struct threshold_params {
	double start_pct;	/* first probe, % of maximum output (default 40) */
	double cap_pct;		/* highest output it may probe (default 100) */
	double step_pct;	/* first step of the bracketing (default 8) */
	double criterion_uv;	/* a response: at least this peak-to-peak (default 50) */
	unsigned hits;		/* responses needed (default 5) ... */
	unsigned trials;	/* ... of this many pulses (default 10) */
	unsigned max_pulses;	/* give up after this many (default 120) */
};

/** Where the procedure is. */
enum threshold_state {
	THRESHOLD_PROBE = 0,	/* give a pulse at the output threshold_next says */
	THRESHOLD_DONE,		/* found: threshold_pct */
	THRESHOLD_CAPPED,	/* no threshold at or below the cap */
	THRESHOLD_LIMIT,	/* max_pulses given without a result */
};

/** The outcome so far. */
struct threshold_result {
	enum threshold_state state;
	double threshold_pct;	/* DONE: the threshold; NAN otherwise */
	unsigned pulses;	/* probes given */
	unsigned phase;		/* 1 bracketing, 2 relative frequency */
};

struct threshold;

/** The defaults above. */
void threshold_defaults(struct threshold_params *p);

/**
 * Check @p and start a procedure.
 * @param err  receives the setting at fault ("cap_pct: ...")
 * @return 0, -EINVAL, -ENOMEM
 */
int threshold_create(const struct threshold_params *p, struct threshold **out, char *err,
		     size_t errlen);

/** Free. Accepts NULL. */
void threshold_destroy(struct threshold *t);

/**
 * What to do next: THRESHOLD_PROBE with the output to probe in @pct (a
 * whole %, within [1, cap]), or the end state (@pct NAN).
 */
enum threshold_state threshold_next(const struct threshold *t, double *pct);

/**
 * The amplitude (µV peak-to-peak) the probe threshold_next asked for
 * evoked; NAN counts as no response.
 * @return 0, or -EALREADY when the procedure has ended
 */
int threshold_feed(struct threshold *t, double amplitude_uv);

/** The outcome so far. */
void threshold_result(const struct threshold *t, struct threshold_result *out);

/** "found", "capped", "limit" or "running". */
const char *threshold_state_name(enum threshold_state s);

/**
 * Peak-to-peak amplitude of one channel in [@win_start_ms, @win_end_ms)
 * after a pulse at sample @pulse of @x (frame-major, @stride floats per
 * frame, @n frames, at @rate_hz), samples before @blank_ms after the pulse
 * left out (the stimulus artefact). NAN when the window holds no sample.
 */
double threshold_p2p(const float *x, size_t n, size_t stride, double rate_hz, size_t pulse,
		     double blank_ms, double win_start_ms, double win_end_ms);

#endif /* RPMSD_THRESHOLD_H */
