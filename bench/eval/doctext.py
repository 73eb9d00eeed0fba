# SPDX-License-Identifier: MIT
"""The text of docs/detection.md around the generated tables.

The document is written by run_eval.py: edit this file, not the .md.
"""


import datasets
import references
import report
import scoring
from report import fnum, md_table

COMMAND = "/usr/bin/python3 bench/eval/run_eval.py --build build"


def render(ctx):
    """The whole document."""
    parts = [_head(ctx), _summary(ctx), _data(ctx), _metrics(), _refs(ctx),
             _results(ctx), _diagnostics(ctx), _sweep(ctx), _real(ctx), _figures(ctx),
             _reproduce(ctx), _limits()]
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


def _head(ctx):
    g = ctx["git"]
    tree = (" **with uncommitted changes** in daemon/, tools/ or include/" if g["dirty"]
            else ", a clean tree")
    return f"""
# Burst detection accuracy

How accurately does rpmsd's causal burst detector find spastic burst
onsets? This page measures it against ground truth and against three
offline reference detectors from the literature. It is **generated**: one
command, run from the repository root after building,

    {COMMAND}

writes this file and the figures in `docs/detection/`. Edit
`bench/eval/doctext.py` (text) or `bench/eval/report.py` (tables), not this
file. The meson benchmark `detection` (`meson test -C build --benchmark
--suite detection --verbose` once `bench/eval` is a subdir of
`bench/meson.build`) runs a smaller configuration and prints the same tables
and targets.

**The numbers below are from one run** on {ctx['date']}, on {ctx['host']};
the run took {ctx.get('elapsed_s', 0):.0f} s. rpms-detect and rpmsd were built
in `{ctx['args'].build}` from git commit `{g['commit']}` ("{g['subject']}"){tree}. The detector
under test is `rpms-detect`: the daemon's own streaming detector run on a
file block by block, no look-ahead. It ran with the daemon's defaults
(read from `rpmsd --print-config` at run time, so a changed default is
picked up by the next run): {report._conf_lines(ctx)}. Only the calibration
window is set per data set (below); the threshold sweep also sets
`detect.k_on`.
"""


def _summary(ctx):
    rows, tally = report.target_rows(ctx)
    header = ["data set"] + [t[4] for t in report.TARGETS] + ["no worse than the best reference"]
    return f"""
## Targets

Targets from the issue, **reported, not asserted**: on every data set F1 >=
0.95, median |onset error| <= 15 ms, decision latency p50 <= 30 ms and p95
<= 50 ms, at most 0.5 false onsets per minute of rest, and no worse than the
best offline reference. "No worse" means: F1 not below the best
reference's (the reference with the highest F1 on that set) and median
|onset error| not above that reference's; on the rest-only recordings,
no more false onsets per minute than the reference with the fewest.

rpms-detect at its defaults: **{tally[0]} met, {tally[1]} missed.**

{md_table(header, rows)}

{_findings(ctx)}
"""


def _findings(ctx):
    """Plain statements computed from the numbers (no tuning advice)."""
    det = ctx["det"]
    d = ctx["defaults"]["detect"]
    inj = [s for s in report.truth_sets(ctx) if s.name.startswith("inj")]
    sums = {s.name: report.at_default(ctx, s.name, det)[0] for s in report.truth_sets(ctx)}
    p50 = [v["lat_p50"] for v in sums.values() if v["lat_p50"] is not None]
    errs = [v["med_err"] for v in sums.values() if v["med_err"] is not None]
    out = ["What the numbers say:", ""]
    if p50:
        out.append(f"- Decision latency p50 ranges {min(p50):.0f}-{max(p50):.0f} ms over the "
                   f"data sets. An onset is decided only after the envelope has been above "
                   f"the onset threshold for `detect.on_ms` = {d['on_ms']} ms, so the latency "
                   f"can never be below that plus the time the envelope takes to cross the "
                   f"threshold.")
    if errs:
        out.append(f"- The back-dated onset (`sample`) has a median signed error of "
                   f"{min(errs):+.0f} to {max(errs):+.0f} ms across the data sets "
                   f"(negative = before the true onset).")
    worst = min(inj, key=lambda s: sums[s.name]["recall"] or 0.0)
    w = sums[worst.name]
    out.append(f"- Lowest recall: {worst.name}, {fnum(w['recall'], 2)}: {w['tp']} of "
               f"{w['n']} bursts got an onset within +/-{scoring.TOL_MS:g} ms, "
               f"{w['hit']} got any onset.")
    for s in inj:
        v = sums[s.name]
        if "spikes" in s.name:
            out.append(f"- {s.name}: {v['fp_spike']} false onsets within 300 ms of one of "
                       f"the {v['n_spikes']} injected spikes; {fnum(v['fa_per_min'], 2)} false "
                       f"onsets per minute of rest.")
        if "clonus" in s.name:
            out.append(f"- {s.name}: {v['hit']} of {v['n']} clonus trains got any onset, "
                       f"{v['split']} got two or more (each extra onset is a false onset "
                       f"in a burst).")
    bursts = [s.name for s in inj if "snr" in s.name]
    b = report.pooled(ctx, bursts, det)[0]
    out.append(f"- Injected bursts, every SNR, both rates: {b['hit']} of {b['n']} got an "
               f"onset at all, {b['tp']} within +/-{scoring.TOL_MS:g} ms of the truth; the "
               f"difference is onset timing, the rest is detection. The threshold sweep "
               f"below separates the two.")
    return "\n".join(out)


def _data(ctx):
    rows = report._set_rows(ctx)
    stretches = ", ".join("%g-%g s" % s for s in datasets.REST_STRETCHES_S)
    weak = ", ".join("%g-%g s" % s for s in datasets.WEAK_ACTIVITY_S)
    return f"""
## Data sets

The source recordings are read from the shared EMG folder (`--data`,
default `../shared/data/emg` next to the repository); nothing is copied
into the repository except the already bundled `data/emg/emg_1.txt`. Each
generated or converted recording is written as a replay text file with a
`# Sampling Rate (Hz):=` header, next to a `.truth.csv` (every burst,
clonus train and spike: sample of onset and end, SNR, ramp, duration) and
a `.json` (how it was made, seed included) under `build/eval-work/`.

{md_table(["data set", "what", "recordings", "length", "scored bursts", "calibration window"], rows)}

**Simulated set** (`simulated_onsets/`, Apache-2.0): 10 trials x 5 bursts
of about 2 s with ramp-like onsets, true onset samples given, 1 kHz, SNR
decreasing from trial 9 (clean) to trial 1 (noisiest). The first burst
starts as early as sample 426, so this set is calibrated on **{_sim_cal(ctx)}**
(`detect.calibration_s` = {_sim_rec(ctx).cal_s:g}; the daemon's default is
{ctx['defaults']['detect']['calibration_s']} s). {_sim_scoring(ctx)} Burst ends
are not given; a nominal {datasets.SIM_BURST_S:g} s is used to tell rest from
burst when counting false onsets.

**Injected sets**: real rest EMG from `biosppy/emg.txt` (BSD-3, 12-bit
counts, 1 kHz; for 2 kHz resampled by zero-padding its spectrum) with
bursts added by a seeded generator (`bench/eval/synth.py`). Only the rest
stretches {stretches} are used: the README marks weak activity at about
51-58 s and the band-passed RMS is also raised (x1.4-1.8) around 35-41 s,
so {weak} are left out. Each recording is {datasets.INJ_LENGTH_S:g} s of
one randomly placed rest piece (randomly time-reversed and/or sign-flipped;
the pieces of different recordings overlap, since there are only about 73 s
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
- *Mains hum*: 50 Hz (off by up to 0.05 Hz) with harmonics at 100 Hz (-20
  dB), 150 Hz (-10 dB) and 250 Hz (-16 dB), total RMS 0-20 dB above the
  band-passed rest RMS (uniform in dB, one level per recording), present
  from the first sample (calibration included). Hum does not enter the SNR.

**Real rest** (`rest-1k`, `rest-2k`): `emg.txt` as it is (and resampled),
calibrated on 0-2 s; only false onsets are counted, outside the
weak-activity stretches {weak}; onsets inside those stretches are listed
separately.

**emg_1.txt** (the bundled demo recording, 4 clear bursts, no exact
truth): calibrated on 3-5 s (rest; the first burst at about 1.5 s is
inside the first seconds and is not detectable after a calibration there);
every detector's onsets are listed for comparison, not scored.
"""


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
- **Decision latency** = `decision_sample` - true onset (ms), over matched
  onsets, p50 and p95: how long after the burst truly began the daemon
  could act. The offline references look ahead, so they have none.
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
    hb, bo, tk = references.HodgesBui, references.Bonato, references.SolnikTKEO
    return f"""
## Offline reference detectors

Implemented in numpy from the papers' descriptions (`bench/eval/references.py`),
non-causal (zero-phase filters, forward-looking windows), their baseline
statistics from the same calibration window as rpms-detect. Common to all
three, and ours: mains (50 Hz and harmonics) is removed first with a
zero-phase comb notch; active intervals closer than
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
- **{tk.name}** (S. Solnik, P. Rider, K. Steinweg, P. DeVita, T. Hortobagyi,
  "Teager-Kaiser energy operator signal conditioning improves EMG onset
  detection", *Eur. J. Appl. Physiol.* 110:489-498, 2010): band-pass 30-300
  Hz (6th order), TKEO psi[n] = x[n]^2 - x[n-1] x[n+1], full-wave
  rectification, low-pass {tk.lowpass_hz:g} Hz (2nd order); onset where the result
  stays above the baseline mean + j SD, **j = {tk.default:g}**, for at least
  {tk.min_above_ms:g} ms.

The values of h, j and the windows are our reading of the papers; the
full texts could not be consulted while this evaluation was written, so
`figures roc.png` sweeps each threshold over a wide range (HB h
{min(hb.sweep):g}-{max(hb.sweep):g}, Bonato Pfa {min(bo.sweep):g}-{max(bo.sweep):g}, TKEO j
{min(tk.sweep):g}-{max(tk.sweep):g}) to show how much the comparison depends on them.
"""


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

"Detected at all" counts a burst that got any onset from {scoring.TOL_MS:g} ms before
its true onset to {scoring.TAIL_MS:g} ms after its end; "first onset" is the first
such onset (its latency includes onsets too far off to be matched).

{report.diagnostics(ctx)}

Clonus, spikes and hum, every detector:

{md_table(["data set", "detector", "recall", "F1", "false/min rest", "what happened"], rows)}
"""


def _sweep(ctx):
    if len(ctx["k_ons"]) < 2:
        return ""
    return f"""
## rpms-detect's onset threshold swept

`detect.k_on` from {min(ctx['k_ons'][1:]):g} to {max(ctx['k_ons'][1:]):g} (every other key at its
default; `detect.k_off` is halved only where it would not stay below
`k_on`). Columns 2-7: the injected burst sets pooled (every SNR, both
rates); "any onset": bursts that got an onset however far off its time;
then the spike sets' false onsets, the clonus trains found, the real rest
recordings' false onsets and the simulated set's recall.

{md_table(report.SWEEP_HEADER, report.sweep_rows(ctx))}
"""


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
        "example_burst": "An injected burst: raw EMG (reference onsets as triangles), the "
                         "daemon's band-passed EMG and its envelope with baseline and "
                         "thresholds; true onset dashed black, rpms-detect's back-dated "
                         "onset green, its decision red.",
        "example_sim": "The same view on the noisiest simulated trial.",
        "example_clonus": "A clonus train (the one that split, when one did).",
        "example_spike": "A spike or electrode pop in rest.",
        "roc": "Recall against false onsets per minute of rest as each detector's "
               "threshold sweeps (rpms-detect: `detect.k_on` through temporary configs; "
               "references: h, Pfa, j). Stars: the default settings; dotted lines: "
               "the 0.95 recall and 0.5 per minute targets.",
        "roc_any_onset": "The same sweep, counting a burst as found when it got any "
                         "onset (from its true onset - 50 ms to its end + 250 ms), "
                         "however far off the onset time: detection apart from timing.",
        "errors": "rpms-detect's decision latency and onset error against the onset "
                  "ramp (colour: SNR); recall by burst duration and the distribution "
                  "of the first onset's error, every detector.",
    }
    for key in ("example_burst", "example_sim", "example_clonus", "example_spike", "roc",
                "roc_any_onset", "errors"):
        if key not in figs:
            continue
        fname, title, check = figs[key]
        lines.append(f"**{title or key}.** {text[key]}")
        lines.append("")
        lines.append(f"![{key}](detection/{fname})")
        lines.append("")
    checks = [figs[k][2] for k in figs if figs[k][2]]
    if checks:
        lines.append("The envelopes in the example figures are re-computed in numpy "
                     "(`bench/eval/daemon_model.py`); its onsets against rpms-detect's on "
                     "the same recordings: " + "; ".join(checks) + ".")
    return "\n".join(lines)


def _reproduce(ctx):
    a = ctx["args"]
    return f"""
## Reproducing

    ninja -C build
    {COMMAND}

Options: `--data DIR` (shared EMG folder), `--work DIR` (generated
recordings, default `build/eval-work`), `--per-set N` (recordings per
injected set; this run: {a.per_set}), `--seed N` (this run: {a.seed}),
`--detector`, `--rpmsd`, `--quick` (what the benchmark runs: 2 recordings
per injected set, no sweep, no figures, no document), `--no-doc`, and
`--set SECTION.KEY=VALUE` (repeatable) to run rpms-detect with a changed
`[dsp]` or `[detect]` key on every set and print the tables without
touching this page, for tuning. The generator is deterministic: the same
seed gives the same recordings. The full run took {ctx.get('elapsed_s', 0):.0f} s here on 2
cores (rpms-detect is run {len(ctx['k_ons'])} times per recording for the sweep).
"""


def _limits():
    return """
## Limitations

- The injected bursts are synthetic (shaped Gaussian noise over real rest
  EMG); the rest background repeats across recordings, so the false onsets
  per minute of the injected sets are not independent samples. The real
  rest recording gives the independent figure.
- emg.txt is a single low-amplitude recording (12-bit counts, RMS about
  1.5-3 counts band-passed); quantisation is part of its noise. Outside
  its weak-activity stretches it leaves about 1.35 min of scored rest, so
  a single false onset there is already 0.74 per minute: on the real rest
  the 0.5 per minute target can only be read as "none". It has one short
  blip (band-passed RMS about twice rest for about 250 ms) near 95.8 s,
  which is counted as rest.
- The simulated set's burst ends are nominal (2 s), and its calibration
  window is much shorter than the daemon's default.
- emg_1.txt has no exact truth: its onsets are listed, not scored.
- The reference parameters are our reading of the papers (see above).
"""
