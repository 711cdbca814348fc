"""Charts (SVG) of the detection benchmark's results: one panel per sample size, one line per shift.

Reads the JSON written by ``detection_quality.py`` (one or more files, merged) and writes a chart
of a rate for both verdicts: Evidently's rule (hollow circle) and the calibrated verdict (filled
circle), with the 95% interval of the repetitions as a bar.

Usage::

    python benchmarks/plot_detection.py benchmarks/results/detection_quality.json \\
        --rate share --out docs/detection-share.svg
    python benchmarks/plot_detection.py benchmarks/results/detection_quality.json \\
        --rate found --out docs/detection-found.svg
"""

from __future__ import annotations

import argparse
import json
import sys
from html import escape
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from detection_quality import wilson  # noqa: E402

TITLES = {
    "share": "Runs raising data drift (more than 10% of the columns drifted)",
    "any": "Runs in which at least one column drifted",
    "found": "Runs in which a shifted column was flagged",
    "other": "Runs in which a column that was not shifted was flagged",
}
LABEL_WIDTH, PANEL_WIDTH, ROW_HEIGHT, TOP = 300, 190, 18, 72
COLOURS = {"evidently": "#b45309", "calibrated": "#1d4ed8"}


def chart(rows: list[dict[str, Any]], rate: str) -> str:
    """The SVG text of one rate for every (size, scenario) in ``rows``."""
    sizes = sorted({row["size"] for row in rows})
    scenarios = list(
        dict.fromkeys(row["scenario"] for row in rows if not row["scenario"].endswith("(multivariate on)"))
    )
    if rate == "found":
        scenarios = [s for s in scenarios if not s.startswith("none")]
    by_key = {(row["size"], row["scenario"]): row for row in rows}
    width = LABEL_WIDTH + PANEL_WIDTH * len(sizes) + 20
    height = TOP + ROW_HEIGHT * len(scenarios) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(TITLES[rate])}</text>',
        f'<circle cx="12" cy="32" r="4" fill="#fff" stroke="{COLOURS["evidently"]}" stroke-width="1.5"/>'
        f'<text x="20" y="36">Evidently\'s rule</text>'
        f'<circle cx="122" cy="32" r="4" fill="{COLOURS["calibrated"]}"/>'
        f'<text x="130" y="36">calibrated</text>',
    ]
    for index, scenario in enumerate(scenarios):
        y = TOP + ROW_HEIGHT * index + ROW_HEIGHT / 2
        if index % 2 == 0:
            out.append(f'<rect x="0" y="{y - ROW_HEIGHT / 2}" width="{width}" height="{ROW_HEIGHT}" fill="#f3f4f6"/>')
        out.append(f'<text x="8" y="{y + 4}">{escape(scenario)}</text>')
    for panel, size in enumerate(sizes):
        left = LABEL_WIDTH + PANEL_WIDTH * panel + 10
        right = left + PANEL_WIDTH - 45
        out.append(f'<text x="{(left + right) / 2}" y="{TOP - 20}" text-anchor="middle">n = {size:,}</text>')
        bottom = TOP + ROW_HEIGHT * len(scenarios)
        for tick in (0, 0.05, 0.5, 1.0):
            x = left + (right - left) * tick
            out.append(f'<line x1="{x}" y1="{TOP - 8}" x2="{x}" y2="{bottom}" stroke="#d1d5db"/>')
            if tick != 0.05:
                out.append(f'<text x="{x}" y="{bottom + 14}" text-anchor="middle">{tick:.0%}</text>')
        out.append(
            f'<text x="{left + (right - left) * 0.05}" y="{TOP - 6}" text-anchor="middle" fill="#6b7280">5%</text>'
        )
        for index, scenario in enumerate(scenarios):
            row = by_key.get((size, scenario))
            if row is None:
                continue
            y = TOP + ROW_HEIGHT * index + ROW_HEIGHT / 2
            for offset, verdict in ((-3, "evidently"), (3, "calibrated")):
                hits, reps = row.get(f"{verdict} {rate}", 0), row["reps"]
                low, high = wilson(hits, reps)
                x, x_low, x_high = (left + (right - left) * v for v in (hits / reps, low, high))
                colour = COLOURS[verdict]
                out.append(
                    f'<line x1="{x_low:.1f}" y1="{y + offset}" x2="{x_high:.1f}" y2="{y + offset}" stroke="{colour}"/>'
                )
                fill = colour if verdict == "calibrated" else "#fff"
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y + offset}" r="3.5" fill="{fill}" stroke="{colour}" '
                    f'stroke-width="1.5"><title>{escape(scenario)}, n = {size:,}, {verdict}: '
                    f"{hits / reps:.1%} of {reps}</title></circle>"
                )
    out.append(
        f'<text x="8" y="{height - 8}" fill="#6b7280">Bars: 95% interval of the rate '
        f"({rows[0]['reps']} repetitions per point).</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="JSON files written by detection_quality.py")
    parser.add_argument("--rate", choices=sorted(TITLES), default="share")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for path in args.results:
        rows += json.loads(path.read_text())["rows"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(chart(rows, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
