#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shared part of the stimulator emulators (magstim.py, magventure.py).

A device emulator owns one openpty pair. A client (rpmsd's serial plugins,
a test) opens the slave path, or the symlink given as `link` (standing in for
/dev/ttyUSB0), and sets termios exactly as for the real device. The baud rate
a client sets is accepted but a pty does not enforce it: the emulator paces
itself at its configured baud, 10 bits a byte (8N1), in both directions:
 - a command counts as received when its last byte would have arrived on the
   wire (read time, or the end of the previous command, plus 10 bits a byte);
 - each reply byte is written when it would have finished on the wire, so a
   24-byte Magstim reply takes 25 ms at 9600 baud, as on a real line.
Time is the wall clock (time.monotonic); there is no virtual clock.

In-process use (tests):

    emu = magstim.Magstim(link="/tmp/x/ttyUSB0", model="rapid2")
    path = emu.start()            # the slave path
    emu.drop_replies(2)           # knobs: methods and attributes, thread-safe
    emu.ttl_pulse()               # the trigger line rose
    emu.wait_for(lambda: emu.state()["armed"], 5.0)
    emu.stop()

Command line: `python3 tests/emu/magstim.py --link PATH [...]` prints the slave
path on its first stdout line (`slave /dev/pts/N`), then reads one control
command a line on stdin and answers each with one line that starts with `ok`
or `err` (see CONTROL_HELP), until SIGTERM/SIGINT or `quit`.

Fault knobs common to both devices (methods, or the `fault` control command):
  drop_replies(n)            the next n replies are not sent
  corrupt_replies(n, how)    the next n replies are sent with their checksum/CRC
                             byte flipped (how="check") or one payload byte
                             flipped (how="byte"), which also breaks the check
  truncate_replies(n)        the next n replies are cut to their first half
  reply_delay_s = x          every reply waits x s more before it starts
  inject(data)               unsolicited bytes (garbage, a partial frame) now
  silent = True              the device neither handles nor answers anything
                             (bytes received are logged as "ignored")
  vanish()                   the master closes and the link is removed, like
                             an unplugged USB adapter: the client's read gets
                             EOF or EIO

The log (emu.log, a list; emu.log_lines() as text): one dict per event,
  {"t": monotonic s, "kind": KIND, "data": bytes or None, "info": {...}}
  kind: "rx" a complete command (t: its end on the wire); "rx_bad" a command
  whose checksum/CRC was wrong; "garbage" bytes discarded while framing;
  "ignored" bytes received while silent; "tx" a reply or unsolicited frame
  (t: its last byte written; info.unsolicited true for frames the device sent
  by itself); "tx_dropped" a reply the drop fault swallowed; "inject" bytes
  injected; "pulse" a delivered pulse (info: source, intensity, ...);
  "pulse_dropped" a trigger the device did not deliver (info.reason);
  "event" a change the device made by itself (info.what: remote_lost,
  self_disarm, overtemp, ...); "vanish".
emu.pulses is the list of "pulse" and "pulse_dropped" entries alone.
"""

import json
import os
import pty
import select
import signal
import sys
import threading
import time
import tty

CONTROL_HELP = """control commands (one a line on stdin; answer: one line, ok ... / err ...):
  state                     the device state, one JSON object
  ttl                       the trigger line rose (ttl_pulse)
  pulses                    every pulse and dropped trigger, one JSON array
  log                       the frame log, one JSON array
  fault drop N              drop the next N replies
  fault corrupt N [check|byte]  corrupt the next N replies
  fault truncate N          cut the next N replies in half
  fault delay SECONDS       delay every reply
  fault silent on|off       stop/resume handling and answering
  inject HEX                send these bytes now (e.g. inject fe0203)
  vanish                    close the master, remove the link
  set KNOB VALUE            set a knob attribute (JSON value, e.g. set ready_delay_s 0.2)
  temp CELSIUS              set the coil temperature
  quit                      stop and exit"""


def _hex(data):
    return data.hex(" ") if data is not None else None


class Emulator:
    """Base class: the pty pair, threads, pacing, the log and common faults.
    A device subclass sets BAUD, implements _on_bytes(data, t_end) (framing
    and commands; called with self.lock held), _tick(now) (time-driven state,
    lock held), _fire(source, now) -> (delivered, info) and state_dict(), and
    may implement _corrupt_check(frame) for the checksum flip."""

    BAUD = 9600
    TICK_S = 0.01
    # Knobs that `set` on the control channel may change (a subclass adds its own).
    KNOBS = ("reply_delay_s", "silent")

    def __init__(self, link=None, baud=None):
        self.link = link
        self.baud = baud or self.BAUD
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.log = []
        self.pulses = []
        self.slave_path = None
        self.reply_delay_s = 0.0
        self.silent = False
        self._drop = 0
        self._corrupt = 0
        self._corrupt_how = "check"
        self._truncate = 0
        self._master = -1
        self._slave = -1
        self._wake_r = self._wake_w = -1
        self._running = False
        self._vanished = False
        self._rx_end = 0.0     # when the last received byte ended on the wire
        self._tx_free = 0.0    # when the transmit line is free again
        self._txq = []         # (not_before, bytes, info) waiting to be sent
        self._reader = None
        self._writer = None

    # ---- life cycle --------------------------------------------------------

    def start(self):
        """Open the pty pair, make the link, start the threads; return the
        slave path."""
        self._master, self._slave = pty.openpty()
        # Raw both ways; the emulator keeps the slave open itself so that the
        # master never sees a hang-up while no client has the port open.
        tty.setraw(self._slave)
        self.slave_path = os.ttyname(self._slave)
        if self.link:
            try:
                os.unlink(self.link)
            except FileNotFoundError:
                pass
            os.symlink(self.slave_path, self.link)
        self._wake_r, self._wake_w = os.pipe()
        self._running = True
        self._reader = threading.Thread(target=self._read_loop, name="emu-rx", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="emu-tx", daemon=True)
        self._reader.start()
        self._writer.start()
        return self.slave_path

    def stop(self):
        """Stop the threads, close the pty, remove the link. Idempotent."""
        self._shutdown(vanish=False)

    def vanish(self):
        """Like an unplugged USB adapter: the master closes, the link goes;
        the client's reads get EOF or EIO and its writes EIO."""
        self._shutdown(vanish=True)

    def _shutdown(self, vanish):
        with self.lock:
            if not self._running:
                return
            self._running = False
            self._vanished = vanish
            if vanish:
                self._log("vanish", None, {})
            self.cond.notify_all()
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        me = threading.current_thread()
        for th in (self._reader, self._writer):
            if th is not None and th is not me:
                th.join(5.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = self._wake_r = self._wake_w = -1
        if self.link:
            try:
                if os.path.islink(self.link):
                    os.unlink(self.link)
            except OSError:
                pass

    @property
    def running(self):
        return self._running

    # ---- knobs ---------------------------------------------------------------

    def drop_replies(self, n):
        """The next n replies are not sent."""
        with self.lock:
            self._drop = int(n)

    def corrupt_replies(self, n, how="check"):
        """The next n replies go out with their check byte flipped ("check")
        or their second byte flipped ("byte")."""
        if how not in ("check", "byte"):
            raise ValueError("corrupt: how is check or byte, not %r" % how)
        with self.lock:
            self._corrupt = int(n)
            self._corrupt_how = how

    def truncate_replies(self, n):
        """The next n replies are cut to their first half (a partial frame)."""
        with self.lock:
            self._truncate = int(n)

    def inject(self, data):
        """Send unsolicited bytes now (paced like any other output)."""
        with self.lock:
            self._log("inject", bytes(data), {})
            self._queue(bytes(data), time.monotonic(), {"inject": True}, raw=True)

    def set_knob(self, name, value):
        """Set a knob attribute by name (the control channel's `set`)."""
        if name not in self.KNOBS:
            raise KeyError("no knob %r (knobs: %s)" % (name, ", ".join(self.KNOBS)))
        with self.lock:
            setattr(self, name, value)

    def ttl_pulse(self):
        """The trigger line rose: fire iff the device is armed and ready.
        Returns the pulse's log entry (kind "pulse" or "pulse_dropped")."""
        with self.lock:
            now = time.monotonic()
            self._tick(now)
            return self._pulse("ttl", now)

    def state(self):
        """A snapshot of the device state (a dict), brought up to now."""
        with self.lock:
            self._tick(time.monotonic())
            return self.state_dict()

    def wait_for(self, pred, timeout):
        """Poll pred() (with the state brought up to date) until it is true
        or timeout s pass; return its last value."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                self._tick(time.monotonic())
                v = pred()
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(0.005)

    def entries(self, kind):
        with self.lock:
            return [e for e in self.log if e["kind"] == kind]

    def log_lines(self):
        """The log as text, one line an entry: T KIND HEX INFO-JSON."""
        with self.lock:
            return ["%.6f %s %s %s" % (e["t"], e["kind"], _hex(e["data"]) or "-",
                                       json.dumps(e["info"], sort_keys=True))
                    for e in self.log]

    # ---- for subclasses (lock held) ----------------------------------------

    def _log(self, kind, data, info, t=None):
        e = {"t": time.monotonic() if t is None else t, "kind": kind,
             "data": data, "info": info}
        self.log.append(e)
        if kind in ("pulse", "pulse_dropped"):
            self.pulses.append(e)
        self.cond.notify_all()
        return e

    def _pulse(self, source, now):
        delivered, info = self._fire(source, now)
        info = dict(info, source=source)
        return self._log("pulse" if delivered else "pulse_dropped", None, info, now)

    def _reply(self, frame, t_rx_end, unsolicited=False):
        """Queue a reply (or an unsolicited frame), applying the faults."""
        info = {"unsolicited": True} if unsolicited else {}
        if self._drop > 0:
            self._drop -= 1
            self._log("tx_dropped", frame, info)
            return
        if self._corrupt > 0:
            self._corrupt -= 1
            frame = self._corrupt_frame(frame, self._corrupt_how)
            info["corrupted"] = self._corrupt_how
        if self._truncate > 0:
            self._truncate -= 1
            frame = frame[:max(1, len(frame) // 2)]
            info["truncated"] = True
        self._queue(frame, t_rx_end + self.reply_delay_s, info)

    def _corrupt_frame(self, frame, how):
        b = bytearray(frame)
        i = self._check_index(frame) if how == "check" else min(1, len(b) - 1)
        b[i] ^= 0x5A
        return bytes(b)

    def _check_index(self, frame):
        return len(frame) - 1

    def _queue(self, data, not_before, info, raw=False):
        self._txq.append((not_before, data, info, raw))
        self._txq.sort(key=lambda x: x[0])
        self.cond.notify_all()

    # ---- threads -------------------------------------------------------------

    def _read_loop(self):
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        byte_s = 10.0 / self.baud
        while self._running:
            try:
                ready = poller.poll(self.TICK_S * 1000)
            except InterruptedError:
                continue
            if not self._running:
                break
            data = b""
            for fd, ev in ready:
                if fd == self._master and ev & select.POLLIN:
                    try:
                        data = os.read(self._master, 4096)
                    except OSError:
                        data = b""
            with self.lock:
                if not self._running:
                    break
                now = time.monotonic()
                if data:
                    self._rx_end = max(self._rx_end, now) + len(data) * byte_s
                    self._tick(now)
                    if self.silent:
                        self._log("ignored", data, {}, self._rx_end)
                    else:
                        self._on_bytes(data, self._rx_end)
                else:
                    self._tick(now)

    def _write_loop(self):
        byte_s = 10.0 / self.baud
        while True:
            with self.lock:
                while self._running and (not self._txq or
                                         self._txq[0][0] > time.monotonic()):
                    wait = self._txq[0][0] - time.monotonic() if self._txq else None
                    self.cond.wait(wait)
                if not self._running:
                    return
                not_before, data, info, raw = self._txq.pop(0)
            t = max(self._tx_free, not_before, time.monotonic())
            for i in range(len(data)):
                t += byte_s
                d = t - time.monotonic()
                if d > 0:
                    time.sleep(d)
                if not self._running:
                    return
                try:
                    os.write(self._master, data[i:i + 1])
                except OSError:
                    return
            with self.lock:
                self._tx_free = t
                if not raw:
                    self._log("tx", data, info, time.monotonic())

    # ---- to implement ----------------------------------------------------------

    def _on_bytes(self, data, t_end):
        raise NotImplementedError

    def _tick(self, now):
        pass

    def _fire(self, source, now):
        raise NotImplementedError

    def state_dict(self):
        raise NotImplementedError


class Thermal:
    """Coil temperature: each pulse adds rise_per_pulse_c * (intensity/100)^2;
    between pulses it relaxes exponentially toward ambient_c with time
    constant tau_s."""

    def __init__(self, ambient_c=25.0, rise_per_pulse_c=0.05, tau_s=300.0):
        self.ambient_c = ambient_c
        self.rise_per_pulse_c = rise_per_pulse_c
        self.tau_s = tau_s
        self.temp_c = ambient_c
        self._t = time.monotonic()

    def advance(self, now):
        dt = now - self._t
        if dt > 0:
            k = pow(2.718281828459045, -dt / self.tau_s) if self.tau_s > 0 else 0.0
            self.temp_c = self.ambient_c + (self.temp_c - self.ambient_c) * k
            self._t = now

    def pulse(self, intensity, now):
        self.advance(now)
        self.temp_c += self.rise_per_pulse_c * (intensity / 100.0) ** 2

    def set(self, temp_c, now):
        self.advance(now)
        self.temp_c = float(temp_c)


def _control(emu, line):
    """One control command -> one answer line."""
    w = line.split()
    if not w:
        return None
    cmd, args = w[0], w[1:]
    try:
        if cmd == "state":
            return "ok " + json.dumps(emu.state(), sort_keys=True)
        if cmd == "ttl":
            e = emu.ttl_pulse()
            return "ok " + json.dumps({"kind": e["kind"], **e["info"]}, sort_keys=True)
        if cmd == "pulses":
            with emu.lock:
                return "ok " + json.dumps([{"t": e["t"], "kind": e["kind"], **e["info"]}
                                           for e in emu.pulses])
        if cmd == "log":
            with emu.lock:
                return "ok " + json.dumps([{"t": e["t"], "kind": e["kind"],
                                            "data": _hex(e["data"]), "info": e["info"]}
                                           for e in emu.log])
        if cmd == "fault":
            kind = args[0]
            if kind == "drop":
                emu.drop_replies(int(args[1]))
            elif kind == "corrupt":
                emu.corrupt_replies(int(args[1]), args[2] if len(args) > 2 else "check")
            elif kind == "truncate":
                emu.truncate_replies(int(args[1]))
            elif kind == "delay":
                emu.set_knob("reply_delay_s", float(args[1]))
            elif kind == "silent":
                emu.set_knob("silent", args[1] in ("on", "1", "true"))
            else:
                return "err fault: unknown kind %r" % kind
            return "ok"
        if cmd == "inject":
            emu.inject(bytes.fromhex("".join(args)))
            return "ok"
        if cmd == "vanish":
            emu.vanish()
            return "ok"
        if cmd == "temp":
            emu.set_temperature(float(args[0]))
            return "ok"
        if cmd == "set":
            emu.set_knob(args[0], json.loads(" ".join(args[1:])))
            return "ok"
        if cmd == "help":
            return "ok " + CONTROL_HELP.replace("\n", " | ")
        if cmd == "quit":
            return "quit"
        return "err unknown command %r (try help)" % cmd
    except (IndexError, ValueError, KeyError, TypeError) as e:
        return "err %s: %s" % (cmd, e)


def main(emu, argv_rest=None):
    """Run emu as a program: print the slave path, serve the control channel
    on stdin until SIGTERM/SIGINT or `quit`."""
    done = threading.Event()

    def on_signal(_sig, _frm):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    path = emu.start()
    print("slave %s" % path, flush=True)

    def serve():
        for line in sys.stdin:
            ans = _control(emu, line)
            if ans is None:
                continue
            if ans == "quit":
                print("ok", flush=True)
                done.set()
                return
            print(ans, flush=True)
        # stdin closed: keep running until a signal

    threading.Thread(target=serve, name="emu-ctl", daemon=True).start()
    while not done.wait(0.2):
        pass
    emu.stop()
    return 0
