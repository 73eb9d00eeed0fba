#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarise a bench/compare.sh run: for every figure the benchmarks print,
its value in each round for build A and build B, the median over the
rounds, the spread over the rounds (max - min, as a percentage of that
median), the ratio B / A of the medians, and the ratios of the rounds
where both ran (B's run beside A's in the same round): their median, least
and greatest. Markdown on stdout.

    bench/compare_summary.py OUTDIR [OUTDIR...]

Several OUTDIRs (runs of the same two builds) are read as one: their
rounds follow each other in the order given.

A ratio only means something where the two spreads are small next to its
distance from 1: read both."""

import glob
import os
import re
import statistics
import sys

NUM = r"([0-9.]+)"


def figures(name, text):
    """(figure, value) pairs from one benchmark's output."""
    out = []
    if name in ("stim_timing", "estop_latency"):
        for m in re.finditer(r"^(.+?) \((\d+)\): p50 %s us, p99 %s us(?:, p99\.9 %s us)?, max %s us"
                             % (NUM, NUM, NUM, NUM), text, re.M):
            what = m.group(1).strip()
            if what.startswith(">>>"):
                continue
            out.append((what + ": p50 (us)", float(m.group(3))))
            out.append((what + ": p99 (us)", float(m.group(4))))
            if m.group(5):
                out.append((what + ": p99.9 (us)", float(m.group(5))))
            out.append((what + ": max (us)", float(m.group(6))))
    elif name == "pipeline":
        for m in re.finditer(r"^fs +(\d+) Hz, 8 channels, \d+ blocks of \d+ frames: block cost "
                             r"median (\d+) ns, p99 (\d+) ns", text, re.M):
            out.append(("%s Hz all blocks: p50 (ns)" % m.group(1), float(m.group(2))))
            out.append(("%s Hz all blocks: p99 (ns)" % m.group(1), float(m.group(3))))
        for m in re.finditer(r"^fs +(\d+) Hz, the \d+ blocks with an onset \(\d+ onsets\): block "
                             r"cost median (\d+) ns, p99 (\d+) ns", text, re.M):
            out.append(("%s Hz onset blocks: p50 (ns)" % m.group(1), float(m.group(2))))
    elif name.startswith("detect_throughput"):
        fs = None
        ns = {}
        for line in text.splitlines():
            m = re.match(r"^fs (\d+) Hz, 8 channels", line)
            if m:
                fs = m.group(1)
                continue
            m = re.match(r"^  (floor: 4 biquads|dsp_chain_step only|dsp, mains_hz = 0|"
                         r"detector: dsp \+ detect) +\S+ +\S+ +\S+ +([0-9.]+) ", line)
            if m and fs:
                out.append(("%s Hz %s (ns per channel-sample)" % (fs, m.group(1)), float(m.group(2))))
                ns[(fs, m.group(1))] = float(m.group(2))
            m = re.match(r"^  worst block at (\d+) Hz .*?: median (\d+) ns, p90 (\d+) ns.*"
                         r"the block before it: median (\d+) ns", line)
            if m:
                out.append(("%s Hz worst block: p50 (ns)" % m.group(1), float(m.group(2))))
                out.append(("%s Hz worst block: p90 (ns)" % m.group(1), float(m.group(3))))
                out.append(("%s Hz the block before it: p50 (ns)" % m.group(1), float(m.group(4))))
        for fs in sorted({k[0] for k in ns}):
            det = ns.get((fs, "detector: dsp + detect"))
            dsp = ns.get((fs, "dsp_chain_step only"))
            flo = ns.get((fs, "floor: 4 biquads"))
            if det and dsp:
                out.append(("%s Hz detect_step's share, detector - dsp only (ns)" % fs, det - dsp))
            if det and flo:
                out.append(("%s Hz detector / floor" % fs, det / flo))
            if dsp and flo:
                out.append(("%s Hz dsp only / floor" % fs, dsp / flo))
    elif name.startswith("replay"):
        m = re.search(r"median %s ms, max %s ms" % (NUM, NUM), text)
        if m:
            out.append(("wall time per run: median of 11 (ms)", float(m.group(1))))
            out.append(("wall time per run: max of 11 (ms)", float(m.group(2))))
    elif name == "subscribers":
        for m in re.finditer(r"^  (1 sub|101 sub) +p50 +%s us +p99 +%s us +max +%s us"
                             % (NUM, NUM, NUM), text, re.M):
            for i, q in ((2, "p50"), (3, "p99"), (4, "max")):
                out.append(("%s: lateness %s (us)" % (m.group(1), q), float(m.group(i))))
    elif name.startswith("iio_"):
        for m in re.finditer(r"^  (\S.*?) +p50 +%s us +p99 +%s us +max +%s us +n=(\d+)"
                             % (NUM, NUM, NUM), text, re.M):
            for i, q in ((2, "p50"), (3, "p99"), (4, "max")):
                out.append(("%s: %s (us)" % (m.group(1), q), float(m.group(i))))
    elif name == "detect_cli":
        v = [float(x) for x in re.findall(r"cpu_ms ([0-9.]+)", text)]
        if v:
            out.append(("CPU time per run: median of %d (ms)" % len(v), statistics.median(v)))
    return out


def fmt(x):
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def main():
    data = {}   # (bench, figure) -> {"A": [..], "B": [..]}
    order = []
    offset = 0
    for d in sys.argv[1:]:
        offset = read_dir(d, offset, data, order)
    for d in sys.argv[1:]:
        info = os.path.join(d, "info.txt")
        if os.path.exists(info):
            print("```\n" + open(info).read().strip() + "\n```\n")
    print_tables(data, order)


def read_dir(d, offset, data, order):
    """Add the logs of run directory d to data, rounds after offset; return the last round."""
    last = offset
    for path in sorted(glob.glob(os.path.join(d, "r*-*-*.log"))):
        m = re.match(r"r(\d+)-([AB])-(.+)\.log$", os.path.basename(path))
        if not m:
            continue
        rnd, tag, name = offset + int(m.group(1)), m.group(2), m.group(3)
        last = max(last, rnd)
        with open(path, errors="replace") as f:
            text = f.read()
        for fig, val in figures(name, text):
            key = (name, fig)
            if key not in data:
                data[key] = {"A": {}, "B": {}}
                order.append(key)
            data[key][tag][rnd] = val
    return last


def print_tables(data, order):
    bench_order = []
    for name, _ in order:
        if name not in bench_order:
            bench_order.append(name)
    for name in bench_order:
        print("### %s\n" % name)
        print("| figure | A per round | B per round | A median (spread) | B median (spread) | B / A "
              "| B / A paired by round: median (min-max) |")
        print("|---|---|---|---|---|---|---|")
        for key in order:
            if key[0] != name:
                continue
            cells = []
            med = {}
            for tag in "AB":
                vals = [data[key][tag][r] for r in sorted(data[key][tag])]
                if vals:
                    med[tag] = statistics.median(vals)
                    spread = (max(vals) - min(vals)) / med[tag] * 100 if med[tag] else 0.0
                    cells.append(("/".join(fmt(v) for v in vals),
                                  "%s (%.0f %%)" % (fmt(med[tag]), spread)))
                else:
                    cells.append(("-", "-"))
            ratio = "%.3f" % (med["B"] / med["A"]) if "A" in med and "B" in med and med["A"] else "-"
            pairs = [data[key]["B"][r] / data[key]["A"][r] for r in sorted(data[key]["A"])
                     if r in data[key]["B"] and data[key]["A"][r]]
            paired = ("%.3f (%.2f-%.2f)" % (statistics.median(pairs), min(pairs), max(pairs))
                      if pairs else "-")
            print("| %s | %s | %s | %s | %s | %s | %s |" % (key[1], cells[0][0], cells[1][0],
                                                           cells[0][1], cells[1][1], ratio, paired))
        print()


if __name__ == "__main__":
    main()
