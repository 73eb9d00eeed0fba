# SPDX-License-Identifier: MIT
"""A fake IIO device for tests: libiio's local backend against a crafted
sysfs tree and a FIFO device node, fed by iio_gen.

Run inside a private mount namespace as root, e.g.
    unshare -m --propagation private /usr/bin/python3 test.py
(or call reexec_in_namespace() first thing). FakeIio refuses to mount anything
when it is not in a mount namespace of its own.

    with FakeIio([{"name": "voltage0", "type": "le:s16/16>>0"}], rate=2000,
                 input_lines=[[0.1], [0.2]], scale=0.001) as dev:
        out = dev.iio_readdev(["-b", "8", "-s", "64", "iio:device0", "voltage0"])

Controls: frames_sent() / wait_frames(n) read iio_gen's --count-file;
stall() sends SIGUSR1 and resume() SIGRTMIN (both idempotent); vanish() sends
SIGUSR2 (the device leaves sysfs and /dev, and comes back after
return_after_ms). stall_after= and vanish_after= pass the CLI flags.
"""

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SYS_BUS = "/sys/bus"
DEVICES = "/sys/bus/iio/devices"

# Nodes of the real /dev that stay reachable under the private /dev.
DEV_KEEP = ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm",
            "ptmx", "fd", "stdin", "stdout", "stderr", "log"]


def gen_path():
    """The iio_gen binary: $RPMSD_IIO_GEN (set by meson), else the build
    tree's copy, else one on PATH."""
    env = os.environ.get("RPMSD_IIO_GEN")
    if env:
        return env
    candidates = []
    build = os.environ.get("RPMSD_BUILD_ROOT")
    if build:
        candidates.append(os.path.join(build, "tests", "iio", "iio_gen"))
    root = os.path.dirname(os.path.dirname(HERE))
    candidates.append(os.path.join(root, "build", "tests", "iio", "iio_gen"))
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("iio_gen") or candidates[0]


def _mnt_ns(pid):
    try:
        return os.readlink("/proc/%s/ns/mnt" % pid)
    except OSError:
        return None


def in_private_namespace():
    """True when this process has a mount namespace of its own: one that
    differs from an ancestor's (PID 1's may be unreadable, even to root)."""
    mine = _mnt_ns("self")
    pid = os.getppid()
    while mine and pid > 0:
        ns = _mnt_ns(pid)
        if ns is not None and ns != mine:
            return True
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return False


def reexec_in_namespace():
    """Run this script again inside `unshare -m --propagation private` unless
    it already is in a mount namespace of its own."""
    if in_private_namespace():
        return
    if os.environ.get("RPMSD_IIO_REEXEC"):
        raise RuntimeError("unshare did not give a new mount namespace")
    env = dict(os.environ, RPMSD_IIO_REEXEC="1")
    os.execvpe("unshare", ["unshare", "-m", "--propagation", "private",
                           sys.executable] + sys.argv, env)


def _run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def _umount(path, recursive=False):
    flags = ["-R"] if recursive else []
    r = subprocess.run(["umount"] + flags + [path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        subprocess.run(["umount", "-l"] + flags + [path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------- formats

def parse_type(t):
    """'le:s12/16>>4' -> dict(be, signed, bits, storage, shift)."""
    endian, rest = t.split(":")
    sign = rest[0]
    bits, rest = rest[1:].split("/")
    storage, shift = rest.split(">>")
    if endian not in ("le", "be") or sign not in "suSU":
        raise ValueError("bad IIO type " + t)
    return {"be": endian == "be", "signed": sign in "sS", "bits": int(bits),
            "storage": int(storage), "shift": int(shift)}


def raw_code(value, scale, fmt):
    """round(value / scale) (half away from zero), clamped to the type."""
    x = value / scale
    if math.isnan(x):
        x = 0.0
    x = math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1) if math.isfinite(x) else x
    if fmt["signed"]:
        lo, hi = -(1 << (fmt["bits"] - 1)), (1 << (fmt["bits"] - 1)) - 1
    else:
        lo, hi = 0, (1 << fmt["bits"]) - 1
    if x <= lo:
        return lo
    if x >= hi:
        return hi
    return int(x)


def pack_word(code, fmt, unused="sign"):
    """The storage bytes of one raw code, as iio_gen writes them."""
    smask = (1 << fmt["storage"]) - 1
    vmask = ((1 << fmt["bits"]) - 1) << fmt["shift"]
    word = (code << fmt["shift"]) & smask
    if unused == "zero":
        word &= vmask
    elif unused == "ones":
        word |= ~vmask & smask
    return word.to_bytes(fmt["storage"] // 8, "big" if fmt["be"] else "little")


def unpack_code(data, fmt):
    """Storage bytes -> raw code (shifted down, masked, sign-extended)."""
    word = int.from_bytes(data, "big" if fmt["be"] else "little")
    code = (word >> fmt["shift"]) & ((1 << fmt["bits"]) - 1)
    if fmt["signed"] and code & (1 << (fmt["bits"] - 1)):
        code -= 1 << fmt["bits"]
    return code


def layout(chans):
    """IIO scan layout of the given enabled channels (any order):
    ([(chan, offset)] in index order, frame_bytes)."""
    off, align, out = 0, 1, []
    for c in sorted(chans, key=lambda c: c["index"]):
        size = parse_type(c["type"])["storage"] // 8
        off = (off + size - 1) // size * size
        out.append((c, off))
        off += size
        align = max(align, size)
    return out, (off + align - 1) // align * align


# ---------------------------------------------------------------- the rig

class FakeIio:
    """One fake IIO device, iio:device0 by default (see the module doc)."""

    def __init__(self, channels, rate=2000, input_lines=None, input_file=None,
                 name="emg-sim", scale=None, timestamp=False, buffer=True,
                 extra_attrs=None, device="iio:device0", stall_after=None,
                 vanish_after=None, return_after_ms=None, unused_bits="sign",
                 gen_args=(), start_gen=True, verbose=False):
        if (input_lines is None) == (input_file is None) and start_gen:
            raise ValueError("give input_lines or input_file")
        self.channels = []
        for i, c in enumerate(channels):
            c = dict(c)
            c.setdefault("index", i)
            parse_type(c["type"])
            self.channels.append(c)
        if timestamp:
            top = max((c["index"] for c in self.channels), default=-1)
            self.channels.append({"name": "timestamp", "type": "le:s64/64>>0",
                                  "index": top + 1})
        self.rate = rate
        self.input_lines = input_lines
        self.input_file = input_file
        self.name = name
        self.scale = scale
        self.buffer = buffer
        self.extra_attrs = dict(extra_attrs or {})
        self.device = device
        self.dev_dir = os.path.join(DEVICES, device)
        self.fifo = os.path.join("/dev", device)
        self.unused_bits = unused_bits
        self.gen_args = [str(a) for a in gen_args]
        if stall_after is not None:
            self.gen_args += ["--stall-after", str(stall_after)]
        if vanish_after is not None:
            self.gen_args += ["--vanish-after", str(vanish_after)]
        if return_after_ms is not None:
            self.gen_args += ["--return-after-ms", str(return_after_ms)]
        self.start_gen = start_gen
        self.verbose = verbose
        self.tmp = None
        self.gen = None
        self._mounts = []

    # -- layout of the input and of the channels

    def value_channels(self):
        """Channels fed from input columns, in index order."""
        return [c for c in sorted(self.channels, key=lambda c: c["index"])
                if c["name"] != "timestamp"]

    def channel(self, name):
        for c in self.channels:
            if c["name"] == name:
                return c
        raise KeyError(name)

    def channel_scale(self, c):
        if c.get("scale") is not None:
            return c["scale"]
        if self.scale is not None:
            return self.scale
        return 1.0

    def input_rows(self):
        """The input frames as lists of floats (comments skipped)."""
        if self.input_lines is not None:
            src = self.input_lines
        else:
            with open(self.input_file) as f:
                src = f.read().splitlines()
        rows = []
        for line in src:
            if isinstance(line, str):
                s = line.strip()
                if not s or s.startswith("#"):
                    continue
                rows.append([float(v) for v in s.split()])
            else:
                rows.append([float(v) for v in line])
        return rows

    def expected_bytes(self, names, nframes, start=0):
        """The byte stream iio_gen writes for frames start..start+nframes-1
        of a session with exactly the channels `names` enabled (no
        timestamp: its values depend on time)."""
        chans = [self.channel(n) for n in names]
        if any(c["name"] == "timestamp" for c in chans):
            raise ValueError("timestamps are not predictable")
        lay, size = layout(chans)
        cols = {c["name"]: i for i, c in enumerate(self.value_channels())}
        rows = self.input_rows()
        out = bytearray()
        for k in range(start, start + nframes):
            row = rows[k % len(rows)]
            frame = bytearray(size)
            for c, off in lay:
                fmt = parse_type(c["type"])
                code = raw_code(row[cols[c["name"]]], self.channel_scale(c), fmt)
                word = pack_word(code, fmt, self.unused_bits)
                frame[off:off + len(word)] = word
            out += frame
        return bytes(out)

    def decode(self, data, names):
        """Split a raw stream of frames (channels `names` enabled) into a list
        of {name: raw code} dicts."""
        lay, size = layout([self.channel(n) for n in names])
        frames = []
        for pos in range(0, len(data) - size + 1, size):
            frame = {}
            for c, off in lay:
                fmt = parse_type(c["type"])
                frame[c["name"]] = unpack_code(
                    data[pos + off:pos + off + fmt["storage"] // 8], fmt)
            frames.append(frame)
        return frames

    # -- set-up and tear-down

    def _mount(self, *argv, target):
        _run("mount", *argv, target)
        self._mounts.append(target)

    def _write(self, rel, value):
        path = os.path.join(self.dev_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        text = str(value)
        if not text.endswith("\n"):
            text += "\n"    # libiio drops the last byte of every attribute
        with open(path, "w") as f:
            f.write(text)

    @staticmethod
    def _num(v):
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return repr(v) if isinstance(v, float) else str(v)

    def _build_tree(self):
        self._write("name", self.name)
        if self.rate is not None:
            self._write("sampling_frequency", self._num(self.rate))
        if self.scale is not None:
            self._write("in_voltage_scale", self._num(self.scale))
        for c in self.channels:
            base = "scan_elements/in_" + c["name"]
            self._write(base + "_en", "0")
            self._write(base + "_index", c["index"])
            self._write(base + "_type", c["type"])
            if c.get("scale") is not None:
                self._write("in_%s_scale" % c["name"], self._num(c["scale"]))
        if self.buffer:
            self._write("buffer/length", "128")
            self._write("buffer/enable", "0")
            self._write("buffer/watermark", "1")
        self._write("trigger/current_trigger", "")
        for rel, value in self.extra_attrs.items():
            self._write(rel, value)

    def _private_dev(self):
        real = os.path.join(self.tmp, "realdev")
        os.mkdir(real)
        self._mount("--rbind", "/dev", target=real)
        self._mount("-t", "tmpfs", "-o", "mode=755", "rpmsd-dev", target="/dev")
        for n in DEV_KEEP:
            src, dst = os.path.join(real, n), os.path.join("/dev", n)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            elif os.path.isdir(src):
                os.mkdir(dst)
                if os.path.ismount(src):
                    _run("mount", "--rbind", src, dst)
            elif os.path.exists(src):
                open(dst, "w").close()
                _run("mount", "--bind", src, dst)
        os.mkfifo(self.fifo, 0o660)

    def _write_input(self):
        if self.input_file is not None:
            return self.input_file
        path = os.path.join(self.tmp, "input.txt")
        with open(path, "w") as f:
            for line in self.input_lines:
                if isinstance(line, str):
                    f.write(line.rstrip("\n") + "\n")
                else:
                    f.write(" ".join(repr(float(v)) for v in line) + "\n")
        return path

    def start_generator(self):
        self.count_file = os.path.join(self.tmp, "frames")
        self.gen_log_path = os.path.join(self.tmp, "iio_gen.log")
        argv = [gen_path(), "--dev", self.dev_dir, "--fifo", self.fifo,
                "--input", self._write_input(), "--count-file", self.count_file,
                "--unused-bits", self.unused_bits]
        if self.scale is not None:
            argv += ["--scale", self._num(self.scale)]
        if self.verbose:
            argv.append("--verbose")
        argv += self.gen_args
        self._gen_log = open(self.gen_log_path, "w")
        self.gen = subprocess.Popen(argv, stdout=self._gen_log,
                                    stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.count_file):
            if self.gen.poll() is not None:
                raise RuntimeError("iio_gen exited %d: %s" %
                                   (self.gen.returncode, self.gen_log()))
            if time.monotonic() > deadline:
                raise RuntimeError("iio_gen did not start")
            time.sleep(0.005)

    def stop_generator(self):
        if self.gen is None:
            return 0
        if self.gen.poll() is None:
            self.gen.send_signal(signal.SIGTERM)
            try:
                self.gen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.gen.kill()
                self.gen.wait()
        rc = self.gen.returncode
        self.gen = None
        self._gen_log.close()
        return rc

    def __enter__(self):
        if os.geteuid() != 0:
            raise RuntimeError("FakeIio needs root (run under unshare -m)")
        if not in_private_namespace():
            raise RuntimeError("FakeIio must run in a private mount namespace "
                               "(unshare -m --propagation private)")
        # Belt and braces: nothing mounted from here may reach the host.
        _run("mount", "--make-rprivate", "/")
        self.tmp = tempfile.mkdtemp(prefix="rpmsd-iio-")
        try:
            # iio_gen rewrites its count file every millisecond: on a disk
            # file system a rename can block it for milliseconds.
            self._mount("-t", "tmpfs", "-o", "mode=700", "rpmsd-iio-work",
                        target=self.tmp)
            self._mount("-t", "tmpfs", "-o", "mode=755", "rpmsd-sysbus",
                        target=SYS_BUS)
            os.makedirs(DEVICES)
            self._build_tree()
            self._private_dev()
            if self.start_gen:
                self.start_generator()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        self.gen_exit = self.stop_generator()
        for target in reversed(self._mounts):
            _umount(target, recursive=True)
        self._mounts = []
        if self.tmp:
            self._remove_tmp()
        return False

    def _remove_tmp(self):
        # Never rmtree: if an unmount failed, realdev is still the real /dev.
        real = os.path.join(self.tmp, "realdev")
        if os.path.isdir(real) and not os.path.ismount(real):
            try:
                os.rmdir(real)
            except OSError:
                pass
        for name in os.listdir(self.tmp):
            path = os.path.join(self.tmp, name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.unlink(path)
        try:
            os.rmdir(self.tmp)
        except OSError:
            pass
        self.tmp = None

    # -- controls and probes

    def gen_log(self):
        try:
            with open(self.gen_log_path) as f:
                return f.read()
        except (OSError, AttributeError):
            return ""

    def _status(self):
        try:
            with open(self.count_file) as f:
                lines = f.read().split()
            return int(lines[0]), lines[1]
        except (OSError, ValueError, IndexError):
            return 0, ""

    def frames_sent(self):
        """Frames iio_gen has written since it started (all sessions)."""
        return self._status()[0]

    def state(self):
        """iio_gen's state: "off" (buffer disabled), "on" (writing frames),
        "stalled" or "vanished"."""
        return self._status()[1]

    def wait_state(self, state, timeout=60):
        deadline = time.monotonic() + timeout
        while self.state() != state:
            if time.monotonic() > deadline:
                raise TimeoutError("iio_gen state %r, want %r"
                                   % (self.state(), state))
            time.sleep(0.002)

    def wait_frames(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while self.frames_sent() < n:
            if time.monotonic() > deadline:
                raise TimeoutError("iio_gen sent %d of %d frames"
                                   % (self.frames_sent(), n))
            time.sleep(0.002)

    def stall(self):
        """Stop writing frames now (the process stays alive)."""
        self.gen.send_signal(signal.SIGUSR1)

    def resume(self):
        """Writing goes on with the frames due now (the stall's are lost)."""
        self.gen.send_signal(signal.SIGRTMIN)

    def vanish(self):
        """Remove the device from sysfs and /dev now; it comes back after
        return_after_ms (default 1000) with its buffer off."""
        self.gen.send_signal(signal.SIGUSR2)

    def present(self):
        return os.path.isdir(self.dev_dir) and os.path.exists(self.fifo)

    def wait_present(self, present=True, timeout=60):
        deadline = time.monotonic() + timeout
        while self.present() != present:
            if time.monotonic() > deadline:
                raise TimeoutError("device present=%s not reached" % present)
            time.sleep(0.002)

    def attr(self, rel):
        with open(os.path.join(self.dev_dir, rel)) as f:
            return f.read().rstrip("\n\0")

    def set_attr(self, rel, value):
        self._write(rel, value)

    def iio_readdev(self, args, timeout=60):
        """iio_readdev -u local: ARGS; returns the CompletedProcess (stdout
        is the raw sample bytes)."""
        return subprocess.run(["iio_readdev", "-u", "local:"] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def iio_info(self, args=(), timeout=60):
        return subprocess.run(["iio_info", "-u", "local:"] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, text=True)
