/* SPDX-License-Identifier: MIT */
/*
 * The control socket's requests (docs/control.md): JSON in, a checked
 * struct control_request out, or a code and a message naming what was
 * wrong. No daemon state and nothing but jansson and the key table (which
 * keys are live: config_key_live), so that the fuzzer can run it alone.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "control_request.h"

#define CONTROL_IDS_ALLOWED "1 to 36 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"

/* A command, and the members its request may have besides "cmd". */
struct control_cmd_desc {
	const char *name;
	const char *const members[8];
	const char *allowed;		/* the same, for messages */
};

static const struct control_cmd_desc control_cmds[CONTROL_CMD_COUNT] = {
	[CONTROL_CMD_STATUS] = { "status", { NULL }, "cmd" },
	[CONTROL_CMD_ARM] = { "arm", { NULL }, "cmd" },
	[CONTROL_CMD_DISARM] = { "disarm", { NULL }, "cmd" },
	[CONTROL_CMD_CALIBRATE] = { "calibrate", { NULL }, "cmd" },
	[CONTROL_CMD_SESSION_START] = { "session_start", { "patient_id", "session_id", "course_id",
							   "motor_threshold_pct", NULL },
					"cmd, patient_id, session_id, course_id, "
					"motor_threshold_pct" },
	[CONTROL_CMD_SESSION_STOP] = { "session_stop", { "reason", NULL }, "cmd, reason" },
	[CONTROL_CMD_SET] = { "set", { "params", "reason", NULL }, "cmd, params, reason" },
	[CONTROL_CMD_ASSESS] = { "assess", { "kind", "phase", "seconds", "agonist", "antagonist",
					     "muscle", "direction", NULL },
				 "cmd, kind, phase, seconds, agonist, antagonist, muscle, direction" },
	[CONTROL_CMD_THRESHOLD] = { "threshold", { "channel", "window_ms", "interval_s",
						   "start_pct", "cap_pct", "stop" },
				    "cmd, channel, window_ms, interval_s, start_pct, cap_pct, stop" },
	[CONTROL_CMD_THRESHOLD_STATUS] = { "threshold_status", { "since", NULL }, "cmd, since" },
};

#define CONTROL_CMDS_TEXT "status, arm, disarm, calibrate, session_start, session_stop, set, " \
	"assess, threshold, threshold_status"

/* Every byte outside printable ASCII becomes '?': messages quote requests. */
void control_request_printable(char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) {
			*s = '?';
		}
	}
}

void control_request_fail(struct control_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	control_request_printable(err->message);
}

const char *control_request_cmd_name(enum control_cmd cmd)
{
	if ((unsigned)cmd >= CONTROL_CMD_COUNT) {
		return NULL;
	}
	return control_cmds[cmd].name;
}

/* ASCII letters and digits, whatever the locale says. */
static bool control_request_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

bool control_request_id_valid(const char *id)
{
	size_t i, n = strlen(id);

	if (n < 1 || n > EVENT_ID_MAX || !control_request_alnum(id[0])) {
		return false;
	}
	for (i = 1; i < n; i++) {
		if (!control_request_alnum(id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-') {
			return false;
		}
	}
	return true;
}

/* ---- parsing ----------------------------------------------------------- */

static const char *control_request_json_type(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

static bool control_request_member_allowed(const struct control_cmd_desc *d, const char *member)
{
	size_t i;

	for (i = 0; d->members[i]; i++) {
		if (!strcmp(d->members[i], member)) {
			return true;
		}
	}
	return false;
}

static int control_request_parse_id(json_t *root, const char *member, char *out,
				    struct control_error *err)
{
	json_t *v = json_object_get(root, member);
	const char *s;

	if (!v) {
		control_request_fail(err, "bad_request", "session_start: missing member \"%s\" "
				     "(allowed: " CONTROL_IDS_ALLOWED ")", member);
		return -EINVAL;
	}
	if (!json_is_string(v)) {
		control_request_fail(err, "bad_request", "session_start: \"%s\" is %s (allowed: a "
				     "string of " CONTROL_IDS_ALLOWED ")", member,
				     control_request_json_type(v));
		return -EINVAL;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || !control_request_id_valid(s)) {
		control_request_fail(err, "invalid_value", "session_start: %s \"%.40s\" is not a "
				     "valid id (allowed: " CONTROL_IDS_ALLOWED ")", member, s);
		snprintf(err->key, sizeof(err->key), "%s", member);
		return -EINVAL;
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* An optional "reason": printable ASCII, 1 to CONTROL_REASON_MAX characters. */
static int control_request_parse_reason(json_t *root, const char *cmd, char *out,
					struct control_error *err)
{
	json_t *v = json_object_get(root, "reason");
	const char *s;
	size_t i;

	out[0] = '\0';
	if (!v) {
		return 0;
	}
	if (!json_is_string(v)) {
		control_request_fail(err, "bad_request", "%s: \"reason\" is %s (allowed: a string "
				     "of 1 to %d printable ASCII characters)", cmd,
				     control_request_json_type(v), CONTROL_REASON_MAX);
		return -EINVAL;
	}
	s = json_string_value(v);
	for (i = 0; s[i]; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			break;
		}
	}
	if (s[i] || i != json_string_length(v) || i == 0 || i > CONTROL_REASON_MAX) {
		control_request_fail(err, "invalid_value", "%s: reason \"%.40s\" is not valid "
				     "(allowed: 1 to %d printable ASCII characters)", cmd, s,
				     CONTROL_REASON_MAX);
		snprintf(err->key, sizeof(err->key), "reason");
		return -EINVAL;
	}
	memcpy(out, s, i + 1);
	return 0;
}

/* session_start's optional course members: "course_id", "motor_threshold_pct". */
static int control_request_parse_course(json_t *root, struct control_request *req,
					struct control_error *err)
{
	json_t *v = json_object_get(root, "motor_threshold_pct");
	double mt;

	if (json_object_get(root, "course_id") &&
	    control_request_parse_id(root, "course_id", req->course_id, err) < 0) {
		return -EINVAL;
	}
	if (!v) {
		return 0;
	}
	if (!json_is_number(v)) {
		control_request_fail(err, "bad_request", "session_start: \"motor_threshold_pct\" "
				     "is %s (allowed: a number above 0, at most 100)",
				     control_request_json_type(v));
		return -EINVAL;
	}
	mt = json_number_value(v);
	if (!(mt > 0.0 && mt <= 100.0)) {
		control_request_fail(err, "invalid_value", "session_start: motor_threshold_pct "
				     "%g is out of range (allowed: above 0, at most 100, in %% of "
				     "the stimulator's maximum output)", mt);
		snprintf(err->key, sizeof(err->key), "motor_threshold_pct");
		return -EINVAL;
	}
	if (!req->course_id[0]) {
		control_request_fail(err, "bad_request", "session_start: motor_threshold_pct "
				     "without course_id (allowed: with a course_id only, for a "
				     "prescription's intensity in %% of the motor threshold)");
		return -EINVAL;
	}
	req->motor_threshold_pct = mt;
	return 0;
}

/*
 * assess stretch: "muscle" (the stretched muscle's channel), optional
 * "direction" ("increasing", the default, or "decreasing": which way the
 * angle goes while the muscle is stretched).
 */
static int control_request_parse_stretch(json_t *root, int kind, struct control_request *req,
					 struct control_error *err)
{
	json_t *m = json_object_get(root, "muscle"), *d = json_object_get(root, "direction");

	if (kind != 1 && (m || d)) {
		control_request_fail(err, "bad_request", "assess: \"%s\" is only for kind "
				     "\"stretch\"", m ? "muscle" : "direction");
		snprintf(err->key, sizeof(err->key), "%s", m ? "muscle" : "direction");
		return -EINVAL;
	}
	if (kind != 1) {
		return 0;
	}
	if (!m || !json_is_string(m) || !json_string_value(m)[0] ||
	    strlen(json_string_value(m)) >= CONTROL_VALUE_MAX) {
		control_request_fail(err, m && json_is_string(m) ? "invalid_value" : "bad_request",
				     "assess stretch: \"muscle\" is %s (the stretched muscle's "
				     "channel name)", !m ? "missing" : json_is_string(m) ?
				     "empty or too long" : control_request_json_type(m));
		snprintf(err->key, sizeof(err->key), "muscle");
		return -EINVAL;
	}
	snprintf(req->assess_muscle, sizeof(req->assess_muscle), "%s", json_string_value(m));
	req->assess_direction = 1;
	if (d && (!json_is_string(d) || (strcmp(json_string_value(d), "increasing") &&
					 strcmp(json_string_value(d), "decreasing")))) {
		control_request_fail(err, json_is_string(d) ? "invalid_value" : "bad_request",
				     "assess stretch: \"direction\" is %s (allowed: \"increasing\" "
				     "or \"decreasing\": the way the angle goes while the muscle is "
				     "stretched)", json_is_string(d) ? "not known" :
				     control_request_json_type(d));
		snprintf(err->key, sizeof(err->key), "direction");
		return -EINVAL;
	}
	if (d && !strcmp(json_string_value(d), "decreasing")) {
		req->assess_direction = -1;
	}
	return 0;
}

/*
 * assess: "kind" (rest|stretch|mvc|cci), "phase" (pre|post), optional
 * "seconds" (1..600, 60; stretch 120); cci: "agonist", "antagonist";
 * stretch: "muscle", "direction".
 */
static int control_request_parse_assess(json_t *root, struct control_request *req,
					struct control_error *err)
{
	static const char *const kinds[] = { "rest", "stretch", "cci", "mvc" };
	json_t *k = json_object_get(root, "kind"), *p = json_object_get(root, "phase");
	json_t *sec = json_object_get(root, "seconds");
	int kind = -1;

	for (int i = 0; k && json_is_string(k) && i < 4; i++) {
		if (kinds[i] && !strcmp(json_string_value(k), kinds[i])) {
			kind = i;
		}
	}
	if (kind < 0) {
		control_request_fail(err, k && json_is_string(k) ? "invalid_value" : "bad_request",
				     "assess: \"kind\" is %s (allowed: \"rest\", \"stretch\", "
				     "\"mvc\", \"cci\")",
				     !k ? "missing" : json_is_string(k) ? "not known" :
				     control_request_json_type(k));
		snprintf(err->key, sizeof(err->key), "kind");
		return -EINVAL;
	}
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "antagonist" : "agonist";
		json_t *v = json_object_get(root, key);
		char *dst = i ? req->assess_antagonist : req->assess_agonist;

		if (kind != 2 && v) {
			control_request_fail(err, "bad_request", "assess: \"%s\" is only for kind "
					     "\"cci\"", key);
			snprintf(err->key, sizeof(err->key), "%s", key);
			return -EINVAL;
		}
		if (kind == 2 && (!v || !json_is_string(v) || !json_string_value(v)[0] ||
				  strlen(json_string_value(v)) >= CONTROL_VALUE_MAX)) {
			control_request_fail(err, v && json_is_string(v) ? "invalid_value" :
					     "bad_request", "assess cci: \"%s\" is %s (a channel's "
					     "name)", key, !v ? "missing" : json_is_string(v) ?
					     "empty or too long" : control_request_json_type(v));
			snprintf(err->key, sizeof(err->key), "%s", key);
			return -EINVAL;
		}
		if (kind == 2) {
			snprintf(dst, CONTROL_VALUE_MAX, "%s", json_string_value(v));
		}
	}
	if (control_request_parse_stretch(root, kind, req, err) < 0) {
		return -EINVAL;
	}
	if (!p || !json_is_string(p) || (strcmp(json_string_value(p), "pre") &&
					 strcmp(json_string_value(p), "post"))) {
		control_request_fail(err, p && json_is_string(p) ? "invalid_value" : "bad_request",
				     "assess: \"phase\" is %s (allowed: \"pre\" or \"post\", "
				     "before or after the stimulation)", !p ? "missing" :
				     json_is_string(p) ? "not known" : control_request_json_type(p));
		snprintf(err->key, sizeof(err->key), "phase");
		return -EINVAL;
	}
	req->assess_kind = kind;
	req->assess_phase = !strcmp(json_string_value(p), "post");
	/* about 20 stretches at varied velocities, each from rest */
	req->assess_seconds = kind == 1 ? 120 : 60;
	if (sec) {
		double v = json_is_number(sec) ? json_number_value(sec) : -1;

		if (!(v >= 1 && v <= CONTROL_ASSESS_MAX_S)) {
			control_request_fail(err, json_is_number(sec) ? "invalid_value" :
					     "bad_request", "assess: \"seconds\" %s (allowed: a "
					     "number of seconds, 1 to %d)", json_is_number(sec) ?
					     "is out of range" : "is not a number",
					     CONTROL_ASSESS_MAX_S);
			snprintf(err->key, sizeof(err->key), "seconds");
			return -EINVAL;
		}
		req->assess_seconds = v;
	}
	return 0;
}

/* An optional number member of "threshold" in [@lo, @hi]; absent: *@out unchanged. */
static int control_request_threshold_num(json_t *root, const char *member, double lo, double hi,
					 const char *unit, double *out, struct control_error *err)
{
	json_t *v = json_object_get(root, member);
	double x;

	if (!v) {
		return 0;
	}
	if (!json_is_number(v)) {
		control_request_fail(err, "bad_request", "threshold: \"%s\" is %s (allowed: a "
				     "number, %g to %g%s)", member, control_request_json_type(v), lo,
				     hi, unit);
		return -EINVAL;
	}
	x = json_number_value(v);
	if (!(x >= lo && x <= hi)) {
		control_request_fail(err, "invalid_value", "threshold: %s %g is out of range "
				     "(allowed: %g to %g%s)", member, x, lo, hi, unit);
		snprintf(err->key, sizeof(err->key), "%s", member);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/*
 * "threshold": channel, window_ms [start, end], interval_s, start_pct,
 * cap_pct, stop; every one optional (the defaults are the daemon's).
 */
static int control_request_parse_threshold(json_t *root, struct control_request *req,
					   struct control_error *err)
{
	json_t *v = json_object_get(root, "stop"), *w = json_object_get(root, "window_ms");
	double ch = -1.0;
	int ret;

	req->threshold.channel = -1;
	req->threshold.win_start_ms = NAN;
	req->threshold.win_end_ms = NAN;
	req->threshold.interval_s = NAN;
	req->threshold.start_pct = NAN;
	req->threshold.cap_pct = NAN;
	if (v && !json_is_boolean(v)) {
		control_request_fail(err, "bad_request", "threshold: \"stop\" is %s (allowed: "
				     "true or false)", control_request_json_type(v));
		return -EINVAL;
	}
	req->threshold.stop = v && json_is_true(v);
	if (req->threshold.stop && json_object_size(root) > 2) {
		control_request_fail(err, "bad_request", "threshold: \"stop\" with other members "
				     "(allowed: stop alone)");
		return -EINVAL;
	}
	if (json_object_get(root, "channel") && !json_is_integer(json_object_get(root, "channel"))) {
		control_request_fail(err, "bad_request", "threshold: \"channel\" is %s (allowed: "
				     "an integer, 0 to 7)",
				     control_request_json_type(json_object_get(root, "channel")));
		return -EINVAL;
	}
	ret = control_request_threshold_num(root, "channel", 0, 7, "", &ch, err);
	if (ret == 0) {
		ret = control_request_threshold_num(root, "interval_s", 0.2, 60, " s",
						    &req->threshold.interval_s, err);
	}
	if (ret == 0) {
		ret = control_request_threshold_num(root, "start_pct", 1, 110, " %",
						    &req->threshold.start_pct, err);
	}
	if (ret == 0) {
		ret = control_request_threshold_num(root, "cap_pct", 1, 110, " %",
						    &req->threshold.cap_pct, err);
	}
	if (ret < 0) {
		return ret;
	}
	req->threshold.channel = (int)ch;
	if (!w) {
		return 0;
	}
	if (!json_is_array(w) || json_array_size(w) != 2 ||
	    !json_is_number(json_array_get(w, 0)) || !json_is_number(json_array_get(w, 1))) {
		control_request_fail(err, "bad_request", "threshold: \"window_ms\" is %s (allowed: "
				     "[start, end], two numbers, 0 <= start < end <= 200 ms)",
				     control_request_json_type(w));
		return -EINVAL;
	}
	req->threshold.win_start_ms = json_number_value(json_array_get(w, 0));
	req->threshold.win_end_ms = json_number_value(json_array_get(w, 1));
	if (!(req->threshold.win_start_ms >= 0.0 &&
	      req->threshold.win_start_ms < req->threshold.win_end_ms &&
	      req->threshold.win_end_ms <= 200.0)) {
		control_request_fail(err, "invalid_value", "threshold: window_ms [%g, %g] is out "
				     "of range (allowed: 0 <= start < end <= 200 ms)",
				     req->threshold.win_start_ms, req->threshold.win_end_ms);
		snprintf(err->key, sizeof(err->key), "window_ms");
		return -EINVAL;
	}
	return 0;
}

/* "threshold_status": an optional "since", the first probe number wanted. */
static int control_request_parse_since(json_t *root, struct control_request *req,
				       struct control_error *err)
{
	json_t *v = json_object_get(root, "since");

	req->threshold.since = 1;
	if (!v) {
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000) {
		control_request_fail(err, "bad_request", "threshold_status: \"since\" is not an "
				     "integer from 1 to 100000");
		return -EINVAL;
	}
	req->threshold.since = (long)json_integer_value(v);
	return 0;
}

/* "stim.a, stim.b, ...": the keys "set" takes, from the key table. */
static void control_request_settable_text(char *buf, size_t len)
{
	const char *key;
	size_t i, used = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; (key = config_key_nth("stim", CONFIG_KEY_LIVE, i)) && used < len; i++) {
		n = snprintf(buf + used, len - used, "%sstim.%s", i ? ", " : "", key);
		if (n < 0) {
			break;
		}
		used += (size_t)n;
	}
}

/* One key = value of "set", as text for config_override. */
static int control_request_parse_param(const char *name, json_t *v,
				       struct control_request *req, struct control_error *err)
{
	struct control_param *p = &req->params[req->n_params];
	char settable[CONTROL_MSG_MAX / 2];
	const char *key = name;
	size_t i, n;

	if (!strncmp(key, "stim.", 5)) {
		key += 5;
	} else if (strchr(key, '.')) {
		control_request_settable_text(settable, sizeof(settable));
		control_request_fail(err, "not_settable", "%.60s: not settable at run time "
				     "(allowed: %s); limits and everything else take a restart "
				     "with a new configuration", name, settable);
		snprintf(err->key, sizeof(err->key), "%.60s", name);
		control_request_printable(err->key);
		return -EINVAL;
	}
	if (!config_key_live("stim", key)) {
		control_request_settable_text(settable, sizeof(settable));
		control_request_fail(err, "not_settable", "stim.%.60s: not settable at run time "
				     "(allowed: %s)", key, settable);
		snprintf(err->key, sizeof(err->key), "stim.%.60s", key);
		control_request_printable(err->key);
		return -EINVAL;
	}
	snprintf(err->key, sizeof(err->key), "stim.%s", key);
	for (i = 0; i < req->n_params; i++) {
		if (!strcmp(req->params[i].key, key)) {
			control_request_fail(err, "bad_request", "set: stim.%s is given twice",
					     key);
			return -EINVAL;
		}
	}
	if (json_is_string(v)) {
		n = json_string_length(v);
		if (n >= sizeof(p->value) || strlen(json_string_value(v)) != n) {
			control_request_fail(err, "invalid_value", "stim.%s: a value of %zu "
					     "characters (allowed: at most %zu)", key, n,
					     sizeof(p->value) - 1);
			return -EINVAL;
		}
		memcpy(p->value, json_string_value(v), n + 1);
	} else if (json_is_integer(v)) {
		snprintf(p->value, sizeof(p->value), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		snprintf(p->value, sizeof(p->value), "%.17g", json_real_value(v));
	} else {
		control_request_fail(err, "invalid_value", "stim.%s: the value is %s (allowed: a "
				     "number, or a string as in the configuration file)", key,
				     control_request_json_type(v));
		return -EINVAL;
	}
	snprintf(p->key, sizeof(p->key), "%s", key);
	req->n_params++;
	err->key[0] = '\0';
	return 0;
}

static int control_request_parse_set(json_t *params, struct control_request *req,
				     struct control_error *err)
{
	const char *name;
	json_t *v;
	size_t n;

	if (!params) {
		control_request_fail(err, "bad_request", "set: missing member \"params\" (allowed: "
				     "an object of [stim] keys and values, e.g. "
				     "{\"intensity_pct\": 35})");
		return -EINVAL;
	}
	if (!json_is_object(params)) {
		control_request_fail(err, "bad_request", "set: \"params\" is %s (allowed: an "
				     "object of [stim] keys and values, e.g. "
				     "{\"intensity_pct\": 35})", control_request_json_type(params));
		return -EINVAL;
	}
	n = json_object_size(params);
	if (n < 1 || n > CONTROL_SET_MAX) {
		control_request_fail(err, "bad_request", "set: %zu keys (allowed: 1 to %d at once)",
				     n, CONTROL_SET_MAX);
		return -EINVAL;
	}
	json_object_foreach(params, name, v) {
		if (control_request_parse_param(name, v, req, err) < 0) {
			return -EINVAL;
		}
	}
	return 0;
}

int control_request_parse(const char *buf, size_t len, struct control_request *req,
			  struct control_error *err)
{
	const struct control_cmd_desc *d;
	json_error_t jerr;
	json_t *root, *v;
	const char *member;
	unsigned i;
	int ret = -EINVAL;

	memset(req, 0, sizeof(*req));
	memset(err, 0, sizeof(*err));
	req->cmd = CONTROL_CMD_COUNT;
	if (len > CONTROL_REQUEST_MAX) {
		control_request_fail(err, "too_large", "a request of %zu bytes (allowed: at most "
				     "%d)", len, CONTROL_REQUEST_MAX);
		return -EINVAL;
	}
	if (len == 0) {
		control_request_fail(err, "bad_request", "an empty request (allowed: a JSON object "
				     "such as {\"cmd\": \"status\"})");
		return -EINVAL;
	}
	/* Duplicate keys are refused: which one would win is not obvious. */
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		control_request_fail(err, "bad_request", "not JSON: %s (line %d, column %d)",
				     jerr.text, jerr.line, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		control_request_fail(err, "bad_request", "the request is %s (allowed: a JSON "
				     "object such as {\"cmd\": \"status\"})",
				     control_request_json_type(root));
		goto out;
	}
	v = json_object_get(root, "cmd");
	if (!v || !json_is_string(v)) {
		control_request_fail(err, "bad_request", "\"cmd\" is %s (allowed: a string, one of "
				     CONTROL_CMDS_TEXT ")",
				     v ? control_request_json_type(v) : "missing");
		goto out;
	}
	for (i = 0; i < CONTROL_CMD_COUNT; i++) {
		if (!strcmp(json_string_value(v), control_cmds[i].name)) {
			break;
		}
	}
	if (i == CONTROL_CMD_COUNT) {
		control_request_fail(err, "unknown_command", "unknown command \"%.40s\" (allowed: "
				     CONTROL_CMDS_TEXT ")", json_string_value(v));
		goto out;
	}
	req->cmd = (enum control_cmd)i;
	d = &control_cmds[i];
	/* A misspelt member is an error, not silently ignored. */
	json_object_foreach(root, member, v) {
		if (strcmp(member, "cmd") && !control_request_member_allowed(d, member)) {
			control_request_fail(err, "bad_request", "%s: unknown member \"%.40s\" "
					     "(allowed: %s)", d->name, member, d->allowed);
			goto out;
		}
	}
	switch (req->cmd) {
	case CONTROL_CMD_SESSION_START:
		ret = control_request_parse_id(root, "patient_id", req->patient_id, err);
		if (ret == 0) {
			ret = control_request_parse_id(root, "session_id", req->session_id, err);
		}
		if (ret == 0) {
			ret = control_request_parse_course(root, req, err);
		}
		break;
	case CONTROL_CMD_SESSION_STOP:
		ret = control_request_parse_reason(root, "session_stop", req->reason, err);
		break;
	case CONTROL_CMD_ASSESS:
		ret = control_request_parse_assess(root, req, err);
		break;
	case CONTROL_CMD_SET:
		ret = control_request_parse_set(json_object_get(root, "params"), req, err);
		if (ret == 0) {
			ret = control_request_parse_reason(root, "set", req->reason, err);
		}
		break;
	case CONTROL_CMD_THRESHOLD:
		ret = control_request_parse_threshold(root, req, err);
		break;
	case CONTROL_CMD_THRESHOLD_STATUS:
		ret = control_request_parse_since(root, req, err);
		break;
	default:
		ret = 0;
		break;
	}
out:
	json_decref(root);
	return ret;
}
