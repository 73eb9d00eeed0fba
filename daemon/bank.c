/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank.h"
#include "config.h"
#include "dsp.h"

/* Artefact blanks waiting or running at once (more are merged into the last). */
#define BANK_BLANKS 16

/* Samples [from, until) are blanked. */
struct bank_window {
	uint64_t from;
	uint64_t until;
};

struct bank {
	unsigned channels;
	struct dsp_chain *dsp[BANK_MAX_CHANNELS];
	struct detect *det[BANK_MAX_CHANNELS];
	float held[BANK_MAX_CHANNELS];	/* last raw value before a blank */
	uint64_t rejected[BANK_MAX_CHANNELS];	/* dsp_chain_rejected, last seen */
	int active[BANK_MAX_CHANNELS];	/* each channel's own burst state */
	unsigned n_active;
	int combined;			/* the burst the rule makes */
	enum config_channel_rule rule;
	unsigned only;			/* the channel of CONFIG_CHANNEL_NAMED */
	uint64_t blank_samples;
	uint64_t blank_run;	/* samples of the blank going on, or just ended */
	/*
	 * Blanks in sample order, disjoint: a pulse's blank can start in a
	 * later block than the one in which the acquire thread learns of it,
	 * and several pulses can fall between two blocks.
	 */
	struct bank_window blanks[BANK_BLANKS];
	unsigned n_blanks;
	bool blank_started;		/* the detectors were told of blanks[0] */
	uint64_t settle_samples;
	double limit;			/* dsp.limit: x the rest level */
	bank_trace_fn trace;
	void *trace_ctx;
	bank_emit_fn own;		/* every channel's own edges (bank_set_own_edges) */
	void *own_ctx;
	struct bank_tally tally;	/* for outcome assessments */
	/* the tally's windows: an unclipped chain per channel, the window being summed */
	struct dsp_chain *wide[BANK_MAX_CHANNELS];
	double win_sumsq[BANK_MAX_CHANNELS];
	uint64_t win_len, win_n, win_clean;
};

/* Report one sample of one channel to the trace callback. */
static void bank_trace_sample(struct bank *b, uint64_t sample, unsigned ch, float raw,
			      float filtered, float env)
{
	struct bank_trace t = {
		.sample = sample, .channel = ch, .raw = raw, .filtered = filtered,
		.envelope = env, .sustained = detect_sustained_last(b->det[ch]),
		.on_threshold = NAN, .off_threshold = NAN,
	};
	struct detect_result r;

	if (detect_thresholds(b->det[ch], &r) == 0) {
		t.on_threshold = r.threshold;
		t.off_threshold = r.off_threshold;
	}
	b->trace(b->trace_ctx, &t);
}

int bank_create(const struct rpmsd_config *cfg, double fs, unsigned channels,
		const char (*names)[BANK_NAME_MAX], struct bank **out, char *err,
		size_t errlen)
{
	struct bank *b;
	unsigned ch;
	int ret;

	if (channels == 0 || channels > BANK_MAX_CHANNELS) {
		snprintf(err, errlen, "%u channels (allowed: 1 to %d)", channels,
			 BANK_MAX_CHANNELS);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->channels = channels;
	b->rule = cfg->detect.channel_rule;
	if (b->rule == CONFIG_CHANNEL_NAMED) {
		for (ch = 0; ch < channels; ch++) {
			if (names && !strcmp(names[ch], cfg->detect.channel)) {
				break;
			}
		}
		if (ch == channels) {
			snprintf(err, errlen,
				 "detect.channel_rule: no channel '%s' in the source (channels: ",
				 cfg->detect.channel);
			for (ch = 0; ch < channels && names; ch++) {
				size_t used = strlen(err);

				snprintf(err + used, errlen > used ? errlen - used : 0, "%s%s",
					 ch ? ", " : "", names[ch]);
			}
			if (strlen(err) + 2 < errlen) {
				strcat(err, ")");
			}
			ret = -EINVAL;
			goto err_free;
		}
		b->only = ch;
	}
	for (ch = 0; ch < channels; ch++) {
		ret = dsp_chain_create(cfg, fs, &b->dsp[ch], err, errlen);
		if (ret < 0) {
			goto err_free;
		}
		ret = detect_create(cfg, fs, &b->det[ch], err, errlen);
		if (ret < 0) {
			goto err_free;
		}
		ret = dsp_chain_create(cfg, fs, &b->wide[ch], err, errlen);
		if (ret < 0) {
			goto err_free;
		}
		/* a limit no EMG reaches: never clipped, and never guarded as in calibration */
		dsp_chain_set_limit(b->wide[ch], 1e30);
	}
	b->win_len = (uint64_t)llround(BANK_TALLY_WINDOW_S * fs);
	b->win_len = b->win_len ? b->win_len : 1;
	b->limit = cfg->dsp.limit;
	b->blank_samples = (uint64_t)llround(cfg->detect.blanking_ms * fs / 1000.0);
	/* The envelope window plus two periods of the high-pass corner. */
	b->settle_samples = (uint64_t)llround((cfg->dsp.envelope_ms / 1000.0 +
					       2.0 / cfg->dsp.highpass_hz) * fs);
	*out = b;
	return 0;

err_free:
	bank_destroy(b);
	return ret;
}

void bank_destroy(struct bank *b)
{
	unsigned ch;

	if (!b) {
		return;
	}
	for (ch = 0; ch < BANK_MAX_CHANNELS; ch++) {
		detect_destroy(b->det[ch]);
		dsp_chain_destroy(b->dsp[ch]);
		dsp_chain_destroy(b->wide[ch]);
	}
	free(b);
}

/*
 * One channel's onset or offset, through the channel rule. @return true
 * when it starts or ends the combined burst (then it is reported).
 */
static int bank_rule(struct bank *b, unsigned ch, enum detect_edge edge)
{
	int was = b->combined;

	if (edge == DETECT_ONSET && !b->active[ch]) {
		b->active[ch] = 1;
		b->n_active++;
	} else if (edge == DETECT_OFFSET && b->active[ch]) {
		b->active[ch] = 0;
		b->n_active--;
	}
	switch (b->rule) {
	case CONFIG_CHANNEL_ALL:
		b->combined = b->n_active == b->channels;
		break;
	case CONFIG_CHANNEL_NAMED:
		b->combined = b->active[b->only];
		break;
	default:
		b->combined = b->n_active > 0;
		break;
	}
	return b->combined != was;
}

/* Tell the detectors of the blank that starts (or grew) at blanks[0]. */
static void bank_blank_detectors(struct bank *b)
{
	unsigned ch;

	for (ch = 0; ch < b->channels; ch++) {
		detect_blank(b->det[ch], b->blanks[0].from,
			     b->blanks[0].until - b->blanks[0].from);
	}
	b->blank_started = true;
}

/* Whether @sample is blanked; blanks are started and retired as samples pass. */
static int bank_blanked(struct bank *b, uint64_t sample)
{
	while (b->n_blanks && sample >= b->blanks[0].until) {
		memmove(&b->blanks[0], &b->blanks[1], --b->n_blanks * sizeof(b->blanks[0]));
		b->blank_started = false;
	}
	if (!b->n_blanks || sample < b->blanks[0].from) {
		return 0;
	}
	if (!b->blank_started) {
		bank_blank_detectors(b);
	}
	return 1;
}

/* A whole window is summed: its RMS per channel into the tally's ring. */
static void bank_window_close(struct bank *b)
{
	float *rms = b->tally.win_rms[b->tally.windows % BANK_TALLY_WINDOWS];

	for (unsigned ch = 0; ch < b->channels; ch++) {
		rms[ch] = b->win_clean ? (float)sqrt(b->win_sumsq[ch] / (double)b->win_clean) :
			  NAN;
		b->win_sumsq[ch] = 0;
	}
	b->tally.windows++;
	b->win_n = 0;
	b->win_clean = 0;
}

void bank_process(struct bank *b, const float *buf, size_t frames, uint64_t first,
		  bank_emit_fn emit, void *ctx)
{
	unsigned nch = b->channels, ch;
	struct bank_event ev;
	enum detect_edge edge;
	size_t i;

	for (i = 0; i < frames; i++) {
		uint64_t sample = first + i;
		int blanked = bank_blanked(b, sample);

		if (blanked) {
			b->blank_run++;
		} else if (b->blank_run) {
			/* A long blank (a train's): the mains canceller takes
			 * up the hum again after it, which the detectors must
			 * not take for a burst. */
			for (ch = 0; ch < nch; ch++) {
				detect_blank(b->det[ch], sample,
					     dsp_chain_rejoin(b->dsp[ch], b->blank_run));
			}
			b->blank_run = 0;
		}

		b->tally.samples++;
		b->tally.blanked += blanked ? 1 : 0;
		for (ch = 0; ch < nch; ch++) {
			float x = buf[i * nch + ch];
			float env, filtered;

			/*
			 * Through the blank the chain holds its level (and
			 * the mains canceller its estimate): the stimulation
			 * artefact never enters the filters, so they do not
			 * ring with it after the blank ends. The trace shows
			 * the last clean value.
			 */
			if (blanked) {
				x = b->held[ch];
				env = dsp_chain_hold(b->dsp[ch], &filtered);
			} else {
				b->held[ch] = x;
				env = dsp_chain_step(b->dsp[ch], x, &filtered);
			}
			if (dsp_chain_rejected(b->dsp[ch]) != b->rejected[ch]) {
				/* The calibration guard replaced this sample. */
				b->rejected[ch] = dsp_chain_rejected(b->dsp[ch]);
				detect_note_artefact(b->det[ch], sample);
			}
			edge = detect_step(b->det[ch], sample, env, &ev.r);
			/* the channel's own state, before the rule: per-muscle outcomes */
			if (!blanked) {
				float wide;

				b->tally.sumsq[ch] += (double)filtered * filtered;
				dsp_chain_step(b->wide[ch], x, &wide);
				b->win_sumsq[ch] += (double)wide * wide;
			} else {
				dsp_chain_hold(b->wide[ch], NULL);
			}
			b->tally.active[ch] += detect_active(b->det[ch]) ? 1 : 0;
			/*
			 * Time active runs between the dated edges, not the
			 * decisions (which come on_ms / off_ms later): what the
			 * decision skipped or overran is put right when it is made.
			 */
			if (edge == DETECT_ONSET) {
				b->tally.onsets[ch]++;
				b->tally.active[ch] += sample - ev.r.edge_sample;
			} else if (edge == DETECT_OFFSET) {
				uint64_t over = sample - ev.r.edge_sample;

				b->tally.active[ch] -= over < b->tally.active[ch] ? over :
						       b->tally.active[ch];
			}
			if (b->trace) {
				bank_trace_sample(b, sample, ch, x, filtered, env);
			}
			if (edge == DETECT_NONE) {
				continue;
			}
			if (b->own && edge != DETECT_CALIBRATED) {
				ev.edge = edge;
				ev.channel = ch;
				ev.sample = sample;
				b->own(b->own_ctx, &ev);
			}
			if (edge == DETECT_CALIBRATED) {
				/*
				 * Spikes are measured against this channel's rest,
				 * hum included: the limit must never clip the mains
				 * hum the notches are there to remove.
				 */
				double rest = dsp_chain_excursion(b->dsp[ch]);

				rest = rest > ev.r.baseline ? rest : ev.r.baseline;
				dsp_chain_set_limit(b->dsp[ch], b->limit * rest);
			} else if (!bank_rule(b, ch, edge)) {
				continue;
			}
			ev.edge = edge;
			ev.channel = ch;
			ev.sample = sample;
			emit(ctx, &ev);
		}
		b->win_clean += blanked ? 0 : 1;
		if (++b->win_n == b->win_len) {
			bank_window_close(b);
		}
	}
}

void bank_get_tally(const struct bank *b, struct bank_tally *out)
{
	*out = b->tally;
}

void bank_blank(struct bank *b, uint64_t from)
{
	uint64_t until = from + b->blank_samples;
	struct bank_window *last;

	if (b->blank_samples == 0) {
		return;
	}
	if (until < from) {
		until = UINT64_MAX;
	}
	last = b->n_blanks ? &b->blanks[b->n_blanks - 1] : NULL;
	/*
	 * Pulses come in order and the blanks of a train overlap or touch:
	 * one window. A later one that does not touch waits its turn; with
	 * no slot left it is merged into the last (a longer blank, never a
	 * missing one).
	 */
	if (last && (from <= last->until || b->n_blanks == BANK_BLANKS)) {
		if (from < last->from) {
			last->from = from;
		}
		if (until > last->until) {
			last->until = until;
		}
		if (last == &b->blanks[0] && b->blank_started) {
			bank_blank_detectors(b);	/* it grew while running */
		}
		return;
	}
	b->blanks[b->n_blanks++] = (struct bank_window){ .from = from, .until = until };
}

void bank_gap(struct bank *b, uint64_t from, uint64_t lost)
{
	unsigned ch;

	for (ch = 0; ch < b->channels; ch++) {
		dsp_chain_resync(b->dsp[ch], lost);
		detect_gap(b->det[ch], from, lost,
			   b->settle_samples + dsp_chain_rejoin(b->dsp[ch], lost));
	}
}

void bank_recalibrate(struct bank *b, uint64_t from)
{
	unsigned ch;

	for (ch = 0; ch < b->channels; ch++) {
		dsp_chain_set_limit(b->dsp[ch], 0.0);
		detect_recalibrate(b->det[ch], from);
		b->active[ch] = 0;
	}
	b->n_active = 0;
	b->combined = 0;
}

void bank_set_trace(struct bank *b, bank_trace_fn fn, void *ctx)
{
	b->trace = fn;
	b->trace_ctx = ctx;
}

void bank_set_own_edges(struct bank *b, bank_emit_fn fn, void *ctx)
{
	b->own = fn;
	b->own_ctx = ctx;
}
