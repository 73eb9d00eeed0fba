# SPDX-License-Identifier: MIT
"""Reading the source recordings and writing the generated ones.

Every error names the file at fault.
"""

import csv
import os
import re

import numpy as np

RATE_RE = re.compile(r"^#\s*Sampling Rate \(Hz\):=\s*([0-9.eE+-]+)")


class DataError(Exception):
    """A data file is missing or malformed (the message names it)."""


def read_text_recording(path):
    """Read a one-value-a-line text recording with '#' header lines.

    Returns (samples as float array, sampling rate from the header or None).
    """
    rate = None
    values = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                s = line.strip()
                if not s:
                    continue
                if s.startswith("#"):
                    m = RATE_RE.match(s)
                    if m:
                        rate = float(m.group(1))
                    continue
                try:
                    values.append(float(s.split()[0]))
                except ValueError:
                    raise DataError("%s:%d: not a number: %r" % (path, lineno, s[:40]))
    except OSError as e:
        raise DataError("%s: cannot read: %s" % (path, e.strerror))
    if not values:
        raise DataError("%s: no samples" % path)
    return np.asarray(values), rate


def read_simulated_set(folder):
    """Read simulated_onsets/: 10 trials (NaN-padded columns) and their onsets.

    Returns a list of (name, samples, onsets) with onsets 0-based sample indices.
    """
    sig_path = os.path.join(folder, "signals.csv")
    ons_path = os.path.join(folder, "onsets_samples.csv")
    try:
        with open(sig_path, encoding="utf-8") as f:
            rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    except OSError as e:
        raise DataError("%s: cannot read: %s" % (sig_path, e.strerror))
    if len(rows) < 2:
        raise DataError("%s: no header row and data" % sig_path)
    names = [n.strip() for n in rows[0]]
    cols = [[] for _ in names]
    for lineno, row in enumerate(rows[1:], 3):
        for j, cell in enumerate(row[:len(names)]):
            cell = cell.strip()
            if cell == "":
                continue
            try:
                cols[j].append(float(cell))
            except ValueError:
                raise DataError("%s:%d: column %s: not a number: %r"
                                % (sig_path, lineno, names[j], cell[:40]))
    try:
        onsets = np.loadtxt(ons_path, delimiter=",", comments="#", ndmin=2).astype(int)
    except (OSError, ValueError) as e:
        raise DataError("%s: cannot read the onsets: %s" % (ons_path, e))
    if onsets.shape[0] != len(names):
        raise DataError("%s: %d rows of onsets for %d trials in %s"
                        % (ons_path, onsets.shape[0], len(names), sig_path))
    return [(names[j], np.asarray(cols[j]), onsets[j]) for j in range(len(names))]


def write_text_recording(path, samples, fs, label="EMG", fmt="%.4f"):
    """Write samples in the replay source's text format, rate in the header."""
    header = ("# Simple Text Format\n# Sampling Rate (Hz):= %.2f\n"
              "# Resolution:= 12\n# Labels:= %s\n" % (fs, label))
    body = "\n".join(np.char.mod(fmt, samples))
    with open(path, "w", encoding="utf-8") as f:
        f.write(header)
        f.write(body)
        f.write("\n")


TRUTH_FIELDS = ["kind", "onset_sample", "end_sample", "snr_db", "ramp_ms", "shape",
                "duration_ms", "amplitude", "reach_ms", "scored"]


def write_truth(path, events):
    """Write the truth events (dicts with TRUTH_FIELDS keys) as CSV."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TRUTH_FIELDS)
        w.writeheader()
        for ev in events:
            w.writerow({k: _fmt(ev.get(k, "")) for k in TRUTH_FIELDS})


def _fmt(v):
    """Compact text for a truth-file cell."""
    if v is None:
        return ""
    if isinstance(v, float):
        return "%.4g" % v
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)
