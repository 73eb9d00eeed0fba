/* SPDX-License-Identifier: MIT */
/*
 * The configuration's key table: the single source of truth. Parsing,
 * defaults, error messages, config/rpmsd.conf and what may change while
 * running are all derived from it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "config_private.h"
#include "zone.h"

/* The table stores enums through int pointers. */
_Static_assert(sizeof(enum config_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_source_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_replay_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_envelope) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_detect_rule) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_record_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_course_db_backend) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_sham_method) == sizeof(int), "enum size");

#define CONFIG_KEY_FIELD(m)						\
	.offset = offsetof(struct rpmsd_config, m),			\
	.size = sizeof(((struct rpmsd_config *)NULL)->m)

const char *const config_key_sections[] = {
	"daemon", "source", "dsp", "detect", "stim", "safety", "publish", "record",
	"control", "course", "course_db", "blind", "sim_patient",
};

const size_t config_key_n_sections =
	sizeof(config_key_sections) / sizeof(config_key_sections[0]);


static const struct config_enum config_key_log_levels[] = {
	{ "error", CONFIG_LOG_ERROR },
	{ "warning", CONFIG_LOG_WARNING },
	{ "info", CONFIG_LOG_INFO },
	{ "debug", CONFIG_LOG_DEBUG },
	{ NULL, 0 },
};

static const struct config_enum config_key_source_types[] = {
	{ "replay", CONFIG_SOURCE_REPLAY },
	{ "iio", CONFIG_SOURCE_IIO },
	{ NULL, 0 },
};

static const struct config_enum config_key_formats[] = {
	{ "auto", CONFIG_FORMAT_AUTO },
	{ "text", CONFIG_FORMAT_TEXT },
	{ "csv", CONFIG_FORMAT_CSV },
	{ "timevalue", CONFIG_FORMAT_TIMEVALUE },
	{ NULL, 0 },
};

static const struct config_enum config_key_mains[] = {
	{ "0", 0 },
	{ "50", 50 },
	{ "60", 60 },
	{ NULL, 0 },
};

static const struct config_enum config_key_orders[] = {
	{ "2", 2 },
	{ "4", 4 },
	{ NULL, 0 },
};

static const struct config_enum config_key_envelopes[] = {
	{ "rms", CONFIG_ENVELOPE_RMS },
	{ "tkeo", CONFIG_ENVELOPE_TKEO },
	{ NULL, 0 },
};

static const struct config_enum config_key_rules[] = {
	{ "sustained", CONFIG_RULE_SUSTAINED },
	{ "cusum", CONFIG_RULE_CUSUM },
	{ NULL, 0 },
};

const struct config_enum config_key_protocols[] = {
	{ "single", CONFIG_PROTOCOL_SINGLE },
	{ "train", CONFIG_PROTOCOL_TRAIN },
	{ "onoff", CONFIG_PROTOCOL_ONOFF },
	{ "theta_burst", CONFIG_PROTOCOL_THETA },
	{ NULL, 0 },
};

static const struct config_enum config_key_course_db_backends[] = {
	{ "sqlite", CONFIG_COURSE_DB_SQLITE },
	{ "postgresql", CONFIG_COURSE_DB_POSTGRESQL },
	{ NULL, 0 },
};

static const struct config_enum config_key_sham_methods[] = {
	{ "coil", CONFIG_SHAM_COIL },
	{ NULL, 0 },
};

static const struct config_enum config_key_record_formats[] = {
	{ "auto", CONFIG_RECORD_AUTO },
	{ "edf", CONFIG_RECORD_EDF },
	{ "bdf", CONFIG_RECORD_BDF },
	{ NULL, 0 },
};

static const struct config_enum config_key_modes[] = {
	{ "closed_loop", CONFIG_MODE_CLOSED_LOOP },
	{ "open_loop", CONFIG_MODE_OPEN_LOOP },
	{ NULL, 0 },
};

const struct config_key config_key_table[] = {
	/* [daemon] */
	{
		.section = "daemon", .key = "log_level",
		.type = CONFIG_TYPE_ENUM, .def = "info",
		.values = config_key_log_levels, .unit = "",
		.doc = "Least severe message that is logged.",
		.live = true,
		CONFIG_KEY_FIELD(daemon.log_level),
	}, {
		.section = "daemon", .key = "arm_on_start",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Arm the coil at start-up without a command: demo and bench rigs only, never with a patient.",
		CONFIG_KEY_FIELD(daemon.arm_on_start),
	}, {
		.section = "daemon", .key = "plugin_dir",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a directory, or empty for none",
		.doc = "Extra directory searched first for coil plugins.",
		CONFIG_KEY_FIELD(daemon.plugin_dir),
	}, {
		.section = "daemon", .key = "acquire_priority",
		.type = CONFIG_TYPE_INT, .def = "80", .min = 0, .max = 98,
		.unit = "",
		.doc = "SCHED_FIFO priority of the acquire thread, 0 = normal scheduling.",
		CONFIG_KEY_FIELD(daemon.acquire_priority),
	}, {
		.section = "daemon", .key = "stim_priority",
		.type = CONFIG_TYPE_INT, .def = "90", .min = 0, .max = 98,
		.unit = "",
		.doc = "SCHED_FIFO priority of the stim thread, 0 = normal scheduling.",
		CONFIG_KEY_FIELD(daemon.stim_priority),
	}, {
		.section = "daemon", .key = "state_dir",
		.type = CONFIG_TYPE_STRING, .def = "/var/lib/rpmsd", .unit = "",
		.allowed = "an existing directory (systemd's StateDirectory=)",
		.doc = "Where the pulse ledger (pulses delivered today, kept across restarts) is written; one rpmsd per directory.",
		CONFIG_KEY_FIELD(daemon.state_dir),
	}, {
		.section = "daemon", .key = "require_rt",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Refuse to start unless memory is locked, both RT threads get SCHED_FIFO and /dev/cpu_dma_latency is held (when asked for); without it these only warn.",
		CONFIG_KEY_FIELD(daemon.require_rt),
	}, {
		.section = "daemon", .key = "acquire_cpu",
		.type = CONFIG_TYPE_INT, .def = "-1", .min = -1, .max = 1023,
		.unit = "",
		.allowed = "a CPU number the daemon may run on, or -1 for any",
		.doc = "CPU the acquire thread is pinned to (e.g. one isolated with isolcpus=); -1 = not pinned.",
		CONFIG_KEY_FIELD(daemon.acquire_cpu),
	}, {
		.section = "daemon", .key = "stim_cpu",
		.type = CONFIG_TYPE_INT, .def = "-1", .min = -1, .max = 1023,
		.unit = "",
		.allowed = "a CPU number the daemon may run on, or -1 for any",
		.doc = "CPU the stim thread is pinned to; -1 = not pinned.",
		CONFIG_KEY_FIELD(daemon.stim_cpu),
	}, {
		.section = "daemon", .key = "cpu_dma_latency",
		.type = CONFIG_TYPE_BOOL, .def = "true", .unit = "",
		.doc = "Hold /dev/cpu_dma_latency at 0 while running, so the CPUs stay out of deep idle states that take long to leave (paced runs only).",
		CONFIG_KEY_FIELD(daemon.cpu_dma_latency),
	}, {
		.section = "daemon", .key = "heartbeat_timeout_ms",
		.type = CONFIG_TYPE_INT, .def = "500", .min = 50, .max = 10000,
		.unit = "ms",
		.doc = "An RT thread that has not shown progress for this long is hung: the supervisor disarms the coil, refuses arming and stops feeding the systemd watchdog.",
		CONFIG_KEY_FIELD(daemon.heartbeat_timeout_ms),
	}, {
		.section = "daemon", .key = "test_hooks",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Testing only: SIGUSR2 makes the acquire thread hang (to prove the supervisor and the systemd watchdog). Never on a patient rig.",
		CONFIG_KEY_FIELD(daemon.test_hooks),
	},
	/* [source] */
	{
		.section = "source", .key = "type",
		.type = CONFIG_TYPE_ENUM, .def = "replay",
		.values = config_key_source_types, .unit = "",
		.doc = "Where the EMG comes from: replay reads a recording, iio an amplifier through libiio.",
		CONFIG_KEY_FIELD(source.type),
	}, {
		.section = "source", .key = "file",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file; required when type = replay",
		.doc = "EMG recording to replay, relative to the directory of this file.",
		CONFIG_KEY_FIELD(source.file),
	}, {
		.section = "source", .key = "format",
		.type = CONFIG_TYPE_ENUM, .def = "auto",
		.values = config_key_formats, .unit = "",
		.doc = "Recording format: auto = decide from the content, text = one value a line, csv = header row and columns, timevalue = 'time value' lines.",
		CONFIG_KEY_FIELD(source.format),
	}, {
		.section = "source", .key = "column",
		.type = CONFIG_TYPE_STRING, .def = "1", .unit = "",
		.allowed = "at most 8 comma-separated column numbers (from 1) or CSV header names",
		.check = config_check_column,
		.doc = "Column(s) to read: 1-based numbers or CSV header names.",
		CONFIG_KEY_FIELD(source.column),
	}, {
		.section = "source", .key = "rate_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 100000,
		.unit = "Hz", .allowed = "0, or 100 to 100000",
		.check = config_check_rate,
		.doc = "Sampling rate: replay: 0 = from the file's header; iio: written to the device's sampling_frequency, 0 = the device's own.",
		CONFIG_KEY_FIELD(source.rate_hz),
	}, {
		.section = "source", .key = "scale_uv",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 1e-9, .max = 1e9,
		.unit = "µV per file unit",
		.doc = "Microvolts per unit of the values in the file.",
		CONFIG_KEY_FIELD(source.scale_uv),
	}, {
		.section = "source", .key = "realtime",
		.type = CONFIG_TYPE_BOOL, .def = "true", .unit = "",
		.doc = "Pace the replay at the sampling rate (--fast overrides).",
		CONFIG_KEY_FIELD(source.realtime),
	}, {
		.section = "source", .key = "block_frames",
		.type = CONFIG_TYPE_INT, .def = "8", .min = 1, .max = 4096,
		.unit = "frames",
		.doc = "Frames handed to the signal chain at a time (iio: the buffer size; small is fast).",
		CONFIG_KEY_FIELD(source.block_frames),
	}, {
		.section = "source", .key = "uri",
		.type = CONFIG_TYPE_STRING, .def = "local:", .unit = "",
		.allowed = "a libiio URI: local:, ip:HOST",
		.doc = "iio: where the device is (libiio context URI).",
		CONFIG_KEY_FIELD(source.uri),
	}, {
		.section = "source", .key = "device",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a device name, an id such as iio:device0, or an index; required when type = iio",
		.doc = "iio: the amplifier's IIO device.",
		CONFIG_KEY_FIELD(source.device),
	}, {
		.section = "source", .key = "channels",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "1 to 8 comma-separated channel ids such as voltage0; required when type = iio",
		.doc = "iio: the EMG channels, in this order.",
		CONFIG_KEY_FIELD(source.channels),
	}, {
		.section = "source", .key = "gain",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 1e-6, .max = 1e9,
		.unit = "",
		.doc = "iio: amplifier gain in front of the ADC; samples are divided by it.",
		CONFIG_KEY_FIELD(source.gain),
	}, {
		.section = "source", .key = "kernel_buffers",
		.type = CONFIG_TYPE_INT, .def = "4", .min = 0, .max = 64,
		.unit = "blocks",
		.doc = "iio: blocks the kernel queues, 0 = leave the driver's setting.",
		CONFIG_KEY_FIELD(source.kernel_buffers),
	}, {
		.section = "source", .key = "trigger",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a trigger device name, or empty to leave it as it is",
		.doc = "iio: the trigger to set on the device.",
		CONFIG_KEY_FIELD(source.trigger),
	}, {
		.section = "source", .key = "timeout_ms",
		.type = CONFIG_TYPE_INT, .def = "1000", .min = 10, .max = 60000,
		.unit = "ms",
		.doc = "iio: a read that waits this long for data is a fault (the coil is disarmed sooner, by safety.acquisition_timeout_ms).",
		CONFIG_KEY_FIELD(source.timeout_ms),
	}, {
		.section = "source", .key = "reopen_ms",
		.type = CONFIG_TYPE_INT, .def = "200", .min = 0, .max = 60000,
		.unit = "ms",
		.doc = "iio: after a read error, timeout or vanished device, wait this long and open the device again; 0 = end the session instead.",
		CONFIG_KEY_FIELD(source.reopen_ms),
	}, {
		.section = "source", .key = "reopen_max_ms",
		.type = CONFIG_TYPE_INT, .def = "5000", .min = 10, .max = 600000,
		.unit = "ms",
		.doc = "iio: the wait doubles after each failed attempt, up to this.",
		CONFIG_KEY_FIELD(source.reopen_max_ms),
	}, {
		.section = "source", .key = "reopen_attempts",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 0, .max = 1000000,
		.unit = "attempts",
		.doc = "iio: give up (end the session) after this many attempts in a row that bring no data; 0 = never give up.",
		CONFIG_KEY_FIELD(source.reopen_attempts),
	}, {
		.section = "source", .key = "angle_channel",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "\"\", a csv column (number or header name) of the replay, or an IIO channel id",
		.doc = "A joint-angle input (goniometer, encoder) for assess stretch: read beside the EMG, never fed to the burst detectors, recorded as its own signal in degrees; \"\" = none.",
		CONFIG_KEY_FIELD(source.angle_channel),
	}, {
		.section = "source", .key = "angle_scale_deg",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = -1e9, .max = 1e9,
		.unit = "degrees per unit", .allowed = "not 0",
		.check = config_check_nonzero,
		.doc = "Degrees per unit of the angle channel (replay: the file's unit; iio: the channel's scaled unit, millivolts for a voltage channel); negative turns the direction round.",
		CONFIG_KEY_FIELD(source.angle_scale_deg),
	}, {
		.section = "source", .key = "angle_offset_deg",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = -3600, .max = 3600,
		.unit = "degrees",
		.doc = "Added to the angle after angle_scale_deg: the joint's zero.",
		CONFIG_KEY_FIELD(source.angle_offset_deg),
	},
	/* [dsp] */
	{
		.section = "dsp", .key = "highpass_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "20", .min = 1, .max = 1000,
		.unit = "Hz",
		.doc = "High-pass cutoff of the EMG band-pass.",
		CONFIG_KEY_FIELD(dsp.highpass_hz),
	}, {
		.section = "dsp", .key = "lowpass_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "450", .min = 10, .max = 5000,
		.unit = "Hz",
		.doc = "Low-pass cutoff of the EMG band-pass, above highpass_hz (clamped below Nyquist at run time).",
		CONFIG_KEY_FIELD(dsp.lowpass_hz),
	}, {
		.section = "dsp", .key = "mains_hz",
		.type = CONFIG_TYPE_ENUM, .def = "50",
		.values = config_key_mains, .unit = "Hz",
		.doc = "Nominal mains frequency whose hum (and harmonics) the mains canceller subtracts, following the line within 2 Hz of it; 0 = none.",
		CONFIG_KEY_FIELD(dsp.mains_hz),
	}, {
		.section = "dsp", .key = "notch_q",
		.type = CONFIG_TYPE_DOUBLE, .def = "30", .min = 1, .max = 100,
		.unit = "",
		.doc = "Quality factor of the notch the mains canceller makes at each harmonic once settled (it follows the line's frequency): higher is narrower.",
		CONFIG_KEY_FIELD(dsp.notch_q),
	}, {
		.section = "dsp", .key = "filter_order",
		.type = CONFIG_TYPE_ENUM, .def = "4",
		.values = config_key_orders, .unit = "",
		.doc = "Butterworth order of each of the high-pass and the low-pass.",
		CONFIG_KEY_FIELD(dsp.filter_order),
	}, {
		.section = "dsp", .key = "mains_harmonics",
		.type = CONFIG_TYPE_INT, .def = "5", .min = 1, .max = 8,
		.unit = "",
		.doc = "Harmonics the mains canceller follows: mains_hz x 1..N (those inside the band-pass and below Nyquist); 1 = the fundamental only.",
		CONFIG_KEY_FIELD(dsp.mains_harmonics),
	}, {
		.section = "dsp", .key = "limit",
		.type = CONFIG_TYPE_DOUBLE, .def = "6", .min = 0, .max = 10000,
		.unit = "x rest",
		.doc = "After calibration, the raw EMG's excursion from its slow level is clipped at this many times its rest level (the larger of the rest envelope and the excursion without the mains hum, which the canceller subtracts first) before any filter, so a spike or electrode pop cannot make the filters ring into a burst; until then (and during a recalibration) a sample beyond 100 times the running median excursion is dropped as an artefact instead; 0 = never clip or drop.",
		CONFIG_KEY_FIELD(dsp.limit),
	}, {
		.section = "dsp", .key = "envelope",
		.type = CONFIG_TYPE_ENUM, .def = "rms",
		.values = config_key_envelopes, .unit = "",
		.doc = "Envelope estimator: rms = moving root mean square; tkeo = root of the moving mean of the Teager-Kaiser energy (sharper onsets, one sample later).",
		CONFIG_KEY_FIELD(dsp.envelope),
	}, {
		.section = "dsp", .key = "envelope_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "5", .min = 5, .max = 1000,
		.unit = "ms",
		.doc = "Window of the envelope.",
		CONFIG_KEY_FIELD(dsp.envelope_ms),
	},
	/* [detect] */
	{
		.section = "detect", .key = "calibration_start_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 3600,
		.unit = "s",
		.doc = "Start of the rest window that sets the baseline, from the start of the session.",
		CONFIG_KEY_FIELD(detect.calibration_start_s),
	}, {
		.section = "detect", .key = "calibration_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "2", .min = 0.2, .max = 600,
		.unit = "s",
		.doc = "Length of the rest window; the patient must be at rest during it.",
		CONFIG_KEY_FIELD(detect.calibration_s),
	}, {
		.section = "detect", .key = "k_on",
		.type = CONFIG_TYPE_DOUBLE, .def = "3.5", .min = 1, .max = 100,
		.unit = "",
		.doc = "Onset threshold: the rest envelope's median + k_on x its spread (1.4826 MAD), which the sustained envelope (detect.sustain_ms) must exceed (detect.rule = sustained; with cusum it only judges the calibration window).",
		CONFIG_KEY_FIELD(detect.k_on),
	}, {
		.section = "detect", .key = "k_off",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 0.5, .max = 100,
		.unit = "",
		.doc = "Offset threshold: median + k_off x spread of the rest envelope, below k_on.",
		CONFIG_KEY_FIELD(detect.k_off),
	}, {
		.section = "detect", .key = "on_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "Extra time the onset rule must keep holding (detect.rule: the sustained envelope above the onset threshold, or the cusum evidence above cusum_h; both already reject transients); 0 = decide at once.",
		CONFIG_KEY_FIELD(detect.on_ms),
	}, {
		.section = "detect", .key = "dip_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "10", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "Dips of the onset rule (below the onset threshold, or below cusum_h) shorter than this do not break an onset.",
		CONFIG_KEY_FIELD(detect.dip_ms),
	}, {
		.section = "detect", .key = "off_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "200", .min = 0, .max = 5000,
		.unit = "ms",
		.doc = "Time below the offset threshold that ends a burst; longer than a clonus gap.",
		CONFIG_KEY_FIELD(detect.off_ms),
	}, {
		.section = "detect", .key = "sustain_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "30", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "Thresholds apply to the quietest of the envelope windows (dsp.envelope_ms each) over this span: transients shorter than it minus one window are never bursts.",
		CONFIG_KEY_FIELD(detect.sustain_ms),
	}, {
		.section = "detect", .key = "sustain_skip",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 0, .max = 4,
		.unit = "windows",
		.doc = "The sustained envelope ignores this many of its quietest windows (the ripple of a 5 ms envelope inside a burst); a transient must then last about sustain_ms minus (skip + 1) windows to count.",
		CONFIG_KEY_FIELD(detect.sustain_skip),
	}, {
		.section = "detect", .key = "k_edge",
		.type = CONFIG_TYPE_DOUBLE, .def = "0.5", .min = 0, .max = 100,
		.unit = "",
		.doc = "Onset dating: the onset is the start of the stretch before the decision whose envelope stands, summed, highest above the rest level + k_edge spreads (a change-point search over the last 0.5 s).",
		CONFIG_KEY_FIELD(detect.k_edge),
	}, {
		.section = "detect", .key = "rule",
		.type = CONFIG_TYPE_ENUM, .def = "sustained",
		.values = config_key_rules, .unit = "",
		.doc = "How an onset is decided: sustained = the sustained envelope (detect.sustain_ms) above the onset threshold (detect.k_on); cusum = evidence piled up by a one-sided CUSUM on the envelope's log ratio to the rest level (detect.cusum_k, cusum_cap, cusum_h), which decides sooner, most of all for weak and slow rises (docs/detection.md compares the two). Either way the offset, detect.on_ms and detect.dip_ms work as they do for sustained.",
		CONFIG_KEY_FIELD(detect.rule),
	}, {
		.section = "detect", .key = "cusum_k",
		.type = CONFIG_TYPE_DOUBLE, .def = "1.5", .min = 0, .max = 100,
		.unit = "spreads",
		.doc = "cusum: the envelope adds evidence while it stands more than cusum_k spreads above the rest median (measured as ln(envelope / median) x median / spread, which is envelope - median in spreads near rest and grows only logarithmically above it) and drains it while below.",
		CONFIG_KEY_FIELD(detect.cusum_k),
	}, {
		.section = "detect", .key = "cusum_cap",
		.type = CONFIG_TYPE_DOUBLE, .def = "2.5", .min = 0.01, .max = 100,
		.unit = "spreads",
		.doc = "cusum: the most evidence one millisecond of envelope can add, whatever its height, so that a transient shorter than cusum_h / cusum_cap ms (an electrode pop, a motion spike) cannot decide an onset alone.",
		CONFIG_KEY_FIELD(detect.cusum_cap),
	}, {
		.section = "detect", .key = "cusum_h",
		.type = CONFIG_TYPE_DOUBLE, .def = "50", .min = 0.01, .max = 100000,
		.unit = "spread x ms",
		.doc = "cusum: the evidence that decides an onset: at least cusum_h / cusum_cap ms (20 ms at the defaults) of envelope at the cap, longer for a weaker rise.",
		CONFIG_KEY_FIELD(detect.cusum_h),
	}, {
		.section = "detect", .key = "blanking_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "50", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "EMG held at its last clean value after each of our pulses (stimulation artefact, M-wave).",
		CONFIG_KEY_FIELD(detect.blanking_ms),
	}, {
		.section = "detect", .key = "channel_rule",
		.type = CONFIG_TYPE_STRING, .def = "any", .unit = "",
		.allowed = "any, all, or the name of one channel",
		.doc = "Which channels make a burst: any (the first to start starts it, the last to stop ends it), all (every channel active), or one named channel.",
		CONFIG_KEY_FIELD(detect.channel),
	},
	/* [stim] */
	{
		.section = "stim", .key = "plugin",
		.type = CONFIG_TYPE_STRING, .def = "sim", .unit = "",
		.allowed = "1 to 63 characters of a-z, 0-9, _ and -",
		.check = config_check_plugin,
		.doc = "Coil plugin to load; its own keys go in [coil.<plugin>].",
		CONFIG_KEY_FIELD(stim.plugin),
	}, {
		.section = "stim", .key = "mode",
		.type = CONFIG_TYPE_ENUM, .def = "closed_loop",
		.values = config_key_modes, .unit = "",
		.doc = "closed_loop: each burst onset starts the protocol (then refractory_ms); open_loop: the protocol runs from arming until open_loop_pulses are delivered, whatever the EMG.",
		CONFIG_KEY_FIELD(stim.mode),
	}, {
		.section = "stim", .key = "protocol",
		.type = CONFIG_TYPE_ENUM, .def = "single",
		.values = config_key_protocols, .unit = "",
		.doc = "single = one pulse; train = train_pulses at train_frequency_hz; onoff = cycles trains of on_ms at train_frequency_hz, each followed by off_ms; theta_burst = cycles trains of theta_bursts bursts, each followed by off_ms.",
		.live = true,
		CONFIG_KEY_FIELD(stim.protocol),
	}, {
		.section = "stim", .key = "train_pulses",
		.type = CONFIG_TYPE_INT, .def = "5", .min = 1, .max = 1000,
		.unit = "",
		.doc = "Pulses in a train, at most safety.max_train_pulses.",
		.live = true,
		CONFIG_KEY_FIELD(stim.train_pulses),
	}, {
		.section = "stim", .key = "train_frequency_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "20", .min = 0.1, .max = 100,
		.unit = "Hz",
		.doc = "Pulse rate in a train, at most safety.max_frequency_hz.",
		.live = true,
		CONFIG_KEY_FIELD(stim.train_frequency_hz),
	}, {
		.section = "stim", .key = "on_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "1000", .min = 1, .max = 60000,
		.unit = "ms",
		.doc = "onoff: length of each train (its pulses: train_frequency_hz x on_ms, rounded).",
		.live = true,
		CONFIG_KEY_FIELD(stim.on_ms),
	}, {
		.section = "stim", .key = "off_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "2000", .min = 0, .max = 600000,
		.unit = "ms",
		.doc = "onoff, theta_burst (and open loop): the off-period after each train's on-period, so trains start every on-period + off_ms (25 Hz, 1 s on / 2 s off: one every 3 s). The on-period is the train's pulses / rate, one pulse period past its last pulse (theta_burst: theta_bursts x theta_period_ms), so with onoff the last pulse of a train comes off_ms + 1 / train_frequency_hz before the next train's first. Single pulses in open loop come off_ms apart. Open loop: also the pause, from a refused pulse, before the rest of the request.",
		.live = true,
		CONFIG_KEY_FIELD(stim.off_ms),
	}, {
		.section = "stim", .key = "cycles",
		.type = CONFIG_TYPE_INT, .def = "1", .min = 1, .max = 100000,
		.unit = "",
		.doc = "onoff, theta_burst: trains started by one burst onset (closed loop) or per block (open loop).",
		.live = true,
		CONFIG_KEY_FIELD(stim.cycles),
	}, {
		.section = "stim", .key = "theta_bursts",
		.type = CONFIG_TYPE_INT, .def = "10", .min = 1, .max = 1000,
		.unit = "",
		.doc = "theta_burst: bursts in one train (10 bursts every 200 ms = the 2 s train of intermittent theta burst).",
		.live = true,
		CONFIG_KEY_FIELD(stim.theta_bursts),
	}, {
		.section = "stim", .key = "theta_burst_pulses",
		.type = CONFIG_TYPE_INT, .def = "3", .min = 1, .max = 20,
		.unit = "",
		.doc = "theta_burst: pulses in one burst.",
		.live = true,
		CONFIG_KEY_FIELD(stim.theta_burst_pulses),
	}, {
		.section = "stim", .key = "theta_frequency_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "50", .min = 1, .max = 100,
		.unit = "Hz",
		.doc = "theta_burst: pulse rate within a burst, at most safety.max_frequency_hz.",
		.live = true,
		CONFIG_KEY_FIELD(stim.theta_frequency_hz),
	}, {
		.section = "stim", .key = "theta_period_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "200", .min = 10, .max = 10000,
		.unit = "ms",
		.doc = "theta_burst: from one burst's first pulse to the next (200 ms = 5 Hz, theta).",
		.live = true,
		CONFIG_KEY_FIELD(stim.theta_period_ms),
	}, {
		.section = "stim", .key = "open_loop_pulses",
		.type = CONFIG_TYPE_INT, .def = "1200", .min = 1, .max = 1000000,
		.unit = "",
		.doc = "open_loop: pulses to deliver, then the coil is disarmed; at most safety.max_session_pulses.",
		CONFIG_KEY_FIELD(stim.open_loop_pulses),
	}, {
		.section = "stim", .key = "intensity_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "30", .min = 0, .max = 100,
		.unit = "%",
		.doc = "Stimulator output in % of its maximum, at most safety.max_intensity_pct.",
		.live = true,
		CONFIG_KEY_FIELD(stim.intensity_pct),
	}, {
		.section = "stim", .key = "pulse_width_us",
		.type = CONFIG_TYPE_INT, .def = "100", .min = 1, .max = 10000,
		.unit = "µs",
		.doc = "Width of the trigger pulse sent to the stimulator.",
		.live = true,
		CONFIG_KEY_FIELD(stim.pulse_width_us),
	}, {
		.section = "stim", .key = "refractory_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "1000", .min = 0, .max = 600000,
		.unit = "ms",
		.doc = "Quiet time after a pulse or train ends before the next may start.",
		.live = true,
		CONFIG_KEY_FIELD(stim.refractory_ms),
	},
	/* [safety] */
	{
		.section = "safety", .key = "max_frequency_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "25", .min = 0.1, .max = 100,
		.unit = "Hz",
		.doc = "Highest pulse rate ever allowed.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.max_frequency_hz),
	}, {
		.section = "safety", .key = "max_train_pulses",
		.type = CONFIG_TYPE_INT, .def = "50", .min = 1, .max = 10000,
		.unit = "",
		.doc = "Most pulses ever allowed in one train.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.max_train_pulses),
	}, {
		.section = "safety", .key = "min_train_interval_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "500", .min = 0, .max = 3600000,
		.unit = "ms",
		.doc = "Shortest time ever allowed between two trains.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.min_train_interval_ms),
	}, {
		.section = "safety", .key = "max_intensity_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "60", .min = 0, .max = 100,
		.unit = "%",
		.doc = "Highest stimulator output ever allowed.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.max_intensity_pct),
	}, {
		.section = "safety", .key = "max_coil_temp_c",
		.type = CONFIG_TYPE_DOUBLE, .def = "40", .min = 20, .max = 80,
		.unit = "°C",
		.doc = "Coil temperature above which the coil is not fired.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.max_coil_temp_c),
	}, {
		.section = "safety", .key = "device_temp_margin_c",
		.type = CONFIG_TYPE_DOUBLE, .def = "5", .min = 0, .max = 30,
		.unit = "°C",
		.doc = "With a device that declares its coil cut-off (e.g. Magstim 40 °C): the coil is not fired within this margin of it.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.device_temp_margin_c),
	}, {
		.section = "safety", .key = "acquisition_timeout_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "250", .min = 10, .max = 10000,
		.unit = "ms",
		.doc = "No fresh EMG block for this long: no pulse is admitted and the coil is disarmed (must exceed one block).",
		CONFIG_KEY_FIELD(safety.acquisition_timeout_ms),
	}, {
		.section = "safety", .key = "motor_threshold_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 100,
		.unit = "%",
		.doc = "The patient's resting motor threshold in % of stimulator output, measured this session; 0 = not measured (then only single pulses are possible): the train table is in % of it.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.motor_threshold_pct),
	}, {
		.section = "safety", .key = "train_table",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a CSV file (docs/safety.md), or empty for the built-in table",
		.doc = "Longest train by pulse rate x intensity (% of motor threshold); empty = the built-in table transcribed from Wassermann 1998, Table 4.",
		CONFIG_KEY_FIELD(safety.train_table_file),
	}, {
		.section = "safety", .key = "max_session_pulses",
		.type = CONFIG_TYPE_INT, .def = "6000", .min = 1, .max = 10000000,
		.unit = "",
		.doc = "Most pulses delivered in one session: since the last session_start command on the control socket, or since rpmsd started when none was given.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.max_session_pulses),
	}, {
		.section = "safety", .key = "max_daily_pulses",
		.type = CONFIG_TYPE_INT, .def = "12000", .min = 1, .max = 10000000,
		.unit = "",
		.doc = "Most pulses delivered in one calendar day of safety.day_zone, counted across restarts in the ledger in daemon.state_dir.",
		.limit = true,
		CONFIG_KEY_FIELD(safety.max_daily_pulses),
	}, {
		.section = "safety", .key = "ledger_reserve_pulses",
		.type = CONFIG_TYPE_INT, .def = "200", .min = 1, .max = 100000,
		.unit = "",
		.doc = "Pulses written to the ledger before they are delivered: after a crash the day's count may be this much too high, never too low.",
		CONFIG_KEY_FIELD(safety.ledger_reserve_pulses),
	}, {
		.section = "safety", .key = "day_zone",
		.type = CONFIG_TYPE_STRING, .def = "UTC", .unit = "",
		.allowed = "UTC, or an IANA time zone name such as Europe/Berlin (a file in " ZONE_DIR ")",
		.check = config_check_zone,
		.doc = "The time zone whose calendar days max_daily_pulses counts: a day ends at its midnight, whatever TZ or system zone rpmsd runs with. Set the clinic's zone.",
		CONFIG_KEY_FIELD(safety.day_zone),
	},
	/* [publish] */
	{
		.section = "publish", .key = "endpoint",
		.type = CONFIG_TYPE_STRING, .def = "tcp://127.0.0.1:5560",
		.unit = "",
		.allowed = "tcp://ADDRESS, ipc://PATH or inproc://NAME",
		.check = config_check_endpoint,
		.doc = "ZeroMQ endpoint that events and status are published on. The events carry patient and session ids and the EMG: bound beyond this host (tcp on an address other than loopback) the stream must be encrypted, with subscribers let in by key (curve_server_secret_file, curve_allowed_keys).",
		CONFIG_KEY_FIELD(publish.endpoint),
	}, {
		.section = "publish", .key = "ring_records",
		.type = CONFIG_TYPE_INT, .def = "4096", .min = 64, .max = 1048576,
		.unit = "", .allowed = "64 to 1048576, a power of two",
		.check = config_check_pow2,
		.doc = "Records in each producer's ring to the publisher.",
		CONFIG_KEY_FIELD(publish.ring_records),
	}, {
		.section = "publish", .key = "sndhwm",
		.type = CONFIG_TYPE_INT, .def = "10000", .min = 1, .max = 1000000,
		.unit = "messages",
		.doc = "ZeroMQ send high-water mark: messages queued for a slow subscriber before dropping.",
		CONFIG_KEY_FIELD(publish.sndhwm),
	}, {
		.section = "publish", .key = "heartbeat_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 0.1, .max = 60,
		.unit = "s",
		.doc = "Interval between heartbeat messages.",
		CONFIG_KEY_FIELD(publish.heartbeat_s),
	}, {
		.section = "publish", .key = "emg_stream",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Publish the filtered EMG and its envelope on rpms.emg (a JSON header frame and a float32 frame, docs/events.md), for tools/rpms-scope.",
		CONFIG_KEY_FIELD(publish.emg_stream),
	}, {
		.section = "publish", .key = "emg_decimation",
		.type = CONFIG_TYPE_INT, .def = "10", .min = 1, .max = 1000,
		.unit = "samples",
		.doc = "rpms.emg carries every Nth sample (those whose index is a multiple of N; no anti-alias filter: for display).",
		CONFIG_KEY_FIELD(publish.emg_decimation),
	}, {
		.section = "publish", .key = "curve_server_secret_file",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file readable by its owner only, holding the server's Z85 secret key (rpmsctl keygen), or empty for no encryption",
		.doc = "CURVE: encrypt the event stream and authenticate every subscriber; required to bind a tcp address other than loopback.",
		CONFIG_KEY_FIELD(publish.curve_server_secret_file),
	}, {
		.section = "publish", .key = "curve_allowed_keys",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file, or a directory of files, with one subscriber's Z85 public key per line, writable by its owner only (root or the daemon's user), in directories others cannot write (unless sticky); required with curve_server_secret_file",
		.doc = "CURVE: the subscribers let in, by public key; any other subscriber gets nothing and the refusal is logged.",
		CONFIG_KEY_FIELD(publish.curve_allowed_keys),
	},
	/* [record] */
	{
		.section = "record", .key = "directory",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "an existing directory, or empty for no recording",
		.doc = "Where each session's EDF+/BDF+ recording is written (raw EMG of every channel, bursts, pulses, refusals, state changes as annotations); empty = no recording.",
		CONFIG_KEY_FIELD(record.directory),
	}, {
		.section = "record", .key = "name",
		.type = CONFIG_TYPE_STRING, .def = "rpmsd_{patient}_{session}_%Y%m%d_%H%M%S",
		.unit = "", .allowed = "a file name pattern: strftime conversions (local time), {patient}, {session}; no '/'",
		.check = config_check_file_name,
		.doc = "File name of a recording without its extension (.edf or .bdf is added; an existing file is never overwritten: -1, -2, ... is appended).",
		CONFIG_KEY_FIELD(record.name),
	}, {
		.section = "record", .key = "format",
		.type = CONFIG_TYPE_ENUM, .def = "auto",
		.values = config_key_record_formats, .unit = "",
		.doc = "auto = BDF+ (24-bit) when the amplifier's ADC has more than 16 bits, else EDF+ (16-bit); edf; bdf.",
		CONFIG_KEY_FIELD(record.format),
	}, {
		.section = "record", .key = "range_uv",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 1e7,
		.unit = "µV",
		.doc = "Physical range of every channel, -range to +range (the digital step is range / 32767 in EDF+, range / 8388607 in BDF+; values beyond it are clipped and counted); 0 = the amplifier's (IIO: scale x ADC range / gain), or 10000 when the source does not know it (replay).",
		CONFIG_KEY_FIELD(record.range_uv),
	}, {
		.section = "record", .key = "record_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 0.01, .max = 60,
		.unit = "s",
		.doc = "Duration of one EDF data record (the sampling rate x it must be a whole number); after a crash the file is readable up to its last complete record.",
		CONFIG_KEY_FIELD(record.record_s),
	}, {
		.section = "record", .key = "buffer_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "10", .min = 0.1, .max = 600,
		.unit = "s",
		.doc = "EMG held for the recording thread while the disk is slow; beyond it samples are lost (counted, published on rpms.record, zero-filled and annotated in the file), never waited for.",
		CONFIG_KEY_FIELD(record.buffer_s),
	}, {
		.section = "record", .key = "patient_id",
		.type = CONFIG_TYPE_STRING, .def = "X", .unit = "",
		.allowed = "1 to 63 printable ASCII characters, no spaces",
		.check = config_check_edf_id,
		.doc = "Patient code in the recording's EDF+ header (X = unknown); until the control socket's session command sets it.",
		CONFIG_KEY_FIELD(record.patient_id),
	}, {
		.section = "record", .key = "session_id",
		.type = CONFIG_TYPE_STRING, .def = "X", .unit = "",
		.allowed = "1 to 40 printable ASCII characters, no spaces",
		.check = config_check_edf_admincode,
		.doc = "Session code (the EDF+ admincode) in the recording's header (X = unknown); until the control socket's session command sets it.",
		CONFIG_KEY_FIELD(record.session_id),
	},
	/* [control] */
	{
		.section = "control", .key = "endpoint",
		.type = CONFIG_TYPE_STRING, .def = CONFIG_CONTROL_ENDPOINT,
		.unit = "",
		.allowed = "ipc://PATH (relative: to this file's directory) or tcp://ADDRESS:PORT; an address other than loopback needs CURVE",
		.check = config_check_control_endpoint,
		.doc = "ZeroMQ endpoint of the control socket (JSON requests: status, arm, disarm, calibrate, sessions, set; docs/control.md). An ipc socket is made mode 0660: the directory and its group decide who may use it; a path that holds anything but a socket (a file, a directory) is refused, never replaced. /run/rpmsd is the systemd unit's RuntimeDirectory=; when the default is kept and that directory does not exist, rpmsd runs without a control socket (and says so).",
		CONFIG_KEY_FIELD(control.endpoint),
	}, {
		.section = "control", .key = "curve_server_secret_file",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file readable by its owner only, holding the server's Z85 secret key (rpmsctl keygen), or empty for no encryption",
		.doc = "CURVE: encrypt the control socket and authenticate every client; required to bind a tcp address other than loopback.",
		CONFIG_KEY_FIELD(control.curve_server_secret_file),
	}, {
		.section = "control", .key = "curve_allowed_keys",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file, or a directory of files, with one client's Z85 public key per line, writable by its owner only (root or the daemon's user), in directories others cannot write (unless sticky); required with curve_server_secret_file",
		.doc = "CURVE: the clients let in, by public key; any other client is refused and the refusal logged.",
		CONFIG_KEY_FIELD(control.curve_allowed_keys),
	}, {
		.section = "course", .key = "prescriptions",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a directory of prescription files (docs/prescriptions.md), relative: to this file's directory; empty for no courses",
		.doc = "Where session_start finds a course's prescription (FILE.rx whose course.id is the course asked for). Empty: sessions are not part of a course and the course database is not opened.",
		CONFIG_KEY_FIELD(course.prescriptions),
	}, {
		.section = "course", .key = "rig",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a name of 1 to 63 letters, digits, '-', '_' or '.', or empty for the host name",
		.doc = "This rig's name in the course database: which rig treated a session.",
		CONFIG_KEY_FIELD(course.rig),
	}, {
		.section = "course_db", .key = "backend",
		.type = CONFIG_TYPE_ENUM, .def = "sqlite", .unit = "",
		.values = config_key_course_db_backends,
		.doc = "The course database: sqlite (a file on this rig) or postgresql (a server several rigs share; pulses are journalled on this rig first).",
		CONFIG_KEY_FIELD(course_db.backend),
	}, {
		.section = "course_db", .key = "path",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file path, relative: to this file's directory; empty for course.db in daemon.state_dir",
		.doc = "The SQLite course database (course_db.backend = sqlite).",
		CONFIG_KEY_FIELD(course_db.path),
	}, {
		.section = "course_db", .key = "conninfo",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a libpq connection string (keyword=value ...); required with backend postgresql",
		.doc = "How to reach the PostgreSQL server (course_db.backend = postgresql).",
		CONFIG_KEY_FIELD(course_db.conninfo),
	}, {
		.section = "course_db", .key = "journal",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file path, relative: to this file's directory; empty for course-journal.db in daemon.state_dir",
		.doc = "PostgreSQL: the local journal every pulse count and session end is written to before the server, so an outage loses nothing.",
		CONFIG_KEY_FIELD(course_db.journal),
	}, {
		.section = "course_db", .key = "busy_timeout_ms",
		.type = CONFIG_TYPE_INT, .def = "5000", .min = 100, .max = 600000,
		.unit = "ms",
		.doc = "SQLite: how long a write waits for another process's lock before it fails.",
		CONFIG_KEY_FIELD(course_db.busy_timeout_ms),
	}, {
		.section = "blind", .key = "allocation",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "the trial statistician's allocation file (docs/sham.md): mode 0600, owned by the daemon's user; relative: to this file's directory; empty for no blinding",
		.doc = "Which arm (active or sham) and which blinded arm code each course has. Set: session_start needs a course_id in it; the stream and the recording carry the code, never the arm.",
		CONFIG_KEY_FIELD(blind.allocation),
	}, {
		.section = "blind", .key = "statistician_public_key",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a key file with the statistician's Z85 public key (rpmsctl keygen); required with allocation",
		.doc = "The key each session's true arm is sealed to (libsodium sealed box): only its secret key opens the audit (rpmsctl unblind).",
		CONFIG_KEY_FIELD(blind.statistician_public_key),
	}, {
		.section = "blind", .key = "audit",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file path, relative: to this file's directory; empty for blind-audit in daemon.state_dir",
		.doc = "The sealed audit: one sealed record per session start (patient, course, session, time, arm), appended and fsynced; rpmsctl unblind appends its own records.",
		CONFIG_KEY_FIELD(blind.audit),
	}, {
		.section = "blind", .key = "sham_method",
		.type = CONFIG_TYPE_ENUM, .def = "coil", .unit = "",
		.values = config_key_sham_methods,
		.doc = "What a sham session fires: coil = the sham coil ([sham_coil.<plugin>], its own output line) instead of the active coil, through the same gate, ledger and timings.",
		CONFIG_KEY_FIELD(blind.sham_method),
	}, {
		.section = "blind", .key = "sham_plugin",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a plugin name, or empty for stim.plugin's; its keys go in [sham_coil.<plugin>]",
		.doc = "The sham coil's plugin. Its device envelope must equal the active coil's (the gate must judge both alike).",
		CONFIG_KEY_FIELD(blind.sham_plugin),
	}, {
		.section = "blind", .key = "course_id",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a course id of the allocation file, or empty",
		.doc = "The course of the session rpmsd starts with (record.patient_id, record.session_id), e.g. a --fast replay: its arm is sealed and its coil chosen before the stim thread starts. Empty: only control sessions (session_start with course_id) are blinded, and the coil is armed only in one.",
		CONFIG_KEY_FIELD(blind.course_id),
	},
	/*
	 * [sim_patient]: testing only, replay only (config_rule.c refuses it
	 * with any other source): a plugin without a patient of its own (the
	 * serial and spi stimulators) gets one here, drawn at the output the
	 * device confirmed (docs/threshold.md).
	 */
	{
		.section = "sim_patient", .key = "threshold_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 100,
		.unit = "% MSO", .allowed = "0 (no patient), or above 0 up to 100",
		.doc = "Testing only, source.type = replay only: a simulated patient's true motor threshold, the output whose median M-wave is 50 uV peak-to-peak; it answers each pulse of a plugin that has no patient of its own, at the output the device confirmed, mixed into the replayed EMG. 0 = none.",
		CONFIG_KEY_FIELD(sim_patient.threshold_pct),
	}, {
		.section = "sim_patient", .key = "slope_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "2", .min = 0.1, .max = 50,
		.unit = "% MSO",
		.doc = "Simulated patient: spread of the sigmoid recruitment curve.",
		CONFIG_KEY_FIELD(sim_patient.slope_pct),
	}, {
		.section = "sim_patient", .key = "max_uv",
		.type = CONFIG_TYPE_DOUBLE, .def = "2000", .min = 101, .max = 100000,
		.unit = "µV",
		.doc = "Simulated patient: maximum M-wave, peak-to-peak.",
		CONFIG_KEY_FIELD(sim_patient.max_uv),
	}, {
		.section = "sim_patient", .key = "noise",
		.type = CONFIG_TYPE_DOUBLE, .def = "0.2", .min = 0, .max = 2,
		.unit = "",
		.doc = "Simulated patient: trial-to-trial noise, SD of the log amplitude.",
		CONFIG_KEY_FIELD(sim_patient.noise),
	}, {
		.section = "sim_patient", .key = "seed",
		.type = CONFIG_TYPE_INT, .def = "1", .min = 0, .max = 2147483647,
		.unit = "",
		.doc = "Simulated patient: seed of its noise (the same seed, the same draws).",
		CONFIG_KEY_FIELD(sim_patient.seed),
	}, {
		.section = "sim_patient", .key = "channel",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 0, .max = 7,
		.unit = "",
		.doc = "Simulated patient: replayed EMG channel (0 = the first) the responses appear on.",
		CONFIG_KEY_FIELD(sim_patient.channel),
	}, {
		.section = "sim_patient", .key = "latency_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "4", .min = 0.5, .max = 30,
		.unit = "ms",
		.doc = "Simulated patient: M-wave onset after the pulse.",
		CONFIG_KEY_FIELD(sim_patient.latency_ms),
	}, {
		.section = "sim_patient", .key = "artefact_uv",
		.type = CONFIG_TYPE_DOUBLE, .def = "2000", .min = 0, .max = 100000,
		.unit = "µV",
		.doc = "Simulated patient: stimulus artefact peak at the pulse (decays within 1.5 ms).",
		CONFIG_KEY_FIELD(sim_patient.artefact_uv),
	},
};

#define CONFIG_KEY_COUNT (sizeof(config_key_table) / sizeof(config_key_table[0]))
const size_t config_key_count = CONFIG_KEY_COUNT;
_Static_assert(CONFIG_KEY_COUNT <= CONFIG_KEYS_MAX, "struct rpmsd_config's key_line holds every key");
_Static_assert(CONFIG_NAME_MAX == ZONE_NAME_MAX, "safety.day_zone holds every zone name");


const struct config_key *config_key_find(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (!strcmp(config_key_table[i].section, section) &&
		    !strcmp(config_key_table[i].key, key)) {
			return &config_key_table[i];
		}
	}
	return NULL;
}

void *config_key_field(struct rpmsd_config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static bool config_key_is_number(const struct config_key *k)
{
	return k->type == CONFIG_TYPE_INT || k->type == CONFIG_TYPE_DOUBLE;
}

void config_key_allowed(const struct config_key *k, bool unit, char *buf,
			size_t len)
{
	const struct config_enum *e;

	buf[0] = '\0';
	if (k->allowed) {
		config_append(buf, len, "%s", k->allowed);
	} else {
		switch (k->type) {
		case CONFIG_TYPE_BOOL:
			config_append(buf, len, "true, false");
			break;
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_DOUBLE:
			config_append(buf, len, "%.15g to %.15g", k->min, k->max);
			break;
		case CONFIG_TYPE_STRING:
			config_append(buf, len, "text, at most %zu characters",
				      k->size - 1);
			break;
		case CONFIG_TYPE_ENUM:
			for (e = k->values; e->name; e++) {
				config_append(buf, len, "%s%s",
					      e == k->values ? "" : ", ", e->name);
			}
			break;
		}
	}
	if (unit && config_key_is_number(k) && k->unit[0]) {
		config_append(buf, len, " %s", k->unit);
	}
}

void config_key_section_keys(const char *section, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (!strcmp(config_key_table[i].section, section)) {
			config_append(buf, len, "%s%s", buf[0] ? ", " : "",
				      config_key_table[i].key);
		}
	}
}

int config_key_line(const struct rpmsd_config *cfg, const char *section, const char *key)
{
	const struct config_key *k = config_key_find(section, key);

	return k ? cfg->key_line[k - config_key_table] : 0;
}

bool config_key_live(const char *section, const char *key)
{
	const struct config_key *k = config_key_find(section, key);

	return k && k->live;
}

const char *config_key_nth(const char *section, unsigned flag, size_t i)
{
	const struct config_key *k;
	size_t j;

	for (j = 0; j < CONFIG_KEY_COUNT; j++) {
		k = &config_key_table[j];
		if (strcmp(k->section, section) ||
		    !(((flag & CONFIG_KEY_LIVE) && k->live) || ((flag & CONFIG_KEY_LIMIT) && k->limit))) {
			continue;
		}
		if (!i--) {
			return k->key;
		}
	}
	return NULL;
}
