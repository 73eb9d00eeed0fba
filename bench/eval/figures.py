# SPDX-License-Identifier: MIT
"""The report's PNG figures (matplotlib, Agg backend)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import daemon_model  # noqa: E402
import detector  # noqa: E402
import references  # noqa: E402
import report  # noqa: E402
import scoring  # noqa: E402

REF_COLORS = {"HB": "tab:orange", "Bonato": "tab:purple", "TKEO": "tab:brown"}
DET_COLOR = "tab:green"


def _find_set(ctx, name):
    """The data set called name."""
    return [d for d in ctx["sets"] if d.name == name][0]


def model_check(ctx, rec):
    """Does the numpy model of the daemon give rpms-detect's onsets here?

    Returns (model events, calibration, text)."""
    det = detector.detect_settings(ctx["defaults"], rec)
    y, env = daemon_model.envelope(rec.x, rec.fs, ctx["defaults"]["dsp"])
    cal, events = daemon_model.detect(env, rec.fs, det)
    m = [(s, d) for kind, s, d in events if kind == "onset"]
    ons, dec = ctx["det_out"][(rec.path, None)]
    r = list(zip(ons, dec))
    same = sum(1 for a, b in zip(m, r) if a == b)
    close = (len(m) == len(r) and all(abs(a[0] - b[0]) <= 2 and abs(a[1] - b[1]) <= 2
                                      for a, b in zip(m, r)))
    text = "%s: model %d onsets, rpms-detect %d, %d identical%s" % (
        rec.name, len(m), len(r), same, "" if close else " (the model differs: the "
        "figure's envelope may not be exactly the daemon's)")
    return (y, env, cal, events), text


def plot_example(ctx, rec, center, title, path, span=(-0.6, 1.2)):
    """Raw EMG, the daemon's filtered EMG and envelope with its thresholds,
    the true onset, rpms-detect's onset and decision, and the references'
    onsets, around sample `center`."""
    (y, env, cal, _), text = model_check(ctx, rec)
    fs = rec.fs
    a = max(0, center + int(span[0] * fs))
    b = min(len(rec.x), center + int(span[1] * fs))
    t = np.arange(a, b) / fs
    fig, ax = plt.subplots(3, 1, sharex=True, figsize=(9.5, 7.2))
    ax[0].plot(t, rec.x[a:b], lw=0.6, color="0.3")
    ax[0].set_ylabel("raw (file units)")
    ax[1].plot(t, y[a:b], lw=0.6, color="tab:blue")
    ax[1].set_ylabel("band-passed\n(daemon chain)")
    ax[2].plot(t, env[a:b], lw=1.2, color="tab:blue", label="envelope (moving RMS)")
    for val, lab, style in ((cal["baseline"], "baseline (median)", ":"),
                            (cal["thr_on"], "onset threshold (k_on)", "--"),
                            (cal["thr_off"], "offset threshold (k_off)", "-.")):
        ax[2].axhline(val, color="0.4", ls=style, lw=1, label=lab)
    ax[2].set_ylabel("envelope")
    ax[2].set_xlabel("time in the recording (s)")
    _mark_events(ctx, ax, rec, a, b)
    ax[2].legend(loc="upper right", fontsize=7, ncol=2)
    ax[0].legend(loc="upper right", fontsize=7, ncol=3)
    ax[0].set_title(title, fontsize=10)
    fig.text(0.01, 0.005, "Envelope, baseline and thresholds re-computed in numpy from the "
             "daemon's settings; %s." % text, fontsize=6.5)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return text


def _mark_events(ctx, ax, rec, a, b):
    """Vertical lines: truth, rpms-detect onset/decision, reference onsets."""
    fs = rec.fs
    first = {"truth": True, "spike": True, "on": True, "dec": True}
    for e in rec.events:
        s = e["onset_sample"]
        if a <= s < b:
            kind = "spike" if e["kind"] == "spike" else "truth"
            for x in ax:
                x.axvline(s / fs, color="k" if kind == "truth" else "m",
                          ls="--" if kind == "truth" else ":", lw=1.2,
                          label=("true onset" if kind == "truth" else "injected spike")
                          if (x is ax[0] and first[kind]) else None)
            first[kind] = False
    ons, dec = ctx["det_out"][(rec.path, None)]
    for o, d in zip(ons, dec):
        for s, key, color, lab in ((o, "on", DET_COLOR, "rpms-detect onset (back-dated)"),
                                   (d, "dec", "tab:red", "rpms-detect decision")):
            if a <= s < b:
                for x in ax:
                    x.axvline(s / fs, color=color, lw=1.3,
                              label=lab if (x is ax[0] and first[key]) else None)
                first[key] = False
    top = ax[0].get_ylim()[1]
    for cls in references.REFERENCES:
        ons = ctx["ref_out"][(cls.short, rec.path, cls.default)]
        sel = [o / fs for o in ons if a <= o < b]
        if sel:
            ax[0].plot(sel, [top] * len(sel), "v", color=REF_COLORS[cls.short], ms=8,
                       label="%s onset" % cls.short)


def _pick_burst(rec_list, scores, want):
    """First (recording, truth) for which want(truth) holds."""
    for rec, sc in zip(rec_list, scores):
        for t in sc.truths:
            if want(t):
                return rec, t
    return rec_list[0], scores[0].truths[0] if scores[0].truths else None


def examples(ctx, out):
    """The example figures; returns {name: (file, caption, model check)}."""
    det = ctx["det"]
    figs = {}
    ds = _find_set(ctx, "inj-1k-snr10-14")
    scores = report.at_default(ctx, ds.name, det)[1]
    rec, t = _pick_burst(ds.recordings, scores,
                         lambda t: 60 <= float(t["ramp_ms"]) <= 120 and t["n_onsets"] > 0)
    figs["example_burst"] = _example(ctx, out, "example_burst.png", rec, t["onset_sample"],
                                     "Injected burst, %s/%s: SNR %.1f dB, ramp %.0f ms, %.0f ms long"
                                     % (ds.name, rec.name, float(t["snr_db"]),
                                        float(t["ramp_ms"]), float(t["duration_ms"])))
    ds = _find_set(ctx, "sim")
    rec = ds.recordings[0]
    t = [e for e in rec.events if e["scored"]][1]
    figs["example_sim"] = _example(ctx, out, "example_sim.png", rec, t["onset_sample"],
                                   "Simulated set, %s (the noisiest trial), burst 2" % rec.name)
    ds = _find_set(ctx, "inj-1k-clonus")
    scores = report.at_default(ctx, ds.name, det)[1]
    rec, t = _pick_burst(ds.recordings, scores, lambda t: t["n_onsets"] > 1)
    if t is None:
        rec, t = ds.recordings[0], ds.recordings[0].events[0]
    figs["example_clonus"] = _example(ctx, out, "example_clonus.png", rec, t["onset_sample"],
                                      "Clonus train, %s/%s (%s onsets from rpms-detect)"
                                      % (ds.name, rec.name, t.get("n_onsets", "?")),
                                      span=(-0.6, float(t["duration_ms"]) / 1000 + 0.6))
    figs["example_spike"] = _spike_example(ctx, out)
    return figs


def _example(ctx, out, fname, rec, center, title, span=(-0.6, 1.2)):
    """One example figure; returns (file, title, model check)."""
    text = plot_example(ctx, rec, center, title, os.path.join(out, fname), span)
    return fname, title, text


def _spike_example(ctx, out):
    """A spike that gave rpms-detect a false onset, else the largest spike."""
    ds = _find_set(ctx, "inj-1k-spikes")
    best = None
    for rec in ds.recordings:
        ons, _ = ctx["det_out"][(rec.path, None)]
        for e in rec.events:
            if e["kind"] != "spike":
                continue
            hit = any(0 <= o - e["onset_sample"] + 0.05 * rec.fs < 0.35 * rec.fs for o in ons)
            key = (hit, e["amplitude"])
            if best is None or key > best[0]:
                best = (key, rec, e)
    (hit, _), rec, e = best
    title = "Spike (%s, peak %.0f dB over rest RMS) in %s/%s: %s" % (
        e.get("shape", "?"), float(e["snr_db"]), ds.name, rec.name,
        "rpms-detect made a false onset" if hit else "no false onset from rpms-detect")
    return _example(ctx, out, "example_spike.png", rec, e["onset_sample"], title,
                    span=(-0.4, 0.6))


ROC_PANELS = (
    ("simulated set", lambda n: n == "sim"),
    ("injected bursts, SNR 6-20 dB (1+2 kHz)", lambda n: n.startswith("inj") and "snr" in n),
    ("injected bursts + spikes/pops", lambda n: n.startswith("inj") and "spikes" in n),
    ("injected clonus trains", lambda n: n.startswith("inj") and "clonus" in n),
    ("injected bursts + mains hum", lambda n: n.startswith("inj") and "mains" in n),
)


def roc(ctx, out, metric="recall"):
    """Recall (or the share of bursts with any onset, metric="hit") vs
    false onsets per minute of rest as each threshold sweeps."""
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    axes = axes.ravel()
    names = [d.name for d in report.truth_sets(ctx)]
    for ax, (title, pick) in zip(axes, ROC_PANELS):
        sel = [n for n in names if pick(n)]
        for name in report.detectors(ctx):
            levels = sorted(ctx["res"][sel[0]][name], key=lambda v: -1 if v is None else v)
            pts = []
            for lv in levels:
                s = report.pooled(ctx, sel, name, lv)[0]
                shown = lv if lv is not None else float(ctx["defaults"]["detect"]["k_on"])
                y = s["recall"] if metric == "recall" else s["hit"] / s["n"]
                pts.append((s["fa_per_min"], y, shown, lv == report.default_level(name)))
            pts = sorted(set((p[0], p[1], p[2], p[3]) for p in pts), key=lambda p: p[2])
            color = DET_COLOR if name == ctx["det"] else REF_COLORS[name]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", ms=3, color=color,
                    label=_curve_label(ctx, name))
            for p in pts:
                if p[3]:
                    ax.plot(p[0], p[1], "*", ms=14, color=color, mec="k")
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlim(left=0)
        ax.set_ylim(-0.02, 1.02)
        ax.axvline(0.5, color="0.6", ls=":", lw=1)
        ax.axhline(0.95, color="0.6", ls=":", lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("false onsets per minute of rest")
        ax.set_ylabel("recall (onset within +/-50 ms)" if metric == "recall"
                      else "bursts with any onset")
        ax.grid(alpha=0.3)
    axes[-1].axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].legend(handles, labels, loc="center", fontsize=8, title="star = default setting")
    fig.tight_layout()
    fname = "roc.png" if metric == "recall" else "roc_any_onset.png"
    fig.savefig(os.path.join(out, fname), dpi=110)
    plt.close(fig)
    return fname


def _curve_label(ctx, name):
    """Legend text: detector and what is swept."""
    if name == ctx["det"]:
        return "rpms-detect, detect.k_on %s" % ", ".join(
            "%g" % k for k in (ctx["k_ons"][1], ctx["k_ons"][-1]))
    cls = [c for c in references.REFERENCES if c.short == name][0]
    return "%s, %s %g-%g" % (cls.name, cls.level_name, min(cls.sweep), max(cls.sweep))


def errors(ctx, out):
    """Latency and onset error vs ramp, recall vs duration, error histogram."""
    det = ctx["det"]
    plain = [d.name for d in report.truth_sets(ctx)
             if d.name.startswith("inj") and any(k in d.name for k in ("snr", "spikes", "mains"))]
    fig, ax = plt.subplots(2, 2, figsize=(12, 8.5))
    tr = [t for n in plain for sc in report.at_default(ctx, n, det)[1] for t in sc.truths]
    hit = [t for t in tr if t["first_lat_ms"] is not None]
    ramp = np.array([float(t["ramp_ms"]) for t in hit])
    snr = np.array([float(t["snr_db"]) for t in hit])
    sc = ax[0, 0].scatter(ramp, [t["first_lat_ms"] for t in hit], c=snr, s=10, cmap="viridis")
    fig.colorbar(sc, ax=ax[0, 0], label="SNR (dB)")
    for v in (30, 50):
        ax[0, 0].axhline(v, color="r", ls=":", lw=1)
    ax[0, 0].set_xlabel("onset ramp (ms)")
    ax[0, 0].set_ylabel("decision latency of the first onset (ms)")
    ax[0, 0].set_title("rpms-detect: decision - true onset (targets 30/50 ms dotted)", fontsize=9)
    ax[0, 1].scatter(ramp, [t["first_err_ms"] for t in hit], c=snr, s=10, cmap="viridis")
    ax[0, 1].axhspan(-scoring.TOL_MS, scoring.TOL_MS, color="g", alpha=0.08)
    for v in (-15, 15):
        ax[0, 1].axhline(v, color="r", ls=":", lw=1)
    ax[0, 1].set_xlabel("onset ramp (ms)")
    ax[0, 1].set_ylabel("back-dated onset - true onset (ms)")
    ax[0, 1].set_title("rpms-detect: onset error of the first onset (band = match window)",
                       fontsize=9)
    _recall_by_duration(ctx, ax[1, 0], plain)
    _error_hist(ctx, ax[1, 1], plain)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "errors.png"), dpi=110)
    plt.close(fig)
    return "errors.png"


def _recall_by_duration(ctx, ax, sets):
    """Grouped bars: recall per burst-duration bin, every detector."""
    edges = [150, 300, 600, 1200, 2001]
    names = report.detectors(ctx)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        tr = [t for n in sets for sc in report.at_default(ctx, n, name)[1] for t in sc.truths]
        vals = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = [t for t in tr if lo <= float(t["duration_ms"]) < hi]
            vals.append(sum(t["matched"] for t in sel) / len(sel) if sel else 0)
        color = DET_COLOR if name == ctx["det"] else REF_COLORS[name]
        ax.bar(np.arange(len(vals)) + i * width, vals, width, color=color, label=name)
    ax.set_xticks(np.arange(len(edges) - 1) + 0.4 - width / 2)
    ax.set_xticklabels(["%d-%d ms" % (a, b) for a, b in zip(edges[:-1], edges[1:])])
    ax.set_ylabel("recall (onset within +/-50 ms)")
    ax.set_title("Recall by burst duration (injected bursts)", fontsize=9)
    ax.axhline(0.95, color="0.6", ls=":", lw=1)
    ax.legend(fontsize=8)


def _error_hist(ctx, ax, sets):
    """Histogram of the first onset's error, every detector."""
    bins = np.arange(-150, 301, 10)
    for name in report.detectors(ctx):
        tr = [t for n in sets for sc in report.at_default(ctx, n, name)[1] for t in sc.truths]
        errs = np.clip([t["first_err_ms"] for t in tr if t["first_err_ms"] is not None],
                       bins[0], bins[-1] - 1)
        color = DET_COLOR if name == ctx["det"] else REF_COLORS[name]
        ax.hist(errs, bins=bins, histtype="step", lw=1.5, color=color, label=name)
    ax.axvspan(-scoring.TOL_MS, scoring.TOL_MS, color="g", alpha=0.08)
    ax.set_xlabel("first onset in the burst - true onset (ms; clipped to the axis)")
    ax.set_ylabel("bursts")
    ax.set_title("Onset error of the first onset per burst (injected bursts)", fontsize=9)
    ax.legend(fontsize=8)


def make_all(ctx):
    """Write every figure; returns what the document needs about them."""
    out = ctx["args"].figures
    figs = examples(ctx, out)
    figs["roc"] = (roc(ctx, out), "", "")
    figs["roc_any_onset"] = (roc(ctx, out, "hit"), "", "")
    figs["errors"] = (errors(ctx, out), "", "")
    return figs
