#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Installing rpmsd as a service: `meson install --destdir` into a
staging root puts every file where the system looks for it, keeps an
administrator's configuration, and what it installs passes systemd's and
groff's own checks: systemd-analyze verify and security (offline) on the
unit, systemd-sysusers on the user, groff on the man pages. No systemd
needs to run: the staging root gets the host's unit files and /bin/kill,
and the tools look only there (--root)."""

import grp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from rpmsd_rig import check, run_tests  # noqa: E402

BUILD = os.environ.get("RPMSD_BUILD_ROOT", "")
SOURCE = os.environ.get("RPMSD_SOURCE_ROOT", "")
TMP = tempfile.mkdtemp(prefix="rpmsd-install-")
STAGE = os.path.join(TMP, "stage")
# Highest exposure accepted from systemd-analyze security, x 10 (--threshold).
EXPOSURE_MAX_X10 = 20


def sh(args, ok=(0,), **kw):
    kw.setdefault("timeout", 300)
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    check(r.returncode in ok, "%s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                    r.stdout, r.stderr))
    return r


def install(destdir):
    """meson install, in a session of its own: no controlling terminal, so
    nothing of it reaches the terminal of whoever runs the tests."""
    return sh(["meson", "install", "--no-rebuild", "--quiet", "-C", BUILD, "--destdir", destdir],
              stdin=subprocess.DEVNULL, start_new_session=True)


def build_options():
    r = sh(["meson", "introspect", "--buildoptions", BUILD])
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


def pkg_variable(package, variable):
    r = subprocess.run(["pkg-config", "--variable=" + variable, package],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


OPT = build_options()
PREFIX = OPT["prefix"]


def under_prefix(opt):
    return os.path.join(PREFIX, OPT[opt])


SBINDIR = under_prefix("sbindir")
BINDIR = under_prefix("bindir")
LIBDIR = under_prefix("libdir")
CONFDIR = os.path.join(under_prefix("sysconfdir"), "rpmsd")
MANDIR = under_prefix("mandir")
# Where systemd and udev read their files, whatever the prefix.
UNITDIR = (OPT.get("systemdunitdir") or pkg_variable("systemd", "systemdsystemunitdir") or
           os.path.join(PREFIX, "lib/systemd/system"))
SYSUSERSDIR = pkg_variable("systemd", "sysusersdir") or os.path.join(PREFIX, "lib/sysusers.d")
UDEVRULESDIR = (os.path.join(pkg_variable("udev", "udevdir"), "rules.d")
                if pkg_variable("udev", "udevdir") else "/usr/lib/udev/rules.d")
UNIT = os.path.join(UNITDIR, "rpmsd.service")
CONF = os.path.join(CONFDIR, "rpmsd.conf")
PLUGINS = [p for p in ("sim", "gpio", "spi")
           if os.path.exists(os.path.join(BUILD, "plugins", p, p + ".so"))]
MAN_PAGES = [os.path.join(MANDIR, "man8", "rpmsd.8"),
             os.path.join(MANDIR, "man5", "rpmsd.conf.5"),
             os.path.join(MANDIR, "man1", "rpmsctl.1")]


COURSE_MODULE = os.path.join(under_prefix("datadir"), "rpmsd", "python", "rpms_course.py")


def staged(path):
    return STAGE + path


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def unit_values(text, key):
    """Every value of KEY= in a unit file's text, in order."""
    return [m.group(1).strip() for m in re.finditer(r"^%s=(.*)$" % re.escape(key), text, re.M)]


def test_install_puts_every_file_in_its_place():
    before = os.path.exists(CONF) and read(CONF)
    install(STAGE)
    expected = {
        os.path.join(SBINDIR, "rpmsd"): "the daemon",
        os.path.join(under_prefix("includedir"), "rpmsd", "coil.h"): "the plugin header",
        os.path.join(LIBDIR, "pkgconfig", "rpmsd-coil.pc"): "its pkg-config file",
        CONF: "the configuration",
        UNIT: "the unit",
        os.path.join(SYSUSERSDIR, "rpmsd.conf"): "the sysusers.d file",
        os.path.join(UDEVRULESDIR, "60-rpmsd.rules"): "the udev rules",
    }
    for tool in ("rpms-report", "rpms-bids"):
        expected[os.path.join(BINDIR, tool)] = "a course tool"
    expected[COURSE_MODULE] = "what rpms-report and rpms-bids share"
    for p in PLUGINS:
        expected[os.path.join(LIBDIR, "rpmsd", "plugins", p + ".so")] = "the %s plugin" % p
    for page in MAN_PAGES:
        expected[page] = "a man page"
    missing = ["%s (%s)" % (p, what) for p, what in expected.items()
               if not os.path.isfile(staged(p))]
    check(not missing, "not installed: %s" % ", ".join(missing))
    check(os.access(staged(os.path.join(SBINDIR, "rpmsd")), os.X_OK), "rpmsd not executable")
    check(read(staged(CONF)) == read(os.path.join(SOURCE, "config", "rpmsd.conf")),
          "the installed rpmsd.conf is not config/rpmsd.conf")
    check(not os.path.exists(staged(CONF) + ".dist"), "a .dist beside a fresh rpmsd.conf")
    # DESTDIR honoured: the real system's configuration is untouched.
    check((os.path.exists(CONF) and read(CONF)) == before, "%s changed outside DESTDIR" % CONF)
    unit = read(staged(UNIT))
    want = "%s/rpmsd --config %s" % (SBINDIR, CONF)
    check(unit_values(unit, "ExecStart") == [want],
          "ExecStart=%r, want %r" % (unit_values(unit, "ExecStart"), want))
    check(not re.search(r"@[a-z_]+@", unit), "an unsubstituted @variable@ in the unit")


def test_course_tools_run_installed():
    """rpms-report and rpms-bids find their shared module (rpms_course.py)
    where it is installed, away from the source tree: and not without it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}

    def run(tool, args):
        return subprocess.run([staged(os.path.join(BINDIR, tool))] + args, capture_output=True,
                              text=True, cwd=TMP, env=env, timeout=60)
    for tool, args in (("rpms-report", ["--help"]), ("rpms-bids", ["export", "--help"])):
        r = run(tool, args)
        check(r.returncode == 0 and "usage: %s" % tool in r.stdout,
              "installed %s: exit %d %s" % (tool, r.returncode, r.stderr[-500:]))
    module = staged(COURSE_MODULE)
    os.rename(module, module + ".away")
    try:
        r = run("rpms-report", ["--help"])
    finally:
        os.rename(module + ".away", module)
    check(r.returncode != 0 and "rpms_course" in r.stderr,
          "rpms-report without its module: exit %d %r" % (r.returncode, r.stderr[-300:]))


def test_second_install_keeps_a_changed_config():
    conf = staged(CONF)
    dist = conf + ".dist"
    default = read(os.path.join(SOURCE, "config", "rpmsd.conf"))
    install(STAGE)      # unchanged: nothing to say, no .dist
    check(read(conf) == default and not os.path.exists(dist), "unchanged config: .dist written")
    edited = default.replace("log_level = info", "log_level = debug")
    check(edited != default, "config/rpmsd.conf has no 'log_level = info' to edit")
    with open(conf, "w") as f:
        f.write(edited)
    # Under a pseudo-terminal, as an administrator runs it: the notice must
    # reach the terminal even though meson hides its scripts' output.
    cmd = "meson install --no-rebuild --quiet -C '%s' --destdir '%s'" % (BUILD, STAGE)
    r = sh(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL)
    check(read(conf) == edited, "the administrator's rpmsd.conf was overwritten")
    check(os.path.isfile(dist) and read(dist) == default,
          "the new default is not beside it as rpmsd.conf.dist")
    check("kept your %s" % conf in r.stdout and dist in r.stdout,
          "the install did not say so: %r" % r.stdout)
    # Once more: still kept, .dist still the default.
    install(STAGE)
    check(read(conf) == edited and read(dist) == default, "third install changed them")


def verify_root():
    """The staging root plus what the unit refers to on a real system:
    systemd's own units (sysinit.target, ...) and /bin/sh (ExecReload=)."""
    units = os.path.join(STAGE, "usr", "lib", "systemd", "system")
    if not os.path.exists(os.path.join(units, "sysinit.target")):
        shutil.copytree("/lib/systemd/system", units, symlinks=True, dirs_exist_ok=True)
    os.makedirs(os.path.join(STAGE, "bin"), exist_ok=True)
    if not os.path.exists(staged("/bin/sh")):
        shutil.copy2("/bin/sh", staged("/bin/sh"))
    return STAGE


def test_unit_verifies():
    root = verify_root()
    r = sh(["systemd-analyze", "verify", "--root=" + root, UNIT], ok=(0, 1))
    check(r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(),
          "systemd-analyze verify: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
    # The check can fail: without the daemon it does.
    daemon = staged(os.path.join(SBINDIR, "rpmsd"))
    os.rename(daemon, daemon + ".away")
    try:
        r = sh(["systemd-analyze", "verify", "--root=" + root, UNIT], ok=(0, 1))
    finally:
        os.rename(daemon + ".away", daemon)
    check(r.returncode != 0 and "is not executable" in r.stderr,
          "verify without the daemon: exit %d %r" % (r.returncode, r.stderr))


def test_security_exposure():
    root = verify_root()
    args = ["systemd-analyze", "security", "--offline=yes", "--root=" + root,
            "--threshold=%d" % EXPOSURE_MAX_X10]
    r = sh(args + ["--no-pager", UNIT], ok=(0, 1))
    m = re.search(r"Overall exposure level for rpmsd\.service: ([0-9.]+)", r.stdout)
    check(m, "no exposure level in %r" % r.stdout[-500:])
    print("exposure: %s (systemd-analyze security --offline, at most %.1f)"
          % (m.group(1), EXPOSURE_MAX_X10 / 10), flush=True)
    check(r.returncode == 0 and float(m.group(1)) <= EXPOSURE_MAX_X10 / 10,
          "exposure %s above %.1f (exit %d)" % (m.group(1), EXPOSURE_MAX_X10 / 10, r.returncode))
    r = sh(args + ["--json=short", UNIT])
    checks = {c["name"]: c["set"] for c in json.loads(r.stdout)}
    # Hardening that would break the daemon must stay off: SCHED_FIFO,
    # the event stream over tcp.
    check(checks.get("RestrictRealtime=") is False, "RestrictRealtime= is set: no SCHED_FIFO")
    check(checks.get("PrivateNetwork=") is False, "PrivateNetwork= is set: no tcp stream")
    for name in ("User=/DynamicUser=", "NoNewPrivileges=", "ProtectSystem=",
                 "ProtectKernelTunables=", "MemoryDenyWriteExecute=", "SystemCallArchitectures=",
                 "ProtectProc=", "UMask="):
        check(checks.get(name) is True, "%s not set: %r" % (name, checks.get(name)))


def test_user_and_group_agree():
    """systemd-sysusers parses the installed file and would create the
    user and group the unit runs as and the udev rules hand devices to."""
    r = sh(["systemd-sysusers", "--root=" + STAGE, "--dry-run"])
    out = r.stdout + r.stderr
    check("Creating user 'rpmsd'" in out and "Creating group 'rpmsd'" in out, out)
    check(not re.search(r"(?i)error|garbage|unknown|invalid|failed", out), out)
    unit = read(staged(UNIT))
    check(unit_values(unit, "User") == ["rpmsd"] and unit_values(unit, "Group") == ["rpmsd"],
          "User=%r Group=%r" % (unit_values(unit, "User"), unit_values(unit, "Group")))
    rules = read(staged(os.path.join(UDEVRULESDIR, "60-rpmsd.rules")))
    groups = set(re.findall(r'GROUP="([^"]*)"', rules))
    check(groups == {"rpmsd"}, "udev GROUP=%r" % groups)


def test_udev_iio_attributes():
    """The RUN program of the IIO rule, on a copy of an IIO device's sysfs
    layout: the attributes libiio writes become writable by the group, as
    far as they are by the owner; nothing else does. (No udev runs here;
    udevadm verify is newer than Debian 12's systemd.)"""
    rules = read(staged(os.path.join(UDEVRULESDIR, "60-rpmsd.rules")))
    m = re.search(r"""RUN\+="/bin/sh -c '(.*)'"$""", rules, re.M)
    check(m, "no RUN+= of /bin/sh in the rules")
    dev = os.path.join(TMP, "sys", "iio:device0")
    files = {"sampling_frequency": 0o644, "current_timestamp_clock": 0o644, "name": 0o444,
             "in_voltage0_raw": 0o444, "in_voltage0_calibbias": 0o644,
             "buffer/enable": 0o644, "buffer/length": 0o644, "buffer/data_available": 0o444,
             "buffer0/enable": 0o644, "scan_elements/in_voltage0_en": 0o644,
             "scan_elements/in_voltage0_type": 0o444, "trigger/current_trigger": 0o644,
             "power/control": 0o644}
    for name, mode in files.items():
        path = os.path.join(dev, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w"):
            pass
        os.chmod(path, mode)
    # udev's substitutions: %p the device path, $$ a dollar; the group
    # becomes ours (rpmsd need not exist here).
    group = grp.getgrgid(os.getgid()).gr_name
    script = (m.group(1).replace("/sys%p", dev).replace("$$", "$")
              .replace("chgrp rpmsd", "chgrp " + group))
    check("%" not in script and "$$" not in script and "chgrp " + group in script,
          "substitution left %r" % script)
    sh(["/bin/sh", "-c", script])
    touched = {"sampling_frequency", "current_timestamp_clock", "buffer/enable",
               "buffer/length", "buffer/data_available", "buffer0/enable",
               "scan_elements/in_voltage0_en", "trigger/current_trigger"}
    for name, mode in files.items():
        got = os.stat(os.path.join(dev, name)).st_mode & 0o777
        # g=u: the group gets the owner's rights, read-only stays read-only
        want = (mode & ~0o070) | ((mode & 0o700) >> 3) if name in touched else mode
        check(got == want, "%s: mode %o, want %o" % (name, got, want))
    # A device with none of them (a removed device): the rule still succeeds.
    sh(["/bin/sh", "-c", m.group(1).replace("/sys%p", os.path.join(TMP, "gone"))
        .replace("$$", "$")])


def test_man_pages():
    for page in MAN_PAGES:
        path = staged(page)
        r = sh(["groff", "-ww", "-man", "-z", path])
        check(not r.stderr.strip(), "groff -ww %s:\n%s" % (page, r.stderr))
        env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80", LC_ALL="C.UTF-8")
        r = sh(["man", "--warnings", "-l", path], env=env)
        check(not r.stderr.strip(), "man --warnings %s:\n%s" % (page, r.stderr))
        check(len(r.stdout) > 1000, "%s renders to %d characters" % (page, len(r.stdout)))


def test_rpmsd_8_documents_every_option():
    """Every long option of `rpmsd --help` and every exit status it lists
    is in rpmsd(8)."""
    daemon = staged(os.path.join(SBINDIR, "rpmsd"))
    help_text = sh([daemon, "--help"]).stdout
    page = read(staged(MAN_PAGES[0]))

    def section(title):
        return page.split(".SH %s\n" % title, 1)[-1].split("\n.SH ", 1)[0]

    options = set(re.findall(r"--([a-z][a-z-]+)", help_text))
    check(len(options) >= 6, "options in --help: %r" % options)
    described = section("OPTIONS")
    undocumented = [o for o in sorted(options)
                    if not re.search(r"^\.B[IR]? .*\\-\\-%s\b" % re.escape(o.replace("-", "\\-")),
                                     described, re.M)]
    check(not undocumented, "rpmsd(8) OPTIONS lacks --%s" % ", --".join(undocumented))
    status = section("EXIT STATUS")
    codes = re.findall(r"(\d) [a-z]", help_text.split("Exit status:", 1)[-1])
    check(codes and all(".B %s\n" % c in status for c in codes),
          "exit statuses %r not all in rpmsd(8)" % codes)


def test_rpmsd_conf_5_documents_every_key():
    """rpmsd.conf(5) lists every section and key the installed daemon
    prints with --print-config, and every key of each plugin, with its
    default."""
    daemon = staged(os.path.join(SBINDIR, "rpmsd"))
    page = read(staged(MAN_PAGES[1]))

    def keys_of(text):
        out, section = [], None
        for line in text.splitlines():
            s = re.match(r"^\[(.+)\]$", line)
            if s:
                section = s.group(1)
            kv = re.match(r"^([a-z0-9_]+) = ?(.*)$", line)
            if kv:
                out.append((section, kv.group(1), kv.group(2).strip()))
        return out

    def roff(s):
        return s.replace("\\", "\\e").replace("-", "\\-")

    keys = keys_of(sh([daemon, "--print-config"]).stdout)
    env = dict(os.environ, RPMSD_PLUGIN_PATH=staged(os.path.join(LIBDIR, "rpmsd", "plugins")))
    for p in PLUGINS:
        keys += keys_of(sh([daemon, "--plugin-keys", p], env=env).stdout)
    check(len(keys) > 90, "only %d keys" % len(keys))
    parts = re.split(r"^\.SS \[(.+)\]$", page, flags=re.M)
    sections = {roff_name.replace("\\-", "-"): body
                for roff_name, body in zip(parts[1::2], parts[2::2])}
    missing = []
    for section, key, default in keys:
        body = sections.get(section, "")
        m = re.search(r"^\.B %s\n(.*?)(?=^\.TP|\Z)" % re.escape(roff(key)), body, re.M | re.S)
        if not m:
            missing.append("%s.%s" % (section, key))
            continue
        want = "Default: empty." if default == "" else '.BR "%s" .' % roff(default)
        if want not in m.group(1) and not any(ord(c) > 127 for c in default):
            missing.append("%s.%s's default %r" % (section, key, default))
    check(not missing, "rpmsd.conf(5) lacks: %s" % ", ".join(missing))


if __name__ == "__main__":
    import atexit

    atexit.register(shutil.rmtree, TMP, True)
    run_tests([
        test_install_puts_every_file_in_its_place,
        test_course_tools_run_installed,
        test_second_install_keeps_a_changed_config,
        test_unit_verifies,
        test_security_exposure,
        test_user_and_group_agree,
        test_udev_iio_attributes,
        test_man_pages,
        test_rpmsd_8_documents_every_option,
        test_rpmsd_conf_5_documents_every_key,
    ])
