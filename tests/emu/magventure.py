#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""MagVenture MagPro R30 / X100 emulator on a pseudo-terminal.

Written from the project's protocol notes (facts only; no driver code was
read). Link: 38400 baud 8N1. Frame: FE <len> <payload> <CRC-8 Dallas/Maxim
over the payload> FF, len = the payload's length. From the notes, byte for
byte: status request FE 01 00 00 FF, enable FE 02 02 01 CF FF, amplitude
50 % FE 02 01 32 C6 FF, single fire FE 02 03 01 0B FF. Command ids: 0x00
status, 0x01 amplitude, 0x02 enable, 0x03 fire (0x04-0x0B exist; this
emulator accepts and ignores them). Writes are not acknowledged; the status
reply carries mode (bits 0-1), waveform (2-3), enabled (4), model (5-7), a
3-byte serial number, coil temperature in °C, coil type code (60 Cool-B65,
72 C-B60), amplitudes A and B; the realised di/dt comes back after each
pulse; the stream carries asynchronous frames. R30 up to 30 pulses/s, X100
up to 100.

THE EMULATOR'S ASSUMPTIONS (the notes do not say; verify on a real device):
 - Status reply payload, 10 bytes (frame FE 0A ... CRC FF):
     [0] 0x00 (the id it answers)
     [1] mode | waveform << 2 | enabled << 4 | model << 5
         model codes: 1 R30, 2 X100 (0 unknown)
     [2..4] serial number, big-endian
     [5] coil temperature, °C rounded to whole degrees (0-255)
     [6] coil type code (0 = no coil connected)
     [7] amplitude A %, [8] amplitude B %  (as applied: a write shows here
         only after amp_apply_s, never with amp_not_applied)
     [9] error bits (0 = none; any bit set disables and refuses enable)
 - Pulse report, unsolicited after every delivered pulse, payload 5 bytes:
     [0] 0x03, [1..2] realised di/dt in A/us big-endian
     (= amplitude x didt_per_pct x didt_scale), [3] amplitude A delivered,
     [4] pulse counter mod 256
 - Amplitude: 01 AA (A) or 01 AA BB (A and B), 0-100; a value over 100 is
   ignored (logged as rx_bad "range"). Enable: 02 01 / 02 00; enabling is
   refused (stays disabled) with no coil, an error bit or over cutoff_c.
   Fire: 03 01 fires like a trigger. A frame with a wrong CRC, a wrong end
   byte or len 0 is discarded silently (the reader resynchronises on the
   next FE); bytes of an unfinished frame are discarded after rx_gap_s.
 - The device disables itself (event, no frame unless announce_changes) when
   the coil is unplugged (coil_type = 0), an error bit appears, the coil
   passes cutoff_c (40 °C), or drop_enable() is called.
 - async_period_s > 0: an unsolicited frame of id 0x0F (payload 0F <counter>)
   every async_period_s, a frame a reader does not know and must skip.
 - Pulses closer than 1/max_pps (1 % tolerance) are dropped ("rate").
   A pulse at amplitude 0 is dropped ("amplitude_zero").
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emu_core  # noqa: E402

MODELS = {"r30": (1, 30), "x100": (2, 100)}


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x8C if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc8(data):
    """CRC-8 Dallas/Maxim (reflected polynomial 0x31, init 0, no final xor)."""
    c = 0
    for b in data:
        c = CRC_TABLE[c ^ b]
    return c


def frame(payload):
    """FE <len> <payload> <crc> FF."""
    payload = bytes(payload)
    return bytes([0xFE, len(payload)]) + payload + bytes([crc8(payload), 0xFF])


class MagVenture(emu_core.Emulator):
    BAUD = 38400
    KNOBS = emu_core.Emulator.KNOBS + (
        "serial_number", "coil_type", "mode", "waveform", "error_bits", "amp_not_applied",
        "amp_apply_s", "didt_per_pct", "didt_scale", "max_pps", "cutoff_c",
        "async_period_s", "announce_changes", "rx_gap_s")

    def __init__(self, link=None, model="r30", baud=None):
        super().__init__(link=link, baud=baud)
        if model not in MODELS:
            raise ValueError("model is one of %s, not %r" % (", ".join(MODELS), model))
        self.model = model
        self.model_code, self.max_pps = MODELS[model]
        self.serial_number = 0x012345
        self.coil_type = 60
        self.mode = 0
        self.waveform = 1
        self.error_bits = 0
        self.amp_not_applied = False
        self.amp_apply_s = 0.1
        self.didt_per_pct = 1.5
        self.didt_scale = 1.0
        self.cutoff_c = 40.0
        self.async_period_s = 0.0
        self.announce_changes = False
        self.rx_gap_s = 0.1
        self.thermal = emu_core.Thermal()
        self.enabled = False
        self.amp_a = 0
        self.amp_b = 0
        self._amp_pending = None   # (a, b, t_apply)
        self._last_pulse_t = None
        self._count = 0
        self._async_t = 0.0
        self._async_n = 0
        self._buf = bytearray()
        self._buf_t = 0.0

    # ---- knobs -------------------------------------------------------------------

    def set_temperature(self, temp_c):
        with self.lock:
            self.thermal.set(temp_c, emu_core.time.monotonic())

    def drop_enable(self):
        """The device disables itself (the fault 'enable dropped')."""
        with self.lock:
            self._disable("enable_dropped", emu_core.time.monotonic())

    # ---- state ---------------------------------------------------------------------

    def status_payload(self):
        b1 = (self.mode & 3) | (self.waveform & 3) << 2 | (1 << 4 if self.enabled else 0) \
            | (self.model_code & 7) << 5
        sn = self.serial_number & 0xFFFFFF
        return bytes([0x00, b1, sn >> 16, (sn >> 8) & 0xFF, sn & 0xFF,
                      max(0, min(255, round(self.thermal.temp_c))), self.coil_type & 0xFF,
                      self.amp_a, self.amp_b, self.error_bits & 0xFF])

    def state_dict(self):
        return {"model": self.model, "enabled": self.enabled, "amp_a": self.amp_a,
                "amp_b": self.amp_b, "coil_type": self.coil_type,
                "error_bits": self.error_bits, "temp_c": round(self.thermal.temp_c, 2),
                "amp_pending": list(self._amp_pending[:2]) if self._amp_pending else None,
                "pulses_delivered": self._count, "running": self.running}

    def _blocked(self):
        if self.coil_type == 0:
            return "coil_missing"
        if self.error_bits:
            return "error"
        if self.thermal.temp_c > self.cutoff_c:
            return "overtemp"
        return None

    def _disable(self, why, now):
        if self.enabled:
            self.enabled = False
            self._log("event", None, {"what": why}, now)
            if self.announce_changes and self.running:
                self._reply(frame(self.status_payload()), now, unsolicited=True)

    def _tick(self, now):
        self.thermal.advance(now)
        if self._amp_pending and now >= self._amp_pending[2]:
            self.amp_a, self.amp_b = self._amp_pending[:2]
            self._amp_pending = None
        if self.enabled:
            why = self._blocked()
            if why:
                self._disable(why, now)
        if self.async_period_s > 0 and now - self._async_t >= self.async_period_s \
                and self.running:
            self._async_t = now
            self._async_n = (self._async_n + 1) & 0xFF
            self._reply(frame(bytes([0x0F, self._async_n])), now, unsolicited=True)
        if self._buf and now - self._buf_t > self.rx_gap_s:
            self._log("garbage", bytes(self._buf), {"why": "unfinished"}, now)
            self._buf.clear()

    # ---- framing ---------------------------------------------------------------------

    def _check_index(self, frm):
        return len(frm) - 2  # the CRC, before FF

    def _on_bytes(self, data, t_end):
        self._buf += data
        self._buf_t = t_end
        b = self._buf
        while b:
            if b[0] != 0xFE:
                i = b.find(b"\xfe")
                i = len(b) if i < 0 else i
                self._log("garbage", bytes(b[:i]), {"why": "outside a frame"}, t_end)
                del b[:i]
                continue
            if len(b) < 2:
                return
            n = b[1]
            if n == 0:
                self._log("garbage", bytes(b[:2]), {"why": "len 0"}, t_end)
                del b[:2]
                continue
            if len(b) < n + 4:
                return
            if b[n + 3] != 0xFF:
                # not a frame after all: skip this FE and look for the next one
                self._log("garbage", bytes(b[:1]), {"why": "no FF at the end"}, t_end)
                del b[:1]
                continue
            frm = bytes(b[:n + 4])
            del b[:n + 4]
            payload = frm[2:2 + n]
            if crc8(payload) != frm[2 + n]:
                self._log("rx_bad", frm, {"why": "crc"}, t_end)
                continue
            self._log("rx", frm, {}, t_end)
            self._command(payload, t_end)

    def _command(self, p, t):
        now = max(t, emu_core.time.monotonic())
        self._tick(now)
        cid = p[0]
        if cid == 0x00 and len(p) == 1:
            self._reply(frame(self.status_payload()), t)
        elif cid == 0x01 and len(p) in (2, 3):
            a = p[1]
            bb = p[2] if len(p) == 3 else self.amp_b
            if a > 100 or bb > 100:
                self._log("rx_bad", frame(p), {"why": "range"}, t)
            elif not self.amp_not_applied:
                self._amp_pending = (a, bb, now + self.amp_apply_s)
        elif cid == 0x02 and len(p) == 2 and p[1] in (0, 1):
            if p[1] == 0:
                self.enabled = False
            elif self._blocked():
                self._log("event", None, {"what": "enable_refused",
                                          "why": self._blocked()}, now)
            else:
                self.enabled = True
        elif cid == 0x03 and len(p) == 2 and p[1] == 1:
            self._pulse("serial", now)
        else:
            self._log("event", None, {"what": "ignored", "id": cid}, now)

    # ---- pulses ------------------------------------------------------------------------

    def _fire(self, source, now):
        if not self.enabled:
            return False, {"reason": "not_enabled"}
        why = self._blocked()
        if why:
            return False, {"reason": why}
        if self.amp_a == 0:
            return False, {"reason": "amplitude_zero"}
        if self._last_pulse_t is not None and \
                now - self._last_pulse_t < 0.99 / self.max_pps:
            return False, {"reason": "rate", "gap_s": now - self._last_pulse_t}
        self._last_pulse_t = now
        self._count += 1
        self.thermal.pulse(self.amp_a, now)
        didt = max(0, min(0xFFFF, round(self.amp_a * self.didt_per_pct * self.didt_scale)))
        self._reply(frame(bytes([0x03, didt >> 8, didt & 0xFF, self.amp_a,
                                 self._count & 0xFF])), now, unsolicited=True)
        info = {"intensity": self.amp_a, "didt": didt, "temp_c": round(self.thermal.temp_c, 3)}
        if self.thermal.temp_c > self.cutoff_c:
            self._disable("overtemp", now)
        return True, info


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog=emu_core.CONTROL_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--link", help="make this symlink to the slave (e.g. /dev/ttyUSB0)")
    p.add_argument("--model", choices=sorted(MODELS), default="r30")
    p.add_argument("--coil-type", type=int, default=60)
    p.add_argument("--amp-apply", type=float, default=0.1, help="s until a write shows")
    a = p.parse_args(argv)
    emu = MagVenture(link=a.link, model=a.model)
    emu.coil_type = a.coil_type
    emu.amp_apply_s = a.amp_apply
    return emu_core.main(emu)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
