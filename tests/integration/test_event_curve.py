#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The event stream beyond this host (docs/events.md, "CURVE"): the real
rpmsd binds publish.endpoint on an address of this machine other than
loopback, CURVE-encrypted with an allowlist of subscriber keys. A real
pyzmq subscriber with an allowed key gets the events; one with an unknown
key, one with the wrong server key and a plaintext one get nothing, and
the daemon logs each refusal. --check-config refuses a stream bound beyond
loopback without CURVE (FILE:LINE, the key). rpmsctl tail,
docs/examples/client.py and tools/rpms-scope, given the keys, receive the
events.

When the machine has no address but loopback, the stream is bound on
127.0.0.1 with CURVE forced (the rule check is then the only part that
sees a non-loopback address); the test says so.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402
import test_control as tc  # noqa: E402  (base_conf, keygen, rpmsctl: one harness)
import validate_events  # noqa: E402

import zmq  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rpmsd-event-curve-")
PY = "/usr/bin/python3"
SCOPE = os.path.join(rig.SOURCE, "tools", "rpms-scope")
WAIT_S = 60.0       # a sanitizer build on a loaded machine is slow, never stuck


def host_address():
    """An IPv4 address of this machine other than loopback, or None."""
    r = subprocess.run(["ip", "-4", "-o", "addr", "show", "up"], capture_output=True,
                       text=True)
    for m in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/", r.stdout):
        if not m.group(1).startswith("127."):
            return m.group(1)
    return None


ADDR = host_address()
if ADDR is None:
    print("no address but loopback on this machine: the stream is bound on 127.0.0.1 "
          "with CURVE forced", flush=True)
BIND = ADDR or "127.0.0.1"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind((BIND, 0))
        return s.getsockname()[1]


class Keys:
    """A server key pair, an allowed subscriber, an unknown one, the allowlist."""

    def __init__(self, dash=False):
        self.dir = tempfile.mkdtemp(dir=TMP)
        self.server, self.server_pub = tc.keygen(self.dir, "stream.key")
        # a Z85 key begins with '-' once in 85: argparse took it for an option
        while dash and not self.server_pub.startswith("-"):
            os.unlink(self.server)
            self.server, self.server_pub = tc.keygen(self.dir, "stream.key")
        self.good, self.good_pub = tc.keygen(self.dir, "viewer.key")
        self.bad, self.bad_pub = tc.keygen(self.dir, "stranger.key")
        self.allowed = os.path.join(self.dir, "subscribers")
        with open(self.allowed, "w") as f:
            f.write("# who may watch the stream\n%s  lab-viewer\n" % self.good_pub)
        os.chmod(self.allowed, 0o644)


def secret_of(path):
    with open(path) as f:
        return [ln.split()[0] for ln in f if ln.strip() and not ln.startswith("#")][0].encode()


def stream_conf(keys, emg=False):
    conf = tc.base_conf()
    conf["publish"] = {"endpoint": "tcp://%s:%d" % (BIND, free_port()), "heartbeat_s": "0.25",
                       "curve_server_secret_file": keys.server,
                       "curve_allowed_keys": keys.allowed}
    if emg:
        conf["publish"]["emg_stream"] = "true"
    return conf


def subscriber(ctx, endpoint, server_pub=None, secret=None):
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    if secret is not None:
        s.curve_secretkey = secret
        s.curve_publickey = zmq.curve_public(secret)
        s.curve_serverkey = server_pub.encode()
    s.setsockopt(zmq.SUBSCRIBE, b"rpms.")
    s.connect(endpoint)
    return s


class Rpmsd:
    def __init__(self, conf, args=()):
        self.path = tc.write_conf(conf)
        self.log = open(self.path + ".stderr", "w+")
        self.proc = subprocess.Popen([rig.RPMSD, "--config", self.path] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=self.log)

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_log(self, pred, what):
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            if pred(self.stderr()):
                return
            check(self.proc.poll() is None, "rpmsd exited (%s): %s\n%s"
                  % (self.proc.returncode, what, self.stderr()))
            time.sleep(0.05)
        raise AssertionError("%s within %g s\n%s" % (what, WAIT_S, self.stderr()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        check(self.proc.returncode == 0, "rpmsd exit status %d\n%s"
              % (self.proc.returncode, self.stderr()))
        return self.stderr()


def drain(sock, out):
    while sock.poll(0):
        out.append(sock.recv_multipart())


def test_only_allowed_subscribers_get_events():
    keys = Keys()
    conf = stream_conf(keys)
    ep = conf["publish"]["endpoint"]
    ctx = zmq.Context()
    good = subscriber(ctx, ep, keys.server_pub, secret_of(keys.good))
    unknown = subscriber(ctx, ep, keys.server_pub, secret_of(keys.bad))
    wrong_server = subscriber(ctx, ep, zmq.curve_keypair()[0].decode(), secret_of(keys.good))
    plain = subscriber(ctx, ep)
    got = {"good": [], "unknown": [], "wrong_server": [], "plain": []}
    socks = {"good": good, "unknown": unknown, "wrong_server": wrong_server, "plain": plain}
    # --wait-subscriber: the run starts when the allowed subscriber's subscription is in
    d = Rpmsd(conf, ["--wait-subscriber=%d" % WAIT_S])
    try:
        def enough(log):
            for name, s in socks.items():
                drain(s, got[name])
            leaked = {k: len(v) for k, v in got.items() if k != "good" and v}
            check(not leaked, "a refused subscriber got events: %r" % leaked)
            started = any(json.loads(f[1]).get("state") == "started"
                          for f in got["good"] if f[0] == b"rpms.state")
            beats = sum(1 for f in got["good"] if f[0] == b"rpms.heartbeat")
            return (started and beats >= 4 and
                    "its CURVE public key %s is not in publish.curve_allowed_keys"
                    % keys.bad_pub in log and
                    ("does not use CURVE" in log or "hung up during the handshake" in log) and
                    "wrong server public key" in log)
        d.wait_log(enough, "the allowed subscriber's events and every refusal logged")
        time.sleep(0.5)     # anything a refused subscriber could get would be here by now
        for name, s in socks.items():
            drain(s, got[name])
    finally:
        log = d.stop()
        for s in socks.values():
            s.close()
        ctx.term()
    for topic, body, *_ in got["good"]:
        if topic != b"rpms.emg":
            validate_events.check_body(tc.EVENTS, topic.decode(), json.loads(body))
    print("allowed subscriber: %d messages; unknown key %d, wrong server key %d, "
          "plaintext %d" % (len(got["good"]), len(got["unknown"]), len(got["wrong_server"]),
                            len(got["plain"])), flush=True)
    check(not got["unknown"] and not got["wrong_server"] and not got["plain"],
          "a refused subscriber got events: %r" % {k: len(v) for k, v in got.items()})
    check("publish: %s, CURVE: server public key %s, 1 subscriber key(s) allowed"
          % (ep, keys.server_pub) in log, log)
    lines = [ln for ln in log.splitlines() if "publish: refused subscriber" in ln]
    check(any("refused subscriber %s: its CURVE public key %s is not in "
              "publish.curve_allowed_keys" % (BIND, keys.bad_pub) in ln for ln in lines), log)
    peer = r"(%s:\d+|\(address unknown[^)]*\))" % re.escape(BIND)
    check(any(re.search(r"refused subscriber %s: (it does not use CURVE|it hung up during "
                        r"the handshake)" % peer, ln) for ln in lines), log)
    check(any(re.search(r"refused subscriber %s: its CURVE handshake cannot be decrypted: it "
                        r"was given the wrong server public key \(this server's is %s\)"
                        % (peer, re.escape(keys.server_pub)), ln) for ln in lines), log)
    check(keys.good_pub not in log, "the allowed key was refused:\n" + log)


def conf_line(path, section, key):
    """The line number of @section's @key in the config file @path."""
    current = None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if s.startswith("["):
                current = s.strip("[]")
            elif current == section and s.split("=", 1)[0].strip() == key:
                return n
    raise AssertionError("%s.%s not in %s" % (section, key, path))


def check_refused(conf, section, key, message):
    """--check-config and a start refuse @conf with FILE:LINE: @message."""
    path = tc.write_conf(conf)
    want = "%s:%d: %s" % (path, conf_line(path, section, key), message)
    r = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 1 and want in r.stderr, "%r lacks %r" % (r.stderr, want))
    r = subprocess.run([rig.RPMSD, "--config", path, "--fast"], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 1 and want in r.stderr and "running" not in r.stderr,
          "start: %r lacks %r" % (r.stderr, want))


def test_check_refuses_an_open_stream():
    keys = Keys()
    for host in ["0.0.0.0", "[::]", "*"] + ([ADDR] if ADDR else []):
        conf = tc.base_conf()
        ep = "tcp://%s:%d" % (host, tc.rig.free_port())
        conf["publish"] = {"endpoint": ep}
        check_refused(conf, "publish", "endpoint",
                      "publish.endpoint: '%s' can be reached from other hosts" % ep)
    conf = tc.base_conf()
    conf["publish"] = {"endpoint": "tcp://0.0.0.0:5560",
                       "curve_server_secret_file": keys.server}
    check_refused(conf, "publish", "curve_server_secret_file",
                  "publish.curve_allowed_keys: missing (required with "
                  "publish.curve_server_secret_file")
    conf["publish"] = {"endpoint": "tcp://127.0.0.1:5560", "curve_allowed_keys": keys.allowed}
    check_refused(conf, "publish", "curve_allowed_keys",
                  "publish.curve_allowed_keys: set without publish.curve_server_secret_file")
    conf["publish"] = {"endpoint": "inproc://events", "curve_server_secret_file": keys.server,
                       "curve_allowed_keys": keys.allowed}
    check_refused(conf, "publish", "curve_server_secret_file",
                  "publish.curve_server_secret_file: CURVE cannot guard an inproc endpoint")
    # The key files are checked as the control socket's, naming publish's keys.
    bad_list = os.path.join(keys.dir, "bad-list")
    with open(bad_list, "w") as f:
        f.write("%s\nnot-a-key\n" % keys.good_pub)
    os.chmod(bad_list, 0o644)
    conf = stream_conf(keys)
    conf["publish"]["curve_allowed_keys"] = bad_list
    path = tc.write_conf(conf)
    r = subprocess.run([rig.RPMSD, "--check-config", path], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 1 and "publish.curve_allowed_keys: %s:2: not a Z85 public key"
          % bad_list in r.stderr, r.stderr)
    conf = stream_conf(keys)
    os.chmod(keys.server, 0o640)
    try:
        r = subprocess.run([rig.RPMSD, "--check-config", tc.write_conf(conf)],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.chmod(keys.server, 0o600)
    check(r.returncode == 1 and "publish.curve_server_secret_file" in r.stderr and
          "readable by others (mode 0640" in r.stderr, r.stderr)
    # and with CURVE the same address passes; loopback and ipc pass without
    r = subprocess.run([rig.RPMSD, "--check-config", tc.write_conf(stream_conf(keys))],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, r.stderr)
    for ep in ("tcp://127.0.0.1:5560", "tcp://[::1]:5560", "tcp://localhost:5560",
               "ipc://%s/events" % keys.dir):
        conf = tc.base_conf()
        conf["publish"] = {"endpoint": ep}
        r = subprocess.run([rig.RPMSD, "--check-config", tc.write_conf(conf)],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "%s: %s" % (ep, r.stderr))


def test_rpmsctl_tail_with_keys():
    keys = Keys()
    conf = stream_conf(keys)
    ep = conf["publish"]["endpoint"]
    d = Rpmsd(conf)
    try:
        d.wait_log(lambda log: "publish: %s, CURVE" % ep in log, "the stream's CURVE line")
        r = tc.rpmsctl("tail", "-e", ep, "--server-key", keys.server_pub, "--secret-key",
                       keys.good, "--topic", "rpms.heartbeat", "-n", "3", "--json",
                       "--timeout", str(WAIT_S), timeout=WAIT_S + 30)
        check(r.returncode == 0, r)
        beats = [json.loads(ln) for ln in r.stdout.splitlines()]
        check(len(beats) == 3 and all(b["topic"] == "rpms.heartbeat" for b in beats), r.stdout)
        # the server key as a file (rpmsctl keygen's comment line and all)
        pub_file = os.path.join(keys.dir, "stream.pub")
        with open(pub_file, "w") as f:
            f.write("# the stream\n%s rig-1\n" % keys.server_pub)
        r = tc.rpmsctl("tail", "-e", ep, "--server-key", pub_file, "--secret-key", keys.good,
                       "--topic", "rpms.heartbeat", "-n", "1", "--timeout", str(WAIT_S),
                       timeout=WAIT_S + 30)
        check(r.returncode == 0 and "heartbeat" in r.stdout, r)
        # an unknown key, and no key: nothing within the timeout (exit 3)
        r = tc.rpmsctl("tail", "-e", ep, "--server-key", keys.server_pub, "--secret-key",
                       keys.bad, "--timeout", "3")
        check(r.returncode == 3 and not r.stdout and
              "publish.curve_allowed_keys" in r.stderr, r)
        r = tc.rpmsctl("tail", "-e", ep, "--timeout", "3")
        check(r.returncode == 3 and not r.stdout, r)
        d.wait_log(lambda log: "its CURVE public key %s is not in publish.curve_allowed_keys"
                   % keys.bad_pub in log, "the unknown key's refusal logged")
        # both keys or neither; a secret key readable by others is refused before connecting
        r = tc.rpmsctl("tail", "-e", ep, "--server-key", keys.server_pub, "--timeout", "1")
        check(r.returncode == 2 and "go together" in r.stderr, r)
        os.chmod(keys.good, 0o644)
        r = tc.rpmsctl("tail", "-e", ep, "--server-key", keys.server_pub, "--secret-key",
                       keys.good, "--timeout", "1")
        os.chmod(keys.good, 0o600)
        check(r.returncode == 1 and "readable by others" in r.stderr, r)
    finally:
        d.stop()


def test_example_client_and_scope_with_keys():
    keys = Keys(dash=True)
    conf = stream_conf(keys, emg=True)
    ep = conf["publish"]["endpoint"]
    d = Rpmsd(conf)
    try:
        d.wait_log(lambda log: "publish: %s, CURVE" % ep in log, "the stream's CURVE line")
        r = subprocess.run([PY, tc.CLIENT, "--control", conf["control"]["endpoint"],
                            "--events", ep, "--server-key", keys.server_pub,
                            "--secret-key", keys.good, "--patient", "P9",
                            "--session", "curve-1", "--arm", "--seconds", "5",
                            "--schemas", os.path.join(rig.SOURCE, "docs")],
                           capture_output=True, text=True, timeout=180)
        check(r.returncode == 0, "client.py: %d\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
        check("pulse 1/5" in r.stdout and "all valid" in r.stdout, r.stdout)
        # an unknown key: the control socket answers, the stream says nothing
        r = subprocess.run([PY, tc.CLIENT, "--control", conf["control"]["endpoint"],
                            "--events", ep, "--server-key", keys.server_pub,
                            "--secret-key", keys.bad, "--patient", "P9",
                            "--session", "curve-2", "--seconds", "1",
                            "--schemas", os.path.join(rig.SOURCE, "docs")],
                           capture_output=True, text=True, timeout=180)
        check(r.returncode == 1 and "no event from %s" % ep in r.stderr, r)
        png = os.path.join(keys.dir, "scope.png")
        r = subprocess.run([PY, SCOPE, "--endpoint", ep, "--server-key", keys.server_pub,
                            "--secret-key", keys.good, "--once", "50", "--timeout",
                            str(WAIT_S), "--save", png],
                           env=dict(os.environ, MPLBACKEND="Agg"), capture_output=True,
                           text=True, timeout=WAIT_S + 60)
        check(r.returncode == 0, "rpms-scope: %d\n%s" % (r.returncode, r.stderr))
        with open(png, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG")
        r = subprocess.run([PY, SCOPE, "--endpoint", ep, "--server-key", keys.server_pub,
                            "--secret-key", keys.bad, "--once", "5", "--timeout", "3",
                            "--save", png], env=dict(os.environ, MPLBACKEND="Agg"),
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 1 and "publish.curve_allowed_keys" in r.stderr, r)
    finally:
        d.stop()


if __name__ == "__main__":
    rig.run_tests([
        test_only_allowed_subscribers_get_events,
        test_check_refuses_an_open_stream,
        test_rpmsctl_tail_with_keys,
        test_example_client_and_scope_with_keys,
    ])
