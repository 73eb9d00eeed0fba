# SPDX-License-Identifier: MIT
"""Reference onset detectors: three offline ones written from the papers'
methods, and a plain causal one (NaiveCausal, the naive baseline).

The offline ones may look ahead (zero-phase filters, forward windows): they
are the offline yardstick, not candidates for the closed loop. Each one takes its
baseline statistics from the same calibration window as rpms-detect on
that recording and reports no onset before that window ends.

The papers detect one onset per trial; to run them on continuous
recordings with many bursts, every method's active intervals separated by
less than MERGE_GAP_MS are merged into one burst, and an interval that
starts before the calibration window ends is dropped. That adaptation is
ours and is the same for all three, as is the first step: mains (the
recording's mains frequency and its harmonics) is removed with a zero-phase
comb notch, as any offline analysis would do before applying these methods.
"""

import math

import numpy as np

from filters import (biquad_highpass, biquad_lowpass, biquad_notch, causal_filter,
                     moving_mean, remove_mains, runs, zero_phase)

MERGE_GAP_MS = 200.0
EMG_BAND = (20.0, 450.0)


def _ms(ms, fs):
    """Milliseconds to a whole number of samples (at least 1)."""
    return max(int(round(ms * fs / 1000.0)), 1)


def intervals_to_onsets(starts, ends, fs, cal_end, min_len=0, merge_gap=None):
    """Onsets of active intervals: drop the short ones, merge close ones,
    drop those starting before cal_end. Returns (onsets, merged starts,
    merged ends) so a caller can refine the onset inside each interval."""
    gap = _ms(MERGE_GAP_MS if merge_gap is None else merge_gap, fs)
    keep = (ends - starts) >= min_len
    starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return np.array([], dtype=int), starts, ends
    new = np.concatenate([[True], starts[1:] - ends[:-1] >= gap])
    idx = np.flatnonzero(new)
    m_starts = starts[idx]
    m_ends = np.append(ends[idx[1:] - 1], ends[-1])
    ok = m_starts >= cal_end
    return m_starts[ok], m_starts[ok], m_ends[ok]


class HodgesBui:
    """Hodges & Bui 1996: band-pass, full-wave rectify, low-pass 50 Hz; an
    onset where the mean of the next T = 50 ms exceeds the baseline mean
    + h SD (h = 3)."""
    name = "Hodges & Bui 1996"
    short = "HB"
    causal = False
    default = 3.0
    sweep = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0)
    level_name = "h (SD)"
    lowpass_hz = 50.0
    window_ms = 50.0

    def prepare(self, x, fs, cal_start, cal_end, mains_hz=50.0):
        """Condition the signal once; thresholds are applied in onsets()."""
        y = zero_phase(remove_mains(x - np.mean(x), fs, mains_hz), fs, *EMG_BAND, order=2)
        env = zero_phase(np.abs(y), fs, None, self.lowpass_hz, order=2)
        self.fs, self.cal_end = fs, cal_end
        self.stat = moving_mean(env, _ms(self.window_ms, fs), forward=True)
        base = env[cal_start:cal_end]
        self.mu, self.sd = float(np.mean(base)), float(np.std(base))
        self.trace = env
        return self

    def threshold(self, h):
        """The amplitude threshold for multiplier h."""
        return self.mu + h * self.sd

    def onsets(self, h):
        """Onset samples for threshold multiplier h."""
        s, e = runs(self.stat > self.threshold(h))
        return intervals_to_onsets(s, e, self.fs, self.cal_end)[0]


class Bonato:
    """Bonato, D'Alessio & Knaflitz 1998 double-threshold detector on the
    whitened signal: pairs of samples g = (x[2k]^2 + x[2k+1]^2) / sigma^2
    (chi-square, 2 degrees of freedom, at rest); a pair is above the first
    threshold zeta with probability p; a window of m pairs (10 ms) is
    active when at least r0 = 1 of them is; zeta follows from the
    false-alarm probability of a window, Pfa = 0.05; activity shorter than
    30 ms is rejected. Whitening: an AR(10) prediction-error filter fitted
    on the calibration window (our choice: the paper assumes a white
    Gaussian background)."""
    name = "Bonato et al. 1998"
    short = "Bonato"
    causal = False
    default = 0.05
    sweep = (1e-6, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 0.03, 0.05, 0.1, 0.2, 0.35, 0.5)
    level_name = "Pfa"
    window_ms = 10.0
    r0 = 1
    min_active_ms = 30.0
    ar_order = 10

    def prepare(self, x, fs, cal_start, cal_end, mains_hz=50.0):
        """Whiten, normalise and pair the samples.

        Above 1 kHz the band-passed signal (nothing above 450 Hz) is first
        decimated to about 1 kHz: samples closer than that are correlated
        whatever the whitening, and the pairs stay 2 ms apart."""
        y = zero_phase(remove_mains(x - np.mean(x), fs, mains_hz), fs, *EMG_BAND, order=2)
        self.step = max(int(fs // 1000), 1)
        y = y[::self.step]
        c0, c1 = cal_start // self.step, cal_end // self.step
        a = _ar_fit(y[c0:c1], self.ar_order)
        w = np.convolve(y, np.concatenate([[1.0], -a]))[:len(y)]
        sigma2 = float(np.var(w[c0 + self.ar_order:c1]))
        n = len(w) // 2
        self.g = (w[0:2 * n:2] ** 2 + w[1:2 * n:2] ** 2) / sigma2
        self.fs, self.cal_end = fs, cal_end
        self.pair = 2 * self.step                     # input samples per pair
        self.m = max(int(round(self.window_ms * fs / 1000.0 / self.pair)), 1)
        self.trace = np.repeat(moving_mean(self.g, self.m), self.pair)
        return self

    def zeta(self, pfa):
        """First threshold for window false-alarm probability pfa (r0 = 1)."""
        p = 1.0 - (1.0 - pfa) ** (1.0 / self.m)
        return -2.0 * math.log(p)

    def onsets(self, pfa):
        """Onset samples (first pair above zeta in each active interval)."""
        above = self.g > self.zeta(pfa)
        count = moving_mean(above.astype(float), self.m, forward=True) * self.m
        s, e = runs(count >= self.r0 - 1e-9)
        k = self.pair
        _, ms, me = intervals_to_onsets(s * k, e * k, self.fs, self.cal_end,
                                        min_len=_ms(self.min_active_ms, self.fs))
        first = [np.argmax(above[a // k:b // k]) + a // k for a, b in zip(ms, me)]
        return np.asarray(first, dtype=int) * k


class SolnikTKEO:
    """TKEO onset detection (Li, Zhou & Aruin 2007), conditioned as Solnik
    et al. 2010 do it: band-pass 30-300 Hz (6th order), Teager-Kaiser
    energy operator x[n]^2 - x[n-1] x[n+1], full-wave rectify, low-pass
    50 Hz; onset where the result stays above the baseline mean + j SD
    (j = 6) for at least 25 ms. Until issue 17 j was 15, which on the
    conditioned signal of this data (its SD at rest is 0.7-0.9 of its mean)
    put the threshold 12-14 times above the rest energy, above the
    plateau of most 6-14 dB bursts (see references_tkeo on the page)."""
    name = "TKEO (Li et al. 2007; Solnik et al. 2010)"
    short = "TKEO"
    causal = False
    default = 6.0
    sweep = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 70.0, 100.0)
    level_name = "j (SD)"
    lowpass_hz = 50.0
    min_above_ms = 25.0

    def prepare(self, x, fs, cal_start, cal_end, mains_hz=50.0):
        """Band-pass, TKEO, rectify and smooth once."""
        y = zero_phase(remove_mains(x - np.mean(x), fs, mains_hz), fs, 30.0, 300.0, order=3)
        psi = np.zeros_like(y)
        psi[1:-1] = y[1:-1] ** 2 - y[:-2] * y[2:]
        env = zero_phase(np.abs(psi), fs, None, self.lowpass_hz, order=2)
        base = env[cal_start:cal_end]
        self.mu, self.sd = float(np.mean(base)), float(np.std(base))
        self.fs, self.cal_end, self.trace = fs, cal_end, env
        return self

    def threshold(self, j):
        """The TKEO threshold for multiplier j."""
        return self.mu + j * self.sd

    def onsets(self, j):
        """Onset samples for threshold multiplier j."""
        s, e = runs(self.trace > self.threshold(j))
        return intervals_to_onsets(s, e, self.fs, self.cal_end,
                                   min_len=_ms(self.min_above_ms, self.fs))[0]


class NaiveCausal:
    """The plain causal detector issue 17 compares against under hum: one
    wide notch at the mains fundamental (Q 2), band-pass 20-450 Hz (2nd-order
    Butterworth high- and low-pass), a 50 ms moving RMS envelope, and a
    fixed threshold: the envelope's median + k x 1.4826 MAD over the
    calibration window, k = 10. It decides an onset at the first sample
    above the threshold after at least 200 ms below it (the common merge
    rule, which a causal detector can apply as it goes), and dates it half
    an RMS window earlier (the window's centre: the envelope lags the
    signal by that much). Everything is causal (filters from rest, trailing
    window), so it has a decision latency like rpms-detect's. No harmonics
    notched, no transient rejection: the naive baseline."""
    name = "plain causal detector"
    short = "Naive"
    causal = True
    default = 10.0
    sweep = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
    level_name = "k (MAD)"
    notch_q = 2.0
    band = EMG_BAND
    window_ms = 50.0

    def prepare(self, x, fs, cal_start, cal_end, mains_hz=50.0):
        """Filter and take the envelope once; thresholds in onsets()."""
        secs = [biquad_highpass(self.band[0], fs),
                biquad_lowpass(min(self.band[1], 0.45 * fs), fs)]
        if mains_hz:
            secs.append(biquad_notch(mains_hz, fs, self.notch_q))
        y = causal_filter(np.asarray(x, dtype=float) - x[0], fs, secs)
        env = np.sqrt(moving_mean(y * y, _ms(self.window_ms, fs)))
        base = env[cal_start:cal_end]
        self.med = float(np.median(base))
        self.spread = 1.4826 * float(np.median(np.abs(base - self.med)))
        self.fs, self.cal_end, self.trace = fs, cal_end, env
        return self

    def threshold(self, k):
        """The envelope threshold for multiplier k."""
        return self.med + k * self.spread

    def decisions(self, k):
        """Decision samples for multiplier k."""
        s, e = runs(self.trace > self.threshold(k))
        return intervals_to_onsets(s, e, self.fs, self.cal_end)[0]

    def onsets(self, k):
        """Onset samples (the decisions, dated half a window earlier)."""
        return self.decisions(k) - _ms(self.window_ms, self.fs) // 2


REFERENCES = (HodgesBui, Bonato, SolnikTKEO, NaiveCausal)
OFFLINE = tuple(c for c in REFERENCES if not c.causal)


def _ar_fit(y, order):
    """AR coefficients a[1..order] of y by the Yule-Walker equations."""
    y = y - np.mean(y)
    n = len(y)
    r = np.array([np.dot(y[:n - k], y[k:]) / n for k in range(order + 1)])
    toeplitz = np.array([[r[abs(i - j)] for j in range(order)] for i in range(order)])
    return np.linalg.solve(toeplitz, r[1:order + 1])
