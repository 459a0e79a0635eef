#!/usr/bin/env python3
"""Draws bench/scale's chart as SVG, with the standard library only.

    python3 bench/scale_chart.py DATA.tsv OUT.svg [TITLE [SCENARIO=LABEL ...]]

DATA.tsv has a header and the columns scenario, size, ok_rps (2xx answers
per second). One line per scenario; both axes are logarithmic (sizes from
1k to 1M, throughputs from a few to tens of thousands per second), so a
constant ratio is a constant distance and a flat line is a query whose
cost does not grow with the table. Points at zero are left out (a log axis
has no zero) and noted in the legend.
"""

import csv
import math
import sys
from xml.sax.saxutils import escape

LABELS = {
    "get": "GET /messages/:id",
    "newest": "newest page ($sort createdAt -1)",
    "selective": "userId=<probe> (indexed)",
    "selective_sorted": "userId=<probe>, newest first",
    "limit0": "$limit=0",
    "unindexed": "text=nomatch (unindexed)",
    "unindexed_wide": "text=nomatch, larger query budget",
    "create": "POST /messages",
}
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
DASHES = ["", "6,3", "2,3", "8,3,2,3", "", "6,3", "2,3", "8,3,2,3"]
MARKERS = ["circle", "square", "diamond", "triangle", "circle", "square", "diamond", "triangle"]


def human(n):
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def marker(kind, x, y, color):
    r = 4
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}"/>'
    if kind == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{color}"/>'
    if kind == "diamond":
        pts = f"{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y:.1f} {x:.1f},{y + r + 1:.1f} {x - r - 1:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{color}"/>'
    pts = f"{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y + r:.1f} {x - r - 1:.1f},{y + r:.1f}"
    return f'<polygon points="{pts}" fill="{color}"/>'


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    data_file, out_file = argv[1], argv[2]
    title = argv[3] if len(argv) > 3 else "Throughput against table size"
    labels = dict(LABELS)
    for extra in argv[4:]:
        key, _, label = extra.partition("=")
        labels[key] = label

    series = {}  # scenario -> [(size, rps)]
    with open(data_file, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            series.setdefault(row["scenario"], []).append((int(row["size"]), float(row["ok_rps"])))
    if not series:
        print("scale_chart.py: no data", file=sys.stderr)
        return 1
    sizes = sorted({s for points in series.values() for s, _ in points})
    values = [v for points in series.values() for _, v in points if v > 0]
    if not values:
        print("scale_chart.py: no positive throughput to draw", file=sys.stderr)
        return 1

    width, height = 940, 540
    left, right, top, bottom = 80, 340, 50, 60
    plot_w, plot_h = width - left - right, height - top - bottom

    x_lo, x_hi = math.log10(sizes[0]), math.log10(sizes[-1])
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    y_lo = math.floor(math.log10(min(values)))
    y_hi = math.ceil(math.log10(max(values)))
    if y_hi == y_lo:
        y_hi += 1

    def px(size):
        return left + (math.log10(size) - x_lo) / (x_hi - x_lo) * plot_w

    def py(v):
        return top + plot_h - (math.log10(v) - y_lo) / (y_hi - y_lo) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left + plot_w / 2:.0f}" y="28" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    # Grid and y labels: powers of ten, with 2 and 5 as faint lines.
    for e in range(y_lo, y_hi + 1):
        for m in (1, 2, 5):
            v = m * 10**e
            if v > 10**y_hi:
                continue
            y = py(v)
            if m == 1:
                out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ccc"/>')
                label = f"{v:,}" if v >= 1 else f"{v:g}"
                out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
            else:
                out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
    for s in sizes:
        x = px(s)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 20}" text-anchor="middle">{human(s)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    out.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 15}" text-anchor="middle">'
        "records in the table (log scale)</text>"
    )
    out.append(
        f'<text transform="translate(22,{top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
        "2xx answers per second (log scale)</text>"
    )

    order = [k for k in labels if k in series] + sorted(k for k in series if k not in labels)
    for i, name in enumerate(order):
        color, dash, kind = COLORS[i % len(COLORS)], DASHES[i % len(DASHES)], MARKERS[i % len(MARKERS)]
        points = sorted(series[name])
        shown = [(s, v) for s, v in points if v > 0]
        if len(shown) > 1:
            path = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in shown)
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>')
        for s, v in shown:
            out.append(marker(kind, px(s), py(v), color))
        # Legend
        ly = top + 10 + i * 22
        lx = left + plot_w + 20
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 28}" y2="{ly}" stroke="{color}" stroke-width="2"{dash_attr}/>')
        out.append(marker(kind, lx + 14, ly, color))
        label = labels.get(name, name)
        zeros = [human(s) for s, v in points if v <= 0]
        if zeros:
            label += f" (none at {', '.join(zeros)})"
        out.append(f'<text x="{lx + 36}" y="{ly + 4}">{escape(label)}</text>')
    out.append("</svg>")
    with open(out_file, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
