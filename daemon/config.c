/* SPDX-License-Identifier: MIT */
/*
 * rpmsd configuration: the key table, the INI parser and the template.
 *
 * config_keys[] below is the single source of truth: parsing, defaults,
 * error messages and config/rpmsd.conf are all derived from it.
 *
 * libinih does the tokenising. Its handler gets no line number, so the file
 * is fed through our own line reader, which counts lines and also sees the
 * "[section]" lines the handler never hears about. libinih's options are
 * process-wide globals: config_load sets them for the duration of a parse
 * and restores them, and is therefore not thread-safe.
 */
#include "config.h"
#include "file.h"
#include "zone.h"
#include "policy.h"
#include "safety.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

/* Longest accepted line, newline excluded, is CONFIG_LINE_MAX - 2. */
#define CONFIG_LINE_MAX 4096
/*
 * Largest configuration file read (the template is about 20 KB): SIGHUP
 * reads it on the thread that also answers SIGTERM, so the read must end.
 */
#define CONFIG_FILE_MAX (1 << 20)
#define CONFIG_ALLOWED_MAX 512

/* The table stores enums through int pointers. */
_Static_assert(sizeof(enum config_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_source_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_replay_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_envelope) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_detect_rule) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_record_format) == sizeof(int), "enum size");

enum config_type {
	CONFIG_TYPE_BOOL,
	CONFIG_TYPE_INT,
	CONFIG_TYPE_DOUBLE,
	CONFIG_TYPE_STRING,
	CONFIG_TYPE_ENUM,
};

/* One allowed value of an enum key: its name in the file and its value. */
struct config_enum {
	const char *name;
	int value;
};

union config_value {
	bool b;
	long long i;
	double d;
	int e;
};

/*
 * A key-specific check run after the type and range checks. It writes what
 * is wrong ("1000 is not a power of two") into @why; the caller appends the
 * allowed text.
 */
typedef int (*config_check_fn)(const char *text, const union config_value *v,
			       char *why, size_t len);

struct config_key {
	const char *section;
	const char *key;
	enum config_type type;
	const char *def;			/* default, parsed like file text */
	double min;				/* INT, DOUBLE: inclusive range */
	double max;
	const char *unit;			/* "" if none */
	const char *doc;			/* one line, for the template */
	const struct config_enum *values;	/* ENUM: ends with a NULL name */
	const char *allowed;			/* replaces the generated text */
	config_check_fn check;			/* NULL if none */
	size_t offset;				/* into struct rpmsd_config */
	size_t size;				/* of the field */
};

#define CONFIG_FIELD(m)							\
	.offset = offsetof(struct rpmsd_config, m),			\
	.size = sizeof(((struct rpmsd_config *)NULL)->m)

static const char *const config_sections[] = {
	"daemon", "source", "dsp", "detect", "stim", "safety", "publish", "record",
	"control",
};

#define CONFIG_N_SECTIONS (sizeof(config_sections) / sizeof(config_sections[0]))

#define CONFIG_COIL_PREFIX "coil."

static const struct config_enum config_log_levels[] = {
	{ "error", CONFIG_LOG_ERROR },
	{ "warning", CONFIG_LOG_WARNING },
	{ "info", CONFIG_LOG_INFO },
	{ "debug", CONFIG_LOG_DEBUG },
	{ NULL, 0 },
};

static const struct config_enum config_source_types[] = {
	{ "replay", CONFIG_SOURCE_REPLAY },
	{ "iio", CONFIG_SOURCE_IIO },
	{ NULL, 0 },
};

static const struct config_enum config_formats[] = {
	{ "auto", CONFIG_FORMAT_AUTO },
	{ "text", CONFIG_FORMAT_TEXT },
	{ "csv", CONFIG_FORMAT_CSV },
	{ "timevalue", CONFIG_FORMAT_TIMEVALUE },
	{ NULL, 0 },
};

static const struct config_enum config_mains[] = {
	{ "0", 0 },
	{ "50", 50 },
	{ "60", 60 },
	{ NULL, 0 },
};

static const struct config_enum config_orders[] = {
	{ "2", 2 },
	{ "4", 4 },
	{ NULL, 0 },
};

static const struct config_enum config_envelopes[] = {
	{ "rms", CONFIG_ENVELOPE_RMS },
	{ "tkeo", CONFIG_ENVELOPE_TKEO },
	{ NULL, 0 },
};

static const struct config_enum config_rules[] = {
	{ "sustained", CONFIG_RULE_SUSTAINED },
	{ "cusum", CONFIG_RULE_CUSUM },
	{ NULL, 0 },
};

static const struct config_enum config_protocols[] = {
	{ "single", CONFIG_PROTOCOL_SINGLE },
	{ "train", CONFIG_PROTOCOL_TRAIN },
	{ "onoff", CONFIG_PROTOCOL_ONOFF },
	{ "theta_burst", CONFIG_PROTOCOL_THETA },
	{ NULL, 0 },
};

static const struct config_enum config_record_formats[] = {
	{ "auto", CONFIG_RECORD_AUTO },
	{ "edf", CONFIG_RECORD_EDF },
	{ "bdf", CONFIG_RECORD_BDF },
	{ NULL, 0 },
};

static const struct config_enum config_modes[] = {
	{ "closed_loop", CONFIG_MODE_CLOSED_LOOP },
	{ "open_loop", CONFIG_MODE_OPEN_LOOP },
	{ NULL, 0 },
};

static int config_check_rate(const char *text, const union config_value *v,
			     char *why, size_t len);
static int config_check_column(const char *text, const union config_value *v,
			       char *why, size_t len);
static int config_check_plugin(const char *text, const union config_value *v,
			       char *why, size_t len);
static int config_check_pow2(const char *text, const union config_value *v,
			     char *why, size_t len);
static int config_check_endpoint(const char *text, const union config_value *v,
				 char *why, size_t len);
static int config_check_control_endpoint(const char *text, const union config_value *v,
					 char *why, size_t len);
static int config_check_edf_id(const char *text, const union config_value *v,
			       char *why, size_t len);
static int config_check_edf_admincode(const char *text, const union config_value *v,
				      char *why, size_t len);
static int config_check_file_name(const char *text, const union config_value *v,
				  char *why, size_t len);
static int config_check_zone(const char *text, const union config_value *v,
			     char *why, size_t len);

static const struct config_key config_keys[] = {
	/* [daemon] */
	{
		.section = "daemon", .key = "log_level",
		.type = CONFIG_TYPE_ENUM, .def = "info",
		.values = config_log_levels, .unit = "",
		.doc = "Least severe message that is logged.",
		CONFIG_FIELD(daemon.log_level),
	}, {
		.section = "daemon", .key = "arm_on_start",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Arm the coil at start-up without a command: demo and bench rigs only, never with a patient.",
		CONFIG_FIELD(daemon.arm_on_start),
	}, {
		.section = "daemon", .key = "plugin_dir",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a directory, or empty for none",
		.doc = "Extra directory searched first for coil plugins.",
		CONFIG_FIELD(daemon.plugin_dir),
	}, {
		.section = "daemon", .key = "acquire_priority",
		.type = CONFIG_TYPE_INT, .def = "80", .min = 0, .max = 98,
		.unit = "",
		.doc = "SCHED_FIFO priority of the acquire thread, 0 = normal scheduling.",
		CONFIG_FIELD(daemon.acquire_priority),
	}, {
		.section = "daemon", .key = "stim_priority",
		.type = CONFIG_TYPE_INT, .def = "90", .min = 0, .max = 98,
		.unit = "",
		.doc = "SCHED_FIFO priority of the stim thread, 0 = normal scheduling.",
		CONFIG_FIELD(daemon.stim_priority),
	}, {
		.section = "daemon", .key = "state_dir",
		.type = CONFIG_TYPE_STRING, .def = "/var/lib/rpmsd", .unit = "",
		.allowed = "an existing directory (systemd's StateDirectory=)",
		.doc = "Where the pulse ledger (pulses delivered today, kept across restarts) is written; one rpmsd per directory.",
		CONFIG_FIELD(daemon.state_dir),
	}, {
		.section = "daemon", .key = "require_rt",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Refuse to start unless memory is locked, both RT threads get SCHED_FIFO and /dev/cpu_dma_latency is held (when asked for); without it these only warn.",
		CONFIG_FIELD(daemon.require_rt),
	}, {
		.section = "daemon", .key = "acquire_cpu",
		.type = CONFIG_TYPE_INT, .def = "-1", .min = -1, .max = 1023,
		.unit = "",
		.allowed = "a CPU number the daemon may run on, or -1 for any",
		.doc = "CPU the acquire thread is pinned to (e.g. one isolated with isolcpus=); -1 = not pinned.",
		CONFIG_FIELD(daemon.acquire_cpu),
	}, {
		.section = "daemon", .key = "stim_cpu",
		.type = CONFIG_TYPE_INT, .def = "-1", .min = -1, .max = 1023,
		.unit = "",
		.allowed = "a CPU number the daemon may run on, or -1 for any",
		.doc = "CPU the stim thread is pinned to; -1 = not pinned.",
		CONFIG_FIELD(daemon.stim_cpu),
	}, {
		.section = "daemon", .key = "cpu_dma_latency",
		.type = CONFIG_TYPE_BOOL, .def = "true", .unit = "",
		.doc = "Hold /dev/cpu_dma_latency at 0 while running, so the CPUs stay out of deep idle states that take long to leave (paced runs only).",
		CONFIG_FIELD(daemon.cpu_dma_latency),
	}, {
		.section = "daemon", .key = "heartbeat_timeout_ms",
		.type = CONFIG_TYPE_INT, .def = "500", .min = 50, .max = 10000,
		.unit = "ms",
		.doc = "An RT thread that has not shown progress for this long is hung: the supervisor disarms the coil, refuses arming and stops feeding the systemd watchdog.",
		CONFIG_FIELD(daemon.heartbeat_timeout_ms),
	}, {
		.section = "daemon", .key = "test_hooks",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Testing only: SIGUSR2 makes the acquire thread hang (to prove the supervisor and the systemd watchdog). Never on a patient rig.",
		CONFIG_FIELD(daemon.test_hooks),
	},
	/* [source] */
	{
		.section = "source", .key = "type",
		.type = CONFIG_TYPE_ENUM, .def = "replay",
		.values = config_source_types, .unit = "",
		.doc = "Where the EMG comes from: replay reads a recording, iio an amplifier through libiio.",
		CONFIG_FIELD(source.type),
	}, {
		.section = "source", .key = "file",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file; required when type = replay",
		.doc = "EMG recording to replay, relative to the directory of this file.",
		CONFIG_FIELD(source.file),
	}, {
		.section = "source", .key = "format",
		.type = CONFIG_TYPE_ENUM, .def = "auto",
		.values = config_formats, .unit = "",
		.doc = "Recording format: auto = decide from the content, text = one value a line, csv = header row and columns, timevalue = 'time value' lines.",
		CONFIG_FIELD(source.format),
	}, {
		.section = "source", .key = "column",
		.type = CONFIG_TYPE_STRING, .def = "1", .unit = "",
		.allowed = "at most 8 comma-separated column numbers (from 1) or CSV header names",
		.check = config_check_column,
		.doc = "Column(s) to read: 1-based numbers or CSV header names.",
		CONFIG_FIELD(source.column),
	}, {
		.section = "source", .key = "rate_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 100000,
		.unit = "Hz", .allowed = "0, or 100 to 100000",
		.check = config_check_rate,
		.doc = "Sampling rate: replay: 0 = from the file's header; iio: written to the device's sampling_frequency, 0 = the device's own.",
		CONFIG_FIELD(source.rate_hz),
	}, {
		.section = "source", .key = "scale_uv",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 1e-9, .max = 1e9,
		.unit = "µV per file unit",
		.doc = "Microvolts per unit of the values in the file.",
		CONFIG_FIELD(source.scale_uv),
	}, {
		.section = "source", .key = "realtime",
		.type = CONFIG_TYPE_BOOL, .def = "true", .unit = "",
		.doc = "Pace the replay at the sampling rate (--fast overrides).",
		CONFIG_FIELD(source.realtime),
	}, {
		.section = "source", .key = "block_frames",
		.type = CONFIG_TYPE_INT, .def = "8", .min = 1, .max = 4096,
		.unit = "frames",
		.doc = "Frames handed to the signal chain at a time (iio: the buffer size; small is fast).",
		CONFIG_FIELD(source.block_frames),
	}, {
		.section = "source", .key = "uri",
		.type = CONFIG_TYPE_STRING, .def = "local:", .unit = "",
		.allowed = "a libiio URI: local:, ip:HOST",
		.doc = "iio: where the device is (libiio context URI).",
		CONFIG_FIELD(source.uri),
	}, {
		.section = "source", .key = "device",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a device name, an id such as iio:device0, or an index; required when type = iio",
		.doc = "iio: the amplifier's IIO device.",
		CONFIG_FIELD(source.device),
	}, {
		.section = "source", .key = "channels",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "1 to 8 comma-separated channel ids such as voltage0; required when type = iio",
		.doc = "iio: the EMG channels, in this order.",
		CONFIG_FIELD(source.channels),
	}, {
		.section = "source", .key = "gain",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 1e-6, .max = 1e9,
		.unit = "",
		.doc = "iio: amplifier gain in front of the ADC; samples are divided by it.",
		CONFIG_FIELD(source.gain),
	}, {
		.section = "source", .key = "kernel_buffers",
		.type = CONFIG_TYPE_INT, .def = "4", .min = 0, .max = 64,
		.unit = "blocks",
		.doc = "iio: blocks the kernel queues, 0 = leave the driver's setting.",
		CONFIG_FIELD(source.kernel_buffers),
	}, {
		.section = "source", .key = "trigger",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a trigger device name, or empty to leave it as it is",
		.doc = "iio: the trigger to set on the device.",
		CONFIG_FIELD(source.trigger),
	}, {
		.section = "source", .key = "timeout_ms",
		.type = CONFIG_TYPE_INT, .def = "1000", .min = 10, .max = 60000,
		.unit = "ms",
		.doc = "iio: a read that waits this long for data is a fault (the coil is disarmed sooner, by safety.acquisition_timeout_ms).",
		CONFIG_FIELD(source.timeout_ms),
	}, {
		.section = "source", .key = "reopen_ms",
		.type = CONFIG_TYPE_INT, .def = "200", .min = 0, .max = 60000,
		.unit = "ms",
		.doc = "iio: after a read error, timeout or vanished device, wait this long and open the device again; 0 = end the session instead.",
		CONFIG_FIELD(source.reopen_ms),
	}, {
		.section = "source", .key = "reopen_max_ms",
		.type = CONFIG_TYPE_INT, .def = "5000", .min = 10, .max = 600000,
		.unit = "ms",
		.doc = "iio: the wait doubles after each failed attempt, up to this.",
		CONFIG_FIELD(source.reopen_max_ms),
	}, {
		.section = "source", .key = "reopen_attempts",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 0, .max = 1000000,
		.unit = "attempts",
		.doc = "iio: give up (end the session) after this many attempts in a row that bring no data; 0 = never give up.",
		CONFIG_FIELD(source.reopen_attempts),
	},
	/* [dsp] */
	{
		.section = "dsp", .key = "highpass_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "20", .min = 1, .max = 1000,
		.unit = "Hz",
		.doc = "High-pass cutoff of the EMG band-pass.",
		CONFIG_FIELD(dsp.highpass_hz),
	}, {
		.section = "dsp", .key = "lowpass_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "450", .min = 10, .max = 5000,
		.unit = "Hz",
		.doc = "Low-pass cutoff of the EMG band-pass, above highpass_hz (clamped below Nyquist at run time).",
		CONFIG_FIELD(dsp.lowpass_hz),
	}, {
		.section = "dsp", .key = "mains_hz",
		.type = CONFIG_TYPE_ENUM, .def = "50",
		.values = config_mains, .unit = "Hz",
		.doc = "Nominal mains frequency whose hum (and harmonics) the mains canceller subtracts, following the line within 2 Hz of it; 0 = none.",
		CONFIG_FIELD(dsp.mains_hz),
	}, {
		.section = "dsp", .key = "notch_q",
		.type = CONFIG_TYPE_DOUBLE, .def = "30", .min = 1, .max = 100,
		.unit = "",
		.doc = "Quality factor of the notch the mains canceller makes at each harmonic once settled (it follows the line's frequency): higher is narrower.",
		CONFIG_FIELD(dsp.notch_q),
	}, {
		.section = "dsp", .key = "filter_order",
		.type = CONFIG_TYPE_ENUM, .def = "4",
		.values = config_orders, .unit = "",
		.doc = "Butterworth order of each of the high-pass and the low-pass.",
		CONFIG_FIELD(dsp.filter_order),
	}, {
		.section = "dsp", .key = "mains_harmonics",
		.type = CONFIG_TYPE_INT, .def = "5", .min = 1, .max = 8,
		.unit = "",
		.doc = "Harmonics the mains canceller follows: mains_hz x 1..N (those inside the band-pass and below Nyquist); 1 = the fundamental only.",
		CONFIG_FIELD(dsp.mains_harmonics),
	}, {
		.section = "dsp", .key = "limit",
		.type = CONFIG_TYPE_DOUBLE, .def = "6", .min = 0, .max = 10000,
		.unit = "x rest",
		.doc = "After calibration, the raw EMG's excursion from its slow level is clipped at this many times its rest level (the larger of the rest envelope and the excursion without the mains hum, which the canceller subtracts first) before any filter, so a spike or electrode pop cannot make the filters ring into a burst; until then (and during a recalibration) a sample beyond 100 times the running median excursion is dropped as an artefact instead; 0 = never clip or drop.",
		CONFIG_FIELD(dsp.limit),
	}, {
		.section = "dsp", .key = "envelope",
		.type = CONFIG_TYPE_ENUM, .def = "rms",
		.values = config_envelopes, .unit = "",
		.doc = "Envelope estimator: rms = moving root mean square; tkeo = root of the moving mean of the Teager-Kaiser energy (sharper onsets, one sample later).",
		CONFIG_FIELD(dsp.envelope),
	}, {
		.section = "dsp", .key = "envelope_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "5", .min = 5, .max = 1000,
		.unit = "ms",
		.doc = "Window of the envelope.",
		CONFIG_FIELD(dsp.envelope_ms),
	},
	/* [detect] */
	{
		.section = "detect", .key = "calibration_start_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 3600,
		.unit = "s",
		.doc = "Start of the rest window that sets the baseline, from the start of the session.",
		CONFIG_FIELD(detect.calibration_start_s),
	}, {
		.section = "detect", .key = "calibration_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "2", .min = 0.2, .max = 600,
		.unit = "s",
		.doc = "Length of the rest window; the patient must be at rest during it.",
		CONFIG_FIELD(detect.calibration_s),
	}, {
		.section = "detect", .key = "k_on",
		.type = CONFIG_TYPE_DOUBLE, .def = "3.5", .min = 1, .max = 100,
		.unit = "",
		.doc = "Onset threshold: the rest envelope's median + k_on x its spread (1.4826 MAD), which the sustained envelope (detect.sustain_ms) must exceed (detect.rule = sustained; with cusum it only judges the calibration window).",
		CONFIG_FIELD(detect.k_on),
	}, {
		.section = "detect", .key = "k_off",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 0.5, .max = 100,
		.unit = "",
		.doc = "Offset threshold: median + k_off x spread of the rest envelope, below k_on.",
		CONFIG_FIELD(detect.k_off),
	}, {
		.section = "detect", .key = "on_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "Extra time the onset rule must keep holding (detect.rule: the sustained envelope above the onset threshold, or the cusum evidence above cusum_h; both already reject transients); 0 = decide at once.",
		CONFIG_FIELD(detect.on_ms),
	}, {
		.section = "detect", .key = "dip_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "10", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "Dips of the onset rule (below the onset threshold, or below cusum_h) shorter than this do not break an onset.",
		CONFIG_FIELD(detect.dip_ms),
	}, {
		.section = "detect", .key = "off_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "200", .min = 0, .max = 5000,
		.unit = "ms",
		.doc = "Time below the offset threshold that ends a burst; longer than a clonus gap.",
		CONFIG_FIELD(detect.off_ms),
	}, {
		.section = "detect", .key = "sustain_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "30", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "Thresholds apply to the quietest of the envelope windows (dsp.envelope_ms each) over this span: transients shorter than it minus one window are never bursts.",
		CONFIG_FIELD(detect.sustain_ms),
	}, {
		.section = "detect", .key = "sustain_skip",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 0, .max = 4,
		.unit = "windows",
		.doc = "The sustained envelope ignores this many of its quietest windows (the ripple of a 5 ms envelope inside a burst); a transient must then last about sustain_ms minus (skip + 1) windows to count.",
		CONFIG_FIELD(detect.sustain_skip),
	}, {
		.section = "detect", .key = "k_edge",
		.type = CONFIG_TYPE_DOUBLE, .def = "0.5", .min = 0, .max = 100,
		.unit = "",
		.doc = "Onset dating: the onset is the start of the stretch before the decision whose envelope stands, summed, highest above the rest level + k_edge spreads (a change-point search over the last 0.5 s).",
		CONFIG_FIELD(detect.k_edge),
	}, {
		.section = "detect", .key = "rule",
		.type = CONFIG_TYPE_ENUM, .def = "sustained",
		.values = config_rules, .unit = "",
		.doc = "How an onset is decided: sustained = the sustained envelope (detect.sustain_ms) above the onset threshold (detect.k_on); cusum = evidence piled up by a one-sided CUSUM on the envelope's log ratio to the rest level (detect.cusum_k, cusum_cap, cusum_h), which decides sooner, most of all for weak and slow rises (docs/detection.md compares the two). Either way the offset, detect.on_ms and detect.dip_ms work as they do for sustained.",
		CONFIG_FIELD(detect.rule),
	}, {
		.section = "detect", .key = "cusum_k",
		.type = CONFIG_TYPE_DOUBLE, .def = "1.5", .min = 0, .max = 100,
		.unit = "spreads",
		.doc = "cusum: the envelope adds evidence while it stands more than cusum_k spreads above the rest median (measured as ln(envelope / median) x median / spread, which is envelope - median in spreads near rest and grows only logarithmically above it) and drains it while below.",
		CONFIG_FIELD(detect.cusum_k),
	}, {
		.section = "detect", .key = "cusum_cap",
		.type = CONFIG_TYPE_DOUBLE, .def = "2.5", .min = 0.01, .max = 100,
		.unit = "spreads",
		.doc = "cusum: the most evidence one millisecond of envelope can add, whatever its height, so that a transient shorter than cusum_h / cusum_cap ms (an electrode pop, a motion spike) cannot decide an onset alone.",
		CONFIG_FIELD(detect.cusum_cap),
	}, {
		.section = "detect", .key = "cusum_h",
		.type = CONFIG_TYPE_DOUBLE, .def = "50", .min = 0.01, .max = 100000,
		.unit = "spread x ms",
		.doc = "cusum: the evidence that decides an onset: at least cusum_h / cusum_cap ms (20 ms at the defaults) of envelope at the cap, longer for a weaker rise.",
		CONFIG_FIELD(detect.cusum_h),
	}, {
		.section = "detect", .key = "blanking_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "50", .min = 0, .max = 1000,
		.unit = "ms",
		.doc = "EMG held at its last clean value after each of our pulses (stimulation artefact, M-wave).",
		CONFIG_FIELD(detect.blanking_ms),
	}, {
		.section = "detect", .key = "channel_rule",
		.type = CONFIG_TYPE_STRING, .def = "any", .unit = "",
		.allowed = "any, all, or the name of one channel",
		.doc = "Which channels make a burst: any (the first to start starts it, the last to stop ends it), all (every channel active), or one named channel.",
		CONFIG_FIELD(detect.channel),
	},
	/* [stim] */
	{
		.section = "stim", .key = "plugin",
		.type = CONFIG_TYPE_STRING, .def = "sim", .unit = "",
		.allowed = "1 to 63 characters of a-z, 0-9, _ and -",
		.check = config_check_plugin,
		.doc = "Coil plugin to load; its own keys go in [coil.<plugin>].",
		CONFIG_FIELD(stim.plugin),
	}, {
		.section = "stim", .key = "mode",
		.type = CONFIG_TYPE_ENUM, .def = "closed_loop",
		.values = config_modes, .unit = "",
		.doc = "closed_loop: each burst onset starts the protocol (then refractory_ms); open_loop: the protocol runs from arming until open_loop_pulses are delivered, whatever the EMG.",
		CONFIG_FIELD(stim.mode),
	}, {
		.section = "stim", .key = "protocol",
		.type = CONFIG_TYPE_ENUM, .def = "single",
		.values = config_protocols, .unit = "",
		.doc = "single = one pulse; train = train_pulses at train_frequency_hz; onoff = cycles trains of on_ms at train_frequency_hz, each followed by off_ms; theta_burst = cycles trains of theta_bursts bursts, each followed by off_ms.",
		CONFIG_FIELD(stim.protocol),
	}, {
		.section = "stim", .key = "train_pulses",
		.type = CONFIG_TYPE_INT, .def = "5", .min = 1, .max = 1000,
		.unit = "",
		.doc = "Pulses in a train, at most safety.max_train_pulses.",
		CONFIG_FIELD(stim.train_pulses),
	}, {
		.section = "stim", .key = "train_frequency_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "20", .min = 0.1, .max = 100,
		.unit = "Hz",
		.doc = "Pulse rate in a train, at most safety.max_frequency_hz.",
		CONFIG_FIELD(stim.train_frequency_hz),
	}, {
		.section = "stim", .key = "on_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "1000", .min = 1, .max = 60000,
		.unit = "ms",
		.doc = "onoff: length of each train (its pulses: train_frequency_hz x on_ms, rounded).",
		CONFIG_FIELD(stim.on_ms),
	}, {
		.section = "stim", .key = "off_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "2000", .min = 0, .max = 600000,
		.unit = "ms",
		.doc = "onoff, theta_burst (and open loop): the off-period after each train's on-period, so trains start every on-period + off_ms (25 Hz, 1 s on / 2 s off: one every 3 s). The on-period is the train's pulses / rate, one pulse period past its last pulse (theta_burst: theta_bursts x theta_period_ms), so with onoff the last pulse of a train comes off_ms + 1 / train_frequency_hz before the next train's first. Single pulses in open loop come off_ms apart. Open loop: also the pause, from a refused pulse, before the rest of the request.",
		CONFIG_FIELD(stim.off_ms),
	}, {
		.section = "stim", .key = "cycles",
		.type = CONFIG_TYPE_INT, .def = "1", .min = 1, .max = 100000,
		.unit = "",
		.doc = "onoff, theta_burst: trains started by one burst onset (closed loop) or per block (open loop).",
		CONFIG_FIELD(stim.cycles),
	}, {
		.section = "stim", .key = "theta_bursts",
		.type = CONFIG_TYPE_INT, .def = "10", .min = 1, .max = 1000,
		.unit = "",
		.doc = "theta_burst: bursts in one train (10 bursts every 200 ms = the 2 s train of intermittent theta burst).",
		CONFIG_FIELD(stim.theta_bursts),
	}, {
		.section = "stim", .key = "theta_burst_pulses",
		.type = CONFIG_TYPE_INT, .def = "3", .min = 1, .max = 20,
		.unit = "",
		.doc = "theta_burst: pulses in one burst.",
		CONFIG_FIELD(stim.theta_burst_pulses),
	}, {
		.section = "stim", .key = "theta_frequency_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "50", .min = 1, .max = 100,
		.unit = "Hz",
		.doc = "theta_burst: pulse rate within a burst, at most safety.max_frequency_hz.",
		CONFIG_FIELD(stim.theta_frequency_hz),
	}, {
		.section = "stim", .key = "theta_period_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "200", .min = 10, .max = 10000,
		.unit = "ms",
		.doc = "theta_burst: from one burst's first pulse to the next (200 ms = 5 Hz, theta).",
		CONFIG_FIELD(stim.theta_period_ms),
	}, {
		.section = "stim", .key = "open_loop_pulses",
		.type = CONFIG_TYPE_INT, .def = "1200", .min = 1, .max = 1000000,
		.unit = "",
		.doc = "open_loop: pulses to deliver, then the coil is disarmed; at most safety.max_session_pulses.",
		CONFIG_FIELD(stim.open_loop_pulses),
	}, {
		.section = "stim", .key = "intensity_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "30", .min = 0, .max = 100,
		.unit = "%",
		.doc = "Stimulator output in % of its maximum, at most safety.max_intensity_pct.",
		CONFIG_FIELD(stim.intensity_pct),
	}, {
		.section = "stim", .key = "pulse_width_us",
		.type = CONFIG_TYPE_INT, .def = "100", .min = 1, .max = 10000,
		.unit = "µs",
		.doc = "Width of the trigger pulse sent to the stimulator.",
		CONFIG_FIELD(stim.pulse_width_us),
	}, {
		.section = "stim", .key = "refractory_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "1000", .min = 0, .max = 600000,
		.unit = "ms",
		.doc = "Quiet time after a pulse or train ends before the next may start.",
		CONFIG_FIELD(stim.refractory_ms),
	},
	/* [safety] */
	{
		.section = "safety", .key = "max_frequency_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "25", .min = 0.1, .max = 100,
		.unit = "Hz",
		.doc = "Highest pulse rate ever allowed.",
		CONFIG_FIELD(safety.max_frequency_hz),
	}, {
		.section = "safety", .key = "max_train_pulses",
		.type = CONFIG_TYPE_INT, .def = "50", .min = 1, .max = 10000,
		.unit = "",
		.doc = "Most pulses ever allowed in one train.",
		CONFIG_FIELD(safety.max_train_pulses),
	}, {
		.section = "safety", .key = "min_train_interval_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "500", .min = 0, .max = 3600000,
		.unit = "ms",
		.doc = "Shortest time ever allowed between two trains.",
		CONFIG_FIELD(safety.min_train_interval_ms),
	}, {
		.section = "safety", .key = "max_intensity_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "60", .min = 0, .max = 100,
		.unit = "%",
		.doc = "Highest stimulator output ever allowed.",
		CONFIG_FIELD(safety.max_intensity_pct),
	}, {
		.section = "safety", .key = "max_coil_temp_c",
		.type = CONFIG_TYPE_DOUBLE, .def = "40", .min = 20, .max = 80,
		.unit = "°C",
		.doc = "Coil temperature above which the coil is not fired.",
		CONFIG_FIELD(safety.max_coil_temp_c),
	}, {
		.section = "safety", .key = "acquisition_timeout_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "250", .min = 10, .max = 10000,
		.unit = "ms",
		.doc = "No fresh EMG block for this long: no pulse is admitted and the coil is disarmed (must exceed one block).",
		CONFIG_FIELD(safety.acquisition_timeout_ms),
	}, {
		.section = "safety", .key = "motor_threshold_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 100,
		.unit = "%",
		.doc = "The patient's resting motor threshold in % of stimulator output, measured this session; 0 = not measured (then only single pulses are possible): the train table is in % of it.",
		CONFIG_FIELD(safety.motor_threshold_pct),
	}, {
		.section = "safety", .key = "train_table",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a CSV file (docs/safety.md), or empty for the built-in table",
		.doc = "Longest train by pulse rate x intensity (% of motor threshold); empty = the built-in table transcribed from Wassermann 1998, Table 4.",
		CONFIG_FIELD(safety.train_table_file),
	}, {
		.section = "safety", .key = "max_session_pulses",
		.type = CONFIG_TYPE_INT, .def = "6000", .min = 1, .max = 10000000,
		.unit = "",
		.doc = "Most pulses delivered in one session: since the last session_start command on the control socket, or since rpmsd started when none was given.",
		CONFIG_FIELD(safety.max_session_pulses),
	}, {
		.section = "safety", .key = "max_daily_pulses",
		.type = CONFIG_TYPE_INT, .def = "12000", .min = 1, .max = 10000000,
		.unit = "",
		.doc = "Most pulses delivered in one calendar day of safety.day_zone, counted across restarts in the ledger in daemon.state_dir.",
		CONFIG_FIELD(safety.max_daily_pulses),
	}, {
		.section = "safety", .key = "ledger_reserve_pulses",
		.type = CONFIG_TYPE_INT, .def = "200", .min = 1, .max = 100000,
		.unit = "",
		.doc = "Pulses written to the ledger before they are delivered: after a crash the day's count may be this much too high, never too low.",
		CONFIG_FIELD(safety.ledger_reserve_pulses),
	}, {
		.section = "safety", .key = "day_zone",
		.type = CONFIG_TYPE_STRING, .def = "UTC", .unit = "",
		.allowed = "UTC, or an IANA time zone name such as Europe/Berlin (a file in " ZONE_DIR ")",
		.check = config_check_zone,
		.doc = "The time zone whose calendar days max_daily_pulses counts: a day ends at its midnight, whatever TZ or system zone rpmsd runs with. Set the clinic's zone.",
		CONFIG_FIELD(safety.day_zone),
	},
	/* [publish] */
	{
		.section = "publish", .key = "endpoint",
		.type = CONFIG_TYPE_STRING, .def = "tcp://127.0.0.1:5560",
		.unit = "",
		.allowed = "tcp://ADDRESS, ipc://PATH or inproc://NAME",
		.check = config_check_endpoint,
		.doc = "ZeroMQ endpoint that events and status are published on.",
		CONFIG_FIELD(publish.endpoint),
	}, {
		.section = "publish", .key = "ring_records",
		.type = CONFIG_TYPE_INT, .def = "4096", .min = 64, .max = 1048576,
		.unit = "", .allowed = "64 to 1048576, a power of two",
		.check = config_check_pow2,
		.doc = "Records in each producer's ring to the publisher.",
		CONFIG_FIELD(publish.ring_records),
	}, {
		.section = "publish", .key = "sndhwm",
		.type = CONFIG_TYPE_INT, .def = "10000", .min = 1, .max = 1000000,
		.unit = "messages",
		.doc = "ZeroMQ send high-water mark: messages queued for a slow subscriber before dropping.",
		CONFIG_FIELD(publish.sndhwm),
	}, {
		.section = "publish", .key = "heartbeat_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 0.1, .max = 60,
		.unit = "s",
		.doc = "Interval between heartbeat messages.",
		CONFIG_FIELD(publish.heartbeat_s),
	}, {
		.section = "publish", .key = "emg_stream",
		.type = CONFIG_TYPE_BOOL, .def = "false", .unit = "",
		.doc = "Publish the filtered EMG and its envelope on rpms.emg (a JSON header frame and a float32 frame, docs/events.md), for tools/rpms-scope.",
		CONFIG_FIELD(publish.emg_stream),
	}, {
		.section = "publish", .key = "emg_decimation",
		.type = CONFIG_TYPE_INT, .def = "10", .min = 1, .max = 1000,
		.unit = "samples",
		.doc = "rpms.emg carries every Nth sample (those whose index is a multiple of N; no anti-alias filter: for display).",
		CONFIG_FIELD(publish.emg_decimation),
	},
	/* [record] */
	{
		.section = "record", .key = "directory",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "an existing directory, or empty for no recording",
		.doc = "Where each session's EDF+/BDF+ recording is written (raw EMG of every channel, bursts, pulses, refusals, state changes as annotations); empty = no recording.",
		CONFIG_FIELD(record.directory),
	}, {
		.section = "record", .key = "name",
		.type = CONFIG_TYPE_STRING, .def = "rpmsd_{patient}_{session}_%Y%m%d_%H%M%S",
		.unit = "", .allowed = "a file name pattern: strftime conversions (local time), {patient}, {session}; no '/'",
		.check = config_check_file_name,
		.doc = "File name of a recording without its extension (.edf or .bdf is added; an existing file is never overwritten: -1, -2, ... is appended).",
		CONFIG_FIELD(record.name),
	}, {
		.section = "record", .key = "format",
		.type = CONFIG_TYPE_ENUM, .def = "auto",
		.values = config_record_formats, .unit = "",
		.doc = "auto = BDF+ (24-bit) when the amplifier's ADC has more than 16 bits, else EDF+ (16-bit); edf; bdf.",
		CONFIG_FIELD(record.format),
	}, {
		.section = "record", .key = "range_uv",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 1e7,
		.unit = "µV",
		.doc = "Physical range of every channel, -range to +range (the digital step is range / 32767 in EDF+, range / 8388607 in BDF+; values beyond it are clipped and counted); 0 = the amplifier's (IIO: scale x ADC range / gain), or 10000 when the source does not know it (replay).",
		CONFIG_FIELD(record.range_uv),
	}, {
		.section = "record", .key = "record_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "1", .min = 0.01, .max = 60,
		.unit = "s",
		.doc = "Duration of one EDF data record (the sampling rate x it must be a whole number); after a crash the file is readable up to its last complete record.",
		CONFIG_FIELD(record.record_s),
	}, {
		.section = "record", .key = "buffer_s",
		.type = CONFIG_TYPE_DOUBLE, .def = "10", .min = 0.1, .max = 600,
		.unit = "s",
		.doc = "EMG held for the recording thread while the disk is slow; beyond it samples are lost (counted, published on rpms.record, zero-filled and annotated in the file), never waited for.",
		CONFIG_FIELD(record.buffer_s),
	}, {
		.section = "record", .key = "patient_id",
		.type = CONFIG_TYPE_STRING, .def = "X", .unit = "",
		.allowed = "1 to 63 printable ASCII characters, no spaces",
		.check = config_check_edf_id,
		.doc = "Patient code in the recording's EDF+ header (X = unknown); until the control socket's session command sets it.",
		CONFIG_FIELD(record.patient_id),
	}, {
		.section = "record", .key = "session_id",
		.type = CONFIG_TYPE_STRING, .def = "X", .unit = "",
		.allowed = "1 to 40 printable ASCII characters, no spaces",
		.check = config_check_edf_admincode,
		.doc = "Session code (the EDF+ admincode) in the recording's header (X = unknown); until the control socket's session command sets it.",
		CONFIG_FIELD(record.session_id),
	},
	/* [control] */
	{
		.section = "control", .key = "endpoint",
		.type = CONFIG_TYPE_STRING, .def = CONFIG_CONTROL_ENDPOINT,
		.unit = "",
		.allowed = "ipc://PATH (relative: to this file's directory) or tcp://ADDRESS:PORT; an address other than loopback needs CURVE",
		.check = config_check_control_endpoint,
		.doc = "ZeroMQ endpoint of the control socket (JSON requests: status, arm, disarm, calibrate, sessions, set; docs/control.md). An ipc socket is made mode 0660: the directory and its group decide who may use it; a path that holds anything but a socket (a file, a directory) is refused, never replaced. /run/rpmsd is the systemd unit's RuntimeDirectory=; when the default is kept and that directory does not exist, rpmsd runs without a control socket (and says so).",
		CONFIG_FIELD(control.endpoint),
	}, {
		.section = "control", .key = "curve_server_secret_file",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file readable by its owner only, holding the server's Z85 secret key (rpmsctl keygen), or empty for no encryption",
		.doc = "CURVE: encrypt the control socket and authenticate every client; required to bind a tcp address other than loopback.",
		CONFIG_FIELD(control.curve_server_secret_file),
	}, {
		.section = "control", .key = "curve_allowed_keys",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a file, or a directory of files, with one client's Z85 public key per line, writable by its owner only (root or the daemon's user), in directories others cannot write (unless sticky); required with curve_server_secret_file",
		.doc = "CURVE: the clients let in, by public key; any other client is refused and the refusal logged.",
		CONFIG_FIELD(control.curve_allowed_keys),
	},
};

#define CONFIG_N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))
_Static_assert(CONFIG_N_KEYS <= CONFIG_KEYS_MAX, "struct rpmsd_config's key_line holds every key");
_Static_assert(CONFIG_NAME_MAX == ZONE_NAME_MAX, "safety.day_zone holds every zone name");

/* State of one config_load. */
struct config_ctx {
	struct rpmsd_config cfg;	/* copied out only on success */
	const char *path;		/* as given, for messages */
	FILE *f;
	char *err;
	size_t errlen;
	int lineno;			/* line last handed to libinih */
	const char *section;		/* current table section, NULL if none */
	bool in_coil;			/* current section is [coil.<name>] */
	bool failed;			/* an error is in err */
	int read_errno;
	char *line;			/* getline buffer */
	size_t line_cap;
	size_t bytes;			/* read so far */
	int key_line[CONFIG_N_KEYS];	/* where each key was set, 0 = not */
	unsigned flags;			/* CONFIG_LOAD_*, CONFIG_CHECK_* */
};

/*
 * config_recheck: check against the train table in cfg->safety.train_table
 * (the one in force), never the file as it is now on disk.
 */
#define CONFIG_CHECK_TABLE_IN_FORCE 0x100u

/* Saved libinih globals. */
struct config_inih_opts {
	bool allow_multiline;
	bool stop_on_first_error;
	bool use_stack;
	bool allow_no_value;
	bool allow_bom;
	bool allow_inline_comments;
	int max_line;
};

static void config_vreport(char *err, size_t errlen, const char *path, int line,
			   const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));
static void config_report(char *err, size_t errlen, const char *path, int line,
			  const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void config_fail(struct config_ctx *ctx, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void config_print(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void config_append(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write "PATH:LINE: message", or "PATH: message" when @line is 0. */
static void config_vreport(char *err, size_t errlen, const char *path, int line,
			   const char *fmt, va_list ap)
{
	int n;

	if (!errlen) {
		return;
	}
	if (line > 0) {
		n = snprintf(err, errlen, "%s:%d: ", path, line);
	} else {
		n = snprintf(err, errlen, "%s: ", path);
	}
	if (n < 0 || (size_t)n >= errlen) {
		return;
	}
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

static void config_report(char *err, size_t errlen, const char *path, int line,
			  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_vreport(err, errlen, path, line, fmt, ap);
	va_end(ap);
}

/* Record the first error of a load; later ones are dropped. */
static void config_fail(struct config_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	if (ctx->failed) {
		return;
	}
	ctx->failed = true;
	va_start(ap, fmt);
	config_vreport(ctx->err, ctx->errlen, ctx->path, line, fmt, ap);
	va_end(ap);
}

/* snprintf that may truncate: messages quote values of any length. */
static void config_print(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* snprintf at the end of what @buf already holds, truncating silently. */
static void config_append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= len) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static const struct config_key *config_find(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < CONFIG_N_KEYS; i++) {
		if (!strcmp(config_keys[i].section, section) &&
		    !strcmp(config_keys[i].key, key)) {
			return &config_keys[i];
		}
	}
	return NULL;
}

static void *config_field(struct rpmsd_config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static bool config_is_number(const struct config_key *k)
{
	return k->type == CONFIG_TYPE_INT || k->type == CONFIG_TYPE_DOUBLE;
}

/*
 * The "allowed" text of @k. With @unit, the unit of a number follows it, as
 * in error messages; the template prints the unit separately.
 */
static void config_allowed(const struct config_key *k, bool unit, char *buf,
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
	if (unit && config_is_number(k) && k->unit[0]) {
		config_append(buf, len, " %s", k->unit);
	}
}

static int config_parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(text, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(text, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Whole-string base-10 integer: -EINVAL if not one, -ERANGE on overflow. */
static int config_parse_ll(const char *text, long long *out)
{
	char *end;
	long long v;

	/* strtoll would skip leading blanks; a value has none left anyway */
	if (!text[0] || isspace((unsigned char)text[0])) {
		return -EINVAL;
	}
	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || *end) {
		return -EINVAL;
	}
	if (errno == ERANGE) {
		return -ERANGE;
	}
	*out = v;
	return 0;
}

/* Whole-string finite number: -EINVAL if not one, -ERANGE on overflow. */
static int config_parse_double(const char *text, double *out)
{
	char *end;
	double v;

	if (!text[0] || isspace((unsigned char)text[0])) {
		return -EINVAL;
	}
	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end) {
		return -EINVAL;
	}
	if (errno == ERANGE && fabs(v) > 1.0) {
		return -ERANGE;
	}
	/* underflow (1e-400) quietly becomes 0 or a denormal, which is fine */
	if (!isfinite(v)) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/*
 * Parse and check @text as a value of @k. On error @why receives
 * "what is wrong (allowed: ...)", to follow "section.key: ".
 */
static int config_parse_value(const struct config_key *k, const char *text,
			      union config_value *v, char *why, size_t len)
{
	char allowed[CONFIG_ALLOWED_MAX];
	char what[CONFIG_ERR_MAX];
	const struct config_enum *e;
	size_t n;
	int rc;

	config_allowed(k, true, allowed, sizeof(allowed));
	switch (k->type) {
	case CONFIG_TYPE_BOOL:
		if (config_parse_bool(text, &v->b) < 0) {
			config_print(why, len, "'%s' is not a boolean (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_INT:
		rc = config_parse_ll(text, &v->i);
		if (rc == -EINVAL) {
			config_print(why, len, "'%s' is not an integer (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if (rc == -ERANGE) {
			config_print(why, len, "%s is out of range (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if ((double)v->i < k->min || (double)v->i > k->max) {
			config_print(why, len, "%lld is out of range (allowed: %s)",
				     v->i, allowed);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_DOUBLE:
		rc = config_parse_double(text, &v->d);
		if (rc == -EINVAL) {
			config_print(why, len, "'%s' is not a number (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if (rc == -ERANGE) {
			config_print(why, len, "%s is out of range (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if (v->d < k->min || v->d > k->max) {
			config_print(why, len, "%.15g is out of range (allowed: %s)",
				     v->d, allowed);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_STRING:
		n = strlen(text);
		if (n >= k->size) {
			config_print(why, len,
				     "value of %zu characters is too long (allowed: at most %zu characters)",
				     n, k->size - 1);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_ENUM:
		for (e = k->values; e->name; e++) {
			if (!strcasecmp(text, e->name)) {
				break;
			}
		}
		if (!e->name) {
			config_print(why, len, "'%s' is not allowed (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		v->e = e->value;
		break;
	}
	if (k->check && k->check(text, v, what, sizeof(what)) < 0) {
		config_print(why, len, "%s (allowed: %s)", what, allowed);
		return -EINVAL;
	}
	return 0;
}

/* Store a value config_parse_value accepted. */
static void config_store(struct rpmsd_config *cfg, const struct config_key *k,
			 const char *text, const union config_value *v)
{
	void *p = config_field(cfg, k);

	switch (k->type) {
	case CONFIG_TYPE_BOOL:
		*(bool *)p = v->b;
		break;
	case CONFIG_TYPE_INT:
		*(int *)p = (int)v->i;
		break;
	case CONFIG_TYPE_DOUBLE:
		*(double *)p = v->d;
		break;
	case CONFIG_TYPE_STRING:
		memcpy(p, text, strlen(text) + 1);
		break;
	case CONFIG_TYPE_ENUM:
		*(int *)p = v->e;
		break;
	}
}

static int config_check_rate(const char *text, const union config_value *v,
			     char *why, size_t len)
{
	(void)text;
	/* below 100 Hz there is no EMG band left to filter */
	if (v->d != 0 && v->d < 100) {
		config_print(why, len, "%.15g is out of range", v->d);
		return -EINVAL;
	}
	return 0;
}

static int config_check_column(const char *text, const union config_value *v,
			       char *why, size_t len)
{
	const char *p = text;
	const char *end;
	char item[CONFIG_PATH_MAX];
	size_t n_items = 0;
	size_t a, b;
	long long num;
	int rc;

	(void)v;
	for (;;) {
		end = strchr(p, ',');
		if (!end) {
			end = p + strlen(p);
		}
		a = 0;
		b = (size_t)(end - p);
		while (a < b && isspace((unsigned char)p[a])) {
			a++;
		}
		while (b > a && isspace((unsigned char)p[b - 1])) {
			b--;
		}
		if (a == b) {
			config_print(why, len, "'%s' has an empty item", text);
			return -EINVAL;
		}
		if (++n_items > CONFIG_MAX_COLUMNS) {
			config_print(why, len, "'%s' has more than %d items", text,
				     CONFIG_MAX_COLUMNS);
			return -EINVAL;
		}
		/* text is shorter than CONFIG_PATH_MAX, so the item fits */
		memcpy(item, p + a, b - a);
		item[b - a] = '\0';
		/* anything that reads as a number is a column number */
		rc = config_parse_ll(item, &num);
		if (rc != -EINVAL && (rc < 0 || num < 1 || num > INT_MAX)) {
			config_print(why, len, "'%s' has a bad column number %s",
				     text, item);
			return -EINVAL;
		}
		if (!*end) {
			break;
		}
		p = end + 1;
	}
	return 0;
}

static bool config_plugin_name_ok(const char *name, size_t n)
{
	size_t i;

	if (n < 1 || n >= CONFIG_NAME_MAX) {
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!(islower((unsigned char)name[i]) ||
		      isdigit((unsigned char)name[i]) ||
		      name[i] == '_' || name[i] == '-')) {
			return false;
		}
	}
	return true;
}

static int config_check_plugin(const char *text, const union config_value *v,
			       char *why, size_t len)
{
	(void)v;
	/* the name becomes part of a file name: keep it tame */
	if (!config_plugin_name_ok(text, strlen(text))) {
		config_print(why, len, "'%s' is not a valid plugin name", text);
		return -EINVAL;
	}
	return 0;
}

static int config_check_pow2(const char *text, const union config_value *v,
			     char *why, size_t len)
{
	(void)text;
	/* the rings index with a mask */
	if (v->i <= 0 || (v->i & (v->i - 1))) {
		config_print(why, len, "%lld is not a power of two", v->i);
		return -EINVAL;
	}
	return 0;
}

static int config_check_endpoint(const char *text, const union config_value *v,
				 char *why, size_t len)
{
	static const char *const schemes[] = { "tcp://", "ipc://", "inproc://" };
	size_t i, n;

	(void)v;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i]);
		if (!strncmp(text, schemes[i], n) && text[n]) {
			return 0;
		}
	}
	config_print(why, len, "'%s' is not a valid endpoint", text);
	return -EINVAL;
}

static int config_check_edf_id(const char *text, const union config_value *v,
			       char *why, size_t len)
{
	const char *p;

	(void)v;
	/* EDF+ header subfields are separated by spaces: one word of ASCII */
	for (p = text; *p; p++) {
		if (*p <= ' ' || *p > '~') {
			config_print(why, len, "'%s' is not one word of printable ASCII", text);
			return -EINVAL;
		}
	}
	if (p == text) {
		config_print(why, len, "an empty id");
		return -EINVAL;
	}
	return 0;
}

static int config_check_edf_admincode(const char *text, const union config_value *v,
				      char *why, size_t len)
{
	int ret = config_check_edf_id(text, v, why, len);

	if (ret == 0 && strlen(text) > CONFIG_EDF_ADMINCODE_MAX) {
		config_print(why, len, "'%s' has %zu characters; the EDF+ header's recording "
			     "identification (80 characters) has room for %d", text, strlen(text),
			     CONFIG_EDF_ADMINCODE_MAX);
		return -EINVAL;
	}
	return ret;
}

static int config_check_file_name(const char *text, const union config_value *v,
				  char *why, size_t len)
{
	(void)v;
	/* a name, not a path: the directory is record.directory */
	if (!text[0] || strchr(text, '/')) {
		config_print(why, len, "'%s' is not a file name", text);
		return -EINVAL;
	}
	return 0;
}

/* The zone must exist and read: a day's end depends on it. */
static int config_check_zone(const char *text, const union config_value *v,
			     char *why, size_t len)
{
	struct zone *z = NULL;
	int ret;

	(void)v;
	ret = zone_load(text, &z, why, len);
	zone_free(z);
	return ret < 0 ? -EINVAL : 0;
}

static int config_check_control_endpoint(const char *text, const union config_value *v,
					 char *why, size_t len)
{
	const char *colon, *p;

	(void)v;
	if (!strncmp(text, "ipc://", 6) && text[6]) {
		return 0;
	}
	if (!strncmp(text, "tcp://", 6)) {
		colon = strrchr(text + 6, ':');
		if (colon && colon > text + 6 && colon[1]) {
			for (p = colon + 1; *p && (isdigit((unsigned char)*p) || !strcmp(p, "*")); p++) {
				;
			}
			if (!*p) {
				return 0;
			}
		}
	}
	config_print(why, len, "'%s' is not a valid control endpoint", text);
	return -EINVAL;
}

/**
 * config_defaults() - fill @cfg with the defaults of the key table
 * @cfg: configuration to overwrite
 *
 * Every default is parsed from its text in the table, so the defaults, the
 * template and the parser cannot disagree.
 */
void config_defaults(struct rpmsd_config *cfg)
{
	union config_value v;
	char why[CONFIG_ERR_MAX];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	train_table_default(&cfg->safety.train_table);
	for (i = 0; i < CONFIG_N_KEYS; i++) {
		/* a table default that does not parse is a build bug */
		if (config_parse_value(&config_keys[i], config_keys[i].def, &v,
				       why, sizeof(why)) < 0) {
			fprintf(stderr, "rpmsd: config table: %s.%s: default %s\n",
				config_keys[i].section, config_keys[i].key, why);
			abort();
		}
		config_store(cfg, &config_keys[i], config_keys[i].def, &v);
	}
}

/* Handle a "[name]" line: switch section or fail on an unknown one. */
static int config_enter_section(struct config_ctx *ctx, const char *name, size_t n)
{
	char allowed[CONFIG_ALLOWED_MAX];
	struct rpmsd_config *cfg = &ctx->cfg;
	const char *plugin;
	size_t i, np;

	for (i = 0; i < CONFIG_N_SECTIONS; i++) {
		if (strlen(config_sections[i]) == n &&
		    !strncmp(config_sections[i], name, n)) {
			ctx->section = config_sections[i];
			ctx->in_coil = false;
			return 0;
		}
	}
	np = strlen(CONFIG_COIL_PREFIX);
	plugin = name + np;
	if (n > np && !strncmp(name, CONFIG_COIL_PREFIX, np) &&
	    config_plugin_name_ok(plugin, n - np)) {
		if (cfg->plugin_section[0] &&
		    (strlen(cfg->plugin_section) != n - np ||
		     strncmp(cfg->plugin_section, plugin, n - np))) {
			config_fail(ctx, ctx->lineno,
				    "[%.*s]: second coil section (allowed: only one; [coil.%s] is at line %d)",
				    (int)n, name, cfg->plugin_section,
				    cfg->plugin_section_line);
			return -EINVAL;
		}
		/* reopening the same section is fine, like any other section */
		if (!cfg->plugin_section[0]) {
			memcpy(cfg->plugin_section, plugin, n - np);
			cfg->plugin_section[n - np] = '\0';
			cfg->plugin_section_line = ctx->lineno;
		}
		ctx->section = NULL;
		ctx->in_coil = true;
		return 0;
	}
	/* from the table, so that a new section cannot be left out here */
	allowed[0] = '\0';
	for (i = 0; i < CONFIG_N_SECTIONS; i++) {
		config_append(allowed, sizeof(allowed), "%s, ", config_sections[i]);
	}
	config_fail(ctx, ctx->lineno, "[%.*s]: unknown section (allowed: %scoil.<plugin>)",
		    (int)n, name, allowed);
	return -EINVAL;
}

/*
 * Look at a line before libinih does: section lines never reach the
 * handler, and an unknown section must fail even if it has no keys.
 */
static int config_scan_line(struct config_ctx *ctx, const char *line)
{
	const char *p = line;
	const char *end;

	if (ctx->lineno == 1 && !strncmp(p, "\xEF\xBB\xBF", 3)) {
		p += 3;
	}
	while (isspace((unsigned char)*p)) {
		p++;
	}
	if (*p != '[') {
		return 0;
	}
	for (end = p + 1; *end && *end != ']'; end++) {
		/* libinih ends the line at an inline comment: a syntax error */
		if (*end == ';' && isspace((unsigned char)end[-1])) {
			return 0;
		}
	}
	if (*end != ']') {
		return 0;
	}
	return config_enter_section(ctx, p + 1, (size_t)(end - p - 1));
}

/*
 * fgets for libinih that counts lines and refuses to split long ones. It
 * reads whole physical lines with getline, so a NUL byte cannot end a line
 * early and hide the rest of it (fgets + strlen would).
 */
static char *config_read_line(char *str, int num, void *stream)
{
	struct config_ctx *ctx = stream;
	ssize_t len;

	if (ctx->failed) {
		return NULL;
	}
	errno = 0;
	len = getline(&ctx->line, &ctx->line_cap, ctx->f);
	if (len < 0) {
		if (ferror(ctx->f)) {
			ctx->read_errno = errno ? errno : EIO;
		}
		return NULL;
	}
	ctx->lineno++;
	ctx->bytes += (size_t)len;
	if (ctx->bytes > CONFIG_FILE_MAX) {
		/* it grew while being read */
		config_fail(ctx, ctx->lineno, "the file is larger than %d bytes", CONFIG_FILE_MAX);
		return NULL;
	}
	if (memchr(ctx->line, '\0', (size_t)len)) {
		config_fail(ctx, ctx->lineno, "NUL byte in the line (allowed: text only)");
		return NULL;
	}
	/* a split line would be counted twice and its tail parsed as a key */
	if (len > num - 2 + (ctx->line[len - 1] == '\n')) {
		config_fail(ctx, ctx->lineno,
			    "line too long (allowed: at most %d characters)",
			    num - 2);
		return NULL;
	}
	memcpy(str, ctx->line, (size_t)len + 1);
	if (config_scan_line(ctx, str) < 0) {
		return NULL;
	}
	return str;
}

static int config_add_plugin_kv(struct config_ctx *ctx, const char *name,
				const char *value)
{
	struct rpmsd_config *cfg = &ctx->cfg;
	struct config_plugin_kv *kv;
	size_t i, n;

	if (strlen(name) >= sizeof(kv->key)) {
		config_fail(ctx, ctx->lineno,
			    "coil.%s: key '%s' is too long (allowed: at most %zu characters)",
			    cfg->plugin_section, name, sizeof(kv->key) - 1);
		return -EINVAL;
	}
	for (i = 0; i < cfg->n_plugin_kv; i++) {
		if (!strcmp(cfg->plugin_kv[i].key, name)) {
			config_fail(ctx, ctx->lineno,
				    "coil.%s.%s: set twice (first at line %d)",
				    cfg->plugin_section, name,
				    cfg->plugin_kv[i].line);
			return -EINVAL;
		}
	}
	if (cfg->n_plugin_kv >= CONFIG_MAX_PLUGIN_KEYS) {
		config_fail(ctx, ctx->lineno,
			    "coil.%s.%s: too many keys (allowed: at most %d)",
			    cfg->plugin_section, name, CONFIG_MAX_PLUGIN_KEYS);
		return -EINVAL;
	}
	n = strlen(value);
	if (n >= sizeof(kv->value)) {
		config_fail(ctx, ctx->lineno,
			    "coil.%s.%s: value of %zu characters is too long (allowed: at most %zu characters)",
			    cfg->plugin_section, name, n, sizeof(kv->value) - 1);
		return -EINVAL;
	}
	kv = &cfg->plugin_kv[cfg->n_plugin_kv++];
	memcpy(kv->key, name, strlen(name) + 1);
	memcpy(kv->value, value, n + 1);
	kv->line = ctx->lineno;
	return 0;
}

static void config_section_keys(const char *section, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < CONFIG_N_KEYS; i++) {
		if (!strcmp(config_keys[i].section, section)) {
			config_append(buf, len, "%s%s", buf[0] ? ", " : "",
				      config_keys[i].key);
		}
	}
}

/* libinih handler: one "key = value" line; returns 0 to stop on error. */
static int config_handler(void *user, const char *section, const char *name,
			  const char *value)
{
	struct config_ctx *ctx = user;
	char buf[CONFIG_ERR_MAX];
	const struct config_key *k;
	union config_value v;
	size_t idx;

	/* ours, not libinih's: it truncates long section names */
	(void)section;
	if (ctx->failed) {
		return 0;
	}
	if (!name[0]) {
		config_fail(ctx, ctx->lineno,
			    "syntax error (expected '[section]' or 'key = value')");
		return 0;
	}
	if (ctx->in_coil) {
		return config_add_plugin_kv(ctx, name, value) == 0;
	}
	if (!ctx->section) {
		config_fail(ctx, ctx->lineno,
			    "%s: key outside any section (expected a '[section]' line first)",
			    name);
		return 0;
	}
	k = config_find(ctx->section, name);
	if (!k) {
		config_section_keys(ctx->section, buf, sizeof(buf));
		config_fail(ctx, ctx->lineno, "%s.%s: unknown key (allowed: %s)",
			    ctx->section, name, buf);
		return 0;
	}
	idx = (size_t)(k - config_keys);
	if (ctx->key_line[idx]) {
		config_fail(ctx, ctx->lineno, "%s.%s: set twice (first at line %d)",
			    k->section, k->key, ctx->key_line[idx]);
		return 0;
	}
	if (config_parse_value(k, value, &v, buf, sizeof(buf)) < 0) {
		config_fail(ctx, ctx->lineno, "%s.%s: %s", k->section, k->key, buf);
		return 0;
	}
	config_store(&ctx->cfg, k, value, &v);
	ctx->key_line[idx] = ctx->lineno;
	return 1;
}

/* Line where section.key was set, 0 if it kept its default. */
static int config_line_of(const struct config_ctx *ctx, const struct config_key *k)
{
	return ctx->key_line[k - config_keys];
}

int config_key_line(const struct rpmsd_config *cfg, const char *section, const char *key)
{
	const struct config_key *k = config_find(section, key);

	return k ? cfg->key_line[k - config_keys] : 0;
}

/* Line of @a if set in the file, else of @b, else 0. */
static int config_pair_line(const struct config_ctx *ctx,
			    const struct config_key *a, const struct config_key *b)
{
	int line = config_line_of(ctx, a);

	return line ? line : config_line_of(ctx, b);
}

/*
 * Check that stim.@stim_key does not exceed safety.@max_key; both may be
 * int or double.
 */
static int config_check_limit(struct config_ctx *ctx, const char *stim_key,
			      const char *max_key)
{
	const struct config_key *s = config_find("stim", stim_key);
	const struct config_key *m = config_find("safety", max_key);
	double sv, mv;

	if (s->type == CONFIG_TYPE_INT) {
		sv = *(int *)config_field(&ctx->cfg, s);
		mv = *(int *)config_field(&ctx->cfg, m);
	} else {
		sv = *(double *)config_field(&ctx->cfg, s);
		mv = *(double *)config_field(&ctx->cfg, m);
	}
	if (sv <= mv) {
		return 0;
	}
	config_fail(ctx, config_pair_line(ctx, s, m),
		    "stim.%s: %.15g exceeds safety.%s = %.15g (allowed: %.15g to %.15g%s%s)",
		    stim_key, sv, max_key, mv, s->min, mv,
		    s->unit[0] ? " " : "", s->unit);
	return -EINVAL;
}

/* The key that sets the pulses of a train, per protocol. */
static const char *const config_pulses_key[] = {
	[CONFIG_PROTOCOL_SINGLE] = "protocol",
	[CONFIG_PROTOCOL_TRAIN] = "train_pulses",
	[CONFIG_PROTOCOL_ONOFF] = "on_ms",
	[CONFIG_PROTOCOL_THETA] = "theta_bursts",
};

/* Line of stim.@k if set, else of safety.@l, for a message about both. */
static int config_stim_line(const struct config_ctx *ctx, const char *k, const char *l)
{
	return config_pair_line(ctx, config_find("stim", k), config_find("safety", l));
}

/* Smallest whole-ns interval the gate's max_frequency rule admits at @max_hz. */
static int64_t config_min_interval_ns(double max_hz)
{
	int64_t i = (int64_t)ceil(1e9 / max_hz) - 1;

	/* the same test as safety_check_frequency, so the edge is exact */
	while (i > 0 && ((double)(i - 1) + 1.0) * max_hz >= 1e9) {
		i--;
	}
	while (((double)i + 1.0) * max_hz < 1e9) {
		i++;
	}
	return i < 0 ? 0 : i;
}

/* @ms rounded up to whole µs, then up again until llround(ms * 1e6) >= @ns. */
static double config_ms_at_least(int64_t ns)
{
	double ms = ceil((double)ns / 1e3) / 1e3;

	while (llround(ms * 1e6) < ns) {
		ms += 1e-3;
	}
	return ms;
}

/* The gap (ns) a pulse needs after the one before under @rule, and what it is called. */
static int64_t config_gap_needed(const struct rpmsd_config *cfg, const struct safety_limits *lim,
				 enum safety_rule rule, char *what, size_t len)
{
	int64_t need;

	if (rule == SAFETY_TRAIN_INTERVAL) {
		config_print(what, len, "safety.min_train_interval_ms = %.15g ms",
			     cfg->safety.min_train_interval_ms);
		return lim->min_train_interval_ns;
	}
	need = config_min_interval_ns(lim->max_frequency_hz);
	config_print(what, len, "the %.6g ms (one period) of safety.max_frequency_hz = %.15g Hz",
		     (double)need / 1e6, lim->max_frequency_hz);
	return need;
}

/*
 * stim.off_ms a cycle needs so that its last pulse is @need_ns before the
 * next train's first: the cycle is llround((on + off) x 1e9) ns long.
 */
static double config_off_for_cycle(const struct config_train_shape *sh,
				   const struct policy_protocol *pp, int64_t need_ns)
{
	int64_t last = policy_pulse_offset_ns(&pp->proto, pp->proto.pulses - 1);
	double off = config_ms_at_least(last + need_ns - llround(sh->on_s * 1e9));

	if (off < 0.0) {
		return 0.0;
	}
	while (llround((sh->on_s + off * 1e-3) * 1e9) - last < need_ns) {
		off += 1e-3;
	}
	return off;
}

/* Describe the first pulse of the protocol the gate would refuse (policy_check). */
static void config_protocol_refused(struct config_ctx *ctx, const struct config_train_shape *sh,
				    const struct policy_protocol *pp,
				    const struct safety_limits *lim,
				    const struct policy_refusal *ref)
{
	const struct rpmsd_config *cfg = &ctx->cfg;
	const char *name = config_protocols[cfg->stim.protocol].name;
	const struct safety_verdict *v = &ref->verdict;
	int64_t need, last, off_ns;
	char what[160];
	double level;
	int line;

	switch (v->rule) {
	case SAFETY_MAX_FREQUENCY:
	case SAFETY_TRAIN_INTERVAL:
		need = config_gap_needed(cfg, lim, v->rule, what, sizeof(what));
		if (ref->at == POLICY_AT_NEXT_BURST) {
			last = policy_pulse_offset_ns(&pp->proto, pp->proto.burst_pulses - 1);
			line = config_stim_line(ctx, "theta_period_ms", "max_frequency_hz");
			if (ref->interval_ns < 0) {
				config_fail(ctx, line,
					    "stim.theta_period_ms: %.15g ms is shorter than a burst (%u pulses at %.15g Hz span %.6g ms): the next burst would start %.6g ms before its last pulse, and the gap must be at least %s (allowed: %.15g ms or more)",
					    cfg->stim.theta_period_ms, sh->burst_pulses, sh->rate_hz,
					    (double)last / 1e6, (double)-ref->interval_ns / 1e6, what,
					    config_ms_at_least(last + need));
			} else {
				config_fail(ctx, line,
					    "stim.theta_period_ms: %.15g ms leaves %.6g ms from the last pulse of a burst (%u pulse%s at %.15g Hz) to the first of the next, less than %s (allowed: %.15g ms or more)",
					    cfg->stim.theta_period_ms, (double)ref->interval_ns / 1e6,
					    sh->burst_pulses, sh->burst_pulses == 1 ? "" : "s",
					    sh->rate_hz, what,
					    config_ms_at_least(last + need));
			}
			return;
		}
		if (ref->at == POLICY_AT_NEXT_TRAIN) {
			config_fail(ctx, config_stim_line(ctx, "off_ms", v->rule == SAFETY_TRAIN_INTERVAL
							  ? "min_train_interval_ms" : "max_frequency_hz"),
				    "stim.off_ms: %.15g ms leaves %.6g ms from the last pulse of a train to the first of the next (a train starts every %.6g ms: its %.6g ms on-period, then off_ms), less than %s (allowed: %.15g ms or more)",
				    cfg->stim.off_ms, (double)ref->interval_ns / 1e6,
				    (double)pp->proto.cycle_period_ns / 1e6, sh->on_s * 1e3, what,
				    config_off_for_cycle(sh, pp, need));
			return;
		}
		if (ref->at == POLICY_AT_REPEAT) {
			off_ns = need - (ref->interval_ns - pp->off_ns);
			config_fail(ctx, config_stim_line(ctx, "off_ms", v->rule == SAFETY_TRAIN_INTERVAL
							  ? "min_train_interval_ms" : "max_frequency_hz"),
				    "stim.off_ms: %.15g ms: in open loop, a request cut short by a refusal is followed by the rest off_ms after the refused pulse, which can be %.6g ms after the last pulse delivered, less than %s (allowed: %.15g ms or more)",
				    cfg->stim.off_ms, (double)ref->interval_ns / 1e6, what,
				    config_ms_at_least(off_ns > 0 ? off_ns : 0));
			return;
		}
		break;
	case SAFETY_TRAIN_PULSES:
		config_fail(ctx, config_stim_line(ctx, config_pulses_key[cfg->stim.protocol],
						  "max_train_pulses"),
			    "stim.protocol = %s: %u pulses per train exceed safety.max_train_pulses = %d",
			    name, sh->pulses, cfg->safety.max_train_pulses);
		return;
	case SAFETY_TRAIN_DURATION:
		level = cfg->stim.intensity_pct / cfg->safety.motor_threshold_pct * 100.0;
		if (fabs(ref->rate_hz - sh->rate_hz) <= sh->rate_hz * 1e-6) {
			config_fail(ctx, config_stim_line(ctx, "intensity_pct", "train_table"),
				    "stim.protocol = %s: a train of %u pulses at %.15g Hz lasts %.4g s, longer than the %.4g s that safety.train_table allows at %.15g Hz and %.4g %% of motor threshold (stim.intensity_pct %.15g %% / safety.motor_threshold_pct %.15g %%)%s",
				    name, sh->pulses, sh->rate_hz, (double)sh->pulses / sh->rate_hz,
				    v->limit, sh->rate_hz, level, cfg->stim.intensity_pct,
				    cfg->safety.motor_threshold_pct,
				    v->limit == 0.0 ? " (outside the table: no rate or intensity that high is listed)" : "");
			return;
		}
		config_fail(ctx, config_stim_line(ctx, "intensity_pct", "train_table"),
			    "stim.protocol = %s: the pulses of a train come at %.6g Hz, not the %.15g Hz it is declared at (%u pulses in %.6g s): at that rate its first %u pulses last %.4g s, longer than the %.4g s that safety.train_table allows at %.6g Hz and %.4g %% of motor threshold (stim.intensity_pct %.15g %% / safety.motor_threshold_pct %.15g %%)%s",
			    name, ref->rate_hz, sh->rate_hz, ref->index + 1,
			    (double)policy_pulse_offset_ns(&pp->proto, ref->index) / 1e9,
			    ref->index + 1, v->value, v->limit, ref->rate_hz, level,
			    cfg->stim.intensity_pct, cfg->safety.motor_threshold_pct,
			    v->limit == 0.0 ? " (outside the table: no rate or intensity that high is listed)" : "");
		return;
	case SAFETY_SESSION_PULSES:
		if (cfg->stim.mode == CONFIG_MODE_OPEN_LOOP) {
			config_fail(ctx, config_stim_line(ctx, "open_loop_pulses", "max_session_pulses"),
				    "stim.open_loop_pulses: %d exceeds safety.max_session_pulses = %d",
				    cfg->stim.open_loop_pulses, cfg->safety.max_session_pulses);
			return;
		}
		config_fail(ctx, config_stim_line(ctx, "cycles", "max_session_pulses"),
			    "stim.cycles: one burst onset asks for %llu pulses (%u trains of %u), more than safety.max_session_pulses = %d allows in a whole session",
			    (unsigned long long)sh->cycles * sh->pulses, sh->cycles, sh->pulses,
			    cfg->safety.max_session_pulses);
		return;
	case SAFETY_INTENSITY:
		(void)config_check_limit(ctx, "intensity_pct", "max_intensity_pct");
		return;
	default:
		break;
	}
	config_fail(ctx, config_stim_line(ctx, "protocol", "max_frequency_hz"),
		    "stim.protocol = %s: the safety gate would refuse pulse %u of train %u (rule %s: %.6g, limit %.6g)",
		    name, ref->index + 1, ref->train + 1, safety_rule_name(v->rule), v->value,
		    v->limit);
}

/*
 * The protocol must be able to pass the gate at all: a protocol the gate
 * would refuse is a configuration error found before any patient is
 * connected, not a refusal event found during a session. The decision is
 * policy_check's: the policy's own requests, pulse by pulse, through the
 * gate itself (same rules, same arithmetic, same tolerances). What is
 * reported is the plainest true reason: a declared rate or train length
 * above its cap first, then the first pulse the gate would refuse.
 */
static int config_check_protocol(struct config_ctx *ctx)
{
	const struct rpmsd_config *cfg = &ctx->cfg;
	struct config_train_shape sh;
	struct policy_protocol pp;
	struct policy_refusal ref;
	struct safety_limits lim;
	bool open_loop = cfg->stim.mode == CONFIG_MODE_OPEN_LOOP;
	uint64_t reach;

	if (cfg->safety.max_session_pulses > cfg->safety.max_daily_pulses) {
		config_fail(ctx, config_pair_line(ctx, config_find("safety", "max_session_pulses"),
						  config_find("safety", "max_daily_pulses")),
			    "safety.max_session_pulses: %d exceeds safety.max_daily_pulses = %d",
			    cfg->safety.max_session_pulses, cfg->safety.max_daily_pulses);
		return -EINVAL;
	}
	config_train_shape(cfg, &sh);
	policy_protocol_from_config(cfg, &pp);
	safety_limits_from_config(cfg, &lim);
	if (policy_check(&pp, open_loop, (uint64_t)cfg->stim.open_loop_pulses, &lim, &ref)) {
		return 0;
	}
	if (ref.burst_rate) {
		(void)config_check_limit(ctx, cfg->stim.protocol == CONFIG_PROTOCOL_THETA
					 ? "theta_frequency_hz" : "train_frequency_hz",
					 "max_frequency_hz");
		if (ctx->failed) {
			return -EINVAL;
		}
	}
	reach = sh.pulses;
	if (open_loop && (uint64_t)cfg->stim.open_loop_pulses < reach) {
		reach = (uint64_t)cfg->stim.open_loop_pulses;
	}
	if (cfg->stim.protocol == CONFIG_PROTOCOL_TRAIN &&
	    reach > (uint64_t)cfg->safety.max_train_pulses &&
	    config_check_limit(ctx, "train_pulses", "max_train_pulses") < 0) {
		return -EINVAL;
	}
	if (sh.rate_hz > 0.0 && !(cfg->safety.motor_threshold_pct > 0.0)) {
		config_fail(ctx, config_stim_line(ctx, "protocol", "motor_threshold_pct"),
			    "safety.motor_threshold_pct: not set, and stim.protocol = %s fires trains: the longest train allowed (safety.train_table) depends on the intensity in %% of the patient's motor threshold (allowed: the threshold measured this session, 1 to 100 %%)",
			    config_protocols[cfg->stim.protocol].name);
		return -EINVAL;
	}
	config_protocol_refused(ctx, &sh, &pp, &lim, &ref);
	return -EINVAL;
}

/* Load safety.train_table now, so that a bad table is a config error. */
static int config_check_paths(struct config_ctx *ctx)
{
	struct rpmsd_config *cfg = &ctx->cfg;
	char path[CONFIG_PATH_MAX], why[CONFIG_ERR_MAX];
	int line = config_line_of(ctx, config_find("safety", "train_table"));

	if (ctx->flags & CONFIG_CHECK_TABLE_IN_FORCE) {
		/*
		 * A run-time change ("set", SIGHUP) is held to the table the gate
		 * loaded at start, whatever the file says now; and reading a
		 * file here could block the control thread.
		 */
		return 0;
	}
	if (!cfg->safety.train_table_file[0]) {
		train_table_default(&cfg->safety.train_table);
		return 0;
	}
	if (config_resolve(cfg, cfg->safety.train_table_file, path, sizeof(path)) < 0) {
		config_fail(ctx, line, "safety.train_table: path too long");
		return -EINVAL;
	}
	if (train_table_load(path, &cfg->safety.train_table, why, sizeof(why)) < 0) {
		config_fail(ctx, line, "safety.train_table: %s", why);
		return -EINVAL;
	}
	return 0;
}

/*
 * Whether a control endpoint can only be reached from this host: ipc, or
 * tcp on a loopback address. Anything else (a wildcard, an interface, a
 * host name) counts as exposed.
 */
static bool config_endpoint_local(const char *ep)
{
	static const char *const local[] = { "localhost", "::1", "lo" };
	const char *host, *colon;
	size_t n, i;

	if (!strncmp(ep, "ipc://", 6)) {
		return true;
	}
	if (strncmp(ep, "tcp://", 6)) {
		return false;
	}
	host = ep + 6;
	colon = strrchr(host, ':');
	n = colon ? (size_t)(colon - host) : strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		if (strlen(local[i]) == n && !strncmp(host, local[i], n)) {
			return true;
		}
	}
	/* 127.0.0.0/8, written as a dotted quad */
	if (n < 4 || strncmp(host, "127.", 4)) {
		return false;
	}
	for (i = 4; i < n; i++) {
		if (!isdigit((unsigned char)host[i]) && host[i] != '.') {
			return false;
		}
	}
	return true;
}

/*
 * The control socket arms the coil: reachable from beyond this host it
 * must encrypt and authenticate (CURVE, with an allowlist of clients).
 */
static int config_check_control(struct config_ctx *ctx)
{
	const struct rpmsd_config *cfg = &ctx->cfg;
	bool curve = cfg->control.curve_server_secret_file[0] != '\0';
	bool keys = cfg->control.curve_allowed_keys[0] != '\0';

	if (curve && !keys) {
		config_fail(ctx, config_line_of(ctx, config_find("control", "curve_server_secret_file")),
			    "control.curve_allowed_keys: missing (required with control.curve_server_secret_file: without an allowlist every client key would be let in)");
		return -EINVAL;
	}
	if (keys && !curve) {
		config_fail(ctx, config_line_of(ctx, config_find("control", "curve_allowed_keys")),
			    "control.curve_allowed_keys: set without control.curve_server_secret_file (allowed: both, or neither)");
		return -EINVAL;
	}
	if (!curve && !config_endpoint_local(cfg->control.endpoint)) {
		config_fail(ctx, config_line_of(ctx, config_find("control", "endpoint")),
			    "control.endpoint: '%s' can be reached from other hosts, and whoever reaches it can arm the coil (allowed without CURVE: ipc://PATH, tcp://127.0.0.1:PORT, tcp://[::1]:PORT, tcp://localhost:PORT; or set control.curve_server_secret_file and control.curve_allowed_keys)",
			    cfg->control.endpoint);
		return -EINVAL;
	}
	return 0;
}

/* Checks that involve more than one key, run once the file is read. */
static int config_check_all(struct config_ctx *ctx)
{
	struct rpmsd_config *cfg = &ctx->cfg;
	const struct config_key *a, *b;

	if (cfg->source.type == CONFIG_SOURCE_REPLAY && !cfg->source.file[0] &&
	    !(ctx->flags & CONFIG_LOAD_INPUT_GIVEN)) {
		config_fail(ctx, 0,
			    "source.file: missing (required when source.type = replay)");
		return -EINVAL;
	}
	if (cfg->source.type == CONFIG_SOURCE_IIO && !cfg->source.device[0]) {
		config_fail(ctx, 0,
			    "source.device: missing (required when source.type = iio)");
		return -EINVAL;
	}
	if (cfg->source.type == CONFIG_SOURCE_IIO && !cfg->source.channels[0]) {
		config_fail(ctx, 0,
			    "source.channels: missing (required when source.type = iio)");
		return -EINVAL;
	}
	if (config_check_control(ctx) < 0) {
		return -EINVAL;
	}
	if (cfg->plugin_section[0] &&
	    strcmp(cfg->plugin_section, cfg->stim.plugin)) {
		config_fail(ctx, cfg->plugin_section_line,
			    "coil.%s: section for plugin '%s' but stim.plugin is '%s'",
			    cfg->plugin_section, cfg->plugin_section,
			    cfg->stim.plugin);
		return -EINVAL;
	}
	if (cfg->dsp.lowpass_hz <= cfg->dsp.highpass_hz) {
		a = config_find("dsp", "lowpass_hz");
		b = config_find("dsp", "highpass_hz");
		config_fail(ctx, config_pair_line(ctx, a, b),
			    "dsp.lowpass_hz: %.15g is not above dsp.highpass_hz = %.15g (allowed: above %.15g Hz)",
			    cfg->dsp.lowpass_hz, cfg->dsp.highpass_hz,
			    cfg->dsp.highpass_hz);
		return -EINVAL;
	}
	if (!strcmp(cfg->detect.channel, "any")) {
		cfg->detect.channel_rule = CONFIG_CHANNEL_ANY;
	} else if (!strcmp(cfg->detect.channel, "all")) {
		cfg->detect.channel_rule = CONFIG_CHANNEL_ALL;
	} else {
		cfg->detect.channel_rule = CONFIG_CHANNEL_NAMED;
	}
	if (cfg->source.reopen_ms > cfg->source.reopen_max_ms) {
		a = config_find("source", "reopen_max_ms");
		b = config_find("source", "reopen_ms");
		config_fail(ctx, config_pair_line(ctx, a, b),
			    "source.reopen_max_ms: %d is below source.reopen_ms = %d (allowed: %d or more)",
			    cfg->source.reopen_max_ms, cfg->source.reopen_ms,
			    cfg->source.reopen_ms);
		return -EINVAL;
	}
	if (cfg->detect.k_off >= cfg->detect.k_on) {
		a = config_find("detect", "k_off");
		b = config_find("detect", "k_on");
		config_fail(ctx, config_pair_line(ctx, a, b),
			    "detect.k_off: %.15g is not below detect.k_on = %.15g (allowed: below %.15g)",
			    cfg->detect.k_off, cfg->detect.k_on, cfg->detect.k_on);
		return -EINVAL;
	}
	if (config_check_limit(ctx, "intensity_pct", "max_intensity_pct") < 0) {
		return -EINVAL;
	}
	/* the table first: the protocol is checked against it */
	if (config_check_paths(ctx) < 0) {
		return -EINVAL;
	}
	if (config_check_protocol(ctx) < 0) {
		return -EINVAL;
	}
	return 0;
}

static void config_inih_setup(struct config_inih_opts *saved)
{
	saved->allow_multiline = ini_allow_multiline;
	saved->stop_on_first_error = ini_stop_on_first_error;
	saved->use_stack = ini_use_stack;
	saved->allow_no_value = ini_allow_no_value;
	saved->allow_bom = ini_allow_bom;
	saved->allow_inline_comments = ini_allow_inline_comments;
	saved->max_line = ini_max_line;

	/* one key per line, so the line we count is the key's line */
	ini_allow_multiline = false;
	/* the first error is the one reported; stop there */
	ini_stop_on_first_error = true;
	ini_use_stack = true;
	ini_allow_no_value = false;
	ini_allow_bom = true;
	ini_allow_inline_comments = true;
	ini_max_line = CONFIG_LINE_MAX;
}

static void config_inih_restore(const struct config_inih_opts *saved)
{
	ini_allow_multiline = saved->allow_multiline;
	ini_stop_on_first_error = saved->stop_on_first_error;
	ini_use_stack = saved->use_stack;
	ini_allow_no_value = saved->allow_no_value;
	ini_allow_bom = saved->allow_bom;
	ini_allow_inline_comments = saved->allow_inline_comments;
	ini_max_line = saved->max_line;
}

/**
 * config_load() - parse and validate an INI file on top of the defaults
 * @cfg: receives the configuration; untouched on error
 * @path: file to read; error messages name it exactly as given
 * @err: receives "FILE:LINE: section.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Not thread-safe: libinih's options are process-wide.
 *
 * Return: 0, -EINVAL for bad content, or a negative errno when the file
 * cannot be opened or read.
 */
int config_load(struct rpmsd_config *cfg, const char *path, char *err, size_t errlen)
{
	return config_load_flags(cfg, path, 0, err, errlen);
}

int config_load_flags(struct rpmsd_config *cfg, const char *path, unsigned flags,
		      char *err, size_t errlen)
{
	struct config_inih_opts saved;
	struct config_ctx *ctx;
	struct stat st;
	size_t n = strlen(path);
	int ret;
	int rc;

	if (errlen) {
		err[0] = '\0';
	}
	if (n >= CONFIG_PATH_MAX) {
		config_report(err, errlen, path, 0,
			      "path is too long (allowed: at most %d characters)",
			      CONFIG_PATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	/* large (plugin keys), so not on the stack */
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		config_report(err, errlen, path, 0, "out of memory");
		return -ENOMEM;
	}
	ctx->path = path;
	ctx->err = err;
	ctx->errlen = errlen;
	ctx->flags = flags;
	config_defaults(&ctx->cfg);
	memcpy(ctx->cfg.path, path, n + 1);

	ctx->f = file_open_regular(path, &rc);
	if (!ctx->f) {
		if (rc == -EISDIR) {
			config_report(err, errlen, path, 0, "cannot read: %s", strerror(-rc));
		} else if (rc == -EINVAL) {
			config_report(err, errlen, path, 0,
				      "not a regular file (allowed: a configuration file)");
		} else {
			config_report(err, errlen, path, 0, "cannot open: %s", strerror(-rc));
		}
		goto err_free;
	}
	if (fstat(fileno(ctx->f), &st) == 0 && st.st_size > CONFIG_FILE_MAX) {
		config_report(err, errlen, path, 0,
			      "%lld bytes, too large for a configuration file (allowed: at most %d bytes)",
			      (long long)st.st_size, CONFIG_FILE_MAX);
		rc = -EFBIG;
		goto err_close;
	}

	config_inih_setup(&saved);
	ret = ini_parse_stream(config_read_line, ctx, config_handler, ctx);
	config_inih_restore(&saved);

	if (ctx->failed) {
		rc = -EINVAL;
		goto err_close;
	}
	if (ctx->read_errno) {
		rc = -ctx->read_errno;
		config_fail(ctx, 0, "cannot read: %s", strerror(ctx->read_errno));
		goto err_close;
	}
	if (ret > 0) {
		config_fail(ctx, ret,
			    "syntax error (expected '[section]' or 'key = value')");
		rc = -EINVAL;
		goto err_close;
	}
	if (ret < 0) {
		config_fail(ctx, 0, "out of memory");
		rc = -ENOMEM;
		goto err_close;
	}
	rc = config_check_all(ctx);
	if (rc < 0) {
		goto err_close;
	}

	fclose(ctx->f);
	memcpy(ctx->cfg.key_line, ctx->key_line, sizeof(ctx->key_line));
	*cfg = ctx->cfg;
	free(ctx->line);
	free(ctx);
	return 0;

err_close:
	fclose(ctx->f);
err_free:
	free(ctx->line);
	free(ctx);
	return rc;
}

/* config_override of safety.train_table: the file is read here, once. */
static int config_override_table(struct rpmsd_config *cfg, const char *origin,
				 const struct config_key *k, const char *value,
				 const union config_value *v, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX], why[CONFIG_ERR_MAX];
	struct train_table *t = malloc(sizeof(*t));
	int rc = 0;

	if (!t) {
		config_report(err, errlen, origin, 0, "out of memory");
		return -ENOMEM;
	}
	if (!value[0]) {
		train_table_default(t);
	} else if (config_resolve(cfg, value, path, sizeof(path)) < 0) {
		config_report(err, errlen, origin, 0, "safety.train_table: path too long");
		rc = -EINVAL;
	} else if (train_table_load(path, t, why, sizeof(why)) < 0) {
		config_report(err, errlen, origin, 0, "safety.train_table: %s", why);
		rc = -EINVAL;
	}
	if (rc == 0) {
		config_store(cfg, k, value, v);
		cfg->safety.train_table = *t;
	}
	free(t);
	return rc;
}

/**
 * config_override() - set one key from somewhere other than a file
 * @cfg: the configuration to change; untouched on error
 * @origin: what set it, for messages (a command-line option)
 * @section: the key's section
 * @key: the key
 * @value: its value as text, parsed and checked as in a file
 * @err: receives "ORIGIN: section.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Cross-key rules are checked by config_recheck() once every override is in.
 * safety.train_table is read here (config_recheck reads no file).
 *
 * Return: 0, or -EINVAL (unknown key or bad value).
 */
int config_override(struct rpmsd_config *cfg, const char *origin, const char *section,
		    const char *key, const char *value, char *err, size_t errlen)
{
	char why[CONFIG_ERR_MAX];
	const struct config_key *k = config_find(section, key);
	union config_value v;

	if (!k) {
		config_report(err, errlen, origin, 0, "%s.%s: unknown key", section, key);
		return -EINVAL;
	}
	if (config_parse_value(k, value, &v, why, sizeof(why)) < 0) {
		config_report(err, errlen, origin, 0, "%s.%s: %s", section, key, why);
		return -EINVAL;
	}
	if (k == config_find("safety", "train_table")) {
		/* config_recheck never reads the file: load the new table now */
		return config_override_table(cfg, origin, k, value, &v, err, errlen);
	}
	config_store(cfg, k, value, &v);
	return 0;
}

/**
 * config_value_text() - the value of one key as it would be written in a file
 * @cfg: the configuration
 * @section: the key's section
 * @key: the key
 * @buf: receives the text (cut to fit)
 * @len: size of @buf
 *
 * Return: 0, or -ENOENT for a key the table does not have.
 */
int config_value_text(const struct rpmsd_config *cfg, const char *section, const char *key,
		      char *buf, size_t len)
{
	const struct config_key *k = config_find(section, key);
	const void *p;
	const struct config_enum *e;

	if (!k) {
		return -ENOENT;
	}
	p = (const char *)cfg + k->offset;
	switch (k->type) {
	case CONFIG_TYPE_BOOL:
		config_print(buf, len, "%s", *(const bool *)p ? "true" : "false");
		break;
	case CONFIG_TYPE_INT:
		config_print(buf, len, "%d", *(const int *)p);
		break;
	case CONFIG_TYPE_DOUBLE:
		config_print(buf, len, "%.15g", *(const double *)p);
		break;
	case CONFIG_TYPE_STRING:
		config_print(buf, len, "%s", (const char *)p);
		break;
	case CONFIG_TYPE_ENUM:
		for (e = k->values; e->name && e->value != *(const int *)p; e++) {
			;
		}
		config_print(buf, len, "%s", e->name ? e->name : "");
		break;
	}
	return 0;
}

/**
 * config_recheck() - check the rules between keys after config_override()
 * @cfg: the configuration; derived fields are updated, nothing else
 *
 * Reads no file: the protocol is checked against cfg->safety.train_table,
 * the table loaded with the configuration (the one in force in a running
 * daemon), never against the file as it may have been edited since.
 * @origin: named in messages (the overrides' source)
 * @err: receives "ORIGIN: section.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Return: 0 or -EINVAL.
 */
int config_recheck(struct rpmsd_config *cfg, const char *origin, char *err, size_t errlen)
{
	struct config_ctx *ctx = calloc(1, sizeof(*ctx));
	int rc;

	if (!ctx) {
		config_report(err, errlen, origin, 0, "out of memory");
		return -ENOMEM;
	}
	ctx->cfg = *cfg;
	ctx->path = origin;
	ctx->err = err;
	ctx->errlen = errlen;
	ctx->flags = CONFIG_CHECK_TABLE_IN_FORCE;
	rc = config_check_all(ctx);
	if (rc == 0) {
		*cfg = ctx->cfg;
	}
	free(ctx);
	return rc;
}

/* Describe a plugin's key as a table key so the same parser applies. */
static int config_coil_key(const struct rpmsd_coil_key *ck, struct config_key *k)
{
	memset(k, 0, sizeof(*k));
	k->key = ck->name;
	k->def = ck->def;
	k->min = ck->min;
	k->max = ck->max;
	k->unit = ck->unit ? ck->unit : "";
	k->doc = ck->doc;
	k->size = CONFIG_PATH_MAX;
	switch (ck->type) {
	case RPMSD_COIL_KEY_BOOL:
		k->type = CONFIG_TYPE_BOOL;
		return 0;
	case RPMSD_COIL_KEY_INT:
		k->type = CONFIG_TYPE_INT;
		return 0;
	case RPMSD_COIL_KEY_DOUBLE:
		k->type = CONFIG_TYPE_DOUBLE;
		return 0;
	case RPMSD_COIL_KEY_STRING:
		k->type = CONFIG_TYPE_STRING;
		return 0;
	}
	return -EINVAL;
}

static const struct rpmsd_coil_key *config_coil_find(const struct rpmsd_coil_key *keys,
						     size_t n_keys, const char *name)
{
	size_t i;

	for (i = 0; i < n_keys; i++) {
		if (!strcmp(keys[i].name, name)) {
			return &keys[i];
		}
	}
	return NULL;
}

/**
 * config_validate_plugin_keys() - check [coil.<name>] against a plugin
 * @cfg: loaded configuration
 * @keys: the plugin's declared keys
 * @n_keys: number of @keys
 * @err: receives "FILE:LINE: coil.<name>.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Return: 0, or -EINVAL on an unknown key or a bad value.
 */
int config_validate_plugin_keys(const struct rpmsd_config *cfg,
				const struct rpmsd_coil_key *keys, size_t n_keys,
				char *err, size_t errlen)
{
	const struct config_plugin_kv *kv;
	const struct rpmsd_coil_key *ck;
	char buf[CONFIG_ERR_MAX];
	struct config_key k;
	union config_value v;
	size_t i, j;

	if (errlen) {
		err[0] = '\0';
	}
	for (i = 0; i < cfg->n_plugin_kv; i++) {
		kv = &cfg->plugin_kv[i];
		ck = config_coil_find(keys, n_keys, kv->key);
		if (!ck) {
			buf[0] = '\0';
			for (j = 0; j < n_keys; j++) {
				config_append(buf, sizeof(buf), "%s%s",
					      j ? ", " : "", keys[j].name);
			}
			config_report(err, errlen, cfg->path, kv->line,
				      "coil.%s.%s: unknown key (allowed: %s)",
				      cfg->plugin_section, kv->key,
				      n_keys ? buf : "none");
			return -EINVAL;
		}
		if (config_coil_key(ck, &k) < 0) {
			config_report(err, errlen, cfg->path, kv->line,
				      "coil.%s.%s: the plugin declares an unknown type %d",
				      cfg->plugin_section, kv->key, (int)ck->type);
			return -EINVAL;
		}
		if (config_parse_value(&k, kv->value, &v, buf, sizeof(buf)) < 0) {
			config_report(err, errlen, cfg->path, kv->line,
				      "coil.%s.%s: %s", cfg->plugin_section,
				      kv->key, buf);
			return -EINVAL;
		}
	}
	return 0;
}

/**
 * config_plugin_value() - effective text of a plugin key
 * @cfg: loaded configuration
 * @keys: the plugin's declared keys
 * @n_keys: number of @keys
 * @key: key name
 *
 * Return: the value set in [coil.<name>], else the declared default, or
 * NULL if the plugin does not declare @key.
 */
const char *config_plugin_value(const struct rpmsd_config *cfg,
				const struct rpmsd_coil_key *keys, size_t n_keys,
				const char *key)
{
	const struct rpmsd_coil_key *ck = config_coil_find(keys, n_keys, key);
	size_t i;

	if (!ck) {
		return NULL;
	}
	for (i = 0; i < cfg->n_plugin_kv; i++) {
		if (!strcmp(cfg->plugin_kv[i].key, key)) {
			return cfg->plugin_kv[i].value;
		}
	}
	return ck->def;
}

/**
 * config_source_path() - resolve source.file into @out
 * @cfg: loaded configuration
 * @out: receives the path
 * @outlen: size of @out
 *
 * An absolute source.file is copied as is; a relative one is taken relative
 * to the directory of cfg->path, or left relative to the current directory
 * when cfg->path has no directory part or is empty.
 *
 * Return: 0 or -ENAMETOOLONG.
 */
int config_source_path(const struct rpmsd_config *cfg, char *out, size_t outlen)
{
	return config_resolve(cfg, cfg->source.file, out, outlen);
}

void config_train_shape(const struct rpmsd_config *cfg, struct config_train_shape *sh)
{
	double last_s = 0.0;	/* a train's first pulse to its last */

	memset(sh, 0, sizeof(*sh));
	sh->cycles = 1;
	switch (cfg->stim.protocol) {
	case CONFIG_PROTOCOL_TRAIN:
		sh->pulses = (unsigned)cfg->stim.train_pulses;
		sh->rate_hz = cfg->stim.train_frequency_hz;
		sh->burst_pulses = sh->pulses;
		sh->on_s = sh->pulses / sh->rate_hz;
		break;
	case CONFIG_PROTOCOL_ONOFF:
		sh->rate_hz = cfg->stim.train_frequency_hz;
		sh->pulses = (unsigned)lround(cfg->stim.on_ms * 1e-3 * sh->rate_hz);
		if (sh->pulses < 1) {
			sh->pulses = 1;
		}
		sh->burst_pulses = sh->pulses;
		sh->on_s = sh->pulses / sh->rate_hz;
		sh->cycles = (unsigned)cfg->stim.cycles;
		break;
	case CONFIG_PROTOCOL_THETA:
		sh->rate_hz = cfg->stim.theta_frequency_hz;
		sh->burst_pulses = (unsigned)cfg->stim.theta_burst_pulses;
		sh->pulses = sh->burst_pulses * (unsigned)cfg->stim.theta_bursts;
		sh->burst_period_s = cfg->stim.theta_period_ms * 1e-3;
		sh->on_s = cfg->stim.theta_bursts * sh->burst_period_s;
		sh->cycles = (unsigned)cfg->stim.cycles;
		break;
	case CONFIG_PROTOCOL_SINGLE:
	default:
		sh->pulses = 1;
		sh->burst_pulses = 1;
		break;
	}
	sh->cycle_period_s = sh->on_s + cfg->stim.off_ms * 1e-3;
	/* last pulse of a train to the first of the next */
	if (sh->burst_period_s > 0) {
		last_s = (cfg->stim.theta_bursts - 1) * sh->burst_period_s +
			 (sh->burst_pulses - 1) / sh->rate_hz;
	} else if (sh->rate_hz > 0) {
		last_s = (sh->pulses - 1) / sh->rate_hz;
	}
	sh->gap_s = sh->cycle_period_s - last_s;
}

int config_resolve(const struct rpmsd_config *cfg, const char *file, char *out, size_t outlen)
{
	const char *slash;
	size_t dirlen = 0;
	int n;

	if (file[0] != '/') {
		slash = strrchr(cfg->path, '/');
		if (slash) {
			/* keep the slash: "/x.conf" has directory "/" */
			dirlen = (size_t)(slash - cfg->path) + 1;
		}
	}
	if (dirlen > INT_MAX) {
		return -ENAMETOOLONG;
	}
	n = snprintf(out, outlen, "%.*s%s", (int)dirlen, cfg->path, file);
	if (n < 0 || (size_t)n >= outlen) {
		return -ENAMETOOLONG;
	}
	return 0;
}

/**
 * config_write_template() - write the commented default configuration
 * @f: stream to write to
 *
 * Lists every section and key with its meaning, allowed values, unit and
 * default. config/rpmsd.conf is exactly this output.
 */
void config_write_template(FILE *f)
{
	char allowed[CONFIG_ALLOWED_MAX];
	const struct config_key *k;
	size_t s, i;

	fputs("# rpmsd configuration\n"
	      "#\n"
	      "# Every key rpmsd knows is listed below, set to its default, with its\n"
	      "# meaning, its allowed values and its unit. A key left out keeps its\n"
	      "# default. An unknown section or key, a key set twice or a value out\n"
	      "# of range is an error that names the file, the line and the key.\n"
	      "# Lines starting with '#' or ';' are comments.\n"
	      "#\n"
	      "# Relative paths are relative to the directory of this file.\n"
	      "#\n"
	      "# The coil plugin named by stim.plugin takes its own keys from a\n"
	      "# section [coil.<plugin>], for example [coil.sim]. Only that one coil\n"
	      "# section may appear. The plugin declares its keys, their defaults and\n"
	      "# their ranges; rpmsd --plugin-keys NAME will list them.\n",
	      f);
	for (s = 0; s < CONFIG_N_SECTIONS; s++) {
		fprintf(f, "\n[%s]\n", config_sections[s]);
		for (i = 0; i < CONFIG_N_KEYS; i++) {
			k = &config_keys[i];
			if (strcmp(k->section, config_sections[s])) {
				continue;
			}
			config_allowed(k, false, allowed, sizeof(allowed));
			fprintf(f, "\n# %s\n# allowed: %s", k->doc, allowed);
			if (k->unit[0]) {
				fprintf(f, "; unit: %s", k->unit);
			}
			fprintf(f, "\n%s =%s%s\n", k->key, k->def[0] ? " " : "",
				k->def);
		}
	}
}

/* A [coil.*] key's raw value in @cfg, or NULL when the file does not set it. */
static const char *config_raw_plugin_value(const struct rpmsd_config *cfg, const char *key)
{
	size_t i;

	for (i = 0; i < cfg->n_plugin_kv; i++) {
		if (!strcmp(cfg->plugin_kv[i].key, key)) {
			return cfg->plugin_kv[i].value;
		}
	}
	return NULL;
}

/* Report @cfg's [coil.*] keys that @other lacks or holds differently. */
static void config_diff_plugin(const struct rpmsd_config *cfg, const struct rpmsd_config *other,
			       bool only_missing, config_diff_fn fn, void *arg)
{
	const char *v;
	char section[CONFIG_NAME_MAX + 8];
	size_t i;

	snprintf(section, sizeof(section), "coil.%s", cfg->plugin_section);
	for (i = 0; i < cfg->n_plugin_kv; i++) {
		v = config_raw_plugin_value(other, cfg->plugin_kv[i].key);
		if (only_missing ? !v : (!v || strcmp(v, cfg->plugin_kv[i].value))) {
			fn(section, cfg->plugin_kv[i].key, arg);
		}
	}
}

/* Whether two loaded train tables hold different cells. */
static bool config_tables_differ(const struct train_table *a, const struct train_table *b)
{
	unsigned i, j;

	if (a->n_rates != b->n_rates || a->n_levels != b->n_levels) {
		return true;
	}
	for (j = 0; j < a->n_levels; j++) {
		if (a->level_pct[j] != b->level_pct[j]) {
			return true;
		}
	}
	for (i = 0; i < a->n_rates; i++) {
		if (a->rate_hz[i] != b->rate_hz[i]) {
			return true;
		}
		for (j = 0; j < a->n_levels; j++) {
			if (a->max_s[i][j] != b->max_s[i][j]) {
				return true;
			}
		}
	}
	return false;
}

void config_diff(const struct rpmsd_config *a, const struct rpmsd_config *b,
		 config_diff_fn fn, void *arg)
{
	char va[CONFIG_PATH_MAX], vb[CONFIG_PATH_MAX];
	const struct config_key *k, *table = config_find("safety", "train_table");
	size_t i;

	for (i = 0; i < CONFIG_N_KEYS; i++) {
		k = &config_keys[i];
		config_value_text(a, k->section, k->key, va, sizeof(va));
		config_value_text(b, k->section, k->key, vb, sizeof(vb));
		/* the same file name, edited since: the table changed all the same */
		if (strcmp(va, vb) ||
		    (k == table && config_tables_differ(&a->safety.train_table,
							&b->safety.train_table))) {
			fn(k->section, k->key, arg);
		}
	}
	if (strcmp(a->plugin_section, b->plugin_section)) {
		fn("coil", "(section)", arg);
		return;
	}
	config_diff_plugin(a, b, false, fn, arg);
	config_diff_plugin(b, a, true, fn, arg);
}
