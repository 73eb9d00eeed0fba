/* SPDX-License-Identifier: MIT */
/*
 * The configuration's inner parts, shared by the files that make it up and
 * by nothing else (the model: control_private.h):
 *
 *   config.c         messages, defaults, overrides and re-checks, plugin
 *                    keys, paths, the template, the diff
 *   config_key.c     the key table: every key, its type, range, default,
 *                    scope and doc
 *   config_value.c   one value: parse, range-check, store, print
 *   config_check.c   the checks of single keys the table names (.check)
 *   config_load.c    the INI file: libinih, lines, sections, keys
 *   config_rule.c    the rules between keys, run after a load or overrides
 *
 * The prescription (prescription*.c) reads its own file with this key
 * machinery too: struct config_key (its offsets into struct prescription),
 * config_value_parse, config_value_store_at and the message helpers.
 */
#ifndef RPMSD_CONFIG_PRIVATE_H
#define RPMSD_CONFIG_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

#define CONFIG_ALLOWED_MAX 512

enum config_type {
	CONFIG_TYPE_BOOL,
	CONFIG_TYPE_INT,
	CONFIG_TYPE_DOUBLE,
	CONFIG_TYPE_STRING,
	CONFIG_TYPE_ENUM,
};

/* One allowed value of an enum key: its name in the file and its value. */
struct config_enum {
	const char *name;
	int value;
};

union config_value {
	bool b;
	long long i;
	double d;
	int e;
};

/*
 * A key-specific check run after the type and range checks. It writes what
 * is wrong ("1000 is not a power of two") into @why; the caller appends the
 * allowed text.
 */
typedef int (*config_check_fn)(const char *text, const union config_value *v,
			       char *why, size_t len);

struct config_key {
	const char *section;
	const char *key;
	enum config_type type;
	const char *def;			/* default, parsed like file text */
	double min;				/* INT, DOUBLE: inclusive range */
	double max;
	const char *unit;			/* "" if none */
	const char *doc;			/* one line, for the template */
	const struct config_enum *values;	/* ENUM: ends with a NULL name */
	const char *allowed;			/* replaces the generated text */
	config_check_fn check;			/* NULL if none */
	bool live;				/* may change while running (CONFIG_KEY_LIVE) */
	bool limit;				/* a safety limit (CONFIG_KEY_LIMIT) */
	size_t offset;				/* into struct rpmsd_config (or the
						   prescription's struct) */
	size_t size;				/* of the field */
};

/*
 * One INI file read through libinih behind our own line reader (which
 * counts lines and sees the "[section]" lines libinih's handler never
 * does): the part config_load and prescription_load share (config_load.c).
 */
struct config_ini {
	const char *path;		/* as given, for messages */
	char *err;
	size_t errlen;
	bool failed;			/* an error is in err */
	FILE *f;
	int lineno;			/* line last handed to libinih */
	int read_errno;
	char *line;			/* getline buffer */
	size_t line_cap;
	size_t bytes;			/* read so far */
	int file_max;			/* set by the reader's owner: largest file, bytes */
	int line_max;			/* ... libinih's line buffer (longest line + 2) */
	/* ... a "[name]" line, before libinih reads it; < 0 (err filled) stops */
	int (*section)(struct config_ini *ini, const char *name, size_t len);
};

/* State of one config_load, or of one config_recheck. */
struct config_ctx {
	struct rpmsd_config cfg;	/* copied out only on success */
	struct config_ini ini;		/* the file; path, err and failed also for a recheck */
	const char *section;		/* current table section, NULL if none */
	bool in_coil;			/* current section is [coil.<name>] */
	bool in_sham;			/* ... and it is [sham_coil.<name>] */
	int key_line[CONFIG_KEYS_MAX];	/* where each key was set, 0 = not */
	unsigned flags;			/* CONFIG_LOAD_*, CONFIG_CHECK_* */
};

/*
 * config_recheck: check against the train table in cfg->safety.train_table
 * (the one in force), never the file as it is now on disk.
 */
#define CONFIG_CHECK_TABLE_IN_FORCE 0x100u

/* config.c: messages */

/* Write "PATH:LINE: message" into @err, or "PATH: message" when @line is 0. */
void config_vreport(char *err, size_t errlen, const char *path, int line, const char *fmt,
		    va_list ap) __attribute__((format(printf, 5, 0)));
void config_report(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Report "PATH:LINE: message" (line 0: "PATH: message") into @ini's err, once. */
void config_ini_vfail(struct config_ini *ini, int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Record the first error of a load or re-check; later ones are dropped. */
void config_fail(struct config_ctx *ctx, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* snprintf that may truncate: messages quote values of any length. */
void config_print(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* snprintf at the end of what @buf already holds, truncating silently. */
void config_append(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* config_load.c: the INI reader's pieces a second file format shares */

/*
 * Whether @line (line @lineno of its file) is a section header libinih
 * will take: then 1, with the name in @name/@len (not NUL-terminated).
 * A UTF-8 BOM on line 1 and leading blanks are skipped; a header cut by
 * an inline comment or without its ']' is not one (libinih reports it).
 */
int config_load_section_line(const char *line, int lineno, const char **name, size_t *len);

/* A kind of INI file: its limits, its section hook, the words its messages use. */
struct config_ini_kind {
	int path_max;			/* a path has fewer characters */
	int file_max;			/* see struct config_ini */
	int line_max;
	int (*section)(struct config_ini *ini, const char *name, size_t len);
	const char *allowed;		/* "not a regular file (allowed: @allowed)" */
	const char *noun;		/* "too large for @noun" */
};

/*
 * Set up @ini (zeroed) to read @path as a @kind file, errors into @err,
 * and open it: a path shorter than @kind->path_max, a regular file of at
 * most @kind->file_max bytes.
 * Return: 0, or a negative errno with the error in @err.
 */
int config_ini_open(struct config_ini *ini, const struct config_ini_kind *kind,
		    const char *path, char *err, size_t errlen);

/*
 * Parse the file config_ini_open opened, @handler (libinih's, with @user)
 * seeing each "key = value" line while @ini->lineno is its line; libinih's
 * process-wide options are set for the parse and restored (not thread-safe).
 * Return: 0, -EINVAL for bad content, -ENOMEM, or the read's -errno, with
 * the error in @ini->err.
 */
int config_ini_parse(struct config_ini *ini,
		     int (*handler)(void *user, const char *section, const char *name,
				    const char *value),
		     void *user);

/* Close @ini's file and free its line buffer; a zeroed @ini is fine. */
void config_ini_close(struct config_ini *ini);

/* A key table (config_key.c's, prescription_key.c's) and its look-ups. */
struct config_ini_keys {
	const struct config_key *table;
	const struct config_key *(*find)(const char *section, const char *key);
	void (*section_keys)(const char *section, char *buf, size_t len);
};

/*
 * What every "key = value" line of @ini gets from a libinih handler: not
 * after an error, a key, in a @section, known to @keys, set once
 * (@key_line, indexed like @keys->table, says where; set here), its
 * @value parsed into @v for the caller to store.
 * Return: the key, or NULL with the error reported in @ini.
 */
const struct config_key *config_ini_key(struct config_ini *ini,
					const struct config_ini_keys *keys,
					const char *section, const char *name,
					const char *value, int *key_line,
					union config_value *v);

/* config_key.c: the table */

extern const struct config_key config_key_table[];
extern const size_t config_key_count;
extern const char *const config_key_sections[];
extern const size_t config_key_n_sections;
extern const struct config_enum config_key_protocols[];

/* The table's entry for section.key, or NULL. */
const struct config_key *config_key_find(const char *section, const char *key);
/* Where @k's value is in @cfg. */
void *config_key_field(struct rpmsd_config *cfg, const struct config_key *k);
/*
 * The "allowed" text of @k. With @unit, the unit of a number follows it, as
 * in error messages; the template prints the unit separately.
 */
void config_key_allowed(const struct config_key *k, bool unit, char *buf, size_t len);
/* The keys of @section, "a, b, c", for a message. */
void config_key_section_keys(const char *section, char *buf, size_t len);

/* config_value.c: one value */

/* Whole-string base-10 integer: -EINVAL if not one, -ERANGE on overflow. */
int config_value_ll(const char *text, long long *out);
/*
 * Parse and check @text as a value of @k. On error @why receives
 * "what is wrong (allowed: ...)", to follow "section.key: ".
 */
int config_value_parse(const struct config_key *k, const char *text, union config_value *v,
		       char *why, size_t len);
/* Store a value config_value_parse accepted. */
void config_value_store(struct rpmsd_config *cfg, const struct config_key *k, const char *text,
			const union config_value *v);

/*
 * Store a value config_value_parse accepted into the struct at @base that
 * @k's offset is into: the prescription's table (prescription_key.c) uses
 * the same parsing and storing for struct prescription.
 */
void config_value_store_at(void *base, const struct config_key *k, const char *text,
			   const union config_value *v);

/* config_check.c: single keys (struct config_key's .check) */

int config_check_rate(const char *text, const union config_value *v, char *why, size_t len);
int config_check_nonzero(const char *text, const union config_value *v, char *why, size_t len);
int config_check_column(const char *text, const union config_value *v, char *why, size_t len);
int config_check_plugin(const char *text, const union config_value *v, char *why, size_t len);
int config_check_pow2(const char *text, const union config_value *v, char *why, size_t len);
int config_check_endpoint(const char *text, const union config_value *v, char *why, size_t len);
int config_check_control_endpoint(const char *text, const union config_value *v, char *why,
				  size_t len);
int config_check_edf_id(const char *text, const union config_value *v, char *why, size_t len);
int config_check_edf_admincode(const char *text, const union config_value *v, char *why,
			       size_t len);
int config_check_file_name(const char *text, const union config_value *v, char *why,
			   size_t len);
int config_check_zone(const char *text, const union config_value *v, char *why, size_t len);
/* Whether the first @n characters of @name make a plugin name. */
bool config_check_plugin_name(const char *name, size_t n);

/* config_rule.c: between keys */

/* Checks that involve more than one key, run once the file or the overrides are in. */
int config_rule_all(struct config_ctx *ctx);

#endif /* RPMSD_CONFIG_PRIVATE_H */
