#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The wall clock stepped under a running daemon, on the host: a preloaded
shim (walltime_shim.c) adds an offset to rpmsd's CLOCK_REALTIME, time()
and gettimeofday() alone and leaves CLOCK_MONOTONIC alone, as a real step
does; the test changes the offset mid-run. (Debian's libfaketime was
tried first: its clock_nanosleep wrapper fails absolute CLOCK_MONOTONIC
sleeps with EINVAL, which stopped the replay source.) The VM rig's
clockstep test steps the real clock of a real kernel; this one checks the
pulse ledger's rule for a day reached by a step (docs/safety.md):

 - midnight reached by time passing: a new day, the count starts at 0;
 - that midnight is safety.day_zone's, whatever TZ the daemon runs with;
 - midnight reached by a step of the wall clock: the new day keeps the
   count (a wrong step must not hand out a second daily allowance);
 - the pulse schedule, on CLOCK_MONOTONIC, does not move either way."""

import calendar
import os
import re
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

SHIM = os.environ.get("WALLTIME_SHIM", os.path.join(rig.BUILD, "tests", "integration",
                                                    "walltime_shim.so"))
PERIOD = 0.05   # 20 Hz below


def ledger(state_dir):
    with open(os.path.join(state_dir, "dose")) as f:
        text = f.read()
    day = re.search(r"^day = (\S+)$", text, re.M).group(1)
    pulses = int(re.search(r"^pulses = (\d+)$", text, re.M).group(1))
    return day, pulses


def faked_run(start, step_to=None, step_after_pulses=20, stop_after_pulses=60,
              zone="UTC", tz="UTC"):
    """Open-loop 20 Hz trains with the wall clock starting at start (UTC);
    after step_after_pulses pulses, optionally step it to step_to. The
    ledger's days are zone's (safety.day_zone), the daemon's TZ is tz.
    Returns the run and its state directory."""
    tmp = tempfile.mkdtemp(prefix="rpmsd-clock-")
    stamp = os.path.join(tmp, "offset")

    def set_wall(when):
        """Step the daemon's wall clock so that it reads when (UTC) now."""
        target = calendar.timegm(time.strptime(when, "%Y-%m-%d %H:%M:%S"))
        with open(stamp, "r+b" if os.path.exists(stamp) else "wb") as f:
            f.write(struct.pack("=q", int(round(target - time.time()))))

    set_wall(start)
    sdir = rig.state_dir()
    text = rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "onoff",
        ("stim", "on_ms"): "1000", ("stim", "off_ms"): "600",
        ("safety", "max_train_pulses"): "20", ("stim", "open_loop_pulses"): "1000",
        ("daemon", "state_dir"): sdir, ("safety", "day_zone"): zone})
    state = {}

    def step(msgs):
        n = sum(1 for t, _, _ in msgs if t == "rpms.stim")
        if step_to and "stepped" not in state and n >= step_after_pulses:
            set_wall(step_to)
            state["stepped"] = n
        return n >= stop_after_pulses

    r = rig.Run(text, args=(), timeout=60, stop_when=step,
                env={"LD_PRELOAD": SHIM, "WALLTIME_OFFSET_FILE": stamp, "TZ": tz})
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-2000:]))
    check(not step_to or "stepped" in state, "never stepped")
    return r, sdir


def logged_step(err, what, seconds):
    """The daemon logged a step of about seconds (the test sets whole
    seconds against its own clock, the daemon measures between two ticks)."""
    m = re.search(r"stepped by ([+-]\d+) s" + re.escape(what), err)
    return m is not None and abs(int(m.group(1)) - seconds) <= 3


def schedule_unmoved(r):
    """Pulse times on the session clock: the 20 Hz grid within each train."""
    pulses = r.of("rpms.stim")
    check(len(pulses) >= 60, "%d pulses" % len(pulses))
    for a, b in zip(pulses, pulses[1:]):
        gap = b["t_actual_s"] - a["t_actual_s"]
        check(gap >= PERIOD - 1e-6, "pulses %.6f s apart" % gap)
    bad = [x for x in r.of("rpms.state") if x["state"] == "fault"]
    check(not bad, "faults: %r" % bad)
    return len(pulses)


def test_midnight_by_time_passing():
    r, sdir = faked_run("2030-06-14 23:59:57", stop_after_pulses=80)
    n = schedule_unmoved(r)
    day, pulses = ledger(sdir)
    check(day == "2030-06-15", "ledger day %s" % day)
    check("a new day, 2030-06-15 (UTC, ends 2030-06-16T00:00:00Z); its count starts at 0"
          in r.stderr, r.stderr[-2000:])
    # the pulses before midnight stay on the 14th: the 15th holds fewer
    check(0 < pulses < n, "ledger %d pulses of %d fired" % (pulses, n))


def test_midnight_in_the_clinic_zone():
    """The day ends at midnight in safety.day_zone, whatever TZ says: in
    Europe/Berlin, 2030-03-30 ends at 23:00 UTC, and the next day, when
    the clocks go forward, lasts 23 h. TZ=America/New_York plays no part."""
    r, sdir = faked_run("2030-03-30 22:59:57", stop_after_pulses=80,
                        zone="Europe/Berlin", tz="America/New_York")
    n = schedule_unmoved(r)
    day, pulses = ledger(sdir)
    check(day == "2030-03-31", "ledger day %s" % day)
    check("a new day, 2030-03-31 (Europe/Berlin, ends 2030-03-31T22:00:00Z); its count "
          "starts at 0" in r.stderr, r.stderr[-2000:])
    check(0 < pulses < n, "ledger %d pulses of %d fired" % (pulses, n))


def test_midnight_by_a_step():
    r, sdir = faked_run("2030-06-14 21:00:00", step_to="2030-06-15 09:00:00")
    n = schedule_unmoved(r)
    day, pulses = ledger(sdir)
    check(day == "2030-06-15", "ledger day %s" % day)
    check(logged_step(r.stderr, " past the end of the day: the new day 2030-06-15", 43200),
          r.stderr[-2000:])
    check("its count starts at 0" not in r.stderr, r.stderr[-2000:])
    # every pulse of the run is still counted: nothing was handed back
    check(pulses == n, "ledger %d pulses, %d fired" % (pulses, n))


def test_step_back_keeps_the_day():
    r, sdir = faked_run("2030-06-15 00:10:00", step_to="2030-06-14 22:00:00")
    n = schedule_unmoved(r)
    day, pulses = ledger(sdir)
    check(day == "2030-06-15" and pulses == n, "ledger %s %d, %d fired" % (day, pulses, n))
    check(logged_step(r.stderr, "; the ledger stays on its day", -7800), r.stderr[-2000:])
    # and the events tell the step: wall time jumps back against monotonic
    offs = [p["t_wall_ns"] - p["t_mono_ns"] for p in r.of("rpms.stim")]
    check(min(b - a for a, b in zip(offs, offs[1:])) < -7000e9,
          "no step back in the events' wall time")


if __name__ == "__main__":
    if not os.path.exists(SHIM):
        print("FAIL: %s missing (built by meson with the tests)" % SHIM)
        sys.exit(1)
    rig.run_tests([
        test_midnight_by_time_passing,
        test_midnight_in_the_clinic_zone,
        test_midnight_by_a_step,
        test_step_back_keeps_the_day,
    ])
