#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Block-to-request latency of the real daemon on the fake IIO device rig
(tests/iio/rig.py): libiio's local backend reads a FIFO that iio_gen fills
at 2 kHz with a seeded synthetic EMG (3 s of rest, then a burst about
every 650 ms). rpmsd runs paced, armed, with the sim coil, until iio_gen
has sent BLOCKS blocks (80 s); SIGINT stops it and its session summary gives,
from the acquire thread's own CLOCK_MONOTONIC records:

  block latency    source read returned -> block processed
  request latency  source read returned -> stim_post returned
  block arrivals   interval between two reads returning

Fails (exit 1) when the summary lines are missing, fewer than MIN_BLOCKS
blocks were processed or fewer than MIN_REQUESTS requests were posted.

Runs as root in `unshare -m -n --propagation private` (see meson.build):
the fake sysfs and /dev, and the publisher's loopback, stay private.
By hand, from the source root after `ninja -C build`:
    unshare -m -n --propagation private /usr/bin/python3 bench/bench_iio.py

An argument 'nomains' adds dsp.mains_hz = 0 (no mains filter), a
configuration that commits with different mains filters share, for
comparing builds (bench/compare.sh).
"""

import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("RPMSD_SOURCE_ROOT") or os.path.dirname(HERE)
BUILD = os.environ.get("RPMSD_BUILD_ROOT") or os.path.join(SOURCE, "build")
RPMSD = os.path.join(BUILD, "daemon", "rpmsd")
# meson sets RPMSD_IIO_GEN; by hand, the bench's own copy (rig.py would
# look in tests/iio/, which a build without the tests does not have)
if not os.environ.get("RPMSD_IIO_GEN") and os.access(
        os.path.join(BUILD, "bench", "bench_iio_gen"), os.X_OK):
    os.environ["RPMSD_IIO_GEN"] = os.path.join(BUILD, "bench", "bench_iio_gen")
sys.path.insert(0, os.path.join(SOURCE, "tests", "iio"))
from rig import FakeIio  # noqa: E402

RATE = 2000             # Hz
BLOCK_FRAMES = 4        # 2 ms blocks
MIN_BLOCKS = 10000
BLOCKS = 40000          # sent before SIGINT: 80 s, 120 bursts start in it
# A p99 of fewer than 100 values is just their maximum (nearest rank).
MIN_REQUESTS = 100
REST_S = 3.0            # calibration takes the first CALIBRATION_S of it
CALIBRATION_S = 2.0
INPUT_S = 90.0          # longer than the run: the input never loops
REST_RMS = 20.0         # codes (in_voltage_scale 1: 1 mV a code)
BURST_RMS = 400.0       # 20x rest: far above the onset threshold
SEED = 20240611

# One summary line, e.g.
#   block latency:   arrival -> processed p50 0.3 us, p99 2.3 us, max 3.6 us (493 blocks)
# with ", percentiles of the last 65536" before the ")" past 65536 records.
PCT_RE = re.compile(
    r"^\s*(?P<label>[a-z ]+):\s+.*?p50 (?P<p50>[\d.]+) us, p99 (?P<p99>[\d.]+) us, "
    r"max (?P<max>[\d.]+) us \((?P<count>\d+) (?P<unit>\w+)"
    r"(?:, percentiles of the last (?P<kept>\d+))?\)$")
PERIOD_RE = re.compile(
    r"^\s*block period:\s+(?P<us>[\d.]+) us nominal "
    r"\((?P<frames>\d+) frames at (?P<rate>[\d.e+]+) Hz\)$")


def fail(msg):
    print("bench_iio: FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- input

def band_noise(rng, n):
    """n samples of roughly 40-300 Hz noise at 2 kHz (white noise through
    the difference of two one-pole low-passes), RMS 1."""
    a_hi = math.exp(-2 * math.pi * 300 / RATE)
    a_lo = math.exp(-2 * math.pi * 40 / RATE)
    hi = lo = 0.0
    out = []
    for _ in range(n):
        x = rng.gauss(0.0, 1.0)
        hi = a_hi * hi + (1 - a_hi) * x
        lo = a_lo * lo + (1 - a_lo) * x
        out.append(hi - lo)
    rms = math.sqrt(sum(v * v for v in out) / n)
    return [v / rms for v in out]


def synthetic_emg():
    """(values, burst start times in s): rest noise throughout; from REST_S
    on, bursts of 150-250 ms with 20 ms raised-cosine edges, 400-500 ms
    apart. The gap lets each burst end (offset) before the next starts: the
    envelope needs off_ms (150 ms) below the offset threshold, and the 50 Hz
    notch (Q 30) rings for a couple of hundred ms after a strong burst;
    with gaps of 300 ms some bursts merged. Starts at least 550 ms apart
    stay clear of the safety interval (min_train_interval_ms below)."""
    rng = random.Random(SEED)
    n = int(INPUT_S * RATE)
    values = [rng.gauss(0.0, REST_RMS) for _ in range(n)]
    starts = []
    t = REST_S
    ramp = int(0.020 * RATE)
    while t + 0.3 < INPUT_S:
        length = int(rng.uniform(0.150, 0.250) * RATE)
        first = int(t * RATE)
        noise = band_noise(rng, length)
        for i in range(length):
            edge = min(i, length - 1 - i)
            w = 0.5 - 0.5 * math.cos(math.pi * edge / ramp) if edge < ramp else 1.0
            values[first + i] += BURST_RMS * w * noise[i]
        starts.append(t)
        t += length / RATE + rng.uniform(0.400, 0.500)
    return values, starts


def write_input(directory):
    values, starts = synthetic_emg()
    path = os.path.join(directory, "emg.txt")
    with open(path, "w") as f:
        f.write("# bench_iio synthetic EMG, seed %d, %d Hz\n" % (SEED, RATE))
        f.write("\n".join("%.1f" % v for v in values) + "\n")
    return path, starts


# ---------------------------------------------------------------- daemon

def config_text(endpoint, state_dir):
    return """\
[daemon]
# A bench rig with the sim coil: arm at start so that onsets post requests.
arm_on_start = true
state_dir = %s

[source]
type = iio
uri = local:
device = iio:device0
channels = voltage0
rate_hz = %d
block_frames = %d

[detect]
calibration_start_s = 0
calibration_s = %g

[stim]
plugin = sim
protocol = single
intensity_pct = 30
pulse_width_us = 100
refractory_ms = 100

[safety]
max_frequency_hz = 25
max_train_pulses = 10
min_train_interval_ms = 400
max_intensity_pct = 60

[publish]
endpoint = %s
""" % (state_dir, RATE, BLOCK_FRAMES, CALIBRATION_S, endpoint) + (
        "\n[dsp]\nmains_hz = 0\n" if "nomains" in sys.argv[1:] else "")


def write_config(directory):
    path = os.path.join(directory, "bench_iio.conf")
    state = os.path.join(directory, "state")
    os.makedirs(state, exist_ok=True)
    with open(path, "w") as f:
        f.write(config_text("tcp://127.0.0.1:%d" % free_port(), state))
    return path


def check_config(path):
    r = subprocess.run([RPMSD, "--check-config", path], capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        fail("rpmsd --check-config refused the bench config (exit %d):\n%s"
             % (r.returncode, r.stderr))


def run_daemon(dev, config):
    """Run rpmsd until iio_gen has sent BLOCKS blocks, then SIGINT it.
    Returns (exit status, stdout, stderr, wall seconds, iio_gen's log up to
    the SIGINT: frames it drops after the daemon stops reading are no news)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([RPMSD, "-c", config], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        dev.wait_frames(BLOCKS * BLOCK_FRAMES, timeout=BLOCKS * BLOCK_FRAMES / RATE + 60)
    except TimeoutError as e:
        proc.kill()
        out, err = proc.communicate()
        fail("%s (rpmsd exit %s)\nstderr:\n%s" % (e, proc.returncode, err))
    if proc.poll() is not None:
        out, err = proc.communicate()
        fail("rpmsd ended before SIGINT (exit %d)\nstderr:\n%s" % (proc.returncode, err))
    gen_log = dev.gen_log()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        fail("rpmsd did not stop within 30 s of SIGINT\nstderr:\n%s" % err)
    return proc.returncode, out, err, time.monotonic() - t0, gen_log


# ---------------------------------------------------------------- summary

def parse_summary(out):
    """{'block latency': {...}, 'request latency': {...}, 'block arrivals':
    {...}, 'block period': {...}, 'requested': n, 'pulses': n}."""
    res = {}
    for line in out.splitlines():
        m = PERIOD_RE.match(line)
        if m:
            res["block period"] = {"us": float(m["us"]), "frames": int(m["frames"]),
                                   "rate": float(m["rate"])}
            continue
        m = PCT_RE.match(line)
        if m and m["label"] in ("block latency", "request latency", "block arrivals"):
            res[m["label"]] = {"p50": float(m["p50"]), "p99": float(m["p99"]),
                               "max": float(m["max"]), "count": int(m["count"]),
                               "kept": int(m["kept"] or m["count"])}
            continue
        m = re.search(r"bursts detected: (\d+) \(onsets\)", line)
        if m:
            res["onsets"] = int(m[1])
        m = re.search(r"started stimulation (\d+), ignored in refractory time (\d+), "
                      r"ignored with a request pending (\d+)", line)
        if m:
            res["requested"] = int(m[1])
            res["refractory"] = int(m[2])
            res["busy"] = int(m[3])
        m = re.search(r"pulses fired:\s+(\d+)", line)
        if m:
            res["pulses"] = int(m[1])
        m = re.search(r"gaps:\s+(\d+) in the stream, (\d+) samples missing", line)
        if m:
            res["gaps"] = (int(m[1]), int(m[2]))
    return res


def check_summary(res, out):
    for key in ("block latency", "block arrivals", "block period"):
        if key not in res:
            fail("no '%s' line in rpmsd's summary (a paced run prints it):\n%s"
                 % (key, out))
    blocks = res["block latency"]["count"]
    if blocks < MIN_BLOCKS:
        fail("only %d blocks processed, at least %d needed" % (blocks, MIN_BLOCKS))
    req = res.get("request latency")
    if req is None:
        fail("no 'request latency' line: no stimulation request was posted "
             "(%s onsets started stimulation)\n%s" % (res.get("requested", "?"), out))
    if req["count"] < MIN_REQUESTS:
        fail("only %d requests posted, at least %d needed" % (req["count"], MIN_REQUESTS))
    if res.get("requested") is not None and res["requested"] != req["count"]:
        fail("summary disagrees: %d onsets started stimulation, %d request latencies"
             % (res["requested"], req["count"]))


def report(res, starts, wall, rt_refused):
    blk, req, gap = res["block latency"], res["request latency"], res["block arrivals"]
    period = res["block period"]
    bursts = sum(1 for t in starts if t < BLOCKS * BLOCK_FRAMES / RATE)

    def row(name, p, unit):
        kept = "" if p["kept"] == p["count"] else " (percentiles of the last %d)" % p["kept"]
        print("  %-28s p50 %8.1f us  p99 %8.1f us  max %8.1f us  n=%d %s%s"
              % (name, p["p50"], p["p99"], p["max"], p["count"], unit, kept))

    print("rpmsd on the fake IIO rig: %d Hz, %d frames a block, %.1f s wall%s"
          % (period["rate"], period["frames"], wall,
             ", dsp.mains_hz = 0" if "nomains" in sys.argv[1:] else ""))
    print("  nominal block period        %8.1f us" % period["us"])
    row("block arrival interval", gap, "intervals")
    row("arrival -> block processed", blk, "blocks")
    row("arrival -> request posted", req, "requests")
    print("  requests: %d posted for %d synthetic bursts sent (%s onsets, %s in "
          "refractory time, %s with a request pending), %s pulses fired"
          % (req["count"], bursts, res.get("onsets", "?"), res.get("refractory", "?"),
             res.get("busy", "?"), res.get("pulses", "?")))
    print("  p99 request latency / block period: %.4f (%.2f %%)"
          % (req["p99"] / period["us"], 100.0 * req["p99"] / period["us"]))
    print("  max request latency / block period: %.4f" % (req["max"] / period["us"]))
    if "gaps" in res:
        print("  gaps in the stream: %d (%d samples missing)" % res["gaps"])
    print("  real-time threads: %s" % ("REFUSED (normal scheduling)" if rt_refused
                                      else "SCHED_FIFO granted"))
    print("  machine: %d CPUs, Linux %s" % (os.cpu_count(), os.uname().release), flush=True)


def main():
    if os.geteuid() != 0:
        fail("needs root: run as `unshare -m -n --propagation private "
             "/usr/bin/python3 bench/bench_iio.py` (meson benchmark does)")
    if not os.access(RPMSD, os.X_OK):
        fail("no rpmsd at %s: build first (ninja -C build)" % RPMSD)
    # a new network namespace starts with its loopback down
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = tempfile.mkdtemp(prefix="rpmsd-bench-iio-")
    try:
        path, starts = write_input(tmp)
        config = write_config(tmp)
        with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=RATE,
                     input_file=path, scale=1.0) as dev:
            check_config(config)
            rc, out, err, wall, gen_log = run_daemon(dev, config)
    finally:
        # the pulse ledger's state directory is in it too
        shutil.rmtree(tmp)
    if rc != 0:
        fail("rpmsd exit %d after SIGINT\nstdout:\n%s\nstderr:\n%s" % (rc, out, err))
    res = parse_summary(out)
    check_summary(res, out)
    if "dropped" in gen_log:
        print("  note: iio_gen dropped frames (FIFO full):\n" + gen_log, flush=True)
    report(res, starts, wall, "SCHED_FIFO priority" in err and "refused" in err)
    print("\nrpmsd's own summary:" + out.rstrip("\n").split("rpmsd session summary", 1)[-1],
          flush=True)


if __name__ == "__main__":
    main()
