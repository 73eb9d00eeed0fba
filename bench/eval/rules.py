# SPDX-License-Identifier: MIT
"""The two onset rules of rpms-detect side by side, and how soon any
detector could decide (issue 17's decision-latency target).

detect.rule = sustained (the sustained envelope above the onset threshold,
swept over detect.k_on) against detect.rule = cusum (a CUSUM on the
envelope's log ratio to rest, swept over detect.cusum_h): both run by
rpms-detect itself, through temporary configs (run_eval.py's k_on and
cusum sweeps). The bound (bound.py) comes from rpms-detect's --trace.
"""

import numpy as np

import bound
import report
import scoring
from report import fnum

# Set families: both rates pooled, and for the hum sets 50/60 Hz, steady
# and drifting pooled by hum level.
FAMILIES = (("sim", "sim"), ("snr06-10", "-snr06-10"), ("snr10-14", "-snr10-14"),
            ("snr14-20", "-snr14-20"), ("clonus", "-clonus"), ("spikes", "-spikes"),
            ("mains", "-mains"), ("hum 1x", "-x1-"), ("hum 3x", "-x3-"), ("hum 10x", "-x10-"),
            ("real rest", "rest-"))


def family_sets(ctx, key):
    """Names of the data sets of a family (FAMILIES' second field)."""
    return [d.name for d in ctx["sets"] if d.kind != "listing"
            and (d.name == key if key == "sim" else key in d.name)]


def rule_groups(ctx):
    """The pooled groups of the rules' trade-off: {name: [set names]}.
    "traced": the sets whose bursts the bound covers (bursts of every SNR,
    clonus, spikes; both rates); "pops": the sets with spikes or pops in
    their rest (the spike sets and every hum set); "rest": the real rest;
    "high": every set the F1 target applies to."""
    g = report.sweep_groups(ctx)
    names = [d.name for d in ctx["sets"]]
    return {
        "traced": [n for n in names if n.startswith("inj")
                   and any(k in n for k in report.TRACED)],
        "all": g["all"],
        "pops": g["spikes"] + g["hum"],
        "spikes": g["spikes"],
        "rest": g["rest"],
        "high": g["high"],
    }


def cusum_default(ctx):
    """The cusum sweep point at rpmsd's default cusum_h, or None."""
    h0 = float(ctx["defaults"]["detect"].get("cusum_h", 50))
    for v in _cusum_vals(ctx):
        if abs(v[1][1] - h0) < 1e-9:
            return v
    return None


def _cusum_vals(ctx):
    """The cusum sweep points that were run, by increasing cusum_h."""
    cus = ctx.get("cusum") or {}
    return sorted(set(v for per in cus.values() for v in per), key=lambda v: v[1][1])


def cusum_scores(ctx, set_name, point):
    """The scores of the cusum rule at a sweep point on one set."""
    return ctx["cusum"][set_name][point]


def _summary(ctx, sets, level):
    """Pooled summary of rpms-detect over sets at a level: a k_on (None:
    the default) or a cusum sweep point."""
    if isinstance(level, tuple):
        return scoring.summarize([sc for n in sets for sc in cusum_scores(ctx, n, level)])
    return report.pooled(ctx, sets, ctx["det"], level)[0]


def _per_set(ctx, level):
    """{set name: summary} of rpms-detect at a level, every scored set."""
    return {d.name: _summary(ctx, [d.name], level) for d in ctx["sets"] if d.kind != "listing"}


def _met_count(ctx, per, key):
    """(sets meeting a target, sets it applies to) from per-set summaries."""
    sets = [d for d in ctx["sets"] if report.applies(d, key)]
    lim = {"exc_p50": report.EXC_P50_MS, "exc_p95": report.EXC_P95_MS,
           "fa_per_min": report.FA_MAX}[key]
    n = sum(1 for d in sets if per[d.name][key] is not None and per[d.name][key] <= lim)
    return n, len(sets)


def rule_points(ctx):
    """Both rules over their sweeps: [(rule, threshold label, is the
    default, {group: summary}, {set: summary})], the sustained rule by
    increasing k_on, then the cusum rule by increasing cusum_h."""
    groups = {k: v for k, v in rule_groups(ctx).items() if v}
    k0 = float(ctx["defaults"]["detect"]["k_on"])
    rule0 = ctx["defaults"]["detect"].get("rule", "sustained")
    h0 = float(ctx["defaults"]["detect"].get("cusum_h", 50))
    out = []
    if rule0 == "sustained":
        for k in sorted(ctx["k_ons"], key=lambda v: k0 if v is None else v):
            out.append(("sustained", "k_on %g" % (k0 if k is None else k), k is None,
                        {g: _summary(ctx, sel, k) for g, sel in groups.items()},
                        _per_set(ctx, k)))
    for v in _cusum_vals(ctx):
        h = v[1][1]
        out.append(("cusum", "cusum_h %g" % h, rule0 == "cusum" and abs(h - h0) < 1e-9,
                    {g: _summary(ctx, sel, v) for g, sel in groups.items()},
                    _per_set(ctx, v)))
    return out


RULES_HEADER = ["rule", "threshold", "excess p50 (ms)", "excess p95 (ms)",
                "false/min with pops", "false/min, spike sets", "false/min, real rest",
                "F1, >= 10 dB sets",
                "sets with excess p50 <= 10 ms", "sets with excess p95 <= 25 ms",
                "sets with <= 0.5 false/min"]


def rule_rows(ctx):
    """The trade-off table of both rules (excess latency over the traced
    sets pooled; false onsets with pops, on the real rest; F1; per-set
    target counts over every set)."""
    rows = []
    for rule, label, default, g, per in rule_points(ctx):
        t = g["traced"]
        counts = [_met_count(ctx, per, k) for k in ("exc_p50", "exc_p95", "fa_per_min")]
        rows.append([rule, label + (" (default)" if default else ""),
                     fnum(t["exc_p50"], 0), fnum(t["exc_p95"], 0),
                     fnum(g["pops"]["fa_per_min"], 2) if g.get("pops") else "-",
                     fnum(g["spikes"]["fa_per_min"], 2) if g.get("spikes") else "-",
                     fnum(g["rest"]["fa_per_min"], 2) if g.get("rest") else "-",
                     fnum(g["high"]["f1"], 3) if g.get("high") else "-"]
                    + ["%d of %d" % c for c in counts])
    return rows


FAMILY_HEADER = ["set family", "rule", "excess p50 (ms)", "excess p95 (ms)", "F1",
                 "false/min", "median \\|onset error\\| (ms)"]


def family_rows(ctx):
    """Both rules at their defaults by set family: excess latency, F1,
    false onsets, onset error."""
    cd = cusum_default(ctx)
    rows = []
    for label, key in FAMILIES:
        sets = family_sets(ctx, key)
        if not sets:
            continue
        levels = [("sustained", None)] + ([("cusum", cd)] if cd else [])
        for i, (rule, lv) in enumerate(levels):
            s = _summary(ctx, sets, lv)
            rows.append([label if i == 0 else "", rule, fnum(s["exc_p50"], 0),
                         fnum(s["exc_p95"], 0), fnum(s["f1"], 3), fnum(s["fa_per_min"], 2),
                         fnum(s["med_abs_err"], 0)])
    return rows


def family_deltas(ctx):
    """Per family, the cusum rule at its default minus the sustained rule:
    [(family, d excess p50, d excess p95)] where both have values."""
    cd = cusum_default(ctx)
    out = []
    if not cd:
        return out
    for label, key in FAMILIES:
        sets = family_sets(ctx, key)
        if not sets or key == "rest-":
            continue
        a, b = _summary(ctx, sets, None), _summary(ctx, sets, cd)
        if a["exc_p50"] is None or b["exc_p50"] is None:
            continue
        out.append((label, b["exc_p50"] - a["exc_p50"], b["exc_p95"] - a["exc_p95"]))
    return out


def lost_targets(ctx):
    """Targets the sustained rule meets at its default on a set and the
    cusum rule at its default does not: [(set, target label, sustained
    value, cusum value)]."""
    cd = cusum_default(ctx)
    if not cd:
        return []
    out = []
    for d in ctx["sets"]:
        if d.kind == "listing":
            continue
        a, b = _summary(ctx, [d.name], None), _summary(ctx, [d.name], cd)
        for key, op, lim, label in (("f1", ">=", report.F1_MIN, "F1"),
                                    ("med_abs_err", "<=", report.ERR_MAX_MS, "median |err|"),
                                    ("fa_per_min", "<=", report.FA_MAX, "false/min")):
            if not report.applies(d, key):
                continue
            if report._met(a[key], op, lim) and not report._met(b[key], op, lim):
                out.append((d.name, label, a[key], b[key]))
    return out


# --- the bound ------------------------------------------------------------

def compute_bound(ctx):
    """bound.bound() over the traced injected sets and the real rest, from
    rpms-detect's traces at the defaults (cached in ctx["bound"]):
    ({family: {set: [excess ms per burst]}}, rest maxima)."""
    if "bound" in ctx:
        return ctx["bound"]
    d = ctx["defaults"]
    k_on, k_off = float(d["detect"]["k_on"]), float(d["detect"]["k_off"])
    params = {"k": float(d["detect"].get("cusum_k", 1.5)),
              "cap": float(d["detect"].get("cusum_cap", 2.5)),
              "envelope_ms": float(d["dsp"]["envelope_ms"])}
    traced, rest = [], []
    for ds in ctx["sets"]:
        if ds.kind == "rest":
            for rec in ds.recordings:
                tr = report.trace_of(ctx, rec)
                rest.append((tr, rec, bound.calibration(tr, rec, k_on, k_off)))
        elif ds.name in rule_groups(ctx)["traced"]:
            for rec in ds.recordings:
                tr = report.trace_of(ctx, rec)
                traced.append((ds.name, tr, rec, bound.calibration(tr, rec, k_on, k_off)))
    ctx["bound"] = bound.bound(traced, rest, params) if rest and traced else ({}, {})
    return ctx["bound"]


def _any_family(per_family, name):
    """Per burst, the soonest of every family on one set."""
    return np.min(np.array([per_family[f][name] for f in bound.FAMILIES]), axis=0)


def _pct(v, q):
    """Percentile of an array that may hold inf ('-' when empty)."""
    v = np.asarray(v, dtype=float)
    if not len(v):
        return None
    return float(np.percentile(v, q))


BOUND_HEADER = (["data set", "bursts"]
                + ["%s: p50" % f for f in bound.FAMILIES]
                + ["any of them: p50", "p95",
                   "sustained (default) excess p50", "p95",
                   "cusum (default) excess p50", "p95"])


def bound_per_set(ctx):
    """{traced set: (p50, p95)} of the soonest-of-every-family bound's
    excess latency ({} without traces)."""
    fams, _ = compute_bound(ctx)
    if not fams:
        return {}
    out = {}
    for name in rule_groups(ctx)["traced"]:
        anyf = _any_family(fams, name)
        out[name] = (_pct(anyf, 50), _pct(anyf, 95))
    return out


def bound_misses(ctx):
    """The traced sets on which even the bound misses the excess-latency
    target (p50 or p95)."""
    return [n for n, (p50, p95) in bound_per_set(ctx).items()
            if p50 > report.EXC_P50_MS or p95 > report.EXC_P95_MS]


def bound_rows(ctx):
    """Per traced set: the bound's excess p50 for each family, the soonest
    of them (p50, p95), and both rules' measured excess latency."""
    fams, _ = compute_bound(ctx)
    if not fams:
        return []
    cd = cusum_default(ctx)
    rows = []
    for name in rule_groups(ctx)["traced"]:
        anyf = _any_family(fams, name)
        s = _summary(ctx, [name], None)
        c = _summary(ctx, [name], cd) if cd else None
        rows.append([name, len(anyf)] + [fnum(_pct(fams[f][name], 50), 0) for f in bound.FAMILIES]
                    + [fnum(_pct(anyf, 50), 0), fnum(_pct(anyf, 95), 0),
                       fnum(s["exc_p50"], 0), fnum(s["exc_p95"], 0),
                       fnum(c["exc_p50"], 0) if c else "-", fnum(c["exc_p95"], 0) if c else "-"])
    return rows


def bound_pooled(ctx):
    """The soonest-of-every-family bound over every traced set pooled:
    (p50, p95, bursts, sets whose p50 <= the target, sets whose p95 <= the
    target, sets)."""
    fams, _ = compute_bound(ctx)
    if not fams:
        return None
    names = rule_groups(ctx)["traced"]
    per = {n: _any_family(fams, n) for n in names}
    allv = np.concatenate([per[n] for n in names])
    return (_pct(allv, 50), _pct(allv, 95), len(allv),
            sum(1 for n in names if _pct(per[n], 50) <= report.EXC_P50_MS),
            sum(1 for n in names if _pct(per[n], 95) <= report.EXC_P95_MS), len(names))


def rest_maxima_text(ctx):
    """A few of the rest maxima, in words: the power averaged over 5, 20
    and 100 ms, as multiples of the rest power."""
    _, tops = compute_bound(ctx)
    p = tops.get("power")
    if not p:
        return ""
    return ", ".join("%.1f x over %d ms" % (p[L], L) for L in (5, 20, 100) if L in p)
