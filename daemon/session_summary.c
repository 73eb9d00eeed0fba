/* SPDX-License-Identifier: MIT */
/*
 * The end of a session: the summary a person reads (what was detected,
 * fired, refused, recorded, and the timing of a live run) and the exit
 * status.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "acquire.h"
#include "config.h"
#include "detect.h"
#include "blind.h"
#include "plugin.h"
#include "publish.h"
#include "record.h"
#include "safety.h"
#include "sclock.h"
#include "session_private.h"
#include "source.h"
#include "stim.h"

/*
 * Delivery verification (coil ABI 1.2 pulse_info): the trigger-to-confirm
 * latencies in the plugin wrapper's fixed bins, counted on the stim thread;
 * a quantile is given as the bin that holds it.
 */
static void session_summary_confirm(struct session *s, FILE *f)
{
	struct plugin_confirm_stats cs;
	uint64_t seen = 0, want50, want95;
	double lo, hi, q50lo = 0, q50hi = 0, q95lo = 0, q95hi = 0;
	unsigned i, n = 0;

	if (!s->plugin) {
		return;
	}
	plugin_confirm_stats(s->plugin, &cs);
	if (blind_sham_coil(s->blind)) {
		/* both coils as one: which one fired must not show here either */
		struct plugin_confirm_stats sh;

		plugin_confirm_stats(blind_sham_coil(s->blind), &sh);
		cs.supported = cs.supported || sh.supported;
		cs.confirmed += sh.confirmed;
		cs.unconfirmed += sh.unconfirmed;
		cs.didt += sh.didt;
		cs.max_ns = sh.max_ns > cs.max_ns ? sh.max_ns : cs.max_ns;
		for (i = 0; i < PLUGIN_CONFIRM_BINS; i++) {
			cs.bins[i] += sh.bins[i];
		}
	}
	if (!cs.supported || cs.confirmed + cs.unconfirmed == 0) {
		return;
	}
	fprintf(f, "  pulse confirm:   %" PRIu64 " confirmed, %" PRIu64 " unconfirmed",
		cs.confirmed, cs.unconfirmed);
	if (cs.confirmed) {
		want50 = (cs.confirmed + 1) / 2;
		want95 = (cs.confirmed * 95 + 99) / 100;
		for (i = 0; i < PLUGIN_CONFIRM_BINS; i++) {
			if (!cs.bins[i]) {
				continue;
			}
			plugin_confirm_bin(i, &lo, &hi);
			if (seen < want50 && seen + cs.bins[i] >= want50) {
				q50lo = lo;
				q50hi = hi;
			}
			if (seen < want95 && seen + cs.bins[i] >= want95) {
				q95lo = lo;
				q95hi = hi;
			}
			seen += cs.bins[i];
		}
		fprintf(f, "; trigger -> confirm p50 %g-%g us, p95 %g-%g us, max %.1f us",
			q50lo, q50hi, q95lo, q95hi, cs.max_ns / 1e3);
	}
	fprintf(f, "\n");
	for (i = 0; i < PLUGIN_CONFIRM_BINS; i++) {
		if (!cs.bins[i]) {
			continue;
		}
		plugin_confirm_bin(i, &lo, &hi);
		/* four bins a line: "150-160 us: 4" */
		fprintf(f, "%s", n == 0 ? "    histogram:    " : n % 4 == 0 ? ",\n                  "
									: ",");
		if (isinf(hi)) {
			fprintf(f, " %g+ us: %" PRIu64, lo, cs.bins[i]);
		} else {
			fprintf(f, " %g-%g us: %" PRIu64, lo, hi, cs.bins[i]);
		}
		n++;
	}
	if (n) {
		fprintf(f, "\n");
	}
	if (cs.didt) {
		fprintf(f, "  device di/dt:    %" PRIu64 " pulses read back (on rpms.stim didt)\n",
			cs.didt);
	}
}

static void session_summary_pct_line(FILE *f, const char *label, const char *what,
				     const struct acquire_pct *p, const char *unit)
{
	fprintf(f, "  %-16s %s p50 %.1f us, p99 %.1f us, max %.1f us (%" PRIu64 " %s",
		label, what, p->p50_ns / 1e3, p->p99_ns / 1e3, p->max_ns / 1e3, p->count, unit);
	if (p->kept < p->count) {
		fprintf(f, ", percentiles of the last %zu", p->kept);
	}
	fprintf(f, ")\n");
}

/*
 * Timing of a live or paced run, from the acquire thread's own records:
 * how long after a block arrives its stimulation request is posted.
 */
static void session_summary_timing(struct session *s, FILE *f)
{
	struct acquire_pct blk, req, gap;

	if (acquire_latency(s->acq, ACQUIRE_LAT_BLOCK, &blk) < 0 ||
	    acquire_latency(s->acq, ACQUIRE_LAT_REQUEST, &req) < 0 ||
	    acquire_latency(s->acq, ACQUIRE_LAT_INTERVAL, &gap) < 0) {
		return;
	}
	if (blk.count) {
		session_summary_pct_line(f, "block latency:", "arrival -> processed", &blk,
					 "blocks");
	}
	if (req.count) {
		session_summary_pct_line(f, "request latency:", "arrival -> posted", &req,
					 "requests");
	}
	if (gap.count) {
		fprintf(f, "  block period:    %.1f us nominal (%d frames at %g Hz)\n",
			s->cfg->source.block_frames * 1e6 / s->src->rate_hz,
			s->cfg->source.block_frames, s->src->rate_hz);
		session_summary_pct_line(f, "block arrivals:", "every", &gap, "intervals");
	}
}

/* Why a channel never calibrated, for the summary: the right words per source. */
static const char *session_summary_uncalibrated_why(const struct session *s, int signo)
{
	if (s->src->gaps) {
		return "gaps in the stream restarted the rest window each time";
	}
	if (s->cfg->source.type != CONFIG_SOURCE_IIO) {
		return signo ? "stopped before the rest window was complete"
			     : "the recording ended first";
	}
	return "the session stopped before the rest window was complete";
}

void session_summary_print(struct session *s, FILE *f, int signo)
{
	struct acquire_stats as;
	struct stim_stats ss;
	struct publish_stats ps;
	uint64_t onsets = 0, offsets = 0, dropped = 0;
	unsigned ch, r;

	acquire_get_stats(s->acq, &as);
	stim_get_stats(s->stim, &ss);
	publish_stats(s->pub, &ps);
	for (ch = 0; ch < s->src->channels; ch++) {
		onsets += as.onsets[ch];
		offsets += as.offsets[ch];
	}
	for (r = 0; r < SAFETY_RULE_COUNT; r++) {
		dropped += ss.dropped_by_rule[r];
	}
	fprintf(f, "\nrpmsd session summary\n");
	fprintf(f, "  recording:       %s\n", s->src->description);
	fprintf(f, "  processed:       %" PRIu64 " samples (%.2f s)%s\n", as.samples,
		(double)as.samples / s->src->rate_hz,
		as.ended ? ", to the end" : signo ? ", stopped by a signal" : ", stopped early");
	fprintf(f, "  calibration:     rest window %.1f-%.1f s\n", s->cfg->detect.calibration_start_s,
		s->cfg->detect.calibration_start_s + s->cfg->detect.calibration_s);
	for (ch = 0; ch < s->src->channels; ch++) {
		if (as.calibrated[ch]) {
			char why[160];

			fprintf(f, "    %-8s baseline %.4g, onset above %.4g, offset below %.4g\n",
				s->src->channel_names[ch], as.baseline[ch], as.on_threshold[ch],
				as.off_threshold[ch]);
			if (as.cal_issues[ch]) {
				detect_cal_describe(as.cal_issues[ch], as.cal_artefacts[ch],
						    as.cal_unsteady_s[ch], as.baseline[ch], why,
						    sizeof(why));
				fprintf(f, "    %-8s IN DOUBT: %s (recalibrate at rest: rpmsctl calibrate)\n",
					"", why);
			}
		} else {
			fprintf(f, "    %-8s not calibrated (%s)\n", s->src->channel_names[ch],
				session_summary_uncalibrated_why(s, signo));
		}
	}
	if (as.source_error) {
		fprintf(f, "  source error:    %s\n", strerror(-as.source_error));
	}
	if (as.source_faults) {
		fprintf(f, "  source faults:   %" PRIu64 " read failures, %" PRIu64 " reopens\n",
			as.source_faults, s->reopen.reopens);
	}
	if (s->src->gaps) {
		fprintf(f, "  gaps:            %" PRIu64 " in the stream, %" PRIu64 " samples missing (%.3f s)\n",
			s->src->gaps, s->src->lost, (double)s->src->lost / s->src->rate_hz);
	}
	fprintf(f, "  bursts detected: %" PRIu64 " (onsets), %" PRIu64 " ended (offsets)\n",
		onsets, offsets);
	if (s->cfg->stim.mode == CONFIG_MODE_OPEN_LOOP) {
		fprintf(f, "    open loop: the protocol ran from each arm; bursts started nothing\n");
	} else {
		fprintf(f, "    started stimulation %" PRIu64 ", ignored in refractory time %" PRIu64
			   ", ignored with a request pending %" PRIu64 "\n",
			as.requested, as.refractory, as.busy);
	}
	/*
	 * Trains that began (a first pulse fired), whole or cut short: not
	 * requests, of which open loop makes one more after each refusal.
	 */
	fprintf(f, "  pulses fired:    %" PRIu64 " in %" PRIu64 " trains: %" PRIu64 " whole, %" PRIu64
		   " cut short\n", ss.pulses, ss.trains_started, ss.trains_whole,
		ss.trains_started - ss.trains_whole);
	fprintf(f, "  pulses refused:  %" PRIu64 " not delivered (%" PRIu64 " refusals)\n",
		dropped, ss.refusals);
	for (r = 1; r < SAFETY_RULE_COUNT; r++) {
		if (ss.refused_by_rule[r] || ss.dropped_by_rule[r]) {
			fprintf(f, "    %-20s %" PRIu64 " refusals, %" PRIu64 " pulses not delivered\n",
				safety_rule_name(r), ss.refused_by_rule[r], ss.dropped_by_rule[r]);
		}
	}
	if (ss.summaries) {
		/* so that the rpms.safety events add up to the figures above */
		fprintf(f, "    on rpms.safety:  %" PRIu64 " one by one, %" PRIu64
			   " repeats in %" PRIu64 " summaries\n",
			ss.refusals_single, ss.refusals_summarised, ss.summaries);
	}
	if (ss.faults) {
		fprintf(f, "  coil faults:     %" PRIu64 " (coil disarmed)\n", ss.faults);
	}
	if (ss.estops) {
		fprintf(f, "  emergency stops: %" PRIu64 "\n", ss.estops);
	}
	if (s->ledger.dose) {
		fprintf(f, "  pulses today:    %" PRIu64 " (ledger %s/dose%s)\n",
			stim_day_pulses(s->stim), s->ledger.dir,
			s->ledger.failed ? ", a write failed" : "");
	} else {
		fprintf(f, "  pulses today:    unknown: the pulse ledger was unusable, arming refused\n");
	}
	if (ss.dropped_at_stop) {
		fprintf(f, "  not delivered:   %" PRIu64 " pulses pending at shutdown\n",
			ss.dropped_at_stop);
	}
	session_summary_confirm(s, f);
	fprintf(f, "  events:          %" PRIu64 " published, %" PRIu64 " lost in rings\n",
		ps.sent, ps.ring_drops);
	if (s->rec) {
		struct record_stats rs;

		record_get_stats(s->rec, &rs);
		fprintf(f, "  session file:    %s: %" PRIu64 " data records, %" PRIu64
			   " annotations, %" PRIu64 " samples lost, %" PRIu64 " clipped, %" PRIu64
			   " events missing%s%s\n",
			rs.path[0] ? rs.path : "(none)", rs.records, rs.annotations, rs.lost,
			rs.clipped, rs.events_lost, rs.error ? ", write error: " : "",
			rs.error ? strerror(-rs.error) : "");
	}
	if (!sclock_is_virtual(s->clock)) {
		session_summary_timing(s, f);
	}
	fflush(f);
}

int session_summary_status(struct session *s)
{
	struct acquire_stats as;
	struct stim_stats ss;
	int status;

	acquire_get_stats(s->acq, &as);
	stim_get_stats(s->stim, &ss);
	status = (as.source_error || as.source_faults || ss.faults || !s->ledger.dose ||
		  s->ledger.failed) ? 3 : 0;
	if (s->rec) {
		struct record_stats rs;

		record_get_stats(s->rec, &rs);
		status = rs.error ? 3 : status;	/* the session's record is incomplete */
	}
	return status;
}
