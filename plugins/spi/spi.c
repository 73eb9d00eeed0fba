/* SPDX-License-Identifier: MIT */
/*
 * SPI coil: sets the stimulator's intensity through a Linux spidev device,
 * typically a DAC (MCP4921, MCP4822, AD5320, ...) driving the stimulator's
 * analogue intensity input, and optionally fires a pulse by an SPI
 * command.
 *
 * Every frame is one integer of frame_bits bits, sent most significant
 * bit first as frame_bits / bits_per_word SPI words. The intensity frame
 * is command_bits with a DAC code in the value field (value_bits wide, its
 * least significant bit at value_shift); the code is the intensity mapped
 * linearly from 0..100 % onto code_min..code_max. arm_frame, disarm_frame
 * and trigger_frame are fixed frames given in hex.
 *
 * open checks every key against the others and refuses what cannot be
 * sent, naming the key; then it sets up the bus and writes the disarm
 * frame, so the stimulator starts at a safe level. Everything the RT ops
 * send is packed in open, except the intensity frame, which pulse packs
 * into a buffer of the handle. Each RT op is at most one SPI_IOC_MESSAGE
 * ioctl: pulse sends [intensity frame] [trigger frame] as one message,
 * with chip select released between the two so the device latches each.
 *
 * A failed transfer is returned to the host (which disarms) and latched
 * as a fault in status until close: a bus that lost a frame leaves the
 * stimulator's level unknown.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/spi/spidev.h>

#include <rpmsd/coil.h>

#define SPI_FRAME_MAX_BYTES 8	/* 3 words of 9..10 bits take 6 bytes */
#define SPI_CODE_UNKNOWN (-1LL)

struct spi_frame {
	uint8_t buf[SPI_FRAME_MAX_BYTES];
	uint32_t value;			/* the frame as an integer, for logs */
};

struct spi {
	const struct rpmsd_coil_host *host;
	const char *device;
	int fd;

	long long mode;
	long long speed_hz;
	unsigned int bits_per_word;
	unsigned int frame_bits;
	unsigned int n_words;
	unsigned int word_bytes;	/* 1, 2 or 4: spidev's buffer layout */
	uint32_t len;			/* bytes of one frame in the buffer */
	unsigned int value_bits;
	unsigned int value_shift;
	uint32_t command;
	long long code_min;
	long long code_max;
	bool write_every_pulse;
	bool has_arm;
	bool has_trigger;

	struct spi_frame level;		/* packed by pulse */
	struct spi_frame arm;
	struct spi_frame disarm;
	struct spi_frame trigger;
	/* Messages, each a fixed array spidev reads: only level's bytes change. */
	struct spi_ioc_transfer msg_level[1];
	struct spi_ioc_transfer msg_level_trigger[2];
	struct spi_ioc_transfer msg_trigger[1];
	struct spi_ioc_transfer msg_arm[1];
	struct spi_ioc_transfer msg_disarm[1];

	/* RT state: touched only by the stim thread (and open/close). */
	bool armed;
	long long last_code;		/* SPI_CODE_UNKNOWN: write it next pulse */
	int fault;			/* first failed transfer's -errno, latched */
};

static const struct rpmsd_coil_key spi_keys[] = {
	{ .name = "device", .type = RPMSD_COIL_KEY_STRING, .def = "/dev/spidev0.0", .unit = "",
	  .doc = "spidev device node of the DAC or stimulator" },
	{ .name = "mode", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 3, .unit = "",
	  .doc = "SPI mode (CPOL << 1 | CPHA); other mode flags keep the device's setting" },
	{ .name = "speed_hz", .type = RPMSD_COIL_KEY_INT, .def = "1000000",
	  .min = 1000, .max = 100000000, .unit = "Hz",
	  .doc = "SPI clock (the controller may round it down)" },
	{ .name = "bits_per_word", .type = RPMSD_COIL_KEY_INT, .def = "8",
	  .min = 8, .max = 32, .unit = "bits",
	  .doc = "SPI word size; frame_bits must be a multiple of it" },
	{ .name = "frame_bits", .type = RPMSD_COIL_KEY_INT, .def = "16",
	  .min = 8, .max = 32, .unit = "bits",
	  .doc = "bits of one frame (one chip-select period), sent MSB first" },
	{ .name = "value_bits", .type = RPMSD_COIL_KEY_INT, .def = "12",
	  .min = 1, .max = 32, .unit = "bits",
	  .doc = "width of the DAC code field in the intensity frame" },
	{ .name = "value_shift", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 31, .unit = "bits",
	  .doc = "bit position of the DAC code's least significant bit in the frame" },
	{ .name = "command_bits", .type = RPMSD_COIL_KEY_STRING, .def = "0x3000", .unit = "",
	  .doc = "fixed bits OR'ed into the intensity frame (decimal or 0x hex; 0x3000: MCP4921 1x gain, active)" },
	{ .name = "code_min", .type = RPMSD_COIL_KEY_INT, .def = "0",
	  .min = 0, .max = 4294967295.0, .unit = "",
	  .doc = "DAC code for 0 % of stimulator output" },
	{ .name = "code_max", .type = RPMSD_COIL_KEY_INT, .def = "4095",
	  .min = 0, .max = 4294967295.0, .unit = "",
	  .doc = "DAC code for 100 % of stimulator output (may be below code_min)" },
	{ .name = "write_every_pulse", .type = RPMSD_COIL_KEY_BOOL, .def = "true", .unit = "",
	  .doc = "write the intensity before every pulse (false: only when it changes)" },
	{ .name = "trigger_frame", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "hex frame that fires a pulse, sent after the intensity (empty: pulse only sets the intensity)" },
	{ .name = "arm_frame", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "hex frame sent on arm (empty: none)" },
	{ .name = "disarm_frame", .type = RPMSD_COIL_KEY_STRING, .def = "", .unit = "",
	  .doc = "hex frame sent at open, on disarm and at close (empty: the intensity frame of code_min)" },
};

static uint32_t spi_mask(unsigned int bits)
{
	return bits >= 32 ? UINT32_MAX : (UINT32_C(1) << bits) - 1;
}

/* Lay @value out as spidev wants it: MSB-first words, each in host order. */
static void spi_pack(const struct spi *s, uint32_t value, struct spi_frame *f)
{
	uint32_t wmask = spi_mask(s->bits_per_word);
	unsigned int i;

	f->value = value;
	for (i = 0; i < s->n_words; i++) {
		unsigned int shift = s->bits_per_word * (s->n_words - 1 - i);
		uint32_t w = (uint32_t)(((uint64_t)value >> shift) & wmask);
		uint8_t *p = f->buf + i * s->word_bytes;

		if (s->word_bytes == 1) {
			*p = (uint8_t)w;
		} else if (s->word_bytes == 2) {
			uint16_t w16 = (uint16_t)w;

			memcpy(p, &w16, sizeof(w16));
		} else {
			memcpy(p, &w, sizeof(w));
		}
	}
}

static uint32_t spi_level_frame(const struct spi *s, long long code)
{
	return s->command | (uint32_t)((uint64_t)code << s->value_shift);
}

/*
 * Parse a 32-bit unsigned integer: hex with an optional 0x prefix when
 * @hex_only, else decimal, or hex with a 0x prefix. No octal: "0100" in a
 * config file means one hundred.
 * @return 0, -EINVAL (not a number) or -ERANGE (more than 32 bits)
 */
static int spi_parse_u32(const char *text, bool hex_only, uint32_t *out)
{
	const char *p = text;
	int base = hex_only ? 16 : 10;
	unsigned long long v;
	char *end;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		base = 16;
	}
	/* strtoull would take a sign, blanks or a second 0x: refuse them. */
	if (!((*p >= '0' && *p <= '9') || (base == 16 && ((*p >= 'a' && *p <= 'f') ||
							  (*p >= 'A' && *p <= 'F'))))) {
		return -EINVAL;
	}
	if (base == 16 && (p[1] == 'x' || p[1] == 'X')) {
		return -EINVAL;
	}
	errno = 0;
	v = strtoull(p, &end, base);
	if (*end != '\0') {
		return -EINVAL;
	}
	if (errno == ERANGE || v > UINT32_MAX) {
		return -ERANGE;
	}
	*out = (uint32_t)v;
	return 0;
}

/* A hex frame key: "" leaves @set false, else it must fit frame_bits. */
static int spi_parse_frame(struct spi *s, const char *key, const char *text, bool *set,
			   struct spi_frame *f)
{
	uint32_t v;
	int ret;

	*set = false;
	if (!text[0]) {
		return 0;
	}
	ret = spi_parse_u32(text, true, &v);
	if (ret < 0) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR,
			     "%s = '%s': not a hex frame (hex digits, 0x optional, at most 32 bits)",
			     key, text);
		return -EINVAL;
	}
	if (v & ~spi_mask(s->frame_bits)) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR,
			     "%s = '%s' (0x%X): does not fit in frame_bits = %u (max 0x%X)", key,
			     text, v, s->frame_bits, spi_mask(s->frame_bits));
		return -ERANGE;
	}
	spi_pack(s, v, f);
	*set = true;
	return 0;
}

static int spi_read_keys(struct spi *s, const char **command, const char **trigger,
			 const char **arm, const char **disarm)
{
	const struct rpmsd_coil_host *h = s->host;
	long long v[4] = { 0 };
	int ret;

	ret = h->get_string(h->ctx, "device", &s->device);
	if (ret == 0) {
		ret = h->get_int(h->ctx, "mode", &s->mode);
	}
	if (ret == 0) {
		ret = h->get_int(h->ctx, "speed_hz", &s->speed_hz);
	}
	if (ret == 0) {
		ret = h->get_int(h->ctx, "bits_per_word", &v[0]);
	}
	if (ret == 0) {
		ret = h->get_int(h->ctx, "frame_bits", &v[1]);
	}
	if (ret == 0) {
		ret = h->get_int(h->ctx, "value_bits", &v[2]);
	}
	if (ret == 0) {
		ret = h->get_int(h->ctx, "value_shift", &v[3]);
	}
	if (ret == 0) {
		ret = h->get_string(h->ctx, "command_bits", command);
	}
	if (ret == 0) {
		ret = h->get_int(h->ctx, "code_min", &s->code_min);
	}
	if (ret == 0) {
		ret = h->get_int(h->ctx, "code_max", &s->code_max);
	}
	if (ret == 0) {
		ret = h->get_bool(h->ctx, "write_every_pulse", &s->write_every_pulse);
	}
	if (ret == 0) {
		ret = h->get_string(h->ctx, "trigger_frame", trigger);
	}
	if (ret == 0) {
		ret = h->get_string(h->ctx, "arm_frame", arm);
	}
	if (ret == 0) {
		ret = h->get_string(h->ctx, "disarm_frame", disarm);
	}
	if (ret < 0) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR, "cannot read the configuration: %s",
		       strerror(-ret));
		return ret;
	}
	/* The host checked each against its range in spi_keys. */
	s->bits_per_word = (unsigned int)v[0];
	s->frame_bits = (unsigned int)v[1];
	s->value_bits = (unsigned int)v[2];
	s->value_shift = (unsigned int)v[3];
	return 0;
}

/* What no single key's range can tell: the keys against each other. */
static int spi_check_layout(struct spi *s, const char *command)
{
	const struct rpmsd_coil_host *h = s->host;
	uint32_t field, cmax;
	int ret;

	if (!s->device[0]) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR, "device = '': no spidev device given");
		return -EINVAL;
	}
	if (s->frame_bits % s->bits_per_word != 0) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "frame_bits = %u: not a whole number of bits_per_word = %u words",
		       s->frame_bits, s->bits_per_word);
		return -EINVAL;
	}
	if (s->value_shift + s->value_bits > s->frame_bits) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "value_bits = %u at value_shift = %u: the value field reaches bit %u, beyond frame_bits = %u",
		       s->value_bits, s->value_shift, s->value_shift + s->value_bits - 1,
		       s->frame_bits);
		return -ERANGE;
	}
	field = spi_mask(s->value_bits) << s->value_shift;
	ret = spi_parse_u32(command, false, &s->command);
	if (ret < 0) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "command_bits = '%s': not a 32-bit integer (decimal, or hex with 0x)",
		       command);
		return -EINVAL;
	}
	if (s->command & ~spi_mask(s->frame_bits)) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "command_bits = '%s' (0x%X): does not fit in frame_bits = %u (max 0x%X)",
		       command, s->command, s->frame_bits, spi_mask(s->frame_bits));
		return -ERANGE;
	}
	/* Overlapping bits would OR into the code and change the intensity. */
	if (s->command & field) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "command_bits = '%s' (0x%X): bits 0x%X overlap the value field (mask 0x%X)",
		       command, s->command, s->command & field, field);
		return -EINVAL;
	}
	cmax = spi_mask(s->value_bits);
	if (s->code_min > (long long)cmax) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "code_min = %lld: does not fit value_bits = %u (max %u)", s->code_min,
		       s->value_bits, cmax);
		return -ERANGE;
	}
	if (s->code_max > (long long)cmax) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "code_max = %lld: does not fit value_bits = %u (max %u)", s->code_max,
		       s->value_bits, cmax);
		return -ERANGE;
	}
	if (s->code_min == s->code_max) {
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "code_max = %lld: equal to code_min, every intensity would send the same code",
		       s->code_max);
		return -EINVAL;
	}
	s->n_words = s->frame_bits / s->bits_per_word;
	s->word_bytes = s->bits_per_word <= 8 ? 1 : s->bits_per_word <= 16 ? 2 : 4;
	s->len = s->n_words * s->word_bytes;
	return 0;
}

static void spi_msg_init(struct spi_ioc_transfer *t, const struct spi *s,
			 const struct spi_frame *f, bool cs_change)
{
	/* speed_hz and bits_per_word 0: the device's, as set in open. */
	memset(t, 0, sizeof(*t));
	t->tx_buf = (uintptr_t)f->buf;
	t->len = s->len;
	t->cs_change = cs_change;
}

static void spi_msgs_init(struct spi *s)
{
	spi_msg_init(&s->msg_level[0], s, &s->level, false);
	/* Release chip select between the two: the device latches each frame. */
	spi_msg_init(&s->msg_level_trigger[0], s, &s->level, true);
	spi_msg_init(&s->msg_level_trigger[1], s, &s->trigger, false);
	spi_msg_init(&s->msg_trigger[0], s, &s->trigger, false);
	spi_msg_init(&s->msg_arm[0], s, &s->arm, false);
	spi_msg_init(&s->msg_disarm[0], s, &s->disarm, false);
}

/*
 * Send a message of @n transfers (1 or 2) in one ioctl. RT-safe. A failure
 * is latched in s->fault.
 */
static int spi_send(struct spi *s, struct spi_ioc_transfer *msg, unsigned int n)
{
	/* Constant request codes: SPI_IOC_MESSAGE(n) of a variable is a VLA type. */
	unsigned long req = n == 2 ? SPI_IOC_MESSAGE(2) : SPI_IOC_MESSAGE(1);
	int ret;

	do {
		ret = ioctl(s->fd, req, msg);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		ret = -errno;
	} else if ((uint32_t)ret != n * s->len) {
		ret = -EIO;	/* a short message: the device saw a partial frame */
	} else {
		return 0;
	}
	if (!s->fault) {
		s->fault = ret;
	}
	return ret;
}

/* Set CPOL/CPHA and MSB first; keep flags the device tree set (cs-high...). */
static int spi_setup_bus(struct spi *s)
{
	const struct rpmsd_coil_host *h = s->host;
	uint32_t mode = 0, speed = (uint32_t)s->speed_hz;
	uint8_t bits = (uint8_t)s->bits_per_word;
	int err;

	if (ioctl(s->fd, SPI_IOC_RD_MODE32, &mode) < 0) {
		err = errno;
		h->log(h->ctx, RPMSD_COIL_LOG_ERR, "device = %s: SPI_IOC_RD_MODE32 failed: %s%s",
		       s->device, strerror(err), err == ENOTTY ? " (not a spidev device?)" : "");
		return -err;
	}
	mode = (mode & ~(uint32_t)(SPI_CPOL | SPI_CPHA | SPI_LSB_FIRST)) | (uint32_t)s->mode;
	if (ioctl(s->fd, SPI_IOC_WR_MODE32, &mode) < 0) {
		err = errno;
		h->log(h->ctx, RPMSD_COIL_LOG_ERR, "mode = %lld: %s refused it (mode word 0x%X): %s",
		       s->mode, s->device, mode, strerror(err));
		return -err;
	}
	if (ioctl(s->fd, SPI_IOC_WR_MAX_SPEED_HZ, &speed) < 0) {
		err = errno;
		h->log(h->ctx, RPMSD_COIL_LOG_ERR, "speed_hz = %lld: %s refused it: %s",
		       s->speed_hz, s->device, strerror(err));
		return -err;
	}
	if (ioctl(s->fd, SPI_IOC_WR_BITS_PER_WORD, &bits) < 0) {
		err = errno;
		h->log(h->ctx, RPMSD_COIL_LOG_ERR,
		       "bits_per_word = %u: %s refused it (the controller may not support it): %s",
		       s->bits_per_word, s->device, strerror(err));
		return -err;
	}
	return 0;
}

static int spi_open(const struct rpmsd_coil_host *host, void **out)
{
	const char *command = "", *trigger = "", *arm = "", *disarm = "";
	struct spi *s = calloc(1, sizeof(*s));
	bool set = false;
	int ret;

	if (!s) {
		return -ENOMEM;
	}
	s->host = host;
	s->fd = -1;
	s->last_code = SPI_CODE_UNKNOWN;
	ret = spi_read_keys(s, &command, &trigger, &arm, &disarm);
	if (ret == 0) {
		ret = spi_check_layout(s, command);
	}
	if (ret == 0) {
		ret = spi_parse_frame(s, "trigger_frame", trigger, &s->has_trigger, &s->trigger);
	}
	if (ret == 0) {
		ret = spi_parse_frame(s, "arm_frame", arm, &s->has_arm, &s->arm);
	}
	if (ret == 0) {
		ret = spi_parse_frame(s, "disarm_frame", disarm, &set, &s->disarm);
	}
	if (ret < 0) {
		goto err_free;
	}
	if (!set) {
		spi_pack(s, spi_level_frame(s, s->code_min), &s->disarm);
	}
	spi_msgs_init(s);

	s->fd = open(s->device, O_RDWR | O_CLOEXEC);
	if (s->fd < 0) {
		ret = -errno;
		host->log(host->ctx, RPMSD_COIL_LOG_ERR, "device = %s: cannot open: %s", s->device,
			  strerror(-ret));
		goto err_free;
	}
	ret = spi_setup_bus(s);
	if (ret < 0) {
		goto err_close;
	}
	/* Start safe, whatever level the previous run left behind. */
	ret = spi_send(s, s->msg_disarm, 1);
	if (ret < 0) {
		host->log(host->ctx, RPMSD_COIL_LOG_ERR, "disarm_frame 0x%X: writing it to %s failed: %s",
			  s->disarm.value, s->device, strerror(-ret));
		goto err_close;
	}
	host->log(host->ctx, RPMSD_COIL_LOG_INFO,
		  "%s: mode %lld, %lld Hz, %u-bit words, %u-bit frames; 0 %% = 0x%X, 100 %% = 0x%X, disarm 0x%X, arm %s, trigger %s",
		  s->device, s->mode, s->speed_hz, s->bits_per_word, s->frame_bits,
		  spi_level_frame(s, s->code_min), spi_level_frame(s, s->code_max), s->disarm.value,
		  s->has_arm ? arm : "none", s->has_trigger ? trigger : "none (intensity only)");
	*out = s;
	return 0;

err_close:
	close(s->fd);
err_free:
	free(s);
	return ret;
}

static int spi_arm(void *h)
{
	struct spi *s = h;

	/* Whatever arm_frame does to the device, write the level again. */
	s->last_code = SPI_CODE_UNKNOWN;
	if (s->has_arm) {
		int ret = spi_send(s, s->msg_arm, 1);

		if (ret < 0) {
			return ret;
		}
	}
	s->armed = true;
	return 0;
}

static int spi_disarm(void *h)
{
	struct spi *s = h;

	s->armed = false;
	s->last_code = SPI_CODE_UNKNOWN;
	return spi_send(s, s->msg_disarm, 1);
}

static int spi_pulse(void *h, double intensity_pct, uint32_t width_us)
{
	struct spi *s = h;
	long long code, lo, hi;
	bool write;
	int ret;

	/* The stimulator shapes its own pulse: the width is not ours to set. */
	(void)width_us;
	/* A level set while disarmed would be fired by an external trigger. */
	if (!s->armed) {
		return -EPERM;
	}
	if (!(intensity_pct >= 0.0 && intensity_pct <= 100.0)) {
		return -EINVAL;
	}
	code = llround((double)s->code_min +
		       intensity_pct / 100.0 * (double)(s->code_max - s->code_min));
	lo = s->code_min < s->code_max ? s->code_min : s->code_max;
	hi = s->code_min < s->code_max ? s->code_max : s->code_min;
	code = code < lo ? lo : code > hi ? hi : code;

	write = s->write_every_pulse || code != s->last_code;
	if (write) {
		spi_pack(s, spi_level_frame(s, code), &s->level);
	}
	if (write && s->has_trigger) {
		ret = spi_send(s, s->msg_level_trigger, 2);
	} else if (write) {
		ret = spi_send(s, s->msg_level, 1);
	} else if (s->has_trigger) {
		ret = spi_send(s, s->msg_trigger, 1);
	} else {
		ret = 0;	/* the DAC already holds this level */
	}
	s->last_code = ret < 0 ? SPI_CODE_UNKNOWN : code;
	return ret;
}

static int spi_status(void *h, struct rpmsd_coil_status *st)
{
	const struct spi *s = h;

	st->temperature_c = NAN;
	st->ready = true;
	st->fault = s->fault != 0;
	st->fault_code = s->fault;
	st->estop = false;
	return 0;
}

static void spi_close(void *h)
{
	struct spi *s = h;
	int ret;

	if (!s) {
		return;
	}
	s->armed = false;
	ret = spi_send(s, s->msg_disarm, 1);
	if (ret < 0) {
		s->host->log(s->host->ctx, RPMSD_COIL_LOG_ERR,
			     "disarm_frame 0x%X at close: writing it to %s failed: %s; the stimulator may hold its last intensity",
			     s->disarm.value, s->device, strerror(-ret));
	}
	close(s->fd);
	free(s);
}

static const struct rpmsd_coil_descriptor spi_descriptor = {
	.abi_major = RPMSD_COIL_ABI_MAJOR,
	.abi_minor = RPMSD_COIL_ABI_MINOR,
	.struct_size = sizeof(struct rpmsd_coil_descriptor),
	.name = "spi",
	.description = "spidev coil: intensity through a DAC or command frame, optional SPI trigger",
	.keys = spi_keys,
	.n_keys = sizeof(spi_keys) / sizeof(spi_keys[0]),
	.ops = {
		.open = spi_open,
		.arm = spi_arm,
		.disarm = spi_disarm,
		.pulse = spi_pulse,
		.status = spi_status,
		.close = spi_close,
	},
};

RPMSD_COIL_PLUGIN(&spi_descriptor)
