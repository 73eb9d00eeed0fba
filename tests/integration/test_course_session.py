#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Course sessions of the real rpmsd (docs/course_db.md, docs/control.md):
session_start by course_id against a real course database.

SQLite, one rig: the prescription's protocol applied, pulses pushed to the
database while the session runs, the EDF+ carrying the course fields and
the database its SHA-256, deviations (stopped early, intensity changed by
set), a second session the same day refused, a wrong patient refused; a
refusal changes nothing. Two daemons sharing one SQLite file: the daily
cap across them, and kill -9 of one while it writes.

PostgreSQL (the server of test_course_db.py, started the same way; needs
root): two daemons as two rigs, the daily cap across rigs, two patients at
once, the server killed mid-session (the session finishes within its cap,
its pulses journalled and synced after the restart: none lost), and
session_start refused while the server is down and accepted after.
"""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import Skip, check  # noqa: E402
import test_control as tc  # noqa: E402  (its Daemon: a real rpmsd with a REQ client)

EDF_READ = os.environ.get("EDF_READ", os.path.join(rig.BUILD, "tests", "integration",
                                                   "edf_read"))
TMP = tempfile.mkdtemp(prefix="rpmsd-course-")
WAIT_S = 60     # sanitizer builds on a loaded machine are slow; conditions are waited for

RX = """[patient]
id = {patient}
[course]
id = {course}
sessions = 5
sessions_per_day = {per_day}
min_hours_between = 0
[target]
kind = motor_point
site = wrist_extensors
side = left
coil = figure-of-eight 70 mm
position = dorsal forearm
[protocol]
pattern = on_off
rate_hz = 20
on_ms = 250
off_ms = 750
pulses = {pulses}
[intensity]
{intensity}
"""


def rx_dir(*courses):
    """A prescriptions directory: (patient, course, per_day, pulses, intensity line)."""
    d = tempfile.mkdtemp(prefix="rx-", dir=TMP)
    for patient, course, per_day, pulses, intensity in courses:
        with open(os.path.join(d, course + ".rx"), "w") as f:
            f.write(RX.format(patient=patient, course=course, per_day=per_day, pulses=pulses,
                              intensity=intensity))
    return d


MT = "motor_threshold_pct = 120"
OUT30 = "max_output_pct = 30"


def course_conf(rx, state=None, rig_name="rigA", extra=None):
    """test_control's demo daemon in open loop (the prescriptions' pattern), with
    courses and a recording directory."""
    conf = tc.base_conf()
    if state:
        conf["daemon"]["state_dir"] = state
    conf["stim"].update({"mode": "open_loop", "protocol": "onoff", "on_ms": "250",
                         "off_ms": "750", "open_loop_pulses": "20", "intensity_pct": "30"})
    conf["record"] = {"directory": tempfile.mkdtemp(prefix="rec-", dir=TMP)}
    conf["course"] = {"prescriptions": rx, "rig": rig_name}
    for sec, keys in (extra or {}).items():
        conf.setdefault(sec, {}).update(keys)
    return conf


def start(d, patient, session, course, mt=None):
    req = {"cmd": "session_start", "patient_id": patient, "session_id": session,
           "course_id": course}
    if mt is not None:
        req["motor_threshold_pct"] = mt
    return d.request(req)


def status_view(d):
    st = d.ok({"cmd": "status"})
    return st["armed"], st["session"], st["protocol"]


def refused_unchanged(d, reply, code, *needles):
    """A refusal with @code naming @needles, and nothing changed."""
    check(not reply["ok"] and reply["error"]["code"] == code,
          "expected %s, got %r" % (code, reply))
    for n in needles:
        check(n in reply["error"]["message"], "%r does not name %r" % (reply, n))
    return reply["error"]


def wait_pulses(d, n, since=0.0):
    d.wait_for(lambda: len(d.of("rpms.stim", since=since)) >= n, WAIT_S,
               "%d pulses" % n)


def sqlite_rows(path, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def wait_until(pred, what, timeout=WAIT_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("%s within %g s" % (what, timeout))


def edf_annotations(path):
    p = subprocess.run([EDF_READ, path], capture_output=True, text=True)
    check(p.returncode == 0, "edf_read refused %s: %s" % (path, p.stdout[:300]))
    return [a["text"] for a in json.loads(p.stdout)["annotations"]]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_full_session(d, patient, session, course, mt, pulses):
    """Start a course session, arm, let the open loop deliver every pulse, stop."""
    t = time.monotonic()
    r = start(d, patient, session, course, mt)
    check(r["ok"], "session_start refused: %r" % r)
    d.ok({"cmd": "arm"})
    wait_pulses(d, pulses, t)
    d.wait_for(lambda: not d.ok({"cmd": "status"})["armed"], WAIT_S,
               "the open loop disarming after its pulses")
    return r["result"], d.ok({"cmd": "session_stop"})


# ---- SQLite, one rig --------------------------------------------------------

def blinded_course(tmp, pulses):
    """Course C-B1 of patient P-B1, blinded (docs/sham.md: allocated to arm
    sham under code Q5, the audit sealed to a statistician's key made in
    tmp), through one full session of pulses; the stopped daemon (its path
    is the configuration)."""
    secret = os.path.join(tmp, "statistician.secret")
    r = subprocess.run([rig.RPMSCTL, "keygen", secret], capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    public = os.path.join(tmp, "statistician.public")
    with open(public, "w") as f:
        f.write(r.stdout)
    alloc = os.path.join(tmp, "allocation")
    with open(alloc, "w") as f:
        f.write("C-B1 sham Q5\n")
    os.chmod(alloc, 0o600)
    rx = rx_dir(("P-B1", "C-B1", 1, pulses, OUT30))
    conf = course_conf(rx, rig.state_dir(), extra={
        "blind": {"allocation": alloc, "statistician_public_key": public,
                  "audit": os.path.join(tmp, "audit")},
        "sham_coil.sim": {"pulse_log": os.path.join(tmp, "sham.csv")}})
    d = tc.Daemon(conf)
    try:
        run_full_session(d, "P-B1", "S1", "C-B1", None, pulses)
    finally:
        d.stop()
    return d


def test_sqlite_course_session():
    """The prescription's protocol applied, pulses in the DB while running and
    at the stop, the EDF+ fields and SHA-256, a second session the same day and
    a wrong patient refused without changing anything."""
    rx = rx_dir(("P1", "C1", 1, 20, MT))
    state = rig.state_dir()
    conf = course_conf(rx, state)
    db = os.path.join(state, "course.db")
    d = tc.Daemon(conf)
    try:
        before = status_view(d)
        # (the intensity is relative to the motor threshold: a start without one
        # waits for the threshold procedure, test_motor_threshold.py)
        refused_unchanged(d, start(d, "P9", "S0", "C1", 45), "wrong_patient", "P1", "P9")
        refused_unchanged(d, start(d, "P1", "S0", "C404", 45), "no_prescription", "C404")
        check(status_view(d) == before, "a refusal changed the daemon: %r" % (status_view(d),))

        t = time.monotonic()
        r = start(d, "P1", "S1", "C1", 45)
        check(r["ok"], r)
        res = r["result"]
        c = res["course"]
        check(c["course_id"] == "C1" and c["pulses_cap"] == 20, c)
        check(c["intensity_rule"] == "120 % of MT 45 % MSO = 54 % MSO", c)
        proto = c["protocol"]["protocol"]
        check(proto["intensity_pct"] == 54 and proto["open_loop_pulses"] == 20 and
              proto["on_ms"] == 250 and proto["train_frequency_hz"] == 20, proto)
        # status shows the course session (never an arm: no blinding here)
        st = d.ok({"cmd": "status"})
        check(st["course"] == {"course_id": "C1", "db_session": c["db_session"], "pulses_cap": 20,
                               "intensity_rule": "120 % of MT 45 % MSO = 54 % MSO",
                               "motor_threshold_pending": False}, st)
        ev = d.wait_for(lambda: [e for e in d.of("rpms.state", since=t, state="protocol_changed")
                                 if "course C1" in e["reason"]], WAIT_S,
                        "the course's protocol on rpms.state")
        check("54" in ev[0]["reason"], ev)
        d.ok({"cmd": "arm"})
        wait_pulses(d, 20, t)
        # pushed while the session runs (about once a second), before any stop
        wait_until(lambda: sqlite_rows(db, "SELECT pulses FROM sessions WHERE id = ?",
                                       (c["db_session"],)) == [(20,)],
                   "20 pulses in the course database before the stop")
        d.wait_for(lambda: not d.ok({"cmd": "status"})["armed"], WAIT_S, "open loop done")
        stop = d.ok({"cmd": "session_stop"})
        check(stop["pulses_session"] == 20 and "deviation" not in stop, stop)
        check(d.ok({"cmd": "status"})["course"] is None, "status: a course after the stop")
        check(len(d.of("rpms.stim", since=t)) == 20, "pulses beyond the prescription")

        edf = res["recording"]["file"]
        row = sqlite_rows(db, "SELECT pulses, stopped IS NOT NULL, edf_file, edf_sha256, "
                          "intensity_pct, motor_threshold_pct, target, rig FROM sessions "
                          "WHERE id = ?", (c["db_session"],))
        check(row == [(20, 1, os.path.basename(edf), sha256(edf), 54.0, 45.0,
                       "motor_point wrist_extensors left", "rigA")], row)
        ann = edf_annotations(edf)
        for want in ("course C1", "target motor_point wrist_extensors left",
                     "protocol on_off 20 Hz 20 pulses", "intensity 120% of MT 45% = 54% MSO"):
            check(want in ann, "EDF+ annotation %r missing: %r" % (want, ann))
        check(not sqlite_rows(db, "SELECT * FROM notes"), "a deviation for a full session")

        # sessions_per_day = 1: a second session today is refused, nothing changes
        before = status_view(d)
        e = refused_unchanged(d, start(d, "P1", "S2", "C1", 45), "course_refused", "C1")
        check("day" in e["message"], e)
        check(status_view(d) == before, "a refusal changed the daemon: %r" % (status_view(d),))
        check(sqlite_rows(db, "SELECT COUNT(*) FROM sessions") == [(1,)], "a session was added")
    finally:
        d.stop()
    check(sqlite_rows(db, "PRAGMA integrity_check") == [("ok",)], "integrity")


def test_sqlite_deviations():
    """Stopped before the prescribed pulses, and intensity changed by set: each
    a deviation with its reason, in the DB, in the replies and on rpms.state."""
    rx = rx_dir(("P2", "C2", 3, 20, OUT30))
    state = rig.state_dir()
    d = tc.Daemon(course_conf(rx, state))
    db = os.path.join(state, "course.db")
    try:
        t = time.monotonic()
        r = start(d, "P2", "S1", "C2")
        check(r["ok"] and r["result"]["course"]["intensity_rule"] == "30 % MSO", r)
        d.ok({"cmd": "arm"})
        wait_pulses(d, 5, t)
        d.ok({"cmd": "disarm"})
        s = d.ok({"cmd": "set", "params": {"intensity_pct": "35"},
                  "reason": "patient felt the pulses as too weak"})
        check("too weak" in s["deviation"] and "30 -> 35" in s["deviation"], s)
        stop = d.ok({"cmd": "session_stop", "reason": "patient asked to stop"})
        n = stop["pulses_session"]
        check(5 <= n < 20, stop)
        check(stop["deviation"] == "stopped early: %d of 20 pulses: patient asked to stop" % n,
              stop)
        d.wait_for(lambda: [e for e in d.of("rpms.state", since=t, state="protocol_changed")
                            if "deviation: stopped early" in e["reason"]], WAIT_S,
                   "the deviation on rpms.state")
        check([e for e in d.of("rpms.state", since=t, state="protocol_changed")
               if "deviation: intensity 30 -> 35" in e["reason"]], "set's deviation not published")
        notes = sqlite_rows(db, "SELECT kind, what, text FROM notes ORDER BY id")
        check(notes == [("deviation", "intensity changed",
                         "intensity 30 -> 35 % MSO by set: patient felt the pulses as too weak"),
                        ("deviation", "stopped early", stop["deviation"])], notes)
        check(sqlite_rows(db, "SELECT pulses, stop_reason FROM sessions") ==
              [(n, "patient asked to stop")], sqlite_rows(db, "SELECT * FROM sessions"))
        # the second session of the day (sessions_per_day = 2), stopped without a reason
        r = start(d, "P2", "S2", "C2")
        check(r["ok"], r)
        stop = d.ok({"cmd": "session_stop"})
        check(stop["deviation"] == "stopped early: 0 of 20 pulses: no reason given", stop)
        # a third, running when the daemon stops: ended in the database, not left running
        r = start(d, "P2", "S3", "C2")
        check(r["ok"], r)
        sid = r["result"]["course"]["db_session"]
    finally:
        d.stop()
    check(sqlite_rows(db, "SELECT stopped IS NOT NULL, stop_reason FROM sessions WHERE id = ?",
                      (sid,)) == [(1, "the daemon stopped during the session")],
          sqlite_rows(db, "SELECT * FROM sessions"))
    check(not os.path.exists(os.path.join(state, "course-session")), "the mark was left")


def test_check_config_course_keys():
    """--check-config: a prescriptions directory that does not exist, and
    postgresql without conninfo, are errors naming the key and its line."""
    conf = course_conf("/nonexistent/rx")
    path = tc.write_conf(conf)
    p = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True)
    lines = open(path).read().splitlines()
    line = lines.index("prescriptions = /nonexistent/rx") + 1
    check(p.returncode != 0 and "%s:%d: course.prescriptions" % (path, line) in p.stderr and
          "does not exist" in p.stderr, p.stderr)
    conf = course_conf(rx_dir(("P1", "C1", 1, 20, MT)), extra={"course_db": {"backend":
                                                                              "postgresql"}})
    path = tc.write_conf(conf)
    p = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True)
    check(p.returncode != 0 and "course_db.conninfo" in p.stderr, p.stderr)
    # the conninfo itself, as the start's connection checks it (course_db_check_conninfo),
    # without connecting: a server off this host without verify-full, a conninfo libpq
    # cannot parse; a loopback one passes
    rx = rx_dir(("P1", "C1", 1, 20, MT))
    for conninfo, want in (
            ("host=db.site.example hostaddr=192.0.2.1 dbname=rpms user=rig1",
             "the server 'db.site.example' is not on this host"),
            ("host=127.0.0.1 dbname='rpms", "course_db.conninfo"),
            ("host=127.0.0.1 port=1 dbname=rpms user=rig1", None)):
        conf = course_conf(rx, extra={"course_db": {"backend": "postgresql",
                                                    "conninfo": conninfo}})
        path = tc.write_conf(conf)
        p = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True,
                           timeout=60)
        if want is None:
            check(p.returncode == 0, "%s: %s" % (conninfo, p.stderr))
            continue
        line = open(path).read().splitlines().index("conninfo = " + conninfo) + 1
        check(p.returncode == 1 and "%s:%d: " % (path, line) in p.stderr and want in p.stderr,
              "%s: %d %s" % (conninfo, p.returncode, p.stderr))
        if "192.0.2.1" in conninfo:
            check("sslmode=verify-full" in p.stderr, p.stderr)


# ---- two rigs on one SQLite file ---------------------------------------------

def test_sqlite_two_rigs_daily_cap():
    """Two daemons, one SQLite file: rig B is refused the patient rig A treated
    today; kill -9 of a daemon while it writes leaves the file sound and its
    pulses not under-counted against its ledger."""
    rx = rx_dir(("P1", "C1", 1, 20, MT), ("P2", "C2", 1, 30, OUT30), ("P5", "C5", 2, 20, OUT30))
    shared = os.path.join(tempfile.mkdtemp(prefix="db-", dir=TMP), "course.db")
    a = tc.Daemon(course_conf(rx, extra={"course_db": {"path": shared}}, rig_name="rigA"))
    # rig B's own daily limit is lower than P5's prescribed day (2 x 20)
    b = tc.Daemon(course_conf(rx, extra={"course_db": {"path": shared}, "safety": {
        "max_daily_pulses": "30", "max_session_pulses": "30", "ledger_reserve_pulses": "5"}},
        rig_name="rigB"))
    try:
        run_full_session(a, "P1", "S1", "C1", 45, 20)
        e = refused_unchanged(b, start(b, "P1", "S1b", "C1", 45), "course_refused", "C1")
        check("day" in e["message"], e)
        check(status_view(b)[1] is None, "rig B has a session")
        # P5: 20 pulses on rig A; on rig B the day's cap (30, B's limit) leaves 10,
        # and B's gate stops the session there although its own day has room
        run_full_session(a, "P5", "S1", "C5", None, 20)
        t = time.monotonic()
        r = start(b, "P5", "S2", "C5")
        check(r["ok"] and r["result"]["course"]["pulses_cap"] == 10, r)
        b.ok({"cmd": "arm"})
        b.wait_for(lambda: b.of("rpms.safety", since=t, rule="max_session_pulses"), WAIT_S,
                   "the session cap's refusal")
        stop = b.ok({"cmd": "session_stop", "reason": "daily cap across rigs"})
        check(stop["pulses_session"] == 10 == len(b.of("rpms.stim", since=t)), stop)
        check(sqlite_rows(shared, "SELECT SUM(pulses) FROM sessions WHERE patient = 'P5'") ==
              [(30,)], "P5's day across rigs")
        # rig B treats another patient; kill -9 while its pulses are being written
        t = time.monotonic()
        r = start(b, "P2", "S2", "C2")
        check(r["ok"], r)
        sid = r["result"]["course"]["db_session"]
        b.ok({"cmd": "arm"})
        wait_until(lambda: sqlite_rows(shared, "SELECT pulses FROM sessions WHERE id = ?",
                                       (sid,))[0][0] >= 10, "rig B's pulses in the database")
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(timeout=30)
        delivered = len(b.of("rpms.stim", since=t))
        in_db = sqlite_rows(shared, "SELECT pulses FROM sessions WHERE id = ?", (sid,))[0][0]
        check(sqlite_rows(shared, "PRAGMA integrity_check") == [("ok",)], "integrity")
        # what the DB holds is a pushed count of delivered pulses: never above them...
        check(in_db <= delivered, "DB %d > delivered %d" % (in_db, delivered))
        # ...and the rig's own ledger (the truth on the rig) has at least every pulse
        ledger = sum_ledger(b.conf["daemon"]["state_dir"])
        check(ledger >= delivered, "ledger %d < delivered %d" % (ledger, delivered))
        check(sqlite_rows(shared, "SELECT stopped FROM sessions WHERE id = ?", (sid,)) ==
              [(None,)], "the killed session ended")
        # rig B again: the session its last run left running is ended from its ledger
        forget(b)
        conf = dict(b.conf)
        # a port of its own: the dead daemon's subscriber must not be the one it waits for
        conf["publish"] = dict(conf["publish"], endpoint="tcp://127.0.0.1:%d" % rig.free_port())
        b = tc.Daemon(conf)
        row = wait_until(lambda: sqlite_rows(
            shared, "SELECT pulses, stop_reason FROM sessions WHERE id = ? AND stopped IS NOT "
            "NULL", (sid,)), "the killed session ended at the restart")
        check(delivered <= row[0][0] <= ledger, "%r: delivered %d, ledger %d"
              % (row, delivered, ledger))
        check("upper bound" in row[0][1], row)
        check(sqlite_rows(shared, "SELECT what FROM notes WHERE session = ?", (sid,)) ==
              [("not ended",)], "no deviation for the session not ended")
        check(sqlite_rows(shared, "PRAGMA integrity_check") == [("ok",)], "integrity")
    finally:
        a.stop()
        if b.proc.poll() is None:
            b.stop()
        else:
            forget(b)


def forget(d):
    """Close the sockets of a Daemon whose process was killed."""
    if d.done:
        return
    d.done = True
    d.thread.join()
    if d.req is not None:
        d.req.close()
    d.sub.close(linger=0)
    d.ctx.term()


def sum_ledger(state):
    """Today's pulses in the rig's pulse ledger (daemon.state_dir/dose)."""
    with open(os.path.join(state, "dose")) as f:
        fields = dict(line.split(" = ", 1) for line in f.read().splitlines() if " = " in line)
    return int(fields["pulses"])


# ---- PostgreSQL: two rigs on one server ----------------------------------------

def pg_server():
    import test_course_db
    return test_course_db.server()


def pg_conf(srv, db, rx, name):
    state = rig.state_dir()
    return course_conf(rx, state, rig_name=name, extra={"course_db": {
        "backend": "postgresql", "conninfo": srv.conninfo(db),
        "journal": os.path.join(state, "journal.db")}})


def test_pg_two_rigs():
    """The daily cap across rigs, two patients at once, and the server killed
    mid-session: the session finishes within its cap, pulses journalled and
    synced after the restart; session_start refused while it is down."""
    srv = pg_server()
    db = srv.new_db()
    rx = rx_dir(("P1", "C1", 1, 20, MT), ("P2", "C2", 1, 20, OUT30),
                ("P3", "C3", 1, 40, OUT30), ("P4", "C4", 1, 20, OUT30),
                ("P6", "C6", 1, 20, OUT30))
    a = tc.Daemon(pg_conf(srv, db, rx, "rigA"))
    b = tc.Daemon(pg_conf(srv, db, rx, "rigB"))
    try:
        # the daily cap across rigs
        run_full_session(a, "P1", "S1", "C1", 45, 20)
        e = refused_unchanged(b, start(b, "P1", "S1b", "C1", 45), "course_refused", "C1")
        check("day" in e["message"], e)
        check(srv.psql(db, "SELECT pulses, rig FROM sessions WHERE patient = 'P1'") ==
              "20|rigA", srv.psql(db, "SELECT * FROM sessions"))
        # two patients at once on the two rigs
        ra = start(a, "P2", "S2", "C2")
        rb = start(b, "P4", "S4", "C4")
        check(ra["ok"] and rb["ok"], (ra, rb))
        a.ok({"cmd": "arm"})
        b.ok({"cmd": "arm"})
        for d in (a, b):
            d.wait_for(lambda d=d: not d.ok({"cmd": "status"})["armed"] and
                       d.ok({"cmd": "status"})["pulses_session"] == 20, WAIT_S, "20 pulses")
            d.ok({"cmd": "session_stop"})
        check(srv.psql(db, "SELECT patient, pulses FROM sessions WHERE patient IN ('P2', 'P4') "
                       "ORDER BY patient") == "P2|20\nP4|20", srv.psql(db, "SELECT * FROM sessions"))

        # the server killed mid-session: the session runs on to its cap
        t = time.monotonic()
        r = start(a, "P3", "S3", "C3")
        check(r["ok"], r)
        sid = r["result"]["course"]["db_session"]
        a.ok({"cmd": "arm"})
        wait_pulses(a, 5, t)
        srv.kill()
        a.wait_for(lambda: not a.ok({"cmd": "status"})["armed"], WAIT_S, "the open loop done")
        stop = a.ok({"cmd": "session_stop"})
        delivered = len(a.of("rpms.stim", since=t))
        check(stop["pulses_session"] == 40 == delivered, (stop, delivered))
        # while it is down, a course session is refused on the other rig, nothing changed
        before = status_view(b)
        refused_unchanged(b, start(b, "P4", "S5", "C4"), "course_refused",
                          "course database unreachable")
        check(status_view(b) == before, "a refusal changed rig B")
        srv.start()
        # after the restart the journal syncs (at the next write or start): none lost
        r = start(a, "P4", "S6", "C4")   # P4 treated today already: refused, but synced first
        check(not r["ok"] and "day" in r["error"]["message"], r)
        check(srv.psql(db, "SELECT pulses, stopped IS NOT NULL, edf_sha256 IS NOT NULL FROM "
                       "sessions WHERE id = %d" % sid) == "40|t|t",
              srv.psql(db, "SELECT * FROM sessions"))
        # the other rig, refused while the server was down, starts a session again
        r = start(b, "P6", "S7", "C6")
        check(r["ok"], r)
        b.ok({"cmd": "session_stop", "reason": "network drop test"})
        # and the rig's ledger has every pulse the database has: none under-counted
        check(sum_ledger(a.conf["daemon"]["state_dir"]) >= int(srv.psql(
            db, "SELECT SUM(pulses) FROM sessions WHERE rig = 'rigA'")), "ledger below the DB")
    finally:
        a.stop()
        b.stop()


def test_pg_unreachable_at_start():
    """A server down when the daemon starts does not stop it; session_start is
    refused ("course database unreachable") until the server answers."""
    srv = pg_server()
    db = srv.new_db()
    rx = rx_dir(("P1", "C1", 1, 20, OUT30))
    srv.kill()
    d = tc.Daemon(pg_conf(srv, db, rx, "rigA"))
    try:
        before = status_view(d)
        refused_unchanged(d, start(d, "P1", "S1", "C1"), "course_refused",
                          "course database unreachable")
        check(status_view(d) == before, "a refusal changed the daemon")
        srv.start()
        r = start(d, "P1", "S1", "C1")
        check(r["ok"], r)
        d.ok({"cmd": "session_stop", "reason": "test"})
    finally:
        try:
            srv.start()     # for the tests after this one; an error if it runs already
        except AssertionError:
            pass
        d.stop()


if __name__ == "__main__":
    rig.run_tests([
        test_check_config_course_keys,
        test_sqlite_course_session,
        test_sqlite_deviations,
        test_sqlite_two_rigs_daily_cap,
        test_pg_two_rigs,
        test_pg_unreachable_at_start,
    ])
