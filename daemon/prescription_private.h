/* SPDX-License-Identifier: MIT */
/*
 * The prescription's inner parts, shared by its files and by nothing else:
 *
 *   prescription.c         the file (libinih), the rules between keys,
 *                          what is derived and reported, the [stim] keys
 *   prescription_key.c     the key table (struct config_key, offsets into
 *                          struct prescription), the nerves and muscles
 *   prescription_preset.c  the presets: protocols trials used
 */
#ifndef RPMSD_PRESCRIPTION_PRIVATE_H
#define RPMSD_PRESCRIPTION_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config_private.h"
#include "prescription.h"

/* prescription_key.c */

extern const struct config_key prescription_key_table[];
extern const size_t prescription_key_count;
extern const char *const prescription_key_sections[];
extern const size_t prescription_key_n_sections;
extern const struct config_enum prescription_key_patterns[];
extern const struct config_enum prescription_key_kinds[];
extern const struct config_enum prescription_key_sides[];
/* The built-in names, NULL-terminated. */
extern const char *const prescription_key_nerves[];
extern const char *const prescription_key_muscles[];

/* The table's entry for section.key, or NULL. */
const struct config_key *prescription_key_find(const char *section, const char *key);
/* The keys of @section, "a, b, c", for a message. */
void prescription_key_section_keys(const char *section, char *buf, size_t len);
/* Whether @name is in @list (a checked comma-separated list) or @names (NULL-ended). */
bool prescription_key_in_list(const char *list, const char *name);
bool prescription_key_in_names(const char *const *names, const char *name);

/* prescription_preset.c */

struct prescription_preset {
	const char *name;
	enum prescription_pattern pattern;
	double rate_hz;
	double on_ms;
	double off_ms;
	int pulses;
	int train_pulses;
	int theta_burst_pulses;
	double theta_frequency_hz;
	double theta_period_ms;
	int theta_bursts;
};

/* The preset called @name, or NULL. */
const struct prescription_preset *prescription_preset_find(const char *name);

#endif /* RPMSD_PRESCRIPTION_PRIVATE_H */
