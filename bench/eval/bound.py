# SPDX-License-Identifier: MIT
"""How soon could a detector decide without a false onset on the real rest?

Issue 17 asks for an excess decision latency (decision minus the moment a
burst became detectable, scoring.detectable_ms) of at most 10 ms at p50 and
25 ms at p95 on every set, with at most 0.5 false onsets per minute of
rest. The real rest recordings leave about 1.34 minutes of scored rest
each, so there the false-onset target means none at all: whatever a
detector compares with its threshold must stay below that threshold
everywhere on the real rest.

This module turns that into a lower bound on the latency, from the
envelope rpms-detect computes (its --trace, so the daemon's own front end:
limiter, band-pass, notches, 5 ms RMS; no model of ours). A family of
statistics is a set of members, each an array over the samples (for
example the envelope's power averaged over the last L ms, one member per
L). For every member, its threshold can be no lower than the member's
largest value on the real rest (both rates; each recording's statistic in
units of its own calibration window, as a detector calibrates). Then, for
each injected burst, the earliest sample at which any member stands above
its threshold is the soonest any detector that thresholds members of the
family (one, or any combination of them with OR) can decide that burst
without a false onset on the real rest: an oracle that picks, for each
burst after the fact, the member that fires first.

The families, and the rules each covers:
 * "power": the envelope's power over the rest power (the mean power of
   the calibration window), averaged over the last L ms (WINDOWS_MS).
   Page's CUSUM on a statistic x with drift k and threshold h decides
   when some stretch ending now has sum(x - k) > h, i.e. mean over the
   last L of x > k + h / L for some L: it thresholds these windowed
   means, so a CUSUM on the power, with any drift and threshold, is
   covered (up to the window grid);
 * "log power": the same on the log of the power ratio (a CUSUM on it);
 * "cusum increments": the same on the clipped per-millisecond increments
   that detect.rule = cusum sums (at the default cusum_k and cusum_cap):
   covers that rule at every cusum_h;
 * "quietest window": the smallest of n envelope values one envelope window
   apart (N_WINDOWS), the sustained envelope of detect.rule = sustained at
   sustain_skip 0, in the rule's units (less the median, over the spread):
   covers that rule at every k_on and sustain_ms up to (n - 1) envelope
   windows.

Each family is in the units its rules calibrate in: the power families in
the rest power, the last two in the calibrated median and spread, so a
threshold above a member's rest maximum is one and the same setting
(k_on, cusum_h) on every recording.

For a burst, only windows over its own stretch of the recording count
(_clear_from): none reaching back into an earlier burst or to a pop,
whose evidence would be theirs (the detector would have fired on them, or
started afresh after them).

The bound leaves out everything else that makes a real detector slower:
pops and false onsets in the injected sets' own rest (only the real rest
sets the thresholds), onset dating, and the need to choose one member in
advance. A set whose bound already misses the target cannot meet it with
any detector of these families on this front end.
"""

import numpy as np

import scoring

# Window lengths of the averaged families: every ms to 50 ms, then coarser
# to 2 s (a CUSUM can sum over any stretch; longer ones matter only for
# slow weak rises, and their means change slowly with L).
WINDOWS_MS = (tuple(range(1, 51)) + tuple(range(55, 301, 5)) + tuple(range(320, 1001, 20))
              + tuple(range(1050, 2001, 50)))
N_WINDOWS = tuple(range(1, 15))     # quietest-window family: n values, 0-65 ms
FAMILIES = ("power", "log power", "cusum increments", "quietest window")
# After a weak-activity stretch, the dating may still put an onset inside
# it (it looks back 0.5 s): such onsets are not counted as false, so the
# bound does not hold the rest's maximum there against a detector.
WEAK_MARGIN_S = 0.5
SPIKE_GUARD_MS = 100.0


def calibration(trace, rec, k_on, k_off):
    """A recording's calibration from its trace: the mean rest power (of
    the envelope over the calibration window) and the detector's median
    and spread (from its thresholds: on = median + k_on spread, off =
    median + k_off spread)."""
    a = int(round(rec.cal_start_s * rec.fs))
    env = np.asarray(trace["envelope"][a:rec.cal_end], dtype=float)
    on = float(trace["on_threshold"][rec.cal_end])
    off = float(trace["off_threshold"][rec.cal_end])
    spread = (on - off) / (k_on - k_off)
    return {"p0": float(np.mean(env * env)), "median": off - k_off * spread, "spread": spread}


def _windowed_mean(c, n):
    """Mean of the n samples ending at each sample (-inf before n exist),
    from c, the cumulative sum of the samples with a 0 in front."""
    out = np.full(len(c) - 1, -np.inf)
    if n < len(c):
        out[n - 1:] = (c[n:] - c[:-n]) / n
    return out


def _quietest(env, n, w):
    """The smallest of the n envelope values w samples apart ending at each
    sample (-inf before they exist)."""
    out = env.copy()
    for j in range(1, n):
        shifted = np.full(len(env), -np.inf)
        shifted[j * w:] = env[:-j * w]
        out = np.minimum(out, shifted)
    return out


def members(family, trace, rec, cal, params):
    """{member: (its span in samples, array over the samples)} of one
    family on one recording. params: "k" and "cap" of detect.rule = cusum
    (cusum_k, cusum_cap), "envelope_ms" (dsp.envelope_ms)."""
    fs = rec.fs
    env = np.asarray(trace["envelope"], dtype=float)
    if family == "quietest window":
        w = max(int(round(params["envelope_ms"] * fs / 1000.0)), 1)
        amp = (env - cal["median"]) / cal["spread"]
        return {n: ((n - 1) * w + 1, _quietest(amp, n, w)) for n in N_WINDOWS}
    if family == "power":
        x = env * env / cal["p0"]
    elif family == "log power":
        x = np.log(np.maximum(env * env / cal["p0"], 1e-12))
    else:
        scale = cal["median"] / cal["spread"]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = scale * np.log(np.where(env > 0, env, np.nan) / cal["median"]) - params["k"]
        x = np.clip(np.nan_to_num(z, nan=-params["cap"]), -params["cap"], params["cap"])
    c = np.concatenate([[0.0], np.cumsum(x)])
    out = {}
    for L in WINDOWS_MS:
        n = max(int(round(L * fs / 1000.0)), 1)
        out[L] = (n, _windowed_mean(c, n))
    return out


def rest_maxima(family, rest, params):
    """{member: its largest value} over the scored part of the real rest
    recordings: rest is [(trace, rec, cal)]; params as for members()."""
    top = {}
    for trace, rec, cal in rest:
        ok = np.zeros(len(trace["envelope"]), dtype=bool)
        ok[rec.cal_end:] = True
        for a, b in rec.weak:
            ok[max(a, 0):b + int(WEAK_MARGIN_S * rec.fs)] = False
        for m, (_, v) in members(family, trace, rec, cal, params).items():
            top[m] = max(top.get(m, -np.inf), float(np.max(v[ok])))
    return top


def _clear_from(rec, onset):
    """The first sample a window may cover for a burst starting at onset:
    after the calibration window, TAIL_MS after the end of any earlier
    burst or clonus train (a detector's offset comes off_ms after it, and
    its evidence starts again from there) and SPIKE_GUARD_MS after any
    earlier spike or pop (its evidence, the filters' ringing included, is
    the spike's, not the burst's; spikes are injected 300 ms or more
    before a burst, so this never reaches into one)."""
    fs = rec.fs
    start = rec.cal_end
    for e in rec.events:
        if e["onset_sample"] >= onset:
            continue
        tail = SPIKE_GUARD_MS if e["kind"] == "spike" else scoring.TAIL_MS
        start = max(start, e["end_sample"] + int(tail * fs / 1000.0))
    return start


def earliest(family, trace, rec, cal, params, top):
    """For each scored burst of a recording with a known detectable moment:
    (truth, ms from its true onset to the earliest sample inside its span
    [onset - TOL_MS, end + TAIL_MS) at which a member, over samples of this
    burst's own stretch of the recording (_clear_from), stands above its
    rest maximum; None if none does)."""
    fs = rec.fs
    firsts = [(span, np.flatnonzero(v > top[m]))
              for m, (span, v) in members(family, trace, rec, cal, params).items()]
    out = []
    for t in rec.events:
        if t["kind"] not in ("burst", "clonus") or not t["scored"]:
            continue
        if scoring.detectable_ms(t) is None:
            continue
        lo = t["onset_sample"] - int(scoring.TOL_MS * fs / 1000.0)
        hi = t["end_sample"] + int(scoring.TAIL_MS * fs / 1000.0)
        clear = _clear_from(rec, t["onset_sample"])
        best = None
        for span, idx in firsts:
            i = np.searchsorted(idx, max(lo, clear + span - 1))
            if i < len(idx) and idx[i] < hi and (best is None or idx[i] < best):
                best = int(idx[i])
        out.append((t, None if best is None else (best - t["onset_sample"]) * 1000.0 / fs))
    return out


def bound(traced, rest, params):
    """The bound for every family: {family: {set name: [excess ms of each
    burst, inf where no member fired]}} and the rest maxima {family:
    {member: value}}. traced: [(set name, trace, rec, cal)] of the injected
    recordings; rest: [(trace, rec, cal)] of the real rest recordings;
    params as for members(). The bursts come in the same order for every
    family."""
    out, tops = {}, {}
    for fam in FAMILIES:
        top = tops[fam] = rest_maxima(fam, rest, params)
        per = out[fam] = {}
        for name, trace, rec, cal in traced:
            for t, ms in earliest(fam, trace, rec, cal, params, top):
                per.setdefault(name, []).append(
                    np.inf if ms is None else ms - scoring.detectable_ms(t))
    return out, tops
