/* SPDX-License-Identifier: MIT */
/*
 * The checks of single keys that the key table names (.check), run after
 * the type and range checks. Each writes what is wrong into @why; the
 * caller appends the allowed text.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "config_private.h"
#include "zone.h"

int config_check_rate(const char *text, const union config_value *v,
		      char *why, size_t len)
{
	(void)text;
	/* below 100 Hz there is no EMG band left to filter */
	if (v->d != 0 && v->d < 100) {
		config_print(why, len, "%.15g is out of range", v->d);
		return -EINVAL;
	}
	return 0;
}

int config_check_nonzero(const char *text, const union config_value *v, char *why, size_t len)
{
	(void)text;
	/* a scale of 0 would turn every reading into the same angle */
	if (v->d == 0) {
		config_print(why, len, "0 makes every reading the same");
		return -EINVAL;
	}
	return 0;
}

int config_check_column(const char *text, const union config_value *v,
			char *why, size_t len)
{
	const char *p = text;
	const char *end;
	char item[CONFIG_PATH_MAX];
	size_t n_items = 0;
	size_t a, b;
	long long num;
	int rc;

	(void)v;
	for (;;) {
		end = strchr(p, ',');
		if (!end) {
			end = p + strlen(p);
		}
		a = 0;
		b = (size_t)(end - p);
		while (a < b && isspace((unsigned char)p[a])) {
			a++;
		}
		while (b > a && isspace((unsigned char)p[b - 1])) {
			b--;
		}
		if (a == b) {
			config_print(why, len, "'%s' has an empty item", text);
			return -EINVAL;
		}
		if (++n_items > CONFIG_MAX_COLUMNS) {
			config_print(why, len, "'%s' has more than %d items", text,
				     CONFIG_MAX_COLUMNS);
			return -EINVAL;
		}
		/* text is shorter than CONFIG_PATH_MAX, so the item fits */
		memcpy(item, p + a, b - a);
		item[b - a] = '\0';
		/* anything that reads as a number is a column number */
		rc = config_value_ll(item, &num);
		if (rc != -EINVAL && (rc < 0 || num < 1 || num > INT_MAX)) {
			config_print(why, len, "'%s' has a bad column number %s",
				     text, item);
			return -EINVAL;
		}
		if (!*end) {
			break;
		}
		p = end + 1;
	}
	return 0;
}

bool config_check_plugin_name(const char *name, size_t n)
{
	size_t i;

	if (n < 1 || n >= CONFIG_NAME_MAX) {
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!(islower((unsigned char)name[i]) ||
		      isdigit((unsigned char)name[i]) ||
		      name[i] == '_' || name[i] == '-')) {
			return false;
		}
	}
	return true;
}

int config_check_plugin(const char *text, const union config_value *v,
			char *why, size_t len)
{
	(void)v;
	/* the name becomes part of a file name: keep it tame */
	if (!config_check_plugin_name(text, strlen(text))) {
		config_print(why, len, "'%s' is not a valid plugin name", text);
		return -EINVAL;
	}
	return 0;
}

int config_check_pow2(const char *text, const union config_value *v,
			     char *why, size_t len)
{
	(void)text;
	/* the rings index with a mask */
	if (v->i <= 0 || (v->i & (v->i - 1))) {
		config_print(why, len, "%lld is not a power of two", v->i);
		return -EINVAL;
	}
	return 0;
}

int config_check_endpoint(const char *text, const union config_value *v,
			  char *why, size_t len)
{
	static const char *const schemes[] = { "tcp://", "ipc://", "inproc://" };
	size_t i, n;

	(void)v;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i]);
		if (!strncmp(text, schemes[i], n) && text[n]) {
			return 0;
		}
	}
	config_print(why, len, "'%s' is not a valid endpoint", text);
	return -EINVAL;
}

int config_check_edf_id(const char *text, const union config_value *v,
			char *why, size_t len)
{
	const char *p;

	(void)v;
	/* EDF+ header subfields are separated by spaces: one word of ASCII */
	for (p = text; *p; p++) {
		if (*p <= ' ' || *p > '~') {
			config_print(why, len, "'%s' is not one word of printable ASCII", text);
			return -EINVAL;
		}
	}
	if (p == text) {
		config_print(why, len, "an empty id");
		return -EINVAL;
	}
	return 0;
}

int config_check_edf_admincode(const char *text, const union config_value *v,
			       char *why, size_t len)
{
	int ret = config_check_edf_id(text, v, why, len);

	if (ret == 0 && strlen(text) > CONFIG_EDF_ADMINCODE_MAX) {
		config_print(why, len, "'%s' has %zu characters; the EDF+ header's recording "
			     "identification (80 characters) has room for %d", text, strlen(text),
			     CONFIG_EDF_ADMINCODE_MAX);
		return -EINVAL;
	}
	return ret;
}

int config_check_file_name(const char *text, const union config_value *v,
			   char *why, size_t len)
{
	(void)v;
	/* a name, not a path: the directory is record.directory */
	if (!text[0] || strchr(text, '/')) {
		config_print(why, len, "'%s' is not a file name", text);
		return -EINVAL;
	}
	return 0;
}

/* The zone must exist and read: a day's end depends on it. */
int config_check_zone(const char *text, const union config_value *v,
		      char *why, size_t len)
{
	struct zone *z = NULL;
	int ret;

	(void)v;
	ret = zone_load(text, &z, why, len);
	zone_free(z);
	return ret < 0 ? -EINVAL : 0;
}

int config_check_control_endpoint(const char *text, const union config_value *v,
				  char *why, size_t len)
{
	const char *colon, *p;

	(void)v;
	if (!strncmp(text, "ipc://", 6) && text[6]) {
		return 0;
	}
	if (!strncmp(text, "tcp://", 6)) {
		colon = strrchr(text + 6, ':');
		if (colon && colon > text + 6 && colon[1]) {
			for (p = colon + 1; *p && (isdigit((unsigned char)*p) || !strcmp(p, "*")); p++) {
				;
			}
			if (!*p) {
				return 0;
			}
		}
	}
	config_print(why, len, "'%s' is not a valid control endpoint", text);
	return -EINVAL;
}
