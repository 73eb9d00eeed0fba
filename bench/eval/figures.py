# SPDX-License-Identifier: MIT
"""The report's PNG figures (matplotlib, Agg backend)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

import references  # noqa: E402
import report  # noqa: E402
import scoring  # noqa: E402

REF_COLORS = {"HB": "tab:orange", "Bonato": "tab:purple", "TKEO": "tab:brown",
              "Naive": "tab:gray"}
DET_COLOR = "tab:green"


def _find_set(ctx, name):
    """The data set called name."""
    return [d for d in ctx["sets"] if d.name == name][0]


ENV_COLOR = "tab:blue"
SUS_COLOR = "navy"


def plot_example(ctx, rec, center, title, path, span=(-0.6, 1.2), zoom=None):
    """What the daemon's detector saw around sample `center`, from
    rpms-detect's --trace: raw input, filtered EMG, 5 ms envelope,
    sustained envelope and thresholds; the true onset, rpms-detect's
    back-dated onset and its decision, and the references' onsets. The
    bottom panel repeats the envelope panel over `zoom` (s, relative to
    center; default: around the onset and its decision)."""
    tr = report.trace_of(ctx, rec)
    fs = rec.fs
    a = max(0, center + int(span[0] * fs))
    b = min(len(tr["raw"]), center + int(span[1] * fs))
    t = np.arange(a, b) / fs
    if zoom is None:
        decs = [d for d in tr["decisions"] if center - 0.05 * fs <= d < center + 0.5 * fs]
        last = max(decs[:1] + [center]) / fs
        zoom = (center / fs - 0.15, max(last + 0.1, center / fs + 0.25))
    else:
        zoom = (center / fs + zoom[0], center / fs + zoom[1])
    fig = plt.figure(figsize=(10, 10))
    gs = fig.add_gridspec(4, 1, height_ratios=[1, 1, 1.5, 1.5], hspace=0.32)
    ax = [fig.add_subplot(gs[0])]
    ax += [fig.add_subplot(gs[i], sharex=ax[0]) for i in (1, 2)]
    axz = fig.add_subplot(gs[3])
    ax[0].plot(t, tr["raw"][a:b], lw=0.6, color="0.3")
    ax[0].set_ylabel("raw input\n(file units)")
    ax[1].plot(t, tr["filtered"][a:b], lw=0.6, color=ENV_COLOR)
    ax[1].set_ylabel("filtered EMG\n(after limiter,\nband-pass, notches)")
    for x, lo, hi, lw in ((ax[2], a, b, 0.8), (axz, int(zoom[0] * fs), int(zoom[1] * fs), 1.4)):
        lo, hi = max(lo, 0), min(hi, len(tr["raw"]))
        tt = np.arange(lo, hi) / fs
        x.plot(tt, tr["envelope"][lo:hi], lw=0.7, color=ENV_COLOR, alpha=0.55,
               label="envelope (%s ms %s)" % (ctx["defaults"]["dsp"]["envelope_ms"],
                                              ctx["defaults"]["dsp"]["envelope"].upper()))
        x.plot(tt, tr["sustained"][lo:hi], lw=lw, color=SUS_COLOR,
               label="sustained envelope (min over %s ms)"
               % ctx["defaults"]["detect"]["sustain_ms"])
        x.plot(tt, tr["on_threshold"][lo:hi], "--", lw=1.1, color="tab:red",
               label="onset threshold (k_on %s)" % ctx["defaults"]["detect"]["k_on"])
        x.plot(tt, tr["off_threshold"][lo:hi], "-.", lw=1.1, color="tab:orange",
               label="offset threshold (k_off %s)" % ctx["defaults"]["detect"]["k_off"])
        x.set_yscale("log")
        x.set_ylabel("envelope\n(file units, log)")
        x.grid(alpha=0.25, which="both", axis="y")
        _envelope_ylim(x, tr, lo, hi)
    axz.set_xlim(zoom)
    axz.set_title("zoom: %.3f-%.3f s" % zoom, fontsize=8, loc="left")
    ax[2].set_xlim(t[0], t[-1])
    axz.set_xlabel("time in the recording (s)")
    for x in ax[:2]:
        plt.setp(x.get_xticklabels(), visible=False)
    if a <= rec.cal_end < b:
        for x in ax + [axz]:
            x.axvline(rec.cal_end / fs, color="0.5", lw=2.5, alpha=0.35,
                      label="end of calibration" if x is ax[0] else None)
    _mark_events(ctx, ax + [axz], rec, tr, a, b)
    ax[0].set_title(title, fontsize=10, pad=14)
    h, lab = [], []
    for x in (ax[2], ax[0]):
        for hh, ll in zip(*x.get_legend_handles_labels()):
            if ll not in lab:
                h.append(hh)
                lab.append(ll)
    fig.legend(h, lab, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.11, right=0.98, top=0.95, bottom=0.13)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _envelope_ylim(ax, tr, lo, hi):
    """Log axis from a little under the rest envelope to over the peak."""
    env = tr["envelope"][lo:hi]
    pos = env[env > 0]
    if not len(pos):
        return
    floor = np.nanmin(tr["off_threshold"][lo:hi]) if np.any(
        np.isfinite(tr["off_threshold"][lo:hi])) else np.percentile(pos, 50)
    ax.set_ylim(max(np.percentile(pos, 1), floor / 8.0) * 0.8, np.max(pos) * 1.5)


def _mark_events(ctx, ax, rec, tr, a, b):
    """Vertical lines: truth, rpms-detect onset/decision; reference onsets
    as triangles over the raw panel."""
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
    for o, d in zip(tr["onsets"], tr["decisions"]):
        for s, key, color, lab in ((o, "on", DET_COLOR, "rpms-detect onset (back-dated)"),
                                   (d, "dec", "tab:red", "rpms-detect decision")):
            if a <= s < b:
                for x in ax:
                    x.axvline(s / fs, color=color, lw=1.3,
                              label=lab if (x is ax[0] and first[key]) else None)
                first[key] = False
    lo, hi = ax[0].get_ylim()
    top = hi + 0.04 * (hi - lo)
    for cls in references.REFERENCES:
        ons = ctx["ref_out"][(cls.short, rec.path, cls.default)]
        sel = [o / fs for o in ons if a <= o < b]
        if sel:
            ax[0].plot(sel, [top] * len(sel), "v", color=REF_COLORS[cls.short], ms=8,
                       clip_on=False, label="%s onset (offline reference)" % cls.short)
    ax[0].set_ylim(lo, hi)


def _pick_burst(rec_list, scores, want):
    """First (recording, truth) for which want(truth) holds."""
    for rec, sc in zip(rec_list, scores):
        for t in sc.truths:
            if want(t):
                return rec, t
    return rec_list[0], scores[0].truths[0] if scores[0].truths else None


def examples(ctx, out):
    """The example figures; returns {name: (file, title)}."""
    det = ctx["det"]
    figs = {}
    ds = _find_set(ctx, "inj-1k-snr10-14")
    scores = report.at_default(ctx, ds.name, det)[1]
    rec, t = _pick_burst(ds.recordings, scores,
                         lambda t: 60 <= float(t["ramp_ms"]) <= 120 and t["n_onsets"] > 0)
    figs["example_burst"] = _example(ctx, out, "example_burst.png", rec, t["onset_sample"],
                                     "Injected burst, %s/%s: SNR %.1f dB, ramp %.0f ms, "
                                     "%.0f ms long" % (ds.name, rec.name, float(t["snr_db"]),
                                                       float(t["ramp_ms"]),
                                                       float(t["duration_ms"])))
    ds = _find_set(ctx, "sim")
    rec = ds.recordings[0]
    t = [e for e in rec.events if e["scored"]][1]
    figs["example_sim"] = _example(ctx, out, "example_sim.png", rec, t["onset_sample"],
                                   "Simulated set, %s (the noisiest trial), burst 2" % rec.name)
    figs["example_clonus"] = _clonus_example(ctx, out)
    figs["example_mains"] = _mains_example(ctx, out)
    early = _early_example(ctx, out)
    if early:
        figs["example_early"] = early
    figs["example_spike"] = _spike_example(ctx, out)
    hum = _hum_example(ctx, out)
    if hum:
        figs["example_hum"] = hum
    return figs


def _hum_example(ctx, out):
    """The 1 kHz hum recording with the most false onsets at rest (else
    the one with the lowest F1), around its first false onset (else its
    first missed burst)."""
    best = None
    for ds in report.truth_sets(ctx):
        if "-hum" not in ds.name or not ds.name.startswith("inj-1k"):
            continue
        for rec, sc in zip(ds.recordings, report.at_default(ctx, ds.name, ctx["det"])[1]):
            missed = sum(1 for t in sc.truths if not t["matched"])
            key = (sc.fp_rest, missed)
            if best is None or key > best[0]:
                best = (key, ds, rec, sc)
    if best is None:
        return None
    (fp, missed), ds, rec, sc = best
    false = [d for r, o, d in report.rest_false_onsets(ctx, ds) if r is rec]
    if false:
        center, what = false[0], "its first false onset at rest"
    else:
        miss = [t for t in sc.truths if not t["matched"]]
        center = (miss or sc.truths)[0]["onset_sample"]
        what = "its first missed burst" if miss else "its first burst"
    h = rec.meta.get("hum", {})
    title = ("Hum %gx rest (%s, %g-%g Hz), %s/%s:\n%d false onsets at rest, %d bursts missed; "
             "around %s" % (h.get("level_x_rest", 0), h.get("kind", "?"), h.get("min_hz", 0),
                            h.get("max_hz", 0), ds.name, rec.name, fp, missed, what))
    return _example(ctx, out, "example_hum.png", rec, int(center), title,
                    span=(-0.8, 0.8), zoom=(-0.35, 0.1))


def _example(ctx, out, fname, rec, center, title, span=(-0.6, 1.2), zoom=None):
    """One example figure; returns (file, title)."""
    plot_example(ctx, rec, center, title, os.path.join(out, fname), span, zoom)
    return fname, title


def _clonus_example(ctx, out):
    """A clonus train that rpms-detect split, else the first train; the
    zoom is on the second onset of a split train."""
    ds = _find_set(ctx, "inj-1k-clonus")
    scores = report.at_default(ctx, ds.name, ctx["det"])[1]
    rec, t = _pick_burst(ds.recordings, scores, lambda t: t["n_onsets"] > 1)
    if t is None:
        rec, t = ds.recordings[0], ds.recordings[0].events[0]
    zoom = None
    if t.get("n_onsets", 0) > 1:
        tr = report.trace_of(ctx, rec)
        tol = scoring.TOL_MS * rec.fs / 1000.0
        inside = [(o, d) for o, d in zip(tr["onsets"], tr["decisions"])
                  if t["onset_sample"] - tol <= d <= t["end_sample"]]
        if len(inside) > 1:
            o, d = inside[1]
            zoom = ((o - t["onset_sample"]) / rec.fs - 0.35,
                    (d - t["onset_sample"]) / rec.fs + 0.12)
    title = "Clonus train, %s/%s: %.0f ms, %s onset(s) from rpms-detect" % (
        ds.name, rec.name, float(t["duration_ms"]), t.get("n_onsets", "?"))
    return _example(ctx, out, "example_clonus.png", rec, t["onset_sample"], title,
                    span=(-0.6, float(t["duration_ms"]) / 1000 + 0.6), zoom=zoom)


def _early_example(ctx, out):
    """The injected burst whose first decided onset was dated furthest
    before its true onset (beyond the match window), or None."""
    worst = None
    for ds in report.truth_sets(ctx):
        if not ds.name.startswith("inj"):
            continue
        for rec, sc in zip(ds.recordings, report.at_default(ctx, ds.name, ctx["det"])[1]):
            for t in sc.truths:
                err = t["first_err_ms"]
                if err is not None and err < -scoring.TOL_MS and (
                        worst is None or err < worst[0]):
                    worst = (err, ds, rec, t)
    if worst is None:
        return None
    err, ds, rec, t = worst
    lat = t["first_lat_ms"] / 1000.0
    title = ("Onset dated %.0f ms early, %s/%s: SNR %.1f dB, ramp %.0f ms; decided %.0f ms "
             "after the true onset" % (-err, ds.name, rec.name, float(t["snr_db"]),
                                       float(t["ramp_ms"]), t["first_lat_ms"]))
    return _example(ctx, out, "example_early.png", rec, t["onset_sample"], title,
                    span=(min(-0.8, err / 1000.0 - 0.3), max(0.6, lat + 0.3)),
                    zoom=(err / 1000.0 - 0.08, lat + 0.06))


def _mains_example(ctx, out):
    """The recording with the loudest hum: the end of calibration (when the
    limiter starts) and the first burst after it."""
    ds = _find_set(ctx, "inj-1k-mains")
    rec = max(ds.recordings, key=lambda r: r.meta.get("hum_db_over_rest", 0))
    bursts = [e for e in rec.events if e["kind"] == "burst" and e["onset_sample"] > rec.cal_end]
    stop = ((bursts[0]["onset_sample"] - rec.cal_end) / rec.fs + 0.6) if bursts else 1.5
    title = "Mains hum %.1f dB over the rest RMS, %s/%s: end of calibration and first burst" % (
        rec.meta.get("hum_db_over_rest", 0), ds.name, rec.name)
    return _example(ctx, out, "example_mains.png", rec, rec.cal_end, title,
                    span=(-0.4, min(stop, 3.0)), zoom=(-0.1, 0.25))


SPIKE_OWN_MS = 100.0    # what a spike itself does shows within this


def _spike_example(ctx, out):
    """The spike after which the sustained envelope came closest to the
    onset threshold within SPIKE_OWN_MS (the limiter and the filters'
    ringing act within that), from rpms-detect's trace."""
    ds = _find_set(ctx, "inj-1k-spikes")
    best = None
    for rec in ds.recordings:
        tr = report.trace_of(ctx, rec)
        n = int(SPIKE_OWN_MS * rec.fs / 1000.0)
        for e in rec.events:
            if e["kind"] != "spike":
                continue
            sl = slice(e["onset_sample"], e["onset_sample"] + n)
            ratio = float(np.max(tr["sustained"][sl] / tr["on_threshold"][sl]))
            if best is None or ratio > best[0]:
                best = (ratio, rec, e)
    ratio, rec, e = best
    title = ("Spike (%s, peak %.0f dB over rest RMS) in %s/%s: the closest any spike's "
             "sustained envelope came\nto the onset threshold within %.0f ms: %.2f x it" % (
                 e.get("shape", "?"), float(e["snr_db"]), ds.name, rec.name, SPIKE_OWN_MS,
                 ratio))
    return _example(ctx, out, "example_spike.png", rec, e["onset_sample"], title,
                    span=(-0.4, 0.6), zoom=(-0.03, 0.33))


ROC_PANELS = (
    ("simulated set", lambda n: n == "sim"),
    ("injected bursts, SNR 6-20 dB (1+2 kHz)", lambda n: n.startswith("inj") and "snr" in n),
    ("injected bursts + spikes/pops", lambda n: n.startswith("inj") and "spikes" in n),
    ("injected clonus trains", lambda n: n.startswith("inj") and "clonus" in n),
    ("injected bursts + mains hum", lambda n: n.startswith("inj") and "mains" in n),
    ("hum sets: bursts + 3 ms pops under 1/3/10x hum", lambda n: "-hum" in n),
)


def roc(ctx, out, metric="recall"):
    """Recall (or the share of bursts with any onset, metric="hit") vs
    false onsets per minute of rest as each threshold sweeps."""
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    axes = axes.ravel()
    names = [d.name for d in report.truth_sets(ctx)]
    for ax, (title, pick) in zip(axes, ROC_PANELS):
        sel = [n for n in names if pick(n)]
        if not sel:
            ax.axis("off")
            continue
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
        ax.set_xlim(left=-0.012)
        ax.set_ylim(-0.02, 1.02)
        ax.axvline(0.5, color="0.6", ls=":", lw=1)
        ax.axhline(0.95, color="0.6", ls=":", lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("false onsets per minute of rest")
        ax.set_ylabel("recall (onset within +/-50 ms)" if metric == "recall"
                      else "bursts with any onset")
        ax.grid(alpha=0.3)
    for ax in axes[len(ROC_PANELS):]:
        ax.axis("off")
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
        ks = [k for k in ctx["k_ons"] if k is not None]
        return "rpms-detect, detect.k_on %g-%g" % (min(ks), max(ks))
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
    ax[0, 0].set_yscale("log")
    ax[0, 0].set_xlabel("onset ramp (ms)")
    ax[0, 0].set_ylabel("decision latency of the first onset (ms, log)")
    ax[0, 0].set_title("rpms-detect: decision - true onset (targets 30/50 ms dotted)", fontsize=9)
    ax[0, 1].scatter(ramp, [t["first_err_ms"] for t in hit], c=snr, s=10, cmap="viridis")
    ax[0, 1].axhspan(-scoring.TOL_MS, scoring.TOL_MS, color="g", alpha=0.08)
    for v in (-15, 15):
        ax[0, 1].axhline(v, color="r", ls=":", lw=1)
    ax[0, 1].set_yscale("symlog", linthresh=scoring.TOL_MS)
    ticks = [-500, -200, -100, -50, -15, 0, 15, 50, 100, 200, 500, 1000]
    ax[0, 1].set_yticks(ticks)
    ax[0, 1].set_yticklabels([str(v) for v in ticks])
    ax[0, 1].yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    errs = [t["first_err_ms"] for t in hit]
    ax[0, 1].set_ylim(min(-120, 1.3 * min(errs)), max(150, 1.3 * max(errs)))
    ax[0, 1].set_xlabel("onset ramp (ms)")
    ax[0, 1].set_ylabel("back-dated onset - true onset\n(ms; linear within +/-%g, log beyond)"
                        % scoring.TOL_MS)
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
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.legend(fontsize=8, ncol=len(names), loc="upper center")


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


def tradeoff(ctx, out):
    """The targets that trade against each other, over the k_on sweep:
    excess latency against false onsets, F1 (>= 10 dB sets, hum by level,
    6-10 dB against the references) and false onsets per group."""
    pts = report.sweep_points(ctx)
    ks = [k for k, _, _ in pts]
    k0 = [k for k, d, _ in pts if d][0]
    fig, ax = plt.subplots(2, 2, figsize=(12, 9))
    a = ax[0, 0]
    sus = report.sustain_points(ctx)
    for sweep, name, color in ((pts, "k_on", DET_COLOR), (sus, "sustain_ms", "tab:blue")):
        if not sweep:
            continue
        fa = [g["nohum"]["fa_per_min"] for _, _, g in sweep]
        for key, style in (("exc_p50", "-o"), ("exc_p95", "--s")):
            a.plot(fa, [g["nohum"][key] for _, _, g in sweep], style, ms=4, color=color,
                   label="%s swept: excess latency %s" % (name, key[-3:]))
        for v, d, g in sweep:
            if g["nohum"]["exc_p50"] is None:
                continue    # no onset at all at this setting: nothing to label
            a.annotate("%g%s" % (v, "*" if d else ""), (g["nohum"]["fa_per_min"],
                                                        g["nohum"]["exc_p50"]),
                       fontsize=7, color=color, xytext=(2, -9), textcoords="offset points")
    for lim in (report.EXC_P50_MS, report.EXC_P95_MS):
        a.axhline(lim, color="0.4", ls=":", lw=1)
    a.axvline(report.FA_MAX, color="r", ls=":", lw=1, label="0.5 false onsets/min")
    a.set_xscale("symlog", linthresh=0.1)
    a.set_yscale("symlog", linthresh=10)
    a.set_ylim(bottom=0)
    a.set_xlim(left=-0.02)
    a.set_xlabel("false onsets per minute of rest (bursts, clonus, spikes, mains pooled)")
    a.set_ylabel("excess decision latency (ms; log above 10)")
    a.set_title("Latency against false onsets (labels: k_on or sustain_ms, * default; "
                "targets 10/25 ms dotted)", fontsize=9)
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    a = ax[0, 1]
    if pts[0][2].get("high"):
        a.plot(ks, [g["high"]["f1"] for _, _, g in pts], "-o", ms=3, color="k",
               label="every >= 10 dB set pooled")
    hum = report.sweep_groups(ctx)["hum"]
    for lv, color in zip(datasets_levels(), ("tab:blue", "tab:orange", "tab:red")):
        sel = [n for n in hum if "-x%g-" % lv in n]
        if sel:
            a.plot(ks, [report.pooled(ctx, sel, ctx["det"], None if d else k)[0]["f1"]
                        for k, d, _ in pts], "-o", ms=3, color=color,
                   label="hum %gx rest (pooled)" % lv)
    a.axhline(report.F1_MIN, color="0.5", ls=":", lw=1)
    a.axvline(k0, color="0.7", lw=4, alpha=0.4)
    a.set_xscale("log")
    a.set_xlabel("detect.k_on (grey band: default)")
    a.set_ylabel("F1")
    a.set_ylim(0, 1.02)
    a.set_title("F1 against the onset threshold (target 0.95 dotted)", fontsize=9)
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    a = ax[1, 0]
    low = report.sweep_groups(ctx)["low"]
    if low:
        a.plot(ks, [g["low"]["f1"] for _, _, g in pts], "-o", ms=3, color=DET_COLOR,
               label="rpms-detect")
        for cls in references.REFERENCES:
            f = report.pooled(ctx, low, cls.short)[0]["f1"]
            a.axhline(f, color=REF_COLORS[cls.short], ls="--", lw=1.2,
                      label="%s at its default (%.3f)" % (cls.short, f))
    a.axvline(k0, color="0.7", lw=4, alpha=0.4)
    a.set_xscale("log")
    a.set_xlabel("detect.k_on")
    a.set_ylabel("F1, 6-10 dB sets pooled")
    a.set_title("The 6-10 dB sets: rpms-detect against the references", fontsize=9)
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    a = ax[1, 1]
    for key, label, color in (("bursts", "injected bursts", DET_COLOR),
                              ("spikes", "bursts + spikes/pops", "tab:purple"),
                              ("hum", "hum sets (pops under hum)", "tab:red"),
                              ("rest", "real rest recording", "k")):
        if pts[0][2].get(key):
            a.plot(ks, [g[key]["fa_per_min"] for _, _, g in pts], "-o", ms=3, color=color,
                   label=label)
    a.axhline(report.FA_MAX, color="r", ls=":", lw=1)
    a.axvline(k0, color="0.7", lw=4, alpha=0.4)
    a.set_xscale("log")
    a.set_yscale("symlog", linthresh=0.1)
    a.set_ylim(bottom=-0.01)
    a.set_xlabel("detect.k_on")
    a.set_ylabel("false onsets per minute of rest")
    a.set_title("False onsets against the onset threshold (target 0.5 dotted)", fontsize=9)
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "tradeoff.png"), dpi=110)
    plt.close(fig)
    return "tradeoff.png"


def rules_fig(ctx, out):
    """Both onset rules over their thresholds: excess latency (the traced
    sets pooled) against false onsets with pops and on the real rest, with
    the targets and the bound (bound.py)."""
    import rules
    pts = rules.rule_points(ctx)
    if not pts:
        return None
    pooled = rules.bound_pooled(ctx)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for a, group, xlabel in ((axes[0], "pops", "false onsets per minute of rest, spike and "
                              "hum sets pooled (pops)"),
                             (axes[1], "rest", "false onsets per minute, real rest")):
        for rule, color in (("sustained", DET_COLOR), ("cusum", "tab:blue")):
            sel = [(label, d, g) for r, label, d, g, _ in pts if r == rule
                   and g.get(group) and g[group]["fa_per_min"] is not None
                   and g["traced"]["exc_p50"] is not None]
            if not sel:
                continue
            fa = [g[group]["fa_per_min"] for _, _, g in sel]
            for key, style in (("exc_p50", "-o"), ("exc_p95", "--s")):
                a.plot(fa, [g["traced"][key] for _, _, g in sel], style, ms=4, color=color,
                       label="%s: excess %s" % (rule, key[-3:]))
            for label, d, g in sel:
                a.annotate(label.split()[-1] + ("*" if d else ""),
                           (g[group]["fa_per_min"], g["traced"]["exc_p50"]), fontsize=7,
                           color=color, xytext=(2, -9), textcoords="offset points")
        a.axhline(report.EXC_P50_MS, color="k", ls=":", lw=1, label="target p50")
        a.axhline(report.EXC_P95_MS, color="k", ls=(0, (5, 5)), lw=0.8, label="target p95")
        if pooled:
            a.axhline(pooled[0], color="tab:purple", ls="-.", lw=1.4,
                      label="bound (soonest family): p50")
            a.axhline(pooled[1], color="tab:purple", ls=(0, (1, 2)), lw=1.6,
                      label="bound: p95")
        a.axvline(report.FA_MAX, color="r", ls=":", lw=1, label="0.5 false onsets/min")
        a.set_xscale("symlog", linthresh=0.1)
        a.set_yscale("symlog", linthresh=10)
        a.set_ylim(bottom=0)
        a.set_xlim(left=-0.02)
        a.set_xlabel(xlabel)
        a.set_ylabel("excess decision latency (ms; log above 10)")
        a.grid(alpha=0.3)
    axes[0].set_title("Against false onsets with pops", fontsize=9)
    axes[1].set_title("Against false onsets on the real rest", fontsize=9)
    axes[1].legend(fontsize=7, loc="upper right")
    fig.suptitle("Excess latency of the bursts of every SNR, clonus and spike sets (both "
                 "rates) pooled; labels: k_on or cusum_h (* default)", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "rules.png"), dpi=110)
    plt.close(fig)
    return "rules.png"


def datasets_levels():
    """The hum levels (x rest RMS) of the hum sets."""
    import datasets
    return datasets.HUM_LEVELS


def sim_onsets(ctx, out):
    """The simulated set's onsets: how its bursts rise (mean power profile
    and the fitted line, against the injected sets' linear amplitude
    ramps), and rpms-detect's and HB's first onset error and rpms-detect's
    decision latency per burst against its SNR, with the estimated
    detectability."""
    ds = report.find_set(ctx, "sim")
    info = ds.info
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.8))
    a = ax[0]
    prof = info["profile"]
    t = np.arange(len(prof)) * 1000.0 / ds.rate
    smooth = np.convolve(prof, np.ones(10) / 10.0, mode="same")
    a.plot(t, prof, color="0.7", lw=0.6)
    a.plot(t[5:-5], smooth[5:-5], color="k", lw=1.2,
           label="simulated bursts >= %g dB (%d): mean excess power / plateau (grey; black: "
           "10 ms mean)" % (12, info["n_profile"]))
    a.plot(t, np.minimum(t / info["rise_ms"], 1.0), "--", color="tab:red",
           label="fit: linear in power over %.0f ms" % info["rise_ms"])
    for r, c in ((75.0, "tab:blue"), (150.0, "tab:cyan")):
        a.plot(t, np.minimum(t / r, 1.0) ** 2, ":", color=c,
               label="injected burst, linear ramp of %g ms (power)" % r)
    a.set_xlabel("ms after the true onset")
    a.set_ylabel("burst power / plateau power")
    a.set_ylim(-0.1, 1.3)
    a.set_title("How the bursts rise", fontsize=9)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    a = ax[1]
    for name, key, mk, color in ((ctx["det"], "first_err_ms", "o", DET_COLOR),
                                 ("HB", "first_err_ms", "^", REF_COLORS["HB"]),
                                 (ctx["det"], "first_lat_ms", "x", "tab:red")):
        tr = [x for sc in report.at_default(ctx, "sim", name)[1] for x in sc.truths
              if x.get(key) is not None]
        lab = ("%s: first onset - true onset" % name if key == "first_err_ms"
               else "%s: decision - true onset" % name)
        a.scatter([float(x["snr_db"]) for x in tr], [x[key] for x in tr], marker=mk, s=18,
                  color=color, label=lab)
    snr = np.linspace(0.5, 23, 100)
    a.plot(snr, [scoring.TRANSIENT_MS + min(info["rise_ms"] / 10 ** (v / 10), info["rise_ms"])
                 for v in snr], "--", color="k", label="detectable after (estimated)")
    a.axhspan(-scoring.TOL_MS, scoring.TOL_MS, color="g", alpha=0.08)
    a.axvline(10, color="0.6", ls=":", lw=1)
    a.set_yscale("symlog", linthresh=50)
    a.set_xlabel("burst SNR (dB, measured)")
    a.set_ylabel("ms after the true onset (linear within +/-50, log beyond)")
    a.set_title("Per burst (band: the +/-50 ms match window)", fontsize=9)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sim_onsets.png"), dpi=110)
    plt.close(fig)
    return "sim_onsets.png"


def make_all(ctx):
    """Write every figure; returns what the document needs about them."""
    out = ctx["args"].figures
    figs = examples(ctx, out)
    figs["roc"] = (roc(ctx, out), "")
    figs["roc_any_onset"] = (roc(ctx, out, "hit"), "")
    figs["errors"] = (errors(ctx, out), "")
    figs["tradeoff"] = (tradeoff(ctx, out), "")
    name = rules_fig(ctx, out)
    if name:
        figs["rules"] = (name, "")
    figs["sim_onsets"] = (sim_onsets(ctx, out), "")
    return figs
