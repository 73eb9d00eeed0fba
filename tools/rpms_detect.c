/* SPDX-License-Identifier: MIT */
/*
 * rpms-detect: the daemon's burst detector on a file, offline.
 *
 * The recording is read by the daemon's replay source and handed, block
 * by block, to the daemon's detector bank (daemon/bank.c): band-pass,
 * notches, envelope, calibration, onset/offset decisions and the channel
 * rule, with no look-ahead, exactly as the acquire thread runs them. So
 * what this prints is what rpmsd would have decided, sample for sample.
 *
 * Output (stdout), CSV: event,channel,sample,decision_sample
 *   event            onset or offset
 *   channel          0-based channel that decided it
 *   sample           estimated sample of the onset (back-dated to where
 *                    the rise began) or of the offset
 *   decision_sample  the last sample consumed when it was decided
 *
 * Exit status: 0 done, 1 bad configuration or input, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bank.h"
#include "config.h"
#include "source.h"

#define DETECT_ERR_MAX 2048
#define DETECT_ORIGIN "command line"

struct rpms_detect_out {
	FILE *f;
	uint64_t events;
};

static void rpms_detect_usage(FILE *f)
{
	fprintf(f,
		"Usage: rpms-detect [OPTIONS] INPUT\n"
		"Run rpmsd's causal burst detector on a recording; print its decisions as CSV\n"
		"(event,channel,sample,decision_sample).\n\n"
		"  -c, --config FILE    rpmsd configuration ([dsp], [detect]; [source] for the format)\n"
		"  -r, --rate HZ        sampling rate when the file does not say it\n"
		"  -m, --mains HZ|0     mains frequency to notch (50, 60), 0 for none\n"
		"  -k, --column N|NAME  column(s) of a CSV file: 1-based numbers or header names,\n"
		"                       comma-separated for several channels\n"
		"  -b, --block FRAMES   frames handed to the detector at a time (default: the\n"
		"                       configuration's source.block_frames)\n"
		"  -t, --trace FILE     also write every sample as the detector saw it, CSV:\n"
		"                       sample,channel,raw,filtered,envelope,sustained,\n"
		"                       on_threshold,off_threshold (thresholds empty until\n"
		"                       calibrated)\n"
		"  -h, --help           this text\n\n"
		"Calibration takes the rest window of detect.calibration_start_s and\n"
		"detect.calibration_s (default: the first 2 s); no onset is decided before it\n"
		"ends. Input formats: as rpmsd's replay source (source.format = auto: text\n"
		"with # headers, CSV with a header row, or 'time value' pairs).\n");
}

static void rpms_detect_trace(void *ctx, const struct bank_trace *t)
{
	FILE *f = ctx;

	fprintf(f, "%" PRIu64 ",%u,%.9g,%.9g,%.9g,%.9g,", t->sample, t->channel, t->raw,
		t->filtered, t->envelope, t->sustained);
	if (isfinite(t->on_threshold)) {
		fprintf(f, "%.9g,%.9g\n", t->on_threshold, t->off_threshold);
	} else {
		fputs(",\n", f);
	}
}

static void rpms_detect_emit(void *ctx, const struct bank_event *ev)
{
	struct rpms_detect_out *out = ctx;

	if (ev->edge == DETECT_CALIBRATED) {
		char why[160];

		/* For the person running it; stdout stays plain CSV. */
		fprintf(stderr,
			"rpms-detect: channel %u calibrated at sample %" PRIu64
			": rest level %.6g, spread %.6g, onset above %.6g, offset below %.6g\n",
			ev->channel, ev->sample, ev->r.baseline, ev->r.spread, ev->r.threshold,
			ev->r.off_threshold);
		if (ev->r.cal_issues) {
			detect_cal_describe(ev->r.cal_issues, ev->r.cal_artefacts,
					    ev->r.cal_unsteady_s, ev->r.baseline, why, sizeof(why));
			fprintf(stderr, "rpms-detect: channel %u: the rest window is in doubt: %s\n",
				ev->channel, why);
		}
		return;
	}
	if (ev->edge != DETECT_ONSET && ev->edge != DETECT_OFFSET) {
		return;
	}
	fprintf(out->f, "%s,%u,%" PRIu64 ",%" PRIu64 "\n",
		ev->edge == DETECT_ONSET ? "onset" : "offset", ev->channel,
		ev->r.edge_sample, ev->sample);
	out->events++;
}

/* Apply the command line on top of the configuration. @return 0 or -EINVAL */
static int rpms_detect_options(struct rpmsd_config *cfg, const char *input, const char *rate,
			       const char *mains, const char *column, const char *block,
			       char *err, size_t errlen)
{
	char path[PATH_MAX];
	int ret = 0;

	/*
	 * The input is named relative to where the tool runs; the daemon
	 * would take it relative to the configuration file.
	 */
	if (cfg->path[0] && input[0] != '/' && getcwd(path, sizeof(path)) &&
	    strlen(path) + strlen(input) + 2 < sizeof(path)) {
		strcat(path, "/");
		strcat(path, input);
	} else {
		snprintf(path, sizeof(path), "%s", input);
	}
	ret = config_override(cfg, DETECT_ORIGIN, "source", "type", "replay", err, errlen);
	if (ret == 0) {
		ret = config_override(cfg, "INPUT", "source", "file", path, err, errlen);
	}
	if (ret == 0 && rate) {
		ret = config_override(cfg, "--rate", "source", "rate_hz", rate, err, errlen);
	}
	if (ret == 0 && mains) {
		ret = config_override(cfg, "--mains", "dsp", "mains_hz", mains, err, errlen);
	}
	if (ret == 0 && column) {
		ret = config_override(cfg, "--column", "source", "column", column, err, errlen);
	}
	if (ret == 0 && block) {
		ret = config_override(cfg, "--block", "source", "block_frames", block, err,
				      errlen);
	}
	if (ret == 0) {
		ret = config_recheck(cfg, DETECT_ORIGIN, err, errlen);
	}
	return ret;
}

static int rpms_detect_run(const struct rpmsd_config *cfg, FILE *f, const char *trace_path)
{
	FILE *trace = NULL;
	char err[DETECT_ERR_MAX] = "";
	struct rpms_detect_out out = { .f = f };
	struct source_block blk;
	struct source *src = NULL;
	struct bank *bank = NULL;
	size_t frames = (size_t)cfg->source.block_frames;
	float *buf = NULL;
	int ret;

	ret = source_replay_open(cfg, false, &src, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "rpms-detect: %s\n", err[0] ? err : strerror(-ret));
		return 1;
	}
	ret = bank_create(cfg, src->rate_hz, src->channels,
			  (const char (*)[BANK_NAME_MAX])src->channel_names, &bank, err,
			  sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "rpms-detect: %s: at %g Hz (the rate of %s): %s\n",
			cfg->path[0] ? cfg->path : DETECT_ORIGIN, src->rate_hz,
			src->description, err);
		goto err_free;
	}
	buf = calloc(frames * src->channels, sizeof(float));
	if (!buf) {
		fprintf(stderr, "rpms-detect: out of memory\n");
		ret = -ENOMEM;
		goto err_free;
	}
	if (trace_path) {
		trace = fopen(trace_path, "w");
		if (!trace) {
			ret = -errno;
			fprintf(stderr, "rpms-detect: --trace: %s: %s\n", trace_path,
				strerror(errno));
			goto err_free;
		}
		fprintf(trace, "sample,channel,raw,filtered,envelope,sustained,on_threshold,off_threshold\n");
		bank_set_trace(bank, rpms_detect_trace, trace);
	}
	ret = src->ops->start(src, 0, NULL);
	fprintf(f, "event,channel,sample,decision_sample\n");
	while (ret >= 0) {
		ret = src->ops->read(src, buf, frames, &blk);
		if (ret <= 0) {
			break;
		}
		bank_process(bank, buf, blk.frames, blk.first_sample, rpms_detect_emit, &out);
	}
	if (ret < 0) {
		fprintf(stderr, "rpms-detect: %s: read failed: %s\n", src->description,
			strerror(-ret));
		goto err_free;
	}
	if (fflush(f) != 0 || ferror(f)) {
		fprintf(stderr, "rpms-detect: writing the output: %s\n", strerror(errno));
		ret = -EIO;
	}
	if (trace && (fflush(trace) != 0 || ferror(trace))) {
		fprintf(stderr, "rpms-detect: --trace: %s: %s\n", trace_path, strerror(errno));
		ret = -EIO;
	}
err_free:
	if (trace) {
		fclose(trace);
	}
	free(buf);
	bank_destroy(bank);
	source_destroy(src);
	return ret < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "mains", required_argument, NULL, 'm' },
		{ "column", required_argument, NULL, 'k' },
		{ "block", required_argument, NULL, 'b' },
		{ "trace", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct rpmsd_config cfg;
	const char *config = NULL, *rate = NULL, *mains = NULL, *column = NULL;
	const char *block = NULL, *trace = NULL;
	char err[DETECT_ERR_MAX] = "";
	int opt;

	while ((opt = getopt_long(argc, argv, "c:r:m:k:b:t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'r':
			rate = optarg;
			break;
		case 'm':
			mains = optarg;
			break;
		case 'k':
			column = optarg;
			break;
		case 'b':
			block = optarg;
			break;
		case 't':
			trace = optarg;
			break;
		case 'h':
			rpms_detect_usage(stdout);
			return 0;
		default:
			rpms_detect_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "rpms-detect: %s\n",
			optind == argc ? "no INPUT file given" : "more than one INPUT file given");
		rpms_detect_usage(stderr);
		return 2;
	}
	if (config) {
		if (config_load_flags(&cfg, config, CONFIG_LOAD_INPUT_GIVEN, err, sizeof(err)) < 0) {
			fprintf(stderr, "rpms-detect: %s\n", err);
			return 1;
		}
	} else {
		config_defaults(&cfg);
	}
	if (rpms_detect_options(&cfg, argv[optind], rate, mains, column, block, err,
				sizeof(err)) < 0) {
		fprintf(stderr, "rpms-detect: %s\n", err);
		return 1;
	}
	return rpms_detect_run(&cfg, stdout, trace);
}
