/* SPDX-License-Identifier: MIT */
/*
 * The MagVenture codec (plugins/serial/magventure_proto.c): the frames of
 * the protocol notes byte for byte, the CRC-8, the status decoder, and the
 * streaming reader: split frames, garbage, a bad length, a bad CRC, a
 * missing end byte, a good frame hidden inside a bad one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "magventure_proto.h"

#define TEST_MVP_ERR 256
#define TEST_MVP_MAX_FRAMES 16

static const uint8_t test_mvp_status_req[] = { 0xFE, 0x01, 0x00, 0x00, 0xFF };
static const uint8_t test_mvp_amp50[] = { 0xFE, 0x02, 0x01, 0x32, 0xC6, 0xFF };
static const uint8_t test_mvp_enable[] = { 0xFE, 0x02, 0x02, 0x01, 0xCF, 0xFF };
static const uint8_t test_mvp_fire[] = { 0xFE, 0x02, 0x03, 0x01, 0x0B, 0xFF };

/* What a reader gave back from a whole stream. */
struct test_mvp_got {
	size_t n;
	struct magventure_proto_frame f[TEST_MVP_MAX_FRAMES];
	struct magventure_proto_reader_stats stats;
};

/* Feed @len bytes in chunks of @chunk into a fresh reader; collect frames. */
static void test_mvp_run(const uint8_t *data, size_t len, size_t chunk,
			 struct test_mvp_got *got)
{
	struct magventure_proto_reader *r;
	size_t off = 0, n, want;

	memset(got, 0, sizeof(*got));
	assert_int_equal(magventure_proto_reader_create(&r), 0);
	while (off < len) {
		want = len - off < chunk ? len - off : chunk;
		n = magventure_proto_reader_feed(r, data + off, want);
		assert_true(n > 0);
		off += n;
		while (got->n < TEST_MVP_MAX_FRAMES &&
		       magventure_proto_reader_next(r, &got->f[got->n])) {
			got->n++;
		}
		assert_true(got->n < TEST_MVP_MAX_FRAMES);
	}
	magventure_proto_reader_stats(r, &got->stats);
	magventure_proto_reader_destroy(r);
}

static void test_mvp_payload(const struct magventure_proto_frame *f, const uint8_t *frame)
{
	assert_int_equal(f->len, frame[1]);
	assert_memory_equal(f->payload, frame + 2, f->len);
}

static void test_mvp_crc(void **state)
{
	static const uint8_t check[] = "123456789";

	(void)state;
	/* The catalogued check value of CRC-8/MAXIM-DOW. */
	assert_int_equal(magventure_proto_crc8(check, 9), 0xA1);
	assert_int_equal(magventure_proto_crc8(test_mvp_amp50 + 2, 2), 0xC6);
	assert_int_equal(magventure_proto_crc8(test_mvp_enable + 2, 2), 0xCF);
	assert_int_equal(magventure_proto_crc8(test_mvp_fire + 2, 2), 0x0B);
	assert_int_equal(magventure_proto_crc8(test_mvp_status_req + 2, 1), 0x00);
	assert_int_equal(magventure_proto_crc8(NULL, 0), 0x00);
}

/* The four frames of the notes, byte for byte. */
static void test_mvp_notes_frames(void **state)
{
	static const uint8_t disable[] = { 0xFE, 0x02, 0x02, 0x00, 0x91, 0xFF };
	static const uint8_t ext[] = { 0xFE, 0x01, 0x05, 0x3F, 0xFF };
	uint8_t buf[MAGVENTURE_PROTO_FRAME_MAX];
	char err[TEST_MVP_ERR];

	(void)state;
	assert_int_equal(magventure_proto_encode_status(buf, sizeof(buf), err, sizeof(err)), 5);
	assert_memory_equal(buf, test_mvp_status_req, 5);
	assert_int_equal(magventure_proto_encode_amplitude(50, buf, sizeof(buf), err,
							   sizeof(err)), 6);
	assert_memory_equal(buf, test_mvp_amp50, 6);
	assert_int_equal(magventure_proto_encode_enable(true, buf, sizeof(buf), err,
							sizeof(err)), 6);
	assert_memory_equal(buf, test_mvp_enable, 6);
	assert_int_equal(magventure_proto_encode_fire(buf, sizeof(buf), err, sizeof(err)), 6);
	assert_memory_equal(buf, test_mvp_fire, 6);
	/* Not in the notes: CRCs from the same algorithm, worked out apart. */
	assert_int_equal(magventure_proto_encode_enable(false, buf, sizeof(buf), err,
							sizeof(err)), 6);
	assert_memory_equal(buf, disable, 6);
	assert_int_equal(magventure_proto_encode_ext_status(buf, sizeof(buf), err,
							    sizeof(err)), 5);
	assert_memory_equal(buf, ext, 5);
}

static void test_mvp_encode_refused(void **state)
{
	uint8_t buf[MAGVENTURE_PROTO_FRAME_MAX], big[MAGVENTURE_PROTO_PAYLOAD_MAX + 1];
	char err[TEST_MVP_ERR];

	(void)state;
	memset(buf, 0xAA, sizeof(buf));
	strcpy(err, "untouched");
	assert_int_equal(magventure_proto_encode_amplitude(101, buf, sizeof(buf), err,
							   sizeof(err)), -ERANGE);
	assert_non_null(strstr(err, "101%"));
	assert_non_null(strstr(err, "0-100"));
	assert_int_equal(buf[0], 0xAA);
	assert_int_equal(magventure_proto_encode_amplitude(100, buf, sizeof(buf), err,
							   sizeof(err)), 6);
	assert_int_equal(magventure_proto_encode_amplitude(0, buf, sizeof(buf), err,
							   sizeof(err)), 6);
	strcpy(err, "untouched");
	assert_int_equal(magventure_proto_encode_status(buf, 4, err, sizeof(err)), -ENOSPC);
	assert_string_not_equal(err, "untouched");
	memset(big, 0, sizeof(big));
	strcpy(err, "untouched");
	assert_int_equal(magventure_proto_frame_encode(big, sizeof(big), buf, sizeof(buf), err,
						       sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1-64"));
	assert_int_equal(magventure_proto_frame_encode(big, 0, buf, sizeof(buf), err,
						       sizeof(err)), -EINVAL);
	assert_int_equal(magventure_proto_frame_encode(big, MAGVENTURE_PROTO_PAYLOAD_MAX, buf,
						       sizeof(buf), err, sizeof(err)),
			 MAGVENTURE_PROTO_FRAME_MAX);
}

/* A status payload laid out as the header's table says. */
static size_t test_mvp_status_payload(uint8_t *p)
{
	memset(p, 0, MAGVENTURE_PROTO_ST_LEN);
	p[MAGVENTURE_PROTO_ST_CMD] = MAGVENTURE_PROTO_CMD_STATUS;
	/* mode 2, waveform 1, enabled, model 5: 101 1 01 10 */
	p[MAGVENTURE_PROTO_ST_MODE] = 0xB6;
	p[MAGVENTURE_PROTO_ST_SERIAL] = 0x12;
	p[MAGVENTURE_PROTO_ST_SERIAL + 1] = 0x34;
	p[MAGVENTURE_PROTO_ST_SERIAL + 2] = 0x56;
	p[MAGVENTURE_PROTO_ST_COIL_TEMP] = 31;
	p[MAGVENTURE_PROTO_ST_COIL_TYPE] = MAGVENTURE_PROTO_COIL_COOL_B65;
	p[MAGVENTURE_PROTO_ST_AMPLITUDE_A] = 50;
	p[MAGVENTURE_PROTO_ST_AMPLITUDE_B] = 25;
	return MAGVENTURE_PROTO_ST_LEN;
}

/* Encode, read back through the reader, decode. */
static void test_mvp_status_round_trip(void **state)
{
	uint8_t p[MAGVENTURE_PROTO_PAYLOAD_MAX], buf[MAGVENTURE_PROTO_FRAME_MAX];
	struct magventure_proto_status s;
	struct test_mvp_got got;
	char err[TEST_MVP_ERR];
	size_t len = test_mvp_status_payload(p);
	int n;

	(void)state;
	n = magventure_proto_frame_encode(p, len, buf, sizeof(buf), err, sizeof(err));
	assert_int_equal(n, (int)len + 4);
	test_mvp_run(buf, (size_t)n, (size_t)n, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(magventure_proto_decode_status(&got.f[0], &s, err, sizeof(err)), 0);
	assert_int_equal(s.mode, 2);
	assert_int_equal(s.waveform, 1);
	assert_true(s.enabled);
	assert_int_equal(s.model, 5);
	assert_int_equal(s.serial, 0x123456);
	assert_int_equal(s.coil_temp_c, 31);
	assert_int_equal(s.coil_type, 60);
	assert_string_equal(magventure_proto_coil_name(s.coil_type), "Cool-B65");
	assert_int_equal(s.amplitude_a, 50);
	assert_int_equal(s.amplitude_b, 25);
	assert_string_equal(magventure_proto_coil_name(72), "C-B60");
	assert_string_equal(magventure_proto_coil_name(0), "no coil");
	assert_null(magventure_proto_coil_name(1));
}

static void test_mvp_status_errors(void **state)
{
	struct magventure_proto_frame f;
	struct magventure_proto_status s;
	char err[TEST_MVP_ERR];

	(void)state;
	memset(&s, 0x5A, sizeof(s));
	/* The reply to another command: the amplitude frame's payload. */
	f.len = 2;
	memcpy(f.payload, test_mvp_amp50 + 2, 2);
	strcpy(err, "untouched");
	assert_int_equal(magventure_proto_decode_status(&f, &s, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "0x01"));
	/* A status too short for the layout. */
	f.len = test_mvp_status_payload(f.payload) - 1;
	strcpy(err, "untouched");
	assert_int_equal(magventure_proto_decode_status(&f, &s, err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, "8 bytes"));
	/* An amplitude no device reports. */
	f.len = test_mvp_status_payload(f.payload);
	f.payload[MAGVENTURE_PROTO_ST_AMPLITUDE_B] = 200;
	strcpy(err, "untouched");
	assert_int_equal(magventure_proto_decode_status(&f, &s, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "200%"));
	assert_int_equal(((uint8_t *)&s)[0], 0x5A);
}

/* The four frames back to back, fed whole, one byte at a time, and in 3s. */
static void test_mvp_reader_split(void **state)
{
	uint8_t stream[64];
	struct test_mvp_got got;
	size_t len = 0, chunk;

	(void)state;
	memcpy(stream + len, test_mvp_status_req, sizeof(test_mvp_status_req));
	len += sizeof(test_mvp_status_req);
	memcpy(stream + len, test_mvp_amp50, sizeof(test_mvp_amp50));
	len += sizeof(test_mvp_amp50);
	memcpy(stream + len, test_mvp_enable, sizeof(test_mvp_enable));
	len += sizeof(test_mvp_enable);
	memcpy(stream + len, test_mvp_fire, sizeof(test_mvp_fire));
	len += sizeof(test_mvp_fire);
	for (chunk = 1; chunk <= len; chunk++) {
		test_mvp_run(stream, len, chunk, &got);
		assert_int_equal(got.n, 4);
		test_mvp_payload(&got.f[0], test_mvp_status_req);
		test_mvp_payload(&got.f[1], test_mvp_amp50);
		test_mvp_payload(&got.f[2], test_mvp_enable);
		test_mvp_payload(&got.f[3], test_mvp_fire);
		assert_int_equal(got.stats.frames, 4);
		assert_int_equal(got.stats.resyncs, 0);
		assert_int_equal(got.stats.dropped_bytes, 0);
	}
}

/* Garbage before, between and after frames, FF and FE among it. */
static void test_mvp_reader_garbage(void **state)
{
	static const uint8_t stream[] = {
		0x00, 0x13, 0xFF, 0x37,				/* garbage */
		0xFE, 0x02, 0x01, 0x32, 0xC6, 0xFF,		/* amplitude 50 % */
		0xFF, 0x42,					/* garbage */
		0xFE, 0x02, 0x03, 0x01, 0x0B, 0xFF,		/* fire */
		0x99,						/* garbage */
	};
	struct test_mvp_got got;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= sizeof(stream); chunk++) {
		test_mvp_run(stream, sizeof(stream), chunk, &got);
		assert_int_equal(got.n, 2);
		test_mvp_payload(&got.f[0], test_mvp_amp50);
		test_mvp_payload(&got.f[1], test_mvp_fire);
		assert_int_equal(got.stats.resyncs, 3);
		assert_int_equal(got.stats.dropped_bytes, 7);
		assert_int_equal(got.stats.crc_errors, 0);
	}
}

/* A wrong CRC drops that frame alone; the next one comes through. */
static void test_mvp_reader_bad_crc(void **state)
{
	static const uint8_t stream[] = {
		0xFE, 0x02, 0x01, 0x32, 0xC7, 0xFF,		/* CRC off by one */
		0xFE, 0x02, 0x02, 0x01, 0xCF, 0xFF,		/* enable */
	};
	struct test_mvp_got got;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= sizeof(stream); chunk++) {
		test_mvp_run(stream, sizeof(stream), chunk, &got);
		assert_int_equal(got.n, 1);
		test_mvp_payload(&got.f[0], test_mvp_enable);
		assert_int_equal(got.stats.crc_errors, 1);
		assert_int_equal(got.stats.resyncs, 1);
		assert_int_equal(got.stats.dropped_bytes, 6);
	}
}

/* No FF where the length puts it: dropped, the next frame found. */
static void test_mvp_reader_missing_end(void **state)
{
	static const uint8_t stream[] = {
		0xFE, 0x02, 0x01, 0x32, 0xC6,			/* FF lost */
		0xFE, 0x02, 0x03, 0x01, 0x0B, 0xFF,		/* fire */
	};
	struct test_mvp_got got;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= sizeof(stream); chunk++) {
		test_mvp_run(stream, sizeof(stream), chunk, &got);
		assert_int_equal(got.n, 1);
		test_mvp_payload(&got.f[0], test_mvp_fire);
		assert_int_equal(got.stats.missing_ends, 1);
		assert_int_equal(got.stats.resyncs, 1);
	}
}

/*
 * A start byte whose length claims the next frame's bytes: the reader gives
 * up on that FE only and finds the good frame inside. Then a length of 0,
 * one over the maximum, and FE FE.
 */
static void test_mvp_reader_fe_in_garbage(void **state)
{
	static const uint8_t stream[] = {
		0xFE, 0x05,					/* claims 9 bytes */
		0xFE, 0x01, 0x00, 0x00, 0xFF,			/* status request */
		0xFE, 0x00,					/* length 0 */
		0xFE, 0x41,					/* length 65 */
		0xFE,						/* FE FE */
		0xFE, 0x02, 0x02, 0x01, 0xCF, 0xFF,		/* enable */
	};
	struct test_mvp_got got;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= sizeof(stream); chunk++) {
		test_mvp_run(stream, sizeof(stream), chunk, &got);
		assert_int_equal(got.n, 2);
		test_mvp_payload(&got.f[0], test_mvp_status_req);
		test_mvp_payload(&got.f[1], test_mvp_enable);
		/* FE 05 fails its CRC or end; then 00, 0x41 and FE are bad lengths */
		assert_int_equal(got.stats.crc_errors + got.stats.missing_ends, 1);
		assert_int_equal(got.stats.bad_lengths, 3);
		assert_int_equal(got.stats.resyncs, 2);
		assert_int_equal(got.stats.dropped_bytes, 2 + 2 + 2 + 1);
	}
}

/* A partial frame is kept across feeds until reset forgets it. */
static void test_mvp_reader_reset(void **state)
{
	struct magventure_proto_reader *r;
	struct magventure_proto_frame f;
	struct magventure_proto_reader_stats st;

	(void)state;
	assert_int_equal(magventure_proto_reader_create(&r), 0);
	assert_int_equal(magventure_proto_reader_feed(r, test_mvp_fire, 3), 3);
	assert_false(magventure_proto_reader_next(r, &f));
	magventure_proto_reader_reset(r);
	/* The rest of the old frame is now garbage; a whole one comes through. */
	assert_int_equal(magventure_proto_reader_feed(r, test_mvp_fire + 3, 3), 3);
	assert_int_equal(magventure_proto_reader_feed(r, test_mvp_amp50, 6), 6);
	assert_true(magventure_proto_reader_next(r, &f));
	test_mvp_payload(&f, test_mvp_amp50);
	assert_false(magventure_proto_reader_next(r, &f));
	magventure_proto_reader_stats(r, &st);
	assert_int_equal(st.frames, 1);
	assert_int_equal(st.dropped_bytes, 6);
	magventure_proto_reader_destroy(r);
	magventure_proto_reader_destroy(NULL);
}

/*
 * A long stream of garbage with no FE never fills the reader: the feed
 * always takes bytes once next() has returned false.
 */
static void test_mvp_reader_long_garbage(void **state)
{
	uint8_t junk[1000];
	struct test_mvp_got got;

	(void)state;
	memset(junk, 0x55, sizeof(junk));
	junk[500] = 0xFE;
	junk[501] = 0x40;	/* a maximal frame that never ends well */
	test_mvp_run(junk, sizeof(junk), 97, &got);
	assert_int_equal(got.n, 0);
	assert_int_equal(got.stats.resyncs, 1);
	assert_int_equal(got.stats.crc_errors + got.stats.missing_ends, 1);
	/* everything up to the last, still incomplete, candidate is dropped */
	assert_true(got.stats.dropped_bytes >= sizeof(junk) - MAGVENTURE_PROTO_FRAME_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mvp_crc),
		cmocka_unit_test(test_mvp_notes_frames),
		cmocka_unit_test(test_mvp_encode_refused),
		cmocka_unit_test(test_mvp_status_round_trip),
		cmocka_unit_test(test_mvp_status_errors),
		cmocka_unit_test(test_mvp_reader_split),
		cmocka_unit_test(test_mvp_reader_garbage),
		cmocka_unit_test(test_mvp_reader_bad_crc),
		cmocka_unit_test(test_mvp_reader_missing_end),
		cmocka_unit_test(test_mvp_reader_fe_in_garbage),
		cmocka_unit_test(test_mvp_reader_reset),
		cmocka_unit_test(test_mvp_reader_long_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
