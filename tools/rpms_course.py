# SPDX-License-Identifier: MIT
"""rpms_course: what rpms-report and rpms-bids share to read a course.

The configuration (rpmsd's defaults under rpmsd.conf), the patient of a
course (course.prescriptions), the course itself (`rpmsctl course --json`,
the configuration's database; the daemon need not run), the stored
prescription described by `rpmsd --check-prescription`, and where the
programs are. Each tool decides what a failure means for it (the report
warns where the export refuses); this module only reads.

Installed beside the tools' data (share/rpmsd/python); the tools find it
beside themselves in the source tree, or there from bindir.
"""

import configparser
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile


class Refused(Exception):
    """A tool's run refused: (message, exit status)."""

    def __init__(self, msg, status=1):
        super().__init__(msg)
        self.status = status


def read_config(path, rpmsd):
    """rpmsd.conf over rpmsd's defaults (`rpmsd --print-config`), as a ConfigParser."""
    cp = configparser.ConfigParser(interpolation=None, strict=False,
                                   comment_prefixes=("#", ";"))
    try:
        p = subprocess.run([rpmsd, "--print-config"], capture_output=True, text=True)
    except OSError as e:
        raise Refused("%s: %s" % (rpmsd, e), 4)
    if p.returncode != 0:
        raise Refused("rpmsd --print-config: %s" % p.stderr.strip(), 4)
    try:
        cp.read_string(p.stdout, "rpmsd --print-config")
        if path is not None:
            with open(path) as f:
                cp.read_file(f)
    except (OSError, configparser.Error) as e:
        raise Refused("%s: %s" % (path, e), 4)
    return cp


def conf_get(cp, section, key, default=""):
    """A key of the configuration, stripped; @default when absent."""
    if not cp.has_option(section, key):
        return default
    return cp.get(section, key).strip()


def conf_path(cp, config, section, key):
    """A path key of the configuration, relative to its directory as rpmsd reads it."""
    v = conf_get(cp, section, key)
    if not v:
        return None
    base = os.path.dirname(os.path.abspath(config)) if config else os.getcwd()
    return v if os.path.isabs(v) else os.path.join(base, v)


def find_patient(cp, config, course):
    """The patient of COURSE: the prescription file in course.prescriptions whose
    course.id is COURSE (as the daemon finds it)."""
    rx_dir = conf_path(cp, config, "course", "prescriptions")
    if not rx_dir:
        raise Refused("course %s: give --patient, or --config naming a configuration with "
                      "course.prescriptions" % course, 2)
    for path in sorted(glob.glob(os.path.join(rx_dir, "*.rx"))):
        rx = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            with open(path) as f:
                rx.read_file(f)
        except (OSError, configparser.Error):
            continue
        if rx.get("course", "id", fallback="").strip() == course:
            return rx.get("patient", "id", fallback="").strip()
    raise Refused("course %s: no prescription with that course.id in %s (give --patient)"
                  % (course, rx_dir), 1)


def read_course(rpmsctl, patient, course, config):
    """`rpmsctl course PATIENT --course COURSE --json`: (the whole report, the
    course's entry), or Refused with rpmsctl's own status (1 refused, 3 the
    database unreachable, 4 local)."""
    cmd = [rpmsctl, "course", patient, "--course", course, "--json"]
    if config:
        cmd += ["--config", config]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise Refused("%s: %s" % (rpmsctl, e), 4)
    if p.returncode != 0:
        raise Refused("rpmsctl course: %s" % p.stderr.strip(),
                      p.returncode if p.returncode in (1, 3, 4) else 4)
    try:
        report = json.loads(p.stdout)
    except ValueError as e:
        raise Refused("rpmsctl course --json: %s" % e, 4)
    courses = [c for c in report["courses"] if c.get("course") == course]
    if len(courses) != 1:
        raise Refused("course %s of patient %s: not in the course database" % (course, patient),
                      1)
    return report, courses[0]


def check_prescription(rpmsd, text, prefix):
    """`rpmsd --check-prescription` on the stored prescription text: (None,
    its summary lines by key) when rpmsd accepts it, else (why, {}) with the
    temporary file's name replaced by "prescription"."""
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        path = os.path.join(d, "course.rx")
        with open(path, "w") as f:
            f.write(text)
        try:
            p = subprocess.run([rpmsd, "--check-prescription", path], capture_output=True,
                               text=True)
        except OSError as e:
            raise Refused("%s: %s" % (rpmsd, e), 4)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if p.returncode != 0:
        return (p.stdout + p.stderr).strip().replace(path, "prescription"), {}
    summary = {}
    for line in p.stdout.splitlines():
        k, sep, v = line.partition(": ")
        if sep and k not in summary:
            summary[k] = v
    return None, summary


def default_config(rpmsd):
    """The installed configuration rpmsd and rpmsctl read by default (`rpmsd
    --help`: "configuration (default FILE)"), or None."""
    try:
        p = subprocess.run([rpmsd, "--help"], capture_output=True, text=True)
    except OSError:
        return None
    m = re.search(r"configuration \(default ([^)\s]+)\)", p.stdout)
    return m.group(1) if m and os.path.isfile(m.group(1)) else None


def installed(name, subdir, script):
    """@name on PATH, else beside the installation of @script (the tool's
    __file__: bindir/../subdir)."""
    found = shutil.which(name)
    if found:
        return found
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(script))), subdir,
                        name)
    return here if os.path.exists(here) else name
