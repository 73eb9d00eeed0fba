# SPDX-License-Identifier: MIT
"""Signal processing helpers in plain numpy (no scipy on the target system).

Zero-phase filters applied in the frequency domain (offline references,
burst synthesis, SNR measurement): the gain is the squared magnitude of an
analog Butterworth prototype, i.e. what a forward-backward pass of that
filter does, without its edge transients. Nothing here models the daemon's
own (causal) chain: what the daemon computes is read from
rpms-detect --trace.
"""

import math

import numpy as np


def butter_gain(freqs, fc, order, kind):
    """Magnitude of an analog Butterworth low- or high-pass at freqs (Hz)."""
    f = np.maximum(np.abs(freqs), 1e-12)
    ratio = f / fc if kind == "low" else fc / f
    return 1.0 / np.sqrt(1.0 + ratio ** (2 * order))


def _pad_reflect(x, npad):
    """Reflect-pad x by npad samples at both ends (npad < len(x))."""
    npad = min(npad, len(x) - 1)
    if npad <= 0:
        return x, 0
    return np.concatenate([x[npad:0:-1], x, x[-2:-npad - 2:-1]]), npad


def zero_phase(x, fs, low_hz=None, high_hz=None, order=2, pad_s=1.0):
    """Zero-phase band/low/high-pass of x.

    low_hz is the high-pass corner (the band's lower edge), high_hz the
    low-pass corner; either may be None. The applied gain is |H|^2 of an
    order-`order` Butterworth, as a forward-backward pass would give.
    """
    x = np.asarray(x, dtype=float)
    xp, npad = _pad_reflect(x, int(pad_s * fs))
    n = len(xp)
    nfft = 1 << int(math.ceil(math.log2(n)))
    spec = np.fft.rfft(xp, nfft)
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    gain = np.ones_like(freqs)
    if low_hz:
        gain *= butter_gain(freqs, low_hz, order, "high") ** 2
    if high_hz:
        gain *= butter_gain(freqs, high_hz, order, "low") ** 2
    y = np.fft.irfft(spec * gain, nfft)[:n]
    return y[npad:npad + len(x)]


def brickwall(x, fs, low_hz, high_hz):
    """Keep only the spectral content of x between low_hz and high_hz."""
    x = np.asarray(x, dtype=float)
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / fs)
    spec[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    return np.fft.irfft(spec, len(x))


def remove_mains(x, fs, mains_hz=50.0, width_hz=1.0, per_harmonic_hz=0.6):
    """Zero-phase comb notch: remove mains_hz and its harmonics below fs/2
    (every spectral bin within max(width_hz, k x per_harmonic_hz) of
    harmonic k is cleared: harmonic k of a mains frequency that wanders by
    D wanders by k x D, and the hum sets' wanders by up to 0.5 Hz)."""
    x = np.asarray(x, dtype=float)
    xp, npad = _pad_reflect(x, int(fs))
    spec = np.fft.rfft(xp)
    freqs = np.fft.rfftfreq(len(xp), 1.0 / fs)
    k = np.maximum(np.round(freqs / mains_hz), 1.0)
    dist = np.abs(freqs - mains_hz * k)
    spec[dist <= np.maximum(width_hz, k * per_harmonic_hz)] = 0.0
    return np.fft.irfft(spec, len(xp))[npad:npad + len(x)]


def resample_fft(x, factor):
    """Resample x by an integer factor (upsampling) in the frequency domain.

    The mean and the straight line joining the two ends are removed first
    so the implied periodic extension has no jump, then added back at the
    new rate.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    t = np.arange(n)
    line = x[0] + (x[-1] - x[0]) * t / (n - 1)
    spec = np.fft.rfft(x - line)
    m = n * factor
    out = np.zeros(m // 2 + 1, dtype=complex)
    out[:len(spec)] = spec
    if n % 2 == 0:
        out[n // 2] *= 0.5  # the old Nyquist bin is split between +/- f
    y = np.fft.irfft(out, m) * factor
    tn = np.arange(m) / factor
    return y + x[0] + (x[-1] - x[0]) * tn / (n - 1)


def moving_mean(x, n, forward=False):
    """Mean of n consecutive samples.

    forward=False: of the n samples ending at i (causal, shorter at the
    start); forward=True: of the n samples starting at i (shorter at the end).
    """
    x = np.asarray(x, dtype=float)
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(len(x))
    if forward:
        hi = np.minimum(i + n, len(x))
        return (c[hi] - c[i]) / (hi - i)
    lo = np.maximum(i + 1 - n, 0)
    return (c[i + 1] - c[lo]) / (i + 1 - lo)


def runs(mask):
    """Start (inclusive) and end (exclusive) indices of the True runs."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


# --- causal IIR filters (the naive causal reference) -----------------------
#
# Biquads designed by the bilinear transform (R. Bristow-Johnson's audio EQ
# cookbook forms), applied causally: the input is multiplied in the
# frequency domain by the filters' complex response H(e^jw) over an FFT
# long enough (the signal + TAIL_S) that the impulse response's tail does
# not wrap round, which is the same as running the recursion sample by
# sample from rest, without a Python loop.

CAUSAL_TAIL_S = 2.0


def biquad_lowpass(fc, fs, q=1.0 / math.sqrt(2.0)):
    """(b, a) of a 2nd-order low-pass (Butterworth for the default q)."""
    w = 2.0 * math.pi * fc / fs
    alpha = math.sin(w) / (2.0 * q)
    c = math.cos(w)
    return ([(1 - c) / 2, 1 - c, (1 - c) / 2], [1 + alpha, -2 * c, 1 - alpha])


def biquad_highpass(fc, fs, q=1.0 / math.sqrt(2.0)):
    """(b, a) of a 2nd-order high-pass (Butterworth for the default q)."""
    w = 2.0 * math.pi * fc / fs
    alpha = math.sin(w) / (2.0 * q)
    c = math.cos(w)
    return ([(1 + c) / 2, -(1 + c), (1 + c) / 2], [1 + alpha, -2 * c, 1 - alpha])


def biquad_notch(f0, fs, q):
    """(b, a) of a notch at f0 whose -3 dB width is f0 / q."""
    w = 2.0 * math.pi * f0 / fs
    alpha = math.sin(w) / (2.0 * q)
    c = math.cos(w)
    return ([1.0, -2 * c, 1.0], [1 + alpha, -2 * c, 1 - alpha])


def causal_filter(x, fs, sections):
    """x through the cascade of (b, a) biquads, causally, from rest."""
    x = np.asarray(x, dtype=float)
    n = len(x) + int(CAUSAL_TAIL_S * fs)
    nfft = 1 << int(math.ceil(math.log2(n)))
    z = np.exp(-1j * 2.0 * math.pi * np.fft.rfftfreq(nfft))   # z^-1 on the unit circle
    h = np.ones(len(z), dtype=complex)
    for b, a in sections:
        h *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.fft.irfft(np.fft.rfft(x, nfft) * h, nfft)[:len(x)]
