#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An rpmsd client in Python (pyzmq): start a session, arm, watch the
stimulation for a while, disarm, stop the session -- and check every message
the daemon sends against its published schemas (python3-jsonschema).

    client.py [--control EP] [--events EP] [--patient ID] [--session ID]
              [--seconds S] [--arm] [--schemas DIR]
              [--server-key KEY --secret-key FILE]
              [--control-server-key KEY --control-secret-key FILE]

A stream bound beyond the daemon's host is CURVE-encrypted and lets in only
the subscribers whose public keys it lists (docs/events.md, "CURVE"):
--server-key is the stream's public key (Z85, or a file holding it),
--secret-key this client's secret key file (rpmsctl keygen), as rpmsctl
tail takes them; --control-server-key and --control-secret-key are the same
for the control socket (docs/control.md).

It subscribes to the event stream first (so that nothing it causes is
missed), then talks to the control socket: one request, one reply
(docs/control.md). Every event body is validated against
docs/events.schema.json, every reply against docs/control.schema.json, and
every topic's sequence numbers are checked for gaps. Exit status: 0 all
went as expected; 1 a message was invalid, a sequence had a gap, or a
command was refused; 2 the daemon did not answer (with CURVE: also when it
refused this client's key), or a key file is unusable.

The test suite runs this very file against a running daemon
(tests/integration/test_control.py).
"""

import argparse
import json
import os
import sys
import time

import jsonschema
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))


def read_key(arg, secret):
    """A Z85 key given as itself, or the first key line of a key file (the
    format rpmsd and rpmsctl read: '#' comments, a name may follow the key).
    A secret key file must be readable by its owner only."""
    if not secret and len(arg) == 40 and not os.path.exists(arg):
        return arg.encode()
    with open(arg) as f:
        if secret and os.fstat(f.fileno()).st_mode & 0o077:
            raise ValueError("%s: a secret key readable by others: chmod 600 it" % arg)
        for line in f:
            words = line.split()
            if words and not words[0].startswith("#"):
                if len(words[0]) != 40:
                    break
                return words[0].encode()
    raise ValueError("%s: no Z85 key (40 characters) in it" % arg)


def curve_keys(server_key, secret_file):
    """(server public key, client secret key) as bytes, or None without CURVE."""
    if not server_key and not secret_file:
        return None
    if not server_key or not secret_file:
        raise ValueError("a server key and a secret key go together (CURVE)")
    return read_key(server_key, False), read_key(secret_file, True)


def curve(sock, keys):
    """Make @sock a CURVE client of the server with @keys (curve_keys)."""
    if keys:
        sock.curve_secretkey = keys[1]
        sock.curve_publickey = zmq.curve_public(keys[1])
        sock.curve_serverkey = keys[0]


class Client:
    def __init__(self, control, events, schemas, timeout_s=5.0, events_keys=None,
                 control_keys=None):
        self.ctx = zmq.Context()
        self.timeout_ms = int(timeout_s * 1000)
        self.control_ep = control
        self.control_keys = control_keys
        self.req = None
        self.sub = self.ctx.socket(zmq.SUB)
        curve(self.sub, events_keys)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"rpms.")
        self.sub.connect(events)
        self.events = self._validator(os.path.join(schemas, "events.schema.json"))
        self.replies = self._validator(os.path.join(schemas, "control.schema.json"))
        self.last_seq = {}
        self.received = []          # (topic, body) in arrival order
        self.problems = []

    @staticmethod
    def _validator(path):
        with open(path) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)

    def _socket(self):
        # A REQ socket that timed out must be thrown away: it still waits
        # for its reply and would refuse the next request.
        if self.req is None:
            self.req = self.ctx.socket(zmq.REQ)
            self.req.setsockopt(zmq.LINGER, 0)
            curve(self.req, self.control_keys)
            self.req.connect(self.control_ep)
        return self.req

    def request(self, cmd, **members):
        """Send one command; return the reply's result, or raise on refusal."""
        sock = self._socket()
        sock.send_json(dict(cmd=cmd, **members))
        if not sock.poll(self.timeout_ms):
            sock.close()
            self.req = None
            raise TimeoutError("no reply to %s from %s" % (cmd, self.control_ep))
        reply = sock.recv_json()
        errors = sorted(self.replies.iter_errors(reply), key=lambda e: list(e.path))
        if errors:
            self.problems.append("reply to %s: %s" % (cmd, errors[0].message))
        if not reply["ok"]:
            e = reply["error"]
            raise RuntimeError("%s refused (%s): %s" % (cmd, e["code"], e["message"]))
        return reply["result"]

    def pump(self, seconds):
        """Receive events for @seconds, validating each one."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            if not self.sub.poll(int(left * 1000) + 1):
                continue
            frames = self.sub.recv_multipart()
            topic, body = frames[0].decode(), json.loads(frames[1])
            self.received.append((topic, body))
            errors = list(self.events.iter_errors(body))
            if errors:
                self.problems.append("%s seq %s: %s" % (topic, body.get("seq"), errors[0].message))
            seq = body.get("seq")
            if topic in self.last_seq and seq != self.last_seq[topic] + 1:
                self.problems.append("%s: seq %s after %s" % (topic, seq, self.last_seq[topic]))
            self.last_seq[topic] = seq
            if topic == "rpms.stim":
                print("pulse %d/%d of train %d at %.3f s, %.0f %%, %.0f us late"
                      % (body["index"] + 1, body["count"], body["train_id"],
                         body["t_actual_s"], body["intensity_pct"], body["late_us"]))
            elif topic == "rpms.state" and body["state"] != "calibrated":
                print("state %s %s" % (body["state"], body.get("reason", "")))

    def close(self):
        if self.req is not None:
            self.req.close()
        self.sub.close(linger=0)
        self.ctx.term()


def key_argv(argv, options):
    """A Z85 key may begin with '-', which argparse takes for an option:
    "--server-key -x..." becomes "--server-key=-x..." before parsing."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in options and i + 1 < len(argv):
            out.append("%s=%s" % (argv[i], argv[i + 1]))
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--control", default="ipc:///run/rpmsd/control")
    ap.add_argument("--events", default="tcp://127.0.0.1:5560")
    ap.add_argument("--patient", default="P001")
    ap.add_argument("--session", default="S001")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--arm", action="store_true", help="arm the coil for the session")
    ap.add_argument("--schemas", default=os.path.normpath(os.path.join(HERE, "..")))
    ap.add_argument("--server-key", metavar="KEY",
                    help="CURVE: the event stream's public key (Z85, or a file holding it)")
    ap.add_argument("--secret-key", metavar="FILE",
                    help="CURVE: this client's secret key file, for the event stream")
    ap.add_argument("--control-server-key", metavar="KEY",
                    help="CURVE: the control socket's public key (Z85, or a file holding it)")
    ap.add_argument("--control-secret-key", metavar="FILE",
                    help="CURVE: this client's secret key file, for the control socket")
    args = ap.parse_args(key_argv(sys.argv[1:], ("--server-key", "--control-server-key")))

    try:
        events_keys = curve_keys(args.server_key, args.secret_key)
        control_keys = curve_keys(args.control_server_key, args.control_secret_key)
    except (OSError, ValueError) as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 2
    client = Client(args.control, args.events, args.schemas, events_keys=events_keys,
                    control_keys=control_keys)
    try:
        client.pump(0.5)                    # let the subscription reach the daemon
        status = client.request("status")
        print("daemon: armed %s, protocol %s, %d pulses today"
              % (status["armed"], status["protocol"]["protocol"], status["pulses_today"]))
        client.request("session_start", patient_id=args.patient, session_id=args.session)
        if args.arm:
            client.request("arm")
        client.pump(args.seconds)
        client.request("disarm")
        stopped = client.request("session_stop")
        client.pump(1.5)                    # the last events and a heartbeat
        print("session %s: %d pulses" % (args.session, stopped.get("pulses_session", 0)))
    except TimeoutError as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 2
    except RuntimeError as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        client.close()
    if not client.received:
        client.problems.append("no event from %s%s" % (
            args.events, " (is this client's key in publish.curve_allowed_keys?)"
            if events_keys else ""))
    for p in client.problems:
        print("client.py: invalid: %s" % p, file=sys.stderr)
    print("%d messages, all valid" % len(client.received) if not client.problems
          else "%d problems" % len(client.problems))
    return 1 if client.problems else 0


if __name__ == "__main__":
    sys.exit(main())
