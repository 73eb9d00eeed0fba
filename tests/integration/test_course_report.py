#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""rpmsctl course: a patient's course read from the course database, and
adverse-event notes entered with it, with no daemon running.

Sessions are made through the course_db API by course_db_drv (one process a
rig, tests/integration/course_db_drv.c); rpmsctl course reads them through
the configuration's [course_db] keys:

  - SQLite: an empty course; sessions with details, deviations and adverse
    notes as a table (times in safety.day_zone) and as JSON (round trip);
    notes refused for an unknown session or another patient's; an unknown
    patient or course; a bad --config, and a course_db.path that does not
    exist (refused, and not created).
  - PostgreSQL (the real server of test_course_db.py's harness): the report
    of the server with this rig's unsynced journal entries counted, a note
    entered and read back, no journal on this machine said so, and an
    unreachable server.

The PostgreSQL tests skip (exit 77) where test_course_db.py's do.
"""
import json
import os
import pwd
import shutil
import subprocess
import sqlite3
import tempfile

import test_course_db as pg
from rpmsd_rig import RPMSCTL, check, free_port, run_tests

DRV = pg.DRV
DAY0 = pg.DAY0
DAY = pg.DAY
HOUR = pg.HOUR
ME = pwd.getpwuid(os.getuid()).pw_name
EAGAIN = 11


def drv(args, lines):
    """Run course_db_drv with @lines as its commands; every answer must be ok."""
    r = subprocess.run([DRV] + args, input="\n".join(lines) + "\nquit\n",
                       capture_output=True, text=True, timeout=120)
    out = r.stdout.splitlines()
    check(r.returncode == 0 and out and out[0] == "ok open", "course_db_drv: %r %s"
          % (out, r.stderr))
    for line, ans in zip(lines, out[1:]):
        check(ans.startswith("ok"), "%s: %s" % (line, ans))
    return [a[3:] for a in out[1:]]


def rpmsctl(*args):
    return subprocess.run([RPMSCTL, "course"] + list(args), capture_output=True, text=True,
                          timeout=120)


class Site:
    """A temporary directory with an rpmsd configuration naming a course database."""

    def __init__(self, course_db="", day_zone="UTC"):
        self.dir = tempfile.mkdtemp(prefix="rpmsd-course-report.")
        os.mkdir(os.path.join(self.dir, "state"))
        self.conf = os.path.join(self.dir, "rpmsd.conf")
        with open(self.conf, "w") as f:
            # relative: to the file's directory, as the daemon resolves it
            f.write("[daemon]\nstate_dir = state\n[safety]\nday_zone = %s\n%s"
                    % (day_zone, course_db))
        self.db = os.path.join(self.dir, "state", "course.db")

    def course(self, *args):
        return rpmsctl(*(list(args) + ["--config", self.conf]))

    def report(self, patient, *args):
        r = self.course(patient, "--json", *args)
        check(r.returncode == 0, "rpmsctl course %s --json: %d %s" % (patient, r.returncode,
                                                                       r.stderr))
        return json.loads(r.stdout)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# A prescription file as the course database stores it (docs/prescriptions.md).
RX = """[patient]
id = P01
[course]
id = C1
sessions = 10
min_hours_between = 20
[target]
kind = nerve_trunk
site = radial
side = right
[protocol]
pattern = on_off
rate_hz = 25
on_ms = 1000
off_ms = 2000
pulses = 1200
[intensity]
motor_threshold_pct = 110
"""


def day(k):
    return "%d %d" % (DAY0 + k * DAY, DAY0 + (k + 1) * DAY)


def test_sqlite_empty_course():
    s = Site()
    try:
        drv(["sqlite", s.db], ["patient P01", "rx P01 C1 10 1 20 5000"])
        r = s.course("P01")
        check(r.returncode == 0, r.stderr)
        check("course C1: 10 sessions, at most 1 a day, at least 20 h apart, daily cap 5000 "
              "pulses" in r.stdout, r.stdout)
        check("no sessions yet" in r.stdout, r.stdout)
        check("sessions: 0 of 10 (10 left); pulses: 0 delivered" in r.stdout, r.stdout)
        j = s.report("P01")
        check(j["courses"][0]["sessions"] == [] and
              j["courses"][0]["dose"] == {"sessions": 0, "pulses": 0}, j)
        check(j["pending_journal_entries"] == 0 and j["backend"] == "sqlite", j)
        check(j["database"] == s.db, j)
    finally:
        s.close()


def make_course(args):
    """Three sessions of P01 (one running), one of P02; details and deviations."""
    t0, t1, t2 = DAY0 + 10 * HOUR, DAY0 + DAY + 10 * HOUR, DAY0 + 2 * DAY + 10 * HOUR
    ids = drv(args, [
        "patient P01", "rx P01 C1 10 1 20 5000",
        "patient P02", "rx P02 C1 10 1 20 5000",
        "begin P01 C1 rig1 %d %s" % (t0, day(0)),
        "begin P02 C1 rig2 %d %s" % (t0, day(0)),
    ])
    a, other = ids[4], ids[5]
    drv(args, [
        "set %s 38 42.5 K7 radial nerve, right" % a,
        "endr %s %d 1200 completed" % (a, t0 + 1800),
        "endr %s %d 90 completed" % (other, t0 + 1800),
    ])
    b = drv(args, ["begin P01 C1 rig2 %d %s" % (t1, day(1))])[0]
    drv(args, [
        "set %s 35 40 K7 radial nerve, right" % b,
        "note %s deviation %d intensity lowered to 35 %% (discomfort)" % (b, t1 + 300),
        "endr %s %d 400 stopped_early" % (b, t1 + 900),
        "note %s deviation %d stopped patient asked to stop" % (b, t1 + 900),
    ])
    c = drv(args, ["begin P01 C1 rig1 %d %s" % (t2, day(2)), ])[0]
    drv(args, ["pulses %s 150" % c])
    return int(a), int(b), int(c), int(other)


def test_sqlite_sessions_notes_text_and_json():
    s = Site(day_zone="Europe/Berlin")
    try:
        a, b, c, other = make_course(["sqlite", s.db])
        # the stored prescription text gives the pulses prescribed a session
        with sqlite3.connect(s.db) as h:
            h.execute("UPDATE prescriptions SET text = ? WHERE patient = 'P01'", (RX,))
        h.close()
        text = "tingling over the\tforearm \x1b[31mresolved\x1b[0m, \u00e9 10 min"
        r = s.course("note", "P01", "--session", str(b), "--adverse", text)
        check(r.returncode == 0, r.stderr)
        check("saved on session %d of patient P01, entered by %s" % (b, ME) in r.stdout,
              r.stdout)
        r = s.course("P01")
        check(r.returncode == 0, r.stderr)
        out = r.stdout
        check("times in Europe/Berlin (safety.day_zone)" in out, out)
        rows = [ln.split() for ln in out.splitlines() if ln.startswith("    ")
                and ln.split()[0].isdigit()]
        check(len(rows) == 3, out)
        # 10:00 UTC is 11:00 in Berlin in November
        check("daily cap 5000 pulses, 1200 pulses a session" in out, out)
        check(rows[0][:8] == ["1", str(a), "2026-11-27", "11:00", "rig1", "1200/1200", "38.0",
                              "42.5"], rows[0])
        check(rows[0][8:] == ["K7", "completed", "at", "11:30"], rows[0])
        check(rows[1][:8] == ["2", str(b), "2026-11-28", "11:00", "rig2", "400/1200", "35.0",
                              "40.0"] and rows[1][9] == "stopped_early", rows[1])
        check(rows[2][1] == str(c) and rows[2][5] == "150/1200" and "not ended" in " ".join(rows[2]),
              rows[2])
        check("deviation 11:05: intensity: lowered to 35 % (discomfort)" in out, out)
        check("deviation 11:15: stopped: patient asked to stop" in out, out)
        # control characters never reach the terminal
        check("ADVERSE EVENT" in out and "entered by %s): tingling over the?forearm ?[31m"
              "resolved?[0m, \u00e9 10 min" % ME in out, out)
        check("\x1b" not in out, "escape reached the terminal")
        check("sessions: 3 of 10 (7 left); pulses: 1750 delivered of 12000 prescribed for the "
              "course" in out, out)
        check("P02" not in out and str(other) not in [row[1] for row in rows], out)
        # JSON: what was put in comes out, exactly
        j = s.report("P01")
        check(j["patient"] == "P01" and j["time_zone"] == "Europe/Berlin", j)
        k = j["courses"][0]
        check(k["course"] == "C1" and k["dose"] == {"sessions": 3, "pulses": 1750}, k)
        check(k["prescription"]["sessions_per_course"] == 10 and
              k["prescription"]["daily_pulse_cap"] == 5000 and
              k["prescription"]["pulses_per_session"] == 1200 and k["prescription"]["text"] == RX,
              k)
        ss = k["sessions"]
        check([x["id"] for x in ss] == [a, b, c] and [x["number"] for x in ss] == [1, 2, 3], ss)
        check(ss[0]["started"] == DAY0 + 10 * HOUR and ss[0]["stopped"] == DAY0 + 10 * HOUR
              + 1800 and ss[0]["started_local"] == "2026-11-27 11:00", ss[0])
        check(ss[0]["intensity_pct"] == 38 and ss[0]["motor_threshold_pct"] == 42.5 and
              ss[0]["arm_code"] == "K7" and ss[0]["target"] == "radial nerve, right", ss[0])
        check(ss[1]["end_reason"] == "stopped_early" and ss[1]["pulses"] == 400, ss[1])
        check(ss[2]["stopped"] is None and ss[2]["end_reason"] is None and
              ss[2]["intensity_pct"] is None and ss[2]["arm_code"] is None, ss[2])
        notes = ss[1]["notes"]
        check([n["kind"] for n in notes] == ["deviation", "deviation", "adverse"], notes)
        check(notes[0]["what"] == "intensity" and
              notes[0]["text"] == "lowered to 35 % (discomfort)", notes)
        check(notes[2]["entered_by"] == ME and notes[2]["text"] == text, notes[2])
        # the arm itself is never in the report, only its code
        check("arm\"" not in json.dumps(j) and "active" not in r.stdout, j)
        # text that is not UTF-8 (written by something else) is shown, never dropped
        with sqlite3.connect(s.db) as h:
            h.execute("UPDATE notes SET text = 'caf' || CAST(x'e9' AS TEXT) WHERE what = "
                      "'stopped'")
        h.close()
        notes = s.report("P01")["courses"][0]["sessions"][1]["notes"]
        check([n["text"] for n in notes][1] == "caf?" and len(notes) == 3, notes)
    finally:
        s.close()


def test_sqlite_note_refused():
    s = Site()
    try:
        a, b, c, other = make_course(["sqlite", s.db])
        r = s.course("note", "P01", "--session", "999", "--adverse", "x")
        check(r.returncode == 1 and "session 999 unknown" in r.stderr, r.stderr)
        r = s.course("note", "P01", "--session", str(other), "--adverse", "x")
        check(r.returncode == 1 and "session %d is not a session of patient P01: no note "
              "added" % other in r.stderr, r.stderr)
        check("P02" not in r.stderr, r.stderr)
        r = s.course("note", "P01", "--session", str(a))
        check(r.returncode == 2 and "needs --session ID and --adverse TEXT" in r.stderr,
              r.stderr)
        r = s.course("note", "P01", "--session", "x1", "--adverse", "y")
        check(r.returncode == 2 and "'x1' is not a session id" in r.stderr, r.stderr)
        r = s.course("note", "P01", "--session", str(a), "--adverse", "  ")
        check(r.returncode == 1 and "adverse-event note is empty" in r.stderr, r.stderr)
        j = s.report("P02")
        check(j["courses"][0]["sessions"][0]["notes"] == [], j)
        j = s.report("P01")
        check(all(n["kind"] == "deviation" for x in j["courses"][0]["sessions"]
                  for n in x["notes"]), j)
    finally:
        s.close()


def test_sqlite_unknown_patient_and_course():
    s = Site()
    try:
        drv(["sqlite", s.db], ["patient P01", "rx P01 C1 10 1 20 5000",
                               "rx P01 C2 10 1 20 5000"])
        r = s.course("P99")
        check(r.returncode == 1 and "patient P99 unknown" in r.stderr and r.stdout == "",
              (r.returncode, r.stderr, r.stdout))
        r = s.course("P01", "--course", "C9")
        check(r.returncode == 1 and "patient P01 has no course C9 (its courses: C1, C2)"
              in r.stderr, r.stderr)
        r = s.course("P01", "--course", "C2", "--json")
        check(r.returncode == 0 and [k["course"] for k in json.loads(r.stdout)["courses"]]
              == ["C2"], r.stdout)
        r = s.course("Jane Doe")
        check(r.returncode == 1 and "pseudonyms only" in r.stderr, r.stderr)
    finally:
        s.close()


def test_bad_config():
    s = Site()
    try:
        r = rpmsctl("P01", "--config", os.path.join(s.dir, "missing.conf"))
        check(r.returncode == 4 and "missing.conf: No such file or directory" in r.stderr,
              r.stderr)
        # course_db.path naming no file: refused, and no empty database left behind
        with open(s.conf, "a") as f:
            f.write("[course_db]\npath = state/other.db\n")
        r = s.course("P01")
        want = os.path.join(s.dir, "state/other.db")
        check(r.returncode == 4 and "course database %s: No such file or directory (a client "
              "never creates one: check course_db.path)" % want in r.stderr, r.stderr)
        r = s.course("P01")
        check(not os.path.exists(want) and not os.path.exists(s.db), "a file was created")
        bad = os.path.join(s.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("[course_db]\nbackend = oracle\n")
        r = rpmsctl("P01", "--config", bad)
        check(r.returncode == 4 and "bad.conf:2: course_db.backend" in r.stderr, r.stderr)
        with open(bad, "w") as f:
            f.write("[course_db]\nbackend = postgresql\n")
        r = rpmsctl("P01", "--config", bad)
        check(r.returncode == 4 and "course_db.conninfo: empty" in r.stderr, r.stderr)
    finally:
        s.close()


# ---- PostgreSQL ------------------------------------------------------------


def pg_site(srv, db, journal):
    return Site("[course_db]\nbackend = postgresql\nconninfo = %s\njournal = %s\n"
                % (srv.conninfo(db), journal))


def test_pg_report_counts_unsynced_journal():
    srv = pg.server()
    db = srv.new_db()
    s = pg_site(srv, db, srv.journal(db + "-a"))
    rig = pg.Rig(srv, db, db + "-a")
    try:
        check(rig.opened == "ok open", rig.opened)
        t = DAY0 + 10 * HOUR
        rig.ok("patient P01")
        rig.ok("rx P01 C1 10 1 0 5000")
        sid = rig.ok("begin P01 C1 rig1 %d %s" % (t, day(0)))
        rig.ok("pulses %s 100" % sid)
        j = s.report("P01")
        check(j["pending_journal_entries"] == 0, j)
        check(j["courses"][0]["sessions"][0]["pulses"] == 100, j)
        srv.kill()
        try:
            rig.ok("pulses %s 300" % sid)
            rig.ok("note %s deviation %d stopped server down" % (sid, t + 600))
            rig.ok("endr %s %d 350 stopped_early" % (sid, t + 700))
            pending = int(rig.ok("pending"))
            check(pending == 3, "journal holds %d" % pending)
            # the server down: the report fails, naming why
            r = s.course("P01")
            check(r.returncode == 3 and r.stderr.startswith(
                "rpmsctl course: course database unreachable:"), (r.returncode, r.stderr))
        finally:
            srv.start()
        # back: the report is of the server, and says what the journal still holds
        r = s.course("P01")
        check(r.returncode == 0, r.stderr)
        check("INCOMPLETE: 3 entries of this rig's journal %s are not on the server yet"
              % srv.journal(db + "-a") in r.stdout, r.stdout)
        j = s.report("P01")
        x = j["courses"][0]["sessions"][0]
        check(j["pending_journal_entries"] == 3 and x["pulses"] == 100 and
              x["stopped"] is None, j)
        check(rig.ok("pending") == "3", "the report synced nothing")
        # a client asked for a total refuses rather than answer low, and syncs nothing
        cl = subprocess.run([DRV, "pgclient", srv.conninfo(db), srv.journal(db + "-a")],
                            input="dose P01 C1\nsync\npending\nquit\n", capture_output=True,
                            text=True, timeout=60).stdout.splitlines()
        check(cl[0] == "ok open" and cl[1].startswith("err %d course database: 3 entries of "
                                                      "the journal" % -EAGAIN) and
              "a total read now could be low" in cl[1] and cl[2].startswith("err %d" % -EAGAIN)
              and cl[3] == "ok 3", cl)
        rig.ok("sync")
        j = s.report("P01")
        x = j["courses"][0]["sessions"][0]
        check(j["pending_journal_entries"] == 0 and x["pulses"] == 350 and
              x["end_reason"] == "stopped_early" and len(x["notes"]) == 1, j)
        r = s.course("P01")
        check("every entry is on the server" in r.stdout, r.stdout)
        cl = subprocess.run([DRV, "pgclient", srv.conninfo(db), srv.journal(db + "-a")],
                            input="dose P01 C1\nquit\n", capture_output=True, text=True,
                            timeout=60).stdout.splitlines()
        check(cl == ["ok open", "ok 1 350"], cl)
    finally:
        rig.close()
        s.close()


def test_pg_note_and_json():
    srv = pg.server()
    db = srv.new_db()
    s = pg_site(srv, db, srv.journal(db + "-a"))
    try:
        a, b, c, other = make_course(["pg", srv.conninfo(db), srv.journal(db + "-a")])
        r = s.course("note", "P01", "--session", str(a), "--adverse", "mild headache")
        check(r.returncode == 0 and "entered by %s" % ME in r.stdout, r.stderr)
        r = s.course("note", "P01", "--session", str(other), "--adverse", "x")
        check(r.returncode == 1 and "is not a session of patient P01" in r.stderr, r.stderr)
        r = s.course("note", "P01", "--session", "99999", "--adverse", "x")
        check(r.returncode == 1 and "session 99999 unknown" in r.stderr, r.stderr)
        j = s.report("P01")
        k = j["courses"][0]
        check(j["backend"] == "postgresql" and k["dose"] == {"sessions": 3, "pulses": 1750},
              j)
        check([n["text"] for n in k["sessions"][0]["notes"]] == ["mild headache"] and
              k["sessions"][0]["notes"][0]["entered_by"] == ME, k["sessions"][0])
        check(k["sessions"][1]["end_reason"] == "stopped_early" and
              len(k["sessions"][1]["notes"]) == 2, k["sessions"][1])
        r = s.course("P99")
        check(r.returncode == 1 and "patient P99 unknown" in r.stderr, r.stderr)
        check(srv.psql(db, "SELECT what || '|' || text FROM notes WHERE kind = 'adverse'")
              == "%s|mild headache" % ME, "on the server")
    finally:
        s.close()


def test_pg_no_journal_here():
    """On a machine that is not the rig: the report says it cannot count the journal."""
    srv = pg.server()
    db = srv.new_db()
    drv(["pg", srv.conninfo(db), srv.journal(db + "-a")],
        ["patient P01", "rx P01 C1 10 1 0 5000"])
    s = pg_site(srv, db, "/nonexistent/course-journal.db")
    try:
        r = s.course("P01")
        check(r.returncode == 0, r.stderr)
        check("MAY BE INCOMPLETE: journal /nonexistent/course-journal.db: No such file or "
              "directory" in r.stdout, r.stdout)
        j = s.report("P01")
        check(j["pending_journal_entries"] is None and "No such file" in j["pending_why"], j)
        check(not os.path.exists("/nonexistent"), "created")
    finally:
        s.close()


def test_pg_unreachable():
    srv = pg.server()
    port = free_port()
    s = Site("[course_db]\nbackend = postgresql\nconninfo = host=127.0.0.1 port=%d "
             "user=rpmsd dbname=x connect_timeout=5\n" % port)
    try:
        r = s.course("P01")
        check(r.returncode == 3 and r.stderr.startswith(
            "rpmsctl course: course database unreachable:") and str(port) in r.stderr,
            (r.returncode, r.stderr))
        check(srv.password not in r.stderr, "password in a message")
    finally:
        s.close()


if __name__ == "__main__":
    run_tests([
        test_sqlite_empty_course,
        test_sqlite_sessions_notes_text_and_json,
        test_sqlite_note_refused,
        test_sqlite_unknown_patient_and_course,
        test_bad_config,
        test_pg_report_counts_unsynced_journal,
        test_pg_note_and_json,
        test_pg_no_journal_here,
        test_pg_unreachable,
    ])
