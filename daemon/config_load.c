/* SPDX-License-Identifier: MIT */
/*
 * The configuration file: libinih does the tokenising. Its handler gets no
 * line number, so the file is fed through our own line reader, which counts
 * lines and also sees the "[section]" lines the handler never hears about.
 * libinih's options are process-wide globals: config_load sets them for the
 * duration of a parse and restores them, and is therefore not thread-safe.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "config.h"
#include "config_private.h"
#include "file.h"

/* Longest accepted line, newline excluded, is CONFIG_LOAD_LINE_MAX - 2. */
#define CONFIG_LOAD_LINE_MAX 4096
/*
 * Largest configuration file read (the template is about 20 KB): SIGHUP
 * reads it on the thread that also answers SIGTERM, so the read must end.
 */
#define CONFIG_LOAD_FILE_MAX (1 << 20)

#define CONFIG_LOAD_COIL_PREFIX "coil."
#define CONFIG_LOAD_SHAM_PREFIX "sham_coil."

/* Saved libinih globals. */
struct config_load_inih_opts {
	bool allow_multiline;
	bool stop_on_first_error;
	bool use_stack;
	bool allow_no_value;
	bool allow_bom;
	bool allow_inline_comments;
	int max_line;
};

/* Handle a "[name]" line: switch section or fail on an unknown one. */
static int config_load_section(struct config_ctx *ctx, const char *name, size_t n)
{
	char allowed[CONFIG_ALLOWED_MAX];
	struct rpmsd_config *cfg = &ctx->cfg;
	const char *plugin;
	size_t i, np;

	for (i = 0; i < config_key_n_sections; i++) {
		if (strlen(config_key_sections[i]) == n &&
		    !strncmp(config_key_sections[i], name, n)) {
			ctx->section = config_key_sections[i];
			ctx->in_coil = false;
			ctx->in_sham = false;
			return 0;
		}
	}
	np = strlen(CONFIG_LOAD_SHAM_PREFIX);
	plugin = name + np;
	if (n > np && !strncmp(name, CONFIG_LOAD_SHAM_PREFIX, np) &&
	    config_check_plugin_name(plugin, n - np)) {
		/* the sham coil's own keys, kept apart from the active coil's */
		if (cfg->sham_section[0] &&
		    (strlen(cfg->sham_section) != n - np ||
		     strncmp(cfg->sham_section, plugin, n - np))) {
			config_fail(ctx, ctx->ini.lineno,
				    "[%.*s]: second sham coil section (allowed: only one; [sham_coil.%s] is at line %d)",
				    (int)n, name, cfg->sham_section, cfg->sham_section_line);
			return -EINVAL;
		}
		if (!cfg->sham_section[0]) {
			memcpy(cfg->sham_section, plugin, n - np);
			cfg->sham_section[n - np] = '\0';
			cfg->sham_section_line = ctx->ini.lineno;
		}
		ctx->section = NULL;
		ctx->in_coil = true;
		ctx->in_sham = true;
		return 0;
	}
	ctx->in_sham = false;
	np = strlen(CONFIG_LOAD_COIL_PREFIX);
	plugin = name + np;
	if (n > np && !strncmp(name, CONFIG_LOAD_COIL_PREFIX, np) &&
	    config_check_plugin_name(plugin, n - np)) {
		if (cfg->plugin_section[0] &&
		    (strlen(cfg->plugin_section) != n - np ||
		     strncmp(cfg->plugin_section, plugin, n - np))) {
			config_fail(ctx, ctx->ini.lineno,
				    "[%.*s]: second coil section (allowed: only one; [coil.%s] is at line %d)",
				    (int)n, name, cfg->plugin_section,
				    cfg->plugin_section_line);
			return -EINVAL;
		}
		/* reopening the same section is fine, like any other section */
		if (!cfg->plugin_section[0]) {
			memcpy(cfg->plugin_section, plugin, n - np);
			cfg->plugin_section[n - np] = '\0';
			cfg->plugin_section_line = ctx->ini.lineno;
		}
		ctx->section = NULL;
		ctx->in_coil = true;
		return 0;
	}
	/* from the table, so that a new section cannot be left out here */
	allowed[0] = '\0';
	for (i = 0; i < config_key_n_sections; i++) {
		config_append(allowed, sizeof(allowed), "%s, ", config_key_sections[i]);
	}
	config_fail(ctx, ctx->ini.lineno, "[%.*s]: unknown section (allowed: %scoil.<plugin>, sham_coil.<plugin>)",
		    (int)n, name, allowed);
	return -EINVAL;
}

int config_load_section_line(const char *line, int lineno, const char **name, size_t *len)
{
	const char *p = line;
	const char *end;

	if (lineno == 1 && !strncmp(p, "\xEF\xBB\xBF", 3)) {
		p += 3;
	}
	while (isspace((unsigned char)*p)) {
		p++;
	}
	if (*p != '[') {
		return 0;
	}
	for (end = p + 1; *end && *end != ']'; end++) {
		/* libinih ends the line at an inline comment: a syntax error */
		if (*end == ';' && isspace((unsigned char)end[-1])) {
			return 0;
		}
	}
	if (*end != ']') {
		return 0;
	}
	*name = p + 1;
	*len = (size_t)(end - p - 1);
	return 1;
}

/* The ctx an ini belongs to. */
static struct config_ctx *config_load_ctx_of(struct config_ini *ini)
{
	return (struct config_ctx *)((char *)ini - offsetof(struct config_ctx, ini));
}

/* An unknown section must fail even if it has no keys: seen before libinih. */
static int config_load_ini_section(struct config_ini *ini, const char *name, size_t n)
{
	return config_load_section(config_load_ctx_of(ini), name, n);
}

/* Hand a section line of @ini to its owner, when it is one. */
static int config_ini_scan_line(struct config_ini *ini, const char *line)
{
	const char *name;
	size_t len;

	if (!config_load_section_line(line, ini->lineno, &name, &len)) {
		return 0;
	}
	return ini->section(ini, name, len);
}

__attribute__((format(printf, 3, 4)))
static void config_ini_fail(struct config_ini *ini, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_ini_vfail(ini, line, fmt, ap);
	va_end(ap);
}

/*
 * fgets for libinih that counts lines and refuses to split long ones. It
 * reads whole physical lines with getline, so a NUL byte cannot end a line
 * early and hide the rest of it (fgets + strlen would).
 */
static char *config_ini_read_line(char *str, int num, void *stream)
{
	struct config_ini *ini = stream;
	ssize_t len;

	if (ini->failed) {
		return NULL;
	}
	errno = 0;
	len = getline(&ini->line, &ini->line_cap, ini->f);
	if (len < 0) {
		if (ferror(ini->f)) {
			ini->read_errno = errno ? errno : EIO;
		}
		return NULL;
	}
	ini->lineno++;
	ini->bytes += (size_t)len;
	if (ini->bytes > (size_t)ini->file_max) {
		/* it grew while being read */
		config_ini_fail(ini, ini->lineno, "the file is larger than %d bytes", ini->file_max);
		return NULL;
	}
	if (memchr(ini->line, '\0', (size_t)len)) {
		config_ini_fail(ini, ini->lineno, "NUL byte in the line (allowed: text only)");
		return NULL;
	}
	/* a split line would be counted twice and its tail parsed as a key */
	if (len > num - 2 + (ini->line[len - 1] == '\n')) {
		config_ini_fail(ini, ini->lineno, "line too long (allowed: at most %d characters)",
				num - 2);
		return NULL;
	}
	memcpy(str, ini->line, (size_t)len + 1);
	if (config_ini_scan_line(ini, str) < 0) {
		return NULL;
	}
	return str;
}

static int config_load_plugin_kv(struct config_ctx *ctx, const char *name,
				 const char *value)
{
	struct rpmsd_config *cfg = &ctx->cfg;
	struct config_plugin_kv *kv, *all = ctx->in_sham ? cfg->sham_kv : cfg->plugin_kv;
	size_t *count = ctx->in_sham ? &cfg->n_sham_kv : &cfg->n_plugin_kv;
	const char *kind = ctx->in_sham ? "sham_coil" : "coil";
	const char *section = ctx->in_sham ? cfg->sham_section : cfg->plugin_section;
	size_t i, n;

	if (strlen(name) >= sizeof(kv->key)) {
		config_fail(ctx, ctx->ini.lineno,
			    "%s.%s: key '%s' is too long (allowed: at most %zu characters)",
			    kind, section, name, sizeof(kv->key) - 1);
		return -EINVAL;
	}
	for (i = 0; i < *count; i++) {
		if (!strcmp(all[i].key, name)) {
			config_fail(ctx, ctx->ini.lineno,
				    "%s.%s.%s: set twice (first at line %d)",
				    kind, section, name,
				    all[i].line);
			return -EINVAL;
		}
	}
	if (*count >= CONFIG_MAX_PLUGIN_KEYS) {
		config_fail(ctx, ctx->ini.lineno,
			    "%s.%s.%s: too many keys (allowed: at most %d)",
			    kind, section, name, CONFIG_MAX_PLUGIN_KEYS);
		return -EINVAL;
	}
	n = strlen(value);
	if (n >= sizeof(kv->value)) {
		config_fail(ctx, ctx->ini.lineno,
			    "%s.%s.%s: value of %zu characters is too long (allowed: at most %zu characters)",
			    kind, section, name, n, sizeof(kv->value) - 1);
		return -EINVAL;
	}
	kv = &all[(*count)++];
	memcpy(kv->key, name, strlen(name) + 1);
	memcpy(kv->value, value, n + 1);
	kv->line = ctx->ini.lineno;
	return 0;
}

const struct config_key *config_ini_key(struct config_ini *ini,
					const struct config_ini_keys *keys,
					const char *section, const char *name,
					const char *value, int *key_line,
					union config_value *v)
{
	char buf[CONFIG_ERR_MAX];
	const struct config_key *k;
	size_t idx;

	if (ini->failed) {
		return NULL;
	}
	if (!name[0]) {
		config_ini_fail(ini, ini->lineno,
				"syntax error (expected '[section]' or 'key = value')");
		return NULL;
	}
	if (!section) {
		config_ini_fail(ini, ini->lineno,
				"%s: key outside any section (expected a '[section]' line first)",
				name);
		return NULL;
	}
	k = keys->find(section, name);
	if (!k) {
		keys->section_keys(section, buf, sizeof(buf));
		config_ini_fail(ini, ini->lineno, "%s.%s: unknown key (allowed: %s)", section,
				name, buf);
		return NULL;
	}
	idx = (size_t)(k - keys->table);
	if (key_line[idx]) {
		config_ini_fail(ini, ini->lineno, "%s.%s: set twice (first at line %d)",
				k->section, k->key, key_line[idx]);
		return NULL;
	}
	if (config_value_parse(k, value, v, buf, sizeof(buf)) < 0) {
		config_ini_fail(ini, ini->lineno, "%s.%s: %s", k->section, k->key, buf);
		return NULL;
	}
	key_line[idx] = ini->lineno;
	return k;
}

/* libinih handler: one "key = value" line; returns 0 to stop on error. */
static int config_load_handler(void *user, const char *section, const char *name,
			       const char *value)
{
	static const struct config_ini_keys keys = {
		config_key_table, config_key_find, config_key_section_keys,
	};
	struct config_ctx *ctx = user;
	const struct config_key *k;
	union config_value v;

	/* ours, not libinih's: it truncates long section names */
	(void)section;
	/* a coil's keys are the plugin's, not the table's */
	if (ctx->in_coil && !ctx->ini.failed && name[0]) {
		return config_load_plugin_kv(ctx, name, value) == 0;
	}
	k = config_ini_key(&ctx->ini, &keys, ctx->section, name, value, ctx->key_line, &v);
	if (!k) {
		return 0;
	}
	config_value_store(&ctx->cfg, k, value, &v);
	return 1;
}
static void config_load_inih_setup(struct config_load_inih_opts *saved, int line_max)
{
	saved->allow_multiline = ini_allow_multiline;
	saved->stop_on_first_error = ini_stop_on_first_error;
	saved->use_stack = ini_use_stack;
	saved->allow_no_value = ini_allow_no_value;
	saved->allow_bom = ini_allow_bom;
	saved->allow_inline_comments = ini_allow_inline_comments;
	saved->max_line = ini_max_line;

	/* one key per line, so the line we count is the key's line */
	ini_allow_multiline = false;
	/* the first error is the one reported; stop there */
	ini_stop_on_first_error = true;
	ini_use_stack = true;
	ini_allow_no_value = false;
	ini_allow_bom = true;
	ini_allow_inline_comments = true;
	ini_max_line = line_max;
}

static void config_load_inih_restore(const struct config_load_inih_opts *saved)
{
	ini_allow_multiline = saved->allow_multiline;
	ini_stop_on_first_error = saved->stop_on_first_error;
	ini_use_stack = saved->use_stack;
	ini_allow_no_value = saved->allow_no_value;
	ini_allow_bom = saved->allow_bom;
	ini_allow_inline_comments = saved->allow_inline_comments;
	ini_max_line = saved->max_line;
}

int config_ini_open(struct config_ini *ini, const struct config_ini_kind *kind,
		    const char *path, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	ini->path = path;
	ini->err = err;
	ini->errlen = errlen;
	ini->file_max = kind->file_max;
	ini->line_max = kind->line_max;
	ini->section = kind->section;
	if (errlen) {
		err[0] = '\0';
	}
	if (strlen(path) >= (size_t)kind->path_max) {
		config_ini_fail(ini, 0, "path is too long (allowed: at most %d characters)",
				kind->path_max - 1);
		return -ENAMETOOLONG;
	}
	ini->f = file_open_regular(ini->path, &rc);
	if (!ini->f) {
		if (rc == -EISDIR) {
			config_ini_fail(ini, 0, "cannot read: %s", strerror(-rc));
		} else if (rc == -EINVAL) {
			config_ini_fail(ini, 0, "not a regular file (allowed: %s)", kind->allowed);
		} else {
			config_ini_fail(ini, 0, "cannot open: %s", strerror(-rc));
		}
		return rc;
	}
	if (fstat(fileno(ini->f), &st) == 0 && st.st_size > ini->file_max) {
		config_ini_fail(ini, 0, "%lld bytes, too large for %s (allowed: at most %d bytes)",
				(long long)st.st_size, kind->noun, ini->file_max);
		return -EFBIG;
	}
	return 0;
}

int config_ini_parse(struct config_ini *ini,
		     int (*handler)(void *user, const char *section, const char *name,
				    const char *value),
		     void *user)
{
	struct config_load_inih_opts saved;
	int ret;

	config_load_inih_setup(&saved, ini->line_max);
	ret = ini_parse_stream(config_ini_read_line, ini, handler, user);
	config_load_inih_restore(&saved);
	if (ini->failed) {
		return -EINVAL;
	}
	if (ini->read_errno) {
		config_ini_fail(ini, 0, "cannot read: %s", strerror(ini->read_errno));
		return -ini->read_errno;
	}
	if (ret > 0) {
		config_ini_fail(ini, ret, "syntax error (expected '[section]' or 'key = value')");
		return -EINVAL;
	}
	if (ret < 0) {
		config_ini_fail(ini, 0, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void config_ini_close(struct config_ini *ini)
{
	if (ini->f) {
		fclose(ini->f);
		ini->f = NULL;
	}
	free(ini->line);
	ini->line = NULL;
}

/**
 * config_load() - parse and validate an INI file on top of the defaults
 * @cfg: receives the configuration; untouched on error
 * @path: file to read; error messages name it exactly as given
 * @err: receives "FILE:LINE: section.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Not thread-safe: libinih's options are process-wide.
 *
 * Return: 0, -EINVAL for bad content, or a negative errno when the file
 * cannot be opened or read.
 */
int config_load(struct rpmsd_config *cfg, const char *path, char *err, size_t errlen)
{
	return config_load_flags(cfg, path, 0, err, errlen);
}

int config_load_flags(struct rpmsd_config *cfg, const char *path, unsigned flags,
		      char *err, size_t errlen)
{
	static const struct config_ini_kind kind = {
		.path_max = CONFIG_PATH_MAX,
		.file_max = CONFIG_LOAD_FILE_MAX,
		.line_max = CONFIG_LOAD_LINE_MAX,
		.section = config_load_ini_section,
		.allowed = "a configuration file",
		.noun = "a configuration file",
	};
	struct config_ctx *ctx;
	int rc;

	/* large (plugin keys), so not on the stack */
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		config_report(err, errlen, path, 0, "out of memory");
		return -ENOMEM;
	}
	ctx->flags = flags;
	rc = config_ini_open(&ctx->ini, &kind, path, err, errlen);
	if (rc == 0) {
		config_defaults(&ctx->cfg);
		memcpy(ctx->cfg.path, path, strlen(path) + 1);
		rc = config_ini_parse(&ctx->ini, config_load_handler, ctx);
	}
	if (rc == 0) {
		rc = config_rule_all(ctx);
	}
	config_ini_close(&ctx->ini);
	if (rc == 0) {
		memcpy(ctx->cfg.key_line, ctx->key_line, sizeof(ctx->key_line));
		*cfg = ctx->cfg;
	}
	free(ctx);
	return rc;
}
