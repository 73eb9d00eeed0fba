#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The course database's connection to a PostgreSQL server off the rig
(docs/course_db.md, "Security"), against a real server: the harness of
test_course_db.py (initdb and pg_ctl as an unprivileged user), here with
TLS on (a test CA and a server certificate made with openssl for
"localhost" and the site name pg.site.test), password_encryption =
scram-sha-256, and pg_hba "hostssl ... scram-sha-256".

A server "off the host" is one whose host (or hostaddr) is not a Unix
socket directory, localhost or a loopback address. The tests reach one as
host=pg.site.test hostaddr=127.0.0.1 (the name is what the certificate is
checked against, the address where libpq connects), so they need no
network; with an address of this machine other than loopback they also
use it as the host.

  - verify-full with the right CA: connects, over TLS (pg_stat_ssl);
  - a wrong CA: refused (certificate verify failed);
  - sslmode other than verify-full (or none, or from a service file) to a
    server off the host: refused by the check, naming course_db.conninfo
    and what to add, before anything reaches the server;
  - a server that asks for a cleartext password (pg_hba "password")
    instead of SCRAM: refused by channel binding before the password is
    sent;
  - a local connection (loopback, Unix socket) still needs no TLS.

Skipped like test_course_db.py (not root, no postgresql-15, no openssl).
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_course_db as h  # noqa: E402  (the one PostgreSQL harness)
from rpmsd_rig import Skip, check, run_tests  # noqa: E402

EPERM = 1
SITE = "pg.site.test"


def host_address():
    """An IPv4 address of this machine other than loopback, or None."""
    r = subprocess.run(["ip", "-4", "-o", "addr", "show", "up"], capture_output=True,
                       text=True)
    for m in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/", r.stdout):
        if not m.group(1).startswith("127."):
            return m.group(1)
    return None


ADDR = host_address()


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, cwd=cwd)
    check(r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr))


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
            "-out", name + ".crt", "-days", "2", "-subj", "/CN=rpmsd test CA %s" % name, cwd=d)
    return os.path.join(d, name + ".crt")


class TlsServer(h.Server):
    """The harness's server with TLS, SCRAM, and a user that pg_hba asks
    for a cleartext password (to show channel binding refuses it)."""

    def __init__(self):
        if not shutil.which("openssl"):
            raise Skip("openssl missing")
        self.configured = False
        super().__init__()
        self.pw_user_password = "cleartext-" + self.password[:8]
        self.psql("postgres", "CREATE ROLE rpmsd_pw LOGIN PASSWORD '%s'"
                  % self.pw_user_password)
        self.psql("postgres", "SELECT pg_reload_conf()")

    def configure(self):
        tls = os.path.join(self.dir, "tls")
        os.mkdir(tls)
        self.ca = make_ca(tls, "ca")
        self.wrong_ca = make_ca(tls, "other")
        san = "subjectAltName=DNS:localhost,DNS:%s,IP:127.0.0.1%s" % (
            SITE, ",IP:%s" % ADDR if ADDR else "")
        with open(os.path.join(tls, "ext"), "w") as f:
            f.write(san + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
                "server.csr", "-subj", "/CN=localhost", cwd=tls)
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext",
                cwd=tls)
        for f in ("server.crt", "server.key"):
            dst = os.path.join(self.data(), f)
            shutil.copy(os.path.join(tls, f), dst)
            shutil.chown(dst, h.PG_USER)
            os.chmod(dst, 0o600)
        with open(os.path.join(self.data(), "postgresql.conf"), "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    "password_encryption = 'scram-sha-256'\nlog_connections = on\n")
        # First match wins: the cleartext-password user, then SCRAM for everyone.
        with open(os.path.join(self.data(), "pg_hba.conf"), "w") as f:
            f.write("local all all scram-sha-256\n"
                    "hostssl all rpmsd_pw all password\n"
                    "hostssl all all all scram-sha-256\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")

    def start(self):
        if not self.configured:
            self.configure()
            self.configured = True
        listen = "127.0.0.1" + (",%s" % ADDR if ADDR else "")
        self.as_user([os.path.join(self.bin, "pg_ctl"), "-D", self.data(), "-l",
                      os.path.join(self.dir, "log"), "-o",
                      "-k %s/sock -c listen_addresses=%s -p %d"
                      % (self.dir, listen, self.port), "-w", "start"])

    def log(self):
        with open(os.path.join(self.dir, "log")) as f:
            return f.read()

    def remote(self, db, user="rpmsd", password=None, host=SITE, hostaddr="127.0.0.1",
               **extra):
        parts = ["host=%s" % host]
        if hostaddr:
            parts.append("hostaddr=%s" % hostaddr)
        parts += ["port=%d" % self.port, "user=%s" % user,
                  "password=%s" % (password or self.password), "dbname=%s" % db,
                  "connect_timeout=5"]
        parts += ["%s=%s" % kv for kv in extra.items()]
        return " ".join(parts)


SERVER = None


def server():
    global SERVER
    if SERVER is None:
        SERVER = TlsServer()
    return SERVER


def drv_open(srv, conninfo, journal, env=None):
    """Open through course_db_open in course_db_drv; its first line."""
    p = subprocess.Popen([h.DRV, "pg", conninfo, srv.journal(journal)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env)
    return p, p.stdout.readline().strip()


def drv_close(p):
    p.stdin.close()
    p.wait(timeout=60)


def test_pg_tls_verify_full():
    srv = server()
    db = srv.new_db()
    p, first = drv_open(srv, srv.remote(db, sslmode="verify-full", sslrootcert=srv.ca), db)
    try:
        check(first == "ok open", first)
        # the server sees this connection as TLS (psql's own is excluded)
        ssl = srv.psql(db, "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a "
                           "USING (pid) WHERE a.datname = '%s' AND a.pid <> "
                           "pg_backend_pid() AND a.usename = 'rpmsd'" % db)
        check(ssl == "t", "pg_stat_ssl: %r" % ssl)
        p.stdin.write("version\n")
        p.stdin.flush()
        check(p.stdout.readline().strip().startswith("ok"), "version")
    finally:
        drv_close(p)
    if ADDR:
        db = srv.new_db()
        p, first = drv_open(srv, srv.remote(db, host=ADDR, hostaddr=None,
                                            sslmode="verify-full", sslrootcert=srv.ca), db)
        drv_close(p)
        check(first == "ok open", "host=%s: %s" % (ADDR, first))


def test_pg_tls_wrong_ca_refused():
    srv = server()
    db = srv.new_db()
    p, first = drv_open(srv, srv.remote(db, sslmode="verify-full", sslrootcert=srv.wrong_ca),
                        db)
    drv_close(p)
    check(first.startswith("err ") and "certificate verify failed" in first, first)


def test_pg_off_host_needs_verify_full():
    """Refused by the check, nothing sent: the server never sees a login."""
    srv = server()
    db = "neverreached"
    cases = [{"sslmode": m} for m in ("disable", "allow", "prefer", "require", "verify-ca")]
    cases.append({})
    for extra in cases:
        for mode in ("pg", "pgcheck"):
            ci = srv.remote(db, **extra)
            argv = [h.DRV, "pg", ci, srv.journal("refused")] if mode == "pg" else \
                [h.DRV, "pgcheck", ci]
            r = subprocess.run(argv, input="", capture_output=True, text=True, timeout=60)
            want = ("err %d course_db.conninfo: the server '%s' is not on this host, so the "
                    "connection must be TLS with the server's certificate verified (sslmode "
                    "is '%s'): add sslmode=verify-full and sslrootcert=FILE"
                    % (-EPERM, SITE, extra.get("sslmode", "prefer")))
            check(r.stdout.startswith(want), "%s %r: %r" % (mode, extra, r.stdout))
            check("~/.postgresql/root.crt" in r.stdout, r.stdout)
    if ADDR:
        r = subprocess.run([h.DRV, "pgcheck", srv.remote(db, host=ADDR, hostaddr=None,
                                                         sslmode="disable")],
                           capture_output=True, text=True, timeout=60)
        check(r.stdout.startswith("err %d course_db.conninfo: the server '%s' is not on "
                                  "this host" % (-EPERM, ADDR)), r.stdout)
    # what libpq would take from a service file and the environment is checked too
    svc = os.path.join(srv.dir, "pg_service.conf")
    with open(svc, "w") as f:
        f.write("[site]\nhost=%s\nhostaddr=127.0.0.1\nport=%d\nsslmode=disable\n"
                % (SITE, srv.port))
    env = dict(os.environ, PGSERVICEFILE=svc)
    r = subprocess.run([h.DRV, "pgcheck", "service=site dbname=%s user=rpmsd" % db],
                       capture_output=True, text=True, timeout=60, env=env)
    check(r.stdout.startswith("err %d course_db.conninfo: the server '%s'" % (-EPERM, SITE)),
          "service file: %r" % r.stdout)
    env = dict(os.environ, PGSSLMODE="require", PGHOST=SITE, PGHOSTADDR="127.0.0.1")
    r = subprocess.run([h.DRV, "pgcheck", "dbname=%s user=rpmsd" % db],
                       capture_output=True, text=True, timeout=60, env=env)
    check(r.stdout.startswith("err %d course_db.conninfo" % -EPERM) and
          "(sslmode is 'require')" in r.stdout, "environment: %r" % r.stdout)
    # and verify-full passes the check
    r = subprocess.run([h.DRV, "pgcheck", srv.remote(db, sslmode="verify-full",
                                                     sslrootcert=srv.ca)],
                       capture_output=True, text=True, timeout=60)
    check(r.stdout.strip() == "ok check", r.stdout)
    log = srv.log()
    check("database=%s" % db not in log and "authentication failed" not in log,
          "the server saw a login for a refused conninfo:\n" + log[-3000:])


def test_pg_cleartext_password_method_refused():
    """pg_hba asks rpmsd_pw for a cleartext password (over TLS): channel
    binding, demanded off the host, refuses it before the password goes."""
    srv = server()
    db = srv.new_db()
    p, first = drv_open(srv, srv.remote(db, user="rpmsd_pw", password=srv.pw_user_password,
                                        sslmode="verify-full", sslrootcert=srv.ca), db + "-pw")
    drv_close(p)
    check(first.startswith("err ") and "channel binding" in first, first)


def test_pg_local_needs_no_tls():
    srv = server()
    db = srv.new_db()
    for ci in ("host=127.0.0.1 port=%d user=rpmsd password=%s dbname=%s sslmode=disable"
               % (srv.port, srv.password, db),
               "host=%s/sock port=%d user=rpmsd password=%s dbname=%s"
               % (srv.dir, srv.port, srv.password, db)):
        p, first = drv_open(srv, ci, db + "-local")
        drv_close(p)
        check(first == "ok open", "%s: %s" % (ci, first))


if __name__ == "__main__":
    run_tests([
        test_pg_tls_verify_full,
        test_pg_tls_wrong_ca_refused,
        test_pg_off_host_needs_verify_full,
        test_pg_cleartext_password_method_refused,
        test_pg_local_needs_no_tls,
    ])
