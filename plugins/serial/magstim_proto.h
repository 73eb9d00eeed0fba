/* SPDX-License-Identifier: MIT */
/*
 * The Magstim serial protocol (200², BiStim², Rapid²), pure: commands to
 * bytes and reply bytes to values, no I/O, no allocation, no state. The
 * magstim plugin's serial thread owns the link (tty.h) and the timing.
 *
 * Written from the protocol facts in the project's stimulator notes (not
 * from any driver's code). A command is ASCII bytes followed by one
 * checksum byte, ~(sum of the bytes) & 0xFF: remote control on "Q@", off
 * "R@", arm "EB", disarm "EA", fire "EH", power "@NNN", temperature "F@",
 * error code "I@", system status "x@", parameters "\@". A reply echoes the
 * command's first byte, then the instrument status byte (bits below),
 * then the command's data, then a checksum of the same kind. '?' as the
 * first byte: invalid command; '?' or 'S' as the second: bad data or a
 * conflict.
 *
 * Link: 9600 baud, 8N1, no flow control, RTS held low.
 *
 * What the notes give and what is ASSUMED here (verify on a real rig):
 *   reply lengths     given: "Q@" 3 bytes, "F@" 9, "\@" 21/22/24 by
 *                     software version. ASSUMED: "R@", "EB", "EA", "EH",
 *                     "@NNN" and the unlock-code connect 3 (echo, status,
 *                     checksum, the shape of "Q@"); "I@" and "x@" 6 (echo,
 *                     status, 3 data bytes, checksum). All in one table,
 *                     magstim_proto_reply_len() in magstim_proto.c.
 *   "\@" by version   which software version gives 21, 22 or 24 bytes is
 *                     not in the notes: the caller passes the length.
 *   "F@" data         given: two coil-winding temperatures in 0.1 °C in
 *                     9 bytes. ASSUMED: each is 3 ASCII decimal digits,
 *                     coil 1 then coil 2 ("F", status, "235", "241", sum).
 *   error replies     the length of a '?'/'S' reply is not in the notes:
 *                     they are recognised from their first two bytes,
 *                     whatever their length and checksum. A status byte of
 *                     0x3F ('?') or 0x53 ('S') would read as one: the notes
 *                     say nothing of how the unit avoids that.
 *   unlock code       given: with software >= 9 the connect command carries
 *                     the code and the keep-alive is "x@". The exact byte
 *                     layout is NOT in the notes. GUESS: 'Q' followed by
 *                     the code's ASCII bytes in place of '@', then the
 *                     checksum (magstim_proto_encode_connect).
 */
#ifndef RPMSD_MAGSTIM_PROTO_H
#define RPMSD_MAGSTIM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The link's baud rate (8N1, no flow control, RTS low). */
#define MAGSTIM_PROTO_BAUD 9600

/** Room for any command this module encodes, checksum included. */
#define MAGSTIM_PROTO_CMD_MAX 24

/** No reply is longer ("\@" on the newest software: 24 bytes). */
#define MAGSTIM_PROTO_REPLY_MAX 24

/** The longest unlock code magstim_proto_encode_connect accepts. */
#define MAGSTIM_PROTO_CODE_MAX 16

/** Power limits in %: normal mode, and enhanced-power mode. */
#define MAGSTIM_PROTO_POWER_MAX 100
#define MAGSTIM_PROTO_POWER_MAX_ENHANCED 110

/**
 * Keep-alive periods: the unit drops remote control when the host is
 * silent; re-send the keep-alive ("Q@", or "x@" with an unlock code) at
 * least this often. Any command resets the timer.
 */
#define MAGSTIM_PROTO_KEEPALIVE_DISARMED_MS 5000
#define MAGSTIM_PROTO_KEEPALIVE_ARMED_MS 500

/** Wait about this long after arming before relying on "ready". */
#define MAGSTIM_PROTO_ARM_WAIT_MS 1000

/** The unit disarms itself after about this long armed without a pulse. */
#define MAGSTIM_PROTO_IDLE_DISARM_MS 60000

/** The unit disarms above this coil temperature, in 0.1 °C (40.0 °C). */
#define MAGSTIM_PROTO_TEMP_CUTOFF_DC 400

/** Settle time of a power change, per % raised and per % lowered. */
#define MAGSTIM_PROTO_SETTLE_UP_MS_PER_PCT 10
#define MAGSTIM_PROTO_SETTLE_DOWN_MS_PER_PCT 100

/** The instrument status byte, the second byte of every good reply. */
#define MAGSTIM_PROTO_ST_STANDBY	(1u << 0)
#define MAGSTIM_PROTO_ST_ARMED		(1u << 1)
#define MAGSTIM_PROTO_ST_READY		(1u << 2)
#define MAGSTIM_PROTO_ST_COIL_PRESENT	(1u << 3)
#define MAGSTIM_PROTO_ST_REPLACE_COIL	(1u << 4)
#define MAGSTIM_PROTO_ST_ERROR_PRESENT	(1u << 5)
#define MAGSTIM_PROTO_ST_ERROR_TYPE	(1u << 6)
#define MAGSTIM_PROTO_ST_REMOTE		(1u << 7)

/** The commands; the comment is their bytes before the checksum. */
enum magstim_proto_cmd {
	MAGSTIM_PROTO_REMOTE_ON,	/* "Q@" (or 'Q' + unlock code) */
	MAGSTIM_PROTO_REMOTE_OFF,	/* "R@" */
	MAGSTIM_PROTO_ARM,		/* "EB" */
	MAGSTIM_PROTO_DISARM,		/* "EA" */
	MAGSTIM_PROTO_FIRE,		/* "EH" */
	MAGSTIM_PROTO_POWER,		/* "@NNN", magstim_proto_encode_power */
	MAGSTIM_PROTO_TEMPERATURE,	/* "F@" */
	MAGSTIM_PROTO_ERROR_CODE,	/* "I@" */
	MAGSTIM_PROTO_SYSTEM_STATUS,	/* "x@" */
	MAGSTIM_PROTO_PARAMETERS,	/* "\@" */
	MAGSTIM_PROTO_N_CMDS
};

/** The instrument status byte, bit by bit. */
struct magstim_proto_status {
	uint8_t raw;
	bool standby;
	bool armed;
	bool ready;
	bool coil_present;
	bool replace_coil;
	bool error_present;
	bool error_type;
	bool remote;
};

/** A good reply, decoded. */
struct magstim_proto_reply {
	enum magstim_proto_cmd cmd;	/* the command it answers */
	struct magstim_proto_status status;
	/* the bytes between the status byte and the checksum, raw */
	uint8_t data[MAGSTIM_PROTO_REPLY_MAX];
	size_t data_len;
	/* MAGSTIM_PROTO_TEMPERATURE only: coil 1 and 2 in 0.1 °C, else -1 */
	int temp_dc[2];
};

/**
 * The checksum of @len bytes: ~(their sum) & 0xFF.
 */
uint8_t magstim_proto_checksum(const uint8_t *buf, size_t len);

/**
 * A human name of @cmd for messages: its ASCII bytes ("Q@", "@NNN"), or
 * "?" for a value outside the enum.
 */
const char *magstim_proto_cmd_name(enum magstim_proto_cmd cmd);

/**
 * Encode a command that carries no value (every one but
 * MAGSTIM_PROTO_POWER): its two ASCII bytes and the checksum.
 * @param buf   receives the bytes
 * @param size  room in @buf (MAGSTIM_PROTO_CMD_MAX is always enough)
 * @return the number of bytes (3), -EINVAL for MAGSTIM_PROTO_POWER or a
 *         value outside the enum, -ENOSPC when @buf is too small; @err
 *         says which on every failure
 */
int magstim_proto_encode(enum magstim_proto_cmd cmd, uint8_t *buf, size_t size,
			 char *err, size_t errlen);

/**
 * Encode a power setting, "@" and three decimal digits, then the checksum
 * ("@050" for 50 %).
 * @param pct       0..100, or 0..110 when @enhanced
 * @param enhanced  the unit is in enhanced-power mode
 * @return the number of bytes (5), -ERANGE for a power out of range (the
 *         message names the power and the allowed range), -ENOSPC when
 *         @buf is too small
 */
int magstim_proto_encode_power(unsigned int pct, bool enhanced, uint8_t *buf, size_t size,
			       char *err, size_t errlen);

/**
 * Encode the connect (remote control on) command of a unit with an unlock
 * code (software version >= 9; its keep-alive is then "x@").
 * The byte layout is a GUESS, not in the notes: 'Q', the code's bytes in
 * place of '@', the checksum. Verify on a real unit.
 * @param code  1..MAGSTIM_PROTO_CODE_MAX printable ASCII characters
 *              (0x21..0x7E); NULL or "" encodes the plain "Q@"
 * @return the number of bytes, -EINVAL for a bad code (the message says
 *         what is wrong with it, without echoing it), -ENOSPC
 */
int magstim_proto_encode_connect(const char *code, uint8_t *buf, size_t size,
				 char *err, size_t errlen);

/**
 * The reply length expected for @cmd (see the table of facts and
 * assumptions at the top of this header).
 * @param params_len  the length of a "\@" reply on this unit's software:
 *                    21, 22 or 24; ignored for the other commands
 * @return the length, or -EINVAL for a bad @cmd or @params_len
 */
int magstim_proto_reply_len(enum magstim_proto_cmd cmd, unsigned int params_len);

/** Split an instrument status byte into its bits. */
void magstim_proto_status_parse(uint8_t byte, struct magstim_proto_status *out);

/**
 * Decode the reply to @cmd, @len bytes as they arrived (a reply cut short
 * by a deadline is passed as it is). Checks, in this order: an error reply
 * ('?' first: invalid command; '?' or 'S' second: bad data or conflict),
 * the echo of the command byte, the length, the checksum, then the data
 * (F@: two temperatures of 3 decimal digits).
 * @param params_len  as for magstim_proto_reply_len
 * @param out         receives the reply; untouched on failure
 * @return 0; -EOPNOTSUPP the unit called the command invalid; -EINVAL it
 *         refused the data ('?'); -EBUSY a conflict with its state ('S');
 *         -EPROTO the echo is not the command's (a reply to something
 *         else, or noise); -EMSGSIZE the length is not the expected one;
 *         -EBADMSG a wrong checksum or data that do not parse. @err names
 *         the command and what was heard on every failure.
 */
int magstim_proto_decode(enum magstim_proto_cmd cmd, unsigned int params_len,
			 const uint8_t *buf, size_t len, struct magstim_proto_reply *out,
			 char *err, size_t errlen);

/**
 * How long the output takes to settle after a power change from @from_pct
 * to @to_pct: 10 ms per % raised, 100 ms per % lowered, 0 when equal.
 */
unsigned int magstim_proto_settle_ms(unsigned int from_pct, unsigned int to_pct);

#endif /* RPMSD_MAGSTIM_PROTO_H */
