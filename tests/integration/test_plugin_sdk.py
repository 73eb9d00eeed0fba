#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The plugin SDK as a rig engineer uses it: `meson install` into a
staging directory, the example out-of-tree plugin (examples/coil-plugin)
compiled with the installed header and pkg-config file only, and the
installed rpmsd loading it from daemon.plugin_dir and firing through it."""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rpmsd-sdk-")
STAGE = os.path.join(TMP, "stage")
PLUGINS = os.path.join(TMP, "plugins")


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)
    check(r.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                   r.stdout, r.stderr))
    return r


def find(name):
    for root, _, files in os.walk(STAGE):
        if name in files:
            return os.path.join(root, name)
    raise AssertionError("%s not installed under %s" % (name, STAGE))


def pkg_config(*args):
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=STAGE,
               PKG_CONFIG_LIBDIR=os.path.dirname(find("rpmsd-coil.pc")))
    return sh(["pkg-config"] + list(args) + ["rpmsd-coil"], env=env).stdout.split()


def build_example():
    """Compile the example from a copy outside the source tree, with only
    what pkg-config says: the installed header is all it can see."""
    os.makedirs(PLUGINS, exist_ok=True)
    src = os.path.join(TMP, "counter.c")
    shutil.copy(os.path.join(rig.SOURCE, "examples", "coil-plugin", "counter.c"), src)
    cflags = pkg_config("--cflags")
    check(all(rig.SOURCE not in f for f in cflags), "cflags %r" % cflags)
    out = os.path.join(PLUGINS, "counter.so")
    sh(["cc", "-std=c17", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"] + cflags +
       [src, "-o", out])
    return out


def installed_run(extra, args=("--fast",)):
    text = rig.demo_config("tcp://127.0.0.1:%d" % rig.free_port(), extra=dict(extra))
    saved = rig.RPMSD
    rig.RPMSD = find("rpmsd")
    try:
        return rig.Run(text, args=args)
    finally:
        rig.RPMSD = saved


def test_install_and_out_of_tree_plugin():
    sh(["meson", "install", "--no-rebuild", "--quiet", "-C", rig.BUILD, "--destdir", STAGE])
    for name in ("coil.h", "rpmsd-coil.pc", "rpmsd", "sim.so"):
        find(name)
    plugindir = pkg_config("--variable=plugindir")[0]
    check(os.path.isfile(os.path.join(plugindir, "sim.so")), "plugindir %s" % plugindir)
    build_example()
    conf = os.path.join(TMP, "keys.conf")
    with open(conf, "w") as f:
        f.write("[daemon]\nplugin_dir = %s\n" % PLUGINS)
    keys = sh([find("rpmsd"), "--config", conf, "--plugin-keys", "counter"]).stdout
    check("[coil.counter]" in keys and "limit = 0" in keys, keys)
    base = {("daemon", "plugin_dir"): PLUGINS, ("stim", "plugin"): "counter"}
    r = installed_run(base)
    check(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    check("counter.so" in r.stderr and "counter: 15 pulses" in r.stderr, r.stderr)
    check(len(r.of("rpms.stim")) == 15, "pulses %d" % len(r.of("rpms.stim")))


def test_plugin_error_is_a_fault():
    """The example's own key: limit = 3, so its 4th pulse fails: a fault,
    the coil disarmed, exit status 3."""
    base = {("daemon", "plugin_dir"): PLUGINS, ("stim", "plugin"): "counter",
            ("coil.counter", "limit"): "3"}
    r = installed_run(base)
    check(r.returncode == 3, "exit %d: %s" % (r.returncode, r.stderr))
    check(len(r.of("rpms.stim")) == 3, "pulses %d" % len(r.of("rpms.stim")))
    check(r.of("rpms.state", state="fault", reason="coil plugin pulse failed"),
          "states %r" % r.of("rpms.state"))
    bad = dict(base)
    bad[("coil.counter", "limits")] = "3"
    r = installed_run(bad)
    check(r.returncode == 1 and "coil.counter.limits: unknown key (allowed: limit)" in r.stderr,
          r.stderr)


if __name__ == "__main__":
    import atexit

    atexit.register(shutil.rmtree, TMP, True)
    rig.run_tests([
        test_install_and_out_of_tree_plugin,
        test_plugin_error_is_a_fault,
    ])
