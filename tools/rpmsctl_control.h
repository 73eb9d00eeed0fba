/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl's client of the control socket (docs/control.md): status, arm,
 * disarm, calibrate, session start|stop, set, and keygen for CURVE keys.
 */
#ifndef RPMSCTL_CONTROL_H
#define RPMSCTL_CONTROL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit statuses of the control commands (tail keeps its own, rpmsctl.c). */
enum {
	RPMSCTL_CONTROL_OK = 0,		/* the daemon did it */
	RPMSCTL_CONTROL_REFUSED = 1,	/* the daemon answered with an error */
	RPMSCTL_CONTROL_USAGE = 2,	/* bad command line */
	RPMSCTL_CONTROL_UNREACHED = 3,	/* no reply within --timeout */
	RPMSCTL_CONTROL_LOCAL = 4,	/* a local error: key file, ZeroMQ, a reply that is not JSON */
};

/* How to reach the daemon: the options of every control-socket command. */
struct rpmsctl_control_conn {
	const char *endpoint;
	double timeout_s;
	const char *server_key;		/* Z85, or a file holding it */
	const char *secret_file;	/* the client's secret key */
	bool json;			/* print replies as JSON */
};

/* getopt values of the long-only connection options; a command's own start at _NEXT. */
enum {
	RPMSCTL_CONTROL_OPT_SERVER_KEY = 256,
	RPMSCTL_CONTROL_OPT_SECRET_KEY,
	RPMSCTL_CONTROL_OPT_NEXT,
};

/* The short options of the connection (and --help), for getopt_long. */
#define RPMSCTL_CONTROL_CONN_SHORTOPTS ":e:jT:h"

/* The long options of the connection (and --help), first in a command's table. */
#define RPMSCTL_CONTROL_CONN_LONGOPTS \
	{ "endpoint", required_argument, NULL, 'e' }, \
	{ "json", no_argument, NULL, 'j' }, \
	{ "timeout", required_argument, NULL, 'T' }, \
	{ "server-key", required_argument, NULL, RPMSCTL_CONTROL_OPT_SERVER_KEY }, \
	{ "secret-key", required_argument, NULL, RPMSCTL_CONTROL_OPT_SECRET_KEY }, \
	{ "help", no_argument, NULL, 'h' }

/**
 * The defaults of @k: the endpoint of $RPMSD_CONTROL (else the default
 * one), the default timeout, no CURVE, no JSON.
 */
void rpmsctl_control_conn_init(struct rpmsctl_control_conn *k);

/**
 * Take getopt_long's option @opt (its value @arg) into @k when it is a
 * connection option.
 * @return 0 taken, 1 not a connection option, or RPMSCTL_CONTROL_USAGE with
 *         the message printed (a --timeout that is not 0 < SEC <= 3600)
 */
int rpmsctl_control_conn_option(struct rpmsctl_control_conn *k, int opt, const char *arg);

/**
 * The usage error of getopt_long's answer @opt ':' (no value) or '?'
 * (unknown option) over @argv, prefixed "@cmd: " when @cmd is not NULL.
 * @return RPMSCTL_CONTROL_USAGE
 */
int rpmsctl_control_getopt_error(const char *cmd, int opt, char **argv);

/**
 * Run control command @argv[0] ("status", "arm", "disarm", "calibrate",
 * "session", "set") with its options.
 * @return an exit status above
 */
int rpmsctl_control_main(int argc, char **argv);

/**
 * rpmsctl keygen FILE: a new CURVE key pair; the secret key goes into
 * FILE (created, mode 0600, never overwritten), the public key to stdout.
 * @return an exit status above
 */
int rpmsctl_control_keygen(int argc, char **argv);

/**
 * CURVE for a client socket: --server-key @server_key (Z85, or a file
 * holding it) and --secret-key @secret_file, both or neither (NULL). The
 * key files are read as the daemon reads them (curve_key.h); @sock NULL
 * only checks them.
 * @return RPMSCTL_CONTROL_OK, or RPMSCTL_CONTROL_USAGE / _LOCAL with the
 *         message printed
 */
int rpmsctl_control_curve(void *sock, const char *server_key, const char *secret_file);

/**
 * Print "rpmsctl: MESSAGE" and the --help hint on stderr, for every
 * subcommand (tail included: its usage status is the same).
 * @return RPMSCTL_CONTROL_USAGE
 */
int rpmsctl_control_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Send one request body @req to the daemon @k names and wait its timeout
 * for the reply (CURVE when @k has both keys).
 * @return RPMSCTL_CONTROL_OK with *@reply (free()), or an exit status
 *         above with the message printed
 */
int rpmsctl_control_request(const struct rpmsctl_control_conn *k, const char *req,
			    char **reply);

/** Print the control commands' part of the usage text. */
void rpmsctl_control_usage(FILE *f);

#endif /* RPMSCTL_CONTROL_H */
