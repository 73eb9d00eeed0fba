#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rpmsd --check-prescription, the real binary on real files: the examples
in config/ are accepted with their summary (frequency class, the six
NIBS-BIDS timing parameters), a bad file is refused with FILE:LINE: key,
and with --config a preset is held to that configuration's safety limits."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpmsd_rig as rig  # noqa: E402
from rpmsd_rig import check  # noqa: E402

TMP = tempfile.mkdtemp(prefix="rpmsd-rx-")
atexit.register(shutil.rmtree, TMP, True)


def rpmsd(*args):
    return subprocess.run([rig.RPMSD] + list(args), capture_output=True, text=True, timeout=60)


def copy(name):
    """A file of config/ copied into the temporary directory."""
    path = os.path.join(TMP, name)
    shutil.copyfile(os.path.join(rig.SOURCE, "config", name), path)
    return path


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_example_summary():
    path = copy("prescription-example.rx")
    r = rpmsd("--check-prescription", path)
    check(r.returncode == 0, r.stderr)
    check(r.stderr == "", r.stderr)
    for line in ("patient: P-0042",
                 "course: C-0042-1, 10 sessions, at most 1 a day, at least 20 h apart",
                 "target: nerve_trunk radial, right; coil: round coil, 70 mm; "
                 "position: lateral upper arm, over the spiral groove",
                 "protocol: on_off, 1200 pulses a session",
                 "intensity: 110 % of the session's measured motor threshold",
                 "frequency class: high (25 Hz)",
                 "inter-pulse interval: 0.04 s",
                 "pulses per burst: 25",
                 "inter-burst interval: n/a (one burst a train)",
                 "bursts per train: 1",
                 "inter-train interval: 2 s",
                 "trains per protocol: 48",
                 "%s: prescription is valid" % path):
        check(line + "\n" in r.stdout, "missing %r in %r" % (line, r.stdout))


def test_preset_summary():
    path = copy("prescription-itbs.rx")
    r = rpmsd("--check-prescription", path)
    check(r.returncode == 0, r.stderr)
    for line in ("protocol: theta_burst, preset itbs, 600 pulses a session",
                 "intensity: 40 % of maximum output",
                 "frequency class: high (50 Hz)",
                 'timing: {"inter_pulse_interval_s": 0.02, "pulses_per_burst": 3, '
                 '"inter_burst_interval_s": 0.2, "bursts_per_train": 10, '
                 '"inter_train_interval_s": 8, "trains": 20}'):
        check(line + "\n" in r.stdout, "missing %r in %r" % (line, r.stdout))


def expect_refused(path, message, *extra):
    r = rpmsd("--check-prescription", path, *extra)
    check(r.returncode == 1, "exit %d, stderr %r" % (r.returncode, r.stderr))
    check(r.stdout == "", "printed %r" % r.stdout)
    check(r.stderr == "rpmsd: %s%s\n" % (path, message), "stderr %r, wanted %r" % (r.stderr, message))


def test_bad_files():
    with open(copy("prescription-example.rx")) as f:
        good = f.read()
    expect_refused(write("name.rx", good.replace("id = P-0042", "id = John Smith")),
                   ":6: patient.id: 'John Smith' has ' ', not a code (allowed: a pseudonymous "
                   "code: 1 to 36 of A-Z, a-z, 0-9, - and _, with a digit; never a name)")
    expect_refused(write("site.rx", good.replace("site = radial", "site = triceps")),
                   ":16: target.site: 'triceps' is not a nerve for kind = nerve_trunk (line 15) "
                   "(allowed: radial, median, ulnar, tibial, peroneal)")
    expect_refused(write("both.rx", good + "max_output_pct = 30\n"),
                   ":31: intensity.max_output_pct: set with intensity.motor_threshold_pct "
                   "(line 30) (allowed: exactly one of motor_threshold_pct, max_output_pct)")
    expect_refused(write("theta.rx", good.replace("pulses = 1200", "pulses = 1200\ntheta_bursts = 4")),
                   ":27: protocol.theta_bursts: not used by pattern = on_off (line 22) "
                   "(allowed: only with theta_burst)")
    expect_refused(write("trains.rx", good.replace("pulses = 1200", "pulses = 1210")),
                   ":26: protocol.pulses: 1210 is not a whole number of trains of 25 pulses "
                   "(allowed: a multiple of 25, e.g. 1225)")
    expect_refused(os.path.join(TMP, "missing.rx"), ": cannot open: No such file or directory")


def test_preset_held_to_the_config():
    """A preset goes through the configuration's checks like any protocol."""
    rx = copy("prescription-itbs.rx")
    conf = write("rpmsd.conf", "[source]\nfile = emg.txt\n")
    expect_refused(rx, ": stim.theta_frequency_hz: 50 exceeds safety.max_frequency_hz = 25 "
                   "(allowed: 1 to 25 Hz)", "--config", conf)
    # with 50 Hz allowed, the built-in train table has no row for it: refused still
    conf = write("fast.conf", "[source]\nfile = emg.txt\n[safety]\nmax_frequency_hz = 50\n"
                 "motor_threshold_pct = 35\n")
    expect_refused(rx, ": stim.protocol = theta_burst: a train of 30 pulses at 50 Hz lasts 0.6 s, "
                   "longer than the 0 s that safety.train_table allows at 50 Hz and 114.3 % of "
                   "motor threshold (stim.intensity_pct 40 % / safety.motor_threshold_pct 35 %) "
                   "(outside the table: no rate or intensity that high is listed)",
                   "--config", conf)
    # the example at the threshold itself (measured: 40 % output) passes the defaults
    with open(copy("prescription-example.rx")) as f:
        at_mt = write("at-mt.rx", f.read().replace("motor_threshold_pct = 110",
                                                  "motor_threshold_pct = 100"))
    conf = write("mt.conf", "[source]\nfile = emg.txt\n[safety]\nmotor_threshold_pct = 40\n")
    r = rpmsd("--check-prescription", at_mt, "--config", conf)
    check(r.returncode == 0, r.stderr)
    check("%s: the protocol passes the safety checks of %s\n" % (at_mt, conf) in r.stdout, r.stdout)
    # 40 % of maximum output against a 30 % cap: the intensity rule
    conf = write("weak.conf", "[source]\nfile = emg.txt\n[safety]\nmotor_threshold_pct = 40\n"
                 "max_intensity_pct = 30\n")
    expect_refused(at_mt, ": stim.intensity_pct: 40 exceeds safety.max_intensity_pct = 30 "
                   "(allowed: 0 to 30 %)", "--config", conf)


def test_docs_list_every_key_and_preset():
    """docs/prescriptions.md names every key of the table and every preset."""
    import re
    with open(os.path.join(rig.SOURCE, "daemon", "prescription_key.c")) as f:
        table = f.read()
    keys = re.findall(r'\.section = "(\w+)", \.key = "(\w+)"', table)
    check(len(keys) >= 20, keys)
    with open(os.path.join(rig.SOURCE, "docs", "prescriptions.md")) as f:
        doc = f.read()
    missing = ["%s.%s" % k for k in keys if "| `%s.%s` |" % k not in doc]
    check(not missing, "keys not in docs/prescriptions.md: %s" % missing)
    with open(os.path.join(rig.SOURCE, "daemon", "prescription_preset.c")) as f:
        presets = re.findall(r'\.name = "(\w+)"', f.read())
    check(len(presets) == 3, presets)
    missing = [p for p in presets if "| `%s` |" % p not in doc]
    check(not missing, "presets not in docs/prescriptions.md: %s" % missing)


if __name__ == "__main__":
    rig.run_tests([
        test_example_summary,
        test_preset_summary,
        test_bad_files,
        test_preset_held_to_the_config,
        test_docs_list_every_key_and_preset,
    ])
