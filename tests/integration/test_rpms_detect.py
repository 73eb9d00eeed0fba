#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rpms-detect: the daemon's detector offline. Checks that it decides
exactly what rpmsd decides on the same recording and configuration (same
onset and offset samples, same decision samples), that the output is the
documented CSV, that it finds the bundled recording's bursts, and that
bad input is a clear error that names what was wrong."""

import csv
import io
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

DETECT = os.path.join(rig.BUILD, "tools", "rpms-detect")
EMG = os.path.join(rig.SOURCE, "data", "emg", "emg_1.txt")
TMP = tempfile.mkdtemp(prefix="rpms-detect-")


def run(args, **kw):
    return subprocess.run([DETECT] + list(args), capture_output=True, text=True,
                          timeout=60, **kw)


def rows(out):
    lines = out.splitlines()
    check(lines and lines[0] == "event,channel,sample,decision_sample",
          "header %r" % lines[:1])
    return [(r["event"], int(r["channel"]), int(r["sample"]), int(r["decision_sample"]))
            for r in csv.DictReader(io.StringIO(out))]


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_same_decisions_as_the_daemon():
    """No pulses (disarmed, so no artefact blanking): every burst event of
    a fast replay must be a row of rpms-detect, to the sample."""
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = rig.demo_config(endpoint, {("daemon", "arm_on_start"): "false"})
    r = rig.Run(text)
    check(r.returncode == 0, "rpmsd exit %d: %s" % (r.returncode, r.stderr))
    daemon = [(b["edge"], b["channel"], b["edge_sample"], b["sample"])
              for b in r.of("rpms.burst")]
    check(len(daemon) >= 6, "daemon bursts %r" % daemon)
    p = run(["--config", r.config, EMG])
    check(p.returncode == 0, "rpms-detect: %d %s" % (p.returncode, p.stderr))
    check(rows(p.stdout) == daemon, "rpms-detect %r\nrpmsd %r" % (rows(p.stdout), daemon))


def test_bundled_recording():
    """Defaults: 2 s calibration; the bursts at about 15.5, 25.6 and 26.3 s
    (the one at 1.5 s falls in the calibration window). The weak
    contractions at 36-45 s (6-8 dB above rest) stay below the default
    threshold, if only just (a 30 ms sustain decides it)."""
    p = run([EMG])
    check(p.returncode == 0, p.stderr)
    check("channel 0 calibrated at sample 1999" in p.stderr, p.stderr)
    got = rows(p.stdout)
    onsets = [s / 1000.0 for e, _, s, _ in got if e == "onset"]
    check(len(onsets) == 3 and all(abs(a - b) < 0.1 for a, b in
                                   zip(onsets, (15.45, 25.60, 26.32))), "onsets %r" % onsets)
    check([e for e, _, _, _ in got] == ["onset", "offset"] * 3, "events %r" % got)
    for e, ch, s, d in got:
        check(ch == 0 and d >= s if e == "onset" else ch == 0, "row %r" % ((e, ch, s, d),))


def test_block_size_does_not_change_decisions():
    """Causal, sample by sample: the block size only changes when the tool
    looks, not what it decides."""
    base = rows(run([EMG]).stdout)
    for block in ("1", "7", "512"):
        p = run(["--block", block, EMG])
        check(p.returncode == 0 and rows(p.stdout) == base, "block %s: %s" % (block, p.stderr))


def test_csv_column_and_rate():
    """A CSV without a rate: --rate is needed, --column picks the channel;
    the same samples as the text file give the same decisions."""
    with open(EMG) as f:
        values = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    path = write("two.csv", "noise,emg\n" + "".join("%d,%s\n" % (i % 7, v)
                                                    for i, v in enumerate(values)))
    p = run(["--column", "emg", path])
    check(p.returncode == 1 and "rate" in p.stderr, "no rate: %d %s" % (p.returncode, p.stderr))
    p = run(["--column", "emg", "--rate", "1000", path])
    check(p.returncode == 0 and rows(p.stdout) == rows(run([EMG]).stdout), p.stderr)
    p = run(["--column", "nosuch", "--rate", "1000", path])
    check(p.returncode == 1 and "nosuch" in p.stderr, p.stderr)


def test_trace():
    """--trace: every sample as the detector saw it; thresholds from the
    calibration on; each onset decided where the sustained envelope first
    stood above the onset threshold, each offset below the offset one."""
    path = os.path.join(TMP, "trace.csv")
    p = run(["--trace", path, EMG])
    check(p.returncode == 0, p.stderr)
    with open(path) as f:
        tr = list(csv.DictReader(f))
    check(len(tr) == 63880 and tr[0]["sample"] == "0", "trace rows %d" % len(tr))
    check(tr[1998]["on_threshold"] == "" and tr[1999]["on_threshold"] != "", "calibration")
    for e, _, s, d in rows(p.stdout):
        t = tr[d]
        if e == "onset":
            check(float(t["sustained"]) > float(t["on_threshold"]) >=
                  float(tr[d - 1]["sustained"]), "onset %d: %r" % (d, t))
        else:
            check(float(t["sustained"]) < float(t["off_threshold"]), "offset %d: %r" % (d, t))
    p = run(["--trace", os.path.join(TMP, "no", "such", "dir.csv"), EMG])
    check(p.returncode == 1 and "--trace:" in p.stderr and "dir.csv" in p.stderr, p.stderr)


def test_bad_input():
    cases = [
        (["--mains", "55", EMG], 1, "--mains: dsp.mains_hz: '55' is not allowed (allowed: 0, 50, 60)"),
        (["--block", "0", EMG], 1, "--block: source.block_frames:"),
        (["--rate", "fast", EMG], 1, "--rate: source.rate_hz:"),
        ([os.path.join(TMP, "nosuch.txt")], 1, "nosuch.txt: cannot open"),
        ([], 2, "no INPUT file given"),
        ([EMG, EMG], 2, "more than one INPUT"),
        (["--bogus", EMG], 2, "Usage: rpms-detect"),
    ]
    bad = write("bad.txt", "# Sampling Rate (Hz):= 1000.00\n1\n2\nthree\n4\n")
    cases.append(([bad], 1, "bad.txt:4:"))
    conf = write("bad.conf", "[detect]\nk_on = 500\n")
    cases.append((["--config", conf, EMG], 1, "bad.conf:2: detect.k_on:"))
    for args, status, text in cases:
        p = run(args)
        check(p.returncode == status and text in p.stderr,
              "%r: exit %d, stderr %r" % (args, p.returncode, p.stderr))
        check(p.stdout == "" or status == 1 and p.stdout.count("\n") <= 1,
              "%r wrote %r" % (args, p.stdout))


if __name__ == "__main__":
    import atexit
    import shutil

    atexit.register(shutil.rmtree, TMP, True)
    rig.run_tests([
        test_same_decisions_as_the_daemon,
        test_bundled_recording,
        test_block_size_does_not_change_decisions,
        test_csv_column_and_rate,
        test_trace,
        test_bad_input,
    ])
