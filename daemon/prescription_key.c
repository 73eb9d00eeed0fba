/* SPDX-License-Identifier: MIT */
/*
 * The prescription's key table, in the configuration's form (struct
 * config_key), so that one parser checks both files: every key, its type,
 * range, default and doc. docs/prescriptions.md lists the same keys.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "config_private.h"
#include "prescription.h"
#include "prescription_private.h"

_Static_assert(sizeof(enum prescription_target_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum prescription_side) == sizeof(int), "enum size");
_Static_assert(sizeof(enum prescription_pattern) == sizeof(int), "enum size");

#define PRESCRIPTION_KEY_FIELD(m)					\
	.offset = offsetof(struct prescription, m),			\
	.size = sizeof(((struct prescription *)NULL)->m)

const char *const prescription_key_sections[] = {
	"patient", "course", "target", "protocol", "intensity",
};

const size_t prescription_key_n_sections =
	sizeof(prescription_key_sections) / sizeof(prescription_key_sections[0]);

const struct config_enum prescription_key_kinds[] = {
	{ "nerve_trunk", PRESCRIPTION_NERVE_TRUNK },
	{ "motor_point", PRESCRIPTION_MOTOR_POINT },
	{ NULL, 0 },
};

const struct config_enum prescription_key_sides[] = {
	{ "left", PRESCRIPTION_LEFT },
	{ "right", PRESCRIPTION_RIGHT },
	{ NULL, 0 },
};

const struct config_enum prescription_key_patterns[] = {
	{ "continuous", PRESCRIPTION_CONTINUOUS },
	{ "on_off", PRESCRIPTION_ON_OFF },
	{ "theta_burst", PRESCRIPTION_THETA_BURST },
	{ "emg_triggered", PRESCRIPTION_EMG_TRIGGERED },
	{ NULL, 0 },
};

const char *const prescription_key_nerves[] = {
	"radial", "median", "ulnar", "tibial", "peroneal", NULL,
};

const char *const prescription_key_muscles[] = {
	"wrist_extensors", "finger_extensors", "triceps", "biceps", "tibialis_anterior",
	"gastrocnemius", NULL,
};

/* A code, never a name: letters, digits, - and _, with at least one digit. */
static int prescription_key_check_id(const char *text, const union config_value *v,
				     char *why, size_t len)
{
	bool digit = false;
	const char *p;

	(void)v;
	if (!text[0]) {
		config_print(why, len, "empty");
		return -1;
	}
	for (p = text; *p; p++) {
		if (!isascii((unsigned char)*p) ||
		    !(isalnum((unsigned char)*p) || *p == '-' || *p == '_')) {
			config_print(why, len, "'%s' has '%c', not a code", text, *p);
			return -1;
		}
		digit = digit || isdigit((unsigned char)*p);
	}
	if (!digit) {
		config_print(why, len, "'%s' has no digit: a pseudonymous code, never a name", text);
		return -1;
	}
	return 0;
}

static bool prescription_key_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int prescription_key_check_name(const char *text, const union config_value *v,
				       char *why, size_t len)
{
	const char *p;

	(void)v;
	if (!text[0]) {
		config_print(why, len, "empty");
		return -1;
	}
	for (p = text; *p; p++) {
		if (!prescription_key_name_char(*p)) {
			config_print(why, len, "'%s' is not a name", text);
			return -1;
		}
	}
	return 0;
}

/* "a, b_c": names of at most PRESCRIPTION_NAME_MAX - 1 characters. */
static int prescription_key_check_list(const char *text, const union config_value *v,
				       char *why, size_t len)
{
	const char *p = text, *start;
	size_t n;

	(void)v;
	while (*p) {
		while (*p == ' ') {
			p++;
		}
		start = p;
		while (prescription_key_name_char(*p)) {
			p++;
		}
		n = (size_t)(p - start);
		while (*p == ' ') {
			p++;
		}
		if (!n || n >= PRESCRIPTION_NAME_MAX || (*p && *p != ',') ||
		    (*p == ',' && !p[1])) {
			config_print(why, len, "'%s' is not a list of names", text);
			return -1;
		}
		if (*p == ',') {
			p++;
		}
	}
	return 0;
}

static int prescription_key_check_preset(const char *text, const union config_value *v,
					 char *why, size_t len)
{
	(void)v;
	if (!prescription_preset_find(text)) {
		config_print(why, len, "'%s' is not a preset", text);
		return -1;
	}
	return 0;
}

/* Free text, one line: no control characters. */
static int prescription_key_check_text(const char *text, const union config_value *v,
				       char *why, size_t len)
{
	const char *p;

	(void)v;
	for (p = text; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			config_print(why, len, "control character in the text");
			return -1;
		}
	}
	return 0;
}

const struct config_key prescription_key_table[] = {
	/* [patient] */
	{
		.section = "patient", .key = "id",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "a pseudonymous code: 1 to 36 of A-Z, a-z, 0-9, - and _, with a digit; never a name",
		.check = prescription_key_check_id,
		.doc = "The patient's pseudonymous code (required).",
		PRESCRIPTION_KEY_FIELD(patient.id),
	},
	/* [course] */
	{
		.section = "course", .key = "id",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "1 to 36 of A-Z, a-z, 0-9, - and _, with a digit",
		.check = prescription_key_check_id,
		.doc = "The course's code (required); rpmsctl session start names it.",
		PRESCRIPTION_KEY_FIELD(course.id),
	}, {
		.section = "course", .key = "sessions",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 1, .max = 1000, .unit = "",
		.doc = "Sessions in the course (required).",
		PRESCRIPTION_KEY_FIELD(course.sessions),
	}, {
		.section = "course", .key = "sessions_per_day",
		.type = CONFIG_TYPE_INT, .def = "1", .min = 1, .max = 24, .unit = "",
		.doc = "At most this many sessions a day (1 unless stated, e.g. 2 for twice a day).",
		PRESCRIPTION_KEY_FIELD(course.sessions_per_day),
	}, {
		.section = "course", .key = "min_hours_between",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 720, .unit = "h",
		.doc = "Least time from one session's start to the next one's; 0 = no minimum.",
		PRESCRIPTION_KEY_FIELD(course.min_hours_between),
	},
	/* [target] */
	{
		.section = "target", .key = "kind",
		.type = CONFIG_TYPE_ENUM, .def = "nerve_trunk",
		.values = prescription_key_kinds, .unit = "",
		.doc = "nerve_trunk (the coil over a nerve) or motor_point (over a muscle's motor point) (required).",
		PRESCRIPTION_KEY_FIELD(target.kind),
	}, {
		.section = "target", .key = "site",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "nerve_trunk: radial, median, ulnar, tibial, peroneal or a name in extra_nerves; motor_point: wrist_extensors, finger_extensors, triceps, biceps, tibialis_anterior, gastrocnemius or a name in extra_muscles",
		.check = prescription_key_check_name,
		.doc = "The nerve or muscle stimulated (required).",
		PRESCRIPTION_KEY_FIELD(target.site),
	}, {
		.section = "target", .key = "extra_nerves",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "names of a-z, 0-9 and _, separated by commas",
		.check = prescription_key_check_list,
		.doc = "Nerves beyond the built-in list that target.site may name.",
		PRESCRIPTION_KEY_FIELD(target.extra_nerves),
	}, {
		.section = "target", .key = "extra_muscles",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "names of a-z, 0-9 and _, separated by commas",
		.check = prescription_key_check_list,
		.doc = "Muscles beyond the built-in list that target.site may name.",
		PRESCRIPTION_KEY_FIELD(target.extra_muscles),
	}, {
		.section = "target", .key = "side",
		.type = CONFIG_TYPE_ENUM, .def = "left",
		.values = prescription_key_sides, .unit = "",
		.doc = "left or right (required).",
		PRESCRIPTION_KEY_FIELD(target.side),
	}, {
		.section = "target", .key = "coil",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.check = prescription_key_check_text,
		.doc = "The coil (e.g. its model and shape): free text on one line.",
		PRESCRIPTION_KEY_FIELD(target.coil),
	}, {
		.section = "target", .key = "position",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.check = prescription_key_check_text,
		.doc = "Where and how the coil sits: free text on one line.",
		PRESCRIPTION_KEY_FIELD(target.position),
	},
	/* [protocol] */
	{
		.section = "protocol", .key = "preset",
		.type = CONFIG_TYPE_STRING, .def = "", .unit = "",
		.allowed = "itbs, onoff_25hz, continuous_1hz (docs/prescriptions.md)",
		.check = prescription_key_check_preset,
		.doc = "A named protocol; then no other [protocol] key.",
		PRESCRIPTION_KEY_FIELD(protocol.preset),
	}, {
		.section = "protocol", .key = "pattern",
		.type = CONFIG_TYPE_ENUM, .def = "continuous",
		.values = prescription_key_patterns, .unit = "",
		.doc = "continuous, on_off, theta_burst or emg_triggered (required without a preset).",
		PRESCRIPTION_KEY_FIELD(protocol.pattern),
	}, {
		.section = "protocol", .key = "rate_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0.1, .max = 100, .unit = "Hz",
		.doc = "continuous, on_off, emg_triggered: the pulse rate (required for them).",
		PRESCRIPTION_KEY_FIELD(protocol.rate_hz),
	}, {
		.section = "protocol", .key = "on_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 1, .max = 60000, .unit = "ms",
		.doc = "on_off: length of each train (required for it).",
		PRESCRIPTION_KEY_FIELD(protocol.on_ms),
	}, {
		.section = "protocol", .key = "off_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 0, .max = 600000, .unit = "ms",
		.doc = "on_off, theta_burst: the pause after each train (required for them).",
		PRESCRIPTION_KEY_FIELD(protocol.off_ms),
	}, {
		.section = "protocol", .key = "pulses",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 1, .max = 100000, .unit = "",
		.doc = "Pulses per session (required); a whole number of trains.",
		PRESCRIPTION_KEY_FIELD(protocol.pulses),
	}, {
		.section = "protocol", .key = "train_pulses",
		.type = CONFIG_TYPE_INT, .def = "0", .min = 1, .max = 1000, .unit = "",
		.doc = "emg_triggered: pulses of the train each EMG burst onset starts (required for it).",
		PRESCRIPTION_KEY_FIELD(protocol.train_pulses),
	}, {
		.section = "protocol", .key = "theta_burst_pulses",
		.type = CONFIG_TYPE_INT, .def = "3", .min = 1, .max = 20, .unit = "",
		.doc = "theta_burst: pulses in one burst.",
		PRESCRIPTION_KEY_FIELD(protocol.theta_burst_pulses),
	}, {
		.section = "protocol", .key = "theta_frequency_hz",
		.type = CONFIG_TYPE_DOUBLE, .def = "50", .min = 1, .max = 100, .unit = "Hz",
		.doc = "theta_burst: pulse rate within a burst.",
		PRESCRIPTION_KEY_FIELD(protocol.theta_frequency_hz),
	}, {
		.section = "protocol", .key = "theta_period_ms",
		.type = CONFIG_TYPE_DOUBLE, .def = "200", .min = 10, .max = 10000, .unit = "ms",
		.doc = "theta_burst: from one burst's first pulse to the next's (200 ms = 5 Hz).",
		PRESCRIPTION_KEY_FIELD(protocol.theta_period_ms),
	}, {
		.section = "protocol", .key = "theta_bursts",
		.type = CONFIG_TYPE_INT, .def = "10", .min = 1, .max = 1000, .unit = "",
		.doc = "theta_burst: bursts in one train.",
		PRESCRIPTION_KEY_FIELD(protocol.theta_bursts),
	},
	/* [intensity] */
	{
		.section = "intensity", .key = "motor_threshold_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 1, .max = 300, .unit = "%",
		.doc = "Intensity in % of the motor threshold measured in each session (110 = 10 % above it); or max_output_pct, exactly one.",
		PRESCRIPTION_KEY_FIELD(intensity.motor_threshold_pct),
	}, {
		.section = "intensity", .key = "max_output_pct",
		.type = CONFIG_TYPE_DOUBLE, .def = "0", .min = 1, .max = 100, .unit = "%",
		.doc = "Intensity in % of the stimulator's maximum output; or motor_threshold_pct, exactly one.",
		PRESCRIPTION_KEY_FIELD(intensity.max_output_pct),
	},
};

#define PRESCRIPTION_KEY_COUNT (sizeof(prescription_key_table) / sizeof(prescription_key_table[0]))
const size_t prescription_key_count = PRESCRIPTION_KEY_COUNT;
_Static_assert(PRESCRIPTION_KEY_COUNT <= PRESCRIPTION_KEYS_MAX,
	       "struct prescription's key_line holds every key");

const struct config_key *prescription_key_find(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < PRESCRIPTION_KEY_COUNT; i++) {
		if (!strcmp(prescription_key_table[i].section, section) &&
		    !strcmp(prescription_key_table[i].key, key)) {
			return &prescription_key_table[i];
		}
	}
	return NULL;
}

void prescription_key_section_keys(const char *section, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < PRESCRIPTION_KEY_COUNT; i++) {
		if (!strcmp(prescription_key_table[i].section, section)) {
			config_append(buf, len, "%s%s", buf[0] ? ", " : "",
				      prescription_key_table[i].key);
		}
	}
}

bool prescription_key_in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		while (*p == ' ' || *p == ',') {
			p++;
		}
		if (!strncmp(p, name, n) && !prescription_key_name_char(p[n])) {
			return true;
		}
		if (!*p) {
			break;
		}
		/* a checked list has names, commas and blanks only; anything else is skipped */
		do {
			p++;
		} while (prescription_key_name_char(*p));
	}
	return false;
}

bool prescription_key_in_names(const char *const *names, const char *name)
{
	for (; *names; names++) {
		if (!strcmp(*names, name)) {
			return true;
		}
	}
	return false;
}

int prescription_key_line(const struct prescription *rx, const char *section, const char *key)
{
	const struct config_key *k = prescription_key_find(section, key);

	return k ? rx->key_line[k - prescription_key_table] : 0;
}
