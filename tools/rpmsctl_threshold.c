/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl threshold (rpmsctl_threshold.h): "threshold" starts the
 * procedure; "threshold_status" is asked every RPMSCTL_THRESHOLD_POLL_MS
 * for the probes since the last one printed, until the result. The
 * control socket alone: no event endpoint to know.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "rpmsctl_control.h"
#include "rpmsctl_threshold.h"

#define RPMSCTL_THRESHOLD_POLL_MS 200

struct rpmsctl_threshold_opts {
	struct rpmsctl_control_conn conn;	/* as every control command's */
	bool stop;
};

/* A number option into @req's @member, checked only as a number (the daemon checks ranges). */
static int rpmsctl_threshold_num(json_t *req, const char *member, const char *opt,
				 const char *arg)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(x)) {
		return rpmsctl_control_usage_error("%s: '%s' is not a number", opt, arg);
	}
	json_object_set_new(req, member, strcmp(member, "channel") ? json_real(x)
								  : json_integer((json_int_t)x));
	if (!strcmp(member, "channel") && x != floor(x)) {
		return rpmsctl_control_usage_error("%s: '%s' is not a channel number", opt, arg);
	}
	return 0;
}

/* --window A-B (ms) into "window_ms": [A, B]. */
static int rpmsctl_threshold_window(json_t *req, const char *arg)
{
	double a, b;
	int n = 0;

	if (sscanf(arg, "%lf-%lf%n", &a, &b, &n) != 2 || arg[n] || !isfinite(a) || !isfinite(b)) {
		return rpmsctl_control_usage_error("--window: '%s' is not START-END in ms, e.g. 2-20",
						   arg);
	}
	json_object_set_new(req, "window_ms", json_pack("[f, f]", a, b));
	return 0;
}

static int rpmsctl_threshold_options(int argc, char **argv, struct rpmsctl_threshold_opts *o,
				     json_t *req)
{
	enum { OPT_CHANNEL = RPMSCTL_CONTROL_OPT_NEXT, OPT_WINDOW, OPT_INTERVAL, OPT_START,
	       OPT_CAP, OPT_STOP };
	static const struct option longopts[] = {
		RPMSCTL_CONTROL_CONN_LONGOPTS,
		{ "channel", required_argument, NULL, OPT_CHANNEL },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "start", required_argument, NULL, OPT_START },
		{ "cap", required_argument, NULL, OPT_CAP },
		{ "stop", no_argument, NULL, OPT_STOP },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret = 0;

	rpmsctl_control_conn_init(&o->conn);
	opterr = 0;
	optind = 0;
	while (ret == 0 && (c = getopt_long(argc, argv, RPMSCTL_CONTROL_CONN_SHORTOPTS, longopts,
					    NULL)) != -1) {
		ret = rpmsctl_control_conn_option(&o->conn, c, optarg);
		if (ret != 1) {
			continue;
		}
		ret = 0;
		switch (c) {
		case OPT_CHANNEL:
			ret = rpmsctl_threshold_num(req, "channel", "--channel", optarg);
			break;
		case OPT_WINDOW:
			ret = rpmsctl_threshold_window(req, optarg);
			break;
		case OPT_INTERVAL:
			ret = rpmsctl_threshold_num(req, "interval_s", "--interval", optarg);
			break;
		case OPT_START:
			ret = rpmsctl_threshold_num(req, "start_pct", "--start", optarg);
			break;
		case OPT_CAP:
			ret = rpmsctl_threshold_num(req, "cap_pct", "--cap", optarg);
			break;
		case OPT_STOP:
			o->stop = true;
			break;
		case 'h':
			rpmsctl_control_usage(stdout);
			return -1;
		default:
			return rpmsctl_control_getopt_error(NULL, c, argv);
		}
	}
	if (ret == 0 && optind < argc) {
		ret = rpmsctl_control_usage_error("threshold: unexpected argument '%s'", argv[optind]);
	}
	if (ret == 0 && o->stop && json_object_size(req) > 1) {
		ret = rpmsctl_control_usage_error("--stop: alone (no other procedure option)");
	}
	return ret;
}

/*
 * One request; its parsed reply's "result" in *@result (a reference to
 * drop) when the daemon did it.
 */
static int rpmsctl_threshold_call(const struct rpmsctl_threshold_opts *o, json_t *req,
				  json_t **result)
{
	char *text = json_dumps(req, JSON_COMPACT), *reply = NULL;
	json_error_t jerr;
	json_t *j = NULL, *e;
	int ret;

	if (!text) {
		fprintf(stderr, "rpmsctl: out of memory\n");
		return RPMSCTL_CONTROL_LOCAL;
	}
	ret = rpmsctl_control_request(&o->conn, text, &reply);
	free(text);
	if (ret != RPMSCTL_CONTROL_OK) {
		return ret;
	}
	j = json_loads(reply, 0, &jerr);
	if (!j || !json_is_boolean(json_object_get(j, "ok"))) {
		fprintf(stderr, "rpmsctl: threshold: the reply is not one: %.200s\n", reply);
		ret = RPMSCTL_CONTROL_LOCAL;
	} else if (!json_is_true(json_object_get(j, "ok"))) {
		e = json_object_get(j, "error");
		fprintf(stderr, "rpmsctl: %s refused (%s): %s\n",
			json_string_value(json_object_get(req, "cmd")),
			json_string_value(json_object_get(e, "code")),
			json_string_value(json_object_get(e, "message")));
		ret = RPMSCTL_CONTROL_REFUSED;
	} else {
		*result = json_incref(json_object_get(j, "result"));
	}
	free(reply);
	json_decref(j);
	return ret;
}

static void rpmsctl_threshold_print_probe(json_t *p)
{
	json_t *uv = json_object_get(p, "amplitude_uv");

	printf("probe %3d  %5.1f %%  ", (int)json_integer_value(json_object_get(p, "probe")),
	       json_number_value(json_object_get(p, "intensity_pct")));
	if (json_is_number(uv)) {
		printf("%8.1f uV", json_number_value(uv));
	} else {
		printf("       - uV");
	}
	printf("  %s\n", json_is_true(json_object_get(p, "response")) ? "response" : "-");
}

/* Print the outcome; the exit status it means. */
static int rpmsctl_threshold_print_result(json_t *r)
{
	const char *outcome = json_string_value(json_object_get(r, "outcome"));
	int pulses = (int)json_integer_value(json_object_get(r, "pulses"));

	json_t *ses = json_object_get(r, "session");

	if (outcome && !strcmp(outcome, "found") && json_is_object(ses)) {
		/* before the result's line, which stays the last */
		if (json_is_true(json_object_get(ses, "applied"))) {
			printf("course session: its intensity is now %g %% of maximum output; the "
			       "coil is disarmed: arm to stimulate\n",
			       json_number_value(json_object_get(ses, "intensity_pct")));
		} else {
			printf("course session: the intensity was NOT put in force: %s; the session "
			       "still waits for its motor threshold\n",
			       json_string_value(json_object_get(ses, "refused")));
		}
	}
	if (outcome && !strcmp(outcome, "found")) {
		printf("motor threshold: %g %% of maximum output (%d pulses)\n",
		       json_number_value(json_object_get(r, "threshold_pct")), pulses);
		return RPMSCTL_CONTROL_OK;
	}
	printf("no motor threshold (%s, %d pulses): %s\n", outcome ? outcome : "?", pulses,
	       json_string_value(json_object_get(r, "reason")));
	return RPMSCTL_THRESHOLD_NOT_FOUND;
}

int rpmsctl_threshold_main(int argc, char **argv)
{
	const struct timespec nap = { .tv_sec = 0, .tv_nsec = RPMSCTL_THRESHOLD_POLL_MS * 1000000L };
	struct rpmsctl_threshold_opts o = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "threshold"), *res = NULL, *st, *probes, *p;
	long since = 1;
	size_t i;
	int ret;

	if (!req) {
		fprintf(stderr, "rpmsctl: out of memory\n");
		return RPMSCTL_CONTROL_LOCAL;
	}
	ret = rpmsctl_threshold_options(argc, argv, &o, req);
	if (ret != 0) {
		json_decref(req);
		return ret < 0 ? RPMSCTL_CONTROL_OK : ret;
	}
	if (o.stop) {
		json_object_set_new(req, "stop", json_true());
	}
	ret = rpmsctl_threshold_call(&o, req, &res);
	json_decref(req);
	if (ret != RPMSCTL_CONTROL_OK) {
		return ret;
	}
	if (o.stop) {
		printf("%s\n", json_is_true(json_object_get(res, "stopped"))
				       ? "stopped" : "no threshold procedure was running");
		json_decref(res);
		return RPMSCTL_CONTROL_OK;
	}
	if (!o.conn.json) {
		printf("threshold: channel %d, window %g-%g ms, probes at least %g s apart, from "
		       "%g %%, cap %g %% (%s)\n",
		       (int)json_integer_value(json_object_get(res, "channel")),
		       json_number_value(json_array_get(json_object_get(res, "window_ms"), 0)),
		       json_number_value(json_array_get(json_object_get(res, "window_ms"), 1)),
		       json_number_value(json_object_get(res, "interval_s")),
		       json_number_value(json_object_get(res, "start_pct")),
		       json_number_value(json_object_get(res, "cap_pct")),
		       json_string_value(json_object_get(res, "cap_by")));
		fflush(stdout);
	}
	json_decref(res);
	for (;;) {
		req = json_pack("{s:s, s:I}", "cmd", "threshold_status", "since", (json_int_t)since);
		res = NULL;
		ret = req ? rpmsctl_threshold_call(&o, req, &res) : RPMSCTL_CONTROL_LOCAL;
		json_decref(req);
		if (ret != RPMSCTL_CONTROL_OK) {
			return ret;
		}
		probes = json_object_get(res, "probes");
		json_array_foreach(probes, i, p) {
			if (o.conn.json) {
				char *s = json_dumps(p, JSON_COMPACT);

				printf("%s\n", s ? s : "{}");
				free(s);
			} else {
				rpmsctl_threshold_print_probe(p);
			}
			since++;
		}
		st = json_object_get(res, "result");
		if (json_is_object(st)) {
			if (o.conn.json) {
				char *s = json_dumps(st, JSON_COMPACT);

				printf("%s\n", s ? s : "{}");
				free(s);
				ret = strcmp(json_string_value(json_object_get(st, "outcome")),
					     "found") ? RPMSCTL_THRESHOLD_NOT_FOUND
						      : RPMSCTL_CONTROL_OK;
			} else {
				ret = rpmsctl_threshold_print_result(st);
			}
			json_decref(res);
			fflush(stdout);
			return ret;
		}
		json_decref(res);
		fflush(stdout);
		nanosleep(&nap, NULL);
	}
}
