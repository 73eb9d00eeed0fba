/* SPDX-License-Identifier: MIT */
/*
 * Sham and blinding (blind.h, docs/sham.md): the allocation file, the sham
 * coil's plugin, and the sealed audit record of each session's true arm.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "blind.h"
#include "blind_seal.h"
#include "config.h"
#include "curve_key.h"
#include "event.h"
#include "log.h"
#include "plugin.h"

#define BLIND_LINE_MAX 256

struct blind_course {
	char course[EVENT_ID_MAX + 1];
	char code[BLIND_CODE_MAX + 1];
	enum blind_arm arm;
	int line;
};

struct blind_alloc {
	struct blind_course *c;
	size_t n, cap;
};

struct blind {
	char allocation[CONFIG_PATH_MAX];
	char audit[CONFIG_PATH_MAX];
	char rig[CONFIG_NAME_MAX];
	uint8_t pk[BLIND_SEAL_KEY_LEN];
	struct rpmsd_config *sham_cfg;	/* the sham coil's view; the plugin keeps it */
	struct plugin *sham;
};

/* A course id follows the patient id's rules (control_request.c). */
static bool blind_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > EVENT_ID_MAX || !isalnum((unsigned char)s[0])) {
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) {
			return false;
		}
	}
	return true;
}

/* An arm code: short, plain, and not the arm itself. */
static bool blind_code_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > BLIND_CODE_MAX || !strcasecmp(s, "active") || !strcasecmp(s, "sham")) {
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') {
			return false;
		}
	}
	return true;
}

static int blind_alloc_line(struct blind_alloc *a, const char *name, int lineno, char *line,
			    char *err, size_t errlen)
{
	char *save = NULL, *f[3], *tok;
	size_t i, n = 0;
	enum blind_arm arm;

	line[strcspn(line, "#\r\n")] = '\0';
	for (tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == 3) {
			snprintf(err, errlen, "%s:%d: expected 3 fields, COURSE_ID ARM ARM_CODE "
				 "(found more than 3)", name, lineno);
			return -EINVAL;
		}
		f[n++] = tok;
	}
	if (n == 0) {
		return 0;	/* blank or comment */
	}
	if (n != 3) {
		snprintf(err, errlen, "%s:%d: expected 3 fields, COURSE_ID ARM ARM_CODE (found %zu)",
			 name, lineno, n);
		return -EINVAL;
	}
	if (!blind_id_ok(f[0])) {
		snprintf(err, errlen, "%s:%d: course id '%.40s' (allowed: 1 to %d characters of "
			 "A-Z a-z 0-9 . _ -, starting with a letter or digit)", name, lineno, f[0],
			 EVENT_ID_MAX);
		return -EINVAL;
	}
	if (!strcmp(f[1], "active")) {
		arm = BLIND_ARM_ACTIVE;
	} else if (!strcmp(f[1], "sham")) {
		arm = BLIND_ARM_SHAM;
	} else {
		snprintf(err, errlen, "%s:%d: course %s: unknown arm '%.20s' (allowed: active, sham)",
			 name, lineno, f[0], f[1]);
		return -EINVAL;
	}
	if (!blind_code_ok(f[2])) {
		snprintf(err, errlen, "%s:%d: course %s: arm code '%.40s' (allowed: 1 to %d "
			 "characters of A-Z a-z 0-9 _ -, not 'active' or 'sham')", name, lineno,
			 f[0], f[2], BLIND_CODE_MAX);
		return -EINVAL;
	}
	for (i = 0; i < a->n; i++) {
		if (!strcmp(a->c[i].course, f[0])) {
			snprintf(err, errlen, "%s:%d: course %s: allocated twice (first at line %d)",
				 name, lineno, f[0], a->c[i].line);
			return -EINVAL;
		}
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct blind_course *c = realloc(a->c, cap * sizeof(*c));

		if (!c) {
			snprintf(err, errlen, "%s: out of memory", name);
			return -ENOMEM;
		}
		a->c = c;
		a->cap = cap;
	}
	snprintf(a->c[a->n].course, sizeof(a->c[a->n].course), "%s", f[0]);
	snprintf(a->c[a->n].code, sizeof(a->c[a->n].code), "%s", f[2]);
	a->c[a->n].arm = arm;
	a->c[a->n].line = lineno;
	a->n++;
	return 0;
}

int blind_alloc_parse(const char *name, FILE *f, struct blind_alloc **out, char *err,
		      size_t errlen)
{
	struct blind_alloc *a = calloc(1, sizeof(*a));
	char line[BLIND_LINE_MAX];
	int lineno = 0, ret = 0;

	*out = NULL;
	err[0] = '\0';
	if (!a) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long (allowed: at most %d characters)",
				 name, lineno, BLIND_LINE_MAX - 2);
			ret = -EINVAL;
			goto err_free;
		}
		ret = blind_alloc_line(a, name, lineno, line, err, errlen);
		if (ret < 0) {
			goto err_free;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", name);
		ret = -EIO;
		goto err_free;
	}
	*out = a;
	return 0;

err_free:
	blind_alloc_free(a);
	return ret;
}

/* "uid N (name)" for messages. */
static void blind_user(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res) {
		snprintf(buf, len, "uid %u (%s)", (unsigned)uid, res->pw_name);
	} else {
		snprintf(buf, len, "uid %u", (unsigned)uid);
	}
}

int blind_alloc_load(const char *path, struct blind_alloc **out, char *err, size_t errlen)
{
	char found[128], need[128];
	struct stat st;
	FILE *f;
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "blind.allocation: %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		snprintf(err, errlen, "blind.allocation: %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	/*
	 * The statistician's file decides who is treated for real: anyone else
	 * who could write it could change an arm, anyone who could read it
	 * could unblind.
	 */
	if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600 || st.st_uid != geteuid()) {
		blind_user(st.st_uid, found, sizeof(found));
		blind_user(geteuid(), need, sizeof(need));
		snprintf(err, errlen, "blind.allocation: %s: %s mode %04o owned by %s (required: "
			 "a regular file of mode 0600 owned by the daemon's user, %s)", path,
			 S_ISREG(st.st_mode) ? "a file of" : "not a regular file,",
			 (unsigned)(st.st_mode & 07777), found, need);
		close(fd);
		return -EPERM;
	}
	f = fdopen(fd, "r");
	if (!f) {
		ret = -errno;
		close(fd);
		snprintf(err, errlen, "blind.allocation: %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = blind_alloc_parse(path, f, out, err, errlen);
	fclose(f);
	return ret;
}

int blind_alloc_find(const struct blind_alloc *a, const char *course, enum blind_arm *arm,
		     char *code)
{
	size_t i;

	for (i = 0; a && i < a->n; i++) {
		if (!strcmp(a->c[i].course, course)) {
			*arm = a->c[i].arm;
			memcpy(code, a->c[i].code, sizeof(a->c[i].code));
			return 0;
		}
	}
	return -ENOENT;
}

size_t blind_alloc_count(const struct blind_alloc *a)
{
	return a ? a->n : 0;
}

void blind_alloc_free(struct blind_alloc *a)
{
	if (a) {
		free(a->c);
		free(a);
	}
}

/* The statistician's public key: the first key of a key file (curve_key.h). */
static int blind_read_key(const char *path, uint8_t *pk, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int lineno = 0, ret;

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "blind.statistician_public_key: %s: %s", path,
			 strerror(errno));
		return ret;
	}
	ret = curve_key_next(f, &lineno, NULL, pk);
	fclose(f);
	if (ret == 1) {
		return 0;
	}
	if (ret == 0) {
		snprintf(err, errlen, "blind.statistician_public_key: %s: no key in it (expected "
			 "a line with a 40-character Z85 public key, e.g. from rpmsctl keygen)",
			 path);
		return -EINVAL;
	}
	snprintf(err, errlen, "blind.statistician_public_key: %s:%d: not a Z85 key (expected "
		 "40 characters of Z85, e.g. from rpmsctl keygen)", path, lineno);
	return ret;
}

/* The sham coil's plugin loaded with its [sham_coil.<plugin>] view of @cfg, not opened. */
static int blind_sham_load(struct blind *b, const struct rpmsd_config *cfg, char *err,
			   size_t errlen)
{
	b->sham_cfg = malloc(sizeof(*b->sham_cfg));
	if (!b->sham_cfg) {
		return -ENOMEM;
	}
	config_sham_coil(cfg, b->sham_cfg);
	return plugin_load(b->sham_cfg, b->sham_cfg->stim.plugin, &b->sham, err, errlen);
}

/* The sham coil loaded by blind_sham_load opened, at the active coil's intensity. */
static int blind_sham_open(struct blind *b, const struct rpmsd_config *cfg,
			   struct sclock *clock, char *err, size_t errlen)
{
	int ret;

	ret = plugin_open(b->sham, b->sham_cfg, clock, err, errlen);
	if (ret < 0) {
		return ret;
	}
	log_info("sham coil plugin: %s (%s)", b->sham_cfg->stim.plugin, plugin_path(b->sham));
	ret = plugin_set_intensity(b->sham, cfg->stim.intensity_pct);
	if (ret < 0 && ret != -EOPNOTSUPP) {
		log_warn("sham coil plugin: asking the device for %g %%: %s",
			 cfg->stim.intensity_pct, strerror(-ret));
	}
	return 0;
}

/*
 * The audit file can be appended to, without writing to it (--check-config):
 * an existing file opened for appending, or a directory a new one can be
 * made in. The start appends nothing to it (blind_seal_append with "").
 */
static int blind_audit_check(const char *path, char *err, size_t errlen)
{
	char dir[CONFIG_PATH_MAX], *slash;
	int fd, ret;

	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	ret = -errno;
	if (ret == -ENOENT) {
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash) {
			*(slash == dir ? slash + 1 : slash) = '\0';
		} else {
			snprintf(dir, sizeof(dir), ".");
		}
		if (access(dir, W_OK | X_OK) == 0) {
			return 0;
		}
		ret = -errno;
	}
	snprintf(err, errlen, "audit file %s: cannot open for appending: %s", path,
		 strerror(-ret));
	return ret;
}

/*
 * What the start and --check-config both check, in this order: the
 * allocation file (mode, owner, every line), the statistician's key, the
 * audit file (@check: only whether it could be appended to, nothing
 * written), then the sham coil's plugin loaded. The start opens it after.
 */
static int blind_prepare(const struct rpmsd_config *cfg, struct blind *b, bool check, char *err,
			 size_t errlen)
{
	struct blind_alloc *a = NULL;
	char path[CONFIG_PATH_MAX];
	int ret;

	ret = blind_seal_init();
	if (ret < 0) {
		snprintf(err, errlen, "blind: libsodium failed to start");
		return ret;
	}
	if (config_resolve(cfg, cfg->blind.allocation, b->allocation, sizeof(b->allocation)) < 0 ||
	    config_resolve(cfg, cfg->blind.statistician_public_key, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "blind: a path is too long");
		return -ENAMETOOLONG;
	}
	ret = blind_alloc_load(b->allocation, &a, err, errlen);
	blind_alloc_free(a);
	if (ret < 0) {
		return ret;
	}
	ret = blind_read_key(path, b->pk, err, errlen);
	if (ret < 0) {
		return ret;
	}
	if (cfg->blind.audit[0]) {
		ret = config_resolve(cfg, cfg->blind.audit, b->audit, sizeof(b->audit));
	} else {
		ret = snprintf(b->audit, sizeof(b->audit), "%s/blind-audit",
			       cfg->daemon.state_dir) >= (int)sizeof(b->audit) ? -ENAMETOOLONG : 0;
	}
	if (ret < 0) {
		snprintf(err, errlen, "blind.audit: the path is too long");
		return ret;
	}
	/* an empty append: the audit can be written before the first session needs it */
	ret = check ? blind_audit_check(b->audit, err, errlen)
		    : blind_seal_append(b->audit, "", err, errlen);
	if (ret < 0) {
		return ret;
	}
	return blind_sham_load(b, cfg, err, errlen);
}

int blind_create(const struct rpmsd_config *cfg, struct sclock *clock, struct blind **out,
		 char *err, size_t errlen)
{
	struct blind *b;
	int ret;

	*out = NULL;
	err[0] = '\0';
	if (!cfg->blind.allocation[0]) {
		return 0;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		return -ENOMEM;
	}
	ret = blind_prepare(cfg, b, false, err, errlen);
	if (ret < 0) {
		goto err_free;
	}
	if (cfg->course.rig[0]) {
		snprintf(b->rig, sizeof(b->rig), "%s", cfg->course.rig);
	} else if (gethostname(b->rig, sizeof(b->rig) - 1) != 0) {
		snprintf(b->rig, sizeof(b->rig), "unknown");
	}
	ret = blind_sham_open(b, cfg, clock, err, errlen);
	if (ret < 0) {
		goto err_free;
	}
	*out = b;
	return 0;

err_free:
	blind_destroy(b);
	return ret;
}

int blind_check(const struct rpmsd_config *cfg, char *err, size_t errlen)
{
	const struct rpmsd_coil_descriptor *d;
	struct blind *b;
	int ret;

	err[0] = '\0';
	if (!cfg->blind.allocation[0]) {
		return 0;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		return -ENOMEM;
	}
	ret = blind_prepare(cfg, b, true, err, errlen);
	if (ret == 0) {
		/* its keys as plugin_open checks them; not opened: that takes its output line */
		d = plugin_descriptor(b->sham);
		ret = config_validate_plugin_keys(b->sham_cfg, d->keys, d->n_keys, err, errlen);
	}
	blind_destroy(b);
	return ret;
}

struct plugin *blind_sham_coil(const struct blind *b)
{
	return b ? b->sham : NULL;
}

void blind_destroy(struct blind *b)
{
	if (!b) {
		return;
	}
	plugin_unload(b->sham);
	free(b->sham_cfg);
	explicit_bzero(b->pk, sizeof(b->pk));
	free(b);
}

int blind_session_start(struct blind *b, const char *patient, const char *course,
			const char *session, struct blind_start *out, char *err, size_t errlen)
{
	char plain[BLIND_SEAL_PLAIN], line[BLIND_SEAL_LINE_MAX], when[32];
	struct blind_alloc *a = NULL;
	enum blind_arm arm;
	json_t *rec;
	time_t now = time(NULL);
	struct tm tm;
	int ret;

	memset(out, 0, sizeof(*out));
	out->coil = STIM_COIL_ACTIVE;
	err[0] = '\0';
	if (!b) {
		return 0;
	}
	if (!course || !course[0]) {
		snprintf(err, errlen, "blinding is configured (blind.allocation): session_start "
			 "needs a course_id that the allocation file names");
		return -EINVAL;
	}
	/* read again: the statistician adds courses as patients enrol */
	ret = blind_alloc_load(b->allocation, &a, err, errlen);
	if (ret < 0) {
		return ret;
	}
	ret = blind_alloc_find(a, course, &arm, out->arm_code);
	blind_alloc_free(a);
	if (ret < 0) {
		snprintf(err, errlen, "course %s is not in the allocation file %s: ask the trial's "
			 "statistician to allocate it", course, b->allocation);
		memset(out, 0, sizeof(*out));
		return ret;
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "time", when, "rig", b->rig,
			"patient_id", patient, "course_id", course, "session_id", session,
			"arm", arm == BLIND_ARM_SHAM ? "sham" : "active", "arm_code", out->arm_code);
	ret = rec && json_dumpb(rec, plain, sizeof(plain) - 1, JSON_COMPACT) < sizeof(plain) - 1
	      ? 0 : -E2BIG;
	if (ret == 0) {
		plain[json_dumpb(rec, NULL, 0, JSON_COMPACT)] = '\0';
		ret = blind_seal_line(b->pk, plain, line, sizeof(line));
	}
	json_decref(rec);
	explicit_bzero(plain, sizeof(plain));
	if (ret < 0) {
		snprintf(err, errlen, "sealing the audit record failed: %s", strerror(-ret));
		memset(out, 0, sizeof(*out));
		return ret;
	}
	/* on disk before the session starts: no blinded session without its record */
	ret = blind_seal_append(b->audit, line, err, errlen);
	if (ret < 0) {
		memset(out, 0, sizeof(*out));
		return ret;
	}
	out->coil = arm == BLIND_ARM_SHAM ? STIM_COIL_SHAM : STIM_COIL_ACTIVE;
	return 0;
}
