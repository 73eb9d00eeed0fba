/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl's client of the control socket (docs/control.md): status, arm,
 * disarm, calibrate, session start|stop, set, and keygen for CURVE keys.
 */
#ifndef RPMSCTL_CONTROL_H
#define RPMSCTL_CONTROL_H

#include <stdio.h>

/* Exit statuses of the control commands (tail keeps its own, rpmsctl.c). */
enum {
	RPMSCTL_CONTROL_OK = 0,		/* the daemon did it */
	RPMSCTL_CONTROL_REFUSED = 1,	/* the daemon answered with an error */
	RPMSCTL_CONTROL_USAGE = 2,	/* bad command line */
	RPMSCTL_CONTROL_UNREACHED = 3,	/* no reply within --timeout */
	RPMSCTL_CONTROL_LOCAL = 4,	/* a local error: key file, ZeroMQ, a reply that is not JSON */
};

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
 * Send one request body @req to the control endpoint and wait @timeout_s
 * for the reply (CURVE with @server_key and @secret_file, both or NULL).
 * @return RPMSCTL_CONTROL_OK with *@reply (free()), or an exit status
 *         above with the message printed
 */
int rpmsctl_control_request(const char *endpoint, double timeout_s, const char *server_key,
			    const char *secret_file, const char *req, char **reply);

/** Print the control commands' part of the usage text. */
void rpmsctl_control_usage(FILE *f);

#endif /* RPMSCTL_CONTROL_H */
