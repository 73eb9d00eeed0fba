/* SPDX-License-Identifier: MIT */
/*
 * Tests of the configuration parser: every error class with its exact
 * message, defaults, a full round trip, plugin keys and the template.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <rpmsd/coil.h>

#include "config.h"

#define TEMPLATE_PATH TEST_SOURCE_ROOT "/config/rpmsd.conf"
#define FULL_PATH TEST_DATA_DIR "/config/full.conf"

/* A source.file, so that the file-level checks pass; two lines. */
#define SRC "[source]\nfile = emg.txt\n"

/* Room for lines longer than the parser accepts. */
#define CONFIG_LINE_TEST_MAX 8192

static char tmp_path[64];

static void write_tmp(const char *text)
{
	size_t len = strlen(text);
	int fd;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/rpmsd-test-config-XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Load @text from a temporary file; tmp_path keeps its name. */
static int load_text(const char *text, struct rpmsd_config *cfg, char *err,
		     size_t errlen)
{
	int rc;

	write_tmp(text);
	rc = config_load(cfg, tmp_path, err, errlen);
	unlink(tmp_path);
	return rc;
}

/*
 * Loading @text fails with -EINVAL and "TMPFILE" followed by @suffix.
 * A failure is reported at the caller's line.
 */
static void expect_error_at(const char *text, const char *suffix,
			    const char *file, int line)
{
	struct rpmsd_config cfg;
	char err[CONFIG_ERR_MAX];
	char want[CONFIG_ERR_MAX + 64];
	int rc;

	rc = load_text(text, &cfg, err, sizeof(err));
	_assert_int_equal(cast_to_largest_integral_type(rc),
			  cast_to_largest_integral_type(-EINVAL), file, line);
	snprintf(want, sizeof(want), "%s%s", tmp_path, suffix);
	_assert_string_equal(err, want, file, line);
}

#define expect_error(text, suffix) \
	expect_error_at((text), (suffix), __FILE__, __LINE__)

static void expect_ok_at(const char *text, struct rpmsd_config *cfg,
			 const char *file, int line)
{
	char err[CONFIG_ERR_MAX];
	int rc;

	rc = load_text(text, cfg, err, sizeof(err));
	if (rc) {
		print_error("unexpected error: %s\n", err);
	}
	_assert_int_equal(cast_to_largest_integral_type(rc), 0, file, line);
	_assert_string_equal(err, "", file, line);
}

#define expect_ok(text, cfg) expect_ok_at((text), (cfg), __FILE__, __LINE__)

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void assert_config_equal(const struct rpmsd_config *a,
				const struct rpmsd_config *b)
{
	size_t i;

	assert_string_equal(a->path, b->path);
	assert_int_equal(a->daemon.log_level, b->daemon.log_level);
	assert_int_equal(a->daemon.arm_on_start, b->daemon.arm_on_start);
	assert_string_equal(a->daemon.plugin_dir, b->daemon.plugin_dir);
	assert_int_equal(a->daemon.acquire_priority, b->daemon.acquire_priority);
	assert_int_equal(a->daemon.stim_priority, b->daemon.stim_priority);
	assert_int_equal(a->source.type, b->source.type);
	assert_string_equal(a->source.file, b->source.file);
	assert_int_equal(a->source.format, b->source.format);
	assert_string_equal(a->source.column, b->source.column);
	assert_true(a->source.rate_hz == b->source.rate_hz);
	assert_true(a->source.scale_uv == b->source.scale_uv);
	assert_int_equal(a->source.realtime, b->source.realtime);
	assert_int_equal(a->source.block_frames, b->source.block_frames);
	assert_true(a->dsp.highpass_hz == b->dsp.highpass_hz);
	assert_true(a->dsp.lowpass_hz == b->dsp.lowpass_hz);
	assert_int_equal(a->dsp.mains_hz, b->dsp.mains_hz);
	assert_true(a->dsp.notch_q == b->dsp.notch_q);
	assert_int_equal(a->dsp.filter_order, b->dsp.filter_order);
	assert_int_equal(a->dsp.envelope, b->dsp.envelope);
	assert_true(a->dsp.envelope_ms == b->dsp.envelope_ms);
	assert_true(a->detect.calibration_start_s == b->detect.calibration_start_s);
	assert_true(a->detect.calibration_s == b->detect.calibration_s);
	assert_true(a->detect.k_on == b->detect.k_on);
	assert_true(a->detect.k_off == b->detect.k_off);
	assert_true(a->detect.on_ms == b->detect.on_ms);
	assert_true(a->detect.dip_ms == b->detect.dip_ms);
	assert_true(a->detect.off_ms == b->detect.off_ms);
	assert_true(a->detect.blanking_ms == b->detect.blanking_ms);
	assert_string_equal(a->stim.plugin, b->stim.plugin);
	assert_int_equal(a->stim.protocol, b->stim.protocol);
	assert_int_equal(a->stim.train_pulses, b->stim.train_pulses);
	assert_true(a->stim.train_frequency_hz == b->stim.train_frequency_hz);
	assert_true(a->stim.intensity_pct == b->stim.intensity_pct);
	assert_int_equal(a->stim.pulse_width_us, b->stim.pulse_width_us);
	assert_true(a->stim.refractory_ms == b->stim.refractory_ms);
	assert_true(a->safety.max_frequency_hz == b->safety.max_frequency_hz);
	assert_int_equal(a->safety.max_train_pulses, b->safety.max_train_pulses);
	assert_true(a->safety.min_train_interval_ms == b->safety.min_train_interval_ms);
	assert_true(a->safety.max_intensity_pct == b->safety.max_intensity_pct);
	assert_true(a->safety.max_coil_temp_c == b->safety.max_coil_temp_c);
	assert_string_equal(a->publish.endpoint, b->publish.endpoint);
	assert_int_equal(a->publish.ring_records, b->publish.ring_records);
	assert_int_equal(a->publish.sndhwm, b->publish.sndhwm);
	assert_true(a->publish.heartbeat_s == b->publish.heartbeat_s);
	assert_string_equal(a->plugin_section, b->plugin_section);
	assert_int_equal(a->plugin_section_line, b->plugin_section_line);
	assert_int_equal(a->n_plugin_kv, b->n_plugin_kv);
	for (i = 0; i < a->n_plugin_kv; i++) {
		assert_string_equal(a->plugin_kv[i].key, b->plugin_kv[i].key);
		assert_string_equal(a->plugin_kv[i].value, b->plugin_kv[i].value);
		assert_int_equal(a->plugin_kv[i].line, b->plugin_kv[i].line);
	}
}

static void test_defaults(void **state)
{
	struct rpmsd_config c;

	(void)state;
	memset(&c, 0x5a, sizeof(c));
	config_defaults(&c);
	assert_string_equal(c.path, "");
	assert_int_equal(c.daemon.log_level, CONFIG_LOG_INFO);
	assert_false(c.daemon.arm_on_start);
	assert_string_equal(c.daemon.plugin_dir, "");
	assert_int_equal(c.daemon.acquire_priority, 80);
	assert_int_equal(c.daemon.stim_priority, 90);
	assert_int_equal(c.source.type, CONFIG_SOURCE_REPLAY);
	assert_string_equal(c.source.file, "");
	assert_int_equal(c.source.format, CONFIG_FORMAT_AUTO);
	assert_string_equal(c.source.column, "1");
	assert_true(c.source.rate_hz == 0.0);
	assert_true(c.source.scale_uv == 1.0);
	assert_true(c.source.realtime);
	assert_int_equal(c.source.block_frames, 8);
	assert_true(c.dsp.highpass_hz == 20.0);
	assert_true(c.dsp.lowpass_hz == 450.0);
	assert_int_equal(c.dsp.mains_hz, 50);
	assert_true(c.dsp.notch_q == 30.0);
	assert_int_equal(c.dsp.filter_order, 4);
	assert_int_equal(c.dsp.envelope, CONFIG_ENVELOPE_RMS);
	assert_true(c.dsp.envelope_ms == 5.0);
	assert_true(c.dsp.limit == 6.0);
	assert_true(c.detect.sustain_ms == 30.0);
	assert_int_equal(c.detect.sustain_skip, 0);
	assert_true(c.detect.k_edge == 0.5);
	assert_int_equal(c.detect.rule, CONFIG_RULE_SUSTAINED);
	assert_true(c.detect.cusum_k == 1.5);
	assert_true(c.detect.cusum_cap == 2.5);
	assert_true(c.detect.cusum_h == 50.0);
	assert_true(c.detect.calibration_start_s == 0.0);
	assert_true(c.detect.calibration_s == 2.0);
	assert_true(c.detect.k_on == 3.5);
	assert_true(c.detect.k_off == 1.0);
	assert_true(c.detect.on_ms == 0.0);
	assert_true(c.detect.dip_ms == 10.0);
	assert_true(c.detect.off_ms == 200.0);
	assert_true(c.detect.blanking_ms == 50.0);
	assert_string_equal(c.detect.channel, "any");
	assert_int_equal(c.detect.channel_rule, CONFIG_CHANNEL_ANY);
	assert_int_equal(c.dsp.mains_harmonics, 5);
	assert_string_equal(c.stim.plugin, "sim");
	assert_int_equal(c.stim.protocol, CONFIG_PROTOCOL_SINGLE);
	assert_int_equal(c.stim.train_pulses, 5);
	assert_true(c.stim.train_frequency_hz == 20.0);
	assert_true(c.stim.intensity_pct == 30.0);
	assert_int_equal(c.stim.pulse_width_us, 100);
	assert_true(c.stim.refractory_ms == 1000.0);
	assert_true(c.safety.max_frequency_hz == 25.0);
	assert_int_equal(c.safety.max_train_pulses, 50);
	assert_true(c.safety.min_train_interval_ms == 500.0);
	assert_true(c.safety.max_intensity_pct == 60.0);
	assert_true(c.safety.max_coil_temp_c == 40.0);
	assert_true(c.safety.motor_threshold_pct == 0.0);
	assert_int_equal(c.safety.max_session_pulses, 6000);
	assert_int_equal(c.safety.max_daily_pulses, 12000);
	assert_string_equal(c.daemon.state_dir, "/var/lib/rpmsd");
	assert_int_equal(c.safety.train_table.n_rates, 5);
	assert_int_equal(c.safety.train_table.n_levels, 14);
	assert_string_equal(c.publish.endpoint, "tcp://127.0.0.1:5560");
	assert_int_equal(c.publish.ring_records, 4096);
	assert_int_equal(c.publish.sndhwm, 10000);
	assert_true(c.publish.heartbeat_s == 1.0);
	assert_false(c.publish.emg_stream);
	assert_int_equal(c.publish.emg_decimation, 10);
	assert_string_equal(c.record.directory, "");
	assert_string_equal(c.record.name, "rpmsd_{patient}_{session}_%Y%m%d_%H%M%S");
	assert_int_equal(c.record.format, CONFIG_RECORD_AUTO);
	assert_true(c.record.range_uv == 0.0);
	assert_true(c.record.record_s == 1.0);
	assert_true(c.record.buffer_s == 10.0);
	assert_string_equal(c.record.patient_id, "X");
	assert_string_equal(c.record.session_id, "X");
	assert_string_equal(c.control.endpoint, "ipc:///run/rpmsd/control");
	assert_string_equal(c.control.curve_server_secret_file, "");
	assert_string_equal(c.control.curve_allowed_keys, "");
	assert_string_equal(c.plugin_section, "");
	assert_int_equal(c.plugin_section_line, 0);
	assert_int_equal(c.n_plugin_kv, 0);
}

static void test_full_file(void **state)
{
	struct rpmsd_config c;
	char err[CONFIG_ERR_MAX];
	int rc;

	(void)state;
	rc = config_load(&c, FULL_PATH, err, sizeof(err));
	if (rc) {
		print_error("unexpected error: %s\n", err);
	}
	assert_int_equal(rc, 0);
	assert_string_equal(c.path, FULL_PATH);
	assert_int_equal(c.daemon.log_level, CONFIG_LOG_DEBUG);
	assert_true(c.daemon.arm_on_start);
	assert_string_equal(c.daemon.plugin_dir, "/opt/rpmsd/plugins");
	assert_int_equal(c.daemon.acquire_priority, 70);
	assert_int_equal(c.daemon.stim_priority, 0);
	assert_int_equal(c.source.type, CONFIG_SOURCE_REPLAY);
	assert_string_equal(c.source.file, "../emg/sample.txt");
	assert_int_equal(c.source.format, CONFIG_FORMAT_CSV);
	assert_string_equal(c.source.column, "emg, 3");
	assert_true(c.source.rate_hz == 2000.0);
	assert_true(c.source.scale_uv == 0.5);
	assert_false(c.source.realtime);
	assert_int_equal(c.source.block_frames, 16);
	assert_true(c.dsp.highpass_hz == 10.5);
	assert_true(c.dsp.lowpass_hz == 400.0);
	assert_int_equal(c.dsp.mains_hz, 60);
	assert_true(c.dsp.notch_q == 35.0);
	assert_int_equal(c.dsp.filter_order, 2);
	assert_int_equal(c.dsp.envelope, CONFIG_ENVELOPE_RMS);
	assert_true(c.dsp.envelope_ms == 100.0);
	assert_true(c.detect.calibration_start_s == 1.5);
	assert_true(c.detect.calibration_s == 3.0);
	assert_true(c.detect.k_on == 6.0);
	assert_true(c.detect.k_off == 3.0);
	assert_true(c.detect.on_ms == 25.0);
	assert_true(c.detect.dip_ms == 10.0);
	assert_true(c.detect.off_ms == 150.0);
	assert_true(c.detect.blanking_ms == 30.0);
	assert_string_equal(c.stim.plugin, "bench-2");
	assert_int_equal(c.stim.protocol, CONFIG_PROTOCOL_TRAIN);
	assert_int_equal(c.stim.train_pulses, 10);
	assert_true(c.stim.train_frequency_hz == 15.0);
	assert_true(c.stim.intensity_pct == 45.5);
	assert_int_equal(c.stim.pulse_width_us, 200);
	assert_true(c.stim.refractory_ms == 2000.0);
	assert_true(c.safety.max_frequency_hz == 30.0);
	assert_int_equal(c.safety.max_train_pulses, 20);
	assert_true(c.safety.min_train_interval_ms == 750.0);
	assert_true(c.safety.max_intensity_pct == 50.0);
	assert_true(c.safety.max_coil_temp_c == 45.0);
	assert_true(c.safety.motor_threshold_pct == 40.0);
	assert_int_equal(c.safety.max_session_pulses, 3000);
	assert_int_equal(c.safety.max_daily_pulses, 9000);
	assert_int_equal(c.safety.ledger_reserve_pulses, 100);
	assert_int_equal(c.stim.mode, CONFIG_MODE_CLOSED_LOOP);
	assert_string_equal(c.publish.endpoint, "ipc:///run/rpmsd/events");
	assert_int_equal(c.publish.ring_records, 8192);
	assert_int_equal(c.publish.sndhwm, 500);
	assert_true(c.publish.heartbeat_s == 0.5);
	assert_string_equal(c.plugin_section, "bench-2");
	assert_int_equal(c.plugin_section_line, 65);
	assert_int_equal(c.n_plugin_kv, 2);
	assert_string_equal(c.plugin_kv[0].key, "gain");
	assert_string_equal(c.plugin_kv[0].value, "2.5");
	assert_int_equal(c.plugin_kv[0].line, 66);
	assert_string_equal(c.plugin_kv[1].key, "port");
	assert_string_equal(c.plugin_kv[1].value, "/dev/ttyUSB0");
	assert_int_equal(c.plugin_kv[1].line, 67);
}

static void test_template_matches_file(void **state)
{
	char *want = read_all(TEMPLATE_PATH);
	char *got = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&got, &len);
	assert_non_null(f);
	config_write_template(f);
	assert_int_equal(fclose(f), 0);
	/* regenerate config/rpmsd.conf from config_write_template if this fails */
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void test_template_needs_file(void **state)
{
	struct rpmsd_config c;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_load(&c, TEMPLATE_PATH, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, TEMPLATE_PATH
			    ": source.file: missing (required when source.type = replay)");
}

static void test_template_with_file_is_defaults(void **state)
{
	struct rpmsd_config c, want;
	char *text = read_all(TEMPLATE_PATH);
	char *edited;
	char *at;
	size_t head;

	(void)state;
	at = strstr(text, "\nfile =\n");
	assert_non_null(at);
	head = (size_t)(at - text) + strlen("\nfile =");
	edited = malloc(strlen(text) + 32);
	assert_non_null(edited);
	memcpy(edited, text, head);
	strcpy(edited + head, " emg.txt");
	strcat(edited, at + strlen("\nfile ="));
	expect_ok(edited, &c);

	config_defaults(&want);
	strcpy(want.path, tmp_path);
	strcpy(want.source.file, "emg.txt");
	assert_config_equal(&c, &want);
	free(edited);
	free(text);
}

static void test_unknown_section(void **state)
{
	(void)state;
	expect_error(SRC "[foo]\nbar = 1\n",
		     ":3: [foo]: unknown section (allowed: daemon, source, dsp, detect, stim, safety, publish, record, control, course, course_db, blind, sim_patient, coil.<plugin>, sham_coil.<plugin>)");
	/* no keys in it, last line, no newline */
	expect_error(SRC "[stim]\nplugin = sim\n[Stim]",
		     ":5: [Stim]: unknown section (allowed: daemon, source, dsp, detect, stim, safety, publish, record, control, course, course_db, blind, sim_patient, coil.<plugin>, sham_coil.<plugin>)");
	expect_error("[coil.]\n[source]\nfile = x\n",
		     ":1: [coil.]: unknown section (allowed: daemon, source, dsp, detect, stim, safety, publish, record, control, course, course_db, blind, sim_patient, coil.<plugin>, sham_coil.<plugin>)");
	expect_error("  [coil.Sim] ; comment\n",
		     ":1: [coil.Sim]: unknown section (allowed: daemon, source, dsp, detect, stim, safety, publish, record, control, course, course_db, blind, sim_patient, coil.<plugin>, sham_coil.<plugin>)");
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_error(SRC "[stim]\nfoo = 1\n",
		     ":4: stim.foo: unknown key (allowed: plugin, mode, protocol, train_pulses, train_frequency_hz, on_ms, off_ms, cycles, theta_bursts, theta_burst_pulses, theta_frequency_hz, theta_period_ms, open_loop_pulses, intensity_pct, pulse_width_us, refractory_ms)");
	expect_error("[source]\nfile = x\nfiles = y\n",
		     ":3: source.files: unknown key (allowed: type, file, format, column, rate_hz, scale_uv, realtime, block_frames, uri, device, channels, gain, kernel_buffers, trigger, timeout_ms, reopen_ms, reopen_max_ms, reopen_attempts, angle_channel, angle_scale_deg, angle_offset_deg)");
}

static void test_key_outside_section(void **state)
{
	(void)state;
	expect_error("# top\nplugin = sim\n",
		     ":2: plugin: key outside any section (expected a '[section]' line first)");
}

static void test_out_of_range(void **state)
{
	(void)state;
	expect_error(SRC "[stim]\nintensity_pct = 150\n",
		     ":4: stim.intensity_pct: 150 is out of range (allowed: 0 to 100 %)");
	expect_error(SRC "[stim]\nintensity_pct = -0.5\n",
		     ":4: stim.intensity_pct: -0.5 is out of range (allowed: 0 to 100 %)");
	expect_error(SRC "[stim]\ntrain_pulses = 1001\n",
		     ":4: stim.train_pulses: 1001 is out of range (allowed: 1 to 1000)");
	expect_error(SRC "[daemon]\nstim_priority = 99\n",
		     ":4: daemon.stim_priority: 99 is out of range (allowed: 0 to 98)");
	expect_error(SRC "[safety]\nmin_train_interval_ms = 3600001\n",
		     ":4: safety.min_train_interval_ms: 3600001 is out of range (allowed: 0 to 3600000 ms)");
	expect_error("[source]\nscale_uv = 0\n",
		     ":2: source.scale_uv: 0 is out of range (allowed: 1e-09 to 1000000000 µV per file unit)");
	expect_error("[detect]\ncalibration_s = 0.15\n",
		     ":2: detect.calibration_s: 0.15 is out of range (allowed: 0.2 to 600 s)");
	/* too big for any integer: the text is quoted as written */
	expect_error(SRC "[stim]\ntrain_pulses = 99999999999999999999\n",
		     ":4: stim.train_pulses: 99999999999999999999 is out of range (allowed: 1 to 1000)");
	expect_error(SRC "[stim]\ntrain_pulses = 4294967297\n",
		     ":4: stim.train_pulses: 4294967297 is out of range (allowed: 1 to 1000)");
	expect_error(SRC "[stim]\nintensity_pct = 1e999\n",
		     ":4: stim.intensity_pct: 1e999 is out of range (allowed: 0 to 100 %)");
}

static void test_not_an_integer(void **state)
{
	(void)state;
	expect_error(SRC "[stim]\ntrain_pulses = abc\n",
		     ":4: stim.train_pulses: 'abc' is not an integer (allowed: 1 to 1000)");
	expect_error(SRC "[stim]\ntrain_pulses = 5x\n",
		     ":4: stim.train_pulses: '5x' is not an integer (allowed: 1 to 1000)");
	expect_error(SRC "[stim]\ntrain_pulses = 5 pulses\n",
		     ":4: stim.train_pulses: '5 pulses' is not an integer (allowed: 1 to 1000)");
	expect_error(SRC "[stim]\ntrain_pulses = 2.5\n",
		     ":4: stim.train_pulses: '2.5' is not an integer (allowed: 1 to 1000)");
	expect_error(SRC "[stim]\ntrain_pulses =\n",
		     ":4: stim.train_pulses: '' is not an integer (allowed: 1 to 1000)");
	expect_error(SRC "[publish]\nsndhwm = 0x10\n",
		     ":4: publish.sndhwm: '0x10' is not an integer (allowed: 1 to 1000000 messages)");
}

static void test_not_a_number(void **state)
{
	(void)state;
	expect_error(SRC "[dsp]\nhighpass_hz = abc\n",
		     ":4: dsp.highpass_hz: 'abc' is not a number (allowed: 1 to 1000 Hz)");
	expect_error(SRC "[dsp]\nhighpass_hz = 20 Hz\n",
		     ":4: dsp.highpass_hz: '20 Hz' is not a number (allowed: 1 to 1000 Hz)");
	expect_error(SRC "[dsp]\nhighpass_hz = 20.0.1\n",
		     ":4: dsp.highpass_hz: '20.0.1' is not a number (allowed: 1 to 1000 Hz)");
	expect_error(SRC "[dsp]\nhighpass_hz =\n",
		     ":4: dsp.highpass_hz: '' is not a number (allowed: 1 to 1000 Hz)");
	expect_error(SRC "[detect]\nk_on = inf\n",
		     ":4: detect.k_on: 'inf' is not a number (allowed: 1 to 100)");
	expect_error(SRC "[detect]\nk_on = NaN\n",
		     ":4: detect.k_on: 'NaN' is not a number (allowed: 1 to 100)");
}

static void test_bool(void **state)
{
	static const char *const yes[] = { "true", "Yes", "ON", "1" };
	static const char *const no[] = { "FALSE", "no", "Off", "0" };
	struct rpmsd_config c;
	char text[128];
	size_t i;

	(void)state;
	expect_error(SRC "[source]\nrealtime = maybe\n",
		     ":4: source.realtime: 'maybe' is not a boolean (allowed: true, false)");
	expect_error(SRC "[daemon]\narm_on_start = truey\n",
		     ":4: daemon.arm_on_start: 'truey' is not a boolean (allowed: true, false)");
	expect_error(SRC "[daemon]\narm_on_start =\n",
		     ":4: daemon.arm_on_start: '' is not a boolean (allowed: true, false)");
	for (i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), SRC "[daemon]\narm_on_start = %s\n", yes[i]);
		expect_ok(text, &c);
		assert_true(c.daemon.arm_on_start);
		snprintf(text, sizeof(text), SRC "realtime = %s\n", no[i]);
		expect_ok(text, &c);
		assert_false(c.source.realtime);
	}
}

static void test_enum(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "[dsp]\nmains_hz = 55\n",
		     ":4: dsp.mains_hz: '55' is not allowed (allowed: 0, 50, 60)");
	expect_error(SRC "[dsp]\nfilter_order = 3\n",
		     ":4: dsp.filter_order: '3' is not allowed (allowed: 2, 4)");
	expect_error(SRC "[daemon]\nlog_level = verbose\n",
		     ":4: daemon.log_level: 'verbose' is not allowed (allowed: error, warning, info, debug)");
	expect_error(SRC "[source]\nformat = wav\n",
		     ":4: source.format: 'wav' is not allowed (allowed: auto, text, csv, timevalue)");
	expect_error(SRC "[stim]\nprotocol =\n",
		     ":4: stim.protocol: '' is not allowed (allowed: single, train, onoff, theta_burst)");
	expect_error(SRC "[detect]\nrule = glr\n",
		     ":4: detect.rule: 'glr' is not allowed (allowed: sustained, cusum)");
	expect_error(SRC "[detect]\nrule = cusum\ncusum_cap = 0\n",
		     ":5: detect.cusum_cap: 0 is out of range (allowed: 0.01 to 100 spreads)");
	expect_ok(SRC "[detect]\nrule = cusum\ncusum_k = 2\ncusum_cap = 3\ncusum_h = 60\n", &c);
	assert_int_equal(c.detect.rule, CONFIG_RULE_CUSUM);
	assert_true(c.detect.cusum_k == 2.0 && c.detect.cusum_cap == 3.0 && c.detect.cusum_h == 60.0);
	expect_ok(SRC "format = timevalue\n[daemon]\nlog_level = Warning\n[dsp]\nmains_hz = 0\n", &c);
	assert_int_equal(c.source.format, CONFIG_FORMAT_TIMEVALUE);
	assert_int_equal(c.daemon.log_level, CONFIG_LOG_WARNING);
	assert_int_equal(c.dsp.mains_hz, 0);
}

static void test_duplicate(void **state)
{
	(void)state;
	expect_error(SRC "[stim]\nplugin = sim\nprotocol = single\nplugin = sim\n",
		     ":6: stim.plugin: set twice (first at line 4)");
	/* across two blocks of the same section */
	expect_error(SRC "[stim]\nplugin = sim\n[dsp]\n[stim]\nplugin = x\n",
		     ":7: stim.plugin: set twice (first at line 4)");
	expect_error("[source]\nfile = a\nfile = b\n",
		     ":3: source.file: set twice (first at line 2)");
}

static void test_syntax_error(void **state)
{
	(void)state;
	expect_error(SRC "[stim]\nplugin sim\n",
		     ":4: syntax error (expected '[section]' or 'key = value')");
	expect_error(SRC "[stim\nplugin = sim\n",
		     ":3: syntax error (expected '[section]' or 'key = value')");
	expect_error(SRC "[stim]\n= sim\n",
		     ":4: syntax error (expected '[section]' or 'key = value')");
	/* the first error wins: the bad key after it is never reached */
	expect_error(SRC "oops\n[stim]\nfoo = 1\n",
		     ":3: syntax error (expected '[section]' or 'key = value')");
	/* with multi-line values off, an indented line is not a continuation */
	expect_error(SRC "[stim]\nplugin = sim\n  more\n",
		     ":5: syntax error (expected '[section]' or 'key = value')");
}

static void test_comments_and_forms(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_ok("\xEF\xBB\xBF[source]\n"
		  "# a comment\n"
		  "; another\n"
		  "\n"
		  "   file   =   rec.txt   ; inline comment\n"
		  "column: 2\n"
		  "[stim]   \n"
		  "plugin = sim\r\n", &c);
	assert_string_equal(c.source.file, "rec.txt");
	assert_string_equal(c.source.column, "2");
}

static void test_missing_file(void **state)
{
	(void)state;
	expect_error("[stim]\nintensity_pct = 10\n",
		     ": source.file: missing (required when source.type = replay)");
	expect_error("[source]\ntype = replay\nfile =\n",
		     ": source.file: missing (required when source.type = replay)");
	expect_error("",
		     ": source.file: missing (required when source.type = replay)");
}

static void test_cannot_open(void **state)
{
	struct rpmsd_config c;
	char err[CONFIG_ERR_MAX];
	char path[CONFIG_PATH_MAX + 8];

	(void)state;
	assert_int_equal(config_load(&c, "/nonexistent/rpmsd.conf", err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/rpmsd.conf: cannot open: No such file or directory");
	assert_int_equal(config_load(&c, "/tmp", err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/tmp: cannot read: Is a directory");
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -ENAMETOOLONG);
}

static void test_cross_band(void **state)
{
	(void)state;
	/* both set: the line of lowpass_hz */
	expect_error(SRC "[dsp]\nhighpass_hz = 300\nlowpass_hz = 200\n",
		     ":5: dsp.lowpass_hz: 200 is not above dsp.highpass_hz = 300 (allowed: above 300 Hz)");
	/* only highpass_hz set: its line */
	expect_error(SRC "[dsp]\nhighpass_hz = 450\n",
		     ":4: dsp.lowpass_hz: 450 is not above dsp.highpass_hz = 450 (allowed: above 450 Hz)");
}

static void test_cross_reopen(void **state)
{
	(void)state;
	expect_error(SRC "[source]\nreopen_ms = 8000\n",
		     ":4: source.reopen_max_ms: 5000 is below source.reopen_ms = 8000 (allowed: 8000 or more)");
	expect_error(SRC "[source]\nreopen_max_ms = 100\nreopen_ms = 200\n",
		     ":4: source.reopen_max_ms: 100 is below source.reopen_ms = 200 (allowed: 200 or more)");
}

static void test_cross_thresholds(void **state)
{
	(void)state;
	expect_error(SRC "[detect]\nk_off = 3.5\n",
		     ":4: detect.k_off: 3.5 is not below detect.k_on = 3.5 (allowed: below 3.5)");
	expect_error(SRC "[detect]\nk_off = 5\nk_on = 2.5\n",
		     ":4: detect.k_off: 5 is not below detect.k_on = 2.5 (allowed: below 2.5)");
	expect_error(SRC "[detect]\nk_on = 1\n",
		     ":4: detect.k_off: 1 is not below detect.k_on = 1 (allowed: below 1)");
}

static void test_cross_intensity(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "[safety]\nmax_intensity_pct = 60\n[stim]\nintensity_pct = 80\n",
		     ":6: stim.intensity_pct: 80 exceeds safety.max_intensity_pct = 60 (allowed: 0 to 60 %)");
	expect_error(SRC "[safety]\nmax_intensity_pct = 20\n",
		     ":4: stim.intensity_pct: 30 exceeds safety.max_intensity_pct = 20 (allowed: 0 to 20 %)");
	expect_error(SRC "[stim]\nintensity_pct = 60.5\n",
		     ":4: stim.intensity_pct: 60.5 exceeds safety.max_intensity_pct = 60 (allowed: 0 to 60 %)");
	expect_ok(SRC "[stim]\nintensity_pct = 60\n", &c);
}

static void test_cross_train_frequency(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "[stim]\nprotocol = train\ntrain_frequency_hz = 30\n",
		     ":5: stim.train_frequency_hz: 30 exceeds safety.max_frequency_hz = 25 (allowed: 0.1 to 25 Hz)");
	expect_error(SRC "[safety]\nmax_frequency_hz = 10\n[stim]\nprotocol = train\n",
		     ":4: stim.train_frequency_hz: 20 exceeds safety.max_frequency_hz = 10 (allowed: 0.1 to 10 Hz)");
	/* single pulses: the train limits do not apply */
	expect_ok(SRC "[stim]\ntrain_frequency_hz = 30\n", &c);
}

static void test_cross_train_pulses(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "[stim]\nprotocol = train\ntrain_pulses = 60\n[safety]\nmax_train_pulses = 40\n",
		     ":5: stim.train_pulses: 60 exceeds safety.max_train_pulses = 40 (allowed: 1 to 40)");
	expect_error(SRC "[stim]\nprotocol = train\n[safety]\nmax_train_pulses = 4\n",
		     ":6: stim.train_pulses: 5 exceeds safety.max_train_pulses = 4 (allowed: 1 to 4)");
	expect_ok(SRC "[stim]\ntrain_pulses = 60\n", &c);
}

/* The patient's threshold, so that trains are judged by the table. */
#define MT "[safety]\nmotor_threshold_pct = 40\n"

/*
 * Protocols the gate refuses are refused at load (issue 16, D7): every
 * pulse-to-pulse interval, derived from the policy's own schedule and
 * judged by the gate's own rules (policy_check).
 */
static void test_protocol_intervals(void **state)
{
	struct rpmsd_config c;

	(void)state;
	/* theta: 3 pulses at 25 Hz every 100 ms leave 20 ms between bursts */
	expect_error(SRC MT "[stim]\nprotocol = theta_burst\ntheta_frequency_hz = 25\n"
		     "theta_period_ms = 100\ntheta_bursts = 5\n",
		     ":8: stim.theta_period_ms: 100 ms leaves 20 ms from the last pulse of a burst (3 pulses at 25 Hz) to the first of the next, less than the 40 ms (one period) of safety.max_frequency_hz = 25 Hz (allowed: 120 ms or more)");
	/* the last pulse of a burst at 80 ms, the next burst 1 us later */
	expect_error(SRC MT "[stim]\nprotocol = theta_burst\ntheta_frequency_hz = 25\n"
		     "theta_period_ms = 80.001\ntheta_bursts = 5\n",
		     ":8: stim.theta_period_ms: 80.001 ms leaves 0.001 ms from the last pulse of a burst (3 pulses at 25 Hz) to the first of the next, less than the 40 ms (one period) of safety.max_frequency_hz = 25 Hz (allowed: 120 ms or more)");
	/* bursts that overlap */
	expect_error(SRC MT "[stim]\nprotocol = theta_burst\ntheta_frequency_hz = 25\n"
		     "theta_period_ms = 30\ntheta_bursts = 5\n",
		     ":8: stim.theta_period_ms: 30 ms is shorter than a burst (3 pulses at 25 Hz span 80 ms): the next burst would start 50 ms before its last pulse, and the gap must be at least the 40 ms (one period) of safety.max_frequency_hz = 25 Hz (allowed: 120 ms or more)");
	/* on the edge: admitted */
	expect_ok(SRC MT "[stim]\nprotocol = theta_burst\ntheta_frequency_hz = 25\n"
		  "theta_period_ms = 120\ntheta_bursts = 5\n", &c);
	/*
	 * 1-pulse bursts every 100 ms come at 10 Hz whatever theta_frequency_hz
	 * says: at 150 % of threshold the table allows 0.8 s at 10 Hz, so the
	 * 9th pulse is refused (the 1.182 Hz row would have allowed 10 s).
	 */
	expect_error(SRC MT "[stim]\nintensity_pct = 60\nprotocol = theta_burst\n"
		     "theta_frequency_hz = 1.182\ntheta_burst_pulses = 1\ntheta_period_ms = 100\n"
		     "theta_bursts = 10\n",
		     ":6: stim.protocol = theta_burst: the pulses of a train come at 10 Hz, not the 1.182 Hz it is declared at (9 pulses in 0.8 s): at that rate its first 9 pulses last 0.9 s, longer than the 0.8 s that safety.train_table allows at 10 Hz and 150 % of motor threshold (stim.intensity_pct 60 % / safety.motor_threshold_pct 40 %)");
	expect_ok(SRC MT "[stim]\nintensity_pct = 60\nprotocol = theta_burst\n"
		  "theta_frequency_hz = 1.182\ntheta_burst_pulses = 1\ntheta_period_ms = 100\n"
		  "theta_bursts = 8\n", &c);
	/* the same 10 Hz above the rate cap */
	expect_error(SRC MT "[safety]\nmax_frequency_hz = 5\n[stim]\nprotocol = theta_burst\n"
		     "theta_frequency_hz = 1.182\ntheta_burst_pulses = 1\ntheta_period_ms = 100\n",
		     ":11: stim.theta_period_ms: 100 ms leaves 100 ms from the last pulse of a burst (1 pulse at 1.182 Hz) to the first of the next, less than the 200 ms (one period) of safety.max_frequency_hz = 5 Hz (allowed: 200 ms or more)");
	/* open loop, single pulses: each its own train, off_ms apart */
	expect_error(SRC "[stim]\nmode = open_loop\nprotocol = single\noff_ms = 300\n",
		     ":6: stim.off_ms: 300 ms leaves 300 ms from the last pulse of a train to the first of the next (a train starts every 300 ms: its 0 ms on-period, then off_ms), less than safety.min_train_interval_ms = 500 ms (allowed: 500 ms or more)");
	expect_error(SRC "[safety]\nmin_train_interval_ms = 0\n[stim]\nmode = open_loop\n"
		     "protocol = single\noff_ms = 0\n",
		     ":8: stim.off_ms: 0 ms leaves 0 ms from the last pulse of a train to the first of the next (a train starts every 0 ms: its 0 ms on-period, then off_ms), less than the 40 ms (one period) of safety.max_frequency_hz = 25 Hz (allowed: 40 ms or more)");
	expect_ok(SRC "[stim]\nmode = open_loop\nprotocol = single\noff_ms = 500\n", &c);
	/* in closed loop a single pulse is a request of its own: no gap to judge */
	expect_ok(SRC "[stim]\nprotocol = single\noff_ms = 0\nrefractory_ms = 0\n", &c);
	/* on/off: the gap is off_ms + one period; open loop repeats the trains too */
	expect_error(SRC MT "[stim]\nprotocol = onoff\ntrain_frequency_hz = 25\non_ms = 400\n"
		     "off_ms = 400\ncycles = 3\n",
		     ":9: stim.off_ms: 400 ms leaves 440 ms from the last pulse of a train to the first of the next (a train starts every 800 ms: its 400 ms on-period, then off_ms), less than safety.min_train_interval_ms = 500 ms (allowed: 460 ms or more)");
	expect_ok(SRC MT "[stim]\nprotocol = onoff\ntrain_frequency_hz = 25\non_ms = 400\n"
		  "off_ms = 460\ncycles = 3\n", &c);
	expect_error(SRC MT "[stim]\nmode = open_loop\nprotocol = train\ntrain_pulses = 10\n"
		     "train_frequency_hz = 25\noff_ms = 400\n",
		     ":10: stim.off_ms: 400 ms leaves 440 ms from the last pulse of a train to the first of the next (a train starts every 800 ms: its 400 ms on-period, then off_ms), less than safety.min_train_interval_ms = 500 ms (allowed: 460 ms or more)");
	/*
	 * Open loop theta: trains are 560 ms apart, but a request cut short by
	 * a refusal inside a burst resumes off_ms after it: 40 + 400 ms.
	 */
	expect_error(SRC MT "[stim]\nmode = open_loop\nprotocol = theta_burst\n"
		     "theta_frequency_hz = 25\ntheta_period_ms = 200\ntheta_bursts = 2\noff_ms = 400\n",
		     ":11: stim.off_ms: 400 ms: in open loop, a request cut short by a refusal is followed by the rest off_ms after the refused pulse, which can be 440 ms after the last pulse delivered, less than safety.min_train_interval_ms = 500 ms (allowed: 460 ms or more)");
	expect_ok(SRC MT "[stim]\nmode = open_loop\nprotocol = theta_burst\n"
		  "theta_frequency_hz = 25\ntheta_period_ms = 200\ntheta_bursts = 2\noff_ms = 460\n",
		  &c);
	/* one burst onset asking for more than a whole session */
	expect_error(SRC MT "[stim]\nprotocol = onoff\ntrain_frequency_hz = 25\non_ms = 400\n"
		     "off_ms = 2000\ncycles = 700\n",
		     ":10: stim.cycles: one burst onset asks for 7000 pulses (700 trains of 10), more than safety.max_session_pulses = 6000 allows in a whole session");
	expect_ok(SRC MT "[stim]\nprotocol = onoff\ntrain_frequency_hz = 25\non_ms = 400\n"
		  "off_ms = 2000\ncycles = 600\n", &c);
	/* open loop: only the pulses it delivers count (5 of a 60-pulse train) */
	expect_ok(SRC MT "[stim]\nmode = open_loop\nprotocol = train\ntrain_pulses = 60\n"
		  "train_frequency_hz = 10\nopen_loop_pulses = 5\n", &c);
	expect_error(SRC MT "[stim]\nmode = open_loop\nopen_loop_pulses = 7000\n",
		     ":7: stim.open_loop_pulses: 7000 exceeds safety.max_session_pulses = 6000");
}

static void table_alarm(int sig)
{
	static const char msg[] = "config_recheck blocked on the train table\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/*
 * A change at run time (set, SIGHUP) is checked against the table loaded
 * with the configuration, the one the gate holds, never the file as edited
 * since (issue 16, D6); and config_recheck reads no file, so a FIFO put in
 * place of the table cannot block it (D3).
 */
static void test_recheck_uses_the_table_in_force(void **state)
{
	char dir[] = "/tmp/rpmsd-test-intable-XXXXXX", table[96], conf[96], text[512];
	char err[CONFIG_ERR_MAX];
	struct rpmsd_config cfg, next;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(table, sizeof(table), "%s/table.csv", dir);
	snprintf(conf, sizeof(conf), "%s/rpmsd.conf", dir);
	f = fopen(table, "w");
	assert_non_null(f);
	fputs("hz,100\n25,1\n", f);
	fclose(f);
	snprintf(text, sizeof(text), SRC MT "train_table = table.csv\nmax_train_pulses = 50\n"
		 "[stim]\nprotocol = train\ntrain_frequency_hz = 25\ntrain_pulses = 20\n"
		 "intensity_pct = 40\n");
	f = fopen(conf, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(config_load(&cfg, conf, err, sizeof(err)), 0);

	/* the file now allows 2 s at 25 Hz; the table in force still 1 s */
	f = fopen(table, "w");
	assert_non_null(f);
	fputs("hz,100\n25,2\n", f);
	fclose(f);
	next = cfg;
	assert_int_equal(config_override(&next, "set", "stim", "train_pulses", "40", err,
					 sizeof(err)), 0);
	assert_int_equal(config_recheck(&next, "set", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "set: stim.protocol = train: a train of 40 pulses at 25 Hz lasts 1.6 s, longer than the 1 s that safety.train_table allows at 25 Hz and 100 % of motor threshold (stim.intensity_pct 40 % / safety.motor_threshold_pct 40 %)");
	next = cfg;
	assert_int_equal(config_override(&next, "set", "stim", "train_pulses", "25", err,
					 sizeof(err)), 0);
	assert_int_equal(config_recheck(&next, "set", err, sizeof(err)), 0);
	assert_true(next.safety.train_table.max_s[0][0] == 1.0);

	/* a FIFO in place of the table: the check never opens it */
	assert_int_equal(unlink(table), 0);
	assert_int_equal(mkfifo(table, 0600), 0);
	signal(SIGALRM, table_alarm);
	alarm(20);
	next = cfg;
	assert_int_equal(config_override(&next, "set", "stim", "intensity_pct", "38", err,
					 sizeof(err)), 0);
	assert_int_equal(config_recheck(&next, "set", err, sizeof(err)), 0);
	/* and loading the file again refuses it at once */
	assert_int_equal(config_load(&next, conf, err, sizeof(err)), -EINVAL);
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	snprintf(text, sizeof(text), "%s:5: safety.train_table: %s: not a regular file (allowed: a CSV file; a FIFO, a device or a socket is never read)", conf, table);
	assert_string_equal(err, text);
	/* an override of the table itself reads the file, once, there */
	assert_int_equal(config_override(&next, "--x", "safety", "train_table", table, err,
					 sizeof(err)), -EINVAL);
	unlink(table);
	unlink(conf);
	rmdir(dir);
}

/* [record] and the rpms.emg keys: ids are one word, the name is not a path. */
static void test_record_keys(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_ok(SRC "[record]\ndirectory = rec\nformat = bdf\nrange_uv = 5000\n"
		  "patient_id = P-001\nsession_id = 2026/11/27\n[publish]\nemg_stream = yes\n"
		  "emg_decimation = 4\n", &c);
	assert_string_equal(c.record.directory, "rec");
	assert_int_equal(c.record.format, CONFIG_RECORD_BDF);
	assert_true(c.record.range_uv == 5000.0);
	assert_string_equal(c.record.patient_id, "P-001");
	assert_string_equal(c.record.session_id, "2026/11/27");
	assert_true(c.publish.emg_stream);
	assert_int_equal(c.publish.emg_decimation, 4);
	expect_error(SRC "[record]\npatient_id = John Doe\n",
		     ":4: record.patient_id: 'John Doe' is not one word of printable ASCII (allowed: 1 to 63 printable ASCII characters, no spaces)");
	expect_error(SRC "[record]\nname = a/b\n",
		     ":4: record.name: 'a/b' is not a file name (allowed: a file name pattern: strftime conversions (local time), {patient}, {session}; no '/')");
	expect_error(SRC "[record]\nformat = gdf\n",
		     ":4: record.format: 'gdf' is not allowed (allowed: auto, edf, bdf)");
	expect_error(SRC "[publish]\nemg_decimation = 0\n",
		     ":4: publish.emg_decimation: 0 is out of range (allowed: 1 to 1000 samples)");
}

static void test_ring_records(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "[publish]\nring_records = 1000\n",
		     ":4: publish.ring_records: 1000 is not a power of two (allowed: 64 to 1048576, a power of two)");
	expect_error(SRC "[publish]\nring_records = 32\n",
		     ":4: publish.ring_records: 32 is out of range (allowed: 64 to 1048576, a power of two)");
	expect_ok(SRC "[publish]\nring_records = 1048576\n", &c);
	assert_int_equal(c.publish.ring_records, 1048576);
}

/* The control socket arms the coil: off this host, only with CURVE. */
static void test_control(void **state)
{
	static const char *const local[] = {
		"ipc:///run/rpmsd/control", "ipc://ctl", "tcp://127.0.0.1:5561", "tcp://127.1.2.3:1",
		"tcp://localhost:5561", "tcp://[::1]:5561", "tcp://lo:5561",
	};
	static const char *const exposed[] = {
		"tcp://0.0.0.0:5561", "tcp://*:5561", "tcp://eth0:5561", "tcp://192.168.1.2:5561",
		"tcp://127.0.0.1.example.org:5561", "tcp://[::]:5561", "tcp://rig.local:5561",
	};
	char text[512], want[512];
	struct rpmsd_config c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		snprintf(text, sizeof(text), SRC "[control]\nendpoint = %s\n", local[i]);
		expect_ok(text, &c);
		assert_string_equal(c.control.endpoint, local[i]);
	}
	for (i = 0; i < sizeof(exposed) / sizeof(exposed[0]); i++) {
		snprintf(text, sizeof(text), SRC "[control]\nendpoint = %s\n", exposed[i]);
		snprintf(want, sizeof(want), ":4: control.endpoint: '%s' can be reached from other "
			 "hosts, and whoever reaches it can arm the coil (allowed without CURVE: "
			 "ipc://PATH, tcp://127.0.0.1:PORT, tcp://[::1]:PORT, tcp://localhost:PORT; or "
			 "set control.curve_server_secret_file and control.curve_allowed_keys)",
			 exposed[i]);
		expect_error(text, want);
		/* with CURVE it may */
		snprintf(text, sizeof(text), SRC "[control]\nendpoint = %s\n"
			 "curve_server_secret_file = server.key\ncurve_allowed_keys = clients\n",
			 exposed[i]);
		expect_ok(text, &c);
	}
	expect_error(SRC "[control]\nendpoint = tcp://127.0.0.1\n",
		     ":4: control.endpoint: 'tcp://127.0.0.1' is not a valid control endpoint "
		     "(allowed: ipc://PATH (relative: to this file's directory) or "
		     "tcp://ADDRESS:PORT; an address other than loopback needs CURVE)");
	expect_error(SRC "[control]\nendpoint = inproc://ctl\n",
		     ":4: control.endpoint: 'inproc://ctl' is not a valid control endpoint "
		     "(allowed: ipc://PATH (relative: to this file's directory) or "
		     "tcp://ADDRESS:PORT; an address other than loopback needs CURVE)");
	expect_error(SRC "[control]\ncurve_server_secret_file = server.key\n",
		     ":4: control.curve_allowed_keys: missing (required with "
		     "control.curve_server_secret_file: without an allowlist every client key "
		     "would be let in)");
	/* the values status reports, as a file would hold them */
	expect_ok(SRC "[stim]\nprotocol = train\nintensity_pct = 32.5\n[safety]\nmotor_threshold_pct = 40\n", &c);
	assert_int_equal(config_value_text(&c, "stim", "protocol", text, sizeof(text)), 0);
	assert_string_equal(text, "train");
	assert_int_equal(config_value_text(&c, "stim", "intensity_pct", text, sizeof(text)), 0);
	assert_string_equal(text, "32.5");
	assert_int_equal(config_value_text(&c, "stim", "train_pulses", text, sizeof(text)), 0);
	assert_string_equal(text, "5");
	assert_int_equal(config_value_text(&c, "daemon", "arm_on_start", text, sizeof(text)), 0);
	assert_string_equal(text, "false");
	assert_int_equal(config_value_text(&c, "stim", "nope", text, sizeof(text)), -ENOENT);
	expect_error(SRC "[control]\ncurve_allowed_keys = clients\n",
		     ":4: control.curve_allowed_keys: set without "
		     "control.curve_server_secret_file (allowed: both, or neither)");
}

static void test_endpoint(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "[publish]\nendpoint = http://127.0.0.1:80\n",
		     ":4: publish.endpoint: 'http://127.0.0.1:80' is not a valid endpoint (allowed: tcp://ADDRESS, ipc://PATH or inproc://NAME)");
	expect_error(SRC "[publish]\nendpoint = tcp://\n",
		     ":4: publish.endpoint: 'tcp://' is not a valid endpoint (allowed: tcp://ADDRESS, ipc://PATH or inproc://NAME)");
	expect_ok(SRC "[publish]\nendpoint = inproc://events\n", &c);
	assert_string_equal(c.publish.endpoint, "inproc://events");
}

/* The event stream beyond loopback needs CURVE too (issue 20): it carries ids and EMG. */
static void test_publish_curve(void **state)
{
	static const char *const local[] = {
		"ipc:///run/rpmsd/events", "inproc://events", "tcp://127.0.0.1:5560",
		"tcp://127.1.2.3:1", "tcp://localhost:5560", "tcp://[::1]:5560",
	};
	static const char *const exposed[] = {
		"tcp://0.0.0.0:5560", "tcp://*:5560", "tcp://eth0:5560", "tcp://192.0.2.2:5560",
		"tcp://127.0.0.1.example.org:5560", "tcp://[::]:5560",
	};
	char text[512], want[640];
	struct rpmsd_config c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		snprintf(text, sizeof(text), SRC "[publish]\nendpoint = %s\n", local[i]);
		expect_ok(text, &c);
	}
	for (i = 0; i < sizeof(exposed) / sizeof(exposed[0]); i++) {
		snprintf(text, sizeof(text), SRC "[publish]\nendpoint = %s\n", exposed[i]);
		snprintf(want, sizeof(want), ":4: publish.endpoint: '%s' can be reached from other "
			 "hosts, and the events carry patient and session ids and the EMG (allowed "
			 "without CURVE: ipc://PATH, tcp://127.0.0.1:PORT, tcp://[::1]:PORT, "
			 "tcp://localhost:PORT; or set publish.curve_server_secret_file and "
			 "publish.curve_allowed_keys)", exposed[i]);
		expect_error(text, want);
		snprintf(text, sizeof(text), SRC "[publish]\nendpoint = %s\n"
			 "curve_server_secret_file = stream.key\ncurve_allowed_keys = viewers\n",
			 exposed[i]);
		expect_ok(text, &c);
		assert_string_equal(c.publish.curve_server_secret_file, "stream.key");
		assert_string_equal(c.publish.curve_allowed_keys, "viewers");
	}
	expect_error(SRC "[publish]\ncurve_server_secret_file = stream.key\n",
		     ":4: publish.curve_allowed_keys: missing (required with "
		     "publish.curve_server_secret_file: without an allowlist every subscriber key "
		     "would be let in)");
	expect_error(SRC "[publish]\ncurve_allowed_keys = viewers\n",
		     ":4: publish.curve_allowed_keys: set without "
		     "publish.curve_server_secret_file (allowed: both, or neither)");
	expect_error(SRC "[publish]\nendpoint = inproc://events\n"
		     "curve_server_secret_file = stream.key\ncurve_allowed_keys = viewers\n",
		     ":5: publish.curve_server_secret_file: CURVE cannot guard an inproc endpoint "
		     "('inproc://events'; allowed with CURVE: tcp://ADDRESS:PORT or ipc://PATH)");
}

static void test_column(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error("[source]\nfile = x\ncolumn = 1,,3\n",
		     ":3: source.column: '1,,3' has an empty item (allowed: at most 8 comma-separated column numbers (from 1) or CSV header names)");
	expect_error("[source]\nfile = x\ncolumn =\n",
		     ":3: source.column: '' has an empty item (allowed: at most 8 comma-separated column numbers (from 1) or CSV header names)");
	expect_error("[source]\nfile = x\ncolumn = 2,\n",
		     ":3: source.column: '2,' has an empty item (allowed: at most 8 comma-separated column numbers (from 1) or CSV header names)");
	expect_error("[source]\nfile = x\ncolumn = 0\n",
		     ":3: source.column: '0' has a bad column number 0 (allowed: at most 8 comma-separated column numbers (from 1) or CSV header names)");
	expect_error("[source]\nfile = x\ncolumn = a, -2\n",
		     ":3: source.column: 'a, -2' has a bad column number -2 (allowed: at most 8 comma-separated column numbers (from 1) or CSV header names)");
	expect_error("[source]\nfile = x\ncolumn = 1,2,3,4,5,6,7,8,9\n",
		     ":3: source.column: '1,2,3,4,5,6,7,8,9' has more than 8 items (allowed: at most 8 comma-separated column numbers (from 1) or CSV header names)");
	expect_ok("[source]\nfile = x\ncolumn = 1,2,3,4,5,6,7,8\n", &c);
	expect_ok("[source]\nfile = x\ncolumn = trial3 , 2,emg left\n", &c);
	assert_string_equal(c.source.column, "trial3 , 2,emg left");
}

static void test_rate(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "rate_hz = 50\n",
		     ":3: source.rate_hz: 50 is out of range (allowed: 0, or 100 to 100000 Hz)");
	expect_error(SRC "rate_hz = 100001\n",
		     ":3: source.rate_hz: 100001 is out of range (allowed: 0, or 100 to 100000 Hz)");
	expect_ok(SRC "rate_hz = 100\n", &c);
	assert_true(c.source.rate_hz == 100.0);
	expect_ok(SRC "rate_hz = 0\n", &c);
	assert_true(c.source.rate_hz == 0.0);
}

static void test_too_long(void **state)
{
	char text[CONFIG_LINE_TEST_MAX];
	char *p;

	(void)state;
	p = text + snprintf(text, sizeof(text), SRC "[daemon]\nplugin_dir = ");
	memset(p, 'd', 1500);
	strcpy(p + 1500, "\n");
	expect_error(text,
		     ":4: daemon.plugin_dir: value of 1500 characters is too long (allowed: at most 1023 characters)");

	p = text + snprintf(text, sizeof(text), SRC "[stim]\nplugin = ");
	memset(p, 'p', 64);
	strcpy(p + 64, "\n");
	expect_error(text,
		     ":4: stim.plugin: value of 64 characters is too long (allowed: at most 63 characters)");

	/* a line libinih would have to split */
	p = text + snprintf(text, sizeof(text), SRC "[daemon]\nplugin_dir = ");
	memset(p, 'd', 5000);
	strcpy(p + 5000, "\n");
	expect_error(text, ":4: line too long (allowed: at most 4094 characters)");
}

static void test_plugin_name(void **state)
{
	struct rpmsd_config c;

	(void)state;
	expect_error(SRC "[stim]\nplugin = Sim\n",
		     ":4: stim.plugin: 'Sim' is not a valid plugin name (allowed: 1 to 63 characters of a-z, 0-9, _ and -)");
	expect_error(SRC "[stim]\nplugin = ../evil\n",
		     ":4: stim.plugin: '../evil' is not a valid plugin name (allowed: 1 to 63 characters of a-z, 0-9, _ and -)");
	expect_error(SRC "[stim]\nplugin =\n",
		     ":4: stim.plugin: '' is not a valid plugin name (allowed: 1 to 63 characters of a-z, 0-9, _ and -)");
	expect_ok(SRC "[stim]\nplugin = magstim_200-2\n", &c);
	assert_string_equal(c.stim.plugin, "magstim_200-2");
}

static void test_coil_sections(void **state)
{
	(void)state;
	expect_error(SRC "[coil.sim]\nseed = 1\n[coil.other]\nx = 1\n",
		     ":5: [coil.other]: second coil section (allowed: only one; [coil.sim] is at line 3)");
	/* even without keys */
	expect_error(SRC "[coil.sim]\n[coil.magstim]\n",
		     ":4: [coil.magstim]: second coil section (allowed: only one; [coil.sim] is at line 3)");
	expect_error(SRC "[coil.magstim]\npower = 1\n",
		     ":3: coil.magstim: section for plugin 'magstim' but stim.plugin is 'sim'");
	expect_error(SRC "[stim]\nplugin = bench\n[coil.sim]\n",
		     ":5: coil.sim: section for plugin 'sim' but stim.plugin is 'bench'");
}

static void test_coil_keys(void **state)
{
	struct rpmsd_config c;
	char text[4096];
	size_t i, n;

	(void)state;
	/* kept raw, in order, with their lines; reopening the section is fine */
	expect_ok(SRC "[coil.sim]\nseed = 42\nname = a b ; c\n[stim]\nplugin = sim\n"
		  "[coil.sim]\nextra = x=y\n", &c);
	assert_string_equal(c.plugin_section, "sim");
	assert_int_equal(c.plugin_section_line, 3);
	assert_int_equal(c.n_plugin_kv, 3);
	assert_string_equal(c.plugin_kv[0].key, "seed");
	assert_string_equal(c.plugin_kv[0].value, "42");
	assert_int_equal(c.plugin_kv[0].line, 4);
	assert_string_equal(c.plugin_kv[1].value, "a b");
	assert_int_equal(c.plugin_kv[1].line, 5);
	assert_string_equal(c.plugin_kv[2].key, "extra");
	assert_string_equal(c.plugin_kv[2].value, "x=y");
	assert_int_equal(c.plugin_kv[2].line, 9);

	expect_error(SRC "[coil.sim]\nseed = 1\nseed = 2\n",
		     ":5: coil.sim.seed: set twice (first at line 4)");

	n = (size_t)snprintf(text, sizeof(text), SRC "[coil.sim]\n");
	for (i = 0; i <= CONFIG_MAX_PLUGIN_KEYS; i++) {
		n += (size_t)snprintf(text + n, sizeof(text) - n, "k%zu = %zu\n", i, i);
	}
	expect_error(text, ":68: coil.sim.k64: too many keys (allowed: at most 64)");
}

static void test_untouched_on_error(void **state)
{
	struct rpmsd_config c, before;
	char err[CONFIG_ERR_MAX];

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	memcpy(&before, &c, sizeof(c));
	assert_int_equal(load_text(SRC "[stim]\nplugin = bench\nintensity_pct = 500\n",
				   &c, err, sizeof(err)), -EINVAL);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_int_equal(load_text(SRC "[stim]\nintensity_pct = 80\n", &c, err,
				   sizeof(err)), -EINVAL);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_int_equal(config_load(&c, "/nonexistent/x.conf", err, sizeof(err)),
			 -ENOENT);
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_small_err_buffer(void **state)
{
	struct rpmsd_config c;
	char err[8];

	(void)state;
	assert_int_equal(load_text("[foo]\n", &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(load_text("[foo]\n", &c, NULL, 0), -EINVAL);
}

static const struct rpmsd_coil_key test_keys[] = {
	{ .name = "gain", .type = RPMSD_COIL_KEY_DOUBLE, .def = "1.5",
	  .min = 0.5, .max = 4, .unit = "V", .doc = "output gain" },
	{ .name = "port", .type = RPMSD_COIL_KEY_STRING, .def = "/dev/null",
	  .unit = "", .doc = "serial port" },
	{ .name = "retries", .type = RPMSD_COIL_KEY_INT, .def = "3",
	  .min = 0, .max = 10, .unit = "", .doc = "retries" },
	{ .name = "invert", .type = RPMSD_COIL_KEY_BOOL, .def = "false",
	  .unit = "", .doc = "invert the trigger" },
};

#define N_TEST_KEYS (sizeof(test_keys) / sizeof(test_keys[0]))

/* Load @section_body under [coil.sim] and validate it against test_keys. */
static int validate_coil(const char *section_body, char *err, size_t errlen,
			 struct rpmsd_config *c)
{
	char text[1024];

	snprintf(text, sizeof(text), SRC "[coil.sim]\n%s", section_body);
	expect_ok(text, c);
	return config_validate_plugin_keys(c, test_keys, N_TEST_KEYS, err, errlen);
}

static void expect_coil_error_at(const char *section_body, const char *suffix,
				 const char *file, int line)
{
	struct rpmsd_config c;
	char err[CONFIG_ERR_MAX];
	char want[CONFIG_ERR_MAX + 64];
	int rc;

	rc = validate_coil(section_body, err, sizeof(err), &c);
	_assert_int_equal(cast_to_largest_integral_type(rc),
			  cast_to_largest_integral_type(-EINVAL), file, line);
	snprintf(want, sizeof(want), "%s%s", tmp_path, suffix);
	_assert_string_equal(err, want, file, line);
}

#define expect_coil_error(body, suffix) \
	expect_coil_error_at((body), (suffix), __FILE__, __LINE__)

static void test_plugin_keys(void **state)
{
	struct rpmsd_config c;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(validate_coil("gain = 4\nport = /dev/ttyS0\nretries = 0\ninvert = yes\n",
				       err, sizeof(err), &c), 0);
	assert_string_equal(err, "");
	expect_coil_error("gain = 2\ngainz = 1\n",
			  ":5: coil.sim.gainz: unknown key (allowed: gain, port, retries, invert)");
	expect_coil_error("gain = 4.5\n",
			  ":4: coil.sim.gain: 4.5 is out of range (allowed: 0.5 to 4 V)");
	expect_coil_error("retries = 11\n",
			  ":4: coil.sim.retries: 11 is out of range (allowed: 0 to 10)");
	expect_coil_error("retries = 1.5\n",
			  ":4: coil.sim.retries: '1.5' is not an integer (allowed: 0 to 10)");
	expect_coil_error("gain = high\n",
			  ":4: coil.sim.gain: 'high' is not a number (allowed: 0.5 to 4 V)");
	expect_coil_error("invert = 2\n",
			  ":4: coil.sim.invert: '2' is not a boolean (allowed: true, false)");

	/* no section: nothing to check, even against an empty table */
	expect_ok(SRC, &c);
	assert_int_equal(config_validate_plugin_keys(&c, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(validate_coil("x = 1\n", err, sizeof(err), &c), -EINVAL);
	assert_int_equal(config_validate_plugin_keys(&c, NULL, 0, err, sizeof(err)),
			 -EINVAL);
	assert_true(strstr(err, ":4: coil.sim.x: unknown key (allowed: none)") != NULL);
}

static void test_plugin_value(void **state)
{
	struct rpmsd_config c;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(validate_coil("gain = 2.25\n", err, sizeof(err), &c), 0);
	assert_string_equal(config_plugin_value(&c, test_keys, N_TEST_KEYS, "gain"), "2.25");
	assert_string_equal(config_plugin_value(&c, test_keys, N_TEST_KEYS, "port"), "/dev/null");
	assert_string_equal(config_plugin_value(&c, test_keys, N_TEST_KEYS, "retries"), "3");
	assert_null(config_plugin_value(&c, test_keys, N_TEST_KEYS, "nope"));
	config_defaults(&c);
	assert_string_equal(config_plugin_value(&c, test_keys, N_TEST_KEYS, "invert"), "false");
}

static void test_source_path(void **state)
{
	struct rpmsd_config c;
	char out[CONFIG_PATH_MAX];
	char small[8];

	(void)state;
	config_defaults(&c);
	strcpy(c.path, "/etc/rpmsd/rpmsd.conf");
	strcpy(c.source.file, "/data/emg.txt");
	assert_int_equal(config_source_path(&c, out, sizeof(out)), 0);
	assert_string_equal(out, "/data/emg.txt");

	strcpy(c.source.file, "emg/rec.txt");
	assert_int_equal(config_source_path(&c, out, sizeof(out)), 0);
	assert_string_equal(out, "/etc/rpmsd/emg/rec.txt");

	strcpy(c.path, "conf/demo.conf");
	assert_int_equal(config_source_path(&c, out, sizeof(out)), 0);
	assert_string_equal(out, "conf/emg/rec.txt");

	strcpy(c.path, "/demo.conf");
	assert_int_equal(config_source_path(&c, out, sizeof(out)), 0);
	assert_string_equal(out, "/emg/rec.txt");

	/* no directory part, or no file at all: the current directory */
	strcpy(c.path, "demo.conf");
	assert_int_equal(config_source_path(&c, out, sizeof(out)), 0);
	assert_string_equal(out, "emg/rec.txt");
	c.path[0] = '\0';
	assert_int_equal(config_source_path(&c, out, sizeof(out)), 0);
	assert_string_equal(out, "emg/rec.txt");

	strcpy(c.path, "/etc/rpmsd/rpmsd.conf");
	assert_int_equal(config_source_path(&c, small, sizeof(small)), -ENAMETOOLONG);
}

/* The full fixture, loaded from its real place, resolves relative to it. */
static void test_source_path_loaded(void **state)
{
	struct rpmsd_config c;
	char err[CONFIG_ERR_MAX];
	char out[CONFIG_PATH_MAX];

	(void)state;
	assert_int_equal(config_load(&c, FULL_PATH, err, sizeof(err)), 0);
	assert_int_equal(config_source_path(&c, out, sizeof(out)), 0);
	assert_string_equal(out, TEST_DATA_DIR "/config/../emg/sample.txt");
}

/* A NUL byte must not end a line early and hide what follows it. */
static void test_nul_byte(void **state)
{
	static const char text[] = "[safety]\n# harmless comment\0max_intensity_pct = 100\n";
	struct rpmsd_config cfg;
	char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX + 64];
	int fd;

	(void)state;
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/rpmsd-test-config-XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	assert_int_equal(close(fd), 0);
	assert_int_equal(config_load(&cfg, tmp_path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in the line (allowed: text only)", tmp_path);
	assert_string_equal(err, want);
	unlink(tmp_path);
}

/* A FIFO would block the start for ever, a device never end: refused. */
static void test_not_regular_file(void **state)
{
	struct rpmsd_config cfg;
	char err[CONFIG_ERR_MAX], path[64], want[CONFIG_ERR_MAX + 64];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/rpmsd-test-fifo-%d", (int)getpid());
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file (allowed: a configuration file)", path);
	assert_string_equal(err, want);
	unlink(path);
	assert_int_equal(config_load(&cfg, "/dev/zero", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/dev/zero: not a regular file (allowed: a configuration file)");
}

/* A regular file too large for a configuration is not read (SIGHUP reads it on the main thread). */
static void test_file_too_large(void **state)
{
	struct rpmsd_config cfg;
	char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX + 64];

	(void)state;
	write_tmp("[stim]\nintensity_pct = 30\n");
	assert_int_equal(truncate(tmp_path, (1 << 20) + 1), 0);
	assert_int_equal(config_load(&cfg, tmp_path, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "%s: 1048577 bytes, too large for a configuration file (allowed: at most 1048576 bytes)", tmp_path);
	assert_string_equal(err, want);
	unlink(tmp_path);
}

/* The IIO source needs its device and channels. */
static void test_iio_required(void **state)
{
	struct rpmsd_config cfg;

	(void)state;
	expect_error("[source]\ntype = iio\nchannels = voltage0\n",
		     ": source.device: missing (required when source.type = iio)");
	expect_error("[source]\ntype = iio\ndevice = emg\n",
		     ": source.channels: missing (required when source.type = iio)");
	expect_ok("[source]\ntype = iio\ndevice = emg\nchannels = voltage0,voltage2\n"
		  "uri = ip:127.0.0.1\ngain = 500\nkernel_buffers = 2\ntrigger = trig0\n", &cfg);
	assert_int_equal(cfg.source.type, CONFIG_SOURCE_IIO);
	assert_string_equal(cfg.source.device, "emg");
	assert_string_equal(cfg.source.channels, "voltage0,voltage2");
	assert_string_equal(cfg.source.uri, "ip:127.0.0.1");
	assert_true(cfg.source.gain == 500.0);
	assert_int_equal(cfg.source.kernel_buffers, 2);
	assert_string_equal(cfg.source.trigger, "trig0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iio_required),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_not_regular_file),
		cmocka_unit_test(test_file_too_large),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_template_matches_file),
		cmocka_unit_test(test_template_needs_file),
		cmocka_unit_test(test_template_with_file_is_defaults),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_key_outside_section),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_not_an_integer),
		cmocka_unit_test(test_not_a_number),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_comments_and_forms),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_cannot_open),
		cmocka_unit_test(test_cross_band),
		cmocka_unit_test(test_cross_reopen),
		cmocka_unit_test(test_cross_thresholds),
		cmocka_unit_test(test_cross_intensity),
		cmocka_unit_test(test_cross_train_frequency),
		cmocka_unit_test(test_cross_train_pulses),
		cmocka_unit_test(test_protocol_intervals),
		cmocka_unit_test(test_recheck_uses_the_table_in_force),
		cmocka_unit_test(test_record_keys),
		cmocka_unit_test(test_ring_records),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_control),
		cmocka_unit_test(test_publish_curve),
		cmocka_unit_test(test_column),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_plugin_name),
		cmocka_unit_test(test_coil_sections),
		cmocka_unit_test(test_coil_keys),
		cmocka_unit_test(test_untouched_on_error),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_plugin_keys),
		cmocka_unit_test(test_plugin_value),
		cmocka_unit_test(test_source_path),
		cmocka_unit_test(test_source_path_loaded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
