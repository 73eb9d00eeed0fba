#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An independent end-to-end check of 20 control sessions, as a researcher
would run them: the real rpmsd (paced replay of rest EMG, the sim coil,
recording on, a control socket), a ZeroMQ subscriber of its own (not
rpmsctl tail, not the other tests' helpers), rpmsctl for every command,
and MNE reading every session's EDF+.

Each session: session start (patient and session ids; the session id a
UUID, the longest id the control socket takes), arm, a few pulses of the
open-loop protocol, then a disarm (every other session) and session stop
(which disarms the others). Then for every session's file:

- the header holds the session's patient (MNE) and session id (its
  recording identification, which MNE does not keep);
- every pulse the sim coil logged while the session ran is annotated,
  and is the pulse the subscriber received;
- the arm and the disarm are annotated, arm before the pulses before the
  disarm, each pulse where its sample says;
- the data covers the session: from at most two blocks before its start
  to its stop, the disarm included; no "recording lost" anywhere.

Passes when 20 sessions out of 20 pass (issue 16).
"""

import datetime
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpms_subscriber import Subscriber  # noqa: E402

BUILD = os.environ.get("RPMSD_BUILD_ROOT", "")
RPMSD = os.path.join(BUILD, "daemon", "rpmsd")
RPMSCTL = os.path.join(BUILD, "tools", "rpmsctl")
RATE = 1000
BLOCK = 8
SESSIONS = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


class Rig:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rpmsd-e2e-")
        self.rec = os.path.join(self.tmp, "rec")
        self.state = os.path.join(self.tmp, "state")
        os.mkdir(self.rec)
        os.mkdir(self.state)
        self.pulse_log = os.path.join(self.tmp, "pulses.csv")
        self.control = "ipc://%s/control" % self.tmp
        self.events = "tcp://127.0.0.1:%d" % free_port()
        emg = os.path.join(self.tmp, "rest.txt")
        rng = random.Random(20)
        with open(emg, "w") as f:
            f.write("# rest EMG, 10 uV of noise\n")
            f.writelines("%.2f\n" % rng.gauss(0.0, 10.0) for _ in range(300 * RATE))
        conf = {
            "daemon": {"state_dir": self.state},
            "source": {"file": emg, "format": "text", "rate_hz": str(RATE),
                       "realtime": "true", "block_frames": str(BLOCK)},
            "detect": {"calibration_s": "1"},
            "stim": {"plugin": "sim", "mode": "open_loop", "protocol": "train",
                     "train_pulses": "3", "train_frequency_hz": "20", "intensity_pct": "30",
                     "off_ms": "150", "open_loop_pulses": "1000"},
            "safety": {"max_train_pulses": "10", "motor_threshold_pct": "40",
                       "min_train_interval_ms": "100", "max_frequency_hz": "25"},
            "publish": {"endpoint": self.events},
            "control": {"endpoint": self.control},
            "record": {"directory": self.rec},
            "coil.sim": {"pulse_log": self.pulse_log},
        }
        self.conf = os.path.join(self.tmp, "e2e.conf")
        with open(self.conf, "w") as f:
            for section, keys in conf.items():
                f.write("[%s]\n" % section)
                f.writelines("%s = %s\n" % kv for kv in keys.items())
        self.sub = Subscriber(self.events)
        self.err = open(os.path.join(self.tmp, "rpmsd.stderr"), "w+")
        self.proc = subprocess.Popen([RPMSD, "--config", self.conf, "--wait-subscriber=30"],
                                     stdout=subprocess.DEVNULL, stderr=self.err)

    def stderr(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()[-3000:]

    def wait_for(self, pred, what, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = pred()
            if got:
                return got
            check(self.proc.poll() is None, "rpmsd exited (%s) waiting for %s\n%s"
                  % (self.proc.returncode, what, self.stderr()))
            time.sleep(0.005)
        fail("no %s within %d s\n%s" % (what, timeout, self.stderr()))

    def ctl(self, *args):
        p = subprocess.run([RPMSCTL] + list(args) + ["-e", self.control, "--json", "-T", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        reply = json.loads(p.stdout) if p.stdout.strip() else None
        check(p.returncode == 0 and reply and reply["ok"], "rpmsctl %s: exit %d, %r, %s"
              % (" ".join(args), p.returncode, reply, p.stderr))
        return reply["result"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        # the subscriber drains what was sent before the exit
        self.sub.drain_and_close()
        check(self.proc.returncode == 0, "rpmsd exit %d\n%s" % (self.proc.returncode,
                                                              self.stderr()))


def run_sessions(rig):
    rig.wait_for(lambda: rig.sub.of("rpms.state", state="calibrated"), "calibration")
    sessions = []
    for i in range(SESSIONS):
        patient, session = "P-%03d" % (i + 1), str(uuid.UUID(int=random.Random(i).getrandbits(128)))
        rep = rig.ctl("session", "start", "--patient", patient, "--session", session)
        check(rep["session"] == {"patient_id": patient, "session_id": session}, rep)
        check(rep["recording"] and rep["recording"].get("file"), "no file: %r" % rep)
        mark = rig.sub.count()
        check(rig.ctl("arm")["armed"], "not armed")
        rig.wait_for(lambda: len(rig.sub.of("rpms.stim", since=mark)) >= 3, "3 pulses")
        explicit = i % 2 == 0
        if explicit:
            rig.ctl("disarm")
        stopped = rig.ctl("session", "stop")
        check(stopped["stopped"] and not stopped["armed"], stopped)
        sessions.append({"patient": patient, "session": session,
                         "file": rep["recording"]["file"],
                         "disarm": "control: disarm" if explicit else "session stopped"})
    return sessions


def header_recording_id(path):
    """The EDF+ local recording identification's subfields: MNE does not
    keep them, so they are read from the header's bytes 88-167."""
    with open(path, "rb") as f:
        f.seek(88)
        return f.read(80).decode("ascii").split()


def check_session(rig, s, fired, stim):
    import mne
    started = rig.sub.of("rpms.state", state="session_started", session_id=s["session"])
    stopped = rig.sub.of("rpms.state", state="session_stopped", session_id=s["session"])
    check(len(started) == 1 and len(stopped) == 1, "session events %r %r" % (started, stopped))
    started, stopped = started[0], stopped[0]
    t0, t1 = started["t_session_s"], stopped["t_session_s"]

    raw = mne.io.read_raw_edf(s["file"], preload=False, verbose="error")
    subject = raw.info["subject_info"]
    if subject is None:     # MNE < 1.6 keeps the patient subfields only here
        subject = {"his_id": raw._raw_extras[0]["subject_info"].get("id")}
    check(subject.get("his_id") == s["patient"], "patient %r in the header" % subject)
    rid = header_recording_id(s["file"])
    check(len(rid) == 5 and rid[0] == "Startdate" and rid[2] == s["session"] and
          rid[4].startswith("rpmsd-"), "recording identification %r" % rid)
    check(datetime.datetime.strptime(rid[1], "%d-%b-%Y").date() == raw.info["meas_date"].date(),
          "start date %r, MNE's %r" % (rid[1], raw.info["meas_date"]))

    ann = list(zip(raw.annotations.description, raw.annotations.onset))
    texts = [t for t, _ in ann]
    lost = [a for a in ann if a[0].startswith("recording lost")]
    check(not lost, "false loss: %r" % lost)
    arm_text, disarm_text = "armed: control: arm", "disarmed: " + s["disarm"]
    check(texts.count(arm_text) == 1, "arm annotated %d times: %r" % (texts.count(arm_text), ann))
    check(texts.count(disarm_text) == 1, "%r annotated %d times: %r"
          % (disarm_text, texts.count(disarm_text), ann))
    armed = [b for b in rig.sub.of("rpms.state", state="armed") if t0 <= b["t_session_s"] <= t1]
    disarmed = [b for b in rig.sub.of("rpms.state", state="disarmed", reason=s["disarm"])
                if t0 <= b["t_session_s"] <= t1]
    check(len(armed) == 1 and len(disarmed) == 1, "arm %r disarm %r" % (armed, disarmed))
    arm_at = ann[texts.index(arm_text)][1]
    disarm_at = ann[texts.index(disarm_text)][1]
    # the stim thread's arm and disarm are annotated where they happened on
    # the sample clock (sample_at), to edflib's 100 us
    check(armed[0]["sample_at"] is not None and disarmed[0]["sample_at"] is not None,
          "arm %r disarm %r without sample_at" % (armed[0], disarmed[0]))
    first = round(armed[0]["sample_at"] - arm_at * RATE)  # the file's first sample
    check(abs(disarm_at * RATE - (disarmed[0]["sample_at"] - first)) <= 0.1 * RATE / 1000,
          "disarm at %.4f s, published at sample %.3f, file from %d"
          % (disarm_at, disarmed[0]["sample_at"], first))

    # every pulse the coil fired in the session: published, annotated, in order
    mine = [t for t in fired if t0 <= t <= t1]
    check(len(mine) >= 3, "the coil fired %d pulses in the session" % len(mine))
    prev = arm_at
    for t in mine:
        ev = [p for p in stim if -0.005 < t - p["t_actual_s"] < 0.005]
        check(len(ev) == 1, "the coil fired at %.6f s; the subscriber has %r" % (t, ev))
        ev = ev[0]
        text = "pulse %d.%d %.4g%%" % (ev["train_id"], ev["index"], ev["intensity_pct"])
        check(texts.count(text) == 1, "%s (fired at %.6f s) annotated %d times: %r"
              % (text, t, texts.count(text), ann))
        at = ann[texts.index(text)][1]
        # at its firing time on the sample clock, to edflib's 100 us
        check(abs(at * RATE - (ev["sample_at_fire"] - first)) <= 0.1 * RATE / 1000,
              "%s at %.4f s, fired at sample %.3f, file from %d"
              % (text, at, ev["sample_at_fire"], first))
        check(at >= prev, "%s at %.4f s, before the arm or the pulse before (%.4f s)"
              % (text, at, prev))
        prev = at
    check(disarm_at >= prev, "disarm at %.4f s, before the last pulse (%.4f s)"
          % (disarm_at, prev))
    others = [p for p in stim if t0 <= p["t_actual_s"] <= t1]
    check(len(others) == len(mine), "%d pulses published in the session, the coil logged %d"
          % (len(others), len(mine)))

    # the data covers the session: it starts with the last block the
    # recorder had (the block of the session's start may still have been
    # on its way), ends where the session stopped
    ends = [o for t, o in ann if t == "end of data"]
    check(len(ends) == 1, "end of data: %r" % ann)
    end = first + round(ends[0] * RATE)         # one past the last sample
    check(started["sample"] - 2 * BLOCK < first <= started["sample"] + 1,
          "file from sample %d, session started at %d" % (first, started["sample"]))
    check(disarmed[0]["sample"] < end <= stopped["sample"] + 1,
          "data to %d, disarm at %d, session stopped at %d"
          % (end, disarmed[0]["sample"], stopped["sample"]))
    check(raw.n_times == -(-(end - first) // RATE) * RATE,
          "MNE reads %d samples for %d of data" % (raw.n_times, end - first))
    # rpms.record keeps 47 bytes of the file's name
    closed = [b for b in rig.sub.of("rpms.record", kind="closed")
              if os.path.basename(s["file"]).startswith(b["file"])]
    check(len(closed) == 1 and closed[0]["lost"] == 0, "rpms.record closed %r" % closed)


def main():
    rig = Rig()
    try:
        try:
            sessions = run_sessions(rig)
        finally:
            rig.stop()
        with open(rig.pulse_log) as f:
            fired = [float(line.split(",")[0]) for line in f.readlines()[1:]]
        stim = rig.sub.of("rpms.stim")
        # the subscriber missed nothing: every topic's seq without a gap
        for topic in ("rpms.stim", "rpms.state", "rpms.record"):
            seqs = [b["seq"] for b in rig.sub.of(topic)]
            check(seqs == list(range(len(seqs))), "%s: seq gaps" % topic)
        check(not rig.sub.of("rpms.record", kind="lost"), "rpms.record lost: %r"
              % rig.sub.of("rpms.record", kind="lost"))
        passed, failures = 0, []
        for s in sessions:
            try:
                check_session(rig, s, fired, stim)
                passed += 1
            except AssertionError as e:
                failures.append("session %s (%s): %s" % (s["session"], s["patient"], e))
        print("%d sessions out of %d pass" % (passed, len(sessions)))
        for f in failures:
            print("FAIL " + f)
        check(passed == SESSIONS, "%d of %d sessions failed" % (len(failures), SESSIONS))
    finally:
        shutil.rmtree(rig.tmp, ignore_errors=True)
    print("ok   20 sessions out of 20")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL %s" % e)
        sys.exit(1)
