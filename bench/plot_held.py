#!/usr/bin/env python3
"""Plots the held-snapshot workload of a bench/run.sh result directory.

    bench/plot_held.py RESULTS_DIR [OUT.svg]

Reads RESULTS_DIR/results.tsv (rows "held <p2|c1> <system> <cycle> <msg/s>"
and "held held_s <system> 0 <seconds>") and writes an SVG (default
RESULTS_DIR/held.svg) with two charts, P2 and C1: each system's throughput
per cycle divided by the median of its first three cycles, against the
minutes the snapshot had been held (cycles spread evenly over that time).
No dependencies beyond Python 3.
"""
import statistics
import sys

COLORS = {"pgqueue": "#1f77b4", "plain": "#d62728", "pgq": "#2ca02c"}
LABELS = {"pgqueue": "pgqueue", "plain": "plain table", "pgq": "PgQ"}
W, H = 420, 260           # one chart
ML, MR, MT, MB = 50, 15, 30, 40
YMAX = 1.6


def load(path):
    series, held = {}, {}
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 5 or cols[0] != "held" or cols[4] == "NA":
                continue
            kind, system, run, value = cols[1], cols[2], int(cols[3]), float(cols[4])
            if kind == "held_s":
                held[system] = value
            else:
                series.setdefault(kind, {}).setdefault(system, []).append((run, value))
    return series, held


def chart(x0, title, data, held):
    out = [f'<g transform="translate({x0},0)">',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-weight="bold">{title}</text>']
    pw, ph = W - ML - MR, H - MT - MB
    xmax = max([held.get(s, 600) / 60 for s in data] + [1])

    def px(m):
        return ML + pw * m / xmax

    def py(r):
        return MT + ph * (1 - min(r, YMAX) / YMAX)

    # axes, grid, the 0.8 target
    for r in (0, 0.4, 0.8, 1.2, 1.6):
        style = 'stroke="#999" stroke-dasharray="4 3"' if r == 0.8 else 'stroke="#e5e5e5"'
        out.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{py(r):.1f}" y2="{py(r):.1f}" {style}/>')
        out.append(f'<text x="{ML - 6}" y="{py(r) + 4:.1f}" text-anchor="end">{r:.1f}</text>')
    step = 2 if xmax > 6 else 1
    m = 0
    while m <= xmax + 1e-9:
        out.append(f'<text x="{px(m):.1f}" y="{MT + ph + 16}" text-anchor="middle">{m:g}</text>')
        m += step
    out.append(f'<text x="{ML + pw / 2}" y="{H - 6}" text-anchor="middle">minutes the snapshot was held</text>')
    out.append(f'<text x="{ML + pw - 2}" y="{py(0.8) - 4:.1f}" text-anchor="end" fill="#666">target 0.8</text>')
    for system, points in sorted(data.items()):
        points.sort()
        base = statistics.median([v for _, v in points[:3]])
        n = len(points)
        minutes = held.get(system, 600) / 60
        xy = " ".join(f"{px(minutes * (i + 0.5) / n):.1f},{py(v / base):.1f}"
                      for i, (_, v) in enumerate(points))
        out.append(f'<polyline fill="none" stroke="{COLORS.get(system, "#000")}" '
                   f'stroke-width="1.8" points="{xy}"/>')
    out.append("</g>")
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    directory = sys.argv[1]
    target = sys.argv[2] if len(sys.argv) == 3 else f"{directory}/held.svg"
    series, held = load(f"{directory}/results.tsv")
    if not series:
        sys.exit(f"no held-snapshot results in {directory}/results.tsv")
    systems = sorted({s for kind in series.values() for s in kind})
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 30}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{2 * W}" height="{H + 30}" fill="white"/>']
    out += chart(0, "P2 (1000 per transaction), relative to its start", series.get("p2", {}), held)
    out += chart(W, "C1 drain, relative to its start", series.get("c1", {}), held)
    for i, system in enumerate(systems):
        x = ML + i * 130
        out.append(f'<line x1="{x}" x2="{x + 24}" y1="{H + 15}" y2="{H + 15}" '
                   f'stroke="{COLORS.get(system, "#000")}" stroke-width="3"/>')
        out.append(f'<text x="{x + 30}" y="{H + 19}">{LABELS.get(system, system)}</text>')
    out.append("</svg>")
    with open(target, "w") as f:
        f.write("\n".join(out) + "\n")
    print(target)


if __name__ == "__main__":
    main()
