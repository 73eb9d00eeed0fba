# SPDX-License-Identifier: MIT
"""A numpy re-computation of the daemon's signal chain and detector.

Used only to draw what the daemon sees (filtered EMG, envelope, baseline
and thresholds) in the example figures: every number in the tables comes
from rpms-detect itself. run_eval.py compares this model's onsets with
rpms-detect's on the example recording and says in the report whether they
agree, so a drift between the two is visible.

Follows daemon/dsp.c (RBJ biquads: Butterworth high-pass, low-pass clamped
to 0.45 fs, mains notch and harmonics; moving mean of the squares or of
the Teager-Kaiser energy, then its root) and daemon/detect.c (median/MAD
calibration on a 1 kHz grid, onset after on_ms above k_on with dips under
dip_ms tolerated, back-dated to the last sample at or below the offset
threshold; offset after off_ms below k_off).
"""

import math

import numpy as np

from filters import (biquad_impulse, butterworth_q, causal_filter, moving_mean,
                     rbj_biquad)

MAD_SCALE = 1.4826
IMPULSE_S = 4.0


def chain_sections(fs, dsp):
    """The biquad cascade the daemon builds from its [dsp] settings."""
    order = int(dsp["filter_order"])
    hp, lp = float(dsp["highpass_hz"]), min(float(dsp["lowpass_hz"]), 0.45 * fs)
    secs = [rbj_biquad("high", fs, hp, butterworth_q(order, k)) for k in range(order // 2)]
    secs += [rbj_biquad("low", fs, lp, butterworth_q(order, k)) for k in range(order // 2)]
    mains = float(dsp["mains_hz"])
    if 0 < mains < fs / 2:
        for k in range(1, min(max(int(dsp.get("mains_harmonics", 1)), 1), 8) + 1):
            f = k * mains
            if k > 1 and (f > lp or f >= 0.45 * fs):
                break
            secs.append(rbj_biquad("notch", fs, f, float(dsp["notch_q"])))
    return secs


def envelope(x, fs, dsp):
    """Filtered EMG and moving-RMS envelope, as the daemon computes them.

    The daemon primes its filters on the first sample (a constant input
    gives a steady output), which equals filtering x - x[0] from rest.
    """
    imp = biquad_impulse(chain_sections(fs, dsp), int(min(len(x), IMPULSE_S * fs)))
    y = causal_filter(np.asarray(x, float) - x[0], imp)
    win = int(round(float(dsp["envelope_ms"]) * fs / 1000.0))
    if dsp.get("envelope", "rms") == "tkeo":
        # x[n-1]^2 - x[n] x[n-2], one sample late (zero state before n = 0)
        yp = np.concatenate([[0.0, 0.0], y])
        energy = yp[1:-1] ** 2 - yp[2:] * yp[:-2]
    else:
        energy = y * y
    return y, np.sqrt(np.maximum(moving_mean(energy, max(win, 1)), 0.0))


def _ms(v, fs):
    """Milliseconds (string or number) to samples, as detect.c rounds."""
    return int(round(float(v) * fs / 1000.0))


def calibrate(env, fs, det):
    """Baseline, spread and thresholds from the calibration window."""
    start = int(round(float(det["calibration_start_s"]) * fs))
    length = int(round(float(det["calibration_s"]) * fs))
    stride = int(math.floor(fs / 1000.0)) if fs > 1000.0 else 1
    vals = env[start:start + length:stride].astype(np.float32).astype(float)
    med = float(np.median(vals))
    spread = MAD_SCALE * float(np.median(np.abs(vals - med)))
    spread = max(spread, max(1e-3 * abs(med), 1e-9))
    return {"start": start, "end": start + length, "baseline": med, "spread": spread,
            "thr_on": med + float(det["k_on"]) * spread,
            "thr_off": med + float(det["k_off"]) * spread}


def detect(env, fs, det):
    """Run the onset/offset state machine over the envelope.

    Returns (calibration dict, list of (event, sample, decision_sample))."""
    cal = calibrate(env, fs, det)
    on_n = max(_ms(det["on_ms"], fs), 1)
    dip_n = _ms(det["dip_ms"], fs)
    off_n = max(_ms(det["off_ms"], fs), 1)
    thr_on, thr_off = cal["thr_on"], cal["thr_off"]
    events = []
    state, last_low, edge, above, dip, below, below_from = "idle", None, 0, 0, 0, 0, 0
    for i in range(cal["end"], len(env)):
        e = float(np.float32(env[i]))
        if state == "idle":
            if e > thr_on:
                edge = last_low if last_low is not None else i
                state, above, dip = "cand", 0, 0
            elif e <= thr_off:
                last_low = i
                continue
            else:
                continue
        if state == "cand":
            if e <= thr_off:
                last_low = i
            if e > thr_on:
                dip = 0
                above += 1
                if above >= on_n:
                    state, below = "active", 0
                    events.append(("onset", edge, i))
            else:
                dip += 1
                if dip >= dip_n:
                    state = "idle"
            continue
        if e >= thr_off:
            below = 0
            continue
        if below == 0:
            below_from = i
        below += 1
        if below >= off_n:
            state, last_low = "idle", i
            events.append(("offset", below_from, i))
    return cal, events


def longest_confirmation(env, thr_on, dip_n, a, b):
    """Most samples above thr_on that a candidate onset collects in
    env[a:b] before a dip of dip_n samples ends it (the count the
    detector compares with on_ms)."""
    best = above = dip = 0
    for e in env[a:b]:
        if e > thr_on:
            above += 1
            dip = 0
            best = max(best, above)
        elif above:
            dip += 1
            if dip >= max(dip_n, 1):
                above = dip = 0
    return best
