#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The spi coil plugin driving a (mocked) spidev device, checked by
umockdev's spidev ioctl replay.

Each run is the real rpmsd, in fast replay of config/demo.conf (three bursts,
each a 5-pulse train at 30 %) with stim.plugin = spi, started under

    LD_PRELOAD=spidev_setup_shim.so umockdev-run -d spi/spidev0.0.umockdev \\
        -i /dev/spidev0.0=SCRIPT -- rpmsd --config X --fast

SCRIPT lists the frames the test expects ("TW 34cd": one transfer writing
34 cd). umockdev compares every SPI_IOC_MESSAGE transfer with the next
script bytes and answers a difference with ENOMSG, a transfer past the end
of the script with ENOENT: the plugin sees the error, the daemon faults.

What umockdev 0.17's spidev replay does not do, and how this test covers
it (see src/umockdev-spi.vala in umockdev):
 - SPI_IOC_{RD,WR}_{MODE32,MAX_SPEED_HZ,BITS_PER_WORD} get ENOTTY. The
   shim (spi/spidev_setup_shim.c, preloaded before umockdev's library)
   answers them, logs what the plugin set, and can refuse one.
 - umockdev-run does not report a mismatch itself (the exit status is
   rpmsd's) and does not check that the whole script was used. Lines left
   over are needed here: after the last pulse the host disarms two or three
   times (end of recording, stim thread stop, plugin unload; the first two
   race) and close sends the disarm frame once more. So each script ends
   with SLACK spare disarm frames; every transfer must succeed (none
   mismatched, none past the end) and the shim's transcript must show the
   expected frames then at least two disarm frames. A script without the
   spare frames shows a transfer past its end failing.
 - The script is matched as a byte stream: frame boundaries and chip-select
   continuity ("T" vs "C" lines) are not checked ("TW 34cd34cd" matches two
   2-byte transfers). The shim's transcript of each message (its transfers
   and umockdev's answer) is therefore checked too.
 - speed_hz and delay_usecs of a transfer are ignored, and a transfer with
   bits_per_word != 0 aborts umockdev; the plugin leaves all three 0.
"""

import atexit
import errno
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE = os.path.join(HERE, "spi", "spidev0.0.umockdev")
SHIM = os.environ.get("SPIDEV_SHIM", "")
UMOCKDEV_RUN = shutil.which("umockdev-run")
TMP = tempfile.mkdtemp(prefix="rpmsd-spi-")
atexit.register(shutil.rmtree, TMP, True)

PULSES = 15		# 3 trains of 5 at 30 % (config/demo.conf)
DISARM = "3000"		# MCP4921 defaults: command 0x3000 | code_min 0
LEVEL_30 = "34cd"	# 0x3000 | round(0.30 * 4095) = 0x3000 | 1229 (0x4cd)


def spi_config(keys, stim=None):
    """The demo configuration with stim.plugin = spi and @keys in [coil.spi]."""
    extra = {("stim", "plugin"): "spi"}
    for k, v in (stim or {}).items():
        extra[("stim", k)] = v
    text = rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra=extra)
    text += "[coil.spi]\n"
    for k, v in dict({"device": "/dev/spidev0.0"}, **keys).items():
        text += "%s = %s\n" % (k, v)
    return text


class SpiRun:
    """One rpmsd run under umockdev with @frames as the script (one frame,
    hex, per transfer). rpmsd_rig.Run does the run and the subscribing;
    its RPMSD is pointed at a wrapper that starts rpmsd under umockdev-run."""

    serial = 0

    def __init__(self, config_text, frames, shim_env=None):
        SpiRun.serial += 1
        tag = os.path.join(TMP, "run%d" % SpiRun.serial)
        self.script = tag + ".ioctl"
        self.shim_log = tag + ".shim"
        with open(self.script, "w") as f:
            f.write("@DEV /dev/spidev0.0 (SPI)\n")
            for fr in frames:
                f.write("TW %s\n" % fr)
        env = {"SPIDEV_SHIM_LOG": self.shim_log}
        env.update(shim_env or {})
        wrapper = tag + ".sh"
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n")
            for k, v in env.items():
                f.write("export %s='%s'\n" % (k, v))
            f.write("LD_PRELOAD='%s' exec '%s' -d '%s' -i /dev/spidev0.0='%s' -- '%s' \"$@\"\n"
                    % (SHIM, UMOCKDEV_RUN, DEVICE, self.script, rig.RPMSD))
        os.chmod(wrapper, 0o755)
        real, rig.RPMSD = rig.RPMSD, wrapper
        try:
            self.run = rig.Run(config_text)
        finally:
            rig.RPMSD = real
        self.returncode = self.run.returncode
        self.stderr = self.run.stderr
        self.stdout = self.run.stdout
        self.setup = {}
        self.messages = []	# [(["34cd", "2000"], result)] per SPI_IOC_MESSAGE
        if os.path.exists(self.shim_log):
            with open(self.shim_log) as f:
                for line in f:
                    words = line.split()
                    if words[0] == "MESSAGE":
                        self.messages.append((words[1].split(","), int(words[3])))
                    else:
                        self.setup[words[0]] = int(words[1])

    def frames(self):
        """Every transfer's bytes, in order, of the messages that succeeded."""
        return [x for xs, res in self.messages if res >= 0 for x in xs]

    def why(self):
        return "exit %d\nscript %s\nshim log:\n%s\nstderr:\n%s" % (
            self.returncode, self.script, open(self.shim_log).read()
            if os.path.exists(self.shim_log) else "(none)", self.stderr)


SLACK = 8	# spare disarm frames at the end of a script (see above)


def expect_clean(r, pulses=PULSES, intensity=30.0):
    """Exit 0, every pulse published, every transfer accepted by umockdev."""
    check(r.returncode == 0, r.why())
    check("pulses fired:    %d in 3 trains: 3 whole, 0 cut short" % pulses in r.stdout, r.stdout)
    stims = r.run.of("rpms.stim")
    check(len(stims) == pulses and all(p["intensity_pct"] == intensity for p in stims),
          "published pulses: %r" % stims)
    check(all(res >= 0 for _, res in r.messages), r.why())
    check("failed" not in r.stderr, r.why())


def expect_frames(r, head, disarm):
    """The run sent @head, then only @disarm frames: at least two (the
    host's disarm after the last pulse, then close's)."""
    got = r.frames()
    tail = got[len(head):]
    check(got[:len(head)] == head and len(tail) >= 2 and set(tail) == {disarm},
          "expected %s then %s x 2 or more\n%s" % (" ".join(head), disarm, r.why()))
    return len(tail)


def test_exact_frames_mcp4921():
    """Defaults (MCP4921, 8-bit words): 0x3000 at open, 34 cd at every pulse
    (30 % -> code 1229), 0x3000 at every disarm and at close, one frame per
    ioctl; mode 0, 1 MHz, 8-bit words set in open."""
    head = [DISARM] + [LEVEL_30] * PULSES
    r = SpiRun(spi_config({}), head + [DISARM] * SLACK)
    expect_clean(r)
    expect_frames(r, head, DISARM)
    check(all(len(xs) == 1 for xs, _ in r.messages), "one frame per ioctl: %s" % r.why())
    check(r.setup == {"WR_MODE32": 0, "WR_MAX_SPEED_HZ": 1000000, "WR_BITS_PER_WORD": 8},
          "set-up ioctls: %r" % r.setup)
    # No spare frames: the host's disarm after the last pulse runs past the
    # script's end (ENOENT), a fault (exit 3), and so does close's frame.
    r = SpiRun(spi_config({}), head)
    check(r.returncode == 3 and len(r.run.of("rpms.stim")) == PULSES, r.why())
    check(r.messages[len(head)] == ([DISARM], -1), r.why())
    check("disarm_frame 0x3000 at close: writing it to /dev/spidev0.0 failed: "
          "No such file or directory" in r.stderr, r.why())


def test_mismatch_is_a_fault():
    """A script expecting another code: umockdev refuses the first pulse's
    transfer with ENOMSG, pulse returns it, the host faults and disarms
    (exit 3), nothing is published as fired."""
    r = SpiRun(spi_config({}), [DISARM] + ["34ce"] * PULSES + [DISARM] * SLACK)
    check(r.returncode == 3, r.why())
    check(r.run.of("rpms.stim") == [], "pulses published: %r" % r.run.of("rpms.stim"))
    faults = [(s.get("reason"), s.get("code")) for s in r.run.of("rpms.state", state="fault")]
    check(("coil plugin pulse failed", -errno.ENOMSG) in faults,
          "faults %r\n%s" % (faults, r.why()))
    check(r.messages[1] == ([LEVEL_30], -1), r.why())
    # A mismatch in the very first frame: open fails, nothing runs.
    r = SpiRun(spi_config({}), ["3001"] + [LEVEL_30] * PULSES + [DISARM] * SLACK)
    check(r.returncode == 1, r.why())
    check("coil spi: disarm_frame 0x3000: writing it to /dev/spidev0.0 failed: "
          "No message of desired type" in r.stderr, r.why())


def test_code_range_and_default_disarm():
    """code_min 410, code_max 3686 (10-90 % of the DAC): 30 % -> 410 +
    0.3 * 3276 = 1392.8 -> 1393 (0x571): frame 0x3571; the default disarm
    frame is the frame of code_min, 0x319a."""
    head = ["319a"] + ["3571"] * PULSES
    r = SpiRun(spi_config({"code_min": 410, "code_max": 3686}), head + ["319a"] * SLACK)
    expect_clean(r)
    expect_frames(r, head, "319a")


def test_trigger_command_frames():
    """A stimulator with an SPI command set (set level 0x1nnn, fire 0x2000,
    enable 0x3001, disable 0x3000), intensity written only when it changes:
    arm sends the enable frame; the first pulse sends level and fire in one
    ioctl of two transfers; every later pulse only the fire frame."""
    keys = {"command_bits": "0x1000", "trigger_frame": "0x2000", "arm_frame": "0x3001",
            "disarm_frame": "3000", "write_every_pulse": "false"}
    head = ["3000", "3001", "14cd", "2000"] + ["2000"] * (PULSES - 1)
    r = SpiRun(spi_config(keys), head + ["3000"] * SLACK)
    expect_clean(r)
    n = expect_frames(r, head, "3000")
    want = [["3000"], ["3001"], ["14cd", "2000"]] + [["2000"]] * (PULSES - 1) + [["3000"]] * n
    check([xs for xs, _ in r.messages] == want, "messages per ioctl: %s" % r.why())


def test_every_pulse_with_trigger():
    """write_every_pulse (the default) with a trigger: level and fire frames
    in one ioctl at every pulse."""
    keys = {"command_bits": "0x1000", "trigger_frame": "0x2000", "disarm_frame": "0x3000"}
    head = ["3000"] + ["14cd", "2000"] * PULSES
    r = SpiRun(spi_config(keys), head + ["3000"] * SLACK)
    expect_clean(r)
    expect_frames(r, head, "3000")
    check([xs for xs, _ in r.messages][1:1 + PULSES] == [["14cd", "2000"]] * PULSES, r.why())


def test_16_bit_words():
    """bits_per_word = 16: spidev takes each word as a 16-bit integer in
    host order, so the buffer (what umockdev compares) holds cd 34 on this
    little-endian host; the controller shifts out 0x34CD MSB first."""
    little = sys.byteorder == "little"
    disarm, level = ("0030", "cd34") if little else ("3000", "34cd")
    head = [disarm] + [level] * PULSES
    r = SpiRun(spi_config({"bits_per_word": 16}), head + [disarm] * SLACK)
    expect_clean(r)
    expect_frames(r, head, disarm)
    check(r.setup.get("WR_BITS_PER_WORD") == 16, "set-up %r" % r.setup)


def test_mode_keeps_device_flags():
    """mode sets CPOL/CPHA and clears lsb-first; a device tree's spi-cs-high
    (0x04) stays: device mode 0x0c (cs-high, lsb-first), mode = 3 -> 0x07."""
    head = [DISARM] + [LEVEL_30] * PULSES
    r = SpiRun(spi_config({"mode": 3, "speed_hz": 250000}), head + [DISARM] * SLACK,
               shim_env={"SPIDEV_SHIM_MODE": "0x0c"})
    expect_clean(r)
    expect_frames(r, head, DISARM)
    check(r.setup == {"WR_MODE32": 0x07, "WR_MAX_SPEED_HZ": 250000, "WR_BITS_PER_WORD": 8},
          "set-up %r" % r.setup)


def test_driver_refusal_names_the_key():
    """A controller that refuses the clock: open fails naming speed_hz, and
    no frame is sent."""
    r = SpiRun(spi_config({"speed_hz": 50000000}), [DISARM],
               shim_env={"SPIDEV_SHIM_FAIL": "WR_MAX_SPEED_HZ"})
    check(r.returncode == 1, r.why())
    check("coil spi: speed_hz = 50000000: /dev/spidev0.0 refused it: Invalid argument"
          in r.stderr, r.why())
    check(r.messages == [], r.why())


def rpmsd(*args):
    return subprocess.run([rig.RPMSD] + list(args), capture_output=True, text=True,
                          timeout=60)


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_bad_keys_refused():
    """A key out of its range is refused by --check-config and at start
    (the host checks the key table). What only the keys together can tell
    is checked by the plugin's open (which --check-config does not call):
    a start exits 1 naming the key, its value and what is wrong, before
    the device is touched (device = a path that does not exist)."""
    p = write("mode.conf", spi_config({"mode": 4}))
    for args in (("--check-config", p), ("--config", p, "--fast")):
        r = rpmsd(*args)
        check(r.returncode == 1 and "coil.spi.mode: 4 is out of range (allowed: 0 to 3)"
              in r.stderr, "%s: exit %d %r" % (args, r.returncode, r.stderr))
    cases = [
        ({"command_bits": "0x13000"},
         "command_bits = '0x13000' (0x13000): does not fit in frame_bits = 16 (max 0xFFFF)"),
        ({"command_bits": "0x3800"},
         "command_bits = '0x3800' (0x3800): bits 0x800 overlap the value field (mask 0xFFF)"),
        ({"command_bits": "3000"},
         "command_bits = '3000' (0xBB8): bits 0xBB8 overlap the value field (mask 0xFFF)"),
        ({"command_bits": "-1"},
         "command_bits = '-1': not a 32-bit integer (decimal, or hex with 0x)"),
        ({"code_max": 5000}, "code_max = 5000: does not fit value_bits = 12 (max 4095)"),
        ({"code_min": 4095}, "code_max = 4095: equal to code_min"),
        ({"value_shift": 8},
         "value_bits = 12 at value_shift = 8: the value field reaches bit 19, "
         "beyond frame_bits = 16"),
        ({"frame_bits": 24, "bits_per_word": 16},
         "frame_bits = 24: not a whole number of bits_per_word = 16 words"),
        ({"trigger_frame": "0xZZ"},
         "trigger_frame = '0xZZ': not a hex frame (hex digits, 0x optional, at most 32 bits)"),
        ({"disarm_frame": "0x10000"},
         "disarm_frame = '0x10000' (0x10000): does not fit in frame_bits = 16 (max 0xFFFF)"),
        ({"arm_frame": "30 00"}, "arm_frame = '30 00': not a hex frame"),
    ]
    for i, (keys, message) in enumerate(cases):
        keys = dict(keys, device="/nonexistent/spidev9.9")
        p = write("bad%d.conf" % i, spi_config(keys))
        r = rpmsd("--config", p, "--fast")
        check(r.returncode == 1, "%r: exit %d %r" % (keys, r.returncode, r.stderr))
        check("coil spi: " + message in r.stderr, "%r: stderr %r lacks %r" % (keys, r.stderr,
                                                                              message))
        check("coil plugin 'spi': open failed" in r.stderr and "cannot open" not in r.stderr,
              "%r: %r" % (keys, r.stderr))


def test_device_problems():
    """A missing device and a file that is no spidev device are refused at
    open, naming the device."""
    p = write("nodev.conf", spi_config({"device": "/nonexistent/spidev9.9"}))
    r = rpmsd("--config", p, "--fast")
    check(r.returncode == 1 and "coil spi: device = /nonexistent/spidev9.9: cannot open: "
          "No such file or directory" in r.stderr, r.stderr)
    p = write("null.conf", spi_config({"device": "/dev/null"}))
    r = rpmsd("--config", p, "--fast")
    check(r.returncode == 1 and "coil spi: device = /dev/null: SPI_IOC_RD_MODE32 failed: "
          "Inappropriate ioctl for device (not a spidev device?)" in r.stderr, r.stderr)


def test_plugin_keys_listed():
    r = rpmsd("--plugin-keys", "spi")
    check(r.returncode == 0, r.stderr)
    for line in ("[coil.spi]", "device = /dev/spidev0.0", "mode = 0", "speed_hz = 1000000",
                 "bits_per_word = 8", "frame_bits = 16", "value_bits = 12", "value_shift = 0",
                 "command_bits = 0x3000", "code_min = 0", "code_max = 4095",
                 "write_every_pulse = true", "trigger_frame = ", "arm_frame = ",
                 "disarm_frame = "):
        check("\n" + line + "\n" in r.stdout, "no %r in:\n%s" % (line, r.stdout))


if __name__ == "__main__":
    if not UMOCKDEV_RUN or not SHIM:
        print("SKIP: umockdev-run or the spidev shim (SPIDEV_SHIM) is missing")
        sys.exit(77)
    rig.run_tests([test_exact_frames_mcp4921, test_mismatch_is_a_fault,
                   test_code_range_and_default_disarm, test_trigger_command_frames,
                   test_every_pulse_with_trigger, test_16_bit_words,
                   test_mode_keeps_device_flags, test_driver_refusal_names_the_key,
                   test_bad_keys_refused, test_device_problems, test_plugin_keys_listed])
