/* SPDX-License-Identifier: MIT */
/*
 * rig-mon: timestamps every edge of some GPIO input lines, for the VM rig
 * (tests/rig, docs/rig.md).
 *
 *   rig-mon CHIP OUTFILE NAME:rising|falling|both...
 *
 * Requests each named line of CHIP (gpiod_chip_open_lookup: name, path,
 * label or number) for edge events of the given kind with consumer
 * "rig-mon", writes one line per line once requested, "<mono_ns> <NAME> init
 * <0|1>", then one line per edge, "<kernel_ts_ns> <NAME> rise|fall",
 * flushed as it goes, until SIGTERM or SIGINT. Exit status 0, or 1 when a
 * line cannot be requested.
 *
 * Why: rpmsd's trigger and enable outputs cannot give edge events
 * themselves (an output is not an input, and a requested line is busy), so
 * the rig wires each of them back to inputs (gpio-sim's test loopback,
 * tests/rig/kmod/rig_loopback.h; a wire on a real bench) and watches those.
 * The timestamps are the kernel's (CLOCK_MONOTONIC since Linux 5.7), taken
 * when the input's interrupt is handled, so they compare with rpmsd's
 * t_mono_ns and with the gpio plugin's e-stop log.
 *
 * Why one line per edge kind: for a both-edge request the kernel tells a
 * rise from a fall by reading the level when its interrupt thread runs, so
 * a pulse shorter than that thread's delay (easily a few ms under QEMU's
 * TCG) becomes one edge of the wrong kind. Each wire goes to two inputs,
 * one watched for rising and one for falling edges: none is lost.
 */
#include <errno.h>
#include <gpiod.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MON_MAX_LINES 8
#define MON_EVENTS 16

struct mon_line {
	char name[64];
	int kind;		/* GPIOD_LINE_REQUEST_EVENT_* */
	struct gpiod_line *line;
	int fd;
};

static int64_t mon_ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int mon_fail(const char *what, const char *name)
{
	fprintf(stderr, "rig-mon: %s %s: %s\n", what, name, strerror(errno));
	return -(errno ? errno : EIO);
}

static int mon_request(struct gpiod_chip *chip, struct mon_line *l, FILE *out)
{
	struct timespec now;
	int v;

	struct gpiod_line_request_config rc = { .consumer = "rig-mon", .request_type = l->kind };

	l->line = gpiod_chip_find_line(chip, l->name);
	if (!l->line) {
		return mon_fail("no line", l->name);
	}
	if (gpiod_line_request(l->line, &rc, 0) < 0) {
		return mon_fail("cannot request", l->name);
	}
	l->fd = gpiod_line_event_get_fd(l->line);
	v = gpiod_line_get_value(l->line);
	if (l->fd < 0 || v < 0) {
		return mon_fail("cannot read", l->name);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	fprintf(out, "%" PRId64 " %s init %d\n", mon_ts_ns(&now), l->name, v);
	return 0;
}

/* "NAME:rising", "NAME:falling" or "NAME:both" into @l. */
static int mon_parse(const char *arg, struct mon_line *l)
{
	static const struct {
		const char *name;
		int kind;
	} kinds[] = {
		{ "rising", GPIOD_LINE_REQUEST_EVENT_RISING_EDGE },
		{ "falling", GPIOD_LINE_REQUEST_EVENT_FALLING_EDGE },
		{ "both", GPIOD_LINE_REQUEST_EVENT_BOTH_EDGES },
	};
	const char *colon = strchr(arg, ':');
	size_t i, n;

	n = colon ? (size_t)(colon - arg) : 0;
	if (!colon || n == 0 || n >= sizeof(l->name)) {
		return -EINVAL;
	}
	memcpy(l->name, arg, n);
	l->name[n] = '\0';
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (!strcmp(colon + 1, kinds[i].name)) {
			l->kind = kinds[i].kind;
			return 0;
		}
	}
	return -EINVAL;
}

static int mon_drain(struct mon_line *l, FILE *out)
{
	struct gpiod_line_event ev[MON_EVENTS];
	int n, i;

	n = gpiod_line_event_read_fd_multiple(l->fd, ev, MON_EVENTS);
	if (n < 0) {
		return mon_fail("cannot read events of", l->name);
	}
	for (i = 0; i < n; i++) {
		fprintf(out, "%" PRId64 " %s %s\n", mon_ts_ns(&ev[i].ts), l->name,
			ev[i].event_type == GPIOD_LINE_EVENT_RISING_EDGE ? "rise" : "fall");
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct mon_line lines[MON_MAX_LINES];
	struct pollfd pfd[MON_MAX_LINES + 1];
	struct gpiod_chip *chip;
	sigset_t sigs;
	FILE *out;
	int n, i, ret = 0;

	if (argc < 4 || argc - 3 > MON_MAX_LINES) {
		fprintf(stderr,
			"usage: rig-mon CHIP OUTFILE NAME:rising|falling|both... (1 to %d lines)\n",
			MON_MAX_LINES);
		return 2;
	}
	n = argc - 3;
	out = fopen(argv[2], "w");
	if (!out) {
		fprintf(stderr, "rig-mon: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	setvbuf(out, NULL, _IOLBF, 0);
	chip = gpiod_chip_open_lookup(argv[1]);
	if (!chip) {
		fprintf(stderr, "rig-mon: chip %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	pfd[0] = (struct pollfd){ .fd = signalfd(-1, &sigs, SFD_CLOEXEC), .events = POLLIN };
	if (pfd[0].fd < 0) {
		fprintf(stderr, "rig-mon: signalfd: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (mon_parse(argv[3 + i], &lines[i]) < 0) {
			fprintf(stderr, "rig-mon: '%s' is not NAME:rising|falling|both\n", argv[3 + i]);
			return 2;
		}
		if (mon_request(chip, &lines[i], out) < 0) {
			return 1;
		}
		pfd[i + 1] = (struct pollfd){ .fd = lines[i].fd, .events = POLLIN };
	}
	for (;;) {
		if (poll(pfd, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			ret = mon_fail("poll", "");
			break;
		}
		for (i = 0; i < n; i++) {
			if ((pfd[i + 1].revents & POLLIN) && mon_drain(&lines[i], out) < 0) {
				ret = -EIO;
			}
		}
		if (ret < 0 || pfd[0].revents) {
			break;
		}
	}
	/* Edges already queued when the signal came still belong to the run. */
	for (i = 0; i < n; i++) {
		struct pollfd p = { .fd = lines[i].fd, .events = POLLIN };

		while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN) && mon_drain(&lines[i], out) == 0) {
		}
	}
	fclose(out);
	gpiod_chip_close(chip);
	return ret < 0 ? 1 : 0;
}
