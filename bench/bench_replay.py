#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Whole-daemon throughput: rpmsd --fast on the bundled recording (63.88 s,
1 channel, 1 kHz) with the demo configuration, 11 runs. Reports the median
and maximum wall time (process start to exit, so start-up, ZeroMQ bind and
the summary are included) and the median speed-up over real time.

Optional third argument 'nomains': the same with dsp.mains_hz = 0 (no
mains filter), a configuration every commit since the key has can run, for
comparing builds of different commits (bench/compare.sh)."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

build, source = sys.argv[1], os.path.abspath(sys.argv[2])
nomains = len(sys.argv) > 3 and sys.argv[3] == "nomains"
rpmsd = os.path.join(build, "daemon", "rpmsd")
demo = os.path.join(source, "config", "demo.conf")
with open(demo) as f:
    text = f.read()
text = text.replace("file = ../data/emg/emg_1.txt", "file = %s/data/emg/emg_1.txt" % source)
text = text.replace("tcp://127.0.0.1:5560", "tcp://127.0.0.1:5591")
# The demo's state_dir is relative to config/; the configuration written
# here lives elsewhere, so the pulse ledger gets a directory of its own.
state = tempfile.mkdtemp(prefix="rpmsd-bench-state-")
text = text.replace("state_dir = ../build/demo-state", "state_dir = %s" % state)
if nomains:
    text += "\n[dsp]\nmains_hz = 0\n"
fd, conf = tempfile.mkstemp(suffix=".conf")
with os.fdopen(fd, "w") as f:
    f.write(text)
times = []
for _ in range(11):
    t0 = time.monotonic()
    r = subprocess.run([rpmsd, "--config", conf, "--fast"], capture_output=True, text=True)
    times.append(time.monotonic() - t0)
    if r.returncode != 0 or "pulses fired:    15" not in r.stdout:
        sys.exit("rpmsd failed: %s %s" % (r.stdout, r.stderr))
os.unlink(conf)
shutil.rmtree(state)
med = statistics.median(times)
print("rpmsd --fast, 63.88 s recording%s: median %.1f ms, max %.1f ms over %d runs; "
      "%.0fx real time" % (", dsp.mains_hz = 0" if nomains else "", med * 1e3, max(times) * 1e3, len(times), 63.88 / med))
