/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl: the control commands. One REQ socket, one request, one reply;
 * the reply is printed for people (or, with --json, as it came) and its
 * "ok" becomes the exit status, so that scripts can rely on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "curve_key.h"
#include "rpmsctl_control.h"

#define RPMSCTL_CONTROL_ENDPOINT "ipc:///run/rpmsd/control"
#define RPMSCTL_CONTROL_ENV "RPMSD_CONTROL"	/* overrides the default endpoint */
#define RPMSCTL_CONTROL_TIMEOUT_S 5.0
#define RPMSCTL_CONTROL_SET_MAX 16

struct rpmsctl_control_opts {
	struct rpmsctl_control_conn conn;
	const char *patient_id;		/* session start */
	const char *session_id;
	const char *course_id;		/* session start, optional */
	const char *mt;			/* session start: motor threshold, % of maximum output */
	const char *reason;		/* session stop, set: why (a course's deviation) */
	int phase;			/* assess: -1 none, 0 --pre, 1 --post */
	const char *seconds;		/* assess: --seconds */
	const char *agonist;		/* assess cci: --agonist, --antagonist */
	const char *antagonist;
	const char *muscle;		/* assess stretch: --muscle, --direction */
	const char *direction;
};

static int rpmsctl_control_fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void rpmsctl_control_usage(FILE *f)
{
	fprintf(f,
		"Control commands (docs/control.md, rpmsctl(1)):\n"
		"  status                 the daemon's state: armed, session, protocol, counts\n"
		"  arm | disarm           arm or disarm the coil (arming may be refused: why is printed)\n"
		"  calibrate              measure the rest level again (patient at rest, coil disarmed)\n"
		"  session start --patient ID --session ID [--course ID [--mt PCT]]\n"
		"                         with --course: the course's prescription and its limits\n"
		"                         across rigs; --mt: the motor threshold measured now, %% of\n"
		"                         maximum output (for an intensity in %% of it)\n"
		"  session stop [--reason TEXT]\n"
		"                         end the session (disarms); why, if a course session ends early\n"
		"  set KEY=VALUE... [--reason TEXT]\n"
		"                         change [stim] protocol keys within the safety limits\n"
		"  assess rest --pre|--post [--seconds N]\n"
		"                         an outcome assessment of the course session (coil\n"
		"                         disarmed): rest RMS, bursts a minute and %% of time\n"
		"                         active per channel over the next N s of EMG (default\n"
		"                         60), stored with the session (rpmsctl course) and\n"
		"                         published on rpms.state \"assessment\"\n"
		"  assess mvc --pre|--post [--seconds N]\n"
		"                         a maximal voluntary contraction block: each channel's\n"
		"                         largest 200 ms RMS, the session's reference for cci\n"
		"  assess cci --pre|--post --agonist CH --antagonist CH [--seconds N]\n"
		"                         co-contraction index of two channels (Falconer & Winter,\n"
		"                         200 ms windows, each normalised to the session's mvc)\n"
		"  assess stretch --pre|--post --muscle CH [--direction increasing|decreasing]\n"
		"         [--seconds N]   passive stretches at varied velocities (the source's\n"
		"                         joint angle, source.angle_channel): the angle at each\n"
		"                         EMG onset of CH (DSRT) and the tonic stretch reflex\n"
		"                         threshold by regression on velocity (default 120 s)\n"
		"  keygen FILE            new CURVE key pair: secret into FILE (0600), public on stdout\n"
		"  threshold [--channel N] [--window A-B] [--interval SEC] [--start PCT] [--cap PCT]\n"
		"                         measure the motor threshold (docs/threshold.md): the coil\n"
		"                         armed, single probe pulses; prints each probe and the\n"
		"                         result (exit 5 when none was found); --stop ends one\n"
		"\n"
		"Options of the control commands:\n"
		"  -e, --endpoint E       control endpoint (default $%s, else %s)\n"
		"  -j, --json             print the daemon's reply as JSON, one line\n"
		"  -T, --timeout SEC      wait at most SEC seconds for the reply (default %g)\n"
		"      --server-key KEY   CURVE: the daemon's public key (Z85, or a file holding it)\n"
		"      --secret-key FILE  CURVE: this client's secret key (from rpmsctl keygen)\n"
		"\n"
		"Exit status of the control commands: 0 done; 1 the daemon refused (the\n"
		"reason is printed); 2 usage error; 3 no reply (daemon not running, wrong\n"
		"endpoint, or CURVE keys not accepted); 4 local error (key file, ZeroMQ).\n",
		RPMSCTL_CONTROL_ENV, RPMSCTL_CONTROL_ENDPOINT, RPMSCTL_CONTROL_TIMEOUT_S);
}

int rpmsctl_control_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("rpmsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'rpmsctl --help'.\n", stderr);
	return RPMSCTL_CONTROL_USAGE;
}

void rpmsctl_control_conn_init(struct rpmsctl_control_conn *k)
{
	const char *env = getenv(RPMSCTL_CONTROL_ENV);

	*k = (struct rpmsctl_control_conn){
		.endpoint = env && env[0] ? env : RPMSCTL_CONTROL_ENDPOINT,
		.timeout_s = RPMSCTL_CONTROL_TIMEOUT_S,
	};
}

int rpmsctl_control_conn_option(struct rpmsctl_control_conn *k, int opt, const char *arg)
{
	char *end;

	switch (opt) {
	case 'e':
		k->endpoint = arg;
		return 0;
	case 'j':
		k->json = true;
		return 0;
	case 'T':
		errno = 0;
		k->timeout_s = strtod(arg, &end);
		if (errno || end == arg || *end || !isfinite(k->timeout_s) || k->timeout_s <= 0 ||
		    k->timeout_s > 3600) {
			return rpmsctl_control_usage_error("--timeout: '%s' is not a number of "
							   "seconds (allowed: 0 < SEC <= 3600)", arg);
		}
		return 0;
	case RPMSCTL_CONTROL_OPT_SERVER_KEY:
		k->server_key = arg;
		return 0;
	case RPMSCTL_CONTROL_OPT_SECRET_KEY:
		k->secret_file = arg;
		return 0;
	default:
		return 1;
	}
}

int rpmsctl_control_getopt_error(const char *cmd, int opt, char **argv)
{
	const char *pre = cmd ? cmd : "", *sep = cmd ? ": " : "";

	if (opt == ':') {
		return rpmsctl_control_usage_error("%s%soption '%s' needs a value", pre, sep,
						   argv[optind - 1]);
	}
	if (optopt) {
		return rpmsctl_control_usage_error("%s%sunknown option '-%c'", pre, sep, optopt);
	}
	return rpmsctl_control_usage_error("%s%sunknown or ambiguous option '%s'", pre, sep,
					   argv[optind - 1]);
}

static int rpmsctl_control_fail(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("rpmsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

/* ---- keys -------------------------------------------------------------- */

/*
 * The first key of a key file (curve_key.h: the daemon reads the same
 * format). A secret must not be readable by others.
 * @return 0, or an exit status with the message printed
 */
static int rpmsctl_control_read_key(const char *path, bool secret,
				    char key[CURVE_KEY_Z85_LEN + 1])
{
	unsigned mode;
	int lineno = 0, k;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "%s: %s", path, strerror(errno));
	}
	if (secret && curve_key_exposed(f, &mode)) {
		fclose(f);
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL,
					    "%s: a secret key readable by others (mode %04o): chmod 600 it",
					    path, mode);
	}
	k = curve_key_next(f, &lineno, key, NULL);
	fclose(f);
	if (k == 1) {
		return 0;
	}
	return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "%s: no Z85 key (40 characters) in it",
				    path);
}

/* --server-key: the key itself, or a file holding it. */
static int rpmsctl_control_server_key(const char *arg, char key[CURVE_KEY_Z85_LEN + 1])
{
	if (curve_key_valid(arg)) {
		memcpy(key, arg, CURVE_KEY_Z85_LEN + 1);
		return 0;
	}
	return rpmsctl_control_read_key(arg, false, key);
}

int rpmsctl_control_curve(void *sock, const char *server_key, const char *secret_file)
{
	char server[CURVE_KEY_Z85_LEN + 1], secret[CURVE_KEY_Z85_LEN + 1];
	char public[CURVE_KEY_Z85_LEN + 1];
	int ret = RPMSCTL_CONTROL_OK;

	if (!!server_key != !!secret_file) {
		return rpmsctl_control_usage_error("--server-key and --secret-key go together (CURVE)");
	}
	if (!server_key) {
		return RPMSCTL_CONTROL_OK;
	}
	ret = rpmsctl_control_server_key(server_key, server);
	if (ret == 0) {
		ret = rpmsctl_control_read_key(secret_file, true, secret);
	}
	if (ret != 0) {
		return ret;
	}
	if (zmq_curve_public(public, secret) != 0) {
		ret = rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "%s: not a CURVE secret key",
					   secret_file);
	} else if (sock &&
		   (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, CURVE_KEY_Z85_LEN) != 0 ||
		    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public, CURVE_KEY_Z85_LEN) != 0 ||
		    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, CURVE_KEY_Z85_LEN) != 0)) {
		ret = rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "cannot set the CURVE keys: %s",
					   zmq_strerror(errno));
	}
	explicit_bzero(secret, sizeof(secret));
	return ret;
}

int rpmsctl_control_keygen(int argc, char **argv)
{
	char pub[CURVE_KEY_Z85_LEN + 1], sec[CURVE_KEY_Z85_LEN + 1];
	FILE *f;
	int fd;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		rpmsctl_control_usage(stdout);
		return RPMSCTL_CONTROL_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		return rpmsctl_control_usage_error("keygen: expected one argument, the secret key file");
	}
	if (zmq_curve_keypair(pub, sec) != 0) {
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "keygen: %s (libzmq without CURVE?)",
					    zmq_strerror(errno));
	}
	/* Never over an existing key: that would lock its owner out. */
	fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "keygen: %s: %s", argv[1],
					    strerror(errno));
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "keygen: %s: %s", argv[1],
					    strerror(errno));
	}
	fprintf(f, "# rpmsd CURVE secret key: keep it to its owner (mode 0600).\n"
		   "# Its public key, for the other side: %s\n%s\n", pub, sec);
	if (fclose(f) != 0) {
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "keygen: %s: %s", argv[1],
					    strerror(errno));
	}
	printf("%s\n", pub);
	return RPMSCTL_CONTROL_OK;
}

/* ---- the request ------------------------------------------------------- */

/*
 * Send @req, wait for the reply.
 * @return 0 with *@reply (free), or an exit status with the message printed
 */
int rpmsctl_control_request(const struct rpmsctl_control_conn *o, const char *req,
			    char **reply)
{
	zmq_pollitem_t item;
	int linger = 0, ret, rc, n;
	zmq_msg_t msg;
	void *ctx, *sock;

	ret = rpmsctl_control_curve(NULL, o->server_key, o->secret_file);
	if (ret != 0) {
		return ret;
	}
	ctx = zmq_ctx_new();
	if (!ctx) {
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "cannot create a ZeroMQ context: %s",
					    zmq_strerror(errno));
	}
	ret = RPMSCTL_CONTROL_LOCAL;
	sock = zmq_socket(ctx, ZMQ_REQ);
	if (!sock) {
		rpmsctl_control_fail(ret, "cannot create a REQ socket: %s", zmq_strerror(errno));
		goto err_ctx;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (rpmsctl_control_curve(sock, o->server_key, o->secret_file) != 0) {
		goto err_sock;
	}
	if (zmq_connect(sock, o->endpoint) != 0) {
		rpmsctl_control_fail(ret, "cannot connect to '%s': %s", o->endpoint,
				     zmq_strerror(errno));
		goto err_sock;
	}
	if (zmq_send(sock, req, strlen(req), 0) < 0) {
		rpmsctl_control_fail(ret, "cannot send to '%s': %s", o->endpoint, zmq_strerror(errno));
		goto err_sock;
	}
	item = (zmq_pollitem_t){ .socket = sock, .events = ZMQ_POLLIN };
	do {
		rc = zmq_poll(&item, 1, (long)(o->timeout_s * 1000));
	} while (rc < 0 && errno == EINTR);
	if (rc <= 0) {
		ret = RPMSCTL_CONTROL_UNREACHED;
		rpmsctl_control_fail(ret, "no reply from %s within %g s (is rpmsd running, is the "
				     "endpoint right%s?)", o->endpoint, o->timeout_s,
				     o->server_key ? ", is this client's key allowed" : "");
		goto err_sock;
	}
	zmq_msg_init(&msg);
	n = zmq_msg_recv(&msg, sock, 0);
	if (n < 0) {
		rpmsctl_control_fail(ret, "receive: %s", zmq_strerror(errno));
		zmq_msg_close(&msg);
		goto err_sock;
	}
	*reply = malloc((size_t)n + 1);
	if (*reply) {
		memcpy(*reply, zmq_msg_data(&msg), (size_t)n);
		(*reply)[n] = '\0';
		ret = 0;
	} else {
		rpmsctl_control_fail(ret, "out of memory");
	}
	zmq_msg_close(&msg);
err_sock:
	zmq_close(sock);
err_ctx:
	zmq_ctx_term(ctx);
	return ret;
}

/* ---- printing ---------------------------------------------------------- */

static const char *rpmsctl_control_str(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s ? s : "";
}

static double rpmsctl_control_num(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static long long rpmsctl_control_int(json_t *j, const char *key)
{
	return json_integer_value(json_object_get(j, key));
}

/* "train, 5 pulses at 20 Hz, 30 %, 100 us; closed_loop, refractory 500 ms" */
static void rpmsctl_control_protocol(json_t *p)
{
	const char *name = rpmsctl_control_str(p, "protocol");

	printf("%s", name);
	if (!strcmp(name, "train")) {
		printf(", %lld pulses at %g Hz", rpmsctl_control_int(p, "train_pulses"),
		       rpmsctl_control_num(p, "train_frequency_hz"));
	} else if (!strcmp(name, "onoff")) {
		printf(", %g Hz for %g ms, %g ms off, %lld cycles",
		       rpmsctl_control_num(p, "train_frequency_hz"), rpmsctl_control_num(p, "on_ms"),
		       rpmsctl_control_num(p, "off_ms"), rpmsctl_control_int(p, "cycles"));
	} else if (!strcmp(name, "theta_burst")) {
		printf(", %lld bursts of %lld at %g Hz every %g ms, %lld cycles",
		       rpmsctl_control_int(p, "theta_bursts"),
		       rpmsctl_control_int(p, "theta_burst_pulses"),
		       rpmsctl_control_num(p, "theta_frequency_hz"),
		       rpmsctl_control_num(p, "theta_period_ms"), rpmsctl_control_int(p, "cycles"));
	}
	printf(", %g %%, %lld us; %s, refractory %g ms\n", rpmsctl_control_num(p, "intensity_pct"),
	       rpmsctl_control_int(p, "pulse_width_us"), rpmsctl_control_str(p, "mode"),
	       rpmsctl_control_num(p, "refractory_ms"));
}

static void rpmsctl_control_print_status(json_t *r)
{
	json_t *s = json_object_get(r, "session"), *a = json_object_get(r, "acquisition");
	json_t *f = json_object_get(r, "last_fault"), *l = json_object_get(r, "limits");
	json_t *c = json_object_get(r, "control"), *k = json_object_get(r, "course");
	double t = rpmsctl_control_num(r, "coil_temperature_c");
	double age = rpmsctl_control_num(a, "block_age_ms");

	printf("armed:        %s", json_is_true(json_object_get(r, "armed")) ? "yes" : "no");
	if (json_is_string(json_object_get(r, "arm_blocked"))) {
		printf(" (%s)", rpmsctl_control_str(r, "arm_blocked"));
	}
	printf("\nsession:      ");
	if (json_is_object(s)) {
		printf("patient %s, session %s\n", rpmsctl_control_str(s, "patient_id"),
		       rpmsctl_control_str(s, "session_id"));
	} else {
		printf("none\n");
	}
	if (json_is_object(k)) {
		printf("course:       %s, database session %lld, at most %lld pulses, intensity %s\n",
		       rpmsctl_control_str(k, "course_id"), rpmsctl_control_int(k, "db_session"),
		       rpmsctl_control_int(k, "pulses_cap"), rpmsctl_control_str(k, "intensity_rule"));
	}
	printf("protocol:     ");
	rpmsctl_control_protocol(json_object_get(r, "protocol"));
	printf("pulses:       %lld this run, %lld this session (max %lld), %lld today (max %lld)\n",
	       rpmsctl_control_int(r, "pulses"), rpmsctl_control_int(r, "pulses_session"),
	       rpmsctl_control_int(l, "max_session_pulses"), rpmsctl_control_int(r, "pulses_today"),
	       rpmsctl_control_int(l, "max_daily_pulses"));
	printf("coil:         ");
	if (isfinite(t)) {
		printf("%.1f C (read %.1f s ago; max %g C)\n", t,
		       rpmsctl_control_num(r, "coil_temperature_age_s"),
		       rpmsctl_control_num(l, "max_coil_temp_c"));
	} else {
		printf("temperature not known\n");
	}
	printf("acquisition:  %s", rpmsctl_control_str(a, "state"));
	if (isfinite(age)) {
		printf(", last block %.1f ms ago", age);
	}
	printf(", %lld/%lld channels calibrated, %lld samples\n", rpmsctl_control_int(a, "calibrated"),
	       rpmsctl_control_int(a, "channels"), rpmsctl_control_int(a, "samples"));
	printf("last fault:   ");
	if (json_is_object(f)) {
		printf("%s: %s (code %lld)\n", rpmsctl_control_str(f, "state"),
		       rpmsctl_control_str(f, "reason"), rpmsctl_control_int(f, "code"));
	} else {
		printf("none\n");
	}
	printf("control:      %s, CURVE %s", rpmsctl_control_str(c, "endpoint"),
	       json_is_true(json_object_get(c, "curve")) ? "on" : "off");
	if (json_is_string(json_object_get(c, "server_public_key"))) {
		printf(" (server key %s)", rpmsctl_control_str(c, "server_public_key"));
	}
	if (rpmsctl_control_int(c, "handshakes_refused") > 0) {
		printf(", %lld client%s refused (%lld handshake%s)",
		       rpmsctl_control_int(c, "clients_refused"),
		       rpmsctl_control_int(c, "clients_refused") == 1 ? "" : "s",
		       rpmsctl_control_int(c, "handshakes_refused"),
		       rpmsctl_control_int(c, "handshakes_refused") == 1 ? "" : "s");
	}
	printf("\n");
}

static void rpmsctl_control_print(const char *cmd, json_t *r)
{
	json_t *s = json_object_get(r, "session");

	if (!strcmp(cmd, "status")) {
		rpmsctl_control_print_status(r);
	} else if (!strcmp(cmd, "arm") || !strcmp(cmd, "disarm")) {
		printf("%s%s\n", json_is_true(json_object_get(r, "changed")) ? "" : "already ",
		       json_is_true(json_object_get(r, "armed")) ? "armed" : "disarmed");
	} else if (!strcmp(cmd, "assess")) {
		const char *kind = rpmsctl_control_str(r, "kind");

		printf("assessment started: %s %s over the next %g s of EMG; %s. The numbers "
		       "follow on rpms.state \"assessment\" and in rpmsctl course\n",
		       rpmsctl_control_str(r, "phase"), kind, rpmsctl_control_num(r, "seconds"),
		       !strcmp(kind, "mvc") ? "the patient contracts each muscle maximally" :
		       !strcmp(kind, "cci") ? "the patient does the task" :
		       !strcmp(kind, "stretch") ? "stretch the relaxed muscle from rest, about "
		       "20 times at velocities from slow to fast" :
		       "keep the patient at rest");
		if (!strcmp(kind, "stretch")) {
			printf("stretch reflex of %s: the onset angle of each stretch with %s %s, "
			       "regressed on velocity\n", rpmsctl_control_str(r, "muscle"),
			       rpmsctl_control_str(r, "angle"), rpmsctl_control_str(r, "direction"));
		}
		if (!strcmp(kind, "cci")) {
			printf("co-contraction index of %s (agonist) and %s (antagonist): %s, "
			       "2 * sum(min) / sum(a + b), %g s windows\n",
			       rpmsctl_control_str(r, "agonist"), rpmsctl_control_str(r, "antagonist"),
			       rpmsctl_control_str(r, "formula"), rpmsctl_control_num(r, "window_s"));
		}
	} else if (!strcmp(cmd, "calibrate")) {
		printf("calibrating %lld channel(s): keep the patient at rest for %g s; the new "
		       "thresholds follow on rpms.state\n", rpmsctl_control_int(r, "channels"),
		       rpmsctl_control_num(r, "window_s"));
	} else if (!strcmp(cmd, "session_start")) {
		json_t *k = json_object_get(r, "course");

		printf("session started: patient %s, session %s\n", rpmsctl_control_str(s, "patient_id"),
		       rpmsctl_control_str(s, "session_id"));
		if (k) {
			printf("course %s: database session %lld, at most %lld pulses, intensity %s\n",
			       rpmsctl_control_str(k, "course_id"), rpmsctl_control_int(k, "db_session"),
			       rpmsctl_control_int(k, "pulses_cap"),
			       rpmsctl_control_str(k, "intensity_rule"));
			printf("protocol: ");
			rpmsctl_control_protocol(json_object_get(json_object_get(k, "protocol"),
								 "protocol"));
		}
	} else if (!strcmp(cmd, "session_stop")) {
		if (json_is_true(json_object_get(r, "stopped"))) {
			printf("session stopped: patient %s, session %s, %lld pulses; coil disarmed\n",
			       rpmsctl_control_str(s, "patient_id"), rpmsctl_control_str(s, "session_id"),
			       rpmsctl_control_int(r, "pulses_session"));
			if (json_is_string(json_object_get(r, "deviation"))) {
				printf("deviation recorded: %s\n", rpmsctl_control_str(r, "deviation"));
			}
		} else {
			printf("no session was active; coil disarmed\n");
		}
	} else if (!strcmp(cmd, "set")) {
		json_t *p = json_object_get(r, "protocol");

		/* when it applies: closed loop a burst onset starts the next train */
		if (!json_is_true(json_object_get(r, "applied"))) {
			printf("set, not taken up yet (acquisition stalled?): ");
		} else if (!strcmp(rpmsctl_control_str(p, "mode"), "open_loop")) {
			printf("set, from the next train: ");
		} else {
			printf("set, from the next burst onset's train: ");
		}
		rpmsctl_control_protocol(p);
		if (json_is_string(json_object_get(r, "deviation"))) {
			printf("deviation recorded: %s\n", rpmsctl_control_str(r, "deviation"));
		}
	}
}

/* Print @reply; @return the exit status it stands for. */
static int rpmsctl_control_report(const struct rpmsctl_control_opts *o, const char *cmd,
				  const char *reply)
{
	json_error_t jerr;
	json_t *j, *e;
	int ret;

	j = json_loads(reply, 0, &jerr);
	if (!j || !json_is_boolean(json_object_get(j, "ok"))) {
		json_decref(j);
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "%s: the reply is not one: %.200s",
					    cmd, reply);
	}
	ret = json_is_true(json_object_get(j, "ok")) ? RPMSCTL_CONTROL_OK : RPMSCTL_CONTROL_REFUSED;
	if (o->conn.json) {
		printf("%s\n", reply);
	} else if (ret == RPMSCTL_CONTROL_OK) {
		rpmsctl_control_print(cmd, json_object_get(j, "result"));
	}
	if (ret != RPMSCTL_CONTROL_OK) {
		e = json_object_get(j, "error");
		fprintf(stderr, "rpmsctl: %s refused (%s): %s", cmd, rpmsctl_control_str(e, "code"),
			rpmsctl_control_str(e, "message"));
		if (json_is_string(json_object_get(e, "rule"))) {
			fprintf(stderr, " [rule %s]", rpmsctl_control_str(e, "rule"));
		}
		fputc('\n', stderr);
	}
	fflush(stdout);
	json_decref(j);
	return ret;
}

/* ---- the command line -------------------------------------------------- */

/*
 * Options common to the control commands; what follows them is left in
 * argv[optind..].
 * @return 0, -1 after --help, or an exit status
 */
static int rpmsctl_control_options(int argc, char **argv, struct rpmsctl_control_opts *o,
				   bool session)
{
	enum { OPT_PATIENT = RPMSCTL_CONTROL_OPT_NEXT, OPT_SESSION, OPT_COURSE, OPT_MT,
	       OPT_REASON, OPT_PRE, OPT_POST, OPT_SECONDS, OPT_AGONIST, OPT_ANTAGONIST,
	       OPT_MUSCLE, OPT_DIRECTION };
	static const struct option longopts[] = {
		RPMSCTL_CONTROL_CONN_LONGOPTS,
		{ "patient", required_argument, NULL, OPT_PATIENT },
		{ "session", required_argument, NULL, OPT_SESSION },
		{ "course", required_argument, NULL, OPT_COURSE },
		{ "mt", required_argument, NULL, OPT_MT },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "pre", no_argument, NULL, OPT_PRE },
		{ "post", no_argument, NULL, OPT_POST },
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "agonist", required_argument, NULL, OPT_AGONIST },
		{ "muscle", required_argument, NULL, OPT_MUSCLE },
		{ "direction", required_argument, NULL, OPT_DIRECTION },
		{ "antagonist", required_argument, NULL, OPT_ANTAGONIST },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	rpmsctl_control_conn_init(&o->conn);
	o->phase = -1;
	opterr = 0;
	optind = 0;	/* afresh: main has run getopt over the options before the command */
	while ((c = getopt_long(argc, argv, RPMSCTL_CONTROL_CONN_SHORTOPTS, longopts,
				NULL)) != -1) {
		ret = rpmsctl_control_conn_option(&o->conn, c, optarg);
		if (ret != 1) {
			if (ret != 0) {
				return ret;
			}
			continue;
		}
		switch (c) {
		case OPT_PATIENT:
		case OPT_SESSION:
			if (!session) {
				return rpmsctl_control_usage_error("%s: only for 'session start'",
								   argv[optind - 1]);
			}
			*(c == OPT_PATIENT ? &o->patient_id : &o->session_id) = optarg;
			break;
		case OPT_COURSE:
		case OPT_MT:
			if (!session) {
				return rpmsctl_control_usage_error("%s: only for 'session start'",
								   argv[optind - 1]);
			}
			*(c == OPT_COURSE ? &o->course_id : &o->mt) = optarg;
			break;
		case OPT_REASON:
			if (!session && strcmp(argv[0], "set")) {
				return rpmsctl_control_usage_error("--reason: only for 'session stop' "
								   "and 'set'");
			}
			o->reason = optarg;
			break;
		case OPT_AGONIST:
		case OPT_ANTAGONIST:
			if (strcmp(argv[0], "assess")) {
				return rpmsctl_control_usage_error("%s: only for 'assess cci'",
								   argv[optind - 1]);
			}
			*(c == OPT_AGONIST ? &o->agonist : &o->antagonist) = optarg;
			break;
		case OPT_MUSCLE:
		case OPT_DIRECTION:
			if (strcmp(argv[0], "assess")) {
				return rpmsctl_control_usage_error("%s: only for 'assess stretch'",
								   argv[optind - 1]);
			}
			*(c == OPT_MUSCLE ? &o->muscle : &o->direction) = optarg;
			break;
		case OPT_PRE:
		case OPT_POST:
		case OPT_SECONDS:
			if (strcmp(argv[0], "assess")) {
				return rpmsctl_control_usage_error("%s: only for 'assess'",
								   argv[optind - 1]);
			}
			if (c == OPT_SECONDS) {
				o->seconds = optarg;
			} else if (o->phase >= 0 && o->phase != (c == OPT_POST)) {
				return rpmsctl_control_usage_error("assess: --pre and --post: give one");
			} else {
				o->phase = c == OPT_POST;
			}
			break;
		case 'h':
			rpmsctl_control_usage(stdout);
			return -1;
		default:
			return rpmsctl_control_getopt_error(NULL, c, argv);
		}
	}
	return 0;
}

/* "KEY=VALUE" arguments into a "set" request. */
static int rpmsctl_control_set_params(int argc, char **argv, json_t *params)
{
	char key[128];
	const char *eq;
	int i;

	if (argc < 1) {
		return rpmsctl_control_usage_error("set: expected KEY=VALUE, e.g. "
						   "stim.intensity_pct=35");
	}
	if (argc > RPMSCTL_CONTROL_SET_MAX) {
		return rpmsctl_control_usage_error("set: %d keys (allowed: at most %d at once)", argc,
						   RPMSCTL_CONTROL_SET_MAX);
	}
	for (i = 0; i < argc; i++) {
		eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(key)) {
			return rpmsctl_control_usage_error("set: '%s' is not KEY=VALUE", argv[i]);
		}
		memcpy(key, argv[i], (size_t)(eq - argv[i]));
		key[eq - argv[i]] = '\0';
		/* as text: the daemon parses it exactly as in a configuration file */
		if (json_object_get(params, key)) {
			return rpmsctl_control_usage_error("set: %s given twice", key);
		}
		json_object_set_new(params, key, json_string(eq + 1));
	}
	return 0;
}

/*
 * "assess rest|stretch|mvc|cci --pre|--post [--seconds N] [--agonist CH
 * --antagonist CH] [--muscle CH [--direction D]]".
 */
static int rpmsctl_control_assess(const struct rpmsctl_control_opts *o, int argc, char **argv,
				  json_t *req)
{
	char *end;
	bool cci = argc == 1 && !strcmp(argv[0], "cci");
	bool stretch = argc == 1 && !strcmp(argv[0], "stretch");
	double sec = stretch ? 120 : 60;

	if (argc != 1 || (strcmp(argv[0], "rest") && strcmp(argv[0], "mvc") && !cci && !stretch)) {
		return rpmsctl_control_usage_error("assess: expected 'rest', 'stretch', 'mvc' or "
						   "'cci' (the assessments this daemon runs)");
	}
	if (cci != (o->agonist || o->antagonist) || (cci && !(o->agonist && o->antagonist))) {
		return rpmsctl_control_usage_error("assess: --agonist and --antagonist: both for "
						   "'cci', and only for it");
	}
	if (stretch != (o->muscle != NULL) || (!stretch && o->direction)) {
		return rpmsctl_control_usage_error("assess: --muscle (and --direction) for "
						   "'stretch', and only for it");
	}
	if (o->direction && strcmp(o->direction, "increasing") &&
	    strcmp(o->direction, "decreasing")) {
		return rpmsctl_control_usage_error("--direction: '%s' (allowed: increasing or "
						   "decreasing, the way the joint angle goes while "
						   "the muscle is stretched)", o->direction);
	}
	if (o->phase < 0) {
		return rpmsctl_control_usage_error("assess: needs --pre or --post (before or after "
						   "the stimulation)");
	}
	if (o->seconds) {
		errno = 0;
		sec = strtod(o->seconds, &end);
		if (errno || end == o->seconds || *end || !isfinite(sec) || sec < 1 || sec > 600) {
			return rpmsctl_control_usage_error("--seconds: '%s' is not a number of "
							   "seconds (allowed: 1 to 600)", o->seconds);
		}
	}
	json_object_set_new(req, "kind", json_string(argv[0]));
	if (cci) {
		json_object_set_new(req, "agonist", json_string(o->agonist));
		json_object_set_new(req, "antagonist", json_string(o->antagonist));
	}
	if (stretch) {
		json_object_set_new(req, "muscle", json_string(o->muscle));
		if (o->direction) {
			json_object_set_new(req, "direction", json_string(o->direction));
		}
	}
	json_object_set_new(req, "phase", json_string(o->phase ? "post" : "pre"));
	json_object_set_new(req, "seconds", json_real(sec));
	return 0;
}

int rpmsctl_control_main(int argc, char **argv)
{
	struct rpmsctl_control_opts o = { 0 };
	const char *cmd = argv[0];
	bool session = !strcmp(cmd, "session");
	json_t *req = NULL, *params;
	char *text = NULL, *reply = NULL;
	int ret;

	ret = rpmsctl_control_options(argc, argv, &o, session);
	if (ret != 0) {
		return ret < 0 ? RPMSCTL_CONTROL_OK : ret;
	}
	/* "session start|stop": the second word, wherever the options were */
	if (session) {
		if (optind >= argc || (strcmp(argv[optind], "start") && strcmp(argv[optind], "stop"))) {
			return rpmsctl_control_usage_error("session: expected 'start' or 'stop'");
		}
		cmd = !strcmp(argv[optind], "start") ? "session_start" : "session_stop";
		optind++;
		if (strcmp(cmd, "session_start") && (o.patient_id || o.session_id || o.course_id ||
						     o.mt)) {
			return rpmsctl_control_usage_error("%s: only for 'session start'",
							   o.patient_id ? "--patient" : o.session_id
							   ? "--session" : o.course_id ? "--course"
							   : "--mt");
		}
		if (!strcmp(cmd, "session_start") && o.reason) {
			return rpmsctl_control_usage_error("--reason: only for 'session stop' and 'set'");
		}
		if (o.mt && !o.course_id) {
			return rpmsctl_control_usage_error("--mt: only with --course (a prescription's "
							   "intensity in %% of the motor threshold)");
		}
	}
	req = json_pack("{s:s}", "cmd", cmd);
	if (!req) {
		return rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "out of memory");
	}
	if (!strcmp(cmd, "set")) {
		params = json_object();
		json_object_set_new(req, "params", params);
		ret = rpmsctl_control_set_params(argc - optind, argv + optind, params);
	} else if (!strcmp(cmd, "assess")) {
		ret = rpmsctl_control_assess(&o, argc - optind, argv + optind, req);
	} else if (optind < argc) {
		ret = rpmsctl_control_usage_error("%s: unexpected argument '%s'", argv[0], argv[optind]);
	} else if (!strcmp(cmd, "session_start")) {
		if (!o.patient_id || !o.session_id) {
			ret = rpmsctl_control_usage_error("session start: --patient ID and --session ID "
							  "are required");
		} else {
			json_object_set_new(req, "patient_id", json_string(o.patient_id));
			json_object_set_new(req, "session_id", json_string(o.session_id));
			/* json_string refuses bytes that are not UTF-8 */
			if (!json_object_get(req, "patient_id") || !json_object_get(req, "session_id")) {
				ret = rpmsctl_control_usage_error("session start: ids must be text");
			}
		}
		if (ret == 0 && o.course_id) {
			json_object_set_new(req, "course_id", json_string(o.course_id));
			if (!json_object_get(req, "course_id")) {
				ret = rpmsctl_control_usage_error("session start: ids must be text");
			}
		}
		if (ret == 0 && o.mt) {
			char *end;
			double mt;

			errno = 0;
			mt = strtod(o.mt, &end);
			if (errno || end == o.mt || *end || !isfinite(mt)) {
				ret = rpmsctl_control_usage_error("--mt: '%s' is not a number (allowed: "
								  "%% of maximum output, above 0, at "
								  "most 100)", o.mt);
			} else {
				json_object_set_new(req, "motor_threshold_pct", json_real(mt));
			}
		}
	}
	if (ret == 0 && o.reason) {
		json_object_set_new(req, "reason", json_string(o.reason));
		if (!json_object_get(req, "reason")) {
			ret = rpmsctl_control_usage_error("--reason: must be text");
		}
	}
	if (ret == 0) {
		text = json_dumps(req, JSON_COMPACT);
		ret = text ? rpmsctl_control_request(&o.conn, text, &reply)
			   : rpmsctl_control_fail(RPMSCTL_CONTROL_LOCAL, "out of memory");
	}
	if (ret == 0) {
		ret = rpmsctl_control_report(&o, cmd, reply);
	}
	free(reply);
	free(text);
	json_decref(req);
	return ret;
}
