#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The VM rig's stimulator on the host (docs/rig.md, "A stimulator on the
guest's second serial port"): rig.sh starts this before QEMU, and QEMU
connects the guest's ttyS1 (the stimulator's serial cable) and ttyS2 (the
test's control line) to the two Unix sockets it listens on.

    stim_bridge.py DATA_SOCK CTL_SOCK EMU_DIR READY_FILE

The device is one of the project's emulators (tests/emu/magstim.py,
magventure.py), unchanged, run as its command-line program: it prints its
pseudo-terminal's path and takes control commands on stdin. This program
copies bytes both ways between ttyS1's socket and that pty, and serves the
control line, one command a line, one answer a line:

    start DEVICE [ARGS...]   (re)start tests/emu/DEVICE.py ARGS: "ok slave PATH"
    stop                     stop the emulator: "ok" (the cable is then dead:
                             bytes from the guest are dropped)
    anything else            passed to the emulator's control channel, its
                             answer line back (see tests/emu/emu_core.py)

The guest's tests send these at the moment they need them (after rpmsd
armed, say), so host and guest are synchronised by the exchange itself,
not by time. Exits when QEMU closes either socket (the VM stopped) or its
parent is gone; READY_FILE is written once both sockets listen.
"""

import os
import select
import socket
import subprocess
import sys
import tty

DEVICES = ("magstim", "magventure")


class Bridge:
    def __init__(self, emu_dir):
        self.emu_dir = emu_dir
        self.proc = None
        self.pty = -1
        self.data = None
        self.ctl = None
        self.ctl_buf = b""

    def log(self, msg):
        print("stim-bridge: %s" % msg, file=sys.stderr, flush=True)

    def stop_emu(self):
        if self.pty >= 0:
            os.close(self.pty)
            self.pty = -1
        if self.proc is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def start_emu(self, words):
        self.stop_emu()
        dev = words[0] if words else ""
        if dev not in DEVICES:
            return "err start: the device is one of %s, not %r" % (", ".join(DEVICES), dev)
        cmd = [sys.executable, os.path.join(self.emu_dir, dev + ".py")] + words[1:]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "slave":
            self.stop_emu()
            return "err start: the emulator said %r" % " ".join(first)
        # The emulator keeps the slave open itself; this is the cable's end.
        self.pty = os.open(first[1], os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.pty)
        self.log("started %s on %s" % (" ".join(cmd[1:]), first[1]))
        return "ok slave %s" % first[1]

    def command(self, line):
        words = line.split()
        if not words:
            return None
        if words[0] == "start":
            return self.start_emu(words[1:])
        if words[0] == "stop":
            self.stop_emu()
            return "ok"
        if self.proc is None or self.proc.poll() is not None:
            return "err no emulator running"
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ans = self.proc.stdout.readline().rstrip("\n")
        if words[0] == "vanish":
            # The device's end is gone: so is the cable's.
            if self.pty >= 0:
                os.close(self.pty)
                self.pty = -1
        return ans or "err the emulator did not answer"

    def on_ctl(self, data):
        self.ctl_buf += data.replace(b"\r", b"\n")
        while b"\n" in self.ctl_buf:
            line, self.ctl_buf = self.ctl_buf.split(b"\n", 1)
            line = line.decode("ascii", "replace").strip()
            ans = self.command(line)
            if ans is not None:
                self.log("%s -> %s" % (line, ans[:120]))
                self.ctl.sendall(ans.encode() + b"\n")

    def run(self):
        ppid = os.getppid()
        while True:
            fds = [self.data, self.ctl] + ([self.pty] if self.pty >= 0 else [])
            ready, _, _ = select.select(fds, [], [], 1.0)
            if os.getppid() != ppid:
                return
            for f in ready:
                if f is self.data:
                    b = self.data.recv(4096)
                    if not b:
                        return
                    if self.pty >= 0:
                        os.write(self.pty, b)
                elif f is self.ctl:
                    b = self.ctl.recv(4096)
                    if not b:
                        return
                    self.on_ctl(b)
                elif f == self.pty:
                    try:
                        b = os.read(self.pty, 4096)
                    except OSError:
                        b = b""
                    if not b:
                        # the emulator vanished: the cable is unplugged
                        os.close(self.pty)
                        self.pty = -1
                        continue
                    self.data.sendall(b)


def listen(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    data_path, ctl_path, emu_dir, ready = argv
    ls_data, ls_ctl = listen(data_path), listen(ctl_path)
    with open(ready, "w") as f:
        f.write("%d\n" % os.getpid())
    b = Bridge(emu_dir)
    # QEMU connects both at start; give up if it never does.
    for ls in (ls_data, ls_ctl):
        ls.settimeout(120)
    try:
        b.data, _ = ls_data.accept()
        b.ctl, _ = ls_ctl.accept()
    except socket.timeout:
        b.log("QEMU did not connect within 120 s")
        return 1
    b.log("QEMU connected")
    try:
        b.run()
    finally:
        b.stop_emu()
        for p in (data_path, ctl_path):
            try:
                os.unlink(p)
            except OSError:
                pass
    b.log("QEMU closed its end: done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
