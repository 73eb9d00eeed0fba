#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fault rows of the reliability matrix that the other suites do not
cover, through the real daemon on the real clock (docs/reliability.md):

 - the whole daemon stopped (SIGSTOP) mid-train for 1 s, then continued:
   no pulse is squeezed in to catch up, the stale EMG is caught (refusal
   or watchdog fault) and the coil ends disarmed;
 - 100 subscribers and one that never reads: the daemon does not slow
   down or block, a subscriber that reads gets every event in order."""

import os
import signal
import sys
import threading
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

PERIOD = 0.05  # 20 Hz trains below


def endpoint():
    return "tcp://127.0.0.1:%d" % rig.free_port()


def open_loop(ep, extra=None):
    keys = {("stim", "mode"): "open_loop", ("stim", "protocol"): "onoff",
            ("stim", "on_ms"): "1000", ("stim", "off_ms"): "600",
            ("safety", "max_train_pulses"): "20", ("stim", "open_loop_pulses"): "1000"}
    keys.update(extra or {})
    return rig.demo_config(ep, extra=keys)


def spacing_ok(pulses):
    for a, b in zip(pulses, pulses[1:]):
        if b["t_actual_s"] - a["t_actual_s"] < PERIOD - 1e-6:
            return "pulses %r and %r closer than %g s" % (a, b, PERIOD)
    return None


def test_sigstop_sigcont():
    state = {}

    def stop_and_go(msgs):
        if "pid" not in state:
            return False
        n = sum(1 for t, _, _ in msgs if t == "rpms.stim")
        if "stopped" not in state and n >= 5:
            os.kill(state["pid"], signal.SIGSTOP)
            time.sleep(1.0)
            os.kill(state["pid"], signal.SIGCONT)
            state["stopped"] = n
        return "stopped" in state and n >= state["stopped"] and \
            time.monotonic() - state.setdefault("t", time.monotonic()) > 1.5

    r = rig.Run(open_loop(endpoint()), args=(), timeout=60, stop_when=stop_and_go,
                on_start=lambda pid: state.update(pid=pid))
    check("stopped" in state, "never stopped the daemon")
    pulses = r.of("rpms.stim")
    bad = spacing_ok(pulses)
    check(bad is None, bad)
    stale = [x for x in r.of("rpms.safety") if x["rule"] == "acquisition_stale"]
    faults = [x for x in r.of("rpms.state") if x["state"] == "fault" and x.get("code") == -110]
    check(stale or faults, "the 1 s stop went unnoticed: states %r" % r.of("rpms.state"))
    check(any(x["state"] == "disarmed" for x in r.of("rpms.state")),
          "never disarmed: %r" % r.of("rpms.state"))
    # nothing fired after the stop was noticed: the coil stays disarmed
    first = min([x["t_session_s"] for x in stale + faults])
    check(all(p["t_actual_s"] <= first for p in pulses),
          "a pulse after the stale EMG was noticed: %r" % pulses[-1])


def test_many_and_stalled_subscribers():
    ep = endpoint()
    ctx = zmq.Context.instance()
    stop = threading.Event()
    # one subscriber that never reads, with the smallest queue possible
    stalled = ctx.socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(ep)
    readers = []
    counts = [0] * 100

    def read(i, s):
        while not stop.is_set():
            if s.poll(100):
                s.recv_multipart()
                counts[i] += 1

    for i in range(100):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.SUBSCRIBE, b"rpms.")
        s.connect(ep)
        t = threading.Thread(target=read, args=(i, s), daemon=True)
        t.start()
        readers.append((s, t))

    def enough(msgs):
        return sum(1 for t, _, _ in msgs if t == "rpms.stim") >= 40

    try:
        r = rig.Run(open_loop(ep), args=(), timeout=60, stop_when=enough)
    finally:
        stop.set()
        for s, t in readers:
            t.join()
            s.close(linger=0)
        stalled.close(linger=0)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    pulses = r.of("rpms.stim")
    check(len(pulses) >= 40, "pulses %d" % len(pulses))
    bad = spacing_ok(pulses)
    check(bad is None, bad)
    seqs = [b["seq"] for b in r.of("rpms.stim")]
    check(seqs == list(range(seqs[0], seqs[0] + len(seqs))), "gaps for a reading subscriber")
    check(min(counts) > 0, "some subscribers got nothing: %r" % counts[:10])
    # the publisher never waited for the stalled one: no ring overflowed
    beats = r.of("rpms.heartbeat")
    check(beats and all(not any(h["ring_drops"].values()) for h in beats),
          "heartbeats %r" % beats)


if __name__ == "__main__":
    rig.run_tests([
        test_sigstop_sigcont,
        test_many_and_stalled_subscribers,
    ])
