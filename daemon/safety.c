/* SPDX-License-Identifier: MIT */
/*
 * Safety gate rules. Each rule is a small pure function over (limits,
 * state, request, now) that either passes or fills the verdict; the table
 * fixes their order. Adding a rule is one function and one table row.
 */
#include <math.h>
#include <stddef.h>

#include "config.h"
#include "safety.h"

typedef bool (*safety_check_fn)(const struct safety_limits *lim,
				const struct safety_state *st,
				const struct safety_request *req, int64_t now_ns,
				struct safety_verdict *v);

struct safety_rule_desc {
	enum safety_rule rule;
	const char *name;
	const char *unit;
	safety_check_fn check;	/* true = passes */
};

/* Pulse number of @req in its train, counting this one. */
static uint32_t safety_train_index(const struct safety_state *st,
				   const struct safety_request *req)
{
	return (st->any_pulse && st->train_id == req->train_id) ? st->train_pulses + 1 : 1;
}

static bool safety_check_estop(const struct safety_limits *lim,
			       const struct safety_state *st,
			       const struct safety_request *req, int64_t now_ns,
			       struct safety_verdict *v)
{
	(void)lim;
	(void)st;
	(void)now_ns;
	if (!req->have_status) {
		return true;
	}
	v->value = req->coil.estop ? 1.0 : 0.0;
	v->limit = 0.0;
	return !req->coil.estop;
}

static bool safety_check_armed(const struct safety_limits *lim,
			       const struct safety_state *st,
			       const struct safety_request *req, int64_t now_ns,
			       struct safety_verdict *v)
{
	(void)lim;
	(void)req;
	(void)now_ns;
	v->value = st->armed ? 1.0 : 0.0;
	v->limit = 1.0;
	return st->armed;
}

static bool safety_check_acquisition(const struct safety_limits *lim,
				     const struct safety_state *st,
				     const struct safety_request *req, int64_t now_ns,
				     struct safety_verdict *v)
{
	(void)st;
	(void)now_ns;
	/* Stimulating on EMG nobody has seen for a while is flying blind. */
	v->value = req->acq_age_ns == INT64_MAX ? INFINITY : (double)req->acq_age_ns / 1e9;
	v->limit = (double)lim->acq_timeout_ns / 1e9;
	return req->acq_age_ns >= 0 && req->acq_age_ns <= lim->acq_timeout_ns;
}

static bool safety_check_fault(const struct safety_limits *lim,
			       const struct safety_state *st,
			       const struct safety_request *req, int64_t now_ns,
			       struct safety_verdict *v)
{
	(void)lim;
	(void)st;
	(void)now_ns;
	if (!req->have_status) {
		return true;
	}
	v->value = req->coil.fault_code;
	v->limit = 0.0;
	return !req->coil.fault;
}

static bool safety_check_ready(const struct safety_limits *lim,
			       const struct safety_state *st,
			       const struct safety_request *req, int64_t now_ns,
			       struct safety_verdict *v)
{
	(void)lim;
	(void)st;
	(void)now_ns;
	if (!req->have_status) {
		return true;
	}
	v->value = req->coil.ready ? 1.0 : 0.0;
	v->limit = 1.0;
	return req->coil.ready;
}

static bool safety_check_temp(const struct safety_limits *lim,
			      const struct safety_state *st,
			      const struct safety_request *req, int64_t now_ns,
			      struct safety_verdict *v)
{
	(void)st;
	(void)now_ns;
	if (!req->have_status || isnan(req->coil.temperature_c)) {
		/*
		 * A plugin without a sensor reports NAN: nothing to hold it to.
		 * A device that declares a cut-off has a sensor: not knowing its
		 * temperature is not a cold coil.
		 */
		v->value = NAN;
		v->limit = lim->max_coil_temp_c;
		return !(lim->dev.present && lim->dev.cutoff_c > 0.0);
	}
	v->value = req->coil.temperature_c;
	v->limit = lim->max_coil_temp_c;
	/* A sensor reading infinity is broken, not cold. */
	return isfinite(req->coil.temperature_c) &&
	       req->coil.temperature_c < lim->max_coil_temp_c;
}

static bool safety_check_intensity(const struct safety_limits *lim,
				   const struct safety_state *st,
				   const struct safety_request *req, int64_t now_ns,
				   struct safety_verdict *v)
{
	(void)st;
	(void)now_ns;
	v->value = req->intensity_pct;
	v->limit = lim->max_intensity_pct;
	/* NaN compares false: written so that NaN is refused. */
	return req->intensity_pct >= 0.0 && req->intensity_pct <= lim->max_intensity_pct;
}

static bool safety_check_frequency(const struct safety_limits *lim,
				   const struct safety_state *st,
				   const struct safety_request *req, int64_t now_ns,
				   struct safety_verdict *v)
{
	int64_t interval;

	(void)req;
	if (!st->any_pulse) {
		return true;
	}
	interval = now_ns - st->last_pulse_ns;
	v->value = (double)interval / 1e9;
	v->limit = 1.0 / lim->max_frequency_hz;
	/*
	 * Schedules are in whole ns, so a train at exactly the maximum rate
	 * may come out 1 ns short of the period: allow that one ns, nothing
	 * more. A clock that went backwards (interval < 0) is refused.
	 */
	return interval >= 0 && ((double)interval + 1.0) * lim->max_frequency_hz >= 1e9;
}

/* @n + 1, saturated: counts come from files and must not wrap. */
static uint64_t safety_next(uint64_t n)
{
	return n == UINT64_MAX ? n : n + 1;
}

/*
 * The counting rules: the pulse asked for would be number @nth (of a
 * train, a session, a day, or of what the ledger holds); it may not be
 * past @limit. Value and limit are reported as pulse numbers.
 */
static bool safety_count_ok(struct safety_verdict *v, uint64_t nth, uint64_t limit)
{
	v->value = (double)nth;
	v->limit = (double)limit;
	return nth <= limit;
}

static bool safety_check_train_pulses(const struct safety_limits *lim,
				      const struct safety_state *st,
				      const struct safety_request *req, int64_t now_ns,
				      struct safety_verdict *v)
{
	(void)now_ns;
	return safety_count_ok(v, safety_train_index(st, req), lim->max_train_pulses);
}

static bool safety_check_train_duration(const struct safety_limits *lim,
					const struct safety_state *st,
					const struct safety_request *req,
					int64_t now_ns, struct safety_verdict *v)
{
	uint32_t n = safety_train_index(st, req);
	double rate = req->frequency_hz, level;

	/* A single pulse is not a train; NaN or a negative rate falls through and is refused. */
	if (rate == 0.0) {
		return true;
	}
	/*
	 * The table is indexed by the rate the pulses actually come at, never
	 * less than the nominal one: a scheduler that squeezed a train could
	 * not make it look slower than it is.
	 */
	if (n >= 2) {
		int64_t span = now_ns - st->train_first_ns;
		double measured = span > 0 ? (double)(n - 1) * 1e9 / (double)span : INFINITY;

		if (measured > rate) {
			rate = measured;
		}
	}
	level = lim->motor_threshold_pct > 0.0
			? req->intensity_pct / lim->motor_threshold_pct * 100.0
			: INFINITY;
	v->limit = train_table_max_s(&lim->table, rate, level);
	v->value = (double)n / rate;
	/* relative 1e-6: whole-ns schedules of a rate on a grid line stay on it */
	return (double)n <= v->limit * rate * (1.0 + 1e-6);
}

static bool safety_check_session_pulses(const struct safety_limits *lim,
					const struct safety_state *st,
					const struct safety_request *req,
					int64_t now_ns, struct safety_verdict *v)
{
	(void)req;
	(void)now_ns;
	return safety_count_ok(v, safety_next(st->session_pulses), safety_session_max(lim, st));
}

static bool safety_check_daily_pulses(const struct safety_limits *lim,
				      const struct safety_state *st,
				      const struct safety_request *req,
				      int64_t now_ns, struct safety_verdict *v)
{
	(void)req;
	(void)now_ns;
	return safety_count_ok(v, safety_next(st->day_pulses), lim->max_daily_pulses);
}

static bool safety_check_recorded(const struct safety_limits *lim,
				  const struct safety_state *st,
				  const struct safety_request *req, int64_t now_ns,
				  struct safety_verdict *v)
{
	(void)lim;
	(void)req;
	(void)now_ns;
	/*
	 * A pulse is fired only once the ledger on disk already counts it,
	 * so that a crash can make the day's count too high, never too low.
	 */
	return safety_count_ok(v, safety_next(st->day_pulses), st->day_recorded);
}

static bool safety_check_train_interval(const struct safety_limits *lim,
					const struct safety_state *st,
					const struct safety_request *req,
					int64_t now_ns, struct safety_verdict *v)
{
	int64_t gap;

	if (!st->any_pulse || st->train_id == req->train_id) {
		return true;
	}
	gap = now_ns - st->last_pulse_ns;
	v->value = (double)gap / 1e9;
	v->limit = (double)lim->min_train_interval_ns / 1e9;
	return gap >= lim->min_train_interval_ns;
}

static bool safety_check_device_intensity(const struct safety_limits *lim,
					  const struct safety_state *st,
					  const struct safety_request *req, int64_t now_ns,
					  struct safety_verdict *v)
{
	(void)st;
	(void)now_ns;
	if (!lim->dev.present || !lim->dev.confirms) {
		return true;
	}
	/*
	 * The gate's intensity rule guards a number the device never sees
	 * unless the device confirmed it: fire only at the output it read
	 * back. NAN (nothing confirmed yet) compares false: refused.
	 */
	v->value = req->intensity_pct;
	v->limit = req->confirmed_pct;
	return fabs(req->intensity_pct - req->confirmed_pct) <=
	       SAFETY_DEVICE_INTENSITY_TOL + 1e-9;
}

static bool safety_check_device_output(const struct safety_limits *lim,
				       const struct safety_state *st,
				       const struct safety_request *req, int64_t now_ns,
				       struct safety_verdict *v)
{
	(void)st;
	(void)now_ns;
	if (!lim->dev.present) {
		return true;
	}
	v->value = req->intensity_pct;
	v->limit = lim->dev.max_output_pct;
	return req->intensity_pct <= lim->dev.max_output_pct;
}

/* The pulse starts a train other than the last delivered one. */
static bool safety_new_train(const struct safety_state *st, const struct safety_request *req)
{
	return !st->any_pulse || st->train_id != req->train_id;
}

static bool safety_check_device_rate(const struct safety_limits *lim,
				     const struct safety_state *st,
				     const struct safety_request *req, int64_t now_ns,
				     struct safety_verdict *v)
{
	double cap, rate = req->frequency_hz;
	int64_t interval;

	if (!lim->dev.present || lim->dev.n_caps == 0 || req->frequency_hz == 0.0) {
		return true;
	}
	cap = safety_device_rate_cap(&lim->dev, req->intensity_pct);
	v->limit = cap;
	v->value = rate;
	/* the rate the pulses really come at, when faster than declared */
	if (!safety_new_train(st, req)) {
		interval = now_ns - st->last_pulse_ns;
		if (interval <= 0) {
			v->value = INFINITY;
			return false;
		}
		if (1e9 / (double)interval > rate) {
			v->value = 1e9 / (double)interval;
		}
		/* one ns of schedule rounding, as max_frequency allows */
		if (((double)interval + 1.0) * cap < 1e9) {
			return false;
		}
	}
	return rate <= cap * (1.0 + 1e-12);
}

static bool safety_check_device_single(const struct safety_limits *lim,
				       const struct safety_state *st,
				       const struct safety_request *req, int64_t now_ns,
				       struct safety_verdict *v)
{
	int64_t interval;

	if (!lim->dev.present || lim->dev.single_max_hz <= 0.0 || req->frequency_hz != 0.0 ||
	    !st->any_pulse) {
		return true;
	}
	interval = now_ns - st->last_pulse_ns;
	v->value = (double)interval / 1e9;
	v->limit = 1.0 / lim->dev.single_max_hz;
	return interval >= 0 && ((double)interval + 1.0) * lim->dev.single_max_hz >= 1e9;
}

static bool safety_check_device_gap(const struct safety_limits *lim,
				    const struct safety_state *st,
				    const struct safety_request *req, int64_t now_ns,
				    struct safety_verdict *v)
{
	int64_t gap;

	if (!lim->dev.present || lim->dev.min_train_gap_ns <= 0 || !st->any_pulse ||
	    st->train_id == req->train_id) {
		return true;
	}
	gap = now_ns - st->last_pulse_ns;
	v->value = (double)gap / 1e9;
	v->limit = (double)lim->dev.min_train_gap_ns / 1e9;
	return gap + 1 >= lim->dev.min_train_gap_ns;
}

/* The energy model's wait after a train of @n pulses at @f Hz and @j J each, s. */
static double safety_energy_wait_s(const struct safety_device *dev, uint32_t n, double f,
				   double j)
{
	if (f <= 0.0 || n == 0) {
		return 0.0;
	}
	return (double)n * (f * j - dev->power_w) / (dev->power_w * f);
}

static bool safety_check_device_wait(const struct safety_limits *lim,
				     const struct safety_state *st,
				     const struct safety_request *req, int64_t now_ns,
				     struct safety_verdict *v)
{
	double wait;
	int64_t gap;

	(void)req;
	if (!lim->dev.present || lim->dev.n_energy == 0 || !st->any_pulse ||
	    st->train_id == req->train_id) {
		return true;
	}
	wait = safety_energy_wait_s(&lim->dev, st->train_pulses, st->train_rate_hz,
				    safety_device_joules(&lim->dev, st->train_intensity_pct));
	gap = now_ns - st->last_pulse_ns;
	v->value = (double)gap / 1e9;
	v->limit = wait > 0.0 ? wait : 0.0;
	return wait <= 0.0 || ((double)gap + 1.0) >= wait * 1e9;
}

/* Energy of the remembered trains whose last pulse is within the minute before @now_ns. */
static double safety_energy_minute(const struct safety_device *dev,
				   const struct safety_state *st, int64_t now_ns, bool skip_last)
{
	double e = 0.0;
	unsigned i, n = st->trains_n - (skip_last ? 1 : 0);

	for (i = 0; i < n; i++) {
		const struct safety_train_rec *r =
			&st->trains[(st->trains_head + i) % SAFETY_DEVICE_TRAINS];

		if (r->last_ns > now_ns - 60 * (int64_t)1000000000) {
			e += (double)r->pulses * safety_device_joules(dev, r->intensity_pct);
		}
	}
	return e;
}

static bool safety_check_device_energy(const struct safety_limits *lim,
				       const struct safety_state *st,
				       const struct safety_request *req, int64_t now_ns,
				       struct safety_verdict *v)
{
	const struct safety_train_rec *oldest;
	bool same = !safety_new_train(st, req);
	double j;

	if (!lim->dev.present || lim->dev.n_energy == 0) {
		return true;
	}
	j = safety_device_joules(&lim->dev, req->intensity_pct);
	/* MagPy's on-time per minute, 60 P / (f J), is this energy bound times 1 / (f J) */
	v->limit = 60.0 * lim->dev.power_w;
	if (!same && st->trains_n == SAFETY_DEVICE_TRAINS) {
		oldest = &st->trains[st->trains_head];
		if (oldest->last_ns > now_ns - 60 * (int64_t)1000000000) {
			v->value = INFINITY;	/* would have to forget a train in the minute */
			return false;
		}
	}
	v->value = safety_energy_minute(&lim->dev, st, now_ns, same) +
		   (double)safety_train_index(st, req) * j;
	return v->value <= v->limit;
}

static const struct safety_rule_desc safety_rules[] = {
	{ SAFETY_ESTOP, "emergency_stop", "", safety_check_estop },
	{ SAFETY_DISARMED, "disarmed", "", safety_check_armed },
	{ SAFETY_ACQ_STALE, "acquisition_stale", "s", safety_check_acquisition },
	{ SAFETY_COIL_FAULT, "coil_fault", "", safety_check_fault },
	{ SAFETY_NOT_READY, "not_ready", "", safety_check_ready },
	{ SAFETY_COIL_TEMP, "coil_temperature", "C", safety_check_temp },
	{ SAFETY_INTENSITY, "max_intensity", "%", safety_check_intensity },
	{ SAFETY_DEVICE_INTENSITY, "device_intensity", "%", safety_check_device_intensity },
	{ SAFETY_DEVICE_MAX_OUTPUT, "device_max_output", "%", safety_check_device_output },
	{ SAFETY_MAX_FREQUENCY, "max_frequency", "s", safety_check_frequency },
	{ SAFETY_TRAIN_PULSES, "max_train_pulses", "pulses", safety_check_train_pulses },
	{ SAFETY_TRAIN_DURATION, "max_train_duration", "s", safety_check_train_duration },
	{ SAFETY_TRAIN_INTERVAL, "min_train_interval", "s", safety_check_train_interval },
	{ SAFETY_DEVICE_RATE, "device_rate_cap", "Hz", safety_check_device_rate },
	{ SAFETY_DEVICE_SINGLE_RATE, "device_single_pulse_rate", "s", safety_check_device_single },
	{ SAFETY_DEVICE_TRAIN_GAP, "device_train_gap", "s", safety_check_device_gap },
	{ SAFETY_DEVICE_ENERGY_WAIT, "device_energy_wait", "s", safety_check_device_wait },
	{ SAFETY_DEVICE_ENERGY, "device_energy", "J", safety_check_device_energy },
	{ SAFETY_SESSION_PULSES, "max_session_pulses", "pulses", safety_check_session_pulses },
	{ SAFETY_DAILY_PULSES, "max_daily_pulses", "pulses", safety_check_daily_pulses },
	{ SAFETY_UNRECORDED, "pulse_not_recorded", "pulses", safety_check_recorded },
};

_Static_assert(sizeof(safety_rules) / sizeof(safety_rules[0]) == SAFETY_RULE_COUNT - 1,
	       "one table row per rule");

void safety_limits_from_config(const struct rpmsd_config *cfg,
			       struct safety_limits *lim)
{
	lim->max_frequency_hz = cfg->safety.max_frequency_hz;
	lim->max_train_pulses = (uint32_t)cfg->safety.max_train_pulses;
	lim->min_train_interval_ns = llround(cfg->safety.min_train_interval_ms * 1e6);
	lim->max_intensity_pct = cfg->safety.max_intensity_pct;
	lim->max_coil_temp_c = cfg->safety.max_coil_temp_c;
	lim->device_temp_margin_c = cfg->safety.device_temp_margin_c;
	lim->acq_timeout_ns = llround(cfg->safety.acquisition_timeout_ms * 1e6);
	lim->motor_threshold_pct = cfg->safety.motor_threshold_pct;
	lim->table = cfg->safety.train_table;
	lim->max_session_pulses = (uint64_t)cfg->safety.max_session_pulses;
	lim->max_daily_pulses = (uint64_t)cfg->safety.max_daily_pulses;
	/* the device's envelope comes from the open plugin (safety_device_set) */
	lim->dev.present = false;
	lim->dev.confirms = false;
}

uint64_t safety_session_max(const struct safety_limits *lim, const struct safety_state *st)
{
	return st->session_cap && st->session_cap < lim->max_session_pulses ? st->session_cap
									  : lim->max_session_pulses;
}

void safety_init(struct safety_state *st, uint64_t day_pulses)
{
	st->armed = false;
	st->any_pulse = false;
	st->last_pulse_ns = 0;
	st->train_id = 0;
	st->train_pulses = 0;
	st->train_first_ns = 0;
	st->session_pulses = 0;
	st->session_cap = 0;
	st->day_pulses = day_pulses;
	st->day_recorded = day_pulses;
	st->train_rate_hz = 0.0;
	st->train_intensity_pct = 0.0;
	st->trains_head = 0;
	st->trains_n = 0;
}

void safety_prior_pulse(struct safety_state *st, int64_t at_ns)
{
	/* train 0 is no request's: the next pulse starts a new train */
	st->any_pulse = true;
	st->last_pulse_ns = at_ns;
	st->train_id = 0;
	st->train_pulses = 0;
	st->train_first_ns = at_ns;
	st->train_rate_hz = 0.0;
}

void safety_set_recorded(struct safety_state *st, uint64_t recorded, bool new_day)
{
	if (new_day) {
		st->day_pulses = 0;
	}
	st->day_recorded = recorded;
}

struct safety_verdict safety_admit(const struct safety_limits *lim,
				   const struct safety_state *st,
				   const struct safety_request *req, int64_t now_ns)
{
	struct safety_verdict v = { .rule = SAFETY_OK };
	size_t i;

	for (i = 0; i < sizeof(safety_rules) / sizeof(safety_rules[0]); i++) {
		v.value = 0.0;
		v.limit = 0.0;
		if (!safety_rules[i].check(lim, st, req, now_ns, &v)) {
			v.rule = safety_rules[i].rule;
			return v;
		}
	}
	v.value = 0.0;
	v.limit = 0.0;
	return v;
}

struct safety_verdict safety_admit_device(const struct safety_limits *lim,
					  const struct safety_state *st,
					  const struct safety_request *req, int64_t now_ns)
{
	struct safety_verdict v = { .rule = SAFETY_OK };
	size_t i;

	for (i = 0; i < sizeof(safety_rules) / sizeof(safety_rules[0]); i++) {
		enum safety_rule r = safety_rules[i].rule;

		if (r < SAFETY_DEVICE_MAX_OUTPUT || r == SAFETY_SESSION_PULSES ||
		    r == SAFETY_DAILY_PULSES || r == SAFETY_UNRECORDED ||
		    (r > SAFETY_DEVICE_MAX_OUTPUT && r < SAFETY_DEVICE_RATE)) {
			continue;
		}
		v.value = 0.0;
		v.limit = 0.0;
		if (!safety_rules[i].check(lim, st, req, now_ns, &v)) {
			v.rule = r;
			return v;
		}
	}
	v.value = 0.0;
	v.limit = 0.0;
	return v;
}

/* The energy model's memory: a new train's record, or the last one grown. */
static void safety_commit_train(struct safety_state *st, const struct safety_request *req,
				int64_t now_ns, bool same)
{
	struct safety_train_rec *r;

	if (!same || st->trains_n == 0) {
		if (st->trains_n == SAFETY_DEVICE_TRAINS) {
			st->trains_head = (st->trains_head + 1) % SAFETY_DEVICE_TRAINS;
			st->trains_n--;
		}
		r = &st->trains[(st->trains_head + st->trains_n) % SAFETY_DEVICE_TRAINS];
		st->trains_n++;
		r->pulses = 0;
		r->intensity_pct = req->intensity_pct;
	} else {
		r = &st->trains[(st->trains_head + st->trains_n - 1) % SAFETY_DEVICE_TRAINS];
	}
	r->pulses++;
	r->last_ns = now_ns;
}

void safety_commit(struct safety_state *st, const struct safety_request *req,
		   int64_t now_ns)
{
	bool same = st->any_pulse && st->train_id == req->train_id;

	safety_commit_train(st, req, now_ns, same);
	if (same) {
		st->train_pulses++;
	} else {
		st->train_id = req->train_id;
		st->train_pulses = 1;
		st->train_first_ns = now_ns;
		st->train_rate_hz = req->frequency_hz;
		st->train_intensity_pct = req->intensity_pct;
	}
	st->session_pulses = safety_next(st->session_pulses);
	st->day_pulses = safety_next(st->day_pulses);
	st->any_pulse = true;
	st->last_pulse_ns = now_ns;
}

void safety_set_armed(struct safety_state *st, bool armed)
{
	st->armed = armed;
}

static const struct safety_rule_desc *safety_find(unsigned rule)
{
	size_t i;

	for (i = 0; i < sizeof(safety_rules) / sizeof(safety_rules[0]); i++) {
		if ((unsigned)safety_rules[i].rule == rule) {
			return &safety_rules[i];
		}
	}
	return NULL;
}

const char *safety_rule_name(unsigned rule)
{
	const struct safety_rule_desc *d = safety_find(rule);

	if (rule == SAFETY_OK) {
		return "ok";
	}
	return d ? d->name : "unknown";
}

const char *safety_rule_unit(unsigned rule)
{
	const struct safety_rule_desc *d = safety_find(rule);

	return d ? d->unit : "";
}
