/* SPDX-License-Identifier: MIT */
/*
 * Presets: protocols trials used, by name. Their sources are in
 * docs/prescriptions.md. A preset only fills in [protocol]; it is held to
 * the same rules and safety checks as a protocol written out.
 */
#include <stddef.h>
#include <string.h>

#include "prescription.h"
#include "prescription_private.h"

static const struct prescription_preset prescription_preset_table[] = {
	{
		/* intermittent theta burst (Huang 2005), as El Nahas 2022 applied peripherally */
		.name = "itbs",
		.pattern = PRESCRIPTION_THETA_BURST,
		.theta_burst_pulses = 3, .theta_frequency_hz = 50, .theta_period_ms = 200,
		.theta_bursts = 10, .off_ms = 8000, .pulses = 600,
	}, {
		/* the review's on/off example, 1200 pulses a session as in NCT04265365 */
		.name = "onoff_25hz",
		.pattern = PRESCRIPTION_ON_OFF,
		.rate_hz = 25, .on_ms = 1000, .off_ms = 2000, .pulses = 1200,
	}, {
		/* low frequency, continuous: the bottom of the trials' 1-30 Hz */
		.name = "continuous_1hz",
		.pattern = PRESCRIPTION_CONTINUOUS,
		.rate_hz = 1, .pulses = 1200,
	},
};

#define PRESCRIPTION_PRESET_COUNT \
	(sizeof(prescription_preset_table) / sizeof(prescription_preset_table[0]))

const struct prescription_preset *prescription_preset_find(const char *name)
{
	size_t i;

	for (i = 0; i < PRESCRIPTION_PRESET_COUNT; i++) {
		if (!strcmp(prescription_preset_table[i].name, name)) {
			return &prescription_preset_table[i];
		}
	}
	return NULL;
}

const char *prescription_preset_nth(size_t i)
{
	return i < PRESCRIPTION_PRESET_COUNT ? prescription_preset_table[i].name : NULL;
}
