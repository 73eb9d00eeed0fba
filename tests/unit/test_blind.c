/* SPDX-License-Identifier: MIT */
/*
 * Blinding (docs/sham.md): the allocation file's parser and its mode and
 * owner check, and the sealed audit record's round trip (libsodium).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "blind.h"
#include "blind_seal.h"

/* Parse @text as an allocation named "alloc"; the message in @err. */
static int test_blind_parse(const char *text, struct blind_alloc **a, char *err, size_t len)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int ret;

	assert_non_null(f);
	ret = blind_alloc_parse("alloc", f, a, err, len);
	fclose(f);
	return ret;
}

static void test_blind_alloc_good(void **state)
{
	struct blind_alloc *a;
	enum blind_arm arm;
	char err[512], code[BLIND_CODE_MAX + 1];

	(void)state;
	assert_int_equal(test_blind_parse("# trial T1\n\nC-1 active K7\n  C.2\tsham  Q2 # late\n"
					  "C_3 sham abcdefghijklmnop\n", &a, err, sizeof(err)), 0);
	assert_int_equal(blind_alloc_count(a), 3);
	assert_int_equal(blind_alloc_find(a, "C-1", &arm, code), 0);
	assert_int_equal(arm, BLIND_ARM_ACTIVE);
	assert_string_equal(code, "K7");
	assert_int_equal(blind_alloc_find(a, "C.2", &arm, code), 0);
	assert_int_equal(arm, BLIND_ARM_SHAM);
	assert_string_equal(code, "Q2");
	assert_int_equal(blind_alloc_find(a, "C_3", &arm, code), 0);
	assert_string_equal(code, "abcdefghijklmnop");
	assert_int_equal(blind_alloc_find(a, "C-4", &arm, code), -ENOENT);
	blind_alloc_free(a);
	blind_alloc_free(NULL);
}

/* Every bad line: FILE:LINE, what was wrong, what is allowed; nothing returned. */
static void test_blind_alloc_bad(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "C-1 active\n", "alloc:1: expected 3 fields, COURSE_ID ARM ARM_CODE (found 2)" },
		{ "C-1 active K7 x\n", "alloc:1: expected 3 fields, COURSE_ID ARM ARM_CODE "
		  "(found more than 3)" },
		{ "# c\nC-1 placebo K7\n", "alloc:2: course C-1: unknown arm 'placebo' (allowed: "
		  "active, sham)" },
		{ "C-1 active K7\nC-2 sham Q2\nC-1 sham Z9\n", "alloc:3: course C-1: allocated "
		  "twice (first at line 1)" },
		{ "-C1 active K7\n", "alloc:1: course id '-C1' (allowed: 1 to 36 characters" },
		{ "C-1 active sham\n", "alloc:1: course C-1: arm code 'sham' (allowed: 1 to 16 "
		  "characters of A-Z a-z 0-9 _ -, not 'active' or 'sham')" },
		{ "C-1 active ACTIVE\n", "alloc:1: course C-1: arm code 'ACTIVE'" },
		{ "C-1 active abcdefghijklmnopq\n", "alloc:1: course C-1: arm code" },
		{ "C-1 active K/7\n", "alloc:1: course C-1: arm code 'K/7'" },
	};
	struct blind_alloc *a = (struct blind_alloc *)&a;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(test_blind_parse(cases[i].text, &a, err, sizeof(err)), -EINVAL);
		assert_null(a);
		if (strncmp(err, cases[i].msg, strlen(cases[i].msg))) {
			fail_msg("case %zu: '%s', expected '%s...'", i, err, cases[i].msg);
		}
	}
}

/* A line longer than the reader's buffer is an error, not two lines. */
static void test_blind_alloc_long_line(void **state)
{
	struct blind_alloc *a;
	char text[600], err[512];

	(void)state;
	memset(text, 'x', sizeof(text) - 2);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(test_blind_parse(text, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "alloc:1: line too long"));
}

/* Mode 0600 and this user only: anything else is refused, saying what was found. */
static void test_blind_alloc_mode(void **state)
{
	char path[] = "/tmp/test_blind_XXXXXX", err[512];
	struct blind_alloc *a;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "C-1 sham Q2\n", 12), 12);
	close(fd);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(blind_alloc_load(path, &a, err, sizeof(err)), 0);
	assert_int_equal(blind_alloc_count(a), 1);
	blind_alloc_free(a);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(blind_alloc_load(path, &a, err, sizeof(err)), -EPERM);
	assert_null(a);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "mode 0644"));
	assert_non_null(strstr(err, "(required: a regular file of mode 0600 owned by the "
				    "daemon's user"));
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(blind_alloc_load(path, &a, err, sizeof(err)), -EPERM);
	assert_int_equal(blind_alloc_load("/nonexistent/alloc", &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "blind.allocation: /nonexistent/alloc"));
	unlink(path);
}

/* Sealed to the public key, opened by its secret key only; one length for every record. */
static void test_blind_seal_round_trip(void **state)
{
	uint8_t pk[BLIND_SEAL_KEY_LEN], sk[BLIND_SEAL_KEY_LEN];
	uint8_t pk2[BLIND_SEAL_KEY_LEN], sk2[BLIND_SEAL_KEY_LEN];
	char a[BLIND_SEAL_LINE_MAX], b[BLIND_SEAL_LINE_MAX], plain[BLIND_SEAL_PLAIN];
	char big[BLIND_SEAL_PLAIN + 1];

	(void)state;
	assert_int_equal(blind_seal_init(), 0);
	crypto_box_keypair(pk, sk);
	crypto_box_keypair(pk2, sk2);
	assert_int_equal(blind_seal_line(pk, "{\"arm\":\"sham\"}", a, sizeof(a)), 0);
	assert_int_equal(blind_seal_line(pk, "{\"arm\":\"active\",\"x\":1}", b, sizeof(b)), 0);
	assert_int_equal(strncmp(a, BLIND_SEAL_PREFIX, strlen(BLIND_SEAL_PREFIX)), 0);
	assert_int_equal(strlen(a), strlen(b));
	assert_int_equal(a[strlen(a) - 1], '\n');
	assert_null(strstr(a, "sham"));
	assert_int_equal(blind_seal_open_line(sk, a, plain, sizeof(plain)), 0);
	assert_string_equal(plain, "{\"arm\":\"sham\"}");
	assert_int_equal(blind_seal_open_line(sk, b, plain, sizeof(plain)), 0);
	assert_string_equal(plain, "{\"arm\":\"active\",\"x\":1}");
	/* another key, a changed byte, not a sealed line */
	assert_int_equal(blind_seal_open_line(sk2, a, plain, sizeof(plain)), -EBADMSG);
	a[20] = a[20] == 'A' ? 'B' : 'A';
	assert_int_equal(blind_seal_open_line(sk, a, plain, sizeof(plain)), -EBADMSG);
	assert_int_equal(blind_seal_open_line(sk, "unblind {}", plain, sizeof(plain)), -EBADMSG);
	assert_int_equal(blind_seal_open_line(sk, "sealed abc", plain, sizeof(plain)), -EBADMSG);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(blind_seal_line(pk, big, a, sizeof(a)), -E2BIG);
	assert_int_equal(blind_seal_line(pk, "{}", a, 100), -ENOSPC);
}

/* Appended whole, the file created 0600. */
static void test_blind_seal_append(void **state)
{
	char dir[] = "/tmp/test_blind_XXXXXX", path[64], err[256], buf[64];
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit", dir);
	assert_int_equal(blind_seal_append(path, "one\n", err, sizeof(err)), 0);
	assert_int_equal(blind_seal_append(path, "two\n", err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf), f), 8);
	fclose(f);
	assert_memory_equal(buf, "one\ntwo\n", 8);
	unlink(path);
	rmdir(dir);
	assert_true(blind_seal_append("/nonexistent/audit", "x\n", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "audit file /nonexistent/audit: cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blind_alloc_good),
		cmocka_unit_test(test_blind_alloc_bad),
		cmocka_unit_test(test_blind_alloc_long_line),
		cmocka_unit_test(test_blind_alloc_mode),
		cmocka_unit_test(test_blind_seal_round_trip),
		cmocka_unit_test(test_blind_seal_append),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
