#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Magstim 200² / BiStim² / Rapid² emulator on a pseudo-terminal.

Written from the project's protocol notes (facts only; no driver code was
read). Link: 9600 baud 8N1. A command is ASCII bytes followed by a checksum
byte, ~(sum of the bytes) & 0xFF; every reply carries one the same way (its
last byte). Reply: first byte echoes the command, second is the instrument
status byte:
  bit 0 standby, 1 armed, 2 ready, 3 coil present, 4 replace coil,
  5 error present, 6 error type, 7 remote control.

From the notes: commands Q@ (remote on), R@ (off), EB arm, EA disarm, EH
fire, @NNN power (0-100, 0-110 enhanced), F@ temperature (9-byte reply, two
coil temperatures in 0.1 °C), I@ error code, x@ system status, \\@ parameters
(21/22/24 bytes by software version); Rapid²: B NNNN frequency (0.1 Hz),
D NNNN/NNNNN pulse count, [ NNN/NNNN duration (0.1 s); Q@ reply 3 bytes; '?' as
the first byte = invalid command; '?' or 'S' second = bad data or conflict;
keep-alive (MagPy: Q@ every 5 s disarmed, 0.5 s armed; any command resets the
timer; unlock-code variant: software version >= 9, keep-alive x@, the connect
command carries the code); power settles ~10 ms/% up, ~100 ms/% down; ready
~1 s after arming; self-disarm after ~1 min without firing; disarms above
40 °C; Rapid² single-pulse mode 1 Hz at most, >= 500 ms between trains.

THE EMULATOR'S ASSUMPTIONS (the notes do not say; verify on a real device):
 - Reply layouts (c = checksum byte, s = status byte, digits are ASCII):
     Q@ R@ EB EA EH @NNN ANNN BNNNN DNNNN[N] [NNN[N]  ->  cmd s c      (3 bytes)
     F@  ->  'F' s T1 T1 T1 T2 T2 T2 c    (9; T in 0.1 °C, 3 digits each)
     I@  ->  'I' s E E E c                (6; error code 000-999)
     x@  ->  'x' s V V V c                (6; software version)
     \\@  ->  '\\' s PA PA PA PB PB PB F F F F N N N N N D D D [0 pad] c
            (params_len bytes, 21 by default, 22/24 padded with '0' before c:
             PA power A as applied, PB power B (BiStim; 000 otherwise),
             F frequency 0.1 Hz, N pulse count, D duration 0.1 s; Rapid² only)
 - Errors: an unknown command letter gets '?' s c; bad data (digits out of
   range, wrong data byte) gets cmd '?' c; a conflict (not in remote control,
   arming with an error/no coil/over temperature, firing while not armed and
   ready, an unlock code missing or wrong) gets cmd 'S' c.
 - A command whose checksum is wrong gets NO reply (knob bad_checksum_reply:
   True answers '?' '?' c instead). Bytes that never form a command are
   discarded after rx_gap_s (50 ms) of silence.
 - Commands that change anything (E*, @, A, B, D, [) need remote control;
   queries (F@ I@ x@ \\@) do not. Any valid command resets the keep-alive
   timer while in remote control.
 - Remote control is dropped after remote_timeout_disarmed_s (7.5 s) of
   silence while disarmed and remote_timeout_armed_s (1.0 s) while armed, so
   MagPy's 5 s / 0.5 s keep-alive passes with margin; losing it disarms.
 - Unlock variant (version >= 9 and unlock_code set): connect is 'Q' + the
   code's bytes + c; a plain Q@ gets 'Q' 'S' c.
 - BiStim power B: 'A' NNN, as '@' NNN.
 - Standby (bit 0) = not armed. Ready (bit 2) = armed, ready_delay_s after
   arming, power settled, coil present, no error.
 - The unit disarms when the coil is unplugged, an error appears, the coil
   passes cutoff_c, or it has not fired for idle_disarm_s (60 s) since
   arming or the last pulse.
 - Temperature: see emu_core.Thermal; coil 2 reads ambient + 0.9 x coil 1's rise.
 - Rapid² rTMS mode: rtms knob, or a duration command with a nonzero value on
   version >= 9 (zero returns to single-pulse mode). In rTMS mode each trigger
   is one pulse of a train: faster than the set frequency (1 % tolerance) is
   dropped ("train_rate"); a gap longer than 1.5 periods starts a new train,
   which must come >= train_gap_min_s (0.5 s) after the previous one
   ("train_gap"). Single-pulse mode: pulses < 1 s apart are dropped
   ("single_pulse_rate"). 200²/BiStim² have no rate limit here.
 - serial_fire_min_gap_s (0 = off): serial fires closer than this are
   acknowledged but dropped ("serial_fire_spacing"), the field problem of
   closely spaced serial fires.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emu_core  # noqa: E402

MODELS = ("rapid2", "200", "bistim")

# status bits
STANDBY, ARMED, READY, COIL, REPLACE, ERROR, ERRTYPE, REMOTE = (1 << i for i in range(8))


def checksum(data):
    """Magstim's check byte: ~(sum of the bytes) & 0xFF."""
    return ~sum(data) & 0xFF


def frame(data):
    """Bytes followed by their check byte."""
    data = bytes(data)
    return data + bytes([checksum(data)])


class Magstim(emu_core.Emulator):
    BAUD = 9600
    KNOBS = emu_core.Emulator.KNOBS + (
        "version", "unlock_code", "enhanced", "params_len", "bad_checksum_reply",
        "ready_delay_s", "settle_up_s_per_pct", "settle_down_s_per_pct",
        "power_not_applied", "idle_disarm_s", "remote_timeout_disarmed_s",
        "remote_timeout_armed_s", "cutoff_c", "coil_present", "replace_coil",
        "error_code", "error_type", "rtms", "single_pulse_min_s", "train_gap_min_s",
        "serial_fire_min_gap_s", "rx_gap_s")

    def __init__(self, link=None, model="rapid2", version=8, unlock_code=None, baud=None):
        super().__init__(link=link, baud=baud)
        if model not in MODELS:
            raise ValueError("model is one of %s, not %r" % (", ".join(MODELS), model))
        self.model = model
        self.version = version
        self.unlock_code = unlock_code
        self.enhanced = False
        self.params_len = 21
        self.bad_checksum_reply = False
        self.ready_delay_s = 1.0
        self.settle_up_s_per_pct = 0.010
        self.settle_down_s_per_pct = 0.100
        self.power_not_applied = False
        self.idle_disarm_s = 60.0
        self.remote_timeout_disarmed_s = 7.5
        self.remote_timeout_armed_s = 1.0
        self.cutoff_c = 40.0
        self.coil_present = True
        self.replace_coil = False
        self.error_code = 0
        self.error_type = 0
        self.rtms = False
        self.single_pulse_min_s = 1.0
        self.train_gap_min_s = 0.5
        self.serial_fire_min_gap_s = 0.0
        self.rx_gap_s = 0.05
        self.thermal = emu_core.Thermal()
        # device state
        self.remote = False
        self.armed = False
        self.power = 0          # applied (what a pulse delivers, what \@ reads)
        self.power_target = 0
        self.power_b = 0
        self.freq_dhz = 10
        self.n_pulses = 1
        self.duration_ds = 1
        self._remote_t = 0.0
        self._arm_t = 0.0
        self._idle_t = 0.0
        self._settle_end = 0.0
        self._last_pulse_t = None
        self._train_end_t = None
        self._last_serial_fire_t = None
        self._buf = bytearray()
        self._buf_t = 0.0

    # ---- knobs ---------------------------------------------------------------

    def set_temperature(self, temp_c):
        with self.lock:
            self.thermal.set(temp_c, emu_core.time.monotonic())

    def unlocked(self):
        return self.version >= 9 and bool(self.unlock_code)

    # ---- state -----------------------------------------------------------------

    def _error(self):
        return self.error_code != 0

    def _settling(self, now):
        return now < self._settle_end

    def _ready(self, now):
        return (self.armed and now >= self._arm_t + self.ready_delay_s
                and not self._settling(now) and self.coil_present and not self._error())

    def status_byte(self, now):
        s = 0
        s |= ARMED if self.armed else STANDBY
        s |= READY if self._ready(now) else 0
        s |= COIL if self.coil_present else 0
        s |= REPLACE if self.replace_coil else 0
        s |= ERROR if self._error() else 0
        s |= ERRTYPE if self._error() and self.error_type else 0
        s |= REMOTE if self.remote else 0
        return s

    def temps(self):
        t1 = self.thermal.temp_c
        t2 = self.thermal.ambient_c + 0.9 * (t1 - self.thermal.ambient_c)
        return t1, t2

    def state_dict(self):
        now = emu_core.time.monotonic()
        t1, t2 = self.temps()
        return {"model": self.model, "version": self.version, "remote": self.remote,
                "armed": self.armed, "ready": self._ready(now),
                "settling": self._settling(now), "power": self.power,
                "power_target": self.power_target, "power_b": self.power_b,
                "coil_present": self.coil_present, "replace_coil": self.replace_coil,
                "error_code": self.error_code, "temp_c": [round(t1, 2), round(t2, 2)],
                "status": self.status_byte(now), "rtms": self.rtms,
                "freq_hz": self.freq_dhz / 10.0, "n_pulses": self.n_pulses,
                "duration_s": self.duration_ds / 10.0, "running": self.running}

    def _disarm(self, why, now):
        if self.armed:
            self.armed = False
            if why:
                self._log("event", None, {"what": why}, now)

    def _tick(self, now):
        self.thermal.advance(now)
        if now >= self._settle_end:
            self._settle_end = 0.0
            self.power = self.power_target  # the read-back changes once applied
        if self.remote:
            limit = self.remote_timeout_armed_s if self.armed else self.remote_timeout_disarmed_s
            if now - self._remote_t > limit:
                self.remote = False
                self._log("event", None, {"what": "remote_lost", "armed": self.armed}, now)
                self._disarm("disarm_remote_lost", now)
        if self.armed:
            if self.thermal.temp_c > self.cutoff_c:
                self._disarm("overtemp", now)
            elif not self.coil_present:
                self._disarm("coil_missing", now)
            elif self._error():
                self._disarm("error", now)
            elif now - self._idle_t > self.idle_disarm_s:
                self._disarm("self_disarm", now)
        if self._buf and now - self._buf_t > self.rx_gap_s:
            self._flush_partial(now)

    # ---- framing -----------------------------------------------------------------

    def _lengths(self, c):
        """Candidate command lengths (checksum included) for a first byte."""
        if c == ord("Q"):
            return sorted({3, 2 + len(self.unlock_code)}) if self.unlocked() else [3]
        if c in b"REFIx\\":
            return [3]
        if c == ord("@") or (c == ord("A") and self.model == "bistim"):
            return [5]
        if self.model == "rapid2":
            if c == ord("B"):
                return [6]
            if c == ord("D"):
                return [6, 7]
            if c == ord("["):
                return [5, 6]
        return None

    def _on_bytes(self, data, t_end):
        self._buf += data
        self._buf_t = t_end
        while self._buf:
            cands = self._lengths(self._buf[0])
            if cands is None:
                return  # unknown: handled whole after rx_gap_s of silence
            for n in cands:
                if len(self._buf) >= n and checksum(self._buf[:n - 1]) == self._buf[n - 1]:
                    cmd = bytes(self._buf[:n])
                    del self._buf[:n]
                    self._command(cmd, t_end)
                    break
            else:
                n = cands[-1]
                if len(self._buf) < n:
                    return
                self._bad(bytes(self._buf[:n]), t_end)
                del self._buf[:n]

    def _flush_partial(self, now):
        cmd = bytes(self._buf)
        self._buf.clear()
        if len(cmd) >= 2 and checksum(cmd[:-1]) == cmd[-1]:
            self._command(cmd, self._buf_t)
        elif self._lengths(cmd[0]) is None:
            self._log("garbage", cmd, {}, now)
            if self.bad_checksum_reply:
                self._reply(frame(b"??"), now)
        else:
            self._bad(cmd, now)

    def _bad(self, cmd, t):
        self._log("rx_bad", cmd, {"why": "checksum"}, t)
        if self.bad_checksum_reply:
            self._reply(frame(b"??"), t)

    # ---- commands ------------------------------------------------------------------

    def _command(self, cmd, t):
        self._log("rx", cmd, {}, t)
        now = max(t, emu_core.time.monotonic())
        self._tick(now)
        c, data = cmd[:1], cmd[1:-1]
        if self.remote:
            self._remote_t = now
        ok, err = c, None  # reply first byte, or an error in the second
        if c == b"Q":
            want = self.unlock_code.encode() if self.unlocked() else b"@"
            if self.unlocked() and data == b"@":
                err = b"S"
            elif data != want:
                err = b"?" if not self.unlocked() else b"S"
            else:
                if not self.remote:
                    self._log("event", None, {"what": "remote_on"}, now)
                self.remote = True
                self._remote_t = now
        elif c == b"R" and data == b"@":
            self._disarm("", now)
            self.remote = False
        elif c in (b"F", b"I", b"x", b"\\") and data == b"@":
            pass
        elif c in (b"R", b"F", b"I", b"x", b"\\"):
            err = b"?"
        elif self._lengths(cmd[0]) is None:
            self._reply(frame(b"?" + bytes([self.status_byte(now)])), t)
            return
        elif not self.remote:
            err = b"S"
        elif c == b"E":
            err = self._cmd_e(data, now, t)
            if err is False:
                return  # replied already
        elif c in (b"@", b"A"):
            err = self._cmd_power(c, data, now)
        else:
            err = self._cmd_train(c, data)
        if err:
            self._reply(frame(c + err), t)
            return
        self._reply(self._answer(ok, now), t)

    def _cmd_e(self, data, now, t):
        if data == b"B":
            if self.armed:
                return None
            if self._error() or not self.coil_present or self.thermal.temp_c > self.cutoff_c:
                return b"S"
            self.armed = True
            self._arm_t = self._idle_t = now
            return None
        if data == b"A":
            self._disarm("", now)
            return None
        if data == b"H":
            spaced = (self.serial_fire_min_gap_s > 0 and self._last_serial_fire_t is not None
                      and now - self._last_serial_fire_t < self.serial_fire_min_gap_s)
            self._last_serial_fire_t = now
            if spaced:
                self._log("pulse_dropped", None,
                          {"source": "serial", "reason": "serial_fire_spacing"}, now)
                return None
            e = self._pulse("serial", now)
            return None if e["kind"] == "pulse" else b"S"
        return b"?"

    def _cmd_power(self, c, data, now):
        top = 110 if self.enhanced else 100
        if len(data) != 3 or not data.isdigit() or int(data) > top:
            return b"?"
        v = int(data)
        if c == b"A":
            self.power_b = v
            return None
        if self.power_not_applied:
            return None  # acknowledged, never applied (the field problem)
        d = v - self.power
        per = self.settle_up_s_per_pct if d > 0 else self.settle_down_s_per_pct
        self.power_target = v
        if d:
            self._settle_end = now + abs(d) * per
        return None

    def _cmd_train(self, c, data):
        if not data.isdigit():
            return b"?"
        v = int(data)
        if c == b"B":
            if v == 0 or v > 1000:
                return b"?"
            self.freq_dhz = v
        elif c == b"D":
            if v == 0:
                return b"?"
            self.n_pulses = v
        elif c == b"[":
            self.duration_ds = v
            if self.version >= 9:
                self.rtms = v > 0
        return None

    def _answer(self, c, now):
        s = bytes([self.status_byte(now)])
        if c == b"F":
            t1, t2 = self.temps()
            return frame(b"F" + s + b"%03d%03d" % (min(999, max(0, round(t1 * 10))),
                                                   min(999, max(0, round(t2 * 10)))))
        if c == b"I":
            return frame(b"I" + s + b"%03d" % self.error_code)
        if c == b"x":
            return frame(b"x" + s + b"%03d" % self.version)
        if c == b"\\":
            body = (b"\\" + s + b"%03d%03d" % (self.power, self.power_b if self.model == "bistim"
                                               else 0))
            if self.model == "rapid2":
                body += b"%04d%05d%03d" % (self.freq_dhz, self.n_pulses,
                                           min(999, self.duration_ds))
            body = body.ljust(self.params_len - 1, b"0")
            return frame(body)
        return frame(c + s)

    # ---- pulses ------------------------------------------------------------------------

    def _fire(self, source, now):
        if not self.armed:
            return False, {"reason": "not_armed"}
        if not self.coil_present:
            return False, {"reason": "no_coil"}
        if self._error():
            return False, {"reason": "error"}
        if not self._ready(now):
            return False, {"reason": "not_ready"}
        if self.model == "rapid2" and self._last_pulse_t is not None:
            gap = now - self._last_pulse_t
            if self.rtms and self.freq_dhz > 0:
                period = 10.0 / self.freq_dhz
                if gap < period * 0.99:
                    return False, {"reason": "train_rate", "gap_s": gap}
                if gap > 1.5 * period and gap < self.train_gap_min_s:
                    return False, {"reason": "train_gap", "gap_s": gap}
            elif gap < self.single_pulse_min_s:
                return False, {"reason": "single_pulse_rate", "gap_s": gap}
        self._last_pulse_t = now
        self._idle_t = now
        self.thermal.pulse(self.power, now)
        info = {"intensity": self.power, "temp_c": round(self.thermal.temp_c, 3)}
        if self.thermal.temp_c > self.cutoff_c:
            self._disarm("overtemp", now)
        return True, info


def parse_args(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog=emu_core.CONTROL_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--link", help="make this symlink to the slave (e.g. /dev/ttyUSB0)")
    p.add_argument("--model", choices=MODELS, default="rapid2")
    p.add_argument("--version", type=int, default=8, help="software version (default 8)")
    p.add_argument("--unlock-code", help="unlock code (used when --version >= 9)")
    p.add_argument("--params-len", type=int, choices=(21, 22, 24), default=21)
    p.add_argument("--ready-delay", type=float, default=1.0, help="s after arming")
    p.add_argument("--remote-timeout", type=float, nargs=2, metavar=("DISARMED", "ARMED"),
                   default=(7.5, 1.0))
    p.add_argument("--idle-disarm", type=float, default=60.0)
    return p.parse_args(argv)


def main(argv):
    a = parse_args(argv)
    emu = Magstim(link=a.link, model=a.model, version=a.version, unlock_code=a.unlock_code)
    emu.params_len = a.params_len
    emu.ready_delay_s = a.ready_delay
    emu.remote_timeout_disarmed_s, emu.remote_timeout_armed_s = a.remote_timeout
    emu.idle_disarm_s = a.idle_disarm
    return emu_core.main(emu)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
