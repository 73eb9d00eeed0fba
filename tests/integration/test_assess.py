#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Outcome assessments of the real rpmsd (docs/outcomes.md): "assess rest"
over a replay of known bursts, in a course session on SQLite.

The replay (1 kHz, real time): 10 uV rest noise for its first 20 s, then a
0.5 s burst of 200 uV every 2.5 s. A "pre" block of 5 s in the quiet part
(sent with rpmsctl) and a "post" block of 10 s in the bursty part (sent on
the control socket) each give, per channel, the rest RMS, bursts a minute and
% of time active. The test computes the same numbers from the replay file
itself, over the block's own samples (first_sample and samples from the
event), and requires:

  - bursts: the bursts whose start + the detector's decision delay
    (detect.on_ms, 30 ms) lies in the block, within 1;
  - % active: the burst samples in the block over its samples, within 2.5
    percentage points (the detector dates each edge within some ms);
  - rest RMS of the quiet block: the replay's own RMS of its samples within
    the 20-450 Hz band's share of white noise (x0.93), within 10 %; the
    bursty block's RMS above the quiet one's;
  - the same numbers in the course database (assessments, assessment_results)
    and a stretch in the EDF+ (an annotation with the block's onset and
    duration);
  - refusals: armed, a second block while one runs, no course session; a
    block the coil was armed during (its pulses' blanks in it) published
    with stored false (-ECANCELED), neither in the database nor the EDF+.
"""

import json
import os
import random
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import test_course_session as cs  # noqa: E402

RATE = 1000
QUIET_S = 20
PERIOD_S = 2.5
BURST_S = 0.5
ON_MS = 30          # detect.on_ms (the default): an onset is decided this late
SECONDS = 60


def replay():
    """The replay file and, for the test's own numbers, its samples."""
    rng = random.Random(11)
    x = []
    for i in range(SECONDS * RATE):
        x.append(rng.gauss(0.0, 200.0 if burst_at(i) else 10.0))
    path = os.path.join(cs.TMP, "assess.txt")
    with open(path, "w") as f:
        f.write("# test_assess.py: rest 20 s, then 0.5 s bursts every 2.5 s\n")
        f.writelines("%.3f\n" % v for v in x)
    return path, x


def burst_at(i):
    t = i / RATE
    return t >= QUIET_S and (t - QUIET_S) % PERIOD_S < BURST_S


def expected(x, first, n):
    """The block's numbers from the replay: onsets decided in it, % active, RMS."""
    onsets = 0
    for k in range(int((SECONDS - QUIET_S) / PERIOD_S) + 1):
        start = int(round((QUIET_S + k * PERIOD_S) * RATE))
        decided = start + ON_MS * RATE // 1000
        if first <= decided < first + n:
            onsets += 1
    active = sum(1 for i in range(first, first + n) if burst_at(i))
    rms = (sum(v * v for v in x[first:first + n]) / n) ** 0.5
    return onsets, 100.0 * active / n, rms


def db_results(db, phase):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        rows = con.execute("SELECT a.onset, a.duration, r.name, r.value FROM assessments a "
                           "JOIN assessment_results r ON r.assessment = a.id "
                           "WHERE a.phase = ? AND a.kind = 'rest'", (phase,)).fetchall()
    finally:
        con.close()
    return rows


def rpmsctl(d, *args):
    return subprocess.run([rig.RPMSCTL] + list(args) + ["--endpoint", d.control,
                                                        "--timeout", "15"],
                          capture_output=True, text=True, timeout=60)


def wait_block(d, phase, since):
    ev = d.wait_for(lambda: [e for e in d.of("rpms.state", since=since, state="assessment")
                             if e["phase"] == phase], cs.WAIT_S + 30,
                    "the %s assessment on rpms.state" % phase)
    return ev[0]


def test_assess_rest():
    path, x = replay()
    # 200 pulses: the open loop (5 a second) still runs, armed, when the armed
    # refusal is asked for after the 3 s spoilt block (20 had ended by then)
    rx = cs.rx_dir(("PA1", "CA1", 3, 200, cs.OUT30))
    state = rig.state_dir()
    conf = cs.course_conf(rx, state)
    conf["source"]["file"] = path
    db = os.path.join(state, "course.db")
    d = cs.tc.Daemon(conf)
    try:
        # no course session: refused, nothing measured
        d.refused({"cmd": "assess", "kind": "rest", "phase": "pre"}, "no_session")
        r = cs.start(d, "PA1", "S1", "CA1")
        check(r["ok"], r)
        edf = r["result"]["recording"]["file"]
        d.wait_for(lambda: d.ok({"cmd": "status"})["acquisition"]["calibrated"] == 1,
                   cs.WAIT_S, "calibrated")
        t = time.monotonic()
        p = rpmsctl(d, "assess", "rest", "--pre", "--seconds", "5")
        check(p.returncode == 0 and "assessment started: pre rest over the next 5 s" in p.stdout,
              "%d %s %s" % (p.returncode, p.stdout, p.stderr))
        d.refused({"cmd": "assess", "kind": "rest", "phase": "post"}, "busy")
        pre = wait_block(d, "pre", t)
        check(pre["stored"] and pre["code"] == 0 and pre["kind"] == "rest", pre)
        check(pre["samples"] == 5 * RATE and pre["first_sample"] + pre["samples"] <= QUIET_S * RATE,
              "the pre block must lie in the quiet 20 s: %r" % pre)
        on, act, rms = expected(x, pre["first_sample"], pre["samples"])
        check(on == 0 and pre["bursts_per_min"] == [0] and pre["active_pct"] == [0], pre)
        want = rms * 0.93
        print("pre: %d samples from %d: RMS %.3f uV (replay %.3f x 0.93 = %.3f)"
              % (pre["samples"], pre["first_sample"], pre["rms_uv"][0], rms, want))
        check(abs(pre["rms_uv"][0] - want) < 0.10 * want,
              "pre rest RMS %g uV, the replay's band share %g uV" % (pre["rms_uv"][0], want))

        # the post block: wait for the bursty part of the replay
        d.wait_for(lambda: d.ok({"cmd": "status"})["acquisition"]["samples"] > QUIET_S * RATE,
                   cs.WAIT_S, "the replay past its quiet part")
        t = time.monotonic()
        d.ok({"cmd": "assess", "kind": "rest", "phase": "post", "seconds": 10})
        post = wait_block(d, "post", t)
        check(post["stored"] and post["samples"] == 10 * RATE, post)
        on, act, rms = expected(x, post["first_sample"], post["samples"])
        minutes = post["samples"] / RATE / 60.0
        got_on = post["bursts_per_min"][0] * minutes
        print("post: %d samples from %d: %g bursts (replay %d), %.2f %% active (replay %.2f %%),"
              " RMS %.2f uV" % (post["samples"], post["first_sample"], got_on, on,
                               post["active_pct"][0], act, post["rms_uv"][0]))
        check(abs(got_on - on) <= 1.0 + 1e-6 and on >= 3,
              "post: %g bursts, the replay %d" % (got_on, on))
        check(abs(post["active_pct"][0] - act) <= 2.5,
              "post: %g %% active, the replay %g %%" % (post["active_pct"][0], act))
        check(post["rms_uv"][0] > 2 * pre["rms_uv"][0], (pre, post))

        # the course database holds the same numbers, and the stretch of the recording
        for phase, ev in (("pre", pre), ("post", post)):
            rows = db_results(db, phase)
            vals = {name: v for _, _, name, v in rows}
            check(set(vals) == {"rms_uv", "bursts_per_min", "active_pct"}, rows)
            for name in vals:
                check(abs(vals[name] - ev[name][0]) <= 1e-4 * max(1.0, abs(vals[name])),
                      "%s %s: DB %r, event %r" % (phase, name, vals[name], ev[name][0]))
            check(abs(rows[0][1] - ev["samples"] / RATE) < 1e-9, rows)
        # armed after a block began: its pulses' blanks make it no rest measure, not stored
        t = time.monotonic()
        d.ok({"cmd": "assess", "kind": "rest", "phase": "post", "seconds": 3})
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: d.of("rpms.stim", since=t), cs.WAIT_S, "a pulse in the block")
        spoilt = wait_block(d, "post", t)
        check(not spoilt["stored"] and spoilt["code"] == -125, spoilt)
        check(len(db_results(db, "post")) == 3, "the spoilt block was stored")
        # armed: refused (an assessment measures EMG without stimulation)
        d.refused({"cmd": "assess", "kind": "rest", "phase": "pre"}, "armed")
        d.ok({"cmd": "disarm"})
        # no joint-angle input in this source: no stretch reflex to measure
        e = d.refused({"cmd": "assess", "kind": "stretch", "phase": "pre", "muscle": "emg0"},
                      "no_angle")
        check("source.angle_channel" in e["message"], e)
        stop = d.ok({"cmd": "session_stop"})
        check(stop["stopped"], stop)
    finally:
        d.stop()
    ann = json.loads(subprocess.run([cs.EDF_READ, edf], capture_output=True,
                                    text=True).stdout)["annotations"]
    for phase, ev in (("pre", pre), ("post", post)):
        a = [a for a in ann if a["text"] == "assessment %s rest" % phase]
        check(len(a) == 1, "EDF+ stretch of %s: %r" % (phase, [b["text"] for b in ann]))
        onset_s = a[0]["onset"] / 1e7     # edflib: units of 100 ns
        row = db_results(db, phase)[0]
        check(abs(onset_s - row[0]) < 1e-3 and abs(float(a[0]["duration"]) - row[1]) < 1e-3,
              "EDF+ %r, database onset %g duration %g" % (a[0], row[0], row[1]))


if __name__ == "__main__":
    rig.run_tests([test_assess_rest])
