/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl: command-line client of rpmsd.
 *
 *   rpmsctl tail   print the event stream (docs/events.md), one line per
 *                  event, for people or (--json) for programs
 *   rpmsctl status|arm|disarm|calibrate|session|set|keygen
 *                  the control socket (docs/control.md, rpmsctl_control.c)
 *   rpmsctl course a patient's course from the course database, adverse-event
 *                  notes (docs/course_db.md, rpmsctl_course.c)
 *
 * Exit status: 0 done (count reached, interrupted, or the idle timeout
 * after at least one event), 1 ZeroMQ error, 2 usage error, 3 idle
 * timeout before any event.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zmq.h>

#include "rpmsd-build.h"
#include "rpmsctl_blind.h"
#include "rpmsctl_control.h"
#include "rpmsctl_course.h"
#include "rpmsctl_score.h"
#include "rpmsctl_threshold.h"

#define RPMSCTL_DEFAULT_ENDPOINT "tcp://127.0.0.1:5560"
#define RPMSCTL_MAX_TOPICS 32
#define RPMSCTL_POLL_MS 200	/* how often a pending signal is noticed */
#define RPMSCTL_LINE_MAX 1024

enum {
	RPMSCTL_EXIT_OK = 0,
	RPMSCTL_EXIT_ZMQ = 1,
	RPMSCTL_EXIT_USAGE = 2,
	RPMSCTL_EXIT_TIMEOUT = 3,
};

struct rpmsctl_tail {
	const char *endpoint;
	const char *server_key;		/* CURVE: Z85, or a file holding it */
	const char *secret_file;	/* CURVE: this subscriber's secret key */
	const char *topics[RPMSCTL_MAX_TOPICS];
	size_t n_topics;
	bool json;
	bool heartbeats;	/* asked for with --topic rpms.heartbeat */
	bool emg;		/* asked for with --topic rpms.emg */
	unsigned long count;	/* 0: no limit */
	double timeout_s;	/* 0: none */
};

/* Topics whose sequence numbers are checked for gaps. */
static const char *const rpmsctl_topics[] = {
	"rpms.burst", "rpms.stim", "rpms.safety", "rpms.state", "rpms.source",
	"rpms.heartbeat", "rpms.record", "rpms.emg", "rpms.threshold",
};
#define RPMSCTL_N_TOPICS (sizeof(rpmsctl_topics) / sizeof(rpmsctl_topics[0]))

struct rpmsctl_seq {
	bool seen;
	uint64_t last;
};

static volatile sig_atomic_t rpmsctl_interrupted;

static void rpmsctl_usage(FILE *f)
{
	fprintf(f,
		"Usage: rpmsctl [OPTIONS] COMMAND [OPTIONS]\n"
		"       rpmsctl --help | --version\n"
		"Options may come before or after the command.\n"
		"\n"
		"Commands:\n"
		"  tail      print rpmsd's events as they happen\n"
		"  status, arm, disarm, calibrate, session, set, assess, keygen: see below\n"
		"  course    a patient's course from the course database: see below\n"
		"  score     enter clinical scores (MAS, Tardieu, FM-UE): see below\n"
		"  unblind   open a blinded trial's sealed audit (rpmsctl unblind --help)\n"
		"\n"
		"Options of tail:\n"
		"  -e, --endpoint E   event endpoint to connect to (default %s)\n"
		"  -t, --topic T      subscribe to topic prefix T; repeatable\n"
		"                     (default: rpms., every topic)\n"
		"  -j, --json         print each event's JSON body as received, one per line\n"
		"  -n, --count N      exit after N events\n"
		"  -T, --timeout SEC  exit after SEC seconds without an event\n"
		"      --server-key KEY   CURVE: the stream's public key (Z85, or a file\n"
		"                         holding it; publish.curve_server_secret_file's)\n"
		"      --secret-key FILE  CURVE: this subscriber's secret key (rpmsctl keygen;\n"
		"                         its public key in publish.curve_allowed_keys)\n"
		"  -h, --help         show this help\n"
		"\n"
		"Events are printed in the order they happened (rpmsd publishes them\n"
		"so), each at its recording time: t_rec_s, the position of the last\n"
		"EMG sample the daemon had read when it happened (for a pulse, within\n"
		"one block of its firing). Heartbeats (rpms.heartbeat) and the EMG\n"
		"stream (rpms.emg) are printed only when asked for with --topic.\n"
		"Lost events (gaps in a topic's sequence numbers) are reported on\n"
		"standard error.\n"
		"\n"
		"Exit status of tail: 0 count reached, interrupted, or timeout after some\n"
		"events; 1 ZeroMQ or key file error; 2 usage error; 3 timeout before any\n"
		"event (with CURVE: also when the stream refused this subscriber's key;\n"
		"the daemon's log says why).\n\n"
		"Options of unblind (a blinded trial's sealed audit, docs/sham.md):\n"
		"  -k, --key FILE     the statistician's secret key file (required)\n"
		"  -a, --audit FILE   the audit file (default /var/lib/rpmsd/blind-audit)\n"
		"Each record is printed as a JSON line, after the unblind itself is\n"
		"appended to the audit. Exit status 4 when a record does not open.\n\n",
		RPMSCTL_DEFAULT_ENDPOINT);
	rpmsctl_control_usage(f);
	rpmsctl_course_usage(f);
	rpmsctl_score_usage(f);
}

static void rpmsctl_on_signal(int sig)
{
	(void)sig;
	rpmsctl_interrupted = 1;
}

static double rpmsctl_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the human line ---------------------------------------------------- */

/* Whether @c is a UTF-8 continuation byte. */
static bool rpmsctl_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/*
 * Make the @len bytes at @s safe for a terminal, in place: each C0
 * control, DEL, C1 control (U+0080-U+009F) and byte that is not part of
 * valid UTF-8 becomes one '?'; everything else is kept.
 * @return the new length (never more than @len); @s is NUL-terminated
 */
static size_t rpmsctl_sanitize(char *s, size_t len)
{
	const unsigned char *in = (const unsigned char *)s;
	size_t r = 0, w = 0, n;
	unsigned char c;

	while (r < len) {
		c = in[r];
		n = 0;
		if (c >= 0x20 && c < 0x7f) {
			n = 1;
		} else if (c >= 0xc2 && c <= 0xdf) {
			/* Two bytes: U+0080-U+07FF, of which U+0080-U+009F are C1. */
			if (r + 1 < len && rpmsctl_cont(in[r + 1])) {
				if (c == 0xc2 && in[r + 1] < 0xa0) {
					s[w++] = '?';
					r += 2;
					continue;
				}
				n = 2;
			}
		} else if (c >= 0xe0 && c <= 0xef) {
			/* Three bytes: no overlong forms, no surrogates. */
			if (r + 2 < len && rpmsctl_cont(in[r + 1]) &&
			    rpmsctl_cont(in[r + 2]) &&
			    !(c == 0xe0 && in[r + 1] < 0xa0) &&
			    !(c == 0xed && in[r + 1] >= 0xa0)) {
				n = 3;
			}
		} else if (c >= 0xf0 && c <= 0xf4) {
			/* Four bytes: no overlong forms, nothing past U+10FFFF. */
			if (r + 3 < len && rpmsctl_cont(in[r + 1]) &&
			    rpmsctl_cont(in[r + 2]) && rpmsctl_cont(in[r + 3]) &&
			    !(c == 0xf0 && in[r + 1] < 0x90) &&
			    !(c == 0xf4 && in[r + 1] >= 0x90)) {
				n = 4;
			}
		}
		if (n == 0) {
			s[w++] = '?';
			r++;
			continue;
		}
		memmove(s + w, s + r, n);
		w += n;
		r += n;
	}
	s[w] = '\0';
	return w;
}

struct rpmsctl_line {
	char buf[RPMSCTL_LINE_MAX];
	size_t len;
};

static void rpmsctl_add(struct rpmsctl_line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rpmsctl_add(struct rpmsctl_line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->len >= sizeof(l->buf) - 1) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n > 0) {
		l->len += (size_t)n;
		if (l->len > sizeof(l->buf) - 1) {
			l->len = sizeof(l->buf) - 1;
		}
	}
}

/* A number member, NAN when missing or null. */
static double rpmsctl_num(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static long long rpmsctl_int(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

static const char *rpmsctl_str(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s ? s : "";
}

/* @v with @prec decimals into @buf, or "?" when unknown. */
static const char *rpmsctl_fmt(char *buf, size_t len, double v, int prec)
{
	if (!isfinite(v)) {
		return "?";
	}
	snprintf(buf, len, "%.*f", prec, v);
	return buf;
}

/*
 * The 0-based index member @key of @j as a 1-based ordinal into @buf, or
 * "?" when missing or negative. Unsigned, so even LLONG_MAX + 1 is exact.
 */
static const char *rpmsctl_ordinal(char *buf, size_t len, json_t *j,
				   const char *key)
{
	json_t *v = json_object_get(j, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		return "?";
	}
	snprintf(buf, len, "%llu",
		 (unsigned long long)json_integer_value(v) + 1);
	return buf;
}

/* Label column: 14 wide, so the details line up. */
static void rpmsctl_label(struct rpmsctl_line *l, const char *label)
{
	rpmsctl_add(l, "%-13s ", label);
}

static void rpmsctl_burst(struct rpmsctl_line *l, json_t *j)
{
	char a[32], b[32];
	const char *edge = rpmsctl_str(j, "edge");
	const char *action = rpmsctl_str(j, "action");
	double t_edge = rpmsctl_num(j, "t_edge_s");

	rpmsctl_add(l, "burst %-7s ", edge);
	rpmsctl_add(l, "ch%lld  %s at ", rpmsctl_int(j, "channel"), edge);
	if (isfinite(t_edge)) {
		rpmsctl_add(l, "%.3f s", t_edge);
	} else {
		rpmsctl_add(l, "sample %lld", rpmsctl_int(j, "edge_sample"));
	}
	if (strcmp(edge, "onset") != 0) {
		return;
	}
	rpmsctl_add(l, "  env %s > thr %s",
		    rpmsctl_fmt(a, sizeof(a), rpmsctl_num(j, "envelope"), 1),
		    rpmsctl_fmt(b, sizeof(b), rpmsctl_num(j, "threshold"), 1));
	if (strcmp(action, "requested") == 0) {
		rpmsctl_add(l, "  -> train %lld requested", rpmsctl_int(j, "train_id"));
	} else if (*action && strcmp(action, "none") != 0) {
		rpmsctl_add(l, "  -> %s", action);
	}
}

static void rpmsctl_pulse(struct rpmsctl_line *l, json_t *j)
{
	char label[64], idx[32], a[32], b[32], c[32];
	double temp = rpmsctl_num(j, "temperature_c");

	snprintf(label, sizeof(label), "pulse %s/%lld",
		 rpmsctl_ordinal(idx, sizeof(idx), j, "index"),
		 rpmsctl_int(j, "count"));
	rpmsctl_label(l, label);
	rpmsctl_add(l, "train %lld  %s %%  %lld us  late %s us",
		    rpmsctl_int(j, "train_id"),
		    rpmsctl_fmt(a, sizeof(a), rpmsctl_num(j, "intensity_pct"), 1),
		    rpmsctl_int(j, "width_us"),
		    rpmsctl_fmt(b, sizeof(b), rpmsctl_num(j, "late_us"), 0));
	if (isfinite(temp)) {
		rpmsctl_add(l, "  coil %s C", rpmsctl_fmt(c, sizeof(c), temp, 1));
	}
}

static void rpmsctl_refusal(struct rpmsctl_line *l, json_t *j)
{
	char idx[32];
	double value = rpmsctl_num(j, "value");
	double limit = rpmsctl_num(j, "limit");
	const char *unit = rpmsctl_str(j, "unit");
	const char *cmp = "vs";

	if (value < limit) {
		cmp = "<";
	} else if (value > limit) {
		cmp = ">";
	} else if (value == limit) {
		cmp = "=";
	}
	rpmsctl_label(l, "REFUSED");
	/* a summary stands for several refusals of one rule (docs/events.md) */
	if (rpmsctl_int(j, "refusals") > 1) {
		rpmsctl_add(l, "x%lld since %.3f s, last: ", rpmsctl_int(j, "refusals"),
			    rpmsctl_num(j, "t_first_s"));
	}
	rpmsctl_add(l, "train %lld pulse %s: %s (value %g %s limit %g%s%s)",
		    rpmsctl_int(j, "train_id"),
		    rpmsctl_ordinal(idx, sizeof(idx), j, "index"),
		    rpmsctl_str(j, "rule"), value, cmp, limit, *unit ? " " : "", unit);
	if (rpmsctl_int(j, "dropped") > 0) {
		rpmsctl_add(l, ", %lld dropped", rpmsctl_int(j, "dropped"));
	}
}

/* A calibration in doubt says why, so the clinician at the rig sees it. */
static void rpmsctl_issues(struct rpmsctl_line *l, json_t *issues)
{
	size_t i;

	if (!json_is_array(issues) || json_array_size(issues) == 0) {
		return;
	}
	rpmsctl_add(l, "  IN DOUBT:");
	for (i = 0; i < json_array_size(issues); i++) {
		const char *s = json_string_value(json_array_get(issues, i));

		rpmsctl_add(l, "%s%s", i ? ", " : " ", s ? s : "?");
	}
	rpmsctl_add(l, " (rpmsctl calibrate at rest)");
}

static void rpmsctl_state(struct rpmsctl_line *l, json_t *j)
{
	char a[32], b[32], c[32];
	const char *state = rpmsctl_str(j, "state");
	const char *reason = rpmsctl_str(j, "reason");
	long long code = rpmsctl_int(j, "code");

	if (strcmp(state, "calibrated") == 0) {
		rpmsctl_label(l, "calibrated");
		rpmsctl_add(l, "ch%lld  baseline %s  on %s  off %s",
			    rpmsctl_int(j, "channel"),
			    rpmsctl_fmt(a, sizeof(a), rpmsctl_num(j, "baseline"), 1),
			    rpmsctl_fmt(b, sizeof(b), rpmsctl_num(j, "on_threshold"), 1),
			    rpmsctl_fmt(c, sizeof(c), rpmsctl_num(j, "off_threshold"), 1));
		rpmsctl_issues(l, json_object_get(j, "issues"));
		return;
	}
	if (strcmp(state, "overflow") == 0) {
		rpmsctl_label(l, "OVERFLOW");
		rpmsctl_add(l, "ring %s: %lld events lost since start",
			    rpmsctl_str(j, "ring"), rpmsctl_int(j, "dropped"));
		return;
	}
	rpmsctl_add(l, "state %s", state);
	if (*reason) {
		rpmsctl_add(l, " (%s)", reason);
	}
	if (code < 0 && code > -4096) {
		rpmsctl_add(l, ": %s", strerror((int)-code));
	} else if (code != 0) {
		rpmsctl_add(l, ": code %lld", code);
	}
}

static void rpmsctl_source(struct rpmsctl_line *l, json_t *j)
{
	char a[32];
	const char *kind = rpmsctl_str(j, "kind");

	if (strcmp(kind, "gap") == 0) {
		rpmsctl_label(l, "GAP");
		rpmsctl_add(l, "%lld samples missing (%s s) from sample %lld, measured by %s",
			    rpmsctl_int(j, "lost"), rpmsctl_fmt(a, sizeof(a),
								rpmsctl_num(j, "lost_s"), 3),
			    rpmsctl_int(j, "first_sample"), rpmsctl_str(j, "measured_by"));
		return;
	}
	rpmsctl_label(l, "source");
	rpmsctl_add(l, "%s: %lld channel(s) at %s Hz, %lld-frame blocks, time from %s", kind,
		    rpmsctl_int(j, "channels"), rpmsctl_fmt(a, sizeof(a),
							    rpmsctl_num(j, "rate_hz"), 0),
		    rpmsctl_int(j, "block_frames"), rpmsctl_str(j, "time_source"));
}

static void rpmsctl_heartbeat(struct rpmsctl_line *l, json_t *j)
{
	json_t *drops = json_object_get(j, "ring_drops");
	const char *name;
	json_t *v;

	rpmsctl_label(l, "heartbeat");
	rpmsctl_add(l, "%s  samples %lld  pulses %lld  sent %lld",
		    json_is_true(json_object_get(j, "armed")) ? "armed" : "disarmed",
		    rpmsctl_int(j, "samples"), rpmsctl_int(j, "pulses"),
		    rpmsctl_int(j, "sent"));
	if (json_object_size(drops) > 0) {
		rpmsctl_add(l, "  ring_drops");
		json_object_foreach(drops, name, v) {
			rpmsctl_add(l, " %s=%lld", name, json_integer_value(v));
		}
	}
}

static void rpmsctl_record(struct rpmsctl_line *l, json_t *j)
{
	const char *kind = rpmsctl_str(j, "kind");
	long long code = rpmsctl_int(j, "code");

	rpmsctl_label(l, "record");
	rpmsctl_add(l, "%s %s: %lld records", kind, rpmsctl_str(j, "file"),
		    rpmsctl_int(j, "records"));
	if (rpmsctl_int(j, "lost") > 0) {
		rpmsctl_add(l, ", %lld samples lost", rpmsctl_int(j, "lost"));
	}
	if (code < 0 && code > -4096) {
		rpmsctl_add(l, ": %s", strerror((int)-code));
	}
}

static void rpmsctl_threshold_event(struct rpmsctl_line *l, json_t *j)
{
	rpmsctl_label(l, "threshold");
	if (!strcmp(rpmsctl_str(j, "kind"), "probe")) {
		rpmsctl_add(l, "probe %lld at %g %%: %.1f uV%s", rpmsctl_int(j, "probe"),
			    rpmsctl_num(j, "intensity_pct"), rpmsctl_num(j, "amplitude_uv"),
			    json_is_true(json_object_get(j, "response")) ? ", response" : "");
	} else if (!strcmp(rpmsctl_str(j, "outcome"), "found")) {
		rpmsctl_add(l, "motor threshold %g %% (%lld pulses)", rpmsctl_num(j, "threshold_pct"),
			    rpmsctl_int(j, "pulses"));
	} else {
		rpmsctl_add(l, "%s after %lld pulses: %s", rpmsctl_str(j, "outcome"),
			    rpmsctl_int(j, "pulses"), rpmsctl_str(j, "reason"));
	}
}

/* One human line for the event @j on @topic. */
static void rpmsctl_print_human(const char *topic, json_t *j, const char *body,
				size_t len)
{
	struct rpmsctl_line l = { .len = 0 };
	/*
	 * One time base for every line, the recording's (t_rec_s): the
	 * position of the last sample the daemon had consumed when the event
	 * happened, pulses included. The session clock (a pulse's t_actual_s)
	 * has another origin; mixing the two put pulses beside the wrong
	 * bursts. rpmsd publishes in this order.
	 */
	double t = rpmsctl_num(j, "t_rec_s");

	if (isfinite(t)) {
		rpmsctl_add(&l, "%8.3f s  ", t);
	} else {
		rpmsctl_add(&l, "%12s", "");
	}
	if (strcmp(topic, "rpms.burst") == 0) {
		rpmsctl_burst(&l, j);
	} else if (strcmp(topic, "rpms.stim") == 0) {
		rpmsctl_pulse(&l, j);
	} else if (strcmp(topic, "rpms.safety") == 0) {
		rpmsctl_refusal(&l, j);
	} else if (strcmp(topic, "rpms.state") == 0) {
		rpmsctl_state(&l, j);
	} else if (strcmp(topic, "rpms.source") == 0) {
		rpmsctl_source(&l, j);
	} else if (strcmp(topic, "rpms.heartbeat") == 0) {
		rpmsctl_heartbeat(&l, j);
	} else if (strcmp(topic, "rpms.record") == 0) {
		rpmsctl_record(&l, j);
	} else if (strcmp(topic, "rpms.threshold") == 0) {
		rpmsctl_threshold_event(&l, j);
	} else {
		/* A topic newer than this rpmsctl: show it raw. */
		rpmsctl_label(&l, topic);
		rpmsctl_add(&l, "%.*s", (int)len, body);
	}
	/*
	 * Strings from the message (topic, reason, names, a raw body) must
	 * not drive the terminal: no escape sequences, no control bytes.
	 */
	l.buf[l.len] = '\0';
	l.len = rpmsctl_sanitize(l.buf, l.len);
	/* Trailing blanks from a padded label with nothing after it. */
	while (l.len > 0 && l.buf[l.len - 1] == ' ') {
		l.len--;
	}
	l.buf[l.len] = '\0';
	puts(l.buf);
}

/* ---- tail -------------------------------------------------------------- */

/* Report lost events of a topic: seq should grow by exactly one. */
static void rpmsctl_check_seq(struct rpmsctl_seq *seqs, const char *topic,
			      json_t *j, bool report)
{
	json_t *v = json_object_get(j, "seq");
	uint64_t seq;
	size_t i;

	/* A negative seq is no sequence number: ignored, like a missing one. */
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		return;
	}
	seq = (uint64_t)json_integer_value(v);
	for (i = 0; i < RPMSCTL_N_TOPICS; i++) {
		if (strcmp(topic, rpmsctl_topics[i]) == 0) {
			break;
		}
	}
	if (i == RPMSCTL_N_TOPICS) {
		return;
	}
	if (seqs[i].seen && report) {
		/* seq > last first, so nothing below can wrap. */
		if (seq > seqs[i].last && seq - seqs[i].last > 1) {
			fprintf(stderr, "rpmsctl: %s: %" PRIu64 " events lost (seq %" PRIu64 " to %" PRIu64 ")\n",
				topic, seq - seqs[i].last - 1, seqs[i].last + 1, seq - 1);
		} else if (seq <= seqs[i].last) {
			fprintf(stderr, "rpmsctl: %s: sequence restarted at %" PRIu64 " (rpmsd restarted?)\n",
				topic, seq);
		}
	}
	seqs[i].seen = true;
	seqs[i].last = seq;
}

/* Whether --topic @t asks for topic @name specifically, not just everything. */
static bool rpmsctl_wants(const char *t, const char *name)
{
	size_t n = strlen(t);

	return n > strlen("rpms.") && n <= strlen(name) && strncmp(t, name, n) == 0;
}

/*
 * Parse the options of tail.
 * @return 0 to go on, -1 when --help was printed, or an exit status
 */
static int rpmsctl_tail_parse(int argc, char **argv, struct rpmsctl_tail *o)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "topic", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "server-key", required_argument, NULL, 'S' },
		{ "secret-key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	o->endpoint = RPMSCTL_DEFAULT_ENDPOINT;
	opterr = 0;
	optind = 0;	/* afresh: main has run getopt over the options before the command */
	while ((c = getopt_long(argc, argv, ":e:t:jn:T:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o->endpoint = optarg;
			break;
		case 't':
			if (o->n_topics == RPMSCTL_MAX_TOPICS) {
				return rpmsctl_control_usage_error("too many --topic options (at most %d)",
							   RPMSCTL_MAX_TOPICS);
			}
			o->topics[o->n_topics++] = optarg;
			o->heartbeats = o->heartbeats || rpmsctl_wants(optarg, "rpms.heartbeat");
			o->emg = o->emg || rpmsctl_wants(optarg, "rpms.emg");
			break;
		case 'j':
			o->json = true;
			break;
		case 'S':
			o->server_key = optarg;
			break;
		case 'K':
			o->secret_file = optarg;
			break;
		case 'n':
			errno = 0;
			o->count = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || o->count == 0 ||
			    optarg[0] == '-') {
				return rpmsctl_control_usage_error("--count: '%s' is not a positive integer",
							   optarg);
			}
			break;
		case 'T':
			errno = 0;
			o->timeout_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o->timeout_s) ||
			    o->timeout_s <= 0) {
				return rpmsctl_control_usage_error("--timeout: '%s' is not a positive number of seconds",
							   optarg);
			}
			break;
		case 'h':
			rpmsctl_usage(stdout);
			return -1;
		case ':':
			return rpmsctl_control_usage_error("option '%s' needs a value",
						   argv[optind - 1]);
		default:
			if (optopt) {
				return rpmsctl_control_usage_error("unknown option '-%c'", optopt);
			}
			return rpmsctl_control_usage_error("unknown or ambiguous option '%s'",
						   argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return rpmsctl_control_usage_error("tail: unexpected argument '%s'", argv[optind]);
	}
	if (o->n_topics == 0) {
		o->topics[o->n_topics++] = "rpms.";
	}
	/* the key files now: a bad one is a usage or local error, not a silent stream */
	c = rpmsctl_control_curve(NULL, o->server_key, o->secret_file);
	return c == RPMSCTL_CONTROL_LOCAL ? RPMSCTL_EXIT_ZMQ : c;
}

/*
 * Receive one message: topic frame, body frame, and any further frames
 * (future binary payloads), which are skipped.
 * @return 1 with a message, 0 for a malformed one, -errno on error
 */
static int rpmsctl_recv(void *sock, zmq_msg_t *topic, zmq_msg_t *body)
{
	zmq_msg_t extra;
	bool more;

	if (zmq_msg_recv(topic, sock, ZMQ_DONTWAIT) < 0) {
		return -errno;
	}
	if (!zmq_msg_more(topic)) {
		return 0;
	}
	/* The frames of a message arrive together: no need to wait for them. */
	if (zmq_msg_recv(body, sock, ZMQ_DONTWAIT) < 0) {
		return -errno;
	}
	more = zmq_msg_more(body);
	while (more) {
		zmq_msg_init(&extra);
		if (zmq_msg_recv(&extra, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&extra);
			return -errno;
		}
		more = zmq_msg_more(&extra);
		zmq_msg_close(&extra);
	}
	return 1;
}

/*
 * Handle one message.
 * @return true if a line was printed
 */
static bool rpmsctl_handle(const struct rpmsctl_tail *o, struct rpmsctl_seq *seqs,
			   zmq_msg_t *tmsg, zmq_msg_t *bmsg)
{
	char topic[128], shown[128];
	const char *body = zmq_msg_data(bmsg);
	size_t len = zmq_msg_size(bmsg);
	size_t tlen = zmq_msg_size(tmsg);
	bool show;
	json_error_t jerr;
	json_t *j;

	if (tlen >= sizeof(topic)) {
		tlen = sizeof(topic) - 1;
	}
	memcpy(topic, zmq_msg_data(tmsg), tlen);
	topic[tlen] = '\0';
	/* Streams rather than events: only when asked for by name. */
	show = (o->heartbeats || strcmp(topic, "rpms.heartbeat") != 0) &&
	       (o->emg || strcmp(topic, "rpms.emg") != 0);

	j = json_loadb(body, len, 0, &jerr);
	if (!j) {
		/* Both may quote the sender's bytes: keep them off the terminal. */
		memcpy(shown, topic, tlen + 1);
		rpmsctl_sanitize(shown, tlen);
		jerr.text[sizeof(jerr.text) - 1] = '\0';
		rpmsctl_sanitize(jerr.text, strlen(jerr.text));
		fprintf(stderr, "rpmsctl: %s: body is not JSON: %s\n", shown, jerr.text);
		if (show && o->json) {
			/* Still passed on exactly: the reader decides what to do. */
			fwrite(body, 1, len, stdout);
			putchar('\n');
			fflush(stdout);
			return true;
		}
		return false;
	}
	rpmsctl_check_seq(seqs, topic, j, show);
	if (show) {
		if (o->json) {
			fwrite(body, 1, len, stdout);
			putchar('\n');
		} else {
			rpmsctl_print_human(topic, j, body, len);
		}
		fflush(stdout);
	}
	json_decref(j);
	return show;
}

static int rpmsctl_tail(int argc, char **argv)
{
	struct rpmsctl_tail o = { 0 };
	struct rpmsctl_seq seqs[RPMSCTL_N_TOPICS] = { { 0 } };
	struct sigaction sa;
	zmq_pollitem_t item;
	zmq_msg_t tmsg, bmsg;
	unsigned long printed = 0;
	double idle_deadline = 0, now;
	int linger = 0, ret, rc, wait_ms;
	void *ctx, *sock;
	size_t i;

	ret = rpmsctl_tail_parse(argc, argv, &o);
	if (ret < 0) {
		return RPMSCTL_EXIT_OK;
	}
	if (ret > 0) {
		return ret;
	}

	/* No SA_RESTART: the signal must interrupt zmq_poll. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = rpmsctl_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	ret = RPMSCTL_EXIT_ZMQ;
	ctx = zmq_ctx_new();
	if (!ctx) {
		fprintf(stderr, "rpmsctl: cannot create a ZeroMQ context: %s\n",
			zmq_strerror(errno));
		return RPMSCTL_EXIT_ZMQ;
	}
	sock = zmq_socket(ctx, ZMQ_SUB);
	if (!sock) {
		fprintf(stderr, "rpmsctl: cannot create a SUB socket: %s\n",
			zmq_strerror(errno));
		goto err_ctx;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (rpmsctl_control_curve(sock, o.server_key, o.secret_file) != 0) {
		goto err_sock;
	}
	for (i = 0; i < o.n_topics; i++) {
		if (zmq_setsockopt(sock, ZMQ_SUBSCRIBE, o.topics[i],
				   strlen(o.topics[i])) != 0) {
			fprintf(stderr, "rpmsctl: cannot subscribe to '%s': %s\n",
				o.topics[i], zmq_strerror(errno));
			goto err_sock;
		}
	}
	if (zmq_connect(sock, o.endpoint) != 0) {
		fprintf(stderr, "rpmsctl: cannot connect to '%s': %s\n", o.endpoint,
			zmq_strerror(errno));
		goto err_sock;
	}

	item = (zmq_pollitem_t){ .socket = sock, .events = ZMQ_POLLIN };
	if (o.timeout_s > 0) {
		idle_deadline = rpmsctl_now_s() + o.timeout_s;
	}
	ret = RPMSCTL_EXIT_OK;
	while (!rpmsctl_interrupted) {
		wait_ms = RPMSCTL_POLL_MS;
		if (o.timeout_s > 0) {
			now = rpmsctl_now_s();
			if (now >= idle_deadline) {
				ret = printed ? RPMSCTL_EXIT_OK : RPMSCTL_EXIT_TIMEOUT;
				if (!printed) {
					fprintf(stderr, "rpmsctl: no event from %s within %g s%s\n",
						o.endpoint, o.timeout_s,
						o.server_key ? " (is this subscriber's key in "
							       "publish.curve_allowed_keys?)" : "");
				}
				break;
			}
			if ((idle_deadline - now) * 1000 < wait_ms) {
				/* Rounded up: never a 0 ms busy poll. */
				wait_ms = (int)((idle_deadline - now) * 1000) + 1;
			}
		}
		rc = zmq_poll(&item, 1, wait_ms);
		if (rc < 0) {
			if (errno == EINTR) {
				continue;
			}
			fprintf(stderr, "rpmsctl: poll: %s\n", zmq_strerror(errno));
			ret = RPMSCTL_EXIT_ZMQ;
			break;
		}
		if (rc == 0) {
			continue;
		}
		zmq_msg_init(&tmsg);
		zmq_msg_init(&bmsg);
		rc = rpmsctl_recv(sock, &tmsg, &bmsg);
		if (rc == 1 && rpmsctl_handle(&o, seqs, &tmsg, &bmsg)) {
			printed++;
			if (o.timeout_s > 0) {
				idle_deadline = rpmsctl_now_s() + o.timeout_s;
			}
		} else if (rc == 0) {
			fprintf(stderr, "rpmsctl: skipped a message without a body\n");
		}
		zmq_msg_close(&tmsg);
		zmq_msg_close(&bmsg);
		if (rc < 0 && rc != -EAGAIN && rc != -EINTR) {
			fprintf(stderr, "rpmsctl: receive: %s\n", zmq_strerror(-rc));
			ret = RPMSCTL_EXIT_ZMQ;
			break;
		}
		if (o.count && printed >= o.count) {
			break;
		}
	}

err_sock:
	zmq_close(sock);
err_ctx:
	zmq_ctx_term(ctx);
	return ret;
}

/*
 * Options may come before the command as well as after it, as git and
 * systemctl take them: "rpmsctl -e EP status" is "rpmsctl status -e EP".
 * The option words before the command are moved right after it, where the
 * command's own parser (which permutes) reads them with the others.
 * @return 0 with *@cmd_at (the command's index in @argv, or @argc when
 *         there is none), -1 after --help or --version, or an exit status
 */
static int rpmsctl_leading_options(int argc, char **argv, int *cmd_at)
{
	/* Every option of every command, only to know which ones take a value. */
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "topic", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "server-key", required_argument, NULL, 'S' },
		{ "secret-key", required_argument, NULL, 'K' },
		{ "patient", required_argument, NULL, 'P' },
		{ "session", required_argument, NULL, 's' },
		{ "course", required_argument, NULL, 'c' },
		{ "mt", required_argument, NULL, 'm' },
		{ "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	optind = 0;	/* 0: glibc starts afresh (and reads the '+' again) */
	/* '+': stop at the first word that is not an option, the command */
	while ((c = getopt_long(argc, argv, "+:e:t:jn:T:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			rpmsctl_usage(stdout);
			return -1;
		case 'V':
			printf("rpmsctl %s\n", RPMSD_VERSION);
			return -1;
		case ':':
			return rpmsctl_control_usage_error("option '%s' needs a value",
							   argv[optind - 1]);
		case '?':
			if (optopt) {
				return rpmsctl_control_usage_error("unknown option '-%c'", optopt);
			}
			return rpmsctl_control_usage_error("unknown or ambiguous option '%s'",
							   argv[optind - 1]);
		default:
			break;
		}
	}
	*cmd_at = optind;
	return 0;
}

int main(int argc, char **argv)
{
	char **args;
	const char *cmd;
	int cmd_at = 1, lead, n, i, ret;

	if (argc < 2) {
		return rpmsctl_control_usage_error("missing command");
	}
	ret = rpmsctl_leading_options(argc, argv, &cmd_at);
	if (ret != 0) {
		return ret < 0 ? RPMSCTL_EXIT_OK : ret;
	}
	/* a "--" that ended the leading options has done its work */
	lead = cmd_at - 1 - (cmd_at > 1 && !strcmp(argv[cmd_at - 1], "--"));
	if (cmd_at >= argc) {
		return rpmsctl_control_usage_error("missing command");
	}
	cmd = argv[cmd_at];
	/* The command, the options that came before it, then the rest. */
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args) {
		fprintf(stderr, "rpmsctl: out of memory\n");
		return RPMSCTL_EXIT_ZMQ;
	}
	n = 0;
	args[n++] = argv[cmd_at];
	for (i = 1; i <= lead; i++) {
		args[n++] = argv[i];
	}
	for (i = cmd_at + 1; i < argc; i++) {
		args[n++] = argv[i];
	}
	args[n] = NULL;
	if (strcmp(cmd, "tail") == 0) {
		ret = rpmsctl_tail(n, args);
	} else if (strcmp(cmd, "unblind") == 0) {
		ret = rpmsctl_blind_unblind(n, args);
	} else if (strcmp(cmd, "keygen") == 0) {
		ret = lead ? rpmsctl_control_usage_error("keygen: takes no options ('%s')", argv[1])
			   : rpmsctl_control_keygen(n, args);
	} else if (!strcmp(cmd, "status") || !strcmp(cmd, "arm") || !strcmp(cmd, "disarm") ||
		   !strcmp(cmd, "calibrate") || !strcmp(cmd, "session") || !strcmp(cmd, "set") ||
		   !strcmp(cmd, "assess")) {
		ret = rpmsctl_control_main(n, args);
	} else if (strcmp(cmd, "course") == 0) {
		ret = rpmsctl_course_main(n, args);
	} else if (strcmp(cmd, "score") == 0) {
		ret = rpmsctl_score_main(n, args);
	} else if (strcmp(cmd, "threshold") == 0) {
		ret = rpmsctl_threshold_main(n, args);
	} else {
		ret = rpmsctl_control_usage_error("unknown command '%s'", cmd);
	}
	free(args);
	return ret;
}
