#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The daemon's service side, through the real binary on the real clock
(docs/service.md):

 - sd_notify: the daemon talks to a real AF_UNIX datagram socket named by
   $NOTIFY_SOCKET, as systemd's is: READY=1 only once EMG flows, STATUS=
   lines, WATCHDOG=1 while both RT threads turn, STOPPING=1;
 - the supervisor: the test hooks hang the acquire thread (SIGUSR2) or the
   stim thread (SIGUSR1); the coil is disarmed, the fault published, the
   watchdog no longer fed, arming refused; a hung stim thread's coil is
   disarmed through the plugin's force_disarm;
 - SIGHUP: protocol keys change live through the checks of "set", keys
   that need a restart are named, a broken file changes nothing;
 - daemon.require_rt and the CPU keys refuse to start when not granted.
The systemd side (a real systemd as PID 1 and its watchdog) runs in the
VM rig (tests/rig/systemd)."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402


class NotifySocket:
    """What systemd listens on: datagrams of KEY=VALUE lines, timestamped."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rpmsd-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.msgs = []      # (monotonic time, {key: value})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            kv = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.msgs.append((time.monotonic(), kv))

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()

    def times(self, key, value=None):
        return [t for t, kv in self.msgs if key in kv and (value is None or kv[key] == value)]

    def values(self, key):
        return [kv[key] for _, kv in self.msgs if key in kv]

    def env(self, watchdog_usec=None):
        """The daemon's environment as systemd would set it."""
        e = {"NOTIFY_SOCKET": self.path, "WATCHDOG_PID": None}
        if watchdog_usec:
            e["WATCHDOG_USEC"] = str(watchdog_usec)
        return e


def endpoint():
    return "tcp://127.0.0.1:%d" % rig.free_port()


def open_loop(extra=None):
    keys = {("stim", "mode"): "open_loop", ("stim", "protocol"): "onoff",
            ("stim", "on_ms"): "1000", ("stim", "off_ms"): "600",
            ("safety", "max_train_pulses"): "20", ("stim", "open_loop_pulses"): "1000",
            ("daemon", "test_hooks"): "true"}
    keys.update(extra or {})
    return rig.demo_config(endpoint(), extra=keys)


def with_notify(fn):
    """Run fn(notify) with a notify socket, closed afterwards."""
    n = NotifySocket()
    try:
        return fn(n)
    finally:
        n.close()


def hang_run(notify, signo, stop_after_s=2.0):
    """An open-loop run; after 30 pulses (1.5 s) the test hook signo hangs a thread."""
    state = {}

    def step(msgs):
        n = sum(1 for t, _, _ in msgs if t == "rpms.stim")
        if "hung_at" not in state and n >= 30 and "pid" in state:
            state["hung_at"] = time.monotonic()
            os.kill(state["pid"], signo)
        return "hung_at" in state and time.monotonic() - state["hung_at"] > stop_after_s

    r = rig.Run(open_loop(), args=(), timeout=60, stop_when=step,
                on_start=lambda pid: state.update(pid=pid),
                env=notify.env(watchdog_usec=1000000))
    check("hung_at" in state, "never reached 30 pulses: %s" % r.stderr[-2000:])
    return r, state["hung_at"]


def hung_checks(r, notify, hung_at, thread):
    faults = [x for x in r.of("rpms.state")
              if x["state"] == "fault" and x["reason"] == "%s thread hung: coil disarmed" % thread]
    check(len(faults) == 1, "no (or more than one) supervisor fault for the %s thread: %r"
          % (thread, r.of("rpms.state")))
    check("supervisor: the %s thread has shown no progress" % thread in r.stderr,
          "no supervisor log line: %s" % r.stderr[-2000:])
    # READY once, after EMG flowed, before the hang
    ready = notify.times("READY", "1")
    check(len(ready) == 1 and ready[0] < hung_at, "READY=1 times %r" % ready)
    # fed before the hang (1 s watchdog: every 250 ms), never after the limit
    beats = notify.times("WATCHDOG", "1")
    before = [t for t in beats if t < hung_at]
    check(len(before) >= 3, "only %d WATCHDOG=1 before the hang" % len(before))
    late = [t - hung_at for t in beats if t > hung_at + 0.5 + 0.3]
    check(not late, "WATCHDOG=1 still sent %r s after the %s thread hung" % (late, thread))
    status = notify.values("STATUS")
    check(any(s.startswith("FAULT: the %s thread is hung" % thread) for s in status),
          "STATUS lines %r" % status)
    check(notify.times("STOPPING", "1"), "no STOPPING=1")
    # no pulse after the fault was published
    t_fault = faults[0]["t_session_s"]
    check(all(p["t_actual_s"] <= t_fault for p in r.of("rpms.stim")),
          "a pulse after the hang was found")
    return faults[0]


def test_ready_watchdog_and_acquire_hang():
    def body(notify):
        r, hung_at = hang_run(notify, signal.SIGUSR2)
        hung_checks(r, notify, hung_at, "acquire")
        # the stim thread's own acquisition watchdog disarmed first
        check(any(x["state"] == "disarmed" or x["state"] == "fault" and x.get("code") == -110
                  for x in r.of("rpms.state")), "never disarmed: %r" % r.of("rpms.state"))
        check("test hook: User defined signal 2: the acquire thread hangs now" in r.stderr,
              r.stderr[-1500:])
    with_notify(body)


def test_stim_hang_force_disarm():
    def body(notify):
        r, hung_at = hang_run(notify, signal.SIGUSR1)
        hung_checks(r, notify, hung_at, "stim")
        # the supervisor reached the coil itself: the stim thread could not
        check("force_disarm called 1 time(s)" in r.stderr,
              "the sim coil saw no force_disarm: %s" % r.stderr[-2000:])
    with_notify(body)


def test_hooks_off_by_default():
    state = {}

    def step(msgs):
        n = sum(1 for t, _, _ in msgs if t == "rpms.stim")
        if "sent" not in state and n >= 3:
            os.kill(state["pid"], signal.SIGUSR2)
            state["sent"] = n
        return "sent" in state and n >= state["sent"] + 10

    r = rig.Run(open_loop({("daemon", "test_hooks"): "false"}), args=(), timeout=60,
                stop_when=step, on_start=lambda pid: state.update(pid=pid))
    check("ignored (daemon.test_hooks is off)" in r.stderr, r.stderr[-1500:])
    check(not [x for x in r.of("rpms.state") if x["state"] == "fault"],
          "a fault: %r" % r.of("rpms.state"))


def control(ep, cmd, params=None):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    req = {"cmd": cmd}
    if params:
        req["params"] = params
    s.send(json.dumps(req).encode())
    check(s.poll(5000), "no reply to %s" % cmd)
    reply = json.loads(s.recv())
    s.close()
    return reply


def test_sighup_reload():
    text = rig.demo_config(endpoint(), extra={("daemon", "arm_on_start"): "false"})
    state = {}

    def rewrite(cfg_path, replace):
        with open(cfg_path) as f:
            lines = f.read().splitlines()
        section = None
        out = []
        for line in lines:
            s = line.strip()
            if s.startswith("["):
                section = s.strip("[]")
            elif "=" in s and (section, s.split("=", 1)[0].strip()) in replace:
                line = "%s = %s" % (s.split("=", 1)[0].strip(),
                                    replace[(section, s.split("=", 1)[0].strip())])
            out.append(line)
        with open(cfg_path, "w") as f:
            f.write("\n".join(out) + "\n")

    def step(msgs):
        if "pid" not in state or not any(t == "rpms.heartbeat" for t, _, _ in msgs):
            return False
        if "phase" not in state:
            state["cfg"] = run_cfg(state["pid"])
            # live: intensity; needs a restart: the block size
            rewrite(state["cfg"], {("stim", "intensity_pct"): "37",
                                   ("source", "block_frames"): "16"})
            os.kill(state["pid"], signal.SIGHUP)
            state["phase"] = 1
            state["t"] = time.monotonic()
        elif state["phase"] == 1 and time.monotonic() - state["t"] > 0.7:
            state["status1"] = control(state["ctl"], "status")
            # beyond the safety cap: refused, nothing changes
            rewrite(state["cfg"], {("stim", "intensity_pct"): "99"})
            os.kill(state["pid"], signal.SIGHUP)
            state["phase"] = 2
            state["t"] = time.monotonic()
        elif state["phase"] == 2 and time.monotonic() - state["t"] > 0.7:
            # a broken file: nothing changes
            with open(state["cfg"], "a") as f:
                f.write("[stim]\nno_such_key = 1\n")
            os.kill(state["pid"], signal.SIGHUP)
            state["phase"] = 3
            state["t"] = time.monotonic()
        elif state["phase"] == 3 and time.monotonic() - state["t"] > 0.7:
            state["status3"] = control(state["ctl"], "status")
            return True
        return False

    def started(pid):
        # the command line is read later: right after fork it is still python's
        state.update(pid=pid, ctl=rig.section_value(text, "control", "endpoint"))

    n = NotifySocket()
    try:
        run = rig.Run(text, args=(), timeout=60, stop_when=step, on_start=started,
                      env=n.env())
    finally:
        n.close()
    err = run.stderr
    check("SIGHUP: protocol changed: stim.intensity_pct=37" in err, err[-3000:])
    check("take effect only after a restart (not applied): source.block_frames" in err,
          err[-3000:])
    # the loader's own rules: the file and line, nothing changed
    check("stim.intensity_pct: 99 exceeds safety.max_intensity_pct" in err and
          ".conf:" in err, err[-3000:])
    check("no_such_key" in err and "nothing changed" in err, err[-3000:])
    check(state["status1"]["result"]["protocol"]["intensity_pct"] == 37,
          "status after reload: %r" % state["status1"])
    check(state["status3"]["result"]["protocol"]["intensity_pct"] == 37,
          "a refused reload changed the protocol: %r" % state["status3"])
    protos = [x for x in run.of("rpms.state") if x["state"] == "protocol_changed"]
    check([x["reason"] for x in protos] == ["reload: intensity_pct"],
          "protocol events %r" % protos)
    check(len(n.times("RELOADING", "1")) == 3, "RELOADING=1 %r" % n.msgs)
    check(len(n.times("READY", "1")) >= 4, "READY=1 after each reload: %r" % n.msgs)


def run_cfg(pid):
    """The --config path of a running daemon, from its command line."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    return argv[argv.index(b"--config") + 1].decode()


def daemon_exit(config_text, prefix=(), run_s=3.0):
    """Start rpmsd (paced); SIGTERM after run_s if it still runs."""
    tmp = tempfile.mkdtemp(prefix="rpmsd-it-")
    cfg = rig.write_config(config_text, tmp)
    p = subprocess.Popen(list(prefix) + [rig.RPMSD, "--config", cfg],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.wait(run_s)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    return p.returncode, err


# No CAP_SYS_NICE/CAP_IPC_LOCK, no RLIMIT_RTPRIO, a small RLIMIT_MEMLOCK:
# a developer's account, made from root with util-linux.
NO_RT = ["prlimit", "--rtprio=0", "--memlock=65536", "--",
         "setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]


def test_require_rt():
    base = {("stim", "mode"): "open_loop", ("stim", "open_loop_pulses"): "3",
            ("stim", "protocol"): "single"}
    # granted nothing, not required: warnings, and it runs to the end
    code, err = daemon_exit(rig.demo_config(endpoint(), extra=dict(base)), NO_RT)
    check(code == 0, "exit %d without RT (not required): %s" % (code, err[-2000:]))
    check("SCHED_FIFO priority" in err and "refused" in err, err[-2000:])
    # (mlockall is not checked: the sanitizers make it a no-op that succeeds)
    check("require_rt is set" not in err, err[-2000:])
    # required: refused at start, exit 1, the key named
    code, err = daemon_exit(rig.demo_config(endpoint(), extra={
        **base, ("daemon", "require_rt"): "true"}), NO_RT)
    check(code == 1, "exit %d with require_rt and no RT: %s" % (code, err[-2000:]))
    check("daemon.require_rt is set: not starting" in err, err[-2000:])


def test_cpu_keys():
    code, err = daemon_exit(rig.demo_config(endpoint(), extra={("daemon", "stim_cpu"): "1000"}))
    check(code == 1, "exit %d: %s" % (code, err[-1500:]))
    check("daemon.stim_cpu = 1000: not a CPU this process may run on" in err, err[-1500:])


if __name__ == "__main__":
    rig.run_tests([
        test_ready_watchdog_and_acquire_hang,
        test_stim_hang_force_disarm,
        test_hooks_off_by_default,
        test_sighup_reload,
        test_require_rt,
        test_cpu_keys,
    ])
