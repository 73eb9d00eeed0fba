/* SPDX-License-Identifier: MIT */
/*
 * The guard of a ZeroMQ server socket: CURVE with an allowlist of client
 * public keys (a ZAP handler, RFC 27), and a socket monitor that logs and
 * counts every refused handshake (rate-limited). The control socket and the
 * event stream share it (docs/control.md, docs/events.md); each names its
 * own keys ("control.curve_allowed_keys", "publish.curve_allowed_keys").
 *
 * One thread at a time: the one that created it, then (handed over by
 * pthread_create) the thread that polls the guarded socket. Set-up
 * allocates and reads files; zap_serve never blocks and never allocates
 * beyond ZeroMQ's own message frames.
 */
#ifndef RPMSD_ZAP_H
#define RPMSD_ZAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "curve_key.h"

struct rpmsd_config;
struct zap;

#define ZAP_POLLITEMS 2			/* at most, from zap_pollitems */

/**
 * Check the key files of @section without keeping anything: the secret
 * key @secret_file and the allowlist @allowed (config values, resolved
 * against the config file's directory). Messages name
 * "@section.curve_server_secret_file" and "@section.curve_allowed_keys".
 * @return 0 (also when @secret_file is empty: no CURVE), or -errno with a
 *         message in @err
 */
int zap_check_keys(const struct rpmsd_config *cfg, const char *section, const char *secret_file,
		   const char *allowed, char *err, size_t errlen);

/* What a guard guards, for zap_create. */
struct zap_opts {
	const char *section;	/* "control", "publish": the keys' section, the log prefix */
	const char *who;	/* a peer in the log: "client", "subscriber" */
	const char *secret_file;	/* the config value; "" = no CURVE */
	const char *allowed;	/* the config value (the allowlist) */
	const char *held;	/* after "refusals held back: " in the log */
};

/**
 * A guard in ZeroMQ context @ctx. With @o->secret_file set it reads both
 * key files and binds the context's ZAP handler (before any socket of @ctx
 * binds: a handshake arriving earlier would not be checked); without it
 * the guard only watches handshakes (a client asking for a mechanism the
 * socket does not use). @o->section, who and held must outlive the guard;
 * the key files are read here only.
 * @return 0, or -errno with a message in @err
 */
int zap_create(void *ctx, const struct zap_opts *o, const struct rpmsd_config *cfg,
	       struct zap **out, char *err, size_t errlen);

/**
 * Make @sock (not bound yet) a CURVE server checked by this guard, when it
 * has keys, and monitor its handshakes. The secret key is wiped from the
 * guard here.
 * @return 0, or -errno with a message in @err
 */
int zap_apply(struct zap *z, void *sock, char *err, size_t errlen);

/**
 * Append the guard's sockets to @items (room for ZAP_POLLITEMS), events
 * POLLIN. @return how many
 */
int zap_pollitems(const struct zap *z, zmq_pollitem_t *items);

/**
 * Answer every waiting key check and read every waiting monitor event,
 * logging refusals; never waits. NULL: nothing to do.
 */
void zap_serve(struct zap *z);

/** Whether the guard checks CURVE keys. */
bool zap_curve(const struct zap *z);

/** The server's public key (Z85), "" without CURVE. */
const char *zap_server_key(const struct zap *z);

/** Client keys in the allowlist. */
size_t zap_allowed(const struct zap *z);

/**
 * Refusals so far, from any thread: clients (told apart by key, else by
 * address) and handshakes.
 */
void zap_refusals(const struct zap *z, uint64_t *clients, uint64_t *handshakes);

/** Close the guard's sockets (before its context is terminated); NULL is fine. */
void zap_close(struct zap *z);

/** Close and free; NULL is fine. */
void zap_destroy(struct zap *z);

#endif /* RPMSD_ZAP_H */
