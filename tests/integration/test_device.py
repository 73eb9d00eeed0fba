#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The connected device in the safety gate (coil ABI 1.2, docs/safety.md
"The device's envelope"), through the real rpmsd and the sim plugin acting
as a serial stimulator (device_model): a protocol the device cannot
deliver refused at start, by --check-config and by control "set", naming
the device rule, with nothing changed; a closed-loop run whose every pulse
the test holds to the envelope itself; and the intensity the device
confirms by read-back: a mismatch, nothing confirmed, and a "set" that
must be confirmed before its pulses fire.

The envelope is the sim plugin's documented test preset (test-rapid2,
docs/plugins.md), written out again below from that documentation: the
test computes the limits itself, it does not ask the daemon.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import test_control as tc  # noqa: E402

# The sim plugin's test-rapid2 preset, as docs/plugins.md states it.
RATE_CAPS = [(30.0, 50.0), (61.0, 25.0), (80.0, 15.0), (100.0, 10.0)]
MIN_TRAIN_GAP_S = 0.5
SINGLE_MAX_HZ = 1.0
ENERGY = [(0.0, 20.0), (50.0, 80.0), (60.0, 100.0), (80.0, 150.0), (100.0, 220.0)]
POWER_W = 1050.0
MODEL = "sim-rapid2"


def rate_cap(pct):
    for top, hz in RATE_CAPS:
        if pct <= top + 1e-9:
            return hz
    return 0.0


def joules(pct):
    if pct <= ENERGY[0][0]:
        return ENERGY[0][1]
    for (x0, j0), (x1, j1) in zip(ENERGY, ENERGY[1:]):
        if pct <= x1:
            return j0 + (j1 - j0) * (pct - x0) / (x1 - x0)
    return float("inf")


def device_conf(**sim):
    conf = tc.base_conf()
    # rpmsd's own limits wide enough that the device's are the ones that bite
    conf["safety"].update({"max_intensity_pct": "100", "motor_threshold_pct": "80",
                           "min_train_interval_ms": "100"})
    conf["coil.sim"] = {"device_model": MODEL, "envelope": "test-rapid2"}
    conf["coil.sim"].update({k: str(v) for k, v in sim.items()})
    return conf


def check_envelope(pulses):
    """Every delivered pulse against the envelope, by the test's own
    arithmetic: rate cap at its intensity, gap between trains, single-pulse
    rate, and MagPy's energy model (wait after a train; energy a minute)."""
    by_train = {}
    for p in pulses:
        by_train.setdefault(p["train_id"], []).append(p)
    prev = None
    for tid in sorted(by_train, key=lambda t: by_train[t][0]["t_actual_s"]):
        ps = by_train[tid]
        pct = ps[0]["intensity_pct"]
        check(all(p["intensity_pct"] == pct for p in ps), "train %d: intensities vary" % tid)
        check(pct <= 100.0, "train %d above the device's output" % tid)
        for a, b in zip(ps, ps[1:]):
            dt = b["t_actual_s"] - a["t_actual_s"]
            check(dt * rate_cap(pct) >= 1.0 - 1e-6,
                  "train %d: pulses %.6f s apart at %g %%, cap %g Hz" % (tid, dt, pct,
                                                                        rate_cap(pct)))
        if prev is not None:
            pps, f = prev
            gap = ps[0]["t_actual_s"] - pps[-1]["t_actual_s"]
            check(gap >= MIN_TRAIN_GAP_S - 1e-6, "train %d: %.6f s after the last" % (tid, gap))
            if len(ps) == 1 and len(pps) == 1:
                check(gap * SINGLE_MAX_HZ >= 1.0 - 1e-6, "single pulses %.6f s apart" % gap)
            if f > 0:
                j = joules(pps[0]["intensity_pct"])
                wait = len(pps) * (f * j - POWER_W) / (POWER_W * f)
                check(gap >= wait - 1e-6, "train %d: %.6f s after the last, wait %.6f s"
                      % (tid, gap, wait))
        prev = (ps, (len(ps) - 1) / (ps[-1]["t_actual_s"] - ps[0]["t_actual_s"])
                if len(ps) > 1 else 0.0)
    for p in pulses:
        t = p["t_actual_s"]
        e = sum(joules(q["intensity_pct"]) for q in pulses if t - 60.0 < q["t_actual_s"] <= t)
        check(e <= 60.0 * POWER_W + 1e-6, "%.1f J in the minute up to %.6f s" % (e, t))


def test_undeliverable_protocol_refused_at_start():
    """62 % is above the device's 61 % step: trains at 20 Hz are beyond its
    15 Hz cap there. Trains 350 ms apart are under its 500 ms gap. Both are
    refused by --check-config and by the start, naming the device rule;
    without the device the same configuration starts."""
    conf = device_conf()
    conf["stim"].update({"intensity_pct": "62"})
    tc.check_config_refused(conf, "device rule device_rate_cap")
    tc.check_config_refused(conf, "the connected device (%s) cannot deliver" % MODEL)
    tc.check_config_refused(conf, "20 Hz is above the 15 Hz %s allows at this output" % MODEL)
    del conf["coil.sim"]
    tc.check_config_ok(conf)
    conf = device_conf()
    conf["stim"].update({"protocol": "onoff", "on_ms": "250", "off_ms": "300",
                         "cycles": "2"})
    tc.check_config_refused(conf, "device rule device_train_gap")
    tc.check_config_refused(conf, "stim.off_ms")
    conf["stim"]["off_ms"] = "500"
    tc.check_config_ok(conf)
    # MagPy's energy model: 15 Hz at 80 % (150 J) for 1 s needs 1.14 s after
    conf = device_conf()
    conf["safety"].update({"max_train_pulses": "20", "max_frequency_hz": "25"})
    conf["safety"]["motor_threshold_pct"] = "100"
    conf["stim"].update({"protocol": "onoff", "train_frequency_hz": "15", "on_ms": "1000",
                         "off_ms": "1000", "cycles": "3", "intensity_pct": "80"})
    tc.check_config_refused(conf, "device rule device_energy_wait")


def test_set_beyond_the_device_is_refused():
    """control set of a protocol the device cannot deliver: refused with
    the device rule, nothing changed, the coil still disarmed; one it can
    deliver goes through."""
    d = tc.Daemon(device_conf())
    try:
        before = tc.snapshot(d.ok({"cmd": "status"}))
        for params, rule in (({"intensity_pct": 62}, "device.rate_cap"),
                             ({"protocol": "onoff", "on_ms": 250, "off_ms": 300, "cycles": 2},
                              "device.train_gap")):
            e = d.refused({"cmd": "set", "params": params}, "beyond_safety_cap")
            check(e.get("rule") == rule, "%r: %r" % (params, e))
            check(MODEL in e["message"] and e.get("key", "").startswith("stim."), e)
            st = d.ok({"cmd": "status"})
            check(tc.snapshot(st) == before and not st["armed"], "%r changed something" % params)
        check(not d.of("rpms.state", state="protocol_changed"), "a refused set was published")
        r = d.ok({"cmd": "set", "params": {"intensity_pct": 40}})
        check(r["protocol"]["intensity_pct"] == 40, r)
    finally:
        d.stop()


def test_closed_loop_within_the_envelope():
    """A closed-loop run at 25 Hz and 50 %, with the intensity changed by
    set: every pulse published is inside the envelope by the test's own
    arithmetic; pulses fire only at the intensity the device confirmed
    (a set is confirmed 3 s later, longer than the 2 s between bursts:
    the trains in between are refused with both numbers)."""
    conf = device_conf(confirm_delay_ms=3000)
    conf["stim"].update({"train_frequency_hz": "25", "intensity_pct": "50",
                         "refractory_ms": "300"})
    d = tc.Daemon(conf)
    try:
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: len(tc.trains(d)) >= 2, 30, "no two trains")
        d.ok({"cmd": "set", "params": {"intensity_pct": 55}})
        t_set = time.monotonic()
        d.wait_for(lambda: [ps for ps in tc.trains(d, since=t_set).values()
                            if ps[0]["intensity_pct"] == 55], 30, "no train at 55 %")
        d.wait_for(lambda: len(tc.trains(d, since=t_set)) >= 3, 30, "no three trains after")
    finally:
        d.stop()
    pulses = d.of("rpms.stim")
    check(len(pulses) >= 15, "%d pulses" % len(pulses))
    check_envelope(pulses)
    refused = d.of("rpms.safety", rule="device_intensity")
    # before the first confirmation (3 s from the start): nothing confirmed
    first = min(p["t_actual_s"] for p in pulses)
    check(all(r["value"] == 50 and r["limit"] is None for r in refused
              if r["t_sched_s"] < first), refused)
    # between the set and its confirmation: asked 55, the device still at 50
    after = [r for r in refused if r["t_sched_s"] > first]
    check(after and all(r["value"] == 55 and r["limit"] == 50 for r in after), refused)
    # a pulse at 55 only once the device confirmed it, after those refusals
    first55 = min(p["t_actual_s"] for p in pulses if p["intensity_pct"] == 55)
    check(first55 > max(r["t_sched_s"] for r in after), (first55, after))
    # (a train cut short by the stop at the end is refused as disarmed)
    other = [r for r in d.of("rpms.safety") if r["rule"] not in ("device_intensity", "disarmed")]
    check(not other, "refusals %r" % other)


def test_closed_loop_gate_enforces_the_envelope():
    """The demo recording's bursts at about 25.5 and 26.3 s, each starting
    a single pulse (refractory 100 ms): rpmsd's own limits admit the
    second, the device's 1 Hz single-pulse mode does not. The gate refuses
    it per pulse, naming the rule and both numbers; every pulse delivered
    is inside the envelope by the test's own arithmetic."""
    text = rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra={
        ("stim", "protocol"): "single", ("stim", "refractory_ms"): "100",
        ("coil.sim", "device_model"): MODEL, ("coil.sim", "envelope"): "test-rapid2"})
    r = rig.Run(text)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    pulses = r.of("rpms.stim")
    check(len(pulses) >= 2, "pulses %r" % pulses)
    check_envelope(pulses)
    refused = r.of("rpms.safety", rule="device_single_pulse_rate")
    check(len(refused) == 1, "refusals %r" % r.of("rpms.safety"))
    check(0.5 < refused[0]["value"] < 1.0 and refused[0]["limit"] == 1.0 and
          refused[0]["unit"] == "s", refused)
    # without the device the same run delivers that pulse
    r = rig.Run(text.replace("device_model = " + MODEL, "device_model ="))
    check(r.returncode == 0 and len(r.of("rpms.stim")) == len(pulses) + 1,
          "without the device: %d pulses" % len(r.of("rpms.stim")))


def test_confirmed_intensity_mismatch():
    """A device that applies 5 % less than asked: every pulse is refused
    with both numbers; one that never confirms: refused with none."""
    for sim, limit in (({"confirm_offset_pct": -5}, 25), ({"confirm_delay_ms": -1}, None)):
        d = tc.Daemon(device_conf(**sim))
        try:
            d.ok({"cmd": "arm"})
            d.wait_for(lambda: d.of("rpms.safety", rule="device_intensity"), 30,
                       "no device_intensity refusal")
            d.wait_for(lambda: len(d.of("rpms.burst", action="requested")) >= 2, 30,
                       "no second request")
        finally:
            d.stop()
        check(not d.of("rpms.stim"), "%r: pulses %r" % (sim, d.of("rpms.stim")[:3]))
        ev = d.of("rpms.safety", rule="device_intensity")
        check(ev and all(r["value"] == 30 and r["limit"] == limit and r["unit"] == "%"
                         for r in ev), "%r: %r" % (sim, ev))


if __name__ == "__main__":
    rig.run_tests([
        test_undeliverable_protocol_refused_at_start,
        test_set_beyond_the_device_is_refused,
        test_closed_loop_within_the_envelope,
        test_closed_loop_gate_enforces_the_envelope,
        test_confirmed_intensity_mismatch,
    ])
