/* SPDX-License-Identifier: MIT */
/*
 * The Magstim codec (plugins/serial/magstim_proto.c): every command's bytes
 * with its checksum worked out by hand (~(sum) & 0xFF), power ranges, the
 * unlock-code connect, every reply error path, the settle time.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "magstim_proto.h"

#define TEST_MSP_ERR 256

/* "ERR" is always filled on failure: start it non-empty to see it change. */
static void test_msp_err_reset(char *err)
{
	strcpy(err, "untouched");
}

static void test_msp_bytes(const uint8_t *got, int n, const uint8_t *want, size_t len)
{
	assert_int_equal(n, (int)len);
	assert_memory_equal(got, want, len);
}

/*
 * Each sum by hand: 'Q' 0x51 + '@' 0x40 = 0x91, ~ = 0x6E; 'E' 0x45 + 'B'
 * 0x42 = 0x87, ~ = 0x78; and so on.
 */
static void test_msp_commands(void **state)
{
	static const struct {
		enum magstim_proto_cmd cmd;
		uint8_t bytes[3];
	} want[] = {
		{ MAGSTIM_PROTO_REMOTE_ON, { 'Q', '@', 0x6E } },
		{ MAGSTIM_PROTO_REMOTE_OFF, { 'R', '@', 0x6D } },
		{ MAGSTIM_PROTO_ARM, { 'E', 'B', 0x78 } },
		{ MAGSTIM_PROTO_DISARM, { 'E', 'A', 0x79 } },
		{ MAGSTIM_PROTO_FIRE, { 'E', 'H', 0x72 } },
		{ MAGSTIM_PROTO_TEMPERATURE, { 'F', '@', 0x79 } },
		{ MAGSTIM_PROTO_ERROR_CODE, { 'I', '@', 0x76 } },
		{ MAGSTIM_PROTO_SYSTEM_STATUS, { 'x', '@', 0x47 } },
		{ MAGSTIM_PROTO_PARAMETERS, { '\\', '@', 0x63 } },
	};
	uint8_t buf[MAGSTIM_PROTO_CMD_MAX];
	char err[TEST_MSP_ERR];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		test_msp_bytes(buf, magstim_proto_encode(want[i].cmd, buf, sizeof(buf), err,
							 sizeof(err)), want[i].bytes, 3);
		assert_int_equal(magstim_proto_checksum(buf, 2), want[i].bytes[2]);
	}
	assert_string_equal(magstim_proto_cmd_name(MAGSTIM_PROTO_ARM), "EB");
	assert_string_equal(magstim_proto_cmd_name(MAGSTIM_PROTO_N_CMDS), "?");
}

static void test_msp_encode_refused(void **state)
{
	uint8_t buf[MAGSTIM_PROTO_CMD_MAX];
	char err[TEST_MSP_ERR];

	(void)state;
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode(MAGSTIM_PROTO_POWER, buf, sizeof(buf), err,
					      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "@NNN"));
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode(MAGSTIM_PROTO_N_CMDS, buf, sizeof(buf), err,
					      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown command"));
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode(MAGSTIM_PROTO_ARM, buf, 2, err, sizeof(err)),
			 -ENOSPC);
	assert_non_null(strstr(err, "EB"));
}

/* '@' 0x40 + '0' 0x30 + '5' 0x35 + '0' 0x30 = 0xD5, ~ = 0x2A. */
static void test_msp_power(void **state)
{
	static const uint8_t p50[] = { '@', '0', '5', '0', 0x2A };
	static const uint8_t p0[] = { '@', '0', '0', '0', 0x2F };
	static const uint8_t p100[] = { '@', '1', '0', '0', 0x2E };
	static const uint8_t p110[] = { '@', '1', '1', '0', 0x2D };
	uint8_t buf[MAGSTIM_PROTO_CMD_MAX];
	char err[TEST_MSP_ERR];

	(void)state;
	test_msp_bytes(buf, magstim_proto_encode_power(50, false, buf, sizeof(buf), err,
						       sizeof(err)), p50, sizeof(p50));
	test_msp_bytes(buf, magstim_proto_encode_power(0, false, buf, sizeof(buf), err,
						       sizeof(err)), p0, sizeof(p0));
	test_msp_bytes(buf, magstim_proto_encode_power(100, false, buf, sizeof(buf), err,
						       sizeof(err)), p100, sizeof(p100));
	test_msp_bytes(buf, magstim_proto_encode_power(110, true, buf, sizeof(buf), err,
						       sizeof(err)), p110, sizeof(p110));

	/* Out of range: refused, the buffer left alone, the message names both. */
	memset(buf, 0xAA, sizeof(buf));
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode_power(101, false, buf, sizeof(buf), err,
						    sizeof(err)), -ERANGE);
	assert_non_null(strstr(err, "101%"));
	assert_non_null(strstr(err, "0-100"));
	assert_int_equal(buf[0], 0xAA);
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode_power(111, true, buf, sizeof(buf), err,
						    sizeof(err)), -ERANGE);
	assert_non_null(strstr(err, "0-110"));
	assert_int_equal(magstim_proto_encode_power(1000, true, buf, sizeof(buf), err,
						    sizeof(err)), -ERANGE);
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode_power(50, false, buf, 4, err, sizeof(err)),
			 -ENOSPC);
	assert_string_not_equal(err, "untouched");
}

/* 'Q' + "1234": 0x51 + 0x31 + 0x32 + 0x33 + 0x34 = 0x11B, ~ & 0xFF = 0xE4. */
static void test_msp_connect(void **state)
{
	static const uint8_t code[] = { 'Q', '1', '2', '3', '4', 0xE4 };
	static const uint8_t plain[] = { 'Q', '@', 0x6E };
	uint8_t buf[MAGSTIM_PROTO_CMD_MAX];
	char err[TEST_MSP_ERR];

	(void)state;
	test_msp_bytes(buf, magstim_proto_encode_connect("1234", buf, sizeof(buf), err,
							 sizeof(err)), code, sizeof(code));
	test_msp_bytes(buf, magstim_proto_encode_connect(NULL, buf, sizeof(buf), err,
							 sizeof(err)), plain, sizeof(plain));
	test_msp_bytes(buf, magstim_proto_encode_connect("", buf, sizeof(buf), err,
							 sizeof(err)), plain, sizeof(plain));
	/* A bad code is refused without being echoed. */
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode_connect("12 4", buf, sizeof(buf), err,
						      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "character 3"));
	assert_null(strstr(err, "12 4"));
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode_connect("12345678901234567", buf, sizeof(buf), err,
						      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than 16"));
	assert_int_equal(magstim_proto_encode_connect("1234567890123456", buf, sizeof(buf), err,
						      sizeof(err)), 18);
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_encode_connect("1234", buf, 5, err, sizeof(err)),
			 -ENOSPC);
	assert_string_not_equal(err, "untouched");
}

static void test_msp_reply_len(void **state)
{
	(void)state;
	assert_int_equal(magstim_proto_reply_len(MAGSTIM_PROTO_REMOTE_ON, 0), 3);
	assert_int_equal(magstim_proto_reply_len(MAGSTIM_PROTO_TEMPERATURE, 0), 9);
	assert_int_equal(magstim_proto_reply_len(MAGSTIM_PROTO_PARAMETERS, 21), 21);
	assert_int_equal(magstim_proto_reply_len(MAGSTIM_PROTO_PARAMETERS, 22), 22);
	assert_int_equal(magstim_proto_reply_len(MAGSTIM_PROTO_PARAMETERS, 24), 24);
	assert_int_equal(magstim_proto_reply_len(MAGSTIM_PROTO_PARAMETERS, 23), -EINVAL);
	assert_int_equal(magstim_proto_reply_len(MAGSTIM_PROTO_N_CMDS, 21), -EINVAL);
}

static void test_msp_status_bits(void **state)
{
	struct magstim_proto_status s;
	int bit;

	(void)state;
	for (bit = 0; bit < 8; bit++) {
		magstim_proto_status_parse((uint8_t)(1u << bit), &s);
		assert_int_equal(s.raw, 1u << bit);
		assert_int_equal(s.standby, bit == 0);
		assert_int_equal(s.armed, bit == 1);
		assert_int_equal(s.ready, bit == 2);
		assert_int_equal(s.coil_present, bit == 3);
		assert_int_equal(s.replace_coil, bit == 4);
		assert_int_equal(s.error_present, bit == 5);
		assert_int_equal(s.error_type, bit == 6);
		assert_int_equal(s.remote, bit == 7);
	}
}

/*
 * Good replies: "Q@" answered by 'Q', status 0x88 (remote, coil present),
 * checksum ~(0x51 + 0x88) = ~0xD9 = 0x26; "F@" by 'F', 0x8E, "235241",
 * checksum ~(0x46 + 0x8E + 0x32 0x33 0x35 0x32 0x34 0x31) = ~0x205 -> 0xFA.
 */
static void test_msp_decode_good(void **state)
{
	static const uint8_t q[] = { 'Q', 0x88, 0x26 };
	static const uint8_t f[] = { 'F', 0x8E, '2', '3', '5', '2', '4', '1', 0xFA };
	uint8_t p[22];
	struct magstim_proto_reply r;
	char err[TEST_MSP_ERR];

	(void)state;
	assert_int_equal(magstim_proto_decode(MAGSTIM_PROTO_REMOTE_ON, 0, q, sizeof(q), &r, err,
					      sizeof(err)), 0);
	assert_int_equal(r.cmd, MAGSTIM_PROTO_REMOTE_ON);
	assert_true(r.status.remote);
	assert_true(r.status.coil_present);
	assert_false(r.status.armed);
	assert_int_equal(r.data_len, 0);
	assert_int_equal(r.temp_dc[0], -1);

	assert_int_equal(magstim_proto_decode(MAGSTIM_PROTO_TEMPERATURE, 0, f, sizeof(f), &r, err,
					      sizeof(err)), 0);
	assert_true(r.status.armed);
	assert_true(r.status.ready);
	assert_int_equal(r.temp_dc[0], 235);
	assert_int_equal(r.temp_dc[1], 241);
	assert_int_equal(r.data_len, 6);

	/* A parameter reply of the length the caller gave, built round trip. */
	memset(p, '0', sizeof(p));
	p[0] = '\\';
	p[1] = 0x80;
	p[21] = magstim_proto_checksum(p, 21);
	assert_int_equal(magstim_proto_decode(MAGSTIM_PROTO_PARAMETERS, 22, p, 22, &r, err,
					      sizeof(err)), 0);
	assert_int_equal(r.data_len, 19);
	assert_int_equal(magstim_proto_decode(MAGSTIM_PROTO_PARAMETERS, 21, p, 22, &r, err,
					      sizeof(err)), -EMSGSIZE);
}

/* Decode @buf expecting @ret, with @out untouched and @err mentioning @what. */
static void test_msp_decode_fails(enum magstim_proto_cmd cmd, const uint8_t *buf, size_t len,
				  int ret, const char *what)
{
	struct magstim_proto_reply r;
	char err[TEST_MSP_ERR];

	memset(&r, 0x5A, sizeof(r));
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_decode(cmd, 0, buf, len, &r, err, sizeof(err)), ret);
	assert_non_null(strstr(err, what));
	assert_non_null(strstr(err, magstim_proto_cmd_name(cmd)));
	assert_int_equal(((uint8_t *)&r)[0], 0x5A);
}

static void test_msp_decode_errors(void **state)
{
	static const uint8_t invalid[] = { '?', 0x00, 0xC0 };
	static const uint8_t bad_data[] = { '@', '?', 0x80 };
	static const uint8_t conflict[] = { 'E', 'S', 0x67 };
	static const uint8_t other[] = { 'R', 0x88, 0x25 };
	static const uint8_t short_q[] = { 'Q', 0x88 };
	static const uint8_t long_q[] = { 'Q', 0x88, 0x26, 0x00 };
	static const uint8_t bad_sum[] = { 'Q', 0x88, 0x27 };
	static const uint8_t bad_temp[] = { 'F', 0x8E, '2', '3', 'x', '2', '4', '1', 0xB7 };
	struct magstim_proto_reply r;
	char err[TEST_MSP_ERR];

	(void)state;
	test_msp_decode_fails(MAGSTIM_PROTO_ARM, invalid, sizeof(invalid), -EOPNOTSUPP,
			      "invalid");
	test_msp_decode_fails(MAGSTIM_PROTO_ARM, invalid, 1, -EOPNOTSUPP, "invalid");
	test_msp_decode_fails(MAGSTIM_PROTO_POWER, bad_data, sizeof(bad_data), -EINVAL,
			      "refused the data");
	test_msp_decode_fails(MAGSTIM_PROTO_ARM, conflict, sizeof(conflict), -EBUSY,
			      "conflicts");
	test_msp_decode_fails(MAGSTIM_PROTO_REMOTE_ON, other, sizeof(other), -EPROTO,
			      "does not echo 'Q'");
	test_msp_decode_fails(MAGSTIM_PROTO_REMOTE_ON, short_q, sizeof(short_q), -EMSGSIZE,
			      "2 bytes, expected 3");
	test_msp_decode_fails(MAGSTIM_PROTO_REMOTE_ON, long_q, sizeof(long_q), -EMSGSIZE,
			      "4 bytes, expected 3");
	test_msp_decode_fails(MAGSTIM_PROTO_REMOTE_ON, short_q, 0, -EMSGSIZE, "no reply");
	test_msp_decode_fails(MAGSTIM_PROTO_REMOTE_ON, bad_sum, sizeof(bad_sum), -EBADMSG,
			      "bad checksum 27, expected 26");
	/* The checksum of bad_temp is right (~0x248): the digits are what fails. */
	assert_int_equal(magstim_proto_checksum(bad_temp, 8), 0xB7);
	test_msp_decode_fails(MAGSTIM_PROTO_TEMPERATURE, bad_temp, sizeof(bad_temp), -EBADMSG,
			      "decimal");
	test_msp_decode_fails(MAGSTIM_PROTO_REMOTE_ON, short_q, sizeof(short_q), -EMSGSIZE,
			      "heard: 51 88");

	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_decode(MAGSTIM_PROTO_PARAMETERS, 20, bad_sum, 3, &r, err,
					      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "21, 22, 24"));
	test_msp_err_reset(err);
	assert_int_equal(magstim_proto_decode(MAGSTIM_PROTO_N_CMDS, 0, bad_sum, 3, &r, err,
					      sizeof(err)), -EINVAL);
	assert_string_not_equal(err, "untouched");
}

/* Every command's reply, built with the checksum, decodes to its command. */
static void test_msp_round_trip(void **state)
{
	struct magstim_proto_reply r;
	uint8_t cmd[MAGSTIM_PROTO_CMD_MAX], rep[MAGSTIM_PROTO_REPLY_MAX];
	char err[TEST_MSP_ERR];
	int c, len, n;

	(void)state;
	for (c = 0; c < MAGSTIM_PROTO_N_CMDS; c++) {
		n = c == MAGSTIM_PROTO_POWER
			? magstim_proto_encode_power(42, false, cmd, sizeof(cmd), err, sizeof(err))
			: magstim_proto_encode((enum magstim_proto_cmd)c, cmd, sizeof(cmd), err,
					       sizeof(err));
		assert_true(n >= 3);
		assert_int_equal(magstim_proto_checksum(cmd, (size_t)n - 1), cmd[n - 1]);
		len = magstim_proto_reply_len((enum magstim_proto_cmd)c, 24);
		assert_true(len >= 3 && len <= MAGSTIM_PROTO_REPLY_MAX);
		memset(rep, '1', sizeof(rep));
		rep[0] = cmd[0];
		rep[1] = MAGSTIM_PROTO_ST_REMOTE | MAGSTIM_PROTO_ST_COIL_PRESENT;
		rep[len - 1] = magstim_proto_checksum(rep, (size_t)len - 1);
		assert_int_equal(magstim_proto_decode((enum magstim_proto_cmd)c, 24, rep,
						      (size_t)len, &r, err, sizeof(err)), 0);
		assert_int_equal(r.cmd, c);
		assert_int_equal(r.data_len, (size_t)len - 3);
	}
}

static void test_msp_settle(void **state)
{
	(void)state;
	assert_int_equal(magstim_proto_settle_ms(30, 50), 200);
	assert_int_equal(magstim_proto_settle_ms(50, 30), 2000);
	assert_int_equal(magstim_proto_settle_ms(50, 50), 0);
	assert_int_equal(magstim_proto_settle_ms(0, 110), 1100);
	assert_int_equal(magstim_proto_settle_ms(110, 0), 11000);
	assert_int_equal(MAGSTIM_PROTO_KEEPALIVE_DISARMED_MS, 5000);
	assert_int_equal(MAGSTIM_PROTO_KEEPALIVE_ARMED_MS, 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msp_commands),
		cmocka_unit_test(test_msp_encode_refused),
		cmocka_unit_test(test_msp_power),
		cmocka_unit_test(test_msp_connect),
		cmocka_unit_test(test_msp_reply_len),
		cmocka_unit_test(test_msp_status_bits),
		cmocka_unit_test(test_msp_decode_good),
		cmocka_unit_test(test_msp_decode_errors),
		cmocka_unit_test(test_msp_round_trip),
		cmocka_unit_test(test_msp_settle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
