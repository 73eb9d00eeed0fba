# SPDX-License-Identifier: MIT
"""Running the detector under test, rpms-detect, reading its defaults and
its --trace output.

Only the calibration window (which each data set needs) and, for the
threshold sweep, detect.k_on are written into the temporary configs;
everything else is the daemon's default, read from rpmsd --print-config,
so a change of default is picked up by the next run.
"""

import concurrent.futures
import os
import re
import subprocess
import tempfile

import numpy as np

HEADER = "event,channel,sample,decision_sample"
TRACE_HEADER = "sample,channel,raw,filtered,envelope,sustained,on_threshold,off_threshold"
TRACE_COLUMNS = TRACE_HEADER.split(",")


class DetectorError(Exception):
    """rpms-detect or rpmsd failed or wrote something unexpected."""


def read_defaults(rpmsd):
    """Every key of rpmsd --print-config: {section: {key: value string}}."""
    try:
        out = subprocess.run([rpmsd, "--print-config"], capture_output=True, text=True,
                             check=False, timeout=30)
    except OSError as e:
        raise DetectorError("%s: cannot run: %s" % (rpmsd, e.strerror))
    if out.returncode != 0:
        raise DetectorError("%s --print-config: exit %d: %s"
                            % (rpmsd, out.returncode, out.stderr.strip()))
    conf, section, allowed, last_allowed = {}, None, {}, None
    for line in out.stdout.splitlines():
        line = line.strip()
        m = re.match(r"^\[([^\]]+)\]$", line)
        if m:
            name = m.group(1)
            section = conf.setdefault(name, {})
        elif line.startswith("# allowed:"):
            last_allowed = line[len("# allowed:"):].strip()
        elif section is not None and line and line[0] not in "#;" and "=" in line:
            key, value = line.split("=", 1)
            section[key.strip()] = value.strip()
            allowed["%s.%s" % (name, key.strip())] = last_allowed
            last_allowed = None
    conf["_allowed"] = allowed
    for sec, key in (("detect", "k_on"), ("detect", "k_off"), ("dsp", "envelope_ms")):
        if key not in conf.get(sec, {}):
            raise DetectorError("%s --print-config: no %s.%s in its output" % (rpmsd, sec, key))
    return conf


def allowed_min(defaults, key):
    """The lower bound rpmsd allows for a key such as 'detect.calibration_s'."""
    text = defaults.get("_allowed", {}).get(key) or ""
    m = re.match(r"^([0-9.eE+-]+) to ", text)
    return float(m.group(1)) if m else None


def sweep_keys(k_on):
    """The [detect] (key, value) pairs of a sweep point other than k_on:
    (key, value) for one key, e.g. ("sustain_ms", 20), or a tuple of such
    pairs, e.g. (("rule", "cusum"), ("cusum_h", 45.0)); [] otherwise."""
    if not isinstance(k_on, tuple):
        return []
    return list(k_on) if k_on and isinstance(k_on[0], tuple) else [k_on]


def detect_settings(defaults, rec, k_on=None):
    """The [detect] keys in force for a recording (defaults + its window).
    k_on: None (the default), a k_on value, or the other [detect] keys of a
    sweep point (sweep_keys)."""
    det = dict(defaults["detect"])
    det["calibration_start_s"] = repr(rec.cal_start_s)
    det["calibration_s"] = repr(rec.cal_s)
    if isinstance(k_on, tuple):
        for key, value in sweep_keys(k_on):
            det[key] = value if isinstance(value, str) else repr(value)
    elif k_on is not None:
        det["k_on"] = repr(k_on)
        if float(det["k_off"]) >= k_on:
            det["k_off"] = repr(k_on / 2.0)
    return det


def apply_overrides(defaults, settings):
    """Apply --set SECTION.KEY=VALUE settings to the defaults (in place),
    remembering them so every config written names them."""
    over = defaults.setdefault("_overrides", {})
    for item in settings:
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or section not in ("dsp", "detect"):
            raise DetectorError("--set %r: expected dsp.KEY=VALUE or detect.KEY=VALUE" % item)
        if key not in defaults[section]:
            raise DetectorError("--set %r: rpmsd has no key %s.%s" % (item, section, key))
        defaults[section][key] = value.strip()
        over.setdefault(section, {})[key] = value.strip()
    return defaults


def write_config(folder, rec, defaults, k_on=None):
    """A temporary rpmsd INI file with the keys that differ from the defaults."""
    det = detect_settings(defaults, rec, k_on)
    over = defaults.get("_overrides", {})
    keys = ["calibration_start_s", "calibration_s"] + list(over.get("detect", {}))
    if isinstance(k_on, tuple):
        keys += [key for key, _ in sweep_keys(k_on)]
    elif k_on is not None:
        keys += ["k_on", "k_off"]
    fd, path = tempfile.mkstemp(prefix="detect-", suffix=".conf", dir=folder)
    with os.fdopen(fd, "w") as f:
        # rpms-detect insists on source.file in a config even though the
        # INPUT argument is what it reads; name the same file.
        f.write("# written by bench/eval for %s\n[source]\nfile = %s\n"
                % (rec.name, os.path.abspath(rec.path)))
        # The recording's own [dsp] keys (its mains frequency, as --mains
        # would set it), then the --set overrides, which win.
        dsp = dict(getattr(rec, "dsp", None) or {})
        dsp.update(over.get("dsp", {}))
        if dsp:
            f.write("[dsp]\n" + "".join("%s = %s\n" % kv for kv in dsp.items()))
        f.write("[detect]\n")
        for key in dict.fromkeys(keys):
            f.write("%s = %s\n" % (key, det[key]))
    return path


def parse_events(text, exe, rec_path):
    """rpms-detect's CSV: a list of (event, channel, sample, decision)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != HEADER:
        raise DetectorError("%s %s: expected the header %r, got %r"
                            % (exe, rec_path, HEADER, lines[0] if lines else ""))
    events = []
    for n, line in enumerate(lines[1:], 2):
        cells = line.split(",")
        if len(cells) != 4 or cells[0] not in ("onset", "offset"):
            raise DetectorError("%s %s: output line %d: %r" % (exe, rec_path, n, line))
        try:
            events.append((cells[0], cells[1], int(cells[2]), int(cells[3])))
        except ValueError:
            raise DetectorError("%s %s: output line %d: %r" % (exe, rec_path, n, line))
    return events


def run(exe, rec_path, config=None, extra=()):
    """Run rpms-detect on one file; returns its events."""
    cmd = [exe] + (["--config", config] if config else []) + list(extra) + [rec_path]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    except OSError as e:
        raise DetectorError("%s: cannot run: %s" % (exe, e.strerror))
    if out.returncode != 0:
        raise DetectorError("%s: exit %d: %s" % (" ".join(cmd), out.returncode,
                                                 out.stderr.strip()[:500]))
    return parse_events(out.stdout, exe, rec_path)


def onsets_of(events):
    """(sample, decision) arrays of the onset events."""
    ons = [(s, d) for ev, _, s, d in events if ev == "onset"]
    return ([s for s, _ in ons], [d for _, d in ons])


def run_many(exe, jobs, tmp, defaults, workers=2):
    """Run rpms-detect for every (key, recording, k_on) job, in parallel.

    Returns {key: (onset samples, decision samples)}."""
    def one(job):
        key, rec, k_on = job
        conf = write_config(tmp, rec, defaults, k_on)
        try:
            return key, onsets_of(run(exe, rec.path, conf))
        finally:
            os.unlink(conf)

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, jobs))


def read_trace(path, exe="rpms-detect"):
    """rpms-detect --trace CSV of a one-channel recording as numpy arrays,
    one per column ({name: array}); the thresholds are NaN until the
    detector is calibrated."""
    with open(path, encoding="ascii") as f:
        text = f.read()
    head, sep, body = text.partition("\n")
    if head.strip() != TRACE_HEADER:
        raise DetectorError("%s --trace %s: expected the header %r, got %r"
                            % (exe, path, TRACE_HEADER, head.strip()))
    # Empty threshold cells (before calibration) become NaN.
    body = body.replace(",,\n", ",nan,nan\n").replace("\n", ",")
    try:
        vals = np.array(body.rstrip(",").split(","), dtype=float)
        vals = vals.reshape(-1, len(TRACE_COLUMNS))
    except ValueError as e:
        raise DetectorError("%s --trace %s: unreadable: %s" % (exe, path, e))
    if np.any(vals[:, 1] != 0):
        raise DetectorError("%s --trace %s: more than one channel" % (exe, path))
    if not np.array_equal(vals[:, 0], np.arange(len(vals))):
        raise DetectorError("%s --trace %s: samples not consecutive from 0" % (exe, path))
    return {name: vals[:, i] for i, name in enumerate(TRACE_COLUMNS)}


def check_trace(trace, decisions, where, rule="sustained"):
    """Every onset decision must fall on a sample whose sustained envelope
    is above the onset threshold, or the trace is not of this run. (Under
    detect.rule = cusum the trace does not show the rule's evidence, and
    the sustained envelope need not be above the threshold: nothing to
    check.)"""
    if rule != "sustained":
        return
    sus, thr = trace["sustained"], trace["on_threshold"]
    bad = [d for d in decisions if not (d < len(sus) and sus[d] > thr[d])]
    if bad:
        raise DetectorError("%s: the trace disagrees with the onsets: decisions at %s "
                            "are not above the onset threshold" % (where, bad[:5]))


def trace_many(exe, recs, tmp, defaults, workers=2):
    """rpms-detect --trace at the defaults on every recording.

    Returns {path: {"onsets", "decisions", and every trace column}}; the
    trace file is read and removed at once (a 30 s recording at 2 kHz is
    about 4 MB of CSV)."""
    def one(rec):
        conf = write_config(tmp, rec, defaults)
        fd, path = tempfile.mkstemp(prefix="trace-", suffix=".csv", dir=tmp)
        os.close(fd)
        try:
            ons, dec = onsets_of(run(exe, rec.path, conf, ["--trace", path]))
            tr = read_trace(path, exe)
        finally:
            os.unlink(conf)
            os.unlink(path)
        check_trace(tr, dec, "%s --trace %s" % (exe, rec.path),
                    defaults["detect"].get("rule", "sustained"))
        tr["onsets"], tr["decisions"] = ons, dec
        return rec.path, tr

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, recs))
