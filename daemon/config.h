/* SPDX-License-Identifier: MIT */
/*
 * rpmsd configuration: one typed key table, an INI file parsed with libinih.
 *
 * Every key has a type, a default, a range, a unit and a one-line doc in the
 * table in config_key.c. Parsing validates each key against the table; the first
 * problem is reported as "FILE:LINE: section.key: what is wrong (allowed: ...)"
 * and the whole file is rejected.
 *
 * Sections named "coil.<plugin>" are not in the table: their keys belong to
 * the coil plugin, are kept raw with their line numbers, and are validated
 * against the plugin's own key table once the plugin is loaded
 * (config_validate_plugin_keys).
 */
#ifndef RPMSD_CONFIG_H
#define RPMSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <stdio.h>

#include "train_table.h"

struct rpmsd_coil_key;

#define CONFIG_PATH_MAX 1024
#define CONFIG_NAME_MAX 64
/** Room for every core key's line in struct rpmsd_config (config_key_line). */
#define CONFIG_KEYS_MAX 160
/*
 * Longest record.session_id (the EDF+ admincode): the header's 80-character
 * recording identification "Startdate DD-MMM-YYYY ADMINCODE X rpmsd-VERSION"
 * must hold it whole, with an equipment name of up to 15 characters.
 */
#define CONFIG_EDF_ADMINCODE_MAX 40
#define CONFIG_ERR_MAX 512
#define CONFIG_MAX_COLUMNS 8
#define CONFIG_MAX_PLUGIN_KEYS 64
/* control.endpoint's default: systemd's RuntimeDirectory=rpmsd */
#define CONFIG_CONTROL_ENDPOINT "ipc:///run/rpmsd/control"

/** Where replay reads its input from. */
enum config_source_type {
	CONFIG_SOURCE_REPLAY = 0,
	CONFIG_SOURCE_IIO,
};

/** Replay file format. */
enum config_replay_format {
	CONFIG_FORMAT_AUTO = 0,	/* decided from the content */
	CONFIG_FORMAT_TEXT,	/* one value per line, '#' header lines */
	CONFIG_FORMAT_CSV,	/* header row, comma separated, pick columns */
	CONFIG_FORMAT_TIMEVALUE,/* two columns "time value", whitespace separated */
};

/** Session recording file format (record.format). */
enum config_record_format {
	CONFIG_RECORD_AUTO = 0,	/* BDF+ when the ADC has more than 16 bits, else EDF+ */
	CONFIG_RECORD_EDF,	/* EDF+, 16-bit samples */
	CONFIG_RECORD_BDF,	/* BDF+, 24-bit samples */
};

/** The course database (course_db.backend). */
enum config_course_db_backend {
	CONFIG_COURSE_DB_SQLITE = 0,
	CONFIG_COURSE_DB_POSTGRESQL,
};

/** What a sham session does instead of stimulating (docs/sham.md). */
enum config_sham_method {
	CONFIG_SHAM_COIL = 0,		/* a second coil on its own output line */
};

/** Envelope estimator. */
enum config_envelope {
	CONFIG_ENVELOPE_RMS = 0,	/* moving root mean square */
	CONFIG_ENVELOPE_TKEO,		/* Teager-Kaiser energy, moving mean, root */
};

/** How an onset is decided (detect.rule). */
enum config_detect_rule {
	CONFIG_RULE_SUSTAINED = 0,	/* the sustained envelope above the onset threshold */
	CONFIG_RULE_CUSUM,		/* a one-sided CUSUM on the envelope's log ratio to rest */
};

/** Which channels make a burst (detect.channel_rule). */
enum config_channel_rule {
	CONFIG_CHANNEL_ANY = 0,		/* any channel starts it, the last one ends it */
	CONFIG_CHANNEL_ALL,		/* every channel active */
	CONFIG_CHANNEL_NAMED,		/* only detect.channel_rule's channel */
};

/** What a burst onset starts. */
enum config_protocol {
	CONFIG_PROTOCOL_SINGLE = 0,	/* one pulse */
	CONFIG_PROTOCOL_TRAIN,		/* stim.train_pulses at stim.train_frequency_hz */
	CONFIG_PROTOCOL_ONOFF,		/* trains of on_ms at train_frequency_hz, off_ms apart */
	CONFIG_PROTOCOL_THETA,		/* theta burst: bursts of pulses at 50 Hz every 200 ms */
};

/** Who starts stimulation (stim.mode). */
enum config_stim_mode {
	CONFIG_MODE_CLOSED_LOOP = 0,	/* a burst onset starts the protocol */
	CONFIG_MODE_OPEN_LOOP,		/* the protocol runs to stim.open_loop_pulses */
};

/** Log level. */
enum config_log_level {
	CONFIG_LOG_ERROR = 3,
	CONFIG_LOG_WARNING = 4,
	CONFIG_LOG_INFO = 6,
	CONFIG_LOG_DEBUG = 7,
};

/** A raw key=value of a [coil.<name>] section, validated later. */
struct config_plugin_kv {
	char key[CONFIG_NAME_MAX];
	char value[CONFIG_PATH_MAX];
	int line;
};

/** The whole validated configuration. Plain data, copied freely. */
struct rpmsd_config {
	char path[CONFIG_PATH_MAX];	/* file it came from, "" for defaults */
	int key_line[CONFIG_KEYS_MAX];	/* where each core key was set; read with config_key_line */

	struct {
		enum config_log_level log_level;
		bool arm_on_start;		/* demo only: arm at start-up */
		char plugin_dir[CONFIG_PATH_MAX];/* extra plugin directory, "" none */
		int acquire_priority;		/* SCHED_FIFO priority, 0 = no RT */
		int stim_priority;		/* SCHED_FIFO priority, 0 = no RT */
		char state_dir[CONFIG_PATH_MAX];	/* pulse ledger; relative: to the file */
		bool require_rt;		/* refuse to start without real time */
		int acquire_cpu;		/* CPU the acquire thread runs on, -1 any */
		int stim_cpu;			/* CPU the stim thread runs on, -1 any */
		bool cpu_dma_latency;		/* hold /dev/cpu_dma_latency at 0 */
		int heartbeat_timeout_ms;	/* an RT thread silent this long is hung */
		bool test_hooks;		/* SIGUSR2 stalls the acquire thread */
	} daemon;

	struct {
		enum config_source_type type;
		char file[CONFIG_PATH_MAX];	/* relative paths: to the config file */
		enum config_replay_format format;
		char column[CONFIG_PATH_MAX];	/* "1", "trial3" or "1,3"; 1-based numbers */
		double rate_hz;			/* 0 = from the file header */
		double scale_uv;		/* µV per file unit */
		bool realtime;			/* pace at the sampling rate */
		int block_frames;		/* frames per block */
		/* IIO only */
		char uri[CONFIG_PATH_MAX];	/* libiio context URI */
		char device[CONFIG_NAME_MAX];	/* name, id or index */
		char channels[CONFIG_PATH_MAX];	/* comma-separated channel ids */
		double gain;			/* amplifier gain (divides) */
		int kernel_buffers;		/* 0 = leave the driver's */
		char trigger[CONFIG_NAME_MAX];	/* "" = leave as it is */
		int timeout_ms;			/* a refill waits this long */
		int reopen_ms;			/* first back-off; 0 = never reopen */
		int reopen_max_ms;		/* back-off doubles up to this */
		int reopen_attempts;		/* in a row without data; 0 = forever */
		/* a joint-angle input beside the EMG, never fed to the detectors */
		char angle_channel[CONFIG_NAME_MAX];	/* replay: csv column; iio: channel id; "" none */
		double angle_scale_deg;		/* degrees per file unit (iio: per channel unit) */
		double angle_offset_deg;	/* degrees added after the scale */
	} source;

	struct {
		double highpass_hz;
		double lowpass_hz;		/* clamped below Nyquist */
		int mains_hz;			/* 0, 50 or 60 */
		double notch_q;
		int filter_order;		/* 2 or 4 (Butterworth) */
		int mains_harmonics;		/* notches at mains x 1..N */
		double limit;			/* clip at this x the rest envelope, 0 = off */
		enum config_envelope envelope;
		double envelope_ms;		/* moving RMS window */
	} dsp;

	struct {
		double calibration_start_s;	/* rest window start */
		double calibration_s;		/* rest window length */
		double k_on;			/* onset: baseline + k_on * spread */
		double k_off;			/* offset: baseline + k_off * spread */
		double on_ms;			/* time above onset threshold to confirm */
		double dip_ms;			/* dips shorter than this don't break it */
		double off_ms;			/* time below offset threshold to end */
		double sustain_ms;		/* span of the sustained envelope */
		int sustain_skip;		/* quietest windows in it ignored */
		double k_edge;			/* back-dating: envelope within k_edge spreads of rest */
		enum config_detect_rule rule;	/* how an onset is decided */
		double cusum_k;			/* cusum: drift, spreads above rest (log scale) */
		double cusum_cap;		/* cusum: most evidence per ms */
		double cusum_h;			/* cusum: evidence that decides, spread x ms */
		double blanking_ms;		/* ignore EMG after each of our pulses */
		char channel[CONFIG_NAME_MAX];	/* detect.channel_rule as written */
		enum config_channel_rule channel_rule;	/* derived from it */
	} detect;

	struct {
		char plugin[CONFIG_NAME_MAX];
		enum config_stim_mode mode;
		enum config_protocol protocol;
		int train_pulses;
		double train_frequency_hz;
		double on_ms;			/* onoff: length of each train */
		double off_ms;			/* onoff, theta: pause between trains */
		int cycles;			/* onoff, theta: trains per start */
		int theta_bursts;		/* bursts per theta-burst train */
		int theta_burst_pulses;		/* pulses per burst */
		double theta_frequency_hz;	/* pulse rate within a burst */
		double theta_period_ms;		/* burst onset to burst onset */
		int open_loop_pulses;		/* open loop: pulses to deliver */
		double intensity_pct;
		int pulse_width_us;
		double refractory_ms;		/* after a train ends, before the next */
	} stim;

	struct {
		double max_frequency_hz;
		int max_train_pulses;
		double min_train_interval_ms;
		double max_intensity_pct;
		double max_coil_temp_c;
		double device_temp_margin_c;
		double acquisition_timeout_ms;	/* no fresh EMG for this long: disarm */
		double motor_threshold_pct;	/* patient's motor threshold, % output; 0 unset */
		char train_table_file[CONFIG_PATH_MAX];	/* "" = built-in */
		int max_session_pulses;
		int max_daily_pulses;
		int ledger_reserve_pulses;	/* recorded ahead of delivery */
		char day_zone[CONFIG_NAME_MAX + 1];	/* the zone max_daily_pulses' days are in */
		struct train_table train_table;	/* derived: loaded or built-in */
	} safety;

	struct {
		char endpoint[CONFIG_PATH_MAX];
		int ring_records;		/* per producer ring, power of two */
		int sndhwm;			/* ZeroMQ high-water mark, messages */
		double heartbeat_s;
		bool emg_stream;		/* publish rpms.emg */
		int emg_decimation;		/* rpms.emg: every Nth sample */
		char curve_server_secret_file[CONFIG_PATH_MAX];	/* "" = no CURVE */
		char curve_allowed_keys[CONFIG_PATH_MAX];	/* file or directory */
	} publish;

	struct {
		char directory[CONFIG_PATH_MAX];	/* "" = no recording */
		char name[CONFIG_PATH_MAX];	/* strftime pattern, {patient} {session} */
		enum config_record_format format;
		double range_uv;		/* physical range +-, 0 = the amplifier's */
		double record_s;		/* EDF data record duration */
		double buffer_s;		/* EMG the ring to the recorder holds */
		char patient_id[CONFIG_NAME_MAX];
		char session_id[CONFIG_NAME_MAX];
	} record;

	struct {
		char endpoint[CONFIG_PATH_MAX];	/* ipc:// or tcp:// */
		char curve_server_secret_file[CONFIG_PATH_MAX];	/* "" = no CURVE */
		char curve_allowed_keys[CONFIG_PATH_MAX];	/* file or directory */
	} control;

	struct {
		char prescriptions[CONFIG_PATH_MAX];	/* "" = no courses */
		char rig[CONFIG_NAME_MAX];		/* "" = the host name */
	} course;

	struct {
		enum config_course_db_backend backend;
		char path[CONFIG_PATH_MAX];		/* "" = state_dir/course.db */
		char conninfo[CONFIG_PATH_MAX];		/* libpq */
		char journal[CONFIG_PATH_MAX];		/* "" = state_dir/course-journal.db */
		int busy_timeout_ms;
	} course_db;

	struct {
		char allocation[CONFIG_PATH_MAX];	/* "" = no blinding */
		char statistician_public_key[CONFIG_PATH_MAX];
		char audit[CONFIG_PATH_MAX];		/* "" = state_dir/blind-audit */
		enum config_sham_method sham_method;
		char sham_plugin[CONFIG_NAME_MAX];	/* "" = stim.plugin */
		char course_id[CONFIG_NAME_MAX];	/* the start-up session's, "" none */
	} blind;

	/* replay only: a simulated patient answering any plugin's pulses (stim.c) */
	struct {
		double threshold_pct;		/* 0 = none */
		double slope_pct;
		double max_uv;
		double noise;
		int seed;
		int channel;
		double latency_ms;
		double artefact_uv;
	} sim_patient;

	/* [coil.<plugin>] raw keys; only the section for stim.plugin is used */
	char plugin_section[CONFIG_NAME_MAX];	/* name after "coil.", "" none */
	int plugin_section_line;
	struct config_plugin_kv plugin_kv[CONFIG_MAX_PLUGIN_KEYS];
	size_t n_plugin_kv;
	/* true in config_sham_coil's copy: plugin_* above are the sham coil's */
	bool plugin_is_sham;

	/* [sham_coil.<plugin>] raw keys, for blind.sham_plugin (docs/sham.md) */
	char sham_section[CONFIG_NAME_MAX];	/* name after "sham_coil.", "" none */
	int sham_section_line;
	struct config_plugin_kv sham_kv[CONFIG_MAX_PLUGIN_KEYS];
	size_t n_sham_kv;
};

/** The timing of one train of the configured protocol (config_train_shape). */
struct config_train_shape {
	unsigned pulses;		/* per train */
	double rate_hz;			/* within a burst; 0 = single pulse */
	unsigned burst_pulses;		/* pulses per burst (= pulses unless theta) */
	double burst_period_s;		/* burst to burst; 0 = one burst */
	double on_s;			/* the train's own length: pulses / rate, bursts x period */
	unsigned cycles;		/* trains per start (closed loop) */
	double cycle_period_s;		/* first pulse to next train's first pulse */
	double gap_s;			/* last pulse to next train's first pulse */
};

/** Compute the shape of one train of cfg->stim's protocol. */
void config_train_shape(const struct rpmsd_config *cfg, struct config_train_shape *sh);

/**
 * Resolve @file against the directory of cfg->path (absolute paths are
 * kept). @return 0 or -ENAMETOOLONG
 */
int config_resolve(const struct rpmsd_config *cfg, const char *file, char *out, size_t outlen);

/**
 * The line of cfg->path where section.@key was set, for messages about
 * its value found after loading ("FILE:LINE: section.key: ...").
 * @return the line, or 0 when the key kept its default (or is unknown)
 */
int config_key_line(const struct rpmsd_config *cfg, const char *section, const char *key);

/**
 * config_rule_band() - the band-pass rule: the high-pass corner below the
 * low-pass one. The one statement of it: config_load and config_recheck
 * check dsp.highpass_hz against dsp.lowpass_hz with it, dsp_chain_create
 * against the low-pass corner it clamps below Nyquist. Any thread, RT-safe.
 * @return true when @highpass_hz < @lowpass_hz (false for NaN)
 */
bool config_rule_band(double highpass_hz, double lowpass_hz);

/**
 * config_rule_hysteresis() - the detector's rule: detect.k_off below
 * detect.k_on, so that a burst ends below the level that started it. The
 * one statement of it, for config_load, config_recheck and detect_create.
 * Any thread, RT-safe.
 * @return true when @k_off < @k_on (false for NaN)
 */
bool config_rule_hysteresis(double k_off, double k_on);

/*
 * The scope of a key, from its entry in the key table (config_key.c): the
 * one statement of what may change while running and of what is a limit.
 */
/** Changes while running: "set" takes the live [stim] keys, SIGHUP every live key. */
#define CONFIG_KEY_LIVE 0x1u
/** A safety limit that "set" is held to; the control socket's status reports it. */
#define CONFIG_KEY_LIMIT 0x2u

/**
 * config_key_live() - whether section.key may change while the daemon runs
 * @section: the key's section
 * @key: the key
 *
 * The live [stim] keys are the protocol, which "set" and SIGHUP change
 * through the same checks; daemon.log_level is applied by SIGHUP. Any other
 * key takes a restart. Any thread.
 *
 * Return: true for a live key, false for any other or an unknown one.
 */
bool config_key_live(const char *section, const char *key);

/**
 * config_key_nth() - the @i-th key of @section with @flag, in table order
 * @section: a section of the table
 * @flag: CONFIG_KEY_LIVE or CONFIG_KEY_LIMIT (either, when both)
 * @i: from 0
 *
 * Return: the key's name (static), or NULL past the last. Any thread.
 */
const char *config_key_nth(const char *section, unsigned flag, size_t i);

/**
 * Fill @cfg with the defaults of the key table.
 */
void config_defaults(struct rpmsd_config *cfg);

/**
 * Parse and validate an INI file on top of the defaults.
 * @param cfg   receives the configuration; untouched on error
 * @param path  file to read
 * @param err   receives "FILE:LINE: section.key: problem (allowed: ...)"
 * @return 0, or -EINVAL (bad content), or -errno from opening the file
 */
int config_load(struct rpmsd_config *cfg, const char *path, char *err, size_t errlen);

/* No recording is read from the file (a tool's INPUT, or none needed): source.file may be unset. */
#define CONFIG_LOAD_INPUT_GIVEN 0x1u

/**
 * config_load with CONFIG_LOAD_* @flags.
 * @return as config_load
 */
int config_load_flags(struct rpmsd_config *cfg, const char *path, unsigned flags,
		      char *err, size_t errlen);

/**
 * Set one key from outside a file (a command-line option named @origin),
 * parsed and range-checked as in a file. safety.train_table is loaded
 * here (its errors reported as ORIGIN: safety.train_table: ...).
 * @return 0, or -EINVAL with "ORIGIN: section.key: problem" in @err
 */
int config_override(struct rpmsd_config *cfg, const char *origin, const char *section,
		    const char *key, const char *value, char *err, size_t errlen);

/**
 * The value of section.@key in @cfg as text, as a file would hold it
 * ("train", "20", "true"); cut to fit @len.
 * @return 0, or -ENOENT for an unknown key
 */
int config_value_text(const struct rpmsd_config *cfg, const char *section, const char *key,
		      char *buf, size_t len);

/**
 * Check the rules between keys (and set derived fields) after overrides.
 * Reads no file: the protocol is held to cfg->safety.train_table as loaded
 * (config_load, or config_override of safety.train_table), never to the
 * table file as it is now on disk.
 * @return 0, or -EINVAL with "ORIGIN: section.key: problem" in @err
 */
int config_recheck(struct rpmsd_config *cfg, const char *origin, char *err, size_t errlen);

/**
 * Validate the raw [coil.<name>] keys against a plugin's key table.
 * Reports unknown keys and bad values with file and line like config_load.
 * @return 0 or -EINVAL
 */
int config_validate_plugin_keys(const struct rpmsd_config *cfg,
				const struct rpmsd_coil_key *keys, size_t n_keys,
				char *err, size_t errlen);

/**
 * The sham coil's view of @cfg: a copy of it whose plugin section and
 * keys are [sham_coil.<plugin>]'s, for plugin_load/plugin_open of the
 * sham coil (its messages then name sham_coil.<plugin>.key).
 */
void config_sham_coil(const struct rpmsd_config *cfg, struct rpmsd_config *out);

/** The sham coil's plugin: blind.sham_plugin, else stim.plugin. */
const char *config_sham_plugin(const struct rpmsd_config *cfg);

/**
 * Look up the effective value of a plugin key as text: the configured raw
 * value if set, otherwise the declared default. NULL if not declared.
 */
const char *config_plugin_value(const struct rpmsd_config *cfg,
				const struct rpmsd_coil_key *keys, size_t n_keys,
				const char *key);

/**
 * Resolve source.file against the config file's directory into @out.
 * @return 0 or -ENAMETOOLONG
 */
int config_source_path(const struct rpmsd_config *cfg, char *out, size_t outlen);

/**
 * Write a complete, commented configuration listing every key with its
 * default, range, unit and meaning (the content of config/rpmsd.conf).
 */
void config_write_template(FILE *f);

/** Called by config_diff with a key that differs. */
typedef void (*config_diff_fn)(const char *section, const char *key, void *arg);

/**
 * Call @fn for every key whose value differs between @a and @b: the core
 * keys in table order (safety.train_table also when the same file name
 * holds different cells), then the [coil.<name>] keys as written in the
 * files (section "coil.<name>"; a different coil section is reported once
 * as key "(section)").
 */
void config_diff(const struct rpmsd_config *a, const struct rpmsd_config *b,
		 config_diff_fn fn, void *arg);

#endif /* RPMSD_CONFIG_H */
