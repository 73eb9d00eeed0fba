/* SPDX-License-Identifier: MIT */
/*
 * A simulated patient's recruitment curve (simpatient.h). The generator is
 * splitmix64, small and well mixed, so a seed gives the same draws on every
 * machine; normal draws by Box-Muller (one of each pair used: simpler than
 * keeping the spare, and the cost does not matter at a pulse per second).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "simpatient.h"

struct simpatient {
	struct simpatient_params prm;
	double i50;		/* output of half the maximum */
	uint64_t state;		/* splitmix64 */
};

static uint64_t simpatient_next(struct simpatient *p)
{
	uint64_t z = (p->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double simpatient_uniform(struct simpatient *p)
{
	return (double)(simpatient_next(p) >> 11) * 0x1.0p-53;
}

int simpatient_create(const struct simpatient_params *prm, struct simpatient **out,
		      char *err, size_t errlen)
{
	struct simpatient *p;

	*out = NULL;
	if (!(prm->threshold_pct > 0.0 && prm->threshold_pct <= 100.0)) {
		snprintf(err, errlen, "threshold_pct: %g is out of range (allowed: above 0, up to 100)",
			 prm->threshold_pct);
		return -EINVAL;
	}
	if (!(prm->slope_pct > 0.0 && prm->slope_pct <= 50.0)) {
		snprintf(err, errlen, "slope_pct: %g is out of range (allowed: above 0, up to 50)",
			 prm->slope_pct);
		return -EINVAL;
	}
	if (!(prm->max_uv > 2.0 * SIMPATIENT_CRITERION_UV && prm->max_uv <= 100000.0)) {
		snprintf(err, errlen, "max_uv: %g is out of range (allowed: above %g, up to 100000)",
			 prm->max_uv, 2.0 * SIMPATIENT_CRITERION_UV);
		return -EINVAL;
	}
	if (!(prm->noise >= 0.0 && prm->noise <= 2.0)) {
		snprintf(err, errlen, "noise: %g is out of range (allowed: 0 to 2)", prm->noise);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->prm = *prm;
	p->i50 = prm->threshold_pct +
		 prm->slope_pct * log(prm->max_uv / SIMPATIENT_CRITERION_UV - 1.0);
	p->state = prm->seed;
	*out = p;
	if (errlen) {
		err[0] = '\0';
	}
	return 0;
}

void simpatient_destroy(struct simpatient *p)
{
	free(p);
}

double simpatient_mean_uv(const struct simpatient *p, double pct)
{
	return p->prm.max_uv / (1.0 + exp(-(pct - p->i50) / p->prm.slope_pct));
}

double simpatient_probability(const struct simpatient *p, double pct, double uv)
{
	double m = simpatient_mean_uv(p, pct);

	if (p->prm.noise == 0.0) {
		return m >= uv ? 1.0 : 0.0;
	}
	/* P(m * exp(noise z) >= uv) = Phi(ln(m / uv) / noise) */
	return 0.5 * erfc(-log(m / uv) / (p->prm.noise * sqrt(2.0)));
}

double simpatient_response_uv(struct simpatient *p, double pct)
{
	double u1, u2, z;

	/* u1 in (0, 1]: the log below never sees 0 */
	u1 = 1.0 - simpatient_uniform(p);
	u2 = simpatient_uniform(p);
	z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
	return simpatient_mean_uv(p, pct) * exp(p->prm.noise * z);
}
