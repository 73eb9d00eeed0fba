#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The safety model through the real daemon (rpmsd + sim coil + a real
ZeroMQ subscriber, every message validated against the schema):
protocols (on/off, theta burst with a site table, open loop), the pulse
ledger across restarts, a damaged ledger, a SIGKILL mid-session, and the
emergency stop through the sim plugin's FIFO input. The ledger's attacks
of issue 16: TZ changed between runs, a count of 2^64 - 1, a symbolic link
and an older copy put back, the gap between trains across a restart, a
missing state directory; with --enospc (as root, in a private mount
namespace) a ledger whose disk fills up mid-run.

The demo recording's bursts that start stimulation (config/demo.conf) are
at about 15.5, 25.5 and 26.3 s."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import validate_events  # noqa: E402


def endpoint():
    return "tcp://127.0.0.1:%d" % rig.free_port()


_validator = validate_events.load_validator(validate_events.DEFAULT_SCHEMA)


def valid(r):
    for topic, body, _ in r.messages:
        try:
            validate_events.check_body(_validator, topic, body)
        except validate_events.Invalid as e:
            raise AssertionError("%s %r: %s" % (topic, body, e))


def states(r):
    return [(s["state"], s.get("reason")) for s in r.of("rpms.state")]


def test_onoff_closed_loop():
    """onoff, 20 Hz, 250 ms on / 600 ms off, 2 cycles per onset: each
    accepted burst gets two 5-pulse trains with their own train ids, 0.85 s
    apart; the 26.3 s burst falls in the refractory time of the 25.5 s one."""
    r = rig.Run(rig.demo_config(endpoint(), extra={
        ("stim", "protocol"): "onoff", ("stim", "on_ms"): "250",
        ("stim", "off_ms"): "600", ("stim", "cycles"): "2"}))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    p = r.of("rpms.stim")
    check([x["train_id"] for x in p] == [1] * 5 + [2] * 5 + [3] * 5 + [4] * 5,
          "trains %r" % [x["train_id"] for x in p])
    for first, second in ((p[0], p[5]), (p[10], p[15])):
        check(abs(second["t_sched_s"] - first["t_sched_s"] - 0.85) < 1e-6,
              "cycle spacing %r %r" % (first, second))
    for a, b in zip(p, p[1:]):
        if a["train_id"] == b["train_id"]:
            check(abs(b["t_sched_s"] - a["t_sched_s"] - 0.05) < 1e-6, "spacing %r %r" % (a, b))
    check(not r.of("rpms.safety"), "refusals %r" % r.of("rpms.safety"))
    acts = [b.get("action") for b in r.of("rpms.burst", edge="onset")]
    check(acts == ["requested", "requested", "refractory"], "actions %r" % acts)


def test_theta_burst_refused_by_the_builtin_table():
    """Theta burst pulses come at 50 Hz: above the built-in table's highest
    rate, so the configuration is refused at start-up, naming the table."""
    text = rig.demo_config(endpoint(), extra={
        ("stim", "protocol"): "theta_burst", ("safety", "max_frequency_hz"): "50",
        ("safety", "max_train_pulses"): "30"})
    tmp = tempfile.mkdtemp(prefix="rpmsd-it-")
    path = rig.write_config(text, tmp)
    p = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True)
    check(p.returncode == 1, "exit %d" % p.returncode)
    check("stim.protocol = theta_burst: a train of 30 pulses at 50 Hz lasts 0.6 s, longer "
          "than the 0 s that safety.train_table allows at 50 Hz and 75 % of motor threshold"
          in p.stderr and "outside the table" in p.stderr, p.stderr)


def test_theta_burst_with_a_site_table():
    """A site table with a 50 Hz row admits theta bursts: 3 pulses 20 ms
    apart every 200 ms, 10 bursts per train (30 pulses), per onset."""
    tmp = tempfile.mkdtemp(prefix="rpmsd-it-")
    table = os.path.join(tmp, "table.csv")
    with open(table, "w") as f:
        f.write("# test site table\nhz,100\n25,1.28\n50,0.8\n")
    r = rig.Run(rig.demo_config(endpoint(), extra={
        ("stim", "protocol"): "theta_burst", ("safety", "max_frequency_hz"): "50",
        ("safety", "max_train_pulses"): "30", ("safety", "train_table"): table,
        ("stim", "refractory_ms"): "500"}))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    p = r.of("rpms.stim")
    check(len(p) == 60, "pulses %d" % len(p))
    t0 = p[0]["t_sched_s"]
    for k, x in enumerate(p[:30]):
        want = t0 + (k // 3) * 0.2 + (k % 3) * 0.02
        check(abs(x["t_sched_s"] - want) < 1e-6, "pulse %d at %r, want %r" % (k, x, want))


def test_open_loop_runs_to_its_count():
    """Open loop: the protocol runs from arming, whatever the EMG, until 12
    pulses are delivered (5 + 5 + 2), then the coil is disarmed; bursts are
    still published but start nothing."""
    r = rig.Run(rig.demo_config(endpoint(), extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "onoff",
        ("stim", "on_ms"): "250", ("stim", "off_ms"): "600",
        ("stim", "open_loop_pulses"): "12"}))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    p = r.of("rpms.stim")
    check(len(p) == 12, "pulses %d" % len(p))
    check(not r.of("rpms.safety"), "refusals %r" % r.of("rpms.safety"))
    check([x["train_id"] for x in p] == [1] * 5 + [2] * 5 + [3] * 2,
          "trains %r" % [x["train_id"] for x in p])
    check(p[0]["t_actual_s"] < 0.05, "open loop started late: %r" % p[0])
    check(("disarmed", "open-loop protocol complete") in states(r), "states %r" % states(r))
    check(all(b.get("action") == "none" for b in r.of("rpms.burst", edge="onset")),
          "onsets %r" % r.of("rpms.burst", edge="onset"))


def open_loop_log(extra, pulses):
    """An open-loop --fast run of @pulses with the sim plugin's pulse log:
    its pulse times in ns (the log prints them to the ns)."""
    log = os.path.join(tempfile.mkdtemp(prefix="rpmsd-it-"), "pulses.csv")
    conf = {("stim", "mode"): "open_loop", ("stim", "open_loop_pulses"): str(pulses)}
    conf.update(extra)
    r = rig.Run(rig.demo_config(endpoint(), pulse_log=log, extra=conf))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    check(not r.of("rpms.safety"), "refusals %r" % r.of("rpms.safety")[:3])
    with open(log) as f:
        times = [round(float(x.split(",")[0]) * 1e9) for x in f.read().splitlines()[1:]]
    check(len(times) == pulses, "%d pulses of %d" % (len(times), pulses))
    # one train per request, numbered in order
    check([p["train_id"] for p in r.of("rpms.stim")] ==
          [1 + k // p["count"] for k, p in enumerate(r.of("rpms.stim"))], "train ids")
    return times


def test_open_loop_schedule_exact():
    """Issue 16 D2: open loop asks for one train at a time (so that a set
    applies from the next train), each posted ahead of its start; in --fast
    the coil still fires every pulse exactly where docs/safety.md's schedule
    puts it, to the ns: train c, pulse k at first + c x (on-period + off_ms)
    + (k / B) x theta_period + (k mod B) / rate, for each protocol, with the
    count's last train cut to what is left. The same logs, byte for byte,
    as the one-request schedule before the change."""
    table = os.path.join(tempfile.mkdtemp(prefix="rpmsd-it-"), "table.csv")
    with open(table, "w") as f:
        f.write("hz,100\n25,1.28\n50,0.8\n")
    ms = 1_000_000
    # (config, pulses per train, burst size, ns per pulse in a burst, burst period, cycle ns)
    cases = {
        "train": ({("stim", "protocol"): "train", ("stim", "off_ms"): "600"},
                  5, 5, 50 * ms, 0, 850 * ms),
        "onoff": ({("stim", "protocol"): "onoff", ("stim", "train_frequency_hz"): "25",
                   ("stim", "on_ms"): "400", ("stim", "off_ms"): "1234.567"},
                  10, 10, 40 * ms, 0, 1634567 * 1000),
        "theta_burst": ({("stim", "protocol"): "theta_burst",
                         ("safety", "max_frequency_hz"): "50",
                         ("safety", "max_train_pulses"): "30", ("safety", "train_table"): table,
                         ("stim", "off_ms"): "3000"},
                        30, 3, 20 * ms, 200 * ms, 5000 * ms),
        "single": ({("stim", "protocol"): "single", ("stim", "off_ms"): "733.3333",
                    ("source", "block_frames"): "13"}, 1, 1, 0, 0, 733333300),
    }
    for name, (extra, per, burst, step, period, cycle) in cases.items():
        total = 6 * per + per // 2 if per > 1 else 60
        times = open_loop_log(extra, total)
        for n, t in enumerate(times):
            c, k = divmod(n, per)
            want = times[0] + c * cycle + (k // burst) * period + (k % burst) * step
            check(t == want, "%s: pulse %d of train %d at %d ns, the schedule says %d"
                  % (name, k, c, t, want))
        print("     %s: %d pulses on the schedule to the ns" % (name, len(times)))


def test_open_loop_late_never_early():
    """A pause shorter than an EMG block (50 ms from a train's last pulse
    to the next, 64 ms blocks): the policy learns that a train ended only
    at a block, so the next one starts late, never early: every gap at
    least the designed one, every train's own spacing exact."""
    times = open_loop_log({("stim", "protocol"): "train", ("stim", "off_ms"): "0",
                           ("safety", "min_train_interval_ms"): "0",
                           ("source", "block_frames"): "64"}, 100)
    ms = 1_000_000
    late = 0
    for n in range(1, len(times)):
        gap = times[n] - times[n - 1]
        if n % 5:
            check(gap == 50 * ms, "pulse %d: %d ns after the one before" % (n, gap))
        else:
            # the next block after the last pulse: less than 64 ms after it
            check(50 * ms <= gap < 64 * ms, "train %d: %d ns after the last train"
                  % (n // 5, gap))
            late += gap > 50 * ms
        check(times[n] >= times[0] + (n // 5) * 250 * ms + (n % 5) * 50 * ms,
              "pulse %d early" % n)
    print("     %d of 19 trains late (by less than a block)" % late)


def ledger_count(state):
    with open(os.path.join(state, "dose")) as f:
        fields = dict(line.split(" = ", 1) for line in f.read().splitlines()
                      if " = " in line)
    return int(fields["pulses"]), fields["exact"].strip() == "true"


def rewrite_ledger(state, key, value):
    """Set key = value in the ledger and sign it again, as only someone who
    read dose.c would: the checksum is right, the content is not rpmsd's."""
    path = os.path.join(state, "dose")
    with open(path) as f:
        text = f.read()
    text, n = re.subn(r"^%s = .*$" % key, "%s = %s" % (key, value), text, flags=re.M)
    check(n == 1, "no %s in %r" % (key, text))
    body = text[:text.index("checksum = ")]
    with open(path, "w") as f:
        f.write(body + "checksum = %08x\n" % zlib.crc32(body.encode()))
    return path


def refused_to_arm(r, why):
    """No pulse, exit 3, the refusal published and why logged."""
    check(r.returncode == 3, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    check(not r.of("rpms.stim"), "%d pulses fired" % len(r.of("rpms.stim")))
    check(any(s == "fault" and "arm refused" in (w or "") for s, w in states(r)),
          "states %r" % states(r))
    check(why in r.stderr, "%r not in %s" % (why, r.stderr))
    check("the coil is armed" not in r.stderr, "the log claims an arming:\n%s" % r.stderr)


def test_daily_cap_holds_across_restarts():
    """max_daily_pulses = 20: the first run fires its 15 pulses and records
    them exactly; the second run, on the same day and state directory, fires
    5 and refuses the rest under max_daily_pulses."""
    state = rig.state_dir()
    extra = {("daemon", "state_dir"): state, ("safety", "max_daily_pulses"): "20",
             ("safety", "max_session_pulses"): "20"}
    r1 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    check(r1.returncode == 0, "exit %d: %s" % (r1.returncode, r1.stderr))
    check(len(r1.of("rpms.stim")) == 15, "run 1 pulses %d" % len(r1.of("rpms.stim")))
    check(ledger_count(state) == (15, True), "ledger %r" % (ledger_count(state),))
    r2 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    check(r2.returncode == 0, "exit %d: %s" % (r2.returncode, r2.stderr))
    valid(r2)
    check(len(r2.of("rpms.stim")) == 5, "run 2 pulses %d" % len(r2.of("rpms.stim")))
    refused = r2.of("rpms.safety")
    check(refused and all(x["rule"] == "max_daily_pulses" and x["limit"] == 20
                          for x in refused), "refusals %r" % refused)
    check(refused[0]["value"] == 21, "refusal %r" % refused[0])
    check(ledger_count(state) == (20, True), "ledger %r" % (ledger_count(state),))
    check("pulses today:    20 (ledger %s/dose)" % state in r2.stdout, r2.stdout)


def test_damaged_ledger_refuses_to_arm():
    """A ledger with a changed digit: its checksum fails; the daemon names
    the file and line, refuses to arm (published), fires nothing, exits 3,
    and leaves the file exactly as it was."""
    state = rig.state_dir()
    extra = {("daemon", "state_dir"): state}
    r1 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    check(r1.returncode == 0, r1.stderr)
    path = os.path.join(state, "dose")
    with open(path) as f:
        text = f.read()
    bad = text.replace("pulses = 15", "pulses = 14")
    check(bad != text, "ledger %r" % text)
    with open(path, "w") as f:
        f.write(bad)
    r2 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    check(r2.returncode == 3, "exit %d: %s" % (r2.returncode, r2.stderr))
    valid(r2)
    check("pulse ledger: %s:" % path in r2.stderr and "checksum" in r2.stderr, r2.stderr)
    check(not r2.of("rpms.stim"), "pulses %r" % r2.of("rpms.stim"))
    check(any(s == "fault" and "arm refused" in (why or "") for s, why in states(r2)),
          "states %r" % states(r2))
    with open(path) as f:
        check(f.read() == bad, "the damaged ledger was changed")


def test_sigkill_never_undercounts():
    """SIGKILL during a paced open-loop session: the ledger on disk counts
    at least every pulse that was published (it is a reservation, marked
    not exact), so the day's cap cannot be exceeded by crashing."""
    state = rig.state_dir()
    text = rig.demo_config(endpoint(), extra={
        ("daemon", "state_dir"): state, ("stim", "mode"): "open_loop",
        ("stim", "protocol"): "onoff", ("stim", "on_ms"): "250",
        ("stim", "off_ms"): "600", ("stim", "open_loop_pulses"): "1000",
        ("safety", "ledger_reserve_pulses"): "8"})

    def killed(msgs):
        return sum(1 for t, _, _ in msgs if t == "rpms.stim") >= 12

    r = rig.Run(text, args=(), timeout=60, stop_when=killed, stop_signal=signal.SIGKILL)
    check(r.returncode == -signal.SIGKILL, "exit %d" % r.returncode)
    fired = len(r.of("rpms.stim"))
    count, exact = ledger_count(state)
    check(count >= fired and not exact, "ledger %d (exact %s) for %d pulses" % (count, exact, fired))
    check(count <= fired + 8 + 10, "ledger %d for %d pulses: reserved more than needed" % (count, fired))


def test_tz_change_between_runs():
    """Issue 16, D1: the ledger kept a local date without its zone, so
    TZ=Etc/GMT+12 then TZ=Etc/GMT-12 seconds later (two dates, always a day
    apart) gave each run a full day's allowance. The day is
    safety.day_zone's and ends at an instant kept in the ledger: TZ plays
    no part, and neither does a change of the configured zone."""
    state = rig.state_dir()
    extra = {("daemon", "state_dir"): state, ("safety", "max_daily_pulses"): "10",
             ("safety", "max_session_pulses"): "10"}
    # a zone that does not exist is a configuration error, with its line
    text = rig.demo_config(endpoint(), extra={("safety", "day_zone"): "Europe/Berlni"})
    path = rig.write_config(text, tempfile.mkdtemp(prefix="rpmsd-it-"))
    p = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True)
    check(p.returncode == 1 and p.stderr.startswith(
        "rpmsd: %s:%d: safety.day_zone: 'Europe/Berlni': no such time zone"
        % (path, text.splitlines().index("day_zone = Europe/Berlni") + 1)), p.stderr)
    fired = []
    for tz, zone in (("Etc/GMT+12", "UTC"), ("Etc/GMT-12", "UTC"),
                     ("Etc/GMT-12", "Etc/GMT-14"), ("Etc/GMT+12", "Etc/GMT+12")):
        conf = dict(extra)
        conf[("safety", "day_zone")] = zone
        r = rig.Run(rig.demo_config(endpoint(), extra=conf), env={"TZ": tz})
        check(r.returncode == 0, "TZ=%s: exit %d: %s" % (tz, r.returncode, r.stderr))
        valid(r)
        fired.append(len(r.of("rpms.stim")))
        # the first run reaches its session cap (the same 10) first
        rule = "max_session_pulses" if len(fired) == 1 else "max_daily_pulses"
        refused = r.of("rpms.safety")
        check(refused and all(x["rule"] == rule and x["limit"] == 10 and x["value"] == 11
                              for x in refused), "TZ=%s: refusals %r" % (tz, refused))
    check(fired == [10, 0, 0, 0], "pulses per run %r against a cap of 10" % fired)
    print("    TZ attack: %r pulses fired in 4 runs against a daily cap of 10" % fired)


def test_absurd_count_refused():
    """Issue 16, D4: a ledger counting 2^64 - 1 with a valid checksum
    wrapped the day's count (270 pulses fired, pulses_today -1). A count
    above the largest daily cap is damage: named with file and line,
    arming refused."""
    state = rig.state_dir()
    extra = {("daemon", "state_dir"): state}
    r1 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    check(r1.returncode == 0, r1.stderr)
    path = rewrite_ledger(state, "pulses", "18446744073709551615")
    r2 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    line = open(path).read().splitlines().index("pulses = 18446744073709551615") + 1
    refused_to_arm(r2, "pulse ledger: %s:%d: pulses = 18446744073709551615 is more than any "
                   "daily cap allows" % (path, line))
    beats = [b for b in r2.of("rpms.heartbeat") if "pulses_today" in b]
    check(all(b["pulses_today"] >= 0 for b in beats), "pulses_today %r" % beats[-1:])


def test_symlink_and_older_copy_refused():
    """Issue 16, D10: dose replaced by a symbolic link to a ledger with 0
    pulses was followed (270 pulses fired, the real count 40), and an older
    copy of the ledger was accepted. Both are refused: the files are
    opened with O_NOFOLLOW, and a write sequence kept in a second file
    catches the copy."""
    state, other = rig.state_dir(), rig.state_dir()
    extra = {("daemon", "state_dir"): state, ("safety", "max_daily_pulses"): "20",
             ("safety", "max_session_pulses"): "20"}
    r = rig.Run(rig.demo_config(endpoint(), extra={("daemon", "state_dir"): other}))
    check(r.returncode == 0, r.stderr)
    rewrite_ledger(other, "pulses", "0")
    r1 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    check(r1.returncode == 0 and len(r1.of("rpms.stim")) == 15, r1.stderr)
    path = os.path.join(state, "dose")
    shutil.copy(path, path + ".copy")
    os.rename(path, path + ".real")
    os.symlink(os.path.join(other, "dose"), path)
    r2 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    refused_to_arm(r2, "%s: cannot open: it is a symbolic link" % path)
    os.unlink(path)
    os.rename(path + ".real", path)
    # a run that counts on: 5 more, to the cap
    r3 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    check(r3.returncode == 0 and len(r3.of("rpms.stim")) == 5, r3.stderr)
    # the copy of 15 put back
    shutil.copy(path + ".copy", path)
    r4 = rig.Run(rig.demo_config(endpoint(), extra=dict(extra)))
    refused_to_arm(r4, "an older copy was put back; refusing to arm")
    check(ledger_count(state) == (15, True), "the copy was changed")


def gap_config(state, extra=None):
    """Open loop in real time, one 5-pulse train every 2.5 s, at least 2 s
    between trains."""
    conf = {("daemon", "state_dir"): state, ("stim", "mode"): "open_loop",
            ("stim", "protocol"): "onoff", ("stim", "on_ms"): "250",
            ("stim", "off_ms"): "2250", ("safety", "min_train_interval_ms"): "2000",
            ("stim", "open_loop_pulses"): "100"}
    conf.update(extra or {})
    return rig.demo_config(endpoint(), extra=conf)


def test_train_gap_across_restart():
    """Issue 16, D12: a restart let a train follow the previous run's last
    pulse after 0.77-0.82 s against a 2 s minimum. The ledger keeps the last
    pulse's CLOCK_BOOTTIME: after a clean stop the first train waits for the
    rest of the gap; after a crash (the time not known) the whole gap from
    the start."""
    state = rig.state_dir()

    def after(n):
        return lambda msgs: sum(1 for t, _, _ in msgs if t == "rpms.stim") >= n

    r1 = rig.Run(gap_config(state), args=(), timeout=60, stop_when=after(5))
    check(r1.returncode == 0, r1.stderr)
    last = r1.of("rpms.stim")[-1]["t_mono_ns"]
    r2 = rig.Run(gap_config(state), args=(), timeout=60, stop_when=after(1),
                 stop_signal=signal.SIGKILL)
    valid(r2)
    first = r2.of("rpms.stim")[0]["t_mono_ns"]
    check(first - last >= 2.0e9, "run 2 fired %.3f s after run 1's last pulse (minimum 2 s)"
          % ((first - last) / 1e9))
    refused = [x for x in r2.of("rpms.safety") if x["rule"] == "min_train_interval"]
    check(refused and refused[0]["limit"] == 2.0, "no min_train_interval refusal: %r"
          % r2.of("rpms.safety"))
    print("    after a clean stop: first pulse %.3f s after the last one" % ((first - last) / 1e9))
    # run 2 was killed: its last pulse's time is not known, taken as at the start
    last = r2.of("rpms.stim")[-1]["t_mono_ns"]
    r3 = rig.Run(gap_config(state), args=(), timeout=60, stop_when=after(1))
    started = r3.of("rpms.state", state="started")[0]["t_mono_ns"]
    first = r3.of("rpms.stim")[0]["t_mono_ns"]
    check(first - started >= 2.0e9 and first - last >= 2.0e9,
          "after a crash: first pulse %.3f s after the start" % ((first - started) / 1e9))
    check("not known for sure (a crash or a reboot)" in r3.stderr, r3.stderr)


def test_missing_state_dir():
    """Issue 16, B4: a missing daemon.state_dir passed --check-config, and
    the run logged "the coil is armed without a command" while arming was
    refused. --check-config names the file and the key's line (the file
    alone when the key kept its default); the run publishes the refusal
    and never logs an arming that did not happen."""
    missing = os.path.join(tempfile.mkdtemp(prefix="rpmsd-it-"), "no-such-state")
    text = rig.demo_config(endpoint(), extra={("daemon", "state_dir"): missing})
    tmp = tempfile.mkdtemp(prefix="rpmsd-it-")
    path = rig.write_config(text, tmp)
    line = text.splitlines().index("state_dir = " + missing) + 1
    p = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True)
    check(p.returncode == 1, "exit %d: %s" % (p.returncode, p.stderr))
    check(p.stderr.startswith("rpmsd: %s:%d: daemon.state_dir: '%s' does not exist (allowed: "
                              "an existing directory" % (path, line, missing)), p.stderr)
    r = rig.Run(text)
    refused_to_arm(r, "%s:%d: daemon.state_dir: '%s' does not exist" % (r.config, line, missing))
    check("daemon.arm_on_start: the coil is not armed: arm refused: the pulse ledger" in r.stderr,
          r.stderr)
    # the key left at its default
    if not os.path.exists("/var/lib/rpmsd"):
        bare = "\n".join(x for x in text.splitlines() if not x.startswith("state_dir = "))
        path = rig.write_config(bare + "\n", tmp)
        p = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True)
        check(p.returncode == 1 and p.stderr.startswith(
            "rpmsd: %s: daemon.state_dir: '/var/lib/rpmsd' (the default) does not exist"
            % path), p.stderr)


def test_ledger_disk_full():
    """Issue 16, D11: the ledger's disk filled up mid-run: "disarmed" was
    published, not a fault, arm was accepted, and the ledger was never
    written again once space was freed. Now: a fault, arm refused while the
    ledger cannot be written, retried every tick, `recovered` once it can,
    and arm accepted again. The state directory is a 64 KiB tmpfs."""
    if os.geteuid() != 0:
        raise rig.Skip("needs root for a tmpfs")
    d = tempfile.mkdtemp(prefix="rpmsd-ledger-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], check=True)
    ctx = zmq.Context.instance()
    req = {}
    steps = {}

    def command(control, cmd):
        if "sock" not in req:
            req["sock"] = ctx.socket(zmq.REQ)
            req["sock"].setsockopt(zmq.LINGER, 0)
            req["sock"].connect(control)
        req["sock"].send(json.dumps({"cmd": cmd}).encode())
        check(req["sock"].poll(10000), "no reply to %s" % cmd)
        return json.loads(req["sock"].recv())

    def fill():
        fd = os.open(os.path.join(d, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            check(e.errno == 28, "filling the tmpfs: %s" % e)
        finally:
            os.close(fd)

    try:
        text = rig.demo_config(endpoint(), extra={
            ("daemon", "state_dir"): d, ("stim", "mode"): "open_loop",
            ("stim", "protocol"): "onoff", ("stim", "on_ms"): "250",
            ("stim", "off_ms"): "600", ("stim", "open_loop_pulses"): "1000",
            ("safety", "ledger_reserve_pulses"): "4"})
        control = rig.section_value(text, "control", "endpoint")

        def drive(msgs):
            pulses = sum(1 for t, _, _ in msgs if t == "rpms.stim")
            st = [b for t, b, _ in msgs if t == "rpms.state"]
            if "filled" not in steps and pulses >= 6:
                fill()
                steps["filled"] = pulses
            elif "filled" in steps and "arm1" not in steps and any(
                    b["state"] == "fault" and "pulse ledger" in b.get("reason", "")
                    for b in st):
                steps["fault_at"] = pulses
                steps["arm1"] = command(control, "arm")
                os.unlink(os.path.join(d, "filler"))
            elif "arm1" in steps and "arm2" not in steps and any(
                    b["state"] == "recovered" for b in st):
                steps["recovered_at"] = pulses
                steps["arm2"] = command(control, "arm")
            elif "arm2" in steps and pulses >= steps["recovered_at"] + 3:
                return True
            return False

        r = rig.Run(text, args=(), timeout=90, stop_when=drive)
        check(r.returncode == 3, "exit %d (a ledger fault is 3): %s" % (r.returncode, r.stderr))
        valid(r)
        st = [(x["state"], x.get("reason")) for x in r.of("rpms.state")]
        fault = [x for x in r.of("rpms.state")
                 if x["state"] == "fault" and "pulse ledger write failed" in x.get("reason", "")]
        check(len(fault) == 1 and fault[0]["code"] == -28, "states %r" % st)
        check(steps.get("arm1", {}).get("ok") is False and
              steps["arm1"]["error"]["code"] == "arm_refused" and
              "the pulse ledger cannot be written" in steps["arm1"]["error"]["message"],
              "arm while the ledger cannot be written: %r" % steps.get("arm1"))
        check(steps.get("arm2", {}).get("ok") is True, "arm after recovery: %r" % steps.get("arm2"))
        rec = r.of("rpms.state", state="recovered")
        check(rec and rec[0]["reason"] == "pulse ledger written again: arming allowed", "%r" % st)
        # nothing fired between the fault and the arm after recovery
        armed = [x for x in r.of("rpms.state", state="armed")]
        check(len(armed) == 2, "armed %r" % armed)
        between = [p for p in r.of("rpms.stim")
                   if fault[0]["t_session_s"] < p["t_actual_s"] < armed[1]["t_session_s"]]
        check(not between, "pulses while the ledger could not be written: %r" % between)
        count, exact = ledger_count(d)
        check(exact and count == len(r.of("rpms.stim")),
              "ledger %d (exact %s), %d fired" % (count, exact, len(r.of("rpms.stim"))))
    finally:
        if "sock" in req:
            req["sock"].close()
        subprocess.run(["umount", "-l", d])


def test_estop_through_the_daemon():
    """Open loop on the real clock; the sim's e-stop input is pressed after
    a few pulses: state 'estop' at once, the rest of the request refused
    under emergency_stop in the summary, no pulse after the press; an
    operator's stop is not a device fault, so the exit status is 0;
    the sim's estop_log has the edge, enable drop and host disarm times."""
    tmp = tempfile.mkdtemp(prefix="rpmsd-it-")
    fifo = os.path.join(tmp, "estop")
    log = os.path.join(tmp, "estop.csv")
    os.mkfifo(fifo)
    text = rig.demo_config(endpoint(), extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "onoff",
        ("stim", "on_ms"): "500", ("stim", "off_ms"): "600",
        ("stim", "open_loop_pulses"): "100",
        ("coil.sim", "estop_fifo"): fifo, ("coil.sim", "estop_log"): log})
    pressed = {}

    def press(msgs):
        if "t" not in pressed and sum(1 for t, _, _ in msgs if t == "rpms.stim") >= 3:
            with open(fifo, "w") as f:
                f.write("press %d\n" % time.clock_gettime_ns(time.CLOCK_MONOTONIC))
            pressed["t"] = time.monotonic()
        return "t" in pressed and time.monotonic() - pressed["t"] > 1.0

    r = rig.Run(text, args=(), timeout=60, stop_when=press)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    st = states(r)
    check(("estop", "emergency stop input: disarmed") in st, "states %r" % st)
    check(not [x for x in st if x[0] == "fault"], "an e-stop counted as a fault: %r" % st)
    stop = [x for x in r.of("rpms.state") if x["state"] == "estop"][0]
    fired = r.of("rpms.stim")
    check(len(fired) >= 3, "pulses %d" % len(fired))
    check(all(p["t_actual_s"] <= stop["t_session_s"] for p in fired),
          "a pulse after the e-stop: %r, %r" % (fired[-1], stop))
    check(len(fired) < 10, "the first 10-pulse train was not cut short: %d" % len(fired))
    check("emergency stops: 1" in r.stdout and "emergency_stop" in r.stdout, r.stdout)
    with open(log) as f:
        rows = f.read().splitlines()
    check(rows[0] == "edge_ns,enable_drop_ns,host_disarm_ns" and len(rows) == 2, "log %r" % rows)
    edge, drop, host = (int(x) for x in rows[1].split(","))
    check(edge <= drop <= host and host - edge < 200_000_000, "times %r" % rows[1])


def summary_figure(stdout, prefix):
    """The integer after @prefix on its line of the session summary."""
    for line in stdout.splitlines():
        if line.strip().startswith(prefix):
            return int(line.strip()[len(prefix):].split()[0])
    raise AssertionError("no %r in the summary:\n%s" % (prefix, stdout))


def test_refusal_storm_summarised_pulses_kept():
    """Issue 16 D8. Open loop, no pause between requests (off_ms 0, no
    minimum train gap) and a coil that heats up fast (sim heat_per_pulse_c
    10, cooling_tau_s 1): once it is too hot the gate refuses a pulse at
    every EMG block (1 ms), until it has cooled, over and over. With the
    smallest rings (64 records): the first refusal is published and then
    at most one summary a second, whose counts add up to the summary's
    refusals; every pulse the coil fired has its rpms.stim event; all 200
    pulses were delivered, so none is "not delivered". The summary counts
    trains that began, whole or cut short (the coil's own log says which),
    not the requests open loop makes again after each refusal. Before the
    fix: 269 refusal events for 1493 refusals, 68 of 200 pulse events
    published (the rest lost to the full ring) and "120598 not delivered";
    then "200 in 1494 requested trains" and "started stimulation 1494" (of
    4 bursts, which start nothing in open loop)."""
    log = os.path.join(tempfile.mkdtemp(prefix="rpmsd-it-"), "pulses.csv")
    r = rig.Run(rig.demo_config(endpoint(), pulse_log=log, extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "train",
        ("stim", "off_ms"): "0", ("safety", "min_train_interval_ms"): "0",
        ("stim", "open_loop_pulses"): "200", ("source", "block_frames"): "1",
        ("publish", "ring_records"): "64",
        ("coil.sim", "heat_per_pulse_c"): "10", ("coil.sim", "cooling_tau_s"): "1"}))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    with open(log) as f:
        fired = f.read().splitlines()[1:]
    pulses = r.of("rpms.stim")
    check(len(fired) == 200, "the coil fired %d pulses" % len(fired))
    check(len(pulses) == len(fired), "%d pulses fired, %d published" % (len(fired), len(pulses)))
    # "pulses refused:  N not delivered (M refusals)"
    total = int(r.stdout.split(" refusals)")[0].rsplit("(", 1)[1])
    check(total > 500, "only %d refusals: the storm did not happen\n%s" % (total, r.stdout))
    check(summary_figure(r.stdout, "pulses refused:") == 0,
          "pulses not delivered, all 200 were:\n%s" % r.stdout)
    # trains: by the events' train ids, the coil's log in the same order
    trains = {}
    for p in pulses:
        trains.setdefault(p["train_id"], []).append(p)
    ids = sorted(trains)
    # whole: all 5, or the count's last train (it asked for what was left)
    whole = sum(1 for i in ids[:-1] if len(trains[i]) == 5) + 1
    want = "pulses fired:    200 in %d trains: %d whole, %d cut short" % (
        len(ids), whole, len(ids) - whole)
    check(want in r.stdout, "want %r:\n%s" % (want, r.stdout))
    check(len(ids) - whole > 10, "no train was cut short: the storm did not happen")
    check("requested trains" not in r.stdout and "started stimulation" not in r.stdout and
          "bursts started nothing" in r.stdout, r.stdout)
    check("0 lost in rings" in r.stdout, r.stdout)
    safety = r.of("rpms.safety")
    check(safety and safety[0]["kind"] == "refused" and safety[0]["refusals"] == 1,
          "first refusal %r" % safety[:1])
    check(all(x["rule"] == "coil_temperature" and x["dropped"] == 0 for x in safety),
          "refusals %r" % safety)
    check(sum(x["refusals"] for x in safety) == total,
          "published refusals add up to %d, the summary says %d"
          % (sum(x["refusals"] for x in safety), total))
    summaries = [x for x in safety if x["kind"] == "summary"]
    for a, b in zip(summaries, summaries[1:-1]):
        # the last one may be the one made at the disarm that ends the count
        check(b["t_session_s"] - a["t_session_s"] >= 1.0 - 1e-6,
              "two summaries %r s apart" % (b["t_session_s"] - a["t_session_s"]))
    span = pulses[-1]["t_session_s"] - safety[0]["t_session_s"]
    check(len(safety) <= span + 3, "%d refusal events in %.1f s" % (len(safety), span))


def test_refused_open_loop_counted_once():
    """Issue 16 D8: a stimulator that is never ready, open loop asking at
    every block: the 1200 pulses of the count are "not delivered" once,
    not once per request (9582000 before the fix)."""
    r = rig.Run(rig.demo_config(endpoint(), extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "train",
        ("stim", "off_ms"): "0", ("safety", "min_train_interval_ms"): "0",
        ("coil.sim", "never_ready"): "true"}))
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    check(not r.of("rpms.stim"), "pulses %r" % r.of("rpms.stim")[:3])
    check(summary_figure(r.stdout, "pulses refused:") == 1200, r.stdout)
    check("pulses fired:    0 in 0 trains: 0 whole, 0 cut short" in r.stdout, r.stdout)
    check(summary_figure(r.stdout, "not_ready") > 1000, r.stdout)
    check("not_ready" in r.stdout and "1200 pulses not delivered" in r.stdout, r.stdout)
    check(len(r.of("rpms.safety")) < 80, "%d refusal events" % len(r.of("rpms.safety")))


def control(endpoint_, req):
    """One request to the control socket; the reply's result (it must be ok)."""
    import json
    import zmq
    s = zmq.Context.instance().socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint_)
    try:
        s.send(json.dumps(req).encode())
        check(s.poll(15000), "no reply to %r" % req)
        reply = json.loads(s.recv())
    finally:
        s.close()
    check(reply["ok"], "%r refused: %r" % (req, reply))
    return reply["result"]


def test_open_loop_protocol_change_after_disarm_and_session():
    """Issue 16 D2. Open loop on the real clock at 30 %: `set
    stim.intensity_pct=20`, `disarm`, `arm`: every pulse from then on is at
    20 %, on the coil as in the events; then `session_stop`, `set` 25 %,
    `session_start` with a new patient, `arm`: every pulse at 25 %. Before
    the fix the running request survived the disarm (no pulse fell due
    while disarmed) and the trains went on at 30 %."""
    tmp = tempfile.mkdtemp(prefix="rpmsd-it-")
    log = os.path.join(tmp, "pulses.csv")
    text = rig.demo_config(endpoint(), pulse_log=log, extra={
        ("stim", "mode"): "open_loop", ("stim", "protocol"): "train",
        ("stim", "off_ms"): "600", ("stim", "open_loop_pulses"): "1000"})
    ctl = rig.section_value(text, "control", "endpoint")
    step = {"n": 0}

    def pulses_since(msgs, state, reason):
        at = [i for i, (t, b, _) in enumerate(msgs)
              if t == "rpms.state" and b.get("state") == state and b.get("reason") == reason]
        if not at:
            return 0
        return sum(1 for t, _, _ in msgs[at[-1]:] if t == "rpms.stim")

    def drive(msgs):
        n = sum(1 for t, _, _ in msgs if t == "rpms.stim")
        if step["n"] == 0 and n >= 3:
            control(ctl, {"cmd": "set", "params": {"stim.intensity_pct": 20}})
            control(ctl, {"cmd": "disarm"})
            control(ctl, {"cmd": "arm"})
            step["n"] = 1
        elif step["n"] == 1 and pulses_since(msgs, "armed", "control: arm") >= 6:
            control(ctl, {"cmd": "session_stop"})
            control(ctl, {"cmd": "set", "params": {"stim.intensity_pct": 25}})
            control(ctl, {"cmd": "session_start", "patient_id": "P2", "session_id": "S2"})
            control(ctl, {"cmd": "arm"})
            step["n"] = 2
        return step["n"] == 2 and pulses_since(msgs, "session_started", None) >= 6

    r = rig.Run(text, args=(), timeout=120, stop_when=drive)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    valid(r)
    phase, seen = 30.0, []
    for t, b, _ in r.messages:
        if t == "rpms.state" and b["state"] == "disarmed" and b["reason"] == "control: disarm":
            phase = None
        elif t == "rpms.state" and b["state"] == "armed" and b["reason"] == "control: arm":
            phase = 20.0 if phase is None else 25.0
        elif t == "rpms.state" and b["state"] == "disarmed" and b["reason"] == "session stopped":
            phase = 0.0
        elif t == "rpms.stim":
            check(phase, "a pulse while disarmed: %r" % b)
            check(b["intensity_pct"] == phase, "pulse at %r %%, %r %% set: %r"
                  % (b["intensity_pct"], phase, b))
            seen.append(phase)
    check(seen.count(20.0) >= 6 and seen.count(25.0) >= 6, "pulses by phase %r" % seen)
    with open(log) as f:
        coil = [float(line.split(",")[1]) for line in f.read().splitlines()[1:]]
    check(coil == [p["intensity_pct"] for p in r.of("rpms.stim")],
          "the coil fired %r, the events say %r" % (coil, [p["intensity_pct"]
                                                       for p in r.of("rpms.stim")]))


if __name__ == "__main__":
    if "--enospc" in sys.argv:
        rig.run_tests([test_ledger_disk_full])
    rig.run_tests([
        test_onoff_closed_loop,
        test_theta_burst_refused_by_the_builtin_table,
        test_theta_burst_with_a_site_table,
        test_open_loop_runs_to_its_count,
        test_open_loop_schedule_exact,
        test_open_loop_late_never_early,
        test_daily_cap_holds_across_restarts,
        test_damaged_ledger_refuses_to_arm,
        test_sigkill_never_undercounts,
        test_estop_through_the_daemon,
        test_tz_change_between_runs,
        test_absurd_count_refused,
        test_symlink_and_older_copy_refused,
        test_train_gap_across_restart,
        test_missing_state_dir,
        test_refusal_storm_summarised_pulses_kept,
        test_refused_open_loop_counted_once,
        test_open_loop_protocol_change_after_disarm_and_session,
    ])
