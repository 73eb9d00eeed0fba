/* SPDX-License-Identifier: MIT */
/*
 * The prescription file: read like the configuration (libinih behind our
 * own line reader, so every key has its line), each value checked by the
 * configuration's parser against prescription_key.c's table, then the
 * rules between keys. What is derived (frequency class, NIBS-BIDS timing)
 * and the [stim] keys of the protocol are computed here too.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_private.h"
#include "prescription.h"
#include "prescription_private.h"

#define PRESCRIPTION_LINE_MAX 4096
/* A prescription is a page of keys; a megabyte is not one. */
#define PRESCRIPTION_FILE_MAX (64 * 1024)

struct prescription_ctx {
	struct prescription rx;		/* copied out only on success */
	struct config_ini ini;		/* the file */
	const char *section;		/* current section, NULL before the first */
};

static void prescription_fail(struct prescription_ctx *ctx, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The first error is the one reported. */
static void prescription_fail(struct prescription_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_ini_vfail(&ctx->ini, line, fmt, ap);
	va_end(ap);
}

static int prescription_section(struct prescription_ctx *ctx, const char *name, size_t n)
{
	char allowed[CONFIG_ALLOWED_MAX];
	size_t i;

	for (i = 0; i < prescription_key_n_sections; i++) {
		if (strlen(prescription_key_sections[i]) == n &&
		    !strncmp(prescription_key_sections[i], name, n)) {
			ctx->section = prescription_key_sections[i];
			return 0;
		}
	}
	allowed[0] = '\0';
	for (i = 0; i < prescription_key_n_sections; i++) {
		config_append(allowed, sizeof(allowed), "%s%s", i ? ", " : "",
			      prescription_key_sections[i]);
	}
	prescription_fail(ctx, ctx->ini.lineno, "[%.*s]: unknown section (allowed: %s)", (int)n, name,
			  allowed);
	return -EINVAL;
}

/* Section lines never reach libinih's handler: config_ini's reader hands them here. */
static int prescription_ini_section(struct config_ini *ini, const char *name, size_t n)
{
	return prescription_section((struct prescription_ctx *)((char *)ini -
				    offsetof(struct prescription_ctx, ini)), name, n);
}

static int prescription_handler(void *user, const char *section, const char *name,
				const char *value)
{
	static const struct config_ini_keys keys = {
		prescription_key_table, prescription_key_find, prescription_key_section_keys,
	};
	struct prescription_ctx *ctx = user;
	const struct config_key *k;
	union config_value v;

	(void)section;
	k = config_ini_key(&ctx->ini, &keys, ctx->section, name, value, ctx->rx.key_line, &v);
	if (!k) {
		return 0;
	}
	config_value_store_at(&ctx->rx, k, value, &v);
	return 1;
}

static void prescription_defaults(struct prescription *rx)
{
	const struct config_key *k;
	union config_value v;
	char why[CONFIG_ERR_MAX];
	size_t i;

	memset(rx, 0, sizeof(*rx));
	for (i = 0; i < prescription_key_count; i++) {
		k = &prescription_key_table[i];
		/* a required number's "0" is below its range: stored as it is, never parsed */
		if (config_value_parse(k, k->def, &v, why, sizeof(why)) == 0) {
			config_value_store_at(rx, k, k->def, &v);
		}
	}
}

static int prescription_line(const struct prescription_ctx *ctx, const char *section,
			     const char *key)
{
	return prescription_key_line(&ctx->rx, section, key);
}

/* A required key not set: "FILE: section.key: missing (...)". */
static int prescription_require(struct prescription_ctx *ctx, const char *section,
				const char *key, const char *why)
{
	if (prescription_line(ctx, section, key)) {
		return 0;
	}
	prescription_fail(ctx, 0, "%s.%s: missing (%s)", section, key, why);
	return -EINVAL;
}

/* The pattern's own keys may be set; any other protocol key may not. */
static int prescription_rule_pattern_keys(struct prescription_ctx *ctx)
{
	static const struct {
		const char *key;
		unsigned patterns;	/* bit per enum prescription_pattern */
		unsigned required;
	} use[] = {
		{ "rate_hz", 0xbu, 0xbu },	/* continuous, on_off, emg_triggered */
		{ "on_ms", 0x2u, 0x2u },
		{ "off_ms", 0x6u, 0x6u },
		{ "train_pulses", 0x8u, 0x8u },
		{ "theta_burst_pulses", 0x4u, 0 },
		{ "theta_frequency_hz", 0x4u, 0 },
		{ "theta_period_ms", 0x4u, 0 },
		{ "theta_bursts", 0x4u, 0 },
	};
	const struct prescription *rx = &ctx->rx;
	const char *name = prescription_key_patterns[rx->protocol.pattern].name;
	unsigned bit = 1u << rx->protocol.pattern;
	int line;
	size_t i;

	for (i = 0; i < sizeof(use) / sizeof(use[0]); i++) {
		line = prescription_line(ctx, "protocol", use[i].key);
		if (line && !(use[i].patterns & bit)) {
			prescription_fail(ctx, line,
					  "protocol.%s: not used by pattern = %s (line %d) (allowed: only with %s)",
					  use[i].key, name, prescription_line(ctx, "protocol", "pattern"),
					  !strcmp(use[i].key, "off_ms") ? "on_off, theta_burst" :
					  !strcmp(use[i].key, "rate_hz") ? "continuous, on_off, emg_triggered" :
					  !strcmp(use[i].key, "on_ms") ? "on_off" :
					  !strcmp(use[i].key, "train_pulses") ? "emg_triggered" : "theta_burst");
			return -EINVAL;
		}
		if (!line && (use[i].required & bit)) {
			prescription_fail(ctx, prescription_line(ctx, "protocol", "pattern"),
					  "protocol.%s: missing, pattern = %s needs it", use[i].key, name);
			return -EINVAL;
		}
	}
	return 0;
}

static void prescription_use_preset(struct prescription *rx, const struct prescription_preset *p)
{
	rx->protocol.pattern = p->pattern;
	rx->protocol.rate_hz = p->rate_hz;
	rx->protocol.on_ms = p->on_ms;
	rx->protocol.off_ms = p->off_ms;
	rx->protocol.pulses = p->pulses;
	rx->protocol.train_pulses = p->train_pulses;
	if (p->pattern == PRESCRIPTION_THETA_BURST) {
		rx->protocol.theta_burst_pulses = p->theta_burst_pulses;
		rx->protocol.theta_frequency_hz = p->theta_frequency_hz;
		rx->protocol.theta_period_ms = p->theta_period_ms;
		rx->protocol.theta_bursts = p->theta_bursts;
	}
}

/* Pulses in one train of the protocol (continuous: the whole session). */
static unsigned prescription_train_pulses(const struct prescription *rx)
{
	long n;

	switch (rx->protocol.pattern) {
	case PRESCRIPTION_ON_OFF:
		n = lround(rx->protocol.rate_hz * rx->protocol.on_ms * 1e-3);
		return n < 1 ? 1u : (unsigned)n;
	case PRESCRIPTION_THETA_BURST:
		return (unsigned)(rx->protocol.theta_burst_pulses * rx->protocol.theta_bursts);
	case PRESCRIPTION_EMG_TRIGGERED:
		return (unsigned)rx->protocol.train_pulses;
	case PRESCRIPTION_CONTINUOUS:
	default:
		return (unsigned)rx->protocol.pulses;
	}
}

static int prescription_rule_protocol(struct prescription_ctx *ctx)
{
	struct prescription *rx = &ctx->rx;
	const struct prescription_preset *p;
	const char *k;
	unsigned per_train;
	size_t i;
	int line;

	if (rx->protocol.preset[0]) {
		for (i = 0; i < prescription_key_count; i++) {
			k = prescription_key_table[i].key;
			line = prescription_line(ctx, "protocol", k);
			if (strcmp(prescription_key_table[i].section, "protocol") ||
			    !strcmp(k, "preset") || !line) {
				continue;
			}
			prescription_fail(ctx, line,
					  "protocol.%s: set with protocol.preset = %s (line %d) (allowed: a preset or explicit parameters, not both)",
					  k, rx->protocol.preset,
					  prescription_line(ctx, "protocol", "preset"));
			return -EINVAL;
		}
		p = prescription_preset_find(rx->protocol.preset);
		prescription_use_preset(rx, p);
		return 0;
	}
	if (prescription_require(ctx, "protocol", "pattern",
				 "allowed: continuous, on_off, theta_burst, emg_triggered; or a preset") < 0 ||
	    prescription_rule_pattern_keys(ctx) < 0 ||
	    prescription_require(ctx, "protocol", "pulses", "allowed: 1 to 100000 a session") < 0) {
		return -EINVAL;
	}
	if (rx->protocol.pattern == PRESCRIPTION_THETA_BURST &&
	    rx->protocol.theta_burst_pulses / rx->protocol.theta_frequency_hz * 1e3 >
	    rx->protocol.theta_period_ms) {
		line = prescription_line(ctx, "protocol", "theta_period_ms");
		prescription_fail(ctx, line ? line : prescription_line(ctx, "protocol", "pattern"),
				  "protocol.theta_period_ms: %.6g ms is shorter than one burst (%d pulses at %.6g Hz = %.6g ms) (allowed: at least the burst)",
				  rx->protocol.theta_period_ms, rx->protocol.theta_burst_pulses,
				  rx->protocol.theta_frequency_hz,
				  rx->protocol.theta_burst_pulses / rx->protocol.theta_frequency_hz * 1e3);
		return -EINVAL;
	}
	per_train = prescription_train_pulses(rx);
	if ((unsigned)rx->protocol.pulses % per_train) {
		prescription_fail(ctx, prescription_line(ctx, "protocol", "pulses"),
				  "protocol.pulses: %d is not a whole number of trains of %u pulses (allowed: a multiple of %u, e.g. %u)",
				  rx->protocol.pulses, per_train, per_train,
				  ((unsigned)rx->protocol.pulses / per_train + 1) * per_train);
		return -EINVAL;
	}
	return 0;
}

static int prescription_rule_target(struct prescription_ctx *ctx)
{
	struct prescription *rx = &ctx->rx;
	bool nerve = rx->target.kind == PRESCRIPTION_NERVE_TRUNK;
	const char *site = rx->target.site;

	if (prescription_require(ctx, "target", "kind", "allowed: nerve_trunk, motor_point") < 0 ||
	    prescription_require(ctx, "target", "site", "the nerve or muscle") < 0 ||
	    prescription_require(ctx, "target", "side", "allowed: left, right") < 0) {
		return -EINVAL;
	}
	if (nerve ? (prescription_key_in_names(prescription_key_nerves, site) ||
		     prescription_key_in_list(rx->target.extra_nerves, site))
		  : (prescription_key_in_names(prescription_key_muscles, site) ||
		     prescription_key_in_list(rx->target.extra_muscles, site))) {
		return 0;
	}
	prescription_fail(ctx, prescription_line(ctx, "target", "site"),
			  "target.site: '%s' is not a %s for kind = %s (line %d) (allowed: %s%s%s)",
			  site, nerve ? "nerve" : "muscle", prescription_key_kinds[rx->target.kind].name,
			  prescription_line(ctx, "target", "kind"),
			  nerve ? "radial, median, ulnar, tibial, peroneal"
				: "wrist_extensors, finger_extensors, triceps, biceps, tibialis_anterior, gastrocnemius",
			  (nerve ? rx->target.extra_nerves : rx->target.extra_muscles)[0] ? ", " : "",
			  nerve ? rx->target.extra_nerves : rx->target.extra_muscles);
	return -EINVAL;
}

static int prescription_rule_course(struct prescription_ctx *ctx)
{
	struct prescription *rx = &ctx->rx;
	int line;

	if (prescription_require(ctx, "patient", "id", "the patient's pseudonymous code") < 0 ||
	    prescription_require(ctx, "course", "id", "the course's code") < 0 ||
	    prescription_require(ctx, "course", "sessions", "allowed: 1 to 1000") < 0) {
		return -EINVAL;
	}
	if (rx->course.sessions_per_day > rx->course.sessions) {
		prescription_fail(ctx, prescription_line(ctx, "course", "sessions_per_day"),
				  "course.sessions_per_day: %d is more than course.sessions = %d (allowed: at most the course's sessions)",
				  rx->course.sessions_per_day, rx->course.sessions);
		return -EINVAL;
	}
	/* n sessions a day, each min_hours_between after the last, must fit in a day */
	if ((rx->course.sessions_per_day - 1) * rx->course.min_hours_between >= 24.0) {
		line = prescription_line(ctx, "course", "min_hours_between");
		prescription_fail(ctx, line ? line : prescription_line(ctx, "course", "sessions_per_day"),
				  "course.min_hours_between: %.6g h leaves no room for course.sessions_per_day = %d in a day (allowed: below %.6g h)",
				  rx->course.min_hours_between, rx->course.sessions_per_day,
				  24.0 / (rx->course.sessions_per_day - 1));
		return -EINVAL;
	}
	return 0;
}

static int prescription_rule_intensity(struct prescription_ctx *ctx)
{
	int mt = prescription_line(ctx, "intensity", "motor_threshold_pct");
	int out = prescription_line(ctx, "intensity", "max_output_pct");

	if (mt && out) {
		prescription_fail(ctx, mt > out ? mt : out,
				  "intensity.%s: set with intensity.%s (line %d) (allowed: exactly one of motor_threshold_pct, max_output_pct)",
				  mt > out ? "motor_threshold_pct" : "max_output_pct",
				  mt > out ? "max_output_pct" : "motor_threshold_pct", mt > out ? out : mt);
		return -EINVAL;
	}
	if (!mt && !out) {
		prescription_fail(ctx, 0,
				  "intensity.motor_threshold_pct: missing (allowed: exactly one of motor_threshold_pct, max_output_pct)");
		return -EINVAL;
	}
	ctx->rx.intensity.kind = mt ? PRESCRIPTION_INTENSITY_MT : PRESCRIPTION_INTENSITY_OUTPUT;
	return 0;
}

int prescription_load(struct prescription *rx, const char *path, char *err, size_t errlen)
{
	static const struct config_ini_kind kind = {
		.path_max = PRESCRIPTION_PATH_MAX,
		.file_max = PRESCRIPTION_FILE_MAX,
		.line_max = PRESCRIPTION_LINE_MAX,
		.section = prescription_ini_section,
		.allowed = "a prescription file",
		.noun = "a prescription",
	};
	struct prescription_ctx *ctx;
	int rc;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		config_report(err, errlen, path, 0, "out of memory");
		return -ENOMEM;
	}
	rc = config_ini_open(&ctx->ini, &kind, path, err, errlen);
	if (rc == 0) {
		prescription_defaults(&ctx->rx);
		memcpy(ctx->rx.path, path, strlen(path) + 1);
		rc = config_ini_parse(&ctx->ini, prescription_handler, ctx);
	}
	if (rc == 0 && (prescription_rule_course(ctx) < 0 || prescription_rule_target(ctx) < 0 ||
			prescription_rule_protocol(ctx) < 0 ||
			prescription_rule_intensity(ctx) < 0)) {
		rc = -EINVAL;
	}
	config_ini_close(&ctx->ini);
	if (rc == 0) {
		*rx = ctx->rx;
	}
	free(ctx);
	return rc;
}

double prescription_rate_hz(const struct prescription *rx)
{
	return rx->protocol.pattern == PRESCRIPTION_THETA_BURST ? rx->protocol.theta_frequency_hz
								: rx->protocol.rate_hz;
}

enum prescription_class prescription_class_of(double rate_hz)
{
	if (rate_hz <= 5.0) {
		return PRESCRIPTION_CLASS_LOW;
	}
	if (rate_hz >= 10.0) {
		return PRESCRIPTION_CLASS_HIGH;
	}
	return PRESCRIPTION_CLASS_INTERMEDIATE;
}

const char *prescription_class_name(enum prescription_class c)
{
	switch (c) {
	case PRESCRIPTION_CLASS_LOW:
		return "low";
	case PRESCRIPTION_CLASS_HIGH:
		return "high";
	case PRESCRIPTION_CLASS_INTERMEDIATE:
	default:
		return "intermediate";
	}
}

void prescription_timing(const struct prescription *rx, struct prescription_timing *t)
{
	unsigned per_train = prescription_train_pulses(rx);

	memset(t, 0, sizeof(*t));
	t->bursts_per_train = 1;
	t->trains = (unsigned)rx->protocol.pulses / per_train;
	switch (rx->protocol.pattern) {
	case PRESCRIPTION_THETA_BURST:
		t->inter_pulse_interval_s = 1.0 / rx->protocol.theta_frequency_hz;
		t->pulses_per_burst = (unsigned)rx->protocol.theta_burst_pulses;
		t->inter_burst_interval_s = rx->protocol.theta_period_ms * 1e-3;
		t->bursts_per_train = (unsigned)rx->protocol.theta_bursts;
		t->inter_train_interval_s = rx->protocol.off_ms * 1e-3;
		break;
	case PRESCRIPTION_ON_OFF:
		t->inter_pulse_interval_s = 1.0 / rx->protocol.rate_hz;
		t->pulses_per_burst = per_train;
		t->inter_train_interval_s = rx->protocol.off_ms * 1e-3;
		break;
	case PRESCRIPTION_EMG_TRIGGERED:
		t->inter_pulse_interval_s = 1.0 / rx->protocol.rate_hz;
		t->pulses_per_burst = per_train;
		t->inter_train_interval_s = 0.0;
		t->inter_train_variable = true;
		break;
	case PRESCRIPTION_CONTINUOUS:
	default:
		t->inter_pulse_interval_s = 1.0 / rx->protocol.rate_hz;
		t->pulses_per_burst = per_train;
		break;
	}
}

void prescription_timing_json(const struct prescription_timing *t, char *buf, size_t len)
{
	char ibi[32], iti[32];

	if (t->bursts_per_train > 1) {
		config_print(ibi, sizeof(ibi), "%.6g", t->inter_burst_interval_s);
	} else {
		config_print(ibi, sizeof(ibi), "null");
	}
	if (t->trains > 1 && !t->inter_train_variable) {
		config_print(iti, sizeof(iti), "%.6g", t->inter_train_interval_s);
	} else {
		config_print(iti, sizeof(iti), "null");
	}
	config_print(buf, len,
		     "{\"inter_pulse_interval_s\": %.6g, \"pulses_per_burst\": %u, \"inter_burst_interval_s\": %s, \"bursts_per_train\": %u, \"inter_train_interval_s\": %s, \"trains\": %u}",
		     t->inter_pulse_interval_s, t->pulses_per_burst, ibi, t->bursts_per_train, iti,
		     t->trains);
}

void prescription_write_summary(const struct prescription *rx, FILE *f)
{
	struct prescription_timing t;
	double rate = prescription_rate_hz(rx);
	char json[CONFIG_ERR_MAX];

	prescription_timing(rx, &t);
	fprintf(f, "patient: %s\n", rx->patient.id);
	fprintf(f, "course: %s, %d sessions, at most %d a day, at least %.6g h apart\n",
		rx->course.id, rx->course.sessions, rx->course.sessions_per_day,
		rx->course.min_hours_between);
	fprintf(f, "target: %s %s, %s; coil: %s; position: %s\n",
		prescription_key_kinds[rx->target.kind].name, rx->target.site,
		prescription_key_sides[rx->target.side].name,
		rx->target.coil[0] ? rx->target.coil : "-",
		rx->target.position[0] ? rx->target.position : "-");
	fprintf(f, "protocol: %s%s%s, %d pulses a session\n",
		prescription_key_patterns[rx->protocol.pattern].name,
		rx->protocol.preset[0] ? ", preset " : "", rx->protocol.preset,
		rx->protocol.pulses);
	if (rx->intensity.kind == PRESCRIPTION_INTENSITY_MT) {
		fprintf(f, "intensity: %.6g %% of the session's measured motor threshold\n",
			rx->intensity.motor_threshold_pct);
	} else {
		fprintf(f, "intensity: %.6g %% of maximum output\n", rx->intensity.max_output_pct);
	}
	fprintf(f, "frequency class: %s (%.6g Hz)\n",
		prescription_class_name(prescription_class_of(rate)), rate);
	fprintf(f, "inter-pulse interval: %.6g s\n", t.inter_pulse_interval_s);
	fprintf(f, "pulses per burst: %u\n", t.pulses_per_burst);
	if (t.bursts_per_train > 1) {
		fprintf(f, "inter-burst interval: %.6g s\n", t.inter_burst_interval_s);
	} else {
		fprintf(f, "inter-burst interval: n/a (one burst a train)\n");
	}
	fprintf(f, "bursts per train: %u\n", t.bursts_per_train);
	if (t.inter_train_variable) {
		fprintf(f, "inter-train interval: variable (each train starts at an EMG burst onset)\n");
	} else if (t.trains > 1) {
		fprintf(f, "inter-train interval: %.6g s\n", t.inter_train_interval_s);
	} else {
		fprintf(f, "inter-train interval: n/a (one train)\n");
	}
	fprintf(f, "trains per protocol: %u%s\n", t.trains,
		t.inter_train_variable ? " (at most: one per EMG onset)" : "");
	prescription_timing_json(&t, json, sizeof(json));
	fprintf(f, "timing: %s\n", json);
}

static void prescription_stim_add(struct prescription_stim_key *keys, size_t *n,
				  const char *section, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void prescription_stim_add(struct prescription_stim_key *keys, size_t *n,
				  const char *section, const char *key, const char *fmt, ...)
{
	va_list ap;

	keys[*n].section = section;
	keys[*n].key = key;
	va_start(ap, fmt);
	vsnprintf(keys[*n].value, sizeof(keys[*n].value), fmt, ap);
	va_end(ap);
	(*n)++;
}

int prescription_stim_keys(const struct prescription *rx, double motor_threshold_pct,
			   struct prescription_stim_key *keys, size_t *n, char *err, size_t errlen)
{
	unsigned per_train = prescription_train_pulses(rx);
	unsigned trains = (unsigned)rx->protocol.pulses / per_train;
	double intensity;

	*n = 0;
	if (errlen) {
		err[0] = '\0';
	}
	if (rx->intensity.kind == PRESCRIPTION_INTENSITY_MT) {
		if (!(motor_threshold_pct > 0.0)) {
			config_report(err, errlen, rx->path, prescription_key_line(rx, "intensity", "motor_threshold_pct"),
				      "intensity.motor_threshold_pct: %.6g %% of the motor threshold, which is not measured yet (allowed: after the session's threshold is measured)",
				      rx->intensity.motor_threshold_pct);
			return -EINVAL;
		}
		intensity = rx->intensity.motor_threshold_pct * motor_threshold_pct / 100.0;
		prescription_stim_add(keys, n, "safety", "motor_threshold_pct", "%.15g",
				      motor_threshold_pct);
	} else {
		intensity = rx->intensity.max_output_pct;
	}
	switch (rx->protocol.pattern) {
	case PRESCRIPTION_EMG_TRIGGERED:
		prescription_stim_add(keys, n, "stim", "mode", "closed_loop");
		prescription_stim_add(keys, n, "stim", "protocol", "train");
		prescription_stim_add(keys, n, "stim", "train_pulses", "%d", rx->protocol.train_pulses);
		prescription_stim_add(keys, n, "stim", "train_frequency_hz", "%.15g",
				      rx->protocol.rate_hz);
		break;
	case PRESCRIPTION_ON_OFF:
		prescription_stim_add(keys, n, "stim", "mode", "open_loop");
		prescription_stim_add(keys, n, "stim", "protocol", "onoff");
		prescription_stim_add(keys, n, "stim", "train_frequency_hz", "%.15g",
				      rx->protocol.rate_hz);
		prescription_stim_add(keys, n, "stim", "on_ms", "%.15g", rx->protocol.on_ms);
		prescription_stim_add(keys, n, "stim", "off_ms", "%.15g", rx->protocol.off_ms);
		prescription_stim_add(keys, n, "stim", "cycles", "%u", trains);
		prescription_stim_add(keys, n, "stim", "open_loop_pulses", "%d", rx->protocol.pulses);
		break;
	case PRESCRIPTION_THETA_BURST:
		prescription_stim_add(keys, n, "stim", "mode", "open_loop");
		prescription_stim_add(keys, n, "stim", "protocol", "theta_burst");
		prescription_stim_add(keys, n, "stim", "theta_bursts", "%d", rx->protocol.theta_bursts);
		prescription_stim_add(keys, n, "stim", "theta_burst_pulses", "%d",
				      rx->protocol.theta_burst_pulses);
		prescription_stim_add(keys, n, "stim", "theta_frequency_hz", "%.15g",
				      rx->protocol.theta_frequency_hz);
		prescription_stim_add(keys, n, "stim", "theta_period_ms", "%.15g",
				      rx->protocol.theta_period_ms);
		prescription_stim_add(keys, n, "stim", "off_ms", "%.15g", rx->protocol.off_ms);
		prescription_stim_add(keys, n, "stim", "cycles", "%u", trains);
		prescription_stim_add(keys, n, "stim", "open_loop_pulses", "%d", rx->protocol.pulses);
		break;
	case PRESCRIPTION_CONTINUOUS:
	default:
		/* open loop single pulses come off_ms apart: the rate's period */
		prescription_stim_add(keys, n, "stim", "mode", "open_loop");
		prescription_stim_add(keys, n, "stim", "protocol", "single");
		prescription_stim_add(keys, n, "stim", "off_ms", "%.15g",
				      1e3 / rx->protocol.rate_hz);
		prescription_stim_add(keys, n, "stim", "open_loop_pulses", "%d", rx->protocol.pulses);
		break;
	}
	prescription_stim_add(keys, n, "stim", "intensity_pct", "%.15g", intensity);
	return 0;
}

int prescription_to_config(const struct prescription *rx, double motor_threshold_pct,
			   struct rpmsd_config *cfg, char *err, size_t errlen)
{
	struct prescription_stim_key keys[PRESCRIPTION_STIM_KEYS_MAX];
	struct rpmsd_config *tmp;
	size_t n, i;
	int rc;

	rc = prescription_stim_keys(rx, motor_threshold_pct, keys, &n, err, errlen);
	if (rc < 0) {
		return rc;
	}
	/* large (plugin keys, train table), so not on the stack */
	tmp = malloc(sizeof(*tmp));
	if (!tmp) {
		config_report(err, errlen, rx->path, 0, "out of memory");
		return -ENOMEM;
	}
	*tmp = *cfg;
	for (i = 0; i < n; i++) {
		rc = config_override(tmp, rx->path, keys[i].section, keys[i].key, keys[i].value,
				     err, errlen);
		if (rc < 0) {
			goto out;
		}
	}
	rc = config_recheck(tmp, rx->path, err, errlen);
	if (rc == 0) {
		*cfg = *tmp;
	}
out:
	free(tmp);
	return rc;
}
