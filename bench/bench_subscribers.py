#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pulse timing with and without a crowd of subscribers (issue 9's fault
row "100 subscribers and one stalled": RT timing unchanged).

The real daemon on the real clock, open loop, 20 Hz trains (1 s on,
0.6 s off). Condition "1 sub": only the benchmark's own subscriber.
Condition "101 sub": the same plus 100 subscribers that read everything
and one that never reads (RCVHWM 1). The two alternate, A B A B, to
spread the machine's own drift over both. Reported per condition: the
stim thread's lateness (`late_us` of every rpms.stim: actual - scheduled)
p50, p99 and max, and the ratio of the p99s, all from one run. The test
suite checks the functional side (tests/integration/test_faults.py)."""

import os
import statistics
import sys
import threading

import zmq

sys.path.insert(0, os.path.join(os.environ["RPMSD_SOURCE_ROOT"], "tests", "integration"))
import rpmsd_rig as rig  # noqa: E402

PULSES = 150     # per run; 2 runs per condition


def config(ep):
    return rig.demo_config(ep, extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "onoff",
        ("stim", "on_ms"): "1000", ("stim", "off_ms"): "600",
        ("safety", "max_train_pulses"): "20", ("stim", "open_loop_pulses"): "1000"})


def run(crowd):
    ep = "tcp://127.0.0.1:%d" % rig.free_port()
    ctx = zmq.Context.instance()
    socks, threads = [], []
    stop = threading.Event()
    received = [0]

    def read(s):
        while not stop.is_set():
            if s.poll(100):
                s.recv_multipart()
                received[0] += 1

    if crowd:
        stalled = ctx.socket(zmq.SUB)
        stalled.setsockopt(zmq.RCVHWM, 1)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.connect(ep)
        socks.append(stalled)
        for _ in range(100):
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.SUBSCRIBE, b"rpms.")
            s.connect(ep)
            socks.append(s)
            t = threading.Thread(target=read, args=(s,), daemon=True)
            t.start()
            threads.append(t)
    try:
        r = rig.Run(config(ep), args=(), timeout=120,
                    stop_when=lambda m: sum(1 for t, _, _ in m if t == "rpms.stim") >= PULSES)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for s in socks:
            s.close(linger=0)
    if r.returncode != 0:
        sys.exit("rpmsd failed: %s" % r.stderr[-2000:])
    return [p["late_us"] for p in r.of("rpms.stim")], received[0]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    late = {False: [], True: []}
    crowd_msgs = 0
    for crowd in (False, True, False, True):
        xs, got = run(crowd)
        late[crowd] += xs
        crowd_msgs += got
    print("pulse lateness (late_us of rpms.stim), 20 Hz open loop, %d pulses per condition, "
          "conditions alternated A B A B in one run:" % len(late[False]))
    for crowd in (False, True):
        xs = late[crowd]
        print("  %-9s p50 %7.1f us  p99 %7.1f us  max %7.1f us  (%d pulses)"
              % ("101 sub" if crowd else "1 sub", statistics.median(xs), pct(xs, 0.99),
                 max(xs), len(xs)))
    print("  p99 ratio (101 sub / 1 sub): %.2f; the 100 readers received %d messages"
          % (pct(late[True], 0.99) / max(pct(late[False], 0.99), 1e-9), crowd_msgs))


if __name__ == "__main__":
    main()
