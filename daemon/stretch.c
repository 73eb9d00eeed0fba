/* SPDX-License-Identifier: MIT */
/*
 * Passive stretches in a joint-angle signal (stretch.h).
 *
 * The movement is found on a smoothed velocity (a 2nd-order Butterworth
 * low-pass of the angle, differenced): a goniometer's noise, differenced
 * at 1 kHz, is far louder than any stretch. The smoother delays the
 * velocity by its group delay, which is taken off the start and the end.
 * The angle and the velocity at an onset come from the raw angle history,
 * centred on the onset (no delay): the mean angle over +-2 ms, and the
 * slope of a least-squares line through +-STRETCH_SLOPE_MS (a
 * Savitzky-Golay first derivative: with 0.2 degrees of noise at 1 kHz its
 * error is about 2 degrees/s, where a two-point difference's is 6).
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "ring.h"
#include "stretch.h"

#define STRETCH_HANDOFF 32	/* stretches waiting for the control thread */
#define STRETCH_MEAN_MS 2.0	/* the angle at a sample: the mean over +-this */

enum stretch_slot_state {
	STRETCH_FREE = 0,
	STRETCH_MOVING,		/* the movement goes on */
	STRETCH_SETTLING,	/* ended: waiting for late onset decisions */
};

struct stretch_slot {
	enum stretch_slot_state state;
	uint64_t publish_at;		/* SETTLING: handed on once the angle reaches it */
	bool unresolved[SOURCE_MAX_CHANNELS];	/* an onset whose angle is not read yet */
	struct stretch_rec rec;
};

struct stretch {
	unsigned channels;
	double rate_hz;
	float *hist;			/* the raw angle, sample k at hist[k % hist_len] */
	uint64_t hist_len;
	uint64_t hist_from;		/* first sample of the history (after a gap) */
	uint64_t next;			/* the sample stretch_angle expects next */
	bool primed;			/* the smoother has a first sample */
	struct dsp_biquad smooth;	/* the velocity's smoother, on the angle */
	double smoothed;		/* its last output, degrees */
	uint64_t delay;			/* the smoother's group delay, samples */
	uint64_t end_len, guard, settle, half_slope, half_mean;
	int moving;			/* slot of the movement under way, or -1 */
	bool moving_untracked;		/* a movement under way without a free slot */
	bool below;
	uint64_t below_since;
	bool active[SOURCE_MAX_CHANNELS];	/* each channel's own burst state */
	struct stretch_slot slot[STRETCH_PENDING];
	struct ring *out;
	_Atomic uint64_t dropped;
};

int stretch_create(unsigned channels, double rate_hz, struct stretch **out)
{
	struct stretch *s;
	int ret;

	*out = NULL;
	if (channels == 0 || channels > SOURCE_MAX_CHANNELS || !(rate_hz > 0.0) ||
	    STRETCH_SMOOTH_HZ >= rate_hz / 2.0) {
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		return -ENOMEM;
	}
	s->channels = channels;
	s->rate_hz = rate_hz;
	s->hist_len = (uint64_t)ceil(STRETCH_HISTORY_S * rate_hz);
	s->hist = calloc(s->hist_len, sizeof(float));
	if (!s->hist) {
		ret = -ENOMEM;
		goto err_free;
	}
	/* touched now, not on the real-time thread's first pass */
	memset(s->hist, 0, s->hist_len * sizeof(float));
	ret = ring_create(STRETCH_HANDOFF, sizeof(struct stretch_rec), &s->out);
	if (ret < 0) {
		goto err_hist;
	}
	/* Q = 1/sqrt(2): a 2nd-order Butterworth (the dsp chain's own section) */
	ret = dsp_biquad_lowpass(&s->smooth, rate_hz, STRETCH_SMOOTH_HZ, M_SQRT1_2);
	if (ret < 0) {
		goto err_ring;
	}
	/* its group delay at low frequencies: sqrt(2) / (2 pi fc) */
	s->delay = (uint64_t)llround(M_SQRT2 / (2.0 * M_PI * STRETCH_SMOOTH_HZ) * rate_hz);
	s->end_len = (uint64_t)llround(STRETCH_END_MS * rate_hz / 1000.0);
	s->guard = (uint64_t)llround(STRETCH_GUARD_S * rate_hz);
	s->settle = (uint64_t)llround(STRETCH_SETTLE_S * rate_hz);
	s->half_slope = (uint64_t)llround(STRETCH_SLOPE_MS * rate_hz / 1000.0);
	s->half_mean = (uint64_t)llround(STRETCH_MEAN_MS * rate_hz / 1000.0);
	s->half_slope = s->half_slope ? s->half_slope : 1;
	s->moving = -1;
	atomic_init(&s->dropped, 0);
	*out = s;
	return 0;

err_ring:
	ring_destroy(s->out);
err_hist:
	free(s->hist);
err_free:
	free(s);
	return ret;
}

void stretch_destroy(struct stretch *s)
{
	if (!s) {
		return;
	}
	ring_destroy(s->out);
	free(s->hist);
	free(s);
}

/* The oldest sample the history still holds. */
static uint64_t stretch_oldest(const struct stretch *s)
{
	uint64_t oldest = s->next > s->hist_len ? s->next - s->hist_len : 0;

	return oldest > s->hist_from ? oldest : s->hist_from;
}

/* The mean raw angle over samples @a .. @b, clamped to the history. */
static float stretch_mean(const struct stretch *s, uint64_t a, uint64_t b)
{
	uint64_t oldest = stretch_oldest(s);
	double sum = 0;

	a = a < oldest ? oldest : a;
	b = b >= s->next ? s->next - 1 : b;
	b = b < a ? a : b;
	for (uint64_t k = a; k <= b; k++) {
		sum += s->hist[k % s->hist_len];
	}
	return (float)(sum / (double)(b - a + 1));
}

/* The angle at sample @k: the mean over +-STRETCH_MEAN_MS. */
static float stretch_angle_at(const struct stretch *s, uint64_t k)
{
	return stretch_mean(s, k > s->half_mean ? k - s->half_mean : 0, k + s->half_mean);
}

/* The least-squares slope of the angle over samples @a .. @b, degrees/s. */
static double stretch_slope(const struct stretch *s, uint64_t a, uint64_t b)
{
	double mid = ((double)a + (double)b) / 2.0, sxy = 0, sxx = 0;

	for (uint64_t k = a; k <= b; k++) {
		double t = (double)k - mid;

		sxy += t * s->hist[k % s->hist_len];
		sxx += t * t;
	}
	return sxx > 0 ? sxy / sxx * s->rate_hz : 0.0;
}

/* Read the angle and velocity at @slot's onsets once the history has them. */
static void stretch_resolve(struct stretch *s, struct stretch_slot *slot)
{
	uint64_t oldest = stretch_oldest(s);

	for (unsigned ch = 0; ch < s->channels; ch++) {
		uint64_t o = slot->rec.onset[ch], lo, hi;

		if (!slot->unresolved[ch] || o + s->half_slope + s->half_mean >= s->next) {
			continue;
		}
		lo = o > s->half_slope ? o - s->half_slope : 0;
		lo = lo < oldest ? oldest : lo;
		hi = o + s->half_slope;
		slot->rec.onset_deg[ch] = stretch_angle_at(s, o);
		slot->rec.onset_dps[ch] = (float)((double)slot->rec.dir * stretch_slope(s, lo, hi));
		slot->unresolved[ch] = false;
	}
}

/* A settled stretch with every onset read goes to the control thread. */
static void stretch_publish(struct stretch *s)
{
	for (int i = 0; i < STRETCH_PENDING; i++) {
		struct stretch_slot *slot = &s->slot[i];
		bool ready = true;

		if (slot->state == STRETCH_FREE) {
			continue;
		}
		stretch_resolve(s, slot);
		if (slot->state != STRETCH_SETTLING || s->next <= slot->publish_at) {
			continue;
		}
		for (unsigned ch = 0; ch < s->channels; ch++) {
			ready = ready && !slot->unresolved[ch];
		}
		if (!ready) {
			continue;
		}
		ring_push(s->out, &slot->rec);	/* full: counted by the ring */
		slot->state = STRETCH_FREE;
	}
}

/* The smoothed velocity crossed the start level at @t: a movement begins. */
static void stretch_begin(struct stretch *s, uint64_t t, double v)
{
	uint64_t start = t > s->delay ? t - s->delay : 0;
	struct stretch_rec *r;
	int i;

	s->below = false;
	for (i = 0; i < STRETCH_PENDING && s->slot[i].state != STRETCH_FREE; i++) {
	}
	if (i == STRETCH_PENDING) {
		/* every slot settling: too many stretches too close together */
		atomic_fetch_add(&s->dropped, 1);
		s->moving_untracked = true;
		return;
	}
	start = start < s->hist_from ? s->hist_from : start;
	memset(&s->slot[i], 0, sizeof(s->slot[i]));
	s->slot[i].state = STRETCH_MOVING;
	r = &s->slot[i].rec;
	r->start = start;
	r->dir = v > 0 ? 1 : -1;
	r->start_deg = stretch_angle_at(s, start);
	for (unsigned ch = 0; ch < s->channels; ch++) {
		r->emg[ch] = s->active[ch] ? STRETCH_NOT_AT_REST : STRETCH_NO_ONSET;
	}
	s->moving = i;
}

/* The velocity stayed below the end level since below_since: it is over. */
static void stretch_finish(struct stretch *s, uint64_t t)
{
	struct stretch_slot *slot = &s->slot[s->moving];
	uint64_t end = s->below_since > s->delay ? s->below_since - s->delay : 0;

	end = end < slot->rec.start ? slot->rec.start : end;
	slot->rec.end = end;
	slot->rec.end_deg = stretch_angle_at(s, end);
	s->moving = -1;
	if (fabsf(slot->rec.end_deg - slot->rec.start_deg) < (float)STRETCH_MIN_DEG) {
		slot->state = STRETCH_FREE;	/* a wobble, not a stretch */
		return;
	}
	slot->rec.mean_dps = fabsf(slot->rec.end_deg - slot->rec.start_deg) *
			     (float)s->rate_hz / (float)(end - slot->rec.start + 1);
	slot->state = STRETCH_SETTLING;
	slot->publish_at = t + s->settle;
}

void stretch_angle(struct stretch *s, const float *deg, size_t n, uint64_t first)
{
	if (first != s->next) {
		/* the caller skipped samples without saying so: treat as a gap */
		stretch_gap(s, first);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t t = first + i;
		double y, v;

		s->hist[t % s->hist_len] = deg[i];
		s->next = t + 1;
		if (!s->primed) {
			/* at rest at the first angle: no start-up step taken for a movement */
			dsp_biquad_prime(&s->smooth, deg[i]);
			s->smoothed = deg[i];
			s->primed = true;
		}
		y = dsp_biquad_step(&s->smooth, deg[i]);
		v = (y - s->smoothed) * s->rate_hz;
		s->smoothed = y;
		if (s->moving < 0 && !s->moving_untracked) {
			if (fabs(v) > STRETCH_START_DPS) {
				stretch_begin(s, t, v);
			}
			continue;
		}
		if (s->moving >= 0) {
			v *= (double)s->slot[s->moving].rec.dir;
		} else {
			v = fabs(v);
		}
		if (v >= STRETCH_END_DPS) {
			s->below = false;
			continue;
		}
		if (!s->below) {
			s->below = true;
			s->below_since = t;
		} else if (t - s->below_since >= s->end_len) {
			s->below = false;
			if (s->moving >= 0) {
				stretch_finish(s, t);
			}
			s->moving_untracked = false;
		}
	}
	stretch_publish(s);
}

void stretch_edge(struct stretch *s, unsigned ch, bool onset, uint64_t dated)
{
	if (ch >= s->channels) {
		return;
	}
	s->active[ch] = onset;
	if (!onset) {
		return;
	}
	for (int i = 0; i < STRETCH_PENDING; i++) {
		struct stretch_slot *slot = &s->slot[i];
		uint64_t lo, hi;

		if (slot->state == STRETCH_FREE || slot->rec.emg[ch] != STRETCH_NO_ONSET) {
			continue;
		}
		lo = slot->rec.start > s->guard ? slot->rec.start - s->guard : 0;
		hi = slot->state == STRETCH_MOVING ? UINT64_MAX : slot->rec.end;
		if (dated < lo) {
			/* a burst that began before the stretch and was decided in it */
			slot->rec.emg[ch] = STRETCH_NOT_AT_REST;
		} else if (dated <= hi) {
			slot->rec.emg[ch] = STRETCH_ONSET;
			slot->rec.onset[ch] = dated;
			slot->unresolved[ch] = true;
		}
	}
}

void stretch_gap(struct stretch *s, uint64_t first)
{
	for (int i = 0; i < STRETCH_PENDING; i++) {
		if (s->slot[i].state != STRETCH_FREE) {
			atomic_fetch_add(&s->dropped, 1);
			s->slot[i].state = STRETCH_FREE;
		}
	}
	s->moving = -1;
	/* the joint may be moving already: the next stretch starts from rest */
	s->moving_untracked = true;
	s->below = false;
	s->primed = false;
	s->hist_from = first;
	s->next = first;
	memset(s->active, 0, sizeof(s->active));
}

bool stretch_take(struct stretch *s, struct stretch_rec *out)
{
	return ring_pop(s->out, out);
}

uint64_t stretch_dropped(const struct stretch *s)
{
	return atomic_load(&s->dropped) + ring_dropped(s->out);
}
