# SPDX-License-Identifier: MIT
"""The data sets of the evaluation, each a list of recordings written as
replay text files (plus a truth CSV and a JSON of how each was made).

 * sim-*      the simulated recordings with true onsets (10 trials, 1 kHz);
 * inj-*      bursts, clonus, spikes and hum injected into real rest EMG,
              at 1 kHz and 2 kHz, one set per condition (and per SNR bin);
 * rest-*     the real rest recording as it is, for false onsets only;
 * emg_1      the bundled real recording with 4 clear bursts but no exact
              truth: onsets are listed, not scored.
"""

import dataclasses
import json
import os

import numpy as np

import emgio
import synth
from filters import brickwall, resample_fft

# Stretches of emg.txt used as rest, in s, and the weak activity left out
# of it (with a margin): its README marks weak activity at about 51-58 s
# ("envelope ~2x baseline"); the band-passed RMS is also raised at about
# 35-41 s, and a short event near 95.8 s is as strong (about 150 ms). The
# criterion, which weak_activity() measures for the page: a 100 ms RMS
# (20-450 Hz) of twice the rest RMS or more. By the injected sets' own
# definition such an event is a burst (6 dB or more, 150 ms or longer),
# which the recall target requires finding, so it cannot also be rest.
REST_STRETCHES_S = ((0.5, 34.0), (59.0, 95.5))
WEAK_ACTIVITY_S = ((34.0, 42.0), (50.0, 59.0), (95.5, 96.3))
WEAK_RMS_MS = 100.0
WEAK_RMS_RATIO = 2.0

INJ_RATES = (1000, 2000)
INJ_LENGTH_S = 30.0
INJ_CAL = (0.0, 2.0)            # calibration_start_s, calibration_s
SIM_CAL = (0.0, 0.4)            # ends before the earliest onset (426 ms)
SIM_BURST_S = 2.0               # nominal burst length of the simulated set
EMG1_CAL = (3.0, 2.0)           # 3-5 s is rest in emg_1.txt
EMG1_ROUGH_BURSTS_S = ((1.5, 1.8), (15.5, 16.9), (25.7, 25.8), (26.4, 26.6))

# The injected conditions: name, burst kind, SNR range (dB), extras.
CONDITIONS = (
    ("snr06-10", "burst", (6.0, 10.0), {}),
    ("snr10-14", "burst", (10.0, 14.0), {}),
    ("snr14-20", "burst", (14.0, 20.0), {}),
    ("clonus", "clonus", (10.0, 20.0), {}),
    ("spikes", "burst", (10.0, 20.0), {"spikes": True}),
    ("mains", "burst", (10.0, 20.0), {"hum": True}),
)

# The hum sets (issue 17): bursts (SNR 10-20 dB) and 3 ms electrode pops in
# every rest gap under mains hum at 1, 3 and 10 times the band-passed rest
# RMS, steady or drifting, at 50 and 60 Hz (the detector configured for
# it, as `--mains` does), with 3rd and 5th harmonics (synth.py says how
# each is drawn). Appended after CONDITIONS so the older sets keep their
# seeds.
HUM_MAINS = (50, 60)
HUM_LEVELS = (1.0, 3.0, 10.0)
HUM_CONDITIONS = tuple(
    ("hum%d-x%g-%s" % (mains, level, "drift" if drift else "steady"), "burst", (10.0, 20.0),
     {"hum_set": {"mains": mains, "level": level, "drift": drift}, "pops": True})
    for mains in HUM_MAINS for level in HUM_LEVELS for drift in (False, True))
ALL_CONDITIONS = CONDITIONS + HUM_CONDITIONS


@dataclasses.dataclass
class Recording:
    """One recording, its truth and how it is scored (samples, 0-based)."""
    name: str
    group: str
    path: str
    fs: float
    x: np.ndarray
    cal_start_s: float
    cal_s: float
    events: list
    ignore: list = dataclasses.field(default_factory=list)
    weak: list = dataclasses.field(default_factory=list)
    meta: dict = dataclasses.field(default_factory=dict)
    mains_hz: float = 50.0      # the mains the detectors are told (rpmsd's default)
    dsp: dict = dataclasses.field(default_factory=dict)    # [dsp] keys for rpms-detect

    @property
    def cal_end(self):
        """First sample after the calibration window."""
        return int(round((self.cal_start_s + self.cal_s) * self.fs))


@dataclasses.dataclass
class DataSet:
    """A named group of recordings scored together."""
    name: str
    kind: str           # "truth", "rest" or "listing"
    title: str
    recordings: list
    rate: float
    snr: tuple = None       # the SNR range (dB) of its bursts, when one range
    info: dict = None       # what the page says about how it was made


def _mkdir(path):
    os.makedirs(path, exist_ok=True)
    return path


def _save(rec, fmt="%.4f"):
    """Write the recording, its truth CSV and its meta JSON next to it."""
    emgio.write_text_recording(rec.path, rec.x, rec.fs, fmt=fmt)
    emgio.write_truth(rec.path[:-4] + ".truth.csv", rec.events)
    with open(rec.path[:-4] + ".json", "w", encoding="utf-8") as f:
        json.dump(rec.meta, f, indent=1, sort_keys=True)


# --- simulated set --------------------------------------------------------

def simulated_set(data_dir, work, min_cal_s=None):
    """The 10 simulated trials, calibrated on 0-0.4 s (longer if rpmsd
    does not allow that short a window); a burst whose onset is inside
    the calibration window is not scored, nor is anything detected over it."""
    cal_s = max(SIM_CAL[1], min_cal_s or 0.0)
    folder = os.path.join(data_dir, "simulated_onsets")
    out = _mkdir(os.path.join(work, "sim"))
    fs = 1000.0
    recs = []
    trials = emgio.read_simulated_set(folder)
    info = sim_onsets(trials, fs)
    for name, x, onsets in trials:
        rec = Recording(name=name, group="sim", path=os.path.join(out, name + ".txt"),
                        fs=fs, x=x, cal_start_s=SIM_CAL[0], cal_s=cal_s, events=[],
                        meta={"source": os.path.join(folder, "signals.csv"), "column": name})
        for onset in onsets:
            end = int(onset + SIM_BURST_S * fs)
            scored = onset >= rec.cal_end
            snr = info["snr_db"][(name, int(onset))]
            rec.events.append({"kind": "burst", "onset_sample": int(onset), "end_sample": end,
                               "snr_db": snr, "ramp_ms": "", "duration_ms": SIM_BURST_S * 1000,
                               "amplitude": "", "scored": scored,
                               "reach_ms": sim_reach_ms(snr, info["rise_ms"])})
            if not scored:
                rec.ignore.append((int(onset - 0.05 * fs), int(end + 0.25 * fs)))
        _save(rec, fmt="%.7g")
        recs.append(rec)
    ds = DataSet("sim", "truth", "simulated, 10 trials x 5 bursts (1 kHz)", recs, fs)
    ds.info = info
    return ds


# How the simulated bursts rise, measured (the generator is not published):
# the power of the EMG band-passed 20-450 Hz, less the trial's rest power,
# over the burst's "plateau" power (SIM_PLATEAU_MS after the true onset),
# averaged over the bursts of at least SIM_PROFILE_MIN_DB; a straight line
# in power, min(t / T, 1), is fitted to its first SIM_PROFILE_MS.
SIM_PLATEAU_MS = (600, 1100)
SIM_PROFILE_MS = 600
SIM_PROFILE_MIN_DB = 12.0
SIM_REST_EXCLUDE_MS = (200, 2500)   # around each onset: not rest


def sim_onsets(trials, fs):
    """Per burst SNR and the trials' mean onset profile: {"snr_db":
    {(trial, onset): dB}, "profile": mean normalised excess power by ms
    after the onset, "rise_ms": fitted T, "n_profile": bursts averaged}.
    SNR = 10 log10((plateau power - rest power) / rest power), the rest
    power over the whole trial outside SIM_REST_EXCLUDE_MS of any onset."""
    snrs, prof = {}, []
    n_prof = int(SIM_PROFILE_MS * fs / 1000)
    a, b = (int(v * fs / 1000) for v in SIM_PLATEAU_MS)
    for name, x, onsets in trials:
        y = brickwall(x - np.mean(x), fs, *synth.EMG_BAND)
        p2 = y * y
        free = np.ones(len(y), dtype=bool)
        for o in onsets:
            free[max(int(o) - int(SIM_REST_EXCLUDE_MS[0] * fs / 1000), 0):
                 int(o) + int(SIM_REST_EXCLUDE_MS[1] * fs / 1000)] = False
        rest = float(np.mean(p2[free]))
        for o in onsets:
            o = int(o)
            plat = float(np.mean(p2[o + a:o + b]))
            snr = 10.0 * np.log10(max(plat - rest, 1e-12 * rest) / rest)
            snrs[(name, o)] = snr
            if snr >= SIM_PROFILE_MIN_DB and o + n_prof <= len(p2):
                prof.append((p2[o:o + n_prof] - rest) / (plat - rest))
    m = np.mean(prof, axis=0)
    t = np.arange(n_prof) * 1000.0 / fs
    rise = min(range(20, SIM_PROFILE_MS + 1, 5),
               key=lambda T: float(np.sum((m - np.minimum(t / T, 1.0)) ** 2)))
    return {"snr_db": snrs, "profile": m, "rise_ms": float(rise), "n_profile": len(prof)}


def sim_reach_ms(snr_db, rise_ms):
    """When a simulated burst's amplitude reaches the rest RMS: its power
    rises as (t / T) x SNR (linear in power), so at t = T / 10^(SNR/10)."""
    return min(rise_ms / 10.0 ** (snr_db / 10.0), rise_ms)


# --- injected sets --------------------------------------------------------

def load_rest(data_dir):
    """emg.txt at 1 kHz, and resampled (FFT) to 2 kHz: {rate: samples}."""
    path = os.path.join(data_dir, "emg.txt")
    x, rate = emgio.read_text_recording(path)
    if rate != 1000.0:
        raise emgio.DataError("%s: expected a 1000 Hz header, found %s" % (path, rate))
    return {1000: x, 2000: resample_fft(x, 2)}, path


def weak_activity(rest_1k):
    """The 100 ms band-passed RMS of emg.txt over its rest RMS: the peak
    inside each weak-activity stretch, and the peak in the rest stretches
    ({"weak": [(span, peak)], "rest_peak": peak}), so the page shows the
    criterion holds on the data rather than asserting it."""
    fs = 1000
    y = brickwall(rest_1k - np.mean(rest_1k), fs, *synth.EMG_BAND)
    n = int(WEAK_RMS_MS * fs / 1000)
    rms = np.sqrt(np.convolve(y * y, np.ones(n) / n, mode="same"))
    rest = np.concatenate([y[int(a * fs):int(b * fs)] for a, b in REST_STRETCHES_S])
    ratio = rms / np.sqrt(np.mean(rest * rest))
    # Ignore the convolution's half window at each stretch end.
    h = n // 2
    weak = [((a, b), float(ratio[int(a * fs):int(b * fs)].max())) for a, b in WEAK_ACTIVITY_S]
    rest_peak = max(float(ratio[int(a * fs) + h:int(b * fs) - h].max())
                    for a, b in REST_STRETCHES_S)
    return {"weak": weak, "rest_peak": rest_peak}


def _rest_piece(rng, rest, fs, n):
    """A random n-sample piece of a rest stretch, maybe time-reversed and
    sign-flipped about its mean (both keep the statistics of rest EMG)."""
    spans = [(int(a * fs), int(b * fs)) for a, b in REST_STRETCHES_S if (b - a) * fs >= n]
    a, b = spans[rng.integers(len(spans))]
    start = int(rng.integers(a, b - n + 1))
    piece = rest[start:start + n].copy()
    reverse, flip = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    if reverse:
        piece = piece[::-1].copy()
    if flip:
        piece = 2.0 * piece.mean() - piece
    return piece, {"rest_start_s": start / fs, "reversed": reverse, "flipped": flip}


def _add_bursts(rng, rec, rest_band, kind, snr_range):
    """Lay out and inject the bursts (or clonus trains) of one recording."""
    fs = rec.fs
    first = INJ_CAL[0] + INJ_CAL[1] + rng.uniform(0.5, 1.5)
    dur_range = (1.0, 3.0) if kind == "clonus" else (0.15, 2.0)
    for t, dur in synth.plan_events(rng, INJ_LENGTH_S, first, dur_range, (1.0, 2.5)):
        onset, n = int(round(t * fs)), int(round(dur * fs))
        snr = rng.uniform(*snr_range)
        ev = {"kind": kind, "onset_sample": onset, "snr_db": snr, "scored": True}
        if kind == "clonus":
            shape, core, freq = synth.clonus_shape(rng, n, fs)
            ev["ramp_ms"] = ""
            rec.meta.setdefault("clonus_hz", []).append(round(freq, 2))
        else:
            up = int(round(rng.uniform(0.0, 150.0) * fs / 1000))
            n = max(n, up + int(0.02 * fs))
            down_max = min(150.0, (n - up) * 1000 / fs - 20.0)
            down = int(round(rng.uniform(0.0, max(down_max, 0.0)) * fs / 1000))
            shape, core = synth.burst_shape(n, up, down)
            ev["ramp_ms"] = up * 1000.0 / fs
        ev["amplitude"], ev["reach_ms"] = synth.inject_burst(rng, rec.x, rest_band, fs, onset,
                                                             shape, core, snr)
        ev["end_sample"] = onset + len(shape)
        ev["duration_ms"] = len(shape) * 1000.0 / fs
        rec.events.append(ev)


def _add_spikes(rng, rec, rest_band, waveform=synth.spike_waveform):
    """One or two spikes (waveform(rng, fs) -> (unit-peak wave, kind)) in
    every rest gap (after calibration), at least 300 ms from any burst and
    200 ms from each other; peak 20-200 x the local rest RMS (log-uniform)."""
    fs = rec.fs
    bursts = sorted((e["onset_sample"], e["end_sample"]) for e in rec.events)
    edges = [rec.cal_end] + [b for _, b in bursts]
    nexts = [a for a, _ in bursts] + [len(rec.x)]
    margin, spacing = int(0.3 * fs), int(0.2 * fs)
    for lo, hi in zip(edges, nexts):
        lo, hi = lo + margin, hi - margin
        if hi - lo < spacing:
            continue
        last = -spacing
        for pos in sorted(rng.integers(lo, hi, size=int(rng.integers(1, 3)))):
            if pos - last < spacing:
                continue
            wave, shape = waveform(rng, fs)
            sigma = synth.noise_rms_before(rest_band, int(pos), fs)
            peak = sigma * 10.0 ** rng.uniform(np.log10(20.0), np.log10(200.0))
            rec.x[pos:pos + len(wave)] += peak * wave
            rec.events.append({"kind": "spike", "onset_sample": int(pos),
                               "end_sample": int(pos + len(wave)),
                               "snr_db": 20 * np.log10(peak / sigma), "ramp_ms": "",
                               "duration_ms": len(wave) * 1000.0 / fs,
                               "amplitude": peak, "scored": False, "shape": shape})
            last = pos


def injected_recording(rest, rate, cond, index, seed, out):
    """Build and write recording `index` of one injected condition."""
    key, kind, snr_range, extra = cond
    rng = np.random.default_rng([seed, rate, ALL_CONDITIONS.index(cond), index])
    n = int(INJ_LENGTH_S * rate)
    piece, meta = _rest_piece(rng, rest, rate, n)
    name = "%s-%02d" % (key, index)
    rec = Recording(name=name, group="inj-%dk-%s" % (rate // 1000, key),
                    path=os.path.join(out, name + ".txt"), fs=float(rate), x=piece,
                    cal_start_s=INJ_CAL[0], cal_s=INJ_CAL[1], events=[], meta=meta)
    rec.meta.update({"seed": [seed, rate, ALL_CONDITIONS.index(cond), index],
                     "condition": key, "snr_range_db": list(snr_range)})
    rest_band = brickwall(piece - piece.mean(), rate, *synth.EMG_BAND)
    _add_bursts(rng, rec, rest_band, kind, snr_range)
    if extra.get("spikes"):
        _add_spikes(rng, rec, rest_band)
    if extra.get("hum"):
        sigma = float(np.sqrt(np.mean(rest_band ** 2)))
        hum_db = rng.uniform(0.0, 20.0)
        rec.x += synth.mains_hum(rng, n, rate, sigma * 10.0 ** (hum_db / 20.0))
        rec.meta["hum_db_over_rest"] = round(hum_db, 2)
    if extra.get("pops"):
        _add_spikes(rng, rec, rest_band, synth.pop_waveform)
    hs = extra.get("hum_set")
    if hs:
        sigma = float(np.sqrt(np.mean(rest_band ** 2)))
        hum, info = synth.mains_hum_sets(rng, n, rate, sigma * hs["level"], float(hs["mains"]),
                                         hs["drift"])
        rec.x += hum
        rec.mains_hz = float(hs["mains"])
        rec.dsp = {"mains_hz": "%d" % hs["mains"]}
        info["level_x_rest"] = hs["level"]
        rec.meta["hum"] = info
        rec.meta["hum_db_over_rest"] = round(20.0 * np.log10(hs["level"]), 2)
    rec.meta["mains_hz"] = rec.mains_hz
    rec.events.sort(key=lambda e: e["onset_sample"])
    _save(rec)
    return rec


def injected_sets(data_dir, work, per_set, seed, hum_per_set=None, only=None):
    """Every condition at every rate, per_set recordings each (hum_per_set
    for the hum sets; per_set when None). only: a list of substrings, a
    set is built only when its name contains one of them (None: every set)."""
    rests, _ = load_rest(data_dir)
    sets = []
    for rate in INJ_RATES:
        for cond in ALL_CONDITIONS:
            group = "inj-%dk-%s" % (rate // 1000, cond[0])
            if only and not any(o in group for o in only):
                continue
            out = _mkdir(os.path.join(work, group))
            count = hum_per_set if cond in HUM_CONDITIONS and hum_per_set else per_set
            recs = [injected_recording(rests[rate], rate, cond, i, seed, out)
                    for i in range(count)]
            title = _condition_title(cond, rate)
            sets.append(DataSet(group, "truth", title, recs, float(rate), snr=cond[2]))
    return sets


def _condition_title(cond, rate):
    """Human-readable description of an injected condition."""
    key, kind, snr, extra = cond
    what = "clonus trains" if kind == "clonus" else "bursts"
    text = "%s, SNR %g-%g dB" % (what, snr[0], snr[1])
    if extra.get("spikes"):
        text += ", + spikes/pops in rest"
    if extra.get("hum"):
        text += ", + mains hum 0-20 dB"
    hs = extra.get("hum_set")
    if hs:
        text += ", + 3 ms pops in rest, %s %d Hz hum (3rd, 5th harmonics) at %g x rest RMS" % (
            "drifting (+/-0.1-0.5 Hz)" if hs["drift"] else "steady", hs["mains"], hs["level"])
    return "injected %s (%g kHz)" % (text, rate / 1000)


# --- real recordings ------------------------------------------------------

def rest_sets(data_dir, work):
    """emg.txt as it is, at 1 kHz and resampled to 2 kHz: false onsets only."""
    rests, path = load_rest(data_dir)
    sets = []
    for rate, x in sorted(rests.items()):
        group = "rest-%dk" % (rate // 1000)
        out = _mkdir(os.path.join(work, group))
        rec = Recording(name="emg", group=group, path=os.path.join(out, "emg.txt"),
                        fs=float(rate), x=x, cal_start_s=INJ_CAL[0], cal_s=INJ_CAL[1],
                        events=[], meta={"source": path, "resampled_to": rate})
        rec.weak = [(int(a * rate), int(b * rate)) for a, b in WEAK_ACTIVITY_S]
        _save(rec)
        sets.append(DataSet(group, "rest", "real rest EMG, emg.txt (%g kHz)" % (rate / 1000),
                            [rec], float(rate)))
    return sets


def emg1_set(path):
    """The bundled emg_1.txt: onsets are listed against rough burst times."""
    x, rate = emgio.read_text_recording(path)
    if not rate:
        raise emgio.DataError("%s: no '# Sampling Rate (Hz):=' header" % path)
    rec = Recording(name="emg_1", group="emg_1", path=path, fs=rate, x=x,
                    cal_start_s=EMG1_CAL[0], cal_s=EMG1_CAL[1], events=[],
                    meta={"rough_bursts_s": EMG1_ROUGH_BURSTS_S})
    return DataSet("emg_1", "listing", "real EMG with 4 clear bursts, emg_1.txt (1 kHz)",
                   [rec], rate)
