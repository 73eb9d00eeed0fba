/* SPDX-License-Identifier: MIT */
/*
 * A simulated patient's evoked EMG in a replay (simemg.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "simemg.h"

struct simemg_wave {
	uint64_t pulse;		/* artefact from here */
	uint64_t onset;		/* M-wave from here */
	unsigned channel;
	double uv;
	double artefact_uv;
	int begun;
};

struct simemg {
	unsigned channels;
	double rate_hz;
	uint64_t wave_len;	/* samples of the M-wave */
	uint64_t art_len;	/* samples of the artefact */
	struct simemg_wave q[SIMEMG_QUEUE];
	size_t n;
	uint64_t dropped;
	uint64_t mixed;
};

int simemg_create(unsigned channels, double rate_hz, struct simemg **out)
{
	struct simemg *m;

	*out = NULL;
	if (channels == 0 || !(rate_hz > 0.0)) {
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		return -ENOMEM;
	}
	m->channels = channels;
	m->rate_hz = rate_hz;
	m->wave_len = (uint64_t)llround(SIMEMG_WAVE_MS * rate_hz / 1000.0);
	m->art_len = (uint64_t)ceil(SIMEMG_ARTEFACT_MS * rate_hz / 1000.0);
	if (m->wave_len < 2) {
		m->wave_len = 2;
	}
	if (m->art_len < 1) {
		m->art_len = 1;
	}
	*out = m;
	return 0;
}

void simemg_destroy(struct simemg *m)
{
	free(m);
}

void simemg_queue(struct simemg *m, uint64_t pulse_sample, unsigned channel, double uv,
		  double latency_us, double artefact_uv)
{
	uint64_t lat = (uint64_t)llround(fmax(latency_us, 0.0) * m->rate_hz / 1e6);

	if (channel >= m->channels || m->n == SIMEMG_QUEUE || !isfinite(uv)) {
		m->dropped++;
		return;
	}
	m->q[m->n++] = (struct simemg_wave){
		.pulse = pulse_sample,
		/* at least a sample after the pulse: the artefact's own sample is not the M-wave's */
		.onset = pulse_sample + (lat ? lat : 1),
		.channel = channel,
		.uv = uv,
		.artefact_uv = artefact_uv,
	};
}

/* Sample @k (from the pulse) of the artefact: a decay alternating in sign. */
static double simemg_artefact(const struct simemg *m, const struct simemg_wave *w, uint64_t k)
{
	double t_ms = (double)k * 1000.0 / m->rate_hz;

	return w->artefact_uv * exp(-t_ms / 0.3) * ((k & 1) ? -0.5 : 1.0);
}

/* Sample @k (from the onset) of the M-wave: one sine period, peaks +-uv/2. */
static double simemg_wave(const struct simemg *m, const struct simemg_wave *w, uint64_t k)
{
	return 0.5 * w->uv * sin(2.0 * M_PI * (double)k / (double)m->wave_len);
}

void simemg_mix(struct simemg *m, float *buf, uint64_t first, size_t frames)
{
	uint64_t end = first + frames, s, from, to;
	size_t i = 0;

	while (i < m->n) {
		struct simemg_wave *w = &m->q[i];
		float *col = buf + w->channel;

		/* artefact: [pulse, pulse + art_len) */
		from = w->pulse > first ? w->pulse : first;
		to = w->pulse + m->art_len < end ? w->pulse + m->art_len : end;
		for (s = from; s < to; s++) {
			col[(s - first) * m->channels] += (float)simemg_artefact(m, w, s - w->pulse);
		}
		/* M-wave: [onset, onset + wave_len) */
		from = w->onset > first ? w->onset : first;
		to = w->onset + m->wave_len < end ? w->onset + m->wave_len : end;
		if (!w->begun && w->onset + m->wave_len <= first) {
			m->dropped++;	/* learnt of after it was over */
		}
		if (from < to && !w->begun) {
			w->begun = 1;
			m->mixed++;
			if (from > w->onset) {
				m->dropped++;	/* learnt of too late: its start is missing */
			}
		}
		for (s = from; s < to; s++) {
			col[(s - first) * m->channels] += (float)simemg_wave(m, w, s - w->onset);
		}
		if (w->onset + m->wave_len <= end) {
			m->q[i] = m->q[--m->n];	/* complete: order does not matter */
		} else {
			i++;
		}
	}
}

uint64_t simemg_dropped(const struct simemg *m)
{
	return m->dropped;
}

uint64_t simemg_mixed(const struct simemg *m)
{
	return m->mixed;
}
