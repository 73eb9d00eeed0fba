#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The IIO source through libiio's real local backend, against a fake
device (tests/iio/rig.py: a crafted sysfs tree and a FIFO fed by iio_gen).
Runs as root inside `unshare -m -n --propagation private` (see
meson.build): nothing it mounts is seen outside, and its iiod and ZeroMQ
sockets live on a loopback of their own.

Checks: samples bit-exact for s16 le, s16 be, 12-in-16 with shift and
24-in-32 signed; several channels with a subset enabled, in the configured
order; the hardware timestamp channel; a missing channel or device is a
start-up error naming it; a joint-angle channel (source.angle_channel)
beside two EMG channels, in degrees through its own scale and offset,
kept out of the detector bank and recorded as a "deg" signal, and refused
when it is also an EMG channel, missing, or breaks the layout; and the
whole loop, IIO -> detect -> sim coil, firing at the known burst of the
bundled recording."""

import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
from rig import FakeIio, parse_type, raw_code  # noqa: E402

IIO_READ = os.path.join(rig.BUILD, "tests", "integration", "iio_read")
EDF_READ = os.environ.get("EDF_READ", os.path.join(rig.BUILD, "tests", "integration",
                                                   "edf_read"))
TMP = tempfile.mkdtemp(prefix="rpmsd-iio-")


def conf(text):
    fd, path = tempfile.mkstemp(suffix=".conf", dir=TMP)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def iio_conf(channels, extra="", uri="local:"):
    return conf("[source]\ntype = iio\nuri = %s\ndevice = iio:device0\n"
                "channels = %s\nblock_frames = 8\n%s"
                "[publish]\nendpoint = tcp://127.0.0.1:%d\n"
                % (uri, channels, extra, rig.free_port()))


def iio_read(config, frames):
    r = subprocess.run([IIO_READ, config, str(frames)], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 0, "iio_read: %d %s" % (r.returncode, r.stderr))
    rows = []
    for line in r.stdout.splitlines():
        if line.startswith("#"):
            continue
        parts = line.split()
        rows.append((int(parts[0]), [float(v) for v in parts[1:]]))
    return r.stdout, rows


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def expect_codes(dev, names, rows):
    """Each read value is exactly the code iio_gen encoded for that frame
    and channel, converted as rpmsd does: float32(code x scale x 1000 / gain)
    (gain 1 here), so every bit of the code must have come through."""
    inputs = dev.input_rows()
    chans = dev.value_channels()
    for sample, values in rows:
        values = [f32(v) for v in values]
        frame = inputs[sample % len(inputs)]
        for name, got in zip(names, values):
            c = dev.channel(name)
            col = [x["name"] for x in chans].index(name)
            fmt = parse_type(c["type"])
            scale = dev.channel_scale(c)
            want = raw_code(frame[col], scale, fmt)
            check(got == f32(want * (scale * 1000.0 / 1.0)),
                  "%s sample %d: read %r uV, sent code %d (%r uV)"
                  % (name, sample, got, want, f32(want * scale * 1000.0)))


def test_formats_bit_exact():
    # codes across each type's range, extremes included
    for t, lo, hi in (("le:s16/16>>0", -32768, 32767), ("be:s16/16>>0", -32768, 32767),
                      ("le:s12/16>>4", -2048, 2047), ("le:s24/32>>0", -8388608, 8388607)):
        codes = [lo, hi, 0, -1, 1, lo // 3, hi // 7, 1234 % hi, -(1234 % hi)]
        lines = [[c * 0.25] for c in codes] * 8
        with FakeIio([{"name": "voltage0", "type": t}], rate=2000, input_lines=lines,
                     scale=0.25) as dev:
            _, rows = iio_read(iio_conf("voltage0"), 64)
            check(len(rows) == 64, "%s: %d rows" % (t, len(rows)))
            expect_codes(dev, ["voltage0"], rows)


def test_subset_of_channels_in_configured_order():
    chans = [{"name": "voltage0", "type": "le:s16/16>>0"},
             {"name": "voltage1", "type": "be:s16/16>>0", "scale": 0.5},
             {"name": "voltage2", "type": "le:s12/16>>4"},
             {"name": "voltage3", "type": "le:s24/32>>0", "scale": 0.001}]
    lines = [[i, -2 * i, 3 * i % 2000 - 1000, 50000 - 7 * i] for i in range(200)]
    with FakeIio(chans, rate=1000, input_lines=lines, scale=1.0) as dev:
        out, rows = iio_read(iio_conf("voltage3,voltage1"), 80)
        check("2 channels" in out, out.splitlines()[0])
        expect_codes(dev, ["voltage3", "voltage1"], rows)
        check([s for s, _ in rows] == list(range(80)), "sample indices %r" % rows[:3])


def lose_frames_later(dev, after, seconds):
    """In the background: once `after` frames are out, stall the generator
    for `seconds`; the frames of the stall are lost (time goes on), as when
    a kfifo overflows. Returns the thread."""
    import threading
    import time

    def lose():
        dev.wait_frames(after)
        dev.stall()
        time.sleep(seconds)
        dev.resume()

    th = threading.Thread(target=lose, daemon=True)
    th.start()
    return th


def test_hardware_timestamps():
    lines = [[i % 100] for i in range(100)]
    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_lines=lines, scale=1.0, timestamp=True) as dev:
        out, rows = iio_read(iio_conf("voltage0"), 400)
        check("hardware timestamps" in out.splitlines()[0], out.splitlines()[0])
        check("# gaps 0 lost 0" in out, out.splitlines()[-1])
        expect_codes(dev, ["voltage0"], rows)


def test_timestamp_gap_exact():
    """Frames lost mid-stream (the generator skips 0.3 s, as a kfifo that
    overflowed would): the timestamps show the gap, the sample index skips
    exactly the missing frames, even when the gap falls inside a refilled
    block, so every sample after it is still the frame of that index,
    bit for bit."""
    lines = [[(i * 7919) % 2001 - 1000] for i in range(997)]
    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_lines=lines, scale=1.0, timestamp=True) as dev:
        th = lose_frames_later(dev, after=700, seconds=0.3)
        out, rows = iio_read(iio_conf("voltage0"), 1500)
        th.join(5)
    gaps = [line for line in out.splitlines() if line.startswith("# gaps")]
    check(gaps and gaps[0].startswith("# gaps 1 lost "), out.splitlines()[-1])
    lost = int(gaps[0].split()[-1])
    check(250 <= lost <= 360, "lost %d" % lost)
    idx = [sample for sample, _ in rows]
    jumps = [(a, b) for a, b in zip(idx, idx[1:]) if b != a + 1]
    check(len(jumps) == 1 and jumps[0][1] - jumps[0][0] - 1 == lost, "jumps %r" % jumps)
    expect_codes(dev, ["voltage0"], rows)


def test_missing_channel_and_device():
    lines = [[0]] * 10
    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_lines=lines, scale=1.0):
        p = iio_conf("voltage9")
        for args in ([IIO_READ, p, "8"], [rig.RPMSD, "--check-config", p]):
            r = subprocess.run(args, capture_output=True, text=True, timeout=60)
            check(r.returncode == 1, "%s: exit %d" % (args[0], r.returncode))
            check("source.channels: device 'iio:device0' has no input channel 'voltage9' "
                  "that can be streamed (channels: voltage0)" in r.stderr, r.stderr)
        p = conf("[source]\ntype = iio\ndevice = nosuch\nchannels = voltage0\n")
        r = subprocess.run([rig.RPMSD, "--check-config", p], capture_output=True, text=True)
        # the devices that exist are listed, as the README promises (not "(1 devices)")
        check(r.returncode == 1 and "source.device: no IIO device 'nosuch' at 'local:' "
              "(allowed: a name, id or index of 0: iio:device0 (emg-sim))" in r.stderr, r.stderr)


def test_padded_layout_refused():
    """s16 + s32 + s16 is 12 bytes a frame to the kernel, 10 to libiio
    0.24: rpmsd refuses rather than read misaligned samples. Ending the
    layout with its largest element is fine."""
    chans = [{"name": "voltage0", "type": "le:s16/16>>0"},
             {"name": "voltage1", "type": "le:s32/32>>0"},
             {"name": "voltage2", "type": "le:s16/16>>0"}]
    lines = [[i, 1000 * i, -i] for i in range(100)]
    with FakeIio(chans, rate=1000, input_lines=lines, scale=1.0) as dev:
        p = iio_conf("voltage0,voltage1,voltage2")
        r = subprocess.run([IIO_READ, p, "8"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 1 and "libiio computes 10 bytes per frame for these channels, "
              "the kernel uses 12" in r.stderr, "%d %s" % (r.returncode, r.stderr))
        _, rows = iio_read(iio_conf("voltage0,voltage1"), 40)
        expect_codes(dev, ["voltage0", "voltage1"], rows)


# The angle rig: voltage0 and voltage1 are EMG (1 uV a code), voltage2 a
# goniometer of 0.5 mV a code with an IIO offset of 4 codes, fed a ramp.
ANGLE_CHANS = [{"name": "voltage0", "type": "le:s16/16>>0"},
               {"name": "voltage1", "type": "be:s16/16>>0"},
               {"name": "voltage2", "type": "le:s16/16>>0", "scale": 0.5}]
ANGLE_ATTRS = {"in_voltage2_offset": "4"}
ANGLE_SCALE, ANGLE_OFFSET = 0.1, -20.0      # degrees per mV, degrees
ANGLE_KEYS = ("angle_channel = voltage2\nangle_scale_deg = %r\nangle_offset_deg = %r\n"
              % (ANGLE_SCALE, ANGLE_OFFSET))
# 1000 frames: quiet EMG, the angle code ramping -1000 .. 998 (in mV: x 0.5)
ANGLE_LINES = [[((i * 37) % 50 - 25) * 0.001, ((i * 53) % 40 - 20) * 0.001,
                (2 * i - 1000) * 0.5] for i in range(1000)]


def angle_deg(code):
    """What rpmsd must make of the angle channel's code: (raw + offset) x
    scale (mV, the channel's own; no EMG gain), then degrees, as a float32."""
    return f32((code + 4.0) * (0.5 * ANGLE_SCALE) + ANGLE_OFFSET)


def test_angle_channel_in_degrees():
    """Two EMG channels and a goniometer on one device: every frame is the
    two EMG values in uV (through source.gain) then the angle in degrees
    (through the channel's own scale and offset, not the gain), bit for
    bit what the generator sent."""
    gain = 500.0
    with FakeIio(ANGLE_CHANS, rate=1000, input_lines=ANGLE_LINES, scale=0.001,
                 extra_attrs=ANGLE_ATTRS) as dev:
        out, rows = iio_read(iio_conf("voltage0,voltage1",
                                      extra="gain = %r\n" % gain + ANGLE_KEYS), 1200)
        head = out.splitlines()
        check("(2 channels, angle voltage2, 1000 Hz" in head[0], head[0])
        check(head[1] == "# angle voltage2", head[1])
        check(len(rows) == 1200 and all(len(v) == 3 for _, v in rows),
              "rows %r" % rows[:2])
        check([k for k, _ in rows] == list(range(1200)), "sample indices %r" % rows[:3])
        inputs = dev.input_rows()
        fmt = parse_type("le:s16/16>>0")
        for sample, values in rows:
            frame = inputs[sample % len(inputs)]
            for col, name in enumerate(("voltage0", "voltage1")):
                code = raw_code(frame[col], 0.001, parse_type(dev.channel(name)["type"]))
                want = f32(code * (0.001 * 1000.0 / gain))
                check(f32(values[col]) == want, "%s sample %d: %r uV, sent %r uV"
                      % (name, sample, values[col], want))
            code = raw_code(frame[2], 0.5, fmt)
            check(code == 2 * (sample % 1000) - 1000, "ramp code %d at %d" % (code, sample))
            check(f32(values[2]) == angle_deg(code), "angle sample %d: %r deg, sent code %d "
                  "(%r deg)" % (sample, values[2], code, angle_deg(code)))
        print("angle: %r .. %r deg over the ramp" % (rows[0][1][2], rows[999][1][2]))


def test_angle_channel_refusals():
    """An angle channel that is also an EMG channel (it would reach the
    detectors), one the device does not have, the timestamp, and one whose scan element
    breaks the frame layout (the layout check counts it) are start-up
    errors naming source.angle_channel; rpmsd --check-config opens the
    device and says so."""
    def refused(channels, keys, want):
        p = iio_conf(channels, extra=keys)
        for args in ([IIO_READ, p, "8"], [rig.RPMSD, "--check-config", p]):
            r = subprocess.run(args, capture_output=True, text=True, timeout=60)
            check(r.returncode == 1 and want in r.stderr,
                  "%s %s: exit %d: %s" % (os.path.basename(args[0]), keys.strip(),
                                          r.returncode, r.stderr))

    with FakeIio(ANGLE_CHANS, rate=1000, input_lines=ANGLE_LINES[:50], scale=0.001,
                 extra_attrs=ANGLE_ATTRS):
        refused("voltage0,voltage1", "angle_channel = voltage1\n",
                "source.angle_channel: channel 'voltage1' is also an EMG channel of "
                "source.channels ('voltage1'): the angle must be a channel of its own, or it "
                "would reach the burst detectors")
        refused("voltage0,voltage1", "angle_channel = voltage9\n",
                "source.angle_channel: device 'iio:device0' has no input channel 'voltage9' "
                "that can be streamed (channels: voltage0, voltage1, voltage2)")
    with FakeIio(ANGLE_CHANS, rate=1000, input_lines=ANGLE_LINES[:50], scale=0.001,
                 timestamp=True):
        refused("voltage0,voltage1", "angle_channel = timestamp\n",
                "source.angle_channel: 'timestamp' is the device's timestamp, not an angle")
    # s16 EMG, s32 angle, s16 EMG: 12 bytes a frame to the kernel, 10 to
    # libiio 0.24; the two EMG channels alone (4 bytes) would be fine
    chans = [{"name": "voltage0", "type": "le:s16/16>>0"},
             {"name": "voltage1", "type": "le:s32/32>>0"},
             {"name": "voltage2", "type": "le:s16/16>>0"}]
    with FakeIio(chans, rate=1000, input_lines=[[0, 0, 0]] * 50, scale=1.0):
        refused("voltage0,voltage2", "angle_channel = voltage1\n",
                "source.channels, source.angle_channel: libiio computes 10 bytes per frame "
                "for these channels, the kernel uses 12")


def test_angle_channel_daemon_and_recording():
    """The real rpmsd on the angle rig, recording: the log names the angle,
    the detector bank has the two EMG channels only (two calibrations, the
    opened event's 2 channels), and the EDF+ has a third signal, voltage2
    in "deg", whose samples are the generator's ramp in degrees."""
    rec = tempfile.mkdtemp(prefix="rpmsd-iio-rec-", dir=TMP)
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = rig.demo_config(endpoint, {("daemon", "arm_on_start"): "false",
                                      ("detect", "calibration_s"): "1",
                                      ("record", "directory"): rec,
                                      ("source", "angle_channel"): "voltage2",
                                      ("source", "angle_scale_deg"): repr(ANGLE_SCALE),
                                      ("source", "angle_offset_deg"): repr(ANGLE_OFFSET)})
    text = text.replace("type = replay",
                        "type = iio\ndevice = iio:device0\nchannels = voltage0,voltage1")

    def two_calibrated_then_2500(msgs):
        cal = [b for t, b, _ in msgs if t == "rpms.state" and b["state"] == "calibrated"]
        return len(cal) >= 2 and any(t == "rpms.heartbeat" and b["samples"] > 2500
                                     for t, b, _ in msgs)

    with FakeIio(ANGLE_CHANS, rate=1000, input_lines=ANGLE_LINES, scale=0.001,
                 extra_attrs=ANGLE_ATTRS):
        r = rig.Run(text, args=(), timeout=90, stop_when=two_calibrated_then_2500)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    check("(2 channels, angle voltage2, 1000 Hz" in r.stderr, r.stderr)
    opened = r.of("rpms.source", kind="opened")
    check(len(opened) == 1 and opened[0]["channels"] == 2, "opened %r" % opened)
    cal = sorted(b["channel"] for b in r.of("rpms.state", state="calibrated"))
    check(cal == [0, 1], "calibrated channels %r" % cal)
    files = [f for f in os.listdir(rec) if f.endswith(".edf")]
    check(len(files) == 1, "recordings %r" % files)
    p = subprocess.run([EDF_READ, os.path.join(rec, files[0])], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0, "edf_read: %s" % p.stderr)
    import json
    sigs = json.loads(p.stdout)["signals"]
    check(len(sigs) == 3 and sigs[2]["label"].strip() == "voltage2" and
          sigs[2]["physdimension"].strip() == "deg" and
          [s["physdimension"].strip() for s in sigs[:2]] == ["uV", "uV"],
          [(s["label"], s["physdimension"]) for s in sigs])
    a = sigs[2]
    step = (a["phys_max"] - a["phys_min"]) / (a["dig_max"] - a["dig_min"])
    # the last data record may be padded after the session's last frame
    got = [a["phys_min"] + (d - a["dig_min"]) * step
           for d in a["samples"][:len(a["samples"]) - a["smp_in_datarecord"]]]
    check(len(got) >= 2000, "%d angle samples" % len(got))
    ramp = [angle_deg(2 * (i % 1000) - 1000) for i in range(len(got))]
    # sample 0 is the first frame after the enable; allow for a stale frame
    # or two of the trial buffer (tests/iio/README.md: a FIFO is not a kfifo)
    shifts = [k for k in range(4)
              if all(abs(g - w) <= step for g, w in zip(got[k:], ramp))]
    if not shifts:
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, ramp)) if abs(g - w) > step]
        raise AssertionError("angle in the recording %r, the ramp %r; %d samples off, "
                             "first %r" % (got[:3], ramp[:3], len(bad), bad[:3]))


def test_angle_channel_rescaled_on_reopen_refused():
    """The device vanishes mid-session and comes back with another scale on
    its angle channel (a goniometer re-wired or re-ranged): every angle,
    and a stretch threshold with it, would shift, so reopen refuses it,
    naming source.angle_channel, until the daemon gives up (exit 3)."""
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = rig.demo_config(endpoint, {("daemon", "arm_on_start"): "false",
                                      ("detect", "calibration_s"): "1",
                                      ("source", "angle_channel"): "voltage2",
                                      ("source", "timeout_ms"): "400",
                                      ("source", "reopen_ms"): "100",
                                      ("source", "reopen_max_ms"): "200",
                                      ("source", "reopen_attempts"): "6"})
    text = text.replace("type = replay",
                        "type = iio\ndevice = iio:device0\nchannels = voltage0,voltage1")
    with FakeIio(ANGLE_CHANS, rate=1000, input_lines=ANGLE_LINES, scale=0.001,
                 extra_attrs=ANGLE_ATTRS, return_after_ms=300) as dev:
        done = []

        def rescale_and_vanish(msgs):
            # rpmsd read the scale at open; what it finds at reopen differs
            if not done and any(t == "rpms.heartbeat" and b["samples"] > 1000
                                for t, b, _ in msgs):
                dev.set_attr("in_voltage2_scale", "0.25")
                dev.vanish()
                done.append(True)
            # had it taken the device back, stop: the checks below say so
            return any(t == "rpms.state" and b["state"] == "recovered" for t, b, _ in msgs)

        r = rig.Run(text, args=(), timeout=90, stop_when=rescale_and_vanish)
    check(done, "the session never got going: %s" % r.stderr)
    check(r.returncode == 3, "exit %d: %s" % (r.returncode, r.stderr))
    check("failed: source.angle_channel: channel 'voltage2' of 'iio:device0' came back "
          "with another format or scale" in r.stderr, r.stderr)
    check("source: reopened" not in r.stderr, r.stderr)


def test_network_backend_iiod():
    """The same device served by Debian's iiod on 127.0.0.1, read with
    source.uri = ip:127.0.0.1: samples still bit-exact."""
    import shutil as _sh
    import signal as _sig
    import socket as _so
    import time as _t

    iiod = _sh.which("iiod") or "/usr/sbin/iiod"
    check(os.access(iiod, os.X_OK), "iiod is not installed (Debian package iiod)")
    lines = [[(i * 97) % 4001 - 2000] for i in range(300)]
    with FakeIio([{"name": "voltage0", "type": "be:s16/16>>0"}], rate=1000,
                 input_lines=lines, scale=1.0) as dev:
        d = subprocess.Popen([iiod], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # iiod listens on TCP 30431 once it has read the tree
            deadline = _t.monotonic() + 30
            while True:
                try:
                    _so.create_connection(("127.0.0.1", 30431), timeout=1).close()
                    break
                except OSError:
                    check(_t.monotonic() < deadline, "iiod never listened")
                    _t.sleep(0.1)
            out, rows = iio_read(iio_conf("voltage0", uri="ip:127.0.0.1"), 64)
            check("at ip:127.0.0.1" in out.splitlines()[0], out.splitlines()[0])
            expect_codes(dev, ["voltage0"], rows)
        finally:
            # iiod ignores SIGTERM and SIGINT
            d.send_signal(_sig.SIGKILL)
            d.wait()


def test_closed_loop_through_iio():
    """The first 17.5 s of the bundled recording through the fake amplifier
    (1 mV per code): calibration, the 15.5 s burst, a full train."""
    with open(os.path.join(rig.SOURCE, "data", "emg", "emg_1.txt")) as f:
        values = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    path = os.path.join(TMP, "emg17.txt")
    with open(path, "w") as f:
        f.write("\n".join(values[:17500]) + "\n")
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = rig.demo_config(endpoint)
    text = text.replace("type = replay", "type = iio\ndevice = iio:device0\nchannels = voltage0")
    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_file=path, scale=1.0):
        def burst_over(msgs):
            return any(t == "rpms.burst" and b["edge"] == "offset" for t, b, _ in msgs)

        r = rig.Run(text, args=(), timeout=90, stop_when=burst_over)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    check("IIO emg-sim at local:" in r.stderr, r.stderr)
    opened = r.of("rpms.source", kind="opened")
    check(len(opened) == 1 and opened[0]["time_source"] == "clock"
          and opened[0]["rate_hz"] == 1000 and opened[0]["channels"] == 1, "opened %r" % opened)
    onsets = r.of("rpms.burst", edge="onset")
    check(len(onsets) == 1 and 15.3 <= onsets[0]["t_edge_s"] <= 15.8,
          "onsets %r" % [o.get("t_edge_s") for o in onsets])
    pulses = r.of("rpms.stim")
    check(len(pulses) == 5 and all(p["train_id"] == onsets[0]["train_id"] for p in pulses),
          "pulses %r" % pulses)


def iio_demo_config(endpoint, extra=None):
    text = rig.demo_config(endpoint, extra=extra)
    return text.replace("type = replay",
                        "type = iio\ndevice = iio:device0\nchannels = voltage0")


def states_of(r):
    return [(s["state"], s.get("reason"), s.get("code")) for s in r.of("rpms.state")]


def test_stall_disarms_then_gives_up():
    """The amplifier stops delivering after 6 s and never resumes: the
    acquisition watchdog disarms the coil before the read itself times out;
    the read timeout is published as a fault; each reopen finds the device
    but no data, so after source.reopen_attempts the session ends (exit 3),
    coil disarmed, never a pulse."""
    lines = [[(i * 37) % 50 - 25] for i in range(1000)]
    path = os.path.join(TMP, "noise.txt")
    with open(path, "w") as f:
        f.write("\n".join(str(v[0]) for v in lines) + "\n")
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = iio_demo_config(endpoint, {("source", "timeout_ms"): "500",
                                      ("source", "reopen_ms"): "100",
                                      ("source", "reopen_attempts"): "3"})
    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_file=path, scale=1.0, stall_after=6000):
        r = rig.Run(text, args=(), timeout=90)
    check(r.returncode == 3, "exit %d: %s" % (r.returncode, r.stderr))
    states = states_of(r)
    check(("fault", "no fresh EMG: disarmed", -110) in states, "states %r" % states)
    check(("disarmed", "acquisition stale", 0) in states, "states %r" % states)
    # by the session clock, not by arrival: events of several threads interleave
    wd = [s["t_session_s"] for s in r.of("rpms.state", reason="no fresh EMG: disarmed")]
    src = [s["t_session_s"] for s in r.of("rpms.state", reason="source read failed")]
    check(wd and src and wd[0] < src[0], "watchdog %r, read error %r" % (wd, src))
    # within safety.acquisition_timeout_ms (250) of the last block, at 6.0 s
    check(0.2 <= wd[0] - 6.0 <= 0.4, "watchdog at %r, last block at 6.0 s" % wd)
    # the first read error, then one after each of the 3 reopens that brought nothing
    check(len(src) == 4, "read errors %r" % src)
    # the back-off doubles: 100, 200, 400 ms (plus the 500 ms read timeout)
    steps = [b - a for a, b in zip(src, src[1:])]
    check(all(0.48 <= d - w <= 0.8 for d, w in zip(steps, (0.1, 0.2, 0.4))),
          "read errors %r" % src)
    check(("fault", "source lost: gave up reopening", -110) in states, "states %r" % states)
    check(not r.of("rpms.state", state="recovered"), "states %r" % states)
    check(not r.of("rpms.stim"), "pulses %r" % r.of("rpms.stim"))
    check(r.stderr.count("source: reopened (attempt") == 3, r.stderr)
    check("3 attempts in a row brought no EMG" in r.stderr, r.stderr)
    check("coil faults:" in r.stdout and "source error:" in r.stdout, r.stdout)


def test_timestamp_gap():
    """The device skips 0.5 s of frames (a stall whose frames are lost, as
    when a kfifo overflows): with its timestamp channel the daemon sees the
    jump, publishes one gap measured by the timestamps, and the sample
    index skips the missing samples, so it still tells session time."""
    lines = [[(i * 37) % 50 - 25] for i in range(1000)]
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = iio_demo_config(endpoint, {("daemon", "arm_on_start"): "false",
                                      ("detect", "calibration_s"): "1"})

    def gap_seen(msgs):
        return any(t == "rpms.source" and b["kind"] == "gap" for t, b, _ in msgs)

    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_lines=lines, scale=1.0, timestamp=True) as dev:
        th = lose_frames_later(dev, after=2000, seconds=0.5)
        r = rig.Run(text, args=(), timeout=60, stop_when=gap_seen)
        th.join(5)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    opened = r.of("rpms.source", kind="opened")
    check(opened and opened[0]["time_source"] == "hardware", "opened %r" % opened)
    gaps = r.of("rpms.source", kind="gap")
    check(len(gaps) == 1, "gaps %r" % gaps)
    g = gaps[0]
    check(g["measured_by"] == "timestamps" and 450 <= g["lost"] <= 560, "gap %r" % g)
    # the generator stalls once 2000 frames are out; the daemon's sample 0
    # is the first frame it read, which may be a frame or two into them
    check(1990 <= g["first_sample"] <= 2100 and g["sample"] == g["first_sample"] + g["lost"],
          "gap %r" % g)
    check(abs(g["t_rec_s"] - g["t_session_s"]) < 0.1, "gap %r" % g)
    check("gaps:            1 in the stream" in r.stdout, r.stdout)


def test_vanish_and_recover():
    """The device disappears 6 s in, after a burst and its train, and comes
    back after 1.5 s as a fresh probe. The coil is disarmed at once, the
    read failure is published, the daemon reopens the device with back-off
    (failing while it is gone), EMG flows again, the outage is one gap
    whose length matches the session clock, sample indices stay the
    recording's time, and the next burst is detected but not stimulated:
    after a fault the coil stays disarmed until someone arms it."""
    with open(os.path.join(rig.SOURCE, "data", "emg", "emg_1.txt")) as f:
        values = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    path = os.path.join(TMP, "emg11-17.txt")
    with open(path, "w") as f:
        # rest from 11 s, the burst at 15.5 s of the recording (4.5 s in)
        f.write("\n".join(values[11000:17500]) + "\n")
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = iio_demo_config(endpoint, {("source", "timeout_ms"): "400",
                                      ("source", "reopen_ms"): "100",
                                      ("source", "reopen_max_ms"): "400",
                                      ("detect", "calibration_s"): "2"})

    def second_burst_refused(msgs):
        rec = [b for t, b, _ in msgs if t == "rpms.state" and b["state"] == "recovered"]
        return rec and any(t == "rpms.safety" and b["sample"] > rec[0]["sample"]
                           for t, b, _ in msgs)

    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_file=path, scale=1.0, vanish_after=6000, return_after_ms=1500) as dev:
        r = rig.Run(text, args=(), timeout=90, stop_when=second_burst_refused)
        gen_log = dev.gen_log()
    check(r.returncode == 3, "exit %d: %s" % (r.returncode, r.stderr))
    states = states_of(r)
    onsets = r.of("rpms.burst", edge="onset")
    check(len(onsets) == 2, "onsets %r" % [(o["t_edge_s"], o["action"]) for o in onsets])
    first, second = onsets
    # before the fault: the burst fires its train
    check(4.3 <= first["t_edge_s"] <= 4.8, "first onset at %r" % first["t_edge_s"])
    pulses = r.of("rpms.stim")
    check(len(pulses) == 5 and all(p["train_id"] == first["train_id"] for p in pulses),
          "pulses %r" % pulses)
    fault = r.of("rpms.state", reason="source read failed")
    check(len(fault) == 1 and fault[0]["code"] == -110, "faults %r" % states)
    disarm = r.of("rpms.state", state="disarmed")
    check(disarm and disarm[0]["reason"] in ("acquisition fault", "acquisition stale"),
          "states %r" % states)
    check("source: reopen attempt 1 failed: source.device: no IIO device 'iio:device0'"
          in r.stderr, r.stderr)
    rec = r.of("rpms.state", state="recovered")
    check(len(rec) == 1, "states %r" % states)
    gaps = r.of("rpms.source", kind="gap")
    check(len(gaps) == 1, "gaps %r" % gaps)
    gap = gaps[0]
    check(gap["measured_by"] == "clock" and gap["first_sample"] >= 6000 - 8,
          "gap %r" % gap)
    # gone 1.5 s plus the time to notice (timeout) and to reopen (back-off)
    check(1.5 <= gap["lost_s"] <= 3.5, "gap %r" % gap)
    check(gap["first_sample"] + gap["lost"] == rec[0]["sample"], "gap %r, recovered %r"
          % (gap, rec[0]))
    # sample indices still tell session time: within a few blocks, before and after
    for ev in (first, rec[0], second):
        check(abs(ev["t_rec_s"] - ev["t_session_s"]) < 0.15,
              "t_rec_s %r vs t_session_s %r" % (ev["t_rec_s"], ev["t_session_s"]))
    # the input starts again on the new enable: the burst 4.5 s after recovery
    check(4.2 <= second["t_edge_s"] - rec[0]["t_rec_s"] <= 4.8,
          "second onset %r, recovered at %r" % (second["t_edge_s"], rec[0]["t_rec_s"]))
    refusals = r.of("rpms.safety")
    check(refusals and all(x["rule"] == "disarmed" for x in refusals), "refusals %r" % refusals)
    check(len(r.of("rpms.stim")) == 5, "pulses after the fault: %r" % r.of("rpms.stim"))
    check("source faults:   1 read failures, 1 reopens" in r.stdout, r.stdout)
    check("gaps:            1 in the stream" in r.stdout, r.stdout)
    check("vanish" in gen_log, gen_log)
    # every message of a faulty session is still what docs/events.schema.json says
    import validate_events
    validator = validate_events.load_validator(validate_events.DEFAULT_SCHEMA)
    for topic, body, _ in r.messages:
        validate_events.check_body(validator, topic, body)


def test_buffer_left_enabled_by_a_dead_process():
    """A process killed while streaming leaves buffer/enable at 1, which a
    real kernel answers with EBUSY on a new trigger or rate (seen in the VM
    rig). rpmsd switches it off at open, says so, and streams."""
    endpoint = "tcp://127.0.0.1:%d" % rig.free_port()
    text = iio_demo_config(endpoint)
    lines = ["%d" % (i % 7) for i in range(4000)]
    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=1000,
                 input_lines=lines, scale=1.0, extra_attrs={"buffer/enable": "1"}):
        def flowing(msgs):
            return any(t == "rpms.heartbeat" and b["samples"] > 500 for t, b, _ in msgs)

        r = rig.Run(text, args=(), timeout=60, stop_when=flowing)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    check("a buffer left enabled by a dead process was switched off" in r.stderr, r.stderr)


if __name__ == "__main__":
    import atexit
    import shutil

    atexit.register(shutil.rmtree, TMP, True)
    check(os.geteuid() == 0, "needs root (mount and network namespaces)")
    # a new network namespace starts with its loopback down
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    rig.run_tests([
        test_formats_bit_exact,
        test_subset_of_channels_in_configured_order,
        test_hardware_timestamps,
        test_timestamp_gap_exact,
        test_missing_channel_and_device,
        test_padded_layout_refused,
        test_angle_channel_in_degrees,
        test_angle_channel_refusals,
        test_angle_channel_daemon_and_recording,
        test_angle_channel_rescaled_on_reopen_refused,
        test_network_backend_iiod,
        test_closed_loop_through_iio,
        test_stall_disarms_then_gives_up,
        test_timestamp_gap,
        test_vanish_and_recover,
        test_buffer_left_enabled_by_a_dead_process,
    ])
