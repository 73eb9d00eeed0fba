/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the control socket's request parser (control_request_parse, linked
 * alone): any bytes as a request. It must return 0 with a request the
 * daemon can act on, or -EINVAL with a stable error code and a printable
 * message, never crash, leak or read past the buffer (the bytes are copied
 * into a buffer of exactly their size, not NUL-terminated).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_request req;
	struct control_error err;
	char *buf = malloc(size ? size : 1);
	size_t i;
	int ret;

	if (!buf) {
		return 0;
	}
	memcpy(buf, data, size);
	memset(&err, 0, sizeof(err));
	ret = control_request_parse(buf, size, &req, &err);
	if (ret == 0) {
		if (req.cmd >= CONTROL_CMD_COUNT || !control_request_cmd_name(req.cmd)) {
			__builtin_trap();
		}
		if (req.cmd == CONTROL_CMD_SESSION_START &&
		    (!control_request_id_valid(req.patient_id) ||
		     !control_request_id_valid(req.session_id))) {
			__builtin_trap();
		}
	} else {
		if (ret != -EINVAL || !err.code || !err.message[0]) {
			__builtin_trap();
		}
		for (i = 0; err.message[i]; i++) {
			if (err.message[i] < 0x20 || err.message[i] > 0x7e) {
				__builtin_trap();
			}
		}
	}
	free(buf);
	return 0;
}
