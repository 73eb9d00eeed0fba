# SPDX-License-Identifier: MIT
"""Seeded generator: EMG-like bursts, clonus, spikes and mains hum injected
into real rest EMG.

All randomness comes from the numpy Generator passed in, so a seed gives
the same recording on every machine (numpy's PCG64 stream is stable).

SNR (dB) of a burst = 20 log10(RMS of the injected burst over its core /
RMS of the rest EMG band-passed 20-450 Hz over the 1 s before its onset).
The core of a burst is its plateau (ramps excluded); the core of a clonus
train is where a sub-burst is at >= half its peak. Mains hum is not part
of the noise in this ratio: it is reported as its own level.
"""

import math

import numpy as np

from filters import brickwall

EMG_BAND = (20.0, 450.0)
NOISE_WINDOW_S = 1.0


def emg_like_noise(rng, n, fs):
    """Unit-RMS Gaussian noise with a surface-EMG-like spectrum.

    Shape: a band-pass PSD f^2 fh^4 / ((f^2 + fl^2)(f^2 + fh^2)^2) whose
    corners are drawn per call (fl 40-80 Hz, fh 100-160 Hz), peaking near
    60-120 Hz, then limited to 20-450 Hz.
    """
    fl, fh = rng.uniform(40.0, 80.0), rng.uniform(100.0, 160.0)
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    psd = f ** 2 * fh ** 4 / ((f ** 2 + fl ** 2) * (f ** 2 + fh ** 2) ** 2)
    spec *= np.sqrt(psd)
    spec[(f < EMG_BAND[0]) | (f > EMG_BAND[1])] = 0.0
    y = np.fft.irfft(spec, n)
    return y / np.sqrt(np.mean(y ** 2))


def slow_modulation(rng, n, fs, depth=0.15, max_hz=3.0):
    """1 + depth x (unit-RMS noise below max_hz): slow force fluctuation."""
    if n < 4:
        return np.ones(n)
    m = brickwall(rng.standard_normal(n), fs, 0.0, max_hz)
    rms = np.sqrt(np.mean(m ** 2))
    return 1.0 + depth * (m / rms if rms > 0 else m)


def burst_shape(n, ramp_up, ramp_down):
    """Amplitude envelope: linear rise over ramp_up samples, plateau, linear
    fall over ramp_down. Sample 0 is already above zero (the true onset).

    Returns (envelope, core mask = plateau)."""
    env = np.ones(n)
    if ramp_up > 0:
        env[:ramp_up] = np.arange(1, ramp_up + 1) / ramp_up
    if ramp_down > 0:
        env[n - ramp_down:] = np.arange(ramp_down, 0, -1) / ramp_down
    core = np.zeros(n, dtype=bool)
    core[ramp_up:n - ramp_down] = True
    return env, core


def clonus_shape(rng, n_max, fs):
    """Rhythmic sub-bursts at 5-8 Hz: Hann-shaped, duty 40-60 %, amplitude
    +/- 25 %, the period jittered by 5 %. Returns (envelope, core mask,
    frequency in Hz); the envelope ends with the last whole sub-burst."""
    freq = rng.uniform(5.0, 8.0)
    duty = rng.uniform(0.4, 0.6)
    env = np.zeros(n_max)
    core = np.zeros(n_max, dtype=bool)
    t = 0
    end = 0
    while True:
        period = int(round(fs / freq * rng.uniform(0.95, 1.05)))
        width = max(int(round(period * duty)), 4)
        if t + width > n_max:
            break
        # (i + 1) / (width + 1): strictly positive from the first sample on
        w = np.sin(math.pi * (np.arange(width) + 1) / (width + 1)) ** 2
        env[t:t + width] = w * rng.uniform(0.75, 1.25)
        core[t:t + width] |= w >= 0.5
        end = t + width
        t += period
    return env[:end], core[:end], freq


def noise_rms_before(rest_band, onset, fs):
    """RMS of the band-passed rest in the NOISE_WINDOW_S before onset."""
    lo = max(0, onset - int(NOISE_WINDOW_S * fs))
    seg = rest_band[lo:onset]
    return float(np.sqrt(np.mean(seg ** 2))) if len(seg) else 0.0


def inject_burst(rng, x, rest_band, fs, onset, shape, core, snr_db):
    """Add an EMG-like burst with the envelope `shape` at `onset`, scaled so
    its core RMS is snr_db above the local rest. Returns the scale used and
    the burst's detectability: the ms from its onset to the first sample
    whose amplitude (scale x shape; the carrier has unit RMS) reaches the
    local rest RMS, an instantaneous SNR of 0 dB (None if it never does)."""
    n = len(shape)
    carrier = emg_like_noise(rng, n, fs) * slow_modulation(rng, n, fs)
    burst = carrier * shape
    core_rms = float(np.sqrt(np.mean(burst[core] ** 2)))
    sigma = noise_rms_before(rest_band, onset, fs)
    scale = sigma * 10.0 ** (snr_db / 20.0) / core_rms
    x[onset:onset + n] += scale * burst
    reach = np.flatnonzero(scale * shape >= sigma)
    return scale, (float(reach[0]) * 1000.0 / fs if len(reach) else None)


def spike_waveform(rng, fs):
    """A motion spike (one sine cycle, 3-8 ms) or an electrode pop (fast
    rise, exponential decay, tau 1-2.5 ms, cut at 8 ms); unit peak, random
    sign. Returns (waveform, kind)."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if rng.random() < 0.5:
        n = max(int(round(rng.uniform(3.0, 8.0) * fs / 1000.0)), 2)
        w = np.sin(2.0 * math.pi * (np.arange(n) + 0.5) / n)
        return sign * w / np.max(np.abs(w)), "motion"
    n = int(round(8.0 * fs / 1000.0))
    tau = rng.uniform(1.0, 2.5) * fs / 1000.0
    w = np.exp(-np.arange(n) / tau)
    return sign * w, "pop"


def mains_hum(rng, n, fs, rms):
    """50 Hz hum with harmonics 100 Hz (-20 dB), 150 Hz (-10 dB) and 250 Hz
    (-16 dB) relative to the fundamental, random phases, the fundamental
    off by up to 0.05 Hz; total RMS = rms."""
    f0 = 50.0 + rng.uniform(-0.05, 0.05)
    t = np.arange(n) / fs
    hum = np.zeros(n)
    for harmonic, rel_db in ((1, 0.0), (2, -20.0), (3, -10.0), (5, -16.0)):
        amp = 10.0 ** (rel_db / 20.0)
        hum += amp * np.sin(2.0 * math.pi * harmonic * f0 * t + rng.uniform(0, 2 * math.pi))
    return hum * rms / np.sqrt(np.mean(hum ** 2))


def plan_events(rng, total_s, first_s, dur_range, gap_range, tail_s=1.0):
    """Start times and durations (s) of bursts laid out from first_s with
    rest gaps drawn from gap_range, the last ending tail_s before the end."""
    plan = []
    t = first_s
    while True:
        dur = rng.uniform(*dur_range)
        if t + dur + tail_s > total_s:
            return plan
        plan.append((t, dur))
        t += dur + rng.uniform(*gap_range)


# --- mains interference of the hum sets -----------------------------------
#
# The hum of a hum set: a mains fundamental at 50 or 60 Hz with its 3rd and
# 5th harmonics, at a fixed total RMS (times the band-passed rest RMS),
# present from the first sample, calibration included.
#
# Harmonic levels, relative to the fundamental, drawn per recording: 3rd
# -20 to -10 dB, 5th -26 to -12 dB. Why: the supply voltage itself may
# carry a 3rd harmonic of up to 5 % and a 5th of up to 6 % (EN 50160's
# limits, -26 and -24 dB), and hum reaches the electrodes mostly by
# capacitive coupling, whose current grows with frequency (x3 for the 3rd,
# x5 for the 5th: +9.5 and +14 dB), so a supply at those limits gives
# about -16 and -10 dB on the body; non-linear loads nearby (switched-mode
# supplies, dimmers, motor drives) raise the 3rd further. The ranges span
# a clean supply to a distorted one. No even harmonics (a symmetric supply
# has none); the older 'mains' set keeps its 2nd.
#
# Frequency: "steady" is a constant frequency within +/-0.05 Hz of nominal
# (an interconnected grid in normal operation); "drifting" wanders with a
# peak deviation D drawn per recording from 0.1 to 0.5 Hz (a small or
# islanded grid, a generator), half the recordings on a sinusoid of period
# 5-30 s, half on a slow random walk (Brownian motion, its mean removed,
# scaled to peak D). Every harmonic follows the fundamental (harmonic k
# wanders by k x D). The phase is the running integral of the frequency,
# so the waveform is continuous.

HUM_H3_DB = (-20.0, -10.0)
HUM_H5_DB = (-26.0, -12.0)
HUM_STEADY_HZ = 0.05
HUM_DRIFT_HZ = (0.1, 0.5)
HUM_DRIFT_PERIOD_S = (5.0, 30.0)
HUM_WALK_STEP_S = 0.1       # time step of the random walk (interpolated)
POP_MS = 3.0                # electrode pop of the hum sets
POP_TAU_MS = (0.5, 1.0)


def mains_frequency(rng, n, fs, nominal, drift):
    """Instantaneous mains frequency (Hz) of every sample, and a dict that
    says how it was drawn. drift False: constant, within HUM_STEADY_HZ of
    nominal; True: peak deviation HUM_DRIFT_HZ, sinusoid or random walk."""
    t = np.arange(n) / fs
    if not drift:
        off = rng.uniform(-HUM_STEADY_HZ, HUM_STEADY_HZ)
        return np.full(n, nominal + off), {"kind": "steady", "offset_hz": round(off, 4)}
    peak = rng.uniform(*HUM_DRIFT_HZ)
    if rng.random() < 0.5:
        period = rng.uniform(*HUM_DRIFT_PERIOD_S)
        dev = np.sin(2.0 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
        info = {"kind": "sinusoid", "period_s": round(period, 2)}
    else:
        m = int(math.ceil(t[-1] / HUM_WALK_STEP_S)) + 2 if n else 2
        walk = np.cumsum(rng.standard_normal(m))
        walk -= walk.mean()
        dev = np.interp(t, np.arange(m) * HUM_WALK_STEP_S, walk)
        info = {"kind": "random walk", "step_s": HUM_WALK_STEP_S}
    top = float(np.max(np.abs(dev)))
    dev = dev / top if top > 0 else dev
    info["peak_dev_hz"] = round(peak, 4)
    return nominal + peak * dev, info


def mains_hum_sets(rng, n, fs, rms, nominal, drift):
    """Hum of a hum set: the fundamental (frequency from mains_frequency)
    plus its 3rd and 5th harmonics at levels drawn from HUM_H3_DB and
    HUM_H5_DB, random phases, total RMS = rms. Returns (hum, meta)."""
    freq, info = mains_frequency(rng, n, fs, nominal, drift)
    phase = 2.0 * math.pi * np.cumsum(freq) / fs
    h3, h5 = rng.uniform(*HUM_H3_DB), rng.uniform(*HUM_H5_DB)
    hum = np.zeros(n)
    for k, rel_db in ((1, 0.0), (3, h3), (5, h5)):
        hum += 10.0 ** (rel_db / 20.0) * np.sin(k * phase + rng.uniform(0, 2 * math.pi))
    info.update({"nominal_hz": nominal, "h3_db": round(h3, 2), "h5_db": round(h5, 2),
                 "min_hz": round(float(freq.min()), 4), "max_hz": round(float(freq.max()), 4)})
    return hum * rms / np.sqrt(np.mean(hum ** 2)), info


def pop_waveform(rng, fs):
    """An electrode pop of POP_MS: a jump to the peak within one sample,
    then an exponential decay (tau drawn from POP_TAU_MS) shifted so it
    reaches zero at POP_MS; unit peak, random sign."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    n = max(int(round(POP_MS * fs / 1000.0)), 2)
    tau = rng.uniform(*POP_TAU_MS) * fs / 1000.0
    w = np.exp(-np.arange(n + 1) / tau)
    w = (w - w[-1])[:n]
    return sign * w / w[0], "pop3"
