#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""rpmsctl score: clinical scores entered straight into the course database
(SQLite, no daemon), and the course report showing them with the session's
outcome assessments.

  - Modified Ashworth (1+ included), Tardieu and Fugl-Meyer saved, read
    back, and shown by rpmsctl course (text with R2-R1, JSON);
  - a value out of range, anywhere on the command line, is refused with the
    argument named and nothing saved (exit 2);
  - an unknown session, another patient's session, or a course the patient
    has not is refused by the database (exit 1), nothing saved.

Sessions and assessments are made through the course_db API by course_db_drv
(test_course_report.py's helpers).
"""
import json
import os
import sqlite3
import subprocess

import test_course_report as cr
from rpmsd_rig import RPMSCTL, check, run_tests


def score(site, *args):
    return subprocess.run([RPMSCTL, "score"] + list(args) + ["--config", site.conf],
                          capture_output=True, text=True, timeout=120)


def count(site):
    with sqlite3.connect(site.db) as h:
        return h.execute("SELECT COUNT(*) FROM scores").fetchone()[0]


def course_with_session(site):
    ids = cr.drv(["sqlite", site.db], [
        "patient P01", "rx P01 C1 10 1 20 5000",
        "patient P02", "rx P02 C1 10 1 20 5000",
        "begin P01 C1 rig1 %d %s" % (cr.DAY0 + 10 * cr.HOUR, cr.day(0)),
        "begin P02 C1 rig2 %d %s" % (cr.DAY0 + 10 * cr.HOUR, cr.day(0)),
    ])
    return ids[4], ids[5]


def test_score_saved_and_reported():
    s = cr.Site()
    try:
        a, _ = course_with_session(s)
        cr.drv(["sqlite", s.db], ["assess %s pre rest %d 3 60 FCR/rms_uv=4.5,"
                                  "FCR/bursts_per_min=2,FCR/active_pct=7.25"
                                  % (a, cr.DAY0 + 10 * cr.HOUR + 70)])
        r = score(s, "P01", "--session", a, "--pre", "--mas", "elbow_flexors=1+",
                  "--mas", "wrist_flexors=2", "--tardieu", "FCR=95,150")
        check(r.returncode == 0, "%d %s" % (r.returncode, r.stderr))
        check(r.stdout.count(" saved: ") == 3, r.stdout)
        check("pre Modified Ashworth elbow_flexors 1+, patient P01, session %s, entered by %s"
              % (a, cr.ME) in r.stdout, r.stdout)
        check("Modified Tardieu FCR R1 95 R2 150 (R2-R1 55) degrees" in r.stdout, r.stdout)
        r = score(s, "P01", "--course", "C1", "--post", "--fugl-meyer", "40")
        check(r.returncode == 0 and "Fugl-Meyer UE 40/66, patient P01, course C1" in r.stdout,
              "%s %s" % (r.stdout, r.stderr))
        text = s.course("P01")
        check(text.returncode == 0, text.stderr)
        check("assessment pre rest: 60.0 s at 3.0 s of the recording: FCR active_pct 7.25, "
              "FCR bursts_per_min 2, FCR rms_uv 4.5" in text.stdout, text.stdout)
        check("Modified Ashworth elbow_flexors: 1+" in text.stdout, text.stdout)
        check("Modified Tardieu FCR: R1 95, R2 150, R2-R1 55 degrees" in text.stdout,
              text.stdout)
        check("course       post Fugl-Meyer UE: 40/66" in text.stdout, text.stdout)
        j = s.report("P01")
        sc = j["courses"][0]["scores"]
        check([x["instrument"] for x in sc] == ["modified_ashworth", "modified_ashworth",
                                                "modified_tardieu", "fugl_meyer_ue"], sc)
        check(sc[0]["mas_grade"] == "1+" and sc[0]["session"] == int(a), sc[0])
        check(sc[2]["r2_minus_r1_deg"] == 55 and sc[2]["entered_by"] == cr.ME, sc[2])
        check(sc[3]["session"] is None and sc[3]["fugl_meyer_ue"] == 40, sc[3])
        asm = j["courses"][0]["sessions"][0]["assessments"]
        check(len(asm) == 1 and asm[0]["kind"] == "rest" and asm[0]["phase"] == "pre" and
              asm[0]["edf_onset_s"] == 3 and asm[0]["edf_duration_s"] == 60, asm)
        check({(x["channel"], x["name"]): x["value"] for x in asm[0]["results"]} ==
              {("FCR", "rms_uv"): 4.5, ("FCR", "bursts_per_min"): 2,
               ("FCR", "active_pct"): 7.25}, asm)
    finally:
        s.close()


def test_score_out_of_range_saves_nothing():
    s = cr.Site()
    try:
        a, _ = course_with_session(s)
        cases = [
            (["--mas", "FCR=1", "--mas", "ECR=5"], "--mas ECR=5: Modified Ashworth grade '5' "
             "is not one of 0, 1, 1+, 2, 3, 4 (nothing saved)"),
            (["--mas", "FCR=1-"], "--mas FCR=1-: Modified Ashworth grade '1-'"),
            (["--fugl-meyer", "67"], "--fugl-meyer 67: Fugl-Meyer UE 67 is out of range "
             "(0..66)"),
            (["--fugl-meyer", "12.5"], "--fugl-meyer '12.5': not a whole number"),
            (["--tardieu", "FCR=95,190"], "--tardieu FCR=95,190: Modified Tardieu of FCR: "
             "R1 95 and R2 190 degrees must be within -180..180"),
            (["--tardieu", "FCR=95"], "--tardieu 'FCR=95': expected MUSCLE=R1,R2"),
            (["--mas", "=2"], "--mas '=2': expected MUSCLE=GRADE"),
            (["--mas", "elbow flexors=2"], "muscle id 'elbow flexors'"),
        ]
        for extra, want in cases:
            r = score(s, "P01", "--session", a, "--pre", *extra)
            check(r.returncode == 2, "%s: %d %s" % (extra, r.returncode, r.stderr))
            check(want in r.stderr, "%s: %s" % (extra, r.stderr))
        r = score(s, "P01", "--session", a, "--mas", "FCR=1")
        check(r.returncode == 2 and "needs --pre or --post" in r.stderr, r.stderr)
        r = score(s, "P01", "--session", a, "--pre", "--post", "--mas", "FCR=1")
        check(r.returncode == 2 and "--pre and --post" in r.stderr, r.stderr)
        r = score(s, "P01", "--pre", "--mas", "FCR=1")
        check(r.returncode == 2 and "needs --session ID" in r.stderr, r.stderr)
        check(count(s) == 0, "nothing saved")
    finally:
        s.close()


def test_score_refused_by_database():
    s = cr.Site()
    try:
        a, other = course_with_session(s)
        r = score(s, "P01", "--session", other, "--pre", "--mas", "FCR=1")
        check(r.returncode == 1 and "is not a session of patient P01" in r.stderr and
              "P02" not in r.stderr, r.stderr)
        r = score(s, "P01", "--session", str(int(other) + 40), "--pre", "--mas", "FCR=1")
        check(r.returncode == 1 and "unknown" in r.stderr, r.stderr)
        r = score(s, "P01", "--course", "C9", "--pre", "--fugl-meyer", "3")
        check(r.returncode == 1 and "patient P01 has no course C9" in r.stderr, r.stderr)
        r = score(s, "P01", "--session", a, "--course", "C9", "--pre", "--fugl-meyer", "3")
        check(r.returncode == 1 and "is of course C1, not C9" in r.stderr, r.stderr)
        check(count(s) == 0, "nothing saved")
        check(json.loads(s.course("P01", "--json").stdout)["courses"][0]["scores"] == [],
              "the report shows none")
    finally:
        s.close()


def test_score_opens_the_database_as_course_does():
    """score and course load the configuration and open the database alike
    (tools/rpmsctl_db.c): a --config they cannot read is named with the
    reason, a [course_db] refused names its key, exit 4 and nothing saved;
    their option errors name the command."""
    s = cr.Site()
    try:
        a, _ = course_with_session(s)
        bad = os.path.join(s.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("[course_db]\nbackend = oracle\n")
        for conf, want in ((os.path.join(s.dir, "missing.conf"),
                            "--config %s: No such file or directory"
                            % os.path.join(s.dir, "missing.conf")),
                           (bad, "bad.conf:2: course_db.backend")):
            for cmd, args in (("score", ["P01", "--session", a, "--pre", "--mas", "FCR=1"]),
                              ("course", ["P01"])):
                r = subprocess.run([RPMSCTL, cmd] + args + ["--config", conf],
                                   capture_output=True, text=True, timeout=120)
                check(r.returncode == 4 and ("rpmsctl %s: " % cmd) in r.stderr and
                      want in r.stderr, "%s %s: %d %s" % (cmd, conf, r.returncode, r.stderr))
        for cmd in ("score", "course"):
            for args, want in ((["-x", "P01"], "%s: unknown option '-x'"),
                               (["--bogus", "P01"], "%s: unknown or ambiguous option '--bogus'"),
                               (["P01", "--config"], "%s: option '--config' needs a value")):
                r = subprocess.run([RPMSCTL, cmd] + args, capture_output=True, text=True,
                                   timeout=120)
                check(r.returncode == 2 and want % cmd in r.stderr,
                      "%s %s: %d %s" % (cmd, args, r.returncode, r.stderr))
        check(count(s) == 0, "nothing saved")
    finally:
        s.close()


if __name__ == "__main__":
    run_tests([
        test_score_saved_and_reported,
        test_score_out_of_range_saves_nothing,
        test_score_refused_by_database,
        test_score_opens_the_database_as_course_does,
    ])
