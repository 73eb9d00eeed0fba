/* SPDX-License-Identifier: MIT */
/*
 * Tests of the prescription: every key's bad value and every rule with its
 * exact "FILE:LINE: section.key: ..." message, the presets, the frequency
 * class boundaries, the six NIBS-BIDS timing parameters, and the protocol
 * held to the configuration's own safety checks.
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
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "prescription.h"

#define EXAMPLE_PATH TEST_SOURCE_ROOT "/config/prescription-example.rx"
#define ITBS_PATH TEST_SOURCE_ROOT "/config/prescription-itbs.rx"

/* Lines 1 to 11: everything but [protocol]. */
#define HEAD "[patient]\nid = P-0042\n[course]\nid = C-1\nsessions = 10\n" \
	"[target]\nkind = nerve_trunk\nsite = radial\nside = right\n" \
	"[intensity]\nmotor_threshold_pct = 110\n"
/* Lines 12 to 17. */
#define ONOFF "[protocol]\npattern = on_off\nrate_hz = 25\non_ms = 1000\noff_ms = 2000\n" \
	"pulses = 1200\n"
#define BASE HEAD ONOFF
#define BASE_LINES 17

static char tmp_path[64];

static int load_bytes(const char *text, size_t len, struct prescription *rx, char *err,
		      size_t errlen)
{
	int fd, rc;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/rpmsd-test-rx-XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	rc = prescription_load(rx, tmp_path, err, errlen);
	unlink(tmp_path);
	return rc;
}

static int load_text(const char *text, struct prescription *rx, char *err, size_t errlen)
{
	return load_bytes(text, strlen(text), rx, err, errlen);
}

/* Loading @text fails with -EINVAL and "TMPFILE" @suffix, reported at the caller's line. */
static void expect_error_at(const char *text, const char *suffix, const char *file, int line)
{
	static struct prescription rx;
	char err[PRESCRIPTION_ERR_MAX];
	char want[PRESCRIPTION_ERR_MAX + 64];
	int rc;

	memset(&rx, 0x5a, sizeof(rx));
	rc = load_text(text, &rx, err, sizeof(err));
	_assert_int_equal(cast_to_largest_integral_type(rc),
			  cast_to_largest_integral_type(-EINVAL), file, line);
	snprintf(want, sizeof(want), "%s%s", tmp_path, suffix);
	_assert_string_equal(err, want, file, line);
	/* untouched on error */
	_assert_int_equal(cast_to_largest_integral_type(rx.course.sessions),
			  cast_to_largest_integral_type(0x5a5a5a5a), file, line);
}

#define expect_error(text, suffix) expect_error_at(text, suffix, __FILE__, __LINE__)

static void load_ok(const char *text, struct prescription *rx)
{
	char err[PRESCRIPTION_ERR_MAX];
	int rc = load_text(text, rx, err, sizeof(err));

	if (rc) {
		fail_msg("%s", err);
	}
}

/* The example in config/ loads, every key where the file put it. */
static void test_example(void **state)
{
	static struct prescription rx;
	char err[PRESCRIPTION_ERR_MAX];

	(void)state;
	assert_int_equal(prescription_load(&rx, EXAMPLE_PATH, err, sizeof(err)), 0);
	assert_string_equal(rx.patient.id, "P-0042");
	assert_string_equal(rx.course.id, "C-0042-1");
	assert_int_equal(rx.course.sessions, 10);
	assert_int_equal(rx.course.sessions_per_day, 1);
	assert_true(rx.course.min_hours_between == 20);
	assert_int_equal(rx.target.kind, PRESCRIPTION_NERVE_TRUNK);
	assert_string_equal(rx.target.site, "radial");
	assert_int_equal(rx.target.side, PRESCRIPTION_RIGHT);
	assert_string_equal(rx.target.coil, "round coil, 70 mm");
	assert_string_equal(rx.target.position, "lateral upper arm, over the spiral groove");
	assert_int_equal(rx.protocol.pattern, PRESCRIPTION_ON_OFF);
	assert_true(rx.protocol.rate_hz == 25);
	assert_true(rx.protocol.on_ms == 1000);
	assert_true(rx.protocol.off_ms == 2000);
	assert_int_equal(rx.protocol.pulses, 1200);
	assert_int_equal(rx.intensity.kind, PRESCRIPTION_INTENSITY_MT);
	assert_true(rx.intensity.motor_threshold_pct == 110);
	assert_int_equal(prescription_key_line(&rx, "patient", "id"), 6);
	assert_int_equal(prescription_key_line(&rx, "intensity", "motor_threshold_pct"), 30);
	assert_int_equal(prescription_key_line(&rx, "course", "nope"), 0);
}

/* Every key, each value the table allows, stored in its field. */
static void test_every_key(void **state)
{
	static struct prescription rx;

	(void)state;
	load_ok("[patient]\nid = a_B-9\n[course]\nid = 2026\nsessions = 20\nsessions_per_day = 2\n"
		"min_hours_between = 6.5\n[target]\nkind = motor_point\nsite = soleus\n"
		"extra_nerves = musculocutaneous, axillary\nextra_muscles = soleus,flexor_carpi\n"
		"side = left\ncoil = c\nposition = p\n[intensity]\nmax_output_pct = 55\n"
		"[protocol]\npattern = emg_triggered\nrate_hz = 20\ntrain_pulses = 10\n"
		"pulses = 500\n", &rx);
	assert_string_equal(rx.patient.id, "a_B-9");
	assert_string_equal(rx.course.id, "2026");
	assert_int_equal(rx.course.sessions, 20);
	assert_int_equal(rx.course.sessions_per_day, 2);
	assert_true(rx.course.min_hours_between == 6.5);
	assert_int_equal(rx.target.kind, PRESCRIPTION_MOTOR_POINT);
	assert_string_equal(rx.target.site, "soleus");
	assert_string_equal(rx.target.extra_nerves, "musculocutaneous, axillary");
	assert_int_equal(rx.target.side, PRESCRIPTION_LEFT);
	assert_int_equal(rx.protocol.pattern, PRESCRIPTION_EMG_TRIGGERED);
	assert_int_equal(rx.protocol.train_pulses, 10);
	assert_int_equal(rx.intensity.kind, PRESCRIPTION_INTENSITY_OUTPUT);
	assert_true(rx.intensity.max_output_pct == 55);
	/* an extra nerve, and every built-in name for its kind */
	load_ok("[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n[target]\nkind = nerve_trunk\n"
		"site = axillary\nextra_nerves = musculocutaneous, axillary\nside = left\n"
		"[intensity]\nmax_output_pct = 5\n[protocol]\npreset = continuous_1hz\n", &rx);
	assert_string_equal(rx.target.site, "axillary");
}

static void test_builtin_sites(void **state)
{
	static const char *const nerves[] = { "radial", "median", "ulnar", "tibial", "peroneal" };
	static const char *const muscles[] = { "wrist_extensors", "finger_extensors", "triceps",
					       "biceps", "tibialis_anterior", "gastrocnemius" };
	static struct prescription rx;
	char text[1024];
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n"
			 "[target]\nkind = nerve_trunk\nsite = %s\nside = left\n[intensity]\n"
			 "max_output_pct = 5\n[protocol]\npreset = itbs\n", nerves[i]);
		load_ok(text, &rx);
		assert_string_equal(rx.target.site, nerves[i]);
	}
	for (i = 0; i < 6; i++) {
		snprintf(text, sizeof(text), "[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n"
			 "[target]\nkind = motor_point\nsite = %s\nside = left\n[intensity]\n"
			 "max_output_pct = 5\n[protocol]\npreset = itbs\n", muscles[i]);
		load_ok(text, &rx);
		assert_string_equal(rx.target.site, muscles[i]);
	}
}

/*
 * BASE into @out without the line of the key that @setting ("[section]\nkey
 * = ...") sets, so that setting it again is not "set twice".
 * @return the lines in @out
 */
static int base_without(const char *setting, char *out, size_t len)
{
	char section[32] = "", key[40], cur[32] = "";
	const char *p = BASE, *nl;
	int lines = 0;

	assert_int_equal(sscanf(setting, "[%31[^]]]\n%39[^ =]", section, key), 2);
	out[0] = '\0';
	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (*p == '[') {
			snprintf(cur, sizeof(cur), "%.*s", (int)(nl - p - 2), p + 1);
		} else if (!strcmp(cur, section) && !strncmp(p, key, strlen(key)) &&
			   p[strlen(key)] == ' ') {
			continue;
		}
		snprintf(out + strlen(out), len - strlen(out), "%.*s", (int)(nl - p + 1), p);
		lines++;
	}
	return lines;
}

/* A bad value of each key: FILE:LINE: section.key: why (allowed: ...). */
static void test_bad_values(void **state)
{
	static const struct {
		const char *line;	/* "[section]\nkey = value\n", appended at lines 18-19 */
		const char *why;
	} cases[] = {
		{ "[patient]\nid = John Smith\n",
		  "patient.id: 'John Smith' has ' ', not a code (allowed: a pseudonymous code: 1 to 36 of A-Z, a-z, 0-9, - and _, with a digit; never a name)" },
		{ "[patient]\nid = Smith\n",
		  "patient.id: 'Smith' has no digit: a pseudonymous code, never a name (allowed: a pseudonymous code: 1 to 36 of A-Z, a-z, 0-9, - and _, with a digit; never a name)" },
		{ "[patient]\nid = P-01234567890123456789012345678901234\n",
		  "patient.id: value of 37 characters is too long (allowed: at most 36 characters)" },
		{ "[course]\nid = C.1\n",
		  "course.id: 'C.1' has '.', not a code (allowed: 1 to 36 of A-Z, a-z, 0-9, - and _, with a digit)" },
		{ "[course]\nsessions = 0\n", "course.sessions: 0 is out of range (allowed: 1 to 1000)" },
		{ "[course]\nsessions_per_day = 25\n",
		  "course.sessions_per_day: 25 is out of range (allowed: 1 to 24)" },
		{ "[course]\nmin_hours_between = -1\n",
		  "course.min_hours_between: -1 is out of range (allowed: 0 to 720 h)" },
		{ "[target]\nkind = nerve\n",
		  "target.kind: 'nerve' is not allowed (allowed: nerve_trunk, motor_point)" },
		{ "[target]\nsite = Radial\n",
		  "target.site: 'Radial' is not a name (allowed: nerve_trunk: radial, median, ulnar, tibial, peroneal or a name in extra_nerves; motor_point: wrist_extensors, finger_extensors, triceps, biceps, tibialis_anterior, gastrocnemius or a name in extra_muscles)" },
		{ "[target]\nextra_nerves = a,,b\n",
		  "target.extra_nerves: 'a,,b' is not a list of names (allowed: names of a-z, 0-9 and _, separated by commas)" },
		{ "[target]\nextra_muscles = soleus,\n",
		  "target.extra_muscles: 'soleus,' is not a list of names (allowed: names of a-z, 0-9 and _, separated by commas)" },
		{ "[target]\nside = up\n", "target.side: 'up' is not allowed (allowed: left, right)" },
		{ "[target]\ncoil = a\tb\n",
		  "target.coil: control character in the text (allowed: text, at most 63 characters)" },
		{ "[target]\nposition = a\x01z\n",
		  "target.position: control character in the text (allowed: text, at most 255 characters)" },
		{ "[protocol]\npreset = rtms\n",
		  "protocol.preset: 'rtms' is not a preset (allowed: itbs, onoff_25hz, continuous_1hz (docs/prescriptions.md))" },
		{ "[protocol]\npattern = burst\n",
		  "protocol.pattern: 'burst' is not allowed (allowed: continuous, on_off, theta_burst, emg_triggered)" },
		{ "[protocol]\nrate_hz = 0\n", "protocol.rate_hz: 0 is out of range (allowed: 0.1 to 100 Hz)" },
		{ "[protocol]\non_ms = 0.5\n", "protocol.on_ms: 0.5 is out of range (allowed: 1 to 60000 ms)" },
		{ "[protocol]\noff_ms = x\n", "protocol.off_ms: 'x' is not a number (allowed: 0 to 600000 ms)" },
		{ "[protocol]\npulses = 100001\n",
		  "protocol.pulses: 100001 is out of range (allowed: 1 to 100000)" },
		{ "[protocol]\ntrain_pulses = 1.5\n",
		  "protocol.train_pulses: '1.5' is not an integer (allowed: 1 to 1000)" },
		{ "[protocol]\ntheta_burst_pulses = 21\n",
		  "protocol.theta_burst_pulses: 21 is out of range (allowed: 1 to 20)" },
		{ "[protocol]\ntheta_frequency_hz = 101\n",
		  "protocol.theta_frequency_hz: 101 is out of range (allowed: 1 to 100 Hz)" },
		{ "[protocol]\ntheta_period_ms = 5\n",
		  "protocol.theta_period_ms: 5 is out of range (allowed: 10 to 10000 ms)" },
		{ "[protocol]\ntheta_bursts = 0\n",
		  "protocol.theta_bursts: 0 is out of range (allowed: 1 to 1000)" },
		{ "[intensity]\nmotor_threshold_pct = 301\n",
		  "intensity.motor_threshold_pct: 301 is out of range (allowed: 1 to 300 %)" },
		{ "[intensity]\nmax_output_pct = 101\n",
		  "intensity.max_output_pct: 101 is out of range (allowed: 1 to 100 %)" },
	};
	char text[2048], suffix[1024];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = base_without(cases[i].line, text, sizeof(text));
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s", cases[i].line);
		snprintf(suffix, sizeof(suffix), ":%d: %s", n + 2, cases[i].why);
		expect_error(text, suffix);
	}
	/* a coil note of 63 characters is taken, of 64 not */
	snprintf(text, sizeof(text), "%s[target]\ncoil = %063d\n", BASE, 0);
	{
		static struct prescription rx;

		load_ok(text, &rx);
		assert_int_equal(strlen(rx.target.coil), 63);
	}
	snprintf(text, sizeof(text), "%s[target]\ncoil = %064d\n", BASE, 0);
	expect_error(text, ":19: target.coil: value of 64 characters is too long (allowed: at most 63 characters)");
}

/* The file's shape: sections, keys, lines. */
static void test_file_errors(void **state)
{
	static struct prescription rx;
	char err[PRESCRIPTION_ERR_MAX];

	(void)state;
	expect_error(BASE "[stim]\n",
		     ":18: [stim]: unknown section (allowed: patient, course, target, protocol, intensity)");
	expect_error(BASE "[patient]\nname = Jo\n", ":19: patient.name: unknown key (allowed: id)");
	expect_error(BASE "[course]\nsessions = 12\n", ":19: course.sessions: set twice (first at line 5)");
	expect_error("id = P1\n" BASE,
		     ":1: id: key outside any section (expected a '[section]' line first)");
	expect_error(BASE "[course\n", ":18: syntax error (expected '[section]' or 'key = value')");
	expect_error(BASE "sessions\n", ":18: syntax error (expected '[section]' or 'key = value')");
	assert_int_equal(prescription_load(&rx, "/nonexistent/rx", err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/rx: cannot open: No such file or directory");
	assert_int_equal(prescription_load(&rx, "/tmp", err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/tmp: cannot read: Is a directory");
	assert_int_equal(prescription_load(&rx, "/dev/null", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/dev/null: not a regular file (allowed: a prescription file)");
}

/*
 * The reader the prescription shares with the configuration (config_ini),
 * with the prescription's own limits and words: a NUL byte, a long line,
 * a file over 64 KiB, a path too long.
 */
static void test_file_limits(void **state)
{
	static struct prescription rx;
	static char big[70000];
	char err[PRESCRIPTION_ERR_MAX], want[PRESCRIPTION_ERR_MAX + 64];
	char path[PRESCRIPTION_PATH_MAX + 16];
	char *line;

	(void)state;
	assert_int_equal(load_bytes(BASE "x\0y\n", sizeof(BASE "x\0y\n") - 1, &rx, err,
				    sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:18: NUL byte in the line (allowed: text only)",
		 tmp_path);
	assert_string_equal(err, want);

	line = malloc(sizeof(BASE) + 5002);
	assert_non_null(line);
	snprintf(line, sizeof(BASE) + 5002, "%s; %04998d\n", BASE, 0);
	assert_int_equal(load_text(line, &rx, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:18: line too long (allowed: at most 4094 characters)",
		 tmp_path);
	assert_string_equal(err, want);
	free(line);

	/* comment lines: only the size is wrong */
	memset(big, '\n', sizeof(big));
	memcpy(big, BASE, strlen(BASE));
	assert_int_equal(load_bytes(big, sizeof(big), &rx, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "%s: 70000 bytes, too large for a prescription (allowed: "
		 "at most 65536 bytes)", tmp_path);
	assert_string_equal(err, want);

	/* short components, so that one path length below the limit opens as any other */
	for (size_t i = 0; i < sizeof(path) - 1; i++) {
		path[i] = i % 4 ? 'p' : '/';
	}
	path[PRESCRIPTION_PATH_MAX] = '\0';
	/* the message starts with the path and is cut at the err buffer's end */
	assert_int_equal(prescription_load(&rx, path, err, sizeof(err)), -ENAMETOOLONG);
	assert_int_equal(strncmp(err, path, sizeof(err) - 1), 0);
	path[PRESCRIPTION_PATH_MAX - 1] = '\0';
	assert_int_equal(prescription_load(&rx, path, err, sizeof(err)), -ENOENT);
}

/* Required keys: FILE: section.key: missing (...). */
static void test_missing(void **state)
{
	(void)state;
	expect_error("[course]\nid = C-1\nsessions = 10\n[target]\nkind = nerve_trunk\nsite = radial\n"
		     "side = right\n[intensity]\nmotor_threshold_pct = 110\n" ONOFF,
		     ": patient.id: missing (the patient's pseudonymous code)");
	expect_error("[patient]\nid = P-0042\n[course]\nsessions = 10\n", ": course.id: missing (the course's code)");
	expect_error("[patient]\nid = P-0042\n[course]\nid = C-1\n",
		     ": course.sessions: missing (allowed: 1 to 1000)");
	expect_error("[patient]\nid = P-0042\n[course]\nid = C-1\nsessions = 10\n",
		     ": target.kind: missing (allowed: nerve_trunk, motor_point)");
	expect_error("[patient]\nid = P-0042\n[course]\nid = C-1\nsessions = 10\n[target]\nkind = nerve_trunk\n",
		     ": target.site: missing (the nerve or muscle)");
	expect_error("[patient]\nid = P-0042\n[course]\nid = C-1\nsessions = 10\n[target]\nkind = nerve_trunk\n"
		     "site = radial\n", ": target.side: missing (allowed: left, right)");
	expect_error(HEAD, ": protocol.pattern: missing (allowed: continuous, on_off, theta_burst, emg_triggered; or a preset)");
	expect_error(HEAD "[protocol]\npattern = continuous\nrate_hz = 1\n",
		     ": protocol.pulses: missing (allowed: 1 to 100000 a session)");
	expect_error("[patient]\nid = P-0042\n[course]\nid = C-1\nsessions = 10\n[target]\nkind = nerve_trunk\n"
		     "site = radial\nside = right\n" ONOFF,
		     ": intensity.motor_threshold_pct: missing (allowed: exactly one of motor_threshold_pct, max_output_pct)");
}

/* The rules between keys, each naming the key, its line and the other one's. */
static void test_rules(void **state)
{
	(void)state;
	/* the site belongs to the kind */
	expect_error("[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n[target]\nkind = nerve_trunk\n"
		     "site = triceps\nside = left\n[intensity]\nmax_output_pct = 5\n[protocol]\npreset = itbs\n",
		     ":8: target.site: 'triceps' is not a nerve for kind = nerve_trunk (line 7) (allowed: radial, median, ulnar, tibial, peroneal)");
	expect_error("[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n[target]\nkind = motor_point\n"
		     "site = radial\nextra_muscles = soleus\nside = left\n[intensity]\nmax_output_pct = 5\n"
		     "[protocol]\npreset = itbs\n",
		     ":8: target.site: 'radial' is not a muscle for kind = motor_point (line 7) (allowed: wrist_extensors, finger_extensors, triceps, biceps, tibialis_anterior, gastrocnemius, soleus)");
	/* an extra muscle is not an extra nerve, nor a prefix of a name a match */
	expect_error("[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n[target]\nkind = nerve_trunk\n"
		     "site = sol\nextra_muscles = sol\nextra_nerves = soleus\nside = left\n[intensity]\n"
		     "max_output_pct = 5\n[protocol]\npreset = itbs\n",
		     ":8: target.site: 'sol' is not a nerve for kind = nerve_trunk (line 7) (allowed: radial, median, ulnar, tibial, peroneal, soleus)");
	/* course */
	expect_error(BASE "[course]\nsessions_per_day = 11\n",
		     ":19: course.sessions_per_day: 11 is more than course.sessions = 10 (allowed: at most the course's sessions)");
	expect_error(BASE "[course]\nsessions_per_day = 2\nmin_hours_between = 24\n",
		     ":20: course.min_hours_between: 24 h leaves no room for course.sessions_per_day = 2 in a day (allowed: below 24 h)");
	expect_error(BASE "[course]\nmin_hours_between = 9\nsessions_per_day = 4\n",
		     ":19: course.min_hours_between: 9 h leaves no room for course.sessions_per_day = 4 in a day (allowed: below 8 h)");
	/* intensity: exactly one */
	expect_error(BASE "[intensity]\nmax_output_pct = 40\n",
		     ":19: intensity.max_output_pct: set with intensity.motor_threshold_pct (line 11) (allowed: exactly one of motor_threshold_pct, max_output_pct)");
	/* keys of another pattern */
	expect_error(BASE "theta_bursts = 5\n",
		     ":18: protocol.theta_bursts: not used by pattern = on_off (line 13) (allowed: only with theta_burst)");
	expect_error(BASE "train_pulses = 5\n",
		     ":18: protocol.train_pulses: not used by pattern = on_off (line 13) (allowed: only with emg_triggered)");
	expect_error(HEAD "[protocol]\npattern = continuous\nrate_hz = 1\npulses = 10\non_ms = 100\n",
		     ":16: protocol.on_ms: not used by pattern = continuous (line 13) (allowed: only with on_off)");
	expect_error(HEAD "[protocol]\npattern = continuous\nrate_hz = 1\npulses = 10\noff_ms = 100\n",
		     ":16: protocol.off_ms: not used by pattern = continuous (line 13) (allowed: only with on_off, theta_burst)");
	expect_error(HEAD "[protocol]\npattern = theta_burst\noff_ms = 8000\npulses = 600\nrate_hz = 5\n",
		     ":16: protocol.rate_hz: not used by pattern = theta_burst (line 13) (allowed: only with continuous, on_off, emg_triggered)");
	/* keys a pattern needs */
	expect_error(HEAD "[protocol]\npattern = on_off\nrate_hz = 25\noff_ms = 2000\npulses = 1200\n",
		     ":13: protocol.on_ms: missing, pattern = on_off needs it");
	expect_error(HEAD "[protocol]\npattern = theta_burst\npulses = 600\n",
		     ":13: protocol.off_ms: missing, pattern = theta_burst needs it");
	expect_error(HEAD "[protocol]\npattern = emg_triggered\nrate_hz = 20\npulses = 600\n",
		     ":13: protocol.train_pulses: missing, pattern = emg_triggered needs it");
	expect_error(HEAD "[protocol]\npattern = continuous\npulses = 600\n",
		     ":13: protocol.rate_hz: missing, pattern = continuous needs it");
	/* a preset or explicit parameters */
	expect_error(HEAD "[protocol]\npreset = itbs\npulses = 1200\n",
		     ":14: protocol.pulses: set with protocol.preset = itbs (line 13) (allowed: a preset or explicit parameters, not both)");
	expect_error(HEAD "[protocol]\npattern = on_off\npreset = onoff_25hz\n",
		     ":13: protocol.pattern: set with protocol.preset = onoff_25hz (line 14) (allowed: a preset or explicit parameters, not both)");
	/* a burst fits in its period */
	expect_error(HEAD "[protocol]\npattern = theta_burst\noff_ms = 8000\npulses = 600\ntheta_period_ms = 50\n",
		     ":16: protocol.theta_period_ms: 50 ms is shorter than one burst (3 pulses at 50 Hz = 60 ms) (allowed: at least the burst)");
	expect_error(HEAD "[protocol]\npattern = theta_burst\noff_ms = 8000\npulses = 30\ntheta_frequency_hz = 10\n",
		     ":13: protocol.theta_period_ms: 200 ms is shorter than one burst (3 pulses at 10 Hz = 300 ms) (allowed: at least the burst)");
	/* whole trains */
	expect_error(HEAD "[protocol]\npattern = on_off\nrate_hz = 25\non_ms = 1000\noff_ms = 2000\npulses = 1210\n",
		     ":17: protocol.pulses: 1210 is not a whole number of trains of 25 pulses (allowed: a multiple of 25, e.g. 1225)");
	expect_error(HEAD "[protocol]\npattern = theta_burst\noff_ms = 8000\npulses = 610\n",
		     ":15: protocol.pulses: 610 is not a whole number of trains of 30 pulses (allowed: a multiple of 30, e.g. 630)");
	expect_error(HEAD "[protocol]\npattern = emg_triggered\nrate_hz = 20\ntrain_pulses = 7\npulses = 100\n",
		     ":16: protocol.pulses: 100 is not a whole number of trains of 7 pulses (allowed: a multiple of 7, e.g. 105)");
}

/* Each preset loads with its protocol, and is a protocol like any other. */
static void test_presets(void **state)
{
	static struct prescription rx;
	char err[PRESCRIPTION_ERR_MAX];

	(void)state;
	assert_string_equal(prescription_preset_nth(0), "itbs");
	assert_string_equal(prescription_preset_nth(1), "onoff_25hz");
	assert_string_equal(prescription_preset_nth(2), "continuous_1hz");
	assert_null(prescription_preset_nth(3));

	assert_int_equal(prescription_load(&rx, ITBS_PATH, err, sizeof(err)), 0);
	assert_string_equal(rx.protocol.preset, "itbs");
	assert_int_equal(rx.protocol.pattern, PRESCRIPTION_THETA_BURST);
	assert_int_equal(rx.protocol.theta_burst_pulses, 3);
	assert_true(rx.protocol.theta_frequency_hz == 50);
	assert_true(rx.protocol.theta_period_ms == 200);
	assert_int_equal(rx.protocol.theta_bursts, 10);
	assert_true(rx.protocol.off_ms == 8000);
	assert_int_equal(rx.protocol.pulses, 600);
	/* from a preset, no key has a line */
	assert_int_equal(prescription_key_line(&rx, "protocol", "pulses"), 0);

	load_ok(HEAD "[protocol]\npreset = onoff_25hz\n", &rx);
	assert_int_equal(rx.protocol.pattern, PRESCRIPTION_ON_OFF);
	assert_true(rx.protocol.rate_hz == 25);
	assert_true(rx.protocol.on_ms == 1000);
	assert_true(rx.protocol.off_ms == 2000);
	assert_int_equal(rx.protocol.pulses, 1200);

	load_ok(HEAD "[protocol]\npreset = continuous_1hz\n", &rx);
	assert_int_equal(rx.protocol.pattern, PRESCRIPTION_CONTINUOUS);
	assert_true(rx.protocol.rate_hz == 1);
	assert_int_equal(rx.protocol.pulses, 1200);
}

static void test_class_boundaries(void **state)
{
	static struct prescription rx;

	(void)state;
	assert_int_equal(prescription_class_of(0.1), PRESCRIPTION_CLASS_LOW);
	assert_int_equal(prescription_class_of(5.0), PRESCRIPTION_CLASS_LOW);
	assert_int_equal(prescription_class_of(nextafter(5.0, 6.0)), PRESCRIPTION_CLASS_INTERMEDIATE);
	assert_int_equal(prescription_class_of(nextafter(10.0, 9.0)), PRESCRIPTION_CLASS_INTERMEDIATE);
	assert_int_equal(prescription_class_of(10.0), PRESCRIPTION_CLASS_HIGH);
	assert_int_equal(prescription_class_of(100.0), PRESCRIPTION_CLASS_HIGH);
	assert_string_equal(prescription_class_name(PRESCRIPTION_CLASS_LOW), "low");
	assert_string_equal(prescription_class_name(PRESCRIPTION_CLASS_INTERMEDIATE), "intermediate");
	assert_string_equal(prescription_class_name(PRESCRIPTION_CLASS_HIGH), "high");
	/* theta burst's class is its rate within a burst, not the 5 Hz of its bursts */
	load_ok(HEAD "[protocol]\npreset = itbs\n", &rx);
	assert_true(prescription_rate_hz(&rx) == 50);
	load_ok(HEAD "[protocol]\npattern = continuous\nrate_hz = 7\npulses = 70\n", &rx);
	assert_int_equal(prescription_class_of(prescription_rate_hz(&rx)),
			 PRESCRIPTION_CLASS_INTERMEDIATE);
}

static void expect_timing(const char *protocol, const char *json)
{
	static struct prescription rx;
	struct prescription_timing t;
	char text[2048], buf[512];

	snprintf(text, sizeof(text), "%s%s", HEAD, protocol);
	load_ok(text, &rx);
	prescription_timing(&rx, &t);
	prescription_timing_json(&t, buf, sizeof(buf));
	assert_string_equal(buf, json);
}

/* The six NIBS-BIDS parameters, from each pattern. */
static void test_timing(void **state)
{
	(void)state;
	expect_timing("[protocol]\npreset = continuous_1hz\n",
		      "{\"inter_pulse_interval_s\": 1, \"pulses_per_burst\": 1200, \"inter_burst_interval_s\": null, \"bursts_per_train\": 1, \"inter_train_interval_s\": null, \"trains\": 1}");
	expect_timing("[protocol]\npattern = continuous\nrate_hz = 20\npulses = 600\n",
		      "{\"inter_pulse_interval_s\": 0.05, \"pulses_per_burst\": 600, \"inter_burst_interval_s\": null, \"bursts_per_train\": 1, \"inter_train_interval_s\": null, \"trains\": 1}");
	expect_timing(ONOFF,
		      "{\"inter_pulse_interval_s\": 0.04, \"pulses_per_burst\": 25, \"inter_burst_interval_s\": null, \"bursts_per_train\": 1, \"inter_train_interval_s\": 2, \"trains\": 48}");
	expect_timing("[protocol]\npattern = on_off\nrate_hz = 20\non_ms = 500\noff_ms = 1500\npulses = 100\n",
		      "{\"inter_pulse_interval_s\": 0.05, \"pulses_per_burst\": 10, \"inter_burst_interval_s\": null, \"bursts_per_train\": 1, \"inter_train_interval_s\": 1.5, \"trains\": 10}");
	expect_timing("[protocol]\npreset = itbs\n",
		      "{\"inter_pulse_interval_s\": 0.02, \"pulses_per_burst\": 3, \"inter_burst_interval_s\": 0.2, \"bursts_per_train\": 10, \"inter_train_interval_s\": 8, \"trains\": 20}");
	/* continuous theta burst: one long train */
	expect_timing("[protocol]\npattern = theta_burst\ntheta_bursts = 200\noff_ms = 0\npulses = 600\n",
		      "{\"inter_pulse_interval_s\": 0.02, \"pulses_per_burst\": 3, \"inter_burst_interval_s\": 0.2, \"bursts_per_train\": 200, \"inter_train_interval_s\": null, \"trains\": 1}");
	expect_timing("[protocol]\npattern = emg_triggered\nrate_hz = 20\ntrain_pulses = 10\npulses = 500\n",
		      "{\"inter_pulse_interval_s\": 0.05, \"pulses_per_burst\": 10, \"inter_burst_interval_s\": null, \"bursts_per_train\": 1, \"inter_train_interval_s\": null, \"trains\": 50}");
}

static void test_summary(void **state)
{
	static struct prescription rx;
	char buf[4096];
	size_t n;
	FILE *f;

	(void)state;
	load_ok(HEAD "[protocol]\npattern = emg_triggered\nrate_hz = 20\ntrain_pulses = 10\npulses = 500\n", &rx);
	f = fmemopen(buf, sizeof(buf), "w");
	assert_non_null(f);
	prescription_write_summary(&rx, f);
	n = (size_t)ftell(f);
	fclose(f);
	buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
	assert_non_null(strstr(buf, "patient: P-0042\n"));
	assert_non_null(strstr(buf, "target: nerve_trunk radial, right; coil: -; position: -\n"));
	assert_non_null(strstr(buf, "intensity: 110 % of the session's measured motor threshold\n"));
	assert_non_null(strstr(buf, "frequency class: high (20 Hz)\n"));
	assert_non_null(strstr(buf, "inter-train interval: variable (each train starts at an EMG burst onset)\n"));
	assert_non_null(strstr(buf, "trains per protocol: 50 (at most: one per EMG onset)\n"));
}

/* The defaults, with the replay file the defaults' source needs. */
static void defaults(struct rpmsd_config *cfg)
{
	char err[CONFIG_ERR_MAX];

	config_defaults(cfg);
	assert_int_equal(config_override(cfg, "test", "source", "file", "emg.txt", err,
					 sizeof(err)), 0);
	assert_int_equal(config_recheck(cfg, "test", err, sizeof(err)), 0);
}

/* The defaults with trains of at most 10 pulses (as config/demo.conf). */
static void short_trains(struct rpmsd_config *cfg)
{
	char err[CONFIG_ERR_MAX];

	defaults(cfg);
	assert_int_equal(config_override(cfg, "test", "safety", "max_train_pulses", "10", err,
					 sizeof(err)), 0);
	assert_int_equal(config_recheck(cfg, "test", err, sizeof(err)), 0);
}

/* The [stim] keys of each pattern, as the coordinator will set them. */
static void test_stim_keys(void **state)
{
	static struct prescription rx;
	struct prescription_stim_key keys[PRESCRIPTION_STIM_KEYS_MAX];
	char err[PRESCRIPTION_ERR_MAX], all[1024];
	size_t n, i;

	(void)state;
	load_ok(BASE, &rx);
	assert_int_equal(prescription_stim_keys(&rx, 0, keys, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, ":11: intensity.motor_threshold_pct: 110 % of the motor threshold, which is not measured yet"));
	assert_int_equal(prescription_stim_keys(&rx, 40, keys, &n, err, sizeof(err)), 0);
	all[0] = '\0';
	for (i = 0; i < n; i++) {
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s.%s=%s ", keys[i].section,
			 keys[i].key, keys[i].value);
	}
	assert_string_equal(all, "safety.motor_threshold_pct=40 stim.mode=open_loop stim.protocol=onoff "
			    "stim.train_frequency_hz=25 stim.on_ms=1000 stim.off_ms=2000 stim.cycles=48 "
			    "stim.open_loop_pulses=1200 stim.intensity_pct=44 ");
	load_ok(HEAD "[protocol]\npreset = continuous_1hz\n", &rx);
	assert_int_equal(prescription_stim_keys(&rx, 50, keys, &n, err, sizeof(err)), 0);
	all[0] = '\0';
	for (i = 0; i < n; i++) {
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s=%s ", keys[i].key,
			 keys[i].value);
	}
	assert_string_equal(all, "motor_threshold_pct=50 mode=open_loop protocol=single off_ms=1000 "
			    "open_loop_pulses=1200 intensity_pct=55 ");
	load_ok(HEAD "[protocol]\npattern = emg_triggered\nrate_hz = 20\ntrain_pulses = 10\npulses = 500\n", &rx);
	assert_int_equal(prescription_stim_keys(&rx, 50, keys, &n, err, sizeof(err)), 0);
	all[0] = '\0';
	for (i = 0; i < n; i++) {
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s=%s ", keys[i].key,
			 keys[i].value);
	}
	assert_string_equal(all, "motor_threshold_pct=50 mode=closed_loop protocol=train "
			    "train_pulses=10 train_frequency_hz=20 intensity_pct=55 ");
}

/*
 * A preset is never trusted: put into a configuration it goes through
 * config_override and config_recheck, and the default limits refuse it
 * with the rule named; the configuration is left as it was.
 */
static void test_preset_checked(void **state)
{
	static struct rpmsd_config cfg, before;
	static struct prescription rx;
	char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX + PRESCRIPTION_PATH_MAX];

	(void)state;
	defaults(&cfg);
	before = cfg;
	assert_int_equal(prescription_load(&rx, ITBS_PATH, err, sizeof(err)), 0);
	/* iTBS's 50 Hz within a burst, above the default safety.max_frequency_hz = 25 */
	assert_int_equal(prescription_to_config(&rx, 0, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: stim.theta_frequency_hz: 50 exceeds safety.max_frequency_hz = 25 (allowed: 1 to 25 Hz)", ITBS_PATH);
	assert_string_equal(err, want);
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	/* onoff_25hz at 110 % of threshold: a 1 s train, longer than safety.train_table allows */
	load_ok(HEAD "[protocol]\npreset = onoff_25hz\n", &rx);
	assert_int_equal(prescription_to_config(&rx, 40, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: stim.protocol = onoff: a train of 25 pulses at 25 Hz lasts 1 s, longer than the 0.84 s that safety.train_table allows at 25 Hz and 110 %% of motor threshold (stim.intensity_pct 44 %% / safety.motor_threshold_pct 40 %%)", rx.path);
	assert_string_equal(err, want);
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	/* at the threshold: 25 pulses a train, above a safety.max_train_pulses of 10 */
	load_ok("[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n[target]\nkind = nerve_trunk\n"
		"site = radial\nside = left\n[intensity]\nmotor_threshold_pct = 100\n[protocol]\n"
		"preset = onoff_25hz\n", &rx);
	short_trains(&cfg);
	before = cfg;
	assert_int_equal(prescription_to_config(&rx, 40, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: stim.protocol = onoff: 25 pulses per train exceed safety.max_train_pulses = 10", rx.path);
	assert_string_equal(err, want);
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	/* within the default limits it passes, and the config then runs it */
	defaults(&cfg);
	if (prescription_to_config(&rx, 40, &cfg, err, sizeof(err))) {
		fail_msg("%s", err);
	}
	assert_int_equal(cfg.stim.mode, CONFIG_MODE_OPEN_LOOP);
	assert_int_equal(cfg.stim.protocol, CONFIG_PROTOCOL_ONOFF);
	assert_int_equal(cfg.stim.cycles, 48);
	assert_int_equal(cfg.stim.open_loop_pulses, 1200);
	assert_true(fabs(cfg.stim.intensity_pct - 40) < 1e-9);
	assert_true(cfg.safety.motor_threshold_pct == 40);

	/* an intensity above safety.max_intensity_pct (default 60): the intensity rule */
	defaults(&cfg);
	before = cfg;
	load_ok("[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n[target]\nkind = nerve_trunk\n"
		"site = radial\nside = left\n[intensity]\nmax_output_pct = 90\n[protocol]\n"
		"preset = continuous_1hz\n", &rx);
	assert_int_equal(prescription_to_config(&rx, 0, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "stim.intensity_pct: 90 exceeds safety.max_intensity_pct"));
	assert_memory_equal(&cfg, &before, sizeof(cfg));
	/* 150 % of a threshold of 60 % output is 90 % output: the same refusal */
	load_ok("[patient]\nid = P1\n[course]\nid = C1\nsessions = 1\n[target]\nkind = nerve_trunk\n"
		"site = radial\nside = left\n[intensity]\nmotor_threshold_pct = 150\n[protocol]\n"
		"preset = continuous_1hz\n", &rx);
	assert_int_equal(prescription_to_config(&rx, 60, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "stim.intensity_pct: 90 exceeds safety.max_intensity_pct"));
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_builtin_sites),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_file_limits),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_class_boundaries),
		cmocka_unit_test(test_timing),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_stim_keys),
		cmocka_unit_test(test_preset_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
