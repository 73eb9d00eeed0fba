#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Validate rpmsd event bodies against docs/events.schema.json.

Input (a file, or standard input when FILE is omitted or "-"): one JSON
value per line, either

  {"topic": "rpms.stim", "body": {...}}     a message: topic frame and body
                                            (body may also be the body text
                                            as a JSON string), or
  {...}                                     a bare body, as printed by
                                            `rpmsctl tail --json`.

Blank lines are skipped. The first invalid line ends the run with a message
naming the line, the topic, the seq and what is wrong.

  validate_events.py [--schema PATH] [--contiguous] [--min N] [FILE|-]
  validate_events.py [--schema PATH] --self-test [TEST_EVENT_BINARY]

--contiguous also requires each topic's seq to grow by exactly one (no lost
messages). --min N requires at least N bodies.

--self-test checks the validator itself: built-in bodies that must fail (an
unknown member, a missing one, a wrong type, a wrong topic) do fail. Given
the test_event binary, it also runs it with EVENT_JSON_OUT pointing to a
temporary file (test_event then writes every body it encodes or receives,
see tests/unit/test_event.c) and validates all of them, requiring every
topic and every rpms.state kind to appear.

Exit status: 0 valid, 1 invalid input, 2 usage error or unusable schema.
Needs python3-jsonschema (Debian 12: 4.10, draft 2020-12).
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

try:
    import jsonschema
except ImportError:
    sys.stderr.write("validate_events.py: python3-jsonschema is not installed\n")
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.normpath(os.path.join(HERE, "..", "..", "docs", "events.schema.json"))

TOPICS = ("rpms.burst", "rpms.stim", "rpms.safety", "rpms.state", "rpms.source",
          "rpms.heartbeat")
STATE_KINDS = ("calibrated", "overflow", "started", "armed", "disarmed", "fault",
               "source_end", "stopping", "recovered", "estop", "calibrating",
               "protocol_changed", "session_started", "session_stopped")


class Invalid(Exception):
    pass


def load_validator(path):
    try:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write("validate_events.py: cannot load schema %s: %s\n" % (path, e))
        sys.exit(2)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        sys.stderr.write("validate_events.py: %s is not a valid schema: %s\n" % (path, e.message))
        sys.exit(2)
    return cls(schema)


def describe(errors):
    """The most telling reason, with the path of the member at fault.

    A broken common member also makes unevaluatedProperties list every
    common member (the failed $ref yields no annotations), so that
    complaint is only reported when there is nothing more specific.
    """
    specific = [e for e in errors if e.validator != "unevaluatedProperties"]
    best = jsonschema.exceptions.best_match(specific or errors)
    where = "/".join(str(p) for p in best.absolute_path) or "(body)"
    if best.validator == "not" and isinstance(best.validator_value, dict) \
            and list(best.validator_value) == ["required"]:
        return "%s: %s not allowed here" % (where, ", ".join(best.validator_value["required"]))
    return "%s: %s" % (where, best.message)


def unwrap(value):
    """(topic frame or None, body) from one input line's value."""
    if isinstance(value, dict) and set(value) == {"topic", "body"}:
        body = value["body"]
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError as e:
                raise Invalid("body is not JSON: %s" % e)
        return value["topic"], body
    return None, value


def check_body(validator, topic, body):
    if not isinstance(body, dict):
        raise Invalid("body is not a JSON object")
    errors = list(validator.iter_errors(body))
    if errors:
        raise Invalid(describe(errors))
    if topic is not None and body.get("topic") != topic:
        raise Invalid("topic frame %r but body topic %r" % (topic, body.get("topic")))


def validate_lines(validator, lines, name, contiguous=False, minimum=0):
    """Validate every line; return {topic: count} and the rpms.state kinds seen."""
    counts = {}
    kinds = set()
    last_seq = {}
    n = 0
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        where = "%s:%d" % (name, lineno)
        try:
            try:
                value = json.loads(line)
            except ValueError as e:
                raise Invalid("not JSON: %s" % e)
            topic, body = unwrap(value)
            label = "%s seq %s" % (body.get("topic", "?"), body.get("seq", "?")) \
                if isinstance(body, dict) else "?"
            try:
                check_body(validator, topic, body)
            except Invalid as e:
                raise Invalid("%s: %s" % (label, e))
            t = body["topic"]
            if contiguous:
                if t in last_seq and body["seq"] != last_seq[t] + 1:
                    raise Invalid("%s: seq %d follows %d (lost or repeated messages)"
                                  % (label, body["seq"], last_seq[t]))
                last_seq[t] = body["seq"]
        except Invalid as e:
            sys.stderr.write("validate_events.py: %s: invalid event: %s\n" % (where, e))
            sys.stderr.write("  %s\n" % line[:400])
            sys.exit(1)
        counts[t] = counts.get(t, 0) + 1
        if t == "rpms.state":
            kinds.add(body["state"])
        n += 1
    if n < minimum:
        sys.stderr.write("validate_events.py: %s: %d events, expected at least %d\n"
                         % (name, n, minimum))
        sys.exit(1)
    return counts, kinds


# A valid body of each topic, and ways to break them that must be caught.
GOOD = {
    "schema": 1, "topic": "rpms.stim", "seq": 0, "t_mono_ns": 1, "t_wall_ns": 2,
    "t_wall": "2026-11-27T04:12:33.123456Z", "t_session_s": 15.5, "sample": 15500,
    "t_rec_s": 15.5, "channel": 0, "train_id": 3, "index": 0, "count": 5,
    "intensity_pct": 30, "width_us": 100, "t_sched_s": 15.524, "t_actual_s": 15.524012,
    "late_us": 12.345, "temperature_c": None, "trigger_sample": 15490,
    "sample_at_fire": 15524.012, "confirm_us": 152.345, "didt": 45.0, "didt_train_id": 2,
    "didt_index": 4,
}

# A valid refusal, and a summary of repeated ones.
REFUSED = {
    **{k: GOOD[k] for k in ("schema", "seq", "t_mono_ns", "t_wall_ns", "t_wall",
                            "t_session_s", "sample", "t_rec_s", "channel")},
    "topic": "rpms.safety", "kind": "refused", "rule": "not_ready", "train_id": 3,
    "index": 0, "dropped": 5, "value": 0, "limit": 1, "unit": "", "t_sched_s": 15.5,
    "refusals": 1,
}
SUMMARY = dict(REFUSED, kind="summary", refusals=124, t_first_s=14.5)


def broken_bodies():
    def change(**kw):
        b = copy.deepcopy(GOOD)
        for k, v in kw.items():
            if v is KeyError:
                del b[k]
            else:
                b[k] = v
        return b

    yield "unknown member", change(extra=1)
    yield "pulse without sample_at_fire", change(sample_at_fire=KeyError)
    yield "pulse without confirm_us", change(confirm_us=KeyError)
    yield "pulse with a zero confirm_us", change(confirm_us=0)
    yield "pulse with didt as text", change(didt="45")
    yield "pulse without didt_train_id", change(didt_train_id=KeyError)
    yield "summary without t_first_s", {k: v for k, v in SUMMARY.items() if k != "t_first_s"}
    yield "refused standing for 2", dict(REFUSED, refusals=2)
    yield "refused with t_first_s", dict(REFUSED, t_first_s=1.0)
    yield "refusal without kind", {k: v for k, v in REFUSED.items() if k != "kind"}
    yield "summary of 0", dict(SUMMARY, refusals=0)
    yield "missing seq", change(seq=KeyError)
    yield "missing t_session_s", change(t_session_s=KeyError)
    yield "seq negative", change(seq=-1)
    yield "count as string", change(count="5")
    yield "wrong schema", change(schema=2)
    yield "unknown topic", change(topic="rpms.nope")
    yield "burst member in stim", change(edge="onset")
    yield "bad t_wall", change(t_wall="2026-11-27 04:12:33")
    yield "onset without action", {
        **{k: GOOD[k] for k in ("schema", "seq", "t_mono_ns", "t_wall_ns", "t_wall",
                                "t_session_s", "sample", "channel")},
        "topic": "rpms.burst", "edge": "onset", "edge_sample": 1, "envelope": 1,
        "threshold": 1, "baseline": 1}
    yield "offset with train_id", {
        **{k: GOOD[k] for k in ("schema", "seq", "t_mono_ns", "t_wall_ns", "t_wall",
                                "t_session_s", "sample", "channel")},
        "topic": "rpms.burst", "edge": "offset", "edge_sample": 1, "envelope": 1,
        "threshold": 1, "baseline": 1, "train_id": 2}
    yield "unknown state", {
        **{k: GOOD[k] for k in ("schema", "seq", "t_mono_ns", "t_wall_ns", "t_wall",
                                "t_session_s", "sample", "channel")},
        "topic": "rpms.state", "state": "exploded", "code": 0, "reason": ""}
    yield "overflow with t_session_s", {
        **{k: GOOD[k] for k in ("schema", "seq", "t_mono_ns", "t_wall_ns", "t_wall",
                                "t_session_s", "sample", "channel")},
        "topic": "rpms.state", "state": "overflow", "ring": "acquire", "dropped": 3}


def self_test(validator, binary):
    try:
        check_body(validator, "rpms.stim", GOOD)
        check_body(validator, "rpms.safety", REFUSED)
        check_body(validator, "rpms.safety", SUMMARY)
    except Invalid as e:
        sys.stderr.write("validate_events.py: self-test: the reference body is rejected: %s\n" % e)
        sys.exit(1)
    for what, body in broken_bodies():
        try:
            check_body(validator, None, body)
        except Invalid:
            continue
        sys.stderr.write("validate_events.py: self-test: a body with %s was accepted\n" % what)
        sys.exit(1)
    print("validate_events.py: self-test: %d broken bodies rejected" % len(list(broken_bodies())))
    if not binary:
        return
    with tempfile.TemporaryDirectory(prefix="rpmsd-events-") as tmp:
        out = os.path.join(tmp, "events.jsonl")
        env = dict(os.environ, EVENT_JSON_OUT=out)
        r = subprocess.run([binary], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, check=False)
        if r.returncode != 0:
            sys.stderr.write(r.stdout.decode(errors="replace"))
            sys.stderr.write("validate_events.py: self-test: %s failed (status %d)\n"
                             % (binary, r.returncode))
            sys.exit(1)
        with open(out, encoding="utf-8") as f:
            counts, kinds = validate_lines(validator, f, out, minimum=1)
    missing = [t for t in TOPICS if t not in counts]
    missing += ["rpms.state " + k for k in STATE_KINDS if k not in kinds]
    if missing:
        sys.stderr.write("validate_events.py: self-test: %s produced no %s\n"
                         % (binary, ", ".join(missing)))
        sys.exit(1)
    print("validate_events.py: self-test: %d bodies from %s valid (%s)"
          % (sum(counts.values()), os.path.basename(binary),
             ", ".join("%s %d" % (t, counts[t]) for t in TOPICS)))


def main():
    ap = argparse.ArgumentParser(
        description="Validate rpmsd event bodies (JSON lines) against the event schema.")
    ap.add_argument("--schema", default=DEFAULT_SCHEMA,
                    help="schema file (default: %(default)s)")
    ap.add_argument("--contiguous", action="store_true",
                    help="also require every topic's seq to grow by one")
    ap.add_argument("--min", type=int, default=0, metavar="N",
                    help="require at least N events")
    ap.add_argument("--self-test", action="store_true",
                    help="test the validator; INPUT is then the test_event binary (optional)")
    ap.add_argument("input", nargs="?", default="-",
                    help="JSON-lines file, or - for standard input (default)")
    args = ap.parse_args()

    validator = load_validator(args.schema)
    if args.self_test:
        self_test(validator, None if args.input == "-" else args.input)
        return 0
    if args.input == "-":
        counts, _ = validate_lines(validator, sys.stdin, "<stdin>", args.contiguous, args.min)
    else:
        try:
            f = open(args.input, encoding="utf-8")
        except OSError as e:
            sys.stderr.write("validate_events.py: cannot read %s: %s\n" % (args.input, e.strerror))
            return 2
        with f:
            counts, _ = validate_lines(validator, f, args.input, args.contiguous, args.min)
    print("validate_events.py: %d events valid (%s)"
          % (sum(counts.values()),
             ", ".join("%s %d" % (t, n) for t, n in sorted(counts.items())) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
