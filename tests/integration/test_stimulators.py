#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The magstim and magventure plugins against the device emulators
(tests/emu/, written from the protocol notes, not from the plugins), on a
pseudo-terminal, with the real rpmsd in real time.

This host has no GPIO lines, so the plugins fire with `fire = serial` (the
device's own fire command); the TTL path is the VM rig's (docs/rig.md).
Every run is checked by the test itself: each pulse the emulator delivered
against rpmsd's pulse events and against the limits (the device's rate by
output, its gap between trains, rpmsd's [safety]); every fault ends
disarmed, with an event that names the cause, and with no pulse after it."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emu"))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import magstim  # noqa: E402
import magventure  # noqa: E402

import tempfile  # noqa: E402
import zmq  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rpmsd-stimulators-")

# Rapid2 240 V standard, MagPy's table: the highest train rate at an output.
RAPID2_STD_HZ = ([50] * 31 + [46, 45, 44, 42, 41, 41, 39, 39, 38, 37, 36, 34, 33, 33, 33, 33,
                               33, 32, 31, 30, 30, 29, 29, 28, 28, 27, 27, 26, 26, 25, 25, 24,
                               24, 23, 23, 22, 22, 21, 21, 20, 20, 20, 20, 19, 19, 19, 19, 19,
                               18, 18, 18, 18, 18, 18, 17, 17, 17, 17, 17, 17, 17, 16, 16, 16,
                               16, 16, 16, 15, 15, 15])


def link(name):
    return os.path.join(TMP, name)


def config(plugin, tty, extra="", stim=None):
    """The demo configuration with the coil on @plugin at @tty."""
    keys = {("stim", "plugin"): plugin}
    keys.update(stim or {})
    text = rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra=keys)
    # A loaded machine (a sanitizer build, CI's two cores) delays the
    # emulator's replies and the link thread: generous time-outs here; the
    # fault tests still see a dead link within a few seconds.
    return text + ("[coil.%s]\ntty = %s\nfire = serial\nreply_timeout_ms = 1000\n"
                   "serial_fire_late_ms = 200\n%s" % (plugin, tty, extra))


def control(endpoint, req, timeout_ms=5000):
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.connect(endpoint)
    try:
        sock.send_string(json.dumps(req))
        return json.loads(sock.recv_string())
    finally:
        sock.close()


def states(r, state=None):
    return [b for b in r.of("rpms.state") if state is None or b["state"] == state]


def pulses_of(r):
    return r.of("rpms.stim")


def delivered(emu):
    return [p for p in emu.pulses if p["kind"] == "pulse"]


def check_limits(emu, r, max_hz, train_gap_s, cap_by_pct):
    """The pulses the emulator delivered, checked here against the limits:
    within a train no faster than rpmsd's max frequency or the device's cap
    at that output; trains at least the device's gap apart."""
    got = delivered(emu)
    events = pulses_of(r)
    check(len(got) == len(events), "the device delivered %d pulses, rpmsd published %d"
          % (len(got), len(events)))
    for e, p in zip(events, got):
        check(abs(e["intensity_pct"] - p["info"]["intensity"]) < 0.5,
              "pulse at %s %%, the device delivered %s %%"
              % (e["intensity_pct"], p["info"]["intensity"]))
    for a, b in zip(got, got[1:]):
        gap = b["t"] - a["t"]
        pct = b["info"]["intensity"]
        limit = max(1.0 / max_hz, 1.0 / cap_by_pct(pct))
        # the serial link adds a few ms of jitter to each fire: 10 ms of slack
        if gap < limit - 0.010:
            check(False, "pulses %.4f s apart at %s %%: the limit is %.4f s" % (gap, pct, limit))
        if gap > 0.2:
            check(gap >= train_gap_s - 0.010, "trains %.3f s apart (device: %.3f s)"
                  % (gap, train_gap_s))
    return got


def magstim_emu(name, **knobs):
    """A Rapid2 set up on its panel as docs/plugins-magstim.md asks: rTMS
    mode, its frequency at the protocol's train rate (the demo's 20 Hz),
    here 25 Hz: a serial fire reaches the unit with milliseconds of jitter
    (a TTL trigger would not), and the emulator drops a trigger that comes
    sooner than its period (40 ms) or, as a new train, later than 1.5
    periods but sooner than 0.5 s: 40 to 60 ms passes the demo's 50."""
    emu = magstim.Magstim(link(name), model="rapid2")
    emu.rtms = True
    emu.freq_dhz = 250
    for k, v in knobs.items():
        emu.set_knob(k, v)
    emu.start()
    return emu


def test_magstim_closed_loop():
    """Rapid2 in rTMS mode: the demo's three trains of 5 at 20 Hz, 30 %,
    delivered by the device at the output it confirmed."""
    emu = magstim_emu("ms-loop")
    try:
        r = rig.Run(config("magstim", link("ms-loop")), args=(), timeout=150,
                    stop_when=lambda m: len([1 for t, b, _ in m if t == "rpms.stim"]) >= 15)
    finally:
        emu.stop()
    check(r.returncode == 0, "rpmsd exited %d: %s" % (r.returncode, r.stderr[-2000:]))
    got = check_limits(emu, r, 25.0, 0.5, lambda pct: RAPID2_STD_HZ[int(round(pct))])
    check(len(got) == 15, "%d pulses delivered, 15 expected" % len(got))
    check(all(p["info"]["intensity"] == 30 for p in got), "not all at 30 %")
    check(not [p for p in emu.pulses if p["kind"] == "pulse_dropped"],
          "the device dropped pulses: %s" % [p for p in emu.pulses if p["kind"] != "pulse"])


def test_magstim_set_intensity_confirmed():
    """A `set` of the output: the device must confirm it by read-back
    (after lowering 30 -> 20 %, 100 ms per % = 1 s) before a pulse goes out
    at the new output; meanwhile the gate refuses, naming both numbers."""
    emu = magstim_emu("ms-set")
    asked = []

    def when(msgs):
        armed = [b for t, b, _ in msgs if t == "rpms.state" and b["state"] == "armed"]
        if armed and not asked:
            rep = control(section, {"cmd": "set", "params": {"stim.intensity_pct": 20}})
            asked.append((time.monotonic(), rep))
        return len([1 for t, b, _ in msgs if t == "rpms.stim"]) >= 15

    text = config("magstim", link("ms-set"))
    section = rig.section_value(text, "control", "endpoint")
    try:
        r = rig.Run(text, args=(), timeout=150, stop_when=when)
    finally:
        emu.stop()
    check(asked and asked[0][1].get("ok"), "set failed: %s" % (asked and asked[0][1]))
    got = delivered(emu)
    check(got and all(p["info"]["intensity"] == 20 for p in got),
          "pulses at %s %%, 20 %% asked" % sorted({p["info"]["intensity"] for p in got}))
    power = [e for e in emu.entries("rx") if e["data"][:1] == b"@"]
    check(power and power[-1]["data"][:4] == b"@020", "the device was not asked for 20 %%: %s"
          % [e["data"] for e in power])
    check_limits(emu, r, 25.0, 0.5, lambda pct: RAPID2_STD_HZ[int(round(pct))])


def fault_run(emu, plugin, tty, inject, want, extra="", stop_after_s=30.0):
    """Arm (arm_on_start), inject a fault, and expect: a fault state whose
    reason contains @want, the coil disarmed, and no pulse delivered after
    the fault was injected."""
    injected = []

    def when(msgs):
        if not injected and [b for t, b, _ in msgs if t == "rpms.state" and b["state"] == "armed"]:
            inject(emu)
            injected.append(time.monotonic())
        faults = [b for t, b, _ in msgs if t == "rpms.state" and b["state"] == "fault"]
        return bool(faults) or (injected and time.monotonic() - injected[0] > stop_after_s)

    try:
        r = rig.Run(config(plugin, tty, extra), args=(), timeout=120, stop_when=when)
    finally:
        emu.stop()
    faults = states(r, "fault")
    check(injected, "never armed: %s" % r.stderr[-1500:])
    check(faults, "no fault published for %r: %s" % (want, r.stderr[-1500:]))
    check(want in faults[0]["reason"], "fault reason %r does not name %r"
          % (faults[0]["reason"], want))
    after = [p for p in delivered(emu) if p["t"] > injected[0] + 0.05 and
             p["t"] > faults[0]["t_mono_ns"] / 1e9 - 0.0]
    check(not after, "pulses delivered after the fault: %s" % after)
    disarmed = states(r, "disarmed")
    check(disarmed, "no disarm published")
    return r


def test_magstim_faults():
    cases = [
        ("no-reply", lambda e: e.drop_replies(1000), "no reply"),
        ("corrupt", lambda e: e.corrupt_replies(1000, how="check"), "corrupt reply"),
        ("vanish", lambda e: e.vanish(), "serial link is gone"),
        ("coil", lambda e: e.set_knob("coil_present", False), "no coil"),
        ("replace", lambda e: e.set_knob("replace_coil", True), "replaced"),
        ("error", lambda e: e.set_knob("error_code", 7), "error"),
        ("remote", lambda e: e.set_knob("remote_timeout_disarmed_s", 0.001) or
         e.set_knob("remote_timeout_armed_s", 0.001), "remote control"),
    ]
    for name, inject, want in cases:
        emu = magstim_emu("ms-" + name)
        fault_run(emu, "magstim", link("ms-" + name), inject, want)


def test_magstim_self_disarm():
    """The unit disarms itself after its idle time without a pulse."""
    emu = magstim_emu("ms-idle", idle_disarm_s=3.0)
    fault_run(emu, "magstim", link("ms-idle"), lambda e: None, "disarmed itself")


def test_magstim_unlock_code():
    """Software version 9 and later: remote control takes the unit's unlock
    code and the keep-alive is `x@`. Without the code the start fails,
    naming the key; with it the unit arms, stays under remote control
    through keep-alives, and is never sent a plain `Q@` again."""
    emu = magstim.Magstim(link("ms-unlock"), model="rapid2", version=9, unlock_code="4711")
    emu.rtms = True
    emu.freq_dhz = 250
    emu.start()
    try:
        err = start_error("magstim", link("ms-unlock"))
        check("unlock_code" in err, "no code: %s" % err)
        armed_at = []

        def when(msgs):
            if not armed_at and states_in(msgs, "armed"):
                armed_at.append(time.monotonic())
            return bool(states_in(msgs, "fault")) or (
                armed_at and time.monotonic() - armed_at[0] > 3.0)

        r = rig.Run(config("magstim", link("ms-unlock"), "unlock_code = 4711\n"), args=(),
                    timeout=60, stop_when=when)
    finally:
        emu.stop()
    check(armed_at, "never armed: %s" % r.stderr[-1500:])
    check(not states(r, "fault"), "a fault: %s" % states(r, "fault"))
    sent = [e["data"] for e in emu.entries("rx")]
    check(b"Q4711" in b"".join(d[:5] for d in sent), "the code was never sent: %s" % sent[:5])
    keep = [d for d in sent if d[:2] == b"x@"]
    check(len(keep) >= 3, "%d x@ keep-alives in 3 s armed" % len(keep))
    check(not [d for d in sent[1:] if d[:2] == b"Q@"], "a plain Q@ was sent")
    check("4711" not in r.stderr, "the unlock code was logged")


def test_magstim_temperature():
    """The coil temperature the unit reports is read back while idle and
    shown in the heartbeat; at 36 °C the gate refuses the demo's train:
    the limit is the unit's 40 °C cut-off less safety.device_temp_margin_c
    (5), below safety.max_coil_temp_c (40)."""
    emu = magstim_emu("ms-temp")
    emu.thermal.tau_s = 1e9     # the coil holds its temperature: exact numbers
    hot = []

    def when(msgs):
        if not hot and states_in(msgs, "armed"):
            emu.set_temperature(36.0)
            hot.append(time.monotonic())
        return bool([b for t, b, _ in msgs if t == "rpms.safety"
                     and b.get("rule") == "coil_temperature"]) or bool(states_in(msgs, "fault"))

    try:
        r = rig.Run(config("magstim", link("ms-temp")), args=(), timeout=90, stop_when=when)
    finally:
        emu.stop()
    check(hot, "never armed: %s" % r.stderr[-1500:])
    beats = [b for b in r.of("rpms.heartbeat") if b.get("coil_temperature_c") is not None
             and abs(b["coil_temperature_c"] - 36.0) < 0.2]
    check(beats, "no heartbeat showed 36 °C: %s" % [b.get("coil_temperature_c")
                                                   for b in r.of("rpms.heartbeat")][-5:])
    refused = [b for b in r.of("rpms.safety") if b.get("rule") == "coil_temperature"]
    check(refused, "the train was not refused for its temperature")
    check(abs(refused[0]["limit"] - 35.0) < 1e-6 and abs(refused[0]["value"] - 36.0) < 0.2,
          "refusal at %s against %s, 36 against 35 expected"
          % (refused[0]["value"], refused[0]["limit"]))
    check(not delivered(emu), "pulses delivered at 36 °C: %s" % delivered(emu))


def states_in(msgs, state):
    return [b for t, b, _ in msgs if t == "rpms.state" and b["state"] == state]


def mv_emu(name, **knobs):
    emu = magventure.MagVenture(link(name), model="r30")
    for k, v in knobs.items():
        emu.set_knob(k, v)
    emu.start()
    return emu


def test_magventure_closed_loop():
    """MagPro R30: 20 Hz trains within its 30 pulses/s, the amplitude
    confirmed by reading the status back (writes are not acknowledged),
    with asynchronous frames and garbage interleaved that the reader must
    skip (they are not a fault)."""
    emu = mv_emu("mv-loop", async_period_s=0.2, didt_scale=1.3)
    emu.inject(b"\x00\x13\x37\xfe\x02")
    try:
        r = rig.Run(config("magventure", link("mv-loop")), args=(), timeout=150,
                    stop_when=lambda m: len([1 for t, b, _ in m if t == "rpms.stim"]) >= 15)
    finally:
        emu.stop()
    check(r.returncode == 0, "rpmsd exited %d: %s" % (r.returncode, r.stderr[-2000:]))
    check(not states(r, "fault"), "a fault: %s" % states(r, "fault"))
    got = check_limits(emu, r, 25.0, 0.0, lambda pct: 30.0)
    check(len(got) == 15, "%d pulses delivered, 15 expected" % len(got))
    check_didt(emu, r)


def check_didt(emu, r):
    """The di/dt the device reported after each pulse, recorded pulse for
    pulse: every rpms.stim that carries one names an earlier pulse, and it
    is what the emulator sent for that pulse (it numbers the reports by its
    own count); a report may only be missing for the last pulses, read after
    the last pulse that could carry it."""
    got = delivered(emu)
    events = pulses_of(r)
    at = {(e["train_id"], e["index"]): n for n, e in enumerate(events)}
    seen = set()
    for n, e in enumerate(events):
        if e["didt"] is None:
            continue
        k = at.get((e["didt_train_id"], e["didt_index"]))
        check(k is not None and k < n, "pulse %d carries the di/dt of %r, not an earlier "
              "pulse" % (n, e))
        check(e["didt"] == got[k]["info"]["didt"], "pulse %d: di/dt %r recorded, the device "
              "sent %r" % (k, e["didt"], got[k]["info"]["didt"]))
        check(k not in seen, "pulse %d's di/dt recorded twice" % k)
        seen.add(k)
    check(seen == set(range(len(seen))), "di/dt recorded for pulses %s: a gap" % sorted(seen))
    check(len(seen) >= 10, "only %d di/dt read-backs recorded of %d pulses"
          % (len(seen), len(events)))


def test_magventure_faults():
    cases = [
        ("no-reply", lambda e: e.drop_replies(1000), "no reply"),
        ("crc", lambda e: e.corrupt_replies(1000, how="check"), "corrupt reply"),
        ("vanish", lambda e: e.vanish(), "serial link is gone"),
        ("coil", lambda e: e.set_knob("coil_type", 0), "no coil"),
        ("error", lambda e: e.set_knob("error_bits", 4), "error"),
        ("enable", lambda e: e.drop_enable(), "disarmed itself"),
    ]
    for name, inject, want in cases:
        emu = mv_emu("mv-" + name)
        fault_run(emu, "magventure", link("mv-" + name), inject, want)


def start_error(plugin, tty):
    """rpmsd --check-config passes; the start fails before anything is
    published, with the error on stderr."""
    import subprocess
    path = os.path.join(TMP, "start.conf")
    with open(path, "w") as f:
        f.write(config(plugin, tty))
    p = subprocess.run([rig.RPMSD, "--config", path], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode != 0, "rpmsd started with %s on %s" % (plugin, tty))
    return p.stderr


def test_start_errors():
    err = start_error("magstim", os.path.join(TMP, "no-such-tty"))
    check("key tty" in err and "no-such-tty" in err, "bad path: %s" % err)
    # the other protocol on the port (a MagVenture ignores what it cannot
    # frame; its periodic frames are what the magstim plugin hears)
    emu = mv_emu("other-mv", async_period_s=0.02)
    try:
        err = start_error("magstim", link("other-mv"))
    finally:
        emu.stop()
    check("not a Magstim" in err, "a MagVenture on a magstim port: %s" % err)
    emu = magstim_emu("other-ms", bad_checksum_reply=True)
    try:
        err = start_error("magventure", link("other-ms"))
    finally:
        emu.stop()
    check("not a MagVenture" in err, "a Magstim on a magventure port: %s" % err)
    # a device that stays silent (as on a wrong baud rate or a dead cable)
    emu = magstim_emu("silent")
    emu.silent = True
    try:
        err = start_error("magstim", link("silent"))
    finally:
        emu.stop()
    check("no reply" in err and "baud" in err, "a silent device: %s" % err)
    # garbage, as at a wrong baud rate: replies that make no frame
    emu = mv_emu("garbage")
    emu.corrupt_replies(1000, how="byte")
    try:
        err = start_error("magventure", link("garbage"))
    finally:
        emu.stop()
    check("not a MagVenture" in err, "garbage on the line: %s" % err)


if __name__ == "__main__":
    rig.run_tests([
        test_start_errors,
        test_magstim_closed_loop,
        test_magstim_set_intensity_confirmed,
        test_magstim_faults,
        test_magstim_self_disarm,
        test_magstim_unlock_code,
        test_magstim_temperature,
        test_magventure_closed_loop,
        test_magventure_faults,
    ])
