#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Outcome assessments and clinical scores (course database schema 3) on the
real PostgreSQL server of test_course_db.py's harness, through course_db_drv:

  - a version 2 database migrated to 3 on the server, its sessions and
    notes kept, the new tables taking assessments and scores;
  - an assessment written while the server is down goes to the rig's
    journal and reaches the server once, with every result; the same journal
    entry replayed (a crash between the server's commit and the journal's
    delete) adds nothing;
  - a score needs the server (refused "unreachable" while it is down, never
    journalled); its ranges are checked before the server sees it and again
    by the schema (a row written around the API is refused by the server).

Skipped (exit 77) where test_course_db.py's tests skip.
"""
import os
import sqlite3

import test_course_db as pg
from rpmsd_rig import check, run_tests

EINVAL = 22
ERANGE = 34
EPERM = 1


def session(srv, db, rig, patient="P001"):
    rig.ok("patient %s" % patient)
    rig.ok("rx %s C1 10 2 0 100000" % patient)
    return rig.ok("begin %s C1 rig1 %d %s" % (patient, pg.DAY0 + 10 * pg.HOUR, pg.day(0)))


def test_pg_outcomes_migration_v2():
    srv = pg.server()
    db = srv.new_db()
    a = pg.Rig(srv, db, db + "-a", target=2)
    check(a.ok("version") == "2", "version 2 database")
    s = session(srv, db, a)
    a.ok("note %s deviation %d what kept" % (s, pg.DAY0 + 11 * pg.HOUR))
    a.close()
    a = pg.Rig(srv, db, db + "-a")
    check(a.opened == "ok open", a.opened)
    check(a.ok("version") == "3", "migrated to version 3")
    check(srv.psql(db, "SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                       "schema_version") == "1,2,3", "every step recorded")
    check(srv.psql(db, "SELECT COUNT(*) FROM notes") == "1", "version 2's note kept")
    a.ok("assess %s pre rest %d 2.5 60 FCR/rms_uv=4.5,FCR/active_pct=12.25"
         % (s, pg.DAY0 + 11 * pg.HOUR))
    a.ok("score P001 %s pre mas elbow_flexors 1+" % s)
    out = a.ok("outcomes P001")
    check("A:%s:pre:rest:2.5:60:FCR/active_pct=12.25;FCR/rms_uv=4.5" % s in out, out)
    check("S:%s:pre:modified_ashworth:elbow_flexors:1+:" % s in out, out)
    a.close()


def test_pg_assessment_journalled():
    srv = pg.server()
    db = srv.new_db()
    a = pg.Rig(srv, db, db + "-a")
    s = session(srv, db, a)
    journal = srv.journal(db + "-a")
    srv.kill()
    try:
        a.ok("assess %s post rest %d 1800 60 FCR/rms_uv=3.25,ECR/rms_uv=2.125,"
             "FCR/bursts_per_min=4" % (s, pg.DAY0 + 11 * pg.HOUR))
        check(a.ok("pending") == "1", "the assessment waits in the journal")
        r = a.cmd("score P001 %s post fm 40" % s)
        check(r.startswith("err %d course database unreachable" % -pg.ENOTCONN), r)
        # The entry as the journal holds it, to replay it later.
        with sqlite3.connect(journal) as j:
            row = j.execute("SELECT seq, op, session, at, n, x, y, a, b FROM journal").fetchone()
        check(row and row[1] == "assess", "journal entry %r" % (row,))
    finally:
        srv.start()
    check(a.ok("sync") == "", "sync")
    check(a.ok("pending") == "0", "journal empty after sync")
    check(srv.psql(db, "SELECT COUNT(*) FROM assessments") == "1", "one assessment")
    check(srv.psql(db, "SELECT string_agg(channel || '/' || name || '=' || value, ',' "
                       "ORDER BY channel, name) FROM assessment_results")
          == "ECR/rms_uv=2.125,FCR/bursts_per_min=4,FCR/rms_uv=3.25", "every result, exact")
    check(srv.psql(db, "SELECT phase, kind, onset, duration FROM assessments")
          == "post|rest|1800|60", "phase, kind and the EDF+ stretch")
    check(srv.psql(db, "SELECT COUNT(*) FROM scores") == "0", "no score while down")
    a.close()
    # A crash between the server's commit and the journal's delete: replayed, harmless.
    with sqlite3.connect(journal) as j:
        j.execute("INSERT INTO journal (seq, op, session, at, n, x, y, a, b) VALUES "
                  "(?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    b = pg.Rig(srv, db, db + "-a")
    check(b.opened == "ok open", b.opened)
    check(b.ok("sync") == "" and b.ok("pending") == "0", "replayed")
    check(srv.psql(db, "SELECT COUNT(*) FROM assessments") == "1", "still one assessment")
    check(srv.psql(db, "SELECT COUNT(*) FROM assessment_results") == "3", "still three results")
    b.close()


def test_pg_scores_validated():
    srv = pg.server()
    db = srv.new_db()
    a = pg.Rig(srv, db, db + "-a")
    s = session(srv, db, a)
    other = session(srv, db, a, "P002")
    for g in ("0", "1", "1+", "2", "3", "4"):
        check(int(a.ok("score P001 %s pre mas FCR %s" % (s, g))) > 0, "grade %s" % g)
    for g in ("5", "1-", "2+"):
        r = a.cmd("score P001 %s pre mas FCR %s" % (s, g))
        check(r.startswith("err %d Modified Ashworth grade '%s' is not one of" % (-ERANGE, g)), r)
    r = a.cmd("score P001 %s pre fm 67" % s)
    check(r.startswith("err %d Fugl-Meyer UE 67 is out of range (0..66)" % -ERANGE), r)
    r = a.cmd("score P001 %s pre tardieu FCR 90 200" % s)
    check(r.startswith("err %d Modified Tardieu of FCR: R1 90 and R2 200" % -ERANGE), r)
    r = a.cmd("score P001 %s pre fm 30" % other)
    check(r.startswith("err %d" % -EPERM) and "not a session of patient P001" in r, r)
    a.ok("score P001 %s post tardieu FCR 95 150" % s)
    a.ok("score P001 0 post fm 66")
    out = a.ok("outcomes P001")
    check("S:%s:post:modified_tardieu:FCR::95:150:-1" % s in out, out)
    check("S:0:post:fugl_meyer_ue:::nan:nan:66" in out, out)
    check(srv.psql(db, "SELECT COUNT(*) FROM scores") == "8", "8 scores stored")
    # The server's CHECK constraints refuse what the front end would have.
    r = srv_psql_fails(srv, db, "INSERT INTO scores (patient, course, phase, instrument, "
                                "muscle, mas_grade, author, at) VALUES ('P001', 'C1', 'pre', "
                                "'modified_ashworth', 'FCR', '5', 'x', 0)")
    check(r, "the server refused MAS 5")
    a.close()


def srv_psql_fails(srv, db, sql):
    try:
        srv.psql(db, sql)
    except AssertionError:
        return True
    return False


if __name__ == "__main__":
    run_tests([
        test_pg_outcomes_migration_v2,
        test_pg_assessment_journalled,
        test_pg_scores_validated,
    ])
