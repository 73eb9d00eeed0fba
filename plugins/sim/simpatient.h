/* SPDX-License-Identifier: MIT */
/*
 * A simulated patient's motor response to a peripheral magnetic pulse:
 * the M-wave's peak-to-peak amplitude as a sigmoid recruitment curve of
 * the stimulator output, with multiplicative trial-to-trial noise, drawn
 * from a seeded generator so a run repeats exactly.
 *
 * The curve is parametrised by what a threshold test must find: the true
 * threshold T is the output at which the noise-free amplitude is 50 µV,
 * so with the log-normal noise (median on the curve) a pulse at T reaches
 * 50 µV with probability 1/2 exactly: the relative-frequency criterion's
 * "5 of 10" point.
 *
 *     A(I) = max_uv / (1 + exp(-(I - I50) / slope_pct)),
 *     I50  = T + slope_pct * ln(max_uv / 50 - 1)     (so A(T) = 50 µV)
 *     a draw = A(I) * exp(noise * z),  z ~ N(0, 1)
 *
 * Pure: libc and libm only, no thread, no I/O. simpatient_create
 * allocates; every other call is RT-safe (the sim plugin draws on the stim
 * thread).
 */
#ifndef RPMSD_SIMPATIENT_H
#define RPMSD_SIMPATIENT_H

#include <stddef.h>
#include <stdint.h>

/** The criterion amplitude the true threshold is defined by, µV peak-to-peak. */
#define SIMPATIENT_CRITERION_UV 50.0

/** A patient's parameters. */
struct simpatient_params {
	double threshold_pct;	/* true threshold T, % of maximum output, (0, 100] */
	double slope_pct;	/* sigmoid spread, % of maximum output, > 0 */
	double max_uv;		/* maximum M-wave, µV peak-to-peak, > 2 * 50 */
	double noise;		/* SD of the log amplitude, >= 0 (0: no noise) */
	uint64_t seed;		/* the generator's seed */
};

struct simpatient;

/**
 * Create a patient.
 * @param err  receives the parameter at fault ("slope_pct: ...")
 * @return 0, -EINVAL (a parameter out of range), -ENOMEM
 */
int simpatient_create(const struct simpatient_params *prm, struct simpatient **out,
		      char *err, size_t errlen);

/** Free. Accepts NULL. */
void simpatient_destroy(struct simpatient *p);

/** The noise-free amplitude at output @pct, µV peak-to-peak. RT-safe. */
double simpatient_mean_uv(const struct simpatient *p, double pct);

/**
 * Probability that one pulse at output @pct evokes at least @uv µV
 * peak-to-peak (1/2 at the true threshold for 50 µV). RT-safe.
 */
double simpatient_probability(const struct simpatient *p, double pct, double uv);

/** Draw one pulse's amplitude at output @pct, µV peak-to-peak. RT-safe. */
double simpatient_response_uv(struct simpatient *p, double pct);

/** A uniform draw in [0, 1) from the patient's generator (tests). RT-safe. */
double simpatient_uniform(struct simpatient *p);

#endif /* RPMSD_SIMPATIENT_H */
