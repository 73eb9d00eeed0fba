/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "plugin.h"
#include "rpmsd-build.h"
#include "safety.h"
#include "sclock.h"

/* pulses whose train and index a late read-back can still be matched to */
#define PLUGIN_FIRED 256

struct plugin {
	void *dl;
	const struct rpmsd_coil_descriptor *desc;
	char path[PATH_MAX];
	struct rpmsd_coil_host host;
	const struct rpmsd_config *cfg;	/* valid between open and unload */
	struct sclock *clock;
	void *handle;			/* the plugin's, after open */
	bool opened;
	struct safety_device dev;	/* its device's envelope, copied at open (ABI 1.2) */
	/*
	 * Alerts from the plugin's own threads: latched bits and the last
	 * code, picked up by the stim thread. The wake word is set before the
	 * stim thread starts; an alert before that is still latched.
	 */
	atomic_uint alerts;		/* 1u << enum rpmsd_coil_alert */
	atomic_int alert_code;
	_Atomic(atomic_uint *) wake_word;
	/*
	 * Delivery verification, stim thread: pulse ops that returned 0 (the
	 * plugin's pulse numbers), which train and index each of the last
	 * PLUGIN_FIRED was, and the latency histogram (written by the stim
	 * thread only, read by the summary: relaxed atomics).
	 */
	uint64_t fired;
	uint32_t fired_train[PLUGIN_FIRED];
	uint32_t fired_index[PLUGIN_FIRED];
	_Atomic uint64_t confirm_bins[PLUGIN_CONFIRM_BINS];
	_Atomic uint64_t confirmed, unconfirmed, didt_matched;
	_Atomic int64_t confirm_max_ns;
};

static bool plugin_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n >= CONFIG_NAME_MAX) {
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-')) {
			return false;
		}
	}
	return true;
}

/* Note @dir in the list of places tried, then look for <dir>/<name>.so. */
static bool plugin_try(const char *dir, const char *name, char *out, size_t len,
		       char *tried, size_t tried_len)
{
	size_t used = strlen(tried);
	int n;

	if (!dir || !*dir) {
		return false;
	}
	if (used + 3 < tried_len) {
		n = snprintf(tried + used, tried_len - used, "%s%.*s", used ? ", " : "",
			     (int)(tried_len - used - 3), dir);
		(void)n;
	}
	n = snprintf(out, len, "%s/%s.so", dir, name);
	return n > 0 && (size_t)n < len && access(out, F_OK) == 0;
}

/* The build tree counts only when this very program lives in it. */
static bool plugin_in_build_tree(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t root = strlen(RPMSD_BUILD_ROOT);

	if (n <= 0) {
		return false;
	}
	exe[n] = '\0';
	return strncmp(exe, RPMSD_BUILD_ROOT, root) == 0 && exe[root] == '/';
}

static int plugin_find(const struct rpmsd_config *cfg, const char *name, char *out,
		       size_t len, char *tried, size_t tried_len)
{
	char dir[PATH_MAX];
	const char *env = getenv("RPMSD_PLUGIN_PATH");

	tried[0] = '\0';
	if (cfg && plugin_try(cfg->daemon.plugin_dir, name, out, len, tried, tried_len)) {
		return 0;
	}
	while (env && *env) {
		size_t n = strcspn(env, ":");

		if (n > 0 && n < sizeof(dir)) {
			memcpy(dir, env, n);
			dir[n] = '\0';
			if (plugin_try(dir, name, out, len, tried, tried_len)) {
				return 0;
			}
		}
		env += n;
		if (*env == ':') {
			env++;
		}
	}
	if (plugin_in_build_tree()) {
		snprintf(dir, sizeof(dir), "%s/plugins/%s", RPMSD_BUILD_ROOT, name);
		if (plugin_try(dir, name, out, len, tried, tried_len)) {
			return 0;
		}
	}
	if (plugin_try(RPMSD_PLUGIN_DIR, name, out, len, tried, tried_len)) {
		return 0;
	}
	return -ENOENT;
}

/*
 * A 1.0 descriptor ends before ops.force_disarm: still accepted, and an op
 * beyond the plugin's struct_size is never read (it is not there).
 */
#define PLUGIN_DESC_SIZE_1_0 offsetof(struct rpmsd_coil_descriptor, ops.force_disarm)
#define PLUGIN_HAS_OP(d, op) \
	((d)->struct_size >= offsetof(struct rpmsd_coil_descriptor, ops.op) + sizeof((d)->ops.op) && \
	 (d)->ops.op != NULL)

static int plugin_check(const struct rpmsd_coil_descriptor *d, const char *name,
			const char *path, char *err, size_t errlen)
{
	size_t i;

	if (d->abi_major != RPMSD_COIL_ABI_MAJOR) {
		snprintf(err, errlen,
			 "coil plugin '%s' (%s): ABI version %u.%u, this rpmsd needs %u.x",
			 name, path, d->abi_major, d->abi_minor, (unsigned)RPMSD_COIL_ABI_MAJOR);
		return -ENOEXEC;
	}
	if (d->struct_size < PLUGIN_DESC_SIZE_1_0) {
		snprintf(err, errlen, "coil plugin '%s' (%s): descriptor too small (%zu < %zu)",
			 name, path, d->struct_size, PLUGIN_DESC_SIZE_1_0);
		return -ENOEXEC;
	}
	if (!d->name || strcmp(d->name, name) != 0) {
		snprintf(err, errlen, "coil plugin '%s' (%s): calls itself '%s'", name, path,
			 d->name ? d->name : "(null)");
		return -ENOEXEC;
	}
	if (!d->ops.open || !d->ops.pulse || !d->ops.close) {
		snprintf(err, errlen,
			 "coil plugin '%s' (%s): required op missing (open, pulse and close are required)",
			 name, path);
		return -ENOEXEC;
	}
	if (d->n_keys > 0 && !d->keys) {
		snprintf(err, errlen, "coil plugin '%s' (%s): n_keys set but keys is NULL",
			 name, path);
		return -ENOEXEC;
	}
	for (i = 0; i < d->n_keys; i++) {
		if (!d->keys[i].name || !d->keys[i].def) {
			snprintf(err, errlen, "coil plugin '%s' (%s): key %zu has no name or default",
				 name, path, i);
			return -ENOEXEC;
		}
	}
	return 0;
}

int plugin_load(const struct rpmsd_config *cfg, const char *name,
		struct plugin **out, char *err, size_t errlen)
{
	char tried[2048];
	struct plugin *p;
	rpmsd_coil_entry_fn entry;
	struct stat st;
	int ret;

	if (!plugin_name_ok(name)) {
		snprintf(err, errlen, "coil plugin '%s': invalid name (allowed: a-z, 0-9, '_', '-')",
			 name);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		return -ENOMEM;
	}
	atomic_init(&p->alerts, 0);
	atomic_init(&p->alert_code, 0);
	atomic_init(&p->wake_word, NULL);
	ret = plugin_find(cfg, name, p->path, sizeof(p->path), tried, sizeof(tried));
	if (ret < 0) {
		snprintf(err, errlen, "coil plugin '%s': %s.so not found (searched: %s)", name,
			 name, tried[0] ? tried : "nothing");
		goto err_free;
	}
	/* dlopen of a FIFO would block the start, and of a device read it */
	if (stat(p->path, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "coil plugin '%s': %s is not a regular file", name, p->path);
		ret = -ENOEXEC;
		goto err_free;
	}
	p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		snprintf(err, errlen, "coil plugin '%s': cannot load %s: %s", name, p->path,
			 dlerror());
		ret = -ENOEXEC;
		goto err_free;
	}
	*(void **)&entry = dlsym(p->dl, RPMSD_COIL_ENTRY_SYMBOL);
	if (!entry) {
		snprintf(err, errlen, "coil plugin '%s': %s has no symbol %s", name, p->path,
			 RPMSD_COIL_ENTRY_SYMBOL);
		ret = -ENOEXEC;
		goto err_close;
	}
	p->desc = entry();
	if (!p->desc) {
		snprintf(err, errlen, "coil plugin '%s': %s returned no descriptor", name,
			 p->path);
		ret = -ENOEXEC;
		goto err_close;
	}
	ret = plugin_check(p->desc, name, p->path, err, errlen);
	if (ret < 0) {
		goto err_close;
	}
	*out = p;
	return 0;

err_close:
	dlclose(p->dl);
err_free:
	free(p);
	return ret;
}

static const char *plugin_value(struct plugin *p, const char *key,
				enum rpmsd_coil_key_type type)
{
	size_t i;

	for (i = 0; i < p->desc->n_keys; i++) {
		if (strcmp(p->desc->keys[i].name, key) == 0) {
			if (p->desc->keys[i].type != type) {
				return NULL;
			}
			return config_plugin_value(p->cfg, p->desc->keys, p->desc->n_keys, key);
		}
	}
	return NULL;
}

/* Values were validated against the key table before open: parse plainly. */
static int plugin_get_bool(void *ctx, const char *key, bool *out)
{
	const char *v = plugin_value(ctx, key, RPMSD_COIL_KEY_BOOL);

	if (!v) {
		return -ENOENT;
	}
	*out = !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
	       !strcmp(v, "1");
	return 0;
}

static int plugin_get_int(void *ctx, const char *key, long long *out)
{
	const char *v = plugin_value(ctx, key, RPMSD_COIL_KEY_INT);

	if (!v) {
		return -ENOENT;
	}
	/* Base 10, exactly as config_validate_plugin_keys checked it. */
	*out = strtoll(v, NULL, 10);
	return 0;
}

static int plugin_get_double(void *ctx, const char *key, double *out)
{
	const char *v = plugin_value(ctx, key, RPMSD_COIL_KEY_DOUBLE);

	if (!v) {
		return -ENOENT;
	}
	*out = strtod(v, NULL);
	return 0;
}

static int plugin_get_string(void *ctx, const char *key, const char **out)
{
	const char *v = plugin_value(ctx, key, RPMSD_COIL_KEY_STRING);

	if (!v) {
		return -ENOENT;
	}
	*out = v;
	return 0;
}

static int64_t plugin_now_ns(void *ctx)
{
	struct plugin *p = ctx;

	return sclock_now(p->clock);
}

__attribute__((format(printf, 3, 4)))
static void plugin_log(void *ctx, enum rpmsd_coil_log_level level, const char *fmt, ...)
{
	struct plugin *p = ctx;
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_msg((enum log_level)level, "coil %s: %s", p->desc->name, line);
}

/* Any thread, async-signal-safe: atomics and a futex wake only. */
static void plugin_alert(void *ctx, enum rpmsd_coil_alert what, int code)
{
	struct plugin *p = ctx;
	atomic_uint *word;
	unsigned bit;

	bit = (what == RPMSD_COIL_ALERT_ESTOP) ? 1u << RPMSD_COIL_ALERT_ESTOP
					       : 1u << RPMSD_COIL_ALERT_FAULT;
	atomic_store(&p->alert_code, code);
	atomic_fetch_or(&p->alerts, bit);
	word = atomic_load(&p->wake_word);
	if (word) {
		sclock_kick(p->clock, word);
	}
}

/*
 * ABI 1.2: the device's envelope, copied once (the gate holds its own
 * copy from here), and whether the device confirms its output at all.
 */
static int plugin_read_device(struct plugin *p, char *err, size_t errlen)
{
	const struct rpmsd_coil_envelope *env = NULL;
	char why[256];
	double pct;
	int ret;

	if (PLUGIN_HAS_OP(p->desc, envelope)) {
		env = p->desc->ops.envelope(p->handle);
	}
	ret = safety_device_set(&p->dev, env, why, sizeof(why));
	if (ret < 0) {
		snprintf(err, errlen, "coil plugin '%s': %s", p->desc->name, why);
		return ret;
	}
	if (PLUGIN_HAS_OP(p->desc, confirmed_intensity) &&
	    p->desc->ops.confirmed_intensity(p->handle, &pct) != -EOPNOTSUPP) {
		/* a device that confirms with no envelope still gets the read-back rule */
		if (!p->dev.present) {
			p->dev.present = true;
			p->dev.max_output_pct = INFINITY;
			snprintf(p->dev.model, sizeof(p->dev.model), "%s", p->desc->name);
		}
		p->dev.confirms = true;
	}
	if (p->dev.present) {
		log_info("coil %s: device %s%s", p->desc->name, p->dev.model,
			 p->dev.confirms ? ", confirms its output by read-back" : "");
	}
	return 0;
}

int plugin_open(struct plugin *p, const struct rpmsd_config *cfg,
		struct sclock *clock, char *err, size_t errlen)
{
	int ret;

	ret = config_validate_plugin_keys(cfg, p->desc->keys, p->desc->n_keys, err, errlen);
	if (ret < 0) {
		return ret;
	}
	p->cfg = cfg;
	p->clock = clock;
	p->host = (struct rpmsd_coil_host){
		.struct_size = sizeof(p->host),
		.ctx = p,
		.get_bool = plugin_get_bool,
		.get_int = plugin_get_int,
		.get_double = plugin_get_double,
		.get_string = plugin_get_string,
		.now_ns = plugin_now_ns,
		.log = plugin_log,
		.alert = plugin_alert,
	};
	ret = p->desc->ops.open(&p->host, &p->handle);
	if (ret < 0) {
		snprintf(err, errlen, "coil plugin '%s': open failed: %s", p->desc->name,
			 strerror(-ret));
		return ret;
	}
	p->opened = true;
	ret = plugin_read_device(p, err, errlen);
	if (ret < 0) {
		return ret;
	}
	return 0;
}

void plugin_unload(struct plugin *p)
{
	if (!p) {
		return;
	}
	if (p->opened) {
		/* Disarm first even though close must too: belt and braces. */
		if (p->desc->ops.disarm) {
			p->desc->ops.disarm(p->handle);
		}
		p->desc->ops.close(p->handle);
	}
	dlclose(p->dl);
	free(p);
}

const struct rpmsd_coil_descriptor *plugin_descriptor(const struct plugin *p)
{
	return p->desc;
}

const char *plugin_path(const struct plugin *p)
{
	return p->path;
}

int plugin_arm(struct plugin *p)
{
	return p->desc->ops.arm ? p->desc->ops.arm(p->handle) : 0;
}

int plugin_disarm(struct plugin *p)
{
	return p->desc->ops.disarm ? p->desc->ops.disarm(p->handle) : 0;
}

int plugin_force_disarm(struct plugin *p)
{
	if (!PLUGIN_HAS_OP(p->desc, force_disarm)) {
		return -EOPNOTSUPP;
	}
	return p->desc->ops.force_disarm(p->handle);
}

int plugin_pulse(struct plugin *p, double intensity_pct, uint32_t width_us)
{
	int ret = p->desc->ops.pulse(p->handle, intensity_pct, width_us);

	if (ret == 0) {
		p->fired++;	/* the plugin numbers its pulses the same way */
	}
	return ret;
}

static void plugin_count(_Atomic uint64_t *w)
{
	/* one writer (the stim thread): no read-modify-write needed */
	atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static unsigned plugin_confirm_bin_of(int64_t ns)
{
	int64_t us = ns / 1000;

	if (us < PLUGIN_CONFIRM_FINE_US * PLUGIN_CONFIRM_FINE_BINS) {
		return (unsigned)(us / PLUGIN_CONFIRM_FINE_US);
	}
	us -= PLUGIN_CONFIRM_FINE_US * PLUGIN_CONFIRM_FINE_BINS;
	if (us < PLUGIN_CONFIRM_COARSE_US * PLUGIN_CONFIRM_COARSE_BINS) {
		return PLUGIN_CONFIRM_FINE_BINS + (unsigned)(us / PLUGIN_CONFIRM_COARSE_US);
	}
	return PLUGIN_CONFIRM_BINS - 1;
}

void plugin_confirm_bin(unsigned i, double *lo_us, double *hi_us)
{
	const double fine = PLUGIN_CONFIRM_FINE_US * PLUGIN_CONFIRM_FINE_BINS;

	if (i < PLUGIN_CONFIRM_FINE_BINS) {
		*lo_us = i * (double)PLUGIN_CONFIRM_FINE_US;
		*hi_us = *lo_us + PLUGIN_CONFIRM_FINE_US;
	} else if (i < PLUGIN_CONFIRM_BINS - 1) {
		*lo_us = fine + (i - PLUGIN_CONFIRM_FINE_BINS) * (double)PLUGIN_CONFIRM_COARSE_US;
		*hi_us = *lo_us + PLUGIN_CONFIRM_COARSE_US;
	} else {
		*lo_us = fine + PLUGIN_CONFIRM_COARSE_BINS * (double)PLUGIN_CONFIRM_COARSE_US;
		*hi_us = INFINITY;
	}
}

void plugin_pulse_verify(struct plugin *p, uint32_t train_id, uint32_t index,
			 struct plugin_pulse_verify *out)
{
	struct rpmsd_coil_pulse_info info = {
		.struct_size = sizeof(info), .confirm_ns = -1, .didt_a_per_us = NAN,
		.sim_response_uv = NAN,
	};
	uint64_t k;

	memset(out, 0, sizeof(*out));
	out->confirm_ns = -1;
	out->sim_response_uv = NAN;
	p->fired_train[p->fired % PLUGIN_FIRED] = train_id;
	p->fired_index[p->fired % PLUGIN_FIRED] = index;
	if (!PLUGIN_HAS_OP(p->desc, pulse_info) ||
	    p->desc->ops.pulse_info(p->handle, &info) < 0) {
		info.confirm_ns = -1;
		info.readback_pulse = 0;
		info.sim_response_uv = NAN;
	}
	if (isfinite(info.sim_response_uv) && info.sim_response_uv >= 0.0 &&
	    isfinite(info.sim_latency_us) && isfinite(info.sim_artefact_uv)) {
		out->sim_response_uv = info.sim_response_uv;
		out->sim_latency_us = info.sim_latency_us;
		out->sim_artefact_uv = info.sim_artefact_uv;
		out->sim_channel = info.sim_channel;
	}
	if (info.confirm_ns > 0) {
		out->confirm_ns = info.confirm_ns;
		plugin_count(&p->confirm_bins[plugin_confirm_bin_of(info.confirm_ns)]);
		plugin_count(&p->confirmed);
		if (info.confirm_ns > atomic_load_explicit(&p->confirm_max_ns,
							   memory_order_relaxed)) {
			atomic_store_explicit(&p->confirm_max_ns, info.confirm_ns,
					      memory_order_relaxed);
		}
	} else {
		plugin_count(&p->unconfirmed);
	}
	/* a read-back names the plugin's pulse number: ours while we remember it */
	k = info.readback_pulse;
	if (k >= 1 && k <= p->fired && p->fired - k < PLUGIN_FIRED &&
	    isfinite(info.didt_a_per_us)) {
		out->has_didt = true;
		out->didt = info.didt_a_per_us;
		out->didt_train_id = p->fired_train[k % PLUGIN_FIRED];
		out->didt_index = p->fired_index[k % PLUGIN_FIRED];
		plugin_count(&p->didt_matched);
	}
}

void plugin_confirm_stats(const struct plugin *p, struct plugin_confirm_stats *st)
{
	unsigned i;

	st->supported = PLUGIN_HAS_OP(p->desc, pulse_info);
	st->confirmed = atomic_load_explicit(&p->confirmed, memory_order_relaxed);
	st->unconfirmed = atomic_load_explicit(&p->unconfirmed, memory_order_relaxed);
	st->max_ns = atomic_load_explicit(&p->confirm_max_ns, memory_order_relaxed);
	st->didt = atomic_load_explicit(&p->didt_matched, memory_order_relaxed);
	for (i = 0; i < PLUGIN_CONFIRM_BINS; i++) {
		st->bins[i] = atomic_load_explicit(&p->confirm_bins[i], memory_order_relaxed);
	}
}

bool plugin_has_status(const struct plugin *p)
{
	return p->desc->ops.status != NULL;
}

int plugin_status(struct plugin *p, struct rpmsd_coil_status *st)
{
	if (!p->desc->ops.status) {
		return -EOPNOTSUPP;
	}
	return p->desc->ops.status(p->handle, st);
}

bool plugin_has_envelope(const struct plugin *p)
{
	return PLUGIN_HAS_OP(p->desc, envelope) || PLUGIN_HAS_OP(p->desc, confirmed_intensity);
}

const struct safety_device *plugin_device(const struct plugin *p)
{
	return p->dev.present ? &p->dev : NULL;
}

int plugin_set_intensity(struct plugin *p, double pct)
{
	if (!p->opened || !PLUGIN_HAS_OP(p->desc, set_intensity)) {
		return -EOPNOTSUPP;
	}
	return p->desc->ops.set_intensity(p->handle, pct);
}

double plugin_confirmed_intensity(struct plugin *p)
{
	double pct = NAN;

	if (!PLUGIN_HAS_OP(p->desc, confirmed_intensity) ||
	    p->desc->ops.confirmed_intensity(p->handle, &pct) < 0) {
		return NAN;	/* in doubt: not confirmed */
	}
	return pct;
}

void plugin_set_wake(struct plugin *p, atomic_uint *word)
{
	atomic_store(&p->wake_word, word);
}

bool plugin_take_alert(struct plugin *p, enum rpmsd_coil_alert *what, int *code)
{
	unsigned bits = atomic_exchange(&p->alerts, 0);

	if (!bits) {
		return false;
	}
	/* An e-stop outranks a fault when both came in since the last look. */
	*what = (bits & (1u << RPMSD_COIL_ALERT_ESTOP)) ? RPMSD_COIL_ALERT_ESTOP
							: RPMSD_COIL_ALERT_FAULT;
	*code = atomic_load(&p->alert_code);
	return true;
}

void plugin_alert_text(struct plugin *p, char *buf, size_t len)
{
	buf[0] = '\0';
	if (PLUGIN_HAS_OP(p->desc, alert_text)) {
		p->desc->ops.alert_text(p->handle, buf, len);
		buf[len - 1] = '\0';
	}
}

void plugin_write_keys(const struct plugin *p, FILE *f)
{
	static const char *const types[] = {
		[RPMSD_COIL_KEY_BOOL] = "bool", [RPMSD_COIL_KEY_INT] = "integer",
		[RPMSD_COIL_KEY_DOUBLE] = "number", [RPMSD_COIL_KEY_STRING] = "string",
	};
	size_t i;

	fprintf(f, "# %s: %s\n[coil.%s]\n", p->desc->name,
		p->desc->description ? p->desc->description : "", p->desc->name);
	for (i = 0; i < p->desc->n_keys; i++) {
		const struct rpmsd_coil_key *k = &p->desc->keys[i];
		const char *t = (k->type >= RPMSD_COIL_KEY_BOOL && k->type <= RPMSD_COIL_KEY_STRING)
					? types[k->type]
					: "?";

		fprintf(f, "# %s\n", k->doc ? k->doc : "");
		if (k->type == RPMSD_COIL_KEY_INT || k->type == RPMSD_COIL_KEY_DOUBLE) {
			fprintf(f, "# %s, %g to %g%s%s\n", t, k->min, k->max,
				(k->unit && *k->unit) ? " " : "", k->unit ? k->unit : "");
		} else {
			fprintf(f, "# %s\n", t);
		}
		fprintf(f, "%s = %s\n\n", k->name, k->def);
	}
}
