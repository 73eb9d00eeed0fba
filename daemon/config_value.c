/* SPDX-License-Identifier: MIT */
/*
 * One configuration value: text to a typed value, checked against its key's
 * type, range and check, stored into struct rpmsd_config, and printed back.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_private.h"

static int config_value_bool(const char *text, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(text, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(text, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int config_value_ll(const char *text, long long *out)
{
	char *end;
	long long v;

	/* strtoll would skip leading blanks; a value has none left anyway */
	if (!text[0] || isspace((unsigned char)text[0])) {
		return -EINVAL;
	}
	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || *end) {
		return -EINVAL;
	}
	if (errno == ERANGE) {
		return -ERANGE;
	}
	*out = v;
	return 0;
}

/* Whole-string finite number: -EINVAL if not one, -ERANGE on overflow. */
static int config_value_double(const char *text, double *out)
{
	char *end;
	double v;

	if (!text[0] || isspace((unsigned char)text[0])) {
		return -EINVAL;
	}
	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end) {
		return -EINVAL;
	}
	if (errno == ERANGE && fabs(v) > 1.0) {
		return -ERANGE;
	}
	/* underflow (1e-400) quietly becomes 0 or a denormal, which is fine */
	if (!isfinite(v)) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int config_value_parse(const struct config_key *k, const char *text,
		       union config_value *v, char *why, size_t len)
{
	char allowed[CONFIG_ALLOWED_MAX];
	char what[CONFIG_ERR_MAX];
	const struct config_enum *e;
	size_t n;
	int rc;

	config_key_allowed(k, true, allowed, sizeof(allowed));
	switch (k->type) {
	case CONFIG_TYPE_BOOL:
		if (config_value_bool(text, &v->b) < 0) {
			config_print(why, len, "'%s' is not a boolean (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_INT:
		rc = config_value_ll(text, &v->i);
		if (rc == -EINVAL) {
			config_print(why, len, "'%s' is not an integer (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if (rc == -ERANGE) {
			config_print(why, len, "%s is out of range (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if ((double)v->i < k->min || (double)v->i > k->max) {
			config_print(why, len, "%lld is out of range (allowed: %s)",
				     v->i, allowed);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_DOUBLE:
		rc = config_value_double(text, &v->d);
		if (rc == -EINVAL) {
			config_print(why, len, "'%s' is not a number (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if (rc == -ERANGE) {
			config_print(why, len, "%s is out of range (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		if (v->d < k->min || v->d > k->max) {
			config_print(why, len, "%.15g is out of range (allowed: %s)",
				     v->d, allowed);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_STRING:
		n = strlen(text);
		if (n >= k->size) {
			config_print(why, len,
				     "value of %zu characters is too long (allowed: at most %zu characters)",
				     n, k->size - 1);
			return -EINVAL;
		}
		break;
	case CONFIG_TYPE_ENUM:
		for (e = k->values; e->name; e++) {
			if (!strcasecmp(text, e->name)) {
				break;
			}
		}
		if (!e->name) {
			config_print(why, len, "'%s' is not allowed (allowed: %s)",
				     text, allowed);
			return -EINVAL;
		}
		v->e = e->value;
		break;
	}
	if (k->check && k->check(text, v, what, sizeof(what)) < 0) {
		config_print(why, len, "%s (allowed: %s)", what, allowed);
		return -EINVAL;
	}
	return 0;
}

void config_value_store(struct rpmsd_config *cfg, const struct config_key *k,
			const char *text, const union config_value *v)
{
	config_value_store_at(cfg, k, text, v);
}

void config_value_store_at(void *base, const struct config_key *k, const char *text,
			   const union config_value *v)
{
	void *p = (char *)base + k->offset;

	switch (k->type) {
	case CONFIG_TYPE_BOOL:
		*(bool *)p = v->b;
		break;
	case CONFIG_TYPE_INT:
		*(int *)p = (int)v->i;
		break;
	case CONFIG_TYPE_DOUBLE:
		*(double *)p = v->d;
		break;
	case CONFIG_TYPE_STRING:
		memcpy(p, text, strlen(text) + 1);
		break;
	case CONFIG_TYPE_ENUM:
		*(int *)p = v->e;
		break;
	}
}

/**
 * config_value_text() - the value of one key as it would be written in a file
 * @cfg: the configuration
 * @section: the key's section
 * @key: the key
 * @buf: receives the text (cut to fit)
 * @len: size of @buf
 *
 * Return: 0, or -ENOENT for a key the table does not have.
 */
int config_value_text(const struct rpmsd_config *cfg, const char *section, const char *key,
		      char *buf, size_t len)
{
	const struct config_key *k = config_key_find(section, key);
	const void *p;
	const struct config_enum *e;

	if (!k) {
		return -ENOENT;
	}
	p = (const char *)cfg + k->offset;
	switch (k->type) {
	case CONFIG_TYPE_BOOL:
		config_print(buf, len, "%s", *(const bool *)p ? "true" : "false");
		break;
	case CONFIG_TYPE_INT:
		config_print(buf, len, "%d", *(const int *)p);
		break;
	case CONFIG_TYPE_DOUBLE:
		config_print(buf, len, "%.15g", *(const double *)p);
		break;
	case CONFIG_TYPE_STRING:
		config_print(buf, len, "%s", (const char *)p);
		break;
	case CONFIG_TYPE_ENUM:
		for (e = k->values; e->name && e->value != *(const int *)p; e++) {
			;
		}
		config_print(buf, len, "%s", e->name ? e->name : "");
		break;
	}
	return 0;
}
