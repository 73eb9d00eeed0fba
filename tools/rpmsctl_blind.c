/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl unblind (rpmsctl_blind.h): sealed records opened with the
 * statistician's secret key, the unblind itself audited before anything
 * is printed.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "blind_seal.h"
#include "curve_key.h"
#include "rpmsctl_blind.h"
#include "rpmsctl_control.h"

#define RPMSCTL_BLIND_AUDIT "/var/lib/rpmsd/blind-audit"

static int rpmsctl_blind_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int rpmsctl_blind_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("rpmsctl: unblind: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return RPMSCTL_CONTROL_LOCAL;
}

/* Who asks, in the words of the system: "name (uid N)". */
static void rpmsctl_blind_who(char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	uid_t uid = getuid();

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res) {
		snprintf(buf, len, "%s", res->pw_name);
	} else {
		snprintf(buf, len, "uid%u", (unsigned)uid);
	}
}

int rpmsctl_blind_unblind(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "audit", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *audit = RPMSCTL_BLIND_AUDIT;
	char z85[CURVE_KEY_Z85_LEN + 1], pub[CURVE_KEY_Z85_LEN + 1], err[1024];
	char line[BLIND_SEAL_LINE_MAX + 2], who[64], host[256] = "", when[32];
	char rec[BLIND_SEAL_PLAIN + BLIND_SEAL_LINE_MAX];
	uint8_t sk[BLIND_SEAL_KEY_LEN], pk[BLIND_SEAL_KEY_LEN];
	char *out = NULL;
	size_t out_len = 0;
	FILE *f, *mem;
	unsigned long opened = 0, failed = 0;
	int c, lineno = 0, ret;
	time_t now = time(NULL);
	struct tm tm;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+k:a:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key = optarg;
			break;
		case 'a':
			audit = optarg;
			break;
		case 'h':
			printf("Usage: rpmsctl unblind --key SECRET_KEY_FILE [--audit FILE]\n"
			       "Open the sealed audit of a blinded trial (default %s) with the\n"
			       "statistician's secret key (rpmsctl keygen) and print each record as\n"
			       "a JSON line. Each unblind is appended to the audit first.\n",
			       RPMSCTL_BLIND_AUDIT);
			return RPMSCTL_CONTROL_OK;
		default:
			return rpmsctl_control_usage_error("unblind: unknown option");
		}
	}
	if (!key || optind != argc) {
		return rpmsctl_control_usage_error("unblind: expected --key SECRET_KEY_FILE "
						   "[--audit FILE] and nothing else");
	}
	if (blind_seal_init() < 0) {
		return rpmsctl_blind_fail("libsodium failed to start");
	}
	ret = curve_key_read_secret("--key", key, z85, err, sizeof(err));
	if (ret < 0) {
		return rpmsctl_blind_fail("%s", err);
	}
	if (!zmq_z85_decode(sk, z85)) {
		return rpmsctl_blind_fail("--key %s: not a Z85 key", key);
	}
	crypto_scalarmult_base(pk, sk);
	if (!zmq_z85_encode(pub, pk, sizeof(pk))) {
		return rpmsctl_blind_fail("cannot encode the public key");
	}
	f = fopen(audit, "re");
	if (!f) {
		return rpmsctl_blind_fail("audit file %s: %s", audit, strerror(errno));
	}
	mem = open_memstream(&out, &out_len);
	if (!mem) {
		fclose(f);
		return rpmsctl_blind_fail("out of memory");
	}
	/* open everything first: the audit record says how many opened */
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (strncmp(line, BLIND_SEAL_PREFIX, strlen(BLIND_SEAL_PREFIX))) {
			continue;	/* earlier unblinds, blank lines */
		}
		if (blind_seal_open_line(sk, line, rec, sizeof(rec)) < 0) {
			fprintf(stderr, "rpmsctl: unblind: %s:%d: not sealed to this key (or "
				"damaged)\n", audit, lineno);
			failed++;
			continue;
		}
		fprintf(mem, "%s\n", rec);
		opened++;
	}
	fclose(f);
	fclose(mem);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(z85, sizeof(z85));

	rpmsctl_blind_who(who, sizeof(who));
	(void)gethostname(host, sizeof(host) - 1);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(line, sizeof(line),
		 BLIND_UNBLIND_PREFIX "{\"time\":\"%s\",\"user\":\"%s\",\"uid\":%u,\"host\":\"%s\","
		 "\"key\":\"%s\",\"opened\":%lu,\"not_opened\":%lu}\n", when, who,
		 (unsigned)getuid(), host, pub, opened, failed);
	ret = blind_seal_append(audit, line, err, sizeof(err));
	if (ret < 0) {
		sodium_memzero(out, out_len);
		free(out);
		return rpmsctl_blind_fail("%s: nothing is shown without its audit record", err);
	}
	if (failed && !opened) {
		free(out);
		return rpmsctl_blind_fail("no record of %s opened with this key (%lu sealed to "
					  "another key, or damaged)", audit, failed);
	}
	fwrite(out, 1, out_len, stdout);
	sodium_memzero(out, out_len);
	free(out);
	if (failed) {
		return rpmsctl_blind_fail("%lu record(s) not opened (above)", failed);
	}
	return RPMSCTL_CONTROL_OK;
}
