#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Co-contraction of the real rpmsd (docs/outcomes.md): "assess mvc" and
"assess cci" over a two-channel replay with known co-contraction, in a
course session on SQLite.

The replay (CSV, 1 kHz, real time, channels FCR and ECR, white noise of a
known amplitude per stretch):

  0-15 s   rest, 10 uV on both (calibration, session start, refusals)
  15-27 s  the maximal contraction: FCR 500 uV, ECR 400 uV
  27-60 s  the task: FCR 200 uV throughout; ECR 50 uV and 250 uV in turn,
           0.5 s each (so the windows' co-contraction changes)

An "mvc" block of 3 s in the contraction, then a "cci" block of 5 s in the
task (rpmsctl). The test computes the same index from the replay file
itself: per 200 ms window of the blocks' own samples (first_sample from the
events), the RMS per channel; each channel's MVC is its largest window in
the mvc block; CCI = 2 * sum(min(a, b)) / sum(a + b) * 100 with a and b the
windows' RMS over the MVC (Falconer & Winter). The daemon's windows are of
the band-passed EMG: the band's gain is the same on both channels' white
noise and on their MVC, so it cancels. Required within 3 percentage points,
and the MVC references within 10 % of the replay's x 0.93 (the 20-450 Hz
band's share of white noise at 1 kHz).

Refusals: cci before an mvc block in this session (no_mvc), an unknown
channel and the same channel twice (invalid_value), rpmsctl without
--antagonist (usage, exit 2); an mvc block the coil was armed during
(its pulses' blanks in it) published with stored false (-ECANCELED), not
in the database. The numbers in the course database, the
blocks as stretches of the EDF+.
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
SECONDS = 60
MVC_AT, TASK_AT = 15, 27
WIN = 200           # 0.2 s at 1 kHz
BAND = 0.93         # 20-450 Hz share of white noise's amplitude at 1 kHz
TOL_PCT = 3.0


def amplitude(i):
    t = i / RATE
    if t < MVC_AT:
        return 10.0, 10.0
    if t < TASK_AT:
        return 500.0, 400.0
    return 200.0, (50.0 if int((t - TASK_AT) / 0.5) % 2 == 0 else 250.0)


def replay():
    rng = random.Random(21)
    a, b = [], []
    for i in range(SECONDS * RATE):
        sa, sb = amplitude(i)
        a.append(rng.gauss(0.0, sa))
        b.append(rng.gauss(0.0, sb))
    path = os.path.join(cs.TMP, "assess_cci.csv")
    with open(path, "w") as f:
        f.write("FCR,ECR\n")
        f.writelines("%.3f,%.3f\n" % v for v in zip(a, b))
    return path, a, b


def windows(x, first, n):
    return [(sum(v * v for v in x[k:k + WIN]) / WIN) ** 0.5
            for k in range(first, first + n - WIN + 1, WIN)]


def expected_cci(a, b, mvc_ev, cci_ev):
    ma = max(windows(a, mvc_ev["first_sample"], mvc_ev["samples"]))
    mb = max(windows(b, mvc_ev["first_sample"], mvc_ev["samples"]))
    wa = windows(a, cci_ev["first_sample"], cci_ev["samples"])
    wb = windows(b, cci_ev["first_sample"], cci_ev["samples"])
    common = sum(min(x / ma, y / mb) for x, y in zip(wa, wb))
    total = sum(x / ma + y / mb for x, y in zip(wa, wb))
    return 200.0 * common / total, ma, mb, len(wa)


def db_rows(db, kind):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute("SELECT a.onset, a.duration, r.channel, r.name, r.value "
                           "FROM assessments a JOIN assessment_results r "
                           "ON r.assessment = a.id WHERE a.kind = ?", (kind,)).fetchall()
    finally:
        con.close()


def rpmsctl(d, *args):
    return subprocess.run([rig.RPMSCTL] + list(args) + ["--endpoint", d.control,
                                                        "--timeout", "15"],
                          capture_output=True, text=True, timeout=60)


def wait_block(d, kind, since):
    ev = d.wait_for(lambda: [e for e in d.of("rpms.state", since=since, state="assessment")
                             if e["kind"] == kind], cs.WAIT_S + 30,
                    "the %s assessment on rpms.state" % kind)
    return ev[0]


def wait_replay(d, second):
    d.wait_for(lambda: d.ok({"cmd": "status"})["acquisition"]["samples"] > second * RATE,
               cs.WAIT_S + SECONDS, "the replay past %g s" % second)


def test_assess_cci():
    path, a, b = replay()
    rx = cs.rx_dir(("PC1", "CC1", 3, 200, cs.OUT30))
    state = rig.state_dir()
    conf = cs.course_conf(rx, state)
    conf["source"].update({"file": path, "format": "csv", "column": "FCR,ECR"})
    db = os.path.join(state, "course.db")
    d = cs.tc.Daemon(conf)
    try:
        r = cs.start(d, "PC1", "S1", "CC1")
        check(r["ok"], r)
        edf = r["result"]["recording"]["file"]
        d.wait_for(lambda: d.ok({"cmd": "status"})["acquisition"]["calibrated"] == 2,
                   cs.WAIT_S, "both channels calibrated")
        cci_req = {"cmd": "assess", "kind": "cci", "phase": "pre", "seconds": 5,
                   "agonist": "FCR", "antagonist": "ECR"}
        # no mvc block in this session yet: refused, naming it
        e = d.refused(cci_req, "no_mvc")
        check("assess mvc" in e["message"], e)
        e = d.refused(dict(cci_req, antagonist="BIC"), "invalid_value")
        check("BIC" in e["message"] and "FCR" in e["message"], e)
        d.refused(dict(cci_req, antagonist="FCR"), "invalid_value")
        p = rpmsctl(d, "assess", "cci", "--pre", "--agonist", "FCR")
        check(p.returncode == 2 and "--antagonist" in p.stderr, (p.returncode, p.stderr))

        wait_replay(d, MVC_AT + 0.5)
        t = time.monotonic()
        p = rpmsctl(d, "assess", "mvc", "--pre", "--seconds", "3")
        check(p.returncode == 0 and "pre mvc over the next 3 s" in p.stdout,
              "%d %s %s" % (p.returncode, p.stdout, p.stderr))
        mvc = wait_block(d, "mvc", t)
        check(mvc["stored"] and mvc["windows"] == 15 and mvc["samples"] == 15 * WIN, mvc)
        check(mvc["first_sample"] >= MVC_AT * RATE and
              mvc["first_sample"] + mvc["samples"] <= TASK_AT * RATE,
              "the mvc block must lie in the contraction: %r" % mvc)

        wait_replay(d, TASK_AT + 0.5)
        t = time.monotonic()
        p = rpmsctl(d, "assess", "cci", "--pre", "--agonist", "FCR", "--antagonist", "ECR",
                    "--seconds", "5")
        check(p.returncode == 0 and "falconer_winter" in p.stdout,
              "%d %s %s" % (p.returncode, p.stdout, p.stderr))
        cci = wait_block(d, "cci", t)
        check(cci["stored"] and cci["windows"] == 25 and cci["formula"] == "falconer_winter" and
              cci["agonist"] == 0 and cci["antagonist"] == 1, cci)
        check(cci["first_sample"] >= TASK_AT * RATE, cci)
        want, ma, mb, nw = expected_cci(a, b, mvc, cci)
        print("mvc: FCR %.1f uV (replay %.1f x %.2f), ECR %.1f uV (replay %.1f x %.2f)"
              % (mvc["rms_uv"][0], ma, BAND, mvc["rms_uv"][1], mb, BAND))
        print("cci: %.2f %% over %d windows from sample %d (replay %.2f %%, %d windows)"
              % (cci["cci_pct"], cci["windows"], cci["first_sample"], want, nw))
        check(nw == cci["windows"], (nw, cci))
        for got, ref in ((mvc["rms_uv"][0], ma), (mvc["rms_uv"][1], mb)):
            check(abs(got - ref * BAND) < 0.10 * ref * BAND, "MVC %g uV, replay %g" % (got, ref))
        check(abs(cci["cci_pct"] - want) <= TOL_PCT,
              "CCI %g %%, the replay's %g %%" % (cci["cci_pct"], want))
        # armed after a block began: its pulses' blanks spoil it, not stored
        t = time.monotonic()
        d.ok({"cmd": "assess", "kind": "mvc", "phase": "post", "seconds": 3})
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: d.of("rpms.stim", since=t), cs.WAIT_S, "a pulse in the block")
        spoilt = wait_block(d, "mvc", t)
        check(not spoilt["stored"] and spoilt["code"] == -125 and spoilt["phase"] == "post",
              spoilt)
        d.ok({"cmd": "disarm"})
        stop = d.ok({"cmd": "session_stop"})
        check(stop["stopped"], stop)
    finally:
        d.stop()
    rows = db_rows(db, "cci")
    vals = {(ch, name): v for _, _, ch, name, v in rows}
    check(abs(vals[("FCR+ECR", "cci_pct")] - cci["cci_pct"]) < 1e-3 and
          vals[("FCR+ECR", "windows")] == 25, rows)
    check(abs(vals[("FCR", "mvc_rms_uv")] - mvc["rms_uv"][0]) < 1e-2, rows)
    mrows = db_rows(db, "mvc")
    # the spoilt post block is not among them
    check(sorted((ch, name) for _, _, ch, name, _ in mrows) ==
          [("ECR", "mvc_rms_uv"), ("FCR", "mvc_rms_uv")], mrows)
    ann = json.loads(subprocess.run([cs.EDF_READ, edf], capture_output=True,
                                    text=True).stdout)["annotations"]
    for kind, rws in (("mvc", mrows), ("cci", rows)):
        got = [x for x in ann if x["text"] == "assessment pre %s" % kind]
        check(len(got) == 1, "EDF+ stretch of %s: %r" % (kind, [x["text"] for x in ann]))
        check(abs(got[0]["onset"] / 1e7 - rws[0][0]) < 1e-3 and
              abs(float(got[0]["duration"]) - rws[0][1]) < 1e-3, (got, rws[0]))


if __name__ == "__main__":
    rig.run_tests([test_assess_cci])
