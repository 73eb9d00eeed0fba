/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for test_spi.py: answers the spidev set-up ioctls that
 * umockdev's spidev replay does not implement, and passes everything else
 * (SPI_IOC_MESSAGE above all) on to umockdev.
 *
 * umockdev 0.17's IoctlSpiHandler replays SPI_IOC_MESSAGE transfers only;
 * SPI_IOC_{RD,WR}_{MODE,MODE32,LSB_FIRST,BITS_PER_WORD,MAX_SPEED_HZ} get
 * ENOTTY (src/umockdev-spi.vala, "Unhandled currently"). This shim keeps
 * a mode/speed/word-size state of its own, logs every write so the test
 * can assert what the plugin set, and can refuse one of them to test the
 * plugin's error path. It also logs each SPI_IOC_MESSAGE it passes on,
 * with umockdev's answer: a transcript for the test's failure messages
 * (umockdev's replay, not this log, is what checks the bytes).
 *
 * Environment:
 *   SPIDEV_SHIM_LOG    file to append "NAME value" lines to (optional),
 *                      and "MESSAGE hex[,hex] = result" lines
 *   SPIDEV_SHIM_MODE   initial 32-bit mode word, as a driver with a device
 *                      tree's spi-cs-high would report it (default 0)
 *   SPIDEV_SHIM_FAIL   NAME of one ioctl to fail with EINVAL, e.g.
 *                      WR_MAX_SPEED_HZ
 *
 * It must come before libumockdev-preload in LD_PRELOAD (umockdev-run
 * appends its own library to an existing LD_PRELOAD), so RTLD_NEXT finds
 * umockdev's ioctl.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/spi/spidev.h>

typedef int (*shim_ioctl_fn)(int fd, unsigned long request, ...);

static uint32_t shim_mode;
static uint32_t shim_speed = 500000;
static uint8_t shim_bits = 8;
static int shim_inited;

static void shim_init(void)
{
	const char *m = getenv("SPIDEV_SHIM_MODE");

	if (shim_inited) {
		return;
	}
	shim_inited = 1;
	if (m) {
		shim_mode = (uint32_t)strtoul(m, NULL, 0);
	}
}

static void shim_write(const char *line, size_t len)
{
	const char *path = getenv("SPIDEV_SHIM_LOG");
	int fd;

	if (!path) {
		return;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		return;
	}
	if (write(fd, line, len) != (ssize_t)len) {
		len = 0;	/* nothing to do: the test sees a missing line */
	}
	close(fd);
}

static void shim_log(const char *name, unsigned long value)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%s %lu\n", name, value);

	if (n > 0 && (size_t)n < sizeof(line)) {
		shim_write(line, (size_t)n);
	}
}

/* "MESSAGE 34cd,3000 = 4": each transfer's tx bytes, then the result. */
static void shim_log_message(const struct spi_ioc_transfer *x, unsigned int n, int ret,
			     int err)
{
	char line[512];
	size_t used = 0;
	unsigned int i, j;

	used += (size_t)snprintf(line, sizeof(line), "MESSAGE ");
	for (i = 0; i < n && used < sizeof(line) - 80; i++) {
		const uint8_t *tx = (const uint8_t *)(uintptr_t)x[i].tx_buf;

		for (j = 0; tx && j < x[i].len && used < sizeof(line) - 80; j++) {
			used += (size_t)snprintf(line + used, sizeof(line) - used, "%02x", tx[j]);
		}
		if (i + 1 < n) {
			line[used++] = ',';
		}
	}
	used += (size_t)snprintf(line + used, sizeof(line) - used, " = %d%s%s\n", ret,
				 ret < 0 ? " " : "", ret < 0 ? strerror(err) : "");
	shim_write(line, used < sizeof(line) ? used : sizeof(line) - 1);
}

static int shim_fail(const char *name)
{
	const char *f = getenv("SPIDEV_SHIM_FAIL");

	if (f && strcmp(f, name) == 0) {
		errno = EINVAL;
		return 1;
	}
	return 0;
}

/* @return 1 when @request was a set-up ioctl (and *ret its result), else 0. */
static int shim_setup(unsigned long request, void *arg, int *ret)
{
	const char *name;

	shim_init();
	*ret = 0;
	switch (request) {
	case SPI_IOC_RD_MODE:
		*(uint8_t *)arg = (uint8_t)shim_mode;
		return 1;
	case SPI_IOC_RD_MODE32:
		*(uint32_t *)arg = shim_mode;
		return 1;
	case SPI_IOC_RD_LSB_FIRST:
		*(uint8_t *)arg = (shim_mode & SPI_LSB_FIRST) != 0;
		return 1;
	case SPI_IOC_RD_MAX_SPEED_HZ:
		*(uint32_t *)arg = shim_speed;
		return 1;
	case SPI_IOC_RD_BITS_PER_WORD:
		*(uint8_t *)arg = shim_bits;
		return 1;
	case SPI_IOC_WR_MODE:
		name = "WR_MODE";
		break;
	case SPI_IOC_WR_MODE32:
		name = "WR_MODE32";
		break;
	case SPI_IOC_WR_LSB_FIRST:
		name = "WR_LSB_FIRST";
		break;
	case SPI_IOC_WR_MAX_SPEED_HZ:
		name = "WR_MAX_SPEED_HZ";
		break;
	case SPI_IOC_WR_BITS_PER_WORD:
		name = "WR_BITS_PER_WORD";
		break;
	default:
		return 0;
	}
	if (shim_fail(name)) {
		*ret = -1;
		return 1;
	}
	switch (request) {
	case SPI_IOC_WR_MODE:
		shim_mode = (shim_mode & ~0xffu) | *(uint8_t *)arg;
		shim_log(name, *(uint8_t *)arg);
		break;
	case SPI_IOC_WR_MODE32:
		shim_mode = *(uint32_t *)arg;
		shim_log(name, shim_mode);
		break;
	case SPI_IOC_WR_LSB_FIRST:
		shim_mode = *(uint8_t *)arg ? (shim_mode | SPI_LSB_FIRST) : (shim_mode & ~SPI_LSB_FIRST);
		shim_log(name, *(uint8_t *)arg);
		break;
	case SPI_IOC_WR_MAX_SPEED_HZ:
		shim_speed = *(uint32_t *)arg;
		shim_log(name, shim_speed);
		break;
	default:
		shim_bits = *(uint8_t *)arg;
		shim_log(name, shim_bits);
		break;
	}
	return 1;
}

__attribute__((visibility("default"))) int ioctl(int fd, unsigned long request, ...);
int ioctl(int fd, unsigned long request, ...)
{
	static shim_ioctl_fn next;
	void *arg;
	va_list ap;
	int ret;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (shim_setup(request, arg, &ret)) {
		return ret;
	}
	if (!next) {
		*(void **)&next = dlsym(RTLD_NEXT, "ioctl");
		if (!next) {
			errno = ENOSYS;
			return -1;
		}
	}
	ret = next(fd, request, arg);
	if (_IOC_TYPE(request) == SPI_IOC_MAGIC && _IOC_NR(request) == 0 &&
	    _IOC_DIR(request) == _IOC_WRITE) {
		int err = errno;

		shim_log_message(arg, _IOC_SIZE(request) / sizeof(struct spi_ioc_transfer), ret,
				 err);
		errno = err;
	}
	return ret;
}
