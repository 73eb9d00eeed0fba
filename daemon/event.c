/* SPDX-License-Identifier: MIT */
/*
 * Event stamping and the JSON wire encoding (docs/events.md).
 *
 * event_stamp runs on real-time threads: two vDSO clock reads. The encoder
 * runs only on the publisher thread and writes into the caller's fixed
 * buffer over snprintf rather than a JSON library, so it allocates nothing
 * itself (gmtime_r may take glibc's time-zone lock, which is why real-time
 * threads never encode).
 *
 * Numbers are printed by the C library in the "C" locale: the daemon never
 * calls setlocale(), so the decimal separator is always '.'.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "safety.h"

#define EVENT_NS_PER_S INT64_C(1000000000)

static const char *const event_topic_names[EVENT_TOPIC_COUNT] = {
	[EVENT_TOPIC_BURST] = "rpms.burst",
	[EVENT_TOPIC_STIM] = "rpms.stim",
	[EVENT_TOPIC_SAFETY] = "rpms.safety",
	[EVENT_TOPIC_STATE] = "rpms.state",
	[EVENT_TOPIC_SOURCE] = "rpms.source",
	[EVENT_TOPIC_HEARTBEAT] = "rpms.heartbeat",
	[EVENT_TOPIC_EMG] = "rpms.emg",
	[EVENT_TOPIC_RECORD] = "rpms.record",
	[EVENT_TOPIC_THRESHOLD] = "rpms.threshold",
};

static const char *const event_action_names[] = {
	[EVENT_ACTION_NONE] = "none",
	[EVENT_ACTION_REQUESTED] = "requested",
	[EVENT_ACTION_REFRACTORY] = "refractory",
	[EVENT_ACTION_BUSY] = "busy",
	[EVENT_ACTION_CALIBRATING] = "calibrating",
};

static const char *const event_state_names[] = {
	[EVENT_STATE_STARTED] = "started",
	[EVENT_STATE_ARMED] = "armed",
	[EVENT_STATE_DISARMED] = "disarmed",
	[EVENT_STATE_FAULT] = "fault",
	[EVENT_STATE_SOURCE_END] = "source_end",
	[EVENT_STATE_STOPPING] = "stopping",
	[EVENT_STATE_RECOVERED] = "recovered",
	[EVENT_STATE_ESTOP] = "estop",
	[EVENT_STATE_CALIBRATING] = "calibrating",
	[EVENT_STATE_PROTOCOL] = "protocol_changed",
};

#define EVENT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(EVENT_ARRAY_SIZE(event_state_names) == EVENT_STATE_COUNT,
	       "a name for every enum event_state");

enum event_topic event_topic_of(const struct event *ev)
{
	switch (ev->type) {
	case EVENT_BURST_ONSET:
	case EVENT_BURST_OFFSET:
		return EVENT_TOPIC_BURST;
	case EVENT_CALIBRATED:
	case EVENT_STATE:
	case EVENT_SESSION:
	case EVENT_ASSESS:
		return EVENT_TOPIC_STATE;
	case EVENT_PULSE:
		return EVENT_TOPIC_STIM;
	case EVENT_REFUSAL:
		return EVENT_TOPIC_SAFETY;
	case EVENT_GAP:
	case EVENT_SOURCE_OPENED:
		return EVENT_TOPIC_SOURCE;
	case EVENT_RECORD:
		return EVENT_TOPIC_RECORD;
	case EVENT_THRESHOLD:
		return EVENT_TOPIC_THRESHOLD;
	default:
		return EVENT_TOPIC_COUNT;
	}
}

const char *event_topic_name(enum event_topic topic)
{
	if ((unsigned)topic >= EVENT_TOPIC_COUNT) {
		return NULL;
	}
	return event_topic_names[topic];
}

const char *event_state_name(uint32_t state)
{
	return state < EVENT_ARRAY_SIZE(event_state_names) ? event_state_names[state] : NULL;
}

static int64_t event_clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) != 0) {
		return 0;
	}
	return (int64_t)ts.tv_sec * EVENT_NS_PER_S + ts.tv_nsec;
}

void event_state_init(struct event *ev, enum event_state state, int code,
		      const char *reason, uint64_t sample)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = EVENT_STATE;
	ev->sample = sample;
	ev->u.state.state = state;
	ev->u.state.code = code;
	snprintf(ev->u.state.reason, sizeof(ev->u.state.reason), "%s", reason);
	ev->u.state.at_sample = NAN;
}

void event_stamp(struct event *ev, int64_t t_ns)
{
	ev->t_ns = t_ns;
	ev->mono_ns = event_clock_ns(CLOCK_MONOTONIC);
	ev->wall_ns = event_clock_ns(CLOCK_REALTIME);
}

/* ---- bounded writer ---------------------------------------------------- */

static void event_json_printf(struct event_json *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void event_json_printf(struct event_json *w, const char *fmt, ...)
{
	size_t room;
	va_list ap;
	int n;

	if (w->overflow) {
		return;
	}
	room = w->len - w->pos;
	va_start(ap, fmt);
	n = vsnprintf(w->buf + w->pos, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		/* vsnprintf left a NUL-terminated prefix; keep it that way. */
		w->overflow = true;
		return;
	}
	w->pos += (size_t)n;
}

static void event_json_putc(struct event_json *w, char c)
{
	if (w->overflow) {
		return;
	}
	/* One byte for c, one for the NUL that always follows. */
	if (w->len - w->pos < 2) {
		w->overflow = true;
		return;
	}
	w->buf[w->pos++] = c;
	w->buf[w->pos] = '\0';
}

/*
 * Length of the well-formed UTF-8 sequence at @s (of at most @n bytes), or
 * 0 if it is not one: overlong forms, surrogates and code points above
 * U+10FFFF are rejected, as a strict JSON parser would.
 */
static size_t event_utf8_len(const unsigned char *s, size_t n)
{
	size_t need, i;
	uint32_t cp;

	if (s[0] < 0x80) {
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need) {
		return 0;
	}
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
		return 0;
	}
	return need;
}

/*
 * A quoted, escaped JSON string. Control characters (and DEL, which
 * confuses terminals) become \u00XX; bytes that are not well-formed UTF-8
 * become U+FFFD, so the body always parses whatever a reason contains.
 */
static void event_json_quote(struct event_json *w, const char *s, size_t maxlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strnlen(s, maxlen);
	size_t i = 0, k;

	event_json_putc(w, '"');
	while (i < n) {
		if (p[i] == '"' || p[i] == '\\') {
			event_json_putc(w, '\\');
			event_json_putc(w, (char)p[i]);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			event_json_printf(w, "\\u%04x", p[i]);
			i++;
		} else {
			k = event_utf8_len(p + i, n - i);
			if (k == 0) {
				event_json_printf(w, "\\ufffd");
				i++;
				continue;
			}
			while (k--) {
				event_json_putc(w, (char)p[i++]);
			}
		}
	}
	event_json_putc(w, '"');
}

static void event_json_key(struct event_json *w, const char *key)
{
	if (w->need_comma) {
		event_json_putc(w, ',');
	}
	event_json_quote(w, key, SIZE_MAX);
	event_json_putc(w, ':');
	w->need_comma = true;
}

void event_json_begin(struct event_json *w, char *buf, size_t len)
{
	w->buf = buf;
	w->len = len;
	w->pos = 0;
	w->overflow = len == 0;
	w->need_comma = false;
	if (len > 0) {
		buf[0] = '\0';
	}
	event_json_putc(w, '{');
}

int event_json_end(struct event_json *w)
{
	event_json_putc(w, '}');
	if (w->overflow) {
		return -ENOSPC;
	}
	return (int)w->pos;
}

void event_json_object(struct event_json *w, const char *key)
{
	event_json_key(w, key);
	event_json_putc(w, '{');
	w->need_comma = false;
}

void event_json_array(struct event_json *w, const char *key)
{
	event_json_key(w, key);
	event_json_putc(w, '[');
	w->need_comma = false;
}

void event_json_array_end(struct event_json *w)
{
	event_json_putc(w, ']');
	w->need_comma = true;
}

/* The comma before an array item. */
static void event_json_item(struct event_json *w)
{
	if (w->need_comma) {
		event_json_putc(w, ',');
	}
	w->need_comma = true;
}

void event_json_item_str(struct event_json *w, const char *s, size_t maxlen)
{
	event_json_item(w);
	event_json_quote(w, s, maxlen);
}

void event_json_item_double(struct event_json *w, double v)
{
	event_json_item(w);
	if (!isfinite(v)) {
		event_json_printf(w, "null");
		return;
	}
	event_json_printf(w, "%.9g", v);
}

void event_json_object_end(struct event_json *w)
{
	event_json_putc(w, '}');
	w->need_comma = true;
}

void event_json_u64(struct event_json *w, const char *key, uint64_t v)
{
	event_json_key(w, key);
	event_json_printf(w, "%" PRIu64, v);
}

void event_json_i64(struct event_json *w, const char *key, int64_t v)
{
	event_json_key(w, key);
	event_json_printf(w, "%" PRId64, v);
}

void event_json_double(struct event_json *w, const char *key, double v)
{
	event_json_key(w, key);
	if (!isfinite(v)) {
		event_json_printf(w, "null");
		return;
	}
	/* %.9g: more than enough for µV and %, and never "nan" or "inf". */
	event_json_printf(w, "%.9g", v);
}

void event_json_bool(struct event_json *w, const char *key, bool v)
{
	event_json_key(w, key);
	event_json_printf(w, "%s", v ? "true" : "false");
}

void event_json_str(struct event_json *w, const char *key, const char *s,
		    size_t maxlen)
{
	event_json_key(w, key);
	event_json_quote(w, s, maxlen);
}

void event_json_null(struct event_json *w, const char *key)
{
	event_json_key(w, key);
	event_json_printf(w, "null");
}

/*
 * Nanoseconds as seconds with @digits decimals (3 or 6), from the integer
 * so that no rounding through a double creeps in: truncated toward zero.
 */
static void event_json_ns(struct event_json *w, const char *key, int64_t ns,
			  int digits)
{
	uint64_t mag = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
	uint64_t div = digits == 3 ? 1000000 : 1000;

	event_json_key(w, key);
	event_json_printf(w, "%s%" PRIu64 ".%0*" PRIu64, ns < 0 ? "-" : "",
			  mag / EVENT_NS_PER_S, digits,
			  (mag % EVENT_NS_PER_S) / div);
}

/* Nanoseconds as microseconds with three decimals (ns resolution). */
static void event_json_ns_us(struct event_json *w, const char *key, int64_t ns)
{
	uint64_t mag = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;

	event_json_key(w, key);
	event_json_printf(w, "%s%" PRIu64 ".%03" PRIu64, ns < 0 ? "-" : "",
			  mag / 1000, mag % 1000);
}

/* A sample index as recording time, 6 decimals; only with a known rate. */
static void event_json_rec_s(struct event_json *w, const char *key,
			     uint64_t sample, double rate_hz)
{
	event_json_key(w, key);
	event_json_printf(w, "%.6f", (double)sample / rate_hz);
}

/*
 * A fractional sample index with three decimals (a thousandth of a
 * sample, whatever the index: %g would lose them on long sessions); null
 * when unknown.
 */
static void event_json_sample_x(struct event_json *w, const char *key, double x)
{
	event_json_key(w, key);
	if (!isfinite(x) || x < 0.0) {
		event_json_printf(w, "null");
		return;
	}
	event_json_printf(w, "%.3f", x);
}

/* ISO 8601 UTC with microseconds: "2026-11-27T04:12:33.123456Z". */
static void event_json_wall(struct event_json *w, const char *key, int64_t ns)
{
	int64_t sec = ns / EVENT_NS_PER_S;
	int64_t rem = ns % EVENT_NS_PER_S;
	time_t t;
	struct tm tm;

	/* Floor, not truncate, so times before 1970 still read correctly. */
	if (rem < 0) {
		rem += EVENT_NS_PER_S;
		sec--;
	}
	t = (time_t)sec;
	event_json_key(w, key);
	if (!gmtime_r(&t, &tm)) {
		/* Out of struct tm's range: cannot happen for an int64 of ns. */
		event_json_printf(w, "\"1970-01-01T00:00:00.000000Z\"");
		return;
	}
	event_json_printf(w, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"",
			  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			  tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000));
}

void event_json_common(struct event_json *w, enum event_topic topic,
		       uint64_t seq, const struct event *ev, double rate_hz,
		       bool with_session)
{
	const char *name = event_topic_name(topic);

	event_json_u64(w, "schema", EVENT_SCHEMA_VERSION);
	event_json_str(w, "topic", name ? name : "", SIZE_MAX);
	event_json_u64(w, "seq", seq);
	event_json_i64(w, "t_mono_ns", ev->mono_ns);
	event_json_i64(w, "t_wall_ns", ev->wall_ns);
	event_json_wall(w, "t_wall", ev->wall_ns);
	if (with_session) {
		event_json_ns(w, "t_session_s", ev->t_ns, 6);
	}
	event_json_u64(w, "sample", ev->sample);
	if (rate_hz > 0) {
		event_json_rec_s(w, "t_rec_s", ev->sample, rate_hz);
	}
	event_json_u64(w, "channel", ev->channel);
}

/* ---- per type ---------------------------------------------------------- */

static int event_json_burst(struct event_json *w, const struct event *ev,
			    double rate_hz)
{
	bool onset = ev->type == EVENT_BURST_ONSET;
	uint32_t action = ev->u.burst.action;

	if (onset && action >= EVENT_ARRAY_SIZE(event_action_names)) {
		return -EINVAL;
	}
	event_json_str(w, "edge", onset ? "onset" : "offset", SIZE_MAX);
	event_json_u64(w, "edge_sample", ev->u.burst.edge_sample);
	if (rate_hz > 0) {
		event_json_rec_s(w, "t_edge_s", ev->u.burst.edge_sample, rate_hz);
	}
	event_json_double(w, "envelope", ev->u.burst.envelope);
	event_json_double(w, "threshold", ev->u.burst.threshold);
	event_json_double(w, "baseline", ev->u.burst.baseline);
	if (onset) {
		event_json_str(w, "action", event_action_names[action], SIZE_MAX);
		if (action == EVENT_ACTION_REQUESTED) {
			event_json_u64(w, "train_id", ev->u.burst.train_id);
		}
	}
	return 0;
}

static void event_json_calibrated(struct event_json *w, const struct event *ev)
{
	static const char *const issue_names[] = { "artefacts", "unsteady", "high_rest" };
	unsigned i;

	event_json_str(w, "state", "calibrated", SIZE_MAX);
	event_json_double(w, "baseline", ev->u.calib.baseline);
	event_json_double(w, "spread", ev->u.calib.spread);
	event_json_double(w, "on_threshold", ev->u.calib.on_threshold);
	event_json_double(w, "off_threshold", ev->u.calib.off_threshold);
	/* Empty when the window was clean rest; docs/events.md says each. */
	event_json_array(w, "issues");
	for (i = 0; i < sizeof(issue_names) / sizeof(issue_names[0]); i++) {
		if (ev->u.calib.issues & (1u << i)) {
			event_json_item_str(w, issue_names[i], SIZE_MAX);
		}
	}
	event_json_array_end(w);
	event_json_u64(w, "artefact_samples", ev->u.calib.artefacts);
	event_json_double(w, "unsteady_s", ev->u.calib.unsteady_s);
}

/* @a - @b, saturated: a record with a clock in doubt must not overflow. */
static int64_t event_ns_diff(int64_t a, int64_t b)
{
	int64_t d;

	if (__builtin_sub_overflow(a, b, &d)) {
		return a > b ? INT64_MAX : INT64_MIN;
	}
	return d;
}

static void event_json_pulse(struct event_json *w, const struct event *ev)
{
	event_json_u64(w, "train_id", ev->u.pulse.train_id);
	event_json_u64(w, "index", ev->u.pulse.index);
	event_json_u64(w, "count", ev->u.pulse.count);
	event_json_double(w, "intensity_pct", ev->u.pulse.intensity_pct);
	event_json_u64(w, "width_us", ev->u.pulse.width_us);
	event_json_ns(w, "t_sched_s", ev->u.pulse.sched_ns, 6);
	event_json_ns(w, "t_actual_s", ev->u.pulse.actual_ns, 6);
	event_json_ns_us(w, "late_us", event_ns_diff(ev->u.pulse.actual_ns, ev->u.pulse.sched_ns));
	event_json_double(w, "temperature_c", ev->u.pulse.temperature_c);
	event_json_u64(w, "trigger_sample", ev->u.pulse.trigger_sample);
	event_json_sample_x(w, "sample_at_fire", ev->u.pulse.sample_at_fire);
	if (ev->u.pulse.confirm_ns > 0) {
		event_json_ns_us(w, "confirm_us", ev->u.pulse.confirm_ns);
	} else {
		event_json_null(w, "confirm_us");
	}
	if (ev->u.pulse.didt_valid && isfinite(ev->u.pulse.didt)) {
		event_json_double(w, "didt", ev->u.pulse.didt);
		event_json_u64(w, "didt_train_id", ev->u.pulse.didt_train_id);
		event_json_u64(w, "didt_index", ev->u.pulse.didt_index);
	} else {
		event_json_null(w, "didt");
		event_json_null(w, "didt_train_id");
		event_json_null(w, "didt_index");
	}
}

static void event_json_refusal(struct event_json *w, const struct event *ev)
{
	const char *rule = safety_rule_name(ev->u.refusal.rule);
	const char *unit = safety_rule_unit(ev->u.refusal.rule);

	event_json_str(w, "kind", ev->u.refusal.summary ? "summary" : "refused", SIZE_MAX);
	/* A refusal is never dropped for want of a name: it is a safety record. */
	event_json_str(w, "rule", rule ? rule : "unknown", SIZE_MAX);
	event_json_u64(w, "train_id", ev->u.refusal.train_id);
	event_json_u64(w, "index", ev->u.refusal.index);
	event_json_u64(w, "dropped", ev->u.refusal.dropped);
	event_json_double(w, "value", ev->u.refusal.value);
	event_json_double(w, "limit", ev->u.refusal.limit);
	event_json_str(w, "unit", unit ? unit : "", SIZE_MAX);
	event_json_ns(w, "t_sched_s", ev->u.refusal.sched_ns, 6);
	event_json_u64(w, "refusals", ev->u.refusal.refusals ? ev->u.refusal.refusals : 1);
	if (ev->u.refusal.summary) {
		event_json_ns(w, "t_first_s", ev->u.refusal.first_sched_ns, 6);
	}
}

static void event_json_gap(struct event_json *w, const struct event *ev, double rate_hz)
{
	event_json_str(w, "kind", "gap", SIZE_MAX);
	event_json_u64(w, "first_sample", ev->u.gap.first_sample);
	if (rate_hz > 0) {
		event_json_rec_s(w, "t_first_s", ev->u.gap.first_sample, rate_hz);
		event_json_double(w, "lost_s", (double)ev->u.gap.lost / rate_hz);
	}
	event_json_u64(w, "lost", ev->u.gap.lost);
	event_json_str(w, "measured_by", ev->u.gap.estimated ? "clock" : "timestamps",
		       SIZE_MAX);
	event_json_u64(w, "gaps_total", ev->u.gap.gaps_total);
	event_json_u64(w, "lost_total", ev->u.gap.lost_total);
}

static int event_json_opened(struct event_json *w, const struct event *ev)
{
	/* The order of enum source_time (source.h). */
	static const char *const times[] = { "recording", "hardware", "clock" };
	uint32_t t = ev->u.opened.time_source;

	if (t >= EVENT_ARRAY_SIZE(times)) {
		return -EINVAL;
	}
	event_json_str(w, "kind", "opened", SIZE_MAX);
	event_json_double(w, "rate_hz", ev->u.opened.rate_hz);
	event_json_u64(w, "channels", ev->u.opened.channels);
	event_json_u64(w, "block_frames", ev->u.opened.block_frames);
	event_json_str(w, "time_source", times[t], SIZE_MAX);
	return 0;
}

static int event_json_state(struct event_json *w, const struct event *ev)
{
	const char *state = event_state_name(ev->u.state.state);

	if (!state) {
		return -EINVAL;
	}
	event_json_str(w, "state", state, SIZE_MAX);
	event_json_i64(w, "code", ev->u.state.code);
	/* reason need not be NUL-terminated when it fills the array. */
	event_json_str(w, "reason", ev->u.state.reason, sizeof(ev->u.state.reason));
	event_json_sample_x(w, "sample_at", ev->u.state.at_sample);
	return 0;
}

static void event_json_session(struct event_json *w, const struct event *ev)
{
	bool started = ev->u.session.started != 0;

	event_json_str(w, "state", started ? "session_started" : "session_stopped", SIZE_MAX);
	/* at most EVENT_ID_MAX bytes even without a NUL */
	event_json_str(w, "patient_id", ev->u.session.patient_id, EVENT_ID_MAX);
	event_json_str(w, "session_id", ev->u.session.session_id, EVENT_ID_MAX);
	/* a blinded session: its code, never its arm (docs/sham.md) */
	if (started && ev->u.session.arm_code[0]) {
		event_json_str(w, "arm_code", ev->u.session.arm_code, EVENT_ARM_CODE_MAX);
	}
	if (!started) {
		event_json_u64(w, "pulses_session", ev->u.session.pulses);
	}
}

static int event_json_threshold(struct event_json *w, const struct event *ev)
{
	static const char *const outcomes[EVENT_THRESHOLD_OUTCOME_COUNT] = {
		[EVENT_THRESHOLD_FOUND] = "found",
		[EVENT_THRESHOLD_CAPPED] = "capped",
		[EVENT_THRESHOLD_LIMIT] = "limit",
		[EVENT_THRESHOLD_STOPPED] = "stopped",
	};

	if (!ev->u.threshold.result) {
		event_json_str(w, "kind", "probe", SIZE_MAX);
		event_json_u64(w, "probe", ev->u.threshold.probe);
		event_json_double(w, "intensity_pct", ev->u.threshold.intensity_pct);
		event_json_double(w, "amplitude_uv", ev->u.threshold.amplitude_uv);
		event_json_bool(w, "response", ev->u.threshold.response != 0);
		event_json_double(w, "sample_at_fire", ev->u.threshold.sample_at_fire);
		event_json_u64(w, "pulses", ev->u.threshold.pulses);
		event_json_double(w, "cap_pct", ev->u.threshold.cap_pct);
		return 0;
	}
	if (ev->u.threshold.outcome >= EVENT_THRESHOLD_OUTCOME_COUNT) {
		return -EINVAL;
	}
	event_json_str(w, "kind", "result", SIZE_MAX);
	event_json_str(w, "outcome", outcomes[ev->u.threshold.outcome], SIZE_MAX);
	event_json_double(w, "threshold_pct", ev->u.threshold.threshold_pct);
	event_json_u64(w, "pulses", ev->u.threshold.pulses);
	event_json_double(w, "cap_pct", ev->u.threshold.cap_pct);
	event_json_str(w, "reason", ev->u.threshold.reason, EVENT_REASON_MAX);
	return 0;
}

static int event_json_record(struct event_json *w, const struct event *ev)
{
	static const char *const kinds[EVENT_RECORD_KIND_COUNT] = {
		[EVENT_RECORD_OPENED] = "opened",
		[EVENT_RECORD_CLOSED] = "closed",
		[EVENT_RECORD_LOST] = "lost",
		[EVENT_RECORD_ERROR] = "error",
		[EVENT_RECORD_REPAIRED] = "repaired",
	};
	uint32_t kind = ev->u.record.kind;

	if (kind >= EVENT_RECORD_KIND_COUNT) {
		return -EINVAL;
	}
	event_json_str(w, "kind", kinds[kind], SIZE_MAX);
	event_json_str(w, "file", ev->u.record.file, sizeof(ev->u.record.file));
	event_json_u64(w, "records", ev->u.record.records);
	event_json_u64(w, "lost", ev->u.record.lost);
	event_json_u64(w, "annotations", ev->u.record.annotations);
	event_json_u64(w, "clipped", ev->u.record.clipped);
	event_json_i64(w, "code", ev->u.record.code);
	return 0;
}

static int event_json_assess(struct event_json *w, const struct event *ev, double rate_hz)
{
	static const char *const phases[] = { "pre", "post" };
	static const char *const kinds[] = { "rest", "stretch", "cci", "mvc" };
	uint32_t n = ev->u.assess.channels, c;

	if (ev->u.assess.phase >= EVENT_ARRAY_SIZE(phases) ||
	    ev->u.assess.kind >= EVENT_ARRAY_SIZE(kinds) || n > EVENT_ASSESS_CHANNELS) {
		return -EINVAL;
	}
	event_json_str(w, "state", "assessment", SIZE_MAX);
	event_json_str(w, "phase", phases[ev->u.assess.phase], SIZE_MAX);
	event_json_str(w, "kind", kinds[ev->u.assess.kind], SIZE_MAX);
	event_json_u64(w, "first_sample", ev->u.assess.first_sample);
	if (rate_hz > 0) {
		event_json_rec_s(w, "t_first_s", ev->u.assess.first_sample, rate_hz);
		event_json_double(w, "duration_s", (double)ev->u.assess.samples / rate_hz);
	}
	event_json_u64(w, "samples", ev->u.assess.samples);
	event_json_bool(w, "stored", ev->u.assess.code == 0);
	event_json_i64(w, "code", ev->u.assess.code);
	event_json_array(w, "rms_uv");
	for (c = 0; c < n; c++) {
		event_json_item_double(w, ev->u.assess.rms_uv[c]);
	}
	event_json_array_end(w);
	if (ev->u.assess.kind == 1) {
		/* stretch: the fit is null when it was refused (too few stretches, too narrow) */
		event_json_u64(w, "muscle", ev->u.assess.muscle);
		event_json_str(w, "direction", ev->u.assess.direction < 0 ? "decreasing" :
			       "increasing", SIZE_MAX);
		event_json_u64(w, "stretches", ev->u.assess.stretches);
		event_json_u64(w, "n", ev->u.assess.fitted);
		event_json_double(w, "tsrt_deg", ev->u.assess.tsrt_deg);
		event_json_double(w, "slope_s", ev->u.assess.slope_s);
		event_json_double(w, "r2", ev->u.assess.r2);
		return 0;
	}
	if (ev->u.assess.kind == 2 || ev->u.assess.kind == 3) {
		/* mvc: rms_uv is each channel's MVC reference; cci: the pair's index */
		event_json_u64(w, "windows", ev->u.assess.windows);
		event_json_double(w, "window_s", 0.2);
		if (ev->u.assess.kind == 2) {
			event_json_u64(w, "agonist", ev->u.assess.agonist);
			event_json_u64(w, "antagonist", ev->u.assess.antagonist);
			event_json_double(w, "cci_pct", ev->u.assess.cci_pct);
			event_json_str(w, "formula", "falconer_winter", SIZE_MAX);
		}
		return 0;
	}
	event_json_array(w, "bursts_per_min");
	for (c = 0; c < n; c++) {
		event_json_item_double(w, ev->u.assess.bursts_per_min[c]);
	}
	event_json_array_end(w);
	event_json_array(w, "active_pct");
	for (c = 0; c < n; c++) {
		event_json_item_double(w, ev->u.assess.active_pct[c]);
	}
	event_json_array_end(w);
	return 0;
}

int event_to_json(const struct event *ev, uint64_t seq, double rate_hz,
		  char *buf, size_t len)
{
	enum event_topic topic = event_topic_of(ev);
	struct event_json w;
	int ret = 0;

	if (topic == EVENT_TOPIC_COUNT) {
		return -EINVAL;
	}
	event_json_begin(&w, buf, len);
	event_json_common(&w, topic, seq, ev, rate_hz, true);
	switch (ev->type) {
	case EVENT_BURST_ONSET:
	case EVENT_BURST_OFFSET:
		ret = event_json_burst(&w, ev, rate_hz);
		break;
	case EVENT_CALIBRATED:
		event_json_calibrated(&w, ev);
		break;
	case EVENT_PULSE:
		event_json_pulse(&w, ev);
		break;
	case EVENT_REFUSAL:
		event_json_refusal(&w, ev);
		break;
	case EVENT_STATE:
		ret = event_json_state(&w, ev);
		break;
	case EVENT_GAP:
		event_json_gap(&w, ev, rate_hz);
		break;
	case EVENT_SOURCE_OPENED:
		ret = event_json_opened(&w, ev);
		break;
	case EVENT_SESSION:
		event_json_session(&w, ev);
		break;
	case EVENT_RECORD:
		ret = event_json_record(&w, ev);
		break;
	case EVENT_ASSESS:
		ret = event_json_assess(&w, ev, rate_hz);
		break;
	case EVENT_THRESHOLD:
		ret = event_json_threshold(&w, ev);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	if (ret < 0) {
		return ret;
	}
	return event_json_end(&w);
}
