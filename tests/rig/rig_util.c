/* SPDX-License-Identifier: MIT */
/*
 * rig-util: the VM rig's checks (tests/rig, docs/rig.md), one C program so
 * that the guest needs no Python and the initramfs stays small.
 *
 *   rig-util now
 *       CLOCK_MONOTONIC in ns (busybox has no such clock).
 *   rig-util wave IN.txt START_S SECONDS OUT.s16
 *       a slice of a one-value-per-line recording (rpmsd's text format,
 *       "# Sampling Rate (Hz):= R" header) as the rpms_emg driver's
 *       waveform: little-endian s16 frames, channel 0 the recording,
 *       channel 1 its mirror image (4095 - x).
 *   rig-util pulses EVENTS MON SHORT_US LONG_US SLACK_US MIN
 *       the pulses rig-mon saw on TRIG against the rpms.stim events
 *       (`rpmsctl tail --json`): the same count (at least MIN), in the
 *       same order, each between SHORT_US shorter and LONG_US longer than
 *       the width published (the plugin holds the line at least that long,
 *       more by its thread's wake-up), each rising edge within SLACK_US of
 *       when its event says it fired.
 *   rig-util estop EVENTS MON SHORT_US LONG_US SLACK_US
 *       after the enable line's first drop no trigger edge rises, an
 *       rpms.state "estop" was published, both lines end inactive, and the
 *       pulses before it match their events as for `pulses`.
 *   rig-util stall EVENTS MON T0_NS TIMEOUT_MS EARLY_MS LATE_MS
 *       the trigger was stopped at T0: the enable line dropped between
 *       TIMEOUT - EARLY and TIMEOUT + LATE after it (the watchdog counts
 *       from the last block, which came up to a block period before T0),
 *       rpmsd published the watchdog's fault, and no trigger edge rose
 *       after the drop.
 *   rig-util devfault EVENTS MON SHORT_US LONG_US SLACK_US MIN WANT PERIOD_US
 *       a serial stimulator's fault (the magstim and magventure tests):
 *       the enable line rose once and dropped, no trigger edge rose after
 *       the drop and no rpms.stim event is later than it, an rpms.state
 *       fault whose reason contains WANT was published, both lines end
 *       inactive, the pulses before match their events as for `pulses`
 *       (at least MIN), and no two trigger rises came closer than
 *       PERIOD_US (the protocol's fastest rate) less SHORT_US.
 *   rig-util final MON [TRIG ENABLE]
 *       the last level of TRIG and ENABLE is 0 (or the levels given).
 *   rig-util step SECONDS
 *       step CLOCK_REALTIME by SECONDS (signed, to the ns; needs
 *       CAP_SYS_TIME) and print the wall time before and after.
 *   rig-util clockstep EVENTS MON PERIOD_US TOL_US
 *       CLOCK_REALTIME was stepped during one train: every interval
 *       between consecutive TRIG rises of the train is PERIOD_US within
 *       TOL_US, and no pulse fired more than TOL_US after its scheduled
 *       time (late_us); each published scheduled time (t_sched_s) is, to
 *       the µs, the stim thread's rule on CLOCK_MONOTONIC: the train's
 *       grid, or one period after the previous pulse if that one was late
 *       (stim.c: never closer than the designed spacing); the events'
 *       t_wall_ns - t_mono_ns shows at least one step forwards and one
 *       back, each between two consecutive pulses of the train (the
 *       interval it fell in is printed); events
 *       keep coming after the last step (pulses and heartbeats, which
 *       `rpmsctl tail` prints only with --topic rpms.heartbeat; no
 *       heartbeat interval over 3 s); no refusal (rpms.safety) and no
 *       fault state was published.
 *
 * MON is rig-mon's output, "<ns> <NAME> init <0|1>" and "<ns> <NAME>
 * rise|fall", for TRIG_RISE, TRIG_FALL, ENABLE_RISE and ENABLE_FALL: the
 * inputs wired to the trigger and enable outputs, each watched for one kind
 * of edge; their edges are merged in time into one sequence per output. Each check prints what it measured and exits 0 (pass) or
 * 1 (fail); 2 is a usage or input error.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UTIL_LINE_MAX 4096
/* Each output is wired to two inputs: one watched for rises, one for falls. */
#define UTIL_TRIG "TRIG_"
#define UTIL_ENABLE "ENABLE_"

struct util_edge {
	int64_t ts;
	bool rise;
};

/* One monitored line: its level when rig-mon started and every edge. */
struct util_line {
	int init;		/* -1: not seen */
	struct util_edge *edges;
	size_t n, cap;
	size_t broken;		/* edges that did not change the level: lost ones */
};

struct util_pulse_ev {
	int64_t mono_ns;
	long long train_id, index, count, width_us;
};

struct util_events {
	struct util_pulse_ev *pulses;
	size_t n, cap;
	bool estop;		/* an rpms.state "estop" */
	bool stale_fault;	/* the acquisition watchdog's fault */
	char fault[512];	/* the first rpms.state fault's reason */
	size_t lines;
};

static void *util_grow(void *p, size_t *cap, size_t n, size_t size)
{
	void *q;

	if (n < *cap) {
		return p;
	}
	*cap = *cap ? *cap * 2 : 64;
	q = realloc(p, *cap * size);
	if (!q) {
		fprintf(stderr, "rig-util: out of memory\n");
		exit(2);
	}
	return q;
}

/* By time; at the same time a rise first (its input has the lower offset). */
static int util_cmp_edge(const void *a, const void *b)
{
	const struct util_edge *x = a, *y = b;

	if (x->ts != y->ts) {
		return x->ts < y->ts ? -1 : 1;
	}
	return (int)y->rise - (int)x->rise;
}

static int util_read_mon(const char *path, struct util_line *trig, struct util_line *en)
{
	char buf[UTIL_LINE_MAX], name[64], kind[16];
	FILE *f = fopen(path, "r");
	long long ts;
	int v;

	if (!f) {
		fprintf(stderr, "rig-util: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	*trig = (struct util_line){ .init = -1 };
	*en = (struct util_line){ .init = -1 };
	while (fgets(buf, sizeof(buf), f)) {
		struct util_line *l;
		int n = sscanf(buf, "%lld %63s %15s %d", &ts, name, kind, &v);

		if (n < 3) {
			continue;
		}
		if (!strncmp(name, UTIL_TRIG, strlen(UTIL_TRIG))) {
			l = trig;
		} else if (!strncmp(name, UTIL_ENABLE, strlen(UTIL_ENABLE))) {
			l = en;
		} else {
			continue;
		}
		if (!strcmp(kind, "init") && n == 4) {
			if (l->init >= 0 && l->init != v) {
				fprintf(stderr, "rig-util: %s: the two inputs of %s disagree at start\n",
					path, name);
				fclose(f);
				return -EINVAL;
			}
			l->init = v;
			continue;
		}
		l->edges = util_grow(l->edges, &l->cap, l->n, sizeof(*l->edges));
		l->edges[l->n++] = (struct util_edge){ .ts = ts, .rise = !strcmp(kind, "rise") };
	}
	fclose(f);
	if (trig->init < 0 || en->init < 0) {
		fprintf(stderr, "rig-util: %s: no init line for %s* or %s*\n", path, UTIL_TRIG,
			UTIL_ENABLE);
		return -EINVAL;
	}
	/* One sequence per output: the rises and falls merged in time. */
	qsort(trig->edges, trig->n, sizeof(*trig->edges), util_cmp_edge);
	qsort(en->edges, en->n, sizeof(*en->edges), util_cmp_edge);
	return 0;
}

/* The line's level after its last edge; counts edges that changed nothing. */
static int util_final(struct util_line *l)
{
	int level = l->init;
	size_t i;

	l->broken = 0;
	for (i = 0; i < l->n; i++) {
		if (l->edges[i].rise == (level == 1)) {
			l->broken++;
		}
		level = l->edges[i].rise;
	}
	return level;
}

/*
 * Call @fn with every event of a `rpmsctl tail --json` file (one JSON
 * object a line; lines that are not JSON are skipped) and its topic.
 */
static int util_each_event(const char *path, void (*fn)(json_t *j, const char *topic, void *arg),
			   void *arg)
{
	char buf[UTIL_LINE_MAX];
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "rig-util: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (fgets(buf, sizeof(buf), f)) {
		json_t *j = json_loads(buf, 0, NULL);

		if (!j) {
			continue;
		}
		fn(j, json_string_value(json_object_get(j, "topic")), arg);
		json_decref(j);
	}
	fclose(f);
	return 0;
}

static void util_take_event(json_t *j, const char *topic, void *arg)
{
	struct util_events *e = arg;
	const char *state, *reason;

	e->lines++;
	if (topic && !strcmp(topic, "rpms.stim")) {
		e->pulses = util_grow(e->pulses, &e->cap, e->n, sizeof(*e->pulses));
		e->pulses[e->n++] = (struct util_pulse_ev){
			.mono_ns = json_integer_value(json_object_get(j, "t_mono_ns")),
			.train_id = json_integer_value(json_object_get(j, "train_id")),
			.index = json_integer_value(json_object_get(j, "index")),
			.count = json_integer_value(json_object_get(j, "count")),
			.width_us = json_integer_value(json_object_get(j, "width_us")),
		};
	} else if (topic && !strcmp(topic, "rpms.state")) {
		state = json_string_value(json_object_get(j, "state"));
		reason = json_string_value(json_object_get(j, "reason"));
		if (state && !strcmp(state, "estop")) {
			e->estop = true;
		}
		if (state && !strcmp(state, "fault") && reason &&
		    strstr(reason, "no fresh EMG")) {
			e->stale_fault = true;
		}
		if (state && !strcmp(state, "fault") && reason && !e->fault[0]) {
			snprintf(e->fault, sizeof(e->fault), "%s", reason);
		}
	}
}

static int util_read_events(const char *path, struct util_events *e)
{
	memset(e, 0, sizeof(*e));
	return util_each_event(path, util_take_event, e);
}

/* Timestamp of the enable line's first drop after it first rose, or -1. */
static int64_t util_first_drop(const struct util_line *en)
{
	bool up = en->init == 1;
	size_t i;

	for (i = 0; i < en->n; i++) {
		if (en->edges[i].rise) {
			up = true;
		} else if (up) {
			return en->edges[i].ts;
		}
	}
	return -1;
}

static size_t util_rises_after(const struct util_line *l, int64_t t)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++) {
		n += l->edges[i].rise && l->edges[i].ts > t;
	}
	return n;
}

static int util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	return 0;
}

static int util_wave(const char *in, double start_s, double seconds, const char *out)
{
	char buf[256];
	double rate = 1000.0;
	long long idx = 0, first, last, frames = 0;
	FILE *f = fopen(in, "r"), *o;

	if (!f) {
		fprintf(stderr, "rig-util: %s: %s\n", in, strerror(errno));
		return 2;
	}
	o = fopen(out, "wb");
	if (!o) {
		fprintf(stderr, "rig-util: %s: %s\n", out, strerror(errno));
		fclose(f);
		return 2;
	}
	first = last = -1;
	while (fgets(buf, sizeof(buf), f)) {
		long v;
		unsigned char fr[4];

		if (buf[0] == '#') {
			sscanf(buf, "# Sampling Rate (Hz):= %lf", &rate);
			continue;
		}
		if (first < 0) {
			first = llround(start_s * rate);
			last = first + llround(seconds * rate);
		}
		if (idx < first || idx >= last) {
			idx++;
			continue;
		}
		idx++;
		v = strtol(buf, NULL, 10);
		v = v < -32768 ? -32768 : v > 32767 ? 32767 : v;
		fr[0] = (unsigned char)(v & 0xff);
		fr[1] = (unsigned char)((v >> 8) & 0xff);
		v = 4095 - v;
		v = v < -32768 ? -32768 : v > 32767 ? 32767 : v;
		fr[2] = (unsigned char)(v & 0xff);
		fr[3] = (unsigned char)((v >> 8) & 0xff);
		fwrite(fr, 1, sizeof(fr), o);
		frames++;
	}
	fclose(f);
	if (fclose(o) != 0 || frames == 0) {
		fprintf(stderr, "rig-util: %s: no frames written\n", out);
		return 2;
	}
	printf("%lld frames at %g Hz (%.3f s from %.3f s)\n", frames, rate, frames / rate,
	       start_s);
	return 0;
}

/* Match TRIG pulses to rpms.stim events. @return problems found. */
static int util_match_pulses(const struct util_events *e, struct util_line *trig,
			     double short_us, double long_us, double slack_us, size_t min)
{
	double werr_min = INFINITY, werr_max = -INFINITY, off_min = INFINITY, off_max = -INFINITY;
	struct util_edge *pairs;
	size_t i, np = 0, k;
	int bad = 0;

	util_final(trig);
	if (trig->broken) {
		printf("  TRIG: %zu edges did not change the level (edges lost)\n",
		       trig->broken);
		bad++;
	}
	/* Pair every rise with the fall that follows it. */
	pairs = calloc(trig->n + 1, sizeof(*pairs));
	if (!pairs) {
		fprintf(stderr, "rig-util: out of memory\n");
		exit(2);
	}
	for (i = 0, k = 0; i < trig->n; i++) {
		if (!trig->edges[i].rise || i + 1 >= trig->n || trig->edges[i + 1].rise) {
			continue;
		}
		pairs[k++] = trig->edges[i];
		pairs[k++] = trig->edges[i + 1];
		i++;
	}
	np = k / 2;
	printf("  monitor: %zu pulses on TRIG; events: %zu rpms.stim\n", np, e->n);
	if (np != e->n) {
		printf("  count differs\n");
		bad++;
	}
	if (e->n < min) {
		printf("  fewer than the %zu pulses expected\n", min);
		bad++;
	}
	for (i = 0; i < e->n; i++) {
		const struct util_pulse_ev *p = &e->pulses[i];

		if (i > 0) {
			const struct util_pulse_ev *q = &e->pulses[i - 1];
			bool next = p->train_id == q->train_id ? p->index == q->index + 1
							       : p->train_id > q->train_id && p->index == 0;

			if (!next || p->mono_ns < q->mono_ns) {
				printf("  event %zu (train %lld pulse %lld) out of order after train %lld pulse %lld\n",
				       i, p->train_id, p->index, q->train_id, q->index);
				bad++;
			}
		} else if (p->index != 0) {
			printf("  the first event is pulse %lld of its train\n", p->index);
			bad++;
		}
		if (i < np) {
			int64_t rise = pairs[2 * i].ts, fall = pairs[2 * i + 1].ts;
			double w = (double)(fall - rise) / 1e3;
			double werr = w - (double)p->width_us;
			/* The event is stamped after the trigger fell: fired at t - width. */
			double off = (double)(rise - (p->mono_ns - p->width_us * 1000)) / 1e3;

			werr_min = fmin(werr_min, werr);
			werr_max = fmax(werr_max, werr);
			off_min = fmin(off_min, off);
			off_max = fmax(off_max, off);
			printf("  pulse %2zu: train %lld #%lld width %lld us, seen %.1f us; rise %+.1f us from the event\n",
			       i, p->train_id, p->index, p->width_us, w, off);
			if (werr < -short_us || werr > long_us) {
				printf("    width off by %+.1f us (tolerance -%.0f..+%.0f us)\n", werr, short_us,
				       long_us);
				bad++;
			}
			if (fabs(off) > slack_us) {
				printf("    rise %.1f us from the event (tolerance %.0f us)\n", off, slack_us);
				bad++;
			}
		}
	}
	if (np && e->n) {
		printf("  width seen - published %+.1f..%+.1f us (tolerance -%.0f..+%.0f us); rise vs event %+.1f..%+.1f us (tolerance %.0f us)\n",
		       werr_min, werr_max, short_us, long_us, off_min, off_max, slack_us);
	}
	free(pairs);
	return bad;
}

static int util_verdict(int bad, const char *what)
{
	printf("%s: %s\n", bad ? "FAIL" : "OK", what);
	return bad ? 1 : 0;
}

static int util_pulses(char **argv)
{
	struct util_line trig, en;
	struct util_events e;
	int bad;

	if (util_read_mon(argv[1], &trig, &en) < 0 || util_read_events(argv[0], &e) < 0) {
		return 2;
	}
	bad = util_match_pulses(&e, &trig, atof(argv[2]), atof(argv[3]), atof(argv[4]),
				(size_t)strtoul(argv[5], NULL, 10));
	return util_verdict(bad, "monitor pulses match the published rpms.stim events");
}

static int util_estop(char **argv)
{
	struct util_line trig, en;
	struct util_events e;
	int64_t drop;
	size_t late;
	int bad = 0;

	if (util_read_mon(argv[1], &trig, &en) < 0 || util_read_events(argv[0], &e) < 0) {
		return 2;
	}
	drop = util_first_drop(&en);
	if (drop < 0) {
		printf("  ENABLE never dropped after rising\n");
		return util_verdict(1, "e-stop");
	}
	late = util_rises_after(&trig, drop);
	printf("  enable dropped at %" PRId64 " ns; trigger rises after it: %zu\n", drop, late);
	bad += late != 0;
	if (!e.estop) {
		printf("  no rpms.state \"estop\" event\n");
		bad++;
	}
	if (util_final(&trig) != 0 || util_final(&en) != 0) {
		printf("  lines end active: TRIG %d ENABLE %d\n", util_final(&trig), util_final(&en));
		bad++;
	}
	bad += util_match_pulses(&e, &trig, atof(argv[2]), atof(argv[3]), atof(argv[4]), 1);
	return util_verdict(bad, "e-stop drops enable, no trigger edge after it");
}

static int util_stall(char **argv)
{
	struct util_line trig, en;
	struct util_events e;
	double timeout = atof(argv[3]), early = atof(argv[4]), late = atof(argv[5]);
	int64_t t0 = strtoll(argv[2], NULL, 10), drop;
	double lat;
	int bad = 0;

	if (util_read_mon(argv[1], &trig, &en) < 0 || util_read_events(argv[0], &e) < 0) {
		return 2;
	}
	drop = util_first_drop(&en);
	if (drop < 0) {
		printf("  ENABLE never dropped after rising\n");
		return util_verdict(1, "stall");
	}
	lat = (double)(drop - t0) / 1e6;
	printf("  trigger stopped at %" PRId64 " ns, enable dropped %.1f ms later (window %.1f..%.1f ms)\n",
	       t0, lat, timeout - early, timeout + late);
	if (lat < timeout - early || lat > timeout + late) {
		bad++;
	}
	if (!e.stale_fault) {
		printf("  no rpms.state fault \"no fresh EMG\"\n");
		bad++;
	}
	if (util_rises_after(&trig, drop)) {
		printf("  %zu trigger rises after the drop\n", util_rises_after(&trig, drop));
		bad++;
	}
	return util_verdict(bad, "acquisition stall disarms in time");
}

static int util_devfault(char **argv)
{
	struct util_line trig, en;
	struct util_events e;
	double short_us = atof(argv[2]), period_us = atof(argv[7]);
	const char *want = argv[6];
	size_t i, rises = 0, late_ev = 0;
	int64_t drop, prev = -1;
	double gap_min = INFINITY;
	int bad = 0;

	if (util_read_mon(argv[1], &trig, &en) < 0 || util_read_events(argv[0], &e) < 0) {
		return 2;
	}
	drop = util_first_drop(&en);
	if (drop < 0) {
		printf("  ENABLE never dropped after rising\n");
		return util_verdict(1, "device fault");
	}
	for (i = 0; i < en.n; i++) {
		rises += en.edges[i].rise;
	}
	printf("  enable rose %zu time(s), first dropped at %" PRId64 " ns; trigger rises after it: %zu\n",
	       rises, drop, util_rises_after(&trig, drop));
	if (rises != 1) {
		printf("  ENABLE rose again after the fault (it must stay latched)\n");
		bad++;
	}
	bad += util_rises_after(&trig, drop) != 0;
	for (i = 0; i < e.n; i++) {
		late_ev += e.pulses[i].mono_ns > drop;
	}
	if (late_ev) {
		printf("  %zu rpms.stim events after the drop\n", late_ev);
		bad++;
	}
	printf("  fault: \"%s\"\n", e.fault[0] ? e.fault : "(none published)");
	if (!strstr(e.fault, want)) {
		printf("  the first fault does not name \"%s\"\n", want);
		bad++;
	}
	if (util_final(&trig) != 0 || util_final(&en) != 0) {
		printf("  lines end active: TRIG %d ENABLE %d\n", util_final(&trig), util_final(&en));
		bad++;
	}
	for (i = 0; i < trig.n; i++) {
		if (!trig.edges[i].rise) {
			continue;
		}
		if (prev >= 0) {
			gap_min = fmin(gap_min, (double)(trig.edges[i].ts - prev) / 1e3);
		}
		prev = trig.edges[i].ts;
	}
	printf("  closest trigger rises %.1f us apart (limit %.0f us less %.0f us)\n", gap_min,
	       period_us, short_us);
	if (gap_min < period_us - short_us) {
		bad++;
	}
	bad += util_match_pulses(&e, &trig, short_us, atof(argv[3]), atof(argv[4]),
				 (size_t)strtoul(argv[5], NULL, 10));
	return util_verdict(bad, "device fault drops enable, names the cause, no trigger edge after it");
}

static int util_final_cmd(int argc, char **argv)
{
	struct util_line trig, en;
	int want_t = argc > 1 ? atoi(argv[1]) : 0, want_e = argc > 2 ? atoi(argv[2]) : 0;
	int t, en_v;

	if (util_read_mon(argv[0], &trig, &en) < 0) {
		return 2;
	}
	t = util_final(&trig);
	en_v = util_final(&en);
	printf("  final levels: TRIG %d ENABLE %d (expected %d %d); %zu trigger and %zu enable edges\n",
	       t, en_v, want_t, want_e, trig.n, en.n);
	return util_verdict(t != want_t || en_v != want_e, "final line levels");
}

static int util_step(const char *arg)
{
	struct timespec ts, mono;
	char before[64], after[64];
	struct tm tm;
	int64_t was, now, delta;
	char *end;
	double d = strtod(arg, &end);
	time_t t;

	if (end == arg || *end || !isfinite(d)) {
		fprintf(stderr, "rig-util: step: '%s' is not a number of seconds\n", arg);
		return 2;
	}
	delta = llround(d * 1e9);
	clock_gettime(CLOCK_REALTIME, &ts);
	was = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	now = was + delta;
	ts.tv_sec = (time_t)(now / 1000000000LL);
	ts.tv_nsec = (long)(now % 1000000000LL);
	if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
		fprintf(stderr, "rig-util: clock_settime: %s\n", strerror(errno));
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &mono);
	t = (time_t)(was / 1000000000LL);
	strftime(before, sizeof(before), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
	t = ts.tv_sec;
	strftime(after, sizeof(after), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
	printf("CLOCK_REALTIME stepped %+.3f s: %s -> %s UTC (CLOCK_MONOTONIC %lld ns)\n",
	       (double)delta / 1e9, before, after,
	       (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec);
	return 0;
}

/* Any event, for the clock checks. */
struct util_ev {
	int64_t mono, wall;
	enum { UTIL_EV_OTHER, UTIL_EV_STIM, UTIL_EV_HEARTBEAT } kind;
	long long train_id, index;
	double sched_s, actual_s, late_us;
	size_t order;		/* line in the file: ties in time keep it */
	size_t nth;		/* rpms.stim: its place among them, i.e. its TRIG rise */
};

struct util_all {
	struct util_ev *ev;
	size_t n, cap;
	size_t refusals, faults;
};

/* A heartbeat is due every publish.heartbeat_s (1 s, the rig's default). */
#define UTIL_HB_MAX_NS 3000000000LL
/* The offset wall - mono moves by more than this: the clock was stepped. */
#define UTIL_STEP_NS 500000000LL

static void util_take_all(json_t *j, const char *topic, void *arg)
{
	struct util_all *a = arg;
	const char *state = json_string_value(json_object_get(j, "state"));
	struct util_ev *e;

	a->ev = util_grow(a->ev, &a->cap, a->n, sizeof(*a->ev));
	e = &a->ev[a->n];
	*e = (struct util_ev){
		.mono = json_integer_value(json_object_get(j, "t_mono_ns")),
		.wall = json_integer_value(json_object_get(j, "t_wall_ns")),
		.order = a->n,
	};
	if (topic && !strcmp(topic, "rpms.stim")) {
		e->kind = UTIL_EV_STIM;
		e->train_id = json_integer_value(json_object_get(j, "train_id"));
		e->index = json_integer_value(json_object_get(j, "index"));
		e->sched_s = json_number_value(json_object_get(j, "t_sched_s"));
		e->actual_s = json_number_value(json_object_get(j, "t_actual_s"));
		e->late_us = json_number_value(json_object_get(j, "late_us"));
	} else if (topic && !strcmp(topic, "rpms.heartbeat")) {
		e->kind = UTIL_EV_HEARTBEAT;
	} else if (topic && !strcmp(topic, "rpms.safety")) {
		a->refusals++;
	} else if (topic && !strcmp(topic, "rpms.state") && state && !strcmp(state, "fault")) {
		a->faults++;
	}
	a->n++;
}

static int util_read_all(const char *path, struct util_all *a)
{
	memset(a, 0, sizeof(*a));
	return util_each_event(path, util_take_all, a);
}

static int util_cmp_ev(const void *a, const void *b)
{
	const struct util_ev *x = a, *y = b;

	if (x->mono != y->mono) {
		return x->mono < y->mono ? -1 : 1;
	}
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Consecutive pulses of one train. */
static bool util_same_train(const struct util_ev *p, const struct util_ev *q)
{
	return p->train_id == q->train_id && q->index == p->index + 1;
}

static int util_clockstep(char **argv)
{
	double period_us = atof(argv[2]), tol_us = atof(argv[3]);
	double dev_max = 0, sched_max = 0, late_max = 0, drift = 0, first_sched = 0, d, want;
	double across_max = 0;
	size_t i, j, nr = 0, ns = 0, dev_at = 0, late_at = 0, nint = 0;
	size_t fwd = 0, back = 0, stim_after = 0, hb_after = 0, nhb = 0;
	int64_t *rises, last_step = INT64_MIN, hb_prev = -1, hb_gap = 0;
	struct util_ev **stim;
	struct util_line trig, en;
	struct util_all a;
	int bad = 0;

	if (util_read_mon(argv[1], &trig, &en) < 0 || util_read_all(argv[0], &a) < 0) {
		return 2;
	}
	/* The pulses, in the order published (the stim thread's ring is FIFO). */
	rises = calloc(trig.n + 1, sizeof(*rises));
	stim = calloc(a.n + 1, sizeof(*stim));
	if (!rises || !stim) {
		fprintf(stderr, "rig-util: out of memory\n");
		exit(2);
	}
	for (i = 0; i < trig.n; i++) {
		if (trig.edges[i].rise) {
			rises[nr++] = trig.edges[i].ts;
		}
	}
	for (i = 0; i < a.n; i++) {
		if (a.ev[i].kind == UTIL_EV_STIM) {
			a.ev[i].nth = ns;
			stim[ns++] = &a.ev[i];
		}
	}
	printf("  %zu TRIG rises, %zu rpms.stim events, nominal period %.0f us\n", nr, ns, period_us);
	if (nr != ns || ns < 2) {
		printf("  rises and pulses differ (or fewer than 2): no intervals to compare\n");
		bad++;
	}
	for (i = 0; i < ns; i++) {
		const struct util_ev *p = stim[i];

		if (p->late_us > late_max) {
			late_max = p->late_us;
			late_at = i;
		}
		if (p->index == 0) {
			first_sched = p->sched_s;
		}
		if (i == 0 || !util_same_train(stim[i - 1], p)) {
			continue;
		}
		/*
		 * The schedule, in session time on CLOCK_MONOTONIC: the grid
		 * from the train's first pulse, or the period after the last
		 * pulse fired if that was later (a late pulse delays the rest).
		 */
		want = fmax(first_sched + (double)p->index * period_us / 1e6,
			    stim[i - 1]->actual_s + period_us / 1e6);
		d = (p->sched_s - want) * 1e6;
		sched_max = fmax(sched_max, fabs(d));
		drift = (p->sched_s - first_sched) * 1e6 - (double)p->index * period_us;
		if (i >= nr) {
			continue;
		}
		nint++;
		/* Rise to rise, on the kernel's CLOCK_MONOTONIC edge stamps. */
		d = (double)(rises[i] - rises[i - 1]) / 1e3 - period_us;
		if (fabs(d) > fabs(dev_max)) {
			dev_max = d;
			dev_at = i;
		}
		if (fabs(d) > tol_us) {
			printf("  pulse %zu: rise %+.1f us from the last one's + the period (tolerance %.0f us)\n",
			       i, d, tol_us);
			bad++;
		}
	}
	printf("  %zu intervals between pulses: max deviation from %.0f us %+.1f us (pulse %zu), tolerance %.0f us\n",
	       nint, period_us, dev_max, dev_at, tol_us);
	printf("  scheduled times: max %.1f us off the stim thread's rule; the late pulses delayed the train's end by %.1f ms\n",
	       sched_max, drift / 1e3);
	printf("  latest pulse: %.1f us after its scheduled time (pulse %zu), tolerance %.0f us\n",
	       late_max, late_at, tol_us);
	/* t_sched_s and t_actual_s are published to the µs. */
	if (sched_max > 2.0) {
		printf("  a scheduled time is not the rule's: the schedule moved\n");
		bad++;
	}
	if (late_max > tol_us) {
		bad++;
	}
	/* The steps, from wall - mono across all events in time order. */
	qsort(a.ev, a.n, sizeof(*a.ev), util_cmp_ev);
	for (i = 1; i < a.n; i++) {
		int64_t step = (a.ev[i].wall - a.ev[i].mono) - (a.ev[i - 1].wall - a.ev[i - 1].mono);
		const struct util_ev *before = NULL, *after = NULL;
		bool mid;

		if (step > -UTIL_STEP_NS && step < UTIL_STEP_NS) {
			continue;
		}
		for (j = i; j-- > 0;) {
			if (a.ev[j].kind == UTIL_EV_STIM) {
				before = &a.ev[j];
				break;
			}
		}
		for (j = i; j < a.n; j++) {
			if (a.ev[j].kind == UTIL_EV_STIM) {
				after = &a.ev[j];
				break;
			}
		}
		mid = before && after && util_same_train(before, after);
		printf("  wall clock stepped %+.3f s at CLOCK_MONOTONIC %.3f s, between train %lld #%lld and train %lld #%lld%s",
		       (double)step / 1e9, (double)a.ev[i].mono / 1e9,
		       before ? before->train_id : -1, before ? before->index : -1,
		       after ? after->train_id : -1, after ? after->index : -1,
		       mid ? " (mid-train)" : "");
		if (mid && after->nth < nr) {
			/* The interval the step fell in, on the monitor's clock. */
			d = (double)(rises[after->nth] - rises[before->nth]) / 1e3 - period_us;
			across_max = fabs(d) > fabs(across_max) ? d : across_max;
			printf(": that interval %+.1f us from the period", d);
		}
		printf("\n");
		if (mid) {
			fwd += step > 0;
			back += step < 0;
		}
		last_step = a.ev[i].mono;
	}
	if (!fwd || !back) {
		printf("  expected a step forwards and one back, each mid-train: %zu and %zu\n", fwd,
		       back);
		bad++;
	}
	for (i = 0; i < a.n; i++) {
		if (a.ev[i].kind == UTIL_EV_STIM) {
			stim_after += a.ev[i].mono > last_step;
		} else if (a.ev[i].kind == UTIL_EV_HEARTBEAT) {
			nhb++;
			hb_after += a.ev[i].mono > last_step;
			if (hb_prev >= 0 && a.ev[i].mono - hb_prev > hb_gap) {
				hb_gap = a.ev[i].mono - hb_prev;
			}
			hb_prev = a.ev[i].mono;
		}
	}
	printf("  after the last step: %zu pulses, %zu heartbeats; %zu heartbeats, longest interval %.1f ms\n",
	       stim_after, hb_after, nhb, (double)hb_gap / 1e6);
	if (!stim_after || !hb_after || hb_gap > UTIL_HB_MAX_NS) {
		printf("  the events stopped or stalled\n");
		bad++;
	}
	printf("  refusals (rpms.safety): %zu; fault states: %zu\n", a.refusals, a.faults);
	printf("clockstep-metric: %zu pulse intervals, max deviation from the %.0f ms period %+.2f ms "
	       "(%+.2f ms in those the steps fell in); latest pulse %.2f ms after its time (TCG)\n",
	       nint, period_us / 1e3, dev_max / 1e3, across_max / 1e3, late_max / 1e3);
	bad += a.refusals != 0;
	bad += a.faults != 0;
	free(rises);
	free(stim);
	return util_verdict(bad, "the pulse schedule did not move with CLOCK_REALTIME");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "now") && argc == 2) {
		return util_now();
	}
	if (!strcmp(cmd, "wave") && argc == 6) {
		return util_wave(argv[2], atof(argv[3]), atof(argv[4]), argv[5]);
	}
	if (!strcmp(cmd, "pulses") && argc == 8) {
		return util_pulses(argv + 2);
	}
	if (!strcmp(cmd, "estop") && argc == 7) {
		return util_estop(argv + 2);
	}
	if (!strcmp(cmd, "stall") && argc == 8) {
		return util_stall(argv + 2);
	}
	if (!strcmp(cmd, "devfault") && argc == 10) {
		return util_devfault(argv + 2);
	}
	if (!strcmp(cmd, "final") && (argc == 3 || argc == 5)) {
		return util_final_cmd(argc - 2, argv + 2);
	}
	if (!strcmp(cmd, "step") && argc == 3) {
		return util_step(argv[2]);
	}
	if (!strcmp(cmd, "clockstep") && argc == 6) {
		return util_clockstep(argv + 2);
	}
	fprintf(stderr, "usage: rig-util now | wave IN START_S SECONDS OUT | pulses EVENTS MON SHORT_US LONG_US SLACK_US MIN\n"
			"       | estop EVENTS MON SHORT_US LONG_US SLACK_US | stall EVENTS MON T0_NS TIMEOUT_MS EARLY_MS LATE_MS\n"
			"       | devfault EVENTS MON SHORT_US LONG_US SLACK_US MIN WANT PERIOD_US\n"
			"       | final MON [TRIG ENABLE] | step SECONDS | clockstep EVENTS MON PERIOD_US TOL_US\n");
	return 2;
}
