/* SPDX-License-Identifier: MIT */
/*
 * The safety gate: a pure, table-driven admission check for every pulse.
 *
 * safety_admit() looks at the limits, the gate's state, the request and
 * the time and returns a verdict; it changes nothing. The stim thread
 * calls safety_commit() only after the plugin fired the pulse. Rules are
 * checked in table order and the first one broken is reported with the
 * value it measured and the limit, so every refusal can be explained.
 *
 * There is no other way to a coil pulse: stim.c calls plugin_pulse() only
 * after safety_admit() returned SAFETY_OK for that very request and time.
 */
#ifndef RPMSD_SAFETY_H
#define RPMSD_SAFETY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rpmsd/coil.h>

#include "train_table.h"

struct rpmsd_config;

/** Rules, in the order they are checked. */
enum safety_rule {
	SAFETY_OK = 0,
	SAFETY_ESTOP,		/* the emergency stop input is asserted */
	SAFETY_DISARMED,	/* not armed */
	SAFETY_ACQ_STALE,	/* no fresh EMG within acquisition_timeout_ms */
	SAFETY_COIL_FAULT,	/* plugin reports a latched fault */
	SAFETY_NOT_READY,	/* stimulator not ready */
	SAFETY_COIL_TEMP,	/* coil at or above max_coil_temp_c */
	SAFETY_INTENSITY,	/* intensity above max_intensity_pct */
	SAFETY_DEVICE_INTENSITY,	/* not the intensity the device confirmed by read-back */
	SAFETY_DEVICE_MAX_OUTPUT,	/* above the device's maximum output */
	SAFETY_MAX_FREQUENCY,	/* closer than 1/max_frequency_hz to the last pulse */
	SAFETY_TRAIN_PULSES,	/* train longer than max_train_pulses */
	SAFETY_TRAIN_DURATION,	/* train longer than the table allows at its rate and intensity */
	SAFETY_TRAIN_INTERVAL,	/* new train sooner than min_train_interval_ms */
	SAFETY_DEVICE_RATE,	/* train faster than the device's rate cap at its output */
	SAFETY_DEVICE_SINGLE_RATE,	/* single pulses faster than the device's single-pulse rate */
	SAFETY_DEVICE_TRAIN_GAP,	/* new train sooner than the device's gap between trains */
	SAFETY_DEVICE_ENERGY_WAIT,	/* new train before the energy model's wait after the last */
	SAFETY_DEVICE_ENERGY,	/* more energy in a minute than the energy model allows */
	SAFETY_SESSION_PULSES,	/* more than max_session_pulses in this run */
	SAFETY_DAILY_PULSES,	/* more than max_daily_pulses today */
	SAFETY_UNRECORDED,	/* the pulse is not yet counted in the ledger on disk */
	SAFETY_RULE_COUNT,
};

/** Most steps a device's rate-cap or energy table may have. */
#define SAFETY_DEVICE_STEPS 128
/** Longest device model name kept, with its NUL. */
#define SAFETY_DEVICE_MODEL_MAX 64
/*
 * Trains remembered for the energy model's minute. A train that ends
 * more than a minute ago is forgotten; a full memory with a train still
 * in the minute refuses (device_energy, value infinite), never forgets.
 */
#define SAFETY_DEVICE_TRAINS 256
/*
 * device_intensity tolerance, percentage points: half the 1 % step both
 * Magstim and MagVenture set their output in, so that the device's
 * nearest setting to a fractional request is admitted and nothing else.
 */
#define SAFETY_DEVICE_INTENSITY_TOL 0.5

/**
 * The connected device's envelope (struct rpmsd_coil_envelope), copied
 * into the gate's own memory at start (safety_device_set). present false:
 * no device rules apply. Times in ns; 0 = no such limit.
 */
struct safety_device {
	bool present;
	bool confirms;			/* the device_intensity rule applies */
	char model[SAFETY_DEVICE_MODEL_MAX];
	double max_output_pct;
	struct rpmsd_coil_rate_cap caps[SAFETY_DEVICE_STEPS];
	size_t n_caps;
	int64_t min_train_gap_ns;
	double single_max_hz;
	struct rpmsd_coil_energy_point energy[SAFETY_DEVICE_STEPS];
	size_t n_energy;		/* 0: no energy model */
	double power_w;
	double cutoff_c;		/* the device's coil cut-off, °C; 0: none */
};

/** Limits, from the [safety] section. Times in ns. */
struct safety_limits {
	double max_frequency_hz;
	uint32_t max_train_pulses;
	int64_t min_train_interval_ns;
	double max_intensity_pct;
	double max_coil_temp_c;		/* safety_device_temp_limit may lower it */
	double device_temp_margin_c;
	int64_t acq_timeout_ns;
	double motor_threshold_pct;	/* 0: unknown, no train is admitted */
	struct train_table table;	/* longest train by rate x % motor threshold */
	uint64_t max_session_pulses;
	uint64_t max_daily_pulses;
	struct safety_device dev;	/* the connected device's; not from the config */
};

/** One train the energy model remembers. */
struct safety_train_rec {
	int64_t last_ns;	/* its last pulse */
	uint32_t pulses;
	double intensity_pct;	/* its output */
};

/** What the gate remembers. Owned by the stim thread. */
struct safety_state {
	bool armed;
	bool any_pulse;		/* a pulse was ever delivered */
	int64_t last_pulse_ns;	/* session clock of the last delivered pulse */
	uint32_t train_id;	/* train of the last delivered pulse */
	uint32_t train_pulses;	/* pulses delivered in that train */
	int64_t train_first_ns;	/* its first pulse */
	uint64_t session_pulses;	/* delivered in this run */
	/*
	 * This session's own cap (a course session: its prescription's pulses,
	 * or what the patient's daily cap leaves across rigs), below
	 * max_session_pulses; 0: none. Set at a new session only.
	 */
	uint64_t session_cap;
	uint64_t day_pulses;	/* delivered today, earlier runs included */
	uint64_t day_recorded;	/* today's count as written in the ledger (>= delivered) */
	double train_rate_hz;	/* nominal rate of the last delivered train */
	double train_intensity_pct;	/* its intensity */
	/* energy model: ring of the latest trains, oldest at head */
	struct safety_train_rec trains[SAFETY_DEVICE_TRAINS];
	unsigned trains_head;
	unsigned trains_n;
};

/** One pulse asking to be fired. */
struct safety_request {
	uint32_t train_id;	/* non-zero; a new id starts a new train */
	double frequency_hz;	/* the train's nominal pulse rate; 0 = a single pulse */
	double intensity_pct;
	int64_t acq_age_ns;	/* since the last fresh EMG block; INT64_MAX: none yet */
	bool have_status;	/* coil status below is valid */
	struct rpmsd_coil_status coil;
	double confirmed_pct;	/* the device's read-back output, NAN none; when lim->dev.confirms */
};

/** The answer. value and limit are in the rule's unit (see docs/safety.md). */
struct safety_verdict {
	enum safety_rule rule;	/* SAFETY_OK when admitted */
	double value;		/* what the rule measured */
	double limit;		/* the limit it was held to */
};

/** Fill limits from cfg->safety. */
void safety_limits_from_config(const struct rpmsd_config *cfg,
			       struct safety_limits *lim);

/**
 * Start-up state: disarmed, no history, @day_pulses already delivered
 * today (from the ledger) and nothing more recorded.
 */
void safety_init(struct safety_state *st, uint64_t day_pulses);

/**
 * The pulses this session may deliver in all: safety.max_session_pulses,
 * or the session's own cap (st->session_cap) when that is lower. Pure.
 */
uint64_t safety_session_max(const struct safety_limits *lim, const struct safety_state *st);

/**
 * An earlier run's last pulse was at @at_ns on this session clock
 * (negative: before it started), as the pulse ledger kept it: the first
 * train is held to max_frequency and min_train_interval from it as if it
 * had been fired in this run. Call after safety_init.
 */
void safety_prior_pulse(struct safety_state *st, int64_t at_ns);

/**
 * The ledger on disk now counts @recorded pulses for today (a new day
 * when @new_day: today's delivered count restarts at 0).
 */
void safety_set_recorded(struct safety_state *st, uint64_t recorded, bool new_day);

/** Decide whether the pulse @req may fire at @now_ns. Pure. */
struct safety_verdict safety_admit(const struct safety_limits *lim,
				   const struct safety_state *st,
				   const struct safety_request *req, int64_t now_ns);

/** Record that the pulse @req was delivered at @now_ns. */
void safety_commit(struct safety_state *st, const struct safety_request *req,
		   int64_t now_ns);

/** Arm or disarm. Disarming never fails. */
void safety_set_armed(struct safety_state *st, bool armed);

/**
 * Copy the plugin's envelope @env into @dev (the gate's own memory),
 * checking it: finite non-negative numbers, tables of at most
 * SAFETY_DEVICE_STEPS entries sorted by strictly rising output, a power
 * with an energy table. @env NULL: no envelope (present false).
 * @return 0, or -EINVAL with what is wrong in @err
 */
int safety_device_set(struct safety_device *dev, const struct rpmsd_coil_envelope *env,
		      char *err, size_t errlen);

/**
 * With the device in @lim->dev declaring a coil cut-off: lower
 * @lim->max_coil_temp_c to device_temp_margin_c below it, if that is
 * lower. Called once the device is copied in.
 */
void safety_device_temp_limit(struct safety_limits *lim);

/** Highest train rate the device allows at @pct (INFINITY: no cap, 0: none). RT-safe. */
double safety_device_rate_cap(const struct safety_device *dev, double pct);

/** Energy per pulse at @pct, J (INFINITY above the table; 0 without a model). RT-safe. */
double safety_device_joules(const struct safety_device *dev, double pct);

/**
 * Judge @req with the device's rules only (device_max_output to
 * device_energy; not device_intensity), as safety_admit would. Pure.
 */
struct safety_verdict safety_admit_device(const struct safety_limits *lim,
					  const struct safety_state *st,
					  const struct safety_request *req, int64_t now_ns);

/**
 * Whether the connected device can deliver cfg->stim's protocol: its
 * pulses at their schedule (one burst onset's request in closed loop, the
 * run in open loop, up to two minutes of it) through the device's rules.
 * @return 0 (also without a device), or -EINVAL with the device, the rule
 *         and its numbers in @err; @rule (may be NULL) gets the rule
 */
int safety_device_check(const struct safety_device *dev, const struct rpmsd_config *cfg,
			enum safety_rule *rule, char *err, size_t errlen);

/**
 * Say in words what a device rule's verdict @v means for @req ("requested
 * 40 %, the device confirmed 35 %"), into @buf. Any verdict.
 */
void safety_verdict_text(const struct safety_verdict *v, const struct safety_device *dev,
			 char *buf, size_t len);

/** Stable machine name of a rule ("max_frequency", ...); "unknown" if out of range. */
const char *safety_rule_name(unsigned rule);

/** Unit of a rule's value and limit ("Hz", "pulses", "s", "%", "C", ""). */
const char *safety_rule_unit(unsigned rule);

#endif /* RPMSD_SAFETY_H */
