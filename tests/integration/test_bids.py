#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rpms-bids export (docs/bids.md): a course run by the real rpmsd on SQLite
(two sessions, as test_course_session.py runs them), exported as a BIDS
dataset, and checked three ways, each covering what the others cannot:

- the real npm bids-validator 1.15.0 (installed into the build directory
  by npm when missing): no error but the NOT_INCLUDED of emg/ files, which
  it predates, and only of files named as BIDS-EMG names them; a broken
  dataset_description.json and misnamed files are caught;
- our own check of *_emg.json and *_channels.tsv against the specification's
  required and recommended fields (bids_emg_check.py), with negative cases;
- MNE reads every exported recording and its events.tsv back: the pulses,
  their onsets and the channels are the database's and the recording's.

Also: a recording whose SHA-256 is not the database's is refused naming the
file, and nothing is written; an unknown course and a non-empty DIR are
refused.
"""

import atexit
import csv
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import test_control as tc  # noqa: E402
import test_course_session as tcs  # noqa: E402
import bids_emg_check as bec  # noqa: E402

TOOL = os.path.join(rig.SOURCE, "tools", "rpms-bids")
TMP = tempfile.mkdtemp(prefix="rpmsd-bids-")
atexit.register(shutil.rmtree, TMP, True)
VALIDATOR_VERSION = "1.15.0"
PATIENT, COURSE, PULSES = "P-07", "C-07", 20
MT = 45.0


class Course:
    """The course of the real daemon: its configuration, database and sessions."""
    conf_path = None
    report = None


def course():
    """Two full sessions of one course (120 % of MT 45 = 54 % MSO) by the real
    rpmsd on SQLite; built once."""
    if Course.conf_path:
        return Course
    rx = tcs.rx_dir((PATIENT, COURSE, 3, PULSES, "motor_threshold_pct = 120"))
    state = rig.state_dir()
    conf = tcs.course_conf(rx, state)
    d = tc.Daemon(conf)
    try:
        for n in (1, 2):
            t = time.monotonic()
            r = tcs.start(d, PATIENT, "S%d" % n, COURSE, MT)
            check(r["ok"], "session_start refused: %r" % r)
            d.ok({"cmd": "arm"})
            tcs.wait_pulses(d, PULSES, t)
            d.wait_for(lambda: not d.ok({"cmd": "status"})["armed"], tcs.WAIT_S,
                       "the open loop disarming after its pulses")
            # a burst, onset and offset, inside the session's recording: the
            # export's burst rows are checked against it (the pulses alone can
            # take less time than the replay's gap between bursts)
            def whole_burst():
                edges = [m["edge"] for m in d.of("rpms.burst", since=t)]
                return "onset" in edges and "offset" in edges[edges.index("onset"):]
            d.wait_for(whole_burst, tcs.WAIT_S, "a whole burst in session S%d" % n)
            stop = d.ok({"cmd": "session_stop"})
            check(stop["pulses_session"] == PULSES, stop)
    finally:
        d.stop()
    Course.conf = conf
    Course.conf_path = d.path
    Course.db = os.path.join(state, "course.db")
    # stretch blocks as `assess stretch` stores them (the daemon's command is
    # not needed: written through the course_db API) in session 1: a fit
    # accepted before, one refused after
    (sid,) = [i for (i,) in tcs.sqlite_rows(Course.db, "SELECT id FROM sessions ORDER BY id "
                                                        "LIMIT 1")]
    r = subprocess.run([os.path.join(rig.BUILD, "tests", "integration", "course_db_drv"),
                        "sqlite", Course.db],
                       input="".join("assess %d %s stretch %d 1 20 %s\n" % (sid, ph, at, res)
                                     for ph, at, res in STRETCH_BLOCKS) + "quit\n",
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and r.stdout.split("\n")[:3] == ["ok open", "ok", "ok"],
          "course_db_drv: %r %s" % (r.stdout, r.stderr))
    r = subprocess.run([rig.RPMSCTL, "course", PATIENT, "--course", COURSE, "--json",
                        "--config", d.path], capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    Course.report = json.loads(r.stdout)["courses"][0]
    check(len(Course.report["sessions"]) == 2, Course.report)
    return Course


# (phase, at, results): 7 fitted stretches and an accepted fit; 3 and refused
STRETCH_BLOCKS = [
    ("pre", 1800000000, "FCR/stretches=8,FCR/n=7,FCR/no_onset=1,FCR/not_at_rest=0,"
     "FCR/tsrt_deg=74.5,FCR/slope_s=-0.1875,FCR/r2=0.93," +
     ",".join("FCR/s%d.velocity_dps=%g,FCR/s%d.dsrt_deg=%g" % (k, v, k, 74.5 - 0.1875 * v + e)
              for k, (v, e) in enumerate(zip((30, 60, 90, 120, 150, 180, 210),
                                             (0.5, -0.25, 0, 0.25, -0.5, 0, 0.125)), 1))),
    ("post", 1800000900, "FCR/stretches=5,FCR/n=3,FCR/no_onset=1,FCR/not_at_rest=1,"
     "FCR/s1.velocity_dps=40,FCR/s1.dsrt_deg=70.25,FCR/s2.velocity_dps=95,FCR/s2.dsrt_deg=61,"
     "FCR/s3.velocity_dps=160,FCR/s3.dsrt_deg=49.5"),
]


def export(dest, *extra, patient=True):
    args = [sys.executable, TOOL, "export", COURSE, dest, "--config", course().conf_path,
            "--rpmsctl", rig.RPMSCTL, "--rpmsd", rig.RPMSD]
    if patient:
        args += ["--patient", PATIENT]
    return subprocess.run(args + list(extra), capture_output=True, text=True)


_dataset = []


def dataset():
    """The exported dataset (once)."""
    if not _dataset:
        dest = os.path.join(TMP, "ds")
        r = export(dest)
        check(r.returncode == 0, "rpms-bids: %d %s" % (r.returncode, r.stderr))
        _dataset.append(dest)
    return _dataset[0]


def copy_dataset(name):
    dest = os.path.join(TMP, name)
    shutil.copytree(dataset(), dest)
    return dest


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def sessions_dirs(root):
    return sorted(glob.glob(os.path.join(root, "sub-*", "ses-*", "emg")))


# ---- the export itself -----------------------------------------------------------

def test_layout_and_numbers():
    """The files BIDS asks for, the stimulation described, the database's numbers."""
    c = course()
    root = dataset()
    desc = json.load(open(os.path.join(root, "dataset_description.json")))
    check(desc["BIDSVersion"] and desc["Name"], desc)
    parts = read_tsv(os.path.join(root, "participants.tsv"))
    check(parts == [{"participant_id": "sub-P07", "rpmsd_patient": PATIENT}], parts)
    ses = read_tsv(os.path.join(root, "sub-P07", "sub-P07_sessions.tsv"))
    check([s["session_id"] for s in ses] == ["ses-1", "ses-2"], ses)
    for s, db in zip(ses, c.report["sessions"]):
        check(int(s["pulses"]) == db["pulses"] == PULSES and
              s["rpmsd_session"] == str(db["id"]), s)
        check(float(s["intensity_pct_mso"]) == 54.0 and
              float(s["motor_threshold_pct_mso"]) == MT, s)
    emgdirs = sessions_dirs(root)
    check(len(emgdirs) == 2, emgdirs)
    for n, (d, db) in enumerate(zip(emgdirs, c.report["sessions"]), 1):
        stem = os.path.join(d, "sub-P07_ses-%d_task-rpms" % n)
        for suffix in ("_emg.edf", "_emg.json", "_channels.tsv", "_events.tsv",
                       "_events.json"):
            check(os.path.isfile(stem + suffix), "missing " + stem + suffix)
        scans = read_tsv(os.path.join(os.path.dirname(d), "sub-P07_ses-%d_scans.tsv" % n))
        check(scans[0]["filename"] == "emg/sub-P07_ses-%d_task-rpms_emg.edf" % n and
              scans[0]["sha256"] == db["edf_sha256"], scans)
        j = json.load(open(stem + "_emg.json"))
        st = j["Stimulation"]
        t = st["Timing"]
        # on_off 20 Hz, 250 ms on / 750 ms off, 20 pulses: 5 pulses a train, 4 trains;
        # NIBS-BIDS intervals are onset to onset: 0.25 s of train + 0.75 s pause
        check((t["InterPulseInterval"], t["PulsesInBurst"], t["InterBurstInterval"],
               t["BurstsInTrain"], t["InterTrainInterval"], t["TrainsInProtocol"],
               t["InterTrainPause"]) == (0.05, 5, None, 1, 1.0, 4, 0.75), t)
        check(st["Target"] == {"Kind": "motor_point", "Site": "wrist_extensors",
                               "Side": "left", "Position": "dorsal forearm"}, st)
        check(st["Coil"] == "figure-of-eight 70 mm" and st["Stimulator"]["Plugin"] == "sim", st)
        i = st["Intensity"]
        check(i["IntensityPercentMSO"] == 54.0 and i["MotorThresholdPercentMSO"] == MT and
              i["IntensityPercentMT"] == 120.0, i)
        check(st["PulsesDelivered"] == st["PulsesAnnotated"] == db["pulses"], st)
        check(j["PowerLineFrequency"] == 50 and j["SamplingFrequency"] == 1000, j)


def test_stretch_blocks_in_sidecar():
    """Session 1's stretch blocks in its _emg.json, every number the database's
    (read with sqlite3): counts, the accepted fit, a refused one null, each
    fitted stretch's velocity and DSRT; session 2 has none, and no key."""
    c = course()
    root = dataset()
    d1, d2 = sessions_dirs(root)
    j = json.load(open(glob.glob(os.path.join(d1, "*_emg.json"))[0]))
    got = j["StretchReflexThresholds"]
    blocks = {}
    for aid, phase, at, name, value in tcs.sqlite_rows(
            c.db, "SELECT a.id, a.phase, a.at, r.name, r.value FROM assessments a JOIN "
            "assessment_results r ON r.assessment = a.id WHERE a.kind = 'stretch' AND "
            "r.channel = 'FCR' ORDER BY a.at, a.id"):
        blocks.setdefault(aid, (phase, at, {}))[2][name] = value
    want = []
    for phase, at, v in blocks.values():
        n = int(v["n"])
        want.append({"Phase": phase, "Time": datetime.datetime.fromtimestamp(
            at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "Channel": "FCR",
            "Stretches": int(v["stretches"]), "Fitted": n, "NoOnset": int(v["no_onset"]),
            "NotAtRest": int(v["not_at_rest"]), "TSRT": v.get("tsrt_deg"),
            "Slope": v.get("slope_s"), "R2": v.get("r2"),
            "DSRT": [{"Velocity": v["s%d.velocity_dps" % k], "Angle": v["s%d.dsrt_deg" % k]}
                     for k in range(1, n + 1)]})
    check(got == want, "StretchReflexThresholds %r, the database %r" % (got, want))
    check([(b["Phase"], b["TSRT"], len(b["DSRT"])) for b in got] ==
          [("pre", 74.5, 7), ("post", None, 3)], got)
    check("refused" in j["StretchReflexThresholdsDescription"], j)
    j2 = json.load(open(glob.glob(os.path.join(d2, "*_emg.json"))[0]))
    check("StretchReflexThresholds" not in j2, j2.keys())


def test_hash_mismatch_refused():
    """A recording changed after the session (one byte) is refused, naming it,
    and nothing is written."""
    c = course()
    rec = tempfile.mkdtemp(prefix="rec-", dir=TMP)
    files = [s["edf_file"] for s in c.report["sessions"]]
    for f in files:
        shutil.copy(os.path.join(c.conf["record"]["directory"], f), rec)
    victim = os.path.join(rec, files[1])
    with open(victim, "r+b") as f:
        f.seek(os.path.getsize(victim) - 1)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 1]))
    dest = os.path.join(TMP, "bad-hash")
    r = export(dest, "--recordings", rec)
    check(r.returncode == 1 and victim in r.stderr and "SHA-256" in r.stderr,
          "a changed recording: exit %d %s" % (r.returncode, r.stderr))
    check(not os.path.exists(dest), "a refused export wrote %s" % dest)
    check(not glob.glob(os.path.join(TMP, ".rpms-bids-*")), "a refused export left files")
    os.unlink(victim)
    r = export(dest, "--recordings", rec)
    check(r.returncode == 1 and victim in r.stderr and "missing" in r.stderr,
          "a missing recording: exit %d %s" % (r.returncode, r.stderr))
    check(not os.path.exists(dest), "a refused export wrote %s" % dest)


def test_refusals():
    """An unknown course, a non-empty DIR; the patient found from the course."""
    root = dataset()
    before = sorted(os.listdir(root))
    r = export(root)
    check(r.returncode == 1 and "not an empty directory" in r.stderr, r.stderr)
    check(sorted(os.listdir(root)) == before, "a refused export changed %s" % root)
    r = subprocess.run([sys.executable, TOOL, "export", "C-404", os.path.join(TMP, "x"),
                        "--config", course().conf_path, "--rpmsctl", rig.RPMSCTL,
                        "--rpmsd", rig.RPMSD], capture_output=True, text=True)
    check(r.returncode == 1 and "C-404" in r.stderr, r.stderr)
    # without --patient: the course's prescription names it
    dest = os.path.join(TMP, "by-course")
    r = export(dest, patient=False)
    check(r.returncode == 0 and os.path.isdir(os.path.join(dest, "sub-P07")), r.stderr)


def test_blinded_session_exports_its_code_only():
    """A blinded course (docs/sham.md): the export holds its arm code, and
    neither the arm nor anything else that names it, in any file."""
    tmp = tempfile.mkdtemp(prefix="blind-", dir=TMP)
    d = tcs.blinded_course(tmp, PULSES)
    dest = os.path.join(TMP, "blinded")
    r = subprocess.run([sys.executable, TOOL, "export", "C-B1", dest, "--config", d.path,
                        "--rpmsctl", rig.RPMSCTL, "--rpmsd", rig.RPMSD],
                       capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    ses = read_tsv(os.path.join(dest, "sub-PB1", "sub-PB1_sessions.tsv"))
    check([s["arm_code"] for s in ses] == ["Q5"], ses)
    j = json.load(open(glob.glob(os.path.join(sessions_dirs(dest)[0], "*_emg.json"))[0]))
    check(j["Stimulation"]["Stimulator"]["ArmCode"] == "Q5" and
          j["Stimulation"]["Stimulator"]["Blinded"] is True, j["Stimulation"])
    for path in glob.glob(os.path.join(dest, "**", "*"), recursive=True):
        if os.path.isfile(path):
            data = open(path, "rb").read().lower()
            for word in (b"sham", b"active", b"arm: ", b"allocation"):
                check(word not in data, "%s names %r" % (path, word))


# ---- (a) the real bids-validator ---------------------------------------------------

def validator():
    """npm bids-validator 1.15.0, installed by npm if missing into
    RPMSD_BIDS_VALIDATOR_DIR (test.sh: build/'s, for every build) or this build
    directory; RPMSD_BIDS_VALIDATOR names an installed one instead."""
    exe = os.environ.get("RPMSD_BIDS_VALIDATOR")
    if exe:
        return exe
    prefix = os.environ.get("RPMSD_BIDS_VALIDATOR_DIR") or \
        os.path.join(rig.BUILD, "bids-validator-" + VALIDATOR_VERSION)
    exe = os.path.join(prefix, "node_modules", ".bin", "bids-validator")
    if not os.path.exists(exe):
        npm = shutil.which("npm")
        check(npm, "npm is missing: scripts/deps.sh test installs nodejs and npm")
        r = subprocess.run([npm, "install", "--prefix", prefix, "--no-audit", "--no-fund",
                            "--loglevel=error", "bids-validator@" + VALIDATOR_VERSION],
                           capture_output=True, text=True)
        check(r.returncode == 0 and os.path.exists(exe),
              "npm install bids-validator@%s: %s" % (VALIDATOR_VERSION, r.stderr[-2000:]))
    return exe


# What BIDS-EMG names an emg/ file (the specification's filename template for
# the emg datatype: sub, ses, task, acq, run entities; suffixes emg, channels,
# events; the data as .edf or .bdf): only such files may be NOT_INCLUDED.
EMG_NAME = re.compile(
    r"^/sub-(?P<sub>[A-Za-z0-9]+)/(?:ses-(?P<ses>[A-Za-z0-9]+)/)?emg/"
    r"sub-(?P=sub)(?:_ses-(?P=ses))?_task-[A-Za-z0-9]+(?:_acq-[A-Za-z0-9]+)?"
    r"(?:_run-[0-9]+)?_(?:emg\.(?:edf|bdf|json)|channels\.(?:tsv|json)|events\.(?:tsv|json))$")
NOT_INCLUDED = 1    # bids-validator 1.x's issue code for a file BIDS does not include


def validate(root):
    """bids-validator --json on @root: (errors we do not accept, everything)."""
    r = subprocess.run([validator(), "--json", "--ignoreNiftiHeaders", root],
                       capture_output=True, text=True)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise AssertionError("bids-validator: %d, no JSON: %s %s"
                             % (r.returncode, r.stdout[:500], r.stderr[:1000]))
    bad = []
    for e in out["issues"]["errors"]:
        files = [f.get("file", {}).get("relativePath") for f in e.get("files") or []]
        if e["code"] == NOT_INCLUDED:
            rest = [p for p in files if not (p and EMG_NAME.match(p))]
            if rest:
                bad.append((e["key"], rest))
            continue
        bad.append((e["key"], files))
    return bad, out


def test_validator_accepts_export():
    """No error from bids-validator but NOT_INCLUDED of the emg/ files, each
    named as BIDS-EMG names it; the validator did see the dataset (participants,
    sessions, scans)."""
    root = dataset()
    bad, out = validate(root)
    check(not bad, "bids-validator errors: %r" % bad)
    emg_files = sorted("/" + os.path.relpath(p, root) for d in sessions_dirs(root)
                       for p in glob.glob(os.path.join(d, "*")))
    flagged = sorted(f["file"]["relativePath"] for e in out["issues"]["errors"]
                     if e["code"] == NOT_INCLUDED for f in e["files"])
    # 1.15.0 takes *_events.tsv/.json anywhere; the EMG data, sidecars and channels
    # it does not know
    check(set(flagged) <= set(emg_files) and
          [f for f in emg_files if re.search(r"_(emg\.edf|emg\.json|channels\.tsv)$", f)]
          == flagged, "NOT_INCLUDED %r, the emg files %r" % (flagged, emg_files))
    s = out["summary"]
    check(s["subjects"] == ["P07"] and sorted(s["sessions"]) == ["1", "2"], s)


def test_validator_exclusion_is_narrow():
    """A broken dataset_description.json, a misnamed emg file and a misnamed
    sessions file are each an error the exclusion does not hide."""
    root = copy_dataset("broken-description")
    p = os.path.join(root, "dataset_description.json")
    desc = json.load(open(p))
    del desc["BIDSVersion"]
    json.dump(desc, open(p, "w"))
    bad, _ = validate(root)
    check(bad and all(k != "NOT_INCLUDED" for k, _ in bad), "not caught: %r" % bad)

    root = copy_dataset("misnamed-emg")
    d = sessions_dirs(root)[0]
    src = glob.glob(os.path.join(d, "*_events.tsv"))[0]
    os.rename(src, src.replace("_events.tsv", "_evnts.tsv"))
    bad, _ = validate(root)
    check([k for k, files in bad if k == "NOT_INCLUDED" and
           any(f.endswith("_evnts.tsv") for f in files)], "misnamed emg file not caught: %r"
          % bad)

    root = copy_dataset("misnamed-sessions")
    p = os.path.join(root, "sub-P07", "sub-P07_sessions.tsv")
    os.rename(p, p.replace("_sessions.tsv", "_sesions.tsv"))
    bad, _ = validate(root)
    check(bad, "misnamed sessions.tsv not caught")


# ---- (b) our check of the EMG sidecars ---------------------------------------------

def test_emg_sidecars_against_spec():
    """Every exported _emg.json and _channels.tsv against the specification's
    required and recommended fields; and the checker catches what it must."""
    root = dataset()
    for d in sessions_dirs(root):
        j = json.load(open(glob.glob(os.path.join(d, "*_emg.json"))[0]))
        probs = bec.check_emg_json(j)
        check(not probs, "%s: %r" % (d, probs))
        edf = glob.glob(os.path.join(d, "*_emg.edf"))[0]
        names = mne_raw(edf).ch_names
        text = open(glob.glob(os.path.join(d, "*_channels.tsv"))[0]).read()
        probs = bec.check_channels_tsv(text, names, j["SamplingFrequency"])
        check(not probs, "%s: %r" % (d, probs))
        check(j["EMGChannelCount"] == len(names), j)
    # negative cases: each is reported, naming the field or column
    for mutate, needle in (
            (lambda o: o.pop("EMGReference"), "EMGReference: required"),
            (lambda o: o.pop("TaskName"), "TaskName: required"),
            (lambda o: o.update(SamplingFrequency="1000"), "SamplingFrequency"),
            (lambda o: o.update(RecordingType="streamed"), "RecordingType"),
            (lambda o: o.update(SoftwareFilters="none"), "SoftwareFilters"),
            (lambda o: o.pop("EMGGround"), "EMGGround: recommended")):
        o = dict(j)
        mutate(o)
        probs = bec.check_emg_json(o)
        check(any(needle in p for p in probs), "%s not caught: %r" % (needle, probs))
    bad_tsv = ("name\tunits\ttype\n", "columns"), \
        (text.replace("\tEMG\t", "\temg\t", 1), "type 'emg'"), \
        (text.replace("\tuV\t", "\t\t", 1), "units: required"), \
        (text + "extra\tEMG\n", "cells"), \
        (text.replace("name\t", "nom\t", 1), "columns")
    for t, needle in bad_tsv:
        probs = bec.check_channels_tsv(t)
        check(any(needle in p for p in probs), "%s not caught: %r" % (needle, probs))
    probs = bec.check_channels_tsv(text, list(reversed(names)) + ["X"])
    check(any("in order" in p for p in probs), probs)


# ---- (c) MNE reads it back ----------------------------------------------------------

def mne_raw(path):
    import mne
    mne.set_log_level("ERROR")
    return mne.io.read_raw_edf(path, preload=False)


def test_mne_reads_back():
    """MNE reads every exported recording and events.tsv: the pulses are the
    database's count and, onset for onset, the recording's annotations; every
    event lies inside the recording; the channels are channels.tsv's."""
    import mne
    c = course()
    root = dataset()
    for d, db in zip(sessions_dirs(root), c.report["sessions"]):
        edf = glob.glob(os.path.join(d, "*_emg.edf"))[0]
        raw = mne_raw(edf)
        ann = raw.annotations
        rec_pulses = sorted(round(o, 4) for o, t in zip(ann.onset, ann.description)
                            if t.startswith("pulse "))
        check(len(rec_pulses) == db["pulses"] == PULSES, "%d pulses in %s, %d in the DB"
              % (len(rec_pulses), edf, db["pulses"]))
        ev = read_tsv(glob.glob(os.path.join(d, "*_events.tsv"))[0])
        pulses = sorted(round(float(e["onset"]), 4) for e in ev if e["trial_type"] == "pulse")
        check(pulses == rec_pulses, "events.tsv pulses %r, the recording's %r"
              % (pulses[:5], rec_pulses[:5]))
        check(all(e["value"] == "54" for e in ev if e["trial_type"] == "pulse"), ev[:3])
        # bursts: an onset and its offset in the recording make one row with a duration
        onsets = [o for o, t in zip(ann.onset, ann.description) if t.startswith("onset ")]
        bursts = [e for e in ev if e["trial_type"] == "burst"]
        check(len(bursts) == len(onsets) and bursts, "%d bursts, %d onsets"
              % (len(bursts), len(onsets)))
        check(all(e["duration"] == "n/a" or float(e["duration"]) > 0 for e in bursts), bursts)
        # every row, as MNE annotations on the recording: none outside it
        onset = [float(e["onset"]) for e in ev]
        dur = [0.0 if e["duration"] == "n/a" else float(e["duration"]) for e in ev]
        a = mne.Annotations(onset, dur, [e["trial_type"] for e in ev],
                            orig_time=raw.annotations.orig_time)
        raw.set_annotations(a)
        check(len(raw.annotations) == len(ev), "MNE dropped %d events outside the recording"
              % (len(ev) - len(raw.annotations)))
        ch = read_tsv(glob.glob(os.path.join(d, "*_channels.tsv"))[0])
        check([r["name"] for r in ch] == raw.ch_names and
              all(float(r["sampling_frequency"]) == raw.info["sfreq"] for r in ch), ch)


def test_assessment_and_threshold_rows():
    """The daemon's own annotations of an assessment block (one annotation with
    its duration) and of the motor threshold procedure (a probe per pulse, the
    result) become events.tsv rows of their own kind, not "annotation"."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("rpms_bids", TOOL)
    spec = importlib.util.spec_from_loader("rpms_bids", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    rows = mod.events_of([(1.0, 60.0, "assessment post rest"),
                          (1.5, 20.0, "assessment pre stretch"),
                          (2.0, None, "threshold probe 3 44.5% 61.2 uV response"),
                          (5.0, None, "threshold probe 4 43.5% nan uV"),
                          (9.0, None, "motor threshold 44% (22 pulses)")])
    got = [(r[0], r[1], r[2], r[4]) for r in rows]
    check(got == [(1.0, 60.0, "assessment", "post rest"),
                  (1.5, 20.0, "assessment", "pre stretch"), (2.0, 0.0, "threshold_probe", 44.5),
                  (5.0, 0.0, "threshold_probe", 43.5), (9.0, 0.0, "motor_threshold", "n/a")],
          "events.tsv rows %r" % got)
    print("ok   assessment blocks and threshold probes are rows of their own kind")


if __name__ == "__main__":
    rig.run_tests([
        test_assessment_and_threshold_rows,
        test_layout_and_numbers,
        test_stretch_blocks_in_sidecar,
        test_hash_mismatch_refused,
        test_refusals,
        test_blinded_session_exports_its_code_only,
        test_emg_sidecars_against_spec,
        test_mne_reads_back,
        test_validator_accepts_export,
        test_validator_exclusion_is_narrow,
    ])
