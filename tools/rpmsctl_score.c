// SPDX-License-Identifier: MIT
/*
 * rpmsctl score: a clinician's scores written straight to the course
 * database, opened as a client (COURSE_DB_CLIENT) like rpmsctl course: it
 * never creates, migrates or syncs anything. Every score of the command
 * line is checked before the first is written, so a typo in the third
 * changes nothing; each written score is read back from the database
 * before the command says it is saved.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "course_db.h"
#include "course_db_config.h"
#include "rpmsd-build.h"
#include "rpmsctl_control.h"
#include "rpmsctl_db.h"
#include "rpmsctl_score.h"

/* More scores than muscles a clinician grades in one sitting is a mistake. */
#define RPMSCTL_SCORE_MAX 64

struct rpmsctl_score {
	const char *config;
	const char *patient;
	const char *course;
	int64_t session;
	int phase;			/* -1 until --pre or --post */
	size_t n;
	struct course_db_score s[RPMSCTL_SCORE_MAX];
	const char *arg[RPMSCTL_SCORE_MAX];	/* the option each came from, for errors */
	char muscle[RPMSCTL_SCORE_MAX][COURSE_DB_ID_MAX + 1];
	char who[COURSE_DB_ID_MAX + 1];
	struct rpmsctl_db *store;
	struct course_db *db;		/* store's */
};

void rpmsctl_score_usage(FILE *f)
{
	fprintf(f,
		"\n"
		"Clinical scores (docs/outcomes.md; written directly, the daemon need not run):\n"
		"  score PATIENT (--session ID | --course ID) (--pre | --post)\n"
		"        [--mas MUSCLE=GRADE]... [--tardieu MUSCLE=R1,R2]... [--fugl-meyer N]\n"
		"                     Modified Ashworth (0, 1, 1+, 2, 3, 4) per muscle,\n"
		"                     Modified Tardieu R1/R2 angles in degrees (-180..180) per\n"
		"                     muscle, Fugl-Meyer upper extremity total (0..66); under\n"
		"                     your user name; every score checked before any is\n"
		"                     written, said saved once read back\n"
		"Exit status of score: 0 saved, 1 refused by the database, 2 usage error or a\n"
		"value out of range, 3 database unreachable, 4 a local error.\n");
}

/* "rpmsctl score: ..." on stderr; the exit status @status. */
#define rpmsctl_score_fail(status, ...) rpmsctl_db_fail("score", (status), __VA_ARGS__)

/* "MUSCLE=VALUE": the muscle copied into slot @i, the value returned (NULL: no '='). */
static const char *rpmsctl_score_split(struct rpmsctl_score *c, size_t i, const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || (size_t)(eq - arg) > COURSE_DB_ID_MAX) {
		return NULL;
	}
	snprintf(c->muscle[i], sizeof(c->muscle[i]), "%.*s", (int)(eq - arg), arg);
	return eq + 1;
}

/* A number that is all of @s; false otherwise. */
static bool rpmsctl_score_num(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno == 0 && end != s && !*end && isfinite(*v);
}

/* Add the score of option @opt (its text @arg) to the list. */
static int rpmsctl_score_add(struct rpmsctl_score *c, int opt, const char *arg)
{
	struct course_db_score *s;
	const char *v;
	size_t i = c->n;
	double d;

	if (i == RPMSCTL_SCORE_MAX) {
		return rpmsctl_control_usage_error("score: more than %d scores in one command",
						   RPMSCTL_SCORE_MAX);
	}
	s = &c->s[i];
	memset(s, 0, sizeof(*s));
	s->r1_deg = s->r2_deg = NAN;
	c->arg[i] = arg;
	if (opt == 'F') {
		s->instrument = COURSE_DB_FUGL_MEYER_UE;
		if (!rpmsctl_score_num(arg, &d) || d != floor(d) || fabs(d) > 1e6) {
			return rpmsctl_control_usage_error("score: --fugl-meyer '%s': not a whole "
							   "number (the FM-UE total, 0..66)", arg);
		}
		s->fugl_meyer = (int)d;
		c->n++;
		return 0;
	}
	v = rpmsctl_score_split(c, i, arg);
	if (!v) {
		return rpmsctl_control_usage_error("score: --%s '%s': expected MUSCLE=%s",
						   opt == 'm' ? "mas" : "tardieu", arg,
						   opt == 'm' ? "GRADE" : "R1,R2");
	}
	s->muscle = c->muscle[i];
	if (opt == 'm') {
		s->instrument = COURSE_DB_MODIFIED_ASHWORTH;
		s->mas_grade = v;
	} else {
		const char *comma = strchr(v, ',');
		char r1[64];

		s->instrument = COURSE_DB_MODIFIED_TARDIEU;
		if (!comma || (size_t)(comma - v) >= sizeof(r1)) {
			return rpmsctl_control_usage_error("score: --tardieu '%s': expected "
							   "MUSCLE=R1,R2 (degrees)", arg);
		}
		snprintf(r1, sizeof(r1), "%.*s", (int)(comma - v), v);
		if (!rpmsctl_score_num(r1, &s->r1_deg) || !rpmsctl_score_num(comma + 1,
									   &s->r2_deg)) {
			return rpmsctl_control_usage_error("score: --tardieu '%s': R1 and R2 must "
							   "be numbers (degrees)", arg);
		}
	}
	c->n++;
	return 0;
}

static int rpmsctl_score_options(struct rpmsctl_score *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "course", required_argument, NULL, 'C' },
		{ "session", required_argument, NULL, 's' },
		{ "pre", no_argument, NULL, 'p' },
		{ "post", no_argument, NULL, 'P' },
		{ "mas", required_argument, NULL, 'm' },
		{ "tardieu", required_argument, NULL, 't' },
		{ "fugl-meyer", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *session = NULL;
	char *end;
	int opt, rc;

	c->config = RPMSD_CONFIG_FILE;
	c->phase = -1;
	opterr = 0;
	optind = 0;	/* 0: glibc starts afresh (rpmsctl.c parsed with a leading '+') */
	while ((opt = getopt_long(argc, argv, ":c:C:s:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c->config = optarg;
			break;
		case 'C':
			c->course = optarg;
			break;
		case 's':
			session = optarg;
			break;
		case 'p':
		case 'P':
			if (c->phase >= 0 && c->phase != (opt == 'P')) {
				return rpmsctl_control_usage_error("score: --pre and --post: give "
								   "one");
			}
			c->phase = opt == 'P';
			break;
		case 'm':
		case 't':
		case 'F':
			rc = rpmsctl_score_add(c, opt, optarg);
			if (rc) {
				return rc;
			}
			break;
		case 'h':
			rpmsctl_score_usage(stdout);
			return -1;
		default:
			return rpmsctl_control_getopt_error("score", opt, argv);
		}
	}
	if (argc - optind != 1) {
		return rpmsctl_control_usage_error(argc == optind ? "score: missing PATIENT" :
						   "score: expected one PATIENT, got %d arguments",
						   argc - optind);
	}
	c->patient = argv[optind];
	if (session) {
		errno = 0;
		c->session = strtoll(session, &end, 10);
		if (errno || end == session || *end || c->session <= 0) {
			return rpmsctl_control_usage_error("score: --session: '%s' is not a session "
							   "id (a positive integer)", session);
		}
	}
	if (!session && !c->course) {
		return rpmsctl_control_usage_error("score: needs --session ID (a score of that "
						   "session) or --course ID (of the course)");
	}
	if (c->phase < 0) {
		return rpmsctl_control_usage_error("score: needs --pre or --post");
	}
	if (!c->n) {
		return rpmsctl_control_usage_error("score: nothing to enter (--mas, --tardieu "
						   "or --fugl-meyer)");
	}
	return 0;
}

/* Fill in who, when and where, then check every score: the first bad one is named. */
static int rpmsctl_score_check(struct rpmsctl_score *c)
{
	static const char *const opt[] = { "--mas", "--tardieu", "--fugl-meyer" };
	struct passwd *pw = getpwuid(getuid());
	char err[COURSE_DB_ERR_MAX];
	int64_t now = (int64_t)time(NULL);

	/* Who entered it: the login of the real user (under sudo: the one sudo ran as). */
	if (pw && pw->pw_name && strlen(pw->pw_name) <= COURSE_DB_ID_MAX) {
		snprintf(c->who, sizeof(c->who), "%s", pw->pw_name);
	} else {
		snprintf(c->who, sizeof(c->who), "uid-%u", (unsigned)getuid());
	}
	for (size_t i = 0; i < c->n; i++) {
		struct course_db_score *s = &c->s[i];

		s->patient = c->patient;
		s->course = c->course;
		s->session = c->session;
		s->phase = c->phase ? COURSE_DB_POST : COURSE_DB_PRE;
		s->author = c->who;
		s->at = now;
		if (course_db_score_check(s, err, sizeof(err)) < 0) {
			return rpmsctl_control_usage_error("score: %s %s: %s (nothing saved)",
							   opt[s->instrument], c->arg[i], err);
		}
	}
	return 0;
}

static int rpmsctl_score_open(struct rpmsctl_score *c)
{
	int rc = rpmsctl_db_open("score", c->config, &c->store);

	if (rc == RPMSCTL_CONTROL_OK) {
		c->db = rpmsctl_db_handle(c->store);
	}
	return rc;
}

/* The score @id as the database has it now, or NULL. */
static const struct course_db_report_score *rpmsctl_score_find(const struct course_db_report *r,
							       int64_t id)
{
	for (size_t i = 0; i < r->n_courses; i++) {
		for (size_t j = 0; j < r->courses[i].n_scores; j++) {
			if (r->courses[i].scores[j].id == id) {
				return &r->courses[i].scores[j];
			}
		}
	}
	return NULL;
}

/* Does @x read back as @s was written? */
static bool rpmsctl_score_same(const struct course_db_report_score *x,
			       const struct course_db_score *s)
{
	if (!x || x->instrument != s->instrument || x->phase != s->phase ||
	    x->session != s->session || strcmp(x->author, s->author)) {
		return false;
	}
	switch (s->instrument) {
	case COURSE_DB_MODIFIED_ASHWORTH:
		return !strcmp(x->muscle, s->muscle) && !strcmp(x->mas_grade, s->mas_grade);
	case COURSE_DB_MODIFIED_TARDIEU:
		return !strcmp(x->muscle, s->muscle) && x->r1_deg == s->r1_deg &&
		       x->r2_deg == s->r2_deg;
	default:
		return x->fugl_meyer == s->fugl_meyer;
	}
}

static void rpmsctl_score_print(int64_t id, const struct course_db_score *s)
{
	printf("score %" PRId64 " saved: %s ", id, course_db_phase_name(s->phase));
	switch (s->instrument) {
	case COURSE_DB_MODIFIED_ASHWORTH:
		printf("Modified Ashworth %s %s", s->muscle, s->mas_grade);
		break;
	case COURSE_DB_MODIFIED_TARDIEU:
		printf("Modified Tardieu %s R1 %g R2 %g (R2-R1 %g) degrees", s->muscle, s->r1_deg,
		       s->r2_deg, s->r2_deg - s->r1_deg);
		break;
	default:
		printf("Fugl-Meyer UE %d/%d", s->fugl_meyer, COURSE_DB_FUGL_MEYER_UE_MAX);
		break;
	}
	printf(", patient %s, ", s->patient);
	if (s->session > 0) {
		printf("session %" PRId64, s->session);
	} else {
		printf("course %s", s->course);
	}
	printf(", entered by %s\n", s->author);
}

static int rpmsctl_score_write(struct rpmsctl_score *c)
{
	struct course_db_report *r = NULL;
	char err[COURSE_DB_ERR_MAX];
	int64_t id[RPMSCTL_SCORE_MAX] = { 0 };
	size_t i;
	int rc;

	for (i = 0; i < c->n; i++) {
		rc = course_db_score_add(c->db, &c->s[i], &id[i], err, sizeof(err));
		if (rc < 0) {
			return rpmsctl_score_fail(rpmsctl_db_status(rc), "%s%s", err,
						  i ? " (the scores before it were written: "
						  "see rpmsctl course)" : "");
		}
	}
	/* Saved is said only after the database gives each score back as written. */
	rc = course_db_report(c->db, c->patient, NULL, &r, err, sizeof(err));
	if (rc < 0) {
		return rpmsctl_score_fail(rpmsctl_db_status(rc), "scores written but not read "
					  "back: %s", err);
	}
	for (i = 0; i < c->n; i++) {
		if (!rpmsctl_score_same(rpmsctl_score_find(r, id[i]), &c->s[i])) {
			course_db_report_free(r);
			return rpmsctl_score_fail(RPMSCTL_CONTROL_REFUSED, "score %" PRId64 " (%s) "
						  "was written but does not read back as written: "
						  "check rpmsctl course and enter it again", id[i],
						  c->arg[i]);
		}
	}
	for (i = 0; i < c->n; i++) {
		rpmsctl_score_print(id[i], &c->s[i]);
	}
	course_db_report_free(r);
	return fflush(stdout) == 0 ? RPMSCTL_CONTROL_OK :
	       rpmsctl_score_fail(RPMSCTL_CONTROL_LOCAL, "writing to standard output failed");
}

int rpmsctl_score_main(int argc, char **argv)
{
	struct rpmsctl_score *c = calloc(1, sizeof(*c));
	int rc;

	if (!c) {
		return rpmsctl_score_fail(RPMSCTL_CONTROL_LOCAL, "out of memory");
	}
	rc = rpmsctl_score_options(c, argc, argv);
	if (rc == 0) {
		rc = rpmsctl_score_check(c);
	}
	if (rc == 0) {
		rc = rpmsctl_score_open(c);
	}
	if (rc == 0) {
		rc = rpmsctl_score_write(c);
	}
	rpmsctl_db_close(c->store);
	free(c);
	return rc < 0 ? RPMSCTL_CONTROL_OK : rc;
}
