#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The safety model through the real daemon (rpmsd + sim coil + a real
ZeroMQ subscriber, every message validated against the schema):
protocols (on/off, theta burst with a site table, open loop), the pulse
ledger across restarts, a damaged ledger, a SIGKILL mid-session, and the
emergency stop through the sim plugin's FIFO input.

The demo recording's bursts that start stimulation (config/demo.conf) are
at about 15.5, 25.5 and 26.3 s."""

import os
import signal
import subprocess
import sys
import tempfile
import time

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


def ledger_count(state):
    with open(os.path.join(state, "dose")) as f:
        fields = dict(line.split(" = ", 1) for line in f.read().splitlines()
                      if " = " in line)
    return int(fields["pulses"]), fields["exact"].strip() == "true"


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


if __name__ == "__main__":
    rig.run_tests([
        test_onoff_closed_loop,
        test_theta_burst_refused_by_the_builtin_table,
        test_theta_burst_with_a_site_table,
        test_open_loop_runs_to_its_count,
        test_daily_cap_holds_across_restarts,
        test_damaged_ledger_refuses_to_arm,
        test_sigkill_never_undercounts,
        test_estop_through_the_daemon,
    ])
