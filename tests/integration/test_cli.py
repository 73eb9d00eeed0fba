#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The rpmsd and rpmsctl command lines: configuration errors are refused
with FILE:LINE messages before anything starts, usage errors exit 2, and
rpmsctl tail works as a subscriber of a real daemon."""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rpmsd-cli-")
atexit.register(shutil.rmtree, TMP, True)
DEMO = os.path.join(rig.SOURCE, "config", "demo.conf")


def rpmsd(*args, timeout=60):
    return subprocess.run([rig.RPMSD] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def conf(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def base(extra=""):
    return ("[source]\nfile = %s/data/emg/emg_1.txt\n[publish]\nendpoint = tcp://127.0.0.1:%d\n%s"
            % (rig.SOURCE, rig.free_port(), extra))


def test_check_config_accepts_demo():
    # --check-config checks daemon.state_dir, which demo.sh creates (build/demo-state)
    os.makedirs(os.path.join(rig.SOURCE, "build", "demo-state"), exist_ok=True)
    r = rpmsd("--check-config", DEMO)
    check(r.returncode == 0, r.stderr)
    check(r.stdout == "%s: configuration is valid\n" % DEMO, r.stdout)


def expect_refused(path, message, *extra_args):
    """Both --check-config and a real start refuse with exactly @message."""
    for args in (("--check-config", path), ("--config", path) + extra_args):
        r = rpmsd(*args)
        check(r.returncode == 1, "%s: exit %d, stderr %r" % (args, r.returncode, r.stderr))
        check(message in r.stderr, "%s: stderr %r lacks %r" % (args, r.stderr, message))
        check("running" not in r.stderr and not r.stdout.strip(),
              "%s: something ran: %r %r" % (args, r.stdout, r.stderr))


def test_unknown_key():
    p = conf("unknown.conf", base("[stim]\nintensty_pct = 30\n"))
    expect_refused(p, "rpmsd: %s:6: stim.intensty_pct: unknown key (allowed: plugin, mode, "
                      "protocol, train_pulses, train_frequency_hz, on_ms, off_ms, cycles, "
                      "theta_bursts, theta_burst_pulses, theta_frequency_hz, theta_period_ms, "
                      "open_loop_pulses, intensity_pct, pulse_width_us, refractory_ms)" % p)


def test_unknown_section():
    p = conf("section.conf", base("[stimulation]\n"))
    expect_refused(p, "%s:5: [stimulation]: unknown section" % p)


def test_out_of_range_and_malformed():
    p = conf("range.conf", base("[stim]\nintensity_pct = 150\n"))
    expect_refused(p, "%s:6: stim.intensity_pct: 150 is out of range (allowed: 0 to 100 %%)" % p)
    p = conf("malformed.conf", base("[dsp]\nmains_hz = 55\n"))
    expect_refused(p, "%s:6: dsp.mains_hz: '55' is not allowed (allowed: 0, 50, 60)" % p)
    p = conf("notint.conf", base("[stim]\ntrain_pulses = five\n"))
    expect_refused(p, "%s:6: stim.train_pulses: 'five' is not an integer" % p)


def test_protocol_beyond_safety_caps():
    p = conf("caps.conf", base("[stim]\nintensity_pct = 80\n"))
    expect_refused(p, "%s:6: stim.intensity_pct: 80 exceeds safety.max_intensity_pct = 60" % p)


def test_train_table_that_is_not_a_file():
    """Issue 16, D3: safety.train_table a FIFO hung --check-config and the
    start for ever; a directory was "read error", a NUL byte "line longer
    than 1022 bytes". Each is refused at once with its own message."""
    d = tempfile.mkdtemp(dir=TMP)
    fifo = os.path.join(d, "fifo.csv")
    os.mkfifo(fifo)
    p = conf("tablefifo.conf", base("[safety]\ntrain_table = %s\n" % fifo))
    for args in (("--check-config", p), ("--config", p)):
        r = rpmsd(*args, timeout=30)
        check(r.returncode == 1 and "%s:6: safety.train_table: %s: not a regular file" % (p, fifo)
              in r.stderr, "%s: %d %r" % (args, r.returncode, r.stderr))
    p = conf("tabledir.conf", base("[safety]\ntrain_table = %s\n" % d))
    expect_refused(p, "%s:6: safety.train_table: %s: is a directory (allowed: a CSV file)" % (p, d))
    nul = os.path.join(d, "nul.csv")
    with open(nul, "wb") as f:
        f.write(b"hz,100\n25,1\x00.28\n")
    p = conf("tablenul.conf", base("[safety]\ntrain_table = %s\n" % nul))
    expect_refused(p, "%s:6: safety.train_table: %s:2: a NUL byte at column 5 (a train table is "
                      "text)" % (p, nul))


def test_protocols_the_gate_refuses_are_refused_at_load():
    """Issue 16, D7: the four protocols of the adversarial run passed the
    configuration check and were then refused by the gate, pulse after
    pulse. Each is now refused at load, naming the key and the limit."""
    mt = "[safety]\nmotor_threshold_pct = 40\n"
    theta = "[stim]\nprotocol = theta_burst\ntheta_frequency_hz = 25\ntheta_bursts = 5\n"
    cases = [
        (mt + theta + "theta_period_ms = 100\n",
         ":11: stim.theta_period_ms: 100 ms leaves 20 ms from the last pulse of a burst "
         "(3 pulses at 25 Hz) to the first of the next, less than the 40 ms (one period) of "
         "safety.max_frequency_hz = 25 Hz (allowed: 120 ms or more)"),
        (mt + theta + "theta_period_ms = 80.001\n",
         ":11: stim.theta_period_ms: 80.001 ms leaves 0.001 ms from the last pulse of a burst"),
        (mt + "[stim]\nintensity_pct = 60\nprotocol = theta_burst\ntheta_burst_pulses = 1\n"
         "theta_frequency_hz = 1.182\ntheta_period_ms = 100\ntheta_bursts = 10\n",
         ":8: stim.protocol = theta_burst: the pulses of a train come at 10 Hz, not the 1.182 Hz "
         "it is declared at"),
        ("[stim]\nmode = open_loop\nprotocol = single\noff_ms = 100\n",
         ":8: stim.off_ms: 100 ms leaves 100 ms from the last pulse of a train to the first of "
         "the next (a train starts every 100 ms: its 0 ms on-period, then off_ms), less than "
         "safety.min_train_interval_ms = 500 ms (allowed: 500 ms or more)"),
    ]
    for i, (text, message) in enumerate(cases):
        p = conf("d7-%d.conf" % i, base(text))
        expect_refused(p, p + message)


def test_off_ms_is_what_the_docs_say():
    """The off-period of onoff, as documented (rpmsd --print-config, the
    key table): from the end of a train's on-period, one pulse period after
    its last pulse, to the next train's first pulse. 20 Hz, 250 ms on /
    600 ms off: trains every 850 ms, 650 ms from a last pulse to the next
    first one; the daemon's pulses keep exactly that."""
    text = rpmsd("--print-config").stdout.splitlines()
    doc = [text[i - 2] for i, line in enumerate(text) if line.startswith("off_ms = 2000")]
    check(len(doc) == 1 and "from the last pulse of a train to the first of the next" not in doc[0] and
          "after each train's on-period, so trains start every on-period + off_ms" in doc[0] and
          "the last pulse of a train comes off_ms + 1 / train_frequency_hz before" in doc[0],
          "off_ms is documented as %r" % doc)
    r = rig.Run(rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra={
        ("stim", "protocol"): "onoff", ("stim", "on_ms"): "250", ("stim", "off_ms"): "600",
        ("stim", "cycles"): "2"}))
    check(r.returncode == 0, r.stderr)
    p = r.of("rpms.stim")
    trains = {}
    for x in p:
        trains.setdefault(x["train_id"], []).append(x["t_sched_s"])
    ids = sorted(trains)
    check(len(ids) >= 2 and all(len(trains[i]) == 5 for i in ids), "trains %r" % trains)
    a, b = trains[ids[0]], trains[ids[1]]
    check(abs((b[0] - a[0]) - 0.85) < 1e-6 and abs((b[0] - a[-1]) - 0.65) < 1e-6,
          "first to first %.6f s, last to first %.6f s" % (b[0] - a[0], b[0] - a[-1]))


def test_plugin_problems():
    p = conf("noplugin.conf", base("[stim]\nplugin = nosuchcoil\n"))
    expect_refused(p, "coil plugin 'nosuchcoil': nosuchcoil.so not found (searched: ")
    p = conf("pluginkey.conf", base("[stim]\nplugin = sim\n[coil.sim]\nambient_c = 500\n"))
    expect_refused(p, "%s:8: coil.sim.ambient_c: 500 is out of range (allowed: -20 to 60 C)" % p)
    p = conf("pluginunknown.conf", base("[coil.sim]\ncolour = red\n"))
    expect_refused(p, "%s:6: coil.sim.colour: unknown key" % p)
    p = conf("abi.conf", base("[daemon]\nplugin_dir = %s/tests\n[stim]\nplugin = abi99\n" % rig.BUILD))
    expect_refused(p, "coil plugin 'abi99' (%s/tests/abi99.so): ABI version 99.0, this rpmsd needs 1.x"
                   % rig.BUILD)


def test_bad_recording():
    bad = conf("bad.txt", "# Sampling Rate (Hz):= 1000.00\n1\n2\nthree\n4\n")
    p = conf("badrec.conf", base().replace("%s/data/emg/emg_1.txt" % rig.SOURCE, bad))
    expect_refused(p, "%s:4: malformed value 'three'" % bad)
    p = conf("norec.conf", base().replace("%s/data/emg/emg_1.txt" % rig.SOURCE, "/nonexistent.txt"))
    expect_refused(p, "/nonexistent.txt: cannot open: No such file or directory")


def test_settings_impossible_at_the_recordings_rate():
    # valid on their own, but at 100 Hz the low-pass is clamped to 45 Hz
    rec = conf("r100.txt", "# Sampling Rate (Hz):= 100\n1\n2\n3\n")
    p = conf("r100.conf", base("[dsp]\nhighpass_hz = 50\n").replace(
        "%s/data/emg/emg_1.txt" % rig.SOURCE, rec))
    expect_refused(p, "%s: at 100 Hz (the rate of r100.txt (text, 1 channel, 100 Hz, 3 frames)): "
                      "dsp.highpass_hz: 50 Hz: must be > 0 and below the low-pass corner 45 Hz" % p)


def test_check_config_refuses_what_the_start_refuses():
    """Issue 18: --check-config was a second copy of the start's checks and
    they had drifted: a detect.channel_rule naming a channel the recording
    lacks, a missing record.directory and a record.record_s that is no whole
    number of samples at the recording's rate passed --check-config
    ("configuration is valid") and were refused by the start; the endpoint
    and CURVE-key messages of --check-config did not name the file. Both
    now run the same checks (session_validate), with the same message."""
    def valid_but(extra):
        # with a state_dir, so that only the case at hand is wrong
        return base("[daemon]\nstate_dir = %s\n%s" % (TMP, extra))

    p = conf("nochannel.conf", valid_but("[detect]\nchannel_rule = nosuch\n"))
    expect_refused(p, "%s: at 1000 Hz (the rate of emg_1.txt (text, 1 channel, 1000 Hz, 63880 "
                      "frames)): detect.channel_rule: no channel 'nosuch' in the source "
                      "(channels: EMG)" % p)
    missing = os.path.join(tempfile.mkdtemp(dir=TMP), "no-such-dir")
    p = conf("norecdir.conf", valid_but("[record]\ndirectory = %s\n" % missing))
    expect_refused(p, "%s: record.directory: '%s' is not an existing directory (rpmsd does not "
                      "create it)" % (p, missing))
    p = conf("recs.conf", valid_but("[record]\ndirectory = %s\nrecord_s = 0.0125\n" % TMP))
    expect_refused(p, "%s: record.record_s: 0.0125 s at 1000 Hz is 12.5 samples, not a whole "
                      "number" % p)
    taken = os.path.join(tempfile.mkdtemp(dir=TMP), "file")
    open(taken, "w").close()
    p = conf("ipcfile.conf", valid_but("[control]\nendpoint = ipc://%s\n" % taken))
    expect_refused(p, "%s: control.endpoint: ipc://%s: " % (p, taken))


def test_watchdog_shorter_than_a_block():
    # 256 frames at 1 kHz = 256 ms per block: a 100 ms watchdog would trip
    p = conf("wd.conf", base("[source]\nblock_frames = 256\n[safety]\nacquisition_timeout_ms = 100\n")
             .replace("[source]\nfile", "[source]\nfile", 1))
    text = open(p).read()
    # base() already has a [source] section: merge the block size into it
    text = text.replace("[source]\nblock_frames = 256\n", "").replace(
        "[source]\n", "[source]\nblock_frames = 256\n", 1)
    with open(p, "w") as f:
        f.write(text)
    expect_refused(p, "%s: safety.acquisition_timeout_ms: 100 ms is not longer than one block "
                      "(source.block_frames 256 at 1000 Hz = 256 ms)" % p)


def test_missing_config_file():
    r = rpmsd("--config", "/nonexistent/rpmsd.conf")
    check(r.returncode == 1, r.stderr)
    check("rpmsd: /nonexistent/rpmsd.conf: cannot open: No such file or directory" in r.stderr,
          r.stderr)


def test_endpoint_in_use():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    p = conf("inuse.conf", base().replace("endpoint = tcp://127.0.0.1:", "endpoint = tcp://127.0.0.1:%d#" % port))
    with open(p) as f:
        text = f.read().replace("#", "\n#")
    with open(p, "w") as f:
        f.write(text)
    r = rpmsd("--config", p, "--fast")
    s.close()
    check(r.returncode == 1, "exit %d: %s" % (r.returncode, r.stderr))
    check("publish.endpoint: cannot bind 'tcp://127.0.0.1:%d'" % port in r.stderr, r.stderr)


def test_usage_errors():
    for args, msg in ((["--bogus"], "unrecognized option"),
                      (["extra"], "rpmsd: unexpected argument 'extra'"),
                      (["--wait-subscriber=abc"], "--wait-subscriber: 'abc' is not a number")):
        r = rpmsd(*args)
        check(r.returncode == 2, "%s: exit %d" % (args, r.returncode))
        check(msg in r.stderr, "%s: %r" % (args, r.stderr))
    r = rpmsd("--version")
    check(r.returncode == 0 and r.stdout.startswith("rpmsd "), r.stdout)


def test_print_config_is_the_shipped_file():
    r = rpmsd("--print-config")
    with open(os.path.join(rig.SOURCE, "config", "rpmsd.conf")) as f:
        check(r.stdout == f.read(), "config/rpmsd.conf differs from rpmsd --print-config")


def test_plugin_keys():
    r = rpmsd("--plugin-keys", "sim")
    check(r.returncode == 0, r.stderr)
    for key in ("[coil.sim]", "ambient_c = 25", "cooling_tau_s = 300", "pulse_log = "):
        check(key in r.stdout, "%r not in %r" % (key, r.stdout))


def test_rpmsctl_tail_json_against_daemon():
    port = rig.free_port()
    endpoint = "tcp://127.0.0.1:%d" % port
    p = conf("tail.conf", rig.demo_config(endpoint))
    # options before the command, as after it
    tail = subprocess.Popen([rig.RPMSCTL, "--endpoint", endpoint, "--json", "tail",
                             "--topic", "rpms.stim", "--count", "15", "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d = rpmsd("--config", p, "--fast", "--wait-subscriber=20")
    out, err = tail.communicate(timeout=60)
    check(d.returncode == 0, d.stderr)
    check(tail.returncode == 0, "rpmsctl exit %d: %s" % (tail.returncode, err))
    import json
    lines = [json.loads(x) for x in out.splitlines()]
    check(len(lines) == 15 and all(x["topic"] == "rpms.stim" for x in lines), out)
    check([x["seq"] for x in lines] == list(range(15)), out)


def tail_lines(tail):
    """rpmsctl tail's lines up to the daemon's "stopping" (it has exited)."""
    lines = []
    for line in tail.stdout:
        lines.append(line.rstrip("\n"))
        if "stopping" in line:
            break
    tail.terminate()
    _, err = tail.communicate(timeout=30)
    check(lines, "rpmsctl tail printed nothing: %s" % err)
    return lines


def line_times(lines):
    import re
    times = [float(m.group(1)) for m in (re.match(r"\s*(\d+\.\d{3}) s  ", ln) for ln in lines)
             if m]
    check(len(times) == len(lines), "a line without a time:\n%s" % "\n".join(lines))
    check(times == sorted(times), "time goes back:\n%s" % "\n".join(lines))
    return times


def test_rpmsctl_human_lines():
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    rec = tempfile.mkdtemp(dir=TMP)
    # the session recording (rpms.record) and the EMG stream (rpms.emg) on
    p = conf("human.conf", rig.demo_config(endpoint, extra={
        ("record", "directory"): rec, ("publish", "emg_stream"): "true"}))
    tail = subprocess.Popen([rig.RPMSCTL, "tail", "--endpoint", endpoint, "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d = rpmsd("--config", p, "--fast", "--wait-subscriber=20")
    check(d.returncode == 0, d.stderr)
    # what the daemon sent before it exited may still be on its way: up to "stopping"
    out = "\n".join(tail_lines(tail)) + "\n"
    # the demo's 5 s rest window holds the start of a burst: said on the line
    for frag in ("calibrated    ch0", "IN DOUBT: unsteady (rpmsctl calibrate at rest)",
                 "pulse 1/5     train 1", "pulse 5/5     train 3", "burst offset  ch0",
                 "source        opened: 1 channel(s) at 1000 Hz, 8-frame blocks, time from recording",
                 "record        opened "):
        check(frag in out, "%r not in:\n%s" % (frag, out))
    # the onset as dated, to the ms (the detector's dating moves it by a few)
    m = re.search(r"burst onset   ch0  onset at (\d+\.\d{3}) s", out)
    check(m is not None and abs(float(m.group(1)) - 15.45) < 0.02,
          "no first onset at 15.45 s (+-20 ms) in:\n%s" % out)
    # rpms.emg is a stream, shown only when asked for (as heartbeats)
    check("rpms.emg" not in out and "frames" not in out, out)


def test_rpmsctl_tail_refusal_summaries():
    """A refusal summary (rpms.safety "kind": "summary") stands for several
    refusals: tail says how many and since when, not as if it were one."""
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    p = conf("summaries.conf", rig.demo_config(endpoint, extra={
        ("stim", "mode"): "open_loop", ("stim", "off_ms"): "100",
        ("safety", "min_train_interval_ms"): "100", ("coil.sim", "never_ready"): "true"}))
    tail = subprocess.Popen([rig.RPMSCTL, "tail", "--endpoint", endpoint, "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d = rpmsd("--config", p, "--fast", "--wait-subscriber=20")
    check(d.returncode == 0, d.stderr)
    lines = [ln for ln in tail_lines(tail) if "REFUSED" in ln]
    import re
    many = [ln for ln in lines if re.search(r"REFUSED +x\d+ since \d+\.\d{3} s, last: train \d+ "
                                            r"pulse 1: not_ready", ln)]
    check(many and re.search(r"REFUSED +train \d+ pulse 1: not_ready", lines[0]),
          "\n".join(lines[:10]))


def test_rpmsctl_tail_causal_order():
    """Events come in the order they happened, whichever thread made them:
    in the demo's fast replay a train's pulses follow its onset and come
    before the next onset (not every burst first), and the time column
    never goes back."""
    import re
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    p = conf("order.conf", rig.demo_config(endpoint))
    tail = subprocess.Popen([rig.RPMSCTL, "tail", "--endpoint", endpoint, "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d = rpmsd("--config", p, "--fast", "--wait-subscriber=20")
    check(d.returncode == 0, d.stderr)
    human = tail_lines(tail)
    line_times(human)

    def at(pattern):
        for i, ln in enumerate(human):
            if re.search(pattern, ln):
                return i
        raise AssertionError("no line %r in:\n%s" % (pattern, "\n".join(human)))

    for train in (1, 2, 3):
        check(at(r"burst onset .* -> train %d requested" % train) <
              at(r"pulse 1/5 +train %d " % train) < at(r"pulse 5/5 +train %d " % train),
              "train %d out of order:\n%s" % (train, "\n".join(human)))
    check(at(r"pulse 5/5 +train 1 ") < at(r"-> train 2 requested"),
          "bursts before pulses:\n%s" % "\n".join(human))


def test_rpmsctl_tail_time_base():
    """One time base: every line of rpmsctl tail is at its event's t_rec_s,
    pulses included (they were at t_actual_s, the session clock). A paced
    run (6 s, a train at 3 s and at 5 s) watched by rpmsctl tail and by a
    Python subscriber at once: the same events, in the same order, in
    recording order, each onset before its pulses."""
    import json
    import random
    import zmq
    rec = os.path.join(TMP, "bursts.txt")
    rng = random.Random(7)
    with open(rec, "w") as f:
        f.write("# Sampling Rate (Hz):= 1000.00\n")
        for i in range(6000):
            t = i / 1000.0
            f.write("%.2f\n" % rng.gauss(0.0, 200.0 if t >= 3 and (t - 3) % 2 < 0.4 else 10.0))
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    import re
    text = rig.demo_config(endpoint, extra={("detect", "calibration_s"): "1",
                                            ("publish", "heartbeat_s"): "0.25"})
    text, n = re.subn(r"(?m)^file = .*$", "file = " + rec, text)
    check(n == 1, text)
    p = conf("timebase.conf", text)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"rpms.")
    sub.connect(endpoint)
    d = subprocess.Popen([rig.RPMSD, "--config", p, "--wait-subscriber=20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the Python subscriber starts the daemon; the tail joins within the first
    # second, long before the first burst at 3 s
    msgs = []
    while not sub.poll(100):
        if d.poll() is not None:
            raise AssertionError("rpmsd exited: %s" % d.communicate()[1])
    tail = subprocess.Popen([rig.RPMSCTL, "tail", "--endpoint", endpoint, "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        if sub.poll(200):
            topic, body = sub.recv_multipart()[:2]
            msgs.append((topic.decode(), json.loads(body)))
            if msgs[-1][0] == "rpms.state" and msgs[-1][1]["state"] == "stopping":
                break
        if d.poll() is not None and not sub.poll(2000):
            raise AssertionError("no 'stopping':\n%s" % d.communicate()[1])
    out, err = d.communicate(timeout=60)
    check(d.returncode == 0, err)
    human = tail_lines(tail)
    times = line_times(human)
    sub.close(linger=0)
    ctx.term()
    events = [(t, b) for t, b in msgs if t not in ("rpms.heartbeat", "rpms.emg")]
    check(len(events) >= len(human) > 15 and
          sum(1 for t, _ in events[-len(human):] if t == "rpms.stim") == 10,
          "%d events, %d lines:\n%s" % (len(events), len(human), "\n".join(human)))
    # the tail saw the same events, from some point on: its lines are their times
    mine = events[-len(human):]
    check(["%.3f" % b["t_rec_s"] for _, b in mine] == ["%.3f" % t for t in times],
          "the time column is not t_rec_s:\n%s\n%s" % ("\n".join(human),
                                                      [b["t_rec_s"] for _, b in mine]))
    samples = [b["sample"] for _, b in events]
    check(samples == sorted(samples), "not in recording order: %r" % samples)
    for i, (t, b) in enumerate(events):
        if t == "rpms.burst" and b.get("action") == "requested":
            first = [j for j, (u, c) in enumerate(events)
                     if u == "rpms.stim" and c["train_id"] == b["train_id"]]
            check(first and first[0] > i, "train %d: a pulse before its onset" % b["train_id"])


def test_sigint_while_waiting_for_subscriber():
    p = conf("waitsig.conf", base())
    d = subprocess.Popen([rig.RPMSD, "--config", p, "--wait-subscriber=60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in d.stderr:
        if "waiting up to 60.0 s for a subscriber" in line:
            break
    d.send_signal(signal.SIGINT)
    out, err = d.communicate(timeout=20)
    check(d.returncode == 0, "exit %d: %s" % (d.returncode, err))
    check("Interrupt before the session started: nothing ran" in err, err)
    check(not out.strip(), "summary printed although nothing ran: %r" % out)


def test_systemd_unit_verifies():
    """The generated unit passes systemd-analyze verify, pointed at the
    binary and config of this build (the installed paths do not exist here)."""
    with open(os.path.join(rig.BUILD, "systemd", "rpmsd.service")) as f:
        unit = f.read()
    sbin = [w for w in unit.split() if w.startswith("ExecStart=")][0].split("=", 1)[1]
    conf_path = unit.split("--config ", 1)[1].split()[0]
    unit = unit.replace(sbin, rig.RPMSD).replace(conf_path, DEMO)
    path = os.path.join(TMP, "rpmsd.service")
    with open(path, "w") as f:
        f.write(unit)
    r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
    check(r.returncode == 0 and not r.stderr.strip(), "verify: %d %s" % (r.returncode, r.stderr))


HOLD_LOCK = """
import fcntl, os, sys, time
fds = [os.open(p, os.O_RDWR | os.O_CREAT, 0o640) for p in sys.argv[3:]]
fcntl.lockf(fds[0], fcntl.LOCK_EX | fcntl.LOCK_NB)      # as apt locks them
fcntl.lockf(fds[1], fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(float(sys.argv[1]))
os.close(fds[0])                                        # the package lists first
time.sleep(float(sys.argv[2]) - float(sys.argv[1]))
"""


def test_deps_waits_for_apt_locks():
    """scripts/deps.sh waits while another apt holds apt's locks (the package
    lists' during an update, then dpkg's), instead of giving up at once.
    Real apt-get and dpkg-query on private copies of their state (APT_CONFIG,
    DPKG_ADMINDIR): no network, nothing installed, the system's apt state
    and locks untouched. dpkg-query is shown ninja-build missing, so deps.sh
    goes to apt; apt sees it installed, so its install has nothing to do."""
    import shutil
    import time
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise rig.Skip("needs root and apt-get")
    with open("/var/lib/dpkg/status") as f:
        stanzas = f.read().split("\n\n")
    if not any(x.startswith("Package: ninja-build\n") for x in stanzas):
        raise rig.Skip("ninja-build is not installed")
    t = tempfile.mkdtemp(dir=TMP)
    for d in ("adm-query", "adm-apt", "state/lists/partial", "cache/archives/partial",
              "sources.list.d", "log"):
        os.makedirs(os.path.join(t, d))
    with open(os.path.join(t, "adm-query", "status"), "w") as f:
        f.write("\n\n".join(x for x in stanzas if not x.startswith("Package: ninja-build\n")))
    shutil.copy("/var/lib/dpkg/status", os.path.join(t, "adm-apt", "status"))
    open(os.path.join(t, "sources.list"), "w").close()
    apt_conf = os.path.join(t, "apt.conf")
    with open(apt_conf, "w") as f:
        f.write('Dir::State "%s/state/";\nDir::State::Lists "lists/";\n'
                'Dir::State::status "%s/adm-apt/status";\nDir::Etc::sourcelist "%s/sources.list";\n'
                'Dir::Etc::sourceparts "%s/sources.list.d";\nDir::Cache "%s/cache/";\n'
                'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\nDir::Log "%s/log";\n'
                % ((t,) * 6))
    env = dict(os.environ, APT_CONFIG=apt_conf, DPKG_ADMINDIR=os.path.join(t, "adm-query"))
    # another apt: the lists locked for 3 s, dpkg for 6 s
    holder = subprocess.Popen(["/usr/bin/python3", "-c", HOLD_LOCK, "3", "6",
                               os.path.join(t, "state", "lists", "lock"),
                               os.path.join(t, "adm-apt", "lock-frontend")],
                              stdout=subprocess.PIPE, text=True)
    try:
        check(holder.stdout.readline().strip() == "locked", "the lock holder failed")
        start = time.monotonic()
        r = subprocess.run([os.path.join(rig.SOURCE, "scripts", "deps.sh"), "build"],
                           capture_output=True, text=True, timeout=300, env=env)
        took = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    check(r.returncode == 0, "deps.sh gave up (%d after %.1f s):\n%s" % (r.returncode, took,
                                                                       r.stderr))
    check("installing: ninja-build" in r.stderr and "another apt is running" in r.stderr,
          r.stderr)
    # it waited for dpkg's lock too (it was free only after 6 s)
    check(took >= 5.0, "deps.sh was done in %.1f s with dpkg locked for 6 s" % took)


def test_rpmsctl_errors():
    r = subprocess.run([rig.RPMSCTL, "bogus"], capture_output=True, text=True)
    check(r.returncode == 2 and "bogus" in r.stderr, "%d %r" % (r.returncode, r.stderr))
    r = subprocess.run([rig.RPMSCTL, "tail", "--count", "x"], capture_output=True, text=True)
    check(r.returncode == 2 and "--count" in r.stderr, "%d %r" % (r.returncode, r.stderr))
    r = subprocess.run([rig.RPMSCTL, "tail", "--endpoint", "tcp://127.0.0.1:%d" % rig.free_port(),
                        "--timeout", "0.5"], capture_output=True, text=True)
    check(r.returncode == 3, "no daemon: exit %d %r" % (r.returncode, r.stderr))


def test_fifos_where_files_belong():
    """Issue 16, D3, the other files a configuration names: a FIFO in the
    plugin directory under the plugin's name blocked the start in dlopen,
    one named *.edf in the recording directory blocked the start's scan for
    crashed files, and one as the sim coil's pulse_log blocked the shutdown
    (after the disarm). Each is now passed over or refused at once."""
    d = tempfile.mkdtemp(dir=TMP)
    os.mkfifo(os.path.join(d, "fifocoil.so"))
    p = conf("pluginfifo.conf", base("[daemon]\nplugin_dir = %s\n[stim]\nplugin = fifocoil\n" % d))
    for args in (("--check-config", p), ("--config", p)):
        r = rpmsd(*args, timeout=30)
        check(r.returncode == 1 and "coil plugin 'fifocoil': %s/fifocoil.so is not a regular file"
              % d in r.stderr, "%s: %d %r" % (args, r.returncode, r.stderr))
    rec = os.path.join(d, "rec")
    os.mkdir(rec)
    os.mkfifo(os.path.join(rec, "left.edf"))
    log = os.path.join(d, "pulses.csv")
    os.mkfifo(log)
    r = rig.Run(rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), pulse_log=log, extra={
        ("record", "directory"): rec}), timeout=60)
    check(r.returncode == 0, r.stderr)
    check(r.of("rpms.stim"), "no pulse fired")
    check("recording: %s/left.edf is not a regular file: not looked at" % rec in r.stderr, r.stderr)
    check("cannot write pulse_log %s" % log in r.stderr, r.stderr)


if __name__ == "__main__":
    rig.run_tests([
        test_check_config_accepts_demo,
        test_unknown_key,
        test_unknown_section,
        test_out_of_range_and_malformed,
        test_protocol_beyond_safety_caps,
        test_train_table_that_is_not_a_file,
        test_protocols_the_gate_refuses_are_refused_at_load,
        test_off_ms_is_what_the_docs_say,
        test_plugin_problems,
        test_fifos_where_files_belong,
        test_bad_recording,
        test_settings_impossible_at_the_recordings_rate,
        test_check_config_refuses_what_the_start_refuses,
        test_watchdog_shorter_than_a_block,
        test_missing_config_file,
        test_endpoint_in_use,
        test_usage_errors,
        test_print_config_is_the_shipped_file,
        test_plugin_keys,
        test_rpmsctl_tail_json_against_daemon,
        test_rpmsctl_human_lines,
        test_rpmsctl_tail_refusal_summaries,
        test_rpmsctl_tail_causal_order,
        test_rpmsctl_tail_time_base,
        test_sigint_while_waiting_for_subscriber,
        test_systemd_unit_verifies,
        test_rpmsctl_errors,
        test_deps_waits_for_apt_locks,
    ])
