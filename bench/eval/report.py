# SPDX-License-Identifier: MIT
"""Tables (console and Markdown), figures and docs/detection.md."""

import os

import tempfile

import numpy as np

import detector
import references
import scoring
from filters import runs

# The targets of issue 17, each with the data sets it applies to (see
# applies()): key, short label (console), label (page).
F1_MIN = 0.95
ERR_MAX_MS = 15.0
EXC_P50_MS = 10.0
EXC_P95_MS = 25.0
FA_MAX = 0.5
TARGETS = (
    ("f1", "F1", "F1 >= 0.95 (SNR >= 10 dB, clonus, pops, hum)"),
    ("f1_refs", "F1 vs references", "F1 above every offline reference, interval > 0 (6-10 dB)"),
    ("med_abs_err", "median \\|err\\|", "median \\|onset error\\| <= 15 ms (SNR >= 10 dB)"),
    ("exc_p50", "excess p50", "excess latency p50 <= 10 ms (latency p50)"),
    ("exc_p95", "excess p95", "excess latency p95 <= 25 ms (latency p95)"),
    ("fa_per_min", "false/min", "<= 0.5 false onsets per minute of rest"),
)
YES, NO = "met", "**missed**"


# --- small helpers --------------------------------------------------------

def fnum(v, digits=1):
    """A number for a table cell; '-' when undefined."""
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "%.*f" % (digits, v)


def default_level(name):
    """The level a detector runs at by default (None = rpms-detect's config)."""
    for cls in references.REFERENCES:
        if cls.short == name:
            return cls.default
    return None


def detectors(ctx):
    """Detector names in table order."""
    return [ctx["det"]] + [c.short for c in references.REFERENCES]


def at_default(ctx, set_name, name):
    """(summary, scores) of a detector at its default level on a set."""
    return ctx["res"][set_name][name][default_level(name)]


def md_table(header, rows):
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def find_set(ctx, name):
    """The data set called name."""
    return [d for d in ctx["sets"] if d.name == name][0]


def truth_sets(ctx):
    """Data sets with ground truth."""
    return [d for d in ctx["sets"] if d.kind == "truth"]


def pooled(ctx, set_names, name, level="default"):
    """Summary of a detector over several sets pooled."""
    lv = default_level(name) if level == "default" else level
    scores = [s for n in set_names for s in ctx["res"][n][name][lv][1]]
    return scoring.summarize(scores), scores


def _num(v):
    """A truth-file field as float, None when empty."""
    return None if v in ("", None) else float(v)


# --- targets --------------------------------------------------------------

def _met(value, op, limit):
    """True/False against a target, None when there is no value."""
    if value is None:
        return None
    return value >= limit if op == ">=" else value <= limit


def applies(ds, key):
    """Does target `key` apply to data set ds? F1 >= 0.95 and the onset
    error where every burst is 10 dB or more (clonus, pops and hum sets
    are 10-20 dB); the comparison with the references on the 6-10 dB sets;
    the excess latency where the truth says when a burst became
    detectable; false onsets on every scored set."""
    if ds.kind == "listing":
        return False
    if key == "fa_per_min":
        return True
    if ds.kind != "truth":
        return False
    if key in ("f1", "med_abs_err"):
        return ds.snr is not None and ds.snr[0] >= 10.0
    if key == "f1_refs":
        return ds.snr is not None and ds.snr[1] <= 10.0
    return any(t.get("reach_ms") not in ("", None) for r in ds.recordings for t in r.events
               if t["kind"] in ("burst", "clonus"))


BOOT_N = 2000


def _boot_idx(n, n_boot=BOOT_N, seed=0):
    """Bootstrap draws of n recordings (indices), the same for every
    detector so that differences are paired."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _f1_draws(scores, idx):
    """Pooled F1 of each bootstrap draw."""
    tp = np.array([sum(1 for t in s.truths if t["matched"]) for s in scores], float)
    n = np.array([len(s.truths) for s in scores], float)
    fp = np.array([s.fp_rest + s.fp_burst for s in scores], float)
    t, m, f = tp[idx].sum(1), n[idx].sum(1), fp[idx].sum(1)
    den = 2 * t + f + (m - t)
    return np.where(den > 0, 2 * t / np.where(den > 0, den, 1), 0.0)


def f1_interval(scores, n_boot=BOOT_N, seed=0):
    """95 % bootstrap interval of a set's pooled F1, resampling its
    recordings (the unit that was drawn at random), or None."""
    if len(scores) < 2:
        return None
    f1 = _f1_draws(scores, _boot_idx(len(scores), n_boot, seed))
    return float(np.percentile(f1, 2.5)), float(np.percentile(f1, 97.5))


def f1_diff_interval(scores, other, n_boot=BOOT_N, seed=0):
    """95 % paired bootstrap interval of F1(scores) - F1(other) on the same
    recordings, or None."""
    if len(scores) < 2:
        return None
    idx = _boot_idx(len(scores), n_boot, seed)
    d = _f1_draws(scores, idx) - _f1_draws(other, idx)
    return float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def fa_interval(scores, n_boot=BOOT_N, seed=0):
    """95 % bootstrap interval of false onsets per minute of rest."""
    if len(scores) < 2:
        return None
    idx = _boot_idx(len(scores), n_boot, seed)
    fp = np.array([s.fp_rest for s in scores], float)[idx].sum(1)
    mins = np.array([s.rest_s for s in scores], float)[idx].sum(1) / 60.0
    fa = fp / np.where(mins > 0, mins, 1.0)
    return float(np.percentile(fa, 2.5)), float(np.percentile(fa, 97.5))


def recordings_for(ci, n_rec, half=0.02):
    """Recordings a set would need for its F1 interval to be +/-half wide,
    from the interval observed with n_rec (width ~ 1/sqrt(n))."""
    if ci is None:
        return None
    w = (ci[1] - ci[0]) / 2.0
    return int(np.ceil(n_rec * (w / half) ** 2)) if w > 0 else n_rec


def vs_references(ctx, ds):
    """rpms-detect's F1 against each offline reference on a set: [(name,
    difference, paired interval)], the least favourable first (lowest
    interval bound)."""
    s, scores = at_default(ctx, ds.name, ctx["det"])
    out = []
    for cls in references.OFFLINE:
        r, rs = at_default(ctx, ds.name, cls.short)
        out.append((cls.short, (s["f1"] or 0.0) - (r["f1"] or 0.0), f1_diff_interval(scores, rs)))
    return sorted(out, key=lambda v: v[2][0] if v[2] else v[1])


def target_value(ctx, ds, key):
    """(met True/False/None, cell text) of one target on one set."""
    s, scores = at_default(ctx, ds.name, ctx["det"])
    if key == "f1":
        ci = f1_interval(scores)
        met = _met(s["f1"], ">=", F1_MIN)
        text = fnum(s["f1"], 4) + (" [%.3f-%.3f]" % ci if ci else "")
        if ci and ci[0] < F1_MIN <= ci[1]:
            text += " (interval straddles 0.95)"
        return met, text
    if key == "f1_refs":
        vs = vs_references(ctx, ds)
        name, d, ci = vs[0]
        met = ci is not None and all(v[2] is not None and v[2][0] > 0 for v in vs)
        return met, "%+.3f [%+.3f, %+.3f] vs %s" % (d, ci[0], ci[1], name) if ci else \
            "%+.3f vs %s" % (d, name)
    if key == "med_abs_err":
        return _met(s[key], "<=", ERR_MAX_MS), fnum(s[key], 0)
    if key in ("exc_p50", "exc_p95"):
        lat = s["lat_p50" if key == "exc_p50" else "lat_p95"]
        limit = EXC_P50_MS if key == "exc_p50" else EXC_P95_MS
        return _met(s[key], "<=", limit), "%s (%s)" % (fnum(s[key], 0), fnum(lat, 0))
    ci = fa_interval(scores)
    return (_met(s[key], "<=", FA_MAX),
            fnum(s[key], 2) + (" [%.2f-%.2f]" % ci if ci else ""))


def target_rows(ctx):
    """One row per scored data set: each target's value and whether it is
    met ('n/a' where it does not apply); and the tally [met, missed]."""
    rows, tally = [], [0, 0]
    for ds in ctx["sets"]:
        if ds.kind == "listing":
            continue
        row = [ds.name]
        for key, _, _ in TARGETS:
            if not applies(ds, key):
                row.append("n/a")
                continue
            met, text = target_value(ctx, ds, key)
            row.append("no value: %s" % NO if met is None else
                       "%s %s" % (text, YES if met else NO))
            tally[0 if met else 1] += 1
        rows.append(row)
    return rows, tally


def met_by_target(ctx):
    """(target label, sets meeting it, sets it applies to) for rpms-detect."""
    out = []
    for key, short, _ in TARGETS:
        sets = [ds for ds in ctx["sets"] if applies(ds, key)]
        n = sum(1 for ds in sets if target_value(ctx, ds, key)[0])
        out.append((short.replace("\\", ""), n, len(sets)))
    return out


# --- tables ---------------------------------------------------------------

RESULT_HEADER = ["data set", "detector", "bursts", "TP", "FP rest", "FP in burst",
                 "precision", "recall", "F1", "median err (ms)", "median \\|err\\| (ms)",
                 "latency p50 (ms)", "latency p95 (ms)", "excess p50 (ms)", "excess p95 (ms)",
                 "false/min rest"]


def result_rows(ctx, set_names=None):
    """Rows of the main results table (every detector at its default)."""
    rows = []
    for ds in truth_sets(ctx):
        if set_names and ds.name not in set_names:
            continue
        for i, name in enumerate(detectors(ctx)):
            s = at_default(ctx, ds.name, name)[0]
            rows.append([ds.name if i == 0 else "", name, s["n"], s["tp"], s["fp_rest"],
                         s["fp_burst"], fnum(s["precision"], 2), fnum(s["recall"], 2),
                         fnum(s["f1"], 2), fnum(s["med_err"]), fnum(s["med_abs_err"]),
                         fnum(s["lat_p50"], 0), fnum(s["lat_p95"], 0),
                         fnum(s["exc_p50"], 0), fnum(s["exc_p95"], 0),
                         fnum(s["fa_per_min"], 2)])
    return rows


def rest_rows(ctx):
    """False onsets on the real rest recording."""
    rows = []
    for ds in ctx["sets"]:
        if ds.kind != "rest":
            continue
        for name in detectors(ctx):
            s = at_default(ctx, ds.name, name)[0]
            rows.append([ds.name, name, fnum(s["rest_min"], 1), s["fp_rest"],
                         fnum(s["fa_per_min"], 2), s["weak_onsets"]])
    return rows


def listing_rows(ctx):
    """Onset times (s) on emg_1.txt, per detector."""
    ds = [d for d in ctx["sets"] if d.kind == "listing"][0]
    rec = ds.recordings[0]
    rows = []
    for name in detectors(ctx):
        if name == ctx["det"]:
            ons, dec = ctx["det_out"][(rec.path, None)]
            cells = ["%.3f (%.3f)" % (o / rec.fs, d / rec.fs) for o, d in zip(ons, dec)]
        else:
            ons = ctx["ref_out"][(name, rec.path, default_level(name))]
            cells = ["%.3f" % (o / rec.fs) for o in ons]
        rows.append([name, len(cells), ", ".join(cells) or "none"])
    return rows


def _bin_rows(truths, key, edges, unit, fmt="%g-%g"):
    """Recall, hit rate, error and latency of truths binned on truths[key]."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = [t for t in truths if _num(t.get(key)) is not None and lo <= _num(t[key]) < hi]
        if not sel:
            continue
        m = [t for t in sel if t["matched"]]
        first = [t["first_lat_ms"] for t in sel if t["first_lat_ms"] is not None]
        ferr = [t["first_err_ms"] for t in sel if t["first_err_ms"] is not None]
        lat = [t["lat_ms"] for t in m if t.get("lat_ms") is not None]
        rows.append([(fmt % (lo, hi)) + " " + unit, len(sel), fnum(len(m) / len(sel), 2),
                     fnum(sum(1 for t in sel if t["n_onsets"]) / len(sel), 2),
                     fnum(_p(ferr, 50)), fnum(_p(lat, 50), 0), fnum(_p(lat, 95), 0),
                     fnum(_p(first, 50), 0), fnum(_p(first, 95), 0)])
    return rows


def _p(v, q):
    """Percentile or None."""
    return float(np.percentile(v, q)) if v else None


BIN_HEADER = ["bin", "bursts", "recall (+/-50 ms)", "detected at all", "median err of first onset (ms)",
              "latency p50 (matched)", "latency p95 (matched)",
              "latency p50 (first onset)", "latency p95 (first onset)"]


def burst_truths(ctx, name, keys):
    """Scored truths of a detector (default level) over sets whose name contains a key."""
    out = []
    for ds in truth_sets(ctx):
        if any(k in ds.name for k in keys):
            for sc in at_default(ctx, ds.name, name)[1]:
                out.extend(sc.truths)
    return out


def diagnostics(ctx):
    """Markdown of rpms-detect's behaviour by ramp, duration and SNR."""
    det = ctx["det"]
    plain = ("snr", "spikes", "mains")
    truths = burst_truths(ctx, det, ["inj-1k-" + k for k in plain] + ["inj-2k-" + k for k in plain])
    parts = ["By onset ramp length (injected bursts, both rates, every SNR):\n",
             md_table(BIN_HEADER, _bin_rows(truths, "ramp_ms", [0, 50, 100, 151], "ms")),
             "\nBy burst duration:\n",
             md_table(BIN_HEADER, _bin_rows(truths, "duration_ms",
                                            [150, 300, 600, 1200, 2001], "ms")),
             "\nBy SNR:\n",
             md_table(BIN_HEADER, _bin_rows(truths, "snr_db", [6, 8, 10, 12, 14, 17, 20.01],
                                            "dB"))]
    return "\n".join(parts)


def trace_of(ctx, rec):
    """rpms-detect's --trace of a recording at the defaults (run on first
    use, then kept), checked to give the same onsets as the scored run."""
    traces = ctx.setdefault("traces", {})
    if rec.path not in traces:
        with tempfile.TemporaryDirectory(prefix="rpms-trace-") as tmp:
            traces.update(detector.trace_many(ctx["args"].detector, [rec], tmp,
                                              ctx["defaults"]))
    tr = traces[rec.path]
    if (tr["onsets"], tr["decisions"]) != tuple(ctx["det_out"][(rec.path, None)]):
        raise detector.DetectorError("rpms-detect --trace %s: its onsets differ from the scored "
                             "run's" % rec.path)
    return tr


def _runs_below(below):
    """(start, length) of every run of True in a boolean array that is
    followed by a False (a dip that ended), in samples."""
    starts, ends = runs(below)
    return [(a, b - a) for a, b in zip(starts, ends) if b < len(below)]


def spike_margins(ctx, ds):
    """For each injected spike, the largest ratio to the onset threshold
    within SPIKE_WINDOW_MS after it, of the sustained envelope (what the
    detector compares) and of the 5 ms envelope: [(sustained, envelope)]."""
    out = []
    for rec in ds.recordings:
        tr = trace_of(ctx, rec)
        thr = tr["on_threshold"]
        win = int(scoring.SPIKE_WINDOW_MS * rec.fs / 1000.0)
        for e in rec.events:
            if e["kind"] != "spike":
                continue
            a = e["onset_sample"]
            sl = slice(a, min(a + win, len(thr)))
            out.append((float(np.max(tr["sustained"][sl] / thr[sl])),
                        float(np.max(tr["envelope"][sl] / thr[sl]))))
    return out


def clonus_margins(ctx, ds):
    """For each clonus train: the peak of the sustained envelope over the
    onset threshold, and the longest dip of the sustained envelope below
    the offset threshold inside the train after it first crossed the onset
    threshold (ms; a dip of detect.off_ms ends the burst, so the next
    sub-burst would be a second onset). [(peak ratio, longest dip ms or
    None when the train never crossed)]."""
    out = []
    for rec in ds.recordings:
        tr = trace_of(ctx, rec)
        sus, on, off = tr["sustained"], tr["on_threshold"], tr["off_threshold"]
        for e in rec.events:
            if e["kind"] != "clonus":
                continue
            a, b = e["onset_sample"], min(e["end_sample"], len(sus))
            peak = float(np.max(sus[a:b] / on[a:b]))
            up = np.flatnonzero(sus[a:b] > on[a:b])
            if not len(up):
                out.append((peak, None))
                continue
            s = a + int(up[0])
            dips = _runs_below(sus[s:b] < off[s:b])
            out.append((peak, max((n for _, n in dips), default=0) * 1000.0 / rec.fs))
    return out


# Injected sets whose recordings are traced for the diagnostics.
TRACED = ("snr", "clonus", "spikes")
PLATEAU_END_MS = 150.0      # the longest offset ramp of an injected burst


def decision_time(ctx, rec, t):
    """What the trace shows for one injected burst: ms from the true onset
    to the first sample whose 5 ms envelope exceeds the onset threshold,
    and, over its plateau (ramp end to PLATEAU_END_MS before its end), the
    share of samples with the envelope above the onset threshold, with the
    sustained envelope above it, and with the sustained envelope below the
    offset threshold."""
    tr = trace_of(ctx, rec)
    env, sus = tr["envelope"], tr["sustained"]
    on, off = tr["on_threshold"], tr["off_threshold"]
    a, b = t["onset_sample"], min(t["end_sample"], len(env))
    up = np.flatnonzero(env[a:b] > on[a:b])
    first = up[0] * 1000.0 / rec.fs if len(up) else None
    pa = a + int(float(t["ramp_ms"]) * rec.fs / 1000.0)
    pb = b - int(PLATEAU_END_MS * rec.fs / 1000.0)
    if pb <= pa:
        return first, None, None, None
    sl = slice(pa, pb)
    return (first, float(np.mean(env[sl] > on[sl])), float(np.mean(sus[sl] > on[sl])),
            float(np.mean(sus[sl] < off[sl])))


DECISION_HEADER = ["injected bursts", "bursts", "envelope first above the onset threshold (ms, median)",
                   "decision latency of the first onset (ms, median)",
                   "plateau: envelope above the onset threshold",
                   "plateau: sustained envelope above the onset threshold",
                   "plateau: sustained envelope below the offset threshold"]


def decision_rows(ctx):
    """Where rpms-detect's decision time goes, from its trace: injected
    bursts by SNR, and the near-step onsets."""
    det = ctx["det"]
    items = []
    for ds in truth_sets(ctx):
        if not (ds.name.startswith("inj") and "snr" in ds.name):
            continue
        for rec, sc in zip(ds.recordings, at_default(ctx, ds.name, det)[1]):
            for t in sc.truths:
                items.append((t, decision_time(ctx, rec, t)))
    groups = [("SNR %g-%g dB" % (lo, hi), lambda t, lo=lo, hi=hi: lo <= float(t["snr_db"]) < hi)
              for lo, hi in ((6, 10), (10, 14), (14, 20))]
    groups[-1] = ("SNR 14-20 dB", lambda t: float(t["snr_db"]) >= 14)
    groups.append(("onset ramp < 20 ms, every SNR", lambda t: float(t["ramp_ms"]) < 20))
    rows = []
    for label, pick in groups:
        sel = [(t, v) for t, v in items if pick(t)]
        if not sel:
            continue
        rows.append([label, len(sel), med([v[0] for _, v in sel]),
                     med([t["first_lat_ms"] for t, _ in sel]),
                     med([v[1] for _, v in sel], True), med([v[2] for _, v in sel], True),
                     med([v[3] for _, v in sel], True)])
    return rows


def med(vals, pct=False):
    """Median of the values that are not None, as text ('-' for none)."""
    vals = [x for x in vals if x is not None]
    if not vals:
        return "-"
    return "%.0f %%" % (100 * np.median(vals)) if pct else "%.0f" % np.median(vals)


def hum_limit_db(ctx):
    """Hum level (dB over the rest RMS) whose peaks reach the limiter:
    dsp.limit x the rest envelope = sqrt(2) x the hum's RMS. None when
    the limiter is off."""
    lim = float(ctx["defaults"]["dsp"].get("limit", 0) or 0)
    return 20.0 * np.log10(lim / np.sqrt(2.0)) if lim > 0 else None


def after_calibration(ctx, ds, ms=100.0):
    """rpms-detect's onsets decided within `ms` after calibration ended
    (no injected burst starts that early), and the recordings they are in."""
    n, recs = 0, 0
    for rec in ds.recordings:
        _, dec = ctx["det_out"][(rec.path, None)]
        k = sum(1 for d in dec if rec.cal_end <= d < rec.cal_end + ms * rec.fs / 1000.0)
        n += k
        recs += 1 if k else 0
    return n, recs


def rest_false_onsets(ctx, ds):
    """rpms-detect's false onsets at rest on a set, as scoring counts them:
    [(recording, onset, decision)]."""
    out = []
    for rec in ds.recordings:
        ons, dec = ctx["det_out"][(rec.path, None)]
        keep = [(o, d) for o, d in zip(ons, dec)
                if o >= rec.cal_end and not scoring._inside(o, rec.ignore)
                and not (scoring._inside(o, rec.weak) or scoring._inside(d, rec.weak))]
        truths = [e["onset_sample"] for e in rec.events
                  if e["kind"] in ("burst", "clonus") and e["scored"]]
        matched = {i for i, _ in scoring.greedy_match([o for o, _ in keep], truths,
                                                      scoring.TOL_MS * rec.fs / 1000.0)}
        spans = scoring.burst_spans(rec, rec.fs)
        out += [(rec, o, d) for i, (o, d) in enumerate(keep)
                if i not in matched and not scoring._inside(d, spans)]
    return out


def source_time_s(rec, sample):
    """Where in emg.txt a sample of an injected recording came from (s)."""
    m = rec.meta
    if m.get("rest_start_s") is None:
        return sample / rec.fs
    t = sample / rec.fs
    return m["rest_start_s"] + ((len(rec.x) / rec.fs - t) if m.get("reversed") else t)


def _margin_text(ctx, ds, kind):
    """One sentence, from rpms-detect's trace, for the clonus/spike table."""
    if kind == "spike":
        v = spike_margins(ctx, ds)
        if not v:
            return ""
        sus = np.array([x[0] for x in v])
        env = np.array([x[1] for x in v])
        return ("; within 300 ms after a spike the sustained envelope peaked at median "
                "%.2f, max %.2f x the onset threshold (%d of %d spikes above it), while "
                "the 5 ms envelope peaked at median %.1f, max %.1f x" % (
                    np.median(sus), np.max(sus), int(np.sum(sus > 1.0)), len(sus),
                    np.median(env), np.max(env)))
    v = clonus_margins(ctx, ds)
    if not v:
        return ""
    peaks = np.array([x[0] for x in v])
    dips = np.array([x[1] for x in v if x[1] is not None])
    text = ("; sustained envelope peak per train: min %.1f, median %.1f x the onset "
            "threshold" % (np.min(peaks), np.median(peaks)))
    if len(dips):
        text += ("; longest dip below the offset threshold inside a train: median %.0f ms, "
                 "max %.0f ms; trains with one of detect.off_ms = %s ms or more: %d" % (
                     np.median(dips), np.max(dips), ctx["defaults"]["detect"]["off_ms"],
                     int(np.sum(dips >= float(ctx["defaults"]["detect"]["off_ms"])))))
    return text


def clonus_spike_rows(ctx):
    """Clonus splitting, spike-triggered false onsets, hum, for every detector."""
    rows = []
    for ds in truth_sets(ctx):
        if not any(k in ds.name for k in ("clonus", "spikes", "mains")):
            continue
        for name in detectors(ctx):
            s, scores = at_default(ctx, ds.name, name)
            extra = ""
            if "clonus" in ds.name:
                extra = "%d of %d trains split into 2+ onsets" % (s["split"], s["n"])
            elif "spikes" in ds.name:
                extra = "%d false onset%s at rest within 300 ms after one of %d spikes" % (
                    s["fp_spike"], "" if s["fp_spike"] == 1 else "s", s["n_spikes"])
            else:
                cut = hum_limit_db(ctx) or 10.0
                lo = [sc for sc, rec in zip(scores, ds.recordings)
                      if rec.meta.get("hum_db_over_rest", 0) < cut]
                hi = [sc for sc, rec in zip(scores, ds.recordings)
                      if rec.meta.get("hum_db_over_rest", 0) >= cut]
                f_lo = scoring.summarize(lo)["f1"] if lo else None
                f_hi = scoring.summarize(hi)["f1"] if hi else None
                extra = "F1 %s with hum < %.1f dB (%d rec.), %s with hum %.1f-20 dB (%d rec.)" % (
                    fnum(f_lo, 2), cut, len(lo), fnum(f_hi, 2), cut, len(hi))
                if name == ctx["det"]:
                    n, recs = after_calibration(ctx, ds)
                    extra += ("; %d onsets decided within 100 ms after calibration ended "
                              "(in %d recordings)" % (n, recs))
            if name == ctx["det"] and ("clonus" in ds.name or "spikes" in ds.name):
                extra += _margin_text(ctx, ds, "clonus" if "clonus" in ds.name else "spike")
            rows.append([ds.name, name, fnum(s["recall"], 2), fnum(s["f1"], 2),
                         fnum(s["fa_per_min"], 2), extra])
    return rows


def sweep_groups(ctx):
    """The pooled groups of the k_on sweep: {name: [set names]}."""
    names = [d.name for d in ctx["sets"]]
    inj = [n for n in names if n.startswith("inj")]
    return {
        "bursts": [n for n in inj if "snr" in n],
        "low": [n for n in inj if "snr06-10" in n],
        "high": [d.name for d in truth_sets(ctx) if applies(d, "f1")],
        "spikes": [n for n in inj if "spikes" in n],
        "clonus": [n for n in inj if "clonus" in n],
        "hum": [n for n in inj if "-hum" in n],
        "rest": [n for n in names if n.startswith("rest")],
        "sim": ["sim"],
        "all": [d.name for d in truth_sets(ctx) if d.name.startswith("inj")],
        "nohum": [n for n in inj if "-hum" not in n],
    }


def sustain_points(ctx):
    """rpms-detect at every detect.sustain_ms of the second sweep (default
    k_on), the default included: [(sustain_ms, is default, {group:
    summary})] for the groups the sweep ran on (nohum, bursts, spikes,
    clonus, rest), by increasing sustain_ms."""
    sus = ctx.get("sustain") or {}
    if not sus:
        return []
    groups = {g: sel for g, sel in sweep_groups(ctx).items()
              if g in ("nohum", "bursts", "spikes", "clonus", "rest") and sel}
    d = float(ctx["defaults"]["detect"].get("sustain_ms", 30))
    vals = sorted(set(v for per in sus.values() for v in per), key=lambda v: v[1])
    out = [(d, True, {g: pooled(ctx, sel, ctx["det"], None)[0] for g, sel in groups.items()})]
    for v in vals:
        out.append((float(v[1]), False, {g: scoring.summarize([sc for n in sel for sc in sus[n][v]])
                                         for g, sel in groups.items()}))
    return sorted(out, key=lambda p: p[0])


SUSTAIN_HEADER = ["detect.sustain_ms", "recall (bursts)", "excess p50 (bursts)",
                  "excess p95 (bursts)", "excess p50 (all but hum)", "excess p95 (all but hum)",
                  "false/min (bursts)", "false/min with spikes", "false/min, real rest"]


def sustain_rows(ctx):
    """The sustain_ms sweep as table rows."""
    rows = []
    for v, default, g in sustain_points(ctx):
        rows.append(["%g%s" % (v, " (default)" if default else ""), fnum(g["bursts"]["recall"], 2),
                     fnum(g["bursts"]["exc_p50"], 0), fnum(g["bursts"]["exc_p95"], 0),
                     fnum(g["nohum"]["exc_p50"], 0), fnum(g["nohum"]["exc_p95"], 0),
                     fnum(g["bursts"]["fa_per_min"], 2), fnum(g["spikes"]["fa_per_min"], 2),
                     fnum(g["rest"]["fa_per_min"], 2)])
    return rows


def sweep_points(ctx):
    """rpms-detect at every k_on of the sweep: [(k_on, {group: summary})],
    by increasing k_on (the default included)."""
    groups = sweep_groups(ctx)
    k0 = float(ctx["defaults"]["detect"]["k_on"])
    out = []
    for k in sorted(ctx["k_ons"], key=lambda v: k0 if v is None else v):
        sums = {g: pooled(ctx, sel, ctx["det"], k)[0] for g, sel in groups.items() if sel}
        out.append((k0 if k is None else k, k is None, sums))
    return out


def sweep_rows(ctx):
    """rpms-detect over its k_on sweep: pooled injected bursts (every SNR,
    both rates), the 6-10 dB and the >= 10 dB sets, spikes, clonus, hum,
    the real rest recordings and the simulated set."""
    rows = []
    for k, default, g in sweep_points(ctx):
        b = g["bursts"]
        label = "%g (default)" % k if default else "%g" % k
        hum = g.get("hum")
        rows.append([label, fnum(b["recall"], 2), fnum(b["exc_p50"], 0), fnum(b["exc_p95"], 0),
                     fnum(g["all"]["exc_p50"], 0), fnum(g["all"]["exc_p95"], 0),
                     fnum(g["low"]["f1"], 3) if g.get("low") else "-",
                     fnum(g["high"]["f1"], 3) if g.get("high") else "-",
                     fnum(hum["f1"], 3) if hum else "-",
                     fnum(b["fa_per_min"], 2), fnum(g["spikes"]["fa_per_min"], 2),
                     fnum(hum["fa_per_min"], 2) if hum else "-",
                     fnum(g["clonus"]["hit"] / g["clonus"]["n"], 2),
                     fnum(g["rest"]["fa_per_min"], 2), fnum(g["sim"]["recall"], 2)])
    return rows


SWEEP_HEADER = ["detect.k_on", "recall (bursts)", "excess p50 (bursts)", "excess p95 (bursts)",
                "excess p50 (all injected)", "excess p95 (all injected)", "F1, 6-10 dB",
                "F1, >= 10 dB sets", "F1, hum sets", "false/min (bursts)",
                "false/min with spikes", "false/min, hum sets", "clonus trains with any onset",
                "false/min, real rest", "recall, simulated"]


def hum_rows(ctx):
    """Per hum set: rpms-detect's F1 (interval), its false onsets per
    minute and how many came within 300 ms after a pop, its F1 with those
    left out; the plain causal reference's F1 and false onsets; the best
    offline reference's F1."""
    rows = []
    for ds in truth_sets(ctx):
        if "-hum" not in ds.name:
            continue
        s, scores = at_default(ctx, ds.name, ctx["det"])
        ci = f1_interval(scores)
        nv = at_default(ctx, ds.name, "Naive")[0]
        best = max(((c.short, at_default(ctx, ds.name, c.short)[0]["f1"] or 0.0)
                    for c in references.OFFLINE), key=lambda v: v[1])
        need = recordings_for(ci, len(ds.recordings))
        rows.append([ds.name, len(ds.recordings), s["n"],
                     fnum(s["f1"], 3) + (" [%.3f-%.3f]" % ci if ci else ""),
                     "-" if need is None else str(need),
                     fnum(s["fa_per_min"], 2), "%d of %d" % (s["fp_spike"], s["fp_rest"]),
                     fnum(f1_without_pops(s), 3), fnum(nv["f1"], 3),
                     fnum(f1_without_pops(nv), 3), fnum(nv["fa_per_min"], 2),
                     "%s %.3f" % best])
    return rows


HUM_HEADER = ["data set", "recordings", "bursts", "rpms-detect F1 [95 % interval]",
              "recordings for +/-0.02", "false/min", "false onsets after a pop", "F1 without them", "Naive F1",
              "Naive F1 without pop onsets", "Naive false/min", "best offline reference F1"]


SIM_BINS = ((0.0, 10.0), (10.0, 14.0), (14.0, 30.0))
SIM_HEADER = ["burst SNR", "bursts", "detector", "recall (+/-50 ms)", "any onset",
              "median err, matched (ms)", "median first-onset err (ms)",
              "decision latency p50 (ms)", "detectable after, p50 (ms, est.)", "excess p50 (ms)"]


def sim_rows(ctx):
    """The simulated set by burst SNR: rpms-detect, HB and the plain causal
    reference (recall, onset error, latency against the estimated floor)."""
    rows = []
    for lo, hi in SIM_BINS:
        for name in (ctx["det"], "HB", "Naive"):
            tr = [t for sc in at_default(ctx, "sim", name)[1] for t in sc.truths
                  if lo <= float(t["snr_db"]) < hi]
            if not tr:
                continue
            m = [t for t in tr if t["matched"]]
            lat = [t["first_lat_ms"] for t in tr if t.get("first_lat_ms") is not None]
            exc = [t["first_excess_ms"] for t in tr if t.get("first_excess_ms") is not None]
            rows.append(["%g-%g dB" % (lo, hi) if hi < 30 else ">= %g dB" % lo, len(tr), name,
                         fnum(len(m) / len(tr), 2),
                         fnum(sum(1 for t in tr if t["n_onsets"]) / len(tr), 2),
                         fnum(_p([t["err_ms"] for t in m], 50), 0),
                         fnum(_p([t["first_err_ms"] for t in tr
                                  if t["first_err_ms"] is not None], 50), 0),
                         fnum(_p(lat, 50), 0),
                         fnum(_p([t["floor_ms"] for t in tr if t["floor_ms"] is not None], 50), 0),
                         fnum(_p(exc, 50), 0)])
    return rows


def f1_without_pops(s):
    """F1 of a summary with the false onsets within 300 ms after a
    spike or pop left out: what the hum alone costs."""
    tp, n = s["tp"], s["n"]
    fp = s["fp_rest"] - s["fp_spike"] + s["fp_burst"]
    den = 2 * tp + fp + (n - tp)
    return 2 * tp / den if den else None


def console(ctx):
    """Plain-text summary for the terminal (and the meson benchmark log)."""
    rows, tally = target_rows(ctx)
    over = ctx["defaults"].get("_overrides", {})
    setting = ", ".join("%s.%s = %s" % (sec, k, v) for sec, kv in over.items()
                        for k, v in kv.items()) or "the defaults"
    out = ["", "Results, rpms-detect with %s (onsets matched within +/-%g ms):"
           % (setting, scoring.TOL_MS), md_table(RESULT_HEADER, result_rows(ctx)), "",
           "Real rest EMG (false onsets):",
           md_table(["data set", "detector", "rest (min)", "false onsets", "false/min",
                     "onsets in weak-activity stretches"], rest_rows(ctx)), "",
           "Targets for %s (reported, not asserted): %d met, %d missed"
           % (ctx["det"], tally[0], tally[1]),
           md_table(["data set"] + [t[1] for t in TARGETS], rows), ""]
    return "\n".join(out)


# --- figures --------------------------------------------------------------

def write_figures(ctx):
    """Every PNG of the report."""
    import figures
    os.makedirs(ctx["args"].figures, exist_ok=True)
    ctx["figures"] = figures.make_all(ctx)


# --- the document ---------------------------------------------------------

def _conf_lines(ctx):
    """The [dsp] and [detect] keys in force (the daemon's defaults)."""
    d = ctx["defaults"]
    keys = [("dsp", k) for k in ("limit", "highpass_hz", "lowpass_hz", "filter_order",
                                 "mains_hz", "mains_harmonics", "notch_q", "envelope",
                                 "envelope_ms")]
    keys += [("detect", k) for k in ("rule", "sustain_ms", "k_on", "k_off", "on_ms", "dip_ms",
                                     "off_ms", "k_edge")]
    return ", ".join("`%s.%s = %s`" % (s, k, d[s][k]) for s, k in keys if k in d.get(s, {}))


def _set_rows(ctx):
    """The data sets table of the document."""
    rows = []
    for ds in ctx["sets"]:
        recs = ds.recordings
        n_b = sum(1 for r in recs for e in r.events if e["kind"] in ("burst", "clonus")
                  and e["scored"])
        dur = sum(len(r.x) / r.fs for r in recs)
        cal = "%g-%g s" % (recs[0].cal_start_s, recs[0].cal_start_s + recs[0].cal_s)
        rows.append([ds.name, ds.title, len(recs), "%.0f s" % dur, n_b if ds.kind == "truth"
                     else "-", cal])
    return rows


def write_doc(ctx):
    """Write docs/detection.md from the results."""
    import doctext
    text = doctext.render(ctx)
    with open(ctx["args"].doc, "w", encoding="utf-8") as f:
        f.write(text)


FLOOR_HEADER = ["data set", "bursts", "detectable after: p50 (ms)", "p95 (ms)",
                "rpms-detect latency p50 (ms)", "p95 (ms)", "excess p50 (ms)", "excess p95 (ms)",
                "Naive latency p50 (ms)", "p95 (ms)", "Naive excess p50 (ms)", "excess p95 (ms)"]


def floor_rows(ctx):
    """Per data set with known ramps: when its bursts became detectable
    (scoring.detectable_ms: the amplitude reaches the rest RMS, + 10 ms),
    and the decision latency of rpms-detect and of the plain causal
    reference, absolute and in excess of that (matched onsets)."""
    rows = []
    for ds in truth_sets(ctx):
        if not applies(ds, "exc_p50"):
            continue
        floors = [scoring.detectable_ms(e) for rec in ds.recordings for e in rec.events
                  if e["kind"] in ("burst", "clonus") and e["scored"]]
        floors = [f for f in floors if f is not None]
        s = at_default(ctx, ds.name, ctx["det"])[0]
        nv = at_default(ctx, ds.name, "Naive")[0]
        rows.append([ds.name, len(floors), fnum(_p(floors, 50), 0), fnum(_p(floors, 95), 0),
                     fnum(s["lat_p50"], 0), fnum(s["lat_p95"], 0),
                     fnum(s["exc_p50"], 0), fnum(s["exc_p95"], 0),
                     fnum(nv["lat_p50"], 0), fnum(nv["lat_p95"], 0),
                     fnum(nv["exc_p50"], 0), fnum(nv["exc_p95"], 0)])
    return rows
