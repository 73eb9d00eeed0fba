#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The motor threshold procedure through an intensity-controlled serial
stimulator (docs/threshold.md): the real rpmsd, the magventure and magstim
plugins against their device emulators (tests/emu/) on a pseudo-terminal,
a paced replay of quiet EMG, and a simulated patient ([sim_patient],
replay only) answering each pulse at the output the device confirmed.

For every seeded patient: the estimate is within 2 % of maximum output of
the true threshold, the pulses are bounded, and every probe is seen in the
emulator's own log: the output written to the device, the device's status
read back with that output, then the pulse delivered at it. A device that
never applies an output stops the procedure with the reason named and the
coil disarmed, and nothing more is fired."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emu"))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import magstim  # noqa: E402
import magventure  # noqa: E402

RATE = 2000
TMP = tempfile.mkdtemp(prefix="rpmsd-mt-dev-")
# (true threshold % MSO, slope %, maximum µV, noise, seed): several patients
PATIENTS = [(43.4, 2.0, 2500.0, 0.25, 7), (31.7, 1.5, 1500.0, 0.3, 3),
            (56.2, 3.0, 4000.0, 0.2, 11)]
MAX_PULSES = 80


def quiet_recording():
    """Quiet rest EMG (2 µV RMS), long enough for the slowest run."""
    return rig.quiet_recording(os.path.join(TMP, "quiet.csv"), RATE, 400)


def config_text(plugin, tty, patient, source=None):
    mt, slope, max_uv, noise, seed = patient
    conf = {
        "daemon": {"state_dir": rig.state_dir(), "arm_on_start": "false"},
        "source": source or {"file": quiet_recording(), "format": "csv", "column": "1,2",
                             "rate_hz": str(RATE), "realtime": "true", "block_frames": "16"},
        "detect": {"calibration_s": "1"},
        "stim": {"plugin": plugin, "intensity_pct": "30"},
        "safety": {"max_train_pulses": "10", "motor_threshold_pct": "40",
                   "max_intensity_pct": "80", "min_train_interval_ms": "100",
                   "max_frequency_hz": "25"},
        "publish": {"endpoint": "tcp://127.0.0.1:%d" % rig.free_port()},
        "control": {"endpoint": rig.control_endpoint()},
        "sim_patient": {"threshold_pct": "%g" % mt, "slope_pct": "%g" % slope,
                        "max_uv": "%g" % max_uv, "noise": "%g" % noise, "seed": str(seed),
                        "channel": "1"},
        # a loaded machine delays the emulator's replies: generous time-outs
        "coil.%s" % plugin: {"tty": tty, "fire": "serial", "reply_timeout_ms": "1000",
                             "serial_fire_late_ms": "200"},
    }
    return "".join("[%s]\n%s" % (sec, "".join("%s = %s\n" % kv for kv in keys.items()))
                   for sec, keys in conf.items())


class Daemon(rig.LiveDaemon):
    """A paced rpmsd on a device emulator; a subscriber keeps every message."""

    def __init__(self, plugin, tty, patient):
        directory = tempfile.mkdtemp(prefix="run-", dir=TMP)
        super().__init__(config_text(plugin, tty, patient), directory, calibration_s=90)

    def ctl(self, *args, timeout=300):
        return subprocess.run([rig.RPMSCTL, "--endpoint", self.control] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)


def mv_emu(name, **knobs):
    emu = magventure.MagVenture(os.path.join(TMP, name), model="r30")
    for k, v in knobs.items():
        emu.set_knob(k, v)
    emu.start()
    return emu


def ms_emu(name, **knobs):
    """A Rapid2 in single-pulse use (docs/plugins-magstim.md)."""
    emu = magstim.Magstim(os.path.join(TMP, name), model="rapid2")
    for k, v in knobs.items():
        emu.set_knob(k, v)
    emu.start()
    return emu


def mv_writes(emu):
    """(t, output) of each amplitude frame the MagVenture received."""
    out = []
    for e in emu.entries("rx"):
        d = e["data"]
        if d[2] == 0x01:
            out.append((e["t"], d[3]))
    return out


def mv_readbacks(emu):
    """(t, amplitude A) of each status reply the MagVenture sent."""
    return [(e["t"], e["data"][9]) for e in emu.entries("tx")
            if e["data"][1] == 0x0A and e["data"][2] == 0x00]


def ms_writes(emu):
    """(t, output) of each power command (@NNN) the Magstim received."""
    return [(e["t"], int(e["data"][1:4])) for e in emu.entries("rx")
            if e["data"][:1] == b"@"]


def ms_readbacks(emu):
    """(t, power A as applied) of each parameter reply (\\@) the Magstim sent."""
    return [(e["t"], int(e["data"][2:5])) for e in emu.entries("tx")
            if e["data"][:1] == b"\\"]


def check_probes_on_device(emu, probes, writes, readbacks):
    """Every probe: its output written to the device, the device's read-back
    of that output after the write, then a pulse delivered at it; nothing
    delivered that was not a probe."""
    pulses = [p for p in emu.pulses if p["kind"] == "pulse"]
    check(len(pulses) == len(probes), "the device delivered %d pulses for %d probes"
          % (len(pulses), len(probes)))
    before = 0.0
    for k, (probe, pulse) in enumerate(zip(probes, pulses)):
        pct = probe["intensity_pct"]
        check(pulse["info"]["intensity"] == pct, "probe %d at %g %%, the device fired %s %%"
              % (k + 1, pct, pulse["info"]["intensity"]))
        w = [t for t, v in writes if v == pct and t < pulse["t"]]
        check(w, "probe %d: %g %% was never written to the device before its pulse"
              % (k + 1, pct))
        rb = [t for t, v in readbacks if v == pct and w[0] <= t < pulse["t"]]
        check(rb, "probe %d: the device never read back %g %% between the write and the pulse"
              % (k + 1, pct))
        check(pulse["t"] > before, "pulses out of order")
        before = pulse["t"]


def run_patient(plugin, emu, patient, writes, readbacks, interval):
    d = Daemon(plugin, emu.slave_path, patient)
    try:
        arm = d.ctl("arm")
        check(arm.returncode == 0, "arm: %s %s" % (arm.stdout, arm.stderr))
        t0 = time.monotonic()
        r = d.ctl("threshold", "--channel", "1", "--interval", interval)
        took = time.monotonic() - t0
        check(r.returncode == 0, "rpmsctl threshold exited %d: %s %s"
              % (r.returncode, r.stdout, r.stderr))
        last = r.stdout.strip().splitlines()[-1]
        check(last.startswith("motor threshold: "), "no result line: %r" % last)
        est = float(last.split()[2])
        d.wait_for(lambda: d.of("rpms.threshold", kind="result"), 30, "the result event")
        probes = d.of("rpms.threshold", kind="probe")
        res = d.of("rpms.threshold", kind="result")[0]
        check(res["outcome"] == "found" and res["threshold_pct"] == est, "result %r" % res)
        check(len(probes) == res["pulses"] <= MAX_PULSES, "%d probes, result says %d"
              % (len(probes), res["pulses"]))
        check(not d.of("rpms.safety"), "refusals: %r" % d.of("rpms.safety")[:3])
        stims = d.of("rpms.stim")
        check([p["intensity_pct"] for p in stims] == [p["intensity_pct"] for p in probes],
              "pulses %r for probes %r" % ([p["intensity_pct"] for p in stims],
                                           [p["intensity_pct"] for p in probes]))
        err = d.stop()
        check("sim_patient: a SIMULATED patient" in err, "no warning of the simulated patient")
    finally:
        d.stop()
    check_probes_on_device(emu, probes, writes(emu), readbacks(emu))
    return est, len(probes), took


def check_patients(plugin, make_emu, writes, readbacks, interval):
    rows = []
    for i, patient in enumerate(PATIENTS):
        emu = make_emu("%s-%d" % (plugin, i))
        try:
            est, n, took = run_patient(plugin, emu, patient, writes, readbacks, interval)
        finally:
            emu.stop()
        err = abs(est - patient[0])
        print("%s: true %g %%, seed %d: estimate %g %% (error %.1f %%), %d pulses, %.0f s"
              % (plugin, patient[0], patient[4], est, err, n, took), flush=True)
        check(err <= 2.0, "%s: estimate %g %%, true %g %%" % (plugin, est, patient[0]))
        rows.append((patient[0], est, n))
    return rows


def test_magventure_patients():
    """Several seeded patients through the magventure plugin, each probe's
    output confirmed by the device's status read-back before it fires."""
    check_patients("magventure", mv_emu, mv_writes, mv_readbacks, "0.5")


def test_magstim_patients():
    """The same patients through the magstim plugin (Rapid2 single-pulse
    mode: a pulse a second at most), each probe's power confirmed by the
    device's parameter read-back (power as applied, after settling)."""
    check_patients("magstim", ms_emu, ms_writes, ms_readbacks, "1.1")


def test_magventure_not_confirmed():
    """A MagVenture that never applies a written amplitude: the first probe
    is never fired; the procedure stops naming the unconfirmed output, and
    the coil is disarmed."""
    emu = mv_emu("mv-noconfirm")
    try:
        d = Daemon("magventure", emu.slave_path, PATIENTS[0])
        try:
            # the protocol's output first (set at start-up), then none
            d.wait_for(lambda: emu.state_dict()["amp_a"] == 30, 30, "the start-up output")
            emu.set_knob("amp_not_applied", True)
            arm = d.ctl("arm")
            check(arm.returncode == 0, "arm: %s %s" % (arm.stdout, arm.stderr))
            r = d.ctl("threshold", "--channel", "1", "--interval", "0.5")
            print(r.stdout, r.stderr, end="", flush=True)
            check(r.returncode != 0, "rpmsctl threshold succeeded: %s" % r.stdout)
            d.wait_for(lambda: d.of("rpms.threshold", kind="result"), 30, "the result event")
            res = d.of("rpms.threshold", kind="result")[0]
            check(res["outcome"] == "stopped" and res["pulses"] == 0, "result %r" % res)
            check("the device did not confirm 40 % within 5000 ms (it says 30 %)"
                  in res["reason"], "reason %r" % res["reason"])
            check("did not confirm 40 %" in r.stdout + r.stderr,
                  "rpmsctl does not say why: %r %r" % (r.stdout, r.stderr))
            d.wait_for(lambda: d.of("rpms.state", state="disarmed"), 30, "the disarm")
            why = [s for s in d.of("rpms.state", state="disarmed")
                   if "did not confirm" in json.dumps(s)]
            check(why, "no disarm naming the output: %r" % d.of("rpms.state"))
            st = d.ctl("status")
            check(re.search(r"^armed:\s+no$", st.stdout, re.M), "still armed: %s" % st.stdout)
            check(not d.of("rpms.stim"), "pulses fired: %r" % d.of("rpms.stim"))
        finally:
            d.stop()
    finally:
        emu.stop()
    check(not [p for p in emu.pulses if p["kind"] == "pulse"],
          "the device delivered %r" % emu.pulses)
    check(40 in [v for _, v in mv_writes(emu)], "40 %% never asked of the device")


def test_sim_patient_refused_without_replay():
    """[sim_patient] on an IIO source: --check-config refuses it and names
    the key; nothing opens."""
    text = config_text("magventure", "/nonexistent/tty", PATIENTS[0],
                       source={"type": "iio", "device": "rpmsd-emg", "channels": "voltage0"})
    path = rig.write_config(text, TMP)
    p = subprocess.run([rig.RPMSD, "--check-config", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    check(p.returncode != 0, "--check-config accepted a simulated patient on iio: %s"
          % p.stdout)
    check("sim_patient.threshold_pct" in p.stderr and "source.type = replay" in p.stderr,
          "not named: %r" % p.stderr)


if __name__ == "__main__":
    rig.run_tests([test_sim_patient_refused_without_replay, test_magventure_not_confirmed,
                   test_magventure_patients, test_magstim_patients])
