/* SPDX-License-Identifier: MIT */
/*
 * rpmsd configuration: messages, defaults, overrides and re-checks, plugin
 * keys, paths, the template and the diff. The key table is config_key.c;
 * config_private.h says which file holds the rest.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rpmsd/coil.h>

#include "config.h"
#include "config_private.h"

void config_vreport(char *err, size_t errlen, const char *path, int line,
		    const char *fmt, va_list ap)
{
	int n;

	if (!errlen) {
		return;
	}
	if (line > 0) {
		n = snprintf(err, errlen, "%s:%d: ", path, line);
	} else {
		n = snprintf(err, errlen, "%s: ", path);
	}
	if (n < 0 || (size_t)n >= errlen) {
		return;
	}
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

void config_report(char *err, size_t errlen, const char *path, int line,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_vreport(err, errlen, path, line, fmt, ap);
	va_end(ap);
}

void config_fail(struct config_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_ini_vfail(&ctx->ini, line, fmt, ap);
	va_end(ap);
}

void config_ini_vfail(struct config_ini *ini, int line, const char *fmt, va_list ap)
{
	if (ini->failed) {
		return;
	}
	ini->failed = true;
	config_vreport(ini->err, ini->errlen, ini->path, line, fmt, ap);
}

void config_print(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

void config_append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= len) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}
/**
 * config_defaults() - fill @cfg with the defaults of the key table
 * @cfg: configuration to overwrite
 *
 * Every default is parsed from its text in the table, so the defaults, the
 * template and the parser cannot disagree.
 */
void config_defaults(struct rpmsd_config *cfg)
{
	union config_value v;
	char why[CONFIG_ERR_MAX];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	train_table_default(&cfg->safety.train_table);
	for (i = 0; i < config_key_count; i++) {
		/* a table default that does not parse is a build bug */
		if (config_value_parse(&config_key_table[i], config_key_table[i].def, &v,
				       why, sizeof(why)) < 0) {
			fprintf(stderr, "rpmsd: config table: %s.%s: default %s\n",
				config_key_table[i].section, config_key_table[i].key, why);
			abort();
		}
		config_value_store(cfg, &config_key_table[i], config_key_table[i].def, &v);
	}
}
/* config_override of safety.train_table: the file is read here, once. */
static int config_override_table(struct rpmsd_config *cfg, const char *origin,
				 const struct config_key *k, const char *value,
				 const union config_value *v, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX], why[CONFIG_ERR_MAX];
	struct train_table *t = malloc(sizeof(*t));
	int rc = 0;

	if (!t) {
		config_report(err, errlen, origin, 0, "out of memory");
		return -ENOMEM;
	}
	if (!value[0]) {
		train_table_default(t);
	} else if (config_resolve(cfg, value, path, sizeof(path)) < 0) {
		config_report(err, errlen, origin, 0, "safety.train_table: path too long");
		rc = -EINVAL;
	} else if (train_table_load(path, t, why, sizeof(why)) < 0) {
		config_report(err, errlen, origin, 0, "safety.train_table: %s", why);
		rc = -EINVAL;
	}
	if (rc == 0) {
		config_value_store(cfg, k, value, v);
		cfg->safety.train_table = *t;
	}
	free(t);
	return rc;
}

/**
 * config_override() - set one key from somewhere other than a file
 * @cfg: the configuration to change; untouched on error
 * @origin: what set it, for messages (a command-line option)
 * @section: the key's section
 * @key: the key
 * @value: its value as text, parsed and checked as in a file
 * @err: receives "ORIGIN: section.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Cross-key rules are checked by config_recheck() once every override is in.
 * safety.train_table is read here (config_recheck reads no file).
 *
 * Return: 0, or -EINVAL (unknown key or bad value).
 */
int config_override(struct rpmsd_config *cfg, const char *origin, const char *section,
		    const char *key, const char *value, char *err, size_t errlen)
{
	char why[CONFIG_ERR_MAX];
	const struct config_key *k = config_key_find(section, key);
	union config_value v;

	if (!k) {
		config_report(err, errlen, origin, 0, "%s.%s: unknown key", section, key);
		return -EINVAL;
	}
	if (config_value_parse(k, value, &v, why, sizeof(why)) < 0) {
		config_report(err, errlen, origin, 0, "%s.%s: %s", section, key, why);
		return -EINVAL;
	}
	if (k == config_key_find("safety", "train_table")) {
		/* config_recheck never reads the file: load the new table now */
		return config_override_table(cfg, origin, k, value, &v, err, errlen);
	}
	config_value_store(cfg, k, value, &v);
	return 0;
}
/**
 * config_recheck() - check the rules between keys after config_override()
 * @cfg: the configuration; derived fields are updated, nothing else
 *
 * Reads no file: the protocol is checked against cfg->safety.train_table,
 * the table loaded with the configuration (the one in force in a running
 * daemon), never against the file as it may have been edited since.
 * @origin: named in messages (the overrides' source)
 * @err: receives "ORIGIN: section.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Return: 0 or -EINVAL.
 */
int config_recheck(struct rpmsd_config *cfg, const char *origin, char *err, size_t errlen)
{
	struct config_ctx *ctx = calloc(1, sizeof(*ctx));
	int rc;

	if (!ctx) {
		config_report(err, errlen, origin, 0, "out of memory");
		return -ENOMEM;
	}
	ctx->cfg = *cfg;
	ctx->ini.path = origin;
	ctx->ini.err = err;
	ctx->ini.errlen = errlen;
	ctx->flags = CONFIG_CHECK_TABLE_IN_FORCE;
	rc = config_rule_all(ctx);
	if (rc == 0) {
		*cfg = ctx->cfg;
	}
	free(ctx);
	return rc;
}

/* Describe a plugin's key as a table key so the same parser applies. */
static int config_coil_key(const struct rpmsd_coil_key *ck, struct config_key *k)
{
	memset(k, 0, sizeof(*k));
	k->key = ck->name;
	k->def = ck->def;
	k->min = ck->min;
	k->max = ck->max;
	k->unit = ck->unit ? ck->unit : "";
	k->doc = ck->doc;
	k->size = CONFIG_PATH_MAX;
	switch (ck->type) {
	case RPMSD_COIL_KEY_BOOL:
		k->type = CONFIG_TYPE_BOOL;
		return 0;
	case RPMSD_COIL_KEY_INT:
		k->type = CONFIG_TYPE_INT;
		return 0;
	case RPMSD_COIL_KEY_DOUBLE:
		k->type = CONFIG_TYPE_DOUBLE;
		return 0;
	case RPMSD_COIL_KEY_STRING:
		k->type = CONFIG_TYPE_STRING;
		return 0;
	}
	return -EINVAL;
}

static const struct rpmsd_coil_key *config_coil_find(const struct rpmsd_coil_key *keys,
						     size_t n_keys, const char *name)
{
	size_t i;

	for (i = 0; i < n_keys; i++) {
		if (!strcmp(keys[i].name, name)) {
			return &keys[i];
		}
	}
	return NULL;
}

/**
 * config_validate_plugin_keys() - check [coil.<name>] against a plugin
 * @cfg: loaded configuration
 * @keys: the plugin's declared keys
 * @n_keys: number of @keys
 * @err: receives "FILE:LINE: coil.<name>.key: problem (allowed: ...)"
 * @errlen: size of @err
 *
 * Return: 0, or -EINVAL on an unknown key or a bad value.
 */
int config_validate_plugin_keys(const struct rpmsd_config *cfg,
				const struct rpmsd_coil_key *keys, size_t n_keys,
				char *err, size_t errlen)
{
	const struct config_plugin_kv *kv;
	const struct rpmsd_coil_key *ck;
	char buf[CONFIG_ERR_MAX];
	struct config_key k;
	union config_value v;
	const char *kind = cfg->plugin_is_sham ? "sham_coil" : "coil";
	size_t i, j;

	if (errlen) {
		err[0] = '\0';
	}
	for (i = 0; i < cfg->n_plugin_kv; i++) {
		kv = &cfg->plugin_kv[i];
		ck = config_coil_find(keys, n_keys, kv->key);
		if (!ck) {
			buf[0] = '\0';
			for (j = 0; j < n_keys; j++) {
				config_append(buf, sizeof(buf), "%s%s",
					      j ? ", " : "", keys[j].name);
			}
			config_report(err, errlen, cfg->path, kv->line,
				      "%s.%s.%s: unknown key (allowed: %s)",
				      kind, cfg->plugin_section, kv->key,
				      n_keys ? buf : "none");
			return -EINVAL;
		}
		if (config_coil_key(ck, &k) < 0) {
			config_report(err, errlen, cfg->path, kv->line,
				      "%s.%s.%s: the plugin declares an unknown type %d",
				      kind, cfg->plugin_section, kv->key, (int)ck->type);
			return -EINVAL;
		}
		if (config_value_parse(&k, kv->value, &v, buf, sizeof(buf)) < 0) {
			config_report(err, errlen, cfg->path, kv->line,
				      "%s.%s.%s: %s", kind, cfg->plugin_section,
				      kv->key, buf);
			return -EINVAL;
		}
	}
	return 0;
}

void config_sham_coil(const struct rpmsd_config *cfg, struct rpmsd_config *out)
{
	*out = *cfg;
	/* the plugin host reads plugin_*: give it the sham coil's section */
	memcpy(out->plugin_section, cfg->sham_section, sizeof(out->plugin_section));
	out->plugin_section_line = cfg->sham_section_line;
	memcpy(out->plugin_kv, cfg->sham_kv, sizeof(out->plugin_kv));
	out->n_plugin_kv = cfg->n_sham_kv;
	out->plugin_is_sham = true;
	memcpy(out->stim.plugin, config_sham_plugin(cfg), sizeof(out->stim.plugin));
}

const char *config_sham_plugin(const struct rpmsd_config *cfg)
{
	return cfg->blind.sham_plugin[0] ? cfg->blind.sham_plugin : cfg->stim.plugin;
}

/**
 * config_plugin_value() - effective text of a plugin key
 * @cfg: loaded configuration
 * @keys: the plugin's declared keys
 * @n_keys: number of @keys
 * @key: key name
 *
 * Return: the value set in [coil.<name>], else the declared default, or
 * NULL if the plugin does not declare @key.
 */
const char *config_plugin_value(const struct rpmsd_config *cfg,
				const struct rpmsd_coil_key *keys, size_t n_keys,
				const char *key)
{
	const struct rpmsd_coil_key *ck = config_coil_find(keys, n_keys, key);
	size_t i;

	if (!ck) {
		return NULL;
	}
	for (i = 0; i < cfg->n_plugin_kv; i++) {
		if (!strcmp(cfg->plugin_kv[i].key, key)) {
			return cfg->plugin_kv[i].value;
		}
	}
	return ck->def;
}

/**
 * config_source_path() - resolve source.file into @out
 * @cfg: loaded configuration
 * @out: receives the path
 * @outlen: size of @out
 *
 * An absolute source.file is copied as is; a relative one is taken relative
 * to the directory of cfg->path, or left relative to the current directory
 * when cfg->path has no directory part or is empty.
 *
 * Return: 0 or -ENAMETOOLONG.
 */
int config_source_path(const struct rpmsd_config *cfg, char *out, size_t outlen)
{
	return config_resolve(cfg, cfg->source.file, out, outlen);
}

void config_train_shape(const struct rpmsd_config *cfg, struct config_train_shape *sh)
{
	double last_s = 0.0;	/* a train's first pulse to its last */

	memset(sh, 0, sizeof(*sh));
	sh->cycles = 1;
	switch (cfg->stim.protocol) {
	case CONFIG_PROTOCOL_TRAIN:
		sh->pulses = (unsigned)cfg->stim.train_pulses;
		sh->rate_hz = cfg->stim.train_frequency_hz;
		sh->burst_pulses = sh->pulses;
		sh->on_s = sh->pulses / sh->rate_hz;
		break;
	case CONFIG_PROTOCOL_ONOFF:
		sh->rate_hz = cfg->stim.train_frequency_hz;
		sh->pulses = (unsigned)lround(cfg->stim.on_ms * 1e-3 * sh->rate_hz);
		if (sh->pulses < 1) {
			sh->pulses = 1;
		}
		sh->burst_pulses = sh->pulses;
		sh->on_s = sh->pulses / sh->rate_hz;
		sh->cycles = (unsigned)cfg->stim.cycles;
		break;
	case CONFIG_PROTOCOL_THETA:
		sh->rate_hz = cfg->stim.theta_frequency_hz;
		sh->burst_pulses = (unsigned)cfg->stim.theta_burst_pulses;
		sh->pulses = sh->burst_pulses * (unsigned)cfg->stim.theta_bursts;
		sh->burst_period_s = cfg->stim.theta_period_ms * 1e-3;
		sh->on_s = cfg->stim.theta_bursts * sh->burst_period_s;
		sh->cycles = (unsigned)cfg->stim.cycles;
		break;
	case CONFIG_PROTOCOL_SINGLE:
	default:
		sh->pulses = 1;
		sh->burst_pulses = 1;
		break;
	}
	sh->cycle_period_s = sh->on_s + cfg->stim.off_ms * 1e-3;
	/* last pulse of a train to the first of the next */
	if (sh->burst_period_s > 0) {
		last_s = (cfg->stim.theta_bursts - 1) * sh->burst_period_s +
			 (sh->burst_pulses - 1) / sh->rate_hz;
	} else if (sh->rate_hz > 0) {
		last_s = (sh->pulses - 1) / sh->rate_hz;
	}
	sh->gap_s = sh->cycle_period_s - last_s;
}

int config_resolve(const struct rpmsd_config *cfg, const char *file, char *out, size_t outlen)
{
	const char *slash;
	size_t dirlen = 0;
	int n;

	if (file[0] != '/') {
		slash = strrchr(cfg->path, '/');
		if (slash) {
			/* keep the slash: "/x.conf" has directory "/" */
			dirlen = (size_t)(slash - cfg->path) + 1;
		}
	}
	if (dirlen > INT_MAX) {
		return -ENAMETOOLONG;
	}
	n = snprintf(out, outlen, "%.*s%s", (int)dirlen, cfg->path, file);
	if (n < 0 || (size_t)n >= outlen) {
		return -ENAMETOOLONG;
	}
	return 0;
}

/**
 * config_write_template() - write the commented default configuration
 * @f: stream to write to
 *
 * Lists every section and key with its meaning, allowed values, unit and
 * default. config/rpmsd.conf is exactly this output.
 */
void config_write_template(FILE *f)
{
	char allowed[CONFIG_ALLOWED_MAX];
	const struct config_key *k;
	size_t s, i;

	fputs("# rpmsd configuration\n"
	      "#\n"
	      "# Every key rpmsd knows is listed below, set to its default, with its\n"
	      "# meaning, its allowed values and its unit. A key left out keeps its\n"
	      "# default. An unknown section or key, a key set twice or a value out\n"
	      "# of range is an error that names the file, the line and the key.\n"
	      "# Lines starting with '#' or ';' are comments.\n"
	      "#\n"
	      "# Relative paths are relative to the directory of this file.\n"
	      "#\n"
	      "# The coil plugin named by stim.plugin takes its own keys from a\n"
	      "# section [coil.<plugin>], for example [coil.sim]. Only that one coil\n"
	      "# section may appear. The plugin declares its keys, their defaults and\n"
	      "# their ranges; rpmsd --plugin-keys NAME will list them.\n",
	      f);
	for (s = 0; s < config_key_n_sections; s++) {
		fprintf(f, "\n[%s]\n", config_key_sections[s]);
		for (i = 0; i < config_key_count; i++) {
			k = &config_key_table[i];
			if (strcmp(k->section, config_key_sections[s])) {
				continue;
			}
			config_key_allowed(k, false, allowed, sizeof(allowed));
			fprintf(f, "\n# %s\n# allowed: %s", k->doc, allowed);
			if (k->unit[0]) {
				fprintf(f, "; unit: %s", k->unit);
			}
			fprintf(f, "\n%s =%s%s\n", k->key, k->def[0] ? " " : "",
				k->def);
		}
	}
}

/* A [coil.*] key's raw value in @cfg, or NULL when the file does not set it. */
static const char *config_raw_plugin_value(const struct rpmsd_config *cfg, const char *key)
{
	size_t i;

	for (i = 0; i < cfg->n_plugin_kv; i++) {
		if (!strcmp(cfg->plugin_kv[i].key, key)) {
			return cfg->plugin_kv[i].value;
		}
	}
	return NULL;
}

/* Report @cfg's [coil.*] keys that @other lacks or holds differently. */
static void config_diff_plugin(const struct rpmsd_config *cfg, const struct rpmsd_config *other,
			       bool only_missing, config_diff_fn fn, void *arg)
{
	const char *v;
	char section[CONFIG_NAME_MAX + 8];
	size_t i;

	snprintf(section, sizeof(section), "coil.%s", cfg->plugin_section);
	for (i = 0; i < cfg->n_plugin_kv; i++) {
		v = config_raw_plugin_value(other, cfg->plugin_kv[i].key);
		if (only_missing ? !v : (!v || strcmp(v, cfg->plugin_kv[i].value))) {
			fn(section, cfg->plugin_kv[i].key, arg);
		}
	}
}

/* Whether two loaded train tables hold different cells. */
static bool config_tables_differ(const struct train_table *a, const struct train_table *b)
{
	unsigned i, j;

	if (a->n_rates != b->n_rates || a->n_levels != b->n_levels) {
		return true;
	}
	for (j = 0; j < a->n_levels; j++) {
		if (a->level_pct[j] != b->level_pct[j]) {
			return true;
		}
	}
	for (i = 0; i < a->n_rates; i++) {
		if (a->rate_hz[i] != b->rate_hz[i]) {
			return true;
		}
		for (j = 0; j < a->n_levels; j++) {
			if (a->max_s[i][j] != b->max_s[i][j]) {
				return true;
			}
		}
	}
	return false;
}

void config_diff(const struct rpmsd_config *a, const struct rpmsd_config *b,
		 config_diff_fn fn, void *arg)
{
	char va[CONFIG_PATH_MAX], vb[CONFIG_PATH_MAX];
	const struct config_key *k, *table = config_key_find("safety", "train_table");
	size_t i;

	for (i = 0; i < config_key_count; i++) {
		k = &config_key_table[i];
		config_value_text(a, k->section, k->key, va, sizeof(va));
		config_value_text(b, k->section, k->key, vb, sizeof(vb));
		/* the same file name, edited since: the table changed all the same */
		if (strcmp(va, vb) ||
		    (k == table && config_tables_differ(&a->safety.train_table,
							&b->safety.train_table))) {
			fn(k->section, k->key, arg);
		}
	}
	if (strcmp(a->plugin_section, b->plugin_section)) {
		fn("coil", "(section)", arg);
		return;
	}
	config_diff_plugin(a, b, false, fn, arg);
	config_diff_plugin(b, a, true, fn, arg);
}
