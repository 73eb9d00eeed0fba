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
 *   rig-util final MON [TRIG ENABLE]
 *       the last level of TRIG and ENABLE is 0 (or the levels given).
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

static int util_read_events(const char *path, struct util_events *e)
{
	char buf[UTIL_LINE_MAX];
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "rig-util: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	memset(e, 0, sizeof(*e));
	while (fgets(buf, sizeof(buf), f)) {
		json_t *j = json_loads(buf, 0, NULL);
		const char *topic, *state, *reason;

		if (!j) {
			continue;
		}
		e->lines++;
		topic = json_string_value(json_object_get(j, "topic"));
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
		}
		json_decref(j);
	}
	fclose(f);
	return 0;
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
	if (!strcmp(cmd, "final") && (argc == 3 || argc == 5)) {
		return util_final_cmd(argc - 2, argv + 2);
	}
	fprintf(stderr, "usage: rig-util now | wave IN START_S SECONDS OUT | pulses EVENTS MON SHORT_US LONG_US SLACK_US MIN\n"
			"       | estop EVENTS MON SHORT_US LONG_US SLACK_US | stall EVENTS MON T0_NS TIMEOUT_MS EARLY_MS LATE_MS\n"
			"       | final MON [TRIG ENABLE]\n");
	return 2;
}
