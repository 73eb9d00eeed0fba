/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the stimulator codecs of plugins/serial/: any bytes, cut in chunks
 * of a size the input picks, into the MagVenture frame reader, every frame
 * it yields into the status decoder; the same bytes as a reply to every
 * Magstim command. The reader must never yield a frame that is not whole
 * and good, never lose count of a byte, and always take bytes once its
 * frames are taken; the decoders return 0 or a documented error with a
 * message.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "magstim_proto.h"
#include "magventure_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_serial_magventure(const uint8_t *data, size_t size, size_t chunk)
{
	struct magventure_proto_reader_stats st;
	struct magventure_proto_reader *r;
	struct magventure_proto_frame f;
	struct magventure_proto_status s;
	uint8_t buf[MAGVENTURE_PROTO_FRAME_MAX];
	size_t off = 0, n, want, framed = 0;
	char err[256];
	int ret;

	if (magventure_proto_reader_create(&r) < 0) {
		return;
	}
	while (off < size) {
		want = size - off < chunk ? size - off : chunk;
		n = magventure_proto_reader_feed(r, data + off, want);
		if (n == 0) {
			__builtin_trap();	/* full after next() said "need more" */
		}
		off += n;
		while (magventure_proto_reader_next(r, &f)) {
			if (f.len < 1 || f.len > MAGVENTURE_PROTO_PAYLOAD_MAX) {
				__builtin_trap();
			}
			/* a yielded frame re-encodes to bytes that were in the input */
			ret = magventure_proto_frame_encode(f.payload, f.len, buf, sizeof(buf),
							    err, sizeof(err));
			if (ret != (int)f.len + 4 || !memmem(data, off, buf, (size_t)ret)) {
				__builtin_trap();
			}
			framed += (size_t)ret;
			err[0] = '\0';
			ret = magventure_proto_decode_status(&f, &s, err, sizeof(err));
			if (ret != 0 && ((ret != -EPROTO && ret != -EMSGSIZE && ret != -EBADMSG) ||
					 !err[0])) {
				__builtin_trap();
			}
		}
	}
	magventure_proto_reader_stats(r, &st);
	/* every byte framed, dropped, or pending in less than one frame */
	if (st.dropped_bytes + framed > size ||
	    st.dropped_bytes + framed + MAGVENTURE_PROTO_FRAME_MAX < size) {
		__builtin_trap();
	}
	magventure_proto_reader_destroy(r);
}

static void fuzz_serial_magstim(const uint8_t *data, size_t size)
{
	static const unsigned int params[] = { 21, 22, 24 };
	struct magstim_proto_reply rep;
	char err[256];
	int c, ret;

	for (c = 0; c < MAGSTIM_PROTO_N_CMDS; c++) {
		err[0] = '\0';
		ret = magstim_proto_decode((enum magstim_proto_cmd)c, params[size % 3], data, size,
					   &rep, err, sizeof(err));
		if (ret == 0 && ((int)rep.cmd != c || rep.data_len + 3 != size)) {
			__builtin_trap();
		}
		if (ret != 0 && (!err[0] || (ret != -EOPNOTSUPP && ret != -EINVAL &&
					     ret != -EBUSY && ret != -EPROTO &&
					     ret != -EMSGSIZE && ret != -EBADMSG))) {
			__builtin_trap();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1) {
		return 0;
	}
	fuzz_serial_magventure(data + 1, size - 1, (size_t)data[0] % 80 + 1);
	fuzz_serial_magstim(data + 1, size - 1);
	return 0;
}
