#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The sim plugin's simulated patient: each pulse's artefact and M-wave
appear in the replayed EMG the daemon reads (its recording), on the chosen
channel, at the pulse's sample and the latency after it, with the
amplitude of the recruitment curve; the same seed gives the same EMG; a
channel without the patient is left alone (plugins/sim, daemon/simemg.c,
docs/plugins-sim.md)."""

import glob
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

EDF_READ = os.environ.get("EDF_READ", "")
RATE = 2000
D = 32767
P = 10000.0     # record.range_uv = 0 with a replay: the 10000 µV default
T, SLOPE, MAX = 44.0, 2.0, 2000.0
LAT_MS = 4.0


def quiet_recording():
    """Quiet rest EMG (2 µV RMS) as CSV columns, made once per test run."""
    return rig.quiet_recording(os.path.join(tempfile.gettempdir(),
                                            "rpmsd-quiet-%d.csv" % os.getpid()), RATE, 20,
                               seed=21, digits=3)


def curve(pct):
    """simpatient.h's noise-free amplitude."""
    i50 = T + SLOPE * math.log(MAX / 50.0 - 1.0)
    return MAX / (1.0 + math.exp(-(pct - i50) / SLOPE))


def run(patient, intensity=46.0):
    """A fast replay, open loop single pulses about every second, recorded."""
    d = tempfile.mkdtemp(prefix="rpmsd-simpatient-")
    conf = {
        "daemon": {"state_dir": rig.state_dir(), "arm_on_start": "true"},
        "source": {"file": quiet_recording(), "format": "csv", "column": "1,2",
                   "rate_hz": str(RATE), "realtime": "true", "block_frames": "8"},
        "detect": {"calibration_s": "1"},
        "stim": {"plugin": "sim", "mode": "open_loop", "protocol": "train",
                 "train_pulses": "1", "train_frequency_hz": "20",
                 "intensity_pct": "%g" % intensity, "off_ms": "1000",
                 "open_loop_pulses": "12"},
        "safety": {"max_train_pulses": "10", "motor_threshold_pct": "40",
                   "max_intensity_pct": "60", "min_train_interval_ms": "100",
                   "max_frequency_hz": "25"},
        "publish": {"endpoint": "tcp://127.0.0.1:%d" % rig.free_port()},
        "control": {"endpoint": rig.control_endpoint()},
        "record": {"directory": d, "patient_id": "P0", "session_id": "S0"},
        "coil.sim": patient,
    }
    text = "".join("[%s]\n%s" % (sec, "".join("%s = %s\n" % kv for kv in keys.items()))
                   for sec, keys in conf.items())
    r = rig.Run(text)
    check(r.returncode == 0, "rpmsd exited %d: %s" % (r.returncode, r.stderr[-2000:]))
    files = sorted(glob.glob(os.path.join(d, "*.edf")))
    check(len(files) == 1, "expected one recording, found %r" % files)
    p = subprocess.run([EDF_READ, files[0]], stdout=subprocess.PIPE, text=True)
    check(p.returncode == 0, "edf_read failed")
    edf = json.loads(p.stdout)
    r.chan = [[x * P / D for x in s["samples"]] for s in edf["signals"]
              if s["label"].strip() != "EDF Annotations"]
    r.pulses = [b["sample_at_fire"] for b in r.of("rpms.stim")]
    check(len(r.pulses) >= 10, "%d pulses fired" % len(r.pulses))
    return r


def window(xs, at, from_ms, to_ms):
    return xs[at + int(math.ceil(from_ms * RATE / 1000.0)):
              at + int(math.ceil(to_ms * RATE / 1000.0))]


def p2p(xs):
    return max(xs) - min(xs)


def patient(**over):
    keys = {"patient_threshold_pct": "%g" % T, "patient_slope_pct": "%g" % SLOPE,
            "patient_max_uv": "%g" % MAX, "patient_noise": "0", "patient_seed": "9",
            "patient_channel": "1", "patient_latency_ms": "%g" % LAT_MS,
            "patient_artefact_uv": "3000"}
    keys.update(over)
    return keys


def test_mwave_at_the_pulse():
    r = run(patient(), intensity=50.0)
    want = curve(50.0)
    wave_len = int(round(10.0 * RATE / 1000.0))
    for s in r.pulses:
        at = int(math.floor(s + RATE * 1e-9))
        emg = r.chan[1]
        # the artefact at the pulse's own sample, gone by 2 ms
        check(abs(emg[at] - 3000.0) < 5.0, "pulse at %d: artefact %.1f uV" % (at, emg[at]))
        m = window(emg, at, 2.0, 20.0)
        check(abs(p2p(m) - want) < 0.03 * want + 15.0,
              "pulse at %d: M-wave %.1f uV p-p, the curve says %.1f" % (at, p2p(m), want))
        # its positive peak a quarter period after the onset
        peak = at + int(round(LAT_MS * RATE / 1000.0)) + wave_len // 4
        check(emg[peak] == max(m), "pulse at %d: peak at %d, not %d" %
              (at, at + int(math.ceil(2.0 * RATE / 1000.0)) + m.index(max(m)), peak))
        # quiet before the pulse and after the wave
        if at >= 40:   # the first pulse comes with the first block
            check(p2p(window(emg, at, -20.0, 0.0)) < 30.0, "pulse at %d: not quiet before" % at)
        check(p2p(window(emg, at, 16.0, 40.0)) < 30.0, "pulse at %d: not quiet after" % at)
        # the other channel has no patient
        check(p2p(window(r.chan[0], at, 0.0, 20.0)) < 30.0,
              "pulse at %d: channel 0 has the response too" % at)


def test_below_threshold_nothing():
    r = run(patient(), intensity=30.0)
    for s in r.pulses:
        at = int(math.floor(s + RATE * 1e-9))
        check(p2p(window(r.chan[1], at, 2.0, 20.0)) < 30.0,
              "pulse at %d at 30 %%: a response below threshold" % at)


def test_same_seed_same_emg():
    noisy = patient(patient_noise="0.5")
    a = run(noisy, intensity=44.0)
    b = run(noisy, intensity=44.0)
    check(a.pulses == b.pulses, "pulses differ between two runs")
    check(a.chan == b.chan, "the same seed gave different EMG")
    amps = [p2p(window(a.chan[1], int(math.floor(s + RATE * 1e-9)), 2.0, 20.0))
            for s in a.pulses]
    check(len(set(round(x) for x in amps)) > len(amps) // 2,
          "noise 0.5 but the amplitudes barely vary: %r" % amps)
    c = run(patient(patient_noise="0.5", patient_seed="10"), intensity=44.0)
    check(c.chan != a.chan, "another seed gave the same EMG")


def test_bad_key_refused():
    r = rig.Run(rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra={
        ("coil.sim", "patient_threshold_pct"): "40",
        ("coil.sim", "patient_max_uv"): "20"}), timeout=60)
    check(r.returncode != 0, "a patient_max_uv of 20 was accepted")
    check("patient_max_uv" in r.stderr, "the error does not name the key: %s" % r.stderr)


if __name__ == "__main__":
    rig.run_tests([test_mwave_at_the_pulse, test_below_threshold_nothing,
                   test_same_seed_same_emg, test_bad_key_refused])
