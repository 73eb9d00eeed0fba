#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The control socket (docs/control.md) of the real rpmsd, driven by real
ZeroMQ clients: a Python REQ socket, rpmsctl, and the documented example
client (docs/examples/client.py).

The daemon replays a synthetic recording in real time: rest (noise of
10 uV) with a burst (200 uV, 0.4 s) every 2 s from 3 s on, so that a
closed-loop train follows every 2 s. Every event received is validated
against docs/events.schema.json, every reply against
docs/control.schema.json.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import validate_events  # noqa: E402

import jsonschema  # noqa: E402
import zmq  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rpmsd-control-")
RATE = 1000
CONTROL_SCHEMA = os.path.join(rig.SOURCE, "docs", "control.schema.json")
CLIENT = os.path.join(rig.SOURCE, "docs", "examples", "client.py")
# Sanitizer builds are slower: the replies still come, later.
REPLY_S = 15.0


def control_validator():
    with open(CONTROL_SCHEMA) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


EVENTS = validate_events.load_validator(validate_events.DEFAULT_SCHEMA)
REPLIES = control_validator()


def recording(seconds=60):
    """Rest with a 0.4 s burst every 2 s from 3 s on (seeded noise)."""
    path = os.path.join(TMP, "bursts.txt")
    if os.path.exists(path):
        return path
    rng = random.Random(7)
    with open(path, "w") as f:
        f.write("# synthetic EMG for test_control.py\n")
        for i in range(seconds * RATE):
            t = i / RATE
            burst = t >= 3.0 and (t - 3.0) % 2.0 < 0.4
            f.write("%.2f\n" % rng.gauss(0.0, 200.0 if burst else 10.0))
    return path


def base_conf():
    return {
        "daemon": {"state_dir": rig.state_dir()},
        "source": {"file": recording(), "format": "text", "rate_hz": "1000",
                   "realtime": "true", "block_frames": "8"},
        "detect": {"calibration_s": "1", "k_on": "6"},
        "stim": {"plugin": "sim", "protocol": "train", "train_pulses": "5",
                 "train_frequency_hz": "20", "intensity_pct": "30", "refractory_ms": "500"},
        "safety": {"max_train_pulses": "10", "motor_threshold_pct": "40"},
        "publish": {"endpoint": "tcp://127.0.0.1:%d" % rig.free_port(), "heartbeat_s": "0.25"},
        "control": {"endpoint": rig.control_endpoint()},
    }


def render(conf):
    out = []
    for section, keys in conf.items():
        out.append("[%s]" % section)
        out.extend("%s = %s" % kv for kv in keys.items())
    return "\n".join(out) + "\n"


def write_conf(conf):
    fd, path = tempfile.mkstemp(suffix=".conf", dir=TMP)
    with os.fdopen(fd, "w") as f:
        f.write(render(conf))
    return path


class Daemon:
    """A running rpmsd, a subscriber thread collecting every message, and a
    REQ client for the control socket."""

    def __init__(self, conf=None, started=True):
        self.conf = conf or base_conf()
        self.path = write_conf(self.conf)
        self.control = self.conf["control"]["endpoint"]
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"rpms.")
        self.sub.connect(self.conf["publish"]["endpoint"])
        self.req = None
        self.lock = threading.Lock()
        self.messages = []
        self.done = False
        self.log = open(self.path + ".stderr", "w+")
        self.out = open(self.path + ".stdout", "w+")
        self.proc = subprocess.Popen([rig.RPMSD, "--config", self.path, "--wait-subscriber=30"],
                                     stdout=self.out, stderr=self.log)
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()
        if started:
            self.wait_for(lambda: self.of("rpms.state", state="started"), 30, "no 'started'")

    def _receive(self):
        while not self.done:
            if not self.sub.poll(100):
                continue
            frames = self.sub.recv_multipart()
            body = json.loads(frames[1])
            with self.lock:
                self.messages.append((frames[0].decode(), body, time.monotonic()))

    def of(self, topic, since=0.0, **match):
        with self.lock:
            msgs = list(self.messages)
        return [b for t, b, at in msgs if t == topic and at >= since and
                all(b.get(k) == v for k, v in match.items())]

    def wait_for(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = pred()
            if got:
                return got
            check(self.proc.poll() is None, "rpmsd exited (%s) while waiting: %s\n%s"
                  % (self.proc.returncode, what, self.stderr()))
            time.sleep(0.02)
        raise AssertionError("%s within %g s\n%s" % (what, timeout, self.stderr()))

    def heartbeat_after(self, t, pred=lambda hb: True, timeout=10):
        return self.wait_for(lambda: [h for h in self.of("rpms.heartbeat", since=t) if pred(h)],
                             timeout, "no matching heartbeat")[-1]

    def send_raw(self, frames, timeout=REPLY_S):
        """Send a message (list of frames) on a fresh socket; the reply or None."""
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.control)
        sock.send_multipart(frames)
        reply = sock.recv_multipart() if sock.poll(int(timeout * 1000)) else None
        sock.close()
        return reply

    def request(self, req, timeout=REPLY_S):
        """One request (a dict, or bytes as they are) on a REQ socket; the
        reply, checked against the schema."""
        if self.req is None:
            self.req = self.ctx.socket(zmq.REQ)
            self.req.setsockopt(zmq.LINGER, 0)
            self.req.connect(self.control)
        self.req.send(req if isinstance(req, bytes) else json.dumps(req).encode())
        if not self.req.poll(int(timeout * 1000)):
            self.req.close()
            self.req = None
            raise AssertionError("no reply to %r\n%s" % (req[:200], self.stderr()))
        raw = self.req.recv()
        reply = json.loads(raw)
        errors = list(REPLIES.iter_errors(reply))
        check(not errors, "reply %s: %s" % (raw[:400], errors[0].message if errors else ""))
        return reply

    def ok(self, req):
        reply = self.request(req)
        check(reply["ok"], "%r refused: %r" % (req, reply))
        return reply["result"]

    def refused(self, req, code):
        reply = self.request(req)
        check(not reply["ok"] and reply["error"]["code"] == code,
              "%r: expected error %s, got %r" % (req, code, reply))
        return reply["error"]

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, status=0):
        """SIGTERM, wait, validate every message received."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        time.sleep(0.3)
        self.done = True
        self.thread.join()
        if self.req is not None:
            self.req.close()
        self.sub.close(linger=0)
        self.ctx.term()
        check(self.proc.returncode == status, "exit status %d (expected %d):\n%s"
              % (self.proc.returncode, status, self.stderr()))
        for topic, body, _ in self.messages:
            try:
                validate_events.check_body(EVENTS, topic, body)
            except validate_events.Invalid as e:
                raise AssertionError("%s %r: %s" % (topic, body, e))
        # Published in recording order whichever thread made them, so a train's
        # onset before its pulses (what the publisher makes itself aside).
        made = [(t, b) for t, b, _ in self.messages if t in (
            "rpms.burst", "rpms.stim", "rpms.safety", "rpms.source") or
            (t == "rpms.state" and b["state"] != "overflow")]
        samples = [b["sample"] for _, b in made]
        check(samples == sorted(samples), "events out of recording order: %r" %
              [(t, b["sample"]) for t, b in made])
        first = {}
        for i, (t, b) in enumerate(made):
            if t == "rpms.stim":
                first.setdefault(b["train_id"], i)
        for i, (t, b) in enumerate(made):
            if t == "rpms.burst" and b.get("action") == "requested":
                check(first.get(b["train_id"], len(made)) > i,
                      "a pulse of train %d before its onset" % b["train_id"])
        self.out.seek(0)
        return self.out.read()


def snapshot(status):
    """What no refused or malformed command may change."""
    return (status["armed"], json.dumps(status["session"], sort_keys=True),
            json.dumps(status["protocol"], sort_keys=True), status["pulses_session"])


def trains(d, since=0.0):
    """train_id -> [pulse bodies], in order."""
    out = {}
    for p in d.of("rpms.stim", since=since):
        out.setdefault(p["train_id"], []).append(p)
    return out


# ---- tests ---------------------------------------------------------------


def test_every_command():
    d = Daemon()
    try:
        st = d.ok({"cmd": "status"})
        check(not st["armed"] and st["session"] is None, st)
        check(st["protocol"]["protocol"] == "train" and st["protocol"]["train_pulses"] == 5, st)
        check(st["acquisition"]["channels"] == 1, st)
        check(st["control"]["curve"] is False and st["control"]["endpoint"], st)
        t = time.monotonic()
        r = d.ok({"cmd": "session_start", "patient_id": "P-01", "session_id": "2026.11.27_a"})
        check(r == {"session": {"patient_id": "P-01", "session_id": "2026.11.27_a"},
                   "recording": None}, r)
        d.wait_for(lambda: d.of("rpms.state", since=t, state="session_started"), 5,
                   "no session_started")
        hb = d.heartbeat_after(time.monotonic(), lambda h: h["session"] is not None)
        check(hb["session"] == {"patient_id": "P-01", "session_id": "2026.11.27_a"}, hb)
        check(hb["protocol"] == "train", hb)
        check(d.ok({"cmd": "arm"}) == {"armed": True, "changed": True}, "arm")
        check(d.ok({"cmd": "arm"}) == {"armed": True, "changed": False}, "arm twice")
        armed = d.wait_for(lambda: d.of("rpms.state", since=t, state="armed"), 5, "no armed")
        check(armed[-1]["reason"] == "control: arm", armed)
        hb = d.heartbeat_after(time.monotonic(), lambda h: h["armed"])
        check(d.ok({"cmd": "disarm"}) == {"armed": False, "changed": True}, "disarm")
        check(d.ok({"cmd": "disarm"}) == {"armed": False, "changed": False}, "disarm twice")
        r = d.ok({"cmd": "calibrate"})
        check(r["calibrating"] and r["window_s"] == 1.0 and r["channels"] == 1, r)
        r = d.ok({"cmd": "set", "params": {"intensity_pct": 35}})
        check(r["protocol"]["intensity_pct"] == 35, r)
        r = d.ok({"cmd": "session_stop"})
        check(r["stopped"] and r["session"]["patient_id"] == "P-01", r)
        stopped = d.wait_for(lambda: d.of("rpms.state", since=t, state="session_stopped"), 5,
                             "no session_stopped")
        check(stopped[0]["session_id"] == "2026.11.27_a", stopped)
        hb = d.heartbeat_after(time.monotonic())
        check(hb["session"] is None and not hb["armed"], hb)
        r = d.ok({"cmd": "session_stop"})
        check(r == {"stopped": False, "armed": False, "session": None}, r)
    finally:
        d.stop()
    log = d.stderr()
    for line in ("control: arm: done", "control: session_start: done patient P-01, session "
                 "2026.11.27_a", "control: set: done stim.intensity_pct=35"):
        check(line in log, "log lacks %r:\n%s" % (line, log))


def test_set_takes_effect_on_the_next_train():
    d = Daemon()
    try:
        d.ok({"cmd": "arm"})
        first = d.wait_for(lambda: [ps for ps in trains(d).values() if len(ps) == 5], 20,
                           "no full first train")[0]
        check(all(p["intensity_pct"] == 30 and p["count"] == 5 for p in first), first)
        old = max(trains(d))
        r = d.ok({"cmd": "set", "params": {"stim.intensity_pct": "40", "train_pulses": 3}})
        check(r["applied"] and r["protocol"]["train_pulses"] == 3, r)
        ev = d.wait_for(lambda: d.of("rpms.state", state="protocol_changed"), 5, "no event")
        check(ev[0]["reason"] == "set: intensity_pct,train_pulses", ev)
        d.wait_for(lambda: [ps for tid, ps in trains(d).items() if tid > old and len(ps) == 3],
                   20, "no train after the set")
        time.sleep(0.3)
        for tid, ps in trains(d).items():
            want = (30, 5) if tid <= old else (40, 3)
            check(all((p["intensity_pct"], p["count"]) == want for p in ps),
                  "train %d: %r" % (tid, ps))
            if tid > old:
                check(len(ps) <= 3, "train %d: %d pulses" % (tid, len(ps)))
        st = d.ok({"cmd": "status"})
        check(st["protocol"]["intensity_pct"] == 40 and st["protocol"]["train_pulses"] == 3, st)
    finally:
        d.stop()


def test_set_beyond_the_caps_is_refused_with_the_rule():
    d = Daemon()
    try:
        before = snapshot(d.ok({"cmd": "status"}))
        cases = [
            ({"intensity_pct": 70}, "beyond_safety_cap", "stim.intensity_pct",
             "safety.max_intensity_pct"),
            ({"train_frequency_hz": 30}, "beyond_safety_cap", "stim.train_frequency_hz",
             "safety.max_frequency_hz"),
            ({"train_pulses": 20}, "beyond_safety_cap", "stim.train_pulses",
             "safety.max_train_pulses"),
            ({"protocol": "theta_burst"}, "beyond_safety_cap", "stim.theta_frequency_hz",
             "safety.max_frequency_hz"),
            ({"intensity_pct": 150}, "invalid_value", "stim.intensity_pct", None),
            ({"train_pulses": "five"}, "invalid_value", "stim.train_pulses", None),
            ({"train_pulses": 2.5}, "invalid_value", "stim.train_pulses", None),
            ({"protocol": "burst"}, "invalid_value", "stim.protocol", None),
            ({"mode": "open_loop"}, "not_settable", "stim.mode", None),
            ({"safety.max_intensity_pct": 100}, "not_settable", "safety.max_intensity_pct", None),
            ({"plugin": "gpio"}, "not_settable", "stim.plugin", None),
            # all or nothing: one good key and one bad one change nothing
            ({"intensity_pct": 35, "train_frequency_hz": 40}, "beyond_safety_cap",
             "stim.train_frequency_hz", "safety.max_frequency_hz"),
        ]
        for params, code, key, rule in cases:
            e = d.refused({"cmd": "set", "params": params}, code)
            check(e.get("key") == key, "%r: key %r" % (params, e))
            check(e.get("rule") == rule, "%r: rule %r" % (params, e))
            check(snapshot(d.ok({"cmd": "status"})) == before, "%r changed something" % params)
        check(not d.of("rpms.state", state="protocol_changed"), "a refused set was published")
    finally:
        d.stop()


BAD = [
    b"", b"not json", b"\xff\xfe", b"[]", b"42", b'"status"', b"null", b"{}",
    b'{"cmd": 1}', b'{"cmd": null}', b'{"cmd": "ARM"}', b'{"cmd": "arm "}', b'{"cmd": "launch"}',
    b'{"cmd": "arm", "force": true}', b'{"cmd": "status", "cmd": "arm"}',
    b'{"cmd": "status"} {"cmd": "arm"}', b'{"cmd": "arm"', b'{"cmd": "a\\u0000rm"}',
    b'{"cmd": "set"}', b'{"cmd": "set", "params": []}', b'{"cmd": "set", "params": {}}',
    b'{"cmd": "set", "params": {"intensity_pct": true}}',
    b'{"cmd": "set", "params": {"intensity_pct": null}}',
    b'{"cmd": "set", "params": {"intensity_pct": {"v": 1}}}',
    b'{"cmd": "set", "params": {"intensity_pct": 1e999}}',
    b'{"cmd": "set", "params": {"intensity_pct": 35, "stim.intensity_pct": 36}}',
    b'{"cmd": "set", "params": {"intensity_pct": "' + b"9" * 100 + b'"}}',
    b'{"cmd": "set", "params": {"stim.": 1}}',
    b'{"cmd": "set", "params": {"../../etc": 1}}',
    b'{"cmd": "set", "params": {' + b", ".join(b'"k%d": 1' % i for i in range(17)) + b"}}",
    b'{"cmd": "session_start"}', b'{"cmd": "session_start", "patient_id": "P1"}',
    b'{"cmd": "session_start", "patient_id": "P 1", "session_id": "S1"}',
    b'{"cmd": "session_start", "patient_id": "../P1", "session_id": "S1"}',
    b'{"cmd": "session_start", "patient_id": "P1", "session_id": "' + b"S" * 37 + b'"}',
    b'{"cmd": "session_start", "patient_id": "P\xc3\xa9", "session_id": "S1"}',
    b'{"cmd": "session_start", "patient_id": 7, "session_id": "S1"}',
    b'{"cmd": "session_start", "patient_id": "P1", "session_id": "S1", "x": 1}',
    b"[" * 5000 + b"]" * 5000,
    b'{"cmd": "status", "pad": "' + b"x" * 20000 + b'"}',
    b"\x00" * 64,
]


def test_malformed_commands_change_nothing():
    """Every malformed, unknown or refused request gets an error, and
    status is the same afterwards; so does random garbage (seeded)."""
    d = Daemon()
    try:
        d.ok({"cmd": "arm"})
        d.ok({"cmd": "set", "params": {"intensity_pct": 33}})
        # the events of those two are out before the refusals begin
        d.wait_for(lambda: d.of("rpms.state", state="protocol_changed") and
                   d.of("rpms.state", state="armed"), 5, "no events of arm and set")
        time.sleep(0.2)
        before = snapshot(d.ok({"cmd": "status"}))
        t = time.monotonic()
        for raw in BAD:
            reply = d.request(raw)
            check(not reply["ok"], "%r: accepted: %r" % (raw[:80], reply))
            check(reply["error"]["code"] in ("bad_request", "too_large", "unknown_command",
                                             "invalid_value", "not_settable"),
                  "%r: %r" % (raw[:80], reply))
        big = d.request(b'{"cmd": "status", "pad": "' + b"x" * 100000 + b'"}')
        check(big["error"]["code"] == "too_large" and "100" in big["error"]["message"], big)
        rng = random.Random(4242)
        for i in range(300):
            if i % 3 == 0:
                raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            else:
                # one byte of a harmless request changed: status, or nothing at all
                raw = bytearray(b'{"cmd": "status"}')
                raw[rng.randrange(len(raw))] = rng.randrange(256)
                raw = bytes(raw)
            reply = d.request(raw)
            check(reply["ok"] == (reply.get("cmd") == "status"), "%r: %r" % (raw, reply))
        # A body of two frames, and a DEALER that sends no delimiter.
        r = d.send_raw([b"", b'{"cmd": "status"}', b"more"])
        check(r is not None and r[0] == b"" and not json.loads(r[1])["ok"], r)
        check("one frame" in json.loads(r[1])["error"]["message"], r)
        r = d.send_raw([b'{"cmd": "status"}'])
        check(r is not None and len(r) == 1 and json.loads(r[0])["ok"], r)
        # Above the frame limit the client is disconnected, unanswered; the daemon goes on.
        check(d.send_raw([b"", b"x" * (2 << 20)], timeout=2) is None, "2 MiB answered")
        check(snapshot(d.ok({"cmd": "status"})) == before, "something changed")
        check(d.proc.poll() is None, "rpmsd died")
        states = [s["state"] for s in d.of("rpms.state", since=t)
                  if s["state"] not in ("calibrated",)]
        check(not states, "state events from refused commands: %r" % states)
    finally:
        d.stop()


def test_sessions_count_their_own_pulses():
    """safety.max_session_pulses counts from session_start: a session that
    reached it is refused its next pulse; a new session may stimulate."""
    conf = base_conf()
    conf["safety"]["max_session_pulses"] = "8"
    d = Daemon(conf)
    try:
        d.ok({"cmd": "session_start", "patient_id": "P1", "session_id": "A"})
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: d.of("rpms.safety", rule="max_session_pulses"), 30,
                   "no max_session_pulses refusal")
        check(len(d.of("rpms.stim")) == 8, "%d pulses" % len(d.of("rpms.stim")))
        hb = d.heartbeat_after(time.monotonic())
        check(hb["pulses_session"] == 8 and hb["pulses"] == 8, hb)
        r = d.ok({"cmd": "session_stop"})
        check(r["pulses_session"] == 8 and not r["armed"], r)
        stop = d.wait_for(lambda: d.of("rpms.state", state="session_stopped"), 5, "no stop")
        check(stop[0]["pulses_session"] == 8 and stop[0]["session_id"] == "A", stop)
        t = time.monotonic()
        d.ok({"cmd": "session_start", "patient_id": "P1", "session_id": "B"})
        hb = d.heartbeat_after(time.monotonic(), lambda h: h["session"] is not None)
        check(hb["pulses_session"] == 0 and hb["pulses"] == 8, hb)
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: len(d.of("rpms.stim", since=t)) >= 5, 20, "no pulse in session B")
        hb = d.heartbeat_after(time.monotonic())
        check(hb["pulses_session"] >= 5 and hb["pulses"] >= 13 and hb["pulses_today"] >= 13, hb)
    finally:
        d.stop()


def test_open_loop_runs_once_per_session():
    conf = base_conf()
    conf["stim"].update({"mode": "open_loop", "open_loop_pulses": "6", "off_ms": "600"})
    d = Daemon(conf)
    try:
        for name in ("A", "B"):
            t = time.monotonic()
            d.ok({"cmd": "session_start", "patient_id": "P1", "session_id": name})
            d.ok({"cmd": "arm"})
            d.wait_for(lambda: d.of("rpms.state", since=t, state="disarmed",
                                    reason="open-loop protocol complete"), 20,
                       "session %s: open loop did not complete" % name)
            check(len(d.of("rpms.stim", since=t)) == 6, "session %s: %d pulses"
                  % (name, len(d.of("rpms.stim", since=t))))
            d.ok({"cmd": "session_stop"})
    finally:
        d.stop()


def sim_log(path):
    """The sim plugin's own pulse log: (session time s, intensity %) per pulse."""
    with open(path) as f:
        rows = f.read().splitlines()
    check(rows and rows[0].startswith("t_session_s,intensity_pct"), "log %r" % rows[:2])
    return [(float(r.split(",")[0]), float(r.split(",")[1])) for r in rows[1:]]


def test_open_loop_set_applies_from_the_next_train():
    """Issue 16 D2. Open loop on the real clock, 8 pulses at 10 Hz every
    1.4 s at 30 %: `rpmsctl set stim.intensity_pct=20` while a train is
    running is answered "set, from the next train", and the coil (the sim
    plugin's own log) does just that, with no disarm: the train in progress
    when the set was sent ends at 30 %, every train that begins after the
    reply is at 20 %, and no train mixes the two. Before the fix the whole
    count was one request: every train went on at 30 % until a disarm and
    an arm."""
    log = os.path.join(tempfile.mkdtemp(dir=TMP), "pulses.csv")
    conf = base_conf()
    conf["stim"].update({"mode": "open_loop", "train_pulses": "8", "train_frequency_hz": "10",
                         "off_ms": "600", "open_loop_pulses": "1000"})
    conf["coil.sim"] = {"pulse_log": log}
    d = Daemon(conf)
    try:
        d.ok({"cmd": "arm"})
        # the first pulse of the third train: a train is running
        first = d.wait_for(lambda: [p for p in d.of("rpms.stim") if p["train_id"] == 3], 30,
                           "no third train")[0]
        check(first["index"] == 0 and first["intensity_pct"] == 30, first)
        sent = time.monotonic_ns()
        r = rpmsctl("set", "stim.intensity_pct=20", "-e", d.control)
        replied = time.monotonic_ns()
        check(r.returncode == 0 and r.stdout.startswith("set, from the next train: ") and
              "20 %" in r.stdout, r)
        # two whole trains after the reply
        d.wait_for(lambda: [p for p in d.of("rpms.stim", since=replied / 1e9)
                            if p["train_id"] >= 6 and p["index"] == 7], 30,
                   "no two trains after the set")
        d.ok({"cmd": "disarm"})
    finally:
        d.stop()
    # the session clock on CLOCK_MONOTONIC, from the events' own two stamps
    offsets = sorted(b["t_mono_ns"] - b["t_session_s"] * 1e9 for b in d.of("rpms.stim"))
    zero = offsets[len(offsets) // 2]
    t_sent, t_replied = (sent - zero) / 1e9, (replied - zero) / 1e9
    coil = sim_log(log)
    check([i for _, i in coil] == [p["intensity_pct"] for p in d.of("rpms.stim")],
          "the coil and the events disagree")
    trains = []
    for t, pct in coil:
        if not trains or t - trains[-1][-1][0] > 0.3:
            trains.append([])
        trains[-1].append((t, pct))
    check(all(len(tr) == 8 for tr in trains[:-1]), "trains %r" % [len(tr) for tr in trains])
    for tr in trains:
        check(len({pct for _, pct in tr}) == 1, "a train mixes intensities: %r" % tr)
    running = [tr for tr in trains if tr[0][0] <= t_sent <= tr[-1][0]]
    check(len(running) == 1, "no train was running when the set was sent at %.3f s: %r"
          % (t_sent, [(tr[0][0], tr[-1][0]) for tr in trains]))
    check(running[0][0][1] == 30, "the train in progress changed: %r" % running[0])
    after = [tr for tr in trains if tr[0][0] > t_replied]
    check(len(after) >= 2 and all(tr[0][1] == 20 for tr in after),
          "trains begun after the reply (%.3f s): %r" % (t_replied, [(tr[0][0], tr[0][1])
                                                                   for tr in after]))
    check(all(tr[0][1] == 30 for tr in trains if tr[-1][0] < t_sent), "before the set")
    arms = [b for b in d.of("rpms.state") if b["state"] in ("armed", "disarmed")]
    check([b["state"] for b in arms] == ["armed", "disarmed"], "arm states %r" % arms)
    print("     set sent %.3f s, replied %.3f s (%.1f ms): train in progress %.3f-%.3f s "
          "at 30 %%, next train %.3f s at 20 %%" % (t_sent, t_replied, (replied - sent) / 1e6,
                                                  running[0][0][0], running[0][-1][0],
                                                  after[0][0][0]))


def test_open_loop_set_just_before_a_train():
    """Issue 16 D2. Open loop posts each train a little ahead of its start
    (two blocks, 16 ms here): a set taken in that time cannot change it,
    so its reply waits until that train began. Sets aimed at 1-20 ms
    before the next train's start, each with a new intensity: every train
    is at the intensity of the last set answered before its first pulse
    (or of one still in flight), never at an older one; and no set sent
    after a train began changes it."""
    log = os.path.join(tempfile.mkdtemp(dir=TMP), "pulses.csv")
    conf = base_conf()
    conf["stim"].update({"mode": "open_loop", "train_pulses": "4", "train_frequency_hz": "10",
                         "off_ms": "600", "open_loop_pulses": "1000"})
    conf["coil.sim"] = {"pulse_log": log}
    d = Daemon(conf)
    sets = []   # (value, sent, replied) on CLOCK_MONOTONIC, ns
    try:
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: [p for p in d.of("rpms.stim") if p["train_id"] == 2], 30,
                   "no second train")
        for i in range(12):
            last = [p for p in d.of("rpms.stim") if p["index"] == 0][-1]
            # a train every 1.0 s: the next starts 1 s after this one did
            start = last["t_mono_ns"] + 1_000_000_000
            aim = start - (1 + (i * 7) % 20) * 1_000_000
            while time.monotonic_ns() < aim:
                time.sleep(max(0.0, (aim - time.monotonic_ns()) / 1e9 - 0.002) or 0.0002)
            value = 20 + i % 5
            sent = time.monotonic_ns()
            d.ok({"cmd": "set", "params": {"intensity_pct": value}})
            sets.append((value, sent, time.monotonic_ns()))
            d.wait_for(lambda: [p for p in d.of("rpms.stim") if p["index"] == 0 and
                                p["t_mono_ns"] > start + 500_000_000], 10, "no next train")
        d.ok({"cmd": "disarm"})
    finally:
        d.stop()
    offsets = sorted(b["t_mono_ns"] - b["t_session_s"] * 1e9 for b in d.of("rpms.stim"))
    zero = offsets[len(offsets) // 2]
    coil = sim_log(log)
    starts = [(t, pct) for k, (t, pct) in enumerate(coil) if k == 0 or t - coil[k - 1][0] > 0.3]
    held = 0
    for t, pct in starts:
        begun = zero + t * 1e9
        answered = [v for v, _, rep in sets if rep < begun]
        in_flight = [v for v, snt, rep in sets if snt <= begun <= rep]
        allowed = set([answered[-1] if answered else 30] + in_flight)
        check(pct in allowed, "the train at %.3f s is at %r %%: the sets answered before it "
              "say %r, in flight %r" % (t, pct, answered[-1:], in_flight))
        held += len(in_flight)
    print("     %d sets, %d of them answered only after the train they preceded began"
          % (len(sets), held))


def test_open_loop_quick_disarm_arm_between_trains():
    """Issue 16 D2. Open loop, a train every 1.0 s (4 pulses at 10 Hz, 600
    ms off): `disarm` and `arm` back to back between two trains, most
    likely within one EMG block, before the next train was asked for. The
    schedule ends at the disarm: the next train starts off_ms after it
    (as after a train cut short), not 1.0 s after the last one began as
    if nothing had happened."""
    conf = base_conf()
    conf["stim"].update({"mode": "open_loop", "train_pulses": "4", "train_frequency_hz": "10",
                         "off_ms": "600", "open_loop_pulses": "1000"})
    d = Daemon(conf)
    try:
        d.ok({"cmd": "arm"})
        first = d.wait_for(lambda: [p for p in d.of("rpms.stim")
                                    if p["train_id"] == 2 and p["index"] == 0], 30,
                           "no second train")[0]
        # 0.7 s into the cycle: the last pulse was 0.4 s ago, the next train is 0.3 s away
        aim = first["t_mono_ns"] + 700_000_000
        while time.monotonic_ns() < aim:
            time.sleep(0.001)
        disarmed = time.monotonic_ns()
        d.ok({"cmd": "disarm"})
        d.ok({"cmd": "arm"})
        armed = time.monotonic_ns()
        nxt = d.wait_for(lambda: [p for p in d.of("rpms.stim") if p["train_id"] == 3], 30,
                         "no train after the arm")[0]
        d.ok({"cmd": "disarm"})
    finally:
        d.stop()
    check(nxt["index"] == 0, nxt)
    # not at the old schedule's 1.0 s: 600 ms after the disarm at the earliest
    check(nxt["t_mono_ns"] >= disarmed + 600_000_000,
          "the next train %.1f ms after the first pulse of the last one, the disarm at %.1f ms"
          % ((nxt["t_mono_ns"] - first["t_mono_ns"]) / 1e6,
             (disarmed - first["t_mono_ns"]) / 1e6))
    print("     disarm and arm took %.1f ms; the next train %.1f ms after the disarm"
          % ((armed - disarmed) / 1e6, (nxt["t_mono_ns"] - disarmed) / 1e6))


def table_conf(table):
    """The base configuration held to a site train table at @table: the base
    train (5 pulses at 20 Hz, 0.25 s, at 75 % of motor threshold) fits its
    0.3 s; 7 pulses (0.35 s) do not."""
    with open(table, "w") as f:
        f.write("hz,100\n20,0.3\n25,0.3\n")
    conf = base_conf()
    conf["safety"]["train_table"] = table
    return conf


def test_train_table_fifo_blocks_nothing():
    """Issue 16, D3: the train table replaced by a FIFO while running. set
    reads no file at all and is answered at once (so is disarm after it); a
    SIGHUP refuses the FIFO at once and leaves the main thread free, so
    SIGTERM still stops the daemon. Before: set never answered (the coil
    kept firing) and the SIGHUP hung the main thread (SIGTERM ignored)."""
    table = os.path.join(tempfile.mkdtemp(dir=TMP), "table.csv")
    d = Daemon(table_conf(table))
    try:
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: d.of("rpms.stim"), 20, "no pulse")
        os.unlink(table)
        os.mkfifo(table)
        t = time.monotonic()
        r = d.ok({"cmd": "set", "params": {"intensity_pct": 28}})
        took = time.monotonic() - t
        check(r["protocol"]["intensity_pct"] == 28, r)
        print("     set answered in %.1f ms with a FIFO as the train table" % (took * 1e3))
        t = time.monotonic()
        check(d.ok({"cmd": "disarm"})["changed"], "disarm")
        print("     disarm answered in %.1f ms" % ((time.monotonic() - t) * 1e3))
        d.ok({"cmd": "arm"})
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: "SIGHUP" in d.stderr(), 15, "no SIGHUP in the log")
        log = d.stderr()
        check("not a regular file" in log and "nothing changed" in log, log[-2000:])
        # the main thread is free: SIGTERM stops the daemon (stop() waits for it)
        t = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=30)
        print("     SIGTERM after the SIGHUP: exited in %.1f ms" % ((time.monotonic() - t) * 1e3))
    finally:
        d.stop()
    check("safety.train_table" in d.stderr(), d.stderr()[-2000:])


def test_set_and_reload_use_the_table_in_force():
    """Issue 16, D6: the train table's file edited after the start to allow
    longer trains. set and SIGHUP are held to the table the gate loaded:
    a train it would cut short is refused, the log says the edited table
    is not applied, and every train is delivered whole."""
    table = os.path.join(tempfile.mkdtemp(dir=TMP), "table.csv")
    d = Daemon(table_conf(table))
    try:
        with open(table, "w") as f:
            f.write("hz,100\n20,2\n25,2\n")
        e = d.refused({"cmd": "set", "params": {"train_pulses": 8}}, "beyond_safety_cap")
        check(e.get("rule") == "safety.train_table" and e.get("key") == "stim.protocol", e)
        check("8 pulses at 20 Hz lasts 0.4 s, longer than the 0.3 s that safety.train_table "
              "allows" in e["message"], e)
        d.ok({"cmd": "set", "params": {"train_pulses": 6}})
        # the file's protocol and table agree with each other, not with the gate
        conf = dict(d.conf)
        conf["stim"] = dict(conf["stim"], train_pulses="8")
        with open(d.path, "w") as f:
            f.write(render(conf))
        d.proc.send_signal(signal.SIGHUP)
        # the protocol is judged on the control thread, after main's own lines
        d.wait_for(lambda: "edited table is NOT applied" in d.stderr() and
                   "SIGHUP: protocol" in d.stderr(), 15, "no word of the edited table")
        log = d.stderr()
        check("SIGHUP: protocol NOT changed (beyond_safety_cap)" in log and
              "longer than the 0.3 s that safety.train_table allows" in log, log[-3000:])
        st = d.ok({"cmd": "status"})
        check(st["protocol"]["train_pulses"] == 6, st)
        d.ok({"cmd": "arm"})
        full = d.wait_for(lambda: [ps for ps in trains(d).values() if len(ps) == 6][1:], 20,
                          "no two whole trains of 6")
        check(full, full)
        check(not d.of("rpms.safety"), "refusals %r" % d.of("rpms.safety"))
    finally:
        d.stop()


def test_arm_reports_every_refusal():
    """A damaged pulse ledger and a pressed emergency stop: arm answers
    arm_refused with the stim thread's own reason, and does not arm."""
    state = rig.state_dir()
    with open(os.path.join(state, "dose"), "w") as f:
        f.write("garbage\n")
    conf = base_conf()
    conf["daemon"]["state_dir"] = state
    d = Daemon(conf)
    try:
        e = d.refused({"cmd": "arm"}, "arm_refused")
        check("pulse ledger" in e["message"], e)
        st = d.ok({"cmd": "status"})
        check(not st["armed"] and "pulse ledger" in st["arm_blocked"], st)
        # the publisher reports the fault it has sent (a moment after the reply)
        st = d.wait_for(lambda: [x for x in [d.ok({"cmd": "status"})] if x["last_fault"]], 5,
                        "no last_fault in status")[0]
        check(st["last_fault"]["reason"].startswith("arm refused"), st)
    finally:
        d.stop(status=3)

    fifo = os.path.join(tempfile.mkdtemp(dir=TMP), "estop")
    os.mkfifo(fifo)
    conf = base_conf()
    conf["coil.sim"] = {"estop_fifo": fifo}
    d = Daemon(conf)
    try:
        with open(fifo, "w") as f:
            f.write("press %d\n" % time.clock_gettime_ns(time.CLOCK_MONOTONIC))
            f.flush()
            time.sleep(0.2)
            e = d.refused({"cmd": "arm"}, "arm_refused")
            check("emergency stop" in e["message"], e)
            hb = d.heartbeat_after(time.monotonic(), lambda h: h["last_fault"])
            check(not hb["armed"] and hb["last_fault"]["state"] == "estop", hb)
            f.write("release\n")
            f.flush()
            time.sleep(0.2)
            check(d.ok({"cmd": "arm"})["armed"], "arm after the release")
    finally:
        # an operator's emergency stop is not a device fault: exit status 0
        d.stop(status=0)


def test_calibrate():
    d = Daemon()
    try:
        d.wait_for(lambda: d.of("rpms.state", state="calibrated"), 10, "no first calibration")
        d.ok({"cmd": "arm"})
        e = d.refused({"cmd": "calibrate"}, "armed")
        check("disarm first" in e["message"], e)
        d.ok({"cmd": "disarm"})
        t = time.monotonic()
        d.ok({"cmd": "calibrate"})
        cal = d.wait_for(lambda: d.of("rpms.state", since=t, state="calibrating"), 5,
                         "no calibrating")[0]
        done = d.wait_for(lambda: d.of("rpms.state", since=t, state="calibrated"), 10,
                          "no calibrated")[0]
        span = done["t_rec_s"] - cal["t_rec_s"]
        check(0.95 <= span <= 1.2, "calibrated %.3f s after calibrating" % span)
        onsets = [b for b in d.of("rpms.burst", since=t, edge="onset")
                  if cal["sample"] <= b["sample"] < done["sample"]]
        check(not onsets, "onsets while calibrating: %r" % onsets)
        st = d.ok({"cmd": "status"})
        check(st["acquisition"]["calibrated"] == 1, st)
    finally:
        d.stop()


def test_acquisition_and_coil_in_heartbeat():
    d = Daemon()
    try:
        d.ok({"cmd": "arm"})
        d.wait_for(lambda: d.of("rpms.stim"), 20, "no pulse")
        hb = d.heartbeat_after(time.monotonic())
        check(hb["acquisition"]["state"] == "ok" and hb["acquisition"]["block_age_ms"] < 250, hb)
        check(hb["coil_temperature_c"] is not None and hb["coil_temperature_age_s"] >= 0, hb)
        check(hb["pulses_today"] >= 1 and hb["protocol"] == "train", hb)
    finally:
        d.stop()


def rpmsctl(*args, env_endpoint=None, timeout=60):
    env = dict(os.environ)
    env.pop("RPMSD_CONTROL", None)
    if env_endpoint:
        env["RPMSD_CONTROL"] = env_endpoint
    return subprocess.run([rig.RPMSCTL] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_rpmsctl():
    d = Daemon()
    ep = d.control
    try:
        r = rpmsctl("status", "--endpoint", ep)
        check(r.returncode == 0 and "armed:        no" in r.stdout, r)
        r = rpmsctl("status", "--json", env_endpoint=ep)
        check(r.returncode == 0, r)
        reply = json.loads(r.stdout)
        check(not list(REPLIES.iter_errors(reply)) and reply["cmd"] == "status", r.stdout)
        r = rpmsctl("arm", "-e", ep)
        check(r.returncode == 0 and r.stdout == "armed\n", r)
        r = rpmsctl("arm", "-e", ep)
        check(r.returncode == 0 and r.stdout == "already armed\n", r)
        r = rpmsctl("set", "stim.intensity_pct=70", "-e", ep)
        check(r.returncode == 1 and "beyond_safety_cap" in r.stderr and
              "[rule safety.max_intensity_pct]" in r.stderr, r)
        r = rpmsctl("set", "stim.mode=open_loop", "-e", ep)
        check(r.returncode == 1 and "not_settable" in r.stderr, r)
        r = rpmsctl("set", "intensity_pct=35", "train_pulses=4", "-e", ep)
        check(r.returncode == 0 and "35 %" in r.stdout and "4 pulses" in r.stdout, r)
        r = rpmsctl("set", "-e", ep, "intensity_pct")
        check(r.returncode == 2 and "not KEY=VALUE" in r.stderr, r)
        r = rpmsctl("session", "start", "--patient", "P1", "--session", "S1", "-e", ep)
        check(r.returncode == 1 and "(armed)" in r.stderr, r)
        r = rpmsctl("disarm", "-e", ep)
        check(r.returncode == 0 and r.stdout == "disarmed\n", r)
        r = rpmsctl("session", "start", "--patient", "P1", "-e", ep)
        check(r.returncode == 2, r)
        r = rpmsctl("session", "start", "--patient", "P1", "--session", "S1", "-e", ep)
        check(r.returncode == 0 and "patient P1, session S1" in r.stdout, r)
        r = rpmsctl("status", "-e", ep)
        check("patient P1, session S1" in r.stdout and "35 %" in r.stdout, r.stdout)
        r = rpmsctl("session", "start", "--patient", "P2", "--session", "S2", "-e", ep)
        check(r.returncode == 1 and "session_active" in r.stderr, r)
        r = rpmsctl("calibrate", "-e", ep)
        check(r.returncode == 0 and "keep the patient at rest for 1 s" in r.stdout, r)
        r = rpmsctl("session", "stop", "--json", "-e", ep)
        check(r.returncode == 0 and json.loads(r.stdout)["result"]["stopped"], r)
        r = rpmsctl("session", "pause", "-e", ep)
        check(r.returncode == 2, r)
        r = rpmsctl("status", "-e", "ipc://%s/nothing" % TMP, "--timeout", "0.5")
        check(r.returncode == 3 and "no reply" in r.stderr, r)
        r = rpmsctl("status", "--timeout", "zero")
        check(r.returncode == 2, r)
        r = rpmsctl("status", "--server-key", "x")
        check(r.returncode == 2 and "go together" in r.stderr, r)
        r = rpmsctl("--help")
        check(r.returncode == 0 and "session start --patient ID --session ID" in r.stdout, r)
        key = os.path.join(tempfile.mkdtemp(dir=TMP), "k")
        r = rpmsctl("keygen", key)
        check(r.returncode == 0 and len(r.stdout.strip()) == 40, r)
        check(os.stat(key).st_mode & 0o777 == 0o600, oct(os.stat(key).st_mode))
        r = rpmsctl("keygen", key)
        check(r.returncode == 4 and "File exists" in r.stderr, r)
    finally:
        d.stop()


def test_rpmsctl_options_anywhere():
    """Options before the command work as after it (as git and systemctl
    take them): global options first, a command's own options after it, or
    any mix; misuse is still a usage error (exit 2)."""
    d = Daemon()
    ep = d.control
    try:
        r = rpmsctl("-e", ep, "status")
        check(r.returncode == 0 and "armed:        no" in r.stdout, r)
        r = rpmsctl("--endpoint=" + ep, "--json", "status")
        check(r.returncode == 0 and json.loads(r.stdout)["ok"], r)
        r = rpmsctl("-j", "-T", "5", "-e", ep, "set", "intensity_pct=35")
        check(r.returncode == 0 and json.loads(r.stdout)["result"]["protocol"]["intensity_pct"]
              == 35, r)
        r = rpmsctl("-e", ep, "set", "-T", "5", "train_pulses=4", "--json")
        check(r.returncode == 0 and json.loads(r.stdout)["result"]["protocol"]["train_pulses"]
              == 4, r)
        r = rpmsctl("-e", ep, "session", "start", "--patient", "P1", "--session", "S1")
        check(r.returncode == 0 and "patient P1, session S1" in r.stdout, r)
        r = rpmsctl("-e", ep, "session", "stop")
        check(r.returncode == 0 and "session stopped" in r.stdout, r)
        r = rpmsctl("--patient", "P2", "-e", ep, "session", "--session", "S2", "start")
        check(r.returncode == 0 and "patient P2, session S2" in r.stdout, r)
        r = rpmsctl("--timeout", "5", "session", "stop", "-e", ep)
        check(r.returncode == 0 and "patient P2, session S2" in r.stdout, r)
        r = rpmsctl("-e", ep, "--", "status")
        check(r.returncode == 0 and "armed:" in r.stdout, r)
        r = rpmsctl("-e", ep, "--help")
        check(r.returncode == 0 and "session start --patient ID --session ID" in r.stdout, r)
        r = rpmsctl("--version")
        check(r.returncode == 0 and r.stdout.startswith("rpmsctl "), r)
        for args, msg in ((["-e"], "option '-e' needs a value"),
                          (["-e", ep], "missing command"),
                          (["-x", "status"], "unknown option '-x'"),
                          (["--bogus", "status"], "unknown or ambiguous option '--bogus'"),
                          (["-e", ep, "bogus"], "unknown command 'bogus'"),
                          (["-e", ep, "keygen", os.path.join(TMP, "k")], "keygen: takes no options"),
                          (["-e", ep, "session", "stop", "--patient", "P"],
                           "--patient: only for 'session start'"),
                          (["-e", ep, "session", "--patient", "P"], "expected 'start' or 'stop'"),
                          (["-e", ep, "arm", "now"], "unexpected argument 'now'")):
            r = rpmsctl(*args)
            check(r.returncode == 2 and msg in r.stderr, "%r: %r" % (args, r))
        check(not os.path.exists(os.path.join(TMP, "k")), "keygen ran")
    finally:
        d.stop()


def keygen(directory, name):
    path = os.path.join(directory, name)
    r = rpmsctl("keygen", path)
    check(r.returncode == 0, r)
    return path, r.stdout.strip()


def curve_conf(directory, allowed):
    server_key, server_pub = keygen(directory, "server.key")
    conf = base_conf()
    conf["control"] = {"endpoint": "tcp://127.0.0.1:%d" % rig.free_port(),
                       "curve_server_secret_file": server_key,
                       "curve_allowed_keys": allowed}
    return conf, server_pub


def test_curve():
    """An allowed client key works (rpmsctl and pyzmq); an unknown key and
    a client without CURVE are refused, and the refusals are logged."""
    tmp = tempfile.mkdtemp(dir=TMP)
    keys = os.path.join(tmp, "clients")
    os.mkdir(keys)
    good, good_pub = keygen(tmp, "good.key")
    bad, bad_pub = keygen(tmp, "bad.key")
    with open(os.path.join(keys, "lab"), "w") as f:
        f.write("# the lab PC\n%s  lab-pc\n" % good_pub)
    with open(os.path.join(keys, "spare"), "w") as f:
        f.write("%s\n" % rpmsctl("keygen", os.path.join(tmp, "spare.key")).stdout.strip())
    conf, server_pub = curve_conf(tmp, keys)
    d = Daemon(conf)
    ep = conf["control"]["endpoint"]
    try:
        r = rpmsctl("status", "-e", ep, "--server-key", server_pub, "--secret-key", good)
        check(r.returncode == 0 and "CURVE on" in r.stdout and server_pub in r.stdout, r)
        r = rpmsctl("status", "-e", ep, "--server-key", server_pub, "--secret-key", bad,
                    "--timeout", "2")
        check(r.returncode == 3, r)
        r = rpmsctl("arm", "-e", ep, "--timeout", "2")
        check(r.returncode == 3, r)
        # a real pyzmq CURVE client with the allowed key
        ctx = zmq.Context()
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        with open(good) as f:
            secret = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")][0]
        s.curve_secretkey = secret.encode()
        s.curve_publickey = zmq.curve_public(secret.encode())
        s.curve_serverkey = server_pub.encode()
        s.connect(ep)
        s.send_json({"cmd": "arm"})
        check(s.poll(int(REPLY_S * 1000)), "no reply to the allowed pyzmq client")
        reply = s.recv_json()
        check(reply["ok"] and reply["result"]["armed"], reply)
        # the allowed key, but the wrong server key: fails before the key is checked
        w = ctx.socket(zmq.REQ)
        w.setsockopt(zmq.LINGER, 0)
        w.curve_secretkey = secret.encode()
        w.curve_publickey = zmq.curve_public(secret.encode())
        w.curve_serverkey = zmq.curve_keypair()[0]
        w.connect(ep)
        w.send_json({"cmd": "arm"})
        check(not w.poll(1000), "a client with the wrong server key was answered")
        w.close()
        # Not a ZeroMQ client: a CURVE greeting, then a malformed command. It waits
        # a moment after connecting, so that its address is read before libzmq
        # drops it (nothing observable says when the daemon has read it).
        import socket
        host, port = ep[len("tcp://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=REPLY_S) as raw:
            raw_port = raw.getsockname()[1]
            time.sleep(1.0)
            raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00" + b"CURVE".ljust(20, b"\x00")
                        + b"\x00" * 32 + b"\x04\x07garbage")
            raw.settimeout(REPLY_S)
            try:
                while raw.recv(4096):
                    pass
            except OSError:
                pass
        # every kind has been logged
        d.wait_for(lambda: all(x in d.stderr() for x in (
            "wrong server public key", "protocol error", "is not in control.curve_allowed_keys"))
            and ("does not use CURVE" in d.stderr() or "hung up during the handshake"
                 in d.stderr()), 20, "refusals not logged")
        s.send_json({"cmd": "status"})
        check(s.poll(int(REPLY_S * 1000)), "no status reply")
        st = s.recv_json()["result"]
        check(st["armed"] and st["control"]["curve"], st)
        # Clients, not handshakes: the unknown key, which ZeroMQ retried for 2 s, is
        # one; the clients without a key from 127.0.0.1 (no CURVE, the wrong server
        # key, not ZeroMQ) are another (one more if one's address could not be read).
        ctl = st["control"]
        print("refusals: %d clients, %d handshakes" % (ctl["clients_refused"],
                                                      ctl["handshakes_refused"]), flush=True)
        check(ctl["clients_refused"] in (2, 3) and
              ctl["handshakes_refused"] > ctl["clients_refused"] + 1, ctl)
        r = rpmsctl("status", "-e", ep, "--server-key", server_pub, "--secret-key", good)
        check(r.returncode == 0 and re.search(r"\d clients refused \(\d+ handshakes\)",
                                              r.stdout), r.stdout)
        s.close()
        ctx.term()
    finally:
        d.stop()
    log = d.stderr()
    check("CURVE: server public key %s, 2 client key(s) allowed" % server_pub in log, log)
    lines = [ln for ln in log.splitlines() if "control: refused client" in ln]
    peer = r"(127\.0\.0\.1:\d+|\(address unknown[^)]*\))"
    check(any("refused client 127.0.0.1: its CURVE public key %s is not in "
              "control.curve_allowed_keys" % bad_pub in ln for ln in lines), log)
    check(any(re.search(r"refused client %s: (it does not use CURVE|it hung up during the "
                        r"handshake)" % peer, ln) for ln in lines), log)
    check(any(re.search(r"refused client %s: its CURVE handshake cannot be decrypted: it was "
                        r"given the wrong server public key \(this server's is %s\)"
                        % (peer, re.escape(server_pub)), ln) for ln in lines), log)
    check(any("refused client 127.0.0.1:%d: protocol error: a malformed handshake command"
              % raw_port in ln for ln in lines), log)
    check(not any("code 0x" in ln or "event 0x" in ln for ln in lines), log)
    check(good_pub not in log.replace("server public key", ""), "the allowed key was refused")


def test_rpmsctl_key_files():
    """rpmsctl reads its key files as the daemon does (daemon/curve_key.c):
    comments and a name after the key; its secret key readable by its owner
    only; a file without a key (or whose first key line is not one) is a
    local error (4) before anything is sent. Keys it accepts get as far as
    the endpoint (no reply: 3)."""
    tmp = tempfile.mkdtemp(dir=TMP)
    secret, pub = keygen(tmp, "client.key")
    nowhere = ["-e", "ipc://%s/nothing" % TMP, "--timeout", "0.5"]

    def status(server, secret_file=secret):
        return rpmsctl("status", "--server-key", server, "--secret-key", secret_file, *nowhere)

    def write(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    r = status(pub)
    check(r.returncode == 3 and "no reply" in r.stderr, r)
    r = status(write("named", "# the rig\n\n   %s  rig-1 # spare\nnot a key\n" % pub))
    check(r.returncode == 3 and "no reply" in r.stderr, r)
    for name, text in (("empty", ""), ("comments", "# nothing\n\n"),
                       ("short", "%s\n%s\n" % (pub[:39], pub)),
                       ("not-z85", "%s\n" % ("~" * 40))):
        path = write(name, text)
        r = status(path)
        check(r.returncode == 4 and "rpmsctl: %s: no Z85 key (40 characters) in it" % path
              in r.stderr, r)
    r = status(os.path.join(tmp, "absent"))
    check(r.returncode == 4 and "absent: No such file or directory" in r.stderr, r)
    empty = write("client-empty.key", "# no key\n")
    os.chmod(empty, 0o600)
    r = status(pub, empty)
    check(r.returncode == 4 and "no Z85 key (40 characters) in it" in r.stderr, r)
    os.chmod(secret, 0o640)
    r = status(pub)
    check(r.returncode == 4 and "rpmsctl: %s: a secret key readable by others (mode 0640): "
          "chmod 600 it" % secret in r.stderr, r)
    # a public key file may be readable by anyone
    os.chmod(secret, 0o600)
    os.chmod(os.path.join(tmp, "named"), 0o644)
    r = status(os.path.join(tmp, "named"))
    check(r.returncode == 3, r)


def check_config_refused(conf, message):
    path = write_conf(conf)
    r = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 1 and message in r.stderr, "%r lacks %r" % (r.stderr, message))
    r = subprocess.run([rig.RPMSD, "--config", path, "--fast"], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 1 and message in r.stderr and "running" not in r.stderr,
          "%r lacks %r" % (r.stderr, message))


def test_exposed_or_bad_keys_are_refused_at_start():
    conf = base_conf()
    conf["control"] = {"endpoint": "tcp://0.0.0.0:%d" % rig.free_port()}
    check_config_refused(conf, "control.endpoint: '%s' can be reached from other hosts"
                         % conf["control"]["endpoint"])
    tmp = tempfile.mkdtemp(dir=TMP)
    allowed = os.path.join(tmp, "allowed")
    with open(allowed, "w") as f:
        f.write("# ok\n%s\nnot-a-key\n" % keygen(tmp, "c.key")[1])
    conf, _ = curve_conf(tmp, allowed)
    conf["control"]["endpoint"] = "tcp://0.0.0.0:%d" % rig.free_port()
    check_config_refused(conf, "control.curve_allowed_keys: %s:3: not a Z85 public key" % allowed)
    with open(allowed, "w") as f:
        f.write("%s\n" % keygen(tmp, "d.key")[1])
    os.chmod(conf["control"]["curve_server_secret_file"], 0o644)
    check_config_refused(conf, "readable by others (mode 0644")


def check_config_ok(conf):
    r = subprocess.run([rig.RPMSD, "--check-config", write_conf(conf)], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "--check-config refused: %s" % r.stderr)


def test_allowlist_must_be_trusted():
    """D5: a key dropped into a directory others may write (or a directory
    on the way to it, or a file of it) would arm the coil: such an
    allowlist is refused at --check-config and at start, naming the path
    and what is wrong. Sticky directories on the way (/tmp) are fine."""
    tmp = tempfile.mkdtemp(dir=TMP)
    outer = os.path.join(tmp, "outer")
    keys = os.path.join(outer, "clients")
    os.makedirs(keys)
    os.chmod(outer, 0o755)
    os.chmod(keys, 0o755)
    lab = os.path.join(keys, "lab")
    with open(lab, "w") as f:
        f.write("%s lab-pc\n" % keygen(tmp, "lab.key")[1])
    os.chmod(lab, 0o644)
    conf, _ = curve_conf(tmp, keys)
    check_config_ok(conf)
    for mode, what in ((0o777, "writable by its group and anyone (mode 0777"),
                       (0o757, "writable by anyone (mode 0757"),
                       (0o775, "writable by its group (mode 0775"),
                       (0o1777, "writable by its group and anyone (mode 1777")):
        os.chmod(keys, mode)
        check_config_refused(conf, "control.curve_allowed_keys: %s: %s" % (keys, what))
    os.chmod(keys, 0o755)
    # a directory on the way that others may write: they could swap the list
    os.chmod(outer, 0o777)
    check_config_refused(conf, "control.curve_allowed_keys: %s: the directory %s on its way "
                         "is writable by its group and anyone (mode 0777" % (keys, outer))
    os.chmod(outer, 0o1777)     # sticky, as /tmp: others cannot rename what is not theirs
    check_config_ok(conf)
    os.chmod(outer, 0o755)
    # a key file of the directory, or the single allowlist file
    os.chmod(lab, 0o664)
    check_config_refused(conf, "control.curve_allowed_keys: %s: writable by its group "
                         "(mode 0664" % lab)
    conf_file = json.loads(json.dumps(conf))
    conf_file["control"]["curve_allowed_keys"] = lab
    check_config_refused(conf_file, "control.curve_allowed_keys: %s: writable by its group "
                         "(mode 0664" % lab)
    os.chmod(lab, 0o644)
    # a link in the directory to a key in a place anyone may write
    wild = tempfile.mkdtemp(dir=TMP)
    os.chmod(wild, 0o777)
    with open(os.path.join(wild, "k"), "w") as f:
        f.write("%s\n" % keygen(tmp, "wild.key")[1])
    os.symlink(os.path.join(wild, "k"), os.path.join(keys, "wild"))
    check_config_refused(conf, "the directory %s on its way is writable by its group and "
                         "anyone" % wild)
    os.unlink(os.path.join(keys, "wild"))
    check_config_ok(conf)
    if os.geteuid() == 0:
        # owned by someone else than root and the daemon's user
        os.chown(lab, 65534, 65534)
        check_config_refused(conf, "control.curve_allowed_keys: %s: %s is owned by uid 65534 "
                             "(allowed: root or the daemon's user" % (lab, lab))
        os.chown(lab, 0, 0)
        os.chown(keys, 65534, 65534)
        check_config_refused(conf, "control.curve_allowed_keys: %s: %s is owned by uid 65534"
                             % (keys, keys))
        os.chown(keys, 0, 0)
    check_config_ok(conf)
    if os.geteuid() != 0:
        raise rig.Skip("the ownership cases need root (the mode cases passed)")


def test_ipc_endpoint_never_deletes_a_file():
    """D9: libzmq removes whatever is at an ipc path before it binds. A
    path that holds anything but a socket is refused, for control.endpoint
    and publish.endpoint, at --check-config and at start, and left as it
    was; a stale socket (its daemon gone) is replaced."""
    tmp = tempfile.mkdtemp(dir=TMP)
    precious = os.path.join(tmp, "notes.txt")
    with open(precious, "w") as f:
        f.write("patient notes\n")
    folder = os.path.join(tmp, "folder")
    os.mkdir(folder)
    link = os.path.join(tmp, "link")
    os.symlink(precious, link)
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    cases = ((precious, "a regular file"), (folder, "a directory"), (link, "a symbolic link"),
             (fifo, "a FIFO"))
    for key in ("control", "publish"):
        for path, kind in cases:
            conf = base_conf()
            conf[key]["endpoint"] = "ipc://" + path
            check_config_refused(conf, "%s.endpoint: ipc://%s: %s is %s, not a socket: rpmsd "
                                 "will not replace it" % (key, path, path, kind))
    with open(precious) as f:
        check(f.read() == "patient notes\n", "the file was changed")
    check(os.path.islink(link) and os.path.isdir(folder) and os.path.exists(fifo),
          "something was removed")
    # a socket nobody listens on (a daemon that died) is replaced
    import socket
    stale = os.path.join(tmp, "stale")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    conf = base_conf()
    conf["control"]["endpoint"] = "ipc://" + stale
    check_config_ok(conf)
    d = Daemon(conf)
    try:
        check(d.ok({"cmd": "status"})["control"]["endpoint"] == "ipc://" + stale, "not bound")
    finally:
        d.stop()


def test_ipc_in_use_is_not_taken_over():
    conf = base_conf()
    conf["publish"]["endpoint"] = "ipc://%s/events" % tempfile.mkdtemp(dir=TMP)
    d = Daemon(conf)
    try:
        conf = base_conf()
        conf["control"]["endpoint"] = d.control
        path = write_conf(conf)
        r = subprocess.run([rig.RPMSD, "--config", path, "--fast"], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 1 and "is in use by another process" in r.stderr, r.stderr)
        # --check-config of the running daemon's own configuration passes
        check_config_ok(conf)
        check(d.ok({"cmd": "status"})["control"]["endpoint"] == d.control, "taken over")
        mode = os.stat(d.control[len("ipc://"):]).st_mode & 0o777
        check(mode == 0o660, "socket mode %o" % mode)
        # the event socket is not taken over either
        conf = base_conf()
        conf["publish"]["endpoint"] = d.conf["publish"]["endpoint"]
        r = subprocess.run([rig.RPMSD, "--config", write_conf(conf), "--fast"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 1 and "publish.endpoint: %s is in use by another process"
              % d.conf["publish"]["endpoint"] in r.stderr, r.stderr)
        t = time.monotonic()
        d.ok({"cmd": "calibrate"})
        d.wait_for(lambda: d.of("rpms.state", since=t, state="calibrating"), 10,
                   "the first daemon's events stopped")
    finally:
        d.stop()


def test_default_endpoint_without_runtime_dir():
    if os.path.isdir("/run/rpmsd"):
        raise rig.Skip("/run/rpmsd exists here")
    conf = base_conf()
    del conf["control"]
    r = subprocess.run([rig.RPMSD, "--config", write_conf(conf), "--fast"],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, r.stderr)
    check("running WITHOUT a control socket" in r.stderr, r.stderr)


def doc_block(path, after):
    """The indented code block that follows the line containing @after (and
    the prose up to it) in @path: its lines, unindented."""
    with open(path) as f:
        text = f.read()
    i = text.index(after)
    lines, started = [], False
    for line in text[i:].splitlines()[1:]:
        if line.startswith("    "):
            started = True
            lines.append(line[4:])
        elif started and line.strip():
            break
    check(lines, "no code block after %r in %s" % (after, path))
    return lines


def test_documented_session_example():
    """docs/control.md's rpmsctl session example, run as it is written (the
    control port aside) against config/control-demo.conf, the configuration
    the page tells a new user to start: every command must succeed. (With
    config/demo.conf, which arms at start, session start is refused.)"""
    doc = os.path.join(rig.SOURCE, "docs", "control.md")
    start = doc_block(doc, "To try it from a clone")
    check(any("rpmsd --config config/control-demo.conf" in ln for ln in start), start)
    block = doc_block(doc, "Then, in another terminal")
    check(block[0] == "export RPMSD_CONTROL=tcp://127.0.0.1:5561", block)
    check(any(ln.startswith("rpmsctl session start") for ln in block), block)
    # the port the page names is control-demo.conf's
    demo = os.path.join(rig.SOURCE, "config", "control-demo.conf")
    check(rig.section_value(open(demo).read(), "control", "endpoint") ==
          "tcp://127.0.0.1:5561", "control-demo.conf's endpoint is not the documented one")
    ep = "tcp://127.0.0.1:%d" % rig.free_port()
    text = rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), name="control-demo.conf",
                           extra={("control", "endpoint"): ep})
    path = os.path.join(tempfile.mkdtemp(dir=TMP), "control-demo.conf")
    with open(path, "w") as f:
        f.write(text)
    log = open(path + ".stderr", "w+")
    proc = subprocess.Popen([rig.RPMSD, "--config", path], stdout=subprocess.DEVNULL, stderr=log)
    try:
        # up and answering (the page's first command waits 5 s at most)
        end = time.monotonic() + 60
        while rpmsctl("status", "-e", ep, "--timeout", "1").returncode != 0:
            check(proc.poll() is None and time.monotonic() < end, "rpmsd did not come up")
        script = "set -eu\n" + "\n".join(ln.replace("tcp://127.0.0.1:5561", ep)
                                          for ln in block) + "\n"
        env = dict(os.environ)
        env["PATH"] = os.path.join(rig.BUILD, "tools") + os.pathsep + env["PATH"]
        env.pop("RPMSD_CONTROL", None)
        r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                           timeout=120, env=env, cwd=rig.SOURCE)
        check(r.returncode == 0, "the documented example failed (%d):\n%s\n%s\n%s"
              % (r.returncode, script, r.stdout, r.stderr))
        out = r.stdout
        for frag in ("armed:        no", "session started: patient P-017, session 2026-11-27a",
                     "\narmed\n", "set, from the next burst onset's train", "35 %", "\ndisarmed\n",
                     "session stopped: patient P-017, session 2026-11-27a"):
            check(frag in out, "%r not in:\n%s" % (frag, out))
        check(out.splitlines()[-1].isdigit(), out)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.seek(0)
    check(proc.returncode == 0, log.read())


def test_example_client():
    """docs/examples/client.py, as documented, against a running daemon:
    it validates every message it receives and exits 0."""
    d = Daemon()
    try:
        r = subprocess.run(["/usr/bin/python3", CLIENT, "--control", d.control,
                            "--events", d.conf["publish"]["endpoint"], "--patient", "P9",
                            "--session", "demo-1", "--arm", "--seconds", "5",
                            "--schemas", os.path.join(rig.SOURCE, "docs")],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "client.py: %d\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
        check("pulse 1/5" in r.stdout and "all valid" in r.stdout, r.stdout)
        check(d.of("rpms.state", state="session_stopped", session_id="demo-1"), "no stop")
    finally:
        d.stop()


if __name__ == "__main__":
    rig.run_tests([
        test_every_command,
        test_set_takes_effect_on_the_next_train,
        test_set_beyond_the_caps_is_refused_with_the_rule,
        test_malformed_commands_change_nothing,
        test_sessions_count_their_own_pulses,
        test_open_loop_runs_once_per_session,
        test_open_loop_set_applies_from_the_next_train,
        test_open_loop_set_just_before_a_train,
        test_open_loop_quick_disarm_arm_between_trains,
        test_train_table_fifo_blocks_nothing,
        test_set_and_reload_use_the_table_in_force,
        test_arm_reports_every_refusal,
        test_calibrate,
        test_acquisition_and_coil_in_heartbeat,
        test_rpmsctl,
        test_rpmsctl_options_anywhere,
        test_curve,
        test_rpmsctl_key_files,
        test_exposed_or_bad_keys_are_refused_at_start,
        test_allowlist_must_be_trusted,
        test_ipc_endpoint_never_deletes_a_file,
        test_ipc_in_use_is_not_taken_over,
        test_default_endpoint_without_runtime_dir,
        test_documented_session_example,
        test_example_client,
    ])
