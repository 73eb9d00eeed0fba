/* SPDX-License-Identifier: MIT */
/*
 * The rules between keys, run once a file is read (config_load) or
 * overrides are in (config_recheck): a source needs its file or device, the
 * control socket and the event stream beyond this host need CURVE, the
 * band-pass, the detector's thresholds, and the protocol against the safety
 * limits and the gate.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "config_private.h"
#include "policy.h"
#include "safety.h"

bool config_rule_band(double highpass_hz, double lowpass_hz)
{
	return highpass_hz < lowpass_hz;
}

bool config_rule_hysteresis(double k_off, double k_on)
{
	return k_off < k_on;
}

/* Line where section.key was set, 0 if it kept its default. */
static int config_rule_line(const struct config_ctx *ctx, const struct config_key *k)
{
	return ctx->key_line[k - config_key_table];
}

/* Line of @a if set in the file, else of @b, else 0. */
static int config_rule_pair_line(const struct config_ctx *ctx,
				 const struct config_key *a, const struct config_key *b)
{
	int line = config_rule_line(ctx, a);

	return line ? line : config_rule_line(ctx, b);
}

/*
 * Check that stim.@stim_key does not exceed safety.@max_key; both may be
 * int or double.
 */
static int config_rule_limit(struct config_ctx *ctx, const char *stim_key,
			     const char *max_key)
{
	const struct config_key *s = config_key_find("stim", stim_key);
	const struct config_key *m = config_key_find("safety", max_key);
	double sv, mv;

	if (s->type == CONFIG_TYPE_INT) {
		sv = *(int *)config_key_field(&ctx->cfg, s);
		mv = *(int *)config_key_field(&ctx->cfg, m);
	} else {
		sv = *(double *)config_key_field(&ctx->cfg, s);
		mv = *(double *)config_key_field(&ctx->cfg, m);
	}
	if (sv <= mv) {
		return 0;
	}
	config_fail(ctx, config_rule_pair_line(ctx, s, m),
		    "stim.%s: %.15g exceeds safety.%s = %.15g (allowed: %.15g to %.15g%s%s)",
		    stim_key, sv, max_key, mv, s->min, mv,
		    s->unit[0] ? " " : "", s->unit);
	return -EINVAL;
}

/* The key that sets the pulses of a train, per protocol. */
static const char *const config_rule_pulses_key[] = {
	[CONFIG_PROTOCOL_SINGLE] = "protocol",
	[CONFIG_PROTOCOL_TRAIN] = "train_pulses",
	[CONFIG_PROTOCOL_ONOFF] = "on_ms",
	[CONFIG_PROTOCOL_THETA] = "theta_bursts",
};

/* Line of stim.@k if set, else of safety.@l, for a message about both. */
static int config_rule_stim_line(const struct config_ctx *ctx, const char *k, const char *l)
{
	return config_rule_pair_line(ctx, config_key_find("stim", k), config_key_find("safety", l));
}

/* Smallest whole-ns interval the gate's max_frequency rule admits at @max_hz. */
static int64_t config_rule_min_interval_ns(double max_hz)
{
	int64_t i = (int64_t)ceil(1e9 / max_hz) - 1;

	/* the same test as safety_check_frequency, so the edge is exact */
	while (i > 0 && ((double)(i - 1) + 1.0) * max_hz >= 1e9) {
		i--;
	}
	while (((double)i + 1.0) * max_hz < 1e9) {
		i++;
	}
	return i < 0 ? 0 : i;
}

/* @ms rounded up to whole µs, then up again until llround(ms * 1e6) >= @ns. */
static double config_rule_ms_at_least(int64_t ns)
{
	double ms = ceil((double)ns / 1e3) / 1e3;

	while (llround(ms * 1e6) < ns) {
		ms += 1e-3;
	}
	return ms;
}

/* The gap (ns) a pulse needs after the one before under @rule, and what it is called. */
static int64_t config_rule_gap_needed(const struct rpmsd_config *cfg,
				      const struct safety_limits *lim, enum safety_rule rule,
				      char *what, size_t len)
{
	int64_t need;

	if (rule == SAFETY_TRAIN_INTERVAL) {
		config_print(what, len, "safety.min_train_interval_ms = %.15g ms",
			     cfg->safety.min_train_interval_ms);
		return lim->min_train_interval_ns;
	}
	need = config_rule_min_interval_ns(lim->max_frequency_hz);
	config_print(what, len, "the %.6g ms (one period) of safety.max_frequency_hz = %.15g Hz",
		     (double)need / 1e6, lim->max_frequency_hz);
	return need;
}

/*
 * stim.off_ms a cycle needs so that its last pulse is @need_ns before the
 * next train's first: the cycle is llround((on + off) x 1e9) ns long.
 */
static double config_rule_off_for_cycle(const struct config_train_shape *sh,
					const struct policy_protocol *pp, int64_t need_ns)
{
	int64_t last = stim_request_offset_ns(&pp->proto, pp->proto.pulses - 1);
	double off = config_rule_ms_at_least(last + need_ns - llround(sh->on_s * 1e9));

	if (off < 0.0) {
		return 0.0;
	}
	while (llround((sh->on_s + off * 1e-3) * 1e9) - last < need_ns) {
		off += 1e-3;
	}
	return off;
}

/* Describe the first pulse of the protocol the gate would refuse (policy_check). */
static void config_rule_protocol_refused(struct config_ctx *ctx,
					 const struct config_train_shape *sh,
					 const struct policy_protocol *pp,
					 const struct safety_limits *lim,
					 const struct policy_refusal *ref)
{
	const struct rpmsd_config *cfg = &ctx->cfg;
	const char *name = config_key_protocols[cfg->stim.protocol].name;
	const struct safety_verdict *v = &ref->verdict;
	int64_t need, last, off_ns;
	char what[160];
	double level;
	int line;

	switch (v->rule) {
	case SAFETY_MAX_FREQUENCY:
	case SAFETY_TRAIN_INTERVAL:
		need = config_rule_gap_needed(cfg, lim, v->rule, what, sizeof(what));
		if (ref->at == POLICY_AT_NEXT_BURST) {
			last = stim_request_offset_ns(&pp->proto, pp->proto.burst_pulses - 1);
			line = config_rule_stim_line(ctx, "theta_period_ms", "max_frequency_hz");
			if (ref->interval_ns < 0) {
				config_fail(ctx, line,
					    "stim.theta_period_ms: %.15g ms is shorter than a burst (%u pulses at %.15g Hz span %.6g ms): the next burst would start %.6g ms before its last pulse, and the gap must be at least %s (allowed: %.15g ms or more)",
					    cfg->stim.theta_period_ms, sh->burst_pulses, sh->rate_hz,
					    (double)last / 1e6, (double)-ref->interval_ns / 1e6, what,
					    config_rule_ms_at_least(last + need));
			} else {
				config_fail(ctx, line,
					    "stim.theta_period_ms: %.15g ms leaves %.6g ms from the last pulse of a burst (%u pulse%s at %.15g Hz) to the first of the next, less than %s (allowed: %.15g ms or more)",
					    cfg->stim.theta_period_ms, (double)ref->interval_ns / 1e6,
					    sh->burst_pulses, sh->burst_pulses == 1 ? "" : "s",
					    sh->rate_hz, what,
					    config_rule_ms_at_least(last + need));
			}
			return;
		}
		if (ref->at == POLICY_AT_NEXT_TRAIN) {
			config_fail(ctx, config_rule_stim_line(ctx, "off_ms", v->rule == SAFETY_TRAIN_INTERVAL
							  ? "min_train_interval_ms" : "max_frequency_hz"),
				    "stim.off_ms: %.15g ms leaves %.6g ms from the last pulse of a train to the first of the next (a train starts every %.6g ms: its %.6g ms on-period, then off_ms), less than %s (allowed: %.15g ms or more)",
				    cfg->stim.off_ms, (double)ref->interval_ns / 1e6,
				    (double)pp->proto.cycle_period_ns / 1e6, sh->on_s * 1e3, what,
				    config_rule_off_for_cycle(sh, pp, need));
			return;
		}
		if (ref->at == POLICY_AT_REPEAT) {
			off_ns = need - (ref->interval_ns - pp->off_ns);
			config_fail(ctx, config_rule_stim_line(ctx, "off_ms", v->rule == SAFETY_TRAIN_INTERVAL
							  ? "min_train_interval_ms" : "max_frequency_hz"),
				    "stim.off_ms: %.15g ms: in open loop, a request cut short by a refusal is followed by the rest off_ms after the refused pulse, which can be %.6g ms after the last pulse delivered, less than %s (allowed: %.15g ms or more)",
				    cfg->stim.off_ms, (double)ref->interval_ns / 1e6, what,
				    config_rule_ms_at_least(off_ns > 0 ? off_ns : 0));
			return;
		}
		break;
	case SAFETY_TRAIN_PULSES:
		config_fail(ctx, config_rule_stim_line(ctx, config_rule_pulses_key[cfg->stim.protocol],
						  "max_train_pulses"),
			    "stim.protocol = %s: %u pulses per train exceed safety.max_train_pulses = %d",
			    name, sh->pulses, cfg->safety.max_train_pulses);
		return;
	case SAFETY_TRAIN_DURATION:
		level = cfg->stim.intensity_pct / cfg->safety.motor_threshold_pct * 100.0;
		if (fabs(ref->rate_hz - sh->rate_hz) <= sh->rate_hz * 1e-6) {
			config_fail(ctx, config_rule_stim_line(ctx, "intensity_pct", "train_table"),
				    "stim.protocol = %s: a train of %u pulses at %.15g Hz lasts %.4g s, longer than the %.4g s that safety.train_table allows at %.15g Hz and %.4g %% of motor threshold (stim.intensity_pct %.15g %% / safety.motor_threshold_pct %.15g %%)%s",
				    name, sh->pulses, sh->rate_hz, (double)sh->pulses / sh->rate_hz,
				    v->limit, sh->rate_hz, level, cfg->stim.intensity_pct,
				    cfg->safety.motor_threshold_pct,
				    v->limit == 0.0 ? " (outside the table: no rate or intensity that high is listed)" : "");
			return;
		}
		config_fail(ctx, config_rule_stim_line(ctx, "intensity_pct", "train_table"),
			    "stim.protocol = %s: the pulses of a train come at %.6g Hz, not the %.15g Hz it is declared at (%u pulses in %.6g s): at that rate its first %u pulses last %.4g s, longer than the %.4g s that safety.train_table allows at %.6g Hz and %.4g %% of motor threshold (stim.intensity_pct %.15g %% / safety.motor_threshold_pct %.15g %%)%s",
			    name, ref->rate_hz, sh->rate_hz, ref->index + 1,
			    (double)stim_request_offset_ns(&pp->proto, ref->index) / 1e9,
			    ref->index + 1, v->value, v->limit, ref->rate_hz, level,
			    cfg->stim.intensity_pct, cfg->safety.motor_threshold_pct,
			    v->limit == 0.0 ? " (outside the table: no rate or intensity that high is listed)" : "");
		return;
	case SAFETY_SESSION_PULSES:
		if (cfg->stim.mode == CONFIG_MODE_OPEN_LOOP) {
			config_fail(ctx, config_rule_stim_line(ctx, "open_loop_pulses", "max_session_pulses"),
				    "stim.open_loop_pulses: %d exceeds safety.max_session_pulses = %d",
				    cfg->stim.open_loop_pulses, cfg->safety.max_session_pulses);
			return;
		}
		config_fail(ctx, config_rule_stim_line(ctx, "cycles", "max_session_pulses"),
			    "stim.cycles: one burst onset asks for %llu pulses (%u trains of %u), more than safety.max_session_pulses = %d allows in a whole session",
			    (unsigned long long)sh->cycles * sh->pulses, sh->cycles, sh->pulses,
			    cfg->safety.max_session_pulses);
		return;
	case SAFETY_INTENSITY:
		(void)config_rule_limit(ctx, "intensity_pct", "max_intensity_pct");
		return;
	default:
		break;
	}
	config_fail(ctx, config_rule_stim_line(ctx, "protocol", "max_frequency_hz"),
		    "stim.protocol = %s: the safety gate would refuse pulse %u of train %u (rule %s: %.6g, limit %.6g)",
		    name, ref->index + 1, ref->train + 1, safety_rule_name(v->rule), v->value,
		    v->limit);
}

/*
 * The protocol must be able to pass the gate at all: a protocol the gate
 * would refuse is a configuration error found before any patient is
 * connected, not a refusal event found during a session. The decision is
 * policy_check's: the policy's own requests, pulse by pulse, through the
 * gate itself (same rules, same arithmetic, same tolerances). What is
 * reported is the plainest true reason: a declared rate or train length
 * above its cap first, then the first pulse the gate would refuse.
 */
static int config_rule_protocol(struct config_ctx *ctx)
{
	const struct rpmsd_config *cfg = &ctx->cfg;
	struct config_train_shape sh;
	struct policy_protocol pp;
	struct policy_refusal ref;
	struct safety_limits lim;
	bool open_loop = cfg->stim.mode == CONFIG_MODE_OPEN_LOOP;
	uint64_t reach;

	if (cfg->safety.max_session_pulses > cfg->safety.max_daily_pulses) {
		config_fail(ctx, config_rule_pair_line(ctx, config_key_find("safety", "max_session_pulses"),
						  config_key_find("safety", "max_daily_pulses")),
			    "safety.max_session_pulses: %d exceeds safety.max_daily_pulses = %d",
			    cfg->safety.max_session_pulses, cfg->safety.max_daily_pulses);
		return -EINVAL;
	}
	config_train_shape(cfg, &sh);
	policy_protocol_from_config(cfg, &pp);
	safety_limits_from_config(cfg, &lim);
	if (policy_check(&pp, open_loop, (uint64_t)cfg->stim.open_loop_pulses, &lim, &ref)) {
		return 0;
	}
	if (ref.burst_rate) {
		(void)config_rule_limit(ctx, cfg->stim.protocol == CONFIG_PROTOCOL_THETA
					 ? "theta_frequency_hz" : "train_frequency_hz",
					 "max_frequency_hz");
		if (ctx->ini.failed) {
			return -EINVAL;
		}
	}
	reach = sh.pulses;
	if (open_loop && (uint64_t)cfg->stim.open_loop_pulses < reach) {
		reach = (uint64_t)cfg->stim.open_loop_pulses;
	}
	if (cfg->stim.protocol == CONFIG_PROTOCOL_TRAIN &&
	    reach > (uint64_t)cfg->safety.max_train_pulses &&
	    config_rule_limit(ctx, "train_pulses", "max_train_pulses") < 0) {
		return -EINVAL;
	}
	if (sh.rate_hz > 0.0 && !(cfg->safety.motor_threshold_pct > 0.0)) {
		config_fail(ctx, config_rule_stim_line(ctx, "protocol", "motor_threshold_pct"),
			    "safety.motor_threshold_pct: not set, and stim.protocol = %s fires trains: the longest train allowed (safety.train_table) depends on the intensity in %% of the patient's motor threshold (allowed: the threshold measured this session, 1 to 100 %%)",
			    config_key_protocols[cfg->stim.protocol].name);
		return -EINVAL;
	}
	config_rule_protocol_refused(ctx, &sh, &pp, &lim, &ref);
	return -EINVAL;
}

/* Load safety.train_table now, so that a bad table is a config error. */
static int config_rule_table(struct config_ctx *ctx)
{
	struct rpmsd_config *cfg = &ctx->cfg;
	char path[CONFIG_PATH_MAX], why[CONFIG_ERR_MAX];
	int line = config_rule_line(ctx, config_key_find("safety", "train_table"));

	if (ctx->flags & CONFIG_CHECK_TABLE_IN_FORCE) {
		/*
		 * A run-time change ("set", SIGHUP) is held to the table the gate
		 * loaded at start, whatever the file says now; and reading a
		 * file here could block the control thread.
		 */
		return 0;
	}
	if (!cfg->safety.train_table_file[0]) {
		train_table_default(&cfg->safety.train_table);
		return 0;
	}
	if (config_resolve(cfg, cfg->safety.train_table_file, path, sizeof(path)) < 0) {
		config_fail(ctx, line, "safety.train_table: path too long");
		return -EINVAL;
	}
	if (train_table_load(path, &cfg->safety.train_table, why, sizeof(why)) < 0) {
		config_fail(ctx, line, "safety.train_table: %s", why);
		return -EINVAL;
	}
	return 0;
}

/*
 * Whether an endpoint can only be reached from this host: ipc, inproc, or
 * tcp on a loopback address. Anything else (a wildcard, an interface, a
 * host name) counts as exposed.
 */
static bool config_rule_endpoint_local(const char *ep)
{
	static const char *const local[] = { "localhost", "::1", "lo" };
	const char *host, *colon;
	size_t n, i;

	if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) {
		return true;
	}
	if (strncmp(ep, "tcp://", 6)) {
		return false;
	}
	host = ep + 6;
	colon = strrchr(host, ':');
	n = colon ? (size_t)(colon - host) : strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		if (strlen(local[i]) == n && !strncmp(host, local[i], n)) {
			return true;
		}
	}
	/* 127.0.0.0/8, written as a dotted quad */
	if (n < 4 || strncmp(host, "127.", 4)) {
		return false;
	}
	for (i = 4; i < n; i++) {
		if (!isdigit((unsigned char)host[i]) && host[i] != '.') {
			return false;
		}
	}
	return true;
}

/*
 * The control socket arms the coil: reachable from beyond this host it
 * must encrypt and authenticate (CURVE, with an allowlist of clients).
 */
static int config_rule_control(struct config_ctx *ctx)
{
	const struct rpmsd_config *cfg = &ctx->cfg;
	bool curve = cfg->control.curve_server_secret_file[0] != '\0';
	bool keys = cfg->control.curve_allowed_keys[0] != '\0';

	if (curve && !keys) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("control", "curve_server_secret_file")),
			    "control.curve_allowed_keys: missing (required with control.curve_server_secret_file: without an allowlist every client key would be let in)");
		return -EINVAL;
	}
	if (keys && !curve) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("control", "curve_allowed_keys")),
			    "control.curve_allowed_keys: set without control.curve_server_secret_file (allowed: both, or neither)");
		return -EINVAL;
	}
	if (!curve && !config_rule_endpoint_local(cfg->control.endpoint)) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("control", "endpoint")),
			    "control.endpoint: '%s' can be reached from other hosts, and whoever reaches it can arm the coil (allowed without CURVE: ipc://PATH, tcp://127.0.0.1:PORT, tcp://[::1]:PORT, tcp://localhost:PORT; or set control.curve_server_secret_file and control.curve_allowed_keys)",
			    cfg->control.endpoint);
		return -EINVAL;
	}
	return 0;
}

/*
 * The event stream carries patient and session ids and the EMG: reachable
 * from beyond this host it must encrypt and let in only the subscribers
 * listed (CURVE). CURVE needs a handshake, which inproc has not.
 */
static int config_rule_publish(struct config_ctx *ctx)
{
	const struct rpmsd_config *cfg = &ctx->cfg;
	bool curve = cfg->publish.curve_server_secret_file[0] != '\0';
	bool keys = cfg->publish.curve_allowed_keys[0] != '\0';

	if (curve && !keys) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("publish", "curve_server_secret_file")),
			    "publish.curve_allowed_keys: missing (required with publish.curve_server_secret_file: without an allowlist every subscriber key would be let in)");
		return -EINVAL;
	}
	if (keys && !curve) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("publish", "curve_allowed_keys")),
			    "publish.curve_allowed_keys: set without publish.curve_server_secret_file (allowed: both, or neither)");
		return -EINVAL;
	}
	if (curve && !strncmp(cfg->publish.endpoint, "inproc://", 9)) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("publish", "curve_server_secret_file")),
			    "publish.curve_server_secret_file: CURVE cannot guard an inproc endpoint ('%s'; allowed with CURVE: tcp://ADDRESS:PORT or ipc://PATH)",
			    cfg->publish.endpoint);
		return -EINVAL;
	}
	if (!curve && !config_rule_endpoint_local(cfg->publish.endpoint)) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("publish", "endpoint")),
			    "publish.endpoint: '%s' can be reached from other hosts, and the events carry patient and session ids and the EMG (allowed without CURVE: ipc://PATH, tcp://127.0.0.1:PORT, tcp://[::1]:PORT, tcp://localhost:PORT; or set publish.curve_server_secret_file and publish.curve_allowed_keys)",
			    cfg->publish.endpoint);
		return -EINVAL;
	}
	return 0;
}

int config_rule_all(struct config_ctx *ctx)
{
	struct rpmsd_config *cfg = &ctx->cfg;
	const struct config_key *a, *b;

	if (cfg->source.type == CONFIG_SOURCE_REPLAY && !cfg->source.file[0] &&
	    !(ctx->flags & CONFIG_LOAD_INPUT_GIVEN)) {
		config_fail(ctx, 0,
			    "source.file: missing (required when source.type = replay)");
		return -EINVAL;
	}
	if (cfg->source.type == CONFIG_SOURCE_IIO && !cfg->source.device[0]) {
		config_fail(ctx, 0,
			    "source.device: missing (required when source.type = iio)");
		return -EINVAL;
	}
	if (cfg->source.type == CONFIG_SOURCE_IIO && !cfg->source.channels[0]) {
		config_fail(ctx, 0,
			    "source.channels: missing (required when source.type = iio)");
		return -EINVAL;
	}
	/*
	 * A simulated response mixed into a live amplifier's EMG would be a
	 * fake M-wave on a real patient's record: replay only, refused here
	 * so that --check-config says so before anything opens.
	 */
	if (cfg->sim_patient.threshold_pct > 0.0 && cfg->source.type != CONFIG_SOURCE_REPLAY) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("sim_patient", "threshold_pct")),
			    "sim_patient.threshold_pct: a simulated patient is allowed only with "
			    "source.type = replay (never on a live EMG source)");
		return -EINVAL;
	}
	if (config_rule_control(ctx) < 0 || config_rule_publish(ctx) < 0) {
		return -EINVAL;
	}
	if (cfg->plugin_section[0] &&
	    strcmp(cfg->plugin_section, cfg->stim.plugin)) {
		config_fail(ctx, cfg->plugin_section_line,
			    "coil.%s: section for plugin '%s' but stim.plugin is '%s'",
			    cfg->plugin_section, cfg->plugin_section,
			    cfg->stim.plugin);
		return -EINVAL;
	}
	if (cfg->sham_section[0] &&
	    strcmp(cfg->sham_section, config_sham_plugin(cfg))) {
		config_fail(ctx, cfg->sham_section_line,
			    "sham_coil.%s: section for plugin '%s' but the sham coil's plugin "
			    "(blind.sham_plugin, else stim.plugin) is '%s'",
			    cfg->sham_section, cfg->sham_section, config_sham_plugin(cfg));
		return -EINVAL;
	}
	if (cfg->blind.allocation[0] && !cfg->blind.statistician_public_key[0]) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("blind", "allocation")),
			    "blind.statistician_public_key: missing (required with "
			    "blind.allocation: the true arms are sealed to it)");
		return -EINVAL;
	}
	if (cfg->blind.allocation[0] && cfg->daemon.arm_on_start && !cfg->blind.course_id[0]) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("daemon", "arm_on_start")),
			    "daemon.arm_on_start: with blind.allocation, only with blind.course_id "
			    "(the coil is armed only in a session whose course is allocated)");
		return -EINVAL;
	}
	if (cfg->blind.allocation[0] && !cfg->sham_section[0]) {
		config_fail(ctx, config_rule_line(ctx, config_key_find("blind", "allocation")),
			    "blind.allocation: no [sham_coil.%s] section (required with "
			    "blind.sham_method = coil: the sham coil's own output line)",
			    config_sham_plugin(cfg));
		return -EINVAL;
	}
	if (!config_rule_band(cfg->dsp.highpass_hz, cfg->dsp.lowpass_hz)) {
		a = config_key_find("dsp", "lowpass_hz");
		b = config_key_find("dsp", "highpass_hz");
		config_fail(ctx, config_rule_pair_line(ctx, a, b),
			    "dsp.lowpass_hz: %.15g is not above dsp.highpass_hz = %.15g (allowed: above %.15g Hz)",
			    cfg->dsp.lowpass_hz, cfg->dsp.highpass_hz,
			    cfg->dsp.highpass_hz);
		return -EINVAL;
	}
	if (!strcmp(cfg->detect.channel, "any")) {
		cfg->detect.channel_rule = CONFIG_CHANNEL_ANY;
	} else if (!strcmp(cfg->detect.channel, "all")) {
		cfg->detect.channel_rule = CONFIG_CHANNEL_ALL;
	} else {
		cfg->detect.channel_rule = CONFIG_CHANNEL_NAMED;
	}
	if (cfg->source.reopen_ms > cfg->source.reopen_max_ms) {
		a = config_key_find("source", "reopen_max_ms");
		b = config_key_find("source", "reopen_ms");
		config_fail(ctx, config_rule_pair_line(ctx, a, b),
			    "source.reopen_max_ms: %d is below source.reopen_ms = %d (allowed: %d or more)",
			    cfg->source.reopen_max_ms, cfg->source.reopen_ms,
			    cfg->source.reopen_ms);
		return -EINVAL;
	}
	if (!config_rule_hysteresis(cfg->detect.k_off, cfg->detect.k_on)) {
		a = config_key_find("detect", "k_off");
		b = config_key_find("detect", "k_on");
		config_fail(ctx, config_rule_pair_line(ctx, a, b),
			    "detect.k_off: %.15g is not below detect.k_on = %.15g (allowed: below %.15g)",
			    cfg->detect.k_off, cfg->detect.k_on, cfg->detect.k_on);
		return -EINVAL;
	}
	if (config_rule_limit(ctx, "intensity_pct", "max_intensity_pct") < 0) {
		return -EINVAL;
	}
	/* the table first: the protocol is checked against it */
	if (config_rule_table(ctx) < 0) {
		return -EINVAL;
	}
	if (config_rule_protocol(ctx) < 0) {
		return -EINVAL;
	}
	return 0;
}
