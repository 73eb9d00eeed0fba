#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The documentation against the code it describes, so that it cannot
drift unnoticed: the topic lists (README, docs/events.md, rpmsctl) against
the event schema, the plugin ABI version (README) against the header and
rpmsd --version, the command-line options the docs give the project's
tools against the tools' own --help, and config/control-demo.conf against
config/demo.conf."""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402


def read(*path):
    with open(os.path.join(rig.SOURCE, *path)) as f:
        return f.read()


def schema_topics():
    with open(os.path.join(rig.SOURCE, "docs", "events.schema.json")) as f:
        return set(json.load(f)["properties"]["topic"]["enum"])


def topics_in(text):
    return set(re.findall(r"`(rpms\.[a-z]+)`", text))


def test_topic_lists_match_the_schema():
    want = schema_topics()
    check(len(want) >= 8, "schema topics %r" % want)
    readme = read("README.md")
    section = readme[readme.index("## Event stream"):]
    sentence = section[section.index("Each message is a topic frame"):]
    sentence = sentence[:sentence.index(")")]
    check(topics_in(sentence) == want, "README, Event stream: %r, schema %r"
          % (sorted(topics_in(sentence)), sorted(want)))
    events = read("docs", "events.md")
    line = events[events.index("**topic**, ASCII"):]
    line = line[:line.index(".\n")]
    check(topics_in(line) == want, "events.md, Transport: %r, schema %r"
          % (sorted(topics_in(line)), sorted(want)))
    headings = set(re.findall(r"^### `(rpms\.[a-z]+)`", events, re.M))
    check(headings == want, "events.md sections %r, schema %r" % (sorted(headings), sorted(want)))
    # rpmsctl tail checks every topic's sequence numbers
    src = read("tools", "rpmsctl.c")
    arr = src[src.index("rpmsctl_topics[] = {"):]
    arr = arr[:arr.index("};")]
    check(set(re.findall(r'"(rpms\.[a-z]+)"', arr)) == want, "rpmsctl's topics: %s" % arr)


def test_abi_version_is_the_headers():
    h = read("include", "rpmsd", "coil.h")
    major = re.search(r"#define RPMSD_COIL_ABI_MAJOR (\d+)", h).group(1)
    minor = re.search(r"#define RPMSD_COIL_ABI_MINOR (\d+)", h).group(1)
    abi = "%s.%s" % (major, minor)
    r = subprocess.run([rig.RPMSD, "--version"], capture_output=True, text=True)
    check("ABI %s" % abi in r.stdout, "rpmsd --version: %r, coil.h %s" % (r.stdout, abi))
    said = re.findall(r"ABI version (\d+\.\d+)", read("README.md"))
    check(said and all(v == abi for v in said), "README says ABI %r, coil.h %s" % (said, abi))


def help_options(argv):
    r = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MPLBACKEND="Agg"))
    check(r.returncode == 0, "%r --help: %d %s" % (argv, r.returncode, r.stderr))
    return set(re.findall(r"--[a-z][a-z0-9-]*", r.stdout))


def test_documented_options_exist():
    """Every --option the docs put after one of the project's commands is
    one that command has (rpmsd's --wait-subscriber, not an internal name)."""
    py = "/usr/bin/python3"
    tools = {
        "rpmsd": help_options([rig.RPMSD]),
        "rpmsctl": help_options([rig.RPMSCTL]),
        "rpms-detect": help_options([os.path.join(rig.BUILD, "tools", "rpms-detect")]),
        "rpms-scope": help_options([py, os.path.join(rig.SOURCE, "tools", "rpms-scope")]),
        "rpms-bids": help_options([py, os.path.join(rig.SOURCE, "tools", "rpms-bids"),
                                   "export"]),
        "rpms-report": help_options([py, os.path.join(rig.SOURCE, "tools", "rpms-report")]),
        "client.py": help_options([py, os.path.join(rig.SOURCE, "docs", "examples",
                                                     "client.py")]),
        "validate_events.py": help_options([py, os.path.join(rig.SOURCE, "tests",
                                                             "integration",
                                                             "validate_events.py")]),
    }
    check("--wait-subscriber" in tools["rpmsd"] and "--server-key" in tools["rpmsctl"], tools)
    names = "|".join(re.escape(t) for t in tools)
    # a command: the tool's name as a word (a path before it is fine), then its words
    # up to the end of the code span or line
    command = re.compile(r"(?<![\w.-])(?:[\w./-]*/)?(%s)(?![\w.-])([^`\n]*)" % names)
    docs = ["README.md"] + ["docs/" + f for f in sorted(os.listdir(
        os.path.join(rig.SOURCE, "docs"))) if f.endswith(".md")]
    bad, seen = [], 0
    for doc in docs:
        for lineno, line in enumerate(read(doc).splitlines(), 1):
            for m in command.finditer(line):
                tool, rest = m.group(1), m.group(2)
                # the next command on the line starts its own
                nxt = command.search(rest)
                if nxt:
                    rest = rest[:nxt.start()]
                for opt in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
                    seen += 1
                    if opt not in tools[tool]:
                        bad.append("%s:%d: %s %s" % (doc, lineno, tool, opt))
    print("%d options checked" % seen, flush=True)
    check(seen > 20, "only %d options found: the pattern is broken" % seen)
    check(not bad, "options the tools do not have:\n" + "\n".join(bad))
    # and nothing internal given as the way to do it
    check("publish_wait_subscriber" not in read("docs", "events.md"), "events.md")


def ini(text):
    out, section = {}, None
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith(("#", ";")):
            continue
        if s.startswith("["):
            section = s.strip("[]")
        else:
            k, v = s.split("=", 1)
            out[(section, k.strip())] = v.strip()
    return out


def test_control_demo_is_the_demo_without_arm_on_start():
    demo = ini(read("config", "demo.conf"))
    control = ini(read("config", "control-demo.conf"))
    check(demo.pop(("daemon", "arm_on_start")) == "true", "demo.conf arms at start")
    check(demo == control, "config/control-demo.conf differs from demo.conf: %r"
          % sorted(set(demo.items()) ^ set(control.items())))
    # (test_control.py runs the daemon with it)


if __name__ == "__main__":
    rig.run_tests([
        test_topic_lists_match_the_schema,
        test_abi_version_is_the_headers,
        test_documented_options_exist,
        test_control_demo_is_the_demo_without_arm_on_start,
    ])
