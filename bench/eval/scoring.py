# SPDX-License-Identifier: MIT
"""Scoring detected onsets against the truth.

Matching: every (detection, true onset) pair within +/- TOL_MS is a
candidate; candidates are taken in order of increasing |distance| and
kept when neither side is taken yet (greedy one-to-one by distance).

A detection that is not matched is a false onset. It is
 * "in rest" when it was made outside every burst span [onset - TOL_MS,
   end + TAIL_MS] (a false onset per minute of rest counts these, rest
   being the scored time outside those spans);
 * "in a burst" otherwise: a burst split in two, or an onset more than
   TOL_MS off.
"Made" is the decision sample when the detector gives one (rpms-detect:
an onset decided during a burst but back-dated into the rest before it
is a wrong onset time, not a stimulus fired at rest), else the onset.
Decision latency of a burst = the first decision made during it (its span,
as below) - its true onset; excess latency = that - the moment the burst
became detectable (detectable_ms).
A burst "got an onset" (n_onsets, first onset) when an onset was made
inside its span, by the same rule, so an onset that the daemon decided
during the burst but dated far before it still counts as detection with
a large onset error.
Detections before the end of calibration or inside an ignored span (a
burst that cannot be scored) are not counted at all.
"""

import dataclasses

import numpy as np

TOL_MS = 50.0
TAIL_MS = 250.0
SPIKE_WINDOW_MS = 300.0
# A burst is detectable when its amplitude first reaches the rest RMS (the
# truth's reach_ms) plus this long: a detector must see about that much of
# it to tell it from a transient (a 3-8 ms pop or motion spike).
TRANSIENT_MS = 10.0


@dataclasses.dataclass
class RecScore:
    """What one detector did on one recording."""
    truths: list            # dicts: the scored burst + matched/err/lat/n_onsets
    fp_rest: int
    fp_burst: int
    fp_spike: int           # false onsets within SPIKE_WINDOW_MS after a spike
    n_spikes: int
    rest_s: float
    weak_onsets: int = 0    # onsets inside known weak-activity stretches


def _inside(x, spans):
    """True when x is inside one of the half-open spans."""
    return any(a <= x < b for a, b in spans)


def greedy_match(det, true, tol):
    """One-to-one matches (det index, true index) within tol, nearest first."""
    pairs = [(abs(d - t), i, j) for i, d in enumerate(det) for j, t in enumerate(true)
             if abs(d - t) <= tol]
    pairs.sort()
    used_d, used_t, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def burst_spans(rec, fs):
    """[onset - TOL, end + TAIL) of every burst and clonus train."""
    tol, tail = int(TOL_MS * fs / 1000), int(TAIL_MS * fs / 1000)
    return [(e["onset_sample"] - tol, e["end_sample"] + tail)
            for e in rec.events if e["kind"] in ("burst", "clonus")]


def rest_seconds(rec, spans):
    """Scored time outside bursts, ignored spans and weak activity."""
    free = np.zeros(len(rec.x), dtype=bool)
    free[rec.cal_end:] = True
    for a, b in list(spans) + list(rec.ignore) + list(rec.weak):
        free[max(a, 0):max(b, 0)] = False
    return float(np.count_nonzero(free)) / rec.fs


def score(rec, onsets, decisions=None):
    """Score one detector's onsets (and decision samples) on a recording."""
    fs = rec.fs
    tol = TOL_MS * fs / 1000.0
    keep = [i for i, s in enumerate(onsets)
            if s >= rec.cal_end and not _inside(s, rec.ignore)]
    det = [int(onsets[i]) for i in keep]
    dec = [int(decisions[i]) for i in keep] if decisions is not None else None
    truths = [dict(e) for e in rec.events if e["kind"] in ("burst", "clonus") and e["scored"]]
    matches = dict((j, i) for i, j in greedy_match(det, [t["onset_sample"] for t in truths], tol))
    spans = burst_spans(rec, fs)
    made = dec if dec else det
    for j, t in enumerate(truths):
        lo, hi = t["onset_sample"] - tol, t["end_sample"] + TAIL_MS * fs / 1000
        # A burst got an onset when one was made (decided, for rpms-detect)
        # during it, however far back that onset was dated.
        first = [k for k, m in enumerate(made) if lo <= m < hi]
        t["n_onsets"] = len(first)
        t["matched"] = j in matches
        t["floor_ms"] = detectable_ms(t)
        if t["matched"]:
            i = matches[j]
            t["err_ms"] = (det[i] - t["onset_sample"]) * 1000.0 / fs
            t["lat_ms"] = (dec[i] - t["onset_sample"]) * 1000.0 / fs if dec else None
            t["excess_ms"] = (t["lat_ms"] - t["floor_ms"] if t["lat_ms"] is not None
                              and t["floor_ms"] is not None else None)
        t["first_err_ms"] = (det[first[0]] - t["onset_sample"]) * 1000.0 / fs if first else None
        t["first_lat_ms"] = ((dec[first[0]] - t["onset_sample"]) * 1000.0 / fs
                             if first and dec else None)
        t["first_excess_ms"] = (t["first_lat_ms"] - t["floor_ms"]
                                if t["first_lat_ms"] is not None and t["floor_ms"] is not None
                                else None)
    matched_det = set(matches.values())
    spikes = [e["onset_sample"] for e in rec.events if e["kind"] == "spike"]
    win = SPIKE_WINDOW_MS * fs / 1000.0
    fp_rest = fp_burst = fp_spike = weak = 0
    for i, s in enumerate(det):
        made = dec[i] if dec else s
        if _inside(s, rec.weak) or _inside(made, rec.weak):
            weak += 1
            continue
        if i in matched_det:
            continue
        if _inside(made, spans):
            fp_burst += 1
        else:
            fp_rest += 1
            if any(0 <= s - p + tol < win + tol for p in spikes):
                fp_spike += 1
    return RecScore(truths, fp_rest, fp_burst, fp_spike, len(spikes),
                    rest_seconds(rec, spans), weak)


def detectable_ms(truth):
    """When a burst becomes detectable, in ms after its true onset: its
    amplitude reaches the rest RMS (reach_ms, from the truth) plus
    TRANSIENT_MS; None when the truth does not say (no ramp known)."""
    r = truth.get("reach_ms")
    if r in ("", None):
        return None
    return float(r) + TRANSIENT_MS


def _pct(values, q):
    """Percentile of a list, None when empty."""
    return float(np.percentile(values, q)) if len(values) else None


def summarize(scores):
    """Pool the recordings of a data set into its metrics."""
    truths = [t for s in scores for t in s.truths]
    tp = sum(1 for t in truths if t["matched"])
    fp_rest = sum(s.fp_rest for s in scores)
    fp_burst = sum(s.fp_burst for s in scores)
    n = len(truths)
    errs = [t["err_ms"] for t in truths if t["matched"]]
    # Decision latency: the first decision made during each burst (when the
    # daemon would fire for it), whether or not its date matched; over
    # matched onsets only, a detector whose date follows its decision
    # would have its late decisions cut off by the match window.
    lats = [t["first_lat_ms"] for t in truths if t.get("first_lat_ms") is not None]
    excess = [t["first_excess_ms"] for t in truths if t.get("first_excess_ms") is not None]
    prec = tp / (tp + fp_rest + fp_burst) if tp + fp_rest + fp_burst else None
    rec = tp / n if n else None
    f1 = (2 * prec * rec / (prec + rec) if prec is not None and rec is not None
          and prec + rec > 0 else (0.0 if n else None))
    rest_min = sum(s.rest_s for s in scores) / 60.0
    return {
        "n": n, "tp": tp, "fp_rest": fp_rest, "fp_burst": fp_burst,
        "fp_spike": sum(s.fp_spike for s in scores),
        "n_spikes": sum(s.n_spikes for s in scores),
        "hit": sum(1 for t in truths if t["n_onsets"] > 0),
        "split": sum(1 for t in truths if t["n_onsets"] > 1),
        "precision": prec, "recall": rec, "f1": f1,
        "med_err": _pct(errs, 50), "med_abs_err": _pct(np.abs(errs), 50),
        "lat_p50": _pct(lats, 50), "lat_p95": _pct(lats, 95),
        "exc_p50": _pct(excess, 50), "exc_p95": _pct(excess, 95), "n_excess": len(excess),
        "rest_min": rest_min, "fa_per_min": fp_rest / rest_min if rest_min > 0 else None,
        "weak_onsets": sum(s.weak_onsets for s in scores),
    }
