# SPDX-License-Identifier: MIT
"""Self-test of the fake IIO rig, proven with libiio's own tools.

Run by meson as `unshare -m --propagation private python3 rig_selftest.py`
(run by hand, it re-executes itself under unshare). Needs root, iio_info and
iio_readdev (Debian: libiio-utils). No test bounds how long anything takes.
"""

import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig  # noqa: E402

DEV = "iio:device0"
RATE = 2000
results = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def test(fn):
    results.append(fn)
    return fn


def readdev(dev, names, samples, extra=()):
    r = dev.iio_readdev(["-b", "8", "-s", str(samples)] + list(extra) + [DEV] + names)
    check(r.returncode == 0, "iio_readdev rc %d: %s" % (r.returncode, r.stderr))
    return r.stdout


def volt(name, typ, **kw):
    return dict(name=name, type=typ, **kw)


# Values in volts with scale 0.5 V per code: codes 0, 2, -2, clamp high,
# clamp low, 1 (0.7 -> 1.4), 2 (0.8 -> 1.6), -2, 3 (1.25 -> 2.5, half away
# from zero), -3, then a ramp so that a loop of the input is visible.
EDGE = [0.0, 1.0, -1.0, 1e9, -1e9, 0.7, 0.8, -0.8, 1.25, -1.25]
RAMP = [0.5 * (i - 20) for i in range(40)]
INPUT = [[v] for v in EDGE + RAMP]

# The first eight frames written out by hand, per type (independent of both
# encoders): 0, 2, -2, max, min, 1, 2, -2 and then 3, -3.
LITERAL = {
    "le:s16/16>>0": ["0000", "0200", "feff", "ff7f", "0080", "0100", "0200", "feff",
                     "0300", "fdff"],
    "be:s16/16>>0": ["0000", "0002", "fffe", "7fff", "8000", "0001", "0002", "fffe",
                     "0003", "fffd"],
    "le:s12/16>>4": ["0000", "2000", "e0ff", "f07f", "0080", "1000", "2000", "e0ff",
                     "3000", "d0ff"],
    "le:s24/32>>0": ["00000000", "02000000", "feffffff", "ffff7f00", "000080ff",
                     "01000000", "02000000", "feffffff", "03000000", "fdffffff"],
}


def format_case(typ, unused="sign", literal=None):
    chans = [volt("voltage0", typ)]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, scale=0.5,
                     unused_bits=unused) as dev:
        n = 128                      # more than the input: it loops
        out = readdev(dev, ["voltage0"], n)
        want = dev.expected_bytes(["voltage0"], n)
        check(len(out) == len(want), "got %d bytes, want %d" % (len(out), len(want)))
        check(out == want, "samples differ from the input")
        lit = literal or LITERAL[typ]
        size = len(bytes.fromhex(lit[0]))
        got = [out[i * size:(i + 1) * size].hex() for i in range(len(lit))]
        check(got == lit, "first frames %s, want %s" % (got, lit))
        dev.wait_frames(n)          # the count file follows the FIFO
    check(dev.gen_exit == 0, "iio_gen exited %s on SIGTERM" % dev.gen_exit)


@test
def iio_info_sees_device():
    chans = [volt("voltage0", "le:s16/16>>0"), volt("voltage1", "be:s12/16>>4", scale=0.25)]
    with rig.FakeIio(chans, rate=RATE, input_lines=[[0, 0]], scale=0.5,
                     timestamp=True) as dev:
        r = dev.iio_info()
        check(r.returncode == 0, "iio_info rc %d: %s" % (r.returncode, r.stderr))
        out = r.stdout
        for needle in ["iio:device0: emg-sim (buffer capable)", "3 channels found",
                       "voltage0:  (input, index: 0, format: le:S16/16>>0)",
                       "voltage1:  (input, index: 1, format: be:s12/16>>4)",
                       "timestamp:  (input, index: 2, format: le:S64/64>>0)",
                       "scale value: 0.25", "scale value: 0.5",
                       "sampling_frequency value: 2000"]:
            check(needle in out, "iio_info lacks %r:\n%s" % (needle, out))


@test
def le_s16():
    format_case("le:s16/16>>0")


@test
def be_s16():
    format_case("be:s16/16>>0")


@test
def le_s12_in_16_shift4():
    format_case("le:s12/16>>4")


@test
def le_s24_in_32():
    format_case("le:s24/32>>0")


@test
def unused_bits_ones_s12():
    # Bits outside the 12-bit field set: consumers must shift and mask.
    format_case("le:s12/16>>4", unused="ones",
                literal=["0f00", "2f00", "efff", "ff7f", "0f80", "1f00", "2f00",
                         "efff", "3f00", "dfff"])


@test
def unused_bits_zero_s24():
    # No sign extension above bit 23: consumers must sign-extend.
    format_case("le:s24/32>>0", unused="zero",
                literal=["00000000", "02000000", "feffff00", "ffff7f00", "00008000",
                         "01000000", "02000000", "feffff00", "03000000", "fdffff00"])


def multi_device(**kw):
    chans = [volt("voltage0", "le:s16/16>>0"),
             volt("voltage1", "le:u8/8>>0", scale=1.0),
             volt("voltage2", "le:s32/32>>0", scale=0.25),
             volt("voltage3", "be:s16/16>>0", scale=2.0)]
    rows = [[100 + k, k % 256, 1000.0 * k, -2.0 * k] for k in range(64)]
    return rig.FakeIio(chans, rate=RATE, input_lines=rows, scale=1.0, **kw)


def check_frames(dev, names, out, n, size, frame1):
    check(rig.layout([dev.channel(c) for c in names])[1] == size,
          "layout size for %s" % names)
    check(len(out) == n * size, "%s: %d bytes, want %d" % (names, len(out), n * size))
    check(out == dev.expected_bytes(names, n), "%s: samples differ" % names)
    check(out[size:2 * size].hex() == frame1,
          "%s: frame 1 %s, want %s" % (names, out[size:2 * size].hex(), frame1))
    for k, f in enumerate(dev.decode(out, names)):
        want = {"voltage0": 100 + k % 64, "voltage1": k % 64,
                "voltage2": 4000 * (k % 64), "voltage3": -(k % 64)}
        check(all(f[c] == want[c] for c in names), "%s frame %d: %s" % (names, k, f))


@test
def subset_of_channels():
    # (enabled, frame bytes, hand-made frame 1); none has padding at the end
    # of the frame, which libiio 0.24 does not count (see raw_fifo_layout).
    cases = [(["voltage1", "voltage3"], 4, "01" + "00" + "ffff"),
             (["voltage1", "voltage2"], 8, "01" + "000000" + "a00f0000"),
             (["voltage0", "voltage3"], 4, "6500" + "ffff"),
             (["voltage0", "voltage1", "voltage2"], 8, "6500" + "01" + "00" + "a00f0000")]
    with multi_device() as dev:
        for names, size, frame1 in cases:
            n = 100
            check_frames(dev, names, readdev(dev, names, n), n, size, frame1)


def raw_session(dev, names, n, timeout=60):
    """Enable `names` by hand (as libiio would) and read n frames straight
    from the FIFO."""
    size = rig.layout([dev.channel(c) for c in names])[1]
    fd = os.open(dev.fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        for c in dev.channels:
            dev.set_attr("scan_elements/in_%s_en" % c["name"],
                         "1" if c["name"] in names else "0")
        dev.set_attr("buffer/enable", "1")
        data = bytearray()
        deadline = time.monotonic() + timeout
        while len(data) < n * size:
            check(time.monotonic() < deadline, "only %d bytes came" % len(data))
            try:
                data += os.read(fd, n * size - len(data))
            except BlockingIOError:
                time.sleep(0.002)
        dev.set_attr("buffer/enable", "0")
        dev.wait_state("off")   # iio_gen drained the FIFO
        return bytes(data)
    finally:
        os.close(fd)


@test
def raw_fifo_layout():
    # The kernel pads a frame to its largest element: s16 + s32 + s16 takes
    # 12 bytes. libiio 0.24 counts 10 (fixed upstream after 0.24, PR #1010),
    # so these layouts are checked on the FIFO itself, not through libiio.
    cases = [(["voltage0", "voltage2", "voltage3"], 12,
              "6500" + "0000" + "a00f0000" + "ffff" + "0000"),
             (["voltage0", "voltage1", "voltage2", "voltage3"], 12,
              "6500" + "01" + "00" + "a00f0000" + "ffff" + "0000"),
             (["voltage1", "voltage3"], 4, "01" + "00" + "ffff")]
    with multi_device() as dev:
        for names, size, frame1 in cases:
            n = 100
            check_frames(dev, names, raw_session(dev, names, n), n, size, frame1)


@test
def restart_drains_and_rewinds():
    # A second session starts again from the first input line, without
    # stale frames of the first one.
    with multi_device(verbose=True) as dev:
        names = ["voltage0", "voltage3"]
        want = dev.expected_bytes(names, 40)
        for i in range(3):
            out = readdev(dev, names, 40)
            check(out == want, "session %d differs: voltage0 %s\n%s" % (
                i, [f["voltage0"] for f in dev.decode(out, names)], dev.gen_log()))


@test
def timestamp_channel():
    chans = [volt("voltage0", "le:s16/16>>0")]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, scale=0.5,
                     timestamp=True) as dev:
        names = ["voltage0", "timestamp"]
        n = 400
        t_before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        out = readdev(dev, names, n)
        t_after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        check(len(out) == n * 16, "%d bytes, want %d" % (len(out), n * 16))
        frames = dev.decode(out, names)
        volts = dev.decode(dev.expected_bytes(["voltage0"], n), ["voltage0"])
        check([f["voltage0"] for f in frames] == [v["voltage0"] for v in volts],
              "voltage0 next to the timestamp differs")
        ts = [f["timestamp"] for f in frames]
        period = 1e9 / RATE
        check(ts[0] >= t_before, "first timestamp before the session began")
        check(ts[-1] <= t_after, "last timestamp after it was read")
        steps = [b - a for a, b in zip(ts, ts[1:])]
        check(all(abs(s - period) <= 1 for s in steps),
              "steps not 1/rate: min %d max %d" % (min(steps), max(steps)))


def open_fifo_and_enable(dev, names):
    fd = os.open(dev.fifo, os.O_RDONLY | os.O_NONBLOCK)
    for c in names:
        dev.set_attr("scan_elements/in_%s_en" % c, "1")
    dev.set_attr("buffer/enable", "1")
    return fd


def read_available(fd):
    data = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def wait_log(dev, text, timeout=60):
    deadline = time.monotonic() + timeout
    while text not in dev.gen_log():
        check(time.monotonic() < deadline, "iio_gen never logged %r" % text)
        time.sleep(0.005)


@test
def stall_after_and_resume():
    chans = [volt("voltage0", "le:s16/16>>0")]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, scale=0.5,
                     stall_after=100) as dev:
        fd = open_fifo_and_enable(dev, ["voltage0"])
        try:
            dev.wait_frames(100)
            wait_log(dev, "stalled after 100 frames")
            time.sleep(0.2)
            check(dev.frames_sent() == 100, "frames went on: %d" % dev.frames_sent())
            data = read_available(fd)
            check(data == dev.expected_bytes(["voltage0"], 100),
                  "stalled stream: %d bytes" % len(data))
            check(dev.gen is not None and dev.gen.poll() is None, "iio_gen died")
            dev.resume()
            dev.wait_frames(150)
        finally:
            os.close(fd)


@test
def stall_by_signal():
    chans = [volt("voltage0", "le:s16/16>>0")]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, scale=0.5) as dev:
        fd = open_fifo_and_enable(dev, ["voltage0"])
        try:
            dev.wait_frames(20)
            dev.stall()
            wait_log(dev, "stalled after")
            a = dev.frames_sent()
            time.sleep(0.2)
            check(dev.frames_sent() == a, "frames went on while stalled")
            dev.resume()
            dev.wait_frames(a + 50)
        finally:
            os.close(fd)


@test
def vanish_and_return():
    chans = [volt("voltage0", "le:s16/16>>0")]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, scale=0.5,
                     vanish_after=50, return_after_ms=1500) as dev:
        fd = open_fifo_and_enable(dev, ["voltage0"])
        try:
            wait_log(dev, "device vanished after 50 frames")
            gone = not dev.present()
            r = dev.iio_info()
            if gone and "device back" not in dev.gen_log():
                check("iio:device0" not in r.stdout, "iio_info still lists it")
            check(dev.frames_sent() == 50, "frames_sent %d" % dev.frames_sent())
            # Like a removed device, the queued data is gone with it.
            check(read_available(fd) == b"", "data left in the old FIFO")
        finally:
            os.close(fd)
        wait_log(dev, "device back")
        dev.wait_present()
        check(dev.attr("buffer/enable") == "0", "enable not reset")
        check(dev.attr("scan_elements/in_voltage0_en") == "0", "_en not reset")
        out = readdev(dev, ["voltage0"], 64)
        check(out == dev.expected_bytes(["voltage0"], 64), "after return: samples differ")


@test
def vanish_by_signal():
    chans = [volt("voltage0", "le:s16/16>>0")]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, scale=0.5,
                     return_after_ms=200) as dev:
        dev.vanish()
        wait_log(dev, "device vanished")
        wait_log(dev, "device back")
        dev.wait_present()
        out = readdev(dev, ["voltage0"], 16)
        check(out == dev.expected_bytes(["voltage0"], 16), "after return: samples differ")


@test
def no_buffer_dir_fails_like_libiio_says():
    chans = [volt("voltage0", "le:s16/16>>0")]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, buffer=False,
                     start_gen=False) as dev:
        r = dev.iio_readdev(["-b", "8", "-s", "8", DEV, "voltage0"], timeout=60)
        check(r.returncode != 0, "iio_readdev worked without buffer/")


@test
def sampling_frequency_written_by_app():
    # Without --rate, iio_gen takes the rate from sampling_frequency at each
    # enable, as the application may have changed it.
    chans = [volt("voltage0", "le:s16/16>>0")]
    with rig.FakeIio(chans, rate=RATE, input_lines=INPUT, scale=0.5,
                     timestamp=True) as dev:
        dev.set_attr("sampling_frequency", "500")
        out = readdev(dev, ["voltage0", "timestamp"], 32)
        ts = [f["timestamp"] for f in dev.decode(out, ["voltage0", "timestamp"])]
        steps = {b - a for a, b in zip(ts, ts[1:])}
        check(steps == {2000000}, "steps %s, want 2 ms" % sorted(steps))


def main():
    rig.reexec_in_namespace()
    passed = failed = 0
    for fn in results:
        t = time.monotonic()
        try:
            fn()
        except Exception:
            failed += 1
            print("FAIL %s" % fn.__name__)
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("ok   %s (%.2f s)" % (fn.__name__, time.monotonic() - t))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
