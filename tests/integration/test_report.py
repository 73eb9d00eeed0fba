#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rpms-report (docs/report.md): a course run by the real rpmsd on SQLite,
rendered as HTML and checked against the course database, read here on its
own with sqlite3:

  - two sessions (test_course_session.py's helpers): the first full, with a
    rest assessment pre and post (the control command `assess`), the second
    stopped early (a deviation) with no assessment; an adverse-event note
    (`rpmsctl course note`) and scores (`rpmsctl score`: MAS, Tardieu per
    session, Fugl-Meyer per course);
  - the HTML parses (html.parser), is self-contained (no URL but data:), every
    image is a PNG that decodes (signature, IHDR size, matplotlib reads it);
  - every number of the tables is the database's: pulses delivered and
    prescribed, cumulative, motor threshold and intensity, rest RMS, bursts a
    minute and % active pre/post (the second session a gap: a dash, not 0),
    the scores, the deviations and adverse notes with their times;
  - no stretch assessment: the report says so; stretch assessments as
    `assess stretch` stores them (course_db_drv), accepted and refused, give
    TSRT, n and R² pre/post (the last block of a phase; a refused fit says
    why), every block's counts and the DSRT/velocity of each stretch plotted;
  - a blinded course: its arm code, nothing that names the arm;
  - an unknown course: a clear error, exit 1, no file written;
  - PostgreSQL (the real server of test_course_db.py's harness, skipped
    with it): journal entries not on the server are said at the top.
"""

import atexit
import base64
import datetime
import html.parser
import io
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import test_control as tc  # noqa: E402
import test_course_session as tcs  # noqa: E402

TOOL = os.path.join(rig.SOURCE, "tools", "rpms-report")
TMP = tempfile.mkdtemp(prefix="rpmsd-report-")
atexit.register(shutil.rmtree, TMP, True)
PATIENT, COURSE, PULSES = "P-R1", "C-R1", 20
DASH = "\u2014"


class Course:
    """The course of the real daemon: its configuration and database."""
    conf_path = None


def rest_block(d, phase):
    """A 1 s rest block (the control command), until one is stored: a block
    right after the last pulse may hold its stimulation blank, and is then
    published unstored (docs/outcomes.md); the next one is clear of it."""
    for _ in range(5):
        t = tcs.time.monotonic()
        d.ok({"cmd": "assess", "kind": "rest", "phase": phase, "seconds": 1})
        ev = d.wait_for(lambda: [e for e in d.of("rpms.state", since=t, state="assessment")
                                 if e["phase"] == phase], tcs.WAIT_S + 30,
                        "the %s rest block on rpms.state" % phase)
        if ev[0]["stored"]:
            return
        check(ev[0]["code"] == -125, ev)
    raise AssertionError("no %s rest block stored in 5" % phase)


def course():
    """Session 1: rest pre, 20 pulses, rest post. Session 2: stopped after
    some pulses (a deviation), no assessment. Then an adverse note and
    scores. Built once."""
    if Course.conf_path:
        return Course
    rx = tcs.rx_dir((PATIENT, COURSE, 3, PULSES, tcs.MT))
    state = rig.state_dir()
    conf = tcs.course_conf(rx, state)
    conf["safety"]["day_zone"] = "UTC"
    d = tc.Daemon(conf)
    try:
        r = tcs.start(d, PATIENT, "S1", COURSE, 45)
        check(r["ok"], r)
        d.wait_for(lambda: d.ok({"cmd": "status"})["acquisition"]["calibrated"] == 1,
                   tcs.WAIT_S, "calibrated")
        rest_block(d, "pre")
        t = tcs.time.monotonic()
        d.ok({"cmd": "arm"})
        tcs.wait_pulses(d, PULSES, t)
        d.wait_for(lambda: not d.ok({"cmd": "status"})["armed"], tcs.WAIT_S,
                   "the open loop disarming after its pulses")
        rest_block(d, "post")
        check(d.ok({"cmd": "session_stop"})["pulses_session"] == PULSES, "session 1")
        t = tcs.time.monotonic()
        r = tcs.start(d, PATIENT, "S2", COURSE, 47.5)
        check(r["ok"], r)
        d.ok({"cmd": "arm"})
        tcs.wait_pulses(d, 3, t)
        d.ok({"cmd": "disarm"})
        stop = d.ok({"cmd": "session_stop", "reason": "patient asked to stop"})
        check(0 < stop["pulses_session"] < PULSES and "deviation" in stop, stop)
    finally:
        d.stop()
    Course.conf_path = d.path
    Course.db = os.path.join(state, "course.db")
    ids = [i for (i,) in db_rows("SELECT id FROM sessions ORDER BY id")]
    check(len(ids) == 2, ids)
    Course.ids = ids
    for args in (["course", "note", PATIENT, "--session", str(ids[1]), "--adverse",
                  "skin redness under the coil <b>resolved</b> & 10 min"],
                 ["score", PATIENT, "--session", str(ids[0]), "--pre", "--mas",
                  "elbow_flexors=2", "--mas", "wrist_flexors=1+", "--tardieu", "FCR=95,150"],
                 ["score", PATIENT, "--session", str(ids[0]), "--post", "--mas",
                  "elbow_flexors=1+", "--tardieu", "FCR=100.5,150"],
                 ["score", PATIENT, "--course", COURSE, "--pre", "--fugl-meyer", "31"],
                 ["score", PATIENT, "--course", COURSE, "--post", "--fugl-meyer", "38"]):
        r = subprocess.run([rig.RPMSCTL] + args + ["--config", d.path], capture_output=True,
                           text=True, timeout=120)
        check(r.returncode == 0, "rpmsctl %s: %s" % (" ".join(args), r.stderr))
    return Course


def db_rows(sql, args=()):
    return tcs.sqlite_rows(Course.db, sql, args)


def render(out, *extra, course_id=COURSE, conf=None):
    args = [sys.executable, TOOL, course_id, "-o", out, "--config", conf or course().conf_path,
            "--rpmsctl", rig.RPMSCTL, "--rpmsd", rig.RPMSD]
    return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, MPLBACKEND="Agg"))


class Page(html.parser.HTMLParser):
    """The report's tables (by id: header and rows of cell text), images, text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.images, self.urls, self.text = {}, [], [], []
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href"):
            if k in a:
                self.urls.append(a[k])
        if tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self.lasttag in ("style", "title", "script"):
            return
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def parse(path):
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    p.close()
    p.all = " ".join(" ".join(p.text).split())
    return p


def rows_of(page, tid):
    """The rows of table @tid as dicts by header."""
    check(tid in page.tables, "no table %s in %s" % (tid, sorted(page.tables)))
    head, *rows = page.tables[tid]
    return [dict(zip(head, r)) for r in rows]


def num(v, digits):
    return DASH if v is None else "%.*f" % (digits, v)


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


_page = []


def page():
    if not _page:
        out = os.path.join(TMP, "report.html")
        r = render(out)
        check(r.returncode == 0, "rpms-report: %d %s" % (r.returncode, r.stderr))
        _page.append(parse(out))
    return _page[0]


# ---- the tests ------------------------------------------------------------------------

def test_self_contained_pngs():
    """Every image is an embedded PNG that decodes; nothing is fetched."""
    p = page()
    check(len(p.images) == 5, "plots: dose, cumulative, MT, rest, scores: %d" % len(p.images))
    check(all(u.startswith("data:image/png;base64,") for u in p.urls), p.urls)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image
    for src in p.images:
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        check(raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR", raw[:16])
        w, h = struct.unpack(">II", raw[16:24])
        check(300 <= w <= 2000 and 150 <= h <= 3000, "PNG %dx%d" % (w, h))
        img = matplotlib.image.imread(io.BytesIO(raw), format="png")
        check(img.shape[0] == h and img.shape[1] == w, img.shape)


def test_header_and_dose():
    """The header, pulses per session and cumulative: the database's."""
    c = course()
    p = page()
    for want in ("patient %s" % PATIENT, "course %s" % COURSE,
                 "target motor_point wrist_extensors, left",
                 "intensity rule 120 % of the session's measured motor threshold",
                 "protocol on_off, 20 pulses a session", "in UTC (safety.day_zone)"):
        check(want in p.all, "header: %r not in %s" % (want, p.all[:600]))
    check("INCOMPLETE" not in p.all, "SQLite has no journal: nothing pending")
    db = db_rows("SELECT id, pulses, started, stop_reason FROM sessions ORDER BY id")
    dose = rows_of(p, "dose")
    check(len(dose) == len(db) == 2, dose)
    cum = 0
    for n, (row, (sid, pulses, started, reason), crow) in enumerate(
            zip(dose, db, rows_of(p, "cumulative")), 1):
        check(row["session"] == str(n) and row["id"] == str(sid) and
              row["delivered"] == str(pulses) and row["prescribed"] == str(PULSES) and
              row["started"] == utc(started) and row["arm code"] == DASH, row)
        check(row["% of prescribed"] == "%.1f" % (100.0 * pulses / PULSES), row)
        cum += pulses
        check(crow == {"session": str(n), "delivered": str(cum),
                       "prescribed": str(PULSES * n), "course": str(PULSES * 5)}, crow)
    check(dose[1]["ended"].startswith("patient asked to stop at"), dose[1])
    (total,) = db_rows("SELECT pulses FROM course_dose WHERE course = ?", (COURSE,))
    check("delivered 2 of 5 sessions, %d pulses of 100 prescribed" % total[0] in p.all,
          p.all[:800])
    check(c.ids, c)


def test_motor_threshold():
    p = page()
    db = db_rows("SELECT motor_threshold_pct, intensity_pct FROM sessions ORDER BY id")
    mt = rows_of(p, "motor_threshold")
    check([(r["motor threshold % MSO"], r["intensity % MSO"]) for r in mt] ==
          [(num(a, 1), num(b, 1)) for a, b in db], (mt, db))
    check(db == [(45.0, 54.0), (47.5, 57.0)], db)
    check([r["intensity % MT"] for r in mt] == ["120.0", "120.0"], mt)


def test_rest_activity():
    """Pre and post of session 1 per channel, the database's to 2 decimals;
    session 2 had no block: dashes, never 0."""
    c = course()
    p = page()
    rest = rows_of(p, "rest")
    chans = sorted({ch for (ch,) in db_rows("SELECT DISTINCT channel FROM "
                                            "assessment_results")})
    check(chans and len(rest) == 2 * len(chans), (rest, chans))
    for row in rest:
        sid = c.ids[int(row["session"]) - 1]
        for name in ("rms_uv", "bursts_per_min", "active_pct"):
            for phase in ("pre", "post"):
                got = db_rows("SELECT r.value FROM assessments a JOIN assessment_results r ON "
                              "r.assessment = a.id WHERE a.session = ? AND a.phase = ? AND "
                              "a.kind = 'rest' AND r.channel = ? AND r.name = ? ORDER BY "
                              "a.at DESC, a.id DESC LIMIT 1",
                              (sid, phase, row["channel"], name))
                want = num(got[0][0], 2) if got else DASH
                check(row["%s %s" % (name, phase)] == want,
                      "session %s %s %s %s: report %r, database %r"
                      % (row["session"], row["channel"], name, phase,
                         row["%s %s" % (name, phase)], got))
    s2 = [r for r in rest if r["session"] == "2"]
    check(all(r["rms_uv pre"] == DASH and r["blocks"] == "none" for r in s2), s2)
    s1 = [r for r in rest if r["session"] == "1"]
    check(all(r["rms_uv pre"] != DASH and r["blocks"] == "1 pre, 1 post" for r in s1), s1)
    check("no stretch assessments in this course" in p.all, "the TSRT note")
    check("stretch" not in p.tables, p.tables.keys())


def test_scores_and_notes():
    """Scores and notes: every row of the database, with its time."""
    c = course()
    p = page()
    scores = rows_of(p, "scores")
    db = db_rows("SELECT at, session, phase, instrument, muscle, mas_grade, r1_deg, r2_deg, "
                 "fugl_meyer, author FROM scores ORDER BY at, id")
    check(len(scores) == len(db) == 7, (scores, db))
    for row, (at, sess, phase, inst, muscle, mas, r1, r2, fm, author) in zip(scores, db):
        check(row["entered"] == utc(at) and row["phase"] == phase and
              row["entered by"] == author and
              row["session"] == ("course" if sess is None else
                                 str(c.ids.index(sess) + 1)), (row, at, sess))
        check(row["muscle"] == (muscle or DASH), row)
        want = {"modified_ashworth": mas,
                "modified_tardieu": "R1 %g, R2 %g, R2-R1 %g" % (r1 or 0, r2 or 0,
                                                               (r2 or 0) - (r1 or 0)),
                "fugl_meyer_ue": "%s/66" % fm}[inst]
        check(row["value"] == want, "%r != %r" % (row, want))
    notes = rows_of(p, "notes")
    db = db_rows("SELECT at, session, kind, what, text FROM notes ORDER BY at, id")
    check(len(notes) == len(db) == 2, (notes, db))
    for row, (at, sess, kind, what, text) in zip(notes, db):
        check(row["time"] == utc(at) and row["session"] == str(c.ids.index(sess) + 1) and
              row["text"] == text, (row, text))
        if kind == "adverse":
            check(row["kind"] == "ADVERSE EVENT" and row["what"] == "entered by " + what, row)
        else:
            check(row["kind"] == "deviation" and row["what"] == what, row)
    # the note's markup is text, escaped, never HTML
    check("<b>resolved</b> & 10 min" in notes[-1]["text"] or
          "<b>resolved</b> & 10 min" in notes[0]["text"], notes)


def test_unknown_course():
    """An unknown course: named in a clear error, exit 1, nothing written."""
    out = os.path.join(TMP, "unknown.html")
    r = render(out, course_id="C-404")
    check(r.returncode == 1 and "C-404" in r.stderr, (r.returncode, r.stderr))
    check(not os.path.exists(out), "a refused report wrote %s" % out)
    r = render(out, "--patient", PATIENT, course_id="C-404")
    check(r.returncode == 1 and "C-404" in r.stderr, (r.returncode, r.stderr))
    check(not os.path.exists(out) and
          not [f for f in os.listdir(TMP) if f.startswith(".rpms-report-")],
          "a refused report left files")
    # an output directory that does not exist: a local error, nothing written
    r = render(os.path.join(TMP, "none", "r.html"))
    check(r.returncode == 4 and "none" in r.stderr, (r.returncode, r.stderr))


def stretch_results(ch, stretches, fitted, no_onset, not_at_rest, fit, points):
    """The results of a stretch block as `assess stretch` stores them: the counts,
    tsrt_deg/slope_s/r2 only when @fit (tsrt, slope, r2), and s<k>.velocity_dps,
    s<k>.dsrt_deg of each fitted stretch (@points)."""
    r = {"stretches": stretches, "n": fitted, "no_onset": no_onset, "not_at_rest": not_at_rest}
    if fit:
        r.update(zip(("tsrt_deg", "slope_s", "r2"), fit))
    for k, (v, d) in enumerate(points, 1):
        r["s%d.velocity_dps" % k] = v
        r["s%d.dsrt_deg" % k] = d
    return ",".join("%s/%s=%r" % (ch, k, v) for k, v in r.items())


def line(tsrt, slope, velocities, noise):
    return [(v, round(tsrt + slope * v + e, 3)) for v, e in zip(velocities, noise)]


# (session, phase, seconds into the session, results): session 1 pre accepted,
# post refused (5 fitted stretches); session 2 pre accepted (exactly 7), post an
# accepted block then a later refused one (velocity range too narrow): the last
# block is the one tabled, its missing TSRT a dash, not the earlier block's.
STRETCH_BLOCKS = [
    (0, "pre", 100, stretch_results("FCR", 9, 8, 1, 0, (71.25, -0.1875, 0.912), line(
        71.25, -0.1875, [40, 60, 85, 110, 140, 170, 200, 240],
        [0.4, -0.3, 0.2, -0.5, 0.1, 0.6, -0.2, 0.0]))),
    (0, "post", 1900, stretch_results("FCR", 6, 5, 0, 1, None, line(
        80.0, -0.15, [50, 90, 130, 170, 210], [0, 0.5, -0.5, 0.2, 0]))),
    (1, "pre", 100, stretch_results("FCR", 7, 7, 0, 0, (76.5, -0.2, 0.855), line(
        76.5, -0.2, [35, 60, 90, 120, 150, 180, 210], [0.3, -0.4, 0.0, 0.6, -0.1, -0.3, 0.2]))),
    (1, "post", 1800, stretch_results("FCR", 8, 8, 0, 0, (88.5, -0.25, 0.7), line(
        88.5, -0.25, [40, 70, 100, 130, 160, 190, 220, 250], [0] * 8))),
    (1, "post", 1900, stretch_results("FCR", 10, 8, 2, 0, None, line(
        85.0, -0.2, [60, 65, 70, 72, 75, 78, 80, 82], [0.2, 0, -0.2, 0.1, 0, 0.3, -0.1, 0]))),
]


def fit_of(res):
    """What the report must say of a block's fit, from its stored results."""
    if "tsrt_deg" in res:
        return "accepted"
    if res["n"] < 7:
        return "refused: %d stretches, 7 needed" % res["n"]
    return "refused: velocity range too narrow"


def test_stretch_tsrt():
    """Stretch blocks as `assess stretch` stores them (through the course_db
    API, course_db_drv): TSRT, n and R² pre/post per session from the last
    block of a phase, a refused fit said why (too few stretches, velocity
    range too narrow) and a gap, never an earlier block's TSRT; every block's
    counts; the DSRT and velocity of each fitted stretch of the latest
    session, as plotted. Every number checked against the database."""
    import test_course_report as cr
    s = cr.Site()
    try:
        t = [cr.DAY0 + 10 * cr.HOUR, cr.DAY0 + cr.DAY + 10 * cr.HOUR]
        a = cr.drv(["sqlite", s.db], ["patient P01", "rx P01 C1 10 1 20 5000",
                                      "begin P01 C1 rig1 %d %s" % (t[0], cr.day(0))])[2]
        cr.drv(["sqlite", s.db], ["endr %s %d 1200 completed" % (a, t[0] + 2000)])
        b = cr.drv(["sqlite", s.db], ["begin P01 C1 rig1 %d %s" % (t[1], cr.day(1))])[0]
        sid = [a, b]
        cr.drv(["sqlite", s.db], ["assess %s %s stretch %d %d 60 %s"
                                  % (sid[n], phase, t[n] + dt, dt, res)
                                  for n, phase, dt, res in STRETCH_BLOCKS])
        with sqlite3.connect(s.db) as h:
            h.execute("UPDATE prescriptions SET text = ?", (cr.RX,))
            db = {}
            for (aid, sess, phase, at, ch, name, value) in h.execute(
                    "SELECT a.id, a.session, a.phase, a.at, r.channel, r.name, r.value FROM "
                    "assessments a JOIN assessment_results r ON r.assessment = a.id WHERE "
                    "a.kind = 'stretch' ORDER BY a.at, a.id"):
                blk = db.setdefault(aid, {"session": str(sess), "phase": phase, "at": at,
                                          "res": {}})
                blk["res"][name] = value
                check(ch == "FCR", ch)
        h.close()
        blocks = list(db.values())
        check(len(blocks) == len(STRETCH_BLOCKS), blocks)
        out = os.path.join(TMP, "stretch.html")
        r = render(out, "--patient", "P01", course_id="C1", conf=s.conf)
        check(r.returncode == 0, r.stderr)
        p = parse(out)
        check(len(p.images) == 5, "dose, cumulative, MT, TSRT, DSRT: %d" % len(p.images))
        check("no stretch assessments" not in p.all and "no rest assessments" in p.all, p.all)
        check("target nerve_trunk radial, right" in p.all, p.all[:600])

        # pre/post: the last block of each phase, against the database
        rows = rows_of(p, "stretch")
        check(len(rows) == 2, rows)
        for n, row in enumerate(rows):
            check(row["session"] == str(n + 1) and row["channel"] == "FCR", row)
            mine = [x for x in blocks if x["session"] == sid[n]]
            for phase in ("pre", "post"):
                last = [x for x in mine if x["phase"] == phase][-1]["res"]
                check(row["tsrt_deg " + phase] == num(last.get("tsrt_deg"), 2) and
                      row["r2 " + phase] == num(last.get("r2"), 3) and
                      row["n " + phase] == "%d" % last["n"] and
                      row["fit " + phase] == fit_of(last),
                      "session %d %s: %r, database %r" % (n + 1, phase, row, last))
        check([(r["tsrt_deg pre"], r["fit pre"], r["tsrt_deg post"], r["fit post"], r["blocks"])
               for r in rows] ==
              [("71.25", "accepted", DASH, "refused: 5 stretches, 7 needed", "1 pre, 1 post"),
               ("76.50", "accepted", DASH, "refused: velocity range too narrow",
                "1 pre, 2 post")], rows)

        # every block, in time order
        rows = rows_of(p, "stretch_blocks")
        check(len(rows) == len(blocks), rows)
        for row, x in zip(rows, blocks):
            res = x["res"]
            check(row["session"] == str(sid.index(x["session"]) + 1) and
                  row["phase"] == x["phase"] and row["at"] == utc(x["at"]) and
                  [row[k] for k in ("stretches", "n", "no_onset", "not_at_rest")] ==
                  ["%d" % res[k] for k in ("stretches", "n", "no_onset", "not_at_rest")] and
                  row["tsrt_deg"] == num(res.get("tsrt_deg"), 2) and
                  row["slope_s"] == num(res.get("slope_s"), 4) and
                  row["r2"] == num(res.get("r2"), 3) and row["fit"] == fit_of(res),
                  "block %r, database %r" % (row, x))

        # the scatter: session 2's last pre and last post block, each stretch
        rows = rows_of(p, "dsrt")
        want = []
        for phase in ("pre", "post"):
            res = [x for x in blocks if x["session"] == sid[1] and x["phase"] == phase][-1]["res"]
            for k in range(1, int(res["n"]) + 1):
                want.append({"session": "2", "phase": phase, "channel": "FCR",
                             "stretch": str(k),
                             "velocity_dps": num(res["s%d.velocity_dps" % k], 2),
                             "dsrt_deg": num(res["s%d.dsrt_deg" % k], 2)})
        check(rows == want, "DSRT table %r, database %r" % (rows, want))
        check(len(rows) == 7 + 8, rows)
    finally:
        s.close()


def test_blinded_arm_code_only():
    """A blinded course (docs/sham.md): the report shows its arm code, and
    nothing that names the arm."""
    tmp = tempfile.mkdtemp(prefix="blind-", dir=TMP)
    d = tcs.blinded_course(tmp, PULSES)
    out = os.path.join(tmp, "blinded.html")
    r = render(out, course_id="C-B1", conf=d.path)
    check(r.returncode == 0, r.stderr)
    p = parse(out)
    check([row["arm code"] for row in rows_of(p, "dose")] == ["Q5"], rows_of(p, "dose"))
    check("blinded arm code Q5" in p.all, p.all[:800])
    data = open(out, "rb").read().lower()
    # the arm of this allocation is "sham"
    for word in (b"sham", b"arm: ", b"allocation"):
        check(word not in data, "the report names %r" % word)


def test_pg_pending_said():
    """PostgreSQL with this rig's journal holding entries not on the server:
    the report is written and says at its top that it is incomplete."""
    import test_course_report as cr
    pg = cr.pg
    srv = pg.server()
    db = srv.new_db()
    s = cr.pg_site(srv, db, srv.journal(db + "-a"))
    rg = pg.Rig(srv, db, db + "-a")
    try:
        check(rg.opened == "ok open", rg.opened)
        t = cr.DAY0 + 10 * cr.HOUR
        rg.ok("patient P01")
        rg.ok("rx P01 C1 10 1 0 5000")
        sid = rg.ok("begin P01 C1 rig1 %d %s" % (t, cr.day(0)))
        rg.ok("pulses %s 100" % sid)
        srv.kill()
        try:
            rg.ok("pulses %s 300" % sid)
            rg.ok("endr %s %d 350 stopped_early" % (sid, t + 700))
        finally:
            srv.start()
        out = os.path.join(TMP, "pg.html")
        r = render(out, "--patient", "P01", course_id="C1", conf=s.conf)
        check(r.returncode == 0, r.stderr)
        p = parse(out)
        check(p.all.startswith("rPMS course C1, patient P01 INCOMPLETE: 2 entries of this "
                               "rig's journal are not on the course database server yet"),
              p.all[:300])
        check(rows_of(p, "dose")[0]["delivered"] == "100", rows_of(p, "dose"))
        check("2 journal entries not on the server" in r.stderr, r.stderr)
        # not the rig (no journal here): whether entries are missing is unknown, said so
        s2 = cr.pg_site(srv, db, "/nonexistent/course-journal.db")
        try:
            r = render(out, "--patient", "P01", course_id="C1", conf=s2.conf)
            check(r.returncode == 0, r.stderr)
            p = parse(out)
            check(p.all.startswith("rPMS course C1, patient P01 POSSIBLY INCOMPLETE: ") and
                  "No such file" in p.all[:400], p.all[:400])
        finally:
            s2.close()
    finally:
        rg.close()
        s.close()


if __name__ == "__main__":
    rig.run_tests([test_self_contained_pngs, test_header_and_dose, test_motor_threshold,
                   test_rest_activity, test_scores_and_notes, test_unknown_course,
                   test_stretch_tsrt, test_blinded_arm_code_only, test_pg_pending_said])
