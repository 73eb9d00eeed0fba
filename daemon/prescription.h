/* SPDX-License-Identifier: MIT */
/*
 * The per-patient prescription of an rPMS course: who (a pseudonymous
 * code), where (target kind, nerve or muscle, side, coil and position), what
 * (a named preset or an explicit protocol), how strong (% of the session's
 * measured motor threshold or % of maximum output) and how often (sessions
 * per course, per day, hours between). An INI file checked with the
 * configuration's typed key machinery; errors read
 * "FILE:LINE: section.key: what is wrong (allowed: ...)".
 *
 * Pure: no database, no session. What the protocol becomes in [stim] keys
 * is held to the configuration's safety checks (prescription_to_config):
 * a preset is checked like any other protocol, never trusted. docs/prescriptions.md.
 */
#ifndef RPMSD_PRESCRIPTION_H
#define RPMSD_PRESCRIPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct rpmsd_config;

#define PRESCRIPTION_PATH_MAX 1024
/** A patient or course code: 1 to 36 characters, so 37 with the NUL. */
#define PRESCRIPTION_ID_MAX 37
#define PRESCRIPTION_NAME_MAX 32	/* a nerve, muscle or preset name */
#define PRESCRIPTION_LIST_MAX 256	/* target.extra_nerves, extra_muscles */
#define PRESCRIPTION_COIL_MAX 64
#define PRESCRIPTION_NOTE_MAX 256
/** Room for every key's line (the table has fewer). */
#define PRESCRIPTION_KEYS_MAX 40
#define PRESCRIPTION_ERR_MAX 512
/** [stim] keys prescription_stim_keys can produce. */
#define PRESCRIPTION_STIM_KEYS_MAX 16

/** target.kind */
enum prescription_target_kind {
	PRESCRIPTION_NERVE_TRUNK = 0,
	PRESCRIPTION_MOTOR_POINT,
};

/** target.side */
enum prescription_side {
	PRESCRIPTION_LEFT = 0,
	PRESCRIPTION_RIGHT,
};

/** protocol.pattern */
enum prescription_pattern {
	PRESCRIPTION_CONTINUOUS = 0,	/* pulses at rate_hz without pause */
	PRESCRIPTION_ON_OFF,		/* trains of on_ms at rate_hz, off_ms apart */
	PRESCRIPTION_THETA_BURST,	/* bursts of theta_burst_pulses, theta_bursts a train */
	PRESCRIPTION_EMG_TRIGGERED,	/* a train of train_pulses at each EMG burst onset */
};

/** Which intensity key was given. */
enum prescription_intensity_kind {
	PRESCRIPTION_INTENSITY_MT = 0,		/* intensity.motor_threshold_pct */
	PRESCRIPTION_INTENSITY_OUTPUT,		/* intensity.max_output_pct */
};

/** Frequency class of a protocol's pulse rate. */
enum prescription_class {
	PRESCRIPTION_CLASS_LOW = 0,		/* <= 5 Hz */
	PRESCRIPTION_CLASS_INTERMEDIATE,	/* above 5, below 10 Hz */
	PRESCRIPTION_CLASS_HIGH,		/* >= 10 Hz */
};

/** A checked prescription. Plain data, copied freely. */
struct prescription {
	char path[PRESCRIPTION_PATH_MAX];	/* file it came from */
	int key_line[PRESCRIPTION_KEYS_MAX];	/* read with prescription_key_line */

	struct {
		char id[PRESCRIPTION_ID_MAX];	/* pseudonymous code, never a name */
	} patient;

	struct {
		char id[PRESCRIPTION_ID_MAX];
		int sessions;			/* in the whole course */
		int sessions_per_day;		/* at most; 1 unless stated */
		double min_hours_between;	/* start to start; 0 = no minimum */
	} course;

	struct {
		enum prescription_target_kind kind;
		char site[PRESCRIPTION_NAME_MAX];	/* a nerve or a muscle */
		char extra_nerves[PRESCRIPTION_LIST_MAX];
		char extra_muscles[PRESCRIPTION_LIST_MAX];
		enum prescription_side side;
		char coil[PRESCRIPTION_COIL_MAX];
		char position[PRESCRIPTION_NOTE_MAX];
	} target;

	struct {
		char preset[PRESCRIPTION_NAME_MAX];	/* "" = explicit */
		enum prescription_pattern pattern;	/* a preset's, once loaded */
		double rate_hz;			/* continuous, on_off, emg_triggered */
		double on_ms;			/* on_off */
		double off_ms;			/* on_off, theta_burst: pause after a train */
		int pulses;			/* per session */
		int train_pulses;		/* emg_triggered: per onset */
		int theta_burst_pulses;
		double theta_frequency_hz;	/* within a burst */
		double theta_period_ms;		/* burst onset to burst onset */
		int theta_bursts;		/* per train */
	} protocol;

	struct {
		enum prescription_intensity_kind kind;	/* derived: the key given */
		double motor_threshold_pct;	/* % of the session's measured threshold */
		double max_output_pct;		/* % of the stimulator's maximum */
	} intensity;
};

/**
 * The NIBS-BIDS timing of a protocol (docs/prescriptions.md). Intervals
 * are onset to onset within a train; the inter-train interval is the pause
 * from the end of a train's on-period to the next train. An interval that
 * does not apply (one burst per train, one train) is 0 and reported n/a.
 */
struct prescription_timing {
	double inter_pulse_interval_s;
	unsigned pulses_per_burst;
	double inter_burst_interval_s;
	unsigned bursts_per_train;
	double inter_train_interval_s;
	bool inter_train_variable;	/* emg_triggered: set by the EMG */
	unsigned trains;		/* per session */
};

/** One [stim] key as a file would hold it. */
struct prescription_stim_key {
	const char *section;		/* "stim" or "safety" (motor_threshold_pct) */
	const char *key;
	char value[32];
};

/**
 * prescription_load() - read and check a prescription file
 * @rx: receives the prescription; untouched on error
 * @path: the file; messages name it as given
 * @err: receives "FILE:LINE: section.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * A preset's protocol is filled in. Not thread-safe (libinih's options are
 * process-wide, as for config_load).
 *
 * Return: 0, -EINVAL for bad content, or a negative errno when the file
 * cannot be opened or read.
 */
int prescription_load(struct prescription *rx, const char *path, char *err, size_t errlen);

/**
 * prescription_key_line() - the line section.@key was set on, 0 if not
 * (kept its default, came from a preset, or an unknown key).
 */
int prescription_key_line(const struct prescription *rx, const char *section, const char *key);

/** The highest pulse rate of the protocol, Hz: within a burst for theta_burst. */
double prescription_rate_hz(const struct prescription *rx);

/** The class of a pulse rate: low <= 5 Hz, high >= 10 Hz, intermediate between. */
enum prescription_class prescription_class_of(double rate_hz);

/** "low", "intermediate" or "high". */
const char *prescription_class_name(enum prescription_class c);

/** The six NIBS-BIDS timing parameters of @rx's protocol. */
void prescription_timing(const struct prescription *rx, struct prescription_timing *t);

/**
 * prescription_timing_json() - @t as a JSON object with units in the names
 * ("inter_pulse_interval_s": 0.02, ...; n/a as null), cut to fit @len.
 */
void prescription_timing_json(const struct prescription_timing *t, char *buf, size_t len);

/**
 * prescription_write_summary() - patient, course, target, protocol,
 * intensity rule, frequency class and the six timing parameters, as text
 * (what rpmsd --check-prescription prints).
 */
void prescription_write_summary(const struct prescription *rx, FILE *f);

/**
 * prescription_stim_keys() - the [stim] keys that run @rx's protocol
 * @rx: a loaded prescription
 * @motor_threshold_pct: the session's measured motor threshold in % of
 *	maximum output, or 0 when not measured yet
 * @keys: receives up to PRESCRIPTION_STIM_KEYS_MAX keys
 * @n: receives how many
 * @err: receives why not
 * @errlen: size of @err
 *
 * The keys are not checked here: run them through config_override and
 * config_recheck (prescription_to_config does), the safety rules of any
 * other protocol. With an intensity in % of the motor threshold, the
 * threshold also becomes safety.motor_threshold_pct.
 *
 * Return: 0, or -EINVAL when the intensity is relative to a motor threshold
 * and @motor_threshold_pct is not above 0.
 */
int prescription_stim_keys(const struct prescription *rx, double motor_threshold_pct,
			   struct prescription_stim_key *keys, size_t *n, char *err, size_t errlen);

/**
 * prescription_to_config() - put @rx's protocol into @cfg and check it
 * @rx: a loaded prescription
 * @motor_threshold_pct: as for prescription_stim_keys
 * @cfg: a loaded configuration; changed only on success
 * @err: receives "PRESCRIPTION: stim.key: problem" (a key's range) or the
 *	configuration's rule ("...: section.key: ... (rule NAME ...)")
 * @errlen: size of @err
 *
 * Each key goes through config_override, then config_recheck: the safety
 * limits, the train table and the gate's own policy check, as for a file.
 *
 * Return: 0, -EINVAL when refused, -ENOMEM.
 */
int prescription_to_config(const struct prescription *rx, double motor_threshold_pct,
			   struct rpmsd_config *cfg, char *err, size_t errlen);

/** The names of the presets, NULL after the last (@i from 0). */
const char *prescription_preset_nth(size_t i);

#endif /* RPMSD_PRESCRIPTION_H */
