#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The device emulators' own tests (tests/emu): a client opens the slave
through the link like rpmsd's plugins will (os.open, raw termios at the
device's baud, tcflush) and checks the protocol notes' frames byte for byte
(the expected bytes are literals worked out by hand, not the emulator's own
functions), the status bits through arming, ready and settle, self-disarm,
the remote-control time-out, temperature, every fault knob and vanish.

Usage: test_emu.py magstim|magventure   (meson: emu_magstim, emu_magventure)
Waits poll an observable state with a generous deadline; nothing relies on
a sleep for synchronisation. The few sleeps space trigger edges, and the
rate checks judge each verdict by the gap the test itself measured."""

import errno
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import magstim  # noqa: E402
import magventure  # noqa: E402

DEADLINE = 10.0  # generous: a loaded machine is slow, never wrong


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def poll(pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(0.01)


class Client:
    """The host side, as a plugin would open the port."""

    def __init__(self, path, baud):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        attr = termios.tcgetattr(self.fd)
        speed = {9600: termios.B9600, 38400: termios.B38400}[baud]
        attr[4] = attr[5] = speed
        attr[2] = (attr[2] & ~(termios.CSIZE | termios.PARENB | termios.CSTOPB)) \
            | termios.CS8 | termios.CREAD | termios.CLOCAL
        termios.tcsetattr(self.fd, termios.TCSANOW, attr)
        termios.tcflush(self.fd, termios.TCIFLUSH)
        self.pending = b""

    def close(self):
        os.close(self.fd)

    def write(self, data):
        os.write(self.fd, data)

    def read(self, n, timeout=2.0):
        """Up to n bytes, waiting at most timeout s for them."""
        end = time.monotonic() + timeout
        out, self.pending = self.pending[:n], self.pending[n:]
        while len(out) < n:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                d = os.read(self.fd, 256)
                if not d:
                    break
                out += d
        if len(out) > n:
            self.pending, out = out[n:] + self.pending, out[:n]
        return out

    def ask(self, data, n, timeout=2.0):
        self.write(data)
        return self.read(n, timeout)

    def mv_frame(self, timeout=2.0, skip_ids=()):
        """The next whole MagVenture frame (FE len payload crc FF), skipping
        anything that is not one; frames whose id is in skip_ids are skipped."""
        end = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < end:
            buf += self.read(1, max(0.0, end - time.monotonic()))
            i = buf.find(b"\xfe")
            if i < 0:
                buf = b""
                continue
            buf = buf[i:]
            if len(buf) >= 2 and len(buf) >= buf[1] + 4:
                n = buf[1]
                f, buf = buf[:n + 4], buf[n + 4:]
                if f[-1] == 0xFF and crc8_ref(f[2:2 + n]) == f[2 + n] and \
                        f[2] not in skip_ids:
                    self.pending = buf + self.pending
                    return f
                if f[-1] != 0xFF:
                    buf = f[1:] + buf
        return None


def crc8_ref(data):
    """CRC-8/MAXIM bit by bit, independent of the emulator's table."""
    c = 0
    for b in data:
        for i in range(8):
            mix = (c ^ (b >> i)) & 1
            c >>= 1
            if mix:
                c ^= 0x8C
    return c


def ms_sum(data):
    return (0xFF - (sum(data) & 0xFF))  # ~sum & 0xFF, written another way


class Rig:
    def __init__(self, cls, **kw):
        self.tmp = tempfile.mkdtemp(prefix="rpmsd-emu-")
        self.link = os.path.join(self.tmp, "ttyUSB0")
        self.emu = cls(link=self.link, **kw)
        if cls is magstim.Magstim:
            # no keep-alive in most tests: the time-out test sets its own
            self.emu.remote_timeout_armed_s = self.emu.remote_timeout_disarmed_s = 60.0

    def __enter__(self):
        self.emu.start()
        self.c = Client(self.link, self.emu.baud)
        return self

    def __exit__(self, *a):
        try:
            self.c.close()
        except OSError:
            pass
        self.emu.stop()
        shutil.rmtree(self.tmp, True)


# ---------------------------------------------------------------- Magstim

def ms_status(c, cmd=b"x@"):
    r = c.ask(cmd + bytes([ms_sum(cmd)]), {b"x@": 6, b"F@": 9}.get(cmd, 3))
    check(len(r) >= 3 and r[0:1] == cmd[:1], "status query %r got %r" % (cmd, r))
    check(r[-1] == ms_sum(r[:-1]), "reply %r: bad checksum" % r)
    return r[1]


def ms_connect(c):
    check(c.ask(b"Q@n", 3)[0:1] == b"Q", "no reply to Q@")


def test_ms_checksum_examples():
    # By hand: 'Q'=0x51 '@'=0x40, sum 0x91, ~ -> 0x6E 'n'.
    # '@050' = 0x40+0x30+0x35+0x30 = 0xD5, ~ -> 0x2A '*'. 'EB' = 0x87 -> 0x78 'x'.
    check(magstim.frame(b"Q@") == b"Q@n", "Q@ frame %r" % magstim.frame(b"Q@"))
    check(magstim.frame(b"@050") == b"@050*", "@050 frame")
    check(magstim.frame(b"EB") == b"EBx", "EB frame")
    with Rig(magstim.Magstim) as r:
        rep = r.c.ask(b"Q@n", 3)
        # remote (0x80) + coil present (0x08) + standby (0x01) = 0x89; ~(0x51+0x89)=0x25
        check(rep == b"Q\x89\x25", "Q@ reply %r" % rep)
        rep = r.c.ask(b"@050*", 3)
        check(rep == b"@\x89\x36", "@050 reply %r" % rep)
        rep = r.c.ask(b"EBx", 3)
        check(rep[:2] == b"E\x8a", "EB reply %r (armed, not yet ready)" % rep)
        check(r.emu.entries("rx")[0]["data"] == b"Q@n", "log has the frame received")


def test_ms_arm_ready_settle():
    with Rig(magstim.Magstim, model="200") as r:
        e = r.emu
        e.ready_delay_s = 0.3
        e.settle_up_s_per_pct = 0.004
        e.settle_down_s_per_pct = 0.02
        ms_connect(r.c)
        t0 = time.monotonic()
        r.c.ask(b"@050*", 3)
        check(ms_status(r.c) & 0x04 == 0, "ready while disarmed")
        r.c.ask(b"EBx", 3)
        s = poll(lambda: (lambda s: s if s & 0x04 else 0)(ms_status(r.c)), "ready")
        check(s & 0x02 and not s & 0x01, "status %#x: armed, not standby" % s)
        check(time.monotonic() - t0 >= 0.3, "ready before ready_delay_s")
        p = r.c.ask(magstim.frame(b"\\@"), 21)
        check(len(p) == 21 and p[2:5] == b"050", "params %r: power 050" % p)
        # lower to 10: 40 % x 20 ms = 0.8 s of settling, not ready meanwhile,
        # and the read-back keeps the old power until applied
        t1 = time.monotonic()
        r.c.ask(magstim.frame(b"@010"), 3)
        check(not ms_status(r.c) & 0x04, "ready while settling")
        p = r.c.ask(magstim.frame(b"\\@"), 21)
        check(p[2:5] == b"050", "read-back %r before the power settled" % p)
        poll(lambda: ms_status(r.c) & 0x04, "ready after settle")
        check(time.monotonic() - t1 >= 0.8 * 0.95, "settled too early (down)")
        p = r.c.ask(magstim.frame(b"\\@"), 21)
        check(p[2:5] == b"010", "read-back %r after settle" % p)
        pl = e.ttl_pulse()
        check(pl["kind"] == "pulse" and pl["info"]["intensity"] == 10, "pulse %r" % pl)


def test_ms_power_not_applied():
    with Rig(magstim.Magstim) as r:
        r.emu.power_not_applied = True
        ms_connect(r.c)
        check(r.c.ask(b"@050*", 3)[:1] == b"@", "set acknowledged")
        time.sleep(0.6)  # more than 50 % x 10 ms: would have settled
        p = r.c.ask(magstim.frame(b"\\@"), 21)
        check(p[2:5] == b"000", "read-back %r: the power was not applied" % p)


def test_ms_self_disarm():
    with Rig(magstim.Magstim) as r:
        r.emu.idle_disarm_s = 0.5
        r.emu.ready_delay_s = 0.0
        ms_connect(r.c)
        r.c.ask(b"EBx", 3)
        check(ms_status(r.c) & 0x02, "armed")
        poll(lambda: not ms_status(r.c) & 0x02, "self-disarm")  # x@ also keeps alive
        ev = [x for x in r.emu.entries("event") if x["info"]["what"] == "self_disarm"]
        arm = [x for x in r.emu.entries("rx") if x["data"] == b"EBx"]
        check(ev and arm, "self_disarm event")
        check(ev[0]["t"] - arm[0]["t"] >= 0.5, "disarmed %.3f s after arming, before "
              "idle_disarm_s" % (ev[0]["t"] - arm[0]["t"]))


def silence(e):
    """From the last command received to the last remote_lost (the log's times)."""
    lost = [x["t"] for x in e.entries("event") if x["info"]["what"] == "remote_lost"][-1]
    return lost - max(x["t"] for x in e.entries("rx") if x["t"] <= lost)


def test_ms_keepalive_timeout():
    with Rig(magstim.Magstim) as r:
        e = r.emu
        e.remote_timeout_disarmed_s = 1.5
        e.remote_timeout_armed_s = 0.8
        e.ready_delay_s = 0.0
        ms_connect(r.c)
        # keep-alive every 0.1 s for 2 s: remote control stays
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            check(ms_status(r.c, b"Q@") & 0x80, "remote lost despite keep-alive")
            time.sleep(0.1)
        r.c.ask(b"EBx", 3)
        poll(lambda: not e.state()["remote"], "remote-control time-out while armed")
        check(silence(e) >= 0.8, "armed time-out after %.3f s of silence" % silence(e))
        st = e.state()
        check(not st["armed"], "losing remote control disarms")
        check(not ms_status(r.c, b"F@") & 0x80, "status still says remote")
        # disarmed time-out
        ms_connect(r.c)
        poll(lambda: not e.state()["remote"], "remote time-out while disarmed")
        check(silence(e) >= 1.5, "disarmed time-out after %.3f s of silence" % silence(e))
        whats = [x["info"]["what"] for x in e.entries("event")]
        check(whats.count("remote_lost") == 2, "events %r" % whats)


def test_ms_unlock_code():
    with Rig(magstim.Magstim, version=9, unlock_code="k3y") as r:
        rep = r.c.ask(b"Q@n", 3)
        check(rep == b"QS" + bytes([ms_sum(b"QS")]), "plain Q@ on a locked unit: %r" % rep)
        rep = r.c.ask(b"Qk3y" + bytes([ms_sum(b"Qk3y")]), 3)
        check(rep[:1] == b"Q" and rep[1] & 0x80, "connect with the code: %r" % rep)
        rep = r.c.ask(b"x@" + bytes([ms_sum(b"x@")]), 6)
        check(rep[2:5] == b"009", "x@ carries the version: %r" % rep)


def test_ms_errors_and_coil():
    with Rig(magstim.Magstim) as r:
        e = r.emu
        rep = r.c.ask(b"EBx", 3)
        check(rep[:2] == b"ES", "arm without remote control: %r" % rep)
        ms_connect(r.c)
        rep = r.c.ask(magstim.frame(b"Z@"), 3)
        check(rep[:1] == b"?", "invalid command: %r" % rep)
        rep = r.c.ask(magstim.frame(b"@1x0"), 3)
        check(rep[:2] == b"@?", "bad data: %r" % rep)
        rep = r.c.ask(magstim.frame(b"@105"), 3)
        check(rep[:2] == b"@?", "105 %% outside enhanced mode: %r" % rep)
        e.enhanced = True
        check(r.c.ask(magstim.frame(b"@105"), 3)[:2] == b"@\x89", "105 % enhanced")
        e.replace_coil = True
        check(ms_status(r.c) & 0x10, "replace-coil bit")
        e.error_code = 12
        e.error_type = 1
        check(ms_status(r.c) & 0x60 == 0x60, "error present and type bits")
        rep = r.c.ask(magstim.frame(b"I@"), 6)
        check(rep[2:5] == b"012" and rep[5] == ms_sum(rep[:5]), "I@ reply %r" % rep)
        check(r.c.ask(b"EBx", 3)[:2] == b"ES", "arming with an error present")
        e.error_code = 0
        e.coil_present = False
        check(not ms_status(r.c) & 0x08, "coil-present bit clear")
        check(r.c.ask(b"EBx", 3)[:2] == b"ES", "arming without a coil")
        e.coil_present = True
        e.ready_delay_s = 0
        r.c.ask(b"EBx", 3)
        check(ms_status(r.c) & 0x02, "armed")
        e.error_code = 3
        poll(lambda: not e.state()["armed"], "an error disarms")


def test_ms_params_len_and_temperature():
    for n in (21, 22, 24):
        with Rig(magstim.Magstim) as r:
            r.emu.params_len = n
            p = r.c.ask(magstim.frame(b"\\@"), 30, timeout=0.5)
            check(len(p) == n and p[-1] == ms_sum(p[:-1]), "params_len %d: %r" % (n, p))
    with Rig(magstim.Magstim, model="200") as r:
        e = r.emu
        e.thermal.rise_per_pulse_c = 1.0
        e.thermal.tau_s = 1e9
        e.ready_delay_s = 0
        ms_connect(r.c)
        r.c.ask(magstim.frame(b"@100"), 3)
        r.c.ask(b"EBx", 3)
        poll(lambda: e.state()["ready"], "ready")

        def temps():
            t = r.c.ask(magstim.frame(b"F@"), 9)
            check(len(t) == 9 and t[-1] == ms_sum(t[:-1]), "F@ reply %r" % t)
            return int(t[2:5]) / 10.0, int(t[5:8]) / 10.0
        t0 = temps()
        check(abs(t0[0] - 25.0) < 0.2, "ambient %r" % (t0,))
        for _ in range(3):
            check(e.ttl_pulse()["kind"] == "pulse", "pulse delivered")
        t1 = temps()
        check(2.8 <= t1[0] - t0[0] <= 3.2, "3 pulses at 100 %% add 3 C: %r -> %r" % (t0, t1))
        check(t1[1] < t1[0], "coil 2 reads lower")
        r.c.ask(magstim.frame(b"@050"), 3)
        poll(lambda: e.state()["ready"], "ready at 50 %")
        e.ttl_pulse()
        t2 = temps()
        check(0.15 <= t2[0] - t1[0] <= 0.35, "a pulse at 50 %% adds a quarter: %r" % (t2,))
        # cooling toward ambient
        e.thermal.tau_s = 0.5
        poll(lambda: temps()[0] < 26.0, "cooling")
        # cut-off: 39.9 + a pulse at 50 % -> 40.15 > 40: disarmed
        e.set_temperature(39.9)
        e.thermal.tau_s = 1e9
        check(e.ttl_pulse()["kind"] == "pulse", "last pulse")
        poll(lambda: not ms_status(r.c) & 0x02, "disarmed above 40 C")
        check(r.c.ask(b"EBx", 3)[:2] == b"ES", "arming above 40 C refused")


def test_ms_rapid2_rates():
    with Rig(magstim.Magstim, model="rapid2") as r:
        e = r.emu
        e.ready_delay_s = 0
        ms_connect(r.c)
        r.c.ask(magstim.frame(b"@030"), 3)
        r.c.ask(b"EBx", 3)
        poll(lambda: e.state()["ready"], "ready")
        check(e.ttl_pulse()["kind"] == "pulse", "first single pulse")
        d = e.ttl_pulse()
        check(d["kind"] == "pulse_dropped" and d["info"]["reason"] == "single_pulse_rate",
              "second pulse within 1 s: %r" % d)
        # rTMS at 5 Hz (period 0.2 s): judge each verdict by the measured gap
        r.c.ask(magstim.frame(b"B0050"), 3)
        e.rtms = True
        time.sleep(1.0)
        seen = set()
        last = None
        for gap in (0, 0.0, 0.21, 0.21, 0.38, 0.6, 0.21, 0.0):
            time.sleep(gap)
            ent = e.ttl_pulse()
            g = None if last is None else ent["t"] - last
            if g is None or (g >= 0.198 and g <= 0.3) or g >= 0.5:
                want = "pulse"
            elif g < 0.198:
                want = "train_rate"
            else:
                want = "train_gap"
            got = ent["kind"] if ent["kind"] == "pulse" else ent["info"]["reason"]
            check(got == want, "gap %r: got %s, want %s" % (g, got, want))
            seen.add(got)
            if ent["kind"] == "pulse":
                last = ent["t"]
        check(seen == {"pulse", "train_rate", "train_gap"}, "verdicts seen: %r" % seen)
        check(len(e.pulses) == 10, "every trigger recorded")


def test_ms_serial_fire_and_bad_checksum():
    with Rig(magstim.Magstim, model="200") as r:
        e = r.emu
        e.ready_delay_s = 0
        ms_connect(r.c)
        check(r.c.ask(magstim.frame(b"EH"), 3)[:2] == b"ES", "fire while disarmed")
        r.c.ask(b"EBx", 3)
        poll(lambda: e.state()["ready"], "ready")
        check(r.c.ask(magstim.frame(b"EH"), 3)[:1] == b"E", "serial fire")
        check(e.pulses[-1]["kind"] == "pulse" and e.pulses[-1]["info"]["source"] == "serial",
              "serial pulse recorded")
        e.serial_fire_min_gap_s = 10
        r.c.ask(magstim.frame(b"EH"), 3)
        check(e.pulses[-1]["info"].get("reason") == "serial_fire_spacing",
              "closely spaced serial fire dropped: %r" % e.pulses[-1])
        # bad checksum: no reply (emulator's choice), or '??' with the knob
        check(r.c.ask(b"Q@m", 3, timeout=0.4) == b"", "no reply to a bad checksum")
        check(e.entries("rx_bad")[-1]["data"] == b"Q@m", "bad frame logged")
        e.bad_checksum_reply = True
        check(r.c.ask(b"Q@m", 3) == b"??" + bytes([ms_sum(b"??")]), "'??' reply")
        # garbage then a good command: the command still answers (after the gap)
        check(r.c.ask(b"\x01\x02Q@n", 3, timeout=3)[:1] in (b"?", b"Q"), "after garbage")


# ------------------------------------------------------------ MagVenture

STATUS_REQ = bytes.fromhex("fe 01 00 00 ff")
ENABLE = bytes.fromhex("fe 02 02 01 cf ff")
AMP50 = bytes.fromhex("fe 02 01 32 c6 ff")
FIRE = bytes.fromhex("fe 02 03 01 0b ff")


def mv_status(c):
    c.write(STATUS_REQ)
    f = c.mv_frame(skip_ids=(0x03, 0x0F))
    check(f is not None and f[1] == 10 and f[2] == 0x00, "status reply %r" % f)
    p = f[2:12]
    return {"enabled": bool(p[1] & 0x10), "model": p[1] >> 5, "mode": p[1] & 3,
            "waveform": (p[1] >> 2) & 3, "serial": p[2] << 16 | p[3] << 8 | p[4],
            "temp": p[5], "coil": p[6], "amp_a": p[7], "amp_b": p[8], "error": p[9]}


def test_mv_example_frames():
    check(crc8_ref(b"123456789") == 0xA1, "reference CRC-8/MAXIM check value")
    check(magventure.crc8(b"123456789") == 0xA1, "emulator CRC-8/MAXIM check value")
    for f, p in ((STATUS_REQ, b"\x00"), (ENABLE, b"\x02\x01"), (AMP50, b"\x01\x32"),
                 (FIRE, b"\x03\x01")):
        check(magventure.frame(p) == f, "frame(%s) = %s, notes say %s"
              % (p.hex(), magventure.frame(p).hex(" "), f.hex(" ")))
    with Rig(magventure.MagVenture) as r:
        r.emu.amp_apply_s = 2.0
        s = mv_status(r.c)
        check(s == {"enabled": False, "model": 1, "mode": 0, "waveform": 1,
                    "serial": 0x012345, "temp": 25, "coil": 60, "amp_a": 0, "amp_b": 0,
                    "error": 0}, "initial status %r" % s)
        r.c.write(ENABLE)
        r.c.write(AMP50)
        check(r.c.read(1, timeout=0.3) == b"", "writes are not acknowledged")
        s = mv_status(r.c)
        check(s["enabled"], "enabled bit")
        check(s["amp_a"] == 0, "amplitude shows before it is applied")
        poll(lambda: mv_status(r.c)["amp_a"] == 50, "amplitude 50 read back")
        r.c.write(FIRE)
        f = r.c.mv_frame(skip_ids=(0x00,))
        # di/dt = 50 % x 1.5 A/us = 75 = 0x004B; payload 03 00 4B 32 01
        check(f is not None and f[:7] == bytes.fromhex("fe 05 03 00 4b 32 01"),
              "pulse report %r" % f)
        check(f[7] == crc8_ref(f[2:7]) and f[8] == 0xFF, "pulse report CRC")
        check(r.emu.pulses[-1]["info"]["didt"] == 75, "di/dt recorded")
        rx = [x["data"] for x in r.emu.entries("rx")]
        check(rx[:4] == [STATUS_REQ, ENABLE, AMP50, STATUS_REQ], "log %r" % rx[:4])


def test_mv_rate_and_temperature():
    for model, pps in (("r30", 30), ("x100", 100)):
        with Rig(magventure.MagVenture, model=model) as r:
            e = r.emu
            e.amp_apply_s = 0
            e.thermal.rise_per_pulse_c = 1.0
            e.thermal.tau_s = 1e9
            r.c.write(ENABLE + magventure.frame(b"\x01\x64"))
            poll(lambda: mv_status(r.c)["amp_a"] == 100, "amplitude 100")
            check(mv_status(r.c)["model"] == (1 if model == "r30" else 2), "model bits")
            # back-to-back triggers: each verdict judged by the gap measured,
            # until the device has dropped one (a loaded machine may space them)
            dropped = 0
            for _ in range(50):
                time.sleep(1.0 / pps + 0.01)
                a, b = e.ttl_pulse(), e.ttl_pulse()
                check(a["kind"] == "pulse", "%s: a pulse 1/max_pps after the last" % model)
                gap = b["t"] - a["t"]
                want = "pulse" if gap >= 1.0 / pps else "rate"
                got = b["kind"] if b["kind"] == "pulse" else b["info"]["reason"]
                check(got == want or abs(gap - 0.99 / pps) < 1e-4,
                      "%s: gap %.4f s: got %s, want %s" % (model, gap, got, want))
                dropped += got == "rate"
                if dropped:
                    break
            check(dropped, "%s: no trigger ever came faster than %d/s" % (model, pps))
            n = len([x for x in e.pulses if x["kind"] == "pulse"])
            check(mv_status(r.c)["temp"] == round(25 + n), "%d pulses at 100 %% add %d C"
                  % (n, n))
            e.set_temperature(39.5)
            time.sleep(1.0 / pps + 0.01)
            e.ttl_pulse()
            s = mv_status(r.c)
            check(s["temp"] == 40 and not s["enabled"], "disabled above 40 C: %r" % s)
            e.thermal.tau_s = 0.3
            poll(lambda: mv_status(r.c)["temp"] <= 26, "cooling")


def test_mv_device_faults():
    with Rig(magventure.MagVenture) as r:
        e = r.emu
        e.amp_apply_s = 0
        e.coil_type = 0
        r.c.write(ENABLE)
        s = mv_status(r.c)
        check(s["coil"] == 0 and not s["enabled"], "no coil: enable refused %r" % s)
        e.coil_type = 72
        r.c.write(ENABLE)
        check(mv_status(r.c)["enabled"], "enabled with a C-B60")
        e.error_bits = 0x04
        s = mv_status(r.c)
        check(s["error"] == 4 and not s["enabled"], "error bit disables %r" % s)
        e.error_bits = 0
        r.c.write(ENABLE)
        check(mv_status(r.c)["enabled"], "enabled again")
        e.drop_enable()
        check(not mv_status(r.c)["enabled"], "enable dropped by the device")
        e.amp_not_applied = True
        r.c.write(AMP50)
        time.sleep(0.3)
        check(mv_status(r.c)["amp_a"] == 0, "amplitude write not applied")
        check(e.ttl_pulse()["info"]["reason"] == "not_enabled", "no pulse when disabled")
        # asynchronous frames interleaved: the status replies still come through
        e.async_period_s = 0.02
        poll(lambda: mv_status(r.c) and len([x for x in e.entries("tx")
                                             if x["info"].get("unsolicited")]) >= 3,
             "status replies with async frames interleaved")
        e.async_period_s = 0
        # host garbage, a partial frame, a bad end byte, a bad CRC: resynchronised
        r.c.write(b"\x00\x13\xfe\x05\x01" + bytes.fromhex("fe 01 00 01 ff") + STATUS_REQ)
        f = r.c.mv_frame(skip_ids=(0x0F,))
        check(f is not None and f[2] == 0x00, "status after garbage %r" % f)
        check(e.entries("rx_bad")[-1]["data"] == bytes.fromhex("fe 01 00 01 ff"),
              "bad CRC frame logged %r" % e.entries("rx_bad"))
        check(r.c.read(1, timeout=0.3) == b"", "no reply to the bad-CRC frame")


# ------------------------------------------------------ common fault knobs

def fault_knobs(cls, req, n):
    """Drop, corrupt (check byte and payload byte), truncate, delay, inject,
    silent, pacing, vanish: the same for both devices."""
    with Rig(cls) as r:
        e, c = r.emu, r.c
        good = c.ask(req, n)
        check(len(good) == n, "reply %r" % good)
        chk = n - (2 if cls is magventure.MagVenture else 1)
        e.drop_replies(2)
        check(c.ask(req, n, timeout=0.3) == b"" and c.ask(req, n, timeout=0.3) == b"",
              "two replies dropped")
        check(len(e.entries("tx_dropped")) == 2, "drops logged")
        check(c.ask(req, n) == good, "third reply back")
        e.corrupt_replies(1)
        bad = c.ask(req, n)
        check(len(bad) == n and bad[chk] != good[chk] and bad[:chk] == good[:chk],
              "check byte corrupted: %r vs %r" % (bad, good))
        e.corrupt_replies(1, "byte")
        bad = c.ask(req, n)
        check(bad[1] != good[1] and bad[chk] == good[chk], "payload byte corrupted %r" % bad)
        check(c.ask(req, n) == good, "clean again")
        e.truncate_replies(1)
        part = c.ask(req, n, timeout=0.4)
        check(0 < len(part) < n and good.startswith(part), "truncated %r" % part)
        e.reply_delay_s = 0.4
        t0 = time.monotonic()
        check(c.ask(req, n) == good, "delayed reply")
        check(time.monotonic() - t0 >= 0.4, "reply came before the delay")
        e.reply_delay_s = 0
        # pacing: n bytes at 10 bits each take n*10/baud at least
        t0 = time.monotonic()
        c.ask(req, n)
        dt = time.monotonic() - t0
        check(dt >= n * 10.0 / e.baud * 0.9, "reply of %d bytes in %.4f s: not paced" % (n, dt))
        e.inject(b"\x55\xaa")
        check(c.read(2) == b"\x55\xaa", "injected bytes")
        e.silent = True
        check(c.ask(req, n, timeout=0.4) == b"", "silent")
        check(e.entries("ignored"), "silent logs what it ignored")
        e.silent = False
        check(c.ask(req, n) == good, "talks again")
        e.vanish()
        check(not os.path.lexists(r.link), "link removed")
        r2, _, _ = select.select([c.fd], [], [], 2.0)
        check(r2, "read readiness after vanish")
        try:
            d = os.read(c.fd, 16)
            check(d == b"", "EOF after vanish, got %r" % d)
        except OSError as x:
            check(x.errno == errno.EIO, "EIO after vanish, got %r" % x)
        try:
            os.write(c.fd, req)
            check(False, "write after vanish succeeded")
        except OSError as x:
            check(x.errno == errno.EIO, "write EIO, got %r" % x)


def test_ms_fault_knobs():
    fault_knobs(magstim.Magstim, magstim.frame(b"\\@"), 21)


def test_mv_fault_knobs():
    fault_knobs(magventure.MagVenture, STATUS_REQ, 14)


def cli(script, args, want_status):
    tmp = tempfile.mkdtemp(prefix="rpmsd-emu-")
    link = os.path.join(tmp, "ttyUSB0")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, script), "--link", link] + args,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline().split()
        check(first[:1] == ["slave"] and os.path.realpath(link) == first[1],
              "first line %r, link -> %r" % (first, os.path.realpath(link)))

        def ctl(line):
            p.stdin.write(line + "\n")
            p.stdin.flush()
            return p.stdout.readline().strip()
        check(ctl("state").startswith("ok {"), "state")
        check(ctl("fault drop 1") == "ok", "fault drop")
        check(ctl("temp 38.5") == "ok", "temp")
        check('"temp_c": 38.5' in ctl("state") or "38.5" in ctl("state"), "temp set")
        check(ctl("set no_such_knob 1").startswith("err"), "unknown knob refused")
        check(ctl("bogus").startswith("err"), "unknown command refused")
        c = Client(link, 9600 if script == "magstim.py" else 38400)
        c.write(want_status[0])
        check(c.read(1, timeout=0.4) == b"", "dropped by `fault drop 1`")
        check(c.ask(want_status[0], want_status[1]) != b"", "answers again")
        check('"kind": "pulse_dropped"' in ctl("ttl"), "ttl while disarmed")
        check(ctl("inject 4142") == "ok" and c.read(2) == b"AB", "inject")
        c.close()
        p.send_signal(signal.SIGTERM)
        check(p.wait(10) == 0, "exit status on SIGTERM")
        check(not os.path.lexists(link), "link removed on exit")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, True)


def test_ms_cli():
    cli("magstim.py", ["--model", "bistim"], (b"Q@n", 3))


def test_mv_cli():
    cli("magventure.py", ["--model", "x100"], (STATUS_REQ, 14))


def run(tests):
    failed = 0
    for fn in tests:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report every failure kind
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, e), flush=True)
        else:
            print("ok   %s" % fn.__name__, flush=True)
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    MAGSTIM = [test_ms_checksum_examples, test_ms_arm_ready_settle, test_ms_power_not_applied,
               test_ms_self_disarm, test_ms_keepalive_timeout, test_ms_unlock_code,
               test_ms_errors_and_coil, test_ms_params_len_and_temperature,
               test_ms_rapid2_rates, test_ms_serial_fire_and_bad_checksum,
               test_ms_fault_knobs, test_ms_cli]
    MAGVENTURE = [test_mv_example_frames, test_mv_rate_and_temperature,
                  test_mv_device_faults, test_mv_fault_knobs, test_mv_cli]
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    only = [x for x in os.environ.get("RPMSD_TESTS", "").split(",") if x]
    sel = {"magstim": MAGSTIM, "magventure": MAGVENTURE}.get(which, MAGSTIM + MAGVENTURE)
    if only:
        sel = [fn for fn in sel if any(x in fn.__name__ for x in only)]
    sys.exit(run(sel))
