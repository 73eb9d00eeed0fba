/* SPDX-License-Identifier: MIT */
/*
 * The control socket's request parser (control_request_parse) and its
 * CURVE key files (control_check_keys): every malformed request is refused
 * with the right code and a message that names what was wrong; nothing is
 * accepted that the daemon would have to guess about.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "config.h"
#include "control.h"
#include "control_request.h"

static void test_expect_error(const char *text, const char *code, const char *needle)
{
	struct control_request req;
	struct control_error err;

	if (control_request_parse(text, strlen(text), &req, &err) != -EINVAL) {
		fail_msg("accepted: %s", text);
	}
	if (strcmp(err.code, code)) {
		fail_msg("%s: code %s, expected %s (%s)", text, err.code, code, err.message);
	}
	if (!strstr(err.message, needle)) {
		fail_msg("%s: message '%s' lacks '%s'", text, err.message, needle);
	}
}

static void test_parse_ok(const char *text, struct control_request *req)
{
	struct control_error err;

	if (control_request_parse(text, strlen(text), req, &err) != 0) {
		fail_msg("%s: refused: %s: %s", text, err.code, err.message);
	}
}

/*
 * What "set" takes and what status calls a limit come from the key table's
 * scope flags (config_key.c), the one statement of them: pinned here to
 * docs/control.md, and the request parser's answers follow the table.
 */
static void test_set_scope_from_the_table(void **state)
{
	static const char *const live[] = {
		"protocol", "train_pulses", "train_frequency_hz", "on_ms", "off_ms", "cycles",
		"theta_bursts", "theta_burst_pulses", "theta_frequency_hz", "theta_period_ms",
		"intensity_pct", "pulse_width_us", "refractory_ms",
	};
	static const char *const limits[] = {
		"max_frequency_hz", "max_train_pulses", "min_train_interval_ms",
		"max_intensity_pct", "max_coil_temp_c", "device_temp_margin_c",
		"motor_threshold_pct",
		"max_session_pulses", "max_daily_pulses",
	};
	struct control_request req;
	char text[256], needle[64];
	const char *key;
	size_t i;

	(void)state;
	for (i = 0; (key = config_key_nth("stim", CONFIG_KEY_LIVE, i)); i++) {
		assert_true(i < sizeof(live) / sizeof(live[0]));
		assert_string_equal(key, live[i]);
		assert_true(config_key_live("stim", key));
		snprintf(text, sizeof(text), "{\"cmd\": \"set\", \"params\": {\"%s\": 1}}", key);
		test_parse_ok(text, &req);
		snprintf(needle, sizeof(needle), "stim.%s", key);
		test_expect_error("{\"cmd\": \"set\", \"params\": {\"mode\": \"open_loop\"}}",
				  "not_settable", needle);
	}
	assert_int_equal(i, sizeof(live) / sizeof(live[0]));
	for (i = 0; (key = config_key_nth("safety", CONFIG_KEY_LIMIT, i)); i++) {
		assert_true(i < sizeof(limits) / sizeof(limits[0]));
		assert_string_equal(key, limits[i]);
		assert_false(config_key_live("safety", key));
	}
	assert_int_equal(i, sizeof(limits) / sizeof(limits[0]));
	assert_null(config_key_nth("safety", CONFIG_KEY_LIVE, 0));
	assert_true(config_key_live("daemon", "log_level"));
	assert_false(config_key_live("stim", "mode"));
	assert_false(config_key_live("stim", "open_loop_pulses"));
	assert_false(config_key_live("stim", "no_such_key"));
	test_expect_error("{\"cmd\": \"set\", \"params\": {\"open_loop_pulses\": 5}}",
			  "not_settable", "stim.open_loop_pulses: not settable at run time");
}

static void test_commands(void **state)
{
	static const char *const names[] = {
		"status", "arm", "disarm", "calibrate", "session_start", "session_stop", "set",
		"assess",
		"threshold", "threshold_status",
	};
	static const char *const allowed[CONTROL_CMD_COUNT] = {
		[CONTROL_CMD_SESSION_STOP] = "cmd, reason",
		[CONTROL_CMD_THRESHOLD] = "cmd, channel, window_ms, interval_s, start_pct, "
					  "cap_pct, stop",
		[CONTROL_CMD_THRESHOLD_STATUS] = "cmd, since",
	};
	char want[256];
	struct control_request req;
	char text[128];
	unsigned i;

	(void)state;
	for (i = 0; i < CONTROL_CMD_COUNT; i++) {
		assert_string_equal(control_request_cmd_name((enum control_cmd)i), names[i]);
		if (i == CONTROL_CMD_SESSION_START || i == CONTROL_CMD_SET ||
		    i == CONTROL_CMD_ASSESS) {
			continue;
		}
		snprintf(text, sizeof(text), "{\"cmd\": \"%s\"}", names[i]);
		test_parse_ok(text, &req);
		assert_int_equal(req.cmd, i);
		/* no member besides cmd (and session_stop's reason) */
		snprintf(text, sizeof(text), "{\"cmd\": \"%s\", \"force\": true}", names[i]);
		snprintf(want, sizeof(want), "unknown member \"force\" (allowed: %s)",
			 allowed[i] ? allowed[i] : "cmd");
		test_expect_error(text, "bad_request", want);
	}
	assert_null(control_request_cmd_name(CONTROL_CMD_COUNT));
	test_parse_ok(" \n{\"cmd\":\"status\"}\n ", &req);
	assert_int_equal(req.cmd, CONTROL_CMD_STATUS);
}

static void test_assess_request(void **state)
{
	struct control_request req;

	(void)state;
	test_parse_ok("{\"cmd\": \"assess\", \"kind\": \"rest\", \"phase\": \"pre\"}", &req);
	assert_int_equal(req.cmd, CONTROL_CMD_ASSESS);
	assert_int_equal(req.assess_phase, 0);
	assert_true(req.assess_seconds == 60);
	test_parse_ok("{\"cmd\": \"assess\", \"kind\": \"rest\", \"phase\": \"post\", "
		      "\"seconds\": 12.5}", &req);
	assert_int_equal(req.assess_phase, 1);
	assert_true(req.assess_seconds == 12.5);
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"rest\"}", "bad_request",
			  "assess: \"phase\" is missing (allowed: \"pre\" or \"post\"");
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"rest\", \"phase\": \"during\"}",
			  "invalid_value", "assess: \"phase\" is not known");
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"walk\", \"phase\": \"pre\"}",
			  "invalid_value", "assess: \"kind\" is not known (allowed: \"rest\", "
			  "\"stretch\", \"mvc\", \"cci\")");
	test_parse_ok("{\"cmd\": \"assess\", \"kind\": \"stretch\", \"phase\": \"pre\", "
		      "\"muscle\": \"FCR\"}", &req);
	assert_int_equal(req.assess_kind, 1);
	assert_string_equal(req.assess_muscle, "FCR");
	assert_int_equal(req.assess_direction, 1);
	assert_true(req.assess_seconds == 120);
	test_parse_ok("{\"cmd\": \"assess\", \"kind\": \"stretch\", \"phase\": \"post\", "
		      "\"muscle\": \"FCR\", \"direction\": \"decreasing\", \"seconds\": 90}",
		      &req);
	assert_int_equal(req.assess_direction, -1);
	assert_true(req.assess_seconds == 90);
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"stretch\", \"phase\": \"pre\"}",
			  "bad_request", "assess stretch: \"muscle\" is missing");
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"stretch\", \"phase\": \"pre\", "
			  "\"muscle\": \"FCR\", \"direction\": \"up\"}", "invalid_value",
			  "assess stretch: \"direction\" is not known (allowed: \"increasing\" or "
			  "\"decreasing\"");
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"rest\", \"phase\": \"pre\", "
			  "\"direction\": \"increasing\"}", "bad_request",
			  "assess: \"direction\" is only for kind \"stretch\"");
	test_parse_ok("{\"cmd\": \"assess\", \"kind\": \"cci\", \"phase\": \"pre\", "
		      "\"agonist\": \"FCR\", \"antagonist\": \"ECR\"}", &req);
	assert_int_equal(req.assess_kind, 2);
	assert_string_equal(req.assess_agonist, "FCR");
	assert_string_equal(req.assess_antagonist, "ECR");
	test_parse_ok("{\"cmd\": \"assess\", \"kind\": \"mvc\", \"phase\": \"post\"}", &req);
	assert_int_equal(req.assess_kind, 3);
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"cci\", \"phase\": \"pre\", "
			  "\"agonist\": \"FCR\"}", "bad_request",
			  "assess cci: \"antagonist\" is missing");
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"mvc\", \"phase\": \"pre\", "
			  "\"agonist\": \"FCR\"}", "bad_request",
			  "assess: \"agonist\" is only for kind \"cci\"");
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"rest\", \"phase\": \"pre\", "
			  "\"seconds\": 601}", "invalid_value",
			  "assess: \"seconds\" is out of range (allowed: a number of seconds, 1 to "
			  "600)");
	test_expect_error("{\"cmd\": \"assess\", \"kind\": \"rest\", \"phase\": \"pre\", "
			  "\"seconds\": \"60\"}", "bad_request", "assess: \"seconds\" is not a number");
}

static void test_malformed(void **state)
{
	struct control_request req;
	struct control_error err;
	char *big;

	(void)state;
	test_expect_error("", "bad_request", "an empty request");
	test_expect_error("status", "bad_request", "not JSON");
	test_expect_error("{\"cmd\": \"arm\"", "bad_request", "not JSON");
	test_expect_error("{\"cmd\": \"arm\"} {}", "bad_request", "not JSON");
	test_expect_error("[\"arm\"]", "bad_request", "the request is an array");
	test_expect_error("7", "bad_request", "the request is an integer");
	test_expect_error("{}", "bad_request", "\"cmd\" is missing");
	test_expect_error("{\"cmd\": 1}", "bad_request", "\"cmd\" is an integer");
	test_expect_error("{\"cmd\": [\"arm\"]}", "bad_request", "\"cmd\" is an array");
	test_expect_error("{\"cmd\": \"Arm\"}", "unknown_command", "unknown command \"Arm\"");
	test_expect_error("{\"cmd\": \"fire\"}", "unknown_command",
			  "(allowed: status, arm, disarm, calibrate, session_start, session_stop, set, "
			  "assess, threshold, threshold_status)");
	/* which of two would win is not obvious: both refused */
	test_expect_error("{\"cmd\": \"status\", \"cmd\": \"arm\"}", "bad_request", "duplicate");
	test_expect_error("{\"cmd\": \"a\\u0000m\"}", "bad_request", "not JSON");
	/* bytes that are not UTF-8 are named, as printable text */
	assert_int_equal(control_request_parse("{\"cmd\": \"\xff\"}", 11, &req, &err), -EINVAL);
	assert_string_equal(err.code, "bad_request");
	for (const char *p = err.message; *p; p++) {
		assert_true(*p >= 0x20 && *p <= 0x7e);
	}
	assert_int_equal(req.cmd, CONTROL_CMD_COUNT);

	big = malloc(CONTROL_REQUEST_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', CONTROL_REQUEST_MAX + 1);
	memcpy(big, "{\"cmd\":\"status\"}", 16);
	big[CONTROL_REQUEST_MAX + 1] = '\0';
	test_expect_error(big, "too_large", "a request of 16385 bytes (allowed: at most 16384)");
	big[CONTROL_REQUEST_MAX] = '\0';
	test_parse_ok(big, &req);
	free(big);
}

static void test_session_ids(void **state)
{
	static const char *const good[] = {
		"P", "p01", "2026-11-27", "S_1.a", "A23456789012345678901234567890123456",
	};
	static const char *const bad[] = {
		"", "-P", ".P", "_P", "P 1", "P/1", "../P", "P\\u00e9", "P\\t", "A234567890123456789012345678901234567",
	};
	struct control_request req;
	char text[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_true(control_request_id_valid(good[i]));
		snprintf(text, sizeof(text),
			 "{\"cmd\": \"session_start\", \"patient_id\": \"%s\", \"session_id\": \"S\"}",
			 good[i]);
		test_parse_ok(text, &req);
		assert_int_equal(req.cmd, CONTROL_CMD_SESSION_START);
		assert_string_equal(req.patient_id, good[i]);
		assert_string_equal(req.session_id, "S");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 "{\"cmd\": \"session_start\", \"patient_id\": \"P\", \"session_id\": \"%s\"}",
			 bad[i]);
		test_expect_error(text, "invalid_value", "session_id \"");
	}
	assert_false(control_request_id_valid("P\xc3\xa9"));
	test_expect_error("{\"cmd\": \"session_start\", \"patient_id\": \"P\"}", "bad_request",
			  "missing member \"session_id\"");
	test_expect_error("{\"cmd\": \"session_start\", \"patient_id\": 7, \"session_id\": \"S\"}",
			  "bad_request", "\"patient_id\" is an integer");
	test_expect_error("{\"cmd\": \"session_start\", \"patient\": \"P\", \"session_id\": \"S\"}",
			  "bad_request", "unknown member \"patient\" (allowed: cmd, patient_id, session_id, "
			  "course_id, motor_threshold_pct)");
}

/* session_start's course members, session_stop's and set's reason (docs/control.md). */
static void test_course_members(void **state)
{
	struct control_request req;

	(void)state;
	test_parse_ok("{\"cmd\": \"session_start\", \"patient_id\": \"P\", \"session_id\": \"S\"}",
		      &req);
	assert_string_equal(req.course_id, "");
	assert_true(req.motor_threshold_pct == 0.0);
	test_parse_ok("{\"cmd\": \"session_start\", \"patient_id\": \"P\", \"session_id\": \"S\", "
		      "\"course_id\": \"C-1\", \"motor_threshold_pct\": 45}", &req);
	assert_string_equal(req.course_id, "C-1");
	assert_true(req.motor_threshold_pct == 45.0);
	test_expect_error("{\"cmd\": \"session_start\", \"patient_id\": \"P\", \"session_id\": "
			  "\"S\", \"course_id\": \"../C\"}", "invalid_value", "course_id \"../C\"");
	test_expect_error("{\"cmd\": \"session_start\", \"patient_id\": \"P\", \"session_id\": "
			  "\"S\", \"course_id\": \"C\", \"motor_threshold_pct\": 0}", "invalid_value",
			  "motor_threshold_pct 0 is out of range");
	test_expect_error("{\"cmd\": \"session_start\", \"patient_id\": \"P\", \"session_id\": "
			  "\"S\", \"course_id\": \"C\", \"motor_threshold_pct\": \"45\"}", "bad_request",
			  "\"motor_threshold_pct\" is a string");
	test_expect_error("{\"cmd\": \"session_start\", \"patient_id\": \"P\", \"session_id\": "
			  "\"S\", \"motor_threshold_pct\": 45}", "bad_request", "without course_id");
	test_parse_ok("{\"cmd\": \"session_stop\", \"reason\": \"patient asked to stop\"}", &req);
	assert_string_equal(req.reason, "patient asked to stop");
	test_parse_ok("{\"cmd\": \"session_stop\"}", &req);
	assert_string_equal(req.reason, "");
	test_expect_error("{\"cmd\": \"session_stop\", \"reason\": \"\"}", "invalid_value",
			  "session_stop: reason");
	test_expect_error("{\"cmd\": \"session_stop\", \"reason\": \"a\\nb\"}", "invalid_value",
			  "printable ASCII");
	test_expect_error("{\"cmd\": \"session_stop\", \"reason\": 3}", "bad_request",
			  "\"reason\" is an integer");
	test_parse_ok("{\"cmd\": \"set\", \"params\": {\"intensity_pct\": 40}, \"reason\": \"discomfort\"}",
		      &req);
	assert_string_equal(req.reason, "discomfort");
}

static void test_set(void **state)
{
	struct control_request req;
	char text[2048];
	size_t n, i;

	(void)state;
	test_parse_ok("{\"cmd\": \"set\", \"params\": {\"stim.intensity_pct\": 35.5, "
		      "\"train_pulses\": 3, \"protocol\": \"onoff\"}}", &req);
	assert_int_equal(req.cmd, CONTROL_CMD_SET);
	assert_int_equal(req.n_params, 3);
	assert_string_equal(req.params[0].key, "intensity_pct");
	assert_string_equal(req.params[0].value, "35.5");
	assert_string_equal(req.params[1].key, "train_pulses");
	assert_string_equal(req.params[1].value, "3");
	assert_string_equal(req.params[2].value, "onoff");

	test_expect_error("{\"cmd\": \"set\"}", "bad_request", "missing member \"params\"");
	test_expect_error("{\"cmd\": \"set\", \"params\": [1]}", "bad_request",
			  "\"params\" is an array");
	test_expect_error("{\"cmd\": \"set\", \"params\": {}}", "bad_request",
			  "0 keys (allowed: 1 to 16 at once)");
	test_expect_error("{\"cmd\": \"set\", \"params\": {\"intensity_pct\": true}}",
			  "invalid_value", "stim.intensity_pct: the value is a boolean");
	test_expect_error("{\"cmd\": \"set\", \"params\": {\"intensity_pct\": null}}",
			  "invalid_value", "the value is null");
	test_expect_error("{\"cmd\": \"set\", \"params\": {\"intensity_pct\": 30, "
			  "\"stim.intensity_pct\": 31}}", "bad_request", "stim.intensity_pct is given twice");
	test_expect_error("{\"cmd\": \"set\", \"params\": {\"mode\": \"open_loop\"}}",
			  "not_settable", "stim.mode: not settable at run time (allowed: stim.protocol");
	test_expect_error("{\"cmd\": \"set\", \"params\": {\"safety.max_intensity_pct\": 99}}",
			  "not_settable", "safety.max_intensity_pct: not settable at run time");
	test_expect_error("{\"cmd\": \"set\", \"params\": {\"plugin\": \"gpio\"}}", "not_settable",
			  "stim.plugin");
	snprintf(text, sizeof(text), "{\"cmd\": \"set\", \"params\": {\"protocol\": \"%0*d\"}}", 64, 0);
	test_expect_error(text, "invalid_value", "a value of 64 characters (allowed: at most 63)");

	n = (size_t)snprintf(text, sizeof(text), "{\"cmd\": \"set\", \"params\": {");
	for (i = 0; i < CONTROL_SET_MAX + 1; i++) {
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"k%zu\": 1", i ? ", " : "", i);
	}
	snprintf(text + n, sizeof(text) - n, "}}");
	test_expect_error(text, "bad_request", "17 keys (allowed: 1 to 16 at once)");
}

/* Key files, as control_check_keys reads them for --check-config. */
static void test_keys(void **state)
{
	char dir[] = "/tmp/rpmsd-test-control-XXXXXX";
	char secret[128], allowed[128], pub[41], sec[41], err[CONFIG_ERR_MAX];
	struct rpmsd_config cfg;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(secret, sizeof(secret), "%s/server.key", dir);
	snprintf(allowed, sizeof(allowed), "%s/clients", dir);
	assert_int_equal(zmq_curve_keypair(pub, sec), 0);
	f = fopen(secret, "w");
	assert_non_null(f);
	fprintf(f, "# server\n%s\n", sec);
	fclose(f);
	assert_int_equal(chmod(secret, 0600), 0);
	f = fopen(allowed, "w");
	assert_non_null(f);
	fprintf(f, "# clients\n\n%s  lab-pc\n", pub);
	fclose(f);

	config_defaults(&cfg);
	assert_int_equal(control_check_keys(&cfg, err, sizeof(err)), 0);	/* no CURVE */
	snprintf(cfg.control.curve_server_secret_file, sizeof(cfg.control.curve_server_secret_file),
		 "%s", secret);
	snprintf(cfg.control.curve_allowed_keys, sizeof(cfg.control.curve_allowed_keys), "%s",
		 allowed);
	assert_int_equal(control_check_keys(&cfg, err, sizeof(err)), 0);

	/* a line after the key that is not a key is named as such, not as a second key */
	f = fopen(secret, "a");
	assert_non_null(f);
	fprintf(f, "%.39s\n", sec);
	fclose(f);
	assert_int_equal(control_check_keys(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":3: not a Z85 secret key"));
	f = fopen(secret, "w");
	assert_non_null(f);
	fprintf(f, "%s\n%s\n", sec, sec);
	fclose(f);
	assert_int_equal(control_check_keys(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: a second key (allowed: one)"));
	f = fopen(secret, "w");
	assert_non_null(f);
	fprintf(f, "# server\n%s\n", sec);
	fclose(f);

	assert_int_equal(chmod(secret, 0640), 0);
	assert_int_equal(control_check_keys(&cfg, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "readable by others (mode 0640"));
	assert_int_equal(chmod(secret, 0600), 0);

	f = fopen(allowed, "a");
	assert_non_null(f);
	fprintf(f, "%.39s\n", pub);
	fclose(f);
	assert_int_equal(control_check_keys(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":4: not a Z85 public key"));

	f = fopen(allowed, "w");
	assert_non_null(f);
	fprintf(f, "# nobody\n");
	fclose(f);
	assert_int_equal(control_check_keys(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no client key"));

	unlink(allowed);
	unlink(secret);
	rmdir(dir);
}

/* "threshold": every member optional, each checked, stop alone. */
static void test_threshold_request(void **state)
{
	struct control_request req;

	(void)state;
	test_parse_ok("{\"cmd\": \"threshold\"}", &req);
	assert_int_equal(req.threshold.channel, -1);
	assert_true(isnan(req.threshold.cap_pct) && isnan(req.threshold.win_start_ms));
	assert_false(req.threshold.stop);
	test_parse_ok("{\"cmd\": \"threshold\", \"channel\": 1, \"window_ms\": [3, 25], "
		      "\"interval_s\": 0.5, \"start_pct\": 30, \"cap_pct\": 55}", &req);
	assert_int_equal(req.threshold.channel, 1);
	assert_true(req.threshold.win_start_ms == 3.0 && req.threshold.win_end_ms == 25.0);
	assert_true(req.threshold.interval_s == 0.5 && req.threshold.start_pct == 30.0);
	assert_true(req.threshold.cap_pct == 55.0);
	test_parse_ok("{\"cmd\": \"threshold\", \"stop\": true}", &req);
	assert_true(req.threshold.stop);
	test_expect_error("{\"cmd\": \"threshold\", \"stop\": true, \"channel\": 1}",
			  "bad_request", "threshold: \"stop\" with other members");
	test_expect_error("{\"cmd\": \"threshold\", \"channel\": 9}", "invalid_value",
			  "threshold: channel 9 is out of range (allowed: 0 to 7)");
	test_expect_error("{\"cmd\": \"threshold\", \"channel\": 1.5}", "bad_request",
			  "threshold: \"channel\" is a number (allowed: an integer");
	test_expect_error("{\"cmd\": \"threshold\", \"cap_pct\": 0}", "invalid_value",
			  "threshold: cap_pct 0 is out of range (allowed: 1 to 110 %)");
	test_expect_error("{\"cmd\": \"threshold\", \"interval_s\": 0.01}", "invalid_value",
			  "threshold: interval_s 0.01 is out of range (allowed: 0.2 to 60 s)");
	test_expect_error("{\"cmd\": \"threshold\", \"window_ms\": [20, 2]}", "invalid_value",
			  "threshold: window_ms [20, 2] is out of range");
	test_expect_error("{\"cmd\": \"threshold\", \"window_ms\": 20}", "bad_request",
			  "threshold: \"window_ms\" is a");
	test_expect_error("{\"cmd\": \"threshold_status\", \"since\": 0}", "bad_request",
			  "threshold_status: \"since\" is not an integer from 1 to 100000");
	test_parse_ok("{\"cmd\": \"threshold_status\", \"since\": 4}", &req);
	assert_int_equal(req.threshold.since, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_assess_request),
		cmocka_unit_test(test_threshold_request),
		cmocka_unit_test(test_set_scope_from_the_table),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_session_ids),
		cmocka_unit_test(test_course_members),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
