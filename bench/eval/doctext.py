# SPDX-License-Identifier: MIT
"""The text of docs/detection.md around the generated tables.

The document is written by run_eval.py: edit this file, not the .md.
"""


import numpy as np

import datasets
import references
import synth
import bound
import report
import rules
import scoring
from report import fnum, md_table

COMMAND = "/usr/bin/python3 bench/eval/run_eval.py --build build"


def render(ctx):
    """The whole document."""
    parts = [_head(ctx), _detector(ctx), _summary(ctx), _data(ctx), _metrics(), _refs(ctx),
             _results(ctx), _diagnostics(ctx), _hum(ctx), _sim(ctx), _sweep(ctx), _rules(ctx),
             _real(ctx),
             _figures(ctx),
             _reproduce(ctx), _limits(ctx)]
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


def _head(ctx):
    g = ctx["git"]
    tree = (" **with uncommitted changes** in daemon/, tools/ or include/" if g["dirty"]
            else ", a clean checkout")
    return f"""
# Burst detection accuracy

How accurately does rpmsd's causal burst detector find spastic burst
onsets, and how soon does it decide? This page measures it against ground
truth, against three offline reference detectors from the literature and
against a plain causal detector (the naive baseline).
It is **generated**: one command, run from the repository root after
building,

    {COMMAND}

writes this file and the figures in `docs/detection/`. Edit
`bench/eval/doctext.py` (text) or `bench/eval/report.py` (tables), not this
file. The meson benchmark `detection` (`meson test -C build --benchmark
--verbose detection`) runs a smaller configuration (2 recordings per
injected and hum set, no sweep, no figures) and prints the same tables and
targets without touching this page.

**The numbers below are from one run** on {ctx['date']}, on {ctx['host']};
the run took {ctx.get('elapsed_s', 0):.0f} s. rpms-detect and rpmsd were built
in `{ctx['args'].build}` from git commit `{g['commit']}` ("{g['subject']}"){tree};
the last commit that changed `daemon/`, `tools/` or `include/` there is
{_det_commit(g)}.
"""


def _det_commit(g):
    """'`abc` ("subject")' from git_info's detector_commit."""
    h, _, rest = g.get("detector_commit", "unknown").partition(" ")
    return f"`{h}` {rest}".strip()


def _detector(ctx):
    dsp, det = ctx["defaults"]["dsp"], ctx["defaults"]["detect"]
    n_win = max(1, int(round(float(det["sustain_ms"]) / float(dsp["envelope_ms"]))))
    return f"""
## The detector under test

`rpms-detect` runs the daemon's own per-channel signal chain and detector
(`daemon/dsp.c`, `daemon/detect.c`, through `daemon/bank.c`) on a file,
block by block, with no look-ahead: what it reports is what rpmsd would
have decided on that recording. It ran with the daemon's defaults, read
from `rpmsd --print-config` at run time (so a changed default is picked up
by the next run): {report._conf_lines(ctx)}. Only the calibration window is
set per data set (below); the threshold sweep also sets `detect.k_on`.

What happens to each sample, in this order:

1. **Mains canceller**: the hum at {dsp['mains_hz']} Hz and its harmonics up to
   x{dsp['mains_harmonics']} inside the band is estimated (one LMS canceller per
   harmonic on a reference locked to the line's own frequency by a
   phase-locked loop, within 2 Hz of nominal) and subtracted. Settled, it is
   a notch of Q {dsp['notch_q']} at each harmonic that stays on the line when the
   grid wanders; it starts wide (catching hum present from the first
   sample within about 0.3 s, which calibration leaves out) and widens
   again when hum appears; it holds its estimate through a burst the
   limiter clips.
2. **Limiter** (once calibrated): what is left, the input's excursion from
   its slow level (below 2 Hz) without the hum, is clipped at `dsp.limit` =
   {dsp['limit']} times the channel's rest level (the larger of its rest envelope and
   that excursion), so that a spike or an electrode pop, on a quiet line or
   riding on hum, cannot make the filters ring. Before that, during
   calibration, a sample beyond 100 times the running median excursion is
   dropped (held at the slow level) as an artefact instead: the rest level
   is not known yet, and a 1e6 uV sample must not ring into it.
   Then the **filters**: Butterworth high-pass {dsp['highpass_hz']} Hz and low-pass
   {dsp['lowpass_hz']} Hz (order {dsp['filter_order']} each, clamped below 0.45 x the sampling
   rate).
3. **Envelope**: moving {dsp['envelope'].upper()} over `dsp.envelope_ms` = {dsp['envelope_ms']} ms.
4. **Sustained envelope**: the smallest of {n_win} envelope values one window
   apart, i.e. the quietest {dsp['envelope_ms']} ms window of the last `detect.sustain_ms` =
   {det['sustain_ms']} ms. The thresholds apply to this, not to the envelope: a transient
   shorter than about {det['sustain_ms']} ms leaves at least one window at rest.
5. **Calibration** on the rest window: median and spread (1.4826 x MAD) of
   the envelope; onset threshold = median + `k_on` ({det['k_on']}) x spread, offset
   threshold = median + `k_off` ({det['k_off']}) x spread.
   A window with dropped artefacts, one not at rest (a 200 ms stretch whose
   median envelope is above the onset threshold, or 2.5 times the quietest
   stretch's), or a rest level above 100 uV is reported in the calibrated
   event's `issues`.
6. **Onset decision**: the sample at which the sustained envelope has been
   above the onset threshold for `detect.on_ms` = {det['on_ms']} ms (dips shorter than
   `detect.dip_ms` = {det['dip_ms']} ms tolerated). That is `decision_sample`, when the
   daemon would fire.
7. **Onset date** (`sample`): at the decision, a change-point search over
   the last 0.5 s of the envelope (never before the previous burst's end)
   dates the onset to the start of the stretch that stands highest above
   an edge level: the rest level scaled by (median + `k_edge` x spread) /
   median, `k_edge` = {det['k_edge']}. The rest level is the mean envelope, followed
   (1 s time constant) while the detector is quiet. A slow rise is then
   dated to its foot: a line fitted, from the change point to the
   decision, to the burst's own amplitude (the envelope with the rest
   level taken out, sqrt(envelope^2 - rest^2), which a linear ramp makes
   a straight line) and taken down to zero; it may move the date at most
   30 ms earlier, and only when the fit rises.
8. **Offset**: after `detect.off_ms` = {det['off_ms']} ms with the sustained envelope below
   the offset threshold.

Every figure and every envelope number on this page comes from
`rpms-detect --trace`, which writes each sample as the detector saw it
(raw input, filtered EMG, envelope, sustained envelope, thresholds); the
evaluation has no model of its own of the detector.
"""


def _summary(ctx):
    rows, tally = report.target_rows(ctx)
    header = ["data set"] + [t[2] for t in report.TARGETS]
    return f"""
## Targets

The targets of issue 17, **reported, not asserted**, each where it applies
("n/a" elsewhere):

- **F1 >= 0.95** on every set whose bursts are all 10 dB or more above the
  rest: the 10-14 and 14-20 dB sets, clonus, spikes and electrode pops,
  and every mains-hum set (all 10-20 dB);
- on the **6-10 dB sets, F1 above every offline reference** by a margin
  the bootstrap interval supports: the 95 % interval of the paired
  difference (rpms-detect's F1 minus the reference's, both on the same
  resampled recordings) lies above zero for every offline reference; the
  cell shows the least favourable one;
- **median |onset error| <= 15 ms** where the SNR is 10 dB or more (the
  same sets as the F1 target);
- **excess decision latency p50 <= 10 ms and p95 <= 25 ms** on every set:
  the decision latency minus the moment the burst became detectable (its
  amplitude reached the rest RMS, from the truth, plus
  {scoring.TRANSIENT_MS:g} ms to tell it from a transient; see Metrics), over the
  first decision in each burst; the absolute latency is in brackets;
- **at most 0.5 false onsets per minute of rest** on every set, the pop
  and hum sets included.

The simulated set mixes bursts of 1-22 dB (below) and has no exact ramps:
F1 and onset error have no target there, and its detectability is
estimated from its measured onset profile. In brackets after each F1 and
false-onset rate: its 95 % bootstrap interval, resampling the set's
recordings ({report.BOOT_N} draws, the same draws for every detector); a
set whose F1 interval straddles 0.95 is met or missed by the luck of the
draw, not by the detector.

rpms-detect at its defaults: **{tally[0]} met, {tally[1]} missed.**

{md_table(header, rows)}

{_findings(ctx)}
"""


def _findings(ctx):
    """Plain statements computed from the numbers (no tuning advice)."""
    det = ctx["det"]
    inj = [s for s in report.truth_sets(ctx) if s.name.startswith("inj")]
    sums = {s.name: report.at_default(ctx, s.name, det)[0] for s in report.truth_sets(ctx)}
    exc = [(n, v) for n, v in sums.items() if v["exc_p50"] is not None]
    errs = [v["med_err"] for v in sums.values() if v["med_err"] is not None]
    out = ["What the numbers say:", "\0"]
    out.append("- Data sets meeting each target: %s." % ", ".join(
        "%s in %d of %d" % (label, n, of) for label, n, of in report.met_by_target(ctx)))
    if exc:
        lo = min(exc, key=lambda v: v[1]["exc_p50"])
        hi = max(exc, key=lambda v: v[1]["exc_p50"])
        hi95 = max(exc, key=lambda v: v[1]["exc_p95"])
        out.append(f"- Excess decision latency p50 ranges {lo[1]['exc_p50']:.0f} ms "
                   f"({lo[0]}) to {hi[1]['exc_p50']:.0f} ms ({hi[0]}); p95 up to "
                   f"{hi95[1]['exc_p95']:.0f} ms ({hi95[0]}). The table \"When a burst "
                   f"becomes detectable\" below has each set's floor, its absolute latency "
                   f"and the plain causal reference's; the k_on sweep and the trade-off "
                   f"figure show what a lower threshold would buy.")
    if errs:
        out.append(f"- The onset date (`sample`) has a median signed error of "
                   f"{min(errs):+.0f} to {max(errs):+.0f} ms across the data sets "
                   f"(negative = before the true onset).")
    early = [t for s in inj for sc in report.at_default(ctx, s.name, det)[1]
             for t in sc.truths
             if t["first_err_ms"] is not None and t["first_err_ms"] < -scoring.TOL_MS]
    n_inj = sum(sums[s.name]["n"] for s in inj)
    if early:
        out.append(f"- In {len(early)} of {n_inj} injected bursts and clonus trains the first "
                   f"onset decided during the burst was dated more than {scoring.TOL_MS:g} ms "
                   f"before its true onset (median {report.med([t['first_err_ms'] for t in early])} "
                   f"ms, earliest {min(t['first_err_ms'] for t in early):.0f} ms): the "
                   f"change-point search took a stretch of rest before the burst for part of "
                   f"it (see the figure of the earliest one). Unless another onset matches it, "
                   f"such a burst counts as missed and its onset as \"FP in burst\".")
    worst = min(inj, key=lambda s: sums[s.name]["recall"] or 0.0)
    w = sums[worst.name]
    out.append(f"- Lowest recall: {worst.name}, {fnum(w['recall'], 2)}: {w['tp']} of "
               f"{w['n']} bursts got an onset within +/-{scoring.TOL_MS:g} ms, "
               f"{w['hit']} got any onset.")
    for s in inj:
        v = sums[s.name]
        if s.name.endswith("-spikes"):
            out.append(f"- {s.name}: {_n(v['fp_spike'], 'false onset')} at rest within 300 ms "
                       f"of one of the {v['n_spikes']} injected spikes; "
                       f"{fnum(v['fa_per_min'], 2)} false onsets per minute of rest.")
        if s.name.endswith("-clonus"):
            out.append(f"- {s.name}: {v['hit']} of {v['n']} clonus trains got any onset, "
                       f"{v['split']} got two or more (each extra onset is a false onset "
                       f"in a burst).")
    out.append(_hum_findings(ctx, sums))
    bursts = [s.name for s in inj if "snr" in s.name]
    b = report.pooled(ctx, bursts, det)[0]
    out.append(f"- Injected bursts, every SNR, both rates: {b['hit']} of {b['n']} got an "
               f"onset at all, {b['tp']} within +/-{scoring.TOL_MS:g} ms of the truth; the "
               f"difference is onset timing, the rest is detection.")
    out.append(_tradeoff(ctx))
    return "\n".join(x for x in out if x).replace("\0", "")


def _hum_findings(ctx, sums):
    """One paragraph on the hum sets, from the numbers."""
    hum = [n for n in sums if "-hum" in n]
    if not hum:
        return ""
    det = ctx["det"]
    met = [n for n in hum if report.target_value(ctx, report.find_set(ctx, n), "f1")[0]]
    fa_ok = [n for n in hum if (sums[n]["fa_per_min"] or 0.0) <= report.FA_MAX]
    worst = min(hum, key=lambda n: sums[n]["f1"] or 0.0)
    pooled = report.pooled(ctx, hum, det)[0]
    naive = report.pooled(ctx, hum, "Naive")[0]
    by = []
    for lv in datasets.HUM_LEVELS:
        sel = [n for n in hum if "-x%g-" % lv in n]
        p = report.pooled(ctx, sel, det)[0]
        q = report.pooled(ctx, sel, "Naive")[0]
        by.append("%gx: %s (Naive %s)" % (lv, fnum(p["f1"], 3), fnum(q["f1"], 3)))
    return (f"- Mains hum ({len(hum)} sets): F1 >= 0.95 on {len(met)}, at most 0.5 false "
            f"onsets per minute on {len(fa_ok)}; worst {worst} (F1 {fnum(sums[worst]['f1'], 3)}, "
            f"{fnum(sums[worst]['fa_per_min'], 2)} false/min). Pooled F1 by hum level: "
            f"{', '.join(by)}; pooled over every hum set rpms-detect "
            f"{fnum(pooled['f1'], 3)} with {fnum(pooled['fa_per_min'], 2)} false/min, the "
            f"plain causal reference {fnum(naive['f1'], 3)} with "
            f"{fnum(naive['fa_per_min'], 2)} (it has no transient rejection: most of its "
            f"false onsets follow a pop). The section \"Mains interference\" has every set.")


def _n(n, word):
    """'1 false onset', '2 false onsets'."""
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def _tradeoff(ctx):
    """What the k_on sweep says about the targets that trade against each
    other: excess latency, F1 and false onsets (figure tradeoff.png)."""
    if len(ctx["k_ons"]) < 2:
        return ""
    pts = report.sweep_points(ctx)
    text = ["- The trade-off, from the `detect.k_on` sweep (figure `tradeoff.png`), "
            "pooled over every injected set but the hum sets (bursts, clonus, spikes, "
            "mains), both rates:"]
    lat = [(k, g["nohum"]["exc_p50"], g["nohum"]["exc_p95"], g["nohum"]["fa_per_min"],
            g["rest"]["fa_per_min"]) for k, _, g in pts if g["nohum"]["exc_p50"] is not None]
    if lat:
        fast = min(lat, key=lambda p: p[1])
        text.append(f"the lowest excess latency p50 is {fast[1]:.0f} ms (p95 {fast[2]:.0f} ms) "
                    f"at k_on {fast[0]:g}, with {fast[3]:.2f} false onsets per minute there and "
                    f"{fast[4]:.2f} on the real rest;")
        ok = [p for p in lat if p[3] <= report.FA_MAX and p[4] <= report.FA_MAX]
        if ok:
            best = min(ok, key=lambda p: p[1])
            text.append(f"with at most {report.FA_MAX:g} false onsets per minute on both, the "
                        f"lowest is {best[1]:.0f} ms (p95 {best[2]:.0f} ms, k_on {best[0]:g});")
        else:
            text.append(f"no k_on in the sweep keeps both at {report.FA_MAX:g} false onsets per "
                        f"minute or fewer;")
        both = [p for p in ok if p[1] <= report.EXC_P50_MS and p[2] <= report.EXC_P95_MS]
        text.append("so no threshold in the sweep meets the excess-latency targets and the "
                    "false-onset target together." if not both else
                    "k_on %s meets the pooled excess-latency targets and the false-onset "
                    "target together." % ", ".join("%g" % p[0] for p in both))
    sus = [(v, g["nohum"]["exc_p50"], g["nohum"]["exc_p95"], g["nohum"]["fa_per_min"],
            g["spikes"]["fa_per_min"]) for v, _, g in report.sustain_points(ctx)
           if g["nohum"]["exc_p50"] is not None]
    if sus:
        fast = min(sus, key=lambda p: p[1])
        ok = [p for p in sus if p[3] <= report.FA_MAX]
        text.append(f"The other knob, `detect.sustain_ms` (the transient rejection; table below "
                    f"the k_on sweep): at {fast[0]:g} ms the excess latency p50 is "
                    f"{fast[1]:.0f} ms (p95 {fast[2]:.0f} ms) with {fast[3]:.2f} false onsets "
                    f"per minute ({fast[4]:.2f} on the spike sets)" +
                    (f"; with at most {report.FA_MAX:g}, the lowest p50 is "
                     f"{min(ok, key=lambda p: p[1])[1]:.0f} ms "
                     f"(sustain_ms {min(ok, key=lambda p: p[1])[0]:g})." if ok else "."))
    hum = [(k, g["hum"]["f1"], g["hum"]["fa_per_min"]) for k, _, g in pts if g.get("hum")]
    if hum:
        top = max(hum, key=lambda p: p[1] or 0.0)
        text.append(f"Under hum (every hum set pooled) F1 peaks at {top[1]:.3f} (k_on "
                    f"{top[0]:g}, {top[2]:.2f} false/min).")
    low = [(k, g["low"]["f1"]) for k, _, g in pts if g.get("low")]
    if low:
        top = max(low, key=lambda p: p[1] or 0.0)
        text.append(f"On the 6-10 dB sets F1 peaks at {top[1]:.3f} (k_on {top[0]:g}).")
    return " ".join(text)


def _data(ctx):
    rows = report._set_rows(ctx)
    stretches = ", ".join("%g-%g s" % s for s in datasets.REST_STRETCHES_S)
    weak = ", ".join("%g-%g s" % s for s in datasets.WEAK_ACTIVITY_S)
    return f"""
## Data sets

The source recordings are bundled in the repository, in `data/emg/`
(`--data`): `emg_1.txt`, `emg.txt` (BioSPPy) and `simulated_onsets/`,
each with its source and licence (`data/emg/README.md`). Each
generated or converted recording is written as a replay text file with a
`# Sampling Rate (Hz):=` header, next to a `.truth.csv` (every burst,
clonus train and spike: sample of onset and end, SNR, ramp, duration) and
a `.json` (how it was made, seed included) under `build/eval-work/`.

{md_table(["data set", "what", "recordings", "length", "scored bursts", "calibration window"], rows)}

**Simulated set** (`simulated_onsets/`, Apache-2.0): 10 trials x 5 bursts
of about 2 s with ramp-like onsets, true onset samples given, 1 kHz, SNR
decreasing from trial 9 (clean) to trial 1 (noisiest); measured per
burst, {_sim_snr_text(ctx)} (section "The simulated set's onsets"). The first burst
starts as early as sample 426, so this set is calibrated on **{_sim_cal(ctx)}**
(`detect.calibration_s` = {_sim_rec(ctx).cal_s:g}; the daemon's default is
{ctx['defaults']['detect']['calibration_s']} s). {_sim_scoring(ctx)} Burst ends
are not given; a nominal {datasets.SIM_BURST_S:g} s is used to tell rest from
burst when counting false onsets.

**Injected sets**: real rest EMG from `emg.txt` (BioSPPy, BSD-3, 12-bit
counts, 1 kHz; for 2 kHz resampled by zero-padding its spectrum) with
bursts added by a seeded generator (`bench/eval/synth.py`). Only the rest
stretches {stretches} are used; the weak-activity stretches {weak}
are left out. {_weak_text(ctx)} Each recording is {datasets.INJ_LENGTH_S:g} s of
one randomly placed rest piece (randomly time-reversed and/or sign-flipped;
the pieces of different recordings overlap, since there are only about {_rest_s():.0f} s
of rest), calibrated on its first {datasets.INJ_CAL[1]:g} s, with the first
burst 0.5-1.5 s after calibration and 1-2.5 s of rest between bursts.

- *Bursts*: Gaussian noise shaped like surface EMG (power spectrum
  f^2 fh^4 / ((f^2 + fl^2)(f^2 + fh^2)^2), fl 40-80 Hz and fh 100-160 Hz drawn per
  burst, limited to 20-450 Hz), slowly amplitude-modulated (15 % RMS,
  below 3 Hz), with a linear onset ramp of 0-150 ms (uniform), a linear
  offset ramp of 0-150 ms and a duration of 0.15-2 s (uniform). The true
  onset is the first sample of the ramp.
- *SNR* (dB) = 20 log10 (RMS of the injected burst over its plateau / RMS
  of the rest EMG band-passed 20-450 Hz over the 1 s before the onset).
  For a clonus train the "plateau" is every sample where a sub-burst is at
  least half its peak. Each SNR bin (6-10, 10-14, 14-20 dB) is a separate
  set; the clonus, spike and hum sets use 10-20 dB so that their own
  difficulty is what they measure.
- *Clonus*: trains of 1-3 s of Hann-shaped sub-bursts at 5-8 Hz (duty
  40-60 %, period jittered by 5 %, amplitudes +/-25 %); a train is **one**
  burst whose onset is the start of its first sub-burst.
- *Spikes and electrode pops*: in every rest gap, 1-2 transients at least
  300 ms from any burst: one sine cycle of 3-8 ms (motion spike) or a step
  decaying with a 1-2.5 ms time constant, cut at 8 ms (pop); peak 20-200
  times the local rest RMS (log-uniform). They are **not** bursts: an onset
  within 300 ms after one counts as a false onset in rest.
- *Mains hum* (the `mains` sets): 50 Hz (off by up to 0.05 Hz) with
  harmonics at 100 Hz (-20 dB), 150 Hz (-10 dB) and 250 Hz (-16 dB), total
  RMS 0-20 dB above the band-passed rest RMS (uniform in dB, one level per
  recording), present from the first sample (calibration included). Hum
  does not enter the SNR.
{_hum_data(ctx)}

**Real rest** (`rest-1k`, `rest-2k`): `emg.txt` as it is (and resampled),
calibrated on 0-2 s; only false onsets are counted, outside the
weak-activity stretches {weak}; onsets inside those stretches are listed
separately.

**emg_1.txt** (the bundled demo recording, 4 clear bursts, no exact
truth): calibrated on 3-5 s (rest; the first burst at about 1.5 s is
inside the first seconds and is not detectable after a calibration there);
every detector's onsets are listed for comparison, not scored.
"""


def _hum_data(ctx):
    """The hum sets' bullet of the data section."""
    hum = [d for d in report.truth_sets(ctx) if "-hum" in d.name]
    if not hum:
        return ""
    per_rec = [sum(1 for e in r.events if e["kind"] == "burst") for d in hum
               for r in d.recordings]
    mean_b = sum(per_rec) / len(per_rec)
    # Bursts for a +/-0.02 interval at F1 0.95, treating each burst as one
    # success/failure (binomial): 1.96^2 x 0.95 x 0.05 / 0.02^2.
    need_b = 1.96 ** 2 * 0.95 * 0.05 / 0.02 ** 2
    n_rec = len(hum[0].recordings)
    return f"""- *Mains-hum sets* (`inj-{{1,2}}k-hum{{50,60}}-x{{1,3,10}}-{{steady,drift}}`,
  {len(hum)} sets): bursts (SNR 10-20 dB) as above, and in every rest gap
  one or two **3 ms electrode pops** (a jump to the peak, then an
  exponential decay with a {synth.POP_TAU_MS[0]:g}-{synth.POP_TAU_MS[1]:g} ms
  time constant shifted to reach zero at {synth.POP_MS:g} ms; peak 20-200
  times the local rest RMS, placed as the spikes above), under mains hum
  whose total RMS is **1, 3 or 10 times** the band-passed rest RMS (0, 9.5
  and 20 dB), present from the first sample, at **50 or 60 Hz**;
  rpms-detect is told the mains frequency (`dsp.mains_hz`, as `--mains`
  sets it), and so is the references' comb notch. The hum has a **3rd and
  a 5th harmonic**, drawn per recording at {synth.HUM_H3_DB[0]:g} to
  {synth.HUM_H3_DB[1]:g} dB and {synth.HUM_H5_DB[0]:g} to {synth.HUM_H5_DB[1]:g} dB
  relative to the fundamental: the supply may carry up to 5 % 3rd and 6 %
  5th harmonic (EN 50160's limits, -26 and -24 dB), and hum reaches the
  electrodes mostly by capacitive coupling, whose current grows with
  frequency (x3, x5: +9.5 and +14 dB), which puts a supply at those
  limits near -16 and -10 dB on the body; nearby non-linear loads
  (switched-mode supplies, dimmers, motor drives) add to the 3rd. No even
  harmonics (a symmetric supply has none). **Steady**: a constant
  frequency within +/-{synth.HUM_STEADY_HZ:g} Hz of nominal (an interconnected
  grid). **Drifting**: the frequency wanders with a peak deviation drawn
  per recording from {synth.HUM_DRIFT_HZ[0]:g} to {synth.HUM_DRIFT_HZ[1]:g} Hz (a
  small grid or a generator), half the recordings on a sinusoid of period
  {synth.HUM_DRIFT_PERIOD_S[0]:g}-{synth.HUM_DRIFT_PERIOD_S[1]:g} s, half on a slow
  random walk (Brownian motion in {synth.HUM_WALK_STEP_S:g} s steps, its mean
  removed, scaled to the peak deviation); every harmonic follows (the
  k-th wanders by k times as much), the phase is the running integral of
  the frequency. Each recording's `.json` says what was drawn. **Size**:
  at F1 near 0.95, counting each burst as a success or a failure, a 95 %
  interval of +/-0.02 needs about {need_b:.0f} bursts; these recordings hold
  {mean_b:.1f} bursts on average, so about {need_b / mean_b:.0f} recordings;
  each hum set has {n_rec} (`--hum-per-set`). Misses and false onsets
  cluster by recording, which widens the interval a little; the section
  "Mains interference" gives each set's interval and the recordings it
  would take for +/-0.02."""


def _sim_snr_text(ctx):
    """The simulated bursts' SNR range, as text."""
    recs = [d for d in ctx["sets"] if d.name == "sim"][0].recordings
    snr = [float(e["snr_db"]) for r in recs for e in r.events if e["snr_db"] != ""]
    low = sum(1 for v in snr if v < 10.0)
    return ("the bursts' SNR runs from %.1f to %.1f dB, %d of %d below 10 dB"
            % (min(snr), max(snr), low, len(snr)))


def _sim_rec(ctx):
    """The first recording of the simulated set."""
    return [d for d in ctx["sets"] if d.name == "sim"][0].recordings[0]


def _sim_cal(ctx):
    """The simulated set's calibration window, as text."""
    r = _sim_rec(ctx)
    return "%g-%g s" % (r.cal_start_s, r.cal_start_s + r.cal_s)


def _sim_scoring(ctx):
    """Which simulated bursts are scored, and how early the first ones are."""
    recs = [d for d in ctx["sets"] if d.name == "sim"][0].recordings
    skipped = ["%s (onset %d)" % (r.name, e["onset_sample"]) for r in recs
               for e in r.events if not e["scored"]]
    firsts = [(e["onset_sample"] - r.cal_end) * 1000.0 / r.fs for r in recs
              for e in r.events[:1] if e["scored"]]
    text = ("The first scored burst of each trial starts %.0f-%.0f ms after calibration "
            "ends." % (min(firsts), max(firsts))) if firsts else ""
    if skipped:
        text += (" A burst whose true onset lies inside the calibration window cannot be "
                 "detected causally and is **not scored**: %s; detections from its onset "
                 "to 2.25 s later are ignored, and its first samples are part of that "
                 "trial's calibration window." % ", ".join(skipped))
    else:
        text += " Every burst is scored."
    return text


def _metrics():
    return f"""
## Metrics

- **Matching**: detected onsets (`sample`, the back-dated onset estimate
  of rpms-detect) and true onsets are matched one-to-one within +/-{scoring.TOL_MS:g} ms,
  **greedily by distance** (all pairs within the window, nearest first,
  each side used once). Matched = true positive (TP).
- **Precision** = TP / all counted onsets, **recall** = TP / scored
  bursts, **F1** = their harmonic mean. An onset more than {scoring.TOL_MS:g} ms off
  is therefore both a missed burst and a false onset; the tables also say
  how many bursts got an onset at all.
- **Onset error** = detected `sample` - true onset (ms), over matched
  onsets: median (signed, negative = early) and median |error|.
- **Decision latency** = the first `decision_sample` made during a burst
  (from {scoring.TOL_MS:g} ms before its true onset to {scoring.TAIL_MS:g} ms after its end)
  - its true onset (ms), p50 and p95 over the bursts that got one: how long
  after the burst truly began the daemon would have fired, however well
  the onset was dated. (Over matched onsets only, a detector whose date
  follows its decision, like the plain causal reference, would have every
  decision later than {scoring.TOL_MS:g} ms after its dated onset cut off by the
  match window.) The offline references look ahead, so they have none;
  the plain causal reference decides at its threshold crossing.
- **Detectable after** (per burst, from the truth): the ms from the true
  onset to the first sample at which the injected burst's amplitude (its
  scale times its envelope: the onset ramp, or a clonus train's first
  sub-burst) reaches the RMS of the rest EMG it was injected into (an
  instantaneous SNR of 0 dB), plus {scoring.TRANSIENT_MS:g} ms: a causal detector
  that must not take a transient of a few ms (a pop, a motion spike) for a
  burst needs about that much of it. For a linear ramp of R ms to A times
  the rest RMS that is R / A + {scoring.TRANSIENT_MS:g} ms. Not a strict bound (a
  detector can be lucky with the noise), but below it a decision rests on
  less signal than noise.
- **Excess latency** = decision latency - detectable after, per burst;
  p50 and p95 per set. What a faster causal detector could still win.
- **False onsets per minute of rest**: unmatched onsets made outside every
  burst span (true onset - {scoring.TOL_MS:g} ms to burst end + {scoring.TAIL_MS:g} ms), divided by the
  scored time outside those spans (after calibration, outside ignored
  and weak-activity stretches). "Made" is rpms-detect's decision sample
  (when the daemon would have fired); the references have no decision
  time, so their onset sample is used. Unmatched onsets made inside a
  burst span (a split burst, or an onset time too far off, e.g. back-dated
  into the rest before the burst) are counted as "FP in burst": they lower
  precision but are not false alarms at rest.
- Onsets before the end of the calibration window are not counted for any
  detector (none can detect there).
"""


def _refs(ctx):
    hb, bo, tk, nv = (references.HodgesBui, references.Bonato, references.SolnikTKEO,
                      references.NaiveCausal)
    return f"""
## Reference detectors

Implemented in numpy from the papers' descriptions (`bench/eval/references.py`);
their baseline statistics come from the same calibration window as
rpms-detect's. Three are **offline** (zero-phase filters, forward-looking
windows): the yardstick an analyst would use afterwards. Common to those
three, and ours: mains (the recording's mains frequency and its harmonics)
is removed first with a zero-phase comb notch (every spectral bin within
max(1, 0.6 k) Hz of harmonic k, so a fundamental that wanders by 0.5 Hz is
still removed at the 5th harmonic); active intervals closer than
{references.MERGE_GAP_MS:g} ms are merged into one burst (the papers find one
onset per trial; a recording has many); an interval starting before the
calibration window ends is dropped. Filters are Butterworth magnitudes
applied forward-backward in the frequency domain.

- **{hb.name}** (P. W. Hodges, B. H. Bui, "A comparison of computer-based
  methods for the determination of onset of muscle contraction using
  electromyography", *Electroencephalogr. Clin. Neurophysiol.* 101:511-519,
  1996): band-pass 20-450 Hz, full-wave rectification, low-pass
  {hb.lowpass_hz:g} Hz (2nd order, forward-backward); onset where the mean of the
  next {hb.window_ms:g} ms exceeds the baseline mean + h SD, **h = {hb.default:g}**. The paper
  compared low-pass 10/50/500 Hz, h = 1/2/3 SD and windows of 20/50/100 ms
  against visual onsets; we take 50 Hz, 50 ms and the strictest h = 3.
- **{bo.name}** (P. Bonato, T. D'Alessio, M. Knaflitz, "A statistical method
  for the measurement of muscle activation intervals from surface
  myoelectric signal during gait", *IEEE Trans. Biomed. Eng.* 45(3):287-299,
  1998): band-pass 20-450 Hz, whitened by an AR({bo.ar_order}) prediction-error
  filter fitted on the calibration window (the detector assumes a white
  Gaussian background; the whitening method is our choice), normalised by
  the rest variance; pairs of samples g = (x[2k]^2 + x[2k+1]^2)/sigma^2;
  first threshold zeta on g, second threshold r0 = {bo.r0} of m pairs in a
  {bo.window_ms:g} ms window (m = 5 at 1 kHz, 10 at 2 kHz); zeta from the false-alarm
  probability of a window, **Pfa = {bo.default:g}**; activity shorter than
  {bo.min_active_ms:g} ms is rejected; the onset is the first pair above zeta.
- **{tk.name}**: the Teager-Kaiser energy operator as an onset detector's
  conditioning (X. Li, P. Zhou, A. S. Aruin, "Teager-Kaiser energy operation
  of surface EMG improves muscle activity onset detection", *Ann. Biomed.
  Eng.* 35:1532-1538, 2007), with the filters of S. Solnik, P. Rider,
  K. Steinweg, P. DeVita, T. Hortobagyi, "Teager-Kaiser energy operator
  signal conditioning improves EMG onset detection", *Eur. J. Appl.
  Physiol.* 110:489-498, 2010: band-pass 30-300 Hz (6th order), TKEO
  psi[n] = x[n]^2 - x[n-1] x[n+1], full-wave rectification, low-pass
  {tk.lowpass_hz:g} Hz (2nd order); onset where the result stays above the
  baseline mean + j SD, **j = {tk.default:g}** (Li et al.'s threshold rule, with the
  baseline over the calibration window), for at least {tk.min_above_ms:g} ms
  (Solnik et al.). {_tkeo_text(ctx)}
- **{nv.name}** ("Naive", **causal**): the naive baseline issue 17 compares
  against under hum. One wide notch at the mains fundamental (Q {nv.notch_q:g},
  a -3 dB width of {50 / nv.notch_q:g} Hz at 50 Hz; no harmonics notched),
  2nd-order Butterworth high-pass {nv.band[0]:g} Hz and low-pass {nv.band[1]:g} Hz, all
  applied causally from rest; a {nv.window_ms:g} ms trailing RMS envelope; a fixed
  threshold, the envelope's median + **k = {nv.default:g}** x 1.4826 MAD over the
  calibration window. It decides an onset at the first sample above the
  threshold after at least {references.MERGE_GAP_MS:g} ms below it, and dates it
  half a window ({nv.window_ms / 2:g} ms) earlier, the RMS window's centre. No
  transient rejection. Its decision latency and excess latency are
  reported like rpms-detect's. k = {nv.default:g} keeps it near 0.95 recall on the
  clean 14-20 dB bursts with few false onsets at rest (k = 8 gave about 4
  per minute on the real rest recording, 12 none but lower recall); `roc.png`
  sweeps k {min(nv.sweep):g}-{max(nv.sweep):g}.

The values of h, j, k and the windows are our reading of the papers (the
full texts of Li et al. 2007 and Solnik et al. 2010 could not be consulted
from where this evaluation was written: the TKEO rule above follows their
abstracts and the method as issue 17 summarises Li et al., threshold =
baseline mean + j SD of the conditioned signal, j about 6, with a minimum
duration), so the figure `roc.png` sweeps each threshold over a wide range
(HB h {min(hb.sweep):g}-{max(hb.sweep):g}, Bonato Pfa {min(bo.sweep):g}-{max(bo.sweep):g}, TKEO j
{min(tk.sweep):g}-{max(tk.sweep):g}) to show how much the comparison depends on them.
"""


def _tkeo_text(ctx):
    """The TKEO fix of issue 17, with the sweep's numbers when it ran."""
    tk = references.SolnikTKEO
    old = 15.0
    text = (f"Until issue 17 this reference ran with j = {old:g} (\"Solnik et al. 2010 "
            f"(TKEO)\"), which scored F1 0.06-0.62 on the injected sets. On this data the "
            f"conditioned signal's SD at rest is 0.7-0.9 times its mean, so j = {old:g} put "
            f"the threshold 12-14 times above the rest energy (10.5-11.5 dB), above the "
            f"plateau of most 6-14 dB bursts, and where a burst did cross it, it crossed "
            f"late in its ramp (the median first onset came 100-250 ms after the true one "
            f"on the 6-10 dB sets), beyond the +/-{scoring.TOL_MS:g} ms match.")
    if len(ctx["k_ons"]) < 2:
        return text
    rows = []
    for ds in report.truth_sets(ctx):
        if not ds.name.startswith("inj") or "-hum" in ds.name:
            continue
        per = ctx["res"][ds.name]["TKEO"]
        if old not in per:
            continue
        rows.append("%s %.2f -> %.2f" % (ds.name, per[old][0]["f1"] or 0.0,
                                         per[tk.default][0]["f1"] or 0.0))
    if rows:
        text += (f" F1 at j = {old:g} -> j = {tk.default:g}, this run: " + "; ".join(rows) + ".")
    return text


def _results(ctx):
    return f"""
## Results at the default settings

Every detector at its default threshold. Onsets matched within
+/-{scoring.TOL_MS:g} ms; "FP rest" and "FP in burst" as defined above; latency only
for rpms-detect.

{md_table(report.RESULT_HEADER, report.result_rows(ctx))}
"""


def _diagnostics(ctx):
    rows = report.clonus_spike_rows(ctx)
    return f"""
## Where rpms-detect gains or loses

"Detected at all" counts a burst in which an onset was made (for
rpms-detect: decided) from {scoring.TOL_MS:g} ms before its true onset to
{scoring.TAIL_MS:g} ms after its end, however far off its date; "first onset" is
the first such onset (its error and latency include onsets too far off to
be matched).

{report.diagnostics(ctx)}

### Where the decision time goes

From rpms-detect's trace of every injected burst (both rates): how soon
after the true onset its {ctx['defaults']['dsp']['envelope_ms']} ms envelope first exceeded the onset threshold,
when the onset was decided, and, over the burst's plateau (from the end of
its onset ramp to {report.PLATEAU_END_MS:g} ms before its end), how much of the time the
envelope and the sustained envelope stood above the onset threshold and the
sustained envelope below the offset threshold (medians over the bursts).
The sustained envelope is the smallest of the envelope windows over the
last {ctx['defaults']['detect']['sustain_ms']} ms, and a {ctx['defaults']['dsp']['envelope_ms']} ms RMS of EMG whose power lies around
50-150 Hz holds less than one or two periods, so it dips between them; the
smallest of several such windows sits well below the envelope's typical
level, and an onset is decided only when every window is high at once.

{md_table(report.DECISION_HEADER, report.decision_rows(ctx))}

### When a burst becomes detectable

The latency targets are measured from this floor (see Metrics): the
moment the injected burst's amplitude first reaches the rest RMS, from the
truth, plus {scoring.TRANSIENT_MS:g} ms; the same for every detector. The excess is
what a faster causal detector could still win; the plain causal
reference (a {references.NaiveCausal.window_ms:g} ms RMS crossing a fixed threshold) is
shown for scale. Simulated set: its floor is estimated (its bursts' rise
is measured, not given; see "The simulated set's onsets").

{md_table(report.FLOOR_HEADER, report.floor_rows(ctx))}

### Clonus, spikes and hum

Every detector. For rpms-detect, the sustained-envelope margins are read
from its trace: after each spike, the largest ratio of the sustained
envelope (and of the plain envelope) to the onset threshold within 300 ms;
in each clonus train, the peak of the sustained envelope over the onset
threshold and the longest stretch below the offset threshold after the
train was first detected (a stretch of `detect.off_ms` ends the burst, and
the next sub-burst becomes a second onset).

{md_table(["data set", "detector", "recall", "F1", "false/min rest", "what happened"], rows)}
"""


def _hum(ctx):
    rows = report.hum_rows(ctx)
    if not rows:
        return ""
    return f"""
## Mains interference

The hum sets (see Data sets): bursts and 3 ms electrode pops under hum at
1, 3 and 10 times the rest RMS, steady or drifting, at 50 and 60 Hz, at
1 and 2 kHz, rpms-detect told the mains frequency. "False onsets after a
pop": of the false onsets at rest, those within 300 ms after a pop; "F1
without them" leaves those out, which is what the hum alone costs.
"Recordings for +/-0.02": how many recordings the set would need for its
F1 interval to be +/-0.02 wide, from the width observed here (the width
shrinks as one over the square root of the recordings). The figure
`example_hum.png` shows the hum recording with the most false onsets.

{md_table(report.HUM_HEADER, rows)}
"""


def _sim(ctx):
    ds = report.find_set(ctx, "sim")
    info = ds.info
    prof = info["profile"]
    fs = ds.rate
    def share(ms):
        """The profile's mean over +/-10 ms around ms (it is noisy)."""
        i, h = int(ms * fs / 1000), int(10 * fs / 1000)
        return max(float(prof[max(i - h, 0):i + h + 1].mean()), 0.0)
    at = ", ".join("%d ms: %.0f %%" % (ms, 100 * share(ms)) for ms in (10, 30, 50, 100, 200, 300))
    det = report.at_default(ctx, "sim", ctx["det"])[0]
    return f"""
## The simulated set's onsets

The simulated set scores lower than the injected sets of similar SNR
(F1 {fnum(det['f1'], 2)}, median |onset error| {fnum(det['med_abs_err'], 0)} ms). Its README
defines the true onset as a burst's first active sample (+/-1 ms), as the
injected sets do (the first sample of the ramp); its generator is not
published, so how its bursts rise was measured here
(`bench/eval/datasets.py`, `sim_onsets`): the power of the EMG band-passed
20-450 Hz, less the trial's rest power, over the burst's power
{datasets.SIM_PLATEAU_MS[0]}-{datasets.SIM_PLATEAU_MS[1]} ms after its onset, averaged over the
{info['n_profile']} bursts of {datasets.SIM_PROFILE_MIN_DB:g} dB or more. Share of the plateau power
after the true onset: {at}. The power grows about **linearly over
{info['rise_ms']:.0f} ms** (least-squares fit of min(t / T, 1) over the first
{datasets.SIM_PROFILE_MS} ms), so the amplitude grows as the square root of
time: a slower and longer rise than the injected bursts' (linear in
amplitude, 0-150 ms). A burst of SNR S dB then reaches the rest RMS only
T / 10^(S/10) ms after its true onset: about 4 ms at 20 dB, 43 ms at
10 dB, 134 ms at 5 dB. And the set is noisier than its reputation:
{_sim_snr_text(ctx)}.

By burst SNR (measured), rpms-detect, Hodges & Bui and the plain causal
reference, against the estimated floor:

{md_table(report.SIM_HEADER, report.sim_rows(ctx))}

{_sim_finding(ctx)}

The figure `sim_onsets.png` shows the mean rise against the injected
ramps, and every burst's first onset and decision against its SNR.
"""


def _sim_trace_text(ctx, inj):
    """From rpms-detect's trace: how soon the 5 ms envelope and the
    sustained envelope first crossed the onset threshold in the simulated
    bursts of 14 dB or more and in the injected 14-20 dB bursts, and how
    much of 50-200 ms after the onset the envelope spent above it."""
    def stats(recs, pick):
        env, sus, frac = [], [], []
        for rec in recs:
            tr = report.trace_of(ctx, rec)
            on = tr["on_threshold"]
            for e in rec.events:
                if e["kind"] != "burst" or not e["scored"] or not pick(e):
                    continue
                a = e["onset_sample"]
                b = min(a + int(0.6 * rec.fs), len(on))
                up = np.flatnonzero(tr["envelope"][a:b] > on[a:b])
                su = np.flatnonzero(tr["sustained"][a:b] > on[a:b])
                if len(up):
                    env.append(up[0] * 1000.0 / rec.fs)
                if len(su):
                    sus.append(su[0] * 1000.0 / rec.fs)
                w = slice(a + int(0.05 * rec.fs), min(a + int(0.2 * rec.fs), len(on)))
                frac.append(float(np.mean(tr["envelope"][w] > on[w])))
        return report.med(env), report.med(sus), report.med(frac, True)
    sim = stats(report.find_set(ctx, "sim").recordings, lambda e: float(e["snr_db"]) >= 14)
    ref = stats([r for n in inj for r in report.find_set(ctx, n).recordings], lambda e: True)
    return (f"From its trace: in those bursts the 5 ms envelope first crossed the onset "
            f"threshold {sim[0]} ms after the true onset (median), the sustained envelope "
            f"(every 5 ms window of the last {ctx['defaults']['detect']['sustain_ms']} ms "
            f"above it) only {sim[1]} ms after, and from 50 to 200 ms after the onset the "
            f"envelope stood above the threshold {sim[2]} of the time; in the injected "
            f"14-20 dB bursts {ref[0]} ms, {ref[1]} ms and {ref[2]}.")


def _sim_finding(ctx):
    """What the simulated set's numbers say, against the injected sets."""
    det = ctx["det"]
    tr = [t for sc in report.at_default(ctx, "sim", det)[1] for t in sc.truths]
    hb = [t for sc in report.at_default(ctx, "sim", "HB")[1] for t in sc.truths]

    def pick(ts, lo, hi):
        return [t for t in ts if lo <= float(t["snr_db"]) < hi]

    def med(vals):
        vals = [v for v in vals if v is not None]
        return float(np.median(vals)) if vals else None
    hi, hb_hi, lo = pick(tr, 14, 99), pick(hb, 14, 99), pick(tr, 0, 10)
    inj = [d.name for d in report.truth_sets(ctx) if d.name.endswith("snr14-20")]
    inj_lo = [d.name for d in report.truth_sets(ctx) if d.name.endswith("snr06-10")]
    if not (hi and inj):
        return ""
    ih = report.pooled(ctx, inj, det)[0]
    il = report.pooled(ctx, inj_lo, det)[0] if inj_lo else None
    return (f"So: the onset is defined the same way; what differs is the bursts. "
            f"At 14 dB and more ({len(hi)} bursts) rpms-detect matched "
            f"{sum(t['matched'] for t in hi)} within +/-{scoring.TOL_MS:g} ms, but dated them "
            f"{fnum(med([t['err_ms'] for t in hi if t['matched']]), 0)} ms late (median; Hodges & "
            f"Bui, looking ahead, {fnum(med([t.get('err_ms') for t in hb_hi if t['matched']]), 0)} ms) "
            f"and decided {fnum(med([t['first_lat_ms'] for t in hi]), 0)} ms after the true onset, "
            f"{fnum(med([t['first_excess_ms'] for t in hi]), 0)} ms after the estimated floor, "
            f"where on the injected 14-20 dB sets the median excess is "
            f"{fnum(ih['exc_p50'], 0)} ms and the onset error {ih['med_err']:+.0f} ms. "
            f"{_sim_trace_text(ctx, inj)} A burst that rises slowly (its power linear in "
            f"time) has every window of the sustained envelope above the threshold only "
            f"late, and its date follows. That is a real weakness of the detector on slow "
            f"rises, not a different truth. Below 10 dB ({len(lo)} bursts) the recall is "
            f"{fnum(sum(t['matched'] for t in lo) / len(lo), 2)}"
            + (f", against {fnum(il['recall'], 2)} on the injected 6-10 dB sets: the low "
               f"F1 of the set as a whole is mostly its low-SNR third." if il else "."))


def _sweep(ctx):
    if len(ctx["k_ons"]) < 2:
        return ""
    return f"""
## rpms-detect's onset threshold swept

`detect.k_on` from {min(ctx['k_ons'][1:]):g} to {max(ctx['k_ons'][1:]):g} (every other key at its
default; `detect.k_off` is halved only where it would not stay below
`k_on`), on every recording. "bursts": the injected burst sets pooled
(every SNR, both rates); "all injected": every injected set (bursts,
clonus, spikes, mains, hum); "F1, >= 10 dB sets": every set the F1 target
applies to, pooled; "any onset": clonus trains that got an onset however
far off its time; then the real rest recordings' false onsets and the
simulated set's recall. Where a target is missed at the default, this and
the figure `tradeoff.png` show whether another threshold would meet it
without missing another.

{md_table(report.SWEEP_HEADER, report.sweep_rows(ctx))}

`detect.sustain_ms` swept at the default `k_on` (the transient rejection:
a burst must keep every envelope window of the last sustain_ms above the
threshold, which a pop or spike does not, and which costs about that much
decision time), on every injected set but the hum sets, and on the real
rest recordings ("all but hum": bursts, clonus, spikes, mains pooled):

{md_table(report.SUSTAIN_HEADER, report.sustain_rows(ctx))}
"""


def _rules(ctx):
    """The CUSUM onset rule against the sustained one, their trade-offs,
    and the bound on how soon any detector could decide (issue 17)."""
    if not ctx.get("cusum") or len(ctx["k_ons"]) < 2:
        return ""
    d = ctx["defaults"]["detect"]
    return f"""
## Deciding sooner: the CUSUM rule, and how soon any detector could decide

The excess-latency target (p50 <= {report.EXC_P50_MS:g} ms, p95 <=
{report.EXC_P95_MS:g} ms on every set) is met at the defaults by {_exc_met(ctx)}. Two
questions: does a better causal decision rule exist, and how close to the
target could any rule come?

**The other rule.** `detect.rule = cusum` (`daemon/detect.c`) replaces
only the onset decision. Each sample's envelope is turned into evidence,
its log ratio to the rest median in spreads, ln(envelope / median) x
median / spread, less a drift `detect.cusum_k` = {d.get('cusum_k', '-')}, clipped to
+-`detect.cusum_cap` = {d.get('cusum_cap', '-')} per ms; Page's CUSUM sums it
(never below zero) and decides when the sum passes `detect.cusum_h` =
{d.get('cusum_h', '-')}. A rise adds up from its first samples: a weak or slow
burst is decided when enough of it has been seen, not when a fixed span
of it has stood above a fixed level; the cap bounds what a pop can add
(it must last cusum_h / cusum_cap ms to decide alone); the log keeps a
loud transient from counting much more than a moderate one. Dating,
offset and rest following are the sustained rule's. rpms-detect runs it
here through temporary configs, swept over `cusum_h`, on every set; the
sustained rule is swept over `k_on` as above.

Both rules at their defaults, by set family (both rates pooled; the hum
families pool 50 and 60 Hz, steady and drifting):

{md_table(rules.FAMILY_HEADER, rules.family_rows(ctx))}

{_rules_findings(ctx)}

The trade-off of each rule over its threshold: excess latency pooled over
the injected bursts of every SNR, clonus and spike sets (both rates, the
sets the bound below covers), against false onsets per minute of rest on
the sets with pops (the spike sets and every hum set pooled) and on the
real rest; F1 over the >= 10 dB sets; and how many sets meet each target
(figure `rules.png`):

{md_table(rules.RULES_HEADER, rules.rule_rows(ctx))}

{_bound_section(ctx)}
"""


def _exc_met(ctx):
    """'p50 on N of M sets and p95 on N of M' for rpms-detect at its defaults."""
    got = {short: (n, of) for short, n, of in report.met_by_target(ctx)}
    p50, p95 = got.get("excess p50", (0, 0)), got.get("excess p95", (0, 0))
    return "p50 on %d of %d sets and p95 on %d of %d" % (p50 + p95)


def _rules_findings(ctx):
    """Computed statements on the two rules."""
    out = []
    deltas = rules.family_deltas(ctx)
    if deltas:
        p50 = [v[1] for v in deltas]
        p95 = [v[2] for v in deltas]
        later = [v[0] for v in deltas if v[1] > 0 or v[2] > 0]
        out.append(f"- The CUSUM at its default changes the excess latency by "
                   f"{min(p50):+.0f} to {max(p50):+.0f} ms at p50 and {min(p95):+.0f} to "
                   f"{max(p95):+.0f} ms at p95 across the families (negative = sooner)"
                   + (f"; later on {', '.join(later)}." if later else
                      ", sooner on every family."))
    lost = rules.lost_targets(ctx)
    if lost:
        out.append("- Targets the sustained rule meets at its default and the CUSUM at its "
                   "default does not: " + "; ".join(
                       "%s %s (%s, cusum %s)" % (n, label, _target_num(label, a),
                                                 _target_num(label, b))
                       for n, label, a, b in lost) + ".")
    else:
        out.append("- The CUSUM at its default meets every F1, onset-error and false-onset "
                   "target the sustained rule meets.")
    pts = rules.rule_points(ctx)
    for rule in ("sustained", "cusum"):
        ok = [(label, g) for r, label, _, g, _ in pts if r == rule and g.get("pops")
              and g["pops"]["fa_per_min"] is not None and g["rest"]["fa_per_min"] is not None
              and g["pops"]["fa_per_min"] <= report.FA_MAX
              and g["rest"]["fa_per_min"] <= report.FA_MAX and g["traced"]["exc_p50"] is not None]
        if ok:
            label, g = min(ok, key=lambda v: v[1]["traced"]["exc_p50"])
            out.append(f"- {rule}: with at most {report.FA_MAX:g} false onsets per minute both "
                       f"with pops and on the real rest, the lowest pooled excess latency in "
                       f"the sweep is p50 {g['traced']['exc_p50']:.0f} ms, p95 "
                       f"{g['traced']['exc_p95']:.0f} ms ({label}).")
        elif any(r == rule for r, *_ in pts):
            out.append(f"- {rule}: no threshold in the sweep keeps both false-onset rates at "
                       f"{report.FA_MAX:g} per minute or below.")
    return "\n".join(out)


def _target_num(label, v):
    """A target's value as its table shows it."""
    return fnum(v, {"F1": 4, "median |err|": 0}.get(label, 2))


def _bound_section(ctx):
    rows = rules.bound_rows(ctx)
    pooled = rules.bound_pooled(ctx)
    if not rows or not pooled:
        return ""
    p50, p95, n, ok50, ok95, n_sets = pooled
    return f"""
**How soon could any detector decide?** On the real rest recordings a
false onset per minute of {report.FA_MAX:g} or less means none at all ({_rest_minutes(ctx)}
minutes of scored rest each), so whatever a detector compares with its
threshold must stay below it everywhere on the real rest, and the real
rest is what the injected sets' bursts sit in. Its envelope (rpms-detect's,
5 ms RMS) has bursts of its own: its power, averaged over a window, peaks
at {rules.rest_maxima_text(ctx)} its mean. `bench/eval/bound.py` turns
that into a lower bound. For a family of statistics of the envelope it
sets each member's threshold at the member's largest value on the real
rest, and for each burst takes the earliest moment any member passes its
threshold, using only the burst's own stretch of the recording: an oracle
that picks the best member for each burst after the fact. The families:
the power averaged over the last L ms (L = 1 ms to 2 s), the same on the
log power, the same on the clipped increments that `detect.rule = cusum`
sums (at its default drift and cap), and the quietest of n envelope
windows (the sustained envelope, n = 1 to {max(bound.N_WINDOWS)}). A CUSUM
on a statistic, with any drift and threshold, decides exactly when some
windowed mean of it passes a threshold that depends on the window: it is
covered by its family, as the sustained rule is by the last one, at every
`k_on`. Pops, false onsets in the injected sets' own rest, onset dating
and having to choose one member beforehand are all left out, so real
detectors can only do worse.

Excess latency (ms) of the bound by family, the soonest of the four, and
both rules' measured excess latency at their defaults:

{md_table(rules.BOUND_HEADER, rows)}

Pooled over these {n} bursts the soonest of the four families has an
excess latency p50 of {p50:.0f} ms and p95 of {p95:.0f} ms; its p50 is at
or below {report.EXC_P50_MS:g} ms on {ok50} of {n_sets} sets and its p95 at or below
{report.EXC_P95_MS:g} ms on {ok95} of {n_sets}. {_bound_verdict(ctx, len(rows))}
"""


def _rest_minutes(ctx):
    """The real rest recordings' scored minutes, as text ('1.3' or '1.3-1.4')."""
    mins = sorted(set("%.1f" % report.at_default(ctx, d.name, ctx["det"])[0]["rest_min"]
                      for d in ctx["sets"] if d.kind == "rest"))
    return "-".join([mins[0], mins[-1]] if len(mins) > 1 else mins)


def _bound_verdict(ctx, n_sets):
    """What the bound says about the target on the n_sets traced sets."""
    beyond = rules.bound_misses(ctx)
    if not beyond:
        return ("The bound itself meets the target on every set here: what keeps the "
                "measured rules from it is what the bound leaves out.")
    span = (max(bound.N_WINDOWS) - 1) * float(ctx["defaults"]["dsp"]["envelope_ms"])
    text = (f"On {len(beyond)} of {n_sets} sets ({', '.join(beyond)}) even the bound "
            f"misses p50 <= {report.EXC_P50_MS:g} or p95 <= {report.EXC_P95_MS:g} ms: "
            f"there the target cannot be met on this front end by the sustained rule "
            f"at any `k_on` (and `sustain_ms` up to {span:g} ms), by a CUSUM on the "
            f"power or the log power at any drift and threshold, by `detect.rule = "
            f"cusum` at any `cusum_h`, or by any OR of such rules, without a false "
            f"onset on the real rest. When a burst becomes \"detectable\" (its "
            f"amplitude reaching the rest RMS, +{scoring.TRANSIENT_MS:g} ms), the real "
            f"rest's own excursions are still as large as what the burst has added. ")
    return text + ("The measured rules lie above the bound by what it leaves out (pops, "
                   "the injected rest, one threshold for every burst).")


def _real(ctx):
    return f"""
## Real recordings

False onsets on the real rest recording (`emg.txt`, no bursts outside the
weak-activity stretches):

{md_table(["data set", "detector", "rest (min)", "false onsets", "false/min", "onsets in weak-activity stretches"], report.rest_rows(ctx))}

Onsets found in `emg_1.txt` (calibrated on 3-5 s; time in s, rpms-detect's
decision time in brackets). Its README gives rough burst times of about
{", ".join("%g-%g s" % b for b in datasets.EMG1_ROUGH_BURSTS_S)}
(the first lies before the end of calibration), and the band-passed RMS
shows weaker activity (about twice rest) around 35-41 s:

{md_table(["detector", "onsets", "onset times (s)"], report.listing_rows(ctx))}
"""


def _figures(ctx):
    figs = ctx.get("figures", {})
    lines = ["## Figures", ""]
    text = {
        "example_burst": "An injected burst as rpms-detect saw it (from `--trace`): the raw "
                         "input (reference onsets as triangles), the filtered EMG, and on a "
                         "log scale the envelope (light), the sustained envelope (dark) "
                         "and the onset and offset thresholds; true onset dashed black, "
                         "rpms-detect's dated onset green, its decision red. The bottom "
                         "panel zooms on the onset.",
        "example_sim": "The same view of the noisiest simulated trial.",
        "example_clonus": "A clonus train (one that was split into two onsets, when one "
                          "was); the zoom is on the second onset.",
        "example_mains": "The recording with the loudest mains hum, around the end of the "
                         "calibration window (grey), when the limiter is switched on, and "
                         "its first burst. The raw input is before the limiter.",
        "example_spike": "A spike or electrode pop in rest: of all injected spikes at "
                         "1 kHz, the one after which the sustained envelope came closest to "
                         "the onset threshold. The raw input is before the limiter; the "
                         "zoom covers the 300 ms after the spike.",
        "example_early": "The burst whose onset was dated furthest before its true onset: "
                         "the change-point search at the decision found the envelope's "
                         "excess over the edge level to start in the rest before the burst.",
        "roc": "Recall against false onsets per minute of rest as each detector's "
               "threshold sweeps (rpms-detect: `detect.k_on` through temporary configs; "
               "references: h, Pfa, j, k). Stars: the default settings; dotted lines: "
               "the 0.95 recall and 0.5 per minute targets.",
        "roc_any_onset": "The same sweep, counting a burst as found when an onset was made "
                         "during it (from its true onset - 50 ms to its end + 250 ms), "
                         "however far off the onset's date: detection apart from timing.",
        "errors": "rpms-detect's decision latency and onset error of the first onset in "
                  "each burst against the onset ramp (colour: SNR); recall by burst "
                  "duration and the distribution of the first onset's error, every "
                  "detector.",
    }
    text.update({
        "example_hum": "A hum recording (1 kHz) with the most false onsets at rest, around the "
                       "first of them (else its first missed burst). The raw input is before "
                       "the limiter.",
        "tradeoff": "The targets that trade against each other as `detect.k_on` sweeps: "
                    "excess decision latency (p50, p95) against false onsets per minute, "
                    "every injected set pooled; F1 of the >= 10 dB sets and of the hum sets "
                    "by hum level; F1 of the 6-10 dB sets against each reference at its "
                    "default; false onsets per group. Dotted: the targets.",
        "rules": "The two onset rules over their thresholds (`detect.k_on` for sustained, "
                 "`detect.cusum_h` for cusum): excess decision latency (p50 solid, p95 "
                 "dashed) of the injected bursts, clonus and spike sets pooled, against "
                 "false onsets per minute on the sets with pops (left) and on the real rest "
                 "(right); dotted: the targets; purple: the bound of `bench/eval/bound.py` "
                 "(the soonest of its families, pooled), below which no detector of those "
                 "families can decide without a false onset on the real rest.",
        "sim_onsets": "The simulated set: how its bursts rise (mean excess power over the "
                      "plateau, and the fitted line) against the injected sets' linear "
                      "amplitude ramps; per burst, rpms-detect's and HB's first onset and "
                      "rpms-detect's decision against the burst's SNR, with the estimated "
                      "moment it became detectable.",
    })
    for key in ("example_burst", "example_sim", "example_clonus", "example_spike",
                "example_early", "example_mains", "example_hum", "roc", "roc_any_onset",
                "errors", "tradeoff", "rules", "sim_onsets"):
        if key not in figs:
            continue
        fname, title = figs[key]
        lines.append(f"**{(title or key).replace(chr(10), ' ')}.** {text[key]}")
        lines.append("")
        lines.append(f"![{key}](detection/{fname})")
        lines.append("")
    return "\n".join(lines)


def _reproduce(ctx):
    a = ctx["args"]
    return f"""
## Reproducing

    ninja -C build
    {COMMAND}

Options: `--data DIR` (the recordings, default `data/emg`), `--work DIR` (generated
recordings, default `build/eval-work`), `--per-set N` (recordings per
injected set other than the hum sets; this run: {a.per_set}), `--hum-per-set N`
(recordings per hum set; this run: {a.hum_per_set}), `--seed N` (this run:
{a.seed}), `--detector`, `--rpmsd`, `--quick` (what the benchmark runs: 2
recordings per injected and hum set, no sweep, no figures, no document),
`--no-doc`, `--only TEXT` (repeatable: only the injected sets whose name
contains TEXT, e.g. `--only hum60`; implies `--no-doc`), and
`--set SECTION.KEY=VALUE` (repeatable) to run rpms-detect with a changed
`[dsp]` or `[detect]` key on every set and print the tables without
touching this page, for tuning. The generator is deterministic: the same
seed gives the same recordings. The full run ({_n_recs(ctx)} recordings) took
{ctx.get('elapsed_s', 0):.0f} s here on 2 cores (rpms-detect is run {len(ctx['k_ons'])} times per
recording for the sweep, and once more with `--trace` on the injected
burst, clonus and spike recordings and on those of the figures).
"""


def _n_recs(ctx):
    """Recordings in the run."""
    return sum(len(d.recordings) for d in ctx["sets"])


def _rest_s():
    return sum(b - a for a, b in datasets.REST_STRETCHES_S)


def _weak_text(ctx):
    """How the weak-activity stretches were chosen, with the measured
    figures (datasets.weak_activity, on the rest-1k recording already
    loaded) so the page cannot drift from them."""
    rest = [ds.recordings[0] for ds in ctx["sets"] if ds.name == "rest-1k"]
    if not rest:
        return ""
    w = datasets.weak_activity(rest[0].x)
    peaks = ", ".join("%g-%g s: %.2f" % (a, b, p) for (a, b), p in w["weak"])
    text = (f"The criterion: a {datasets.WEAK_RMS_MS:g} ms RMS of the EMG band-passed "
            f"20-450 Hz of at least {datasets.WEAK_RMS_RATIO:g} times the rest RMS "
            f"(the README's \"envelope ~2x baseline\" for 51-58 s). Its peak, in "
            f"times the rest RMS: {peaks}; in the rest stretches at most "
            f"{w['rest_peak']:.2f}. The short event near 95.8 s lasts about 150 ms: "
            f"by the injected sets' own definition (6 dB or more, 150 ms or longer) it "
            f"is a burst, which the recall target requires finding, so it is not "
            f"counted as rest.")
    return text


def _limits(ctx):
    rest_min = report.at_default(ctx, "rest-1k", ctx["det"])[0]["rest_min"]
    return f"""
## Limitations

- The injected bursts are synthetic (shaped Gaussian noise over real rest
  EMG); the rest background repeats across recordings, so the false onsets
  per minute of the injected sets are not independent samples. The real
  rest recording gives the independent figure.
- emg.txt is a single low-amplitude recording (12-bit counts, RMS about
  1.5-3 counts band-passed); quantisation is part of its noise. Outside
  its weak-activity stretches it leaves about {rest_min:.2f} min of scored rest, so
  a single false onset there is already {1.0 / rest_min:.2f} per minute: on the real rest
  the 0.5 per minute target can only be read as "none".
- The simulated set's burst ends are nominal (2 s), and its calibration
  window is much shorter than the daemon's default.
- emg_1.txt has no exact truth: its onsets are listed, not scored.
- The reference parameters are our reading of the papers (see above).
- The hum is synthetic: a fixed level per recording (movement changes the
  coupling in a ward), harmonics 3 and 5 only, frequency paths chosen to
  span a grid's and a generator's wander; and the pops of the hum sets
  are all {synth.POP_MS:g} ms long.
- The simulated set's rise and per-burst SNR are measured from its
  signals (its generator is not published), so its detectability floor
  is an estimate.
"""
