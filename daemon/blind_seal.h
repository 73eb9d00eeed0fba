/* SPDX-License-Identifier: MIT */
/*
 * The sealed audit of a blinded trial (docs/sham.md): each session's true
 * arm, sealed to the statistician's public key (libsodium's sealed box,
 * crypto_box_seal), one line of the audit file per record. Shared by the
 * daemon (seals, appends) and rpmsctl unblind (opens, appends its own
 * plaintext record of who unblinded what and when).
 *
 * The audit file, one record per line:
 *   sealed BASE64        a sealed record (plaintext: one JSON object padded
 *                        with blanks to BLIND_SEAL_PLAIN bytes, so every
 *                        sealed line has the same length whatever the arm)
 *   unblind JSON         rpmsctl unblind: who, when, which file, how many
 *
 * Keys are X25519, the same as CURVE's: `rpmsctl keygen` makes the pair.
 * Command-line and control-thread code: these functions may block.
 */
#ifndef RPMSD_BLIND_SEAL_H
#define RPMSD_BLIND_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define BLIND_SEAL_KEY_LEN 32		/* crypto_box_PUBLICKEYBYTES / SECRETKEYBYTES */
#define BLIND_SEAL_PLAIN 512		/* a record's plaintext, padded */
#define BLIND_SEAL_LINE_MAX 1024	/* "sealed " + base64 of plaintext + 48, newline, NUL */
#define BLIND_SEAL_PREFIX "sealed "
#define BLIND_UNBLIND_PREFIX "unblind "

/** Start libsodium (idempotent). @return 0 or -EIO */
int blind_seal_init(void);

/**
 * Seal @plain (at most BLIND_SEAL_PLAIN - 1 bytes) to @pk as one audit
 * line "sealed BASE64\n" in @line.
 * @return 0, -E2BIG (@plain too long), -ENOSPC (@linelen too small), -EIO
 */
int blind_seal_line(const uint8_t pk[BLIND_SEAL_KEY_LEN], const char *plain, char *line,
		    size_t linelen);

/**
 * Open one "sealed ..." audit line with the key pair (the public key is
 * derived from @sk). The plaintext, blanks at its end removed, in @plain.
 * @return 0, -EBADMSG (not a sealed line, or not sealed to this key: a
 * wrong key or a damaged line), -ENOSPC
 */
int blind_seal_open_line(const uint8_t sk[BLIND_SEAL_KEY_LEN], const char *line, char *plain,
			 size_t plainlen);

/**
 * Append @line to the audit file @path (created 0600) in one write, then
 * fsync it: a record is on disk before the caller goes on.
 * @return 0 or -errno, with a message naming @path in @err
 */
int blind_seal_append(const char *path, const char *line, char *err, size_t errlen);

#endif /* RPMSD_BLIND_SEAL_H */
