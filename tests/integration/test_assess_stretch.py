#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Stretch reflex thresholds of the real rpmsd (docs/outcomes.md): "assess
stretch" over a replay with a joint angle beside the EMG, in a course
session on SQLite.

The replay (CSV, 1 kHz, real time): FCR and ECR (EMG, µV) and "elbow", a
goniometer in volts (source.angle_scale_deg = 100, angle_offset_deg = -10:
the test's angles are 100 x V - 10). Rest is 10 µV of noise; the angle has
0.1 degree of noise. A simulated patient with a tonic stretch reflex
threshold TSRT = 60 degrees and mu = 0.1 s: stretching FCR (the angle
rising) at velocity v, its EMG bursts (150 µV) from the angle
DSRT = TSRT - mu * v until 0.3 s after the stretch ends. ECR never fires,
and the angle never reaches a detector.

  0-10 s   rest (calibration, the session, refusals)
  pre      8 stretches 0 -> 70 degrees at 25 ... 250 deg/s, each back at
           60 deg/s (FCR shortens: no reflex); one at 10 deg/s to 50 degrees
           (the DSRT, 59 degrees, is never reached: no onset); one with FCR
           contracting voluntarily from 0.8 s before (not at rest)
  post     3 stretches (too few: the fit is refused, the DSRTs stored)

Checked: the block's TSRT and slope against the patient's (the detector's
onset dating delay biases the slope, not the TSRT), each stretch's DSRT
against the replay's own crossing, the counts, the database rows, the EDF+
(three signals, the angle in degrees equal to the replay's, the blocks as
stretches), the refusals (an unknown muscle, a kind's keys on another,
rpmsctl without --muscle), --check-config refusing an angle column that is
also an EMG column, and that the angle, however it moves, is no channel of
the detector bank (two channels; no onset on ECR).
"""

import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import test_course_session as cs  # noqa: E402
from test_assess_cci import rpmsctl  # noqa: E402  (one way to run rpmsctl here)

RATE = 1000
TSRT, MU = 60.0, 0.1
SPEEDS = [25, 40, 60, 90, 120, 160, 200, 250]
PRE_AT = 10.0
TOL_TSRT = 3.0      # degrees
TOL_SLOPE = 0.04    # degrees per degree/s


class Replay:
    def __init__(self):
        self.rng = random.Random(7)
        self.angle = []     # degrees, noise-free
        self.burst = []     # FCR active
        self.stretches = []  # (start sample, velocity, dsrt or None, kind)

    def hold(self, seconds, active=False):
        a = self.angle[-1] if self.angle else 0.0
        for _ in range(int(round(seconds * RATE))):
            self.angle.append(a)
            self.burst.append(active)

    def move(self, to, dps, reflex=True, active=False, after=0.3):
        """Move to @to at @dps (40 ms cosine ramps); the reflex fires from DSRT."""
        import math
        a0 = self.angle[-1] if self.angle else 0.0
        d = 1 if to > a0 else -1
        dsrt = TSRT - MU * dps if reflex and d > 0 else None
        start = len(self.angle)
        a, i, on = a0, 0, None
        ramp = 0.04 * RATE
        while (to - a) * d > 0:
            v = dps * (0.5 * (1 - math.cos(math.pi * i / ramp)) if i < ramp else 1.0)
            left = (to - a) * d
            if left < dps * 0.02:
                v = max(v * left / (dps * 0.02), 2.0)
            a += d * v / RATE
            if (to - a) * d < 0:
                a = to
            i += 1
            if dsrt is not None and on is None and a >= dsrt:
                on = len(self.angle)
            self.angle.append(a)
            self.burst.append(active or on is not None)
        if on is not None:
            self.hold(after, active=True)
        self.stretches.append((start, dps, dsrt if on is not None else None, d))
        return on

    def write(self, path):
        with open(path, "w") as f:
            f.write("FCR,ECR,elbow\n")
            for a, b in zip(self.angle, self.burst):
                fcr = self.rng.gauss(0.0, 150.0 if b else 10.0)
                ecr = self.rng.gauss(0.0, 10.0)
                volts = (a + self.rng.gauss(0.0, 0.1) + 10.0) / 100.0
                f.write("%.3f,%.3f,%.6f\n" % (fcr, ecr, volts))


def build():
    r = Replay()
    r.hold(PRE_AT + 1.0)
    pre = []
    for v in SPEEDS:
        pre.append(r.move(70.0, v))
        r.hold(0.6)
        r.move(0.0, 60)
        r.hold(1.2)
    r.move(50.0, 10)            # DSRT 59: never reached
    r.hold(0.6)
    r.move(0.0, 60)
    r.hold(1.2)
    r.hold(0.8, active=True)    # FCR contracts voluntarily, then is stretched
    r.move(70.0, 100, active=True)
    r.hold(0.6, active=True)
    r.hold(1.5)
    r.move(0.0, 60)
    r.hold(1.5)
    r.onsets = pre              # the reflex onsets' samples, slowest stretch first
    pre_end = len(r.angle) / RATE
    post_at = pre_end + 1.0
    r.hold(2.0)
    for v in (50, 100, 200):
        r.move(70.0, v)
        r.hold(0.6)
        r.move(0.0, 60)
        r.hold(1.2)
    post_end = len(r.angle) / RATE
    r.hold(4.0)
    path = os.path.join(cs.TMP, "assess_stretch.csv")
    r.write(path)
    return path, r, pre_end, post_at, post_end


def db_rows(db):
    return cs.sqlite_rows(db, "SELECT a.phase, a.onset, a.duration, r.channel, r.name, r.value "
                          "FROM assessments a JOIN assessment_results r "
                          "ON r.assessment = a.id WHERE a.kind = 'stretch'")


def wait_block(d, since, seconds):
    ev = d.wait_for(lambda: d.of("rpms.state", since=since, state="assessment"),
                    cs.WAIT_S + 2 * seconds, "the stretch assessment on rpms.state")
    return ev[0]


def samples(d):
    return d.ok({"cmd": "status"})["acquisition"]["samples"]


def test_check_config_angle_column():
    """An angle column that is also an EMG column is refused at --check-config."""
    r = Replay()
    r.hold(1.0)
    path = os.path.join(cs.TMP, "angle_clash.csv")
    r.write(path)
    conf = cs.tc.base_conf()
    conf["source"].update({"file": path, "format": "csv", "column": "FCR,elbow",
                           "angle_channel": "elbow"})
    p = subprocess.run([rig.RPMSD, "--check-config", cs.tc.write_conf(conf)],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode != 0 and "source.angle_channel" in p.stderr and
          "never reach the detectors" in p.stderr, (p.returncode, p.stderr))
    conf["source"].update({"column": "FCR", "angle_channel": "knee"})
    p = subprocess.run([rig.RPMSD, "--check-config", cs.tc.write_conf(conf)],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode != 0 and "knee" in p.stderr, (p.returncode, p.stderr))
    conf["source"].update({"angle_channel": "elbow", "angle_scale_deg": "0"})
    p = subprocess.run([rig.RPMSD, "--check-config", cs.tc.write_conf(conf)],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode != 0 and "angle_scale_deg" in p.stderr, (p.returncode, p.stderr))


def test_assess_stretch():
    path, rp, pre_end, post_at, post_end = build()
    rx = cs.rx_dir(("PS1", "CS1", 3, 200, cs.OUT30))
    state = rig.state_dir()
    conf = cs.course_conf(rx, state)
    conf["source"].update({"file": path, "format": "csv", "column": "FCR,ECR",
                           "angle_channel": "elbow", "angle_scale_deg": "100",
                           "angle_offset_deg": "-10"})
    conf["detect"]["channel_rule"] = "ECR"
    db = os.path.join(state, "course.db")
    d = cs.tc.Daemon(conf)
    try:
        r = cs.start(d, "PS1", "S1", "CS1")
        check(r["ok"], r)
        edf = r["result"]["recording"]["file"]
        # the angle is not a channel of the detectors
        st = d.ok({"cmd": "status"})
        check(st["acquisition"]["channels"] == 2, st["acquisition"])
        d.wait_for(lambda: d.ok({"cmd": "status"})["acquisition"]["calibrated"] == 2,
                   cs.WAIT_S, "both channels calibrated")
        cal = d.wait_for(lambda: len(d.of("rpms.state", state="calibrated")) >= 2 and
                         d.of("rpms.state", state="calibrated"), cs.WAIT_S, "calibrated events")
        cal = sorted(e["channel"] for e in cal)
        check(cal == [0, 1], "calibrated channels %r" % cal)
        req = {"cmd": "assess", "kind": "stretch", "phase": "pre", "muscle": "BIC"}
        e = d.refused(req, "invalid_value")
        check("BIC" in e["message"] and "FCR" in e["message"], e)
        d.refused(dict(req, muscle="FCR", direction="sideways"), "invalid_value")
        d.refused({"cmd": "assess", "kind": "rest", "phase": "pre", "muscle": "FCR"},
                  "bad_request")
        p = rpmsctl(d, "assess", "stretch", "--pre")
        check(p.returncode == 2 and "--muscle" in p.stderr, (p.returncode, p.stderr))

        d.wait_for(lambda: samples(d) > PRE_AT * RATE, cs.WAIT_S + 20, "the replay at 10 s")
        now = samples(d) / RATE
        seconds = pre_end - now + 0.5
        check(seconds > 30, "the pre block begins too late: %g s" % now)
        t = time.monotonic()
        p = rpmsctl(d, "assess", "stretch", "--pre", "--muscle", "FCR", "--seconds",
                    "%.1f" % seconds)
        check(p.returncode == 0 and "stretch reflex of FCR" in p.stdout and
              "elbow increasing" in p.stdout, "%d %s %s" % (p.returncode, p.stdout, p.stderr))
        pre = wait_block(d, t, seconds)
        print("pre: %r" % pre)
        check(pre["stored"] and pre["kind"] == "stretch" and pre["muscle"] == 0 and
              pre["direction"] == "increasing", pre)
        check(pre["stretches"] == len(SPEEDS) + 2 and pre["n"] == len(SPEEDS), pre)
        check(abs(pre["tsrt_deg"] - TSRT) < TOL_TSRT, "TSRT %g, the patient's %g"
              % (pre["tsrt_deg"], TSRT))
        check(abs(pre["slope_s"] + MU) < TOL_SLOPE, "slope %g, the patient's %g"
              % (pre["slope_s"], -MU))
        check(pre["r2"] > 0.95, pre)

        d.wait_for(lambda: samples(d) > post_at * RATE, cs.WAIT_S + 20, "the post part")
        t = time.monotonic()
        seconds = post_end - samples(d) / RATE + 0.5
        d.ok({"cmd": "assess", "kind": "stretch", "phase": "post", "muscle": "FCR",
              "seconds": seconds})
        post = wait_block(d, t, seconds)
        print("post: %r" % post)
        # three stretches: stored, the fit refused (null)
        check(post["stored"] and post["stretches"] == 3 and post["n"] == 3 and
              post["tsrt_deg"] is None and post["slope_s"] is None, post)
        # the angle moved all along: still no onset on ECR (the channel rule's
        # only channel here, so each of its onsets is an rpms.burst)
        onsets = [e for e in d.of("rpms.burst") if e.get("edge") == "onset"]
        check(not onsets, "ECR onsets: %r" % onsets[:3])
        d.ok({"cmd": "session_stop"})
    finally:
        d.stop()

    rows = db_rows(db)
    pre_vals = {n: v for ph, _, _, ch, n, v in rows if ph == "pre" and ch == "FCR"}
    post_vals = {n: v for ph, _, _, ch, n, v in rows if ph == "post" and ch == "FCR"}
    check(abs(pre_vals["tsrt_deg"] - pre["tsrt_deg"]) < 1e-3 and pre_vals["n"] == 8 and
          pre_vals["no_onset"] == 1 and pre_vals["not_at_rest"] == 1 and
          pre_vals["stretches"] == 10, pre_vals)
    check("tsrt_deg" not in post_vals and post_vals["n"] == 3, post_vals)
    # the recording's first sample, from the block's onset in it
    block_onset = [on for ph, on, _, ch, _, _ in rows if ph == "pre"][0]
    rec_first = pre["first_sample"] - round(block_onset * RATE)
    # each DSRT against the replay's own crossing of the patient's threshold
    want = [(v, TSRT - MU * v) for v in SPEEDS]
    worst = 0.0
    for k, (v, dsrt) in enumerate(want, 1):
        got_v = pre_vals["s%d.velocity_dps" % k]
        got_a = pre_vals["s%d.dsrt_deg" % k]
        # the detector dates an onset to within about 25 ms (rpms-detect on this
        # replay: 0 to 22 ms early): up to v x 25 ms of angle
        check(abs(got_v - v) < 5 + 0.05 * v, "stretch %d: %g deg/s, replay %g" % (k, got_v, v))
        check(abs(got_a - dsrt) < 1.0 + v * 0.025, "stretch %d: DSRT %g, replay %g"
              % (k, got_a, dsrt))
        worst = max(worst, abs(got_a - dsrt))
        # and where it lies in the recording: the replay's onset, within the dating
        got_t = pre_vals["s%d.onset_s" % k]
        true_t = (rp.onsets[k - 1] - rec_first) / RATE
        check(abs(got_t - true_t) < 0.03, "stretch %d: onset at %.3f s of the recording, "
              "replay %.3f s" % (k, got_t, true_t))
        print("stretch %d: %.1f deg/s (replay %d), DSRT %.2f deg (replay %.2f)"
              % (k, got_v, v, got_a, dsrt))
    print("TSRT %.2f deg (patient %.0f), slope %.4f s (patient %.2f), R2 %.4f, worst DSRT "
          "error %.2f deg" % (pre["tsrt_deg"], TSRT, pre["slope_s"], -MU, pre["r2"], worst))

    # the BIDS export: the angle is a MISC channel in degrees, not an EMG one
    dest = os.path.join(cs.TMP, "bids-stretch")
    p = subprocess.run([sys.executable, os.path.join(rig.SOURCE, "tools", "rpms-bids"), "export",
                        "CS1", dest, "--config", d.path, "--rpmsctl", rig.RPMSCTL, "--rpmsd",
                        rig.RPMSD, "--patient", "PS1"], capture_output=True, text=True,
                       timeout=120)
    check(p.returncode == 0, "rpms-bids: %d %s" % (p.returncode, p.stderr))
    import glob
    import bids_emg_check
    chans = glob.glob(os.path.join(dest, "sub-*", "ses-*", "emg", "*_channels.tsv"))
    check(len(chans) == 1, chans)
    with open(chans[0]) as f:
        text = f.read()
    rows = [ln.split("\t") for ln in text.splitlines()]
    check([r[:3] for r in rows[1:]] == [["FCR", "EMG", "uV"], ["ECR", "EMG", "uV"],
                                        ["elbow", "MISC", "deg"]], rows)
    check(not bids_emg_check.check_channels_tsv(text), bids_emg_check.check_channels_tsv(text))
    with open(chans[0].replace("_channels.tsv", "_emg.json")) as f:
        sidecar = json.load(f)
    check(sidecar["EMGChannelCount"] == 2 and not bids_emg_check.check_emg_json(sidecar),
          (sidecar["EMGChannelCount"], bids_emg_check.check_emg_json(sidecar)))
    check([b["TSRT"] for b in sidecar["StretchReflexThresholds"] if b["Phase"] == "pre"] ==
          [pre_vals["tsrt_deg"]], sidecar["StretchReflexThresholds"])
    # events.tsv: the blocks as assessment rows, each fitted stretch's onset with its DSRT
    with open(chans[0].replace("_channels.tsv", "_events.tsv")) as f:
        ev_rows = [ln.split("\t") for ln in f.read().splitlines()[1:]]
    kinds = [r[4] for r in ev_rows if r[2] == "assessment"]
    check(kinds == ["pre stretch", "post stretch"], kinds)
    onsets = [r for r in ev_rows if r[2] == "stretch_reflex_onset"]
    check(len(onsets) == 8 + 3 and all(r[3] == "FCR" for r in onsets), onsets)
    pre_on = sorted((float(r[0]), float(r[4])) for r in onsets if r[5].startswith("pre"))
    check([round(a, 3) for _, a in pre_on] ==
          [round(pre_vals["s%d.dsrt_deg" % k], 3) for k in range(1, 9)] and
          all(abs(t - pre_vals["s%d.onset_s" % k]) < 1e-6 for k, (t, _) in
              enumerate(pre_on, 1)), (pre_on, pre_vals))

    out = json.loads(subprocess.run([cs.EDF_READ, edf], capture_output=True,
                                    text=True).stdout)
    sigs = out["signals"]
    check(len(sigs) == 3 and sigs[2]["label"].strip() == "elbow" and
          sigs[2]["physdimension"].strip() == "deg", sigs)
    ann = [x["text"] for x in out["annotations"]]
    check(any(x.startswith("assessment pre stretch TSRT") for x in ann) and
          "assessment post stretch" in ann, ann)


if __name__ == "__main__":
    rig.run_tests([test_check_config_angle_column, test_assess_stretch])
