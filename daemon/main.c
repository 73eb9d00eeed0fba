/* SPDX-License-Identifier: MIT */
/*
 * rpmsd: closed-loop rPMS controller. Command line only; the work is in
 * the rpmsd-core library (session.c and what it wires together).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "plugin.h"
#include "prescription.h"
#include "rpmsd-build.h"
#include "session.h"

static void main_usage(FILE *f)
{
	fprintf(f,
		"Usage: rpmsd [OPTIONS]\n"
		"Closed-loop repetitive peripheral magnetic stimulation controller.\n"
		"\n"
		"  -c, --config FILE         configuration (default %s)\n"
		"      --check-config FILE   validate FILE (keys, coil plugin, source) and exit\n"
		"      --check-prescription FILE\n"
		"                            check a prescription, print its summary and exit (with\n"
		"                            --config, also its protocol against that safety config)\n"
		"      --fast                replay as fast as possible, in the recording's own time\n"
		"      --wait-subscriber[=S] wait up to S seconds (default 10) for an event\n"
		"                            subscriber before starting\n"
		"      --print-config        print a configuration with every key and its default\n"
		"      --plugin-keys NAME    print the [coil.NAME] keys of a coil plugin (with\n"
		"                            --config, also looked for in its daemon.plugin_dir)\n"
		"  -V, --version             print the version\n"
		"  -h, --help                this help\n"
		"\n"
		"Exit status: 0 clean end, 1 start-up or configuration error, 2 usage error,\n"
		"3 a fault during the run (source error, coil fault).\n",
		RPMSD_CONFIG_FILE);
}

static int main_load_config(struct rpmsd_config *cfg, const char *path)
{
	char err[CONFIG_ERR_MAX];
	int ret;

	ret = config_load(cfg, path, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "rpmsd: %s\n", err);
		return ret;
	}
	return 0;
}

/*
 * --check-prescription: the summary, or the first error. With --config, the
 * protocol is also run through that configuration's checks; an intensity
 * relative to the motor threshold uses its safety.motor_threshold_pct.
 */
static int main_check_prescription(const char *path, const char *config_path)
{
	static struct rpmsd_config cfg;
	static struct prescription rx;
	char err[CONFIG_ERR_MAX];

	if (prescription_load(&rx, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "rpmsd: %s\n", err);
		return 1;
	}
	if (config_path) {
		if (config_load_flags(&cfg, config_path, CONFIG_LOAD_INPUT_GIVEN, err,
				      sizeof(err)) < 0) {
			fprintf(stderr, "rpmsd: %s\n", err);
			return 1;
		}
		if (prescription_to_config(&rx, cfg.safety.motor_threshold_pct, &cfg, err,
					   sizeof(err)) < 0) {
			fprintf(stderr, "rpmsd: %s\n", err);
			return 1;
		}
	}
	prescription_write_summary(&rx, stdout);
	if (config_path) {
		printf("%s: the protocol passes the safety checks of %s\n", path, config_path);
	}
	printf("%s: prescription is valid\n", path);
	return 0;
}

/* With --config, the plugin is looked for in its daemon.plugin_dir too. */
static int main_plugin_keys(const char *name, const char *config_path)
{
	static struct rpmsd_config cfg;
	char err[1024];
	struct plugin *p;
	int ret;

	/* Only daemon.plugin_dir matters here: no recording is needed. */
	if (config_path &&
	    config_load_flags(&cfg, config_path, CONFIG_LOAD_INPUT_GIVEN, err, sizeof(err)) < 0) {
		fprintf(stderr, "rpmsd: %s\n", err);
		return 1;
	}
	ret = plugin_load(config_path ? &cfg : NULL, name, &p, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "rpmsd: %s\n", err);
		return 1;
	}
	plugin_write_keys(p, stdout);
	plugin_unload(p);
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_FAST, OPT_WAIT, OPT_PRINT, OPT_PLUGIN_KEYS, OPT_CHECK_RX };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, OPT_CHECK },
		{ "check-prescription", required_argument, NULL, OPT_CHECK_RX },
		{ "fast", no_argument, NULL, OPT_FAST },
		{ "wait-subscriber", optional_argument, NULL, OPT_WAIT },
		{ "print-config", no_argument, NULL, OPT_PRINT },
		{ "plugin-keys", required_argument, NULL, OPT_PLUGIN_KEYS },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct session_options sopt = { 0 };
	static struct rpmsd_config cfg;
	const char *config_path = RPMSD_CONFIG_FILE;
	const char *check = NULL, *plugin_keys = NULL, *check_rx = NULL;
	bool config_given = false;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			config_given = true;
			break;
		case OPT_CHECK:
			check = optarg;
			break;
		case OPT_CHECK_RX:
			check_rx = optarg;
			break;
		case OPT_FAST:
			sopt.fast = true;
			break;
		case OPT_WAIT:
			sopt.wait_subscriber_s = 10.0;
			if (optarg) {
				errno = 0;
				sopt.wait_subscriber_s = strtod(optarg, &end);
				if (errno || *end || !(sopt.wait_subscriber_s > 0) ||
				    sopt.wait_subscriber_s > 3600) {
					fprintf(stderr,
						"rpmsd: --wait-subscriber: '%s' is not a number of seconds (allowed: 0 < S <= 3600)\n",
						optarg);
					return 2;
				}
			}
			break;
		case OPT_PRINT:
			config_write_template(stdout);
			return 0;
		case OPT_PLUGIN_KEYS:
			plugin_keys = optarg;
			break;
		case 'V':
			printf("rpmsd %s (coil plugin ABI %d.%d)\n", RPMSD_VERSION,
			       RPMSD_COIL_ABI_MAJOR, RPMSD_COIL_ABI_MINOR);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rpmsd: unexpected argument '%s' (see rpmsd --help)\n",
			argv[optind]);
		return 2;
	}
	if (check_rx) {
		return main_check_prescription(check_rx, config_given ? config_path : NULL);
	}
	if (plugin_keys) {
		return main_plugin_keys(plugin_keys, config_given ? config_path : NULL);
	}
	if (check) {
		if (main_load_config(&cfg, check) < 0 || session_check(&cfg) < 0) {
			return 1;
		}
		printf("%s: configuration is valid\n", check);
		return 0;
	}
	if (main_load_config(&cfg, config_path) < 0) {
		return 1;
	}
	log_set_level((enum log_level)cfg.daemon.log_level);
	return session_run(&cfg, &sopt, stdout);
}
