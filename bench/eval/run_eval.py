#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Onset-detection accuracy of rpms-detect (the daemon's causal detector)
against ground truth and three offline reference detectors.

    /usr/bin/python3 bench/eval/run_eval.py --build build

writes docs/detection.md and docs/detection/*.png. With --quick (the meson
benchmark 'detection') it runs fewer injected recordings, no threshold
sweep, no figures, and prints the same tables and targets without writing
the document. Generated recordings go to BUILD/eval-work.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import datasets  # noqa: E402
import detector  # noqa: E402
import emgio  # noqa: E402
import references  # noqa: E402
import report  # noqa: E402
import scoring  # noqa: E402

DET = "rpms-detect"
HUM_PER_SET = 48


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(REPO, "build"),
                   help="meson build directory (default: %(default)s)")
    p.add_argument("--detector", help="rpms-detect binary (default: BUILD/tools/rpms-detect)")
    p.add_argument("--rpmsd", help="rpmsd binary, for its defaults (default: BUILD/daemon/rpmsd)")
    p.add_argument("--data", default=os.path.join(REPO, "data", "emg"),
                   help="the bundled EMG data folder (default: %(default)s)")
    p.add_argument("--emg1", default=os.path.join(REPO, "data", "emg", "emg_1.txt"),
                   help="the bundled real recording (default: %(default)s)")
    p.add_argument("--work", help="where generated recordings go (default: BUILD/eval-work)")
    p.add_argument("--doc", default=os.path.join(REPO, "docs", "detection.md"),
                   help="report to write (default: %(default)s)")
    p.add_argument("--figures", default=os.path.join(REPO, "docs", "detection"),
                   help="folder of the report's PNGs (default: %(default)s)")
    p.add_argument("--per-set", type=int, help="recordings per injected set (default 30, quick 2)")
    p.add_argument("--hum-per-set", type=int,
                   help="recordings per hum set (default %d, quick 2)" % HUM_PER_SET)
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="build and score only the injected sets whose name contains TEXT "
                        "(repeatable; e.g. --only hum50; implies --no-doc)")
    p.add_argument("--seed", type=int, default=1, help="generator seed (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="rpms-detect runs in parallel")
    p.add_argument("--quick", action="store_true",
                   help="benchmark mode: small sets, no sweep, no figures, no document")
    p.add_argument("--no-doc", action="store_true", help="print the tables only")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="run rpms-detect with this [dsp]/[detect] setting instead of the "
                        "default (repeatable; for tuning experiments, implies --no-doc)")
    args = p.parse_args(argv)
    args.detector = args.detector or os.path.join(args.build, "tools", "rpms-detect")
    args.rpmsd = args.rpmsd or os.path.join(args.build, "daemon", "rpmsd")
    args.work = args.work or os.path.join(args.build, "eval-work")
    args.per_set = args.per_set or (2 if args.quick else 30)
    args.hum_per_set = args.hum_per_set or (2 if args.quick else HUM_PER_SET)
    if args.set or args.only:
        args.no_doc = True
    if args.per_set < 1 or args.hum_per_set < 1:
        p.error("--per-set and --hum-per-set must be at least 1")
    return args


def check_inputs(args):
    """Fail early, naming what is missing and how to get it."""
    for path, what in ((args.detector, "the detector under test"),
                       (args.rpmsd, "rpmsd (its --print-config gives the defaults)")):
        if not os.access(path, os.X_OK):
            sys.exit("run_eval: %s: not found or not executable (%s); build it with "
                     "'ninja -C %s' or pass its path" % (path, what, args.build))
    for sub in ("simulated_onsets/signals.csv", "simulated_onsets/onsets_samples.csv",
                "emg.txt"):
        if not os.path.isfile(os.path.join(args.data, sub)):
            sys.exit("run_eval: %s: missing (the recordings are in the repository's "
                     "data/emg, see its README.md; or pass --data DIR)"
                     % os.path.join(args.data, sub))
    if not os.path.isfile(args.emg1):
        sys.exit("run_eval: %s: missing (pass --emg1 FILE)" % args.emg1)


def build_sets(args, defaults):
    """Every data set, its recordings written under args.work."""
    os.makedirs(args.work, exist_ok=True)
    min_cal = detector.allowed_min(defaults, "detect.calibration_s")
    sets = [datasets.simulated_set(args.data, args.work, min_cal)]
    sets += datasets.injected_sets(args.data, args.work, args.per_set, args.seed,
                                   args.hum_per_set, args.only or None)
    sets += datasets.rest_sets(args.data, args.work)
    sets.append(datasets.emg1_set(args.emg1))
    return sets


def k_on_sweep(defaults):
    """k_on values of the sweep: the default x 2^(i/3), within rpmsd's range
    (the default itself is the run with the unchanged configuration)."""
    k0, k_off = float(defaults["detect"]["k_on"]), float(defaults["detect"]["k_off"])
    vals = [round(k0 * 2.0 ** (i / 3.0), 2) for i in range(-7, 8)]
    return sorted(set(v for v in vals if k_off < v <= 100.0 and abs(v - k0) > 1e-9))


# The second sweep: detect.sustain_ms (the transient rejection, which
# costs decision time) at the default k_on, on the sets that show what it
# buys and costs: injected bursts, clonus, spikes, mains, and real rest.
SUSTAIN_SWEEP_MS = (10, 15, 20, 40, 50)


def sustain_sweep(defaults):
    """sustain_ms values of the second sweep, other than the default."""
    d = float(defaults["detect"].get("sustain_ms", 30))
    return [("sustain_ms", v) for v in SUSTAIN_SWEEP_MS if abs(v - d) > 1e-9]


# The third sweep: detect.rule = cusum (issue 17's decision-latency
# target) over its threshold detect.cusum_h, in spread x ms, on every
# set, as the k_on sweep, so both rules' trade-offs are measured alike.
CUSUM_SWEEP_H = (20, 30, 35, 40, 45, 50, 60, 75, 100)


def cusum_sweep(defaults):
    """The sweep points of detect.rule = cusum: its default cusum_h and
    CUSUM_SWEEP_H, each as the (key, value) pairs written into the config."""
    h0 = float(defaults["detect"].get("cusum_h", 50))
    return [(("rule", "cusum"), ("cusum_h", float(h)))
            for h in sorted(set(CUSUM_SWEEP_H) | {h0})]


def sustain_sets(sets):
    """The data sets the sustain_ms sweep runs on."""
    return [ds for ds in sets if ds.kind == "rest" or (ds.name.startswith("inj")
                                                       and "-hum" not in ds.name)]


def run_detector(args, sets, defaults, k_ons, sustains=(), cusums=()):
    """rpms-detect on every recording for every k_on and every point of the
    cusum sweep, and on the sustain sets for every sustain_ms: {(path, k_on
    or ("sustain_ms", v) or a cusum point): (onsets, decisions)}."""
    jobs = [((rec.path, k), rec, None if k is None else k)
            for ds in sets for rec in ds.recordings for k in list(k_ons) + list(cusums)]
    jobs += [((rec.path, v), rec, v) for ds in sustain_sets(sets) for rec in ds.recordings
             for v in sustains]
    with tempfile.TemporaryDirectory(prefix="rpms-eval-") as tmp:
        return detector.run_many(args.detector, jobs, tmp, defaults, args.jobs)


def run_traces(args, sets, defaults):
    """rpms-detect --trace on the injected burst, clonus and spike
    recordings, whose diagnostics read the daemon's own envelope,
    sustained envelope and thresholds (figures trace theirs on demand)."""
    recs = [rec for ds in sets if ds.name.startswith("inj")
            and any(k in ds.name for k in report.TRACED)
            for rec in ds.recordings]
    with tempfile.TemporaryDirectory(prefix="rpms-trace-") as tmp:
        return detector.trace_many(args.detector, recs, tmp, defaults, args.jobs)


def run_references(sets, sweep):
    """Every reference on every recording: {(short, path, level): onsets},
    and the causal references' decisions, keyed alike."""
    out, dec = {}, {}
    for ds in sets:
        for rec in ds.recordings:
            cal_start = int(round(rec.cal_start_s * rec.fs))
            for ref_cls in references.REFERENCES:
                ref = ref_cls().prepare(rec.x, rec.fs, cal_start, rec.cal_end,
                                        mains_hz=rec.mains_hz)
                levels = set(ref_cls.sweep) | {ref_cls.default} if sweep else {ref_cls.default}
                for level in levels:
                    out[(ref_cls.short, rec.path, level)] = ref.onsets(level)
                    if ref_cls.causal:
                        dec[(ref_cls.short, rec.path, level)] = ref.decisions(level)
    return out, dec


def evaluate(sets, det_out, ref_out, ref_dec, k_ons):
    """Scores of every detector at every level: {set: {detector: {level: (summary, scores)}}}."""
    res = {}
    for ds in sets:
        res[ds.name] = {DET: {}}
        for k in k_ons:
            scores = [scoring.score(rec, *det_out[(rec.path, k)]) for rec in ds.recordings]
            res[ds.name][DET][k] = (scoring.summarize(scores), scores)
        for ref_cls in references.REFERENCES:
            per = res[ds.name].setdefault(ref_cls.short, {})
            levels = sorted(set(lv for (s, p, lv) in ref_out
                                if s == ref_cls.short and p == ds.recordings[0].path))
            for lv in levels:
                scores = [scoring.score(rec, ref_out[(ref_cls.short, rec.path, lv)],
                                        ref_dec.get((ref_cls.short, rec.path, lv)))
                          for rec in ds.recordings]
                per[lv] = (scoring.summarize(scores), scores)
    return res


def build_source(build):
    """The source tree a meson build directory was configured from."""
    try:
        with open(os.path.join(build, "meson-info", "meson-info.json"), encoding="utf-8") as f:
            return json.load(f)["directories"]["source"]
    except (OSError, ValueError, KeyError):
        return REPO


def git_info(source):
    """Commit of the tree the detector was built from, and whether its
    daemon/, tools/ or include/ had uncommitted changes."""
    def git(*a):
        r = subprocess.run(["git", "-C", source] + list(a), capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else "unknown"
    dirty = git("status", "--porcelain", "--", "daemon", "tools", "include", "meson.build")
    return {"commit": git("rev-parse", "--short=12", "HEAD"),
            "subject": git("log", "-1", "--format=%s"),
            "detector_commit": git("log", "-1", "--format=%h (\"%s\")", "--abbrev=12",
                                   "--", "daemon", "tools", "include"),
            "dirty": bool(dirty) and dirty != "unknown", "source": source}


def main(argv=None):
    """Generate, detect, score, report."""
    args = parse_args(argv)
    check_inputs(args)
    t0 = time.monotonic()
    try:
        defaults = detector.apply_overrides(detector.read_defaults(args.rpmsd), args.set)
        sets = build_sets(args, defaults)
        sweep = not (args.quick or args.no_doc)
        k_ons = [None] + (k_on_sweep(defaults) if sweep else [])
        sustains = sustain_sweep(defaults) if sweep else []
        cusums = cusum_sweep(defaults) if sweep else []
        print("run_eval: %d data sets, %d recordings; rpms-detect runs: %d"
              % (len(sets), sum(len(d.recordings) for d in sets),
                 (len(k_ons) + len(cusums)) * sum(len(d.recordings) for d in sets)
                 + len(sustains) * sum(len(d.recordings) for d in sustain_sets(sets))),
              flush=True)
        det_out = run_detector(args, sets, defaults, k_ons, sustains, cusums)
        traces = run_traces(args, sets, defaults) if sweep else {}
        ref_out, ref_dec = run_references(sets, sweep)
    except (emgio.DataError, detector.DetectorError) as e:
        sys.exit("run_eval: %s" % e)
    res = evaluate(sets, det_out, ref_out, ref_dec, k_ons)
    # {set: {("sustain_ms", v): scores}}, pooled by report.sustain_points.
    sus = {ds.name: {v: [scoring.score(rec, *det_out[(rec.path, v)]) for rec in ds.recordings]
                     for v in sustains} for ds in sustain_sets(sets)}
    # {set: {cusum point: scores}}, pooled by report.cusum_points.
    cus = {ds.name: {v: [scoring.score(rec, *det_out[(rec.path, v)]) for rec in ds.recordings]
                     for v in cusums} for ds in sets if ds.kind != "listing"}
    ctx = {
        "traces": traces, "sustain": sus, "cusum": cus,
        "args": args, "sets": sets, "res": res, "defaults": defaults, "k_ons": k_ons,
        "det_out": det_out, "ref_out": ref_out, "ref_dec": ref_dec, "det": DET,
        "git": git_info(build_source(args.build)), "date": datetime.date.today().isoformat(),
        "host": "%s, %d CPUs, Python %s, numpy %s" % (platform.machine(), os.cpu_count(),
                                                      platform.python_version(),
                                                      np.__version__),
    }
    print(report.console(ctx))
    if not (args.quick or args.no_doc):
        try:
            report.write_figures(ctx)
            ctx["elapsed_s"] = time.monotonic() - t0
            report.write_doc(ctx)
        except detector.DetectorError as e:
            sys.exit("run_eval: %s" % e)
        print("run_eval: wrote %s and %s/*.png" % (args.doc, args.figures))
    print("run_eval: %.0f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
