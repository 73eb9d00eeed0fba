/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the event encoder (event_to_json): any bytes taken as an event
 * record (type, state, rule, action, NaN and infinite values, unterminated
 * reason strings, huge sample indices), any buffer size. It must return
 * the length of a NUL-terminated body that fits, -ENOSPC or -EINVAL,
 * never write past the buffer or read past the record.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event ev;
	size_t len;
	char *buf;
	int ret;

	if (size < sizeof(ev) + 2) {
		return 0;
	}
	memcpy(&ev, data, sizeof(ev));
	/* the buffer size from the input too, small sizes included */
	len = ((size_t)data[sizeof(ev)] << 8 | data[sizeof(ev) + 1]) % 4096;
	buf = malloc(len ? len : 1);
	if (!buf) {
		return 0;
	}
	ret = event_to_json(&ev, (uint64_t)size, 1000.0, buf, len);
	if (ret >= 0 && ((size_t)ret >= len || buf[ret] != '\0' || strlen(buf) != (size_t)ret)) {
		__builtin_trap();
	}
	if (ret < 0 && ret != -ENOSPC && ret != -EINVAL) {
		__builtin_trap();
	}
	free(buf);
	return 0;
}
