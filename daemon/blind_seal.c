/* SPDX-License-Identifier: MIT */
/*
 * Sealed audit records (blind_seal.h): libsodium's crypto_box_seal to the
 * statistician's public key, base64 on one line, appended and fsynced.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "blind_seal.h"

_Static_assert(BLIND_SEAL_KEY_LEN == crypto_box_PUBLICKEYBYTES, "an X25519 public key");
_Static_assert(BLIND_SEAL_KEY_LEN == crypto_box_SECRETKEYBYTES, "an X25519 secret key");

#define BLIND_SEAL_BOX (BLIND_SEAL_PLAIN + crypto_box_SEALBYTES)

_Static_assert(sizeof(BLIND_SEAL_PREFIX) - 1 +
	       BLIND_SEAL_BOX / 3 * 4 + 4 + 2 <= BLIND_SEAL_LINE_MAX,
	       "a sealed record fits its line");

int blind_seal_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

int blind_seal_line(const uint8_t pk[BLIND_SEAL_KEY_LEN], const char *plain, char *line,
		    size_t linelen)
{
	unsigned char padded[BLIND_SEAL_PLAIN], box[BLIND_SEAL_BOX];
	size_t n = strlen(plain), pre = strlen(BLIND_SEAL_PREFIX), b64;

	if (blind_seal_init() < 0) {
		return -EIO;
	}
	if (n >= sizeof(padded)) {
		return -E2BIG;
	}
	b64 = sodium_base64_encoded_len(sizeof(box), sodium_base64_VARIANT_ORIGINAL);
	if (linelen < pre + b64 + 1) {
		return -ENOSPC;
	}
	/* One length for every record: the ciphertext's size says nothing of the arm. */
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, plain, n);
	if (crypto_box_seal(box, padded, sizeof(padded), pk) != 0) {
		return -EIO;
	}
	memcpy(line, BLIND_SEAL_PREFIX, pre);
	sodium_bin2base64(line + pre, linelen - pre, box, sizeof(box),
			  sodium_base64_VARIANT_ORIGINAL);
	n = strlen(line);
	line[n] = '\n';
	line[n + 1] = '\0';
	sodium_memzero(padded, sizeof(padded));
	return 0;
}

int blind_seal_open_line(const uint8_t sk[BLIND_SEAL_KEY_LEN], const char *line, char *plain,
			 size_t plainlen)
{
	unsigned char box[BLIND_SEAL_BOX], out[BLIND_SEAL_PLAIN], pk[BLIND_SEAL_KEY_LEN];
	size_t pre = strlen(BLIND_SEAL_PREFIX), len, end;
	const char *b64 = line + pre;

	if (blind_seal_init() < 0) {
		return -EIO;
	}
	if (strncmp(line, BLIND_SEAL_PREFIX, pre)) {
		return -EBADMSG;
	}
	end = strcspn(b64, "\r\n");
	if (sodium_base642bin(box, sizeof(box), b64, end, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || len != sizeof(box)) {
		return -EBADMSG;
	}
	crypto_scalarmult_base(pk, sk);
	if (crypto_box_seal_open(out, box, sizeof(box), pk, sk) != 0) {
		return -EBADMSG;
	}
	for (len = sizeof(out); len > 0 && out[len - 1] == ' '; len--) {
	}
	if (len + 1 > plainlen) {
		sodium_memzero(out, sizeof(out));
		return -ENOSPC;
	}
	memcpy(plain, out, len);
	plain[len] = '\0';
	sodium_memzero(out, sizeof(out));
	return 0;
}

int blind_seal_append(const char *path, const char *line, char *err, size_t errlen)
{
	size_t n = strlen(line);
	ssize_t w;
	int fd, ret;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "audit file %s: cannot open for appending: %s", path,
			 strerror(errno));
		return ret;
	}
	/* one write: concurrent appenders (the daemon, rpmsctl) never interleave */
	w = write(fd, line, n);
	if (w < 0 || (size_t)w != n) {
		ret = w < 0 ? -errno : -EIO;
		snprintf(err, errlen, "audit file %s: cannot append: %s", path,
			 w < 0 ? strerror(errno) : "short write");
		close(fd);
		return ret;
	}
	if (fsync(fd) != 0) {
		ret = -errno;
		snprintf(err, errlen, "audit file %s: fsync: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	if (close(fd) != 0) {
		ret = -errno;
		snprintf(err, errlen, "audit file %s: close: %s", path, strerror(errno));
		return ret;
	}
	if (errlen) {
		err[0] = '\0';
	}
	return 0;
}
