/* SPDX-License-Identifier: MIT */
/*
 * iio_gen - serve one fake IIO device to libiio's local backend.
 *
 * The test rig (rig.py) builds a sysfs-like tree on a private tmpfs and a FIFO
 * in place of the character device. This program plays the kernel's part:
 * it watches buffer/enable, and while the buffer is enabled it writes frames
 * of the enabled scan elements into the FIFO, in the IIO scan layout, paced
 * at the sampling rate. The channel set and the sample formats come from the
 * tree, so the harness decides them.
 *
 * Usage: see gen_usage() below.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GEN_MAX_CHANNELS	64
#define GEN_NAME_MAX		96
#define GEN_PATH_MAX		4096
#define GEN_TICK_NS		1000000LL	/* enable poll period */
#define GEN_MAX_BATCH_NS	100000000LL	/* most frames written per tick */
#define GEN_MAX_DEFER		20		/* ticks to wait for a writer */
#define GEN_NSEC		1000000000LL

enum gen_unused {
	GEN_UNUSED_SIGN,	/* upper bits sign-extended, lower bits zero */
	GEN_UNUSED_ZERO,	/* every bit outside the value is zero */
	GEN_UNUSED_ONES,	/* every bit outside the value is one */
};

struct gen_chan {
	char name[GEN_NAME_MAX];	/* attribute prefix, e.g. "in_voltage0" */
	unsigned int index;
	bool is_be;
	bool is_signed;
	bool is_timestamp;
	unsigned int bits;		/* realbits */
	unsigned int storage;		/* storagebits: 8, 16, 32 or 64 */
	unsigned int shift;
	int column;			/* input column, -1 for the timestamp */
	double scale;
	bool enabled;
	size_t offset;			/* byte offset in the current frame */
};

struct gen {
	/* options */
	const char *dev_dir;
	const char *fifo_path;
	const char *input_path;
	const char *count_path;
	double opt_scale;
	double opt_rate;
	long long stall_after;
	long long vanish_after;
	long long return_after_ms;
	enum gen_unused unused;
	int rt_prio;
	bool verbose;

	/* device */
	char hidden_dir[GEN_PATH_MAX];
	struct gen_chan ch[GEN_MAX_CHANNELS];
	unsigned int nch;
	unsigned int ncols;
	uint64_t *words;		/* [line * ncols + column], ready to store */
	size_t nlines;
	int fifo_fd;
	int ino_fd;

	/* current session */
	bool running;
	double rate;
	int64_t t0;
	uint64_t k;			/* next frame of the session */
	size_t chunk;			/* frames per tick at this rate */
	size_t frame_bytes;
	uint8_t *buf;
	size_t buf_cap;
	uint8_t *pend;			/* bytes accepted but not yet in the FIFO */
	size_t pend_len;
	size_t pend_off;
	unsigned int pending_writes;	/* completed enable writes not acted on */
	unsigned int deferred;
	bool writer_open;		/* enable modified, not yet closed */
	bool start_failed;		/* retry only after a new write */

	/* lifetime */
	uint64_t sent;
	uint64_t dropped;
	bool stalled;
	bool vanished;
	bool vanish_done;
	int64_t return_at;
};

static volatile sig_atomic_t gen_stop;
static volatile sig_atomic_t gen_sig_stall;	/* 1 stall, 2 resume */
static volatile sig_atomic_t gen_sig_vanish;

static void gen_on_signal(int sig)
{
	if (sig == SIGUSR1) {
		gen_sig_stall = 1;
	} else if (sig == SIGRTMIN) {
		gen_sig_stall = 2;
	} else if (sig == SIGUSR2) {
		gen_sig_vanish = 1;
	} else if (sig == SIGIO) {
		/* buffer/ changed: the sleep is cut short, nothing else */
	} else {
		gen_stop = 1;
	}
}

__attribute__((format(printf, 1, 2)))
static void gen_log(const char *fmt, ...)
{
	va_list ap;

	fputs("iio_gen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t gen_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * GEN_NSEC + ts.tv_nsec;
}

static void gen_sleep_until(int64_t t)
{
	struct timespec ts = {
		.tv_sec = t / GEN_NSEC,
		.tv_nsec = t % GEN_NSEC,
	};

	/* A signal ends the sleep early; the main loop looks at it. */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static int gen_path(char *dst, size_t size, const char *a, const char *b)
{
	int n = snprintf(dst, size, "%s/%s", a, b);

	if (n < 0 || (size_t)n >= size) {
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * Read a small attribute file into buf, without trailing whitespace or NULs
 * (libiio writes values with their terminating NUL). Returns the length, or
 * a negative errno.
 */
static int gen_read_text(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	do {
		n = read(fd, buf, size - 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0) {
		return -errno;
	}
	while (n > 0 && (buf[n - 1] == '\0' || buf[n - 1] == '\n' ||
			 buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
		n--;
	}
	buf[n] = '\0';
	return (int)strlen(buf);
}

static int gen_read_attr(const struct gen *g, const char *rel, char *buf,
			 size_t size)
{
	char path[GEN_PATH_MAX];
	int ret;

	ret = gen_path(path, sizeof(path), g->dev_dir, rel);
	if (ret) {
		return ret;
	}
	return gen_read_text(path, buf, size);
}

/* Returns 0 and the value, -ENOENT if absent, -EINVAL if not a number. */
static int gen_read_double(const struct gen *g, const char *rel, double *out)
{
	char buf[128];
	char *end;
	int ret;

	ret = gen_read_attr(g, rel, buf, sizeof(buf));
	if (ret < 0) {
		return ret;
	}
	if (ret == 0) {
		return -EINVAL;
	}
	errno = 0;
	*out = strtod(buf, &end);
	if (errno || end == buf || *end != '\0' || !isfinite(*out)) {
		return -EINVAL;
	}
	return 0;
}

/* Returns 0 or 1, or a negative errno when the file is absent, empty or odd. */
static int gen_read_flag(const struct gen *g, const char *rel)
{
	char buf[32];
	int ret;

	ret = gen_read_attr(g, rel, buf, sizeof(buf));
	if (ret < 0) {
		return ret;
	}
	if (!strcmp(buf, "0")) {
		return 0;
	}
	if (!strcmp(buf, "1")) {
		return 1;
	}
	return -EINVAL;
}

static int gen_write_attr(const struct gen *g, const char *rel, const char *val)
{
	char path[GEN_PATH_MAX];
	size_t len = strlen(val);
	ssize_t n;
	int fd;
	int ret;

	ret = gen_path(path, sizeof(path), g->dev_dir, rel);
	if (ret) {
		return ret;
	}
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	n = write(fd, val, len);
	ret = (n == (ssize_t)len) ? 0 : -EIO;
	close(fd);
	return ret;
}

/*
 * Parse an IIO scan element type, "[le|be]:[s|u]BITS/STORAGE>>SHIFT"
 * (upper-case S/U as libiio accepts them). Repeat counts ("X") are refused.
 */
static int gen_parse_type(struct gen_chan *c, const char *s)
{
	unsigned int bits, storage, shift;
	char e, sign;
	int used = 0;

	if (strchr(s, 'X')) {
		return -EOPNOTSUPP;
	}
	if (sscanf(s, "%ce:%c%u/%u>>%u%n", &e, &sign, &bits, &storage, &shift,
		   &used) != 5 || s[used] != '\0') {
		return -EINVAL;
	}
	if ((e != 'l' && e != 'b') ||
	    (sign != 's' && sign != 'u' && sign != 'S' && sign != 'U')) {
		return -EINVAL;
	}
	if (storage != 8 && storage != 16 && storage != 32 && storage != 64) {
		return -EINVAL;
	}
	if (bits < 1 || shift >= storage || bits > storage - shift) {
		return -EINVAL;
	}
	c->is_be = e == 'b';
	c->is_signed = sign == 's' || sign == 'S';
	c->bits = bits;
	c->storage = storage;
	c->shift = shift;
	return 0;
}

static int gen_cmp_chan(const void *a, const void *b)
{
	const struct gen_chan *x = a;
	const struct gen_chan *y = b;

	if (x->index != y->index) {
		return x->index < y->index ? -1 : 1;
	}
	return strcmp(x->name, y->name);
}

/* "in_voltage12" -> "in_voltage", for the shared "in_voltage_scale". */
static void gen_type_prefix(const char *name, char *dst, size_t size)
{
	size_t n = strlen(name);

	while (n > 0 && name[n - 1] >= '0' && name[n - 1] <= '9') {
		n--;
	}
	if (n >= size) {
		n = size - 1;
	}
	memcpy(dst, name, n);
	dst[n] = '\0';
}

static int gen_chan_scale(const struct gen *g, struct gen_chan *c)
{
	char rel[GEN_NAME_MAX + 16];
	char prefix[GEN_NAME_MAX];
	int ret;

	snprintf(rel, sizeof(rel), "%s_scale", c->name);
	ret = gen_read_double(g, rel, &c->scale);
	if (ret != -ENOENT) {
		goto check;
	}
	gen_type_prefix(c->name, prefix, sizeof(prefix));
	snprintf(rel, sizeof(rel), "%s_scale", prefix);
	ret = gen_read_double(g, rel, &c->scale);
	if (ret != -ENOENT) {
		goto check;
	}
	c->scale = g->opt_scale;
	return 0;
check:
	if (ret || c->scale <= 0.0) {
		gen_log("%s: bad scale attribute", rel);
		return -EINVAL;
	}
	return 0;
}

static int gen_scan_channels(struct gen *g)
{
	char dir_path[GEN_PATH_MAX];
	struct dirent *de;
	unsigned int i;
	DIR *dir;
	int ret = 0;

	ret = gen_path(dir_path, sizeof(dir_path), g->dev_dir, "scan_elements");
	if (ret) {
		return ret;
	}
	dir = opendir(dir_path);
	if (!dir) {
		ret = -errno;
		gen_log("%s: %s", dir_path, strerror(-ret));
		return ret;
	}
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);
		char rel[GEN_NAME_MAX + 32];
		char type[64];
		double idx;
		struct gen_chan *c;

		if (len < 4 || strcmp(de->d_name + len - 3, "_en")) {
			continue;
		}
		if (len - 3 >= GEN_NAME_MAX || g->nch == GEN_MAX_CHANNELS) {
			gen_log("%s: too many or too long channel names", de->d_name);
			ret = -EINVAL;
			break;
		}
		c = &g->ch[g->nch];
		memset(c, 0, sizeof(*c));
		memcpy(c->name, de->d_name, len - 3);
		c->name[len - 3] = '\0';
		c->is_timestamp = !strcmp(c->name, "in_timestamp");

		snprintf(rel, sizeof(rel), "scan_elements/%s_index", c->name);
		ret = gen_read_double(g, rel, &idx);
		if (ret || idx < 0 || idx > INT_MAX || idx != floor(idx)) {
			gen_log("%s: missing or bad index", rel);
			ret = -EINVAL;
			break;
		}
		c->index = (unsigned int)idx;

		snprintf(rel, sizeof(rel), "scan_elements/%s_type", c->name);
		ret = gen_read_attr(g, rel, type, sizeof(type));
		if (ret >= 0) {
			ret = gen_parse_type(c, type);
		}
		if (ret) {
			gen_log("%s: missing or unsupported type", rel);
			ret = -EINVAL;
			break;
		}
		g->nch++;
	}
	closedir(dir);
	if (ret) {
		return ret;
	}
	if (g->nch == 0) {
		gen_log("%s: no scan elements", dir_path);
		return -EINVAL;
	}
	qsort(g->ch, g->nch, sizeof(g->ch[0]), gen_cmp_chan);
	for (i = 0; i < g->nch; i++) {
		struct gen_chan *c = &g->ch[i];

		if (i > 0 && c->index == g->ch[i - 1].index) {
			gen_log("%s and %s share index %u", g->ch[i - 1].name,
				c->name, c->index);
			return -EINVAL;
		}
		if (c->is_timestamp) {
			c->column = -1;
			continue;
		}
		c->column = (int)g->ncols++;
		ret = gen_chan_scale(g, c);
		if (ret) {
			return ret;
		}
	}
	return 0;
}

static uint64_t gen_storage_mask(const struct gen_chan *c)
{
	return c->storage == 64 ? UINT64_MAX : (1ULL << c->storage) - 1;
}

/* Place a raw code (two's complement in 64 bits) into its storage word. */
static uint64_t gen_pack(const struct gen *g, const struct gen_chan *c,
			 uint64_t code)
{
	uint64_t smask = gen_storage_mask(c);
	uint64_t vmask = (c->bits == 64 ? UINT64_MAX : (1ULL << c->bits) - 1)
			 << c->shift;
	uint64_t word = (code << c->shift) & smask;

	switch (g->unused) {
	case GEN_UNUSED_ZERO:
		word &= vmask;
		break;
	case GEN_UNUSED_ONES:
		word |= ~vmask & smask;
		break;
	case GEN_UNUSED_SIGN:
	default:
		break;
	}
	return word;
}

/* Integer code for a signed or unsigned value, clamped to the type. */
static uint64_t gen_code_int(const struct gen_chan *c, int64_t v)
{
	if (c->is_signed) {
		int64_t hi = c->bits == 64 ? INT64_MAX :
			     (int64_t)((1ULL << (c->bits - 1)) - 1);
		int64_t lo = -hi - 1;

		if (v > hi) {
			v = hi;
		} else if (v < lo) {
			v = lo;
		}
		return (uint64_t)v;
	}
	if (v < 0) {
		return 0;
	}
	if (c->bits < 64 && (uint64_t)v > (1ULL << c->bits) - 1) {
		return (1ULL << c->bits) - 1;
	}
	return (uint64_t)v;
}

/* Code for a physical value: round(value / scale), clamped to the type. */
static uint64_t gen_code_value(const struct gen_chan *c, double value)
{
	double x = round(value / c->scale);
	double top = ldexp(1.0, (int)c->bits - (c->is_signed ? 1 : 0));

	if (isnan(x)) {
		x = 0.0;
	}
	if (c->is_signed) {
		if (x >= top) {
			return gen_code_int(c, INT64_MAX);
		}
		if (x < -top) {
			return gen_code_int(c, INT64_MIN);
		}
		return gen_code_int(c, (int64_t)x);
	}
	if (x <= 0.0) {
		return 0;
	}
	if (x >= top) {
		return c->bits == 64 ? UINT64_MAX : (1ULL << c->bits) - 1;
	}
	return (uint64_t)x;
}

static void gen_store(const struct gen_chan *c, uint64_t word, uint8_t *dst)
{
	unsigned int n = c->storage / 8;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint8_t byte = (uint8_t)(word >> (8 * i));

		if (c->is_be) {
			dst[n - 1 - i] = byte;
		} else {
			dst[i] = byte;
		}
	}
}

static bool gen_blank(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
		s++;
	}
	return *s == '\0' || *s == '#';
}

/* Load the input file and turn every value into its storage word. */
static int gen_load_input(struct gen *g)
{
	size_t cap = 0, lineno = 0, linecap = 0;
	uint64_t *words = NULL;
	char *line = NULL;
	int ret = 0;
	FILE *f;

	f = fopen(g->input_path, "re");
	if (!f) {
		ret = -errno;
		gen_log("%s: %s", g->input_path, strerror(errno));
		return ret;
	}
	g->nlines = 0;
	while (getline(&line, &linecap, f) >= 0) {
		const char *p = line;
		unsigned int i, col;

		lineno++;
		if (gen_blank(line)) {
			continue;
		}
		if (g->nlines == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			uint64_t *nw;

			nw = realloc(words, ncap * (g->ncols ? g->ncols : 1) *
				     sizeof(*words));
			if (!nw) {
				ret = -ENOMEM;
				break;
			}
			words = nw;
			cap = ncap;
		}
		for (col = 0; col < g->ncols; col++) {
			char *end;
			double v;

			errno = 0;
			v = strtod(p, &end);
			if (end == p || errno == ERANGE) {
				gen_log("%s:%zu: need %u values", g->input_path,
					lineno, g->ncols);
				ret = -EINVAL;
				break;
			}
			p = end;
			for (i = 0; i < g->nch; i++) {
				if (g->ch[i].column == (int)col) {
					words[g->nlines * g->ncols + col] =
						gen_pack(g, &g->ch[i],
							 gen_code_value(&g->ch[i], v));
				}
			}
		}
		if (ret) {
			break;
		}
		g->nlines++;
	}
	free(line);
	fclose(f);
	if (!ret && g->nlines == 0) {
		if (g->ncols) {
			gen_log("%s: no frames", g->input_path);
			ret = -EINVAL;
		} else {
			g->nlines = 1;	/* a timestamp-only device */
		}
	}
	if (ret) {
		free(words);
		return ret;
	}
	g->words = words;
	return 0;
}

/* Read which scan elements are enabled and lay the frame out like IIO does. */
static void gen_layout(struct gen *g)
{
	size_t off = 0, align = 1;
	unsigned int i;

	for (i = 0; i < g->nch; i++) {
		struct gen_chan *c = &g->ch[i];
		char rel[GEN_NAME_MAX + 32];
		size_t sz = c->storage / 8;
		int en;

		snprintf(rel, sizeof(rel), "scan_elements/%s_en", c->name);
		en = gen_read_flag(g, rel);
		c->enabled = en == 1;
		if (!c->enabled) {
			continue;
		}
		off = (off + sz - 1) / sz * sz;
		c->offset = off;
		off += sz;
		if (sz > align) {
			align = sz;
		}
	}
	g->frame_bytes = (off + align - 1) / align * align;
}

static int64_t gen_due(const struct gen *g, uint64_t k)
{
	return g->t0 + (int64_t)((double)k * 1e9 / g->rate);
}

static void gen_drain(struct gen *g)
{
	uint8_t junk[4096];
	ssize_t n;

	if (g->fifo_fd < 0) {
		return;
	}
	do {
		n = read(g->fifo_fd, junk, sizeof(junk));
	} while (n > 0 || (n < 0 && errno == EINTR));
	g->pend_len = 0;
	g->pend_off = 0;
}

static const char *gen_state(const struct gen *g)
{
	if (g->vanished) {
		return "vanished";
	}
	if (!g->running) {
		return "off";
	}
	return g->stalled ? "stalled" : "on";
}

/* "FRAMES\nSTATE\n", replaced atomically, for tests to synchronise on. */
static void gen_write_count(const struct gen *g)
{
	char tmp[GEN_PATH_MAX];
	FILE *f;

	if (!g->count_path) {
		return;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", g->count_path) >=
	    (int)sizeof(tmp)) {
		return;
	}
	f = fopen(tmp, "we");
	if (!f) {
		return;
	}
	fprintf(f, "%llu\n%s\n", (unsigned long long)g->sent, gen_state(g));
	if (fclose(f) == 0) {
		rename(tmp, g->count_path);
	}
}

static void gen_session_stop(struct gen *g, const char *why)
{
	if (!g->running) {
		return;
	}
	g->running = false;
	gen_drain(g);
	if (g->verbose) {
		gen_log("buffer off (%s) after %llu frames", why,
			(unsigned long long)g->k);
	}
}

static int gen_session_start(struct gen *g)
{
	size_t need;
	double rate;

	if (g->opt_rate > 0) {
		rate = g->opt_rate;
	} else if (gen_read_double(g, "sampling_frequency", &rate) || rate <= 0) {
		gen_log("no --rate and no usable sampling_frequency");
		return -EINVAL;
	}
	gen_layout(g);
	if (g->frame_bytes == 0) {
		gen_log("buffer enabled with no scan element enabled");
		return -EINVAL;
	}
	g->rate = rate;
	g->chunk = (size_t)ceil(rate / 1000.0);
	if (g->chunk < 1) {
		g->chunk = 1;
	}
	need = ((size_t)(rate * GEN_MAX_BATCH_NS / 1e9) + g->chunk + 1) *
	       g->frame_bytes;
	if (need > g->buf_cap) {
		uint8_t *nb = realloc(g->buf, need);
		uint8_t *np = realloc(g->pend, need);

		if (nb) {
			g->buf = nb;
		}
		if (np) {
			g->pend = np;
		}
		if (!nb || !np) {
			return -ENOMEM;
		}
		g->buf_cap = need;
	}
	gen_drain(g);
	g->t0 = gen_now();
	g->k = 0;
	g->running = true;
	if (g->verbose) {
		gen_log("buffer on: %.6g Hz, %zu bytes a frame", rate,
			g->frame_bytes);
	}
	return 0;
}

static void gen_encode(const struct gen *g, uint64_t k, uint8_t *dst)
{
	size_t line = (size_t)(k % g->nlines);
	unsigned int i;

	memset(dst, 0, g->frame_bytes);
	for (i = 0; i < g->nch; i++) {
		const struct gen_chan *c = &g->ch[i];
		uint64_t word;

		if (!c->enabled) {
			continue;
		}
		if (c->is_timestamp) {
			word = gen_pack(g, c, gen_code_int(c, gen_due(g, k)));
		} else {
			word = g->words[line * g->ncols + (size_t)c->column];
		}
		gen_store(c, word, dst + c->offset);
	}
}

/* Push pending bytes into the FIFO; true when nothing is left pending. */
static bool gen_flush(struct gen *g)
{
	while (g->pend_off < g->pend_len) {
		ssize_t n = write(g->fifo_fd, g->pend + g->pend_off,
				  g->pend_len - g->pend_off);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return false;
		}
		g->pend_off += (size_t)n;
	}
	g->pend_len = 0;
	g->pend_off = 0;
	return true;
}

static uint64_t gen_limit(const struct gen *g)
{
	uint64_t limit = UINT64_MAX;

	if (g->stall_after >= 0 && (uint64_t)g->stall_after < limit) {
		limit = (uint64_t)g->stall_after;
	}
	if (!g->vanish_done && g->vanish_after >= 0 &&
	    (uint64_t)g->vanish_after < limit) {
		limit = (uint64_t)g->vanish_after;
	}
	return limit;
}

/* Write every frame due by now (a bounded batch), return true if it wrote. */
static bool gen_produce(struct gen *g, int64_t now)
{
	uint64_t due, n, max, limit, i;
	size_t bytes;
	ssize_t w;

	if (now < g->t0) {
		return false;
	}
	due = (uint64_t)floor((double)(now - g->t0) * g->rate / 1e9) + 1;
	if (due <= g->k) {
		return false;
	}
	n = due - g->k;
	max = g->buf_cap / g->frame_bytes - 1;
	if (n > max) {
		n = max;
	}
	limit = gen_limit(g);
	if (g->sent >= limit) {
		return false;
	}
	if (n > limit - g->sent) {
		n = limit - g->sent;
	}
	if (!gen_flush(g)) {
		/* The reader is behind and the FIFO is full: lose them. */
		if (g->dropped == 0 || g->verbose) {
			gen_log("FIFO full, %llu frames dropped",
				(unsigned long long)n);
		}
		g->dropped += n;
		g->k += n;
		return false;
	}
	for (i = 0; i < n; i++) {
		gen_encode(g, g->k + i, g->buf + i * g->frame_bytes);
	}
	bytes = (size_t)n * g->frame_bytes;
	do {
		w = write(g->fifo_fd, g->buf, bytes);
	} while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (g->dropped == 0 || g->verbose) {
			gen_log("FIFO full, %llu frames dropped",
				(unsigned long long)n);
		}
		g->dropped += n;
		g->k += n;
		return false;
	}
	if ((size_t)w < bytes) {
		/* Keep the rest so that frames stay whole in the stream. */
		memcpy(g->pend, g->buf + w, bytes - (size_t)w);
		g->pend_len = bytes - (size_t)w;
		g->pend_off = 0;
	}
	g->k += n;
	g->sent += n;
	return true;
}

static int gen_open_fifo(struct gen *g)
{
	g->fifo_fd = open(g->fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (g->fifo_fd < 0) {
		int ret = -errno;

		gen_log("%s: %s", g->fifo_path, strerror(errno));
		return ret;
	}
	return 0;
}

/* Count the completed writes of buffer/enable, follow an open one. */
static void gen_drain_events(struct gen *g, unsigned int *closed)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	if (g->ino_fd < 0) {
		return;
	}
	while ((n = read(g->ino_fd, buf, sizeof(buf))) > 0) {
		char *p = buf;

		while (p < buf + n) {
			const struct inotify_event *ev = (const void *)p;

			if (ev->len && !strcmp(ev->name, "enable")) {
				if (ev->mask & IN_MODIFY) {
					g->writer_open = true;
				}
				if (ev->mask & IN_CLOSE_WRITE) {
					g->writer_open = false;
					(*closed)++;
				}
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

/*
 * Follow buffer/enable. libiio rewrites it with fopen/fwrite/fclose, so the
 * file can be seen empty or half-written; inotify tells whether a write is
 * in progress and how many writes completed, which also catches a quick
 * 0-then-1 restart between two polls.
 */
static void gen_check_enable(struct gen *g)
{
	unsigned int closed = 0, late = 0;
	int en;

	gen_drain_events(g, &closed);
	if (g->running && (g->writer_open || closed)) {
		/*
		 * Any write to enable ends the session at once: the frames
		 * written since the reader last read are dropped now, before
		 * a quick new session's reader can see them.
		 */
		gen_session_stop(g, "enable written");
	}
	en = gen_read_flag(g, "buffer/enable");
	gen_drain_events(g, &late);
	g->pending_writes += closed + late;
	/*
	 * Act only on a value whose write has been closed: acting on a "1"
	 * whose close comes later would count that close as a second write
	 * and restart a session its reader may already be reading.
	 */
	if ((g->writer_open || late || en < 0) &&
	    ++g->deferred < GEN_MAX_DEFER) {
		return;	/* a writer is busy with the file: look again later */
	}
	g->writer_open = false;
	g->deferred = 0;
	if (en < 0) {
		return;
	}
	if (en == 0) {
		gen_session_stop(g, "enable 0");
		g->start_failed = false;
	} else if (g->pending_writes > 0 ||
		   (!g->running && !g->start_failed)) {
		if (g->running) {
			gen_session_stop(g, "enable rewritten");
		}
		g->start_failed = gen_session_start(g) != 0;
		if (g->start_failed) {
			gen_log("buffer enabled but cannot start; waiting");
		}
	}
	g->pending_writes = 0;
}

static int gen_vanish(struct gen *g)
{
	g->vanish_done = true;
	gen_session_stop(g, "vanish");
	if (rename(g->dev_dir, g->hidden_dir)) {
		gen_log("rename %s: %s", g->dev_dir, strerror(errno));
		return -errno;
	}
	if (unlink(g->fifo_path)) {
		gen_log("unlink %s: %s", g->fifo_path, strerror(errno));
	}
	if (g->fifo_fd >= 0) {
		close(g->fifo_fd);
		g->fifo_fd = -1;
	}
	g->vanished = true;
	g->return_at = gen_now() + g->return_after_ms * 1000000LL;
	gen_log("device vanished after %llu frames",
		(unsigned long long)g->sent);
	return 0;
}

/* The device comes back like a fresh probe: buffer off, no element enabled. */
static int gen_return(struct gen *g)
{
	char path[GEN_PATH_MAX + GEN_NAME_MAX + 32];
	unsigned int i, junk = 0;
	int ret;

	if (mkfifo(g->fifo_path, 0660) && errno != EEXIST) {
		gen_log("mkfifo %s: %s", g->fifo_path, strerror(errno));
	}
	ret = gen_open_fifo(g);
	if (ret) {
		return ret;
	}
	/* Reset the state files in the hidden copy, before it shows again. */
	for (i = 0; i < g->nch; i++) {
		snprintf(path, sizeof(path), "%s/scan_elements/%s_en",
			 g->hidden_dir, g->ch[i].name);
		ret = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (ret >= 0) {
			if (write(ret, "0\n", 2) != 2) {
				gen_log("%s: short write", path);
			}
			close(ret);
		}
	}
	if (rename(g->hidden_dir, g->dev_dir)) {
		gen_log("rename %s: %s", g->hidden_dir, strerror(errno));
		return -errno;
	}
	if (gen_write_attr(g, "buffer/enable", "0\n")) {
		gen_log("cannot reset buffer/enable");
	}
	gen_drain_events(g, &junk);	/* our own writes */
	g->writer_open = false;
	g->pending_writes = 0;
	g->deferred = 0;
	g->vanished = false;
	gen_log("device back");
	return 0;
}

static int gen_setup_inotify(struct gen *g)
{
	char path[GEN_PATH_MAX];
	int ret;

	ret = gen_path(path, sizeof(path), g->dev_dir, "buffer");
	if (ret) {
		return ret;
	}
	g->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (g->ino_fd < 0) {
		gen_log("inotify: %s (falling back to polling only)",
			strerror(errno));
		return 0;
	}
	if (inotify_add_watch(g->ino_fd, path, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
		gen_log("inotify %s: %s (falling back to polling only)", path,
			strerror(errno));
		close(g->ino_fd);
		g->ino_fd = -1;
		return 0;
	}
	/*
	 * SIGIO on every event interrupts clock_nanosleep, so a change of
	 * buffer/enable is seen at once rather than at the next 1 ms poll: a
	 * real kfifo is reset synchronously, the FIFO here only as fast as
	 * this process reacts.
	 */
	if (fcntl(g->ino_fd, F_SETOWN, getpid()) ||
	    fcntl(g->ino_fd, F_SETFL, O_NONBLOCK | O_ASYNC)) {
		gen_log("inotify O_ASYNC: %s (polling every 1 ms)",
			strerror(errno));
	}
	return 0;
}

static int gen_hidden_path(struct gen *g)
{
	char copy[GEN_PATH_MAX];
	const char *base;
	char *slash;
	size_t len;
	int n;

	len = strlen(g->dev_dir);
	while (len > 1 && g->dev_dir[len - 1] == '/') {
		len--;
	}
	if (len >= sizeof(copy)) {
		return -ENAMETOOLONG;
	}
	memcpy(copy, g->dev_dir, len);
	copy[len] = '\0';
	slash = strrchr(copy, '/');
	if (!slash || slash == copy) {
		return -EINVAL;
	}
	*slash = '\0';
	base = slash + 1;
	/* Next to the devices directory, so that libiio's scan never sees it. */
	slash = strrchr(copy, '/');
	if (slash && slash != copy) {
		*slash = '\0';
	}
	n = snprintf(g->hidden_dir, sizeof(g->hidden_dir), "%s/.%s.vanished",
		     copy, base);
	if (n < 0 || (size_t)n >= sizeof(g->hidden_dir)) {
		return -ENAMETOOLONG;
	}
	return 0;
}

static void gen_usage(FILE *f)
{
	fputs("usage: iio_gen --dev SYSFS_DEV_DIR --fifo FIFO --input FILE\n"
	      "               [--scale S] [--rate HZ] [--stall-after N]\n"
	      "               [--vanish-after N] [--return-after-ms M]\n"
	      "               [--count-file PATH] [--unused-bits sign|zero|ones]\n"
	      "               [--rt-prio P] [--verbose]\n"
	      "SIGUSR1 stalls (stop writing, stay alive), SIGRTMIN resumes;\n"
	      "SIGUSR2 makes the device vanish now (it returns after\n"
	      "--return-after-ms, default 1000).\n", f);
}

static int gen_parse_ll(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return (errno || end == s || *end || *out < 0) ? -EINVAL : 0;
}

static int gen_parse_args(struct gen *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "fifo", required_argument, NULL, 'f' },
		{ "input", required_argument, NULL, 'i' },
		{ "scale", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "stall-after", required_argument, NULL, 'S' },
		{ "vanish-after", required_argument, NULL, 'V' },
		{ "return-after-ms", required_argument, NULL, 'R' },
		{ "count-file", required_argument, NULL, 'c' },
		{ "unused-bits", required_argument, NULL, 'u' },
		{ "rt-prio", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long long n;
	char *end;
	double v;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			g->dev_dir = optarg;
			break;
		case 'f':
			g->fifo_path = optarg;
			break;
		case 'i':
			g->input_path = optarg;
			break;
		case 's':
		case 'r':
			errno = 0;
			v = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(v > 0) ||
			    !isfinite(v)) {
				gen_log("--%s: need a positive number",
					opt == 's' ? "scale" : "rate");
				return -EINVAL;
			}
			if (opt == 's') {
				g->opt_scale = v;
			} else {
				g->opt_rate = v;
			}
			break;
		case 'S':
		case 'V':
		case 'R':
			if (gen_parse_ll(optarg, opt == 'S' ? &g->stall_after :
					 opt == 'V' ? &g->vanish_after :
					 &g->return_after_ms)) {
				gen_log("bad number: %s", optarg);
				return -EINVAL;
			}
			break;
		case 'c':
			g->count_path = optarg;
			break;
		case 'p':
			if (gen_parse_ll(optarg, &n) || n > 99) {
				gen_log("--rt-prio: 0 (off) to 99");
				return -EINVAL;
			}
			g->rt_prio = (int)n;
			break;
		case 'u':
			if (!strcmp(optarg, "sign")) {
				g->unused = GEN_UNUSED_SIGN;
			} else if (!strcmp(optarg, "zero")) {
				g->unused = GEN_UNUSED_ZERO;
			} else if (!strcmp(optarg, "ones")) {
				g->unused = GEN_UNUSED_ONES;
			} else {
				gen_log("--unused-bits: sign, zero or ones");
				return -EINVAL;
			}
			break;
		case 'v':
			g->verbose = true;
			break;
		case 'h':
			gen_usage(stdout);
			exit(0);
		default:
			gen_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc || !g->dev_dir || !g->fifo_path || !g->input_path) {
		gen_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/*
 * SCHED_FIFO (priority 1 by default): under CFS a wake-up can wait for the
 * next scheduler tick, milliseconds in which a new reader may read frames
 * of the previous session before the FIFO is drained.
 */
static void gen_set_rt(const struct gen *g)
{
	struct sched_param sp = { .sched_priority = g->rt_prio };

	if (g->rt_prio > 0 && sched_setscheduler(0, SCHED_FIFO, &sp)) {
		gen_log("SCHED_FIFO %d: %s (staying SCHED_OTHER)", g->rt_prio,
			strerror(errno));
	}
}

static void gen_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = gen_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: a signal cuts the sleep */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGRTMIN, &sa, NULL);
	sigaction(SIGIO, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void gen_handle_signals(struct gen *g, int64_t now)
{
	int stall = gen_sig_stall;

	gen_sig_stall = 0;
	if (stall == 1 && !g->stalled) {
		g->stalled = true;
		gen_log("stalled after %llu frames", (unsigned long long)g->sent);
	} else if (stall == 2 && g->stalled) {
		g->stalled = false;
		g->stall_after = -1;	/* a resume outlives --stall-after */
		gen_log("resumed after %llu frames", (unsigned long long)g->sent);
		if (g->running && now >= g->t0) {
			/* The frames of the stall are lost, time goes on. */
			uint64_t due = (uint64_t)floor((double)(now - g->t0) *
						       g->rate / 1e9);

			if (due > g->k) {
				g->dropped += due - g->k;
				g->k = due;
			}
		}
	}
	if (gen_sig_vanish) {
		gen_sig_vanish = 0;
		if (!g->vanished) {
			gen_vanish(g);
		}
	}
}

static int64_t gen_next_wake(const struct gen *g, int64_t now)
{
	int64_t wake = now + GEN_TICK_NS;

	if (g->running && !g->stalled && !g->vanished) {
		int64_t due = gen_due(g, g->k + g->chunk - 1);

		if (due < wake) {
			wake = due;
		}
	}
	if (g->vanished && g->return_at < wake) {
		wake = g->return_at;
	}
	return wake;
}

int main(int argc, char **argv)
{
	struct gen g;
	int ret;

	memset(&g, 0, sizeof(g));
	g.opt_scale = 1.0;
	g.stall_after = -1;
	g.vanish_after = -1;
	g.return_after_ms = 1000;
	g.rt_prio = 1;
	g.fifo_fd = -1;
	g.ino_fd = -1;
	if (gen_parse_args(&g, argc, argv)) {
		return 2;
	}
	gen_install_signals();
	gen_set_rt(&g);
	ret = gen_hidden_path(&g);
	if (!ret) {
		ret = gen_scan_channels(&g);
	}
	if (!ret) {
		ret = gen_load_input(&g);
	}
	if (!ret) {
		ret = gen_open_fifo(&g);
	}
	if (!ret) {
		ret = gen_setup_inotify(&g);
	}
	if (ret) {
		return 1;
	}
	gen_write_count(&g);	/* "0 off": the generator is ready */

	while (!gen_stop) {
		int64_t now = gen_now();
		const char *state = gen_state(&g);
		uint64_t sent = g.sent;

		gen_handle_signals(&g, now);
		if (g.vanished && now >= g.return_at) {
			if (gen_return(&g)) {
				return 1;
			}
		}
		if (!g.vanished) {
			gen_check_enable(&g);
		}
		if (g.running && !g.stalled && !g.vanished) {
			gen_produce(&g, gen_now());
			if (g.stall_after >= 0 && !g.stalled &&
			    g.sent >= (uint64_t)g.stall_after) {
				g.stalled = true;
				gen_log("stalled after %llu frames",
					(unsigned long long)g.sent);
			}
			if (g.vanish_after >= 0 && !g.vanish_done &&
			    g.sent >= (uint64_t)g.vanish_after) {
				gen_vanish(&g);
			}
		}
		if (g.sent != sent || strcmp(gen_state(&g), state)) {
			gen_write_count(&g);
		}
		if (gen_stop) {
			break;
		}
		gen_sleep_until(gen_next_wake(&g, gen_now()));
	}

	if (g.vanished) {
		g.return_at = 0;
		gen_return(&g);
	}
	if (g.dropped) {
		gen_log("%llu frames dropped in all", (unsigned long long)g.dropped);
	}
	gen_write_count(&g);
	if (g.fifo_fd >= 0) {
		close(g.fifo_fd);
	}
	if (g.ino_fd >= 0) {
		close(g.ino_fd);
	}
	free(g.words);
	free(g.buf);
	free(g.pend);
	return 0;
}
