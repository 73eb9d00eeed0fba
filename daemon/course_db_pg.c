// SPDX-License-Identifier: MIT
/*
 * The course database on a PostgreSQL server shared by a site's rigs.
 *
 * Session starts are decided on the server, under a row lock on the
 * patient (SELECT ... FOR UPDATE), so two rigs never both take the last
 * slot. Everything a running session writes (pulses, end, details, notes,
 * the recording) goes first to a local journal (SQLite, synchronous=FULL)
 * and is synced from it in order: a server that is down or unreachable
 * loses nothing, and every journal entry is idempotent on the server
 * (GREATEST for pulses, COALESCE for the end, a unique (origin, seq) for
 * notes), so a crash between the server's commit and the journal's delete
 * replays harmlessly (the journal: course_db_pg_journal.c). Queries are
 * parameterised, never built from text.
 *
 * A site is a network (course_db_check_conninfo): a server off this host
 * is reached over TLS with its certificate verified against its name
 * (sslmode=verify-full) and SCRAM proven by channel binding
 * (channel_binding=require, which only SCRAM-SHA-256-PLUS satisfies), so
 * neither a password nor a patient id crosses the network in the clear or
 * to an impostor.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "course_db.h"
#include "course_db_private.h"
#include "course_db_pg_private.h"

#define COURSE_DB_PG_PARAMS 12
/* Any constant will do: it serialises migrations of rigs that start together. */
#define COURSE_DB_PG_MIGRATION_LOCK "7265706d7364"

static const char *const course_db_pg_steps[COURSE_DB_SCHEMA_VERSION] = {
	/* 1: patients, prescriptions, sessions */
	"CREATE TABLE patients (id TEXT PRIMARY KEY, created BIGINT NOT NULL);"
	"CREATE TABLE prescriptions (patient TEXT NOT NULL REFERENCES patients(id),"
	" course TEXT NOT NULL, text TEXT NOT NULL,"
	" sessions_per_course INTEGER NOT NULL CHECK (sessions_per_course > 0),"
	" max_sessions_per_day INTEGER NOT NULL CHECK (max_sessions_per_day > 0),"
	" min_hours_between DOUBLE PRECISION NOT NULL CHECK (min_hours_between >= 0),"
	" daily_pulse_cap BIGINT NOT NULL CHECK (daily_pulse_cap > 0),"
	" PRIMARY KEY (patient, course));"
	"CREATE TABLE sessions (id BIGSERIAL PRIMARY KEY,"
	" patient TEXT NOT NULL, course TEXT NOT NULL, rig TEXT NOT NULL,"
	" started BIGINT NOT NULL, stopped BIGINT, stop_reason TEXT,"
	" pulses BIGINT NOT NULL DEFAULT 0 CHECK (pulses >= 0),"
	" FOREIGN KEY (patient, course) REFERENCES prescriptions(patient, course));"
	"CREATE INDEX sessions_patient_started ON sessions(patient, started);",
	/* 2: what a session learns, its notes and recording, the course's dose */
	"ALTER TABLE sessions ADD COLUMN intensity_pct DOUBLE PRECISION,"
	" ADD COLUMN motor_threshold_pct DOUBLE PRECISION, ADD COLUMN target TEXT,"
	" ADD COLUMN arm_code TEXT, ADD COLUMN edf_file TEXT, ADD COLUMN edf_sha256 TEXT;"
	"CREATE TABLE notes (id BIGSERIAL PRIMARY KEY,"
	" session BIGINT NOT NULL REFERENCES sessions(id),"
	" kind TEXT NOT NULL CHECK (kind IN ('deviation', 'adverse')),"
	" at BIGINT NOT NULL, what TEXT NOT NULL, text TEXT NOT NULL,"
	" origin TEXT, origin_seq BIGINT, UNIQUE (origin, origin_seq));"
	"CREATE VIEW course_dose AS SELECT patient, course, COUNT(*) AS sessions,"
	" COALESCE(SUM(pulses), 0) AS pulses FROM sessions GROUP BY patient, course;",
	/* 3: outcome assessments (a stretch of the recording each) and clinical scores */
	"CREATE TABLE assessments (id BIGSERIAL PRIMARY KEY,"
	" session BIGINT NOT NULL REFERENCES sessions(id),"
	" phase TEXT NOT NULL CHECK (phase IN ('pre', 'post')),"
	" kind TEXT NOT NULL CHECK (kind IN ('rest', 'stretch', 'cci', 'mvc')),"
	" at BIGINT NOT NULL, onset DOUBLE PRECISION NOT NULL CHECK (onset >= 0),"
	" duration DOUBLE PRECISION NOT NULL CHECK (duration > 0),"
	" origin TEXT, origin_seq BIGINT, UNIQUE (origin, origin_seq));"
	"CREATE TABLE assessment_results ("
	" assessment BIGINT NOT NULL REFERENCES assessments(id),"
	" channel TEXT NOT NULL, name TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,"
	" PRIMARY KEY (assessment, channel, name));"
	"CREATE TABLE scores (id BIGSERIAL PRIMARY KEY,"
	" patient TEXT NOT NULL, course TEXT NOT NULL,"
	" session BIGINT REFERENCES sessions(id),"
	" phase TEXT NOT NULL CHECK (phase IN ('pre', 'post')),"
	" instrument TEXT NOT NULL CHECK (instrument IN ('modified_ashworth',"
	" 'modified_tardieu', 'fugl_meyer_ue')),"
	" muscle TEXT, mas_grade TEXT CHECK (mas_grade IN ('0', '1', '1+', '2', '3', '4')),"
	" r1_deg DOUBLE PRECISION CHECK (r1_deg BETWEEN -180 AND 180),"
	" r2_deg DOUBLE PRECISION CHECK (r2_deg BETWEEN -180 AND 180),"
	" fugl_meyer INTEGER CHECK (fugl_meyer BETWEEN 0 AND 66),"
	" author TEXT NOT NULL, at BIGINT NOT NULL,"
	" CHECK ((instrument = 'modified_ashworth' AND muscle IS NOT NULL AND"
	" mas_grade IS NOT NULL) OR (instrument = 'modified_tardieu' AND muscle IS NOT NULL"
	" AND r1_deg IS NOT NULL AND r2_deg IS NOT NULL) OR (instrument = 'fugl_meyer_ue'"
	" AND muscle IS NULL AND fugl_meyer IS NOT NULL)),"
	" FOREIGN KEY (patient, course) REFERENCES prescriptions(patient, course));"
	"CREATE INDEX scores_patient_course ON scores(patient, course);",
};

/* libpq's messages run over lines ending in a newline; the err buffer holds one line. */
static void course_db_pg_chomp(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		char c = *r == '\n' || *r == '\t' ? ' ' : *r;

		if (c != ' ' || (w > s && w[-1] != ' ')) {
			*w++ = c;
		}
	}
	while (w > s && w[-1] == ' ') {
		w--;
	}
	*w = '\0';
}

/* Server notices ("relation already exists, skipping") are not the caller's to see. */
static void course_db_pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int course_db_pg_unreachable(struct course_db_pg *p, char *err, size_t errlen)
{
	snprintf(err, errlen, "course database unreachable: %s",
		 p->conn ? PQerrorMessage(p->conn) : "no connection");
	course_db_pg_chomp(err);
	return -ENOTCONN;
}

/* The connection, reset once if it broke. */
int course_db_pg_connected(struct course_db_pg *p, char *err, size_t errlen)
{
	if (PQstatus(p->conn) == CONNECTION_OK) {
		return 0;
	}
	PQreset(p->conn);
	return PQstatus(p->conn) == CONNECTION_OK ? 0 : course_db_pg_unreachable(p, err, errlen);
}

/*
 * Run @sql with the arguments @types says ('s' text, NULL for NULL, 'i'
 * int64_t, 'd' double, 'I' int64_t with < 0 for NULL, 'D' double with NAN
 * for NULL) and return its result (caller PQclear()s), or NULL
 * with @err filled and *@rc set: -ENOTCONN when the connection is gone.
 */
static PGresult *course_db_pg_run(struct course_db_pg *p, const char *sql, int *rc,
				  char *err, size_t errlen, const char *types, va_list ap)
{
	char num[COURSE_DB_PG_PARAMS][32];
	const char *vals[COURSE_DB_PG_PARAMS];
	ExecStatusType st;
	PGresult *res;
	int n;

	for (n = 0; types[n]; n++) {
		if (n == COURSE_DB_PG_PARAMS) {
			snprintf(err, errlen, "course database: too many parameters for %s", sql);
			*rc = -E2BIG;
			return NULL;
		}
		switch (types[n]) {
		case 's':
			vals[n] = va_arg(ap, const char *);
			break;
		case 'i':
			snprintf(num[n], sizeof(num[n]), "%" PRId64, va_arg(ap, int64_t));
			vals[n] = num[n];
			break;
		case 'I': {
			int64_t v = va_arg(ap, int64_t);

			snprintf(num[n], sizeof(num[n]), "%" PRId64, v);
			vals[n] = v < 0 ? NULL : num[n];
			break;
		}
		case 'D': {
			double v = va_arg(ap, double);

			snprintf(num[n], sizeof(num[n]), "%.17g", v);
			vals[n] = isnan(v) ? NULL : num[n];
			break;
		}
		default:
			snprintf(num[n], sizeof(num[n]), "%.17g", va_arg(ap, double));
			vals[n] = num[n];
			break;
		}
	}
	res = PQexecParams(p->conn, sql, n, NULL, vals, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*rc = 0;
		return res;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		*rc = course_db_pg_unreachable(p, err, errlen);
	} else {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		snprintf(err, errlen, "course database: %s", PQresultErrorMessage(res));
		course_db_pg_chomp(err);
		/* 40001 serialization failure, 40P01 deadlock, 55P03 lock not available */
		*rc = state && (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
				!strcmp(state, "55P03")) ? -EBUSY : -EIO;
	}
	PQclear(res);
	return NULL;
}

/* As course_db_pg_run, reading up to @ncol integers of the first row (NULL: -1). */
static int course_db_pg_vq(struct course_db_pg *p, const char *sql, int64_t *row, int ncol,
			   bool *found, char *err, size_t errlen, const char *types, va_list ap)
{
	PGresult *res;
	int rc, i;

	res = course_db_pg_run(p, sql, &rc, err, errlen, types, ap);
	if (found) {
		*found = res && PQntuples(res) > 0;
	}
	for (i = 0; i < ncol; i++) {
		row[i] = res && PQntuples(res) > 0 && !PQgetisnull(res, 0, i) ?
			 strtoll(PQgetvalue(res, 0, i), NULL, 10) : -1;
	}
	PQclear(res);
	return rc;
}

/* See course_db_pg_vq. */
int course_db_pg_q(struct course_db_pg *p, const char *sql, int64_t *row, int ncol,
		   bool *found, char *err, size_t errlen, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = course_db_pg_vq(p, sql, row, ncol, found, err, errlen, types, ap);
	va_end(ap);
	return rc;
}

/* As course_db_pg_run: every row, for the caller to read and PQclear(). */
static PGresult *course_db_pg_rows(struct course_db_pg *p, const char *sql, int *rc,
				   char *err, size_t errlen, const char *types, ...)
{
	PGresult *res;
	va_list ap;

	va_start(ap, types);
	res = course_db_pg_run(p, sql, rc, err, errlen, types, ap);
	va_end(ap);
	return res;
}

void course_db_pg_rollback(struct course_db_pg *p)
{
	PQclear(PQexec(p->conn, "ROLLBACK"));
}

int course_db_pg_exec(struct course_db_pg *p, const char *sql, char *err, size_t errlen)
{
	return course_db_pg_q(p, sql, NULL, 0, NULL, err, errlen, "");
}

static int course_db_pg_migrate(struct course_db_pg *p, const char *where, int target,
				char *err, size_t errlen)
{
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_pg_exec(p, "BEGIN", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_pg_exec(p, "SELECT pg_advisory_xact_lock(x'" COURSE_DB_PG_MIGRATION_LOCK
			       "'::bigint)", err, errlen);
	if (rc == 0) {
		rc = course_db_pg_exec(p, "CREATE TABLE IF NOT EXISTS schema_version ("
				       "version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)",
				       err, errlen);
	}
	if (rc == 0) {
		rc = course_db_pg_q(p, "SELECT COALESCE(MAX(version), 0) FROM schema_version", v,
				    1, NULL, err, errlen, "");
	}
	if (rc < 0) {
		goto err_rollback;
	}
	if (v[0] > COURSE_DB_SCHEMA_VERSION) {
		rc = course_db_schema_newer(where, (int)v[0], err, errlen);
		goto err_rollback;
	}
	for (int ver = (int)v[0]; ver < target; ver++) {
		PGresult *res = PQexec(p->conn, course_db_pg_steps[ver]);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "course database %s: migration to schema version %d: "
				 "%s", where, ver + 1, PQresultErrorMessage(res));
			course_db_pg_chomp(err);
			PQclear(res);
			rc = PQstatus(p->conn) == CONNECTION_OK ? -EIO :
			     course_db_pg_unreachable(p, err, errlen);
			goto err_rollback;
		}
		PQclear(res);
		rc = course_db_pg_q(p, "INSERT INTO schema_version VALUES ($1,"
				    " EXTRACT(EPOCH FROM now())::bigint)", NULL, 0, NULL, err,
				    errlen, "i", (int64_t)(ver + 1));
		if (rc < 0) {
			goto err_rollback;
		}
	}
	return course_db_pg_exec(p, "COMMIT", err, errlen);

err_rollback:
	course_db_pg_rollback(p);
	return rc;
}

/* COURSE_DB_CLIENT: this build's schema exactly, or a refusal naming what is there. */
static int course_db_pg_client_schema(struct course_db_pg *p, const char *where,
				      char *err, size_t errlen)
{
	int64_t v[1] = { 0 };
	PGresult *res;
	int rc;

	res = course_db_pg_rows(p, "SELECT to_regclass('schema_version') IS NOT NULL", &rc,
				err, errlen, "");
	if (res) {
		v[0] = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
		PQclear(res);
	}
	if (rc == 0 && v[0]) {
		rc = course_db_pg_q(p, "SELECT COALESCE(MAX(version), 0) FROM schema_version", v,
				    1, NULL, err, errlen, "");
	}
	if (rc < 0) {
		return rc;
	}
	return v[0] == COURSE_DB_SCHEMA_VERSION ? 0 :
	       course_db_schema_other(where, (int)v[0], err, errlen);
}

static void course_db_pg_free(struct course_db_pg *p)
{
	PQfinish(p->conn);
	sqlite3_close(p->journal);
	free(p->journal_path);
	free(p);
}

/* The value of option @key in libpq's resolved options @opts, "" when unset. */
static const char *course_db_pg_opt(const PQconninfoOption *opts, const char *key)
{
	for (; opts && opts->keyword; opts++) {
		if (!strcmp(opts->keyword, key)) {
			return opts->val ? opts->val : "";
		}
	}
	return "";
}

/*
 * Whether one entry of a host or hostaddr list stays on this host: a Unix
 * socket directory ('/...', '@abstract'), localhost, or a loopback address
 * (127.0.0.0/8, ::1, ::ffff:127.x.y.z). A name that merely resolves to
 * loopback today is not trusted to do so tomorrow.
 */
static bool course_db_pg_host_local(const char *h, size_t n)
{
	char name[256];
	unsigned char a[sizeof(struct in6_addr)];

	if (n == 0 || h[0] == '/' || h[0] == '@') {
		return true;	/* empty: libpq's default Unix socket */
	}
	if (n >= sizeof(name)) {
		return false;
	}
	memcpy(name, h, n);
	name[n] = '\0';
	if (!strcmp(name, "localhost")) {
		return true;
	}
	if (inet_pton(AF_INET, name, a) == 1) {
		return a[0] == 127;
	}
	if (inet_pton(AF_INET6, name, a) == 1) {
		return IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a) ||
		       (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a) && a[12] == 127);
	}
	return false;
}

/* The first entry of the comma-separated list @list that leaves this host, or NULL. */
static const char *course_db_pg_remote(const char *list, size_t *len)
{
	const char *p = list, *comma;

	for (;;) {
		comma = strchr(p, ',');
		*len = comma ? (size_t)(comma - p) : strlen(p);
		if (!course_db_pg_host_local(p, *len)) {
			return p;
		}
		if (!comma) {
			return NULL;
		}
		p = comma + 1;
	}
}

/*
 * Check the options libpq resolved for @conn (the conninfo, a service
 * file, PG* environment variables: what it will really use). @return 0
 * with *@remote, or -EPERM with the message in @err
 */
static int course_db_pg_check_options(PGconn *conn, bool *remote, char *err, size_t errlen)
{
	PQconninfoOption *opts = PQconninfo(conn);
	const char *host, *sslmode, *where;
	size_t len;
	int rc = 0;

	if (!opts) {
		snprintf(err, errlen, "course database: out of memory");
		return -ENOMEM;
	}
	host = course_db_pg_opt(opts, "host");
	where = course_db_pg_remote(host, &len);
	if (!where) {
		/* hostaddr, when given, is where libpq really connects */
		host = course_db_pg_opt(opts, "hostaddr");
		where = course_db_pg_remote(host, &len);
	}
	*remote = where != NULL;
	sslmode = course_db_pg_opt(opts, "sslmode");
	if (*remote && strcmp(sslmode, "verify-full")) {
		snprintf(err, errlen, "course_db.conninfo: the server '%.*s' is not on this host, "
			 "so the connection must be TLS with the server's certificate verified "
			 "(sslmode is '%s'): add sslmode=verify-full and sslrootcert=FILE, the CA "
			 "certificate that signed the server's (without sslrootcert, libpq reads "
			 "~/.postgresql/root.crt of the user rpmsd runs as)",
			 (int)(len < 200 ? len : 200), where, sslmode[0] ? sslmode : "prefer");
		rc = -EPERM;
	}
	PQconninfoFree(opts);
	return rc;
}

/*
 * Check @conninfo as libpq will use it, sending nothing: PQconninfoParse
 * for its syntax, then PQconnectStart resolves the options (a service
 * file, PG* environment variables too) and at most starts the TCP or
 * socket connect; a password goes out only in the handshake, which is
 * never made here. A server that cannot be reached is not this check's to
 * report: the real connect says "unreachable".
 */
static int course_db_pg_probe(const char *conninfo, bool *remote, char *err, size_t errlen)
{
	PQconninfoOption *parsed;
	char *msg = NULL;
	PGconn *probe;
	int rc;

	parsed = PQconninfoParse(conninfo, &msg);
	if (!parsed) {
		snprintf(err, errlen, "course_db.conninfo: %s", msg ? msg : "out of memory");
		course_db_pg_chomp(err);
		PQfreemem(msg);
		return msg ? -EINVAL : -ENOMEM;
	}
	PQconninfoFree(parsed);
	probe = PQconnectStart(conninfo);
	if (!probe) {
		snprintf(err, errlen, "course database: out of memory");
		return -ENOMEM;
	}
	rc = course_db_pg_check_options(probe, remote, err, errlen);
	PQfinish(probe);
	return rc;
}

int course_db_check_conninfo(const char *conninfo, char *err, size_t errlen)
{
	bool remote;

	return course_db_pg_probe(conninfo, &remote, err, errlen);
}

/*
 * Connect to @conninfo, checked first (course_db_pg_probe). Off this host
 * the connection also demands channel binding, which only SCRAM-SHA-256-PLUS
 * over TLS can give: a server that asks for md5, a cleartext password or
 * nothing is refused by libpq before the password leaves.
 */
static int course_db_pg_connect(const char *conninfo, PGconn **out, char *err, size_t errlen)
{
	const char *keys[4] = { "dbname", NULL, NULL, NULL };
	const char *vals[4] = { conninfo, NULL, NULL, NULL };
	bool remote;
	int rc, n = 1;

	rc = course_db_pg_probe(conninfo, &remote, err, errlen);
	if (rc < 0) {
		return rc;
	}
	if (remote) {
		keys[n] = "channel_binding";
		vals[n++] = "require";
	}
	if (PQlibVersion() >= 160000) {
		/* libpq 16's require_auth: never md5 or a cleartext password, also locally */
		keys[n] = "require_auth";
		vals[n++] = "!password,!md5";
	}
	/* expand_dbname: the conninfo first, what follows overrides it */
	*out = PQconnectdbParams(keys, vals, 1);
	if (!*out) {
		snprintf(err, errlen, "course database: out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int course_db_pg_open(struct course_db *db, const struct course_db_config *cfg,
			     char *err, size_t errlen)
{
	struct course_db_pg *p;
	char where[64];
	int rc;

	if (!cfg->conninfo ||
	    (cfg->mode != COURSE_DB_CLIENT && (!cfg->journal || !*cfg->journal))) {
		snprintf(err, errlen, "course database: postgresql needs a conninfo "
			 "(course_db.conninfo) and a journal (course_db.journal)");
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->journal_path = strdup(cfg->journal))) {
		free(p);
		snprintf(err, errlen, "course database: out of memory");
		return -ENOMEM;
	}
	p->client = cfg->mode == COURSE_DB_CLIENT;
	if (p->client) {
		course_db_pg_journal_peek(p, cfg->journal);
	} else {
		/* The journal first: whatever an earlier run left in it is kept whatever follows. */
		rc = course_db_pg_journal_open(p, cfg->journal, err, errlen);
		if (rc < 0) {
			goto err_free;
		}
	}
	rc = course_db_pg_connect(cfg->conninfo, &p->conn, err, errlen);
	if (rc < 0) {
		goto err_free;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		rc = course_db_pg_unreachable(p, err, errlen);
		goto err_free;
	}
	PQsetNoticeProcessor(p->conn, course_db_pg_notice, NULL);
	snprintf(where, sizeof(where), "%s@%s", PQdb(p->conn), PQhost(p->conn));
	if (p->client) {
		rc = course_db_pg_client_schema(p, where, err, errlen);
		if (rc < 0) {
			goto err_free;
		}
		db->priv = p;
		return 0;
	}
	rc = course_db_pg_migrate(p, where, cfg->schema_target ? cfg->schema_target :
				  COURSE_DB_SCHEMA_VERSION, err, errlen);
	if (rc < 0) {
		goto err_free;
	}
	db->priv = p;
	rc = course_db_pg_journal_sync(db, err, errlen);
	if (rc < 0 && rc != -ENOTCONN) {
		db->priv = NULL;
		goto err_free;
	}
	return 0;

err_free:
	course_db_pg_free(p);
	return rc;
}

static void course_db_pg_close(struct course_db *db)
{
	course_db_pg_free(course_db_pg_of(db));
}

static int course_db_pg_schema_version(struct course_db *db, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	int64_t v[1] = { 0 };
	int rc;

	rc = course_db_pg_connected(p, err, errlen);
	if (rc == 0) {
		rc = course_db_pg_q(p, "SELECT COALESCE(MAX(version), 0) FROM schema_version",
				    v, 1, NULL, err, errlen, "");
	}
	return rc < 0 ? rc : (int)v[0];
}

static int course_db_pg_patient_add(struct course_db *db, const char *patient,
				    char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	int rc = course_db_pg_connected(p, err, errlen);

	return rc < 0 ? rc : course_db_pg_q(p, "INSERT INTO patients VALUES ($1,"
					    " EXTRACT(EPOCH FROM now())::bigint) ON CONFLICT"
					    " DO NOTHING", NULL, 0, NULL, err, errlen, "s",
					    patient);
}

static int course_db_pg_prescription_put(struct course_db *db,
					 const struct course_db_prescription *rx,
					 char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	bool found;
	int64_t v[1] = { 0 };
	int rc = course_db_pg_connected(p, err, errlen);

	if (rc == 0) {
		rc = course_db_pg_q(p, "SELECT 1 FROM patients WHERE id = $1", v, 1, &found, err,
				    errlen, "s", rx->patient);
	}
	if (rc == 0 && !found) {
		snprintf(err, errlen, "course database: patient %s unknown (add it first)",
			 rx->patient);
		return -ENOENT;
	}
	if (rc < 0) {
		return rc;
	}
	return course_db_prescription_store(db, rx, err, errlen);
}

static int course_db_pg_q_op(struct course_db *db, const char *sql, int64_t *row,
			     int ncol, char *err, size_t errlen, const char *types, va_list ap)
{
	return course_db_pg_vq(course_db_pg_of(db), sql, row, ncol, NULL, err, errlen, types, ap);
}

static void course_db_pg_session_rig(struct course_db *db, int64_t session, char *rig,
				     size_t len)
{
	PGresult *res;
	char why[COURSE_DB_ERR_MAX];
	int rc;

	res = course_db_pg_rows(course_db_pg_of(db), "SELECT rig FROM sessions WHERE id = $1",
				&rc, why, sizeof(why), "i", session);
	if (res && PQntuples(res) > 0) {
		snprintf(rig, len, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
}

static int course_db_pg_session_begin(struct course_db *db, const char *patient,
				      const char *course, const char *rig, int64_t now,
				      int64_t day_start, int64_t day_end, int64_t *session_id,
				      char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	struct course_db_prescription rx = { .patient = patient, .course = course };
	char why[COURSE_DB_ERR_MAX];
	PGresult *res;
	bool found;
	int64_t v[2] = { 0 };
	int rc;

	/* This rig's own pulses must be on the server before its limits are read. */
	rc = course_db_pg_journal_sync(db, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "%s%s", rc == -ENOTCONN ? "" :
			 "course database unreachable: this rig's journal cannot be synced: ",
			 why);
		return -ENOTCONN;
	}
	rc = course_db_pg_exec(p, "BEGIN", err, errlen);
	if (rc < 0) {
		return rc;
	}
	/* The patient's row lock serialises every start of this patient across rigs. */
	rc = course_db_pg_q(p, "SELECT 1 FROM patients WHERE id = $1 FOR UPDATE", v, 1, &found,
			    err, errlen, "s", patient);
	if (rc < 0) {
		goto err_rollback;
	}
	res = NULL;
	if (found) {
		const char *vals[2] = { patient, course };

		res = PQexecParams(p->conn, "SELECT sessions_per_course, max_sessions_per_day,"
				   " min_hours_between, daily_pulse_cap FROM prescriptions"
				   " WHERE patient = $1 AND course = $2", 2, NULL, vals, NULL,
				   NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "course database: %s", PQresultErrorMessage(res));
			course_db_pg_chomp(err);
			rc = PQstatus(p->conn) == CONNECTION_OK ? -EIO :
			     course_db_pg_unreachable(p, err, errlen);
			PQclear(res);
			goto err_rollback;
		}
		found = PQntuples(res) > 0;
	}
	if (!found) {
		PQclear(res);
		snprintf(err, errlen, "patient %s: no prescription for course %s", patient,
			 course);
		rc = -ENOENT;
		goto err_rollback;
	}
	rx.sessions_per_course = atoi(PQgetvalue(res, 0, 0));
	rx.max_sessions_per_day = atoi(PQgetvalue(res, 0, 1));
	rx.min_hours_between = strtod(PQgetvalue(res, 0, 2), NULL);
	rx.daily_pulse_cap = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);

	rc = course_db_limits_read(db, &rx, now, day_start, day_end, err, errlen);
	if (rc < 0) {
		goto err_rollback;
	}
	rc = course_db_pg_q(p, "INSERT INTO sessions (patient, course, rig, started) VALUES"
			    " ($1, $2, $3, $4) RETURNING id", v, 1, NULL, err, errlen, "sssi",
			    patient, course, rig, now);
	if (rc < 0) {
		goto err_rollback;
	}
	rc = course_db_pg_exec(p, "COMMIT", err, errlen);
	if (rc < 0) {
		goto err_rollback;
	}
	*session_id = v[0];
	return 0;

err_rollback:
	course_db_pg_rollback(p);
	return rc;
}

static int course_db_pg_session_set(struct course_db *db, int64_t session,
				    const struct course_db_session_detail *d,
				    char *err, size_t errlen)
{
	return course_db_pg_journal_write(db, "set", session, 0, 0, d->intensity_pct,
					  d->motor_threshold_pct, d->target, d->arm_code, err,
					  errlen);
}

static int course_db_pg_pulses(struct course_db *db, int64_t session, int64_t delivered,
			       char *err, size_t errlen)
{
	return course_db_pg_journal_write(db, "pulses", session, 0, delivered, 0, 0, NULL, NULL,
					  err, errlen);
}

static int course_db_pg_session_end(struct course_db *db, int64_t session, int64_t now,
				    int64_t delivered, const char *reason, char *err,
				    size_t errlen)
{
	return course_db_pg_journal_write(db, "end", session, now, delivered, 0, 0, reason, NULL,
					  err, errlen);
}

static int course_db_pg_note_add(struct course_db *db, int64_t session,
				 enum course_db_note_kind kind, int64_t now, const char *what,
				 const char *text, char *err, size_t errlen)
{
	return course_db_pg_journal_write(db, kind == COURSE_DB_DEVIATION ? "deviation" :
					  "adverse", session, now, 0, 0, 0, what, text, err,
					  errlen);
}

static int course_db_pg_recording(struct course_db *db, int64_t session, const char *edf_file,
				  const char *sha256_hex, char *err, size_t errlen)
{
	return course_db_pg_journal_write(db, "recording", session, 0, 0, 0, 0, edf_file,
					  sha256_hex, err, errlen);
}

static int course_db_pg_daily_pulses(struct course_db *db, const char *patient,
				     int64_t day_start, int64_t day_end, int64_t *pulses,
				     char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	int64_t v[1] = { 0 };
	int rc;

	/* Never answer low: what the journal holds goes to the server first. */
	rc = course_db_pg_journal_sync(db, err, errlen);
	if (rc == 0) {
		rc = course_db_pg_q(p, "SELECT COALESCE(SUM(pulses), 0) FROM sessions WHERE"
				    " patient = $1 AND started >= $2 AND started < $3", v, 1, NULL,
				    err, errlen, "sii", patient, day_start, day_end);
	}
	*pulses = rc < 0 ? 0 : v[0];
	return rc;
}

static int course_db_pg_course_dose(struct course_db *db, const char *patient,
				    const char *course, struct course_db_dose *dose,
				    char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	int64_t v[2] = { 0 };
	int rc;

	rc = course_db_pg_journal_sync(db, err, errlen);
	if (rc == 0) {
		rc = course_db_pg_q(p, "SELECT COUNT(*), COALESCE(SUM(pulses), 0) FROM sessions"
				    " WHERE patient = $1 AND course = $2", v, 2, NULL, err,
				    errlen, "ss", patient, course);
	}
	if (rc == 0) {
		dose->sessions = v[0];
		dose->pulses = v[1];
	}
	return rc;
}

static int course_db_pg_check(struct course_db *db, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	int rc = course_db_pg_journal_check(p, err, errlen);

	return rc < 0 ? rc : course_db_pg_connected(p, err, errlen);
}

/* Field @c of row @r as text, NULL for NULL. */
static char *course_db_pg_text(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

static int64_t course_db_pg_int(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? -1 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static double course_db_pg_real(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? -1 : strtod(PQgetvalue(res, r, c), NULL);
}

/* Field @c of row @r as a double, NAN for NULL. */
static double course_db_pg_nan(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NAN : strtod(PQgetvalue(res, r, c), NULL);
}

/* One row @i of @res into @r. */
typedef int (*course_db_pg_row_fn)(struct course_db_report *r, PGresult *res, int i,
				   char *err, size_t errlen);

/*
 * Run the report query @sql ($1 the patient, $2 @course or NULL for all, $3
 * one more row than @max, so that course_db_report's limit sees the excess)
 * and hand each row to @row, inside the report's transaction.
 */
static int course_db_pg_report_each(struct course_db_pg *p, struct course_db_report *r,
				    const char *course, const char *sql, int max,
				    course_db_pg_row_fn row, char *err, size_t errlen)
{
	PGresult *res;
	int rc;

	res = course_db_pg_rows(p, sql, &rc, err, errlen, "ssi", r->patient, course,
				(int64_t)max + 1);
	for (int i = 0; res && rc == 0 && i < PQntuples(res); i++) {
		rc = row(r, res, i, err, errlen);
	}
	PQclear(res);
	return rc;
}

static int course_db_pg_row_assessment(struct course_db_report *r, PGresult *res, int i,
				       char *err, size_t errlen)
{
	struct course_db_report_assessment a = {
		.id = course_db_pg_int(res, i, 1),
		.phase = course_db_phase_parse(PQgetvalue(res, i, 2)),
		.kind = course_db_assess_kind_parse(PQgetvalue(res, i, 3)),
		.at = course_db_pg_int(res, i, 4),
		.onset_s = course_db_pg_real(res, i, 5),
		.duration_s = course_db_pg_real(res, i, 6),
	};

	return course_db_report_assessment_add(r, course_db_pg_int(res, i, 0), &a, err, errlen);
}

static int course_db_pg_row_result(struct course_db_report *r, PGresult *res, int i,
				   char *err, size_t errlen)
{
	struct course_db_report_result x = { .value = course_db_pg_nan(res, i, 3) };

	snprintf(x.channel, sizeof(x.channel), "%s", PQgetvalue(res, i, 1));
	snprintf(x.name, sizeof(x.name), "%s", PQgetvalue(res, i, 2));
	return course_db_report_result_add(r, course_db_pg_int(res, i, 0), &x, err, errlen);
}

static int course_db_pg_row_score(struct course_db_report *r, PGresult *res, int i,
				  char *err, size_t errlen)
{
	struct course_db_report_score x = {
		.id = course_db_pg_int(res, i, 1),
		.session = PQgetisnull(res, i, 2) ? 0 : course_db_pg_int(res, i, 2),
		.phase = course_db_phase_parse(PQgetvalue(res, i, 3)),
		.instrument = course_db_instrument_parse(PQgetvalue(res, i, 4)),
		.r1_deg = course_db_pg_nan(res, i, 7),
		.r2_deg = course_db_pg_nan(res, i, 8),
		.fugl_meyer = (int)course_db_pg_int(res, i, 9),
		.at = course_db_pg_int(res, i, 11),
	};

	snprintf(x.muscle, sizeof(x.muscle), "%s", PQgetvalue(res, i, 5));
	snprintf(x.mas_grade, sizeof(x.mas_grade), "%s", PQgetvalue(res, i, 6));
	snprintf(x.author, sizeof(x.author), "%s", PQgetvalue(res, i, 10));
	return course_db_report_score_add(r, PQgetvalue(res, i, 0), &x, err, errlen);
}

static int course_db_pg_row_course(struct course_db_report *r, PGresult *res, int i,
				   char *err, size_t errlen)
{
	struct course_db_report_course c = {
		.sessions_per_course = (int)course_db_pg_int(res, i, 1),
		.max_sessions_per_day = (int)course_db_pg_int(res, i, 2),
		.min_hours_between = course_db_pg_real(res, i, 3),
		.daily_pulse_cap = course_db_pg_int(res, i, 4),
		.text = course_db_pg_text(res, i, 5),
	};

	snprintf(c.course, sizeof(c.course), "%s", PQgetvalue(res, i, 0));
	return course_db_report_course_add(r, &c, err, errlen);
}

static int course_db_pg_row_session(struct course_db_report *r, PGresult *res, int i,
				    char *err, size_t errlen)
{
	struct course_db_report_session x = {
		.id = course_db_pg_int(res, i, 0),
		.started = course_db_pg_int(res, i, 3),
		.stopped = course_db_pg_int(res, i, 4),
		.stop_reason = course_db_pg_text(res, i, 5),
		.pulses = course_db_pg_int(res, i, 6),
		.intensity_pct = course_db_pg_real(res, i, 7),
		.motor_threshold_pct = course_db_pg_real(res, i, 8),
		.target = course_db_pg_text(res, i, 9),
		.edf_file = course_db_pg_text(res, i, 11),
	};

	snprintf(x.rig, sizeof(x.rig), "%s", PQgetvalue(res, i, 2));
	snprintf(x.arm_code, sizeof(x.arm_code), "%s", PQgetvalue(res, i, 10));
	snprintf(x.edf_sha256, sizeof(x.edf_sha256), "%s", PQgetvalue(res, i, 12));
	return course_db_report_session_add(r, PQgetvalue(res, i, 1), &x, err, errlen);
}

static int course_db_pg_row_note(struct course_db_report *r, PGresult *res, int i,
				 char *err, size_t errlen)
{
	struct course_db_report_note n = {
		.id = course_db_pg_int(res, i, 1),
		.kind = strcmp(PQgetvalue(res, i, 2), "deviation") ? COURSE_DB_ADVERSE :
			COURSE_DB_DEVIATION,
		.at = course_db_pg_int(res, i, 3),
		.what = course_db_pg_text(res, i, 4),
		.text = course_db_pg_text(res, i, 5),
	};

	return course_db_report_note_add(r, course_db_pg_int(res, i, 0), &n, err, errlen);
}

/*
 * The courses, sessions and notes, then (schema 3) the assessments with
 * their results and the scores, read inside the report's transaction.
 */
static int course_db_pg_report_rows(struct course_db_pg *p, struct course_db_report *r,
				    const char *course, char *err, size_t errlen)
{
	static const struct {
		const char *sql;
		int max;
		course_db_pg_row_fn row;
	} q[] = {
		{ "SELECT course, sessions_per_course, max_sessions_per_day, min_hours_between,"
		  " daily_pulse_cap, text FROM prescriptions WHERE patient = $1 AND"
		  " ($2::text IS NULL OR course = $2) ORDER BY course LIMIT $3",
		  COURSE_DB_REPORT_SESSIONS_MAX, course_db_pg_row_course },
		{ "SELECT id, course, rig, started, stopped, stop_reason, pulses, intensity_pct,"
		  " motor_threshold_pct, target, arm_code, edf_file, edf_sha256 FROM sessions"
		  " WHERE patient = $1 AND ($2::text IS NULL OR course = $2)"
		  " ORDER BY started, id LIMIT $3",
		  COURSE_DB_REPORT_SESSIONS_MAX, course_db_pg_row_session },
		{ "SELECT n.session, n.id, n.kind, n.at, n.what, n.text FROM notes n"
		  " JOIN sessions s ON s.id = n.session WHERE s.patient = $1 AND"
		  " ($2::text IS NULL OR s.course = $2) ORDER BY n.session, n.at, n.id LIMIT $3",
		  COURSE_DB_REPORT_NOTES_MAX, course_db_pg_row_note },
		{ "SELECT a.session, a.id, a.phase, a.kind, a.at, a.onset, a.duration"
		  " FROM assessments a JOIN sessions s ON s.id = a.session WHERE s.patient = $1"
		  " AND ($2::text IS NULL OR s.course = $2) ORDER BY a.session, a.onset, a.id"
		  " LIMIT $3", COURSE_DB_REPORT_OUTCOMES_MAX, course_db_pg_row_assessment },
		{ "SELECT x.assessment, x.channel, x.name, x.value FROM assessment_results x"
		  " JOIN assessments a ON a.id = x.assessment JOIN sessions s ON s.id = a.session"
		  " WHERE s.patient = $1 AND ($2::text IS NULL OR s.course = $2)"
		  " ORDER BY x.assessment, x.channel, x.name LIMIT $3",
		  COURSE_DB_REPORT_RESULTS_MAX, course_db_pg_row_result },
		{ "SELECT course, id, session, phase, instrument, muscle, mas_grade, r1_deg,"
		  " r2_deg, fugl_meyer, author, at FROM scores WHERE patient = $1 AND"
		  " ($2::text IS NULL OR course = $2) ORDER BY at, id LIMIT $3",
		  COURSE_DB_REPORT_OUTCOMES_MAX, course_db_pg_row_score },
	};
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < sizeof(q) / sizeof(q[0]); k++) {
		rc = course_db_pg_report_each(p, r, course, q[k].sql, q[k].max, q[k].row, err,
					      errlen);
	}
	return rc;
}

static int course_db_pg_report(struct course_db *db, struct course_db_report *r,
			       const char *course, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	bool found = false;
	int64_t v[1];
	int rc;

	rc = course_db_pg_connected(p, err, errlen);
	if (rc < 0) {
		return rc;
	}
	/* One snapshot: the sessions, notes and dose of one moment on the server. */
	rc = course_db_pg_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_pg_q(p, "SELECT 1 FROM patients WHERE id = $1", v, 1, &found, err, errlen,
			    "s", r->patient);
	if (rc == 0 && !found) {
		snprintf(err, errlen, "course database: patient %s unknown", r->patient);
		rc = -ENOENT;
	}
	if (rc == 0 && course) {
		rc = course_db_pg_q(p, "SELECT 1 FROM prescriptions WHERE patient = $1 AND"
				    " course = $2", v, 1, &found, err, errlen, "ss", r->patient,
				    course);
		if (rc == 0 && !found) {
			snprintf(err, errlen, "course database: patient %s has no course %s",
				 r->patient, course);
			rc = -ENOENT;
		}
	}
	if (rc == 0) {
		rc = course_db_pg_report_rows(p, r, course, err, errlen);
	}
	course_db_pg_rollback(p);
	if (rc < 0) {
		return rc;
	}
	/* What this rig holds back: the report is of the server, and says so. */
	r->pending = course_db_pg_journal_pending(db, r->pending_why, sizeof(r->pending_why));
	if (r->pending < 0) {
		r->pending = -1;
	}
	return 0;
}

/* A transaction of what a clinician enters: on the server now, never through the journal. */
static int course_db_pg_begin_direct(struct course_db_pg *p, char *err, size_t errlen)
{
	int rc = course_db_pg_connected(p, err, errlen);

	return rc < 0 ? rc : course_db_pg_exec(p, "BEGIN", err, errlen);
}

static int course_db_pg_adverse_add(struct course_db *db, const char *patient,
				    int64_t session, int64_t now, const char *author,
				    const char *text, int64_t *note_id, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	bool found = false;
	int64_t v[1] = { 0 };
	int rc;

	*note_id = 0;
	rc = course_db_pg_begin_direct(p, err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_pg_q(p, "SELECT (patient = $1)::int FROM sessions WHERE id = $2", v, 1,
			    &found, err, errlen, "si", patient, session);
	if (rc == 0 && !found) {
		snprintf(err, errlen, "course database: session %" PRId64 " unknown: no note added",
			 session);
		rc = -ENOENT;
	} else if (rc == 0 && v[0] != 1) {
		snprintf(err, errlen, "course database: session %" PRId64 " is not a session of "
			 "patient %s: no note added", session, patient);
		rc = -EPERM;
	}
	if (rc == 0) {
		rc = course_db_pg_q(p, "INSERT INTO notes (session, kind, at, what, text) VALUES"
				    " ($1, 'adverse', $2, $3, $4) RETURNING id", v, 1, NULL, err,
				    errlen, "iiss", session, now, author, text);
	}
	if (rc == 0) {
		rc = course_db_pg_exec(p, "COMMIT", err, errlen);
	}
	if (rc < 0) {
		course_db_pg_rollback(p);
		return rc;
	}
	*note_id = v[0];
	return 0;
}

static int course_db_pg_assessment_add(struct course_db *db,
				       const struct course_db_assessment *a,
				       char *err, size_t errlen)
{
	char what[32], *results;
	int rc;

	/* A running session's write: the journal first, like pulses and notes. */
	results = course_db_pg_journal_results_text(a);
	if (!results) {
		snprintf(err, errlen, "course database: out of memory");
		return -ENOMEM;
	}
	snprintf(what, sizeof(what), "%s %s", course_db_phase_name(a->phase),
		 course_db_assess_kind_name(a->kind));
	rc = course_db_pg_journal_write(db, "assess", a->session, a->at, 0, a->onset_s,
					a->duration_s, what, results, err, errlen);
	free(results);
	return rc;
}

/* Which course a score goes to (as course_db_sqlite_score_course), inside the transaction. */
static int course_db_pg_score_course(struct course_db_pg *p, const struct course_db_score *sc,
				     char *course, size_t len, char *err, size_t errlen)
{
	PGresult *res;
	int rc;

	if (sc->session == 0) {
		bool found = false;
		int64_t v[1];

		rc = course_db_pg_q(p, "SELECT 1 FROM prescriptions WHERE patient = $1 AND"
				    " course = $2", v, 1, &found, err, errlen, "ss", sc->patient,
				    sc->course);
		if (rc == 0 && !found) {
			snprintf(err, errlen, "course database: patient %s has no course %s: no "
				 "score added", sc->patient, sc->course);
			rc = -ENOENT;
		}
		snprintf(course, len, "%s", sc->course);
		return rc;
	}
	res = course_db_pg_rows(p, "SELECT patient, course FROM sessions WHERE id = $1", &rc,
				err, errlen, "i", sc->session);
	if (!res) {
		return rc;
	}
	if (PQntuples(res) != 1) {
		snprintf(err, errlen, "course database: session %" PRId64 " unknown: no score added",
			 sc->session);
		rc = -ENOENT;
	} else if (strcmp(PQgetvalue(res, 0, 0), sc->patient)) {
		snprintf(err, errlen, "course database: session %" PRId64 " is not a session of "
			 "patient %s: no score added", sc->session, sc->patient);
		rc = -EPERM;
	} else if (sc->course && strcmp(PQgetvalue(res, 0, 1), sc->course)) {
		snprintf(err, errlen, "course database: session %" PRId64 " is of course %s, not "
			 "%s: no score added", sc->session, PQgetvalue(res, 0, 1), sc->course);
		rc = -EINVAL;
	} else {
		snprintf(course, len, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return rc;
}

static int course_db_pg_score_add(struct course_db *db, const struct course_db_score *sc,
				  int64_t *score_id, char *err, size_t errlen)
{
	struct course_db_pg *p = course_db_pg_of(db);
	char course[COURSE_DB_ID_MAX + 1] = "";
	int rc;

	/* Entered by a clinician: straight to the server, never a journal (read back after). */
	*score_id = 0;
	rc = course_db_pg_begin_direct(p, err, errlen);
	if (rc < 0) {
		return rc;
	}
	rc = course_db_pg_score_course(p, sc, course, sizeof(course), err, errlen);
	if (rc == 0) {
		rc = course_db_score_insert(db, sc, course, score_id, err, errlen);
	}
	if (rc == 0) {
		rc = course_db_pg_exec(p, "COMMIT", err, errlen);
	}
	if (rc < 0) {
		*score_id = 0;
		course_db_pg_rollback(p);
	}
	return rc;
}

/* The front end's INSERT, the new id read back with RETURNING. */
static int course_db_pg_insert(struct course_db *db, const char *sql, int64_t *id, char *err,
			       size_t errlen, const char *types, va_list ap)
{
	char returning[1024];
	int rc;

	if ((size_t)snprintf(returning, sizeof(returning), "%s RETURNING id", sql) >=
	    sizeof(returning)) {
		snprintf(err, errlen, "course database: statement too long: %s", sql);
		return -E2BIG;
	}
	rc = course_db_pg_vq(course_db_pg_of(db), returning, id, 1, NULL, err, errlen, types,
			     ap);
	if (rc < 0) {
		*id = 0;
	}
	return rc;
}

const struct course_db_ops course_db_pg_ops = {
	.name = "postgresql",
	.open = course_db_pg_open,
	.close = course_db_pg_close,
	.schema_version = course_db_pg_schema_version,
	.patient_add = course_db_pg_patient_add,
	.prescription_put = course_db_pg_prescription_put,
	.session_begin = course_db_pg_session_begin,
	.session_set = course_db_pg_session_set,
	.pulses = course_db_pg_pulses,
	.session_end = course_db_pg_session_end,
	.note_add = course_db_pg_note_add,
	.recording = course_db_pg_recording,
	.daily_pulses = course_db_pg_daily_pulses,
	.course_dose = course_db_pg_course_dose,
	.sync = course_db_pg_journal_sync,
	.pending = course_db_pg_journal_pending,
	.check = course_db_pg_check,
	.report = course_db_pg_report,
	.adverse_add = course_db_pg_adverse_add,
	.assessment_add = course_db_pg_assessment_add,
	.score_add = course_db_pg_score_add,
	.q = course_db_pg_q_op,
	.session_rig = course_db_pg_session_rig,
	.insert = course_db_pg_insert,
};
