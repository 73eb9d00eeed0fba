# SPDX-License-Identifier: MIT
"""A real ZeroMQ SUB socket on the daemon's event stream that keeps every
message: shared by test_e2e_sessions.py and test_sham.py."""

import json
import threading
import time

import zmq


class Subscriber:
    """Every message on rpms.*, (topic, body), in arrival order."""

    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"rpms.")
        self.sock.connect(endpoint)
        self.lock = threading.Lock()
        self.msgs = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            if self.sock.poll(100):
                frames = self.sock.recv_multipart()
                with self.lock:
                    self.msgs.append((frames[0].decode(), json.loads(frames[1])))

    def count(self):
        with self.lock:
            return len(self.msgs)

    def of(self, topic, since=0, **match):
        """The bodies of @topic from message @since on whose fields equal @match."""
        with self.lock:
            msgs = self.msgs[since:]
        return [b for t, b in msgs if t == topic and
                all(b.get(k) == v for k, v in match.items())]

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close(linger=0)
        self.ctx.term()

    def drain_and_close(self):
        """After the publisher exited: wait until no more messages arrive (what
        was sent before the exit is still in flight), close, return them all."""
        n = -1
        while n != self.count():
            n = self.count()
            time.sleep(0.3)
        self.close()
        return list(self.msgs)
