#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The course database's PostgreSQL backend against a real server.

Starts Debian's PostgreSQL (initdb and pg_ctl as an unprivileged user in a
temporary directory, scram-sha-256, loopback only) and drives the module
through course_db_drv (tests/integration/course_db_drv.c), one process a
rig, one connection each:

  - two rigs racing for the same patient's daily slot: exactly one wins,
    round after round;
  - two rigs starting different patients at once: both win;
  - the server killed mid-session (pg_ctl -m immediate stop): pulse
    updates go to the rig's journal, starting a session is refused
    ("course database unreachable"), and after the restart the totals on
    the server are complete, from the same handle and from a rig that was
    stopped while the server was down;
  - migration of a version 1 database, and a newer schema refused.

Skipped (exit 77) when not root (initdb refuses root, so the test needs
root to create and switch to an unprivileged user) or when the PostgreSQL
server binaries (postgresql-15) are missing.
"""
import atexit
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile

from rpmsd_rig import Skip, check, free_port, run_tests

BUILD = os.environ.get("RPMSD_BUILD_ROOT",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build"))
DRV = os.path.join(BUILD, "tests", "integration", "course_db_drv")
PG_USER = "rpmsd-pgtest"
DAY0 = 1795737600  # 2026-11-27 00:00 UTC
DAY = 86400
HOUR = 3600
ENOTCONN = 107
EPERM = 1
EPROTONOSUPPORT = 93


class Server:
    """One PostgreSQL cluster for the whole file, a database per test."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if os.geteuid() != 0:
            raise Skip("needs root: initdb refuses root, so the test creates and "
                       "switches to the unprivileged user %s" % PG_USER)
        if not bins or not shutil.which("runuser"):
            raise Skip("PostgreSQL server binaries missing (apt-get install postgresql-15)")
        self.bin = os.path.dirname(bins[-1])
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", PG_USER],
                           check=True)
        self.dir = tempfile.mkdtemp(prefix="rpmsd-pg.")
        atexit.register(self.cleanup)
        shutil.chown(self.dir, PG_USER)
        self.password = secrets.token_hex(16)
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        shutil.chown(pwfile, PG_USER)
        os.mkdir(os.path.join(self.dir, "sock"))
        shutil.chown(os.path.join(self.dir, "sock"), PG_USER)
        self.port = free_port()
        self.as_user([os.path.join(self.bin, "initdb"), "-D", self.data(), "-A",
                      "scram-sha-256", "--pwfile=" + pwfile, "-U", "rpmsd"])
        self.start()
        # The rigs' journals: root's, like the daemon's state directory.
        self.rigdir = tempfile.mkdtemp(prefix="rpmsd-rigs.")
        self.dbs = 0

    def data(self):
        return os.path.join(self.dir, "data")

    def as_user(self, argv):
        r = subprocess.run(["runuser", "-u", PG_USER, "--"] + argv, capture_output=True,
                           text=True, cwd=self.dir)
        check(r.returncode == 0, "%s: %s%s" % (argv[0], r.stdout, r.stderr))

    def start(self):
        self.as_user([os.path.join(self.bin, "pg_ctl"), "-D", self.data(), "-l",
                      os.path.join(self.dir, "log"), "-o",
                      "-k %s/sock -c listen_addresses=127.0.0.1 -p %d"
                      % (self.dir, self.port), "-w", "start"])

    def kill(self):
        """Stop at once, as a crash would (no checkpoint, connections cut)."""
        self.as_user([os.path.join(self.bin, "pg_ctl"), "-D", self.data(), "-m",
                      "immediate", "-w", "stop"])

    def cleanup(self):
        subprocess.run(["runuser", "-u", PG_USER, "--", os.path.join(self.bin, "pg_ctl"),
                        "-D", self.data(), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if getattr(self, "rigdir", None):
            shutil.rmtree(self.rigdir, ignore_errors=True)

    def conninfo(self, db):
        return ("host=127.0.0.1 port=%d user=rpmsd password=%s dbname=%s connect_timeout=5"
                % (self.port, self.password, db))

    def psql(self, db, sql):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "rpmsd",
                            "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                           capture_output=True, text=True,
                           env=dict(os.environ, PGPASSWORD=self.password))
        check(r.returncode == 0, "psql %s: %s" % (sql, r.stderr))
        return r.stdout.strip()

    def new_db(self):
        self.dbs += 1
        name = "course%d" % self.dbs
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return name

    def journal(self, name):
        return os.path.join(self.rigdir, name + ".journal")


SERVER = None


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server()
    return SERVER


class Rig:
    """One course_db handle in its own process: one rig, one connection."""

    def __init__(self, srv, db, journal, target=0):
        self.p = subprocess.Popen([DRV, "pg", srv.conninfo(db), srv.journal(journal),
                                   str(target)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.opened = self.p.stdout.readline().strip()

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def recv(self):
        line = self.p.stdout.readline().strip()
        check(line, "course_db_drv exited")
        return line

    def cmd(self, line):
        self.send(line)
        return self.recv()

    def ok(self, line):
        r = self.cmd(line)
        check(r.startswith("ok"), "%s: %s" % (line, r))
        return r[3:]

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(timeout=60)


def day(k):
    return "%d %d" % (DAY0 + k * DAY, DAY0 + (k + 1) * DAY)


def two_rigs(rx):
    """Two rigs on a new database, patient P001 with course C1 under the
    limits @rx ("SESSIONS PER_DAY MIN_HOURS CAP")."""
    srv = server()
    db = srv.new_db()
    a, b = Rig(srv, db, db + "-a"), Rig(srv, db, db + "-b")
    check(a.opened == "ok open" and b.opened == "ok open", (a.opened, b.opened))
    a.ok("patient P001")
    a.ok("rx P001 C1 %s" % rx)
    return srv, db, a, b


def test_pg_race_same_patient():
    srv, db, a, b = two_rigs("1000 1 0 1000000")
    rounds = 40
    for k in range(rounds):
        t = DAY0 + k * DAY + 10 * HOUR
        line = "begin P001 C1 %%s %d %s" % (t, day(k))
        a.send(line % "rig1")
        b.send(line % "rig2")
        ra, rb = a.recv(), b.recv()
        wins = [r for r in (ra, rb) if r.startswith("ok")]
        losses = [r for r in (ra, rb) if r.startswith("err %d " % -EPERM)]
        check(len(wins) == 1 and len(losses) == 1, "round %d: %s / %s" % (k, ra, rb))
        # The loser read the winner's session, still running or already ended.
        check("max_sessions_per_day: 1 session(s) already began this day" in losses[0]
              or "is still running" in losses[0], losses[0])
        winner = a if ra.startswith("ok") else b
        winner.ok("end %s %d 10" % (wins[0].split()[1], t + HOUR))
    check(srv.psql(db, "SELECT COUNT(*) FROM sessions") == str(rounds), "sessions")
    a.close()
    b.close()


def test_pg_running_on_other_rig():
    """The refusal names the running session and the rig it runs on (read
    through the front end's limits, course_db_limits_read)."""
    _, _, a, b = two_rigs("10 3 0 1000000")
    sid = a.ok("begin P001 C1 rig1 %d %s" % (DAY0 + 8 * HOUR, day(0))).split()[0]
    r = b.cmd("begin P001 C1 rig2 %d %s" % (DAY0 + 9 * HOUR, day(0)))
    check(r.startswith("err %d " % -EPERM), r)
    check("session %s on rig rig1 is still running" % sid in r, r)
    a.ok("end %s %d 10" % (sid, DAY0 + 9 * HOUR))
    b.ok("begin P001 C1 rig2 %d %s" % (DAY0 + 9 * HOUR, day(0)))
    a.close()
    b.close()


def test_pg_two_patients():
    srv = server()
    db = srv.new_db()
    a, b = Rig(srv, db, db + "-a"), Rig(srv, db, db + "-b")
    for p in ("P001", "P002"):
        a.ok("patient %s" % p)
        a.ok("rx %s C1 1000 1 0 1000000" % p)
    for k in range(20):
        t = DAY0 + k * DAY + 10 * HOUR
        a.send("begin P001 C1 rig1 %d %s" % (t, day(k)))
        b.send("begin P002 C1 rig2 %d %s" % (t, day(k)))
        ra, rb = a.recv(), b.recv()
        check(ra.startswith("ok") and rb.startswith("ok"), "round %d: %s / %s" % (k, ra, rb))
        a.ok("end %s %d 10" % (ra.split()[1], t + HOUR))
        b.ok("end %s %d 10" % (rb.split()[1], t + HOUR))
    a.close()
    b.close()


def test_pg_server_killed_mid_session():
    srv = server()
    db = srv.new_db()
    a, b = Rig(srv, db, db + "-a"), Rig(srv, db, db + "-b")
    t = DAY0 + 10 * HOUR
    for p in ("P001", "P002", "P003"):
        a.ok("patient %s" % p)
        a.ok("rx %s C1 10 1 0 1000000" % p)
    sa = a.ok("begin P001 C1 rig1 %d %s" % (t, day(0)))
    sb = b.ok("begin P002 C1 rig2 %d %s" % (t, day(0)))
    a.ok("pulses %s 100" % sa)
    b.ok("pulses %s 50" % sb)
    check(a.ok("pending") == "0", "journal synced while the server is up")
    srv.kill()
    try:
        for n in (200, 300, 350):
            a.ok("pulses %s %d" % (sa, n))
        a.ok("pulses %s 120" % sa)  # lower: ignored, wherever it lands
        a.ok("note %s deviation %d stopped_early server down, kept" % (sa, t + 600))
        a.ok("end %s %d 400" % (sa, t + 1200))
        b.ok("pulses %s 70" % sb)
        check(int(a.ok("pending")) >= 6, "journal holds the updates")
        r = a.cmd("begin P003 C1 rig1 %d %s" % (t + 1300, day(0)))
        check(r.startswith("err %d course database unreachable:" % -ENOTCONN), r)
        r = a.cmd("daily P001 %s" % day(0))
        check(r.startswith("err %d course database unreachable" % -ENOTCONN), r)
        # Rig b stops while the server is down: its journal outlives it.
        b.close()
    finally:
        srv.start()
    check(a.ok("sync") == "", "sync")
    check(a.ok("pending") == "0", "journal empty after sync")
    b2 = Rig(srv, db, db + "-b")
    check(b2.opened == "ok open", b2.opened)
    check(b2.ok("pending") == "0", "rig b's journal synced on open")
    check(b2.ok("dose P001 C1") == "1 400", "P001's dose on the server")
    check(b2.ok("dose P002 C1") == "1 70", "P002's dose on the server")
    check(srv.psql(db, "SELECT stopped, stop_reason FROM sessions WHERE id = %s" % sa)
          == "%d|completed" % (t + 1200), "end synced")
    check(srv.psql(db, "SELECT COUNT(*) FROM notes WHERE session = %s" % sa) == "1",
          "the deviation synced once")
    a.close()
    b2.close()


def test_pg_migration_from_v1():
    srv = server()
    db = srv.new_db()
    a = Rig(srv, db, db + "-a", target=1)
    check(a.ok("version") == "1", "version 1 database")
    a.ok("patient P001")
    a.ok("rx P001 C1 10 1 0 5000")
    a.ok("begin P001 C1 rig1 %d %s" % (DAY0 + HOUR, day(0)))
    a.close()
    a = Rig(srv, db, db + "-a")
    check(a.opened == "ok open", a.opened)
    check(a.ok("version") == "3", "migrated to version 3")
    check(srv.psql(db, "SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                       "schema_version") == "1,2,3", "every step recorded")
    check(a.ok("dose P001 C1") == "1 0", "version 1's session kept")
    a.ok("note 1 adverse %d - mild tingling" % (DAY0 + 2 * HOUR))
    a.close()


def test_pg_newer_schema_refused():
    srv = server()
    db = srv.new_db()
    a = Rig(srv, db, db + "-a")
    a.close()
    srv.psql(db, "INSERT INTO schema_version VALUES (99, 0)")
    a = Rig(srv, db, db + "-a")
    check(a.opened.startswith("err %d " % -EPROTONOSUPPORT), a.opened)
    check("schema version 99 is newer than this rpmsd knows (3)" in a.opened, a.opened)
    a.close()
    check(srv.psql(db, "SELECT MAX(version) FROM schema_version") == "99", "left untouched")


if __name__ == "__main__":
    run_tests([
        test_pg_race_same_patient,
        test_pg_running_on_other_rig,
        test_pg_two_patients,
        test_pg_server_killed_mid_session,
        test_pg_migration_from_v1,
        test_pg_newer_schema_refused,
    ])
