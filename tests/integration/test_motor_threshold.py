#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The motor threshold procedure in the real daemon (docs/threshold.md):
a paced replay of quiet EMG, the sim plugin's simulated patient on channel
1, the coil armed through rpmsctl, `rpmsctl threshold` run against it. The
estimate is within 2 % of maximum output of the patient's true threshold;
each probe is a published rpms.threshold event, a pulse (rpms.stim) and an
EDF+ annotation with its amplitude; the device is asked for and confirms
each probe's output; a cap below the threshold ends it "capped"; a session
pulse cap that runs out stops it with the gate's rule."""

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import validate_events  # noqa: E402

EVENTS = validate_events.load_validator(validate_events.DEFAULT_SCHEMA)

EDF_READ = os.environ.get("EDF_READ", "")
RATE = 2000
TRUE_MT = 43.4


def quiet_recording():
    """Quiet rest EMG (2 µV RMS), long enough for the slowest run."""
    return rig.quiet_recording(os.path.join(tempfile.gettempdir(),
                                            "rpmsd-mt-quiet-%d.csv" % os.getpid()), RATE, 400)


class Daemon(rig.LiveDaemon):
    """A paced rpmsd with a simulated patient; a subscriber keeps every message."""

    def __init__(self, safety=None, coil=None, extra=None):
        directory = tempfile.mkdtemp(prefix="rpmsd-mt-")
        self.rec = os.path.join(directory, "rec")
        os.mkdir(self.rec)
        coil_keys = {"patient_threshold_pct": "%g" % TRUE_MT, "patient_slope_pct": "2",
                     "patient_max_uv": "2500", "patient_noise": "0.25", "patient_seed": "7",
                     "patient_channel": "1", "device_model": "SimStim",
                     "confirm_delay_ms": "30"}
        coil_keys.update(coil or {})
        safety_keys = {"max_train_pulses": "10", "motor_threshold_pct": "40",
                       "max_intensity_pct": "80", "min_train_interval_ms": "100",
                       "max_frequency_hz": "25"}
        safety_keys.update(safety or {})
        conf = {
            "daemon": {"state_dir": rig.state_dir(), "arm_on_start": "false"},
            "source": {"file": quiet_recording(), "format": "csv", "column": "1,2",
                       "rate_hz": str(RATE), "realtime": "true", "block_frames": "16"},
            "detect": {"calibration_s": "1"},
            "stim": {"plugin": "sim", "intensity_pct": "30"},
            "safety": safety_keys,
            "publish": {"endpoint": "tcp://127.0.0.1:%d" % rig.free_port()},
            "control": {"endpoint": rig.control_endpoint()},
            "record": {"directory": self.rec, "patient_id": "P0", "session_id": "S0"},
            "coil.sim": coil_keys,
        }
        conf.update(extra or {})
        text = "".join("[%s]\n%s" % (sec, "".join("%s = %s\n" % kv for kv in keys.items()))
                       for sec, keys in conf.items())
        self.state = conf["daemon"]["state_dir"]
        super().__init__(text, directory, calibration_s=60)

    def request(self, req, valid=True):
        """One raw control request; its reply, checked against docs/control.schema.json."""
        import jsonschema
        import zmq
        with open(os.path.join(rig.SOURCE, "docs", "control.schema.json")) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        sock = self.sub.ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.control)
        sock.send_string(json.dumps(req))
        check(sock.poll(30000), "no reply to %r" % req)
        reply = json.loads(sock.recv())
        sock.close()
        errors = list(cls(dict(schema, **{"$ref": "#/$defs/request"})).iter_errors(req))
        check(not errors if valid else errors,
              "request %r against the schema: %s" % (req, errors[:1]))
        sub = dict(schema, **{"$ref": "#/$defs/ok_reply" if reply.get("ok")
                              else "#/$defs/error_reply"})
        errors = list(cls(sub).iter_errors(reply))
        check(not errors, "reply %r against the schema: %s" % (reply, errors[:1]))
        return reply

    def ctl(self, *args, timeout=120):
        return subprocess.run([rig.RPMSCTL, "--endpoint", self.control] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def annotations(self):
        files = sorted(glob.glob(os.path.join(self.rec, "*.edf")))
        check(len(files) == 1, "expected one recording, found %r" % files)
        p = subprocess.run([EDF_READ, files[0]], stdout=subprocess.PIPE, text=True)
        check(p.returncode == 0, "edf_read failed")
        return [a["text"] for a in json.loads(p.stdout)["annotations"]]


def run_threshold(d, *args):
    arm = d.ctl("arm")
    check(arm.returncode == 0, "arm: %s %s" % (arm.stdout, arm.stderr))
    return d.ctl("threshold", "--channel", "1", "--interval", "0.3", *args)


def probes_of(out):
    return [ln for ln in out.splitlines() if ln.startswith("probe")]


def test_threshold_found():
    d = Daemon()
    try:
        r = run_threshold(d)
        print(r.stdout, end="", flush=True)
        check(r.returncode == 0, "rpmsctl threshold exited %d: %s %s"
              % (r.returncode, r.stdout, r.stderr))
        last = r.stdout.strip().splitlines()[-1]
        check(last.startswith("motor threshold: "), "no result line: %r" % last)
        est = float(last.split()[2])
        check(abs(est - TRUE_MT) <= 2.0, "estimate %g %%, true %g %%" % (est, TRUE_MT))
        d.wait_for(lambda: d.of("rpms.threshold", kind="result"), 10, "the result event")
        probes = d.of("rpms.threshold", kind="probe")
        res = d.of("rpms.threshold", kind="result")[0]
        n = len(probes_of(r.stdout))
        check(res["outcome"] == "found" and res["threshold_pct"] == est,
              "result event %r, rpmsctl said %g" % (res, est))
        check(len(probes) == n == res["pulses"], "%d probe events, %d printed, result says %d"
              % (len(probes), n, res["pulses"]))
        check(n <= 80, "%d pulses: more than the bound" % n)
        # every probe a pulse through the stim path, at its output, confirmed by the device
        pulses = d.of("rpms.stim")
        check(len(pulses) == n, "%d pulses for %d probes" % (len(pulses), n))
        for p, q in zip(probes, pulses):
            check(p["intensity_pct"] == q["intensity_pct"],
                  "probe at %g %%, pulse at %g %%" % (p["intensity_pct"], q["intensity_pct"]))
            check(abs(p["sample_at_fire"] - q["sample_at_fire"]) <= 1.0,
                  "probe at sample %r, pulse at %r" % (p["sample_at_fire"], q["sample_at_fire"]))
        check(not d.of("rpms.safety"), "refusals: %r" % d.of("rpms.safety")[:3])
        for b in probes + [res]:
            validate_events.check_body(EVENTS, "rpms.threshold", b)
        st = d.request({"cmd": "threshold_status", "since": n})
        check(st["result"]["probes"][0]["probe"] == n and not st["result"]["running"] and
              st["result"]["result"]["threshold_pct"] == est, "threshold_status: %r" % st)
        err = d.stop()
        check("asked for %g %%" % probes[0]["intensity_pct"] in err,
              "the device was not asked for the first probe's output")
        ann = d.annotations()
        got = [a for a in ann if a.startswith("threshold probe ")]
        check(len(got) == n, "%d probe annotations for %d probes: %r" % (len(got), n, ann[:8]))
        check(any(a.startswith("motor threshold %g%%" % est) for a in ann),
              "no result annotation: %r" % ann[-6:])
    finally:
        d.stop()


def test_cap_below_threshold():
    d = Daemon()
    # rpmsctl tail's human lines for rpms.threshold; connected once a heartbeat came
    tail = subprocess.Popen([rig.RPMSCTL, "tail", "--endpoint", d.publish, "--topic",
                             "rpms.threshold", "--topic", "rpms.heartbeat"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        check("heartbeat" in tail.stdout.readline(), "no heartbeat from rpmsctl tail")
        r = run_threshold(d, "--cap", "38")
        print(r.stdout, end="", flush=True)
        check(r.returncode == 5, "exit %d (expected 5, not found): %s %s"
              % (r.returncode, r.stdout, r.stderr))
        check("cap 38 % (cap_pct)" in r.stdout, "the cap is not said: %r" % r.stdout)
        check("no motor threshold (capped" in r.stdout and "below the cap, 38 %" in r.stdout,
              "not capped: %r" % r.stdout)
        d.wait_for(lambda: d.of("rpms.threshold", kind="result"), 10, "the result event")
        check(all(p["intensity_pct"] <= 38 for p in d.of("rpms.stim")),
              "a pulse above the cap: %r" % [p["intensity_pct"] for p in d.of("rpms.stim")])
        check(d.of("rpms.threshold", kind="result")[0]["outcome"] == "capped", "outcome")
        tail.send_signal(signal.SIGINT)
        lines = [ln for ln in tail.communicate(timeout=30)[0].splitlines()
                 if "threshold" in ln]
        check(len(lines) == len(probes_of(r.stdout)) + 1, "tail: %r" % lines)
        check("probe 1 at 38 %: " in lines[0], "tail: %r" % lines[0])
        check("capped after %d pulses: no threshold at or below the cap, 38 %%"
              % len(probes_of(r.stdout)) in lines[-1], "tail: %r" % lines[-1])
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
        d.stop()


def test_session_cap_stops_it():
    d = Daemon(safety={"max_session_pulses": "6"})
    try:
        r = run_threshold(d)
        print(r.stdout, end="", flush=True)
        check(r.returncode == 5, "exit %d (expected 5): %s %s"
              % (r.returncode, r.stdout, r.stderr))
        check(len(probes_of(r.stdout)) == 6, "%d probes with a cap of 6"
              % len(probes_of(r.stdout)))
        check("refused by the safety gate: max_session_pulses" in r.stdout,
              "the reason is not the gate's rule: %r" % r.stdout)
        check(len(d.of("rpms.stim")) == 6, "%d pulses" % len(d.of("rpms.stim")))
        d.wait_for(lambda: d.of("rpms.safety"), 10, "the refusal event")
        check(d.of("rpms.safety")[0]["rule"] == "max_session_pulses",
              "refusal %r" % d.of("rpms.safety")[0])
    finally:
        d.stop()


RX = """[patient]
id = P1
[course]
id = C1
sessions = 5
sessions_per_day = 1
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
pulses = 200
[intensity]
motor_threshold_pct = 110
"""


def test_course_session_gets_the_threshold():
    """A threshold found while a course session runs goes into its database row."""
    import sqlite3
    rx = tempfile.mkdtemp(prefix="rpmsd-mt-rx-")
    with open(os.path.join(rx, "C1.rx"), "w") as f:
        f.write(RX)
    # a course's protocol runs open loop: its trains begin at the arm, before the
    # threshold command holds them; the first probe waits for the train in flight
    d = Daemon(extra={"course": {"prescriptions": rx, "rig": "rigA"},
                      "stim": {"plugin": "sim", "intensity_pct": "30", "mode": "open_loop",
                               "protocol": "onoff", "on_ms": "250", "off_ms": "750",
                               "open_loop_pulses": "200"}},
               safety={"max_train_pulses": "10", "motor_threshold_pct": "50"})
    try:
        rep = d.request({"cmd": "session_start", "patient_id": "P1", "session_id": "S1",
                         "course_id": "C1", "motor_threshold_pct": 50})
        check(rep["ok"], "session_start: %r" % rep)
        db_session = rep["result"]["course"]["db_session"]
        db = os.path.join(d.state, "course.db")

        def mt():
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
            try:
                return con.execute("SELECT motor_threshold_pct FROM sessions WHERE id = ?",
                                   (db_session,)).fetchone()[0]
            finally:
                con.close()

        check(mt() == 50, "the row before: %r" % mt())
        r = run_threshold(d)
        check(r.returncode == 0, "rpmsctl threshold: %s %s" % (r.stdout, r.stderr))
        est = float(r.stdout.strip().splitlines()[-1].split()[2])
        check(abs(est - TRUE_MT) <= 2.0, "estimate %g" % est)
        check(mt() == est, "the course session's row has %r, the procedure found %g"
              % (mt(), est))
    finally:
        d.stop()


def test_course_session_waits_for_its_threshold():
    """A "% of motor threshold" course session started without one waits for
    it: only threshold probes fire (the open-loop protocol would begin its
    trains at the arm); the result becomes the session's intensity, checked
    as at session_start, stored with the session, the coil disarmed; armed
    again, the trains fire at it. A result the caps refuse leaves it waiting."""
    rx = tempfile.mkdtemp(prefix="rpmsd-mt-rx-")
    with open(os.path.join(rx, "C1.rx"), "w") as f:
        f.write(RX)                                     # 110 % of MT
    for course, patient, pct in (("C2", "P2", 120), ("C3", "P3", 200)):
        with open(os.path.join(rx, course + ".rx"), "w") as f:
            f.write(RX.replace("id = C1", "id = " + course).replace("id = P1", "id = " + patient)
                    .replace("motor_threshold_pct = 110", "motor_threshold_pct = %d" % pct))
    d = Daemon(extra={"course": {"prescriptions": rx, "rig": "rigA"},
                      "stim": {"plugin": "sim", "intensity_pct": "30", "mode": "open_loop",
                               "protocol": "onoff", "on_ms": "250", "off_ms": "750",
                               "open_loop_pulses": "200"}},
               safety={"max_train_pulses": "10", "motor_threshold_pct": "50",
                       "max_intensity_pct": "50"})
    try:
        rep = d.request({"cmd": "session_start", "patient_id": "P1", "session_id": "S1",
                         "course_id": "C1"})
        check(rep["ok"] and rep["result"]["course"]["motor_threshold_pending"] is True and
              "protocol" not in rep["result"]["course"], "session_start: %r" % rep)
        db_session = rep["result"]["course"]["db_session"]
        st = d.request({"cmd": "status"})["result"]
        check(st["course"]["motor_threshold_pending"] is True, st["course"])
        rep = d.request({"cmd": "set", "params": {"intensity_pct": "40"}})
        check(not rep["ok"] and rep["error"]["code"] == "mt_pending", rep)
        r = run_threshold(d)
        check(r.returncode == 0, "rpmsctl threshold: %s %s" % (r.stdout, r.stderr))
        est = float(r.stdout.strip().splitlines()[-1].split()[2])
        check(abs(est - TRUE_MT) <= 2.0, "estimate %g" % est)
        want = 1.1 * est
        check("course session: its intensity is now %g %%" % want in r.stdout, r.stdout)
        # every pulse until the result was a probe: the protocol never fired
        probes = d.of("rpms.threshold", kind="probe")
        pulses = d.of("rpms.stim")
        check(len(pulses) == len(probes), "%d pulses, %d probes" % (len(pulses), len(probes)))
        st = d.request({"cmd": "status"})["result"]
        check(not st["armed"] and st["course"]["motor_threshold_pending"] is False and
              abs(st["protocol"]["intensity_pct"] - want) < 1e-6, st)
        row = rig_sqlite(os.path.join(d.state, "course.db"),
                         "SELECT motor_threshold_pct, intensity_pct FROM sessions WHERE id = ?",
                         (db_session,))
        check(row[0][0] == est and abs(row[0][1] - want) < 1e-6, row)
        # armed again: the open-loop trains fire at the session's intensity
        n = len(pulses)
        arm = d.ctl("arm")
        check(arm.returncode == 0, arm.stderr)
        d.wait_for(lambda: len(d.of("rpms.stim")) > n + 3, 60, "the protocol's trains")
        trains = d.of("rpms.stim")[n:]
        check(all(abs(p["intensity_pct"] - want) < 1e-6 for p in trains),
              "train intensities %r" % sorted({p["intensity_pct"] for p in trains}))
        check(d.ctl("session", "stop").returncode == 0, "session stop")

        # 200 % of any threshold breaks the train table: refused at the start
        rep = d.request({"cmd": "session_start", "patient_id": "P3", "session_id": "S3",
                         "course_id": "C3"})
        check(not rep["ok"] and rep["error"]["code"] == "beyond_safety_cap" and
              rep["error"]["rule"] == "safety.train_table", rep)
        # 120 % of 43 % is beyond safety.max_intensity_pct (50): it keeps waiting
        rep = d.request({"cmd": "session_start", "patient_id": "P2", "session_id": "S2",
                         "course_id": "C2"})
        check(rep["ok"] and rep["result"]["course"]["motor_threshold_pending"], rep)
        r = run_threshold(d)
        check(r.returncode == 0 and "NOT put in force" in r.stdout and
              "max_intensity_pct" in r.stdout, r.stdout)
        st = d.request({"cmd": "status"})["result"]
        check(st["course"]["motor_threshold_pending"] is True and
              "max_intensity_pct" in st["course"]["motor_threshold_refused"], st["course"])
    finally:
        d.stop()


def rig_sqlite(path, sql, args=()):
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_refusals_of_the_command():
    d = Daemon()
    try:
        r = d.ctl("threshold")
        check(r.returncode == 1 and "disarmed" in r.stderr, "disarmed: %r" % r.stderr)
        rep = d.request({"cmd": "threshold", "cap_pct": 50})
        check(rep["error"]["code"] == "disarmed", "%r" % rep)
        rep = d.request({"cmd": "threshold", "window_ms": [5, 300]}, valid=False)
        check(rep["error"]["code"] == "invalid_value" and rep["error"]["key"] == "window_ms",
              "%r" % rep)
        rep = d.request({"cmd": "threshold_status"})
        check(rep["ok"] and rep["result"] == {"running": False, "probes": [], "result": None},
              "%r" % rep)
        check(d.ctl("arm").returncode == 0, "arm")
        r = d.ctl("threshold", "--channel", "5")
        check(r.returncode == 1 and "channel 5 does not exist" in r.stderr, r.stderr)
        # above safety.max_intensity_pct: that cap wins, and says so
        rep = d.request({"cmd": "threshold", "cap_pct": 90, "interval_s": 0.3, "channel": 1})
        check(rep["result"]["cap_pct"] == 80 and
              rep["result"]["cap_by"] == "safety.max_intensity_pct", "%r" % rep)
        rep = d.request({"cmd": "threshold"})
        check(rep["error"]["code"] == "busy", "a second one at once: %r" % rep)
        rep = d.request({"cmd": "threshold", "stop": True})
        check(rep["result"] == {"stopped": True}, "%r" % rep)
        rep = d.request({"cmd": "threshold_status"})
        check(rep["result"]["result"]["outcome"] == "stopped" and
              rep["result"]["result"]["reason"] == "stopped by request", "%r" % rep)
        # a disarm stops one too
        d.request({"cmd": "threshold", "interval_s": 0.3, "channel": 1})
        d.request({"cmd": "disarm"})
        d.wait_for(lambda: d.request({"cmd": "threshold_status"})["result"]["result"],
                   30, "the procedure to stop")
        rep = d.request({"cmd": "threshold_status"})["result"]["result"]
        check(rep["outcome"] == "stopped" and ("disarmed" in rep["reason"]), "%r" % rep)
    finally:
        d.stop()


def test_threshold_options_as_every_command():
    """rpmsctl threshold takes the control commands' own connection options
    and option errors (tools/rpmsctl_control.c): the endpoint of
    $RPMSD_CONTROL, --timeout checked, CURVE keys in pairs; no daemon."""
    def run(*args, env=None):
        return subprocess.run([rig.RPMSCTL, "threshold"] + list(args), capture_output=True,
                              text=True, timeout=120, env=env)
    for args, want in ((["-x"], "unknown option '-x'"),
                       (["--bogus"], "unknown or ambiguous option '--bogus'"),
                       (["-e"], "option '-e' needs a value"),
                       (["--timeout", "zero"], "--timeout: 'zero' is not a number of seconds"),
                       (["--timeout", "0"], "--timeout: '0' is not a number of seconds"),
                       (["--server-key", "x"], "go together")):
        r = run(*args)
        check(r.returncode == 2 and want in r.stderr, "%r: %d %r" % (args, r.returncode, r.stderr))
    nothing = "ipc://%s/nothing" % tempfile.mkdtemp(prefix="rpmsd-mt-")
    r = run("-T", "0.5", env=dict(os.environ, RPMSD_CONTROL=nothing))
    check(r.returncode == 3 and "no reply from %s within 0.5 s" % nothing in r.stderr,
          "%d %r" % (r.returncode, r.stderr))


if __name__ == "__main__":
    rig.run_tests([test_threshold_found, test_cap_below_threshold, test_session_cap_stops_it,
                   test_course_session_gets_the_threshold,
                   test_course_session_waits_for_its_threshold, test_refusals_of_the_command,
                   test_threshold_options_as_every_command])
