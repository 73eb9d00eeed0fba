#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The gpio coil plugin on a host without a GPIO character device: only its
error paths can run here. rpmsd finds the plugin (build tree and
RPMSD_PLUGIN_PATH), lists every key, refuses bad values naming the key, and
a run whose chip or lines cannot be opened fails at start-up, naming the key
and the value, before anything is published. Lines, pulses, the e-stop and
its latency need gpio-sim: that is the VM rig's job (docs/plugins-gpio.md)."""

import atexit
import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rpmsd-gpio-")
atexit.register(shutil.rmtree, TMP, True)
PLUGIN = os.path.join(rig.BUILD, "plugins", "gpio", "gpio.so")
NO_CHIP = "rpmsd-test-no-such-chip"

# Every key, in declaration order, with its default.
KEYS = [
    ("chip", "gpiochip0"),
    ("trigger_line", ""),
    ("trigger_active_low", "false"),
    ("enable_line", ""),
    ("enable_active_low", "false"),
    ("estop_line", ""),
    ("estop_active_low", "false"),
    ("estop_bias", "pull-up"),
    ("ready_line", ""),
    ("ready_active_low", "false"),
    ("ready_bias", "pull-down"),
    ("confirm_line", ""),
    ("confirm_active_low", "false"),
    ("confirm_bias", "pull-down"),
    ("confirm_timeout_us", "2000"),
    ("watcher_priority", "95"),
    ("estop_log", ""),
    ("estop_log_max", "10000"),
]


def rpmsd(*args, exe=None, env=None, timeout=60):
    return subprocess.run([exe or rig.RPMSD] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


def conf(name, coil):
    """A valid configuration with [stim] plugin = gpio and [coil.gpio] @coil."""
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write("[source]\nfile = %s/data/emg/emg_1.txt\n[publish]\nendpoint = tcp://127.0.0.1:%d\n"
                "[stim]\nplugin = gpio\n[coil.gpio]\n%s"
                % (rig.SOURCE, rig.free_port(), coil))
    return path


def parse_keys(text):
    """--plugin-keys output -> [(key, default, doc, type line)]."""
    keys = []
    comments = []
    for line in text.splitlines():
        if line.startswith("# "):
            comments.append(line[2:])
        elif " = " in line:
            key, default = line.split(" = ", 1)
            check(len(comments) >= 2, "key %s: no doc and type lines in %r" % (key, text))
            keys.append((key, default, comments[-2], comments[-1]))
            comments = []
    return keys


def test_plugin_built_and_found_in_build_tree():
    check(os.path.isfile(PLUGIN), "%s was not built" % PLUGIN)
    env = dict(os.environ)
    env.pop("RPMSD_PLUGIN_PATH", None)
    r = rpmsd("--plugin-keys", "gpio", env=env)
    check(r.returncode == 0, "exit %d: %r" % (r.returncode, r.stderr))
    check(r.stdout.startswith("# gpio: TTL trigger and enable lines through the GPIO chardev "
                              "(libgpiod)\n[coil.gpio]\n"), r.stdout[:200])


def test_plugin_path_finds_it():
    # A copy of rpmsd outside the build tree does not look there by itself.
    exe = os.path.join(TMP, "rpmsd")
    shutil.copy(rig.RPMSD, exe)
    env = dict(os.environ)
    env.pop("RPMSD_PLUGIN_PATH", None)
    installed = glob.glob("/usr/*/lib*/rpmsd/plugins/gpio.so") + \
        glob.glob("/usr/*/lib/*/rpmsd/plugins/gpio.so")
    r = rpmsd("--plugin-keys", "gpio", exe=exe, env=env)
    if not installed:
        check(r.returncode == 1, "found without RPMSD_PLUGIN_PATH: %r" % r.stdout[:200])
        check("coil plugin 'gpio': gpio.so not found (searched: " in r.stderr, r.stderr)
        check(os.path.dirname(PLUGIN) not in r.stderr, r.stderr)
    env["RPMSD_PLUGIN_PATH"] = "/nonexistent:" + os.path.dirname(PLUGIN)
    r = rpmsd("--plugin-keys", "gpio", exe=exe, env=env)
    check(r.returncode == 0, "exit %d: %r" % (r.returncode, r.stderr))
    check("[coil.gpio]\n" in r.stdout, r.stdout[:200])


def test_plugin_keys_lists_every_key():
    r = rpmsd("--plugin-keys", "gpio")
    check(r.returncode == 0, r.stderr)
    keys = parse_keys(r.stdout)
    check([(k, d) for k, d, _, _ in keys] == KEYS,
          "keys/defaults differ:\n got %r\nwant %r" % ([(k, d) for k, d, _, _ in keys], KEYS))
    for key, _, doc, _ in keys:
        check(len(doc) > 10, "key %s: no doc line" % key)
    types = {k: t for k, _, _, t in keys}
    check(types["confirm_timeout_us"] == "integer, 1 to 100000 µs", types["confirm_timeout_us"])
    check(types["estop_log_max"] == "integer, 1 to 1e+06 events", types["estop_log_max"])
    check(types["watcher_priority"] == "integer, 0 to 99", types["watcher_priority"])
    for key in ("trigger_active_low", "enable_active_low", "estop_active_low"):
        check(types[key] == "bool", "%s: %s" % (key, types[key]))
    for key in ("chip", "trigger_line", "enable_line", "estop_bias", "estop_log"):
        check(types[key] == "string", "%s: %s" % (key, types[key]))


def expect_refused(path, message):
    """--check-config and a run both refuse, naming the key."""
    for args in (("--check-config", path), ("--config", path, "--fast")):
        r = rpmsd(*args)
        check(r.returncode == 1, "%s: exit %d, stderr %r" % (args, r.returncode, r.stderr))
        check(message in r.stderr, "%s: stderr %r lacks %r" % (args, r.stderr, message))
        check(not r.stdout.strip(), "%s: something ran: %r" % (args, r.stdout))


def test_bad_values_refused_naming_the_key():
    p = conf("timeout.conf", "trigger_line = 0\nconfirm_timeout_us = -5\n")
    expect_refused(p, "%s:9: coil.gpio.confirm_timeout_us: -5 is out of range "
                      "(allowed: 1 to 100000 µs)" % p)
    p = conf("unknown.conf", "trigger_pin = 5\n")
    expect_refused(p, "%s:8: coil.gpio.trigger_pin: unknown key (allowed: %s)"
                   % (p, ", ".join(k for k, _ in KEYS)))
    p = conf("bool.conf", "trigger_line = 0\nestop_active_low = maybe\n")
    expect_refused(p, "%s:9: coil.gpio.estop_active_low: 'maybe' is not a boolean" % p)
    p = conf("prio.conf", "trigger_line = 0\nwatcher_priority = 100\n")
    expect_refused(p, "%s:9: coil.gpio.watcher_priority: 100 is out of range (allowed: 0 to 99)" % p)
    p = conf("logmax.conf", "trigger_line = 0\nestop_log_max = 0\n")
    expect_refused(p, "%s:9: coil.gpio.estop_log_max: 0 is out of range" % p)


def expect_open_fails(name, coil, messages):
    """A run fails at start-up with @messages, exit 1, and publishes nothing."""
    path = conf(name, coil)
    with open(path) as f:
        text = f.read()
    run = rig.Run(text, args=("--fast",), timeout=60)
    check(run.returncode == 1, "exit %d, stderr %r" % (run.returncode, run.stderr))
    for m in messages + ["rpmsd: error: coil plugin 'gpio': open failed: "]:
        check(m in run.stderr, "stderr %r lacks %r" % (run.stderr, m))
    check(not run.of("rpms.stim"), "pulses published: %r" % run.of("rpms.stim"))
    check(not run.messages, "published: %r" % run.messages[:3])
    check("coil plugin: gpio (" not in run.stderr, "the plugin opened: %r" % run.stderr)
    return run


def test_missing_chip_fails_naming_key_and_chip():
    run = expect_open_fails("nochip.conf", "chip = %s\ntrigger_line = 0\nenable_line = 1\n" % NO_CHIP,
                            ["rpmsd: error: coil gpio: key chip: cannot open GPIO chip '%s': "
                             "No such file or directory (" % NO_CHIP])
    check("open failed: No such file or directory" in run.stderr, run.stderr)
    if not glob.glob("/dev/gpiochip*"):
        check("(no GPIO chips on this system)" in run.stderr, run.stderr)


def test_missing_chip_path():
    expect_open_fails("nopath.conf", "chip = /dev/%s\ntrigger_line = 0\n" % NO_CHIP,
                      ["key chip: cannot open GPIO chip '/dev/%s': No such file or directory"
                       % NO_CHIP])


def test_values_only_the_plugin_can_judge():
    # Checked in open before the chip: the host's table has no enums.
    expect_open_fails("notrigger.conf", "chip = %s\n" % NO_CHIP,
                      ["key trigger_line: not set (the offset or name of the line that "
                       "fires the stimulator)"])
    expect_open_fails("bias.conf", "chip = %s\ntrigger_line = 0\nestop_line = 1\n"
                      "estop_bias = up\n" % NO_CHIP,
                      ["key estop_bias: 'up' is not a bias (allowed: as-is, disable, "
                       "pull-up, pull-down)"])
    expect_open_fails("nochipname.conf", "chip =\ntrigger_line = 0\n",
                      ["key chip: not set (a chip name, path, label or number)"])


if __name__ == "__main__":
    rig.run_tests([
        test_plugin_built_and_found_in_build_tree,
        test_plugin_path_finds_it,
        test_plugin_keys_lists_every_key,
        test_bad_values_refused_naming_the_key,
        test_missing_chip_fails_naming_key_and_chip,
        test_missing_chip_path,
        test_values_only_the_plugin_can_judge,
    ])
