/* SPDX-License-Identifier: MIT */
/*
 * CURVE key files (docs/control.md, "Encryption and client keys"): one
 * format, read by the daemon (its secret key, the allowed client keys) and
 * by rpmsctl (its own secret key, the server's public key).
 *
 * A key is 40 Z85 characters (libzmq's zmq_z85_decode decodes them), at
 * the start of a line after optional blanks; whatever follows a blank is
 * ignored (a name). Blank lines and lines starting with '#' are comments.
 * A secret key file must be readable by its owner only.
 *
 * Start-up and command-line code: these functions allocate and block.
 */
#ifndef RPMSD_CURVE_KEY_H
#define RPMSD_CURVE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CURVE_KEY_Z85_LEN 40		/* a key as text, without the NUL */
#define CURVE_KEY_LEN 32		/* a key as bytes */
#define CURVE_KEY_ALLOWED_MAX 1024	/* client keys in an allowlist */

/** Whether @text is exactly one key: 40 Z85 characters that decode. */
bool curve_key_valid(const char *text);

/**
 * The next key of the key file @f, comments skipped.
 * @param lineno  the number of the last line read; start at 0
 * @param z85     receives the key as text (CURVE_KEY_Z85_LEN + 1), or NULL
 * @param key     receives it as bytes (CURVE_KEY_LEN), or NULL
 * @return 1 with a key; 0 at the end of the file; -EINVAL for a line that
 *         is neither a key nor a comment (*@lineno is its number); -EIO
 *         when @f cannot be read; -ENOMEM
 */
int curve_key_next(FILE *f, int *lineno, char *z85, uint8_t *key);

/**
 * Whether the secret key file @f may be read, written or run by anyone
 * but its owner (group or others); its permission bits in *@mode.
 */
bool curve_key_exposed(FILE *f, unsigned *mode);

/**
 * Read a secret key file: a regular file readable by its owner only,
 * holding exactly one key.
 * @param name  what the file is, for messages ("control.curve_server_secret_file")
 * @param z85   receives the key as text
 * @return 0, or -EPERM, -EINVAL, -EIO, -errno with a message naming
 *         @name, @path and the line in @err
 */
int curve_key_read_secret(const char *name, const char *path, char z85[CURVE_KEY_Z85_LEN + 1],
			  char *err, size_t errlen);

/**
 * Read an allowlist of client keys: a key file, or every regular file of a
 * directory (not dotfiles). Whoever may change the list may let themselves
 * in, so every component of its real path must belong to root or to this
 * process's user, and nothing on the way may be writable by others unless
 * it is a sticky directory (the list itself never); as OpenSSH's
 * StrictModes does for authorized_keys.
 * @param name  what the list is, for messages ("control.curve_allowed_keys")
 * @param keys  receives the keys: room for CURVE_KEY_ALLOWED_MAX; NULL to
 *              only check and count
 * @param n     receives the number of keys
 * @return 0 (at least one key), or -EPERM, -EINVAL, -E2BIG, -EIO, -errno
 *         with a message naming @name, the file and the line in @err
 */
int curve_key_read_allowed(const char *name, const char *path, uint8_t (*keys)[CURVE_KEY_LEN],
			   size_t *n, char *err, size_t errlen);

#endif /* RPMSD_CURVE_KEY_H */
