#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""No heap allocation on the real-time threads: rpmsd runs with a test-only
LD_PRELOAD allocator (alloc_count.c) that counts every malloc, calloc,
realloc and aligned allocation by thread name. The acquire and stim threads
must make none while they run, whatever they do: bursts detected, trains
fired, refusals, faults, an open-loop protocol, a fast and a paced run.
The other threads (main, publisher, libzmq) allocate, and their count must
be above zero, which shows the interposer really saw the process."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

PRELOAD = os.environ.get("ALLOC_COUNT_SO", "")


def counted(text, args=("--fast",), stop_when=None):
    out = tempfile.mktemp(prefix="rpmsd-alloc-")
    os.environ["LD_PRELOAD"] = PRELOAD
    os.environ["ALLOC_COUNT_OUT"] = out
    try:
        r = rig.Run(text, args=args, timeout=60, stop_when=stop_when)
    finally:
        del os.environ["LD_PRELOAD"]
        del os.environ["ALLOC_COUNT_OUT"]
    check(os.path.exists(out), "no allocation report: %s" % r.stderr)
    with open(out) as f:
        counts = dict((k, int(v)) for k, v in (line.split() for line in f))
    os.unlink(out)
    return r, counts


def test_bank_every_path():
    """bank_process and the other bank_* calls of the acquire thread, made
    directly under its thread name (bank_alloc.c): calibration, bursts, a
    train's blanks, a gap, a recalibration, the assessment tally's unclipped
    chain and windows (issue 21). The daemon runs below reach the bank only
    along the paths their replay happens to take."""
    out = tempfile.mktemp(prefix="rpmsd-alloc-")
    env = dict(os.environ, LD_PRELOAD=PRELOAD, ALLOC_COUNT_OUT=out)
    r = subprocess.run([os.environ["BANK_ALLOC_EXE"]], env=env, capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "bank_alloc exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
    check(os.path.exists(out), "no allocation report: %s" % r.stderr)
    with open(out) as f:
        counts = dict((k, int(v)) for k, v in (line.split() for line in f))
    os.unlink(out)
    check(counts["rpmsd-acquire"] == 0, "allocations in the bank: %r" % counts)
    check(counts["other"] > 0, "the interposer saw nothing: %r" % counts)


def endpoint():
    return "tcp://127.0.0.1:%d" % rig.free_port()


def test_closed_loop_fast_replay():
    """The demo: three bursts, three 5-pulse trains, a refusal by the
    interval rule, a coil fault on the 7th pulse; the session recorded and
    the EMG streamed (the acquire thread feeds both through its tap)."""
    r, c = counted(rig.demo_config(endpoint(), extra={
        ("safety", "min_train_interval_ms"): "1000", ("coil.sim", "fail_every"): "7",
        ("record", "directory"): tempfile.mkdtemp(prefix="rpmsd-alloc-rec-"),
        ("publish", "emg_stream"): "true"}))
    check(r.returncode == 3, "exit %d: %s" % (r.returncode, r.stderr))
    check(len(r.of("rpms.stim")) >= 6 and r.of("rpms.safety"), "too little happened")
    check(c["rpmsd-acquire"] == 0 and c["rpmsd-stim"] == 0, "RT allocations: %r" % c)
    check(c["other"] > 0, "the interposer saw nothing: %r" % c)


def test_open_loop_paced():
    """Three seconds on the real clock, an on/off protocol firing at 20 Hz
    from the start, stopped by SIGTERM mid-train; the sim plugin's simulated
    patient answers every pulse (its draw on the stim thread, its M-wave
    mixed into the replay on the acquire thread)."""
    def enough(msgs):
        return sum(1 for t, _, _ in msgs if t == "rpms.stim") >= 40

    r, c = counted(rig.demo_config(endpoint(), extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "onoff",
        ("stim", "on_ms"): "1000", ("stim", "off_ms"): "600",
        ("safety", "max_train_pulses"): "20", ("stim", "open_loop_pulses"): "1000",
        ("coil.sim", "patient_threshold_pct"): "20", ("coil.sim", "patient_noise"): "0.3"}),
        args=(), stop_when=enough)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    check(len(r.of("rpms.stim")) >= 40, "pulses %d" % len(r.of("rpms.stim")))
    check(c["rpmsd-acquire"] == 0 and c["rpmsd-stim"] == 0, "RT allocations: %r" % c)
    check(c["other"] > 0, "the interposer saw nothing: %r" % c)


if __name__ == "__main__":
    check(PRELOAD and os.path.exists(PRELOAD), "ALLOC_COUNT_SO not set or missing")
    rig.run_tests([
        test_bank_every_path,
        test_closed_loop_fast_replay,
        test_open_loop_paced,
    ])
