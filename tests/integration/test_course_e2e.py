#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A blinded, sham-controlled course end to end (issue 20), with the real
binaries only: rpmsd twice (rig A and rig B: own state directories, control
sockets, event streams, coils), rpmsctl, one course database shared by the
rigs, real ZeroMQ subscribers, the sim coil's pulse logs and the EDF+ files.

  1. the statistician's key pair (rpmsctl keygen) and allocation file: the
     active patient's course C-0041-1 is active (code K7), the sham
     patient's C-0042-1 sham (code Q2); a prescription a course in
     course.prescriptions; rpmsd --check-prescription on each with the
     rigs' configuration, rpmsd --check-config on each rig's;
  2. rig A treats the active patient: rpmsctl session start --course, arm,
     the prescribed pulses, session stop; rpmsctl status shows the course
     session (never the arm);
  3. rig B is refused the active patient (sessions_per_day = 1 across the
     rigs), with the reason, and nothing changes on rig B;
  4. rig B treats the sham patient the same way;
  5. the two sessions compared: on the stream (every message from the
     start to the stop, equal but for the named fields below) and in the
     EDF+ (header and annotations equal but for ids, times and the arm
     code); the sham session never fired rig B's active coil, the active
     session never rig A's sham coil (the sim coils' pulse_log);
  6. rpmsctl course (text and --json) says what happened: one session each,
     its pulses, its rig, no deviation, the arm code and never the arm;
  7. rpmsctl unblind with the statistician's key opens both rigs' audits:
     the true arms (and rig B's refused attempt, sealed before the database
     refused it: docs/sham.md).

--backend sqlite (the default): the rigs share one SQLite file. --backend
postgresql: one real PostgreSQL server (test_course_db.py's harness, which
needs root: skipped, exit 77, otherwise). Meson runs both as two tests, so
a skipped PostgreSQL run never passes for the SQLite one or hides it.

The README's "A course, end to end" shows the commands this test runs.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import test_control as tc  # noqa: E402  (its Daemon: a real rpmsd, a subscriber, a REQ client)
import test_sham as sham  # noqa: E402  (its EDF+ parser, TAL shift and pulse_log reader)

TMP = tempfile.mkdtemp(prefix="rpmsd-e2e-")
WAIT_S = 90         # sanitizer builds on a loaded machine are slow; conditions are waited for
RATE = 1000
PULSES = 9
ACTIVE = ("P-0041", "C-0041-1", "K7")       # patient, course, arm code
SHAM = ("P-0042", "C-0042-1", "Q2")

# One course: trains of 3 pulses at 20 Hz, 150 ms apart, PULSES a session at
# 30 % of maximum output, one session a day.
RX = """# {patient}'s course
[patient]
id = {patient}
[course]
id = {course}
sessions = 10
sessions_per_day = 1
min_hours_between = 0
[target]
kind = nerve_trunk
site = radial
side = left
coil = figure-of-eight
position = spiral groove
[protocol]
pattern = on_off
rate_hz = 20
on_ms = 150
off_ms = 150
pulses = {pulses}
[intensity]
max_output_pct = 30
"""


RAN = []     # every command this test ran, for the README's (readme_commands)


def run(*argv, ok=True):
    RAN.append(list(argv))
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if ok:
        check(p.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(argv), p.returncode,
                                                       p.stdout, p.stderr))
    return p


def rpmsctl(*argv, ok=True):
    return run(rig.RPMSCTL, *argv, ok=ok)


class Trial:
    """What the statistician and the clinic prepare: keys, allocation,
    prescriptions, a flat replay (no bursts: the open loop alone decides)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="trial-", dir=TMP)
        self.secret = os.path.join(self.dir, "stat.secret")
        self.public = os.path.join(self.dir, "stat.public")
        with open(self.public, "w") as f:
            f.write(rpmsctl("keygen", self.secret).stdout)
        self.alloc = os.path.join(self.dir, "allocation")
        with open(self.alloc, "w") as f:
            f.write("# trial T1, prepared by the statistician\n"
                    "%s active %s\n%s sham %s\n" % (ACTIVE[1], ACTIVE[2], SHAM[1], SHAM[2]))
        os.chmod(self.alloc, 0o600)
        self.rx = os.path.join(self.dir, "rx")
        os.mkdir(self.rx)
        for patient, course, _ in (ACTIVE, SHAM):
            with open(os.path.join(self.rx, course + ".rx"), "w") as f:
                f.write(RX.format(patient=patient, course=course, pulses=PULSES))
        self.emg = os.path.join(self.dir, "emg.txt")
        with open(self.emg, "w") as f:
            f.write("# a block-periodic signal\n")
            f.writelines("%d\n" % sham.PATTERN[i % len(sham.PATTERN)]
                         for i in range(900 * RATE))

    def rx_file(self, who):
        return os.path.join(self.rx, who[1] + ".rx")


def rig_conf(trial, name, course_db):
    """One rig: its own state, control socket, event stream, recordings and
    coils (active and sham, each with a pulse log); the trial's allocation,
    key and prescriptions; the shared course database."""
    state = rig.state_dir()
    conf = {
        "daemon": {"state_dir": state},
        "source": {"file": trial.emg, "format": "text", "rate_hz": str(RATE),
                   "block_frames": "8", "realtime": "true"},
        "detect": {"calibration_s": "1"},
        "stim": {"plugin": "sim", "mode": "open_loop", "protocol": "train",
                 "train_pulses": "3", "train_frequency_hz": "20", "intensity_pct": "30",
                 "off_ms": "150", "open_loop_pulses": str(PULSES)},
        "safety": {"max_train_pulses": "10", "motor_threshold_pct": "40",
                   "min_train_interval_ms": "100", "max_frequency_hz": "25"},
        "publish": {"endpoint": "tcp://127.0.0.1:%d" % rig.free_port(), "heartbeat_s": "0.25"},
        "control": {"endpoint": "ipc://%s/%s" % (tempfile.mkdtemp(prefix="ctl-", dir=TMP),
                                                 name)},
        "record": {"directory": tempfile.mkdtemp(prefix="rec-%s-" % name, dir=TMP),
                   "name": "rpmsd_{patient}_{session}"},
        "coil.sim": {"pulse_log": os.path.join(state, "active.csv")},
        "sham_coil.sim": {"pulse_log": os.path.join(state, "sham.csv")},
        "blind": {"allocation": trial.alloc, "statistician_public_key": trial.public,
                  "audit": os.path.join(state, "blind-audit")},
        "course": {"prescriptions": trial.rx, "rig": name},
        "course_db": dict(course_db, **({"journal": os.path.join(state, "journal.db")}
                                        if course_db.get("backend") == "postgresql" else {})),
    }
    return conf


def write_conf(trial, conf, name):
    """The rig's configuration as DIR/@name.conf (the README's rigA.conf)."""
    path = os.path.join(trial.dir, name + ".conf")
    with open(path, "w") as f:
        f.write(tc.render(conf))
    return path


def daemon(conf, path):
    """test_control's Daemon on @path itself: rpmsd --config PATH --wait-subscriber=30."""
    RAN.append([rig.RPMSD, "--config", path, "--wait-subscriber=30"])
    own = tc.write_conf
    tc.write_conf = lambda c: path      # the Daemon writes its config; this one is written
    try:
        return tc.Daemon(conf)
    finally:
        tc.write_conf = own


def readme_commands():
    """The README's "A course, end to end" commands, each one this test ran:
    the same words, paths and endpoints by their last component (the test's
    are temporary), a command's trailing options of the test's own
    (--wait-subscriber, --json) allowed."""
    with open(os.path.join(rig.SOURCE, "README.md")) as f:
        text = f.read()
    part = re.split(r"\n##+ ", text.split("### A course, end to end", 1)[1], 1)[0]
    cmds = [ln.strip() for ln in part.splitlines()
            if ln.startswith("    rpms") and not ln.strip().startswith("rpms-")]
    check(len(cmds) >= 10, "README commands %r" % cmds)

    def words(argv):
        return [w.rstrip("/").rsplit("/", 1)[-1] for w in argv]

    ran = [words(argv) for argv in RAN]
    for c in cmds:
        want = words(c.split(">", 1)[0].split())
        check(any(r[:len(want)] == want for r in ran),
              "README command not run by the test: %s\n(ran: %r)" % (c, ran))
    return len(cmds)


def session(d, who, session_id, t_since):
    """One course session through rpmsctl, as at the rig: start by course,
    status, arm, the prescribed pulses, stop. The start's and status's output."""
    ep = d.control
    started = rpmsctl("-e", ep, "session", "start", "--patient", who[0], "--session",
                      session_id, "--course", who[1]).stdout
    status = json.loads(rpmsctl("-e", ep, "status", "--json").stdout)["result"]
    status_text = rpmsctl("-e", ep, "status").stdout
    rpmsctl("-e", ep, "arm")
    d.wait_for(lambda: len(d.of("rpms.stim", since=t_since)) >= PULSES, WAIT_S,
               "%d pulses" % PULSES)
    d.wait_for(lambda: not d.ok({"cmd": "status"})["armed"], WAIT_S,
               "the open loop disarming after its pulses")
    stopped = rpmsctl("-e", ep, "session", "stop").stdout
    d.wait_for(lambda: d.of("rpms.state", since=t_since, state="session_stopped"), WAIT_S,
               "session_stopped on the stream")
    return started, status, status_text, stopped


# ---- the two sessions compared -------------------------------------------------

# What differs between the active patient's session on rig A and the sham
# patient's on rig B, and why (everything else must be equal):
#  - the clocks: t_wall, t_wall_ns, t_mono_ns (the wall and monotonic clocks
#    of each rig), t_session_s, t_rec_s, sample, sample_at, sample_at_fire,
#    trigger_sample, t_actual_s, t_sched_s (the session and recording
#    clocks: the sessions began at different times of the replay; pulses'
#    scheduled times are compared apart, relative to the session's first
#    pulse),
#    late_us (the stim thread's wake-up jitter on a loaded machine);
#  - seq, the per-topic sequence number: how many messages each rig had
#    published before (rig B was also refused a session);
#  - the ids: patient_id, session_id, and the course id in a course's
#    protocol_changed reason (the file and the course named);
#  - arm_code, the blinded code of each course (K7, Q2);
#  - the recording the rig made before the session, closed at its start
#    (rpms.record "closed": its length is how long the rig ran before), is
#    not the session's; the session's own file's data records (its length on
#    the wall clock) are named below.
CLOCKS = ("t_wall", "t_wall_ns", "t_mono_ns", "t_session_s", "t_rec_s", "sample",
          "sample_at", "sample_at_fire", "trigger_sample", "t_actual_s", "t_sched_s",
          "late_us", "seq")
IDS = ("patient_id", "session_id", "arm_code")


def window(d, t, who):
    """Every message rig @d published from the session start request (@t) to
    its session_stopped, heartbeats aside (once every heartbeat_s on the
    rig's clock: how many fall in a session is the clock's, not the arm's)."""
    with d.lock:
        msgs = [(tp, b) for tp, b, at in d.messages if at >= t and tp != "rpms.heartbeat"]
    out = []
    for tp, b in msgs:
        if tp == "rpms.record" and who[0] not in b.get("file", who[0]):
            continue        # the file the rig recorded before the session: its own length
        out.append((tp, b))
        if b.get("state") == "session_stopped":
            break
    check(out and out[-1][1].get("state") == "session_stopped", "no session_stopped")
    started = [b for tp, b in out if b.get("state") == "session_started"]
    check(len(started) == 1 and started[0]["patient_id"] == who[0] and
          started[0]["arm_code"] == who[2], "session_started of %s: %r" % (who[0], started))
    return out


def normalise(tp, b, who, first_sched):
    out = {k: v for k, v in b.items() if k not in CLOCKS + IDS}
    if tp == "rpms.stim":
        out.pop("temperature_c", None)    # compared apart, within 0.01 degC
    if tp == "rpms.record":
        out.pop("records", None)
        out["file"] = b.get("file", "").replace(who[0], "PATIENT")
    if "reason" in out:
        out["reason"] = out["reason"].replace(who[1], "COURSE")
    return out


def compare_streams(wa, wb):
    sched = [[b["t_sched_s"] for tp, b in w if tp == "rpms.stim"] for w in (wa, wb)]
    check(len(sched[0]) == len(sched[1]) == PULSES, "pulses %r" % sched)
    # the pulses' times from the session's first pulse: each at its place in
    # the protocol (50 ms within a train, 150 ms between trains), give or
    # take how late the previous one fired (a late pulse pushes the next
    # one's schedule, never closer than the designed spacing:
    # stim_request_next_ns): within half a pulse spacing of each other
    rel = [[round(t - s[0], 6) for t in s] for s in sched]
    check(all(abs(x - y) < 0.025 for x, y in zip(*rel)), "pulse times differ: %r" % rel)
    # the coil's temperature: the sim coil's thermal model cools it over the
    # time between pulses, so the same jitter moves it a little
    temp = [[b["temperature_c"] for tp, b in w if tp == "rpms.stim"] for w in (wa, wb)]
    check(all(abs(x - y) < 0.01 for x, y in zip(*temp)), "coil temperatures %r" % temp)
    na = [(tp, normalise(tp, b, ACTIVE, sched[0][0])) for tp, b in wa]
    nb = [(tp, normalise(tp, b, SHAM, sched[1][0])) for tp, b in wb]
    check(len(na) == len(nb), "%d messages in the active session, %d in the sham one:\n%s\n%s"
          % (len(na), len(nb), [tp for tp, _ in na], [tp for tp, _ in nb]))
    for i, (x, y) in enumerate(zip(na, nb)):
        check(x == y, "message %d differs:\n  active %r\n  sham   %r" % (i, x, y))
    for tp, b in wa + wb:
        text = json.dumps(b)
        check("sham" not in text and "active" not in text, "the arm on the stream: %s" % text)
    return len(na)


def compare_edf(fa, fb):
    """Header and annotations equal but for ids, the start's date and time,
    the number of data records (the session's length on the wall clock, its
    EMG is the replay's at another time) and the arm code; onsets relative
    to the first pulse's."""
    ha, ra = sham.edf_parse(fa)
    hb, rb = sham.edf_parse(fb)
    # 8-168: patient and recording fields (the ids), 168-184: start date and
    # time, 236-244: the number of data records
    check(ha[:8] == hb[:8] and ha[184:236] == hb[184:236] and ha[244:] == hb[244:],
          "EDF+ headers differ beyond ids, start and length:\n%r\n%r" % (ha, hb))
    check(ACTIVE[0].encode() in ha[8:88] and SHAM[0].encode() in hb[8:88],
          "patient ids in the headers")

    def annotations(records):
        tals = []
        for _, tal in records:
            for x in tal[1:]:       # the first TAL of a record is its time-keeping
                head, text = x.split(b"\x14", 1)
                tals.append((sham.Decimal(head.split(b"\x15")[0].decode()),
                             text.rstrip(b"\x14")))
        return tals

    ta, tb = annotations(ra), annotations(rb)
    # the first pulse is the reference of the onsets; what comes up to it
    # is at the session's start (the arm lands on the first pulse's sample
    # or the block before it, as the threads meet: seen both ways on a
    # loaded machine)
    first = [next(t for t, x in tals if x.startswith(b"pulse")) for tals in (ta, tb)]

    def norm(tals, who, t0):
        return [(t - t0 if t > t0 else None,
                 x.replace(who[1].encode(), b"COURSE").replace(who[2].encode(), b"CODE"))
                for t, x in tals]

    na, nb = norm(ta, ACTIVE, first[0]), norm(tb, SHAM, first[1])
    # the same annotations in the same order; those before the first pulse
    # at the session's start; the pulses' onsets within half a pulse spacing
    # (as on the stream), and "end of data" when session_stop came (the
    # rig's wall clock)
    check([x for _, x in na] == [x for _, x in nb] and
          [t is None for t, _ in na] == [t is None for t, _ in nb] and
          all(abs(p - q) < sham.Decimal("0.025") for (p, x), (q, _) in zip(na, nb)
              if p is not None and x != b"end of data"),
          "EDF+ annotations differ:\n  active %r\n  sham   %r" % (na, nb))
    codes = [[x for _, x in tals if x.startswith(b"arm code")] for tals in (ta, tb)]
    check(codes == [[b"arm code K7"], [b"arm code Q2"]], "arm code annotations %r" % codes)
    pulses = [x for _, x in ta if x.startswith(b"pulse")]
    check(len(pulses) == PULSES, "%d pulse annotations" % len(pulses))
    raw = open(fa, "rb").read() + open(fb, "rb").read()
    check(b"sham" not in raw and b"active" not in raw, "the arm in an EDF+ file")
    return len(na)


# ---- the course ------------------------------------------------------------------

def report(conf_path, who):
    text = rpmsctl("course", who[0], "--config", conf_path).stdout
    js = json.loads(rpmsctl("course", who[0], "--config", conf_path, "--json").stdout)
    return text, js


def check_report(conf_path, who, rig_name, edf):
    text, js = report(conf_path, who)
    check(js["patient"] == who[0] and [k["course"] for k in js["courses"]] == [who[1]], js)
    k = js["courses"][0]
    check(k["dose"] == {"sessions": 1, "pulses": PULSES}, k["dose"])
    check(k["prescription"]["max_sessions_per_day"] == 1 and
          k["prescription"]["pulses_per_session"] == PULSES, k["prescription"])
    s = k["sessions"]
    check(len(s) == 1, "sessions %r" % s)
    s = s[0]
    check(s["rig"] == rig_name and s["pulses"] == PULSES and s["arm_code"] == who[2] and
          s["notes"] == [] and s["stopped"] is not None and
          s["edf_file"] == os.path.basename(edf) and
          s["edf_sha256"] == sha256(edf) and s["intensity_pct"] == 30, s)
    # the text says the same, and neither tells the arm
    row = [ln for ln in text.splitlines() if " %s " % rig_name in ln]
    check(len(row) == 1 and "%d/%d" % (PULSES, PULSES) in row[0] and who[2] in row[0],
          "text report:\n%s" % text)
    check("sessions: 1 of 10 (9 left); pulses: %d delivered" % PULSES in text and
          "deviation" not in text, "text report:\n%s" % text)
    for out in (text, json.dumps(js)):
        check("sham" not in out and "active" not in out, "the arm in the report:\n%s" % out)
    return text


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def course_end_to_end(course_db, label):
    trial = Trial()
    ca, cb = rig_conf(trial, "rigA", course_db), rig_conf(trial, "rigB", course_db)
    pa, pb = write_conf(trial, ca, "rigA"), write_conf(trial, cb, "rigB")
    # 1. the prescriptions against the rigs' configuration, the configurations
    for who in (ACTIVE, SHAM):
        out = run(rig.RPMSD, "--check-prescription", trial.rx_file(who), "--config", pa).stdout
        check(who[1] in out, "--check-prescription: %s" % out)
    for p in (pa, pb):
        run(rig.RPMSD, "--check-config", p)
    a = daemon(ca, pa)
    b = daemon(cb, pb)
    try:
        for d in (a, b):
            d.wait_for(lambda d=d: d.of("rpms.state", state="calibrated"), WAIT_S, "calibration")
        # 2. rig A, the active patient
        ta = time.monotonic()
        started, status, status_text, stopped = session(a, ACTIVE, "S01", ta)
        check("course %s: database session" % ACTIVE[1] in started and
              "at most %d pulses" % PULSES in started, started)
        course = status["course"]
        check(status["session"] == {"patient_id": ACTIVE[0], "session_id": "S01"} and
              course["course_id"] == ACTIVE[1] and course["pulses_cap"] == PULSES and
              course["db_session"] >= 1, "status: %r" % status)
        check("course:       %s, database session %d, at most %d pulses" % (
            ACTIVE[1], course["db_session"], PULSES) in status_text, status_text)
        for out in (json.dumps(status), status_text, started):
            check("sham" not in out and "active" not in out, "the arm told: %s" % out)
        check("%d pulses" % PULSES in stopped and "deviation" not in stopped, stopped)
        check(a.ok({"cmd": "status"})["course"] is None, "status: the course after the stop")
        # 3. rig B: the active patient again today, refused across the rigs
        before = b.ok({"cmd": "status"})
        p = rpmsctl("-e", b.control, "session", "start", "--patient", ACTIVE[0], "--session",
                    "S01b", "--course", ACTIVE[1], ok=False)
        check(p.returncode == 1 and "course_refused" in p.stderr and ACTIVE[1] in p.stderr and
              "day" in p.stderr, "rig B, the patient rig A treated: %d %s" % (p.returncode,
                                                                           p.stderr))
        after = b.ok({"cmd": "status"})
        check(after["session"] is None and after["course"] is None and
              after["protocol"] == before["protocol"] and not after["armed"],
              "the refusal changed rig B: %r" % after)
        # 4. rig B, the sham patient
        tb = time.monotonic()
        started, status, status_text, stopped = session(b, SHAM, "S01", tb)
        check(status["course"]["course_id"] == SHAM[1], status)
        for out in (json.dumps(status), status_text, started):
            check("sham" not in out and "active" not in out, "the arm told: %s" % out)
        wa, wb = window(a, ta, ACTIVE), window(b, tb, SHAM)
    finally:
        a.stop()
        b.stop()
    # 5. indistinguishable, and the coils
    n_msgs = compare_streams(wa, wb)
    edfs = []
    for conf, who in ((ca, ACTIVE), (cb, SHAM)):
        files = [f for f in os.listdir(conf["record"]["directory"]) if who[0] in f]
        check(len(files) == 1, "recordings of %s: %r" % (who[0], files))
        edfs.append(os.path.join(conf["record"]["directory"], files[0]))
    n_ann = compare_edf(*edfs)
    logs = {name: (sham.pulse_log(conf["coil.sim"]["pulse_log"]),
                   sham.pulse_log(conf["sham_coil.sim"]["pulse_log"]))
            for name, conf in (("rigA", ca), ("rigB", cb))}
    check(len(logs["rigA"][0]) == PULSES and logs["rigA"][1] == [],
          "rig A (active patient): active coil %d, sham coil %d pulses" % tuple(
              map(len, logs["rigA"])))
    check(logs["rigB"][0] == [] and len(logs["rigB"][1]) == PULSES,
          "rig B (sham patient): active coil %d, sham coil %d pulses" % tuple(
              map(len, logs["rigB"])))
    check([p[1] for p in logs["rigA"][0]] == [p[1] for p in logs["rigB"][1]],
          "intensities differ between the coils")
    # 6. the course report, from either rig's configuration
    check_report(pa, ACTIVE, "rigA", edfs[0])
    text = check_report(pb, SHAM, "rigB", edfs[1])
    # 7. unblinding: both rigs' audits with the statistician's key
    opened = []
    for conf in (ca, cb):
        out = rpmsctl("unblind", "--key", trial.secret, "--audit",
                      conf["blind"]["audit"]).stdout
        opened.append([(x["rig"], x["patient_id"], x["course_id"], x["arm"], x["arm_code"])
                       for x in map(json.loads, out.splitlines())])
    check(opened == [[("rigA",) + ACTIVE[:2] + ("active", "K7")],
                     [("rigB",) + ACTIVE[:2] + ("active", "K7"),
                      ("rigB",) + SHAM[:2] + ("sham", "Q2")]], "unblinded %r" % opened)
    print("ok   %s: the active session on rig A, the sham one on rig B: %d messages and %d "
          "EDF+ annotations equal but named fields; rig B refused the active patient; the "
          "sham coil alone fired for the sham patient; report and unblind agree\n%s"
          % (label, n_msgs, n_ann, text), flush=True)


def test_sqlite():
    """Both rigs on one SQLite file; the README's commands are those run."""
    shared = os.path.join(tempfile.mkdtemp(prefix="db-", dir=TMP), "course.db")
    course_end_to_end({"path": shared}, "SQLite")
    print("ok   the README's %d commands of \"A course, end to end\" were run"
          % readme_commands())


def test_postgresql():
    """Both rigs on one real PostgreSQL server (root: skipped otherwise)."""
    import test_course_db
    srv = test_course_db.server()       # raises Skip when not root
    db = srv.new_db()
    course_end_to_end({"backend": "postgresql", "conninfo": srv.conninfo(db)}, "PostgreSQL")


if __name__ == "__main__":
    backend = "sqlite"
    if len(sys.argv) == 3 and sys.argv[1] == "--backend":
        backend = sys.argv[2]
    check(backend in ("sqlite", "postgresql"), "usage: %s [--backend sqlite|postgresql]"
          % sys.argv[0])
    rig.run_tests([test_sqlite] if backend == "sqlite" else [test_postgresql])
