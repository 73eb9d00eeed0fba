#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sham and blinding (docs/sham.md), with the real rpmsd, real ZeroMQ, two
sim coils (the active coil and the sham coil, each with its own pulse_log)
and the real rpmsctl:

- indistinguishable: the same config and the same replay, --fast, once
  with the start-up session's course allocated to active and once to sham
  (blind.course_id is the only line that differs): every event on the
  stream is equal except t_wall and t_wall_ns (the wall clock of the run)
  and t_mono_ns (the clocks of the run) and the session_started event's
  arm_code; the EDF+ files are equal byte
  for byte except the header's start date and time (wall clock), the
  subsecond start time edflib keeps in each record's time-keeping
  annotation (the same wall clock), and the "arm code" annotation's text.
  The active run fired only the active coil, the sham run only the sham
  coil, each every pulse the stream shows;
- control sessions: session_start with course_id picks the coil, a
  course not allocated or no course is refused, arming outside a session
  is refused; a sham session after an active one (and back) never fires
  the active coil;
- the sealed audit: no plaintext arm or course in it, every record the
  same length; rpmsctl unblind with the statistician's key prints the true
  arms, with another key fails; each unblind appends its own record;
- the allocation file: mode 0644, another owner, a bad line are refused at
  start with the file, what was found and what is required.
"""

import json
from decimal import Decimal
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpms_subscriber import Subscriber  # noqa: E402

BUILD = os.environ.get("RPMSD_BUILD_ROOT", "")
RPMSD = os.path.join(BUILD, "daemon", "rpmsd")
RPMSCTL = os.path.join(BUILD, "tools", "rpmsctl")
RATE = 1000
PATTERN = [5, -3, 8, -6, 2, -9, 4, -1]      # one block: every block alike
PULSES = 9


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A course of conf()'s protocol: trains of 3 pulses at 20 Hz, 150 ms apart,
# PULSES a session, at 30 % of maximum output.
RX = """[patient]
id = P-001
[course]
id = %%s
sessions = 10
sessions_per_day = 3
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
pulses = %d
[intensity]
max_output_pct = 30
""" % PULSES


def write_conf(path, conf):
    with open(path, "w") as f:
        for section, keys in conf.items():
            f.write("[%s]\n" % section)
            f.writelines("%s = %s\n" % kv for kv in keys.items())


class Trial:
    """The statistician's keys and allocation, the replay, the config."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.secret = os.path.join(tmp, "statistician.secret")
        r = subprocess.run([RPMSCTL, "keygen", self.secret], capture_output=True, text=True)
        check(r.returncode == 0, "keygen: %s" % r.stderr)
        self.public = os.path.join(tmp, "statistician.public")
        with open(self.public, "w") as f:
            f.write(r.stdout)
        self.other = os.path.join(tmp, "other.secret")
        check(subprocess.run([RPMSCTL, "keygen", self.other], capture_output=True).returncode
              == 0, "keygen other")
        self.alloc = os.path.join(tmp, "allocation")
        with open(self.alloc, "w") as f:
            f.write("# trial T1, prepared by the statistician\n"
                    "C-ACT1   active  K7\n"
                    "C-SHM1   sham    Q2\n")
        os.chmod(self.alloc, 0o600)
        self.audit = os.path.join(tmp, "blind-audit")
        self.emg = os.path.join(tmp, "emg.txt")
        with open(self.emg, "w") as f:
            f.write("# a block-periodic signal\n")
            f.writelines("%d\n" % PATTERN[i % len(PATTERN)] for i in range(60 * RATE))
        self.state = os.path.join(tmp, "state")
        self.rec = os.path.join(tmp, "rec")
        self.active_log = os.path.join(tmp, "active.csv")
        self.sham_log = os.path.join(tmp, "sham.csv")

    def prescriptions(self):
        """A course.prescriptions directory: P-001's two courses (sessions by
        course_id are course sessions), three a day each, the protocol of conf()."""
        d = os.path.join(self.tmp, "rx")
        os.makedirs(d, exist_ok=True)
        for course in ("C-ACT1", "C-SHM1"):
            with open(os.path.join(d, course + ".rx"), "w") as f:
                f.write(RX % course)
        return d

    def conf(self, name, course=None, fast=True, events=None, control=None):
        conf = {
            "daemon": {"state_dir": self.state},
            "source": {"file": self.emg, "format": "text", "rate_hz": str(RATE),
                       "block_frames": "8", "realtime": "true"},
            "detect": {"calibration_s": "1"},
            "stim": {"plugin": "sim", "mode": "open_loop", "protocol": "train",
                     "train_pulses": "3", "train_frequency_hz": "20", "intensity_pct": "30",
                     "off_ms": "150", "open_loop_pulses": str(PULSES)},
            "safety": {"max_train_pulses": "10", "motor_threshold_pct": "40",
                       "min_train_interval_ms": "100", "max_frequency_hz": "25"},
            "publish": {"endpoint": events or "tcp://127.0.0.1:%d" % free_port()},
            # the file's name without the default's wall-clock time: equal in both runs
            "record": {"directory": self.rec, "name": "rpmsd_{patient}_{session}",
                       "patient_id": "P-001", "session_id": "S-001"},
            "coil.sim": {"pulse_log": self.active_log},
            "sham_coil.sim": {"pulse_log": self.sham_log},
            "blind": {"allocation": self.alloc, "statistician_public_key": self.public,
                      "audit": self.audit},
        }
        if control:
            conf["control"] = {"endpoint": control}
            conf["course"] = {"prescriptions": self.prescriptions()}
        if course:
            conf["blind"]["course_id"] = course
            conf["daemon"]["arm_on_start"] = "true"
        path = os.path.join(self.tmp, name)
        write_conf(path, conf)
        return path

    def fresh(self):
        """A new state directory and recording directory; the coils' logs gone."""
        for d in (self.state, self.rec):
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d)
        for f in (self.active_log, self.sham_log):
            if os.path.exists(f):
                os.unlink(f)


def pulse_log(path):
    """The sim coil's pulses (t_session_s, intensity); [] for a log with none."""
    check(os.path.exists(path), "no pulse_log %s" % path)
    with open(path) as f:
        rows = f.read().splitlines()[1:]
    return [tuple(float(x) for x in r.split(",")[:2]) for r in rows]


def fast_run(trial, course):
    """One --fast replay whose start-up session has @course; (messages, edf)."""
    trial.fresh()
    conf = trial.conf("fast.conf", course=course, events="tcp://127.0.0.1:%d" % free_port())
    with open(conf) as f:
        endpoint = [ln.split("=", 1)[1].strip() for ln in f if ln.startswith("endpoint")][0]
    sub = Subscriber(endpoint)
    r = subprocess.run([RPMSD, "--config", conf, "--fast", "--wait-subscriber=30"],
                       capture_output=True, text=True, timeout=300)
    msgs = sub.drain_and_close()
    check(r.returncode == 0, "rpmsd (%s): exit %d\n%s" % (course, r.returncode, r.stderr[-3000:]))
    files = os.listdir(trial.rec)
    check(len(files) == 1, "recordings: %r" % files)
    edf = os.path.join(trial.tmp, "%s.edf" % course)
    shutil.copy(os.path.join(trial.rec, files[0]), edf)
    # the log without the two lines a run's own circumstances decide: the
    # subscriber's port (a free one each run) and "ready" (sd_notify's, said
    # when the first block was processed: a replay can end before)
    log = [ln for ln in r.stderr.splitlines() if "waiting up to" not in ln and
           "info: ready:" not in ln]
    return msgs, edf, pulse_log(trial.active_log), pulse_log(trial.sham_log), (log, r.stdout)


# What differs between two runs of one config and one replay, and why:
# t_wall, t_wall_ns and t_mono_ns are the wall and monotonic clocks of the
# run (everything else on the stream is on the session clock, the replay's
# own in --fast), and arm_code is the allocation's blinded code of each
# course.
WALL_CLOCK = ("t_wall", "t_wall_ns", "t_mono_ns")


# And sample (with t_rec_s, its time) of what the stim thread publishes: the
# last sample the acquire thread had read when the stim thread fired, a race
# between two threads that --fast runs flat out (docs/events.md: up to a
# block before; the pulse's own time, sample_at_fire and t_actual_s, is
# exact); and the sample_at of arm_on_start's "armed", null when the stim
# thread armed before the first EMG block gave it a sample clock (the same
# race, at the start): allowed to differ by at most one block, null as 0.
RACE = ("sample", "t_rec_s", "sample_at")
BLOCK = 8


def normalise(body):
    out = {k: v for k, v in body.items() if k not in WALL_CLOCK + RACE}
    if out.get("state") == "session_started":
        out.pop("arm_code", None)
    return out


def check_stream(a, b):
    check(len(a) == len(b), "%d messages active, %d sham" % (len(a), len(b)))
    for i, ((ta, ba), (tb, bb)) in enumerate(zip(a, b)):
        check(ta == tb and normalise(ba) == normalise(bb) and
              all(abs((ba.get(k) or 0) - (bb.get(k) or 0)) <= BLOCK * (1 if k != "t_rec_s"
                                                                     else 1.0 / RATE) + 1e-9
                  for k in RACE),
              "message %d differs:\n  active %s %s\n  sham   %s %s" % (i, ta, ba, tb, bb))
    codes = [[m["arm_code"] for t, m in run if m.get("state") == "session_started"]
             for run in (a, b)]
    check(codes == [["K7"], ["Q2"]], "arm codes on the stream %r" % codes)
    for t, m in a + b:
        check("arm" not in m and "sham" not in json.dumps(m) and "course_id" not in m,
              "the arm on the stream: %s %s" % (t, m))


def edf_parse(path):
    """Header, signal headers, and per record: the EMG bytes and the TALs."""
    data = open(path, "rb").read()
    ns = int(data[252:256])
    nrec = int(data[236:244])
    hdr = data[:256 + ns * 256]
    labels = [hdr[256 + i * 16:256 + (i + 1) * 16].decode().strip() for i in range(ns)]
    off = 256 + ns * 216
    spr = [int(hdr[off + i * 8:off + (i + 1) * 8]) for i in range(ns)]
    recsize = 2 * sum(spr)
    check(len(data) == len(hdr) + nrec * recsize, "%s: size %d, header says %d records"
          % (path, len(data), nrec))
    records = []
    for r in range(nrec):
        rec = data[len(hdr) + r * recsize:len(hdr) + (r + 1) * recsize]
        pos, emg, tals = 0, b"", []
        for i in range(ns):
            chunk = rec[pos:pos + 2 * spr[i]]
            pos += 2 * spr[i]
            if labels[i] == "EDF Annotations":
                tals += [t for t in chunk.split(b"\x00") if t]
            else:
                emg += chunk
        records.append((emg, tals))
    return hdr, records


def tal_shift(tal, by):
    """A TAL with @by seconds taken off its onset."""
    head, rest = tal.split(b"\x14", 1)
    onset, _, dur = head.partition(b"\x15")
    t = Decimal(onset.decode()) - by
    return b"%+.4f" % t + (b"\x15" + dur if dur else b"") + b"\x14" + rest


def check_edf(fa, fb):
    ha, ra = edf_parse(fa)
    hb, rb = edf_parse(fb)
    # 168-183: start date and time, the wall clock (and "reserved", 192-235,
    # is the same EDF+C in both)
    check(ha[:168] == hb[:168] and ha[184:] == hb[184:],
          "EDF+ headers differ beyond the start date and time:\n%r\n%r" % (ha, hb))
    check(len(ra) == len(rb), "%d data records active, %d sham" % (len(ra), len(rb)))
    # edflib keeps the start's subsecond (wall clock) in the first TAL of
    # each record and adds it to every onset: taken off both
    sub = [Decimal(r[0][1][0].split(b"\x14")[0].decode()) for r in (ra, rb)]
    codes = [], []
    for n, ((ea, ta), (eb, tb)) in enumerate(zip(ra, rb)):
        check(ea == eb, "data record %d: the EMG differs" % n)
        check(len(ta) == len(tb) and len(ta) >= 1, "record %d: annotations %r %r" % (n, ta, tb))
        check(ta[0].endswith(b"\x14\x14") and tb[0].endswith(b"\x14\x14"),
              "record %d: time-keeping %r %r" % (n, ta[0], tb[0]))
        ta = [tal_shift(x, sub[0]) for x in ta]
        tb = [tal_shift(x, sub[1]) for x in tb]
        check(ta[0] == tb[0], "record %d: time-keeping %r %r" % (n, ta[0], tb[0]))
        for x, y in zip(ta[1:], tb[1:]):
            if b"arm code " in x:
                codes[0].append(x.split(b"\x14")[1])
                codes[1].append(y.split(b"\x14")[1])
                x, y = x.split(b"arm code ")[0], y.split(b"arm code ")[0]
            check(x == y, "record %d: annotation %r (active) vs %r (sham)" % (n, x, y))
    check(codes == ([b"arm code K7"], [b"arm code Q2"]), "arm code annotations %r" % (codes,))
    raw = open(fa, "rb").read() + open(fb, "rb").read()
    check(b"sham" not in raw and b"active" not in raw and b"C-SHM1" not in raw,
          "the arm or the course in an EDF+ file")


def test_indistinguishable():
    trial = TRIAL
    a = fast_run(trial, "C-ACT1")
    b = fast_run(trial, "C-SHM1")
    msgs_a, edf_a, act_a, sham_a, log_a = a
    msgs_b, edf_b, act_b, sham_b, log_b = b
    # the daemon's log and its summary: the same lines (the sham coil's
    # plugin is named at start-up in both runs)
    check(log_a == log_b, "the logs differ:\n%s\n----\n%s" % (log_a, log_b))
    check("pulses fired:    %d" % PULSES in log_a[1], "summary: %s" % log_a[1])
    stim_a = [m for t, m in msgs_a if t == "rpms.stim"]
    check(len(stim_a) == PULSES, "%d pulses on the stream (expected %d)" % (len(stim_a), PULSES))
    # the allocation decided the coil: the other one never fired
    check(len(act_a) == PULSES and sham_a == [], "active run: active coil %d pulses, sham %d"
          % (len(act_a), len(sham_a)))
    check(act_b == [] and len(sham_b) == PULSES, "sham run: active coil %d pulses, sham %d"
          % (len(act_b), len(sham_b)))
    check(act_a == sham_b, "the sham coil's pulses differ from the active coil's: %r %r"
          % (act_a, sham_b))
    check_stream(msgs_a, msgs_b)
    check_edf(edf_a, edf_b)
    print("ok   active and sham runs: %d messages equal but the run's clocks, the stim "
          "thread's sample race (<= 1 block) and arm_code; EDF+ equal but start date/time "
          "(and its subsecond) and the arm code; the sham run never fired the "
          "active coil (%d pulses on the sham coil)" % (len(msgs_a), len(sham_b)))


class Control:
    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.RCVTIMEO, 20000)
        self.sock.connect(endpoint)

    def __call__(self, **req):
        self.sock.send_string(json.dumps(req))
        return json.loads(self.sock.recv_string())

    def close(self):
        self.sock.close(linger=0)
        self.ctx.term()


def test_control_sessions():
    trial = TRIAL
    trial.fresh()
    ctl_ep = "ipc://%s/control" % trial.tmp
    events = "tcp://127.0.0.1:%d" % free_port()
    conf = trial.conf("control.conf", events=events, control=ctl_ep)
    sub = Subscriber(events)
    err = open(os.path.join(trial.tmp, "control.stderr"), "w+")
    proc = subprocess.Popen([RPMSD, "--config", conf, "--wait-subscriber=30"],
                            stdout=subprocess.DEVNULL, stderr=err)
    ctl = Control(ctl_ep)

    def stderr():
        err.flush()
        err.seek(0)
        return err.read()[-3000:]

    def wait_for(pred, what, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            check(proc.poll() is None, "rpmsd exited waiting for %s\n%s" % (what, stderr()))
            time.sleep(0.01)
        fail("no %s within %d s\n%s" % (what, timeout, stderr()))

    try:
        wait_for(lambda: sub.of("rpms.state", state="calibrated"), "calibration")
        rep = ctl(cmd="arm")
        check(not rep["ok"] and rep["error"]["code"] == "no_session",
              "arm outside a session: %r" % rep)
        rep = ctl(cmd="session_start", patient_id="P-001", session_id="S-000")
        check(not rep["ok"] and rep["error"]["code"] == "not_allocated" and
              "course_id" in rep["error"]["message"], "no course: %r" % rep)
        rep = ctl(cmd="session_start", patient_id="P-001", session_id="S-000",
                  course_id="C-NONE")
        check(not rep["ok"] and "C-NONE" in rep["error"]["message"] and
              "allocation" in rep["error"]["message"], "a course not allocated: %r" % rep)
        check(not sub.of("rpms.state", state="session_started"), "a refused start started")
        runs = []
        for course, session in (("C-SHM1", "S-1"), ("C-ACT1", "S-2"), ("C-SHM1", "S-3")):
            rep = ctl(cmd="session_start", patient_id="P-001", session_id=session,
                      course_id=course)
            check(rep["ok"], "session_start %s: %r" % (course, rep))
            check("sham" not in json.dumps(rep) and "active" not in json.dumps(rep),
                  "the reply tells the arm: %r" % rep)
            rep = ctl(cmd="arm")
            check(rep["ok"], "arm: %r" % rep)
            before = len(sub.of("rpms.stim"))
            wait_for(lambda: len(sub.of("rpms.stim")) >= before + PULSES, "%d pulses" % PULSES)
            rep = ctl(cmd="session_stop")
            check(rep["ok"], "session_stop: %r" % rep)
            runs.append((course, len(sub.of("rpms.stim")) - before))
    finally:
        ctl.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        msgs = sub.drain_and_close()
    check(proc.returncode == 0, "rpmsd exit %d\n%s" % (proc.returncode, stderr()))
    started = [m for t, m in msgs if m.get("state") == "session_started"]
    check([m["arm_code"] for m in started] == ["Q2", "K7", "Q2"], "codes %r" % started)
    stim = [m for t, m in msgs if t == "rpms.stim"]
    bounds = [(m["t_session_s"], n["t_session_s"]) for m, n in
              zip(started, [m for t, m in msgs if m.get("state") == "session_stopped"])]
    active, sham = pulse_log(trial.active_log), pulse_log(trial.sham_log)

    def within(log, b):
        return [p for p in log if b[0] <= p[0] <= b[1]]
    for (course, n), b in zip(runs, bounds):
        ours, other = (active, sham) if course == "C-ACT1" else (sham, active)
        check(len(within(ours, b)) == n and within(other, b) == [],
              "%s session: %d pulses on the stream, its coil %d, the other %d"
              % (course, n, len(within(ours, b)), len(within(other, b))))
    check(len(active) + len(sham) == len(stim), "coils %d + %d, stream %d"
          % (len(active), len(sham), len(stim)))
    print("ok   control sessions: sham, active, sham: each coil only in its sessions "
          "(active %d, sham %d pulses); no course, an unallocated course, an arm outside a "
          "session refused" % (len(active), len(sham)))


def test_audit():
    trial = TRIAL
    with open(trial.audit) as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    sealed = [ln for ln in lines if ln.startswith("sealed ")]
    check(len(sealed) == 5, "sealed records %d (2 fast runs, 3 control sessions)" % len(sealed))
    check(len(set(len(ln) for ln in sealed)) == 1, "sealed records of different lengths")
    # every line is a sealed record (base64 only: no '-', so no course or
    # patient id by chance) or an unblind record; what is not base64 says
    # nothing of arms, codes, courses or patients
    b64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for ln in lines:
        check(ln.startswith("sealed ") and set(ln[7:]) <= b64 or ln.startswith("unblind {"),
              "an audit line that is neither sealed nor an unblind: %r" % ln)
    raw = "\n".join(ln for ln in lines if not ln.startswith("sealed "))
    for word in ("sham", "active", "C-SHM1", "C-ACT1", "K7", "Q2", "P-001"):
        check(word not in raw, "%r in plain text in the audit" % word)
    r = subprocess.run([RPMSCTL, "unblind", "--key", trial.secret, "--audit", trial.audit],
                       capture_output=True, text=True)
    check(r.returncode == 0, "unblind: %d %s" % (r.returncode, r.stderr))
    recs = [json.loads(ln) for ln in r.stdout.splitlines()]
    check([(x["course_id"], x["arm"], x["arm_code"]) for x in recs] ==
          [("C-ACT1", "active", "K7"), ("C-SHM1", "sham", "Q2"), ("C-SHM1", "sham", "Q2"),
           ("C-ACT1", "active", "K7"), ("C-SHM1", "sham", "Q2")], "unblinded %r" % recs)
    check([x["session_id"] for x in recs] == ["S-001", "S-001", "S-1", "S-2", "S-3"] and
          all(x["patient_id"] == "P-001" and x["time"] for x in recs), "records %r" % recs)
    r = subprocess.run([RPMSCTL, "unblind", "--key", trial.other, "--audit", trial.audit],
                       capture_output=True, text=True)
    check(r.returncode == 4 and r.stdout == "" and "not sealed to this key" in r.stderr,
          "unblind with another key: %d %r %s" % (r.returncode, r.stdout, r.stderr))
    with open(trial.audit) as f:
        unblinds = [json.loads(ln[len("unblind "):]) for ln in f if ln.startswith("unblind ")]
    check(len(unblinds) == 2 and unblinds[0]["opened"] == 5 and
          unblinds[1]["opened"] == 0 and unblinds[1]["not_opened"] == 5 and
          all(u["user"] and u["time"] and u["key"] for u in unblinds),
          "unblind records %r" % unblinds)
    print("ok   audit: 5 sealed records of one length, no plain text; unblind with the "
          "statistician's key shows the true arms, another key fails; both audited")


def test_allocation_refused():
    trial = TRIAL
    conf = trial.conf("refuse.conf")

    def start():
        trial.fresh()
        r = subprocess.run([RPMSD, "--config", conf, "--fast"], capture_output=True,
                           text=True, timeout=120)
        return r.returncode, r.stderr

    os.chmod(trial.alloc, 0o644)
    code, err = start()
    check(code == 1 and trial.alloc in err and "mode 0644" in err and
          "required: a regular file of mode 0600 owned by the daemon's user" in err,
          "mode 0644: %d %s" % (code, err))
    os.chmod(trial.alloc, 0o600)
    if os.geteuid() == 0:
        os.chown(trial.alloc, 65534, -1)
        code, err = start()
        os.chown(trial.alloc, 0, -1)
        check(code == 1 and "owned by uid 65534" in err, "another owner: %d %s" % (code, err))
    else:
        print("skip another owner (needs root to chown)")
    good = open(trial.alloc).read()
    with open(trial.alloc, "a") as f:
        f.write("C-ACT1 sham Z1\n")
    code, err = start()
    check(code == 1 and "%s:4: course C-ACT1: allocated twice (first at line 2)" % trial.alloc
          in err, "duplicate course: %d %s" % (code, err))
    with open(trial.alloc, "w") as f:
        f.write(good + "C-NEW placebo Z2\n")
    code, err = start()
    check(code == 1 and "%s:4: course C-NEW: unknown arm 'placebo' (allowed: active, sham)"
          % trial.alloc in err, "unknown arm: %d %s" % (code, err))
    with open(trial.alloc, "w") as f:
        f.write(good)
    code, err = start()
    check(code == 0, "the good allocation again: %d %s" % (code, err))
    print("ok   allocation refused: mode 0644, another owner, a course twice, an unknown arm")


def test_check_config_blind():
    """rpmsd --check-config checks [blind] as a start does (blind_check, the
    start's own steps): the allocation file's mode and lines, the
    statistician's key, the sham coil's plugin and its keys; each refusal
    says what the start says. A good [blind] passes and nothing is written
    (the audit file is not created)."""
    trial = TRIAL
    trial.fresh()
    audit_existed = os.path.exists(trial.audit)
    audit_before = open(trial.audit, "rb").read() if audit_existed else None
    shutil.move(trial.audit, trial.audit + ".kept") if audit_existed else None

    def both(conf):
        c = subprocess.run([RPMSD, "--check-config", conf], capture_output=True, text=True,
                           timeout=120)
        trial.fresh()
        r = subprocess.run([RPMSD, "--config", conf, "--fast"], capture_output=True,
                           text=True, timeout=120)
        return c.returncode, c.stderr, r.returncode, r.stderr

    def refused(conf, *needles):
        code, err, scode, serr = both(conf)
        check(code == 1 and scode == 1, "check %d, start %d:\n%s\n%s" % (code, scode, err, serr))
        for n in needles:
            check(n in err and n in serr, "%r not in both:\n%s\n%s" % (n, err, serr))

    try:
        conf = trial.conf("check.conf")
        c = subprocess.run([RPMSD, "--check-config", conf], capture_output=True, text=True,
                           timeout=120)
        check(c.returncode == 0, "a good [blind]: %d %s" % (c.returncode, c.stderr))
        check(not os.path.exists(trial.audit), "--check-config wrote the audit file")
        os.chmod(trial.alloc, 0o644)
        refused(conf, trial.alloc, "mode 0644",
                "required: a regular file of mode 0600 owned by the daemon's user")
        os.chmod(trial.alloc, 0o600)
        good = open(trial.alloc).read()
        with open(trial.alloc, "a") as f:
            f.write("C-NEW placebo Z2\n")
        refused(conf, "%s:4: course C-NEW: unknown arm 'placebo'" % trial.alloc)
        with open(trial.alloc, "w") as f:
            f.write(good)
        pub = open(trial.public).read()
        with open(trial.public, "w") as f:
            f.write("not a key\n")
        refused(conf, "blind.statistician_public_key: %s:1: not a Z85 key" % trial.public)
        with open(trial.public, "w") as f:
            f.write(pub)
        # the sham coil's own section, checked by its plugin's keys
        text = open(conf).read().replace("[sham_coil.sim]\n", "[sham_coil.sim]\nbogus = 1\n")
        with open(conf, "w") as f:
            f.write(text)
        refused(conf, "sham_coil.sim.bogus: unknown key")
        # a sham coil plugin that does not exist
        text = open(conf).read().replace("[sham_coil.sim]\nbogus = 1\n", "[sham_coil.nosuch]\n")
        text = text.replace("[blind]\n", "[blind]\nsham_plugin = nosuch\n")
        with open(conf, "w") as f:
            f.write(text)
        refused(conf, "nosuch")
    finally:
        with open(trial.alloc, "w") as f:
            f.write("# trial T1, prepared by the statistician\n"
                    "C-ACT1   active  K7\n"
                    "C-SHM1   sham    Q2\n")
        os.chmod(trial.alloc, 0o600)
        if audit_existed:
            shutil.move(trial.audit + ".kept", trial.audit)
            check(open(trial.audit, "rb").read() == audit_before, "the audit changed")
    print("ok   --check-config refuses what a start refuses in [blind]: the allocation's "
          "mode and lines, the statistician's key, the sham coil's keys and plugin; a good "
          "one passes without writing the audit")


TRIAL = None


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import rpmsd_rig as rig
    tmp = tempfile.mkdtemp(prefix="rpmsd-blind-")
    try:
        TRIAL = Trial(tmp)
        # in this order: test_audit reads the records the sessions before sealed
        rig.run_tests([test_indistinguishable, test_control_sessions, test_audit,
                       test_allocation_refused, test_check_config_blind])
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)
