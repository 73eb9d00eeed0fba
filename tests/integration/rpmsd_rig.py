# SPDX-License-Identifier: MIT
"""Helpers for the integration tests: run the real rpmsd binary with a
config, subscribe to its event stream with a real ZeroMQ SUB socket, and
collect everything it publishes until it exits."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import zmq

BUILD = os.environ.get("RPMSD_BUILD_ROOT", "")
SOURCE = os.environ.get("RPMSD_SOURCE_ROOT", "")
RPMSD = os.path.join(BUILD, "daemon", "rpmsd")
RPMSCTL = os.path.join(BUILD, "tools", "rpmsctl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(text, directory):
    fd, path = tempfile.mkstemp(suffix=".conf", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def state_dir():
    """A fresh, empty state directory (pulse ledger) for one run."""
    d = tempfile.mkdtemp(prefix="rpmsd-state-")
    atexit.register(shutil.rmtree, d, True)
    return d


def control_endpoint():
    """A control endpoint of its own for one run: an ipc socket in a fresh
    directory (parallel runs never meet)."""
    d = tempfile.mkdtemp(prefix="rpmsd-ctl-")
    atexit.register(shutil.rmtree, d, True)
    return "ipc://%s/control" % d


def section_value(config_text, section, key):
    """The value of section.key in a config text, or None."""
    current = None
    for line in config_text.splitlines():
        s = line.strip()
        if s.startswith("["):
            current = s.strip("[]")
        elif current == section and "=" in s and not s.startswith(("#", ";")):
            k, v = s.split("=", 1)
            if k.strip() == key:
                return v.strip()
    return None


def demo_config(endpoint, extra=None, pulse_log=None, name="demo.conf"):
    """The demo configuration (or another of config/, @name) with the
    endpoint (and optionally more keys) replaced, and the recording path
    made absolute."""
    lines = []
    section = None
    with open(os.path.join(SOURCE, "config", name)) as f:
        for raw in f:
            line = raw.rstrip("\n")
            s = line.strip()
            if s.startswith("["):
                section = s.strip("[]")
            elif "=" in s and not s.startswith(("#", ";")):
                key = s.split("=", 1)[0].strip()
                if section == "publish" and key == "endpoint":
                    line = "endpoint = " + endpoint
                elif section == "control" and key == "endpoint" and not (
                        extra and ("control", "endpoint") in extra):
                    line = "endpoint = " + control_endpoint()
                elif section == "daemon" and key == "state_dir" and not (
                        extra and ("daemon", "state_dir") in extra):
                    line = "state_dir = " + state_dir()
                elif section == "source" and key == "file":
                    val = s.split("=", 1)[1].strip()
                    line = "file = " + os.path.join(SOURCE, "config", val)
                elif extra and (section, key) in extra:
                    line = "%s = %s" % (key, extra.pop((section, key)))
            lines.append(line)
    if extra:
        for (sec, key), val in extra.items():
            lines.append("[%s]" % sec)
            lines.append("%s = %s" % (key, val))
    if pulse_log:
        lines.append("[coil.sim]")
        lines.append("pulse_log = " + pulse_log)
    return "\n".join(lines) + "\n"


class Run:
    """One daemon run with a subscriber. messages: list of (topic, body dict,
    raw body str) in arrival order."""

    def __init__(self, config_text, args=("--fast",), timeout=120, stop_when=None,
                 stop_signal=signal.SIGTERM, on_start=None, env=None):
        import json
        self.tmp = tempfile.mkdtemp(prefix="rpmsd-it-")
        atexit.register(shutil.rmtree, self.tmp, True)
        self.config = write_config(config_text, self.tmp)
        self.messages = []
        ctx = zmq.Context.instance()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"rpms.")
        endpoint = section_value(config_text, "publish", "endpoint")
        self.control = section_value(config_text, "control", "endpoint")
        # env: variables for the daemon alone (None removes one)
        penv = None
        if env:
            penv = dict(os.environ)
            for k, v in env.items():
                if v is None:
                    penv.pop(k, None)
                else:
                    penv[k] = v
        proc = subprocess.Popen(
            [RPMSD, "--config", self.config, "--wait-subscriber=20"] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=penv)
        self.pid = proc.pid
        if on_start is not None:
            on_start(proc.pid)   # e.g. to signal or watch the daemon from a test
        # Connect after the daemon bound; ZeroMQ reconnects until it has.
        sub.connect(endpoint)
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        exited_at = None
        started = time.monotonic()
        stopped = False
        while time.monotonic() < deadline:
            if stop_when is not None and not stopped and stop_when(self.messages):
                proc.send_signal(stop_signal)
                stopped = True
                self.stopped_at = time.monotonic() - started
            got = poller.poll(100)
            if got:
                topic, body = sub.recv_multipart()[:2]
                raw = body.decode()
                self.messages.append((topic.decode(), json.loads(raw), raw))
            if proc.poll() is not None:
                # Drain what is still in flight: until 0.5 s without a
                # message, and never past 5 s. The SUB socket reconnects to
                # the port after the daemon is gone, and another daemon
                # (a concurrent test) that binds the same port later would
                # otherwise keep this loop busy until the deadline.
                now = time.monotonic()
                if exited_at is None:
                    exited_at = now
                    quiet_since = None if got else now
                elif got:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = now
                if (quiet_since is not None and now - quiet_since > 0.5) or \
                        now - exited_at > 5.0:
                    break
        else:
            proc.kill()
            raise AssertionError("rpmsd did not finish within %d s" % timeout)
        self.stdout, self.stderr = proc.communicate()
        self.returncode = proc.returncode
        sub.close(linger=0)

    def of(self, topic, **match):
        out = []
        for t, body, _ in self.messages:
            if t != topic:
                continue
            if all(body.get(k) == v for k, v in match.items()):
                out.append(body)
        return out


def quiet_recording(path, rate, seconds, channels=2, seed=43, digits=2):
    """Quiet rest EMG (Gaussian, 2 µV RMS, seeded) as CSV columns c0, c1, ...
    at rate Hz, written to path once (a later call finds it there)."""
    import random
    if not os.path.exists(path):
        rng = random.Random(seed)
        with open(path + ".tmp", "w") as f:
            f.write(",".join("c%d" % c for c in range(channels)) + "\n")
            for _ in range(seconds * rate):
                f.write(",".join("%.*f" % (digits, rng.gauss(0.0, 2.0))
                                 for _ in range(channels)) + "\n")
        os.rename(path + ".tmp", path)
    return path


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class LiveDaemon:
    """A running rpmsd (config_text written into directory) that a real
    subscriber (rpms_subscriber.Subscriber) has heard from the start: every
    message (topic, body) in arrival order. It is up once it has said it
    calibrated; its stdout and stderr are files in directory."""

    def __init__(self, config_text, directory, calibration_s=60):
        from rpms_subscriber import Subscriber
        self.dir = directory
        self.control = section_value(config_text, "control", "endpoint")
        self.publish = section_value(config_text, "publish", "endpoint")
        self.config = write_config(config_text, directory)
        self.sub = Subscriber(self.publish)
        self.done = False
        self.err = open(os.path.join(directory, "stderr"), "w+")
        with open(os.path.join(directory, "stdout"), "w") as out:
            self.proc = subprocess.Popen([RPMSD, "--config", self.config,
                                          "--wait-subscriber=30"],
                                         stdout=out, stderr=self.err, text=True)
        self.wait_for(lambda: self.of("rpms.state", state="calibrated"), calibration_s,
                      "calibration")

    def of(self, topic, since=0, **match):
        """Bodies of topic among the messages from index since on."""
        return self.sub.of(topic, since, **match)

    def mark(self):
        """The number of messages so far: a since for of()."""
        return self.sub.count()

    def wait_for(self, pred, timeout, what):
        """pred()'s first true value within timeout seconds; an error naming
        what when the time runs out or rpmsd exits first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = pred()
            if got:
                return got
            check(self.proc.poll() is None, "rpmsd exited (%s) while waiting for %s: %s"
                  % (self.proc.returncode, what, self.stderr()[-2000:]))
            time.sleep(0.02)
        raise AssertionError("no %s within %d s" % (what, timeout))

    def stderr(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        """SIGTERM; once it exited and every message it sent has arrived:
        exit status 0 and no sanitizer report checked; its stderr."""
        if self.done:
            return ""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.done = True
        self.sub.drain_and_close()
        err = self.stderr()
        check(self.proc.returncode == 0, "rpmsd exited %d: %s" % (self.proc.returncode,
                                                                 err[-3000:]))
        check("runtime error" not in err and "Sanitizer" not in err, err[-3000:])
        return err


class Skip(Exception):
    """Raised by a test whose precondition is missing here (e.g. root). It is
    not a pass: run_tests counts it apart and reports the file to meson as
    skipped (exit 77) unless something failed."""


def run_tests(tests):
    """Run test functions; print a closing 'N passed, N failed' line.
    RPMSD_TESTS=name,name (substrings) runs only those, for development."""
    passed = failed = skipped = 0
    only = [x for x in os.environ.get("RPMSD_TESTS", "").split(",") if x]
    if only:
        tests = [fn for fn in tests if any(x in fn.__name__ for x in only)]
        check(tests, "RPMSD_TESTS=%s matches no test" % ",".join(only))
    for fn in tests:
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (fn.__name__, e), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure kind
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, e), flush=True)
        else:
            passed += 1
            print("ok   %s" % fn.__name__, flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 77 if skipped else 0)
